//! Why a web search failed.

use std::time::Duration;

/// Why a web search failed. Messages come from the provider or the HTTP stack with any API key
/// scrubbed out; they are lowercase and carry the provider name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebError {
    /// The client was built without a usable key.
    #[error("{provider}: no api key configured")]
    NoKeys { provider: &'static str },
    /// The client's settings cannot work (a base URL that is not a URL, a key that cannot be
    /// sent as a header).
    #[error("{provider}: invalid configuration: {message}")]
    InvalidConfig {
        provider: &'static str,
        message: String,
    },
    /// The query (with its domain operators, for Serper) is over the provider's limit; nothing
    /// was sent.
    #[error("{provider}: query too long ({got} characters, at most {max})")]
    QueryTooLong {
        provider: &'static str,
        max: usize,
        got: usize,
    },
    /// Every key was refused as invalid or not allowed.
    #[error("{provider}: unauthorized: {message}")]
    Unauthorized {
        provider: &'static str,
        message: String,
    },
    /// The provider (or our own per-key limiter) asks to slow down.
    #[error("{provider}: rate limited{}", retry_after_suffix(*.retry_after))]
    RateLimited {
        provider: &'static str,
        retry_after: Option<Duration>,
    },
    /// Every key is out of credits or over its plan's limit.
    #[error("{provider}: quota exhausted: {message}")]
    QuotaExhausted {
        provider: &'static str,
        message: String,
    },
    /// The provider refused the request itself.
    #[error("{provider}: bad request: {message}")]
    BadRequest {
        provider: &'static str,
        message: String,
    },
    /// Any other HTTP error status (5xx are retried).
    #[error("{provider}: http {status}: {message}")]
    Provider {
        provider: &'static str,
        status: u16,
        message: String,
    },
    /// A response that is not what the provider's format promises.
    #[error("{provider}: malformed response: {message}")]
    Malformed {
        provider: &'static str,
        message: String,
    },
    /// A metasearch instance (SearxNG) answered without results and reported its engines
    /// unresponsive: a failure, not "found nothing". `engines` names each with its reason.
    #[error("{provider}: no results, engines unresponsive: {engines}")]
    EnginesUnresponsive {
        provider: &'static str,
        engines: String,
    },
    /// A request took longer than the configured timeout.
    #[error("{provider}: timed out")]
    Timeout { provider: &'static str },
    /// The request did not get an HTTP response (DNS, connection, TLS, body read).
    #[error("{provider}: network error: {message}")]
    Network {
        provider: &'static str,
        message: String,
    },
    /// The provider failed repeatedly and is rested for a while; nothing was sent.
    #[error("{provider}: circuit breaker open")]
    BreakerOpen { provider: &'static str },
    /// The caller gave up on the search.
    #[error("web search cancelled")]
    Cancelled,
}

fn retry_after_suffix(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(delay) => format!(" (retry after {:.1} s)", delay.as_secs_f64()),
        None => String::new(),
    }
}

impl WebError {
    /// Whether the same request may succeed later at the same provider: rate limits, 5xx and
    /// 408, timeouts and network errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            WebError::RateLimited { .. } | WebError::Timeout { .. } | WebError::Network { .. } => {
                true
            }
            WebError::Provider { status, .. } => *status >= 500 || *status == 408,
            WebError::NoKeys { .. }
            | WebError::InvalidConfig { .. }
            | WebError::QueryTooLong { .. }
            | WebError::Unauthorized { .. }
            | WebError::QuotaExhausted { .. }
            | WebError::BadRequest { .. }
            | WebError::Malformed { .. }
            // The instance already waited for its engines; those that failed (timeouts,
            // CAPTCHAs, suspensions) seldom recover within one search's deadline.
            | WebError::EnginesUnresponsive { .. }
            | WebError::BreakerOpen { .. }
            | WebError::Cancelled => false,
        }
    }

    /// The provider that failed, if one did.
    pub fn provider(&self) -> Option<&'static str> {
        match self {
            WebError::NoKeys { provider }
            | WebError::InvalidConfig { provider, .. }
            | WebError::QueryTooLong { provider, .. }
            | WebError::Unauthorized { provider, .. }
            | WebError::RateLimited { provider, .. }
            | WebError::QuotaExhausted { provider, .. }
            | WebError::BadRequest { provider, .. }
            | WebError::Provider { provider, .. }
            | WebError::Malformed { provider, .. }
            | WebError::EnginesUnresponsive { provider, .. }
            | WebError::Timeout { provider }
            | WebError::Network { provider, .. }
            | WebError::BreakerOpen { provider } => Some(provider),
            WebError::Cancelled => None,
        }
    }

    /// Whether the refusal is about the key that was used, so that another key may do better.
    pub(crate) fn is_key_specific(&self) -> bool {
        matches!(
            self,
            WebError::Unauthorized { .. }
                | WebError::QuotaExhausted { .. }
                | WebError::RateLimited { .. }
        )
    }

    /// Whether the error says the provider is unhealthy or unusable for us, as opposed to the
    /// caller's request being wrong (which proves the provider answers).
    pub(crate) fn counts_against_provider(&self) -> bool {
        match self {
            WebError::Unauthorized { .. }
            | WebError::RateLimited { .. }
            | WebError::QuotaExhausted { .. }
            | WebError::Provider { .. }
            | WebError::Malformed { .. }
            | WebError::EnginesUnresponsive { .. }
            | WebError::Timeout { .. }
            | WebError::Network { .. } => true,
            WebError::NoKeys { .. }
            | WebError::InvalidConfig { .. }
            | WebError::QueryTooLong { .. }
            | WebError::BadRequest { .. }
            | WebError::BreakerOpen { .. }
            | WebError::Cancelled => false,
        }
    }

    /// The same error with `scrub` applied to its free-text message.
    pub(crate) fn map_message(self, scrub: impl Fn(String) -> String) -> Self {
        match self {
            WebError::InvalidConfig { provider, message } => WebError::InvalidConfig {
                provider,
                message: scrub(message),
            },
            WebError::Unauthorized { provider, message } => WebError::Unauthorized {
                provider,
                message: scrub(message),
            },
            WebError::QuotaExhausted { provider, message } => WebError::QuotaExhausted {
                provider,
                message: scrub(message),
            },
            WebError::BadRequest { provider, message } => WebError::BadRequest {
                provider,
                message: scrub(message),
            },
            WebError::Provider {
                provider,
                status,
                message,
            } => WebError::Provider {
                provider,
                status,
                message: scrub(message),
            },
            WebError::Malformed { provider, message } => WebError::Malformed {
                provider,
                message: scrub(message),
            },
            WebError::Network { provider, message } => WebError::Network {
                provider,
                message: scrub(message),
            },
            WebError::EnginesUnresponsive { provider, engines } => WebError::EnginesUnresponsive {
                provider,
                engines: scrub(engines),
            },
            other @ (WebError::NoKeys { .. }
            | WebError::QueryTooLong { .. }
            | WebError::RateLimited { .. }
            | WebError::Timeout { .. }
            | WebError::BreakerOpen { .. }
            | WebError::Cancelled) => other,
        }
    }
}
