//! Key rotation, retries, rate limiting, the circuit breaker, cancellation and secrecy, shared by
//! both clients (exercised through whichever fits best).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::crate_under_test::web::{
    BreakerState, ProviderConfig, SerperClient, TavilyClient, WebError, WebProvider, WebQuery,
};
use super::support::{fast_config, MockServer, Reply, SERPER_SEARCH, TAVILY_SEARCH};

fn query() -> WebQuery {
    WebQuery::new("tokio select", 10)
}

fn serper_unauthorized(key: &str) -> Reply {
    // A provider that echoes the key back: the client must not pass it on.
    Reply::json(
        401,
        &json!({ "message": format!("Invalid API key {key}"), "statusCode": 401 }).to_string(),
    )
}

#[tokio::test]
async fn rotates_to_the_next_key_when_one_is_refused() {
    let server = MockServer::start(|request, _| match request.header("x-api-key") {
        Some("good-key") => Reply::json(200, SERPER_SEARCH),
        other => serper_unauthorized(other.unwrap_or_default()),
    })
    .await;
    let serper = SerperClient::new(fast_config(&server.url, &["bad-key", "good-key"])).unwrap();

    assert_eq!(serper.search(&query()).await.unwrap().len(), 4);
    // The refused key rests: the next call goes straight to the good one.
    serper.search(&query()).await.unwrap();
    let keys: Vec<String> = server
        .requests()
        .iter()
        .map(|request| request.header("x-api-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["bad-key", "good-key", "good-key"]);
}

#[tokio::test]
async fn every_key_refused_is_unauthorized_without_leaking_keys() {
    let server = MockServer::start(|request, _| {
        serper_unauthorized(request.header("x-api-key").unwrap_or_default())
    })
    .await;
    let keys = ["secret-key-one", "secret-key-two"];
    let serper = SerperClient::new(fast_config(&server.url, &keys)).unwrap();

    let error = serper.search(&query()).await.unwrap_err();
    assert!(matches!(error, WebError::Unauthorized { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(server.request_count(), 2, "each key once, no retries");

    // Both keys rest: the next call is refused without a request.
    let again = serper.search(&query()).await.unwrap_err();
    assert!(matches!(again, WebError::Unauthorized { .. }), "{again:?}");
    assert_eq!(server.request_count(), 2);

    let config = fast_config(&server.url, &keys);
    for text in [
        error.to_string(),
        format!("{error:?}"),
        again.to_string(),
        format!("{config:?}"),
        format!("{serper:?}"),
    ] {
        for key in keys {
            assert!(!text.contains(key), "{text}");
        }
    }
}

#[tokio::test]
async fn rotates_past_an_exhausted_tavily_key() {
    let server = MockServer::start(|request, _| match request.header("authorization") {
        Some("Bearer tvly-spent") => Reply::json(
            432,
            r#"{"detail":{"error":"This request exceeds your plan's set usage limit. Please upgrade your plan or contact support@tavily.com"}}"#,
        ),
        _ => Reply::json(200, TAVILY_SEARCH),
    })
    .await;
    let tavily =
        TavilyClient::new(fast_config(&server.url, &["tvly-spent", "tvly-fresh"])).unwrap();
    assert_eq!(tavily.search(&query()).await.unwrap().len(), 3);
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn honours_retry_after_then_succeeds() {
    let server = MockServer::sequence(vec![
        Reply::json(
            429,
            r#"{"detail":{"error":"Rate limit exceeded. Please slow down."}}"#,
        )
        .header("retry-after", "1"),
        Reply::json(200, TAVILY_SEARCH),
    ])
    .await;
    let tavily = TavilyClient::new(fast_config(&server.url, &["tvly-key"])).unwrap();
    let started = Instant::now();
    assert_eq!(tavily.search(&query()).await.unwrap().len(), 3);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn honours_a_retry_after_http_date() {
    // HTTP dates have whole seconds: two seconds ahead is a wait of one to two seconds.
    let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    let server = MockServer::sequence(vec![
        Reply::json(429, r#"{"message":"Too many requests","statusCode":429}"#)
            .header("retry-after", &soon),
        Reply::json(200, SERPER_SEARCH),
    ])
    .await;
    let serper = SerperClient::new(fast_config(&server.url, &["key"])).unwrap();
    let started = Instant::now();
    assert_eq!(serper.search(&query()).await.unwrap().len(), 4);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn a_retry_after_date_too_far_ahead_is_not_waited_out() {
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
    let server = MockServer::always(
        Reply::json(429, r#"{"message":"Too many requests","statusCode":429}"#)
            .header("retry-after", &later),
    )
    .await;
    let serper = SerperClient::new(fast_config(&server.url, &["key"])).unwrap();
    let started = Instant::now();
    let error = serper.search(&query()).await.unwrap_err();
    assert!(
        matches!(error, WebError::RateLimited { retry_after: Some(wait), .. } if wait > Duration::from_secs(100)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.request_count(), 1, "no retry");
}

#[tokio::test]
async fn rate_limited_after_all_retries() {
    let server = MockServer::always(
        Reply::json(429, r#"{"message":"Too many requests","statusCode":429}"#)
            .header("retry-after", "0"),
    )
    .await;
    let serper = SerperClient::new(fast_config(&server.url, &["key"])).unwrap();
    let error = serper.search(&query()).await.unwrap_err();
    assert!(
        matches!(
            error,
            WebError::RateLimited {
                provider: "serper",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(
        server.request_count(),
        3,
        "the first attempt and two retries"
    );
}

#[tokio::test]
async fn retries_server_errors() {
    let server = MockServer::sequence(vec![
        Reply::text(
            503,
            "text/html",
            "<html><body>Service Unavailable</body></html>",
        ),
        Reply::json(502, r#"{"message":"Bad gateway"}"#),
        Reply::json(200, SERPER_SEARCH),
    ])
    .await;
    let serper = SerperClient::new(fast_config(&server.url, &["key"])).unwrap();
    assert_eq!(serper.search(&query()).await.unwrap().len(), 4);
    assert_eq!(server.request_count(), 3);

    let server = MockServer::always(Reply::json(500, r#"{"message":"Internal error"}"#)).await;
    let serper = SerperClient::new(fast_config(&server.url, &["key"])).unwrap();
    let error = serper.search(&query()).await.unwrap_err();
    assert_eq!(
        error,
        WebError::Provider {
            provider: "serper",
            status: 500,
            message: "Internal error".to_owned()
        }
    );
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn times_out_and_retries() {
    let server = MockServer::sequence(vec![Reply::hang(), Reply::json(200, SERPER_SEARCH)]).await;
    let config = ProviderConfig {
        timeout: Duration::from_millis(200),
        ..fast_config(&server.url, &["key"])
    };
    let serper = SerperClient::new(config.clone()).unwrap();
    assert_eq!(serper.search(&query()).await.unwrap().len(), 4);
    assert_eq!(server.request_count(), 2);

    let server = MockServer::always(Reply::hang()).await;
    let serper = SerperClient::new(ProviderConfig {
        base_url: server.url.clone(),
        max_retries: 0,
        ..config
    })
    .unwrap();
    let error = serper.search(&query()).await.unwrap_err();
    assert_eq!(error, WebError::Timeout { provider: "serper" });
}

#[tokio::test]
async fn connection_errors_are_network_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let serper = SerperClient::new(fast_config(&url, &["key"])).unwrap();
    let error = serper.search(&query()).await.unwrap_err();
    assert!(
        matches!(
            error,
            WebError::Network {
                provider: "serper",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn rate_limiter_spills_to_other_keys_then_refuses_to_send() {
    let server = MockServer::always(Reply::json(200, SERPER_SEARCH)).await;
    let config = ProviderConfig {
        requests_per_minute: 1,
        timeout: Duration::from_millis(200),
        breaker_threshold: 1,
        ..fast_config(&server.url, &["key-a", "key-b"])
    };
    let serper = SerperClient::new(config).unwrap();
    serper.search(&query()).await.unwrap();
    serper.search(&query()).await.unwrap();
    let started = Instant::now();
    let error = serper.search(&query()).await.unwrap_err();
    assert!(
        matches!(error, WebError::RateLimited { retry_after: Some(wait), .. } if wait > Duration::from_secs(30)),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "gives up at once when the wait exceeds the timeout"
    );
    let keys: Vec<String> = server
        .requests()
        .iter()
        .map(|request| request.header("x-api-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["key-a", "key-b"]);
    // Our own limiter saying no is not the provider failing.
    assert_eq!(serper.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn breaker_opens_then_half_opens_and_closes() {
    let healthy = Arc::new(AtomicBool::new(false));
    let server = MockServer::start({
        let healthy = Arc::clone(&healthy);
        move |_, _| {
            if healthy.load(Ordering::SeqCst) {
                Reply::json(200, SERPER_SEARCH)
            } else {
                Reply::json(500, r#"{"message":"Internal error"}"#)
            }
        }
    })
    .await;
    let config = ProviderConfig {
        max_retries: 0,
        breaker_threshold: 2,
        breaker_cooldown: Duration::from_millis(100),
        ..fast_config(&server.url, &["key"])
    };
    let serper = SerperClient::new(config).unwrap();

    for _ in 0..2 {
        assert_eq!(serper.breaker_state(), BreakerState::Closed);
        let error = serper.search(&query()).await.unwrap_err();
        assert!(
            matches!(error, WebError::Provider { status: 500, .. }),
            "{error:?}"
        );
    }
    assert_eq!(serper.breaker_state(), BreakerState::Open);
    let error = serper.search(&query()).await.unwrap_err();
    assert_eq!(error, WebError::BreakerOpen { provider: "serper" });
    assert_eq!(server.request_count(), 2, "an open breaker sends nothing");

    // After the cooldown one trial goes out; it fails, so the breaker opens again.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(serper.breaker_state(), BreakerState::HalfOpen);
    assert!(matches!(
        serper.search(&query()).await,
        Err(WebError::Provider { .. })
    ));
    assert_eq!(serper.breaker_state(), BreakerState::Open);
    assert_eq!(
        serper.search(&query()).await.unwrap_err(),
        WebError::BreakerOpen { provider: "serper" }
    );
    assert_eq!(server.request_count(), 3);

    // The next trial succeeds and closes it.
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(serper.breaker_state(), BreakerState::HalfOpen);
    assert_eq!(serper.search(&query()).await.unwrap().len(), 4);
    assert_eq!(serper.breaker_state(), BreakerState::Closed);
    serper.search(&query()).await.unwrap();
    assert_eq!(server.request_count(), 5);
}

#[tokio::test]
async fn bad_requests_do_not_open_the_breaker() {
    let server = MockServer::always(Reply::json(
        400,
        r#"{"detail":{"error":"Invalid time_range."}}"#,
    ))
    .await;
    let config = ProviderConfig {
        breaker_threshold: 1,
        ..fast_config(&server.url, &["tvly-key"])
    };
    let tavily = TavilyClient::new(config).unwrap();
    for _ in 0..3 {
        let error = tavily.search(&query()).await.unwrap_err();
        assert!(matches!(error, WebError::BadRequest { .. }), "{error:?}");
    }
    assert_eq!(tavily.breaker_state(), BreakerState::Closed);
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn dropping_the_future_cancels_the_request() {
    let server = MockServer::always(Reply::hang()).await;
    let config = ProviderConfig {
        timeout: Duration::from_secs(30),
        ..fast_config(&server.url, &["key"])
    };
    let serper = SerperClient::new(config).unwrap();
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_millis(300), serper.search(&query())).await;
    assert!(outcome.is_err(), "the server never answers");
    assert!(
        server.wait_for_dropped_hang(Duration::from_secs(3)).await,
        "the server saw the client go away"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(server.request_count(), 1);
    // A cancelled call is not a failure: the breaker stays closed and the client works on.
    assert_eq!(serper.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn construction_checks_the_configuration() {
    let no_keys = SerperClient::new(fast_config("http://127.0.0.1:9", &["", "  "])).unwrap_err();
    assert_eq!(no_keys, WebError::NoKeys { provider: "serper" });
    let bad_url = TavilyClient::new(fast_config("not a url", &["tvly-key"])).unwrap_err();
    assert!(
        matches!(
            bad_url,
            WebError::InvalidConfig {
                provider: "tavily",
                ..
            }
        ),
        "{bad_url:?}"
    );
    let bad_key =
        TavilyClient::new(fast_config("http://127.0.0.1:9", &["tvly-\nkey"])).unwrap_err();
    assert!(
        matches!(bad_key, WebError::InvalidConfig { .. }),
        "{bad_key:?}"
    );
    assert!(!bad_key.to_string().contains("tvly-"));

    let serper = ProviderConfig::serper_default();
    assert_eq!(serper.base_url, "https://google.serper.dev");
    assert_eq!(serper.max_retries, 2);
    assert_eq!(serper.breaker_threshold, 5);
    assert_eq!(serper.backoff_base, Duration::from_millis(200));
    assert_eq!(
        ProviderConfig::tavily_default().base_url,
        "https://api.tavily.com"
    );
}

#[tokio::test]
async fn a_base_path_is_kept() {
    let server = MockServer::always(Reply::json(200, SERPER_SEARCH)).await;
    let serper = SerperClient::new(fast_config(
        &format!("{}/proxy/serper", server.url),
        &["key"],
    ))
    .unwrap();
    serper.search(&query()).await.unwrap();
    assert_eq!(server.requests()[0].path, "/proxy/serper/search");
}
