//! CPU-heavy work off the async workers: [`run_cpu`] runs a closure on a bounded rayon pool and
//! awaits it. The closure runs inside the caller's tracing span, is skipped when the caller has
//! gone before a pool thread picks it up (the future was dropped), and a panic in it comes back
//! as an error instead of unwinding through the pool. `spawn_blocking` stays for blocking I/O.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why CPU work produced no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuError {
    /// The work panicked; `message` is the panic's payload when it was a string.
    #[error("the cpu task panicked: {message}")]
    Panicked { message: String },
    /// The pool dropped the work without running it (it is shutting down).
    #[error("the cpu pool stopped before running the task")]
    Stopped,
}

/// Runs `work` on `pool` and awaits its result without blocking an async worker.
///
/// `work` runs in the caller's current tracing span. If the returned future is dropped before a
/// pool thread starts `work`, it never runs. A panic in `work` is caught and returned as
/// [`CpuError::Panicked`].
pub async fn run_cpu<T: Send + 'static>(
    pool: &rayon::ThreadPool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CpuError> {
    let span = tracing::Span::current();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    pool.spawn(move || {
        // The caller gave up while the task waited for a thread: nothing to do for anyone.
        if sender.is_closed() {
            return;
        }
        let _entered = span.enter();
        let outcome = catch_unwind(AssertUnwindSafe(work)).map_err(|payload| {
            let message = panic_message(payload.as_ref());
            tracing::error!(panic = %message, "cpu task panicked");
            CpuError::Panicked { message }
        });
        // The receiver is gone when the caller left while the work ran: nothing to report then.
        let _ = sender.send(outcome);
    });
    receiver.await.map_err(|_| CpuError::Stopped)?
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        return (*text).to_string();
    }
    if let Some(text) = payload.downcast_ref::<String>() {
        return text.clone();
    }
    "non-string panic payload".to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
    }

    #[tokio::test]
    async fn returns_the_value() {
        let pool = pool(1);
        assert_eq!(run_cpu(&pool, || 6 * 7).await, Ok(42));
    }

    #[tokio::test]
    async fn a_panic_is_an_error() {
        let pool = pool(1);
        let outcome = run_cpu(&pool, || -> u32 { panic!("boom") }).await;
        assert_eq!(
            outcome,
            Err(CpuError::Panicked {
                message: "boom".to_string()
            })
        );
        // The pool survives the panic.
        assert_eq!(run_cpu(&pool, || 1).await, Ok(1));
    }

    #[tokio::test]
    async fn carries_the_callers_span() {
        use tracing::Instrument;
        let pool = pool(1);
        // A registry lends out span ids and tracks each thread's current span.
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry());
        // The test's runtime polls on this thread only: the registry is its default here.
        let _default = tracing::dispatcher::set_default(&dispatch);
        let span = tracing::info_span!("caller");
        let span_id = span.id().expect("span id");
        let dispatch_in_task = dispatch.clone();
        let observed = run_cpu(&pool, move || {
            tracing::dispatcher::with_default(&dispatch_in_task, || tracing::Span::current().id())
        })
        .instrument(span.clone())
        .await;
        assert_eq!(observed, Ok(Some(span_id)));
    }

    #[tokio::test]
    async fn skips_the_work_when_the_caller_left() {
        let pool = pool(1);
        let (release_sender, release_receiver) = std::sync::mpsc::channel::<()>();
        // Occupy the only thread so the next task waits in the queue.
        pool.spawn(move || {
            let _ = release_receiver.recv();
        });
        let ran = Arc::new(AtomicBool::new(false));
        let ran_in_task = Arc::clone(&ran);
        let future = run_cpu(&pool, move || ran_in_task.store(true, Ordering::SeqCst));
        // Start it (queues the work), then give up on it.
        let cancelled = tokio::time::timeout(Duration::from_millis(20), future).await;
        assert!(cancelled.is_err(), "the work cannot have run yet");
        release_sender.send(()).expect("release");
        // The queued task has run (or been skipped) once this one completes: the pool is FIFO
        // for work spawned from outside it, with one thread.
        assert_eq!(run_cpu(&pool, || ()).await, Ok(()));
        assert!(!ran.load(Ordering::SeqCst), "abandoned work must not run");
    }
}
