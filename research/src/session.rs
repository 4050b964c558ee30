//! Sessions on disk: one append-only JSON-lines event log per session under
//! `data_dir/research/sessions/ID/events.jsonl`, synced at the end of every stage and after every
//! finished search or fetch (the engine's journal batches the writes in between). A torn last
//! line (a crash mid-write) is ignored on reading and cut off before a resumed session appends.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::event::{Completion, EventKind, ResearchEvent, ResearchRequest, SearchFailure, Stage};
use crate::evidence::{FoundText, Passage};
use crate::plan::Plan;
use crate::report::Report;
use crate::usage::Usage;
use crate::{Error, Result};

const LOG_FILE: &str = "events.jsonl";

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Events are still being written, or the process writing them died (resumable).
    Incomplete,
    Cancelled,
    Complete,
    /// Complete, but some searches failed: the report and the `done` event list them.
    CompleteWithErrors,
    Failed,
}

impl SessionStatus {
    /// Whether the session reached its report and `done` (with or without failed searches).
    pub fn is_complete(self) -> bool {
        matches!(
            self,
            SessionStatus::Complete | SessionStatus::CompleteWithErrors
        )
    }

    /// Whether the session ended for good (complete or failed; cancelled sessions can resume).
    pub fn is_ended(self) -> bool {
        self.is_complete() || self == SessionStatus::Failed
    }

    /// The snake_case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            SessionStatus::Incomplete => "incomplete",
            SessionStatus::Cancelled => "cancelled",
            SessionStatus::Complete => "complete",
            SessionStatus::CompleteWithErrors => "complete_with_errors",
            SessionStatus::Failed => "failed",
        }
    }
}

/// A line of `sessions list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub question: String,
    pub started_at: String,
    pub status: SessionStatus,
    pub last_event_id: u64,
    /// The last stage completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_stage: Option<Stage>,
}

/// A session's state rebuilt from its events.
#[derive(Debug, Clone, Default)]
pub struct SessionState {
    pub session: String,
    pub request: Option<ResearchRequest>,
    pub started_at_ms: u64,
    pub last_id: u64,
    pub plan: Option<Plan>,
    /// Completed (stage, round) pairs.
    pub completed: BTreeSet<(Stage, u32)>,
    /// Finished searches: (round, sub-question, query) → texts found.
    pub searches: HashMap<(u32, usize, String), Vec<FoundText>>,
    /// Searches run, failed ones included.
    pub searches_run: usize,
    /// Searches that failed, wholly or for one of their sources, in the order they finished.
    pub failures: Vec<SearchFailure>,
    /// Fetched pages: (round, sub-question, page), in order.
    pub pages: Vec<(u32, usize, FoundText)>,
    pub pages_tried: usize,
    /// Evidence per round.
    pub evidence: HashMap<u32, (Vec<Passage>, Vec<crate::evidence::Gap>)>,
    pub report: Option<Report>,
    pub usage: Usage,
    pub budgets_hit: Vec<crate::report::BudgetNote>,
    pub status: Option<SessionStatus>,
}

