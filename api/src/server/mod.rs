//! The HTTP API: [`app`] builds the router over an [`AppState`] (testable without a socket with
//! `tower::ServiceExt::oneshot`), [`serve`] runs it on a listener until the shutdown signal.
//!
//! Routes: `POST /v1/search` (JSON, or SSE with `Accept: text/event-stream`), `GET
//! /v1/collections`, `/v1/index/jobs` (create, list, get, cancel, events as SSE), `/v1/research`
//! (create, get, cancel, events as SSE; see [`research`]), `GET /v1/sessions`, `/v1/history`,
//! `/v1/bookmarks`, `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /openapi.json`, MCP's
//! streamable HTTP at `/mcp` ([`crate::mcp::http`]), and the web page at `/` (see [`web`]).
//!
//! Layers, outermost first: CORS (closed unless origins are configured), metrics per matched
//! route, a declared body length limit (413 before the body is read), a URL query size limit
//! (414), a request timeout (504; streams are not timed once their
//! headers are sent), a body size limit (413); `/v1/*` and `/metrics` also require a bearer key
//! when keys are configured (401) and are rate-limited per key (429 with `retry-after`).

pub mod auth;
pub mod engine_slot;
pub mod error;
pub mod jobs;
pub mod llm;
pub mod metrics;
pub mod openapi;
pub mod paths;
pub mod qdrant;
pub mod research;
pub mod research_stream;
pub mod routes;
pub mod server_file;
pub mod stream;
pub mod users;
pub mod web;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::service::TowerToHyperService;
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::engine::EngineParts;
use crate::server::auth::{Auth, FailedAuthLimiter};
use crate::server::engine_slot::EngineSlot;
pub use crate::server::error::{ApiError, ServerError};
use crate::server::jobs::{JobManager, JobOptions};
use crate::server::metrics::Metrics;
use crate::server::paths::AllowedRoots;
use crate::server::research::ResearchManager;
use crate::server::stream::StreamContext;
use crate::server::users::UserStore;

/// A boxed future that can cross threads.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A readiness check `/readyz` runs besides the index's (LLM providers, …).
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &str;
    /// Ok, or what is wrong (logged, never sent).
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// How the state is started.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Whether indexing jobs run (false: they are accepted and stay queued).
    pub run_jobs: bool,
    /// The local owner token advertised in `server.json` ([`server_file`]), accepted as a
    /// credential with every right.
    pub local_token: Option<aiex_config::Secret>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            run_jobs: true,
            local_token: None,
        }
    }
}

/// Everything the handlers share. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

