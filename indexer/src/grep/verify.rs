//! Verification on stored content: the lines a compiled pattern matches, with their submatches,
//! and the context lines around them.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Serialize;

/// One line of a result: a matching line (with its submatches) or a context line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrepLine {
    /// 1-based.
    pub line_number: u64,
    /// Byte offset of the line's start in the file.
    pub byte_offset: u64,
    /// The line, without its line break.
    pub text: String,
    /// Byte ranges of the matches in `text` (empty for a context line).
    pub submatches: Vec<(usize, usize)>,
    pub context: bool,
}

impl GrepLine {
    /// The 1-based column of the first match (ripgrep's `--column`), in bytes.
    pub fn column(&self) -> usize {
        self.submatches.first().map_or(1, |(start, _)| start + 1)
    }
}

/// Matching lines by their 0-based line index: (line start, line end, submatches).
pub(super) type LineHits = BTreeMap<usize, (usize, usize, Vec<(usize, usize)>)>;

/// The lines of `content` that `regex` matches (the regex never matches a line break), with
/// at most `max_lines` lines: every match of each line, or with `first_only` the first one (the
/// search then goes on from the next line, as ripgrep does when it prints no match highlights).
pub(super) fn matching_lines(
    content: &str,
    regex: &Regex,
    max_lines: usize,
    first_only: bool,
) -> LineHits {
    let mut hits = LineHits::new();
    for_each_match(content, regex, first_only, |found| {
        if !hits.contains_key(&found.line_index) && hits.len() == max_lines {
            return false;
        }
        let entry = hits
            .entry(found.line_index)
            .or_insert_with(|| (found.line_start, found.line_end, Vec::new()));
        entry.2.push(found.submatch);
        true
    });
    hits
}

/// What [`matching_lines`] would find, counted without keeping the lines: the number of matching
/// lines (at most `max_lines`) and of their submatches.
pub(super) fn count_matching_lines(
    content: &str,
    regex: &Regex,
    max_lines: usize,
    first_only: bool,
) -> (usize, usize) {
    let (mut lines, mut submatches) = (0usize, 0usize);
    let mut last_line = None;
    for_each_match(content, regex, first_only, |found| {
        if last_line != Some(found.line_index) {
            if lines == max_lines {
                return false;
            }
            lines += 1;
            last_line = Some(found.line_index);
        }
        submatches += 1;
        true
    });
    (lines, submatches)
}

/// One match, with its line.
struct Found {
    /// 0-based.
    line_index: usize,
    line_start: usize,
    line_end: usize,
    /// The match's byte range in its line.
    submatch: (usize, usize),
}

/// Calls `each` with the matches of `regex` in `content`, in order (with `first_only` the first
/// of each line), until it answers false.
fn for_each_match(
    content: &str,
    regex: &Regex,
    first_only: bool,
    mut each: impl FnMut(Found) -> bool,
) {
    let bytes = content.as_bytes();
    let mut line_index = 0usize;
    let mut line_start = 0usize;
    let mut line_end = next_line_end(content, 0);
    let mut from = 0;
    while from <= bytes.len() {
        let Some(found) = regex.find_at(content, from) else {
            break;
        };
        let start = found.start();
        // The next search starts after this match (after an empty one, one character on), or
        // on the next line when only the first match of a line is wanted.
        from = if found.end() > found.start() {
            found.end()
        } else {
            content[found.end()..]
                .chars()
                .next()
                .map_or(bytes.len() + 1, |c| found.end() + c.len_utf8())
        };
        if start == bytes.len() && (bytes.is_empty() || bytes[bytes.len() - 1] == b'\n') {
            // The empty "line" after a final line break is no line.
            break;
        }
        while start > line_end {
            line_start = line_end + 1;
            line_end = next_line_end(content, line_start);
            line_index += 1;
        }
        let more = each(Found {
            line_index,
            line_start,
            line_end,
            submatch: (start - line_start, found.end() - line_start),
        });
        if !more {
            break;
        }
        if first_only {
            from = from.max(line_end + 1);
        }
    }
}

fn next_line_end(content: &str, from: usize) -> usize {
    memchr::memchr(b'\n', &content.as_bytes()[from..]).map_or(content.len(), |at| from + at)
}

