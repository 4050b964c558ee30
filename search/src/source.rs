//! The contract every source implements: code, docs, and each web provider.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cpu::CpuError;
use crate::hit::Hit;
use crate::web::{UnknownTimeRange, WebError};

/// A boxed future that can cross threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one source is asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceQuery {
    pub query: String,
    pub limit: usize,
    /// Local sources: collections to search (empty: all of the source's).
    pub collections: Vec<String>,
    /// Local sources: languages to keep (empty: any).
    pub languages: Vec<String>,
    /// Local sources: glob on paths.
    pub path_glob: Option<String>,
    /// Web sources: domains to keep or drop.
    pub include_domains: Vec<String>,
    pub exclude_domains: Vec<String>,
    /// Web sources: `day`, `week`, `month` or `year`.
    pub time_range: Option<String>,
    /// Web sources: the query to send instead of `query` (with its language context added).
    pub web_query: Option<String>,
    /// Local sources: the mode for this query instead of the source's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<aiex_config::SearchMode>,
}

impl SourceQuery {
    pub fn new(query: impl Into<String>, limit: usize) -> Self {
        SourceQuery {
            query: query.into(),
            limit,
            collections: Vec::new(),
            languages: Vec::new(),
            path_glob: None,
            include_domains: Vec::new(),
            exclude_domains: Vec::new(),
            time_range: None,
            web_query: None,
            mode: None,
        }
    }
}

/// Why a source produced no results.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The source cannot answer this kind of request or is not configured.
    #[error("{0}")]
    Unavailable(String),
    /// The source failed (provider error, index error, …).
    #[error("{0}")]
    Failed(String),
    /// The source answered with something unusable.
    #[error("unusable response: {0}")]
    Garbage(String),
    /// The web provider failed; a malformed answer reads as an unusable response.
    #[error("{}", web_message(.0))]
    Web(#[from] WebError),
    /// The index failed (shared, so that the error stays cheap to clone).
    #[error(transparent)]
    Index(Arc<aiex_indexer::Error>),
    /// The search work on the CPU pool did not finish.
    #[error(transparent)]
    Cpu(#[from] CpuError),
    /// The request names a time range no provider knows.
    #[error(transparent)]
    TimeRange(#[from] UnknownTimeRange),
}

fn web_message(err: &WebError) -> String {
    match err {
        WebError::Malformed { .. } => format!("unusable response: {err}"),
        _ => err.to_string(),
    }
}

impl From<aiex_indexer::Error> for SourceError {
    fn from(err: aiex_indexer::Error) -> Self {
        SourceError::Index(Arc::new(err))
    }
}

/// What a source found, and anything the user should know about how (partial vectors, a
/// fallback to keywords, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceResults {
    pub hits: Vec<Hit>,
    pub notes: Vec<String>,
}

impl From<Vec<Hit>> for SourceResults {
    fn from(hits: Vec<Hit>) -> Self {
        SourceResults {
            hits,
            notes: Vec::new(),
        }
    }
}

/// A place results come from.
pub trait Source: Send + Sync {
    /// `code`, `docs`, `web:serper`, …
    fn name(&self) -> &str;
    /// Changes whenever the source's data changes (an index generation); part of cache keys.
    fn cache_token(&self) -> String {
        String::new()
    }
    /// How long this source's results stay cached.
    fn cache_ttl(&self) -> Duration;
    /// Searches; the coordinator applies the deadline and catches panics.
    fn search<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<SourceResults, SourceError>>;
}
