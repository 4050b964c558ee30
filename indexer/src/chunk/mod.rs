//! Symbol-aware chunking of source files.
//!
//! [`chunk_source`] cuts a file into [`RawChunk`]s that follow the code's
//! structure: one chunk per function, method, type, module, ... (found with
//! tree-sitter), top-level code between symbols as [`ChunkKind::Preamble`]
//! chunks, Markdown by heading sections, and HTML by the heading sections of
//! its extracted text (see `html/`), PDF documents page by page (their
//! extracted text, see `pdf`). Languages without a grammar,
//! unparseable files and pathological inputs fall back to overlapping line
//! windows ([`ChunkKind::Block`]).
//!
//! Chunks are always whole lines. Outside the fallback windows and HTML pages
//! they are ordered, never overlap, and together cover every non-blank line.
//!
//! A symbol's chunk starts at the documentation directly above it: comments,
//! attributes, decorators, Elixir `@doc`/`@spec`, as long as no blank line
//! separates them from the symbol (a comment separated by a blank line is a
//! section marker rather than documentation, and stays with the code around
//! it).
//!
//! Size rules (token counts are [`estimate_tokens`] estimates):
//! * a container (impl, class, trait, module, namespace, ...) that fits in
//!   [`ChunkOptions::max_tokens`] is one chunk; a larger one is split into its
//!   members plus chunks of the container's own kind (named after it) holding
//!   the header and the leftover members (fields, ...). All of them get
//!   `parent` = the container header (`impl<T> Parser<T>`, `class
//!   Foo(Base)`), so a tiny header can merge into the first member. Closing
//!   lines (`}`, `end`) join the member before them;
//! * any other symbol larger than the budget is cut into consecutive line
//!   ranges at the shallowest syntax boundaries available (blank lines as a
//!   last resort, never inside a line), each keeping the symbol's name, kind
//!   and parent; long preambles are cut the same way;
//! * neighbours at the same nesting level with the same parent merge while
//!   one of them is smaller than [`ChunkOptions::min_tokens`] and the result
//!   fits the budget. The merged chunk takes the identity (kind, symbol) of
//!   its largest named part, or of the first part when none is named — so a
//!   short `use` preamble merged into the following function stays that
//!   function's chunk. Tiny unnamed code (preamble, a container header)
//!   merges forward into the symbol it introduces when it can.
//!
//! Parsing is bounded: sources over 2 MiB are not parsed, each parse has a
//! deadline (progress callback), the walk is iterative or depth-limited, and
//! parsers are cached per thread and language.

pub mod calls;
mod html;
mod lines;
mod markdown;
mod pdf;
mod spec;
mod treesitter;
mod window;

#[cfg(test)]
mod html_tests;
#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod tests;

use crate::lang::Language;

/// Version of the chunker's output: bump it when a change here cuts files differently, so that
/// existing collections are re-chunked by their next indexing run.
pub const CHUNKER_VERSION: u32 = 3;
use lines::Lines;

/// What a chunk contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Trait,
    Interface,
    Impl,
    Module,
    Type,
    Constant,
    Macro,
    /// A Markdown heading section (or a TOML table).
    Section,
    /// Top-level code between symbols: imports, statements, ...
    Preamble,
    /// A line-window fallback piece, or code without a symbol of its own.
    Block,
    /// A page of a PDF document, or a part of one (named `page N`).
    Page,
}

const ALL_KINDS: &[ChunkKind] = &[
    ChunkKind::Function,
    ChunkKind::Method,
    ChunkKind::Class,
    ChunkKind::Struct,
    ChunkKind::Enum,
    ChunkKind::Trait,
    ChunkKind::Interface,
    ChunkKind::Impl,
    ChunkKind::Module,
    ChunkKind::Type,
    ChunkKind::Constant,
    ChunkKind::Macro,
    ChunkKind::Section,
    ChunkKind::Preamble,
    ChunkKind::Block,
    ChunkKind::Page,
];

