//! Precedence, the environment layer, flags and file discovery.

use std::path::Path;

use aiex_config::{ConfigError, LoadOptions, SearchMode, Source};

use crate::{keys, load, pairs, problems};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn file_then_env_then_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "aiex.toml",
        "data_dir = \"/from/file\"\n[index]\nmax_file_bytes = 100\n[search]\nlimit = 5\n[chunk]\nmax_tokens = 300\n",
    );
    let env = [
        ("AIEX__INDEX__MAX_FILE_BYTES", "200"),
        ("AIEX__SEARCH__LIMIT", "7"),
        ("AIEX_DATA_DIR", "/from/alias"),
    ];
    let config = load(Some(&file), &env, &[("search.limit", "9")]).unwrap();
    assert_eq!(config.index.max_file_bytes, 200);
    assert_eq!(config.search.limit, 9);
    assert_eq!(config.chunk.max_tokens, 300);
    assert_eq!(config.data_dir, Path::new("/from/alias"));

    let env = [
        ("AIEX_DATA_DIR", "/from/alias"),
        ("AIEX__DATA_DIR", "/from/env"),
    ];
    let config = load(Some(&file), &env, &[]).unwrap();
    assert_eq!(config.data_dir, Path::new("/from/env"));
    let config = load(Some(&file), &env, &[("data_dir", "/from/flag")]).unwrap();
    assert_eq!(config.data_dir, Path::new("/from/flag"));
}

#[test]
fn env_and_flag_values_are_typed() {
    let env = [
        ("AIEX__INDEX__INCLUDE", "*.rs, docs/**"),
        ("AIEX__INDEX__EXCLUDE", r#"["target/**"]"#),
        ("AIEX__INDEX__HIDDEN", "true"),
        ("AIEX__SEARCH__MODE", "Keyword"),
        ("AIEX__SEARCH__RRF_K", "30"),
        ("AIEX__EMBEDDING__MODEL_ID", "1e3"),
        ("AIEX_LOG", "debug"),
        ("PATH", "/usr/bin"),
    ];
    let flags = [
        ("index.max-file-bytes", "4096"),
        ("embedding.model_dir", "/m"),
    ];
    let config = load(None, &env, &flags).unwrap();
    assert_eq!(config.index.include, ["*.rs", "docs/**"]);
    assert_eq!(config.index.exclude, ["target/**"]);
    assert!(config.index.hidden);
    assert_eq!(config.search.mode, SearchMode::Keyword);
    assert_eq!(config.search.rrf_k, 30.0);
    assert_eq!(config.embedding.model_id, "1e3");
    assert_eq!(config.index.max_file_bytes, 4096);
    assert_eq!(config.model_dir(), Path::new("/m"));
}

#[test]
fn bad_env_and_flags_are_all_named() {
    let env = [
        ("AIEX__INDEX__NOPE", "1"),
        ("AIEX__SEARCH__LIMIT", "lots"),
        ("AIEX__CHUNK__MIN_TOKENS", "500"),
    ];
    let found = problems(load(None, &env, &[("vector.hnsw", "3")]));
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        keys(&found),
        [
            "index.nope",
            "vector.hnsw",
            "search.limit",
            "chunk.min_tokens"
        ],
        "{shown:#?}"
    );
    assert_eq!(
        found[0].source,
        Some(Source::Env("AIEX__INDEX__NOPE".into()))
    );
    assert!(shown[1].contains("flag --vector.hnsw"));
    assert!(shown[1].contains("did you mean `vector.hnsw_ef`"));
    assert!(shown[2].contains("env AIEX__SEARCH__LIMIT"));
    assert!(shown[3].contains("env AIEX__CHUNK__MIN_TOKENS"));
}

#[test]
fn later_layer_fixes_an_earlier_type_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.toml", "[search]\nlimit = \"ten\"\n");
    let config = load(Some(&file), &[("AIEX__SEARCH__LIMIT", "10")], &[]).unwrap();
    assert_eq!(config.search.limit, 10);
}

#[test]
fn rejected_values_do_not_cause_follow_up_problems() {
    let found = problems(load(None, &[("AIEX__CHUNK__MAX_TOKENS", "-1")], &[]));
    assert_eq!(keys(&found), ["chunk.max_tokens"]);
}

#[test]
fn empty_env_value_unsets_an_optional_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.toml", "[embedding]\nmodel_dir = \"/m\"\n");
    let config = load(
        Some(&file),
        &[("AIEX__EMBEDDING__MODEL_DIR", ""), ("AIEX__DATA_DIR", "/d")],
        &[],
    )
    .unwrap();
    assert_eq!(config.embedding.model_dir, None);
    assert_eq!(config.model_dir(), Path::new("/d/models/all-MiniLM-L6-v2"));
}

