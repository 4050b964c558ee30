//! One indexing run: walk → diff against the manifest → read and chunk the changed files (bounded
//! pool) → keyword commit (searchable at once) → vectors for new chunks (resumable) → manifest.
//!
//! Crash safety: the keyword commit and the manifest are each atomic. Deletes in tantivy are by path
//! term, so replaying a run against an older manifest converges to the same state. Vector progress
//! is checkpointed into the manifest only after the vector store has flushed, and a chunk whose id
//! is already in the vector store is never embedded again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde::Serialize;

use crate::chunk::{chunk_source, ChunkOptions};
use crate::collection::{default_name, validate_name, IndexDir, WriteLock};
use crate::document::Chunk;
use crate::embed::{load_embedder, Embedder};
use crate::error::{Error, Result};
use crate::manifest::{ChunkRecord, CollectionKind, FileRecord, LastRun, Manifest};
use crate::store::keyword::KeywordStore;
use crate::store::vector::{open_store, VectorPayload, VectorPoint, VectorStore};
use crate::walk::{classify_content, walk, SkipCounts, SkipReason, WalkOptions, WalkedFile};

/// Chunks embedded and written per vector-store batch.
const EMBED_BATCH: usize = 64;
/// How often embedding progress is made durable.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

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
}

/// Progress of a run, reported as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IndexProgress {
    Walked { files: usize, skipped: u64 },
    Chunking { done: usize, total: usize },
    KeywordCommitted { generation: u64, chunks: usize },
    Embedding { done: usize, total: usize },
    Optimizing,
}

/// Time spent in each stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimings {
    pub walk_ms: u64,
    pub chunk_ms: u64,
    pub keyword_ms: u64,
    pub embed_ms: u64,
    pub total_ms: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
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

