//! The two stores of a collection: tantivy for keywords, a [`VectorStore`](vector::VectorStore) for
//! dense vectors (embedded, or in a Qdrant server: [`server`]).

pub mod abbreviations;
pub mod keyword;
pub mod server;
pub mod vector;
