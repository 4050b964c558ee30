//! HTML documentation chunking: heading sections of a page's extracted text.
//!
//! Built for documentation pages (rustdoc, mdBook, Sphinx, MkDocs, ...). The
//! page is parsed with `scraper` (html5ever) and reduced to its main content:
//! the first of `<main>`, `[role=main]`, `#main-content`, `<article>`,
//! `.content`, `#content` that yields any text, else `<body>`. Page chrome is
//! dropped: `nav`, `aside`, `footer`, `header` (unless it holds a heading),
//! scripts, styles, forms, buttons, SVG, hidden elements, navigation /
//! search / banner landmarks, `javascript:` links, and elements whose class or
//! id marks them as sidebars, tables of contents, breadcrumbs, menus, search
//! boxes, anchor glyphs, source links or line numbers (state classes such as
//! `has-sidebar` do not count).
//!
//! The content becomes blocks of text: block elements end a paragraph, inline
//! text is joined with single spaces (whitespace collapsed), list items get a
//! `- ` bullet (nested lists and later paragraphs indented under it),
//! definitions a `: ` prefix, table cells are joined with ` | `; items of one
//! list or table are joined by single newlines, other blocks by blank lines.
//! `<pre>` (or a multi-line `<code>`) is kept verbatim as a fenced code block,
//! with its language when a class names it. Headings are rendered
//! Markdown-style (`## Title`).
//!
//! Sections follow the Markdown chunker: `h1`–`h6` open sections; a section
//! whose whole subtree fits [`ChunkOptions::max_tokens`] is one chunk,
//! otherwise its own text is a chunk (skipped when it is the bare heading,
//! which its subsections' paths already carry) and its subsections follow.
//! `symbol` is the heading text (without anchor glyphs such as `§` / `¶` or
//! "Copy item path") and `parent` the path of enclosing headings joined with
//! `" > "`. When the content has no `h1`, the page title heads the paths
//! (unless it contains the top heading, as `Install - Guide` above
//! `Install`). Text before the first heading is a section named after the
//! page title (`<title>`, else the first `h1`), or a preamble without one.
//! Oversized sections are cut between blocks (a long paragraph between
//! sentences or words, a long code block between lines, each piece fenced
//! again); neighbours with the same parent merge while one of them is below
//! [`ChunkOptions::min_tokens`] and the result fits the budget.
//!
//! Chunk text is extracted text, not markup, so `text` is not the source of
//! `start_line..=end_line`. html5ever reports no source positions, so
//! elements are located by a light scan of the source for start tags (skipping
//! comments and raw text such as scripts), matched per tag name, in order, to
//! the parsed elements. A chunk starts at the line of its first block's
//! element (the heading for a section; pieces of a long code block count
//! lines from its `<pre>`) and ends before the next chunk, the last one where
//! the main content ends; trailing blank and end-tag-only lines are left out.
//! Without any located element the chunks span the whole file.
//!
//! Pages over [`MAX_PARSE_BYTES`], or nested so deeply that tree building
//! would turn quadratic, are not parsed: their text is stripped with the same
//! scanner and cut into [`ChunkKind::Block`] chunks within the budget.
//!
//! [`extract_links`] lists a page's link targets for a crawler.

use std::borrow::Cow;
use std::collections::HashMap;

use ego_tree::iter::Edge;
use ego_tree::{NodeId, NodeRef};
use scraper::node::Element;
use scraper::{Html, Node};

use super::lines::Lines;
use super::{estimate_tokens, ChunkKind, ChunkOptions, RawChunk};

/// Larger pages are not parsed into a DOM (memory, time); their stripped text
/// is windowed instead.
pub(crate) const MAX_PARSE_BYTES: usize = 4 << 20;

/// Deepest element nesting (estimated from the source) that is parsed.
/// html5ever checks element scopes by walking the stack of open elements, so
/// very deep documents cost time quadratic in their size.
const MAX_NESTING: usize = 512;

const HTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Elements whose start tags are located in the source. Never implied by the
/// parser (except `p`, by a stray `</p>`), so source tags and parsed elements
/// of one name correspond in order.
#[rustfmt::skip]
const TRACKED: &[&str] = &[
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "pre", "li", "dt", "dd", "blockquote", "div",
    "section", "article", "main", "ul", "ol", "dl", "table", "td", "th", "figure", "figcaption",
    "details", "summary", "nav", "aside", "header", "footer", "hr",
];

/// Elements that end the current paragraph.
#[rustfmt::skip]
const BLOCKS: &[&str] = &[
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main",
    "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead",
    "tr", "ul",
];

/// Elements whose content the tokenizer reads as raw text (scripting on, as
/// html5ever parses by default).
#[rustfmt::skip]
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
    "plaintext",
];

/// Elements that hold no content or close implicitly; they do not count
/// towards the nesting estimate.
#[rustfmt::skip]
const NOT_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "frame", "basefont", "bgsound", "p", "li", "dt", "dd", "option",
    "optgroup", "tr", "td", "th", "tbody", "thead", "tfoot", "colgroup", "caption", "rb", "rt",
    "rtc", "rp", "html", "head", "body",
];

/// Elements that are page chrome whatever their attributes.
#[rustfmt::skip]
const CHROME_TAGS: &[&str] = &[
    "nav", "aside", "footer", "script", "style", "noscript", "template", "svg", "form", "button",
    "iframe", "object", "embed", "canvas", "select", "textarea", "input", "dialog", "head",
    "link", "meta",
];

/// `role` values of chrome landmarks and widgets.
#[rustfmt::skip]
const CHROME_ROLES: &[&str] = &[
    "navigation", "search", "banner", "contentinfo", "complementary", "menu", "menubar",
    "toolbar", "tablist",
];

/// Whole `id` values of chrome (not checked on sections, whose ids are
/// heading slugs).
#[rustfmt::skip]
const CHROME_IDS: &[&str] = &[
    "sidebar", "toc", "nav", "navbar", "navigation", "menu", "menu-bar", "search", "searchbar",
    "search-wrapper", "search-form", "breadcrumbs", "copy-path", "toggle-all-docs",
    "rustdoc-vars", "settings-menu", "help-button", "theme-list",
];

/// Whole class names of chrome: anchor glyphs, rustdoc's version / source /
/// "Run" links and tooltips, screen-reader text, line numbers, Sphinx's
/// `[source]` links.
#[rustfmt::skip]
const CHROME_CLASSES: &[&str] = &[
    "anchor", "doc-anchor", "out-of-band", "test-arrow", "since", "sr-only", "visually-hidden",
    "screen-reader-text", "line-numbers", "src-line-numbers", "viewcode-link", "viewcode-back",
    "notable-traits",
];

