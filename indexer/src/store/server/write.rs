//! Writes (dense and keyword-only points, deletes) and the [`VectorStore`] implementation.

use std::collections::{HashMap, HashSet};

use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, DeletePointsBuilder, NamedVectors, PointId, PointStruct,
    PointsIdsList, QueryPointsBuilder, ScrollPointsBuilder, SearchParamsBuilder,
    UpsertPointsBuilder, Vector,
};

use super::payload::{chunk_id_of, chunk_payload, payload_of};
use super::{
    point_uuid, sparse, uuid_of, ServerVectorStore, CHUNK_ID_FIELD, ID_BATCH, UPSERT_BATCH,
};
use crate::document::Chunk;
use crate::error::{Error, Result};
use crate::store::vector::{VectorFilter, VectorPoint, VectorStore, VectorStoreInfo, DENSE_VECTOR};

impl ServerVectorStore {
    /// Writes the full points of `chunks`: dense vector, sparse vector and payload (text
    /// included), replacing keyword-only points.
    pub fn upsert_chunks(&self, chunks: Vec<(&Chunk, Vec<f32>)>) -> Result<()> {
        let mut structs = Vec::with_capacity(chunks.len());
        for (chunk, vector) in chunks {
            self.check_dimension(&vector)?;
            let (indices, values) = sparse::chunk_vector(chunk);
            let vectors = NamedVectors::default()
                .add_vector(DENSE_VECTOR, vector)
                .add_vector(sparse::SPARSE_VECTOR, Vector::new_sparse(indices, values));
            structs.push(PointStruct::new(
                point_uuid(&self.tenant, chunk.id).to_string(),
                vectors,
                chunk_payload(&self.tenant, chunk),
            ));
        }
        self.upsert_structs(structs)
    }

    /// Writes keyword-only points (sparse vector and payload, no dense vector) for `chunks`. A
    /// point that exists is replaced, its dense vector with it: pass chunks the store lacks.
    pub fn upsert_keyword(&self, chunks: &[&Chunk]) -> Result<()> {
        let structs = chunks
            .iter()
            .map(|chunk| {
                let (indices, values) = sparse::chunk_vector(chunk);
                PointStruct::new(
                    point_uuid(&self.tenant, chunk.id).to_string(),
                    NamedVectors::default()
                        .add_vector(sparse::SPARSE_VECTOR, Vector::new_sparse(indices, values)),
                    chunk_payload(&self.tenant, chunk),
                )
            })
            .collect();
        self.upsert_structs(structs)
    }

