//! Errors at the HTTP edge: one small, stable JSON body `{"error":{"code","message"}}`, the status
//! chosen here and only here. 5xx bodies never carry internals; those are logged once, here.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, snake_case.
    pub code: &'static str,
    /// Lowercase, no trailing period; never internals on a 5xx.
    pub message: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_api_key`, `rate_limited`, `job_not_found`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this key; retry later",
            )
        }
    }

    /// An internal failure: `detail` is logged once and never sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<aiex_indexer::Error> for ApiError {
    fn from(err: aiex_indexer::Error) -> Self {
        use aiex_indexer::Error as E;
        let message = err.to_string();
        match err {
            E::NotADirectory { .. } => Self::bad_request("not_a_directory", message),
            E::CollectionNotFound { .. } => Self::not_found("collection_not_found", message),
            E::InvalidCollectionName { .. } => {
                Self::bad_request("invalid_collection_name", message)
            }
            E::CollectionRootMismatch { .. } => Self::conflict("collection_root_mismatch", message),
            E::CollectionKindMismatch { .. } => Self::conflict("collection_kind_mismatch", message),
            E::InvalidGlob { .. } => Self::bad_request("invalid_glob", message),
            E::ModelMismatch { .. } => Self::conflict("model_mismatch", message),
            E::Locked { .. } => Self::conflict(
                "collection_locked",
                "the collection is being written by another process",
            ),
            E::EmbeddingsDisabled => Self::bad_request("embeddings_disabled", message),
            E::Cancelled => Self::conflict("cancelled", message),
            E::SetupMissing { .. } => {
                tracing::error!(error = %message, "setup missing");
                Self::unavailable(
                    "setup_missing",
                    "the embedding model or runtime is not installed on the server",
                )
            }
            E::SchemaVersion { .. } => {
                tracing::error!(error = %message, "index schema version");
                Self::unavailable(
                    "index_incompatible",
                    "the index was written by another version",
                )
            }
            E::Embedding { .. }
            | E::WrongDimension { .. }
            | E::Keyword(_)
            | E::KeywordOpen(_)
            | E::Vector { .. }
            | E::Manifest { .. }
            | E::Io { .. }
            | E::Pool(_) => Self::internal(message),
        }
    }
}

impl From<crate::engine::EngineError> for ApiError {
    fn from(err: crate::engine::EngineError) -> Self {
        use crate::engine::EngineError as E;
        match err {
            E::Index(err) => err.into(),
            E::Web(message) | E::Pool(message) => Self::internal(message),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "invalid_body",
        };
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_string(),
            _ => rejection.body_text().to_lowercase(),
        };
        let status = if status.is_server_error() {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        Self::new(status, code, message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text().to_lowercase())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid_path", rejection.body_text().to_lowercase())
    }
}

/// `Json` whose rejections are [`ApiError`]s.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `Query` whose rejections are [`ApiError`]s.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path` whose rejections are [`ApiError`]s.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "refusing to listen on {addr} without API keys: set server.api_keys (see `aiex-research serve hash-key`) or bind to a loopback address"
    )]
    KeysRequired { addr: std::net::SocketAddr },
    #[error("invalid bind address `{0}`")]
    InvalidBind(String),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("io error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("allowed root {path} cannot be used: {source}")]
    AllowedRoot {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
    #[error("configuring the llm: {0}")]
    Llm(String),
}
