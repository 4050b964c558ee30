//! `embedding.provider = "llm"`: indexing and vector search with vectors from a remote server,
//! first a local stand-in speaking the exact OpenAI embeddings shape, then a real llama-server.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aiex_config::{Config, SearchMode};
use aiex_indexer::{index_directory, IndexRequest};
use axum::extract::State;
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

use crate::support::{index, paths, search};

const SLUG_PY: &str = "def slugify(title):\n    \"\"\"Turn a title into a lowercase url slug.\"\"\"\n    return \"-\".join(title.lower().split())\n";
const MATRIX_RS: &str = "/// Multiplies two square matrices.\npub fn matrix_multiply(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {\n    let mut out = vec![0.0; n * n];\n    for i in 0..n {\n        for j in 0..n {\n            for k in 0..n {\n                out[i * n + j] += a[i * n + k] * b[k * n + j];\n            }\n        }\n    }\n    out\n}\n";
const NOTES_MD: &str = "# Deployment\n\nCopy the binary to the server and restart the service.\n";

/// Dimension the stand-in answers with (unless told otherwise).
const STANDIN_DIMENSION: usize = 32;

/// What the stand-in serves, and what it saw.
#[derive(Default)]
struct Standin {
    /// Vector length of the next answers.
    dimension: AtomicUsize,
    /// Whether a multi-input answer was already sent out of index order.
    reversed_once: AtomicBool,
    requests: Mutex<Vec<Value>>,
}

/// A bag-of-words vector: each word adds 1 to a bucket chosen by its hash, so texts sharing
/// words are close.
fn bag_of_words(text: &str, dimension: usize) -> Vec<f32> {
    let mut vector = vec![0.0f32; dimension];
    for word in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() > 2)
    {
        let hash = word
            .to_ascii_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let bucket = usize::try_from(hash % dimension as u64).expect("bucket fits");
        vector[bucket] += 1.0;
    }
    vector[0] += 0.01;
    vector
}

