//! The SSE view of a research session: the session log of `aiex-research` replayed after the
//! client's id, then live events (see [`crate::server::research`] for the order of reads that
//! leaves no gap), keep-alive comments, and a final `shutting_down` error on shutdown. The same
//! follower feeds other views of a session ([`ResearchManager::followed`]: the OpenAI-compatible
//! chat stream).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use aiex_research::{EventKind, ResearchEvent, SessionState, SessionStatus};
use axum::response::sse::Event;
use axum::response::Response;
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::server::research::{research_error, ResearchManager, POLL_INTERVAL};
use crate::server::stream::{sse_of, OpenGuard, StreamContext};

impl ResearchManager {
    /// The SSE response of session `id` after event `after`.
    pub fn sse(self: &Arc<Self>, id: &str, after: u64, context: &StreamContext) -> Response {
        sse_of(self.event_stream(id, after, context), context)
    }

    /// The SSE events of session `id` after event `after`, then live ones until the session
    /// ends, the client leaves or the server shuts down.
    pub fn event_stream(
        self: &Arc<Self>,
        id: &str,
        after: u64,
        context: &StreamContext,
    ) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
        self.followed(id, after, context)
            .map(|followed| Ok(followed.to_sse()))
    }

    /// The events of session `id` after event `after`, then live events until the session ends,
    /// the reader drops the stream or the server shuts down (then a final
    /// [`Followed::Control`]). Counted as an open stream while alive.
    pub fn followed(
        self: &Arc<Self>,
        id: &str,
        after: u64,
        context: &StreamContext,
    ) -> impl Stream<Item = Followed> + Send + 'static {
        let follower = Follower {
            manager: Arc::clone(self),
            id: id.to_string(),
            cursor: after,
            live: None,
            pending: VecDeque::new(),
            ended: false,
            shutdown: context.shutdown.clone(),
            _open: context.open_stream(),
        };
        futures_util::stream::unfold(follower, |mut follower| async move {
            let event = follower.next_event().await?;
            Some((event, follower))
        })
    }
}

/// What a follower of a session reads: an event of its log, or a last word of the stream.
#[derive(Debug, Clone)]
pub enum Followed {
    Event(Box<ResearchEvent>),
    /// An `error` that ends the stream (`shutting_down`, an unreadable log): `data` is its JSON,
    /// `last_event_id` the id to resume after.
    Control {
        name: &'static str,
        data: serde_json::Value,
        last_event_id: u64,
    },
}

impl Followed {
    /// The SSE frame: a research event with its own id, a control event with the id to resume
    /// after (so that a browser's `EventSource` reconnects from there).
    pub fn to_sse(&self) -> Event {
        match self {
            Followed::Event(event) => to_sse(event),
            Followed::Control {
                name,
                data,
                last_event_id,
            } => Event::default()
                .id(last_event_id.to_string())
                .event(*name)
                .data(data.to_string()),
        }
    }
}

/// The SSE frame of a research event: `id:` its id, `event:` its type.
pub fn to_sse(event: &ResearchEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_string());
    Event::default()
        .id(event.id.to_string())
        .event(event.kind.type_name())
        .data(data)
}

fn error_event(data: serde_json::Value, last_event_id: u64) -> Followed {
    Followed::Control {
        name: "error",
        data,
        last_event_id,
    }
}

/// Whether a stream ends after this event whatever follows (`done`, `failed`).
fn ends_stream(kind: &EventKind) -> bool {
    kind.is_terminal()
}

struct Follower {
    manager: Arc<ResearchManager>,
    id: String,
    /// Id of the last event sent.
    cursor: u64,
    live: Option<broadcast::Receiver<ResearchEvent>>,
    pending: VecDeque<Followed>,
    ended: bool,
    shutdown: CancellationToken,
    _open: OpenGuard,
}

/// What reading the stored log found.
struct Stored {
    events: Vec<ResearchEvent>,
    status: SessionStatus,
}

impl Follower {
    async fn read_stored(&self) -> Result<Stored, aiex_research::Error> {
        let store = self.manager.store().clone();
        let id = self.id.clone();
        let cursor = self.cursor;
        tokio::task::spawn_blocking(move || {
            let mut events = store.events(&id)?;
            let status = SessionState::from_events(&events).status();
            events.retain(|event| event.id > cursor);
            Ok(Stored { events, status })
        })
        .await
        .map_err(|err| aiex_research::Error::Internal(err.to_string()))?
    }

    /// Queues `event` unless already sent; false when the stream ends with it.
    fn queue(&mut self, event: &ResearchEvent) -> bool {
        if event.id <= self.cursor {
            return true;
        }
        self.cursor = event.id;
        self.pending
            .push_back(Followed::Event(Box::new(event.clone())));
        if ends_stream(&event.kind) {
            self.ended = true;
            return false;
        }
        true
    }

    fn shutting_down(&mut self) -> Followed {
        self.ended = true;
        error_event(
            serde_json::json!({
                "type": "error",
                "code": "shutting_down",
                "message": "the server is shutting down; reconnect with last-event-id to resume",
                "last_event_id": self.cursor,
            }),
            self.cursor,
        )
    }