impl IndexSummary {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

enum FileOutcome {
    Skipped(SkipReason),
    /// Content identical to the manifest's (only the modification time changed).
    Same {
        hash: String,
    },
    Changed {
        hash: String,
        chunks: Vec<Chunk>,
    },
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| duration.as_secs())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Indexes `request.root` into its collection. Blocking and CPU-heavy: run it on a thread of its own.
pub fn index_directory(
    config: &aiex_config::Config,
    mut request: IndexRequest,
    progress: &mut dyn FnMut(IndexProgress),
    cancel: &AtomicBool,
) -> Result<IndexSummary> {
    let started = Instant::now();
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
    let index_dir = IndexDir::new(config.index_dir());
    let paths = index_dir.collection_paths(&name);
    let _lock = WriteLock::acquire(&name, &paths)?;

    let mut previous = Manifest::load(&paths.manifest)?;
    if let Some(manifest) = &previous {
        if manifest.kind != request.kind {
            return Err(Error::CollectionKindMismatch {
                name,
                existing: manifest.kind.name(),
                requested: request.kind.name(),
            });
        }
        if manifest.root != root {
            return Err(Error::CollectionRootMismatch {
                name,
                existing: manifest.root.clone(),
                requested: root,
            });
        }
    }
    let embeddings_wanted = config.embedding.enabled && request.embed;
    if let Some(manifest) = &previous {
        if let Some(indexed) = manifest.model_id.as_ref() {
            let configured = config.embedding_model_key().unwrap_or_default();
            if embeddings_wanted && !request.rebuild && *indexed != configured {
                return Err(Error::ModelMismatch {
                    name,
                    indexed: indexed.clone(),
                    configured,
                });
            }
        }
    }
    // Walk first: invalid globs fail here, before anything on disk is touched.
    let walk_started = Instant::now();
    let walked = walk(&root, &WalkOptions::from(&config.index))?;
    if request.rebuild || previous.is_none() {
        // Without a manifest nothing in the stores can be trusted (a rebuild, or a collection whose
        // removal was interrupted). The manifest goes first, so a crash here leaves no manifest
        // pointing at half-deleted stores.
        if paths.manifest.exists() {
            fs_err::remove_file(&paths.manifest).map_err(Error::io(&paths.manifest))?;
        }
        for dir in [&paths.keyword, &paths.vectors] {
            if dir.exists() {
                fs_err::remove_dir_all(dir).map_err(Error::io(dir))?;
            }
        }
        previous = None;
    }
    let previous = previous.unwrap_or_else(|| Manifest {
        kind: request.kind,
        ..Manifest::new(&name, &root)
    });

    let mut summary = IndexSummary {
        collection: name.clone(),
        root: root.clone(),
        scanned: walked.files.len(),
        skipped: walked.skipped,
        ..IndexSummary::default()
    };
    progress(IndexProgress::Walked {
        files: walked.files.len(),
        skipped: summary.skipped_total(),
    });
    let chunking = chunking_fingerprint(config);
    let rechunk_all = previous.chunking != chunking;
    let walked_unreadable = crate::walk::Walk {
        unreadable: walked.unreadable,
        ..crate::walk::Walk::default()
    };
    let mut unchanged: Vec<(String, FileRecord)> = Vec::new();
    let mut to_read: Vec<WalkedFile> = Vec::new();
    for file in walked.files {
        match previous.files.get(&file.rel_path) {
            Some(record)
                if !rechunk_all
                    && record.size == file.size
                    && u128::from(record.mtime_ns) == file.mtime_ns
                    && record.language == file.language =>
            {
                unchanged.push((file.rel_path, record.clone()));
            }
            _ => to_read.push(file),
        }
    }
    summary.timings.walk_ms = millis(walk_started.elapsed());

    // Read, classify and chunk on the bounded pool.
    let chunk_started = Instant::now();
    let outcomes = chunk_files(
        config,
        &name,
        &previous,
        rechunk_all,
        to_read,
        progress,
        cancel,
    )?;
    summary.timings.chunk_ms = millis(chunk_started.elapsed());

    let mut manifest = Manifest {
        files: unchanged.into_iter().collect(),
        last_run: None,
        chunking,
        ..previous.clone()
    };
    let mut kept_unreadable = 0usize;
    let mut changed_chunks: Vec<Chunk> = Vec::new();
    let mut changed_paths: Vec<String> = Vec::new();
    for (file, outcome) in outcomes {
        let mtime_ns = u64::try_from(file.mtime_ns).unwrap_or(u64::MAX);
        match outcome {
            FileOutcome::Skipped(reason) => {
                *summary.skipped.entry(reason).or_default() += 1;
                // A file that cannot be read right now keeps what was indexed of it: a transient
                // error (permissions, a file being replaced) must not lose it.
                if reason == SkipReason::Unreadable {
                    if let Some(record) = previous.files.get(&file.rel_path) {
                        manifest.files.insert(file.rel_path, record.clone());
                        kept_unreadable += 1;
                    }
                }
            }
            FileOutcome::Same { hash } => {
                if let Some(record) = previous.files.get(&file.rel_path) {
                    manifest.files.insert(
                        file.rel_path,
                        FileRecord {
                            hash,
                            size: file.size,
                            mtime_ns,
                            ..record.clone()
                        },
                    );
                }
            }
            FileOutcome::Changed { hash, chunks } => {
                let old_chunks: HashMap<u64, &ChunkRecord> = previous
                    .files
                    .get(&file.rel_path)
                    .map(|record| record.chunks.iter().map(|c| (c.id, c)).collect())
                    .unwrap_or_default();
                if old_chunks.is_empty() && !previous.files.contains_key(&file.rel_path) {
                    summary.added += 1;
                } else {
                    summary.modified += 1;
                }
                let records = chunks
                    .iter()
                    .map(|chunk| chunk_record(chunk, old_chunks.get(&chunk.id).copied()))
                    .collect();
                manifest.files.insert(
                    file.rel_path.clone(),
                    FileRecord {
                        hash,
                        size: file.size,
                        mtime_ns,
                        language: file.language,
                        chunks: records,
                    },
                );
                changed_paths.push(file.rel_path);
                changed_chunks.extend(chunks);
            }
        }
    }
    // Files under directories the walk could not read keep what was indexed of them.
    for (path, record) in &previous.files {
        if !manifest.files.contains_key(path) && walked_unreadable.is_unreadable(path) {
            manifest.files.insert(path.clone(), record.clone());
            kept_unreadable += 1;
        }
    }
    let deleted_paths: Vec<String> = previous
        .files
        .keys()
        .filter(|path| !manifest.files.contains_key(*path))
        .cloned()
        .collect();
    summary.changed = summary.added + summary.modified;
    summary.deleted = deleted_paths.len();
    summary.unchanged = manifest.files.len() - summary.changed - kept_unreadable;

    // Vectors of chunks that no longer exist must leave the vector store.
    let live_ids: HashSet<u64> = manifest
        .files
        .values()
        .flat_map(|file| file.chunks.iter().map(|chunk| chunk.id))
        .collect();
    for path in changed_paths.iter().chain(&deleted_paths) {
        if let Some(record) = previous.files.get(path) {
            manifest.pending_vector_deletes.extend(
                record
                    .chunks
                    .iter()
                    .map(|chunk| chunk.id)
                    .filter(|id| !live_ids.contains(id)),
            );
        }
    }

    // Keyword side: committed, and searchable, before any embedding.
    let keyword_started = Instant::now();
    let keyword = KeywordStore::open(&paths.keyword)?;
    let keyword_behind = keyword.committed_generation()? != Some(previous.generation);
    if !changed_paths.is_empty() || !deleted_paths.is_empty() || keyword_behind {
        let threads = pool_threads(config);
        let mut writer = keyword.writer(threads)?;
        if keyword_behind {
            // The keyword index is not at the manifest's generation (a crash between the two
            // commits, or a fresh index): rewrite every chunk from source to converge.
            writer.delete_all()?;
            summary.chunks_written += rewrite_unchanged(
                config,
                &name,
                &root,
                &mut manifest,
                &changed_paths,
                &mut writer,
            )?;
        } else {
            for path in changed_paths.iter().chain(&deleted_paths) {
                writer.delete_path(path);
            }
        }
        for chunk in &changed_chunks {
            writer.add(chunk)?;
        }
        summary.chunks_written += changed_chunks.len();
        manifest.generation = previous.generation + 1;
        writer.commit(manifest.generation)?;
        keyword.reload()?;
    }
    drop(changed_chunks);
    manifest.tidy_pending_deletes();
    manifest.save(&paths.manifest)?;
    summary.generation = manifest.generation;
    summary.timings.keyword_ms = millis(keyword_started.elapsed());
    progress(IndexProgress::KeywordCommitted {
        generation: manifest.generation,
        chunks: manifest.chunk_count(),
    });

    // Vector side.
    let embed_started = Instant::now();
    if embeddings_wanted {
        let vectors = open_store(config, &paths.vectors)?;
        embed_pending(
            config,
            &name,
            &keyword,
            vectors.as_ref(),
            &mut manifest,
            &paths.manifest,
            &mut request.embedder,
            &mut summary,
            progress,
            cancel,
        )?;
    }
    summary.timings.embed_ms = millis(embed_started.elapsed());

    manifest.last_run = Some(LastRun {
        finished_at: now_secs(),
        skipped: summary.skipped.clone(),
    });
    manifest.save(&paths.manifest)?;
    summary.chunks = manifest.chunk_count();
    summary.vectors_complete = manifest.vectors_complete();
    summary.timings.total_ms = millis(started.elapsed());
    Ok(summary)
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

/// Identifies how chunks are cut: a different value means every file must be chunked again.
fn chunking_fingerprint(config: &aiex_config::Config) -> String {
    let options = chunk_options(config);
    format!(
        "v{}:{}:{}:{}:{}",
        crate::chunk::CHUNKER_VERSION,
        options.max_tokens,
        options.min_tokens,
        options.window_lines,
        options.window_overlap
    )
}

fn read_and_chunk(
    collection: &str,
    previous: &Manifest,
    rechunk_all: bool,
    file: &WalkedFile,
    options: &ChunkOptions,
) -> FileOutcome {
    let bytes = match fs_err::read(&file.abs_path) {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::warn!(path = %file.abs_path.display(), error = %err, "skipping unreadable file");
            return FileOutcome::Skipped(SkipReason::Unreadable);
        }
    };
    let hash = blake3::hash(&bytes).to_hex().to_string();
    if !rechunk_all
        && previous
            .files
            .get(&file.rel_path)
            .is_some_and(|record| record.hash == hash && record.language == file.language)
    {
        return FileOutcome::Same { hash };
    }
    let text = match classify_content(bytes) {
        Ok(text) => text,
        Err(reason) => return FileOutcome::Skipped(reason),
    };
    let raw_chunks = chunk_source(file.language, &text, options);
    let chunks = Chunk::from_raw_chunks(collection, &file.rel_path, file.language, raw_chunks);
    FileOutcome::Changed { hash, chunks }
}

/// Reads and chunks `files` on a pool of `index.threads` threads, reporting progress from here.
fn chunk_files(
    config: &aiex_config::Config,
    collection: &str,
    previous: &Manifest,
    rechunk_all: bool,
    files: Vec<WalkedFile>,
    progress: &mut dyn FnMut(IndexProgress),
    cancel: &AtomicBool,
) -> Result<Vec<(WalkedFile, FileOutcome)>> {
    let total = files.len();
    if total == 0 {
        return Ok(Vec::new());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(pool_threads(config))
        .thread_name(|index| format!("aiex-chunk-{index}"))
        .build()
        .map_err(|err| Error::Pool(err.to_string()))?;
    let options = chunk_options(config);
    let (sender, receiver) = crossbeam_channel::bounded(256);
    let mut outcomes = Vec::with_capacity(total);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            pool.install(|| {
                files.into_par_iter().for_each_with(sender, |sender, file| {
                    if cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let outcome =
                        read_and_chunk(collection, previous, rechunk_all, &file, &options);
                    // The receiver only goes away when the run is abandoned.
                    let _ = sender.send((file, outcome));
                });
            });
        });
        let mut last_report = Instant::now();
        for item in receiver.iter() {
            outcomes.push(item);
            if last_report.elapsed() > Duration::from_millis(100) || outcomes.len() == total {
                progress(IndexProgress::Chunking {
                    done: outcomes.len(),
                    total,
                });
                last_report = Instant::now();
            }
        }
    });
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    outcomes.sort_by(|a, b| a.0.rel_path.cmp(&b.0.rel_path));
    Ok(outcomes)
}

