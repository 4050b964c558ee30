//! Secrets never leak, and `config show` output is the effective configuration.

use aiex_config::{Config, Secret, REDACTED};

use crate::load;

const SECRET: &str = "s3cr3t-api-key-value";

fn with_secret() -> Config {
    load(
        None,
        &[
            ("AIEX__VECTOR__BACKEND", "server"),
            ("AIEX__VECTOR__URL", "http://localhost:6334"),
            ("AIEX__VECTOR__API_KEY", SECRET),
            ("AIEX__DATA_DIR", "/data"),
        ],
        &[],
    )
    .unwrap()
}

#[test]
fn secret_is_redacted_everywhere() {
    let config = with_secret();
    let key = config.vector.api_key.as_ref().unwrap();
    assert_eq!(key.expose(), SECRET);
    assert_eq!(key.to_string(), REDACTED);
    assert!(!format!("{config:?}").contains(SECRET));
    assert!(!format!("{config:#?}").contains(SECRET));
    let shown = config.to_redacted_toml();
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("api_key = \"***\""), "{shown}");
}

#[test]
fn secret_type_errors_do_not_echo_the_value() {
    let err = Config::from_toml_str("[vector]\napi_key = 123456789", "x").unwrap_err();
    assert!(!err.to_string().contains("123456789"), "{err}");
}

#[test]
fn show_prints_the_resolved_configuration() {
    let config = with_secret();
    let shown = config.to_redacted_toml();
    assert!(
        shown.starts_with("version = 1\ndata_dir = \"/data\"\n"),
        "{shown}"
    );
    assert!(
        shown.contains("model_dir = \"/data/models/all-MiniLM-L6-v2\""),
        "{shown}"
    );
    assert!(
        shown.contains("runtime_path = \"/data/runtime/libonnxruntime.so.1.31.1\""),
        "{shown}"
    );
    // The output is itself a valid config describing the same settings.
    let again = Config::from_toml_str(&shown, "show").unwrap();
    assert_eq!(again.vector.api_key, Some(Secret::new(REDACTED)));
    assert_eq!(again.model_dir(), config.model_dir());
    assert_eq!(again.search, config.search);
    assert_eq!(again.index, config.index);
}
