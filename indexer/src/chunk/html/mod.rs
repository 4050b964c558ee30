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

mod blocks;
mod entities;
mod extract;
mod scanner;
mod sections;

use scraper::Html;

use self::blocks::{Block, BlockKind, Inline, BLOCKS};
use self::entities::decode_entities;
use self::extract::extract;
use self::scanner::{one_of, Scanner, SourceScan, Token};
use self::sections::{join, pack, render, sections, Piece, Unit};
use super::lines::Lines;
use super::{ChunkKind, ChunkOptions, RawChunk};

/// Larger pages are not parsed into a DOM (memory, time); their stripped text
/// is windowed instead.
pub(crate) const MAX_PARSE_BYTES: usize = 4 << 20;

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
