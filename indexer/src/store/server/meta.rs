//! Index state in the cluster (server mode): the `aiex_meta` Qdrant collection holds, per Aiex
//! collection (its tenant), what the manifest holds, so any node with an empty data directory
//! lists, searches and indexes every collection:
//!
//! - a registry entry: the manifest without its file list (kind, root, generation, chunking,
//!   model, pending vector deletes, last run, revision), its counts, and `dirty` while a run is
//!   in progress;
//! - one entry per indexed file (hash, size, modification time, language, chunks with their
//!   embedded flags), written only when it changed;
//! - the indexing lease ([`super::lease`]).
//!
//! Point ids are UUIDs derived from (tenant, entry type, path), so a rewrite replaces, never
//! duplicates. The collection has no vectors; everything is payload (`tenant`, a keyword index
//! with `is_tenant`; `type`; `data`, the entry as JSON).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use qdrant_client::qdrant::{
    point_id::PointIdOptions, read_consistency, value::Kind, Condition, CreateCollectionBuilder,
    CreateFieldIndexCollectionBuilder, DeletePointsBuilder, FieldType, Filter, GetPointsBuilder,
    KeywordIndexParamsBuilder, NamedVectors, PointId, PointStruct, PointsIdsList,
    ReadConsistencyType, RetrievedPoint, ScrollPointsBuilder, UpsertPointsBuilder, Value,
    VectorParamsMap, VectorsConfig, WriteOrdering, WriteOrderingType,
};
use qdrant_client::Payload;

use super::payload::string_field;
use super::{ServerStoreOptions, ServerVectorStore, ID_BATCH};
use crate::error::{Error, Result};
use crate::manifest::{FileRecord, Manifest};

/// The Qdrant collection holding the index state of every Aiex collection.
pub const META_COLLECTION: &str = "aiex_meta";
pub(super) const TENANT: &str = "tenant";
pub(super) const TYPE: &str = "type";
const DATA: &str = "data";
const REGISTRY: &str = "registry";
const FILE: &str = "file";
pub(super) const LEASE: &str = "lease";
/// Reads that must see the last write: a majority of replicas (writes go to a majority too).
const META_READ: read_consistency::Value =
    read_consistency::Value::Type(ReadConsistencyType::Quorum as i32);
/// Writes go through the shard's leader replica (`medium`: the dynamically elected one, so a
/// dead node does not stop them), so concurrent conditional writes (the lease) are applied in one
/// order.
pub(super) const META_ORDER: WriteOrdering = WriteOrdering {
    r#type: WriteOrderingType::Medium as i32,
};
/// Points per page when scrolling.
const SCROLL_PAGE: u32 = 512;
/// Most payload bytes (roughly) per upsert request of file entries.
const WRITE_BYTES: usize = 4 << 20;

/// An Aiex collection's registry entry.
#[derive(Debug, Clone)]
pub struct RegistryEntry {
    /// The manifest without its file list (the revision included).
    pub head: Manifest,
    /// Whether a run was in progress when the entry was last written (it may have died).
    pub dirty: bool,
    pub files: usize,
    pub chunks: usize,
    pub embedded_chunks: usize,
}

/// The `aiex_meta` collection of one server.
pub struct MetaStore {
    pub(super) conn: ServerVectorStore,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaStore")
            .field("url", &self.conn.url)
            .finish()
    }
}

/// One connection per server and key in a process: the registry is read often (every search
/// node checks it about once a second).
static SHARED: OnceLock<Mutex<Vec<Shared>>> = OnceLock::new();

/// A shared connection: the server's URL, the API key, the store.
type Shared = (String, Option<String>, Arc<MetaStore>);

/// The point id of an entry of `tenant`.
pub(super) fn meta_uuid(tenant: &str, kind: &str, path: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"aiex-meta\0");
    for part in [tenant, kind, path] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

