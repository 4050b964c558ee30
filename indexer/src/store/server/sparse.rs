//! BM25 as a Qdrant sparse vector: the keyword side of server mode.
//!
//! A chunk's terms are the code tokens tantivy indexes ([`TokenMode::Index`]: whole words, their
//! parts and their stems, lowercased), hashed to `u32` indices. The client computes each term's
//! BM25 term-frequency part, per field (content, symbol, parent, path) with the keyword index's
//! field boosts, summed; the server multiplies by the term's inverse document frequency (the `idf`
//! modifier on the sparse vector's configuration), over every point of the Qdrant collection. A
//! query is its terms
//! ([`weighted_terms`](crate::store::keyword::weighted_terms)) with their weights (1 for the
//! query's own words), so a point's score is `Σ weight(term) · idf(term) · tf-part(term)`: BM25,
//! weighted as the keyword index weighs the same terms.

use std::collections::HashMap;

use crate::document::Chunk;
use crate::store::keyword::{QueryTerm, FIELD_BOOSTS, TYPICAL_TOKENS};
use crate::tokenizer::{for_each_code_token, TokenMode};

/// Name of the sparse vector in every Qdrant collection Aiex creates.
pub const SPARSE_VECTOR: &str = "bm25";

/// BM25's term-frequency saturation.
const K1: f32 = 1.2;
/// BM25's length normalisation.
const B: f32 = 0.75;

/// The index of a term: the first four bytes of its blake3 hash (stable across versions and
/// platforms; collisions only merge two rare terms).
pub fn term_index(term: &str) -> u32 {
    let hash = blake3::hash(term.as_bytes());
    let bytes = hash.as_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Term counts of `text` and its number of tokens.
fn term_counts(text: &str) -> (HashMap<String, u32>, usize) {
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut total = 0usize;
    for_each_code_token(text, TokenMode::Index, |token| {
        total += 1;
        *counts.entry(token.text).or_default() += 1;
    });
    (counts, total)
}

/// The saturated term frequency of BM25 for `count` occurrences in a field of `length` tokens.
fn saturated(count: u32, length: usize, average: f32) -> f32 {
    let tf = count as f32;
    let norm = K1 * (1.0 - B + B * length as f32 / average);
    tf * (K1 + 1.0) / (tf + norm)
}

/// The document side: sorted, unique indices and their BM25 weights (without idf).
pub fn document_vector(
    content: &str,
    symbol: Option<&str>,
    parent: Option<&str>,
    path: &str,
) -> (Vec<u32>, Vec<f32>) {
    let fields = [
        (content, TYPICAL_TOKENS.content, FIELD_BOOSTS.content),
        (
            symbol.unwrap_or(""),
            TYPICAL_TOKENS.symbol,
            FIELD_BOOSTS.symbol,
        ),
        (
            parent.unwrap_or(""),
            TYPICAL_TOKENS.parent,
            FIELD_BOOSTS.parent,
        ),
        (path, TYPICAL_TOKENS.path, FIELD_BOOSTS.path),
    ];
    let mut weights: HashMap<u32, f32> = HashMap::new();
    for (text, average, boost) in fields {
        if text.is_empty() {
            continue;
        }
        let (counts, length) = term_counts(text);
        for (term, count) in counts {
            *weights.entry(term_index(&term)).or_default() +=
                boost * saturated(count, length, average);
        }
    }
    sorted(weights)
}

/// The sparse vector of a chunk.
pub fn chunk_vector(chunk: &Chunk) -> (Vec<u32>, Vec<f32>) {
    document_vector(
        &chunk.text,
        chunk.symbol.as_deref(),
        chunk.parent.as_deref(),
        &chunk.path,
    )
}

/// The query side: one index per distinct query term, with the term's weight (the server applies
/// idf; two terms that hash alike keep the larger weight). Empty when the query has no term.
pub fn query_vector(terms: &[QueryTerm]) -> (Vec<u32>, Vec<f32>) {
    let mut weights: HashMap<u32, f32> = HashMap::new();
    for term in terms {
        let weight = weights.entry(term_index(&term.text)).or_default();
        *weight = weight.max(term.weight);
    }
    sorted(weights)
}

fn sorted(weights: HashMap<u32, f32>) -> (Vec<u32>, Vec<f32>) {
    let mut pairs: Vec<(u32, f32)> = weights.into_iter().collect();
    pairs.sort_unstable_by_key(|&(index, _)| index);
    pairs.into_iter().unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::abbreviations::ABBREVIATION_WEIGHT;
    use crate::store::keyword::keyword_query;

    fn weight_of(vector: &(Vec<u32>, Vec<f32>), term: &str) -> f32 {
        let index = term_index(term);
        vector
            .0
            .iter()
            .position(|&i| i == index)
            .map_or(0.0, |at| vector.1[at])
    }

    #[test]
    fn documents_carry_whole_words_and_parts_with_field_boosts() {
        let vector = document_vector(
            "fn parse_toml_table(input: &str) { parse(input) }",
            Some("parse_toml_table"),
            None,
            "src/config.rs",
        );
        assert!(vector.0.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        assert_eq!(vector.0.len(), vector.1.len());
        for term in [
            "parse_toml_table",
            "parse",
            "toml",
            "table",
            "input",
            "config",
        ] {
            assert!(weight_of(&vector, term) > 0.0, "{term}");
        }
        // The symbol's boost outweighs a body-only term of the same count.
        assert!(weight_of(&vector, "toml") > weight_of(&vector, "input"));
        // Saturation: more occurrences weigh more, but less than proportionally.
        let once = document_vector("alpha beta", None, None, "");
        let thrice = document_vector("alpha alpha alpha beta", None, None, "");
        let (w1, w3) = (weight_of(&once, "alpha"), weight_of(&thrice, "alpha"));
        assert!(w3 > w1 && w3 < 3.0 * w1, "{w1} {w3}");
    }

    #[test]
    fn queries_are_their_distinct_content_terms() {
        let vector = query_vector(&keyword_query("how to parse the TOML table parse", false));
        let mut expected: Vec<u32> = ["parse", "~pars", "toml", "~toml", "table", "~tabl"]
            .iter()
            .map(|t| term_index(t))
            .collect();
        expected.sort_unstable();
        assert_eq!(vector.0, expected);
        assert!(vector.1.iter().all(|&w| w == 1.0));
        assert!(query_vector(&keyword_query("", false)).0.is_empty());
    }

    #[test]
    fn abbreviations_weigh_what_the_keyword_index_gives_them() {
        let vector = query_vector(&keyword_query("the length of the buffer", true));
        assert_eq!(weight_of(&vector, "buffer"), 1.0);
        assert_eq!(weight_of(&vector, "buf"), ABBREVIATION_WEIGHT);
        assert_eq!(weight_of(&vector, "len"), ABBREVIATION_WEIGHT);
    }
}
