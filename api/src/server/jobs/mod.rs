//! Batch indexing jobs: one or many directories indexed in this process (a collection's vector
//! store has one owner process), at most `server.job_concurrency` jobs at a time, each with its
//! own event log. Jobs and their logs are persisted under `data_dir/server/jobs/`; jobs that were
//! queued or running when the server stopped are queued again when it starts (an interrupted run
//! resumes where its last checkpoint left it, as the indexer guarantees).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiex_indexer::{CollectionKind, IndexProgress, IndexSummary};
use futures_util::FutureExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use crate::server::engine_slot::EngineSlot;
use crate::server::error::ServerError;
use crate::server::paths::AllowedRoots;
use crate::server::stream::{tag_of, EventLog, StreamEvent, DEFAULT_WINDOW};
use crate::server::users::now_secs;

mod cluster;
mod run;

/// Why a job could not be found, submitted or changed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// No job with this id (or not one of the caller's).
    #[error("no such job")]
    NotFound,
    /// The job ended already.
    #[error("the job has already {state}")]
    Finished { state: &'static str },
    /// The job's event log cannot be created.
    #[error("creating the event log {path}: {source}")]
    EventLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The blocking task that creates the event log panicked or was cancelled.
    #[error("creating a job's event log: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Server mode: the job could not be written to (or read from) the cluster.
    #[error("{0}")]
    Cluster(String),
}

/// Progress events of one stage are sent at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait for searches to let go of a vector store before a run.
const RELEASE_WAIT: Duration = Duration::from_secs(15);

/// What a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    #[default]
    Code,
    Docs,
}

impl From<JobKind> for CollectionKind {
    fn from(kind: JobKind) -> Self {
        match kind {
            JobKind::Code => CollectionKind::Code,
            JobKind::Docs => CollectionKind::Docs,
        }
    }
}

/// One directory to index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobItemSpec {
    /// A directory under one of `server.allowed_roots` (relative paths: under the first root).
    pub path: String,
    /// Collection name (default: the directory's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: JobKind,
}

/// A job: directories indexed one after the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    #[schema(min_items = 1, max_items = 256)]
    pub items: Vec<JobItemSpec>,
    /// Compute vectors (default true); false updates only the keyword index.
    #[serde(default = "default_true")]
    pub embed: bool,
    /// Drop the collections and index from scratch.
    #[serde(default)]
    pub rebuild: bool,
}

fn default_true() -> bool {
    true
}

/// Where a job or one of its directories stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// One directory of a job and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobItem {
    /// The canonical directory.
    #[schema(value_type = String)]
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: JobKind,
    pub state: JobState,
    /// The run's summary (see `aiex-research index --json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub summary: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Server mode: the node (`host:pid:random`) that worked (or works) this directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Server mode: times a node started indexing this directory (more than once when a node
    /// stopped or died mid-way and another took it over).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub runs: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// A job as stored and as `GET /v1/index/jobs/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobRecord {
    pub id: String,
    /// The caller that created it (a prefix of its key's hash, or `local`).
    pub owner: String,
    pub state: JobState,
    pub items: Vec<JobItem>,
    pub embed: bool,
    pub rebuild: bool,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub updated_at: u64,
    /// Times the job was taken up again after a server restart.
    #[serde(default)]
    pub restarts: u32,
    /// Id of the last event of its stream.
    #[serde(default)]
    pub last_event_id: u64,
    /// Submitted with the local owner token (the command line beside the server): its
    /// directories are not confined to `server.allowed_roots`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local_owner: bool,
}

/// The events of a job's stream.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobEvent {
    Queued {
        job_id: String,
        items: usize,
    },
    /// Taken up again after a server restart.
    Resumed {
        restarts: u32,
    },
    ItemStarted {
        item: usize,
        path: PathBuf,
    },
    Progress {
        item: usize,
        progress: IndexProgress,
    },
    ItemFinished {
        item: usize,
        summary: Box<IndexSummary>,
    },
    ItemFailed {
        item: usize,
        error: String,
    },
    /// The last event: the job's final state.
    Done {
        state: JobState,
        succeeded: usize,
        failed: usize,
    },
}

impl StreamEvent for JobEvent {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        tag_of(self)
    }

    fn is_final(&self) -> bool {
        matches!(self, JobEvent::Done { .. })
    }
}

struct Job {
    record: Mutex<JobRecord>,
    log: Arc<EventLog>,
    /// Set to stop the running indexer (by a cancel or the shutdown).
    stop: Arc<AtomicBool>,
    cancelled: AtomicBool,
}

impl Job {
    fn snapshot(&self) -> JobRecord {
        let mut record = self.record.lock().clone();
        record.last_event_id = self.log.last_id();
        record
    }
}

