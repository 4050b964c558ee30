#![allow(clippy::unwrap_used)]

use super::*;

const RUST: &str = include_str!("../../tests/fixtures/chunk/sample.rs");
const PYTHON: &str = include_str!("../../tests/fixtures/chunk/sample.py");
const JAVASCRIPT: &str = include_str!("../../tests/fixtures/chunk/sample.js");
const TYPESCRIPT: &str = include_str!("../../tests/fixtures/chunk/sample.ts");
const TSX: &str = include_str!("../../tests/fixtures/chunk/sample.tsx");
const GO: &str = include_str!("../../tests/fixtures/chunk/sample.go");
const JAVA: &str = include_str!("../../tests/fixtures/chunk/sample.java");
const C: &str = include_str!("../../tests/fixtures/chunk/sample.c");
const CPP: &str = include_str!("../../tests/fixtures/chunk/sample.cpp");
const RUBY: &str = include_str!("../../tests/fixtures/chunk/sample.rb");
const ELIXIR: &str = include_str!("../../tests/fixtures/chunk/sample.ex");
const MARKDOWN: &str = include_str!("../../tests/fixtures/chunk/sample.md");
const TOML: &str = include_str!("../../tests/fixtures/chunk/sample.toml");

pub(super) const FIXTURES: &[(Language, &str, &str)] = &[
    (Language::Rust, "rust", RUST),
    (Language::Python, "python", PYTHON),
    (Language::JavaScript, "javascript", JAVASCRIPT),
    (Language::TypeScript, "typescript", TYPESCRIPT),
    (Language::Tsx, "tsx", TSX),
    (Language::Go, "go", GO),
    (Language::Java, "java", JAVA),
    (Language::C, "c", C),
    (Language::Cpp, "cpp", CPP),
    (Language::Ruby, "ruby", RUBY),
    (Language::Elixir, "elixir", ELIXIR),
    (Language::Markdown, "markdown", MARKDOWN),
    (Language::Toml, "toml", TOML),
];

pub(super) fn opts() -> ChunkOptions {
    ChunkOptions::default()
}

/// `L12-40 method parse (impl Document)`
pub(super) fn summary(chunks: &[RawChunk]) -> Vec<String> {
    chunks
        .iter()
        .map(|c| {
            let mut line = format!("L{}-{} {}", c.start_line, c.end_line, c.kind.name());
            if let Some(symbol) = &c.symbol {
                line.push(' ');
                line.push_str(symbol);
            }
            if let Some(parent) = &c.parent {
                line.push_str(&format!(" ({parent})"));
            }
            line
        })
        .collect()
}

/// Source lines as the chunker sees them: split on `\n` (a `\r` before it
/// belongs to the terminator), no extra empty line after a final terminator.
pub(super) fn source_lines(src: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = src.split('\n').collect();
    if src.ends_with('\n') {
        lines.pop();
    }
    let terminated = if src.ends_with('\n') {
        lines.len()
    } else {
        lines.len().saturating_sub(1)
    };
    for line in &mut lines[..terminated] {
        *line = line.strip_suffix('\r').unwrap_or(line);
    }
    lines
}

/// Invariants every chunking must satisfy. `windows` relaxes ordering (the
/// fallback windows overlap) and the token budget (windows count lines).
fn check(src: &str, chunks: &[RawChunk], opts: &ChunkOptions, windows: bool) {
    let lines = source_lines(src);
    let mut covered = vec![false; lines.len()];
    for (i, chunk) in chunks.iter().enumerate() {
        assert!(
            chunk.start_line >= 1 && chunk.start_line <= chunk.end_line,
            "{chunk:?}"
        );
        assert!((chunk.end_line as usize) <= lines.len(), "{chunk:?}");
        assert_eq!(
            src.get(chunk.start_byte..chunk.end_byte),
            Some(chunk.text.as_str())
        );
        let first = chunk.start_line as usize - 1;
        let last = chunk.end_line as usize - 1;
        assert!(
            chunk.text.starts_with(lines[first]),
            "first line of {chunk:?}"
        );
        assert!(chunk.text.ends_with(lines[last]), "last line of {chunk:?}");
        let newlines = chunk.text.matches('\n').count();
        assert_eq!(newlines, last - first, "line count of {chunk:?}");
        assert!(!chunk.text.trim().is_empty(), "blank chunk {chunk:?}");
        if i > 0 {
            let prev = &chunks[i - 1];
            if windows {
                assert!(
                    chunk.start_line > prev.start_line,
                    "{prev:?} then {chunk:?}"
                );
            } else {
                assert!(
                    chunk.start_line > prev.end_line,
                    "overlap: {prev:?} then {chunk:?}"
                );
            }
        }
        if !windows && chunk.start_line != chunk.end_line {
            let tokens = estimate_tokens(&chunk.text);
            // Over budget only when documentation is kept with its declaration: the chunk then
            // ends on the line that declares its symbol.
            let last_line = chunk.text.lines().last().unwrap_or("");
            let documented_declaration = chunk
                .symbol
                .as_deref()
                .is_some_and(|symbol| last_line.contains(symbol));
            assert!(
                tokens <= opts.max_tokens || documented_declaration,
                "{tokens} tokens in {chunk:?}"
            );
        }
        for line in chunk.start_line..=chunk.end_line {
            covered[line as usize - 1] = true;
        }
    }
    for (i, line) in lines.iter().enumerate() {
        assert!(
            covered[i] || line.trim().is_empty(),
            "line {} not covered: {line:?}",
            i + 1
        );
    }
}