/// The parts of the [`AppState`].
pub struct StateInner {
    pub config: Arc<aiex_config::Config>,
    /// The search engine, rebuilt when collections change.
    pub engine: Arc<EngineSlot>,
    pub jobs: JobManager,
    /// Research sessions started here (resumed at startup when the server stopped mid-way).
    pub research: Arc<ResearchManager>,
    pub users: Arc<UserStore>,
    pub metrics: Metrics,
    pub auth: Auth,
    /// Requests refused for their key, per client address.
    pub failed_auth: FailedAuthLimiter,
    pub allowed_roots: AllowedRoots,
    /// Keep-alive, shutdown signal and open-stream count of every SSE stream.
    pub streams: StreamContext,
    /// Checks `/readyz` runs besides the index's.
    pub readiness: RwLock<Vec<Arc<dyn ReadinessCheck>>>,
    /// Writes search history; ends after a last write at shutdown.
    flusher: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Deref for AppState {
    type Target = StateInner;

    fn deref(&self) -> &StateInner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("auth", &self.auth)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Starts the state: search engine parts, jobs (persisted ones queued again), stores.
    /// Must be called within a tokio runtime.
    pub async fn new(
        config: aiex_config::Config,
        options: ServerOptions,
    ) -> Result<AppState, ServerError> {
        let config = Arc::new(config);
        let server = &config.server;
        let parts = EngineParts::new(&config)
            .map_err(|err| ServerError::Serve(std::io::Error::other(err.to_string())))?;
        let engine = Arc::new(EngineSlot::new(Arc::clone(&config), parts));
        let shutdown = CancellationToken::new();
        let server_dir = config.data_dir.join("server");
        let roots = server.allowed_roots.clone();
        let allowed_roots = tokio::task::spawn_blocking(move || AllowedRoots::new(&roots))
            .await
            .map_err(|err| ServerError::Serve(std::io::Error::other(err.to_string())))??;
        let jobs = JobManager::start(
            Arc::clone(&config),
            JobOptions {
                dir: Some(server_dir.join("jobs")),
                concurrency: server.job_concurrency,
                run: options.run_jobs,
                roots: Some(allowed_roots.clone()),
                shared: true,
            },
            Some(Arc::clone(&engine)),
            shutdown.clone(),
        )
        .await?;
        let users = Arc::new(UserStore::new(
            server_dir.join("users"),
            server.history_limit,
        ));
        let flusher = tokio::spawn(Arc::clone(&users).flush_every(shutdown.clone()));
        let llm_opt = aiex_llm::Llm::from_config(&config.llm)?;
        let metrics = Metrics::default();
        let mut readiness: Vec<Arc<dyn ReadinessCheck>> = Vec::new();
        if let Some(llm) = &llm_opt {
            readiness.push(Arc::new(llm::LlmReadiness::new(llm.clone())));
            metrics.add_hook(Arc::new(llm::LlmMetrics::new(llm.clone())));
        }
        if config.vector.backend == aiex_config::VectorBackend::Server {
            let qdrant = qdrant::QdrantHealth::new(Arc::clone(&config));
            readiness.push(qdrant.clone());
            metrics.add_hook(qdrant);
        }
        let research = ResearchManager::start(
            Arc::clone(&config),
            Arc::clone(&engine),
            llm_opt,
            shutdown.clone(),
        )
        .await;
        metrics.add_hook(Arc::new(llm::ResearchMetrics::new(Arc::clone(&research))));
        Ok(AppState(Arc::new(StateInner {
            users,
            research,
            flusher: parking_lot::Mutex::new(Some(flusher)),
            metrics,
            auth: match &options.local_token {
                Some(token) => Auth::from_config(server).with_local_owner(token.expose()),
                None => Auth::from_config(server),
            },
            failed_auth: FailedAuthLimiter::new(server.failed_auth_per_minute),
            allowed_roots,
            streams: StreamContext::new(Duration::from_secs(server.keep_alive_secs), shutdown),
            readiness: RwLock::new(readiness),
            engine,
            jobs,
            config,
        })))
    }

    /// Ends every open stream (with a final `error` event coded `shutting_down`), stops running
    /// jobs and research sessions at their next checkpoint (they resume at the next start), and
    /// stops `serve`.
    pub fn begin_shutdown(&self) {
        self.streams.shutdown.cancel();
        self.research.begin_shutdown();
    }

    /// Waits, at most `timeout`, for running jobs to stop and history to be written after
    /// [`AppState::begin_shutdown`].
    pub async fn wait_stopped(&self, timeout: Duration) {
        self.jobs.wait_stopped(timeout).await;
        self.research.wait_stopped(timeout).await;
        let flusher = self.flusher.lock().take();
        if let Some(flusher) = flusher {
            let _ = tokio::time::timeout(timeout, flusher).await;
        }
    }

    /// Adds a check to `/readyz`.
    pub fn add_readiness_check(&self, check: Arc<dyn ReadinessCheck>) {
        self.readiness.write().push(check);
    }
}

/// Refuses a non-loopback address without API keys.
pub fn check_bind(addr: SocketAddr, server: &aiex_config::ServerConfig) -> Result<(), ServerError> {
    if !addr.ip().is_loopback() && server.api_keys.is_empty() {
        return Err(ServerError::KeysRequired { addr });
    }
    Ok(())
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

async fn handle_layer_error(err: tower::BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the request took too long",
        )
    } else {
        ApiError::internal(err)
    }
}

/// Refuses URLs whose query string is longer than `server.max_query_bytes`.
async fn limit_query(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let too_long = request
        .uri()
        .query()
        .is_some_and(|query| query.len() > state.config.server.max_query_bytes);
    if too_long {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "query_too_long",
            "the url query string is too long",
        )
        .into_response();
    }
    next.run(request).await
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-session-id"),
                header::LOCATION,
                header::RETRY_AFTER,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// The routes that need a key (when keys are configured), MCP's streamable HTTP at `/mcp`
