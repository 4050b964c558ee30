//! A bounded, polite crawl of a documentation site into a local mirror that the indexer then
//! indexes as a `docs` collection: same host only, depth and page limits, `robots.txt` honoured,
//! a delay between requests, size and content-type limits.
//!
//! A crawl runs in phases: the start URL is checked and `robots.txt` read, then pages are taken
//! breadth-first from the frontier; each allowed one is fetched (`fetch_page`; redirects are
//! followed only while they stay on the site, `get_on_site`), written to the
//! mirror (`mirror`), and below the depth limit its links are extracted (`links`) and the
//! unseen ones on the same site enqueued. The crawl runs on the caller's async runtime; file-system
//! calls and link extraction run on the blocking pool.

mod links;
mod mirror;
mod robots;

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use url::{Origin, Url};

use crate::fetch::guard::{find_cause, guarded_client_builder, Blocked};
use crate::fetch::{NetPolicy, SystemResolver};

pub use robots::Robots;

/// Limits of one crawl.
#[derive(Debug, Clone)]
pub struct CrawlOptions {
    /// Most pages fetched.
    pub max_pages: usize,
    /// Most link hops from the start page.
    pub max_depth: usize,
    /// Pause between two requests to the site.
    pub delay: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Pages larger than this are skipped.
    pub max_page_bytes: usize,
    pub user_agent: String,
    /// Which addresses the crawl may reach (the SSRF guard); strict by default.
    pub net: NetPolicy,
}

impl Default for CrawlOptions {
    fn default() -> Self {
        CrawlOptions {
            max_pages: 200,
            max_depth: 3,
            delay: Duration::from_millis(250),
            timeout: Duration::from_secs(10),
            max_page_bytes: 4 * 1024 * 1024,
            user_agent: concat!("aiex/", env!("CARGO_PKG_VERSION")).to_string(),
            net: NetPolicy::strict(),
        }
    }
}

/// What a crawl did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CrawlReport {
    pub fetched: usize,
    pub skipped_robots: usize,
    pub skipped_other: usize,
    pub failed: usize,
    /// Why pages were skipped or failed (robots.txt refusals aside), the first
    /// [`MAX_PROBLEMS`] of them.
    pub problems: Vec<CrawlProblem>,
}

/// A page not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CrawlProblem {
    pub url: String,
    /// `skipped` (not kept by a rule: off the site, not HTML, too large) or `failed`.
    pub outcome: &'static str,
    pub reason: String,
}

/// Most problems a report lists.
pub const MAX_PROBLEMS: usize = 50;

/// Most redirects followed for one page.
const MAX_REDIRECTS: usize = 5;

impl CrawlReport {
    fn problem(&mut self, url: &Url, outcome: &'static str, reason: String) {
        tracing::info!(url = %url, outcome, "{reason}");
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(CrawlProblem {
                url: url.to_string(),
                outcome,
                reason,
            });
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error("invalid start URL `{0}`: only http and https URLs with a host can be crawled")]
    InvalidUrl(String),
    #[error("cannot write the mirror at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("http client: {0}")]
    Client(String),
    #[error("refused to crawl: {0}")]
    Blocked(String),
}

/// Crawls from `start` into `mirror` (created; pages are written as they come).
pub async fn crawl(
    start: &str,
    mirror: &Path,
    options: &CrawlOptions,
) -> Result<CrawlReport, CrawlError> {
    let start_url = start_url(start, &options.net)?;
    let client = build_client(options)?;
    let robots = read_robots(&client, &start_url, &options.user_agent, &options.net).await?;
    mirror::create_mirror(mirror).await?;
    let mut frontier = Frontier::new(&start_url);
    let mut report = CrawlReport::default();
    // Each mirrored page's original URL, saved to the mirror's map as the crawl goes.
    let mut pages = aiex_indexer::page_urls::PageUrls::new();
    let mut first = true;
    while let Some((url, depth)) = frontier.queue.pop_front() {
        if report.fetched >= options.max_pages {
            break;
        }
        if !robots.allows(&path_and_query(&url)) {
            report.skipped_robots += 1;
            continue;
        }
        if !first {
            tokio::time::sleep(options.delay).await;
        }
        first = false;
        let is_start = url == start_url;
        let html = match fetch_page(&client, &url, is_start, &frontier.origin, options).await? {
            Fetched::Page(html) => html,
            Fetched::Skipped(reason) => {
                report.skipped_other += 1;
                report.problem(&url, "skipped", reason);
                continue;
            }
            Fetched::Failed(reason) => {
                report.failed += 1;
                report.problem(&url, "failed", reason);
                continue;
            }
        };
        let target = mirror::mirror_path(mirror, &url);
        if let Ok(relative) = target.strip_prefix(mirror) {
            pages.insert(relative.to_string_lossy().into_owned(), url.to_string());
        }
        mirror::write_page(target, Arc::clone(&html)).await?;
        report.fetched += 1;
        if pages.len() >= PAGE_URLS_BATCH {
            save_page_urls(mirror, std::mem::take(&mut pages)).await?;
        }
        if depth < options.max_depth {
            frontier.enqueue(page_links(html, url).await, depth + 1);
        }
    }
    save_page_urls(mirror, pages).await?;
    Ok(report)
}

