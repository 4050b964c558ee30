//! Shared helpers for the workspace's end-to-end tests and benchmarks: configurations that point at
//! the model installed by `scripts/setup` and keep every index in a temporary directory.

use std::path::{Path, PathBuf};

pub mod qdrant;

/// A test that cannot run here (a server, a tool or a client is missing) says so in one
/// `SKIPPED:` line and returns, or fails when the run requires what it lacks:
/// `AIEX_TEST_REQUIRE` names the requirements that must be met (comma-separated: `qdrant`,
/// `ripgrep`, `clients`, `browser`; or `all`). `scripts/test` sets it to everything it installed,
/// so a test it prepared for never passes by skipping.
pub fn skip(test: &str, requirement: &str, reason: &str) {
    let required = std::env::var("AIEX_TEST_REQUIRE").unwrap_or_default();
    let demanded = required
        .split(',')
        .map(str::trim)
        .any(|name| name == requirement || name == "all");
    assert!(
        !demanded,
        "{test} cannot run: {reason} (AIEX_TEST_REQUIRE={required} requires {requirement})"
    );
    println!("SKIPPED: {test}: {reason}");
}

/// The data directory where `scripts/setup` installed the runtime and the model.
pub fn model_data_dir() -> PathBuf {
    if let Some(dir) =
        std::env::var_os("AIEX_TEST_MODEL_DATA_DIR").or_else(|| std::env::var_os("AIEX_DATA_DIR"))
    {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("aiex")
}

/// Overrides that point the embedding settings at the installed model.
pub fn model_overrides() -> Vec<(String, String)> {
    let data = model_data_dir();
    let model_dir = data.join("models/all-MiniLM-L6-v2");
    let runtime = data.join("runtime/libonnxruntime.so.1.31.1");
    assert!(
        model_dir.join("model.onnx").is_file() && runtime.is_file(),
        "the embedding model is not installed under {}: run scripts/setup",
        data.display()
    );
    vec![
        (
            "embedding.model_dir".into(),
            model_dir.display().to_string(),
        ),
        (
            "embedding.runtime_path".into(),
            runtime.display().to_string(),
        ),
    ]
}

/// A configuration with its data directory in `data_dir`, ignoring the environment and user files.
pub fn config(data_dir: &Path, extra: &[(&str, &str)]) -> aiex_config::Config {
    let mut overrides = model_overrides();
    overrides.push(("data_dir".into(), data_dir.display().to_string()));
    overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    aiex_config::Config::load(&aiex_config::LoadOptions {
        file: None,
        env: Some(Vec::new()),
        overrides,
    })
    .expect("test configuration is valid")
}

/// Writes `files` (path, content) under `root`, creating directories.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(&path, content).expect("write file");
    }
}

/// A real llama-server with the SmolLM2 model (`AIEX_TEST_LLAMA_SERVER`, `AIEX_TEST_LLAMA_MODEL`,
/// both printed by `scripts/setup-llm` and set by `scripts/test`), on a free loopback port, served
/// as `smollm2` with one thread; killed on drop.
pub struct LlamaServer {
    child: std::process::Child,
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
}

impl LlamaServer {
    /// Starts the server with `extra` arguments (e.g. `-c 4096`, or `--embeddings --pooling mean`)
    /// and waits until `/health` answers 200. Blocking: call it from a blocking context in async
    /// tests.
    pub fn start(extra: &[&str]) -> LlamaServer {
        let required = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run scripts/setup-llm (it prints the llama-server binary and the SmolLM2 model paths), then set AIEX_TEST_LLAMA_SERVER and AIEX_TEST_LLAMA_MODEL")
            })
        };
        let binary = required("AIEX_TEST_LLAMA_SERVER");
        let model = required("AIEX_TEST_LLAMA_MODEL");
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port");
        let child = std::process::Command::new(&binary)
            .args(["-m", &model, "--alias", "smollm2", "--host", "127.0.0.1"])
            .args(["--port", &address.port().to_string(), "-t", "1"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {binary}: {err} (run scripts/setup-llm)"));
        let server = LlamaServer {
            child,
            url: format!("http://{address}"),
        };
        for _ in 0..300 {
            if healthy(address) {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("llama-server did not become healthy within 30 s");
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /health` at `address` answers 200.
fn healthy(address: std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_millis(200);
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}
