//! The HTTP API under load from a second process over loopback: `POST /v1/search` requests per
//! second and p50/p99 latency at 1, 16 and 64 concurrent connections, with the result cache and
//! without it; then N event streams held open at once and the server's memory per open stream:
//! a queued job's, then a running research session's (N clients following one session), then N
//! research sessions each streamed to its creator. Research sessions stay running because their
//! web source (a local listener that accepts connections and never answers) does not reply.
//!
//! With a Qdrant binary or server at hand, the same searches through one and then two stateless
//! nodes in server mode on one Qdrant (requests per second and p99 with the load spread).
//!
//! `cargo bench -p aiex-benches --bench http` (uses the index of the retrieval benchmark). The
//! benchmark starts its own executable again as the server process (`AIEX_BENCH_HTTP_SERVE`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiex_benches::{codesearch_dir, ensure_indexed, eval_queries, percentile};

/// Streams held open at once.
const STREAMS: usize = 200;
/// Requests per concurrency level.
const REQUESTS: usize = 1500;

fn main() {
    if std::env::var_os("AIEX_BENCH_HTTP_SERVE").is_some() {
        serve();
        return;
    }
    println!("http benchmark; machine: {}", aiex_benches::machine());
    let corpus = codesearch_dir();
    let data_dir = aiex_benches::cache_dir().join("data-docs");
    ensure_indexed(&data_dir, &corpus.join("corpus-docs"), "codesearch-docs");
    let queries: Vec<String> = eval_queries().into_iter().map(|q| q.query).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    println!("| cache | connections | requests/s | p50 | p99 |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, cache_bytes) in [("off", "0"), ("on", "67108864")] {
        let mut server = Server::start(&data_dir, cache_bytes, true, None);
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(128)
                .build()
                .expect("client");
            // Warm up: the model, the stores, and (cache on) every query's entry.
            run_load(
                &client,
                std::slice::from_ref(&server.base),
                &queries,
                1,
                queries.len(),
            )
            .await;
            for connections in [1usize, 16, 64] {
                let (rate, latencies) = run_load(
                    &client,
                    std::slice::from_ref(&server.base),
                    &queries,
                    connections,
                    REQUESTS,
                )
                .await;
                println!(
                    "| {label} | {connections} | {rate:.0} | {:.2} ms | {:.2} ms |",
                    percentile(&latencies, 50.0),
                    percentile(&latencies, 99.0)
                );
            }
        });
        server.stop();
    }

    if let Some(qdrant) = aiex_tests::qdrant::TestQdrant::get("the HTTP benchmark's two nodes") {
        two_nodes(&runtime, &data_dir, qdrant.url(), &queries);
    }

    // Streams: a server that does not run jobs, over a data directory of its own, holds a queued
    // job's stream open for every client.
    let streams_dir = aiex_benches::cache_dir().join("http-streams-data");
    let _ = std::fs::remove_dir_all(&streams_dir);
    let mut server = Server::start(&streams_dir, "0", false, None);
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let root = aiex_benches::cache_dir().join("http-root");
        std::fs::create_dir_all(root.join("repo")).expect("root");
        let job: serde_json::Value = client
            .post(format!("{}/v1/index/jobs", server.base))
            .json(&serde_json::json!({"items": [{"path": "repo"}], "embed": false}))
            .send()
            .await
            .expect("job")
            .json()
            .await
            .expect("json");
        let id = job["id"].as_str().expect("job id").to_string();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = server.rss_kib();
        let started = Instant::now();
        let mut open = Vec::with_capacity(STREAMS);
        for _ in 0..STREAMS {
            let mut response = client
                .get(format!("{}/v1/index/jobs/{id}/events", server.base))
                .send()
                .await
                .expect("stream");
            // The first event (`queued`) arrives: the stream is live.
            response.chunk().await.expect("first event");
            open.push(response);
        }
        let opened_ms = started.elapsed().as_secs_f64() * 1000.0;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = server.rss_kib();
        let metrics = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let gauge = metrics
            .lines()
            .find(|line| line.starts_with("aiex_open_streams "))
            .unwrap_or("aiex_open_streams ?");
        println!();
        println!(
            "{STREAMS} event streams open at once: opened in {opened_ms:.0} ms; server RSS {:.1} → {:.1} MiB, {:.1} KiB per open stream ({gauge})",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            after.saturating_sub(before) as f64 / STREAMS as f64
        );
        drop(open);
    });
    server.stop();

    research_streams(&runtime);
}

/// A web search provider that never answers: accepts connections and holds them.
fn silent_listener() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in listener.incoming().flatten() {
            held.push(connection);
        }
    });
    format!("http://{addr}")
}

