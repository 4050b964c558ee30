//! One run of a session (a start or a resume): the stage loop, events, syncs and budgets. The
//! stages themselves are `impl Run` blocks in the sibling files.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Journal, ResearchEngine};
use crate::event::{Budget, Completion, EventKind, ResearchEvent, ResearchRequest, Stage};
use crate::evidence::FLOW_ROUNDS;
use crate::report::Report;
use crate::session::SessionState;
use crate::text::{now_millis, rfc3339};
use crate::{Error, Result};

/// One run of a session (a start or a resume).
pub(super) struct Run {
    pub(super) engine: Arc<ResearchEngine>,
    pub(super) session: String,
    pub(super) journal: Journal,
    pub(super) cancelled: watch::Receiver<bool>,
    pub(super) started: Instant,
    pub(super) state: SessionState,
    pub(super) budgets_reported: HashSet<Budget>,
}

/// Why the run stopped early.
pub(super) enum Stop {
    Cancelled,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(err: Error) -> Self {
        Stop::Failed(err)
    }
}

/// A step of the run: its value, or why the run stops.
pub(super) type Step<T> = std::result::Result<T, Stop>;

impl Run {
    /// Runs the stages not done yet; the report, or None when cancelled.
    pub(super) async fn run(mut self, fresh: Option<ResearchRequest>) -> Result<Option<Report>> {
        let outcome = self.stages(fresh).await;
        let result = self.conclude(outcome).await;
        // Every event is written and sent before the caller hears of the end.
        self.journal.close().await;
        result
    }

    /// The last event of a run that stopped early, and what the caller gets.
    async fn conclude(&mut self, outcome: Step<Report>) -> Result<Option<Report>> {
        match outcome {
            Ok(report) => Ok(Some(report)),
            Err(Stop::Cancelled) => {
                self.emit(EventKind::Cancelled {})?;
                self.sync().await?;
                Ok(None)
            }
            Err(Stop::Failed(err)) => {
                // Best effort: the error itself is what the caller needs.
                let _ = self.emit(EventKind::Failed {
                    error: err.to_string(),
                });
                let _ = self.sync().await;
                Err(err)
            }
        }
    }

    /// Records `kind` as the session's next event: into the state now, into the log and to the
    /// subscribers through the journal.
    pub(super) fn emit(&mut self, kind: EventKind) -> Result<()> {
        let event = ResearchEvent {
            id: self.state.last_id + 1,
            at_ms: now_millis(),
            kind,
        };
        self.state.apply(&event);
        self.journal.append(event)
    }

    /// Makes every event so far durable.
    pub(super) async fn sync(&self) -> Result<()> {
        self.journal.sync().await
    }

