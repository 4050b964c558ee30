//! The coordinator: one query fanned out to every requested source at once, each under its own
//! deadline inside an overall budget; results streamed as they arrive; a fused, deduplicated list
//! at the end. A slow, failing, hanging or panicking source never delays or fails the others: its
//! failure is an event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cache::{CacheStats, ResultCache};
use crate::event::{SearchEvent, SourceTiming, Timings};
use crate::fusion::{fuse, FusionParams, RankedList};
use crate::hit::Hit;
use crate::source::{Source, SourceError, SourceQuery, SourceResults};

/// Longest snippet kept from any source.
const MAX_SNIPPET_BYTES: usize = 2_000;
/// Most hits kept from one source.
const MAX_HITS_PER_SOURCE: usize = 200;

/// Deadlines, fusion and cache settings.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    /// Everything, fusion included, finishes within this.
    pub budget: Duration,
    /// Deadline of a source without its own entry in `deadlines`.
    pub default_deadline: Duration,
    pub deadlines: HashMap<String, Duration>,
    pub fusion: FusionParams,
    /// Upper bound of the result cache.
    pub cache_bytes: u64,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        CoordinatorOptions {
            budget: Duration::from_secs(10),
            default_deadline: Duration::from_secs(8),
            deadlines: HashMap::new(),
            fusion: FusionParams::default(),
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// One search through the coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatedSearch {
    pub query: SourceQuery,
    /// Source names to ask (`code`, `docs`, `web`, `web:serper`, …); empty means all.
    pub sources: Vec<String>,
}

enum Outcome {
    Hits {
        results: SourceResults,
        cached: bool,
    },
    Failed(String),
}

/// Fans queries out to its sources.
pub struct Coordinator {
    sources: Vec<Arc<dyn Source>>,
    cache: ResultCache,
    options: CoordinatorOptions,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("sources", &self.source_names())
            .finish()
    }
}

/// Whether a requested name selects `source`: exactly, or `web` for every `web:*`.
fn selects(requested: &str, source: &str) -> bool {
    requested == source
        || source
            .strip_prefix(requested)
            .is_some_and(|rest| rest.starts_with(':'))
}

impl Coordinator {
    pub fn new(sources: Vec<Arc<dyn Source>>, options: CoordinatorOptions) -> Self {
        Coordinator {
            cache: ResultCache::new(options.cache_bytes),
            sources,
            options,
        }
    }

