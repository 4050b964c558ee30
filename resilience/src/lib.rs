//! The resilience layer of Aiex, shared by the LLM providers (`aiex-llm`) and the web-search
//! providers (`aiex-search`'s `web`): one circuit breaker, one backoff rule, one `retry-after`
//! parser and the `governor` rate limiters, so that both behave the same way.
//!
//! - [`CircuitBreaker`]: closed → open after `threshold` consecutive failures (a threshold of 0
//!   never opens) → half-open after the cool-down, where one trial call at a time decides. A call
//!   holds a [`BreakerGuard`] and reports a [`CallHealth`]:
//!   - `Healthy`: the provider answered, also when it refused the request itself (a 400 proves
//!     the provider is up): the breaker closes and the failure count starts again;
//!   - `Failed`: the provider failed or cannot be used (5xx, timeouts, network errors, refused
//!     keys, rate limits): counted while closed, a failed trial re-opens the breaker; a failure
//!     reported by a call that started before the breaker opened changes nothing;
//!   - `Unknown`: the provider was not asked (our own limiter said no) or the call was cancelled:
//!     counts for nothing. A guard dropped without a verdict reports `Unknown`, so an abandoned
//!     half-open trial frees the trial slot at once and never wedges the breaker.
//! - [`RetryPolicy`]: exponential backoff with "equal jitter" (half of `base · 2^retry`, capped,
//!   plus a random part of the other half), unless the provider said how long to wait: a
//!   `retry-after` up to a limit is waited out as given, a longer one ends the retries so that
//!   the caller can move to another provider.
//! - [`retry_after`]: `retry-after-ms` (milliseconds) or `retry-after` as delta-seconds or an
//!   HTTP date (a date in the past means now).
//! - [`RequestLimiter`] (requests per minute of one key or provider) and [`RateLimits`]
//!   (requests and tokens per minute of one provider).
//!
//! Threading: no threads of its own. The breaker is a small mutex held for a few instructions;
//! times come from `tokio::time::Instant`, so tests can pause the clock. Waiting on a limiter is
//! async.

mod backoff;
mod breaker;
mod limit;
mod retry_after;

pub use backoff::{backoff_delay, RetryPolicy};
pub use breaker::{BreakerGuard, BreakerState, CallHealth, CircuitBreaker};
pub use limit::{RateLimits, RequestLimiter};
pub use retry_after::{parse_retry_after, retry_after};
