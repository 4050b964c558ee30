//! The orchestrator: a session runs plan → search (parallel, bounded) → fetch → evidence, once per
//! round (`depth`; later rounds search the gaps of the one before), then synthesis and the report.
//! Every event goes to the session log first, then to subscribers; stages are synced when they
//! complete and so are finished searches and fetches, so a resumed session repeats none of them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiex_indexer::search::QueryEmbedder;
use aiex_search::setup::LocalSources;
use aiex_search::{CoordinatedSearch, Coordinator, SearchEvent, Source, SourceQuery};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::cite::check_citations;
use crate::event::{Budget, EventKind, ResearchEvent, ResearchRequest, Stage};
use crate::evidence::{select_evidence, FoundText, NoEmbeddings, SelectionLimits, TextEmbedder};
use crate::graph::build_graph;
use crate::plan::{DeterministicPlanner, Planner};
use crate::report::{Reference, Report, Section};
use crate::session::{SessionLog, SessionState, SessionStatus, SessionStore};
use crate::synth::{ExtractiveSynthesizer, Synthesizer};
use crate::text::{now_millis, rfc3339};
use crate::{BoxFuture, Error, Result};

/// A web page read for evidence.
#[derive(Debug, Clone)]
pub struct PageText {
    pub url: String,
    pub title: String,
    pub text: String,
}

/// Reads web pages (the guarded fetcher); optional.
pub trait PageReader: Send + Sync {
    fn read<'a>(&'a self, url: &'a str) -> BoxFuture<'a, std::result::Result<PageText, String>>;
}

/// The SSRF-guarded page fetcher as a [`PageReader`].
struct GuardedPages(aiex_search::fetch::PageFetcher);

impl PageReader for GuardedPages {
    fn read<'a>(&'a self, url: &'a str) -> BoxFuture<'a, std::result::Result<PageText, String>> {
        Box::pin(async move {
            let page = self.0.fetch(url).await.map_err(|err| err.to_string())?;
            let text = page.text();
            if text.trim().is_empty() {
                return Err("the page has no text".to_string());
            }
            Ok(PageText {
                title: page.title.clone().unwrap_or_else(|| page.final_url.clone()),
                url: page.final_url,
                text,
            })
        })
    }
}

/// Most output tokens asked of an LLM synthesis, and the fewest worth asking for.
const MAX_SYNTHESIS_TOKENS: u64 = 1_500;
const MIN_SYNTHESIS_TOKENS: u32 = 64;
/// Synthesis text gathered before it goes out as an event.
const DELTA_BYTES: usize = 64;

/// Events a subscriber can lag behind before it misses some (it can then replay them from the
/// log with [`SessionStore::events_after`]).
const EVENT_CHANNEL: usize = 1024;

/// Runs research sessions over one set of sources.
pub struct ResearchEngine {
    config: aiex_config::Config,
    local: Option<Arc<LocalSources>>,
    coordinator: Arc<Coordinator>,
    collections: Vec<String>,
    store: SessionStore,
    planner: Arc<dyn Planner>,
    synthesizer: Arc<dyn Synthesizer>,
    pages: Option<Arc<dyn PageReader>>,
}

impl std::fmt::Debug for ResearchEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResearchEngine")
            .field("sources", &self.coordinator.source_names())
            .field("planner", &self.planner.name())
            .field("synthesizer", &self.synthesizer.name())
            .finish_non_exhaustive()
    }
}

/// A running session.
#[derive(Debug)]
pub struct SessionHandle {
    pub id: String,
    /// Live events from the moment the session started (resumed).
    pub events: broadcast::Receiver<ResearchEvent>,
    /// Weak, so that subscriptions close when the session ends.
    sender: broadcast::WeakSender<ResearchEvent>,
    cancel: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<Option<Report>>>,
}

