//! Trigrams: what the file index stores for a text, and what a pattern requires of a text.
//!
//! Both sides fold case the same way ([`fold`]), so one index serves case-sensitive and
//! case-insensitive searches (verification on the stored content decides the case). Trigrams never
//! span a line break: matches never do.
//!
//! The requirement of a pattern is computed from its HIR in the manner of Russ Cox's
//! "Regular Expression Matching with a Trigram Index": each node yields either the exact (small) set
//! of strings it can match, or a boolean query of trigrams that every match contains. The result is
//! always a necessary condition, never a sufficient one: a file that matches the pattern always
//! satisfies it.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind};

/// Largest exact set a node keeps before it is turned into a trigram query.
const MAX_EXACT_SET: usize = 64;
/// Largest class (after folding) kept as an exact set of one-character strings.
const MAX_EXACT_CLASS: usize = 8;
/// Classes with more characters than this are not even folded: they say nothing useful.
const MAX_CLASS_CHARS: u32 = 256;
/// Trigrams kept in one conjunction (any subset of a conjunction is still a necessary condition).
const MAX_AND_TRIGRAMS: usize = 24;

thread_local! {
    static FOLD_CACHE: RefCell<HashMap<char, char>> = RefCell::new(HashMap::new());
}

/// The representative of `c`'s simple case-folding class (its smallest member), so that every
/// character a case-insensitive regex treats as equal to `c` folds to the same one.
pub fn fold(c: char) -> char {
    if c.is_ascii() {
        // The smallest member of an ASCII letter's class is its upper case (`k`, `K`, KELVIN SIGN).
        return c.to_ascii_uppercase();
    }
    FOLD_CACHE.with(|cache| {
        *cache.borrow_mut().entry(c).or_insert_with(|| {
            let mut class = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
            class.case_fold_simple();
            class.ranges().first().map_or(c, |range| range.start())
        })
    })
}

/// A trigram of folded characters, packed 21 bits per character.
pub type Trigram = u64;

fn pack(a: char, b: char, c: char) -> Trigram {
    (u64::from(a) << 42) | (u64::from(b) << 21) | u64::from(c)
}

/// The term under which a trigram is indexed.
pub fn term_text(trigram: Trigram) -> String {
    let mask = (1u64 << 21) - 1;
    [trigram >> 42, (trigram >> 21) & mask, trigram & mask]
        .into_iter()
        .map(|code| char::from_u32(u32::try_from(code).unwrap_or(0)).unwrap_or('\u{fffd}'))
        .collect()
}

/// The distinct trigrams of `text` (folded, none across a line break), sorted.
pub fn text_trigrams(text: &str) -> Vec<Trigram> {
    let mut trigrams = Vec::with_capacity(text.len().min(1 << 20));
    for line in text.split('\n') {
        let mut window = ['\0'; 3];
        for (index, c) in line.chars().enumerate() {
            window = [window[1], window[2], fold(c)];
            if index >= 2 {
                trigrams.push(pack(window[0], window[1], window[2]));
            }
        }
    }
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams
}

/// The trigrams of a folded string (no line breaks in it).
fn string_trigrams(folded: &[char]) -> Vec<Trigram> {
    let mut trigrams: Vec<Trigram> = folded
        .windows(3)
        .map(|window| pack(window[0], window[1], window[2]))
        .collect();
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams
}

/// A necessary condition on the trigrams of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrigramQuery {
    /// No condition: every file is a candidate.
    All,
    Trigram(Trigram),
    And(Vec<TrigramQuery>),
    Or(Vec<TrigramQuery>),
}

