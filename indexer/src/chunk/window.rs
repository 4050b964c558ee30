//! Grammar-free chunking: overlapping line windows (the fallback) and TOML
//! tables.

use super::lines::Lines;
use super::{split_lines, ChunkKind, ChunkOptions, Piece};

/// Overlapping windows of `window_lines` lines, preferring to end a window at
/// a blank line in its last quarter. Blank edge lines are trimmed.
pub(crate) fn windows(lines: &Lines<'_>, opts: &ChunkOptions) -> Vec<Piece> {
    let n = lines.len();
    let size = opts.window_lines.max(1);
    let overlap = opts.window_overlap.min(size - 1);
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        while start < n && lines.is_blank(start) {
            start += 1;
        }
        if start >= n {
            break;
        }
        let mut end = (start + size - 1).min(n - 1);
        if end < n - 1 {
            let earliest = start + size - size / 4;
            if let Some(blank) = (earliest.max(start + 1)..=end)
                .rev()
                .find(|&line| lines.is_blank(line))
            {
                end = blank;
            }
        }
        let next = end + 1;
        while end > start && lines.is_blank(end) {
            end -= 1;
        }
        out.push(Piece::new(ChunkKind::Block, None, None, start, end));
        if next >= n {
            break;
        }
        // Step back for the overlap, but always make progress and never
        // start inside the window's own first line again.
        start = next.saturating_sub(overlap).max(start + 1);
    }
    out
}

/// Rank for cutting grammar-free text: after a blank line first, then lines
/// with less indentation.
pub(crate) fn text_rank<'l>(lines: &'l Lines<'_>) -> impl Fn(usize) -> u32 + 'l {
    move |line| {
        let after_blank = line == 0 || lines.is_blank(line - 1) || lines.is_blank(line);
        let indent = u32::try_from(lines.indent(line).min(999)).unwrap_or(999);
        if after_blank {
            indent
        } else {
            1000 + indent
        }
    }
}

/// Splits a TOML document at its `[table]` / `[[array]]` headers (with the
/// comment lines directly above them). Each table is a [`ChunkKind::Section`]
/// named after its header; text before the first header is a preamble.
pub(crate) fn toml_sections(lines: &Lines<'_>, opts: &ChunkOptions) -> Vec<Piece> {
    let n = lines.len();
    let mut headers: Vec<(usize, String)> = Vec::new();
    let mut in_string: Option<&'static str> = None;
    let mut depth = 0i64;
    for line in 0..n {
        let text = lines.text(line);
        if in_string.is_none() && depth == 0 {
            if let Some(name) = toml_header(text) {
                headers.push((line, name));
                continue;
            }
        }
        scan_toml_line(text, &mut in_string, &mut depth);
    }

    let mut out = Vec::new();
    let rank = text_rank(lines);
    let mut push = |kind: ChunkKind, symbol: Option<String>, lo: usize, hi: usize| {
        for (start, end) in split_lines(lines, lo, hi, opts.max_tokens, &rank) {
            out.push(Piece::new(kind, symbol.clone(), None, start, end));
        }
    };
    // Attach comment lines directly above a header to its table.
    let starts: Vec<usize> = headers
        .iter()
        .map(|&(line, _)| {
            let mut start = line;
            while start > 0 && lines.text(start - 1).trim_start().starts_with('#') {
                start -= 1;
            }
            start
        })
        .collect();
    let first = starts.first().copied().unwrap_or(n);
    if first > 0 {
        push(ChunkKind::Preamble, None, 0, first - 1);
    }
    for (i, (_, name)) in headers.into_iter().enumerate() {
        let lo = starts[i];
        let hi = starts.get(i + 1).map_or(n - 1, |&next| next - 1);
        if lo <= hi {
            push(ChunkKind::Section, Some(name), lo, hi);
        }
    }
    out
}

/// The table name of a TOML header line, e.g. `dependencies` for
/// `[dependencies]` or `bin` for `[[bin]]`.
fn toml_header(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let (inner, rest) = if let Some(body) = trimmed.strip_prefix("[[") {
        let close = body.find("]]")?;
        (&body[..close], &body[close + 2..])
    } else {
        let body = trimmed.strip_prefix('[')?;
        let close = body.find(']')?;
        (&body[..close], &body[close + 1..])
    };
    let rest = rest.trim_start();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    let name = inner.trim();
    let valid = !name.is_empty()
        && name.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' ' | '*' | '/')
        });
    valid.then(|| name.to_owned())
}

/// Tracks multi-line strings and open arrays so that lines inside them are
/// not mistaken for headers. Quoted strings and comments are skipped.
fn scan_toml_line(text: &str, in_string: &mut Option<&'static str>, depth: &mut i64) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(delim) = *in_string {
            match text.get(i..).and_then(|rest| rest.find(delim)) {
                Some(pos) => {
                    i += pos + delim.len();
                    *in_string = None;
                    continue;
                }
                None => return,
            }
        }
        let rest = &bytes[i..];
        if rest.starts_with(b"\"\"\"") {
            *in_string = Some("\"\"\"");
            i += 3;
            continue;
        }
        if rest.starts_with(b"'''") {
            *in_string = Some("'''");
            i += 3;
            continue;
        }
        match bytes[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if quote == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'#' => return,
            b'[' => *depth += 1,
            b']' => *depth = (*depth - 1).max(0),
            _ => {}
        }
        i += 1;
    }
}
