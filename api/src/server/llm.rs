//! The LLM layer seen from the server: a `/readyz` check (not ready only when every provider of
//! the `smart` role fails its probe; no LLM configured means extractive mode, which is ready) and
//! Prometheus metrics (tokens, cost, requests, failures and breaker state per provider), plus
//! the research sessions' own gauges.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::server::metrics::{write_metric, MetricsHook};
use crate::server::research::ResearchManager;
use crate::server::{BoxFuture, ReadinessCheck};

/// How long a probe's answer is reused: `/readyz` may be polled often, probes cost a request
/// to every provider.
const PROBE_TTL: Duration = Duration::from_secs(10);

/// Readiness of the providers of the `smart` role.
pub struct LlmReadiness {
    llm: aiex_llm::Llm,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl LlmReadiness {
    pub fn new(llm: aiex_llm::Llm) -> Self {
        LlmReadiness {
            llm,
            last: Mutex::new(None),
        }
    }

    async fn probe(&self) -> Result<(), String> {
        let smart = self.llm.role_providers(aiex_llm::Role::Smart);
        if smart.is_empty() {
            return Ok(());
        }
        let report = self.llm.health().await;
        let healthy = report
            .providers
            .iter()
            .any(|provider| provider.ok && smart.contains(&provider.name));
        if healthy {
            return Ok(());
        }
        let errors: Vec<String> = report
            .providers
            .iter()
            .filter(|provider| smart.contains(&provider.name))
            .map(|provider| {
                format!(
                    "{}: {}",
                    provider.name,
                    provider.error.as_deref().unwrap_or("unhealthy")
                )
            })
            .collect();
        Err(format!(
            "no smart-role provider is healthy ({})",
            errors.join("; ")
        ))
    }
}

impl ReadinessCheck for LlmReadiness {
    fn name(&self) -> &str {
        "llm"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if let Some((at, result)) = self.last.lock().as_ref() {
                if at.elapsed() < PROBE_TTL {
                    return result.clone();
                }
            }
            let result = self.probe().await;
            *self.last.lock() = Some((Instant::now(), result.clone()));
            result
        })
    }
}

/// Escapes a label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One number of a provider's usage totals.
type TotalsValue<'a> = &'a dyn Fn(&aiex_llm::UsageTotals) -> f64;

/// LLM usage and breaker states per provider.
pub struct LlmMetrics {
    llm: aiex_llm::Llm,
}

impl LlmMetrics {
    pub fn new(llm: aiex_llm::Llm) -> Self {
        LlmMetrics { llm }
    }
}

impl MetricsHook for LlmMetrics {
    fn render(&self, out: &mut String) {
        let snapshot = self.llm.meter().snapshot();
        let per_provider = |value: TotalsValue<'_>| -> Vec<(String, f64)> {
            snapshot
                .providers
                .iter()
                .map(|(name, totals)| (format!("provider=\"{}\"", label(name)), value(totals)))
                .collect()
        };
        let series: [(&str, &str, TotalsValue<'_>); 6] = [
            (
                "aiex_llm_requests_total",
                "LLM requests by provider.",
                &|t| t.requests as f64,
            ),
            (
                "aiex_llm_failures_total",
                "Failed LLM requests by provider.",
                &|t| t.failures as f64,
            ),
            (
                "aiex_llm_input_tokens_total",
                "LLM input tokens by provider.",
                &|t| t.input_tokens as f64,
            ),
            (
                "aiex_llm_output_tokens_total",
                "LLM output tokens by provider.",
                &|t| t.output_tokens as f64,
            ),
            (
                "aiex_llm_cost_usd_total",
                "LLM cost in US dollars by provider.",
                &|t| t.cost_usd,
            ),
            (
                "aiex_llm_cancelled_total",
                "LLM requests cancelled by their caller, by provider.",
                &|t| t.cancelled as f64,
            ),
        ];
        for (name, help, value) in series {
            write_metric(out, name, "counter", help, &per_provider(value));
        }
        let states: Vec<(String, f64)> = self
            .llm
            .breaker_states()
            .into_iter()
            .flat_map(|(provider, state)| {
                [
                    aiex_llm::BreakerState::Closed,
                    aiex_llm::BreakerState::Open,
                    aiex_llm::BreakerState::HalfOpen,
                ]
                .into_iter()
                .map(move |candidate| {
                    (
                        format!(
                            "provider=\"{}\",state=\"{}\"",
                            label(&provider),
                            candidate.as_str()
                        ),
                        if candidate == state { 1.0 } else { 0.0 },
                    )
                })
            })
            .collect();
        write_metric(
            out,
            "aiex_llm_breaker_state",
            "gauge",
            "Circuit breaker state per provider (1 for the current state).",
            &states,
        );
    }
}

/// Research sessions running and started.
pub struct ResearchMetrics {
    research: Arc<ResearchManager>,
}

impl ResearchMetrics {
    pub fn new(research: Arc<ResearchManager>) -> Self {
        ResearchMetrics { research }
    }
}

impl MetricsHook for ResearchMetrics {
    fn render(&self, out: &mut String) {
        write_metric(
            out,
            "aiex_research_sessions_running",
            "gauge",
            "Research sessions running in this process.",
            &[(String::new(), self.research.running_count() as f64)],
        );
        write_metric(
            out,
            "aiex_research_sessions_queued",
            "gauge",
            "Interrupted research sessions waiting for their turn to be resumed.",
            &[(String::new(), self.research.queued_count() as f64)],
        );
        write_metric(
            out,
            "aiex_research_sessions_started_total",
            "counter",
            "Research sessions started or resumed by this process.",
            &[(String::new(), self.research.started_count() as f64)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llm_metrics_name_every_provider() {
        let config = aiex_config::Config::load(&aiex_config::LoadOptions {
            env: Some(Vec::new()),
            overrides: vec![
                ("llm.url".into(), "http://127.0.0.1:9".into()),
                ("llm.model".into(), "m".into()),
            ],
            ..aiex_config::LoadOptions::default()
        })
        .expect("valid");
        let llm = aiex_llm::Llm::from_config(&config.llm)
            .expect("llm")
            .expect("configured");
        let mut out = String::new();
        LlmMetrics::new(llm).render(&mut out);
        assert!(
            out.contains("# TYPE aiex_llm_input_tokens_total counter"),
            "{out}"
        );
        assert!(
            out.contains("aiex_llm_breaker_state{provider=\"default\",state=\"closed\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("aiex_llm_breaker_state{provider=\"default\",state=\"open\"} 0"),
            "{out}"
        );
    }
}
