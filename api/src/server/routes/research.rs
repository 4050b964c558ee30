//! Research sessions: `POST /v1/research` (JSON, or the session's events as SSE), `GET
//! /v1/research/{id}` (status, summary, report), `GET /v1/research/{id}/events` (replay after
//! `Last-Event-ID` or `?after=`, then live; 204 after the final event), `POST
//! /v1/research/{id}/stream-token` (a short-lived token for `?token=` on that stream, for browsers),
//! `DELETE /v1/research/{id}` (cancel), and `GET /v1/sessions` (paged).

use std::sync::Arc;

use aiex_research::{Format, ResearchRequest, SessionState, SessionStatus, SessionSummary};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::server::auth::{Caller, LocalOwner};
use crate::server::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::server::research::{research_error, BudgetOverrides, ResearchManager};
use crate::server::stream::resume_point;
use crate::server::AppState;

/// Longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 4000;
/// Most search rounds.
pub const MAX_DEPTH: usize = 3;
/// Most sessions per page of `GET /v1/sessions`.
pub const MAX_PAGE: usize = 100;
/// Sessions per page by default.
const DEFAULT_PAGE: usize = 20;
/// Most entries in each list of a request.
const MAX_LIST: usize = 64;

/// A research question.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResearchBody {
    /// The question.
    #[schema(min_length = 1, max_length = 4000)]
    pub question: String,
    /// Collections to search; empty: all.
    #[serde(default)]
    pub collections: Vec<String>,
    /// Sources to ask (`code`, `docs`, `web`); empty: every configured one.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Search rounds, 1 to 3 (default `research.depth`): later rounds search the gaps.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3)]
    pub depth: Option<usize>,
    /// A question template (see `aiex-research templates list`).
    #[serde(default)]
    pub template: Option<String>,
    /// Format of `report_text` in `GET /v1/research/{id}`: `md` (default) or `json`.
    #[serde(default)]
    pub format: Option<String>,
    /// Lower limits for this session than the server's `research` budgets.
    #[serde(default)]
    pub budgets: Option<BudgetOverrides>,
}

/// Where to find a session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionLinks {
    #[serde(rename = "self")]
    pub self_link: String,
    pub events: String,
}

impl SessionLinks {
    pub(crate) fn of(id: &str) -> Self {
        SessionLinks {
            self_link: format!("/v1/research/{id}"),
            events: format!("/v1/research/{id}/events"),
        }
    }
}

/// A session just created.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResearchCreated {
    pub id: String,
    /// `running`.
    pub status: String,
    pub links: SessionLinks,
}

/// Where a research session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResearchStatus {
    /// Running in this server.
    Running,
    /// Interrupted when the server stopped; waits for its turn to be resumed (at most
    /// `research.resume_concurrency` resumed sessions run at once).
    Queued,
    /// Stopped mid-way and not running (resumable).
    Incomplete,
    /// Cancelled.
    Cancelled,
    /// Ended with its report; every search answered (with or without hits).
    Complete,
    /// Ended with its report, but some searches failed (timed out, errors, an unreachable
    /// provider): `report.failed_searches` and the final `done` event name them, and evidence
    /// may be missing.
    CompleteWithErrors,
    /// Ended with an error.
    Failed,
}

/// A session: where it stands and, once finished, its report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResearchSession {
    pub id: String,
    pub question: String,
    pub status: ResearchStatus,
    pub started_at: String,
    pub last_event_id: u64,
    /// The last stage completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_stage: Option<String>,
    /// The report, once written.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<aiex_research::Report>,
    /// The report rendered in the session's format (`?format=` overrides it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_text: Option<String>,
    /// `md`, `json` or `html` (one self-contained page).
    pub format: String,
    /// LLM tokens and cost used so far.
    #[schema(value_type = Object)]
    pub usage: aiex_research::usage::Usage,
    pub links: SessionLinks,
}

/// One line of `GET /v1/sessions`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionItem {
    pub id: String,
    pub question: String,
    pub status: ResearchStatus,
    pub started_at: String,
    pub last_event_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_stage: Option<String>,
}

/// A page of sessions, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionPage {
    pub sessions: Vec<SessionItem>,
    /// Sessions in all pages.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

/// Paging.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Sessions skipped (default 0).
    pub offset: Option<usize>,
    /// Sessions returned, 1 to 100 (default 20).
    pub limit: Option<usize>,
}

/// Report format.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `md`, `json` or `html` for `report_text` (default: the format asked at creation).
    pub format: Option<String>,
}

