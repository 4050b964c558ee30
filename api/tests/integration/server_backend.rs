//! Server mode (`vector.backend = "server"`) against a real Qdrant, several nodes (data
//! directories) on one server: `kill -9` of an indexing process mid-embedding, then a run from
//! another node converges to exactly the manifest's points, and a node with an empty data
//! directory lists and searches the collection, from the command line and through the HTTP API.
//!
//! Without a server each test prints `SKIPPED: no Qdrant server …` and returns early.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aiex_indexer::store::server::{open_tenant, MetaStore};
use aiex_indexer::store::vector::VectorStore;
use aiex_indexer::CollectionKind;
use aiex_tests::qdrant::TestQdrant;

use crate::crash::{embedded_in, summary, synthetic_repo};
use crate::server::{call, get, index_keywords, post_json, server_config, small_repo, state};
use crate::{aiex, run_ok, stdout};

/// The binary as one node of a deployment on the Qdrant at `url`, with a 5 s lease (renewed
/// every 1.7 s while the process lives).
fn node(data: &Path, url: &str) -> Command {
    let mut command = aiex(data);
    command
        .env("AIEX__VECTOR__BACKEND", "server")
        .env("AIEX__VECTOR__URL", url)
        .env("AIEX__VECTOR__LEASE_SECS", "5");
    command
}

