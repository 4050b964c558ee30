use crate::{aiex, run_ok, stdout};

fn small_repo(root: &std::path::Path) {
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

#[test]
fn index_twice_search_and_status() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());

    let first = run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "demo"]),
    );
    let text = stdout(&first);
    assert!(text.contains("2 changed (2 added, 0 modified)"), "{text}");
    assert!(text.contains("vectors: complete"), "{text}");

    let second = run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "demo", "--json"]),
    );
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).expect("json summary");
    assert_eq!(summary["changed"], 0);
    assert_eq!(summary["unchanged"], 2);
    assert_eq!(summary["embedded"], 0);

    let search = run_ok(aiex(data.path()).args([
        "search",
        "parse a toml table",
        "--mode",
        "hybrid",
        "--hits",
    ]));
    let lines: Vec<serde_json::Value> = stdout(&search)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one json object per line"))
        .collect();
    assert!(!lines.is_empty());
    let top = &lines[0];
    for key in [
        "collection",
        "path",
        "start_line",
        "end_line",
        "language",
        "symbol",
        "kind",
        "score",
        "snippet",
    ] {
        assert!(top.get(key).is_some(), "missing {key} in {top}");
    }
    assert_eq!(top["path"], "src/table.rs");
    assert_eq!(top["collection"], "demo");
    assert_eq!(top["symbol"], "parse_toml_table");
    assert_eq!(top["language"], "rust");

    let vector = run_ok(aiex(data.path()).args([
        "search",
        "fifo of background work",
        "--mode",
        "vector",
        "--hits",
        "--limit",
        "1",
    ]));
    let hit: serde_json::Value = serde_json::from_str(stdout(&vector).trim()).expect("json");
    assert_eq!(hit["path"], "lib/queue.py");

    let filtered =
        run_ok(aiex(data.path()).args(["search", "queue table", "--lang", "py", "--hits"]));
    assert!(stdout(&filtered)
        .lines()
        .all(|line| line.contains("\"language\":\"python\"")));

    let status = run_ok(aiex(data.path()).args(["index", "--status", "--json"]));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json status");
    assert_eq!(status[0]["name"], "demo");
    assert_eq!(status[0]["files"], 2);
    assert_eq!(status[0]["vectors_complete"], true);
    assert_eq!(status[0]["model_id"], "all-MiniLM-L6-v2");
    assert_eq!(status[0]["generation"], 1);
    let human = stdout(&run_ok(aiex(data.path()).args(["index", "--status"])));
    for word in [
        "demo",
        "files:",
        "chunks:",
        "model:",
        "generation:",
        "size:",
    ] {
        assert!(human.contains(word), "{human}");
    }
}

