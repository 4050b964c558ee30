//! Decomposition of a question into sub-questions and search queries. The deterministic planner
//! (key phrases, entities, question type, optionally a template) needs no LLM; an LLM planner can
//! stand in through the [`Planner`] trait.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::question::Form;
use crate::template::{fill, Template};
use crate::text::{distinct_terms, is_stop_word, words};
use crate::usage::Usage;
use crate::BoxFuture;

/// What kind of answer the question wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionType {
    Comparison,
    HowTo,
    Explanation,
    Debugging,
    Migration,
    Architecture,
}

/// One sub-question, the report section it fills and the queries searched for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubQuestion {
    pub index: usize,
    pub text: String,
    /// Heading of its report section.
    pub heading: String,
    pub queries: Vec<String>,
}

/// The plan of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub question: String,
    pub title: String,
    pub question_type: QuestionType,
    pub key_phrases: Vec<String>,
    pub entities: Vec<String>,
    pub sub_questions: Vec<SubQuestion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Heading of the summary section.
    pub summary_heading: String,
    /// `deterministic` or `llm`.
    pub planner: String,
}

/// Makes plans.
pub trait Planner: Send + Sync {
    fn name(&self) -> &str;
    /// A plan of at most `max_sub_questions` sub-questions, and the LLM usage it cost.
    fn plan<'a>(
        &'a self,
        question: &'a str,
        template: Option<&'static Template>,
        max_sub_questions: usize,
    ) -> BoxFuture<'a, crate::Result<(Plan, Usage)>>;
}

/// The planner without an LLM.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeterministicPlanner;

impl Planner for DeterministicPlanner {
    fn name(&self) -> &str {
        "deterministic"
    }

    fn plan<'a>(
        &'a self,
        question: &'a str,
        template: Option<&'static Template>,
        max_sub_questions: usize,
    ) -> BoxFuture<'a, crate::Result<(Plan, Usage)>> {
        Box::pin(async move {
            Ok((
                plan_question(question, template, max_sub_questions),
                Usage::default(),
            ))
        })
    }
}

/// Whether a (lowercase) question asks what one thing can do that another cannot ("what can
/// unsafe Rust do that safe Rust cannot?"): a question about abilities, not about a failure.
fn contrasts_abilities(lower: &str) -> bool {
    let negation = ["cannot", "can't"]
        .iter()
        .filter_map(|word| lower.find(word))
        .min();
    let asks_ability = [
        "what can ",
        "what could ",
        "which ",
        "what does ",
        "what do ",
    ]
    .iter()
    .any(|start| lower.starts_with(start));
    asks_ability
        && negation
            .is_some_and(|at| lower[..at].contains(" that ") || lower[..at].contains(" which "))
}

/// The question's type from its wording.
pub fn question_type(question: &str) -> QuestionType {
    let lower = question.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|needle| lower.contains(needle));
    if has(&[
        " vs ",
        " vs. ",
        "versus",
        "compare",
        "comparison",
        "difference between",
        "differ",
    ]) {
        QuestionType::Comparison
    } else if has(&[
        "migrate",
        "migration",
        "upgrade",
        "port from",
        "moving from",
        "switch from",
    ]) {
        QuestionType::Migration
    } else if has(&[
        "error",
        "panic",
        "bug",
        "crash",
        "fails",
        "failing",
        "doesn't",
        "does not",
        "won't",
        "broken",
        "exception",
    ]) || (has(&["cannot", "can't"]) && !contrasts_abilities(&lower))
    {
        QuestionType::Debugging
    } else if has(&[
        "architecture",
        "structure of",
        "overview",
        "organized",
        "organised",
        "design of",
    ]) {
        QuestionType::Architecture
    } else if has(&[
        "how do",
        "how to",
        "how can",
        "how should",
        "how would",
        "example",
        "implement",
    ]) {
        QuestionType::HowTo
    } else {
        QuestionType::Explanation
    }
}

