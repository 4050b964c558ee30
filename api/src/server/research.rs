//! Research sessions run by the server: started over the server's current search engine, owned
//! by the key that created them, streamed as SSE straight from the session log of
//! `aiex-research` (the SSE `id:` is the research event id, so `Last-Event-ID` resumes across
//! restarts with no second log).
//!
//! A small record per session (`data_dir/server/research/ID.json`: owner, report format, budget
//! overrides, whether it ended or was cancelled by its owner) lets the next start take up the
//! sessions that were running when the server stopped: **they are resumed at startup**, at most
//! `research.resume_concurrency` at once (the others queued, in order), so that a burst of
//! resumed sessions does not starve each other's searches. On
//! shutdown, running sessions are cancelled at their next step (the log gets a `cancelled` event
//! and is synced) and stay resumable; a cancel asked by the owner is never resumed.
//!
//! A stream ([`crate::server::research_stream`]) first subscribes to the live session (when it
//! runs here), then replays the stored events after the client's id, then follows live events,
//! skipping ids it already sent and re-reading the log when it lagged behind; a session that runs
//! in another process is followed by reading its log every [`POLL_INTERVAL`].

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiex_research::{
    ResearchEngine, ResearchEvent, ResearchRequest, SessionHandle, SessionState, SessionStore,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use crate::server::engine_slot::EngineSlot;
use crate::server::error::ApiError;

/// How often the log of a session that runs elsewhere is read again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Lower limits a request may set for its own session (never above the server's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetOverrides {
    /// Sub-questions of the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_sub_questions: Option<usize>,
    /// Searches over the whole session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_searches: Option<usize>,
    /// Web pages read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<usize>,
    /// LLM tokens, in and out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// LLM cost in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Wall time, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_wall_secs: Option<u64>,
}

impl BudgetOverrides {
    /// Checks the values: positive where zero makes no sense, finite cost.
    pub fn validate(&self) -> Result<(), ApiError> {
        let zero = [
            self.max_sub_questions == Some(0),
            self.max_searches == Some(0),
            self.max_wall_secs == Some(0),
        ];
        if zero.iter().any(|&is_zero| is_zero) {
            return Err(ApiError::bad_request(
                "invalid_budget",
                "max_sub_questions, max_searches and max_wall_secs must be at least 1",
            ));
        }
        if self
            .max_cost_usd
            .is_some_and(|cost| !cost.is_finite() || cost < 0.0)
        {
            return Err(ApiError::bad_request(
                "invalid_budget",
                "max_cost_usd must be a non-negative number",
            ));
        }
        Ok(())
    }

    /// `research` with these limits where they are lower.
    pub fn apply(&self, research: &mut aiex_config::ResearchConfig) {
        fn lower<T: PartialOrd + Copy>(limit: &mut T, asked: Option<T>) {
            if let Some(asked) = asked {
                if asked < *limit {
                    *limit = asked;
                }
            }
        }
        lower(&mut research.max_sub_questions, self.max_sub_questions);
        lower(&mut research.max_searches, self.max_searches);
        lower(&mut research.max_pages, self.max_pages);
        lower(&mut research.max_tokens, self.max_tokens);
        lower(&mut research.max_cost_usd, self.max_cost_usd);
        lower(&mut research.max_wall_secs, self.max_wall_secs);
    }
}

/// What the server remembers of a session it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionMeta {
    pub id: String,
    /// The caller that created it.
    pub owner: String,
    /// `md`, `json` or `html`: the format of `report_text`.
    pub format: String,
    #[serde(default)]
    pub budgets: BudgetOverrides,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// Ended (done, failed, or cancelled by its owner): never resumed.
    #[serde(default)]
    pub finished: bool,
    /// Its owner asked to cancel it.
    #[serde(default)]
    pub cancel_requested: bool,
}

/// A session running in this process: streams subscribe through its handle.
struct Running {
    handle: SessionHandle,
}

/// A resumed session's turn: held while it runs, so that at most `research.resume_concurrency`
/// resumed sessions run at once.
struct ResumeSlot {
    _permit: OwnedSemaphorePermit,
    counts: Arc<ResumeCounts>,
}

