//! Liveness, readiness, metrics and the OpenAPI document.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::server::error::{ApiError, ApiJson};
use crate::server::metrics::write_metric;
use crate::server::AppState;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> ApiJson<Health> {
    ApiJson(Health {
        status: "ok".to_string(),
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Each check: `ok` or `failing` (details go to the server's log).
    pub checks: BTreeMap<String, String>,
}

/// Readiness: the index is readable, and every registered check (LLM providers, …) passes.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "system",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let index = state.engine.get().await;
    if let Err(err) = &index {
        tracing::warn!(error = %err, "readiness: index not readable");
    }
    checks.insert("index".to_string(), index.is_ok());
    let registered: Vec<_> = state.readiness.read().clone();
    for check in registered {
        let outcome = check.check().await;
        if let Err(message) = &outcome {
            tracing::warn!(check = check.name(), error = %message, "readiness check failing");
        }
        checks.insert(check.name().to_string(), outcome.is_ok());
    }
    let ready = checks.values().all(|ok| *ok);
    let body = Readiness {
        ready,
        checks: checks
            .into_iter()
            .map(|(name, ok)| (name, if ok { "ok" } else { "failing" }.to_string()))
            .collect(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, ApiJson(body)).into_response()
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)),
    security(("bearer" = []))
)]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::new();
    state.metrics.render(&mut out);
    write_cache_metrics(&mut out, &state);
    let index_dir = aiex_indexer::IndexDir::new(state.config.index_dir());
    let statuses = tokio::task::spawn_blocking(move || index_dir.status())
        .await
        .map_err(ApiError::internal)?;
    match statuses {
        Ok(statuses) => write_index_metrics(&mut out, &statuses),
        Err(err) => tracing::warn!(error = %err, "metrics: index status unreadable"),
    }
    let jobs: Vec<(String, f64)> = state
        .jobs
        .state_counts()
        .into_iter()
        .map(|(name, count)| (format!("state=\"{name}\""), count as f64))
        .collect();
    write_metric(
        &mut out,
        "aiex_index_jobs",
        "gauge",
        "Indexing jobs by state.",
        &jobs,
    );
    write_metric(
        &mut out,
        "aiex_open_streams",
        "gauge",
        "Event streams open now.",
        &[(
            String::new(),
            state.streams.open_streams.load(Ordering::Relaxed) as f64,
        )],
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// The search result cache: hits, misses, their ratio and the entries.
fn write_cache_metrics(out: &mut String, state: &AppState) {
    let (hits, misses) = state.engine.cache_counts();
    let ratio = if hits + misses == 0 {
        0.0
    } else {
        hits as f64 / (hits + misses) as f64
    };
    let entries = state
        .engine
        .peek()
        .map_or(0, |engine| engine.coordinator.cache_stats().entries);
    write_metric(
        out,
        "aiex_search_cache_hits_total",
        "counter",
        "Search result cache hits.",
        &[(String::new(), hits as f64)],
    );
    write_metric(
        out,
        "aiex_search_cache_misses_total",
        "counter",
        "Search result cache misses.",
        &[(String::new(), misses as f64)],
    );
    write_metric(
        out,
        "aiex_search_cache_hit_ratio",
        "gauge",
        "Hits over lookups of the search result cache since the start.",
        &[(String::new(), ratio)],
    );
    write_metric(
        out,
        "aiex_search_cache_entries",
        "gauge",
        "Entries in the search result cache.",
        &[(String::new(), entries as f64)],
    );
}

/// Size, chunks and embedded chunks of each collection.
fn write_index_metrics(out: &mut String, statuses: &[aiex_indexer::CollectionStatus]) {
    let label = |name: &str, kind: &str| format!("collection=\"{name}\",kind=\"{kind}\"");
    let sizes: Vec<(String, f64)> = statuses
        .iter()
        .map(|s| (label(&s.name, s.kind.name()), s.size_bytes as f64))
        .collect();
    let chunks: Vec<(String, f64)> = statuses
        .iter()
        .map(|s| (label(&s.name, s.kind.name()), s.chunks as f64))
        .collect();
    let embedded: Vec<(String, f64)> = statuses
        .iter()
        .map(|s| (label(&s.name, s.kind.name()), s.embedded_chunks as f64))
        .collect();
    write_metric(
        out,
        "aiex_index_size_bytes",
        "gauge",
        "Disk space of each collection.",
        &sizes,
    );
    write_metric(
        out,
        "aiex_index_chunks",
        "gauge",
        "Chunks in each collection.",
        &chunks,
    );
    write_metric(
        out,
        "aiex_index_embedded_chunks",
        "gauge",
        "Chunks with vectors in each collection.",
        &embedded,
    );
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "system", responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi() -> Response {
    ApiJson(crate::server::openapi::ApiDoc::openapi()).into_response()
}
