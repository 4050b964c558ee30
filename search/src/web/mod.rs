//! Web-search provider clients: [Serper](serper) (Google results), [Tavily](tavily) and
//! [SearxNG](searxng) (a self-hosted metasearch instance, no key needed), plus a
//! [`WebFallback`] that tries several providers in order.
//!
//! Every client speaks its provider's wire format exactly (`design/WIRE.md`), checks a query's
//! limits before anything is sent, and wraps each call in the same resilience layers, outermost
//! first:
//!
//! 1. a circuit breaker per client, which rejects calls at once while the provider is failing;
//! 2. retries with exponential backoff and jitter on rate limits, 5xx, timeouts and connection
//!    errors, honouring `retry-after` (seconds or an HTTP date);
//! 3. key rotation: a key that is refused (bad, out of credits, rate limited) is set aside for a
//!    while and the same request goes out with the next key (a keyless SearxNG client has one
//!    implicit slot that sends no credentials);
//! 4. a rate limiter per key, which makes a call wait (never longer than the request timeout)
//!    rather than spend a request the key's budget does not allow.
//!
//! Threading: everything is async and lives inside the returned future; nothing is spawned, so
//! dropping a search future cancels its HTTP request. Keys never appear in logs, errors or `Debug`
//! output.

mod config;
mod error;
mod fallback;
mod http;
mod resilience;
pub mod searxng;
pub mod serper;
pub mod tavily;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use serde::Serialize;

pub use aiex_resilience::BreakerState;
pub use config::ProviderConfig;
pub use error::WebError;
pub use fallback::WebFallback;
pub use searxng::SearxngClient;
pub use serper::SerperClient;
pub use tavily::TavilyClient;

/// The future every [`WebProvider`] returns.
pub type WebSearchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<WebResult>, WebError>> + Send + 'a>>;

/// One result from a web-search provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebResult {
    pub url: String,
    pub title: String,
    pub snippet: String,
    /// The provider's relevance score, where it gives one: Tavily's lies in 0..1, SearxNG's
    /// (summed over the engines that found the page) is unbounded; Serper gives none.
    pub score: Option<f32>,
    /// `serper`, `tavily` or `searxng`.
    pub provider: &'static str,
    /// The publication date as the provider wrote it (`"3 days ago"`, `"2024-05-01"`,
    /// `"2024-05-01T09:00:00"`, …).
    pub published: Option<String>,
    /// 1-based position in the provider's answer.
    pub rank: usize,
}

/// How recent results must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeRange {
    Day,
    Week,
    Month,
    Year,
}

impl TimeRange {
    /// The lowercase name: `day`, `week`, `month` or `year`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeRange::Day => "day",
            TimeRange::Week => "week",
            TimeRange::Month => "month",
            TimeRange::Year => "year",
        }
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The error of parsing an unknown time range name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time range `{0}` (expected day, week, month or year)")]
pub struct UnknownTimeRange(pub String);

impl FromStr for TimeRange {
    type Err = UnknownTimeRange;

    /// Accepts `day|week|month|year` and their one-letter forms `d|w|m|y`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" | "d" => Ok(TimeRange::Day),
            "week" | "w" => Ok(TimeRange::Week),
            "month" | "m" => Ok(TimeRange::Month),
            "year" | "y" => Ok(TimeRange::Year),
            _ => Err(UnknownTimeRange(text.to_owned())),
        }
    }
}

/// What a web provider is asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebQuery {
    pub query: String,
    /// Clamped to what each provider allows (Serper 1–100, Tavily 0–20; SearxNG's one page of
    /// results is cut to it); 0 returns no results without a request.
    pub max_results: usize,
    /// Only results from these domains (`docs.rs`, `https://tokio.rs/` and `tokio.rs` alike).
    pub include_domains: Vec<String>,
    /// No results from these domains.
    pub exclude_domains: Vec<String>,
    pub time_range: Option<TimeRange>,
}

impl WebQuery {
    /// A query for at most `max_results` results, without filters.
    pub fn new(query: impl Into<String>, max_results: usize) -> Self {
        WebQuery {
            query: query.into(),
            max_results,
            ..WebQuery::default()
        }
    }
}

/// A web-search provider (or several, see [`WebFallback`]).
pub trait WebProvider: Send + Sync {
    /// `serper`, `tavily`, `searxng`, or `web` for a fallback chain.
    fn name(&self) -> &'static str;

    /// Searches the web. Dropping the future cancels the request.
    fn search<'a>(&'a self, query: &'a WebQuery) -> WebSearchFuture<'a>;
}

/// Cleans one domain filter: no scheme, no path, no trailing dot, lowercase. `None` for an empty
/// entry; an error for one that would smuggle operators or spaces into a query.
fn normalise_domain(provider: &'static str, raw: &str) -> Result<Option<String>, WebError> {
    let trimmed = raw.trim();
    let without_scheme = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.is_empty() {
        return Ok(None);
    }
    let allowed = |character: char| {
        character.is_alphanumeric() || matches!(character, '.' | '-' | '_' | '*' | ':')
    };
    if !host.chars().all(allowed) {
        return Err(WebError::BadRequest {
            provider,
            message: format!("invalid domain filter `{}`", raw.trim()),
        });
    }
    Ok(Some(host))
}

/// [`normalise_domain`] over a list, dropping empty entries and duplicates.
fn normalise_domains(
    provider: &'static str,
    raw_domains: &[String],
) -> Result<Vec<String>, WebError> {
    let mut domains: Vec<String> = Vec::with_capacity(raw_domains.len());
    for raw in raw_domains {
        if let Some(domain) = normalise_domain(provider, raw)? {
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
    }
    Ok(domains)
}

/// `text site:a OR site:b -site:c`: the search-engine operators for domain filters. Several
/// included sites are alternatives, every excluded site is dropped.
fn query_with_site_operators(text: &str, include: &[String], exclude: &[String]) -> String {
    let mut q = text.to_owned();
    let included: Vec<String> = include
        .iter()
        .map(|domain| format!("site:{domain}"))
        .collect();
    if !included.is_empty() {
        q.push(' ');
        q.push_str(&included.join(" OR "));
    }
    for domain in exclude {
        q.push_str(" -site:");
        q.push_str(domain);
    }
    q
}

/// Rejects a blank query before anything is sent.
fn check_not_blank(provider: &'static str, query: &str) -> Result<(), WebError> {
    if query.trim().is_empty() {
        return Err(WebError::BadRequest {
            provider,
            message: "the query is empty".to_owned(),
        });
    }
    Ok(())
}
