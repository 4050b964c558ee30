//! Event streams: a typed, append-only [`EventLog`] with ids, optionally persisted as JSON lines,
//! and its SSE view ([`sse_response`]): replay after `Last-Event-ID` (or `?after=`), then follow
//! live, keep-alive comments, a final `done` or `error` event.
//!
//! Producers never wait for clients: they append to the log, and each client only holds a cursor
//! into it. The log keeps a bounded window of frames in memory; a client that falls out of the
//! window while following live gets a `resume` event with its last id and is disconnected, and
//! its reconnection replays from the file (logs without a file answer `events_expired`). A
//! producer spawned with [`spawn_producer`] that panics or returns without a final event gets an
//! `error` (or `done`) appended for it. On shutdown every open stream ends with an `error` event
//! coded `shutting_down` that carries the last id to resume from.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::server::error::ApiError;

/// Frames kept in memory per log by default.
pub const DEFAULT_WINDOW: usize = 4096;
/// The reconnection delay a stream asks of its clients (the SSE `retry:` field).
pub const RECONNECT_DELAY: Duration = Duration::from_secs(3);
/// Frames read from a log per step of a stream.
const BATCH: usize = 256;

/// An event that can be appended to an [`EventLog`].
pub trait StreamEvent: Serialize {
    /// The SSE `event:` field (for serde-tagged enums, the tag).
    fn name(&self) -> Cow<'static, str>;
    /// Whether this event ends its stream (a producer's own `done`).
    fn is_final(&self) -> bool {
        false
    }
}

/// One event of a log as it is sent: id, name and JSON data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub id: u64,
    pub event: String,
    /// JSON text.
    pub data: String,
    /// The last frame of its log.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last: bool,
}

impl Frame {
    fn to_sse(&self) -> Event {
        Event::default()
            .id(self.id.to_string())
            .event(&self.event)
            .data(&self.data)
    }
}

/// Why a log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("event log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct LogInner {
    /// The most recent frames, oldest first.
    window: VecDeque<Arc<Frame>>,
    /// Id of the last frame appended (0: none yet).
    last_id: u64,
    finished: bool,
    file: Option<std::fs::File>,
}

/// An append-only log of one stream's events, ids from 1 up.
pub struct EventLog {
    inner: Mutex<LogInner>,
    capacity: usize,
    path: Option<PathBuf>,
    /// The last id, for followers to wait on.
    notify: watch::Sender<u64>,
    /// Whether the final frame is on disk (true from the start for a log without a file). The
    /// final frame is synced on a blocking thread, never on an async worker.
    synced: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("EventLog")
            .field("last_id", &inner.last_id)
            .field("finished", &inner.finished)
            .field("path", &self.path)
            .finish()
    }
}

/// What a cursor finds in a log.
enum Read {
    Frames(Vec<Arc<Frame>>),
    /// Frames after the cursor left the memory window.
    Evicted,
    /// Nothing after the cursor yet (or ever, when finished).
    Nothing {
        finished: bool,
    },
}

impl EventLog {
    /// A log in memory, keeping at most `capacity` frames.
    pub fn in_memory(capacity: usize) -> Arc<Self> {
        Arc::new(EventLog {
            inner: Mutex::new(LogInner {
                window: VecDeque::new(),
                last_id: 0,
                finished: false,
                file: None,
            }),
            capacity: capacity.max(1),
            path: None,
            notify: watch::channel(0).0,
            synced: Arc::new(watch::channel(true).0),
        })
    }

