//! The set of known keys, their value kinds, and how raw text and TOML values are checked
//! against them before serde sees them.

use toml::Value;

/// The value kind of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A non-negative integer up to the given maximum.
    Uint(u64),
    /// A number (integers are accepted and converted).
    Float,
    Bool,
    Str,
    /// A filesystem path; a leading `~` is expanded to the home directory.
    Path,
    /// A string whose value must never appear in messages.
    Secret,
    /// An array of strings; from raw text, also a comma-separated list.
    StrList,
    /// One of these lowercase names (matched case-insensitively).
    Choice(&'static [&'static str]),
    /// An array of tables, each an LLM provider (`[[llm.providers]]`).
    LlmProviders,
}

/// One known key.
#[derive(Debug)]
pub(crate) struct Field {
    /// Dotted key: `name` or `section.name`.
    pub key: &'static str,
    pub kind: Kind,
    /// Whether the field is an `Option` (absent by default).
    pub optional: bool,
}

const U32: Kind = Kind::Uint(u32::MAX as u64);
const U64: Kind = Kind::Uint(u64::MAX);
const USIZE: Kind = Kind::Uint(usize::MAX as u64);

const fn req(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        optional: false,
    }
}

const fn opt(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        optional: true,
    }
}

/// Every key, in the order of the model's fields.
pub(crate) const FIELDS: &[Field] = &[
    req("version", U32),
    req("data_dir", Kind::Path),
    req("index.max_file_bytes", U64),
    req("index.include", Kind::StrList),
    req("index.exclude", Kind::StrList),
    req("index.hidden", Kind::Bool),
    req("index.respect_gitignore", Kind::Bool),
    req("index.threads", USIZE),
    req("chunk.max_tokens", USIZE),
    req("chunk.min_tokens", USIZE),
    req("chunk.window_lines", USIZE),
    req("chunk.window_overlap", USIZE),
    req("embedding.enabled", Kind::Bool),
    req("embedding.provider", Kind::Choice(&["onnx", "llm"])),
    req("embedding.model_id", Kind::Str),
    opt("embedding.model_dir", Kind::Path),
    opt("embedding.runtime_path", Kind::Path),
    req("embedding.dimension", USIZE),
    req("embedding.max_length", USIZE),
    req("embedding.batch_size", USIZE),
    req("embedding.threads", USIZE),
    req("vector.backend", Kind::Choice(&["edge", "server"])),
    opt("vector.url", Kind::Str),
    opt("vector.api_key", Kind::Secret),
    req("vector.hnsw_ef", USIZE),
    req("vector.optimize_min_points", USIZE),
    req("vector.connect_timeout_ms", U64),
    req("vector.request_timeout_ms", U64),
    req("vector.shard_number", U32),
    req("vector.replication_factor", U32),
    req("vector.write_consistency_factor", U32),
    req("vector.on_disk", Kind::Bool),
    req("vector.lease_secs", U64),
    req(
        "search.mode",
        Kind::Choice(&["keyword", "vector", "hybrid"]),
    ),
    req("search.limit", USIZE),
    req("search.fusion", Kind::Choice(&["relative", "rrf"])),
    req("search.rrf_k", Kind::Float),
    req("search.keyword_weight", Kind::Float),
    req("search.vector_weight", Kind::Float),
    req("search.budget_ms", U64),
    req("search.local_deadline_ms", U64),
    req("search.web_deadline_ms", U64),
    req("search.cache_bytes", U64),
    opt("web.serper_api_key", Kind::Secret),
    opt("web.tavily_api_key", Kind::Secret),
    opt("web.searxng_api_key", Kind::Secret),
    req("web.serper_url", Kind::Str),
    req("web.tavily_url", Kind::Str),
    req("web.searxng_url", Kind::Str),
    req("web.timeout_ms", U64),
    req("web.requests_per_minute", U32),
    req("web.max_retries", U32),
    req("web.cache_ttl_secs", U64),
    req("web.trusted_domains", Kind::StrList),
    req("server.bind", Kind::Str),
    req("server.api_keys", Kind::StrList),
    req("server.revoked_keys", Kind::StrList),
    req("server.requests_per_minute", U32),
    req("server.burst", U32),
    req("server.max_body_bytes", USIZE),
    req("server.max_query_bytes", USIZE),
    req("server.request_timeout_ms", U64),
    req("server.header_read_timeout_ms", U64),
    req("server.max_connections", USIZE),
    req("server.failed_auth_per_minute", U32),
    req("server.cors_allowed_origins", Kind::StrList),
    req("server.allowed_roots", Kind::StrList),
    req("server.job_concurrency", USIZE),
    req("server.job_retention_hours", U64),
    req("server.keep_alive_secs", U64),
    req("server.history_limit", USIZE),
    req("fetch.timeout_ms", U64),
    req("fetch.connect_timeout_ms", U64),
    req("fetch.max_bytes", U64),
    req("fetch.max_redirects", U32),
    req("fetch.user_agent", Kind::Str),
    req("fetch.allow_private_hosts", Kind::Bool),
    req("fetch.respect_robots", Kind::Bool),
    req("fetch.per_host_delay_ms", U64),
    req("fetch.concurrency", USIZE),
    req("research.max_sub_questions", USIZE),
    req("research.max_searches", USIZE),
    req("research.max_pages", USIZE),
    req("research.max_tokens", U64),
    req("research.max_cost_usd", Kind::Float),
    req("research.max_wall_secs", U64),
    req("research.hits_per_search", USIZE),
    req("research.search_concurrency", USIZE),
    req("research.evidence_tokens", USIZE),
    req("research.passages_per_sub_question", USIZE),
    req("research.embed_candidates", USIZE),
    req("research.depth", USIZE),
    req("research.resume_concurrency", USIZE),
    opt("llm.url", Kind::Str),
    opt("llm.model", Kind::Str),
    req(
        "llm.provider",
        Kind::Choice(&["openai", "anthropic", "ollama"]),
    ),
    opt("llm.api_key", Kind::Secret),
    opt("llm.embed_model", Kind::Str),
    req("llm.providers", Kind::LlmProviders),
    req("llm.fast", Kind::StrList),
    req("llm.smart", Kind::StrList),
    req("llm.embed", Kind::StrList),
    req("llm.connect_timeout_ms", U64),
    req("llm.first_token_timeout_ms", U64),
    req("llm.total_timeout_ms", U64),
    req("llm.max_retries", U32),
    req("llm.retry_base_ms", U64),
    req("llm.retry_max_ms", U64),
    req("llm.breaker_failures", U32),
    req("llm.breaker_cooldown_ms", U64),
    req("llm.max_tokens", U32),
];

