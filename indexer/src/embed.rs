//! Dense embeddings: a local ONNX model run by fastembed on a dynamically loaded ONNX Runtime.
//!
//! Embedding is synchronous and CPU-bound (ONNX Runtime runs its own intra-op threads); callers run
//! it on a dedicated thread, never on async workers. The runtime and the model files are installed
//! by `scripts/setup`; their absence is a clear [`Error::SetupMissing`], never a panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

use crate::error::{Error, Result};

/// Most texts handed to the ONNX session at once: one `embed()` call keeps the activations of all
/// its batches alive, so callers slice their input to bound peak memory.
pub const MAX_TEXTS_PER_CALL: usize = 256;

/// Something that turns texts into unit-length vectors.
pub trait Embedder: Send {
    /// The model's identifier, recorded in the index manifest.
    fn model_id(&self) -> &str;
    /// Length of every vector.
    fn dimension(&self) -> usize;
    /// Embeds `texts`, one vector per text, in order.
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

pub use crate::remote::RemoteEmbedder;

/// The configured embedder: the local ONNX model, or the LLM layer's `embed` role when
/// `embedding.provider = "llm"`.
pub fn load_embedder(config: &aiex_config::Config) -> Result<Box<dyn Embedder>> {
    Ok(match config.embedding.provider {
        aiex_config::EmbeddingProvider::Onnx => Box::new(OnnxEmbedder::load(
            &OnnxEmbedderOptions::from_config(config),
        )?),
        aiex_config::EmbeddingProvider::Llm => Box::new(RemoteEmbedder::from_config(config)?),
    })
}

/// Files that make up a user-defined ONNX text model.
const MODEL_FILES: [&str; 5] = [
    "model.onnx",
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
];

/// Settings for [`OnnxEmbedder::load`].
#[derive(Debug, Clone)]
pub struct OnnxEmbedderOptions {
    pub runtime_path: PathBuf,
    pub model_dir: PathBuf,
    pub model_id: String,
    pub dimension: usize,
    pub max_length: usize,
    pub batch_size: usize,
    /// ONNX Runtime intra-op threads; 0 means one per core.
    pub threads: usize,
}

impl OnnxEmbedderOptions {
    pub fn from_config(config: &aiex_config::Config) -> Self {
        OnnxEmbedderOptions {
            runtime_path: config.runtime_path(),
            model_dir: config.model_dir(),
            model_id: config.embedding.model_id.clone(),
            dimension: config.embedding.dimension,
            max_length: config.embedding.max_length,
            batch_size: config.embedding.batch_size,
            threads: config.embedding.threads,
        }
    }
}

/// The ONNX Runtime library can be loaded once per process; later loads reuse the first outcome.
static RUNTIME: OnceLock<std::result::Result<ort::environment::Environment, String>> =
    OnceLock::new();

fn runtime(path: &Path) -> Result<ort::environment::Environment> {
    if !path.is_file() {
        return Err(Error::SetupMissing {
            what: "ONNX Runtime library",
            path: path.to_path_buf(),
            setting: "embedding.runtime_path",
        });
    }
    let outcome = RUNTIME.get_or_init(|| {
        let builder = ort::init_from(path).map_err(|err| err.to_string())?;
        builder
            .with_name("aiex")
            .build()
            .map_err(|err| err.to_string())
    });
    outcome.clone().map_err(|message| Error::Embedding {
        message: format!("loading ONNX Runtime from {}: {message}", path.display()),
    })
}

/// all-MiniLM-L6-v2 (or any BERT-like ONNX model with the same inputs) with mean pooling.
pub struct OnnxEmbedder {
    model: TextEmbedding,
    model_id: String,
    dimension: usize,
    batch_size: usize,
}

impl std::fmt::Debug for OnnxEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEmbedder")
            .field("model_id", &self.model_id)
            .field("dimension", &self.dimension)
            .finish()
    }
}

impl OnnxEmbedder {
    /// Loads the runtime and the model, and checks the model's output dimension.
    pub fn load(options: &OnnxEmbedderOptions) -> Result<Self> {
        for file in MODEL_FILES {
            let path = options.model_dir.join(file);
            if !path.is_file() {
                return Err(Error::SetupMissing {
                    what: "embedding model file",
                    path,
                    setting: "embedding.model_dir",
                });
            }
        }
        let environment = runtime(&options.runtime_path)?;
        let read = |file: &str| {
            let path = options.model_dir.join(file);
            fs_err::read(&path).map_err(Error::io(path))
        };
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: read("tokenizer.json")?,
            config_file: read("config.json")?,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        };
        let model = UserDefinedEmbeddingModel::new(read("model.onnx")?, tokenizer_files)
            .with_pooling(Pooling::Mean);
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            options.threads
        };
        let init = InitOptionsUserDefined::new()
            .with_environment(environment)
            .with_max_length(options.max_length)
            .with_intra_threads(threads);
        let model = TextEmbedding::try_new_from_user_defined(model, init).map_err(|err| {
            Error::Embedding {
                message: format!("loading {}: {err}", options.model_dir.display()),
            }
        })?;
        let mut embedder = OnnxEmbedder {
            model,
            model_id: options.model_id.clone(),
            dimension: options.dimension,
            batch_size: options.batch_size.max(1),
        };
        let probe = embedder.embed(&["dimension probe".to_string()])?;
        let got = probe.first().map_or(0, Vec::len);
        if got != options.dimension {
            return Err(Error::WrongDimension {
                expected: options.dimension,
                got,
            });
        }
        Ok(embedder)
    }
}

impl Embedder for OnnxEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(texts.len());
        for slice in texts.chunks(MAX_TEXTS_PER_CALL) {
            let embedded = self
                .model
                .embed(slice, Some(self.batch_size))
                .map_err(|err| Error::Embedding {
                    message: err.to_string(),
                })?;
            vectors.extend(embedded.into_iter().map(normalized));
        }
        Ok(vectors)
    }
}

/// Scales a vector to unit length (the model already does; this guards other models).
pub(crate) fn normalized(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && (norm - 1.0).abs() > 1e-4 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}