impl Drop for ResumeSlot {
    fn drop(&mut self) {
        self.counts.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resumed sessions running now, and the most that ever ran at once.
#[derive(Debug, Default)]
struct ResumeCounts {
    running: AtomicUsize,
    peak: AtomicUsize,
}

/// The research sessions of the server.
pub struct ResearchManager {
    config: Arc<aiex_config::Config>,
    engine: Arc<EngineSlot>,
    llm: Option<aiex_llm::Llm>,
    store: SessionStore,
    meta_dir: PathBuf,
    metas: Mutex<HashMap<String, SessionMeta>>,
    running: Mutex<HashMap<String, Running>>,
    /// Sessions waiting for their turn to be resumed.
    queued: Mutex<HashSet<String>>,
    resume_slots: Arc<Semaphore>,
    resume_counts: Arc<ResumeCounts>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    started: AtomicUsize,
}

impl std::fmt::Debug for ResearchManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResearchManager")
            .field("running", &self.running.lock().len())
            .field("llm", &self.llm)
            .finish_non_exhaustive()
    }
}

/// Whether an error of the research crate is the client's.
pub fn research_error(err: aiex_research::Error) -> ApiError {
    use aiex_research::Error as E;
    let message = err.to_string();
    match err {
        E::SessionNotFound { .. } | E::InvalidSessionId { .. } => {
            ApiError::not_found("session_not_found", "no such research session")
        }
        E::SessionBusy { .. } => ApiError::conflict("session_busy", message),
        E::SessionComplete { .. } => ApiError::conflict("session_complete", message),
        E::UnknownTemplate { .. } => ApiError::bad_request("unknown_template", message),
        E::UnknownCollection { .. } => ApiError::not_found("collection_not_found", message),
        E::NoSources => ApiError::not_found("no_collections", message),
        E::EmptyQuestion => ApiError::bad_request("empty_question", message),
        E::Index(err) => err.into(),
        E::Io { .. }
        | E::CorruptLog { .. }
        | E::Setup(_)
        | E::Llm(_)
        | E::Json(_)
        | E::Internal(_) => ApiError::internal(message),
    }
}

impl ResearchManager {
    /// Loads the records under `data_dir/server/research` and resumes the sessions that were
    /// running when the server last stopped. `llm` plans and writes reports when configured.
    pub async fn start(
        config: Arc<aiex_config::Config>,
        engine: Arc<EngineSlot>,
        llm: Option<aiex_llm::Llm>,
        shutdown: CancellationToken,
    ) -> Arc<ResearchManager> {
        let manager = Self::open(config, engine, llm, shutdown).await;
        let mut to_resume: Vec<SessionMeta> = manager
            .metas
            .lock()
            .values()
            .filter(|meta| !meta.finished && !meta.cancel_requested)
            .cloned()
            .collect();
        // Oldest first, as they were started.
        to_resume.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        manager
            .queued
            .lock()
            .extend(to_resume.iter().map(|meta| meta.id.clone()));
        manager.resume_in_turn(to_resume);
        manager
    }

    /// Resumes `metas` in order in the background, each when a resume slot is free; stops
    /// taking them up at shutdown (they stay resumable) and skips those cancelled meanwhile.
    fn resume_in_turn(self: &Arc<Self>, metas: Vec<SessionMeta>) {
        if metas.is_empty() {
            return;
        }
        let manager = Arc::clone(self);
        self.tasks.spawn(async move {
            for meta in metas {
                let slots = Arc::clone(&manager.resume_slots);
                let permit = tokio::select! {
                    permit = slots.acquire_owned() => permit,
                    () = manager.shutdown.cancelled() => break,
                };
                let Ok(permit) = permit else { break };
                if manager.shutdown.is_cancelled() {
                    break;
                }
                let counts = Arc::clone(&manager.resume_counts);
                let now = counts.running.fetch_add(1, Ordering::SeqCst) + 1;
                counts.peak.fetch_max(now, Ordering::SeqCst);
                let slot = ResumeSlot {
                    _permit: permit,
                    counts,
                };
                let cancelled = manager.meta(&meta.id).is_some_and(|m| m.cancel_requested);
                let resumed = if cancelled {
                    Ok(true)
                } else {
                    match manager.session_state(&meta.id).await {
                        Ok(session) => manager.resume(&meta, Some(slot), session).await,
                        Err(err) => Err(err),
                    }
                };
                manager.queued.lock().remove(&meta.id);
                // Cancelled by its owner while it was being started.
                if manager.meta(&meta.id).is_some_and(|m| m.cancel_requested) {
                    if let Some(running) = manager.running.lock().get(&meta.id) {
                        running.handle.cancel();
                    }
                }
                match resumed {
                    Ok(_) if cancelled => {}
                    Ok(_) => tracing::info!(session = %meta.id, "research session resumed"),
                    Err(err) => {
                        tracing::warn!(session = %meta.id, code = err.code, message = %err.message, "research session not resumed")
                    }
                }
            }
            // At shutdown the sessions still waiting stay resumable by the next start.
            manager.queued.lock().clear();
        });
    }

