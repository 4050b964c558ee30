//! Sending a request with deadlines, and turning transport failures and error statuses into
//! [`LlmError`]s.

use aiex_resilience::retry_after;
use tokio::time::{timeout_at, Instant};

use crate::answer::millis;
use crate::client::Provider;
use crate::error::TimeoutStage;
use crate::providers;
use crate::LlmError;

pub(crate) fn timeout(provider: &Provider, stage: TimeoutStage, started: Instant) -> LlmError {
    LlmError::Timeout {
        provider: provider.config.name.clone(),
        stage,
        after_ms: millis(started.elapsed()),
    }
}

/// The error chain of a transport error, for messages.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Sends `request` and checks the status; a non-success status becomes [`LlmError::Http`].
pub(crate) async fn send(
    provider: &Provider,
    request: reqwest::RequestBuilder,
    deadline: Instant,
    started: Instant,
) -> Result<reqwest::Response, LlmError> {
    let name = &provider.config.name;
    let response = match timeout_at(deadline, request.send()).await {
        Err(_) => return Err(timeout(provider, TimeoutStage::FirstToken, started)),
        Ok(Err(err)) if err.is_connect() && err.is_timeout() => {
            return Err(LlmError::Timeout {
                provider: name.clone(),
                stage: TimeoutStage::Connect,
                after_ms: millis(provider.connect_timeout),
            })
        }
        Ok(Err(err)) => {
            return Err(LlmError::Connect {
                provider: name.clone(),
                message: chain(&err),
            })
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let body = match timeout_at(deadline, response.text()).await {
        Ok(Ok(body)) => body,
        _ => String::new(),
    };
    Err(LlmError::Http {
        provider: name.clone(),
        status: status.as_u16(),
        message: providers::error_message(&body),
        retry_after,
    })
}
