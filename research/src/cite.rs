//! Citation checking: every `[n]` in a synthesized text must name an evidence passage. Citations
//! to nothing (out of range, malformed) are removed and reported, never guessed.

use serde::{Deserialize, Serialize};

/// Why a citation was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// A number with no passage (0, or above the evidence count).
    OutOfRange,
    /// Something citation-like that is not a list of numbers (`[source 2]`, `[1-]`, `[n]`).
    Malformed,
}

/// A citation taken out of the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedCitation {
    /// The text as written (`[7]`, or the part of a group: `12` of `[2, 12]`).
    pub raw: String,
    pub reason: RemovalReason,
}

/// A checked text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckedText {
    /// The text with only valid citations, each as `[n]`.
    pub text: String,
    /// Valid citation numbers, ascending, distinct.
    pub cited: Vec<usize>,
    pub removed: Vec<RemovedCitation>,
}

/// Largest range `[a-b]` expanded.
const MAX_RANGE: usize = 20;

/// Whether the bracket content looks like an attempt at a citation.
fn citation_like(content: &str) -> bool {
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return false;
    }
    let numeric = trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ',' | ';' | '-' | '–' | ' '))
        && trimmed.chars().any(|c| c.is_ascii_digit());
    if numeric {
        return true;
    }
    let lower = trimmed.to_lowercase();
    let word = lower.trim_start_matches('^');
    ["source", "ref", "citation", "passage", "evidence", "n"]
        .iter()
        .any(|prefix| {
            word.strip_prefix(prefix).is_some_and(|rest| {
                rest.trim().is_empty()
                    || rest
                        .trim()
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == ' ' || c == ':' || c == '#')
            })
        })
        || (lower.starts_with('^') && lower[1..].chars().all(|c| c.is_ascii_digit()))
}

/// Parses a citation group: valid numbers, and the removed parts.
fn parse_group(content: &str, evidence_count: usize) -> (Vec<usize>, Vec<RemovedCitation>) {
    let mut valid = Vec::new();
    let mut removed = Vec::new();
    let numeric = content
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ',' | ';' | '-' | '–' | ' '));
    if !numeric {
        removed.push(RemovedCitation {
            raw: format!("[{content}]"),
            reason: RemovalReason::Malformed,
        });
        return (valid, removed);
    }
    let in_range = |n: usize| n >= 1 && n <= evidence_count;
    for part in content.split([',', ';']) {
        let part = part.trim();
        let malformed = || RemovedCitation {
            raw: part.to_string(),
            reason: RemovalReason::Malformed,
        };
        if part.is_empty() {
            removed.push(malformed());
            continue;
        }
        if let Some((low, high)) = part.split_once(['-', '–']) {
            match (low.trim().parse::<usize>(), high.trim().parse::<usize>()) {
                (Ok(low), Ok(high)) if low <= high && high - low <= MAX_RANGE => {
                    for n in low..=high {
                        if in_range(n) {
                            valid.push(n);
                        } else {
                            removed.push(RemovedCitation {
                                raw: n.to_string(),
                                reason: RemovalReason::OutOfRange,
                            });
                        }
                    }
                }
                _ => removed.push(malformed()),
            }
            continue;
        }
        match part.parse::<usize>() {
            Ok(n) if in_range(n) => valid.push(n),
            Ok(_) => removed.push(RemovedCitation {
                raw: part.to_string(),
                reason: RemovalReason::OutOfRange,
            }),
            Err(_) => removed.push(malformed()),
        }
    }
    (valid, removed)
}

/// Checks the citations of `text` against `evidence_count` passages numbered from 1. Brackets in
/// code (fenced blocks, inline code), indexing (`a[0]`) and Markdown links (`[text](url)`) are
/// left alone.
pub fn check_citations(text: &str, evidence_count: usize) -> CheckedText {
    rewrite_citations(text, evidence_count, |n| format!("[{n}]"))
}

