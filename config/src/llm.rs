//! The `[llm]` section: LLM providers, the roles that use them, and resilience settings.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ConfigError, Secret};

/// The wire protocol an LLM provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmProviderKind {
    /// OpenAI-compatible `/v1/chat/completions` (OpenAI, llama.cpp server, vLLM, LM Studio).
    #[default]
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic Messages `/v1/messages`.
    Anthropic,
    /// Ollama's native `/api/chat` and `/api/embed`.
    Ollama,
}

impl LlmProviderKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 3] = [Self::OpenAi, Self::Anthropic, Self::Ollama];

    /// The lowercase name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Ollama => "ollama",
        }
    }
}

impl fmt::Display for LlmProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LlmProviderKind {
    type Err = ConfigError;

    /// Parses the lowercase name, ignoring case and surrounding whitespace.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim();
        Self::ALL
            .into_iter()
            .find(|candidate| candidate.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ConfigError::UnknownVariant {
                what: "llm provider",
                value: text.to_owned(),
                expected: Self::ALL
                    .iter()
                    .map(|kind| kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// Price of one model, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmPrice {
    /// Dollars per million input (prompt) tokens.
    pub input_per_mtok: f64,
    /// Dollars per million output (completion) tokens.
    pub output_per_mtok: f64,
}

/// One named LLM provider (an entry of `[[llm.providers]]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmProviderConfig {
    /// Unique name, used by the role lists and in metrics.
    pub name: String,
    /// Wire protocol.
    pub kind: LlmProviderKind,
    /// Base URL without the API path, e.g. `http://127.0.0.1:8080` or `https://api.openai.com`.
    pub base_url: String,
    /// API key, if the provider needs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// Chat model.
    pub model: String,
    /// Embedding model; `None` means `model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embed_model: Option<String>,
    /// Overrides `llm.connect_timeout_ms` for this provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// Overrides `llm.first_token_timeout_ms` for this provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token_timeout_ms: Option<u64>,
    /// Overrides `llm.total_timeout_ms` for this provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_timeout_ms: Option<u64>,
    /// Requests per minute (0: unlimited).
    pub requests_per_minute: u32,
    /// Tokens (input + output) per minute (0: unlimited).
    pub tokens_per_minute: u32,
    /// Prices by model name; models absent here cost 0.
    pub prices: BTreeMap<String, LlmPrice>,
}

/// LLM providers, the roles that use them, and the resilience settings.
///
/// Either `url` + `model` (one provider for every role, the no-config-file case set by
/// `--llm-url` or `AIEX_LLM_URL`), or named `providers` with role lists, or both: the single
/// provider then comes first in every role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL of the single provider used for every role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Model of the single provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Wire protocol of the single provider.
    pub provider: LlmProviderKind,
    /// API key of the single provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// Embedding model of the single provider; `None` means `model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embed_model: Option<String>,
    /// Named providers.
    pub providers: Vec<LlmProviderConfig>,
    /// Providers of the `fast` role, first choice first; empty means every provider in order.
    pub fast: Vec<String>,
    /// Providers of the `smart` role; empty means every provider in order.
    pub smart: Vec<String>,
    /// Providers of the `embed` role; empty means every provider in order.
    pub embed: Vec<String>,
    /// Time to establish a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time from sending a request to the first streamed token, in milliseconds.
    pub first_token_timeout_ms: u64,
    /// Time for a whole answer, in milliseconds.
    pub total_timeout_ms: u64,
    /// Retries of one provider after a 429, a 5xx, a cut stream or a network error.
    pub max_retries: u32,
    /// First backoff delay, doubled on each retry, with full jitter, in milliseconds.
    pub retry_base_ms: u64,
    /// Longest wait before a retry (backoff or `retry-after`), in milliseconds; a longer
    /// `retry-after` moves on to the next provider instead.
    pub retry_max_ms: u64,
    /// Consecutive failures that open a provider's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker rejects calls before a trial call, in milliseconds.
    pub breaker_cooldown_ms: u64,
    /// Output token limit of a request that sets none.
    pub max_tokens: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            url: None,
            model: None,
            provider: LlmProviderKind::OpenAi,
            api_key: None,
            embed_model: None,
            providers: Vec::new(),
            fast: Vec::new(),
            smart: Vec::new(),
            embed: Vec::new(),
            connect_timeout_ms: 5_000,
            first_token_timeout_ms: 60_000,
            total_timeout_ms: 300_000,
            max_retries: 2,
            retry_base_ms: 500,
            retry_max_ms: 20_000,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            max_tokens: 1_024,
        }
    }
}

