//! The page fetcher and its SSRF guard against local servers: literal and resolved private
//! addresses, redirects to them, endless redirects, huge and binary bodies, broken encodings,
//! stalls, robots.txt.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiex_search::fetch::{
    FetchError, FetchSettings, NetPolicy, PageFetcher, PageKind, StaticResolver,
};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const OTHER_LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

struct Site {
    /// Requests other than robots.txt.
    hits: AtomicUsize,
    /// Base URL (`http://127.0.0.2:PORT`) of a second server on another loopback address.
    other: String,
    other_port: u16,
}

fn html(body: impl Into<Body>, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

fn redirect(location: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn serve(State(site): State<Arc<Site>>, uri: Uri) -> Response {
    let path = uri.path();
    if path != "/robots.txt" {
        site.hits.fetch_add(1, Ordering::SeqCst);
    }
    match path {
        "/robots.txt" => "User-agent: *\nDisallow: /private/\n".into_response(),
        "/page.html" => html(
            "<!doctype html><html><head><title>Task scheduling</title></head><body>\
             <nav class=\"sidebar\">Menu entries</nav><main><h1>Task scheduling</h1>\
             <p>Tokio uses a work-stealing scheduler.</p><h2>Thread pool size</h2>\
             <p>One worker per core by default.</p></main></body></html>",
            "text/html; charset=utf-8",
        ),
        "/private/secret.html" => html("<p>secret</p>", "text/html"),
        "/guide.md" => html(
            "# Guide\n\nIntro.\n\n## Install\n\nRun `cargo add tokio`.\n",
            "text/markdown; charset=utf-8",
        ),
        // No Content-Type at all: the body is sniffed.
        "/undeclared" => Response::new(Body::from(
            "<html><head><title>No type</title></head><body><p>Sniffed.</p></body></html>",
        )),
        "/latin1.html" => html(
            &b"<html><head><meta charset=\"iso-8859-1\"><title>Caf\xe9</title></head>\
               <body><p>Cr\xe8me br\xfbl\xe9e recipe.</p></body></html>"[..],
            "text/html",
        ),
        "/broken-utf8.txt" => html(
            &b"valid start \xff\xfe\xc3 broken middle \xe2\x82 end caf\xc3\xa9"[..],
            "text/plain; charset=utf-8",
        ),
        "/image.png" => html(&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], "image/png"),
        "/lying.html" => html(
            &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10binary pretending to be html"[..],
            "text/html",
        ),
        "/huge.html" => {
            // An endless body: only the size limit ends the read.
            let chunk = bytes_of("<p>lorem ipsum dolor sit amet</p>\n".repeat(256));
            let stream =
                futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            html(Body::from_stream(stream), "text/html; charset=utf-8")
        }
        "/stall" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "too late".into_response()
        }
        "/stall-body" => {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(bytes_of("<html><body><p>start".to_string()))
            });
            let never = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, std::io::Error>(bytes_of("</p></body></html>".to_string()))
            });
            html(Body::from_stream(first.chain(never)), "text/html")
        }
        "/loop" => redirect("/loop".to_string()),
        "/to-page" => redirect("/page.html".to_string()),
        "/to-private-ip" => redirect("http://10.0.0.1/".to_string()),
        "/to-metadata" => redirect("http://169.254.169.254/latest/meta-data/".to_string()),
        "/to-other-loopback" => redirect(format!("{}/page.html", site.other)),
        "/to-mapped" => redirect(format!(
            "http://[::ffff:127.0.0.2]:{}/page.html",
            site.other_port
        )),
        "/to-internal-name" => redirect(format!(
            "http://internal.example.com:{}/page.html",
            site.other_port
        )),
        "/to-ftp" => redirect("ftp://example.com/file".to_string()),
        _ => {
            if let Some(n) = path
                .strip_prefix("/hop/")
                .and_then(|n| n.parse::<u32>().ok())
            {
                return redirect(format!("/hop/{}", n + 1));
            }
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

fn bytes_of(text: String) -> axum::body::Bytes {
    axum::body::Bytes::from(text)
}

async fn spawn(ip: IpAddr, site: Arc<Site>) -> SocketAddr {
    let app = axum::Router::new().fallback(serve).with_state(site);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// The main site on 127.0.0.1 and a second one on 127.0.0.2, with their hit counters.
async fn sites() -> (SocketAddr, Arc<Site>, Arc<Site>) {
    let other_site = Arc::new(Site {
        hits: AtomicUsize::new(0),
        other: String::new(),
        other_port: 0,
    });
    let other_addr = spawn(OTHER_LOOPBACK, Arc::clone(&other_site)).await;
    let site = Arc::new(Site {
        hits: AtomicUsize::new(0),
        other: format!("http://{other_addr}"),
        other_port: other_addr.port(),
    });
    let addr = spawn(LOOPBACK, Arc::clone(&site)).await;
    (addr, site, other_site)
}

/// Settings for tests: short limits, no per-host delay, only `net` reachable.
fn settings(net: NetPolicy) -> FetchSettings {
    FetchSettings {
        timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        max_bytes: 64 * 1024,
        per_host_delay: Duration::ZERO,
        net,
        ..FetchSettings::default()
    }
}

/// A fetcher that may reach the main test server (127.0.0.1) and nothing else private.
fn fetcher() -> PageFetcher {
    PageFetcher::new(settings(NetPolicy::strict().allow_addr(LOOPBACK))).expect("fetcher")
}

fn base(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

#[tokio::test]
async fn reads_html_markdown_and_text_pages() {
    let (addr, _, _) = sites().await;
    let fetcher = fetcher();
    let page = fetcher
        .fetch(&format!("{}/page.html", base(addr)))
        .await
        .expect("page");
    assert_eq!(page.status, 200);
    assert_eq!(page.kind, PageKind::Html);
    assert_eq!(page.content_type, "text/html");
    assert_eq!(page.title.as_deref(), Some("Task scheduling"));
    assert!(page.text().contains("work-stealing scheduler"));
    assert!(!page.text().contains("Menu entries"), "chrome removed");
    assert!(page
        .sections
        .iter()
        .any(|s| s.heading.as_deref() == Some("Task scheduling")));
    assert!(page.bytes > 100 && !page.truncated);
    assert!(page.fetched_at_ms > 1_600_000_000_000);

    let redirected = fetcher
        .fetch(&format!("{}/to-page", base(addr)))
        .await
        .expect("redirected page");
    assert!(redirected.final_url.ends_with("/page.html"));
    assert!(redirected.url.ends_with("/to-page"));

    let markdown = fetcher
        .fetch(&format!("{}/guide.md", base(addr)))
        .await
        .expect("markdown");
    assert_eq!(markdown.kind, PageKind::Markdown);
    assert_eq!(markdown.title.as_deref(), Some("Guide"));
    assert!(markdown.text().contains("cargo add tokio"));

    let sniffed = fetcher
        .fetch(&format!("{}/undeclared", base(addr)))
        .await
        .expect("undeclared type");
    assert_eq!(sniffed.kind, PageKind::Html);
    assert_eq!(sniffed.content_type, "text/html");
    assert_eq!(sniffed.title.as_deref(), Some("No type"));

    let missing = fetcher.fetch(&format!("{}/missing", base(addr))).await;
    assert!(
        matches!(missing, Err(FetchError::Http { status: 404, .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn literal_private_hosts_are_blocked() {
    let (addr, site, _) = sites().await;
    let strict = PageFetcher::new(settings(NetPolicy::strict())).expect("fetcher");
    let port = addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/page.html"),
        format!("http://localhost:{port}/page.html"),
        format!("http://[::1]:{port}/page.html"),
        format!("http://[::ffff:127.0.0.1]:{port}/page.html"),
        format!("http://[::ffff:7f00:1]:{port}/page.html"),
        format!("http://2130706433:{port}/page.html"),
        format!("http://0x7f.0.0.1:{port}/page.html"),
        format!("http://0.0.0.0:{port}/page.html"),
        "http://10.0.0.1/".to_string(),
        "http://172.16.5.4/".to_string(),
        "http://192.168.1.1/".to_string(),
        "http://100.64.0.1/".to_string(),
        "http://169.254.10.10/".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_string(),
        "http://metadata.google.internal/computeMetadata/v1/".to_string(),
        "http://[fe80::1]/".to_string(),
        "http://[fc00::1]/".to_string(),
        "http://[::ffff:169.254.169.254]/".to_string(),
        "http://224.0.0.1/".to_string(),
        "ftp://example.com/file".to_string(),
        "file:///etc/passwd".to_string(),
    ] {
        let result = strict.fetch(&url).await;
        assert!(
            matches!(result, Err(FetchError::Blocked { .. })),
            "{url}: {result:?}"
        );
    }
    assert_eq!(
        site.hits.load(Ordering::SeqCst),
        0,
        "no request got through"
    );
    // The escape hatch opens private networks but never the metadata service.
    let intranet =
        PageFetcher::new(settings(NetPolicy::strict().allow_private_hosts(true))).expect("fetcher");
    intranet
        .fetch(&format!("http://127.0.0.1:{port}/page.html"))
        .await
        .expect("allowed with allow_private_hosts");
    let metadata = intranet
        .fetch("http://169.254.169.254/latest/meta-data/")
        .await;
    assert!(matches!(metadata, Err(FetchError::Blocked { .. })));
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_blocked() {
    let (addr, site, _) = sites().await;
    let resolver = StaticResolver::new()
        .with("docs.example.com", &[LOOPBACK])
        .with(
            "mixed.example.com",
            &["93.184.216.34".parse().expect("ip"), LOOPBACK],
        );
    let strict =
        PageFetcher::with_resolver(settings(NetPolicy::strict()), Arc::new(resolver.clone()))
            .expect("fetcher");
    for host in ["docs.example.com", "mixed.example.com"] {
        let url = format!("http://{host}:{}/page.html", addr.port());
        let result = strict.fetch(&url).await;
        match result {
            Err(FetchError::Blocked { reason, .. }) => {
                assert!(reason.contains("127.0.0.1"), "{reason}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    assert_eq!(site.hits.load(Ordering::SeqCst), 0);
    // Control: the same name, with the address allowed, connects through the injected resolver.
    let allowed = PageFetcher::with_resolver(
        settings(NetPolicy::strict().allow_addr(LOOPBACK)),
        Arc::new(resolver),
    )
    .expect("fetcher");
    let page = allowed
        .fetch(&format!(
            "http://docs.example.com:{}/page.html",
            addr.port()
        ))
        .await
        .expect("allowed address");
    assert_eq!(page.title.as_deref(), Some("Task scheduling"));
}

#[tokio::test]
async fn redirects_to_private_addresses_are_blocked() {
    let (addr, _, other) = sites().await;
    let resolver = StaticResolver::new().with("internal.example.com", &[OTHER_LOOPBACK]);
    let fetcher = PageFetcher::with_resolver(
        settings(NetPolicy::strict().allow_addr(LOOPBACK)),
        Arc::new(resolver),
    )
    .expect("fetcher");
    for path in [
        "/to-private-ip",
        "/to-metadata",
        "/to-other-loopback",
        "/to-mapped",
        "/to-internal-name",
        "/to-ftp",
    ] {
        let result = fetcher.fetch(&format!("{}{path}", base(addr))).await;
        assert!(
            matches!(result, Err(FetchError::Blocked { .. })),
            "{path}: {result:?}"
        );
    }
    assert_eq!(
        other.hits.load(Ordering::SeqCst),
        0,
        "the second loopback server was never reached"
    );
    // Control: allowing the second address too, the same redirects reach it.
    let both = PageFetcher::with_resolver(
        settings(
            NetPolicy::strict()
                .allow_addr(LOOPBACK)
                .allow_addr(OTHER_LOOPBACK),
        ),
        Arc::new(StaticResolver::new().with("internal.example.com", &[OTHER_LOOPBACK])),
    )
    .expect("fetcher");
    for path in ["/to-other-loopback", "/to-mapped", "/to-internal-name"] {
        let page = both
            .fetch(&format!("{}{path}", base(addr)))
            .await
            .expect("allowed redirect");
        assert_eq!(page.title.as_deref(), Some("Task scheduling"), "{path}");
    }
    assert_eq!(other.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn endless_redirects_stop() {
    let (addr, site, _) = sites().await;
    let fetcher = fetcher();
    for path in ["/loop", "/hop/0"] {
        let result = fetcher.fetch(&format!("{}{path}", base(addr))).await;
        assert!(
            matches!(result, Err(FetchError::TooManyRedirects { limit: 5, .. })),
            "{path}: {result:?}"
        );
    }
    assert_eq!(
        site.hits.load(Ordering::SeqCst),
        12,
        "six requests per chain"
    );
}

#[tokio::test]
async fn huge_bodies_are_cut_or_refused() {
    let (addr, _, _) = sites().await;
    let url = format!("{}/huge.html", base(addr));
    let page = fetcher().fetch(&url).await.expect("cut page");
    assert!(page.truncated);
    assert_eq!(page.bytes, 64 * 1024);
    assert!(page.text().contains("lorem ipsum"));
    let strict_size = PageFetcher::new(FetchSettings {
        truncate_oversize: false,
        ..settings(NetPolicy::strict().allow_addr(LOOPBACK))
    })
    .expect("fetcher");
    let result = strict_size.fetch(&url).await;
    assert!(
        matches!(result, Err(FetchError::TooLarge { limit: 65536, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn binary_content_is_refused() {
    let (addr, _, _) = sites().await;
    let fetcher = fetcher();
    for path in ["/image.png", "/lying.html"] {
        let result = fetcher.fetch(&format!("{}{path}", base(addr))).await;
        assert!(
            matches!(result, Err(FetchError::UnsupportedContentType { .. })),
            "{path}: {result:?}"
        );
    }
}

#[tokio::test]
async fn broken_and_legacy_encodings_are_decoded() {
    let (addr, _, _) = sites().await;
    let fetcher = fetcher();
    let latin1 = fetcher
        .fetch(&format!("{}/latin1.html", base(addr)))
        .await
        .expect("latin-1 page");
    assert_eq!(latin1.charset, "windows-1252");
    assert_eq!(latin1.title.as_deref(), Some("Café"));
    assert!(latin1.text().contains("Crème brûlée"), "{}", latin1.text());
    let broken = fetcher
        .fetch(&format!("{}/broken-utf8.txt", base(addr)))
        .await
        .expect("broken utf-8");
    assert_eq!(broken.kind, PageKind::Text);
    let text = broken.text();
    assert!(text.contains('\u{fffd}'));
    assert!(
        text.starts_with("valid start") && text.ends_with("end café"),
        "{text}"
    );
}

#[tokio::test]
async fn stalled_servers_time_out() {
    let (addr, _, _) = sites().await;
    let fetcher = PageFetcher::new(FetchSettings {
        timeout: Duration::from_millis(400),
        ..settings(NetPolicy::strict().allow_addr(LOOPBACK))
    })
    .expect("fetcher");
    for path in ["/stall", "/stall-body"] {
        let started = Instant::now();
        let result = fetcher.fetch(&format!("{}{path}", base(addr))).await;
        assert!(
            matches!(result, Err(FetchError::Timeout { .. })),
            "{path}: {result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "{path}");
    }
}

#[tokio::test]
async fn robots_txt_is_obeyed() {
    let (addr, site, _) = sites().await;
    let url = format!("{}/private/secret.html", base(addr));
    let result = fetcher().fetch(&url).await;
    assert!(
        matches!(result, Err(FetchError::RobotsDisallowed { .. })),
        "{result:?}"
    );
    assert_eq!(site.hits.load(Ordering::SeqCst), 0);
    let impolite = PageFetcher::new(FetchSettings {
        respect_robots: false,
        ..settings(NetPolicy::strict().allow_addr(LOOPBACK))
    })
    .expect("fetcher");
    impolite.fetch(&url).await.expect("robots ignored");
}

#[tokio::test]
async fn many_pages_in_order_with_host_spacing() {
    let (addr, _, _) = sites().await;
    let fetcher = PageFetcher::new(FetchSettings {
        per_host_delay: Duration::from_millis(150),
        ..settings(NetPolicy::strict().allow_addr(LOOPBACK))
    })
    .expect("fetcher");
    let urls = [
        format!("{}/page.html", base(addr)),
        "http://10.0.0.1/".to_string(),
        format!("{}/guide.md", base(addr)),
        format!("{}/image.png", base(addr)),
    ];
    let started = Instant::now();
    let results = fetcher.fetch_many(&urls, 4).await;
    assert_eq!(results.len(), 4);
    assert!(results[0].as_ref().is_ok_and(|p| p.kind == PageKind::Html));
    assert!(matches!(results[1], Err(FetchError::Blocked { .. })));
    assert!(results[2]
        .as_ref()
        .is_ok_and(|p| p.kind == PageKind::Markdown));
    assert!(matches!(
        results[3],
        Err(FetchError::UnsupportedContentType { .. })
    ));
    // robots.txt and three pages on one host: at least three gaps of 150 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn config_section_drives_the_guard() {
    let (addr, _, _) = sites().await;
    let url = format!("{}/page.html", base(addr));
    let mut config = aiex_config::Config::default();
    config.fetch.per_host_delay_ms = 0;
    let strict = PageFetcher::from_config(&config).expect("fetcher");
    assert!(matches!(
        strict.fetch(&url).await,
        Err(FetchError::Blocked { .. })
    ));
    config.fetch.allow_private_hosts = true;
    config.fetch.max_bytes = 100;
    let intranet = PageFetcher::from_config(&config).expect("fetcher");
    let page = intranet.fetch(&url).await.expect("intranet page");
    assert!(page.truncated && page.bytes == 100);
}
