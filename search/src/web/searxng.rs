//! SearxNG: a self-hosted metasearch engine, asked through its search API.
//!
//! `GET {base}/search?q=…&format=json&categories=general&pageno=1`, plus `time_range=day|week|
//! month|year` when asked (safe search is left to the instance's setting). No credentials by
//! default; with a key, `Authorization: Bearer <key>` for an instance behind an authenticating
//! proxy. The instance must allow the `json` format (`search.formats` in its `settings.yml`):
//! otherwise it answers 403 Forbidden, reported with the setting to change.
//!
//! The answer is one page of results merged from the instance's engines; SearxNG has no
//! result-count parameter, so it is cut to the query's `max_results`. Domain filters become
//! `site:` / `-site:` terms for the engines that understand them and are applied again to the
//! results by host, so they hold whatever the engines do. Answers, corrections, infoboxes and
//! suggestions are tolerated and ignored.
//!
//! The answer names the engines that failed (`unresponsive_engines`, `[name, reason]` pairs)
//! but not those that were asked, so an answer without results that reports failed engines is
//! taken for a failure of the search (an error naming them with their reasons), not for
//! "found nothing"; without such reports an empty answer is an empty success.

use serde::Serialize;
use serde_json::Value;

use super::http::{
    classify_status, error_text, required_array, result_entry, RawResponse, ResultFields, Transport,
};
use super::BreakerState;
use super::{
    check_not_blank, normalise_domains, query_with_site_operators, ProviderConfig, WebError,
    WebProvider, WebQuery, WebResult, WebSearchFuture,
};

/// The provider name in results, errors and logs.
pub const PROVIDER: &str = "searxng";

/// The query string of `GET /search`.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct SearchParams {
    q: String,
    format: &'static str,
    categories: &'static str,
    pageno: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_range: Option<&'static str>,
}

/// A SearxNG client: rate limit, retries and a circuit breaker included; keys (for a proxy in
/// front of the instance) are optional.
#[derive(Debug)]
pub struct SearxngClient {
    transport: Transport,
}

impl SearxngClient {
    /// Fails with a base URL that is not an http(s) URL or a key that cannot be sent in a
    /// header. Without keys the client sends no credentials.
    pub fn new(config: ProviderConfig) -> Result<Self, WebError> {
        Ok(SearxngClient {
            transport: Transport::with_optional_keys(PROVIDER, config)?,
        })
    }

    /// Where this client's circuit breaker stands.
    pub fn breaker_state(&self) -> BreakerState {
        self.transport.breaker_state()
    }

    async fn search_web(&self, query: &WebQuery) -> Result<Vec<WebResult>, WebError> {
        let (params, filter) = search_params(query)?;
        if query.max_results == 0 {
            return Ok(Vec::new());
        }
        let keyed = !self.transport.is_keyless();
        self.transport
            .call(
                |key| {
                    let request = self.transport.get("search")?.query(&params);
                    // The empty key is the keyless client's: nothing to authenticate with.
                    Ok(if key.is_empty() {
                        request
                    } else {
                        request.bearer_auth(key)
                    })
                },
                |response| interpret(response, query.max_results, &filter, keyed),
            )
            .await
    }
}

impl WebProvider for SearxngClient {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn search<'a>(&'a self, query: &'a WebQuery) -> WebSearchFuture<'a> {
        Box::pin(self.search_web(query))
    }
}

/// The query string for `query` and the host filter its results must pass, or why it cannot
/// be sent.
fn search_params(query: &WebQuery) -> Result<(SearchParams, HostFilter), WebError> {
    check_not_blank(PROVIDER, &query.query)?;
    let include = normalise_domains(PROVIDER, &query.include_domains)?;
    let exclude = normalise_domains(PROVIDER, &query.exclude_domains)?;
    let params = SearchParams {
        q: query_with_site_operators(query.query.trim(), &include, &exclude),
        format: "json",
        categories: "general",
        pageno: 1,
        time_range: query.time_range.map(|range| range.as_str()),
    };
    Ok((params, HostFilter::new(&include, &exclude)))
}

/// Domain filters applied to the results' hosts. A domain covers its subdomains (`docs.rs`
/// covers `www.docs.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HostFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl HostFilter {
    /// From normalised domain filters (see `normalise_domains`).
    fn new(include: &[String], exclude: &[String]) -> Self {
        let hosts = |domains: &[String]| domains.iter().map(|domain| filter_host(domain)).collect();
        HostFilter {
            include: hosts(include),
            exclude: hosts(exclude),
        }
    }

    /// Whether a result at `url` passes. Under any filter, a URL without a host cannot be
    /// shown to pass and does not.
    fn allows(&self, url: &str) -> bool {
        if self.include.is_empty() && self.exclude.is_empty() {
            return true;
        }
        let Some(host) = host_of(url) else {
            return false;
        };
        let within = |domain: &String| host_within(&host, domain);
        (self.include.is_empty() || self.include.iter().any(within))
            && !self.exclude.iter().any(within)
    }
}

/// The host a domain filter names, as URLs spell it: no `*.` wildcard (a domain covers its
/// subdomains anyway), no port, international names in their ASCII form.
fn filter_host(domain: &str) -> String {
    let bare = domain.strip_prefix("*.").unwrap_or(domain);
    url::Url::parse(&format!("http://{bare}/"))
        .ok()
        .and_then(|parsed| parsed.host_str().map(str::to_owned))
        .unwrap_or_else(|| bare.to_owned())
}

