//! Tree-sitter parsing (thread-local parsers, parse deadline) and the generic,
//! language-independent walk that turns a syntax tree into pieces.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use tree_sitter::{Node, ParseOptions, ParseState, Parser, Tree};

use super::lines::Lines;
use super::spec::{self, Role, Symbol};
use super::{split_lines_keeping, ChunkKind, ChunkOptions, Piece};
use crate::lang::Language;

/// Sources larger than this are not parsed (they are almost always generated
/// or minified); they get line windows instead.
const MAX_PARSE_BYTES: usize = 2 * 1024 * 1024;

/// Containers nested deeper than this are chunked as plain symbols instead of
/// being split into their members (bounds the walk's recursion).
const MAX_NESTING: usize = 12;

/// Transparent groups (`#ifdef` in `#ifdef` ...) are expanded this deep.
const MAX_GROUP_DEPTH: usize = 24;

/// Container headers used as `parent` are cut to this many characters.
const MAX_HEADER_CHARS: usize = 120;

/// Files whose syntax tree is mostly errors get line windows.
const MAX_ERROR_FRACTION: f64 = 0.5;

thread_local! {
    static PARSERS: RefCell<Vec<(Language, Parser)>> = const { RefCell::new(Vec::new()) };
}

fn grammar(lang: Language) -> Option<tree_sitter::Language> {
    let grammar = match lang {
        Language::Rust => tree_sitter_rust::LANGUAGE,
        Language::Python => tree_sitter_python::LANGUAGE,
        Language::JavaScript => tree_sitter_javascript::LANGUAGE,
        Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT,
        Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX,
        Language::Go => tree_sitter_go::LANGUAGE,
        Language::Java => tree_sitter_java::LANGUAGE,
        Language::C => tree_sitter_c::LANGUAGE,
        Language::Cpp => tree_sitter_cpp::LANGUAGE,
        Language::Ruby => tree_sitter_ruby::LANGUAGE,
        Language::Elixir => tree_sitter_elixir::LANGUAGE,
        Language::Markdown => tree_sitter_md::LANGUAGE,
        _ => return None,
    };
    Some(grammar.into())
}

/// Time budget for one parse: generous for real files, but bounded so that
/// pathological input cannot stall an indexing worker.
fn parse_budget(len: usize) -> Duration {
    let kib = u64::try_from(len / 1024).unwrap_or(u64::MAX);
    Duration::from_millis(1_000u64.saturating_add(kib.saturating_mul(4)).min(10_000))
}

/// Parses `src` with this thread's parser for `lang`. `None` when the
/// language has no grammar, the source is too large, or the parse timed out.
pub(crate) fn parse(lang: Language, src: &str) -> Option<Tree> {
    if src.len() > MAX_PARSE_BYTES {
        return None;
    }
    let run = |parser: &mut Parser| -> Option<Tree> {
        let deadline = Instant::now() + parse_budget(src.len());
        let mut cancel = |_: &ParseState| Instant::now() > deadline;
        let bytes = src.as_bytes();
        let tree = parser.parse_with_options(
            &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
            None,
            Some(ParseOptions::new().progress_callback(&mut cancel)),
        );
        if tree.is_none() {
            // A cancelled parse would otherwise resume on the next call.
            parser.reset();
        }
        tree
    };
    let cached = PARSERS.try_with(|cell| {
        let mut parsers = cell.try_borrow_mut().ok()?;
        let index = match parsers.iter().position(|(l, _)| *l == lang) {
            Some(index) => index,
            None => {
                let mut parser = Parser::new();
                parser.set_language(&grammar(lang)?).ok()?;
                parsers.push((lang, parser));
                parsers.len() - 1
            }
        };
        Some(run(&mut parsers[index].1))
    });
    match cached {
        Ok(Some(tree)) => tree,
        // Thread-local unavailable (thread teardown) or re-entered: use a
        // throwaway parser.
        _ => {
            let mut parser = Parser::new();
            parser.set_language(&grammar(lang)?).ok()?;
            run(&mut parser)
        }
    }
}

