//! Stream framing: server-sent events (OpenAI, Anthropic) and newline-delimited JSON (Ollama),
//! decoded incrementally from arbitrary byte chunks.

/// Splits bytes into lines (`\n` or `\r\n`), keeping an incomplete last line for later.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    buffer: Vec<u8>,
}

impl LineSplitter {
    /// The complete lines in `chunk` (with what was buffered before); invalid UTF-8 is an error.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, String> {
        self.buffer.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push(String::from_utf8(line).map_err(|_| "invalid utf-8 in the stream")?);
        }
        Ok(lines)
    }

    /// The unterminated last line, if any.
    pub(crate) fn finish(&mut self) -> Result<Option<String>, String> {
        if self.buffer.is_empty() {
            return Ok(None);
        }
        let line = std::mem::take(&mut self.buffer);
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| "invalid utf-8 in the stream".to_owned())
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, if any.
    pub(crate) name: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub(crate) data: String,
}

/// Incremental `text/event-stream` decoder.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    lines: LineSplitter,
    name: Option<String>,
    data: Vec<String>,
}

impl SseDecoder {
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, String> {
        let mut events = Vec::new();
        for line in self.lines.push(chunk)? {
            self.line(line, &mut events);
        }
        Ok(events)
    }

    /// Events completed by the end of the stream (a last event without its blank line).
    pub(crate) fn finish(&mut self) -> Result<Vec<SseEvent>, String> {
        let mut events = Vec::new();
        if let Some(line) = self.lines.finish()? {
            self.line(line, &mut events);
        }
        self.dispatch(&mut events);
        Ok(events)
    }

    fn line(&mut self, line: String, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        if self.data.is_empty() {
            self.name = None;
            return;
        }
        events.push(SseEvent {
            name: self.name.take(),
            data: std::mem::take(&mut self.data).join("\n"),
        });
    }
}

/// Incremental NDJSON decoder: every non-blank line is one JSON document.
#[derive(Debug, Default)]
pub(crate) struct NdjsonDecoder {
    lines: LineSplitter,
}

impl NdjsonDecoder {
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, String> {
        Ok(self
            .lines
            .push(chunk)?
            .into_iter()
            .filter(|line| !line.trim().is_empty())
            .collect())
    }

    pub(crate) fn finish(&mut self) -> Result<Vec<String>, String> {
        Ok(self
            .lines
            .finish()?
            .filter(|line| !line.trim().is_empty())
            .into_iter()
            .collect())
    }
}

/// A count that may come as a number or a numeric string.
pub(crate) fn lenient_u64(value: Option<&serde_json::Value>) -> Option<u64> {
    match value? {
        serde_json::Value::Number(number) => number
            .as_u64()
            .or_else(|| number.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(text: &str, piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        for chunk in text.as_bytes().chunks(piece) {
            events.extend(decoder.push(chunk).expect("utf-8"));
        }
        events.extend(decoder.finish().expect("utf-8"));
        events
    }

    #[test]
    fn sse_events_survive_any_chunking() {
        let text = ": comment\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\nevent: ping\ndata: {}\n\ndata: [DONE]";
        let expected = vec![
            SseEvent {
                name: Some("message_start".into()),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                name: None,
                data: "x\ny".into(),
            },
            SseEvent {
                name: Some("ping".into()),
                data: "{}".into(),
            },
            SseEvent {
                name: None,
                data: "[DONE]".into(),
            },
        ];
        for piece in 1..text.len() {
            assert_eq!(decode_in_pieces(text, piece), expected, "piece {piece}");
        }
    }

    #[test]
    fn ndjson_lines_and_utf8_split_inside_a_character() {
        let text = "{\"a\":\"é\"}\n\n{\"b\":2}";
        let bytes = text.as_bytes();
        let mut decoder = NdjsonDecoder::default();
        let mut lines = Vec::new();
        for chunk in bytes.chunks(1) {
            lines.extend(decoder.push(chunk).expect("utf-8"));
        }
        lines.extend(decoder.finish().expect("utf-8"));
        assert_eq!(lines, ["{\"a\":\"é\"}", "{\"b\":2}"]);
        assert!(LineSplitter::default().push(b"\xff\n").is_err());
    }

    #[test]
    fn counts_are_lenient() {
        let value = serde_json::json!({"a": 3, "b": "4", "c": 5.0, "d": "x", "e": -1});
        assert_eq!(lenient_u64(value.get("a")), Some(3));
        assert_eq!(lenient_u64(value.get("b")), Some(4));
        assert_eq!(lenient_u64(value.get("c")), Some(5));
        assert_eq!(lenient_u64(value.get("d")), None);
        assert_eq!(lenient_u64(value.get("e")), None);
        assert_eq!(lenient_u64(value.get("missing")), None);
    }
}
