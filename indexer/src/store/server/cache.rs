//! Server mode: the data directory's manifests are a cache of the registry in Qdrant. A node
//! with an empty data directory fills it from the registry before it lists or searches, and every
//! node refreshes it as other nodes index: a collection whose cached manifest is not at the
//! registry's revision is read again (while a run is in progress, only at its new generations and
//! its end, not at every embedding checkpoint), and one removed through another node is dropped.

use std::collections::HashSet;
use std::path::Path;

use super::meta::MetaStore;
use crate::collection::{validate_name, IndexDir, WriteLock};
use crate::error::Result;

/// Brings the cached manifests in line with the registry in Qdrant (nothing to do in embedded
/// mode). Collections being indexed by this node are left to their run, which writes both.
/// Cached manifests of collections the registry no longer has are removed; manifests written in
/// embedded mode (revision 0) are left alone.
pub fn sync_cache(config: &aiex_config::Config) -> Result<()> {
    if config.vector.backend != aiex_config::VectorBackend::Server {
        return Ok(());
    }
    let meta = MetaStore::connect(config)?;
    let index_dir = IndexDir::new(config.index_dir());
    let mut listed = HashSet::new();
    for entry in meta.entries()? {
        let name = entry.head.collection.clone();
        if validate_name(&name).is_err() {
            tracing::warn!(name, "registry entry with an invalid collection name");
            continue;
        }
        listed.insert(name.clone());
        let paths = index_dir.collection_paths(&name);
        let cached = cached_state(&paths.manifest);
        let current = match cached {
            Some((revision, _)) if revision == entry.head.revision => true,
            // A run in progress elsewhere saves its embedding progress every few seconds; the
            // cache follows its new generations (file lists) and its end, not every checkpoint.
            Some((_, generation)) => entry.dirty && generation == entry.head.generation,
            None => false,
        };
        if current {
            continue;
        }
        // A run of this node holds the lock and keeps the cache current itself.
        let Ok(_lock) = WriteLock::acquire(&name, &paths) else {
            continue;
        };
        if let Some((manifest, _)) = meta.load(&name)? {
            manifest.save(&paths.manifest)?;
        }
    }
    for name in index_dir.collection_names()? {
        let manifest = index_dir.collection_paths(&name).manifest;
        let revision = cached_state(&manifest).map_or(0, |(revision, _)| revision);
        if listed.contains(&name) || revision == 0 {
            continue;
        }
        match index_dir.remove(&name) {
            Ok(()) => tracing::info!(name, "collection removed through another node"),
            Err(err) => tracing::debug!(name, "stale cached collection not removed: {err}"),
        }
    }
    Ok(())
}

/// The registry revision and the generation a cached manifest reflects (from its status record).
fn cached_state(path: &Path) -> Option<(u64, u64)> {
    crate::manifest::Manifest::load_head(path)
        .ok()
        .flatten()
        .map(|head| (head.revision, head.generation))
}
