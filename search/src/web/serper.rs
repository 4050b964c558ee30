//! Serper (`google.serper.dev`): Google results as JSON.
//!
//! `POST {base}/search` with `X-API-KEY`. Domain filters become Google operators inside `q`
//! (`site:`, `-site:`), which count towards the 2,048-character limit; the time range becomes
//! `tbs=qdr:…`. Only `organic` results are returned; the answer box, knowledge graph and
//! "people also ask" are tolerated and ignored.

use serde::Serialize;
use serde_json::Value;

use super::http::{
    classify_status, error_text, json_error_message, json_kind, result_entry, RawResponse,
    ResultFields, Transport,
};
use super::BreakerState;
use super::{
    check_not_blank, normalise_domains, query_with_site_operators, ProviderConfig, TimeRange,
    WebError, WebProvider, WebQuery, WebResult, WebSearchFuture,
};

/// The provider name in results, errors and logs.
pub const PROVIDER: &str = "serper";
/// Longest `q` Serper accepts, operators included.
pub const MAX_QUERY_CHARS: usize = 2048;
/// Most results one request can ask for.
pub const MAX_RESULTS: usize = 100;

/// The request body of `POST /search`.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct SearchBody {
    q: String,
    num: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    tbs: Option<&'static str>,
}

/// A Serper client: key rotation, rate limits, retries and a circuit breaker included.
#[derive(Debug)]
pub struct SerperClient {
    transport: Transport,
}

impl SerperClient {
    /// Fails without a usable key or with a base URL that is not an http(s) URL.
    pub fn new(config: ProviderConfig) -> Result<Self, WebError> {
        Ok(SerperClient {
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
        let limit = body.num;
        self.transport
            .call(
                |key| {
                    Ok(self
                        .transport
                        .post("search")?
                        .header("X-API-KEY", key)
                        .json(&body))
                },
                |response| interpret(response, limit),
            )
            .await
    }
}

impl WebProvider for SerperClient {
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
    let include = normalise_domains(PROVIDER, &query.include_domains)?;
    let exclude = normalise_domains(PROVIDER, &query.exclude_domains)?;
    let q = query_with_site_operators(query.query.trim(), &include, &exclude);
    let length = q.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(WebError::QueryTooLong {
            provider: PROVIDER,
            max: MAX_QUERY_CHARS,
            got: length,
        });
    }
    Ok(SearchBody {
        q,
        num: query.max_results.clamp(1, MAX_RESULTS),
        tbs: query.time_range.map(tbs),
    })
}

fn tbs(time_range: TimeRange) -> &'static str {
    match time_range {
        TimeRange::Day => "qdr:d",
        TimeRange::Week => "qdr:w",
        TimeRange::Month => "qdr:m",
        TimeRange::Year => "qdr:y",
    }
}

/// Serper reports spent credits in messages such as "Not enough credits".
fn is_quota_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("credits") || lower.contains("quota")
}

/// Results (at most `limit`) or the error a response stands for.
fn interpret(response: RawResponse, limit: usize) -> Result<Vec<WebResult>, WebError> {
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    if !(200..300).contains(&response.status) {
        let message = error_text(&response, parsed.as_ref());
        let quota = is_quota_message(&message);
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
    let organic = match fields.get("organic") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => {
            // No `organic`: an empty result set, unless the body is an error in disguise.
            let body = Value::Object(fields);
            return match json_error_message(&body) {
                Some(message) if is_quota_message(&message) => Err(WebError::QuotaExhausted {
                    provider: PROVIDER,
                    message,
                }),
                Some(message) => Err(WebError::BadRequest {
                    provider: PROVIDER,
                    message,
                }),
                None => Ok(Vec::new()),
            };
        }
        Some(other) => {
            return Err(WebError::Malformed {
                provider: PROVIDER,
                message: format!("`organic` is not an array but {}", json_kind(other)),
            })
        }
    };
    super::http::ranked_results(
        organic,
        limit,
        organic_result,
        PROVIDER,
        "no `organic` entry has a `link`",
    )
}

/// One `organic[]` entry, or `None` for an entry without a link. The rank is set by the caller.
fn organic_result(item: &Value) -> Option<WebResult> {
    let fields = ResultFields {
        url: "link",
        snippet: "snippet",
        score: None,
        published: "date",
    };
    result_entry(item, PROVIDER, &fields)
}
