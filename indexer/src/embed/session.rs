//! The ONNX Runtime session of the local model, and the cache of its optimised graph.
//!
//! Optimising the graph (ONNX Runtime's level 3: fused attention, layer norm, GELU and quantised
//! matrix products) takes most of a session's creation time, and its result depends only on the
//! model file and the runtime. So the first load saves the optimised model under the data
//! directory's cache, and later loads read it with optimisation disabled. The file is written under
//! a temporary name, synced and renamed, so a crash never leaves a partial one under the final
//! name; one that cannot be loaded anyway is reported, optimised again from the original model and
//! rewritten.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;

use crate::error::{Error, Result};

/// How the session treats the model's graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionOptimization {
    /// Optimised once (level 3) and saved in the cache directory; later loads read the saved graph
    /// with optimisation disabled. Without a cache directory, optimised at every load.
    #[default]
    Cached,
    /// Optimised (level 3) at every load, nothing saved.
    EveryLoad,
    /// The original graph, not optimised.
    Disabled,
}

/// Bumped when the way the cache is written changes, so older files are not read.
const CACHE_FORMAT: u32 = 1;

/// Temporary files older than this are left by a crashed writer and removed.
const STALE_TEMPORARY_SECS: u64 = 600;

/// Where a session's model comes from, for the logs and the benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSource {
    /// The original model, optimised now (and saved to `saved` when that succeeded).
    Optimized { saved: Option<PathBuf> },
    /// The optimised model saved earlier.
    Cache(PathBuf),
    /// The original model without optimisation.
    Original,
}

/// Settings for [`open_session`].
pub(crate) struct SessionSettings<'a> {
    pub environment: &'a ort::environment::Environment,
    pub model: &'a Path,
    /// A name for the cache files (the model's identifier).
    pub model_id: &'a str,
    pub threads: usize,
    pub optimization: SessionOptimization,
    pub cache_dir: Option<&'a Path>,
}

fn builder_error(model: &Path) -> impl Fn(ort::Error<SessionBuilder>) -> Error + '_ {
    move |err| Error::Embedding {
        message: format!("setting up the session for {}: {err}", model.display()),
    }
}

fn builder(
    settings: &SessionSettings<'_>,
    level: GraphOptimizationLevel,
) -> Result<SessionBuilder> {
    let error = builder_error(settings.model);
    Session::builder(settings.environment)
        .map_err(|err| Error::Embedding {
            message: format!("creating an ONNX Runtime session: {err}"),
        })?
        .with_optimization_level(level)
        .map_err(&error)?
        .with_intra_threads(settings.threads)
        .map_err(&error)
}

fn commit_error(path: &Path, err: ort::Error) -> Error {
    Error::ModelFile {
        path: path.to_path_buf(),
        reason: format!("ONNX Runtime cannot load it: {err}"),
    }
}

/// A session for the model, by `settings.optimization`, and where its graph came from.
pub(crate) fn open_session(settings: &SessionSettings<'_>) -> Result<(Session, SessionSource)> {
    match (settings.optimization, settings.cache_dir) {
        (SessionOptimization::Disabled, _) => {
            let session = builder(settings, GraphOptimizationLevel::Disable)?
                .commit_from_file(settings.model)
                .map_err(|err| commit_error(settings.model, err))?;
            Ok((session, SessionSource::Original))
        }
        (SessionOptimization::EveryLoad, _) | (SessionOptimization::Cached, None) => {
            let session = builder(settings, GraphOptimizationLevel::Level3)?
                .commit_from_file(settings.model)
                .map_err(|err| commit_error(settings.model, err))?;
            Ok((session, SessionSource::Optimized { saved: None }))
        }
        (SessionOptimization::Cached, Some(cache_dir)) => cached_session(settings, cache_dir),
    }
}

/// The cache file for the model: its name carries a key over the model file (path, size,
/// modification time), the runtime's build (`runtime_build`: ONNX Runtime's build string, with its
/// version and commit) and the machine's architecture.
pub(crate) fn cache_path(
    model: &Path,
    model_id: &str,
    cache_dir: &Path,
    runtime_build: &str,
) -> Result<PathBuf> {
    let metadata = fs_err::metadata(model).map_err(Error::io(model))?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    let mut hasher = blake3::Hasher::new();
    hasher.update(&CACHE_FORMAT.to_le_bytes());
    hasher.update(model.as_os_str().as_encoded_bytes());
    hasher.update(&[0]);
    hasher.update(&metadata.len().to_le_bytes());
    hasher.update(&modified.to_le_bytes());
    hasher.update(runtime_build.as_bytes());
    hasher.update(&[0]);
    hasher.update(std::env::consts::ARCH.as_bytes());
    let key = hasher.finalize().to_hex();
    Ok(cache_dir.join(format!("{}-{}.onnx", file_stem(model_id), &key[..16])))
}

/// `model_id` reduced to characters safe in a file name.
fn file_stem(model_id: &str) -> String {
    let stem: String = model_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        "model".to_string()
    } else {
        stem
    }
}

