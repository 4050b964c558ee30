//! Step 2 of a run: read, classify and chunk the files the walk left, and build the next manifest.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::walk_phase::ToRead;
use super::{
    chunk_options, chunk_record, millis, pool_threads, FailedFile, IndexProgress, IndexRun,
};
use crate::chunk::{chunk_source, ChunkOptions};
use crate::document::Chunk;
use crate::error::{Error, Result};
use crate::lang::Language;
use crate::manifest::{ChunkRecord, FileRecord, Manifest};
use crate::walk::{classify_content, SkipReason, Walk, WalkedFile};

/// Failed files listed in a run's summary at most (all are counted).
const MAX_FAILED_LISTED: usize = 100;

/// What the keyword phase must write.
#[derive(Default)]
pub(super) struct Changes {
    /// New and modified files, whose chunks replace what the index holds for them.
    pub(super) changed_paths: Vec<String>,
    /// Files in the previous manifest that are gone.
    pub(super) deleted_paths: Vec<String>,
    /// The chunks of the changed files.
    pub(super) changed_chunks: Vec<Chunk>,
    /// The changed files' contents, for the file index of exact and regex search.
    pub(super) changed_files: Vec<ChangedFile>,
}

/// A new or modified file's content.
pub(super) struct ChangedFile {
    pub(super) path: String,
    pub(super) language: Language,
    pub(super) text: String,
}

enum FileOutcome {
    Skipped(SkipReason),
    /// A file of a readable type whose text could not be had (a PDF that is corrupt, encrypted,
    /// image-only or too slow): counted under `reason` and listed with `detail`.
    Failed {
        reason: SkipReason,
        detail: String,
    },
    /// Content identical to the manifest's (only the modification time changed).
    Same {
        hash: String,
    },
    Changed {
        hash: String,
        chunks: Vec<Chunk>,
        text: String,
    },
}

