//! Dense vectors: the [`VectorStore`] contract and its embedded implementation on `qdrant-edge`.
//!
//! Every method blocks (disk, locks, qdrant's own read pool): call them from a blocking context.
//! One shard directory per collection; a shard directory has one owner process at a time (qdrant's
//! WAL is locked), so a second process gets [`Error::Vector`] on open and searches keyword-only.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use parking_lot::Mutex;
use qdrant_edge::{
    Condition, CreateIndex, Distance, EdgeConfigBuilder, EdgeOptimizersConfig, EdgeShard,
    EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations, Filter, JsonPath, Match,
    NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStruct, QueryEnum, SearchParams, SearchRequest, UpdateOperation,
    VectorInternal, VectorStructInternal, WithPayloadInterface, WithVector,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the dense vector in every shard.
pub const DENSE_VECTOR: &str = "dense";

/// What is stored next to each vector: enough to filter, and to show a hit without the keyword store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorPayload {
    pub collection: String,
    pub path: String,
    pub language: String,
    pub symbol: Option<String>,
    pub kind: String,
    pub start_line: u32,
    pub end_line: u32,
    pub hash: String,
}

/// One point to write.
#[derive(Debug, Clone)]
pub struct VectorPoint {
    pub id: u64,
    pub vector: Vec<f32>,
    pub payload: VectorPayload,
}

/// Conditions on the payload; empty lists match everything.
#[derive(Debug, Clone, Default)]
pub struct VectorFilter {
    pub languages: Vec<String>,
    pub paths: Vec<String>,
}

/// Size and state of one store.
#[derive(Debug, Clone, Serialize)]
pub struct VectorStoreInfo {
    pub points: usize,
    pub indexed_vectors: usize,
    pub segments: usize,
}

/// The contract between the indexer and a vector database (embedded shard, or a Qdrant server).
pub trait VectorStore: Send + Sync {
    /// Inserts or replaces points.
    fn upsert(&self, points: Vec<VectorPoint>) -> Result<()>;
    /// Deletes points by id; unknown ids are ignored.
    fn delete(&self, ids: &[u64]) -> Result<()>;
    /// Vectors of the given ids that exist.
    fn vectors(&self, ids: &[u64]) -> Result<HashMap<u64, Vec<f32>>>;
    /// Which of the given ids exist.
    fn existing(&self, ids: &[u64]) -> Result<HashSet<u64>>;
    /// Nearest neighbours of `vector` by cosine similarity, best first.
    fn search(
        &self,
        vector: &[f32],
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<Vec<(u64, f32)>>;
    /// Builds the ANN index when worthwhile (blocks until done); true when something changed.
    fn optimize(&self) -> Result<bool>;
    /// Makes all writes durable.
    fn flush(&self) -> Result<()>;
    fn info(&self) -> Result<VectorStoreInfo>;
}

/// Opens the vector store of a collection as configured.
pub fn open_store(config: &aiex_config::Config, dir: &Path) -> Result<Box<dyn VectorStore>> {
    match config.vector.backend {
        aiex_config::VectorBackend::Edge => Ok(Box::new(EdgeVectorStore::open(
            dir,
            EdgeStoreOptions {
                dimension: config.embedding.dimension,
                hnsw_ef: config.vector.hnsw_ef,
                optimize_min_points: config.vector.optimize_min_points,
            },
        )?)),
        aiex_config::VectorBackend::Server => {
            Ok(Box::new(super::server::open_collection(config, dir)?))
        }
    }
}

/// Settings of an embedded shard.
#[derive(Debug, Clone)]
pub struct EdgeStoreOptions {
    pub dimension: usize,
    pub hnsw_ef: usize,
    /// The ANN index is built only for shards with at least this many points: below it exact search
    /// is fast enough and an HNSW build would only cost time.
    pub optimize_min_points: usize,
}

/// The embedded implementation: one `qdrant-edge` shard.
pub struct EdgeVectorStore {
    /// Always `Some` until dropped: `Drop` takes it out to contain a panic in the shard's own
    /// flush-on-drop.
    shard_slot: Option<EdgeShard>,
    /// Serialises writes and flushes: `EdgeShard::flush` expects no concurrent update.
    write_lock: Mutex<()>,
    options: EdgeStoreOptions,
}

impl std::fmt::Debug for EdgeVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeVectorStore")
            .field("path", &self.shard_slot.as_ref().map(EdgeShard::path))
            .finish()
    }
}

