//! OpenAI-compatible chat completions (SSE chunks, `[DONE]`, usage chunk) and embeddings.

use serde_json::{json, Value};

use super::{ParseError, StreamItem};
use crate::framing::{lenient_u64, SseDecoder};
use crate::Message;

/// Whether `base_url` is OpenAI's own API, whose newer models take `max_completion_tokens` (and
/// refuse `max_tokens`); compatible servers (LM Studio, llama.cpp, vLLM, Ollama) get `max_tokens`.
pub(crate) fn is_openai_itself(base_url: &str) -> bool {
    reqwest::Url::parse(base_url)
        .ok()
        .and_then(|url| {
            url.host_str()
                .map(|host| host.eq_ignore_ascii_case("api.openai.com"))
        })
        .unwrap_or(false)
}

/// Body of a streamed `/v1/chat/completions` request.
pub(crate) fn chat_body(
    model: &str,
    messages: &[Message],
    max_tokens: u32,
    temperature: Option<f32>,
    schema: Option<&Value>,
    completion_tokens_field: bool,
) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let limit_field = if completion_tokens_field {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body[limit_field] = json!(max_tokens);
    if let Some(temperature) = temperature {
        body["temperature"] = json!(temperature);
    }
    if let Some(schema) = schema {
        body["response_format"] = if schema.as_object().is_some_and(|o| o.is_empty()) {
            json!({"type": "json_object"})
        } else {
            json!({
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema},
            })
        };
    }
    body
}

/// Largest body kept for the non-streaming fallback.
const MAX_PLAIN_BODY: usize = 4 << 20;

/// Decoder of the chunk stream. A server that ignores `stream` and answers with one
/// `chat.completion` object is understood too.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    sse: SseDecoder,
    finished: bool,
    done: bool,
    /// The body so far, while no event has been seen.
    plain: Vec<u8>,
    seen_event: bool,
}

impl Parser {
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Vec<StreamItem>, ParseError> {
        if !self.seen_event && self.plain.len() + chunk.len() <= MAX_PLAIN_BODY {
            self.plain.extend_from_slice(chunk);
        }
        let events = self.sse.push(chunk).map_err(ParseError::Malformed)?;
        if !events.is_empty() {
            self.seen_event = true;
            self.plain = Vec::new();
        }
        self.items(events)
    }

    pub(crate) fn finish(&mut self) -> Result<Vec<StreamItem>, ParseError> {
        let events = self.sse.finish().map_err(ParseError::Malformed)?;
        if events.is_empty() && !self.seen_event && !self.plain.is_empty() {
            return self.plain_completion();
        }
        let mut items = self.items(events)?;
        if !self.done {
            // Some compatible servers close after the finish reason without `[DONE]`.
            if !self.finished {
                return Err(ParseError::CutOff);
            }
            self.done = true;
            items.push(StreamItem::Done);
        }
        Ok(items)
    }

    /// Items of a non-streamed `chat.completion` body (or its error object).
    fn plain_completion(&mut self) -> Result<Vec<StreamItem>, ParseError> {
        let body: Value = serde_json::from_slice(&self.plain).map_err(|err| {
            ParseError::Malformed(format!("neither an event stream nor json: {err}"))
        })?;
        if let Some(error) = body.get("error") {
            let (kind, message) = super::error_parts(error);
            return Err(ParseError::Event {
                retryable: kind.contains("server") || kind.contains("overloaded"),
                kind,
                message,
            });
        }
        let choices = body
            .get("choices")
            .and_then(Value::as_array)
            .ok_or_else(|| ParseError::Malformed("completion without choices".to_owned()))?;
        let mut items = Vec::new();
        if let Some(choice) = choices.first() {
            if let Some(text) = choice
                .get("message")
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
            {
                items.push(StreamItem::Text(text.to_owned()));
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                items.push(StreamItem::Finish(reason.to_owned()));
            }
        }
        if let Some(usage) = body.get("usage").filter(|u| u.is_object()) {
            items.push(StreamItem::Usage {
                input: lenient_u64(usage.get("prompt_tokens")),
                output: lenient_u64(usage.get("completion_tokens")),
            });
        }
        self.done = true;
        items.push(StreamItem::Done);
        Ok(items)
    }

    fn items(
        &mut self,
        events: Vec<crate::framing::SseEvent>,
    ) -> Result<Vec<StreamItem>, ParseError> {
        let mut items = Vec::new();
        for event in events {
            if self.done {
                break;
            }
            let data = event.data.trim();
            if data == "[DONE]" {
                self.done = true;
                items.push(StreamItem::Done);
                continue;
            }
            let chunk: Value = serde_json::from_str(data)
                .map_err(|err| ParseError::Malformed(format!("chunk is not json: {err}")))?;
            if let Some(error) = chunk.get("error") {
                let (kind, message) = super::error_parts(error);
                return Err(ParseError::Event {
                    retryable: kind.contains("server") || kind.contains("overloaded"),
                    kind,
                    message,
                });
            }
            let choices = chunk.get("choices").and_then(Value::as_array);
            if choices.is_none() && chunk.get("usage").is_none() {
                return Err(ParseError::Malformed(
                    "chunk without choices or usage".to_owned(),
                ));
            }
            for choice in choices.into_iter().flatten() {
                let delta = choice.get("delta").or_else(|| choice.get("message"));
                if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) {
                    if !text.is_empty() {
                        items.push(StreamItem::Text(text.to_owned()));
                    }
                }
                if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                    self.finished = true;
                    items.push(StreamItem::Finish(reason.to_owned()));
                }
            }
            if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
                items.push(StreamItem::Usage {
                    input: lenient_u64(usage.get("prompt_tokens")),
                    output: lenient_u64(usage.get("completion_tokens")),
                });
            }
        }
        Ok(items)
    }
}

