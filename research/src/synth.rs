//! Synthesis: the report's text from the evidence. The default is extractive (no LLM): the most
//! relevant sentences of the best passages per sub-question, each with its citation. An LLM
//! synthesizer stands in through the [`Synthesizer`] trait; its citations are checked by the
//! orchestrator either way.

use std::collections::HashSet;

use tokio::sync::mpsc;

use crate::event::SearchFailure;
use crate::evidence::Passage;
use crate::plan::Plan;
use crate::text::{distinct_terms, prose, sentences, terms, truncate};
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

/// The passage's sentences that share most terms with `query` (up to `count`, in text order).
fn best_sentences(text: &str, query: &HashSet<String>, count: usize) -> Vec<String> {
    let candidates = sentences(&prose(text));
    let mut scored: Vec<(usize, usize, &String)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, sentence)| sentence.split_whitespace().count() >= 4)
        .map(|(position, sentence)| {
            let overlap = distinct_terms(sentence)
                .iter()
                .filter(|term| query.contains(*term))
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

fn code_excerpt(passage: &Passage) -> String {
    let language = match passage.reference.locator.language.as_deref() {
        Some(language) if is_code(passage) => language,
        _ => "text",
    };
    let lines: Vec<&str> = passage
        .text
        .lines()
        .filter(|line| !line.trim_start().starts_with("```"))
        .take(CODE_LINES)
        .collect();
    let more = if passage.text.lines().count() > CODE_LINES {
        "\n// …"
    } else {
        ""
    };
    format!("```{language}\n{}{more}\n```", lines.join("\n"))
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
            paragraphs.push(format!("{label} [{n}]:\n\n{}", code_excerpt(passage)));
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
            for sub_question in &plan.sub_questions {
                let mine = passages_for(passages, sub_question.index);
                let body = if mine.is_empty() {
                    section_without_evidence(sub_question.index, &sub_question.text, failures)
                } else {
                    extractive_section(&sub_question.text, &mine)
                };
                let _ = deltas.send(format!("## {}\n\n{body}\n\n", sub_question.heading));
                sections.push(body);
                if let Some(best) = mine.iter().find(|passage| !is_code(passage)) {
                    let mut query = question_terms.clone();
                    query.extend(terms(&sub_question.text));
                    if let Some(sentence) = best_sentences(&best.text, &query, 1).pop() {
                        let line = format!("{sentence} [{}]", best.n);
                        if !summary.contains(&line) {
                            summary.push(line);
                        }
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
