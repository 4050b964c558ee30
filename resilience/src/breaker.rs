//! The circuit breaker: closed, open, half-open, with a guard per call.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state is a plain value (assignments only), consistent even after a panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are rejected until the cool-down ends.
    Open,
    /// The cool-down is over: one trial call at a time closes or re-opens the breaker.
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

/// How a call ended, as far as the breaker cares (see the crate documentation for the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallHealth {
    /// The provider answered (successfully, or by refusing a bad request).
    Healthy,
    /// The provider failed or cannot be used.
    Failed,
    /// The provider was not asked, or the call was cancelled: the call counts for nothing.
    Unknown,
}

#[derive(Debug)]
enum Inner {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
    },
    /// `trial`: the id of the trial call in flight, if one is.
    HalfOpen {
        trial: Option<u64>,
    },
}

#[derive(Debug)]
struct State {
    inner: Inner,
    /// Ids of trial calls, so that a late report of an old trial cannot free a newer one's slot.
    next_trial: u64,
}

/// Opens after `threshold` consecutive failed calls (0: never), rejects calls during `cooldown`,
/// then lets a single trial call decide between closing and re-opening.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            threshold,
            cooldown,
            state: Mutex::new(State {
                inner: Inner::Closed {
                    consecutive_failures: 0,
                },
                next_trial: 0,
            }),
        }
    }

    /// Where the breaker stands now; an open breaker whose cool-down is over is half-open.
    pub fn state(&self) -> BreakerState {
        match lock(&self.state).inner {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if Instant::now() < until => BreakerState::Open,
            Inner::Open { .. } | Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// A guard for one call, or `None` while the breaker rejects calls (open, or half-open with
    /// a trial in flight).
    pub fn try_acquire(&self) -> Option<BreakerGuard<'_>> {
        let mut state = lock(&self.state);
        let trial = match state.inner {
            Inner::Closed { .. } => None,
            Inner::Open { until } if Instant::now() < until => return None,
            Inner::HalfOpen { trial: Some(_) } => return None,
            Inner::Open { .. } | Inner::HalfOpen { trial: None } => {
                let id = state.next_trial;
                state.next_trial = id.wrapping_add(1);
                state.inner = Inner::HalfOpen { trial: Some(id) };
                Some(id)
            }
        };
        Some(BreakerGuard {
            breaker: self,
            trial,
            reported: false,
        })
    }

    /// A failure seen outside any guard (a stream that broke after its call was already
    /// reported healthy): counted like a failed call that is not a trial.
    pub fn record_failure(&self) {
        self.record(None, CallHealth::Failed);
    }

    fn record(&self, trial: Option<u64>, health: CallHealth) {
        let mut state = lock(&self.state);
        match health {
            CallHealth::Healthy => {
                state.inner = Inner::Closed {
                    consecutive_failures: 0,
                };
            }
            CallHealth::Failed if trial.is_some() => {
                state.inner = Inner::Open {
                    until: Instant::now() + self.cooldown,
                };
            }
            CallHealth::Failed => {
                // A failure reported while open or half-open (a call that started before the
                // breaker opened) changes nothing.
                if let Inner::Closed {
                    consecutive_failures,
                } = &mut state.inner
                {
                    *consecutive_failures = consecutive_failures.saturating_add(1);
                    if self.threshold > 0 && *consecutive_failures >= self.threshold {
                        state.inner = Inner::Open {
                            until: Instant::now() + self.cooldown,
                        };
                    }
                }
            }
            CallHealth::Unknown => {
                if let Inner::HalfOpen { trial: in_flight } = &mut state.inner {
                    if trial.is_some() && *in_flight == trial {
                        *in_flight = None;
                    }
                }
            }
        }
    }
}

/// Leave to make one call; report how it went with [`BreakerGuard::record`]. Dropped without a
/// report (a cancelled call), it counts for nothing and a trial frees its slot for the next one.
#[derive(Debug)]
#[must_use = "a guard dropped at once reports nothing about the call"]
pub struct BreakerGuard<'breaker> {
    breaker: &'breaker CircuitBreaker,
    trial: Option<u64>,
    reported: bool,
}