impl IndexRun<'_> {
    /// Reads and chunks `to_read`, then records every outcome in the next manifest (in memory) and
    /// the summary: added, modified, unchanged and deleted files, and the vectors made stale.
    ///
    /// Crash ordering: nothing is written here. Stale vector ids go into the manifest's pending
    /// deletes, which the keyword phase saves with the commit, so a crash before the vector phase
    /// still deletes them on the next run.
    pub(super) fn chunk_phase(&mut self, to_read: ToRead) -> Result<Changes> {
        let started = Instant::now();
        let outcomes = self.read_and_chunk(to_read.files)?;
        self.summary.timings.chunk_ms = millis(started.elapsed());

        let mut changes = Changes::default();
        let mut kept_unreadable = 0usize;
        for (file, outcome) in outcomes {
            match outcome {
                FileOutcome::Skipped(reason) => {
                    *self.summary.skipped.entry(reason).or_default() += 1;
                    if reason == SkipReason::Unreadable && self.keep_previous(file.rel_path) {
                        kept_unreadable += 1;
                    }
                }
                FileOutcome::Failed { reason, detail } => {
                    *self.summary.skipped.entry(reason).or_default() += 1;
                    if self.summary.failed.len() < MAX_FAILED_LISTED {
                        self.summary.failed.push(FailedFile {
                            path: file.rel_path,
                            reason,
                            detail,
                        });
                    }
                }
                FileOutcome::Same { hash } => self.record_same(file, hash),
                FileOutcome::Changed { hash, chunks, text } => {
                    self.record_changed(&file, hash, &chunks);
                    changes.changed_files.push(ChangedFile {
                        path: file.rel_path.clone(),
                        language: file.language,
                        text,
                    });
                    changes.changed_paths.push(file.rel_path);
                    changes.changed_chunks.extend(chunks);
                }
            }
        }
        kept_unreadable += self.keep_under_unreadable_dirs(&to_read.unreadable);
        changes.deleted_paths = self
            .previous
            .files
            .keys()
            .filter(|path| !self.manifest.files.contains_key(*path))
            .cloned()
            .collect();
        let summary = &mut self.summary;
        summary.changed = summary.added + summary.modified;
        summary.deleted = changes.deleted_paths.len();
        summary.unchanged = self.manifest.files.len() - summary.changed - kept_unreadable;
        self.record_stale_vectors(&changes);
        Ok(changes)
    }

    /// Reads and chunks `files` on a pool of `index.threads` threads, reporting progress from here.
    fn read_and_chunk(&mut self, files: Vec<WalkedFile>) -> Result<Vec<(WalkedFile, FileOutcome)>> {
        let total = files.len();
        if total == 0 {
            return Ok(Vec::new());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(pool_threads(self.config))
            .thread_name(|index| format!("aiex-chunk-{index}"))
            .build()
            .map_err(|err| Error::Pool(err.to_string()))?;
        let reader = FileReader {
            collection: &self.name,
            previous: &self.previous,
            rechunk_all: self.rechunk_all(),
            options: chunk_options(self.config),
        };
        let cancel = self.cancel;
        let progress = &mut *self.progress;
        let (sender, receiver) = crossbeam_channel::bounded(256);
        let mut outcomes = Vec::with_capacity(total);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                pool.install(|| {
                    files.into_par_iter().for_each_with(sender, |sender, file| {
                        if cancel.load(Ordering::Relaxed) {
                            return;
                        }
                        let outcome = reader.read(&file);
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

    /// A file that cannot be read right now keeps what was indexed of it: a transient error
    /// (permissions, a file being replaced) must not lose it. Returns whether it was indexed.
    fn keep_previous(&mut self, rel_path: String) -> bool {
        let Some(record) = self.previous.files.get(&rel_path) else {
            return false;
        };
        self.manifest.files.insert(rel_path, record.clone());
        true
    }

    /// Files under directories the walk could not read keep what was indexed of them. Returns how
    /// many were kept.
    fn keep_under_unreadable_dirs(&mut self, unreadable: &Walk) -> usize {
        let mut kept = 0;
        for (path, record) in &self.previous.files {
            if !self.manifest.files.contains_key(path) && unreadable.is_unreadable(path) {
                self.manifest.files.insert(path.clone(), record.clone());
                kept += 1;
            }
        }
        kept
    }

    /// A file whose content did not change keeps its chunks, with its new size and time.
    fn record_same(&mut self, file: WalkedFile, hash: String) {
        let Some(record) = self.previous.files.get(&file.rel_path) else {
            return;
        };
        let record = FileRecord {
            hash,
            size: file.size,
            mtime_ns: mtime_ns(&file),
            ..record.clone()
        };
        self.manifest.files.insert(file.rel_path, record);
    }

    /// A new or modified file gets the records of its new chunks; a chunk id it had before keeps
    /// its embedded flag while its lines hold.
    fn record_changed(&mut self, file: &WalkedFile, hash: String, chunks: &[Chunk]) {
        let old_chunks: HashMap<u64, &ChunkRecord> = self
            .previous
            .files
            .get(&file.rel_path)
            .map(|record| record.chunks.iter().map(|c| (c.id, c)).collect())
            .unwrap_or_default();
        if old_chunks.is_empty() && !self.previous.files.contains_key(&file.rel_path) {
            self.summary.added += 1;
        } else {
            self.summary.modified += 1;
        }
        let records = chunks
            .iter()
            .map(|chunk| chunk_record(chunk, old_chunks.get(&chunk.id).copied()))
            .collect();
        self.manifest.files.insert(
            file.rel_path.clone(),
            FileRecord {
                hash,
                size: file.size,
                mtime_ns: mtime_ns(file),
                language: file.language,
                chunks: records,
            },
        );
    }

    /// Vectors of chunks that no longer exist must leave the vector store: their ids become
    /// pending deletes of the next manifest.
    fn record_stale_vectors(&mut self, changes: &Changes) {
        let live_ids: HashSet<u64> = self
            .manifest
            .files
            .values()
            .flat_map(|file| file.chunks.iter().map(|chunk| chunk.id))
            .collect();
        for path in changes.changed_paths.iter().chain(&changes.deleted_paths) {
            if let Some(record) = self.previous.files.get(path) {
                self.manifest.pending_vector_deletes.extend(
                    record
                        .chunks
                        .iter()
                        .map(|chunk| chunk.id)
                        .filter(|id| !live_ids.contains(id)),
                );
            }
        }
    }
}

fn mtime_ns(file: &WalkedFile) -> u64 {
    u64::try_from(file.mtime_ns).unwrap_or(u64::MAX)
}

/// Reads one file and decides what became of it, on a pool thread.
struct FileReader<'r> {
    collection: &'r str,
    previous: &'r Manifest,
    rechunk_all: bool,
    options: ChunkOptions,
}

impl FileReader<'_> {
    fn read(&self, file: &WalkedFile) -> FileOutcome {
        let bytes = match fs_err::read(&file.abs_path) {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::warn!(path = %file.abs_path.display(), error = %err, "skipping unreadable file");
                return FileOutcome::Skipped(SkipReason::Unreadable);
            }
        };
        let hash = blake3::hash(&bytes).to_hex().to_string();
        if !self.rechunk_all
            && self
                .previous
                .files
                .get(&file.rel_path)
                .is_some_and(|record| record.hash == hash && record.language == file.language)
        {
            return FileOutcome::Same { hash };
        }
        let text = if file.language == Language::Pdf {
            match crate::pdf::extract(bytes) {
                Ok(pages) => crate::pdf::join_pages(&pages),
                Err(failure) => {
                    tracing::warn!(path = %file.abs_path.display(), reason = %failure, "skipping PDF");
                    return FileOutcome::Failed {
                        reason: failure.skip_reason(),
                        detail: failure.to_string(),
                    };
                }
            }
        } else {
            match classify_content(bytes) {
                Ok(text) => text,
                Err(reason) => return FileOutcome::Skipped(reason),
            }
        };
        let raw_chunks = chunk_source(file.language, &text, &self.options);
        let chunks =
            Chunk::from_raw_chunks(self.collection, &file.rel_path, file.language, raw_chunks);
        FileOutcome::Changed { hash, chunks, text }
    }
}
