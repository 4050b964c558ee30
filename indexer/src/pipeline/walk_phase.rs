//! Step 1 of a run: the walk, and which files must be read.

use std::time::Instant;

use super::{chunking_fingerprint, millis, IndexProgress, IndexRun};
use crate::error::{Error, Result};
use crate::manifest::{CollectionKind, Manifest};
use crate::walk::{walk, Walk, WalkOptions, WalkedFile};

/// What the walk leaves for the chunk phase.
pub(super) struct ToRead {
    /// New files, and files whose size, modification time or language differ from the manifest's.
    pub(super) files: Vec<WalkedFile>,
    /// The paths the walk could not read (only its `unreadable` list is filled).
    pub(super) unreadable: Walk,
}

impl IndexRun<'_> {
    /// Walks the root and starts the next manifest from the files that are unchanged by size and
    /// modification time; the others are left to read.
    ///
    /// Crash ordering: the walk comes first, so invalid globs fail before anything on disk is
    /// touched. When the run starts over, the manifest is removed before the stores, so a crash in
    /// between leaves no manifest pointing at half-deleted stores.
    pub(super) fn walk_phase(&mut self) -> Result<ToRead> {
        let started = Instant::now();
        let options = WalkOptions {
            pdf: self.manifest.kind == CollectionKind::Docs,
            ..WalkOptions::from(&self.config.index)
        };
        let walked = walk(&self.root, &options)?;
        if self.start_over {
            self.drop_stores()?;
        }
        self.summary.scanned = walked.files.len();
        self.summary.skipped = walked.skipped;
        (self.progress)(IndexProgress::Walked {
            files: walked.files.len(),
            skipped: self.summary.skipped_total(),
        });
        let files = self.diff_by_metadata(walked.files);
        self.summary.timings.walk_ms = millis(started.elapsed());
        Ok(ToRead {
            files,
            unreadable: Walk {
                unreadable: walked.unreadable,
                ..Walk::default()
            },
        })
    }

    /// Without a manifest nothing in the stores can be trusted (a rebuild, or a collection whose
    /// removal was interrupted): removes the manifest first, then the stores, and forgets the
    /// previous manifest.
    fn drop_stores(&mut self) -> Result<()> {
        let paths = &self.paths;
        Manifest::remove(&paths.manifest)?;
        self.manifest_file.forget();
        for dir in [&paths.keyword, &paths.grep, &paths.vectors] {
            if dir.exists() {
                fs_err::remove_dir_all(dir).map_err(Error::io(dir))?;
            }
        }
        if let Some(cluster) = &mut self.cluster {
            cluster.forget_files(&self.name)?;
        }
        self.previous = Manifest {
            kind: self.previous.kind,
            revision: self.previous.revision,
            ..Manifest::new(&self.name, &self.root)
        };
        Ok(())
    }

    /// Starts the next manifest with the files whose size, modification time and language match
    /// the previous manifest (all of them are read again when the chunking changed), and returns
    /// the others.
    fn diff_by_metadata(&mut self, files: Vec<WalkedFile>) -> Vec<WalkedFile> {
        self.manifest = Manifest {
            files: Default::default(),
            last_run: None,
            chunking: chunking_fingerprint(self.config),
            ..self.previous.clone()
        };
        let rechunk_all = self.rechunk_all();
        let mut to_read = Vec::new();
        for file in files {
            match self.previous.files.get(&file.rel_path) {
                Some(record)
                    if !rechunk_all
                        && record.size == file.size
                        && u128::from(record.mtime_ns) == file.mtime_ns
                        && record.language == file.language =>
                {
                    self.manifest.files.insert(file.rel_path, record.clone());
                }
                _ => to_read.push(file),
            }
        }
        to_read
    }
}
