//! Index a small repository, then modify, delete and rename files: exact counts and results.

use aiex_config::SearchMode;
use aiex_indexer::walk::SkipReason;
use aiex_indexer::IndexDir;

use crate::support::{index, paths, search};

const PARSER_RS: &str = r#"//! A tiny TOML-ish parser.

/// Parses documents.
pub struct Parser {
    input: String,
    position: usize,
}

impl Parser {
    /// Creates a parser over `input`.
    pub fn new(input: &str) -> Self {
        Parser { input: input.to_string(), position: 0 }
    }

    /// Parses a `[table]` header and returns the table's name.
    pub fn parse_table(&mut self) -> Option<String> {
        let rest = &self.input[self.position..];
        let start = rest.find('[')?;
        let end = rest.find(']')?;
        self.position += end + 1;
        Some(rest[start + 1..end].trim().to_string())
    }
}

/// Splits a document into key/value pairs, skipping comments and blank lines, and reports the
/// line numbers of malformed entries.
pub fn split_key_values(document: &str) -> (Vec<(String, String)>, Vec<usize>) {
    let mut pairs = Vec::new();
    let mut malformed = Vec::new();
    for (number, line) in document.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                let value = value.trim().trim_matches('"');
                pairs.push((key.trim().to_string(), value.to_string()));
            }
            _ => malformed.push(number + 1),
        }
    }
    (pairs, malformed)
}
"#;

const UTIL_PY: &str = r#"import re


