//! The links a crawled page leads to.
//!
//! Pages are read by html5ever's tokenizer, not parsed into a tree: tokenizing is linear in the
//! page size, while tree building turns quadratic on deeply nested markup, and a crawl reads pages
//! it does not control. Comments are skipped and the content of raw-text elements (scripts,
//! styles, ...) is not read as markup, as the tree builder would switch the tokenizer.

use std::cell::RefCell;
use std::collections::HashSet;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::TokenizerResult;
use url::Url;

/// The targets of a page's `<a href>` and `<area href>` links, resolved against `page` and the
/// page's first `<base href>`, in document order without duplicates.
///
/// Fragments are dropped (`a.html#x` is `a.html`); empty and in-page (`#x`) links are skipped,
/// as are targets other than `http` and `https` (`mailto:`, `javascript:`, `file:`, ...).
/// Character references in attribute values are decoded.
pub(super) fn extract_links(html: &str, page: &Url) -> Vec<Url> {
    let sink = LinkSink {
        state: RefCell::new(Links {
            base: page.clone(),
            base_seen: false,
            seen: HashSet::new(),
            found: Vec::new(),
        }),
    };
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from(html));
    // The sink never pauses the tokenizer (no scripts run, no encoding switch), so this ends at
    // once; the loop only guards against a paused feed.
    while !matches!(tokenizer.feed(&input), TokenizerResult::Done) {}
    tokenizer.end();
    tokenizer.sink.state.into_inner().found
}

struct Links {
    /// Where relative links point from: the page, or its `<base href>`.
    base: Url,
    base_seen: bool,
    seen: HashSet<Url>,
    found: Vec<Url>,
}

struct LinkSink {
    state: RefCell<Links>,
}

impl TokenSink for LinkSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line_number: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        if tag.kind != TagKind::StartTag {
            return TokenSinkResult::Continue;
        }
        self.state.borrow_mut().start_tag(&tag);
        raw_content(&tag.name)
    }
}

impl Links {
    fn start_tag(&mut self, tag: &Tag) {
        let name = &*tag.name;
        if !matches!(name, "a" | "area" | "base") {
            return;
        }
        let Some(href) = tag
            .attrs
            .iter()
            .find(|attr| attr.name.ns.is_empty() && &*attr.name.local == "href")
            .map(|attr| &*attr.value)
        else {
            return;
        };
        if name == "base" {
            if !self.base_seen {
                self.base_seen = true;
                if let Ok(base) = self.base.join(href) {
                    self.base = base;
                }
            }
            return;
        }
        if let Some(target) = resolve(&self.base, href) {
            if self.seen.insert(target.clone()) {
                self.found.push(target);
            }
        }
    }
}

/// Resolves `href` against `base`, without its fragment. `None` for empty and in-page links and
/// for targets that are not `http` or `https`.
fn resolve(base: &Url, href: &str) -> Option<Url> {
    // What the URL parser ignores around a reference.
    let trimmed = href.trim_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_control());
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let mut target = base.join(trimmed).ok()?;
    if !matches!(target.scheme(), "http" | "https") {
        return None;
    }
    target.set_fragment(None);
    Some(target)
}

