//! `server.json` in the data directory: how the command line finds the server that owns the
//! data directory's vector stores (one owner at a time) and hands it its work instead of failing
//! or searching by keywords only.
//!
//! `serve` writes it when it starts (atomically, mode 0600): its process id, a loopback URL it
//! answers on, a random token that stands for the data directory's owner (a full-rights
//! credential, see [`crate::server::auth`]), the version and whether it runs indexing jobs. It is
//! removed on a graceful shutdown. A file whose process is gone is stale: readers ignore it and
//! may remove it. The token is never logged; the type's `Debug` hides it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "server.json";

/// What a running server advertises to the command line.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFile {
    /// The server's process id.
    pub pid: u32,
    /// A loopback base URL it listens on (`http://127.0.0.1:8484`).
    pub url: String,
    /// The local owner token: accepted as a bearer key with every right.
    pub token: String,
    /// The server's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// Whether it runs indexing jobs (`serve --no-jobs` queues them only).
    pub jobs: bool,
}

impl std::fmt::Debug for ServerFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerFile")
            .field("pid", &self.pid)
            .field("url", &self.url)
            .field("token", &"***")
            .field("version", &self.version)
            .field("jobs", &self.jobs)
            .finish()
    }
}

/// Why `server.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ServerFileError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a server file: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The path of `server.json` in `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// A new random local owner token.
pub fn new_token() -> String {
    format!(
        "lo_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The loopback URL a server listening on `addr` answers on: the address itself when it is a
/// loopback one, the loopback address of the same family when it listens on every address, and
/// none when it listens on one non-loopback address only.
pub fn loopback_url(addr: SocketAddr) -> Option<String> {
    let ip = addr.ip();
    let reachable = if ip.is_loopback() {
        ip
    } else if ip.is_unspecified() {
        match ip {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        }
    } else {
        return None;
    };
    Some(format!(
        "http://{}",
        SocketAddr::new(reachable, addr.port())
    ))
}

impl ServerFile {
    /// Parses the file's content.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, ServerFileError> {
        let file: ServerFile =
            serde_json::from_slice(bytes).map_err(|err| ServerFileError::Invalid {
                path: path.to_path_buf(),
                message: err.to_string(),
            })?;
        let loopback_http = file
            .url
            .strip_prefix("http://")
            .and_then(|rest| rest.parse::<SocketAddr>().ok())
            .is_some_and(|addr| addr.ip().is_loopback());
        if !loopback_http {
            return Err(ServerFileError::Invalid {
                path: path.to_path_buf(),
                message: format!("`{}` is not a loopback http URL", file.url),
            });
        }
        if file.token.len() < 32
            || !file
                .token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ServerFileError::Invalid {
                path: path.to_path_buf(),
                message: "the token is malformed".to_string(),
            });
        }
        Ok(file)
    }

    /// The server file of `data_dir`, if there is one.
    pub fn read(data_dir: &Path) -> Result<Option<Self>, ServerFileError> {
        let path = path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => Self::parse(&bytes, &path).map(Some),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ServerFileError::Io { path, source }),
        }
    }

    /// Writes the file into `data_dir` atomically, readable by its owner only. Blocking.
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(data_dir)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        aiex_indexer::atomic_write_private(&path(data_dir), &bytes)
    }

    /// Whether the process that wrote the file is gone (it cannot be told on platforms without
    /// `/proc`: there the health check decides).
    pub fn process_gone(&self) -> bool {
        process_gone(self.pid)
    }
}