/// Words of class names (split at non-alphanumerics) that mark chrome; any
/// word containing `sidebar` or `breadcrumb` does too.
#[rustfmt::skip]
const CHROME_WORDS: &[&str] = &[
    "nav", "navbar", "navigation", "sidenav", "toc", "tableofcontents", "menu", "menubar",
    "search", "searchbar", "searchbox", "pagination", "pager", "headerlink", "srclink",
    "rightside", "hideme", "tooltip", "skip", "linenos", "linenodiv", "lineno", "toolbar",
    "topbar",
];

/// Class words that describe page state rather than an element
/// (`has-sidebar`, `sidebar-visible`).
#[rustfmt::skip]
const STATE_WORDS: &[&str] = &[
    "visible", "hidden", "open", "opened", "closed", "collapsed", "expanded", "active", "has",
    "with", "no", "show", "shown",
];

/// Heading words that are anchor glyphs, not text.
const GLYPHS: &[char] = &['§', '¶', '🔗', '⚓', '#', '\u{FE0F}'];

pub(crate) fn chunk(lines: &Lines<'_>, opts: &ChunkOptions) -> Vec<RawChunk> {
    let src = lines.src();
    let scan = (src.len() <= MAX_PARSE_BYTES)
        .then(|| SourceScan::new(src))
        .flatten();
    let Some(scan) = scan else {
        return fallback(lines, opts);
    };
    let doc = Html::parse_document(src);
    let page = extract(&doc, &scan);
    let title = page.title.clone();
    let pieces = sections(page.blocks, title, opts, src);
    layout(lines, pieces, page.content_end)
}

// ---------------------------------------------------------------------------
// Source scanning

/// A token of the source scan.
enum Token<'s> {
    /// A start tag beginning at byte `start`.
    Start {
        name: &'s str,
        start: usize,
        self_closing: bool,
    },
    End {
        name: &'s str,
    },
    /// Character data (`src[start..end]`, character references undecoded).
    Text {
        start: usize,
        end: usize,
    },
}

/// A forgiving HTML tokenizer that only finds tags and text: comments,
/// doctypes, processing instructions and raw-text element content (scripts,
/// styles, ...) are skipped. Linear in the source length.
struct Scanner<'s> {
    src: &'s str,
    pos: usize,
    /// Raw-text element whose content comes next.
    raw: Option<&'static str>,
}

impl<'s> Scanner<'s> {
    fn new(src: &'s str) -> Self {
        Scanner {
            src,
            pos: 0,
            raw: None,
        }
    }

    /// Skips `<!...>` markup starting at `at`.
    fn skip_declaration(&self, at: usize) -> usize {
        let rest = self.src.get(at..).unwrap_or("");
        let end = if rest.starts_with("<!-->") {
            Some(5)
        } else if rest.starts_with("<!--->") {
            Some(6)
        } else if rest.starts_with("<!--") {
            rest.get(4..)
                .and_then(|body| body.find("-->"))
                .map(|i| i + 7)
        } else if rest.starts_with("<![CDATA[") {
            rest.find("]]>").map(|i| i + 3)
        } else {
            rest.find('>').map(|i| i + 1)
        };
        end.map_or(self.src.len(), |end| at + end)
    }

    /// Position of the end tag closing raw-text element `name` at or after
    /// `from` (the end of the source when there is none).
    fn raw_end(&self, from: usize, name: &str) -> usize {
        if name == "plaintext" {
            return self.src.len();
        }
        let bytes = self.src.as_bytes();
        let mut i = from;
        while let Some(lt) = self.src.get(i..).and_then(|rest| rest.find("</")) {
            let at = i + lt;
            let name_end = at + 2 + name.len();
            let matches = self
                .src
                .get(at + 2..name_end)
                .is_some_and(|found| found.eq_ignore_ascii_case(name))
                && bytes.get(name_end).is_none_or(|&b| {
                    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | b'/' | b'>')
                });
            if matches {
                return at;
            }
            i = at + 2;
        }
        self.src.len()
    }
}

impl<'s> Iterator for Scanner<'s> {
    type Item = Token<'s>;

    fn next(&mut self) -> Option<Token<'s>> {
        let bytes = self.src.as_bytes();
        loop {
            if let Some(name) = self.raw.take() {
                self.pos = self.raw_end(self.pos, name);
            }
            let start = self.pos;
            let first = *bytes.get(start)?;
            if first != b'<' {
                let end = find_byte(bytes, b'<', start + 1).unwrap_or(bytes.len());
                self.pos = end;
                return Some(Token::Text { start, end });
            }
            match bytes.get(start + 1) {
                Some(b'!') => self.pos = self.skip_declaration(start),
                Some(b'?') => {
                    self.pos = find_byte(bytes, b'>', start + 1).map_or(bytes.len(), |i| i + 1);
                }
                Some(b'/') => match bytes.get(start + 2) {
                    Some(b) if b.is_ascii_alphabetic() => {
                        let Some((name, end, _)) = read_tag(self.src, start + 2, |_, _| {}) else {
                            self.pos = bytes.len();
                            return None;
                        };
                        self.pos = end;
                        return Some(Token::End { name });
                    }
                    Some(b'>') => self.pos = start + 3,
                    _ => {
                        self.pos = find_byte(bytes, b'>', start + 2).map_or(bytes.len(), |i| i + 1);
                    }
                },
                Some(b) if b.is_ascii_alphabetic() => {
                    let Some((name, end, self_closing)) = read_tag(self.src, start + 1, |_, _| {})
                    else {
                        self.pos = bytes.len();
                        return None;
                    };
                    self.pos = end;
                    self.raw = RAW_TEXT
                        .iter()
                        .find(|raw| raw.eq_ignore_ascii_case(name))
                        .copied();
                    return Some(Token::Start {
                        name,
                        start,
                        self_closing,
                    });
                }
                _ => {
                    let end = find_byte(bytes, b'<', start + 1).unwrap_or(bytes.len());
                    self.pos = end;
                    return Some(Token::Text { start, end });
                }
            }
        }
    }
}

/// Reads the tag whose name starts at `at`: returns its name, the offset
/// just past it and whether it ends with `/>`, calling `on_attr` with every
/// attribute's name and raw value. `None` when the source ends inside the tag
/// (the parser drops such a tag).
fn read_tag<'s>(
    src: &'s str,
    at: usize,
    mut on_attr: impl FnMut(&'s str, &'s str),
) -> Option<(&'s str, usize, bool)> {
    let bytes = src.as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c);
    let mut i = at;
    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'/' && bytes[i] != b'>' {
        i += 1;
    }
    let name = src.get(at..i)?;
    loop {
        let mut slash = false;
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b'/') {
            slash = bytes[i] == b'/';
            i += 1;
        }
        match bytes.get(i) {
            None => return None,
            Some(b'>') => return Some((name, i + 1, slash)),
            Some(_) => {}
        }
        // The attribute name (its first character may be `=`).
        let name_start = i;
        i += 1;
        while i < bytes.len() && !is_space(bytes[i]) && !matches!(bytes[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        let attr_name = src.get(name_start..i)?;
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            on_attr(attr_name, "");
            continue;
        }
        i += 1;
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&quote @ (b'"' | b'\'')) => {
                let close = find_byte(bytes, quote, i + 1)?;
                let value = src.get(i + 1..close)?;
                i = close + 1;
                value
            }
            Some(_) => {
                let value_start = i;
                while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
                    i += 1;
                }
                src.get(value_start..i)?
            }
            None => return None,
        };
        on_attr(attr_name, value);
    }
}

