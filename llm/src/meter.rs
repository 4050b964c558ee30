//! Token and cost accounting: usage per answer, totals per provider and overall.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use aiex_config::LlmPrice;
use serde::Serialize;

use crate::Usage;

/// Estimated token count of `text` when a provider reports none: one token per four
/// characters, rounded up (close to BPE tokenizers on English and code; answers marked
/// `estimated`).
pub fn estimate_tokens(text: &str) -> u64 {
    u64::try_from(text.chars().count().div_ceil(4)).unwrap_or(u64::MAX)
}

/// Cost of `input` and `output` tokens at `price`.
pub(crate) fn cost(price: Option<&LlmPrice>, input: u64, output: u64) -> f64 {
    price.map_or(0.0, |price| {
        // Token counts far below 2^53: exact as f64.
        #[allow(clippy::cast_precision_loss)]
        let (input, output) = (input as f64, output as f64);
        (input * price.input_per_mtok + output * price.output_per_mtok) / 1_000_000.0
    })
}

/// Totals of one provider, or of all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    /// Answers received.
    pub requests: u64,
    /// Failed attempts (each retry counts).
    pub failures: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Answers whose token counts were estimated.
    pub estimated_requests: u64,
    /// Embedding calls.
    pub embed_requests: u64,
    /// Answers the caller dropped before their end; their tokens are estimated and counted.
    pub cancelled: u64,
}

impl UsageTotals {
    fn add(&mut self, other: &UsageTotals) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd += other.cost_usd;
        self.estimated_requests += other.estimated_requests;
        self.embed_requests += other.embed_requests;
        self.cancelled += other.cancelled;
    }
}

/// Everything the meter knows at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageSnapshot {
    pub total: UsageTotals,
    pub providers: BTreeMap<String, UsageTotals>,
}

/// Usage since the [`crate::Llm`] was created, per provider and overall.
#[derive(Debug, Default)]
pub struct UsageMeter {
    providers: Mutex<BTreeMap<String, UsageTotals>>,
}

impl UsageMeter {
    fn update(&self, provider: &str, change: impl FnOnce(&mut UsageTotals)) {
        let mut providers = self
            .providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        change(providers.entry(provider.to_owned()).or_default());
    }

    /// Records one answer.
    pub fn record(&self, provider: &str, usage: &Usage) {
        self.update(provider, |totals| {
            totals.requests += 1;
            totals.input_tokens += usage.input_tokens;
            totals.output_tokens += usage.output_tokens;
            totals.cost_usd += usage.cost_usd;
            totals.estimated_requests += u64::from(usage.estimated);
        });
    }

    /// Records an answer dropped before its end, with its (estimated) usage so far.
    pub fn record_cancelled(&self, provider: &str, usage: &Usage) {
        self.update(provider, |totals| {
            totals.cancelled += 1;
            totals.input_tokens += usage.input_tokens;
            totals.output_tokens += usage.output_tokens;
            totals.cost_usd += usage.cost_usd;
        });
    }

    /// Records one embedding call.
    pub fn record_embed(&self, provider: &str, input_tokens: u64) {
        self.update(provider, |totals| {
            totals.embed_requests += 1;
            totals.input_tokens += input_tokens;
        });
    }

    /// Records one failed attempt.
    pub fn record_failure(&self, provider: &str) {
        self.update(provider, |totals| totals.failures += 1);
    }

    /// Totals per provider and overall.
    pub fn snapshot(&self) -> UsageSnapshot {
        let providers = self
            .providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut total = UsageTotals::default();
        for totals in providers.values() {
            total.add(totals);
        }
        UsageSnapshot { total, providers }
    }

    /// Totals over every provider.
    pub fn total(&self) -> UsageTotals {
        self.snapshot().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_and_costs() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        let price = LlmPrice {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
        };
        let cost = cost(Some(&price), 1_000_000, 200_000);
        assert!((cost - 6.0).abs() < 1e-9);
        assert_eq!(super::cost(None, 10, 10), 0.0);
    }

    #[test]
    fn totals_add_up() {
        let meter = UsageMeter::default();
        let usage = |i, o, c, e| Usage {
            input_tokens: i,
            output_tokens: o,
            cost_usd: c,
            estimated: e,
        };
        meter.record("a", &usage(10, 5, 0.5, false));
        meter.record("b", &usage(1, 2, 0.25, true));
        meter.record_failure("a");
        meter.record_embed("b", 7);
        let snapshot = meter.snapshot();
        assert_eq!(snapshot.providers["a"].requests, 1);
        assert_eq!(snapshot.providers["a"].failures, 1);
        assert_eq!(snapshot.total.requests, 2);
        assert_eq!(snapshot.total.input_tokens, 18);
        assert_eq!(snapshot.total.output_tokens, 7);
        assert_eq!(snapshot.total.estimated_requests, 1);
        assert_eq!(snapshot.total.embed_requests, 1);
        assert!((snapshot.total.cost_usd - 0.75).abs() < 1e-12);
    }
}
