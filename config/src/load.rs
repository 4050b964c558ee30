//! Layering: defaults < TOML file < `AIEX__*` environment < command-line overrides.
//!
//! Every layer is flattened to dotted keys and checked against the schema as it is applied,
//! remembering which [`Source`] set each key, so that unknown keys, type errors and invalid
//! values can all be reported together, each with where it came from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::env::{EnvVars, ENV_CONFIG, ENV_DATA_DIR, ENV_LLM_ALIASES, ENV_PREFIX};
use crate::model::APP_DIR;
use crate::schema::{self, Field, FIELDS};
use crate::{validate, Config, ConfigError, Problem, Result, Source};

/// Where [`Config::load`] looks for its layers.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// Explicit config file (`--config PATH`); it must exist. When `None` the file is
    /// `$AIEX_CONFIG` (which must exist), else `${XDG_CONFIG_HOME:-~/.config}/aiex/config.toml`
    /// if it exists, else there is no file layer.
    pub file: Option<PathBuf>,
    /// Environment to read; `None` reads the process environment. With `Some`, exactly these
    /// variables are used, for `AIEX__*` keys as well as for `AIEX_CONFIG`, `HOME` and the XDG
    /// directories (so tests are hermetic).
    pub env: Option<Vec<(String, String)>>,
    /// Command-line overrides as (dotted key, raw value), e.g. `("index.max_file_bytes", "2048")`.
    /// Dashes in keys are read as underscores.
    pub overrides: Vec<(String, String)>,
}

impl fmt::Debug for LoadOptions {
    // Values may be secrets: show names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |pairs: &[(String, String)]| -> Vec<String> {
            pairs.iter().map(|(name, _)| name.clone()).collect()
        };
        f.debug_struct("LoadOptions")
            .field("file", &self.file)
            .field("env", &self.env.as_deref().map(names))
            .field("overrides", &names(&self.overrides))
            .finish()
    }
}

impl LoadOptions {
    /// The config file [`Config::load`] would read, if any (errors as `load` would).
    pub fn discover_file(&self) -> Result<Option<PathBuf>> {
        discover(self, &EnvVars::capture(self.env.as_deref()))
    }
}

impl Config {
    /// Builds the configuration from every layer and validates it. All problems found
    /// (unknown keys, wrong types, invalid values) are returned together in
    /// [`ConfigError::Invalid`].
    pub fn load(opts: &LoadOptions) -> Result<Config> {
        let env = EnvVars::capture(opts.env.as_deref());
        let mut defaults = Config::default();
        if env.injected {
            defaults.data_dir = env.default_data_dir();
        }
        let mut layers = Layers::new(&defaults)?;
        if let Some(path) = discover(opts, &env)? {
            let table = read_table(&path)?;
            layers.apply_table(table, &Source::File(path));
        }
        layers.apply_env(&env);
        for (key, raw) in &opts.overrides {
            let key = key.trim().trim_start_matches("--").replace('-', "_");
            layers.apply_raw(&key, raw, Source::Flag(key.clone()));
        }
        layers.finish(env.home().as_deref())
    }

    /// Defaults overlaid with the TOML `text`; `origin` names it in messages.
    /// Nothing else (environment, files) is read, except the home directory for `~` in paths.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config> {
        let table = parse_table(text, origin)?;
        let mut layers = Layers::new(&Config::default())?;
        layers.apply_table(table, &Source::File(PathBuf::from(origin)));
        layers.finish(EnvVars::capture(None).home().as_deref())
    }

    /// The effective configuration as TOML for `config show`: secrets print as `"***"`, and
    /// `data_dir`, `embedding.model_dir` and `embedding.runtime_path` are shown resolved.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.embedding.model_dir = Some(self.model_dir());
        shown.embedding.runtime_path = Some(self.runtime_path());
        toml::to_string(&shown)
            .unwrap_or_else(|err| format!("# cannot render the configuration as toml: {err}\n"))
    }
}

/// The file layer to read, if any.
fn discover(opts: &LoadOptions, env: &EnvVars) -> Result<Option<PathBuf>> {
    if let Some(path) = &opts.file {
        return require(path, "--config").map(Some);
    }
    if let Some(path) = env.path(ENV_CONFIG) {
        return require(&path, &format!("env {ENV_CONFIG}")).map(Some);
    }
    Ok(env
        .xdg_dir("XDG_CONFIG_HOME", ".config")
        .map(|dir| dir.join(APP_DIR).join("config.toml"))
        .filter(|path| path.is_file()))
}

