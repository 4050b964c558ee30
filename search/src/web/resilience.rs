//! A pool of API keys with per-key rate limiters and cooldowns. The breaker, backoff and
//! `retry-after` rules are `aiex-resilience`'s.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aiex_resilience::RequestLimiter;
use tokio::time::Instant;

use super::WebError;

/// A key that was refused as invalid rests this long before it is tried again.
const UNAUTHORIZED_KEY_COOLDOWN: Duration = Duration::from_secs(10 * 60);
/// A key out of credits rests this long before it is tried again.
const EXHAUSTED_KEY_COOLDOWN: Duration = Duration::from_secs(60 * 60);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic (plain assignments), so poisoning is moot.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a key is resting.
#[derive(Debug, Clone)]
struct Rest {
    until: Instant,
    reason: WebError,
}

struct KeySlot {
    key: String,
    limiter: Option<RequestLimiter>,
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
        let slots = keys
            .into_iter()
            .map(|key| KeySlot {
                key,
                limiter: RequestLimiter::per_minute(requests_per_minute),
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
                match limiter.try_acquire() {
                    Ok(()) => {
                        return KeyChoice::Ready {
                            index,
                            key: &slot.key,
                        }
                    }
                    Err(wait) => {
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