/// Acronyms too general to be what a question is about ("rate limiting of API keys").
const GENERIC_ACRONYMS: &[&str] = &[
    "API", "APIs", "HTTP", "HTTPS", "URL", "URLs", "JSON", "CLI", "SQL", "IO", "OS", "UI", "CPU",
    "GPU", "RAM",
];

/// Code-like names and proper nouns: backquoted text, paths (`a::b`), identifiers with `_` or an
/// inner capital, capitalised words that do not start a sentence.
pub fn entities(question: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let push = |entity: &str, out: &mut Vec<String>| {
        let entity = entity.trim_matches(|c: char| !c.is_alphanumeric() && c != '_');
        if entity.len() > 1 && !out.iter().any(|known| known.eq_ignore_ascii_case(entity)) {
            out.push(entity.to_string());
        }
    };
    let mut rest = question;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        push(&after[..end], &mut out);
        rest = &after[end + 1..];
    }
    let mut sentence_start = true;
    for raw in question.split_whitespace() {
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != ':');
        let inner_capital = word.chars().skip(1).any(|c| c.is_uppercase())
            && word.chars().any(|c| c.is_lowercase());
        let code_like = word.contains("::") || word.contains('_') || inner_capital;
        let capitalised = word.chars().next().is_some_and(char::is_uppercase)
            && !sentence_start
            && !is_stop_word(&word.to_lowercase())
            && !GENERIC_ACRONYMS.contains(&word);
        if code_like || capitalised {
            push(word, &mut out);
        }
        sentence_start = raw.ends_with(['.', '?', '!']);
    }
    out
}

/// Key phrases: runs of up to three content words between stop words and punctuation, best first
/// (longer and more frequent first).
pub fn key_phrases(question: &str) -> Vec<String> {
    let mut phrases: Vec<Vec<String>> = Vec::new();
    for clause in question.split([',', '.', '?', '!', ';', '(', ')', '"']) {
        let mut current: Vec<String> = Vec::new();
        for word in words(clause) {
            let lower = word.to_lowercase();
            if is_stop_word(&lower) || lower.chars().all(|c| c.is_ascii_digit()) {
                if !current.is_empty() {
                    phrases.push(std::mem::take(&mut current));
                }
            } else {
                current.push(lower);
                if current.len() == 3 {
                    phrases.push(std::mem::take(&mut current));
                }
            }
        }
        if !current.is_empty() {
            phrases.push(current);
        }
    }
    let mut seen = HashSet::new();
    let mut unique: Vec<Vec<String>> = phrases
        .into_iter()
        .filter(|phrase| seen.insert(phrase.join(" ")))
        .collect();
    // Longer phrases first; stable, so question order breaks ties.
    unique.sort_by_key(|phrase| std::cmp::Reverse(phrase.len()));
    unique.into_iter().map(|phrase| phrase.join(" ")).collect()
}

/// The clauses of a compound question ("How does X work, and how should I size Y?").
pub fn clauses(question: &str) -> Vec<String> {
    const STARTS: &[&str] = &[
        "how", "what", "why", "when", "where", "which", "should", "can", "does", "do", "is", "are",
        "who",
    ];
    let mut out = Vec::new();
    for part in question.split(['?', ';', '\n']) {
        let mut pieces: Vec<String> = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        let tokens: Vec<&str> = part.split_whitespace().collect();
        let mut index = 0;
        while index < tokens.len() {
            let token = tokens[index];
            let next = tokens
                .get(index + 1)
                .map(|word| word.to_lowercase())
                .unwrap_or_default();
            let is_joint = token.trim_end_matches(',').eq_ignore_ascii_case("and")
                && STARTS.contains(&next.as_str())
                && current.len() >= 3;
            if is_joint {
                pieces.push(current.join(" "));
                current.clear();
            } else {
                current.push(token);
            }
            index += 1;
        }
        if !current.is_empty() {
            pieces.push(current.join(" "));
        }
        for piece in pieces {
            let piece = piece.trim().trim_end_matches(',').trim();
            if piece.split_whitespace().count() >= 2 {
                out.push(format!("{piece}?"));
            }
        }
    }
    out
}

