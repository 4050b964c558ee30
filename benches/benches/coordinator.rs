//! The search coordinator: per-source and end-to-end latency with code (+ docs when a docs set is
//! indexed), cache hits, time to first results beside a slow web source (150±50 ms, simulated:
//! no provider is reachable from here), and throughput at 1/8/64 concurrent queries.
//!
//! `scripts/setup --with-rust-doc && cargo bench -p aiex-benches --bench coordinator` (uses the
//! index of the retrieval benchmark, and adds the Rust book as a documentation set).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiex_benches::{codesearch_dir, ensure_indexed, eval_queries, percentile};
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
        for query in &queries {
            let started = Instant::now();
            let events = uncached.search_all(search(&query.query)).await;
            end_to_end.push(started.elapsed().as_secs_f64() * 1000.0);
            for event in events {
                if let SearchEvent::Results { source, took_ms, .. } = event {
                    per_source.entry(source).or_default().push(took_ms);
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