/// Pages whose URLs are saved at a time.
const PAGE_URLS_BATCH: usize = 32;

/// Adds `pages` to the mirror's map of original URLs ([`aiex_indexer::page_urls`]).
async fn save_page_urls(
    mirror: &Path,
    pages: aiex_indexer::page_urls::PageUrls,
) -> Result<(), CrawlError> {
    if pages.is_empty() {
        return Ok(());
    }
    let root = mirror.to_path_buf();
    tokio::task::spawn_blocking(move || aiex_indexer::page_urls::merge(&root, &pages))
        .await
        .map_err(|err| CrawlError::Io {
            path: mirror.to_path_buf(),
            source: std::io::Error::other(err.to_string()),
        })?
        .map_err(|source| CrawlError::Io {
            path: mirror.join(aiex_indexer::page_urls::PAGE_URLS_FILE),
            source,
        })
}

/// The start URL, when it is an http(s) URL with a host that the SSRF guard lets through.
fn start_url(start: &str, net: &NetPolicy) -> Result<Url, CrawlError> {
    let start_url = Url::parse(start)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .ok_or_else(|| CrawlError::InvalidUrl(start.to_string()))?;
    net.check_url(&start_url)
        .map_err(|blocked| CrawlError::Blocked(blocked.to_string()))?;
    Ok(start_url)
}

/// The HTTP client, behind the SSRF guard (every resolved address checked). It follows no
/// redirect: [`get_on_site`] follows those that stay on the site.
fn build_client(options: &CrawlOptions) -> Result<reqwest::Client, CrawlError> {
    guarded_client_builder(&options.net, Arc::new(SystemResolver), None)
        .user_agent(options.user_agent.clone())
        .timeout(options.timeout)
        .build()
        .map_err(|err| CrawlError::Client(err.to_string()))
}

/// The site's `robots.txt` rules for `user_agent`; none when it cannot be read.
async fn read_robots(
    client: &reqwest::Client,
    start_url: &Url,
    user_agent: &str,
    net: &NetPolicy,
) -> Result<Robots, CrawlError> {
    let robots_url = start_url
        .join("/robots.txt")
        .map_err(|_| CrawlError::InvalidUrl(start_url.to_string()))?;
    Ok(
        match get_on_site(client, &robots_url, &start_url.origin(), net).await {
            Ok(response) if response.status().is_success() => {
                Robots::parse(&response.text().await.unwrap_or_default(), user_agent)
            }
            _ => Robots::default(),
        },
    )
}

/// The path of `url` with its query, as `robots.txt` rules match it.
fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

/// What fetching one page gave.
enum Fetched {
    /// An HTML page on the site, within the size limit.
    Page(Arc<str>),
    /// Not kept, and why: redirected off the site, not HTML, or too large.
    Skipped(String),
    /// The request or the body failed, and why.
    Failed(String),
}

/// Why [`get_on_site`] gave no response.
enum Refusal {
    /// A redirect left the site or the web: not followed.
    OffSite(String),
    /// The request failed, or the guard refused a redirect's target.
    Failed(reqwest::Error),
    /// A redirect without a usable `Location`, or too many of them.
    BadRedirect(String),
}

