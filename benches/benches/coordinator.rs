//! The search coordinator: per-source and end-to-end latency with code (+ docs when a docs set is
//! indexed), cache hits, time to first results beside a slow web source (150±50 ms, simulated:
//! no provider is reachable from here), and throughput at 1/8/64 concurrent queries.
//!
//! `scripts/setup --with-rust-doc && cargo bench -p aiex-benches --bench coordinator` (uses the
//! index of the retrieval benchmark, and adds the Rust book as a documentation set).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiex_benches::{codesearch_dir, ensure_indexed, eval_queries, percentile, EvalQuery};
use aiex_config::SearchMode;
use aiex_indexer::search::QueryEmbedder;
use aiex_indexer::{CollectionKind, IndexDir, Searcher};
use aiex_search::source::BoxFuture;
use aiex_search::sources::local::LocalSource;
use aiex_search::{
    CoordinatedSearch, Coordinator, CoordinatorOptions, Hit, SearchEvent, Source, SourceError,
    SourceQuery, SourceResults,
};

/// A web source that answers after 100–200 ms, like a search API on a good day.
struct SimulatedWeb;

impl Source for SimulatedWeb {
    fn name(&self) -> &str {
        "web:simulated"
    }

    fn cache_ttl(&self) -> Duration {
        Duration::from_secs(3600)
    }

    fn search<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<SourceResults, SourceError>> {
        Box::pin(async move {
            let jitter = query.query.len() as u64 * 7919 % 100;
            tokio::time::sleep(Duration::from_millis(100 + jitter)).await;
            let hits = (0..5)
                .map(|n| {
                    let url = format!("https://example.test/{}/{n}", query.query.len());
                    let snippet = format!("{} {n}", query.query);
                    Hit::web("web:simulated", &url, &format!("result {n}"), &snippet, 1.0)
                })
                .collect::<Vec<_>>();
            Ok(SourceResults::from(hits))
        })
    }
}

