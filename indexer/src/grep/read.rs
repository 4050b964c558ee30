//! Lines of an indexed file, read back from the collection's file index ([`super::store`]; in
//! server mode the server's, [`crate::store::server::files`]).
//!
//! Only what an indexing run stored can be read: the path names a file of the collection
//! (relative to its root, or absolute under it), and its content comes from the index, never
//! from the file system. A path outside the root, with `..`, or of a file that was not indexed
//! is refused, so nothing outside the indexed roots is ever read. The lines are those that
//! searches report (`path:start-end`), even when the file changed on disk since.

use std::path::{Component, Path};

use serde::Serialize;

use super::store::FileStore;
use crate::collection::IndexDir;

/// Most lines one read returns.
pub const MAX_READ_LINES: usize = 2000;
/// Most bytes of text one read returns.
pub const MAX_READ_BYTES: usize = 256 * 1024;

/// Lines of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileLines {
    pub collection: String,
    /// Relative to the collection's root.
    pub path: String,
    pub language: Option<String>,
    /// 1-based number of the first line returned.
    pub start_line: usize,
    /// Number of the last line returned (`start_line - 1` when none is).
    pub end_line: usize,
    /// Lines in the whole file.
    pub total_lines: usize,
    /// The lines, each ended by `\n`.
    pub text: String,
    /// The range asked for was cut at [`MAX_READ_LINES`] or [`MAX_READ_BYTES`].
    pub truncated: bool,
}

/// Why a read is refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("`{path}` is not an indexed file of collection `{collection}` (paths are relative to the collection's root, as search results give them)")]
    NotIndexed { collection: String, path: String },
    #[error("collection `{collection}` has no file index yet: run `index` on it again")]
    NoFileIndex { collection: String },
    #[error("invalid line range: {message}")]
    InvalidRange { message: String },
    #[error(transparent)]
    Index(#[from] crate::Error),
}

impl ReadError {
    /// Whether the error is the caller's (bad input) rather than the index's.
    pub fn is_user_error(&self) -> bool {
        match self {
            ReadError::Index(err) => err.is_user_error(),
            _ => true,
        }
    }
}

impl From<tantivy::TantivyError> for ReadError {
    fn from(err: tantivy::TantivyError) -> Self {
        ReadError::Index(err.into())
    }
}

/// `raw` as a path relative to `root`, `/`-separated, or why it cannot name a file under it.
fn relative_path(raw: &str, root: &Path) -> Result<String, ReadError> {
    let invalid = |reason| ReadError::InvalidPath {
        path: raw.to_string(),
        reason,
    };
    if raw.trim().is_empty() || raw.contains('\0') {
        return Err(invalid("the path is empty or invalid"));
    }
    let path = Path::new(raw);
    let relative = if path.is_absolute() {
        path.strip_prefix(root)
            .map_err(|_| invalid("the path is outside the collection's root"))?
    } else {
        path
    };
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => match part.to_str() {
                Some(part) => parts.push(part),
                None => return Err(invalid("the path is not valid UTF-8")),
            },
            Component::CurDir => {}
            Component::ParentDir => return Err(invalid("paths may not contain `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid("the path is outside the collection's root"))
            }
        }
    }
    if parts.is_empty() {
        return Err(invalid("the path names no file"));
    }
    Ok(parts.join("/"))
}

/// Lines `start..=end` (1-based; default: from the first line, at most [`MAX_READ_LINES`]) of
/// file `path` of `collection`. Blocking (opens the file index; in server mode, reads the file
/// from the server's file collection).
pub fn read_lines(
    config: &aiex_config::Config,
    collection: &str,
    path: &str,
    start: Option<usize>,
    end: Option<usize>,
) -> Result<FileLines, ReadError> {
    let start = start.unwrap_or(1);
    if start == 0 {
        return Err(ReadError::InvalidRange {
            message: "lines are numbered from 1".to_string(),
        });
    }
    if let Some(end) = end.filter(|&end| end < start) {
        return Err(ReadError::InvalidRange {
            message: format!("end line {end} is before start line {start}"),
        });
    }
    let index_dir = IndexDir::new(config.index_dir());
    let server_mode = config.vector.backend == aiex_config::VectorBackend::Server;
    if server_mode {
        if let Err(err) = crate::store::server::sync_cache(config) {
            tracing::warn!("reading the collections' registry from Qdrant: {err}");
        }
    }
    // The status record gives the root; whether the file is indexed, the file index says.
    let root = index_dir.head(collection)?.root;
    let relative = relative_path(path, &root)?;
    let not_indexed = || ReadError::NotIndexed {
        collection: collection.to_string(),
        path: relative.clone(),
    };
    let no_file_index = || ReadError::NoFileIndex {
        collection: collection.to_string(),
    };
    let file = if server_mode {
        crate::store::server::ServerFiles::connect(config, false)?
            .ok_or_else(no_file_index)?
            .file_by_path(collection, &relative)?
    } else {
        FileStore::open_existing(&index_dir.collection_paths(collection).grep)?
            .ok_or_else(no_file_index)?
            .file_by_path(&relative)?
    };
    let file = file.ok_or_else(not_indexed)?;
    let total_lines = file.content.lines().count();
    if start > total_lines.max(1) {
        return Err(ReadError::InvalidRange {
            message: format!(
                "start line {start} is past the end of the file ({total_lines} lines)"
            ),
        });
    }
    let wanted_end = end.unwrap_or(usize::MAX).min(total_lines);
    let mut text = String::new();
    let mut end_line = start - 1;
    let mut truncated = false;
    for (index, line) in file.content.lines().enumerate().skip(start - 1) {
        let number = index + 1;
        if number > wanted_end {
            break;
        }
        let over_lines = number - start >= MAX_READ_LINES;
        if over_lines || text.len() + line.len() + 1 > MAX_READ_BYTES {
            truncated = true;
            break;
        }
        text.push_str(line);
        text.push('\n');
        end_line = number;
    }
    Ok(FileLines {
        collection: collection.to_string(),
        path: relative,
        language: file.language.map(|language| language.name().to_string()),
        start_line: start,
        end_line,
        total_lines,
        text,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/srv/repo");
        assert_eq!(relative_path("src/lib.rs", root).expect("ok"), "src/lib.rs");
        assert_eq!(
            relative_path("./src/lib.rs", root).expect("ok"),
            "src/lib.rs"
        );
        assert_eq!(
            relative_path("/srv/repo/src/lib.rs", root).expect("ok"),
            "src/lib.rs"
        );
        for refused in [
            "../x",
            "src/../../etc/passwd",
            "/etc/passwd",
            "",
            ".",
            "a\0b",
        ] {
            assert!(
                matches!(
                    relative_path(refused, root),
                    Err(ReadError::InvalidPath { .. })
                ),
                "{refused:?} accepted"
            );
        }
    }
}
