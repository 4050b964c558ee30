//! The docs-site crawl against a local site: same host, depth and page limits, robots.txt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiex_search::crawl::{crawl, CrawlError, CrawlOptions};
use aiex_search::fetch::NetPolicy;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

fn page(title: &str, links: &[&str]) -> String {
    let anchors: String = links
        .iter()
        .map(|l| format!("<a href=\"{l}\">{l}</a>\n"))
        .collect();
    format!("<html><head><title>{title}</title></head><body><main><h1>{title}</h1><p>About {title}.</p>\n{anchors}</main></body></html>")
}

async fn serve(State(hits): State<Arc<AtomicUsize>>, uri: Uri) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let html =
        |body: String| ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    match uri.path() {
        "/robots.txt" => "User-agent: *\nDisallow: /private/\n".into_response(),
        "/" => html(page(
            "Home",
            &[
                "/guide/a.html",
                "guide/b.html#part",
                "/private/x.html",
                "https://elsewhere.test/",
                "/deep1.html",
                "/data.json",
            ],
        )),
        "/guide/a.html" => html(page("Guide A", &["/", "b.html"])),
        "/guide/b.html" => html(page("Guide B", &["a.html"])),
        "/deep1.html" => html(page("Deep 1", &["/deep2.html"])),
        "/deep2.html" => html(page("Deep 2", &["/deep3.html"])),
        "/deep3.html" => html(page("Deep 3", &[])),
        "/private/x.html" => html(page("Private", &[])),
        "/data.json" => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves `app` on a free loopback port; its base URL.
async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

async fn site() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(Arc::clone(&hits));
    (serve_on_loopback(app).await, hits)
}

fn options(max_pages: usize, max_depth: usize) -> CrawlOptions {
    CrawlOptions {
        max_pages,
        max_depth,
        delay: Duration::from_millis(5),
        // The SSRF guard refuses loopback: allow exactly the test server's address.
        net: NetPolicy::strict().allow_addr([127, 0, 0, 1].into()),
        ..CrawlOptions::default()
    }
}

#[tokio::test]
async fn crawls_within_limits_and_rules() {
    let (url, _) = site().await;
    let mirror = tempfile::tempdir().expect("tempdir");
    let report = crawl(&url, mirror.path(), &options(100, 2))
        .await
        .expect("crawl");
    let root = mirror.path();
    for kept in [
        "index.html",
        "guide/a.html",
        "guide/b.html",
        "deep1.html",
        "deep2.html",
    ] {
        assert!(root.join(kept).is_file(), "{kept} mirrored: {report:?}");
    }
    assert!(!root.join("deep3.html").exists(), "beyond max depth");
    assert!(!root.join("private/x.html").exists(), "robots.txt");
    assert!(!root.join("data.json.html").exists(), "not HTML");
    assert_eq!(report.fetched, 5, "{report:?}");
    assert_eq!(report.skipped_robots, 1);
    assert_eq!(report.skipped_other, 1);
    let text = std::fs::read_to_string(root.join("guide/a.html")).expect("read");
    assert!(text.contains("Guide A"));

    // The mirror remembers where each page came from, and hits in it point at the page.
    let urls = aiex_indexer::page_urls::read(root);
    assert_eq!(urls.len(), 5, "{urls:?}");
    assert_eq!(urls["index.html"], url);
    assert_eq!(urls["guide/b.html"], format!("{url}guide/b.html"));
    let data = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(data.path(), &[("embedding.enabled", "false")]);
    let mut request = aiex_indexer::IndexRequest::new(root);
    request.name = Some("site".into());
    request.kind = aiex_indexer::CollectionKind::Docs;
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let summary = aiex_indexer::index_directory(&config, request, &mut |_| {}, &cancel)
        .expect("index the mirror");
    assert_eq!(
        summary.changed, 5,
        "the URL map is not indexed: {summary:?}"
    );
    let searcher = aiex_indexer::Searcher::open(&config, &[]).expect("open");
    let hits = searcher
        .search(&aiex_indexer::SearchRequest::new(
            "Guide B",
            aiex_config::SearchMode::Keyword,
            3,
        ))
        .expect("search")
        .hits;
    let top = hits.first().expect("a hit");
    assert_eq!(top.path, "guide/b.html");
    assert_eq!(
        top.url.as_deref(),
        Some(format!("{url}guide/b.html").as_str())
    );
}

