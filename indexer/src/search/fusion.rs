//! Fusing the keyword and vector rankings of a hybrid search (`search.fusion`).
//!
//! - `relative`: each side's scores are scaled to 0..1 between the side's worst and best
//!   candidate and summed by weight. A side whose best hit stands far above the others (a query
//!   that quotes the code or its documentation) outweighs a side whose candidates score alike, and
//!   a candidate both sides rank well beats one that only one side ranks first.
//! - `rrf`: reciprocal rank, `weight / (rrf_k + rank)` per side; the scores are not looked at.

use std::collections::HashMap;

use aiex_config::{Fusion, SearchConfig};

use super::by_rank;
use super::literal::LITERAL_BONUS;
use crate::document::Chunk;

/// Scored chunks with their collection's name.
pub(crate) type Ranked = Vec<(f32, Chunk, String)>;

/// The fusion method, its reciprocal-rank constant and the weight of each side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FusionParams {
    pub(crate) method: Fusion,
    pub(crate) rrf_k: f32,
    pub(crate) keyword_weight: f32,
    pub(crate) vector_weight: f32,
}

impl FusionParams {
    pub(crate) fn from_config(search: &SearchConfig) -> Self {
        FusionParams {
            method: search.fusion,
            rrf_k: search.rrf_k,
            keyword_weight: search.keyword_weight,
            vector_weight: search.vector_weight,
        }
    }

    /// What each entry of one side's ranking (its scores, best first) adds to the entry's fused
    /// score, for a side of weight `weight` that was asked for `requested` candidates. A side that
    /// gave fewer has no other match: the chunks it left out score nothing on it, so its scale
    /// starts at 0 rather than at its worst candidate.
    pub(crate) fn contributions(&self, scores: &[f32], weight: f32, requested: usize) -> Vec<f32> {
        match self.method {
            Fusion::Rrf => rrf_scores(scores.len(), self.rrf_k, weight).collect(),
            Fusion::Relative => {
                let finite = || scores.iter().copied().filter(|score| score.is_finite());
                let mut low = finite().fold(f32::INFINITY, f32::min);
                if scores.len() < requested {
                    low = low.min(0.0);
                }
                let high = finite().fold(f32::NEG_INFINITY, f32::max);
                scores
                    .iter()
                    .map(|&score| {
                        let scaled = if !score.is_finite() {
                            0.0
                        } else if high > low {
                            (score - low) / (high - low)
                        } else {
                            // One candidate, or all alike: each is this side's best.
                            1.0
                        };
                        weight * scaled
                    })
                    .collect()
            }
        }
    }

    /// The keyword side's contribution for its first place: the unit of the symbol and literal
    /// boosts, so that they weigh the same against either method.
    pub(crate) fn keyword_first_place(&self) -> f32 {
        match self.method {
            Fusion::Rrf => self.keyword_weight / (self.rrf_k + 1.0),
            Fusion::Relative => self.keyword_weight,
        }
    }

    /// What a hybrid hit gains per literal of the query (a quoted phrase, an identifier) it holds
    /// ([`super::literal`]): half of a keyword first place, with either method.
    pub(crate) fn literal_bonus(&self) -> f32 {
        LITERAL_BONUS * self.keyword_first_place()
    }

    /// `keyword` and `vector` (each best first, each asked for `limit` candidates) fused, the
    /// best `limit` kept. A hybrid search without vectors passes an empty `vector`: the keyword
    /// side is then scored as its part of the fusion.
    pub(crate) fn fuse(&self, keyword: Ranked, vector: Ranked, limit: usize) -> Ranked {
        let sides = [(keyword, self.keyword_weight), (vector, self.vector_weight)];
        let mut fused: HashMap<(String, u64), (f32, Chunk)> = HashMap::new();
        for (side, weight) in sides {
            let scores: Vec<f32> = side.iter().map(|(score, _, _)| *score).collect();
            let contributions = self.contributions(&scores, weight, limit);
            for ((_, chunk, collection), contribution) in side.into_iter().zip(contributions) {
                fused
                    .entry((collection, chunk.id))
                    .and_modify(|entry| entry.0 += contribution)
                    .or_insert((contribution, chunk));
            }
        }
        let mut fused: Ranked = fused
            .into_iter()
            .map(|((collection, _), (score, chunk))| (score, chunk, collection))
            .collect();
        fused.sort_by(by_rank);
        fused.truncate(limit);
        fused
    }
}

