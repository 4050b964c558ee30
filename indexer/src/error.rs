use std::path::PathBuf;

/// Errors of the indexer. User errors (bad input, missing setup) are told apart from internal ones
/// (a store failing) by [`Error::is_user_error`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("path {path} does not exist or is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("collection `{name}` not found (see `aiex-research index --status`)")]
    CollectionNotFound { name: String },
    #[error(
        "invalid collection name `{name}`: use letters, digits, `-`, `_` and `.` (at most 64)"
    )]
    InvalidCollectionName { name: String },
    #[error(
        "collection `{name}` is indexed from {existing}, not {requested}; pick another --name"
    )]
    CollectionRootMismatch {
        name: String,
        existing: PathBuf,
        requested: PathBuf,
    },
    #[error("collection `{name}` holds {existing}, not {requested}; pick another name")]
    CollectionKindMismatch {
        name: String,
        existing: &'static str,
        requested: &'static str,
    },
    #[error("invalid glob `{glob}`: {reason}")]
    InvalidGlob { glob: String, reason: String },
    #[error(
        "{what} not found at {path}: run `scripts/setup` (it installs the ONNX Runtime and the \
         embedding model), or set {setting}"
    )]
    SetupMissing {
        what: &'static str,
        path: PathBuf,
        setting: &'static str,
    },
    #[error("embedding model: {message}")]
    Embedding { message: String },
    #[error("embedding model file {path} cannot be used: {reason}")]
    ModelFile { path: PathBuf, reason: String },
    #[error("embedding dimension mismatch: index has {expected}, model gives {got}")]
    WrongDimension { expected: usize, got: usize },
    #[error(
        "collection `{name}` was embedded with model `{indexed}`, but `{configured}` is configured; \
         re-index it with --rebuild"
    )]
    ModelMismatch {
        name: String,
        indexed: String,
        configured: String,
    },
    #[error("index at {path} has schema version {found}, this build reads version {expected}")]
    SchemaVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("collection `{name}` is being written by another process (lock {path})")]
    Locked { name: String, path: PathBuf },
    #[error(
        "collection `{name}` is being indexed by {holder} (its lease in Qdrant expires in \
         {expires_in_secs}s unless renewed; try again after)"
    )]
    Leased {
        name: String,
        holder: String,
        expires_in_secs: u64,
    },
    #[error(
        "the indexing lease of collection `{name}` expired before this run could renew it, or \
         another run took it over (Qdrant slow or unreachable?); this run stopped, run it again"
    )]
    LeaseLost { name: String },
    #[error("cannot push collection `{name}`: {reason}")]
    PushRefused { name: String, reason: String },
    #[error("vector search needs embeddings, which are disabled in the configuration")]
    EmbeddingsDisabled,
    #[error("keyword index: {0}")]
    Keyword(#[from] tantivy::TantivyError),
    #[error("keyword index: {0}")]
    KeywordOpen(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("vector store: {message}")]
    Vector { message: String },
    #[error("manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("indexing was cancelled")]
    Cancelled,
    #[error("worker pool: {0}")]
    Pool(String),
}

impl Error {
    /// Whether the error was caused by the user's input or setup rather than by a failure inside.
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::NotADirectory { .. }
            | Error::CollectionNotFound { .. }
            | Error::InvalidCollectionName { .. }
            | Error::CollectionRootMismatch { .. }
            | Error::CollectionKindMismatch { .. }
            | Error::InvalidGlob { .. }
            | Error::SetupMissing { .. }
            | Error::ModelFile { .. }
            | Error::ModelMismatch { .. }
            | Error::SchemaVersion { .. }
            | Error::Locked { .. }
            | Error::Leased { .. }
            | Error::PushRefused { .. }
            | Error::EmbeddingsDisabled
            | Error::Cancelled => true,
            Error::Embedding { .. }
            | Error::WrongDimension { .. }
            | Error::Keyword(_)
            | Error::KeywordOpen(_)
            | Error::Vector { .. }
            | Error::LeaseLost { .. }
            | Error::Manifest { .. }
            | Error::Io { .. }
            | Error::Pool(_) => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn vector(err: impl std::fmt::Display) -> Error {
        Error::Vector {
            message: err.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