/// The status of a session: its log says whether it ended; `running` if not and it runs here
/// (a resumed session's log ends with `cancelled` until it runs again), `queued` while it waits
/// for its turn to be resumed.
fn status_of(status: SessionStatus, research: &ResearchManager, id: &str) -> ResearchStatus {
    match status {
        SessionStatus::Complete => ResearchStatus::Complete,
        SessionStatus::CompleteWithErrors => ResearchStatus::CompleteWithErrors,
        SessionStatus::Failed => ResearchStatus::Failed,
        _ if research.is_running(id) => ResearchStatus::Running,
        _ if research.is_queued(id) => ResearchStatus::Queued,
        SessionStatus::Incomplete => ResearchStatus::Incomplete,
        SessionStatus::Cancelled => ResearchStatus::Cancelled,
    }
}

fn parse_format(text: &str) -> Result<Format, ApiError> {
    text.parse::<Format>()
        .map_err(|_| ApiError::bad_request("invalid_format", "format must be md, json or html"))
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Markdown => "md",
        Format::Json => "json",
        Format::Html => "html",
    }
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

pub(crate) fn validate(
    body: &ResearchBody,
    default_depth: usize,
) -> Result<ResearchRequest, ApiError> {
    let question = body.question.trim();
    if question.is_empty() {
        return Err(ApiError::bad_request(
            "empty_question",
            "the question is empty",
        ));
    }
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(ApiError::bad_request(
            "question_too_long",
            format!("the question is longer than {MAX_QUESTION_CHARS} characters"),
        ));
    }
    let depth = body.depth.unwrap_or(default_depth);
    if !(1..=MAX_DEPTH).contains(&depth) {
        return Err(ApiError::bad_request(
            "invalid_depth",
            format!("depth must be between 1 and {MAX_DEPTH}"),
        ));
    }
    if body.collections.len() > MAX_LIST || body.sources.len() > MAX_LIST {
        return Err(ApiError::bad_request(
            "too_many_values",
            format!("lists hold at most {MAX_LIST} values"),
        ));
    }
    if let Some(budgets) = &body.budgets {
        budgets.validate()?;
    }
    Ok(ResearchRequest {
        question: question.to_string(),
        collections: body.collections.clone(),
        depth,
        template: body.template.clone(),
        sources: body.sources.clone(),
    })
}

/// Refuses sessions the caller may not see, as if they did not exist.
fn check_visible(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    if state.research.visible(id, &caller.0, state.auth.required()) {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "session_not_found",
            "no such research session",
        ))
    }
}