#[tokio::test]
async fn page_limit_and_bad_urls() {
    let (url, hits) = site().await;
    let mirror = tempfile::tempdir().expect("tempdir");
    let report = crawl(&url, mirror.path(), &options(2, 5))
        .await
        .expect("crawl");
    assert_eq!(report.fetched, 2);
    assert!(hits.load(Ordering::SeqCst) <= 3, "robots.txt + two pages");
    assert!(crawl("file:///etc", mirror.path(), &options(2, 2))
        .await
        .is_err());
    assert!(crawl("not a url", mirror.path(), &options(2, 2))
        .await
        .is_err());
}

#[tokio::test]
async fn private_start_urls_are_refused() {
    let (url, hits) = site().await;
    let mirror = tempfile::tempdir().expect("tempdir");
    let strict = CrawlOptions {
        delay: Duration::from_millis(5),
        ..CrawlOptions::default()
    };
    for start in [
        url.as_str(),
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
        "http://localhost/",
    ] {
        let result = crawl(start, mirror.path(), &strict).await;
        assert!(
            matches!(result, Err(CrawlError::Blocked(_))),
            "{start}: {result:?}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");
}

/// A site whose pages redirect: on the site, to the same address under another host name, and
/// to a `file:` URL. Counts the requests that arrive under the other name.
async fn redirecting_site() -> (String, Arc<AtomicUsize>) {
    let other_name = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&other_name);
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, uri: Uri| {
        let counter = Arc::clone(&counter);
        async move {
            let host = headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if host.starts_with("localhost") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let port = host.rsplit(':').next().unwrap_or_default().to_string();
            let html = |body: String| {
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
            };
            let redirect =
                |to: String| (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
            match uri.path() {
                "/" => html(page("Home", &["/moved.html", "/away.html", "/file.html"])),
                "/moved.html" => redirect("/target.html".to_string()),
                "/target.html" => html(page("Target", &[])),
                "/away.html" => redirect(format!("http://localhost:{port}/target.html")),
                "/file.html" => redirect("file:///etc/passwd".to_string()),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    (serve_on_loopback(app).await, other_name)
}

#[tokio::test]
async fn redirects_stay_on_the_site_and_refusals_say_why() {
    let (url, other_name) = redirecting_site().await;
    let mirror = tempfile::tempdir().expect("tempdir");
    let report = crawl(&url, mirror.path(), &options(100, 2))
        .await
        .expect("crawl");
    // The redirect on the site is followed; the page is kept under the URL that was linked.
    assert!(mirror.path().join("moved.html").is_file(), "{report:?}");
    assert_eq!(report.fetched, 2, "{report:?}");
    // Another host name for the same address is another site: never requested.
    assert_eq!(other_name.load(Ordering::SeqCst), 0);
    assert_eq!(report.skipped_other, 2, "{report:?}");
    let reason = |path: &str| {
        report
            .problems
            .iter()
            .find(|problem| problem.url.ends_with(path))
            .map(|problem| (problem.outcome, problem.reason.clone()))
            .unwrap_or_else(|| panic!("no problem for {path}: {report:?}"))
    };
    let (outcome, away) = reason("/away.html");
    assert_eq!(outcome, "skipped");
    assert!(
        away.contains("off the site") && away.contains("localhost"),
        "{away}"
    );
    let (outcome, file) = reason("/file.html");
    assert_eq!(outcome, "skipped");
    assert!(
        file.contains("file:///etc/passwd") && file.contains("http"),
        "{file}"
    );
}
