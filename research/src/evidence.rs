//! Evidence selection: found texts split into passages, each ranked against its sub-question by
//! BM25 and embedding similarity, deduplicated, and kept within a token budget.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use aiex_search::Locator;

use crate::plan::SubQuestion;
use crate::text::{approx_tokens, distinct_terms, terms};

/// The weight of a test's lexical score (against the question) when the question is not about
/// tests.
const TEST_CODE_WEIGHT: f32 = 0.5;
/// Called functions looked up per sub-question and round at most.
const CALLS_FOLLOWED: usize = 3;
/// Added to the score of a passage that defines a function the best passages call, named like
/// the question's words (scores lie in 0..1).
const CALLED_BOOST: f32 = 0.25;

/// A text found by a search (a local chunk in full, a web snippet) or a fetched page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundText {
    /// Source (`code`, `docs`, `web:serper`, `page` for a fetched page), title and place.
    #[serde(flatten)]
    pub locator: Locator,
    /// Enclosing context (`impl Parser`, a heading path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub text: String,
    /// The search's fused score.
    pub score: f32,
    /// RFC 3339.
    pub retrieved_at: String,
}

impl FoundText {
    /// Identity: the normalised URL (as the search's dedup sees it), or collection, path and lines.
    pub fn key(&self) -> String {
        self.locator.key()
    }

    /// Whether the text is source code (not prose, Markdown or HTML documentation).
    pub fn is_code(&self) -> bool {
        self.locator.source == "code"
            && !matches!(
                self.locator.language.as_deref(),
                Some("markdown" | "html" | "text" | "rst" | "txt") | None
            )
    }
}

/// Where a passage comes from: what a citation resolves to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    #[serde(flatten)]
    pub locator: Locator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub retrieved_at: String,
}

impl SourceRef {
    /// `collection:path:start-end`, or the URL.
    pub fn place(&self) -> String {
        self.locator.place()
    }
}

/// One piece of evidence; `n` is its citation number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub n: usize,
    /// The sub-questions it was selected for (indexes), best first.
    pub sub_questions: Vec<usize>,
    pub text: String,
    pub score: f32,
    pub reference: SourceRef,
}

/// A sub-question the evidence answers poorly, and the queries a next round searches; or a flow
/// to follow further, and the functions a next round looks up in the code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub sub_question: usize,
    pub missing_terms: Vec<String>,
    pub queries: Vec<String>,
    /// Functions the best code passages call that no found text defines yet: names searched in
    /// the code sources only, in the rounds of the request's depth and up to
    /// [`FLOW_ROUNDS`] rounds beyond it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
}

/// Rounds beyond the request's depth that look up called functions only (local code search is
/// cheap; a flow is followed one call further per round).
pub const FLOW_ROUNDS: u32 = 2;

/// Embeds texts for ranking (the query model); `None` when unavailable.
pub trait TextEmbedder: Send + Sync {
    fn embed(&self, text: &str) -> Option<Arc<Vec<f32>>>;
}

/// No embeddings: ranking by BM25 and search rank only.
#[derive(Debug, Clone, Copy)]
pub struct NoEmbeddings;

impl TextEmbedder for NoEmbeddings {
    fn embed(&self, _text: &str) -> Option<Arc<Vec<f32>>> {
        None
    }
}

/// How much evidence to keep.
#[derive(Debug, Clone, Copy)]
pub struct SelectionLimits {
    pub token_budget: usize,
    pub per_sub_question: usize,
    pub embed_candidates: usize,
}

/// What selection produced.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub passages: Vec<Passage>,
    pub gaps: Vec<Gap>,
    /// Whether the token budget cut the evidence.
    pub budget_reached: bool,
}

/// A candidate passage before numbering.
#[derive(Debug, Clone)]
struct Candidate {
    text: String,
    reference: SourceRef,
    /// The found text's rank in its search (0 best).
    rank: usize,
    terms: Vec<String>,
}

/// Words a passage aims at, and the most it holds.
const PASSAGE_MIN_WORDS: usize = 40;
const PASSAGE_MAX_WORDS: usize = 160;