impl SessionState {
    pub fn from_events(events: &[ResearchEvent]) -> Self {
        let mut state = SessionState::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    pub fn apply(&mut self, event: &ResearchEvent) {
        self.last_id = self.last_id.max(event.id);
        match &event.kind {
            EventKind::SessionStarted {
                session, request, ..
            } => {
                self.session = session.clone();
                self.request = Some(request.clone());
                self.started_at_ms = event.at_ms;
            }
            EventKind::Resumed { .. } => self.status = None,
            EventKind::StageCompleted { stage, round, .. } => {
                self.completed.insert((*stage, *round));
            }
            EventKind::StageSkipped { stage, round, .. } => {
                self.completed.insert((*stage, *round));
            }
            EventKind::Planned { plan } => self.plan = Some(plan.clone()),
            EventKind::SearchCompleted {
                round,
                sub_question,
                query,
                found,
                failures,
                ..
            } => {
                self.searches_run += 1;
                self.searches
                    .insert((*round, *sub_question, query.clone()), found.clone());
                self.failures
                    .extend(failures.iter().map(|failure| SearchFailure {
                        round: *round,
                        sub_question: *sub_question,
                        query: query.clone(),
                        source: Some(failure.source.clone()),
                        error: failure.error.clone(),
                    }));
            }
            EventKind::SearchFailed {
                round,
                sub_question,
                query,
                error,
            } => {
                self.searches_run += 1;
                self.failures.push(SearchFailure {
                    round: *round,
                    sub_question: *sub_question,
                    query: query.clone(),
                    source: None,
                    error: error.clone(),
                });
            }
            EventKind::PageFetched {
                round,
                sub_question,
                page,
            } => {
                self.pages_tried += 1;
                self.pages.push((*round, *sub_question, page.clone()));
            }
            EventKind::PageFailed { .. } => self.pages_tried += 1,
            EventKind::EvidenceSelected {
                round,
                passages,
                gaps,
            } => {
                self.evidence
                    .insert(*round, (passages.clone(), gaps.clone()));
            }
            EventKind::LlmUsage { usage, .. } => self.usage.add(usage),
            EventKind::BudgetExhausted {
                budget,
                stage,
                limit,
                ..
            } => self.budgets_hit.push(crate::report::BudgetNote {
                budget: budget.name().to_string(),
                stage: stage.name().to_string(),
                limit: *limit,
            }),
            EventKind::ReportReady { report } => self.report = Some((**report).clone()),
            EventKind::Cancelled {} => self.status = Some(SessionStatus::Cancelled),
            EventKind::Failed { .. } => self.status = Some(SessionStatus::Failed),
            EventKind::Done { status, .. } => {
                self.status = Some(match status {
                    Completion::Complete => SessionStatus::Complete,
                    Completion::CompleteWithErrors => SessionStatus::CompleteWithErrors,
                })
            }
            _ => {}
        }
    }

    pub fn status(&self) -> SessionStatus {
        self.status.unwrap_or(SessionStatus::Incomplete)
    }

    pub fn is_done(&self, stage: Stage, round: u32) -> bool {
        self.completed.contains(&(stage, round))
    }

    fn last_stage(&self) -> Option<Stage> {
        self.completed.iter().map(|(stage, _)| *stage).max()
    }
}

/// The sessions under a data directory.
#[derive(Debug, Clone)]
pub struct SessionStore {
    root: PathBuf,
}

/// Whether `id` can name a session directory (no separators, no dots).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl SessionStore {
    /// The store under `data_dir/research/sessions`.
    pub fn new(data_dir: &Path) -> Self {
        SessionStore {
            root: data_dir.join("research").join("sessions"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, id: &str) -> Result<PathBuf> {
        if !valid_id(id) {
            return Err(Error::InvalidSessionId { id: id.to_string() });
        }
        Ok(self.root.join(id))
    }

    pub fn log_path(&self, id: &str) -> Result<PathBuf> {
        Ok(self.dir(id)?.join(LOG_FILE))
    }

    /// A new, empty session log.
    pub fn create(&self, id: &str) -> Result<SessionLog> {
        let dir = self.dir(id)?;
        std::fs::create_dir_all(&dir).map_err(|err| Error::io("creating", &dir, err))?;
        let path = dir.join(LOG_FILE);
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|err| Error::io("creating", &path, err))?;
        lock(&file, id, &path)?;
        Ok(SessionLog { file, path })
    }

    /// The stored events of session `id`, and the length of the file's valid part.
    fn read(&self, id: &str) -> Result<(Vec<ResearchEvent>, u64)> {
        let path = self.log_path(id)?;
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::SessionNotFound { id: id.to_string() })
            }
            Err(err) => return Err(Error::io("opening", &path, err)),
        };
        let mut reader = std::io::BufReader::new(file);
        let mut events = Vec::new();
        let mut valid_len = 0u64;
        let mut line = String::new();
        let mut number = 0usize;
        loop {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .map_err(|err| Error::io("reading", &path, err))?;
            if read == 0 {
                break;
            }
            number += 1;
            let complete = line.ends_with('\n');
            match serde_json::from_str::<ResearchEvent>(line.trim_end()) {
                Ok(event) if complete => {
                    events.push(event);
                    valid_len += read as u64;
                }
                // A torn last line: the crash happened mid-write.
                _ if !complete => break,
                Ok(_) => break,
                Err(err) => {
                    return Err(Error::CorruptLog {
                        path: path.display().to_string(),
                        line: number,
                        message: err.to_string(),
                    })
                }
            }
        }
        Ok((events, valid_len))
    }

    /// Every stored event of session `id`.
    pub fn events(&self, id: &str) -> Result<Vec<ResearchEvent>> {
        Ok(self.read(id)?.0)
    }

    /// The stored events with an id above `after_id` (for `Last-Event-ID`).
    pub fn events_after(&self, id: &str, after_id: u64) -> Result<Vec<ResearchEvent>> {
        let mut events = self.events(id)?;
        events.retain(|event| event.id > after_id);
        Ok(events)
    }

    /// The state of session `id`.
    pub fn state(&self, id: &str) -> Result<SessionState> {
        Ok(SessionState::from_events(&self.events(id)?))
    }

    /// The report of session `id`, once written.
    pub fn report(&self, id: &str) -> Result<Option<Report>> {
        Ok(self.state(id)?.report)
    }

    pub fn summary(&self, id: &str) -> Result<SessionSummary> {
        let state = self.state(id)?;
        Ok(SessionSummary {
            id: id.to_string(),
            question: state
                .request
                .as_ref()
                .map(|request| request.question.clone())
                .unwrap_or_default(),
            started_at: crate::text::rfc3339(state.started_at_ms),
            status: state.status(),
            last_event_id: state.last_id,
            last_stage: state.last_stage(),
        })
    }

    /// Sessions, newest first, `limit` of them after skipping `offset`; and the total count.
    pub fn list(&self, offset: usize, limit: usize) -> Result<(Vec<SessionSummary>, usize)> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(err) => return Err(Error::io("listing", &self.root, err)),
        };
        let mut sessions: Vec<(std::time::SystemTime, String)> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let log = entry.path().join(LOG_FILE);
            if !valid_id(&name) || !log.is_file() {
                continue;
            }
            let created = std::fs::metadata(entry.path())
                .and_then(|meta| meta.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            sessions.push((created, name));
        }
        sessions.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let total = sessions.len();
        let page = sessions
            .into_iter()
            .skip(offset)
            .take(limit)
            .filter_map(|(_, id)| self.summary(&id).ok())
            .collect();
        Ok((page, total))
    }

    /// The log of session `id` opened for appending (a torn last line cut off first), and the
    /// events stored so far.
    pub fn reopen(&self, id: &str) -> Result<(SessionLog, Vec<ResearchEvent>)> {
        let (events, valid_len) = self.read(id)?;
        let path = self.log_path(id)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|err| Error::io("opening", &path, err))?;
        lock(&file, id, &path)?;
        file.set_len(valid_len)
            .map_err(|err| Error::io("truncating", &path, err))?;
        Ok((SessionLog { file, path }, events))
    }
}

