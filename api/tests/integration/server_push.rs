//! `index --push NAME`: a collection indexed in embedded mode is copied into a real Qdrant without
//! embedding it again; a node in server mode with an empty data directory then lists it, searches
//! it like the embedded index, and indexes its root incrementally. And the refusals.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

use aiex_indexer::store::server::{open_tenant, MetaStore};
use aiex_indexer::store::vector::VectorStore;
use aiex_indexer::CollectionKind;
use aiex_tests::qdrant::TestQdrant;

use crate::crash::summary;
use crate::{aiex, run_ok, stdout};

/// A few files on distinct subjects, so each query has one clear best hit.
fn topics_repo(root: &Path) {
    aiex_tests::write_files(
        root,
        &[
            (
                "src/table.rs",
                "/// Parses a TOML table header such as `[server]`.\npub fn parse_toml_table(line: &str) -> Option<&str> {\n    line.strip_prefix('[')?.strip_suffix(']')\n}\n",
            ),
            (
                "lib/queue.py",
                "class JobQueue:\n    \"\"\"A first-in first-out queue of background jobs.\"\"\"\n\n    def push(self, job):\n        self.jobs.append(job)\n\n    def pop(self):\n        return self.jobs.pop(0)\n",
            ),
            (
                "src/checksum.go",
                "package integrity\n\n// Crc32Checksum computes the CRC-32 checksum of a byte slice for file integrity checks.\nfunc Crc32Checksum(data []byte) uint32 {\n\tvar crc uint32 = 0xffffffff\n\tfor _, b := range data {\n\t\tcrc ^= uint32(b)\n\t}\n\treturn ^crc\n}\n",
            ),
            (
                "web/login.js",
                "// Validates the login form: the email address and the password length.\nexport function validateLoginForm(email, password) {\n  const emailOk = /^[^@]+@[^@]+$/.test(email);\n  return emailOk && password.length >= 12;\n}\n",
            ),
            (
                "docs/deploy.md",
                "# Deployment\n\nDeploy the service with Docker Compose: build the image, then start the containers.\n\n## Rollback\n\nTo roll back a release, redeploy the previous image tag.\n",
            ),
        ],
    );
}

/// The binary on data directory `data`, configured to write to the Qdrant at `url` (the backend
/// left at its default, embedded).
fn pusher(data: &Path, url: &str) -> Command {
    let mut command = aiex(data);
    command.env("AIEX__VECTOR__URL", url);
    command
}

/// The binary as a node in server mode on the Qdrant at `url`.
pub(crate) fn node(data: &Path, url: &str) -> Command {
    let mut command = pusher(data, url);
    command.env("AIEX__VECTOR__BACKEND", "server");
    command
}

/// The best hit's path and first line for `query` in `mode`.
fn top_hit(command: &mut Command, query: &str, mode: &str, name: &str) -> (String, u64) {
    let output = run_ok(command.args([
        "search",
        query,
        "--mode",
        mode,
        "--hits",
        "--collection",
        name,
    ]));
    let text = stdout(&output);
    let first = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no hit for {query:?} ({mode})"));
    let hit: serde_json::Value = serde_json::from_str(first).expect("json hit");
    let path = hit["path"].as_str().expect("path").to_string();
    let line = hit["start_line"].as_u64().expect("start_line");
    (path, line)
}