impl TrigramQuery {
    fn and(parts: Vec<TrigramQuery>) -> TrigramQuery {
        let mut flat = Vec::new();
        for part in parts {
            match part {
                TrigramQuery::All => {}
                TrigramQuery::And(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        flat.dedup();
        match flat.len() {
            0 => TrigramQuery::All,
            1 => flat.pop().unwrap_or(TrigramQuery::All),
            _ => TrigramQuery::And(flat),
        }
    }

    fn or(parts: Vec<TrigramQuery>) -> TrigramQuery {
        let mut flat = Vec::new();
        for part in parts {
            match part {
                TrigramQuery::All => return TrigramQuery::All,
                TrigramQuery::Or(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        flat.dedup();
        match flat.len() {
            0 => TrigramQuery::All,
            1 => flat.pop().unwrap_or(TrigramQuery::All),
            _ => TrigramQuery::Or(flat),
        }
    }

    /// Whether a file with these (sorted) trigrams satisfies the condition.
    pub fn matches(&self, trigrams: &[Trigram]) -> bool {
        match self {
            TrigramQuery::All => true,
            TrigramQuery::Trigram(trigram) => trigrams.binary_search(trigram).is_ok(),
            TrigramQuery::And(parts) => parts.iter().all(|part| part.matches(trigrams)),
            TrigramQuery::Or(parts) => parts.iter().any(|part| part.matches(trigrams)),
        }
    }

    /// Whether the condition narrows anything.
    pub fn is_all(&self) -> bool {
        matches!(self, TrigramQuery::All)
    }
}

/// What is known about the strings a node matches (folded).
struct Info {
    /// Every match is one of these strings.
    exact: Option<BTreeSet<Vec<char>>>,
    /// Every match satisfies this (when `exact` is `None`).
    query: TrigramQuery,
}

impl Info {
    fn exact(strings: BTreeSet<Vec<char>>) -> Info {
        Info {
            exact: Some(strings),
            query: TrigramQuery::All,
        }
    }

    fn empty_string() -> Info {
        Info::exact(BTreeSet::from([Vec::new()]))
    }

    fn anything() -> Info {
        Info {
            exact: None,
            query: TrigramQuery::All,
        }
    }

    fn into_query(self) -> TrigramQuery {
        match self.exact {
            Some(strings) => exact_query(&strings),
            None => self.query,
        }
    }
}

/// A string set as a query: one of the strings occurs.
fn exact_query(strings: &BTreeSet<Vec<char>>) -> TrigramQuery {
    let mut alternatives = Vec::with_capacity(strings.len());
    for string in strings {
        if string.len() < 3 {
            return TrigramQuery::All;
        }
        let mut trigrams = string_trigrams(string);
        if trigrams.len() > MAX_AND_TRIGRAMS {
            // Evenly spread, so the kept trigrams still cover the whole string.
            let step = trigrams.len() as f64 / MAX_AND_TRIGRAMS as f64;
            trigrams = (0..MAX_AND_TRIGRAMS)
                .map(|index| trigrams[(index as f64 * step) as usize])
                .collect();
        }
        alternatives.push(TrigramQuery::and(
            trigrams.into_iter().map(TrigramQuery::Trigram).collect(),
        ));
    }
    TrigramQuery::or(alternatives)
}

/// The trigram condition every match of `hir` satisfies.
pub fn hir_query(hir: &Hir) -> TrigramQuery {
    analyze(hir).into_query()
}

fn analyze(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::empty_string(),
        HirKind::Literal(literal) => match std::str::from_utf8(&literal.0) {
            Ok(text) => Info::exact(BTreeSet::from([text.chars().map(fold).collect()])),
            Err(_) => Info::anything(),
        },
        HirKind::Class(class) => class_info(class),
        HirKind::Repetition(repetition) => {
            if repetition.min == 0 {
                return Info::anything();
            }
            let sub = analyze(&repetition.sub);
            if repetition.min == 1 && repetition.max == Some(1) {
                return sub;
            }
            Info {
                exact: None,
                query: sub.into_query(),
            }
        }
        HirKind::Capture(capture) => analyze(&capture.sub),
        HirKind::Concat(subs) => concat_info(subs),
        HirKind::Alternation(subs) => {
            let infos: Vec<Info> = subs.iter().map(analyze).collect();
            let all_exact = infos.iter().all(|info| info.exact.is_some());
            let total: usize = infos
                .iter()
                .map(|info| info.exact.as_ref().map_or(0, BTreeSet::len))
                .sum();
            if all_exact && total <= MAX_EXACT_SET {
                let union = infos.into_iter().filter_map(|info| info.exact).flatten();
                return Info::exact(union.collect());
            }
            Info {
                exact: None,
                query: TrigramQuery::or(infos.into_iter().map(Info::into_query).collect()),
            }
        }
    }
}

fn class_info(class: &Class) -> Info {
    let chars: Vec<char> = match class {
        Class::Unicode(unicode) => {
            let size: u32 = unicode
                .ranges()
                .iter()
                .map(|range| u32::from(range.end()) - u32::from(range.start()) + 1)
                .sum();
            if size > MAX_CLASS_CHARS {
                return Info::anything();
            }
            unicode
                .ranges()
                .iter()
                .flat_map(|range| range.start()..=range.end())
                .collect()
        }
        Class::Bytes(bytes) => {
            if bytes.ranges().iter().any(|range| range.end() > 0x7f) {
                return Info::anything();
            }
            bytes
                .ranges()
                .iter()
                .flat_map(|range| range.start()..=range.end())
                .map(char::from)
                .collect()
        }
    };
    let folded: BTreeSet<Vec<char>> = chars.into_iter().map(|c| vec![fold(c)]).collect();
    if folded.is_empty() || folded.len() > MAX_EXACT_CLASS {
        return Info::anything();
    }
    Info::exact(folded)
}

fn concat_info(subs: &[Hir]) -> Info {
    let mut parts: Vec<TrigramQuery> = Vec::new();
    let mut current: BTreeSet<Vec<char>> = BTreeSet::from([Vec::new()]);
    let mut all_exact = true;
    for sub in subs {
        let info = analyze(sub);
        match info.exact {
            Some(strings) if current.len() * strings.len() <= MAX_EXACT_SET => {
                current = current
                    .iter()
                    .flat_map(|prefix| {
                        strings.iter().map(move |suffix| {
                            let mut joined = prefix.clone();
                            joined.extend(suffix);
                            joined
                        })
                    })
                    .collect();
            }
            Some(strings) => {
                all_exact = false;
                parts.push(exact_query(&current));
                current = strings;
            }
            None => {
                all_exact = false;
                parts.push(exact_query(&current));
                parts.push(info.query);
                current = BTreeSet::from([Vec::new()]);
            }
        }
    }
    if all_exact {
        return Info::exact(current);
    }
    parts.push(exact_query(&current));
    Info {
        exact: None,
        query: TrigramQuery::and(parts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pattern: &str) -> TrigramQuery {
        let hir = regex_syntax::Parser::new()
            .parse(pattern)
            .expect("valid pattern");
        hir_query(&hir)
    }

    #[test]
    fn folding_is_one_class_per_case_orbit() {
        assert_eq!(fold('k'), fold('K'));
        assert_eq!(fold('\u{212a}'), fold('k'));
        assert_eq!(fold('ſ'), fold('s'));
        assert_eq!(fold('é'), fold('É'));
        assert_ne!(fold('a'), fold('b'));
    }

    #[test]
    fn literals_need_all_their_trigrams() {
        let TrigramQuery::And(parts) = query("parse") else {
            panic!("a conjunction")
        };
        assert_eq!(parts.len(), 3);
        assert!(query("ab").is_all());
        assert!(query(r"\w+").is_all());
        assert!(matches!(query("foo|barbaz"), TrigramQuery::Or(_)));
        assert!(!query(r"fn\s+parse_\w+").is_all());
        assert!(!query("(?i)hello").is_all());
    }

    #[test]
    fn text_trigrams_skip_line_breaks() {
        let trigrams = text_trigrams("ab\ncd");
        assert!(trigrams.is_empty());
        assert_eq!(text_trigrams("abcd").len(), 2);
    }
}
