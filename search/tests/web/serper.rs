//! Serper: request shape, response parsing and error mapping.

use serde_json::json;

use super::crate_under_test::web::{SerperClient, TimeRange, WebError, WebProvider, WebQuery};
use super::support::{fast_config, MockServer, Reply, SERPER_SEARCH};

fn client(server: &MockServer) -> SerperClient {
    SerperClient::new(fast_config(&server.url, &["serper-key-1"])).unwrap()
}

#[tokio::test]
async fn parses_a_full_response_and_ignores_the_extras() {
    let server = MockServer::always(Reply::json(200, SERPER_SEARCH)).await;
    let results = client(&server)
        .search(&WebQuery::new("tokio select macro", 10))
        .await
        .unwrap();

    assert_eq!(results.len(), 4);
    let first = &results[0];
    assert_eq!(
        first.url,
        "https://docs.rs/tokio/latest/tokio/macro.select.html"
    );
    assert_eq!(first.title, "select in tokio - Rust - Docs.rs");
    assert!(first
        .snippet
        .starts_with("Waits on multiple concurrent branches"));
    assert_eq!(first.provider, "serper");
    assert_eq!(first.score, None);
    assert_eq!(first.published, None);
    assert_eq!(first.rank, 1);
    assert_eq!(results[1].published.as_deref(), Some("Mar 3, 2024"));
    assert_eq!(results[2].published.as_deref(), Some("2 days ago"));
    let ranks: Vec<usize> = results.iter().map(|result| result.rank).collect();
    assert_eq!(ranks, [1, 2, 3, 4]);
}

