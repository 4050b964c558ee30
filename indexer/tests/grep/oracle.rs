//! ripgrep as the oracle: on a corpus of real crates (pinned by version in Cargo.lock, copied
//! from the cargo registry), random literals and generated regexes return exactly the lines that
//! `rg` returns on the files the index holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aiex_indexer::grep::{CaseMode, GrepMode};
use aiex_indexer::IndexDir;

use super::support::{
    config, copy_dir, index, matched_lines, pattern_request, registry_crate, ripgrep,
    ripgrep_available, search, Rng,
};

/// Crates of the corpus, all in the workspace's Cargo.lock: plain code, Unicode tables and text.
const CORPUS: &[&str] = &[
    "memchr-2.8.3",
    "semver-1.0.28",
    "itoa-1.0.19",
    "either-1.19.0",
    "smallvec-1.16.6",
    "regex-syntax-0.8.12",
];

struct Query {
    pattern: String,
    mode: GrepMode,
    case: CaseMode,
    word: bool,
}

impl Query {
    fn rg_args(&self) -> Vec<&'static str> {
        let mut args = vec![match self.case {
            CaseMode::Sensitive => "--case-sensitive",
            CaseMode::Insensitive => "--ignore-case",
            CaseMode::Smart => "--smart-case",
        }];
        if self.mode == GrepMode::Exact {
            args.push("--fixed-strings");
        }
        if self.word {
            args.push("--word-regexp");
        }
        args
    }
}

fn random_case(rng: &mut Rng) -> CaseMode {
    match rng.below(5) {
        0 => CaseMode::Sensitive,
        1 => CaseMode::Insensitive,
        _ => CaseMode::Smart,
    }
}

/// Random substrings of random lines, mostly 3 to 24 characters, some shorter (no trigram).
fn literal_queries(rng: &mut Rng, lines: &[Vec<char>], count: usize) -> Vec<Query> {
    let mut queries = Vec::new();
    while queries.len() < count {
        let line = rng.pick(lines);
        if line.is_empty() {
            continue;
        }
        let max_len = if queries.len() % 12 == 0 { 2 } else { 24 };
        let start = rng.below(line.len());
        let len = 1 + rng.below(max_len.min(line.len() - start));
        let pattern: String = line[start..start + len].iter().collect();
        if pattern.trim().is_empty() {
            continue;
        }
        queries.push(Query {
            pattern,
            mode: GrepMode::Exact,
            case: random_case(rng),
            word: false,
        });
    }
    queries
}

const TEMPLATES: &[&str] = &[
    "{a}",
    r"\b{a}\b",
    r"{a}\s*\(",
    r"^\s*{a}",
    r"{a};$",
    "({a}|{b})",
    "{p}[a-z_]*",
    r"{p}\w+",
    r"fn\s+{p}\w*",
    "{a}.{0,20}{b}",
    "(?i){a}",
    "[^a-z]{a}",
    r"{a}(::|\.)\w+",
    r"{a}\d+",
    "[A-Z][a-z]+{p}",
    r"(pub\s+)?(fn|struct|enum|trait)\s+{a}",
    "{a}(?:_[a-z]+)+",
    "//.*{p}",
    r#""[^"]*{p}[^"]*""#,
    "(?-i){a}",
    "{p}{{2}}",
    "[{q}]{p}",
    r"{a}\b.*\b{b}",
    r"^{p}|{b}$",
];

/// Patterns with no usable trigram (full scans), Unicode classes and anchors.
const FIXED_REGEXES: &[&str] = &[
    r"\w+",
    "^$",
    r"^\s*//",
    r"\s+$",
    "[{}]",
    ".",
    "^.{90,}$",
    r"\bthe\b",
    "[[:upper:]]{2}",
    r"\p{Greek}+",
    "[à-ÿ]",
    "é",
    "ö|ü|ä",
    r"\p{Lu}{3,}",
    r"[^\x00-\x7F]",
    "(?i)σ",
    "(?i)straße",
    r"\d{4,}",
    r"0x[0-9A-F]{4}",
    r"'\\u\{[0-9A-F]+\}'",
    "(a|b|c)(d|e|f)(g|h|i)",
    r"[a-c][d-f][g-i][j-l]",
    "^(use|mod|pub) ",
    r"\)\s*->\s*\w+",
    "TODO|FIXME|XXX",
    r"(?i)\bunsafe\b",
];

