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

    /// `path:start-end` (with its collection), `path (page N)` for a PDF's page, or the URL.
    pub fn place(&self) -> String {
        let at = &self.locator;
        match (&at.url, &at.path) {
            (Some(url), _) => url.clone(),
            (None, Some(path)) => {
                let lines = match (at.page, at.start_line, at.end_line) {
                    (Some(page), _, _) => format!(" (page {page})"),
                    (None, Some(start), Some(end)) => format!(":{start}-{end}"),
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

impl Reference {
    /// The reference in Markdown: its title linked to the page for a URL, else the title and
    /// `collection: path:start-end` as code.
    pub fn markdown_place(&self) -> String {
        let title = escape_markdown(self.locator.title.trim());
        match &self.locator.url {
            Some(url) => format!("[{title}](<{url}>)"),
            None if self.locator.path.is_some() => format!("{title} — `{}`", self.place()),
            None => title,
        }
    }
}

/// Escapes the characters that would turn a title into Markdown syntax.
fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `[n]` citations as links to their reference's anchor (`[[n]](#ref-n)`).
pub fn link_citations(text: &str) -> String {
    crate::cite::rewrite_citations(text, usize::MAX, |n| format!("[\\[{n}\\]](#ref-{n})")).text
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
    /// One self-contained page ([`crate::html`]).
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "md" | "markdown" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            other => Err(format!("unknown format `{other}` (md, json or html)")),
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
            Format::Html => crate::html::report_html(self),
        })
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("# {}\n\n", self.title));
        out.push_str(&format!("> {}\n\n", self.question));
        out.push_str(&format!(
            "## {}\n\n{}\n\n",
            self.summary_heading,
            link_citations(self.summary.trim())
        ));
        for section in &self.sections {
            out.push_str(&format!("## {}\n\n", section.heading));
            if section.heading != section.sub_question {
                out.push_str(&format!("*{}*\n\n", section.sub_question));
            }
            out.push_str(&link_citations(section.body.trim()));
            out.push_str("\n\n");
        }
        out.push_str(&self.failed_searches_markdown());
        if !self.graph.edges.is_empty() {
            out.push_str("## Knowledge graph\n\n```mermaid\n");
            out.push_str(&self.graph.to_mermaid());
            out.push_str("```\n\n");
        }
        out.push_str(&self.references_markdown());
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
    /// The references as a Markdown list, each entry with the anchor its citations link to
    /// (`#ref-n`); evidence read but cited nowhere follows as "Also read".
    pub fn references_markdown(&self) -> String {
        let cited = self.citations();
        let (listed, also): (Vec<&Reference>, Vec<&Reference>) = self
            .references
            .iter()
            .partition(|reference| cited.contains(&reference.n));
        let mut out = String::new();
        if !listed.is_empty() {
            out.push_str("## References\n\n");
            for reference in listed {
                out.push_str(&format!(
                    "- <a id=\"ref-{n}\"></a>\\[{n}\\] {} (retrieved {})\n",
                    reference.markdown_place(),
                    reference.retrieved_at,
                    n = reference.n,
                ));
            }
            out.push('\n');
        }
        if !also.is_empty() {
            out.push_str("### Also read\n\n");
            for reference in also {
                out.push_str(&format!("- {}\n", reference.markdown_place()));
            }
            out.push('\n');
        }
        out
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_citations_become_links() {
        let text =
            "Jobs queue [1] in `a[2]`, x[3] and [4](https://e.x) [12].\n```\nv[5] [6]\n```\n[7]";
        assert_eq!(
            link_citations(text),
            "Jobs queue [\\[1\\]](#ref-1) in `a[2]`, x[3] and [4](https://e.x) [\\[12\\]](#ref-12).\n```\nv[5] [6]\n```\n[\\[7\\]](#ref-7)"
        );
    }

    fn reference(n: usize, locator: Locator) -> Reference {
        Reference {
            n,
            locator,
            retrieved_at: "2026-12-03T00:00:00Z".into(),
            excerpt: String::new(),
        }
    }

    /// The Markdown as a CommonMark renderer turns it into HTML.
    fn render(markdown: &str) -> String {
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new(markdown));
        html
    }

    /// A report citing a code passage and a web page, with an uncited reference.
    pub(super) fn sample_report() -> Report {
        let code = Locator {
            source: "code".into(),
            title: "fn embed_pending".into(),
            collection: Some("demo".into()),
            path: Some("indexer/src/pipeline/vectors.rs".into()),
            start_line: Some(10),
            end_line: Some(42),
            ..Locator::default()
        };
        let page = Locator::web(
            "web:serper",
            "https://qdrant.tech/documentation/",
            "Qdrant [docs] | home",
        );
        let unused = Locator {
            title: "README".into(),
            path: Some("README.md".into()),
            ..code.clone()
        };
        Report {
            session: "s1".into(),
            title: "How are chunks embedded".into(),
            question: "How are chunks embedded?".into(),
            template: None,
            summary_heading: "Summary".into(),
            summary: "Chunks are embedded in batches [1] and upserted [3].".into(),
            sections: vec![Section {
                heading: "Answer".into(),
                sub_question: "How?".into(),
                body: "`embed_pending` embeds [1]; `v[0]` is code.\n\n```rust\nlet x = v[2];\n```\n\nQdrant stores them [3].".into(),
                citations: vec![1, 3],
            }],
            references: vec![reference(1, code), reference(2, unused), reference(3, page)],
            graph: Graph::default(),
            usage: Usage::default(),
            synthesis: "extractive".into(),
            removed_citations: Vec::new(),
            budgets_hit: Vec::new(),
            failed_searches: Vec::new(),
            created_at: "2026-12-03T00:00:00Z".into(),
        }
    }

    #[test]
    fn pdf_references_name_their_page() {
        let manual = Locator {
            source: "docs".into(),
            title: "manual.pdf (page 2)".into(),
            collection: Some("manuals".into()),
            path: Some("manual.pdf".into()),
            start_line: Some(8),
            end_line: Some(12),
            kind: Some("page".into()),
            page: Some(2),
            ..Locator::default()
        };
        let cited = reference(1, manual);
        assert_eq!(cited.place(), "manuals: manual.pdf (page 2)");
        assert_eq!(
            cited.markdown_place(),
            "manual.pdf (page 2) — `manuals: manual.pdf (page 2)`"
        );
    }

    #[test]
    fn the_report_renders_with_linked_citations_and_one_list_item_per_reference() {
        let report = sample_report();
        let html = render(&report.to_markdown());
        let references = html
            .split("<h2>References</h2>")
            .nth(1)
            .and_then(|rest| rest.split("</ul>").next())
            .expect("a references list");
        assert_eq!(references.matches("<li>").count(), 2, "{html}");
        for n in [1, 3] {
            assert!(
                references.contains(&format!("<a id=\"ref-{n}\"></a>[{n}]")),
                "{html}"
            );
            assert!(
                html.contains(&format!("<a href=\"#ref-{n}\">[{n}]</a>")),
                "{html}"
            );
        }
        // Every citation link has its anchor; code keeps its brackets.
        for link in html.split("href=\"#ref-").skip(1) {
            let n = link.split('"').next().expect("number");
            assert!(
                html.contains(&format!("id=\"ref-{n}\"")),
                "#ref-{n} resolves: {html}"
            );
        }
        assert!(html.contains("<code>v[0]</code>"), "{html}");
        assert!(html.contains("let x = v[2];"), "{html}");
        assert!(
            references.contains(
                "<a href=\"https://qdrant.tech/documentation/\">Qdrant [docs] | home</a>"
            ),
            "{html}"
        );
        assert!(
            references.contains("<code>demo: indexer/src/pipeline/vectors.rs:10-42</code>"),
            "{html}"
        );
        // What nothing cites is listed apart, without an anchor.
        let also = html.split("<h3>Also read</h3>").nth(1).expect("also read");
        assert!(also.contains("README"), "{html}");
        assert!(!html.contains("id=\"ref-2\""), "{html}");
    }
}

#[cfg(test)]
mod html_tests {
    use super::*;
    use crate::graph::{Edge, Node, NodeKind, Relation};
    use tests::sample_report as report_fixture;

    #[test]
    fn the_html_export_is_self_contained_and_shows_evidence_as_text() {
        let mut report = report_fixture();
        report.summary =
            "Chunks are embedded <script>alert(1)</script> in batches [1] and upserted [3].".into();
        let node = |id: &str, kind| Node {
            id: id.into(),
            label: format!("{id} <b>"),
            kind,
        };
        report.graph = Graph {
            nodes: vec![
                node("vectors.rs", NodeKind::File),
                node("embed_pending", NodeKind::Symbol),
                node("upsert", NodeKind::Concept),
            ],
            edges: vec![
                Edge {
                    from: "vectors.rs".into(),
                    to: "embed_pending".into(),
                    relation: Relation::Contains,
                    citations: vec![1],
                },
                Edge {
                    from: "embed_pending".into(),
                    to: "upsert".into(),
                    relation: Relation::Mentions,
                    citations: vec![3],
                },
            ],
        };
        let html = report.render(Format::Html).expect("render");
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(!html.contains("<script"), "evidence is text: {html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        for external in ["src=", "<link", "@import", "url("] {
            assert!(!html.contains(external), "{external} in {html}");
        }
        assert!(!html.contains("```mermaid"), "the graph is drawn: {html}");
        assert_eq!(html.matches("class=\"node\"").count(), 3, "{html}");
        assert_eq!(html.matches("<line ").count(), 2, "{html}");
        assert!(html.contains("embed_pending &lt;b&gt;"), "{html}");
        for link in html.split("href=\"#ref-").skip(1) {
            let n = link.split('"').next().expect("number");
            assert!(
                html.contains(&format!("<a id=\"ref-{n}\"></a>")),
                "#ref-{n}: {html}"
            );
        }
        // The only link out is the cited page's.
        let outside: Vec<&str> = html
            .split("href=\"http")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or(""))
            .collect();
        assert_eq!(outside, vec!["s://qdrant.tech/documentation/"], "{html}");
    }
}