    /// A log persisted as JSON lines at `path`: existing frames are read back (a torn last line
    /// is dropped), new ones appended. Blocking.
    pub fn open(path: &Path, capacity: usize) -> Result<Arc<Self>, StreamError> {
        let io = |source| StreamError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut window = VecDeque::new();
        let mut last_id = 0;
        let mut finished = false;
        let mut good_len = 0u64;
        match std::fs::File::open(path) {
            Ok(file) => {
                let mut reader = std::io::BufReader::new(file);
                let mut line = String::new();
                loop {
                    line.clear();
                    let read = reader.read_line(&mut line).map_err(io)?;
                    if read == 0 || !line.ends_with('\n') {
                        break;
                    }
                    let Ok(frame) = serde_json::from_str::<Frame>(&line) else {
                        break;
                    };
                    good_len += read as u64;
                    last_id = frame.id;
                    finished = frame.last;
                    window.push_back(Arc::new(frame));
                    if window.len() > capacity.max(1) {
                        window.pop_front();
                    }
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(err)),
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        // Drop a torn tail so the next frame starts on its own line.
        if file.metadata().map_err(io)?.len() != good_len {
            file.set_len(good_len).map_err(io)?;
        }
        Ok(Arc::new(EventLog {
            inner: Mutex::new(LogInner {
                window,
                last_id,
                finished,
                file: Some(file),
            }),
            capacity: capacity.max(1),
            path: Some(path.to_path_buf()),
            notify: watch::channel(last_id).0,
            // A log that ended in an earlier run was synced then.
            synced: Arc::new(watch::channel(finished).0),
        }))
    }

    fn append(&self, event: Cow<'_, str>, data: String, last: bool) -> Option<u64> {
        let mut inner = self.inner.lock();
        if inner.finished {
            return None;
        }
        inner.last_id += 1;
        let frame = Frame {
            id: inner.last_id,
            event: event.into_owned(),
            data,
            last,
        };
        let mut to_sync = None;
        if let Some(file) = inner.file.as_mut() {
            let written = serde_json::to_string(&frame)
                .map_err(std::io::Error::other)
                .and_then(|mut line| {
                    line.push('\n');
                    file.write_all(line.as_bytes())?;
                    // The final frame is the last write: syncing it, later and off the lock,
                    // makes every frame before it durable too.
                    if last {
                        to_sync = Some(file.try_clone()?);
                    }
                    Ok(())
                });
            if let Err(err) = written {
                tracing::warn!(path = ?self.path, error = %err, "event log not persisted");
            }
        }
        inner.window.push_back(Arc::new(frame));
        while inner.window.len() > self.capacity {
            inner.window.pop_front();
        }
        inner.finished = last;
        let id = inner.last_id;
        drop(inner);
        if last {
            match to_sync {
                Some(file) => self.sync_final(file),
                None => {
                    self.synced.send_replace(true);
                }
            }
        }
        self.notify.send_replace(id);
        Some(id)
    }

    /// Syncs the file after its final frame on a blocking thread (inline outside a runtime);
    /// [`EventLog::wait_finished`] returns once it is done.
    fn sync_final(&self, file: std::fs::File) {
        let synced = Arc::clone(&self.synced);
        let path = self.path.clone();
        let sync = move || {
            if let Err(err) = file.sync_data() {
                tracing::warn!(path = ?path, error = %err, "event log not synced");
            }
            synced.send_replace(true);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(sync)),
            Err(_) => sync(),
        }
    }

    /// Appends `event`; its id, or None when the log has already ended.
    pub fn push<E: StreamEvent>(&self, event: &E) -> Option<u64> {
        let data = match serde_json::to_string(event) {
            Ok(data) => data,
            Err(err) => {
                tracing::error!(error = %err, "event not serialisable");
                return self.fail("internal", "an event could not be encoded");
            }
        };
        self.append(event.name(), data, event.is_final())
    }

    /// Ends the log with a `done` event (unless it has ended already).
    pub fn finish(&self) -> Option<u64> {
        self.append(
            Cow::Borrowed("done"),
            r#"{"type":"done"}"#.to_string(),
            true,
        )
    }

    /// Ends the log with an `error` event (unless it has ended already).
    pub fn fail(&self, code: &str, message: &str) -> Option<u64> {
        let data = serde_json::json!({"type": "error", "code": code, "message": message});
        self.append(Cow::Borrowed("error"), data.to_string(), true)
    }

    pub fn last_id(&self) -> u64 {
        self.inner.lock().last_id
    }

    pub fn is_finished(&self) -> bool {
        self.inner.lock().finished
    }

    /// Waits until the log has ended and, for a log with a file, its end is on disk.
    pub async fn wait_finished(&self) {
        let mut receiver = self.notify.subscribe();
        while !self.is_finished() {
            if receiver.changed().await.is_err() {
                return;
            }
        }
        // This log holds the sender: the wait cannot fail.
        let _ = self.synced.subscribe().wait_for(|synced| *synced).await;
    }

    fn read_after(&self, cursor: u64) -> Read {
        let inner = self.inner.lock();
        if cursor >= inner.last_id {
            return Read::Nothing {
                finished: inner.finished,
            };
        }
        let first = inner.window.front().map_or(inner.last_id + 1, |f| f.id);
        if cursor + 1 < first {
            return Read::Evicted;
        }
        let skip = usize::try_from(cursor + 1 - first).unwrap_or(usize::MAX);
        Read::Frames(
            inner
                .window
                .iter()
                .skip(skip)
                .take(BATCH)
                .cloned()
                .collect(),
        )
    }

    /// Frames after `cursor` from the file (for replays beyond the memory window). Blocking.
    fn read_file_after(&self, cursor: u64) -> Option<Vec<Arc<Frame>>> {
        let path = self.path.as_ref()?;
        let file = std::fs::File::open(path).ok()?;
        let mut frames = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            let Ok(frame) = serde_json::from_str::<Frame>(&line) else {
                break;
            };
            if frame.id > cursor {
                frames.push(Arc::new(frame));
                if frames.len() >= BATCH {
                    break;
                }
            }
        }
        Some(frames)
    }

