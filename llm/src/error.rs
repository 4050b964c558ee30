//! The crate's error type.

use std::fmt;
use std::time::Duration;

use aiex_resilience::CallHealth;

use crate::Role;

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutStage {
    Connect,
    FirstToken,
    Total,
}

impl fmt::Display for TimeoutStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutStage::Connect => "connect",
            TimeoutStage::FirstToken => "first-token",
            TimeoutStage::Total => "total",
        })
    }
}

/// Everything that can go wrong in the LLM layer.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("no llm provider is configured for role {role}")]
    NoProvider { role: Role },
    #[error("provider {provider}: cannot connect: {message}")]
    Connect { provider: String, message: String },
    #[error("provider {provider}: {stage} timeout after {after_ms} ms")]
    Timeout {
        provider: String,
        stage: TimeoutStage,
        after_ms: u64,
    },
    #[error("provider {provider}: http {status}: {message}")]
    Http {
        provider: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("provider {provider}: error event in the stream ({kind}): {message}")]
    StreamError {
        provider: String,
        kind: String,
        message: String,
        retryable: bool,
    },
    #[error("provider {provider}: the stream ended before the answer was complete")]
    CutOff { provider: String },
    #[error("provider {provider}: malformed response: {message}")]
    Malformed { provider: String, message: String },
    #[error("provider {provider}: circuit breaker open")]
    BreakerOpen { provider: String },
    #[error("provider {provider} does not support {what}")]
    Unsupported {
        provider: String,
        what: &'static str,
    },
    #[error("every provider of role {role} failed (tried {tried})")]
    AllFailed {
        role: Role,
        tried: String,
        #[source]
        last: Box<LlmError>,
    },
    #[error("the answer is not valid json for the schema, even after one repair: {message}")]
    InvalidJson { message: String, text: String },
    #[error("invalid json schema: {message}")]
    InvalidSchema { message: String },
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("invalid llm configuration: {message}")]
    Config { message: String },
}

impl LlmError {
    /// Whether trying the same provider again may succeed: 429, 5xx (529 included),
    /// connection errors, timeouts, a cut stream, an overloaded or rate-limit error event.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Connect { .. } | LlmError::Timeout { .. } | LlmError::CutOff { .. } => true,
            LlmError::Http { status, .. } => *status == 429 || *status >= 500,
            LlmError::StreamError { retryable, .. } => *retryable,
            LlmError::AllFailed { last, .. } => last.is_retryable(),
            LlmError::NoProvider { .. }
            | LlmError::Malformed { .. }
            | LlmError::BreakerOpen { .. }
            | LlmError::Unsupported { .. }
            | LlmError::InvalidJson { .. }
            | LlmError::InvalidSchema { .. }
            | LlmError::Template { .. }
            | LlmError::Config { .. } => false,
        }
    }

    /// The delay the provider asked for (`retry-after`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the error is the caller's (bad schema, template, configuration) rather than a
    /// provider's: such errors neither count against a provider nor move to the next one.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            LlmError::InvalidSchema { .. }
                | LlmError::Template { .. }
                | LlmError::Config { .. }
                | LlmError::NoProvider { .. }
        )
    }

    /// What the error says about the provider's health, for its circuit breaker: a failure
    /// when it [counts against the provider](Self::counts_against_provider), healthy when the
    /// provider answered by refusing the request (another 4xx), unknown when it was not asked.
    pub(crate) fn call_health(&self) -> CallHealth {
        if self.counts_against_provider() {
            CallHealth::Failed
        } else if matches!(self, LlmError::Http { .. }) {
            CallHealth::Healthy
        } else {
            CallHealth::Unknown
        }
    }

    /// Whether the provider failed (counts against its circuit breaker): everything that is
    /// neither the caller's fault, nor a rejected call, nor an ordinary 4xx refusal of the request.
    pub(crate) fn counts_against_provider(&self) -> bool {
        match self {
            LlmError::Http { status, .. } => {
                matches!(*status, 401 | 403 | 404 | 408 | 429) || *status >= 500
            }
            LlmError::BreakerOpen { .. } | LlmError::Unsupported { .. } => false,
            other => !other.is_caller_error(),
        }
    }
}