impl SessionHandle {
    /// Another live subscription (events from now on; replay earlier ones from the store).
    /// None once the session has ended.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<ResearchEvent>> {
        self.sender.upgrade().map(|sender| sender.subscribe())
    }

    /// Asks the session to stop at its next step; it ends with a `cancelled` event and stays
    /// resumable.
    pub fn cancel(&self) {
        let _ = self.cancel.send(true);
    }

    /// A cancel switch that outlives the handle.
    pub fn canceller(&self) -> watch::Sender<bool> {
        self.cancel.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the end: the report, or None when cancelled.
    pub async fn wait(self) -> Result<Option<Report>> {
        self.task
            .await
            .map_err(|err| Error::Internal(format!("the session task stopped: {err}")))?
    }
}

impl ResearchEngine {
    /// An engine over the collections named (all when empty) and the configured web sources, with
    /// the deterministic planner and extractive synthesis.
    pub fn from_config(config: &aiex_config::Config, collections: &[String]) -> Result<Self> {
        let local = aiex_search::setup::local_sources(config, collections)?;
        let mut sources: Vec<Arc<dyn Source>> = local.sources.clone();
        match aiex_search::sources::web::WebSource::from_config(config) {
            Ok(Some(web)) => sources.push(Arc::new(web)),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "web search is not usable"),
        }
        let collections = local
            .searchers
            .iter()
            .flat_map(|(_, searcher)| searcher.collection_names())
            .collect();
        let coordinator = Arc::new(Coordinator::new(
            sources,
            aiex_search::setup::coordinator_options(config),
        ));
        // Pages are read only when web search returns results; a fetcher that cannot be built
        // leaves that step out.
        let pages: Option<Arc<dyn PageReader>> =
            match aiex_search::fetch::PageFetcher::from_config(config) {
                Ok(fetcher) => Some(Arc::new(GuardedPages(fetcher))),
                Err(err) => {
                    tracing::warn!(error = %err, "web pages will not be read");
                    None
                }
            };
        Ok(ResearchEngine {
            config: config.clone(),
            local: Some(Arc::new(local)),
            coordinator,
            collections,
            store: SessionStore::new(&config.data_dir),
            planner: Arc::new(DeterministicPlanner),
            synthesizer: Arc::new(ExtractiveSynthesizer),
            pages,
        })
    }

    /// An engine over `coordinator` (tests, other front ends): no chunk look-ups, no embeddings.
    pub fn with_coordinator(config: &aiex_config::Config, coordinator: Arc<Coordinator>) -> Self {
        ResearchEngine {
            config: config.clone(),
            local: None,
            coordinator,
            collections: Vec::new(),
            store: SessionStore::new(&config.data_dir),
            planner: Arc::new(DeterministicPlanner),
            synthesizer: Arc::new(ExtractiveSynthesizer),
            pages: None,
        }
    }

    /// Gives an engine built [`with_coordinator`](Self::with_coordinator) the local searchers,
    /// pool and query model behind that coordinator (a front end that already holds them, such as
    /// the HTTP server): local hits are then completed with their chunk's full text and evidence
    /// is ranked with embeddings too, as with [`from_config`](Self::from_config).
    pub fn with_local_sources(mut self, local: LocalSources) -> Self {
        self.collections = local
            .searchers
            .iter()
            .flat_map(|(_, searcher)| searcher.collection_names())
            .collect();
        self.local = Some(Arc::new(local));
        self
    }

    /// Reads web pages through the SSRF-guarded fetcher of the configuration (as
    /// [`from_config`](Self::from_config) does); unchanged when the fetcher cannot be built.
    pub fn with_page_fetcher_from_config(mut self) -> Self {
        match aiex_search::fetch::PageFetcher::from_config(&self.config) {
            Ok(fetcher) => self.pages = Some(Arc::new(GuardedPages(fetcher))),
            Err(err) => tracing::warn!(error = %err, "web pages will not be read"),
        }
        self
    }

    pub fn with_planner(mut self, planner: Arc<dyn Planner>) -> Self {
        self.planner = planner;
        self
    }

    pub fn with_synthesizer(mut self, synthesizer: Arc<dyn Synthesizer>) -> Self {
        self.synthesizer = synthesizer;
        self
    }

    /// The LLM planner and synthesizer when `llm` has a provider configured; unchanged otherwise.
    pub fn with_llm_from_config(self) -> Result<Self> {
        match aiex_llm::Llm::from_config(&self.config.llm) {
            Ok(Some(llm)) => Ok(self
                .with_planner(Arc::new(crate::llm::LlmPlanner::new(llm.clone())))
                .with_synthesizer(Arc::new(crate::llm::LlmSynthesizer::new(llm)))),
            Ok(None) => Ok(self),
            Err(err) => Err(Error::Llm(err.to_string())),
        }
    }

    pub fn with_page_reader(mut self, pages: Arc<dyn PageReader>) -> Self {
        self.pages = Some(pages);
        self
    }

    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    pub fn source_names(&self) -> Vec<String> {
        self.coordinator.source_names()
    }

    /// Starts a new session in the background (within a tokio runtime).
    pub fn start(self: &Arc<Self>, request: ResearchRequest) -> Result<SessionHandle> {
        if request.question.trim().is_empty() {
            return Err(Error::EmptyQuestion);
        }
        if let Some(name) = &request.template {
            crate::template::template(name)?;
        }
        if self.coordinator.source_names().is_empty() {
            return Err(Error::NoSources);
        }
        if self.local.is_some() {
            for name in &request.collections {
                if !self.collections.contains(name) {
                    return Err(Error::UnknownCollection { name: name.clone() });
                }
            }
        }
        let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
        let log = self.store.create(&id)?;
        Ok(self.spawn(id, log, SessionState::default(), Some(request)))
    }

    /// Takes session `id` up again from its last completed stage.
    pub fn resume(self: &Arc<Self>, id: &str) -> Result<SessionHandle> {
        let (log, events) = self.store.reopen(id)?;
        let state = SessionState::from_events(&events);
        if state.status() == SessionStatus::Complete {
            return Err(Error::SessionComplete { id: id.to_string() });
        }
        if state.request.is_none() {
            return Err(Error::CorruptLog {
                path: log.path().display().to_string(),
                line: 1,
                message: "no session_started event".to_string(),
            });
        }
        Ok(self.spawn(id.to_string(), log, state, None))
    }

    fn spawn(
        self: &Arc<Self>,
        id: String,
        log: SessionLog,
        state: SessionState,
        fresh: Option<ResearchRequest>,
    ) -> SessionHandle {
        let (sender, events) = broadcast::channel(EVENT_CHANNEL);
        let (cancel, cancelled) = watch::channel(false);
        let run = Run {
            engine: Arc::clone(self),
            session: id.clone(),
            log,
            sender: sender.clone(),
            cancelled,
            started: Instant::now(),
            state,
            budgets_reported: HashSet::new(),
        };
        let weak = sender.downgrade();
        drop(sender);
        let task = tokio::spawn(run.run(fresh));
        SessionHandle {
            id,
            events,
            sender: weak,
            cancel,
            task,
        }
    }
}

