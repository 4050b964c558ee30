//! A result from any source, in one shape.

use serde::{Deserialize, Serialize};

/// Where a text comes from: the source that found it, its title, and either a URL (web pages) or a
/// place in a collection (path and lines, with what the indexer knows of it). One shape for search
/// hits, research texts, citations and CLI output, flattened into each of them so their JSON keeps
/// these fields at the top level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Locator {
    /// The source that produced it: `code`, `docs`, `web:serper`, `web:tavily`, `web:searxng`,
    /// `page`.
    pub source: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Relative to the collection root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The page of a PDF document (1-based) the text is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
}

impl Locator {
    /// A web page: its source, URL and title.
    pub fn web(source: &str, url: &str, title: &str) -> Locator {
        Locator {
            source: source.to_string(),
            title: title.to_string(),
            url: Some(url.to_string()),
            ..Locator::default()
        }
    }

    /// Identity for deduplication: the normalised URL of a web text, or collection, path and
    /// lines of a local one.
    pub fn key(&self) -> String {
        match &self.url {
            Some(url) => crate::urlnorm::normalize_url(url),
            None => format!(
                "{}:{}:{}-{}",
                self.collection.as_deref().unwrap_or(""),
                self.path.as_deref().unwrap_or(""),
                self.start_line.unwrap_or(0),
                self.end_line.unwrap_or(0)
            ),
        }
    }

    /// Where to find it, for people: the URL, or `collection:path (page N)` for a PDF's page, or
    /// `collection:path:start-end`, or the title.
    pub fn place(&self) -> String {
        match (&self.url, &self.path) {
            (Some(url), _) => url.clone(),
            (None, Some(path)) if self.page.is_some() => format!(
                "{}:{path} (page {})",
                self.collection.as_deref().unwrap_or(""),
                self.page.unwrap_or(0)
            ),
            (None, Some(path)) => format!(
                "{}:{path}:{}-{}",
                self.collection.as_deref().unwrap_or(""),
                self.start_line.unwrap_or(0),
                self.end_line.unwrap_or(0)
            ),
            (None, None) => self.title.clone(),
        }
    }

    /// Approximate heap size of the strings.
    pub fn approx_heap_bytes(&self) -> usize {
        let optional = |value: &Option<String>| value.as_ref().map_or(0, String::len);
        self.source.len()
            + self.title.len()
            + optional(&self.url)
            + optional(&self.collection)
            + optional(&self.path)
            + optional(&self.language)
            + optional(&self.symbol)
            + optional(&self.kind)
    }
}

/// One result. Local hits (code, docs) carry a collection, path and lines; web hits a URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    #[serde(flatten)]
    pub locator: Locator,
    pub snippet: String,
    /// Local hits: the line of the snippet's first line in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet_line: Option<u32>,
    /// Byte ranges of `snippet` that match the query.
    pub highlights: Vec<(usize, usize)>,
    /// The source's own score in `results` events; the fused score in `merged`.
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// Local hits: the chunk's id in its collection (for `Searcher::get_chunk`); not serialized.
    #[serde(skip)]
    pub chunk_id: Option<u64>,
}

impl Hit {
    /// A web result: `source` (`web:tavily`), page URL and title, the provider's snippet and score.
    pub fn web(source: &str, url: &str, title: &str, snippet: &str, score: f32) -> Hit {
        Hit {
            locator: Locator::web(source, url, title),
            snippet: snippet.to_string(),
            snippet_line: None,
            highlights: Vec::new(),
            score,
            published: None,
            chunk_id: None,
        }
    }

    /// Identity for deduplication ([`Locator::key`]).
    pub fn key(&self) -> String {
        self.locator.key()
    }

    /// Approximate heap size, for the cache's byte bound.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Hit>()
            + self.locator.approx_heap_bytes()
            + self.snippet.len()
            + self.published.as_ref().map_or(0, String::len)
            + self.highlights.len() * 16
    }

    /// Whether the hit is usable: a finite score and something to show.
    pub fn is_sane(&self) -> bool {
        self.score.is_finite() && !(self.locator.title.is_empty() && self.snippet.is_empty())
    }
}
