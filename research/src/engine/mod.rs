//! The orchestrator: a session runs plan → search (parallel, bounded) → fetch → evidence, once per
//! round (`depth`; later rounds search the gaps of the one before), then synthesis and the report.
//! Every event goes to the session log first, then to subscribers; stages are synced when they
//! complete and so are finished searches and fetches, so a resumed session repeats none of them.
//!
//! One file per stage, each an `impl Run` block: `run` (the stage loop, events, budgets), `plan`,
//! `search`, `fetch`, `evidence` and `synthesize`; `journal` writes the session log off the async
//! workers, in batches, and sends each event to subscribers once it is written.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use aiex_search::setup::LocalSources;
use aiex_search::{Coordinator, Source};
use tokio::sync::{broadcast, watch};

use crate::event::{ResearchEvent, ResearchRequest};
use crate::plan::{DeterministicPlanner, Planner};
use crate::report::Report;
use crate::session::{SessionLog, SessionState, SessionStore};
use crate::synth::{ExtractiveSynthesizer, Synthesizer};
use crate::{BoxFuture, Error, Result};

mod evidence;
#[cfg(test)]
mod failure_tests;
mod fetch;
mod journal;
mod plan;
mod run;
mod search;
mod synthesize;
#[cfg(test)]
mod tests;

use journal::Journal;
use run::Run;

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
        if state.status().is_complete() {
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
        let weak = sender.downgrade();
        // The journal holds the only strong sender: subscriptions close once it has sent the
        // session's last event.
        let journal = Journal::open(log, sender);
        let run = Run {
            engine: Arc::clone(self),
            session: id.clone(),
            journal,
            cancelled,
            started: Instant::now(),
            state,
            budgets_reported: HashSet::new(),
        };
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
