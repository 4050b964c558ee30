//! `index --push NAME`: copies a collection indexed in embedded mode (the tantivy keyword index and
//! the `qdrant-edge` vectors of the data directory) into the Qdrant server of `vector.url`, without
//! embedding anything again.
//!
//! Reading and writing are configured apart: the collection is read from the data directory
//! whatever `vector.backend` says (embedded stores are always there), and written to `vector.url`
//! (with `vector.api_key` and the server layout settings). The dense vectors come from the
//! embedded store; the BM25 sparse vectors and the payloads are made from the chunks stored in the
//! keyword index, as a server-mode run makes them ([`crate::store::server::ServerVectorStore::upsert_chunks`]).
//!
//! In the cluster the push writes what a server-mode run writes, under the collection's lease:
//! the registry entry, marked `dirty` first (any earlier state of the collection there is dropped:
//! its file entries, then its points), then per batch the full points followed by the file entries
//! that record them, then the files for exact and regex search ([`crate::store::server::files`]),
//! and at the end the registry entry of the whole manifest, clean. So a push
//! that dies leaves a `dirty` collection whose entries record only points that exist: the next
//! push starts over, and the next server-mode `index` deletes the points no entry records and
//! indexes the files not yet recorded, like after any dead run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::collection::{validate_name, IndexDir, WriteLock};
use crate::error::{Error, Result};
use crate::grep::store::FileStore;
use crate::manifest::{FileRecord, Manifest};
use crate::store::keyword::KeywordStore;
use crate::store::server::{
    open_tenant, Lease, MetaStore, ServerFiles, ServerStoreOptions, UPSERT_BATCH,
};
use crate::store::vector::{EdgeStoreOptions, EdgeVectorStore, VectorStore};

/// Chunks read and written per step (whole files): several upsert requests' worth, so that few
/// requests go out part-full.
const PUSH_BATCH: usize = 4 * UPSERT_BATCH;

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushSummary {
    pub collection: String,
    /// The server's gRPC URL.
    pub url: String,
    /// The Qdrant collection the points went to.
    pub qdrant_collection: String,
    pub files: usize,
    pub chunks: usize,
    /// Points written (one per chunk, dense and sparse vectors and payload).
    pub points: usize,
    /// The registry revision the collection has on the server now.
    pub revision: u64,
    pub took_ms: u64,
    /// Of which: writing the points (upsert requests, each waited for).
    pub upsert_ms: u64,
    /// Of which: writing the files for exact and regex search.
    pub files_ms: u64,
}

/// Progress of a push: points written so far, of all.
pub type PushProgress<'a> = &'a mut dyn FnMut(usize, usize);

