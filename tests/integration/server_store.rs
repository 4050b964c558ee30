//! `vector.backend = "server"` against a real Qdrant server (started from the binary, or
//! `QDRANT_URL`): the `VectorStore` contract, the indexing pipeline (first run, incremental runs,
//! rebuild) with search parity against the embedded store, and faults.
//!
//! Without a server each test prints `SKIPPED: no Qdrant server …` and returns early.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use aiex_config::{Config, SearchMode};
use aiex_indexer::store::server::{ServerStoreOptions, ServerVectorStore};
use aiex_indexer::store::vector::{VectorFilter, VectorPayload, VectorPoint, VectorStore};
use aiex_indexer::{index_directory, IndexDir, IndexRequest, SearchRequest, Searcher};
use aiex_tests::qdrant::{QdrantServer, TestQdrant};

const DIM: usize = 8;

/// Store options for `url` with a small dimension and a collection of its own per test.
fn options(url: &str, kind: &str) -> ServerStoreOptions {
    let mut config = Config::default();
    config.vector.url = Some(url.to_string());
    config.embedding.dimension = DIM;
    config.vector.connect_timeout_ms = 2_000;
    config.vector.request_timeout_ms = 10_000;
    ServerStoreOptions::from_config(&config, kind).expect("options")
}

fn point(tenant: &str, id: u64, vector: [f32; DIM], path: &str, language: &str) -> VectorPoint {
    VectorPoint {
        id,
        vector: vector.to_vec(),
        payload: VectorPayload {
            collection: tenant.to_string(),
            path: path.to_string(),
            language: language.to_string(),
            symbol: Some(format!("symbol_{id}")),
            kind: "function".to_string(),
            start_line: 1,
            end_line: 10,
            hash: format!("hash{id}"),
        },
    }
}

fn unit(i: usize) -> [f32; DIM] {
    let mut v = [0.0; DIM];
    v[i % DIM] = 1.0;
    v
}

fn ids(hits: &[(u64, f32)]) -> Vec<u64> {
    hits.iter().map(|(id, _)| *id).collect()
}

