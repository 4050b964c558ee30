//! The web page at `/`: served without a key, its assets versioned, typed and cached, a strict
//! Content-Security-Policy; then the page itself in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`) driven by selenium (`api/tests/browser/web_page.py`) against
//! a real server with a key, an indexed collection, jobs confined to the repository and a slow
//! web source. The browser's Python is
//! `AIEX_TEST_BROWSER_PYTHON`, else the environment `scripts/setup-browser` makes
//! (`~/.cache/aiex/venv-browser`); without it, or without Chromium, the test says SKIPPED.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};

use aiex_api::server::auth::hash_key;

use super::research::{research_config, slow_serper, with_key};
use super::{call, get, server_config, start, state};

const CSP: &str = "default-src 'self'";

/// The `/ui/…/app.js` path the page names.
fn script_path(page: &str) -> String {
    let start = page.find("src=\"/ui/").expect("a script") + "src=\"".len();
    let end = page[start..].find('"').expect("quote") + start;
    page[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_without_a_key() {
    let data = tempfile::tempdir().expect("tempdir");
    let keys = format!("[\"{}\"]", hash_key("web-key"));
    let config = server_config(data.path(), None, &[("server.api_keys", &keys)]);
    let state = state(config, false).await;

    let page = call(&state, get("/")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers["cache-control"], "no-cache");
    let policy = page.headers["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(policy.starts_with(CSP), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert!(page.text.contains("<title>Aiex</title>"));
    assert!(!page.text.contains("{{ASSETS}}"));
    assert!(!page.text.contains("http://") && !page.text.contains("https://"));

    // Revalidation: the same version answers 304.
    let etag = page.headers["etag"].to_str().expect("ascii").to_string();
    let again = Request::get("/")
        .header("if-none-match", &etag)
        .body(Body::empty())
        .expect("request");
    let again = call(&state, again).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.text.is_empty());

    // Assets: typed, cached for good, this build's version only.
    let script = script_path(&page.text);
    let version_dir = script.trim_end_matches("app.js").to_string();
    for (name, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("research.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let asset = call(&state, get(&format!("{version_dir}{name}"))).await;
        assert_eq!(asset.status, StatusCode::OK, "{name}");
        assert_eq!(asset.headers["content-type"], content_type, "{name}");
        assert_eq!(
            asset.headers["cache-control"], "public, max-age=31536000, immutable",
            "{name}"
        );
        assert!(asset.headers.contains_key("content-security-policy"));
        assert!(!asset.text.is_empty());
    }
    let app = call(&state, get(&script)).await;
    assert!(app.text.contains("import "), "an ES module");
    for missing in [
        "/ui/0000000000000000/app.js".to_string(),
        format!("{version_dir}nothing.js"),
        format!("{version_dir}..%2Fweb.rs"),
        "/ui/app.js".to_string(),
    ] {
        let answer = call(&state, get(&missing)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
    }
    let head = Request::head("/").body(Body::empty()).expect("request");
    assert_eq!(call(&state, head).await.status, StatusCode::OK);

    // The API it calls still needs the key.
    assert_eq!(
        call(&state, get("/v1/collections")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&state, with_key(get("/v1/collections"), "web-key"))
            .await
            .status,
        StatusCode::OK
    );
    state.begin_shutdown();
}

/// A Python with selenium, Chromium and its driver, if all are here.
fn browser() -> Option<PathBuf> {
    let python = match std::env::var_os("AIEX_TEST_BROWSER_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache"))
                })?;
            cache.join("aiex/venv-browser/bin/python")
        }
    };
    let runs = |program: &std::ffi::OsStr, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|output| output.status.success())
    };
    let chromium = std::env::var_os("AIEX_TEST_CHROMIUM").unwrap_or_else(|| "chromium".into());
    let driver =
        std::env::var_os("AIEX_TEST_CHROMEDRIVER").unwrap_or_else(|| "chromedriver".into());
    let ready = runs(python.as_os_str(), &["-c", "import selenium"])
        && runs(&chromium, &["--version"])
        && runs(&driver, &["--version"]);
    ready.then_some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_searches_researches_and_resumes_in_a_browser() {
    let Some(python) = browser() else {
        aiex_tests::skip(
            "the_page_searches_researches_and_resumes_in_a_browser",
            "browser",
            "no headless browser (run scripts/setup-browser: Debian's chromium and chromium-driver, selenium in ~/.cache/aiex/venv-browser; or set AIEX_TEST_BROWSER_PYTHON)",
        );
        return;
    };
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    // A slow web source makes the session last long enough to reload the page mid-way.
    let web = slow_serper(Duration::from_millis(700)).await;
    let keys = format!("[\"{}\"]", hash_key("web-key"));
    let roots = format!("[\"{}\"]", repo.path().display());
    let config = research_config(
        data.path(),
        repo.path(),
        Some(web),
        &[("server.api_keys", &keys), ("server.allowed_roots", &roots)],
    );
    let state = state(config, true).await;
    let (base, _server) = start(&state).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page");
    let _ = std::fs::remove_dir_all(&out);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/web_page.py");
    let out_arg = out.clone();
    let repo_arg = repo.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(&base)
            .arg("web-key")
            .arg(&out_arg)
            .arg(&repo_arg)
            .output()
            .expect("run the browser script")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("screenshots: {}", out.display());
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let seen: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}"));
    println!("the browser saw: {seen}");

    assert!(seen["search"]["code_hits"].as_u64() > Some(0), "{seen}");
    let research = &seen["research"];
    let session = research["session"].as_str().expect("session");
    // The reload resumed after the events it had, not from the start.
    let resumed_after = research["resumed_after"].as_u64().expect("resumed");
    assert!(resumed_after > 0, "{seen}");
    assert_eq!(
        research["first_event_after_reload"].as_u64(),
        Some(resumed_after + 1),
        "{seen}"
    );
    for stage in ["plan", "search", "evidence", "synthesize"] {
        assert_eq!(research["stages"][stage], "done", "{stage}: {seen}");
    }
    assert!(research["graph_nodes"].as_u64() > Some(0), "{seen}");
    assert!(research["citations"].as_u64() > Some(0), "{seen}");
    // A job started from the page ran, is listed as done, and its collection is there.
    let collections = &seen["collections"];
    assert_eq!(
        collections["collections"],
        serde_json::json!(["again", "demo"]),
        "{seen}"
    );
    assert_eq!(
        collections["job_progress"],
        serde_json::json!(["1", "1"]),
        "{seen}"
    );
    let job = collections["job"].as_str().expect("job");
    let listed = call(
        &state,
        with_key(get(&format!("/v1/index/jobs/{job}")), "web-key"),
    )
    .await;
    assert_eq!(listed.json()["state"], "succeeded", "{}", listed.text);
    let screenshots = seen["screenshots"].as_array().expect("screenshots");
    assert_eq!(screenshots.len(), 6, "{seen}");
    for path in screenshots {
        let bytes = std::fs::read(path.as_str().expect("path")).expect("screenshot");
        assert!(bytes.starts_with(b"\x89PNG"), "{path}");
    }

    // The server agrees: the session is complete and its own; every stream closed.
    let stored = call(
        &state,
        with_key(get(&format!("/v1/research/{session}")), "web-key"),
    )
    .await;
    assert_eq!(stored.json()["status"], "complete", "{}", stored.text);
    for _ in 0..100 {
        if state.streams.open_streams.load(Ordering::Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state.streams.open_streams.load(Ordering::Relaxed), 0);
    state.begin_shutdown();
}
