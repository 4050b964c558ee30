//! The query-side embedding model, shared by every searcher of a process.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::embed::{load_embedder, Embedder};
use crate::error::{Error, Result};

/// Most query vectors a [`QueryEmbedder`] remembers.
const QUERY_VECTOR_CACHE: usize = 512;

/// The query-side embedding model, loaded on first use and shared by every searcher of a process
/// (one model in memory; a query asked of several sources is embedded once).
pub struct QueryEmbedder {
    pub(super) embedder: Mutex<Option<Box<dyn Embedder>>>,
    /// The configuration to load the embedder from (None when embeddings are disabled).
    config: Option<Box<aiex_config::Config>>,
    recent: Mutex<HashMap<String, Arc<Vec<f32>>>>,
}

impl std::fmt::Debug for QueryEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEmbedder").finish_non_exhaustive()
    }
}

impl QueryEmbedder {
    /// The configured model (None when embeddings are disabled).
    pub fn from_config(config: &aiex_config::Config) -> Self {
        QueryEmbedder {
            embedder: Mutex::new(None),
            config: config.embedding.enabled.then(|| Box::new(config.clone())),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// The vector of `query`.
    pub fn embed(&self, query: &str) -> Result<Arc<Vec<f32>>> {
        if let Some(vector) = self.recent.lock().get(query) {
            return Ok(Arc::clone(vector));
        }
        let mut slot = self.embedder.lock();
        // Another thread may have embedded the same query while this one waited.
        if let Some(vector) = self.recent.lock().get(query) {
            return Ok(Arc::clone(vector));
        }
        let embedder = match &mut *slot {
            Some(embedder) => embedder,
            None => {
                let config = self.config.as_ref().ok_or(Error::EmbeddingsDisabled)?;
                slot.insert(load_embedder(config)?)
            }
        };
        let vector = Arc::new(embedder.embed(&[query.to_string()])?.pop().ok_or_else(|| {
            Error::Embedding {
                message: "the model returned no vector".to_string(),
            }
        })?);
        let mut recent = self.recent.lock();
        if recent.len() >= QUERY_VECTOR_CACHE {
            recent.clear();
        }
        recent.insert(query.to_string(), Arc::clone(&vector));
        Ok(vector)
    }
}