pub(super) fn chunk_checked(lang: Language, src: &str, opts: &ChunkOptions) -> Vec<RawChunk> {
    let chunks = chunk_source(lang, src, opts);
    if lang == Language::Html {
        // HTML chunks hold extracted text, not the source lines they locate.
        super::html_tests::check_html(src, &chunks, opts);
        return chunks;
    }
    let windows = chunks.iter().all(|c| c.kind == ChunkKind::Block);
    check(src, &chunks, opts, windows);
    chunks
}

#[test]
fn fixtures_match_snapshots() {
    for &(lang, name, src) in FIXTURES {
        let chunks = chunk_checked(lang, src, &opts());
        assert!(
            chunks.iter().any(|c| c.kind != ChunkKind::Block),
            "{name} fell back to windows"
        );
        insta::with_settings!({
            prepend_module_to_snapshot => false,
            snapshot_path => "snapshots",
            omit_expression => true,
        }, {
            insta::assert_yaml_snapshot!(name, summary(&chunks));
        });
    }
}

#[test]
fn fixtures_stay_valid_under_small_budgets() {
    for &(lang, _, src) in FIXTURES {
        for (max, min) in [(24, 8), (64, 16), (1, 0), (100_000, 50_000)] {
            let opts = ChunkOptions {
                max_tokens: max,
                min_tokens: min,
                ..ChunkOptions::default()
            };
            chunk_checked(lang, src, &opts);
        }
    }
}

#[test]
fn large_function_is_split_within_budget() {
    let mut src = String::from(
        "/// Adds things.\nfn accumulate(values: &[u64]) -> u64 {\n    let mut total = 0;\n",
    );
    for i in 0..200 {
        src.push_str(&format!(
            "    total += values[{i}] * {i} + helper_{i}(values);\n"
        ));
        if i % 20 == 19 {
            src.push('\n');
        }
    }
    src.push_str("    total\n}\n");
    let chunks = chunk_checked(Language::Rust, &src, &opts());
    assert!(chunks.len() > 3, "{:?}", summary(&chunks));
    for chunk in &chunks {
        assert_eq!(chunk.kind, ChunkKind::Function);
        assert_eq!(chunk.symbol.as_deref(), Some("accumulate"));
        assert_eq!(chunk.parent, None);
        assert!(estimate_tokens(&chunk.text) <= 256);
    }
    assert_eq!(
        chunks[0].start_line, 1,
        "doc comment belongs to the first piece"
    );
    let lines = source_lines(&src);
    for pair in chunks.windows(2) {
        let gap = pair[0].end_line as usize..pair[1].start_line as usize - 1;
        assert!(
            lines[gap].iter().all(|l| l.trim().is_empty()),
            "pieces are consecutive"
        );
    }
}

#[test]
fn split_prefers_statement_boundaries() {
    // Two big statements: the cut must fall between them, not inside one.
    let mut src = String::from("def work():\n");
    for block in 0..2 {
        src.push_str(&format!("    if flag_{block}:\n"));
        for i in 0..40 {
            src.push_str(&format!(
                "        call_something_{i}(argument_{i}, other_{i})\n"
            ));
        }
    }
    let chunks = chunk_checked(Language::Python, &src, &opts());
    let starts: Vec<u32> = chunks.iter().map(|c| c.start_line).collect();
    assert!(starts.contains(&43), "{:?}", summary(&chunks));
}

