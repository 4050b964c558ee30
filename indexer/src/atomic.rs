//! One way to replace a file durably: a temporary file in the same directory, written and synced,
//! renamed over the target, then the directory synced so the rename itself survives a power cut.
//! Readers and crashes see the old content or the new one, never a mix.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes` atomically and durably. Blocking: async callers run it on a
/// blocking thread. On error the temporary file is removed and `path` is left as it was.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_replacing(path, bytes, false)
}

/// [`atomic_write`] for a file only its owner may read or write (mode 0600 on Unix, from the
/// moment the temporary file is created): credentials and the like.
pub fn atomic_write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_replacing(path, bytes, true)
}

fn write_replacing(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |name| name.to_string_lossy().into_owned());
    // Hidden and unique per process, so two writers of different files never share a temporary
    // and directory listings that skip dot files never see it.
    let temporary = directory.join(format!(".{name}.{}.tmp", std::process::id()));
    if private {
        // A temporary left by a crash keeps its mode when opened again: start from none.
        let _ = std::fs::remove_file(&temporary);
    }
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(err);
    }
    sync_directory(&directory)
}

/// Makes directory entries (a rename, a new file) durable. Platforms that cannot open a
/// directory for syncing have nothing to do here.
pub(crate) fn sync_directory(directory: &Path) -> std::io::Result<()> {
    match std::fs::File::open(directory) {
        Ok(handle) => match handle.sync_all() {
            Ok(()) => Ok(()),
            // Some file systems refuse fsync on directories; the rename is as durable as they allow.
            Err(err) if err.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            Err(err) => Err(err),
        },
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        atomic_write(&path, b"one").expect("first write");
        atomic_write(&path, b"two").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_for_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.json");
        atomic_write(&path, b"open").expect("plain write");
        atomic_write_private(&path, b"closed").expect("private write");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"closed");
    }

    #[test]
    fn failure_keeps_the_old_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The target is a directory: the rename fails and nothing else changes.
        let path = dir.path().join("target");
        std::fs::create_dir(&path).expect("mkdir");
        std::fs::write(path.join("inside"), b"kept").expect("write");
        assert!(atomic_write(&path, b"new").is_err());
        assert_eq!(std::fs::read(path.join("inside")).expect("read"), b"kept");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