/// The known key `key`, if any.
pub(crate) fn field(key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|field| field.key == key)
}

/// Whether `name` is a section (`index`, `chunk`, ...).
pub(crate) fn is_section(name: &str) -> bool {
    FIELDS.iter().any(|field| {
        field
            .key
            .split_once('.')
            .is_some_and(|(section, _)| section == name)
    })
}

/// The known key an unknown `key` most likely meant.
pub(crate) fn suggest(key: &str) -> Option<&'static str> {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    if let Some(moved) = FIELDS
        .iter()
        .find(|field| field.key.rsplit('.').next() == Some(leaf))
    {
        return Some(moved.key);
    }
    let budget = (key.chars().count() / 3).max(2);
    FIELDS
        .iter()
        .map(|field| (edit_distance(key, field.key), field.key))
        .filter(|(distance, _)| *distance <= budget)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Turns raw text from the environment or a flag into a value for `kind`: the text parsed
/// as a TOML value when that gives the right type, else the text as a plain string
/// (for string lists, a comma-separated list).
pub(crate) fn coerce_raw(kind: Kind, raw: &str) -> Value {
    let parsed = parse_value(raw);
    let typed = match kind {
        Kind::Uint(_) => parsed.filter(Value::is_integer),
        Kind::Float => parsed.filter(|v| v.is_float() || v.is_integer()),
        Kind::Bool => parsed.filter(Value::is_bool).or_else(|| {
            let text = raw.trim();
            ["true", "false"]
                .into_iter()
                .find(|word| word.eq_ignore_ascii_case(text))
                .map(|word| Value::Boolean(word == "true"))
        }),
        Kind::Str | Kind::Path | Kind::Secret | Kind::Choice(_) => parsed.filter(Value::is_str),
        Kind::LlmProviders => parsed.filter(Value::is_array),
        Kind::StrList => parsed.filter(is_string_array).or_else(|| {
            let items = raw
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect();
            Some(Value::Array(items))
        }),
    };
    typed.unwrap_or_else(|| Value::String(raw.to_owned()))
}

