//! Keys, limits, CORS, path confinement, the bind check.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use aiex_api::server::auth::hash_key;
use aiex_api::server::{check_bind, ServerError};

use std::time::Duration;

use super::{call, get, post_json, server_config, small_repo, state};

fn with_key(request: Request<Body>, key: &str) -> Request<Body> {
    let (mut parts, body) = request.into_parts();
    parts.headers.insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    Request::from_parts(parts, body)
}

#[tokio::test]
async fn keys_missing_wrong_revoked_and_valid() {
    let data = tempfile::tempdir().expect("tempdir");
    let keys = format!(
        "[\"{}\", \"{}\"]",
        hash_key("good-key"),
        hash_key("old-key")
    );
    let revoked = format!("[\"{}\"]", hash_key("old-key"));
    let config = server_config(
        data.path(),
        None,
        &[
            ("server.api_keys", &keys),
            ("server.revoked_keys", &revoked),
        ],
    );
    let state = state(config, false).await;

    let missing = call(&state, get("/v1/history")).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.code(), "missing_api_key");
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    let wrong = call(&state, with_key(get("/v1/history"), "bad-key")).await;
    assert_eq!(wrong.code(), "invalid_api_key");
    let revoked = call(&state, with_key(get("/v1/history"), "old-key")).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(revoked.code(), "revoked_api_key");
    let metrics = call(&state, get("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::UNAUTHORIZED);
    let good = call(&state, with_key(get("/v1/history"), "good-key")).await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text);
    // Liveness, readiness and the document need no key.
    assert_eq!(call(&state, get("/healthz")).await.status, StatusCode::OK);
    assert_eq!(
        call(&state, get("/openapi.json")).await.status,
        StatusCode::OK
    );
    // Routes added on top (research, sessions) get the same key check.
    let extra = axum::Router::new().route("/v1/extra", axum::routing::get(|| async { "extra" }));
    let router = aiex_api::server::app_with(state.clone(), extra);
    let refused = tower::ServiceExt::oneshot(router.clone(), get("/v1/extra"))
        .await
        .expect("infallible");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let allowed = tower::ServiceExt::oneshot(router, with_key(get("/v1/extra"), "good-key"))
        .await
        .expect("infallible");
    assert_eq!(allowed.status(), StatusCode::OK);
    // Nothing of a key appears in an answer.
    assert!(!wrong.text.contains("bad-key") && !revoked.text.contains("old-key"));
}

#[test]
fn non_loopback_bind_needs_keys() {
    let mut server = aiex_config::ServerConfig::default();
    let public = "0.0.0.0:8484".parse().expect("addr");
    let public_v6 = "[::]:8484".parse().expect("addr");
    assert!(matches!(
        check_bind(public, &server),
        Err(ServerError::KeysRequired { .. })
    ));
    assert!(check_bind(public_v6, &server).is_err());
    assert!(check_bind("127.0.0.1:0".parse().expect("addr"), &server).is_ok());
    assert!(check_bind("[::1]:0".parse().expect("addr"), &server).is_ok());
    server.api_keys = vec![hash_key("k")];
    assert!(check_bind(public, &server).is_ok());
}

