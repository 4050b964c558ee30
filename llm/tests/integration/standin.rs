//! A local stand-in for the providers: serves scripted replies in each provider's exact wire
//! format (streamed chunk by chunk, optionally cut or left hanging), records the requests, and
//! notices when a client goes away.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiex_llm::{LlmConfig, LlmProviderConfig, LlmProviderKind};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_type: &'static str,
    /// Body pieces, each flushed on its own.
    pub chunks: Vec<String>,
    /// Pause before each piece.
    pub delay: Duration,
    /// After the pieces, break the connection (an error in the body stream).
    pub cut: bool,
    /// After the pieces, keep the connection open until the client leaves.
    pub hang: bool,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, chunks: Vec<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type,
            chunks,
            delay: Duration::ZERO,
            cut: false,
            hang: false,
        }
    }

    pub fn json(status: u16, body: Value) -> Self {
        Self::new(status, "application/json", vec![body.to_string()])
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn cut(mut self) -> Self {
        self.cut = true;
        self
    }

    pub fn hang(mut self) -> Self {
        self.hang = true;
        self
    }

    /// Keeps only the first `n` pieces.
    pub fn truncate(mut self, n: usize) -> Self {
        self.chunks.truncate(n);
        self
    }

    /// An OpenAI chat completion stream: a role chunk, one chunk per text, a finish chunk,
    /// the usage chunk when given, then `[DONE]`.
    pub fn openai_stream(texts: &[&str], usage: Option<(u64, u64)>) -> Self {
        let chunk = |delta: Value, finish: Value| {
            let chunk = json!({
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": "stand-in", "system_fingerprint": "fp",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
            });
            format!("data: {chunk}\n\n")
        };
        let mut chunks = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        chunks.extend(
            texts
                .iter()
                .map(|t| chunk(json!({"content": t}), Value::Null)),
        );
        chunks.push(chunk(json!({}), json!("stop")));
        if let Some((prompt, completion)) = usage {
            let chunk = json!({
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": "stand-in", "choices": [],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}
            });
            chunks.push(format!("data: {chunk}\n\n"));
        }
        chunks.push("data: [DONE]\n\n".to_owned());
        Self::new(200, "text/event-stream", chunks)
    }

    /// An OpenAI error body.
    pub fn openai_error(status: u16, message: &str, kind: &str, code: &str) -> Self {
        Self::json(
            status,
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        )
    }

    /// An Anthropic Messages event stream.
    pub fn anthropic_stream(texts: &[&str], input: u64, output: u64) -> Self {
        let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut chunks = vec![
            event(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                    "role": "assistant", "content": [], "model": "stand-in", "stop_reason": null,
                    "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": 1}}}),
            ),
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}}),
            ),
            event("ping", json!({"type": "ping"})),
        ];
        chunks.extend(texts.iter().map(|t| {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": t}}),
            )
        }));
        chunks.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        chunks.push(event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                   "stop_sequence": null}, "usage": {"output_tokens": output}}),
        ));
        chunks.push(event("message_stop", json!({"type": "message_stop"})));
        Self::new(200, "text/event-stream", chunks)
    }

    /// An Anthropic `error` event (as a stream piece).
    pub fn anthropic_error_event(kind: &str, message: &str) -> String {
        let data = json!({"type": "error", "error": {"type": kind, "message": message}});
        format!("event: error\ndata: {data}\n\n")
    }

    /// An Anthropic error body.
    pub fn anthropic_error(status: u16, kind: &str, message: &str) -> Self {
        Self::json(
            status,
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        )
    }

    /// An Ollama `/api/chat` NDJSON stream.
    pub fn ollama_stream(texts: &[&str], prompt: u64, eval: u64) -> Self {
        let mut chunks: Vec<String> = texts
            .iter()
            .map(|t| {
                let line = json!({"model": "stand-in", "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": t}, "done": false});
                format!("{line}\n")
            })
            .collect();
        let last = json!({"model": "stand-in", "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop",
            "total_duration": 1000, "load_duration": 10, "prompt_eval_count": prompt,
            "prompt_eval_duration": 100, "eval_count": eval, "eval_duration": 200});
        chunks.push(format!("{last}\n"));
        Self::new(200, "application/x-ndjson", chunks)
    }
}