fn cached_session(
    settings: &SessionSettings<'_>,
    cache_dir: &Path,
) -> Result<(Session, SessionSource)> {
    // The environment exists, so the runtime library is loaded and can describe its build.
    let cache = cache_path(settings.model, settings.model_id, cache_dir, ort::info())?;
    if cache.is_file() {
        match builder(settings, GraphOptimizationLevel::Disable)?.commit_from_file(&cache) {
            Ok(session) => return Ok((session, SessionSource::Cache(cache))),
            Err(err) => {
                tracing::warn!(
                    cache = %cache.display(),
                    error = %err,
                    "the saved optimised model cannot be loaded; optimising the original model again"
                );
                let _ = std::fs::remove_file(&cache);
            }
        }
    }
    let temporary = match prepare_cache_dir(cache_dir, settings.model_id) {
        Ok(()) => Some(temporary_path(&cache)),
        Err(err) => {
            tracing::warn!(
                dir = %cache_dir.display(),
                error = %err,
                "cannot write the optimised model's cache; optimising at every load"
            );
            None
        }
    };
    let mut builder = builder(settings, GraphOptimizationLevel::Level3)?;
    if let Some(temporary) = &temporary {
        builder = builder
            .with_optimized_model_path(temporary)
            .map_err(builder_error(settings.model))?;
    }
    let session = match builder.commit_from_file(settings.model) {
        Ok(session) => session,
        Err(err) => {
            if let Some(temporary) = &temporary {
                let _ = std::fs::remove_file(temporary);
            }
            return Err(commit_error(settings.model, err));
        }
    };
    let saved = temporary.and_then(|temporary| match publish(&temporary, &cache) {
        Ok(()) => Some(cache.clone()),
        Err(err) => {
            let _ = std::fs::remove_file(&temporary);
            tracing::warn!(
                cache = %cache.display(),
                error = %err,
                "cannot save the optimised model; it is optimised again at the next load"
            );
            None
        }
    });
    if saved.is_some() {
        remove_other_versions(cache_dir, settings.model_id, &cache);
    }
    Ok((session, SessionSource::Optimized { saved }))
}

fn prepare_cache_dir(cache_dir: &Path, model_id: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(cache_dir)?;
    // Temporary files of writers that died before renaming them.
    let prefix = format!(".{}-", file_stem(model_id));
    for entry in std::fs::read_dir(cache_dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(&prefix) && name.contains(".tmp-")) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age.as_secs() > STALE_TEMPORARY_SECS);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// A name beside `cache` that no other process writes (hidden, process id and time).
fn temporary_path(cache: &Path) -> PathBuf {
    let name = cache
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    cache.with_file_name(format!(".{name}.tmp-{}-{nanos}", std::process::id()))
}

/// Makes the written `temporary` file durable and moves it to `cache` in one step.
fn publish(temporary: &Path, cache: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(temporary)?;
    if file.metadata()?.len() == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "ONNX Runtime wrote an empty model",
        ));
    }
    file.sync_all()?;
    drop(file);
    std::fs::rename(temporary, cache)?;
    if let Some(dir) = cache.parent() {
        // A cache: a rename lost to a power cut only costs one more optimisation.
        let _ = crate::atomic::sync_directory(dir);
    }
    Ok(())
}

/// Removes the saved models of earlier versions of the model or the runtime.
fn remove_other_versions(cache_dir: &Path, model_id: &str, keep: &Path) {
    let prefix = format!("{}-", file_stem(model_id));
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // The key is 16 hex digits: another model whose identifier extends this one's differs.
        let Some(key) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".onnx"))
        else {
            continue;
        };
        if path != keep && key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("all-MiniLM-L6-v2"), "all-MiniLM-L6-v2");
        assert_eq!(file_stem("org/model name"), "org_model_name");
        assert_eq!(file_stem(""), "model");
    }

    #[test]
    fn the_cache_key_follows_the_model_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let model = dir.path().join("model.onnx");
        std::fs::write(&model, b"one").expect("write");
        let cache = dir.path().join("cache");
        let first = cache_path(&model, "m", &cache, "1.31.1").expect("key");
        assert_eq!(
            first,
            cache_path(&model, "m", &cache, "1.31.1").expect("key")
        );
        std::fs::write(&model, b"other").expect("write");
        let second = cache_path(&model, "m", &cache, "1.31.1").expect("key");
        assert_ne!(first, second);
        let other_runtime = cache_path(&model, "m", &cache, "1.32.0").expect("key");
        assert_ne!(second, other_runtime);
        let name = second
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("m-") && name.ends_with(".onnx"), "{name}");
    }

    #[test]
    fn other_versions_and_stale_temporaries_are_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let keep = dir.path().join("m-0123456789abcdef.onnx");
        let old = dir.path().join("m-fedcba9876543210.onnx");
        let other_model = dir.path().join("m-large-0123456789abcdef.onnx");
        for path in [&keep, &old, &other_model] {
            std::fs::write(path, b"x").expect("write");
        }
        remove_other_versions(dir.path(), "m", &keep);
        assert!(keep.exists() && other_model.exists() && !old.exists());

        let fresh = temporary_path(&keep);
        std::fs::write(&fresh, b"x").expect("write");
        prepare_cache_dir(dir.path(), "m").expect("prepare");
        assert!(fresh.exists(), "a temporary being written is kept");
    }
}
