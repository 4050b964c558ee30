//! Prometheus metrics in the text exposition format: requests and latency per route, the search
//! cache, source latencies, index sizes, jobs and open streams; other components (LLM providers:
//! errors, breaker states, tokens, cost) add theirs through [`MetricsHook`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::{Mutex, RwLock};

use crate::server::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        write_histogram(
            out,
            name,
            labels,
            &BUCKETS,
            &self.counts,
            self.count,
            self.sum,
        );
    }
}

/// Writes one histogram's samples: `cumulative[i]` observations at most `bounds[i]`, `count` in
/// all, `sum` seconds.
pub fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds: &[f64],
    cumulative: &[u64],
    count: u64,
    sum: f64,
) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, observed) in bounds.iter().zip(cumulative) {
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {observed}"
        );
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    let _ = writeln!(out, "{name}_count{braces} {count}");
}

/// Writes more metrics into the exposition (LLM providers, research sessions, …).
pub trait MetricsHook: Send + Sync {
    fn render(&self, out: &mut String);
}

/// Request counts and latencies; source latencies.
#[derive(Default)]
pub struct Metrics {
    /// (method, route, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (method, route) → latency.
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    /// source → latency of its answers.
    sources: Mutex<BTreeMap<String, Histogram>>,
    hooks: RwLock<Vec<Arc<dyn MetricsHook>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Escapes a label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn record_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        self.latency
            .lock()
            .entry((method.to_string(), route.to_string()))
            .or_default()
            .observe(seconds);
    }

    /// Records the per-source timings of a finished search.
    pub fn record_search(&self, timings: &aiex_search::event::Timings) {
        let mut sources = self.sources.lock();
        for source in &timings.sources {
            if !source.cached {
                sources
                    .entry(source.source.clone())
                    .or_default()
                    .observe(source.ms / 1000.0);
            }
        }
    }

    /// Adds a hook whose metrics are written after these.
    pub fn add_hook(&self, hook: Arc<dyn MetricsHook>) {
        self.hooks.write().push(hook);
    }

    /// The request and source metrics, and the hooks'.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP aiex_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE aiex_http_requests_total counter\n");
        for ((method, route, status), count) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "aiex_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                label(route)
            );
        }
        out.push_str("# HELP aiex_http_request_duration_seconds Time to the response headers.\n");
        out.push_str("# TYPE aiex_http_request_duration_seconds histogram\n");
        for ((method, route), histogram) in self.latency.lock().iter() {
            histogram.render(
                out,
                "aiex_http_request_duration_seconds",
                &format!("method=\"{method}\",route=\"{}\"", label(route)),
            );
        }
        out.push_str(
            "# HELP aiex_source_latency_seconds Uncached answers of each search source.\n",
        );
        out.push_str("# TYPE aiex_source_latency_seconds histogram\n");
        for (source, histogram) in self.sources.lock().iter() {
            histogram.render(
                out,
                "aiex_source_latency_seconds",
                &format!("source=\"{}\"", label(source)),
            );
        }
        for hook in self.hooks.read().iter() {
            hook.render(out);
        }
    }
}

/// Writes one gauge or counter with its help and type lines.
pub fn write_metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, f64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Middleware: counts each request and its latency by matched route (never by raw path, so ids
/// do not explode the label space).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .record_request(&method, &route, status, elapsed.as_secs_f64());
    // The access log: the key's id (a prefix of its hash), never the key.
    let key = response
        .extensions()
        .get::<crate::server::auth::Caller>()
        .map_or("-", |caller| caller.0.as_str());
    tracing::info!(
        target: "aiex::access",
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        key = %key,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let metrics = Metrics::default();
        metrics.record_request("GET", "/healthz", 200, 0.0001);
        metrics.record_request("GET", "/healthz", 200, 0.2);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains(
            "aiex_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(out.contains(
            "aiex_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.0005\"} 1"
        ));
        assert!(out.contains(
            "aiex_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 2"
        ));
    }
}
