//! A local stand-in for a provider: an axum server on 127.0.0.1:0 that records every request and
//! answers with scripted replies in the provider's exact formats.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use tokio::sync::Notify;

use super::crate_under_test::web::ProviderConfig;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    /// The query string's parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The first value of the query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    hang: bool,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_owned(),
            hang: false,
        }
    }

    pub fn text(status: u16, content_type: &str, body: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type", content_type.to_owned())],
            body: body.to_owned(),
            hang: false,
        }
    }

    /// Never answers.
    pub fn hang() -> Self {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: String::new(),
            hang: true,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

type Responder = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

struct ServerState {
    requests: Mutex<Vec<Recorded>>,
    responder: Box<Responder>,
    hangs_dropped: AtomicUsize,
    hang_dropped: Notify,
}

/// Counts a hanging reply whose handler was dropped: the client went away.
struct HangGuard(Arc<ServerState>);

impl Drop for HangGuard {
    fn drop(&mut self) {
        self.0.hangs_dropped.fetch_add(1, Ordering::SeqCst);
        self.0.hang_dropped.notify_waiters();
    }
}

pub struct MockServer {
    pub url: String,
    state: Arc<ServerState>,
}

impl MockServer {
    /// A server whose `responder` gets each request and its 0-based number.
    pub async fn start(
        responder: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let state = Arc::new(ServerState {
            requests: Mutex::new(Vec::new()),
            responder: Box::new(responder),
            hangs_dropped: AtomicUsize::new(0),
            hang_dropped: Notify::new(),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockServer {
            url: format!("http://{address}"),
            state,
        }
    }

    /// A server that gives the n-th reply to the n-th request, and the last one from then on.
    pub async fn sequence(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty());
        MockServer::start(move |_, number| replies[number.min(replies.len() - 1)].clone()).await
    }

    /// A server that always gives the same reply.
    pub async fn always(reply: Reply) -> Self {
        MockServer::sequence(vec![reply]).await
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Waits until a hanging handler has been dropped because its client went away.
    pub async fn wait_for_dropped_hang(&self, limit: Duration) -> bool {
        let waited = tokio::time::timeout(limit, async {
            loop {
                let notified = self.state.hang_dropped.notified();
                if self.state.hangs_dropped.load(Ordering::SeqCst) > 0 {
                    return;
                }
                notified.await;
            }
        })
        .await;
        waited.is_ok()
    }
}

async fn handle(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method,
        path: uri.path().to_owned(),
        query: url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    };
    let number = {
        let mut requests = state.requests.lock().unwrap();
        requests.push(recorded.clone());
        requests.len() - 1
    };
    let reply = (state.responder)(&recorded, number);
    if reply.hang {
        let _guard = HangGuard(Arc::clone(&state));
        std::future::pending::<()>().await;
    }
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}

/// Settings that keep tests fast: tiny backoff and cooldowns, no rate limit.
pub fn fast_config(base_url: &str, keys: &[&str]) -> ProviderConfig {
    ProviderConfig {
        base_url: base_url.to_owned(),
        api_keys: keys.iter().map(|key| (*key).to_owned()).collect(),
        timeout: Duration::from_secs(5),
        max_retries: 2,
        requests_per_minute: 0,
        breaker_threshold: 5,
        breaker_cooldown: Duration::from_millis(100),
        backoff_base: Duration::from_millis(5),
    }
}

pub const SERPER_SEARCH: &str = include_str!("fixtures/serper_search.json");
pub const TAVILY_SEARCH: &str = include_str!("fixtures/tavily_search.json");
pub const SEARXNG_SEARCH: &str = include_str!("fixtures/searxng_search.json");
