//! The LLM layer of Aiex: provider adapters and everything between a request and a model.
//!
//! This crate owns the wire protocols of OpenAI-compatible servers (OpenAI, llama.cpp server,
//! vLLM, LM Studio, Ollama's `/v1`), Anthropic Messages and Ollama's native API; streaming
//! (SSE and NDJSON decoded incrementally); roles (`fast`, `smart`, `embed`) mapped to named
//! providers with fallback; timeouts (connect, first token, total); retries with exponential
//! backoff and jitter that honour `retry-after`; a circuit breaker and `governor` rate limits
//! (requests and tokens per minute) per provider, all from `aiex-resilience`; token and cost accounting ([`UsageMeter`]);
//! `<think>` removal; JSON answers validated against a schema and repaired once; prompt
//! [`Templates`]; and provider health.
//!
//! Threading: everything is async I/O on the caller's tokio runtime; nothing blocks. A streamed
//! answer owns its HTTP response, so dropping the stream closes the connection.

mod answer;
mod client;
mod error;
mod framing;
mod health;
mod http;
mod json;
mod meter;
mod providers;
mod templates;
mod think;
mod types;

pub use aiex_config::{LlmConfig, LlmPrice, LlmProviderConfig, LlmProviderKind};
pub use aiex_resilience::BreakerState;
pub use client::Llm;
pub use error::{LlmError, TimeoutStage};
pub use health::{HealthReport, ProviderHealth};
pub use meter::{estimate_tokens, UsageMeter, UsageSnapshot, UsageTotals};
pub use templates::Templates;
pub use think::strip_think;
pub use types::{
    ChatDelta, ChatRequest, ChatResponse, ChatStream, Message, MessageRole, Role, Usage,
};

/// `Result` with [`LlmError`].
pub type Result<T, E = LlmError> = std::result::Result<T, E>;
