//! Exact and regex search in server mode: the files and their trigrams live in Qdrant, so a node
//! with an empty data directory greps what another node indexed; a change indexed through any
//! node is found at once, its old text no longer; `sym:` reads the chunk points; a removed
//! collection leaves no files behind; a file's lines are read from the server. ripgrep's output conventions hold as in embedded mode.

use std::path::Path;

use aiex_indexer::grep::read::{read_lines, ReadError};
use aiex_indexer::store::server::ServerFiles;
use aiex_tests::qdrant::TestQdrant;

use crate::server_push::node;
use crate::stdout;

/// `search` in `mode` (`exact`, `regex`) on `name`, with no colour: stdout and the exit code.
fn grep(data: &Path, url: &str, name: &str, mode: &str, query: &str) -> (String, i32) {
    let output = node(data, url)
        .args([
            "search",
            "--mode",
            mode,
            "--color",
            "never",
            "--collection",
            name,
        ])
        .arg(query)
        .output()
        .expect("run aiex-research");
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "{query:?}: exit {code}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (stdout(&output), code)
}

fn index(data: &Path, url: &str, root: &Path, name: &str) {
    crate::run_ok(
        node(data, url)
            .arg("index")
            .arg(root)
            .args(["--name", name, "--no-embed"]),
    );
}

#[test]
fn server_grep_on_a_fresh_node_follows_changes_and_removal() {
    let test = "server_grep_on_a_fresh_node_follows_changes_and_removal";
    let Some(qdrant) = TestQdrant::get(test) else {
        return;
    };
    let url = qdrant.url();
    let repo = tempfile::tempdir().expect("repo");
    crate::server::small_repo(repo.path());
    let (a, b, c) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
        tempfile::tempdir().expect("c"),
    );
    let name = format!("grep-{}", std::process::id());
    index(a.path(), url, repo.path(), &name);

    // Node B never indexed anything: it greps from the server.
    let (out, code) = grep(b.path(), url, &name, "exact", "strip_prefix");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim(),
        "src/table.rs:3:10:    line.strip_prefix('[')?.strip_suffix(']')"
    );
    let (out, code) = grep(b.path(), url, &name, "regex", r"def \w+\(self, \w+\)");
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "lib/queue.py:4:5:    def push(self, job):");
    let (out, code) = grep(b.path(), url, &name, "exact", "no such text anywhere");
    assert_eq!((out.as_str(), code), ("", 1));
    // Filters, and a pattern no trigram narrows (every stored file scanned).
    let (out, _) = grep(b.path(), url, &name, "exact", "lang:python self");
    assert!(out.lines().all(|l| l.starts_with("lib/queue.py:")), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let (out, _) = grep(b.path(), url, &name, "regex", r"^\w+");
    let mut starts: Vec<&str> = out.lines().collect();
    starts.sort_unstable();
    assert_eq!(
        starts,
        [
            "lib/queue.py:1:1:class JobQueue:",
            "src/table.rs:2:1:pub fn parse_toml_table(line: &str) -> Option<&str> {"
        ]
    );
    // `sym:` keeps the lines inside matching symbols, read from the chunk points.
    let (out, _) = grep(b.path(), url, &name, "exact", "sym:JobQueue jobs");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            r#"lib/queue.py:2:49:    """A first-in first-out queue of background jobs.""""#,
            "lib/queue.py:5:14:        self.jobs.append(job)"
        ]
    );
    let (out, code) = grep(b.path(), url, &name, "exact", "sym:parse_toml self");
    assert_eq!((out.as_str(), code), ("", 1));

    // A change indexed through node B: A (whose own file index is stale) and a third, fresh node
    // find the new text, and the old text is gone everywhere.
    aiex_tests::write_files(
        repo.path(),
        &[(
            "src/table.rs",
            "pub fn parse_toml_table(line: &str) -> Option<&str> {\n    line.trim().strip_prefix(\"[[\")\n}\n",
        )],
    );
    std::fs::remove_file(repo.path().join("lib/queue.py")).expect("remove");
    index(b.path(), url, repo.path(), &name);
    for node_dir in [a.path(), c.path()] {
        let (out, code) = grep(node_dir, url, &name, "exact", "trim().strip_prefix");
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            out.trim(),
            "src/table.rs:2:10:    line.trim().strip_prefix(\"[[\")"
        );
        let (out, code) = grep(node_dir, url, &name, "exact", "strip_suffix");
        assert_eq!((out.as_str(), code), ("", 1));
        let (out, code) = grep(node_dir, url, &name, "exact", "JobQueue");
        assert_eq!((out.as_str(), code), ("", 1));
    }

    // Removal drops the collection's files from the server.
    let config = aiex_tests::config(
        c.path(),
        &[("vector.backend", "server"), ("vector.url", url)],
    );
    // Reading an indexed file's lines (the MCP `read` tool) comes from the server too.
    let read = read_lines(&config, &name, "src/table.rs", Some(2), Some(2)).expect("read");
    assert_eq!(read.text, "    line.trim().strip_prefix(\"[[\")\n");
    assert_eq!(read.total_lines, 3);
    assert!(matches!(
        read_lines(&config, &name, "lib/queue.py", None, None),
        Err(ReadError::NotIndexed { .. })
    ));
    let files = ServerFiles::connect(&config, false)
        .expect("connect")
        .expect("the file collection exists");
    assert_eq!(files.count(&name).expect("count"), 1);
    crate::run_ok(node(c.path(), url).args(["index", "--remove", &name]));
    assert_eq!(files.count(&name).expect("count"), 0);
}
