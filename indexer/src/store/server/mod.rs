//! The searchable index in a Qdrant server or cluster (`vector.backend = "server"`), over gRPC
//! with `qdrant-client`: each point is one chunk, with its dense vector (`dense`), its BM25 sparse
//! vector (`bm25`, [`sparse`]) and, in its payload, what a hit shows (path, lines, symbol, parent,
//! the text up to [`MAX_PAYLOAD_TEXT`]), so a node searches keyword, vector and hybrid ([`search`])
//! without any local index.
//!
//! Layout (Qdrant's multitenancy guidance): one Qdrant collection per kind, embedding model and
//! dimension (`aiex_code_all-minilm-l6-v2_384`), shared by every Aiex collection of that kind; the
//! Aiex collection name is the tenant, a `keyword` payload field indexed with `is_tenant`, and every
//! read, count and delete is filtered by it. Point ids are UUIDs derived from (tenant, chunk id), so
//! two tenants never share a point; the chunk id itself is kept in the payload (`chunk_id`).
//!
//! Threading: the client is async, the [`VectorStore`] trait is not. One worker thread owns a
//! current-thread tokio runtime and the client; each call is sent to it as a task and the caller
//! waits for the answer on a reply channel, so concurrent callers are served concurrently and no
//! outer runtime is ever blocked or driven. The worker ends when the store is dropped.
//!
//! Keyword before dense: a chunk's point is first written with its sparse vector only
//! ([`ServerVectorStore::upsert_keyword`], searchable by keyword at once, and all a `--no-embed`
//! run writes), then replaced by the full point when its dense vector is computed.
//!
//! Durability: every write is sent with `wait = true`, so when `upsert` or `delete` returns the
//! points are applied (and in the server's WAL); `flush` has nothing left to do.

mod cache;
pub mod files;
mod health;
pub mod jobs;
pub mod lease;
pub mod meta;
mod payload;
mod rpc;
pub mod search;
pub mod sparse;
pub mod stats;
mod write;

pub use cache::sync_cache;
pub use files::{ServerFiles, FILES_COLLECTION};
pub use health::{cluster_health, ClusterHealth, CollectionHealth};
pub use lease::Lease;
pub use meta::{MetaStore, RegistryEntry, META_COLLECTION};
pub(crate) use payload::chunk_of;
use rpc::worker;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use aiex_resilience::{CircuitBreaker, RetryPolicy};
use qdrant_client::qdrant::{
    point_id::PointIdOptions, vector_output, Condition, CreateCollectionBuilder,
    CreateFieldIndexCollectionBuilder, DeletePointsBuilder, Distance, FieldType, Filter,
    GetPointsBuilder, HnswConfigDiffBuilder, KeywordIndexParamsBuilder, Modifier, PointId,
    SparseVectorParamsBuilder, SparseVectorsConfigBuilder, Value, VectorParamsBuilder,
    VectorsConfig,
};
use qdrant_client::Qdrant;
use tokio::sync::mpsc as async_mpsc;

use crate::error::{Error, Result};
use crate::store::vector::{VectorStore, DENSE_VECTOR};

/// Points per upsert request.
pub const UPSERT_BATCH: usize = 256;
/// Point ids per read or delete request.
const ID_BATCH: usize = 1024;
/// The payload field that names the tenant (the Aiex collection).
pub const TENANT_FIELD: &str = "collection";
/// The payload field that keeps the indexer's chunk id (a decimal string: Qdrant integers are i64).
pub const CHUNK_ID_FIELD: &str = "chunk_id";
/// Most bytes of a chunk's text kept in its payload (snippets, research); the sparse vector is
/// made from the whole text.
pub const MAX_PAYLOAD_TEXT: usize = 8 * 1024;
/// Keyword payload fields indexed besides the tenant.
const KEYWORD_FIELDS: [&str; 4] = ["path", "language", "kind", "symbol"];
/// Server versions this build speaks to: the client's major version, its minor version ± 1.
pub const SUPPORTED_MAJOR: u64 = 1;
pub const SUPPORTED_MINORS: std::ops::RangeInclusive<u64> = 18..=20;
/// Retries of one request that failed transiently (unreachable, overloaded, timed out): the
/// shared resilience layer's backoff, or the server's `retry-after` up to 10 s.
const RETRY: RetryPolicy = RetryPolicy {
    max_retries: 3,
    base: Duration::from_millis(200),
    max_backoff: Duration::from_secs(3),
    max_retry_after: Duration::from_secs(10),
};
/// Consecutive failed requests after which the store stops calling the server for a while.
const BREAKER_THRESHOLD: u32 = 8;
const BREAKER_COOLDOWN: Duration = Duration::from_secs(10);