    /// Loads the records under `data_dir/server/research` without resuming any session (for a
    /// process that only starts sessions of its own, such as `aiex-research mcp`).
    pub async fn open(
        config: Arc<aiex_config::Config>,
        engine: Arc<EngineSlot>,
        llm: Option<aiex_llm::Llm>,
        shutdown: CancellationToken,
    ) -> Arc<ResearchManager> {
        let meta_dir = config.data_dir.join("server").join("research");
        let dir = meta_dir.clone();
        let metas = tokio::task::spawn_blocking(move || load_metas(&dir))
            .await
            .unwrap_or_default();
        Arc::new(ResearchManager {
            store: SessionStore::new(&config.data_dir),
            resume_slots: Arc::new(Semaphore::new(config.research.resume_concurrency.max(1))),
            resume_counts: Arc::new(ResumeCounts::default()),
            queued: Mutex::new(Default::default()),
            config,
            engine,
            llm,
            meta_dir,
            metas: Mutex::new(metas.iter().map(|m| (m.id.clone(), m.clone())).collect()),
            running: Mutex::new(HashMap::new()),
            shutdown,
            tasks: TaskTracker::new(),
            started: AtomicUsize::new(0),
        })
    }

    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// The LLM layer shared by every session, when configured.
    pub fn llm(&self) -> Option<&aiex_llm::Llm> {
        self.llm.as_ref()
    }

    /// Sessions running in this process now.
    pub fn running_count(&self) -> usize {
        self.running.lock().len()
    }

