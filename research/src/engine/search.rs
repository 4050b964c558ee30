//! The search stage: a round's queries through the coordinator, a few at a time, each recorded
//! (and synced) as it finishes; local hits are completed with their chunk's full text. A local
//! source (`code`, `docs`) that ran out of time is asked once more with the whole search budget
//! as its deadline: local search is cheap, its short deadline is there for the web's sake. What
//! still fails is recorded with the search, so the report can say which searches failed and why.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use aiex_indexer::CollectionKind;
use aiex_search::coordinator::is_time_out;
use aiex_search::{CoordinatedSearch, Hit, SearchEvent, SourceQuery};
use tokio::task::JoinSet;

use super::run::{Run, Step};
use super::ResearchEngine;
use crate::event::{Budget, EventKind, ResearchRequest, SourceFailure, Stage};
use crate::evidence::FoundText;
use crate::text::{now_millis, rfc3339};
use crate::Error;

/// What a search found: the texts, the sources' notes and the sources that failed.
#[derive(Debug, Default)]
pub(super) struct Found {
    texts: Vec<FoundText>,
    notes: Vec<String>,
    failures: Vec<SourceFailure>,
}

/// What a search found, or why it failed as a whole.
type SearchResult = std::result::Result<Found, String>;

/// What a search task hands back: sub-question, query, start time and result.
type SearchOutcome = (usize, String, Instant, SearchResult);

/// Whether `source` searches this machine's collections.
fn is_local(source: &str) -> bool {
    [CollectionKind::Code, CollectionKind::Docs]
        .iter()
        .any(|kind| kind.name() == source)
}

/// One search of a round.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RoundQuery {
    pub sub: usize,
    pub query: String,
    /// A called function looked up by name: searched in the code source only.
    pub call: bool,
}

impl Run {
    /// The searches of `round`: the plan's queries first, then the queries of the gaps found by
    /// the round before and the functions they call; beyond the request's `depth`, the called
    /// functions only.
    pub(super) fn round_queries(&self, round: u32, depth: u32) -> Vec<RoundQuery> {
        let Some(plan) = &self.state.plan else {
            return Vec::new();
        };
        if round == 1 {
            return plan
                .sub_questions
                .iter()
                .flat_map(|sub| {
                    sub.queries.iter().map(move |query| RoundQuery {
                        sub: sub.index,
                        query: query.clone(),
                        call: false,
                    })
                })
                .collect();
        }
        let Some((_, gaps)) = self.state.evidence.get(&(round - 1)) else {
            return Vec::new();
        };
        let earlier: HashSet<(usize, &String)> = self
            .state
            .searches
            .keys()
            .map(|(_, sub, query)| (*sub, query))
            .collect();
        let mut out: Vec<RoundQuery> = Vec::new();
        for gap in gaps {
            let queries = if round <= depth {
                &gap.queries[..]
            } else {
                &[]
            };
            let searches = queries
                .iter()
                .map(|query| (query, false))
                .chain(gap.calls.iter().map(|call| (call, true)));
            for (query, call) in searches {
                let sub = gap.sub_question;
                if !earlier.contains(&(sub, query))
                    && !out
                        .iter()
                        .any(|known| known.sub == sub && known.query == *query)
                {
                    out.push(RoundQuery {
                        sub,
                        query: query.clone(),
                        call,
                    });
                }
            }
        }
        out
    }

