//! The typed configuration: structs, enums and their defaults.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ConfigError, Secret};

/// The only configuration format version this crate understands.
pub const CONFIG_VERSION: u32 = 1;
/// Default embedding model, also the name of its directory under `data_dir/models`.
pub const DEFAULT_MODEL_ID: &str = "all-MiniLM-L6-v2";
/// File name of the ONNX Runtime shared library under `data_dir/runtime`.
pub const DEFAULT_RUNTIME_FILE: &str = "libonnxruntime.so.1.31.1";
/// Name of the application directory under the platform data and config directories.
pub const APP_DIR: &str = "aiex";
/// Data directory used when no home directory can be found.
pub const FALLBACK_DATA_DIR: &str = ".aiex-data";

/// The whole configuration of Aiex.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Format version; must be [`CONFIG_VERSION`].
    pub version: u32,
    /// Where indexes, models and the runtime live.
    pub data_dir: PathBuf,
    /// What gets indexed.
    pub index: IndexConfig,
    /// How files are split into chunks.
    pub chunk: ChunkConfig,
    /// The embedding model.
    pub embedding: EmbeddingConfig,
    /// The vector store.
    pub vector: VectorConfig,
    /// Query defaults.
    pub search: SearchConfig,
    /// Web search providers.
    pub web: WebConfig,
    /// Fetching web pages (research reads, docs-site crawls): limits and the SSRF guard.
    pub fetch: FetchConfig,
    /// Deep research: budgets and evidence selection.
    pub research: ResearchConfig,
    /// LLM providers and the roles that use them.
    pub llm: crate::LlmConfig,
    /// The HTTP API (`aiex-research serve`).
    pub server: ServerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            data_dir: default_data_dir(),
            index: IndexConfig::default(),
            chunk: ChunkConfig::default(),
            embedding: EmbeddingConfig::default(),
            vector: VectorConfig::default(),
            search: SearchConfig::default(),
            web: WebConfig::default(),
            fetch: FetchConfig::default(),
            research: ResearchConfig::default(),
            llm: crate::LlmConfig::default(),
            server: ServerConfig::default(),
        }
    }
}

impl Config {
    /// Directory of the embedding model: `embedding.model_dir`, else `data_dir/models/<model_id>`.
    pub fn model_dir(&self) -> PathBuf {
        self.embedding.resolve_model_dir(&self.data_dir)
    }

    /// Path of the ONNX Runtime library: `embedding.runtime_path`, else
    /// `data_dir/runtime/libonnxruntime.so.1.31.1`.
    pub fn runtime_path(&self) -> PathBuf {
        self.embedding.resolve_runtime_path(&self.data_dir)
    }

    /// The embedding model's identity, recorded in index manifests: `embedding.model_id` for the
    /// ONNX model, `llm:<model>` for the LLM layer, where `<model>` is the embedding model of the
    /// first `embed`-role provider that has embeddings (`None` when there is none).
    pub fn embedding_model_key(&self) -> Option<String> {
        match self.embedding.provider {
            EmbeddingProvider::Onnx => Some(self.embedding.model_id.clone()),
            EmbeddingProvider::Llm => self
                .llm
                .first_embed_model()
                .map(|model| format!("llm:{model}")),
        }
    }

    /// Directory holding the search indexes: `data_dir/index`.
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}

/// What gets indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Files larger than this many bytes are skipped.
    pub max_file_bytes: u64,
    /// Glob patterns of files to index; empty means every file.
    pub include: Vec<String>,
    /// Glob patterns of files to skip.
    pub exclude: Vec<String>,
    /// Whether hidden files and directories are indexed.
    pub hidden: bool,
    /// Whether `.gitignore` and similar ignore files are honoured.
    pub respect_gitignore: bool,
    /// Size of the CPU worker pool; 0 means the number of cores.
    pub threads: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 1_048_576,
            include: Vec::new(),
            exclude: Vec::new(),
            hidden: false,
            respect_gitignore: true,
            threads: 0,
        }
    }
}