/// A request the stand-in received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Option<Reply>>,
    seen: Mutex<Vec<Seen>>,
    disconnects: AtomicUsize,
    disconnected: Notify,
}

/// A running stand-in server.
#[derive(Clone)]
pub struct StandIn {
    pub url: String,
    shared: Arc<Shared>,
}

impl StandIn {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    /// Queues replies, served in order.
    pub fn push(&self, reply: Reply) -> &Self {
        self.shared.replies.lock().expect("lock").push_back(reply);
        self
    }

    /// The reply once the queue is empty.
    pub fn always(&self, reply: Reply) {
        *self.shared.fallback.lock().expect("lock") = Some(reply);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }

    pub fn requests(&self) -> usize {
        self.shared.seen.lock().expect("lock").len()
    }

    /// Waits until a streamed body was abandoned by its client.
    pub async fn wait_disconnect(&self, within: Duration) -> bool {
        let wait = async {
            while self.shared.disconnects.load(Ordering::SeqCst) == 0 {
                self.shared.disconnected.notified().await;
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }
}

/// Counts a body dropped before it was fully sent.
struct DropGuard {
    shared: Arc<Shared>,
    complete: bool,
}

impl DropGuard {
    fn mark_complete(&mut self) {
        self.complete = true;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.complete {
            self.shared.disconnects.fetch_add(1, Ordering::SeqCst);
            self.shared.disconnected.notify_waiters();
            self.shared.disconnected.notify_one();
        }
    }
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    shared.seen.lock().expect("lock").push(Seen {
        path,
        headers,
        body,
        at: Instant::now(),
    });
    let reply = shared
        .replies
        .lock()
        .expect("lock")
        .pop_front()
        .or_else(|| shared.fallback.lock().expect("lock").clone())
        .unwrap_or_else(|| Reply::json(500, json!({"error": "no reply scripted"})));

    let mut builder = Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type);
    for (name, value) in &reply.headers {
        builder = builder.header(name, value);
    }
    let guard = DropGuard {
        shared: Arc::clone(&shared),
        complete: false,
    };
    let state = (reply, 0usize, guard);
    let stream = futures_util::stream::unfold(state, |(reply, index, mut guard)| async move {
        if index == usize::MAX {
            return None;
        }
        if index < reply.chunks.len() {
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            let chunk = Bytes::from(reply.chunks[index].clone());
            return Some((Ok(chunk), (reply, index + 1, guard)));
        }
        if reply.hang {
            std::future::pending::<()>().await;
        }
        if reply.cut {
            // Let the pieces reach the client before the connection breaks.
            tokio::time::sleep(reply.delay.max(Duration::from_millis(50))).await;
            guard.mark_complete();
            return Some((
                Err(std::io::Error::other("cut by the stand-in")),
                (reply, usize::MAX, guard),
            ));
        }
        guard.mark_complete();
        None
    });
    builder
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A provider entry for tests.
pub fn provider(name: &str, kind: LlmProviderKind, url: &str) -> LlmProviderConfig {
    LlmProviderConfig {
        name: name.to_owned(),
        kind,
        base_url: url.to_owned(),
        api_key: Some("test-key".into()),
        model: "stand-in".to_owned(),
        ..LlmProviderConfig::default()
    }
}

/// A configuration with quick timeouts and retries over `providers`.
pub fn config(providers: Vec<LlmProviderConfig>) -> LlmConfig {
    LlmConfig {
        providers,
        connect_timeout_ms: 1_000,
        first_token_timeout_ms: 3_000,
        total_timeout_ms: 10_000,
        max_retries: 2,
        retry_base_ms: 20,
        retry_max_ms: 3_000,
        breaker_failures: 3,
        breaker_cooldown_ms: 400,
        max_tokens: 64,
        ..LlmConfig::default()
    }
}
