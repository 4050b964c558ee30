//! Retrieval quality on the public code-search evaluation set: MRR@10, Recall@1 and Recall@10 for
//! keyword, vector and hybrid search, on both corpus variants (with and without documentation),
//! split by language, with query latency.
//!
//! When a Qdrant server is at hand (`QDRANT_URL`, or the binary that the tests start), the same
//! collection is copied into it (`index --push`: the same dense vectors, the keyword side as Qdrant's
//! BM25 sparse vectors) and MRR@10 of each mode in server mode is printed beside the embedded
//! figure, with the difference.
//!
//! Three sets: the public one (`../shared/eval`), a second one built the same way from other code
//! (`benches/eval/build-set.sh second`), so that a change is seen on both, and a third, held out
//! (`build-set.sh third`), on which what was chosen on the first two is checked. `AIEX_EVAL_SETS`
//! (`public,second,third`, the default) picks sets and `AIEX_BENCH_MODES`
//! (`keyword,vector,hybrid`) modes: with keyword alone nothing is embedded.
//!
//! `cargo bench -p aiex-benches --bench retrieval` (indexes are cached under ~/.cache/aiex/bench).

use std::collections::BTreeMap;
use std::time::Instant;

use aiex_benches::{codesearch_dir, percentile, EvalQuery};
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

    fn mrr(&self) -> f64 {
        self.reciprocal_rank / self.queries.max(1) as f64
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

/// The comma-separated values of `var`, or `default` when unset.
fn main() {
    let modes: Vec<SearchMode> =
        aiex_benches::picked("AIEX_BENCH_MODES", &["keyword", "vector", "hybrid"])
            .iter()
            .map(|mode| mode.parse().expect("a search mode"))
            .collect();
    let keyword_only = modes.iter().all(|mode| *mode == SearchMode::Keyword);
    let qdrant = if keyword_only {
        None
    } else {
        aiex_tests::qdrant::TestQdrant::get("the retrieval benchmark's server mode")
    };
    println!("retrieval; machine: {}", aiex_benches::machine());
    for set in aiex_benches::picked("AIEX_EVAL_SETS", &["public", "second", "third"]) {
        let (corpus, prefix) = match set.as_str() {
            "public" => (codesearch_dir(), "codesearch"),
            "second" | "third" => (aiex_benches::own_set_dir(&set), set.as_str()),
            other => panic!("unknown evaluation set {other}: public, second or third"),
        };
        let queries = aiex_benches::queries_in(&corpus);
        println!("\n== {set} set: {} queries ==", queries.len());
        run_set(&corpus, prefix, &queries, &modes, qdrant.as_ref());
    }
}

fn run_set(
    corpus: &std::path::Path,
    prefix: &str,
    queries: &[EvalQuery],
    modes: &[SearchMode],
    qdrant: Option<&aiex_tests::qdrant::TestQdrant>,
) {
    let keyword_only = modes.iter().all(|mode| *mode == SearchMode::Keyword);
    for variant in ["docs", "nodocs"] {
        // The public set's indexes keep their first names (`data-docs`, `codesearch-docs`),
        // which the other benchmarks share.
        let (data_dir, name) = match prefix {
            "codesearch" => (format!("data-{variant}"), format!("codesearch-{variant}")),
            _ => (
                format!("data-{prefix}-{variant}"),
                format!("{prefix}-{variant}"),
            ),
        };
        let data_dir = aiex_benches::cache_dir().join(data_dir);
        let root = corpus.join(format!("corpus-{variant}"));
        let summary = aiex_benches::ensure_indexed_with(&data_dir, &root, &name, !keyword_only);
        let config = aiex_benches::config(&data_dir);
        let searcher = Searcher::open(&config, &[]).expect("open");
        println!(
            "\ncorpus-{variant}: {} files, {} chunks",
            summary.unchanged + summary.changed,
            summary.chunks
        );
        if summary.chunks_written > 0 {
            print_indexing_rate(&summary);
        }
        let mut embedded_mrr = Vec::new();
        for &mode in modes {
            let mut overall = Scores::default();
            let mut by_language: BTreeMap<String, Scores> = BTreeMap::new();
            let mut latencies = Vec::with_capacity(queries.len());
            for query in queries {
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
            embedded_mrr.push((mode, overall.mrr()));
        }
        // A vector store has one owner at a time: close this searcher before opening others (the
        // push reads the embedded vectors).
        drop(searcher);
        if let Some(qdrant) = qdrant {
            compare_server(qdrant.url(), &name, &data_dir, queries, &embedded_mrr);
        }
        if !modes.contains(&SearchMode::Hybrid) {
            continue;
        }
        // How fusion parameters move hybrid quality (the defaults are the first row).
        println!("  hybrid fusion sweep (fusion, rrf_k, keyword_weight, vector_weight):");
        for (fusion, k, keyword_weight, vector_weight) in FUSION_SWEEP {
            let config = aiex_tests::config(
                &data_dir,
                &[
                    ("search.fusion", fusion),
                    ("search.rrf_k", k),
                    ("search.keyword_weight", keyword_weight),
                    ("search.vector_weight", vector_weight),
                ],
            );
            let searcher = Searcher::open(&config, &[]).expect("open");
            let mut scores = Scores::default();
            for query in queries {
                let request = SearchRequest::new(query.query.clone(), SearchMode::Hybrid, 10);
                let results = searcher.search(&request).expect("search");
                scores.add(rank_of_answer(query, &results.hits));
            }
            println!(
                "    {fusion:<8} k={k:<3} kw={keyword_weight:<4} vec={vector_weight:<4} {}",
                scores.row()
            );
        }
    }
}

/// What this run indexed and how fast: chunks per second overall, and through the embedder.
fn print_indexing_rate(summary: &aiex_indexer::IndexSummary) {
    let per_second = |count: usize, ms: u64| count as f64 * 1000.0 / ms.max(1) as f64;
    let timings = &summary.timings;
    print!(
        "  indexed now: {} chunks in {:.1} s ({:.0} chunks/s)",
        summary.chunks_written,
        timings.total_ms as f64 / 1000.0,
        per_second(summary.chunks_written, timings.total_ms)
    );
    if summary.embedded > 0 {
        print!(
            "; embedded {} in {:.1} s ({:.1} chunks/s)",
            summary.embedded,
            timings.embed_ms as f64 / 1000.0,
            per_second(summary.embedded, timings.embed_ms)
        );
    }
    println!();
}

/// Copies the embedded collection of `embedded_dir` into the server (`index --push`) and prints
/// each mode's MRR@10 in server mode, from a node with an empty data directory, beside the
/// embedded one.
fn compare_server(
    url: &str,
    name: &str,
    embedded_dir: &std::path::Path,
    queries: &[EvalQuery],
    embedded: &[(SearchMode, f64)],
) {
    let name = name.to_string();
    aiex_indexer::push::push_collection(
        &aiex_tests::config(embedded_dir, &[("vector.url", url)]),
        &name,
        &mut |_, _| {},
    )
    .expect("push the collection");
    let node = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(
        node.path(),
        &[("vector.backend", "server"), ("vector.url", url)],
    );
    // Only this collection: the server's registry lists every collection indexed into it.
    let searcher = Searcher::open(&config, &[name]).expect("open");
    println!("  server mode (Qdrant at {url}) beside embedded:");
    for &(mode, embedded_mrr) in embedded {
        let mut scores = Scores::default();
        let mut latencies = Vec::with_capacity(queries.len());
        for query in queries {
            let request = SearchRequest::new(query.query.clone(), mode, 10);
            let started = Instant::now();
            let results = searcher.search(&request).expect("search");
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            scores.add(rank_of_answer(query, &results.hits));
        }
        println!(
            "    {:<7} MRR@10 server {:.3}  embedded {:.3}  diff {:+.3}  latency p50 {:.2} ms \
             p99 {:.2} ms",
            mode.to_string(),
            scores.mrr(),
            embedded_mrr,
            scores.mrr() - embedded_mrr,
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0)
        );
    }
}

const FUSION_SWEEP: [(&str, &str, &str, &str); 7] = [
    ("relative", "5", "1.5", "1.0"),
    ("relative", "5", "1.0", "1.0"),
    ("relative", "5", "1.25", "1.0"),
    ("relative", "5", "2.0", "1.0"),
    ("rrf", "5", "1.0", "1.0"),
    ("rrf", "10", "1.0", "1.0"),
    ("rrf", "5", "1.5", "1.0"),
];

/// 1-based rank of the first hit that contains the answer line in the answer file.
fn rank_of_answer(query: &EvalQuery, hits: &[aiex_indexer::SearchHit]) -> Option<usize> {
    hits.iter()
        .position(|hit| {
            hit.path == query.path && hit.start_line <= query.line && query.line <= hit.end_line
        })
        .map(|index| index + 1)
}
