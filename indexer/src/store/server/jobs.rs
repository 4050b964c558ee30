//! Batch indexing jobs shared by every node of a deployment (server mode): a job's record and one
//! entry per directory of it live in the metadata collection, so a job submitted to any node is
//! seen, and worked, by every node that runs jobs. A node works a directory only while it holds
//! that directory's claim, a lease like a collection's ([`super::lease::Lease`], named by
//! [`job_claim`]): one node at a time, and a node that dies loses it when it expires.
//!
//! The entries' contents are JSON documents of the API's own (opaque here).

use qdrant_client::qdrant::{
    value::Kind, Condition, Filter, NamedVectors, PointStruct, SetPayloadPointsBuilder,
};
use qdrant_client::Payload;

use super::meta::{base_payload, int_field, meta_uuid, MetaStore, META_COLLECTION, META_ORDER};
use super::meta::{TENANT, TYPE};
use super::payload::string_field;
use crate::error::Result;

const JOB: &str = "job";
const JOB_ITEM: &str = "job_item";
const DATA: &str = "data";
const CANCELLED: &str = "cancelled";
const ENDED_AT: &str = "ended_at";

/// A job as every node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedJob {
    pub id: String,
    /// The job's record (JSON).
    pub data: String,
    /// Set by a cancel on any node.
    pub cancelled: bool,
    /// When the job ended (seconds since the epoch), as the first node to see it end recorded.
    pub ended_at: Option<u64>,
}

/// The tenant of a job's entries.
fn job_tenant(id: &str) -> String {
    format!("job:{id}")
}

/// The name of the claim (lease) on directory `index` of job `id`.
pub fn job_claim(id: &str, index: usize) -> String {
    format!("job:{id}:{index}")
}

impl MetaStore {
    /// Writes job `id`'s record, cancelled or not.
    pub fn put_job(&self, id: &str, data: &str, cancelled: bool) -> Result<()> {
        let tenant = job_tenant(id);
        let mut payload = base_payload(&tenant, JOB);
        payload.insert(DATA, data.to_string());
        payload.insert(CANCELLED, cancelled);
        self.upsert(vec![PointStruct::new(
            meta_uuid(&tenant, JOB, ""),
            NamedVectors::default(),
            payload,
        )])
    }

    /// Every job the deployment holds, read from a majority of replicas.
    pub fn jobs(&self) -> Result<Vec<SharedJob>> {
        let filter = Filter::must([Condition::matches(TYPE, JOB.to_string())]);
        let mut jobs: Vec<SharedJob> = self
            .scroll(filter, true)?
            .iter()
            .filter_map(|point| {
                let tenant = string_field(&point.payload, TENANT)?;
                Some(SharedJob {
                    id: tenant.strip_prefix("job:")?.to_string(),
                    data: string_field(&point.payload, DATA)?.to_string(),
                    cancelled: matches!(
                        point.payload.get(CANCELLED).and_then(|v| v.kind.as_ref()),
                        Some(Kind::BoolValue(true))
                    ),
                    ended_at: int_field(&point.payload, ENDED_AT)
                        .and_then(|at| u64::try_from(at).ok()),
                })
            })
            .collect();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(jobs)
    }

    /// Writes the entries of directories of job `id`: (index, JSON).
    pub fn put_job_items(&self, id: &str, items: &[(usize, String)]) -> Result<()> {
        let tenant = job_tenant(id);
        let points = items
            .iter()
            .map(|(index, data)| {
                let mut payload = base_payload(&tenant, JOB_ITEM);
                payload.insert("index", *index as i64);
                payload.insert(DATA, data.clone());
                PointStruct::new(
                    meta_uuid(&tenant, JOB_ITEM, &index.to_string()),
                    NamedVectors::default(),
                    payload,
                )
            })
            .collect();
        self.upsert(points)
    }

    /// The entries of job `id`'s directories, by index, read from a majority of replicas.
    pub fn job_items(&self, id: &str) -> Result<Vec<(usize, String)>> {
        let filter = Filter::must([
            Condition::matches(TENANT, job_tenant(id)),
            Condition::matches(TYPE, JOB_ITEM.to_string()),
        ]);
        let mut items: Vec<(usize, String)> = self
            .scroll(filter, true)?
            .iter()
            .filter_map(|point| {
                let index = super::meta::int_field(&point.payload, "index")?;
                let data = string_field(&point.payload, DATA)?;
                Some((usize::try_from(index).ok()?, data.to_string()))
            })
            .collect();
        items.sort_by_key(|(index, _)| *index);
        Ok(items)
    }

    /// Records that job `id` ended at `at` (seconds since the epoch), unless a node recorded it
    /// already; a rewrite of the job's record (`put_job`) clears it.
    pub fn end_job(&self, id: &str, at: u64) -> Result<()> {
        let uuid = meta_uuid(&job_tenant(id), JOB, "");
        let mut payload = Payload::with_capacity(1);
        payload.insert(ENDED_AT, super::meta::count(at));
        let unset = Filter::must([Condition::has_id([uuid]), Condition::is_empty(ENDED_AT)]);
        self.conn
            .call(move |client| {
                let request = SetPayloadPointsBuilder::new(META_COLLECTION, payload.clone())
                    .points_selector(unset.clone())
                    .ordering(META_ORDER)
                    .wait(true);
                async move { client.set_payload(request).await.map(drop) }
            })
            .map_err(|err| self.conn.error("recording a job's end", &err))
    }

    /// Deletes job `id`: its record, the entries of its `items` directories and their claims.
    pub fn remove_job(&self, id: &str, items: usize) -> Result<()> {
        let mut tenants = vec![job_tenant(id)];
        tenants.extend((0..items).map(|index| job_claim(id, index)));
        self.delete(Filter::must([Condition::matches(TENANT, tenants)]))
    }

    /// The entry of directory `index` of job `id`.
    pub fn job_item(&self, id: &str, index: usize) -> Result<Option<String>> {
        let tenant = job_tenant(id);
        Ok(self
            .get(vec![meta_uuid(&tenant, JOB_ITEM, &index.to_string())])?
            .first()
            .and_then(|point| string_field(&point.payload, DATA).map(str::to_string)))
    }
}