struct Inner {
    config: Arc<aiex_config::Config>,
    dir: Option<PathBuf>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    permits: Arc<Semaphore>,
    engine: Option<Arc<EngineSlot>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    run: bool,
    roots: Option<AllowedRoots>,
    /// Server mode: the jobs every node shares.
    cluster: Option<Arc<cluster::Cluster>>,
}

/// How often ended jobs past `server.job_retention_hours` are looked for (server mode: at every
/// poll of the cluster, see `cluster`).
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// Queues, runs, persists and cancels indexing jobs.
#[derive(Clone)]
pub struct JobManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JobManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobManager")
            .field("jobs", &self.inner.jobs.lock().len())
            .finish()
    }
}

/// Options of a [`JobManager`].
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Where jobs are persisted (None: in memory only, as for the CLI's batch).
    pub dir: Option<PathBuf>,
    /// Jobs at a time.
    pub concurrency: usize,
    /// Whether jobs run (false: they stay queued, e.g. for a read-only server).
    pub run: bool,
    /// Where job directories must stay (the server's `allowed_roots`), checked again when each
    /// directory starts; None for the CLI's batch, whose paths are the user's own.
    pub roots: Option<AllowedRoots>,
    /// In server mode (`vector.backend = "server"`), keep jobs in the cluster, where every node
    /// that runs jobs works them (see `jobs::cluster`), instead of under `dir`.
    pub shared: bool,
}

