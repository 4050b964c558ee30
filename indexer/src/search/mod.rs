//! Read primitives over one or more collections: keyword (BM25), vector (cosine) and hybrid
//! (weighted reciprocal-rank fusion), with filters on collection, language and path glob.
//!
//! A [`Searcher`] holds the collections open; it is cheap to query repeatedly and blocking: call it
//! from a blocking context.
//!
//! In server mode (`vector.backend = "server"`) every mode is answered by Qdrant, one query per
//! collection (its tenant): keyword by the BM25 sparse vector, vector by the dense one, hybrid by
//! one Query API call fusing both server-side, then the symbol boost below. Hits are read from the
//! points' payloads; the local tantivy index is not opened. The manifests (the collection list,
//! path globs) are the data directory's cache of the registry in Qdrant
//! ([`crate::store::server::sync_cache`]), filled when the searcher opens and refreshed about once
//! a second, so a node with an empty data directory searches every collection.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use aiex_config::SearchMode;

use crate::chunk::ChunkKind;
use crate::collection::IndexDir;
use crate::document::Chunk;
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::lang::Language;
use crate::manifest::{Manifest, ManifestHead, ManifestStamp};
use crate::snippet::make_snippet;
use crate::store::keyword::{query_terms, weighted_terms, KeywordStore, QueryTerm};
use crate::store::server::ServerVectorStore;
use crate::store::vector::{open_store, VectorFilter, VectorStore};
use crate::walk::compile_glob;
use fusion::FusionParams;

mod fusion;
mod literal;
mod query_embedder;
mod server;

pub use query_embedder::QueryEmbedder;

/// A search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub mode: SearchMode,
    /// Collections to search; empty means all that are open.
    pub collections: Vec<String>,
    pub languages: Vec<Language>,
    /// Glob on the path relative to the collection root (`src/**/*.rs`).
    pub path_glob: Option<String>,
    pub limit: usize,
}

impl SearchRequest {
    pub fn new(query: impl Into<String>, mode: SearchMode, limit: usize) -> Self {
        SearchRequest {
            query: query.into(),
            mode,
            collections: Vec::new(),
            languages: Vec::new(),
            path_glob: None,
            limit,
        }
    }
}

/// One result.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub collection: String,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub language: Language,
    pub symbol: Option<String>,
    pub kind: ChunkKind,
    pub parent: Option<String>,
    pub score: f32,
    pub snippet: String,
    /// Line of the snippet's first line.
    pub snippet_start_line: u32,
    /// Byte ranges of `snippet` that match query terms.
    pub highlights: Vec<(usize, usize)>,
    /// A crawled page's original URL (docs sets mirrored from the web).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip)]
    pub chunk_id: u64,
}

/// Results and what they are based on.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    pub mode: SearchMode,
    /// Collections searched whose vectors are not complete yet (vector results may miss chunks).
    pub vectors_incomplete: Vec<String>,
    /// Collections whose vectors could not be used, with the reason (hybrid then ran keyword only).
    pub vectors_unavailable: Vec<(String, String)>,
    pub took_ms: f64,
}

/// A collection's files with their languages.
type FileList = Arc<Vec<(String, Language)>>;

struct OpenCollection {
    name: String,
    manifest_path: std::path::PathBuf,
    /// The status record (the manifest without its file list: searches never parse the whole
    /// manifest).
    manifest: RwLock<ManifestHead>,
    /// The manifest's files as last seen (server mode: the refresh signal).
    manifest_modified: Mutex<Option<ManifestStamp>>,
    /// The file list with each file's language, read from the manifest for path globs only, with
    /// the manifest's stamp when read.
    files: Mutex<Option<(Option<ManifestStamp>, FileList)>>,
    /// The local keyword index; None in server mode, where Qdrant answers keywords too.
    keyword: Option<KeywordStore>,
    vectors_dir: std::path::PathBuf,
    /// Opened on first use: a vector store has one owner process at a time, so keyword searches
    /// never take it (an indexing run can then embed while its keyword index is searched). Why
    /// it could not be opened is kept for [`VECTOR_RETRY`], then the store is tried again (another
    /// process let it go, or finished embedding).
    vectors: Mutex<Option<VectorsState>>,
    /// Server mode: the collection's tenant in Qdrant, connected on first use.
    server: OnceLock<std::result::Result<Arc<ServerVectorStore>, String>>,
    /// A crawled mirror's page URLs, with the map file's modification time when read.
    page_urls: Mutex<
        Option<(
            Option<std::time::SystemTime>,
            Arc<crate::page_urls::PageUrls>,
        )>,
    >,
}