    pub fn source_names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name().to_string()).collect()
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Starts `search`; its events arrive on the returned receiver, the last one `done`. Dropping
    /// the receiver cancels the search. Must be called within a tokio runtime.
    pub fn search(self: &Arc<Self>, search: CoordinatedSearch) -> mpsc::Receiver<SearchEvent> {
        let (sender, receiver) = mpsc::channel(64);
        let this = Arc::clone(self);
        tokio::spawn(async move { this.run(search, sender).await });
        receiver
    }

    /// Runs `search` and collects all its events.
    pub async fn search_all(self: &Arc<Self>, search: CoordinatedSearch) -> Vec<SearchEvent> {
        let mut receiver = self.search(search);
        let mut events = Vec::new();
        while let Some(event) = receiver.recv().await {
            events.push(event);
        }
        events
    }

    async fn run(self: Arc<Self>, search: CoordinatedSearch, sender: mpsc::Sender<SearchEvent>) {
        let started = Instant::now();
        let budget_end = tokio::time::Instant::now() + self.options.budget;
        let mut id = 0u64;
        let mut next = || {
            id += 1;
            id
        };

        let mut selected: Vec<Arc<dyn Source>> = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        if search.sources.is_empty() {
            selected = self.sources.clone();
        } else {
            for requested in &search.sources {
                let matching: Vec<&Arc<dyn Source>> = self
                    .sources
                    .iter()
                    .filter(|source| selects(requested, source.name()))
                    .collect();
                if matching.is_empty() {
                    unknown.push(requested.clone());
                }
                for source in matching {
                    if !selected.iter().any(|s| s.name() == source.name()) {
                        selected.push(Arc::clone(source));
                    }
                }
            }
        }

        for requested in unknown {
            let error = format!(
                "no such source (available: {})",
                self.source_names().join(", ")
            );
            let event = SearchEvent::SourceFailed {
                id: next(),
                source: requested,
                error,
            };
            if sender.send(event).await.is_err() {
                return;
            }
        }

        let (outcome_sender, mut outcomes) = mpsc::unbounded_channel::<(usize, Outcome, f64)>();
        let mut tasks = Vec::with_capacity(selected.len());
        for (index, source) in selected.iter().enumerate() {
            let event = SearchEvent::SourceStarted {
                id: next(),
                source: source.name().to_string(),
            };
            if sender.send(event).await.is_err() {
                return;
            }
            let source = Arc::clone(source);
            let this = Arc::clone(&self);
            let query = search.query.clone();
            let outcome_sender = outcome_sender.clone();
            let deadline = self
                .options
                .deadlines
                .get(source.name())
                .copied()
                .unwrap_or(self.options.default_deadline);
            tasks.push(tokio::spawn(async move {
                let source_started = Instant::now();
                let outcome = this.ask(source, query, deadline).await;
                let ms = source_started.elapsed().as_secs_f64() * 1000.0;
                let _ = outcome_sender.send((index, outcome, ms));
            }));
        }
        drop(outcome_sender);

        let mut lists: Vec<Option<RankedList>> = vec![None; selected.len()];
        let mut timings = Timings::default();
        let mut reported = vec![false; selected.len()];
        loop {
            let received = tokio::time::timeout_at(budget_end, outcomes.recv()).await;
            let Ok(Some((index, outcome, ms))) = received else {
                break;
            };
            reported[index] = true;
            let source = selected[index].name().to_string();
            let event = match outcome {
                Outcome::Hits { results, cached } => {
                    let SourceResults { hits, notes } = results;
                    timings.sources.push(SourceTiming {
                        source: source.clone(),
                        ms,
                        cached,
                        ok: true,
                        hits: hits.len(),
                    });
                    lists[index] = Some(RankedList {
                        source: source.clone(),
                        hits: hits.clone(),
                    });
                    SearchEvent::Results {
                        id: next(),
                        source,
                        hits,
                        took_ms: ms,
                        cached,
                        notes,
                    }
                }
                Outcome::Failed(error) => {
                    timings.sources.push(SourceTiming {
                        source: source.clone(),
                        ms,
                        cached: false,
                        ok: false,
                        hits: 0,
                    });
                    SearchEvent::SourceFailed {
                        id: next(),
                        source,
                        error,
                    }
                }
            };
            if sender.send(event).await.is_err() {
                tasks.iter().for_each(|task| task.abort());
                return;
            }
        }
        // Whatever has not reported within the budget is cut off.
        for (index, task) in tasks.iter().enumerate() {
            if !reported[index] {
                task.abort();
                let source = selected[index].name().to_string();
                timings.sources.push(SourceTiming {
                    source: source.clone(),
                    ms: started.elapsed().as_secs_f64() * 1000.0,
                    cached: false,
                    ok: false,
                    hits: 0,
                });
                let event = SearchEvent::SourceFailed {
                    id: next(),
                    source,
                    error: format!(
                        "overall search budget of {} ms exceeded",
                        self.options.budget.as_millis()
                    ),
                };
                if sender.send(event).await.is_err() {
                    return;
                }
            }
        }

        let fusion_started = Instant::now();
        let lists: Vec<RankedList> = lists.into_iter().flatten().collect();
        let merged = fuse(&lists, &self.options.fusion, search.query.limit.max(1));
        timings.fusion_ms = fusion_started.elapsed().as_secs_f64() * 1000.0;
        let event = SearchEvent::Merged {
            id: next(),
            hits: merged,
        };
        if sender.send(event).await.is_err() {
            return;
        }
        timings.total_ms = started.elapsed().as_secs_f64() * 1000.0;
        let _ = sender
            .send(SearchEvent::Done {
                id: next(),
                timings,
            })
            .await;
    }

    /// Asks one source, through the cache, under its deadline; panics become failures.
    async fn ask(
        &self,
        source: Arc<dyn Source>,
        query: SourceQuery,
        deadline: Duration,
    ) -> Outcome {
        let token = source.cache_token();
        let key = ResultCache::key(source.name(), &token, &query);
        if let Some(results) = self.cache.get(&key) {
            return Outcome::Hits {
                results,
                cached: true,
            };
        }
        let ttl = source.cache_ttl();
        let name = source.name().to_string();
        let task = tokio::spawn(async move { source.search(&query).await });
        let abort = task.abort_handle();
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(Ok(results))) => {
                let results = SourceResults {
                    hits: sanitize(results.hits),
                    notes: results.notes,
                };
                self.cache.insert(key, results.clone(), ttl);
                Outcome::Hits {
                    results,
                    cached: false,
                }
            }
            Ok(Ok(Err(err))) => Outcome::Failed(match err {
                SourceError::Garbage(_) | SourceError::Failed(_) | SourceError::Unavailable(_) => {
                    err.to_string()
                }
            }),
            Ok(Err(join_error)) => {
                if join_error.is_panic() {
                    tracing::error!(source = %name, "source panicked");
                    Outcome::Failed("the source failed unexpectedly".to_string())
                } else {
                    Outcome::Failed("the source was cancelled".to_string())
                }
            }
            Err(_) => {
                abort.abort();
                Outcome::Failed(format!("deadline of {} ms exceeded", deadline.as_millis()))
            }
        }
    }
}

/// Drops unusable hits and trims oversized ones, so one bad source cannot poison the merge.
fn sanitize(hits: Vec<Hit>) -> Vec<Hit> {
    hits.into_iter()
        .filter(Hit::is_sane)
        .take(MAX_HITS_PER_SOURCE)
        .map(|mut hit| {
            if hit.snippet.len() > MAX_SNIPPET_BYTES {
                let mut cut = MAX_SNIPPET_BYTES;
                while !hit.snippet.is_char_boundary(cut) {
                    cut -= 1;
                }
                hit.snippet.truncate(cut);
                hit.highlights.retain(|&(_, end)| end <= cut);
            }
            hit
        })
        .collect()
}
