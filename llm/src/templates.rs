//! Prompt templates (minijinja), kept in files under `llm/templates/` and embedded at build time.

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::LlmError;

/// The built-in templates: name and source.
const BUILT_IN: [(&str, &str); 2] = [
    (
        "json_instruction",
        include_str!("../templates/json_instruction.j2"),
    ),
    ("json_repair", include_str!("../templates/json_repair.j2")),
];

/// A set of named templates. Undefined variables are errors, not empty strings.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// The built-in templates (`json_instruction`, `json_repair`).
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(false);
        for (name, source) in BUILT_IN {
            // The built-ins are compiled by the tests; a broken one is a build defect.
            if let Err(err) = env.add_template(name, source) {
                tracing::error!(template = name, error = %err, "built-in template does not compile");
            }
        }
        Self { env }
    }

    /// Adds (or replaces) a template.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        source: impl Into<String>,
    ) -> Result<(), LlmError> {
        let name = name.into();
        self.env
            .add_template_owned(name.clone(), source.into())
            .map_err(|err| LlmError::Template {
                name,
                message: err.to_string(),
            })
    }

    /// Renders template `name` with `context`.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, LlmError> {
        let error = |err: minijinja::Error| LlmError::Template {
            name: name.to_owned(),
            message: err.to_string(),
        };
        self.env
            .get_template(name)
            .map_err(error)?
            .render(context)
            .map_err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_ins_render() {
        let templates = Templates::new();
        let text = templates
            .render(
                "json_instruction",
                json!({"schema": "{\"type\":\"object\"}"}),
            )
            .expect("renders");
        assert!(text.starts_with("Answer with a single JSON value"));
        assert!(text.ends_with("{\"type\":\"object\"}"));
        let plain = templates
            .render("json_instruction", json!({"schema": null}))
            .expect("renders");
        assert!(!plain.contains("Schema"));
        let repair = templates
            .render(
                "json_repair",
                json!({"error": "missing property `a`", "schema": null}),
            )
            .expect("renders");
        assert_eq!(
            repair,
            "Your previous answer is not valid: missing property `a`.\nReply again with only the corrected JSON value."
        );
    }

    #[test]
    fn added_templates_and_errors() {
        let mut templates = Templates::new();
        templates
            .add(
                "greet",
                "Hello {{ name | upper }}{% for x in items %} {{ x }}{% endfor %}",
            )
            .expect("compiles");
        assert_eq!(
            templates
                .render("greet", json!({"name": "ada", "items": [1, 2]}))
                .expect("renders"),
            "Hello ADA 1 2"
        );
        let missing = templates.render("greet", json!({"items": []}));
        assert!(matches!(missing, Err(LlmError::Template { .. })));
        assert!(templates.add("broken", "{% if %}").is_err());
        assert!(templates.render("absent", json!({})).is_err());
    }
}