/// Starts a research session: plan, searches, evidence, a cited report. With `Accept:
/// text/event-stream`, streams its events (`session_started`, `stage_started`, `planned`,
/// `search_completed`, …, `report_ready`, `done`), each with its id; JSON (201) otherwise.
#[utoipa::path(
    post,
    path = "/v1/research",
    operation_id = "create_research",
    tag = "research",
    request_body = ResearchBody,
    responses(
        (status = 201, description = "Created; follow it at `links.events`", body = ResearchCreated),
        (status = 200, description = "The session's events (with `Accept: text/event-stream`)", content_type = "text/event-stream", body = crate::server::openapi::ResearchEventPayload),
        (status = 400, description = "Invalid request", body = crate::server::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = crate::server::error::ErrorBody),
        (status = 422, description = "The body does not match the schema", body = crate::server::error::ErrorBody),
        (status = 401, description = "Missing, invalid or revoked key", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such collection, or no collections yet", body = crate::server::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::server::error::ErrorBody),
        (status = 503, description = "Shutting down", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResearchBody>,
) -> Result<Response, ApiError> {
    let request = validate(&body, state.config.research.depth)?;
    let format = format_name(parse_format(body.format.as_deref().unwrap_or("md"))?);
    let id = state
        .research
        .create(
            &caller.0,
            request,
            format.to_string(),
            body.budgets.unwrap_or_default(),
        )
        .await?;
    let links = SessionLinks::of(&id);
    let mut response = if wants_event_stream(&headers) {
        state.research.sse(&id, 0, &state.streams)
    } else {
        (
            StatusCode::CREATED,
            ApiJson(ResearchCreated {
                id: id.clone(),
                status: "running".to_string(),
                links: links.clone(),
            }),
        )
            .into_response()
    };
    if let Ok(location) = HeaderValue::from_str(&links.self_link) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-session-id"), value);
    }
    Ok(response)
}

/// A session's status, summary and, once written, its report.
#[utoipa::path(
    get,
    path = "/v1/research/{id}",
    operation_id = "get_research",
    tag = "research",
    params(("id" = String, Path, description = "Session id"), FormatQuery),
    responses(
        (status = 200, description = "The session", body = ResearchSession),
        (status = 400, description = "Invalid format", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<FormatQuery>,
) -> Result<ApiJson<ResearchSession>, ApiError> {
    check_visible(&state, &caller, &id)?;
    let stored_format = state.research.meta(&id).map(|meta| meta.format);
    let format = parse_format(
        query
            .format
            .as_deref()
            .or(stored_format.as_deref())
            .unwrap_or("md"),
    )?;
    let session = state.research.session_state(&id).await?;
    let report_text = match &session.report {
        Some(report) => Some(report.render(format).map_err(research_error)?),
        None => None,
    };
    Ok(ApiJson(ResearchSession {
        question: question_of(&session),
        status: status_of(session.status(), &state.research, &id),
        started_at: aiex_research::text::rfc3339(session.started_at_ms),
        last_event_id: session.last_id,
        last_stage: last_stage(&session),
        usage: session.usage,
        report: session.report,
        report_text,
        format: format_name(format).to_string(),
        links: SessionLinks::of(&id),
        id,
    }))
}

fn question_of(session: &SessionState) -> String {
    session
        .request
        .as_ref()
        .map(|request| request.question.clone())
        .unwrap_or_default()
}

fn last_stage(session: &SessionState) -> Option<String> {
    session
        .completed
        .iter()
        .map(|(stage, _)| *stage)
        .max()
        .map(|stage| stage.name().to_string())
}

/// Cancels a running session: it stops at its next step, its stream ends with `cancelled`.
#[utoipa::path(
    delete,
    path = "/v1/research/{id}",
    operation_id = "cancel_research",
    tag = "research",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 202, description = "Cancelling", body = ResearchCreated),
        (status = 404, description = "No such session", body = crate::server::error::ErrorBody),
        (status = 409, description = "Not running (finished, or running elsewhere)", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    check_visible(&state, &caller, &id)?;
    // The log decides first: a session that has ended may still be winding down in this server.
    let status = state.research.session_state(&id).await?.status();
    let here = state.research.is_running(&id) || state.research.is_queued(&id);
    if status.is_ended() || (status == SessionStatus::Cancelled && !here) {
        return Err(ApiError::conflict(
            "session_finished",
            "the session has already ended",
        ));
    }
    if !here {
        return Err(ApiError::conflict(
            "session_not_running",
            "the session is not running in this server",
        ));
    }
    state.research.cancel(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(ResearchCreated {
            links: SessionLinks::of(&id),
            id,
            status: "cancelling".to_string(),
        }),
    )
        .into_response())
}

/// Takes an interrupted or cancelled session up again from its last completed stage, in this
/// server: one it started, or (for the local owner, or anyone when the server runs without keys)
/// one that a command line of this data directory started, which then becomes the caller's.
/// Follow it on its events stream from the id it had (`?after=`); with `Accept:
/// text/event-stream` the answer is that stream, from its next event.
#[utoipa::path(
    post,
    path = "/v1/research/{id}/resume",
    operation_id = "resume_research",
    tag = "research",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 202, description = "Running again", body = ResearchCreated),
        (status = 401, description = "Missing, invalid or revoked key", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::server::error::ErrorBody),
        (status = 409, description = "Already running (here or in another process), or ended", body = crate::server::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::server::error::ErrorBody),
        (status = 503, description = "Shutting down, or the index is not ready", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    local_owner: Option<Extension<LocalOwner>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    // A session without a record here was started by a command line: its owner is whoever owns
    // the data directory.
    let known = state.research.meta(&id).is_some();
    if known || local_owner.is_none() {
        check_visible(&state, &caller, &id)?;
    }
    let session = state.research.session_state(&id).await?;
    if session.status().is_ended() {
        return Err(ApiError::conflict(
            "session_complete",
            "the session has already ended",
        ));
    }
    let last_id = session.last_id;
    state.research.resume_now(&caller.0, &id, session).await?;
    if wants_event_stream(&headers) {
        return Ok(state.research.sse(&id, last_id, &state.streams));
    }
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(ResearchCreated {
            links: SessionLinks::of(&id),
            id,
            status: "running".to_string(),
        }),
    )
        .into_response())
}

