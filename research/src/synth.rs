//! Synthesis: the report's text from the evidence. The default is extractive (no LLM): the most
//! relevant sentences of the best passages per sub-question, each with its citation. An LLM
//! synthesizer stands in through the [`Synthesizer`] trait; its citations are checked by the
//! orchestrator either way.

use std::collections::HashSet;

use tokio::sync::mpsc;

use crate::event::SearchFailure;
use crate::evidence::Passage;
use crate::plan::Plan;
use crate::text::{distinct_terms, prose, related as matches_query, sentences, terms, truncate};
use crate::usage::Usage;
use crate::BoxFuture;

/// What a synthesizer writes: a summary and one body per sub-question (same order as the plan),
/// with `[n]` citations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub summary: String,
    pub sections: Vec<String>,
    pub usage: Usage,
}

/// What a synthesizer writes with, which decides whether the token and cost budgets apply to it
/// and whether a failure falls back to extractive synthesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthesizerKind {
    /// Sentences of the evidence, without a model: free, and the fallback of the others.
    Extractive,
    /// A language model: spends tokens and money within the session's budgets.
    Llm,
}

/// Writes the report's text.
pub trait Synthesizer: Send + Sync {
    /// `extractive` or `llm`: the report's `synthesis` field.
    fn name(&self) -> &str;
    fn kind(&self) -> SynthesizerKind;
    /// The draft, in at most `max_output_tokens` (LLM synthesizers); text written as it is
    /// produced may be sent on `deltas` (for streaming). `failures` are the searches that
    /// failed: a section without evidence says that its searches failed, not that nothing
    /// exists.
    fn synthesize<'a>(
        &'a self,
        plan: &'a Plan,
        passages: &'a [Passage],
        failures: &'a [SearchFailure],
        max_output_tokens: u32,
        deltas: mpsc::UnboundedSender<String>,
    ) -> BoxFuture<'a, crate::Result<Draft>>;
}

/// Failure reasons quoted in a section at most.
const REASONS_QUOTED: usize = 3;

