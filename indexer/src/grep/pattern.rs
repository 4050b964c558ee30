//! One search pattern, compiled with ripgrep's conventions: literal or `regex` syntax, smart case,
//! whole words, `^`/`$` at line boundaries, and no match across a line break (a literal `\n` is an
//! error and classes lose the line break, as in ripgrep without `--multiline`).

use regex::{Regex, RegexBuilder};
use regex_syntax::ast::{self, Ast, ClassSetItem};
use regex_syntax::hir::{self, Class, ClassBytes, ClassBytesRange, ClassUnicode, Hir, HirKind};

use super::trigrams::{hir_query, TrigramQuery};
use super::GrepError;

/// Compiled program size limits: the `regex` crate matches in linear time, and these bound the
/// memory a pathological pattern (`(a{1000}){1000}`) may take before it is refused.
const REGEX_SIZE_LIMIT: usize = 32 * 1024 * 1024;
const DFA_SIZE_LIMIT: usize = 64 * 1024 * 1024;
const NEST_LIMIT: u32 = 200;

/// How letter case is matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CaseMode {
    Sensitive,
    Insensitive,
    /// Insensitive unless the pattern has an upper-case letter (ripgrep's `--smart-case`).
    #[default]
    Smart,
}

/// How a pattern string is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PatternOptions {
    /// A literal string, not a regex (`--fixed-strings`).
    pub fixed: bool,
    pub case: CaseMode,
    /// Matches only whole words (`--word-regexp`).
    pub word: bool,
}

/// A compiled pattern: the regex that verifies, and the trigram condition that narrows candidates.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub regex: Regex,
    pub trigrams: TrigramQuery,
    pub case_insensitive: bool,
}

impl Pattern {
    pub fn new(pattern: &str, options: PatternOptions) -> Result<Pattern, GrepError> {
        let source = if options.fixed {
            regex::escape(pattern)
        } else {
            pattern.to_string()
        };
        let case_insensitive = match options.case {
            CaseMode::Sensitive => false,
            CaseMode::Insensitive => true,
            CaseMode::Smart => smart_case_insensitive(&source),
        };
        let parsed = regex_syntax::ParserBuilder::new()
            .case_insensitive(case_insensitive)
            .multi_line(true)
            .unicode(true)
            .utf8(true)
            .nest_limit(NEST_LIMIT)
            .build()
            .parse(&source)
            .map_err(|err| invalid(pattern, options.fixed, &err))?;
        let mut hir = without_line_breaks(parsed, pattern)?;
        if options.word {
            hir = Hir::concat(vec![
                Hir::look(hir::Look::WordStartHalfUnicode),
                hir,
                Hir::look(hir::Look::WordEndHalfUnicode),
            ]);
        }
        let trigrams = hir_query(&hir);
        let regex = RegexBuilder::new(&hir.to_string())
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .map_err(|err| GrepError::InvalidPattern {
                pattern: pattern.to_string(),
                message: err.to_string(),
                column: None,
            })?;
        Ok(Pattern {
            regex,
            trigrams,
            case_insensitive,
        })
    }
}

fn invalid(pattern: &str, fixed: bool, err: &regex_syntax::Error) -> GrepError {
    let (message, offset) = match err {
        regex_syntax::Error::Parse(err) => (err.kind().to_string(), err.span().start.offset),
        regex_syntax::Error::Translate(err) => (err.kind().to_string(), err.span().start.offset),
        other => (other.to_string(), 0),
    };
    GrepError::InvalidPattern {
        pattern: pattern.to_string(),
        message,
        // Offsets into an escaped literal do not point into what the user typed.
        column: (!fixed).then(|| pattern[..offset.min(pattern.len())].chars().count() + 1),
    }
}

/// ripgrep's smart case: insensitive when the pattern has a literal and no upper-case one.
fn smart_case_insensitive(source: &str) -> bool {
    let Ok(ast) = ast::parse::Parser::new().parse(source) else {
        // The real parse reports the error.
        return false;
    };
    let analysis = ast::visit(&ast, LetterCase::default()).unwrap_or_default();
    analysis.any_literal && !analysis.any_uppercase
}

#[derive(Debug, Default, Clone, Copy)]
struct LetterCase {
    any_literal: bool,
    any_uppercase: bool,
}

