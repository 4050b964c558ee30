//! The page fetcher: the request loop (guard, robots, per-host spacing, redirects), the bounded
//! body read, and extraction.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aiex_indexer::chunk::ChunkOptions;
use futures_util::StreamExt;
use url::Url;

use super::decode;
use super::extract::extract;
use super::guard::{find_cause, guarded_client_builder, Blocked, HostResolver, NetPolicy};
use super::robots::{disallow_all, robots_path, RobotsCache, MAX_ROBOTS_BYTES};
use super::{FetchError, FetchedPage};
use crate::crawl::Robots;

/// Everything a [`PageFetcher`] obeys. [`FetchSettings::from_config`] reads `[fetch]`.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Total time of one fetch: robots.txt, waits, connects, redirects and body.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Largest body read.
    pub max_bytes: usize,
    /// Cut a larger body at `max_bytes` (true) or fail with [`FetchError::TooLarge`] (false).
    pub truncate_oversize: bool,
    pub max_redirects: usize,
    pub user_agent: String,
    /// Which addresses may be reached.
    pub net: NetPolicy,
    pub respect_robots: bool,
    /// Least time between the starts of two requests to one host.
    pub per_host_delay: Duration,
    /// Default batch concurrency of [`PageFetcher::fetch_many`].
    pub concurrency: usize,
    /// Section sizes of the extracted text.
    pub chunk: ChunkOptions,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings::from_config(&aiex_config::Config::default())
    }
}

impl FetchSettings {
    pub fn from_config(config: &aiex_config::Config) -> FetchSettings {
        let fetch = &config.fetch;
        FetchSettings {
            timeout: Duration::from_millis(fetch.timeout_ms),
            connect_timeout: Duration::from_millis(fetch.connect_timeout_ms),
            max_bytes: usize::try_from(fetch.max_bytes).unwrap_or(usize::MAX),
            truncate_oversize: true,
            max_redirects: fetch.max_redirects as usize,
            user_agent: fetch.user_agent.clone(),
            net: NetPolicy::from_config(fetch),
            respect_robots: fetch.respect_robots,
            per_host_delay: Duration::from_millis(fetch.per_host_delay_ms),
            concurrency: fetch.concurrency.max(1),
            chunk: ChunkOptions {
                max_tokens: config.chunk.max_tokens,
                min_tokens: config.chunk.min_tokens,
                window_lines: config.chunk.window_lines,
                window_overlap: config.chunk.window_overlap,
            },
        }
    }
}

/// Fetches pages safely; cheap to clone (one client, robots cache and host gates shared).
#[derive(Clone)]
pub struct PageFetcher {
    inner: Arc<Inner>,
}

struct Inner {
    settings: FetchSettings,
    client: reqwest::Client,
    robots: RobotsCache,
    /// Per host: when its last request started.
    gates: moka::sync::Cache<String, Arc<tokio::sync::Mutex<Option<Instant>>>>,
}

impl std::fmt::Debug for PageFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageFetcher")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// The outcome of one hop's request.
enum Hop {
    Redirect(Url),
    Final(reqwest::Response),
}

impl PageFetcher {
    /// A fetcher with the `[fetch]` settings of `config` and the system resolver.
    pub fn from_config(config: &aiex_config::Config) -> Result<PageFetcher, FetchError> {
        PageFetcher::new(FetchSettings::from_config(config))
    }

    /// A fetcher using the system resolver.
    pub fn new(settings: FetchSettings) -> Result<PageFetcher, FetchError> {
        PageFetcher::with_resolver(settings, Arc::new(super::guard::SystemResolver))
    }

    /// A fetcher resolving names through `resolver` (tests, pinned hosts); every address it
    /// returns is still checked by the guard.
    pub fn with_resolver(
        settings: FetchSettings,
        resolver: Arc<dyn HostResolver>,
    ) -> Result<PageFetcher, FetchError> {
        let client = guarded_client_builder(&settings.net, resolver, None)
            .user_agent(settings.user_agent.clone())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .build()
            .map_err(|err| FetchError::Client(err.to_string()))?;
        Ok(PageFetcher {
            inner: Arc::new(Inner {
                settings,
                client,
                robots: RobotsCache::new(),
                gates: moka::sync::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_idle(Duration::from_secs(600))
                    .build(),
            }),
        })
    }

    pub fn settings(&self) -> &FetchSettings {
        &self.inner.settings
    }

