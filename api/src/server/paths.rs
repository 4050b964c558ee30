//! Confinement of indexing paths to the configured allowed roots: no `..`, no encoded traversal,
//! no absolute path outside the roots, no symbolic link leading out of them (paths are
//! canonicalised, which resolves every link, before the check).

use std::path::{Component, Path, PathBuf};

use percent_encoding::percent_decode_str;

use crate::server::error::ApiError;

/// The allowed roots, canonicalised at startup.
#[derive(Debug, Clone, Default)]
pub struct AllowedRoots {
    roots: Vec<PathBuf>,
}

fn has_parent_component(text: &str) -> bool {
    Path::new(text)
        .components()
        .any(|component| matches!(component, Component::ParentDir))
        || text.split(['/', '\\']).any(|part| part == "..")
}

impl AllowedRoots {
    /// Canonicalises `roots` (each must exist). Blocking.
    pub fn new(roots: &[String]) -> Result<Self, crate::server::ServerError> {
        let roots = roots
            .iter()
            .map(|root| {
                std::fs::canonicalize(root).map_err(|source| {
                    crate::server::ServerError::AllowedRoot {
                        path: root.clone(),
                        source,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowedRoots { roots })
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The canonical directory `raw` names, if it lies under an allowed root. Relative paths are
    /// taken relative to the first root. Blocking (reads the file system).
    pub fn confine(&self, raw: &str) -> Result<PathBuf, ApiError> {
        let Some(first_root) = self.roots.first() else {
            return Err(ApiError::forbidden(
                "indexing_disabled",
                "indexing jobs are disabled: no server.allowed_roots configured",
            ));
        };
        if raw.trim().is_empty() || raw.contains('\0') {
            return Err(ApiError::bad_request(
                "invalid_path",
                "the path is empty or invalid",
            ));
        }
        // `..` anywhere, also once or twice percent-encoded, is refused outright.
        let mut decoded = raw.to_string();
        for _ in 0..3 {
            if has_parent_component(&decoded) {
                return Err(ApiError::bad_request(
                    "path_traversal",
                    "paths may not contain `..`",
                ));
            }
            let next = percent_decode_str(&decoded)
                .decode_utf8_lossy()
                .into_owned();
            if next == decoded {
                break;
            }
            decoded = next;
        }
        if decoded != raw {
            return Err(ApiError::bad_request(
                "path_traversal",
                "percent-encoded paths are not accepted",
            ));
        }
        let path = Path::new(raw);
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            first_root.join(path)
        };
        let outside = || {
            ApiError::forbidden(
                "outside_allowed_roots",
                "the path is not under an allowed root",
            )
        };
        // Nothing is revealed about paths outside the roots, existing or not.
        if !self.roots.iter().any(|root| joined.starts_with(root)) {
            return Err(outside());
        }
        let canonical = std::fs::canonicalize(&joined).map_err(|_| {
            ApiError::bad_request(
                "not_a_directory",
                "the path does not exist or is not a directory",
            )
        })?;
        if !self.roots.iter().any(|root| canonical.starts_with(root)) {
            return Err(outside());
        }
        if !canonical.is_dir() {
            return Err(ApiError::bad_request(
                "not_a_directory",
                "the path does not exist or is not a directory",
            ));
        }
        Ok(canonical)
    }

    /// Checks again, when a job item starts, that `canonical` (a path [`AllowedRoots::confine`]
    /// accepted at submission) still names the same place: no component became a symbolic link
    /// (the path is still its own canonical form), it lies under an allowed root and is a
    /// directory. A directory swapped for a link between submission and run is refused here;
    /// the walk itself never follows links. Blocking.
    pub fn recheck(&self, canonical: &Path) -> Result<(), ApiError> {
        let moved = || {
            ApiError::forbidden(
                "outside_allowed_roots",
                "the path is no longer a directory under an allowed root",
            )
        };
        if !self.roots.iter().any(|root| canonical.starts_with(root)) {
            return Err(moved());
        }
        let metadata = std::fs::symlink_metadata(canonical).map_err(|_| moved())?;
        if metadata.file_type().is_symlink() || !metadata.is_dir() {
            return Err(moved());
        }
        match std::fs::canonicalize(canonical) {
            Ok(resolved) if resolved == canonical => Ok(()),
            _ => Err(moved()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confinement() {
        let base = tempfile::tempdir().expect("tempdir");
        let base_path = base.path().canonicalize().expect("canonical");
        let root = base_path.join("root");
        let outside = base_path.join("outside");
        std::fs::create_dir_all(root.join("repo/src")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, root.join("escape")).expect("symlink");
        let roots = AllowedRoots::new(&[root.display().to_string()]).expect("roots");
        let code = |raw: &str| roots.confine(raw).err().map(|e| e.code);

        let inside = roots.confine("repo").expect("relative inside");
        assert!(inside.ends_with("root/repo"));
        let absolute = root.join("repo/src").display().to_string();
        assert!(roots.confine(&absolute).is_ok());
        assert_eq!(code("../outside"), Some("path_traversal"));
        assert_eq!(code("repo/../../outside"), Some("path_traversal"));
        assert_eq!(code("%2e%2e/outside"), Some("path_traversal"));
        assert_eq!(code("%252e%252e/outside"), Some("path_traversal"));
        assert_eq!(code("repo%2fsrc"), Some("path_traversal"));
        assert_eq!(
            code(&outside.display().to_string()),
            Some("outside_allowed_roots")
        );
        assert_eq!(code("/etc"), Some("outside_allowed_roots"));
        #[cfg(unix)]
        assert_eq!(code("escape"), Some("outside_allowed_roots"));
        assert_eq!(code("missing"), Some("not_a_directory"));
        assert_eq!(code(""), Some("invalid_path"));
        #[cfg(unix)]
        {
            // A directory accepted once and swapped for a link afterwards is refused at run time.
            let swapped = roots.confine("repo/src").expect("inside");
            assert!(roots.recheck(&swapped).is_ok());
            std::fs::remove_dir_all(&swapped).expect("remove");
            std::os::unix::fs::symlink(&outside, &swapped).expect("symlink");
            assert_eq!(
                roots.recheck(&swapped).err().map(|e| e.code),
                Some("outside_allowed_roots")
            );
            // So is a path under a parent that became a link.
            std::fs::create_dir_all(outside.join("deep")).expect("mkdir");
            assert_eq!(
                roots.recheck(&swapped.join("deep")).err().map(|e| e.code),
                Some("outside_allowed_roots")
            );
        }
        assert_eq!(
            AllowedRoots::default().confine("x").err().map(|e| e.code),
            Some("indexing_disabled")
        );
    }
}