/// How files are split into chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkConfig {
    /// Largest chunk, in tokens.
    pub max_tokens: usize,
    /// Smaller chunks are merged with their neighbours; must be below `max_tokens`.
    pub min_tokens: usize,
    /// Lines per window when a file has no syntax-aware chunker.
    pub window_lines: usize,
    /// Lines shared by consecutive windows; must be below `window_lines`.
    pub window_overlap: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            min_tokens: 32,
            window_lines: 60,
            window_overlap: 8,
        }
    }
}

/// The embedding model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// Whether vectors are computed at all.
    pub enabled: bool,
    /// What computes the vectors: the local ONNX model or the `embed` role of `[llm]`.
    pub provider: EmbeddingProvider,
    /// Model identifier.
    pub model_id: String,
    /// Model directory; `None` means `data_dir/models/<model_id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// ONNX Runtime shared library; `None` means `data_dir/runtime/libonnxruntime.so.1.31.1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_path: Option<PathBuf>,
    /// Vector dimension the model produces.
    pub dimension: usize,
    /// Longest input, in model tokens.
    pub max_length: usize,
    /// Texts per inference batch, 1..=256.
    pub batch_size: usize,
    /// Inference threads; 0 means automatic.
    pub threads: usize,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            provider: EmbeddingProvider::Onnx,
            model_id: DEFAULT_MODEL_ID.to_owned(),
            model_dir: None,
            runtime_path: None,
            dimension: 384,
            max_length: 256,
            batch_size: 32,
            threads: 0,
        }
    }
}

impl EmbeddingConfig {
    /// `model_dir` if set, else `data_dir/models/<model_id>`.
    pub fn resolve_model_dir(&self, data_dir: &Path) -> PathBuf {
        match &self.model_dir {
            Some(dir) => dir.clone(),
            None => data_dir.join("models").join(&self.model_id),
        }
    }

    /// `runtime_path` if set, else `data_dir/runtime/libonnxruntime.so.1.31.1`.
    pub fn resolve_runtime_path(&self, data_dir: &Path) -> PathBuf {
        match &self.runtime_path {
            Some(path) => path.clone(),
            None => data_dir.join("runtime").join(DEFAULT_RUNTIME_FILE),
        }
    }
}

/// What computes the embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    /// The local ONNX model under `embedding.model_dir`.
    #[default]
    Onnx,
    /// The `embed` role of the LLM layer (an OpenAI-compatible or Ollama server).
    Llm,
}

impl EmbeddingProvider {
    /// Every provider, in declaration order.
    pub const ALL: [Self; 2] = [Self::Onnx, Self::Llm];

    /// The lowercase name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onnx => "onnx",
            Self::Llm => "llm",
        }
    }
}

/// Which vector store is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorBackend {
    /// Embedded store under `data_dir`.
    #[default]
    Edge,
    /// A remote server at `vector.url`.
    Server,
}

impl VectorBackend {
    /// Every backend, in declaration order.
    pub const ALL: [Self; 2] = [Self::Edge, Self::Server];

    /// The lowercase name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edge => "edge",
            Self::Server => "server",
        }
    }
}

/// The vector store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VectorConfig {
    /// Which store.
    pub backend: VectorBackend,
    /// Server URL; required when `backend` is `server`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Server API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// HNSW search breadth.
    pub hnsw_ef: usize,
    /// An HNSW index is built only for collections with at least this many points.
    pub optimize_min_points: usize,
    /// Server: time allowed to open a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Server: time allowed for one request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Server: shards of each Qdrant collection Aiex creates (spread over the cluster's nodes).
    pub shard_number: u32,
    /// Server: copies of each shard; a cluster with fewer nodes keeps as many as it has nodes.
    pub replication_factor: u32,
    /// Server: replicas that must acknowledge a write; at most `replication_factor`.
    pub write_consistency_factor: u32,
    /// Server: keep vectors on disk (memory-mapped) instead of in RAM.
    pub on_disk: bool,
    /// Server: how long an indexing run's lease on a collection lasts without renewal, in
    /// seconds (a run renews it as it goes; a dead run's lease expires after this).
    pub lease_secs: u64,
}

impl Default for VectorConfig {
    fn default() -> Self {
        Self {
            backend: VectorBackend::Edge,
            url: None,
            api_key: None,
            hnsw_ef: 128,
            optimize_min_points: 20_000,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            shard_number: 3,
            replication_factor: 2,
            write_consistency_factor: 1,
            on_disk: false,
            lease_secs: 60,
        }
    }
}