const KEYWORD_FIELDS: [&str; 4] = ["collection", "path", "language", "kind"];

/// Whether the embedded vector store at `dir` is open in another process (the lock on its
/// write-ahead log is held: a running `serve` of the data directory, or another indexing run).
/// A probe for commands about to write it, so they can refuse before doing any work; false
/// when the store does not exist yet. Not for a process that may hold the store itself (a
/// server's own jobs), which would see its own lock.
pub fn held_by_another_process(dir: &Path) -> bool {
    let Ok(wal) = std::fs::File::open(dir.join("wal")) else {
        return false;
    };
    matches!(wal.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

impl EdgeVectorStore {
    /// Opens the shard at `dir`, creating it (with payload indexes) when absent.
    pub fn open(dir: &Path, options: EdgeStoreOptions) -> Result<Self> {
        let exists = dir.join("edge_config.json").is_file();
        fs_err::create_dir_all(dir).map_err(Error::io(dir))?;
        let config = EdgeConfigBuilder::new()
            .vector(
                DENSE_VECTOR,
                EdgeVectorParamsBuilder::new(options.dimension, Distance::Cosine).build(),
            )
            .optimizers(EdgeOptimizersConfig {
                // Segments are indexed when optimize() is called explicitly (after a batch).
                indexing_threshold: Some(1),
                ..EdgeOptimizersConfig::default()
            })
            .build();
        let shard = if exists {
            EdgeShard::load(dir, None)
        } else {
            EdgeShard::new(dir, config)
        }
        .map_err(|err| {
            let err = err.to_string();
            // qdrant's WAL directory is locked by its owner process.
            let message = if err.contains("WouldBlock") {
                format!(
                    "vector store {} is in use by another process (an indexing run or a server)",
                    dir.display()
                )
            } else {
                format!("opening vector store {}: {err}", dir.display())
            };
            Error::Vector { message }
        })?;
        let store = EdgeVectorStore {
            shard_slot: Some(shard),
            write_lock: Mutex::new(()),
            options,
        };
        let stored_dimension = store
            .shard()
            .config()
            .vectors
            .get(DENSE_VECTOR)
            .map(|params| params.size);
        if let Some(got) = stored_dimension.filter(|&size| size != store.options.dimension) {
            return Err(Error::WrongDimension {
                expected: got,
                got: store.options.dimension,
            });
        }
        if !exists {
            store.create_payload_indexes()?;
        }
        Ok(store)
    }

    fn create_payload_indexes(&self) -> Result<()> {
        let _guard = self.write_lock.lock();
        let fields = KEYWORD_FIELDS
            .iter()
            .map(|name| (*name, PayloadSchemaType::Keyword))
            .chain([("start_line", PayloadSchemaType::Integer)]);
        for (name, schema) in fields {
            self.shard()
                .update(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name: json_path(name)?,
                        field_schema: Some(PayloadFieldSchema::FieldType(schema)),
                    }),
                ))
                .map_err(Error::vector)?;
        }
        Ok(())
    }

    #[allow(clippy::expect_used)]
    fn shard(&self) -> &EdgeShard {
        self.shard_slot
            .as_ref()
            .expect("the shard is present until the store is dropped")
    }

    fn point_ids(ids: &[u64]) -> Vec<PointId> {
        ids.iter().map(|&id| PointId::NumId(id)).collect()
    }
}

fn numeric_id(id: &PointId) -> Option<u64> {
    match id {
        PointId::NumId(id) => Some(*id),
        PointId::Uuid(_) => None,
    }
}

fn json_path(field: &str) -> Result<JsonPath> {
    JsonPath::try_from(field).map_err(|()| Error::Vector {
        message: format!("invalid payload field `{field}`"),
    })
}

fn any_of(field: &str, values: &[String]) -> Result<Condition> {
    Ok(Condition::Field(FieldCondition::new_match(
        json_path(field)?,
        Match::from(values.to_vec()),
    )))
}