/// The query model as a [`TextEmbedder`]; gives up after the first failure (no model installed).
struct ModelEmbedder {
    model: Arc<QueryEmbedder>,
    failed: AtomicBool,
}

impl TextEmbedder for ModelEmbedder {
    fn embed(&self, text: &str) -> Option<Arc<Vec<f32>>> {
        if self.failed.load(Ordering::Relaxed) {
            return None;
        }
        match self.model.embed(text) {
            Ok(vector) => Some(vector),
            Err(err) => {
                tracing::warn!(error = %err, "evidence ranked without embeddings");
                self.failed.store(true, Ordering::Relaxed);
                None
            }
        }
    }
}

/// What a search task hands back: sub-question, query, start time, and the texts found with
/// the sources' notes, or the error.
type SearchOutcome = (
    usize,
    String,
    Instant,
    std::result::Result<(Vec<FoundText>, Vec<String>), String>,
);

/// One run of a session (a start or a resume).
struct Run {
    engine: Arc<ResearchEngine>,
    session: String,
    log: SessionLog,
    sender: broadcast::Sender<ResearchEvent>,
    cancelled: watch::Receiver<bool>,
    started: Instant,
    state: SessionState,
    budgets_reported: HashSet<Budget>,
}

/// Why the run stopped early.
enum Stop {
    Cancelled,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(err: Error) -> Self {
        Stop::Failed(err)
    }
}