fn regex_queries(rng: &mut Rng, words: &[String], count: usize) -> Vec<Query> {
    let mut queries: Vec<Query> = FIXED_REGEXES
        .iter()
        .map(|pattern| Query {
            pattern: pattern.to_string(),
            mode: GrepMode::Regex,
            case: random_case(rng),
            word: false,
        })
        .collect();
    while queries.len() < count {
        let a = rng.pick(words).clone();
        let b = rng.pick(words).clone();
        let prefix: String = a.chars().take(3).collect();
        let class: String = b.chars().take(3).collect();
        let pattern = rng
            .pick(TEMPLATES)
            .replace("{a}", &a)
            .replace("{b}", &b)
            .replace("{p}", &prefix)
            .replace("{q}", &class)
            .replace("{{2}}", "{2}");
        queries.push(Query {
            pattern,
            mode: GrepMode::Regex,
            case: random_case(rng),
            word: rng.below(8) == 0,
        });
    }
    queries
}

fn identifiers(lines: &[Vec<char>]) -> Vec<String> {
    let identifier = regex::Regex::new(r"\b[A-Za-z_][A-Za-z0-9_]{3,20}\b").expect("valid");
    let mut words = BTreeSet::new();
    for line in lines.iter().step_by(7) {
        let text: String = line.iter().collect();
        for found in identifier.find_iter(&text) {
            words.insert(found.as_str().to_string());
        }
    }
    words.into_iter().collect()
}

#[test]
fn exact_and_regex_match_ripgrep_line_for_line() {
    if !ripgrep_available("exact_and_regex_match_ripgrep_line_for_line") {
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("corpus");
    for name in CORPUS {
        let Some(source) = registry_crate(name) else {
            println!("SKIPPED: crate {name} is not in the cargo registry");
            return;
        };
        copy_dir(&source, &root.join(name));
    }
    let config = config(&temp.path().join("data"));
    index(&config, &root, "corpus");
    let manifest = IndexDir::new(config.index_dir())
        .manifest("corpus")
        .expect("manifest");
    let files: Vec<String> = manifest.files.keys().cloned().collect();
    assert!(files.len() > 100, "corpus too small: {} files", files.len());
    let lines = corpus_lines(&root, &files);

    let mut rng = Rng::new(0x5eed_1234_abcd);
    let mut queries = literal_queries(&mut rng, &lines, 180);
    queries.extend(regex_queries(&mut rng, &identifiers(&lines), 150));
    assert!(queries.len() >= 300);

    let mut failures = Vec::new();
    let mut nonempty = 0usize;
    for query in &queries {
        let mut request = pattern_request(&query.pattern, query.mode, query.case);
        request.word = query.word;
        let ours = matched_lines(&search(&config, &request));
        let expected = ripgrep(&root, &query.rg_args(), &query.pattern, &files);
        if !expected.is_empty() {
            nonempty += 1;
        }
        // Counts only (`--count`): the same number of lines per file, counted without the lines.
        request.with_lines = false;
        let counted: BTreeMap<String, usize> = search(&config, &request)
            .files
            .into_iter()
            .map(|file| (file.path, file.matched_lines))
            .collect();
        let mut expected_counts: BTreeMap<String, usize> = BTreeMap::new();
        for (path, _) in &expected {
            *expected_counts.entry(path.clone()).or_default() += 1;
        }
        if counted != expected_counts {
            failures.push(format!(
                "{:?} {:?} counting: rg {} files, aiex {}",
                query.pattern,
                query.rg_args(),
                expected_counts.len(),
                counted.len()
            ));
        }
        if ours != expected {
            let missing: Vec<_> = expected.difference(&ours).take(3).collect();
            let extra: Vec<_> = ours.difference(&expected).take(3).collect();
            failures.push(format!(
                "{:?} {:?}: rg {} lines, aiex {}; missing {missing:?}; extra {extra:?}",
                query.pattern,
                query.rg_args(),
                expected.len(),
                ours.len()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ from rg:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
    assert!(
        nonempty > queries.len() / 2,
        "too few queries matched anything: {nonempty}"
    );
}

fn corpus_lines(root: &Path, files: &[String]) -> Vec<Vec<char>> {
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        lines.extend(text.lines().map(|line| line.chars().collect::<Vec<char>>()));
    }
    lines
}