/// The body of a sub-question without evidence because its searches failed: which sources
/// failed and why.
pub fn failed_section(failures: &[&SearchFailure]) -> String {
    let mut reasons: Vec<String> = Vec::new();
    for failure in failures {
        let reason = match &failure.source {
            Some(source) => format!("`{source}`: {}", failure.error),
            None => failure.error.clone(),
        };
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    let more = reasons.len().saturating_sub(REASONS_QUOTED);
    reasons.truncate(REASONS_QUOTED);
    let more = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    format!(
        "No evidence could be gathered for this question because its searches failed ({}{more}). \
         See “Searches that failed”.",
        reasons.join("; ")
    )
}

/// The body of sub-question `index` when it has no passages: why (failed searches), or that the
/// searches found nothing.
pub fn section_without_evidence(
    index: usize,
    question: &str,
    failures: &[SearchFailure],
) -> String {
    let mine: Vec<&SearchFailure> = failures
        .iter()
        .filter(|failure| failure.sub_question == index)
        .collect();
    if mine.is_empty() {
        extractive_section(question, &[])
    } else {
        failed_section(&mine)
    }
}

/// The summary of a report without any evidence.
pub fn summary_without_evidence(failures: &[SearchFailure]) -> String {
    match failures.len() {
        0 => "No evidence was found in the searched sources.".to_string(),
        1 => "No evidence could be gathered: a search failed (see “Searches that failed”)."
            .to_string(),
        count => format!(
            "No evidence could be gathered: {count} searches failed (see “Searches that failed”)."
        ),
    }
}

/// Synthesis without an LLM.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractiveSynthesizer;

/// Passages quoted per section at most.
const PASSAGES_PER_SECTION: usize = 3;
/// Longest excerpt quoted from one passage.
const EXCERPT_BYTES: usize = 600;
/// Most code lines quoted from one passage.
const CODE_LINES: usize = 14;

/// Most lines of a signature kept in a code excerpt.
const SIGNATURE_LINES: usize = 4;

/// The passage's sentences that share most terms with `query` (up to `count`, in text order).
/// Table rows are not sentences.
fn best_sentences(text: &str, query: &HashSet<String>, count: usize) -> Vec<String> {
    let candidates = sentences(&prose(text));
    let mut scored: Vec<(usize, usize, &String)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, sentence)| {
            sentence.split_whitespace().count() >= 4 && sentence.matches('|').count() < 2
        })
        .map(|(position, sentence)| {
            let overlap = distinct_terms(sentence)
                .iter()
                .filter(|term| matches_query(term, query))
                .count();
            (overlap, position, sentence)
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut chosen: Vec<(usize, &String)> = scored
        .into_iter()
        .take(count)
        .map(|(_, position, sentence)| (position, sentence))
        .collect();
    chosen.sort_by_key(|(position, _)| *position);
    chosen
        .into_iter()
        .map(|(_, sentence)| truncate(sentence, EXCERPT_BYTES))
        .collect()
}

/// Whether a line of code is a comment (`//`, `#`, `/*`, `*`, `--`), an attribute or blank.
fn is_comment_or_attribute(line: &str) -> bool {
    let line = line.trim_start();
    line.is_empty()
        || ["//", "#", "/*", "*", "--", "@"]
            .iter()
            .any(|start| line.starts_with(start))
}

/// The documentation of a code passage as prose: `///`, `//!` and `//` comments, `#` comments and
/// Python docstrings.
pub(crate) fn doc_comments(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut in_docstring = false;
    for line in text.lines() {
        let line = line.trim();
        if in_docstring {
            match line.find("\"\"\"") {
                Some(end) => {
                    out.push(&line[..end]);
                    in_docstring = false;
                }
                None => out.push(line),
            }
            continue;
        }
        let comment = ["///", "//!", "//", "#"]
            .iter()
            .find_map(|start| line.strip_prefix(start))
            .filter(|_| !line.starts_with("#[") && !line.starts_with("#!["));
        if let Some(comment) = comment {
            out.push(comment.trim());
        } else if let Some(rest) = line.strip_prefix("\"\"\"") {
            match rest.find("\"\"\"") {
                Some(end) => out.push(&rest[..end]),
                None => {
                    out.push(rest);
                    in_docstring = true;
                }
            }
        }
    }
    without_cut_sentence(&out.join(" "))
}

/// `text` without a last sentence that a passage's end cut off (no `.`, `!`, `?` or `:` at its
/// end), when an earlier sentence ends.
fn without_cut_sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with(['.', '!', '?', ':']) {
        return text.to_owned();
    }
    match text.rfind(['.', '!', '?']) {
        Some(end) if end > 0 => text[..=end].to_owned(),
        _ => text.to_owned(),
    }
}

/// The lines of a code passage that matter for `query`: its signature (from the first line of
/// code to the one that opens the body) and the lines that hold the query's terms, in order, with
/// `…` where lines are left out; the first lines when no line holds a term.
fn code_excerpt(passage: &Passage, query: &HashSet<String>) -> String {
    let language = match passage.reference.locator.language.as_deref() {
        Some(language) if is_code(passage) => language,
        _ => "text",
    };
    let lines: Vec<&str> = passage
        .text
        .lines()
        .filter(|line| !line.trim_start().starts_with("```"))
        .collect();
    let mut keep: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
    if let Some(start) = lines.iter().position(|line| !is_comment_or_attribute(line)) {
        for (index, line) in lines.iter().enumerate().skip(start).take(SIGNATURE_LINES) {
            keep.insert(index);
            let end = line.trim_end();
            if end.contains('{') || end.ends_with(':') || end.ends_with(';') {
                break;
            }
        }
    }
    let matching: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(index, line)| {
            !keep.contains(index)
                && !is_comment_or_attribute(line)
                && distinct_terms(line)
                    .iter()
                    .any(|term| matches_query(term, query))
        })
        .map(|(index, _)| index)
        .collect();
    if matching.is_empty() {
        keep = (0..lines.len().min(CODE_LINES)).collect();
    } else {
        let room = CODE_LINES.saturating_sub(keep.len());
        keep.extend(matching.into_iter().take(room));
    }
    let mut shown: Vec<&str> = Vec::with_capacity(keep.len() + 4);
    let mut previous: Option<usize> = None;
    for &index in &keep {
        match previous {
            // Blank lines left out are shown as they are; anything else as `…`.
            Some(previous) if index > previous + 1 => {
                let gap = &lines[previous + 1..index];
                if gap.iter().all(|line| line.trim().is_empty()) {
                    shown.extend(gap);
                } else {
                    shown.push("…");
                }
            }
            None if lines[..index]
                .iter()
                .any(|line| !is_comment_or_attribute(line)) =>
            {
                shown.push("…");
            }
            _ => {}
        }
        shown.push(lines[index]);
        previous = Some(index);
    }
    if previous.is_some_and(|last| last + 1 < lines.len()) {
        shown.push("…");
    }
    format!("```{language}\n{}\n```", shown.join("\n"))
}

