//! A result from any source, in one shape.

use serde::Serialize;

/// One result. Local hits (code, docs) carry a collection, path and lines; web hits a URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The source that produced it: `code`, `docs`, `web:serper`, `web:tavily`.
    pub source: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
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
            source: source.to_string(),
            title: title.to_string(),
            url: Some(url.to_string()),
            collection: None,
            path: None,
            start_line: None,
            end_line: None,
            language: None,
            symbol: None,
            kind: None,
            snippet: snippet.to_string(),
            snippet_line: None,
            highlights: Vec::new(),
            score,
            published: None,
            chunk_id: None,
        }
    }

    /// Identity for deduplication: the normalised URL of a web hit, or collection, path and lines
    /// of a local one.
    pub fn key(&self) -> String {
        identity_key(
            self.url.as_deref(),
            self.collection.as_deref(),
            self.path.as_deref(),
            self.start_line,
            self.end_line,
        )
    }

    /// Approximate heap size, for the cache's byte bound.
    pub fn approx_bytes(&self) -> usize {
        let optional = |value: &Option<String>| value.as_ref().map_or(0, String::len);
        std::mem::size_of::<Hit>()
            + self.source.len()
            + self.title.len()
            + self.snippet.len()
            + optional(&self.url)
            + optional(&self.collection)
            + optional(&self.path)
            + optional(&self.language)
            + optional(&self.symbol)
            + optional(&self.kind)
            + optional(&self.published)
            + self.highlights.len() * 16
    }

    /// Whether the hit is usable: a finite score and something to show.
    pub fn is_sane(&self) -> bool {
        self.score.is_finite() && !(self.title.is_empty() && self.snippet.is_empty())
    }
}

/// Identity of a found text for deduplication: the normalised URL of a web text, or collection,
/// path and lines of a local one.
pub fn identity_key(
    url: Option<&str>,
    collection: Option<&str>,
    path: Option<&str>,
    start_line: Option<u32>,
    end_line: Option<u32>,
) -> String {
    match url {
        Some(url) => crate::urlnorm::normalize_url(url),
        None => format!(
            "{}:{}:{}-{}",
            collection.unwrap_or(""),
            path.unwrap_or(""),
            start_line.unwrap_or(0),
            end_line.unwrap_or(0)
        ),
    }
}
