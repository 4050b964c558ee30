//! SearxNG: request shape, response parsing, domain filters, error mapping and the source the
//! configuration makes of it.

use std::time::Duration;

use serde_json::json;

use super::crate_under_test::source::{Source, SourceQuery};
use super::crate_under_test::sources::web::WebSource;
use super::crate_under_test::web::{
    ProviderConfig, SearxngClient, TimeRange, WebError, WebProvider, WebQuery,
};
use super::support::{fast_config, MockServer, Reply, SEARXNG_SEARCH};

fn client(server: &MockServer) -> SearxngClient {
    SearxngClient::new(fast_config(&server.url, &[])).unwrap()
}

fn urls(results: &[super::crate_under_test::web::WebResult]) -> Vec<&str> {
    results.iter().map(|result| result.url.as_str()).collect()
}

/// An answer in SearxNG's format with the given results and unresponsive engines.
fn answer(results: serde_json::Value, unresponsive: serde_json::Value) -> String {
    json!({
        "query": "tokio select",
        "number_of_results": 0,
        "results": results,
        "answers": [],
        "corrections": [],
        "infoboxes": [],
        "suggestions": [],
        "unresponsive_engines": unresponsive,
    })
    .to_string()
}

/// What Flask answers for `abort(403)`: SearxNG's reply to a format it does not allow.
const FORBIDDEN_PAGE: &str = "<!doctype html>\n<html lang=en>\n<title>403 Forbidden</title>\n\
    <h1>Forbidden</h1>\n<p>You don&#39;t have the permission to access the requested resource. \
    It is either read-protected or not readable by the server.</p>\n";

#[tokio::test]
async fn parses_a_full_answer_and_ignores_the_extras() {
    let server = MockServer::always(Reply::json(200, SEARXNG_SEARCH)).await;
    let results = client(&server)
        .search(&WebQuery::new("tokio select macro", 10))
        .await
        .unwrap();

    // The infobox, suggestions and one unresponsive engine beside results change nothing.
    assert_eq!(results.len(), 4);
    let first = &results[0];
    assert_eq!(
        first.url,
        "https://docs.rs/tokio/latest/tokio/macro.select.html"
    );
    assert_eq!(first.title, "select in tokio - Rust");
    assert!(first
        .snippet
        .starts_with("Waits on multiple concurrent branches"));
    assert_eq!(first.provider, "searxng");
    assert_eq!(first.score, Some(9.0));
    assert_eq!(first.published, None);
    assert_eq!(first.rank, 1);
    assert!((results[1].score.unwrap() - 2.6667).abs() < 0.001);
    assert_eq!(results[1].published.as_deref(), Some("2024-03-03T00:00:00"));
    assert_eq!(
        results[2].published.as_deref(),
        Some("2023-11-20T14:32:10+00:00")
    );
    let ranks: Vec<usize> = results.iter().map(|result| result.rank).collect();
    assert_eq!(ranks, [1, 2, 3, 4]);
}

#[tokio::test]
async fn sends_the_documented_request() {
    let server = MockServer::always(Reply::json(200, SEARXNG_SEARCH)).await;
    let searxng = SearxngClient::new(fast_config(&format!("{}/searx", server.url), &[])).unwrap();
    let query = WebQuery {
        time_range: Some(TimeRange::Week),
        ..WebQuery::new("  tokio select  ", 5)
    };
    searxng.search(&query).await.unwrap();
    searxng
        .search(&WebQuery::new("rust & c++ ?", 5))
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/searx/search", "the base path is kept");
    let expected = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    };
    assert_eq!(
        request.query,
        expected(&[
            ("q", "tokio select"),
            ("format", "json"),
            ("categories", "general"),
            ("pageno", "1"),
            ("time_range", "week"),
        ])
    );
    assert_eq!(request.query_param("safesearch"), None);
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.body, serde_json::Value::Null, "no body");
    // Without a time range there is no such parameter; the text arrives as it was written.
    assert_eq!(requests[1].query_param("q"), Some("rust & c++ ?"));
    assert_eq!(requests[1].query_param("time_range"), None);
}

#[tokio::test]
async fn keyless_or_with_a_key_for_a_proxy() {
    let server = MockServer::always(Reply::json(200, SEARXNG_SEARCH)).await;
    // Blank entries are no keys: the client is keyless, not refused.
    let keyless = SearxngClient::new(fast_config(&server.url, &["", "  "])).unwrap();
    keyless.search(&WebQuery::new("tokio", 5)).await.unwrap();
    let keyed = SearxngClient::new(fast_config(&server.url, &["proxy-token"])).unwrap();
    keyed.search(&WebQuery::new("tokio", 5)).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer proxy-token")
    );
    assert!(!format!("{keyed:?}").contains("proxy-token"));

    // Credentials in the base URL (basic authentication for a proxy) stay out of `Debug`.
    let with_password = fast_config("https://aiex:hunter2@searx.example/", &[]);
    assert!(!format!("{with_password:?}").contains("hunter2"));
    let client = SearxngClient::new(with_password).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("aiex:"), "{shown}");
    assert!(shown.contains("https://***@searx.example/"), "{shown}");
}

