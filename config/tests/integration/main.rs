//! Integration tests for `aiex-config`: fixtures, layering, discovery and redaction.

#![allow(clippy::unwrap_used)]

mod files;
mod layering;
mod redaction;

use std::path::{Path, PathBuf};

use aiex_config::{Config, ConfigError, LoadOptions, Problem};

/// A fixture under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Loads with exactly `env` (no process environment) and the given file and flags.
pub fn load(
    file: Option<&Path>,
    env: &[(&str, &str)],
    flags: &[(&str, &str)],
) -> Result<Config, ConfigError> {
    Config::load(&LoadOptions {
        file: file.map(Path::to_path_buf),
        env: Some(pairs(env)),
        overrides: pairs(flags),
    })
}

pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The problems of an expected `Invalid` error.
pub fn problems(result: Result<Config, ConfigError>) -> Vec<Problem> {
    match result {
        Ok(config) => panic!("expected problems, got {config:?}"),
        Err(err @ ConfigError::Invalid { .. }) => err.problems().to_vec(),
        Err(other) => panic!("expected invalid configuration, got {other}"),
    }
}

pub fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}