#[test]
fn errors_exit_2_with_a_message() {
    let data = tempfile::tempdir().expect("tempdir");
    let output = aiex(data.path())
        .args(["index", "/definitely/not/here"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("/definitely/not/here"), "{stderr}");

    let output = aiex(data.path())
        .args(["search", "anything"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no collections yet"));

    let output = aiex(data.path())
        .args(["search", "x", "--lang", "klingon"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown language `klingon`"));
    // The same input the API refuses with 400 is an error here, not a warning.
    for (args, message) in [
        (
            &["search", "x", "--since", "decade"][..],
            "unknown time range `decade`",
        ),
        (
            &["search", "x", "--sources", "code,gopher"][..],
            "unknown source `gopher`",
        ),
        (&["search", "x", "--path", "src/["][..], "src/["),
    ] {
        let output = aiex(data.path()).args(args).output().expect("run");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    let output = aiex(data.path())
        .env("AIEX__INDEX__MAX_FILE_BYTE", "10")
        .args(["config", "show"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("index.max_file_byte"), "{stderr}");
    assert!(stderr.contains("AIEX__INDEX__MAX_FILE_BYTE"), "{stderr}");
}

#[test]
fn errors_are_said_once_and_name_the_flag() {
    let data = tempfile::tempdir().expect("tempdir");
    let output = aiex(data.path())
        .args(["search", "x", "--limit", "0"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("invalid configuration").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("flag --limit"), "{stderr}");
    assert!(!stderr.contains("--search.limit"), "{stderr}");

    // A port already taken: the reason is said once.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = aiex(data.path())
        .args(["serve", "--bind", &addr])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("in use").count(), 1, "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");

    // An upper-case scheme is a URL: the LLM URL is accepted and used (and fails to connect),
    // not refused as "must start with http://".
    let output = aiex(data.path())
        .args([
            "llm",
            "health",
            "--llm-url",
            "HTTP://127.0.0.1:9",
            "--llm-model",
            "m",
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("must start with"), "{stderr}");
}

#[test]
fn config_show_layers_and_redacts() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = data.path().join("aiex.toml");
    std::fs::write(
        &file,
        "[search]\nlimit = 7\nmode = \"keyword\"\n[vector]\napi_key = \"super-secret-key\"\n",
    )
    .expect("write");
    let output = run_ok(
        aiex(data.path())
            .env("AIEX__SEARCH__LIMIT", "9")
            .arg("--config")
            .arg(&file)
            .args(["config", "show"]),
    );
    let text = stdout(&output);
    assert!(text.contains("limit = 9"), "env beats file: {text}");
    assert!(text.contains("mode = \"keyword\""), "{text}");
    assert!(!text.contains("super-secret-key"), "{text}");
    assert!(
        text.contains(&data.path().display().to_string()),
        "flag sets data_dir: {text}"
    );
}

#[test]
fn docs_sets_sources_events_and_explain() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let docs = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    aiex_tests::write_files(
        docs.path(),
        &[(
            "guide/threads.md",
            "# Threads\n\n## Sharing state\n\nWrap the value in a Mutex inside an Arc to share state between threads.\n",
        )],
    );
    run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "code", "--no-embed"]),
    );
    let added = run_ok(
        aiex(data.path())
            .args(["docs", "add", "guide"])
            .arg(docs.path())
            .arg("--no-embed"),
    );
    assert!(stdout(&added).contains("indexed `guide`"));
    let list = stdout(&run_ok(aiex(data.path()).args(["docs", "list"])));
    assert!(list.starts_with("guide"), "{list}");
    assert!(!list.contains("code "), "{list}");

    // Docs only.
    let docs_hits = run_ok(aiex(data.path()).args([
        "search",
        "share state between threads",
        "--sources",
        "docs",
        "--hits",
        "--mode",
        "keyword",
    ]));
    let first: serde_json::Value =
        serde_json::from_str(stdout(&docs_hits).lines().next().expect("a hit")).expect("json");
    assert_eq!(first["source"], "docs");
    assert_eq!(first["path"], "guide/threads.md");
    assert_eq!(first["kind"], "section");
    assert!(
        first["snippet"]
            .as_str()
            .is_some_and(|s| s.contains("Mutex")),
        "{first}"
    );

    // Events: typed, with increasing ids, ending with done.
    let events =
        run_ok(aiex(data.path()).args(["search", "queue table", "--json", "--mode", "keyword"]));
    let events: Vec<serde_json::Value> = stdout(&events)
        .lines()
        .map(|line| serde_json::from_str(line).expect("event json"))
        .collect();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "source_started").count(),
        2,
        "{types:?}"
    );
    assert_eq!(&types[types.len() - 2..], ["merged", "done"]);
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|pair| pair[1] == pair[0] + 1), "{ids:?}");

    // Explain, and an unknown source reported without failing the search.
    let explained = run_ok(aiex(data.path()).args([
        "search",
        "queue",
        "--sources",
        "code,web",
        "--explain",
        "--mode",
        "keyword",
    ]));
    let text = stdout(&explained);
    assert!(
        text.contains("explain:") && text.contains("source code:") && text.contains("<- code #1"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&explained.stderr).contains("web search is not configured"));

    let removed = aiex(data.path())
        .args(["docs", "remove", "code"])
        .output()
        .expect("run");
    assert_eq!(
        removed.status.code(),
        Some(2),
        "a code collection is not a docs set"
    );
    run_ok(aiex(data.path()).args(["docs", "remove", "guide"]));
    assert!(
        stdout(&run_ok(aiex(data.path()).args(["docs", "list"]))).contains("no documentation sets")
    );
}

