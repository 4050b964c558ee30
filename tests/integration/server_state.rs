//! Index state in the cluster (`vector.backend = "server"`): a node with an empty data directory
//! lists, searches and incrementally indexes what another node indexed; the indexing lease keeps
//! two runs of one collection apart; a run that died is converged by the next, from any node.
//!
//! Without a server each test prints `SKIPPED: no Qdrant server …` and returns early.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiex_config::{Config, SearchMode};
use aiex_indexer::store::server::{open_tenant, sync_cache, Lease, MetaStore};
use aiex_indexer::store::vector::VectorStore;
use aiex_indexer::{
    index_directory, CollectionKind, Error, IndexDir, IndexProgress, IndexRequest, IndexSummary,
    SearchRequest, Searcher,
};
use aiex_tests::qdrant::TestQdrant;

use crate::server_store::{assert_converged, write_repo, QUERIES};

/// A node on the server at `url` (its runs' leases last the default 60 s: a short one could
/// expire on a loaded machine; the leases that must expire here are taken with 2 s).
fn node(data: &std::path::Path, url: &str) -> Config {
    aiex_tests::config(data, &[("vector.backend", "server"), ("vector.url", url)])
}

fn index(config: &Config, root: &std::path::Path, name: &str) -> Result<IndexSummary, Error> {
    let cancel = AtomicBool::new(false);
    let mut request = IndexRequest::new(root);
    request.name = Some(name.to_string());
    index_directory(config, request, &mut |_| {}, &cancel)
}

/// Top-10 (path, start line) of every query, keyword and vector.
fn top10(config: &Config, name: &str) -> Vec<Vec<(String, u32)>> {
    let searcher = Searcher::open(config, &[name.to_string()]).expect("open searcher");
    let mut all = Vec::new();
    for mode in [SearchMode::Keyword, SearchMode::Vector] {
        for query in QUERIES {
            all.push(
                searcher
                    .search(&SearchRequest::new(query, mode, 10))
                    .expect("search")
                    .hits
                    .into_iter()
                    .map(|hit| (hit.path, hit.start_line))
                    .collect(),
            );
        }
    }
    all
}

