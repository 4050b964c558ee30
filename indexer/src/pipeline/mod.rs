//! One indexing run, in the phases of ARCHITECTURE.md's "An indexing run", one module each:
//!
//! 1. `walk_phase`: walk the root; files whose size and modification time match the manifest are
//!    unchanged without being read.
//! 2. `chunk_phase`: read, classify and chunk the others on a bounded pool, and build the next
//!    manifest in memory (added, modified, deleted files; vectors that became stale).
//! 3. `keyword`: the keyword commit (searchable at once), then the manifest.
//! 4. `vectors`: delete stale vectors, reuse or embed every chunk not yet embedded, checkpoint.
//! 5. `vectors`: optimise the vector index once, after the batch.
//!
//! Crash safety: the keyword commit and the manifest are each atomic. Deletes in tantivy are by path
//! term, so replaying a run against an older manifest converges to the same state. Vector progress
//! is checkpointed into the manifest only after the vector store has flushed, and a chunk whose id
//! is already in the vector store is never embedded again. Each phase documents the ordering rule
//! it keeps.

mod chunk_phase;
mod cluster;
mod keyword;
mod vectors;
mod walk_phase;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::chunk::ChunkOptions;
use crate::collection::{default_name, validate_name, CollectionPaths, IndexDir, WriteLock};
use crate::document::Chunk;
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::manifest::{ChunkRecord, CollectionKind, LastRun, Manifest, ManifestFile};
use crate::walk::{SkipCounts, SkipReason};

/// What to index.
pub struct IndexRequest {
    pub root: PathBuf,
    /// Collection name; defaults to the root directory's name.
    pub name: Option<String>,
    /// Drop the collection's stores and index from scratch.
    pub rebuild: bool,
    /// Compute vectors in this run (when embeddings are enabled in the configuration).
    pub embed: bool,
    /// An embedder to use instead of loading the configured model.
    pub embedder: Option<Box<dyn Embedder>>,
    /// Code repository or documentation set.
    pub kind: CollectionKind,
}

impl IndexRequest {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        IndexRequest {
            root: root.into(),
            name: None,
            rebuild: false,
            embed: true,
            embedder: None,
            kind: CollectionKind::Code,
        }
    }

    /// Whether this run computes vectors.
    pub fn wants_vectors(&self, config: &aiex_config::Config) -> bool {
        config.embedding.enabled && self.embed
    }
}

/// Progress of a run, reported as it happens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IndexProgress {
    Walked { files: usize, skipped: u64 },
    Chunking { done: usize, total: usize },
    KeywordCommitted { generation: u64, chunks: usize },
    Embedding { done: usize, total: usize },
    Optimizing,
}

/// Time spent in each stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageTimings {
    pub walk_ms: u64,
    pub chunk_ms: u64,
    pub keyword_ms: u64,
    pub embed_ms: u64,
    /// Of `embed_ms`: writing the vectors to the vector store (in server mode, the upserts to
    /// Qdrant).
    #[serde(default)]
    pub vector_write_ms: u64,
    pub total_ms: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexSummary {
    pub collection: String,
    pub root: PathBuf,
    pub generation: u64,
    /// Files the walk offered.
    pub scanned: usize,
    /// New or modified files (re-chunked).
    pub changed: usize,
    pub added: usize,
    pub modified: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub skipped: SkipCounts,
    /// Files that could not be read although their type is indexed (PDFs that are corrupt,
    /// encrypted, image-only or too slow to extract), each with its reason; also counted in
    /// `skipped`. The first 100 are listed.
    #[serde(default)]
    pub failed: Vec<FailedFile>,
    /// Chunks in the collection after the run.
    pub chunks: usize,
    /// Chunks written to the keyword index by this run.
    pub chunks_written: usize,
    /// Chunks embedded by this run.
    pub embedded: usize,
    /// Chunks whose existing vector was reused (moved chunks, resumed runs).
    pub vectors_reused: usize,
    pub vectors_complete: bool,
    pub timings: StageTimings,
}

/// A file a run could not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedFile {
    /// Relative to the collection root.
    pub path: String,
    pub reason: SkipReason,
    /// What went wrong, for people: `unreadable PDF: …`, `encrypted PDF: it needs a password`.
    pub detail: String,
}

