//! The events of one search, as the CLI's `--json` and (later) the SSE endpoint print them.

use serde::{Deserialize, Serialize};

use crate::hit::Hit;

/// Time spent, per source and overall.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Per source: milliseconds until its results (or failure), and whether they came from cache.
    pub sources: Vec<SourceTiming>,
    pub fusion_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceTiming {
    pub source: String,
    pub ms: f64,
    pub cached: bool,
    pub ok: bool,
    pub hits: usize,
}

/// One event; `id` increases by one per event of a search. Deserialized by the command line
/// from the HTTP API's stream (the same events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SearchEvent {
    SourceStarted {
        id: u64,
        source: String,
    },
    Results {
        id: u64,
        source: String,
        hits: Vec<Hit>,
        took_ms: f64,
        cached: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
    },
    SourceFailed {
        id: u64,
        source: String,
        error: String,
    },
    Merged {
        id: u64,
        hits: Vec<Hit>,
    },
    Done {
        id: u64,
        timings: Timings,
    },
}

impl SearchEvent {
    pub fn id(&self) -> u64 {
        match self {
            SearchEvent::SourceStarted { id, .. }
            | SearchEvent::Results { id, .. }
            | SearchEvent::SourceFailed { id, .. }
            | SearchEvent::Merged { id, .. }
            | SearchEvent::Done { id, .. } => *id,
        }
    }
}
