//! Searching a tenant in the server: keyword (the BM25 sparse vector), vector (the dense vector)
//! and hybrid: one Query API call, a dense and a sparse prefetch fused by the server with weighted
//! reciprocal rank, or both sides in one batch for the caller to fuse by their scores. Hits come
//! back as chunks read from the payload, so nothing local is needed.

use std::collections::HashMap;

use qdrant_client::qdrant::{
    Condition, GetPointsBuilder, PrefetchQueryBuilder, Query, QueryBatchPoints, QueryPoints,
    QueryPointsBuilder, RrfBuilder, ScoredPoint, ScrollPointsBuilder, SearchParamsBuilder,
    VectorInput,
};

use super::meta::int_field;
use super::payload::string_field;
use super::{chunk_of, point_uuid, sparse, ServerVectorStore, ID_BATCH};
use crate::document::Chunk;
use crate::error::Result;
use crate::store::keyword::QueryTerm;
use crate::store::vector::{VectorFilter, DENSE_VECTOR};

/// Chunks with the server's score, best first.
pub type Scored = Vec<(f32, Chunk)>;

/// What a server-side search ranks by.
#[derive(Debug, Clone, Copy)]
pub enum ServerQuery<'q> {
    /// BM25 over the sparse vectors.
    Keyword,
    /// Cosine similarity to this vector.
    Vector(&'q [f32]),
    /// Both, fused by the server with reciprocal rank (`k`, a weight per side).
    Hybrid {
        vector: &'q [f32],
        rrf_k: f32,
        keyword_weight: f32,
        vector_weight: f32,
        /// Candidates each side contributes to the fusion.
        candidates: usize,
    },
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl ServerVectorStore {
    /// The best `limit` chunks of this tenant for `query` (`terms` give the keyword side),
    /// restricted by `filter`, best first with the server's score.
    pub fn search_chunks(
        &self,
        terms: &[QueryTerm],
        query: ServerQuery<'_>,
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<Scored> {
        let Some(request) = self.query_request(terms, query, filter, limit) else {
            return Ok(Vec::new());
        };
        let response = self
            .call(move |client| {
                let request = request.clone();
                async move { client.query(request).await }
            })
            .map_err(|err| self.error("searching", &err))?;
        Ok(scored_chunks(response.result))
    }

    /// Each side of a hybrid search on its own, in one request: the best `limit` chunks by
    /// keywords and by `vector`, each best first with its own score (fused by the caller).
    pub fn search_sides(
        &self,
        terms: &[QueryTerm],
        vector: &[f32],
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<(Scored, Scored)> {
        let keyword = self.query_request(terms, ServerQuery::Keyword, filter, limit);
        let has_terms = keyword.is_some();
        let dense = self.query_request(terms, ServerQuery::Vector(vector), filter, limit);
        let batch = QueryBatchPoints {
            collection_name: self.collection.clone(),
            query_points: keyword.into_iter().chain(dense).collect(),
            ..Default::default()
        };
        let response = self
            .call(move |client| {
                let batch = batch.clone();
                async move { client.query_batch(batch).await }
            })
            .map_err(|err| self.error("searching", &err))?;
        let mut sides = response
            .result
            .into_iter()
            .map(|side| scored_chunks(side.result));
        let keyword = if has_terms {
            sides.next().unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok((keyword, sides.next().unwrap_or_default()))
    }

    /// The Query API request for `query`, or `None` for a keyword query without terms.
    fn query_request(
        &self,
        terms: &[QueryTerm],
        query: ServerQuery<'_>,
        filter: &VectorFilter,
        limit: usize,
    ) -> Option<QueryPoints> {
        let mut must = Vec::new();
        if !filter.languages.is_empty() {
            must.push(Condition::matches("language", filter.languages.clone()));
        }
        if !filter.paths.is_empty() {
            must.push(Condition::matches("path", filter.paths.clone()));
        }
        let filter = self.tenant_filter(must);
        let (indices, values) = sparse::query_vector(terms);
        let has_terms = !indices.is_empty();
        let sparse_input = VectorInput::new_sparse(indices, values);
        let params = SearchParamsBuilder::default().hnsw_ef(as_u64(self.options.hnsw_ef));
        let mut request = QueryPointsBuilder::new(self.collection.clone())
            .filter(filter.clone())
            .limit(as_u64(limit))
            .with_payload(true);
        match query {
            ServerQuery::Keyword => {
                if !has_terms {
                    return None;
                }
                request = request
                    .query(Query::new_nearest(sparse_input))
                    .using(sparse::SPARSE_VECTOR);
            }
            ServerQuery::Vector(vector) => {
                request = request
                    .query(Query::new_nearest(vector.to_vec()))
                    .using(DENSE_VECTOR)
                    .params(params);
            }
            ServerQuery::Hybrid {
                vector,
                rrf_k,
                keyword_weight,
                vector_weight,
                candidates,
            } => {
                let mut weights = Vec::with_capacity(2);
                if has_terms {
                    request = request.add_prefetch(
                        PrefetchQueryBuilder::default()
                            .query(Query::new_nearest(sparse_input))
                            .using(sparse::SPARSE_VECTOR)
                            .filter(filter.clone())
                            .limit(as_u64(candidates)),
                    );
                    weights.push(keyword_weight);
                }
                request = request.add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(Query::new_nearest(vector.to_vec()))
                        .using(DENSE_VECTOR)
                        .filter(filter.clone())
                        .params(params)
                        .limit(as_u64(candidates)),
                );
                weights.push(vector_weight);
                // Qdrant scores a 0-based position p as 1 / (p + k) (weight 1), the embedded
                // fusion a 1-based rank r as 1 / (k + r): Qdrant's k is the configured one plus
                // one (and an integer: the configured k is rounded).
                let k = (rrf_k.round() + 1.0).clamp(1.0, u32::MAX as f32) as u32;
                request = request.query(Query::new_rrf(RrfBuilder::with_k(k).weights(weights)));
            }
        }
        Some(request.build())
    }

    /// The chunks of `ids` this tenant holds, read from their payloads.
    pub fn get_chunks(&self, ids: &[u64]) -> Result<HashMap<u64, Chunk>> {
        let mut chunks = HashMap::with_capacity(ids.len());
        for batch in ids.chunks(ID_BATCH) {
            let points: Vec<_> = batch
                .iter()
                .map(|&id| point_uuid(&self.tenant, id).to_string().into())
                .collect();
            let collection = self.collection.clone();
            let response = self
                .call(move |client| {
                    let request = GetPointsBuilder::new(collection.clone(), points.clone())
                        .with_payload(true)
                        .with_vectors(false);
                    async move { client.get_points(request).await }
                })
                .map_err(|err| self.error("reading chunks", &err))?;
            for point in response.result {
                if let Some(chunk) = chunk_of(&point.payload) {
                    chunks.insert(chunk.id, chunk);
                }
            }
        }
        Ok(chunks)
    }
}

impl ServerVectorStore {
    /// The symbol and line span (1-based, inclusive) of every chunk of `path` that has a symbol
    /// (what `sym:` filters of exact and regex search need), read from the points' payloads.
    pub fn symbol_spans(&self, path: &str) -> Result<Vec<(String, u32, u32)>> {
        let collection = self.collection.clone();
        let filter = self.tenant_filter(vec![Condition::matches("path", path.to_string())]);
        let page = self
            .call(move |client| {
                let request = ScrollPointsBuilder::new(collection.clone())
                    .filter(filter.clone())
                    .limit(u32::try_from(ID_BATCH).unwrap_or(u32::MAX))
                    .with_payload(super::files::include(&["symbol", "start_line", "end_line"]))
                    .with_vectors(false);
                async move { client.scroll(request).await }
            })
            .map_err(|err| self.error("reading a file's symbols", &err))?;
        Ok(page
            .result
            .iter()
            .filter_map(|point| {
                let symbol = string_field(&point.payload, "symbol").filter(|s| !s.is_empty())?;
                let line = |field| {
                    int_field(&point.payload, field).and_then(|line| u32::try_from(line).ok())
                };
                Some((symbol.to_string(), line("start_line")?, line("end_line")?))
            })
            .collect())
    }
}

/// The chunks of a query's points, in the server's order.
fn scored_chunks(points: Vec<ScoredPoint>) -> Scored {
    points.into_iter().filter_map(scored_chunk).collect()
}

fn scored_chunk(point: ScoredPoint) -> Option<(f32, Chunk)> {
    chunk_of(&point.payload).map(|chunk| (point.score, chunk))
}
