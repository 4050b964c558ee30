//! `aiex-research` owns **the deep question**: decomposition into sub-questions ([`plan`]),
//! per-sub-question search through [`aiex_search`]'s coordinator, optional page reading, evidence
//! selection ([`evidence`]: passages ranked by BM25 and embedding similarity, deduplicated, within
//! a token budget), synthesis with checked citations ([`synth`], [`cite`]; extractive without an
//! LLM), a knowledge graph ([`graph`]), reports ([`report`]), templates ([`template`]) and
//! resumable sessions ([`session`]) whose typed events ([`event`]) stream to the CLI and the HTTP
//! API.
//!
//! Threading: the orchestrator ([`engine`]) is async (tokio); searches run on the coordinator's
//! bounded pool, chunk look-ups and evidence ranking (embeddings) on the search CPU pool, session
//! log writes and fsyncs on the blocking pool (one writer per running session).

pub mod cite;
pub mod engine;
pub mod error;
pub mod event;
pub mod evidence;
pub mod flow;
pub mod graph;
pub mod html;
pub mod llm;
pub mod plan;
pub mod question;
pub mod report;
pub mod session;
pub mod synth;
pub mod template;
pub mod text;
pub mod usage;

pub use aiex_search as search;
pub use engine::{PageReader, PageText, ResearchEngine, SessionHandle};
pub use error::{Error, Result};
pub use event::{
    Budget, Completion, EventKind, ResearchEvent, ResearchRequest, SearchFailure, SourceFailure,
    Stage,
};
pub use report::{Format, Report};
pub use session::{SessionState, SessionStatus, SessionStore, SessionSummary};

/// A boxed future that can cross threads.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
