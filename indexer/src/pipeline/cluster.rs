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

use crate::collection::CollectionPaths;
use crate::error::{Error, Result};
use crate::grep::store::FileStore;
use crate::manifest::{FileRecord, Manifest};
use crate::store::server::files::FilesSynced;
use crate::store::server::{open_tenant, Lease, MetaStore, ServerFiles};

/// The file, beside the cached manifest, naming the registry revision and the file list (a hash
/// of it) that this node's keyword and file indexes (the working copy) reflect. Only a completed
/// run writes it; the cache refresh of the manifests never does.
const WORKING_COPY: &str = "working-copy";

/// What identifies the state a working copy reflects: the revision and a hash of the file list.
fn working_copy_key(manifest: &Manifest) -> Result<String> {
    let files = serde_json::to_vec(&manifest.files).map_err(Error::vector)?;
    Ok(format!(
        "{} {}",
        manifest.revision,
        blake3::hash(&files).to_hex()
    ))
}

/// Whether this node's working copy was left by a completed run at the state of `manifest`.
pub(super) fn working_copy_current(paths: &CollectionPaths, manifest: &Manifest) -> bool {
    let recorded = std::fs::read_to_string(paths.dir.join(WORKING_COPY));
    match (recorded, working_copy_key(manifest)) {
        (Ok(recorded), Ok(key)) => recorded.trim() == key,
        _ => false,
    }
}

/// Records that this node's working copy reflects `manifest` (after a completed run).
pub(super) fn record_working_copy(paths: &CollectionPaths, manifest: &Manifest) -> Result<()> {
    let path = paths.dir.join(WORKING_COPY);
    crate::atomic::atomic_write(&path, working_copy_key(manifest)?.as_bytes())
        .map_err(Error::io(&path))
}

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
        let lease = Lease::for_collection(config, &meta, name)?;
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

    /// Brings the server's copy of the files (exact and regex search, [`ServerFiles`]) in line
    /// with `manifest`, from the node's file index `local` (committed at the manifest's
    /// generation).
    pub(super) fn sync_files(
        &self,
        config: &aiex_config::Config,
        manifest: &Manifest,
        local: &FileStore,
    ) -> Result<()> {
        let Some(files) = ServerFiles::connect(config, true)? else {
            return Ok(());
        };
        let synced = files.sync(&manifest.collection, manifest, local, &|| {
            self.lease.check()
        })?;
        if synced != FilesSynced::default() {
            tracing::debug!(
                collection = %manifest.collection,
                written = synced.written,
                deleted = synced.deleted,
                "files synced to the server"
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
