//! The provider-independent resilience pieces: a circuit breaker, backoff delays, and a pool of
//! API keys with per-key rate limiters and cooldowns.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use serde::Serialize;
use tokio::time::Instant;

use super::WebError;

/// Longest backoff between two retries.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A key that was refused as invalid rests this long before it is tried again.
const UNAUTHORIZED_KEY_COOLDOWN: Duration = Duration::from_secs(10 * 60);
/// A key out of credits rests this long before it is tried again.
const EXHAUSTED_KEY_COOLDOWN: Duration = Duration::from_secs(60 * 60);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic (plain assignments), so poisoning is moot.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a client's circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are rejected with [`WebError::BreakerOpen`] until the cooldown ends.
    Open,
    /// The cooldown is over: the next call is a trial that closes or re-opens the breaker.
    HalfOpen,
}

#[derive(Debug)]
enum BreakerInner {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

/// Opens after `threshold` consecutive failed calls, rejects calls during `cooldown`, then lets
/// a single trial call decide between closing and re-opening.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<BreakerInner>,
}

/// How a call ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallHealth {
    /// The provider answered (successfully, or by refusing a bad request).
    Healthy,
    /// The provider failed or cannot be used.
    Failed,
    /// The provider was not asked: the call counts for nothing.
    Unknown,
}

impl CircuitBreaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            threshold,
            cooldown,
            inner: Mutex::new(BreakerInner::Closed {
                consecutive_failures: 0,
            }),
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        match *lock(&self.inner) {
            BreakerInner::Closed { .. } => BreakerState::Closed,
            BreakerInner::Open { until } if Instant::now() < until => BreakerState::Open,
            BreakerInner::Open { .. } | BreakerInner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// A permit to make one call, or `None` while the breaker rejects calls.
    pub(crate) fn try_acquire(&self) -> Option<BreakerPermit<'_>> {
        let mut inner = lock(&self.inner);
        let trial = match *inner {
            BreakerInner::Closed { .. } => false,
            BreakerInner::Open { until } if Instant::now() < until => return None,
            BreakerInner::HalfOpen {
                trial_in_flight: true,
            } => return None,
            BreakerInner::Open { .. }
            | BreakerInner::HalfOpen {
                trial_in_flight: false,
            } => {
                *inner = BreakerInner::HalfOpen {
                    trial_in_flight: true,
                };
                true
            }
        };
        Some(BreakerPermit {
            breaker: self,
            trial,
            recorded: false,
        })
    }

    fn record(&self, trial: bool, health: CallHealth) {
        let mut inner = lock(&self.inner);
        match health {
            CallHealth::Healthy => {
                *inner = BreakerInner::Closed {
                    consecutive_failures: 0,
                };
            }
            CallHealth::Failed if trial => {
                *inner = BreakerInner::Open {
                    until: Instant::now() + self.cooldown,
                };
            }
            CallHealth::Unknown => {
                if let BreakerInner::HalfOpen { trial_in_flight } = &mut *inner {
                    if trial {
                        *trial_in_flight = false;
                    }
                }
            }
            CallHealth::Failed => {
                // A failure reported while already open or half-open (a call that started
                // before the breaker opened) changes nothing.
                if let BreakerInner::Closed {
                    consecutive_failures,
                } = &mut *inner
                {
                    *consecutive_failures = consecutive_failures.saturating_add(1);
                    if self.threshold > 0 && *consecutive_failures >= self.threshold {
                        *inner = BreakerInner::Open {
                            until: Instant::now() + self.cooldown,
                        };
                    }
                }
            }
        }
    }
}

/// Leave to make one call; report its outcome with [`BreakerPermit::record`]. Dropped without a
/// report (a cancelled call), it counts for nothing.
pub(crate) struct BreakerPermit<'breaker> {
    breaker: &'breaker CircuitBreaker,
    trial: bool,
    recorded: bool,
}

