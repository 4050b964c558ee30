//! Tavily: request shape, response parsing and error mapping.

use serde_json::json;

use super::crate_under_test::web::{TavilyClient, TimeRange, WebError, WebProvider, WebQuery};
use super::support::{fast_config, MockServer, Reply, TAVILY_SEARCH};

fn client(server: &MockServer) -> TavilyClient {
    TavilyClient::new(fast_config(&server.url, &["tvly-dev-key1"])).unwrap()
}

fn detail(message: &str) -> String {
    json!({ "detail": { "error": message } }).to_string()
}

#[tokio::test]
async fn parses_a_full_response() {
    let server = MockServer::always(Reply::json(200, TAVILY_SEARCH)).await;
    let results = client(&server)
        .search(&WebQuery::new("rust async cancellation safety", 10))
        .await
        .unwrap();

    assert_eq!(results.len(), 3);
    let first = &results[0];
    assert_eq!(
        first.url,
        "https://blog.yoshuawuyts.com/async-cancellation-1/"
    );
    assert_eq!(first.title, "Async Cancellation I - Yoshua Wuyts");
    assert!(first
        .snippet
        .starts_with("In async Rust, any future can be cancelled"));
    assert_eq!(first.provider, "tavily");
    assert_eq!(first.rank, 1);
    assert!((first.score.unwrap() - 0.865).abs() < 0.001);
    assert_eq!(first.published, None);
    // A score sent as a string still counts.
    assert!((results[1].score.unwrap() - 0.7923).abs() < 0.0001);
    assert_eq!(
        results[1].published.as_deref(),
        Some("Tue, 14 May 2024 09:00:00 GMT")
    );
    assert_eq!(results[2].rank, 3);
}

#[tokio::test]
async fn sends_the_documented_request() {
    let server = MockServer::always(Reply::json(200, TAVILY_SEARCH)).await;
    let tavily = client(&server);
    let query = WebQuery {
        query: "rust async cancellation".to_owned(),
        max_results: 5,
        include_domains: vec!["docs.rs".to_owned(), "https://Tokio.rs/tokio/".to_owned()],
        exclude_domains: vec!["w3schools.com".to_owned()],
        time_range: Some(TimeRange::Month),
    };
    tavily.search(&query).await.unwrap();
    tavily.search(&WebQuery::new("rust", 50)).await.unwrap();

    let requests = server.requests();
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/search");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer tvly-dev-key1")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-api-key"), None);
    assert_eq!(
        request.body,
        json!({
            "query": "rust async cancellation",
            "search_depth": "basic",
            "topic": "general",
            "max_results": 5,
            "time_range": "month",
            "include_domains": ["docs.rs", "tokio.rs"],
            "exclude_domains": ["w3schools.com"],
        })
    );
    assert_eq!(
        requests[1].body,
        json!({ "query": "rust", "search_depth": "basic", "topic": "general", "max_results": 20 })
    );
}

#[tokio::test]
async fn rejects_a_long_query_before_sending() {
    let server = MockServer::always(Reply::json(200, TAVILY_SEARCH)).await;
    let tavily = client(&server);

    let error = tavily
        .search(&WebQuery::new("q".repeat(401), 5))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        WebError::QueryTooLong {
            provider: "tavily",
            max: 400,
            got: 401
        }
    );
    assert_eq!(server.request_count(), 0);

    // Domain filters are body fields and do not count.
    let mut query = WebQuery::new("q".repeat(400), 5);
    query.include_domains = vec!["docs.rs".to_owned()];
    tavily.search(&query).await.unwrap();
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn maps_detail_errors() {
    let cases = [
        (
            Reply::json(
                400,
                &detail("Query is too long. Max query length is 400 characters."),
            ),
            "bad_request",
        ),
        (
            Reply::json(401, &detail("Unauthorized: missing or invalid API key.")),
            "unauthorized",
        ),
        (Reply::json(403, &detail("Forbidden")), "unauthorized"),
        (
            Reply::json(
                432,
                &detail(
                    "This request exceeds your plan's set usage limit. Please upgrade your plan.",
                ),
            ),
            "quota",
        ),
        (
            Reply::json(
                433,
                &detail("This request exceeds the pay-as-you-go limit."),
            ),
            "quota",
        ),
        (
            Reply::json(
                429,
                &detail("This request exceeds your plan's set usage limit."),
            ),
            "quota",
        ),
        (
            Reply::json(
                200,
                &detail("Invalid topic. Must be 'general', 'news' or 'finance'."),
            ),
            "bad_request",
        ),
    ];
    for (reply, expected) in cases {
        let server = MockServer::always(reply).await;
        let error = client(&server)
            .search(&WebQuery::new("rust", 5))
            .await
            .unwrap_err();
        let matched = match expected {
            "bad_request" => matches!(
                error,
                WebError::BadRequest {
                    provider: "tavily",
                    ..
                }
            ),
            "unauthorized" => matches!(
                error,
                WebError::Unauthorized {
                    provider: "tavily",
                    ..
                }
            ),
            _ => matches!(
                error,
                WebError::QuotaExhausted {
                    provider: "tavily",
                    ..
                }
            ),
        };
        assert!(matched, "expected {expected}, got {error:?}");
        assert_eq!(server.request_count(), 1, "{expected} is not retried");
    }
    let server = MockServer::always(Reply::json(
        401,
        &detail("Unauthorized: missing or invalid API key."),
    ))
    .await;
    let error = client(&server)
        .search(&WebQuery::new("rust", 5))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "tavily: unauthorized: Unauthorized: missing or invalid API key."
    );
}

#[tokio::test]
async fn garbage_is_malformed() {
    let bodies = [
        Reply::text(200, "text/plain", "internal error"),
        Reply::json(200, r#"{"query": "rust", "response_time": 0.4}"#),
        Reply::json(200, r#"{"results": {"url": "https://a.example/"}}"#),
        Reply::json(200, r#"{"results": [{"title": "no url", "score": 0.5}]}"#),
    ];
    for reply in bodies {
        let server = MockServer::always(reply).await;
        let error = client(&server)
            .search(&WebQuery::new("rust", 5))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                WebError::Malformed {
                    provider: "tavily",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn empty_results_are_fine() {
    let body = json!({ "query": "qwzxv", "answer": null, "images": [], "results": [], "response_time": "0.52" });
    let server = MockServer::always(Reply::json(200, &body.to_string())).await;
    assert!(client(&server)
        .search(&WebQuery::new("qwzxv", 5))
        .await
        .unwrap()
        .is_empty());
}
