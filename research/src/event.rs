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
    Done {
        took_ms: u64,
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
