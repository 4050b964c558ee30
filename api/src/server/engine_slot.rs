//! The server's current [`SearchEngine`], rebuilt when collections appear or disappear, and
//! around indexing runs of this process: a vector store has one owner at a time, so while a
//! collection of a kind is being written, that kind is searched by keywords only, and the
//! engine that held its vector store is let go before the run starts.
//!
//! The comparison is by each collection's name, generation and whether its vectors are complete,
//! from the small status records beside the manifests: a collection that another process indexed
//! again or finished embedding is opened anew (its vector store with it), so that searches and
//! `/v1/collections` agree.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use aiex_indexer::{CollectionKind, IndexDir};
use parking_lot::Mutex;

use crate::engine::{EngineError, EngineParts, SearchEngine};

/// How often the collection list is compared with the engine's.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What an engine is built for: each collection's name, generation and whether its vectors are
/// complete, sorted by name.
pub type CollectionsSignature = Vec<(String, u64, bool)>;

/// The collections on disk as [`CollectionsSignature`]; a collection whose status record cannot
/// be read (removed a moment ago) is left out. Blocking: reads one small file per collection.
pub fn collections_signature(
    index_dir: &IndexDir,
) -> Result<CollectionsSignature, aiex_indexer::Error> {
    Ok(index_dir
        .collection_names()?
        .into_iter()
        .filter_map(|name| {
            let head = index_dir.head(&name).ok()?;
            Some((name, head.generation, head.vectors_complete))
        })
        .collect())
}

/// The current engine and what it was built for.
pub struct EngineSlot {
    config: Arc<aiex_config::Config>,
    parts: EngineParts,
    current: Mutex<Option<Arc<SearchEngine>>>,
    /// When the collections were last compared, and what they were then.
    checked: Mutex<(Option<Instant>, CollectionsSignature)>,
    /// Indexing runs in progress per kind.
    writing: Mutex<HashMap<CollectionKind, usize>>,
    rebuild: tokio::sync::Mutex<()>,
    /// Cache hits and misses of the engines replaced so far.
    retired: Mutex<(u64, u64)>,
}

impl std::fmt::Debug for EngineSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineSlot")
            .field("current", &self.current.lock())
            .finish()
    }
}

impl EngineSlot {
    pub fn new(config: Arc<aiex_config::Config>, parts: EngineParts) -> Self {
        EngineSlot {
            config,
            parts,
            current: Mutex::new(None),
            checked: Mutex::new((None, Vec::new())),
            writing: Mutex::new(HashMap::new()),
            rebuild: tokio::sync::Mutex::new(()),
            retired: Mutex::new((0, 0)),
        }
    }

    /// The engine, rebuilt first when the collections on disk changed (checked at most once a
    /// second).
    pub async fn get(&self) -> Result<Arc<SearchEngine>, EngineError> {
        self.get_checked(false).await
    }

    /// The engine, after comparing the collections on disk with its own now (`force`) or when
    /// the last comparison is older than a second.
    pub async fn get_checked(&self, force: bool) -> Result<Arc<SearchEngine>, EngineError> {
        let due = force
            || self
                .checked
                .lock()
                .0
                .is_none_or(|at| at.elapsed() >= CHECK_INTERVAL);
        if due && self.config.vector.backend == aiex_config::VectorBackend::Server {
            // Collections indexed or removed through other nodes: the registry in Qdrant.
            let config = Arc::clone(&self.config);
            let synced = tokio::task::spawn_blocking(move || {
                aiex_indexer::store::server::sync_cache(&config)
            })
            .await;
            match synced {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!("reading the collections' registry: {err}"),
                Err(err) => tracing::warn!("reading the collections' registry: {err}"),
            }
        }
        let stale = if due {
            let index_dir = IndexDir::new(self.config.index_dir());
            let signature =
                tokio::task::spawn_blocking(move || collections_signature(&index_dir)).await??;
            let mut checked = self.checked.lock();
            let changed = signature != checked.1;
            *checked = (Some(Instant::now()), signature);
            changed
        } else {
            false
        };
        if !stale {
            if let Some(engine) = self.current.lock().clone() {
                return Ok(engine);
            }
        }
        self.rebuild().await
    }

    /// The engine if one is built, without checking the disk.
    pub fn peek(&self) -> Option<Arc<SearchEngine>> {
        self.current.lock().clone()
    }

    /// Builds a new engine (on a blocking thread) and makes it current.
    pub async fn rebuild(&self) -> Result<Arc<SearchEngine>, EngineError> {
        let _one_at_a_time = self.rebuild.lock().await;
        let keyword_only: Vec<CollectionKind> = self
            .writing
            .lock()
            .iter()
            .filter(|(_, runs)| **runs > 0)
            .map(|(kind, _)| *kind)
            .collect();
        let config = Arc::clone(&self.config);
        let parts = self.parts.clone();
        let (built, signature) = tokio::task::spawn_blocking(move || {
            // Read before the build: a change during it shows at the next comparison.
            let signature = collections_signature(&IndexDir::new(config.index_dir()));
            SearchEngine::build(&config, &parts, &[], &keyword_only).map(|built| (built, signature))
        })
        .await??;
        let engine = Arc::new(built);
        let replaced = self.current.lock().replace(Arc::clone(&engine));
        if let Some(replaced) = replaced {
            self.retire(&replaced);
        }
        let mut checked = self.checked.lock();
        *checked = (Some(Instant::now()), signature.unwrap_or_default());
        Ok(engine)
    }

    /// Before an indexing run of a `kind` collection: searches of that kind go keyword-only, and
    /// the previous engine (which may hold the vector store) is released. Waits at most `wait`
    /// for searches in flight on the old engine.
    pub async fn begin_write(&self, kind: CollectionKind, wait: Duration) {
        *self.writing.lock().entry(kind).or_default() += 1;
        let taken = self.current.lock().take();
        if let Some(taken) = &taken {
            self.retire(taken);
        }
        let old: Option<Weak<SearchEngine>> = taken.map(|engine| Arc::downgrade(&engine));
        if let Err(err) = self.rebuild().await {
            tracing::warn!(error = %err, "search engine not rebuilt before indexing");
        }
        if let Some(old) = old {
            let deadline = Instant::now() + wait;
            while old.strong_count() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    fn retire(&self, engine: &SearchEngine) {
        let stats = engine.coordinator.cache_stats();
        let mut retired = self.retired.lock();
        retired.0 += stats.hits;
        retired.1 += stats.misses;
    }

    /// Result cache hits and misses since the server started, over every engine it built.
    pub fn cache_counts(&self) -> (u64, u64) {
        let (mut hits, mut misses) = *self.retired.lock();
        if let Some(engine) = self.peek() {
            let stats = engine.coordinator.cache_stats();
            hits += stats.hits;
            misses += stats.misses;
        }
        (hits, misses)
    }

    /// After the run: vectors of that kind are searched again.
    pub async fn end_write(&self, kind: CollectionKind) {
        if let Some(runs) = self.writing.lock().get_mut(&kind) {
            *runs = runs.saturating_sub(1);
        }
        if let Err(err) = self.rebuild().await {
            tracing::warn!(error = %err, "search engine not rebuilt after indexing");
        }
    }
}