/// Whether syntax errors cover most of the source.
fn mostly_errors(root: Node<'_>, len: usize) -> bool {
    if root.is_error() {
        return true;
    }
    if !root.has_error() || len == 0 {
        return false;
    }
    let mut error_bytes = 0usize;
    let mut stack = vec![root];
    let mut cursor = root.walk();
    while let Some(node) = stack.pop() {
        for child in node.children(&mut cursor) {
            if child.is_error() {
                error_bytes += child.end_byte().saturating_sub(child.start_byte());
            } else if child.has_error() {
                stack.push(child);
            }
        }
    }
    error_bytes as f64 > len as f64 * MAX_ERROR_FRACTION
}

/// First and last line (0-based, inclusive) of `node`. A node that ends at
/// column 0 (it swallowed the line break) ends on the previous line.
pub(crate) fn rows(node: Node<'_>, lines: &Lines<'_>) -> (usize, usize) {
    let start = node.start_position().row;
    let end_pos = node.end_position();
    let end = if end_pos.column == 0 && end_pos.row > start {
        end_pos.row - 1
    } else {
        end_pos.row
    };
    let last = lines.len().saturating_sub(1);
    (start.min(last), end.max(start).min(last))
}

/// For every line, the tree depth of the shallowest named node that starts
/// the line (first non-blank character); `u16::MAX` where none does.
/// Iterative, so arbitrarily deep trees are fine.
pub(crate) fn line_depths(root: Node<'_>, lines: &Lines<'_>) -> Vec<u16> {
    let mut depths = vec![u16::MAX; lines.len()];
    let mut cursor = root.walk();
    let mut depth: u16 = 0;
    loop {
        let node = cursor.node();
        if node.is_named() {
            let pos = node.start_position();
            if let Some(slot) = depths.get_mut(pos.row) {
                if *slot > depth && lines.indent(pos.row) == pos.column {
                    *slot = depth;
                }
            }
        }
        if cursor.goto_first_child() {
            depth = depth.saturating_add(1);
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return depths;
            }
            depth = depth.saturating_sub(1);
        }
    }
}

/// Cut preference from [`line_depths`]: shallow syntax boundaries first, a
/// preceding blank line breaking ties.
pub(crate) fn depth_rank(depths: &[u16], lines: &Lines<'_>, line: usize) -> u32 {
    let depth = u32::from(depths.get(line).copied().unwrap_or(u16::MAX));
    let after_blank = line == 0 || lines.is_blank(line - 1) || lines.is_blank(line);
    depth * 2 + u32::from(!after_blank)
}

/// Chunks a source with a grammar. `None` means "use line windows".
pub(crate) fn chunk(lang: Language, lines: &Lines<'_>, opts: &ChunkOptions) -> Option<Vec<Piece>> {
    let src = lines.src();
    let tree = parse(lang, src)?;
    let root = tree.root_node();
    if mostly_errors(root, src.len()) {
        return None;
    }
    let mut walker = Walker {
        lang,
        src,
        lines,
        opts,
        root,
        depths: None,
        out: Vec::new(),
        scopes: 0,
    };
    let items = walker.flatten(vec![root], 0);
    let scope = Scope {
        parent: None,
        container: None,
        leftover: (ChunkKind::Preamble, None),
        id: 0,
    };
    walker.scope(&items, 0, lines.len() - 1, 0, &scope, 0);
    Some(walker.out)
}

/// Where the walk currently is.
struct Scope {
    /// `parent` of symbols found in this scope (the container header).
    parent: Option<String>,
    /// Kind of the enclosing container (turns functions into methods).
    container: Option<ChunkKind>,
    /// Kind and symbol of code in this scope that is not a symbol: preamble
    /// at file level, the container itself inside a container.
    leftover: (ChunkKind, Option<String>),
    /// Scope id stamped on the pieces (see [`Piece::scope`]).
    id: usize,
}

struct Walker<'a, 't> {
    lang: Language,
    src: &'a str,
    lines: &'a Lines<'a>,
    opts: &'a ChunkOptions,
    root: Node<'t>,
    depths: Option<Vec<u16>>,
    out: Vec<Piece>,
    /// Number of scope ids handed out.
    scopes: usize,
}

