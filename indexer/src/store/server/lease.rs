//! The indexing lease of an Aiex collection, kept in the metadata collection: one point per
//! collection naming its holder (host, process, a random part) and when it expires. A run takes
//! it before touching anything and holds it to the end, so two nodes never index one collection
//! at once; a run that dies loses it when it expires.
//!
//! Taking it is one conditional upsert: the point is inserted when absent, and replaced only when
//! it has expired or is already ours (Qdrant's `update_filter`); the point is then read back from
//! a majority of replicas to learn who holds it. A thread renews it every third of its duration; a renewal
//! that finds another holder marks the lease lost, and the run stops at its next write.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qdrant_client::qdrant::{
    Condition, Filter, NamedVectors, PointStruct, Range, UpdateMode, UpsertPointsBuilder,
};

use super::meta::{
    base_payload, count, int_field, meta_uuid, MetaStore, LEASE, META_COLLECTION, META_ORDER,
};
use super::payload::string_field;
use crate::error::{Error, Result};

const HOLDER: &str = "holder";
const EXPIRES: &str = "expires_at_ms";

/// Who holds a lease and until when (milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub expires_at_ms: i64,
}

/// A held lease; renewed in the background, released on drop.
pub struct Lease {
    meta: Arc<MetaStore>,
    tenant: String,
    holder: String,
    lost: Arc<AtomicBool>,
    /// When the lease last confirmed as ours expires (milliseconds since the Unix epoch): past
    /// it, another run may hold it, even if no renewal could tell (the server unreachable).
    expires_at_ms: Arc<AtomicI64>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("tenant", &self.tenant)
            .field("holder", &self.holder)
            .finish()
    }
}

/// A holder id for this process: host name, process id and a random part.
pub fn new_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl MetaStore {
    /// Takes (or renews) the lease of `tenant` for `holder` for `duration`, unless another
    /// holder's lease is still running: returns the holder found after the write.
    ///
    /// `renew_only`: replaces only a lease that is ours (never takes over an expired one, never
    /// creates one).
    pub fn try_lease(
        &self,
        tenant: &str,
        holder: &str,
        duration: Duration,
        renew_only: bool,
    ) -> Result<LeaseHolder> {
        let id = meta_uuid(tenant, LEASE, "");
        let now = now_ms();
        let expires = now.saturating_add(count(duration.as_millis()));
        let mut payload = base_payload(tenant, LEASE);
        payload.insert(HOLDER, holder.to_string());
        payload.insert(EXPIRES, expires);
        let point = PointStruct::new(id.clone(), NamedVectors::default(), payload);
        let ours = Condition::matches(HOLDER, holder.to_string());
        let (filter, mode) = if renew_only {
            (Filter::must([ours]), UpdateMode::UpdateOnly)
        } else {
            let expired = Condition::range(
                EXPIRES,
                Range {
                    lt: Some(now as f64),
                    ..Range::default()
                },
            );
            (Filter::should([expired, ours]), UpdateMode::Upsert)
        };
        self.conn
            .call(move |client| {
                let request = UpsertPointsBuilder::new(META_COLLECTION, vec![point.clone()])
                    .update_filter(filter.clone())
                    .update_mode(mode)
                    .ordering(META_ORDER)
                    .wait(true);
                async move { client.upsert_points(request).await.map(drop) }
            })
            .map_err(|err| self.conn.error("taking the indexing lease", &err))?;
        let found = self.get(vec![id])?;
        let payload = found.first().map(|point| &point.payload);
        Ok(LeaseHolder {
            holder: payload
                .and_then(|p| string_field(p, HOLDER))
                .unwrap_or_default()
                .to_string(),
            expires_at_ms: payload.and_then(|p| int_field(p, EXPIRES)).unwrap_or(0),
        })
    }

    /// Releases the lease of `tenant` if `holder` holds it.
    pub fn release_lease(&self, tenant: &str, holder: &str) -> Result<()> {
        self.delete(Filter::must([
            Condition::has_id([meta_uuid(tenant, LEASE, "")]),
            Condition::matches(HOLDER, holder.to_string()),
        ]))
    }
}

impl Lease {
    /// The indexing lease of collection `name` for `vector.lease_secs`, over `meta`.
    pub fn for_collection(
        config: &aiex_config::Config,
        meta: &Arc<MetaStore>,
        name: &str,
    ) -> Result<Lease> {
        Self::acquire(
            Arc::clone(meta),
            name,
            Duration::from_secs(config.vector.lease_secs),
        )
    }

    /// Takes the lease of `tenant` for `duration` (renewed every third of it), or says who holds
    /// it and for how long.
    pub fn acquire(meta: Arc<MetaStore>, tenant: &str, duration: Duration) -> Result<Lease> {
        let holder = new_holder();
        let found = meta.try_lease(tenant, &holder, duration, false)?;
        if found.holder != holder {
            let left = (found.expires_at_ms - now_ms()).max(0);
            return Err(Error::Leased {
                name: tenant.to_string(),
                holder: found.holder,
                expires_in_secs: u64::try_from(left).unwrap_or(0).div_ceil(1000),
            });
        }
        let lost = Arc::new(AtomicBool::new(false));
        let expires_at_ms = Arc::new(AtomicI64::new(found.expires_at_ms));
        let (stop, stopped) = mpsc::channel::<()>();
        let renewal = Renewal {
            meta: Arc::clone(&meta),
            tenant: tenant.to_string(),
            holder: holder.clone(),
            duration,
            lost: Arc::clone(&lost),
            expires_at_ms: Arc::clone(&expires_at_ms),
        };
        let renewer = std::thread::Builder::new()
            .name("aiex-lease".to_string())
            .spawn(move || renewal.run(&stopped))
            .map_err(|err| Error::Vector {
                message: format!("starting the lease renewal: {err}"),
            })?;
        Ok(Lease {
            meta,
            tenant: tenant.to_string(),
            holder,
            lost,
            expires_at_ms,
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }

    /// Fails when the lease was lost (another run took it over) or may have been (it expired
    /// before a renewal could be confirmed).
    pub fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) || now_ms() >= self.expires_at_ms.load(Ordering::SeqCst)
        {
            Err(Error::LeaseLost {
                name: self.tenant.clone(),
            })
        } else {
            Ok(())
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }
}

/// What the renewal thread needs.
struct Renewal {
    meta: Arc<MetaStore>,
    tenant: String,
    holder: String,
    duration: Duration,
    lost: Arc<AtomicBool>,
    expires_at_ms: Arc<AtomicI64>,
}

impl Renewal {
    /// Renews the lease every third of its duration until told to stop; a renewal that finds
    /// another holder marks the lease lost and ends. A failed request is tried again at the next
    /// turn (the lease stays usable until its confirmed expiry).
    fn run(self, stopped: &mpsc::Receiver<()>) {
        let (tenant, holder) = (self.tenant.as_str(), self.holder.as_str());
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(self.duration / 3) {
            match self.meta.try_lease(tenant, holder, self.duration, true) {
                Ok(found) if found.holder == holder => {
                    self.expires_at_ms
                        .store(found.expires_at_ms, Ordering::SeqCst);
                }
                Ok(found) => {
                    tracing::error!(tenant, holder = %found.holder, "indexing lease lost");
                    self.lost.store(true, Ordering::SeqCst);
                    return;
                }
                Err(err) => tracing::warn!(tenant, "renewing the indexing lease: {err}"),
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        if let Err(err) = self.meta.release_lease(&self.tenant, &self.holder) {
            tracing::warn!(tenant = %self.tenant, "releasing the indexing lease: {err}");
        }
    }
}