#[test]
fn default_data_dir_and_home_expansion() {
    let config = load(None, &[("XDG_DATA_HOME", "/xdg"), ("HOME", "/h")], &[]).unwrap();
    assert_eq!(config.data_dir, Path::new("/xdg/aiex"));
    let config = load(None, &[("HOME", "/h")], &[]).unwrap();
    assert_eq!(config.data_dir, Path::new("/h/.local/share/aiex"));
    let config = load(None, &[], &[]).unwrap();
    assert_eq!(config.data_dir, Path::new("./.aiex-data"));
    let config = load(None, &[("HOME", "/h"), ("AIEX__DATA_DIR", "~/d")], &[]).unwrap();
    assert_eq!(config.data_dir, Path::new("/h/d"));
}

#[test]
fn discovery() {
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    let home = dir.path().join("home");
    write(&xdg, "aiex/config.toml", "[search]\nlimit = 11\n");
    write(&home, ".config/aiex/config.toml", "[search]\nlimit = 12\n");
    let named = write(dir.path(), "named.toml", "[search]\nlimit = 13\n");
    let (xdg, home, named) = (
        xdg.to_str().unwrap(),
        home.to_str().unwrap(),
        named.to_str().unwrap(),
    );

    let limit = |env: &[(&str, &str)]| load(None, env, &[]).map(|c| c.search.limit);
    assert_eq!(
        limit(&[("XDG_CONFIG_HOME", xdg), ("HOME", home)]).unwrap(),
        11
    );
    assert_eq!(limit(&[("HOME", home)]).unwrap(), 12);
    assert_eq!(
        limit(&[("HOME", home), ("AIEX_CONFIG", named)]).unwrap(),
        13
    );
    assert_eq!(limit(&[("HOME", "/nonexistent")]).unwrap(), 10);

    let err = limit(&[("AIEX_CONFIG", "/nonexistent/aiex.toml")]).unwrap_err();
    assert!(matches!(err, ConfigError::MissingFile { .. }));
    assert!(err.to_string().contains("env AIEX_CONFIG"), "{err}");

    let opts = LoadOptions {
        env: Some(pairs(&[("HOME", home)])),
        ..LoadOptions::default()
    };
    let found = opts.discover_file().unwrap().unwrap();
    assert!(found.ends_with(".config/aiex/config.toml"));
}

#[test]
fn searxng_url_and_key_from_the_environment() {
    let config = load(None, &[], &[]).unwrap();
    assert_eq!(config.web.searxng_url, "", "not used by default");
    assert_eq!(config.web.searxng_api_key, None);

    let env = [
        ("AIEX__WEB__SEARXNG_URL", "HTTP://searx.lan:8888/searx"),
        ("AIEX__WEB__SEARXNG_API_KEY", "proxy-token"),
    ];
    let config = load(None, &env, &[]).unwrap();
    assert_eq!(config.web.searxng_url, "http://searx.lan:8888/searx");
    assert_eq!(
        config.web.searxng_api_key.as_ref().map(|key| key.expose()),
        Some("proxy-token")
    );
    assert!(!format!("{config:?}").contains("proxy-token"));

    // An empty value turns SearxNG off again.
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "a.toml",
        "[web]\nsearxng_url = \"http://searx.lan\"\n",
    );
    let config = load(Some(&file), &[("AIEX__WEB__SEARXNG_URL", "")], &[]).unwrap();
    assert_eq!(config.web.searxng_url, "");
}

#[test]
fn a_bad_searxng_url_is_a_clear_problem() {
    let found = problems(load(
        None,
        &[("AIEX__WEB__SEARXNG_URL", "searx.lan:8888")],
        &[],
    ));
    assert_eq!(keys(&found), ["web.searxng_url"]);
    assert_eq!(
        found[0].to_string(),
        "web.searxng_url (env AIEX__WEB__SEARXNG_URL): must start with http:// or https:// \
         (or be empty)"
    );

    // A key with nowhere to go is a mistake, reported without the key.
    let found = problems(load(
        None,
        &[("AIEX__WEB__SEARXNG_API_KEY", "proxy-token")],
        &[],
    ));
    assert_eq!(keys(&found), ["web.searxng_api_key"]);
    let shown = found[0].to_string();
    assert!(
        shown.contains("is set but web.searxng_url is not"),
        "{shown}"
    );
    assert!(!shown.contains("proxy-token"), "{shown}");
}
