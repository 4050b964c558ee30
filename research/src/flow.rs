//! Following calls through code evidence: which called functions a next round looks up (the
//! callees of the passages found, named like the question's words), and the walk-through of a
//! flow along the call edges between the passages of a report (`vector_phase` calls
//! `embed_pending`, which calls `write_batch`).

use std::collections::{BTreeMap, HashMap, HashSet};

use aiex_indexer::chunk::calls::{calls, definitions, Call};
use aiex_indexer::Language;
use aiex_search::Locator;

use crate::evidence::Passage;
use crate::text::{first_sentence, related, terms};

/// Steps of a walk-through at most.
const MAX_STEPS: usize = 6;
/// Functions considered for a walk-through at most (the best passages' first).
const MAX_NODES: usize = 40;

/// Whether a located text is source code of a language with a grammar (not documentation).
pub fn code_language(locator: &Locator) -> Option<Language> {
    if locator.source != "code" {
        return None;
    }
    let language = Language::from_name(locator.language.as_deref()?)?;
    (!matches!(
        language,
        Language::Markdown | Language::Html | Language::Toml
    ))
    .then_some(language)
}

/// The name a call would use for `symbol`: its last segment (`IndexRun::embed_pending` →
/// `embed_pending`, `Parser.parse` → `parse`).
pub fn short_name(symbol: &str) -> &str {
    symbol
        .rsplit(['.', ':'])
        .find(|segment| !segment.is_empty())
        .unwrap_or(symbol)
}

/// The calls of a located code text (none for anything else).
pub fn calls_of(locator: &Locator, text: &str) -> Vec<Call> {
    code_language(locator)
        .map(|language| calls(language, text))
        .unwrap_or_default()
}

/// The functions a located text defines, each with the line of its definition in the text: its
/// symbol, and the functions and methods its code defines (a small type's chunk holds its
/// methods).
pub fn defined_in(locator: &Locator, text: &str) -> Vec<(String, Option<usize>)> {
    let mut defined: Vec<(String, Option<usize>)> = locator
        .symbol
        .as_deref()
        .map(|symbol| (short_name(symbol).to_owned(), None))
        .into_iter()
        .collect();
    if let Some(language) = code_language(locator) {
        for (name, line) in definitions(language, text) {
            match defined.iter_mut().find(|(known, _)| *known == name) {
                Some(known) => known.1 = known.1.or(Some(line)),
                None => defined.push((name, Some(line))),
            }
        }
    }
    defined
}

/// The documentation of the function defined at line `at` of `text`: the comment lines right
/// above it (or the text's own, when the line is not known).
fn documentation_at(text: &str, at: Option<usize>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match at.filter(|at| *at < lines.len()) {
        Some(at) => {
            let start = lines[..at]
                .iter()
                .rposition(|line| {
                    let line = line.trim_start();
                    !(line.starts_with("//") || line.starts_with('#') || line.starts_with('*'))
                })
                .map_or(0, |before| before + 1);
            let mut block = lines[start..=at].join("\n");
            // A Python docstring follows the definition.
            if let Some(next) = lines
                .get(at + 1)
                .filter(|line| line.trim_start().starts_with("\"\"\""))
            {
                block.push('\n');
                block.push_str(next);
            }
            crate::synth::doc_comments(&block)
        }
        None => crate::synth::doc_comments(text),
    }
}

/// Receivers that say nothing about what a call does.
const PLAIN_RECEIVERS: &[&str] = &["self", "this", "cls", "super"];

/// The words of a call that may match a question, each with its weight: the name's words (its
/// parts, or the name when it has none) in full, the receiver's at half (`vectors` in
/// `self.vectors.upsert(..)`: a call on the vector store).
fn call_words(call: &Call) -> Vec<(String, f32)> {
    let mut words: Vec<(String, f32)> = Vec::new();
    let parts = terms(&call.name);
    let whole_only = parts.len() == 1;
    for part in parts {
        if whole_only || part != call.name {
            words.push((part, 1.0));
        }
    }
    for word in call.receiver.as_deref().map(terms).unwrap_or_default() {
        if !PLAIN_RECEIVERS.contains(&word.as_str()) && !words.iter().any(|(w, _)| *w == word) {
            words.push((word, 0.5));
        }
    }
    words
}