/// Splits `found` into passages of whole lines (paragraphs joined up to a size), with the line
/// range of each when the text's lines are the file's lines.
pub fn split_passages(found: &FoundText) -> Vec<(String, Option<(u32, u32)>)> {
    let lines: Vec<&str> = found.text.lines().collect();
    let line_numbers = match (found.locator.start_line, found.locator.end_line) {
        (Some(start), Some(end)) if (end - start + 1) as usize == lines.len() => Some(start),
        _ => None,
    };
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut current_start = 0usize;
    let mut words = 0usize;
    let mut in_fence = false;
    let flush =
        |current: &mut Vec<&str>, start: usize, out: &mut Vec<(String, Option<(u32, u32)>)>| {
            let text = current.join("\n").trim().to_string();
            if !text.is_empty() {
                let range = line_numbers.map(|first| {
                    (
                        first + start as u32,
                        first + (start + current.len()) as u32 - 1,
                    )
                });
                out.push((text, range));
            }
            current.clear();
        };
    for (index, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        let blank = line.trim().is_empty();
        let boundary = blank && !in_fence && words >= PASSAGE_MIN_WORDS;
        if boundary || (words >= PASSAGE_MAX_WORDS && !in_fence) || (words >= PASSAGE_MAX_WORDS * 2)
        {
            flush(&mut current, current_start, &mut out);
            words = 0;
        }
        if current.is_empty() {
            if blank {
                continue;
            }
            current_start = index;
        }
        words += line.split_whitespace().count();
        current.push(line);
    }
    flush(&mut current, current_start, &mut out);
    // A short tail joins the passage before it when they are adjacent.
    if out.len() >= 2 {
        let last = out.len() - 1;
        if out[last].0.split_whitespace().count() < PASSAGE_MIN_WORDS / 2 {
            let (tail, tail_range) = out.remove(last);
            let (previous, previous_range) = &mut out[last - 1];
            previous.push_str("\n\n");
            previous.push_str(&tail);
            if let (Some(range), Some(tail_range)) = (previous_range.as_mut(), tail_range) {
                range.1 = tail_range.1;
            }
        }
    }
    out
}

fn candidates_of(found: &[FoundText]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (rank, item) in found.iter().enumerate() {
        for (text, range) in split_passages(item) {
            let (start_line, end_line) = match range {
                Some((start, end)) => (Some(start), Some(end)),
                None => (item.locator.start_line, item.locator.end_line),
            };
            let mut searchable = text.clone();
            for extra in [&item.locator.symbol, &item.parent].into_iter().flatten() {
                searchable.push(' ');
                searchable.push_str(extra);
            }
            searchable.push(' ');
            searchable.push_str(&item.locator.title);
            out.push(Candidate {
                terms: terms(&searchable),
                text,
                rank,
                reference: SourceRef {
                    locator: Locator {
                        start_line,
                        end_line,
                        ..item.locator.clone()
                    },
                    parent: item.parent.clone(),
                    retrieved_at: item.retrieved_at.clone(),
                },
            });
        }
    }
    out
}

/// BM25 statistics over a pool of passages.
struct Bm25 {
    document_frequency: HashMap<String, usize>,
    documents: usize,
    average_length: f32,
}

impl Bm25 {
    fn new(pool: &[&Candidate]) -> Self {
        let mut document_frequency: HashMap<String, usize> = HashMap::new();
        let mut total = 0usize;
        for candidate in pool {
            total += candidate.terms.len();
            let unique: HashSet<&String> = candidate.terms.iter().collect();
            for term in unique {
                *document_frequency.entry(term.clone()).or_default() += 1;
            }
        }
        Bm25 {
            document_frequency,
            documents: pool.len().max(1),
            average_length: (total as f32 / pool.len().max(1) as f32).max(1.0),
        }
    }

    /// How rare `term` is in the pool (a term no passage holds is the rarest).
    fn idf(&self, term: &str) -> f32 {
        let frequency = self.document_frequency.get(term).copied().unwrap_or(0) as f32;
        (1.0 + (self.documents as f32 - frequency + 0.5) / (frequency + 0.5)).ln()
    }