impl OpenCollection {
    fn keyword(&self) -> Result<&KeywordStore> {
        self.keyword.as_ref().ok_or_else(|| Error::Vector {
            message: format!(
                "collection {}: no local keyword index in server mode",
                self.name
            ),
        })
    }

    /// The original URLs of a crawled mirror's pages (empty for other collections), read again
    /// when the map file changes (a crawl added pages).
    fn page_urls(&self) -> Arc<crate::page_urls::PageUrls> {
        let root = self.manifest.read().root.clone();
        let file = root.join(crate::page_urls::PAGE_URLS_FILE);
        let stamp = fs_err::metadata(&file)
            .and_then(|meta| meta.modified())
            .ok();
        let mut cached = self.page_urls.lock();
        match &*cached {
            Some((seen, urls)) if *seen == stamp => Arc::clone(urls),
            _ => {
                let urls = Arc::new(if stamp.is_some() {
                    crate::page_urls::read(&root)
                } else {
                    Default::default()
                });
                *cached = Some((stamp, Arc::clone(&urls)));
                urls
            }
        }
    }

    /// Reads the manifest's status again when its files changed since it was last read (or when
    /// `force`); the files' stamp.
    fn follow_manifest(&self, force: bool) -> Result<Option<ManifestStamp>> {
        let stamp = self.manifest_stamp();
        let mut seen = self.manifest_modified.lock();
        if force || stamp != *seen {
            let head = match stamp {
                Some(stamp) => Manifest::load_head_at(&self.manifest_path, stamp)?,
                None => None,
            };
            if let Some(head) = head {
                *self.manifest.write() = head;
            }
            *seen = stamp;
        }
        Ok(stamp)
    }

    /// Every file of the collection with its language (read from the manifest when it changed).
    fn files(&self) -> Result<FileList> {
        let stamp = self.manifest_stamp();
        let mut cached = self.files.lock();
        if let Some((seen, files)) = &*cached {
            if *seen == stamp {
                return Ok(Arc::clone(files));
            }
        }
        let files: FileList = Arc::new(
            Manifest::load(&self.manifest_path)?
                .map(|manifest| {
                    manifest
                        .files
                        .into_iter()
                        .map(|(path, record)| (path, record.language))
                        .collect()
                })
                .unwrap_or_default(),
        );
        *cached = Some((stamp, Arc::clone(&files)));
        Ok(files)
    }

    /// The stamp of the manifest's files, if they can be read.
    fn manifest_stamp(&self) -> Option<ManifestStamp> {
        ManifestStamp::of(&self.manifest_path).ok().flatten()
    }
}

/// The vector store of a collection, or why it cannot be used and since when.
enum VectorsState {
    Open(Arc<dyn VectorStore>),
    Unavailable(String, Instant),
}

/// How long a collection whose vectors could not be used stays without them before the store is
/// tried again.
const VECTOR_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Added to a hybrid hit's fused score when its symbol holds every query term, as a share of
/// what a first place on the keyword side adds ([`FusionParams::keyword_first_place`]).
const SYMBOL_BONUS: f32 = 0.5;

/// Most results a search returns.
pub const MAX_LIMIT: usize = 1000;

/// How long a generation check stays valid: a re-index becomes visible to searches within this.
const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Server mode: how often the cached manifests are compared with the registry in Qdrant.
const SERVER_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Collections opened for searching, and the query embedder (loaded on first vector search).
pub struct Searcher {
    config: aiex_config::Config,
    collections: Vec<OpenCollection>,
    query_embedder: Arc<QueryEmbedder>,
    /// The last generation token and when it was computed.
    last_refresh: Mutex<Option<(Instant, String)>>,
    fusion: FusionParams,
    /// Whether Qdrant answers every mode (`vector.backend = "server"`).
    server_mode: bool,
    /// Server mode: when the manifests were last brought in line with the registry in Qdrant.
    last_sync: Mutex<Instant>,
}

impl std::fmt::Debug for Searcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.collections.iter().map(|c| c.name.as_str()).collect();
        f.debug_struct("Searcher")
            .field("collections", &names)
            .finish()
    }
}