#[test]
fn tiny_neighbours_merge() {
    let src =
        "const A: u32 = 1;\nconst B: u32 = 2;\n\nfn one() -> u32 { A }\n\nfn two() -> u32 { B }\n";
    let chunks = chunk_checked(Language::Rust, src, &opts());
    assert_eq!(chunks.len(), 1, "{:?}", summary(&chunks));
    assert_eq!((chunks[0].start_line, chunks[0].end_line), (1, 6));
    assert!(chunks[0].symbol.is_some());
}

#[test]
fn merging_respects_parents_and_budget() {
    // Go methods have their receiver as parent: they never merge with
    // top-level functions.
    let src = "package p\n\nfunc a() {}\n\nfunc (s *S) b() {}\n\nfunc c() {}\n";
    let chunks = chunk_checked(Language::Go, src, &opts());
    let parents: Vec<Option<&str>> = chunks.iter().map(|c| c.parent.as_deref()).collect();
    assert_eq!(parents, [None, Some("S"), None], "{:?}", summary(&chunks));

    // With min_tokens = 0 nothing merges.
    let opts = ChunkOptions {
        min_tokens: 0,
        ..ChunkOptions::default()
    };
    let src = "fn one() {}\nfn two() {}\nfn three() {}\n";
    let chunks = chunk_checked(Language::Rust, src, &opts);
    let symbols: Vec<_> = chunks.iter().filter_map(|c| c.symbol.as_deref()).collect();
    assert_eq!(symbols, ["one", "two", "three"]);
}

#[test]
fn impl_is_split_into_methods_with_parent() {
    let mut src = String::from(concat!(
        "use std::fmt;\n\n",
        "impl<T: Clone> fmt::Display for Wrapper<T>\n",
        "where\n",
        "    T: fmt::Debug,\n",
        "{\n",
    ));
    for name in ["alpha", "beta", "gamma", "delta"] {
        src.push_str(&format!("    /// Docs for {name}.\n"));
        src.push_str(&format!(
            "    fn {name}(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n"
        ));
        for i in 0..5 {
            src.push_str(&format!(
                "        write!(f, \"{name} {{}} {{:?}}\", {i}, self.value_{i})?;\n"
            ));
        }
        src.push_str("        Ok(())\n    }\n\n");
    }
    src.push_str("}\n");
    let chunks = chunk_checked(Language::Rust, &src, &opts());
    let methods: Vec<&RawChunk> = chunks
        .iter()
        .filter(|c| c.kind == ChunkKind::Method)
        .collect();
    assert_eq!(methods.len(), 4, "{:?}", summary(&chunks));
    for method in &methods {
        assert_eq!(
            method.parent.as_deref(),
            Some("impl<T: Clone> fmt::Display for Wrapper<T> where T: fmt::Debug")
        );
        assert!(
            method.text.contains("    /// Docs for"),
            "doc comment attached"
        );
    }
    // The container header merged into the first method; the others start
    // with their doc comment.
    assert!(methods[0].text.starts_with("impl<T: Clone>"));
    assert!(methods[1..]
        .iter()
        .all(|m| m.text.starts_with("    /// Docs for")));
    // The closing brace is covered by the last method.
    assert_eq!(
        chunks.last().map(|c| c.end_line),
        Some(source_lines(&src).len() as u32)
    );
}

#[test]
fn small_class_is_one_chunk_and_large_class_is_split() {
    let small = concat!(
        "class Point(Base):\n",
        "    def __init__(self, x, y):\n",
        "        self.x = x\n",
        "        self.y = y\n",
        "\n",
        "    def norm(self):\n",
        "        return (self.x ** 2 + self.y ** 2) ** 0.5\n",
    );
    let chunks = chunk_checked(Language::Python, small, &opts());
    assert_eq!(summary(&chunks), ["L1-7 class Point"]);

    let mut big = String::from("class Shape(Base):\n    \"\"\"A shape.\"\"\"\n\n    sides = 0\n\n");
    for name in ["area", "perimeter", "scale", "rotate"] {
        big.push_str(&format!("    @cached\n    def {name}(self, factor=1):\n"));
        for i in 0..10 {
            big.push_str(&format!(
                "        value_{i} = self.compute_{name}({i}) * factor\n"
            ));
        }
        big.push_str("        return value_0\n\n");
    }
    let chunks = chunk_checked(Language::Python, &big, &opts());
    let methods: Vec<&RawChunk> = chunks
        .iter()
        .filter(|c| c.kind == ChunkKind::Method)
        .collect();
    assert_eq!(methods.len(), 4, "{:?}", summary(&chunks));
    assert!(methods
        .iter()
        .all(|m| m.parent.as_deref() == Some("class Shape(Base)")));
    // The small class header merged into the first method.
    assert!(methods[0].text.starts_with("class Shape(Base):"));
    assert!(methods[0].text.contains("    @cached\n    def area"));
    assert!(methods[1..]
        .iter()
        .all(|m| m.text.starts_with("    @cached")));
}