fn require(path: &Path, origin: &str) -> Result<PathBuf> {
    match path.try_exists() {
        Ok(true) => Ok(path.to_path_buf()),
        Ok(false) => Err(ConfigError::MissingFile {
            path: path.to_path_buf(),
            origin: origin.to_owned(),
        }),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read_table(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ConfigError::MissingFile {
            path: path.to_path_buf(),
            origin: "discovery".to_owned(),
        },
        _ => ConfigError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    parse_table(&text, &path.display().to_string())
}

fn parse_table(text: &str, origin: &str) -> Result<Table> {
    toml::from_str(text).map_err(|err: toml::de::Error| ConfigError::Parse {
        origin: origin.to_owned(),
        message: err.to_string().trim_end().to_owned(),
    })
}

/// The merged dotted keys so far, with the source of each and the problems met.
struct Layers {
    values: BTreeMap<&'static str, (Value, Source)>,
    defaults: BTreeMap<&'static str, Value>,
    problems: Vec<Problem>,
}

impl Layers {
    fn new(defaults: &Config) -> Result<Self> {
        let table = Table::try_from(defaults).map_err(|err| {
            ConfigError::Internal(format!("cannot represent the defaults as toml: {err}"))
        })?;
        let mut values = BTreeMap::new();
        for (name, value) in table {
            let entries = match value {
                Value::Table(section) => section
                    .into_iter()
                    .map(|(leaf, value)| (format!("{name}.{leaf}"), value))
                    .collect(),
                value => vec![(name, value)],
            };
            for (key, value) in entries {
                let field = schema::field(&key).ok_or_else(|| {
                    ConfigError::Internal(format!("default key {key} is missing from the schema"))
                })?;
                values.insert(field.key, (value, Source::Default));
            }
        }
        let defaults = values
            .iter()
            .map(|(key, (value, _))| (*key, value.clone()))
            .collect();
        Ok(Self {
            values,
            defaults,
            problems: Vec::new(),
        })
    }

    fn problem(&mut self, key: impl Into<String>, source: Source, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            source: Some(source),
            message: message.into(),
        });
    }

    fn unknown(&mut self, key: String, source: Source) {
        let message = match schema::suggest(&key) {
            Some(known) => format!("unknown key (did you mean `{known}`?)"),
            None => "unknown key".to_owned(),
        };
        self.problem(key, source, message);
    }

    fn set(&mut self, field: &'static Field, value: Value, source: Source) {
        self.values.insert(field.key, (value, source));
    }

    /// Applies a parsed TOML document.
    fn apply_table(&mut self, table: Table, source: &Source) {
        for (name, value) in table {
            if let Some(field) = schema::field(&name) {
                self.set(field, value, source.clone());
            } else if !schema::is_section(&name) {
                self.unknown(name, source.clone());
            } else if let Value::Table(section) = value {
                for (leaf, value) in section {
                    let key = format!("{name}.{leaf}");
                    match schema::field(&key) {
                        Some(field) => self.set(field, value, source.clone()),
                        None => self.unknown(key, source.clone()),
                    }
                }
            } else {
                let message = format!("expected a table, found {}", value.type_str());
                self.problem(name, source.clone(), message);
            }
        }
    }

    /// Applies one raw text value (environment or flag). An empty value unsets an
    /// optional key.
    fn apply_raw(&mut self, key: &str, raw: &str, source: Source) {
        match schema::field(key) {
            None => self.unknown(key.to_owned(), source),
            Some(field) if field.optional && raw.trim().is_empty() => {
                self.values.remove(field.key);
            }
            Some(field) => self.set(field, schema::coerce_raw(field.kind, raw), source),
        }
    }

    fn apply_env(&mut self, env: &EnvVars) {
        if let Some(dir) = env.get(ENV_DATA_DIR) {
            self.apply_raw("data_dir", dir, Source::Env(ENV_DATA_DIR.to_owned()));
        }
        for (name, key) in ENV_LLM_ALIASES {
            if let Some(raw) = env.get(name) {
                self.apply_raw(key, raw, Source::Env(name.to_owned()));
            }
        }
        // Sorted for stable messages; a later duplicate wins.
        let keyed: BTreeMap<&str, &str> = env
            .vars
            .iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        for (name, raw) in keyed {
            let key = name[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            self.apply_raw(&key, raw, Source::Env(name.to_owned()));
        }
        for name in &env.unreadable {
            let key = name[ENV_PREFIX.len().min(name.len())..].to_ascii_lowercase();
            self.problem(key, Source::Env(name.clone()), "value is not valid unicode");
        }
    }

    fn source_of(&self, key: &str) -> Source {
        self.values
            .get(key)
            .map_or(Source::Default, |(_, source)| source.clone())
    }

    /// Type-checks every key, deserializes, validates, and reports all problems.
    fn finish(mut self, home: Option<&Path>) -> Result<Config> {
        let mut rejected = BTreeSet::new();
        for field in FIELDS {
            let Some((value, source)) = self.values.get_mut(field.key) else {
                continue;
            };
            let Err(message) = schema::check(field.kind, value, home) else {
                continue;
            };
            let source = source.clone();
            self.problem(field.key, source, message);
            rejected.insert(field.key);
            match self.defaults.get(field.key) {
                Some(default) => {
                    self.values
                        .insert(field.key, (default.clone(), Source::Default));
                }
                None => {
                    self.values.remove(field.key);
                }
            }
        }

        let mut root = Table::new();
        for (key, (value, _)) in &self.values {
            match key.split_once('.') {
                Some((section, leaf)) => {
                    let slot = root
                        .entry(section)
                        .or_insert_with(|| Value::Table(Table::new()));
                    if let Value::Table(section) = slot {
                        section.insert(leaf.to_owned(), value.clone());
                    }
                }
                None => {
                    root.insert((*key).to_owned(), value.clone());
                }
            }
        }
        let mut config: Config = match Value::Table(root).try_into() {
            Ok(config) => config,
            Err(_) if !self.problems.is_empty() => {
                return Err(ConfigError::Invalid {
                    problems: self.problems,
                })
            }
            Err(err) => {
                return Err(ConfigError::Internal(format!(
                    "the checked configuration does not deserialize: {err}"
                )))
            }
        };

        validate::normalise_urls(&mut config);
        for issue in validate::issues(&config) {
            if rejected.contains(issue.key) || issue.related.is_some_and(|r| rejected.contains(r)) {
                continue;
            }
            let mut message = issue.message;
            let source = self.source_of(issue.key);
            if let Some(related) = issue.related {
                let related_source = self.source_of(related);
                if related_source != Source::Default && related_source != source {
                    message.push_str(&format!("; {related} from {related_source}"));
                }
            }
            self.problem(issue.key, source, message);
        }

        if self.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                problems: self.problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_matches_the_model() {
        let layers = Layers::new(&Config::default()).expect("defaults");
        for field in FIELDS {
            assert_eq!(
                layers.defaults.contains_key(field.key),
                !field.optional,
                "{} optional={} but default presence differs",
                field.key,
                field.optional
            );
        }
        // Optional fields exist in the model too: set them all and round-trip.
        let mut config = Config::default();
        config.embedding.model_dir = Some("/m".into());
        config.embedding.runtime_path = Some("/r".into());
        config.vector.url = Some("http://x".into());
        config.vector.api_key = Some("k".into());
        config.web.serper_api_key = Some("k".into());
        config.web.tavily_api_key = Some("k".into());
        config.web.searxng_api_key = Some("k".into());
        config.llm.url = Some("http://x".into());
        config.llm.model = Some("m".into());
        config.llm.api_key = Some("k".into());
        config.llm.embed_model = Some("e".into());
        let layers = Layers::new(&config).expect("all keys");
        assert_eq!(layers.values.len(), FIELDS.len());
    }

    #[test]
    fn choice_names_match_the_enums() {
        let names = |key| match schema::field(key).map(|f| f.kind) {
            Some(schema::Kind::Choice(names)) => names.to_vec(),
            other => panic!("{key} is {other:?}"),
        };
        let modes: Vec<&str> = crate::SearchMode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names("search.mode"), modes);
        let backends: Vec<&str> = crate::VectorBackend::ALL
            .iter()
            .map(|b| b.as_str())
            .collect();
        assert_eq!(names("vector.backend"), backends);
    }

    #[test]
    fn debug_hides_values() {
        let opts = LoadOptions {
            env: Some(vec![("AIEX__VECTOR__API_KEY".into(), "hunter2".into())]),
            overrides: vec![("vector.api_key".into(), "hunter3".into())],
            ..LoadOptions::default()
        };
        let shown = format!("{opts:?}");
        assert!(shown.contains("AIEX__VECTOR__API_KEY"));
        assert!(!shown.contains("hunter"));
    }
}