impl ChunkKind {
    /// Snake-case name, identical to the serde representation.
    pub fn name(self) -> &'static str {
        match self {
            ChunkKind::Function => "function",
            ChunkKind::Method => "method",
            ChunkKind::Class => "class",
            ChunkKind::Struct => "struct",
            ChunkKind::Enum => "enum",
            ChunkKind::Trait => "trait",
            ChunkKind::Interface => "interface",
            ChunkKind::Impl => "impl",
            ChunkKind::Module => "module",
            ChunkKind::Type => "type",
            ChunkKind::Constant => "constant",
            ChunkKind::Macro => "macro",
            ChunkKind::Section => "section",
            ChunkKind::Preamble => "preamble",
            ChunkKind::Block => "block",
            ChunkKind::Page => "page",
        }
    }

    /// Inverse of [`ChunkKind::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        ALL_KINDS
            .iter()
            .copied()
            .find(|kind| kind.name().eq_ignore_ascii_case(name))
    }

    /// Whether chunks of this kind are named after a symbol.
    fn is_symbol(self) -> bool {
        !matches!(self, ChunkKind::Preamble | ChunkKind::Block)
    }
}

impl std::fmt::Display for ChunkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Size knobs of the chunker.
#[derive(Debug, Clone)]
pub struct ChunkOptions {
    /// Upper bound for a chunk, in [`estimate_tokens`] tokens. Only exceeded by
    /// a single line that is longer on its own, or by fallback windows.
    pub max_tokens: usize,
    /// Chunks smaller than this merge with a neighbour when possible.
    pub min_tokens: usize,
    /// Lines per window in the line-window fallback.
    pub window_lines: usize,
    /// Lines shared by consecutive fallback windows.
    pub window_overlap: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            max_tokens: 256,
            min_tokens: 32,
            window_lines: 60,
            window_overlap: 8,
        }
    }
}

/// One chunk of a source file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RawChunk {
    /// Symbol name (`parse_table`, `Parser`), or the heading text of a
    /// Markdown section; `None` for preamble and fallback blocks.
    pub symbol: Option<String>,
    pub kind: ChunkKind,
    /// Enclosing context: a container header such as `impl Display for
    /// Parser` or `class Foo(Base)`, a Go receiver type, or the Markdown
    /// heading path (`Guide > Install`).
    pub parent: Option<String>,
    /// First line, 1-based, inclusive.
    pub start_line: u32,
    /// Last line, 1-based, inclusive.
    pub end_line: u32,
    /// Byte offset of the start of `start_line`.
    pub start_byte: usize,
    /// Byte offset just past the content of `end_line`, excluding its line
    /// terminator (`\n` or `\r\n`); `text == source[start_byte..end_byte]`.
    pub end_byte: usize,
    /// Exact source text of lines `start_line..=end_line`.
    /// HTML pages are the exception: their `text` is the section's extracted text, not markup.
    pub text: String,
}

/// Cheap estimate of the number of model tokens in `text`.
///
/// Heuristic, single pass, no allocation:
/// * whitespace and `_` are free (they mostly merge into neighbouring pieces);
/// * a run of ASCII letters costs one token per started 6 letters, and a new
///   run starts at every camelCase hump (`parseTable` = 2);
/// * a run of ASCII digits costs one token per started 3 digits;
/// * every other letter or digit (accented, CJK, ...) costs one token;
/// * every other character (punctuation, operators) costs one token, except
///   that runs of one repeated character (`====`, `////`) cost one token per
///   started 4 characters.
pub fn estimate_tokens(text: &str) -> usize {
    #[derive(PartialEq, Clone, Copy)]
    enum Run {
        None,
        Lower,
        Upper,
        Digit,
    }
    let mut tokens = 0usize;
    let mut run = Run::None;
    let mut run_len = 0usize;
    let mut punct: Option<char> = None;
    let mut punct_len = 0usize;
    let flush = |run: Run, len: usize| -> usize {
        match run {
            Run::None => 0,
            Run::Digit => len.div_ceil(3),
            Run::Lower | Run::Upper => len.div_ceil(6),
        }
    };
    for ch in text.chars() {
        let class = if ch.is_ascii_lowercase() {
            Run::Lower
        } else if ch.is_ascii_uppercase() {
            Run::Upper
        } else if ch.is_ascii_digit() {
            Run::Digit
        } else {
            Run::None
        };
        if class != Run::None {
            punct = None;
            let continues = match (run, class) {
                (Run::Digit, Run::Digit) => true,
                (Run::Lower, Run::Lower) => true,
                // `HTTPServer`, `Foo`: capitals start or continue a word.
                (Run::Upper, Run::Upper | Run::Lower) => true,
                _ => false,
            };
            if !continues {
                tokens += flush(run, run_len);
                run_len = 0;
            }
            run = class;
            run_len += 1;
            continue;
        }
        tokens += flush(run, run_len);
        run = Run::None;
        run_len = 0;
        if ch.is_whitespace() || ch == '_' {
            punct = None;
        } else if ch.is_alphanumeric() {
            punct = None;
            tokens += 1;
        } else if punct == Some(ch) {
            punct_len += 1;
            if punct_len % 4 == 1 {
                tokens += 1;
            }
        } else {
            punct = Some(ch);
            punct_len = 1;
            tokens += 1;
        }
    }
    tokens + flush(run, run_len)
}