#[test]
fn server_push_copies_an_embedded_collection_without_reembedding() {
    let test = "server_push_copies_an_embedded_collection_without_reembedding";
    let Some(qdrant) = TestQdrant::get(test) else {
        return;
    };
    let url = qdrant.url();
    let repo = tempfile::tempdir().expect("tempdir");
    topics_repo(repo.path());
    let (local, fresh) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let name = format!("pushed-{}", std::process::id());

    let indexed = summary(&run_ok(
        aiex(local.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", &name, "--json"]),
    ));
    assert_eq!(indexed["vectors_complete"], true, "{indexed}");
    let chunks = indexed["chunks"].as_u64().expect("chunks");

    let pushed = summary(&run_ok(
        pusher(local.path(), url).args(["index", "--push", &name, "--json"]),
    ));
    assert_eq!(pushed["points"], chunks, "{pushed}");
    assert_eq!(pushed["chunks"], chunks, "{pushed}");
    assert_eq!(pushed["files"], 5, "{pushed}");
    assert!(pushed["took_ms"].is_u64(), "{pushed}");

    // A node with an empty data directory lists it, every chunk embedded.
    let status = run_ok(node(fresh.path(), url).args(["index", "--status", "--json"]));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let listed = status
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name.as_str()))
        .unwrap_or_else(|| panic!("listed on a fresh node: {status}"));
    assert_eq!(listed["files"], 5, "{listed}");
    assert_eq!(listed["chunks"], chunks, "{listed}");
    assert_eq!(listed["embedded_chunks"], chunks, "{listed}");
    assert_eq!(listed["vectors_complete"], true, "{listed}");

    // It searches like the embedded index, in every mode.
    for query in [
        "parse toml table header",
        "queue of background jobs",
        "crc32 checksum of bytes",
        "validate the login form email",
        "roll back a release",
    ] {
        for mode in ["keyword", "vector", "hybrid"] {
            let embedded = top_hit(&mut aiex(local.path()), query, mode, &name);
            let server = top_hit(&mut node(fresh.path(), url), query, mode, &name);
            assert_eq!(server, embedded, "{query:?} in {mode} mode");
        }
    }

    // Exact search too, from the files the push copied.
    let found = run_ok(node(fresh.path(), url).args([
        "search",
        "--mode",
        "exact",
        "--color",
        "never",
        "--collection",
        &name,
        "strip_suffix",
    ]));
    assert_eq!(
        stdout(&found).trim(),
        "src/table.rs:3:29:    line.strip_prefix('[')?.strip_suffix(']')"
    );

    // A server-mode run of the same root, from that node, has nothing to do.
    let again = summary(&run_ok(
        node(fresh.path(), url)
            .arg("index")
            .arg(repo.path())
            .args(["--name", &name, "--json"]),
    ));
    assert_eq!(again["changed"], 0, "{again}");
    assert_eq!(again["embedded"], 0, "{again}");
    assert_eq!(again["deleted"], 0, "{again}");
    assert_eq!(again["chunks"], chunks, "{again}");
    assert_eq!(again["vectors_complete"], true, "{again}");

    // A second push replaces the first: exactly one point per chunk, the registry clean.
    run_ok(pusher(local.path(), url).args(["index", "--push", &name]));
    let config = aiex_tests::config(fresh.path(), &[("vector.url", url)]);
    let meta = MetaStore::connect(&config).expect("meta");
    let (manifest, dirty) = meta.load(&name).expect("load").expect("registered");
    assert!(!dirty);
    let ids: HashSet<u64> = manifest
        .files
        .values()
        .flat_map(|file| file.chunks.iter().map(|chunk| chunk.id))
        .collect();
    assert_eq!(ids.len() as u64, chunks);
    let store = open_tenant(&config, &name, CollectionKind::Code).expect("store");
    assert_eq!(store.info().expect("info").points as u64, chunks);
    let all: Vec<u64> = ids.into_iter().collect();
    assert_eq!(
        store.vectors(&all).expect("vectors").len() as u64,
        chunks,
        "every point has its dense vector"
    );

    // A push that died after writing a file's points but before its file entry (the registry
    // still dirty): the next server-mode run indexes that file again and ends with exactly one
    // point per chunk.
    let mut partial = manifest.clone();
    let (lost, _) = partial.files.pop_first().expect("a file");
    meta.write_files(&name, &[], &[lost.as_str()])
        .expect("drop the file entry");
    meta.write_entry(&partial, true).expect("dirty entry");
    let converged = summary(&run_ok(
        node(fresh.path(), url)
            .arg("index")
            .arg(repo.path())
            .args(["--name", &name, "--json"]),
    ));
    assert_eq!(converged["changed"], 1, "{converged}");
    assert_eq!(converged["vectors_complete"], true, "{converged}");
    let (after, dirty) = meta.load(&name).expect("load").expect("registered");
    assert!(!dirty);
    assert_eq!(after.chunk_count() as u64, chunks);
    assert_eq!(store.info().expect("info").points as u64, chunks);
}

/// Runs `command`, expecting exit status 2 and a one-line error; returns that line.
fn refused(command: &mut Command) -> String {
    let output: Output = command.output().expect("run aiex-research");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    lines[0].to_string()
}

/// The refusals come before anything is asked of the server: no Qdrant needed (the URL names a
/// port where nothing listens).
#[test]
fn push_refuses_what_it_cannot_copy() {
    let nowhere = "http://127.0.0.1:9";
    let repo = tempfile::tempdir().expect("tempdir");
    aiex_tests::write_files(
        repo.path(),
        &[(
            "src/lib.rs",
            "/// Adds two numbers.\npub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n",
        )],
    );
    let data = tempfile::tempdir().expect("tempdir");
    run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "full"]),
    );
    run_ok(aiex(data.path()).arg("index").arg(repo.path()).args([
        "--name",
        "partial",
        "--no-embed",
    ]));

    let error = refused(aiex(data.path()).args(["index", "--push", "full"]));
    assert!(error.contains("vector.url is not set"), "{error}");

    let error = refused(pusher(data.path(), nowhere).args(["index", "--push", "absent"]));
    assert!(
        error.contains("`absent`") && error.contains("not in the data directory"),
        "{error}"
    );
    assert!(
        !data.path().join("index/collections/absent").exists(),
        "nothing created for a collection that does not exist"
    );

    let error = refused(pusher(data.path(), nowhere).args(["index", "--push", "partial"]));
    assert!(
        error.contains("not fully embedded (0 of 1 chunks)"),
        "{error}"
    );
    assert!(
        error.contains("aiex-research index") && error.contains("--name partial"),
        "says how to finish it: {error}"
    );

    let error = refused(
        pusher(data.path(), nowhere)
            .env("AIEX__EMBEDDING__DIMENSION", "512")
            .args(["index", "--push", "full"]),
    );
    assert!(
        error.contains("384 dimensions") && error.contains("512 dimensions"),
        "{error}"
    );

    // In server mode too, the embedded collection is what is read (and the server must be
    // reachable for the copy itself).
    let error = refused(node(data.path(), nowhere).args(["index", "--push", "full"]));
    assert!(error.contains("127.0.0.1:9"), "{error}");
}
