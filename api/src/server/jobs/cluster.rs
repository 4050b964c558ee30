//! Server mode: jobs shared by every node of a deployment. A job submitted to any node is written
//! to the cluster (its record, and one entry per directory: state, summary, error, the node that
//! works it); every node follows every job (a local copy with its own event log, so listing,
//! status and event streams answer the same on each node) and, when it runs jobs, works the
//! directories nobody works: it takes a directory's claim (a lease in the cluster), indexes it,
//! writes how it ended, then lets the claim go. A node that dies keeps its claims until they
//! expire (`vector.lease_secs`); then another node takes the directory up, and the indexer's
//! convergence after a dead run does the rest. A node stopped cleanly hands its directories
//! back at once. A directory a node cannot see (another machine's path) is left to the others.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiex_indexer::store::server::jobs::{job_claim, SharedJob};
use aiex_indexer::store::server::{Lease, MetaStore};
use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::{Job, JobError, JobEvent, JobItem, JobManager, JobRecord, JobState};
use crate::server::error::ServerError;
use crate::server::stream::{EventLog, DEFAULT_WINDOW};
use crate::server::users::now_secs;

/// How often a node reads the cluster's jobs (and looks for work) when nothing wakes it sooner.
const POLL: Duration = Duration::from_secs(1);

/// A node's view of the shared jobs.
pub(super) struct Cluster {
    meta: Arc<MetaStore>,
    /// This node's name in the directories' entries (`host:pid:random`).
    node: String,
    /// How long a claim lasts without renewal.
    lease: Duration,
    /// (job, directory) this node works now: their entries are written by the run, not followed.
    working: Mutex<HashSet<(String, usize)>>,
    /// (job, directory) whose path this node cannot see.
    unseen: Mutex<HashSet<(String, usize)>>,
    /// Wakes the follower before its next poll (a job submitted or a directory ended here).
    wake: Notify,
}

/// A directory this node holds the claim of, and its entry as it was when taken.
struct Claimed {
    lease: Lease,
    item: JobItem,
}

impl Cluster {
    /// Connects to the cluster's metadata collection.
    pub(super) async fn connect(
        config: &Arc<aiex_config::Config>,
    ) -> Result<Arc<Cluster>, ServerError> {
        let for_meta = Arc::clone(config);
        let meta = tokio::task::spawn_blocking(move || MetaStore::connect(&for_meta))
            .await
            .map_err(|err| ServerError::Serve(std::io::Error::other(err.to_string())))?
            .map_err(|err| {
                ServerError::Serve(std::io::Error::other(format!(
                    "connecting to the cluster's jobs: {err}"
                )))
            })?;
        Ok(Arc::new(Cluster {
            meta,
            node: aiex_indexer::store::server::lease::new_holder(),
            lease: Duration::from_secs(config.vector.lease_secs),
            working: Mutex::new(HashSet::new()),
            unseen: Mutex::new(HashSet::new()),
            wake: Notify::new(),
        }))
    }

    /// Runs `f` on the metadata store on a blocking thread.
    pub(super) async fn blocking<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&MetaStore) -> aiex_indexer::Result<T> + Send + 'static,
    {
        let meta = Arc::clone(&self.meta);
        tokio::task::spawn_blocking(move || f(&meta))
            .await
            .map_err(|err| err.to_string())?
            .map_err(|err| err.to_string())
    }

    /// Marks `job` cancelled for every node.
    pub(super) async fn cancel(&self, job: &Arc<Job>) -> Result<(), JobError> {
        let record = job.snapshot();
        let data =
            serde_json::to_string(&record).map_err(|err| JobError::Cluster(err.to_string()))?;
        self.blocking(move |meta| meta.put_job(&record.id, &data, true))
            .await
            .map_err(|err| {
                JobError::Cluster(format!("cancelling the job in the cluster: {err}"))
            })?;
        self.wake.notify_one();
        Ok(())
    }

    /// Writes the entry of directory `index` of job `id`.
    async fn write_item(&self, id: &str, index: usize, item: &JobItem) {
        let (id, data) = match serde_json::to_string(item) {
            Ok(data) => (id.to_string(), data),
            Err(err) => {
                tracing::error!(error = %err, "job entry not serialisable");
                return;
            }
        };
        if let Err(err) = self
            .blocking(move |meta| meta.put_job_items(&id, &[(index, data)]))
            .await
        {
            tracing::warn!(error = %err, "a job's directory entry not written to the cluster");
        }
    }
}

