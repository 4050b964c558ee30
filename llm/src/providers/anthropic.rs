//! Anthropic Messages: named SSE events, `error` events mid-stream.

use serde_json::{json, Value};

use super::{ParseError, StreamItem};
use crate::framing::{lenient_u64, SseDecoder};
use crate::{Message, MessageRole};

/// The API version header value this client speaks.
pub(crate) const API_VERSION: &str = "2023-06-01";

/// Body of a streamed `/v1/messages` request; system messages become `system`.
pub(crate) fn chat_body(
    model: &str,
    messages: &[Message],
    max_tokens: u32,
    temperature: Option<f32>,
) -> Value {
    let system: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == MessageRole::System)
        .map(|m| m.content.as_str())
        .collect();
    let turns: Vec<Value> = messages
        .iter()
        .filter(|m| m.role != MessageRole::System)
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "messages": turns,
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if let Some(temperature) = temperature {
        body["temperature"] = json!(temperature);
    }
    body
}

/// Whether an error type is worth retrying.
pub(crate) fn retryable_error_type(kind: &str) -> bool {
    matches!(kind, "overloaded_error" | "rate_limit_error" | "api_error")
}

/// Decoder of the event stream.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    sse: SseDecoder,
    done: bool,
}

impl Parser {
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Vec<StreamItem>, ParseError> {
        let events = self.sse.push(chunk).map_err(ParseError::Malformed)?;
        self.items(events)
    }

    pub(crate) fn finish(&mut self) -> Result<Vec<StreamItem>, ParseError> {
        let events = self.sse.finish().map_err(ParseError::Malformed)?;
        let items = self.items(events)?;
        if self.done {
            Ok(items)
        } else {
            Err(ParseError::CutOff)
        }
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
            let data: Value = serde_json::from_str(&event.data)
                .map_err(|err| ParseError::Malformed(format!("event data is not json: {err}")))?;
            let name = event
                .name
                .or_else(|| data.get("type").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            match name.as_str() {
                "message_start" => {
                    let usage = data.get("message").and_then(|m| m.get("usage"));
                    if let Some(usage) = usage {
                        items.push(StreamItem::Usage {
                            input: lenient_u64(usage.get("input_tokens")),
                            output: None,
                        });
                    }
                }
                "content_block_delta" => {
                    let delta = data.get("delta");
                    let is_text = delta
                        .and_then(|d| d.get("type"))
                        .and_then(Value::as_str)
                        .is_none_or(|kind| kind == "text_delta");
                    if let Some(text) = delta
                        .filter(|_| is_text)
                        .and_then(|d| d.get("text"))
                        .and_then(Value::as_str)
                    {
                        if !text.is_empty() {
                            items.push(StreamItem::Text(text.to_owned()));
                        }
                    }
                }
                "message_delta" => {
                    if let Some(reason) = data
                        .get("delta")
                        .and_then(|d| d.get("stop_reason"))
                        .and_then(Value::as_str)
                    {
                        items.push(StreamItem::Finish(reason.to_owned()));
                    }
                    if let Some(usage) = data.get("usage") {
                        items.push(StreamItem::Usage {
                            input: lenient_u64(usage.get("input_tokens")),
                            output: lenient_u64(usage.get("output_tokens")),
                        });
                    }
                }
                "message_stop" => {
                    self.done = true;
                    items.push(StreamItem::Done);
                }
                "error" => {
                    let (kind, message) =
                        super::error_parts(data.get("error").unwrap_or(&Value::Null));
                    return Err(ParseError::Event {
                        retryable: retryable_error_type(&kind),
                        kind,
                        message,
                    });
                }
                // ping, content_block_start, content_block_stop, and future event types.
                _ => {}
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_events() {
        let stream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":3}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let mut parser = Parser::default();
        let mut items = Vec::new();
        for piece in stream.as_bytes().chunks(5) {
            items.extend(parser.feed(piece).expect("valid"));
        }
        items.extend(parser.finish().expect("complete"));
        assert_eq!(
            items,
            [
                StreamItem::Usage {
                    input: Some(12),
                    output: None
                },
                StreamItem::Text("Hi".into()),
                StreamItem::Finish("end_turn".into()),
                StreamItem::Usage {
                    input: None,
                    output: Some(3)
                },
                StreamItem::Done,
            ]
        );
    }

    #[test]
    fn error_event_mid_stream() {
        let mut parser = Parser::default();
        let result = parser.feed(
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        assert_eq!(
            result,
            Err(ParseError::Event {
                kind: "overloaded_error".into(),
                message: "Overloaded".into(),
                retryable: true
            })
        );
    }

    #[test]
    fn system_messages_move_to_system() {
        let body = chat_body(
            "claude",
            &[Message::system("be brief"), Message::user("hi")],
            100,
            Some(0.0),
        );
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
        assert_eq!(body["max_tokens"], 100);
    }
}