type Step<T> = std::result::Result<T, Stop>;

impl Run {
    async fn run(mut self, fresh: Option<ResearchRequest>) -> Result<Option<Report>> {
        let outcome = self.stages(fresh).await;
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

    fn emit(&mut self, kind: EventKind) -> Result<()> {
        let event = ResearchEvent {
            id: self.state.last_id + 1,
            at_ms: now_millis(),
            kind,
        };
        self.log.append(&event)?;
        self.state.apply(&event);
        // Nobody listening is fine: the log keeps every event.
        let _ = self.sender.send(event);
        Ok(())
    }

    async fn sync(&self) -> Result<()> {
        let file = self.log.try_clone()?;
        let path = self.log.path().to_path_buf();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|err| Error::Internal(err.to_string()))?
            .map_err(|err| Error::io("syncing", &path, err))
    }

    fn check_cancelled(&self) -> Step<()> {
        if *self.cancelled.borrow() {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    fn budget(&mut self, budget: Budget, stage: Stage, limit: f64, used: f64) -> Result<()> {
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

    fn wall_time_left(&mut self, stage: Stage) -> Result<bool> {
        let limit = self.engine.config.research.max_wall_secs;
        let used = self.started.elapsed();
        if used > Duration::from_secs(limit) {
            self.budget(Budget::WallTime, stage, limit as f64, used.as_secs_f64())?;
            return Ok(false);
        }
        Ok(true)
    }

    async fn begin(&mut self, stage: Stage, round: u32) -> Step<Instant> {
        self.check_cancelled()?;
        self.emit(EventKind::StageStarted { stage, round })?;
        Ok(Instant::now())
    }

    async fn finish(&mut self, stage: Stage, round: u32, started: Instant) -> Step<()> {
        self.emit(EventKind::StageCompleted {
            stage,
            round,
            took_ms: started.elapsed().as_millis() as u64,
        })?;
        self.sync().await?;
        Ok(())
    }

    async fn skip(&mut self, stage: Stage, round: u32, reason: &str) -> Step<()> {
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

    async fn stages(&mut self, fresh: Option<ResearchRequest>) -> Step<Report> {
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
        let request = self.request()?;
        let research = self.engine.config.research.clone();

        if !self.state.is_done(Stage::Plan, 0) {
            let started = self.begin(Stage::Plan, 0).await?;
            let template = match &request.template {
                Some(name) => Some(crate::template::template(name)?),
                None => None,
            };
            let (mut plan, usage) = self
                .engine
                .planner
                .plan(&request.question, template, research.max_sub_questions + 1)
                .await?;
            if usage.calls > 0 {
                self.emit(EventKind::LlmUsage {
                    stage: Stage::Plan,
                    usage,
                })?;
            }
            if plan.sub_questions.len() > research.max_sub_questions {
                let proposed = plan.sub_questions.len();
                plan.sub_questions.truncate(research.max_sub_questions);
                self.budget(
                    Budget::SubQuestions,
                    Stage::Plan,
                    research.max_sub_questions as f64,
                    proposed as f64,
                )?;
            }
            self.emit(EventKind::Planned { plan })?;
            self.finish(Stage::Plan, 0, started).await?;
        }
        let depth = request.depth.max(1) as u32;
        let mut last_round = 0;
        for round in 1..=depth {
            let queries = self.round_queries(round);
            if queries.is_empty() {
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
                self.search_round(round, &queries, &request).await?;
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
        if !self.state.is_done(Stage::Synthesize, 0) || self.state.report.is_none() {
            let started = self.begin(Stage::Synthesize, 0).await?;
            let report = self.synthesize(last_round.max(1)).await?;
            self.emit(EventKind::ReportReady {
                report: Box::new(report),
            })?;
            self.finish(Stage::Synthesize, 0, started).await?;
        }
        let report = self
            .state
            .report
            .clone()
            .ok_or_else(|| Error::Internal("no report after synthesis".to_string()))?;
        let took_ms = now_millis().saturating_sub(self.state.started_at_ms);
        self.emit(EventKind::Done { took_ms })?;
        self.sync().await?;
        Ok(report)
    }

    /// (sub-question, query) pairs searched in `round`: the plan's queries first, then the queries
    /// of the gaps found by the round before.
    fn round_queries(&self, round: u32) -> Vec<(usize, String)> {
        let Some(plan) = &self.state.plan else {
            return Vec::new();
        };
        if round == 1 {
            return plan
                .sub_questions
                .iter()
                .flat_map(|sub| {
                    sub.queries
                        .iter()
                        .map(move |query| (sub.index, query.clone()))
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
        let mut out = Vec::new();
        for gap in gaps {
            for query in &gap.queries {
                if !earlier.contains(&(gap.sub_question, query))
                    && !out.contains(&(gap.sub_question, query.clone()))
                {
                    out.push((gap.sub_question, query.clone()));
                }
            }
        }
        out
    }

    async fn search_round(
        &mut self,
        round: u32,
        queries: &[(usize, String)],
        request: &ResearchRequest,
    ) -> Step<()> {
        let research = self.engine.config.research.clone();
        let mut pending: Vec<(usize, String)> = queries
            .iter()
            .filter(|(sub, query)| {
                !self
                    .state
                    .searches
                    .contains_key(&(round, *sub, query.clone()))
            })
            .cloned()
            .collect();
        pending.reverse();
        let mut running: JoinSet<SearchOutcome> = JoinSet::new();
        let mut stopped = false;
        loop {
            while !stopped && running.len() < research.search_concurrency && !pending.is_empty() {
                if *self.cancelled.borrow() {
                    stopped = true;
                    break;
                }
                if self.state.searches_run + running.len() >= research.max_searches {
                    let used = (self.state.searches_run + running.len()) as f64;
                    self.budget(
                        Budget::Searches,
                        Stage::Search,
                        research.max_searches as f64,
                        used,
                    )?;
                    stopped = true;
                    break;
                }
                if !self.wall_time_left(Stage::Search)? {
                    stopped = true;
                    break;
                }
                let Some((sub, query)) = pending.pop() else {
                    break;
                };
                self.emit(EventKind::SearchStarted {
                    round,
                    sub_question: sub,
                    query: query.clone(),
                })?;
                let engine = Arc::clone(&self.engine);
                let collections = request.collections.clone();
                let sources = request.sources.clone();
                running.spawn(async move {
                    let started = Instant::now();
                    let result = engine.search_one(&query, collections, sources).await;
                    (sub, query, started, result)
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (sub, query, started, result) =
                joined.map_err(|err| Error::Internal(format!("a search task stopped: {err}")))?;
            match result {
                Ok((found, notes)) => self.emit(EventKind::SearchCompleted {
                    round,
                    sub_question: sub,
                    query,
                    found,
                    took_ms: started.elapsed().as_millis() as u64,
                    notes,
                })?,
                Err(error) => self.emit(EventKind::SearchFailed {
                    round,
                    sub_question: sub,
                    query,
                    error,
                })?,
            }
            self.sync().await?;
        }
        self.check_cancelled()
    }

    async fn fetch_round(&mut self, round: u32) -> Step<()> {
        let Some(reader) = self.engine.pages.clone() else {
            return self
                .skip(Stage::Fetch, round, "page fetching is not configured")
                .await;
        };
        // The best web results of this round, one per URL.
        let mut urls: Vec<(f32, usize, String)> = Vec::new();
        for ((search_round, sub, _), found) in &self.state.searches {
            if *search_round != round {
                continue;
            }
            for item in found {
                if let Some(url) = &item.url {
                    if !urls.iter().any(|(_, _, known)| known == url) {
                        urls.push((item.score, *sub, url.clone()));
                    }
                }
            }
        }
        let done: HashSet<String> = self
            .state
            .pages
            .iter()
            .filter_map(|(_, _, page)| page.url.clone())
            .collect();
        urls.retain(|(_, _, url)| !done.contains(url));
        if urls.is_empty() {
            return self
                .skip(Stage::Fetch, round, "no web results to read")
                .await;
        }
        urls.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
        let started = self.begin(Stage::Fetch, round).await?;
        let max_pages = self.engine.config.research.max_pages;
        for (score, sub, url) in urls {
            self.check_cancelled()?;
            if self.state.pages_tried >= max_pages {
                let used = self.state.pages_tried as f64;
                self.budget(Budget::Pages, Stage::Fetch, max_pages as f64, used)?;
                break;
            }
            if !self.wall_time_left(Stage::Fetch)? {
                break;
            }
            match reader.read(&url).await {
                Ok(page) => self.emit(EventKind::PageFetched {
                    round,
                    sub_question: sub,
                    page: FoundText {
                        source: "page".to_string(),
                        title: page.title,
                        url: Some(page.url),
                        collection: None,
                        path: None,
                        start_line: None,
                        end_line: None,
                        language: None,
                        symbol: None,
                        kind: None,
                        parent: None,
                        text: page.text,
                        score,
                        retrieved_at: rfc3339(now_millis()),
                    },
                })?,
                Err(error) => self.emit(EventKind::PageFailed { round, url, error })?,
            }
            self.sync().await?;
        }
        self.finish(Stage::Fetch, round, started).await
    }

    /// Everything found for each sub-question up to `round`: fetched pages first, then the search
    /// results in query order, one copy of each text.
    fn found_per_question(&self, round: u32) -> Vec<Vec<FoundText>> {
        let Some(plan) = &self.state.plan else {
            return Vec::new();
        };
        let mut out: Vec<Vec<FoundText>> = vec![Vec::new(); plan.sub_questions.len()];
        let mut seen: Vec<HashSet<String>> = vec![HashSet::new(); plan.sub_questions.len()];
        for (page_round, sub, page) in &self.state.pages {
            if *page_round <= round && *sub < out.len() && seen[*sub].insert(page.key()) {
                out[*sub].push(page.clone());
            }
        }
        for search_round in 1..=round {
            let mut keys: Vec<&(u32, usize, String)> = self
                .state
                .searches
                .keys()
                .filter(|(r, _, _)| *r == search_round)
                .collect();
            // Plan order, so the same searches give the same evidence.
            keys.sort_by_key(|(_, sub, query)| {
                let position = plan
                    .sub_questions
                    .get(*sub)
                    .and_then(|s| s.queries.iter().position(|q| q == query))
                    .unwrap_or(usize::MAX);
                (*sub, position, query.clone())
            });
            for key in keys {
                let sub = key.1;
                if sub >= out.len() {
                    continue;
                }
                for item in &self.state.searches[key] {
                    if seen[sub].insert(item.key()) {
                        out[sub].push(item.clone());
                    }
                }
            }
        }
        out
    }

    async fn evidence_round(&mut self, round: u32) -> Step<()> {
        let plan = self
            .state
            .plan
            .clone()
            .ok_or_else(|| Error::Internal("no plan".to_string()))?;
        let found = self.found_per_question(round);
        let research = &self.engine.config.research;
        let limits = SelectionLimits {
            token_budget: research.evidence_tokens,
            per_sub_question: research.passages_per_sub_question,
            embed_candidates: research.embed_candidates,
        };
        let local = self.engine.local.clone();
        let selection = match local {
            Some(local) => {
                let embedder = ModelEmbedder {
                    model: Arc::clone(&local.query_embedder),
                    failed: AtomicBool::new(false),
                };
                let sub_questions = plan.sub_questions.clone();
                aiex_search::sources::local::run_cpu(&local.pool, move || {
                    select_evidence(&sub_questions, &found, &embedder, limits)
                })
                .await
                .map_err(|err| Error::Internal(err.to_string()))?
            }
            None => {
                let sub_questions = plan.sub_questions.clone();
                tokio::task::spawn_blocking(move || {
                    select_evidence(&sub_questions, &found, &NoEmbeddings, limits)
                })
                .await
                .map_err(|err| Error::Internal(err.to_string()))?
            }
        };
        if selection.budget_reached {
            let used = selection
                .passages
                .iter()
                .map(|p| crate::text::approx_tokens(&p.text))
                .sum::<usize>() as f64;
            self.budget(
                Budget::EvidenceTokens,
                Stage::Evidence,
                limits.token_budget as f64,
                used,
            )?;
        }
        self.emit(EventKind::EvidenceSelected {
            round,
            passages: selection.passages,
            gaps: selection.gaps,
        })?;
        Ok(())
    }

    async fn synthesize(&mut self, round: u32) -> Step<Report> {
        let plan = self
            .state
            .plan
            .clone()
            .ok_or_else(|| Error::Internal("no plan".to_string()))?;
        let passages = self
            .state
            .evidence
            .get(&round)
            .or_else(|| self.state.evidence.get(&1))
            .map(|(passages, _)| passages.clone())
            .unwrap_or_default();
        let research = self.engine.config.research.clone();
        let usage = self.state.usage;
        let mut synthesizer = Arc::clone(&self.engine.synthesizer);
        // Output tokens left: the token budget less what was spent and the prompt's estimate.
        let prompt_tokens = passages
            .iter()
            .map(|p| crate::text::approx_tokens(&p.text).min(300) + 20)
            .sum::<usize>() as u64
            + 300;
        let left = research
            .max_tokens
            .saturating_sub(usage.total_tokens())
            .saturating_sub(prompt_tokens);
        let max_output_tokens = left.min(MAX_SYNTHESIS_TOKENS) as u32;
        if synthesizer.name() != "extractive" {
            if max_output_tokens < MIN_SYNTHESIS_TOKENS {
                let used = (usage.total_tokens() + prompt_tokens) as f64;
                self.budget(
                    Budget::Tokens,
                    Stage::Synthesize,
                    research.max_tokens as f64,
                    used,
                )?;
                synthesizer = Arc::new(ExtractiveSynthesizer);
            } else if usage.cost_usd >= research.max_cost_usd {
                self.budget(
                    Budget::Cost,
                    Stage::Synthesize,
                    research.max_cost_usd,
                    usage.cost_usd,
                )?;
                synthesizer = Arc::new(ExtractiveSynthesizer);
            }
        }
        let (deltas, mut receiver) = mpsc::unbounded_channel::<String>();
        // Deltas are coalesced into events of a line or a few words.
        let mut pending = String::new();
        let draft = {
            let future = synthesizer.synthesize(&plan, &passages, max_output_tokens, deltas);
            tokio::pin!(future);
            let mut draft = None;
            let mut receiving = true;
            while draft.is_none() {
                tokio::select! {
                    result = &mut future => draft = Some(result),
                    delta = receiver.recv(), if receiving => match delta {
                        Some(text) => {
                            pending.push_str(&text);
                            if pending.len() >= DELTA_BYTES || pending.contains('\n') {
                                let text = std::mem::take(&mut pending);
                                self.emit(EventKind::SynthesisDelta { text })?;
                            }
                        }
                        None => receiving = false,
                    },
                }
            }
            draft.ok_or_else(|| Error::Internal("no draft".to_string()))?
        };
        while let Ok(text) = receiver.try_recv() {
            pending.push_str(&text);
        }
        if !pending.is_empty() {
            self.emit(EventKind::SynthesisDelta { text: pending })?;
        }
        let (draft, used_name) = match draft {
            Ok(draft) => (draft, synthesizer.name().to_string()),
            Err(err) if synthesizer.name() != "extractive" => {
                self.emit(EventKind::Warning {
                    message: format!("LLM synthesis failed, falling back to extractive: {err}"),
                })?;
                let (deltas, _receiver) = mpsc::unbounded_channel();
                let draft = ExtractiveSynthesizer
                    .synthesize(&plan, &passages, 0, deltas)
                    .await?;
                (draft, "extractive".to_string())
            }
            Err(err) => return Err(err.into()),
        };
        if draft.usage.calls > 0 {
            self.emit(EventKind::LlmUsage {
                stage: Stage::Synthesize,
                usage: draft.usage,
            })?;
        }
        let count = passages.len();
        let mut removed = Vec::new();
        let summary = check_citations(&draft.summary, count);
        removed.extend(summary.removed.clone());
        let mut sections = Vec::new();
        for (position, sub_question) in plan.sub_questions.iter().enumerate() {
            let body = draft.sections.get(position).cloned().unwrap_or_default();
            let checked = check_citations(&body, count);
            removed.extend(checked.removed.clone());
            sections.push(Section {
                heading: sub_question.heading.clone(),
                sub_question: sub_question.text.clone(),
                body: checked.text,
                citations: checked.cited,
            });
        }
        if !removed.is_empty() {
            self.emit(EventKind::CitationsRemoved {
                removed: removed.clone(),
            })?;
        }
        Ok(Report {
            session: self.session.clone(),
            title: plan.title.clone(),
            question: plan.question.clone(),
            template: plan.template.clone(),
            summary_heading: plan.summary_heading.clone(),
            summary: summary.text,
            sections,
            references: passages.iter().map(Reference::from_passage).collect(),
            graph: build_graph(&passages, &plan.key_phrases),
            usage: self.state.usage,
            synthesis: used_name,
            removed_citations: removed,
            budgets_hit: self.state.budgets_hit.clone(),
            created_at: rfc3339(now_millis()),
        })
    }
}

impl ResearchEngine {
    /// One search through the coordinator; local hits are completed with their chunk's full text.
    async fn search_one(
        &self,
        query: &str,
        collections: Vec<String>,
        sources: Vec<String>,
    ) -> std::result::Result<(Vec<FoundText>, Vec<String>), String> {
        let mut source_query = SourceQuery::new(query, self.config.research.hits_per_search);
        source_query.collections = collections;
        let events = self
            .coordinator
            .search_all(CoordinatedSearch {
                query: source_query,
                sources,
            })
            .await;
        let mut notes = Vec::new();
        let mut merged = None;
        for event in events {
            match event {
                SearchEvent::Results { notes: more, .. } => notes.extend(more),
                SearchEvent::SourceFailed { source, error, .. } => {
                    notes.push(format!("source {source} failed: {error}"))
                }
                SearchEvent::Merged { hits, .. } => merged = Some(hits),
                _ => {}
            }
        }
        let Some(hits) = merged else {
            return Err(if notes.is_empty() {
                "the search ended without results".to_string()
            } else {
                notes.join("; ")
            });
        };
        let retrieved_at = rfc3339(now_millis());
        let mut found: Vec<FoundText> = hits
            .iter()
            .take(self.config.research.hits_per_search)
            .map(|hit| FoundText {
                source: hit.source.clone(),
                title: hit.title.clone(),
                url: hit.url.clone(),
                collection: hit.collection.clone(),
                path: hit.path.clone(),
                start_line: hit.start_line,
                end_line: hit.end_line,
                language: hit.language.clone(),
                symbol: hit.symbol.clone(),
                kind: hit.kind.clone(),
                parent: None,
                text: hit.snippet.clone(),
                score: hit.score,
                retrieved_at: retrieved_at.clone(),
            })
            .collect();
        if let Some(local) = &self.local {
            let lookups: Vec<(usize, String, u64)> = hits
                .iter()
                .take(found.len())
                .enumerate()
                .filter_map(|(position, hit)| {
                    Some((position, hit.collection.clone()?, hit.chunk_id?))
                })
                .collect();
            if !lookups.is_empty() {
                let local_for_task = Arc::clone(local);
                let chunks = aiex_search::sources::local::run_cpu(&local.pool, move || {
                    lookups
                        .into_iter()
                        .filter_map(|(position, collection, id)| {
                            let searcher = local_for_task.searcher_of(&collection)?;
                            match searcher.get_chunk(&collection, id) {
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
                    item.start_line = Some(chunk.start_line);
                    item.end_line = Some(chunk.end_line);
                }
            }
        }
        Ok((found, notes))
    }
}
