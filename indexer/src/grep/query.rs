//! The query language of exact and regex search, one string, the same from the CLI and the API
//! (zoekt's shape):
//!
//! ```text
//! lang:rust path:src/ -path:tests repo:NAME case:yes "exact phrase" /fn\s+parse_\w+/ foo OR bar
//! ```
//!
//! Bare words are one pattern while they follow each other (`fn parse_config` is the phrase, as in
//! ripgrep): a literal in exact mode, a regex in regex mode. `"…"` is a literal, `/…/` a regex;
//! `-` negates a pattern (files that contain it are left out) or a filter. `OR` (upper case)
//! separates alternatives; patterns of one alternative must all occur in a file.
//! Filters: `lang:`/`l:`, `path:`/`file:`/`f:` (a regex on the path), `repo:`/`r:` (a
//! collection name, regex), `case:yes|no|auto`, `sym:` (a symbol name, regex).

use super::pattern::CaseMode;
use super::GrepError;

/// How a pattern term is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    Literal,
    Regex,
}

/// A pattern of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub text: String,
    pub kind: TermKind,
    pub negated: bool,
}

/// Restrictions on the files searched; each list holds regexes (empty: no restriction).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub languages: Vec<String>,
    pub exclude_languages: Vec<String>,
    pub paths: Vec<String>,
    pub exclude_paths: Vec<String>,
    pub repos: Vec<String>,
    pub exclude_repos: Vec<String>,
    pub symbols: Vec<String>,
}

/// A parsed query: alternatives (`OR`) of terms that must all hold, and filters for all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    pub alternatives: Vec<Vec<Term>>,
    pub filters: Filters,
    /// `case:` of the query, over the request's case mode.
    pub case: Option<CaseMode>,
}

/// Parses `query`; bare words are `bare` terms (literals in exact mode, regexes in regex mode).
pub fn parse_query(query: &str, bare: TermKind) -> Result<ParsedQuery, GrepError> {
    let mut parsed = ParsedQuery::default();
    let mut current: Vec<Term> = Vec::new();
    let chars: Vec<char> = query.chars().collect();
    let mut at = 0usize;
    // Where the last bare word of `current` ended, while nothing else came after it.
    let mut bare_end: Option<usize> = None;
    while at < chars.len() {
        if chars[at].is_whitespace() {
            at += 1;
            continue;
        }
        let token_start = at;
        let negated = chars[at] == '-' && at + 1 < chars.len() && !chars[at + 1].is_whitespace();
        if negated {
            at += 1;
        }
        let (token, kind, quoted) = match chars[at] {
            '"' => {
                let (text, end) = delimited(&chars, at, '"', query)?;
                at = end;
                (text, TermKind::Literal, true)
            }
            '/' => {
                let (text, end) = delimited(&chars, at, '/', query)?;
                at = end;
                (text, TermKind::Regex, true)
            }
            _ => {
                let start = at;
                while at < chars.len() && !chars[at].is_whitespace() {
                    at += 1;
                }
                (chars[start..at].iter().collect::<String>(), bare, false)
            }
        };
        if !quoted && !negated && token == "OR" {
            if current.is_empty() {
                return Err(invalid_query(
                    query,
                    token_start,
                    "`OR` needs a pattern on each side",
                ));
            }
            parsed.alternatives.push(std::mem::take(&mut current));
            bare_end = None;
            continue;
        }
        if !quoted {
            if let Some((key, value)) = token.split_once(':') {
                if apply_filter(&mut parsed, key, value, negated, query, token_start)? {
                    bare_end = None;
                    continue;
                }
            }
        }
        if token.is_empty() {
            continue;
        }
        if !quoted && !negated {
            if let (Some(end), Some(last)) = (bare_end, current.last_mut()) {
                last.text.extend(&chars[end..token_start]);
                last.text.push_str(&token);
                bare_end = Some(at);
                continue;
            }
            bare_end = Some(at);
        } else {
            bare_end = None;
        }
        current.push(Term {
            text: token,
            kind,
            negated,
        });
    }
    if !current.is_empty() {
        parsed.alternatives.push(current);
    } else if !parsed.alternatives.is_empty() {
        return Err(invalid_query(
            query,
            query.len(),
            "`OR` needs a pattern on each side",
        ));
    }
    Ok(parsed)
}

/// A `"…"` or `/…/` token starting at `start`: its text (a backslash escapes the delimiter; in a
/// regex other escapes are kept for the regex) and the index after it.
fn delimited(
    chars: &[char],
    start: usize,
    delimiter: char,
    query: &str,
) -> Result<(String, usize), GrepError> {
    let mut text = String::new();
    let mut at = start + 1;
    while at < chars.len() {
        let c = chars[at];
        if c == '\\' && at + 1 < chars.len() {
            let next = chars[at + 1];
            if next == delimiter || (delimiter == '"' && next == '\\') {
                text.push(next);
            } else {
                text.push(c);
                text.push(next);
            }
            at += 2;
            continue;
        }
        if c == delimiter {
            return Ok((text, at + 1));
        }
        text.push(c);
        at += 1;
    }
    let offset = chars[..start].iter().collect::<String>().len();
    Err(invalid_query(
        query,
        offset,
        &format!("unclosed `{delimiter}`"),
    ))
}

