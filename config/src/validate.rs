//! Semantic checks on a typed [`Config`], collecting every problem.

use std::path::{Component, Path};

use crate::{Config, ConfigError, EmbeddingProvider, Problem, Result, SearchMode, VectorBackend};

/// One failed check.
#[derive(Debug)]
pub(crate) struct Issue {
    /// The key the problem is reported on.
    pub key: &'static str,
    /// Another key the check depends on, if any.
    pub related: Option<&'static str>,
    pub message: String,
}

#[derive(Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn push(&mut self, key: &'static str, message: impl Into<String>) {
        self.0.push(Issue {
            key,
            related: None,
            message: message.into(),
        });
    }

    fn push_related(&mut self, key: &'static str, related: &'static str, message: String) {
        self.0.push(Issue {
            key,
            related: Some(related),
            message,
        });
    }

    fn positive(&mut self, key: &'static str, value: impl Into<u64>) {
        if value.into() == 0 {
            self.push(key, "must be greater than 0");
        }
    }

    fn within(&mut self, key: &'static str, value: usize, min: usize, max: usize) {
        if !(min..=max).contains(&value) {
            self.push(
                key,
                format!("must be between {min} and {max}, found {value}"),
            );
        }
    }

    fn non_negative(&mut self, key: &'static str, value: f32) {
        if !value.is_finite() || value < 0.0 {
            self.push(key, format!("must be a finite number >= 0, found {value}"));
        }
    }

    fn non_empty_path(&mut self, key: &'static str, path: Option<&Path>) {
        if path.is_some_and(|path| path.as_os_str().is_empty()) {
            self.push(key, "must not be empty");
        }
    }
}