/// How to reach the server and how to lay out the collections Aiex creates there.
#[derive(Debug, Clone)]
pub struct ServerStoreOptions {
    /// gRPC URL (`http://host:6334`; `https://` for TLS).
    pub url: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Kind of the Aiex collection (`code`, `docs`): part of the Qdrant collection's name.
    pub kind: String,
    /// Embedding model key (`all-MiniLM-L6-v2`, `llm:…`): part of the Qdrant collection's name.
    pub model: String,
    pub dimension: usize,
    pub hnsw_ef: usize,
    pub shard_number: u32,
    pub replication_factor: u32,
    pub write_consistency_factor: u32,
    pub on_disk: bool,
}

impl ServerStoreOptions {
    /// The settings of `config` for a collection of `kind`.
    pub fn from_config(config: &aiex_config::Config, kind: &str) -> Result<Self> {
        let vector = &config.vector;
        let url = vector.url.clone().ok_or_else(|| Error::Vector {
            message: "vector.backend = \"server\" needs vector.url".to_string(),
        })?;
        let model = config.embedding_model_key().ok_or_else(|| Error::Vector {
            message: "the embedding model is not configured (see embedding.provider)".to_string(),
        })?;
        Ok(ServerStoreOptions {
            url,
            api_key: vector.api_key.as_ref().map(|key| key.expose().to_string()),
            connect_timeout: Duration::from_millis(vector.connect_timeout_ms),
            request_timeout: Duration::from_millis(vector.request_timeout_ms),
            kind: kind.to_string(),
            model,
            dimension: config.embedding.dimension,
            hnsw_ef: config.vector.hnsw_ef,
            shard_number: vector.shard_number,
            replication_factor: vector.replication_factor,
            write_consistency_factor: vector.write_consistency_factor,
            on_disk: vector.on_disk,
        })
    }

    /// The Qdrant collection for this kind, model and dimension.
    pub fn collection_name(&self) -> String {
        format!(
            "aiex_{}_{}_{}",
            slug(&self.kind),
            slug(&self.model),
            self.dimension
        )
    }
}

/// Lowercase letters, digits and `-`; anything else becomes `-`.
fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The Qdrant point id of chunk `id` of `tenant`: a UUID from blake3(tenant, id).
pub fn point_uuid(tenant: &str, id: u64) -> uuid::Uuid {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"aiex-point\0");
    hasher.update(tenant.as_bytes());
    hasher.update(b"\0");
    hasher.update(&id.to_le_bytes());
    let hash = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Checks the server's version against the versions this build supports.
pub fn check_version(url: &str, version: &str) -> Result<()> {
    let mut parts = version.trim().split('.').map(str::parse::<u64>);
    let supported = match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => {
            major == SUPPORTED_MAJOR && SUPPORTED_MINORS.contains(&minor)
        }
        _ => false,
    };
    if supported {
        Ok(())
    } else {
        Err(Error::Vector {
            message: format!(
                "Qdrant at {url} is version {version}; this build supports Qdrant {major}.{lo} to \
                 {major}.{hi}",
                major = SUPPORTED_MAJOR,
                lo = SUPPORTED_MINORS.start(),
                hi = SUPPORTED_MINORS.end(),
            ),
        })
    }
}