/// Candidates fetched from each side before fusion.
fn candidate_count(limit: usize) -> usize {
    limit.saturating_mul(4).max(50)
}

impl Searcher {
    /// Opens `names` (all collections when empty). Vector stores that cannot be opened (for
    /// instance held by an indexing process) are recorded, and searches fall back to keywords.
    pub fn open(config: &aiex_config::Config, names: &[String]) -> Result<Self> {
        let index_dir = IndexDir::new(config.index_dir());
        let server_mode = config.vector.backend == aiex_config::VectorBackend::Server;
        if server_mode {
            // Without the server, the cached manifests (if any) still list the collections.
            if let Err(err) = crate::store::server::sync_cache(config) {
                tracing::warn!("reading the collections' registry from Qdrant: {err}");
            }
        }
        let names = if names.is_empty() {
            index_dir.collection_names()?
        } else {
            names.to_vec()
        };
        let mut collections = Vec::with_capacity(names.len());
        for name in names {
            let manifest = index_dir.head(&name)?;
            let paths = index_dir.collection_paths(&name);
            let keyword = if server_mode {
                None
            } else {
                Some(KeywordStore::open(&paths.keyword)?)
            };
            let collection = OpenCollection {
                name,
                manifest_path: paths.manifest.clone(),
                manifest: RwLock::new(manifest),
                manifest_modified: Mutex::new(None),
                files: Mutex::new(None),
                keyword,
                vectors_dir: paths.vectors,
                vectors: Mutex::new(None),
                server: OnceLock::new(),
                page_urls: Mutex::new(None),
            };
            *collection.manifest_modified.lock() = collection.manifest_stamp();
            collections.push(collection);
        }
        Ok(Searcher {
            config: config.clone(),
            collections,
            query_embedder: Arc::new(QueryEmbedder::from_config(config)),
            last_refresh: Mutex::new(None),
            fusion: FusionParams::from_config(&config.search),
            server_mode,
            last_sync: Mutex::new(Instant::now()),
        })
    }

    /// The vector store of `collection`, opened on first use, or why it cannot be used.
    fn vectors(
        &self,
        collection: &OpenCollection,
    ) -> std::result::Result<Arc<dyn VectorStore>, String> {
        let mut state = collection.vectors.lock();
        match &*state {
            Some(VectorsState::Open(store)) => return Ok(Arc::clone(store)),
            Some(VectorsState::Unavailable(reason, since)) if since.elapsed() < VECTOR_RETRY => {
                return Err(reason.clone());
            }
            _ => {}
        }
        let opened = self.open_vectors(collection);
        *state = Some(match &opened {
            Ok(store) => VectorsState::Open(Arc::clone(store)),
            Err(reason) => VectorsState::Unavailable(reason.clone(), Instant::now()),
        });
        opened
    }

    fn open_vectors(
        &self,
        collection: &OpenCollection,
    ) -> std::result::Result<Arc<dyn VectorStore>, String> {
        let config = &self.config;
        if !config.embedding.enabled {
            return Err("embeddings are disabled".to_string());
        }
        {
            let manifest = collection.manifest.read();
            if manifest.embedded_chunks == 0 {
                return Err("no vectors yet".to_string());
            }
            if let Some(indexed) = &manifest.model_id {
                let configured = config.embedding_model_key().unwrap_or_default();
                if *indexed != configured {
                    return Err(format!(
                        "embedded with model `{indexed}`, but `{configured}` is configured"
                    ));
                }
            }
        }
        open_store(config, &collection.vectors_dir)
            .map(Arc::from)
            .map_err(|err| err.to_string())
    }

    /// Uses `embedder` for queries instead of loading the configured model.
    pub fn with_embedder(self, embedder: Box<dyn Embedder>) -> Self {
        *self.query_embedder.embedder.lock() = Some(embedder);
        self
    }

    /// Shares `query_embedder` (one model per process, one embedding per query).
    pub fn with_query_embedder(mut self, query_embedder: Arc<QueryEmbedder>) -> Self {
        self.query_embedder = query_embedder;
        self
    }

    /// This searcher's query embedder, to share with others.
    pub fn query_embedder(&self) -> Arc<QueryEmbedder> {
        Arc::clone(&self.query_embedder)
    }

