//! The command line beside a running `serve` of the same data directory: `server.json`, work
//! sent to the server with its local owner token, the same output as the local path, stale files
//! ignored, `--no-server`, and vectors finished by another process picked up by the server.

#![cfg(unix)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{event_types, run_ok, stdout};

/// The binary over `data`, with local search deadlines that a cold model load on a busy machine
/// does not overrun (the comparisons below need every source to answer).
fn aiex(data: &Path) -> std::process::Command {
    let mut command = crate::aiex(data);
    command.envs(PATIENT);
    command
}

const PATIENT: [(&str, &str); 2] = [
    ("AIEX__SEARCH__LOCAL_DEADLINE_MS", "30000"),
    ("AIEX__SEARCH__BUDGET_MS", "40000"),
];

fn small_repo(root: &Path) {
    aiex_tests::write_files(
        root,
        &[
            (
                "src/table.rs",
                "/// Parses a TOML table header such as `[server]`.\npub fn parse_toml_table(line: &str) -> Option<&str> {\n    line.strip_prefix('[')?.strip_suffix(']')\n}\n",
            ),
            ("lib/queue.py", "class JobQueue:\n    \"\"\"A first-in first-out queue of background jobs.\"\"\"\n\n    def push(self, job):\n        self.jobs.append(job)\n"),
        ],
    );
}

/// A `serve` over a data directory, its stderr drained on a thread (so that its log never
/// blocks it).
pub(crate) struct Server {
    child: Child,
    addr: String,
    stderr: Option<JoinHandle<String>>,
}

