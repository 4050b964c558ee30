//! The request and response types callers see.

use std::fmt;
use std::pin::Pin;
use std::str::FromStr;

use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::LlmError;

/// What a request is for; configuration maps each role to providers, first choice first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Cheap, quick calls (query planning, classification).
    Fast,
    /// The best model available (synthesis).
    Smart,
    /// Embeddings.
    Embed,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 3] = [Role::Fast, Role::Smart, Role::Embed];

    /// The lowercase name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Fast => "fast",
            Role::Smart => "smart",
            Role::Embed => "embed",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim();
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| format!("unknown role `{text}` (expected fast, smart or embed)"))
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    System,
    User,
    Assistant,
}

impl MessageRole {
    /// The lowercase name the providers use.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::System => "system",
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: MessageRole,
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: MessageRole::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: MessageRole::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: MessageRole::Assistant,
            content: content.into(),
        }
    }
}

/// A chat request: a role (never a vendor), the conversation and sampling limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub role: Role,
    pub messages: Vec<Message>,
    /// Output token limit; `None` means `llm.max_tokens`.
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// A request with the provider's default sampling.
    pub fn new(role: Role, messages: Vec<Message>) -> Self {
        Self {
            role,
            messages,
            max_tokens: None,
            temperature: None,
        }
    }

    /// Sets the output token limit.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the sampling temperature.
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }
}

/// Tokens and cost of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// From the provider's price table in configuration (0 when the model has no price).
    pub cost_usd: f64,
    /// Whether a token count was estimated (see [`crate::estimate_tokens`]) because the
    /// provider did not report it.
    pub estimated: bool,
}

impl Usage {
    /// The sum of two usages (estimated if either is).
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            cost_usd: self.cost_usd + other.cost_usd,
            estimated: self.estimated || other.estimated,
        }
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The answer, `<think>…</think>` removed.
    pub text: String,
    pub usage: Usage,
    /// Name of the provider that answered.
    pub provider: String,
    /// Model that answered.
    pub model: String,
    /// `stop`, `length`, `end_turn`, … as the provider said.
    pub finish_reason: Option<String>,
}

/// One item of a streamed answer: text as it comes, then the complete response.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatDelta {
    Text(String),
    Done(ChatResponse),
}

/// A streamed answer; dropping it closes the HTTP request.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatDelta, LlmError>> + Send>>;
