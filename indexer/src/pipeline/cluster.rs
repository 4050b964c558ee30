//! Server mode: a run's index state lives in the cluster ([`crate::store::server::meta`]), so the
//! run can start on any node, and the data directory holds only a cache of it.
//!
//! At the start: the collection's lease is taken (refused while another run holds it), the
//! manifest is read from Qdrant, and the registry entry is marked `dirty`. If it was dirty
//! already, a run died: every point of the tenant that the manifest does not record is deleted,
//! and the files it did not record are redone like any new file. At every save: the file entries
//! that changed since the last save are written, then the registry entry. At the end: the entry
//! is written clean, and the lease released.
//!
//! Crash ordering: points are written before the entries that record them embedded, file
//! entries before the registry entry, and the deletes of stale points happen only after the
//! entries no longer name them. So at any time every embedded chunk that an entry records has its
//! full point; what a dead run leaves beyond that (orphan points, unrecorded deletes) is found
//! by the next run through the `dirty` flag.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::manifest::{FileRecord, Manifest};
use crate::store::server::{open_tenant, Lease, MetaStore};

/// The run's link to the cluster's copy of the collection's state.
pub(super) struct ClusterState {
    meta: Arc<MetaStore>,
    lease: Lease,
    /// The file entries the metadata collection holds now.
    synced: BTreeMap<String, FileRecord>,
    /// The revision of the registry entry last written or read.
    revision: u64,
    /// Whether the registry entry was dirty when the run started (a run died).
    found_dirty: bool,
}

impl ClusterState {
    /// Takes the lease of `name` and reads its manifest from Qdrant (None: no entry there).
    pub(super) fn open(
        config: &aiex_config::Config,
        name: &str,
    ) -> Result<(ClusterState, Option<Manifest>)> {
        let meta = MetaStore::connect(config)?;
        let lease = Lease::acquire(
            Arc::clone(&meta),
            name,
            Duration::from_secs(config.vector.lease_secs),
        )?;
        let loaded = meta.load(name)?;
        let state = ClusterState {
            synced: loaded
                .as_ref()
                .map(|(manifest, _)| manifest.files.clone())
                .unwrap_or_default(),
            revision: loaded.as_ref().map_or(0, |(manifest, _)| manifest.revision),
            found_dirty: loaded.as_ref().is_some_and(|(_, dirty)| *dirty),
            meta,
            lease,
        };
        Ok((state, loaded.map(|(manifest, _)| manifest)))
    }

    /// The revision the run started from.
    pub(super) fn revision(&self) -> u64 {
        self.revision
    }

    /// Marks a registered collection as being indexed (its registry entry `dirty`, describing
    /// `previous`) and, when a dead run left it dirty, deletes the points `previous` does not
    /// record. A run that starts over clears the tenant later anyway. A collection the registry
    /// lacks is registered by the run's first save: until then nothing the server holds for it is
    /// tracked, and a run that dies before is followed by one that starts over.
    pub(super) fn begin(
        &mut self,
        config: &aiex_config::Config,
        previous: &mut Manifest,
        start_over: bool,
    ) -> Result<()> {
        self.save(previous, true)?;
        if self.found_dirty && !start_over {
            let keep: HashSet<u64> = previous
                .files
                .values()
                .flat_map(|file| file.chunks.iter().map(|chunk| chunk.id))
                .collect();
            let store = open_tenant(config, &previous.collection, previous.kind)?;
            let deleted = store.delete_all_but(&keep)?;
            tracing::info!(
                collection = %previous.collection,
                deleted,
                "an interrupted run was found: orphan points deleted"
            );
        }
        Ok(())
    }

    /// Forgets every file entry (a run starting over).
    pub(super) fn forget_files(&mut self, name: &str) -> Result<()> {
        self.lease.check()?;
        self.meta.delete_files(name)?;
        self.synced.clear();
        Ok(())
    }

    /// Writes `manifest` to the cluster: the file entries that changed since the last save, then
    /// the registry entry (`dirty` while the run goes on) with the next revision, which the
    /// manifest takes.
    pub(super) fn save(&mut self, manifest: &mut Manifest, dirty: bool) -> Result<()> {
        self.lease.check()?;
        let changed: Vec<(&str, &FileRecord)> = manifest
            .files
            .iter()
            .filter(|(path, record)| self.synced.get(*path) != Some(*record))
            .map(|(path, record)| (path.as_str(), record))
            .collect();
        let removed: Vec<&str> = self
            .synced
            .keys()
            .filter(|path| !manifest.files.contains_key(*path))
            .map(String::as_str)
            .collect();
        if !changed.is_empty() || !removed.is_empty() {
            self.meta
                .write_files(&manifest.collection, &changed, &removed)?;
            self.synced.clone_from(&manifest.files);
        }
        self.revision += 1;
        manifest.revision = self.revision;
        self.meta.write_entry(manifest, dirty)
    }
}