    /// Every frame after `cursor` that is still readable (memory window, else file). Blocking when
    /// it reads the file.
    pub fn frames_after(&self, cursor: u64) -> Vec<Arc<Frame>> {
        let mut out = Vec::new();
        let mut cursor = cursor;
        loop {
            let batch = match self.read_after(cursor) {
                Read::Frames(frames) => frames,
                Read::Evicted => self.read_file_after(cursor).unwrap_or_default(),
                Read::Nothing { .. } => return out,
            };
            let Some(last) = batch.last() else { return out };
            cursor = last.id;
            out.extend(batch);
        }
    }
}

/// What every stream needs from the server: its keep-alive interval, the shutdown signal, and
/// the count of open streams (for metrics).
#[derive(Debug, Clone)]
pub struct StreamContext {
    pub keep_alive: Duration,
    pub shutdown: CancellationToken,
    pub open_streams: Arc<AtomicUsize>,
}

impl StreamContext {
    pub fn new(keep_alive: Duration, shutdown: CancellationToken) -> Self {
        StreamContext {
            keep_alive,
            shutdown,
            open_streams: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Counts one more open stream until the guard is dropped.
    pub(crate) fn open_stream(&self) -> OpenGuard {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
        OpenGuard(Arc::clone(&self.open_streams))
    }
}

/// Where a client resumes: `Last-Event-ID` if sent, else `?after=`, else the start.
pub fn resume_point(headers: &HeaderMap, after: Option<u64>) -> Result<u64, ApiError> {
    match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .map(str::trim)
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_last_event_id",
                    "last-event-id must be a non-negative integer",
                )
            }),
        None => Ok(after.unwrap_or(0)),
    }
}

/// Counts an open stream while alive.
/// One open stream in [`StreamContext::open_streams`], counted down on drop.
pub(crate) struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Follower {
    log: Arc<EventLog>,
    cursor: u64,
    /// Until the first time the cursor reaches the head: evicted frames are read from the file.
    replaying: bool,
    receiver: watch::Receiver<u64>,
    shutdown: CancellationToken,
    pending: VecDeque<Event>,
    ended: bool,
    _open: OpenGuard,
}

/// A frame the stream adds (`resume`, `error`): its id is the last id sent, the one to resume
/// after, so that a browser's `EventSource` reconnects from there.
fn control_event(name: &str, data: serde_json::Value, last_event_id: u64) -> Event {
    Event::default()
        .id(last_event_id.to_string())
        .event(name)
        .data(data.to_string())
}