/// Splits `source` into chunks. Never panics.
///
/// Uses tree-sitter for languages with a grammar (see
/// [`Language::has_grammar`]); falls back to line windows when there is no
/// grammar, when parsing fails or times out, or when most of the tree is
/// syntax errors. Empty or whitespace-only sources give no chunks.
pub fn chunk_source(language: Language, source: &str, opts: &ChunkOptions) -> Vec<RawChunk> {
    if source.trim().is_empty() {
        return Vec::new();
    }
    let opts = sanitize(opts);
    let lines = Lines::new(source);
    let pieces = match language {
        Language::Html => return html::chunk(&lines, &opts),
        Language::Markdown => markdown::chunk(&lines, &opts),
        Language::Toml => Some(window::toml_sections(&lines, &opts)),
        Language::Pdf => Some(pdf::chunk(&lines, &opts)),
        lang if lang.has_grammar() => treesitter::chunk(lang, &lines, &opts),
        _ => None,
    };
    match pieces {
        Some(pieces) => finalize(&lines, &opts, pieces),
        None => window::windows(&lines, &opts)
            .into_iter()
            .map(|piece| lines.to_chunk(piece))
            .collect(),
    }
}

/// Clamps nonsensical option values instead of failing on them.
fn sanitize(opts: &ChunkOptions) -> ChunkOptions {
    let max_tokens = opts.max_tokens.max(1);
    ChunkOptions {
        max_tokens,
        min_tokens: opts.min_tokens.min(max_tokens),
        window_lines: opts.window_lines.max(1),
        window_overlap: opts.window_overlap.min(opts.window_lines.max(1) - 1),
    }
}

/// A chunk before text extraction: 0-based inclusive line range.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Piece {
    pub(crate) kind: ChunkKind,
    pub(crate) symbol: Option<String>,
    pub(crate) parent: Option<String>,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Nesting level the piece was found at (one id per split container);
    /// only pieces of the same scope merge.
    pub(crate) scope: usize,
    /// Code that is not a symbol of its own (preamble, a container's header
    /// and leftover members). When tiny it merges forward, into the symbol it
    /// usually introduces, rather than backward.
    pub(crate) filler: bool,
}

impl Piece {
    pub(crate) fn new(
        kind: ChunkKind,
        symbol: Option<String>,
        parent: Option<String>,
        start: usize,
        end: usize,
    ) -> Self {
        Piece {
            kind,
            symbol,
            parent,
            start,
            end,
            scope: 0,
            filler: matches!(kind, ChunkKind::Preamble | ChunkKind::Block),
        }
    }

    pub(crate) fn in_scope(mut self, scope: usize) -> Self {
        self.scope = scope;
        self
    }
}

/// Trims blank edge lines, repairs ordering/overlap defensively, merges tiny
/// neighbours and extracts the text.
fn finalize(lines: &Lines<'_>, opts: &ChunkOptions, mut pieces: Vec<Piece>) -> Vec<RawChunk> {
    pieces.sort_by_key(|p| p.start);
    let mut clean: Vec<Piece> = Vec::with_capacity(pieces.len());
    for mut piece in pieces {
        if let Some(prev) = clean.last() {
            piece.start = piece.start.max(prev.end + 1);
        }
        piece.end = piece.end.min(lines.len().saturating_sub(1));
        while piece.start <= piece.end && lines.is_blank(piece.start) {
            piece.start += 1;
        }
        while piece.end > piece.start && lines.is_blank(piece.end) {
            piece.end -= 1;
        }
        if piece.start <= piece.end && !lines.is_blank(piece.start) {
            clean.push(piece);
        }
    }
    merge_tiny(lines, opts, clean)
        .into_iter()
        .map(|piece| lines.to_chunk(piece))
        .collect()
}

