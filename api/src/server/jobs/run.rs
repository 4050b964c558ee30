//! One job's run: its items indexed one after another under a concurrency permit, each item's
//! progress sent (throttled) to the job's log, and its end recorded.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use aiex_indexer::{index_directory, IndexProgress, IndexRequest, IndexSummary};

use super::{Job, JobEvent, JobItem, JobManager, JobState, PROGRESS_INTERVAL, RELEASE_WAIT};
use crate::server::users::now_secs;

impl JobManager {
    pub(super) async fn run(&self, job: Arc<Job>) {
        let permit = tokio::select! {
            permit = Arc::clone(&self.inner.permits).acquire_owned() => permit,
            () = self.inner.shutdown.cancelled() => return,
        };
        let Ok(_permit) = permit else { return };
        if job.cancelled.load(Ordering::Relaxed) {
            self.finish(&job).await;
            return;
        }
        {
            let mut record = job.record.lock();
            if record.state.is_terminal() {
                return;
            }
            record.state = JobState::Running;
            record.updated_at = now_secs();
        }
        self.persist(&job).await;
        let count = job.record.lock().items.len();
        for index in 0..count {
            if job.record.lock().items[index].state.is_terminal() {
                continue;
            }
            if self.inner.shutdown.is_cancelled() {
                self.requeue(&job).await;
                return;
            }
            if job.cancelled.load(Ordering::Relaxed) {
                break;
            }
            if !self.run_item(&job, index).await {
                self.requeue(&job).await;
                return;
            }
        }
        self.finish(&job).await;
    }

    /// Back to queued after an interruption by the shutdown (taken up again at the next start).
    async fn requeue(&self, job: &Arc<Job>) {
        {
            let mut record = job.record.lock();
            record.state = JobState::Queued;
            for item in &mut record.items {
                if item.state == JobState::Running {
                    item.state = JobState::Queued;
                }
            }
        }
        self.persist(job).await;
    }

    /// Runs one directory; false when the shutdown interrupted it.
    pub(super) async fn run_item(&self, job: &Arc<Job>, index: usize) -> bool {
        let (request, kind, local_owner) = {
            let mut record = job.record.lock();
            let (embed, rebuild, local_owner) = (record.embed, record.rebuild, record.local_owner);
            let item = &mut record.items[index];
            item.state = JobState::Running;
            let mut request = IndexRequest::new(item.path.clone());
            request.name = item.name.clone();
            request.kind = item.kind.into();
            request.embed = embed;
            request.rebuild = rebuild;
            (request, item.kind, local_owner)
        };
        self.persist(job).await;
        job.log.push(&JobEvent::ItemStarted {
            item: index,
            path: request.root.clone(),
        });
        // The directory was confined when the job was submitted; it may have been swapped for a
        // link since (time of check, time of use), so it is checked again now.
        if let Some(roots) = self.inner.roots.as_ref().filter(|_| !local_owner) {
            let roots = roots.clone();
            let root = request.root.clone();
            let checked = tokio::task::spawn_blocking(move || roots.recheck(&root)).await;
            let refusal = match checked {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(err.message),
                Err(err) => {
                    tracing::error!(error = %err, "checking a job directory panicked");
                    Some("internal error while checking the path".to_string())
                }
            };
            if let Some(message) = refusal {
                tracing::warn!(path = %request.root.display(), "job directory refused at run time");
                {
                    let mut record = job.record.lock();
                    record.updated_at = now_secs();
                    let item = &mut record.items[index];
                    item.state = JobState::Failed;
                    item.error = Some(message.clone());
                }
                job.log.push(&JobEvent::ItemFailed {
                    item: index,
                    error: message,
                });
                self.persist(job).await;
                return true;
            }
        }
        if let Some(engine) = &self.inner.engine {
            engine.begin_write(kind.into(), RELEASE_WAIT).await;
        }
        let outcome = self.index_item(job, index, request).await;
        if let Some(engine) = &self.inner.engine {
            engine.end_write(kind.into()).await;
        }
        let interrupted =
            self.inner.shutdown.is_cancelled() && !job.cancelled.load(Ordering::Relaxed);
        let event = {
            let mut record = job.record.lock();
            record.updated_at = now_secs();
            match item_end(&mut record.items[index], index, outcome, interrupted) {
                ItemEnd::Event(event) => *event,
                ItemEnd::Cancelled => return true,
                ItemEnd::Interrupted => return false,
            }
        };
        job.log.push(&event);
        self.persist(job).await;
        true
    }

