//! A real 3-node Qdrant cluster (collection with 3 shards, replication factor 2): a repository
//! indexed through one node; one node killed (`kill -9`): searches through the others return the
//! same top-10 and a change is indexed while it is down; the node restarted with the same storage
//! and ports rejoins, every replica becomes active again and nothing is lost (checked again with
//! another node killed, so that the rejoined replicas answer alone).
//!
//! Without a Qdrant binary the test prints `SKIPPED: …` and returns early.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use aiex_config::{Config, SearchMode};
use aiex_indexer::store::server::ServerStoreOptions;
use aiex_indexer::{index_directory, IndexRequest, SearchRequest, Searcher};
use aiex_tests::qdrant::{http_get, QdrantCluster};

use crate::server_store::{assert_converged, write_repo, QUERIES};

/// The config of a node reached at `url`, every node sharing `data` (the manifest).
fn node_config(data: &std::path::Path, url: &str) -> Config {
    aiex_tests::config(
        data,
        &[
            ("vector.backend", "server"),
            ("vector.url", url),
            ("vector.shard_number", "3"),
            ("vector.replication_factor", "2"),
            ("vector.write_consistency_factor", "1"),
            ("vector.request_timeout_ms", "10000"),
        ],
    )
}

type Top10 = Vec<Vec<(String, u32)>>;

/// Top-10 (path, start line) of every query in every mode.
fn all_results(config: &Config) -> Top10 {
    let searcher = Searcher::open(config, &[]).expect("open searcher");
    let mut all = Vec::new();
    for mode in [SearchMode::Keyword, SearchMode::Vector, SearchMode::Hybrid] {
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

/// Whether every shard replica that `http_port`'s node reports is active.
fn replicas_active(http_port: u16, collection: &str) -> bool {
    let Some((200, body)) = http_get(http_port, &format!("/collections/{collection}/cluster"))
    else {
        return false;
    };
    let states = body.matches("\"state\":").count();
    let active = body.matches("\"state\":\"Active\"").count();
    // 3 shards × 2 replicas, seen from one node: its local replicas and the remote ones.
    states == 6 && active == states
}

#[test]
fn server_cluster_survives_a_dead_node_and_converges() {
    let started = Instant::now();
    let Some(mut cluster) = QdrantCluster::start(3) else {
        aiex_tests::qdrant::skipped("server_cluster_survives_a_dead_node_and_converges");
        return;
    };
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path().join("fixture");
    write_repo(&root);
    let data = tempfile::tempdir().expect("tempdir");
    let urls: Vec<String> = cluster.nodes.iter().map(|node| node.url.clone()).collect();
    let through = |node: usize| node_config(data.path(), &urls[node]);
    let name = "cluster-fixture";
    let index = |config: &Config| {
        let cancel = AtomicBool::new(false);
        let mut request = IndexRequest::new(&root);
        request.name = Some(name.to_string());
        index_directory(config, request, &mut |_| {}, &cancel).expect("indexing succeeds")
    };
    let collection = ServerStoreOptions::from_config(&through(0), "code")
        .expect("options")
        .collection_name();

    let first = index(&through(0));
    assert!(first.vectors_complete && first.embedded > 0);
    assert_converged(&through(0), name);
    let before = all_results(&through(0));
    assert!(before.iter().all(|hits| !hits.is_empty()));
    assert_eq!(all_results(&through(1)), before, "node 1 answers as node 0");
    assert_eq!(all_results(&through(2)), before, "node 2 answers as node 0");

    // kill -9 of the last node: the others still hold a replica of every shard.
    cluster.nodes[2].kill();
    assert_eq!(all_results(&through(0)), before, "node 0 with a node down");
    assert_eq!(all_results(&through(1)), before, "node 1 with a node down");

    // A change indexed while the node is down.
    std::fs::write(
        root.join("py/extra.py"),
        "def fibonacci(n):\n    \"\"\"The n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    \
         for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    )
    .expect("write");
    std::fs::remove_file(root.join("README.md")).expect("delete");
    let changed = index(&through(1));
    assert!(changed.vectors_complete, "{changed:?}");
    assert_converged(&through(1), name);
    let after = all_results(&through(1));
    let fibonacci = Searcher::open(&through(0), &[])
        .expect("open")
        .search(&SearchRequest::new(
            "fibonacci number",
            SearchMode::Keyword,
            1,
        ))
        .expect("search");
    assert_eq!(fibonacci.hits[0].path, "py/extra.py");

    // The node comes back with its storage and ports, and catches up.
    cluster.nodes[2].restart();
    let converging = Instant::now();
    while !cluster
        .nodes
        .iter()
        .all(|node| replicas_active(node.http_port, &collection))
    {
        assert!(
            converging.elapsed() < Duration::from_secs(30),
            "replicas did not become active: {:?}",
            http_get(
                cluster.nodes[2].http_port,
                &format!("/collections/{collection}/cluster")
            )
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for node in 0..3 {
        assert_converged(&through(node), name);
        assert_eq!(
            all_results(&through(node)),
            after,
            "node {node} after rejoining"
        );
    }
    // The restarted node's replicas hold the change: with node 0 killed in turn, every shard it
    // shared with node 2 is served by node 2's replica alone.
    cluster.nodes[0].kill();
    assert_converged(&through(2), name);
    assert_eq!(all_results(&through(2)), after, "node 2 without node 0");
    assert_eq!(all_results(&through(1)), after, "node 1 without node 0");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}