/// The subject of a question: its first entity, else its best key phrase, else the question.
fn subject(question: &str, entities: &[String], phrases: &[String]) -> String {
    let Some(entity) = entities.first() else {
        return phrases
            .first()
            .cloned()
            .unwrap_or_else(|| question.trim_end_matches('?').to_string());
    };
    // An entity qualified where the question first names it ("unsafe Rust") is the qualified
    // phrase, in the question's spelling.
    let words: Vec<&str> = question.split_whitespace().collect();
    let bare = |word: &str| {
        word.trim_matches(|c: char| !c.is_alphanumeric() && c != '_')
            .to_string()
    };
    let Some(at) = words.iter().position(|word| bare(word) == *entity) else {
        return entity.clone();
    };
    match at.checked_sub(1).map(|before| bare(words[before])) {
        Some(qualifier)
            if qualifier.len() > 2
                && qualifier.chars().all(|c| c.is_ascii_lowercase())
                && !crate::text::is_stop_word(&qualifier)
                && !QUESTION_WORDS.contains(&qualifier.as_str()) =>
        {
            format!("{qualifier} {entity}")
        }
        _ => entity.clone(),
    }
}

/// Words that open or shape a question rather than qualify its subject.
const QUESTION_WORDS: &[&str] = &[
    "what", "which", "how", "why", "where", "when", "who", "can", "could", "does", "do", "did",
    "should", "would", "will", "is", "are", "use", "using", "between", "about",
];

/// The two things compared (or the versions migrated between): `A vs B`, `between A and B`,
/// `from A to B`, else the first two entities or phrases.
fn pair(question: &str, entities: &[String], phrases: &[String]) -> (String, String) {
    let lower = question.to_lowercase();
    let clean = |text: &str| {
        text.trim()
            .trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != ':')
            .to_string()
    };
    let last_words = |text: &str, n: usize| {
        let words: Vec<&str> = text.split_whitespace().collect();
        clean(&words[words.len().saturating_sub(n)..].join(" "))
    };
    let first_words = |text: &str, n: usize| {
        let words: Vec<&str> = text.split_whitespace().take(n).collect();
        clean(&words.join(" "))
    };
    for (separator, prefix) in [
        (" vs. ", ""),
        (" vs ", ""),
        (" versus ", ""),
        (" and ", "between "),
        (" to ", "from "),
    ] {
        let scope = if prefix.is_empty() {
            Some(lower.as_str())
        } else {
            lower.find(prefix).map(|at| &lower[at + prefix.len()..])
        };
        let Some(scope) = scope else { continue };
        if let Some(at) = scope.find(separator) {
            let left = if prefix.is_empty() {
                last_words(&scope[..at], 1)
            } else {
                first_words(&scope[..at], 2)
            };
            let right = first_words(
                &scope[at + separator.len()..],
                if prefix.is_empty() { 1 } else { 2 },
            );
            if !left.is_empty() && !right.is_empty() {
                return (
                    original_case(question, &left),
                    original_case(question, &right),
                );
            }
        }
    }
    let mut candidates = entities.iter().chain(phrases.iter());
    let a = candidates
        .next()
        .cloned()
        .unwrap_or_else(|| "the first option".to_string());
    let b = candidates
        .next()
        .cloned()
        .unwrap_or_else(|| "the alternative".to_string());
    (a, b)
}

/// `text` (found lowercased in `question`) as the question spells it.
fn original_case(question: &str, text: &str) -> String {
    let lower = question.to_lowercase();
    match lower.find(text) {
        Some(at) if lower.len() == question.len() => question[at..at + text.len()].to_string(),
        _ => text.to_string(),
    }
}

