//! The pages a crawl mirrored and where each came from: `.aiex-urls.json` at the mirror's root
//! maps each page's path (relative to the root, as hits name it) to its original URL, so search
//! hits and research references in a crawled docs set point at the page, not at the mirror file.
//! A hidden file: the walk does not index it.

use std::collections::BTreeMap;
use std::path::Path;

/// The map's file name, at the collection root.
pub const PAGE_URLS_FILE: &str = ".aiex-urls.json";

/// Path → URL.
pub type PageUrls = BTreeMap<String, String>;

/// The map at `root`; empty when there is none (not a crawled mirror) or it cannot be read.
pub fn read(root: &Path) -> PageUrls {
    std::fs::read(root.join(PAGE_URLS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Adds `pages` to the map at `root` (a page crawled again keeps its newest URL), atomically.
pub fn merge(root: &Path, pages: &PageUrls) -> std::io::Result<()> {
    let mut all = read(root);
    all.extend(pages.iter().map(|(path, url)| (path.clone(), url.clone())));
    let bytes = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
    crate::atomic_write(&root.join(PAGE_URLS_FILE), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_maps_keep_every_page() {
        let root = tempfile::tempdir().expect("tempdir");
        assert!(read(root.path()).is_empty());
        let first = PageUrls::from([("index.html".into(), "https://d.example/".into())]);
        merge(root.path(), &first).expect("merge");
        let second = PageUrls::from([("guide/a.html".into(), "https://d.example/guide/a".into())]);
        merge(root.path(), &second).expect("merge");
        let all = read(root.path());
        assert_eq!(all.len(), 2);
        assert_eq!(all["guide/a.html"], "https://d.example/guide/a");
    }
}