#[test]
fn server_store_contract_and_tenant_isolation() {
    let Some(qdrant) = TestQdrant::get("server_store_contract_and_tenant_isolation") else {
        return;
    };
    // A kind of its own, so a shared server (QDRANT_URL) keeps other tests' points apart.
    let kind = format!("contract{}", std::process::id());
    let alpha = ServerVectorStore::open(options(qdrant.url(), &kind), "alpha").expect("open");
    let beta = ServerVectorStore::open(options(qdrant.url(), &kind), "beta").expect("open");
    assert_eq!(alpha.collection(), beta.collection());
    assert!(alpha.collection().starts_with(&format!("aiex_{kind}_")));
    alpha.clear().expect("clear");
    beta.clear().expect("clear");

    // More points than one upsert batch, with ids beyond i64.
    let big = u64::MAX - 5;
    let mut points: Vec<VectorPoint> = (0..600u64)
        .map(|id| {
            let language = if id % 2 == 0 { "rust" } else { "python" };
            point(
                "alpha",
                id,
                unit(id as usize),
                &format!("src/f{}.rs", id % 7),
                language,
            )
        })
        .collect();
    points.push(point("alpha", big, unit(3), "src/big.rs", "rust"));
    alpha.upsert(points).expect("upsert");
    // beta holds the same chunk ids with other vectors.
    beta.upsert(vec![
        point("beta", 0, unit(5), "lib/a.py", "python"),
        point("beta", 1, unit(6), "lib/b.py", "python"),
    ])
    .expect("upsert");
    alpha.flush().expect("flush");

    assert_eq!(alpha.info().expect("info").points, 601);
    assert_eq!(beta.info().expect("info").points, 2);

    let asked = [0, 1, 2, big, 999_999];
    let existing = alpha.existing(&asked).expect("existing");
    assert_eq!(existing, HashSet::from([0, 1, 2, big]));
    assert_eq!(
        beta.existing(&asked).expect("existing"),
        HashSet::from([0, 1])
    );
    let vectors = alpha.vectors(&[0, big, 999_999]).expect("vectors");
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[&0], unit(0).to_vec());
    assert_eq!(vectors[&big], unit(3).to_vec());
    assert_eq!(beta.vectors(&[0]).expect("vectors")[&0], unit(5).to_vec());

    // Search: nearest first, never another tenant's point.
    let hits = alpha
        .search(&unit(3), &VectorFilter::default(), 10)
        .expect("search");
    assert_eq!(hits.len(), 10);
    assert!((hits[0].1 - 1.0).abs() < 1e-4, "{hits:?}");
    let alpha_ids: HashSet<u64> = (0..600).chain([big]).collect();
    assert!(ids(&hits).iter().all(|id| alpha_ids.contains(id)));
    let hits = beta
        .search(&unit(5), &VectorFilter::default(), 10)
        .expect("search");
    assert_eq!(ids(&hits), [0, 1]);

    // Filters by language and path.
    let rust = alpha
        .search(
            &unit(1),
            &VectorFilter {
                languages: vec!["rust".into()],
                paths: Vec::new(),
            },
            50,
        )
        .expect("search");
    assert_eq!(rust.len(), 50);
    assert!(ids(&rust).iter().all(|id| *id == big || id % 2 == 0));
    let path = alpha
        .search(
            &unit(1),
            &VectorFilter {
                languages: vec!["python".into()],
                paths: vec!["src/f3.rs".into(), "src/big.rs".into()],
            },
            1000,
        )
        .expect("search");
    let expected: HashSet<u64> = (0..600).filter(|id| id % 7 == 3 && id % 2 == 1).collect();
    assert_eq!(ids(&path).into_iter().collect::<HashSet<_>>(), expected);

    // Deletes touch only the tenant's own points; re-upserting replaces, never duplicates.
    alpha.delete(&[0, 1, big, 424_242]).expect("delete");
    assert_eq!(alpha.info().expect("info").points, 598);
    assert_eq!(beta.existing(&[0, 1]).expect("existing").len(), 2);
    alpha
        .upsert(vec![point("alpha", 2, unit(7), "src/f2.rs", "rust")])
        .expect("upsert");
    assert_eq!(alpha.info().expect("info").points, 598);
    assert_eq!(alpha.vectors(&[2]).expect("vectors")[&2], unit(7).to_vec());

    // A wrong dimension is refused before anything is sent.
    let mut wrong = point("alpha", 3, unit(0), "x", "rust");
    wrong.vector.push(0.0);
    assert!(alpha.upsert(vec![wrong]).is_err());

    alpha.clear().expect("clear");
    assert_eq!(alpha.info().expect("info").points, 0);
    assert_eq!(beta.info().expect("info").points, 2);
    beta.clear().expect("clear");
}

const LIB_RS: &str = r#"//! Geometry helpers.

/// A point in the plane.
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    /// The distance between two points.
    pub fn distance(&self, other: &Point) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }
}

/// The area of a polygon by the shoelace formula.
pub fn polygon_area(points: &[Point]) -> f64 {
    let mut sum = 0.0;
    for i in 0..points.len() {
        let j = (i + 1) % points.len();
        sum += points[i].x * points[j].y - points[j].x * points[i].y;
    }
    sum.abs() / 2.0
}
"#;

const TEXT_PY: &str = r#"import re


