//! OpenAI-compatible chat and embeddings against the stand-in.

use aiex_llm::{LlmError, LlmPrice, LlmProviderKind};
use serde_json::json;

use crate::standin::{config, provider, Reply, StandIn};
use crate::{ask, drain, llm};

#[tokio::test]
async fn streamed_chat_with_usage_chunk_and_cost() {
    let server = StandIn::start().await;
    server.push(Reply::openai_stream(&["Hel", "lo", "!"], Some((9, 3))));
    let mut entry = provider("oa", LlmProviderKind::OpenAi, &server.url);
    entry.prices.insert(
        "stand-in".into(),
        LlmPrice {
            input_per_mtok: 1.0,
            output_per_mtok: 2.0,
        },
    );
    let llm = llm(&config(vec![entry]));
    let stream = llm
        .chat_stream(ask("hi").with_temperature(0.0).with_max_tokens(12))
        .await
        .expect("stream");
    let (texts, done) = drain(stream).await;
    let response = done.expect("complete");
    assert_eq!(texts, ["Hel", "lo", "!"]);
    assert_eq!(response.text, "Hello!");
    assert_eq!(response.provider, "oa");
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        (response.usage.input_tokens, response.usage.output_tokens),
        (9, 3)
    );
    assert!(!response.usage.estimated);
    assert!((response.usage.cost_usd - (9.0 + 6.0) / 1e6).abs() < 1e-12);

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].header("authorization"), Some("Bearer test-key"));
    let body = &seen[0].body;
    assert_eq!(body["model"], "stand-in");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 12);
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));

    let totals = llm.meter().snapshot();
    assert_eq!(totals.total.requests, 1);
    assert_eq!(totals.providers["oa"].output_tokens, 3);
}

#[tokio::test]
async fn think_blocks_are_stripped_across_chunks_and_usage_is_estimated_when_absent() {
    let server = StandIn::start().await;
    server.push(Reply::openai_stream(
        &["<thi", "nk>let me see</th", "ink>\n\nThe ans", "wer."],
        None,
    ));
    let llm = llm(&config(vec![provider(
        "oa",
        LlmProviderKind::OpenAi,
        &server.url,
    )]));
    let response = llm.chat(ask("q")).await.expect("answer");
    assert_eq!(response.text, "The answer.");
    assert!(response.usage.estimated);
    assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);
    assert_eq!(llm.meter().total().estimated_requests, 1);
}

#[tokio::test]
async fn json_schema_answer_is_validated_and_repaired_once() {
    let server = StandIn::start().await;
    server.push(Reply::openai_stream(&["{\"title\": 3}"], Some((20, 5))));
    server.push(Reply::openai_stream(
        &["```json\n{\"title\": \"ok\"}\n```"],
        Some((40, 6)),
    ));
    let llm = llm(&config(vec![provider(
        "oa",
        LlmProviderKind::OpenAi,
        &server.url,
    )]));
    let schema = json!({"type": "object", "properties": {"title": {"type": "string"}},
                        "required": ["title"]});
    let (value, response) = llm
        .chat_json(ask("give json"), &schema)
        .await
        .expect("json");
    assert_eq!(value, json!({"title": "ok"}));
    assert_eq!(response.usage.input_tokens, 60, "usage covers both calls");

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let format = &seen[0].body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["schema"], schema);
    let first_messages = seen[0].body["messages"].as_array().expect("messages");
    assert_eq!(first_messages[0]["role"], "system");
    let repair = seen[1].body["messages"].as_array().expect("messages");
    assert_eq!(repair[repair.len() - 2]["role"], "assistant");
    let last = repair[repair.len() - 1]["content"].as_str().expect("text");
    assert!(
        last.contains("not valid") && last.contains("title"),
        "{last}"
    );

    server.push(Reply::openai_stream(&["not json"], None));
    server.push(Reply::openai_stream(&["{\"title\": false}"], None));
    let err = llm
        .chat_json(ask("again"), &schema)
        .await
        .expect_err("invalid twice");
    assert!(matches!(err, LlmError::InvalidJson { .. }), "{err}");

    let err = llm
        .chat_json(ask("bad schema"), &json!({"type": 5}))
        .await
        .expect_err("schema");
    assert!(matches!(err, LlmError::InvalidSchema { .. }), "{err}");
    assert_eq!(server.requests(), 4, "an invalid schema sends nothing");
}

#[tokio::test]
async fn json_object_mode_for_an_empty_schema() {
    let server = StandIn::start().await;
    server.push(Reply::openai_stream(&["{\"any\": [1, 2]}"], None));
    let llm = llm(&config(vec![provider(
        "oa",
        LlmProviderKind::OpenAi,
        &server.url,
    )]));
    let (value, _) = llm.chat_json(ask("json"), &json!({})).await.expect("json");
    assert_eq!(value, json!({"any": [1, 2]}));
    assert_eq!(
        server.seen()[0].body["response_format"],
        json!({"type": "json_object"})
    );
}

#[tokio::test]
async fn embeddings() {
    let server = StandIn::start().await;
    server.push(Reply::json(
        200,
        json!({"object": "list", "model": "stand-in", "data": [
            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]}
        ], "usage": {"prompt_tokens": 4, "total_tokens": 4}}),
    ));
    let mut entry = provider("oa", LlmProviderKind::OpenAi, &server.url);
    entry.embed_model = Some("embedder".into());
    let llm = llm(&config(vec![entry]));
    let vectors = llm
        .embed(&["a".to_owned(), "b".to_owned()])
        .await
        .expect("vectors");
    assert_eq!(vectors, [vec![1.0, 0.0], vec![0.0, 1.0]]);
    let seen = server.seen();
    assert_eq!(seen[0].path, "/v1/embeddings");
    assert_eq!(
        seen[0].body,
        json!({"model": "embedder", "input": ["a", "b"]})
    );
    assert_eq!(llm.meter().total().embed_requests, 1);
}

#[tokio::test]
async fn unknown_model_is_a_clear_error_without_retries() {
    let server = StandIn::start().await;
    server.always(Reply::openai_error(
        404,
        "The model `stand-in` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ));
    let llm = llm(&config(vec![provider(
        "oa",
        LlmProviderKind::OpenAi,
        &server.url,
    )]));
    let err = llm.chat(ask("x")).await.expect_err("404");
    match &err {
        LlmError::Http {
            status, message, ..
        } => {
            assert_eq!(*status, 404);
            assert!(message.contains("does not exist"), "{message}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn malformed_chunk_fails_clearly_and_falls_back() {
    let broken = StandIn::start().await;
    let mut reply = Reply::openai_stream(&["a"], None);
    reply
        .chunks
        .insert(1, "data: {\"choices\": [{\"delta\": \n\n".to_owned());
    broken.always(reply);
    let good = StandIn::start().await;
    good.push(Reply::openai_stream(&["fine"], None));

    let only_broken = llm(&config(vec![provider(
        "b",
        LlmProviderKind::OpenAi,
        &broken.url,
    )]));
    let err = only_broken.chat(ask("x")).await.expect_err("malformed");
    assert!(matches!(err, LlmError::Malformed { .. }), "{err}");
    assert_eq!(broken.requests(), 1, "a malformed stream is not retried");

    let llm = llm(&config(vec![
        provider("b", LlmProviderKind::OpenAi, &broken.url),
        provider("g", LlmProviderKind::OpenAi, &good.url),
    ]));
    let response = llm.chat(ask("x")).await.expect("fallback");
    assert_eq!(
        (response.text.as_str(), response.provider.as_str()),
        ("fine", "g")
    );
}