    /// Runs the queries of `round` not finished yet, `search_concurrency` at a time, within the
    /// search and wall-time budgets.
    pub(super) async fn search_round(
        &mut self,
        round: u32,
        queries: &[RoundQuery],
        request: &ResearchRequest,
    ) -> Step<()> {
        let mut pending: Vec<RoundQuery> = queries
            .iter()
            .filter(|search| {
                !self
                    .state
                    .searches
                    .contains_key(&(round, search.sub, search.query.clone()))
            })
            .cloned()
            .collect();
        pending.reverse();
        let mut running: JoinSet<SearchOutcome> = JoinSet::new();
        let mut stopped = false;
        loop {
            if !stopped {
                stopped = self.launch_searches(round, &mut pending, &mut running, request)?;
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let outcome =
                joined.map_err(|err| Error::Internal(format!("a search task stopped: {err}")))?;
            self.record_search(round, outcome).await?;
        }
        self.check_cancelled()
    }

    /// Starts pending searches while fewer than `search_concurrency` run; true when a cancel or a
    /// budget stops the round from starting more.
    fn launch_searches(
        &mut self,
        round: u32,
        pending: &mut Vec<RoundQuery>,
        running: &mut JoinSet<SearchOutcome>,
        request: &ResearchRequest,
    ) -> Step<bool> {
        let concurrency = self.engine.config.research.search_concurrency;
        let max_searches = self.engine.config.research.max_searches;
        while running.len() < concurrency && !pending.is_empty() {
            if self.is_cancelled() {
                return Ok(true);
            }
            if self.state.searches_run + running.len() >= max_searches {
                let used = (self.state.searches_run + running.len()) as f64;
                self.budget(Budget::Searches, Stage::Search, max_searches as f64, used)?;
                return Ok(true);
            }
            if !self.wall_time_left(Stage::Search)? {
                return Ok(true);
            }
            let Some(RoundQuery { sub, query, call }) = pending.pop() else {
                break;
            };
            let sources = if call {
                // A function's definition is in the code: no web search for its name.
                let code = CollectionKind::Code.name().to_owned();
                if !request.sources.is_empty() && !request.sources.contains(&code) {
                    continue;
                }
                vec![code]
            } else {
                request.sources.clone()
            };
            self.emit(EventKind::SearchStarted {
                round,
                sub_question: sub,
                query: query.clone(),
            })?;
            let engine = Arc::clone(&self.engine);
            let collections = request.collections.clone();
            running.spawn(async move {
                let started = Instant::now();
                let result = engine.search_one(&query, collections, sources).await;
                (sub, query, started, result)
            });
        }
        Ok(false)
    }

    /// Records a finished search and syncs it, so that a resumed session does not repeat it.
    async fn record_search(&mut self, round: u32, outcome: SearchOutcome) -> Step<()> {
        let (sub, query, started, result) = outcome;
        match result {
            Ok(found) => self.emit(EventKind::SearchCompleted {
                round,
                sub_question: sub,
                query,
                found: found.texts,
                took_ms: started.elapsed().as_millis() as u64,
                notes: found.notes,
                failures: found.failures,
            })?,
            Err(error) => self.emit(EventKind::SearchFailed {
                round,
                sub_question: sub,
                query,
                error,
            })?,
        }
        self.sync().await?;
        Ok(())
    }
}

impl ResearchEngine {
    /// One search through the coordinator, local sources that ran out of time asked once more;
    /// local hits are completed with their chunk's full text.
    async fn search_one(
        &self,
        query: &str,
        collections: Vec<String>,
        sources: Vec<String>,
    ) -> SearchResult {
        let hits_per_search = self.config.research.hits_per_search;
        let mut source_query = SourceQuery::new(query, hits_per_search);
        source_query.collections = collections;
        let search = CoordinatedSearch {
            query: source_query,
            sources,
        };
        let mut merged = merged_hits(self.coordinator.search_all(search.clone()).await)?;
        let late: Vec<String> = merged
            .failures
            .iter()
            .filter(|failure| is_local(&failure.source) && is_time_out(&failure.error))
            .map(|failure| failure.source.clone())
            .collect();
        if !late.is_empty() {
            merged = self.retry_late(search, merged, late).await?;
        }
        let retrieved_at = rfc3339(now_millis());
        let mut texts: Vec<FoundText> = merged
            .hits
            .iter()
            .take(hits_per_search)
            .map(|hit| found_text(hit, &retrieved_at))
            .collect();
        self.complete_local_chunks(&merged.hits, &mut texts).await?;
        Ok(Found {
            texts,
            notes: merged.notes,
            failures: merged.failures,
        })
    }

