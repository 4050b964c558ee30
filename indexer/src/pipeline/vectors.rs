//! Steps 4 and 5 of a run: the vector side (stale deletes, reuse, embedding, checkpoints), then
//! one optimisation of the vector index.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{IndexProgress, IndexRun};
use crate::document::Chunk;
use crate::embed::{load_embedder, Embedder};
use crate::error::{Error, Result};
use crate::store::keyword::KeywordStore;
use crate::store::server::{open_tenant, ServerVectorStore};
use crate::store::vector::{open_store, VectorPayload, VectorPoint, VectorStore};

/// Chunks embedded and written per vector-store batch.
const EMBED_BATCH: usize = 64;
/// Chunks read from the keyword index and written as keyword-only points per batch (server mode).
const KEYWORD_POINT_BATCH: usize = 512;
/// How often embedding progress is made durable.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

impl IndexRun<'_> {
    /// Brings the vector store in line with the manifest: deletes the vectors of chunks that no
    /// longer exist, gives every chunk not yet embedded its vector (reused when the store already
    /// has its id, else embedded), and, when anything was pending, optimises once after the batch.
    pub(super) fn vector_phase(
        &mut self,
        keyword: &KeywordStore,
        embedder_slot: &mut Option<Box<dyn Embedder>>,
    ) -> Result<()> {
        let server = self.server_store()?;
        let edge;
        let vectors: &dyn VectorStore = match &server {
            Some(server) => server,
            None => {
                edge = open_store(self.config, &self.paths.vectors)?;
                edge.as_ref()
            }
        };
        let mut phase = VectorPhase {
            run: self,
            keyword,
            vectors,
            server: server.as_ref(),
            embedder_slot,
            unrecorded: Vec::new(),
        };
        phase.delete_stale()?;
        phase.write_keyword_points()?;
        if phase.embed_pending()? {
            phase.optimise()?;
        }
        Ok(())
    }

    /// In server mode, for a run that computes no vectors: the server's keyword side still follows
    /// the manifest (stale points deleted, keyword-only points for chunks it lacks), since a server
    /// node searches keywords in Qdrant, not in a local index. Nothing to do in embedded mode.
    pub(super) fn keyword_point_phase(&mut self, keyword: &KeywordStore) -> Result<()> {
        let Some(server) = self.server_store()? else {
            return Ok(());
        };
        let mut none = None;
        let mut phase = VectorPhase {
            run: self,
            keyword,
            vectors: &server,
            server: Some(&server),
            embedder_slot: &mut none,
            unrecorded: Vec::new(),
        };
        phase.delete_stale()?;
        phase.write_keyword_points()
    }

    /// The collection's server store, in server mode; cleared when the run starts over (nothing
    /// the server holds for the tenant is tracked then).
    fn server_store(&self) -> Result<Option<ServerVectorStore>> {
        match self.config.vector.backend {
            aiex_config::VectorBackend::Server => {
                let store = open_tenant(self.config, &self.name, self.manifest.kind)?;
                if self.start_over {
                    store.clear()?;
                }
                Ok(Some(store))
            }
            aiex_config::VectorBackend::Edge => Ok(None),
        }
    }
}

/// The vector side of a run, over the stores it reads and writes.
struct VectorPhase<'p, 'a> {
    run: &'p mut IndexRun<'a>,
    /// Where the text of pending chunks is read from (committed by the keyword phase).
    keyword: &'p KeywordStore,
    vectors: &'p dyn VectorStore,
    /// The same store when it is a Qdrant server: points there carry the chunk's text and sparse
    /// vector too.
    server: Option<&'p ServerVectorStore>,
    /// The embedder, loaded when the first chunk needs embedding.
    embedder_slot: &'p mut Option<Box<dyn Embedder>>,
    /// Ids written to the vector store since the last checkpoint.
    unrecorded: Vec<u64>,
}

impl VectorPhase<'_, '_> {
    /// Step 4a: deletes the vectors of chunks that no longer exist.
    ///
    /// Crash ordering: the ids are cleared from the manifest's pending deletes only after the store
    /// has flushed the deletion; until then a crash leaves them pending for the next run.
    fn delete_stale(&mut self) -> Result<()> {
        let manifest = &mut self.run.manifest;
        if manifest.pending_vector_deletes.is_empty() {
            return Ok(());
        }
        self.vectors.delete(&manifest.pending_vector_deletes)?;
        self.vectors.flush()?;
        manifest.pending_vector_deletes.clear();
        self.run.save_manifest()
    }

    /// Step 4b, server mode: writes a keyword-only point for every chunk not yet embedded that the
    /// server lacks, so it is searchable by keyword before (or without) its dense vector.
    ///
    /// Crash ordering: nothing is recorded; the next run asks the server again which points exist.
    fn write_keyword_points(&mut self) -> Result<()> {
        let Some(server) = self.server else {
            return Ok(());
        };
        let pending: Vec<u64> = self
            .run
            .manifest
            .files
            .values()
            .flat_map(|file| file.chunks.iter().filter(|c| !c.embedded).map(|c| c.id))
            .collect();
        for batch in pending.chunks(KEYWORD_POINT_BATCH) {
            if self.run.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let existing = server.existing(batch)?;
            let missing: Vec<u64> = batch
                .iter()
                .copied()
                .filter(|id| !existing.contains(id))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let chunks = self.keyword.get_chunks(&missing)?;
            let chunks: Vec<&Chunk> = missing.iter().filter_map(|id| chunks.get(id)).collect();
            server.upsert_keyword(&chunks)?;
        }
        Ok(())
    }

