//! Falling from one provider to the next.

use std::time::Duration;

use super::crate_under_test::web::{
    BreakerState, ProviderConfig, SerperClient, TavilyClient, WebError, WebFallback, WebProvider,
    WebQuery,
};
use super::support::{fast_config, MockServer, Reply, TAVILY_SEARCH};

fn failing_serper(server: &MockServer) -> SerperClient {
    SerperClient::new(ProviderConfig {
        max_retries: 0,
        breaker_threshold: 1,
        breaker_cooldown: Duration::from_secs(60),
        ..fast_config(&server.url, &["serper-key"])
    })
    .unwrap()
}

#[tokio::test]
async fn falls_from_a_failing_serper_to_tavily() {
    let serper_server =
        MockServer::always(Reply::json(503, r#"{"message":"Service unavailable"}"#)).await;
    let tavily_server = MockServer::always(Reply::json(200, TAVILY_SEARCH)).await;
    let serper = failing_serper(&serper_server);
    let tavily = TavilyClient::new(fast_config(&tavily_server.url, &["tvly-key"])).unwrap();
    let web = WebFallback::new(vec![Box::new(serper), Box::new(tavily)]);
    assert_eq!(web.name(), "web");
    assert_eq!(web.providers(), ["serper", "tavily"]);

    let results = web.search(&WebQuery::new("rust async", 5)).await.unwrap();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|result| result.provider == "tavily"));
    assert_eq!(serper_server.request_count(), 1);

    // Serper's breaker is open now: the next search skips it without a request.
    web.search(&WebQuery::new("rust async", 5)).await.unwrap();
    assert_eq!(serper_server.request_count(), 1);
    assert_eq!(tavily_server.request_count(), 2);
}

#[tokio::test]
async fn a_query_too_long_for_one_provider_goes_to_the_next() {
    let tavily_server = MockServer::always(Reply::json(200, TAVILY_SEARCH)).await;
    let serper_server = MockServer::always(Reply::json(200, super::support::SERPER_SEARCH)).await;
    let tavily = TavilyClient::new(fast_config(&tavily_server.url, &["tvly-key"])).unwrap();
    let serper = SerperClient::new(fast_config(&serper_server.url, &["serper-key"])).unwrap();
    let web = WebFallback::new(vec![Box::new(tavily), Box::new(serper)]);

    let results = web
        .search(&WebQuery::new("x ".repeat(500), 5))
        .await
        .unwrap();
    assert!(results.iter().all(|result| result.provider == "serper"));
    assert_eq!(tavily_server.request_count(), 0);
    assert_eq!(serper_server.request_count(), 1);
}

#[tokio::test]
async fn all_failing_returns_the_last_error() {
    let serper_server = MockServer::always(Reply::json(500, r#"{"message":"boom"}"#)).await;
    let tavily_server = MockServer::always(Reply::json(
        432,
        r#"{"detail":{"error":"This request exceeds your plan's set usage limit."}}"#,
    ))
    .await;
    let serper = failing_serper(&serper_server);
    let tavily = TavilyClient::new(fast_config(&tavily_server.url, &["tvly-key"])).unwrap();
    let web = WebFallback::new(vec![Box::new(serper), Box::new(tavily)]);

    let error = web.search(&WebQuery::new("rust", 5)).await.unwrap_err();
    assert!(
        matches!(
            error,
            WebError::QuotaExhausted {
                provider: "tavily",
                ..
            }
        ),
        "{error:?}"
    );

    let empty = WebFallback::new(Vec::new());
    assert!(empty.search(&WebQuery::new("rust", 5)).await.is_err());
}

#[tokio::test]
async fn breaker_state_is_visible_per_client() {
    let server = MockServer::always(Reply::json(500, r#"{"message":"boom"}"#)).await;
    let serper = failing_serper(&server);
    assert!(serper.search(&WebQuery::new("rust", 5)).await.is_err());
    assert_eq!(serper.breaker_state(), BreakerState::Open);
}
