//! The report: title, summary, a section per sub-question, references, graph, usage; rendered as
//! Markdown or JSON, written atomically.

use std::path::Path;

use aiex_search::Locator;
use serde::{Deserialize, Serialize};

use crate::cite::RemovedCitation;
use crate::event::SearchFailure;
use crate::evidence::Passage;
use crate::graph::Graph;
use crate::usage::Usage;

/// A section of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub heading: String,
    pub sub_question: String,
    pub body: String,
    /// Citation numbers used in `body`.
    pub citations: Vec<usize>,
}

/// One entry of the references list: what a citation `[n]` resolves to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub n: usize,
    #[serde(flatten)]
    pub locator: Locator,
    pub retrieved_at: String,
    /// The passage cited.
    pub excerpt: String,
}

impl Reference {
    pub fn from_passage(passage: &Passage) -> Self {
        Reference {
            n: passage.n,
            locator: passage.reference.locator.clone(),
            retrieved_at: passage.reference.retrieved_at.clone(),
            excerpt: passage.text.clone(),
        }
    }

    /// `path:start-end` (with its collection) or the URL.
    pub fn place(&self) -> String {
        let at = &self.locator;
        match (&at.url, &at.path) {
            (Some(url), _) => url.clone(),
            (None, Some(path)) => {
                let lines = match (at.start_line, at.end_line) {
                    (Some(start), Some(end)) => format!(":{start}-{end}"),
                    _ => String::new(),
                };
                match &at.collection {
                    Some(collection) => format!("{collection}: {path}{lines}"),
                    None => format!("{path}{lines}"),
                }
            }
            (None, None) => at.title.clone(),
        }
    }
}

/// A budget that ended a stage early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetNote {
    pub budget: String,
    pub stage: String,
    pub limit: f64,
}

/// A research report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub session: String,
    pub title: String,
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    pub summary_heading: String,
    pub summary: String,
    pub sections: Vec<Section>,
    pub references: Vec<Reference>,
    pub graph: Graph,
    pub usage: Usage,
    /// `extractive` or `llm`.
    pub synthesis: String,
    /// Citations the synthesis wrote that named no passage (removed from the text).
    pub removed_citations: Vec<RemovedCitation>,
    pub budgets_hit: Vec<BudgetNote>,
    /// Searches that failed (timed out, errors, unreachable providers): evidence they would have
    /// brought is missing. Empty when every search answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_searches: Vec<SearchFailure>,
    pub created_at: String,
}

/// Failed searches listed in a Markdown report at most (the JSON report has them all).
const FAILURES_LISTED: usize = 20;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "md" | "markdown" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown format `{other}` (md or json)")),
        }
    }
}

impl Report {
    /// Every citation number used in the summary and sections.
    pub fn citations(&self) -> Vec<usize> {
        let mut all: Vec<usize> = crate::cite::check_citations(&self.summary, usize::MAX).cited;
        for section in &self.sections {
            all.extend(crate::cite::check_citations(&section.body, usize::MAX).cited);
        }
        all.sort_unstable();
        all.dedup();
        all
    }

    pub fn render(&self, format: Format) -> crate::Result<String> {
        Ok(match format {
            Format::Markdown => self.to_markdown(),
            Format::Json => serde_json::to_string_pretty(self)? + "\n",
        })
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("# {}\n\n", self.title));
        out.push_str(&format!("> {}\n\n", self.question));
        out.push_str(&format!(
            "## {}\n\n{}\n\n",
            self.summary_heading,
            self.summary.trim()
        ));
        for section in &self.sections {
            out.push_str(&format!("## {}\n\n", section.heading));
            if section.heading != section.sub_question {
                out.push_str(&format!("*{}*\n\n", section.sub_question));
            }
            out.push_str(section.body.trim());
            out.push_str("\n\n");
        }
        out.push_str(&self.failed_searches_markdown());
        if !self.graph.edges.is_empty() {
            out.push_str("## Knowledge graph\n\n```mermaid\n");
            out.push_str(&self.graph.to_mermaid());
            out.push_str("```\n\n");
        }
        out.push_str("## References\n\n");
        for reference in &self.references {
            out.push_str(&format!(
                "[{}] {} — `{}` (retrieved {})\n",
                reference.n,
                reference.locator.title,
                reference.place(),
                reference.retrieved_at
            ));
        }
        out.push('\n');
        if !self.removed_citations.is_empty() {
            let removed: Vec<&str> = self
                .removed_citations
                .iter()
                .map(|r| r.raw.as_str())
                .collect();
            out.push_str(&format!(
                "*Citations removed because they named no evidence: {}*\n\n",
                removed.join(", ")
            ));
        }
        if !self.budgets_hit.is_empty() {
            let budgets: Vec<String> = self
                .budgets_hit
                .iter()
                .map(|b| format!("{} (during {})", b.budget, b.stage))
                .collect();
            out.push_str(&format!("*Budgets reached: {}*\n\n", budgets.join(", ")));
        }
        out.push_str(&format!(
            "---\nSynthesis: {}; LLM usage: {} input tokens, {} output tokens, ${:.4}. Session `{}`, {}.\n",
            self.synthesis,
            self.usage.input_tokens,
            self.usage.output_tokens,
            self.usage.cost_usd,
            self.session,
            self.created_at
        ));
        out
    }
}

impl Report {
    /// The "Searches that failed" section: which searches failed and why (empty when none did).
    pub fn failed_searches_markdown(&self) -> String {
        let mut out = String::new();
        if self.failed_searches.is_empty() {
            return out;
        }
        let count = self.failed_searches.len();
        let noun = if count == 1 { "search" } else { "searches" };
        out.push_str(&format!(
            "## Searches that failed\n\n{count} {noun} failed, so evidence may be missing:\n\n"
        ));
        for failure in self.failed_searches.iter().take(FAILURES_LISTED) {
            let part = self
                .sections
                .get(failure.sub_question)
                .map(|section| format!(" ({})", section.heading))
                .unwrap_or_default();
            let source = failure
                .source
                .as_deref()
                .map(|source| format!("`{source}`: "))
                .unwrap_or_default();
            out.push_str(&format!(
                "- {:?}{part}: {source}{}\n",
                failure.query, failure.error
            ));
        }
        if count > FAILURES_LISTED {
            out.push_str(&format!("- … and {} more\n", count - FAILURES_LISTED));
        }
        out.push('\n');
        out
    }
}

/// Writes `contents` to `path` atomically and durably ([`aiex_indexer::atomic_write`]).
pub fn write_atomic(path: &Path, contents: &[u8]) -> crate::Result<()> {
    aiex_indexer::atomic_write(path, contents).map_err(|err| crate::Error::io("writing", path, err))
}
