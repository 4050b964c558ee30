//! Circuit breaker, backoff with jitter, `retry-after` parsing, and per-provider rate limits.

use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use serde::Serialize;
use tokio::time::Instant;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state is a plain value, consistent even after a panic elsewhere.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a provider's circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are rejected until the cool-down ends.
    Open,
    /// The cool-down is over: one trial call closes or re-opens the breaker.
    HalfOpen,
}

impl BreakerState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// `trial_since`: when the running trial call started; a trial that never reports back
    /// (its caller went away) is replaced after another cool-down.
    HalfOpen {
        trial_since: Option<Instant>,
    },
}

/// Opens after `threshold` consecutive failures, rejects calls for `cooldown`, then lets one
/// trial call through: its success closes the breaker, its failure re-opens it.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        match *lock(&self.inner) {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether a call may go now; in half-open state only one trial at a time.
    pub(crate) fn try_acquire(&self) -> bool {
        let mut inner = lock(&self.inner);
        match *inner {
            Inner::Closed { .. } => true,
            Inner::Open { until } if Instant::now() < until => false,
            Inner::HalfOpen {
                trial_since: Some(since),
            } if since.elapsed() < self.cooldown => false,
            Inner::Open { .. } | Inner::HalfOpen { .. } => {
                *inner = Inner::HalfOpen {
                    trial_since: Some(Instant::now()),
                };
                true
            }
        }
    }

    pub(crate) fn success(&self) {
        *lock(&self.inner) = Inner::Closed { failures: 0 };
    }

    pub(crate) fn failure(&self) {
        let mut inner = lock(&self.inner);
        let open = Inner::Open {
            until: Instant::now() + self.cooldown,
        };
        *inner = match *inner {
            Inner::Closed { failures } if failures + 1 >= self.threshold => open,
            Inner::Closed { failures } => Inner::Closed {
                failures: failures + 1,
            },
            Inner::Open { .. } | Inner::HalfOpen { .. } => open,
        };
    }

    /// A call that proved nothing (a refused request): a half-open trial slot is freed.
    pub(crate) fn release(&self) {
        let mut inner = lock(&self.inner);
        if let Inner::HalfOpen { .. } = *inner {
            *inner = Inner::HalfOpen { trial_since: None };
        }
    }
}

/// Retry timing of one provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) base: Duration,
    pub(crate) max: Duration,
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (0-based): the provider's `retry-after` when given
    /// (`None` when it is longer than `max`: better move to the next provider), else
    /// exponential backoff with full jitter, capped at `max`.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if let Some(wait) = retry_after {
            return (wait <= self.max).then_some(wait);
        }
        let exponential = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max);
        let millis = u64::try_from(exponential.as_millis()).unwrap_or(u64::MAX);
        Some(Duration::from_millis(
            rand::rng().random_range(0..=millis.max(1)),
        ))
    }
}

/// A `retry-after-ms` (milliseconds) or `retry-after` (seconds or an HTTP date) header.
pub(crate) fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let value = text("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Requests-per-minute and tokens-per-minute limits of one provider (governor).
#[derive(Debug)]
pub(crate) struct RateLimits {
    requests: Option<DefaultDirectRateLimiter>,
    tokens: Option<(DefaultDirectRateLimiter, NonZeroU32)>,
}

impl RateLimits {
    pub(crate) fn new(requests_per_minute: u32, tokens_per_minute: u32) -> Self {
        Self {
            requests: NonZeroU32::new(requests_per_minute)
                .map(|rpm| RateLimiter::direct(Quota::per_minute(rpm))),
            tokens: NonZeroU32::new(tokens_per_minute)
                .map(|tpm| (RateLimiter::direct(Quota::per_minute(tpm)), tpm)),
        }
    }

    /// Waits until one request of about `tokens` tokens may go. Tokens are charged up front
    /// (estimated input plus the output limit), a request larger than the whole minute's
    /// budget waits for the full budget.
    pub(crate) async fn acquire(&self, tokens: u64) {
        if let Some(limiter) = &self.requests {
            limiter.until_ready().await;
        }
        if let Some((limiter, budget)) = &self.tokens {
            let wanted = u32::try_from(tokens)
                .ok()
                .and_then(NonZeroU32::new)
                .map_or(NonZeroU32::MIN, |n| n.min(*budget));
            // Cannot fail: `wanted` never exceeds the burst size.
            let _ = limiter.until_n_ready(wanted).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_half_opens_and_closes() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(10));
        assert!(breaker.try_acquire());
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.try_acquire());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.try_acquire(), "one trial");
        assert!(!breaker.try_acquire(), "only one trial at a time");
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(breaker.try_acquire());
        breaker.release();
        assert!(breaker.try_acquire(), "a released trial slot is free again");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(breaker.try_acquire(), "an abandoned trial is replaced");
        breaker.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.try_acquire());
    }

    #[test]
    fn backoff_is_capped_and_retry_after_wins() {
        let policy = RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 0..10 {
            let delay = policy.delay(attempt, None).expect("backoff");
            assert!(delay <= Duration::from_secs(1));
        }
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(700))),
            Some(Duration::from_millis(700))
        );
        assert_eq!(policy.delay(0, Some(Duration::from_secs(5))), None);
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(parse_retry_after(&headers), None);
        headers.insert("retry-after", "2".parse().expect("header"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "150".parse().expect("header"));
        assert_eq!(
            parse_retry_after(&headers),
            Some(Duration::from_millis(150))
        );
        let mut dated = reqwest::header::HeaderMap::new();
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        dated.insert("retry-after", later.parse().expect("header"));
        let wait = parse_retry_after(&dated).expect("date");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
    }

    #[tokio::test]
    async fn rate_limits_allow_the_burst_then_wait() {
        let limits = RateLimits::new(0, 600);
        let started = std::time::Instant::now();
        limits.acquire(600).await;
        assert!(started.elapsed() < Duration::from_millis(100));
        limits.acquire(10).await;
        // 600 per minute refill one token per 100 ms.
        assert!(started.elapsed() >= Duration::from_millis(500));
    }
}
