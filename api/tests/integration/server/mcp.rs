//! The MCP server driven by a client nobody here wrote: the official MCP Python SDK (`mcp` on
//! PyPI, `api/tests/clients/mcp_tools.py`) over stdio (the `aiex-research mcp` binary) and over
//! streamable HTTP (`/mcp` on a real server with an API key; with the `initialize` handshake and
//! with 2026-07-28's stateless `server/discover`), calling every tool, with bad arguments too. The Python comes from `scripts/pyvenv clients api/tests/clients/requirements.txt`
//! (`scripts/test` makes it) or `AIEX_TEST_CLIENTS_PYTHON`; without it the test says SKIPPED.

use std::path::PathBuf;
use std::time::Duration;

use aiex_api::server::auth::hash_key;

use super::clients::client_python;
use super::research::{research_config, with_key};
use super::{call, get, start, state};

/// The environment of the stdio server: the test model, keyword search, no user configuration.
fn stdio_env(data: &std::path::Path) -> serde_json::Value {
    let mut env = serde_json::Map::new();
    for (key, value) in aiex_tests::model_overrides() {
        let var = format!("AIEX__{}", key.replace('.', "__").to_uppercase());
        env.insert(var, value.into());
    }
    env.insert("AIEX__SEARCH__MODE".into(), "keyword".into());
    env.insert("AIEX__RESEARCH__SEARCH_CONCURRENCY".into(), "1".into());
    env.insert(
        "XDG_CONFIG_HOME".into(),
        data.join("no-config").display().to_string().into(),
    );
    serde_json::Value::Object(env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_python_sdk_calls_every_tool_over_stdio_and_http() {
    let Some(python) = client_python("mcp") else {
        aiex_tests::skip(
            "the_mcp_python_sdk_calls_every_tool_over_stdio_and_http",
            "clients",
            "no Python with the mcp package (run scripts/pyvenv clients api/tests/clients/requirements.txt, or set AIEX_TEST_CLIENTS_PYTHON)",
        );
        return;
    };
    // One data directory per transport, each with the small repository indexed as `demo`.
    let http_data = tempfile::tempdir().expect("tempdir");
    let stdio_data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    research_config(stdio_data.path(), repo.path(), None, &[]);
    let keys = format!("[\"{}\"]", hash_key("mcp-key"));
    // Every JSON-RPC message is a request of its own: a burst above the default 60 for the key.
    let config = research_config(
        http_data.path(),
        repo.path(),
        None,
        &[("server.api_keys", &keys), ("server.burst", "1000")],
    );
    let state = state(config, false).await;
    let (base, _server) = start(&state).await;
    // A third data directory owned by a running `serve`: there the stdio command relays to it.
    let relay_data = tempfile::tempdir().expect("tempdir");
    research_config(relay_data.path(), repo.path(), None, &[]);
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_aiex-research"))
        .arg("--data-dir")
        .arg(relay_data.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .envs(
            stdio_env(relay_data.path())
                .as_object()
                .expect("env")
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_string())),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let (_addr, serve_log, _) = crate::listening(&mut serve);
    let drain = std::thread::spawn(move || std::io::copy(&mut { serve_log }, &mut std::io::sink()));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/mcp_tools.py");
    let arguments = serde_json::json!({
        "binary": env!("CARGO_BIN_EXE_aiex-research"),
        "data_dir": stdio_data.path(),
        "env": stdio_env(stdio_data.path()),
        "url": format!("{base}/mcp"),
        "key": "mcp-key",
        "version": env!("CARGO_PKG_VERSION"),
        "relay_data_dir": relay_data.path(),
    });
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(arguments.to_string())
            .output()
            .expect("run the python client")
    })
    .await
    .expect("join");
    let _ = serve.kill();
    let _ = serve.wait();
    let _ = drain.join();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}"));
    // Each `mcp` command said where it ran (`-v`): the second one relayed to the server.
    assert_eq!(
        stderr
            .matches("sending the work to the server at http://")
            .count(),
        1,
        "{stderr}"
    );
    let runs = [
        &summary["stdio"],
        &summary["relay"],
        &summary["http"]["legacy"],
        &summary["http"]["modern"],
    ];
    for run in runs {
        assert_eq!(
            run["tools"],
            serde_json::json!([
                "index_status",
                "list_collections",
                "read",
                "research",
                "search"
            ]),
            "{summary}"
        );
        assert!(run["progress"].as_u64() > Some(2), "{summary}");
    }

    // The research called over HTTP is a session of the server like any other, owned by the key.
    for run in ["legacy", "modern"] {
        let id = summary["http"][run]["session"]
            .as_str()
            .expect("session id");
        let mut status = serde_json::Value::Null;
        for _ in 0..100 {
            status = call(
                &state,
                with_key(get(&format!("/v1/research/{id}")), "mcp-key"),
            )
            .await
            .json();
            if status["status"] != "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status["status"], "complete", "{status}");
        assert!(status["report_text"]
            .as_str()
            .is_some_and(|text| text.contains("src/table.rs")));
    }
    // The one called over stdio is stored in that data directory.
    let stdio_id = summary["stdio"]["session"].as_str().expect("session id");
    assert!(stdio_data
        .path()
        .join("research/sessions")
        .read_dir()
        .expect("sessions")
        .flatten()
        .any(|entry| entry.file_name().to_string_lossy().contains(stdio_id)));
    state.begin_shutdown();
}

