//! The three wire protocols behind one interface: request building, stream decoding,
//! embeddings, health probes and error bodies.

mod anthropic;
mod ollama;
mod openai;

use aiex_config::{LlmProviderConfig, LlmProviderKind};
use reqwest::{Client, RequestBuilder};
use serde_json::Value;

use crate::{LlmError, Message};

/// One decoded piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StreamItem {
    Text(String),
    /// Token counts as far as known; later values replace earlier ones.
    Usage {
        input: Option<u64>,
        output: Option<u64>,
    },
    Finish(String),
    /// The provider said the answer is complete.
    Done,
}

/// What is wrong with a stream, before the provider's name is attached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParseError {
    Malformed(String),
    Event {
        kind: String,
        message: String,
        retryable: bool,
    },
    CutOff,
}

impl ParseError {
    pub(crate) fn into_error(self, provider: &str) -> LlmError {
        let provider = provider.to_owned();
        match self {
            ParseError::Malformed(message) => LlmError::Malformed { provider, message },
            ParseError::Event {
                kind,
                message,
                retryable,
            } => LlmError::StreamError {
                provider,
                kind,
                message,
                retryable,
            },
            ParseError::CutOff => LlmError::CutOff { provider },
        }
    }
}

/// A stream decoder for one response.
#[derive(Debug)]
pub(crate) enum Parser {
    OpenAi(openai::Parser),
    Anthropic(anthropic::Parser),
    Ollama(ollama::Parser),
}

impl Parser {
    pub(crate) fn new(kind: LlmProviderKind) -> Self {
        match kind {
            LlmProviderKind::OpenAi => Parser::OpenAi(openai::Parser::default()),
            LlmProviderKind::Anthropic => Parser::Anthropic(anthropic::Parser::default()),
            LlmProviderKind::Ollama => Parser::Ollama(ollama::Parser::default()),
        }
    }

    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Vec<StreamItem>, ParseError> {
        match self {
            Parser::OpenAi(parser) => parser.feed(chunk),
            Parser::Anthropic(parser) => parser.feed(chunk),
            Parser::Ollama(parser) => parser.feed(chunk),
        }
    }

    pub(crate) fn finish(&mut self) -> Result<Vec<StreamItem>, ParseError> {
        match self {
            Parser::OpenAi(parser) => parser.finish(),
            Parser::Anthropic(parser) => parser.finish(),
            Parser::Ollama(parser) => parser.finish(),
        }
    }
}

/// `base` joined with an API path; a base that already ends in `/v1` is not doubled.
pub(crate) fn endpoint(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    match path.strip_prefix("/v1") {
        Some(rest) if base.ends_with("/v1") => format!("{base}{rest}"),
        _ => format!("{base}{path}"),
    }
}

fn authorized(builder: RequestBuilder, provider: &LlmProviderConfig) -> RequestBuilder {
    let key = provider
        .api_key
        .as_ref()
        .map(|key| key.expose())
        .filter(|key| !key.is_empty());
    match provider.kind {
        LlmProviderKind::Anthropic => {
            let builder = builder.header("anthropic-version", anthropic::API_VERSION);
            match key {
                Some(key) => builder.header("x-api-key", key),
                None => builder,
            }
        }
        LlmProviderKind::OpenAi | LlmProviderKind::Ollama => match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        },
    }
}

/// The streamed chat request. `messages` already hold any JSON instruction.
pub(crate) fn chat_request(
    http: &Client,
    provider: &LlmProviderConfig,
    messages: &[Message],
    max_tokens: u32,
    temperature: Option<f32>,
    schema: Option<&Value>,
) -> RequestBuilder {
    let model = provider.model.as_str();
    let (path, body) = match provider.kind {
        LlmProviderKind::OpenAi => (
            "/v1/chat/completions",
            openai::chat_body(
                model,
                messages,
                max_tokens,
                temperature,
                schema,
                openai::is_openai_itself(&provider.base_url),
            ),
        ),
        LlmProviderKind::Anthropic => (
            "/v1/messages",
            anthropic::chat_body(model, messages, max_tokens, temperature),
        ),
        LlmProviderKind::Ollama => (
            "/api/chat",
            ollama::chat_body(model, messages, max_tokens, temperature, schema),
        ),
    };
    authorized(
        http.post(endpoint(&provider.base_url, path)).json(&body),
        provider,
    )
}