/// How a query is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Full-text search only.
    Keyword,
    /// Nearest-neighbour search on embeddings only.
    Vector,
    /// Both, fused (`search.fusion`).
    #[default]
    Hybrid,
}

impl SearchMode {
    /// Every mode, in declaration order.
    pub const ALL: [Self; 3] = [Self::Keyword, Self::Vector, Self::Hybrid];

    /// The lowercase name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keyword => "keyword",
            Self::Vector => "vector",
            Self::Hybrid => "hybrid",
        }
    }
}

/// How hybrid search fuses its keyword and vector rankings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Each side's scores scaled to 0..1 between its worst and best candidate, then summed by
    /// weight: a side whose best hit stands far above the rest (a verbatim match) counts for
    /// more than one whose candidates score alike.
    #[default]
    Relative,
    /// Reciprocal rank: `weight / (rrf_k + rank)` per side, scores ignored.
    Rrf,
}

impl Fusion {
    /// Every method, in declaration order.
    pub const ALL: [Self; 2] = [Self::Relative, Self::Rrf];

    /// The lowercase name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Relative => "relative",
            Self::Rrf => "rrf",
        }
    }
}

/// Query defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Default search mode.
    pub mode: SearchMode,
    /// Default number of results, 1..=1000.
    pub limit: usize,
    /// How hybrid search fuses keyword and vector rankings.
    pub fusion: Fusion,
    /// Reciprocal rank fusion constant, > 0 (with `fusion = "rrf"`).
    pub rrf_k: f32,
    /// Weight of the keyword ranking in fusion, >= 0.
    pub keyword_weight: f32,
    /// Weight of the vector ranking in fusion, >= 0.
    pub vector_weight: f32,
    /// Overall time budget of one search across all sources, in milliseconds.
    pub budget_ms: u64,
    /// Deadline of a local source (code, docs), in milliseconds.
    pub local_deadline_ms: u64,
    /// Deadline of a web source, in milliseconds.
    pub web_deadline_ms: u64,
    /// Upper bound of the result cache, in bytes.
    pub cache_bytes: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            mode: SearchMode::Hybrid,
            limit: 10,
            fusion: Fusion::Relative,
            rrf_k: 5.0,
            keyword_weight: 1.5,
            vector_weight: 1.0,
            budget_ms: 8_000,
            local_deadline_ms: 2_000,
            web_deadline_ms: 6_000,
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Web search providers: Serper and Tavily (with a key), SearxNG (with the URL of an instance).
/// Without any of them, web sources are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Serper API key; several keys, comma-separated, rotate when one is rate-limited.
    pub serper_api_key: Option<Secret>,
    /// Tavily API key(s), comma-separated.
    pub tavily_api_key: Option<Secret>,
    /// Key(s) for a SearxNG instance behind an authenticating proxy, sent as a bearer token;
    /// an instance of its own needs none.
    pub searxng_api_key: Option<Secret>,
    pub serper_url: String,
    pub tavily_url: String,
    /// A SearxNG instance (`http://localhost:8888`), which must allow the `json` format
    /// (`search.formats` in its `settings.yml`); empty: SearxNG is not used.
    pub searxng_url: String,
    /// Per-request timeout, in milliseconds.
    pub timeout_ms: u64,
    /// Requests per minute per key (0: unlimited).
    pub requests_per_minute: u32,
    /// Retries after a 429, a 5xx or a network error.
    pub max_retries: u32,
    /// How long web results stay cached, in seconds.
    pub cache_ttl_secs: u64,
    /// Domains whose results are boosted; empty means the built-in list (docs.rs,
    /// doc.rust-lang.org, official language docs, GitHub, Stack Overflow, ...).
    pub trusted_domains: Vec<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            serper_api_key: None,
            tavily_api_key: None,
            searxng_api_key: None,
            serper_url: "https://google.serper.dev".to_owned(),
            tavily_url: "https://api.tavily.com".to_owned(),
            searxng_url: String::new(),
            timeout_ms: 5_000,
            requests_per_minute: 60,
            max_retries: 2,
            cache_ttl_secs: 3_600,
            trusted_domains: Vec::new(),
        }
    }
}

