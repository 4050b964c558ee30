//! Markdown chunking by heading sections.
//!
//! Headings come from the tree-sitter-md block grammar (ATX `#` headings and
//! setext underlined headings; headings inside lists or block quotes do not
//! open sections). A section runs from its heading to the next heading of
//! the same or a higher level. A section that fits the budget is one chunk;
//! a larger one becomes its intro (heading plus text before the first
//! sub-heading) followed by its subsections. `symbol` is the heading text and
//! `parent` the path of enclosing headings joined with `" > "`.

use tree_sitter::Node;

use super::lines::Lines;
use super::treesitter::{depth_rank, line_depths, parse, rows};
use super::{split_lines, ChunkKind, ChunkOptions, Piece};
use crate::lang::Language;

struct Heading {
    line: usize,
    level: u8,
    text: String,
}

pub(crate) fn chunk(lines: &Lines<'_>, opts: &ChunkOptions) -> Option<Vec<Piece>> {
    let tree = parse(Language::Markdown, lines.src())?;
    let root = tree.root_node();
    let headings = collect_headings(root, lines);
    let depths = line_depths(root, lines);
    let mut emitter = Emitter {
        lines,
        opts,
        depths,
        out: Vec::new(),
    };
    let last = lines.len() - 1;
    let first_heading = headings.first().map_or(lines.len(), |h| h.line);
    if first_heading > 0 {
        emitter.push(ChunkKind::Preamble, None, None, 0, first_heading - 1);
    }
    emitter.siblings(&headings, last, &mut Vec::new());
    Some(emitter.out)
}

/// Headings that open sections, in document order.
fn collect_headings(root: Node<'_>, lines: &Lines<'_>) -> Vec<Heading> {
    let src = lines.src();
    let mut headings = Vec::new();
    // Only `document` and `section` nodes are descended into, so the stack
    // stays as deep as the heading levels (at most 6).
    let mut stack = vec![root];
    let mut cursor = root.walk();
    while let Some(node) = stack.pop() {
        for child in node.named_children(&mut cursor) {
            match child.kind() {
                "section" => stack.push(child),
                "atx_heading" | "setext_heading" => {
                    if let Some(heading) = heading(child, src, lines) {
                        headings.push(heading);
                    }
                }
                _ => {}
            }
        }
    }
    headings.sort_by_key(|h| h.line);
    headings.dedup_by_key(|h| h.line);
    headings
}

fn heading(node: Node<'_>, src: &str, lines: &Lines<'_>) -> Option<Heading> {
    let mut cursor = node.walk();
    let level = node
        .children(&mut cursor)
        .find_map(|child| match child.kind() {
            "atx_h1_marker" | "setext_h1_underline" => Some(1),
            "atx_h2_marker" | "setext_h2_underline" => Some(2),
            "atx_h3_marker" => Some(3),
            "atx_h4_marker" => Some(4),
            "atx_h5_marker" => Some(5),
            "atx_h6_marker" => Some(6),
            _ => None,
        })?;
    let raw = node
        .child_by_field_name("heading_content")
        .and_then(|content| src.get(content.start_byte()..content.end_byte()))
        .unwrap_or("");
    Some(Heading {
        line: rows(node, lines).0,
        level,
        text: heading_text(raw),
    })
}

/// Collapses whitespace and drops an ATX closing sequence (`## Title ##`).
fn heading_text(raw: &str) -> String {
    let mut text = raw.trim();
    if text.ends_with('#') {
        let stripped = text.trim_end_matches('#');
        if stripped.is_empty() || stripped.ends_with(char::is_whitespace) {
            text = stripped.trim_end();
        }
    }
    super::spec::collapse(text)
}

struct Emitter<'a> {
    lines: &'a Lines<'a>,
    opts: &'a ChunkOptions,
    depths: Vec<u16>,
    out: Vec<Piece>,
}

impl Emitter<'_> {
    /// Emits the sections opened by `headings` (all below the heading at the
    /// end of `path`), the last one ending at line `hi`.
    fn siblings(&mut self, headings: &[Heading], hi: usize, path: &mut Vec<String>) {
        let mut i = 0;
        while i < headings.len() {
            let heading = &headings[i];
            let next = headings[i + 1..]
                .iter()
                .position(|h| h.level <= heading.level)
                .map_or(headings.len(), |offset| i + 1 + offset);
            let end = headings
                .get(next)
                .map_or(hi, |h| h.line.saturating_sub(1).max(heading.line));
            self.section(heading, &headings[i + 1..next], end, path);
            i = next;
        }
    }

    fn section(
        &mut self,
        heading: &Heading,
        children: &[Heading],
        hi: usize,
        path: &mut Vec<String>,
    ) {
        let lo = heading.line;
        let symbol = (!heading.text.is_empty()).then(|| heading.text.clone());
        let parent = (!path.is_empty()).then(|| path.join(" > "));
        let Some(first_child) = children.first() else {
            self.push(ChunkKind::Section, symbol, parent, lo, hi);
            return;
        };
        if self.lines.tokens(lo, hi) <= self.opts.max_tokens {
            self.out
                .push(Piece::new(ChunkKind::Section, symbol, parent, lo, hi));
            return;
        }
        if first_child.line > lo {
            self.push(ChunkKind::Section, symbol, parent, lo, first_child.line - 1);
        }
        let pushed = !heading.text.is_empty();
        if pushed {
            path.push(heading.text.clone());
        }
        self.siblings(children, hi, path);
        if pushed {
            path.pop();
        }
    }

    /// Pushes `lo..=hi`, split within the budget when needed.
    fn push(
        &mut self,
        kind: ChunkKind,
        symbol: Option<String>,
        parent: Option<String>,
        lo: usize,
        hi: usize,
    ) {
        let (lines, depths) = (self.lines, &self.depths);
        let rank = |line: usize| depth_rank(depths, lines, line);
        for (start, end) in split_lines(lines, lo, hi, self.opts.max_tokens, &rank) {
            self.out
                .push(Piece::new(kind, symbol.clone(), parent.clone(), start, end));
        }
    }
}
