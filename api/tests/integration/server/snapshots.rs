//! Snapshots of what clients read: JSON bodies, an SSE event sequence and a research report, with
//! ids, times and timings redacted. A change to any of them shows up here as a diff to review.

use std::time::Duration;

use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use super::{call, get, index_keywords, parse_sse, post_json, server_config, small_repo, state};

/// Keys whose values differ between runs.
const VOLATILE: &[&str] = &[
    "id",
    "at_ms",
    "took_ms",
    "total_ms",
    "timings",
    "retrieved_at",
    "created_at",
    "started_at",
    "updated_at",
    "session",
    "size_bytes",
    "generation",
    "last_event_id",
    "links",
];

/// `value` with every volatile key's value replaced by `"[redacted]"`, at any depth.
fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    if VOLATILE.contains(&key.as_str()) && !value.is_null() {
                        (key, Value::String("[redacted]".into()))
                    } else {
                        (key, redact(value))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// `text` with RFC 3339 times (`2026-01-02T03:04:05Z`) and the session id replaced.
fn redact_text(text: &str, session: &str) -> String {
    let text = text.replace(session, "[session]");
    let bytes = text.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let fits = bytes.len() >= at + shape.len()
            && shape.iter().enumerate().all(|(offset, want)| {
                let got = bytes[at + offset];
                match want {
                    b'd' => got.is_ascii_digit(),
                    other => got == *other,
                }
            });
        if fits {
            out.push_str("[time]");
            at += shape.len();
        } else {
            let ch = text[at..].chars().next().unwrap_or(' ');
            out.push(ch);
            at += ch.len_utf8().max(1);
        }
    }
    out
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_bodies_and_event_sequence() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    let config = server_config(data.path(), None, &[("search.mode", "keyword")]);
    let state = state(config.clone(), true).await;

    let none = call(&state, post_json("/v1/search", &json!({"query": "toml"}))).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let bad = call(
        &state,
        post_json("/v1/search", &json!({"query": "toml", "mode": "fuzzy"})),
    )
    .await;

    let indexed = config.clone();
    let root = repo.path().to_path_buf();
    tokio::task::spawn_blocking(move || index_keywords(&indexed, &root, "demo"))
        .await
        .expect("index");

    let found = call(
        &state,
        post_json(
            "/v1/search",
            &json!({"query": "parse toml table", "limit": 3}),
        ),
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let collections = call(&state, get("/v1/collections")).await;
    assert_eq!(collections.status, StatusCode::OK, "{}", collections.text);

    let streamed = call(
        &state,
        Request::post("/v1/search")
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(axum::body::Body::from(
                json!({"query": "job queue", "limit": 3}).to_string(),
            ))
            .expect("request"),
    )
    .await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);
    let mut buffer = streamed.text.clone();
    let events: Vec<Value> = parse_sse(&mut buffer)
        .into_iter()
        .map(|event| {
            let data: Value =
                serde_json::from_str(&event.data).unwrap_or(Value::String(event.data));
            redact(json!({"event": event.event, "has_id": event.id.is_some(), "data": data}))
        })
        .collect();

    settings().bind(|| {
        insta::assert_json_snapshot!("search_no_collections", redact(none.json()));
        insta::assert_json_snapshot!(
            "search_bad_mode",
            json!({"status": bad.status.as_u16(), "body": redact(bad.json())})
        );
        insta::assert_json_snapshot!("search_keyword_body", redact(found.json()));
        insta::assert_json_snapshot!("collections_body", redact(collections.json()));
        insta::assert_json_snapshot!("search_sse_events", events);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extractive_research_report() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    let config = server_config(
        data.path(),
        None,
        &[
            ("search.mode", "keyword"),
            ("research.search_concurrency", "1"),
        ],
    );
    index_keywords(&config, repo.path(), "demo");
    let state = state(config, true).await;

    let created = call(
        &state,
        post_json(
            "/v1/research",
            &json!({"question": "How does the job queue take new jobs?"}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_str().expect("id").to_string();

    let mut body = Value::Null;
    for _ in 0..600 {
        let answer = call(&state, get(&format!("/v1/research/{id}?format=md"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        body = answer.json();
        if body["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(body["status"], "complete", "{body}");
    let text = redact_text(body["report_text"].as_str().expect("report text"), &id);
    let mut report = redact(body["report"].take());
    // The report's JSON, without the Markdown already snapshotted as text.
    if let Some(map) = report.as_object_mut() {
        map.remove("markdown");
    }

    settings().bind(|| {
        insta::assert_snapshot!("research_report_md", text);
        insta::assert_json_snapshot!("research_report_json", report);
    });
}