#[test]
fn serve_refuses_a_public_bind_without_keys() {
    let data = tempfile::tempdir().expect("tempdir");
    let output = crate::aiex(data.path())
        .args(["serve", "--bind", "0.0.0.0:0"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without API keys"),
        "{stderr}"
    );
}

#[test]
fn hash_key_reads_stdin() {
    use std::io::Write;
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = crate::aiex(data.path())
        .args(["serve", "hash-key"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"my-secret\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        hash_key("my-secret")
    );
}

#[tokio::test]
async fn body_query_and_rate_limits() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = server_config(
        data.path(),
        None,
        &[
            ("server.max_body_bytes", "1024"),
            ("server.max_query_bytes", "64"),
            ("server.requests_per_minute", "1"),
            ("server.burst", "2"),
        ],
    );
    let state = state(config, false).await;
    let big = json!({"query": "x".repeat(4096)});
    let too_large = call(&state, post_json("/v1/search", &big)).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.code(), "payload_too_large");

    let long_query = format!("/v1/history?limit=1&pad={}", "a".repeat(100));
    let too_long = call(&state, get(&long_query)).await;
    assert_eq!(too_long.status, StatusCode::URI_TOO_LONG);
    assert_eq!(too_long.code(), "query_too_long");

    // The oversized body used one of the burst of 2 (the long URL was refused before the key check).
    assert_eq!(
        call(&state, get("/v1/history")).await.status,
        StatusCode::OK
    );
    let limited = call(&state, get("/v1/history")).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    assert_eq!(limited.code(), "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Public routes are not rate-limited.
    assert_eq!(call(&state, get("/healthz")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cors_is_closed_unless_configured() {
    let data = tempfile::tempdir().expect("tempdir");
    let closed = state(server_config(data.path(), None, &[]), false).await;
    let request = Request::get("/healthz")
        .header("origin", "https://app.example")
        .body(Body::empty())
        .expect("request");
    let answer = call(&closed, request).await;
    assert!(answer.headers.get("access-control-allow-origin").is_none());

    let other = tempfile::tempdir().expect("tempdir");
    let open = state(
        server_config(
            other.path(),
            None,
            &[("server.cors_allowed_origins", "[\"https://app.example\"]")],
        ),
        false,
    )
    .await;
    let allowed = Request::get("/healthz")
        .header("origin", "https://app.example")
        .body(Body::empty())
        .expect("request");
    let answer = call(&open, allowed).await;
    assert_eq!(
        answer.headers["access-control-allow-origin"],
        "https://app.example"
    );
    // Browsers let scripts read these headers only when they are exposed.
    let exposed = answer.headers["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for name in ["x-session-id", "location", "retry-after"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    let foreign = Request::get("/healthz")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .expect("request");
    let answer = call(&open, foreign).await;
    assert!(answer.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn job_paths_stay_under_the_allowed_roots() {
    let data = tempfile::tempdir().expect("tempdir");
    let base = tempfile::tempdir().expect("tempdir");
    let base = base.path().canonicalize().expect("canonical");
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("repo")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
    let state = state(server_config(data.path(), Some(&root), &[]), false).await;
    let submit = |path: String| post_json("/v1/index/jobs", &json!({"items": [{"path": path}]}));

    let cases = [
        (
            "../outside".to_string(),
            StatusCode::BAD_REQUEST,
            "path_traversal",
        ),
        (
            "repo/../../outside".to_string(),
            StatusCode::BAD_REQUEST,
            "path_traversal",
        ),
        (
            format!("{}/../outside", root.display()),
            StatusCode::BAD_REQUEST,
            "path_traversal",
        ),
        (
            "%2e%2e/outside".to_string(),
            StatusCode::BAD_REQUEST,
            "path_traversal",
        ),
        (
            "%252e%252e%252foutside".to_string(),
            StatusCode::BAD_REQUEST,
            "path_traversal",
        ),
        (
            outside.display().to_string(),
            StatusCode::FORBIDDEN,
            "outside_allowed_roots",
        ),
        (
            "/etc".to_string(),
            StatusCode::FORBIDDEN,
            "outside_allowed_roots",
        ),
        (
            "link".to_string(),
            StatusCode::FORBIDDEN,
            "outside_allowed_roots",
        ),
        (
            root.join("link").display().to_string(),
            StatusCode::FORBIDDEN,
            "outside_allowed_roots",
        ),
        (
            "missing".to_string(),
            StatusCode::BAD_REQUEST,
            "not_a_directory",
        ),
    ];
    for (path, status, code) in cases {
        let answer = call(&state, submit(path.clone())).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.text);
        assert_eq!(answer.code(), code, "{path}");
    }
    let accepted = call(&state, submit("repo".to_string())).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text);
    assert_eq!(
        accepted.json()["items"][0]["path"],
        root.join("repo").display().to_string()
    );

    let closed_data = tempfile::tempdir().expect("tempdir");
    let closed = super::state(server_config(closed_data.path(), None, &[]), false).await;
    let refused = call(&closed, submit("repo".to_string())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "indexing_disabled");
}

#[tokio::test]
async fn a_job_directory_swapped_for_a_link_before_its_run_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let base = tempfile::tempdir().expect("tempdir");
    let base = base.path().canonicalize().expect("canonical");
    let root = base.join("root");
    let outside = base.join("outside");
    small_repo(&root.join("swapdir"));
    aiex_tests::write_files(
        &outside,
        &[("secret.rs", "pub fn outside_secret_marker() {}\n")],
    );
    // Accepted while the directory is real; the job waits (jobs do not run on this state).
    let queued = state(server_config(data.path(), Some(&root), &[]), false).await;
    let accepted = call(
        &queued,
        post_json(
            "/v1/index/jobs",
            &json!({"items": [{"path": "swapdir"}], "embed": false}),
        ),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text);
    let id = accepted.json()["id"].as_str().expect("id").to_string();
    drop(queued);

    // Swapped for a link out of the roots before the job runs (at the next start).
    std::fs::remove_dir_all(root.join("swapdir")).expect("remove");
    std::os::unix::fs::symlink(&outside, root.join("swapdir")).expect("symlink");
    let running = state(server_config(data.path(), Some(&root), &[]), true).await;
    let mut record = serde_json::Value::Null;
    for _ in 0..600 {
        record = call(&running, get(&format!("/v1/index/jobs/{id}")))
            .await
            .json();
        if ["succeeded", "failed", "cancelled"].contains(&record["state"].as_str().unwrap_or("")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(record["state"], "failed", "{record}");
    assert_eq!(record["items"][0]["state"], "failed", "{record}");
    let error = record["items"][0]["error"].as_str().expect("error");
    assert!(error.contains("allowed root"), "{error}");
    let search = call(
        &running,
        post_json(
            "/v1/search",
            &json!({"query": "outside_secret_marker", "mode": "keyword"}),
        ),
    )
    .await;
    assert!(
        !search.text.contains("outside_secret_marker()"),
        "{}",
        search.text
    );
}

/// Sends `bytes` on a new loopback connection to `base`; returns the connection.
async fn raw_connection(base: &str, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    stream
}

/// Reads what the server sends until it closes the connection (at most `limit`).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    let read = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the connection is still open after {limit:?}");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn slow_and_oversized_requests_are_cut_short() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = server_config(
        data.path(),
        None,
        &[
            ("server.max_body_bytes", "1024"),
            ("server.header_read_timeout_ms", "1000"),
            ("server.max_connections", "2"),
        ],
    );
    let state = state(config, false).await;
    let (base, _server) = super::start(&state).await;

    // A declared length above the limit is refused at once, without waiting for the body.
    let started = std::time::Instant::now();
    let mut oversized = raw_connection(
        &base,
        b"POST /v1/search HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 2000000\r\nconnection: close\r\n\r\n{\"query\":",
    )
    .await;
    let answer = read_until_closed(&mut oversized, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Two connections that never finish their headers hold both connection slots until the
    // header timeout closes them; a third client is served only then.
    let mut slow = Vec::new();
    for _ in 0..2 {
        slow.push(raw_connection(&base, b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n").await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let mut waiting = raw_connection(
        &base,
        b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    let answer = read_until_closed(&mut waiting, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served before a slot was free: {:?}",
        started.elapsed()
    );
    for mut connection in slow {
        let answer = read_until_closed(&mut connection, Duration::from_secs(5)).await;
        assert!(!answer.contains("200 OK"), "{answer}");
    }
}

#[tokio::test]
async fn wrong_keys_are_rate_limited_per_client_address() {
    let data = tempfile::tempdir().expect("tempdir");
    let keys = format!("[\"{}\"]", hash_key("good-key"));
    let config = server_config(
        data.path(),
        None,
        &[
            ("server.api_keys", &keys),
            ("server.failed_auth_per_minute", "3"),
        ],
    );
    let state = state(config, false).await;
    let (base, _server) = super::start(&state).await;
    let client = reqwest::Client::new();
    let history = |key: &str| {
        client
            .get(format!("{base}/v1/history"))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(history("good-key").await.expect("send").status(), 200);
    for attempt in 0..3 {
        let answer = history(&format!("guess-{attempt}")).await.expect("send");
        assert_eq!(answer.status(), 401);
    }
    let limited = history("guess-3").await.expect("send");
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // The address is refused whatever key it presents until its window ends, so that a right
    // guess cannot be told from a wrong one.
    assert_eq!(history("good-key").await.expect("send").status(), 429);
}