impl Follower {
    /// The next event to send, or None at the end of the stream.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            // Mark the current value seen before reading, so an append after the read wakes us.
            self.receiver.borrow_and_update();
            match self.log.read_after(self.cursor) {
                Read::Frames(frames) => self.queue(frames),
                Read::Evicted if self.replaying && self.log.path.is_some() => {
                    let log = Arc::clone(&self.log);
                    let cursor = self.cursor;
                    let frames = tokio::task::spawn_blocking(move || log.read_file_after(cursor))
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    if frames.is_empty() {
                        self.expire();
                    } else {
                        self.queue(frames);
                    }
                }
                Read::Evicted if self.replaying => self.expire(),
                Read::Evicted => {
                    self.pending.push_back(control_event(
                        "resume",
                        serde_json::json!({
                            "type": "resume",
                            "last_event_id": self.cursor,
                            "message": "this client fell too far behind; reconnect with last-event-id to resume",
                        }),
                        self.cursor,
                    ));
                    self.ended = true;
                }
                Read::Nothing { finished: true } => return None,
                Read::Nothing { finished: false } => {
                    self.replaying = false;
                    tokio::select! {
                        changed = self.receiver.changed() => {
                            if changed.is_err() {
                                return None;
                            }
                        }
                        () = self.shutdown.cancelled() => {
                            self.ended = true;
                            return Some(control_event(
                                "error",
                                serde_json::json!({
                                    "type": "error",
                                    "code": "shutting_down",
                                    "message": "the server is shutting down; reconnect with last-event-id to resume",
                                    "last_event_id": self.cursor,
                                }),
                                self.cursor,
                            ));
                        }
                    }
                }
            }
        }
    }

    fn queue(&mut self, frames: Vec<Arc<Frame>>) {
        for frame in frames {
            self.cursor = frame.id;
            self.pending.push_back(frame.to_sse());
            if frame.last {
                self.ended = true;
                break;
            }
        }
    }

    fn expire(&mut self) {
        self.pending.push_back(control_event(
            "error",
            serde_json::json!({
                "type": "error",
                "code": "events_expired",
                "message": "the events after this id are no longer available",
                "last_event_id": self.cursor,
            }),
            self.cursor,
        ));
        self.ended = true;
    }
}

/// The SSE events of `log` after id `after`, then live ones until the log ends, the client
/// leaves or the server shuts down.
pub fn event_stream(
    log: Arc<EventLog>,
    after: u64,
    context: &StreamContext,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let follower = Follower {
        receiver: log.notify.subscribe(),
        log,
        cursor: after,
        replaying: true,
        shutdown: context.shutdown.clone(),
        pending: VecDeque::new(),
        ended: false,
        _open: context.open_stream(),
    };
    futures_util::stream::unfold(follower, |mut follower| async move {
        let event = follower.next_event().await?;
        Some((Ok(event), follower))
    })
}

/// The `text/event-stream` response of `log` after `after`, with keep-alive comments.
pub fn sse_response(log: Arc<EventLog>, after: u64, context: &StreamContext) -> Response {
    sse_of(event_stream(log, after, context), context)
}

/// The `text/event-stream` response of `events`, with keep-alive comments, after a `retry:`
/// field that tells a browser's `EventSource` how long to wait before it reconnects.
pub(crate) fn sse_of(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    context: &StreamContext,
) -> Response {
    let retry = futures_util::stream::once(std::future::ready(Ok(
        Event::default().retry(RECONNECT_DELAY)
    )));
    let mut response = Sse::new(retry.chain(events))
        .keep_alive(
            KeepAlive::new()
                .interval(context.keep_alive)
                .text("keep-alive"),
        )
        .into_response();
    // Reverse proxies (nginx) would otherwise buffer the stream.
    response.headers_mut().insert(
        axum::http::HeaderName::from_static("x-accel-buffering"),
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

/// Runs `producer` on the runtime; if it panics, an `error` event ends the log, and if it returns
/// without ending the log, a `done` event does. Aborting the returned handle cancels it (the log
/// then ends with an `error` coded `cancelled`).
pub fn spawn_producer<F>(log: Arc<EventLog>, producer: F) -> tokio::task::AbortHandle
where
    F: Future<Output = ()> + Send + 'static,
{
    let task = tokio::spawn(producer);
    let abort = task.abort_handle();
    tokio::spawn(async move {
        match task.await {
            Ok(()) => {
                log.finish();
            }
            Err(err) if err.is_panic() => {
                tracing::error!("an event producer panicked");
                log.fail("internal", "the producer failed unexpectedly");
            }
            Err(_) => {
                log.fail("cancelled", "the producer was cancelled");
            }
        }
    });
    abort
}

/// Serde-tagged events: the `type` tag is the SSE event name.
pub fn tag_of(value: &impl Serialize) -> Cow<'static, str> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => match map.get("type") {
            Some(serde_json::Value::String(tag)) => Cow::Owned(tag.clone()),
            _ => Cow::Borrowed("message"),
        },
        _ => Cow::Borrowed("message"),
    }
}

