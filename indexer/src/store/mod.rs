//! The two stores of a collection: tantivy for keywords, a [`VectorStore`](vector::VectorStore) for
//! dense vectors.

pub mod keyword;
pub mod vector;
