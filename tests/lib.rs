//! Shared helpers for the workspace's end-to-end tests and benchmarks: configurations that point at
//! the model installed by `scripts/setup` and keep every index in a temporary directory.

use std::path::{Path, PathBuf};

/// The data directory where `scripts/setup` installed the runtime and the model.
pub fn model_data_dir() -> PathBuf {
    if let Some(dir) =
        std::env::var_os("AIEX_TEST_MODEL_DATA_DIR").or_else(|| std::env::var_os("AIEX_DATA_DIR"))
    {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("aiex")
}

/// Overrides that point the embedding settings at the installed model.
pub fn model_overrides() -> Vec<(String, String)> {
    let data = model_data_dir();
    let model_dir = data.join("models/all-MiniLM-L6-v2");
    let runtime = data.join("runtime/libonnxruntime.so.1.31.1");
    assert!(
        model_dir.join("model.onnx").is_file() && runtime.is_file(),
        "the embedding model is not installed under {}: run scripts/setup",
        data.display()
    );
    vec![
        (
            "embedding.model_dir".into(),
            model_dir.display().to_string(),
        ),
        (
            "embedding.runtime_path".into(),
            runtime.display().to_string(),
        ),
    ]
}

/// A configuration with its data directory in `data_dir`, ignoring the environment and user files.
pub fn config(data_dir: &Path, extra: &[(&str, &str)]) -> aiex_config::Config {
    let mut overrides = model_overrides();
    overrides.push(("data_dir".into(), data_dir.display().to_string()));
    overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    aiex_config::Config::load(&aiex_config::LoadOptions {
        file: None,
        env: Some(Vec::new()),
        overrides,
    })
    .expect("test configuration is valid")
}

/// Writes `files` (path, content) under `root`, creating directories.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(&path, content).expect("write file");
    }
}