    /// Picks up new generations written by indexing runs since the searcher was opened (the
    /// keyword index's commit records its generation), and returns a token that changes with any
    /// of them: caches key local results by it.
    pub fn refresh(&self) -> Result<String> {
        let mut last = self.last_refresh.lock();
        if let Some((at, token)) = last.as_ref() {
            if at.elapsed() < REFRESH_INTERVAL {
                return Ok(token.clone());
            }
        }
        let mut token = String::new();
        if self.server_mode {
            let mut synced = self.last_sync.lock();
            if synced.elapsed() >= SERVER_SYNC_INTERVAL {
                if let Err(err) = crate::store::server::sync_cache(&self.config) {
                    tracing::warn!("reading the collections' registry from Qdrant: {err}");
                }
                *synced = Instant::now();
            }
        }
        for collection in &self.collections {
            if self.server_mode {
                collection.follow_manifest(false)?;
                let generation = collection.manifest.read().generation;
                token.push_str(&format!("{}:{generation};", collection.name));
                continue;
            }
            let keyword = collection.keyword()?;
            let committed = keyword.committed_generation()?.unwrap_or(0);
            // A new generation, or the same one with more vectors (an embedding run of another
            // process checkpointed): the manifest is read again.
            let new_generation = committed != collection.manifest.read().generation;
            if new_generation {
                keyword.reload()?;
            }
            let stamp = collection
                .follow_manifest(new_generation)?
                .unwrap_or_default();
            token.push_str(&format!(
                "{}:{committed}:{}:{}:{};",
                collection.name, stamp.snapshot_len, stamp.snapshot_modified_ns, stamp.journal_len
            ));
        }
        *last = Some((Instant::now(), token.clone()));
        Ok(token)
    }

