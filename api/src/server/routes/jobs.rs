//! Batch indexing jobs: create, inspect, follow (SSE), cancel.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::server::auth::{Caller, LocalOwner};
use crate::server::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::server::jobs::{JobRecord, JobSpec};
use crate::server::stream::{resume_point, sse_response};
use crate::server::AppState;

/// Most directories per job.
pub const MAX_ITEMS: usize = 256;

/// Jobs of the caller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobRecord>,
}

/// Where to resume a stream.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AfterQuery {
    /// Send events after this id (the `Last-Event-ID` header wins when both are sent).
    pub after: Option<u64>,
}

/// Queues a job indexing one or many directories under the allowed roots.
#[utoipa::path(
    post,
    path = "/v1/index/jobs",
    operation_id = "create_job",
    tag = "jobs",
    request_body = JobSpec,
    responses(
        (status = 202, description = "Queued", body = JobRecord),
        (status = 400, description = "Invalid path or name", body = crate::server::error::ErrorBody),
        (status = 403, description = "Path outside the allowed roots, or jobs disabled", body = crate::server::error::ErrorBody),
        (status = 413, description = "Body too large", body = crate::server::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = crate::server::error::ErrorBody),
        (status = 422, description = "The body does not match the schema", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    local_owner: Option<Extension<LocalOwner>>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> Result<Response, ApiError> {
    // In server mode any node may run the job, and the token speaks for this node only: its
    // jobs are confined like everyone's.
    let local_owner =
        local_owner.is_some() && state.config.vector.backend != aiex_config::VectorBackend::Server;
    if spec.items.is_empty() || spec.items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            "invalid_items",
            format!("a job holds 1 to {MAX_ITEMS} directories"),
        ));
    }
    for item in &spec.items {
        if let Some(name) = &item.name {
            aiex_indexer::collection::validate_name(name)?;
        }
    }
    let roots = state.allowed_roots.clone();
    let raw: Vec<String> = spec.items.iter().map(|item| item.path.clone()).collect();
    let paths = tokio::task::spawn_blocking(move || {
        raw.iter()
            .map(|path| {
                if local_owner {
                    owner_directory(path)
                } else {
                    roots.confine(path)
                }
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await
    .map_err(ApiError::internal)??;
    let items = paths.into_iter().zip(spec.items).collect();
    let record = state
        .jobs
        .submit_with(&caller.0, items, spec.embed, spec.rebuild, local_owner)
        .await?;
    Ok((StatusCode::ACCEPTED, ApiJson(record)).into_response())
}

/// The local owner's directory: an absolute path to an existing directory, canonicalised (not
/// confined to the allowed roots; the command line sends what it would index itself). Blocking.
fn owner_directory(raw: &str) -> Result<std::path::PathBuf, ApiError> {
    let path = std::path::Path::new(raw);
    if raw.contains('\0') || !path.is_absolute() {
        return Err(ApiError::bad_request(
            "invalid_path",
            "the local owner sends absolute paths",
        ));
    }
    match std::fs::canonicalize(path) {
        Ok(canonical) if canonical.is_dir() => Ok(canonical),
        _ => Err(ApiError::bad_request(
            "not_a_directory",
            "the path does not exist or is not a directory",
        )),
    }
}

/// The caller's jobs, newest first.
#[utoipa::path(
    get,
    path = "/v1/index/jobs",
    operation_id = "list_jobs",
    tag = "jobs",
    responses((status = 200, description = "Jobs", body = JobList)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiJson<JobList> {
    ApiJson(JobList {
        jobs: state.jobs.list(Some(&caller.0)),
    })
}

/// A job: state, directories, summaries, last event id.
#[utoipa::path(
    get,
    path = "/v1/index/jobs/{id}",
    operation_id = "get_job",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobRecord),
        (status = 404, description = "No such job", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<JobRecord>, ApiError> {
    Ok(ApiJson(state.jobs.get(&id, Some(&caller.0))?))
}

/// Cancels a queued or running job.
#[utoipa::path(
    delete,
    path = "/v1/index/jobs/{id}",
    operation_id = "cancel_job",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled (a running job ends shortly, its stream with `done`)", body = JobRecord),
        (status = 404, description = "No such job", body = crate::server::error::ErrorBody),
        (status = 409, description = "Already finished", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<JobRecord>, ApiError> {
    Ok(ApiJson(state.jobs.cancel(&id, Some(&caller.0)).await?))
}

/// The job's events as SSE (`queued`, `resumed`, `item_started`, `progress`, `item_finished`,
/// `item_failed`, `done`), replayed after `Last-Event-ID` or `?after=`, then live.
#[utoipa::path(
    get,
    path = "/v1/index/jobs/{id}/events",
    operation_id = "job_events",
    tag = "jobs",
    params(
        ("id" = String, Path, description = "Job id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Id of the last event received: the stream resumes after it"),
        AfterQuery,
    ),
    responses(
        (status = 200, description = "text/event-stream of the job's events: each frame's `data` is a job event, `id:` its id", content_type = "text/event-stream", body = crate::server::openapi::JobEventPayload),
        (status = 204, description = "The job has ended and the client has its final event: nothing more will come"),
        (status = 400, description = "Invalid last-event-id", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such job", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AfterQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let log = state.jobs.log(&id, Some(&caller.0))?;
    let after = resume_point(&headers, query.after)?;
    // A client that already has the final event gets 204, which stops a browser's
    // `EventSource` instead of reconnecting forever.
    if after > 0 && log.is_finished() && after >= log.last_id() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(sse_response(log, after, &state.streams))
}