/// One JSON-RPC message to `/mcp`: the status, the session header, and the answer to `id` (read
/// from the SSE stream or the JSON body).
async fn rpc(
    url: &str,
    key: Option<&str>,
    session: Option<&str>,
    body: serde_json::Value,
    extra: &[(&str, &str)],
) -> (reqwest::StatusCode, Option<String>, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("post");
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let mut text = response.text().await.expect("body");
    let answer = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).expect("json")
    } else {
        text.push_str("\n\n");
        super::parse_sse(&mut text)
            .into_iter()
            .filter_map(|event| serde_json::from_str::<serde_json::Value>(&event.data).ok())
            .find(|message| message.get("id") == body.get("id"))
            .unwrap_or(serde_json::Value::Null)
    };
    (status, session, answer)
}

/// The same transport with plain HTTP requests, so that it is tested without the Python SDK too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_http_needs_a_key_and_answers_tool_errors() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let keys = format!("[\"{}\"]", hash_key("mcp-key"));
    let config = research_config(
        data.path(),
        repo.path(),
        None,
        &[("server.api_keys", &keys)],
    );
    let state = state(config, false).await;
    let (base, _server) = start(&state).await;
    let url = format!("{base}/mcp");
    let initialize = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "plain-http", "version": "1"}
        }
    });

    let (status, _, _) = rpc(&url, None, None, initialize.clone(), &[]).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let (status, _, _) = rpc(&url, Some("wrong"), None, initialize.clone(), &[]).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let evil = [("origin", "https://evil.example")];
    let (status, _, _) = rpc(&url, Some("mcp-key"), None, initialize.clone(), &evil).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);

    let (status, session, answer) = rpc(&url, Some("mcp-key"), None, initialize, &[]).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["serverInfo"]["name"], "aiex", "{answer}");
    assert_eq!(
        answer["result"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let session = session.expect("a session id");
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, _) = rpc(&url, Some("mcp-key"), Some(&session), initialized, &[]).await;
    assert!(status.is_success(), "{status}");

    let tool = |id: u64, name: &str, arguments: serde_json::Value| {
        serde_json::json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}
        })
    };
    let call_tool = |body: serde_json::Value| {
        let url = url.clone();
        let session = session.clone();
        async move {
            rpc(&url, Some("mcp-key"), Some(&session), body, &[])
                .await
                .2
        }
    };
    let found = call_tool(tool(
        2,
        "search",
        serde_json::json!({"query": "parse_toml_table"}),
    ))
    .await;
    assert_eq!(found["result"]["isError"], false, "{found}");
    assert_eq!(
        found["result"]["structuredContent"]["hits"][0]["path"], "src/table.rs",
        "{found}"
    );
    for (id, path) in [(3, "../../../etc/passwd"), (4, "/etc/passwd")] {
        let read = call_tool(tool(
            id,
            "read",
            serde_json::json!({"collection": "demo", "path": path}),
        ))
        .await;
        assert_eq!(read["result"]["isError"], true, "{read}");
        assert_eq!(
            read["result"]["structuredContent"]["error"]["code"], "invalid_path",
            "{read}"
        );
    }
    let wrong = call_tool(tool(
        5,
        "read",
        serde_json::json!({"collection": 7, "path": "x"}),
    ))
    .await;
    assert_eq!(
        wrong["result"]["structuredContent"]["error"]["code"], "invalid_arguments",
        "{wrong}"
    );
    let unknown = call_tool(tool(6, "no_such_tool", serde_json::json!({}))).await;
    assert!(unknown["error"]["message"].is_string(), "{unknown}");
    state.begin_shutdown();
}

/// `/mcp` counts against the key's rate limit like every other route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_requests_are_rate_limited_per_key() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let keys = format!("[\"{}\"]", hash_key("mcp-key"));
    let config = research_config(
        data.path(),
        repo.path(),
        None,
        &[
            ("server.api_keys", &keys),
            ("server.requests_per_minute", "1"),
            ("server.burst", "2"),
        ],
    );
    let state = state(config, false).await;
    let (base, _server) = start(&state).await;
    let ping = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, _, _) = rpc(
            &format!("{base}/mcp"),
            Some("mcp-key"),
            None,
            ping.clone(),
            &[],
        )
        .await;
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    state.begin_shutdown();
}

/// A client that cancels its `research` call stops the session too (its log ends `cancelled`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_research_call_cancels_its_session() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let web = super::research::slow_serper(Duration::from_secs(2)).await;
    let config = research_config(data.path(), repo.path(), Some(web), &[]);
    let state = state(config, false).await;
    let (base, _server) = start(&state).await;
    let url = format!("{base}/mcp");
    let initialize = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "plain-http", "version": "1"}
        }
    });
    let (_, session, _) = rpc(&url, None, None, initialize, &[]).await;
    let session = session.expect("a session id");
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    rpc(&url, None, Some(&session), initialized, &[]).await;
    let research = serde_json::json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "research", "arguments": {"question": "How are TOML table headers parsed?"}}
    });
    let (call_url, call_session) = (url.clone(), session.clone());
    let pending =
        tokio::spawn(async move { rpc(&call_url, None, Some(&call_session), research, &[]).await });
    let mut id = None;
    for _ in 0..100 {
        let sessions = call(&state, get("/v1/sessions")).await.json();
        if let Some(found) = sessions["sessions"][0]["id"].as_str() {
            id = Some(found.to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = id.expect("the research call started a session");
    let cancel = serde_json::json!({
        "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 7, "reason": "the user changed their mind"}
    });
    rpc(&url, None, Some(&session), cancel, &[]).await;
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        status = call(&state, get(&format!("/v1/research/{id}")))
            .await
            .json();
        if status["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["status"], "cancelled", "{status}");
    pending.abort();
    state.begin_shutdown();
}