impl<'t> Walker<'_, 't> {
    /// The named children of `parents`, with transparent groups expanded.
    fn flatten(&self, parents: Vec<Node<'t>>, depth: usize) -> Vec<(Node<'t>, Role<'t>)> {
        let mut items = Vec::new();
        let mut cursor = self.root.walk();
        for parent in parents {
            let children: Vec<Node<'t>> = parent.named_children(&mut cursor).collect();
            self.expand(children, depth, &mut items);
        }
        items
    }

    fn expand(&self, nodes: Vec<Node<'t>>, depth: usize, items: &mut Vec<(Node<'t>, Role<'t>)>) {
        for node in nodes {
            match spec::classify(self.lang, node, self.src) {
                Role::Group(children) if depth < MAX_GROUP_DEPTH => {
                    // The group's own lines (`#ifdef X`, `#endif`) stay
                    // leftover code; its children join this scope.
                    self.expand(children, depth + 1, items);
                }
                Role::Group(_) => items.push((node, Role::Other)),
                role => items.push((node, role)),
            }
        }
    }

    /// Emits pieces for lines `lo..=hi` of a scope whose members are `items`.
    /// Symbols may not start before `min_start` (a container's first line
    /// always stays with its header).
    fn scope(
        &mut self,
        items: &[(Node<'t>, Role<'t>)],
        lo: usize,
        hi: usize,
        min_start: usize,
        scope: &Scope,
        nesting: usize,
    ) {
        let first_piece = self.out.len();
        let mut cursor = lo;
        // Start line of the run of trivia directly above the current item.
        let mut trivia: Option<usize> = None;
        let mut prev_end: Option<usize> = None;
        for (node, role) in items {
            let (start, end) = rows(*node, self.lines);
            match role {
                Role::Trivia => {
                    let continues = trivia.is_some() && prev_end.is_some_and(|p| start <= p + 1);
                    if !continues {
                        // A comment sharing a line with the previous item
                        // trails it; it does not document the next one.
                        let own_line = prev_end.is_none_or(|p| start > p);
                        trivia = own_line.then_some(start);
                    }
                }
                Role::Symbol(symbol) => {
                    let mut first = start;
                    if let (Some(t), Some(p)) = (trivia, prev_end) {
                        if start <= p + 1 {
                            first = t;
                        }
                    }
                    first = first.max(cursor).max(min_start);
                    trivia = None;
                    if first <= end && end <= hi {
                        if first > cursor {
                            self.leftover(cursor, first - 1, scope, first_piece);
                        }
                        self.symbol(symbol, first, end, scope, nesting);
                        cursor = end + 1;
                    }
                }
                Role::Other | Role::Group(_) => trivia = None,
            }
            prev_end = Some(prev_end.map_or(end, |p| p.max(end)));
        }
        if cursor <= hi {
            self.leftover(cursor, hi, scope, first_piece);
        }
    }

    /// Code of a scope that belongs to no symbol.
    fn leftover(&mut self, mut lo: usize, hi: usize, scope: &Scope, first_piece: usize) {
        // Closing lines (`}`, `end`, `});`) right after a piece belong to it.
        while lo <= hi && (self.lines.is_blank(lo) || is_closer(self.lines.text(lo))) {
            if !self.lines.is_blank(lo) && !self.extend_last(lo, first_piece) {
                break;
            }
            lo += 1;
        }
        if lo > hi || self.lines.tokens(lo, hi) == 0 {
            return;
        }
        let (kind, symbol) = scope.leftover.clone();
        let first = self.out.len();
        self.push_split(kind, symbol, scope.parent.clone(), lo, hi, lo, scope.id);
        for piece in &mut self.out[first..] {
            piece.filler = true;
        }
    }

    /// Extends the last piece of the current scope down to `line` if the
    /// budget allows.
    fn extend_last(&mut self, line: usize, first_piece: usize) -> bool {
        if self.out.len() <= first_piece {
            return false;
        }
        let max = self.opts.max_tokens;
        let lines = self.lines;
        match self.out.last_mut() {
            Some(last) if last.end < line && lines.tokens(last.start, line) <= max => {
                last.end = line;
                true
            }
            _ => false,
        }
    }

    fn symbol(&mut self, symbol: &Symbol<'t>, lo: usize, hi: usize, scope: &Scope, nesting: usize) {
        let kind = spec::refine_kind(self.lang, symbol.kind, scope.container);
        let parent = symbol.parent.clone().or_else(|| scope.parent.clone());
        if self.lines.tokens(lo, hi) <= self.opts.max_tokens {
            self.out
                .push(Piece::new(kind, symbol.name.clone(), parent, lo, hi).in_scope(scope.id));
            return;
        }
        match symbol.body {
            Some(body) if nesting < MAX_NESTING => {
                let items = self.flatten(vec![body], 0);
                self.scopes += 1;
                let inner = Scope {
                    parent: Some(header(symbol.decl, body, self.src)),
                    container: Some(kind),
                    leftover: (kind, symbol.name.clone()),
                    id: self.scopes,
                };
                self.scope(&items, lo, hi, lo + 1, &inner, nesting + 1);
            }
            _ => {
                // The first piece keeps the documentation together with the declaration line.
                let keep_through = rows(symbol.decl, self.lines).0.clamp(lo, hi);
                self.push_split(
                    kind,
                    symbol.name.clone(),
                    parent,
                    lo,
                    hi,
                    keep_through,
                    scope.id,
                );
            }
        }
    }

    /// Pushes `lo..=hi` as one piece, or as several within the token budget, the first reaching
    /// at least line `keep_through`.
    #[allow(clippy::too_many_arguments)]
    fn push_split(
        &mut self,
        kind: ChunkKind,
        symbol: Option<String>,
        parent: Option<String>,
        lo: usize,
        hi: usize,
        keep_through: usize,
        scope: usize,
    ) {
        if self.lines.tokens(lo, hi) <= self.opts.max_tokens {
            self.out
                .push(Piece::new(kind, symbol, parent, lo, hi).in_scope(scope));
            return;
        }
        let lines = self.lines;
        let depths = self
            .depths
            .get_or_insert_with(|| line_depths(self.root, lines));
        let rank = |line: usize| depth_rank(depths, lines, line);
        for (start, end) in
            split_lines_keeping(lines, lo, hi, self.opts.max_tokens, &rank, keep_through)
        {
            self.out
                .push(Piece::new(kind, symbol.clone(), parent.clone(), start, end).in_scope(scope));
        }
    }
}