/// The raw value of attribute `name` of the start tag at `tag_start`.
fn tag_attr<'s>(src: &'s str, tag_start: usize, name: &str) -> Option<&'s str> {
    let mut found = None;
    read_tag(src, tag_start + 1, |attr, value| {
        if found.is_none() && attr.eq_ignore_ascii_case(name) {
            found = Some(value);
        }
    })?;
    found
}

fn find_byte(bytes: &[u8], needle: u8, from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|i| from + i)
}

fn one_of(list: &[&str], name: &str) -> Option<usize> {
    list.iter().position(|item| item.eq_ignore_ascii_case(name))
}

/// Start tags of the [`TRACKED`] elements, per name, in source order.
struct SourceScan {
    starts: Vec<Vec<usize>>,
}

impl SourceScan {
    /// `None` when the estimated nesting exceeds [`MAX_NESTING`].
    fn new(src: &str) -> Option<Self> {
        let mut starts = vec![Vec::new(); TRACKED.len()];
        let mut depth = 0usize;
        for token in Scanner::new(src) {
            match token {
                Token::Start {
                    name,
                    start,
                    self_closing,
                } => {
                    if let Some(index) = one_of(TRACKED, name) {
                        starts[index].push(start);
                    }
                    if !self_closing && one_of(NOT_NESTING, name).is_none() {
                        depth += 1;
                        if depth > MAX_NESTING {
                            return None;
                        }
                    }
                }
                Token::End { name } => {
                    if one_of(NOT_NESTING, name).is_none() {
                        depth = depth.saturating_sub(1);
                    }
                }
                Token::Text { .. } => {}
            }
        }
        Some(SourceScan { starts })
    }
}

// ---------------------------------------------------------------------------
// Extraction

enum BlockKind {
    Heading(u8),
    Text,
    Code(Option<String>),
}

/// A paragraph, heading or code block of the extracted text.
struct Block {
    kind: BlockKind,
    text: String,
    /// Byte offset of the element the block comes from, when located.
    pos: Option<usize>,
    /// The outermost list, table or definition list holding the block: blocks
    /// of one group are joined by single newlines.
    group: Option<NodeId>,
}

struct Page {
    title: Option<String>,
    blocks: Vec<Block>,
    /// Byte offset of the first located element after the main content.
    content_end: Option<usize>,
}

fn extract(doc: &Html, scan: &SourceScan) -> Page {
    let root = doc.tree.root();
    let mut positions: HashMap<NodeId, usize> = HashMap::new();
    let mut seen = vec![0usize; TRACKED.len()];
    let mut title: Option<String> = None;
    // Priority of each content candidate (see `candidate_rank`), first found.
    let mut candidates: [Option<NodeRef<'_, Node>>; 7] = [None; 7];
    // Whether each open element is structural chrome (or inside it); class
    // marks are judged inside the chosen content only.
    let mut chrome: Vec<bool> = Vec::new();
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) => {
                let Some(el) = node.value().as_element() else {
                    continue;
                };
                let html = &*el.name.ns == HTML_NS;
                if html {
                    if let Some(index) = one_of(TRACKED, el.name()) {
                        if let Some(&pos) = scan.starts[index].get(seen[index]) {
                            positions.insert(node.id(), pos);
                        }
                        seen[index] += 1;
                    }
                    if title.is_none() && el.name() == "title" {
                        title = Some(collapse(&text_of(node)));
                    }
                }
                let inside_chrome = chrome.last().copied().unwrap_or(false);
                let is_chrome = inside_chrome || is_structural_chrome(node, el);
                chrome.push(is_chrome);
                if !is_chrome && html {
                    if let Some(rank) = candidate_rank(el) {
                        candidates[rank].get_or_insert(node);
                    }
                }
            }
            Edge::Close(node) => {
                if node.value().is_element() {
                    chrome.pop();
                }
            }
        }
    }
    let title = title.filter(|t| !t.is_empty());
    // The first candidate, in order of preference, that yields any text.
    let found = candidates.iter().flatten().find_map(|&content| {
        let blocks = Extractor::new(&positions).run(content);
        (!blocks.is_empty()).then_some((content, blocks))
    });
    let Some((content, blocks)) = found else {
        return Page {
            title,
            blocks: Vec::new(),
            content_end: None,
        };
    };
    let title = title.or_else(|| {
        blocks.iter().find_map(|b| match b.kind {
            BlockKind::Heading(1) => Some(b.text.clone()),
            _ => None,
        })
    });
    Page {
        title,
        blocks,
        content_end: position_after(content, &positions),
    }
}

/// Rank of a main-content candidate: lower is preferred.
fn candidate_rank(el: &Element) -> Option<usize> {
    let name = el.name();
    let id = el.id().unwrap_or("");
    if name == "main" {
        Some(0)
    } else if el
        .attr("role")
        .is_some_and(|role| role.trim().eq_ignore_ascii_case("main"))
    {
        Some(1)
    } else if id == "main-content" {
        Some(2)
    } else if name == "article" {
        Some(3)
    } else if el.classes().any(|class| class == "content") {
        Some(4)
    } else if id == "content" {
        Some(5)
    } else if name == "body" {
        Some(6)
    } else {
        None
    }
}

/// Whether `el` (and its subtree) is page chrome rather than content.
fn is_chrome(node: NodeRef<'_, Node>, el: &Element) -> bool {
    is_structural_chrome(node, el) || is_marked_chrome(el)
}

/// Chrome by element type, landmark role or hiding: never content.
fn is_structural_chrome(node: NodeRef<'_, Node>, el: &Element) -> bool {
    let name = el.name();
    if &*el.name.ns != HTML_NS {
        return name == "svg";
    }
    if CHROME_TAGS.contains(&name) {
        return true;
    }
    if name == "header" {
        // A page header is chrome; an article's header holds its title.
        return !node.descendants().any(|d| {
            d.value()
                .as_element()
                .is_some_and(|e| heading_level(e.name()).is_some())
        });
    }
    let attr_is = |attr: &str, values: &[&str]| {
        el.attr(attr).is_some_and(|value| {
            value
                .split_ascii_whitespace()
                .any(|v| one_of(values, v).is_some())
        })
    };
    el.attr("hidden").is_some()
        || attr_is("aria-hidden", &["true"])
        || attr_is("role", CHROME_ROLES)
        || (name == "a"
            && el.attr("href").is_some_and(|href| {
                href.trim_start()
                    .get(..11)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("javascript:"))
            }))
}