/// How the tokenizer reads the content of an element that starts with `name`: as the tree
/// builder switches it (scripting on), so scripts, styles and the like hide no links.
fn raw_content(name: &str) -> TokenSinkResult<()> {
    match name {
        "script" => TokenSinkResult::RawData(RawKind::ScriptData),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
            TokenSinkResult::RawData(RawKind::Rawtext)
        }
        "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
        "plaintext" => TokenSinkResult::Plaintext,
        _ => TokenSinkResult::Continue,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn links(html: &str, page: &str) -> Vec<String> {
        let page = Url::parse(page).expect("page url");
        extract_links(html, &page)
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn links_resolve_against_the_page() {
        let src = "<a href=\"struct.Mutex.html#method.lock\">lock</a>\
                   <a href='../fs/index.html'>fs</a>\
                   <a href=/std/index.html>root</a>\
                   <a href=\"//cdn.example.org/lib.js\">cdn</a>\
                   <a href=\"https://other.org/a?b=1&amp;c=2#frag\">abs</a>\
                   <a href=\"?page=2\">next</a>\
                   <a href=\"#top\">top</a><a href=\"\">empty</a><a>none</a>\
                   <a href=\"mailto:me@example.org\">mail</a><a href=\"javascript:void(0)\">js</a>\
                   <a href=\"file:///etc/passwd\">file</a>\
                   <AREA HREF=\"./map.html\">\
                   <a href=\" struct.Mutex.html \">again</a>\
                   <link href=\"style.css\"><img src=\"a.png\">\
                   <script>var a = '<a href=\"hidden.html\">';</script><!-- <a href=\"c.html\"> -->\
                   <style>a::after { content: '<a href=\"styled.html\">' }</style>\
                   <title><a href=\"titled.html\"></title>";
        assert_eq!(
            links(src, "https://doc.rust-lang.org/std/sync/index.html?x=1"),
            [
                "https://doc.rust-lang.org/std/sync/struct.Mutex.html",
                "https://doc.rust-lang.org/std/fs/index.html",
                "https://doc.rust-lang.org/std/index.html",
                "https://cdn.example.org/lib.js",
                "https://other.org/a?b=1&c=2",
                "https://doc.rust-lang.org/std/sync/index.html?page=2",
                "https://doc.rust-lang.org/std/sync/map.html",
            ]
        );
    }

    #[test]
    fn dot_segments_never_climb_above_the_root() {
        assert_eq!(
            links(
                "<a href=\"a/../../b.html\">b</a><a href=\"x/\">x</a>\
                 <a href=\"sync/./struct.Arc.html\">arc</a><a href=\"../../../x.html\">x</a>",
                "https://h.org/docs/index.html"
            ),
            [
                "https://h.org/b.html",
                "https://h.org/docs/x/",
                "https://h.org/docs/sync/struct.Arc.html",
                "https://h.org/x.html",
            ]
        );
    }

    #[test]
    fn the_first_base_href_applies() {
        let src = "<head><base target=\"_top\"><base href=\"https://example.com/guide/\">\
                   <base href=\"https://ignored.test/\"></head>\
                   <a href=\"intro.html\">intro</a><a href=\"/abs.html\">abs</a>";
        assert_eq!(
            links(src, "https://local.test/page.html"),
            [
                "https://example.com/guide/intro.html",
                "https://example.com/abs.html"
            ]
        );
        let relative = "<base href=\"../api/\"><a href=\"Mutex.html\">m</a>";
        assert_eq!(
            links(relative, "https://d.test/book/ch1.html"),
            ["https://d.test/api/Mutex.html"]
        );
    }

    #[test]
    fn deep_nesting_is_read_in_one_pass() {
        let depth = 50_000;
        let src = format!(
            "{}<a href=\"deep.html\">deep</a>{}",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        assert_eq!(links(&src, "https://d.test/"), ["https://d.test/deep.html"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn tag_soup_never_panics(
            parts in prop::collection::vec(prop::sample::select(vec![
                "<a href=\"../x.html#y\">", "</a>", "<a href=", "<base href='/b/'>", "<area href=",
                "<script>", "</script>", "<!--", "-->", "<title>", "</title>", "<plaintext>",
                "&amp;", "&#0;", "\"", "'", "<", ">", "//", "#", "?", "é", "日本", " ", "\n",
            ]), 0..80),
        ) {
            let src: String = parts.concat();
            for link in extract_links(&src, &Url::parse("https://example.com/docs/page.html").expect("url")) {
                prop_assert!(matches!(link.scheme(), "http" | "https"));
                prop_assert!(link.fragment().is_none());
            }
        }
    }
}
