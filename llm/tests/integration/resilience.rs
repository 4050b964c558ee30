//! Retries, backoff, retry-after, circuit breakers, fallback, timeouts and cancellation.

use std::time::Duration;

use aiex_llm::{
    BreakerState, ChatDelta, ChatRequest, LlmConfig, LlmError, LlmProviderKind, Message, Role,
    TimeoutStage,
};
use futures_util::StreamExt;
use serde_json::json;

use crate::standin::{config, provider, Reply, StandIn};
use crate::{ask, drain, llm};

fn server_error() -> Reply {
    Reply::openai_error(500, "The server had an error", "server_error", "internal")
}

#[tokio::test]
async fn rate_limited_429_waits_for_retry_after() {
    let server = StandIn::start().await;
    server.push(
        Reply::openai_error(429, "Rate limit reached", "requests", "rate_limit_exceeded")
            .header("retry-after", "1")
            .header("x-ratelimit-remaining-requests", "0"),
    );
    server.push(Reply::openai_stream(&["ok"], None));
    let llm = llm(&config(vec![provider(
        "oa",
        LlmProviderKind::OpenAi,
        &server.url,
    )]));
    let response = llm.chat(ask("x")).await.expect("retried");
    assert_eq!(response.text, "ok");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].at - seen[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported() {
    let server = StandIn::start().await;
    server.always(server_error());
    let mut config = config(vec![provider("oa", LlmProviderKind::OpenAi, &server.url)]);
    config.breaker_failures = 10;
    let llm = llm(&config);
    let err = llm.chat(ask("x")).await.expect_err("500");
    assert!(matches!(err, LlmError::Http { status: 500, .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(server.requests(), 3, "one try and max_retries = 2 retries");
    assert_eq!(llm.meter().total().failures, 3);
}

#[tokio::test]
async fn breaker_opens_rejects_half_opens_and_closes() {
    let server = StandIn::start().await;
    server.always(server_error());
    let mut config = config(vec![provider("oa", LlmProviderKind::OpenAi, &server.url)]);
    config.max_retries = 0;
    let llm = llm(&config);
    for _ in 0..3 {
        assert!(llm.chat(ask("x")).await.is_err());
    }
    assert_eq!(
        llm.breaker_states(),
        [("oa".to_owned(), BreakerState::Open)]
    );
    let err = llm.chat(ask("x")).await.expect_err("open");
    assert!(matches!(err, LlmError::BreakerOpen { .. }), "{err}");
    assert_eq!(server.requests(), 3, "an open breaker sends nothing");

    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(llm.breaker_states()[0].1, BreakerState::HalfOpen);
    // The trial fails: open again.
    assert!(llm.chat(ask("x")).await.is_err());
    assert_eq!(llm.breaker_states()[0].1, BreakerState::Open);
    assert_eq!(server.requests(), 4);

    tokio::time::sleep(Duration::from_millis(450)).await;
    server.push(Reply::openai_stream(&["back"], None));
    let response = llm.chat(ask("x")).await.expect("trial succeeds");
    assert_eq!(response.text, "back");
    assert_eq!(llm.breaker_states()[0].1, BreakerState::Closed);
}

#[tokio::test]
async fn fallback_to_the_next_provider_of_the_role() {
    let primary = StandIn::start().await;
    primary.always(Reply::openai_error(
        503,
        "overloaded",
        "server_error",
        "503",
    ));
    let backup = StandIn::start().await;
    backup.always(Reply::anthropic_stream(&["from backup"], 3, 2));
    let mut config = config(vec![
        provider("primary", LlmProviderKind::OpenAi, &primary.url),
        provider("backup", LlmProviderKind::Anthropic, &backup.url),
    ]);
    config.max_retries = 1;
    config.breaker_failures = 2;
    let llm = llm(&config);
    let response = llm.chat(ask("x")).await.expect("fallback");
    assert_eq!(response.provider, "backup");
    assert_eq!(response.text, "from backup");
    assert_eq!(primary.requests(), 2);
    // The primary's breaker is open now: the next call goes straight to the backup.
    let response = llm.chat(ask("y")).await.expect("fallback");
    assert_eq!(response.provider, "backup");
    assert_eq!(primary.requests(), 2);
    assert_eq!(backup.requests(), 2);
    let states = llm.breaker_states();
    assert_eq!(states[0], ("primary".to_owned(), BreakerState::Open));
    assert_eq!(states[1], ("backup".to_owned(), BreakerState::Closed));
}

#[tokio::test]
async fn all_providers_failing_names_them() {
    let first = StandIn::start().await;
    first.always(server_error());
    let second = StandIn::start().await;
    second.always(Reply::json(404, json!({"error": "model not found"})));
    let mut config = config(vec![
        provider("first", LlmProviderKind::OpenAi, &first.url),
        provider("second", LlmProviderKind::Ollama, &second.url),
    ]);
    config.max_retries = 0;
    let err = llm(&config).chat(ask("x")).await.expect_err("all fail");
    match &err {
        LlmError::AllFailed { tried, last, .. } => {
            assert_eq!(tried, "first, second");
            assert!(matches!(**last, LlmError::Http { status: 404, .. }));
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn roles_choose_their_providers() {
    let fast = StandIn::start().await;
    fast.always(Reply::openai_stream(&["fast"], None));
    let smart = StandIn::start().await;
    smart.always(Reply::openai_stream(&["smart"], None));
    let mut config = config(vec![
        provider("f", LlmProviderKind::OpenAi, &fast.url),
        provider("s", LlmProviderKind::OpenAi, &smart.url),
    ]);
    config.smart = vec!["s".into()];
    config.fast = vec!["f".into()];
    let llm = llm(&config);
    let request = |role| ChatRequest::new(role, vec![Message::user("x")]);
    assert_eq!(
        llm.chat(request(Role::Smart)).await.expect("smart").text,
        "smart"
    );
    assert_eq!(
        llm.chat(request(Role::Fast)).await.expect("fast").text,
        "fast"
    );
    assert_eq!(llm.role_providers(Role::Smart), ["s"]);
    assert_eq!(llm.role_providers(Role::Embed), ["f", "s"]);
}

#[tokio::test]
async fn single_provider_from_url_and_model() {
    let server = StandIn::start().await;
    server.always(Reply::openai_stream(&["single"], None));
    let config = LlmConfig::single(&server.url, "m1", LlmProviderKind::OpenAi, None);
    let llm = llm(&config);
    let response = llm.chat(ask("x")).await.expect("answer");
    assert_eq!(response.provider, LlmConfig::SINGLE_PROVIDER);
    assert_eq!(response.model, "m1");
    assert_eq!(server.seen()[0].header("authorization"), None);
    assert!(aiex_llm::Llm::from_config(&LlmConfig::default())
        .expect("valid")
        .is_none());
}

#[tokio::test]
async fn connection_cut_mid_stream() {
    let server = StandIn::start().await;
    let cut = Reply::openai_stream(&["a", "b", "c"], None)
        .truncate(3)
        .delay(Duration::from_millis(20))
        .cut();
    server.push(cut.clone());
    let llm = llm(&config(vec![provider(
        "oa",
        LlmProviderKind::OpenAi,
        &server.url,
    )]));
    let (texts, end) = drain(llm.chat_stream(ask("x")).await.expect("stream")).await;
    assert_eq!(texts, ["a", "b"]);
    assert!(matches!(end, Err(LlmError::CutOff { .. })), "{end:?}");

    server.push(cut);
    server.push(Reply::openai_stream(&["whole"], None));
    let response = llm.chat(ask("x")).await.expect("asked again");
    assert_eq!(response.text, "whole");
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let server = StandIn::start().await;
    server.push(
        Reply::openai_stream(&["one", "two", "three"], None)
            .truncate(2)
            .hang(),
    );
    let llm = llm(&config(vec![provider(
        "oa",
        LlmProviderKind::OpenAi,
        &server.url,
    )]));
    let mut stream = llm.chat_stream(ask("x")).await.expect("stream");
    let first = stream.next().await.expect("item").expect("text");
    assert_eq!(first, ChatDelta::Text("one".into()));
    assert!(
        !server.wait_disconnect(Duration::from_millis(200)).await,
        "still streaming"
    );
    drop(stream);
    assert!(
        server.wait_disconnect(Duration::from_secs(3)).await,
        "the server saw the client leave"
    );
    let totals = llm.meter().total();
    assert_eq!((totals.cancelled, totals.requests), (1, 0));
    assert!(totals.input_tokens > 0 && totals.output_tokens > 0);
}

#[tokio::test]
async fn first_token_and_total_timeouts() {
    let server = StandIn::start().await;
    server.push(Reply::openai_stream(&["late"], None).delay(Duration::from_millis(800)));
    let mut config = config(vec![provider("oa", LlmProviderKind::OpenAi, &server.url)]);
    config.max_retries = 0;
    config.first_token_timeout_ms = 300;
    config.total_timeout_ms = 1_000;
    let llm = llm(&config);
    let err = llm.chat(ask("x")).await.expect_err("first token");
    assert!(
        matches!(
            err,
            LlmError::Timeout {
                stage: TimeoutStage::FirstToken,
                ..
            }
        ),
        "{err}"
    );

    server.push(Reply::openai_stream(&["a", "b"], None).truncate(2).hang());
    let (texts, end) = drain(llm.chat_stream(ask("x")).await.expect("stream")).await;
    assert_eq!(texts, ["a"]);
    assert!(
        matches!(
            end,
            Err(LlmError::Timeout {
                stage: TimeoutStage::Total,
                ..
            })
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn refused_connections_are_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let llm = llm(&config(vec![provider(
        "gone",
        LlmProviderKind::OpenAi,
        &url,
    )]));
    let err = llm.chat(ask("x")).await.expect_err("refused");
    assert!(matches!(err, LlmError::Connect { .. }), "{err}");
    assert_eq!(llm.meter().total().failures, 3);
}

#[tokio::test]
async fn health_per_provider_and_aggregate() {
    let up = StandIn::start().await;
    up.always(Reply::json(
        200,
        json!({"object": "list", "data": [{"id": "stand-in", "object": "model"}]}),
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let down_url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let both = llm(&config(vec![
        provider("down", LlmProviderKind::OpenAi, &down_url),
        provider("up", LlmProviderKind::OpenAi, &up.url),
    ]));
    let report = both.health().await;
    assert!(report.ready);
    assert!(!report.providers[0].ok && report.providers[0].error.is_some());
    assert!(report.providers[1].ok);
    assert_eq!(report.providers[1].model_available, Some(true));
    assert_eq!(up.seen()[0].path, "/v1/models");

    let only_down = llm(&config(vec![provider(
        "down",
        LlmProviderKind::OpenAi,
        &down_url,
    )]));
    assert!(!only_down.health().await.ready);
}

#[tokio::test]
async fn tokens_per_minute_limit_delays_the_next_request() {
    let server = StandIn::start().await;
    server.always(Reply::openai_stream(&["ok"], Some((5, 1))));
    let mut entry = provider("oa", LlmProviderKind::OpenAi, &server.url);
    // Each request books its estimated input (5) plus max_tokens (5045) = 5050 tokens, just
    // over half the minute's 10,000: the second waits for 100 tokens at 10,000/min, ~0.6 s.
    entry.tokens_per_minute = 10_000;
    let llm = llm(&config(vec![entry]));
    for _ in 0..2 {
        llm.chat(ask("x").with_max_tokens(5_045))
            .await
            .expect("answer");
    }
    let seen = server.seen();
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(450), "gap {gap:?}");
    assert!(gap < Duration::from_secs(3), "gap {gap:?}");
}