#[tokio::test]
async fn sends_the_documented_request() {
    let server = MockServer::always(Reply::json(200, SERPER_SEARCH)).await;
    let query = WebQuery {
        query: "  tokio select  ".to_owned(),
        max_results: 5,
        include_domains: vec![
            "docs.rs".to_owned(),
            "https://Tokio.rs/".to_owned(),
            String::new(),
        ],
        exclude_domains: vec!["reddit.com".to_owned()],
        time_range: Some(TimeRange::Week),
    };
    let results = client(&server).search(&query).await.unwrap();
    assert_eq!(
        results.len(),
        4,
        "fewer results than asked for are all kept"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/search");
    assert_eq!(request.header("x-api-key"), Some("serper-key-1"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.body,
        json!({
            "q": "tokio select site:docs.rs OR site:tokio.rs -site:reddit.com",
            "num": 5,
            "tbs": "qdr:w",
        })
    );
}

#[tokio::test]
async fn clamps_num_and_truncates_results() {
    let server = MockServer::always(Reply::json(200, SERPER_SEARCH)).await;
    let serper = client(&server);

    let results = serper.search(&WebQuery::new("tokio", 2)).await.unwrap();
    assert_eq!(results.len(), 2);
    serper.search(&WebQuery::new("tokio", 500)).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests[0].body, json!({ "q": "tokio", "num": 2 }));
    assert_eq!(requests[1].body, json!({ "q": "tokio", "num": 100 }));

    // Zero results asked: nothing to send.
    assert!(serper
        .search(&WebQuery::new("tokio", 0))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn rejects_a_long_query_before_sending() {
    let server = MockServer::always(Reply::json(200, SERPER_SEARCH)).await;
    let serper = client(&server);

    let error = serper
        .search(&WebQuery::new("x".repeat(2049), 10))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        WebError::QueryTooLong {
            provider: "serper",
            max: 2048,
            got: 2049
        }
    );

    // The operators count: 2,040 characters of text plus ` site:docs.rs` is over the limit.
    let mut query = WebQuery::new("é".repeat(2040), 10);
    query.include_domains = vec!["docs.rs".to_owned()];
    let error = serper.search(&query).await.unwrap_err();
    assert!(
        matches!(error, WebError::QueryTooLong { got: 2053, .. }),
        "{error:?}"
    );

    let error = serper.search(&WebQuery::new("   ", 10)).await.unwrap_err();
    assert!(matches!(error, WebError::BadRequest { .. }), "{error:?}");
    assert_eq!(server.request_count(), 0);

    // Exactly at the limit (counted in characters, not bytes) goes out.
    serper
        .search(&WebQuery::new("é".repeat(2048), 10))
        .await
        .unwrap();
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn no_organic_means_no_results_unless_there_is_a_message() {
    let empty = json!({
        "searchParameters": { "q": "qwzxv plorf", "type": "search", "engine": "google" },
        "relatedSearches": [],
        "credits": 1
    });
    let server = MockServer::always(Reply::json(200, &empty.to_string())).await;
    assert!(client(&server)
        .search(&WebQuery::new("qwzxv plorf", 10))
        .await
        .unwrap()
        .is_empty());

    let error_body = r#"{"message":"Query too long. Please shorten your query.","statusCode":400}"#;
    for status in [200, 400] {
        let server = MockServer::always(Reply::json(status, error_body)).await;
        let error = client(&server)
            .search(&WebQuery::new("tokio", 10))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            WebError::BadRequest {
                provider: "serper",
                message: "Query too long. Please shorten your query.".to_owned()
            }
        );
        assert!(!error.is_retryable());
        assert_eq!(server.request_count(), 1, "a bad request is not retried");
    }
}

#[tokio::test]
async fn maps_error_statuses() {
    let cases = [
        (
            Reply::json(400, r#"{"message":"Not enough credits","statusCode":400}"#),
            "quota",
        ),
        (
            Reply::json(401, r#"{"message":"Unauthorized.","statusCode":401}"#),
            "unauthorized",
        ),
        (
            Reply::json(403, r#"{"message":"Forbidden","statusCode":403}"#),
            "unauthorized",
        ),
        (
            Reply::json(404, r#"{"message":"Not found","statusCode":404}"#),
            "provider",
        ),
    ];
    for (reply, expected) in cases {
        let server = MockServer::always(reply).await;
        let error = client(&server)
            .search(&WebQuery::new("tokio", 10))
            .await
            .unwrap_err();
        let matched = match expected {
            "quota" => {
                matches!(&error, WebError::QuotaExhausted { message, .. } if message == "Not enough credits")
            }
            "unauthorized" => matches!(
                error,
                WebError::Unauthorized {
                    provider: "serper",
                    ..
                }
            ),
            _ => matches!(error, WebError::Provider { status: 404, .. }),
        };
        assert!(matched, "expected {expected}, got {error:?}");
        assert_eq!(server.request_count(), 1, "{expected} is not retried");
    }
}

#[tokio::test]
async fn garbage_is_malformed() {
    let bodies = [
        Reply::text(
            200,
            "text/html",
            "<html><body>502 Bad Gateway</body></html>",
        ),
        Reply::json(200, r#"{"organic": "none"}"#),
        Reply::json(200, r#"{"organic": [{"title": "no link here"}]}"#),
        Reply::json(200, r#"["organic"]"#),
        Reply::json(200, ""),
    ];
    for reply in bodies {
        let server = MockServer::always(reply).await;
        let error = client(&server)
            .search(&WebQuery::new("tokio", 10))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                WebError::Malformed {
                    provider: "serper",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn tolerates_odd_but_valid_entries() {
    let body = json!({
        "organic": [
            { "link": "https://a.example/", "position": "1" },
            { "title": 7, "link": "https://b.example/", "snippet": null, "date": "" },
            { "title": "no link" }
        ]
    });
    let server = MockServer::always(Reply::json(200, &body.to_string())).await;
    let results = client(&server)
        .search(&WebQuery::new("x", 10))
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].title, "");
    assert_eq!(results[1].url, "https://b.example/");
    assert_eq!(results[1].published, None);
    assert_eq!(results[1].rank, 2);
}
