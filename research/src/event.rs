//! The events of a research session, as the session log stores them, the CLI's `--json` prints
//! them and the HTTP API streams them: `{"id": 7, "type": "search_completed", ...}`. Ids start at 1
//! and increase by one per event of a session, across resumes.

use serde::{Deserialize, Serialize};

use crate::cite::RemovedCitation;
use crate::evidence::{FoundText, Gap, Passage};
use crate::plan::Plan;
use crate::report::Report;
use crate::usage::Usage;

/// Stages of the workflow, in order. Search, fetch and evidence run once per round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Plan,
    Search,
    Fetch,
    Evidence,
    Synthesize,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Plan => "plan",
            Stage::Search => "search",
            Stage::Fetch => "fetch",
            Stage::Evidence => "evidence",
            Stage::Synthesize => "synthesize",
        }
    }
}

/// A budget of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    SubQuestions,
    Searches,
    Pages,
    Tokens,
    Cost,
    WallTime,
    EvidenceTokens,
}

impl Budget {
    pub fn name(self) -> &'static str {
        match self {
            Budget::SubQuestions => "sub_questions",
            Budget::Searches => "searches",
            Budget::Pages => "pages",
            Budget::Tokens => "tokens",
            Budget::Cost => "cost",
            Budget::WallTime => "wall_time",
            Budget::EvidenceTokens => "evidence_tokens",
        }
    }
}

/// What a session was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResearchRequest {
    pub question: String,
    /// Collections searched (empty: all).
    #[serde(default)]
    pub collections: Vec<String>,
    /// Search rounds (1 or more).
    pub depth: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Sources asked (`code`, `docs`, `web`; empty: all configured).
    #[serde(default)]
    pub sources: Vec<String>,
}

/// A source that failed during one search: it timed out (after its retry, for local sources),
/// returned an error, or could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFailure {
    pub source: String,
    pub error: String,
}

/// A search of the session that failed, wholly or for one of its sources: the evidence it would
/// have brought is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFailure {
    pub round: u32,
    pub sub_question: usize,
    pub query: String,
    /// The source that failed; absent when the search as a whole failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub error: String,
}

/// How a session that reached its end went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completion {
    /// Every search answered (with or without hits).
    #[default]
    Complete,
    /// Some searches failed: the report lists them, and evidence may be missing.
    CompleteWithErrors,
}

impl Completion {
    pub fn name(self) -> &'static str {
        match self {
            Completion::Complete => "complete",
            Completion::CompleteWithErrors => "complete_with_errors",
        }
    }

    pub fn is_complete(&self) -> bool {
        *self == Completion::Complete
    }

    /// `complete_with_errors` when any search failed.
    pub fn of(failures: &[SearchFailure]) -> Self {
        if failures.is_empty() {
            Completion::Complete
        } else {
            Completion::CompleteWithErrors
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResearchEvent {
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    SessionStarted {
        session: String,
        request: ResearchRequest,
        started_at: String,
    },
    /// A later process took the session up again.
    Resumed {
        session: String,
        completed: Vec<String>,
    },
    StageStarted {
        stage: Stage,
        round: u32,
    },
    StageCompleted {
        stage: Stage,
        round: u32,
        took_ms: u64,
    },
    StageSkipped {
        stage: Stage,
        round: u32,
        reason: String,
    },
    Planned {
        plan: Plan,
    },
    SearchStarted {
        round: u32,
        sub_question: usize,
        query: String,
    },
    SearchCompleted {
        round: u32,
        sub_question: usize,
        query: String,
        found: Vec<FoundText>,
        took_ms: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
        /// Sources that failed for this query (still failing after a local source's retry).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failures: Vec<SourceFailure>,
    },
    SearchFailed {
        round: u32,
        sub_question: usize,
        query: String,
        error: String,
    },
    PageFetched {
        round: u32,
        sub_question: usize,
        page: FoundText,
    },
    PageFailed {
        round: u32,
        url: String,
        error: String,
    },
    EvidenceSelected {
        round: u32,
        passages: Vec<Passage>,
        gaps: Vec<Gap>,
    },
    SynthesisDelta {
        text: String,
    },
    CitationsRemoved {
        removed: Vec<RemovedCitation>,
    },
    LlmUsage {
        stage: Stage,
        usage: Usage,
    },
    BudgetExhausted {
        budget: Budget,
        stage: Stage,
        limit: f64,
        used: f64,
    },
    Warning {
        message: String,
    },
    ReportReady {
        report: Box<Report>,
    },
    Cancelled {},
    Failed {
        error: String,
    },
    /// The end: `complete` (the field is then left out, as in logs of earlier versions), or
    /// `complete_with_errors` with the searches that failed.
    Done {
        took_ms: u64,
        #[serde(default, skip_serializing_if = "Completion::is_complete")]
        status: Completion,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failures: Vec<SearchFailure>,
    },
}

impl EventKind {
    /// Whether the session ended with this event (no resume needed).
    pub fn is_terminal(&self) -> bool {
        matches!(self, EventKind::Done { .. } | EventKind::Failed { .. })
    }

    /// The `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::SessionStarted { .. } => "session_started",
            EventKind::Resumed { .. } => "resumed",
            EventKind::StageStarted { .. } => "stage_started",
            EventKind::StageCompleted { .. } => "stage_completed",
            EventKind::StageSkipped { .. } => "stage_skipped",
            EventKind::Planned { .. } => "planned",
            EventKind::SearchStarted { .. } => "search_started",
            EventKind::SearchCompleted { .. } => "search_completed",
            EventKind::SearchFailed { .. } => "search_failed",
            EventKind::PageFetched { .. } => "page_fetched",
            EventKind::PageFailed { .. } => "page_failed",
            EventKind::EvidenceSelected { .. } => "evidence_selected",
            EventKind::SynthesisDelta { .. } => "synthesis_delta",
            EventKind::CitationsRemoved { .. } => "citations_removed",
            EventKind::LlmUsage { .. } => "llm_usage",
            EventKind::BudgetExhausted { .. } => "budget_exhausted",
            EventKind::Warning { .. } => "warning",
            EventKind::ReportReady { .. } => "report_ready",
            EventKind::Cancelled {} => "cancelled",
            EventKind::Failed { .. } => "failed",
            EventKind::Done { .. } => "done",
        }
    }
}
