//! The environment as this crate sees it: the process environment, or an injected list.

use std::path::PathBuf;

use crate::model::{default_data_dir, APP_DIR, FALLBACK_DATA_DIR};

/// Prefix of environment variables that set configuration keys.
pub(crate) const ENV_PREFIX: &str = "AIEX__";
/// Names a config file, like `--config`.
pub(crate) const ENV_CONFIG: &str = "AIEX_CONFIG";
/// Convenience alias for `AIEX__DATA_DIR`, shared with the setup script.
pub(crate) const ENV_DATA_DIR: &str = "AIEX_DATA_DIR";
/// Short variables for the single LLM provider (the no-config-file case), with their keys.
/// They apply before `AIEX__*` variables, which therefore win.
pub(crate) const ENV_LLM_ALIASES: [(&str, &str); 5] = [
    ("AIEX_LLM_URL", "llm.url"),
    ("AIEX_LLM_MODEL", "llm.model"),
    ("AIEX_LLM_PROVIDER", "llm.provider"),
    ("AIEX_LLM_API_KEY", "llm.api_key"),
    ("AIEX_LLM_EMBED_MODEL", "llm.embed_model"),
];

/// A snapshot of the variables this crate reads.
pub(crate) struct EnvVars {
    pub(crate) vars: Vec<(String, String)>,
    /// `AIEX__*` variables whose value is not valid unicode.
    pub(crate) unreadable: Vec<String>,
    /// Whether the variables were given in [`crate::LoadOptions::env`].
    pub(crate) injected: bool,
}

impl EnvVars {
    pub(crate) fn capture(injected: Option<&[(String, String)]>) -> Self {
        if let Some(vars) = injected {
            return Self {
                vars: vars.to_vec(),
                unreadable: Vec::new(),
                injected: true,
            };
        }
        let mut vars = Vec::new();
        let mut unreadable = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|name| name.starts_with("AIEX")) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => vars.push((name.to_owned(), value)),
                Err(_) if name.starts_with(ENV_PREFIX) || name == ENV_DATA_DIR => {
                    unreadable.push(name.to_owned());
                }
                Err(_) => {}
            }
        }
        Self {
            vars,
            unreadable,
            injected: false,
        }
    }

    /// The last value of `name`, if set and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// `name` as a path, if set and not empty; reads the process environment directly when
    /// not injected, so non-unicode paths work.
    pub(crate) fn path(&self, name: &str) -> Option<PathBuf> {
        if self.injected {
            self.get(name).map(PathBuf::from)
        } else {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        }
    }

    pub(crate) fn home(&self) -> Option<PathBuf> {
        if self.injected {
            self.path("HOME")
        } else {
            directories::BaseDirs::new().map(|dirs| dirs.home_dir().to_path_buf())
        }
    }

    /// `$var` when absolute, else `$HOME/fallback`.
    pub(crate) fn xdg_dir(&self, var: &str, fallback: &str) -> Option<PathBuf> {
        self.path(var)
            .filter(|dir| dir.is_absolute())
            .or_else(|| self.home().map(|home| home.join(fallback)))
    }

    pub(crate) fn default_data_dir(&self) -> PathBuf {
        if !self.injected {
            return default_data_dir();
        }
        self.xdg_dir("XDG_DATA_HOME", ".local/share")
            .map(|dir| dir.join(APP_DIR))
            .unwrap_or_else(|| PathBuf::from(".").join(FALLBACK_DATA_DIR))
    }
}