    pub(super) fn check_cancelled(&self) -> Step<()> {
        if self.is_cancelled() {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    pub(super) fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Reports `budget` as exhausted in `stage` (once per run).
    pub(super) fn budget(
        &mut self,
        budget: Budget,
        stage: Stage,
        limit: f64,
        used: f64,
    ) -> Result<()> {
        if self.budgets_reported.insert(budget) {
            self.emit(EventKind::BudgetExhausted {
                budget,
                stage,
                limit,
                used,
            })?;
        }
        Ok(())
    }

    /// Whether the wall-time budget allows another step of `stage`; reports it when not.
    pub(super) fn wall_time_left(&mut self, stage: Stage) -> Result<bool> {
        let limit = self.engine.config.research.max_wall_secs;
        let used = self.started.elapsed();
        if used > Duration::from_secs(limit) {
            self.budget(Budget::WallTime, stage, limit as f64, used.as_secs_f64())?;
            return Ok(false);
        }
        Ok(true)
    }

    pub(super) async fn begin(&mut self, stage: Stage, round: u32) -> Step<Instant> {
        self.check_cancelled()?;
        self.emit(EventKind::StageStarted { stage, round })?;
        Ok(Instant::now())
    }

    pub(super) async fn finish(&mut self, stage: Stage, round: u32, started: Instant) -> Step<()> {
        self.emit(EventKind::StageCompleted {
            stage,
            round,
            took_ms: started.elapsed().as_millis() as u64,
        })?;
        self.sync().await?;
        Ok(())
    }

    pub(super) async fn skip(&mut self, stage: Stage, round: u32, reason: &str) -> Step<()> {
        self.emit(EventKind::StageSkipped {
            stage,
            round,
            reason: reason.to_string(),
        })?;
        self.sync().await?;
        Ok(())
    }

    fn request(&self) -> Result<ResearchRequest> {
        self.state
            .request
            .clone()
            .ok_or_else(|| Error::Internal("the session has no request".to_string()))
    }

    /// The stages not done yet, in order, then `done`.
    async fn stages(&mut self, fresh: Option<ResearchRequest>) -> Step<Report> {
        self.open(fresh).await?;
        let request = self.request()?;
        if !self.state.is_done(Stage::Plan, 0) {
            let started = self.begin(Stage::Plan, 0).await?;
            self.plan(&request).await?;
            self.finish(Stage::Plan, 0, started).await?;
        }
        let last_round = self.rounds(&request).await?;
        if !self.state.is_done(Stage::Synthesize, 0) || self.state.report.is_none() {
            let started = self.begin(Stage::Synthesize, 0).await?;
            let report = self.synthesize(last_round.max(1)).await?;
            self.emit(EventKind::ReportReady {
                report: Box::new(report),
            })?;
            self.finish(Stage::Synthesize, 0, started).await?;
        }
        self.end().await
    }

    /// The first event of the run: `session_started` (synced), or `resumed` with what was done.
    async fn open(&mut self, fresh: Option<ResearchRequest>) -> Step<()> {
        match fresh {
            Some(request) => {
                self.emit(EventKind::SessionStarted {
                    session: self.session.clone(),
                    request,
                    started_at: rfc3339(now_millis()),
                })?;
                self.sync().await?;
            }
            None => {
                let completed = self
                    .state
                    .completed
                    .iter()
                    .map(|(stage, round)| format!("{}:{round}", stage.name()))
                    .collect();
                self.emit(EventKind::Resumed {
                    session: self.session.clone(),
                    completed,
                })?;
            }
        }
        Ok(())
    }

    /// Search, fetch and evidence, once per round of the request's depth (and up to
    /// [`FLOW_ROUNDS`] more that look up called functions), until a round has no queries; the
    /// last round run.
    async fn rounds(&mut self, request: &ResearchRequest) -> Step<u32> {
        let depth = request.depth.max(1) as u32;
        let mut last_round = 0;
        for round in 1..=depth + FLOW_ROUNDS {
            let queries = self.round_queries(round, depth);
            if queries.is_empty() {
                if round > depth {
                    break;
                }
                for stage in [Stage::Search, Stage::Fetch, Stage::Evidence] {
                    if !self.state.is_done(stage, round) {
                        self.skip(stage, round, "no gaps left from the previous round")
                            .await?;
                    }
                }
                break;
            }
            if !self.state.is_done(Stage::Search, round) {
                let started = self.begin(Stage::Search, round).await?;
                self.search_round(round, &queries, request).await?;
                self.finish(Stage::Search, round, started).await?;
            }
            if !self.state.is_done(Stage::Fetch, round) {
                self.fetch_round(round).await?;
            }
            if !self.state.is_done(Stage::Evidence, round) {
                let started = self.begin(Stage::Evidence, round).await?;
                self.evidence_round(round).await?;
                self.finish(Stage::Evidence, round, started).await?;
            }
            last_round = round;
        }
        Ok(last_round)
    }

    /// The report of the session and the `done` event (synced).
    async fn end(&mut self) -> Step<Report> {
        let report = self
            .state
            .report
            .clone()
            .ok_or_else(|| Error::Internal("no report after synthesis".to_string()))?;
        let took_ms = now_millis().saturating_sub(self.state.started_at_ms);
        let failures = self.state.failures.clone();
        self.emit(EventKind::Done {
            took_ms,
            status: Completion::of(&failures),
            failures,
        })?;
        self.sync().await?;
        Ok(report)
    }
}