async fn embeddings(State(standin): State<Arc<Standin>>, Json(body): Json<Value>) -> Json<Value> {
    standin.requests.lock().expect("lock").push(body.clone());
    let dimension = standin.dimension.load(Ordering::SeqCst);
    let inputs: Vec<String> = body["input"]
        .as_array()
        .expect("input is an array")
        .iter()
        .map(|text| text.as_str().expect("input text").to_owned())
        .collect();
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({"object": "embedding", "index": index,
                   "embedding": bag_of_words(text, dimension)})
        })
        .collect();
    if data.len() > 1 && !standin.reversed_once.swap(true, Ordering::SeqCst) {
        data.reverse();
    }
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    Json(json!({
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

/// Starts the stand-in on its own runtime; returns the runtime (which keeps it serving) and the
/// base URL.
fn start_standin(standin: &Arc<Standin>) -> (tokio::runtime::Runtime, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(Arc::clone(standin));
    runtime.spawn(async move { axum::serve(listener, app).await });
    (runtime, format!("http://{address}"))
}

/// Runs `work` on a blocking thread of `runtime`'s pool.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(work).await
}

fn llm_config(data: &Path, url: &str, model: &str, dimension: usize) -> Config {
    let dimension = dimension.to_string();
    aiex_tests::config(
        data,
        &[
            ("embedding.provider", "llm"),
            ("embedding.dimension", &dimension),
            ("llm.url", url),
            ("llm.model", model),
            ("llm.max_retries", "0"),
        ],
    )
}

#[test]
fn standin_embeddings_index_and_search() {
    let standin = Arc::new(Standin::default());
    standin.dimension.store(STANDIN_DIMENSION, Ordering::SeqCst);
    let (runtime, url) = start_standin(&standin);
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    aiex_tests::write_files(
        repo.path(),
        &[("slug.py", SLUG_PY), ("matrix.rs", MATRIX_RS)],
    );
    let config = llm_config(data.path(), &url, "standin-embed", STANDIN_DIMENSION);

    // Indexing from a tokio blocking thread: the embedder never drives a runtime there.
    let indexed = {
        let config = config.clone();
        let root = repo.path().to_path_buf();
        runtime
            .block_on(run_blocking(move || {
                index_directory(
                    &config,
                    IndexRequest::new(root),
                    &mut |_| {},
                    &AtomicBool::new(false),
                )
            }))
            .expect("join")
            .expect("indexing succeeds")
    };
    assert!(indexed.vectors_complete, "{indexed:?}");
    assert!(indexed.embedded >= 2, "{indexed:?}");
    assert_eq!(indexed.embedded, indexed.chunks);
    assert!(
        standin.reversed_once.load(Ordering::SeqCst),
        "one answer came out of index order"
    );
    {
        let requests = standin.requests.lock().expect("lock");
        assert!(requests
            .iter()
            .all(|r| r["model"] == "standin-embed" && r["input"].is_array()));
    }
    let status = aiex_indexer::IndexDir::new(config.index_dir())
        .status()
        .expect("status");
    assert_eq!(
        status[0].model_id.as_deref(),
        Some("llm:standin-embed"),
        "{status:?}"
    );

    // Vector search (query embedded by the stand-in) finds the right chunk, from a plain thread
    // and from a blocking thread of a runtime.
    let hits = search(&config, "slugify title lowercase slug", SearchMode::Vector);
    assert_eq!(hits[0].path, "slug.py", "{hits:?}");
    let hits = {
        let config = config.clone();
        runtime
            .block_on(run_blocking(move || {
                search(
                    &config,
                    "matrix multiply square matrices",
                    SearchMode::Vector,
                )
            }))
            .expect("join")
    };
    assert_eq!(hits[0].path, "matrix.rs", "{hits:?}");

    // The server's vectors change length: a clear error, and nothing already indexed is lost.
    aiex_tests::write_files(repo.path(), &[("notes.md", NOTES_MD)]);
    standin.dimension.store(24, Ordering::SeqCst);
    let err = index_directory(
        &config,
        IndexRequest::new(repo.path()),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .expect_err("dimension mismatch");
    let message = err.to_string();
    assert!(
        message.contains("llm:standin-embed returns vectors of length 24")
            && message.contains("embedding.dimension is 32"),
        "{message}"
    );
    standin.dimension.store(STANDIN_DIMENSION, Ordering::SeqCst);
    let hits = search(&config, "slugify title lowercase slug", SearchMode::Vector);
    assert_eq!(hits[0].path, "slug.py", "{hits:?}");
    let hits = search(&config, "restart the service", SearchMode::Keyword);
    assert_eq!(hits[0].path, "notes.md", "keyword side committed: {hits:?}");
    let resumed = index(&config, repo.path());
    assert!(resumed.vectors_complete, "{resumed:?}");
    let hits = search(
        &config,
        "deployment binary server restart",
        SearchMode::Vector,
    );
    assert_eq!(hits[0].path, "notes.md", "{hits:?}");
    assert_eq!(paths(&hits).len(), 3, "{hits:?}");

    // Another embedding model in the configuration is a model change, as with ONNX models.
    let other = llm_config(data.path(), &url, "other-embed", STANDIN_DIMENSION);
    let err = index_directory(
        &other,
        IndexRequest::new(repo.path()),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .expect_err("model change");
    assert!(
        matches!(err, aiex_indexer::Error::ModelMismatch { .. }),
        "{err}"
    );
}

/// SmolLM2-135M's hidden size: the length of its mean-pooled embeddings.
const SMOLLM2_DIMENSION: usize = 576;

#[test]
fn real_llama_server_embeddings_index_and_search() {
    let server =
        aiex_tests::LlamaServer::start(&["-c", "2048", "--embeddings", "--pooling", "mean"]);
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    aiex_tests::write_files(
        repo.path(),
        &[
            ("slug.py", SLUG_PY),
            ("matrix.rs", MATRIX_RS),
            ("notes.md", NOTES_MD),
        ],
    );
    let config = llm_config(data.path(), &server.url, "smollm2", SMOLLM2_DIMENSION);
    let summary = index(&config, repo.path());
    assert!(summary.vectors_complete, "{summary:?}");
    assert_eq!(summary.embedded, summary.chunks, "{summary:?}");
    assert!(summary.embedded >= 3, "{summary:?}");

    let hits = search(&config, "multiply two matrices", SearchMode::Vector);
    assert_eq!(hits.len(), 3, "every chunk has a vector: {hits:?}");
    assert!(hits.iter().all(|hit| hit.score.is_finite()), "{hits:?}");
    let hits = search(&config, "multiply two matrices", SearchMode::Hybrid);
    assert_eq!(hits[0].path, "matrix.rs", "{hits:?}");

    // A wrong dimension is caught on the first answer, with the length the server gives.
    let fresh = tempfile::tempdir().expect("tempdir");
    let wrong = llm_config(fresh.path(), &server.url, "smollm2", 384);
    let err = index_directory(
        &wrong,
        IndexRequest::new(repo.path()),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .expect_err("wrong dimension");
    assert!(
        err.to_string()
            .contains("returns vectors of length 576, but embedding.dimension is 384"),
        "{err}"
    );
}
