//! Sections by heading, as the Markdown chunker cuts them: heading paths, subtrees kept whole
//! when they fit the budget, oversized blocks cut between sentences, words or code lines, and
//! small neighbours merged.

use std::borrow::Cow;

use ego_tree::NodeId;

use super::blocks::{Block, BlockKind};
use crate::chunk::{estimate_tokens, ChunkKind, ChunkOptions};

/// Rendered text that is never cut further.
pub(super) struct Unit {
    text: String,
    pub(super) tokens: usize,
    pub(super) pos: Option<usize>,
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
pub(super) fn join<'u>(units: impl IntoIterator<Item = &'u Unit>) -> String {
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
pub(super) fn render(block: Block, max: usize, src: &str) -> Vec<Unit> {
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
pub(super) fn pack(costs: &[usize], max: usize) -> Vec<(usize, usize)> {
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
pub(super) struct Piece {
    pub(super) kind: ChunkKind,
    pub(super) symbol: Option<String>,
    pub(super) parent: Option<String>,
    pub(super) text: String,
    /// Position of its first located unit.
    pub(super) pos: Option<usize>,
    pub(super) tokens: usize,
}

pub(super) fn sections(
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
