//! Integration tests of the LLM layer against local stand-ins of every provider (exact wire
//! formats and errors) and against a real llama-server.

mod anthropic;
mod ollama;
mod openai;
mod real_server;
mod resilience;
mod standin;

use aiex_llm::{ChatDelta, ChatRequest, ChatStream, LlmConfig, LlmError, Message, Role};
use futures_util::StreamExt;

pub fn llm(config: &LlmConfig) -> aiex_llm::Llm {
    aiex_llm::Llm::from_config(config)
        .expect("valid configuration")
        .expect("a provider is configured")
}

pub fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(Role::Fast, vec![Message::user(text)])
}

/// Every item of a stream: the texts, and the final response or the error that ended it.
pub async fn drain(
    mut stream: ChatStream,
) -> (Vec<String>, Result<aiex_llm::ChatResponse, LlmError>) {
    let mut texts = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(ChatDelta::Text(text)) => texts.push(text),
            Ok(ChatDelta::Done(response)) => {
                assert!(stream.next().await.is_none(), "nothing after done");
                return (texts, Ok(response));
            }
            Err(err) => {
                assert!(stream.next().await.is_none(), "nothing after an error");
                return (texts, Err(err));
            }
        }
    }
    panic!("stream ended without done or error");
}