impl Server {
    pub(crate) fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    fn start_with(data: &Path, envs: &[(&str, &str)]) -> Server {
        let mut child = aiex(data)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .envs(envs.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn serve");
        let (addr, mut rest, mut seen) = crate::listening(&mut child);
        let stderr = std::thread::spawn(move || {
            let _ = rest.read_to_string(&mut seen);
            seen
        });
        Server {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    /// SIGTERM, then the exit and everything it wrote on stderr.
    pub(crate) fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(killed.success());
        let status = self.child.wait().expect("wait for serve");
        let stderr = self
            .stderr
            .take()
            .map(|handle| handle.join().expect("stderr thread"))
            .unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET path` on the server with a bearer token, the status line and the body.
fn get(addr: &str, path: &str, token: Option<&str>) -> (String, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let authorization = token
        .map(|token| format!("authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\n{authorization}connection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let status = answer.lines().next().unwrap_or_default().to_string();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn server_file(data: &Path) -> serde_json::Value {
    let bytes = std::fs::read(data.join("server.json")).expect("server.json");
    serde_json::from_slice(&bytes).expect("server.json is JSON")
}

pub(crate) fn sent_to_server(stderr: &str) -> bool {
    stderr.contains("sending the work to the server at")
}

#[test]
fn index_and_search_go_through_a_running_server() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    let server = Server::start(data.path());

    // The server file: private, this server's process, a loopback URL and a token.
    let meta = std::fs::metadata(data.path().join("server.json")).expect("server.json");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let file = server_file(data.path());
    assert_eq!(file["pid"], server.child.id());
    assert_eq!(file["url"], format!("http://{}", server.addr));
    assert_eq!(file["jobs"], true);
    let token = file["token"].as_str().expect("token").to_string();
    assert!(token.len() >= 32);

    // Index through the server: the job's summary as a local run prints it.
    let indexed = run_ok(
        aiex(data.path())
            .args(["-v", "index"])
            .arg(repo.path())
            .args(["--name", "demo"]),
    );
    let stderr = String::from_utf8_lossy(&indexed.stderr);
    assert!(sent_to_server(&stderr), "{stderr}");
    let text = stdout(&indexed);
    assert!(text.starts_with("indexed `demo` ("), "{text}");
    assert!(text.contains("2 changed (2 added, 0 modified)"), "{text}");
    assert!(text.contains("vectors: complete"), "{text}");
    let again = run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "demo", "--json"]),
    );
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json summary");
    assert_eq!(summary["collection"], "demo");
    assert_eq!(summary["unchanged"], 2);
    assert_eq!(summary["vectors_complete"], true);

    // A documentation set too (`docs add`).
    let docs = tempfile::tempdir().expect("tempdir");
    aiex_tests::write_files(
        docs.path(),
        &[(
            "guide.md",
            "# Queues\n\nA job queue runs background jobs first in, first out.\n",
        )],
    );
    let added = run_ok(
        aiex(data.path())
            .args(["-v", "docs", "add", "guide"])
            .arg(docs.path()),
    );
    assert!(sent_to_server(&String::from_utf8_lossy(&added.stderr)));
    assert!(
        stdout(&added).starts_with("indexed `guide` ("),
        "{}",
        stdout(&added)
    );

    // The web, not configured here, is left out with the local path's note.
    let without_web = run_ok(aiex(data.path()).args([
        "search",
        "job queue",
        "--sources",
        "code,web",
        "--mode",
        "keyword",
    ]));
    let note = String::from_utf8_lossy(&without_web.stderr);
    assert!(
        note.contains("note: web search is not configured"),
        "{note}"
    );
    assert!(!note.contains("warning"), "{note}");

    // Its vectors are searchable through the server.
    let vector = run_ok(aiex(data.path()).args([
        "-v",
        "search",
        "fifo of background work",
        "--mode",
        "vector",
        "--hits",
        "--limit",
        "1",
    ]));
    assert!(sent_to_server(&String::from_utf8_lossy(&vector.stderr)));
    let hit: serde_json::Value = serde_json::from_str(stdout(&vector).trim()).expect("json");
    assert_eq!(hit["path"], "lib/queue.py");
    assert_eq!(hit["collection"], "demo");

    let hybrid_args = ["search", "parse a toml table", "--mode", "hybrid"];
    let remote_text = stdout(&run_ok(aiex(data.path()).args(hybrid_args)));
    assert!(
        remote_text.starts_with(" 1. demo:src/table.rs:"),
        "{remote_text}"
    );
    let remote_hits = stdout(&run_ok(aiex(data.path()).args(hybrid_args).arg("--hits")));
    let events = stdout(&run_ok(aiex(data.path()).args(hybrid_args).arg("--json")));
    let types = event_types(&events);
    assert_eq!(types.first().map(String::as_str), Some("source_started"));
    assert!(types.contains(&"merged".to_string()), "{types:?}");
    assert_eq!(types.last().map(String::as_str), Some("done"));

    // Nothing found: exit 1 and "no results", as locally.
    let nothing = aiex(data.path())
        .args(["search", "zzqqxxnothing", "--mode", "keyword"])
        .output()
        .expect("run");
    assert_eq!(nothing.status.code(), Some(1));
    assert_eq!(stdout(&nothing), "no results\n");
    // An unknown collection: exit 2 with the server's message.
    let unknown = aiex(data.path())
        .args(["search", "table", "--collection", "missing"])
        .output()
        .expect("run");
    assert_eq!(unknown.status.code(), Some(2));
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(message.contains("missing"), "{message}");

    // The token is a credential of the server (keys or not) and never appears in its log.
    let (status, body) = get(&server.addr, "/v1/collections", Some(&token));
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("\"vectors_complete\":true"), "{body}");

    // A flag the API has no equivalent for runs here, saying so at -v.
    let explained =
        run_ok(aiex(data.path()).args(["-v", "search", "table", "--mode", "keyword", "--explain"]));
    let explained_err = String::from_utf8_lossy(&explained.stderr);
    assert!(!sent_to_server(&explained_err), "{explained_err}");
    assert!(
        explained_err.contains("but --explain shows this process's query analysis"),
        "{explained_err}"
    );
    assert!(stdout(&explained).contains("explain:"));

    // --no-server and AIEX_NO_SERVER run here.
    let forced = aiex(data.path())
        .args(["-v", "--no-server", "search", "table", "--mode", "keyword"])
        .output()
        .expect("run");
    let forced_err = String::from_utf8_lossy(&forced.stderr);
    assert!(!sent_to_server(&forced_err), "{forced_err}");
    assert!(
        forced_err.contains("--no-server: running locally"),
        "{forced_err}"
    );
    let by_env = aiex(data.path())
        .args(["-v", "search", "table", "--mode", "keyword"])
        .env("AIEX_NO_SERVER", "1")
        .output()
        .expect("run");
    assert!(!sent_to_server(&String::from_utf8_lossy(&by_env.stderr)));
    assert_eq!(stdout(&forced), stdout(&by_env));

    // A graceful stop removes the file; the local path then prints the same results.
    let (exit, log) = server.stop();
    assert!(exit.success(), "{log}");
    assert!(!log.contains(&token), "the token was logged");
    assert!(!data.path().join("server.json").exists());
    let local = run_ok(aiex(data.path()).arg("-v").args(hybrid_args));
    assert!(!sent_to_server(&String::from_utf8_lossy(&local.stderr)));
    assert_eq!(stdout(&local), remote_text);
    let local_hits = stdout(&run_ok(aiex(data.path()).args(hybrid_args).arg("--hits")));
    assert_eq!(local_hits, remote_hits);
}

#[test]
fn a_stale_server_file_is_ignored_and_removed() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "demo", "--no-embed"]),
    );
    // A process that has ended, and a port nobody listens on.
    let mut gone = std::process::Command::new("true").spawn().expect("spawn");
    let pid = gone.id();
    gone.wait().expect("wait");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("port")
        .port();
    let stale = serde_json::json!({
        "pid": pid,
        "url": format!("http://127.0.0.1:{port}"),
        "token": format!("lo_{}", "0".repeat(64)),
        "version": env!("CARGO_PKG_VERSION"),
        "jobs": true,
    });
    std::fs::write(data.path().join("server.json"), stale.to_string()).expect("write");
    let search = run_ok(aiex(data.path()).args(["-v", "search", "queue", "--mode", "keyword"]));
    let stderr = String::from_utf8_lossy(&search.stderr);
    assert!(!sent_to_server(&stderr), "{stderr}");
    assert!(stderr.contains("is gone"), "{stderr}");
    assert!(stdout(&search).contains("lib/queue.py"));
    assert!(!data.path().join("server.json").exists());

    // A live process whose URL refuses: ignored, the file left alone.
    let alive = serde_json::json!({
        "pid": std::process::id(),
        "url": format!("http://127.0.0.1:{port}"),
        "token": format!("lo_{}", "0".repeat(64)),
        "version": env!("CARGO_PKG_VERSION"),
        "jobs": true,
    });
    std::fs::write(data.path().join("server.json"), alive.to_string()).expect("write");
    let search = run_ok(aiex(data.path()).args(["-v", "search", "queue", "--mode", "keyword"]));
    let stderr = String::from_utf8_lossy(&search.stderr);
    assert!(stderr.contains("does not answer"), "{stderr}");
    assert!(data.path().join("server.json").exists());
}

#[test]
fn the_server_picks_up_vectors_another_process_finished() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    // Keywords only: the collection has no vectors yet.
    run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "demo", "--no-embed"]),
    );
    // A server with API keys: the local owner token works beside them.
    let keys = format!(
        "[\"{}\"]",
        aiex_api::server::auth::hash_key("a-key-of-this-test")
    );
    let server = Server::start_with(data.path(), &[("AIEX__SERVER__API_KEYS", &keys)]);
    let token = server_file(data.path())["token"]
        .as_str()
        .expect("token")
        .to_string();
    let (refused, _) = get(&server.addr, "/v1/collections", None);
    assert!(refused.contains("401"), "{refused}");
    let (_, body) = get(&server.addr, "/v1/collections", Some(&token));
    assert!(body.contains("\"vectors_complete\":false"), "{body}");
    // A vector search through the server now has nothing to rank by.
    let before = aiex(data.path())
        .args([
            "search",
            "fifo of background work",
            "--mode",
            "vector",
            "--hits",
        ])
        .output()
        .expect("run");
    assert_ne!(before.status.code(), Some(0), "{}", stdout(&before));

    // Another process (this command line, forced local) embeds the collection.
    let embedded = run_ok(
        aiex(data.path())
            .args(["--no-server", "index"])
            .arg(repo.path())
            .args(["--name", "demo"]),
    );
    assert!(stdout(&embedded).contains("vectors: complete"));

    let (_, body) = get(&server.addr, "/v1/collections", Some(&token));
    assert!(body.contains("\"vectors_complete\":true"), "{body}");
    // The server's searches agree: its engine opens the new vectors.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = aiex(data.path())
            .args([
                "-v",
                "search",
                "fifo of background work",
                "--mode",
                "vector",
                "--hits",
                "--limit",
                "1",
            ])
            .output()
            .expect("run");
        if after.status.success() {
            // Sent with the local owner token although the server requires keys.
            assert!(sent_to_server(&String::from_utf8_lossy(&after.stderr)));
            let hit: serde_json::Value = serde_json::from_str(stdout(&after).trim()).expect("json");
            assert_eq!(hit["path"], "lib/queue.py");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server never searched the new vectors: {}",
            String::from_utf8_lossy(&after.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The server now holds the vector store: a run forced here that would embed is refused
    // before it changes anything, saying why and what to do; keywords alone may still be indexed.
    let status = |data: &Path| -> serde_json::Value {
        let out = run_ok(aiex(data).args(["--no-server", "index", "--status", "--json"]));
        serde_json::from_slice(&out.stdout).expect("json status")
    };
    let generation = status(data.path())[0]["generation"].clone();
    std::fs::write(
        repo.path().join("lib/extra.py"),
        "def extra():\n    return 1\n",
    )
    .expect("write");
    let refused = aiex(data.path())
        .args(["--no-server", "index"])
        .arg(repo.path())
        .args(["--name", "demo"])
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains(&format!("held by the server at http://{}", server.addr))
            && message.contains("--no-server")
            && message.contains("--no-embed")
            && message.contains("nothing was indexed"),
        "{message}"
    );
    assert_eq!(status(data.path())[0]["generation"], generation);
    // A batch run here is refused the same way, before any of its directories starts.
    let work = tempfile::tempdir().expect("tempdir");
    let batch = work.path().join("jobs.toml");
    std::fs::write(
        &batch,
        format!(
            "[[job]]\npath = {:?}\nname = \"demo\"\n",
            repo.path().display().to_string()
        ),
    )
    .expect("write");
    let refused = aiex(data.path())
        .args(["--no-server", "index", "--batch"])
        .arg(&batch)
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("held by the server at"), "{message}");
    assert_eq!(status(data.path())[0]["generation"], generation);
    let keywords = run_ok(
        aiex(data.path())
            .args(["--no-server", "index"])
            .arg(repo.path())
            .args(["--name", "demo", "--no-embed"]),
    );
    assert!(
        stdout(&keywords).contains("1 changed (1 added"),
        "{}",
        stdout(&keywords)
    );

    let (exit, _) = server.stop();
    assert!(exit.success());
}

#[test]
fn research_goes_through_a_running_server() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "demo"]),
    );
    let server = Server::start(data.path());
    let question = [
        "research",
        "how is a toml table header parsed?",
        "--collections",
        "demo",
    ];
    let remote = run_ok(aiex(data.path()).arg("-v").args(question));
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(sent_to_server(&stderr), "{stderr}");
    let remote_report = stdout(&remote);
    assert!(remote_report.contains("src/table.rs"), "{remote_report}");
    let events = stdout(&run_ok(
        aiex(data.path()).args(question).args(["--json", "-q"]),
    ));
    let types = event_types(&events);
    assert_eq!(types.first().map(String::as_str), Some("session_started"));
    assert!(types.contains(&"report_ready".to_string()), "{types:?}");
    assert_eq!(types.last().map(String::as_str), Some("done"));

    // A batch file becomes the server's jobs, printed as a local batch.
    let work = tempfile::tempdir().expect("tempdir");
    small_repo(&work.path().join("other"));
    let batch = work.path().join("jobs.toml");
    std::fs::write(&batch, "[[job]]\npath = \"other\"\nname = \"other\"\n").expect("write");
    let batched = run_ok(
        aiex(data.path())
            .args(["-v", "index", "--batch"])
            .arg(&batch),
    );
    assert!(sent_to_server(&String::from_utf8_lossy(&batched.stderr)));
    let line = stdout(&batched);
    assert!(line.starts_with("succeeded other "), "{line}");
    assert!(line.contains("2 changed, 0 unchanged"), "{line}");

    let (exit, _) = server.stop();
    assert!(exit.success());

    // The local run writes a report of the same shape.
    let local = run_ok(aiex(data.path()).arg("-v").args(question));
    assert!(!sent_to_server(&String::from_utf8_lossy(&local.stderr)));
    let headings = |report: &str| -> Vec<String> {
        report
            .lines()
            .filter(|line| line.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(headings(&stdout(&local)), headings(&remote_report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_is_rebuilt_when_vectors_are_finished_elsewhere() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    let config = crate::server::server_config(data.path(), None, &[]);
    crate::server::index_keywords(&config, repo.path(), "demo");
    let state = crate::server::state(config.clone(), false).await;
    let first = state.engine.get_checked(true).await.expect("engine");
    let unchanged = state.engine.get_checked(true).await.expect("engine");
    assert!(
        std::sync::Arc::ptr_eq(&first, &unchanged),
        "nothing changed on disk: the same engine"
    );
    // The vectors, written outside the slot (as another process would): same collection list,
    // same generation, vectors now complete.
    let writer = config.clone();
    let repo_path = repo.path().to_path_buf();
    let summary = tokio::task::spawn_blocking(move || {
        let mut request = aiex_indexer::IndexRequest::new(&repo_path);
        request.name = Some("demo".to_string());
        aiex_indexer::index_directory(
            &writer,
            request,
            &mut |_| {},
            &std::sync::atomic::AtomicBool::new(false),
        )
    })
    .await
    .expect("join")
    .expect("index");
    assert!(summary.vectors_complete);
    let rebuilt = state.engine.get_checked(true).await.expect("engine");
    assert!(
        !std::sync::Arc::ptr_eq(&first, &rebuilt),
        "the engine was not rebuilt for the finished vectors"
    );
    state.begin_shutdown();
    state.wait_stopped(Duration::from_secs(5)).await;
}