    /// Chunks per language over the open collections, most first.
    pub fn language_counts(&self) -> Vec<(Language, usize)> {
        let mut counts: HashMap<Language, usize> = HashMap::new();
        for collection in &self.collections {
            for (language, chunks) in &collection.manifest.read().languages {
                *counts.entry(*language).or_default() += chunks;
            }
        }
        let mut counts: Vec<(Language, usize)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.name().cmp(b.0.name())));
        counts
    }

    pub fn collection_names(&self) -> Vec<String> {
        self.collections.iter().map(|c| c.name.clone()).collect()
    }

    /// Runs `request` in its mode.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults> {
        let mut results = self.ranked(request)?;
        self.attach_page_urls(&mut results.hits);
        Ok(results)
    }

    /// Gives hits from a crawled mirror their page's original URL.
    fn attach_page_urls(&self, hits: &mut [SearchHit]) {
        let mut maps: HashMap<&str, Arc<crate::page_urls::PageUrls>> = HashMap::new();
        for hit in hits {
            let Some(collection) = self.collections.iter().find(|c| c.name == hit.collection)
            else {
                continue;
            };
            let urls = maps
                .entry(collection.name.as_str())
                .or_insert_with(|| collection.page_urls());
            hit.url = urls.get(&hit.path).cloned();
        }
    }

    fn ranked(&self, request: &SearchRequest) -> Result<SearchResults> {
        let started = Instant::now();
        let selected = self.select(&request.collections)?;
        if self.server_mode {
            return self.server_search(&selected, request, started);
        }
        let terms = query_terms(&request.query);
        // Keyword mode alone reads abbreviations of the query's prose words (`iterator` finds
        // `iter`); hybrid leaves the prose to its vector side (README, retrieval benchmark).
        let keyword_terms =
            weighted_terms(&terms, &request.query, request.mode == SearchMode::Keyword);
        let mut results = SearchResults::empty(request.mode);
        let wants_vectors = matches!(request.mode, SearchMode::Vector | SearchMode::Hybrid);
        if wants_vectors {
            for collection in &selected {
                match self.vectors(collection) {
                    Err(reason) => results
                        .vectors_unavailable
                        .push((collection.name.clone(), reason.clone())),
                    Ok(_) if !collection.manifest.read().vectors_complete => {
                        results.vectors_incomplete.push(collection.name.clone());
                    }
                    Ok(_) => {}
                }
            }
        }
        let limit = request.limit.clamp(1, MAX_LIMIT);
        let candidates = candidate_count(limit);
        let fused: Vec<(f32, Chunk, String)> = match request.mode {
            SearchMode::Keyword => {
                self.keyword_ranked(&selected, request, &keyword_terms, limit)?
            }
            SearchMode::Vector => {
                self.vector_ranked(&selected, request, limit, &mut results.vectors_unavailable)?
            }
            SearchMode::Hybrid => {
                let keyword =
                    self.keyword_ranked(&selected, request, &keyword_terms, candidates)?;
                // Hybrid degrades to keywords when the vector side fails (model missing, store
                // in use); the failure is reported in `vectors_unavailable`.
                let vector = self
                    .vector_ranked(
                        &selected,
                        request,
                        candidates,
                        &mut results.vectors_unavailable,
                    )
                    .unwrap_or_else(|err| {
                        for collection in &selected {
                            if self.vectors(collection).is_ok() {
                                results
                                    .vectors_unavailable
                                    .push((collection.name.clone(), err.to_string()));
                            }
                        }
                        Vec::new()
                    });
                let mut fused = self.fusion.fuse(keyword, vector, candidates);
                self.boost_literals(&mut fused, &request.query);
                fused
            }
        };
        Ok(results.finish(fused, limit, &terms, started))
    }

    /// Keyword-only search (BM25 over content, symbol, parent and path).
    pub fn keyword_search(&self, request: &SearchRequest) -> Result<SearchResults> {
        self.search(&SearchRequest {
            mode: SearchMode::Keyword,
            ..request.clone()
        })
    }

    /// Vector-only search.
    pub fn vector_search(&self, request: &SearchRequest) -> Result<SearchResults> {
        self.search(&SearchRequest {
            mode: SearchMode::Vector,
            ..request.clone()
        })
    }

    /// Hybrid search: keyword and vector lists fused by weighted reciprocal rank.
    pub fn hybrid_search(&self, request: &SearchRequest) -> Result<SearchResults> {
        self.search(&SearchRequest {
            mode: SearchMode::Hybrid,
            ..request.clone()
        })
    }

    /// One chunk by collection and id.
    pub fn get_chunk(&self, collection: &str, id: u64) -> Result<Option<Chunk>> {
        let selected = self.select(&[collection.to_string()])?;
        let Some(open) = selected.first() else {
            return Ok(None);
        };
        let mut chunks = if self.server_mode {
            let store = self
                .server_store(open)
                .as_ref()
                .map_err(|message| Error::Vector {
                    message: message.clone(),
                })?;
            store.get_chunks(&[id])?
        } else {
            open.keyword()?.get_chunks(&[id])?
        };
        Ok(chunks.remove(&id).map(|mut chunk| {
            chunk.collection = open.name.clone();
            chunk
        }))
    }

    /// One chunk by collection and id, joined with the chunks before and after it that continue
    /// the same function or method (a long function is split into several chunks), up to
    /// [`MAX_WHOLE_SYMBOL_LINES`] lines: what a reader of the function wants, its calls included.
    /// In server mode, the chunk alone.
    pub fn get_whole_symbol(&self, collection: &str, id: u64) -> Result<Option<Chunk>> {
        let Some(chunk) = self.get_chunk(collection, id)? else {
            return Ok(None);
        };
        let callable = matches!(chunk.kind, ChunkKind::Function | ChunkKind::Method);
        if self.server_mode || !callable || chunk.symbol.is_none() {
            return Ok(Some(chunk));
        }
        let selected = self.select(&[collection.to_string()])?;
        let Some(open) = selected.first() else {
            return Ok(Some(chunk));
        };
        let siblings: Vec<Chunk> = open
            .keyword()?
            .chunks_of_path(&chunk.path)?
            .into_iter()
            .filter(|other| other.symbol == chunk.symbol && other.parent == chunk.parent)
            .collect();
        Ok(Some(join_continuations(chunk, &siblings)))
    }

    fn select(&self, names: &[String]) -> Result<Vec<&OpenCollection>> {
        if names.is_empty() {
            return Ok(self.collections.iter().collect());
        }
        names
            .iter()
            .map(|name| {
                self.collections
                    .iter()
                    .find(|c| &c.name == name)
                    .ok_or_else(|| Error::CollectionNotFound { name: name.clone() })
            })
            .collect()
    }

    /// Paths of `collection` matching the request's glob; None when there is no glob.
    fn matching_paths(
        collection: &OpenCollection,
        request: &SearchRequest,
    ) -> Result<Option<Vec<String>>> {
        let Some(glob) = &request.path_glob else {
            return Ok(None);
        };
        let matcher = compile_glob(glob)?.compile_matcher();
        Ok(Some(
            collection
                .files()?
                .iter()
                .filter(|(path, language)| {
                    matcher.is_match(path.as_str())
                        && (request.languages.is_empty() || request.languages.contains(language))
                })
                .map(|(path, _)| path.clone())
                .collect(),
        ))
    }

    fn keyword_ranked(
        &self,
        selected: &[&OpenCollection],
        request: &SearchRequest,
        terms: &[QueryTerm],
        limit: usize,
    ) -> Result<Vec<(f32, Chunk, String)>> {
        let mut ranked = Vec::new();
        for collection in selected {
            let paths = Self::matching_paths(collection, request)?;
            if paths.as_ref().is_some_and(Vec::is_empty) {
                continue;
            }
            let hits = collection.keyword()?.search(
                terms,
                &request.languages,
                paths.as_deref().unwrap_or(&[]),
                limit,
            )?;
            ranked.extend(
                hits.into_iter()
                    .map(|(score, chunk)| (score, chunk, collection.name.clone())),
            );
        }
        ranked.sort_by(by_rank);
        ranked.truncate(limit);
        Ok(ranked)
    }

    /// Vector hits over the collections whose vectors can be used; a collection whose store fails
    /// is reported in `unavailable` and skipped.
    fn vector_ranked(
        &self,
        selected: &[&OpenCollection],
        request: &SearchRequest,
        limit: usize,
        unavailable: &mut Vec<(String, String)>,
    ) -> Result<Vec<(f32, Chunk, String)>> {
        if !selected.iter().any(|c| self.vectors(c).is_ok()) {
            return Ok(Vec::new());
        }
        let query_vector = self.query_embedder.embed(&request.query)?;
        let mut ranked = Vec::new();
        for collection in selected {
            let Ok(store) = self.vectors(collection) else {
                continue;
            };
            let paths = Self::matching_paths(collection, request)?;
            if paths.as_ref().is_some_and(Vec::is_empty) {
                continue;
            }
            let filter = VectorFilter {
                languages: request
                    .languages
                    .iter()
                    .map(|l| l.name().to_string())
                    .collect(),
                paths: paths.unwrap_or_default(),
            };
            let scored = match store.search(&query_vector, &filter, limit) {
                Ok(scored) => scored,
                Err(err) => {
                    unavailable.push((collection.name.clone(), err.to_string()));
                    continue;
                }
            };
            let ids: Vec<u64> = scored.iter().map(|(id, _)| *id).collect();
            let mut chunks = collection.keyword()?.get_chunks(&ids)?;
            // Chunks no longer in the keyword index (deleted, vector delete pending) are dropped.
            ranked.extend(scored.into_iter().filter_map(|(id, score)| {
                chunks
                    .remove(&id)
                    .map(|chunk| (score, chunk, collection.name.clone()))
            }));
        }
        ranked.sort_by(by_rank);
        ranked.truncate(limit);
        Ok(ranked)
    }

    /// The literal-match boost of a hybrid search ([`literal`]).
    fn boost_literals(&self, ranked: &mut [(f32, Chunk, String)], query: &str) {
        literal::boost(
            ranked,
            &literal::query_literals(query),
            self.fusion.literal_bonus(),
        );
    }
}

