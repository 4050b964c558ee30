//! Dense embeddings: a local ONNX model on a dynamically loaded ONNX Runtime (tokenize, run, mean
//! pooling, unit length), or the LLM layer's embedding role.
//!
//! Embedding is synchronous and CPU-bound (ONNX Runtime runs its own intra-op threads); callers run
//! it on a dedicated thread, never on async workers. The runtime and the model files are installed
//! by `scripts/setup`; their absence is a clear [`Error::SetupMissing`], never a panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

mod session;
mod tokenizer;

pub use session::{SessionOptimization, SessionSource};

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
pub const MODEL_FILES: [&str; 5] = [
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
    /// How the session treats the graph (by default optimised once and cached).
    pub optimization: SessionOptimization,
    /// Where the optimised model is saved (`data_dir/cache/onnx`); None: not saved.
    pub cache_dir: Option<PathBuf>,
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
            optimization: SessionOptimization::Cached,
            cache_dir: Some(config.data_dir.join("cache").join("onnx")),
        }
    }
}

/// The ONNX Runtime library can be loaded once per process; later loads reuse the first outcome.
static RUNTIME: OnceLock<std::result::Result<ort::environment::Environment, String>> =
    OnceLock::new();

/// The ONNX Runtime environment, the library loaded from `path` on first use (once per process).
pub fn runtime(path: &Path) -> Result<ort::environment::Environment> {
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

/// all-MiniLM-L6-v2 (or any BERT-like ONNX model with the same inputs) with mean pooling: the
/// tokenizer pads each batch to its longest text and truncates at the maximum length, the session
/// gives one vector per token, and the vectors of a text's tokens (padding left out) are averaged
/// and scaled to unit length.
pub struct OnnxEmbedder {
    session: ort::session::Session,
    tokenizer: tokenizers::Tokenizer,
    /// Whether the graph takes `token_type_ids` (BERT does; some models do not).
    token_type_ids: bool,
    source: SessionSource,
    model_id: String,
    dimension: usize,
    batch_size: usize,
}

impl std::fmt::Debug for OnnxEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEmbedder")
            .field("model_id", &self.model_id)
            .field("dimension", &self.dimension)
            .field("source", &self.source)
            .finish()
    }
}