fn is_code(passage: &Passage) -> bool {
    passage.reference.locator.source == "code"
        && !matches!(
            passage.reference.locator.language.as_deref(),
            Some("markdown" | "html" | "text") | None
        )
}

/// The extractive body of one sub-question.
pub fn extractive_section(question: &str, passages: &[&Passage]) -> String {
    if passages.is_empty() {
        return "No evidence was found for this question in the searched sources.".to_string();
    }
    let query: HashSet<String> = terms(question).into_iter().collect();
    let mut paragraphs = Vec::new();
    for passage in passages.iter().take(PASSAGES_PER_SECTION) {
        let n = passage.n;
        let label = match (
            &passage.reference.locator.symbol,
            &passage.reference.locator.path,
        ) {
            (Some(symbol), Some(path)) => format!("`{symbol}` in `{path}`"),
            _ => passage.reference.locator.title.clone(),
        };
        if is_code(passage) {
            // What its documentation says, then the lines that matter.
            let said = best_sentences(&doc_comments(&passage.text), &query, 1)
                .pop()
                .map(|sentence| format!(" {sentence}"))
                .unwrap_or_default();
            paragraphs.push(format!(
                "{label} [{n}]:{said}\n\n{}",
                code_excerpt(passage, &query)
            ));
        } else {
            let picked = best_sentences(&passage.text, &query, 2);
            let text = if picked.is_empty() {
                truncate(
                    &passage
                        .text
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                    EXCERPT_BYTES,
                )
            } else {
                picked.join(" ")
            };
            paragraphs.push(format!("{text} [{n}] ({label})"));
        }
    }
    paragraphs.join("\n\n")
}

/// Whether a sub-question asks for a flow: the order of calls or steps.
fn is_flow_question(heading: &str, text: &str) -> bool {
    let heading = heading.to_lowercase();
    let text = text.to_lowercase();
    heading.contains("flow")
        || heading.contains("walk")
        || (text.contains("order") && (text.contains("call") || text.contains("step")))
        || text.contains("what calls what")
}

/// The passages of sub-question `index`, best first.
pub fn passages_for(passages: &[Passage], index: usize) -> Vec<&Passage> {
    let mut mine: Vec<&Passage> = passages
        .iter()
        .filter(|passage| passage.sub_questions.first() == Some(&index))
        .collect();
    if mine.is_empty() {
        mine = passages
            .iter()
            .filter(|passage| passage.sub_questions.contains(&index))
            .collect();
    }
    mine.sort_by(|a, b| b.score.total_cmp(&a.score));
    mine
}

impl Synthesizer for ExtractiveSynthesizer {
    fn name(&self) -> &str {
        "extractive"
    }

    fn kind(&self) -> SynthesizerKind {
        SynthesizerKind::Extractive
    }