/// Chrome by class or id (sidebars, tables of contents, anchor glyphs, ...).
/// Headings and the document's structural containers are never dropped this
/// way: state classes such as `sidebar-visible` sit on page wrappers, and
/// section ids are heading slugs.
fn is_marked_chrome(el: &Element) -> bool {
    let name = el.name();
    if heading_level(name).is_some()
        || matches!(name, "html" | "body" | "main" | "article" | "section")
    {
        return false;
    }
    // Custom elements such as `<rustdoc-search>`.
    if name.contains('-') && chrome_class(name, name) {
        return true;
    }
    let section = el.classes().any(|c| c == "section");
    if !section && el.id().is_some_and(|id| one_of(CHROME_IDS, id).is_some()) {
        return true;
    }
    el.classes().any(|class| chrome_class(class, name))
}

fn chrome_class(class: &str, tag: &str) -> bool {
    let lower = class.to_ascii_lowercase();
    if CHROME_CLASSES.contains(&lower.as_str()) || (tag == "a" && lower == "src") {
        return true;
    }
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    // `has-sidebar`, `sidebar-visible`, `toc-open`: page state, not chrome.
    if words.iter().any(|w| STATE_WORDS.contains(w)) {
        return false;
    }
    words
        .iter()
        .any(|w| CHROME_WORDS.contains(w) || w.contains("sidebar") || w.contains("breadcrumb"))
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn text_of(node: NodeRef<'_, Node>) -> String {
    node.descendants()
        .filter_map(|d| d.value().as_text().map(|t| &**t))
        .collect()
}

/// Position of the first located element after `node`'s subtree.
fn position_after(node: NodeRef<'_, Node>, positions: &HashMap<NodeId, usize>) -> Option<usize> {
    let mut current = node;
    loop {
        while let Some(sibling) = current.next_sibling() {
            if let Some(&pos) = sibling.descendants().find_map(|d| positions.get(&d.id())) {
                return Some(pos);
            }
            current = sibling;
        }
        current = current.parent()?;
    }
}

fn collapse(text: &str) -> String {
    let mut inline = Inline::default();
    inline.push_text(text, None);
    inline.text
}

/// Text of one paragraph (or heading) being collected, whitespace collapsed.
#[derive(Default)]
struct Inline {
    text: String,
    /// Whitespace seen since the last visible character.
    space: bool,
    /// Written before the first visible character (list bullet).
    prefix: String,
    /// Written before the next visible character when the text is not empty
    /// (table cell separator).
    separator: Option<&'static str>,
    pos: Option<usize>,
}

impl Inline {
    fn push_text(&mut self, text: &str, pos: Option<usize>) {
        for ch in text.chars() {
            if ch.is_whitespace() || ch.is_control() {
                self.space = true;
                continue;
            }
            if self.text.is_empty() {
                self.pos = pos;
                self.text.push_str(&self.prefix);
                self.prefix.clear();
                self.separator = None;
            } else if let Some(separator) = self.separator.take() {
                self.text.push_str(separator);
            } else if self.space && !self.text.ends_with('\n') {
                self.text.push(' ');
            }
            self.space = false;
            self.text.push(ch);
        }
    }

    fn newline(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self.space = false;
    }

    /// The collected text (trailing whitespace trimmed), leaving a pending
    /// prefix in place.
    fn take(&mut self) -> Option<(String, Option<usize>)> {
        let mut text = std::mem::take(&mut self.text);
        self.space = false;
        self.separator = None;
        // Leading whitespace can only be list indentation.
        text.truncate(text.trim_end().len());
        let pos = self.pos.take();
        (!text.trim().is_empty()).then_some((text, pos))
    }
}

struct Code {
    root: NodeId,
    lang: Option<String>,
    text: String,
    pos: Option<usize>,
}

struct OpenHeading {
    root: NodeId,
    level: u8,
    text: Inline,
    pos: Option<usize>,
}

struct Extractor<'a> {
    positions: &'a HashMap<NodeId, usize>,
    blocks: Vec<Block>,
    para: Inline,
    heading: Option<OpenHeading>,
    code: Option<Code>,
    /// Position of the most recently opened located element.
    last_pos: Option<usize>,
    /// Open list items and definitions, with the indentation of their
    /// continuation paragraphs.
    items: Vec<(NodeId, String)>,
    /// Open lists, tables and definition lists: their paragraphs are joined
    /// by single newlines.
    tight: Vec<NodeId>,
    /// Cells seen in the current table row.
    row_cells: usize,
}

