//! The HTTP API's search engine: local sources over the index, the web sources from the
//! configuration, and the coordinator over them (options and languages from
//! `aiex_search::setup`, as the CLI's `search`). Through `setup::local_sources_with`, a build
//! reuses the process's query model and search pool ([`EngineParts`]), since the API rebuilds the engine
//! when collections appear and around its own indexing runs, and can search a kind by keywords
//! only while a collection of that kind is being written (its vector store has one owner).

use std::sync::Arc;

use aiex_indexer::search::QueryEmbedder;
use aiex_indexer::{CollectionKind, Language};
use aiex_search::enhance::{enhance, Enhancement};
use aiex_search::setup::{
    coordinator_options, local_sources_with, search_pool, LocalSources, SetupError,
};
use aiex_search::sources::web::WebSource;
use aiex_search::web::WebError;
use aiex_search::{CoordinatedSearch, Coordinator, Source, SourceQuery};

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Index(#[from] aiex_indexer::Error),
    #[error("configuring web search: {0}")]
    Web(#[from] WebError),
    #[error("starting the search pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
    /// The blocking task that builds the engine panicked or was cancelled.
    #[error("building the search engine: {0}")]
    Build(#[from] tokio::task::JoinError),
}

impl From<SetupError> for EngineError {
    fn from(err: SetupError) -> Self {
        match err {
            SetupError::Index(err) => EngineError::Index(err),
            SetupError::Pool(err) => EngineError::Pool(err),
        }
    }
}

/// What the engine is built over, and the parts that outlive one build.
#[derive(Clone)]
pub struct EngineParts {
    /// Shared by every build: one model in memory per process.
    pub query_embedder: Arc<QueryEmbedder>,
    /// Shared by every build: the bounded pool of local searches.
    pub pool: Arc<rayon::ThreadPool>,
}

impl EngineParts {
    pub fn new(config: &aiex_config::Config) -> Result<Self, EngineError> {
        Ok(EngineParts {
            query_embedder: Arc::new(QueryEmbedder::from_config(config)),
            pool: search_pool(config)?,
        })
    }
}

/// A coordinator over the sources of the index and the web.
pub struct SearchEngine {
    pub coordinator: Arc<Coordinator>,
    /// The local sources, their searchers (one per collection kind that has collections), the
    /// pool and the query model.
    pub local: LocalSources,
    /// Collections searched, with their kind.
    pub collections: Vec<(String, CollectionKind)>,
    /// Whether a web source is configured.
    pub has_web: bool,
}

impl std::fmt::Debug for SearchEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchEngine")
            .field("coordinator", &self.coordinator)
            .field("collections", &self.collections)
            .finish()
    }
}

/// One search as a user asks it (CLI flags or an HTTP request body).
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub query: String,
    /// Source names; empty means every source.
    pub sources: Vec<String>,
    pub collections: Vec<String>,
    pub languages: Vec<String>,
    pub path_glob: Option<String>,
    pub limit: usize,
    pub include_domains: Vec<String>,
    pub exclude_domains: Vec<String>,
    pub since: Option<String>,
    /// Local sources: keyword, vector or hybrid instead of `search.mode`.
    pub mode: Option<aiex_config::SearchMode>,
}

impl SearchEngine {
    /// Opens the collections named in `requested` (all when empty) as one local source per kind,
    /// adds the configured web sources, and starts a coordinator over them.
    ///
    /// Kinds in `keyword_only` are searched without vectors: their vector stores are being written
    /// by an indexing run of this process, and a vector store has one owner at a time.
    /// Blocking (opens indexes): call it from a blocking context in async code.
    pub fn build(
        config: &aiex_config::Config,
        parts: &EngineParts,
        requested: &[String],
        keyword_only: &[CollectionKind],
    ) -> Result<Self, EngineError> {
        let local = local_sources_with(
            config,
            requested,
            Arc::clone(&parts.pool),
            Arc::clone(&parts.query_embedder),
            keyword_only,
        )?;
        let collections = local
            .searchers
            .iter()
            .flat_map(|(kind, searcher)| {
                searcher
                    .collection_names()
                    .into_iter()
                    .map(|name| (name, *kind))
            })
            .collect();
        let mut sources: Vec<Arc<dyn Source>> = local.sources.clone();
        let web = WebSource::from_config(config)?;
        let has_web = web.is_some();
        if let Some(web) = web {
            sources.push(Arc::new(web));
        }
        Ok(SearchEngine {
            coordinator: Arc::new(Coordinator::new(sources, coordinator_options(config))),
            local,
            collections,
            has_web,
        })
    }