/// Fetching web pages: time and size limits, politeness, and the guard that keeps requests
/// away from loopback, private, link-local and cloud metadata addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Total time for one page (connect, redirects, body), in milliseconds.
    pub timeout_ms: u64,
    /// Time to open a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Largest body read; longer pages are cut here (research) or skipped (crawls).
    pub max_bytes: u64,
    /// Redirects followed per page; each hop is checked by the guard again.
    pub max_redirects: u32,
    /// `User-Agent` sent, also the agent matched in `robots.txt`.
    pub user_agent: String,
    /// Escape hatch for intranet documentation: allows loopback, private (RFC 1918, CGNAT,
    /// unique-local) and link-local hosts. Cloud metadata addresses stay blocked.
    pub allow_private_hosts: bool,
    /// Whether `robots.txt` is fetched (cached per host) and obeyed.
    pub respect_robots: bool,
    /// Least time between two requests to the same host, in milliseconds (0: none).
    pub per_host_delay_ms: u64,
    /// Pages fetched at once by a batch.
    pub concurrency: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
            max_bytes: 4 * 1024 * 1024,
            max_redirects: 5,
            user_agent: concat!("aiex/", env!("CARGO_PKG_VERSION")).to_owned(),
            allow_private_hosts: false,
            respect_robots: true,
            per_host_delay_ms: 250,
            concurrency: 4,
        }
    }
}

