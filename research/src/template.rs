//! Templates for common developer questions: a plan skeleton (sub-questions per report section)
//! and the report's layout.

use serde::Serialize;

use crate::plan::QuestionType;

/// One report section of a template and the sub-question that fills it. `{subject}` is the main
/// subject of the question, `{a}` and `{b}` the two things compared (or the versions migrated
/// between), `{question}` the question itself.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TemplateSection {
    pub heading: &'static str,
    pub sub_question: &'static str,
}

/// A template.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Template {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub question_type: QuestionType,
    /// Heading of the summary section.
    pub summary_heading: &'static str,
    pub sections: &'static [TemplateSection],
}

const fn section(heading: &'static str, sub_question: &'static str) -> TemplateSection {
    TemplateSection {
        heading,
        sub_question,
    }
}

/// Every template, in the order `templates list` shows them.
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "library-comparison",
        title: "Comparison: {a} vs {b}",
        description: "Compare two libraries or APIs: purpose, features, performance, ergonomics, when to pick which",
        question_type: QuestionType::Comparison,
        summary_heading: "Verdict",
        sections: &[
            section("What {a} is for", "What is {a} and what is it for?"),
            section("What {b} is for", "What is {b} and what is it for?"),
            section("Differences", "How do {a} and {b} differ in features and API?"),
            section("Performance and trade-offs", "What are the performance trade-offs of {a} and {b}?"),
            section("When to choose which", "When should {a} be preferred over {b}?"),
        ],
    },
    Template {
        name: "bug-investigation",
        title: "Investigation: {subject}",
        description: "Track down a bug or an error message: what it means, likely causes, where in the code, fixes",
        question_type: QuestionType::Debugging,
        summary_heading: "Diagnosis",
        sections: &[
            section("What the error means", "What does {subject} mean?"),
            section("Likely causes", "What causes {subject}?"),
            section("Where in the code", "Where in the code is {subject} raised or handled?"),
            section("Fixes", "How to fix {subject}?"),
        ],
    },
    Template {
        name: "api-howto",
        title: "How to: {subject}",
        description: "How to use an API for a task: the relevant functions and types, an example, pitfalls",
        question_type: QuestionType::HowTo,
        summary_heading: "Answer",
        sections: &[
            section("Relevant APIs", "Which functions and types are used for {subject}?"),
            section("Steps", "{question}"),
            section("Example", "Example of {subject}"),
            section("Pitfalls", "What are common mistakes and errors with {subject}?"),
        ],
    },
    Template {
        name: "migration-guide",
        title: "Migration: {a} to {b}",
        description: "Move from one version or library to another: what changed, steps, breaking changes",
        question_type: QuestionType::Migration,
        summary_heading: "Overview",
        sections: &[
            section("What changed", "What changed between {a} and {b}?"),
            section("Breaking changes", "Which breaking changes affect code moving from {a} to {b}?"),
            section("Migration steps", "How to migrate from {a} to {b}?"),
            section("After migrating", "How to test and verify code after moving to {b}?"),
        ],
    },
    Template {
        name: "architecture-overview",
        title: "Architecture of {subject}",
        description: "Overview of a repository or system: components, data flow, entry points, extension points",
        question_type: QuestionType::Architecture,
        summary_heading: "Overview",
        sections: &[
            section("Main components", "What are the main modules and components of {subject}?"),
            section("Data flow", "How does data flow through {subject}?"),
            section("Entry points", "What are the entry points and public API of {subject}?"),
            section("Extension points", "How is {subject} configured and extended?"),
        ],
    },
];

/// The template named `name`.
pub fn template(name: &str) -> crate::Result<&'static Template> {
    TEMPLATES
        .iter()
        .find(|template| template.name == name)
        .ok_or_else(|| crate::Error::UnknownTemplate {
            name: name.to_string(),
            known: TEMPLATES
                .iter()
                .map(|template| template.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// `pattern` with its placeholders filled.
pub fn fill(pattern: &str, question: &str, subject: &str, a: &str, b: &str) -> String {
    pattern
        .replace("{question}", question)
        .replace("{subject}", subject)
        .replace("{a}", a)
        .replace("{b}", b)
}
