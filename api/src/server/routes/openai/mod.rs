//! OpenAI-compatible chat, for the chat UIs people already run (Open WebUI, LibreChat, Continue,
//! Chatbox, …): `GET /v1/models` and `POST /v1/chat/completions`, streamed or not.
//!
//! A completion is a research session like any other ([`crate::server::research`]): the last user
//! message is the question, the session is stored and owned by the caller, and its id comes back
//! in the `x-session-id` header, in `system_fingerprint` and in the completion's id
//! (`chatcmpl-<session>`), so `GET /v1/research/{id}` shows it. Earlier turns of the conversation
//! are not used: the planner takes one question (the reasoning says so when there were some).
//! Two models: `aiex-research` (deep research at the server's depth and budgets) and
//! `aiex-search` (one search round: depth 1, one sub-question, a few searches and pages).
//!
//! The stream translates the session's events: the report's text (`synthesis_delta`: the LLM's
//! tokens, or the extractive sections) as `delta.content`; the plan, searches, pages and evidence
//! as `delta.reasoning_content`, which several UIs show apart as "thinking"; the references as a
//! Markdown list at the end; then a chunk with `finish_reason`, a chunk with `usage` (LLM tokens;
//! zero without an LLM) and `data: [DONE]`. A client that disconnects only stops following: the
//! session runs to its end and its log stays whole, as with the SSE API.
//!
//! These routes sit behind the same key check and rate limit as the rest of `/v1`; their errors
//! take OpenAI's shape (`{"error":{"message","type","param","code"}}`), which OpenAI's SDKs read.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use aiex_research::ResearchRequest;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::server::auth::{self, Caller};
use crate::server::error::ApiError;
use crate::server::research::BudgetOverrides;
use crate::server::research_stream::Followed;
use crate::server::routes::research::MAX_QUESTION_CHARS;
use crate::server::AppState;

mod stream;

use stream::{pieces, Piece, Translator};

/// Deep research: plan, several searches, pages, evidence, a cited report.
pub const RESEARCH_MODEL: &str = "aiex-research";
/// A quick answer from one search round.
pub const SEARCH_MODEL: &str = "aiex-search";

/// When the models were published (seconds since the Unix epoch), for `created`.
const MODELS_CREATED: u64 = 1_767_225_600;

/// The models and what they do.
const MODELS: [(&str, &str); 2] = [
    (
        RESEARCH_MODEL,
        "Deep research over the indexed code, documentation and web sources: a plan, several rounds of searches and pages, and a report with cited references",
    ),
    (
        SEARCH_MODEL,
        "A quick answer from one search round: one sub-question, a few searches, the best passages with their references",
    ),
];

/// The routes, behind the key check and rate limit, their errors in OpenAI's shape.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route_layer(from_fn_with_state(state.clone(), auth::require_key))
        .layer(axum::middleware::map_response(openai_errors))
}

/// A model.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Model {
    pub id: String,
    /// Always `model`.
    pub object: String,
    pub created: u64,
    pub owned_by: String,
    pub description: String,
}

/// The models.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Model>,
}

/// One message of the conversation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, …
    pub role: String,
    /// Text, or a list of parts of which the `text` ones are read.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub content: Option<serde_json::Value>,
}

/// A chat completion request; fields other than these (temperature, tools, …) are accepted and
/// ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// `aiex-research` or `aiex-search`.
    pub model: String,
    /// The conversation; its last user message is the question.
    pub messages: Vec<ChatMessage>,
    /// Stream `chat.completion.chunk`s as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
}

/// An OpenAI error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenAiError {
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, `server_error`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

/// The body of an error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenAiErrorBody {
    pub error: OpenAiError,
}

/// Tokens used (the LLM's, in and out; zero without an LLM).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompletionUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl CompletionUsage {
    fn of(usage: &aiex_research::usage::Usage) -> Self {
        CompletionUsage {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens + usage.output_tokens,
        }
    }
}

/// The answer's message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: String,
    /// The report: summary, sections with citations `[n]`, references.
    pub content: String,
    /// How it was found: plan, searches, pages, evidence.
    pub reasoning_content: String,
}

/// A choice of a completion (there is one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompletionChoice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: String,
}

/// A chat completion (`stream: false`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-<session id>`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    pub created: u64,
    pub model: String,
    /// The research session's id.
    pub system_fingerprint: String,
    pub choices: Vec<CompletionChoice>,
    pub usage: CompletionUsage,
}

/// What a chunk adds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ChunkDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

/// A choice of a chunk.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: ChunkDelta,
    pub finish_reason: Option<String>,
}

/// One `data:` frame of a stream (`stream: true`); the last one before `data: [DONE]` has no
/// choices and the `usage`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<CompletionUsage>,
}