/// Checks the citations of `text` as [`check_citations`] does, writing each valid citation `n` as
/// `cite(n)` (a checked text's `[n]` as a link, say).
pub fn rewrite_citations(
    text: &str,
    evidence_count: usize,
    mut cite: impl FnMut(usize) -> String,
) -> CheckedText {
    let mut out = String::with_capacity(text.len());
    let mut cited = Vec::new();
    let mut removed = Vec::new();
    let mut in_fence = false;
    for (line_index, line) in text.split('\n').enumerate() {
        if line_index > 0 {
            out.push('\n');
        }
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            out.push_str(line);
            continue;
        }
        if in_fence {
            out.push_str(line);
            continue;
        }
        let mut in_code = false;
        let mut rest = line;
        while let Some(position) = rest.find(['[', '`']) {
            let (before, from) = rest.split_at(position);
            out.push_str(before);
            if let Some(after_tick) = from.strip_prefix('`') {
                in_code = !in_code;
                out.push('`');
                rest = after_tick;
                continue;
            }
            let previous = out.chars().last();
            let close = from[1..].find(']').map(|at| at + 1);
            let Some(close) = close.filter(|close| *close <= 60 && !from[1..*close].contains('['))
            else {
                out.push('[');
                rest = &from[1..];
                continue;
            };
            let content = &from[1..close];
            let after = &from[close + 1..];
            let indexing = previous.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | ')'));
            // `[text][label]` is a reference link; `[1][2]` are citations.
            let numeric = content
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ',' | ';' | '-' | '–' | ' '));
            let indexing = indexing || (previous == Some(']') && !numeric);
            let link = after.starts_with('(') || (after.starts_with('[') && !numeric);
            if in_code || indexing || link || !citation_like(content) {
                out.push_str(&from[..=close]);
                rest = after;
                continue;
            }
            let (valid, mut bad) = parse_group(content, evidence_count);
            removed.append(&mut bad);
            if valid.is_empty() {
                // Drop the space before a removed citation so no double space remains.
                if out.ends_with(' ')
                    && (after.starts_with([' ', '.', ',', ';', ':', ')']) || after.is_empty())
                {
                    out.pop();
                }
            } else {
                let mut seen = Vec::new();
                for n in valid {
                    if !seen.contains(&n) {
                        seen.push(n);
                        out.push_str(&cite(n));
                        cited.push(n);
                    }
                }
            }
            rest = after;
        }
        out.push_str(rest);
    }
    cited.sort_unstable();
    cited.dedup();
    CheckedText {
        text: out,
        cited,
        removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_citations_are_kept_and_normalised() {
        let checked = check_citations("Tasks are stolen [1]. Pools grow [2, 3] and [1-2].", 3);
        assert_eq!(
            checked.text,
            "Tasks are stolen [1]. Pools grow [2][3] and [1][2]."
        );
        assert_eq!(checked.cited, vec![1, 2, 3]);
        assert!(checked.removed.is_empty());
    }

    #[test]
    fn out_of_range_citations_are_removed_and_reported() {
        let checked = check_citations("Claim [4]. Other [0]. Mixed [2, 9]. Chained [1][7].", 3);
        assert_eq!(checked.text, "Claim. Other. Mixed [2]. Chained [1].");
        assert_eq!(checked.cited, vec![1, 2]);
        let raws: Vec<&str> = checked.removed.iter().map(|r| r.raw.as_str()).collect();
        assert_eq!(raws, vec!["4", "0", "9", "7"]);
        assert!(checked
            .removed
            .iter()
            .all(|r| r.reason == RemovalReason::OutOfRange));
    }

    #[test]
    fn malformed_citations_are_removed() {
        let checked = check_citations("A [source 2] B [1-] C [n] D [^3] E [1,,2]", 5);
        assert_eq!(checked.text, "A B C D E [1][2]");
        assert_eq!(checked.cited, vec![1, 2]);
        assert_eq!(
            checked
                .removed
                .iter()
                .filter(|r| r.reason == RemovalReason::Malformed)
                .count(),
            5
        );
    }

    #[test]
    fn code_links_and_indexing_are_untouched() {
        let text = "Use `v[0]` or v[1], see [the book](https://x) and [docs][ref].\n```\nlet a = b[2];\n[3]\n```\nDone [1].";
        let checked = check_citations(text, 1);
        assert_eq!(checked.text, text);
        assert_eq!(checked.cited, vec![1]);
        assert!(checked.removed.is_empty());
    }

    #[test]
    fn no_evidence_means_no_citation_survives() {
        let checked = check_citations("Invented [1] and [2].", 0);
        assert_eq!(checked.text, "Invented and.");
        assert!(checked.cited.is_empty());
        assert_eq!(checked.removed.len(), 2);
    }
}
