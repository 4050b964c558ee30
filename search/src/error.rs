//! The crate's error: every module error of `aiex-search`, wrapped, for callers that handle them
//! together. Modules keep their own errors (a source's [`SourceError`], the web providers'
//! [`WebError`], …); this enum is what crosses the crate's boundary when a caller mixes them.

use crate::cpu::CpuError;
use crate::crawl::CrawlError;
use crate::fetch::FetchError;
use crate::setup::SetupError;
use crate::source::SourceError;
use crate::web::{UnknownTimeRange, WebError};

/// Everything that can go wrong in `aiex-search`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The index (opening collections, searching them).
    #[error(transparent)]
    Index(#[from] aiex_indexer::Error),
    /// Building the sources from the configuration.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// One source's search.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A web provider.
    #[error(transparent)]
    Web(#[from] WebError),
    /// Fetching a page.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Crawling a documentation site.
    #[error(transparent)]
    Crawl(#[from] CrawlError),
    /// Work on the CPU pool.
    #[error(transparent)]
    Cpu(#[from] CpuError),
    /// A time range that is not `day`, `week`, `month` or `year`.
    #[error(transparent)]
    TimeRange(#[from] UnknownTimeRange),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