/// Re-adds the chunks of files that did not change, from their sources (used when the keyword index
/// must be rebuilt to match the manifest). Files that vanished, became unreadable or changed
/// meanwhile get their records updated to what is written now, so manifest and index agree.
fn rewrite_unchanged(
    config: &aiex_config::Config,
    collection: &str,
    root: &Path,
    manifest: &mut Manifest,
    changed_paths: &[String],
    writer: &mut crate::store::keyword::KeywordWriter,
) -> Result<usize> {
    let changed: HashSet<&String> = changed_paths.iter().collect();
    let options = chunk_options(config);
    let paths: Vec<String> = manifest
        .files
        .keys()
        .filter(|path| !changed.contains(path))
        .cloned()
        .collect();
    let mut written = 0;
    for path in paths {
        let Some(record) = manifest.files.get(&path) else {
            continue;
        };
        let text = fs_err::read(root.join(&path))
            .ok()
            .and_then(|bytes| classify_content(bytes).ok());
        let chunks = text.map(|text| {
            let raw_chunks = chunk_source(record.language, &text, &options);
            Chunk::from_raw_chunks(collection, &path, record.language, raw_chunks)
        });
        let old: HashMap<u64, ChunkRecord> =
            record.chunks.iter().map(|c| (c.id, c.clone())).collect();
        let Some(chunks) = chunks else {
            manifest.pending_vector_deletes.extend(old.keys());
            manifest.files.remove(&path);
            continue;
        };
        let mut records = Vec::with_capacity(chunks.len());
        for chunk in &chunks {
            writer.add(chunk)?;
            written += 1;
            records.push(chunk_record(chunk, old.get(&chunk.id)));
        }
        let new_ids: HashSet<u64> = records.iter().map(|c| c.id).collect();
        manifest
            .pending_vector_deletes
            .extend(old.keys().filter(|id| !new_ids.contains(id)));
        if let Some(record) = manifest.files.get_mut(&path) {
            record.chunks = records;
        }
    }
    Ok(written)
}