    fn score(&self, query: &[String], document: &[String]) -> f32 {
        const K1: f32 = 1.2;
        const B: f32 = 0.75;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for term in document {
            *counts.entry(term.as_str()).or_default() += 1;
        }
        let length = document.len() as f32;
        query
            .iter()
            .map(|term| {
                let frequency = counts.get(term.as_str()).copied().unwrap_or(0) as f32;
                if frequency == 0.0 {
                    return 0.0;
                }
                let containing = self.document_frequency.get(term).copied().unwrap_or(0) as f32;
                let n = self.documents as f32;
                let idf = ((n - containing + 0.5) / (containing + 0.5) + 1.0).ln();
                idf * frequency * (K1 + 1.0)
                    / (frequency + K1 * (1.0 - B + B * length / self.average_length))
            })
            .sum()
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm_a: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let norm_b: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm_a == 0.0 || norm_b == 0.0 {
        0.0
    } else {
        dot / (norm_a * norm_b)
    }
}

/// Word 3-shingles, for near-duplicate detection.
fn shingles(text: &str) -> HashSet<String> {
    let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    if words.len() < 3 {
        return words.into_iter().collect();
    }
    words.windows(3).map(|window| window.join(" ")).collect()
}

fn near_duplicate(a: &HashSet<String>, b: &HashSet<String>) -> bool {
    let shared = a.intersection(b).count();
    let union = a.len() + b.len() - shared;
    union > 0 && shared as f32 / union as f32 >= 0.8
}

/// A candidate with its score for one sub-question.
type Scored<'a> = (f32, &'a Candidate);

/// A passage kept so far: its sub-question, score, candidate and shingles (for dedup).
type Chosen<'a> = (usize, f32, &'a Candidate, HashSet<String>);

/// Ranks the texts found for each sub-question and keeps the best passages. `found[i]` holds the
/// texts found for sub-question `i`, best first.
pub fn select_evidence(
    sub_questions: &[SubQuestion],
    found: &[Vec<FoundText>],
    embedder: &dyn TextEmbedder,
    limits: SelectionLimits,
) -> Selection {
    let per_question: Vec<Vec<Candidate>> = found.iter().map(|list| candidates_of(list)).collect();
    let pool: Vec<&Candidate> = per_question.iter().flatten().collect();
    let bm25 = Bm25::new(&pool);
    // Ranked candidates per sub-question.
    let mut ranked: Vec<Vec<Scored<'_>>> = Vec::new();
    let mut gaps = Vec::new();
    for (index, sub_question) in sub_questions.iter().enumerate() {
        let candidates = per_question.get(index).map_or(&[][..], Vec::as_slice);
        let query_terms = distinct_terms(&sub_question.text);
        let mut scored = rank_candidates(
            sub_question,
            &query_terms,
            candidates,
            &bm25,
            embedder,
            limits,
        );
        let calls = follow_calls(
            &query_terms,
            &bm25,
            &mut scored,
            found.get(index).map_or(&[][..], Vec::as_slice),
            limits.per_sub_question,
        );
        let gap = gap_of(index, &query_terms, &scored, limits.per_sub_question);
        let gap = match gap {
            Some(mut gap) => {
                gap.calls = calls;
                Some(gap)
            }
            None if !calls.is_empty() => Some(Gap {
                sub_question: index,
                missing_terms: Vec::new(),
                queries: Vec::new(),
                calls,
            }),
            None => None,
        };
        gaps.extend(gap);
        ranked.push(scored);
    }
    let (chosen, extra_questions, budget_reached) = choose_round_robin(&ranked, limits);
    Selection {
        passages: number_passages(&chosen, &extra_questions),
        gaps,
        budget_reached,
    }
}