    /// Deletes every point of the tenant whose chunk id is not in `keep` (the points an
    /// interrupted run wrote for chunks its manifest never recorded, or whose deletion it did not
    /// record as done). Returns how many were deleted.
    pub fn delete_all_but(&self, keep: &HashSet<u64>) -> Result<usize> {
        let wanted: HashSet<String> = keep
            .iter()
            .map(|&id| point_uuid(&self.tenant, id).to_string())
            .collect();
        let mut orphans: Vec<PointId> = Vec::new();
        let mut offset: Option<PointId> = None;
        loop {
            let collection = self.collection.clone();
            let filter = self.tenant_filter(Vec::new());
            let from = offset.clone();
            let page = self
                .call(move |client| {
                    let mut request = ScrollPointsBuilder::new(collection.clone())
                        .filter(filter.clone())
                        .limit(u32::try_from(ID_BATCH).unwrap_or(u32::MAX))
                        .with_payload(false)
                        .with_vectors(false);
                    if let Some(from) = from.clone() {
                        request = request.offset(from);
                    }
                    async move { client.scroll(request).await }
                })
                .map_err(|err| self.error("listing the tenant's points", &err))?;
            for point in page.result {
                let Some(id) = point.id else { continue };
                if !uuid_of(&id).is_some_and(|uuid| wanted.contains(&uuid)) {
                    orphans.push(id);
                }
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        for batch in orphans.chunks(ID_BATCH) {
            let ids = batch.to_vec();
            let collection = self.collection.clone();
            self.call(move |client| {
                let request = DeletePointsBuilder::new(collection.clone())
                    .points(PointsIdsList { ids: ids.clone() })
                    .wait(true);
                async move { client.delete_points(request).await.map(drop) }
            })
            .map_err(|err| self.error("deleting orphan points", &err))?;
        }
        Ok(orphans.len())
    }

    fn check_dimension(&self, vector: &[f32]) -> Result<()> {
        if vector.len() == self.options.dimension {
            Ok(())
        } else {
            Err(Error::WrongDimension {
                expected: self.options.dimension,
                got: vector.len(),
            })
        }
    }

    /// Upserts `structs` in batches, each acknowledged once applied (`wait`).
    fn upsert_structs(&self, structs: Vec<PointStruct>) -> Result<()> {
        for batch in structs.chunks(UPSERT_BATCH) {
            let structs = batch.to_vec();
            let collection = self.collection.clone();
            self.call(move |client| {
                let request =
                    UpsertPointsBuilder::new(collection.clone(), structs.clone()).wait(true);
                async move { client.upsert_points(request).await.map(drop) }
            })
            .map_err(|err| self.error("writing points", &err))?;
        }
        Ok(())
    }
}

impl VectorStore for ServerVectorStore {
    /// Writes points from the vector contract's payload: the sparse vector is made of the symbol,
    /// and path only (the contract carries no text); the indexer writes through
    /// [`ServerVectorStore::upsert_chunks`].
    fn upsert(&self, points: Vec<VectorPoint>) -> Result<()> {
        let mut structs = Vec::with_capacity(points.len());
        for point in points {
            self.check_dimension(&point.vector)?;
            let p = &point.payload;
            let (indices, values) = sparse::document_vector("", p.symbol.as_deref(), None, &p.path);
            let payload = payload_of(&self.tenant, &point);
            let vectors = NamedVectors::default()
                .add_vector(DENSE_VECTOR, point.vector)
                .add_vector(sparse::SPARSE_VECTOR, Vector::new_sparse(indices, values));
            structs.push(PointStruct::new(
                point_uuid(&self.tenant, point.id).to_string(),
                vectors,
                payload,
            ));
        }
        self.upsert_structs(structs)
    }

    fn delete(&self, ids: &[u64]) -> Result<()> {
        for batch in ids.chunks(ID_BATCH) {
            let (points, _) = self.point_ids(batch);
            let collection = self.collection.clone();
            self.call(move |client| {
                let request = DeletePointsBuilder::new(collection.clone())
                    .points(PointsIdsList {
                        ids: points.clone(),
                    })
                    .wait(true);
                async move { client.delete_points(request).await.map(drop) }
            })
            .map_err(|err| self.error("deleting points", &err))?;
        }
        Ok(())
    }

    fn vectors(&self, ids: &[u64]) -> Result<HashMap<u64, Vec<f32>>> {
        Ok(self
            .retrieve(ids, true)?
            .into_iter()
            .filter_map(|(id, vector)| vector.map(|vector| (id, vector)))
            .collect())
    }

    fn existing(&self, ids: &[u64]) -> Result<HashSet<u64>> {
        Ok(self
            .retrieve(ids, false)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    fn search(
        &self,
        vector: &[f32],
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<Vec<(u64, f32)>> {
        let mut must = Vec::new();
        if !filter.languages.is_empty() {
            must.push(Condition::matches("language", filter.languages.clone()));
        }
        if !filter.paths.is_empty() {
            must.push(Condition::matches("path", filter.paths.clone()));
        }
        let request = QueryPointsBuilder::new(self.collection.clone())
            .query(qdrant_client::qdrant::Query::new_nearest(vector.to_vec()))
            .using(DENSE_VECTOR)
            .filter(self.tenant_filter(must))
            .params(
                SearchParamsBuilder::default()
                    .hnsw_ef(u64::try_from(self.options.hnsw_ef).unwrap_or(u64::MAX)),
            )
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .with_payload(
                qdrant_client::qdrant::with_payload_selector::SelectorOptions::Include(
                    qdrant_client::qdrant::PayloadIncludeSelector {
                        fields: vec![CHUNK_ID_FIELD.to_string()],
                    },
                ),
            )
            .build();
        let response = self
            .call(move |client| {
                let request = request.clone();
                async move { client.query(request).await }
            })
            .map_err(|err| self.error("searching", &err))?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|point| chunk_id_of(&point.payload).map(|id| (id, point.score)))
            .collect())
    }

    /// The server builds its indexes itself, per tenant, as points arrive.
    fn optimize(&self) -> Result<bool> {
        Ok(false)
    }

    /// Every write was sent with `wait = true`: nothing is pending.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn info(&self) -> Result<VectorStoreInfo> {
        let collection = self.collection.clone();
        let filter = self.tenant_filter(Vec::new());
        let count = self
            .call(move |client| {
                let request = CountPointsBuilder::new(collection.clone())
                    .filter(filter.clone())
                    .exact(true);
                async move { client.count(request).await }
            })
            .map_err(|err| self.error("counting points", &err))?
            .result
            .map_or(0, |result| result.count);
        let points = usize::try_from(count).unwrap_or(usize::MAX);
        Ok(VectorStoreInfo {
            points,
            // The server indexes per tenant as it goes; it reports no per-tenant figure.
            indexed_vectors: points,
            segments: 0,
        })
    }
}