impl IndexSummary {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Indexes `request.root` into its collection. Blocking and CPU-heavy: run it on a thread of its own.
pub fn index_directory(
    config: &aiex_config::Config,
    mut request: IndexRequest,
    progress: &mut dyn FnMut(IndexProgress),
    cancel: &AtomicBool,
) -> Result<IndexSummary> {
    let started = Instant::now();
    let mut run = IndexRun::open(config, &request, progress, cancel)?;
    let to_read = run.walk_phase()?;
    let changes = run.chunk_phase(to_read)?;
    let keyword = run.keyword_phase(changes)?;
    let vectors_started = Instant::now();
    if request.wants_vectors(config) {
        run.vector_phase(&keyword, &mut request.embedder)?;
    } else {
        run.keyword_point_phase(&keyword)?;
    }
    run.summary.timings.embed_ms = millis(vectors_started.elapsed());
    run.finish(started)
}

/// What one run carries from phase to phase. The collection's write lock is held as long as it lives.
struct IndexRun<'a> {
    config: &'a aiex_config::Config,
    /// The collection's name.
    name: String,
    /// The canonical root directory.
    root: PathBuf,
    paths: CollectionPaths,
    /// The manifest the run started from; an empty one for a new or rebuilt collection.
    previous: Manifest,
    /// The manifest this run writes: from the walk on, the previous manifest's unchanged files,
    /// then the chunk phase's changes.
    manifest: Manifest,
    /// Writes `manifest` to the data directory, only what changed at each checkpoint.
    manifest_file: ManifestFile,
    /// Whether nothing on disk can be trusted (a rebuild, or no manifest): the walk phase drops the
    /// stores before anything is written.
    start_over: bool,
    summary: IndexSummary,
    progress: &'a mut dyn FnMut(IndexProgress),
    cancel: &'a AtomicBool,
    /// Server mode: the collection's state in the cluster (lease, registry, file entries).
    cluster: Option<cluster::ClusterState>,
    /// Whether the local keyword and file indexes may be updated incrementally: in server mode
    /// only when this node's last completed run left them at the revision and file list this run
    /// started from (another node may have indexed since, or this node's last run died).
    local_current: bool,
    _lock: WriteLock,
}

impl<'a> IndexRun<'a> {
    /// Resolves the collection, takes its write lock and loads its manifest, refusing a collection
    /// of another kind, root or embedding model. Nothing on disk is changed yet.
    fn open(
        config: &'a aiex_config::Config,
        request: &IndexRequest,
        progress: &'a mut dyn FnMut(IndexProgress),
        cancel: &'a AtomicBool,
    ) -> Result<Self> {
        let root = request
            .root
            .canonicalize()
            .ok()
            .filter(|path| path.is_dir())
            .ok_or_else(|| Error::NotADirectory {
                path: request.root.clone(),
            })?;
        let name = request.name.clone().unwrap_or_else(|| default_name(&root));
        validate_name(&name)?;
        let paths = IndexDir::new(config.index_dir()).collection_paths(&name);
        let lock = WriteLock::acquire(&name, &paths)?;
        let (cluster, loaded, local_current, manifest_file) = match config.vector.backend {
            aiex_config::VectorBackend::Server => {
                let (cluster, loaded) = cluster::ClusterState::open(config, &name)?;
                let current = loaded
                    .as_ref()
                    .is_some_and(|loaded| cluster::working_copy_current(&paths, loaded));
                // The local manifest is a cache here: one that cannot be read is rewritten.
                let file = ManifestFile::open(&paths.manifest)
                    .map_or_else(|_| ManifestFile::fresh(&paths.manifest), |(file, _)| file);
                (Some(cluster), loaded, current, file)
            }
            aiex_config::VectorBackend::Edge => {
                let (file, loaded) = ManifestFile::open(&paths.manifest)?;
                (None, loaded, true, file)
            }
        };
        let start_over = request.rebuild || loaded.is_none();
        let loaded_from_cluster = cluster.is_some() && loaded.is_some();
        let empty = Manifest {
            kind: request.kind,
            ..Manifest::new(&name, &root)
        };
        let mut run = IndexRun {
            config,
            summary: IndexSummary {
                collection: name.clone(),
                root: root.clone(),
                ..IndexSummary::default()
            },
            previous: loaded.unwrap_or_else(|| empty.clone()),
            manifest: empty,
            manifest_file,
            start_over,
            name,
            root,
            paths,
            progress,
            cancel,
            cluster,
            local_current,
            _lock: lock,
        };
        run.check_previous(request)?;
        if let Some(cluster) = &mut run.cluster {
            if loaded_from_cluster {
                cluster.begin(config, &mut run.previous, run.start_over)?;
            }
        }
        Ok(run)
    }

