//! The session log's writer. Events are serialized, written and synced on one blocking thread per
//! session, never on an async worker. Writes are batched: events that arrive within
//! [`LINGER`] of each other go out in one write, at most [`BATCH_BYTES`] at a time, and a sync
//! writes whatever is pending first. An event goes to subscribers only once it is written, so a
//! subscriber that falls behind finds every event it was sent in the log.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot};

use crate::event::ResearchEvent;
use crate::session::SessionLog;
use crate::{Error, Result};

/// How long an event waits for others to share its write.
const LINGER: Duration = Duration::from_millis(20);
/// Pending bytes that are written at once, without waiting.
const BATCH_BYTES: usize = 64 * 1024;

enum Command {
    Append(Box<ResearchEvent>),
    /// Write what is pending, sync the file, then answer.
    Sync(oneshot::Sender<Result<()>>),
}

/// The writing end of a session log.
pub(super) struct Journal {
    commands: mpsc::Sender<Command>,
    writer: tokio::task::JoinHandle<()>,
}

impl Journal {
    /// Starts the writer of `log` (within a tokio runtime); written events go to `subscribers`.
    pub(super) fn open(log: SessionLog, subscribers: broadcast::Sender<ResearchEvent>) -> Self {
        let (commands, received) = mpsc::channel();
        let writer = tokio::task::spawn_blocking(move || {
            Writer {
                log,
                subscribers,
                lines: Vec::new(),
                events: Vec::new(),
                failure: None,
            }
            .run(&received)
        });
        Journal { commands, writer }
    }

    /// Queues `event` (never blocks). A failed write shows at the next [`sync`](Self::sync).
    pub(super) fn append(&self, event: ResearchEvent) -> Result<()> {
        self.commands
            .send(Command::Append(Box::new(event)))
            .map_err(|_| Error::Internal("the session log writer stopped".to_string()))
    }

    /// Writes every queued event and forces the log to disk.
    pub(super) async fn sync(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Sync(reply))
            .map_err(|_| Error::Internal("the session log writer stopped".to_string()))?;
        answer
            .await
            .map_err(|_| Error::Internal("the session log writer stopped".to_string()))?
    }

    /// Writes every queued event, sends it to subscribers and stops the writer (which closes the
    /// subscriptions).
    pub(super) async fn close(self) {
        drop(self.commands);
        if let Err(err) = self.writer.await {
            tracing::error!(error = %err, "the session log writer stopped");
        }
    }
}

/// The blocking side: the log, the events waiting for their write, and the first failure.
struct Writer {
    log: SessionLog,
    subscribers: broadcast::Sender<ResearchEvent>,
    /// Serialized lines of `events`.
    lines: Vec<u8>,
    events: Vec<ResearchEvent>,
    /// After a failed write nothing more is written; syncs report it.
    failure: Option<std::io::Error>,
}

impl Writer {
    /// Serves commands until the journal closes, then writes what is left.
    fn run(mut self, commands: &mpsc::Receiver<Command>) {
        let mut deadline: Option<Instant> = None;
        loop {
            let command = match deadline {
                None => commands.recv().ok(),
                Some(at) => {
                    match commands.recv_timeout(at.saturating_duration_since(Instant::now())) {
                        Ok(command) => Some(command),
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            self.write_pending();
                            deadline = None;
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => None,
                    }
                }
            };
            match command {
                None => {
                    self.write_pending();
                    return;
                }
                Some(Command::Append(event)) => {
                    self.queue(*event);
                    if self.lines.len() >= BATCH_BYTES {
                        self.write_pending();
                        deadline = None;
                    } else if deadline.is_none() {
                        deadline = Some(Instant::now() + LINGER);
                    }
                }
                Some(Command::Sync(reply)) => {
                    self.write_pending();
                    deadline = None;
                    // The run may have stopped waiting; the log is synced all the same.
                    let _ = reply.send(self.sync());
                }
            }
        }
    }

    fn queue(&mut self, event: ResearchEvent) {
        if self.failure.is_some() {
            return;
        }
        match serde_json::to_writer(&mut self.lines, &event) {
            Ok(()) => {
                self.lines.push(b'\n');
                self.events.push(event);
            }
            Err(err) => self.failure = Some(std::io::Error::other(err)),
        }
    }

    /// One write of every pending line; the events go to subscribers once written.
    fn write_pending(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.lines);
        let events = std::mem::take(&mut self.events);
        if self.failure.is_some() {
            return;
        }
        match self.log.append_lines(&lines) {
            Ok(()) => {
                for event in events {
                    // Nobody listening is fine: the log keeps every event.
                    let _ = self.subscribers.send(event);
                }
            }
            Err(Error::Io { source, .. }) => self.failure = Some(source),
            Err(err) => self.failure = Some(std::io::Error::other(err.to_string())),
        }
    }

    fn sync(&self) -> Result<()> {
        if let Some(failure) = &self.failure {
            let copy = std::io::Error::new(failure.kind(), failure.to_string());
            return Err(Error::io("writing", self.log.path(), copy));
        }
        self.log.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use crate::session::SessionStore;

    fn delta(id: u64) -> ResearchEvent {
        ResearchEvent {
            id,
            at_ms: 1,
            kind: EventKind::SynthesisDelta {
                text: format!("part {id} "),
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_are_written_before_they_are_sent_and_all_reach_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::new(dir.path());
        let log = store.create("journal").expect("create");
        let (sender, mut receiver) = broadcast::channel(16);
        let journal = Journal::open(log, sender);
        for id in 1..=3 {
            journal.append(delta(id)).expect("append");
        }
        journal.sync().await.expect("sync");
        // Synced: written, and sent only then.
        assert_eq!(store.events("journal").expect("events").len(), 3);
        for id in 1..=3 {
            assert_eq!(receiver.try_recv().expect("sent").id, id);
        }
        // Without a sync, the linger writes them; closing writes the rest.
        journal.append(delta(4)).expect("append");
        let sent = receiver.recv().await.expect("sent after the linger");
        assert_eq!(sent.id, 4);
        assert_eq!(store.events("journal").expect("events").len(), 4);
        journal.append(delta(5)).expect("append");
        journal.close().await;
        assert_eq!(receiver.recv().await.expect("sent on close").id, 5);
        assert!(
            matches!(
                receiver.recv().await,
                Err(broadcast::error::RecvError::Closed)
            ),
            "closing the journal closes the subscriptions"
        );
        let ids: Vec<u64> = store
            .events("journal")
            .expect("events")
            .iter()
            .map(|event| event.id)
            .collect();
        assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    }
}
