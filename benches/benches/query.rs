//! Query latency, warm: p50/p99 for keyword, vector and hybrid search over the evaluation corpus
//! (the eval queries, each run once to warm up and then measured), and RSS while serving.
//!
//! With a Qdrant binary or server at hand (`QDRANT_URL`, `AIEX_QDRANT_BIN`, or
//! `shared/qdrant/qdrant` next to the clone), the same collection is copied (`index --push`, no
//! re-embedding) into one Qdrant node and into a 3-node cluster (3 shards, 2 replicas), and the
//! same queries are measured in server mode, where Qdrant answers every mode.
//!
//! `cargo bench -p aiex-benches --bench query` (needs the index built by the retrieval benchmark,
//! or builds it).

use std::path::Path;
use std::time::Instant;

use aiex_benches::{codesearch_dir, ensure_indexed, eval_queries, percentile, rss_mib};
use aiex_config::SearchMode;
use aiex_indexer::{SearchRequest, Searcher};
use aiex_tests::qdrant::{QdrantCluster, TestQdrant};

const NAME: &str = "codesearch-docs";

fn main() {
    println!(
        "query latency benchmark; machine: {}",
        aiex_benches::machine()
    );
    let corpus = codesearch_dir();
    let data_dir = aiex_benches::cache_dir().join("data-docs");
    let summary = ensure_indexed(&data_dir, &corpus.join("corpus-docs"), NAME);
    let config = aiex_benches::config(&data_dir);
    let queries: Vec<String> = eval_queries().into_iter().map(|q| q.query).collect();
    println!(
        "corpus-docs: {} chunks, {} queries",
        summary.chunks,
        queries.len()
    );
    println!("embedded (tantivy + qdrant-edge, in process):");
    let searcher = Searcher::open(&config, &[]).expect("open");
    measure(&searcher, &queries);
    println!("  RSS while serving: {:.0} MiB", rss_mib());
    drop(searcher);

    if let Some(qdrant) = TestQdrant::get("the query benchmark's server mode") {
        println!("one Qdrant node ({}), loopback gRPC:", qdrant.url());
        server_mode(&data_dir, qdrant.url(), &[], &queries);
    }
    if let Some(cluster) = QdrantCluster::start(3) {
        println!(
            "3-node Qdrant cluster ({}), 3 shards x 2 replicas, loopback gRPC:",
            cluster.url()
        );
        server_mode(
            &data_dir,
            cluster.url(),
            &[
                ("vector.shard_number", "3"),
                ("vector.replication_factor", "2"),
            ],
            &queries,
        );
    }
}

/// Copies the embedded collection of `data_dir` into the Qdrant at `url` and measures the
/// queries from a node with an empty data directory.
fn server_mode(data_dir: &Path, url: &str, layout: &[(&str, &str)], queries: &[String]) {
    let mut push = vec![("vector.url", url)];
    push.extend_from_slice(layout);
    let pushed = aiex_indexer::push::push_collection(
        &aiex_tests::config(data_dir, &push),
        NAME,
        &mut |_, _| {},
    )
    .expect("push the collection");
    println!(
        "  pushed {} points in {:.1} s ({:.0} points/s, no embedding)",
        pushed.points,
        pushed.took_ms as f64 / 1000.0,
        pushed.points as f64 / (pushed.took_ms.max(1) as f64 / 1000.0)
    );
    let node = tempfile::tempdir().expect("tempdir");
    let mut settings = vec![("vector.backend", "server"), ("vector.url", url)];
    settings.extend_from_slice(layout);
    let config = aiex_tests::config(node.path(), &settings);
    let searcher = Searcher::open(&config, &[NAME.to_string()]).expect("open in server mode");
    measure(&searcher, queries);
}

/// p50, p99 and max per mode, after one warm-up pass.
fn measure(searcher: &Searcher, queries: &[String]) {
    for mode in [SearchMode::Keyword, SearchMode::Vector, SearchMode::Hybrid] {
        let run = |query: &str| {
            let started = Instant::now();
            searcher
                .search(&SearchRequest::new(query, mode, 10))
                .expect("search");
            started.elapsed().as_secs_f64() * 1000.0
        };
        for query in queries {
            run(query);
        }
        let latencies: Vec<f64> = queries.iter().map(|query| run(query)).collect();
        println!(
            "  {:<7} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            mode.to_string(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            percentile(&latencies, 100.0)
        );
    }
}
