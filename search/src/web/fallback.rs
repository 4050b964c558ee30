//! Several providers tried in order.

use std::fmt;

use super::{WebError, WebProvider, WebQuery, WebResult, WebSearchFuture};

/// Tries its providers in order and returns the first success; when all fail, the last error.
///
/// Any failure moves on to the next provider except [`WebError::Cancelled`]: each provider has
/// its own limits (a query too long for Tavily may suit Serper), keys, quota and health, so one
/// provider's refusal says nothing about the next.
pub struct WebFallback {
    providers: Vec<Box<dyn WebProvider>>,
}

impl WebFallback {
    pub fn new(providers: Vec<Box<dyn WebProvider>>) -> Self {
        WebFallback { providers }
    }

    /// The providers' names, in the order they are tried.
    pub fn providers(&self) -> Vec<&'static str> {
        self.providers
            .iter()
            .map(|provider| provider.name())
            .collect()
    }

    async fn search_in_order(&self, query: &WebQuery) -> Result<Vec<WebResult>, WebError> {
        let mut last_error: Option<WebError> = None;
        for (position, provider) in self.providers.iter().enumerate() {
            match provider.search(query).await {
                Ok(results) => return Ok(results),
                Err(WebError::Cancelled) => return Err(WebError::Cancelled),
                Err(error) => {
                    if let Some(next) = self.providers.get(position + 1) {
                        tracing::warn!(
                            provider = provider.name(),
                            next = next.name(),
                            error = %error,
                            "web provider failed, falling back"
                        );
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or(WebError::NoKeys { provider: "web" }))
    }
}

impl fmt::Debug for WebFallback {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WebFallback")
            .field("providers", &self.providers())
            .finish()
    }
}

impl WebProvider for WebFallback {
    fn name(&self) -> &'static str {
        "web"
    }

    fn search<'a>(&'a self, query: &'a WebQuery) -> WebSearchFuture<'a> {
        Box::pin(self.search_in_order(query))
    }
}
