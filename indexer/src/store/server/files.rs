//! Exact and regex search in server mode: the `aiex_files` Qdrant collection holds every indexed
//! file of every Aiex collection (its tenant) with its path, language, content hash, content and
//! distinct folded trigrams (`trigrams`, an integer payload index), so any node narrows a pattern's
//! candidate files in Qdrant (the trigram condition becomes a nested filter) and verifies them on
//! their content, with no local file index ([`crate::grep`]).
//!
//! Layout: no vectors, everything is payload, kept on disk; sharded and replicated like the chunk
//! collections (`[vector]` settings). Point ids are UUIDs derived from (tenant, path).
//!
//! Sync: every server-mode run, after its keyword commit, brings the tenant's files in line with
//! the manifest ([`ServerFiles::sync`]): the (path, hash) pairs the server holds are compared with
//! the manifest's, what differs is written from the node's own file index (committed just before)
//! and what the manifest lacks is deleted. Nothing is recorded about it, so a run that died, a
//! collection indexed before this collection existed and a pushed collection all converge at the
//! next run or push.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, FieldType, Filter, GetPointsBuilder, IntegerIndexParamsBuilder,
    KeywordIndexParamsBuilder, NamedVectors, PayloadIncludeSelector, PointId, PointStruct,
    PointsIdsList, RetrievedPoint, UpsertPointsBuilder, VectorParamsMap, VectorsConfig,
};
use qdrant_client::Payload;

use super::meta::{int_field, meta_uuid, MetaStore};
use super::payload::string_field;
use super::ID_BATCH;
use crate::error::Result;
use crate::grep::store::{FileStore, StoredFile};
use crate::grep::trigrams::{text_trigrams, TrigramQuery};
use crate::lang::Language;
use crate::manifest::Manifest;

/// The Qdrant collection holding the files of every Aiex collection.
pub const FILES_COLLECTION: &str = "aiex_files";
const TENANT: &str = "tenant";
const PATH: &str = "path";
const LANGUAGE: &str = "language";
const HASH: &str = "hash";
const SIZE: &str = "size";
const CONTENT: &str = "content";
const TRIGRAMS: &str = "trigrams";
/// The entry type in point ids (they are derived like the metadata collection's).
const FILE_ENTRY: &str = "grep-file";
/// Most payload bytes (roughly) per upsert request; the server takes 32 MB by default.
const WRITE_BYTES: usize = 8 << 20;
/// Most content bytes (roughly) per read request.
const READ_BYTES: u64 = 16 << 20;

/// A candidate file: its point and its size, read before its content.
#[derive(Debug, Clone)]
pub struct FileRef {
    id: PointId,
    pub size: u64,
}

/// What [`ServerFiles::sync`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilesSynced {
    pub written: usize,
    pub deleted: usize,
}

/// The `aiex_files` collection of one server, over the process's shared metadata connection.
pub struct ServerFiles {
    meta: Arc<MetaStore>,
}

impl std::fmt::Debug for ServerFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerFiles").finish_non_exhaustive()
    }
}

impl ServerFiles {
    /// The server's file collection. With `create`, it is created (with its payload indexes)
    /// when absent; without, `None` when it does not exist yet (nothing was indexed with it).
    pub fn connect(config: &aiex_config::Config, create: bool) -> Result<Option<ServerFiles>> {
        let files = ServerFiles {
            meta: MetaStore::connect(config)?,
        };
        let exists = files
            .meta
            .conn
            .call(|client| async move { client.collection_exists(FILES_COLLECTION).await })
            .map_err(|err| files.error("checking the file collection", &err))?;
        if !exists {
            if !create {
                return Ok(None);
            }
            files.create()?;
        }
        Ok(Some(files))
    }

    fn error(&self, doing: &str, err: &qdrant_client::QdrantError) -> crate::Error {
        self.meta.conn.error(doing, err)
    }

    fn create(&self) -> Result<()> {
        let options = &self.meta.conn.options;
        let request = CreateCollectionBuilder::new(FILES_COLLECTION)
            .vectors_config(VectorsConfig::from(
                qdrant_client::qdrant::vectors_config::Config::from(VectorParamsMap {
                    map: HashMap::new(),
                }),
            ))
            .shard_number(options.shard_number)
            .replication_factor(options.replication_factor)
            .write_consistency_factor(options.write_consistency_factor)
            .on_disk_payload(true)
            .build();
        let created = self.meta.conn.call(move |client| {
            let request = request.clone();
            async move { client.create_collection(request).await }
        });
        super::rpc::created(created)
            .map_err(|err| self.error("creating the file collection", &err))?;
        for (field, kind) in [
            (TENANT, FieldType::Keyword),
            (PATH, FieldType::Keyword),
            (TRIGRAMS, FieldType::Integer),
        ] {
            let mut builder =
                CreateFieldIndexCollectionBuilder::new(FILES_COLLECTION, field, kind).wait(true);
            builder = match field {
                TENANT => {
                    builder.field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                }
                // Trigrams are only ever matched, never compared by range.
                TRIGRAMS => builder.field_index_params(IntegerIndexParamsBuilder::new(true, false)),
                _ => builder,
            };
            let request = builder.build();
            self.meta
                .conn
                .call(move |client| {
                    let request = request.clone();
                    async move { client.create_field_index(request).await }
                })
                .map_err(|err| self.error("indexing the file collection", &err))?;
        }
        Ok(())
    }