impl Extractor<'_> {
    fn new(positions: &HashMap<NodeId, usize>) -> Extractor<'_> {
        Extractor {
            positions,
            blocks: Vec::new(),
            para: Inline::default(),
            heading: None,
            code: None,
            last_pos: None,
            items: Vec::new(),
            tight: Vec::new(),
            row_cells: 0,
        }
    }

    fn run(mut self, content: NodeRef<'_, Node>) -> Vec<Block> {
        // Root of a dropped subtree being skipped.
        let mut skip: Option<NodeId> = None;
        for edge in content.traverse() {
            match edge {
                Edge::Open(node) => {
                    if skip.is_some() {
                        continue;
                    }
                    match node.value() {
                        Node::Text(text) => self.text(text),
                        Node::Element(el) => {
                            if node != content && is_chrome(node, el) {
                                skip = Some(node.id());
                            } else {
                                self.open(node, el);
                            }
                        }
                        _ => {}
                    }
                }
                Edge::Close(node) => {
                    if let Some(root) = skip {
                        if root == node.id() {
                            skip = None;
                        }
                        continue;
                    }
                    if let Some(el) = node.value().as_element() {
                        self.close(node.id(), el);
                    }
                }
            }
        }
        self.finish_code();
        self.finish_heading();
        self.flush();
        self.blocks
    }

    fn text(&mut self, text: &str) {
        if let Some(code) = &mut self.code {
            code.text.push_str(text);
        } else if let Some(heading) = &mut self.heading {
            heading.text.push_text(text, None);
        } else {
            self.para.push_text(text, self.last_pos);
        }
    }

    /// Indentation of the innermost open list item or definition.
    fn indent(&self) -> String {
        self.items
            .last()
            .map(|(_, indent)| indent.clone())
            .unwrap_or_default()
    }

    /// Opens a list item or definition: its first paragraph starts with
    /// `marker`, later ones are indented under it.
    fn open_item(&mut self, id: NodeId, marker: &str) {
        self.flush();
        let indent = self.indent();
        self.para.prefix = format!("{indent}{marker}");
        self.items.push((id, format!("{indent}  ")));
    }

    fn open(&mut self, node: NodeRef<'_, Node>, el: &Element) {
        let own_pos = self.positions.get(&node.id()).copied();
        if own_pos.is_some() {
            self.last_pos = own_pos;
        }
        let name = el.name();
        if let Some(code) = &mut self.code {
            if name == "br" {
                code.text.push('\n');
            }
            return;
        }
        if let Some(heading) = &mut self.heading {
            if name == "br" {
                heading.text.space = true;
            }
            return;
        }
        if let Some(level) = heading_level(name) {
            self.flush();
            self.heading = Some(OpenHeading {
                root: node.id(),
                level,
                text: Inline::default(),
                pos: self.last_pos,
            });
            return;
        }
        if is_badge(el) {
            self.para.space = true;
        }
        match name {
            "pre" => self.start_code(node, el),
            "code" if is_code_block(node) => self.start_code(node, el),
            "br" => self.para.newline(),
            "li" => self.open_item(node.id(), "- "),
            "dd" => self.open_item(node.id(), ": "),
            // rustdoc's item tables: name, then the one-line summary.
            _ if el.classes().any(|c| c == "item-right") => self.open_item(node.id(), ": "),
            "ul" | "ol" | "menu" | "dl" | "table" => {
                self.flush();
                self.tight.push(node.id());
            }
            _ if el.classes().any(|c| c == "item-table") => {
                self.flush();
                self.tight.push(node.id());
            }
            "tr" => {
                self.flush();
                self.row_cells = 0;
            }
            "td" | "th" => {
                if self.row_cells > 0 {
                    self.para.separator = Some(" | ");
                }
                self.row_cells += 1;
            }
            _ if BLOCKS.contains(&name) => self.flush(),
            _ => {}
        }
    }

    fn close(&mut self, id: NodeId, el: &Element) {
        if let Some(code) = &self.code {
            if code.root == id {
                self.finish_code();
            }
            return;
        }
        if let Some(heading) = &self.heading {
            if heading.root == id {
                self.finish_heading();
            }
            return;
        }
        if is_badge(el) {
            self.para.space = true;
        }
        if self.items.last().is_some_and(|(item, _)| *item == id) {
            self.flush();
            self.items.pop();
            self.para.prefix = self.indent();
        } else if self.tight.last() == Some(&id) {
            self.flush();
            self.tight.pop();
        } else if BLOCKS.contains(&el.name()) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some((text, pos)) = self.para.take() {
            self.blocks.push(Block {
                kind: BlockKind::Text,
                text,
                pos,
                group: self
                    .tight
                    .first()
                    .or(self.items.first().map(|(id, _)| id))
                    .copied(),
            });
            // Later paragraphs of a list item are indented under its bullet.
            self.para.prefix = self.indent();
        }
    }

    fn start_code(&mut self, node: NodeRef<'_, Node>, el: &Element) {
        self.flush();
        self.code = Some(Code {
            root: node.id(),
            lang: code_language(node, el),
            text: String::new(),
            pos: self.last_pos,
        });
    }

    fn finish_code(&mut self) {
        let Some(code) = self.code.take() else {
            return;
        };
        self.para.prefix = self.indent();
        let text = verbatim(&code.text);
        if !text.is_empty() {
            self.blocks.push(Block {
                kind: BlockKind::Code(code.lang),
                text,
                pos: code.pos,
                group: None,
            });
        }
    }

    fn finish_heading(&mut self) {
        let Some(heading) = self.heading.take() else {
            return;
        };
        let text = clean_heading(&heading.text.text);
        if !text.is_empty() {
            self.blocks.push(Block {
                kind: BlockKind::Heading(heading.level),
                text,
                pos: heading.pos,
                group: None,
            });
        }
    }
}

/// Inline badges (rustdoc's "Experimental" / "Deprecated") are set apart from
/// the text they follow.
fn is_badge(el: &Element) -> bool {
    el.classes().any(|c| c == "stab" || c == "badge")
}

/// A `<code>` outside `<pre>` that spans several lines is a code block.
fn is_code_block(node: NodeRef<'_, Node>) -> bool {
    text_of(node)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .nth(1)
        .is_some()
}

/// Language of a code block from `language-x` / `lang-x` classes on the block
/// or its `<code>`, `highlight-x` on a wrapper (Sphinx), or rustdoc's `rust`.
fn code_language(node: NodeRef<'_, Node>, el: &Element) -> Option<String> {
    let from_class = |class: &str| {
        class
            .strip_prefix("language-")
            .or_else(|| class.strip_prefix("lang-"))
            .map(str::to_owned)
    };
    let own = el.classes().find_map(from_class).or_else(|| {
        node.descendants()
            .filter_map(|d| d.value().as_element())
            .find(|d| d.name() == "code")
            .and_then(|code| code.classes().find_map(from_class))
    });
    let lang = own
        .or_else(|| {
            node.ancestors()
                .take(3)
                .filter_map(|a| a.value().as_element())
                .find_map(|a| {
                    a.classes()
                        .find_map(|c| c.strip_prefix("highlight-").map(str::to_owned))
                })
        })
        .or_else(|| {
            (el.name() == "pre" && el.classes().any(|c| c == "rust")).then(|| "rust".to_owned())
        })?;
    let valid = !lang.is_empty()
        && lang != "default"
        && lang.len() <= 32
        && lang
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '#' | '.'));
    valid.then_some(lang)
}

