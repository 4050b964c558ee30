//! The HTTP side every provider client shares: one call = breaker → retries → key rotation →
//! one request, with the provider module saying how to build a request and read a response.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use aiex_resilience::{retry_after, BreakerState, CallHealth, CircuitBreaker, RetryPolicy};
use reqwest::{Client, RequestBuilder, Url};

use super::resilience::{KeyChoice, KeyPool};
use super::{ProviderConfig, WebError};

/// Larger bodies are cut off and reported as malformed: no search answer comes near this.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Longest backoff between two retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A `retry-after` longer than this is not waited out: the call fails so that the caller (or a
/// fallback provider) can move on.
const MAX_HONOURED_RETRY_AFTER: Duration = Duration::from_secs(10);
/// How much of an unparseable error body goes into an error message.
const MAX_MESSAGE_CHARS: usize = 300;

/// Why an attempt produced no value.
#[derive(Debug)]
enum AttemptFailure {
    /// The provider was asked (or a key rests after it refused) and the call failed.
    Failed(WebError),
    /// No key's own rate limiter allows a request within the timeout; nothing was sent.
    Throttled(WebError),
}

/// A provider's complete HTTP answer.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    /// The body as text for an error message: trimmed and cut to a readable length.
    pub(crate) fn body_excerpt(&self) -> String {
        excerpt(&String::from_utf8_lossy(&self.body))
    }
}

/// `text` trimmed and cut to a readable length for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    let trimmed = text.trim();
    let mut cut: String = trimmed.chars().take(MAX_MESSAGE_CHARS).collect();
    if cut.len() < trimmed.len() {
        cut.push('…');
    }
    cut
}

/// Whether a provider client needs an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// At least one usable key, else the client is not built (Serper, Tavily).
    Required,
    /// Keys when configured; without any, requests go out without credentials through one
    /// implicit key slot holding the empty key (SearxNG).
    Optional,
}

/// The shared client of one provider.
pub(crate) struct Transport {
    provider: &'static str,
    client: Client,
    base_url: Url,
    timeout: Duration,
    retry: RetryPolicy,
    keys: KeyPool,
    /// Whether requests go out without credentials (no key configured, none required).
    keyless: bool,
    breaker: CircuitBreaker,
}

