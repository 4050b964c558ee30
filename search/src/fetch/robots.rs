//! `robots.txt` per origin, fetched once and cached for an hour, parsed by the crawl's
//! [`Robots`](crate::crawl::Robots) parser. Concurrent fetches of pages on one origin share one
//! `robots.txt` request.
//!
//! As RFC 9309 says: a 4xx answer (no file) allows everything; a 5xx answer disallows
//! everything until the entry expires. A network failure allows everything: the page request
//! that follows fails on its own.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;
use url::Url;

use crate::crawl::Robots;

/// Largest `robots.txt` read; the rest is ignored.
pub(crate) const MAX_ROBOTS_BYTES: usize = 512 * 1024;
const ROBOTS_TTL: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub(crate) struct RobotsCache {
    entries: moka::sync::Cache<String, Arc<OnceCell<Arc<Robots>>>>,
}

impl RobotsCache {
    pub(crate) fn new() -> RobotsCache {
        RobotsCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(4096)
                .time_to_live(ROBOTS_TTL)
                .build(),
        }
    }

    /// The rules of `url`'s origin, running `load` (which fetches `robots.txt`) at most once per
    /// origin while the entry lives.
    pub(crate) async fn rules<F, Fut>(&self, url: &Url, load: F) -> Arc<Robots>
    where
        F: FnOnce(Url) -> Fut,
        Fut: std::future::Future<Output = Robots>,
    {
        let origin = url.origin().ascii_serialization();
        let cell = self.entries.get_with(origin, || Arc::new(OnceCell::new()));
        let robots_url = {
            let mut robots_url = url.clone();
            robots_url.set_path("/robots.txt");
            robots_url.set_query(None);
            robots_url.set_fragment(None);
            robots_url
        };
        Arc::clone(
            cell.get_or_init(|| async move { Arc::new(load(robots_url).await) })
                .await,
        )
    }
}

/// The path and query that robots rules are matched against.
pub(crate) fn robots_path(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

/// Rules that forbid everything (a `robots.txt` answered with a server error).
pub(crate) fn disallow_all(agent: &str) -> Robots {
    Robots::parse("User-agent: *\nDisallow: /\n", agent)
}
