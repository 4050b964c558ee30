//! The web source: a provider (Serper, Tavily, SearxNG, or several with fallback) behind the
//! `Source` contract.

use std::sync::Arc;
use std::time::Duration;

use aiex_indexer::snippet::highlight_ranges;

use crate::hit::Hit;
use crate::source::{BoxFuture, Source, SourceError, SourceQuery, SourceResults};
use crate::web::{
    ProviderConfig, SearxngClient, SerperClient, TavilyClient, TimeRange, WebError, WebFallback,
    WebProvider, WebQuery, WebResult,
};

/// A web provider as a search source. Hits name the provider that answered (`web:tavily`).
pub struct WebSource {
    name: String,
    provider: Arc<dyn WebProvider>,
    ttl: Duration,
}

impl WebSource {
    pub fn new(name: impl Into<String>, provider: Arc<dyn WebProvider>, ttl: Duration) -> Self {
        WebSource {
            name: name.into(),
            provider,
            ttl,
        }
    }

    /// The web source the configuration asks for: Serper and Tavily when they have a key,
    /// SearxNG when its URL is set, tried in that order (each later one a fallback of the
    /// earlier); `None` when none is configured. One provider is the source `web:<provider>`,
    /// several the source `web`.
    pub fn from_config(config: &aiex_config::Config) -> Result<Option<Self>, WebError> {
        let web = &config.web;
        let provider_config =
            |defaults: ProviderConfig, url: &str, keys: Vec<String>| ProviderConfig {
                base_url: url.to_string(),
                api_keys: keys,
                timeout: Duration::from_millis(web.timeout_ms),
                max_retries: web.max_retries,
                requests_per_minute: web.requests_per_minute,
                ..defaults
            };
        let mut providers: Vec<Box<dyn WebProvider>> = Vec::new();
        let serper_keys = aiex_config::WebConfig::keys(web.serper_api_key.as_ref());
        if !serper_keys.is_empty() {
            providers.push(Box::new(SerperClient::new(provider_config(
                ProviderConfig::serper_default(),
                &web.serper_url,
                serper_keys,
            ))?));
        }
        let tavily_keys = aiex_config::WebConfig::keys(web.tavily_api_key.as_ref());
        if !tavily_keys.is_empty() {
            providers.push(Box::new(TavilyClient::new(provider_config(
                ProviderConfig::tavily_default(),
                &web.tavily_url,
                tavily_keys,
            ))?));
        }
        if !web.searxng_url.trim().is_empty() {
            providers.push(Box::new(SearxngClient::new(provider_config(
                ProviderConfig::searxng_default(),
                web.searxng_url.trim(),
                aiex_config::WebConfig::keys(web.searxng_api_key.as_ref()),
            ))?));
        }
        let ttl = Duration::from_secs(web.cache_ttl_secs);
        Ok(match providers.len() {
            0 => None,
            1 => {
                let provider: Arc<dyn WebProvider> = Arc::from(providers.remove(0));
                let name = format!("web:{}", provider.name());
                Some(WebSource::new(name, provider, ttl))
            }
            _ => Some(WebSource::new(
                "web",
                Arc::new(WebFallback::new(providers)),
                ttl,
            )),
        })
    }
}

fn to_hit(result: WebResult, terms: &[String]) -> Hit {
    // Serper gives no score: the rank stands in, best first. (Fusion goes by rank; the score
    // is what people see.)
    let score = result.score.unwrap_or(1.0 / result.rank.max(1) as f32);
    let source = format!("web:{}", result.provider);
    Hit {
        published: result.published,
        highlights: highlight_ranges(&result.snippet, terms),
        ..Hit::web(&source, &result.url, &result.title, &result.snippet, score)
    }
}

impl Source for WebSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn cache_ttl(&self) -> Duration {
        self.ttl
    }

    fn search<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<SourceResults, SourceError>> {
        Box::pin(async move {
            let time_range = match &query.time_range {
                Some(range) => Some(range.parse::<TimeRange>()?),
                None => None,
            };
            let web_query = WebQuery {
                query: query
                    .web_query
                    .clone()
                    .unwrap_or_else(|| query.query.clone()),
                max_results: query.limit,
                include_domains: query.include_domains.clone(),
                exclude_domains: query.exclude_domains.clone(),
                time_range,
            };
            let results = self.provider.search(&web_query).await?;
            let terms = aiex_indexer::store::keyword::query_terms(&query.query);
            Ok(SourceResults::from(
                results
                    .into_iter()
                    .map(|result| to_hit(result, &terms))
                    .collect::<Vec<_>>(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_query_terms_in_web_snippets() {
        let terms = aiex_indexer::store::keyword::query_terms("share state between threads");
        let text = "Sharing state: a Mutex shares state between threads safely.";
        let ranges = highlight_ranges(text, &terms);
        let words: Vec<&str> = ranges.iter().map(|&(a, b)| &text[a..b]).collect();
        // Other forms of a word are highlighted too ("share": "Sharing", "shares").
        assert_eq!(
            words,
            ["Sharing", "state", "shares", "state", "between", "threads"]
        );
    }
}
