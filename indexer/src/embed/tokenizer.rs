//! The model's tokenizer, set up from its Hugging Face files as sentence-transformers does: padding
//! to the longest text of a batch with the model's pad token, truncation at the smaller of the
//! configured and the model's maximum length, and the special tokens of `special_tokens_map.json`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::{AddedToken, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{Error, Result};

/// Reads and parses one JSON file of the model directory.
fn read_json(dir: &Path, file: &str) -> Result<(PathBuf, Value)> {
    let path = dir.join(file);
    let bytes = fs_err::read(&path).map_err(Error::io(&path))?;
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok((path, value)),
        Err(err) => Err(Error::ModelFile {
            path,
            reason: format!("not valid JSON: {err}"),
        }),
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::ModelFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The tokenizer of the model in `dir`, truncating at `max_length` tokens (or the model's own
/// maximum when that is smaller).
pub(crate) fn load(dir: &Path, max_length: usize) -> Result<Tokenizer> {
    let (_, config) = read_json(dir, "config.json")?;
    let (_, special_tokens) = read_json(dir, "special_tokens_map.json")?;
    let (tokenizer_config_path, tokenizer_config) = read_json(dir, "tokenizer_config.json")?;
    let tokenizer_path = dir.join("tokenizer.json");
    let bytes = fs_err::read(&tokenizer_path).map_err(Error::io(&tokenizer_path))?;
    let mut tokenizer = Tokenizer::from_bytes(&bytes)
        .map_err(|err| invalid(&tokenizer_path, format!("not a tokenizer: {err}")))?;

    // Some models give a huge number here (1e30): read as a float, it saturates.
    let model_max_length = tokenizer_config["model_max_length"]
        .as_f64()
        .ok_or_else(|| invalid(&tokenizer_config_path, "no numeric `model_max_length`"))?
        as f32 as usize;
    let max_length = max_length.min(model_max_length);
    let pad_token = &tokenizer_config["pad_token"];
    let pad_token = pad_token
        .as_str()
        .or_else(|| pad_token["content"].as_str())
        .ok_or_else(|| invalid(&tokenizer_config_path, "no string `pad_token`"))?
        .to_string();
    let pad_id = config["pad_token_id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .or_else(|| tokenizer.token_to_id(&pad_token))
        .unwrap_or(0);

    // The tokenizer subtracts the tokens its post-processor adds from the maximum length; a
    // maximum below that would underflow there.
    let added = tokenizer.get_post_processor().map_or(0, |processor| {
        tokenizers::PostProcessor::added_tokens(processor, false)
    });
    if max_length <= added {
        return Err(invalid(
            &tokenizer_config_path,
            format!("a maximum length of {max_length} tokens leaves no room for text"),
        ));
    }
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        pad_token,
        pad_id,
        ..PaddingParams::default()
    }));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            ..TruncationParams::default()
        }))
        .map_err(|err| invalid(&tokenizer_path, format!("truncation: {err}")))?;

    if let Value::Object(entries) = special_tokens {
        for value in entries.values() {
            let token = if let Some(content) = value.as_str() {
                Some(AddedToken {
                    content: content.to_string(),
                    special: true,
                    ..AddedToken::default()
                })
            } else if let (
                Some(content),
                Some(single_word),
                Some(lstrip),
                Some(rstrip),
                Some(normalized),
            ) = (
                value["content"].as_str(),
                value["single_word"].as_bool(),
                value["lstrip"].as_bool(),
                value["rstrip"].as_bool(),
                value["normalized"].as_bool(),
            ) {
                Some(AddedToken {
                    content: content.to_string(),
                    special: true,
                    single_word,
                    lstrip,
                    rstrip,
                    normalized,
                })
            } else {
                None
            };
            if let Some(token) = token {
                tokenizer.add_special_tokens([token]).map_err(|err| {
                    invalid(
                        &dir.join("special_tokens_map.json"),
                        format!("special token: {err}"),
                    )
                })?;
            }
        }
    }
    Ok(tokenizer)
}
