//! Safe fetching of web pages for research and docs crawls.
//!
//! [`PageFetcher`] reads one page (or many, bounded) within size and time limits, follows
//! redirects itself, checks content types (HTML, XHTML, Markdown, plain text; binary bodies are
//! refused even when their type lies), decodes broken or legacy encodings lossily, honours
//! `robots.txt`, spaces requests to one host, and extracts the text in heading sections with
//! the indexer's HTML and Markdown chunkers.
//!
//! Every request goes through the SSRF guard ([`guard`]): no loopback, private, link-local,
//! metadata or other non-public address is reached, whether given literally, reached by a
//! redirect, or hidden behind a DNS name (the address checked is the address connected to).
//!
//! Threading: I/O is async; decoding and extraction run on tokio's blocking pool.

mod decode;
mod extract;
mod fetcher;
pub mod guard;
pub mod ip;
mod robots;

pub use decode::PageKind;
pub use fetcher::{FetchSettings, PageFetcher};
pub use guard::{
    guarded_client_builder, Blocked, HostResolver, NetPolicy, ResolveFuture, StaticResolver,
    SystemResolver,
};
pub use ip::{classify_host_name, classify_ip, BlockReason};

/// One heading section of a page's extracted text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageSection {
    /// The section's heading (for HTML, the page title for text before the first heading).
    pub heading: Option<String>,
    /// The enclosing headings, joined with `" > "`.
    pub path: Option<String>,
    /// The extracted text (Markdown-like for HTML: headings `## `, fenced code, `- ` items).
    pub text: String,
}

/// A fetched, decoded and extracted page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FetchedPage {
    /// The URL asked for.
    pub url: String,
    /// The URL read, after redirects.
    pub final_url: String,
    /// HTTP status of the final response (always a success).
    pub status: u16,
    /// The media type, lowercase, without parameters (`text/html`); sniffed when undeclared.
    pub content_type: String,
    pub kind: PageKind,
    /// The encoding the body was decoded with (`UTF-8`, `windows-1252`, ...).
    pub charset: String,
    /// `<title>` for HTML, the first `#` heading for Markdown.
    pub title: Option<String>,
    /// The text, in heading sections, in page order.
    pub sections: Vec<PageSection>,
    /// Body bytes read.
    pub bytes: usize,
    /// Whether the body was cut at the size limit.
    pub truncated: bool,
    /// When the response arrived, in milliseconds since the Unix epoch.
    pub fetched_at_ms: u64,
}

impl FetchedPage {
    /// All sections' text, separated by blank lines.
    pub fn text(&self) -> String {
        self.sections
            .iter()
            .map(|section| section.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// [`FetchedPage::fetched_at_ms`] as a time.
    pub fn fetched_at(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.fetched_at_ms)
    }
}

/// Why a page was not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("refused to fetch `{url}`: {reason}")]
    Blocked { url: String, reason: String },
    #[error("robots.txt disallows `{url}`")]
    RobotsDisallowed { url: String },
    #[error("`{url}` redirected more than {limit} times")]
    TooManyRedirects { url: String, limit: usize },
    #[error("`{url}` did not answer within {after_ms} ms")]
    Timeout { url: String, after_ms: u64 },
    #[error("cannot connect to `{url}`: {message}")]
    Connect { url: String, message: String },
    #[error("`{url}` answered http status {status}")]
    Http { url: String, status: u16 },
    #[error("`{url}` is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("`{url}` has unsupported content type `{content_type}`")]
    UnsupportedContentType { url: String, content_type: String },
    #[error("cannot read the body of `{url}`: {message}")]
    Decode { url: String, message: String },
    #[error("http client: {0}")]
    Client(String),
}

impl FetchError {
    /// A stable snake_case code for events and API errors (`blocked`, `timeout`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl { .. } => "invalid_url",
            FetchError::Blocked { .. } => "blocked",
            FetchError::RobotsDisallowed { .. } => "robots_disallowed",
            FetchError::TooManyRedirects { .. } => "too_many_redirects",
            FetchError::Timeout { .. } => "timeout",
            FetchError::Connect { .. } => "connect",
            FetchError::Http { .. } => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::UnsupportedContentType { .. } => "unsupported_content_type",
            FetchError::Decode { .. } => "decode",
            FetchError::Client(_) => "client",
        }
    }

    /// Whether retrying later could succeed (timeouts, connection failures, 429 and 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout { .. } | FetchError::Connect { .. } => true,
            FetchError::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
