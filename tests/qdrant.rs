//! A real Qdrant server for the tests of `vector.backend = "server"`: started from the binary on
//! free loopback ports in a temporary directory (telemetry disabled), killed on drop; or one started
//! elsewhere, named by `QDRANT_URL` (its gRPC URL).
//!
//! The binary: `$AIEX_QDRANT_BIN`, else the first `shared/qdrant/qdrant` found walking up from the
//! repository root (`../shared/qdrant/qdrant` next to a checkout).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Qdrant binary is, if anywhere.
pub fn qdrant_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AIEX_QDRANT_BIN") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.ancestors()
        .map(|dir| dir.join("shared/qdrant/qdrant"))
        .find(|path| path.is_file())
}

/// `N` distinct free loopback ports (all held open while picking, so none repeats).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    std::array::from_fn(|i| {
        listeners[i]
            .local_addr()
            .expect("a bound loopback port")
            .port()
    })
}

/// `GET path` on loopback `port`: the status code, or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string());
    Some((status, body))
}

/// One Qdrant node started by a test; killed (and its storage removed) on drop.
pub struct QdrantServer {
    child: Child,
    /// gRPC URL for `vector.url`, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    pub http_port: u16,
    pub grpc_port: u16,
    /// Peer-to-peer port when the node runs in cluster mode.
    pub p2p_port: Option<u16>,
    dir: tempfile::TempDir,
    binary: PathBuf,
    options: NodeOptions,
}

/// How to start one node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Require this API key (`QDRANT__SERVICE__API_KEY`).
    pub api_key: Option<String>,
    /// Run in cluster mode; `bootstrap` is the peer URI of a node already in the cluster.
    pub cluster: bool,
    pub bootstrap: Option<String>,
}

impl QdrantServer {
    /// Starts a single node, or returns None when there is no binary.
    pub fn start() -> Option<QdrantServer> {
        Self::start_with(&NodeOptions::default())
    }

    /// Starts a node requiring `api_key`.
    pub fn start_with_api_key(api_key: &str) -> Option<QdrantServer> {
        Self::start_with(&NodeOptions {
            api_key: Some(api_key.to_string()),
            ..NodeOptions::default()
        })
    }

    /// Starts a node as `options` say and waits until `/readyz` answers 200; None without a
    /// binary. Panics when the node does not become ready.
    pub fn start_with(options: &NodeOptions) -> Option<QdrantServer> {
        let binary = qdrant_binary()?;
        // A port picked as free can be taken before the node binds it: try a few times.
        let mut last_log = String::new();
        for attempt in 1..=3 {
            let dir = tempfile::tempdir().expect("temporary directory");
            let [http_port, grpc_port, p2p] = free_ports::<3>();
            let p2p_port = options.cluster.then_some(p2p);
            let node = QdrantServer::spawn(&binary, dir, options, http_port, grpc_port, p2p_port);
            match node.wait_ready(Duration::from_secs(60)) {
                Ok(node) => return Some(node),
                Err(log) => {
                    eprintln!("qdrant did not start (attempt {attempt})");
                    last_log = log;
                }
            }
        }
        panic!("qdrant did not become ready:\n{last_log}");
    }

    fn spawn(
        binary: &Path,
        dir: tempfile::TempDir,
        options: &NodeOptions,
        http_port: u16,
        grpc_port: u16,
        p2p_port: Option<u16>,
    ) -> QdrantServer {
        let child = Self::launch(binary, dir.path(), options, http_port, grpc_port, p2p_port);
        QdrantServer {
            child,
            url: format!("http://127.0.0.1:{grpc_port}"),
            http_port,
            grpc_port,
            p2p_port,
            dir,
            binary: binary.to_path_buf(),
            options: options.clone(),
        }
    }

