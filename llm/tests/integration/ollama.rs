//! Ollama's native API against the stand-in.

use aiex_llm::{LlmError, LlmProviderKind};
use serde_json::json;

use crate::standin::{config, provider, Reply, StandIn};
use crate::{ask, drain, llm};

#[tokio::test]
async fn ndjson_chat_stream() {
    let server = StandIn::start().await;
    server.push(Reply::ollama_stream(&["Hi", " you"], 7, 2));
    let llm = llm(&config(vec![provider(
        "local",
        LlmProviderKind::Ollama,
        &server.url,
    )]));
    let (texts, done) = drain(
        llm.chat_stream(ask("hi").with_max_tokens(9))
            .await
            .expect("stream"),
    )
    .await;
    let response = done.expect("complete");
    assert_eq!(texts, ["Hi", " you"]);
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        (response.usage.input_tokens, response.usage.output_tokens),
        (7, 2)
    );
    let seen = &server.seen()[0];
    assert_eq!(seen.path, "/api/chat");
    assert_eq!(seen.body["stream"], true);
    assert_eq!(seen.body["options"]["num_predict"], 9);
}

#[tokio::test]
async fn schema_goes_to_format_and_embed_uses_api_embed() {
    let server = StandIn::start().await;
    server.push(Reply::ollama_stream(&["{\"n\":", " 1}"], 7, 2));
    server.push(Reply::json(
        200,
        json!({"model": "stand-in", "embeddings": [[0.5, 0.5]], "prompt_eval_count": 3}),
    ));
    let llm = llm(&config(vec![provider(
        "local",
        LlmProviderKind::Ollama,
        &server.url,
    )]));
    let schema = json!({"type": "object", "required": ["n"]});
    let (value, _) = llm.chat_json(ask("n?"), &schema).await.expect("json");
    assert_eq!(value, json!({"n": 1}));
    let vectors = llm.embed(&["x".to_owned()]).await.expect("vectors");
    assert_eq!(vectors, [vec![0.5, 0.5]]);
    let seen = server.seen();
    assert_eq!(seen[0].body["format"], schema);
    assert_eq!(seen[1].path, "/api/embed");
    assert_eq!(seen[1].body, json!({"model": "stand-in", "input": ["x"]}));
}

#[tokio::test]
async fn unknown_model_and_error_line() {
    let server = StandIn::start().await;
    server.push(Reply::json(
        404,
        json!({"error": "model \"stand-in\" not found, try pulling it first"}),
    ));
    let llm = llm(&config(vec![provider(
        "local",
        LlmProviderKind::Ollama,
        &server.url,
    )]));
    let err = llm.chat(ask("x")).await.expect_err("404");
    assert!(
        matches!(&err, LlmError::Http { status: 404, message, .. } if message.contains("not found")),
        "{err}"
    );
    let mut reply = Reply::ollama_stream(&[], 0, 0);
    reply.chunks =
        vec!["{\"error\":\"an error was encountered while running the model\"}\n".into()];
    server.push(reply);
    let err = llm.chat(ask("x")).await.expect_err("error line");
    assert!(matches!(err, LlmError::StreamError { .. }), "{err}");
}

#[tokio::test]
async fn health_lists_models() {
    let server = StandIn::start().await;
    server.always(Reply::json(
        200,
        json!({"models": [{"name": "stand-in:latest", "model": "stand-in:latest", "size": 1}]}),
    ));
    let llm = llm(&config(vec![provider(
        "local",
        LlmProviderKind::Ollama,
        &server.url,
    )]));
    let report = llm.health().await;
    assert!(report.ready);
    assert_eq!(report.providers[0].model_available, Some(true));
    assert_eq!(server.seen()[0].path, "/api/tags");
}
