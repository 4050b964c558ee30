//! The OpenAI-compatible chat routes: models, completions streamed and not, errors in OpenAI's
//! shape, keys, a client that leaves mid-stream; then the SSE details browsers need (`retry:`,
//! 204 after the final event, stream tokens). The official `openai` Python package drives the
//! same routes in `clients.rs`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use serde_json::json;

use aiex_api::server::auth::hash_key;
use aiex_api::server::AppState;

use super::research::{research_config, slow_serper, with_key};
use super::{call, get, parse_sse, post_json, read_events, start, state, SseEvent};

const QUESTION: &str = "How are TOML table headers parsed?";

fn chat(model: &str, stream: bool) -> serde_json::Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Hi! Ask me about your code."},
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]}
        ],
        "stream": stream,
        "temperature": 0.3,
        "stream_options": {"include_usage": true},
        "user": "someone"
    })
}

/// The `data:` payloads of a chat stream, JSON parsed (`[DONE]` kept as a string).
fn chat_frames(events: &[SseEvent]) -> Vec<serde_json::Value> {
    events
        .iter()
        .map(|event| {
            if event.data == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(&event.data).expect("json chunk")
            }
        })
        .collect()
}

fn joined(frames: &[serde_json::Value], field: &str) -> String {
    frames
        .iter()
        .filter_map(|frame| frame["choices"][0]["delta"][field].as_str())
        .collect()
}