fn openai_error(
    status: StatusCode,
    kind: &str,
    code: &str,
    param: Option<&str>,
    message: impl Into<String>,
) -> Response {
    let body = OpenAiErrorBody {
        error: OpenAiError {
            message: message.into(),
            kind: kind.to_string(),
            param: param.map(str::to_string),
            code: Some(code.to_string()),
        },
    };
    (status, Json(body)).into_response()
}

/// The OpenAI error type of an HTTP status.
fn error_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        500.. => "server_error",
        _ => "invalid_request_error",
    }
}

/// Rewrites the API's own errors (`{"error":{"code","message"}}`: key check, rate limit, …) into
/// OpenAI's shape, keeping status and headers (`retry-after`).
async fn openai_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (parts.status, parts.headers).into_response();
    };
    let rewritten = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|value| {
            let error = value.get("error")?.as_object()?;
            if error.contains_key("type") {
                return None;
            }
            Some(serde_json::json!({
                "error": {
                    "message": error.get("message").cloned().unwrap_or_default(),
                    "type": error_kind(status),
                    "param": null,
                    "code": error.get("code").cloned().unwrap_or_default(),
                }
            }))
        });
    let bytes = match rewritten {
        Some(value) => Bytes::from(value.to_string()),
        None => bytes,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

fn api_error(err: ApiError) -> Response {
    let mut response = openai_error(
        err.status,
        error_kind(err.status),
        err.code,
        None,
        err.message,
    );
    if let Some(seconds) = err.retry_after {
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The models, with what each does.
#[utoipa::path(
    get,
    path = "/v1/models",
    operation_id = "list_models",
    tag = "openai",
    responses(
        (status = 200, description = "The models", body = ModelList),
        (status = 401, description = "Missing, invalid or revoked key", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn models() -> Json<ModelList> {
    Json(ModelList {
        object: "list".to_string(),
        data: MODELS
            .iter()
            .map(|(id, description)| Model {
                id: (*id).to_string(),
                object: "model".to_string(),
                created: MODELS_CREATED,
                owned_by: "aiex".to_string(),
                description: (*description).to_string(),
            })
            .collect(),
    })
}

/// The text of a message's content: a string, or the `text` parts of a list.
fn message_text(content: Option<&serde_json::Value>) -> String {
    match content {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| match part {
                serde_json::Value::String(text) => Some(text.as_str()),
                serde_json::Value::Object(object) => object.get("text")?.as_str(),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Why a request is refused, before anything starts.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    param: Option<&'static str>,
    message: String,
}

impl Refusal {
    fn new(
        status: StatusCode,
        code: &'static str,
        param: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Refusal {
            status,
            code,
            param,
            message: message.into(),
        }
    }

    fn into_response(self) -> Response {
        openai_error(
            self.status,
            error_kind(self.status),
            self.code,
            self.param,
            self.message,
        )
    }
}

/// What a valid request asks.
#[derive(Debug)]
struct Asked {
    model: &'static str,
    question: String,
    /// Messages before the question (not used for planning).
    earlier: usize,
    stream: bool,
}

fn parse_request(body: Result<Bytes, BytesRejection>) -> Result<Asked, Refusal> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                None,
                "the request body is too large",
            )
        } else {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                None,
                "the request body could not be read",
            )
        }
    })?;
    let request: ChatRequest = serde_json::from_slice(&bytes).map_err(|err| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            None,
            format!("the request body is not a valid chat completion request: {err}"),
        )
    })?;
    let Some(model) = MODELS
        .iter()
        .map(|(id, _)| *id)
        .find(|id| *id == request.model)
    else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            Some("model"),
            format!(
                "the model `{}` does not exist; the models are {RESEARCH_MODEL} and {SEARCH_MODEL}",
                request.model
            ),
        ));
    };
    let invalid = |message: String| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_messages",
            Some("messages"),
            message,
        )
    };
    let Some(last_user) = request
        .messages
        .iter()
        .rposition(|message| message.role == "user")
    else {
        return Err(invalid("messages hold no user message".to_string()));
    };
    let question = message_text(request.messages[last_user].content.as_ref())
        .trim()
        .to_string();
    if question.is_empty() {
        return Err(invalid("the last user message is empty".to_string()));
    }
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(invalid(format!(
            "the last user message is longer than {MAX_QUESTION_CHARS} characters"
        )));
    }
    Ok(Asked {
        model,
        question,
        earlier: request.messages[..last_user]
            .iter()
            .filter(|message| message.role == "user" || message.role == "assistant")
            .count(),
        stream: request.stream.unwrap_or(false),
    })
}