/// Code block text: control characters removed, trailing whitespace and blank
/// edge lines trimmed, indentation kept.
fn verbatim(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line: String = line
            .chars()
            .filter(|&c| c == '\t' || !c.is_control())
            .collect();
        let line = line.trim_end();
        if out.is_empty() && line.is_empty() {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

/// Heading text without anchor glyphs (`§`, `¶`, a lone `#`) and copy-button
/// labels.
fn clean_heading(text: &str) -> String {
    let is_glyph = |word: &&str| word.chars().all(|c| GLYPHS.contains(&c));
    let mut words: Vec<&str> = text.split_whitespace().collect();
    for noise in [["Copy", "item", "path"], ["Copy", "to", "clipboard"]] {
        if words.ends_with(&noise) {
            words.truncate(words.len() - noise.len());
        }
    }
    let first = words
        .iter()
        .position(|w| !is_glyph(w))
        .unwrap_or(words.len());
    let last = words
        .iter()
        .rposition(|w| !is_glyph(w))
        .map_or(first, |i| i + 1);
    let joined = words.get(first..last).unwrap_or_default().join(" ");
    let glued = ['§', '¶', '🔗', '⚓'];
    joined
        .trim_start_matches(glued)
        .trim_end_matches(glued)
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------------------
// Sections

/// Rendered text that is never cut further.
struct Unit {
    text: String,
    tokens: usize,
    pos: Option<usize>,
    group: Option<NodeId>,
}

impl Unit {
    fn new(text: String, pos: Option<usize>, group: Option<NodeId>) -> Self {
        Unit {
            tokens: estimate_tokens(&text),
            text,
            pos,
            group,
        }
    }
}

/// Joins units with blank lines, or single newlines within a list or table.
fn join<'u>(units: impl IntoIterator<Item = &'u Unit>) -> String {
    let mut text = String::new();
    let mut previous: Option<&Unit> = None;
    for unit in units {
        if let Some(previous) = previous {
            let same_group = unit.group.is_some() && unit.group == previous.group;
            text.push_str(if same_group { "\n" } else { "\n\n" });
        }
        text.push_str(&unit.text);
        previous = Some(unit);
    }
    text
}

/// Offset just past the `n`th line break at or after `pos`.
fn skip_lines(src: &str, pos: usize, n: usize) -> usize {
    if n == 0 {
        return pos;
    }
    src.get(pos..)
        .and_then(|rest| rest.match_indices('\n').nth(n - 1))
        .map_or(src.len(), |(i, _)| pos + i + 1)
}

/// Renders a block as units of at most `max` tokens (a single code line or
/// word-sized fragment may be larger on its own). Pieces of a long code block
/// are placed by counting lines from the block's position in `src` (code is
/// verbatim, so its lines follow the source lines).
fn render(block: Block, max: usize, src: &str) -> Vec<Unit> {
    let Block {
        kind,
        text,
        pos,
        group,
    } = block;
    let words = |text: &str| {
        split_text(text, max)
            .into_iter()
            .map(|t| Unit::new(t, pos, group))
            .collect()
    };
    match kind {
        BlockKind::Heading(level) => words(&format!("{} {text}", "#".repeat(usize::from(level)))),
        BlockKind::Text => words(&text),
        BlockKind::Code(lang) => {
            let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
            let fence = "`".repeat(longest_run.max(2) + 1);
            let open = format!("{fence}{}", lang.as_deref().unwrap_or(""));
            let fenced = |code: &str| format!("{open}\n{code}\n{fence}");
            let whole = fenced(&text);
            if estimate_tokens(&whole) <= max {
                return vec![Unit::new(whole, pos, None)];
            }
            let budget = max
                .saturating_sub(estimate_tokens(&open) + estimate_tokens(&fence))
                .max(1);
            let lines: Vec<&str> = text.split('\n').collect();
            let costs: Vec<usize> = lines.iter().map(|l| estimate_tokens(l)).collect();
            // (line of the code, its offset in `src`), advanced piece by piece.
            let mut cursor = pos.map(|pos| (0, pos));
            pack(&costs, budget)
                .into_iter()
                .filter_map(|(lo, hi)| {
                    // Blank lines at a cut are dropped.
                    let blank = |i: &usize| lines.get(*i).is_none_or(|l| l.trim().is_empty());
                    let lo = (lo..hi).find(|i| !blank(i))?;
                    let hi = (lo..hi).rfind(|i| !blank(i))? + 1;
                    let code = lines.get(lo..hi)?.join("\n");
                    cursor = cursor.map(|(line, at)| (lo, skip_lines(src, at, lo - line)));
                    Some(Unit::new(fenced(&code), cursor.map(|(_, at)| at), None))
                })
                .collect()
        }
    }
}

/// Cuts text over `max` tokens between words, preferring sentence ends; a
/// word longer than the budget is cut between characters.
fn split_text(text: &str, max: usize) -> Vec<String> {
    if estimate_tokens(text) <= max {
        return vec![text.to_owned()];
    }
    let mut words: Vec<Cow<'_, str>> = Vec::new();
    for word in text.split_whitespace() {
        if estimate_tokens(word) <= max {
            words.push(Cow::Borrowed(word));
            continue;
        }
        // Every character costs at most one token.
        let chars: Vec<char> = word.chars().collect();
        for piece in chars.chunks(max.max(1)) {
            words.push(Cow::Owned(piece.iter().collect()));
        }
    }
    let costs: Vec<usize> = words.iter().map(|w| estimate_tokens(w)).collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    // Index just after the last sentence end in the current piece.
    let mut sentence_end: Option<usize> = None;
    let mut i = 0;
    while i < words.len() {
        let cost = costs[i];
        if i > start && size + cost > max {
            let cut = match sentence_end {
                Some(end) if end > start && costs[start..end].iter().sum::<usize>() * 2 >= max => {
                    end
                }
                _ => i,
            };
            out.push(words[start..cut].join(" "));
            start = cut;
            size = costs[start..i].iter().sum();
            sentence_end = None;
            continue;
        }
        size += cost;
        if words[i].ends_with(['.', '!', '?', ':', ';']) {
            sentence_end = Some(i + 1);
        }
        i += 1;
    }
    if start < words.len() {
        out.push(words[start..].join(" "));
    }
    out
}

/// Greedy packing of items with `costs` into consecutive ranges of at most
/// `max` (an item larger on its own stays alone), balanced so that the last
/// range is not needlessly small.
fn pack(costs: &[usize], max: usize) -> Vec<(usize, usize)> {
    let total: usize = costs.iter().sum();
    let pieces = total.div_ceil(max.max(1)).max(1);
    let target = total.div_ceil(pieces);
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, &cost) in costs.iter().enumerate() {
        if i > start && (size + cost > max || size >= target) {
            out.push((start, i));
            start = i;
            size = 0;
        }
        size += cost;
    }
    if start < costs.len() {
        out.push((start, costs.len()));
    }
    out
}

/// A heading and the units up to the next heading.
struct Section {
    level: u8,
    title: String,
    units: Vec<Unit>,
}

/// A chunk before layout.
struct Piece {
    kind: ChunkKind,
    symbol: Option<String>,
    parent: Option<String>,
    text: String,
    /// Position of its first located unit.
    pos: Option<usize>,
    tokens: usize,
}

fn sections(
    blocks: Vec<Block>,
    title: Option<String>,
    opts: &ChunkOptions,
    src: &str,
) -> Vec<Piece> {
    let has_h1 = blocks
        .iter()
        .any(|b| matches!(b.kind, BlockKind::Heading(1)));
    let mut intro: Vec<Unit> = Vec::new();
    let mut secs: Vec<Section> = Vec::new();
    for block in blocks {
        if let BlockKind::Heading(level) = block.kind {
            secs.push(Section {
                level,
                title: block.text.clone(),
                units: Vec::new(),
            });
        }
        let units = render(block, opts.max_tokens, src);
        match secs.last_mut() {
            Some(sec) => sec.units.extend(units),
            None => intro.extend(units),
        }
    }
    let mut builder = Builder {
        opts,
        root: if has_h1 { None } else { title.clone() },
        out: Vec::new(),
    };
    let (kind, symbol) = match title {
        Some(title) => (ChunkKind::Section, Some(title)),
        None => (ChunkKind::Preamble, None),
    };
    builder.push(kind, symbol, None, &intro.iter().collect::<Vec<_>>());
    builder.siblings(&secs, &mut Vec::new());
    merge(builder.out, opts)
}

struct Builder<'o> {
    opts: &'o ChunkOptions,
    /// Head of every heading path (the page title when there is no `h1`).
    root: Option<String>,
    out: Vec<Piece>,
}