    fn synthesize<'a>(
        &'a self,
        plan: &'a Plan,
        passages: &'a [Passage],
        failures: &'a [SearchFailure],
        _max_output_tokens: u32,
        deltas: mpsc::UnboundedSender<String>,
    ) -> BoxFuture<'a, crate::Result<Draft>> {
        Box::pin(async move {
            let question_terms: HashSet<String> = terms(&plan.question).into_iter().collect();
            let mut summary = Vec::new();
            let mut sections = Vec::new();
            // A walk along the calls between the code passages opens the section on the flow
            // (else the first one).
            let mut walk = crate::flow::walk_through(passages);
            // The summary opens with the flow, when there is one.
            if let Some(walk) = &walk {
                summary.push(walk.sentence());
            }
            let walk_section = plan
                .sub_questions
                .iter()
                .position(|sub| is_flow_question(&sub.heading, &sub.text))
                .unwrap_or(0);
            for (position, sub_question) in plan.sub_questions.iter().enumerate() {
                let mine = passages_for(passages, sub_question.index);
                let walk = if position == walk_section {
                    walk.take()
                } else {
                    None
                };
                let body = match (mine.is_empty(), walk) {
                    (true, None) => {
                        section_without_evidence(sub_question.index, &sub_question.text, failures)
                    }
                    (true, Some(walk)) => walk.markdown(),
                    (false, None) => extractive_section(&sub_question.text, &mine),
                    (false, Some(walk)) => format!(
                        "{}\n\n{}",
                        walk.markdown(),
                        extractive_section(&sub_question.text, &mine)
                    ),
                };
                let _ = deltas.send(format!("## {}\n\n{body}\n\n", sub_question.heading));
                sections.push(body);
                // The summary: the best sentence of the best prose passage, else of the best
                // documented code passage.
                let mut query = question_terms.clone();
                query.extend(terms(&sub_question.text));
                let prose_sentence =
                    mine.iter()
                        .filter(|passage| !is_code(passage))
                        .find_map(|passage| {
                            best_sentences(&passage.text, &query, 1)
                                .pop()
                                .map(|sentence| (sentence, passage.n))
                        });
                let best = prose_sentence.or_else(|| {
                    mine.iter()
                        .filter(|passage| is_code(passage))
                        .find_map(|passage| {
                            best_sentences(&doc_comments(&passage.text), &query, 1)
                                .pop()
                                .map(|sentence| (sentence, passage.n))
                        })
                });
                if let Some((sentence, n)) = best {
                    let line = format!("{sentence} [{n}]");
                    if !summary.contains(&line) {
                        summary.push(line);
                    }
                }
            }
            let summary = if summary.is_empty() {
                if passages.is_empty() {
                    summary_without_evidence(failures)
                } else {
                    let cited: Vec<String> = passages
                        .iter()
                        .take(5)
                        .map(|p| format!("[{}]", p.n))
                        .collect();
                    format!(
                        "The most relevant sources found are code passages {}.",
                        cited.join("")
                    )
                }
            } else {
                summary.into_iter().take(5).collect::<Vec<_>>().join(" ")
            };
            Ok(Draft {
                summary,
                sections,
                usage: Usage::default(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::SourceRef;

    fn code_passage(n: usize, symbol: &str, text: &str) -> Passage {
        Passage {
            n,
            sub_questions: vec![0],
            text: text.to_string(),
            score: 1.0,
            reference: SourceRef {
                locator: aiex_search::Locator {
                    source: "code".into(),
                    title: symbol.into(),
                    collection: Some("demo".into()),
                    path: Some("src/pipeline.rs".into()),
                    start_line: Some(1),
                    end_line: Some(text.lines().count() as u32),
                    language: Some("rust".into()),
                    symbol: Some(symbol.into()),
                    ..aiex_search::Locator::default()
                },
                parent: None,
                retrieved_at: "2026-01-01T00:00:00Z".into(),
            },
        }
    }

    const EMBED_PENDING: &str =
        "/// Embeds the chunks not embedded yet and writes their vectors to the vector store.
#[tracing::instrument(skip_all)]
fn embed_pending(&mut self, pending: &[u64]) -> Result<()> {
    let started = Instant::now();
    let total = pending.len();
    let mut done = 0;
    for batch in pending.chunks(EMBED_BATCH) {
        let texts = self.texts(batch)?;
        let vectors = self.embedder.embed(&texts)?;
        progress(done, total);
        done += batch.len();
        self.store.upsert(points(batch, vectors))?;
        self.checkpoint()?;
    }
    tracing::debug!(elapsed = ?started.elapsed());
    Ok(())
}";

    #[test]
    fn documentation_cut_off_by_the_passage_end_loses_its_last_fragment() {
        let cut = "//! Copies a collection. The dense vectors come from\nfn push() {}";
        assert_eq!(doc_comments(cut), "Copies a collection.");
        let whole = "/// Writes points.\n/// Returns the count:\nfn write() {}";
        assert_eq!(doc_comments(whole), "Writes points. Returns the count:");
        let unfinished = "/// no sentence end here\nfn f() {}";
        assert_eq!(doc_comments(unfinished), "no sentence end here");
    }

    #[test]
    fn code_is_quoted_by_its_signature_and_the_lines_that_hold_the_question() {
        let passage = code_passage(3, "embed_pending", EMBED_PENDING);
        let query: HashSet<String> =
            terms("How are chunks embedded and written to the vector store?")
                .into_iter()
                .collect();
        let excerpt = code_excerpt(&passage, &query);
        let lines: Vec<&str> = excerpt.lines().collect();
        assert_eq!(lines[0], "```rust");
        assert_eq!(
            lines[1],
            "fn embed_pending(&mut self, pending: &[u64]) -> Result<()> {"
        );
        assert!(
            excerpt.contains("for batch in pending.chunks(EMBED_BATCH) {"),
            "{excerpt}"
        );
        assert!(
            excerpt.contains("self.embedder.embed(&texts)?"),
            "{excerpt}"
        );
        assert!(
            excerpt.contains("self.store.upsert(points(batch, vectors))?"),
            "{excerpt}"
        );
        // Lines that say nothing about the question are left out, and the gaps are marked.
        assert!(!excerpt.contains("Instant::now()"), "{excerpt}");
        assert!(!excerpt.contains("progress(done, total)"), "{excerpt}");
        assert!(lines.contains(&"…"), "{excerpt}");
        assert_eq!(lines.last(), Some(&"```"));

        // The section says what the documentation says, cited, before the code.
        let section = extractive_section(
            "How are chunks embedded and written to the vector store?",
            &[&passage],
        );
        assert!(
            section.starts_with(
                "`embed_pending` in `src/pipeline.rs` [3]: Embeds the chunks not embedded yet and \
                 writes their vectors to the vector store."
            ),
            "{section}"
        );
    }

    #[test]
    fn code_with_no_line_about_the_question_shows_its_first_lines() {
        let passage = code_passage(1, "unrelated", "fn unrelated() {\n    let a = 1;\n}\n");
        let query: HashSet<String> = terms("vector store").into_iter().collect();
        assert_eq!(
            code_excerpt(&passage, &query),
            "```rust\nfn unrelated() {\n    let a = 1;\n}\n```"
        );
    }

    #[test]
    fn documentation_is_read_from_comments_and_docstrings_and_tables_are_not_sentences() {
        assert_eq!(
            doc_comments("/// Parses a table.\n#[inline]\nfn parse() {}\n"),
            "Parses a table."
        );
        assert_eq!(
            doc_comments("def push(self, job):\n    \"\"\"Adds a job\n    to the queue.\"\"\"\n"),
            "Adds a job to the queue."
        );
        let query: HashSet<String> = terms("embedding throughput").into_iter().collect();
        let text = "| embedding | 284 s | 22.7 chunks/s |\n\nEmbedding throughput is bound by the model on two cores.";
        assert_eq!(
            best_sentences(text, &query, 2),
            ["Embedding throughput is bound by the model on two cores."]
        );
    }
}