#[cfg(target_os = "linux")]
fn process_gone(pid: u32) -> bool {
    pid == 0 || !Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_gone(pid: u32) -> bool {
    pid == 0
}

/// Removes `data_dir`'s server file if it is still the one holding `token` (a server started
/// later over the same directory may have replaced it). Blocking.
pub fn remove_if_ours(data_dir: &Path, token: &str) {
    if let Ok(Some(file)) = ServerFile::read(data_dir) {
        if file.token == token {
            let _ = std::fs::remove_file(path(data_dir));
        }
    }
}

/// Removes `data_dir`'s server file when its process is gone. Blocking.
pub fn remove_if_stale(data_dir: &Path, file: &ServerFile) {
    if file.process_gone() {
        remove_if_ours(data_dir, &file.token);
    }
}

/// Keeps the server file while it lives; removes it (if still ours) when dropped.
#[derive(Debug)]
pub struct ServerFileGuard {
    data_dir: PathBuf,
    token: String,
}

impl ServerFileGuard {
    /// Writes `file` into `data_dir` and returns the guard that removes it.
    pub fn write(data_dir: &Path, file: &ServerFile) -> std::io::Result<Self> {
        file.write(data_dir)?;
        Ok(ServerFileGuard {
            data_dir: data_dir.to_path_buf(),
            token: file.token.clone(),
        })
    }
}

impl Drop for ServerFileGuard {
    fn drop(&mut self) {
        remove_if_ours(&self.data_dir, &self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pid: u32) -> ServerFile {
        ServerFile {
            pid,
            url: "http://127.0.0.1:8484".to_string(),
            token: new_token(),
            version: "0.1.0".to_string(),
            jobs: true,
        }
    }

    #[test]
    fn loopback_urls() {
        let url = |addr: &str| loopback_url(addr.parse().expect("address"));
        assert_eq!(
            url("127.0.0.1:8484").as_deref(),
            Some("http://127.0.0.1:8484")
        );
        assert_eq!(
            url("0.0.0.0:9000").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(url("[::]:9000").as_deref(), Some("http://[::1]:9000"));
        assert_eq!(url("[::1]:80").as_deref(), Some("http://[::1]:80"));
        assert_eq!(url("192.168.1.20:8484"), None);
    }

    #[test]
    fn round_trips_and_refuses_what_is_not_a_server_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(ServerFile::read(dir.path()).expect("read").is_none());
        let file = sample(std::process::id());
        file.write(dir.path()).expect("write");
        assert_eq!(
            ServerFile::read(dir.path()).expect("read"),
            Some(file.clone())
        );
        let at = path(dir.path());
        let invalid = |text: &str| ServerFile::parse(text.as_bytes(), &at).is_err();
        assert!(invalid("not json"));
        assert!(invalid(r#"{"pid":1}"#));
        let mut remote = serde_json::to_value(&file).expect("json");
        remote["url"] = "http://10.0.0.1:8484".into();
        assert!(invalid(&remote.to_string()));
        remote["url"] = "https://127.0.0.1:8484".into();
        assert!(invalid(&remote.to_string()));
        let mut short = serde_json::to_value(&file).expect("json");
        short["token"] = "abc".into();
        assert!(invalid(&short.to_string()));
        assert!(!format!("{file:?}").contains(&file.token));
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let guard = ServerFileGuard::write(dir.path(), &sample(std::process::id())).expect("write");
        let mode = std::fs::metadata(path(dir.path()))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(guard);
        assert!(!path(dir.path()).exists());
    }

    #[test]
    fn a_replaced_file_is_not_removed_by_the_old_guard() {
        let dir = tempfile::tempdir().expect("tempdir");
        let guard = ServerFileGuard::write(dir.path(), &sample(std::process::id())).expect("write");
        let newer = sample(std::process::id());
        newer.write(dir.path()).expect("replace");
        drop(guard);
        assert_eq!(ServerFile::read(dir.path()).expect("read"), Some(newer));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn staleness_follows_the_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = sample(std::process::id());
        live.write(dir.path()).expect("write");
        assert!(!live.process_gone());
        remove_if_stale(dir.path(), &live);
        assert!(path(dir.path()).exists());
        // A process that has ended: a child, waited for.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        let dead = ServerFile {
            pid,
            ..live.clone()
        };
        dead.write(dir.path()).expect("write");
        assert!(dead.process_gone());
        remove_if_stale(dir.path(), &dead);
        assert!(!path(dir.path()).exists());
    }
}