/// The functions that the `texts` call and that are named with a word of a question with
/// `question_terms` (`embed` in `embed_pending` for "embedded"): the calls worth following, those
/// whose such words weigh most first (`weight` of each word: its rarity, so that the word that
/// sets a step apart counts more than the subject every step shares), then in call order.
pub fn related_calls<'a>(
    question_terms: &[String],
    texts: impl IntoIterator<Item = (&'a Locator, &'a str)>,
    weight: impl Fn(&str) -> f32,
) -> Vec<String> {
    let wanted: HashSet<String> = question_terms.iter().cloned().collect();
    let mut found: Vec<(f32, usize, String)> = Vec::new();
    for (locator, text) in texts {
        for call in calls_of(locator, text) {
            if found.iter().any(|(_, _, known)| *known == call.name) {
                continue;
            }
            let weight: f32 = call_words(&call)
                .iter()
                .filter(|(word, _)| related(word, &wanted))
                .map(|(word, factor)| factor * weight(word))
                .sum();
            if weight > 0.0 {
                let order = found.len();
                found.push((weight, order, call.name));
            }
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    found.into_iter().map(|(_, _, name)| name).collect()
}

/// One function of a walk-through (or a type whose chunk holds functions): every passage of it
/// merged.
struct Function<'p> {
    symbol: &'p str,
    path: &'p str,
    /// The first passage of it (its citation and its documentation).
    first: &'p Passage,
    calls: HashSet<String>,
    /// The functions it defines, with their lines in `text` ([`defined_in`]).
    defines: Vec<(String, Option<usize>)>,
    /// Its text, every passage of it joined.
    text: String,
    score: f32,
}

/// The code passages grouped per function (collection, path and symbol), best first.
fn functions(passages: &[Passage]) -> Vec<Function<'_>> {
    let mut by_key: BTreeMap<(String, &str, &str), usize> = BTreeMap::new();
    let mut out: Vec<Function<'_>> = Vec::new();
    for passage in passages {
        let locator = &passage.reference.locator;
        let (Some(symbol), Some(path)) = (locator.symbol.as_deref(), locator.path.as_deref())
        else {
            continue;
        };
        if code_language(locator).is_none() {
            continue;
        }
        let key = (locator.collection.clone().unwrap_or_default(), path, symbol);
        let index = *by_key.entry(key).or_insert_with(|| {
            out.push(Function {
                symbol,
                path,
                first: passage,
                calls: HashSet::new(),
                defines: Vec::new(),
                text: String::new(),
                score: 0.0,
            });
            out.len() - 1
        });
        let function = &mut out[index];
        function.calls.extend(
            calls_of(locator, &passage.text)
                .into_iter()
                .map(|call| call.name),
        );
        function.text.push_str(&passage.text);
        function.text.push('\n');
        function.score = function.score.max(passage.score);
        if passage.reference.locator.start_line < function.first.reference.locator.start_line {
            function.first = passage;
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out.truncate(MAX_NODES);
    for function in &mut out {
        function.defines = defined_in(&function.first.reference.locator, &function.text);
    }
    out
}

/// A step of a walk: a function (by index) and the name it is called by.
type Step = (usize, String);

/// The longest chain of calls from `at` (by index into `functions`, reached by the name `by`),
/// most relevant on ties.
fn longest_from(
    at: usize,
    by: &str,
    edges: &[Vec<Step>],
    functions: &[Function<'_>],
    on_path: &mut Vec<usize>,
) -> (Vec<Step>, f32) {
    on_path.push(at);
    let mut best: (Vec<Step>, f32) = (Vec::new(), 0.0);
    if on_path.len() < MAX_STEPS {
        for (next, name) in &edges[at] {
            if on_path.contains(next) {
                continue;
            }
            let candidate = longest_from(*next, name, edges, functions, on_path);
            if candidate.0.len() > best.0.len()
                || (candidate.0.len() == best.0.len() && candidate.1 > best.1)
            {
                best = candidate;
            }
        }
    }
    on_path.pop();
    let mut chain = vec![(at, by.to_owned())];
    chain.extend(best.0);
    (chain, best.1 + functions[at].score)
}

/// One step of a walk-through: a function, where it is, its citation and what its
/// documentation says first.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkStep {
    pub name: String,
    pub path: String,
    pub n: usize,
    pub said: Option<String>,
}

/// A chain of calls between cited functions, the first calling the second and so on.
#[derive(Debug, Clone, PartialEq)]
pub struct Walk {
    pub steps: Vec<WalkStep>,
}

impl Walk {
    /// The walk as a numbered list, each step cited with its documentation's first sentence.
    pub fn markdown(&self) -> String {
        let mut lines = vec!["Following the calls:".to_owned()];
        for (index, step) in self.steps.iter().enumerate() {
            let said = step
                .said
                .as_deref()
                .map(|sentence| format!(": {sentence}"))
                .unwrap_or_default();
            let (name, n) = (&step.name, step.n);
            lines.push(if index == 0 {
                format!("1. `{name}` in `{}` [{n}]{said}", step.path)
            } else {
                let caller = &self.steps[index - 1].name;
                format!("{}. `{caller}` calls `{name}` [{n}]{said}", index + 1)
            });
        }
        lines.join("\n")
    }

    /// The walk in one sentence: "In the code, `a` \[1\] calls `b` \[2\], which calls `c`
    /// \[3\]."
    pub fn sentence(&self) -> String {
        let mut out = String::from("In the code, ");
        for (index, step) in self.steps.iter().enumerate() {
            let joint = match index {
                0 => "",
                1 => " calls ",
                _ => ", which calls ",
            };
            out.push_str(&format!("{joint}`{}` [{}]", step.name, step.n));
        }
        out.push('.');
        out
    }
}

/// The longest chain of calls between the code passages (at least two steps): `None` without
/// such a chain.
pub fn walk_through(passages: &[Passage]) -> Option<Walk> {
    let functions = functions(passages);
    let mut names: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, function) in functions.iter().enumerate() {
        for (name, _) in &function.defines {
            names.entry(name.as_str()).or_default().push(index);
        }
    }
    let edges: Vec<Vec<Step>> = functions
        .iter()
        .enumerate()
        .map(|(index, function)| {
            let mut callees: Vec<Step> = function
                .calls
                .iter()
                .flat_map(|name| {
                    names
                        .get(name.as_str())
                        .into_iter()
                        .flatten()
                        .map(move |&callee| (callee, name.clone()))
                })
                .filter(|(callee, _)| *callee != index)
                .collect();
            callees.sort();
            callees.dedup_by_key(|(callee, _)| *callee);
            callees
        })
        .collect();
    let called: HashSet<usize> = edges.iter().flatten().map(|(callee, _)| *callee).collect();
    let mut best: (Vec<Step>, f32) = (Vec::new(), 0.0);
    // Chains start where nothing calls in, else anywhere (a cycle).
    let starts: Vec<usize> = match (0..functions.len())
        .filter(|index| !called.contains(index) && !edges[*index].is_empty())
        .collect::<Vec<_>>()
    {
        starts if !starts.is_empty() => starts,
        _ => (0..functions.len()).collect(),
    };
    for start in starts {
        let name = short_name(functions[start].symbol);
        let candidate = longest_from(start, name, &edges, &functions, &mut Vec::new());
        if candidate.0.len() > best.0.len()
            || (candidate.0.len() == best.0.len() && candidate.1 > best.1)
        {
            best = candidate;
        }
    }
    if best.0.len() < 2 {
        return None;
    }
    let steps = best
        .0
        .iter()
        .map(|(index, name)| {
            let function = &functions[*index];
            let line = function
                .defines
                .iter()
                .find(|(defined, _)| defined == name)
                .and_then(|(_, line)| *line);
            WalkStep {
                name: name.clone(),
                path: function.path.to_owned(),
                n: function.first.n,
                said: first_sentence(&documentation_at(&function.text, line)),
            }
        })
        .collect();
    Some(Walk { steps })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::SourceRef;

    fn code(n: usize, symbol: &str, text: &str, score: f32) -> Passage {
        Passage {
            n,
            sub_questions: vec![0],
            text: text.to_owned(),
            score,
            reference: SourceRef {
                locator: Locator {
                    source: "code".into(),
                    title: symbol.into(),
                    collection: Some("demo".into()),
                    path: Some("src/pipeline.rs".into()),
                    start_line: Some(n as u32 * 10),
                    end_line: Some(n as u32 * 10 + 9),
                    language: Some("rust".into()),
                    symbol: Some(symbol.into()),
                    ..Locator::default()
                },
                parent: None,
                retrieved_at: String::new(),
            },
        }
    }

    #[test]
    fn callees_named_like_the_question_are_followed() {
        let locator = code(1, "vector_phase", "", 1.0).reference.locator;
        let text = "fn vector_phase(&mut self) {\n    let store = self.server_store()?;\n    self.delete_stale()?;\n    if self.embed_pending()? { self.optimise()?; }\n    write_vector_store(x);\n    self.vectors.upsert(points);\n    self.cache.clear();\n}";
        let question = terms("How are chunks embedded and written to the vector store?");
        // Named like the question (a part of the name, or the receiver at half weight).
        assert_eq!(
            related_calls(&question, [(&locator, text)], |_| 1.0),
            [
                "write_vector_store",
                "server_store",
                "embed_pending",
                "upsert"
            ]
        );
        // A rare word counts more than a common one.
        let rare = |word: &str| if word == "embed" { 3.0 } else { 1.0 };
        assert_eq!(
            related_calls(&question, [(&locator, text)], rare)[0],
            "embed_pending"
        );
        let prose = Locator {
            source: "docs".into(),
            ..locator.clone()
        };
        assert!(related_calls(&question, [(&prose, text)], |_| 1.0).is_empty());
    }

    #[test]
    fn the_walk_through_follows_the_longest_chain_with_citations() {
        let passages = vec![
            code(
                1,
                "write_batch",
                "/// Writes one batch of points.\nfn write_batch(&mut self) {\n    self.vectors.upsert(points)?;\n}",
                0.9,
            ),
            code(
                2,
                "IndexRun::vector_phase",
                "/// Brings the vector store in line with the manifest.\nfn vector_phase(&mut self) {\n    if self.embed_pending()? {}\n}",
                0.5,
            ),
            code(
                3,
                "embed_pending",
                "/// Gives every chunk its vector. More text.\nfn embed_pending(&mut self) {\n    self.write_batch(ids)?;\n}",
                0.7,
            ),
            // A small trait is one chunk: its methods are defined inside it.
            code(
                4,
                "VectorStore",
                "/// Where vectors are kept.\npub trait VectorStore {\n    /// Adds or replaces points.\n    fn upsert(&self, points: Vec<VectorPoint>) -> Result<()>;\n}",
                0.8,
            ),
            code(5, "unrelated", "fn unrelated() { other(); }", 1.0),
        ];
        let walk = walk_through(&passages).expect("a chain");
        assert_eq!(
            walk.sentence(),
            "In the code, `vector_phase` [2] calls `embed_pending` [3], which calls `write_batch` \
             [1], which calls `upsert` [4]."
        );
        assert_eq!(
            walk.markdown(),
            "Following the calls:\n\
             1. `vector_phase` in `src/pipeline.rs` [2]: Brings the vector store in line with the manifest.\n\
             2. `vector_phase` calls `embed_pending` [3]: Gives every chunk its vector.\n\
             3. `embed_pending` calls `write_batch` [1]: Writes one batch of points.\n\
             4. `write_batch` calls `upsert` [4]: Adds or replaces points."
        );
        assert!(
            walk_through(&passages[3..]).is_none(),
            "no call between them"
        );
    }
}
