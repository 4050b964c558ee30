//! Anthropic Messages against the stand-in: named events, error events, 529 with retry-after.

use std::time::Duration;

use aiex_llm::{ChatRequest, LlmError, LlmProviderKind, Message, Role};
use tokio::time::Instant;

use crate::standin::{config, provider, Reply, StandIn};
use crate::{ask, drain, llm};

#[tokio::test]
async fn named_events_stream_with_usage_and_headers() {
    let server = StandIn::start().await;
    server.push(Reply::anthropic_stream(&["Hello", " there"], 12, 3));
    let llm = llm(&config(vec![provider(
        "claude",
        LlmProviderKind::Anthropic,
        &server.url,
    )]));
    let request = ChatRequest::new(
        Role::Smart,
        vec![Message::system("be brief"), Message::user("hi")],
    );
    let (texts, done) = drain(llm.chat_stream(request).await.expect("stream")).await;
    let response = done.expect("complete");
    assert_eq!(texts, ["Hello", " there"]);
    assert_eq!(response.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(
        (response.usage.input_tokens, response.usage.output_tokens),
        (12, 3)
    );
    assert!(!response.usage.estimated);

    let seen = &server.seen()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("test-key"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.body["system"], "be brief");
    assert_eq!(seen.body["max_tokens"], 64, "the configured default");
    assert_eq!(seen.body["stream"], true);
    assert_eq!(seen.body["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn overloaded_529_honours_retry_after() {
    let server = StandIn::start().await;
    server.push(
        Reply::anthropic_error(529, "overloaded_error", "Overloaded").header("retry-after", "1"),
    );
    server.push(Reply::anthropic_stream(&["ok"], 5, 1));
    let llm = llm(&config(vec![provider(
        "claude",
        LlmProviderKind::Anthropic,
        &server.url,
    )]));
    let started = Instant::now();
    let response = llm.chat(ask("x")).await.expect("retried");
    assert_eq!(response.text, "ok");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(llm.meter().snapshot().providers["claude"].failures, 1);
}

#[tokio::test]
async fn rate_limit_429_with_a_long_retry_after_moves_on() {
    let server = StandIn::start().await;
    server.always(
        Reply::anthropic_error(
            429,
            "rate_limit_error",
            "Number of requests has exceeded your rate limit",
        )
        .header("retry-after", "60"),
    );
    let llm = llm(&config(vec![provider(
        "claude",
        LlmProviderKind::Anthropic,
        &server.url,
    )]));
    let started = Instant::now();
    let err = llm.chat(ask("x")).await.expect_err("429");
    assert!(matches!(err, LlmError::Http { status: 429, .. }), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not sleep 60 s"
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn error_event_before_the_first_token_is_retried() {
    let server = StandIn::start().await;
    let mut failing = Reply::anthropic_stream(&[], 5, 0).truncate(2);
    failing.chunks.push(Reply::anthropic_error_event(
        "overloaded_error",
        "Overloaded",
    ));
    server.push(failing);
    server.push(Reply::anthropic_stream(&["second"], 5, 1));
    let llm = llm(&config(vec![provider(
        "claude",
        LlmProviderKind::Anthropic,
        &server.url,
    )]));
    let response = llm.chat(ask("x")).await.expect("retried");
    assert_eq!(response.text, "second");
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn error_event_mid_stream_ends_the_stream_and_chat_asks_again() {
    let server = StandIn::start().await;
    let mut broken = Reply::anthropic_stream(&["partial"], 5, 0).truncate(4);
    broken.chunks.push(Reply::anthropic_error_event(
        "api_error",
        "Internal server error",
    ));
    server.push(broken.clone());
    let llm = llm(&config(vec![provider(
        "claude",
        LlmProviderKind::Anthropic,
        &server.url,
    )]));
    let (texts, end) = drain(llm.chat_stream(ask("x")).await.expect("stream")).await;
    assert_eq!(texts, ["partial"]);
    match end {
        Err(LlmError::StreamError {
            kind, retryable, ..
        }) => {
            assert_eq!(kind, "api_error");
            assert!(retryable);
        }
        other => panic!("unexpected {other:?}"),
    }

    server.push(broken);
    server.push(Reply::anthropic_stream(&["whole"], 5, 1));
    let response = llm.chat(ask("x")).await.expect("asked again");
    assert_eq!(response.text, "whole");
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn anthropic_has_no_embeddings() {
    let server = StandIn::start().await;
    let llm = llm(&config(vec![provider(
        "claude",
        LlmProviderKind::Anthropic,
        &server.url,
    )]));
    let err = llm.embed(&["x".to_owned()]).await.expect_err("unsupported");
    assert!(matches!(err, LlmError::Unsupported { .. }), "{err}");
    assert_eq!(server.requests(), 0);
}