/// Merges neighbours of the same scope and parent while one of them is below
/// `min_tokens` and the union stays within `max_tokens`. Tiny filler pieces
/// prefer their next neighbour; everything else merges backward first.
fn merge_tiny(lines: &Lines<'_>, opts: &ChunkOptions, pieces: Vec<Piece>) -> Vec<Piece> {
    let tokens: Vec<usize> = pieces
        .iter()
        .map(|p| lines.tokens(p.start, p.end))
        .collect();
    let fits = |a: &Piece, ta: usize, b: &Piece, tb: usize| {
        (ta < opts.min_tokens || tb < opts.min_tokens)
            && a.parent == b.parent
            && a.scope == b.scope
            && ta + tb <= opts.max_tokens
    };
    // (piece, tokens, tokens of the part whose identity the piece carries)
    let mut out: Vec<(Piece, usize, usize)> = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.iter().enumerate() {
        let size = tokens[i];
        let merge_back = out
            .last()
            .is_some_and(|(prev, prev_size, _)| fits(prev, *prev_size, piece, size));
        let prefers_next = piece.filler
            && size < opts.min_tokens
            && pieces
                .get(i + 1)
                .is_some_and(|next| fits(piece, size, next, tokens[i + 1]));
        let prev_is_tiny = out
            .last()
            .is_some_and(|(_, prev_size, _)| *prev_size < opts.min_tokens);
        if merge_back && (!prefers_next || prev_is_tiny) {
            if let Some((prev, prev_size, prev_ident)) = out.last_mut() {
                let take_new =
                    piece.kind.is_symbol() && (!prev.kind.is_symbol() || size > *prev_ident);
                if take_new {
                    prev.kind = piece.kind;
                    prev.symbol.clone_from(&piece.symbol);
                    *prev_ident = size;
                }
                prev.filler &= piece.filler;
                prev.end = piece.end;
                *prev_size += size;
                continue;
            }
        }
        out.push((piece.clone(), size, size));
    }
    out.into_iter().map(|(piece, _, _)| piece).collect()
}

/// Packs lines `lo..=hi` into consecutive ranges of at most `max_tokens`
/// (a single longer line stays whole). `rank(line)` scores starting a new
/// range at `line`: lower is better; ties go to the cut that best balances the
/// range sizes.
pub(crate) fn split_lines(
    lines: &Lines<'_>,
    lo: usize,
    hi: usize,
    max_tokens: usize,
    rank: &dyn Fn(usize) -> u32,
) -> Vec<(usize, usize)> {
    split_lines_keeping(lines, lo, hi, max_tokens, rank, lo)
}

/// [`split_lines`], with the first range reaching at least line `keep_through`: a symbol's
/// documentation stays with its signature even when the two exceed the budget together.
pub(crate) fn split_lines_keeping(
    lines: &Lines<'_>,
    lo: usize,
    hi: usize,
    max_tokens: usize,
    rank: &dyn Fn(usize) -> u32,
    keep_through: usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = lo;
    while start <= hi {
        let remaining = lines.tokens(start, hi);
        if remaining <= max_tokens {
            out.push((start, hi));
            break;
        }
        // Furthest end that keeps the range within budget (at least `start`).
        let mut end = start;
        while end < hi && lines.tokens(start, end + 1) <= max_tokens {
            end += 1;
        }
        if start == lo && end < keep_through.min(hi) {
            end = keep_through.min(hi);
            if end == hi {
                out.push((start, hi));
                break;
            }
            // Cut right after the kept lines.
            out.push((start, end));
            start = end + 1;
            continue;
        }
        let pieces_left = remaining.div_ceil(max_tokens).max(2);
        let target = remaining / pieces_left;
        let floor = target / 2;
        let mut best: Option<(usize, u32, usize)> = None; // (cut, rank, distance)
        let first_cut = if start == lo {
            (keep_through + 1).max(start + 1)
        } else {
            start + 1
        };
        for cut in first_cut..=(end + 1).min(hi) {
            let size = lines.tokens(start, cut - 1);
            if size < floor && cut <= end {
                continue;
            }
            let score = rank(cut);
            let distance = size.abs_diff(target);
            let better = match best {
                None => true,
                Some((_, best_rank, best_distance)) => {
                    score < best_rank || (score == best_rank && distance < best_distance)
                }
            };
            if better {
                best = Some((cut, score, distance));
            }
        }
        let cut = best
            .map_or(end + 1, |(cut, _, _)| cut)
            .clamp(first_cut.min(hi + 1), hi + 1);
        out.push((start, cut - 1));
        start = cut;
    }
    out
}
