//! Search history and bookmarks, per key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::server::auth::Caller;
use crate::server::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::server::users::{Bookmark, HistoryEntry};
use crate::server::AppState;

/// Largest bookmarked hit or note, in bytes of JSON.
const MAX_BOOKMARK_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Most entries (default 50).
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryResponse {
    pub queries: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BookmarksResponse {
    pub bookmarks: Vec<Bookmark>,
}

/// A result to keep.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBookmark {
    /// A hit as a search returned it.
    #[schema(value_type = Object)]
    pub hit: serde_json::Value,
    pub note: Option<String>,
    pub query: Option<String>,
}

/// The caller's recent queries, newest first.
#[utoipa::path(
    get,
    path = "/v1/history",
    tag = "history",
    params(HistoryQuery),
    responses((status = 200, description = "Recent queries", body = HistoryResponse)),
    security(("bearer" = []))
)]
pub async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<ApiJson<HistoryResponse>, ApiError> {
    let limit = query.limit.unwrap_or(50).min(10_000);
    Ok(ApiJson(HistoryResponse {
        queries: state.users.history(&caller, limit).await?,
    }))
}

/// Forgets the caller's recent queries.
#[utoipa::path(
    delete,
    path = "/v1/history",
    tag = "history",
    responses((status = 204, description = "Cleared")),
    security(("bearer" = []))
)]
pub async fn clear_history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<StatusCode, ApiError> {
    state.users.clear_history(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's bookmarks, oldest first.
#[utoipa::path(
    get,
    path = "/v1/bookmarks",
    tag = "history",
    responses((status = 200, description = "Bookmarks", body = BookmarksResponse)),
    security(("bearer" = []))
)]
pub async fn bookmarks(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<ApiJson<BookmarksResponse>, ApiError> {
    Ok(ApiJson(BookmarksResponse {
        bookmarks: state.users.bookmarks(&caller).await?,
    }))
}

/// Bookmarks a result.
#[utoipa::path(
    post,
    path = "/v1/bookmarks",
    tag = "history",
    request_body = NewBookmark,
    responses(
        (status = 201, description = "Created", body = Bookmark),
        (status = 400, description = "Invalid bookmark", body = crate::server::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = crate::server::error::ErrorBody),
        (status = 422, description = "The body does not match the schema", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_bookmark(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewBookmark>,
) -> Result<Response, ApiError> {
    if !body.hit.is_object() {
        return Err(ApiError::bad_request(
            "invalid_bookmark",
            "hit must be a JSON object",
        ));
    }
    let size = body.hit.to_string().len() + body.note.as_ref().map_or(0, String::len);
    if size > MAX_BOOKMARK_BYTES {
        return Err(ApiError::bad_request(
            "bookmark_too_large",
            format!("a bookmark holds at most {MAX_BOOKMARK_BYTES} bytes"),
        ));
    }
    let bookmark = state
        .users
        .add_bookmark(&caller, body.hit, body.note, body.query)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(bookmark)).into_response())
}

/// Removes a bookmark.
#[utoipa::path(
    delete,
    path = "/v1/bookmarks/{id}",
    tag = "history",
    params(("id" = String, Path, description = "Bookmark id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such bookmark", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn remove_bookmark(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if state.users.remove_bookmark(&caller, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "bookmark_not_found",
            "no such bookmark",
        ))
    }
}
