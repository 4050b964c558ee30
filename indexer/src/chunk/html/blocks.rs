//! The main content as blocks of text: paragraphs (inline text joined, whitespace collapsed),
//! list items and definitions with their markers, table rows, headings and verbatim code blocks.

use std::collections::HashMap;

use ego_tree::iter::Edge;
use ego_tree::{NodeId, NodeRef};
use scraper::node::Element;
use scraper::Node;

use super::extract::{heading_level, is_chrome, text_of};

/// Elements that end the current paragraph.
#[rustfmt::skip]
pub(super) const BLOCKS: &[&str] = &[
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main",
    "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead",
    "tr", "ul",
];

/// Heading words that are anchor glyphs, not text.
const GLYPHS: &[char] = &['§', '¶', '🔗', '⚓', '#', '\u{FE0F}'];

pub(super) enum BlockKind {
    Heading(u8),
    Text,
    Code(Option<String>),
}

/// A paragraph, heading or code block of the extracted text.
pub(super) struct Block {
    pub(super) kind: BlockKind,
    pub(super) text: String,
    /// Byte offset of the element the block comes from, when located.
    pub(super) pos: Option<usize>,
    /// The outermost list, table or definition list holding the block: blocks
    /// of one group are joined by single newlines.
    pub(super) group: Option<NodeId>,
}

pub(super) fn collapse(text: &str) -> String {
    let mut inline = Inline::default();
    inline.push_text(text, None);
    inline.text
}

/// Text of one paragraph (or heading) being collected, whitespace collapsed.
#[derive(Default)]
pub(super) struct Inline {
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
    pub(super) fn push_text(&mut self, text: &str, pos: Option<usize>) {
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
    pub(super) fn take(&mut self) -> Option<(String, Option<usize>)> {
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

pub(super) struct Extractor<'a> {
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
    pub(super) fn new(positions: &HashMap<NodeId, usize>) -> Extractor<'_> {
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

    pub(super) fn run(mut self, content: NodeRef<'_, Node>) -> Vec<Block> {
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
