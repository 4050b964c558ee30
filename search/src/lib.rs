//! `aiex-search` owns **the query**: a [`Coordinator`] fans one query out
//! to code, docs and web sources in parallel, each with its own deadline inside an overall budget,
//! streams their results as typed [`SearchEvent`]s as they arrive, fuses them
//! (weighted reciprocal rank, trusted-domain boost), deduplicates (normalised URLs, near-identical
//! text) and caches per source (moka; local entries keyed by index generation, web entries by TTL).
//!
//! Threading: the coordinator is async (tokio) and keeps each search's source tasks in one
//! `JoinSet`, so a dropped search cancels them; local sources run the indexer's blocking search
//! on a bounded rayon pool through [`cpu::run_cpu`], never on async workers.
//!
//! Errors: each module has its own (`SourceError`, `WebError`, `FetchError`, …); [`Error`]
//! wraps them all for callers that handle them together.

pub mod cache;
pub mod coordinator;
pub mod cpu;
pub mod crawl;
pub mod enhance;
pub mod error;
pub mod event;
pub mod fetch;
pub mod fusion;
pub mod hit;
pub mod setup;
pub mod source;
pub mod sources;
pub mod urlnorm;
pub mod web;

pub use aiex_indexer::search::{SearchHit, SearchRequest, SearchResults, Searcher};
pub use coordinator::{CoordinatedSearch, Coordinator, CoordinatorOptions};
pub use cpu::{run_cpu, CpuError};
pub use error::{Error, Result};
pub use event::SearchEvent;
pub use hit::{Hit, Locator};
pub use source::{Source, SourceError, SourceQuery, SourceResults};