/// GETs `url`, following redirects only while they stay on the site (the same scheme, host name
/// and port as `origin`) and the guard allows them; never requests anything off the site.
async fn get_on_site(
    client: &reqwest::Client,
    url: &Url,
    origin: &Origin,
    net: &NetPolicy,
) -> Result<reqwest::Response, Refusal> {
    let mut current = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let response = client
            .get(current.clone())
            .send()
            .await
            .map_err(Refusal::Failed)?;
        if !response.status().is_redirection() {
            return Ok(response);
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                Refusal::BadRedirect(format!(
                    "{} redirect without a Location header",
                    response.status()
                ))
            })?;
        let next = current.join(location).map_err(|err| {
            Refusal::BadRedirect(format!("redirect to an invalid URL `{location}`: {err}"))
        })?;
        if !matches!(next.scheme(), "http" | "https") {
            return Err(Refusal::OffSite(format!(
                "redirected to `{next}`: only http and https pages are crawled"
            )));
        }
        if next.origin() != *origin {
            return Err(Refusal::OffSite(format!(
                "redirected off the site to `{next}` (the crawl stays on {})",
                origin.ascii_serialization()
            )));
        }
        if let Err(blocked) = net.check_url(&next) {
            return Err(Refusal::OffSite(format!("redirect refused: {blocked}")));
        }
        current = next;
    }
    Err(Refusal::BadRedirect(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// Fetches `url`. A start URL whose name resolves to a refused address ends the crawl clearly
/// (`CrawlError::Blocked`); any other failure is [`Fetched::Failed`].
async fn fetch_page(
    client: &reqwest::Client,
    url: &Url,
    is_start: bool,
    origin: &Origin,
    options: &CrawlOptions,
) -> Result<Fetched, CrawlError> {
    let response = match get_on_site(client, url, origin, &options.net).await {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => return Ok(Fetched::Failed(format!("HTTP {}", response.status()))),
        Err(Refusal::Failed(err)) if is_start && find_cause::<Blocked>(&err).is_some() => {
            let reason = find_cause::<Blocked>(&err).map(Blocked::to_string);
            return Err(CrawlError::Blocked(reason.unwrap_or_default()));
        }
        Err(Refusal::Failed(err)) => return Ok(Fetched::Failed(request_failure(&err))),
        Err(Refusal::OffSite(reason)) => return Ok(Fetched::Skipped(reason)),
        Err(Refusal::BadRedirect(reason)) => return Ok(Fetched::Failed(reason)),
    };
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("none")
        .to_string();
    if !content_type.contains("text/html") {
        return Ok(Fetched::Skipped(format!(
            "not HTML (content type {content_type})"
        )));
    }
    if let Some(length) = response
        .content_length()
        .filter(|&len| len as usize > options.max_page_bytes)
    {
        return Ok(Fetched::Skipped(format!(
            "{length} bytes, over the limit of {}",
            options.max_page_bytes
        )));
    }
    Ok(read_body(response, options.max_page_bytes).await)
}

/// A request failure in a few words: the guard's refusal, a timeout, or the error chain.
fn request_failure(err: &reqwest::Error) -> String {
    if let Some(blocked) = find_cause::<Blocked>(err) {
        return format!("refused: {blocked}");
    }
    if err.is_timeout() {
        return "timed out".to_string();
    }
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// Reads the body in chunks, so a page without `Content-Length` cannot grow past `max_bytes` in
/// memory.
async fn read_body(mut response: reqwest::Response, max_bytes: usize) -> Fetched {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_bytes {
                    return Fetched::Skipped(format!("over the limit of {max_bytes} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(err) => return Fetched::Failed(format!("reading the body: {err}")),
        }
    }
    Fetched::Page(Arc::from(String::from_utf8_lossy(&body)))
}

/// The links of a fetched page (parsing on the blocking pool).
async fn page_links(html: Arc<str>, url: Url) -> Vec<Url> {
    let page = url.clone();
    match tokio::task::spawn_blocking(move || links::extract_links(&html, &page)).await {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(url = %url, error = %err, "link extraction failed; no links followed");
            Vec::new()
        }
    }
}

/// Pages still to fetch, breadth-first, and every URL ever queued.
struct Frontier {
    origin: Origin,
    queue: VecDeque<(Url, usize)>,
    seen: HashSet<String>,
}

impl Frontier {
    fn new(start_url: &Url) -> Self {
        Frontier {
            origin: start_url.origin(),
            queue: VecDeque::from([(start_url.clone(), 0)]),
            seen: HashSet::from([start_url.as_str().to_string()]),
        }
    }

    /// Queues the links on the crawled site (same origin) not seen before, at `depth`.
    fn enqueue(&mut self, links: Vec<Url>, depth: usize) {
        for mut next in links {
            next.set_fragment(None);
            if next.origin() != self.origin {
                continue;
            }
            if self.seen.insert(next.as_str().to_string()) {
                self.queue.push_back((next, depth));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_keeps_the_site_and_skips_seen_urls() {
        let start = Url::parse("https://d.test/").expect("url");
        let mut frontier = Frontier::new(&start);
        frontier.queue.clear();
        let links = [
            "https://d.test/",
            "https://d.test/a.html",
            "https://d.test/a.html#part",
            "http://d.test/b.html",
            "https://d.test:8443/c.html",
            "https://other.test/d.html",
        ]
        .map(|link| Url::parse(link).expect("url"));
        frontier.enqueue(links.to_vec(), 1);
        let queued: Vec<(String, usize)> = frontier
            .queue
            .iter()
            .map(|(url, depth)| (url.to_string(), *depth))
            .collect();
        assert_eq!(queued, [("https://d.test/a.html".to_string(), 1)]);
    }

    #[test]
    fn robots_paths_keep_the_query() {
        let url = Url::parse("https://d.test/search?q=x#top").expect("url");
        assert_eq!(path_and_query(&url), "/search?q=x");
        let url = Url::parse("https://d.test/").expect("url");
        assert_eq!(path_and_query(&url), "/");
    }
}
