//! Exact and regex search: ripgrep as the oracle on a corpus of real crates, trigram extraction
//! properties, incremental re-indexing and the backfill of collections without a file index.

mod extraction;
mod incremental;
mod oracle;
mod support;
mod symbols;