    /// Fetches, checks, decodes and extracts one page.
    pub async fn fetch(&self, url: &str) -> Result<FetchedPage, FetchError> {
        let parsed = Url::parse(url.trim()).map_err(|err| FetchError::InvalidUrl {
            url: url.to_string(),
            reason: err.to_string(),
        })?;
        let timeout = self.inner.settings.timeout;
        match tokio::time::timeout(timeout, self.fetch_within(url, parsed)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: url.to_string(),
                after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Fetches `urls`, at most `concurrency` at once (0: the configured concurrency); the
    /// results are in the order of `urls`.
    pub async fn fetch_many<I, S>(
        &self,
        urls: I,
        concurrency: usize,
    ) -> Vec<Result<FetchedPage, FetchError>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let limit = if concurrency == 0 {
            self.inner.settings.concurrency
        } else {
            concurrency
        };
        let owned: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_string()).collect();
        futures_util::stream::iter(owned)
            .map(|url| async move { self.fetch(&url).await })
            .buffered(limit.max(1))
            .collect()
            .await
    }

    async fn fetch_within(&self, asked: &str, start: Url) -> Result<FetchedPage, FetchError> {
        let settings = &self.inner.settings;
        let mut current = start;
        let mut redirects = 0usize;
        let response = loop {
            self.check(&current).await?;
            match self.request(&current).await? {
                Hop::Final(response) => break response,
                Hop::Redirect(next) => {
                    redirects += 1;
                    if redirects > settings.max_redirects {
                        return Err(FetchError::TooManyRedirects {
                            url: asked.to_string(),
                            limit: settings.max_redirects,
                        });
                    }
                    current = next;
                }
            }
        };
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Http {
                url: current.to_string(),
                status: status.as_u16(),
            });
        }
        let media = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(decode::parse_content_type)
            .unwrap_or_default();
        let declared_kind = decode::kind_of_media_type(&media.essence).map_err(|()| {
            FetchError::UnsupportedContentType {
                url: current.to_string(),
                content_type: media.essence.clone(),
            }
        })?;
        let (body, truncated) = self
            .read_body(response, &current, media.charset.as_deref())
            .await?;
        let fetched_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let final_url = current.to_string();
        let chunk_options = settings.chunk.clone();
        let path = current.path().to_string();
        let extracted = tokio::task::spawn_blocking(move || {
            extract(&body, declared_kind, media, &path, &chunk_options)
        })
        .await
        .map_err(|err| FetchError::Decode {
            url: final_url.clone(),
            message: format!("extraction worker failed: {err}"),
        })?;
        Ok(FetchedPage {
            url: asked.to_string(),
            final_url,
            status: status.as_u16(),
            content_type: extracted.content_type,
            kind: extracted.kind,
            charset: extracted.charset.to_string(),
            title: extracted.title,
            sections: extracted.sections,
            bytes: extracted.bytes,
            truncated,
            fetched_at_ms,
        })
    }

    /// The guard's URL check and robots.txt, before a hop is requested.
    async fn check(&self, url: &Url) -> Result<(), FetchError> {
        self.inner
            .settings
            .net
            .check_url(url)
            .map_err(|blocked| blocked_error(url, &blocked))?;
        if self.inner.settings.respect_robots {
            let robots = self
                .inner
                .robots
                .rules(url, |robots_url| self.load_robots(robots_url))
                .await;
            if !robots.allows(&robots_path(url)) {
                return Err(FetchError::RobotsDisallowed {
                    url: url.to_string(),
                });
            }
        }
        Ok(())
    }

    /// One request without following redirects; a redirect answer gives the next URL.
    async fn request(&self, url: &Url) -> Result<Hop, FetchError> {
        self.wait_turn(url).await;
        let response = self
            .inner
            .client
            .get(url.clone())
            .header(
                reqwest::header::ACCEPT,
                "text/html, application/xhtml+xml, text/markdown;q=0.9, text/plain;q=0.8",
            )
            .send()
            .await
            .map_err(|err| request_error(url, &err, &self.inner.settings))?;
        if response.status().is_redirection() {
            if let Some(location) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok())
            {
                let mut next = url.join(location).map_err(|err| FetchError::InvalidUrl {
                    url: location.to_string(),
                    reason: format!("bad redirect from `{url}`: {err}"),
                })?;
                next.set_fragment(None);
                return Ok(Hop::Redirect(next));
            }
        }
        Ok(Hop::Final(response))
    }

    /// Waits until `per_host_delay` has passed since the last request to `url`'s host.
    async fn wait_turn(&self, url: &Url) {
        let delay = self.inner.settings.per_host_delay;
        if delay.is_zero() {
            return;
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let gate = self
            .inner
            .gates
            .get_with(host, || Arc::new(tokio::sync::Mutex::new(None)));
        let mut last = gate.lock().await;
        if let Some(previous) = *last {
            let ready = previous + delay;
            tokio::time::sleep_until(tokio::time::Instant::from_std(ready)).await;
        }
        *last = Some(Instant::now());
    }

    /// Reads at most `max_bytes` of the body, refusing binary content as soon as it shows.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        url: &Url,
        charset: Option<&str>,
    ) -> Result<(Vec<u8>, bool), FetchError> {
        let settings = &self.inner.settings;
        let limit = settings.max_bytes;
        if !settings.truncate_oversize
            && response
                .content_length()
                .is_some_and(|length| length > limit as u64)
        {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        let mut body: Vec<u8> = Vec::with_capacity(
            response
                .content_length()
                .map_or(16 * 1024, |length| length.min(limit as u64) as usize),
        );
        let mut sniffed = false;
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(|err| {
            if err.is_timeout() {
                FetchError::Timeout {
                    url: url.to_string(),
                    after_ms: u64::try_from(settings.timeout.as_millis()).unwrap_or(u64::MAX),
                }
            } else {
                FetchError::Decode {
                    url: url.to_string(),
                    message: error_chain(&err),
                }
            }
        })? {
            let room = limit - body.len();
            if chunk.len() > room {
                if !settings.truncate_oversize {
                    return Err(FetchError::TooLarge {
                        url: url.to_string(),
                        limit,
                    });
                }
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
            } else {
                body.extend_from_slice(&chunk);
            }
            if !sniffed && body.len() >= 1024 {
                sniffed = true;
                refuse_binary(&body, charset, url)?;
            }
            if truncated {
                // Dropping the response closes the connection: the rest is never read.
                break;
            }
        }
        if !sniffed {
            refuse_binary(&body, charset, url)?;
        }
        Ok((body, truncated))
    }

    /// Fetches and parses `robots.txt`; see the `robots` module for the failure rules.
    async fn load_robots(&self, robots_url: Url) -> Robots {
        let agent = self.inner.settings.user_agent.as_str();
        let mut current = robots_url;
        for _ in 0..=self.inner.settings.max_redirects.min(5) {
            if self.inner.settings.net.check_url(&current).is_err() {
                return Robots::default();
            }
            let response = match self.request(&current).await {
                Ok(Hop::Redirect(next)) => {
                    current = next;
                    continue;
                }
                Ok(Hop::Final(response)) => response,
                Err(error) => {
                    tracing::debug!(url = %current, %error, "robots.txt unreachable, allowing");
                    return Robots::default();
                }
            };
            let status = response.status();
            if status.is_server_error() {
                tracing::debug!(url = %current, %status, "robots.txt server error, disallowing");
                return disallow_all(agent);
            }
            if !status.is_success() {
                return Robots::default();
            }
            let mut body = Vec::new();
            let mut response = response;
            while let Ok(Some(chunk)) = response.chunk().await {
                let room = MAX_ROBOTS_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_ROBOTS_BYTES {
                    break;
                }
            }
            return Robots::parse(&String::from_utf8_lossy(&body), agent);
        }
        Robots::default()
    }
}