/// The embeddings request, or `None` when the protocol has no embeddings.
pub(crate) fn embed_request(
    http: &Client,
    provider: &LlmProviderConfig,
    inputs: &[String],
) -> Option<RequestBuilder> {
    let model = provider.embed_model.as_deref().unwrap_or(&provider.model);
    let (path, body) = match provider.kind {
        LlmProviderKind::OpenAi => ("/v1/embeddings", openai::embed_body(model, inputs)),
        LlmProviderKind::Ollama => ("/api/embed", ollama::embed_body(model, inputs)),
        LlmProviderKind::Anthropic => return None,
    };
    Some(authorized(
        http.post(endpoint(&provider.base_url, path)).json(&body),
        provider,
    ))
}

/// Vectors and prompt tokens of an embeddings response.
pub(crate) fn parse_embeddings(
    kind: LlmProviderKind,
    body: &Value,
) -> Result<(Vec<Vec<f32>>, Option<u64>), String> {
    match kind {
        LlmProviderKind::OpenAi => openai::parse_embeddings(body),
        LlmProviderKind::Ollama => ollama::parse_embeddings(body),
        LlmProviderKind::Anthropic => Err("anthropic has no embeddings".to_owned()),
    }
}

/// The request that lists the provider's models (its health probe).
pub(crate) fn health_request(http: &Client, provider: &LlmProviderConfig) -> RequestBuilder {
    let path = match provider.kind {
        LlmProviderKind::OpenAi | LlmProviderKind::Anthropic => "/v1/models",
        LlmProviderKind::Ollama => "/api/tags",
    };
    authorized(http.get(endpoint(&provider.base_url, path)), provider)
}

/// Model names of a health probe's answer, when it lists them.
pub(crate) fn listed_models(kind: LlmProviderKind, body: &Value) -> Option<Vec<String>> {
    match kind {
        LlmProviderKind::OpenAi | LlmProviderKind::Anthropic => openai::listed_models(body),
        LlmProviderKind::Ollama => ollama::listed_models(body),
    }
}

/// `(type, message)` of an error object: `{"message", "type"}` or a bare string.
pub(crate) fn error_parts(error: &Value) -> (String, String) {
    match error {
        Value::String(message) => ("error".to_owned(), message.clone()),
        Value::Object(fields) => {
            let kind = fields
                .get("type")
                .or_else(|| fields.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_owned();
            let message = fields
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            (kind, message)
        }
        other => ("error".to_owned(), other.to_string()),
    }
}

/// A short message from an error body of any of the three protocols
/// (`{"error":{"message"}}`, `{"type":"error","error":{…}}`, `{"error":"…"}`), else its text.
pub(crate) fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    if let Some(error) = parsed.as_ref().and_then(|v| v.get("error")) {
        let (kind, message) = error_parts(error);
        return if kind == "error" {
            message
        } else {
            format!("{kind}: {message}")
        };
    }
    let text: String = body.trim().chars().take(300).collect();
    if text.is_empty() {
        "empty body".to_owned()
    } else {
        text
    }
}

/// A JSON array of numbers as `f32`s.
pub(crate) fn float_vector(value: Option<&Value>) -> Result<Vec<f32>, String> {
    value
        .and_then(Value::as_array)
        .ok_or("embedding is not an array")?
        .iter()
        .map(|x| {
            // Embeddings are f32 by nature; the narrowing is intended.
            #[allow(clippy::cast_possible_truncation)]
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| "embedding holds a non-number".to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("http://h:1/", "/v1/chat/completions"),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            endpoint("https://api.openai.com/v1", "/v1/embeddings"),
            "https://api.openai.com/v1/embeddings"
        );
        assert_eq!(endpoint("http://h:1", "/api/chat"), "http://h:1/api/chat");
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(
                r#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#
            ),
            "invalid_request_error: The model `x` does not exist"
        );
        assert_eq!(
            error_message(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "overloaded_error: Overloaded"
        );
        assert_eq!(
            error_message(r#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(error_message("bad gateway"), "bad gateway");
        assert_eq!(error_message(""), "empty body");
    }
}