/// Answers the last user message with a research session: `aiex-research` researches in depth,
/// `aiex-search` answers from one search round. With `stream: true`, `chat.completion.chunk`s
/// (report text as `content`, progress as `reasoning_content`, references, `usage`, `[DONE]`).
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    operation_id = "create_chat_completion",
    tag = "openai",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The completion (JSON), or with `stream: true` its chunks as server-sent events (`data:` a chunk, then `data: [DONE]`); the session's id in `x-session-id`", content(
            (ChatCompletion = "application/json"),
            (ChatCompletionChunk = "text/event-stream"),
        ), headers(("x-session-id" = String, description = "The research session's id"))),
        (status = 400, description = "Invalid request", body = OpenAiErrorBody),
        (status = 401, description = "Missing, invalid or revoked key", body = OpenAiErrorBody),
        (status = 404, description = "Unknown model, or no collections yet", body = OpenAiErrorBody),
        (status = 413, description = "Body too large", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited", body = OpenAiErrorBody),
        (status = 503, description = "Shutting down", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let asked = match parse_request(body) {
        Ok(asked) => asked,
        Err(refusal) => return refusal.into_response(),
    };
    let (depth, budgets) = if asked.model == SEARCH_MODEL {
        (
            1,
            BudgetOverrides {
                max_sub_questions: Some(1),
                max_searches: Some(3),
                max_pages: Some(2),
                ..BudgetOverrides::default()
            },
        )
    } else {
        (state.config.research.depth, BudgetOverrides::default())
    };
    let request = ResearchRequest {
        question: asked.question.clone(),
        collections: Vec::new(),
        depth,
        template: None,
        sources: Vec::new(),
    };
    let id = match state
        .research
        .create(&caller.0, request, "md".to_string(), budgets)
        .await
    {
        Ok(id) => id,
        Err(err) => return api_error(err),
    };
    let translator = Translator::new(&id, asked.model, asked.earlier);
    let followed = state.research.followed(&id, 0, &state.streams);
    let mut response = if asked.stream {
        let events = pieces(followed, translator)
            .map(|(piece, translator)| Ok::<_, Infallible>(translator.frame(&piece)));
        let mut response = Sse::new(events)
            .keep_alive(
                KeepAlive::new()
                    .interval(state.streams.keep_alive)
                    .text("keep-alive"),
            )
            .into_response();
        response.headers_mut().insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
        response
    } else {
        complete(followed, translator).await
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-session-id"), value);
    }
    response
}

/// Follows the session to its end and answers one `chat.completion`.
async fn complete(
    followed: impl Stream<Item = Followed> + Send + 'static,
    translator: Translator,
) -> Response {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut usage = CompletionUsage::default();
    let mut stopped = None;
    let mut finish_reason = "stop";
    let mut context = None;
    let mut stream = std::pin::pin!(pieces(followed, translator));
    while let Some((piece, translator)) = stream.next().await {
        match piece {
            Piece::Role | Piece::Done => {}
            Piece::Content(text) => content.push_str(&text),
            Piece::Reasoning(text) => reasoning.push_str(&text),
            Piece::Finish(reason) => finish_reason = reason,
            Piece::Usage(used) => usage = used,
            Piece::Error { code, message } => stopped = Some((code, message)),
        }
        context = Some(translator.context());
    }
    if let Some((code, message)) = stopped {
        return openai_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &code,
            None,
            message,
        );
    }
    let Some((id, session, model)) = context else {
        return openai_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal",
            None,
            "the research session ended without an answer",
        );
    };
    Json(ChatCompletion {
        id,
        object: "chat.completion".to_string(),
        created: now_secs(),
        model,
        system_fingerprint: session,
        choices: vec![CompletionChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".to_string(),
                content,
                reasoning_content: reasoning,
            },
            finish_reason: finish_reason.to_string(),
        }],
        usage,
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_text_or_text_parts() {
        let parts = serde_json::json!([{"type": "text", "text": "a"}, {"type": "image_url"}, "b"]);
        assert_eq!(message_text(Some(&parts)), "a\nb");
        assert_eq!(message_text(Some(&serde_json::json!("q"))), "q");
        assert_eq!(message_text(None), "");
    }

    #[test]
    fn requests_are_checked_in_openai_terms() {
        let parse = |body: serde_json::Value| parse_request(Ok(Bytes::from(body.to_string())));
        let asked = parse(serde_json::json!({
            "model": "aiex-search",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "answer"},
                {"role": "user", "content": "  how are tables parsed?  "}
            ],
            "temperature": 0.2,
            "stream": true,
            "tools": []
        }))
        .expect("valid");
        assert_eq!(asked.model, SEARCH_MODEL);
        assert_eq!(asked.question, "how are tables parsed?");
        assert_eq!(asked.earlier, 2);
        assert!(asked.stream);
        let status = |body: serde_json::Value| parse(body).err().map(|r| r.status);
        assert_eq!(
            status(
                serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]})
            ),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            status(serde_json::json!({"model": "aiex-research", "messages": []})),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status(serde_json::json!({"model": "aiex-research"})),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            parse_request(Ok(Bytes::from_static(b"{")))
                .err()
                .map(|r| r.status),
            Some(StatusCode::BAD_REQUEST)
        );
    }
}
