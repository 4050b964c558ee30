//! Main-content extraction: the first content candidate (`<main>`, `[role=main]`,
//! `#main-content`, `<article>`, `.content`, `#content`, `<body>`) that yields any text, with page
//! chrome (navigation, sidebars, tables of contents, hidden elements, ...) dropped, and each
//! tracked element matched to its start tag in the source.

use std::collections::HashMap;

use ego_tree::iter::Edge;
use ego_tree::{NodeId, NodeRef};
use scraper::node::Element;
use scraper::{Html, Node};

use super::blocks::{collapse, Block, BlockKind, Extractor};
use super::scanner::{one_of, SourceScan, TRACKED};

const HTML_NS: &str = "http://www.w3.org/1999/xhtml";

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

pub(super) struct Page {
    pub(super) title: Option<String>,
    pub(super) blocks: Vec<Block>,
    /// Byte offset of the first located element after the main content.
    pub(super) content_end: Option<usize>,
}

pub(super) fn extract(doc: &Html, scan: &SourceScan) -> Page {
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
pub(super) fn is_chrome(node: NodeRef<'_, Node>, el: &Element) -> bool {
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

pub(super) fn heading_level(name: &str) -> Option<u8> {
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

pub(super) fn text_of(node: NodeRef<'_, Node>) -> String {
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
