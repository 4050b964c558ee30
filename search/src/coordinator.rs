//! The coordinator: one query fanned out to every requested source at once, each under its own
//! deadline inside an overall budget; results streamed as they arrive; a fused, deduplicated list
//! at the end. A slow, failing, hanging or panicking source never delays or fails the others: its
//! failure is an event.
//!
//! A search runs in phases (select and start the sources, collect their outcomes under the
//! deadlines, fuse and finish); the sources run as tasks of one [`JoinSet`], so a caller that
//! drops the receiver cancels them all.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};

use crate::cache::{CacheStats, ResultCache};
use crate::event::{SearchEvent, SourceTiming, Timings};
use crate::fusion::{fuse, FusionParams, RankedList};
use crate::hit::Hit;
use crate::source::{Source, SourceQuery, SourceResults};

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
    /// Shared with the coordinators made by [`Coordinator::with_deadlines`].
    cache: Arc<ResultCache>,
    options: CoordinatorOptions,
}

/// The start of the error of a source that missed its own deadline.
const DEADLINE_EXCEEDED: &str = "deadline of ";
/// The start of the error of a source cut off by the overall budget.
const BUDGET_EXCEEDED: &str = "overall search budget of ";

/// Whether a `source_failed` error says that the source ran out of time (its own deadline or the
/// overall budget) rather than that it failed: a later try with more time may answer.
pub fn is_time_out(error: &str) -> bool {
    error.starts_with(DEADLINE_EXCEEDED) || error.starts_with(BUDGET_EXCEEDED)
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
            cache: Arc::new(ResultCache::new(options.cache_bytes)),
            sources,
            options,
        }
    }

    /// A coordinator over the same sources and result cache whose sources named in `deadlines`
    /// get those deadlines instead (a second try of sources that missed theirs).
    pub fn with_deadlines(&self, deadlines: &HashMap<String, Duration>) -> Coordinator {
        let mut options = self.options.clone();
        for (source, deadline) in deadlines {
            options.deadlines.insert(source.clone(), *deadline);
        }
        Coordinator {
            sources: self.sources.clone(),
            cache: Arc::clone(&self.cache),
            options,
        }
    }

    /// The overall budget of one search.
    pub fn budget(&self) -> Duration {
        self.options.budget
    }

    pub fn source_names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name().to_string()).collect()
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Starts `search`; its events arrive on the returned receiver, the last one `done`. Dropping
    /// the receiver cancels the search and its sources' tasks. Must be called within a tokio
    /// runtime.
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

    /// Runs the phases of `search` until they end or the caller drops the receiver. Either way
    /// the phases' future is dropped at the end, and with it the [`JoinSet`] of source tasks,
    /// which aborts those still running.
    async fn run(self: Arc<Self>, search: CoordinatedSearch, sender: mpsc::Sender<SearchEvent>) {
        let watcher = sender.clone();
        let mut run = Run::new(sender, self.options.budget);
        tokio::select! {
            _ = self.phases(&search, &mut run) => {}
            () = watcher.closed() => {}
        }
    }

    /// Start the sources, collect their outcomes under the deadlines, fuse, finish. `Err` when
    /// the caller has gone.
    async fn phases(
        self: &Arc<Self>,
        search: &CoordinatedSearch,
        run: &mut Run,
    ) -> Result<(), CallerGone> {
        let (selected, unknown) = self.select(&search.sources);
        let tasks = self
            .start_sources(run, &selected, unknown, &search.query)
            .await?;
        let collected = self.collect(run, &selected, tasks).await?;
        self.finish(run, collected, search.query.limit.max(1)).await
    }

    /// The sources `requested` names (all when empty), in order and without duplicates, and the
    /// requested names that select none.
    fn select(&self, requested: &[String]) -> (Vec<Arc<dyn Source>>, Vec<String>) {
        if requested.is_empty() {
            return (self.sources.clone(), Vec::new());
        }
        let mut selected: Vec<Arc<dyn Source>> = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        for name in requested {
            let matching: Vec<&Arc<dyn Source>> = self
                .sources
                .iter()
                .filter(|source| selects(name, source.name()))
                .collect();
            if matching.is_empty() {
                unknown.push(name.clone());
            }
            for source in matching {
                if !selected.iter().any(|s| s.name() == source.name()) {
                    selected.push(Arc::clone(source));
                }
            }
        }
        (selected, unknown)
    }

    /// Reports the unknown names, then starts one task per selected source, each reported as
    /// started first.
    async fn start_sources(
        self: &Arc<Self>,
        run: &mut Run,
        selected: &[Arc<dyn Source>],
        unknown: Vec<String>,
        query: &SourceQuery,
    ) -> Result<SourceTasks, CallerGone> {
        for requested in unknown {
            let error = format!(
                "no such source (available: {})",
                self.source_names().join(", ")
            );
            let id = run.next_id();
            run.send(SearchEvent::SourceFailed {
                id,
                source: requested,
                error,
            })
            .await?;
        }
        let mut tasks = SourceTasks::default();
        for (index, source) in selected.iter().enumerate() {
            let id = run.next_id();
            run.send(SearchEvent::SourceStarted {
                id,
                source: source.name().to_string(),
            })
            .await?;
            let deadline = self
                .options
                .deadlines
                .get(source.name())
                .copied()
                .unwrap_or(self.options.default_deadline);
            let this = Arc::clone(self);
            let source = Arc::clone(source);
            let query = query.clone();
            let handle = tasks.set.spawn(async move {
                let source_started = Instant::now();
                let outcome = this.ask(source, query, deadline).await;
                (outcome, source_started.elapsed().as_secs_f64() * 1000.0)
            });
            tasks.indexes.insert(handle.id(), index);
        }
        Ok(tasks)
    }

    /// Reports each source's outcome as it arrives, until all have or the budget is spent; what
    /// has not reported by then is cut off.
    async fn collect(
        &self,
        run: &mut Run,
        selected: &[Arc<dyn Source>],
        mut tasks: SourceTasks,
    ) -> Result<Collected, CallerGone> {
        let mut collected = Collected::new(selected.len());
        while let Ok(Some(joined)) =
            tokio::time::timeout_at(run.budget_end, tasks.set.join_next_with_id()).await
        {
            let (index, outcome, ms) = tasks.outcome(joined, selected, run.started);
            let id = run.next_id();
            let event = collected.record(id, index, selected[index].name(), outcome, ms);
            run.send(event).await?;
        }
        // Whatever has not reported within the budget is cut off.
        tasks.set.abort_all();
        let budget_ms = self.options.budget.as_millis();
        for (index, source) in selected.iter().enumerate() {
            if collected.reported[index] {
                continue;
            }
            let outcome = Outcome::Failed(format!("{BUDGET_EXCEEDED}{budget_ms} ms exceeded"));
            let ms = run.started.elapsed().as_secs_f64() * 1000.0;
            let id = run.next_id();
            let event = collected.record(id, index, source.name(), outcome, ms);
            run.send(event).await?;
        }
        Ok(collected)
    }

    /// Fuses the lists into the merged one, then reports the timings.
    async fn finish(
        &self,
        run: &mut Run,
        collected: Collected,
        limit: usize,
    ) -> Result<(), CallerGone> {
        let Collected {
            lists, mut timings, ..
        } = collected;
        let fusion_started = Instant::now();
        let lists: Vec<RankedList> = lists.into_iter().flatten().collect();
        let merged = fuse(&lists, &self.options.fusion, limit);
        timings.fusion_ms = fusion_started.elapsed().as_secs_f64() * 1000.0;
        let id = run.next_id();
        run.send(SearchEvent::Merged { id, hits: merged }).await?;
        timings.total_ms = run.started.elapsed().as_secs_f64() * 1000.0;
        let id = run.next_id();
        run.send(SearchEvent::Done { id, timings }).await
    }

    /// Asks one source, through the cache, under its deadline. Runs as the source's own task,
    /// so a panic in the source ends that task only (see [`SourceTasks::outcome`]).
    async fn ask(
        self: Arc<Self>,
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
        match tokio::time::timeout(deadline, source.search(&query)).await {
            Ok(Ok(results)) => {
                let results = SourceResults {
                    hits: sanitize(results.hits),
                    notes: results.notes,
                };
                self.cache.insert(key, results.clone(), source.cache_ttl());
                Outcome::Hits {
                    results,
                    cached: false,
                }
            }
            Ok(Err(err)) => Outcome::Failed(err.to_string()),
            Err(_) => Outcome::Failed(format!(
                "{DEADLINE_EXCEEDED}{} ms exceeded",
                deadline.as_millis()
            )),
        }
    }
}

