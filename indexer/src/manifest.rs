//! The manifest of a collection: what is indexed (files, their hashes, their chunks), at which
//! generation, and how far embedding got.
//!
//! It is written atomically (temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves either the previous or the new manifest, never a torn one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lang::Language;
use crate::walk::SkipCounts;

/// Version of the on-disk layout (manifest, tantivy schema, vector payload). A change that old
/// indexes cannot be read with bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// One chunk of a file, as the manifest tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub id: u64,
    pub start_line: u32,
    pub end_line: u32,
    /// Whether the vector store holds this chunk's vector with its current payload.
    pub embedded: bool,
}

/// One indexed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// blake3 of the file's bytes, hex.
    pub hash: String,
    pub size: u64,
    pub mtime_ns: u64,
    pub language: Language,
    pub chunks: Vec<ChunkRecord>,
}

/// Figures of the last completed run, for `index --status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    pub finished_at: u64,
    pub skipped: SkipCounts,
}

/// What a collection holds: it decides which search source serves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectionKind {
    /// A source repository (the `code` source).
    #[default]
    Code,
    /// A documentation set (the `docs` source).
    Docs,
}

impl CollectionKind {
    pub fn name(self) -> &'static str {
        match self {
            CollectionKind::Code => "code",
            CollectionKind::Docs => "docs",
        }
    }
}

/// The manifest of one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub collection: String,
    #[serde(default)]
    pub kind: CollectionKind,
    /// Canonical path of the indexed directory.
    pub root: PathBuf,
    /// Incremented by every run that changed the keyword index.
    pub generation: u64,
    /// Chunker version and options the chunks were cut with; a change re-chunks every file.
    #[serde(default)]
    pub chunking: String,
    /// Embedding model and dimension the vectors were made with (None until the first embedding).
    pub model_id: Option<String>,
    pub dimension: Option<usize>,
    /// Chunk ids whose vectors must still be deleted from the vector store.
    pub pending_vector_deletes: Vec<u64>,
    pub files: BTreeMap<String, FileRecord>,
    pub last_run: Option<LastRun>,
    /// Server mode: the revision of the collection's registry entry in Qdrant that this copy
    /// reflects (every write of the entry increments it); 0 in embedded mode.
    #[serde(default)]
    pub revision: u64,
}

impl Manifest {
    pub fn new(collection: &str, root: &Path) -> Self {
        Manifest {
            schema_version: SCHEMA_VERSION,
            collection: collection.to_string(),
            kind: CollectionKind::Code,
            root: root.to_path_buf(),
            generation: 0,
            chunking: String::new(),
            model_id: None,
            dimension: None,
            pending_vector_deletes: Vec::new(),
            files: BTreeMap::new(),
            last_run: None,
            revision: 0,
        }
    }

    /// Loads the manifest at `path`; `Ok(None)` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let bytes = match fs_err::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source: err,
                })
            }
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|err| Error::Manifest {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
        if manifest.schema_version != SCHEMA_VERSION {
            return Err(Error::SchemaVersion {
                path: path.to_path_buf(),
                found: manifest.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(Some(manifest))
    }

    /// Writes the manifest atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|err| Error::Manifest {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
        write_atomically(path, &bytes)
    }

    pub fn chunk_count(&self) -> usize {
        self.files.values().map(|file| file.chunks.len()).sum()
    }

    pub fn embedded_count(&self) -> usize {
        self.files
            .values()
            .flat_map(|file| &file.chunks)
            .filter(|chunk| chunk.embedded)
            .count()
    }

    /// Sorts and deduplicates the pending vector deletes, and drops ids that are live again (a
    /// chunk deleted by an earlier run, its vector delete still pending, may be back).
    pub fn tidy_pending_deletes(&mut self) {
        let live: std::collections::HashSet<u64> = self
            .files
            .values()
            .flat_map(|file| file.chunks.iter().map(|chunk| chunk.id))
            .collect();
        self.pending_vector_deletes.retain(|id| !live.contains(id));
        self.pending_vector_deletes.sort_unstable();
        self.pending_vector_deletes.dedup();
    }

    /// Whether every chunk has its vector and no deletion is pending.
    pub fn vectors_complete(&self) -> bool {
        self.pending_vector_deletes.is_empty()
            && self
                .files
                .values()
                .all(|file| file.chunks.iter().all(|chunk| chunk.embedded))
    }
}

/// Replaces `path` with `bytes` so that readers and crashes see the old or the new content only.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic::atomic_write(path, bytes).map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        assert_eq!(Manifest::load(&path).expect("load"), None);
        let mut manifest = Manifest::new("demo", Path::new("/src/demo"));
        manifest.files.insert(
            "src/lib.rs".into(),
            FileRecord {
                hash: "ab".into(),
                size: 10,
                mtime_ns: 5,
                language: Language::Rust,
                chunks: vec![ChunkRecord {
                    id: 7,
                    start_line: 1,
                    end_line: 3,
                    embedded: false,
                }],
            },
        );
        manifest.save(&path).expect("save");
        let loaded = Manifest::load(&path).expect("load").expect("present");
        assert_eq!(loaded, manifest);
        assert!(!loaded.vectors_complete());
        std::fs::write(&path, b"{not json").expect("write");
        assert!(matches!(Manifest::load(&path), Err(Error::Manifest { .. })));
    }
}
