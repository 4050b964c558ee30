//! Snippets: the few lines of a chunk that best match the query, with the matched ranges.

use serde::Serialize;

use crate::tokenizer::{for_each_code_token, TokenMode};

/// Lines a snippet shows at most.
pub const SNIPPET_LINES: usize = 6;

/// Part of a chunk shown for a hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippet {
    pub text: String,
    /// 1-based line of the snippet's first line in the file.
    pub start_line: u32,
    /// Byte ranges of `text` that match query terms.
    pub highlights: Vec<(usize, usize)>,
}

/// Picks the window of up to [`SNIPPET_LINES`] lines with the most query-term matches (the first
/// lines when nothing matches). `first_line` is the chunk's first line in the file.
pub fn make_snippet(chunk_text: &str, first_line: u32, terms: &[String]) -> Snippet {
    let lines: Vec<&str> = chunk_text.lines().collect();
    let matches_per_line: Vec<usize> = lines
        .iter()
        .map(|line| {
            let mut count = 0;
            for_each_code_token(line, TokenMode::Index, |token| {
                if terms.contains(&token.text) {
                    count += 1;
                }
            });
            count
        })
        .collect();
    let window = SNIPPET_LINES.min(lines.len());
    let mut best_start = 0;
    let mut best_score = 0;
    if window > 0 {
        let mut score: usize = matches_per_line[..window].iter().sum();
        best_score = score;
        for start in 1..=(lines.len() - window) {
            score = score + matches_per_line[start + window - 1] - matches_per_line[start - 1];
            if score > best_score {
                best_score = score;
                best_start = start;
            }
        }
    }
    // Skip leading blank lines of the window when it starts at the top without matches.
    if best_score == 0 {
        while best_start + 1 < lines.len() && lines[best_start].trim().is_empty() {
            best_start += 1;
        }
    }
    let end = (best_start + window).min(lines.len());
    let text = lines[best_start..end].join("\n");
    let highlights = highlight_ranges(&text, terms);
    Snippet {
        text,
        start_line: first_line + u32::try_from(best_start).unwrap_or(0),
        highlights,
    }
}

/// Byte ranges of `text` whose code tokens are query terms: the outermost ranges, in order (a
/// whole identifier rather than its parts as well).
pub fn highlight_ranges(text: &str, terms: &[String]) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for_each_code_token(text, TokenMode::Index, |token| {
        if terms.contains(&token.text) {
            ranges.push((token.offset_from, token.offset_to));
        }
    });
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (from, to) in ranges {
        match merged.last_mut() {
            Some(last) if from < last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_matching_window() {
        let text = (1..=20)
            .map(|n| {
                if n == 15 {
                    "fn parse_table() {}".to_string()
                } else {
                    format!("line {n}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let snippet = make_snippet(&text, 100, &["table".to_string()]);
        assert!(snippet.text.contains("parse_table"));
        assert_eq!(snippet.start_line, 100 + 9);
        let (from, to) = snippet.highlights[0];
        assert_eq!(&snippet.text[from..to], "table");
    }

    #[test]
    fn no_match_shows_the_top() {
        let snippet = make_snippet("\n\nfn a() {}\n", 1, &["zzz".to_string()]);
        assert_eq!(snippet.start_line, 3);
        assert!(snippet.highlights.is_empty());
        assert_eq!(make_snippet("", 1, &[]).text, "");
    }
}
