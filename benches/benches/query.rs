//! Query latency, warm: p50/p99 for keyword, vector and hybrid search over the evaluation corpus
//! (the eval queries, each run once to warm up and then measured), and RSS while serving.
//!
//! `cargo bench -p aiex-benches --bench query` (needs the index built by the retrieval benchmark,
//! or builds it).

use std::time::Instant;

use aiex_benches::{codesearch_dir, ensure_indexed, eval_queries, percentile, rss_mib};
use aiex_config::SearchMode;
use aiex_indexer::{SearchRequest, Searcher};

fn main() {
    println!(
        "query latency benchmark; machine: {}",
        aiex_benches::machine()
    );
    let corpus = codesearch_dir();
    let data_dir = aiex_benches::cache_dir().join("data-docs");
    let summary = ensure_indexed(&data_dir, &corpus.join("corpus-docs"), "codesearch-docs");
    let config = aiex_benches::config(&data_dir);
    let searcher = Searcher::open(&config, &[]).expect("open");
    let queries = eval_queries();
    println!(
        "corpus-docs: {} chunks, {} queries",
        summary.chunks,
        queries.len()
    );
    for mode in [SearchMode::Keyword, SearchMode::Vector, SearchMode::Hybrid] {
        let run = |query: &str| {
            let started = Instant::now();
            searcher
                .search(&SearchRequest::new(query, mode, 10))
                .expect("search");
            started.elapsed().as_secs_f64() * 1000.0
        };
        for query in &queries {
            run(&query.query);
        }
        let latencies: Vec<f64> = queries.iter().map(|query| run(&query.query)).collect();
        println!(
            "  {:<7} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            mode.to_string(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            percentile(&latencies, 100.0)
        );
    }
    println!("  RSS while serving: {:.0} MiB", rss_mib());
}