    fn launch(
        binary: &Path,
        dir: &Path,
        options: &NodeOptions,
        http_port: u16,
        grpc_port: u16,
        p2p_port: Option<u16>,
    ) -> Child {
        let storage = dir.join("storage");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("qdrant.log"))
            .expect("log file");
        let mut command = Command::new(binary);
        command
            .current_dir(dir)
            .env("QDRANT__TELEMETRY_DISABLED", "true")
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__HTTP_PORT", http_port.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", grpc_port.to_string())
            .env("QDRANT__STORAGE__STORAGE_PATH", &storage)
            .env("QDRANT__STORAGE__SNAPSHOTS_PATH", dir.join("snapshots"))
            .env("QDRANT__LOG_LEVEL", "WARN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        if let Some(key) = &options.api_key {
            command.env("QDRANT__SERVICE__API_KEY", key);
        }
        if let Some(p2p) = p2p_port {
            command
                .env("QDRANT__CLUSTER__ENABLED", "true")
                .env("QDRANT__CLUSTER__P2P__PORT", p2p.to_string())
                .args(["--uri", &format!("http://127.0.0.1:{p2p}")]);
            if let Some(bootstrap) = &options.bootstrap {
                command.args(["--bootstrap", bootstrap]);
            }
        }
        command.spawn().expect("start qdrant")
    }

    /// Starts a killed node again with the same storage and ports (a cluster node rejoins from
    /// its stored state) and waits until it is ready.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::launch(
            &self.binary,
            self.dir.path(),
            &self.options,
            self.http_port,
            self.grpc_port,
            self.p2p_port,
        );
        let started = Instant::now();
        loop {
            let grpc_up = TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.grpc_port).into(),
                Duration::from_secs(1),
            )
            .is_ok();
            if grpc_up && matches!(http_get(self.http_port, "/readyz"), Some((200, _))) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "restarted qdrant did not become ready:\n{}",
                std::fs::read_to_string(self.dir.path().join("qdrant.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for `/readyz` and the gRPC port; on failure kills the node and returns its log.
    fn wait_ready(mut self, timeout: Duration) -> std::result::Result<QdrantServer, String> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            // `/readyz` can answer before the gRPC listener is up: wait for both.
            let grpc_up = TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.grpc_port).into(),
                Duration::from_secs(1),
            )
            .is_ok();
            if grpc_up && matches!(http_get(self.http_port, "/readyz"), Some((200, _))) {
                return Ok(self);
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        Err(std::fs::read_to_string(self.dir.path().join("qdrant.log")).unwrap_or_default())
    }

    /// The peer URI other nodes bootstrap from (cluster mode only).
    pub fn peer_uri(&self) -> Option<String> {
        self.p2p_port.map(|port| format!("http://127.0.0.1:{port}"))
    }

    /// Kills the node at once (`kill -9`).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for QdrantServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of nodes on loopback, the first one bootstrapping the others.
pub struct QdrantCluster {
    pub nodes: Vec<QdrantServer>,
}

impl QdrantCluster {
    /// Starts `size` nodes and waits until every one has joined; None without a binary.
    pub fn start(size: usize) -> Option<QdrantCluster> {
        let first = QdrantServer::start_with(&NodeOptions {
            cluster: true,
            ..NodeOptions::default()
        })?;
        let bootstrap = first.peer_uri();
        let mut nodes = vec![first];
        for _ in 1..size {
            nodes.push(QdrantServer::start_with(&NodeOptions {
                cluster: true,
                bootstrap: bootstrap.clone(),
                ..NodeOptions::default()
            })?);
        }
        let started = Instant::now();
        loop {
            let peers = http_get(nodes[0].http_port, "/cluster")
                .map_or(0, |(_, body)| body.matches("\"uri\"").count());
            if peers >= size {
                return Some(QdrantCluster { nodes });
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the qdrant cluster did not form ({peers} of {size} peers)"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The gRPC URL of the first node.
    pub fn url(&self) -> &str {
        &self.nodes[0].url
    }
}

/// The Qdrant a test talks to: `QDRANT_URL` (a server started elsewhere), else a node started from
/// the binary. Without either, prints one `SKIPPED: no Qdrant server` line naming `test` and
/// returns None: the caller returns early and the test is not a real pass.
pub enum TestQdrant {
    External(String),
    Started(QdrantServer),
}

impl TestQdrant {
    pub fn get(test: &str) -> Option<TestQdrant> {
        if let Some(url) = std::env::var("QDRANT_URL")
            .ok()
            .filter(|url| !url.is_empty())
        {
            return Some(TestQdrant::External(url));
        }
        match QdrantServer::start() {
            Some(server) => Some(TestQdrant::Started(server)),
            None => {
                skipped(test);
                None
            }
        }
    }

    /// The gRPC URL.
    pub fn url(&self) -> &str {
        match self {
            TestQdrant::External(url) => url,
            TestQdrant::Started(server) => &server.url,
        }
    }
}

/// The one line a server test prints when it cannot run.
pub fn skipped(test: &str) {
    crate::skip(
        test,
        "qdrant",
        "no Qdrant server (set QDRANT_URL, or AIEX_QDRANT_BIN to the binary)",
    );
}
