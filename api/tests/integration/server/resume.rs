//! Research sessions whose searches fail end `complete_with_errors` (status, report, final SSE
//! event, OpenAPI); sessions interrupted by a shutdown are resumed at the next start a few at a
//! time and end with the references they get when run one at a time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use aiex_api::server::AppState;
use aiex_research::{EventKind, ResearchEvent, SessionStatus};

use super::research::{research_config, slow_serper};
use super::{call, get, parse_sse, post_json, state};

/// Polls session `id` until its status is one of `wanted` (for at most `seconds`).
async fn wait_for(state: &AppState, id: &str, wanted: &[&str], seconds: u64) -> Value {
    let mut body = Value::Null;
    for _ in 0..seconds * 10 {
        let answer = call(state, get(&format!("/v1/research/{id}"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        body = answer.json();
        if wanted.iter().any(|status| body["status"] == *status) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("session {id} never reached {wanted:?}: {body}");
}

async fn create(state: &AppState, question: &str) -> String {
    let answer = call(
        state,
        post_json("/v1/research", &json!({"question": question})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    answer.json()["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_searches_fail_ends_complete_with_errors() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    // A web provider nothing answers for: connections are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let config = research_config(
        data.path(),
        repo.path(),
        None,
        &[
            ("web.serper_api_key", "test-key"),
            ("web.serper_url", &dead),
            ("web.max_retries", "0"),
            ("research.max_searches", "4"),
        ],
    );
    let state = state(config, false).await;
    let id = create(&state, "How are TOML table headers parsed?").await;
    let session = wait_for(
        &state,
        &id,
        &["complete", "complete_with_errors", "failed"],
        120,
    )
    .await;
    assert_eq!(session["status"], "complete_with_errors", "{session}");
    let failed = session["report"]["failed_searches"]
        .as_array()
        .expect("failed searches");
    assert!(!failed.is_empty(), "{session}");
    assert!(failed
        .iter()
        .all(|failure| failure["source"] == "web:serper"));
    let text = session["report_text"].as_str().expect("report text");
    assert!(text.contains("## Searches that failed"), "{text}");

    // The final event of the stream carries the status and the failures.
    let stream = call(&state, get(&format!("/v1/research/{id}/events"))).await;
    let mut buffer = stream.text.clone();
    let events = parse_sse(&mut buffer);
    let last = events.last().expect("events");
    assert_eq!(last.event, "done", "{events:?}");
    let done: Value = serde_json::from_str(&last.data).expect("json");
    assert_eq!(done["status"], "complete_with_errors", "{done}");
    assert_eq!(
        done["failures"].as_array().map(Vec::len),
        Some(failed.len())
    );

    // A chat completion over such a session says which searches failed.
    let answer = call(
        &state,
        post_json(
            "/v1/chat/completions",
            &json!({
                "model": "aiex-research",
                "messages": [{"role": "user", "content": "How are TOML table headers parsed?"}]
            }),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let message = answer.json()["choices"][0]["message"].clone();
    let content = message["content"].as_str().unwrap_or_default();
    assert!(content.contains("## Searches that failed"), "{content}");
    let reasoning = message["reasoning_content"].as_str().unwrap_or_default();
    assert!(reasoning.contains("web:serper failed"), "{reasoning}");

    let page = call(&state, get("/v1/sessions")).await.json();
    assert!(
        page["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .all(|session| session["status"] == "complete_with_errors"),
        "{page}"
    );
    let openapi = call(&state, get("/openapi.json")).await.json();
    let statuses = &openapi["components"]["schemas"]["ResearchStatus"];
    assert!(
        statuses.to_string().contains("complete_with_errors"),
        "{statuses}"
    );
    state.begin_shutdown();
}

/// The `resumed` and `done` times of a session's last run, in ms.
fn last_run(events: &[ResearchEvent]) -> (u64, u64) {
    let resumed = events
        .iter()
        .rev()
        .find(|event| matches!(event.kind, EventKind::Resumed { .. }))
        .expect("resumed")
        .at_ms;
    let done = events
        .iter()
        .find(|event| matches!(event.kind, EventKind::Done { .. }))
        .expect("done")
        .at_ms;
    (resumed, done)
}

/// The places of a finished session's references.
fn places(session: &Value) -> Vec<String> {
    session["report"]["references"]
        .as_array()
        .expect("references")
        .iter()
        .map(|reference| {
            format!(
                "{} {} {}",
                reference["url"], reference["path"], reference["start_line"]
            )
        })
        .collect()
}

const QUESTIONS: [&str; 4] = [
    "How are TOML table headers parsed?",
    "How does the job queue add a job?",
    "What does parse_toml_table return for a line without brackets?",
    "Which class keeps background jobs in first-in first-out order?",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resumed_at_startup_run_a_few_at_a_time_and_keep_their_references() {
    let web = slow_serper(Duration::from_millis(250)).await;
    let extra = [
        ("research.max_searches", "4"),
        ("research.resume_concurrency", "2"),
    ];

    // The same questions run one at a time, for comparison.
    let alone_data = tempfile::tempdir().expect("tempdir");
    let alone_repo = tempfile::tempdir().expect("tempdir");
    let alone = state(
        research_config(alone_data.path(), alone_repo.path(), Some(web), &extra),
        false,
    )
    .await;
    let mut expected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for question in QUESTIONS {
        let id = create(&alone, question).await;
        let session = wait_for(
            &alone,
            &id,
            &["complete", "complete_with_errors", "failed"],
            120,
        )
        .await;
        assert_eq!(session["status"], "complete", "{session}");
        expected.insert(question, places(&session));
    }
    alone.begin_shutdown();

    // Started together, then the server stops mid-way: every session is left resumable.
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = research_config(data.path(), repo.path(), Some(web), &extra);
    let first = state(config.clone(), false).await;
    let mut ids = Vec::new();
    for question in QUESTIONS {
        ids.push((question, create(&first, question).await));
    }
    first.begin_shutdown();
    first.wait_stopped(Duration::from_secs(30)).await;
    let store = first.research.store().clone();
    for (_, id) in &ids {
        let status = store.state(id).expect("state").status();
        assert_eq!(status, SessionStatus::Cancelled, "{id} must stop mid-way");
    }
    drop(first);

    // The next start resumes them, two at a time, and each ends with its references.
    let second = state(config, false).await;
    for (question, id) in &ids {
        let session = wait_for(
            &second,
            id,
            &["complete", "complete_with_errors", "failed"],
            180,
        )
        .await;
        assert_eq!(session["status"], "complete", "{session}");
        assert_eq!(places(&session), expected[question], "{question}");
    }
    let peak = second.research.resumed_peak();
    assert!(
        (1..=2).contains(&peak),
        "{peak} resumed sessions ran at once"
    );
    // The logs agree: when a session was resumed, at most one other resumed session was running.
    let runs: Vec<(u64, u64)> = ids
        .iter()
        .map(|(_, id)| last_run(&store.events(id).expect("events")))
        .collect();
    for (index, (resumed, _)) in runs.iter().enumerate() {
        let others = runs
            .iter()
            .enumerate()
            .filter(|(other, (start, end))| *other != index && start <= resumed && resumed < end)
            .count();
        assert!(others <= 1, "{runs:?}");
    }
    assert_eq!(second.research.queued_count(), 0);
    second.begin_shutdown();
}

/// A stand-in for Serper that answers after 250 ms, and only while `open` is set.
async fn gated_serper(open: Arc<AtomicBool>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().route(
        "/search",
        axum::routing::post(move |body: axum::Json<Value>| {
            let open = Arc::clone(&open);
            async move {
                tokio::time::sleep(Duration::from_millis(250)).await;
                while !open.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let query = body.0["q"].as_str().unwrap_or_default().to_string();
                axum::Json(json!({
                    "searchParameters": {"q": query, "type": "search"},
                    "organic": [{
                        "title": format!("About {query}"),
                        "link": "https://docs.example.org/toml/tables",
                        "snippet": "A TOML table header is a name in square brackets.",
                        "position": 1
                    }],
                    "credits": 1
                }))
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_queued_for_resumption_is_cancelled_before_its_turn() {
    let open = Arc::new(AtomicBool::new(true));
    let web = gated_serper(Arc::clone(&open)).await;
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = research_config(
        data.path(),
        repo.path(),
        Some(web),
        &[
            ("research.max_searches", "2"),
            ("research.resume_concurrency", "1"),
            ("search.web_deadline_ms", "60000"),
            ("search.budget_ms", "60000"),
        ],
    );
    let first = state(config.clone(), false).await;
    let a = create(&first, QUESTIONS[0]).await;
    let b = create(&first, QUESTIONS[1]).await;
    first.begin_shutdown();
    first.wait_stopped(Duration::from_secs(30)).await;
    for id in [&a, &b] {
        let status = first.research.store().state(id).expect("state").status();
        assert_eq!(status, SessionStatus::Cancelled, "{id} must stop mid-way");
    }
    drop(first);

    // The web answers nothing now: the session resumed first keeps running, the other waits.
    open.store(false, Ordering::SeqCst);
    let second = state(config, false).await;
    let mut polls = 0;
    let (running, queued) = loop {
        polls += 1;
        assert!(polls < 3000, "one session never ran while the other waited");
        let status = |id: &str| {
            let second = second.clone();
            let id = id.to_string();
            async move {
                call(&second, get(&format!("/v1/research/{id}")))
                    .await
                    .json()["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }
        };
        match (status(&a).await.as_str(), status(&b).await.as_str()) {
            ("running", "queued") => break (a.clone(), b.clone()),
            ("queued", "running") => break (b.clone(), a.clone()),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let store = second.research.store().clone();
    let stored = store.events(&queued).expect("events").len();
    let cancelled = call(
        &second,
        axum::http::Request::delete(format!("/v1/research/{queued}"))
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::ACCEPTED, "{}", cancelled.text);
    let session = wait_for(&second, &queued, &["cancelled"], 10).await;
    assert_eq!(session["status"], "cancelled");

    open.store(true, Ordering::SeqCst);
    let session = wait_for(
        &second,
        &running,
        &["complete", "complete_with_errors", "failed"],
        120,
    )
    .await;
    assert_eq!(session["status"], "complete", "{session}");
    // The cancelled one never ran again.
    second.research.wait_stopped(Duration::from_secs(30)).await;
    assert_eq!(store.events(&queued).expect("events").len(), stored);
    assert_eq!(second.research.resumed_peak(), 1);
    second.begin_shutdown();
}