fn main() {
    println!(
        "coordinator benchmark; machine: {}",
        aiex_benches::machine()
    );
    let corpus = codesearch_dir();
    let data_dir = aiex_benches::cache_dir().join("data-docs");
    ensure_indexed(&data_dir, &corpus.join("corpus-docs"), "codesearch-docs");
    match aiex_benches::rust_book() {
        Some(book) => {
            let summary = aiex_benches::ensure_docs_indexed(&data_dir, &book, "rust-book");
            println!("docs: the Rust book, {} chunks", summary.chunks);
        }
        None => println!("docs: none (run `scripts/setup --with-rust-doc` to add the Rust book)"),
    }
    let config = aiex_benches::config(&data_dir);
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool"),
    );
    let index_dir = IndexDir::new(config.index_dir());
    let mut locals: Vec<Arc<dyn Source>> = Vec::new();
    let query_embedder = Arc::new(QueryEmbedder::from_config(&config));
    for kind in [CollectionKind::Code, CollectionKind::Docs] {
        let names = index_dir.collection_names_of(kind).expect("names");
        if names.is_empty() {
            continue;
        }
        let searcher = Arc::new(
            Searcher::open(&config, &names)
                .expect("open")
                .with_query_embedder(Arc::clone(&query_embedder)),
        );
        locals.push(Arc::new(LocalSource::new(
            kind.name(),
            searcher,
            SearchMode::Hybrid,
            Arc::clone(&pool),
            Duration::from_secs(600),
        )));
    }
    let local_names: Vec<String> = locals.iter().map(|s| s.name().to_string()).collect();
    println!("local sources: {}", local_names.join(", "));
    let mut sources = locals.clone();
    sources.push(Arc::new(SimulatedWeb));
    let options = CoordinatorOptions {
        cache_bytes: 0,
        ..CoordinatorOptions::default()
    };
    let uncached = Arc::new(Coordinator::new(locals.clone(), options.clone()));
    let cached = Arc::new(Coordinator::new(locals, CoordinatorOptions::default()));
    let with_web = Arc::new(Coordinator::new(sources, options));
    let queries = eval_queries();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let search = |query: &str| CoordinatedSearch {
            query: SourceQuery::new(query, 10),
            sources: Vec::new(),
        };
        // Warm up: model, caches of the OS and of the stores.
        for query in queries.iter().take(50) {
            uncached.search_all(search(&query.query)).await;
        }
        let mut end_to_end = Vec::new();
        let mut per_source: HashMap<String, Vec<f64>> = HashMap::new();
        // Retrieval quality of the code source's own list and of the fused list (code + docs).
        let mut code_only = Mrr::default();
        let mut fused = Mrr::default();
        for query in &queries {
            let started = Instant::now();
            let events = uncached.search_all(search(&query.query)).await;
            end_to_end.push(started.elapsed().as_secs_f64() * 1000.0);
            for event in events {
                match event {
                    SearchEvent::Results { source, took_ms, hits, .. } => {
                        if source == "code" {
                            code_only.add(rank_of_answer(query, &hits));
                        }
                        per_source.entry(source).or_default().push(took_ms);
                    }
                    SearchEvent::Merged { hits, .. } => fused.add(rank_of_answer(query, &hits)),
                    _ => {}
                }
            }
        }
        println!("\nlocal sources, no cache ({} queries):", queries.len());
        let mut names: Vec<&String> = per_source.keys().collect();
        names.sort();
        for name in names {
            let values = &per_source[name];
            println!("  {name:<6} p50 {:.2} ms  p99 {:.2} ms", percentile(values, 50.0), percentile(values, 99.0));
        }
        println!("  end-to-end p50 {:.2} ms  p99 {:.2} ms", percentile(&end_to_end, 50.0), percentile(&end_to_end, 99.0));
        println!("retrieval (top 10): code source alone {}; fused list (all local sources) {}", code_only.row(), fused.row());

        for query in &queries {
            cached.search_all(search(&query.query)).await;
        }
        let mut hits_latency = Vec::new();
        for query in &queries {
            let started = Instant::now();
            cached.search_all(search(&query.query)).await;
            hits_latency.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "cache hit (all sources cached): p50 {:.3} ms  p99 {:.3} ms  hit ratio {:.2}",
            percentile(&hits_latency, 50.0),
            percentile(&hits_latency, 99.0),
            cached.cache_stats().hit_ratio()
        );

        let mut first_results = Vec::new();
        let mut with_web_total = Vec::new();
        for query in queries.iter().take(100) {
            let started = Instant::now();
            let mut receiver = with_web.search(search(&query.query));
            let mut first = None;
            while let Some(event) = receiver.recv().await {
                if first.is_none() && matches!(event, SearchEvent::Results { .. }) {
                    first = Some(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            first_results.push(first.unwrap_or(f64::NAN));
            with_web_total.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "with a 150±50 ms web source: first results p50 {:.2} ms p99 {:.2} ms; end-to-end p50 {:.2} ms p99 {:.2} ms",
            percentile(&first_results, 50.0),
            percentile(&first_results, 99.0),
            percentile(&with_web_total, 50.0),
            percentile(&with_web_total, 99.0)
        );

        for concurrency in [1usize, 8, 64] {
            let total = 256usize;
            let started = Instant::now();
            let mut handles = Vec::new();
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for _ in 0..concurrency {
                let coordinator = Arc::clone(&uncached);
                let next = Arc::clone(&next);
                let queries: Vec<String> = queries.iter().map(|q| q.query.clone()).collect();
                handles.push(tokio::spawn(async move {
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if index >= total {
                            break;
                        }
                        let query = &queries[index % queries.len()];
                        coordinator
                            .search_all(CoordinatedSearch {
                                query: SourceQuery::new(query.as_str(), 10),
                                sources: Vec::new(),
                            })
                            .await;
                    }
                }));
            }
            for handle in handles {
                handle.await.expect("task");
            }
            let seconds = started.elapsed().as_secs_f64();
            println!("throughput at {concurrency:>2} concurrent: {:.0} queries/s (uncached)", total as f64 / seconds);
        }
    });
}

/// Mean reciprocal rank and recall of the answer within the top 10.
#[derive(Default)]
struct Mrr {
    queries: usize,
    reciprocal_rank: f64,
    hits_at_1: usize,
    hits_at_10: usize,
}

impl Mrr {
    fn add(&mut self, rank: Option<usize>) {
        self.queries += 1;
        if let Some(rank) = rank.filter(|rank| *rank <= 10) {
            self.reciprocal_rank += 1.0 / rank as f64;
            self.hits_at_1 += usize::from(rank == 1);
            self.hits_at_10 += 1;
        }
    }

    fn row(&self) -> String {
        let n = self.queries.max(1) as f64;
        format!(
            "MRR@10 {:.3} R@1 {:.3} R@10 {:.3}",
            self.reciprocal_rank / n,
            self.hits_at_1 as f64 / n,
            self.hits_at_10 as f64 / n
        )
    }
}

/// 1-based rank of the first code hit that contains the answer line in the answer file.
fn rank_of_answer(query: &EvalQuery, hits: &[Hit]) -> Option<usize> {
    hits.iter()
        .position(|hit| {
            hit.locator.source == "code"
                && hit.locator.path.as_deref() == Some(query.path.as_str())
                && hit
                    .locator
                    .start_line
                    .is_some_and(|start| start <= query.line)
                && hit.locator.end_line.is_some_and(|end| query.line <= end)
        })
        .map(|index| index + 1)
}
