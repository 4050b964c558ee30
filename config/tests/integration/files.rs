//! The example file and the fixtures.

use std::path::{Path, PathBuf};

use aiex_config::{known_keys, Config, ConfigError, SearchMode, Source, VectorBackend};

use crate::{fixture, keys, load, problems};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../aiex.example.toml")
}

#[test]
fn example_file_holds_the_defaults_and_documents_every_key() {
    let path = example_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Config::from_toml_str(&text, &path.display().to_string()).unwrap();
    assert_eq!(config, Config::default());

    let mut section = String::new();
    let mut documented = Vec::new();
    let mut previous = "";
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        }
        let assignment = line.trim_start_matches("# ");
        if let Some((name, _)) = assignment.split_once(" = ") {
            if !name.contains(' ') {
                assert!(
                    previous.starts_with('#'),
                    "{section}{name} has no comment above it"
                );
                documented.push(format!("{section}{name}"));
            }
        }
        previous = line;
    }
    for key in known_keys() {
        assert!(
            documented.iter().any(|d| d == key),
            "{key} is not in the example"
        );
    }
}

#[test]
fn valid_full_fixture() {
    let config = load(Some(&fixture("valid_full.toml")), &[], &[]).unwrap();
    assert_eq!(config.data_dir, Path::new("/srv/aiex"));
    assert_eq!(config.index.max_file_bytes, 2048);
    assert_eq!(config.index.include, ["src/**", "*.md"]);
    assert!(config.index.hidden && !config.index.respect_gitignore);
    assert_eq!(config.chunk.window_overlap, 10);
    assert!(!config.embedding.enabled);
    assert_eq!(config.model_dir(), Path::new("/opt/models/bge"));
    assert_eq!(
        config.runtime_path(),
        Path::new("/opt/ort/libonnxruntime.so")
    );
    assert_eq!(config.index_dir(), Path::new("/srv/aiex/index"));
    assert_eq!(config.vector.backend, VectorBackend::Server);
    assert_eq!(
        config.vector.api_key.as_ref().map(|k| k.expose()),
        Some("fixture-secret-key")
    );
    assert_eq!(config.search.mode, SearchMode::Keyword);
    assert_eq!(config.search.rrf_k, 30.0);
    assert_eq!(config.search.vector_weight, 2.0);
}

#[test]
fn wrong_keys_are_named_with_their_file() {
    let path = fixture("wrong_key.toml");
    let err = load(Some(&path), &[], &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("index.max_file_byte"), "{text}");
    assert!(
        text.contains("did you mean `index.max_file_bytes`"),
        "{text}"
    );
    assert!(text.contains("indexing"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    let found = problems(Err(err));
    assert_eq!(keys(&found), ["index.max_file_byte", "indexing"]);
    assert!(found
        .iter()
        .all(|p| p.source == Some(Source::File(path.clone()))));
}

#[test]
fn every_invalid_value_is_reported_at_once() {
    let found = problems(load(Some(&fixture("invalid_values.toml")), &[], &[]));
    assert_eq!(
        keys(&found),
        [
            "version",
            "chunk.min_tokens",
            "chunk.window_overlap",
            "embedding.batch_size",
            "search.limit",
            "search.rrf_k",
        ]
    );
    assert!(found[0].to_string().contains("unsupported version 2"));
    assert!(found[0].to_string().contains("invalid_values.toml"));
}

#[test]
fn type_errors_name_key_and_file() {
    let found = problems(load(Some(&fixture("type_error.toml")), &[], &[]));
    assert_eq!(
        keys(&found),
        ["index.max_file_bytes", "index.hidden", "search.mode"]
    );
    let text: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(text[0].ends_with("expected a non-negative integer, found string \"big\""));
    assert!(text[1].contains("expected a boolean"));
    assert!(text[2].contains(r#"expected one of "keyword", "vector", "hybrid""#));
    assert!(text.iter().all(|t| t.contains("type_error.toml")));
}

#[test]
fn server_backend_needs_a_url() {
    let found = problems(load(Some(&fixture("server_without_url.toml")), &[], &[]));
    assert_eq!(keys(&found), ["vector.url"]);
    let text = found[0].to_string();
    assert!(
        text.contains("is required when vector.backend is \"server\""),
        "{text}"
    );
    assert!(text.contains("vector.backend from file"), "{text}");

    let config = load(
        Some(&fixture("server_without_url.toml")),
        &[("AIEX__VECTOR__URL", "https://qdrant:6334")],
        &[],
    )
    .unwrap();
    assert_eq!(config.vector.url.as_deref(), Some("https://qdrant:6334"));
}

#[test]
fn missing_and_malformed_files() {
    let missing = fixture("no_such_file.toml");
    let err = load(Some(&missing), &[], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::MissingFile { .. }));
    assert!(err.to_string().contains("no_such_file.toml"));
    assert!(err.to_string().contains("--config"));

    let err = Config::from_toml_str("[index\nthreads = 1", "broken.toml").unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    assert!(err
        .to_string()
        .starts_with("cannot parse broken.toml as toml"));
}

#[test]
fn section_that_is_not_a_table() {
    let found = problems(Config::from_toml_str(
        "index = 3\nsearch.limit = 0",
        "inline",
    ));
    assert_eq!(keys(&found), ["index", "search.limit"]);
    assert_eq!(found[0].message, "expected a table, found integer");
}

#[test]
fn llm_providers_table_and_short_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.toml");
    std::fs::write(
        &path,
        r#"
[llm]
smart = ["claude", "local"]
[[llm.providers]]
name = "local"
kind = "ollama"
base_url = "http://127.0.0.1:11434"
model = "qwen"
[[llm.providers]]
name = "claude"
kind = "anthropic"
base_url = "https://api.anthropic.com"
api_key = "fixture-llm-key"
model = "claude-x"
requests_per_minute = 5
prices = { "claude-x" = { input_per_mtok = 3.0, output_per_mtok = 15.0 } }
"#,
    )
    .unwrap();
    let env = [
        ("AIEX_LLM_URL", "http://127.0.0.1:8080"),
        ("AIEX_LLM_MODEL", "smollm2"),
        ("AIEX_LLM_API_KEY", "env-llm-key"),
    ];
    let config = load(Some(&path), &env, &[]).unwrap();
    let llm = &config.llm;
    assert_eq!(llm.providers.len(), 2);
    assert_eq!(
        llm.providers[1].kind,
        aiex_config::LlmProviderKind::Anthropic
    );
    assert_eq!(llm.providers[1].prices["claude-x"].output_per_mtok, 15.0);
    assert_eq!(llm.url.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(
        llm.api_key.as_ref().map(|k| k.expose()),
        Some("env-llm-key")
    );
    assert_eq!(llm.role_providers("smart"), ["default", "claude", "local"]);
    assert_eq!(llm.role_providers("fast"), ["default", "local", "claude"]);
    let shown = config.to_redacted_toml();
    assert!(!shown.contains("fixture-llm-key") && !shown.contains("env-llm-key"));

    std::fs::write(
        &path,
        "[llm]\nfast = [\"nope\"]\n[[llm.providers]]\nname = \"x\"\nbase_url = \"ftp://h\"\nmodel = \"m\"\ncolour = 1\napi_key = 7\n",
    )
    .unwrap();
    let err = load(Some(&path), &[], &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("llm.providers"), "{text}");
    assert!(text.contains("api_key must be a string"), "{text}");
    assert!(text.contains("unknown provider `nope`"), "{text}");
}