/// Copies the embedded collection `name` into the server of `config.vector.url`. Refuses (a
/// [`Error::PushRefused`]) a collection the data directory does not hold in embedded form, one not
/// fully embedded, one embedded with another model or dimension than the configured ones (which
/// name the server's layout), and a configuration without `vector.url`. Blocking.
pub fn push_collection(
    config: &aiex_config::Config,
    name: &str,
    progress: PushProgress<'_>,
) -> Result<PushSummary> {
    let started = Instant::now();
    let refuse = |reason: String| Error::PushRefused {
        name: name.to_string(),
        reason,
    };
    let url = config.vector.url.clone().ok_or_else(|| {
        refuse(
            "vector.url is not set: set it (or AIEX__VECTOR__URL) to the Qdrant server's gRPC URL"
                .to_string(),
        )
    })?;
    validate_name(name)?;
    let index_dir = IndexDir::new(config.index_dir());
    let paths = index_dir.collection_paths(name);
    let local = Manifest::load(&paths.manifest)?.ok_or_else(|| {
        refuse(format!(
            "it is not in the data directory ({}); `aiex-research index --status` with \
             vector.backend = \"edge\" lists the collections there",
            index_dir.path().display()
        ))
    })?;
    let has_shard = paths.vectors.join("edge_config.json").is_file();
    // A manifest with a registry revision and no shard was written by server mode (the cache of
    // a collection the cluster holds); with a shard, it is an embedded collection whose manifest
    // a server-mode listing refreshed after an earlier push.
    if local.revision > 0 && !has_shard {
        return Err(refuse(format!(
            "{} is a server-mode cache, not an embedded collection (the cluster has it already)",
            paths.dir.display()
        )));
    }
    let _lock = WriteLock::acquire(name, &paths)?;
    check_complete(&local, &refuse)?;
    if !has_shard {
        return Err(refuse(format!(
            "{} holds no embedded vector store; {}",
            paths.dir.display(),
            finish_hint(&local)
        )));
    }
    check_layout(config, &local, &refuse)?;

    // Read side: the keyword index at the manifest's generation, the embedded vectors.
    let keyword = KeywordStore::open(&paths.keyword)?;
    if keyword.committed_generation()? != Some(local.generation) {
        return Err(refuse(format!(
            "its keyword index is not at the manifest's generation (a run was interrupted); {}",
            finish_hint(&local)
        )));
    }
    let vectors = EdgeVectorStore::open(
        &paths.vectors,
        EdgeStoreOptions {
            dimension: config.embedding.dimension,
            hnsw_ef: config.vector.hnsw_ef,
            optimize_min_points: config.vector.optimize_min_points,
        },
    )?;

    // Write side: the lease, then the collection marked as being written.
    let meta = MetaStore::connect(config)?;
    let lease = Lease::for_collection(config, &meta, name)?;
    let previous = meta.entry(name)?;
    if let Some(entry) = &previous {
        let head = &entry.head;
        if head.kind != local.kind || head.root != local.root {
            return Err(refuse(format!(
                "the server's collection `{name}` is a {} collection of {}, not a {} collection \
                 of {}; remove it there first (`aiex-research index --remove {name}` with \
                 vector.backend = \"server\")",
                head.kind.name(),
                head.root.display(),
                local.kind.name(),
                local.root.display()
            )));
        }
    }
    let store = open_tenant(config, name, local.kind)?;
    let mut pushed = Manifest {
        files: BTreeMap::new(),
        pending_vector_deletes: Vec::new(),
        revision: previous.as_ref().map_or(0, |entry| entry.head.revision) + 1,
        ..local.clone()
    };
    lease.check()?;
    meta.write_entry(&pushed, true)?;
    meta.delete_files(name)?;
    store.clear()?;

    // The points, batch by batch, each followed by the file entries that record them.
    let total = local.chunk_count();
    let mut written = 0;
    let mut batch: Vec<(&String, &FileRecord)> = Vec::new();
    let mut batch_chunks = 0;
    let files: Vec<(&String, &FileRecord)> = local.files.iter().collect();
    let mut upsert_time = Duration::ZERO;
    for (index, file) in files.iter().enumerate() {
        batch.push(*file);
        batch_chunks += file.1.chunks.len();
        if batch_chunks < PUSH_BATCH && index + 1 < files.len() {
            continue;
        }
        lease.check()?;
        written += push_batch(
            &keyword,
            &vectors,
            &store,
            &batch,
            &local,
            &refuse,
            &mut upsert_time,
        )?;
        let changed: Vec<(&str, &FileRecord)> = batch
            .iter()
            .map(|(path, record)| (path.as_str(), *record))
            .collect();
        meta.write_files(name, &changed, &[])?;
        for (path, record) in batch.drain(..) {
            pushed.files.insert(path.clone(), record.clone());
        }
        batch_chunks = 0;
        progress(written, total);
    }

    // The files, for exact and regex search on any node (the same copy a server-mode run keeps).
    let files_started = Instant::now();
    match FileStore::open_existing(&paths.grep)? {
        Some(grep) if grep.committed_generation()? == Some(local.generation) => {
            if let Some(files) = ServerFiles::connect(config, true)? {
                files.sync(name, &local, &grep, &|| lease.check())?;
            }
        }
        _ => tracing::warn!(
            collection = name,
            "no file index at the manifest's generation: exact and regex search on the server \
             start with the next server-mode `index` run"
        ),
    }

    let files_time = files_started.elapsed();

    lease.check()?;
    pushed.revision += 1;
    meta.write_entry(&pushed, false)?;
    drop(lease);
    Ok(PushSummary {
        collection: name.to_string(),
        url,
        qdrant_collection: store.collection().to_string(),
        files: pushed.files.len(),
        chunks: total,
        points: written,
        revision: pushed.revision,
        took_ms: millis(started.elapsed()),
        upsert_ms: millis(upsert_time),
        files_ms: millis(files_time),
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Writes the full points of the chunks of `files`: chunks from the keyword index, dense vectors
/// from the embedded store. Returns how many were written.
fn push_batch(
    keyword: &KeywordStore,
    vectors: &EdgeVectorStore,
    store: &crate::store::server::ServerVectorStore,
    files: &[(&String, &FileRecord)],
    local: &Manifest,
    refuse: &dyn Fn(String) -> Error,
    upsert_time: &mut Duration,
) -> Result<usize> {
    let ids: Vec<u64> = files
        .iter()
        .flat_map(|(_, record)| record.chunks.iter().map(|chunk| chunk.id))
        .collect();
    let mut chunks = keyword.get_chunks(&ids)?;
    let mut dense = vectors.vectors(&ids)?;
    let mut ordered = Vec::with_capacity(ids.len());
    let mut ordered_vectors = Vec::with_capacity(ids.len());
    for id in &ids {
        let (Some(chunk), Some(vector)) = (chunks.remove(id), dense.remove(id)) else {
            return Err(refuse(format!(
                "chunk {id} is in its manifest but not in both of its stores; {}",
                finish_hint(local)
            )));
        };
        ordered.push(chunk);
        ordered_vectors.push(vector);
    }
    let started = Instant::now();
    store.upsert_chunks(ordered.iter().zip(ordered_vectors).collect())?;
    *upsert_time += started.elapsed();
    Ok(ordered.len())
}

/// Refuses a collection with chunks not embedded yet.
fn check_complete(local: &Manifest, refuse: &dyn Fn(String) -> Error) -> Result<()> {
    let (embedded, chunks) = (local.embedded_count(), local.chunk_count());
    if embedded < chunks || local.model_id.is_none() && chunks > 0 {
        return Err(refuse(format!(
            "it is not fully embedded ({embedded} of {chunks} chunks); {}",
            finish_hint(local)
        )));
    }
    Ok(())
}

/// Refuses a collection whose vectors were made by another model, or of another dimension, than
/// the configured ones, which name the server's Qdrant collection and embed the queries there.
fn check_layout(
    config: &aiex_config::Config,
    local: &Manifest,
    refuse: &dyn Fn(String) -> Error,
) -> Result<()> {
    let options = ServerStoreOptions::from_config(config, local.kind.name())?;
    let model = local.model_id.clone().unwrap_or_default();
    let dimension = local.dimension.unwrap_or(options.dimension);
    if model.is_empty() || (model == options.model && dimension == options.dimension) {
        return Ok(());
    }
    Err(refuse(format!(
        "it was embedded with `{model}` ({dimension} dimensions), but the server layout is for \
         `{}` ({} dimensions, Qdrant collection {}); configure the collection's model \
         (embedding.model_id, embedding.dimension) or index it again with the configured one",
        options.model,
        options.dimension,
        options.collection_name()
    )))
}

/// How to finish an embedded collection: an embedded-mode `index` run of its root.
fn finish_hint(local: &Manifest) -> String {
    format!(
        "finish it first with `AIEX__VECTOR__BACKEND=edge aiex-research index {} --name {}`",
        local.root.display(),
        local.collection
    )
}