impl Builder<'_> {
    fn parent(&self, path: &[&str]) -> Option<String> {
        let mut parts: Vec<&str> = Vec::with_capacity(path.len() + 1);
        if let Some(root) = self.root.as_deref() {
            // `Install - Guide` above `Install` adds nothing.
            if path.first().is_none_or(|top| !root.contains(top)) {
                parts.push(root);
            }
        }
        parts.extend_from_slice(path);
        (!parts.is_empty()).then(|| parts.join(" > "))
    }

    /// Emits the sections of `secs` (all below the heading at the end of
    /// `path`). Recursion depth is bounded by the six heading levels.
    fn siblings<'s>(&mut self, secs: &'s [Section], path: &mut Vec<&'s str>) {
        let mut i = 0;
        while let Some(sec) = secs.get(i) {
            let next = secs[i + 1..]
                .iter()
                .position(|s| s.level <= sec.level)
                .map_or(secs.len(), |offset| i + 1 + offset);
            self.section(sec, &secs[i + 1..next], path);
            i = next;
        }
    }

    fn section<'s>(&mut self, sec: &'s Section, children: &'s [Section], path: &mut Vec<&'s str>) {
        let symbol = Some(sec.title.clone());
        let parent = self.parent(path);
        let subtree = || std::iter::once(sec).chain(children).flat_map(|s| &s.units);
        let tokens: usize = subtree().map(|u| u.tokens).sum();
        if children.is_empty() || tokens <= self.opts.max_tokens {
            self.push(
                ChunkKind::Section,
                symbol,
                parent,
                &subtree().collect::<Vec<_>>(),
            );
            return;
        }
        // A bare heading says nothing its subsections' paths do not.
        if sec.units.len() > 1 {
            self.push(
                ChunkKind::Section,
                symbol,
                parent,
                &sec.units.iter().collect::<Vec<_>>(),
            );
        }
        path.push(&sec.title);
        self.siblings(children, path);
        path.pop();
    }

    /// Pushes `units`, packed into pieces within the budget.
    fn push(
        &mut self,
        kind: ChunkKind,
        symbol: Option<String>,
        parent: Option<String>,
        units: &[&Unit],
    ) {
        let costs: Vec<usize> = units.iter().map(|u| u.tokens).collect();
        for (lo, hi) in pack(&costs, self.opts.max_tokens) {
            let Some(part) = units.get(lo..hi) else {
                continue;
            };
            self.out.push(Piece {
                kind,
                symbol: symbol.clone(),
                parent: parent.clone(),
                text: join(part.iter().copied()),
                pos: part.iter().find_map(|u| u.pos),
                tokens: part.iter().map(|u| u.tokens).sum(),
            });
        }
    }
}

/// Merges neighbours with the same parent while one of them is below
/// `min_tokens` and the union fits `max_tokens`; the merged piece takes the
/// identity of its largest named part (the first one on a tie).
fn merge(pieces: Vec<Piece>, opts: &ChunkOptions) -> Vec<Piece> {
    // (piece, tokens of the part whose identity it carries)
    let mut out: Vec<(Piece, usize)> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        if let Some((prev, ident)) = out.last_mut() {
            let fits = prev.parent == piece.parent
                && (prev.tokens < opts.min_tokens || piece.tokens < opts.min_tokens)
                && prev.tokens + piece.tokens <= opts.max_tokens;
            if fits {
                if piece.kind.is_symbol() && (!prev.kind.is_symbol() || piece.tokens > *ident) {
                    prev.kind = piece.kind;
                    prev.symbol = piece.symbol;
                    *ident = piece.tokens;
                }
                prev.text.push_str("\n\n");
                prev.text.push_str(&piece.text);
                prev.pos = prev.pos.or(piece.pos);
                prev.tokens += piece.tokens;
                continue;
            }
        }
        let tokens = piece.tokens;
        out.push((piece, tokens));
    }
    out.into_iter().map(|(piece, _)| piece).collect()
}

// ---------------------------------------------------------------------------
// Layout and fallback

/// Places pieces on source lines: each starts at the line of its position
/// (never before the previous piece) and ends before the next one; the last
/// ends at `content_end`. Without any position every piece spans the file.
fn layout(lines: &Lines<'_>, pieces: Vec<Piece>, content_end: Option<usize>) -> Vec<RawChunk> {
    let last_line = lines.len().saturating_sub(1);
    let located = pieces.iter().any(|p| p.pos.is_some());
    let mut starts = Vec::with_capacity(pieces.len());
    let mut previous = 0;
    for piece in &pieces {
        let line = piece
            .pos
            .map_or(previous, |pos| lines.line_of(pos).max(previous));
        starts.push(line);
        previous = line;
    }
    let content_last = content_end.map_or(last_line, |end| {
        let line = lines.line_of(end);
        let before = lines.src().get(lines.start_byte(line)..end).unwrap_or("");
        if before.trim().is_empty() {
            line.saturating_sub(1)
        } else {
            line
        }
    });
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let (start, end) = if located {
                let start = starts[i];
                let mut end = starts
                    .get(i + 1)
                    .map_or(content_last, |next| next.saturating_sub(1))
                    .clamp(start, last_line.max(start));
                while end > start && (lines.is_blank(end) || closes_only(lines.text(end))) {
                    end -= 1;
                }
                (start, end)
            } else {
                (0, last_line)
            };
            let start_byte = lines.start_byte(start);
            RawChunk {
                symbol: piece.symbol,
                kind: piece.kind,
                parent: piece.parent,
                start_line: to_u32(start + 1),
                end_line: to_u32(end + 1),
                start_byte,
                end_byte: lines.content_end(end).max(start_byte),
                text: piece.text,
            }
        })
        .collect()
}