/// The candidates of one sub-question, best first: BM25 against the sub-question blended with the
/// search rank, then embedding similarity for the best `embed_candidates` of them.
fn rank_candidates<'a>(
    sub_question: &SubQuestion,
    query_terms: &[String],
    candidates: &'a [Candidate],
    bm25: &Bm25,
    embedder: &dyn TextEmbedder,
    limits: SelectionLimits,
) -> Vec<Scored<'a>> {
    // Test code shows how something is used, not how it works: it ranks below the code it tests
    // unless the question is about tests.
    let about_tests = query_terms
        .iter()
        .any(|term| term.starts_with("test") || term == "fixture");
    let lexical: Vec<f32> = candidates
        .iter()
        .map(|candidate| {
            let score = bm25.score(query_terms, &candidate.terms);
            if !about_tests && is_test_code(&candidate.reference) {
                score * TEST_CODE_WEIGHT
            } else {
                score
            }
        })
        .collect();
    let max_lexical = lexical.iter().copied().fold(0.0f32, f32::max).max(1e-6);
    let prior = |candidate: &Candidate| 1.0 / (1.0 + candidate.rank as f32 * 0.5);
    let mut scored: Vec<Scored<'a>> = candidates
        .iter()
        .zip(&lexical)
        .map(|(candidate, score)| {
            (
                0.7 * score / max_lexical + 0.3 * prior(candidate),
                candidate,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Embedding similarity for the best candidates: the rest keep their lexical score.
    if let Some(question_vector) = embedder.embed(&sub_question.text) {
        for entry in scored.iter_mut().take(limits.embed_candidates) {
            if let Some(vector) = embedder.embed(&entry.1.text) {
                let similarity = cosine(&question_vector, &vector).max(0.0);
                entry.0 = 0.5 * entry.0 + 0.5 * (similarity * 1.5).min(1.0);
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    }
    scored
}

/// A gap: few candidates, or question terms that no good candidate (the best `per_sub_question`)
/// contains; with the queries a next round searches for it.
fn gap_of(
    index: usize,
    query_terms: &[String],
    scored: &[Scored<'_>],
    per_sub_question: usize,
) -> Option<Gap> {
    let covered: HashSet<&String> = scored
        .iter()
        .take(per_sub_question)
        .flat_map(|(_, candidate)| candidate.terms.iter())
        .collect();
    let missing: Vec<String> = query_terms
        .iter()
        .filter(|term| !covered.contains(term))
        .cloned()
        .collect();
    if scored.len() >= 2 && missing.is_empty() {
        return None;
    }
    let mut queries = Vec::new();
    if !missing.is_empty() {
        queries.push(missing.join(" "));
        let mut with_context = query_terms.to_vec();
        with_context.retain(|term| !missing.contains(term));
        if let Some(anchor) = with_context.first() {
            queries.push(format!("{anchor} {}", missing.join(" ")));
        }
    } else {
        queries.push(format!("{} example", query_terms.join(" ")));
    }
    Some(Gap {
        sub_question: index,
        missing_terms: missing,
        queries,
        calls: Vec::new(),
    })
}

/// Whether a found text is test code: under a `tests` directory, in a test file, in a test
/// module or a test function.
fn is_test_code(reference: &SourceRef) -> bool {
    let locator = &reference.locator;
    if locator.source != "code" {
        return false;
    }
    let path = locator.path.as_deref().unwrap_or_default();
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    path.starts_with("tests/")
        || path.contains("/tests/")
        || path.starts_with("test/")
        || path.contains("/test/")
        || stem == "tests"
        || stem.ends_with("_tests")
        || stem.ends_with("_test")
        || stem.starts_with("test_")
        || file.contains(".test.")
        || file.contains(".spec.")
        || reference
            .parent
            .as_deref()
            .is_some_and(|parent| parent.contains("mod tests"))
        || locator
            .symbol
            .as_deref()
            .is_some_and(|symbol| symbol.starts_with("test_"))
}

/// Follows the calls of the best code passages: the functions their code calls (the whole found
/// text: a function's calls are rarely all in one passage), named like the question's words.
/// Candidates that define one of them are raised among the best, so a flow's next step is kept;
/// those that no candidate defines are returned, for the next round to look up (a flow is
/// followed a call further per round).
fn follow_calls(
    query_terms: &[String],
    bm25: &Bm25,
    scored: &mut Vec<Scored<'_>>,
    found: &[FoundText],
    per_sub_question: usize,
) -> Vec<String> {
    let mut read: HashSet<usize> = HashSet::new();
    let calls = crate::flow::related_calls(
        query_terms,
        scored
            .iter()
            .take(per_sub_question * 2)
            .filter(|(_, candidate)| read.insert(candidate.rank))
            .filter_map(|(_, candidate)| found.get(candidate.rank))
            .map(|found| (&found.locator, found.text.as_str())),
        |word| bm25.idf(word),
    );
    if calls.is_empty() {
        return calls;
    }
    let mut defined: HashSet<String> = HashSet::new();
    for entry in scored.iter_mut() {
        let candidate = entry.1;
        let text = found
            .get(candidate.rank)
            .map_or(candidate.text.as_str(), |found| found.text.as_str());
        let mut defines = crate::flow::defined_in(&candidate.reference.locator, text)
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| calls.contains(name))
            .peekable();
        if defines.peek().is_some() {
            defined.extend(defines);
            entry.0 += CALLED_BOOST;
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let follow: Vec<String> = calls
        .iter()
        .filter(|call| !defined.contains(*call))
        .take(CALLS_FOLLOWED)
        .cloned()
        .collect();
    follow
}

/// Round robin over sub-questions, best first, skipping duplicates, within the token budget: the
/// passages kept, the other sub-questions each kept passage also answers (by position), and
/// whether the budget cut the selection.
fn choose_round_robin<'a>(
    ranked: &[Vec<Scored<'a>>],
    limits: SelectionLimits,
) -> (Vec<Chosen<'a>>, HashMap<usize, Vec<usize>>, bool) {
    let mut chosen: Vec<Chosen<'a>> = Vec::new();
    let mut extra_questions: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut cursors = vec![0usize; ranked.len()];
    let mut kept = vec![0usize; ranked.len()];
    let mut tokens = 0usize;
    let mut budget_reached = false;
    'outer: loop {
        let mut progressed = false;
        for (question, list) in ranked.iter().enumerate() {
            while kept[question] < limits.per_sub_question && cursors[question] < list.len() {
                let (score, candidate) = list[cursors[question]];
                cursors[question] += 1;
                let candidate_shingles = shingles(&candidate.text);
                if let Some(position) = duplicate_of(&chosen, candidate, &candidate_shingles) {
                    let extra = extra_questions.entry(position).or_default();
                    if chosen[position].0 != question && !extra.contains(&question) {
                        extra.push(question);
                    }
                    continue;
                }
                let cost = approx_tokens(&candidate.text);
                if tokens + cost > limits.token_budget {
                    budget_reached = true;
                    if chosen.is_empty() {
                        continue;
                    }
                    break 'outer;
                }
                tokens += cost;
                chosen.push((question, score, candidate, candidate_shingles));
                kept[question] += 1;
                progressed = true;
                break;
            }
        }
        if !progressed {
            break;
        }
    }
    (chosen, extra_questions, budget_reached)
}

/// The position of the kept passage that `candidate` repeats (same text and source, or a near
/// duplicate).
fn duplicate_of(
    chosen: &[Chosen<'_>],
    candidate: &Candidate,
    candidate_shingles: &HashSet<String>,
) -> Option<usize> {
    chosen.iter().position(|(_, _, other, other_shingles)| {
        other.reference == candidate.reference && other.text == candidate.text
            || near_duplicate(candidate_shingles, other_shingles)
    })
}

/// The kept passages with citation numbers in sub-question order, best first within each.
fn number_passages(
    chosen: &[Chosen<'_>],
    extra_questions: &HashMap<usize, Vec<usize>>,
) -> Vec<Passage> {
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by(|&a, &b| {
        chosen[a]
            .0
            .cmp(&chosen[b].0)
            .then_with(|| chosen[b].1.total_cmp(&chosen[a].1))
    });
    order
        .iter()
        .enumerate()
        .map(|(position, &index)| {
            let (question, score, candidate, _) = &chosen[index];
            let mut sub_questions = vec![*question];
            sub_questions.extend(extra_questions.get(&index).into_iter().flatten().copied());
            Passage {
                n: position + 1,
                sub_questions,
                text: candidate.text.clone(),
                score: *score,
                reference: candidate.reference.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &str, text: &str, rank_score: f32) -> FoundText {
        FoundText {
            locator: aiex_search::Locator {
                source: "docs".into(),
                title: path.into(),
                url: None,
                collection: Some("book".into()),
                path: Some(path.into()),
                start_line: Some(10),
                end_line: Some(10 + text.lines().count() as u32 - 1),
                language: Some("markdown".into()),
                symbol: None,
                kind: None,
                page: None,
            },
            parent: None,
            text: text.into(),
            score: rank_score,
            retrieved_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn question(index: usize, text: &str) -> SubQuestion {
        SubQuestion {
            index,
            text: text.into(),
            heading: text.into(),
            queries: vec![text.into()],
        }
    }

    fn code(path: &str, symbol: &str, text: &str) -> FoundText {
        let mut item = found(path, text, 1.0);
        item.locator.source = "code".into();
        item.locator.language = Some("rust".into());
        item.locator.symbol = Some(symbol.into());
        item
    }

    #[test]
    fn calls_of_the_best_code_are_followed_and_their_definitions_raised() {
        let questions = vec![question(0, "how are chunks embedded and written")];
        let caller = code(
            "src/run.rs",
            "run",
            "/// Runs: chunks are embedded and written.\nfn run() {\n    embed_pending();\n    write_all();\n    tidy();\n}",
        );
        let defined = code(
            "src/write.rs",
            "Writer",
            "/// A writer.\nstruct Writer;\nimpl Writer {\n    fn write_all() {}\n}",
        );
        let test = code(
            "src/run_tests.rs",
            "test_run",
            "/// Chunks are embedded and written in this test.\nfn test_run() {\n    run();\n}",
        );
        let limits = SelectionLimits {
            token_budget: 10_000,
            per_sub_question: 3,
            embed_candidates: 0,
        };
        let selection = select_evidence(
            &questions,
            &[vec![test, caller, defined]],
            &NoEmbeddings,
            limits,
        );
        let symbols: Vec<&str> = selection
            .passages
            .iter()
            .filter_map(|p| p.reference.locator.symbol.as_deref())
            .collect();
        // The caller before its test (which the search ranked first); the type that defines a
        // called function kept.
        assert_eq!(symbols[0], "run", "{symbols:?}");
        assert!(symbols.contains(&"Writer"), "{symbols:?}");
        // `embed_pending` is called, named like the question and defined nowhere yet: looked up
        // next round; `write_all` is defined (in `Writer`), `tidy` is not named like it.
        let calls: Vec<&String> = selection.gaps.iter().flat_map(|gap| &gap.calls).collect();
        assert_eq!(calls, ["embed_pending"]);
    }

    #[test]
    fn splits_on_paragraphs_with_line_ranges() {
        let para = "word ".repeat(45);
        let text = format!("{para}\n\n{para}\nmore\n\n{para}");
        let passages = split_passages(&found("a.md", &text, 1.0));
        assert_eq!(passages.len(), 3);
        assert_eq!(passages[0].1, Some((10, 10)));
        assert_eq!(passages[1].1, Some((12, 13)));
    }

    #[test]
    fn ranks_dedups_and_budgets() {
        let questions = vec![
            question(0, "how does ownership move values"),
            question(1, "what is borrowing"),
        ];
        let ownership = "Ownership rules: each value has an owner; when ownership moves the old variable can no longer be used.";
        let borrowing =
            "Borrowing lets code use a value through a reference without taking ownership of it.";
        let found_lists = vec![
            vec![
                found("other.md", "Unrelated text about cargo and crates.", 1.0),
                found("own.md", ownership, 0.5),
                found("dup.md", ownership, 0.4),
            ],
            vec![found("borrow.md", borrowing, 1.0)],
        ];
        let limits = SelectionLimits {
            token_budget: 10_000,
            per_sub_question: 2,
            embed_candidates: 0,
        };
        let selection = select_evidence(&questions, &found_lists, &NoEmbeddings, limits);
        let texts: Vec<&str> = selection.passages.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts.iter().filter(|t| **t == ownership).count(),
            1,
            "dedup: {texts:?}"
        );
        assert_eq!(
            selection.passages[0].text, ownership,
            "best lexical match first"
        );
        assert_eq!(
            selection.passages.iter().map(|p| p.n).collect::<Vec<_>>(),
            (1..=selection.passages.len()).collect::<Vec<_>>()
        );
        let tight = SelectionLimits {
            token_budget: 30,
            per_sub_question: 2,
            embed_candidates: 0,
        };
        let cut = select_evidence(&questions, &found_lists, &NoEmbeddings, tight);
        assert!(cut.budget_reached);
        assert!(cut.passages.len() < selection.passages.len());
    }
}
