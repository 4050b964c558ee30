//! What this process's requests to Qdrant cost: every attempt counted with its latency, its
//! failures and the retries they caused, for the server's Prometheus metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct Counters {
    /// Attempts per bucket (cumulative when read: each attempt counts in its own bucket here).
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    attempts: AtomicU64,
    micros: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
}

static COUNTERS: Counters = Counters {
    buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len()],
    attempts: AtomicU64::new(0),
    micros: AtomicU64::new(0),
    failures: AtomicU64::new(0),
    retries: AtomicU64::new(0),
};

/// A snapshot of the counters since the process started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestStats {
    /// Requests sent (every attempt, retries included).
    pub requests: u64,
    /// Attempts that failed (unreachable, timed out, refused, or an error answer).
    pub failures: u64,
    /// Attempts that were retries of a failed one.
    pub retries: u64,
    /// Cumulative counts per bound of [`LATENCY_BUCKETS`], as Prometheus histograms want them.
    pub cumulative: Vec<u64>,
    /// Total latency of every attempt, in seconds.
    pub seconds: f64,
}

/// Counts one attempt that took `took` and failed or not.
pub(super) fn observe(took: Duration, failed: bool) {
    let seconds = took.as_secs_f64();
    if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
        COUNTERS.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }
    COUNTERS.attempts.fetch_add(1, Ordering::Relaxed);
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    COUNTERS.micros.fetch_add(micros, Ordering::Relaxed);
    if failed {
        COUNTERS.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one retry.
pub(super) fn retried() {
    COUNTERS.retries.fetch_add(1, Ordering::Relaxed);
}

/// The counters now.
pub fn request_stats() -> RequestStats {
    let mut running = 0;
    let cumulative = COUNTERS
        .buckets
        .iter()
        .map(|count| {
            running += count.load(Ordering::Relaxed);
            running
        })
        .collect();
    RequestStats {
        requests: COUNTERS.attempts.load(Ordering::Relaxed),
        failures: COUNTERS.failures.load(Ordering::Relaxed),
        retries: COUNTERS.retries.load(Ordering::Relaxed),
        cumulative,
        seconds: COUNTERS.micros.load(Ordering::Relaxed) as f64 / 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_land_in_cumulative_buckets() {
        let before = request_stats();
        observe(Duration::from_millis(3), false);
        observe(Duration::from_secs(20), true);
        retried();
        let after = request_stats();
        // Other tests of this process may call Qdrant meanwhile: at least what was observed here.
        assert!(after.requests - before.requests >= 2);
        assert!(after.failures - before.failures >= 1);
        assert!(after.retries - before.retries >= 1);
        // 3 ms is under the 5 ms bound; 20 s is past every bound (only in the +Inf count).
        let at_5ms = LATENCY_BUCKETS
            .iter()
            .position(|b| *b == 0.005)
            .expect("a 5 ms bucket");
        assert!(after.cumulative[at_5ms] > before.cumulative[at_5ms]);
        let last = LATENCY_BUCKETS.len() - 1;
        let finite = after.cumulative[last] - before.cumulative[last];
        assert!(
            finite < after.requests - before.requests,
            "the 20 s attempt is in no finite bucket"
        );
        assert!(after.seconds - before.seconds >= 20.0);
    }
}