/// `raw` as a single TOML value, if it is one.
fn parse_value(raw: &str) -> Option<Value> {
    let mut table: toml::Table = toml::from_str(&format!("value = {raw}")).ok()?;
    if table.len() != 1 {
        return None;
    }
    table.remove("value")
}

fn is_string_array(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|items| items.iter().all(Value::is_str))
}

/// Checks `value` against `kind`, normalizing it in place (integers to floats, choices to
/// lowercase, `~` to `home`). Returns what is wrong, lowercase.
pub(crate) fn check(
    kind: Kind,
    value: &mut Value,
    home: Option<&std::path::Path>,
) -> Result<(), String> {
    let secret = kind == Kind::Secret;
    match kind {
        Kind::Uint(max) => match value.as_integer() {
            Some(n) if u64::try_from(n).is_ok_and(|n| n <= max) => Ok(()),
            Some(n) => Err(format!("must be between 0 and {max}, found {n}")),
            None => Err(expected("a non-negative integer", value, secret)),
        },
        Kind::Float => match value {
            Value::Float(_) => Ok(()),
            Value::Integer(n) => {
                // Exact for every integer a sane config holds; f32 rounding happens in serde.
                #[allow(clippy::cast_precision_loss)]
                let float = *n as f64;
                *value = Value::Float(float);
                Ok(())
            }
            _ => Err(expected("a number", value, secret)),
        },
        Kind::Bool if value.is_bool() => Ok(()),
        Kind::Bool => Err(expected("a boolean (true or false)", value, secret)),
        Kind::Str | Kind::Secret if value.is_str() => Ok(()),
        Kind::Str | Kind::Secret => Err(expected("a string", value, secret)),
        Kind::Path => match value.as_str() {
            Some(text) => {
                if let Some(expanded) = home.and_then(|home| expand_home(text, home)) {
                    *value = Value::String(expanded);
                }
                Ok(())
            }
            None => Err(expected("a path string", value, secret)),
        },
        Kind::LlmProviders => check_llm_providers(value),
        Kind::StrList if is_string_array(value) => Ok(()),
        Kind::StrList => Err(expected("an array of strings", value, secret)),
        Kind::Choice(names) => {
            let wanted = value.as_str().map(str::trim);
            match names
                .iter()
                .find(|name| wanted.is_some_and(|w| name.eq_ignore_ascii_case(w)))
            {
                Some(name) => {
                    *value = Value::String((*name).to_owned());
                    Ok(())
                }
                None => Err(expected(
                    &format!("one of {}", quoted_list(names)),
                    value,
                    secret,
                )),
            }
        }
    }
}