/// Whether a source line holds nothing but end tags (`</div></main>`).
fn closes_only(line: &str) -> bool {
    let mut rest = line.trim();
    while let Some(tag) = rest.strip_prefix("</") {
        match tag.find('>') {
            Some(close) => rest = tag[close + 1..].trim_start(),
            None => return false,
        }
    }
    rest.is_empty() && !line.trim().is_empty()
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Pages that are not parsed: text stripped by the scanner (block tags end
/// paragraphs, character references decoded), cut into budget-sized blocks.
fn fallback(lines: &Lines<'_>, opts: &ChunkOptions) -> Vec<RawChunk> {
    let src = lines.src();
    let mut units: Vec<Unit> = Vec::new();
    let mut para = Inline::default();
    let flush = |para: &mut Inline, units: &mut Vec<Unit>| {
        if let Some((text, pos)) = para.take() {
            let block = Block {
                kind: BlockKind::Text,
                text,
                pos,
                group: None,
            };
            units.extend(render(block, opts.max_tokens, src));
        }
    };
    for token in Scanner::new(src) {
        match token {
            Token::Start { name, .. } | Token::End { name } => {
                if name.eq_ignore_ascii_case("br") || one_of(BLOCKS, name).is_some() {
                    flush(&mut para, &mut units);
                }
            }
            Token::Text { start, end } => {
                let text = src.get(start..end).unwrap_or("");
                para.push_text(&decode_entities(text), Some(start));
            }
        }
    }
    flush(&mut para, &mut units);
    let costs: Vec<usize> = units.iter().map(|u| u.tokens).collect();
    let pieces = pack(&costs, opts.max_tokens)
        .into_iter()
        .filter_map(|(lo, hi)| {
            let part = units.get(lo..hi)?;
            Some(Piece {
                kind: ChunkKind::Block,
                symbol: None,
                parent: None,
                text: join(part),
                pos: part.iter().find_map(|u| u.pos),
                tokens: part.iter().map(|u| u.tokens).sum(),
            })
        })
        .collect();
    layout(lines, pieces, None)
}

/// Decodes numeric character references and the common named ones.
fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest
            .get(1..)
            .and_then(|after| after.find(';'))
            .filter(|&len| len <= 32)
            .and_then(|len| Some((len, decode_entity(rest.get(1..=len)?)?)));
        match decoded {
            Some((len, ch)) => {
                out.push(ch);
                rest = rest.get(len + 2..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return Some(
            char::from_u32(code)
                .filter(|&c| c != '\0')
                .unwrap_or('\u{FFFD}'),
        );
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "copy" => '©',
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Links

/// The targets of a page's `<a href>` and `<area href>` links, resolved
/// against `base` (an absolute URL such as `https://doc.rust-lang.org/std/`,
/// or a file path such as `/usr/share/doc/rust-doc/html/std/index.html`,
/// absolute or relative) and against the page's own `<base href>`, in
/// document order without duplicates.
///
/// Fragments are dropped (`a.html#x` is `a.html`; in-page `#x` links are
/// skipped), as are links with a scheme other than `http`, `https` and
/// `file` (`mailto:`, `javascript:`, ...). Dot segments are resolved; the
/// text is otherwise kept as written (no percent-decoding). Links are read by
/// a light tag scanner, not a DOM, so pages of any size are handled; common
/// character references in attribute values (`&amp;`, numeric ones) are
/// decoded.
pub fn extract_links(html: &str, base: &str) -> Vec<String> {
    let mut base: Cow<'_, str> = Cow::Borrowed(base);
    let mut base_seen = false;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for token in Scanner::new(html) {
        let Token::Start { name, start, .. } = token else {
            continue;
        };
        if name.eq_ignore_ascii_case("base") {
            if !base_seen {
                if let Some(href) = tag_attr(html, start, "href") {
                    base_seen = true;
                    if let Some(resolved) = resolve(&base, &decode_entities(href)) {
                        base = Cow::Owned(resolved);
                    }
                }
            }
            continue;
        }
        if !(name.eq_ignore_ascii_case("a") || name.eq_ignore_ascii_case("area")) {
            continue;
        }
        let Some(href) = tag_attr(html, start, "href") else {
            continue;
        };
        if let Some(url) = resolve(&base, &decode_entities(href)) {
            if seen.insert(url.clone()) {
                out.push(url);
            }
        }
    }
    out
}

/// The scheme of an absolute URL (`https` of `https://...`); single letters
/// are Windows drive letters, not schemes.
fn scheme_of(text: &str) -> Option<&str> {
    let colon = text.find(':')?;
    let scheme = &text[..colon];
    let valid = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// Resolves `href` against `base` (RFC 3986 reference resolution, without
/// the fragment). `None` for empty and in-page links and unsupported schemes.
fn resolve(base: &str, href: &str) -> Option<String> {
    let href: String = href
        .trim_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_control())
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let href = href.split('#').next().unwrap_or("");
    if href.is_empty() {
        return None;
    }
    if let Some(scheme) = scheme_of(href) {
        let supported = ["http", "https", "file"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme));
        return supported.then(|| href.to_owned());
    }
    let base = base.trim();
    let base_scheme = scheme_of(base);
    if let Some(rest) = href.strip_prefix("//") {
        return Some(format!("{}://{rest}", base_scheme.unwrap_or("https")));
    }
    // `prefix` is `scheme://authority` (or `scheme:`), `path` the base path.
    let (prefix, path, has_authority) = match base_scheme {
        Some(scheme) => {
            let after = &base[scheme.len() + 1..];
            let (prefix_len, has_authority) = match after.strip_prefix("//") {
                Some(authority) => (
                    scheme.len() + 3 + authority.find(['/', '?', '#']).unwrap_or(authority.len()),
                    true,
                ),
                None => (scheme.len() + 1, false),
            };
            let rest = &base[prefix_len..];
            let path_len = rest.find(['?', '#']).unwrap_or(rest.len());
            (&base[..prefix_len], &rest[..path_len], has_authority)
        }
        None => ("", base, false),
    };
    let (href_path, href_query) = href.split_at(href.find('?').unwrap_or(href.len()));
    let merged = if href_path.is_empty() {
        path.to_owned()
    } else if href_path.starts_with('/') {
        href_path.to_owned()
    } else {
        let dir = match path.rfind('/') {
            Some(slash) => &path[..=slash],
            None if has_authority => "/",
            None => "",
        };
        format!("{dir}{href_path}")
    };
    Some(format!(
        "{prefix}{}{href_query}",
        remove_dot_segments(&merged)
    ))
}

/// Resolves `.` and `..` segments. `..` never climbs above the root of an
/// absolute path; a relative path keeps the `..` it cannot resolve.
fn remove_dot_segments(path: &str) -> String {
    let (root, rest) = match path.strip_prefix('/') {
        Some(rest) => ("/", rest),
        None => ("", path),
    };
    let mut out: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in rest.split('/') {
        trailing_slash = false;
        match segment {
            "." => trailing_slash = true,
            ".." => {
                if out.last().is_some_and(|last| *last != "..") {
                    out.pop();
                } else if root.is_empty() {
                    out.push("..");
                }
                trailing_slash = true;
            }
            _ => out.push(segment),
        }
    }
    let mut joined = format!("{root}{}", out.join("/"));
    if trailing_slash && !joined.is_empty() && !joined.ends_with('/') {
        joined.push('/');
    }
    joined
}