impl SearchResults {
    /// No hits yet, for a search in `mode`.
    fn empty(mode: SearchMode) -> Self {
        SearchResults {
            hits: Vec::new(),
            mode,
            vectors_incomplete: Vec::new(),
            vectors_unavailable: Vec::new(),
            took_ms: 0.0,
        }
    }

    /// The `limit` best of `ranked`, in rank order, as hits with snippets for `terms`.
    fn finish(
        mut self,
        mut ranked: Vec<(f32, Chunk, String)>,
        limit: usize,
        terms: &[String],
        started: Instant,
    ) -> Self {
        ranked.sort_by(by_rank);
        self.hits = ranked
            .into_iter()
            .take(limit)
            .map(|(score, chunk, collection)| hit(collection, chunk, score, terms))
            .collect();
        self.took_ms = started.elapsed().as_secs_f64() * 1000.0;
        self
    }
}

/// Best score first; ties by collection, path and line, so equal scores always list alike.
fn by_rank(a: &(f32, Chunk, String), b: &(f32, Chunk, String)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0)
        .then_with(|| a.2.cmp(&b.2))
        .then_with(|| a.1.path.cmp(&b.1.path))
        .then_with(|| a.1.start_line.cmp(&b.1.start_line))
}

/// Longest function or method that [`Searcher::get_whole_symbol`] joins.
pub const MAX_WHOLE_SYMBOL_LINES: u32 = 300;

