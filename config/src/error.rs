//! The crate's error type and the problems it reports.

use std::fmt;
use std::path::PathBuf;

/// Result with [`ConfigError`] as the default error.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Everything that can go wrong while loading or checking a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file named explicitly (`--config`, `AIEX_CONFIG`) does not exist.
    #[error("config file {} does not exist (named by {origin})", path.display())]
    MissingFile {
        /// The missing file.
        path: PathBuf,
        /// Who named it, e.g. `--config` or `env AIEX_CONFIG`.
        origin: String,
    },
    /// A config file exists but cannot be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The unreadable file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A config file is not valid TOML.
    #[error("cannot parse {origin} as toml: {message}")]
    Parse {
        /// The file (or fixture name) that failed to parse.
        origin: String,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// The configuration has one or more problems; all of them are listed.
    #[error("{}", describe_problems(.problems))]
    Invalid {
        /// Every problem found, in layer order then key order.
        problems: Vec<Problem>,
    },
    /// A string does not name a variant of an enum such as [`crate::SearchMode`].
    #[error("unknown {what} `{value}` (expected one of {expected})")]
    UnknownVariant {
        /// What was being parsed, e.g. `search mode`.
        what: &'static str,
        /// The rejected text.
        value: String,
        /// The accepted names, comma separated.
        expected: String,
    },
    /// A bug or an unrepresentable value (such as a non-UTF-8 default path).
    #[error("internal configuration error: {0}")]
    Internal(String),
}

impl ConfigError {
    /// The problems of an [`ConfigError::Invalid`] error; empty for other errors.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

fn describe_problems(problems: &[Problem]) -> String {
    match problems {
        [single] => format!("invalid configuration: {single}"),
        _ => {
            let mut text = format!("invalid configuration ({} problems):", problems.len());
            for problem in problems {
                text.push_str("\n  - ");
                text.push_str(&problem.to_string());
            }
            text
        }
    }
}

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A TOML file (or the origin name given to [`crate::Config::from_toml_str`]).
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// A command-line override, by dotted key.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "env {name}"),
            Self::Flag(key) => write!(f, "flag --{key}"),
        }
    }
}

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, e.g. `index.max_file_bytes`.
    pub key: String,
    /// Where the offending value came from; `None` when unknown (see [`crate::Config::validate`]).
    pub source: Option<Source>,
    /// What is wrong, lowercase.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{} ({source}): {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(key: &str, message: &str) -> Problem {
        Problem {
            key: key.to_owned(),
            source: Some(Source::Env(format!("AIEX__{}", key.to_uppercase()))),
            message: message.to_owned(),
        }
    }

    #[test]
    fn one_problem_on_one_line() {
        let err = ConfigError::Invalid {
            problems: vec![problem("version", "unsupported version 2 (expected 1)")],
        };
        assert_eq!(
            err.to_string(),
            "invalid configuration: version (env AIEX__VERSION): unsupported version 2 (expected 1)"
        );
    }

    #[test]
    fn many_problems_listed() {
        let err = ConfigError::Invalid {
            problems: vec![problem("a", "bad"), problem("b", "worse")],
        };
        assert_eq!(
            err.to_string(),
            "invalid configuration (2 problems):\n  - a (env AIEX__A): bad\n  - b (env AIEX__B): worse"
        );
        assert_eq!(err.problems().len(), 2);
    }

    #[test]
    fn sources_display() {
        assert_eq!(Source::Default.to_string(), "default");
        assert_eq!(Source::File("/a.toml".into()).to_string(), "file /a.toml");
        assert_eq!(
            Source::Flag("search.limit".into()).to_string(),
            "flag --search.limit"
        );
    }
}