#[test]
fn server_state_fresh_node_lists_searches_and_indexes_incrementally() {
    let Some(qdrant) = TestQdrant::get("server_state_fresh_node_lists_searches_and_indexes") else {
        return;
    };
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path().join("fixture");
    write_repo(&root);
    let (data_a, data_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (a, b) = (
        node(data_a.path(), qdrant.url()),
        node(data_b.path(), qdrant.url()),
    );
    let name = format!("state-{}", std::process::id());
    let first = index(&a, &root, &name).expect("index from A");
    assert!(first.vectors_complete && first.embedded > 0);

    // B's data directory is empty: the collection list comes from the registry in Qdrant.
    assert!(IndexDir::new(b.index_dir())
        .collection_names()
        .expect("list")
        .is_empty());
    sync_cache(&b).expect("sync");
    let status = IndexDir::new(b.index_dir()).status().expect("status");
    let listed = status.iter().find(|s| s.name == name).expect("listed on B");
    assert_eq!((listed.files, listed.chunks), (4, first.chunks));
    assert!(listed.vectors_complete);
    let expected = top10(&a, &name);
    assert!(expected.iter().all(|hits| !hits.is_empty()));
    assert_eq!(top10(&b, &name), expected, "B answers as A");

    // A searcher open on A picks up what B indexes next.
    let on_a = Searcher::open(&a, std::slice::from_ref(&name)).expect("open on A");
    let new_term = "heronsformula";
    let find = |searcher: &Searcher| {
        searcher
            .search(&SearchRequest::new(new_term, SearchMode::Keyword, 5))
            .expect("search")
            .hits
            .into_iter()
            .map(|hit| hit.path)
            .collect::<Vec<_>>()
    };
    assert!(find(&on_a).is_empty());

    // One file changed, indexed from B: only that file is read and embedded.
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("read");
    std::fs::write(
        root.join("src/lib.rs"),
        format!("{lib}\n/// Heron's formula: heronsformula.\npub fn heron(a: f64, b: f64, c: f64) -> f64 {{\n    let s = (a + b + c) / 2.0;\n    (s * (s - a) * (s - b) * (s - c)).sqrt()\n}}\n"),
    )
    .expect("modify");
    let second = index(&b, &root, &name).expect("index from B");
    assert_eq!(
        (second.changed, second.modified, second.unchanged),
        (1, 1, 3),
        "{second:?}"
    );
    let lib_chunks = IndexDir::new(b.index_dir())
        .manifest(&name)
        .expect("manifest")
        .files["src/lib.rs"]
        .chunks
        .len();
    assert!(
        second.embedded > 0 && second.embedded <= lib_chunks,
        "only src/lib.rs embedded: {second:?}"
    );
    assert!(second.vectors_complete);
    assert_converged(&b, &name);

    // A sees the change: its open searcher after a refresh, a new one at once.
    std::thread::sleep(Duration::from_millis(1100));
    on_a.refresh().expect("refresh");
    assert_eq!(find(&on_a), ["src/lib.rs"]);
    let third = index(&a, &root, &name).expect("index from A again");
    assert_eq!((third.changed, third.embedded), (0, 0), "{third:?}");
    // A's working copy of the keyword index was behind B's run: rebuilt from the sources, at the
    // registry's generation, with the new function.
    let keyword = aiex_indexer::store::keyword::KeywordStore::open(
        &IndexDir::new(a.index_dir()).collection_paths(&name).keyword,
    )
    .expect("keyword index");
    assert_eq!(
        keyword.committed_generation().expect("generation"),
        Some(third.generation)
    );
    assert_eq!(third.chunks_written, third.chunks, "{third:?}");
    // Nobody indexed since: A's working copy is current, nothing is rewritten.
    let fourth = index(&a, &root, &name).expect("index from A once more");
    assert_eq!(
        (fourth.changed, fourth.chunks_written),
        (0, 0),
        "{fourth:?}"
    );
    assert_converged(&a, &name);
    assert_eq!(top10(&a, &name), top10(&b, &name));

    // Removed through B: gone from A's list too.
    aiex_indexer::store::server::remove_collection(&b, &name).expect("remove");
    sync_cache(&a).expect("sync");
    assert!(!IndexDir::new(a.index_dir())
        .collection_names()
        .expect("list")
        .contains(&name));
    let meta = MetaStore::connect(&a).expect("meta");
    assert!(meta.entry(&name).expect("entry").is_none());
}

#[test]
fn server_state_lease_refuses_a_second_run_until_it_expires() {
    let Some(qdrant) = TestQdrant::get("server_state_lease_refuses_a_second_run") else {
        return;
    };
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path().join("fixture");
    write_repo(&root);
    let data = tempfile::tempdir().expect("tempdir");
    let config = node(data.path(), qdrant.url());
    let name = format!("leased-{}", std::process::id());
    let meta = MetaStore::connect(&config).expect("meta");

    // A live run elsewhere: its lease is renewed past its 3 s, and refuses this run clearly.
    let held = Lease::acquire(Arc::clone(&meta), &name, Duration::from_secs(3)).expect("lease");
    std::thread::sleep(Duration::from_millis(3600));
    let err = index(&config, &root, &name).expect_err("refused while held");
    let message = err.to_string();
    assert!(matches!(err, Error::Leased { .. }), "{err:?}");
    assert!(message.contains(held.holder()), "{message}");
    assert!(message.contains("expires in"), "{message}");
    assert!(err.is_user_error());
    drop(held);
    index(&config, &root, &name).expect("the released lease is taken");

    // A dead run's lease (never renewed): refused until it expires, then taken over.
    let dead = meta
        .try_lease(&name, "dead-host:1:0", Duration::from_secs(2), false)
        .expect("lease");
    assert_eq!(dead.holder, "dead-host:1:0");
    let err = index(&config, &root, &name).expect_err("refused");
    assert!(err.to_string().contains("dead-host:1:0"), "{err}");
    std::thread::sleep(Duration::from_millis(2200));
    let after = index(&config, &root, &name).expect("taken over after expiry");
    assert_eq!(after.changed, 0);
    assert_converged(&config, &name);
}

#[test]
fn server_state_converges_after_a_run_dies() {
    let Some(qdrant) = TestQdrant::get("server_state_converges_after_a_run_dies") else {
        return;
    };
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path().join("fixture");
    write_repo(&root);
    let (data_a, data_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (a, b) = (
        node(data_a.path(), qdrant.url()),
        node(data_b.path(), qdrant.url()),
    );
    let name = format!("crashy-{}", std::process::id());
    index(&a, &root, &name).expect("first run");

    // A run on A stops after its keyword commit, before its points: files changed, added and
    // deleted; its registry entry stays dirty.
    let text = std::fs::read_to_string(root.join("py/text.py")).expect("read");
    std::fs::write(root.join("py/text.py"), text.replace("slug", "handle")).expect("modify");
    std::fs::remove_file(root.join("README.md")).expect("delete");
    aiex_tests::write_files(
        &root,
        &[(
            "js/util.js",
            "// Clamp a number into a range.\nfunction clamp(x, lo, hi) {\n  return Math.min(hi, \
             Math.max(lo, x));\n}\n\n// Linear interpolation.\nfunction lerp(a, b, t) {\n  \
             return a + (b - a) * t;\n}\n",
        )],
    );
    let cancel = AtomicBool::new(false);
    let mut request = IndexRequest::new(&root);
    request.name = Some(name.clone());
    let mut on_progress = |progress: IndexProgress| {
        if let IndexProgress::KeywordCommitted { .. } = progress {
            cancel.store(true, Ordering::SeqCst);
        }
    };
    let stopped = index_directory(&a, request, &mut on_progress, &cancel);
    assert!(matches!(stopped, Err(Error::Cancelled)), "{stopped:?}");
    let meta = MetaStore::connect(&a).expect("meta");
    assert!(meta.entry(&name).expect("entry").expect("registered").dirty);

    // What a kill -9 leaves beyond that: points the manifest never recorded, a file entry not
    // written, and a lease that nobody renews.
    let store = open_tenant(&a, &name, CollectionKind::Code).expect("store");
    let (manifest, _) = meta.load(&name).expect("load").expect("manifest");
    let orphans = [u64::MAX - 1, u64::MAX - 2];
    store
        .upsert(
            orphans
                .iter()
                .map(|&id| aiex_indexer::store::vector::VectorPoint {
                    id,
                    vector: vec![0.1; a.embedding.dimension],
                    payload: aiex_indexer::store::vector::VectorPayload {
                        collection: name.clone(),
                        path: "gone.rs".into(),
                        language: "rust".into(),
                        symbol: None,
                        kind: "function".into(),
                        start_line: 1,
                        end_line: 2,
                        hash: "x".into(),
                    },
                })
                .collect(),
        )
        .expect("orphans");
    meta.write_files(&name, &[], &["src/lib.rs"])
        .expect("drop a file entry");
    meta.try_lease(&name, "killed-host:9:0", Duration::from_secs(2), false)
        .expect("dead lease");
    assert!(manifest.files.contains_key("js/util.js"));

    // From another node with an empty data directory, once the dead lease expires.
    assert!(matches!(index(&b, &root, &name), Err(Error::Leased { .. })));
    std::thread::sleep(Duration::from_millis(2200));
    let resumed = index(&b, &root, &name).expect("resumed from B");
    assert!(resumed.vectors_complete, "{resumed:?}");
    // The file whose entry was never written is redone like a new one (its points were orphans).
    assert_eq!((resumed.added, resumed.deleted), (1, 0), "{resumed:?}");
    assert!(resumed.embedded > 0, "{resumed:?}");
    assert_converged(&b, &name);
    assert!(store.existing(&orphans).expect("existing").is_empty());
    let entry = meta.entry(&name).expect("entry").expect("registered");
    assert!(!entry.dirty);
    let (manifest, dirty) = meta.load(&name).expect("load").expect("manifest");
    assert!(!dirty);
    let paths: HashSet<&str> = manifest.files.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        HashSet::from(["src/lib.rs", "py/text.py", "go/server.go", "js/util.js"])
    );
    // Every chunk embedded, every point there, nothing else (checked through Qdrant alone).
    let ids: HashSet<u64> = manifest
        .files
        .values()
        .flat_map(|file| file.chunks.iter().map(|chunk| chunk.id))
        .collect();
    assert!(manifest
        .files
        .values()
        .all(|f| f.chunks.iter().all(|c| c.embedded)));
    assert_eq!(store.info().expect("info").points, ids.len());
    let all: Vec<u64> = ids.iter().copied().collect();
    assert_eq!(store.existing(&all).expect("existing").len(), ids.len());
    let full = store.vectors(&all).expect("vectors");
    assert_eq!(full.len(), ids.len(), "every point has its dense vector");
    let hits = Searcher::open(&a, std::slice::from_ref(&name))
        .expect("open on A")
        .search(&SearchRequest::new(
            "clamp a number",
            SearchMode::Keyword,
            3,
        ))
        .expect("search")
        .hits;
    assert_eq!(hits[0].path, "js/util.js");
}
