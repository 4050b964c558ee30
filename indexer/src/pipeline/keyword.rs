//! Step 3 of a run: the keyword commit (chunks, and whole files for exact and regex search), then
//! the manifest.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::chunk_phase::Changes;
use super::{chunk_options, chunk_record, millis, pool_threads, IndexProgress, IndexRun};
use crate::chunk::chunk_source;
use crate::document::Chunk;
use crate::error::Result;
use crate::grep::store::{FileStore, FileWriter};
use crate::manifest::ChunkRecord;
use crate::store::keyword::{KeywordStore, KeywordWriter};
use crate::walk::classify_content;

impl IndexRun<'_> {
    /// Writes the changes to the keyword index (chunks) and the file index (whole files, for exact
    /// and regex search), commits both with the next generation, in server mode brings the
    /// server's files in line, then saves the manifest. Search sees the new generation from here,
    /// before any embedding.
    ///
    /// Crash ordering: each commit carries the generation in its payload, and both come before the
    /// manifest. A crash after either leaves that index ahead of the manifest; the next run sees
    /// an index not at the manifest's generation and rebuilds both from the sources. A crash before
    /// the commits leaves everything at the old generation, and the next run replays the diff
    /// (deletes are by path, so replaying is idempotent). A collection indexed before the file
    /// index existed has none at its generation, so its next run writes it (a backfill).
    pub(super) fn keyword_phase(&mut self, changes: Changes) -> Result<KeywordStore> {
        let started = Instant::now();
        let keyword = KeywordStore::open(&self.paths.keyword)?;
        let files = FileStore::open(&self.paths.grep)?;
        let expected = Some(self.previous.generation);
        let behind = !self.local_current
            || keyword.committed_generation()? != expected
            || files.committed_generation()? != expected;
        if !changes.changed_paths.is_empty() || !changes.deleted_paths.is_empty() || behind {
            self.commit_keyword(&keyword, &files, &changes, behind)?;
        }
        drop(changes);
        if let Some(cluster) = &self.cluster {
            cluster.sync_files(self.config, &self.manifest, &files)?;
        }
        self.manifest.tidy_pending_deletes();
        self.save_manifest()?;
        self.summary.generation = self.manifest.generation;
        self.summary.timings.keyword_ms = millis(started.elapsed());
        (self.progress)(IndexProgress::KeywordCommitted {
            generation: self.manifest.generation,
            chunks: self.manifest.chunk_count(),
        });
        Ok(keyword)
    }

    /// Deletes the changed and deleted paths (or, when the index is not at the previous
    /// manifest's generation, everything, rewriting the unchanged files from their sources), adds
    /// the changed chunks and commits with the next generation.
    fn commit_keyword(
        &mut self,
        keyword: &KeywordStore,
        files: &FileStore,
        changes: &Changes,
        behind: bool,
    ) -> Result<()> {
        let mut writer = keyword.writer(pool_threads(self.config))?;
        let mut file_writer = files.writer()?;
        if behind {
            // An index is not at the manifest's generation (a crash between the commits, a fresh
            // index, or a collection from before the file index): rewrite both from source.
            writer.delete_all()?;
            file_writer.delete_all()?;
            self.summary.chunks_written +=
                self.rewrite_unchanged(&changes.changed_paths, &mut writer, &mut file_writer)?;
        } else {
            for path in changes.changed_paths.iter().chain(&changes.deleted_paths) {
                writer.delete_path(path);
                file_writer.delete_path(path);
            }
        }
        for chunk in &changes.changed_chunks {
            writer.add(chunk)?;
        }
        for file in &changes.changed_files {
            file_writer.add(&file.path, file.language, &file.text)?;
        }
        self.summary.chunks_written += changes.changed_chunks.len();
        self.manifest.generation = self.previous.generation + 1;
        file_writer.commit(self.manifest.generation)?;
        writer.commit(self.manifest.generation)?;
        files.reload()?;
        keyword.reload()
    }

    /// Re-adds the chunks of files that did not change, from their sources (used when the keyword
    /// index must be rebuilt to match the manifest). Files that vanished, became unreadable or
    /// changed meanwhile get their records updated to what is written now, so manifest and index
    /// agree.
    fn rewrite_unchanged(
        &mut self,
        changed_paths: &[String],
        writer: &mut KeywordWriter,
        file_writer: &mut FileWriter,
    ) -> Result<usize> {
        let changed: HashSet<&String> = changed_paths.iter().collect();
        let options = chunk_options(self.config);
        let paths: Vec<String> = self
            .manifest
            .files
            .keys()
            .filter(|path| !changed.contains(path))
            .cloned()
            .collect();
        let mut written = 0;
        for path in paths {
            let Some(record) = self.manifest.files.get(&path) else {
                continue;
            };
            let text = fs_err::read(self.root.join(&path))
                .ok()
                .and_then(|bytes| classify_content(bytes).ok());
            if let Some(text) = &text {
                file_writer.add(&path, record.language, text)?;
            }
            let chunks = text.map(|text| {
                let raw_chunks = chunk_source(record.language, &text, &options);
                Chunk::from_raw_chunks(&self.name, &path, record.language, raw_chunks)
            });
            let old: HashMap<u64, ChunkRecord> =
                record.chunks.iter().map(|c| (c.id, c.clone())).collect();
            let manifest = &mut self.manifest;
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
}