/// Opens the server store of the Aiex collection whose local directory holds `vectors_dir`
/// (`…/collections/<name>/vectors`): the tenant is the collection's name, the Qdrant collection
/// follows from its kind (read from the manifest beside it) and the configured model.
///
/// Nothing is cleared here: an indexing run that starts over (a new collection, `--rebuild`, a
/// collection removed and indexed again) clears the tenant itself, since nothing the server holds
/// for it is tracked then; every other run finds points that its manifest tracks (keyword-only
/// points of `--no-embed` runs included).
pub fn open_collection(
    config: &aiex_config::Config,
    vectors_dir: &std::path::Path,
) -> Result<ServerVectorStore> {
    tenant_store(config, vectors_dir, true)
}

/// The server store of the Aiex collection `name` of `kind` (the Qdrant collection is created
/// when absent).
pub fn open_tenant(
    config: &aiex_config::Config,
    name: &str,
    kind: crate::manifest::CollectionKind,
) -> Result<ServerVectorStore> {
    ServerVectorStore::open(ServerStoreOptions::from_config(config, kind.name())?, name)
}

/// `index --remove NAME` in server mode: takes the collection's indexing lease (refused while a
/// run holds it), deletes every point of its tenant and its files, then its registry, file
/// entries and lease.
/// The registry entry goes last, so an interrupted removal can be run again.
pub fn remove_collection(config: &aiex_config::Config, name: &str) -> Result<()> {
    let meta = MetaStore::connect(config)?;
    let kind = match meta.entry(name)? {
        Some(entry) => entry.head.kind,
        None => {
            crate::collection::IndexDir::new(config.index_dir())
                .manifest(name)?
                .kind
        }
    };
    let lease = Lease::for_collection(config, &meta, name)?;
    open_tenant(config, name, kind)?.clear()?;
    if let Some(files) = ServerFiles::connect(config, false)? {
        files.remove(name)?;
    }
    meta.remove(name)?;
    drop(lease);
    Ok(())
}

/// `index --status` in server mode: the Qdrant collection holding the tenant and the number of
/// points the server has for it (0 when the Qdrant collection does not exist yet).
pub fn collection_points(
    config: &aiex_config::Config,
    vectors_dir: &std::path::Path,
) -> Result<(String, usize)> {
    match tenant_store(config, vectors_dir, false) {
        Ok(store) => Ok((store.collection.clone(), store.info()?.points)),
        Err(Error::Vector { message }) if message.contains("has no collection") => {
            let collection_dir = vectors_dir.parent().unwrap_or(vectors_dir);
            let kind = crate::manifest::Manifest::load(&collection_dir.join("manifest.json"))?
                .map_or(crate::manifest::CollectionKind::Code, |m| m.kind);
            Ok((
                ServerStoreOptions::from_config(config, kind.name())?.collection_name(),
                0,
            ))
        }
        Err(err) => Err(err),
    }
}

fn tenant_store(
    config: &aiex_config::Config,
    vectors_dir: &std::path::Path,
    create: bool,
) -> Result<ServerVectorStore> {
    let collection_dir = vectors_dir.parent().unwrap_or(vectors_dir);
    let manifest = crate::manifest::Manifest::load(&collection_dir.join("manifest.json"))?;
    let tenant = match &manifest {
        Some(manifest) => manifest.collection.clone(),
        None => collection_dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Vector {
                message: format!("no collection name in {}", vectors_dir.display()),
            })?,
    };
    let kind = manifest
        .as_ref()
        .map_or(crate::manifest::CollectionKind::Code, |m| m.kind);
    let options = ServerStoreOptions::from_config(config, kind.name())?;
    ServerVectorStore::connect(options, &tenant, create)
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;
type Job = Box<dyn FnOnce(Qdrant) -> Task + Send>;

/// A Qdrant collection's tenant, behind the synchronous [`VectorStore`] contract.
pub struct ServerVectorStore {
    jobs: async_mpsc::UnboundedSender<Job>,
    url: String,
    collection: String,
    tenant: String,
    options: ServerStoreOptions,
    /// Opens after repeated failures, so a dead server is not asked again at every request.
    breaker: Arc<CircuitBreaker>,
}