    fn tenant_filter(tenant: &str, mut must: Vec<Condition>) -> Filter {
        must.insert(0, Condition::matches(TENANT, tenant.to_string()));
        Filter::must(must)
    }

    /// Brings the files the server holds for `tenant` in line with `manifest`, writing contents
    /// from `local` (the node's file index at the manifest's generation). `check` runs before
    /// every write (the run's lease).
    pub fn sync(
        &self,
        tenant: &str,
        manifest: &Manifest,
        local: &FileStore,
        check: &dyn Fn() -> Result<()>,
    ) -> Result<FilesSynced> {
        let held = self.hashes(tenant)?;
        let mut synced = FilesSynced::default();
        let mut batch = Vec::new();
        let mut bytes = 0;
        for (path, record) in &manifest.files {
            if held.get(path) == Some(&record.hash) {
                continue;
            }
            // A file the node could not store (unreadable since) is left out, as locally.
            let Some(file) = local.file_by_path(path)? else {
                continue;
            };
            let trigrams: Vec<i64> = text_trigrams(&file.content)
                .into_iter()
                .filter_map(|trigram| i64::try_from(trigram).ok())
                .collect();
            bytes += file.content.len() + trigrams.len() * 10;
            let mut payload = Payload::with_capacity(7);
            payload.insert(TENANT, tenant);
            payload.insert(PATH, path.clone());
            payload.insert(LANGUAGE, record.language.name());
            payload.insert(HASH, record.hash.clone());
            payload.insert(SIZE, super::meta::count(file.content.len()));
            payload.insert(CONTENT, file.content);
            payload.insert(TRIGRAMS, trigrams);
            batch.push(PointStruct::new(
                meta_uuid(tenant, FILE_ENTRY, path),
                NamedVectors::default(),
                payload,
            ));
            if batch.len() >= super::UPSERT_BATCH || bytes >= WRITE_BYTES {
                synced.written += batch.len();
                check()?;
                self.upsert(std::mem::take(&mut batch))?;
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            synced.written += batch.len();
            check()?;
            self.upsert(batch)?;
        }
        let stale: Vec<PointId> = held
            .keys()
            .filter(|path| !manifest.files.contains_key(*path))
            .map(|path| PointId::from(meta_uuid(tenant, FILE_ENTRY, path)))
            .collect();
        synced.deleted = stale.len();
        for ids in stale.chunks(ID_BATCH) {
            check()?;
            let ids = ids.to_vec();
            self.meta
                .conn
                .call(move |client| {
                    let request = DeletePointsBuilder::new(FILES_COLLECTION)
                        .points(PointsIdsList { ids: ids.clone() })
                        .wait(true);
                    async move { client.delete_points(request).await.map(drop) }
                })
                .map_err(|err| self.error("deleting files", &err))?;
        }
        Ok(synced)
    }

    fn upsert(&self, points: Vec<PointStruct>) -> Result<()> {
        self.meta
            .conn
            .call(move |client| {
                let request = UpsertPointsBuilder::new(FILES_COLLECTION, points.clone()).wait(true);
                async move { client.upsert_points(request).await.map(drop) }
            })
            .map_err(|err| self.error("writing files", &err))
    }

    /// The path and content hash of every file the server holds for `tenant`.
    fn hashes(&self, tenant: &str) -> Result<BTreeMap<String, String>> {
        let points = self.scroll(Self::tenant_filter(tenant, Vec::new()), vec![PATH, HASH])?;
        Ok(points
            .iter()
            .filter_map(|point| {
                let path = string_field(&point.payload, PATH)?;
                let hash = string_field(&point.payload, HASH).unwrap_or_default();
                Some((path.to_string(), hash.to_string()))
            })
            .collect())
    }

    /// Deletes every file of `tenant`.
    pub fn remove(&self, tenant: &str) -> Result<()> {
        let filter = Self::tenant_filter(tenant, Vec::new());
        self.meta
            .conn
            .call(move |client| {
                let request = DeletePointsBuilder::new(FILES_COLLECTION)
                    .points(filter.clone())
                    .wait(true);
                async move { client.delete_points(request).await.map(drop) }
            })
            .map_err(|err| self.error("deleting files", &err))
    }

    /// Number of files of `tenant`.
    pub fn count(&self, tenant: &str) -> Result<u64> {
        let filter = Self::tenant_filter(tenant, Vec::new());
        let counted = self
            .meta
            .conn
            .call(move |client| {
                let request = CountPointsBuilder::new(FILES_COLLECTION)
                    .filter(filter.clone())
                    .exact(true);
                async move { client.count(request).await }
            })
            .map_err(|err| self.error("counting files", &err))?;
        Ok(counted.result.map_or(0, |result| result.count))
    }

    /// The files of `tenant` that satisfy `query` (every file for [`TrigramQuery::All`]), with
    /// their sizes, in no particular order.
    pub fn candidates(&self, tenant: &str, query: &TrigramQuery) -> Result<Vec<FileRef>> {
        let mut must = Vec::new();
        if let Some(condition) = trigram_condition(query) {
            must.push(condition);
        }
        let points = self.scroll(Self::tenant_filter(tenant, must), vec![SIZE])?;
        Ok(points
            .into_iter()
            .filter_map(|point| {
                let size = int_field(&point.payload, SIZE).unwrap_or(0);
                Some(FileRef {
                    id: point.id?,
                    size: u64::try_from(size).unwrap_or(0),
                })
            })
            .collect())
    }

    /// Reads back the files of `refs` (those since deleted are left out), a few requests of
    /// bounded size.
    pub fn read(&self, refs: &[FileRef]) -> Result<Vec<StoredFile>> {
        let mut files = Vec::with_capacity(refs.len());
        let mut start = 0;
        while start < refs.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < refs.len() && (end == start || bytes + refs[end].size <= READ_BYTES) {
                bytes += refs[end].size;
                end += 1;
            }
            let ids: Vec<PointId> = refs[start..end].iter().map(|r| r.id.clone()).collect();
            let points = self
                .meta
                .conn
                .call(move |client| {
                    let request = GetPointsBuilder::new(FILES_COLLECTION, ids.clone())
                        .with_payload(include(&[PATH, LANGUAGE, CONTENT]))
                        .with_vectors(false);
                    async move { client.get_points(request).await }
                })
                .map_err(|err| self.error("reading files", &err))?
                .result;
            files.extend(points.iter().filter_map(|point| {
                Some(StoredFile {
                    path: string_field(&point.payload, PATH)?.to_string(),
                    language: string_field(&point.payload, LANGUAGE).and_then(Language::from_name),
                    content: string_field(&point.payload, CONTENT)
                        .unwrap_or_default()
                        .to_string(),
                })
            }));
            start = end;
        }
        Ok(files)
    }