def slugify(title):
    """Turn a title into a lowercase URL slug with dashes."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "-".join(words)


def word_count(text):
    """Count the words of a text."""
    return len(text.split())


class Tokenizer:
    """Splits text into tokens."""

    def tokens(self, text):
        return re.findall(r"\w+", text)
"#;

const SERVER_GO: &str = r#"package server

import "net/http"

// Health answers the liveness probe with 200 OK.
func Health(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
}

// Retry calls f until it succeeds or attempts run out.
func Retry(attempts int, f func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = f(); err == nil {
			return nil
		}
	}
	return err
}
"#;

const README_MD: &str = "# Fixture\n\nA small repository to index.\n\n## Usage\n\nRun the \
                         server and call the health endpoint.\n";

pub(crate) const QUERIES: [&str; 5] = [
    "distance between two points",
    "turn a title into a url slug",
    "retry a function several times",
    "health check endpoint",
    "count words in text",
];

pub(crate) fn write_repo(root: &Path) {
    aiex_tests::write_files(
        root,
        &[
            ("src/lib.rs", LIB_RS),
            ("py/text.py", TEXT_PY),
            ("go/server.go", SERVER_GO),
            ("README.md", README_MD),
        ],
    );
}

/// Every chunk id the manifest of `name` records.
fn manifest_ids(config: &Config, name: &str) -> Vec<u64> {
    let manifest = IndexDir::new(config.index_dir())
        .manifest(name)
        .expect("manifest");
    manifest
        .files
        .values()
        .flat_map(|file| file.chunks.iter().map(|chunk| chunk.id))
        .collect()
}

/// The server holds exactly the manifest's chunks for `name`: all of them, nothing else.
pub(crate) fn assert_converged(config: &Config, name: &str) {
    let store = aiex_indexer::store::server::open_collection(
        config,
        &IndexDir::new(config.index_dir())
            .collection_paths(name)
            .vectors,
    )
    .expect("open server store");
    let ids = manifest_ids(config, name);
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "chunk ids are unique");
    assert_eq!(
        store.existing(&ids).expect("existing").len(),
        ids.len(),
        "every chunk has its point"
    );
    assert_eq!(
        store.info().expect("info").points,
        ids.len(),
        "no orphan points"
    );
}

/// Top-10 vector hits of every query, as (path, start line, chunk id).
fn vector_results(config: &Config, name: &str) -> Vec<Vec<(String, u32, u64)>> {
    // By name: a shared server (QDRANT_URL) lists other tests' collections too.
    let searcher = Searcher::open(config, &[name.to_string()]).expect("open searcher");
    QUERIES
        .iter()
        .map(|query| {
            searcher
                .search(&SearchRequest::new(*query, SearchMode::Vector, 10))
                .expect("search")
                .hits
                .into_iter()
                .map(|hit| (hit.path, hit.start_line, hit.chunk_id))
                .collect()
        })
        .collect()
}

fn assert_parity(embedded: &Config, server: &Config, name: &str) {
    let expected = vector_results(embedded, name);
    let got = vector_results(server, name);
    assert!(expected.iter().all(|hits| !hits.is_empty()));
    assert_eq!(got, expected, "server top-10 equals embedded top-10");
}

#[test]
fn server_backend_indexes_incrementally_with_embedded_parity() {
    let Some(qdrant) = TestQdrant::get("server_backend_indexes_incrementally_with_embedded_parity")
    else {
        return;
    };
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path().join("fixture");
    write_repo(&root);
    let embedded_data = tempfile::tempdir().expect("tempdir");
    let server_data = tempfile::tempdir().expect("tempdir");
    let embedded = aiex_tests::config(embedded_data.path(), &[]);
    // The collection name is the tenant: unique per run on a shared server.
    let name = format!("fixture-{}", std::process::id());
    let server = aiex_tests::config(
        server_data.path(),
        &[("vector.backend", "server"), ("vector.url", qdrant.url())],
    );
    let run = |config: &Config| {
        let cancel = AtomicBool::new(false);
        let mut request = IndexRequest::new(&root);
        request.name = Some(name.clone());
        index_directory(config, request, &mut |_| {}, &cancel).expect("indexing succeeds")
    };

    // First run.
    let first = run(&server);
    run(&embedded);
    assert!(first.vectors_complete);
    assert!(first.embedded > 0);
    assert_converged(&server, &name);
    assert_parity(&embedded, &server, &name);

    // No change: nothing embedded, nothing written.
    let again = run(&server);
    assert_eq!((again.changed, again.embedded), (0, 0));
    assert_converged(&server, &name);

    // Modify one file, delete one, rename one.
    std::fs::write(
        root.join("src/lib.rs"),
        LIB_RS.replace("shoelace formula", "shoelace (surveyor's) formula"),
    )
    .expect("modify");
    std::fs::remove_file(root.join("README.md")).expect("delete");
    std::fs::create_dir_all(root.join("net")).expect("mkdir");
    std::fs::rename(root.join("go/server.go"), root.join("net/health.go")).expect("rename");
    let changed = run(&server);
    run(&embedded);
    assert_eq!(changed.deleted, 2, "{changed:?}");
    assert!(changed.vectors_complete);
    assert_converged(&server, &name);
    assert_parity(&embedded, &server, &name);
    let paths: HashSet<String> = vector_results(&server, &name)
        .into_iter()
        .flatten()
        .map(|(path, _, _)| path)
        .collect();
    assert!(!paths.contains("README.md") && !paths.contains("go/server.go"));
    assert!(paths.contains("net/health.go"), "{paths:?}");

    // A rebuild starts the tenant from scratch and converges to the same points.
    let cancel = AtomicBool::new(false);
    let mut request = IndexRequest::new(&root);
    request.name = Some(name.clone());
    request.rebuild = true;
    index_directory(&server, request, &mut |_| {}, &cancel).expect("rebuild");
    assert_converged(&server, &name);
    assert_parity(&embedded, &server, &name);

    // The collection removed locally and indexed again: no orphan from before.
    IndexDir::new(server.index_dir())
        .remove(&name)
        .expect("remove");
    std::fs::remove_file(root.join("py/text.py")).expect("delete");
    run(&server);
    assert_converged(&server, &name);

    let store = aiex_indexer::store::server::open_collection(
        &server,
        &IndexDir::new(server.index_dir())
            .collection_paths(&name)
            .vectors,
    )
    .expect("open");
    store.clear().expect("clear");
}

#[test]
fn server_faults_are_clear_and_fast() {
    // Unreachable: nothing listens on port 9 of loopback.
    let started = Instant::now();
    let err = ServerVectorStore::open(options("http://127.0.0.1:9", "code"), "t")
        .expect_err("unreachable")
        .to_string();
    assert!(
        err.contains("Qdrant unreachable at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");

    // A server that requires a key: no key, then a wrong one.
    let Some(server) = QdrantServer::start_with_api_key("right-key") else {
        aiex_tests::qdrant::skipped("server_faults_are_clear_and_fast (API key)");
        return;
    };
    for key in [None, Some("wrong-key")] {
        let mut options = options(&server.url, "code");
        options.api_key = key.map(str::to_string);
        let started = Instant::now();
        let err = ServerVectorStore::open(options, "t")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("refused the API key"), "{err}");
        assert!(err.contains(&server.url), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3), "{err}");
    }
    let mut options = options(&server.url, "code");
    options.api_key = Some("right-key".to_string());
    let store = ServerVectorStore::open(options, "t").expect("the right key is accepted");
    assert_eq!(store.info().expect("info").points, 0);

    // The pipeline reports the unreachable URL the same way.
    let repo = tempfile::tempdir().expect("tempdir");
    write_repo(repo.path());
    let data = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(
        data.path(),
        &[
            ("vector.backend", "server"),
            ("vector.url", "http://127.0.0.1:9"),
        ],
    );
    let cancel = AtomicBool::new(false);
    let err = index_directory(
        &config,
        IndexRequest::new(repo.path()),
        &mut |_| {},
        &cancel,
    )
    .expect_err("unreachable")
    .to_string();
    assert!(
        err.contains("Qdrant unreachable at http://127.0.0.1:9"),
        "{err}"
    );
}
