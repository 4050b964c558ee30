//! The HTTP API: routes without a socket (`oneshot`), streams over a real socket, security.

mod batch;
mod clients;
mod grep;
mod mcp;
mod openai;
mod research;
mod resume;
mod routes;
mod security;
mod snapshots;
mod streams;
mod web;

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;

use aiex_api::server::{app, serve, AppState, ServerOptions};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A configuration for a server over `data`, with `root` as its only allowed root.
pub fn server_config(
    data: &Path,
    root: Option<&Path>,
    extra: &[(&str, &str)],
) -> aiex_config::Config {
    let roots = match root {
        Some(root) => format!("[\"{}\"]", root.display()),
        None => "[]".to_string(),
    };
    let mut all: Vec<(&str, &str)> = vec![("server.allowed_roots", roots.as_str())];
    all.extend_from_slice(extra);
    aiex_tests::config(data, &all)
}

pub async fn state(config: aiex_config::Config, run_jobs: bool) -> AppState {
    AppState::new(
        config,
        ServerOptions {
            run_jobs,
            ..Default::default()
        },
    )
    .await
    .expect("state starts")
}

/// A small repository: two languages, a few symbols.
pub fn small_repo(root: &Path) {
    aiex_tests::write_files(
        root,
        &[
            (
                "src/table.rs",
                "/// Parses a TOML table header such as `[server]`.\npub fn parse_toml_table(line: &str) -> Option<&str> {\n    line.strip_prefix('[')?.strip_suffix(']')\n}\n",
            ),
            (
                "lib/queue.py",
                "class JobQueue:\n    \"\"\"A first-in first-out queue of background jobs.\"\"\"\n\n    def push(self, job):\n        self.jobs.append(job)\n",
            ),
        ],
    );
}

/// Indexes `root` as `name` (keywords only) without the API.
pub fn index_keywords(config: &aiex_config::Config, root: &Path, name: &str) {
    let mut request = aiex_indexer::IndexRequest::new(root);
    request.name = Some(name.to_string());
    request.embed = false;
    aiex_indexer::index_directory(
        config,
        request,
        &mut |_| {},
        &std::sync::atomic::AtomicBool::new(false),
    )
    .expect("index");
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|err| panic!("{err}: {}", self.text))
    }

    /// The `error.code` of an error body.
    pub fn code(&self) -> String {
        let body = self.json();
        assert!(body["error"]["message"].is_string(), "{body}");
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One request through the router, no socket.
pub async fn call(state: &AppState, request: Request<Body>) -> Answer {
    let response = app(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

pub fn post_json(uri: &str, body: &serde_json::Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

/// One parsed SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub event: String,
    pub data: String,
}

/// Splits complete events off the front of `buffer` (comments skipped).
pub fn parse_sse(buffer: &mut String) -> Vec<SseEvent> {
    let mut events = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let block: String = buffer.drain(..end + 2).collect();
        let mut event = SseEvent {
            id: None,
            event: "message".to_string(),
            data: String::new(),
        };
        let mut any = false;
        for line in block.lines() {
            if let Some(id) = line.strip_prefix("id:") {
                event.id = id.trim().parse().ok();
                any = true;
            } else if let Some(name) = line.strip_prefix("event:") {
                event.event = name.trim().to_string();
                any = true;
            } else if let Some(data) = line.strip_prefix("data:") {
                event.data.push_str(data.trim_start());
                any = true;
            }
        }
        if any {
            events.push(event);
        }
    }
    events
}

/// Serves `state` on a free loopback port; returns its base URL.
pub async fn start(state: &AppState) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = state.clone();
    let handle = tokio::spawn(async move {
        let router = app(served.clone());
        serve(
            served,
            router,
            listener,
            std::future::pending(),
            Duration::from_secs(30),
        )
        .await
        .expect("serve");
    });
    (format!("http://{addr}"), handle)
}

/// Reads events from `response` until `stop` says so or the stream ends.
pub async fn read_events(
    response: reqwest::Response,
    mut stop: impl FnMut(&[SseEvent]) -> bool,
) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(120), body.next())
        .await
        .expect("an event within two minutes")
    {
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        events.extend(parse_sse(&mut buffer));
        if stop(&events) {
            break;
        }
    }
    events
}
