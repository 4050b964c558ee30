//! Per-key search history (recent queries) and bookmarks of results, persisted as one JSON file
//! per key under `data_dir/server/users/`, written atomically. Bookmarks are written at once;
//! history, which changes with every search, at most once a second (and at shutdown) by
//! [`UserStore::flush_every`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::server::auth::Caller;

/// Why a key's history or bookmarks could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    /// The key's file exists but cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key's file cannot be written.
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The data cannot be serialized.
    #[error("serializing user data: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The blocking task that writes the file panicked or was cancelled.
    #[error("writing user data: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The key has as many bookmarks as it may.
    #[error("at most {max} bookmarks per key")]
    TooManyBookmarks { max: usize },
}

/// One query of a key's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    pub query: String,
    /// Sources asked (empty: all).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Hits in the fused list.
    pub hits: usize,
}

/// A saved result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Bookmark {
    pub id: String,
    /// The hit as the search returned it.
    #[schema(value_type = Object)]
    pub hit: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The query that found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UserData {
    #[serde(default)]
    history: Vec<HistoryEntry>,
    #[serde(default)]
    bookmarks: Vec<Bookmark>,
    /// Changed since the last write.
    #[serde(skip)]
    dirty: bool,
}

/// Most bookmarks per key.
pub const MAX_BOOKMARKS: usize = 1000;

/// Histories and bookmarks of every key.
#[derive(Debug)]
pub struct UserStore {
    dir: PathBuf,
    history_limit: usize,
    users: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<UserData>>>>,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| duration.as_secs())
}

impl UserStore {
    pub fn new(dir: PathBuf, history_limit: usize) -> Self {
        UserStore {
            dir,
            history_limit: history_limit.max(1),
            users: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, caller: &Caller) -> PathBuf {
        // Caller ids are hex digits or `local`: safe as file names.
        self.dir.join(format!("{}.json", caller.0))
    }

    async fn user(
        &self,
        caller: &Caller,
    ) -> Result<Arc<tokio::sync::Mutex<UserData>>, UserStoreError> {
        let mut users = self.users.lock().await;
        if let Some(user) = users.get(&caller.0) {
            return Ok(Arc::clone(user));
        }
        let path = self.path(caller);
        let data = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                tracing::warn!(path = %path.display(), error = %err, "unreadable user data; starting afresh");
                UserData::default()
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => UserData::default(),
            Err(source) => return Err(UserStoreError::Read { path, source }),
        };
        let user = Arc::new(tokio::sync::Mutex::new(data));
        users.insert(caller.0.clone(), Arc::clone(&user));
        Ok(user)
    }

    async fn save(&self, caller: &Caller, data: &UserData) -> Result<(), UserStoreError> {
        let path = self.path(caller);
        let bytes = serde_json::to_vec(data)?;
        let dir = self.dir.clone();
        let target = path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            aiex_indexer::atomic_write(&target, &bytes)
        })
        .await?
        .map_err(|source| UserStoreError::Write { path, source })
    }

    /// Remembers a query (the newest first; the oldest forgotten beyond the limit). Written by
    /// the next [`UserStore::flush`].
    pub async fn record_query(
        &self,
        caller: &Caller,
        entry: HistoryEntry,
    ) -> Result<(), UserStoreError> {
        let user = self.user(caller).await?;
        let mut data = user.lock().await;
        data.history.insert(0, entry);
        data.history.truncate(self.history_limit);
        data.dirty = true;
        Ok(())
    }

    /// Writes every key's data changed since the last write.
    pub async fn flush(&self) {
        let users: Vec<(String, Arc<tokio::sync::Mutex<UserData>>)> = self
            .users
            .lock()
            .await
            .iter()
            .map(|(id, user)| (id.clone(), Arc::clone(user)))
            .collect();
        for (id, user) in users {
            let mut data = user.lock().await;
            if !data.dirty {
                continue;
            }
            match self.save(&Caller(id), &data).await {
                Ok(()) => data.dirty = false,
                Err(err) => tracing::warn!(error = %err, "user data not written"),
            }
        }
    }

    /// Flushes once a second until `shutdown`, then a last time.
    pub async fn flush_every(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush().await,
                () = shutdown.cancelled() => break,
            }
        }
        self.flush().await;
    }

    pub async fn history(
        &self,
        caller: &Caller,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, UserStoreError> {
        let user = self.user(caller).await?;
        let data = user.lock().await;
        Ok(data.history.iter().take(limit).cloned().collect())
    }

    pub async fn clear_history(&self, caller: &Caller) -> Result<(), UserStoreError> {
        let user = self.user(caller).await?;
        let mut data = user.lock().await;
        data.history.clear();
        self.save(caller, &data).await?;
        data.dirty = false;
        Ok(())
    }

    pub async fn bookmarks(&self, caller: &Caller) -> Result<Vec<Bookmark>, UserStoreError> {
        let user = self.user(caller).await?;
        let data = user.lock().await;
        Ok(data.bookmarks.clone())
    }

    pub async fn add_bookmark(
        &self,
        caller: &Caller,
        hit: serde_json::Value,
        note: Option<String>,
        query: Option<String>,
    ) -> Result<Bookmark, UserStoreError> {
        let user = self.user(caller).await?;
        let mut data = user.lock().await;
        if data.bookmarks.len() >= MAX_BOOKMARKS {
            return Err(UserStoreError::TooManyBookmarks { max: MAX_BOOKMARKS });
        }
        let bookmark = Bookmark {
            id: uuid::Uuid::new_v4().simple().to_string(),
            hit,
            note,
            query,
            created_at: now_secs(),
        };
        data.bookmarks.push(bookmark.clone());
        self.save(caller, &data).await?;
        data.dirty = false;
        Ok(bookmark)
    }

    /// Removes a bookmark; false when the key has none with this id.
    pub async fn remove_bookmark(&self, caller: &Caller, id: &str) -> Result<bool, UserStoreError> {
        let user = self.user(caller).await?;
        let mut data = user.lock().await;
        let before = data.bookmarks.len();
        data.bookmarks.retain(|bookmark| bookmark.id != id);
        if data.bookmarks.len() == before {
            return Ok(false);
        }
        self.save(caller, &data).await?;
        data.dirty = false;
        Ok(true)
    }
}
