//! `governor` rate limiters: requests per minute of one key or provider, and tokens per minute.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// A requests-per-minute budget (one API key, one provider); the whole minute's budget may go
/// at once, then requests come back one by one.
pub struct RequestLimiter {
    limiter: DefaultDirectRateLimiter,
}

impl fmt::Debug for RequestLimiter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RequestLimiter")
            .finish_non_exhaustive()
    }
}

impl RequestLimiter {
    /// A limiter of `requests` per minute; `None` for 0, which means unlimited.
    pub fn per_minute(requests: u32) -> Option<Self> {
        NonZeroU32::new(requests).map(|requests| RequestLimiter {
            limiter: RateLimiter::direct(Quota::per_minute(requests)),
        })
    }

    /// Takes one request from the budget now, or says how long until one is available.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Waits until one request may go, and takes it.
    pub async fn until_ready(&self) {
        self.limiter.until_ready().await;
    }
}

/// Requests-per-minute and tokens-per-minute limits of one provider; 0 means unlimited.
#[derive(Debug)]
pub struct RateLimits {
    requests: Option<RequestLimiter>,
    tokens: Option<(DefaultDirectRateLimiter, NonZeroU32)>,
}

impl RateLimits {
    pub fn new(requests_per_minute: u32, tokens_per_minute: u32) -> Self {
        RateLimits {
            requests: RequestLimiter::per_minute(requests_per_minute),
            tokens: NonZeroU32::new(tokens_per_minute)
                .map(|tpm| (RateLimiter::direct(Quota::per_minute(tpm)), tpm)),
        }
    }

    /// Waits until one request of about `tokens` tokens may go. Tokens are charged up front
    /// (estimated input plus the output limit); a request larger than the whole minute's budget
    /// waits for the full budget.
    pub async fn acquire(&self, tokens: u64) {
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

    #[test]
    fn a_request_limiter_allows_the_burst_then_names_the_wait() {
        assert!(RequestLimiter::per_minute(0).is_none(), "0 is unlimited");
        let limiter = RequestLimiter::per_minute(2).expect("limited");
        assert_eq!(limiter.try_acquire(), Ok(()));
        assert_eq!(limiter.try_acquire(), Ok(()));
        let wait = limiter.try_acquire().expect_err("the budget is spent");
        // Two per minute come back one every 30 s.
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
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

    #[tokio::test]
    async fn request_limits_wait_for_the_next_request() {
        let limits = RateLimits::new(600, 0);
        let started = std::time::Instant::now();
        limits.acquire(1_000_000).await;
        limits.acquire(1_000_000).await;
        assert!(started.elapsed() < Duration::from_millis(100), "the burst");
        let limiter = RequestLimiter::per_minute(600).expect("limited");
        for _ in 0..600 {
            limiter.until_ready().await;
        }
        let started = std::time::Instant::now();
        limiter.until_ready().await;
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