impl MetaStore {
    /// The server's metadata collection (created on first use), over a connection shared by the
    /// process.
    pub fn connect(config: &aiex_config::Config) -> Result<Arc<MetaStore>> {
        let options = ServerStoreOptions::from_config(config, "meta")?;
        let shared = SHARED.get_or_init(|| Mutex::new(Vec::new()));
        let key = (options.url.clone(), options.api_key.clone());
        if let Some((_, _, store)) = shared
            .lock()
            .iter()
            .find(|(url, api_key, _)| (url, api_key) == (&key.0, &key.1))
        {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(MetaStore::open(options)?);
        shared.lock().push((key.0, key.1, Arc::clone(&store)));
        Ok(store)
    }

    /// Connects and creates the metadata collection when absent (its own connection).
    pub fn open(options: ServerStoreOptions) -> Result<MetaStore> {
        let conn = ServerVectorStore::connect_to(options, META_COLLECTION.to_string(), "")?;
        let store = MetaStore { conn };
        store.ensure()?;
        Ok(store)
    }

    fn error(&self, doing: &str, err: &qdrant_client::QdrantError) -> Error {
        self.conn.error(doing, err)
    }

    /// Creates the collection (no vectors; one shard) and its payload indexes when absent. It is
    /// kept on at least 3 replicas, written to a majority of them and read from a majority
    /// ([`META_READ`]), so every read sees the last write while one node of a 3-node cluster is
    /// down (a smaller cluster keeps as many replicas as it has nodes).
    fn ensure(&self) -> Result<()> {
        let exists = self
            .conn
            .call(|client| async move { client.collection_exists(META_COLLECTION).await })
            .map_err(|err| self.error("checking the metadata collection", &err))?;
        if exists {
            return Ok(());
        }
        let replicas = self.conn.options.replication_factor.max(3);
        let request = CreateCollectionBuilder::new(META_COLLECTION)
            .vectors_config(VectorsConfig::from(
                qdrant_client::qdrant::vectors_config::Config::from(VectorParamsMap {
                    map: HashMap::new(),
                }),
            ))
            .shard_number(1)
            .replication_factor(replicas)
            .write_consistency_factor(replicas / 2 + 1)
            .build();
        let created = self.conn.call(move |client| {
            let request = request.clone();
            async move { client.create_collection(request).await }
        });
        super::rpc::created(created)
            .map_err(|err| self.error("creating the metadata collection", &err))?;
        for (field, tenant) in [(TENANT, true), (TYPE, false)] {
            let mut builder =
                CreateFieldIndexCollectionBuilder::new(META_COLLECTION, field, FieldType::Keyword)
                    .wait(true);
            if tenant {
                builder = builder
                    .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true));
            }
            let request = builder.build();
            self.conn
                .call(move |client| {
                    let request = request.clone();
                    async move { client.create_field_index(request).await }
                })
                .map_err(|err| self.error("indexing the metadata collection", &err))?;
        }
        Ok(())
    }

    /// Every registry entry (every Aiex collection the server holds), sorted by name.
    pub fn entries(&self) -> Result<Vec<RegistryEntry>> {
        let filter = Filter::must([Condition::matches(TYPE, REGISTRY.to_string())]);
        let mut entries: Vec<RegistryEntry> = self
            .scroll(filter, false)?
            .iter()
            .filter_map(|point| {
                // One unreadable entry (another version's) does not hide the others.
                registry_entry(point)
                    .map_err(|err| tracing::warn!("skipping a registry entry: {err}"))
                    .ok()
            })
            .collect();
        entries.sort_by(|a, b| a.head.collection.cmp(&b.head.collection));
        Ok(entries)
    }

    /// The registry entry of `tenant`, read from a majority of replicas (the newest wins).
    pub fn entry(&self, tenant: &str) -> Result<Option<RegistryEntry>> {
        self.get(vec![meta_uuid(tenant, REGISTRY, "")])?
            .first()
            .map(registry_entry)
            .transpose()
    }

    /// The manifest of `tenant` (its registry entry and file entries), with whether a run was in
    /// progress; None when the server has no entry for it.
    pub fn load(&self, tenant: &str) -> Result<Option<(Manifest, bool)>> {
        let Some(entry) = self.entry(tenant)? else {
            return Ok(None);
        };
        let filter = Filter::must([
            Condition::matches(TENANT, tenant.to_string()),
            Condition::matches(TYPE, FILE.to_string()),
        ]);
        let mut files = BTreeMap::new();
        for point in self.scroll(filter, true)? {
            let path = string_field(&point.payload, "path").map(str::to_string);
            let record = parse_data::<FileRecord>(&point.payload);
            match (path, record) {
                (Some(path), Ok(record)) => {
                    files.insert(path, record);
                }
                // An entry this version cannot read: the file is indexed again.
                (_, Err(err)) => tracing::warn!(tenant, "unreadable file entry: {err}"),
                (None, _) => tracing::warn!(tenant, "file entry without a path"),
            }
        }
        Ok(Some((
            Manifest {
                files,
                ..entry.head
            },
            entry.dirty,
        )))
    }

    /// Writes the registry entry of `manifest` (its file list only counted), marked `dirty` or not.
    pub fn write_entry(&self, manifest: &Manifest, dirty: bool) -> Result<()> {
        let head = Manifest {
            files: BTreeMap::new(),
            ..manifest.clone()
        };
        let data = serde_json::to_string(&head).map_err(Error::vector)?;
        let tenant = manifest.collection.as_str();
        let mut payload = base_payload(tenant, REGISTRY);
        payload.insert(DATA, data);
        payload.insert("dirty", dirty);
        payload.insert("generation", count(manifest.generation));
        payload.insert("revision", count(manifest.revision));
        payload.insert("files", count(manifest.files.len()));
        payload.insert("chunks", count(manifest.chunk_count()));
        payload.insert("embedded_chunks", count(manifest.embedded_count()));
        self.upsert(vec![PointStruct::new(
            meta_uuid(tenant, REGISTRY, ""),
            NamedVectors::default(),
            payload,
        )])
    }

    /// Writes the file entries `changed` and deletes those of `removed`.
    pub fn write_files(
        &self,
        tenant: &str,
        changed: &[(&str, &FileRecord)],
        removed: &[&str],
    ) -> Result<()> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        for (path, record) in changed {
            let data = serde_json::to_string(record).map_err(Error::vector)?;
            bytes += data.len() + path.len();
            let mut payload = base_payload(tenant, FILE);
            payload.insert("path", path.to_string());
            payload.insert(DATA, data);
            batch.push(PointStruct::new(
                meta_uuid(tenant, FILE, path),
                NamedVectors::default(),
                payload,
            ));
            if batch.len() >= super::UPSERT_BATCH || bytes >= WRITE_BYTES {
                self.upsert(std::mem::take(&mut batch))?;
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            self.upsert(batch)?;
        }
        let ids: Vec<PointId> = removed
            .iter()
            .map(|path| PointId::from(meta_uuid(tenant, FILE, path)))
            .collect();
        for ids in ids.chunks(ID_BATCH) {
            let ids = ids.to_vec();
            self.conn
                .call(move |client| {
                    let request = DeletePointsBuilder::new(META_COLLECTION)
                        .points(PointsIdsList { ids: ids.clone() })
                        .ordering(META_ORDER)
                        .wait(true);
                    async move { client.delete_points(request).await.map(drop) }
                })
                .map_err(|err| self.error("deleting file entries", &err))?;
        }
        Ok(())
    }

    /// Deletes every file entry of `tenant` (a run starting over).
    pub fn delete_files(&self, tenant: &str) -> Result<()> {
        self.delete(Filter::must([
            Condition::matches(TENANT, tenant.to_string()),
            Condition::matches(TYPE, FILE.to_string()),
        ]))
    }

    /// Deletes everything the server holds about `tenant`: registry entry, files, lease.
    pub fn remove(&self, tenant: &str) -> Result<()> {
        self.delete(Filter::must([Condition::matches(
            TENANT,
            tenant.to_string(),
        )]))
    }

    pub(super) fn delete(&self, filter: Filter) -> Result<()> {
        self.conn
            .call(move |client| {
                let request = DeletePointsBuilder::new(META_COLLECTION)
                    .points(filter.clone())
                    .ordering(META_ORDER)
                    .wait(true);
                async move { client.delete_points(request).await.map(drop) }
            })
            .map_err(|err| self.error("deleting metadata", &err))
    }

    pub(super) fn upsert(&self, points: Vec<PointStruct>) -> Result<()> {
        self.conn
            .call(move |client| {
                let request = UpsertPointsBuilder::new(META_COLLECTION, points.clone())
                    .ordering(META_ORDER)
                    .wait(true);
                async move { client.upsert_points(request).await.map(drop) }
            })
            .map_err(|err| self.error("writing metadata", &err))
    }

    /// The points of `ids` with their payloads, read from a majority of replicas (the newest
    /// wins).
    pub(super) fn get(&self, ids: Vec<String>) -> Result<Vec<RetrievedPoint>> {
        let ids: Vec<PointId> = ids.into_iter().map(PointId::from).collect();
        Ok(self
            .conn
            .call(move |client| {
                let request = GetPointsBuilder::new(META_COLLECTION, ids.clone())
                    .with_payload(true)
                    .with_vectors(false)
                    .read_consistency(META_READ);
                async move { client.get_points(request).await }
            })
            .map_err(|err| self.error("reading metadata", &err))?
            .result)
    }

    /// Every point matching `filter`, with payloads; `strong` reads from a majority of replicas.
    pub(super) fn scroll(&self, filter: Filter, strong: bool) -> Result<Vec<RetrievedPoint>> {
        scroll_all(&self.conn, META_COLLECTION, filter, None, strong)
            .map_err(|err| self.error("reading metadata", &err))
    }
}