impl LetterCase {
    fn literal(&mut self, c: char) {
        self.any_literal = true;
        self.any_uppercase |= c.is_uppercase();
    }
}

impl ast::Visitor for LetterCase {
    type Output = LetterCase;
    type Err = ();

    fn finish(self) -> Result<LetterCase, ()> {
        Ok(self)
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
        if let Ast::Literal(literal) = ast {
            self.literal(literal.c);
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), ()> {
        match item {
            ClassSetItem::Literal(literal) => self.literal(literal.c),
            ClassSetItem::Range(range) => {
                self.literal(range.start.c);
                self.literal(range.end.c);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The pattern with the line break removed from every class; a literal line break is an error.
fn without_line_breaks(hir: Hir, pattern: &str) -> Result<Hir, GrepError> {
    Ok(match hir.into_kind() {
        HirKind::Literal(literal) => {
            if literal.0.contains(&b'\n') {
                return Err(GrepError::InvalidPattern {
                    pattern: pattern.to_string(),
                    message:
                        "the literal \"\\n\" is not allowed in a regex (matches never span lines)"
                            .to_string(),
                    column: None,
                });
            }
            Hir::literal(literal.0)
        }
        HirKind::Class(Class::Unicode(mut class)) => {
            class.difference(&ClassUnicode::new([hir::ClassUnicodeRange::new(
                '\n', '\n',
            )]));
            Hir::class(Class::Unicode(class))
        }
        HirKind::Class(Class::Bytes(mut class)) => {
            class.difference(&ClassBytes::new([ClassBytesRange::new(b'\n', b'\n')]));
            Hir::class(Class::Bytes(class))
        }
        HirKind::Repetition(mut repetition) => {
            repetition.sub = Box::new(without_line_breaks(*repetition.sub, pattern)?);
            Hir::repetition(repetition)
        }
        HirKind::Capture(mut capture) => {
            capture.sub = Box::new(without_line_breaks(*capture.sub, pattern)?);
            Hir::capture(capture)
        }
        HirKind::Concat(subs) => Hir::concat(
            subs.into_iter()
                .map(|sub| without_line_breaks(sub, pattern))
                .collect::<Result<_, _>>()?,
        ),
        HirKind::Alternation(subs) => Hir::alternation(
            subs.into_iter()
                .map(|sub| without_line_breaks(sub, pattern))
                .collect::<Result<_, _>>()?,
        ),
        HirKind::Empty => Hir::empty(),
        HirKind::Look(look) => Hir::look(look),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(pattern: &str) -> Result<Pattern, GrepError> {
        Pattern::new(pattern, PatternOptions::default())
    }

    #[test]
    fn smart_case_follows_upper_case_literals() {
        assert!(compile("parse").expect("valid").case_insensitive);
        assert!(!compile("Parse").expect("valid").case_insensitive);
        assert!(compile(r"\Sfoo").expect("valid").case_insensitive);
        assert!(!compile(r"\p{Lu}").expect("valid").case_insensitive);
    }

    #[test]
    fn invalid_regex_reports_the_column() {
        let Err(GrepError::InvalidPattern {
            column, message, ..
        }) = compile("fn (parse")
        else {
            panic!("an invalid pattern")
        };
        assert_eq!(column, Some(4));
        assert!(message.contains("unclosed"), "{message}");
        assert!(compile(r"a\nb").is_err());
    }

    #[test]
    fn classes_never_match_a_line_break() {
        let pattern = compile(r"a\sb").expect("valid");
        assert!(!pattern.regex.is_match("a\nb"));
        assert!(pattern.regex.is_match("a b"));
        let pattern = compile(r"(?s)a.b").expect("valid");
        assert!(!pattern.regex.is_match("a\nb"));
    }

    #[test]
    fn huge_repetitions_are_refused_not_run() {
        assert!(compile(r"(\w{1000}){1000}").is_err());
        assert!(compile("(a*)*b").is_ok());
    }

    #[test]
    fn whole_words() {
        let options = PatternOptions {
            word: true,
            ..PatternOptions::default()
        };
        let pattern = Pattern::new("foo", options).expect("valid");
        assert!(pattern.regex.is_match("a foo b"));
        assert!(!pattern.regex.is_match("foobar"));
    }
}