/// The queries searched for a sub-question: its text, and its content words when they differ.
fn queries_for(text: &str) -> Vec<String> {
    let mut queries = vec![text.to_string()];
    let keywords = distinct_terms(text).join(" ");
    if !keywords.is_empty() && keywords != text.to_lowercase() {
        queries.push(keywords);
    }
    queries
}

/// A query of the question's names as code spells them: identifiers split into words
/// (`embed_pending` → `embed pending`) and two-word key phrases joined (`vector store` →
/// `vector_store`), so both spellings are searched.
fn identifier_query(entities: &[String], phrases: &[String]) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for entity in entities.iter().take(3) {
        let split = distinct_terms(entity).join(" ");
        if !split.is_empty() && split != entity.to_lowercase() {
            parts.push(split);
        }
    }
    for phrase in phrases
        .iter()
        .filter(|p| p.split(' ').count() == 2 && !p.contains(['_', ':', '.']))
        .take(2)
    {
        parts.push(phrase.replace(' ', "_"));
    }
    let mut seen = HashSet::new();
    let words: Vec<&str> = parts
        .iter()
        .flat_map(|part| part.split(' '))
        .filter(|word| seen.insert(*word))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The deterministic plan of `question`.
pub fn plan_question(
    question: &str,
    template: Option<&'static Template>,
    max_sub_questions: usize,
) -> Plan {
    let question = question.trim();
    let entities = entities(question);
    let key_phrases = key_phrases(question);
    let question_type = template.map_or_else(|| question_type(question), |t| t.question_type);
    let subject = subject(question, &entities, &key_phrases);
    let (a, b) = pair(question, &entities, &key_phrases);
    let skeleton = match template {
        Some(template) => template_skeleton(template, question, &subject, &a, &b),
        None => question_skeleton(question, question_type, &entities, &subject, &a, &b),
    };
    let mut sub_questions = sub_questions_of(skeleton.drafts, max_sub_questions);
    if let (Some(first), Some(query)) = (
        sub_questions.first_mut(),
        identifier_query(&entities, &key_phrases),
    ) {
        if !first.queries.contains(&query) {
            first.queries.push(query);
        }
    }
    Plan {
        question: question.to_string(),
        title: capitalise(&skeleton.title),
        question_type,
        key_phrases,
        entities,
        sub_questions,
        template: template.map(|t| t.name.to_string()),
        summary_heading: skeleton.summary_heading,
        planner: "deterministic".to_string(),
    }
}

/// A plan's title, summary heading and (heading, sub-question) drafts, before deduplication.
struct Skeleton {
    title: String,
    summary_heading: String,
    drafts: Vec<(String, String)>,
}

/// The skeleton a template gives, its placeholders filled.
fn template_skeleton(
    template: &Template,
    question: &str,
    subject: &str,
    a: &str,
    b: &str,
) -> Skeleton {
    Skeleton {
        title: fill(template.title, question, subject, a, b),
        summary_heading: template.summary_heading.to_string(),
        drafts: template
            .sections
            .iter()
            .map(|section| {
                (
                    section.heading.to_string(),
                    fill(section.sub_question, question, subject, a, b),
                )
            })
            .collect(),
    }
}