/// RSS growth per stream, and the server's gauges, after `open` streams were opened.
async fn report_streams(
    client: &reqwest::Client,
    server: &Server,
    what: &str,
    before_kib: u64,
    opened_ms: f64,
) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib();
    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let gauge = |name: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(&format!("{name} ")))
            .unwrap_or("?")
            .to_string()
    };
    println!(
        "{STREAMS} {what}: opened in {opened_ms:.0} ms; server RSS {:.1} → {:.1} MiB, {:.1} KiB per stream ({}, {})",
        before_kib as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before_kib) as f64 / STREAMS as f64,
        gauge("aiex_open_streams"),
        gauge("aiex_research_sessions_running"),
    );
}

/// Research streams held open: N followers of one running session, then N sessions.
fn research_streams(runtime: &tokio::runtime::Runtime) {
    let research_dir = aiex_benches::cache_dir().join("http-research-data");
    let _ = std::fs::remove_dir_all(&research_dir);
    let mut server = Server::start(&research_dir, "0", false, Some(&silent_listener()));
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let question =
            serde_json::json!({"question": "How do TOML tables and arrays of tables differ?"});
        let created: serde_json::Value = client
            .post(format!("{}/v1/research", server.base))
            .json(&question)
            .send()
            .await
            .expect("research")
            .json()
            .await
            .expect("json");
        let id = created["id"].as_str().expect("session id").to_string();
        tokio::time::sleep(Duration::from_millis(500)).await;

        let before = server.rss_kib();
        let started = Instant::now();
        let mut open = Vec::with_capacity(STREAMS);
        for _ in 0..STREAMS {
            let mut response = client
                .get(format!("{}/v1/research/{id}/events", server.base))
                .send()
                .await
                .expect("stream");
            // The replay of the stored events arrives: the stream is live.
            response.chunk().await.expect("first event");
            open.push(response);
        }
        let opened_ms = started.elapsed().as_secs_f64() * 1000.0;
        println!();
        report_streams(
            &client,
            &server,
            "research event streams (one running session) open at once",
            before,
            opened_ms,
        )
        .await;
        drop(open);
        tokio::time::sleep(Duration::from_millis(500)).await;

        let before = server.rss_kib();
        let started = Instant::now();
        let mut open = Vec::with_capacity(STREAMS);
        for _ in 0..STREAMS {
            let mut response = client
                .post(format!("{}/v1/research", server.base))
                .header("accept", "text/event-stream")
                .json(&question)
                .send()
                .await
                .expect("research stream");
            assert!(response.status().is_success(), "{}", response.status());
            response.chunk().await.expect("first event");
            open.push(response);
        }
        let opened_ms = started.elapsed().as_secs_f64() * 1000.0;
        report_streams(
            &client,
            &server,
            "research sessions, each streamed to its creator, running at once",
            before,
            opened_ms,
        )
        .await;
        drop(open);
    });
    server.stop();
}

/// `connections` clients sending `total` searches in all; requests per second and latencies (ms).
/// Scale-out: the collection pushed into one Qdrant node, then served by one and by two stateless
/// `serve` processes in server mode (empty data directories, result cache off), the load spread
/// over both: requests per second and p99. Everything shares the machine's cores.
fn two_nodes(
    runtime: &tokio::runtime::Runtime,
    data_dir: &std::path::Path,
    url: &str,
    queries: &[String],
) {
    aiex_indexer::push::push_collection(
        &aiex_tests::config(data_dir, &[("vector.url", url)]),
        "codesearch-docs",
        &mut |_, _| {},
    )
    .expect("push the collection");
    let dirs = [
        tempfile::tempdir().expect("node a"),
        tempfile::tempdir().expect("node b"),
    ];
    let mut nodes: Vec<Server> = dirs
        .iter()
        .map(|dir| Server::start_on(dir.path(), "0", false, None, Some(url)))
        .collect();
    let bases: Vec<String> = nodes.iter().map(|node| node.base.clone()).collect();
    println!();
    println!("Qdrant server mode, hybrid, cache off ({url}):");
    println!("| Aiex nodes | connections | requests/s | p50 | p99 |");
    println!("| --- | --- | --- | --- | --- |");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .build()
            .expect("client");
        for base in &bases {
            run_load(
                &client,
                std::slice::from_ref(base),
                queries,
                1,
                queries.len(),
            )
            .await;
        }
        for (count, connections) in [(1usize, 16usize), (1, 64), (2, 16), (2, 64)] {
            let (rate, latencies) =
                run_load(&client, &bases[..count], queries, connections, REQUESTS).await;
            println!(
                "| {count} | {connections} | {rate:.0} | {:.2} ms | {:.2} ms |",
                percentile(&latencies, 50.0),
                percentile(&latencies, 99.0)
            );
        }
    });
    for node in &mut nodes {
        node.stop();
    }
}

