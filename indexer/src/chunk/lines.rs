//! Line table of a source file: line offsets, blank lines and per-line token
//! estimates (prefix sums, so any line range is costed in O(1)).

use super::{estimate_tokens, Piece, RawChunk};

pub(crate) struct Lines<'a> {
    src: &'a str,
    /// Byte offset of the first byte of every line.
    starts: Vec<usize>,
    /// `prefix[i]` = estimated tokens of lines `0..i`.
    prefix: Vec<usize>,
    blank: Vec<bool>,
}

impl<'a> Lines<'a> {
    /// Lines are separated by `\n`; a trailing `\n` does not open an extra
    /// (empty) line. `\r` before `\n` belongs to the terminator.
    pub(crate) fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            src.bytes()
                .enumerate()
                .filter(|&(i, b)| b == b'\n' && i + 1 < src.len())
                .map(|(i, _)| i + 1),
        );
        let mut lines = Lines {
            src,
            starts,
            prefix: Vec::new(),
            blank: Vec::new(),
        };
        let mut prefix = Vec::with_capacity(lines.len() + 1);
        let mut blank = Vec::with_capacity(lines.len());
        prefix.push(0);
        let mut total = 0;
        for i in 0..lines.len() {
            let text = lines.text(i);
            total += estimate_tokens(text);
            prefix.push(total);
            blank.push(text.trim().is_empty());
        }
        lines.prefix = prefix;
        lines.blank = blank;
        lines
    }

    pub(crate) fn src(&self) -> &'a str {
        self.src
    }

    /// Number of lines (at least 1, even for an empty source).
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    pub(crate) fn start_byte(&self, line: usize) -> usize {
        self.starts.get(line).copied().unwrap_or(self.src.len())
    }

    /// 0-based line holding byte `offset` (the last line for offsets past the
    /// end).
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    /// Byte offset just past the content of `line` (before `\r\n` / `\n`).
    pub(crate) fn content_end(&self, line: usize) -> usize {
        let next = self.starts.get(line + 1).copied().unwrap_or(self.src.len());
        let bytes = self.src.as_bytes();
        let mut end = next;
        if end > 0 && bytes.get(end - 1) == Some(&b'\n') {
            end -= 1;
            if end > 0 && bytes.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
        }
        end.max(self.start_byte(line))
    }

    /// Content of `line` without its terminator.
    pub(crate) fn text(&self, line: usize) -> &'a str {
        self.src
            .get(self.start_byte(line)..self.content_end(line))
            .unwrap_or("")
    }

    pub(crate) fn is_blank(&self, line: usize) -> bool {
        self.blank.get(line).copied().unwrap_or(true)
    }

    /// Estimated tokens of lines `lo..=hi` (0 for an empty range).
    pub(crate) fn tokens(&self, lo: usize, hi: usize) -> usize {
        let hi = (hi + 1).min(self.len());
        if lo >= hi {
            return 0;
        }
        self.prefix[hi] - self.prefix[lo]
    }

    /// Byte column of the first non-whitespace character of `line`.
    pub(crate) fn indent(&self, line: usize) -> usize {
        let text = self.text(line);
        text.len() - text.trim_start().len()
    }

    pub(crate) fn to_chunk(&self, piece: Piece) -> RawChunk {
        let start_byte = self.start_byte(piece.start);
        let end_byte = self.content_end(piece.end).max(start_byte);
        RawChunk {
            symbol: piece.symbol,
            kind: piece.kind,
            parent: piece.parent,
            start_line: to_u32(piece.start + 1),
            end_line: to_u32(piece.end + 1),
            start_byte,
            end_byte,
            text: self
                .src
                .get(start_byte..end_byte)
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