    /// The languages of the collections searched, most chunks first.
    pub fn collection_languages(&self) -> Vec<String> {
        self.local.languages()
    }

    /// The coordinated search for `params`, with the query enhanced for web sources (their
    /// language context from the request, the query, or the collections). `with_languages`
    /// forces computing the collections' languages even without a web source (for `--explain`).
    pub fn prepare(
        &self,
        params: &SearchParams,
        with_languages: bool,
    ) -> (CoordinatedSearch, Enhancement) {
        let languages = if self.has_web || with_languages {
            self.collection_languages()
        } else {
            Vec::new()
        };
        let enhancement = enhance(&params.query, &params.languages, &languages);
        let mut query = SourceQuery::new(params.query.clone(), params.limit);
        query.collections = params.collections.clone();
        query.languages = params.languages.clone();
        query.path_glob = params.path_glob.clone();
        query.include_domains = params.include_domains.clone();
        query.exclude_domains = params.exclude_domains.clone();
        query.time_range = params.since.clone();
        query.mode = params.mode;
        query.web_query = Some(enhancement.web_query.clone());
        let search = CoordinatedSearch {
            query,
            sources: params.sources.clone(),
        };
        (search, enhancement)
    }
}

/// Checks language names against the languages the indexer knows.
pub fn check_languages(names: &[String]) -> Result<(), String> {
    for name in names {
        if Language::from_name(name).is_none() {
            let known: Vec<&str> = Language::all().iter().map(|l| l.name()).collect();
            return Err(format!(
                "unknown language `{name}` (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// The source names a search may ask for: the local kinds, and the web (`web` selects every
/// configured provider).
pub const SOURCE_NAMES: [&str; 6] = [
    "code",
    "docs",
    "web",
    "web:serper",
    "web:tavily",
    "web:searxng",
];

/// The time ranges of web results.
pub const SINCE_VALUES: [&str; 4] = ["day", "week", "month", "year"];

/// Why a search's input is refused: a stable code (the API's error code) and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub code: &'static str,
    pub message: String,
}

/// Checks a search's languages, source names, time range and path glob, the same for the
/// command line and the API: input that cannot mean anything is refused, never ignored. (A
/// source that is valid but not configured, such as `web` without a provider, degrades instead.)
pub fn check_search_input(
    languages: &[String],
    sources: &[String],
    since: Option<&str>,
    path_glob: Option<&str>,
) -> Result<(), InputError> {
    check_languages(languages).map_err(|message| InputError {
        code: "unknown_language",
        message,
    })?;
    if let Some(name) = sources
        .iter()
        .find(|name| !SOURCE_NAMES.contains(&name.as_str()))
    {
        return Err(InputError {
            code: "unknown_source",
            message: format!(
                "unknown source `{name}` (known: {})",
                SOURCE_NAMES.join(", ")
            ),
        });
    }
    if let Some(since) = since.filter(|since| !SINCE_VALUES.contains(since)) {
        return Err(InputError {
            code: "invalid_since",
            message: format!(
                "unknown time range `{since}` (known: {})",
                SINCE_VALUES.join(", ")
            ),
        });
    }
    if let Some(glob) = path_glob {
        aiex_indexer::walk::compile_glob(glob).map_err(|err| InputError {
            code: "invalid_path",
            message: err.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn search_input_is_checked_with_codes() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_search_input(
                &list(&["rust"]),
                &list(&["code", "web:tavily", "web:searxng"]),
                Some("week"),
                Some("src/**/*.rs")
            ),
            Ok(())
        );
        let code = |result: Result<(), InputError>| result.expect_err("refused").code;
        assert_eq!(
            code(check_search_input(&list(&["klingon"]), &[], None, None)),
            "unknown_language"
        );
        let gopher =
            check_search_input(&[], &list(&["code", "gopher"]), None, None).expect_err("refused");
        assert_eq!(gopher.code, "unknown_source");
        assert!(gopher.message.contains("`gopher`") && gopher.message.contains("web:serper"));
        assert!(gopher.message.contains("web:searxng"), "{}", gopher.message);
        assert_eq!(
            code(check_search_input(&[], &[], Some("decade"), None)),
            "invalid_since"
        );
        assert_eq!(
            code(check_search_input(&[], &[], None, Some("src/["))),
            "invalid_path"
        );
    }
}