impl WebConfig {
    /// The keys of a comma-separated secret.
    pub fn keys(secret: Option<&Secret>) -> Vec<String> {
        secret
            .map(|secret| {
                secret
                    .expose()
                    .split(',')
                    .map(str::trim)
                    .filter(|key| !key.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The HTTP API (`aiex-research serve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on; API keys are required unless it is a loopback address.
    pub bind: String,
    /// SHA-256 hashes of the accepted bearer keys, `sha256:<64 hex digits>` (print one with
    /// `aiex-research serve hash-key`); the keys themselves are never stored.
    pub api_keys: Vec<String>,
    /// Hashes of revoked keys, refused even when still listed in `api_keys`.
    pub revoked_keys: Vec<String>,
    /// Requests per minute per key (0: unlimited).
    pub requests_per_minute: u32,
    /// Requests a key may make at once above its steady rate.
    pub burst: u32,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest query string of a URL, in bytes.
    pub max_query_bytes: usize,
    /// Time limit of a request (streams excepted), in milliseconds.
    pub request_timeout_ms: u64,
    /// Time a client has to send a request's headers, in milliseconds; slower connections are
    /// closed.
    pub header_read_timeout_ms: u64,
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Requests with a missing, wrong or revoked key allowed per client address and minute
    /// (0: unlimited); further ones get 429.
    pub failed_auth_per_minute: u32,
    /// Origins allowed by CORS; empty means no cross-origin access.
    pub cors_allowed_origins: Vec<String>,
    /// Directories under which indexing jobs may index; empty means indexing jobs are refused.
    pub allowed_roots: Vec<String>,
    /// Indexing jobs run at the same time.
    pub job_concurrency: usize,
    /// Hours an ended indexing job (its record and events) is kept after it ended; 0 keeps them
    /// all.
    pub job_retention_hours: u64,
    /// Interval of keep-alive comments on event streams, in seconds.
    pub keep_alive_secs: u64,
    /// Recent queries remembered per key.
    pub history_limit: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8484".to_owned(),
            api_keys: Vec::new(),
            revoked_keys: Vec::new(),
            requests_per_minute: 600,
            burst: 60,
            max_body_bytes: 1_048_576,
            max_query_bytes: 4_096,
            request_timeout_ms: 30_000,
            header_read_timeout_ms: 10_000,
            max_connections: 1_024,
            failed_auth_per_minute: 30,
            cors_allowed_origins: Vec::new(),
            allowed_roots: Vec::new(),
            job_concurrency: 1,
            job_retention_hours: 168,
            keep_alive_secs: 15,
            history_limit: 100,
        }
    }
}

macro_rules! lowercase_enum_text {
    ($ty:ty, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ConfigError;

            /// Parses the lowercase name, ignoring case and surrounding whitespace.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let wanted = text.trim();
                Self::ALL
                    .into_iter()
                    .find(|candidate| candidate.as_str().eq_ignore_ascii_case(wanted))
                    .ok_or_else(|| ConfigError::UnknownVariant {
                        what: $what,
                        value: text.to_owned(),
                        expected: Self::ALL
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }
    };
}

lowercase_enum_text!(EmbeddingProvider, "embedding provider");
lowercase_enum_text!(VectorBackend, "vector backend");
lowercase_enum_text!(SearchMode, "search mode");
lowercase_enum_text!(Fusion, "fusion method");

/// `${XDG_DATA_HOME:-$HOME/.local/share}/aiex` (the platform data directory elsewhere),
/// or `./.aiex-data` when there is no home directory.
pub fn default_data_dir() -> PathBuf {
    directories::BaseDirs::new()
        .map(|dirs| dirs.data_dir().join(APP_DIR))
        .unwrap_or_else(|| PathBuf::from(".").join(FALLBACK_DATA_DIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_paths_follow_data_dir() {
        let config = Config {
            data_dir: PathBuf::from("/d"),
            ..Config::default()
        };
        assert_eq!(config.index_dir(), Path::new("/d/index"));
        assert_eq!(config.model_dir(), Path::new("/d/models/all-MiniLM-L6-v2"));
        assert_eq!(
            config.runtime_path(),
            Path::new("/d/runtime/libonnxruntime.so.1.31.1")
        );
    }

    #[test]
    fn explicit_paths_win() {
        let mut config = Config::default();
        config.embedding.model_dir = Some(PathBuf::from("/m"));
        config.embedding.runtime_path = Some(PathBuf::from("/r.so"));
        assert_eq!(config.model_dir(), Path::new("/m"));
        assert_eq!(config.runtime_path(), Path::new("/r.so"));
    }

    #[test]
    fn enums_parse_and_print_lowercase() {
        for mode in SearchMode::ALL {
            assert_eq!(mode.to_string().parse::<SearchMode>().ok(), Some(mode));
        }
        assert_eq!(
            " Keyword ".parse::<SearchMode>().ok(),
            Some(SearchMode::Keyword)
        );
        assert_eq!(
            "server".parse::<VectorBackend>().ok(),
            Some(VectorBackend::Server)
        );
        let err = "fuzzy".parse::<SearchMode>().expect_err("unknown mode");
        assert_eq!(
            err.to_string(),
            "unknown search mode `fuzzy` (expected one of keyword, vector, hybrid)"
        );
    }
}

/// Deep research: the budgets a session stays within and how much evidence it keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResearchConfig {
    /// Sub-questions a plan keeps at most.
    pub max_sub_questions: usize,
    /// Searches a session runs at most (all rounds together).
    pub max_searches: usize,
    /// Web pages a session fetches at most.
    pub max_pages: usize,
    /// LLM tokens (input and output) a session spends at most.
    pub max_tokens: u64,
    /// LLM cost a session spends at most, in US dollars.
    pub max_cost_usd: f64,
    /// Wall time of a session, in seconds.
    pub max_wall_secs: u64,
    /// Hits kept per search.
    pub hits_per_search: usize,
    /// Searches run at once.
    pub search_concurrency: usize,
    /// Approximate tokens of evidence kept for synthesis.
    pub evidence_tokens: usize,
    /// Evidence passages kept per sub-question at most.
    pub passages_per_sub_question: usize,
    /// Candidate passages embedded per sub-question for ranking (the rest ranked by BM25 alone).
    pub embed_candidates: usize,
    /// Search rounds by default (2: a second round from the gaps of the first).
    pub depth: usize,
    /// Sessions the server resumes at once at startup (the others wait their turn).
    pub resume_concurrency: usize,
}

impl Default for ResearchConfig {
    fn default() -> Self {
        Self {
            max_sub_questions: 6,
            max_searches: 24,
            max_pages: 6,
            max_tokens: 60_000,
            max_cost_usd: 0.5,
            max_wall_secs: 300,
            hits_per_search: 8,
            search_concurrency: 4,
            evidence_tokens: 6_000,
            passages_per_sub_question: 4,
            embed_candidates: 12,
            depth: 1,
            resume_concurrency: 2,
        }
    }
}
