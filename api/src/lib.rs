//! `aiex-api` owns **the edges**: the HTTP API ([`server`]: `app(state) -> Router`, SSE streams of
//! typed events with ids, auth, limits, metrics, OpenAPI, batch indexing jobs) and the pieces of the
//! `aiex-research` binary that the server shares ([`engine`]: building the search coordinator).
//!
//! Threading: the server is async (tokio, axum); searches run on the coordinator's bounded pool
//! and indexing jobs on blocking threads, never on async workers.

pub mod engine;
pub mod mcp;
pub mod server;
