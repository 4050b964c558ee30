//! Turning a fetched body into a page: kind, charset, title, and heading sections cut by the
//! indexer's chunkers (the HTML one drops page chrome and renders Markdown-like text).

use aiex_indexer::chunk::{chunk_source, ChunkOptions};
use aiex_indexer::Language;

use super::decode::{self, PageKind};
use super::PageSection;

pub(crate) struct Extracted {
    pub content_type: String,
    pub kind: PageKind,
    pub charset: &'static str,
    pub title: Option<String>,
    pub sections: Vec<PageSection>,
    pub bytes: usize,
}

/// Decodes and splits the body (CPU work: runs on the blocking pool).
pub(crate) fn extract(
    body: &[u8],
    declared: Option<PageKind>,
    media: decode::MediaType,
    path: &str,
    chunk: &ChunkOptions,
) -> Extracted {
    let kind = declared.unwrap_or_else(|| decode::sniff_kind(body, path));
    let content_type = if media.essence.is_empty() || declared.is_none() {
        match kind {
            PageKind::Html => "text/html",
            PageKind::Markdown => "text/markdown",
            PageKind::Text => "text/plain",
        }
        .to_string()
    } else {
        media.essence.clone()
    };
    let (text, charset) = decode::decode(body, media.charset.as_deref(), kind);
    let language = match kind {
        PageKind::Html => Language::Html,
        PageKind::Markdown => Language::Markdown,
        PageKind::Text => Language::Text,
    };
    let title = match kind {
        PageKind::Html => html_title(&text),
        PageKind::Markdown => markdown_title(&text),
        PageKind::Text => None,
    };
    let sections = chunk_source(language, &text, chunk)
        .into_iter()
        .filter(|raw| !raw.text.trim().is_empty())
        .map(|raw| PageSection {
            heading: raw.symbol,
            path: raw.parent,
            text: raw.text,
        })
        .collect();
    Extracted {
        content_type,
        kind,
        charset,
        title,
        sections,
        bytes: body.len(),
    }
}

/// The `<title>` of an HTML page, read from the document up to the title's end tag.
fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let end = lower[start..]
        .find("</title")
        .map(|offset| start + offset)?;
    let close = lower[end..]
        .find('>')
        .map_or(html.len(), |offset| end + offset + 1);
    let document = scraper::Html::parse_document(&html[..close]);
    let selector = scraper::Selector::parse("title").ok()?;
    let title = document
        .select(&selector)
        .next()?
        .text()
        .collect::<String>();
    let collapsed = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

/// The first level-one ATX heading of a Markdown page.
fn markdown_title(markdown: &str) -> Option<String> {
    markdown
        .lines()
        .map(str::trim_start)
        .find_map(|line| line.strip_prefix("# "))
        .map(|title| title.trim().trim_end_matches('#').trim().to_string())
        .filter(|title| !title.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(
            html_title("<html><head><TITLE>Tokio &amp;\n  tasks</TITLE></head><body>x</body>"),
            Some("Tokio & tasks".to_string())
        );
        assert_eq!(html_title("<html><body>no title</body></html>"), None);
        assert_eq!(
            markdown_title("intro\n# The Book #\n## Two"),
            Some("The Book".to_string())
        );
    }

    #[test]
    fn html_is_split_in_sections() {
        let html = b"<html><head><title>Guide</title></head><body><nav>menu</nav><main>\
            <h1>Guide</h1><p>Intro text.</p><h2>Install</h2><p>Run cargo add.</p>\
            <h2>Use</h2><p>Call spawn.</p></main></body></html>";
        let media = decode::parse_content_type("text/html");
        let extracted = extract(
            html,
            Some(PageKind::Html),
            media,
            "/guide",
            &ChunkOptions {
                max_tokens: 8,
                min_tokens: 1,
                ..ChunkOptions::default()
            },
        );
        assert_eq!(extracted.title.as_deref(), Some("Guide"));
        let all: String = extracted.sections.iter().map(|s| s.text.as_str()).collect();
        assert!(all.contains("Run cargo add."), "{all}");
        assert!(!all.contains("menu"), "navigation dropped: {all}");
        assert!(extracted
            .sections
            .iter()
            .any(|s| s.heading.as_deref() == Some("Install")));
    }
}
