//! `aiex-research` owns **the deep question**: decomposition into sub-questions, per-question search
//! through [`aiex_search`], page fetching and evidence selection, synthesis with checked citations
//! through the LLM layer (`llm/`), the knowledge graph, reports and resumable sessions.
//!
//! The workflow is not built yet; this crate exists so the dependency direction
//! `config ← indexer ← search ← research ← api` is fixed from the start.

pub use aiex_search as search;
