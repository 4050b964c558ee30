//! The code source over a real index: results, and cache invalidation after a re-index.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use aiex_config::SearchMode;
use aiex_indexer::{index_directory, IndexRequest, Searcher};
use aiex_search::sources::local::LocalSource;
use aiex_search::{
    CoordinatedSearch, Coordinator, CoordinatorOptions, SearchEvent, Source, SourceQuery,
};

fn merged(events: &[SearchEvent]) -> Vec<aiex_search::Hit> {
    events
        .iter()
        .find_map(|event| match event {
            SearchEvent::Merged { hits, .. } => Some(hits.clone()),
            _ => None,
        })
        .expect("merged event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_source_and_reindex_invalidation() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(data.path(), &[("embedding.enabled", "false")]);
    aiex_tests::write_files(
        repo.path(),
        &[(
            "src/lib.rs",
            "/// Shares a counter between threads.\npub fn shared_counter() -> u32 { 1 }\n",
        )],
    );
    let cancel = AtomicBool::new(false);
    index_directory(
        &config,
        IndexRequest::new(repo.path()),
        &mut |_| {},
        &cancel,
    )
    .expect("index");

    let searcher = Arc::new(Searcher::open(&config, &[]).expect("open"));
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool"),
    );
    let code: Arc<dyn Source> = Arc::new(LocalSource::new(
        "code",
        searcher,
        SearchMode::Keyword,
        pool,
        Duration::from_secs(600),
    ));
    let coordinator = Arc::new(Coordinator::new(vec![code], CoordinatorOptions::default()));
    let search = || CoordinatedSearch {
        query: SourceQuery::new("shared counter threads", 5),
        sources: vec!["code".into()],
    };
    let first = coordinator.search_all(search()).await;
    let hits = merged(&first);
    assert_eq!(hits[0].locator.path.as_deref(), Some("src/lib.rs"));
    assert_eq!(hits[0].locator.symbol.as_deref(), Some("shared_counter"));
    let cached = coordinator.search_all(search()).await;
    assert!(cached
        .iter()
        .any(|e| matches!(e, SearchEvent::Results { cached: true, .. })));

    // A re-index (new generation) invalidates the cached local results.
    aiex_tests::write_files(
        repo.path(),
        &[("src/more.rs", "/// Another counter shared between threads.\npub fn second_shared_counter() -> u32 { 2 }\n")],
    );
    index_directory(
        &config,
        IndexRequest::new(repo.path()),
        &mut |_| {},
        &cancel,
    )
    .expect("reindex");
    // Searchers check for new generations at most every 250 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = coordinator.search_all(search()).await;
    assert!(after
        .iter()
        .any(|e| matches!(e, SearchEvent::Results { cached: false, .. })));
    let paths: Vec<Option<String>> = merged(&after).into_iter().map(|h| h.locator.path).collect();
    assert!(
        paths.contains(&Some("src/more.rs".to_string())),
        "{paths:?}"
    );
}
