//! A bounded, polite crawl of a documentation site into a local mirror that the indexer then
//! indexes as a `docs` collection: same host only, depth and page limits, `robots.txt` honoured,
//! a delay between requests, size and content-type limits.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::fetch::guard::{find_cause, guarded_client_builder, Blocked};
use crate::fetch::{NetPolicy, SystemResolver};

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

/// `robots.txt` rules for our user agent (or `*`): the longest matching rule wins, `Allow` on a tie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Robots {
    rules: Vec<(bool, String)>,
}

impl Robots {
    /// Parses `text`, keeping the group that names `agent` (case-insensitive substring) or else `*`.
    pub fn parse(text: &str, agent: &str) -> Robots {
        let agent = agent.to_ascii_lowercase();
        let mut specific: Vec<(bool, String)> = Vec::new();
        let mut general: Vec<(bool, String)> = Vec::new();
        let mut group_agents: Vec<String> = Vec::new();
        let mut in_rules = false;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            let field = field.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            match field.as_str() {
                "user-agent" => {
                    if in_rules {
                        group_agents.clear();
                        in_rules = false;
                    }
                    group_agents.push(value.to_ascii_lowercase());
                }
                "allow" | "disallow" => {
                    in_rules = true;
                    if value.is_empty() {
                        continue;
                    }
                    let rule = (field == "allow", value);
                    if group_agents
                        .iter()
                        .any(|a| a != "*" && !a.is_empty() && agent.contains(a.as_str()))
                    {
                        specific.push(rule.clone());
                    }
                    if group_agents.iter().any(|a| a == "*") {
                        general.push(rule);
                    }
                }
                _ => {}
            }
        }
        Robots {
            rules: if specific.is_empty() {
                general
            } else {
                specific
            },
        }
    }

    /// Whether `path` (with its query) may be fetched.
    pub fn allows(&self, path: &str) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for (allow, prefix) in &self.rules {
            let pattern = prefix.trim_end_matches('$');
            let matches = if pattern.contains('*') {
                wildcard_prefix_match(pattern, path)
            } else {
                path.starts_with(pattern)
            };
            if matches {
                let better = match best {
                    None => true,
                    Some((length, allowed)) => {
                        prefix.len() > length || (prefix.len() == length && *allow && !allowed)
                    }
                };
                if better {
                    best = Some((prefix.len(), *allow));
                }
            }
        }
        best.is_none_or(|(_, allowed)| allowed)
    }
}

/// `*` matches any run of characters; the pattern is a prefix.
fn wildcard_prefix_match(pattern: &str, path: &str) -> bool {
    let mut rest = path;
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return true;
    };
    let Some(after) = rest.strip_prefix(first) else {
        return false;
    };
    rest = after;
    for part in parts {
        match rest.find(part) {
            Some(index) => rest = &rest[index + part.len()..],
            None => return false,
        }
    }
    true
}

/// The file a page is mirrored to: `<mirror>/<path>` with `index.html` for directories and
/// `.html` added when missing, so the indexer chunks it as HTML.
fn mirror_path(mirror: &Path, url: &Url) -> PathBuf {
    let mut relative: String = url
        .path()
        .trim_start_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != "." && *segment != "..")
        .collect::<Vec<_>>()
        .join("/");
    if relative.is_empty() || url.path().ends_with('/') {
        if !relative.is_empty() {
            relative.push('/');
        }
        relative.push_str("index.html");
    } else if !(relative.ends_with(".html") || relative.ends_with(".htm")) {
        relative.push_str(".html");
    }
    mirror.join(relative)
}