async fn wait_closed(state: &AppState) {
    for _ in 0..100 {
        if state.streams.open_streams.load(Ordering::Relaxed) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "open streams: {}",
        state.streams.open_streams.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_answer_with_a_research_session() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = research_config(data.path(), repo.path(), None, &[]);
    let state = state(config, false).await;

    let models = call(&state, get("/v1/models")).await;
    assert_eq!(models.status, StatusCode::OK, "{}", models.text);
    let models = models.json();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|model| model["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["aiex-research", "aiex-search"]);
    assert!(models["data"][0]["description"].as_str().is_some());

    // Not streamed: one `chat.completion`, stored as a session like any other.
    let answer = call(
        &state,
        post_json("/v1/chat/completions", &chat("aiex-search", false)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let session = answer.headers["x-session-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let completion = answer.json();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["id"], format!("chatcmpl-{session}"));
    assert_eq!(completion["system_fingerprint"], session.as_str());
    assert_eq!(completion["model"], "aiex-search");
    let message = &completion["choices"][0]["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    let content = message["content"].as_str().expect("content");
    assert!(content.contains("## References"), "{content}");
    assert!(content.contains("src/table.rs:"), "{content}");
    let reasoning = message["reasoning_content"].as_str().expect("reasoning");
    assert!(reasoning.contains("Plan:"), "{reasoning}");
    assert!(reasoning.contains("Searched"), "{reasoning}");
    assert!(
        reasoning.contains("earlier messages"),
        "earlier turns are noted: {reasoning}"
    );
    assert_eq!(completion["usage"]["total_tokens"], 0, "no LLM configured");
    let stored = call(&state, get(&format!("/v1/research/{session}"))).await;
    let stored = stored.json();
    assert_eq!(stored["status"], "complete", "{stored}");
    assert_eq!(stored["question"], QUESTION);
    assert_eq!(
        stored["report"]["sections"].as_array().map(Vec::len),
        Some(1)
    );

    // Unknown fields are ignored; unknown models and bad bodies answer in OpenAI's shape.
    let unknown = call(
        &state,
        post_json("/v1/chat/completions", &chat("gpt-4o", false)),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let error = unknown.json();
    assert_eq!(error["error"]["code"], "model_not_found", "{error}");
    assert_eq!(error["error"]["param"], "model");
    assert!(error["error"]["type"].is_string());
    assert!(error["error"]["message"].is_string());
    for body in [
        json!({"model": "aiex-research"}),
        json!({"model": "aiex-research", "messages": [{"role": "system", "content": "x"}]}),
        json!({"model": "aiex-research", "messages": [{"role": "user", "content": "   "}]}),
        json!({"model": 3, "messages": []}),
    ] {
        let bad = call(&state, post_json("/v1/chat/completions", &body)).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{body}: {}", bad.text);
        let error = bad.json();
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        assert!(error["error"].get("param").is_some(), "{error}");
    }
    let not_json = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .expect("request");
    assert_eq!(call(&state, not_json).await.status, StatusCode::BAD_REQUEST);

    // Streamed over a socket: role, reasoning, content, references, finish, usage, [DONE].
    let (base, _server) = start(&state).await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat("aiex-research", true))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/event-stream"));
    let session = response.headers()["x-session-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let events = read_events(response, |_| false).await;
    let frames = chat_frames(&events);
    assert_eq!(frames.last(), Some(&json!("[DONE]")), "{frames:?}");
    let chunks = &frames[..frames.len() - 1];
    for chunk in chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        assert_eq!(chunk["id"], format!("chatcmpl-{session}"));
        assert_eq!(chunk["system_fingerprint"], session.as_str());
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content = joined(chunks, "content");
    assert!(content.contains("## References"), "{content}");
    assert!(
        content.find("## References") > content.find("## "),
        "the report's text comes before its references: {content}"
    );
    assert!(joined(chunks, "reasoning_content").contains("Plan:"));
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop", "{finish}");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]), "{usage}");
    assert_eq!(usage["usage"]["total_tokens"], 0, "{usage}");
    wait_closed(&state).await;
    let stored = call(&state, get(&format!("/v1/research/{session}"))).await;
    assert_eq!(stored.json()["status"], "complete");
    state.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_client_that_leaves_leaves_the_session_running() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let web = slow_serper(Duration::from_millis(300)).await;
    let config = research_config(data.path(), repo.path(), Some(web), &[]);
    let state = state(config, false).await;
    let (base, _server) = start(&state).await;
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat("aiex-research", true))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let session = response.headers()["x-session-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let first = read_events(response, |events| events.len() >= 2).await;
    assert!(first.len() >= 2, "{first:?}");
    // `read_events` dropped the response: the client is gone, its stream closes.
    wait_closed(&state).await;
    // The session runs to its end and its log is whole: 1..=n, `done` last.
    let mut status = serde_json::Value::Null;
    for _ in 0..600 {
        status = call(&state, get(&format!("/v1/research/{session}")))
            .await
            .json();
        if status["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["status"], "complete", "{status}");
    let replay = call(&state, get(&format!("/v1/research/{session}/events"))).await;
    let mut text = replay.text.clone();
    let events = parse_sse(&mut text);
    let ids: Vec<u64> = events.iter().filter_map(|event| event.id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        events.last().map(|event| event.event.as_str()),
        Some("done")
    );
    wait_closed(&state).await;
    state.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_routes_need_a_key_and_answer_errors_in_openai_shape() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let keys = format!("[\"{}\"]", hash_key("alice"));
    let config = research_config(
        data.path(),
        repo.path(),
        None,
        &[("server.api_keys", &keys)],
    );
    let state = state(config, false).await;
    for request in [
        get("/v1/models"),
        post_json("/v1/chat/completions", &chat("aiex-search", false)),
    ] {
        let answer = call(&state, request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
        let error = answer.json();
        assert_eq!(error["error"]["code"], "missing_api_key", "{error}");
        assert_eq!(error["error"]["type"], "authentication_error", "{error}");
        assert!(error["error"].get("param").is_some(), "{error}");
    }
    let models = call(&state, with_key(get("/v1/models"), "alice")).await;
    assert_eq!(models.status, StatusCode::OK);
    let answer = call(
        &state,
        with_key(
            post_json("/v1/chat/completions", &chat("aiex-search", false)),
            "alice",
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let session = answer.headers["x-session-id"].to_str().expect("ascii");
    // The session is the key's own.
    let sessions = call(&state, with_key(get("/v1/sessions"), "alice"))
        .await
        .json();
    assert_eq!(sessions["sessions"][0]["id"], session, "{sessions}");
    state.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_suit_browsers_retry_204_and_stream_tokens() {
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
    let (base, _server) = start(&state).await;
    let client = reqwest::Client::new();
    let create = |key: &'static str| {
        client
            .post(format!("{base}/v1/research"))
            .bearer_auth(key)
            .json(&json!({"question": QUESTION}))
            .send()
    };
    let created = create("alice").await.expect("create");
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let other = create("alice").await.expect("create");
    let other_id = other.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();

    // The stream starts with `retry:` and runs to `done`.
    let url = format!("{base}/v1/research/{id}/events");
    let text = client
        .get(&url)
        .bearer_auth("alice")
        .send()
        .await
        .expect("events")
        .text()
        .await
        .expect("text");
    assert!(text.starts_with("retry: 3000\n"), "{text}");
    let mut buffer = text.clone();
    let events = parse_sse(&mut buffer);
    let last = events.last().expect("events");
    assert_eq!(last.event, "done");
    let last_id = last.id.expect("id");

    // A resume after the final event: 204, so an `EventSource` stops; before it, the rest.
    let resumed = client
        .get(&url)
        .bearer_auth("alice")
        .header("last-event-id", last_id.to_string())
        .send()
        .await
        .expect("resume");
    assert_eq!(resumed.status(), 204);
    let before = client
        .get(&url)
        .bearer_auth("alice")
        .header("last-event-id", (last_id - 1).to_string())
        .send()
        .await
        .expect("resume");
    assert_eq!(before.status(), 200);
    let mut rest = before.text().await.expect("text");
    assert_eq!(parse_sse(&mut rest).len(), 1);

    // A stream token: issued to the owner, opens that session's stream only, never another
    // route; a guessed one is refused.
    let issued = client
        .post(format!("{base}/v1/research/{id}/stream-token"))
        .bearer_auth("alice")
        .send()
        .await
        .expect("token");
    assert_eq!(issued.status(), 201);
    let issued: serde_json::Value = issued.json().await.expect("json");
    let token = issued["token"].as_str().expect("token").to_string();
    assert_eq!(issued["expires_in"], 300);
    assert_eq!(
        issued["events"],
        format!("/v1/research/{id}/events?token={token}")
    );
    let by_token = client
        .get(format!("{base}{}", issued["events"].as_str().expect("url")))
        .send()
        .await
        .expect("events");
    assert_eq!(by_token.status(), 200);
    let mut by_token = by_token.text().await.expect("text");
    assert_eq!(parse_sse(&mut by_token).len(), events.len());
    for refused in [
        format!("{base}/v1/research/{other_id}/events?token={token}"),
        format!("{base}/v1/research/{id}?token={token}"),
        format!("{base}/v1/sessions?token={token}"),
        format!("{base}/v1/research/{id}/events?token=st_guessed"),
    ] {
        let answer = client.get(&refused).send().await.expect("send");
        assert_eq!(answer.status(), 401, "{refused}");
    }
    let stranger = client
        .post(format!("{base}/v1/research/{id}/stream-token"))
        .bearer_auth("bob")
        .send()
        .await
        .expect("token");
    assert_eq!(stranger.status(), 404);

    let mut live = client
        .get(&url)
        .bearer_auth("alice")
        .send()
        .await
        .expect("events")
        .bytes_stream();
    assert!(live.next().await.is_some());
    drop(live);
    state.begin_shutdown();
}