impl JobManager {
    /// Writes a new job to the cluster and follows it here.
    pub(super) async fn submit_shared(
        &self,
        cluster: &Arc<Cluster>,
        record: JobRecord,
    ) -> Result<JobRecord, JobError> {
        let unwritable = |err: serde_json::Error| JobError::Cluster(err.to_string());
        let data = serde_json::to_string(&record).map_err(unwritable)?;
        let items = record
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| Ok((index, serde_json::to_string(item)?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()
            .map_err(unwritable)?;
        let id = record.id.clone();
        // The directories first: a node that sees the job finds them.
        cluster
            .blocking(move |meta| {
                meta.put_job_items(&id, &items)?;
                meta.put_job(&id, &data, false)
            })
            .await
            .map_err(|err| JobError::Cluster(format!("writing the job to the cluster: {err}")))?;
        let job = self.follow(record);
        cluster.wake.notify_one();
        Ok(job.snapshot())
    }

    /// The local copy of a shared job (created when first seen), with an event log in memory.
    fn follow(&self, record: JobRecord) -> Arc<Job> {
        let mut jobs = self.inner.jobs.lock();
        let job = jobs.entry(record.id.clone()).or_insert_with(|| {
            let log = EventLog::in_memory(DEFAULT_WINDOW);
            log.push(&JobEvent::Queued {
                job_id: record.id.clone(),
                items: record.items.len(),
            });
            Arc::new(Job {
                record: Mutex::new(record),
                log,
                stop: Arc::new(AtomicBool::new(false)),
                cancelled: AtomicBool::new(false),
            })
        });
        Arc::clone(job)
    }

    /// Starts following the cluster's jobs (and working them when this node runs jobs).
    pub(super) fn follow_cluster(&self) {
        let Some(cluster) = self.inner.cluster.clone() else {
            return;
        };
        let manager = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(err) = manager.sync(&cluster).await {
                    tracing::warn!("reading the cluster's jobs: {err}");
                }
                if manager.inner.run && !manager.inner.shutdown.is_cancelled() {
                    manager.take_work(&cluster).await;
                }
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    () = cluster.wake.notified() => {}
                    () = manager.inner.shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Reads every unfinished job from the cluster into its local copy: new jobs appear, each
    /// directory's change of state becomes an event, and a job whose directories all ended ends.
    /// Jobs that ended longer ago than `server.job_retention_hours` are deleted from the cluster
    /// (by whichever node sees them first), and ended jobs the cluster no longer has are dropped
    /// from this node's list.
    async fn sync(&self, cluster: &Arc<Cluster>) -> Result<(), String> {
        let hours = self.inner.config.server.job_retention_hours;
        let cutoff = (hours > 0).then(|| now_secs().saturating_sub(hours.saturating_mul(3600)));
        let ended: HashSet<String> = self
            .inner
            .jobs
            .lock()
            .iter()
            .filter(|(_, job)| job.record.lock().state.is_terminal())
            .map(|(id, _)| id.clone())
            .collect();
        let (shared, listed) = cluster
            .blocking(move |meta| {
                let mut jobs = Vec::new();
                let mut listed = HashSet::new();
                for job in meta.jobs()? {
                    if job
                        .ended_at
                        .zip(cutoff)
                        .is_some_and(|(at, cutoff)| at < cutoff)
                    {
                        let items = serde_json::from_str::<JobRecord>(&job.data)
                            .map_or(0, |record| record.items.len());
                        meta.remove_job(&job.id, items)?;
                        tracing::info!(job = %job.id, "an ended job past its retention dropped");
                        continue;
                    }
                    listed.insert(job.id.clone());
                    if !ended.contains(&job.id) {
                        let items = meta.job_items(&job.id)?;
                        jobs.push((job, items));
                    }
                }
                Ok((jobs, listed))
            })
            .await?;
        self.inner
            .jobs
            .lock()
            .retain(|id, job| listed.contains(id) || !job.record.lock().state.is_terminal());
        for (job, items) in shared {
            self.apply(cluster, job, items).await;
        }
        Ok(())
    }

    /// Records in the cluster that `job` ended (the first node to record it sets the time).
    pub(super) async fn record_end(&self, job: &Arc<Job>) {
        let Some(cluster) = &self.inner.cluster else {
            return;
        };
        let id = job.record.lock().id.clone();
        let at = now_secs();
        if let Err(err) = cluster.blocking(move |meta| meta.end_job(&id, at)).await {
            tracing::warn!("recording a job's end in the cluster: {err}");
        }
    }

    async fn apply(&self, cluster: &Arc<Cluster>, shared: SharedJob, items: Vec<(usize, String)>) {
        let existing = self.inner.jobs.lock().get(&shared.id).cloned();
        let job = match existing {
            Some(job) => job,
            None => match serde_json::from_str::<JobRecord>(&shared.data) {
                Ok(record) => self.follow(record),
                Err(err) => {
                    tracing::warn!(job = %shared.id, "skipping an unreadable job: {err}");
                    return;
                }
            },
        };
        if shared.cancelled {
            job.cancelled.store(true, Ordering::Relaxed);
            job.stop.store(true, Ordering::Relaxed);
        }
        let mut events = Vec::new();
        let ended = {
            let mut record = job.record.lock();
            if record.state.is_terminal() {
                return;
            }
            let working = cluster.working.lock();
            for (index, data) in items {
                if working.contains(&(shared.id.clone(), index)) {
                    continue;
                }
                let (Ok(item), Some(local)) = (
                    serde_json::from_str::<JobItem>(&data),
                    record.items.get_mut(index),
                ) else {
                    continue;
                };
                if item.state != local.state {
                    events.extend(transition(index, &item));
                }
                *local = item;
            }
            let ended = record.items.iter().all(|item| item.state.is_terminal());
            if !ended
                && record
                    .items
                    .iter()
                    .any(|item| item.state != JobState::Queued)
            {
                record.state = JobState::Running;
            }
            record.updated_at = now_secs();
            ended
        };
        for event in &events {
            job.log.push(event);
        }
        if ended {
            self.finish(&job).await;
        }
    }

    /// Takes up directories nobody works, while this node has a free job slot.
    async fn take_work(&self, cluster: &Arc<Cluster>) {
        loop {
            let Ok(permit) = Arc::clone(&self.inner.permits).try_acquire_owned() else {
                return;
            };
            let mut candidates: Vec<(u64, String, Arc<Job>, usize)> = Vec::new();
            for (id, job) in self.inner.jobs.lock().iter() {
                let record = job.record.lock();
                if record.state.is_terminal() {
                    continue;
                }
                for (index, item) in record.items.iter().enumerate() {
                    let key = (id.clone(), index);
                    if !item.state.is_terminal()
                        && !cluster.working.lock().contains(&key)
                        && !cluster.unseen.lock().contains(&key)
                    {
                        candidates.push((record.created_at, id.clone(), Arc::clone(job), index));
                    }
                }
            }
            // Oldest job first, its directories in order.
            candidates.sort_by(|a, b| (a.0, &a.1, a.3).cmp(&(b.0, &b.1, b.3)));
            let mut taken = false;
            for (_, id, job, index) in candidates {
                if let Some(claimed) = self.claim(cluster, &id, &job, index).await {
                    self.spawn_claimed(Arc::clone(cluster), job, index, claimed, permit);
                    taken = true;
                    break;
                }
            }
            if !taken {
                return;
            }
        }
    }

    /// Takes the claim of directory `index` of `job` unless another node holds it or the
    /// directory ended; a cancelled job's directory is marked cancelled instead of worked.
    async fn claim(
        &self,
        cluster: &Arc<Cluster>,
        id: &str,
        job: &Arc<Job>,
        index: usize,
    ) -> Option<Claimed> {
        let (meta, lease, claim_id, item_id) = (
            Arc::clone(&cluster.meta),
            cluster.lease,
            job_claim(id, index),
            id.to_string(),
        );
        let taken =
            tokio::task::spawn_blocking(move || -> aiex_indexer::Result<Option<Claimed>> {
                let lease = match Lease::acquire(Arc::clone(&meta), &claim_id, lease) {
                    Ok(lease) => lease,
                    Err(aiex_indexer::Error::Leased { .. }) => return Ok(None),
                    Err(err) => return Err(err),
                };
                // Taken: the entry as it is now (another node may have ended it meanwhile); the
                // claim is let go on drop when there is nothing to do.
                let item = meta
                    .job_item(&item_id, index)?
                    .and_then(|data| serde_json::from_str::<JobItem>(&data).ok());
                Ok(item
                    .filter(|item| !item.state.is_terminal())
                    .map(|item| Claimed { lease, item }))
            })
            .await;
        let claimed = match taken {
            Ok(Ok(claimed)) => claimed?,
            Ok(Err(err)) => {
                tracing::warn!(job = id, index, "claiming a job's directory: {err}");
                return None;
            }
            Err(err) => {
                tracing::error!(error = %err, "claiming a job's directory panicked");
                return None;
            }
        };
        let Claimed { lease, mut item } = claimed;
        let seen = {
            let path = item.path.clone();
            tokio::task::spawn_blocking(move || path.is_dir())
                .await
                .unwrap_or(false)
        };
        if job.cancelled.load(Ordering::Relaxed) || !seen {
            if seen {
                item.state = JobState::Cancelled;
                item.error = Some("cancelled".to_string());
                cluster.write_item(id, index, &item).await;
            } else {
                tracing::info!(job = id, index, path = %item.path.display(), "a job's directory is not on this node: left to the others");
                cluster.unseen.lock().insert((id.to_string(), index));
            }
            release(lease).await;
            cluster.wake.notify_one();
            return None;
        }
        Some(Claimed { lease, item })
    }

    /// Works a claimed directory on the job tracker: the entry says running (by this node), the
    /// run as any job's, then the entry says how it ended before the claim is let go.
    fn spawn_claimed(
        &self,
        cluster: Arc<Cluster>,
        job: Arc<Job>,
        index: usize,
        claimed: Claimed,
        permit: OwnedSemaphorePermit,
    ) {
        let manager = self.clone();
        let id = job.record.lock().id.clone();
        cluster.working.lock().insert((id.clone(), index));
        self.inner.tracker.spawn(async move {
            let _permit = permit;
            let Claimed { lease, mut item } = claimed;
            item.state = JobState::Running;
            item.node = Some(cluster.node.clone());
            item.runs += 1;
            item.error = None;
            {
                let mut record = job.record.lock();
                record.items[index] = item.clone();
                record.state = JobState::Running;
            }
            cluster.write_item(&id, index, &item).await;
            let finished = manager.run_item(&job, index).await;
            let mut ended = job.record.lock().items[index].clone();
            if !finished || ended.state == JobState::Running {
                // Stopped by the shutdown: handed back at once.
                ended.state = JobState::Queued;
                ended.node = None;
                job.record.lock().items[index] = ended.clone();
            }
            cluster.write_item(&id, index, &ended).await;
            release(lease).await;
            cluster.working.lock().remove(&(id, index));
            cluster.wake.notify_one();
        });
    }
}

/// Lets a claim go (a request to the cluster: off the async threads).
async fn release(lease: Lease) {
    let _ = tokio::task::spawn_blocking(move || drop(lease)).await;
}

/// The event a directory's new state (seen in the cluster) makes in a job's stream.
fn transition(index: usize, item: &JobItem) -> Option<JobEvent> {
    match item.state {
        JobState::Running => Some(JobEvent::ItemStarted {
            item: index,
            path: item.path.clone(),
        }),
        JobState::Succeeded => Some(JobEvent::ItemFinished {
            item: index,
            summary: item
                .summary
                .clone()
                .and_then(|summary| serde_json::from_value(summary).ok())
                .unwrap_or_default(),
        }),
        JobState::Failed => Some(JobEvent::ItemFailed {
            item: index,
            error: item.error.clone().unwrap_or_default(),
        }),
        JobState::Queued | JobState::Cancelled => None,
    }
}