/// The caller dropped the receiver: the search stops.
#[derive(Debug)]
struct CallerGone;

/// One search under way: its clock, its budget and the ids of the events sent.
struct Run {
    started: Instant,
    budget_end: tokio::time::Instant,
    last_id: u64,
    sender: mpsc::Sender<SearchEvent>,
}

impl Run {
    fn new(sender: mpsc::Sender<SearchEvent>, budget: Duration) -> Self {
        Run {
            started: Instant::now(),
            budget_end: tokio::time::Instant::now() + budget,
            last_id: 0,
            sender,
        }
    }

    /// Ids increase from 1 in the order events are sent.
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    async fn send(&self, event: SearchEvent) -> Result<(), CallerGone> {
        self.sender.send(event).await.map_err(|_| CallerGone)
    }
}

/// The sources' tasks, each with the index of its source. Dropping it aborts them.
#[derive(Default)]
struct SourceTasks {
    set: JoinSet<(Outcome, f64)>,
    indexes: HashMap<tokio::task::Id, usize>,
}

impl SourceTasks {
    /// The source index, outcome and time in ms of a finished task; a panicked task failed.
    fn outcome(
        &self,
        joined: Result<(tokio::task::Id, (Outcome, f64)), JoinError>,
        selected: &[Arc<dyn Source>],
        started: Instant,
    ) -> (usize, Outcome, f64) {
        let (task, outcome, ms) = match joined {
            Ok((task, (outcome, ms))) => (task, outcome, ms),
            Err(join_error) => {
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let index = self.indexes[&join_error.id()];
                let outcome = if join_error.is_panic() {
                    tracing::error!(source = %selected[index].name(), "source panicked");
                    Outcome::Failed("the source failed unexpectedly".to_string())
                } else {
                    Outcome::Failed("the source was cancelled".to_string())
                };
                (join_error.id(), outcome, ms)
            }
        };
        (self.indexes[&task], outcome, ms)
    }
}

