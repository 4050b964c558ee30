//! `POST /v1/search` (JSON, or the coordinator's events as SSE) and `GET /v1/collections`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aiex_search::SearchEvent;

use crate::engine::{check_search_input, SearchEngine, SearchParams};
use crate::server::auth::Caller;
use crate::server::engine_slot::EngineSlot;
use crate::server::error::{ApiError, ApiJson};
use crate::server::stream::{spawn_producer, sse_response, EventLog};
use crate::server::users::{now_secs, HistoryEntry};
use crate::server::AppState;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 2048;
/// Most hits one search may ask for.
pub const MAX_LIMIT: usize = 200;
/// Most entries in each list of a search request.
const MAX_LIST: usize = 64;

/// A search.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequestBody {
    /// Words, identifiers or a question.
    #[schema(min_length = 1, max_length = 2048)]
    pub query: String,
    /// `code`, `docs`, `web` (or `web:serper`, `web:tavily`, `web:searxng`); empty: every source.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Collections to search; empty: all.
    #[serde(default)]
    pub collections: Vec<String>,
    /// Languages to keep (`rust`, `python`, …).
    #[serde(default)]
    pub languages: Vec<String>,
    /// Glob on paths relative to the collection root.
    #[serde(default)]
    pub path: Option<String>,
    /// Number of hits (default `search.limit`).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// Web: only these domains.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Web: never these domains.
    #[serde(default)]
    pub exclude_domains: Vec<String>,
    /// Web: `day`, `week`, `month` or `year`.
    #[serde(default)]
    pub since: Option<String>,
    /// Local sources: `keyword`, `vector` or `hybrid` (default `search.mode`).
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(keyword|vector|hybrid)$")]
    pub mode: Option<aiex_config::SearchMode>,
}

/// A source that failed or timed out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceFailure {
    pub source: String,
    pub error: String,
}

/// The answer of a search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResponse {
    /// The fused, deduplicated hits, best first.
    #[schema(value_type = Vec<Object>)]
    pub hits: Vec<aiex_search::Hit>,
    /// Per-source timings and cache hits, fusion and total time.
    #[schema(value_type = Object)]
    pub timings: aiex_search::event::Timings,
    pub failures: Vec<SourceFailure>,
    /// What the user should know about how sources answered.
    pub notes: Vec<String>,
}

