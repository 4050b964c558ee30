//! Errors at the HTTP edge: one small, stable JSON body `{"error":{"code","message"}}`, the status
//! chosen here and only here. 5xx bodies never carry internals; those are logged once, here.

use aiex_llm::LlmError;
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
            E::Leased { .. } => Self::conflict("collection_leased", message),
            E::LeaseLost { .. } => Self::conflict("collection_lease_lost", message),
            E::PushRefused { .. } => Self::conflict("push_refused", message),
            E::EmbeddingsDisabled => Self::bad_request("embeddings_disabled", message),
            E::Cancelled => Self::conflict("cancelled", message),
            E::SetupMissing { .. } => {
                tracing::error!(error = %message, "setup missing");
                Self::unavailable(
                    "setup_missing",
                    "the embedding model or runtime is not installed on the server",
                )
            }
            E::ModelFile { .. } => {
                tracing::error!(error = %message, "embedding model file");
                Self::unavailable(
                    "setup_missing",
                    "the embedding model installed on the server cannot be used",
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
            E::Web(err) => Self::internal(format!("configuring web search: {err}")),
            E::Pool(err) => Self::internal(format!("starting the search pool: {err}")),
            E::Build(err) => Self::internal(format!("building the search engine: {err}")),
        }
    }
}

impl From<crate::server::jobs::JobError> for ApiError {
    fn from(err: crate::server::jobs::JobError) -> Self {
        use crate::server::jobs::JobError as E;
        let message = err.to_string();
        match err {
            E::NotFound => Self::not_found("job_not_found", message),
            E::Finished { .. } => Self::conflict("job_finished", message),
            E::Cluster(_) => Self::unavailable("cluster_unavailable", message),
            E::EventLog { .. } | E::Task(_) => Self::internal(message),
        }
    }
}

impl From<crate::server::users::UserStoreError> for ApiError {
    fn from(err: crate::server::users::UserStoreError) -> Self {
        use crate::server::users::UserStoreError as E;
        let message = err.to_string();
        match err {
            E::TooManyBookmarks { .. } => Self::conflict("too_many_bookmarks", message),
            E::Read { .. } | E::Write { .. } | E::Serialize(_) | E::Task(_) => {
                Self::internal(message)
            }
        }
    }
}

/// A failure of an LLM provider, as seen by our client: the provider's detail is logged once
/// here and never sent.
fn upstream(status: StatusCode, code: &'static str, message: &str, detail: &LlmError) -> ApiError {
    tracing::warn!(error = %detail, code, "llm provider failure");
    ApiError::new(status, code, message)
}

impl From<LlmError> for ApiError {
    fn from(err: LlmError) -> Self {
        llm_error(&err)
    }
}

