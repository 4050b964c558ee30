//! Provider health: a models-list probe per provider and the aggregate readiness.

use std::time::Duration;

use aiex_config::LlmProviderKind;
use aiex_resilience::BreakerState;
use serde_json::Value;
use tokio::time::{timeout_at, Instant};

use crate::answer::millis;
use crate::client::Provider;
use crate::http::send;
use crate::providers;

/// Health of one provider.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProviderHealth {
    pub name: String,
    pub kind: LlmProviderKind,
    pub model: String,
    /// Whether the provider answered its probe (models list) with a success.
    pub ok: bool,
    /// Whether the model is in the provider's list, when the provider lists models.
    pub model_available: Option<bool>,
    pub breaker: BreakerState,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// Health of every provider, and whether the layer can serve requests.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HealthReport {
    /// Every chat role (`fast`, `smart`) has at least one healthy provider.
    pub ready: bool,
    pub providers: Vec<ProviderHealth>,
}

pub(crate) async fn probe(provider: &Provider) -> ProviderHealth {
    let started = Instant::now();
    let deadline = started + provider.first_token_timeout.min(Duration::from_secs(10));
    let config = &provider.config;
    let mut health = ProviderHealth {
        name: config.name.clone(),
        kind: config.kind,
        model: config.model.clone(),
        ok: false,
        model_available: None,
        breaker: provider.breaker.state(),
        latency_ms: 0,
        error: None,
    };
    let request = providers::health_request(&provider.http, config);
    match send(provider, request, deadline, started).await {
        Ok(response) => {
            health.ok = true;
            if let Ok(Ok(body)) = timeout_at(deadline, response.json::<Value>()).await {
                health.model_available =
                    providers::listed_models(config.kind, &body).map(|models| {
                        models.iter().any(|m| {
                            m == &config.model || m.split(':').next() == Some(&config.model)
                        })
                    });
            }
        }
        Err(err) => health.error = Some(err.to_string()),
    }
    health.latency_ms = millis(started.elapsed());
    health
}