#[test]
fn markdown_heading_path() {
    let filler =
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n";
    let mut src = String::from("Intro text before any heading.\n\n# Guide\n\n");
    src.push_str(&filler.repeat(8));
    src.push_str("\n## Install\n\n");
    src.push_str(&filler.repeat(8));
    src.push_str("\n### From source\n\n");
    src.push_str(&filler.repeat(8));
    src.push_str("\nUsage ## notes\n-----\n\n");
    src.push_str(&filler.repeat(8));
    let chunks = chunk_checked(Language::Markdown, &src, &opts());
    let got: Vec<(ChunkKind, Option<&str>, Option<&str>)> = chunks
        .iter()
        .map(|c| (c.kind, c.symbol.as_deref(), c.parent.as_deref()))
        .collect();
    // The tiny intro merges into the first section.
    assert_eq!(chunks[0].start_line, 1);
    assert_eq!(
        got,
        [
            (ChunkKind::Section, Some("Guide"), None),
            (ChunkKind::Section, Some("Install"), Some("Guide")),
            (
                ChunkKind::Section,
                Some("From source"),
                Some("Guide > Install")
            ),
            (ChunkKind::Section, Some("Usage ## notes"), Some("Guide")),
        ]
    );
}

#[test]
fn markdown_small_document_is_one_section() {
    let chunks = chunk_checked(
        Language::Markdown,
        "# Title ##\n\nSome text.\n\n## Sub\n\nMore.\n",
        &opts(),
    );
    assert_eq!(summary(&chunks), ["L1-7 section Title"]);
}

#[test]
fn no_grammar_uses_line_windows() {
    let src: String = (0..150).map(|i| format!("key_{i}: value {i}\n")).collect();
    let chunks = chunk_checked(Language::Yaml, &src, &opts());
    assert!(chunks
        .iter()
        .all(|c| c.kind == ChunkKind::Block && c.symbol.is_none()));
    assert_eq!(chunks[0].start_line, 1);
    assert_eq!(chunks[0].end_line, 60);
    assert_eq!(chunks[1].start_line, 53, "windows overlap by 8 lines");
    assert_eq!(chunks.last().map(|c| c.end_line), Some(150));
}

#[test]
fn windows_prefer_blank_lines() {
    let mut src = String::new();
    for para in 0..6 {
        for i in 0..14 {
            src.push_str(&format!("paragraph {para} sentence {i}\n"));
        }
        src.push('\n');
    }
    let opts = ChunkOptions {
        window_overlap: 0,
        ..ChunkOptions::default()
    };
    let chunks = chunk_checked(Language::Text, &src, &opts);
    // 60-line window: the last blank line inside it is line 60.
    assert_eq!((chunks[0].start_line, chunks[0].end_line), (1, 59));
    assert_eq!(chunks[1].start_line, 61);
}

#[test]
fn estimate_tokens_sanity() {
    assert_eq!(estimate_tokens(""), 0);
    assert_eq!(estimate_tokens("   \n\t "), 0);
    assert_eq!(estimate_tokens("hello world"), 2);
    assert_eq!(estimate_tokens("parseTable"), 2);
    assert_eq!(estimate_tokens("parse_table"), 2);
    assert_eq!(estimate_tokens("HTTPServer"), 2);
    assert_eq!(estimate_tokens("fn f(x: u32) -> u32 {}"), 14);
    assert_eq!(estimate_tokens("1234567"), 3);
    assert_eq!(estimate_tokens("========"), 2);
    assert_eq!(estimate_tokens("日本語"), 3);
    // Roughly proportional to length for ordinary code.
    let line = "let value = compute(input, 42)?;\n";
    let one = estimate_tokens(line);
    assert_eq!(estimate_tokens(&line.repeat(10)), one * 10);
    assert!((8..=14).contains(&one), "{one}");
}

#[test]
fn kind_names_round_trip() {
    for &kind in ALL_KINDS {
        assert_eq!(ChunkKind::from_name(kind.name()), Some(kind));
        assert_eq!(
            ChunkKind::from_name(&kind.name().to_uppercase()),
            Some(kind)
        );
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.name()));
        assert_eq!(serde_json::from_str::<ChunkKind>(&json).unwrap(), kind);
    }
    assert_eq!(ChunkKind::from_name("nope"), None);
}
