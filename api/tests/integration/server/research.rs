//! Research sessions over HTTP: create, poll, report, paging, cancel (without a socket); the
//! SSE stream dropped and resumed with `Last-Event-ID`, and resumed across a server restart
//! (over a real socket); keys.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use aiex_api::server::auth::hash_key;
use aiex_api::server::AppState;

use super::{
    call, get, index_keywords, parse_sse, post_json, read_events, server_config, small_repo, start,
    state, Answer, SseEvent,
};

/// A stand-in for Serper that answers every search after `delay`, so sessions take a while.
pub(super) async fn slow_serper(delay: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().route(
        "/search",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| async move {
            tokio::time::sleep(delay).await;
            let query = body.0["q"].as_str().unwrap_or_default().to_string();
            axum::Json(json!({
                "searchParameters": {"q": query, "type": "search"},
                "organic": [{
                    "title": format!("About {query}"),
                    "link": "https://docs.example.org/toml/tables",
                    "snippet": "A TOML table header is a name in square brackets, such as [server].",
                    "position": 1
                }],
                "credits": 1
            }))
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// A server configuration over `data` with the small repository indexed as `demo`, keyword
/// search, one search at a time, and the slow web source when `web` is given.
pub(super) fn research_config(
    data: &std::path::Path,
    repo: &std::path::Path,
    web: Option<SocketAddr>,
    extra: &[(&str, &str)],
) -> aiex_config::Config {
    small_repo(repo);
    let serper_url = web.map(|addr| format!("http://{addr}"));
    let mut all: Vec<(&str, &str)> = vec![
        ("search.mode", "keyword"),
        ("research.search_concurrency", "1"),
    ];
    if let Some(url) = &serper_url {
        all.push(("web.serper_api_key", "test-key"));
        all.push(("web.serper_url", url));
    }
    all.extend_from_slice(extra);
    let config = server_config(data, None, &all);
    index_keywords(&config, repo, "demo");
    config
}

pub(super) fn with_key(request: Request<Body>, key: &str) -> Request<Body> {
    let (mut parts, body) = request.into_parts();
    parts.headers.insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    Request::from_parts(parts, body)
}

fn delete(uri: &str) -> Request<Body> {
    Request::delete(uri).body(Body::empty()).expect("request")
}

/// Polls the session until its status is one of `wanted` (for at most `seconds`).
async fn wait_status(
    state: &AppState,
    id: &str,
    wanted: &[&str],
    seconds: u64,
) -> serde_json::Value {
    let mut body = serde_json::Value::Null;
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

fn ids_of(events: &[SseEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|event| event.id.expect("every research event has an id"))
        .collect()
}

fn create_id(answer: &Answer) -> String {
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    answer.json()["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_sessions_without_a_socket() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let web = slow_serper(Duration::from_millis(300)).await;
    let config = research_config(data.path(), repo.path(), Some(web), &[]);
    let state = state(config, false).await;

    // A session that reads the local index only: created (201), then polled to its end.
    let created = call(
        &state,
        post_json(
            "/v1/research",
            &json!({"question": "How are TOML table headers parsed?", "sources": ["code"], "format": "md"}),
        ),
    )
    .await;
    let id = create_id(&created);
    assert_eq!(created.headers["location"], format!("/v1/research/{id}"));
    assert_eq!(
        created.json()["links"]["events"],
        format!("/v1/research/{id}/events")
    );
    let finished = wait_status(&state, &id, &["complete", "failed", "cancelled"], 60).await;
    assert_eq!(finished["status"], "complete", "{finished}");
    assert_eq!(finished["question"], "How are TOML table headers parsed?");
    assert!(finished["last_event_id"].as_u64().expect("id") > 3);
    let report = &finished["report"];
    assert_eq!(report["session"], id.as_str(), "{report}");
    assert_eq!(report["synthesis"], "extractive", "no LLM configured");
    let cited_table = report["references"]
        .as_array()
        .expect("references")
        .iter()
        .any(|reference| reference.to_string().contains("src/table.rs"));
    assert!(cited_table, "{report}");
    let markdown = finished["report_text"].as_str().expect("markdown");
    assert!(markdown.starts_with('#'), "{markdown}");
    let as_json = call(&state, get(&format!("/v1/research/{id}?format=json"))).await;
    let text = as_json.json()["report_text"]
        .as_str()
        .expect("text")
        .to_string();
    let rendered: serde_json::Value = serde_json::from_str(&text).expect("json report");
    assert_eq!(rendered["session"], id.as_str());

    // Its events replayed: ids 1..=n, `session_started` first, `done` last; `?after=` skips.
    let replay = call(&state, get(&format!("/v1/research/{id}/events"))).await;
    assert_eq!(replay.status, StatusCode::OK);
    let mut text = replay.text.clone();
    let events = parse_sse(&mut text);
    let ids = ids_of(&events);
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    assert_eq!(events[0].event, "session_started");
    assert_eq!(events[events.len() - 1].event, "done");
    assert_eq!(
        ids.last().copied(),
        finished["last_event_id"].as_u64(),
        "the stream and the status agree"
    );
    let stored: serde_json::Value = serde_json::from_str(&events[1].data).expect("json");
    assert_eq!(stored["id"], 2);
    assert_eq!(stored["type"], events[1].event.as_str());
    let tail = call(&state, get(&format!("/v1/research/{id}/events?after=3"))).await;
    let mut text = tail.text.clone();
    assert_eq!(ids_of(&parse_sse(&mut text))[0], 4);

    // With `Accept: text/event-stream` the creation streams the session to its end.
    let request = Request::post("/v1/research")
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(Body::from(
            json!({"question": "What does the job queue push?", "sources": ["code"]}).to_string(),
        ))
        .expect("request");
    let streamed = call(&state, request).await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);
    assert!(streamed.headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/event-stream"));
    let streamed_id = streamed.headers["x-session-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let mut text = streamed.text.clone();
    let events = parse_sse(&mut text);
    let ids = ids_of(&events);
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let started: serde_json::Value = serde_json::from_str(&events[0].data).expect("json");
    assert_eq!(started["session"], streamed_id.as_str());
    assert!(events.iter().any(|e| e.event == "report_ready"));
    assert_eq!(events[events.len() - 1].event, "done");

    // A slow session (web searches take 300 ms each) cancelled mid-way.
    let slow = call(
        &state,
        post_json(
            "/v1/research",
            &json!({"question": "How do TOML tables and arrays of tables differ?", "budgets": {"max_searches": 20}}),
        ),
    )
    .await;
    let slow_id = create_id(&slow);
    let cancelled = call(&state, delete(&format!("/v1/research/{slow_id}"))).await;
    assert_eq!(cancelled.status, StatusCode::ACCEPTED, "{}", cancelled.text);
    assert_eq!(cancelled.json()["status"], "cancelling");
    let stopped = wait_status(&state, &slow_id, &["cancelled", "complete", "failed"], 60).await;
    assert_eq!(stopped["status"], "cancelled", "{stopped}");
    assert!(stopped.get("report").is_none(), "{stopped}");
    let again = call(&state, delete(&format!("/v1/research/{slow_id}"))).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "session_finished");
    let replay = call(&state, get(&format!("/v1/research/{slow_id}/events"))).await;
    let mut text = replay.text.clone();
    let events = parse_sse(&mut text);
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("cancelled"));

    // Sessions, newest first, a page at a time, with the total.
    let first_page = call(&state, get("/v1/sessions?limit=2")).await;
    assert_eq!(first_page.status, StatusCode::OK, "{}", first_page.text);
    let page = first_page.json();
    assert_eq!(page["total"], 3, "{page}");
    assert_eq!(page["limit"], 2);
    assert_eq!(page["sessions"].as_array().expect("list").len(), 2);
    let second_page = call(&state, get("/v1/sessions?offset=2&limit=2"))
        .await
        .json();
    let rest = second_page["sessions"].as_array().expect("list");
    assert_eq!(rest.len(), 1);
    let mut all_ids: Vec<String> = page["sessions"]
        .as_array()
        .expect("list")
        .iter()
        .chain(rest.iter())
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    all_ids.sort();
    let mut expected = vec![id.clone(), streamed_id.clone(), slow_id.clone()];
    expected.sort();
    assert_eq!(all_ids, expected);
    let bad_page = call(&state, get("/v1/sessions?limit=0")).await;
    assert_eq!(bad_page.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_page.code(), "invalid_limit");

    // Unknown sessions and invalid requests.
    for request in [
        get("/v1/research/0123456789abcdef"),
        get("/v1/research/0123456789abcdef/events"),
        delete("/v1/research/0123456789abcdef"),
        get("/v1/research/not.an.id"),
    ] {
        let answer = call(&state, request).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
        assert_eq!(answer.code(), "session_not_found");
    }
    for (body, status, code) in [
        (
            json!({"question": "  "}),
            StatusCode::BAD_REQUEST,
            "empty_question",
        ),
        (
            json!({"question": "q", "depth": 9}),
            StatusCode::BAD_REQUEST,
            "invalid_depth",
        ),
        (
            json!({"question": "q", "format": "pdf"}),
            StatusCode::BAD_REQUEST,
            "invalid_format",
        ),
        (
            json!({"question": "q", "template": "nope"}),
            StatusCode::BAD_REQUEST,
            "unknown_template",
        ),
        (
            json!({"question": "q", "budgets": {"max_searches": 0}}),
            StatusCode::BAD_REQUEST,
            "invalid_budget",
        ),
        (
            json!({"question": "q", "collections": ["missing"]}),
            StatusCode::NOT_FOUND,
            "collection_not_found",
        ),
        (
            json!({"question": "q", "unknown": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ] {
        let answer = call(&state, post_json("/v1/research", &body)).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.code(), code, "{body}");
    }
    let bad_resume = Request::get(format!("/v1/research/{id}/events"))
        .header("last-event-id", "abc")
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        call(&state, bad_resume).await.code(),
        "invalid_last_event_id"
    );

    // Readiness without an LLM (extractive mode) and the research gauges.
    let ready = call(&state, get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert!(ready.json()["checks"].get("llm").is_none());
    let metrics = call(&state, get("/metrics")).await.text;
    assert!(
        metrics.contains("aiex_research_sessions_running 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aiex_research_sessions_started_total 3"),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/v1/research/{id}\""), "{metrics}");
    state.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_llm_makes_the_server_not_ready() {
    let data = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let config = server_config(
        data.path(),
        None,
        &[("llm.url", &url), ("llm.model", "tiny")],
    );
    let state = state(config, false).await;
    let ready = call(&state, get("/readyz")).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.json()["checks"]["llm"], "failing");
    let metrics = call(&state, get("/metrics")).await.text;
    assert!(
        metrics.contains("aiex_llm_breaker_state{provider=\"default\",state=\"closed\"} 1"),
        "{metrics}"
    );
    state.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_routes_need_a_key_and_sessions_are_per_key() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let keys = format!("[\"{}\", \"{}\"]", hash_key("alice"), hash_key("bob"));
    let config = research_config(
        data.path(),
        repo.path(),
        None,
        &[("server.api_keys", &keys)],
    );
    let state = state(config, false).await;
    let body = json!({"question": "How are TOML table headers parsed?"});
    for request in [
        post_json("/v1/research", &body),
        get("/v1/sessions"),
        get("/v1/research/0123456789abcdef"),
        get("/v1/research/0123456789abcdef/events"),
        delete("/v1/research/0123456789abcdef"),
    ] {
        let answer = call(&state, request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
        assert_eq!(answer.code(), "missing_api_key");
    }
    let wrong = call(&state, with_key(get("/v1/sessions"), "mallory")).await;
    assert_eq!(wrong.code(), "invalid_api_key");

    let created = call(&state, with_key(post_json("/v1/research", &body), "alice")).await;
    let id = create_id(&created);
    let own = call(
        &state,
        with_key(get(&format!("/v1/research/{id}")), "alice"),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    // Another key sees neither the session nor its events.
    for request in [
        get(&format!("/v1/research/{id}")),
        get(&format!("/v1/research/{id}/events")),
        delete(&format!("/v1/research/{id}")),
    ] {
        let answer = call(&state, with_key(request, "bob")).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
    }
    let bobs = call(&state, with_key(get("/v1/sessions"), "bob"))
        .await
        .json();
    assert_eq!(bobs["total"], 0, "{bobs}");
    let alices = call(&state, with_key(get("/v1/sessions"), "alice"))
        .await
        .json();
    assert_eq!(alices["total"], 1, "{alices}");
    assert_eq!(alices["sessions"][0]["id"], id.as_str());
    state.begin_shutdown();
}

fn is_final(event: &SseEvent) -> bool {
    matches!(event.event.as_str(), "done" | "failed" | "error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_stream_resumes_after_a_drop_and_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let web = slow_serper(Duration::from_millis(250)).await;
    let config = research_config(data.path(), repo.path(), Some(web), &[]);
    let first = state(config.clone(), false).await;
    let (base, server) = start(&first).await;
    let client = reqwest::Client::new();

    // The creation streams the session; the client leaves after three events.
    let created = client
        .post(format!("{base}/v1/research"))
        .header("accept", "text/event-stream")
        .json(&json!({"question": "How do TOML tables and arrays of tables differ?", "depth": 2}))
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), 200);
    let id = created.headers()["x-session-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let mut seen = read_events(created, |events| events.len() >= 3).await;
    assert_eq!(ids_of(&seen), [1, 2, 3]);

    // Reconnected with `Last-Event-ID`: the events after 3, live; then the server stops
    // mid-session and the stream ends with `shutting_down` and the id to resume from.
    let url = format!("{base}/v1/research/{id}/events");
    let reconnected = client
        .get(&url)
        .header("last-event-id", "3")
        .send()
        .await
        .expect("reconnect");
    assert_eq!(reconnected.status(), 200);
    let mut stop_sent = false;
    let state_to_stop = first.clone();
    let second_part = read_events(reconnected, move |events| {
        if !stop_sent && events.iter().any(|e| e.event == "search_completed") {
            stop_sent = true;
            state_to_stop.begin_shutdown();
        }
        events.last().is_some_and(is_final)
    })
    .await;
    server.await.expect("first server stopped");
    let ending = second_part.last().expect("events");
    assert_eq!(ending.event, "error", "{second_part:?}");
    let ending_data: serde_json::Value = serde_json::from_str(&ending.data).expect("json");
    assert_eq!(ending_data["code"], "shutting_down");
    let delivered = &second_part[..second_part.len() - 1];
    assert!(
        !delivered.iter().any(|e| e.event == "done"),
        "the session must still be running when the server stops: {second_part:?}"
    );
    seen.extend(delivered.iter().cloned());
    let last_seen = seen.last().and_then(|e| e.id).expect("id");
    assert_eq!(ending_data["last_event_id"], last_seen);
    // Like every frame, the last one has an id: the one to resume after.
    assert_eq!(ending.id, Some(last_seen));
    drop(first);

    // A second server over the same data directory resumes the session at startup; the client
    // resumes its stream from the last id it saw and reaches the end.
    let second = state(config, false).await;
    let (base, _server) = start(&second).await;
    let resumed = client
        .get(format!("{base}/v1/research/{id}/events"))
        .header("last-event-id", last_seen.to_string())
        .send()
        .await
        .expect("reconnect after restart");
    assert_eq!(resumed.status(), 200);
    let rest = read_events(resumed, |events| events.last().is_some_and(is_final)).await;
    assert_eq!(
        rest.last().map(|e| e.event.as_str()),
        Some("done"),
        "{rest:?}"
    );
    let names: Vec<&str> = rest.iter().map(|e| e.event.as_str()).collect();
    assert!(names.contains(&"resumed"), "{names:?}");
    seen.extend(rest.iter().cloned());

    // Every event exactly once, in order, across the drop and the restart.
    let ids = ids_of(&seen);
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{ids:?}");
    let session: serde_json::Value = client
        .get(format!("{base}/v1/research/{id}"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(session["status"], "complete", "{session}");
    assert_eq!(session["last_event_id"], ids.len() as u64);
    assert!(session["report"]["references"].is_array(), "{session}");
    second.begin_shutdown();
}

/// With a real (tiny) local model: the server is ready, a session is planned and written by the
/// model, and the metrics count the model's requests and tokens. Protocol only, never facts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_with_a_local_llm_is_ready_and_metered() {
    let llama = tokio::task::spawn_blocking(|| aiex_tests::LlamaServer::start(&["-c", "4096"]))
        .await
        .expect("llama-server");
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = research_config(
        data.path(),
        repo.path(),
        None,
        &[
            ("llm.url", &llama.url),
            ("llm.model", "smollm2"),
            ("llm.max_retries", "0"),
            // Metering is checked here, not latency: a CPU shared with other tests must not turn
            // a slow answer into a counted failure.
            ("llm.first_token_timeout_ms", "300000"),
            ("llm.total_timeout_ms", "600000"),
            ("research.evidence_tokens", "500"),
            ("research.max_tokens", "1500"),
        ],
    );
    let state = state(config, false).await;
    let ready = call(&state, get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json()["checks"]["llm"], "ok");

    let created = call(
        &state,
        post_json(
            "/v1/research",
            &json!({"question": "How are TOML table headers parsed?", "sources": ["code"]}),
        ),
    )
    .await;
    let id = create_id(&created);
    let finished = wait_status(&state, &id, &["complete", "failed", "cancelled"], 300).await;
    assert_eq!(finished["status"], "complete", "{finished}");
    assert_eq!(finished["report"]["synthesis"], "llm", "{finished}");
    assert!(finished["usage"]["output_tokens"].as_u64().expect("tokens") > 0);

    let metrics = call(&state, get("/metrics")).await.text;
    let value = |name: &str| -> f64 {
        let prefix = format!("{name}{{provider=\"default\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
    };
    assert!(value("aiex_llm_requests_total") >= 1.0);
    assert!(value("aiex_llm_input_tokens_total") > 0.0);
    assert!(value("aiex_llm_output_tokens_total") > 0.0);
    assert_eq!(
        value("aiex_llm_failures_total"),
        0.0,
        "a failed LLM call: {finished}\n{metrics}"
    );
    state.begin_shutdown();
}