impl JobManager {
    /// Loads persisted jobs and queues again those that were queued or running. Must be called
    /// within a tokio runtime.
    pub async fn start(
        config: Arc<aiex_config::Config>,
        options: JobOptions,
        engine: Option<Arc<EngineSlot>>,
        shutdown: CancellationToken,
    ) -> Result<Self, ServerError> {
        let cluster =
            if options.shared && config.vector.backend == aiex_config::VectorBackend::Server {
                Some(cluster::Cluster::connect(&config).await?)
            } else {
                None
            };
        let manager = JobManager {
            inner: Arc::new(Inner {
                config,
                dir: options.dir.clone(),
                jobs: Mutex::new(HashMap::new()),
                permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
                engine,
                shutdown: shutdown.clone(),
                tracker: TaskTracker::new(),
                run: options.run,
                roots: options.roots.clone(),
                cluster,
            }),
        };
        let watcher = manager.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            for job in watcher.inner.jobs.lock().values() {
                job.stop.store(true, Ordering::Relaxed);
            }
        });
        if manager.inner.cluster.is_some() {
            manager.follow_cluster();
            return Ok(manager);
        }
        if let Some(dir) = options.dir {
            let loaded = tokio::task::spawn_blocking(move || load_jobs(&dir))
                .await
                .map_err(|err| ServerError::Serve(std::io::Error::other(err.to_string())))??;
            for (mut record, log) in loaded {
                let unfinished = !record.state.is_terminal();
                if unfinished {
                    record.state = JobState::Queued;
                    record.restarts += 1;
                    for item in &mut record.items {
                        if item.state == JobState::Running {
                            item.state = JobState::Queued;
                        }
                    }
                    log.push(&JobEvent::Resumed {
                        restarts: record.restarts,
                    });
                }
                let job = Arc::new(Job {
                    record: Mutex::new(record.clone()),
                    log,
                    stop: Arc::new(AtomicBool::new(false)),
                    cancelled: AtomicBool::new(false),
                });
                manager
                    .inner
                    .jobs
                    .lock()
                    .insert(record.id.clone(), Arc::clone(&job));
                if unfinished {
                    manager.persist(&job).await;
                    manager.spawn(job);
                }
            }
        }
        let pruner = manager.clone();
        tokio::spawn(async move {
            loop {
                pruner.prune().await;
                tokio::select! {
                    () = tokio::time::sleep(PRUNE_INTERVAL) => {}
                    () = pruner.inner.shutdown.cancelled() => return,
                }
            }
        });
        Ok(manager)
    }

    /// Queues a job of canonical directories; returns its record.
    pub async fn submit(
        &self,
        owner: &str,
        items: Vec<(PathBuf, JobItemSpec)>,
        embed: bool,
        rebuild: bool,
    ) -> Result<JobRecord, JobError> {
        self.submit_with(owner, items, embed, rebuild, false).await
    }

    /// [`JobManager::submit`] for the local owner (`local_owner`: its directories are not
    /// confined to the allowed roots, when they run either).
    pub async fn submit_with(
        &self,
        owner: &str,
        items: Vec<(PathBuf, JobItemSpec)>,
        embed: bool,
        rebuild: bool,
        local_owner: bool,
    ) -> Result<JobRecord, JobError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now_secs();
        let record = JobRecord {
            id: id.clone(),
            owner: owner.to_string(),
            state: JobState::Queued,
            items: items
                .into_iter()
                .map(|(path, spec)| JobItem {
                    path,
                    name: spec.name,
                    kind: spec.kind,
                    state: JobState::Queued,
                    summary: None,
                    error: None,
                    node: None,
                    runs: 0,
                })
                .collect(),
            embed,
            rebuild,
            created_at: now,
            updated_at: now,
            restarts: 0,
            last_event_id: 0,
            local_owner,
        };
        if let Some(cluster) = &self.inner.cluster {
            return self.submit_shared(cluster, record).await;
        }
        let log = match &self.inner.dir {
            Some(dir) => {
                let dir = dir.clone();
                let path = dir.join(format!("{id}.events.jsonl"));
                let log_path = path.clone();
                tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&dir)?;
                    EventLog::open(&log_path, DEFAULT_WINDOW).map_err(std::io::Error::other)
                })
                .await?
                .map_err(|source| JobError::EventLog { path, source })?
            }
            None => EventLog::in_memory(DEFAULT_WINDOW),
        };
        log.push(&JobEvent::Queued {
            job_id: id.clone(),
            items: record.items.len(),
        });
        let job = Arc::new(Job {
            record: Mutex::new(record),
            log,
            stop: Arc::new(AtomicBool::new(false)),
            cancelled: AtomicBool::new(false),
        });
        self.inner.jobs.lock().insert(id, Arc::clone(&job));
        self.persist(&job).await;
        let snapshot = job.snapshot();
        self.spawn(job);
        Ok(snapshot)
    }

    fn job(&self, id: &str, owner: Option<&str>) -> Result<Arc<Job>, JobError> {
        let job = self
            .inner
            .jobs
            .lock()
            .get(id)
            .cloned()
            .ok_or(JobError::NotFound)?;
        if owner.is_some_and(|owner| job.record.lock().owner != owner) {
            return Err(JobError::NotFound);
        }
        Ok(job)
    }

    /// The job `id` of `owner` (any owner when None).
    pub fn get(&self, id: &str, owner: Option<&str>) -> Result<JobRecord, JobError> {
        Ok(self.job(id, owner)?.snapshot())
    }

    /// The event log of job `id` of `owner`.
    pub fn log(&self, id: &str, owner: Option<&str>) -> Result<Arc<EventLog>, JobError> {
        Ok(Arc::clone(&self.job(id, owner)?.log))
    }

    /// The jobs of `owner` (all when None), newest first.
    pub fn list(&self, owner: Option<&str>) -> Vec<JobRecord> {
        let mut records: Vec<JobRecord> = self
            .inner
            .jobs
            .lock()
            .values()
            .map(|job| job.snapshot())
            .filter(|record| owner.is_none_or(|owner| record.owner == owner))
            .collect();
        records.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        records
    }

    /// Counts of jobs per state.
    pub fn state_counts(&self) -> HashMap<&'static str, usize> {
        let mut counts = HashMap::new();
        for job in self.inner.jobs.lock().values() {
            *counts.entry(job.record.lock().state.name()).or_default() += 1;
        }
        counts
    }

    /// Cancels a queued or running job.
    pub async fn cancel(&self, id: &str, owner: Option<&str>) -> Result<JobRecord, JobError> {
        let job = self.job(id, owner)?;
        let queued = {
            let record = job.record.lock();
            if record.state.is_terminal() {
                return Err(JobError::Finished {
                    state: record.state.name(),
                });
            }
            record.state == JobState::Queued
        };
        if let Some(cluster) = &self.inner.cluster {
            cluster.cancel(&job).await?;
        }
        job.cancelled.store(true, Ordering::Relaxed);
        job.stop.store(true, Ordering::Relaxed);
        if queued && self.inner.cluster.is_none() {
            // The runner, when it gets a permit, sees the flag and ends the job; end it now
            // so the caller sees the final state at once.
            self.finish(&job).await;
        }
        Ok(job.snapshot())
    }

    /// Waits until every job in the manager has ended (CLI batches).
    pub async fn wait_all(&self) {
        let logs: Vec<Arc<EventLog>> = self
            .inner
            .jobs
            .lock()
            .values()
            .map(|job| Arc::clone(&job.log))
            .collect();
        for log in logs {
            log.wait_finished().await;
        }
    }

    /// Waits (at most `timeout`) for running jobs to stop after the shutdown signal.
    pub async fn wait_stopped(&self, timeout: Duration) {
        self.inner.tracker.close();
        let _ = tokio::time::timeout(timeout, self.inner.tracker.wait()).await;
    }

    /// The ended jobs whose last change is older than `server.job_retention_hours`.
    fn expired(&self) -> Vec<String> {
        let hours = self.inner.config.server.job_retention_hours;
        if hours == 0 {
            return Vec::new();
        }
        let cutoff = now_secs().saturating_sub(hours.saturating_mul(3600));
        self.inner
            .jobs
            .lock()
            .iter()
            .filter_map(|(id, job)| {
                let record = job.record.lock();
                (record.state.is_terminal() && record.updated_at < cutoff).then(|| id.clone())
            })
            .collect()
    }

    /// Drops the ended jobs past their retention: from the data directory, then from the list
    /// (in server mode, `cluster` does it for the jobs every node shares).
    async fn prune(&self) {
        let expired = self.expired();
        if expired.is_empty() {
            return;
        }
        if let Some(dir) = self.inner.dir.clone() {
            let ids = expired.clone();
            let removed = tokio::task::spawn_blocking(move || {
                for id in ids {
                    for name in [format!("{id}.json"), format!("{id}.events.jsonl")] {
                        match std::fs::remove_file(dir.join(&name)) {
                            Ok(()) => {}
                            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                            Err(err) => return Err(err),
                        }
                    }
                }
                Ok(())
            })
            .await;
            if !matches!(removed, Ok(Ok(()))) {
                tracing::warn!("dropping expired jobs from the data directory: {removed:?}");
                return;
            }
        }
        let mut jobs = self.inner.jobs.lock();
        for id in &expired {
            jobs.remove(id);
        }
        tracing::info!(
            jobs = expired.len(),
            hours = self.inner.config.server.job_retention_hours,
            "ended jobs past their retention dropped"
        );
    }

    async fn persist(&self, job: &Arc<Job>) {
        let Some(dir) = self.inner.dir.clone() else {
            return;
        };
        if self.inner.cluster.is_some() {
            // The cluster holds shared jobs (see `cluster`).
            return;
        }
        let record = job.snapshot();
        let path = dir.join(format!("{}.json", record.id));
        let bytes = match serde_json::to_vec_pretty(&record) {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::error!(error = %err, "job record not serialisable");
                return;
            }
        };
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            aiex_indexer::atomic_write(&path, &bytes)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "job record not persisted"),
            Err(err) => tracing::error!(error = %err, "job record not persisted"),
        }
    }

    fn spawn(&self, job: Arc<Job>) {
        if !self.inner.run {
            return;
        }
        let manager = self.clone();
        self.inner.tracker.spawn(async move {
            let log = Arc::clone(&job.log);
            let run = AssertUnwindSafe(manager.run(Arc::clone(&job))).catch_unwind();
            if run.await.is_err() {
                tracing::error!("an indexing job panicked");
                job.record.lock().state = JobState::Failed;
                log.fail("internal", "the job failed unexpectedly");
                log.wait_finished().await;
                manager.persist(&job).await;
            }
        });
    }

    /// Ends a job: its final state from its items, a `done` event, persisted.
    async fn finish(&self, job: &Arc<Job>) {
        let (state, succeeded, failed) = {
            let mut record = job.record.lock();
            if record.state.is_terminal() {
                return;
            }
            let succeeded = record
                .items
                .iter()
                .filter(|item| item.state == JobState::Succeeded)
                .count();
            let failed = record
                .items
                .iter()
                .filter(|item| item.state == JobState::Failed)
                .count();
            let state = if job.cancelled.load(Ordering::Relaxed) {
                for item in &mut record.items {
                    if !item.state.is_terminal() {
                        item.state = JobState::Cancelled;
                    }
                }
                JobState::Cancelled
            } else if failed > 0 {
                JobState::Failed
            } else {
                JobState::Succeeded
            };
            record.state = state;
            record.updated_at = now_secs();
            (state, succeeded, failed)
        };
        job.log.push(&JobEvent::Done {
            state,
            succeeded,
            failed,
        });
        // The record says the job ended only once its log's end is on disk.
        job.log.wait_finished().await;
        self.persist(job).await;
        self.record_end(job).await;
    }
}

/// Reads every persisted job and its log. Blocking.
fn load_jobs(dir: &Path) -> Result<Vec<(JobRecord, Arc<EventLog>)>, ServerError> {
    let io = |source| ServerError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io(err)),
    };
    let mut jobs = Vec::new();
    for entry in entries {
        let path = entry.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let record: JobRecord = match std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        {
            Some(record) => record,
            None => {
                tracing::warn!(path = %path.display(), "unreadable job record skipped");
                continue;
            }
        };
        let log_path = dir.join(format!("{}.events.jsonl", record.id));
        let log = EventLog::open(&log_path, DEFAULT_WINDOW).map_err(|err| ServerError::Io {
            path: log_path,
            source: std::io::Error::other(err.to_string()),
        })?;
        jobs.push((record, log));
    }
    jobs.sort_by(|a, b| {
        a.0.created_at
            .cmp(&b.0.created_at)
            .then(a.0.id.cmp(&b.0.id))
    });
    Ok(jobs)
}