/// among them.
fn protected_routes(state: &AppState) -> Router<AppState> {
    use routes::{grep, jobs, research, search, system, users};
    Router::new()
        .route("/v1/search", post(search::search))
        .route("/v1/grep", post(grep::grep))
        .route("/v1/collections", get(search::collections))
        .route("/v1/index/jobs", post(jobs::create).get(jobs::list))
        .route("/v1/index/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/v1/index/jobs/{id}/events", get(jobs::events))
        .route("/v1/research", post(research::create))
        .route(
            "/v1/research/{id}",
            get(research::get).delete(research::cancel),
        )
        .route("/v1/research/{id}/resume", post(research::resume))
        .route("/v1/research/{id}/events", get(research::events))
        .route(
            "/v1/research/{id}/stream-token",
            post(research::stream_token),
        )
        .route("/v1/sessions", get(research::sessions))
        .route(
            "/v1/history",
            get(users::history).delete(users::clear_history),
        )
        .route(
            "/v1/bookmarks",
            get(users::bookmarks).post(users::add_bookmark),
        )
        .route("/v1/bookmarks/{id}", delete(users::remove_bookmark))
        .route("/metrics", get(system::metrics))
        .nest_service("/mcp", crate::mcp::http::service(state))
}

/// The routes anyone may call.
fn public_routes() -> Router<AppState> {
    use routes::system;
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/openapi.json", get(system::openapi))
}

/// The API over `state`, with every layer.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The API with `extra` routes behind the same key check
/// and rate limit as `/v1/*`, and every other layer.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let server = &state.config.server;
    let protected = protected_routes(&state)
        .merge(extra)
        .route_layer(from_fn_with_state(state.clone(), auth::require_key))
        .route_layer(from_fn_with_state(state.clone(), auth::limit_failed_keys));
    let router = Router::new()
        .merge(protected)
        .merge(public_routes())
        .merge(routes::openai::routes(&state))
        .merge(web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(server.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_layer_error))
                .timeout(Duration::from_millis(server.request_timeout_ms)),
        )
        .layer(from_fn_with_state(state.clone(), limit_query))
        .layer(from_fn_with_state(state.clone(), limit_declared_length))
        .layer(from_fn_with_state(state.clone(), metrics::track));
    let router = match cors(&server.cors_allowed_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.with_state(state)
}

/// Serves `router` (built over `state` by [`app`] or [`app_with`]) on `listener` until
/// `state.begin_shutdown()` (or `signal`), then lets open streams end with their final event and
/// waits (at most `drain`) for running jobs to stop.
pub async fn serve(
    state: AppState,
    router: Router,
    listener: tokio::net::TcpListener,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> Result<(), ServerError> {
    if let Ok(addr) = listener.local_addr() {
        check_bind(addr, &state.config.server)?;
    }
    let shutdown = state.streams.shutdown.clone();
    let trigger = state.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = signal => trigger.begin_shutdown(),
            () = shutdown.cancelled() => {}
        }
    });
    // Forget idle keys' limiter state now and then.
    let shrinker = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    shrinker.auth.shrink();
                    shrinker.failed_auth.shrink();
                }
                () = shrinker.streams.shutdown.cancelled() => return,
            }
        }
    });
    let result = accept_connections(&state, router, listener, drain).await;
    state.wait_stopped(drain).await;
    result
}

/// Accepts connections until the shutdown, at most `server.max_connections` at a time (further
/// ones wait in the listen queue), each closed when its request headers take longer than
/// `server.header_read_timeout_ms`; every request carries the client's address
/// ([`ConnectInfo`]). At the shutdown, connections end gracefully (at most `drain`).
async fn accept_connections(
    state: &AppState,
    router: Router,
    listener: tokio::net::TcpListener,
    drain: Duration,
) -> Result<(), ServerError> {
    let server = &state.config.server;
    let slots = Arc::new(tokio::sync::Semaphore::new(server.max_connections.max(1)));
    let header_timeout = Duration::from_millis(server.header_read_timeout_ms);
    let stopped = state.streams.shutdown.clone();
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = stopped.cancelled() => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped.cancelled() => break,
        };
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<_>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                request
            },
        ));
        let shutdown = stopped.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = ConnectionBuilder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!(error = %err, client = %remote, "connection ended with an error");
            }
        });
    }
    connections.close();
    if tokio::time::timeout(drain, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period");
    }
    Ok(())
}

/// Refuses at once a request whose declared `content-length` is above `server.max_body_bytes`,
/// before any of its body is read (the body limit alone would wait for a body that never comes).
async fn limit_declared_length(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let limit = u64::try_from(state.config.server.max_body_bytes).unwrap_or(u64::MAX);
    if declared.is_some_and(|length| length > limit) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        )
        .into_response();
    }
    next.run(request).await
}