impl BreakerPermit<'_> {
    pub(crate) fn record(mut self, health: CallHealth) {
        self.recorded = true;
        self.breaker.record(self.trial, health);
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        // A call dropped before its outcome (cancelled) counts for nothing, and a trial frees
        // the slot for the next one.
        if !self.recorded {
            self.breaker.record(self.trial, CallHealth::Unknown);
        }
    }
}

/// The delay before retry number `retry` (0-based): `base · 2^retry`, capped, of which a random
/// half is dropped ("equal jitter") so that clients that failed together do not retry together.
pub(crate) fn backoff_delay(base: Duration, retry: u32) -> Duration {
    let exponential = base
        .saturating_mul(2u32.saturating_pow(retry.min(16)))
        .min(BACKOFF_CAP);
    let half = exponential / 2;
    let half_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = Duration::from_nanos(rand::rng().random_range(0..=half_nanos));
    half + jitter
}

/// Why a key is resting.
#[derive(Debug, Clone)]
struct Rest {
    until: Instant,
    reason: WebError,
}

struct KeySlot {
    key: String,
    limiter: Option<DefaultDirectRateLimiter>,
    rest: Mutex<Option<Rest>>,
}

/// What [`KeyPool::acquire`] found.
pub(crate) enum KeyChoice<'pool> {
    /// This key may send now; its limiter has been charged.
    Ready { index: usize, key: &'pool str },
    /// Every key not yet tried is resting; this is why (for the one that rests the least).
    AllResting(WebError),
    /// Every key was tried.
    AllTried,
    /// The keys' limiters allow no request within the timeout.
    Throttled { wait: Duration },
}

/// API keys in order of preference. Calls use the last key that worked, spill to the next when a
/// key's limiter is empty, and skip keys that rest after a refusal.
pub(crate) struct KeyPool {
    slots: Vec<KeySlot>,
    preferred: AtomicUsize,
}

impl fmt::Debug for KeyPool {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("KeyPool")
            .field("keys", &super::config::RedactedKeys(self.slots.len()))
            .finish_non_exhaustive()
    }
}

impl KeyPool {
    pub(crate) fn new(keys: Vec<String>, requests_per_minute: u32) -> Self {
        let quota = NonZeroU32::new(requests_per_minute).map(Quota::per_minute);
        let slots = keys
            .into_iter()
            .map(|key| KeySlot {
                key,
                limiter: quota.map(RateLimiter::direct),
                rest: Mutex::new(None),
            })
            .collect();
        KeyPool {
            slots,
            preferred: AtomicUsize::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|slot| slot.key.as_str())
    }

    /// A key that may send now, skipping the keys marked in `tried` and resting keys; waits on
    /// the limiters while that fits within `max_wait`.
    pub(crate) async fn acquire(&self, tried: &[bool], max_wait: Duration) -> KeyChoice<'_> {
        let started = Instant::now();
        let key_count = self.slots.len();
        loop {
            let now = Instant::now();
            let preferred = self.preferred.load(Ordering::Relaxed);
            let mut shortest_limiter_wait: Option<Duration> = None;
            let mut shortest_rest: Option<Rest> = None;
            let mut untried_count = 0;
            for offset in 0..key_count {
                let index = (preferred + offset) % key_count;
                if tried.get(index).copied().unwrap_or(false) {
                    continue;
                }
                untried_count += 1;
                let slot = &self.slots[index];
                if let Some(rest) = Self::resting(slot, now) {
                    if shortest_rest
                        .as_ref()
                        .is_none_or(|shortest| rest.until < shortest.until)
                    {
                        shortest_rest = Some(rest);
                    }
                    continue;
                }
                let Some(limiter) = &slot.limiter else {
                    return KeyChoice::Ready {
                        index,
                        key: &slot.key,
                    };
                };
                match limiter.check() {
                    Ok(()) => {
                        return KeyChoice::Ready {
                            index,
                            key: &slot.key,
                        }
                    }
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(limiter.clock().now());
                        shortest_limiter_wait =
                            Some(shortest_limiter_wait.map_or(wait, |shortest| shortest.min(wait)));
                    }
                }
            }
            if untried_count == 0 {
                return KeyChoice::AllTried;
            }
            let Some(wait) = shortest_limiter_wait else {
                return match shortest_rest {
                    Some(rest) => KeyChoice::AllResting(Self::rest_error(rest, now)),
                    None => KeyChoice::AllTried,
                };
            };
            if started.elapsed() + wait > max_wait {
                return KeyChoice::Throttled { wait };
            }
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "waiting for a key's rate limiter"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn resting(slot: &KeySlot, now: Instant) -> Option<Rest> {
        let mut rest = lock(&slot.rest);
        match &*rest {
            Some(current) if now < current.until => Some(current.clone()),
            Some(_) => {
                *rest = None;
                None
            }
            None => None,
        }
    }