/// Applies `key:value` if `key` is a filter; returns whether it was one.
fn apply_filter(
    parsed: &mut ParsedQuery,
    key: &str,
    value: &str,
    negated: bool,
    query: &str,
    offset: usize,
) -> Result<bool, GrepError> {
    let value = value.trim_matches('"').to_string();
    let filters = &mut parsed.filters;
    let list = match (key, negated) {
        ("lang" | "l" | "language", false) => &mut filters.languages,
        ("lang" | "l" | "language", true) => &mut filters.exclude_languages,
        ("path" | "file" | "f", false) => &mut filters.paths,
        ("path" | "file" | "f", true) => &mut filters.exclude_paths,
        ("repo" | "r" | "collection", false) => &mut filters.repos,
        ("repo" | "r" | "collection", true) => &mut filters.exclude_repos,
        ("sym", false) => &mut filters.symbols,
        ("case", false) => {
            parsed.case = Some(match value.as_str() {
                "yes" | "y" | "true" => CaseMode::Sensitive,
                "no" | "n" | "false" => CaseMode::Insensitive,
                "auto" | "smart" => CaseMode::Smart,
                _ => {
                    return Err(invalid_query(
                        query,
                        offset,
                        "`case:` takes yes, no or auto",
                    ))
                }
            });
            return Ok(true);
        }
        _ => return Ok(false),
    };
    if value.is_empty() {
        return Err(invalid_query(
            query,
            offset,
            &format!("`{key}:` needs a value"),
        ));
    }
    list.push(value);
    Ok(true)
}

fn invalid_query(query: &str, char_offset: usize, message: &str) -> GrepError {
    GrepError::InvalidQuery {
        query: query.to_string(),
        message: message.to_string(),
        column: char_offset + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(text: &str) -> Term {
        Term {
            text: text.to_string(),
            kind: TermKind::Literal,
            negated: false,
        }
    }

    #[test]
    fn the_issue_example_parses() {
        let parsed = parse_query(
            r#"lang:rust path:src/ -path:tests sym:parse repo:aiex case:yes "exact phrase" /fn\s+parse_\w+/ foo OR bar"#,
            TermKind::Literal,
        )
        .expect("valid");
        assert_eq!(parsed.filters.languages, vec!["rust"]);
        assert_eq!(parsed.filters.paths, vec!["src/"]);
        assert_eq!(parsed.filters.exclude_paths, vec!["tests"]);
        assert_eq!(parsed.filters.symbols, vec!["parse"]);
        assert_eq!(parsed.filters.repos, vec!["aiex"]);
        assert_eq!(parsed.case, Some(CaseMode::Sensitive));
        assert_eq!(parsed.alternatives.len(), 2);
        assert_eq!(
            parsed.alternatives[0],
            vec![
                literal("exact phrase"),
                Term {
                    text: r"fn\s+parse_\w+".to_string(),
                    kind: TermKind::Regex,
                    negated: false
                },
                literal("foo"),
            ]
        );
        assert_eq!(parsed.alternatives[1], vec![literal("bar")]);
    }

    #[test]
    fn adjacent_bare_words_are_one_phrase() {
        let parsed = parse_query("lang:rust fn  parse_config", TermKind::Literal).expect("valid");
        assert_eq!(parsed.alternatives, vec![vec![literal("fn  parse_config")]]);
        let parsed = parse_query("a b \"c\" d", TermKind::Literal).expect("valid");
        assert_eq!(
            parsed.alternatives,
            vec![vec![literal("a b"), literal("c"), literal("d")]]
        );
    }

    #[test]
    fn negation_and_escapes() {
        let parsed = parse_query(r#"-todo "say \"hi\"" /a\/b/"#, TermKind::Literal).expect("valid");
        let terms = &parsed.alternatives[0];
        assert!(terms[0].negated);
        assert_eq!(terms[1].text, r#"say "hi""#);
        assert_eq!(terms[2].text, "a/b");
    }

    #[test]
    fn errors_point_at_the_problem() {
        let Err(GrepError::InvalidQuery { column, .. }) =
            parse_query(r#"foo "bar"#, TermKind::Literal)
        else {
            panic!("an error")
        };
        assert_eq!(column, 5);
        assert!(parse_query("OR foo", TermKind::Literal).is_err());
        assert!(parse_query("foo OR", TermKind::Literal).is_err());
        assert!(parse_query("case:maybe x", TermKind::Literal).is_err());
    }
}
