//! Ollama's native API: `/api/chat` (NDJSON stream), `/api/embed`, `/api/tags`.

use serde_json::{json, Value};

use super::{ParseError, StreamItem};
use crate::framing::{lenient_u64, NdjsonDecoder};
use crate::Message;

/// Body of a streamed `/api/chat` request; a JSON schema goes to `format`.
pub(crate) fn chat_body(
    model: &str,
    messages: &[Message],
    max_tokens: u32,
    temperature: Option<f32>,
    schema: Option<&Value>,
) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let mut options = json!({"num_predict": max_tokens});
    if let Some(temperature) = temperature {
        options["temperature"] = json!(temperature);
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "options": options,
    });
    if let Some(schema) = schema {
        body["format"] = if schema.as_object().is_some_and(|o| o.is_empty()) {
            json!("json")
        } else {
            schema.clone()
        };
    }
    body
}

/// Decoder of the NDJSON stream.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    lines: NdjsonDecoder,
    done: bool,
}

impl Parser {
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Vec<StreamItem>, ParseError> {
        let lines = self.lines.push(chunk).map_err(ParseError::Malformed)?;
        self.items(lines)
    }

    pub(crate) fn finish(&mut self) -> Result<Vec<StreamItem>, ParseError> {
        let lines = self.lines.finish().map_err(ParseError::Malformed)?;
        let items = self.items(lines)?;
        if self.done {
            Ok(items)
        } else {
            Err(ParseError::CutOff)
        }
    }

    fn items(&mut self, lines: Vec<String>) -> Result<Vec<StreamItem>, ParseError> {
        let mut items = Vec::new();
        for line in lines {
            if self.done {
                break;
            }
            let object: Value = serde_json::from_str(&line)
                .map_err(|err| ParseError::Malformed(format!("line is not json: {err}")))?;
            if let Some(error) = object.get("error") {
                let message = error
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_owned);
                return Err(ParseError::Event {
                    kind: "error".to_owned(),
                    message,
                    retryable: false,
                });
            }
            if let Some(text) = object
                .get("message")
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
            {
                if !text.is_empty() {
                    items.push(StreamItem::Text(text.to_owned()));
                }
            }
            if object.get("done").and_then(Value::as_bool) == Some(true) {
                if let Some(reason) = object.get("done_reason").and_then(Value::as_str) {
                    items.push(StreamItem::Finish(reason.to_owned()));
                }
                items.push(StreamItem::Usage {
                    input: lenient_u64(object.get("prompt_eval_count")),
                    output: lenient_u64(object.get("eval_count")),
                });
                self.done = true;
                items.push(StreamItem::Done);
            } else if object.get("message").is_none() {
                return Err(ParseError::Malformed(
                    "line without message or done".to_owned(),
                ));
            }
        }
        Ok(items)
    }
}

/// Body of an `/api/embed` request.
pub(crate) fn embed_body(model: &str, inputs: &[String]) -> Value {
    json!({"model": model, "input": inputs})
}

/// Vectors and prompt tokens of an `/api/embed` response.
pub(crate) fn parse_embeddings(body: &Value) -> Result<(Vec<Vec<f32>>, Option<u64>), String> {
    let vectors = body
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or("embed response without embeddings")?
        .iter()
        .map(|item| super::float_vector(Some(item)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((vectors, lenient_u64(body.get("prompt_eval_count"))))
}

/// Model names of an `/api/tags` response.
pub(crate) fn listed_models(body: &Value) -> Option<Vec<String>> {
    let models = body.get("models")?.as_array()?;
    Some(
        models
            .iter()
            .filter_map(|m| {
                m.get("name")
                    .or_else(|| m.get("model"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_stream() {
        let stream = concat!(
            "{\"model\":\"m\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"He\"},\"done\":false}\n",
            "{\"model\":\"m\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"y\"},\"done\":false}\n",
            "{\"model\":\"m\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":5,\"prompt_eval_count\":7,\"eval_count\":2}\n",
        );
        let mut parser = Parser::default();
        let mut items = Vec::new();
        for piece in stream.as_bytes().chunks(9) {
            items.extend(parser.feed(piece).expect("valid"));
        }
        items.extend(parser.finish().expect("complete"));
        assert_eq!(
            items,
            [
                StreamItem::Text("He".into()),
                StreamItem::Text("y".into()),
                StreamItem::Finish("stop".into()),
                StreamItem::Usage {
                    input: Some(7),
                    output: Some(2)
                },
                StreamItem::Done,
            ]
        );
        let mut cut = Parser::default();
        cut.feed(b"{\"message\":{\"content\":\"a\"},\"done\":false}\n")
            .expect("valid");
        assert_eq!(cut.finish(), Err(ParseError::CutOff));
    }

    #[test]
    fn format_carries_the_schema() {
        let schema = json!({"type": "object"});
        let body = chat_body("m", &[Message::user("x")], 5, None, Some(&schema));
        assert_eq!(body["format"], schema);
        assert_eq!(body["options"]["num_predict"], 5);
        let body = chat_body("m", &[], 5, None, Some(&json!({})));
        assert_eq!(body["format"], "json");
    }
}