    /// The file of `tenant` stored under `path`, if any.
    pub fn file_by_path(&self, tenant: &str, path: &str) -> Result<Option<StoredFile>> {
        let id = PointId::from(meta_uuid(tenant, FILE_ENTRY, path));
        Ok(self
            .read(&[FileRef { id, size: 0 }])?
            .into_iter()
            .find(|file| file.path == path))
    }

    /// Every point matching `filter`, with the payload `fields`.
    fn scroll(&self, filter: Filter, fields: Vec<&'static str>) -> Result<Vec<RetrievedPoint>> {
        super::meta::scroll_all(
            &self.meta.conn,
            FILES_COLLECTION,
            filter,
            Some(&fields),
            false,
        )
        .map_err(|err| self.error("reading files", &err))
    }
}

/// A payload selector of `fields`.
pub(super) fn include(fields: &[&str]) -> PayloadIncludeSelector {
    PayloadIncludeSelector::new(fields.iter().map(|f| f.to_string()).collect::<Vec<_>>())
}

/// The filter condition of a trigram query (`None` for [`TrigramQuery::All`]).
fn trigram_condition(query: &TrigramQuery) -> Option<Condition> {
    let nested = |parts: &[TrigramQuery], and: bool| -> Option<Condition> {
        let conditions: Vec<Condition> = parts.iter().filter_map(trigram_condition).collect();
        if and {
            (!conditions.is_empty()).then(|| Condition::from(Filter::must(conditions)))
        } else if conditions.len() < parts.len() {
            // One alternative matches everything: so does the disjunction.
            None
        } else {
            Some(Condition::from(Filter::should(conditions)))
        }
    };
    match query {
        TrigramQuery::All => None,
        TrigramQuery::Trigram(trigram) => i64::try_from(*trigram)
            .ok()
            .map(|value| Condition::matches(TRIGRAMS, value)),
        TrigramQuery::And(parts) => nested(parts, true),
        TrigramQuery::Or(parts) => nested(parts, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disjunction_with_an_unconstrained_branch_constrains_nothing() {
        let query = TrigramQuery::Or(vec![TrigramQuery::Trigram(7), TrigramQuery::All]);
        assert!(trigram_condition(&query).is_none());
        let query = TrigramQuery::And(vec![TrigramQuery::Trigram(7), TrigramQuery::All]);
        assert!(trigram_condition(&query).is_some());
        assert!(trigram_condition(&TrigramQuery::And(vec![TrigramQuery::All])).is_none());
    }
}
