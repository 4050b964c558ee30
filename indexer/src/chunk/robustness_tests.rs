//! Robustness tests: broken, hostile and random input.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::tests::{chunk_checked, opts, summary, FIXTURES};
use super::*;

#[test]
fn mostly_broken_source_falls_back_to_windows() {
    let src = ")))) ]]] }}} ((( @@@ ### !!! ;;; \n".repeat(80);
    let chunks = chunk_checked(Language::Rust, &src, &opts());
    assert!(!chunks.is_empty());
    assert!(
        chunks.iter().all(|c| c.kind == ChunkKind::Block),
        "{:?}",
        summary(&chunks)
    );
}

#[test]
fn a_few_syntax_errors_still_chunk_by_symbol() {
    let src = format!(
        concat!(
            "fn good() -> u32 {{\n    1\n}}\n\n",
            "fn broken( {{\n    let x = ;\n}}\n\n",
            "{}\nfn also_good() {{}}\n",
        ),
        "// filler comment line\n".repeat(10)
    );
    let chunks = chunk_checked(Language::Rust, &src, &opts());
    assert!(
        chunks.iter().any(|c| c.kind != ChunkKind::Block),
        "{:?}",
        summary(&chunks)
    );
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 10_000;
    let cases = [
        (
            Language::JavaScript,
            format!("const x = {}1{};\n", "[".repeat(depth), "]".repeat(depth)),
        ),
        (
            Language::Rust,
            format!(
                "fn f() {{\n{}\n{}\n}}\n",
                "{".repeat(depth),
                "}".repeat(depth)
            ),
        ),
        (
            Language::Rust,
            format!("{}{}", "mod m {\n".repeat(5_000), "}\n".repeat(5_000)),
        ),
        (
            Language::Python,
            format!("x = {}1{}\n", "(".repeat(depth), ")".repeat(depth)),
        ),
        (
            Language::C,
            format!(
                "{}int x;\n{}",
                "#ifdef A\n".repeat(3_000),
                "#endif\n".repeat(3_000)
            ),
        ),
        (Language::Markdown, format!("{}deep\n", "> ".repeat(depth))),
        (
            Language::Ruby,
            format!("{}{}", "module M\n".repeat(3_000), "end\n".repeat(3_000)),
        ),
    ];
    for (lang, src) in cases {
        let started = std::time::Instant::now();
        let chunks = chunk_checked(lang, &src, &opts());
        assert!(!chunks.is_empty(), "{lang}");
        assert!(
            started.elapsed().as_secs() < 30,
            "{lang} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn odd_inputs() {
    for &lang in Language::all() {
        assert!(chunk_source(lang, "", &opts()).is_empty());
        assert!(chunk_source(lang, " \n\t\r\n  \n", &opts()).is_empty());
        // CRLF, no trailing newline, multi-byte characters, a long line.
        let src = format!(
            concat!(
                "fn café() {{\r\n    let s = \"日本語 ✓\";\r\n}}\r\n\r\n",
                "// {}\r\nstruct Ünïcode;",
            ),
            "é".repeat(50_000)
        );
        let chunks = chunk_checked(lang, &src, &opts());
        assert!(!chunks.is_empty());
        assert!(chunks.iter().all(|c| !c.text.ends_with('\r')));
    }
    let chunks = chunk_checked(Language::Rust, "fn a() {}", &opts());
    assert_eq!(summary(&chunks), ["L1-1 function a"]);
}

#[test]
fn nonsensical_options_are_clamped() {
    let opts = ChunkOptions {
        max_tokens: 0,
        min_tokens: 10,
        window_lines: 0,
        window_overlap: 5,
    };
    for &(lang, _, src) in FIXTURES {
        let chunks = chunk_source(lang, src, &opts);
        assert!(!chunks.is_empty());
    }
    chunk_checked(Language::Text, "a\nb\nc\n", &opts);
}

#[test]
fn parsers_are_reused_across_calls_and_threads() {
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..5 {
                    for &(lang, _, src) in FIXTURES {
                        assert!(!chunk_source(lang, src, &ChunkOptions::default()).is_empty());
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_never_panics(
        src in "(?s).{0,400}",
        lang in prop::sample::select(vec![
            Language::Rust, Language::Python, Language::JavaScript, Language::Tsx,
            Language::Cpp, Language::Ruby, Language::Elixir, Language::Markdown,
            Language::Toml, Language::Text, Language::Pdf,
        ]),
        max in 1usize..64,
    ) {
        let opts = ChunkOptions { max_tokens: max, min_tokens: max / 4, ..ChunkOptions::default() };
        chunk_checked(lang, &src, &opts);
    }

    #[test]
    fn code_like_text_never_panics(
        parts in prop::collection::vec(prop::sample::select(vec![
            "fn f() {", "}", "class A:", "    def m(self):", "        pass", "impl X {",
            "struct S;", "// c", "#[a]", "\n", "\r\n", "  ", "{", "(", ")", "\"", "'",
            "é", "日本", "# h", "def", "end", "module M", "do", "@doc \"x\"", "#ifdef X",
        ]), 0..120),
        lang in prop::sample::select(vec![
            Language::Rust, Language::Python, Language::JavaScript, Language::TypeScript,
            Language::Go, Language::Java, Language::C, Language::Ruby, Language::Elixir,
            Language::Markdown,
        ]),
    ) {
        let src: String = parts.concat();
        let opts = ChunkOptions { max_tokens: 16, min_tokens: 4, ..ChunkOptions::default() };
        chunk_checked(lang, &src, &opts);
    }
}
