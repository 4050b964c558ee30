//! Retry timing: exponential backoff with equal jitter, or the provider's `retry-after`.

use std::time::Duration;

use rand::Rng;

/// The delay before retry number `retry` (0-based): `base · 2^retry`, capped at `cap`, of which
/// a random part of the second half is dropped ("equal jitter"): at least half the exponential
/// delay, so that retries still back off, and spread so that clients that failed together do
/// not retry together.
pub fn backoff_delay(base: Duration, cap: Duration, retry: u32) -> Duration {
    let exponential = base
        .saturating_mul(2u32.saturating_pow(retry.min(31)))
        .min(cap);
    let half = exponential / 2;
    let rest = exponential - half;
    let rest_nanos = u64::try_from(rest.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(rand::rng().random_range(0..=rest_nanos))
}

/// Retry timing of one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub max_retries: u32,
    /// The backoff before the first retry (before jitter).
    pub base: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The longest `retry-after` that is waited out; a longer one ends the retries.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0-based): the provider's `retry-after` when given
    /// (`None` when it is longer than `max_retry_after`: better move on), else
    /// [`backoff_delay`].
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(wait) => (wait <= self.max_retry_after).then_some(wait),
            None => Some(backoff_delay(self.base, self.max_backoff, retry)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(5);

    #[test]
    fn backoff_doubles_with_jitter_and_stays_capped() {
        let base = Duration::from_millis(200);
        for retry in 0..4 {
            let full = base * 2u32.pow(retry);
            for _ in 0..50 {
                let delay = backoff_delay(base, CAP, retry);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "{delay:?} for retry {retry}"
                );
            }
        }
        for retry in [5, 40, u32::MAX] {
            for _ in 0..50 {
                let delay = backoff_delay(base, CAP, retry);
                assert!(delay >= CAP / 2 && delay <= CAP, "{delay:?}");
            }
        }
        assert_eq!(backoff_delay(Duration::ZERO, CAP, 3), Duration::ZERO);
        let odd = Duration::from_nanos(3);
        assert!(backoff_delay(odd, CAP, 0) >= Duration::from_nanos(1));
    }

    #[test]
    fn the_jitter_spreads_the_delays() {
        let base = Duration::from_secs(1);
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff_delay(base, CAP, 0)).collect();
        assert!(delays.len() > 1, "twenty equal delays: {delays:?}");
    }

    #[test]
    fn backoff_is_capped_and_retry_after_wins() {
        let policy = RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(1),
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
        assert_eq!(policy.delay(2, Some(Duration::ZERO)), Some(Duration::ZERO));
    }
}