/// A line that only closes something: `}`, `});`, `end`, ...
fn is_closer(line: &str) -> bool {
    let trimmed = line.trim();
    let rest = trimmed.strip_prefix("end").unwrap_or(trimmed);
    !trimmed.is_empty()
        && rest
            .chars()
            .all(|c| matches!(c, '}' | ')' | ']' | ';' | ',' | '>'))
}

/// The header of a container: its text up to the body, without leading
/// annotations or decorators, whitespace collapsed, trailing `{` / `:` /
/// `do` removed, at most [`MAX_HEADER_CHARS`] characters.
fn header(decl: Node<'_>, body: Node<'_>, src: &str) -> String {
    let end = body.start_byte().max(decl.start_byte());
    let raw = src.get(decl.start_byte()..end).unwrap_or("");
    let mut text = strip_annotations(raw).trim();
    loop {
        let trimmed = text
            .trim_end_matches(['{', ':', ','])
            .trim_end()
            .trim_end_matches(" do")
            .trim_end();
        if trimmed.len() == text.len() {
            break;
        }
        text = trimmed;
    }
    if text.is_empty() {
        // Body-first or anonymous containers: fall back to the first line.
        text = raw.lines().next().unwrap_or("").trim();
    }
    let collapsed = spec::collapse(text);
    match collapsed.char_indices().nth(MAX_HEADER_CHARS) {
        Some((cut, _)) => format!("{}…", &collapsed[..cut]),
        None => collapsed,
    }
}

/// Drops leading `@Annotation(...)` / `@decorator` prefixes.
fn strip_annotations(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        let Some(rest) = text.strip_prefix('@') else {
            return text;
        };
        if rest.starts_with("interface") {
            // Java `@interface Name`: a declaration, not an annotation.
            return text;
        }
        let name_len = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '$')))
            .unwrap_or(rest.len());
        let mut after = &rest[name_len..];
        if after.starts_with('(') {
            let mut depth = 0usize;
            let mut close = None;
            for (i, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            close = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            match close {
                Some(i) => after = &after[i + 1..],
                None => return text,
            }
        }
        if name_len == 0 {
            return text;
        }
        text = after;
    }
}
