//! Requests to the server: each runs on the store's worker thread, through the shared resilience
//! layer (retries of transient failures, a circuit breaker), and its failure becomes a clear error.

use std::future::Future;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use aiex_resilience::CallHealth;
use qdrant_client::{Qdrant, QdrantError};
use tokio::sync::mpsc as async_mpsc;

use super::{stats, Job, ServerVectorStore, BREAKER_COOLDOWN, BREAKER_THRESHOLD, RETRY};
use crate::error::Error;

impl ServerVectorStore {
    /// Runs `f` on the worker once, without retries.
    pub(super) fn call_once<T, F, Fut>(&self, f: F) -> std::result::Result<T, QdrantError>
    where
        T: Send + 'static,
        F: FnOnce(Qdrant) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, QdrantError>> + Send + 'static,
    {
        self.on_worker(move |client| async move {
            let started = Instant::now();
            let result = f(client).await;
            stats::observe(started.elapsed(), result.is_err());
            result
        })
    }

    /// Runs the future `f` makes on the worker and waits for its answer.
    fn on_worker<T, F, Fut>(&self, f: F) -> std::result::Result<T, QdrantError>
    where
        T: Send + 'static,
        F: FnOnce(Qdrant) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, QdrantError>> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                // The caller may have gone away; nothing else waits for this answer.
                let _ = reply.send(f(client).await);
            })
        });
        let stopped = || QdrantError::Io(std::io::Error::other("the Qdrant worker has stopped"));
        self.jobs.send(job).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    /// Runs the request `f` makes through the shared resilience layer: transient failures
    /// (unavailable, overloaded, timed out) are retried with jittered backoff or the server's
    /// `retry-after`; errors that a retry cannot fix (a refused API key, a bad request) are
    /// returned at once; the circuit breaker refuses calls while the server keeps failing.
    pub(super) fn call<T, F, Fut>(&self, f: F) -> std::result::Result<T, QdrantError>
    where
        T: Send + 'static,
        F: Fn(Qdrant) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<T, QdrantError>> + Send + 'static,
    {
        let breaker = Arc::clone(&self.breaker);
        self.on_worker(move |client| async move {
            let mut retry = 0;
            loop {
                let Some(guard) = breaker.try_acquire() else {
                    return Err(QdrantError::Io(std::io::Error::other(format!(
                        "not called: the last {BREAKER_THRESHOLD} requests failed (circuit \
                         breaker open for {}s)",
                        BREAKER_COOLDOWN.as_secs()
                    ))));
                };
                let started = Instant::now();
                let result = f(client.clone()).await;
                stats::observe(started.elapsed(), result.is_err());
                guard.record(match &result {
                    Ok(_) => CallHealth::Healthy,
                    Err(err) if transient(err) || refused(err) => CallHealth::Failed,
                    // The server answered, refusing the request itself: it is up.
                    Err(_) => CallHealth::Healthy,
                });
                let err = match result {
                    Err(err) if retry < RETRY.max_retries && transient(&err) => err,
                    other => return other,
                };
                let retry_after = match &err {
                    QdrantError::ResourceExhaustedError {
                        retry_after_seconds,
                        ..
                    } => Some(Duration::from_secs(*retry_after_seconds)),
                    _ => None,
                };
                let Some(wait) = RETRY.delay(retry, retry_after) else {
                    return Err(err);
                };
                tracing::warn!(retry, "Qdrant request failed, retrying: {err}");
                stats::retried();
                tokio::time::sleep(wait).await;
                retry += 1;
            }
        })
    }

    /// A clear error for `err`, which happened while `doing` something.
    pub(super) fn error(&self, doing: &str, err: &QdrantError) -> Error {
        let url = &self.url;
        let message = match status_code(err) {
            Some(Code::Unauthenticated | Code::PermissionDenied) => format!(
                "Qdrant at {url} refused the API key (vector.api_key) while {doing}: {}",
                status_message(err)
            ),
            _ if unreachable(err) => {
                format!(
                    "Qdrant unreachable at {url} ({doing}): {}",
                    status_message(err)
                )
            }
            Some(Code::DeadlineExceeded) => format!(
                "Qdrant at {url} did not answer in time ({doing}; vector.request_timeout_ms): {}",
                status_message(err)
            ),
            _ => format!(
                "Qdrant at {url}, collection {}: {doing}: {}",
                self.collection,
                status_message(err)
            ),
        };
        Error::Vector { message }
    }
}

/// The gRPC status codes this store tells apart (numbers fixed by the gRPC specification).
/// The outcome of creating something, where "already exists" (another process created it
/// meanwhile) is success.
pub(super) fn created<T>(
    result: std::result::Result<T, QdrantError>,
) -> std::result::Result<(), QdrantError> {
    match result {
        Ok(_) => Ok(()),
        Err(err)
            if status_code(&err) == Some(Code::AlreadyExists)
                || status_message(&err).contains("already exists") =>
        {
            Ok(())
        }
        Err(err) => Err(err),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Code {
    DeadlineExceeded,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    Aborted,
    Unavailable,
    Unauthenticated,
    Other,
}

impl Code {
    fn from_grpc(code: i32) -> Code {
        match code {
            4 => Code::DeadlineExceeded,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            10 => Code::Aborted,
            14 => Code::Unavailable,
            16 => Code::Unauthenticated,
            _ => Code::Other,
        }
    }
}

pub(super) fn status_code(err: &QdrantError) -> Option<Code> {
    match err {
        QdrantError::ResponseError { status } => Some(Code::from_grpc(i32::from(status.code()))),
        QdrantError::ResourceExhaustedError { .. } => Some(Code::ResourceExhausted),
        _ => None,
    }
}

pub(super) fn status_message(err: &QdrantError) -> String {
    match err {
        QdrantError::ResponseError { status } => {
            let message = status.message();
            if message.is_empty() {
                status.code().description().to_string()
            } else {
                message.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// Whether the server could not be reached at all: the client reports a failed connection as
/// `Internal` with "Failed to connect to", a broken one as `Unavailable`.
fn unreachable(err: &QdrantError) -> bool {
    match err {
        QdrantError::ResponseError { status } => match Code::from_grpc(i32::from(status.code())) {
            Code::Unavailable => true,
            Code::Other => status.message().starts_with("Failed to connect to"),
            _ => false,
        },
        _ => false,
    }
}

/// Whether the server refused the API key.
fn refused(err: &QdrantError) -> bool {
    matches!(
        status_code(err),
        Some(Code::Unauthenticated | Code::PermissionDenied)
    )
}

fn transient(err: &QdrantError) -> bool {
    unreachable(err)
        || matches!(
            status_code(err),
            Some(Code::ResourceExhausted | Code::DeadlineExceeded | Code::Aborted)
        )
}

/// The worker thread: a current-thread runtime that runs every job as its own task, until the
/// store (the only sender) is dropped.
pub(super) fn worker(
    client: Qdrant,
    mut jobs: async_mpsc::UnboundedReceiver<Job>,
    ready: &mpsc::SyncSender<std::result::Result<(), String>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(format!("starting the Qdrant runtime: {err}")));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    runtime.block_on(async move {
        let mut running = tokio::task::JoinSet::new();
        while let Some(job) = jobs.recv().await {
            running.spawn(job(client.clone()));
            // Reap finished tasks so the set does not grow.
            while running.try_join_next().is_some() {}
        }
        while running.join_next().await.is_some() {}
    });
}
