//! Tavily (`api.tavily.com`): web search built for LLM agents.
//!
//! `POST {base}/search` with `Authorization: Bearer <key>`, a basic-depth search (1 credit). The
//! query is limited to 400 characters; domain filters and the time range are body fields. Errors
//! come as `{"detail": {"error": "…"}}` with 400, 401, 403, 429, 432 or 433.

use serde::Serialize;
use serde_json::Value;

use super::http::{
    classify_status, error_text, required_array, result_entry, RawResponse, ResultFields, Transport,
};
use super::BreakerState;
use super::{
    check_not_blank, normalise_domains, ProviderConfig, WebError, WebProvider, WebQuery, WebResult,
    WebSearchFuture,
};

/// The provider name in results, errors and logs.
pub const PROVIDER: &str = "tavily";
/// Longest `query` Tavily accepts.
pub const MAX_QUERY_CHARS: usize = 400;
/// Most results one request can ask for.
pub const MAX_RESULTS: usize = 20;

/// The request body of `POST /search`.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct SearchBody {
    query: String,
    search_depth: &'static str,
    topic: &'static str,
    max_results: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_range: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    include_domains: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exclude_domains: Vec<String>,
}

/// A Tavily client: key rotation, rate limits, retries and a circuit breaker included.
#[derive(Debug)]
pub struct TavilyClient {
    transport: Transport,
}

impl TavilyClient {
    /// Fails without a usable key or with a base URL that is not an http(s) URL.
    pub fn new(config: ProviderConfig) -> Result<Self, WebError> {
        Ok(TavilyClient {
            transport: Transport::new(PROVIDER, config)?,
        })
    }

    /// Where this client's circuit breaker stands.
    pub fn breaker_state(&self) -> BreakerState {
        self.transport.breaker_state()
    }

    async fn search_web(&self, query: &WebQuery) -> Result<Vec<WebResult>, WebError> {
        let body = search_body(query)?;
        if query.max_results == 0 {
            return Ok(Vec::new());
        }
        let limit = body.max_results;
        self.transport
            .call(
                |key| Ok(self.transport.post("search")?.bearer_auth(key).json(&body)),
                |response| interpret(response, limit),
            )
            .await
    }
}

impl WebProvider for TavilyClient {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn search<'a>(&'a self, query: &'a WebQuery) -> WebSearchFuture<'a> {
        Box::pin(self.search_web(query))
    }
}

/// The body for `query`, or why it cannot be sent.
fn search_body(query: &WebQuery) -> Result<SearchBody, WebError> {
    check_not_blank(PROVIDER, &query.query)?;
    let text = query.query.trim();
    let length = text.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(WebError::QueryTooLong {
            provider: PROVIDER,
            max: MAX_QUERY_CHARS,
            got: length,
        });
    }
    Ok(SearchBody {
        query: text.to_owned(),
        search_depth: "basic",
        topic: "general",
        max_results: query.max_results.min(MAX_RESULTS),
        time_range: query.time_range.map(|range| range.as_str()),
        include_domains: normalise_domains(PROVIDER, &query.include_domains)?,
        exclude_domains: normalise_domains(PROVIDER, &query.exclude_domains)?,
    })
}

/// Tavily words spent credits as "usage limit" (429) or a plan / pay-as-you-go limit (432, 433).
fn is_quota_error(status: u16, message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    matches!(status, 432 | 433)
        || lower.contains("usage limit")
        || lower.contains("plan limit")
        || lower.contains("credits")
}

/// Results (at most `limit`) or the error a response stands for.
fn interpret(response: RawResponse, limit: usize) -> Result<Vec<WebResult>, WebError> {
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    if !(200..300).contains(&response.status) {
        let message = error_text(&response, parsed.as_ref());
        let quota = is_quota_error(response.status, &message);
        return Err(classify_status(
            PROVIDER,
            response.status,
            response.retry_after,
            message,
            quota,
        ));
    }
    let Some(Value::Object(fields)) = parsed else {
        return Err(WebError::Malformed {
            provider: PROVIDER,
            message: format!("expected a json object, got `{}`", response.body_excerpt()),
        });
    };
    let items = required_array(PROVIDER, &fields, "results", |message| {
        is_quota_error(response.status, message)
    })?;
    super::http::ranked_results(
        items,
        limit,
        search_result,
        PROVIDER,
        "no `results` entry has a `url`",
    )
}

/// One `results[]` entry, or `None` for an entry without a URL. The rank is set by the caller.
fn search_result(item: &Value) -> Option<WebResult> {
    let fields = ResultFields {
        url: "url",
        snippet: "content",
        score: Some("score"),
        published: "published_date",
    };
    result_entry(item, PROVIDER, &fields)
}