    /// Indexes one directory on a blocking thread (an indexing run reads and writes files
    /// throughout; its CPU work runs on the indexer's own pool), its progress into the job's log.
    async fn index_item(
        &self,
        job: &Arc<Job>,
        index: usize,
        request: IndexRequest,
    ) -> Result<Result<IndexSummary, aiex_indexer::Error>, tokio::task::JoinError> {
        let config = Arc::clone(&self.inner.config);
        let log = Arc::clone(&job.log);
        let stop = Arc::clone(&job.stop);
        tokio::task::spawn_blocking(move || {
            let mut throttle = ProgressThrottle::default();
            index_directory(
                &config,
                request,
                &mut |progress| {
                    if throttle.admit(&progress) {
                        log.push(&JobEvent::Progress {
                            item: index,
                            progress,
                        });
                    }
                },
                &stop,
            )
        })
        .await
    }
}

/// How one directory's run ended, for its job.
enum ItemEnd {
    /// Succeeded or failed: this event says so.
    Event(Box<JobEvent>),
    /// Cancelled by the user.
    Cancelled,
    /// Stopped by the shutdown; queued again at the next start.
    Interrupted,
}

/// Records in `item` how its indexing run ended; internal errors are logged here and reported
/// without their detail.
fn item_end(
    item: &mut JobItem,
    index: usize,
    outcome: Result<Result<IndexSummary, aiex_indexer::Error>, tokio::task::JoinError>,
    interrupted: bool,
) -> ItemEnd {
    let message = match outcome {
        Ok(Ok(summary)) => {
            item.state = JobState::Succeeded;
            item.name = Some(summary.collection.clone());
            item.summary = serde_json::to_value(&summary).ok();
            return ItemEnd::Event(Box::new(JobEvent::ItemFinished {
                item: index,
                summary: Box::new(summary),
            }));
        }
        Ok(Err(aiex_indexer::Error::Cancelled)) if interrupted => return ItemEnd::Interrupted,
        Ok(Err(aiex_indexer::Error::Cancelled)) => {
            item.state = JobState::Cancelled;
            item.error = Some("cancelled".to_string());
            return ItemEnd::Cancelled;
        }
        Ok(Err(err)) if err.is_user_error() => err.to_string(),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "indexing job item failed");
            "internal error while indexing".to_string()
        }
        Err(err) => {
            tracing::error!(error = %err, "indexing job item panicked");
            "internal error while indexing".to_string()
        }
    };
    item.state = JobState::Failed;
    item.error = Some(message.clone());
    ItemEnd::Event(Box::new(JobEvent::ItemFailed {
        item: index,
        error: message,
    }))
}

/// Lets through stage changes, completions, and otherwise one progress event per interval.
#[derive(Default)]
struct ProgressThrottle {
    last: Option<(std::mem::Discriminant<IndexProgress>, Instant)>,
}

impl ProgressThrottle {
    fn admit(&mut self, progress: &IndexProgress) -> bool {
        let stage = std::mem::discriminant(progress);
        let complete = match progress {
            IndexProgress::Chunking { done, total } | IndexProgress::Embedding { done, total } => {
                done == total
            }
            IndexProgress::Walked { .. }
            | IndexProgress::KeywordCommitted { .. }
            | IndexProgress::Optimizing => true,
        };
        let due = match self.last {
            Some((last_stage, at)) => last_stage != stage || at.elapsed() >= PROGRESS_INTERVAL,
            None => true,
        };
        if complete || due {
            self.last = Some((stage, Instant::now()));
            true
        } else {
            false
        }
    }
}
