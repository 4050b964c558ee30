//! Embeddings from a remote server through the `embed` role of the LLM layer
//! (`embedding.provider = "llm"`): an OpenAI-compatible `/v1/embeddings` or Ollama `/api/embed`.
//!
//! Threading: the LLM layer is async, the [`Embedder`] trait is not. One dedicated worker thread
//! owns a current-thread tokio runtime and the [`Llm`] client; [`RemoteEmbedder::embed`] sends it
//! a batch over a channel and waits for the answer on a reply channel. So the embedder works from
//! any thread (rayon pool threads, `spawn_blocking` threads) and never drives a runtime on a
//! thread that runs other async tasks. The worker ends when the embedder is dropped.

use std::sync::mpsc;
use std::thread;

use aiex_llm::{Llm, LlmError};

use crate::embed::{unit_length, Embedder};
use crate::error::{Error, Result};

/// Most texts sent in one embeddings request.
pub const REMOTE_BATCH: usize = 64;

type Reply = std::result::Result<Vec<Vec<f32>>, LlmError>;

/// One batch for the worker, and where its answer goes.
struct Job {
    texts: Vec<String>,
    reply: mpsc::SyncSender<Reply>,
}

/// Embeddings from the `embed` role of the configured LLM providers.
pub struct RemoteEmbedder {
    jobs: mpsc::Sender<Job>,
    model_id: String,
    dimension: usize,
}

impl std::fmt::Debug for RemoteEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEmbedder")
            .field("model_id", &self.model_id)
            .field("dimension", &self.dimension)
            .finish()
    }
}

fn embedding_error(message: impl Into<String>) -> Error {
    Error::Embedding {
        message: message.into(),
    }
}

impl RemoteEmbedder {
    /// Starts the worker for `config.llm` and checks, with one probe request, that the server
    /// answers with vectors of `embedding.dimension` (so a mismatch is found before anything is
    /// written to an index).
    pub fn from_config(config: &aiex_config::Config) -> Result<Self> {
        let model_id = config.embedding_model_key().ok_or_else(|| {
            embedding_error(
                "embedding.provider = \"llm\" needs an [llm] provider with embeddings \
                 (openai or ollama) in the embed role",
            )
        })?;
        let llm_config = config.llm.clone();
        let (jobs, receiver) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<std::result::Result<(), String>>(1);
        thread::Builder::new()
            .name("aiex-remote-embed".to_string())
            .spawn(move || worker(&llm_config, &receiver, &ready_tx))
            .map_err(|err| embedding_error(format!("starting the embedding worker: {err}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(embedding_error(message)),
            Err(_) => {
                return Err(embedding_error(
                    "the embedding worker stopped while starting",
                ))
            }
        }
        let mut embedder = RemoteEmbedder {
            jobs,
            model_id,
            dimension: config.embedding.dimension,
        };
        embedder.embed(&["dimension probe".to_string()])?;
        Ok(embedder)
    }

    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let (reply, answer) = mpsc::sync_channel(1);
        let stopped = || embedding_error("the embedding worker has stopped");
        self.jobs
            .send(Job {
                texts: texts.to_vec(),
                reply,
            })
            .map_err(|_| stopped())?;
        let vectors = answer.recv().map_err(|_| stopped())?.map_err(|err| {
            embedding_error(format!("{} via the LLM embed role: {err}", self.model_id))
        })?;
        if vectors.len() != texts.len() {
            return Err(embedding_error(format!(
                "{} returned {} vectors for {} texts",
                self.model_id,
                vectors.len(),
                texts.len()
            )));
        }
        if let Some(bad) = vectors.iter().find(|v| v.len() != self.dimension) {
            return Err(embedding_error(format!(
                "{} returns vectors of length {}, but embedding.dimension is {}; set \
                 embedding.dimension = {} (a collection embedded with another dimension needs \
                 --rebuild)",
                self.model_id,
                bad.len(),
                self.dimension,
                bad.len()
            )));
        }
        Ok(vectors.into_iter().map(unit_length).collect())
    }
}

/// The worker thread: builds the runtime and the client, then answers jobs until every sender is
/// dropped.
fn worker(
    config: &aiex_config::LlmConfig,
    jobs: &mpsc::Receiver<Job>,
    ready: &mpsc::SyncSender<std::result::Result<(), String>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(format!("starting the embedding runtime: {err}")));
            return;
        }
    };
    // The HTTP client is built inside the runtime it will run on.
    let llm = match runtime.block_on(async { Llm::from_config(config) }) {
        Ok(Some(llm)) => llm,
        Ok(None) => {
            let _ = ready.send(Err("no [llm] provider is configured".to_string()));
            return;
        }
        Err(err) => {
            let _ = ready.send(Err(format!("LLM configuration: {err}")));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    while let Ok(job) = jobs.recv() {
        let answer = runtime.block_on(llm.embed(&job.texts));
        // The caller may have gone away; nothing else waits for this answer.
        let _ = job.reply.send(answer);
    }
}

impl Embedder for RemoteEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(REMOTE_BATCH) {
            vectors.extend(self.embed_batch(batch)?);
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_embed_provider_the_error_says_what_to_set() {
        let mut config = aiex_config::Config::default();
        config.embedding.provider = aiex_config::EmbeddingProvider::Llm;
        let err = RemoteEmbedder::from_config(&config).expect_err("no provider");
        assert!(matches!(err, Error::Embedding { .. }), "{err}");
        assert!(err.to_string().contains("[llm] provider"), "{err}");
    }

    #[test]
    fn an_unreachable_server_is_an_embedding_error() {
        let mut config = aiex_config::Config::default();
        config.embedding.provider = aiex_config::EmbeddingProvider::Llm;
        // Port 9 (discard) on loopback: nothing listens there in tests.
        config.llm = aiex_config::LlmConfig::single(
            "http://127.0.0.1:9",
            "embedder",
            aiex_config::LlmProviderKind::OpenAi,
            None,
        );
        config.llm.max_retries = 0;
        let err = RemoteEmbedder::from_config(&config).expect_err("unreachable");
        assert!(matches!(err, Error::Embedding { .. }), "{err}");
        assert!(err.to_string().contains("llm:embedder"), "{err}");
    }
}