#[tokio::test]
async fn truncates_to_max_results() {
    let server = MockServer::always(Reply::json(200, SEARXNG_SEARCH)).await;
    let searxng = client(&server);

    let two = searxng.search(&WebQuery::new("tokio", 2)).await.unwrap();
    assert_eq!(
        urls(&two),
        [
            "https://docs.rs/tokio/latest/tokio/macro.select.html",
            "https://tokio.rs/tokio/tutorial/select",
        ]
    );
    let many = searxng.search(&WebQuery::new("tokio", 50)).await.unwrap();
    assert_eq!(many.len(), 4, "one page, all of it");
    // SearxNG has no count parameter.
    assert_eq!(server.requests()[0].query_param("num"), None);
    assert_eq!(server.requests()[0].query_param("max_results"), None);

    // Zero results asked: nothing to send.
    assert!(searxng
        .search(&WebQuery::new("tokio", 0))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn domain_filters_go_into_the_query_and_hold_on_the_results() {
    // The stand-in ignores `site:` like an engine that does not support it: every result of
    // the fixture comes back, and the client filters.
    let server = MockServer::always(Reply::json(200, SEARXNG_SEARCH)).await;
    let searxng = client(&server);

    let query = WebQuery {
        include_domains: vec![
            "docs.rs".to_owned(),
            "https://Tokio.rs/".to_owned(),
            String::new(),
        ],
        exclude_domains: vec!["reddit.com".to_owned()],
        ..WebQuery::new("tokio select", 10)
    };
    let included = searxng.search(&query).await.unwrap();
    assert_eq!(
        server.requests()[0].query_param("q"),
        Some("tokio select site:docs.rs OR site:tokio.rs -site:reddit.com")
    );
    assert_eq!(
        urls(&included),
        [
            "https://docs.rs/tokio/latest/tokio/macro.select.html",
            "https://tokio.rs/tokio/tutorial/select",
        ]
    );

    // An excluded domain covers its subdomains (`www.reddit.com`); ranks count what is left.
    let query = WebQuery {
        exclude_domains: vec!["reddit.com".to_owned()],
        ..WebQuery::new("tokio select", 10)
    };
    let excluded = searxng.search(&query).await.unwrap();
    assert_eq!(
        server.requests()[1].query_param("q"),
        Some("tokio select -site:reddit.com")
    );
    assert_eq!(excluded.len(), 3);
    assert!(excluded.iter().all(|result| !result.url.contains("reddit")));
    assert_eq!(
        excluded[2].url,
        "https://stackoverflow.com/questions/60561573/how-does-tokioselect-work"
    );
    assert_eq!(excluded[2].rank, 3);

    // Filtered before the cut: the two allowed results, not the first two of the page.
    let query = WebQuery {
        include_domains: vec!["stackoverflow.com".to_owned(), "reddit.com".to_owned()],
        ..WebQuery::new("tokio select", 2)
    };
    let late = searxng.search(&query).await.unwrap();
    assert_eq!(late.len(), 2);
    assert!(late[0].url.starts_with("https://www.reddit.com/"));
    assert!(late[1].url.starts_with("https://stackoverflow.com/"));

    // Nothing from the asked domain: an empty success, not a malformed answer.
    let query = WebQuery {
        include_domains: vec!["example.org".to_owned()],
        ..WebQuery::new("tokio select", 10)
    };
    assert!(searxng.search(&query).await.unwrap().is_empty());

    // A filter that would smuggle operators into the query is refused before sending.
    let query = WebQuery {
        include_domains: vec!["docs.rs OR site:evil.example".to_owned()],
        ..WebQuery::new("tokio select", 10)
    };
    let count = server.request_count();
    let error = searxng.search(&query).await.unwrap_err();
    assert!(
        matches!(
            error,
            WebError::BadRequest {
                provider: "searxng",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.request_count(), count);
}

#[tokio::test]
async fn forbidden_json_says_how_to_enable_it() {
    let server =
        MockServer::always(Reply::text(403, "text/html; charset=utf-8", FORBIDDEN_PAGE)).await;
    let error = client(&server)
        .search(&WebQuery::new("tokio", 5))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "searxng: http 403: the instance does not allow the json format: add `json` to \
         `search.formats` in its settings.yml"
    );
    assert!(!error.is_retryable());
    assert_eq!(server.request_count(), 1, "not retried");

    // With a key, the proxy in front of the instance may be the one refusing.
    let keyed = SearxngClient::new(fast_config(&server.url, &["proxy-token"])).unwrap();
    let error = keyed.search(&WebQuery::new("tokio", 5)).await.unwrap_err();
    let shown = error.to_string();
    assert!(shown.contains("search.formats"), "{shown}");
    assert!(
        shown.ends_with("(or the proxy in front of it refused the api key)"),
        "{shown}"
    );
    assert!(!shown.contains("proxy-token"), "{shown}");
}

#[tokio::test]
async fn every_engine_unresponsive_is_an_error_and_no_results_is_not() {
    let failed = answer(
        json!([]),
        json!([
            ["brave", "Suspended: too many requests"],
            ["duckduckgo", "CAPTCHA"],
            ["google", "timeout"]
        ]),
    );
    let server = MockServer::always(Reply::json(200, &failed)).await;
    let error = client(&server)
        .search(&WebQuery::new("tokio", 5))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        WebError::EnginesUnresponsive {
            provider: "searxng",
            engines: "brave (Suspended: too many requests), duckduckgo (CAPTCHA), google (timeout)"
                .to_owned(),
        }
    );
    assert_eq!(
        error.to_string(),
        "searxng: no results, engines unresponsive: brave (Suspended: too many requests), \
         duckduckgo (CAPTCHA), google (timeout)"
    );
    assert!(!error.is_retryable());
    assert_eq!(server.request_count(), 1, "not retried");

    // Engines that answered with nothing: an empty success. (Newer instances leave out
    // `number_of_results`.)
    let nothing = json!({
        "query": "qwzxv",
        "results": [],
        "answers": [],
        "corrections": [],
        "infoboxes": [],
        "suggestions": [],
        "unresponsive_engines": []
    });
    let server = MockServer::always(Reply::json(200, &nothing.to_string())).await;
    assert!(client(&server)
        .search(&WebQuery::new("qwzxv", 5))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn garbage_is_malformed() {
    let bodies = [
        Reply::text(
            200,
            "text/html",
            "<!doctype html><title>SearXNG</title><form>",
        ),
        Reply::json(200, r#"{"query": "tokio", "suggestions": []}"#),
        Reply::json(
            200,
            r#"{"query": "tokio", "results": {"url": "https://a.example/"}}"#,
        ),
        Reply::json(
            200,
            &answer(
                json!([{ "title": "no url", "url": null, "score": 1.0 }]),
                json!([]),
            ),
        ),
        Reply::json(200, "[]"),
    ];
    for reply in bodies {
        let server = MockServer::always(reply).await;
        let error = client(&server)
            .search(&WebQuery::new("tokio", 5))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                WebError::Malformed {
                    provider: "searxng",
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(server.request_count(), 1, "{error:?} is not retried");
    }
}

#[tokio::test]
async fn a_refused_parameter_is_a_bad_request() {
    let server = MockServer::always(Reply::json(
        400,
        r#"{"error": "Invalid value \"decade\" for parameter time_range"}"#,
    ))
    .await;
    let error = client(&server)
        .search(&WebQuery::new("tokio", 5))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "searxng: bad request: Invalid value \"decade\" for parameter time_range"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn retries_server_errors_and_rate_limits() {
    let server = MockServer::sequence(vec![
        Reply::json(500, r#"{"error": "search error"}"#),
        Reply::text(502, "text/html", "<html><body>Bad Gateway</body></html>"),
        Reply::json(200, SEARXNG_SEARCH),
    ])
    .await;
    assert_eq!(
        client(&server)
            .search(&WebQuery::new("tokio", 10))
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(server.request_count(), 3);

    let server = MockServer::always(Reply::json(500, r#"{"error": "search error"}"#)).await;
    let error = client(&server)
        .search(&WebQuery::new("tokio", 10))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        WebError::Provider {
            provider: "searxng",
            status: 500,
            message: "search error".to_owned()
        }
    );
    assert_eq!(
        server.request_count(),
        3,
        "the first attempt and two retries"
    );

    // The instance's limiter answers in plain text.
    let server = MockServer::always(Reply::text(
        429,
        "text/html; charset=utf-8",
        "Too Many Requests",
    ))
    .await;
    let error = client(&server)
        .search(&WebQuery::new("tokio", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            WebError::RateLimited {
                provider: "searxng",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn times_out_and_retries() {
    let server = MockServer::sequence(vec![Reply::hang(), Reply::json(200, SEARXNG_SEARCH)]).await;
    let config = ProviderConfig {
        timeout: Duration::from_millis(200),
        ..fast_config(&server.url, &[])
    };
    let searxng = SearxngClient::new(config.clone()).unwrap();
    assert_eq!(
        searxng
            .search(&WebQuery::new("tokio", 10))
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(server.request_count(), 2);

    let server = MockServer::always(Reply::hang()).await;
    let searxng = SearxngClient::new(ProviderConfig {
        base_url: server.url.clone(),
        max_retries: 0,
        ..config
    })
    .unwrap();
    let error = searxng
        .search(&WebQuery::new("tokio", 10))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        WebError::Timeout {
            provider: "searxng"
        }
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn construction_checks_the_url() {
    for url in ["", "not a url", "ftp://searx.example/"] {
        let error = SearxngClient::new(fast_config(url, &[])).unwrap_err();
        assert!(
            matches!(
                error,
                WebError::InvalidConfig {
                    provider: "searxng",
                    ..
                }
            ),
            "{url}: {error:?}"
        );
    }
    let bad_key =
        SearxngClient::new(fast_config("http://127.0.0.1:9", &["proxy\ntoken"])).unwrap_err();
    assert!(
        matches!(bad_key, WebError::InvalidConfig { .. }),
        "{bad_key:?}"
    );
    assert!(!bad_key.to_string().contains("proxy"));
    assert_eq!(ProviderConfig::searxng_default().base_url, "");
}

fn config_with(env: &[(&str, &str)]) -> aiex_config::Config {
    aiex_config::Config::load(&aiex_config::LoadOptions {
        file: None,
        env: Some(
            env.iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        ),
        overrides: Vec::new(),
    })
    .unwrap()
}

#[tokio::test]
async fn the_configured_url_makes_the_web_searxng_source() {
    let server = MockServer::always(Reply::json(200, SEARXNG_SEARCH)).await;
    assert!(WebSource::from_config(&config_with(&[])).unwrap().is_none());

    let config = config_with(&[("AIEX__WEB__SEARXNG_URL", &server.url)]);
    let source = WebSource::from_config(&config).unwrap().unwrap();
    assert_eq!(source.name(), "web:searxng");
    let mut query = SourceQuery::new("tokio select", 3);
    query.time_range = Some("month".to_owned());
    let found = source.search(&query).await.unwrap();
    assert_eq!(found.hits.len(), 3);
    assert!(found
        .hits
        .iter()
        .all(|hit| hit.locator.source == "web:searxng"));
    assert_eq!(
        found.hits[0].locator.url.as_deref(),
        Some("https://docs.rs/tokio/latest/tokio/macro.select.html")
    );
    assert_eq!(
        found.hits[1].published.as_deref(),
        Some("2024-03-03T00:00:00")
    );
    assert_eq!(
        server.requests()[0].query_param("time_range"),
        Some("month")
    );
    assert_eq!(server.requests()[0].header("authorization"), None);

    // A host that does not parse is a clear error when the source is built.
    let error = WebSource::from_config(&config_with(&[("AIEX__WEB__SEARXNG_URL", "http://")]))
        .err()
        .unwrap();
    assert!(
        matches!(
            error,
            WebError::InvalidConfig {
                provider: "searxng",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn searxng_comes_after_serper_in_the_fallback_chain() {
    let serper_server =
        MockServer::always(Reply::json(503, r#"{"message":"Service unavailable"}"#)).await;
    let searxng_server = MockServer::always(Reply::json(200, SEARXNG_SEARCH)).await;
    let config = config_with(&[
        ("AIEX__WEB__SERPER_API_KEY", "serper-key"),
        ("AIEX__WEB__SERPER_URL", &serper_server.url),
        ("AIEX__WEB__SEARXNG_URL", &searxng_server.url),
        ("AIEX__WEB__SEARXNG_API_KEY", "proxy-token"),
        ("AIEX__WEB__MAX_RETRIES", "0"),
    ]);
    let source = WebSource::from_config(&config).unwrap().unwrap();
    assert_eq!(source.name(), "web");
    let found = source
        .search(&SourceQuery::new("tokio select", 5))
        .await
        .unwrap();
    assert_eq!(found.hits.len(), 4);
    assert!(found
        .hits
        .iter()
        .all(|hit| hit.locator.source == "web:searxng"));
    assert_eq!(serper_server.request_count(), 1, "serper was asked first");
    assert_eq!(
        searxng_server.requests()[0].header("authorization"),
        Some("Bearer proxy-token")
    );
}
