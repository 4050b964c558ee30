//! `aiex-indexer` owns **the index**: its on-disk layout and schema version, the tantivy schema and
//! the code-aware tokenizer, the vector-store contract and payload layout, the embedder, the writers
//! and the read primitives (keyword, vector and hybrid search, `get_chunk`). Writer and reader live
//! together so they cannot drift.
//!
//! Pipeline: [`walk`] (gitignore-aware) → [`chunk`] (tree-sitter, symbol-aware) → keyword commit
//! ([`store::keyword`]) → [`embed`] new chunk hashes → [`store::vector`] → [`manifest`] generation.
//!
//! Threading: everything here is synchronous. Parsing and chunking run on a bounded rayon pool of
//! `index.threads` threads; tantivy, qdrant-edge and ONNX Runtime run their own bounded threads; a remote embedder (`embedding.provider =
//! "llm"`) runs its HTTP calls on one worker thread of its own.
//! Callers in async code run these functions on a blocking thread, never on async workers.

pub mod atomic;
pub mod chunk;
pub mod collection;
pub mod document;
pub mod embed;
pub mod error;
pub mod grep;
pub mod lang;
pub mod manifest;
pub mod page_urls;
pub mod pdf;
pub mod pipeline;
pub mod push;
pub mod remote;
pub mod search;
pub mod snippet;
pub mod store;
pub mod tokenizer;
pub mod walk;

pub use atomic::{atomic_write, atomic_write_private};
pub use collection::{CollectionStatus, IndexDir};
pub use document::Chunk;
pub use error::{Error, Result};
pub use lang::Language;
pub use manifest::CollectionKind;
pub use pipeline::{index_directory, FailedFile, IndexProgress, IndexRequest, IndexSummary};
pub use search::{SearchHit, SearchRequest, SearchResults, Searcher};