/// The lowercase host of `url`, without a trailing dot.
fn host_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed
        .host_str()?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Whether `host` is `domain` or one of its subdomains.
fn host_within(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// The error for a non-success status. A 403 is what an instance without the `json` format
/// answers (or, when a key was sent, possibly the proxy in front of it).
fn status_error(response: &RawResponse, parsed: Option<&Value>, keyed: bool) -> WebError {
    if response.status == 403 {
        let mut message = "the instance does not allow the json format: add `json` to \
                           `search.formats` in its settings.yml"
            .to_owned();
        if keyed {
            message.push_str(" (or the proxy in front of it refused the api key)");
        }
        return WebError::Provider {
            provider: PROVIDER,
            status: 403,
            message,
        };
    }
    let message = error_text(response, parsed);
    classify_status(
        PROVIDER,
        response.status,
        response.retry_after,
        message,
        false,
    )
}

/// Results (at most `limit`, from the hosts `filter` allows) or the error a response stands
/// for.
fn interpret(
    response: RawResponse,
    limit: usize,
    filter: &HostFilter,
    keyed: bool,
) -> Result<Vec<WebResult>, WebError> {
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    if !(200..300).contains(&response.status) {
        return Err(status_error(&response, parsed.as_ref(), keyed));
    }
    let Some(Value::Object(fields)) = parsed else {
        return Err(WebError::Malformed {
            provider: PROVIDER,
            message: format!("expected a json object, got `{}`", response.body_excerpt()),
        });
    };
    let items = required_array(PROVIDER, &fields, "results", |_| false)?;
    if items.is_empty() {
        let failed = unresponsive_engines(fields.get("unresponsive_engines"));
        if !failed.is_empty() {
            return Err(WebError::EnginesUnresponsive {
                provider: PROVIDER,
                engines: failed.join(", "),
            });
        }
        return Ok(Vec::new());
    }
    let usable: Vec<WebResult> = items.iter().filter_map(search_result).collect();
    if usable.is_empty() {
        return Err(WebError::Malformed {
            provider: PROVIDER,
            message: "no `results` entry has a `url`".to_owned(),
        });
    }
    // Filtered before the cut, so that up to `limit` allowed results remain; ranks count the
    // results returned.
    Ok(usable
        .into_iter()
        .filter(|result| filter.allows(&result.url))
        .take(limit)
        .enumerate()
        .map(|(index, result)| WebResult {
            rank: index + 1,
            ..result
        })
        .collect())
}

/// `name (reason)` for each `[name, reason]` pair of `unresponsive_engines`; entries of
/// another shape are skipped (the list only explains a failure).
fn unresponsive_engines(value: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(entries)) = value else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let pair = entry.as_array()?;
            let name = pair.first()?.as_str()?.trim();
            if name.is_empty() {
                return None;
            }
            let reason = pair
                .get(1)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|reason| !reason.is_empty());
            Some(match reason {
                Some(reason) => format!("{name} ({reason})"),
                None => name.to_owned(),
            })
        })
        .collect()
}

/// One `results[]` entry, or `None` for an entry without a URL. The rank is set by the caller.
fn search_result(item: &Value) -> Option<WebResult> {
    let fields = ResultFields {
        url: "url",
        snippet: "content",
        score: Some("score"),
        // An ISO 8601 date and time, or null.
        published: "publishedDate",
    };
    result_entry(item, PROVIDER, &fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> HostFilter {
        let owned = |domains: &[&str]| -> Vec<String> {
            domains.iter().map(|domain| (*domain).to_owned()).collect()
        };
        HostFilter::new(&owned(include), &owned(exclude))
    }

    #[test]
    fn host_filter_covers_subdomains_only() {
        let docs = filter(&["docs.rs", "*.tokio.rs"], &[]);
        assert!(docs.allows("https://docs.rs/tokio"));
        assert!(docs.allows("https://WWW.Docs.RS./tokio"));
        assert!(docs.allows("https://tokio.rs/tokio/tutorial"));
        assert!(!docs.allows("https://notdocs.rs/"));
        assert!(!docs.allows("https://docs.rs.evil.example/"));
        assert!(!docs.allows("not a url"));

        let no_reddit = filter(&[], &["reddit.com"]);
        assert!(no_reddit.allows("https://stackoverflow.com/q/1"));
        assert!(!no_reddit.allows("https://old.reddit.com/r/rust"));
        assert!(filter(&[], &[]).allows("not a url"));

        // International names match in either spelling; a port in a filter does not narrow it.
        assert!(filter(&["bücher.example"], &[]).allows("https://xn--bcher-kva.example/"));
        assert!(filter(&["localhost:8080"], &[]).allows("http://localhost:9000/"));
    }

    #[test]
    fn unresponsive_engines_tolerate_odd_entries() {
        let value = serde_json::json!([
            ["google", "timeout"],
            ["brave"],
            "qwant",
            [42, "x"],
            ["startpage", "  "]
        ]);
        assert_eq!(
            unresponsive_engines(Some(&value)),
            ["google (timeout)", "brave", "startpage"]
        );
        assert!(unresponsive_engines(Some(&serde_json::json!({}))).is_empty());
        assert!(unresponsive_engines(None).is_empty());
    }
}