def slugify(title):
    """Turn a title into a lowercase URL slug with dashes."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "-".join(words)


class Counter:
    """Counts how often each word occurs."""

    def __init__(self):
        self.counts = {}

    def add(self, word):
        self.counts[word] = self.counts.get(word, 0) + 1
"#;

const APP_JS: &str = r#"export function renderList(items) {
  const list = document.createElement("ul");
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = item.label;
    list.appendChild(li);
  }
  return list;
}
"#;

const README_MD: &str = "# Demo\n\nA demo project.\n\n## Install\n\nRun the installer and wait.\n\n## Usage\n\nCall `renderList` with items.\n";

fn write_repo(root: &std::path::Path) {
    aiex_tests::write_files(
        root,
        &[
            ("src/parser.rs", PARSER_RS),
            ("scripts/util.py", UTIL_PY),
            ("web/app.js", APP_JS),
            ("README.md", README_MD),
            (
                "Cargo.toml",
                "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
            ),
            (".gitignore", "build/\n"),
            ("build/generated.rs", "pub fn ignored_by_gitignore() {}\n"),
            ("assets/logo.png", "not really a png"),
        ],
    );
    std::fs::write(root.join("src/blob.rs"), b"fn main() {}\0\0\0binary").expect("write");
    std::fs::write(root.join("notes.txt"), "x".repeat(70_000)).expect("write");
}

#[test]
fn index_modify_delete_rename() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(data.path(), &[("index.max_file_bytes", "65536")]);
    write_repo(repo.path());

    // First run: everything new.
    let first = index(&config, repo.path());
    // parser.rs, blob.rs (binary, found when read), util.py, app.js, README.md, Cargo.toml.
    assert_eq!(first.scanned, 6, "{first:?}");
    assert_eq!(first.added, 5);
    assert_eq!(first.deleted, 0);
    assert_eq!(first.skipped.get(&SkipReason::Binary), Some(&1));
    assert_eq!(first.skipped.get(&SkipReason::UnsupportedType), Some(&1));
    assert_eq!(first.skipped.get(&SkipReason::TooLarge), Some(&1));
    assert!(first.vectors_complete);
    assert_eq!(first.embedded, first.chunks);
    assert_eq!(first.generation, 1);

    let hits = search(&config, "parse table header", SearchMode::Keyword);
    assert_eq!(hits[0].path, "src/parser.rs");
    // `impl Parser` is small enough to be one chunk: the hit covers `parse_table` (line 17).
    assert!(
        hits[0].start_line <= 17 && hits[0].end_line >= 17,
        "{:?}",
        hits[0]
    );
    let hits = search(&config, "make a url slug from a title", SearchMode::Vector);
    assert!(
        paths(&hits[..3]).contains(&"scripts/util.py".to_string()),
        "{hits:?}"
    );
    let hits = search(&config, "slugify", SearchMode::Hybrid);
    assert_eq!(hits[0].path, "scripts/util.py");
    assert!(!paths(&search(
        &config,
        "ignored_by_gitignore",
        SearchMode::Keyword
    ))
    .contains(&"build/generated.rs".to_string()));

    // Second run: nothing changed, nothing re-embedded.
    let second = index(&config, repo.path());
    assert_eq!(
        (second.changed, second.unchanged, second.deleted),
        (0, 5, 0)
    );
    assert_eq!((second.embedded, second.chunks_written), (0, 0));
    assert_eq!(second.generation, 1);
    assert_eq!(second.chunks, first.chunks);

    // Touching a file without changing it re-reads it but changes nothing.
    let parser_path = repo.path().join("src/parser.rs");
    let file = std::fs::File::options()
        .write(true)
        .open(&parser_path)
        .expect("open");
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .expect("set mtime");
    drop(file);
    let touched = index(&config, repo.path());
    assert_eq!((touched.changed, touched.embedded), (0, 0));

    // Modify: a new function above the others moves them; only new hashes are embedded.
    let modified = PARSER_RS.replacen(
        "/// Parses documents.",
        "/// Counts the lines of a document.\npub fn count_lines(text: &str) -> usize {\n    text.lines().count()\n}\n\n/// Parses documents.",
        1,
    );
    std::fs::write(&parser_path, modified).expect("write");
    let third = index(&config, repo.path());
    assert_eq!((third.changed, third.modified, third.unchanged), (1, 1, 4));
    assert_eq!(third.generation, 2);
    assert!(
        third.embedded >= 1 && third.embedded < first.embedded,
        "{third:?}"
    );
    assert!(
        third.vectors_reused >= 1,
        "moved chunks keep their vectors: {third:?}"
    );
    let hits = search(&config, "count_lines", SearchMode::Keyword);
    assert_eq!(hits[0].path, "src/parser.rs");
    assert!(
        hits[0].start_line <= 4 && hits[0].end_line >= 4,
        "{:?}",
        hits[0]
    );
    let hits = search(&config, "parse_table", SearchMode::Keyword);
    let parse_table = hits
        .iter()
        .find(|h| h.path == "src/parser.rs")
        .expect("hit");
    // `parse_table` moved from line 17 to line 22.
    assert!(
        parse_table.start_line <= 22 && parse_table.end_line >= 22,
        "lines follow the move: {parse_table:?}"
    );
    assert!(parse_table.end_line > 17 + 5);

    // Delete: util.py leaves both stores.
    std::fs::remove_file(repo.path().join("scripts/util.py")).expect("rm");
    let fourth = index(&config, repo.path());
    assert_eq!((fourth.deleted, fourth.changed, fourth.embedded), (1, 0, 0));
    assert!(search(&config, "slugify", SearchMode::Keyword).is_empty());
    let vector_hits = search(&config, "make a url slug from a title", SearchMode::Vector);
    assert!(!paths(&vector_hits).contains(&"scripts/util.py".to_string()));

    // Rename: old path gone, new path found.
    std::fs::rename(
        repo.path().join("web/app.js"),
        repo.path().join("web/main.js"),
    )
    .expect("mv");
    let fifth = index(&config, repo.path());
    assert_eq!((fifth.added, fifth.deleted), (1, 1));
    let hits = search(&config, "renderList", SearchMode::Hybrid);
    assert!(paths(&hits).contains(&"web/main.js".to_string()));
    assert!(!paths(&hits).contains(&"web/app.js".to_string()));

    // The stores agree with the manifest.
    let status = IndexDir::new(config.index_dir()).status().expect("status");
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].files, 4);
    assert_eq!(status[0].chunks, fifth.chunks);
    assert!(status[0].vectors_complete);
    assert_eq!(status[0].model_id.as_deref(), Some("all-MiniLM-L6-v2"));
    let searcher = aiex_indexer::Searcher::open(&config, &[]).expect("open");
    let everything = searcher
        .search(&aiex_indexer::SearchRequest::new(
            "fn def function class install",
            SearchMode::Keyword,
            1000,
        ))
        .expect("search");
    assert!(everything
        .hits
        .iter()
        .all(|h| h.path != "scripts/util.py" && h.path != "web/app.js"));
}

#[test]
fn filters_by_language_path_and_collection() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(data.path(), &[("embedding.enabled", "false")]);
    write_repo(repo.path());
    let summary = index(&config, repo.path());
    assert!(!summary.vectors_complete);
    let searcher = aiex_indexer::Searcher::open(&config, &[]).expect("open");
    let mut request =
        aiex_indexer::SearchRequest::new("item list render word", SearchMode::Hybrid, 10);
    request.languages = vec![aiex_indexer::Language::Python];
    let results = searcher.search(&request).expect("search");
    assert!(!results.hits.is_empty());
    assert!(results
        .hits
        .iter()
        .all(|h| h.language == aiex_indexer::Language::Python));
    assert_eq!(
        results.vectors_unavailable.len(),
        1,
        "embeddings disabled: keyword only"
    );
    request.languages.clear();
    request.path_glob = Some("web/**".into());
    let results = searcher.search(&request).expect("search");
    assert!(!results.hits.is_empty());
    assert!(results.hits.iter().all(|h| h.path.starts_with("web/")));
    request.collections = vec!["nope".into()];
    assert!(matches!(
        searcher.search(&request),
        Err(aiex_indexer::Error::CollectionNotFound { .. })
    ));
}

#[test]
fn keyword_commit_ahead_of_manifest_converges() {
    // A crash after the keyword commit but before the manifest write leaves tantivy one generation
    // ahead. Reproduce that state exactly by restoring the previous manifest after a run.
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(data.path(), &[("embedding.enabled", "false")]);
    write_repo(repo.path());
    index(&config, repo.path());
    let index_dir = IndexDir::new(config.index_dir());
    let name = index_dir.collection_names().expect("names").remove(0);
    let manifest_path = index_dir.collection_paths(&name).manifest;
    let generation_one = std::fs::read(&manifest_path).expect("manifest");

    std::fs::write(
        repo.path().join("scripts/util.py"),
        "def fresh_function():\n    return 42\n",
    )
    .expect("write");
    std::fs::remove_file(repo.path().join("web/app.js")).expect("rm");
    index(&config, repo.path());
    std::fs::write(&manifest_path, generation_one).expect("restore old manifest");

    let recovered = index(&config, repo.path());
    assert_eq!(recovered.generation, 2);
    assert!(search(&config, "slugify", SearchMode::Keyword).is_empty());
    assert!(search(&config, "renderList", SearchMode::Keyword)
        .iter()
        .all(|hit| hit.path != "web/app.js"));
    let fresh = search(&config, "fresh_function", SearchMode::Keyword);
    assert_eq!(fresh.len(), 1, "no duplicates: {fresh:?}");
    let everything = aiex_indexer::Searcher::open(&config, &[])
        .expect("open")
        .search(&aiex_indexer::SearchRequest::new(
            "fn def function class install parser",
            SearchMode::Keyword,
            1000,
        ))
        .expect("search");
    let mut ids: Vec<(String, u32)> = everything
        .hits
        .iter()
        .map(|h| (h.path.clone(), h.start_line))
        .collect();
    let before = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), before, "no chunk indexed twice");
    assert_eq!(
        recovered.chunks,
        IndexDir::new(config.index_dir()).status().expect("status")[0].chunks
    );
}

/// A searcher opened before the vectors existed (a server started during a keyword-only run, or
/// while another process held the vector store) uses them once they are there, without reopening.
#[test]
fn an_open_searcher_picks_up_vectors_written_later_and_a_store_let_go() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(data.path(), &[]);
    write_repo(repo.path());
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let mut keywords_only = aiex_indexer::IndexRequest::new(repo.path());
    keywords_only.embed = false;
    aiex_indexer::index_directory(&config, keywords_only, &mut |_| {}, &cancel)
        .expect("keyword run");
    let searcher = aiex_indexer::Searcher::open(&config, &[]).expect("open");
    let request =
        aiex_indexer::SearchRequest::new("split a document into pairs", SearchMode::Vector, 5);
    let before = searcher.search(&request).expect("search");
    assert!(before.hits.is_empty());
    assert_eq!(
        before.vectors_unavailable.len(),
        1,
        "{:?}",
        before.vectors_unavailable
    );

    // Another run embeds the collection; the open searcher follows within its retry interval.
    let summary = index(&config, repo.path());
    assert!(summary.vectors_complete);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    searcher.refresh().expect("refresh");
    let after = searcher.search(&request).expect("search");
    assert!(
        after.vectors_unavailable.is_empty(),
        "{:?}",
        after.vectors_unavailable
    );
    assert!(!after.hits.is_empty());

    // A store held by another owner: unavailable while held, used again once let go.
    let other = aiex_indexer::Searcher::open(&config, &[]).expect("open");
    let name = other.collection_names()[0].clone();
    drop(searcher);
    let held = aiex_indexer::store::vector::open_store(
        &config,
        &IndexDir::new(config.index_dir())
            .collection_paths(&name)
            .vectors,
    )
    .expect("the store is free once the first searcher is gone");
    let busy = other.search(&request).expect("search");
    assert!(
        busy.vectors_unavailable
            .iter()
            .any(|(_, reason)| reason.contains("in use")),
        "{:?}",
        busy.vectors_unavailable
    );
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let free = other.search(&request).expect("search");
    assert!(
        free.vectors_unavailable.is_empty(),
        "{:?}",
        free.vectors_unavailable
    );
    assert!(!free.hits.is_empty());
}