/// `chunk` with the `siblings` (chunks of the same symbol, in line order) that continue it,
/// before and after, without a gap, within [`MAX_WHOLE_SYMBOL_LINES`].
fn join_continuations(chunk: Chunk, siblings: &[Chunk]) -> Chunk {
    let Some(at) = siblings.iter().position(|other| other.id == chunk.id) else {
        return chunk;
    };
    let (mut first, mut last) = (at, at);
    let within = |first: usize, last: usize| {
        siblings[last].end_line - siblings[first].start_line < MAX_WHOLE_SYMBOL_LINES
    };
    while first > 0
        && siblings[first - 1].end_line + 1 == siblings[first].start_line
        && within(first - 1, last)
    {
        first -= 1;
    }
    while last + 1 < siblings.len()
        && siblings[last].end_line + 1 == siblings[last + 1].start_line
        && within(first, last + 1)
    {
        last += 1;
    }
    if first == last {
        return chunk;
    }
    let text = siblings[first..=last]
        .iter()
        .map(|piece| piece.text.trim_end_matches('\n'))
        .collect::<Vec<_>>()
        .join("\n");
    Chunk {
        start_line: siblings[first].start_line,
        end_line: siblings[last].end_line,
        text,
        ..chunk
    }
}

/// Whether `symbol`'s code tokens include every one of `terms`.
fn symbol_holds_terms(symbol: Option<&str>, terms: &[String]) -> bool {
    let Some(symbol) = symbol else {
        return false;
    };
    if terms.is_empty() {
        return false;
    }
    let tokens = crate::tokenizer::code_tokens(symbol, crate::tokenizer::TokenMode::Index);
    terms
        .iter()
        .all(|term| tokens.iter().any(|token| &token.text == term))
}

fn hit(collection: String, chunk: Chunk, score: f32, terms: &[String]) -> SearchHit {
    let snippet = make_snippet(&chunk.text, chunk.start_line, terms);
    SearchHit {
        collection,
        path: chunk.path,
        start_line: chunk.start_line,
        end_line: chunk.end_line,
        language: chunk.language,
        symbol: chunk.symbol,
        kind: chunk.kind,
        parent: chunk.parent,
        score,
        snippet: snippet.text,
        snippet_start_line: snippet.start_line,
        highlights: snippet.highlights,
        url: None,
        chunk_id: chunk.id,
    }
}

#[cfg(test)]
mod whole_symbol_tests {
    use super::*;

    fn piece(id: u64, start: u32, end: u32) -> Chunk {
        Chunk {
            id,
            collection: String::new(),
            path: "src/lib.rs".into(),
            language: Language::Rust,
            symbol: Some("run".into()),
            kind: ChunkKind::Method,
            parent: None,
            start_line: start,
            end_line: end,
            hash: String::new(),
            text: format!("// lines {start}-{end}\n"),
        }
    }

    #[test]
    fn a_split_function_is_joined_without_gaps_and_within_the_limit() {
        let siblings = [
            piece(1, 1, 10),
            piece(2, 11, 20),
            piece(3, 21, 30),
            piece(4, 40, 50),
        ];
        let whole = join_continuations(piece(2, 11, 20), &siblings);
        assert_eq!((whole.id, whole.start_line, whole.end_line), (2, 1, 30));
        assert_eq!(whole.text, "// lines 1-10\n// lines 11-20\n// lines 21-30");
        // After a gap, another definition of the same name: alone.
        let alone = join_continuations(piece(4, 40, 50), &siblings);
        assert_eq!((alone.start_line, alone.end_line), (40, 50));
        // Too long to join whole: the pieces within the limit.
        let long = [piece(1, 1, 200), piece(2, 201, 400), piece(3, 401, 450)];
        let joined = join_continuations(piece(2, 201, 400), &long);
        assert_eq!((joined.start_line, joined.end_line), (201, 450));
    }
}