    /// Refuses to index into a collection of another kind, another root, or (unless rebuilding)
    /// vectors of another embedding model.
    fn check_previous(&self, request: &IndexRequest) -> Result<()> {
        let previous = &self.previous;
        if previous.kind != request.kind {
            return Err(Error::CollectionKindMismatch {
                name: self.name.clone(),
                existing: previous.kind.name(),
                requested: request.kind.name(),
            });
        }
        if previous.root != self.root {
            return Err(Error::CollectionRootMismatch {
                name: self.name.clone(),
                existing: previous.root.clone(),
                requested: self.root.clone(),
            });
        }
        if let Some(indexed) = previous.model_id.as_ref() {
            let configured = self.config.embedding_model_key().unwrap_or_default();
            if request.wants_vectors(self.config) && !request.rebuild && *indexed != configured {
                return Err(Error::ModelMismatch {
                    name: self.name.clone(),
                    indexed: indexed.clone(),
                    configured,
                });
            }
        }
        Ok(())
    }

    /// Whether every file must be chunked again (the chunker or its options changed).
    fn rechunk_all(&self) -> bool {
        self.previous.chunking != self.manifest.chunking
    }

    /// Saves the manifest: in server mode to the cluster first (the changed file entries, then
    /// the registry entry, still marked as being indexed), then to the data directory.
    fn save_manifest(&mut self) -> Result<()> {
        if let Some(cluster) = &mut self.cluster {
            cluster.save(&mut self.manifest, true)?;
        }
        self.manifest_file.save(&self.manifest)
    }

    /// Records the run as finished in the manifest and completes the summary.
    fn finish(mut self, started: Instant) -> Result<IndexSummary> {
        self.manifest.last_run = Some(LastRun {
            finished_at: now_secs(),
            skipped: self.summary.skipped.clone(),
        });
        if let Some(cluster) = &mut self.cluster {
            cluster.save(&mut self.manifest, false)?;
        }
        self.manifest_file.save(&self.manifest)?;
        if self.cluster.is_some() {
            cluster::record_working_copy(&self.paths, &self.manifest)?;
        }
        self.summary.chunks = self.manifest.chunk_count();
        self.summary.vectors_complete = self.manifest.vectors_complete();
        self.summary.timings.total_ms = millis(started.elapsed());
        Ok(self.summary)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| duration.as_secs())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The manifest record of `chunk`, given the record its id had before (if any).
fn chunk_record(chunk: &Chunk, previous: Option<&ChunkRecord>) -> ChunkRecord {
    ChunkRecord {
        id: chunk.id,
        start_line: chunk.start_line,
        end_line: chunk.end_line,
        // A vector is current only if its payload's lines still hold.
        embedded: previous.is_some_and(|old| {
            old.embedded && old.start_line == chunk.start_line && old.end_line == chunk.end_line
        }),
    }
}

fn pool_threads(config: &aiex_config::Config) -> usize {
    if config.index.threads == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        config.index.threads
    }
}

fn chunk_options(config: &aiex_config::Config) -> ChunkOptions {
    ChunkOptions {
        max_tokens: config.chunk.max_tokens,
        min_tokens: config.chunk.min_tokens,
        window_lines: config.chunk.window_lines,
        window_overlap: config.chunk.window_overlap,
    }
}

/// Identifies how chunks are cut and their words indexed: a different value means every file
/// must be chunked and indexed again.
fn chunking_fingerprint(config: &aiex_config::Config) -> String {
    let options = chunk_options(config);
    format!(
        "v{}:t{}:{}:{}:{}:{}",
        crate::chunk::CHUNKER_VERSION,
        crate::tokenizer::TOKENIZER_VERSION,
        options.max_tokens,
        options.min_tokens,
        options.window_lines,
        options.window_overlap
    )
}