/// Takes the session's writer lock (released when the file closes, also when the process dies).
fn lock(file: &std::fs::File, id: &str, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::SessionBusy { id: id.to_string() }),
        Err(std::fs::TryLockError::Error(err)) => Err(Error::io("locking", path, err)),
    }
}

/// An open session log.
#[derive(Debug)]
pub struct SessionLog {
    file: std::fs::File,
    path: PathBuf,
}

impl SessionLog {
    /// Appends one event (one line, written at once).
    pub fn append(&mut self, event: &ResearchEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        self.append_lines(&line)
    }

    /// Appends whole event lines (each ending in a newline), written at once.
    pub fn append_lines(&mut self, lines: &[u8]) -> Result<()> {
        self.file
            .write_all(lines)
            .map_err(|err| Error::io("writing", &self.path, err))
    }

    /// Forces what was appended to disk.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|err| Error::io("syncing", &self.path, err))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the file (to sync it off the async workers).
    pub fn try_clone(&self) -> Result<std::fs::File> {
        self.file
            .try_clone()
            .map_err(|err| Error::io("opening", &self.path, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, kind: EventKind) -> ResearchEvent {
        ResearchEvent {
            id,
            at_ms: 1_000,
            kind,
        }
    }

    #[test]
    fn log_replays_after_an_id_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::new(dir.path());
        let mut log = store.create("abc").expect("create");
        let request = ResearchRequest {
            question: "q".into(),
            collections: vec![],
            depth: 1,
            template: None,
            sources: vec![],
        };
        log.append(&event(
            1,
            EventKind::SessionStarted {
                session: "abc".into(),
                request,
                started_at: "t".into(),
            },
        ))
        .expect("append");
        log.append(&event(
            2,
            EventKind::StageStarted {
                stage: Stage::Plan,
                round: 0,
            },
        ))
        .expect("append");
        log.append(&event(
            3,
            EventKind::StageCompleted {
                stage: Stage::Plan,
                round: 0,
                took_ms: 1,
            },
        ))
        .expect("append");
        log.sync().expect("sync");
        drop(log);
        // A crash mid-write leaves half a line.
        let path = store.log_path("abc").expect("path");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        file.write_all(b"{\"id\":4,\"at_ms\":1,\"type\":\"stage_st")
            .expect("write");
        drop(file);

        let after = store.events_after("abc", 1).expect("events");
        assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), vec![2, 3]);
        let state = store.state("abc").expect("state");
        assert!(state.is_done(Stage::Plan, 0));
        assert_eq!(state.status(), SessionStatus::Incomplete);

        let (mut log, events) = store.reopen("abc").expect("reopen");
        assert_eq!(events.len(), 3);
        assert!(
            matches!(store.reopen("abc"), Err(Error::SessionBusy { .. })),
            "one writer per session"
        );
        log.append(&event(
            4,
            EventKind::Done {
                took_ms: 5,
                status: Completion::Complete,
                failures: Vec::new(),
            },
        ))
        .expect("append");
        let state = store.state("abc").expect("state");
        assert_eq!(state.status(), SessionStatus::Complete);
        let (list, total) = store.list(0, 10).expect("list");
        assert_eq!(total, 1);
        assert_eq!(list[0].id, "abc");
        assert_eq!(list[0].question, "q");
        assert!(matches!(
            store.events("../x"),
            Err(Error::InvalidSessionId { .. })
        ));
        assert!(matches!(
            store.events("nope"),
            Err(Error::SessionNotFound { .. })
        ));
    }
}