fn refuse_binary(body: &[u8], charset: Option<&str>, url: &Url) -> Result<(), FetchError> {
    if !decode::is_wide_encoding(charset, body) && decode::looks_binary(body) {
        return Err(FetchError::UnsupportedContentType {
            url: url.to_string(),
            content_type: "binary content".to_string(),
        });
    }
    Ok(())
}

fn blocked_error(url: &Url, blocked: &Blocked) -> FetchError {
    FetchError::Blocked {
        url: url.to_string(),
        reason: blocked.to_string(),
    }
}

/// Maps a request error: a guard refusal in its causes wins over the transport's words.
fn request_error(url: &Url, err: &reqwest::Error, settings: &FetchSettings) -> FetchError {
    if let Some(blocked) = find_cause::<Blocked>(err) {
        return blocked_error(url, blocked);
    }
    if err.is_timeout() {
        let limit = if err.is_connect() {
            settings.connect_timeout
        } else {
            settings.timeout
        };
        return FetchError::Timeout {
            url: url.to_string(),
            after_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        };
    }
    FetchError::Connect {
        url: url.to_string(),
        message: error_chain(err),
    }
}

/// An error and its causes, joined with `: `.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(cause) = current {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn fetch_futures_can_be_spawned() {
        let fetcher = PageFetcher::new(FetchSettings::default()).expect("fetcher");
        let one = fetcher.fetch("https://example.com/");
        assert_send(&one);
        let many = fetcher.fetch_many(["https://example.com/"], 2);
        assert_send(&many);
        let copy = fetcher.clone();
        assert!(
            Arc::ptr_eq(&copy.inner, &fetcher.inner),
            "clones share state"
        );
    }
}