    /// The error a resting key stands for; a rate limit carries the time left to wait.
    fn rest_error(rest: Rest, now: Instant) -> WebError {
        match rest.reason {
            WebError::RateLimited { provider, .. } => WebError::RateLimited {
                provider,
                retry_after: Some(rest.until.saturating_duration_since(now)),
            },
            other => other,
        }
    }

    /// The key worked: later calls start with it.
    pub(crate) fn mark_good(&self, index: usize) {
        self.preferred.store(index, Ordering::Relaxed);
    }

    /// The key was refused with `error`: it rests for a while, and later calls start with the
    /// next key.
    pub(crate) fn mark_refused(&self, index: usize, error: &WebError) {
        let cooldown = match error {
            WebError::Unauthorized { .. } => UNAUTHORIZED_KEY_COOLDOWN,
            WebError::QuotaExhausted { .. } => EXHAUSTED_KEY_COOLDOWN,
            WebError::RateLimited { retry_after, .. } => retry_after.unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let key_count = self.slots.len().max(1);
        let _ = self.preferred.compare_exchange(
            index,
            (index + 1) % key_count,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if cooldown.is_zero() {
            return;
        }
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        tracing::warn!(
            key_index = index,
            cooldown_s = cooldown.as_secs_f64(),
            reason = %error,
            "resting an api key"
        );
        *lock(&slot.rest) = Some(Rest {
            until: Instant::now() + cooldown,
            reason: error.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stays_capped() {
        let base = Duration::from_millis(200);
        for retry in 0..4 {
            let full = base * 2u32.pow(retry);
            for _ in 0..50 {
                let delay = backoff_delay(base, retry);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "{delay:?} for retry {retry}"
                );
            }
        }
        for _ in 0..50 {
            let delay = backoff_delay(base, 40);
            assert!(
                delay >= BACKOFF_CAP / 2 && delay <= BACKOFF_CAP,
                "{delay:?}"
            );
        }
        assert_eq!(backoff_delay(Duration::ZERO, 3), Duration::ZERO);
    }

    #[test]
    fn a_cancelled_trial_frees_the_half_open_slot() {
        let breaker = CircuitBreaker::new(1, Duration::ZERO);
        let first = breaker.try_acquire();
        assert!(first.is_some());
        if let Some(permit) = first {
            permit.record(CallHealth::Failed);
        }
        // Cooldown zero: half-open at once; one trial at a time.
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let trial = breaker.try_acquire();
        assert!(trial.is_some());
        assert!(breaker.try_acquire().is_none(), "a second trial waits");
        drop(trial);
        let next_trial = breaker.try_acquire();
        assert!(next_trial.is_some(), "the dropped trial gave its slot back");
        if let Some(permit) = next_trial {
            permit.record(CallHealth::Healthy);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let breaker = CircuitBreaker::new(0, Duration::from_secs(60));
        for _ in 0..10 {
            if let Some(permit) = breaker.try_acquire() {
                permit.record(CallHealth::Failed);
            }
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
