//! Building the sources and the coordinator from the configuration, shared by every front end
//! (the `search` and `research` commands, the HTTP API).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aiex_indexer::search::QueryEmbedder;
use aiex_indexer::{CollectionKind, IndexDir, Language, Searcher};

use crate::coordinator::CoordinatorOptions;
use crate::fusion::FusionParams;
use crate::source::Source;
use crate::sources::local::LocalSource;

/// How long local results stay cached (a re-index invalidates them anyway).
pub const LOCAL_CACHE_TTL: Duration = Duration::from_secs(600);

/// Why the sources could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Index(#[from] aiex_indexer::Error),
    #[error("starting the search pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
}

/// The local sources (one per collection kind), their searchers, the CPU pool they search on, and
/// the query embedder they share.
#[derive(Clone)]
pub struct LocalSources {
    pub sources: Vec<Arc<dyn Source>>,
    pub searchers: Vec<(CollectionKind, Arc<Searcher>)>,
    pub pool: Arc<rayon::ThreadPool>,
    pub query_embedder: Arc<QueryEmbedder>,
}

impl std::fmt::Debug for LocalSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSources")
            .field(
                "sources",
                &self.sources.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl LocalSources {
    /// The searcher that holds `collection`, if any.
    pub fn searcher_of(&self, collection: &str) -> Option<&Arc<Searcher>> {
        self.searchers
            .iter()
            .map(|(_, searcher)| searcher)
            .find(|searcher| {
                searcher
                    .collection_names()
                    .iter()
                    .any(|name| name == collection)
            })
    }

    /// The languages of the collections, most chunks first.
    pub fn languages(&self) -> Vec<String> {
        let searchers: Vec<Arc<Searcher>> =
            self.searchers.iter().map(|(_, s)| Arc::clone(s)).collect();
        collection_languages(&searchers)
    }
}

/// Local sources over the collections of each kind (those in `requested`, or all), with their
/// own search pool and query model. An unknown name in `requested` is an error.
pub fn local_sources(
    config: &aiex_config::Config,
    requested: &[String],
) -> Result<LocalSources, SetupError> {
    // One query model for every source: loaded once, each query embedded once.
    let query_embedder = Arc::new(QueryEmbedder::from_config(config));
    local_sources_with(config, requested, search_pool(config)?, query_embedder, &[])
}

/// The bounded CPU pool local searches run on (`index.threads`, or one thread per core).
pub fn search_pool(config: &aiex_config::Config) -> Result<Arc<rayon::ThreadPool>, SetupError> {
    let threads = if config.index.threads == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        config.index.threads
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|index| format!("aiex-search-{index}"))
        .build()
        .map(Arc::new)
        .map_err(SetupError::from)
}

/// [`local_sources`] over a pool and query model the caller keeps (a long-lived process that
/// rebuilds its sources). Kinds in `keyword_only` are opened without vectors (their vector stores
/// are being written by this process, and a vector store has one owner at a time).
pub fn local_sources_with(
    config: &aiex_config::Config,
    requested: &[String],
    pool: Arc<rayon::ThreadPool>,
    query_embedder: Arc<QueryEmbedder>,
    keyword_only: &[CollectionKind],
) -> Result<LocalSources, SetupError> {
    // Server mode: the collection list is the registry in Qdrant, cached in the data directory.
    if let Err(err) = aiex_indexer::store::server::sync_cache(config) {
        tracing::warn!("reading the collections' registry from Qdrant: {err}");
    }
    let kinds = IndexDir::new(config.index_dir()).collection_kinds()?;
    for name in requested {
        if !kinds.iter().any(|(known, _)| known == name) {
            return Err(aiex_indexer::Error::CollectionNotFound { name: name.clone() }.into());
        }
    }
    let mut sources: Vec<Arc<dyn Source>> = Vec::new();
    let mut searchers = Vec::new();
    for kind in [CollectionKind::Code, CollectionKind::Docs] {
        let names: Vec<String> = kinds
            .iter()
            .filter(|(name, of)| *of == kind && (requested.is_empty() || requested.contains(name)))
            .map(|(name, _)| name.clone())
            .collect();
        if names.is_empty() {
            continue;
        }
        let searcher = if keyword_only.contains(&kind) {
            let mut keyword_config = config.clone();
            keyword_config.embedding.enabled = false;
            Searcher::open(&keyword_config, &names)?
        } else {
            Searcher::open(config, &names)?
        };
        let searcher = Arc::new(searcher.with_query_embedder(Arc::clone(&query_embedder)));
        searchers.push((kind, Arc::clone(&searcher)));
        sources.push(Arc::new(LocalSource::new(
            kind.name(),
            searcher,
            config.search.mode,
            Arc::clone(&pool),
            LOCAL_CACHE_TTL,
        )));
    }
    Ok(LocalSources {
        sources,
        searchers,
        pool,
        query_embedder,
    })
}

/// The languages of the collections searched, most chunks first.
pub fn collection_languages(searchers: &[Arc<Searcher>]) -> Vec<String> {
    let mut counts: HashMap<Language, usize> = HashMap::new();
    for searcher in searchers {
        for (language, chunks) in searcher.language_counts() {
            *counts.entry(language).or_default() += chunks;
        }
    }
    let mut counts: Vec<(Language, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.name().cmp(b.0.name())));
    counts
        .into_iter()
        .map(|(language, _)| language.name().to_string())
        .collect()
}

/// Deadlines, budget, fusion and cache settings from the configuration.
pub fn coordinator_options(config: &aiex_config::Config) -> CoordinatorOptions {
    let search = &config.search;
    let local = Duration::from_millis(search.local_deadline_ms);
    let mut fusion = FusionParams {
        rrf_k: search.rrf_k,
        ..FusionParams::default()
    };
    if !config.web.trusted_domains.is_empty() {
        fusion.trusted_domains = config.web.trusted_domains.clone();
    }
    CoordinatorOptions {
        budget: Duration::from_millis(search.budget_ms),
        default_deadline: Duration::from_millis(search.web_deadline_ms),
        deadlines: [("code".to_string(), local), ("docs".to_string(), local)].into(),
        fusion,
        cache_bytes: search.cache_bytes,
    }
}