/// Crawls from `start` into `mirror` (created; pages are written as they come).
pub async fn crawl(
    start: &str,
    mirror: &Path,
    options: &CrawlOptions,
) -> Result<CrawlReport, CrawlError> {
    let start_url = Url::parse(start)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .ok_or_else(|| CrawlError::InvalidUrl(start.to_string()))?;
    options
        .net
        .check_url(&start_url)
        .map_err(|blocked| CrawlError::Blocked(blocked.to_string()))?;
    let client = guarded_client_builder(&options.net, Arc::new(SystemResolver), Some(5))
        .user_agent(options.user_agent.clone())
        .timeout(options.timeout)
        .build()
        .map_err(|err| CrawlError::Client(err.to_string()))?;
    let origin = start_url.origin();
    let robots = match client
        .get(
            start_url
                .join("/robots.txt")
                .map_err(|_| CrawlError::InvalidUrl(start.to_string()))?,
        )
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => Robots::parse(
            &response.text().await.unwrap_or_default(),
            &options.user_agent,
        ),
        _ => Robots::default(),
    };
    std::fs::create_dir_all(mirror).map_err(|source| CrawlError::Io {
        path: mirror.to_path_buf(),
        source,
    })?;
    let mut report = CrawlReport::default();
    let mut queue: VecDeque<(Url, usize)> = VecDeque::from([(start_url.clone(), 0)]);
    let mut seen: HashSet<String> = HashSet::from([start_url.as_str().to_string()]);
    let mut first = true;
    while let Some((url, depth)) = queue.pop_front() {
        if report.fetched >= options.max_pages {
            break;
        }
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        if !robots.allows(&path_and_query) {
            report.skipped_robots += 1;
            continue;
        }
        if !first {
            tokio::time::sleep(options.delay).await;
        }
        first = false;
        let response = match client.get(url.clone()).send().await {
            Ok(response) if response.status().is_success() => response,
            // A start URL whose name resolves to a refused address ends the crawl clearly.
            Err(err) if url == start_url && find_cause::<Blocked>(&err).is_some() => {
                let reason = find_cause::<Blocked>(&err).map(Blocked::to_string);
                return Err(CrawlError::Blocked(reason.unwrap_or_default()));
            }
            _ => {
                report.failed += 1;
                continue;
            }
        };
        // Redirects may leave the site: what is not on it is not kept.
        if response.url().origin() != origin {
            report.skipped_other += 1;
            continue;
        }
        let is_html = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("text/html"));
        if !is_html
            || response
                .content_length()
                .is_some_and(|len| len as usize > options.max_page_bytes)
        {
            report.skipped_other += 1;
            continue;
        }
        // Read in chunks so a page without Content-Length cannot grow past the limit in memory.
        let mut response = response;
        let mut body = Vec::new();
        let mut too_large = false;
        let mut failed = false;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > options.max_page_bytes {
                        too_large = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            report.failed += 1;
            continue;
        }
        if too_large {
            report.skipped_other += 1;
            continue;
        }
        let html = String::from_utf8_lossy(&body).into_owned();
        let target = mirror_path(mirror, &url);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CrawlError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&target, &html).map_err(|source| CrawlError::Io {
            path: target.clone(),
            source,
        })?;
        report.fetched += 1;
        if depth >= options.max_depth {
            continue;
        }
        for link in aiex_indexer::chunk::extract_links(&html, url.as_str()) {
            let Ok(mut next) = Url::parse(&link) else {
                continue;
            };
            next.set_fragment(None);
            if next.origin() != origin {
                continue;
            }
            if seen.insert(next.as_str().to_string()) {
                queue.push_back((next, depth + 1));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robots_rules() {
        let robots = Robots::parse(
            "User-agent: *\nDisallow: /private/\nAllow: /private/open\nDisallow: /*.pdf$\n\nUser-agent: otherbot\nDisallow: /\n",
            "aiex/0.1.0",
        );
        assert!(robots.allows("/guide/index.html"));
        assert!(!robots.allows("/private/secret.html"));
        assert!(robots.allows("/private/open/page.html"));
        assert!(!robots.allows("/files/book.pdf"));
        let specific = Robots::parse(
            "User-agent: aiex\nDisallow: /\nUser-agent: *\nDisallow:\n",
            "aiex/0.1.0",
        );
        assert!(!specific.allows("/anything"));
        assert!(Robots::parse("", "aiex").allows("/x"));
    }

    #[test]
    fn mirror_paths_stay_inside() {
        let mirror = Path::new("/m");
        let path = |u: &str| mirror_path(mirror, &Url::parse(u).expect("url"));
        assert_eq!(path("https://d.test/"), Path::new("/m/index.html"));
        assert_eq!(
            path("https://d.test/book/ch1.html"),
            Path::new("/m/book/ch1.html")
        );
        assert_eq!(path("https://d.test/api/"), Path::new("/m/api/index.html"));
        assert_eq!(
            path("https://d.test/api/Mutex"),
            Path::new("/m/api/Mutex.html")
        );
        assert_eq!(
            path("https://d.test/a/../../etc/passwd"),
            Path::new("/m/etc/passwd.html")
        );
    }
}