fn usize_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Every semantic problem of `config`.
pub(crate) fn issues(config: &Config) -> Vec<Issue> {
    let mut out = Issues::default();

    if config.version != crate::CONFIG_VERSION {
        out.push(
            "version",
            format!(
                "unsupported version {} (expected {})",
                config.version,
                crate::CONFIG_VERSION
            ),
        );
    }
    out.non_empty_path("data_dir", Some(&config.data_dir));

    let index = &config.index;
    out.positive("index.max_file_bytes", index.max_file_bytes);
    for (key, patterns) in [
        ("index.include", &index.include),
        ("index.exclude", &index.exclude),
    ] {
        if patterns.iter().any(|pattern| pattern.trim().is_empty()) {
            out.push(key, "contains an empty pattern");
        }
    }

    let chunk = &config.chunk;
    out.positive("chunk.max_tokens", usize_u64(chunk.max_tokens));
    if chunk.max_tokens > 0 && chunk.min_tokens >= chunk.max_tokens {
        out.push_related(
            "chunk.min_tokens",
            "chunk.max_tokens",
            format!(
                "must be less than chunk.max_tokens ({} >= {})",
                chunk.min_tokens, chunk.max_tokens
            ),
        );
    }
    out.positive("chunk.window_lines", usize_u64(chunk.window_lines));
    if chunk.window_lines > 0 && chunk.window_overlap >= chunk.window_lines {
        out.push_related(
            "chunk.window_overlap",
            "chunk.window_lines",
            format!(
                "must be less than chunk.window_lines ({} >= {})",
                chunk.window_overlap, chunk.window_lines
            ),
        );
    }

    let embedding = &config.embedding;
    if embedding.model_id.trim().is_empty() {
        out.push("embedding.model_id", "must not be empty");
    } else if embedding.model_dir.is_none() && !is_plain_relative(&embedding.model_id) {
        out.push_related(
            "embedding.model_id",
            "embedding.model_dir",
            "must be a relative path without `..` when embedding.model_dir is not set".to_owned(),
        );
    }
    out.non_empty_path("embedding.model_dir", embedding.model_dir.as_deref());
    out.non_empty_path("embedding.runtime_path", embedding.runtime_path.as_deref());
    out.positive("embedding.dimension", usize_u64(embedding.dimension));
    out.positive("embedding.max_length", usize_u64(embedding.max_length));
    out.within("embedding.batch_size", embedding.batch_size, 1, 256);
    if embedding.provider == EmbeddingProvider::Llm {
        let models = config.llm.embed_models();
        if models.is_empty() {
            out.push_related(
                "embedding.provider",
                "llm.embed",
                "\"llm\" needs an [llm] provider with embeddings (openai or ollama) in the embed role"
                    .to_owned(),
            );
        } else if models.len() > 1 {
            out.push_related(
                "embedding.provider",
                "llm.embed",
                format!(
                    "the embed role's providers use different embedding models ({}): a fallback \
                     would mix their vectors in one index; give them one model",
                    models.join(", ")
                ),
            );
        }
    }

    let vector = &config.vector;
    match (&vector.url, vector.backend) {
        (None, VectorBackend::Server) => out.push_related(
            "vector.url",
            "vector.backend",
            "is required when vector.backend is \"server\"".to_owned(),
        ),
        (Some(url), _) if url.trim().is_empty() => out.push("vector.url", "must not be empty"),
        (Some(url), _) if !is_http_url(url) => {
            // The URL may embed credentials, so it is not echoed.
            out.push("vector.url", "must start with http:// or https://");
        }
        _ => {}
    }
    if vector.api_key.as_ref().is_some_and(|key| key.is_empty()) {
        out.push("vector.api_key", "must not be empty");
    }
    out.positive("vector.hnsw_ef", usize_u64(vector.hnsw_ef));
    out.positive("vector.connect_timeout_ms", vector.connect_timeout_ms);
    out.positive("vector.request_timeout_ms", vector.request_timeout_ms);
    out.positive("vector.shard_number", vector.shard_number);
    if !(2..=86_400).contains(&vector.lease_secs) {
        out.push(
            "vector.lease_secs",
            format!("must be between 2 and 86400, found {}", vector.lease_secs),
        );
    }
    out.positive("vector.replication_factor", vector.replication_factor);
    out.positive(
        "vector.write_consistency_factor",
        vector.write_consistency_factor,
    );
    if vector.write_consistency_factor > vector.replication_factor {
        out.push_related(
            "vector.write_consistency_factor",
            "vector.replication_factor",
            format!(
                "must not exceed vector.replication_factor ({})",
                vector.replication_factor
            ),
        );
    }

    let search = &config.search;
    out.within("search.limit", search.limit, 1, 1000);
    if !search.rrf_k.is_finite() || search.rrf_k <= 0.0 {
        out.push(
            "search.rrf_k",
            format!("must be a finite number > 0, found {}", search.rrf_k),
        );
    }
    out.non_negative("search.keyword_weight", search.keyword_weight);
    out.non_negative("search.vector_weight", search.vector_weight);
    if search.mode == SearchMode::Hybrid
        && search.keyword_weight == 0.0
        && search.vector_weight == 0.0
    {
        out.push_related(
            "search.keyword_weight",
            "search.vector_weight",
            "and search.vector_weight cannot both be 0 in hybrid mode".to_owned(),
        );
    }

    out.positive("search.budget_ms", search.budget_ms);
    out.positive("search.local_deadline_ms", search.local_deadline_ms);
    out.positive("search.web_deadline_ms", search.web_deadline_ms);

    let web = &config.web;
    for (key, url) in [
        ("web.serper_url", &web.serper_url),
        ("web.tavily_url", &web.tavily_url),
    ] {
        if !is_http_url(url) {
            out.push(key, "must start with http:// or https://");
        }
    }
    // Empty: SearxNG is not used. The URL may embed credentials, so it is not echoed.
    let searxng_url = web.searxng_url.trim();
    if !searxng_url.is_empty() && !is_http_url(searxng_url) {
        out.push(
            "web.searxng_url",
            "must start with http:// or https:// (or be empty)",
        );
    }
    if searxng_url.is_empty() && !crate::WebConfig::keys(web.searxng_api_key.as_ref()).is_empty() {
        out.push_related(
            "web.searxng_api_key",
            "web.searxng_url",
            "is set but web.searxng_url is not".to_owned(),
        );
    }
    out.positive("web.timeout_ms", web.timeout_ms);

    let fetch = &config.fetch;
    out.positive("fetch.timeout_ms", fetch.timeout_ms);
    out.positive("fetch.connect_timeout_ms", fetch.connect_timeout_ms);
    out.positive("fetch.max_bytes", fetch.max_bytes);
    out.within("fetch.max_redirects", fetch.max_redirects as usize, 0, 20);
    if fetch.user_agent.trim().is_empty() {
        out.push("fetch.user_agent", "must not be empty");
    }
    out.within("fetch.concurrency", fetch.concurrency, 1, 64);

    let research = &config.research;
    out.within(
        "research.max_sub_questions",
        research.max_sub_questions,
        1,
        32,
    );
    out.positive("research.max_searches", usize_u64(research.max_searches));
    out.positive("research.max_wall_secs", research.max_wall_secs);
    if !research.max_cost_usd.is_finite() || research.max_cost_usd < 0.0 {
        out.push(
            "research.max_cost_usd",
            format!(
                "must be a finite number >= 0, found {}",
                research.max_cost_usd
            ),
        );
    }
    out.within("research.hits_per_search", research.hits_per_search, 1, 100);
    out.within(
        "research.search_concurrency",
        research.search_concurrency,
        1,
        32,
    );
    out.positive(
        "research.evidence_tokens",
        usize_u64(research.evidence_tokens),
    );
    out.within(
        "research.passages_per_sub_question",
        research.passages_per_sub_question,
        1,
        50,
    );
    out.within("research.depth", research.depth, 1, 3);
    out.within(
        "research.resume_concurrency",
        research.resume_concurrency,
        1,
        64,
    );

    llm_issues(&config.llm, &mut out);

    let server = &config.server;
    if server.bind.parse::<std::net::SocketAddr>().is_err() {
        out.push(
            "server.bind",
            format!(
                "must be an address and port such as 127.0.0.1:8484, found `{}`",
                server.bind
            ),
        );
    }
    for (key, hashes) in [
        ("server.api_keys", &server.api_keys),
        ("server.revoked_keys", &server.revoked_keys),
    ] {
        if !hashes.iter().all(|hash| is_key_hash(hash)) {
            // Never echoed: a key pasted here by mistake must not reach a log.
            out.push(
                key,
                "entries must be `sha256:` followed by 64 hex digits (see `aiex-research serve hash-key`)",
            );
        }
    }
    out.positive("server.max_body_bytes", usize_u64(server.max_body_bytes));
    out.positive("server.max_query_bytes", usize_u64(server.max_query_bytes));
    out.positive("server.request_timeout_ms", server.request_timeout_ms);
    out.positive(
        "server.header_read_timeout_ms",
        server.header_read_timeout_ms,
    );
    out.within(
        "server.max_connections",
        server.max_connections,
        1,
        1_000_000,
    );
    for origin in &server.cors_allowed_origins {
        if origin != "*" && !is_http_url(origin) {
            out.push(
                "server.cors_allowed_origins",
                format!("`{origin}` must start with http:// or https://"),
            );
        }
    }
    for root in &server.allowed_roots {
        if !Path::new(root).is_absolute() {
            out.push(
                "server.allowed_roots",
                format!("`{root}` must be an absolute path"),
            );
        }
    }
    out.within("server.job_concurrency", server.job_concurrency, 1, 64);
    out.within(
        "server.job_retention_hours",
        usize::try_from(server.job_retention_hours).unwrap_or(usize::MAX),
        0,
        24 * 366 * 10,
    );
    out.positive("server.keep_alive_secs", server.keep_alive_secs);
    out.within("server.history_limit", server.history_limit, 1, 10_000);

    out.0
}

