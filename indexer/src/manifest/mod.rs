//! The manifest of a collection: what is indexed (files, their hashes, their chunks), at which
//! generation, and how far embedding got.
//!
//! On disk it is a snapshot, `manifest.json`, written atomically (temporary file, fsync, rename,
//! fsync of the directory), and a journal beside it, `manifest.log`, to which each checkpoint of
//! an indexing run appends only the file records it changed ([`ManifestFile`]). A crash leaves
//! the last complete checkpoint, never a torn one; the journal is folded into a new snapshot once
//! it outgrows the snapshot. Searches read neither: they read `status.json`, the few hundred bytes
//! of [`ManifestHead`].

mod journal;

pub use journal::{ManifestFile, ManifestStamp};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lang::Language;
use crate::walk::SkipCounts;

/// Version of the on-disk layout (manifest, tantivy schema, vector payload). A change that old
/// indexes cannot be read with bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// One chunk of a file, as the manifest tracks it. Written as the array `[id, start_line,
/// end_line, embedded]`, the bulk of a manifest; read from that or from an object with those
/// fields (manifests written before).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChunkRecord {
    pub id: u64,
    pub start_line: u32,
    pub end_line: u32,
    /// Whether the vector store holds this chunk's vector with its current payload.
    pub embedded: bool,
}

impl Serialize for ChunkRecord {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(4)?;
        tuple.serialize_element(&self.id)?;
        tuple.serialize_element(&self.start_line)?;
        tuple.serialize_element(&self.end_line)?;
        tuple.serialize_element(&self.embedded)?;
        tuple.end()
    }
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

    /// Loads the manifest at `path` (its snapshot and the journal's complete checkpoints);
    /// `Ok(None)` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        Ok(journal::load(path)?.map(|(manifest, _)| manifest))
    }

    /// Writes the manifest to `path` whole, as a new snapshot (the journal beside it is dropped),
    /// then its status record. An indexing run saves through a [`ManifestFile`] instead, which
    /// writes only what changed.
    pub fn save(&self, path: &Path) -> Result<()> {
        ManifestFile::fresh(path).save(self)
    }

    /// Removes the manifest at `path`: snapshot first (a collection without one has no manifest
    /// for any reader), then its journal and status record.
    pub fn remove(path: &Path) -> Result<()> {
        journal::remove_if_present(path)?;
        journal::remove_if_present(&journal::journal_path(path))?;
        journal::remove_if_present(&status_path(path))
    }

    /// The status record of the manifest at `path`: read from `status.json` beside it when that
    /// describes the manifest as it is (the snapshot's length and modification time and the
    /// journal's length), else made from the manifest itself (a collection written before status
    /// records, or a save interrupted between the files). None when there is no manifest.
    pub fn load_head(path: &Path) -> Result<Option<ManifestHead>> {
        match ManifestStamp::of(path)? {
            Some(stamp) => Self::load_head_at(path, stamp),
            None => Ok(None),
        }
    }

    /// [`Manifest::load_head`] for a caller that has just taken the files' `stamp`.
    pub fn load_head_at(path: &Path, stamp: ManifestStamp) -> Result<Option<ManifestHead>> {
        let recorded = fs_err::read(status_path(path))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ManifestHead>(&bytes).ok())
            .filter(|head| head.manifest == stamp && head.schema_version == SCHEMA_VERSION);
        if let Some(head) = recorded {
            return Ok(Some(head));
        }
        Ok(journal::load(path)?.map(|(manifest, stamp)| ManifestHead::of(&manifest, stamp)))
    }

    /// The manifest without its file list.
    pub fn without_files(&self) -> Manifest {
        Manifest {
            schema_version: self.schema_version,
            collection: self.collection.clone(),
            kind: self.kind,
            root: self.root.clone(),
            generation: self.generation,
            chunking: self.chunking.clone(),
            model_id: self.model_id.clone(),
            dimension: self.dimension,
            pending_vector_deletes: self.pending_vector_deletes.clone(),
            files: BTreeMap::new(),
            last_run: self.last_run.clone(),
            revision: self.revision,
        }
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

/// The status record's path beside the manifest at `manifest`.
fn status_path(manifest: &Path) -> PathBuf {
    manifest.with_file_name("status.json")
}

/// A collection's status record: the manifest without its file list, with the figures searches
/// and listings need (counts, chunks per language, whether every chunk has its vector). A few
/// hundred bytes whatever the collection's size, so opening a collection to search it does not
/// parse its whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestHead {
    pub schema_version: u32,
    pub collection: String,
    pub kind: CollectionKind,
    pub root: PathBuf,
    pub generation: u64,
    pub model_id: Option<String>,
    pub dimension: Option<usize>,
    pub last_run: Option<LastRun>,
    pub revision: u64,
    pub files: usize,
    pub chunks: usize,
    pub embedded_chunks: usize,
    pub vectors_complete: bool,
    /// Chunks per language.
    pub languages: BTreeMap<Language, usize>,
    /// The manifest files this record describes.
    pub manifest: ManifestStamp,
}