/// The skeleton of a question without a template: its clauses (or the question itself), the
/// sub-questions its type calls for, and one for each entity not mentioned yet.
fn question_skeleton(
    question: &str,
    question_type: QuestionType,
    entities: &[String],
    subject: &str,
    a: &str,
    b: &str,
) -> Skeleton {
    let mut drafts: Vec<(String, String)> = Vec::new();
    let parts = clauses(question);
    if parts.len() > 1 {
        for part in &parts {
            drafts.push((part.trim_end_matches('?').to_string(), capitalise(part)));
        }
    } else {
        drafts.push((
            "Answer".to_string(),
            format!("{}?", question.trim_end_matches('?')),
        ));
    }
    // A question of a form the planner knows ("how are X …", "how do I …", "what is X") gets
    // sub-questions built on its own words; others get their type's.
    let form = if parts.len() > 1 {
        None
    } else {
        crate::question::form(question)
    };
    match (form, question_type) {
        (Some(form), QuestionType::HowTo | QuestionType::Explanation) => {
            drafts.extend(crate::question::drafts(&form));
        }
        (
            Some(form @ (Form::Process { .. } | Form::Check(_) | Form::Location(_))),
            QuestionType::Debugging,
        ) => {
            drafts.extend(crate::question::drafts(&crate::question::failure(form)));
        }
        _ => drafts.extend(type_drafts(
            question_type,
            subject,
            entities.iter().any(|e| e == subject),
            a,
            b,
        )),
    }
    // Entities the sub-questions do not mention yet get their own.
    for entity in entities.iter().take(3) {
        let mentioned = drafts
            .iter()
            .any(|(_, text)| text.to_lowercase().contains(&entity.to_lowercase()));
        if !mentioned {
            let code_like =
                entity.contains(['_', ':']) || entity.chars().skip(1).any(char::is_uppercase);
            let text = if code_like {
                format!("What does {entity} do?")
            } else {
                format!("What is {entity}?")
            };
            drafts.push((format!("About {entity}"), text));
        }
    }
    Skeleton {
        title: question.trim_end_matches('?').to_string(),
        summary_heading: "Summary".to_string(),
        drafts,
    }
}

/// The (heading, sub-question) drafts a question type calls for.
fn type_drafts(
    question_type: QuestionType,
    subject: &str,
    subject_is_entity: bool,
    a: &str,
    b: &str,
) -> Vec<(String, String)> {
    // A subject that is a name reads well in "What is X?"; a key phrase ("chunks embedded")
    // does not.
    let what = if subject_is_entity {
        format!("What is {subject}?")
    } else {
        format!("What is meant by \"{subject}\"?")
    };
    match question_type {
        QuestionType::Comparison => vec![
            (
                format!("About {a}"),
                format!("What is {a} and what is it for?"),
            ),
            (
                format!("About {b}"),
                format!("What is {b} and what is it for?"),
            ),
            ("Differences".into(), format!("How do {a} and {b} differ?")),
        ],
        QuestionType::HowTo => vec![
            (format!("What {subject} is"), what),
            (
                "Example".into(),
                format!("Is there an example of {subject}?"),
            ),
            (
                "Pitfalls".into(),
                format!("What are common mistakes with {subject}?"),
            ),
        ],
        QuestionType::Explanation => vec![
            (format!("What {subject} is"), what),
            ("How it works".into(), format!("How does {subject} work?")),
            (
                "Example".into(),
                format!("Is there an example of {subject}?"),
            ),
        ],
        QuestionType::Debugging => vec![
            ("Causes".into(), format!("What causes {subject}?")),
            ("Fixes".into(), format!("How to fix {subject}?")),
        ],
        QuestionType::Migration => vec![
            (
                "What changed".into(),
                format!("What changed between {a} and {b}?"),
            ),
            ("Steps".into(), format!("How to migrate from {a} to {b}?")),
        ],
        QuestionType::Architecture => {
            let subject = if subject_is_entity {
                subject.to_string()
            } else {
                format!("the {subject}")
            };
            vec![
                (
                    "Components".into(),
                    format!("What are the main components of {subject}?"),
                ),
                (
                    "Data flow".into(),
                    format!("How does data flow through {subject}?"),
                ),
            ]
        }
    }
}

