//! Typed, layered, validated configuration for Aiex.
//!
//! This crate owns the [`Config`] model and every default value, the `aiex.toml` format,
//! and how a configuration is assembled: built-in defaults, then a TOML file, then
//! `AIEX__SECTION__KEY` environment variables, then command-line overrides, each layer
//! winning over the previous one (see [`Config::load`] and [`LoadOptions`]).
//!
//! Unknown keys are rejected, and every problem (unknown key, wrong type, invalid value)
//! is reported at once in one [`ConfigError::Invalid`], each naming its key and the
//! [`Source`] that set it. Secrets are wrapped in [`Secret`], which never prints its value.

mod env;
mod error;
mod llm;
mod load;
mod model;
mod schema;
mod secret;
mod validate;

pub use error::{ConfigError, Problem, Result, Source};
pub use llm::{LlmConfig, LlmPrice, LlmProviderConfig, LlmProviderKind};
pub use load::LoadOptions;
pub use model::{
    default_data_dir, ChunkConfig, Config, EmbeddingConfig, EmbeddingProvider, FetchConfig, Fusion,
    IndexConfig, ResearchConfig, SearchConfig, SearchMode, ServerConfig, VectorBackend,
    VectorConfig, WebConfig, APP_DIR, CONFIG_VERSION, DEFAULT_MODEL_ID, DEFAULT_RUNTIME_FILE,
    FALLBACK_DATA_DIR,
};
pub use secret::{Secret, REDACTED};
pub use validate::is_http_url;

/// Every dotted key a configuration accepts (`version`, `index.max_file_bytes`, ...),
/// optional ones included, in documentation order.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    schema::FIELDS.iter().map(|field| field.key)
}
