//! The local embedder against fastembed (which it replaced): the same vectors for short, long
//! (truncated) and padded texts, whether the graph is optimised at load or read from the cache;
//! the cache survives a corrupt file; bad model files are errors, not panics.
//!
//! Needs the model installed by `scripts/setup` (`AIEX_TEST_MODEL_DATA_DIR`, else
//! `~/.local/share/aiex`); without it the tests say `SKIPPED` (fail with
//! `AIEX_TEST_REQUIRE=model`).

use std::path::{Path, PathBuf};

use aiex_indexer::embed::{
    runtime, Embedder, OnnxEmbedder, OnnxEmbedderOptions, SessionOptimization, SessionSource,
    MODEL_FILES,
};
use aiex_indexer::Error;

/// The installed model directory and runtime, or None (after saying why) when absent.
fn installed(test: &str) -> Option<(PathBuf, PathBuf)> {
    let data = std::env::var_os("AIEX_TEST_MODEL_DATA_DIR")
        .or_else(|| std::env::var_os("AIEX_DATA_DIR"))
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share/aiex"))
        })?;
    let model = data.join("models/all-MiniLM-L6-v2");
    let runtime = data.join("runtime/libonnxruntime.so.1.31.1");
    if model.join("model.onnx").is_file() && runtime.is_file() {
        return Some((model, runtime));
    }
    let required = std::env::var("AIEX_TEST_REQUIRE").unwrap_or_default();
    assert!(
        !required
            .split(',')
            .any(|name| name.trim() == "model" || name.trim() == "all"),
        "{test}: the embedding model is not installed under {}",
        data.display()
    );
    println!(
        "SKIPPED: {test}: the embedding model is not installed under {}",
        data.display()
    );
    None
}

fn options(model_dir: &Path, runtime: &Path, cache: Option<&Path>) -> OnnxEmbedderOptions {
    OnnxEmbedderOptions {
        runtime_path: runtime.to_path_buf(),
        model_dir: model_dir.to_path_buf(),
        model_id: "all-MiniLM-L6-v2".to_string(),
        dimension: 384,
        max_length: 256,
        batch_size: 4,
        threads: 1,
        optimization: SessionOptimization::Cached,
        cache_dir: cache.map(Path::to_path_buf),
    }
}

/// Texts of very different lengths, so that batches of 4 pad, and two past 256 tokens.
fn texts() -> Vec<String> {
    let long_code = (0..200)
        .map(|i| format!("fn handler_{i}(request: &Request) -> Response {{ route(request, {i}) }}"))
        .collect::<Vec<_>>()
        .join("\n");
    let long_prose = "The quick brown fox jumps over the lazy dog. ".repeat(120);
    vec![
        "parse a TOML configuration file".to_string(),
        long_code,
        "x".to_string(),
        "async fn fetch(url: &str) -> Result<String, reqwest::Error> { reqwest::get(url).await?.text().await }".to_string(),
        long_prose,
        "def read_lines(path):\n    with open(path) as f:\n        return f.readlines()".to_string(),
        "Ünïcödé — 日本語のテキスト, emoji 🦀 and tabs\tinside".to_string(),
        String::new(),
        "impl Iterator for Counter { type Item = u32; fn next(&mut self) -> Option<u32> { None } }".to_string(),
        "how do I retry a request with exponential backoff".to_string(),
    ]
}

/// fastembed 7.5's vectors for `texts` (level 3 optimisation, mean pooling), as the embedder
/// produced them before it built its own session.
fn fastembed_vectors(model_dir: &Path, runtime_path: &Path, texts: &[String]) -> Vec<Vec<f32>> {
    use fastembed::{
        InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
    };
    let read = |file: &str| std::fs::read(model_dir.join(file)).expect("model file");
    let files = TokenizerFiles {
        tokenizer_file: read("tokenizer.json"),
        config_file: read("config.json"),
        special_tokens_map_file: read("special_tokens_map.json"),
        tokenizer_config_file: read("tokenizer_config.json"),
    };
    let model =
        UserDefinedEmbeddingModel::new(read("model.onnx"), files).with_pooling(Pooling::Mean);
    let init = InitOptionsUserDefined::new()
        .with_environment(runtime(runtime_path).expect("runtime"))
        .with_max_length(256)
        .with_intra_threads(1);
    let mut model = TextEmbedding::try_new_from_user_defined(model, init).expect("fastembed");
    model.embed(texts, Some(4)).expect("fastembed embeds")
}

