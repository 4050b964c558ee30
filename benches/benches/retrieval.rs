//! Retrieval quality on the public code-search evaluation set: MRR@10, Recall@1 and Recall@10 for
//! keyword, vector and hybrid search, on both corpus variants (with and without documentation),
//! split by language, with query latency.
//!
//! `cargo bench -p aiex-benches --bench retrieval` (indexes are cached under ~/.cache/aiex/bench).

use std::collections::BTreeMap;
use std::time::Instant;

use aiex_benches::{codesearch_dir, ensure_indexed, eval_queries, percentile, EvalQuery};
use aiex_config::SearchMode;
use aiex_indexer::{SearchRequest, Searcher};

#[derive(Default)]
struct Scores {
    queries: usize,
    reciprocal_rank: f64,
    hits_at_1: usize,
    hits_at_10: usize,
}

impl Scores {
    fn add(&mut self, rank: Option<usize>) {
        self.queries += 1;
        if let Some(rank) = rank {
            self.reciprocal_rank += 1.0 / rank as f64;
            self.hits_at_1 += usize::from(rank == 1);
            self.hits_at_10 += 1;
        }
    }

    fn row(&self) -> String {
        let n = self.queries.max(1) as f64;
        format!(
            "MRR@10 {:.3}  R@1 {:.3}  R@10 {:.3}  (n={})",
            self.reciprocal_rank / n,
            self.hits_at_1 as f64 / n,
            self.hits_at_10 as f64 / n,
            self.queries
        )
    }
}

fn main() {
    let corpus = codesearch_dir();
    let queries = eval_queries();
    println!(
        "retrieval on {} queries; machine: {}",
        queries.len(),
        aiex_benches::machine()
    );
    for variant in ["docs", "nodocs"] {
        let data_dir = aiex_benches::cache_dir().join(format!("data-{variant}"));
        let root = corpus.join(format!("corpus-{variant}"));
        let summary = ensure_indexed(&data_dir, &root, &format!("codesearch-{variant}"));
        let config = aiex_benches::config(&data_dir);
        let searcher = Searcher::open(&config, &[]).expect("open");
        println!(
            "\ncorpus-{variant}: {} files, {} chunks",
            summary.unchanged + summary.changed,
            summary.chunks
        );
        for mode in [SearchMode::Keyword, SearchMode::Vector, SearchMode::Hybrid] {
            let mut overall = Scores::default();
            let mut by_language: BTreeMap<String, Scores> = BTreeMap::new();
            let mut latencies = Vec::with_capacity(queries.len());
            for query in &queries {
                let request = SearchRequest::new(query.query.clone(), mode, 10);
                let started = Instant::now();
                let results = searcher.search(&request).expect("search");
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                let rank = rank_of_answer(query, &results.hits);
                overall.add(rank);
                by_language.entry(query.lang.clone()).or_default().add(rank);
            }
            println!(
                "  {:<7} {}  latency p50 {:.2} ms p99 {:.2} ms",
                mode.to_string(),
                overall.row(),
                percentile(&latencies, 50.0),
                percentile(&latencies, 99.0)
            );
            for (language, scores) in &by_language {
                println!("    {language:<7} {}", scores.row());
            }
        }
        // How fusion parameters move hybrid quality (the defaults are the first row). A vector
        // store has one owner at a time: close this searcher before opening others.
        drop(searcher);
        println!("  hybrid fusion sweep (rrf_k, keyword_weight, vector_weight):");
        for (k, keyword_weight, vector_weight) in FUSION_SWEEP {
            let config = aiex_tests::config(
                &data_dir,
                &[
                    ("search.rrf_k", k),
                    ("search.keyword_weight", keyword_weight),
                    ("search.vector_weight", vector_weight),
                ],
            );
            let searcher = Searcher::open(&config, &[]).expect("open");
            let mut scores = Scores::default();
            for query in &queries {
                let request = SearchRequest::new(query.query.clone(), SearchMode::Hybrid, 10);
                let results = searcher.search(&request).expect("search");
                scores.add(rank_of_answer(query, &results.hits));
            }
            println!(
                "    k={k:<3} kw={keyword_weight:<4} vec={vector_weight:<4} {}",
                scores.row()
            );
        }
    }
}

const FUSION_SWEEP: [(&str, &str, &str); 6] = [
    ("60", "1.0", "1.0"),
    ("20", "1.0", "1.0"),
    ("60", "1.0", "1.5"),
    ("60", "1.5", "1.0"),
    ("10", "1.0", "1.0"),
    ("20", "1.0", "1.5"),
];

/// 1-based rank of the first hit that contains the answer line in the answer file.
fn rank_of_answer(query: &EvalQuery, hits: &[aiex_indexer::SearchHit]) -> Option<usize> {
    hits.iter()
        .position(|hit| {
            hit.path == query.path && hit.start_line <= query.line && query.line <= hit.end_line
        })
        .map(|index| index + 1)
}
