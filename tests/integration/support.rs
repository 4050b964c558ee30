use std::path::Path;
use std::sync::atomic::AtomicBool;

use aiex_config::{Config, SearchMode};
use aiex_indexer::{
    index_directory, IndexRequest, IndexSummary, SearchHit, SearchRequest, Searcher,
};

pub fn index(config: &Config, root: &Path) -> IndexSummary {
    let cancel = AtomicBool::new(false);
    index_directory(config, IndexRequest::new(root), &mut |_| {}, &cancel)
        .expect("indexing succeeds")
}

pub fn search(config: &Config, query: &str, mode: SearchMode) -> Vec<SearchHit> {
    let searcher = Searcher::open(config, &[]).expect("open searcher");
    searcher
        .search(&SearchRequest::new(query, mode, 10))
        .expect("search succeeds")
        .hits
}

pub fn paths(hits: &[SearchHit]) -> Vec<String> {
    hits.iter().map(|hit| hit.path.clone()).collect()
}