    /// Step 4b: gives every chunk not yet embedded its vector, in batches, checkpointing every few
    /// seconds and when cancelled. Returns whether any chunk was pending.
    ///
    /// Crash ordering: a chunk is marked embedded in the manifest only at a checkpoint, after the
    /// store has flushed its vector. A crash loses at most the vectors since the last checkpoint's
    /// records, and those vectors are reused, not embedded again, by the next run.
    fn embed_pending(&mut self) -> Result<bool> {
        let pending: Vec<u64> = self
            .run
            .manifest
            .files
            .values()
            .flat_map(|file| file.chunks.iter().filter(|c| !c.embedded).map(|c| c.id))
            .collect();
        let total = pending.len();
        if total == 0 {
            return Ok(false);
        }
        let mut done = 0usize;
        let mut last_checkpoint = Instant::now();
        (self.run.progress)(IndexProgress::Embedding { done, total });
        for batch_ids in pending.chunks(EMBED_BATCH) {
            if self.run.cancel.load(Ordering::Relaxed) {
                self.checkpoint()?;
                return Err(Error::Cancelled);
            }
            self.write_batch(batch_ids)?;
            done += batch_ids.len();
            (self.run.progress)(IndexProgress::Embedding { done, total });
            if last_checkpoint.elapsed() > CHECKPOINT_INTERVAL {
                self.checkpoint()?;
                last_checkpoint = Instant::now();
            }
        }
        self.checkpoint()?;
        Ok(true)
    }

    /// Writes the vectors of one batch: the store's existing vector where it has the id (a moved
    /// chunk, a resumed run), else a new embedding.
    fn write_batch(&mut self, batch_ids: &[u64]) -> Result<()> {
        let chunks = self.keyword.get_chunks(batch_ids)?;
        let mut existing = self.vectors.vectors(batch_ids)?;
        let mut points: Vec<(&Chunk, Vec<f32>)> = Vec::with_capacity(batch_ids.len());
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
                    self.run.summary.vectors_reused += 1;
                    points.push((chunk, vector));
                }
                None => to_embed.push(chunk),
            }
        }
        if !to_embed.is_empty() {
            points.extend(self.embed(to_embed)?);
        }
        self.unrecorded
            .extend(points.iter().map(|(chunk, _)| chunk.id));
        let started = Instant::now();
        let written = match self.server {
            Some(server) => server.upsert_chunks(points),
            None => {
                let name = &self.run.name;
                self.vectors.upsert(
                    points
                        .into_iter()
                        .map(|(chunk, vector)| point(name, chunk, vector))
                        .collect(),
                )
            }
        };
        self.run.summary.timings.vector_write_ms += super::millis(started.elapsed());
        written
    }

    /// Embeds `chunks`, loading the embedder on first use.
    ///
    /// Crash ordering: the embedder's model is recorded in the manifest before its first vector is
    /// written, so vectors of this model are never mistaken for another model's after a crash.
    fn embed<'c>(&mut self, chunks: Vec<&'c Chunk>) -> Result<Vec<(&'c Chunk, Vec<f32>)>> {
        let config = self.run.config;
        let embedder = match self.embedder_slot {
            Some(embedder) => embedder,
            None => self.embedder_slot.insert(load_embedder(config)?),
        };
        if embedder.dimension() != config.embedding.dimension {
            return Err(Error::WrongDimension {
                expected: config.embedding.dimension,
                got: embedder.dimension(),
            });
        }
        let manifest = &mut self.run.manifest;
        if manifest.model_id.as_deref() != Some(embedder.model_id()) {
            manifest.model_id = Some(embedder.model_id().to_string());
            manifest.dimension = Some(embedder.dimension());
            self.run.save_manifest()?;
        }
        let texts: Vec<String> = chunks.iter().map(|chunk| chunk.embedding_text()).collect();
        let embedded = embedder.embed(&texts)?;
        self.run.summary.embedded += embedded.len();
        Ok(chunks.into_iter().zip(embedded).collect())
    }

    /// Makes the vectors written so far durable, then records them in the manifest.
    fn checkpoint(&mut self) -> Result<()> {
        if self.unrecorded.is_empty() {
            return Ok(());
        }
        self.vectors.flush()?;
        let ids: HashSet<u64> = self.unrecorded.drain(..).collect();
        for file in self.run.manifest.files.values_mut() {
            for chunk in &mut file.chunks {
                if ids.contains(&chunk.id) {
                    chunk.embedded = true;
                }
            }
        }
        self.run.save_manifest()
    }

    /// Step 5: optimises the vector index once, after the batch, for collections large enough to
    /// need it.
    fn optimise(&mut self) -> Result<()> {
        if self.vectors.info()?.points < self.run.config.vector.optimize_min_points {
            return Ok(());
        }
        (self.run.progress)(IndexProgress::Optimizing);
        self.vectors.optimize()?;
        self.vectors.flush()
    }
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
