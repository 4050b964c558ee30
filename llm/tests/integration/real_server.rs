//! Against a real OpenAI-compatible server: llama-server with SmolLM2, started by the test.
//! Protocol and shape only, never the model's facts.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aiex_llm::{ChatDelta, LlmConfig, LlmProviderKind};
use futures_util::StreamExt;
use serde_json::json;

use crate::{ask, llm};

/// A llama-server child process, killed on drop.
struct LlamaServer {
    child: Child,
    url: String,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/setup-llm (it prints the llama-server binary and the SmolLM2 model paths), then set AIEX_TEST_LLAMA_SERVER and AIEX_TEST_LLAMA_MODEL")
    })
}

async fn start_llama() -> LlamaServer {
    let binary = required_env("AIEX_TEST_LLAMA_SERVER");
    let model = required_env("AIEX_TEST_LLAMA_MODEL");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(&binary)
        .args(["-m", &model, "--alias", "smollm2", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string(), "-t", "1", "-c", "4096"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {binary}: {err} (run scripts/setup-llm)"));
    let server = LlamaServer {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let health = format!("{}/health", server.url);
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(response) = client.get(&health).send().await {
            if response.status().is_success() {
                return server;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("llama-server did not become healthy within 30 s");
}

/// Slots of the server that are generating (llama-server's `/slots`).
async fn busy_slots(url: &str) -> usize {
    let slots: serde_json::Value = reqwest::get(format!("{url}/slots"))
        .await
        .expect("slots")
        .json()
        .await
        .expect("slots json");
    slots
        .as_array()
        .expect("slot list")
        .iter()
        .filter(|slot| slot["is_processing"] == true)
        .count()
}

/// One server for every check, to keep the suite fast.
#[tokio::test]
async fn real_llama_server_protocol() {
    let server = start_llama().await;
    let mut config = LlmConfig::single(&server.url, "smollm2", LlmProviderKind::OpenAi, None);
    config.max_retries = 0;
    let llm = llm(&config);

    let report = llm.health().await;
    assert!(report.ready, "{report:?}");

    // Chat: some text, real usage from the server.
    let response = llm
        .chat(ask("Say hello.").with_max_tokens(8).with_temperature(0.0))
        .await
        .expect("chat");
    assert!(!response.text.trim().is_empty());
    assert!(!response.usage.estimated);
    assert!(response.usage.input_tokens > 0);
    assert!((1..=8).contains(&response.usage.output_tokens));
    assert!(response.finish_reason.is_some());

    // Streaming: several deltas that add up to the final text.
    let mut stream = llm
        .chat_stream(
            ask("Count from one to ten.")
                .with_max_tokens(16)
                .with_temperature(0.0),
        )
        .await
        .expect("stream");
    let mut joined = String::new();
    let mut deltas = 0;
    let mut done = None;
    while let Some(item) = stream.next().await {
        match item.expect("delta") {
            ChatDelta::Text(text) => {
                deltas += 1;
                joined.push_str(&text);
            }
            ChatDelta::Done(response) => done = Some(response),
        }
    }
    let done = done.expect("done");
    assert!(deltas > 1, "streamed in pieces");
    assert_eq!(done.text, joined);
    assert_eq!(done.finish_reason.as_deref(), Some("length"));
    assert_eq!(done.usage.output_tokens, 16);

    // JSON schema output (grammar-constrained by the server).
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"},
                        "age": {"type": "integer"}}, "required": ["name", "age"]});
    let (value, _) = llm
        .chat_json(
            ask("Describe a person as JSON with a name and an age.")
                .with_max_tokens(48)
                .with_temperature(0.0),
            &schema,
        )
        .await
        .expect("json");
    assert!(
        value["name"].is_string() && value["age"].is_i64(),
        "{value}"
    );

    // Cancellation: drop a long stream after its first delta; the server stops generating.
    let mut stream = llm
        .chat_stream(ask("Write a long story.").with_max_tokens(400))
        .await
        .expect("stream");
    assert!(matches!(stream.next().await, Some(Ok(ChatDelta::Text(_)))));
    assert!(busy_slots(&server.url).await > 0, "generating");
    drop(stream);
    let mut idle = false;
    for _ in 0..30 {
        if busy_slots(&server.url).await == 0 {
            idle = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        idle,
        "the server saw the client leave and stopped generating"
    );
    let after = llm
        .chat(ask("Hi.").with_max_tokens(4).with_temperature(0.0))
        .await
        .expect("chat after a cancelled stream");
    assert!(after.usage.output_tokens <= 4);

    // Usage accounting: the meter holds every answer.
    let totals = llm.meter().total();
    assert_eq!(totals.requests, 4, "{totals:?}");
    assert_eq!(totals.cancelled, 1, "{totals:?}");
    assert!(totals.output_tokens >= 8 + 16);
    assert_eq!(totals.cost_usd, 0.0);
}