    /// Sessions started or resumed by this process.
    pub fn started_count(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    pub fn is_running(&self, id: &str) -> bool {
        self.running.lock().contains_key(id)
    }

    /// Whether session `id` waits for its turn to be resumed here.
    pub fn is_queued(&self, id: &str) -> bool {
        self.queued.lock().contains(id)
    }

    /// Resumed sessions waiting for their turn now.
    pub fn queued_count(&self) -> usize {
        self.queued.lock().len()
    }

    /// The most resumed sessions that ran at once since the start.
    pub fn resumed_peak(&self) -> usize {
        self.resume_counts.peak.load(Ordering::SeqCst)
    }

    /// The record of session `id`, if this server started it.
    pub fn meta(&self, id: &str) -> Option<SessionMeta> {
        self.metas.lock().get(id).cloned()
    }

    /// Whether `owner` may see session `id`: its own sessions; every session when the server
    /// runs without keys (the `local` caller), those of the CLI included.
    pub fn visible(&self, id: &str, owner: &str, keys_required: bool) -> bool {
        if !keys_required {
            return true;
        }
        self.metas
            .lock()
            .get(id)
            .is_some_and(|meta| meta.owner == owner)
    }

    /// Sessions of `owner`, newest first, and their count.
    pub fn owned(&self, owner: &str) -> Vec<SessionMeta> {
        let mut owned: Vec<SessionMeta> = self
            .metas
            .lock()
            .values()
            .filter(|meta| meta.owner == owner)
            .cloned()
            .collect();
        owned.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        owned
    }

    /// A research engine over the server's current search engine, with the session's budgets.
    async fn engine_for(
        &self,
        budgets: &BudgetOverrides,
        collections: &[String],
    ) -> Result<Arc<ResearchEngine>, ApiError> {
        let mut search = self.engine.get().await?;
        let knows_all = |engine: &crate::engine::SearchEngine| {
            !engine.coordinator.source_names().is_empty()
                && collections
                    .iter()
                    .all(|name| engine.collections.iter().any(|(known, _)| known == name))
        };
        if !knows_all(&search) {
            search = self.engine.get_checked(true).await?;
        }
        if search.coordinator.source_names().is_empty() {
            return Err(research_error(aiex_research::Error::NoSources));
        }
        for name in collections {
            if !search.collections.iter().any(|(known, _)| known == name) {
                return Err(aiex_indexer::Error::CollectionNotFound { name: name.clone() }.into());
            }
        }
        let mut config = (*self.config).clone();
        budgets.apply(&mut config.research);
        let local = search.local.clone();
        let mut engine = ResearchEngine::with_coordinator(&config, Arc::clone(&search.coordinator))
            .with_local_sources(local)
            .with_page_fetcher_from_config();
        if let Some(llm) = &self.llm {
            engine = engine
                .with_planner(Arc::new(aiex_research::llm::LlmPlanner::new(llm.clone())))
                .with_synthesizer(Arc::new(aiex_research::llm::LlmSynthesizer::new(
                    llm.clone(),
                )));
        }
        Ok(Arc::new(engine))
    }

    /// Starts a session for `owner`; its id.
    pub async fn create(
        self: &Arc<Self>,
        owner: &str,
        request: ResearchRequest,
        format: String,
        budgets: BudgetOverrides,
    ) -> Result<String, ApiError> {
        if self.shutdown.is_cancelled() {
            return Err(ApiError::unavailable(
                "shutting_down",
                "the server is shutting down",
            ));
        }
        let engine = self.engine_for(&budgets, &request.collections).await?;
        let handle = engine.start(request).map_err(research_error)?;
        let meta = SessionMeta {
            id: handle.id.clone(),
            owner: owner.to_string(),
            format,
            budgets,
            created_at: crate::server::users::now_secs(),
            finished: false,
            cancel_requested: false,
        };
        let id = handle.id.clone();
        self.metas.lock().insert(id.clone(), meta.clone());
        self.watch(handle, None);
        self.save(meta).await;
        Ok(id)
    }

    /// Takes a session of this server up again (`session`: its state as read from its log); a
    /// resumed-at-start-up one keeps `slot` while it runs. False when the session had already
    /// ended (nothing to resume).
    async fn resume(
        self: &Arc<Self>,
        meta: &SessionMeta,
        slot: Option<ResumeSlot>,
        session: SessionState,
    ) -> Result<bool, ApiError> {
        let collections = session
            .request
            .map(|request| request.collections)
            .unwrap_or_default();
        let engine = self.engine_for(&meta.budgets, &collections).await?;
        match engine.resume(&meta.id) {
            Ok(handle) => {
                self.watch(handle, slot);
                Ok(true)
            }
            Err(aiex_research::Error::SessionComplete { .. }) => {
                self.mark(&meta.id, |meta| meta.finished = true).await;
                Ok(false)
            }
            Err(err) => Err(research_error(err)),
        }
    }

    /// Resumes session `id` now, at `owner`'s request (`POST /v1/research/{id}/resume`): one this
    /// server started and that was interrupted or cancelled, or one a command line of this data
    /// directory started (it becomes `owner`'s). The caller checked that `owner` may, and read
    /// the session's state from its log.
    pub async fn resume_now(
        self: &Arc<Self>,
        owner: &str,
        id: &str,
        session: SessionState,
    ) -> Result<(), ApiError> {
        if self.shutdown.is_cancelled() {
            return Err(ApiError::unavailable(
                "shutting_down",
                "the server is shutting down",
            ));
        }
        if self.is_running(id) || self.is_queued(id) {
            return Err(ApiError::conflict(
                "session_running",
                "the session is already running in this server",
            ));
        }
        let previous = self.meta(id);
        let meta = match previous.clone() {
            Some(meta) => SessionMeta {
                finished: false,
                cancel_requested: false,
                ..meta
            },
            None => SessionMeta {
                id: id.to_string(),
                owner: owner.to_string(),
                format: "md".to_string(),
                budgets: BudgetOverrides::default(),
                created_at: crate::server::users::now_secs(),
                finished: false,
                cancel_requested: false,
            },
        };
        // Recorded before it runs, so that its end finds the record to mark.
        self.metas.lock().insert(id.to_string(), meta.clone());
        let resumed = match self.resume(&meta, None, session).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ApiError::conflict(
                "session_complete",
                "the session has already ended",
            )),
            Err(err) => Err(err),
        };
        if resumed.is_err() {
            let mut metas = self.metas.lock();
            match previous {
                Some(previous) => metas.insert(id.to_string(), previous),
                None => metas.remove(id),
            };
            return resumed;
        }
        self.save(meta).await;
        Ok(())
    }

    /// Session `id` as its log tells it (read on a blocking thread).
    pub async fn session_state(&self, id: &str) -> Result<SessionState, ApiError> {
        let store = self.store.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || store.state(&id))
            .await
            .map_err(ApiError::internal)?
            .map_err(research_error)
    }

    /// Registers a running session and waits for its end in the background; a resumed session's
    /// `slot` is given back at its end.
    fn watch(self: &Arc<Self>, mut handle: SessionHandle, slot: Option<ResumeSlot>) {
        let id = handle.id.clone();
        // The handle's own subscription is read here, so that no unread events pile up in the
        // channel; it closes when the session ends.
        let mut events = std::mem::replace(&mut handle.events, broadcast::channel(1).1);
        self.started.fetch_add(1, Ordering::Relaxed);
        self.running.lock().insert(id.clone(), Running { handle });
        let manager = Arc::clone(self);
        self.tasks.spawn(async move {
            while let Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) = events.recv().await {}
            let Some(running) = manager.running.lock().remove(&id) else {
                return;
            };
            let outcome = running.handle.wait().await;
            let cancel_requested = manager
                .metas
                .lock()
                .get(&id)
                .is_some_and(|meta| meta.cancel_requested);
            // A session stopped by the shutdown (not by its owner) is resumed at the next start.
            let by_shutdown =
                matches!(outcome, Ok(None)) && manager.shutdown.is_cancelled() && !cancel_requested;
            if let Err(err) = &outcome {
                tracing::warn!(session = %id, error = %err, "research session failed");
            }
            if !by_shutdown {
                manager.mark(&id, |meta| meta.finished = true).await;
            }
            drop(slot);
        });
    }

    /// Cancels a session running here; its record says its owner asked, so it is not resumed.
    /// A session waiting for its turn to be resumed is dropped from the queue.
    pub async fn cancel(&self, id: &str) -> Result<(), ApiError> {
        let cancel = self
            .running
            .lock()
            .get(id)
            .map(|running| running.handle.canceller());
        match cancel {
            Some(cancel) => {
                self.mark(id, |meta| meta.cancel_requested = true).await;
                let _ = cancel.send(true);
                Ok(())
            }
            // Its turn skips it (or cancels it, if it is being started now).
            None if self.is_queued(id) => {
                self.mark(id, |meta| meta.cancel_requested = true).await;
                self.queued.lock().remove(id);
                Ok(())
            }
            None => Err(ApiError::conflict(
                "session_not_running",
                "the session is not running in this server",
            )),
        }
    }

    /// Stops every running session at its next step (they stay resumable).
    pub fn begin_shutdown(&self) {
        for running in self.running.lock().values() {
            running.handle.cancel();
        }
    }

    /// Waits, at most `timeout`, for running sessions to stop.
    pub async fn wait_stopped(&self, timeout: Duration) {
        self.tasks.close();
        let _ = tokio::time::timeout(timeout, self.tasks.wait()).await;
    }

    /// A live subscription to session `id`, when it runs here.
    pub(crate) fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<ResearchEvent>> {
        self.running
            .lock()
            .get(id)
            .and_then(|running| running.handle.subscribe())
    }

    async fn mark(&self, id: &str, change: impl FnOnce(&mut SessionMeta)) {
        let updated = {
            let mut metas = self.metas.lock();
            let Some(meta) = metas.get_mut(id) else {
                return;
            };
            change(meta);
            meta.clone()
        };
        self.save(updated).await;
    }

    async fn save(&self, meta: SessionMeta) {
        let dir = self.meta_dir.clone();
        let id = meta.id.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<(), String> {
            std::fs::create_dir_all(&dir).map_err(|err| err.to_string())?;
            let bytes = serde_json::to_vec_pretty(&meta).map_err(|err| err.to_string())?;
            aiex_research::report::write_atomic(&dir.join(format!("{}.json", meta.id)), &bytes)
                .map_err(|err| err.to_string())
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(session = %id, error = %err, "session record not saved"),
            Err(err) => tracing::warn!(session = %id, error = %err, "session record not saved"),
        }
    }
}

fn load_metas(dir: &std::path::Path) -> Vec<SessionMeta> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut metas = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|ext| ext.to_str()) != Some("json") {
            continue;
        }
        let parsed = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<SessionMeta>(&bytes).ok());
        match parsed {
            Some(meta) => metas.push(meta),
            None => tracing::warn!(path = %path.display(), "unreadable session record skipped"),
        }
    }
    metas
}