/// Every point of `collection` matching `filter`, page by page, with the payload `fields` (all
/// of it when None) and no vectors; `strong` reads from a majority of replicas.
pub(super) fn scroll_all(
    conn: &ServerVectorStore,
    collection: &'static str,
    filter: Filter,
    fields: Option<&[&str]>,
    strong: bool,
) -> std::result::Result<Vec<RetrievedPoint>, qdrant_client::QdrantError> {
    use qdrant_client::qdrant::with_payload_selector::SelectorOptions;
    let selector = match fields {
        Some(fields) => SelectorOptions::Include(super::files::include(fields)),
        None => SelectorOptions::Enable(true),
    };
    let mut points = Vec::new();
    let mut offset: Option<PointId> = None;
    loop {
        let filter = filter.clone();
        let selector = selector.clone();
        let from = offset.clone();
        let page = conn.call(move |client| {
            let mut request = ScrollPointsBuilder::new(collection)
                .filter(filter.clone())
                .limit(SCROLL_PAGE)
                .with_payload(selector.clone())
                .with_vectors(false);
            if let Some(from) = from.clone() {
                request = request.offset(from);
            }
            if strong {
                request = request.read_consistency(META_READ);
            }
            async move { client.scroll(request).await }
        })?;
        points.extend(page.result);
        match page.next_page_offset {
            Some(next) => offset = Some(next),
            None => return Ok(points),
        }
    }
}