/// The drafts as numbered sub-questions with their queries: one per distinct set of content
/// words, at most `max_sub_questions` (at least one).
fn sub_questions_of(drafts: Vec<(String, String)>, max_sub_questions: usize) -> Vec<SubQuestion> {
    let mut seen = HashSet::new();
    let mut sub_questions = Vec::new();
    for (heading, text) in drafts {
        let key = distinct_terms(&text).join(" ");
        if key.is_empty() || !seen.insert(key) {
            continue;
        }
        if sub_questions.len() >= max_sub_questions.max(1) {
            break;
        }
        sub_questions.push(SubQuestion {
            index: sub_questions.len(),
            queries: queries_for(&text),
            text,
            heading: capitalise(&heading),
        });
    }
    sub_questions
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_question_is_split_and_typed() {
        let plan = plan_question(
            "How does tokio schedule tasks, and how should I size its thread pool?",
            None,
            6,
        );
        assert_eq!(plan.question_type, QuestionType::HowTo);
        let texts: Vec<&str> = plan.sub_questions.iter().map(|s| s.text.as_str()).collect();
        assert!(
            texts.contains(&"How does tokio schedule tasks?"),
            "{texts:?}"
        );
        assert!(
            texts.contains(&"How should I size its thread pool?"),
            "{texts:?}"
        );
        assert!(plan.sub_questions.len() <= 6);
        assert!(plan.sub_questions.iter().all(|s| !s.queries.is_empty()));
        assert!(plan.key_phrases.iter().any(|p| p.contains("tokio")));
    }

    #[test]
    fn comparison_pairs_and_entities() {
        let plan = plan_question("Rc vs Arc: which one for shared ownership?", None, 6);
        assert_eq!(plan.question_type, QuestionType::Comparison);
        let texts: Vec<String> = plan
            .sub_questions
            .iter()
            .map(|s| s.text.to_lowercase())
            .collect();
        assert!(
            texts.iter().any(|t| t.contains("rc") && t.contains("arc")),
            "{texts:?}"
        );
        assert_eq!(
            entities("Why does `Vec::push` reallocate in HashMap code?"),
            vec!["Vec::push", "HashMap"]
        );
    }

    /// Plans for varied questions, as a reader sees them: each sub-question under its heading,
    /// with its queries. Reviewed for grammar and distinctness when it changes.
    #[test]
    fn plans_of_varied_questions() {
        let questions = [
            "How are chunks embedded and written to the vector store?",
            "How does the search coordinator fuse results from several sources?",
            "How does the indexing lease work?",
            "How do I configure a Qdrant cluster for three nodes?",
            "How can I limit the number of concurrent indexing jobs?",
            "How to add a new language to the chunker?",
            "Why is the keyword index so large?",
            "Why does the server refuse requests without an API key?",
            "What is a tenant in the Qdrant layout?",
            "What are research templates?",
            "Where is the embedding model loaded?",
            "Where does the crawler check for private addresses?",
            "What is the difference between Rc and Arc?",
            "tokio vs async-std for a web server",
            "How do I migrate from tantivy 0.21 to 0.25?",
            "Why does `index_directory` panic on a broken symlink?",
            "Give an overview of the architecture of the research engine",
            "How does `Coordinator::search` handle a source that times out, and how should I size search.budget_ms?",
            "rate limiting of API keys",
            "Is the HNSW index rebuilt after every upsert?",
            "What can unsafe Rust do that safe Rust cannot?",
            "Why can't I borrow the vector as mutable twice?",
        ];
        let mut out = String::new();
        for question in questions {
            let plan = plan_question(question, None, 4);
            out.push_str(&format!("{question}\n"));
            for sub in &plan.sub_questions {
                out.push_str(&format!(
                    "  {}: {}\n    queries: {}\n",
                    sub.heading,
                    sub.text,
                    sub.queries.join(" | ")
                ));
            }
        }
        insta::assert_snapshot!(out);
    }

    #[test]
    fn template_skeleton_and_budget() {
        let template = crate::template::template("library-comparison").expect("template");
        let plan = plan_question("serde vs miniserde", Some(template), 3);
        assert_eq!(plan.sub_questions.len(), 3);
        assert_eq!(
            plan.sub_questions[0].text,
            "What is serde and what is it for?"
        );
        assert_eq!(plan.template.as_deref(), Some("library-comparison"));
        assert_eq!(plan.summary_heading, "Verdict");
    }
}
