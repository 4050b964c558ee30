//! The Qdrant server or cluster seen from a node in server mode (`vector.backend = "server"`): a
//! `/readyz` check (the server answers and every shard of Aiex's collections has an active
//! replica) and Prometheus metrics (request latency, failures and retries; shards and replicas
//! per collection as the last check saw them).

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiex_indexer::store::server::stats::{request_stats, LATENCY_BUCKETS};
use aiex_indexer::store::server::{cluster_health, ClusterHealth};
use parking_lot::Mutex;

use crate::server::metrics::{write_histogram, write_metric, MetricsHook};
use crate::server::{BoxFuture, ReadinessCheck};

/// How long a check's answer is reused: `/readyz` may be polled often by every load balancer.
const CHECK_TTL: Duration = Duration::from_secs(5);

/// The last check, shared by the readiness check and the metrics.
#[derive(Default)]
struct Last {
    at: Option<Instant>,
    verdict: Option<Result<(), String>>,
    health: Option<ClusterHealth>,
}

/// The readiness check and the metrics hook of one node.
pub struct QdrantHealth {
    config: Arc<aiex_config::Config>,
    last: Mutex<Last>,
}

impl QdrantHealth {
    pub fn new(config: Arc<aiex_config::Config>) -> Arc<Self> {
        Arc::new(QdrantHealth {
            config,
            last: Mutex::new(Last::default()),
        })
    }

    async fn probe(&self) -> Result<(), String> {
        let config = Arc::clone(&self.config);
        let health = tokio::task::spawn_blocking(move || cluster_health(&config))
            .await
            .map_err(|err| format!("checking Qdrant: {err}"))?;
        let mut last = self.last.lock();
        last.at = Some(Instant::now());
        let verdict = match health {
            Ok(health) => {
                let verdict = health.verdict();
                last.health = Some(health);
                verdict
            }
            Err(err) => Err(err.to_string()),
        };
        last.verdict = Some(verdict.clone());
        verdict
    }
}

impl ReadinessCheck for QdrantHealth {
    fn name(&self) -> &str {
        "qdrant"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            {
                let last = self.last.lock();
                if let (Some(at), Some(verdict)) = (last.at, &last.verdict) {
                    if at.elapsed() < CHECK_TTL {
                        return verdict.clone();
                    }
                }
            }
            self.probe().await
        })
    }
}

impl MetricsHook for QdrantHealth {
    fn render(&self, out: &mut String) {
        let stats = request_stats();
        write_metric(
            out,
            "aiex_qdrant_requests_total",
            "counter",
            "Requests to Qdrant (every attempt, retries included).",
            &[(String::new(), stats.requests as f64)],
        );
        write_metric(
            out,
            "aiex_qdrant_request_failures_total",
            "counter",
            "Requests to Qdrant that failed (unreachable, timed out, refused or an error answer).",
            &[(String::new(), stats.failures as f64)],
        );
        write_metric(
            out,
            "aiex_qdrant_retries_total",
            "counter",
            "Requests to Qdrant retried after a transient failure.",
            &[(String::new(), stats.retries as f64)],
        );
        let name = "aiex_qdrant_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Latency of each request to Qdrant.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        write_histogram(
            out,
            name,
            "",
            &LATENCY_BUCKETS,
            &stats.cumulative,
            stats.requests,
            stats.seconds,
        );

        let last = self.last.lock();
        let Some(health) = &last.health else { return };
        let per_collection =
            |value: &dyn Fn(&aiex_indexer::store::server::CollectionHealth) -> u32| {
                health
                    .collections
                    .iter()
                    .map(|c| (format!("collection=\"{}\"", c.name), f64::from(value(c))))
                    .collect::<Vec<_>>()
            };
        write_metric(
            out,
            "aiex_qdrant_shards",
            "gauge",
            "Shards per Qdrant collection, at the last readiness check.",
            &per_collection(&|c| c.shards),
        );
        write_metric(
            out,
            "aiex_qdrant_replicas_active",
            "gauge",
            "Active shard replicas per Qdrant collection, at the last readiness check.",
            &per_collection(&|c| c.active_replicas),
        );
        write_metric(
            out,
            "aiex_qdrant_replicas",
            "gauge",
            "Shard replicas per Qdrant collection, at the last readiness check.",
            &per_collection(&|c| c.replicas),
        );
        write_metric(
            out,
            "aiex_qdrant_shards_unavailable",
            "gauge",
            "Shards with no active replica per Qdrant collection, at the last readiness check.",
            &per_collection(&|c| c.unavailable_shards.len() as u32),
        );
    }
}
