//! `aiex-search` owns **the query**: a coordinator that fans one query out to code, docs and web
//! sources in parallel, each with its own deadline, fuses and deduplicates their results, and caches
//! them.
//!
//! Today the code source is the indexer's read primitives ([`aiex_indexer::Searcher`]: keyword,
//! vector and hybrid search over collections), re-exported here so that callers depend on this crate
//! for searching; the coordinator, the docs and web sources and the cache build on it.

pub use aiex_indexer::search::{SearchHit, SearchRequest, SearchResults, Searcher};