impl std::fmt::Debug for ServerVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerVectorStore")
            .field("url", &self.url)
            .field("collection", &self.collection)
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl ServerVectorStore {
    /// Connects to the server, checks its version and the API key, and creates the Qdrant
    /// collection (with its payload indexes) when absent. `tenant` is the Aiex collection name.
    pub fn open(options: ServerStoreOptions, tenant: &str) -> Result<Self> {
        Self::connect(options, tenant, true)
    }

    /// Connects like [`ServerVectorStore::open`]; when `create` is false, a missing Qdrant
    /// collection is not created (a searcher reads, it does not lay out collections).
    pub fn connect(options: ServerStoreOptions, tenant: &str, create: bool) -> Result<Self> {
        let collection = options.collection_name();
        let store = Self::connect_to(options, collection, tenant)?;
        store.ensure_collection(create)?;
        Ok(store)
    }

    /// Connects to the server and checks its version and the API key; `collection` is neither
    /// checked nor created.
    pub(super) fn connect_to(
        options: ServerStoreOptions,
        collection: String,
        tenant: &str,
    ) -> Result<Self> {
        let url = options.url.clone();
        let client = Qdrant::from_url(&url)
            .api_key(options.api_key.clone())
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .skip_compatibility_check()
            .build()
            .map_err(|err| Error::Vector {
                message: format!("Qdrant client for {url}: {err}"),
            })?;
        let (jobs, receiver) = async_mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<std::result::Result<(), String>>(1);
        std::thread::Builder::new()
            .name("aiex-qdrant".to_string())
            .spawn(move || worker(client, receiver, &ready_tx))
            .map_err(|err| Error::Vector {
                message: format!("starting the Qdrant worker: {err}"),
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(Error::Vector { message }),
            Err(_) => {
                return Err(Error::Vector {
                    message: "the Qdrant worker stopped while starting".to_string(),
                })
            }
        }
        let store = ServerVectorStore {
            jobs,
            url,
            collection,
            tenant: tenant.to_string(),
            options,
            breaker: Arc::new(CircuitBreaker::new(BREAKER_THRESHOLD, BREAKER_COOLDOWN)),
        };
        let version = store
            .call_once(|client| async move { client.health_check().await })
            .map_err(|err| store.error("connecting", &err))?
            .version;
        check_version(&store.url, &version)?;
        Ok(store)
    }

    /// The Qdrant collection this store writes to.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The tenant (Aiex collection name) whose points this store reads and writes.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Deletes every point of this tenant.
    pub fn clear(&self) -> Result<()> {
        let collection = self.collection.clone();
        let filter = self.tenant_filter(Vec::new());
        self.call(move |client| {
            let request = DeletePointsBuilder::new(collection.clone())
                .points(filter.clone())
                .wait(true);
            async move { client.delete_points(request).await.map(drop) }
        })
        .map_err(|err| self.error("clearing the tenant", &err))
    }

    fn tenant_filter(&self, mut must: Vec<Condition>) -> Filter {
        must.insert(0, Condition::matches(TENANT_FIELD, self.tenant.clone()));
        Filter::must(must)
    }

    /// Creates the Qdrant collection and its payload indexes when absent (and `create`); checks
    /// its dimension and that it has the sparse vector (collections of the first server layout,
    /// dense only, are refused with what to do).
    fn ensure_collection(&self, create: bool) -> Result<()> {
        let name = self.collection.clone();
        let exists = self
            .call(move |client| {
                let name = name.clone();
                async move { client.collection_exists(name).await }
            })
            .map_err(|err| self.error("checking the collection", &err))?;
        if !exists {
            if !create {
                return Err(Error::Vector {
                    message: format!(
                        "Qdrant at {} has no collection {} yet (nothing indexed into it)",
                        self.url, self.collection
                    ),
                });
            }
            self.create_collection()?;
        }
        let name = self.collection.clone();
        let info = self
            .call(move |client| {
                let name = name.clone();
                async move { client.collection_info(name).await }
            })
            .map_err(|err| self.error("reading the collection", &err))?;
        let params = info
            .result
            .and_then(|info| info.config)
            .and_then(|config| config.params);
        let has_sparse = params
            .as_ref()
            .and_then(|params| params.sparse_vectors_config.as_ref())
            .is_some_and(|sparse| sparse.map.contains_key(sparse::SPARSE_VECTOR));
        let size =
            params
                .and_then(|params| params.vectors_config)
                .and_then(|vectors| match vectors.config {
                    Some(qdrant_client::qdrant::vectors_config::Config::ParamsMap(map)) => {
                        map.map.get(DENSE_VECTOR).map(|params| params.size)
                    }
                    _ => None,
                });
        match size {
            Some(size) if usize::try_from(size).ok() == Some(self.options.dimension) => {
                if has_sparse {
                    Ok(())
                } else {
                    Err(Error::Vector {
                        message: format!(
                            "Qdrant collection {} at {} has no sparse vector `{}` (it was created \
                             by an earlier version, for dense vectors only); delete it \
                             (DELETE /collections/{} on Qdrant's REST port) and index its \
                             collections again",
                            self.collection,
                            self.url,
                            sparse::SPARSE_VECTOR,
                            self.collection
                        ),
                    })
                }
            }
            Some(size) => Err(Error::Vector {
                message: format!(
                    "Qdrant collection {} at {} holds vectors of dimension {size}, not {}",
                    self.collection, self.url, self.options.dimension
                ),
            }),
            None => Err(Error::Vector {
                message: format!(
                    "Qdrant collection {} at {} has no dense vector named `{DENSE_VECTOR}`; it \
                     was not created by Aiex",
                    self.collection, self.url
                ),
            }),
        }
    }

    fn create_collection(&self) -> Result<()> {
        let options = &self.options;
        let dimension = u64::try_from(options.dimension).unwrap_or(u64::MAX);
        let vectors = VectorsConfig::from(qdrant_client::qdrant::vectors_config::Config::from(
            qdrant_client::qdrant::VectorParamsMap {
                map: HashMap::from([(
                    DENSE_VECTOR.to_string(),
                    VectorParamsBuilder::new(dimension, Distance::Cosine)
                        .on_disk(options.on_disk)
                        .build(),
                )]),
            },
        ));
        let mut sparse_vectors = SparseVectorsConfigBuilder::default();
        sparse_vectors.add_named_vector_params(
            sparse::SPARSE_VECTOR,
            SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
        );
        let mut request = CreateCollectionBuilder::new(self.collection.clone())
            .vectors_config(vectors)
            .sparse_vectors_config(sparse_vectors)
            // Multitenancy: no global graph, one HNSW graph per tenant (payload_m on the tenant
            // index), since every search is filtered by tenant.
            .hnsw_config(HnswConfigDiffBuilder::default().m(0).payload_m(16))
            .shard_number(options.shard_number)
            .replication_factor(options.replication_factor)
            .write_consistency_factor(options.write_consistency_factor)
            .build();
        request.metadata = HashMap::from([
            ("aiex_kind".to_string(), Value::from(options.kind.clone())),
            ("aiex_model".to_string(), Value::from(options.model.clone())),
        ]);
        let created = self.call(move |client| {
            let request = request.clone();
            async move { client.create_collection(request).await }
        });
        rpc::created(created).map_err(|err| self.error("creating the collection", &err))?;
        let mut indexes = vec![(
            TENANT_FIELD.to_string(),
            FieldType::Keyword,
            Some(KeywordIndexParamsBuilder::default().is_tenant(true)),
        )];
        indexes.extend(
            KEYWORD_FIELDS
                .iter()
                .map(|field| (field.to_string(), FieldType::Keyword, None)),
        );
        indexes.push(("start_line".to_string(), FieldType::Integer, None));
        for (field, field_type, params) in indexes {
            let mut builder =
                CreateFieldIndexCollectionBuilder::new(self.collection.clone(), field, field_type)
                    .wait(true);
            if let Some(params) = params {
                builder = builder.field_index_params(params);
            }
            let request = builder.build();
            self.call(move |client| {
                let request = request.clone();
                async move { client.create_field_index(request).await }
            })
            .map_err(|err| self.error("creating payload indexes", &err))?;
        }
        tracing::info!(
            collection = %self.collection,
            url = %self.url,
            "created Qdrant collection"
        );
        Ok(())
    }

    fn point_ids(&self, ids: &[u64]) -> (Vec<PointId>, HashMap<String, u64>) {
        let mut points = Vec::with_capacity(ids.len());
        let mut by_uuid = HashMap::with_capacity(ids.len());
        for &id in ids {
            let uuid = point_uuid(&self.tenant, id).to_string();
            points.push(PointId::from(uuid.clone()));
            by_uuid.insert(uuid, id);
        }
        (points, by_uuid)
    }

    /// Retrieves the points of `ids` (with their vectors when `with_vectors`), as chunk ids.
    fn retrieve(&self, ids: &[u64], with_vectors: bool) -> Result<Vec<(u64, Option<Vec<f32>>)>> {
        let mut found = Vec::new();
        for batch in ids.chunks(ID_BATCH) {
            let (points, by_uuid) = self.point_ids(batch);
            let collection = self.collection.clone();
            let response = self
                .call(move |client| {
                    let request = GetPointsBuilder::new(collection.clone(), points.clone())
                        .with_payload(false)
                        .with_vectors(with_vectors);
                    async move { client.get_points(request).await }
                })
                .map_err(|err| self.error("reading points", &err))?;
            for point in response.result {
                let Some(id) = point
                    .id
                    .as_ref()
                    .and_then(uuid_of)
                    .and_then(|uuid| by_uuid.get(&uuid).copied())
                else {
                    continue;
                };
                let vector = point
                    .vectors
                    .and_then(|vectors| vectors.get_vector_by_name(DENSE_VECTOR))
                    .and_then(|vector| match vector {
                        vector_output::Vector::Dense(dense) => Some(dense.data),
                        _ => None,
                    });
                found.push((id, vector));
            }
        }
        Ok(found)
    }
}

/// The UUID of a point id, normalised (lowercase, hyphenated).
fn uuid_of(id: &PointId) -> Option<String> {
    match id.point_id_options.as_ref()? {
        PointIdOptions::Uuid(text) => uuid::Uuid::parse_str(text).ok().map(|u| u.to_string()),
        PointIdOptions::Num(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_are_per_kind_model_and_dimension() {
        let mut config = aiex_config::Config::default();
        config.vector.url = Some("http://127.0.0.1:6334".into());
        let options = ServerStoreOptions::from_config(&config, "code").expect("options");
        assert_eq!(options.collection_name(), "aiex_code_all-minilm-l6-v2_384");
        let docs = ServerStoreOptions::from_config(&config, "docs").expect("options");
        assert_eq!(docs.collection_name(), "aiex_docs_all-minilm-l6-v2_384");
    }

    #[test]
    fn point_ids_differ_across_tenants_and_are_stable() {
        assert_eq!(point_uuid("a", 7), point_uuid("a", 7));
        assert_ne!(point_uuid("a", 7), point_uuid("b", 7));
        assert_ne!(point_uuid("a", 7), point_uuid("a", 8));
        // The separator keeps ("ab", x) and ("a", b…) apart.
        assert_ne!(point_uuid("ab", 1), point_uuid("a", 1));
    }

    #[test]
    fn server_versions() {
        assert!(check_version("http://q:6334", "1.19.0").is_ok());
        assert!(check_version("http://q:6334", "1.20.3").is_ok());
        for bad in ["1.12.0", "2.19.0", "dev", ""] {
            let err = check_version("http://q:6334", bad)
                .expect_err(bad)
                .to_string();
            assert!(err.contains("http://q:6334"), "{err}");
            assert!(err.contains(&format!("version {bad}")), "{err}");
            assert!(err.contains("1.18 to 1.20"), "{err}");
        }
    }
}
