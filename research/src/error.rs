//! The research crate's errors.

/// What can go wrong in a research session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No session with this id under the data directory.
    #[error("no research session `{id}`")]
    SessionNotFound { id: String },
    /// A session id that cannot name a session directory.
    #[error("invalid session id `{id}`")]
    InvalidSessionId { id: String },
    /// Another process (or task) is writing the session now.
    #[error("session `{id}` is running elsewhere")]
    SessionBusy { id: String },
    /// The session already ended; nothing to resume.
    #[error("session `{id}` is already complete")]
    SessionComplete { id: String },
    /// No template with this name.
    #[error("unknown template `{name}` (known: {known})")]
    UnknownTemplate { name: String, known: String },
    /// A collection named in the request is not indexed.
    #[error("unknown collection `{name}`")]
    UnknownCollection { name: String },
    /// Nothing to search: no collections and no web source.
    #[error("no sources to search: index a collection first (`aiex-research index PATH`)")]
    NoSources,
    /// The question is empty.
    #[error("the question is empty")]
    EmptyQuestion,
    /// Reading or writing the session log or a report.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// A session log line that is not an event.
    #[error("corrupt session log {path} at line {line}: {message}")]
    CorruptLog {
        path: String,
        line: usize,
        message: String,
    },
    /// Building the sources failed.
    #[error(transparent)]
    Setup(#[from] aiex_search::setup::SetupError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] aiex_indexer::Error),
    /// The LLM layer failed (planning or synthesis).
    #[error("llm: {0}")]
    Llm(String),
    /// Serializing an event or a report.
    #[error("serializing: {0}")]
    Json(#[from] serde_json::Error),
    /// A background task stopped unexpectedly.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// Whether the user can fix this (bad input) rather than an internal failure.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::SessionNotFound { .. }
                | Error::InvalidSessionId { .. }
                | Error::SessionComplete { .. }
                | Error::SessionBusy { .. }
                | Error::UnknownTemplate { .. }
                | Error::UnknownCollection { .. }
                | Error::NoSources
                | Error::EmptyQuestion
        )
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
