//! The code-aware tokenizer used by the keyword index.
//!
//! Source code names things with `camelCase`, `PascalCase`, `snake_case`, `SCREAMING_CASE`, paths
//! (`src/store/keyword.rs`, `std::sync::Arc`) and punctuation. A prose tokenizer would index
//! `parseTomlTable` as one opaque term, so a search for "parse toml table" would miss it. This
//! tokenizer emits, for each word, the whole word lowercased **and** its parts, so both
//! `parsetomltable` and `parse`, `toml`, `table` are indexed. Parts take consecutive positions starting
//! at the word's position, which lets a phrase "toml table" match inside an identifier.
//!
//! A description says "decodes the next codepoint" where the code says `decode_next`: each word
//! and part of plain lowercase letters is also emitted as its English stem, at the same position
//! and marked with [`STEM_PREFIX`] (`~decod`). Queries carry both too, so a word spelt as in the
//! code scores twice (its spelling and its stem) and another form of it once.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Version of the tokens the index holds: bump it when a change here indexes words differently,
/// so that existing collections are indexed again by their next run (2: stems).
pub const TOKENIZER_VERSION: u32 = 2;

/// Name under which the tokenizer is registered in the tantivy index.
pub const CODE_TOKENIZER: &str = "aiex_code";

/// Terms longer than this (in bytes) are dropped: they are noise (base64 blobs, hashes) and only
/// bloat the term dictionary.
pub const MAX_TERM_BYTES: usize = 64;

/// One token: byte range in the input, position and lowercased text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeToken {
    pub offset_from: usize,
    pub offset_to: usize,
    pub position: usize,
    pub text: String,
}

impl CodeToken {
    /// Whether this is a word's stem ([`STEM_PREFIX`]) rather than the word as written.
    pub fn is_stem(&self) -> bool {
        self.text.starts_with(STEM_PREFIX)
    }
}

/// Whether the whole word is emitted next to its parts (indexing) or only the parts (queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    /// Whole word and its parts: what documents are indexed with.
    Index,
    /// Parts only, or the whole word when it has a single part: what queries are made of.
    Query,
}

/// Splits `text` into code tokens.
pub fn code_tokens(text: &str, mode: TokenMode) -> Vec<CodeToken> {
    let mut tokens = Vec::new();
    for_each_code_token(text, mode, |token| tokens.push(token));
    tokens
}

/// Streams the code tokens of `text` to `sink` without collecting them.
pub fn for_each_code_token(text: &str, mode: TokenMode, mut sink: impl FnMut(CodeToken)) {
    let mut position = 0usize;
    let mut parts: Vec<(usize, usize)> = Vec::new();
    for (word_start, word) in words(text) {
        word_parts(word, &mut parts);
        let emit_whole = mode == TokenMode::Index || parts.len() <= 1;
        if emit_whole && word.len() <= MAX_TERM_BYTES {
            // A word of several parts is stemmed part by part, not whole.
            let stemmed = parts.len() <= 1;
            emit(&mut sink, word_start, word, position, stemmed);
        }
        if parts.len() > 1 {
            for (index, &(from, to)) in parts.iter().enumerate() {
                if to - from <= MAX_TERM_BYTES {
                    emit(
                        &mut sink,
                        word_start + from,
                        &word[from..to],
                        position + index,
                        true,
                    );
                }
            }
        }
        position += parts.len().max(1);
    }
}

/// Sends `word` lowercased, then its stem when `stemmed` and it has one.
fn emit(
    sink: &mut impl FnMut(CodeToken),
    offset_from: usize,
    word: &str,
    position: usize,
    stemmed: bool,
) {
    let text = word.to_lowercase();
    let stem = if stemmed { stem_of(&text) } else { None };
    let offset_to = offset_from + word.len();
    sink(CodeToken {
        offset_from,
        offset_to,
        position,
        text,
    });
    if let Some(stem) = stem {
        sink(CodeToken {
            offset_from,
            offset_to,
            position,
            text: stem,
        });
    }
}

/// Marks a stem token; never part of a word, so a stem is never mistaken for one.
pub const STEM_PREFIX: char = '~';

/// Shortest word that is stemmed.
const MIN_STEMMED_BYTES: usize = 3;