impl fmt::Debug for Transport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Transport")
            .field("provider", &self.provider)
            .field("base_url", &redacted_url(self.base_url.as_str()))
            .field("keys", &self.keys)
            .field("keyless", &self.keyless)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A client that needs at least one usable key: without one it is [`WebError::NoKeys`].
    pub(crate) fn new(provider: &'static str, config: ProviderConfig) -> Result<Self, WebError> {
        Self::build(provider, config, Keys::Required)
    }

    /// A client that sends its keys when it has any and no credentials otherwise: `call`'s
    /// `build` then gets the empty key, once per attempt, and must send no auth header for it.
    pub(crate) fn with_optional_keys(
        provider: &'static str,
        config: ProviderConfig,
    ) -> Result<Self, WebError> {
        Self::build(provider, config, Keys::Optional)
    }

    fn build(
        provider: &'static str,
        config: ProviderConfig,
        requirement: Keys,
    ) -> Result<Self, WebError> {
        let mut keys: Vec<String> = config
            .api_keys
            .iter()
            .map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty())
            .collect();
        let keyless = keys.is_empty();
        if keyless {
            match requirement {
                Keys::Required => return Err(WebError::NoKeys { provider }),
                // One slot, so that rate limits, rests after a refusal and rotation work as
                // for one key.
                Keys::Optional => keys.push(String::new()),
            }
        }
        if keys
            .iter()
            .any(|key| reqwest::header::HeaderValue::from_str(key).is_err())
        {
            return Err(WebError::InvalidConfig {
                provider,
                message: "an api key contains characters that cannot be sent in a header"
                    .to_owned(),
            });
        }
        let invalid_url = |reason: String| WebError::InvalidConfig {
            provider,
            message: format!("base url `{}`: {reason}", redacted_url(&config.base_url)),
        };
        // A trailing slash makes `join("search")` append to the base path rather than replace
        // its last segment.
        let mut base_text = config.base_url.trim().to_owned();
        if !base_text.ends_with('/') {
            base_text.push('/');
        }
        let base_url = Url::parse(&base_text).map_err(|error| invalid_url(error.to_string()))?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(invalid_url("not an http or https url".to_owned()));
        }
        let client = Client::builder()
            .connect_timeout(config.timeout)
            .user_agent(concat!("aiex/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| WebError::InvalidConfig {
                provider,
                message: format!("cannot build the http client: {error}"),
            })?;
        Ok(Transport {
            provider,
            client,
            base_url,
            timeout: config.timeout,
            retry: RetryPolicy {
                max_retries: config.max_retries,
                base: config.backoff_base,
                max_backoff: MAX_BACKOFF,
                max_retry_after: MAX_HONOURED_RETRY_AFTER,
            },
            keys: KeyPool::new(keys, config.requests_per_minute),
            keyless,
            breaker: CircuitBreaker::new(config.breaker_threshold, config.breaker_cooldown),
        })
    }

    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Whether requests go out without credentials: no key is configured and none is required.
    pub(crate) fn is_keyless(&self) -> bool {
        self.keyless
    }

    /// A POST to `path` under the base URL, ready for the provider's headers and body.
    pub(crate) fn post(&self, path: &str) -> Result<RequestBuilder, WebError> {
        Ok(self.client.post(self.endpoint(path)?))
    }

    /// A GET of `path` under the base URL, ready for the provider's headers and query string.
    pub(crate) fn get(&self, path: &str) -> Result<RequestBuilder, WebError> {
        Ok(self.client.get(self.endpoint(path)?))
    }

    fn endpoint(&self, path: &str) -> Result<Url, WebError> {
        self.base_url
            .join(path)
            .map_err(|error| WebError::InvalidConfig {
                provider: self.provider,
                message: format!("cannot join `{path}` to the base url: {error}"),
            })
    }

    /// Makes one call. `build` turns a key into a request (the empty key for a keyless client:
    /// no credentials to send); `interpret` turns a response into a value or an error (which
    /// decides about key rotation and retries).
    pub(crate) async fn call<T>(
        &self,
        build: impl Fn(&str) -> Result<RequestBuilder, WebError> + Sync,
        interpret: impl Fn(RawResponse) -> Result<T, WebError> + Sync,
    ) -> Result<T, WebError> {
        let Some(permit) = self.breaker.try_acquire() else {
            return Err(WebError::BreakerOpen {
                provider: self.provider,
            });
        };
        match self.call_with_retries(&build, &interpret).await {
            Ok(value) => {
                permit.record(CallHealth::Healthy);
                Ok(value)
            }
            Err(AttemptFailure::Throttled(error)) => {
                // Our own limiter said no: the provider was not asked, so it is neither healthy
                // nor failing.
                permit.record(CallHealth::Unknown);
                Err(error)
            }
            Err(AttemptFailure::Failed(error)) => {
                let health = if error.counts_against_provider() {
                    CallHealth::Failed
                } else {
                    CallHealth::Healthy
                };
                permit.record(health);
                Err(error)
            }
        }
    }

    async fn call_with_retries<T>(
        &self,
        build: &(impl Fn(&str) -> Result<RequestBuilder, WebError> + Sync),
        interpret: &(impl Fn(RawResponse) -> Result<T, WebError> + Sync),
    ) -> Result<T, AttemptFailure> {
        let mut retry = 0;
        loop {
            let error = match self.attempt_with_rotation(build, interpret).await {
                Ok(value) => return Ok(value),
                Err(AttemptFailure::Failed(error)) => error,
                // The limiter already waited as long as the timeout allows.
                Err(throttled @ AttemptFailure::Throttled(_)) => return Err(throttled),
            };
            if !error.is_retryable() || retry >= self.retry.max_retries {
                return Err(AttemptFailure::Failed(error));
            }
            let asked_wait = match &error {
                WebError::RateLimited { retry_after, .. } => *retry_after,
                _ => None,
            };
            let Some(delay) = self.retry.delay(retry, asked_wait) else {
                return Err(AttemptFailure::Failed(error));
            };
            tracing::debug!(
                provider = self.provider,
                retry = retry + 1,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying web search"
            );
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    /// One attempt: the request goes out with the preferred key, and again with each other key
    /// while keys are refused.
    async fn attempt_with_rotation<T>(
        &self,
        build: &(impl Fn(&str) -> Result<RequestBuilder, WebError> + Sync),
        interpret: &(impl Fn(RawResponse) -> Result<T, WebError> + Sync),
    ) -> Result<T, AttemptFailure> {
        let mut tried = vec![false; self.keys.len()];
        let mut last_key_error: Option<WebError> = None;
        loop {
            let (index, key) = match self.keys.acquire(&tried, self.timeout).await {
                KeyChoice::Ready { index, key } => (index, key),
                KeyChoice::AllTried => {
                    let error = last_key_error.unwrap_or(WebError::NoKeys {
                        provider: self.provider,
                    });
                    return Err(AttemptFailure::Failed(error));
                }
                KeyChoice::AllResting(resting_error) => {
                    return Err(AttemptFailure::Failed(
                        last_key_error.unwrap_or(resting_error),
                    ))
                }
                KeyChoice::Throttled { wait } => {
                    return Err(match last_key_error {
                        Some(error) => AttemptFailure::Failed(error),
                        None => AttemptFailure::Throttled(WebError::RateLimited {
                            provider: self.provider,
                            retry_after: Some(wait),
                        }),
                    });
                }
            };
            tried[index] = true;
            let request = build(key).map_err(AttemptFailure::Failed)?;
            let result = match self.send(request).await {
                Ok(response) => interpret(response),
                Err(error) => Err(error),
            };
            // Scrubbed before anything (a log line, a resting key's reason) can keep it.
            let result =
                result.map_err(|error| error.map_message(|message| self.scrub_keys(message)));
            match result {
                Ok(value) => {
                    self.keys.mark_good(index);
                    return Ok(value);
                }
                Err(error) if error.is_key_specific() => {
                    self.keys.mark_refused(index, &error);
                    last_key_error = Some(error);
                }
                Err(error) => return Err(AttemptFailure::Failed(error)),
            }
        }
    }

    /// Sends one request and reads the whole body, within the timeout.
    async fn send(&self, request: RequestBuilder) -> Result<RawResponse, WebError> {
        let exchange = async {
            let mut response = request
                .send()
                .await
                .map_err(|error| self.transport_error(&error))?;
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|error| self.transport_error(&error))?
            {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(WebError::Malformed {
                        provider: self.provider,
                        message: format!("response body over {MAX_BODY_BYTES} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(RawResponse {
                status,
                retry_after,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_elapsed) => Err(WebError::Timeout {
                provider: self.provider,
            }),
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> WebError {
        if error.is_timeout() {
            return WebError::Timeout {
                provider: self.provider,
            };
        }
        // reqwest's own message is terse ("error sending request"); the cause chain says why.
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        WebError::Network {
            provider: self.provider,
            message,
        }
    }

    /// `message` with every configured key replaced, in case a provider echoes one back.
    fn scrub_keys(&self, mut message: String) -> String {
        // The empty key of a keyless client is in every string and stands for nothing.
        for key in self.keys.keys().filter(|key| !key.is_empty()) {
            if message.contains(key) {
                message = message.replace(key, "[redacted]");
            }
        }
        message
    }
}

/// The error text of a JSON error body, in any of the shapes these providers use:
/// `{"message": …}` (Serper), `{"detail": {"error": …}}` (Tavily), `{"detail": …}` and
/// `{"error": …}` / `{"error": {"message": …}}`.
/// The array `name` of a provider's JSON answer (`fields`), which every answer holds; without it
/// the body is an error: its message (a spent quota when `is_quota` says so, else a bad request),
/// or a malformed answer.
pub(crate) fn required_array<'f>(
    provider: &'static str,
    fields: &'f serde_json::Map<String, serde_json::Value>,
    name: &str,
    is_quota: impl Fn(&str) -> bool,
) -> Result<&'f Vec<serde_json::Value>, WebError> {
    match fields.get(name) {
        Some(serde_json::Value::Array(items)) => Ok(items),
        Some(serde_json::Value::Null) | None => {
            let body = serde_json::Value::Object(fields.clone());
            Err(match json_error_message(&body) {
                Some(message) if is_quota(&message) => {
                    WebError::QuotaExhausted { provider, message }
                }
                Some(message) => WebError::BadRequest { provider, message },
                None => WebError::Malformed {
                    provider,
                    message: format!("no `{name}` array"),
                },
            })
        }
        Some(other) => Err(WebError::Malformed {
            provider,
            message: format!("`{name}` is not an array but {}", json_kind(other)),
        }),
    }
}

pub(crate) fn json_error_message(body: &serde_json::Value) -> Option<String> {
    let text_of = |value: &serde_json::Value| -> Option<String> {
        match value {
            serde_json::Value::String(text) if !text.trim().is_empty() => Some(excerpt(text)),
            serde_json::Value::Object(fields) => ["error", "message", "msg"]
                .iter()
                .find_map(|name| fields.get(*name).and_then(serde_json::Value::as_str))
                .filter(|text| !text.trim().is_empty())
                .map(excerpt),
            _ => None,
        }
    };
    ["detail", "error", "message"]
        .iter()
        .find_map(|name| body.get(*name).and_then(text_of))
}

/// The error for a non-success HTTP status. `quota` says whether the provider's message means
/// the key is out of credits or over its plan, which wins over the status.
pub(crate) fn classify_status(
    provider: &'static str,
    status: u16,
    retry_after: Option<Duration>,
    message: String,
    quota: bool,
) -> WebError {
    if quota {
        return WebError::QuotaExhausted { provider, message };
    }
    match status {
        401 | 403 => WebError::Unauthorized { provider, message },
        429 => WebError::RateLimited {
            provider,
            retry_after,
        },
        402 => WebError::QuotaExhausted { provider, message },
        400 | 413 | 414 | 415 | 422 => WebError::BadRequest { provider, message },
        _ => WebError::Provider {
            provider,
            status,
            message,
        },
    }
}

/// The message for an error response: the provider's own if its body has one, else the body's
/// beginning, else the status line.
pub(crate) fn error_text(response: &RawResponse, parsed: Option<&serde_json::Value>) -> String {
    if let Some(message) = parsed.and_then(json_error_message) {
        return message;
    }
    let excerpt = response.body_excerpt();
    if !excerpt.is_empty() {
        return excerpt;
    }
    let reason = reqwest::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("no reason given");
    format!("http {} ({})", response.status, reason.to_ascii_lowercase())
}

/// `url` for logs and messages: credentials in it (`https://user:password@host/`, basic
/// authentication for a proxy in front of a self-hosted provider; a user name alone may be a
/// token) are replaced by `***`. Works on text that does not parse as a URL too.
pub(crate) fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_credentials, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// A number that may arrive as a JSON number or as a numeric string; `None` for anything else
/// and for values that are not finite.
pub(crate) fn lenient_number(value: &serde_json::Value) -> Option<f32> {
    let number = match value {
        serde_json::Value::Number(number) => number.as_f64()?,
        serde_json::Value::String(text) => text.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    // Relevance scores are small numbers; narrowing to f32 loses nothing that matters.
    let narrowed = number as f32;
    narrowed.is_finite().then_some(narrowed)
}

/// What kind of JSON value `value` is, for error messages.
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Where a provider's result entry keeps each field of a [`super::WebResult`] (the title is
/// `title` everywhere).
pub(crate) struct ResultFields {
    pub url: &'static str,
    pub snippet: &'static str,
    /// Absent for a provider that gives no score.
    pub score: Option<&'static str>,
    pub published: &'static str,
}

/// One result entry of `provider`, read through its `fields`, or `None` for an entry without a
/// URL. The rank is set by [`ranked_results`].
pub(crate) fn result_entry(
    item: &serde_json::Value,
    provider: &'static str,
    fields: &ResultFields,
) -> Option<super::WebResult> {
    let text = |name: &str| {
        item.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
    };
    let url = text(fields.url).filter(|url| !url.is_empty())?;
    Some(super::WebResult {
        url: url.to_owned(),
        title: text("title").unwrap_or_default().to_owned(),
        snippet: text(fields.snippet).unwrap_or_default().to_owned(),
        score: fields
            .score
            .and_then(|name| item.get(name))
            .and_then(lenient_number),
        provider,
        published: text(fields.published)
            .filter(|date| !date.is_empty())
            .map(str::to_owned),
        rank: 0,
    })
}

/// Ranks a provider's result entries: entries `parse` rejects (no link) are skipped, the first
/// `limit` are numbered 1, 2, …; a non-empty array of which no entry is usable is malformed.
pub(crate) fn ranked_results(
    items: &[serde_json::Value],
    limit: usize,
    parse: impl Fn(&serde_json::Value) -> Option<super::WebResult>,
    provider: &'static str,
    unusable: &str,
) -> Result<Vec<super::WebResult>, WebError> {
    let results: Vec<super::WebResult> = items
        .iter()
        .filter_map(parse)
        .take(limit)
        .enumerate()
        .map(|(index, result)| super::WebResult {
            rank: index + 1,
            ..result
        })
        .collect();
    if results.is_empty() && !items.is_empty() {
        return Err(WebError::Malformed {
            provider,
            message: unusable.to_owned(),
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_no_credentials() {
        assert_eq!(
            redacted_url("https://aiex:hunter2@searx.example:8443/searx?x=1"),
            "https://***@searx.example:8443/searx?x=1"
        );
        assert_eq!(
            redacted_url("http://token@searx.example"),
            "http://***@searx.example"
        );
        // An `@` after the host belongs to the path.
        assert_eq!(
            redacted_url("https://searx.example/@user"),
            "https://searx.example/@user"
        );
        assert_eq!(
            redacted_url("https://google.serper.dev"),
            "https://google.serper.dev"
        );
        // Text that is no URL still loses what looks like credentials.
        assert_eq!(redacted_url("http://a b:c@d e"), "http://***@d e");
        assert_eq!(redacted_url("not a url"), "not a url");
    }
}