/// The largest difference between two sets of vectors, component by component.
fn max_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn vectors_match_fastembed_whether_optimised_at_load_or_cached() {
    let Some((model_dir, runtime_path)) = installed("embed vectors_match_fastembed") else {
        return;
    };
    let texts = texts();
    let reference = fastembed_vectors(&model_dir, &runtime_path, &texts);
    let cache = tempfile::tempdir().expect("temp dir");

    let mut first =
        OnnxEmbedder::load(&options(&model_dir, &runtime_path, Some(cache.path()))).expect("load");
    let SessionSource::Optimized { saved: Some(saved) } = first.session_source().clone() else {
        panic!(
            "the first load optimises and saves: {:?}",
            first.session_source()
        );
    };
    assert!(saved.is_file() && saved.starts_with(cache.path()));
    let optimised = first.embed(&texts).expect("embed");
    drop(first);

    let mut second = OnnxEmbedder::load(&options(&model_dir, &runtime_path, Some(cache.path())))
        .expect("load from the cache");
    assert_eq!(
        second.session_source(),
        &SessionSource::Cache(saved.clone())
    );
    let cached = second.embed(&texts).expect("embed");
    drop(second);

    let mut every_load = options(&model_dir, &runtime_path, None);
    every_load.optimization = SessionOptimization::EveryLoad;
    let mut every_load = OnnxEmbedder::load(&every_load).expect("load");
    let at_load = every_load.embed(&texts).expect("embed");

    for (name, vectors) in [
        ("optimised and saved", &optimised),
        ("from the cache", &cached),
        ("optimised at every load", &at_load),
    ] {
        assert_eq!(vectors.len(), texts.len());
        let difference = max_difference(vectors, &reference);
        assert!(
            difference <= 1e-5,
            "{name}: differs from fastembed by {difference}"
        );
        for vector in vectors.iter() {
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{name}: norm {norm}");
        }
    }

    // One text alone (no padding) gives the vector it gets inside a padded batch.
    let alone = every_load.embed(&texts[..1]).expect("embed");
    assert!(max_difference(&alone, &at_load[..1]) <= 1e-5);
    // Two texts past the maximum length are cut there: what follows changes nothing.
    let mut extended = texts[1].clone();
    extended.push_str("\nfn one_more_function_past_the_limit() {}");
    let cut = every_load.embed(&[extended]).expect("embed");
    assert!(max_difference(&cut, &at_load[1..2]) <= 1e-5);
    assert!(every_load.embed(&[]).expect("embed nothing").is_empty());

    // The unoptimised graph computes the same function, up to rounding.
    let mut unoptimised = options(&model_dir, &runtime_path, None);
    unoptimised.optimization = SessionOptimization::Disabled;
    let mut unoptimised = OnnxEmbedder::load(&unoptimised).expect("load");
    assert_eq!(unoptimised.session_source(), &SessionSource::Original);
    let plain = unoptimised.embed(&texts).expect("embed");
    let difference = max_difference(&plain, &reference);
    println!("unoptimised graph: largest difference from fastembed {difference}");
    assert!(
        difference < 1e-2,
        "unoptimised graph differs by {difference}"
    );
}

#[test]
fn a_corrupt_cache_is_reported_and_rewritten() {
    let Some((model_dir, runtime_path)) = installed("embed a_corrupt_cache") else {
        return;
    };
    let cache = tempfile::tempdir().expect("temp dir");
    let options = options(&model_dir, &runtime_path, Some(cache.path()));
    let text = vec!["open a file and read it to a string".to_string()];
    let mut first = OnnxEmbedder::load(&options).expect("load");
    let expected = first.embed(&text).expect("embed");
    let SessionSource::Optimized { saved: Some(saved) } = first.session_source().clone() else {
        panic!("saved: {:?}", first.session_source());
    };
    drop(first);

    for garbage in [&b"not an onnx model"[..], &[][..]] {
        std::fs::write(&saved, garbage).expect("corrupt the cache");
        let mut again = OnnxEmbedder::load(&options).expect("falls back to the original model");
        assert_eq!(
            again.session_source(),
            &SessionSource::Optimized {
                saved: Some(saved.clone())
            }
        );
        assert!(max_difference(&again.embed(&text).expect("embed"), &expected) <= 1e-5);
        let written = std::fs::metadata(&saved).expect("rewritten").len();
        assert!(written > 1_000_000, "rewritten cache has {written} bytes");
    }
    let cached = OnnxEmbedder::load(&options).expect("load");
    assert_eq!(
        cached.session_source(),
        &SessionSource::Cache(saved.clone())
    );
    // Only the current file is left: no temporaries, no older versions.
    let names: Vec<String> = std::fs::read_dir(cache.path())
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

/// A copy of the model directory in which `file` holds `content`.
fn broken_model(model_dir: &Path, file: &str, content: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in MODEL_FILES {
        if name == file {
            std::fs::write(dir.path().join(name), content).expect("write");
        } else {
            std::fs::copy(model_dir.join(name), dir.path().join(name)).expect("copy");
        }
    }
    dir
}

#[test]
fn bad_model_files_are_errors() {
    let Some((model_dir, runtime_path)) = installed("embed bad_model_files") else {
        return;
    };
    let cases: [(&str, &[u8]); 6] = [
        ("model.onnx", b"not an onnx model"),
        ("model.onnx", b""),
        ("tokenizer.json", b"{\"version\": \"1.0\"}"),
        ("tokenizer_config.json", b"{\"pad_token\": \"[PAD]\"}"),
        (
            "tokenizer_config.json",
            b"{\"model_max_length\": 1, \"pad_token\": \"[PAD]\"}",
        ),
        ("config.json", b"{not json"),
    ];
    for (file, content) in cases {
        let dir = broken_model(&model_dir, file, content);
        let cache = dir.path().join("cache");
        let err = OnnxEmbedder::load(&options(dir.path(), &runtime_path, Some(&cache)))
            .expect_err("a broken model is refused");
        let Error::ModelFile { path, reason } = &err else {
            panic!("{file}: unexpected error {err:?}");
        };
        assert!(path.ends_with(file), "{file}: {err}");
        assert!(!reason.is_empty());
        assert!(err.is_user_error());
    }
}