/// Whether `url` starts with an `http` or `https` scheme, in any case (`HTTP://` is a URL too).
pub fn is_http_url(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
    })
}

/// Lower-cases a URL's scheme (`HTTP://host` becomes `http://host`), so every client and every
/// later check sees one spelling; anything that is not `scheme://…` is left as it is.
fn lower_scheme(url: &mut str) {
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme.bytes().all(|b| b.is_ascii_alphabetic()) {
            let len = scheme.len();
            url[..len].make_ascii_lowercase();
        }
    }
}

/// Lower-cases the scheme of every URL in the configuration.
pub(crate) fn normalise_urls(config: &mut crate::Config) {
    let urls = [
        &mut config.web.serper_url,
        &mut config.web.tavily_url,
        &mut config.web.searxng_url,
    ];
    for url in urls {
        lower_scheme(url);
    }
    for url in [config.vector.url.as_mut(), config.llm.url.as_mut()]
        .into_iter()
        .flatten()
    {
        lower_scheme(url);
    }
    for provider in &mut config.llm.providers {
        lower_scheme(&mut provider.base_url);
    }
    for origin in &mut config.server.cors_allowed_origins {
        lower_scheme(origin);
    }
}

fn llm_issues(llm: &crate::LlmConfig, out: &mut Issues) {
    match &llm.url {
        // The URL may embed credentials, so it is not echoed.
        Some(url) if !is_http_url(url) => {
            out.push("llm.url", "must start with http:// or https://")
        }
        Some(_) if llm.model.as_deref().is_none_or(|m| m.trim().is_empty()) => out.push_related(
            "llm.model",
            "llm.url",
            "is required when llm.url is set".to_owned(),
        ),
        _ => {}
    }
    if llm.api_key.as_ref().is_some_and(|key| key.is_empty()) {
        out.push("llm.api_key", "must not be empty");
    }
    let mut names: Vec<&str> = Vec::new();
    if llm.url.is_some() {
        names.push(crate::LlmConfig::SINGLE_PROVIDER);
    }
    for (position, provider) in llm.providers.iter().enumerate() {
        let label = format!("provider {} (`{}`)", position + 1, provider.name);
        if provider.name.trim().is_empty() {
            out.push(
                "llm.providers",
                format!("provider {}: name must not be empty", position + 1),
            );
        } else if names.contains(&provider.name.as_str()) {
            out.push("llm.providers", format!("{label}: the name is used twice"));
        } else {
            names.push(&provider.name);
        }
        if !is_http_url(&provider.base_url) {
            out.push(
                "llm.providers",
                format!("{label}: base_url must start with http:// or https://"),
            );
        }
        if provider.model.trim().is_empty() {
            out.push("llm.providers", format!("{label}: model must not be empty"));
        }
        let zero_timeout = [
            provider.connect_timeout_ms,
            provider.first_token_timeout_ms,
            provider.total_timeout_ms,
        ]
        .contains(&Some(0));
        if zero_timeout {
            out.push(
                "llm.providers",
                format!("{label}: timeouts must be greater than 0"),
            );
        }
        let bad_price = provider.prices.values().any(|price| {
            [price.input_per_mtok, price.output_per_mtok]
                .iter()
                .any(|value| !value.is_finite() || *value < 0.0)
        });
        if bad_price {
            out.push(
                "llm.providers",
                format!("{label}: prices must be finite numbers >= 0"),
            );
        }
    }
    for (key, listed) in [
        ("llm.fast", &llm.fast),
        ("llm.smart", &llm.smart),
        ("llm.embed", &llm.embed),
    ] {
        for name in listed {
            if !names.contains(&name.as_str()) {
                out.push(key, format!("names the unknown provider `{name}`"));
            }
        }
    }
    out.positive("llm.connect_timeout_ms", llm.connect_timeout_ms);
    out.positive("llm.first_token_timeout_ms", llm.first_token_timeout_ms);
    out.positive("llm.total_timeout_ms", llm.total_timeout_ms);
    out.positive("llm.breaker_failures", llm.breaker_failures);
    out.positive("llm.breaker_cooldown_ms", llm.breaker_cooldown_ms);
    out.positive("llm.max_tokens", llm.max_tokens);
    if llm.retry_max_ms < llm.retry_base_ms {
        out.push_related(
            "llm.retry_max_ms",
            "llm.retry_base_ms",
            format!(
                "must be at least llm.retry_base_ms ({} < {})",
                llm.retry_max_ms, llm.retry_base_ms
            ),
        );
    }
}

