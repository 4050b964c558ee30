//! How a provider client is set up.

use std::fmt;
use std::time::Duration;

/// Connection, key and resilience settings of one provider client.
///
/// `Debug` shows how many keys there are, never the keys, nor credentials in the base URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Where the API lives, without the endpoint path (`https://google.serper.dev`).
    pub base_url: String,
    /// Keys to rotate through; blank entries are ignored. SearxNG needs none (an instance
    /// behind an authenticating proxy may want one).
    pub api_keys: Vec<String>,
    /// Limit on one HTTP request, and on waiting for a key's rate limiter before it.
    pub timeout: Duration,
    /// Retries after the first attempt, for rate limits, 5xx, timeouts and connection errors.
    pub max_retries: u32,
    /// Budget of each key; 0 is unlimited.
    pub requests_per_minute: u32,
    /// Consecutive failed calls (after their retries) that open the circuit breaker; 0 never
    /// opens it.
    pub breaker_threshold: u32,
    /// How long an open breaker rejects calls before it lets one trial call through.
    pub breaker_cooldown: Duration,
    /// First retry delay; it doubles per retry (with jitter) up to a cap of a few seconds.
    pub backoff_base: Duration,
}

impl ProviderConfig {
    /// Serper at `https://google.serper.dev`, without keys.
    pub fn serper_default() -> Self {
        ProviderConfig {
            base_url: "https://google.serper.dev".to_owned(),
            requests_per_minute: 300,
            ..ProviderConfig::common_defaults()
        }
    }

    /// Tavily at `https://api.tavily.com`, without keys. The rate fits a development key
    /// (100 requests a minute); production keys allow ten times more.
    pub fn tavily_default() -> Self {
        ProviderConfig {
            base_url: "https://api.tavily.com".to_owned(),
            requests_per_minute: 100,
            ..ProviderConfig::common_defaults()
        }
    }

    /// SearxNG, without a base URL (there is no public default: instances are self-hosted)
    /// and without keys. The rate spares the search engines behind the instance, which block
    /// instances that ask too often.
    pub fn searxng_default() -> Self {
        ProviderConfig {
            requests_per_minute: 60,
            ..ProviderConfig::common_defaults()
        }
    }

    fn common_defaults() -> Self {
        ProviderConfig {
            base_url: String::new(),
            api_keys: Vec::new(),
            timeout: Duration::from_secs(10),
            max_retries: 2,
            requests_per_minute: 0,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            backoff_base: Duration::from_millis(200),
        }
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ProviderConfig")
            .field("base_url", &super::http::redacted_url(&self.base_url))
            .field("api_keys", &RedactedKeys(self.api_keys.len()))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .field("backoff_base", &self.backoff_base)
            .finish()
    }
}

/// Shows a key count in place of keys.
pub(crate) struct RedactedKeys(pub(crate) usize);

impl fmt::Debug for RedactedKeys {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "[{} redacted]", self.0)
    }
}
