//! The local mirror a crawl writes: one file per page, under the mirror directory whatever the
//! URL says. File-system calls run on the blocking pool, never on async workers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use url::Url;

use super::CrawlError;

/// The file a page is mirrored to: `<mirror>/<path>` with `index.html` for directories and
/// `.html` added when missing, so the indexer chunks it as HTML.
pub(super) fn mirror_path(mirror: &Path, url: &Url) -> PathBuf {
    let mut relative: String = url
        .path()
        .trim_start_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != "." && *segment != "..")
        .collect::<Vec<_>>()
        .join("/");
    if relative.is_empty() || url.path().ends_with('/') {
        if !relative.is_empty() {
            relative.push('/');
        }
        relative.push_str("index.html");
    } else if !(relative.ends_with(".html") || relative.ends_with(".htm")) {
        relative.push_str(".html");
    }
    mirror.join(relative)
}

/// Creates the mirror directory (and its parents).
pub(super) async fn create_mirror(mirror: &Path) -> Result<(), CrawlError> {
    let directory = mirror.to_path_buf();
    run_blocking(mirror, move || create_dir_all(&directory)).await
}

/// Writes `html` to `target`, creating its directory first.
pub(super) async fn write_page(target: PathBuf, html: Arc<str>) -> Result<(), CrawlError> {
    let task_target = target.clone();
    run_blocking(&target, move || {
        if let Some(parent) = task_target.parent() {
            create_dir_all(parent)?;
        }
        std::fs::write(&task_target, html.as_bytes()).map_err(|source| CrawlError::Io {
            path: task_target.clone(),
            source,
        })
    })
    .await
}

fn create_dir_all(directory: &Path) -> Result<(), CrawlError> {
    std::fs::create_dir_all(directory).map_err(|source| CrawlError::Io {
        path: directory.to_path_buf(),
        source,
    })
}

/// Runs file-system work on the blocking pool; a task that could not finish is an I/O error at
/// `path`.
async fn run_blocking(
    path: &Path,
    work: impl FnOnce() -> Result<(), CrawlError> + Send + 'static,
) -> Result<(), CrawlError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join_error| {
            Err(CrawlError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(join_error),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_paths_stay_inside() {
        let mirror = Path::new("/m");
        let path = |u: &str| mirror_path(mirror, &Url::parse(u).expect("url"));
        assert_eq!(path("https://d.test/"), Path::new("/m/index.html"));
        assert_eq!(
            path("https://d.test/book/ch1.html"),
            Path::new("/m/book/ch1.html")
        );
        assert_eq!(path("https://d.test/api/"), Path::new("/m/api/index.html"));
        assert_eq!(
            path("https://d.test/api/Mutex"),
            Path::new("/m/api/Mutex.html")
        );
        assert_eq!(
            path("https://d.test/a/../../etc/passwd"),
            Path::new("/m/etc/passwd.html")
        );
    }

    #[tokio::test]
    async fn pages_are_written_under_new_directories() {
        let mirror = tempfile::tempdir().expect("tempdir");
        let root = mirror.path().join("site");
        create_mirror(&root).await.expect("mirror");
        let target = mirror_path(&root, &Url::parse("https://d.test/a/b/c").expect("url"));
        write_page(target.clone(), Arc::from("<p>page</p>"))
            .await
            .expect("write");
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "<p>page</p>"
        );
        let blocked = write_page(root.join("a/b/c.html/x.html"), Arc::from("x")).await;
        assert!(
            matches!(&blocked, Err(CrawlError::Io { path, .. }) if path.ends_with("c.html")),
            "{blocked:?}"
        );
    }
}