/// The English stem of a lowercase ASCII word, marked with [`STEM_PREFIX`]: `decodes`, `decoded`
/// and `decoding` all give `~decod`. Words that are not plain lowercase ASCII letters (numbers,
/// `utf8`, other scripts) have none.
fn stem_of(word: &str) -> Option<String> {
    thread_local! {
        static STEMMER: rust_stemmers::Stemmer =
            rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
    }
    if word.len() < MIN_STEMMED_BYTES || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let mut stem = String::with_capacity(word.len() + 1);
    stem.push(STEM_PREFIX);
    STEMMER.with(|stemmer| stem.push_str(&stemmer.stem(word)));
    Some(stem)
}

/// Maximal runs of alphanumeric characters and underscores, with their byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest_start = 0usize;
    std::iter::from_fn(move || {
        let rest = &text[rest_start..];
        let begin = rest.find(is_word_char)?;
        let after_begin = &rest[begin..];
        let len = after_begin
            .find(|c: char| !is_word_char(c))
            .unwrap_or(after_begin.len());
        let start = rest_start + begin;
        rest_start = start + len;
        Some((start, &text[start..start + len]))
    })
    .filter(|(_, word)| word.chars().any(char::is_alphanumeric))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CharClass {
    Lower,
    Upper,
    Digit,
    Other,
}

fn class_of(c: char) -> CharClass {
    if c.is_lowercase() {
        CharClass::Lower
    } else if c.is_uppercase() {
        CharClass::Upper
    } else if c.is_numeric() {
        CharClass::Digit
    } else {
        CharClass::Other
    }
}

/// Splits one word at underscores and case changes: `parseHTTPHeader_v2` → `parse`, `HTTP`,
/// `Header`, `v2`. Digits stay attached to what precedes them (`utf8`, `sha256`, `u64`).
fn word_parts(word: &str, parts: &mut Vec<(usize, usize)>) {
    parts.clear();
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut start: Option<usize> = None;
    for (index, &(offset, c)) in chars.iter().enumerate() {
        if c == '_' {
            if let Some(from) = start.take() {
                parts.push((from, offset));
            }
            continue;
        }
        let Some(from) = start else {
            start = Some(offset);
            continue;
        };
        let previous = class_of(chars[index - 1].1);
        let current = class_of(c);
        let next = chars.get(index + 1).map(|&(_, n)| class_of(n));
        let boundary = match (previous, current) {
            // parseTable: lower (or digit) followed by upper.
            (CharClass::Lower | CharClass::Digit, CharClass::Upper) => true,
            // HTTPServer: the last upper of a run starts a new part when a lower follows.
            (CharClass::Upper, CharClass::Upper) => next == Some(CharClass::Lower),
            _ => false,
        };
        if boundary {
            parts.push((from, offset));
            start = Some(offset);
        }
    }
    if let Some(from) = start {
        parts.push((from, word.len()));
    }
}

/// The tantivy tokenizer: [`code_tokens`] in [`TokenMode::Index`].
#[derive(Clone, Default)]
pub struct CodeTokenizer {
    tokens: Vec<Token>,
}

impl Tokenizer for CodeTokenizer {
    type TokenStream<'a> = CodeTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CodeTokenStream<'a> {
        self.tokens.clear();
        for_each_code_token(text, TokenMode::Index, |token| {
            self.tokens.push(Token {
                offset_from: token.offset_from,
                offset_to: token.offset_to,
                position: token.position,
                text: token.text,
                position_length: 1,
            });
        });
        CodeTokenStream {
            tokens: &mut self.tokens,
            cursor: None,
        }
    }
}

/// Token stream over the tokens computed by [`CodeTokenizer`].
pub struct CodeTokenStream<'a> {
    tokens: &'a mut Vec<Token>,
    cursor: Option<usize>,
}

