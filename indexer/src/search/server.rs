//! Server mode: every search mode answered by Qdrant, one query per collection (its tenant; for a
//! hybrid search fused by relative scores, one batch of a query per side), merged by score. The
//! phases: which collections can use their dense vectors, the query's vector (embedded once), one
//! query per collection, then the symbol boost and the final order.

use std::sync::Arc;
use std::time::Instant;

use aiex_config::{Fusion, SearchMode};

use super::fusion::Ranked;
use super::{
    candidate_count, symbol_holds_terms, OpenCollection, SearchRequest, SearchResults, Searcher,
    MAX_LIMIT, SYMBOL_BONUS,
};
use crate::document::Chunk;
use crate::error::Result;
use crate::store::keyword::{query_terms, weighted_terms, QueryTerm};
use crate::store::server::search::ServerQuery;
use crate::store::server::{ServerStoreOptions, ServerVectorStore};
use crate::store::vector::VectorFilter;

impl Searcher {
    /// Server mode: the collection's tenant in Qdrant, connected on first use, or why not.
    pub(super) fn server_store<'c>(
        &self,
        collection: &'c OpenCollection,
    ) -> &'c std::result::Result<Arc<ServerVectorStore>, String> {
        collection.server.get_or_init(|| {
            let kind = collection.manifest.read().kind;
            ServerStoreOptions::from_config(&self.config, kind.name())
                .and_then(|options| ServerVectorStore::connect(options, &collection.name, false))
                .map(Arc::new)
                .map_err(|err| err.to_string())
        })
    }

    /// Whether the dense vectors of `collection` can answer queries (server mode), or why not.
    fn server_vectors_usable(
        &self,
        collection: &OpenCollection,
    ) -> std::result::Result<(), String> {
        if !self.config.embedding.enabled {
            return Err("embeddings are disabled".to_string());
        }
        let manifest = collection.manifest.read();
        if manifest.embedded_chunks == 0 {
            return Err("no vectors yet".to_string());
        }
        if let Some(indexed) = &manifest.model_id {
            let configured = self.config.embedding_model_key().unwrap_or_default();
            if *indexed != configured {
                return Err(format!(
                    "embedded with model `{indexed}`, but `{configured}` is configured"
                ));
            }
        }
        Ok(())
    }

    /// Server mode: every mode answered by Qdrant, one query per collection, merged by score.
    pub(super) fn server_search(
        &self,
        selected: &[&OpenCollection],
        request: &SearchRequest,
        started: Instant,
    ) -> Result<SearchResults> {
        let terms = query_terms(&request.query);
        let keyword_terms =
            weighted_terms(&terms, &request.query, request.mode == SearchMode::Keyword);
        let mut results = SearchResults::empty(request.mode);
        let limit = request.limit.clamp(1, MAX_LIMIT);
        let mut usable = self.server_dense_usable(selected, request.mode, &mut results);
        let query_vector =
            self.server_query_vector(selected, request, &mut usable, &mut results)?;
        let mut ranked = Ranked::new();
        for (collection, vectors) in selected.iter().zip(usable) {
            let query = match (request.mode, &query_vector) {
                (SearchMode::Keyword, _) => ServerQuery::Keyword,
                (SearchMode::Vector, Some(vector)) if vectors => ServerQuery::Vector(vector),
                (SearchMode::Vector, _) => continue,
                (SearchMode::Hybrid, Some(vector)) if vectors => ServerQuery::Hybrid {
                    vector,
                    rrf_k: self.fusion.rrf_k,
                    keyword_weight: self.fusion.keyword_weight,
                    vector_weight: self.fusion.vector_weight,
                    candidates: candidate_count(limit),
                },
                // Hybrid without vectors: the keyword side alone, ranked as the fusion would.
                (SearchMode::Hybrid, _) => ServerQuery::Keyword,
            };
            ranked.extend(self.server_collection_hits(
                collection,
                request,
                &keyword_terms,
                query,
                limit,
                &mut results,
            )?);
        }
        if request.mode == SearchMode::Hybrid {
            let bonus = SYMBOL_BONUS * self.fusion.keyword_first_place();
            for (score, chunk, _) in &mut ranked {
                if symbol_holds_terms(chunk.symbol.as_deref(), &terms) {
                    *score += bonus;
                }
            }
            self.boost_literals(&mut ranked, &request.query);
        }
        Ok(results.finish(ranked, limit, &terms, started))
    }

    /// Per selected collection, whether its dense vectors take part in a search of `mode`; the
    /// ones that cannot, or are incomplete, are noted in `results`.
    fn server_dense_usable(
        &self,
        selected: &[&OpenCollection],
        mode: SearchMode,
        results: &mut SearchResults,
    ) -> Vec<bool> {
        if !matches!(mode, SearchMode::Vector | SearchMode::Hybrid) {
            return vec![false; selected.len()];
        }
        selected
            .iter()
            .map(|collection| {
                let state = self.server_vectors_usable(collection);
                match &state {
                    Err(reason) => results
                        .vectors_unavailable
                        .push((collection.name.clone(), reason.clone())),
                    Ok(()) if !collection.manifest.read().vectors_complete => {
                        results.vectors_incomplete.push(collection.name.clone());
                    }
                    Ok(()) => {}
                }
                state.is_ok()
            })
            .collect()
    }

    /// The query's vector when any collection uses its dense vectors. A hybrid search whose
    /// query cannot be embedded goes on with keywords, the failure noted per collection.
    fn server_query_vector(
        &self,
        selected: &[&OpenCollection],
        request: &SearchRequest,
        usable: &mut [bool],
        results: &mut SearchResults,
    ) -> Result<Option<Arc<Vec<f32>>>> {
        if !usable.iter().any(|&ok| ok) {
            return Ok(None);
        }
        match self.query_embedder.embed(&request.query) {
            Ok(vector) => Ok(Some(vector)),
            Err(err) if request.mode == SearchMode::Hybrid => {
                for (collection, ok) in selected.iter().zip(usable.iter_mut()) {
                    if *ok {
                        results
                            .vectors_unavailable
                            .push((collection.name.clone(), err.to_string()));
                        *ok = false;
                    }
                }
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// One collection's hits for `query` (`terms` its keyword side), with the language and path
    /// filters of `request`. A collection whose server cannot be reached is noted in `results`
    /// and gives none.
    fn server_collection_hits(
        &self,
        collection: &OpenCollection,
        request: &SearchRequest,
        terms: &[QueryTerm],
        query: ServerQuery<'_>,
        limit: usize,
        results: &mut SearchResults,
    ) -> Result<Ranked> {
        let store = match self.server_store(collection) {
            Ok(store) => store,
            Err(reason) => {
                results
                    .vectors_unavailable
                    .push((collection.name.clone(), reason.clone()));
                return Ok(Ranked::new());
            }
        };
        let paths = Self::matching_paths(collection, request)?;
        if paths.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Ranked::new());
        }
        let filter = VectorFilter {
            languages: request
                .languages
                .iter()
                .map(|l| l.name().to_string())
                .collect(),
            paths: paths.unwrap_or_default(),
        };
        let named = |hits: Vec<(f32, Chunk)>| -> Ranked {
            hits.into_iter()
                .map(|(score, mut chunk)| {
                    chunk.collection = collection.name.clone();
                    (score, chunk, collection.name.clone())
                })
                .collect()
        };
        match query {
            // Hybrid without vectors: the keyword side alone, scored as its part of the fusion.
            ServerQuery::Keyword if request.mode == SearchMode::Hybrid => {
                let candidates = candidate_count(limit);
                let hits = store.search_chunks(terms, query, &filter, candidates)?;
                Ok(self.fusion.fuse(named(hits), Ranked::new(), candidates))
            }
            // Relative fusion reads both sides' scores: each side's candidates are fetched (one
            // batch request) and fused here, as in embedded mode; the server fuses reciprocal
            // ranks itself.
            ServerQuery::Hybrid {
                vector, candidates, ..
            } if self.fusion.method == Fusion::Relative => {
                let (keyword, vector) = store.search_sides(terms, vector, &filter, candidates)?;
                Ok(self.fusion.fuse(named(keyword), named(vector), candidates))
            }
            _ => Ok(named(store.search_chunks(terms, query, &filter, limit)?)),
        }
    }
}
