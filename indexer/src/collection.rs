//! The index directory and its collections: layout, names, locks and status.
//!
//! ```text
//! <data_dir>/index/collections/<name>/
//!     manifest.json   files, chunks, generation, embedding progress (a snapshot)
//!     manifest.log    checkpoints since the snapshot: only the file records they changed
//!     status.json     the manifest without its files: what searches and listings read
//!     keyword/        tantivy index of chunks
//!     grep/           tantivy index of whole files (trigrams + stored content), for exact and regex search
//!     vectors/        qdrant-edge shard
//!     write.lock      held by the process that indexes this collection
//! ```

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::{CollectionKind, LastRun, Manifest, ManifestHead};

/// Where a collection lives on disk.
#[derive(Debug, Clone)]
pub struct CollectionPaths {
    pub dir: PathBuf,
    pub manifest: PathBuf,
    pub keyword: PathBuf,
    /// The file-level trigram index of exact and regex search.
    pub grep: PathBuf,
    pub vectors: PathBuf,
    pub lock: PathBuf,
}

impl CollectionPaths {
    pub fn new(index_dir: &Path, name: &str) -> Self {
        let dir = index_dir.join("collections").join(name);
        CollectionPaths {
            manifest: dir.join("manifest.json"),
            keyword: dir.join("keyword"),
            grep: dir.join("grep"),
            vectors: dir.join("vectors"),
            lock: dir.join("write.lock"),
            dir,
        }
    }
}

/// Checks a collection name: it becomes a directory name.
pub fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidCollectionName {
            name: name.to_string(),
        })
    }
}

/// A default collection name for a directory: its file name, with other characters replaced.
pub fn default_name(root: &Path) -> String {
    let base = root
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".to_string());
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    while name.starts_with('.') {
        name.remove(0);
    }
    if name.is_empty() {
        "root".to_string()
    } else {
        name
    }
}

/// An exclusive, advisory lock on a collection, released on drop (and by the OS if the process dies).
#[derive(Debug)]
pub struct WriteLock {
    _file: std::fs::File,
}

impl WriteLock {
    pub fn acquire(name: &str, paths: &CollectionPaths) -> Result<Self> {
        fs_err::create_dir_all(&paths.dir).map_err(Error::io(&paths.dir))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&paths.lock)
            .map_err(Error::io(&paths.lock))?;
        match file.try_lock() {
            Ok(()) => Ok(WriteLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
                name: name.to_string(),
                path: paths.lock.clone(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(Error::Io {
                path: paths.lock.clone(),
                source,
            }),
        }
    }
}

/// What `index --status` shows for one collection.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionStatus {
    pub name: String,
    pub kind: CollectionKind,
    pub root: PathBuf,
    pub generation: u64,
    pub files: usize,
    pub chunks: usize,
    pub embedded_chunks: usize,
    pub vectors_complete: bool,
    pub model_id: Option<String>,
    pub dimension: Option<usize>,
    pub size_bytes: u64,
    pub last_run: Option<LastRun>,
}

/// The index directory: every collection under it.
#[derive(Debug, Clone)]
pub struct IndexDir {
    dir: PathBuf,
}

impl IndexDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        IndexDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn collection_paths(&self, name: &str) -> CollectionPaths {
        CollectionPaths::new(&self.dir, name)
    }

    /// Names of the collections that have a manifest, sorted.
    pub fn collection_names(&self) -> Result<Vec<String>> {
        let collections = self.dir.join("collections");
        let entries = match std::fs::read_dir(&collections) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    path: collections,
                    source,
                })
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().join("manifest.json").is_file())
            .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The manifest of collection `name`, or [`Error::CollectionNotFound`].
    pub fn manifest(&self, name: &str) -> Result<Manifest> {
        validate_name(name)?;
        Manifest::load(&self.collection_paths(name).manifest)?.ok_or_else(|| {
            Error::CollectionNotFound {
                name: name.to_string(),
            }
        })
    }

    /// The status record of collection `name` (its manifest without the file list), or
    /// [`Error::CollectionNotFound`].
    pub fn head(&self, name: &str) -> Result<ManifestHead> {
        validate_name(name)?;
        Manifest::load_head(&self.collection_paths(name).manifest)?.ok_or_else(|| {
            Error::CollectionNotFound {
                name: name.to_string(),
            }
        })
    }

    /// Names of the collections of `kind`, sorted.
    pub fn collection_names_of(&self, kind: CollectionKind) -> Result<Vec<String>> {
        Ok(self
            .collection_kinds()?
            .into_iter()
            .filter(|(_, of)| *of == kind)
            .map(|(name, _)| name)
            .collect())
    }

    /// Every collection with its kind, sorted by name (from the status records).
    pub fn collection_kinds(&self) -> Result<Vec<(String, CollectionKind)>> {
        self.collection_names()?
            .into_iter()
            .map(|name| {
                let kind = self.head(&name)?.kind;
                Ok((name, kind))
            })
            .collect()
    }

    /// Status of every collection.
    pub fn status(&self) -> Result<Vec<CollectionStatus>> {
        self.collection_names()?
            .into_iter()
            .map(|name| {
                let head = self.head(&name)?;
                let paths = self.collection_paths(&name);
                Ok(CollectionStatus {
                    kind: head.kind,
                    root: head.root,
                    generation: head.generation,
                    files: head.files,
                    chunks: head.chunks,
                    embedded_chunks: head.embedded_chunks,
                    vectors_complete: head.vectors_complete,
                    model_id: head.model_id,
                    dimension: head.dimension,
                    size_bytes: dir_size(&paths.dir),
                    last_run: head.last_run,
                    name,
                })
            })
            .collect()
    }

    /// Deletes a collection and everything in it.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.head(name)?;
        let paths = self.collection_paths(name);
        let _lock = WriteLock::acquire(name, &paths)?;
        // The manifest goes first: a collection without one is gone for every reader, and an
        // interrupted removal leaves only stores that the next run of `index` discards.
        Manifest::remove(&paths.manifest)?;
        fs_err::remove_dir_all(&paths.dir).map_err(Error::io(&paths.dir))
    }
}

/// Disk space used by the files under `dir` (allocated blocks, so sparse preallocated files count
/// for what they use; symbolic links not followed).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                stack.push(entry.path());
            } else if file_type.is_file() {
                total += entry.metadata().map_or(0, |metadata| {
                    std::os::unix::fs::MetadataExt::blocks(&metadata) * 512
                });
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("my-repo_1.x").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(default_name(Path::new("/src/my repo")), "my_repo");
        assert_eq!(default_name(Path::new("/src/.dotfiles")), "dotfiles");
        assert_eq!(default_name(Path::new("/")), "root");
    }
}
