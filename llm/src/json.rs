//! JSON answers: extraction from model text and validation against a schema.

use serde_json::Value;

use crate::LlmError;

/// A compiled schema.
pub(crate) struct Schema {
    validator: jsonschema::Validator,
}

impl Schema {
    pub(crate) fn compile(schema: &Value) -> Result<Self, LlmError> {
        jsonschema::validator_for(schema)
            .map(|validator| Schema { validator })
            .map_err(|err| LlmError::InvalidSchema {
                message: err.to_string(),
            })
    }

    /// The value in `text`, checked; the error says what is wrong (at most five problems).
    pub(crate) fn check(&self, text: &str) -> Result<Value, String> {
        let value = extract_json(text)?;
        let problems: Vec<String> = self
            .validator
            .iter_errors(&value)
            .take(5)
            .map(|err| {
                let path = err.instance_path().to_string();
                if path.is_empty() {
                    err.to_string()
                } else {
                    format!("at {path}: {err}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(problems.join("; "))
        }
    }
}

/// The JSON value in a model's answer: the whole text, else inside a code fence, else from the
/// first `{` or `[` to the last matching closer.
pub(crate) fn extract_json(text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    if let Ok(value) = serde_json::from_str(trimmed) {
        return Ok(value);
    }
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"));
    if let Some(value) = unfenced.and_then(|inner| serde_json::from_str(inner.trim()).ok()) {
        return Ok(value);
    }
    for (open, close) in [('{', '}'), ('[', ']')] {
        if let (Some(start), Some(end)) = (trimmed.find(open), trimmed.rfind(close)) {
            if start < end {
                if let Ok(value) = serde_json::from_str(&trimmed[start..=end]) {
                    return Ok(value);
                }
            }
        }
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(value) => Ok(value),
        Err(err) => Err(format!("the answer is not json ({err})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extraction() {
        assert_eq!(extract_json(" {\"a\":1} ").ok(), Some(json!({"a": 1})));
        assert_eq!(
            extract_json("```json\n{\"a\":[1]}\n```").ok(),
            Some(json!({"a": [1]}))
        );
        assert_eq!(
            extract_json("Sure! {\"a\": 2} Hope it helps.").ok(),
            Some(json!({"a": 2}))
        );
        assert!(extract_json("no json here").is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        let schema = Schema::compile(&json!({
            "type": "object",
            "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["title"]
        }))
        .expect("schema");
        assert!(schema.check("{\"title\": \"x\", \"n\": 1}").is_ok());
        let err = schema.check("{\"n\": \"one\"}").expect_err("invalid");
        assert!(err.contains("title"), "{err}");
        assert!(err.contains("/n"), "{err}");
        assert!(matches!(
            Schema::compile(&json!({"type": 12})),
            Err(LlmError::InvalidSchema { .. })
        ));
    }
}
