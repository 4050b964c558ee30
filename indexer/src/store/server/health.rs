//! What a node sees of the Qdrant server or cluster, for readiness: the server answers, and every
//! shard of every Qdrant collection Aiex uses has an active replica (searches can be answered).

use qdrant_client::qdrant::ReplicaState;

use super::MetaStore;
use crate::error::{Error, Result};

/// The server's version and the state of Aiex's Qdrant collections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHealth {
    pub url: String,
    pub version: String,
    pub collections: Vec<CollectionHealth>,
}

/// One Qdrant collection's shards, as the node asked sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionHealth {
    pub name: String,
    pub shards: u32,
    pub replicas: u32,
    pub active_replicas: u32,
    /// Shards none of whose replicas is active: their points cannot be searched now.
    pub unavailable_shards: Vec<u32>,
}

impl ClusterHealth {
    /// Ok when every shard has an active replica, else what is missing.
    pub fn verdict(&self) -> std::result::Result<(), String> {
        let missing: Vec<String> = self
            .collections
            .iter()
            .filter(|collection| !collection.unavailable_shards.is_empty())
            .map(|collection| {
                format!(
                    "{}: shards {:?} have no active replica",
                    collection.name, collection.unavailable_shards
                )
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("Qdrant at {}: {}", self.url, missing.join("; ")))
        }
    }
}

/// Asks `vector.url`, over the process's shared connection (checked for version and key when it
/// was made), for its version and the shard states of every Qdrant collection whose name starts
/// with `aiex_`. Each request is made once: a probe reports, it does not retry. Blocking.
pub fn cluster_health(config: &aiex_config::Config) -> Result<ClusterHealth> {
    let meta = MetaStore::connect(config)?;
    let store = &meta.conn;
    let url = store.url.clone();
    let version = store
        .call_once(|client| async move { client.health_check().await })
        .map_err(|err| store.error("checking health", &err))?
        .version;
    let mut names: Vec<String> = store
        .call_once(|client| async move { client.list_collections().await })
        .map_err(|err| store.error("listing collections", &err))?
        .collections
        .into_iter()
        .map(|collection| collection.name)
        .filter(|name| name.starts_with("aiex_"))
        .collect();
    names.sort();
    let mut collections = Vec::with_capacity(names.len());
    for name in names {
        let request = name.clone();
        let info = store
            .call_once(move |client| async move { client.collection_cluster_info(request).await })
            .map_err(|err| Error::Vector {
                message: format!(
                    "Qdrant at {url}: reading the shards of {name}: {}",
                    super::rpc::status_message(&err)
                ),
            })?;
        let states = info
            .local_shards
            .iter()
            .map(|shard| (shard.shard_id, shard.state))
            .chain(
                info.remote_shards
                    .iter()
                    .map(|shard| (shard.shard_id, shard.state)),
            );
        let mut shards = std::collections::BTreeMap::<u32, bool>::new();
        let (mut replicas, mut active_replicas) = (0, 0);
        for (shard, state) in states {
            let active = state == ReplicaState::Active as i32;
            replicas += 1;
            active_replicas += u32::from(active);
            *shards.entry(shard).or_default() |= active;
        }
        collections.push(CollectionHealth {
            name,
            shards: u32::try_from(info.shard_count).unwrap_or(u32::MAX),
            replicas,
            active_replicas,
            unavailable_shards: shards
                .into_iter()
                .filter(|(_, active)| !active)
                .map(|(shard, _)| shard)
                .collect(),
        });
    }
    Ok(ClusterHealth {
        url,
        version,
        collections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(name: &str, unavailable: Vec<u32>) -> CollectionHealth {
        CollectionHealth {
            name: name.to_string(),
            shards: 3,
            replicas: 6,
            active_replicas: 6 - 2 * unavailable.len() as u32,
            unavailable_shards: unavailable,
        }
    }

    #[test]
    fn a_shard_without_an_active_replica_is_named() {
        let mut health = ClusterHealth {
            url: "http://q:6334".into(),
            version: "1.19.0".into(),
            collections: vec![
                collection("aiex_code", vec![]),
                collection("aiex_meta", vec![]),
            ],
        };
        assert_eq!(health.verdict(), Ok(()));
        health.collections[1] = collection("aiex_meta", vec![0]);
        assert_eq!(
            health.verdict(),
            Err("Qdrant at http://q:6334: aiex_meta: shards [0] have no active replica".into())
        );
    }
}