pub(crate) fn validate(
    body: &SearchRequestBody,
    default_limit: usize,
) -> Result<SearchParams, ApiError> {
    let query = body.query.trim();
    if query.is_empty() {
        return Err(ApiError::bad_request("empty_query", "the query is empty"));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "query_too_long",
            format!("the query is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let limit = body.limit.unwrap_or(default_limit);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    for list in [
        &body.sources,
        &body.collections,
        &body.languages,
        &body.domains,
        &body.exclude_domains,
    ] {
        if list.len() > MAX_LIST {
            return Err(ApiError::bad_request(
                "too_many_values",
                format!("lists hold at most {MAX_LIST} values"),
            ));
        }
    }
    check_search_input(
        &body.languages,
        &body.sources,
        body.since.as_deref(),
        body.path.as_deref(),
    )
    .map_err(|err| ApiError::bad_request(err.code, err.message))?;
    Ok(SearchParams {
        query: query.to_string(),
        sources: body.sources.clone(),
        collections: body.collections.clone(),
        languages: body.languages.clone(),
        path_glob: body.path.clone(),
        limit,
        include_domains: body.domains.clone(),
        exclude_domains: body.exclude_domains.clone(),
        since: body.since.clone(),
        mode: body.mode,
    })
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// Searches code, docs and web sources at once; with `Accept: text/event-stream`, streams the
/// coordinator's events (`source_started`, `results`, `source_failed`, `merged`, `done`).
#[utoipa::path(
    post,
    path = "/v1/search",
    tag = "search",
    request_body = SearchRequestBody,
    responses(
        (status = 200, description = "The fused hits (JSON), or with `Accept: text/event-stream` the search's events, each frame's `data` a search event", content(
            (SearchResponse = "application/json"),
            (crate::server::openapi::SearchEventPayload = "text/event-stream"),
        )),
        (status = 400, description = "Invalid request", body = crate::server::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = crate::server::error::ErrorBody),
        (status = 422, description = "The body does not match the schema", body = crate::server::error::ErrorBody),
        (status = 401, description = "Missing, invalid or revoked key", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such collection, or no collections yet", body = crate::server::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SearchRequestBody>,
) -> Result<Response, ApiError> {
    let params = validate(&body, state.config.search.limit)?;
    let engine = engine_for(&state.engine, &params.collections).await?;
    let (search, _) = engine.prepare(&params, false);
    let mut receiver = engine.coordinator.search(search);
    if wants_event_stream(&headers) {
        let log = EventLog::in_memory(crate::server::stream::DEFAULT_WINDOW);
        let producer_log = Arc::clone(&log);
        let producer_state = state.clone();
        spawn_producer(Arc::clone(&log), async move {
            let mut hits = 0;
            while let Some(event) = receiver.recv().await {
                match &event {
                    SearchEvent::Merged { hits: merged, .. } => hits = merged.len(),
                    SearchEvent::Done { timings, .. } => {
                        producer_state.metrics.record_search(timings)
                    }
                    _ => {}
                }
                producer_log.push(&event);
            }
            remember(&producer_state, &caller, &params, hits).await;
        });
        return Ok(sse_response(log, 0, &state.streams));
    }
    let response = collect(receiver).await;
    state.metrics.record_search(&response.timings);
    remember(&state, &caller, &params, response.hits.len()).await;
    Ok(ApiJson(response).into_response())
}

/// The engine to search `collections` with (all when empty): rebuilt first when one of them
/// is new to it; refused when there are no collections or one is unknown.
pub(crate) async fn engine_for(
    slot: &EngineSlot,
    collections: &[String],
) -> Result<Arc<SearchEngine>, ApiError> {
    let mut engine = slot.get().await?;
    let knows_all = |engine: &SearchEngine| {
        !engine.coordinator.source_names().is_empty()
            && collections
                .iter()
                .all(|name| engine.collections.iter().any(|(known, _)| known == name))
    };
    if !knows_all(&engine) {
        // Collections indexed a moment ago (by a job, or another process) count at once.
        engine = slot.get_checked(true).await?;
    }
    if engine.coordinator.source_names().is_empty() {
        return Err(ApiError::not_found(
            "no_collections",
            "no collections yet: index a directory first",
        ));
    }
    for name in collections {
        if !engine.collections.iter().any(|(known, _)| known == name) {
            return Err(aiex_indexer::Error::CollectionNotFound { name: name.clone() }.into());
        }
    }
    Ok(engine)
}

/// A search's events gathered into one answer.
pub(crate) async fn collect(
    mut receiver: tokio::sync::mpsc::Receiver<SearchEvent>,
) -> SearchResponse {
    let mut response = SearchResponse {
        hits: Vec::new(),
        timings: aiex_search::event::Timings::default(),
        failures: Vec::new(),
        notes: Vec::new(),
    };
    while let Some(event) = receiver.recv().await {
        match event {
            SearchEvent::Results { notes, .. } => response.notes.extend(notes),
            SearchEvent::SourceFailed { source, error, .. } => {
                response.failures.push(SourceFailure { source, error });
            }
            SearchEvent::Merged { hits, .. } => response.hits = hits,
            SearchEvent::Done { timings, .. } => response.timings = timings,
            SearchEvent::SourceStarted { .. } => {}
        }
    }
    response
}

async fn remember(state: &AppState, caller: &Caller, params: &SearchParams, hits: usize) {
    let entry = HistoryEntry {
        query: params.query.clone(),
        sources: params.sources.clone(),
        at: now_secs(),
        hits,
    };
    if let Err(err) = state.users.record_query(caller, entry).await {
        tracing::warn!(error = %err, "search history not recorded");
    }
}

/// One collection.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionInfo {
    pub name: String,
    /// `code` or `docs`.
    pub kind: String,
    pub files: usize,
    pub chunks: usize,
    pub embedded_chunks: usize,
    pub vectors_complete: bool,
    pub generation: u64,
    pub size_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
}

impl From<aiex_indexer::CollectionStatus> for CollectionInfo {
    /// The collection's root directory stays on the server.
    fn from(status: aiex_indexer::CollectionStatus) -> Self {
        CollectionInfo {
            name: status.name,
            kind: status.kind.name().to_string(),
            files: status.files,
            chunks: status.chunks,
            embedded_chunks: status.embedded_chunks,
            vectors_complete: status.vectors_complete,
            generation: status.generation,
            size_bytes: status.size_bytes,
            model_id: status.model_id,
        }
    }
}

/// The collections.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionsResponse {
    pub collections: Vec<CollectionInfo>,
}

/// The indexed collections (code repositories and documentation sets).
#[utoipa::path(
    get,
    path = "/v1/collections",
    tag = "search",
    responses(
        (status = 200, description = "Every collection", body = CollectionsResponse),
        (status = 401, description = "Missing, invalid or revoked key", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn collections(
    State(state): State<AppState>,
) -> Result<ApiJson<CollectionsResponse>, ApiError> {
    let index_dir = aiex_indexer::IndexDir::new(state.config.index_dir());
    let config = Arc::clone(&state.config);
    let statuses = tokio::task::spawn_blocking(move || {
        // Server mode: every collection the cluster holds, including those indexed elsewhere
        // (without the server, the collections this node last saw).
        if let Err(err) = aiex_indexer::store::server::sync_cache(&config) {
            tracing::warn!("reading the collections' registry from Qdrant: {err}");
        }
        index_dir.status()
    })
    .await
    .map_err(ApiError::internal)??;
    let collections = statuses.into_iter().map(CollectionInfo::from).collect();
    Ok(ApiJson(CollectionsResponse { collections }))
}