impl LlmConfig {
    /// Name given to the provider set by `url` and `model`.
    pub const SINGLE_PROVIDER: &'static str = "default";
    /// The roles, as named in configuration.
    pub const ROLES: [&'static str; 3] = ["fast", "smart", "embed"];

    /// One provider for every role: what `--llm-url`, `--llm-model`, `--llm-provider` and
    /// `AIEX_LLM_API_KEY` configure. Other settings keep their defaults.
    pub fn single(
        url: impl Into<String>,
        model: impl Into<String>,
        provider: LlmProviderKind,
        api_key: Option<Secret>,
    ) -> Self {
        Self {
            url: Some(url.into()),
            model: Some(model.into()),
            provider,
            api_key,
            ..Self::default()
        }
    }

    /// Whether any provider is configured.
    pub fn is_configured(&self) -> bool {
        self.url.is_some() || !self.providers.is_empty()
    }

    /// Every provider: the single one (named [`Self::SINGLE_PROVIDER`]) when `url` is set,
    /// then `providers`.
    pub fn all_providers(&self) -> Vec<LlmProviderConfig> {
        let mut all = Vec::with_capacity(self.providers.len() + 1);
        if let Some(url) = &self.url {
            all.push(LlmProviderConfig {
                name: Self::SINGLE_PROVIDER.to_owned(),
                kind: self.provider,
                base_url: url.clone(),
                api_key: self.api_key.clone(),
                model: self.model.clone().unwrap_or_default(),
                embed_model: self.embed_model.clone(),
                ..LlmProviderConfig::default()
            });
        }
        all.extend(self.providers.iter().cloned());
        all
    }

    /// The embedding model of the first `embed`-role provider that serves embeddings (Anthropic
    /// has none): its `embed_model`, else its `model`.
    /// The distinct embedding models of the embed role's providers that have embeddings (more
    /// than one would put vectors of different models in one index when a fallback answers).
    pub fn embed_models(&self) -> Vec<String> {
        let providers = self.all_providers();
        let mut models: Vec<String> = Vec::new();
        for name in self.role_providers("embed") {
            let model = providers
                .iter()
                .find(|p| p.name == name && p.kind != LlmProviderKind::Anthropic)
                .map(|p| p.embed_model.clone().unwrap_or_else(|| p.model.clone()));
            if let Some(model) = model {
                if !models.contains(&model) {
                    models.push(model);
                }
            }
        }
        models
    }

    pub fn first_embed_model(&self) -> Option<String> {
        let providers = self.all_providers();
        self.role_providers("embed").iter().find_map(|name| {
            providers
                .iter()
                .find(|p| &p.name == name && p.kind != LlmProviderKind::Anthropic)
                .map(|p| p.embed_model.clone().unwrap_or_else(|| p.model.clone()))
        })
    }

    /// Provider names of a role (`fast`, `smart` or `embed`), first choice first: the single
    /// provider if any, then the role's list, or every named provider when the list is empty.
    pub fn role_providers(&self, role: &str) -> Vec<String> {
        let listed = match role {
            "fast" => &self.fast,
            "smart" => &self.smart,
            "embed" => &self.embed,
            _ => return Vec::new(),
        };
        let mut names: Vec<String> = Vec::new();
        if self.url.is_some() {
            names.push(Self::SINGLE_PROVIDER.to_owned());
        }
        let rest = if listed.is_empty() {
            self.providers.iter().map(|p| p.name.clone()).collect()
        } else {
            listed.clone()
        };
        for name in rest {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_provider_serves_every_role_first() {
        let mut config = LlmConfig::single(
            "http://127.0.0.1:1",
            "m",
            LlmProviderKind::Ollama,
            Some(Secret::new("k")),
        );
        config.providers.push(LlmProviderConfig {
            name: "backup".into(),
            base_url: "http://127.0.0.1:2".into(),
            model: "b".into(),
            ..LlmProviderConfig::default()
        });
        config.smart = vec!["backup".into()];
        let all = config.all_providers();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, LlmConfig::SINGLE_PROVIDER);
        assert_eq!(all[0].kind, LlmProviderKind::Ollama);
        assert_eq!(all[0].api_key.as_ref().map(Secret::expose), Some("k"));
        for role in LlmConfig::ROLES {
            assert_eq!(config.role_providers(role), ["default", "backup"]);
        }
        assert!(config.role_providers("other").is_empty());
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(
            " OpenAI ".parse::<LlmProviderKind>().ok(),
            Some(LlmProviderKind::OpenAi)
        );
        let err = "gemini".parse::<LlmProviderKind>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown llm provider `gemini` (expected one of openai, anthropic, ollama)"
        );
    }
}
