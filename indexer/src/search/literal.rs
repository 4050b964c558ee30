//! The hybrid mode's literal-match boost. A query that quotes a phrase (`"open the shard"`) or
//! names an identifier (`parse_config`, `HashMap::new`, `serdeJson`, `self.cache`) asks for that
//! text verbatim: among the fused candidates, a chunk that holds it ranks above chunks that only
//! share its words. Identifiers match case-sensitively; a quoted phrase with smart case
//! (insensitive unless it has an upper-case letter), as exact search does.

use crate::document::Chunk;

/// Added to a hybrid hit's fused score per literal of the query its text holds, as a share of what
/// a first place on the keyword side adds ([`super::fusion::FusionParams::keyword_first_place`]).
pub(super) const LITERAL_BONUS: f32 = 0.5;

/// Text a query asks for verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Literal {
    text: String,
    /// Compare lower-cased (the literal is already lower case).
    fold_case: bool,
}

impl Literal {
    /// Whether `text` (or, for a case-folded literal, `lower`, its lower-case form) holds it.
    fn held_by(&self, text: &str, lower: &str) -> bool {
        if self.fold_case {
            lower.contains(&self.text)
        } else {
            text.contains(&self.text)
        }
    }
}

/// The quoted phrases and identifiers of `query`, each once.
pub(super) fn query_literals(query: &str) -> Vec<Literal> {
    let mut literals = Vec::new();
    let mut add = |literal: Literal| {
        if !literal.text.is_empty() && !literals.contains(&literal) {
            literals.push(literal);
        }
    };
    let mut rest = query;
    while let Some(open) = rest.find('"') {
        for word in rest[..open].split_whitespace() {
            if let Some(identifier) = identifier(word) {
                add(identifier);
            }
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else {
            // An unclosed quote: the rest is words.
            rest = after;
            continue;
        };
        let phrase = after[..close].trim();
        let fold_case = !phrase.chars().any(char::is_uppercase);
        add(Literal {
            text: if fold_case {
                phrase.to_lowercase()
            } else {
                phrase.to_string()
            },
            fold_case,
        });
        rest = &after[close + 1..];
    }
    for word in rest.split_whitespace() {
        if let Some(identifier) = identifier(word) {
            add(identifier);
        }
    }
    literals
}

/// `word` as an identifier literal: letters, digits and `_`, joined by `::` or `.`, with an
/// underscore, a path separator or an inner capital (`parseConfig`, `HashMap`); a plain word
/// (`parse`, `Parser`) is left to the keyword side.
fn identifier(word: &str) -> Option<Literal> {
    let word = word.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_'));
    let parts: Vec<&str> = word.split("::").flat_map(|part| part.split('.')).collect();
    let well_formed = parts.iter().all(|part| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|first| first.is_alphabetic() || first == '_')
            && chars.all(|c| c.is_alphanumeric() || c == '_')
    });
    if !well_formed {
        return None;
    }
    let inner_capital = word
        .chars()
        .zip(word.chars().skip(1))
        .any(|(before, after)| before.is_lowercase() && after.is_uppercase());
    let joined = parts.len() > 1;
    let snake = word.trim_matches('_').contains('_');
    (inner_capital || joined || snake).then(|| Literal {
        text: word.to_string(),
        fold_case: false,
    })
}

/// Adds `bonus` to each candidate's score per literal its text holds.
pub(super) fn boost(ranked: &mut [(f32, Chunk, String)], literals: &[Literal], bonus: f32) {
    if literals.is_empty() {
        return;
    }
    let folds = literals.iter().any(|literal| literal.fold_case);
    for (score, chunk, _) in ranked.iter_mut() {
        // Lower-cased once per chunk, and only when a literal folds case.
        let lower = if folds {
            chunk.text.to_lowercase()
        } else {
            String::new()
        };
        let held = literals
            .iter()
            .filter(|literal| literal.held_by(&chunk.text, &lower))
            .count();
        *score += bonus * held as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(query: &str) -> Vec<String> {
        query_literals(query).into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn phrases_and_identifiers_are_literals_plain_words_are_not() {
        assert_eq!(
            texts(r#"where is parse_config "Open the Shard" called"#),
            vec!["parse_config", "Open the Shard"]
        );
        assert_eq!(
            texts("HashMap::new self.cache serdeJson"),
            vec!["HashMap::new", "self.cache", "serdeJson"]
        );
        assert!(texts("how does the parser read a table").is_empty());
        assert!(texts("Parser _private 42 a::").is_empty());
        assert_eq!(
            texts(r#""open the shard" "open the shard""#),
            vec!["open the shard"]
        );
        // An unclosed quote leaves words.
        assert_eq!(texts(r#""unclosed read_file"#), vec!["read_file"]);
        assert_eq!(texts("call `parse_config()`,"), vec!["parse_config"]);
    }

    #[test]
    fn phrases_use_smart_case_identifiers_exact_case() {
        let lower = &query_literals(r#""open the shard""#)[0];
        assert!(lower.held_by("", "fn f() { // open the shard first"));
        let upper = &query_literals(r#""Open the shard""#)[0];
        assert!(!upper.held_by("open the shard", "open the shard"));
        let identifier = &query_literals("parse_config")[0];
        assert!(identifier.held_by("let x = parse_config(path);", ""));
        assert!(!identifier.held_by("let x = Parse_Config(path);", "let x = parse_config(path);"));
    }

    #[test]
    fn chunks_holding_the_literal_rank_first() {
        let chunk = |path: &str, text: &str| Chunk {
            id: 1,
            collection: "c".to_string(),
            path: path.to_string(),
            language: crate::lang::Language::Rust,
            symbol: None,
            kind: crate::chunk::ChunkKind::Function,
            parent: None,
            start_line: 1,
            end_line: 1,
            hash: String::new(),
            text: text.to_string(),
        };
        let mut ranked = vec![
            (
                1.0 / 61.0,
                chunk("a.rs", "fn parse(config: &str) {} // parse the config"),
                "c".to_string(),
            ),
            (
                1.0 / 62.0,
                chunk("b.rs", "let settings = parse_config(path);"),
                "c".to_string(),
            ),
        ];
        boost(&mut ranked, &query_literals("parse_config"), 0.5 / 61.0);
        assert!(ranked[1].0 > ranked[0].0, "{ranked:?}");
    }
}
