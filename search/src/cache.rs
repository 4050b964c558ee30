//! The result cache: per source, keyed by the normalised request and the source's cache token
//! (an index generation for local sources, so a re-index invalidates), bounded in bytes, with a
//! time-to-live per entry (short for the web).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;
use serde::Serialize;

use crate::hit::Hit;
use crate::source::{SourceQuery, SourceResults};

#[derive(Debug)]
struct Entry {
    results: SourceResults,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Arc<Entry>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Cache counters (they feed `/metrics` later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
    pub weighted_bytes: u64,
}

impl CacheStats {
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// Results per source and request.
pub struct ResultCache {
    cache: Cache<String, Arc<Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for ResultCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl ResultCache {
    /// A cache holding at most about `max_bytes` of results.
    pub fn new(max_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry: &Arc<Entry>| {
                let bytes = key.len()
                    + entry
                        .results
                        .hits
                        .iter()
                        .map(Hit::approx_bytes)
                        .sum::<usize>()
                    + entry.results.notes.iter().map(String::len).sum::<usize>();
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        ResultCache {
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The key of `query` for `source` at `token`.
    pub fn key(source: &str, token: &str, query: &SourceQuery) -> String {
        let mut normalized = query.clone();
        normalized.query = normalized
            .query
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        normalized.collections.sort();
        normalized.languages.sort();
        normalized.include_domains.sort();
        normalized.exclude_domains.sort();
        let request = serde_json::to_string(&normalized).unwrap_or_default();
        format!("{source}\u{1f}{token}\u{1f}{request}")
    }

    pub fn get(&self, key: &str) -> Option<SourceResults> {
        match self.cache.get(key) {
            Some(entry) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(entry.results.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn insert(&self, key: String, results: SourceResults, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        self.cache.insert(key, Arc::new(Entry { results, ttl }));
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.run_pending_tasks();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.entry_count(),
            weighted_bytes: self.cache.weighted_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_requests_and_include_the_token() {
        let mut a = SourceQuery::new("  Share   STATE between threads ", 10);
        a.languages = vec!["rust".into(), "go".into()];
        let mut b = SourceQuery::new("share state between threads", 10);
        b.languages = vec!["go".into(), "rust".into()];
        assert_eq!(
            ResultCache::key("code", "g1", &a),
            ResultCache::key("code", "g1", &b)
        );
        assert_ne!(
            ResultCache::key("code", "g1", &a),
            ResultCache::key("code", "g2", &a)
        );
        assert_ne!(
            ResultCache::key("code", "g1", &a),
            ResultCache::key("docs", "g1", &a)
        );
    }

    #[test]
    fn counts_and_expires() {
        let cache = ResultCache::new(1 << 20);
        assert!(cache.get("k").is_none());
        cache.insert(
            "k".into(),
            SourceResults::default(),
            Duration::from_millis(50),
        );
        assert!(cache.get("k").is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert!(cache.get("k").is_none());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 2));
    }
}