/// An LLM failure as an answer: rate limits and open breakers are 503 (with `retry-after` when
/// the provider gave one), timeouts 504, a provider's failure or unusable answer 502, a request
/// the provider refused as invalid 400, our own configuration or templates 500.
fn llm_error(err: &LlmError) -> ApiError {
    use LlmError as E;
    match err {
        // The last provider's failure stands for the role's.
        E::AllFailed { last, .. } => llm_error(last),
        E::Http { status: 429, .. } => {
            let retry_after = err
                .retry_after()
                .map(|delay| (delay.as_millis().div_ceil(1000) as u64).max(1));
            ApiError {
                retry_after,
                ..upstream(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "llm_rate_limited",
                    "the llm provider is rate limiting requests; retry later",
                    err,
                )
            }
        }
        E::Http { status: 408, .. } | E::Timeout { .. } => upstream(
            StatusCode::GATEWAY_TIMEOUT,
            "llm_timeout",
            "the llm provider did not answer in time",
            err,
        ),
        E::Http {
            status: 400 | 413 | 422,
            ..
        } => upstream(
            StatusCode::BAD_REQUEST,
            "llm_bad_request",
            "the llm provider refused the request",
            err,
        ),
        E::Http { .. } | E::Connect { .. } => upstream(
            StatusCode::BAD_GATEWAY,
            "llm_provider_error",
            "the llm provider failed",
            err,
        ),
        E::StreamError {
            retryable: true, ..
        } => upstream(
            StatusCode::SERVICE_UNAVAILABLE,
            "llm_overloaded",
            "the llm provider is overloaded; retry later",
            err,
        ),
        E::StreamError {
            retryable: false, ..
        } => upstream(
            StatusCode::BAD_GATEWAY,
            "llm_provider_error",
            "the llm provider failed",
            err,
        ),
        E::CutOff { .. } | E::Malformed { .. } | E::InvalidJson { .. } => upstream(
            StatusCode::BAD_GATEWAY,
            "llm_bad_response",
            "the llm provider answered with something unusable",
            err,
        ),
        E::BreakerOpen { .. } => upstream(
            StatusCode::SERVICE_UNAVAILABLE,
            "llm_unavailable",
            "the llm provider is failing and rested for a while; retry later",
            err,
        ),
        E::NoProvider { .. } => {
            tracing::error!(error = %err, "llm not configured");
            ApiError::unavailable(
                "llm_not_configured",
                "no llm provider is configured for this request",
            )
        }
        E::Unsupported { .. } | E::Config { .. } => {
            tracing::error!(error = %err, "llm configuration");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "llm_misconfigured",
                "the llm is misconfigured on the server",
            )
        }
        E::InvalidSchema { .. } | E::Template { .. } => ApiError::internal(err),
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
    Llm(#[from] LlmError),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aiex_llm::{Role, TimeoutStage};

    use super::*;
    use crate::server::jobs::JobError;
    use crate::server::users::UserStoreError;

    fn http(status: u16, retry_after: Option<Duration>) -> LlmError {
        LlmError::Http {
            provider: "main".to_string(),
            status,
            message: "upstream detail".to_string(),
            retry_after,
        }
    }

    fn assert_answer(err: impl Into<ApiError>, status: StatusCode, code: &str) -> ApiError {
        let answer = err.into();
        assert_eq!((answer.status, answer.code), (status, code), "{answer:?}");
        if status.is_server_error() {
            assert!(!answer.message.contains("detail"), "{answer:?}");
        }
        answer
    }

    #[test]
    fn a_provider_rate_limit_is_a_503_with_its_retry_after() {
        let answer = assert_answer(
            http(429, Some(Duration::from_millis(1_500))),
            StatusCode::SERVICE_UNAVAILABLE,
            "llm_rate_limited",
        );
        let response = answer.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let unknown = assert_answer(
            http(429, None),
            StatusCode::SERVICE_UNAVAILABLE,
            "llm_rate_limited",
        );
        assert_eq!(unknown.retry_after, None);
    }

    #[test]
    fn provider_failures_map_to_gateway_statuses() {
        let timeout = LlmError::Timeout {
            provider: "main".to_string(),
            stage: TimeoutStage::FirstToken,
            after_ms: 30_000,
        };
        assert_answer(timeout, StatusCode::GATEWAY_TIMEOUT, "llm_timeout");
        assert_answer(
            http(503, None),
            StatusCode::BAD_GATEWAY,
            "llm_provider_error",
        );
        let connect = LlmError::Connect {
            provider: "main".to_string(),
            message: "refused detail".to_string(),
        };
        assert_answer(connect, StatusCode::BAD_GATEWAY, "llm_provider_error");
        let garbage = LlmError::Malformed {
            provider: "main".to_string(),
            message: "not json detail".to_string(),
        };
        assert_answer(garbage, StatusCode::BAD_GATEWAY, "llm_bad_response");
        let overloaded = LlmError::StreamError {
            provider: "main".to_string(),
            kind: "overloaded_error".to_string(),
            message: "busy detail".to_string(),
            retryable: true,
        };
        assert_answer(
            overloaded,
            StatusCode::SERVICE_UNAVAILABLE,
            "llm_overloaded",
        );
        let breaker = LlmError::BreakerOpen {
            provider: "main".to_string(),
        };
        assert_answer(breaker, StatusCode::SERVICE_UNAVAILABLE, "llm_unavailable");
    }

    #[test]
    fn every_provider_failing_answers_as_the_last_one() {
        let all = LlmError::AllFailed {
            role: Role::Smart,
            tried: "main, backup".to_string(),
            last: Box::new(http(429, Some(Duration::from_secs(7)))),
        };
        let answer = assert_answer(all, StatusCode::SERVICE_UNAVAILABLE, "llm_rate_limited");
        assert_eq!(answer.retry_after, Some(7));
    }

    #[test]
    fn requests_and_configuration_map_to_400_and_500() {
        assert_answer(http(400, None), StatusCode::BAD_REQUEST, "llm_bad_request");
        let config = LlmError::Config {
            message: "bad url detail".to_string(),
        };
        assert_answer(
            config,
            StatusCode::INTERNAL_SERVER_ERROR,
            "llm_misconfigured",
        );
        let template = LlmError::Template {
            name: "plan".to_string(),
            message: "syntax detail".to_string(),
        };
        assert_answer(template, StatusCode::INTERNAL_SERVER_ERROR, "internal");
        let none = LlmError::NoProvider { role: Role::Fast };
        assert_answer(none, StatusCode::SERVICE_UNAVAILABLE, "llm_not_configured");
    }

    #[test]
    fn job_errors_map_to_their_statuses() {
        assert_answer(JobError::NotFound, StatusCode::NOT_FOUND, "job_not_found");
        let finished = assert_answer(
            JobError::Finished { state: "succeeded" },
            StatusCode::CONFLICT,
            "job_finished",
        );
        assert_eq!(finished.message, "the job has already succeeded");
        let log = JobError::EventLog {
            path: "/data/jobs/x.events.jsonl".into(),
            source: std::io::Error::other("disk detail"),
        };
        assert_answer(log, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    }

    #[test]
    fn user_store_errors_map_to_their_statuses() {
        let full = UserStoreError::TooManyBookmarks { max: 1000 };
        let answer = assert_answer(full, StatusCode::CONFLICT, "too_many_bookmarks");
        assert_eq!(answer.message, "at most 1000 bookmarks per key");
        let write = UserStoreError::Write {
            path: "/data/users/k.json".into(),
            source: std::io::Error::other("disk detail"),
        };
        let answer = assert_answer(write, StatusCode::INTERNAL_SERVER_ERROR, "internal");
        assert!(!answer.message.contains("/data"));
    }
}