/// `total` searches over `connections` concurrent connections, spread over the servers at
/// `bases` (connection `i` talks to server `i mod n`): requests per second and latencies.
async fn run_load(
    client: &reqwest::Client,
    bases: &[String],
    queries: &[String],
    connections: usize,
    total: usize,
) -> (f64, Vec<f64>) {
    let queries = Arc::new(queries.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let client = client.clone();
        let url = format!("{}/v1/search", bases[worker % bases.len()]);
        let queries = Arc::clone(&queries);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker;
            while n < total {
                let query = &queries[n % queries.len()];
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .json(&serde_json::json!({"query": query, "limit": 10}))
                    .send()
                    .await
                    .expect("search");
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.expect("body");
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                n += connections;
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.expect("worker"));
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    (rate, latencies)
}

/// The server process.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// A server over `data_dir`; `serper` is the base URL of its web search provider.
    fn start(
        data_dir: &std::path::Path,
        cache_bytes: &str,
        run_jobs: bool,
        serper: Option<&str>,
    ) -> Server {
        Self::start_on(data_dir, cache_bytes, run_jobs, serper, None)
    }

    /// A server over `data_dir`, in server mode on the Qdrant at `qdrant` when given.
    fn start_on(
        data_dir: &std::path::Path,
        cache_bytes: &str,
        run_jobs: bool,
        serper: Option<&str>,
        qdrant: Option<&str>,
    ) -> Server {
        let mut child = Command::new(std::env::current_exe().expect("this executable"))
            .env("AIEX_BENCH_HTTP_SERVE", "1")
            .env("AIEX_BENCH_QDRANT_URL", qdrant.unwrap_or(""))
            .env("AIEX_BENCH_SERPER_URL", serper.unwrap_or(""))
            .env("AIEX_BENCH_DATA_DIR", data_dir)
            .env("AIEX_BENCH_CACHE_BYTES", cache_bytes)
            .env("AIEX_BENCH_RUN_JOBS", if run_jobs { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server address");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .expect("`listening ADDR`")
            .to_string();
        Server {
            child,
            base: format!("http://{addr}"),
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn stop(&mut self) {
        // Closing stdin asks the server to shut down.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Server mode: serves until stdin closes.
fn serve() {
    let data_dir =
        std::path::PathBuf::from(std::env::var_os("AIEX_BENCH_DATA_DIR").expect("data dir"));
    let cache_bytes = std::env::var("AIEX_BENCH_CACHE_BYTES").unwrap_or_else(|_| "0".into());
    let run_jobs = std::env::var("AIEX_BENCH_RUN_JOBS").as_deref() != Ok("0");
    let root = aiex_benches::cache_dir().join("http-root");
    std::fs::create_dir_all(&root).expect("root");
    let roots = format!("[\"{}\"]", root.display());
    let serper = std::env::var("AIEX_BENCH_SERPER_URL").unwrap_or_default();
    let mut overrides = vec![
        ("search.cache_bytes", cache_bytes.as_str()),
        ("server.requests_per_minute", "0"),
        ("server.allowed_roots", roots.as_str()),
    ];
    let qdrant = std::env::var("AIEX_BENCH_QDRANT_URL").unwrap_or_default();
    if !qdrant.is_empty() {
        overrides.extend([
            ("vector.backend", "server"),
            ("vector.url", qdrant.as_str()),
        ]);
    }
    if !serper.is_empty() {
        // Searches wait for an answer that never comes: sessions stay running.
        overrides.extend([
            ("web.serper_api_key", "bench"),
            ("web.serper_url", serper.as_str()),
            ("web.timeout_ms", "600000"),
            ("web.max_retries", "0"),
            ("web.requests_per_minute", "0"),
            ("search.web_deadline_ms", "600000"),
            ("research.search_concurrency", "1"),
        ]);
    }
    let config = aiex_tests::config(&data_dir, &overrides);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let state = aiex_api::server::AppState::new(
            config,
            aiex_api::server::ServerOptions {
                run_jobs,
                ..Default::default()
            },
        )
        .await
        .expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "listening {addr}").expect("stdout");
            stdout.flush().expect("flush");
        }
        let stdin_closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = String::new();
                while std::io::stdin()
                    .read_line(&mut sink)
                    .map(|n| n > 0)
                    .unwrap_or(false)
                {}
            })
            .await;
        };
        let router = aiex_api::server::app(state.clone());
        aiex_api::server::serve(
            state,
            router,
            listener,
            stdin_closed,
            Duration::from_secs(10),
        )
        .await
        .expect("serve");
    });
}
