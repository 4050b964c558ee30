//! `--llm-url`, `--llm-model`, `--llm-provider`: one LLM provider for every role, without a
//! configuration file. Commands that use an LLM flatten [`LlmArgs`] and add its overrides.

use clap::Args;

/// Flags of the single LLM provider (the environment's `AIEX_LLM_URL`, `AIEX_LLM_MODEL`,
/// `AIEX_LLM_PROVIDER` and `AIEX_LLM_API_KEY` set the same keys, below the flags).
#[derive(Debug, Clone, Default, Args)]
pub struct LlmArgs {
    /// Base URL of an LLM server used for every role, e.g. `http://127.0.0.1:8080` (llama.cpp
    /// server), `http://127.0.0.1:11434` (Ollama), `https://api.openai.com` [env: AIEX_LLM_URL].
    #[arg(long, value_name = "URL")]
    pub llm_url: Option<String>,
    /// Model name for --llm-url [env: AIEX_LLM_MODEL].
    #[arg(long, value_name = "NAME")]
    pub llm_model: Option<String>,
    /// Wire protocol of --llm-url (default openai); the key comes from AIEX_LLM_API_KEY
    /// [env: AIEX_LLM_PROVIDER].
    #[arg(long, value_name = "KIND", value_parser = ["openai", "anthropic", "ollama"])]
    pub llm_provider: Option<String>,
}

impl LlmArgs {
    /// The configuration overrides (`llm.url`, `llm.model`, `llm.provider`) these flags set.
    pub fn overrides(&self) -> Vec<(String, String)> {
        [
            ("llm.url", &self.llm_url),
            ("llm.model", &self.llm_model),
            ("llm.provider", &self.llm_provider),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_ref().map(|value| (key.to_owned(), value.clone())))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_llm_keys() {
        assert!(LlmArgs::default().overrides().is_empty());
        let args = LlmArgs {
            llm_url: Some("http://127.0.0.1:8080".into()),
            llm_model: Some("smollm2".into()),
            llm_provider: Some("ollama".into()),
        };
        let overrides = args.overrides();
        assert_eq!(
            overrides,
            [
                ("llm.url".to_owned(), "http://127.0.0.1:8080".to_owned()),
                ("llm.model".to_owned(), "smollm2".to_owned()),
                ("llm.provider".to_owned(), "ollama".to_owned()),
            ]
        );
        let options = aiex_config::LoadOptions {
            env: Some(vec![("AIEX_LLM_API_KEY".into(), "k".into())]),
            overrides,
            ..aiex_config::LoadOptions::default()
        };
        let config = aiex_config::Config::load(&options).expect("valid");
        assert_eq!(config.llm.provider, aiex_config::LlmProviderKind::Ollama);
        assert_eq!(config.llm.api_key.as_ref().map(|k| k.expose()), Some("k"));
        assert_eq!(config.llm.role_providers("smart"), ["default"]);
    }
}