impl StreamEvent for aiex_search::SearchEvent {
    fn name(&self) -> Cow<'static, str> {
        use aiex_search::SearchEvent as E;
        Cow::Borrowed(match self {
            E::SourceStarted { .. } => "source_started",
            E::Results { .. } => "results",
            E::SourceFailed { .. } => "source_failed",
            E::Merged { .. } => "merged",
            E::Done { .. } => "done",
        })
    }

    fn is_final(&self) -> bool {
        matches!(self, aiex_search::SearchEvent::Done { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Tick {
        Tick { n: u32 },
    }

    impl StreamEvent for Tick {
        fn name(&self) -> Cow<'static, str> {
            tag_of(self)
        }
    }

    #[test]
    fn ids_increase_and_the_log_ends_once() {
        let log = EventLog::in_memory(8);
        assert_eq!(log.push(&Tick::Tick { n: 1 }), Some(1));
        assert_eq!(log.push(&Tick::Tick { n: 2 }), Some(2));
        assert_eq!(log.finish(), Some(3));
        assert_eq!(log.push(&Tick::Tick { n: 3 }), None);
        assert_eq!(log.fail("x", "y"), None);
        let frames = log.frames_after(1);
        let ids: Vec<u64> = frames.iter().map(|f| f.id).collect();
        assert_eq!(ids, [2, 3]);
        assert_eq!(frames[0].event, "tick");
        assert!(frames[1].last);
    }

    #[test]
    fn window_evicts_and_the_file_keeps_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.jsonl");
        let log = EventLog::open(&path, 2).expect("open");
        for n in 0..5 {
            log.push(&Tick::Tick { n });
        }
        assert!(matches!(log.read_after(0), Read::Evicted));
        let ids: Vec<u64> = log.frames_after(0).iter().map(|f| f.id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        drop(log);
        // A torn line at the end is dropped on reopen, and ids continue.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("append");
        file.write_all(b"{\"id\":6,\"ev").expect("write");
        drop(file);
        let reopened = EventLog::open(&path, 2).expect("reopen");
        assert_eq!(reopened.last_id(), 5);
        assert_eq!(reopened.push(&Tick::Tick { n: 9 }), Some(6));
        let ids: Vec<u64> = reopened.frames_after(3).iter().map(|f| f.id).collect();
        assert_eq!(ids, [4, 5, 6]);
    }

    #[tokio::test]
    async fn the_final_frame_is_synced_off_the_async_worker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.jsonl");
        let log = EventLog::open(&path, 8).expect("open");
        log.push(&Tick::Tick { n: 1 });
        assert_eq!(log.finish(), Some(2));
        // Inside a runtime a blocking thread syncs; waiting for the end waits for that sync.
        log.wait_finished().await;
        assert!(*log.synced.borrow());
        let reopened = EventLog::open(&path, 8).expect("reopen");
        assert!(reopened.is_finished());
        assert_eq!(reopened.last_id(), 2);
        // Without a runtime the sync happens inline.
        let other = dir.path().join("other.jsonl");
        let blocking = std::thread::spawn(move || {
            let log = EventLog::open(&other, 8).expect("open");
            log.finish();
            let synced = *log.synced.borrow();
            synced
        });
        assert!(blocking.join().expect("thread"));
    }

    #[tokio::test]
    async fn a_panicking_producer_ends_with_an_error() {
        let log = EventLog::in_memory(8);
        let producer_log = Arc::clone(&log);
        spawn_producer(Arc::clone(&log), async move {
            producer_log.push(&Tick::Tick { n: 1 });
            panic!("boom");
        });
        log.wait_finished().await;
        let frames = log.frames_after(0);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].event, "error");
        assert!(frames[1].data.contains("\"internal\""));
        assert!(!frames[1].data.contains("boom"));
    }

    #[tokio::test]
    async fn a_slow_follower_is_told_to_resume() {
        use futures_util::StreamExt;
        let log = EventLog::in_memory(4);
        let context = StreamContext::new(Duration::from_secs(60), CancellationToken::new());
        log.push(&Tick::Tick { n: 0 });
        let stream = event_stream(Arc::clone(&log), 0, &context);
        let reader = tokio::spawn(async move {
            let events: Vec<Event> = stream
                .map(|event| event.expect("infallible"))
                .collect()
                .await;
            events
        });
        // The reader catches up and waits live; then the producer outruns the window at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for n in 1..20 {
            log.push(&Tick::Tick { n });
        }
        let events = reader.await.expect("reader");
        assert_eq!(events.len(), 2, "{events:?}");
        let last = format!("{:?}", events[1]);
        assert!(
            last.contains("resume") && last.contains("last_event_id"),
            "{last}"
        );
        assert_eq!(context.open_streams.load(Ordering::Relaxed), 0);
    }
}