/// The session's events as SSE, replayed after `Last-Event-ID` or `?after=` (from the session
/// log, also after a server restart), then live until `done`, `failed` or `cancelled`.
/// A session's events stream: where to resume, and the stream token of a browser.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Send events after this id (the `Last-Event-ID` header wins when both are sent).
    pub after: Option<u64>,
    /// A stream token from `POST /v1/research/{id}/stream-token`, instead of the bearer key.
    pub token: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/research/{id}/events",
    operation_id = "research_events",
    tag = "research",
    params(
        ("id" = String, Path, description = "Session id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Id of the last event received: the stream resumes after it"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "text/event-stream of the session's events: each frame's `data` is a research event, `id:` its id", content_type = "text/event-stream", body = crate::server::openapi::ResearchEventPayload),
        (status = 204, description = "The session has ended and the client has its final event: nothing more will come"),
        (status = 400, description = "Invalid last-event-id", body = crate::server::error::ErrorBody),
        (status = 401, description = "Missing, invalid or revoked key, or an invalid stream token", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::server::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []), ())
)]
pub async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_visible(&state, &caller, &id)?;
    let after = resume_point(&headers, query.after)?;
    // An unknown id answers 404 before the stream starts.
    let path = state
        .research
        .store()
        .log_path(&id)
        .map_err(research_error)?;
    let exists = tokio::fs::try_exists(&path).await.unwrap_or(false);
    if !exists {
        return Err(research_error(aiex_research::Error::SessionNotFound { id }));
    }
    // A client that already has the final event of a session that ended gets 204, which stops
    // a browser's `EventSource` instead of reconnecting forever.
    if after > 0 {
        let session = state.research.session_state(&id).await?;
        // A cancelled session is over unless it still runs here (winding down, or resumed).
        let status = session.status();
        let ended = status.is_ended()
            || (status == SessionStatus::Cancelled
                && !state.research.is_running(&id)
                && !state.research.is_queued(&id));
        if ended && after >= session.last_id && !state.streams.shutdown.is_cancelled() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
    Ok(state.research.sse(&id, after, &state.streams))
}

/// A stream token: the session's events stream for a client that cannot send headers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamToken {
    /// Pass as `?token=` on `events` (only that session's stream accepts it).
    pub token: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
    /// The events URL with the token.
    pub events: String,
}

/// A short-lived token that opens this session's events stream without the bearer key (a
/// browser's `EventSource` cannot send headers): `GET /v1/research/{id}/events?token=…`.
#[utoipa::path(
    post,
    path = "/v1/research/{id}/stream-token",
    operation_id = "research_stream_token",
    tag = "research",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 201, description = "A token for this session's events stream", body = StreamToken),
        (status = 401, description = "Missing, invalid or revoked key", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::server::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn stream_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    check_visible(&state, &caller, &id)?;
    let path = state
        .research
        .store()
        .log_path(&id)
        .map_err(research_error)?;
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(research_error(aiex_research::Error::SessionNotFound { id }));
    }
    let token = state.auth.issue_stream_token(&id, &caller);
    Ok((
        StatusCode::CREATED,
        ApiJson(StreamToken {
            events: format!("/v1/research/{id}/events?token={token}"),
            expires_in: crate::server::auth::STREAM_TOKEN_TTL.as_secs(),
            token,
        }),
    )
        .into_response())
}

/// Research sessions, newest first, a page at a time: the caller's own, or every session of
/// the data directory when the server runs without keys.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    operation_id = "list_sessions",
    tag = "research",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of sessions", body = SessionPage),
        (status = 400, description = "Invalid paging", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn sessions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<ApiJson<SessionPage>, ApiError> {
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let research = Arc::clone(&state.research);
    let store = research.store().clone();
    let (summaries, total) = if state.auth.required() {
        let owned = research.owned(&caller.0);
        let total = owned.len();
        let ids: Vec<String> = owned
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|meta| meta.id)
            .collect();
        let summaries = tokio::task::spawn_blocking(move || {
            ids.iter()
                .filter_map(|id| store.summary(id).ok())
                .collect::<Vec<SessionSummary>>()
        })
        .await
        .map_err(ApiError::internal)?;
        (summaries, total)
    } else {
        tokio::task::spawn_blocking(move || store.list(offset, limit))
            .await
            .map_err(ApiError::internal)?
            .map_err(research_error)?
    };
    let sessions = summaries
        .into_iter()
        .map(|summary| SessionItem {
            status: status_of(summary.status, &research, &summary.id),
            last_stage: summary.last_stage.map(|stage| stage.name().to_string()),
            id: summary.id,
            question: summary.question,
            started_at: summary.started_at,
            last_event_id: summary.last_event_id,
        })
        .collect();
    Ok(ApiJson(SessionPage {
        sessions,
        total,
        offset,
        limit,
    }))
}