/// Reciprocal-rank scores `weight / (k + rank)` for ranks 1, 2, … (at most `n`).
fn rrf_scores(n: usize, k: f32, weight: f32) -> impl Iterator<Item = f32> {
    (1..=n).map(move |rank| weight / (k + rank as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkKind;
    use crate::lang::Language;

    fn chunk(id: u64) -> Chunk {
        Chunk {
            id,
            collection: "c".into(),
            path: format!("f{id}.rs"),
            language: Language::Rust,
            kind: ChunkKind::Function,
            symbol: Some(format!("f{id}")),
            parent: None,
            start_line: 1,
            end_line: 1,
            text: String::new(),
            hash: String::new(),
        }
    }

    fn ranked(entries: &[(f32, u64)]) -> Ranked {
        entries
            .iter()
            .map(|&(score, id)| (score, chunk(id), "c".to_string()))
            .collect()
    }

    fn ids(fused: &Ranked) -> Vec<u64> {
        fused.iter().map(|(_, chunk, _)| chunk.id).collect()
    }

    fn params(method: Fusion, keyword_weight: f32) -> FusionParams {
        FusionParams {
            method,
            rrf_k: 5.0,
            keyword_weight,
            vector_weight: 1.0,
        }
    }

    #[test]
    fn relative_scores_span_each_side_between_its_worst_and_best() {
        let fusion = params(Fusion::Relative, 1.0);
        assert_eq!(
            fusion.contributions(&[9.0, 5.0, 1.0], 2.0, 3),
            [2.0, 1.0, 0.0]
        );
        // Candidates alike: each is the side's best.
        assert_eq!(fusion.contributions(&[0.5, 0.5], 1.5, 2), [1.5, 1.5]);
        assert!(fusion.contributions(&[], 1.0, 3).is_empty());
        assert_eq!(
            fusion.contributions(&[f32::NAN, 2.0, 1.0], 1.0, 3),
            [0.0, 1.0, 0.0]
        );
        // Fewer candidates than asked for: the scale starts at 0, as every chunk left out scores
        // nothing on this side.
        assert_eq!(fusion.contributions(&[8.0, 2.0], 1.0, 50), [1.0, 0.25]);
        assert_eq!(fusion.contributions(&[3.0], 1.0, 50), [1.0]);
    }

    #[test]
    fn a_standout_keyword_match_outweighs_a_flat_vector_side_but_not_an_agreement() {
        // Keyword: chunk 1 far ahead (a verbatim match). Vector: four chunks nearly alike, 2
        // first and 1 fourth.
        let keyword = ranked(&[(30.0, 1), (6.0, 3), (5.0, 2), (4.0, 4)]);
        let vector = ranked(&[(0.62, 2), (0.61, 3), (0.60, 4), (0.59, 1), (0.30, 5)]);
        let relative = params(Fusion::Relative, 1.0).fuse(keyword.clone(), vector.clone(), 10);
        assert_eq!(ids(&relative)[0], 1);
        // Reciprocal rank sees only the places: 2 (third and first) beats 1 (first and fourth).
        let rrf = params(Fusion::Rrf, 1.0).fuse(keyword, vector, 10);
        assert_eq!(ids(&rrf)[0], 2);

        // Each side's first barely ahead of its second: chunk 2, a close second on both, wins.
        let keyword = ranked(&[(5.1, 1), (5.0, 2), (1.0, 3)]);
        let vector = ranked(&[(0.70, 3), (0.69, 2), (0.30, 1)]);
        let fused = params(Fusion::Relative, 1.0).fuse(keyword, vector, 2);
        assert_eq!(ids(&fused), [2, 1]);
    }

    #[test]
    fn weights_scale_each_side_and_the_boost_unit_follows_the_method() {
        let keyword = ranked(&[(10.0, 1), (0.0, 2)]);
        let vector = ranked(&[(0.9, 2), (0.1, 1)]);
        assert_eq!(
            ids(&params(Fusion::Relative, 1.5).fuse(keyword.clone(), vector.clone(), 2)),
            [1, 2]
        );
        assert_eq!(
            ids(&params(Fusion::Relative, 0.5).fuse(keyword, vector, 2)),
            [2, 1]
        );
        assert_eq!(params(Fusion::Relative, 1.5).keyword_first_place(), 1.5);
        assert!((params(Fusion::Rrf, 1.5).keyword_first_place() - 0.25).abs() < 1e-6);
        assert_eq!(params(Fusion::Relative, 1.5).literal_bonus(), 0.75);
        assert!((params(Fusion::Rrf, 1.5).literal_bonus() - 0.125).abs() < 1e-6);
        // Without vectors, the keyword side scored as its part of the fusion.
        let alone =
            params(Fusion::Relative, 1.5).fuse(ranked(&[(4.0, 1), (2.0, 2)]), Vec::new(), 50);
        assert_eq!(
            alone.iter().map(|(s, _, _)| *s).collect::<Vec<_>>(),
            [1.5, 0.75]
        );
    }
}