/// Body of a `/v1/embeddings` request.
pub(crate) fn embed_body(model: &str, inputs: &[String]) -> Value {
    json!({"model": model, "input": inputs})
}

/// Vectors in input order and the prompt tokens, from an embeddings response.
pub(crate) fn parse_embeddings(body: &Value) -> Result<(Vec<Vec<f32>>, Option<u64>), String> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or("embeddings response without data")?;
    let mut indexed = Vec::with_capacity(data.len());
    for (position, item) in data.iter().enumerate() {
        let index = lenient_u64(item.get("index"))
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(position);
        let vector = super::float_vector(item.get("embedding"))?;
        indexed.push((index, vector));
    }
    indexed.sort_by_key(|(index, _)| *index);
    let tokens = body
        .get("usage")
        .and_then(|usage| lenient_u64(usage.get("prompt_tokens")));
    Ok((indexed.into_iter().map(|(_, v)| v).collect(), tokens))
}

/// Model ids of a `/v1/models` response.
pub(crate) fn listed_models(body: &Value) -> Option<Vec<String>> {
    let data = body.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_itself_gets_max_completion_tokens() {
        assert!(is_openai_itself("https://api.openai.com"));
        assert!(is_openai_itself("https://API.openai.com/v1/"));
        assert!(!is_openai_itself("http://127.0.0.1:8080"));
        assert!(!is_openai_itself("https://api.openai.com.example.net"));
        assert!(!is_openai_itself("not a url"));
        let body = chat_body("m", &[Message::user("x")], 7, None, None, true);
        assert_eq!(body["max_completion_tokens"], 7);
        assert!(body.get("max_tokens").is_none());
        let body = chat_body("m", &[Message::user("x")], 7, None, None, false);
        assert_eq!(body["max_tokens"], 7);
        assert!(body.get("max_completion_tokens").is_none());
    }

    #[test]
    fn chunks_usage_and_done() {
        let stream = concat!(
            "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\n\n",
            "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
            "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":\"9\",\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
            "data: [DONE]\n\n",
        );
        let mut parser = Parser::default();
        let mut items = Vec::new();
        for piece in stream.as_bytes().chunks(7) {
            items.extend(parser.feed(piece).expect("valid"));
        }
        items.extend(parser.finish().expect("complete"));
        assert_eq!(
            items,
            [
                StreamItem::Text("Hel".into()),
                StreamItem::Text("lo".into()),
                StreamItem::Finish("stop".into()),
                StreamItem::Usage {
                    input: Some(9),
                    output: Some(2)
                },
                StreamItem::Done,
            ]
        );
    }

    #[test]
    fn cut_and_malformed_streams() {
        let mut parser = Parser::default();
        parser
            .feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n")
            .expect("valid");
        assert_eq!(parser.finish(), Err(ParseError::CutOff));
        let mut parser = Parser::default();
        assert!(matches!(
            parser.feed(b"data: {\"choices\": [\n\n"),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn a_plain_completion_is_understood() {
        let body = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
        .to_string();
        let mut parser = Parser::default();
        let mut items = Vec::new();
        for piece in body.as_bytes().chunks(10) {
            items.extend(parser.feed(piece).expect("valid"));
        }
        items.extend(parser.finish().expect("complete"));
        assert_eq!(
            items,
            [
                StreamItem::Text("Hi".into()),
                StreamItem::Finish("stop".into()),
                StreamItem::Usage {
                    input: Some(3),
                    output: Some(1)
                },
                StreamItem::Done,
            ]
        );
        let mut parser = Parser::default();
        parser.feed(b"<html>oops</html>").expect("buffered");
        assert!(matches!(parser.finish(), Err(ParseError::Malformed(_))));
    }

    #[test]
    fn embeddings_in_index_order() {
        let body = json!({"data": [
            {"index": 1, "embedding": [0.5, 1]},
            {"index": 0, "embedding": [0.25, 2]}
        ], "usage": {"prompt_tokens": 4}});
        let (vectors, tokens) = parse_embeddings(&body).expect("valid");
        assert_eq!(vectors, [vec![0.25, 2.0], vec![0.5, 1.0]]);
        assert_eq!(tokens, Some(4));
        assert!(parse_embeddings(&json!({"data": [{"embedding": "x"}]})).is_err());
    }
}