#[allow(clippy::too_many_arguments)]
fn embed_pending(
    config: &aiex_config::Config,
    collection: &str,
    keyword: &KeywordStore,
    vectors: &dyn VectorStore,
    manifest: &mut Manifest,
    manifest_path: &Path,
    embedder_slot: &mut Option<Box<dyn Embedder>>,
    summary: &mut IndexSummary,
    progress: &mut dyn FnMut(IndexProgress),
    cancel: &AtomicBool,
) -> Result<()> {
    if !manifest.pending_vector_deletes.is_empty() {
        vectors.delete(&manifest.pending_vector_deletes)?;
        vectors.flush()?;
        manifest.pending_vector_deletes.clear();
        manifest.save(manifest_path)?;
    }
    let pending: Vec<u64> = manifest
        .files
        .values()
        .flat_map(|file| file.chunks.iter().filter(|c| !c.embedded).map(|c| c.id))
        .collect();
    let total = pending.len();
    if total == 0 {
        return Ok(());
    }
    let mut done = 0usize;
    let mut embedded_ids: Vec<u64> = Vec::new();
    let mut last_checkpoint = Instant::now();
    progress(IndexProgress::Embedding { done, total });
    for batch_ids in pending.chunks(EMBED_BATCH) {
        if cancel.load(Ordering::Relaxed) {
            checkpoint(vectors, manifest, manifest_path, &mut embedded_ids)?;
            return Err(Error::Cancelled);
        }
        let chunks = keyword.get_chunks(batch_ids)?;
        let mut existing = vectors.vectors(batch_ids)?;
        let mut points = Vec::with_capacity(batch_ids.len());
        let mut to_embed: Vec<&Chunk> = Vec::new();
        for id in batch_ids {
            let Some(chunk) = chunks.get(id) else {
                // Not in the keyword index (cannot happen after a successful commit); leave it
                // pending rather than invent its text.
                tracing::warn!(id, "chunk missing from the keyword index");
                continue;
            };
            match existing.remove(id) {
                Some(vector) => {
                    summary.vectors_reused += 1;
                    points.push(point(collection, chunk, vector));
                }
                None => to_embed.push(chunk),
            }
        }
        if !to_embed.is_empty() {
            let embedder = match embedder_slot {
                Some(embedder) => embedder,
                None => embedder_slot.insert(load_embedder(config)?),
            };
            if embedder.dimension() != config.embedding.dimension {
                return Err(Error::WrongDimension {
                    expected: config.embedding.dimension,
                    got: embedder.dimension(),
                });
            }
            if manifest.model_id.as_deref() != Some(embedder.model_id()) {
                // Recorded before the first vector is written, so vectors of this model are
                // never mistaken for another model's after a crash.
                manifest.model_id = Some(embedder.model_id().to_string());
                manifest.dimension = Some(embedder.dimension());
                manifest.save(manifest_path)?;
            }
            let texts: Vec<String> = to_embed
                .iter()
                .map(|chunk| chunk.embedding_text())
                .collect();
            let embedded = embedder.embed(&texts)?;
            summary.embedded += embedded.len();
            for (chunk, vector) in to_embed.into_iter().zip(embedded) {
                points.push(point(collection, chunk, vector));
            }
        }
        embedded_ids.extend(points.iter().map(|point| point.id));
        vectors.upsert(points)?;
        done += batch_ids.len();
        progress(IndexProgress::Embedding { done, total });
        if last_checkpoint.elapsed() > CHECKPOINT_INTERVAL {
            checkpoint(vectors, manifest, manifest_path, &mut embedded_ids)?;
            last_checkpoint = Instant::now();
        }
    }
    checkpoint(vectors, manifest, manifest_path, &mut embedded_ids)?;
    if vectors.info()?.points >= config.vector.optimize_min_points {
        progress(IndexProgress::Optimizing);
        vectors.optimize()?;
        vectors.flush()?;
    }
    Ok(())
}

fn point(collection: &str, chunk: &Chunk, vector: Vec<f32>) -> VectorPoint {
    VectorPoint {
        id: chunk.id,
        vector,
        payload: VectorPayload {
            collection: collection.to_string(),
            path: chunk.path.clone(),
            language: chunk.language.name().to_string(),
            symbol: chunk.symbol.clone(),
            kind: chunk.kind.name().to_string(),
            start_line: chunk.start_line,
            end_line: chunk.end_line,
            hash: chunk.hash.clone(),
        },
    }
}

/// Makes the vectors written so far durable, then records them in the manifest.
fn checkpoint(
    vectors: &dyn VectorStore,
    manifest: &mut Manifest,
    manifest_path: &Path,
    embedded_ids: &mut Vec<u64>,
) -> Result<()> {
    if embedded_ids.is_empty() {
        return Ok(());
    }
    vectors.flush()?;
    let ids: HashSet<u64> = embedded_ids.drain(..).collect();
    for file in manifest.files.values_mut() {
        for chunk in &mut file.chunks {
            if ids.contains(&chunk.id) {
                chunk.embedded = true;
            }
        }
    }
    manifest.save(manifest_path)
}