/// A one-shot stand-in for Tavily's `/search` that answers in Tavily's exact format and hands the
/// request it saw (head and body) back to the test.
fn fake_tavily() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0u8; length];
        let _ = reader.read_exact(&mut body);
        let _ = sender.send(format!("{head}\n{}", String::from_utf8_lossy(&body)));
        let response = r#"{"query":"q","answer":null,"images":[],"results":[{"title":"Shared-State Concurrency - The Rust Programming Language","url":"https://doc.rust-lang.org/book/ch16-03-shared-state.html?utm_source=x","content":"Mutex<T> and Arc<T> let several threads share state.","score":0.91,"raw_content":null}],"response_time":"0.84","request_id":"abc"}"#;
        let mut stream = reader.into_inner();
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{response}",
            response.len()
        );
    });
    (url, receiver)
}

#[test]
fn web_source_joins_when_configured() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "code", "--no-embed"]),
    );

    // Without keys, web is absent and says so.
    let output = run_ok(aiex(data.path()).args([
        "search",
        "table",
        "--sources",
        "code,web",
        "--mode",
        "keyword",
    ]));
    assert!(String::from_utf8_lossy(&output.stderr).contains("web search is not configured"));

    let (url, requests) = fake_tavily();
    let output = run_ok(
        aiex(data.path())
            .env("AIEX__WEB__TAVILY_API_KEY", "tvly-secret-test-key")
            .env("AIEX__WEB__TAVILY_URL", &url)
            .args([
                "search",
                "share state between threads",
                "--mode",
                "keyword",
                "--lang",
                "rust",
                "--hits",
                "--explain",
            ]),
    );
    let request = requests
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("request");
    assert!(request.contains("POST /search"), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer tvly-secret-test-key"),
        "{request}"
    );
    assert!(
        request.contains("share state between threads Rust"),
        "context added: {request}"
    );
    let text = stdout(&output);
    let web_hit = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|hit| hit["source"] == "web:tavily")
        .expect("a web hit");
    assert!(web_hit["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://doc.rust-lang.org/")));
    assert!(text.contains("source web:tavily: 1 hits"), "{text}");
    let everything = format!("{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        !everything.contains("tvly-secret-test-key"),
        "the key never shows"
    );
}

/// Starts `serve` on a free port with `envs`, asks `/v1/collections` once, stops it and returns stderr.
fn serve_once_stderr(envs: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = aiex(data.path())
        .args(["serve", "--bind", "127.0.0.1:0", "--no-jobs"])
        .envs(envs.iter().copied())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn serve");
    let (addr, mut stderr, mut seen) = crate::listening(&mut child);
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        stream,
        "GET /v1/collections HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    child.kill().expect("kill");
    child.wait().expect("wait");
    stderr.read_to_string(&mut seen).expect("rest of stderr");
    seen
}

#[test]
fn serve_writes_an_access_log_plain_or_json() {
    let plain = serve_once_stderr(&[]);
    let access = plain
        .lines()
        .find(|line| line.contains("aiex::access"))
        .unwrap_or_else(|| panic!("no access log line: {plain}"));
    for field in [
        "method=GET",
        "route=/v1/collections",
        "status=200",
        "latency_ms=",
        "key=local",
    ] {
        assert!(access.contains(field), "{field} missing: {access}");
    }
    // Not a terminal: no colour codes.
    assert!(!plain.contains('\u{1b}'), "{plain:?}");

    let json = serve_once_stderr(&[("AIEX_LOG_FORMAT", "json")]);
    let entry = json
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|value| value["target"] == "aiex::access")
        .unwrap_or_else(|| panic!("no JSON access log line: {json}"));
    assert_eq!(entry["fields"]["route"], "/v1/collections");
    assert_eq!(entry["fields"]["status"], 200);
    assert_eq!(entry["fields"]["key"], "local");
}