/// `sha256:` followed by 64 hex digits.
fn is_key_hash(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_plain_relative(text: &str) -> bool {
    Path::new(text)
        .components()
        .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
}

impl Config {
    /// Checks the semantic rules (ranges, cross-field constraints) and reports every
    /// violation at once. [`Config::load`] already does this; call it on configs built in code.
    pub fn validate(&self) -> Result<()> {
        let problems: Vec<Problem> = issues(self)
            .into_iter()
            .map(|issue| Problem {
                key: issue.key.to_owned(),
                source: None,
                message: issue.message,
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes_are_case_insensitive_and_lowered() {
        assert!(is_http_url("HTTP://127.0.0.1:8080"));
        assert!(is_http_url("Https://example.com"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("example.com/http://"));
        let config = Config::from_toml_str(
            "[llm]\nurl = \"HTTP://127.0.0.1:8080/v1\"\nmodel = \"m\"\n[vector]\nurl = \"HTTPS://q:6334\"\n\
             [server]\ncors_allowed_origins = [\"HTTP://localhost:3000\"]\n",
            "upper.toml",
        )
        .expect("upper-case schemes are URLs");
        assert_eq!(config.llm.url.as_deref(), Some("http://127.0.0.1:8080/v1"));
        assert_eq!(config.vector.url.as_deref(), Some("https://q:6334"));
        assert_eq!(
            config.server.cors_allowed_origins,
            ["http://localhost:3000"]
        );
    }

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn every_violation_is_reported() {
        let mut config = Config {
            version: 2,
            ..Config::default()
        };
        config.chunk.min_tokens = 300;
        config.chunk.window_overlap = 60;
        config.embedding.batch_size = 0;
        config.vector.backend = VectorBackend::Server;
        config.search.limit = 5000;
        config.search.rrf_k = 0.0;
        config.search.keyword_weight = -1.0;
        let err = config.validate().expect_err("invalid");
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "version",
                "chunk.min_tokens",
                "chunk.window_overlap",
                "embedding.batch_size",
                "vector.url",
                "search.limit",
                "search.rrf_k",
                "search.keyword_weight",
            ]
        );
    }

    #[test]
    fn llm_embeddings_need_an_embed_provider() {
        let mut config = Config::default();
        config.embedding.provider = EmbeddingProvider::Llm;
        let err = config.validate().expect_err("no provider");
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["embedding.provider"]);
        assert!(err.to_string().contains("embed role"), "{err}");

        config.llm = crate::LlmConfig::single(
            "http://127.0.0.1:8080",
            "chat",
            crate::LlmProviderKind::Anthropic,
            None,
        );
        assert!(config.validate().is_err(), "anthropic has no embeddings");

        config.llm.provider = crate::LlmProviderKind::OpenAi;
        config.llm.embed_model = Some("nomic-embed".into());
        assert!(config.validate().is_ok());

        // A fallback with another embedding model would mix vector spaces.
        let mut other = config.clone();
        other.llm.providers.push(crate::LlmProviderConfig {
            name: "backup".into(),
            kind: crate::LlmProviderKind::Ollama,
            base_url: "http://127.0.0.1:11434".into(),
            model: "other-embed".into(),
            ..crate::LlmProviderConfig::default()
        });
        let err = other.validate().expect_err("two embedding models");
        assert!(
            err.to_string().contains("different embedding models"),
            "{err}"
        );
        assert_eq!(
            config.embedding_model_key().as_deref(),
            Some("llm:nomic-embed")
        );
        config.embedding.provider = EmbeddingProvider::Onnx;
        assert_eq!(
            config.embedding_model_key().as_deref(),
            Some(crate::DEFAULT_MODEL_ID)
        );
    }

    #[test]
    fn urls_and_model_ids() {
        let mut config = Config::default();
        config.vector.url = Some("localhost:6334".into());
        config.embedding.model_id = "../escape".into();
        config.search.keyword_weight = 0.0;
        config.search.vector_weight = 0.0;
        let err = config.validate().expect_err("invalid");
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["embedding.model_id", "vector.url", "search.keyword_weight"]
        );

        config.embedding.model_dir = Some("/models/x".into());
        config.vector.url = Some("https://qdrant.example:6334".into());
        config.search.vector_weight = 0.5;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn server_layout_settings() {
        let mut config = Config::default();
        config.vector.shard_number = 0;
        config.vector.request_timeout_ms = 0;
        config.vector.replication_factor = 1;
        config.vector.write_consistency_factor = 2;
        config.vector.lease_secs = 1;
        let err = config.validate().expect_err("invalid");
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "vector.request_timeout_ms",
                "vector.shard_number",
                "vector.lease_secs",
                "vector.write_consistency_factor"
            ]
        );
        assert!(
            err.to_string().contains("between 2 and 86400, found 1"),
            "{err}"
        );
        config.vector.lease_secs = 60;
        assert!(
            err.to_string().contains("vector.replication_factor (1)"),
            "{err}"
        );

        config.vector.shard_number = 1;
        config.vector.request_timeout_ms = 1000;
        config.vector.write_consistency_factor = 1;
        assert!(config.validate().is_ok());
    }
}