pub(super) fn base_payload(tenant: &str, kind: &str) -> Payload {
    let mut payload = Payload::with_capacity(10);
    payload.insert(TENANT, tenant);
    payload.insert(TYPE, kind);
    payload
}

pub(super) fn count(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

pub(super) fn int_field(payload: &HashMap<String, Value>, field: &str) -> Option<i64> {
    match payload.get(field)?.kind.as_ref()? {
        Kind::IntegerValue(value) => Some(*value),
        Kind::DoubleValue(value) => Some(*value as i64),
        _ => None,
    }
}

fn parse_data<T: serde::de::DeserializeOwned>(payload: &HashMap<String, Value>) -> Result<T> {
    let data = string_field(payload, DATA).ok_or_else(|| Error::Vector {
        message: "metadata entry without data".to_string(),
    })?;
    serde_json::from_str(data).map_err(|err| Error::Vector {
        message: format!("metadata entry unreadable: {err}"),
    })
}

fn registry_entry(point: &RetrievedPoint) -> Result<RegistryEntry> {
    let payload = &point.payload;
    let head: Manifest = parse_data(payload).map_err(|err| {
        let id = match point
            .id
            .as_ref()
            .and_then(|id| id.point_id_options.as_ref())
        {
            Some(PointIdOptions::Uuid(uuid)) => uuid.clone(),
            _ => String::new(),
        };
        Error::Vector {
            message: format!("{META_COLLECTION} entry {id}: {err}"),
        }
    })?;
    if head.schema_version != crate::manifest::SCHEMA_VERSION {
        return Err(Error::SchemaVersion {
            path: format!("qdrant:{META_COLLECTION}/{}", head.collection).into(),
            found: head.schema_version,
            expected: crate::manifest::SCHEMA_VERSION,
        });
    }
    let number = |field| {
        int_field(payload, field)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
    };
    let dirty = matches!(
        payload.get("dirty").and_then(|v| v.kind.as_ref()),
        Some(Kind::BoolValue(true))
    );
    Ok(RegistryEntry {
        dirty,
        files: number("files"),
        chunks: number("chunks"),
        embedded_chunks: number("embedded_chunks"),
        head,
    })
}