    /// `search` again with the whole search budget as the deadline of the `late` local sources,
    /// beside the sources that answered the first time (from the result cache); failures of the
    /// first try that were not retried are kept.
    async fn retry_late(
        &self,
        search: CoordinatedSearch,
        first: Merged,
        late: Vec<String>,
    ) -> std::result::Result<Merged, String> {
        let deadline = self.coordinator.budget();
        let deadlines: HashMap<String, std::time::Duration> = late
            .iter()
            .map(|source| (source.clone(), deadline))
            .collect();
        tracing::info!(sources = ?late, deadline_ms = deadline.as_millis() as u64, "local sources ran out of time; retrying");
        let patient = Arc::new(self.coordinator.with_deadlines(&deadlines));
        let mut sources = first.answered.clone();
        sources.extend(late.iter().cloned());
        let retry = CoordinatedSearch {
            query: search.query,
            sources,
        };
        let mut second = merged_hits(patient.search_all(retry).await)?;
        let mut notes = first.notes;
        for source in &late {
            notes.push(format!(
                "source {source} ran out of time and was asked again with a {} ms deadline",
                deadline.as_millis()
            ));
        }
        for note in second.notes {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        second.notes = notes;
        let kept = first
            .failures
            .into_iter()
            .filter(|failure| !late.contains(&failure.source));
        second.failures = kept.chain(second.failures).collect();
        Ok(second)
    }

    /// Replaces the snippets of local hits with their chunk's full text and lines, a function
    /// split into several chunks whole (chunk look-ups on the search CPU pool).
    async fn complete_local_chunks(
        &self,
        hits: &[Hit],
        found: &mut [FoundText],
    ) -> std::result::Result<(), String> {
        let Some(local) = &self.local else {
            return Ok(());
        };
        let lookups: Vec<(usize, String, u64)> = hits
            .iter()
            .take(found.len())
            .enumerate()
            .filter_map(|(position, hit)| {
                Some((position, hit.locator.collection.clone()?, hit.chunk_id?))
            })
            .collect();
        if lookups.is_empty() {
            return Ok(());
        }
        let local_for_task = Arc::clone(local);
        let chunks = aiex_search::sources::local::run_cpu(&local.pool, move || {
            lookups
                .into_iter()
                .filter_map(|(position, collection, id)| {
                    let searcher = local_for_task.searcher_of(&collection)?;
                    match searcher.get_whole_symbol(&collection, id) {
                        Ok(chunk) => chunk.map(|chunk| (position, chunk)),
                        Err(err) => {
                            tracing::warn!(error = %err, "chunk look-up failed");
                            None
                        }
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|err| err.to_string())?;
        for (position, chunk) in chunks {
            let item = &mut found[position];
            item.text = chunk.text;
            item.parent = chunk.parent;
            item.locator.start_line = Some(chunk.start_line);
            item.locator.end_line = Some(chunk.end_line);
        }
        Ok(())
    }
}

/// A coordinated search's outcome: the merged hits, the sources' notes, the sources that failed
/// and those that answered.
#[derive(Debug, Default)]
struct Merged {
    hits: Vec<Hit>,
    notes: Vec<String>,
    failures: Vec<SourceFailure>,
    answered: Vec<String>,
}

/// The outcome of a coordinated search from its events; an error when it ended without a merge.
fn merged_hits(events: Vec<SearchEvent>) -> std::result::Result<Merged, String> {
    let mut outcome = Merged::default();
    let mut merged = None;
    for event in events {
        match event {
            SearchEvent::Results { source, notes, .. } => {
                outcome.notes.extend(notes);
                outcome.answered.push(source);
            }
            SearchEvent::SourceFailed { source, error, .. } => {
                outcome.failures.push(SourceFailure { source, error })
            }
            SearchEvent::Merged { hits, .. } => merged = Some(hits),
            _ => {}
        }
    }
    match merged {
        Some(hits) => {
            outcome.hits = hits;
            Ok(outcome)
        }
        None if outcome.failures.is_empty() => Err("the search ended without results".to_string()),
        None => Err(outcome
            .failures
            .iter()
            .map(|failure| format!("source {} failed: {}", failure.source, failure.error))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// A hit as a found text (its snippet as the text until the chunk is looked up).
fn found_text(hit: &Hit, retrieved_at: &str) -> FoundText {
    FoundText {
        locator: hit.locator.clone(),
        parent: None,
        text: hit.snippet.clone(),
        score: hit.score,
        retrieved_at: retrieved_at.to_string(),
    }
}