impl TokenStream for CodeTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let next = self.cursor.map_or(0, |cursor| cursor + 1);
        self.cursor = Some(next);
        next < self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.cursor.unwrap_or(0)]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.cursor.unwrap_or(0)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The words as written, stems left out.
    fn texts(text: &str, mode: TokenMode) -> Vec<String> {
        code_tokens(text, mode)
            .into_iter()
            .filter(|t| !t.is_stem())
            .map(|t| t.text)
            .collect()
    }

    fn stems(text: &str, mode: TokenMode) -> Vec<String> {
        code_tokens(text, mode)
            .into_iter()
            .filter(CodeToken::is_stem)
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn word_forms_share_a_stem_beside_their_spelling() {
        let all: Vec<String> = code_tokens("Decodes decode_next", TokenMode::Index)
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(
            all,
            [
                "decodes",
                "~decod",
                "decode_next",
                "decode",
                "~decod",
                "next",
                "~next"
            ]
        );
        assert_eq!(
            stems("decoding decoded", TokenMode::Query),
            ["~decod", "~decod"]
        );
        // A stem stands at its word's position, over the same bytes.
        let tokens = code_tokens("the tables", TokenMode::Query);
        assert_eq!(tokens[3].text, "~tabl");
        assert_eq!(
            (
                tokens[3].position,
                tokens[3].offset_from,
                tokens[3].offset_to
            ),
            (
                tokens[2].position,
                tokens[2].offset_from,
                tokens[2].offset_to
            )
        );
        // No stems for numbers, mixed words, short words or whole identifiers of several parts.
        assert!(stems("utf8 2024 of éléments", TokenMode::Index).is_empty());
        assert_eq!(stems("parseTables", TokenMode::Index), ["~pars", "~tabl"]);
    }

    #[test]
    fn splits_identifiers_and_keeps_originals() {
        assert_eq!(
            texts("parseTomlTable", TokenMode::Index),
            ["parsetomltable", "parse", "toml", "table"]
        );
        assert_eq!(
            texts("parse_toml_table", TokenMode::Index),
            ["parse_toml_table", "parse", "toml", "table"]
        );
        assert_eq!(
            texts("HTTPServer::new", TokenMode::Index),
            ["httpserver", "http", "server", "new"]
        );
        assert_eq!(texts("utf8_decode", TokenMode::Query), ["utf8", "decode"]);
        assert_eq!(
            texts("src/store/keyword.rs", TokenMode::Index),
            ["src", "store", "keyword", "rs"]
        );
        assert_eq!(texts("MAX_LEN", TokenMode::Query), ["max", "len"]);
        assert_eq!(texts("__init__", TokenMode::Index), ["__init__"]);
    }

    #[test]
    fn positions_let_phrases_match_inside_identifiers() {
        let tokens = code_tokens("let x = parseTomlTable(y)", TokenMode::Index);
        let position_of = |text: &str| {
            tokens
                .iter()
                .find(|t| t.text == text)
                .map(|t| t.position)
                .expect("token present")
        };
        assert_eq!(position_of("toml") + 1, position_of("table"));
        assert_eq!(position_of("parsetomltable"), position_of("parse"));
        assert_eq!(position_of("y"), position_of("table") + 1);
    }

    #[test]
    fn drops_overlong_terms() {
        let blob = "a".repeat(200);
        assert!(texts(&blob, TokenMode::Index).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn offsets_are_valid_and_text_matches(text in "[a-zA-Z0-9_ ./:éß-]{0,40}") {
            for token in code_tokens(&text, TokenMode::Index) {
                prop_assert!(token.offset_from < token.offset_to);
                prop_assert!(text.is_char_boundary(token.offset_from));
                prop_assert!(text.is_char_boundary(token.offset_to));
                if !token.is_stem() {
                    prop_assert_eq!(token.text.clone(), text[token.offset_from..token.offset_to].to_lowercase());
                }
                prop_assert!(!token.text.is_empty());
                prop_assert!(!token.text.contains(' '));
            }
        }

        #[test]
        fn query_tokens_are_a_subset_of_index_tokens(text in "[a-zA-Z0-9_ ]{0,40}") {
            let index: std::collections::HashSet<String> = code_tokens(&text, TokenMode::Index).into_iter().map(|t| t.text).collect();
            for token in code_tokens(&text, TokenMode::Query).into_iter().map(|t| t.text) {
                prop_assert!(index.contains(&token));
            }
        }

        #[test]
        fn positions_never_decrease(text in "\\PC{0,60}") {
            let tokens = code_tokens(&text, TokenMode::Index);
            for pair in tokens.windows(2) {
                prop_assert!(pair[0].position <= pair[1].position);
            }
        }

        #[test]
        fn snake_and_camel_spellings_share_parts(a in "[a-z]{1,8}", b in "[a-z]{1,8}") {
            let camel = format!("{a}{}{}", b[..1].to_uppercase(), &b[1..]);
            let snake = format!("{a}_{b}");
            prop_assert_eq!(texts(&camel, TokenMode::Query), texts(&snake, TokenMode::Query));
        }
    }
}