/// The lines of `hits` with `before`/`after` lines of context around each, in file order.
pub(super) fn with_context(
    content: &str,
    hits: &LineHits,
    before: usize,
    after: usize,
) -> Vec<GrepLine> {
    let line = |start: usize, end: usize| content[start..end].to_string();
    if before == 0 && after == 0 {
        return hits
            .iter()
            .map(|(&index, (start, end, submatches))| GrepLine {
                line_number: index as u64 + 1,
                byte_offset: *start as u64,
                text: line(*start, *end),
                submatches: submatches.clone(),
                context: false,
            })
            .collect();
    }
    let mut wanted: BTreeMap<usize, bool> = BTreeMap::new();
    for &index in hits.keys() {
        for context_index in index.saturating_sub(before)..=index + after {
            wanted.entry(context_index).or_insert(true);
        }
        wanted.insert(index, false);
    }
    let mut lines = Vec::with_capacity(wanted.len());
    let mut index = 0usize;
    let mut start = 0usize;
    for (&wanted_index, &is_context) in &wanted {
        while index < wanted_index {
            match content[start..].find('\n') {
                Some(at) => start += at + 1,
                None => return lines,
            }
            index += 1;
        }
        if start == content.len() {
            // Past the last line.
            break;
        }
        let end = next_line_end(content, start);
        lines.push(GrepLine {
            line_number: wanted_index as u64 + 1,
            byte_offset: start as u64,
            text: line(start, end),
            submatches: if is_context {
                Vec::new()
            } else {
                hits.get(&wanted_index)
                    .map(|hit| hit.2.clone())
                    .unwrap_or_default()
            },
            context: is_context,
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_submatches() {
        let regex = Regex::new("o+").expect("valid");
        let hits = matching_lines("foo\nbar\nboo boo\n", &regex, 100, false);
        let lines: Vec<_> = hits.iter().map(|(i, hit)| (*i, hit.2.clone())).collect();
        assert_eq!(lines, vec![(0, vec![(1, 3)]), (2, vec![(1, 3), (5, 7)])]);
    }

    #[test]
    fn counting_agrees_with_the_lines_found() {
        let content = "foo foo\nbar\n\nboo\nfoo\nxfoo foofoo\n";
        for pattern in ["o+", "foo", "(?m)^", "(?m)$", "x?", "b", "zzz", r"\bfoo\b"] {
            let regex = Regex::new(pattern).expect("valid");
            for first_only in [false, true] {
                for max_lines in [0, 1, 2, 3, 100] {
                    let hits = matching_lines(content, &regex, max_lines, first_only);
                    let submatches = hits.values().map(|hit| hit.2.len()).sum();
                    assert_eq!(
                        count_matching_lines(content, &regex, max_lines, first_only),
                        (hits.len(), submatches),
                        "{pattern} first_only={first_only} max={max_lines}"
                    );
                    assert!(hits.len() <= max_lines);
                }
            }
        }
    }

    #[test]
    fn empty_matches_count_every_line_but_not_past_the_end() {
        let regex = Regex::new("(?m)^").expect("valid");
        assert_eq!(matching_lines("a\n\nb\n", &regex, 100, false).len(), 3);
        assert_eq!(matching_lines("a\nb", &regex, 100, false).len(), 2);
        assert_eq!(matching_lines("", &regex, 100, false).len(), 0);
    }

    #[test]
    fn context_lines_surround_matches() {
        let content = "1\n2\n3 x\n4\n5\n6\n7 x\n";
        let regex = Regex::new("x").expect("valid");
        let hits = matching_lines(content, &regex, 100, false);
        let lines = with_context(content, &hits, 1, 1);
        let numbers: Vec<(u64, bool)> = lines.iter().map(|l| (l.line_number, l.context)).collect();
        assert_eq!(
            numbers,
            vec![(2, true), (3, false), (4, true), (6, true), (7, false)]
        );
    }

    #[test]
    fn a_one_megabyte_line_works() {
        let mut content = "a".repeat(1 << 20);
        content.push_str("needle");
        content.push('\n');
        let regex = Regex::new("needle").expect("valid");
        let hits = matching_lines(&content, &regex, 10, false);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[&0].2, vec![(1 << 20, (1 << 20) + 6)]);
    }
}