impl ManifestHead {
    fn of(manifest: &Manifest, stamp: ManifestStamp) -> Self {
        // One pass over the files (a checkpoint of a large collection pays for each).
        let mut languages: BTreeMap<Language, usize> = BTreeMap::new();
        let (mut chunks, mut embedded) = (0, 0);
        for file in manifest.files.values() {
            *languages.entry(file.language).or_default() += file.chunks.len();
            chunks += file.chunks.len();
            embedded += file.chunks.iter().filter(|chunk| chunk.embedded).count();
        }
        ManifestHead {
            schema_version: manifest.schema_version,
            collection: manifest.collection.clone(),
            kind: manifest.kind,
            root: manifest.root.clone(),
            generation: manifest.generation,
            model_id: manifest.model_id.clone(),
            dimension: manifest.dimension,
            last_run: manifest.last_run.clone(),
            revision: manifest.revision,
            files: manifest.files.len(),
            chunks,
            embedded_chunks: embedded,
            vectors_complete: embedded == chunks && manifest.pending_vector_deletes.is_empty(),
            languages,
            manifest: stamp,
        }
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

    #[test]
    fn the_status_record_follows_the_manifest_and_never_outlives_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        assert_eq!(Manifest::load_head(&path).expect("load"), None);
        let mut manifest = Manifest::new("demo", Path::new("/src/demo"));
        let record = |language, embedded: &[bool]| FileRecord {
            hash: "ab".into(),
            size: 10,
            mtime_ns: 5,
            language,
            chunks: embedded
                .iter()
                .enumerate()
                .map(|(id, &embedded)| ChunkRecord {
                    id: id as u64,
                    start_line: 1,
                    end_line: 3,
                    embedded,
                })
                .collect(),
        };
        manifest
            .files
            .insert("src/lib.rs".into(), record(Language::Rust, &[true, false]));
        manifest
            .files
            .insert("tool.py".into(), record(Language::Python, &[true]));
        manifest.generation = 4;
        manifest.save(&path).expect("save");
        let status = std::fs::read(dir.path().join("status.json")).expect("status.json");
        assert!(status.len() < 1024);
        let head = Manifest::load_head(&path).expect("load").expect("present");
        assert_eq!((head.files, head.chunks, head.embedded_chunks), (2, 3, 2));
        assert_eq!(head.generation, 4);
        assert!(!head.vectors_complete);
        assert_eq!(
            head.languages,
            BTreeMap::from([(Language::Python, 1), (Language::Rust, 2)])
        );

        // The manifest replaced without its record (an older version, or a crash between the
        // two writes): the record no longer matches and the manifest itself is read.
        manifest.generation = 5;
        manifest.files.remove("tool.py");
        let bytes = serde_json::to_vec(&manifest).expect("json");
        write_atomically(&path, &bytes).expect("write");
        let head = Manifest::load_head(&path).expect("load").expect("present");
        assert_eq!((head.generation, head.files, head.chunks), (5, 1, 2));
        assert!(!head.languages.contains_key(&Language::Python));
    }
}