impl BreakerGuard<'_> {
    /// Whether this call is the half-open trial.
    pub fn is_trial(&self) -> bool {
        self.trial.is_some()
    }

    /// Reports how the call went.
    pub fn record(mut self, health: CallHealth) {
        self.reported = true;
        self.breaker.record(self.trial, health);
    }
}

impl Drop for BreakerGuard<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.record(self.trial, CallHealth::Unknown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquire(breaker: &CircuitBreaker) -> BreakerGuard<'_> {
        breaker
            .try_acquire()
            .expect("the breaker lets the call through")
    }

    #[tokio::test(start_paused = true)]
    async fn opens_half_opens_and_closes() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(10));
        acquire(&breaker).record(CallHealth::Failed);
        assert_eq!(breaker.state(), BreakerState::Closed);
        acquire(&breaker).record(CallHealth::Failed);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.try_acquire().is_none());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let trial = acquire(&breaker);
        assert!(trial.is_trial(), "one trial");
        assert!(breaker.try_acquire().is_none(), "only one trial at a time");
        trial.record(CallHealth::Failed);
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(11)).await;
        let trial = acquire(&breaker);
        trial.record(CallHealth::Unknown);
        let trial = breaker.try_acquire();
        assert!(trial.is_some(), "a released trial slot is free again");
        drop(trial);
        let trial = breaker.try_acquire();
        assert!(trial.is_some(), "an abandoned trial is replaced");
        if let Some(trial) = trial {
            trial.record(CallHealth::Healthy);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        let call = acquire(&breaker);
        assert!(!call.is_trial());
    }

    #[test]
    fn a_cancelled_trial_frees_the_half_open_slot() {
        let breaker = CircuitBreaker::new(1, Duration::ZERO);
        acquire(&breaker).record(CallHealth::Failed);
        // Cooldown zero: half-open at once; one trial at a time.
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let trial = breaker.try_acquire();
        assert!(trial.is_some());
        assert!(breaker.try_acquire().is_none(), "a second trial waits");
        drop(trial);
        let next_trial = breaker.try_acquire();
        assert!(next_trial.is_some(), "the dropped trial gave its slot back");
        if let Some(guard) = next_trial {
            guard.record(CallHealth::Healthy);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn a_late_report_of_an_old_trial_keeps_the_new_trial_slot() {
        let breaker = CircuitBreaker::new(1, Duration::ZERO);
        acquire(&breaker).record(CallHealth::Failed);
        let old_trial = acquire(&breaker);
        // A call from before the breaker opened proves the provider answers: closed again.
        breaker.record(None, CallHealth::Healthy);
        acquire(&breaker).record(CallHealth::Failed);
        let new_trial = acquire(&breaker);
        drop(old_trial);
        assert!(
            breaker.try_acquire().is_none(),
            "the new trial still holds the slot"
        );
        new_trial.record(CallHealth::Healthy);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn failures_outside_a_trial_do_not_decide_while_open() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(60));
        let early = acquire(&breaker);
        acquire(&breaker).record(CallHealth::Failed);
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        early.record(CallHealth::Failed);
        assert_eq!(breaker.state(), BreakerState::Open);
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn healthy_calls_reset_the_failure_count_and_unknown_ones_count_nothing() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(60));
        acquire(&breaker).record(CallHealth::Failed);
        acquire(&breaker).record(CallHealth::Healthy);
        acquire(&breaker).record(CallHealth::Failed);
        assert_eq!(breaker.state(), BreakerState::Closed);
        acquire(&breaker).record(CallHealth::Unknown);
        drop(acquire(&breaker));
        assert_eq!(breaker.state(), BreakerState::Closed);
        acquire(&breaker).record(CallHealth::Failed);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let breaker = CircuitBreaker::new(0, Duration::from_secs(60));
        for _ in 0..10 {
            if let Some(guard) = breaker.try_acquire() {
                guard.record(CallHealth::Failed);
            }
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn state_names() {
        let names = [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ]
        .map(BreakerState::as_str);
        assert_eq!(names, ["closed", "open", "half_open"]);
    }
}