/// What the sources reported: their lists for fusion, their timings, who has reported.
struct Collected {
    lists: Vec<Option<RankedList>>,
    timings: Timings,
    reported: Vec<bool>,
}

impl Collected {
    fn new(sources: usize) -> Self {
        Collected {
            lists: vec![None; sources],
            timings: Timings::default(),
            reported: vec![false; sources],
        }
    }

    /// Records the outcome of source `index` and returns its event.
    fn record(
        &mut self,
        id: u64,
        index: usize,
        source: &str,
        outcome: Outcome,
        ms: f64,
    ) -> SearchEvent {
        self.reported[index] = true;
        let source = source.to_string();
        match outcome {
            Outcome::Hits { results, cached } => {
                let SourceResults { hits, notes } = results;
                self.timings.sources.push(SourceTiming {
                    source: source.clone(),
                    ms,
                    cached,
                    ok: true,
                    hits: hits.len(),
                });
                self.lists[index] = Some(RankedList {
                    source: source.clone(),
                    hits: hits.clone(),
                });
                SearchEvent::Results {
                    id,
                    source,
                    hits,
                    took_ms: ms,
                    cached,
                    notes,
                }
            }
            Outcome::Failed(error) => {
                self.timings.sources.push(SourceTiming {
                    source: source.clone(),
                    ms,
                    cached: false,
                    ok: false,
                    hits: 0,
                });
                SearchEvent::SourceFailed { id, source, error }
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