/// Checks every provider table against the model, so that a wrong field is reported on
/// `llm.providers` instead of failing the whole configuration. Secrets are never echoed: the
/// message names the provider and the serde complaint, which quotes keys, not secret values.
fn check_llm_providers(value: &Value) -> Result<(), String> {
    let Some(items) = value.as_array() else {
        return Err(expected("an array of provider tables", value, false));
    };
    let mut problems = Vec::new();
    for (position, item) in items.iter().enumerate() {
        if !item.is_table() {
            problems.push(format!("provider {}: expected a table", position + 1));
            continue;
        }
        // A secret of the wrong type would otherwise be quoted by serde.
        if item.get("api_key").is_some_and(|key| !key.is_str()) {
            problems.push(format!(
                "provider {}: api_key must be a string",
                position + 1
            ));
            continue;
        }
        if let Err(err) = item.clone().try_into::<crate::LlmProviderConfig>() {
            problems.push(format!("provider {}: {}", position + 1, err.message()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn expand_home(text: &str, home: &std::path::Path) -> Option<String> {
    let rest = text.strip_prefix('~')?;
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with(std::path::MAIN_SEPARATOR)) {
        return None;
    }
    let home = home.to_str()?;
    Some(format!("{home}{rest}"))
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn expected(what: &str, found: &Value, secret: bool) -> String {
    let shown = match found {
        Value::Array(_) | Value::Table(_) => None,
        _ if secret => None,
        scalar => Some(scalar.to_string()),
    };
    match shown {
        Some(shown) => format!("expected {what}, found {} {shown}", found.type_str()),
        None => format!("expected {what}, found {}", found.type_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_text_becomes_typed_values() {
        assert_eq!(coerce_raw(USIZE, "42"), Value::Integer(42));
        assert_eq!(coerce_raw(USIZE, "forty"), Value::String("forty".into()));
        assert_eq!(coerce_raw(Kind::Float, "2"), Value::Integer(2));
        assert_eq!(coerce_raw(Kind::Bool, "TRUE"), Value::Boolean(true));
        assert_eq!(coerce_raw(Kind::Str, "1e3"), Value::String("1e3".into()));
        assert_eq!(
            coerce_raw(Kind::Str, "\"quoted\""),
            Value::String("quoted".into())
        );
        assert_eq!(
            coerce_raw(Kind::Path, "/a b/c"),
            Value::String("/a b/c".into())
        );
        let list = |items: &[&str]| {
            Value::Array(items.iter().map(|s| Value::String((*s).into())).collect())
        };
        assert_eq!(
            coerce_raw(Kind::StrList, r#"["a", "b"]"#),
            list(&["a", "b"])
        );
        assert_eq!(
            coerce_raw(Kind::StrList, "*.rs, docs/**"),
            list(&["*.rs", "docs/**"])
        );
        assert_eq!(coerce_raw(Kind::StrList, ""), list(&[]));
        assert_eq!(
            coerce_raw(USIZE, "1\nother = 2"),
            Value::String("1\nother = 2".into())
        );
    }

    #[test]
    fn check_normalizes_and_explains() {
        let mut value = Value::Integer(3);
        assert!(check(Kind::Float, &mut value, None).is_ok());
        assert_eq!(value, Value::Float(3.0));

        let mut value = Value::String("Server".into());
        assert!(check(Kind::Choice(&["edge", "server"]), &mut value, None).is_ok());
        assert_eq!(value, Value::String("server".into()));

        let mut value = Value::String("~/data".into());
        assert!(check(
            Kind::Path,
            &mut value,
            Some(std::path::Path::new("/home/u"))
        )
        .is_ok());
        assert_eq!(value, Value::String("/home/u/data".into()));

        let mut value = Value::String("~bob/data".into());
        assert!(check(
            Kind::Path,
            &mut value,
            Some(std::path::Path::new("/home/u"))
        )
        .is_ok());
        assert_eq!(value, Value::String("~bob/data".into()));

        let mut value = Value::Integer(-1);
        assert_eq!(
            check(USIZE, &mut value, None),
            Err(format!("must be between 0 and {}, found -1", usize::MAX))
        );
        let mut value = Value::String("big".into());
        assert_eq!(
            check(U64, &mut value, None),
            Err("expected a non-negative integer, found string \"big\"".into())
        );
        let mut value = Value::Integer(12345);
        assert_eq!(
            check(Kind::Secret, &mut value, None),
            Err("expected a string, found integer".into())
        );
        let mut value = Value::String("fuzzy".into());
        assert_eq!(
            check(Kind::Choice(&["a", "b"]), &mut value, None),
            Err("expected one of \"a\", \"b\", found string \"fuzzy\"".into())
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("index.max_file_byte"), Some("index.max_file_bytes"));
        assert_eq!(suggest("max_file_bytes"), Some("index.max_file_bytes"));
        assert_eq!(suggest("serch.limit"), Some("search.limit"));
        assert_eq!(suggest("completely.different"), None);
    }

    #[test]
    fn sections() {
        assert!(is_section("index"));
        assert!(is_section("vector"));
        assert!(!is_section("version"));
        assert!(!is_section("nope"));
    }
}