impl VectorStore for EdgeVectorStore {
    fn upsert(&self, points: Vec<VectorPoint>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let mut persisted = Vec::with_capacity(points.len());
        for point in points {
            if point.vector.len() != self.options.dimension {
                return Err(Error::WrongDimension {
                    expected: self.options.dimension,
                    got: point.vector.len(),
                });
            }
            let payload = serde_json::to_value(&point.payload).map_err(Error::vector)?;
            let vectors = HashMap::from([(DENSE_VECTOR.to_string(), point.vector)]);
            persisted.push(PointStruct::new(point.id, vectors, payload).into());
        }
        let _guard = self.write_lock.lock();
        self.shard()
            .update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(persisted)),
            ))
            .map_err(Error::vector)
    }

    fn delete(&self, ids: &[u64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let _guard = self.write_lock.lock();
        self.shard()
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePoints {
                    ids: Self::point_ids(ids),
                },
            ))
            .map_err(Error::vector)
    }

    fn vectors(&self, ids: &[u64]) -> Result<HashMap<u64, Vec<f32>>> {
        let records = self
            .shard()
            .retrieve(
                &Self::point_ids(ids),
                Some(WithPayloadInterface::Bool(false)),
                Some(WithVector::Bool(true)),
            )
            .map_err(Error::vector)?;
        let mut vectors = HashMap::with_capacity(records.len());
        for record in records {
            let Some(id) = numeric_id(&record.id) else {
                continue;
            };
            let dense = match record.vector {
                Some(VectorStructInternal::Named(mut named)) => match named.remove(DENSE_VECTOR) {
                    Some(VectorInternal::Dense(vector)) => Some(vector),
                    _ => None,
                },
                Some(VectorStructInternal::Single(vector)) => Some(vector),
                _ => None,
            };
            if let Some(vector) = dense {
                vectors.insert(id, vector);
            }
        }
        Ok(vectors)
    }

    fn existing(&self, ids: &[u64]) -> Result<HashSet<u64>> {
        let records = self
            .shard()
            .retrieve(
                &Self::point_ids(ids),
                Some(WithPayloadInterface::Bool(false)),
                Some(WithVector::Bool(false)),
            )
            .map_err(Error::vector)?;
        Ok(records.iter().filter_map(|r| numeric_id(&r.id)).collect())
    }

    fn search(
        &self,
        vector: &[f32],
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<Vec<(u64, f32)>> {
        let mut must = Vec::new();
        if !filter.languages.is_empty() {
            must.push(any_of("language", &filter.languages)?);
        }
        if !filter.paths.is_empty() {
            must.push(any_of("path", &filter.paths)?);
        }
        let request = SearchRequest {
            query: QueryEnum::Nearest(NamedQuery::new(
                VectorInternal::Dense(vector.to_vec()),
                DENSE_VECTOR,
            )),
            filter: (!must.is_empty()).then(|| Filter {
                must: Some(must),
                ..Filter::default()
            }),
            params: Some(SearchParams {
                hnsw_ef: Some(self.options.hnsw_ef),
                ..SearchParams::default()
            }),
            limit,
            offset: 0,
            with_payload: Some(WithPayloadInterface::Bool(false)),
            with_vector: Some(WithVector::Bool(false)),
            score_threshold: None,
        };
        let points = self.shard().search(request).map_err(Error::vector)?;
        Ok(points
            .into_iter()
            .filter_map(|point| numeric_id(&point.id).map(|id| (id, point.score)))
            .collect())
    }

    fn optimize(&self) -> Result<bool> {
        let info = self.info()?;
        if info.points < self.options.optimize_min_points {
            return Ok(false);
        }
        let _guard = self.write_lock.lock();
        self.shard().optimize().map_err(Error::vector)
    }

    fn flush(&self) -> Result<()> {
        let _guard = self.write_lock.lock();
        // `EdgeShard::flush` panics instead of returning errors; keep a panic there from unwinding
        // through the caller's stack with locks held.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.shard().flush())).map_err(
            |_| Error::Vector {
                message: "flushing the vector store failed".to_string(),
            },
        )
    }

    fn info(&self) -> Result<VectorStoreInfo> {
        let info = self.shard().info();
        Ok(VectorStoreInfo {
            points: info.points_count,
            indexed_vectors: info.indexed_vectors_count,
            segments: info.segments_count,
        })
    }
}

impl Drop for EdgeVectorStore {
    fn drop(&mut self) {
        let _guard = self.write_lock.lock();
        if let Some(shard) = self.shard_slot.take() {
            // `EdgeShard` flushes on drop and panics if that fails (disk full, …); what was not
            // flushed is replayed from the WAL or recomputed by the next run.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(shard))).is_err()
            {
                tracing::error!("flushing the vector store on close failed");
            }
        }
    }
}