/// Outputs that hold the token (or already pooled) vectors, in order of preference after a sole
/// output.
const OUTPUT_NAMES: [&str; 3] = ["text_embeds", "last_hidden_state", "sentence_embedding"];

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
        let tokenizer = tokenizer::load(&options.model_dir, options.max_length)?;
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            options.threads
        };
        let model = options.model_dir.join("model.onnx");
        let (session, source) = session::open_session(&session::SessionSettings {
            environment: &environment,
            model: &model,
            model_id: &options.model_id,
            threads,
            optimization: options.optimization,
            cache_dir: options.cache_dir.as_deref(),
        })?;
        tracing::debug!(model = %model.display(), ?source, "embedding model loaded");
        let inputs: Vec<&str> = session.inputs().iter().map(|input| input.name()).collect();
        for required in ["input_ids", "attention_mask"] {
            if !inputs.contains(&required) {
                return Err(Error::ModelFile {
                    path: model,
                    reason: format!("the graph has no `{required}` input (inputs: {inputs:?})"),
                });
            }
        }
        let token_type_ids = inputs.contains(&"token_type_ids");
        let mut embedder = OnnxEmbedder {
            session,
            tokenizer,
            token_type_ids,
            source,
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

    /// Where the session's graph came from: optimised now, the saved optimised model, or the
    /// original model unoptimised.
    pub fn session_source(&self) -> &SessionSource {
        &self.source
    }

    /// The unit vectors of one batch of texts.
    fn embed_batch(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let failed = |message: String| Error::Embedding { message };
        let encodings = self
            .tokenizer
            .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
            .map_err(|err| failed(format!("tokenizing: {err}")))?;
        let Some(first) = encodings.first() else {
            return Ok(Vec::new());
        };
        let (rows, columns) = (encodings.len(), first.len());
        let mut ids = Vec::with_capacity(rows * columns);
        let mut mask = Vec::with_capacity(rows * columns);
        let mut type_ids = Vec::with_capacity(rows * columns);
        for encoding in &encodings {
            if encoding.len() != columns {
                return Err(failed("the tokenizer did not pad the batch".to_string()));
            }
            ids.extend(encoding.get_ids().iter().map(|&id| i64::from(id)));
            mask.extend(encoding.get_attention_mask().iter().map(|&m| i64::from(m)));
            type_ids.extend(encoding.get_type_ids().iter().map(|&t| i64::from(t)));
        }
        let shape = [rows, columns];
        let tensor = |data: Vec<i64>| {
            ort::value::Tensor::from_array((shape, data))
                .map_err(|err| failed(format!("building the input tensor: {err}")))
        };
        let mut inputs = ort::inputs![
            "input_ids" => tensor(ids)?,
            "attention_mask" => tensor(mask.clone())?,
        ];
        if self.token_type_ids {
            inputs.push(("token_type_ids".into(), tensor(type_ids)?.into()));
        }
        let outputs = self
            .session
            .run(inputs)
            .map_err(|err| failed(format!("running the model: {err}")))?;
        let output = if outputs.len() == 1 {
            Some(&outputs[0])
        } else {
            OUTPUT_NAMES.iter().find_map(|name| outputs.get(name))
        };
        let Some(output) = output else {
            let names: Vec<&str> = outputs.keys().collect();
            return Err(failed(format!(
                "no output holds the embeddings (outputs: {names:?})"
            )));
        };
        let (output_shape, values) = output
            .try_extract_tensor::<f32>()
            .map_err(|err| failed(format!("reading the output: {err}")))?;
        let dims: Vec<usize> = output_shape
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(0))
            .collect();
        let vectors = match dims[..] {
            [r, width] if r == rows && width > 0 => {
                values.chunks_exact(width).map(<[f32]>::to_vec).collect()
            }
            [r, tokens, width] if r == rows && tokens == columns => {
                mean_pool(values, &mask, rows, columns, width)
            }
            _ => {
                return Err(failed(format!(
                    "output of shape {dims:?} for a batch of {rows} × {columns} tokens"
                )))
            }
        };
        if vectors.len() != rows {
            return Err(failed(format!(
                "{} vectors for a batch of {rows} texts (output shape {dims:?})",
                vectors.len()
            )));
        }
        Ok(vectors.into_iter().map(unit_length).collect())
    }
}

/// The mean of each text's token vectors where `mask` is set (`values` is rows × tokens × width,
/// row-major), summed token by token in order.
fn mean_pool(
    values: &[f32],
    mask: &[i64],
    rows: usize,
    tokens: usize,
    width: usize,
) -> Vec<Vec<f32>> {
    (0..rows)
        .map(|row| {
            let mut sum = vec![0.0f32; width];
            let mut count = 0.0f32;
            for token in 0..tokens {
                if mask[row * tokens + token] == 0 {
                    continue;
                }
                count += 1.0;
                let start = (row * tokens + token) * width;
                for (total, value) in sum.iter_mut().zip(&values[start..start + width]) {
                    *total += value;
                }
            }
            let count = if count == 0.0 { 1.0 } else { count };
            sum.iter_mut().for_each(|total| *total /= count);
            sum
        })
        .collect()
}

/// `vector` divided by its length (a zero vector stays zero); remote embedders' vectors too.
pub(crate) fn unit_length(vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.into_iter().map(|x| x / (norm + 1e-12)).collect()
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
        for batch in texts.chunks(self.batch_size) {
            // `embed_batch` gives unit vectors already.
            vectors.extend(self.embed_batch(batch)?);
        }
        Ok(vectors)
    }
}