#[test]
fn server_kill_9_mid_embedding_then_another_node_converges() {
    let test = "server_kill_9_mid_embedding_then_another_node_converges";
    let Some(qdrant) = TestQdrant::get(test) else {
        return;
    };
    let url = qdrant.url();
    let repo = tempfile::tempdir().expect("tempdir");
    synthetic_repo(repo.path(), 150);
    let [a, b, c] = [(); 3].map(|()| tempfile::tempdir().expect("tempdir"));
    let name = format!("killed-{}", std::process::id());

    // Node A indexes and is killed at its first durable embedding checkpoint (the cached
    // manifest is written after the entries in Qdrant).
    let cached = a
        .path()
        .join("index/collections")
        .join(&name)
        .join("manifest.json");
    let mut child = node(a.path(), url)
        .arg("index")
        .arg(repo.path())
        .args(["--name", &name, "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) {
        let manifest = aiex_indexer::manifest::Manifest::load(&cached)
            .ok()
            .flatten();
        if embedded_in(manifest.as_ref()) > 0 || child.try_wait().expect("poll").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");

    let config = aiex_tests::config(
        b.path(),
        &[("vector.backend", "server"), ("vector.url", url)],
    );
    let meta = MetaStore::connect(&config).expect("meta");
    let (at_kill, dirty) = meta.load(&name).expect("load").expect("registered");
    assert!(
        dirty,
        "the killed run left its collection marked as being indexed"
    );
    let (total, embedded_at_kill) = (at_kill.chunk_count(), at_kill.embedded_count());
    assert!(
        embedded_at_kill > 0 && embedded_at_kill < total,
        "killed mid-embedding: {embedded_at_kill}/{total}"
    );

    // Node B, with an empty data directory, once the dead process's lease has expired.
    std::thread::sleep(Duration::from_millis(5500));
    let resumed = summary(&run_ok(
        node(b.path(), url)
            .arg("index")
            .arg(repo.path())
            .args(["--name", &name, "--json"]),
    ));
    assert_eq!(resumed["changed"], 0, "{resumed}");
    assert_eq!(resumed["vectors_complete"], true, "{resumed}");
    let embedded = resumed["embedded"].as_u64().expect("number") as usize;
    assert!(embedded <= total - embedded_at_kill, "{resumed}");

    // Exactly the manifest's points: every chunk with its dense vector, nothing else.
    let (manifest, dirty) = meta.load(&name).expect("load").expect("registered");
    assert!(!dirty);
    assert_eq!(manifest.files.len(), 150);
    let ids: HashSet<u64> = manifest
        .files
        .values()
        .flat_map(|file| file.chunks.iter().map(|chunk| chunk.id))
        .collect();
    assert_eq!(ids.len(), total);
    assert_eq!(manifest.embedded_count(), total);
    let store = open_tenant(&config, &name, CollectionKind::Code).expect("store");
    assert_eq!(
        store.info().expect("info").points,
        total,
        "no orphan points"
    );
    let all: Vec<u64> = ids.into_iter().collect();
    assert_eq!(store.vectors(&all).expect("vectors").len(), total);

    // Node C, with an empty data directory, lists and searches it.
    let status = run_ok(node(c.path(), url).args(["index", "--status", "--json"]));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let listed = status
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name.as_str()))
        .unwrap_or_else(|| panic!("listed on a fresh node: {status}"));
    assert_eq!(listed["files"], 150, "{listed}");
    assert_eq!(listed["vectors_complete"], true, "{listed}");
    let hits = run_ok(node(c.path(), url).args([
        "search",
        "compute_42_3",
        "--mode",
        "keyword",
        "--hits",
        "--collection",
        &name,
    ]));
    assert!(stdout(&hits).contains("module_42.py"), "{}", stdout(&hits));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_api_on_a_fresh_node_lists_and_searches_what_another_indexed() {
    let Some(qdrant) = TestQdrant::get("server_api_on_a_fresh_node_lists_and_searches") else {
        return;
    };
    let backend = [
        ("vector.backend", "server"),
        ("vector.url", qdrant.url()),
        ("search.mode", "keyword"),
    ];
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let node_b = state(server_config(b.path(), None, &backend), false).await;
    let name = format!("api-{}", std::process::id());

    // Node A indexes while node B serves.
    let config_a = server_config(a.path(), None, &backend);
    let (root, indexed) = (repo.path().to_path_buf(), name.clone());
    tokio::task::spawn_blocking(move || index_keywords(&config_a, &root, &indexed))
        .await
        .expect("index on A");

    let listed = call(&node_b, get("/v1/collections")).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let body = listed.json();
    let entry = body["collections"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name.as_str()))
        .unwrap_or_else(|| panic!("listed on B: {body}"));
    assert_eq!(entry["files"], 2, "{entry}");

    // B's engine picks the new collection up within its check interval.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let found = call(
        &node_b,
        post_json(
            "/v1/search",
            &serde_json::json!({"query": "job queue", "collections": [name], "limit": 3}),
        ),
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.text);
    let hits = found.json();
    assert_eq!(hits["hits"][0]["path"], "lib/queue.py", "{hits}");
    assert_eq!(hits["hits"][0]["collection"], name.as_str(), "{hits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_readiness_and_metrics_report_qdrant() {
    let Some(mut qdrant) = TestQdrant::get("server_readiness_and_metrics_report_qdrant") else {
        return;
    };
    let backend = [
        ("vector.backend", "server"),
        ("vector.url", qdrant.url()),
        ("vector.connect_timeout_ms", "500"),
        ("vector.request_timeout_ms", "2000"),
        ("search.mode", "keyword"),
    ];
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    let data = tempfile::tempdir().expect("tempdir");
    let config = server_config(data.path(), None, &backend);
    let (root, name) = (
        repo.path().to_path_buf(),
        format!("ready-{}", std::process::id()),
    );
    tokio::task::spawn_blocking(move || index_keywords(&config, &root, &name))
        .await
        .expect("index");
    let node = state(server_config(data.path(), None, &backend), false).await;

    let ready = call(&node, get("/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json()["checks"]["qdrant"], "ok", "{}", ready.text);
    let metrics = call(&node, get("/metrics")).await;
    assert_eq!(metrics.status, 200);
    let requests = metrics
        .text
        .lines()
        .find_map(|line| line.strip_prefix("aiex_qdrant_requests_total "))
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no request count: {}", metrics.text));
    assert!(requests > 0.0, "{}", metrics.text);
    for series in [
        "aiex_qdrant_request_duration_seconds_bucket{le=\"+Inf\"}",
        "aiex_qdrant_request_failures_total ",
        "aiex_qdrant_shards{collection=\"aiex_code_all-minilm-l6-v2_384\"}",
        "aiex_qdrant_shards_unavailable{collection=\"aiex_code_all-minilm-l6-v2_384\"} 0",
    ] {
        assert!(
            metrics.text.contains(series),
            "{series} in {}",
            metrics.text
        );
    }

    // The server goes away: once the last check's answer is stale, the node is not ready.
    let TestQdrant::Started(server) = &mut qdrant else {
        return;
    };
    server.kill();
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let down = call(&node, get("/readyz")).await;
    assert_eq!(down.status, 503, "{}", down.text);
    assert_eq!(down.json()["checks"]["qdrant"], "failing", "{}", down.text);
    let metrics = call(&node, get("/metrics")).await;
    let failures = metrics
        .text
        .lines()
        .find_map(|line| line.strip_prefix("aiex_qdrant_request_failures_total "))
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(failures > 0.0, "{}", metrics.text);
}

/// Polls job `id` on `node` until it ends (at most `limit`); returns its record.
async fn job_ended(
    node: &aiex_api::server::AppState,
    id: &str,
    limit: Duration,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let job = call(node, get(&format!("/v1/index/jobs/{id}"))).await;
        let record = job.json();
        if ["succeeded", "failed", "cancelled"].contains(&record["state"].as_str().unwrap_or("")) {
            return record;
        }
        assert!(started.elapsed() < limit, "job {id} did not end: {record}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_batch_submitted_to_one_node_is_worked_by_both() {
    let Some(qdrant) = TestQdrant::get("server_batch_submitted_to_one_node_is_worked_by_both")
    else {
        return;
    };
    let roots = tempfile::tempdir().expect("tempdir");
    let root = roots.path().canonicalize().expect("canonical");
    let tag = std::process::id();
    let names: Vec<String> = (0..4).map(|i| format!("batch-{tag}-{i}")).collect();
    for name in &names {
        std::fs::create_dir_all(root.join(name)).expect("mkdir");
        synthetic_repo(&root.join(name), 24);
    }
    let backend = [
        ("vector.backend", "server"),
        ("vector.url", qdrant.url()),
        ("vector.lease_secs", "5"),
        ("server.job_concurrency", "1"),
    ];
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let node_a = state(server_config(a.path(), Some(&root), &backend), true).await;
    let node_b = state(server_config(b.path(), Some(&root), &backend), true).await;

    let items: Vec<serde_json::Value> = names
        .iter()
        .map(|name| serde_json::json!({"path": name, "name": name}))
        .collect();
    let created = call(
        &node_a,
        post_json("/v1/index/jobs", &serde_json::json!({ "items": items })),
    )
    .await;
    assert_eq!(created.status, 202, "{}", created.text);
    let id = created.json()["id"].as_str().expect("id").to_string();

    let done = job_ended(&node_a, &id, Duration::from_secs(240)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let mut nodes = HashSet::new();
    for item in done["items"].as_array().expect("items") {
        assert_eq!(item["state"], "succeeded", "{item}");
        // Each directory indexed exactly once, by one node.
        assert_eq!(item["runs"], 1, "{item}");
        assert_eq!(item["summary"]["changed"], 24, "{item}");
        nodes.insert(item["node"].as_str().expect("node").to_string());
    }
    assert_eq!(nodes.len(), 2, "both nodes worked the batch: {done}");

    // The other node shows the same job, ended, with its events.
    let seen = job_ended(&node_b, &id, Duration::from_secs(10)).await;
    assert_eq!(seen["state"], "succeeded", "{seen}");
    assert_eq!(seen["items"], done["items"]);
    let events = call(&node_b, get(&format!("/v1/index/jobs/{id}/events?after=0"))).await;
    let finished = events.text.matches("event: item_finished").count();
    assert_eq!(finished, 4, "{}", events.text);
    assert!(events.text.contains("event: done"), "{}", events.text);

    // Every collection is searchable from either node.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for node in [&node_a, &node_b] {
        let found = call(
            node,
            post_json(
                "/v1/search",
                &serde_json::json!({"query": "compute_7_2", "collections": [names[3]], "mode": "keyword"}),
            ),
        )
        .await;
        assert_eq!(found.status, 200, "{}", found.text);
        assert_eq!(
            found.json()["hits"][0]["path"],
            "module_7.py",
            "{}",
            found.text
        );
    }

    // Retention: once the job ended longer ago than `server.job_retention_hours`, a node drops
    // it from the cluster (record, directory entries, claims) and from every list.
    let meta = MetaStore::connect(&server_config(a.path(), None, &backend)).expect("meta");
    let shared = meta
        .jobs()
        .expect("jobs")
        .into_iter()
        .find(|job| job.id == id)
        .expect("the job is in the cluster");
    assert!(shared.ended_at.is_some(), "the end is recorded");
    // The job's record rewritten (which clears its end), then ended long ago.
    meta.put_job(&id, &shared.data, false).expect("rewrite");
    meta.end_job(&id, 1).expect("age the job");
    meta.end_job(&id, 2).expect("a later end is not recorded");
    let aged = meta.jobs().expect("jobs");
    let aged = aged.iter().find(|job| job.id == id).expect("listed");
    assert_eq!(aged.ended_at, Some(1));
    let mut keep_one_hour = backend.to_vec();
    keep_one_hour.push(("server.job_retention_hours", "1"));
    let c = tempfile::tempdir().expect("c");
    let node_c = state(server_config(c.path(), Some(&root), &keep_one_hour), false).await;
    let started = Instant::now();
    while meta.jobs().expect("jobs").iter().any(|job| job.id == id) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the job was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(meta.job_items(&id).expect("items").is_empty());
    let gone = call(&node_c, get(&format!("/v1/index/jobs/{id}"))).await;
    assert_eq!(gone.code(), "job_not_found", "{}", gone.text);
}

/// `aiex-research serve` as one node on the Qdrant at `url` (jobs confined to `root`, one at a
/// time, 5 s claims); returns the process and its base URL. Its stderr is drained in the
/// background.
fn serve_node(data: &Path, url: &str, root: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = node(data, url)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env(
            "AIEX__SERVER__ALLOWED_ROOTS",
            format!("[\"{}\"]", root.display()),
        )
        .env("AIEX__SERVER__JOB_CONCURRENCY", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let (addr, mut stderr, _) = crate::listening(&mut child);
    std::thread::spawn(move || {
        let mut line = String::new();
        while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
    });
    (child, format!("http://{addr}"))
}

async fn job_of(client: &reqwest::Client, base: &str, id: &str) -> serde_json::Value {
    client
        .get(format!("{base}/v1/index/jobs/{id}"))
        .send()
        .await
        .expect("get job")
        .json()
        .await
        .expect("job json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_batch_node_killed_mid_directory_the_other_finishes_it() {
    let Some(qdrant) = TestQdrant::get("server_batch_node_killed_mid_directory") else {
        return;
    };
    let roots = tempfile::tempdir().expect("tempdir");
    let root = roots.path().canonicalize().expect("canonical");
    let tag = std::process::id();
    let names: Vec<String> = (0..4).map(|i| format!("killed-batch-{tag}-{i}")).collect();
    for name in &names {
        std::fs::create_dir_all(root.join(name)).expect("mkdir");
        synthetic_repo(&root.join(name), 24);
    }
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (mut node_a, url_a) = serve_node(a.path(), qdrant.url(), &root);
    let (mut node_b, url_b) = serve_node(b.path(), qdrant.url(), &root);
    let client = reqwest::Client::new();

    let items: Vec<serde_json::Value> = names
        .iter()
        .map(|name| serde_json::json!({"path": name, "name": name}))
        .collect();
    let created = client
        .post(format!("{url_a}/v1/index/jobs"))
        .json(&serde_json::json!({ "items": items }))
        .send()
        .await
        .expect("submit");
    assert_eq!(created.status(), 202);
    let created: serde_json::Value = created.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_string();

    // As soon as node B sees node A working a directory, A dies.
    let a_marker = format!(":{}:", node_a.id());
    let started = Instant::now();
    let killed = loop {
        let job = job_of(&client, &url_b, &id).await;
        let working = job["items"].as_array().and_then(|items| {
            items.iter().position(|item| {
                item["state"] == "running"
                    && item["node"].as_str().is_some_and(|n| n.contains(&a_marker))
            })
        });
        if let Some(index) = working {
            node_a.kill().expect("kill -9 node A");
            node_a.wait().expect("reap node A");
            break index;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "node A never worked a directory: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // B finishes the batch, the dead node's directory once its claim has expired.
    let started = Instant::now();
    let done = loop {
        let job = job_of(&client, &url_b, &id).await;
        if job["state"] != "queued" && job["state"] != "running" {
            break job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the batch did not end on node B: {job}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    node_b.kill().expect("stop node B");
    node_b.wait().expect("reap node B");
    assert_eq!(done["state"], "succeeded", "{done}");
    let items = done["items"].as_array().expect("items");
    for (index, item) in items.iter().enumerate() {
        assert_eq!(item["state"], "succeeded", "{item}");
        let runs = if index == killed { 2 } else { 1 };
        assert_eq!(item["runs"], runs, "directory {index}: {done}");
    }
    let finisher = items[killed]["node"].as_str().expect("node");
    assert!(!finisher.contains(&a_marker), "{done}");

    // What the dead node left is complete: every function of the directory is found.
    let meta = MetaStore::connect(&aiex_tests::config(
        b.path(),
        &[("vector.backend", "server"), ("vector.url", qdrant.url())],
    ))
    .expect("meta");
    let entry = meta
        .entry(&names[killed])
        .expect("registry")
        .expect("an entry for the directory");
    assert!(!entry.dirty, "the finished run left the collection clean");
    assert_eq!(entry.files, 24);
    assert_eq!(entry.embedded_chunks, entry.chunks, "every chunk embedded");
}