    /// Subscribes (when running here), then replays the log after the cursor.
    async fn catch_up(&mut self) -> Option<Followed> {
        self.live = self.manager.subscribe(&self.id);
        let stored = match self.read_stored().await {
            Ok(stored) => stored,
            Err(err) => {
                let failure = research_error(err);
                self.ended = true;
                return Some(error_event(
                    serde_json::json!({
                        "type": "error",
                        "code": failure.code,
                        "message": failure.message,
                        "last_event_id": self.cursor,
                    }),
                    self.cursor,
                ));
            }
        };
        for event in &stored.events {
            if !self.queue(event) {
                return None;
            }
        }
        // A session that runs or waits for its turn here is not over, whatever its log says yet.
        let here = self.manager.is_running(&self.id) || self.manager.is_queued(&self.id);
        if self.live.is_none() && stored.status != SessionStatus::Incomplete && !here {
            if stored.status == SessionStatus::Cancelled && self.shutdown.is_cancelled() {
                // Stopped by the shutdown: the next start resumes it.
                let ending = self.shutting_down();
                self.pending.push_back(ending);
            } else {
                // Ended (done, failed, or cancelled) and not running: nothing more will come.
                self.ended = true;
            }
        }
        None
    }

    /// The next event to send, or None at the end of the stream.
    async fn next_event(&mut self) -> Option<Followed> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            let Some(live) = self.live.as_mut() else {
                // Not subscribed: read what is stored, or wait for a session running elsewhere.
                let first = self.cursor;
                if let Some(event) = self.catch_up().await {
                    return Some(event);
                }
                if !self.pending.is_empty() || self.ended || self.live.is_some() {
                    continue;
                }
                if self.cursor == first {
                    tokio::select! {
                        () = tokio::time::sleep(POLL_INTERVAL) => {}
                        () = self.shutdown.cancelled() => return Some(self.shutting_down()),
                    }
                }
                continue;
            };
            let received = tokio::select! {
                received = live.recv() => received,
                () = self.shutdown.cancelled() => {
                    // Events already written still go out first.
                    self.live = None;
                    if let Ok(stored) = self.read_stored().await {
                        for event in &stored.events {
                            if !self.queue(event) {
                                break;
                            }
                        }
                    }
                    if !self.ended {
                        let ending = self.shutting_down();
                        self.pending.push_back(ending);
                    }
                    continue;
                }
            };
            match received {
                Ok(event) if event.id <= self.cursor => {}
                Ok(event) if event.id == self.cursor + 1 => {
                    self.queue(&event);
                }
                // A gap, a lag, or the end of the session: the log has every event.
                Ok(_)
                | Err(broadcast::error::RecvError::Lagged(_))
                | Err(broadcast::error::RecvError::Closed) => {
                    self.live = None;
                    if let Some(event) = self.catch_up().await {
                        return Some(event);
                    }
                    if self.shutdown.is_cancelled() && !self.ended && self.live.is_none() {
                        let ending = self.shutting_down();
                        self.pending.push_back(ending);
                    }
                }
            }
        }
    }
}

/// A line (or a few) telling of a session's progress for an event that does, else None: what
/// chat UIs show as "thinking" and MCP clients as progress messages.
pub fn progress_text(kind: &EventKind) -> Option<String> {
    let text = match kind {
        EventKind::SessionStarted { request, .. } => {
            format!("Researching: {}\n", request.question)
        }
        EventKind::Resumed { .. } => "Resumed.\n".to_string(),
        EventKind::StageStarted { stage, round } => {
            format!("\n{} (round {round})\n", stage.name())
        }
        EventKind::StageSkipped { stage, reason, .. } => {
            format!("{} skipped: {reason}\n", stage.name())
        }
        EventKind::Planned { plan } => {
            let mut text = format!("Plan: {}\n", plan.title);
            for sub_question in &plan.sub_questions {
                text.push_str(&format!(
                    "- {} (searching: {})\n",
                    sub_question.text,
                    sub_question.queries.join("; ")
                ));
            }
            text
        }
        EventKind::SearchCompleted {
            query,
            found,
            took_ms,
            failures,
            ..
        } => {
            let mut text = format!(
                "Searched \"{query}\": {} results in {took_ms} ms\n",
                found.len()
            );
            for failure in failures {
                text.push_str(&format!(
                    "  ({} failed: {})\n",
                    failure.source, failure.error
                ));
            }
            for hit in found.iter().take(3) {
                text.push_str(&format!("  - {}\n", hit.locator.place()));
            }
            text
        }
        EventKind::SearchFailed { query, error, .. } => {
            format!("Search \"{query}\" failed: {error}\n")
        }
        EventKind::PageFetched { page, .. } => format!("Read {}\n", page.locator.place()),
        EventKind::PageFailed { url, error, .. } => format!("Could not read {url}: {error}\n"),
        EventKind::EvidenceSelected { passages, gaps, .. } => format!(
            "Selected {} passages as evidence ({} gaps)\n",
            passages.len(),
            gaps.len()
        ),
        EventKind::CitationsRemoved { removed } => format!(
            "Removed {} citations that named no evidence\n",
            removed.len()
        ),
        EventKind::BudgetExhausted { budget, stage, .. } => format!(
            "Budget reached: {} (during {})\n",
            budget.name(),
            stage.name()
        ),
        EventKind::Warning { message } => format!("Warning: {message}\n"),
        _ => return None,
    };
    Some(text)
}
