//! Tests of the HTML chunker: extraction rules on small pages, line mapping,
//! robustness, and snapshots of real documentation pages.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::tests::{chunk_checked, opts, source_lines, summary};
use super::*;

/// Invariants of HTML chunks: valid, ordered line ranges whose byte range is
/// exactly those lines, non-blank text, and the token budget (only a single
/// code line may exceed it on its own).
pub(super) fn check_html(src: &str, chunks: &[RawChunk], opts: &ChunkOptions) {
    let lines = source_lines(src);
    let mut previous_start = 0;
    for chunk in chunks {
        assert!(
            chunk.start_line >= 1 && chunk.start_line <= chunk.end_line,
            "{chunk:?}"
        );
        assert!((chunk.end_line as usize) <= lines.len().max(1), "{chunk:?}");
        assert!(chunk.start_line >= previous_start, "unordered {chunk:?}");
        previous_start = chunk.start_line;
        let first = chunk.start_line as usize - 1;
        let last = chunk.end_line as usize - 1;
        let markup = src.get(chunk.start_byte..chunk.end_byte).unwrap();
        let first_line = lines.get(first).copied().unwrap_or("");
        let last_line = lines.get(last).copied().unwrap_or("");
        assert!(markup.starts_with(first_line), "first line of {chunk:?}");
        assert!(markup.ends_with(last_line), "last line of {chunk:?}");
        assert_eq!(markup.matches('\n').count(), last - first, "{chunk:?}");
        assert!(!chunk.text.trim().is_empty(), "blank chunk {chunk:?}");
        let tokens = estimate_tokens(&chunk.text);
        let single_code_line = chunk.text.starts_with("```")
            && chunk
                .text
                .lines()
                .filter(|line| !line.starts_with("```") && !line.trim().is_empty())
                .count()
                == 1;
        assert!(
            tokens <= opts.max_tokens || single_code_line,
            "{tokens} tokens in {chunk:?}"
        );
    }
}

const BOOK: &str = include_str!("../../tests/fixtures/chunk/book_shared_state.html");
const MUTEX: &str = include_str!("../../tests/fixtures/chunk/rustdoc_mutex.html");
const SYNC: &str = include_str!("../../tests/fixtures/chunk/rustdoc_sync_index.html");

/// Real documentation pages from Debian's rust-doc 1.63: an mdBook chapter, a
/// rustdoc struct page and a rustdoc module page.
const PAGES: &[(&str, &str)] = &[
    ("html_book_shared_state", BOOK),
    ("html_rustdoc_mutex", MUTEX),
    ("html_rustdoc_sync_index", SYNC),
];

fn html(src: &str) -> Vec<RawChunk> {
    chunk_checked(Language::Html, src, &opts())
}

fn html_within(src: &str, max_tokens: usize, min_tokens: usize) -> Vec<RawChunk> {
    let opts = ChunkOptions {
        max_tokens,
        min_tokens,
        ..ChunkOptions::default()
    };
    chunk_checked(Language::Html, src, &opts)
}

/// Every chunk's text, in order.
fn all_text(chunks: &[RawChunk]) -> String {
    chunks
        .iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Each chunk's summary line followed by its text.
fn rendered(chunks: &[RawChunk]) -> String {
    chunks
        .iter()
        .zip(summary(chunks))
        .map(|(chunk, line)| format!("=== {line}\n{}\n", chunk.text))
        .collect()
}

fn page(title: &str, body: &str) -> String {
    format!("<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n<body>\n{body}\n</body></html>\n")
}

// ---------------------------------------------------------------------------
// Sections and heading paths

const GUIDE: &str = "\
<!DOCTYPE html>
<html><head><title>Guide - Docs</title></head><body>
<main>
<p>Welcome to the documentation of the tool.</p>
<h1>Guide</h1>
<p>How to use the tool.</p>
<h2>Install</h2>
<p>Download the archive and unpack it.</p>
<h3>From source</h3>
<p>Clone the repository and build it.</p>
<h2>Usage</h2>
<p>Run the tool on a directory.</p>
</main>
<footer>Copyright</footer>
</body></html>
";

#[test]
fn headings_open_sections_with_paths() {
    let chunks = html_within(GUIDE, 16, 0);
    assert_eq!(
        summary(&chunks),
        [
            "L4-4 section Guide - Docs",
            "L5-6 section Guide",
            "L7-8 section Install (Guide)",
            "L9-10 section From source (Guide > Install)",
            "L11-12 section Usage (Guide)",
        ]
    );
    assert_eq!(chunks[0].text, "Welcome to the documentation of the tool.");
    assert_eq!(
        chunks[2].text,
        "## Install\n\nDownload the archive and unpack it."
    );
    assert_eq!(
        chunks[3].text,
        "### From source\n\nClone the repository and build it."
    );
}

#[test]
fn small_page_is_one_section() {
    let chunks = html(GUIDE);
    // The tiny intro merges into the page's only top-level section.
    assert_eq!(summary(&chunks), ["L4-12 section Guide"]);
    assert!(chunks[0].text.starts_with("Welcome to the documentation"));
    assert!(chunks[0].text.contains("\n\n# Guide\n\n"));
    assert!(chunks[0].text.ends_with("Run the tool on a directory."));
    assert!(!chunks[0].text.contains("Copyright"));
}

#[test]
fn subtree_that_fits_stays_with_its_heading() {
    let chunks = html_within(GUIDE, 40, 0);
    assert_eq!(
        summary(&chunks),
        [
            "L4-4 section Guide - Docs",
            "L5-6 section Guide",
            "L7-10 section Install (Guide)",
            "L11-12 section Usage (Guide)",
        ]
    );
    assert!(chunks[2].text.contains("### From source"));
}

#[test]
fn page_without_h1_is_headed_by_its_title() {
    let body = "<h2>Setup</h2><p>Prepare the machine for the install.</p>\n\
                <h3>Linux</h3><p>Install the packages with apt.</p>";
    let chunks = html_within(&page("Tutorial - Site", body), 12, 0);
    assert_eq!(
        summary(&chunks),
        [
            "L4-4 section Setup (Tutorial - Site)",
            "L5-5 section Linux (Tutorial - Site > Setup)",
        ]
    );
    // A title that repeats the top heading is not repeated in the path.
    let chunks = html_within(&page("Setup - Site", body), 12, 0);
    assert_eq!(
        summary(&chunks),
        [
            "L4-4 section Setup (Setup - Site)",
            "L5-5 section Linux (Setup)",
        ]
    );
}

#[test]
fn intro_without_title_is_a_preamble() {
    let src = "<body><p>Loose words before any heading at all.</p>\n\
               <h2>Part</h2><p>Some more words in the part.</p></body>";
    let chunks = html_within(src, 12, 0);
    assert_eq!(summary(&chunks), ["L1-1 preamble", "L2-2 section Part"]);
    // Without a <title>, the first h1 names the intro.
    let src = "<body><p>Loose words before any heading at all.</p>\n\
               <h1>Manual</h1><p>Some more words in the manual.</p></body>";
    let chunks = html_within(src, 12, 0);
    assert_eq!(
        summary(&chunks),
        ["L1-1 section Manual", "L2-2 section Manual"]
    );
}

#[test]
fn tiny_sections_merge_under_the_same_parent() {
    let body = "<h1>API</h1>\n<p>Overview of the whole interface and its parts.</p>\n\
                <h2>open</h2>\n<p>Opens.</p>\n<h2>close</h2>\n<p>Closes it again after use.</p>\n\
                <h2>read</h2>\n<p>Reads bytes from the handle into the buffer, blocking until \
                data is available or the end of the stream is reached.</p>\n";
    let chunks = html_within(&page("API", body), 40, 12);
    assert_eq!(
        summary(&chunks),
        [
            "L4-5 section API",
            "L6-9 section close (API)",
            "L10-11 section read (API)",
        ]
    );
    assert_eq!(
        chunks[1].text,
        "## open\n\nOpens.\n\n## close\n\nCloses it again after use."
    );
}

#[test]
fn long_sections_split_within_budget() {
    let sentence = "The quick brown fox jumps over the lazy dog again and again. ";
    let body = format!(
        "<h1>Story</h1>\n<p>{}</p>\n<p>{}</p>\n",
        sentence.repeat(30),
        sentence.repeat(3)
    );
    let src = page("Story", &body);
    let chunks = html_within(&src, 50, 0);
    assert!(chunks.len() > 5, "{:?}", summary(&chunks));
    assert!(chunks
        .iter()
        .all(|c| c.symbol.as_deref() == Some("Story") && estimate_tokens(&c.text) <= 50));
    // Cut between sentences, nothing lost.
    assert!(chunks[1..]
        .iter()
        .all(|c| c.text.starts_with("The quick") && c.text.ends_with("again.")));
    let words: Vec<String> = chunks
        .iter()
        .flat_map(|c| c.text.split_whitespace().map(str::to_owned))
        .collect();
    let expected: Vec<String> = format!("# Story {}", sentence.repeat(33))
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(words, expected);
}

// ---------------------------------------------------------------------------
// Text extraction

#[test]
fn inline_text_is_joined_and_whitespace_collapsed() {
    let body = "<p>Hello,\n   <em>big</em>\t<a href=\"x.html\">world</a>&nbsp;!</p>\
                <p>line one<br>line   two</p><div>block<span> inline </span>end</div>";
    let chunks = html(&page("T", body));
    assert_eq!(
        chunks[0].text,
        "Hello, big world !\n\nline one\nline two\n\nblock inline end"
    );
}

#[test]
fn lists_tables_and_definitions() {
    let body = "<ul><li>One</li><li>Two<ul><li>Nested</li></ul></li></ul>\
                <ol><li><p>First paragraph</p><p>Second paragraph</p></li></ol>\
                <table><tr><th>Name</th><th>Value</th></tr><tr><td>a</td><td></td><td>1</td></tr></table>\
                <dl><dt>Term</dt><dd>Definition</dd></dl>";
    let chunks = html(&page("T", body));
    assert_eq!(
        chunks[0].text,
        "- One\n- Two\n  - Nested\n\n\
         - First paragraph\n  Second paragraph\n\n\
         Name | Value\na | 1\n\n\
         Term\n: Definition"
    );
}

#[test]
fn code_blocks_are_verbatim_and_fenced() {
    let body = "<h1>Code</h1>\n<p>Example:</p>\n\
                <pre><code class=\"language-rust\">fn main() {\n    println!(\"&lt;hi&gt;\");\n}\n</code></pre>\n\
                <div class=\"highlight-python notranslate\"><div class=\"highlight\"><pre><span></span>\
                <span class=\"k\">def</span> <span class=\"nf\">f</span>():\n    <span class=\"k\">pass</span>\n</pre></div></div>\n\
                <pre>Fenced ```inside``` text\n  indented</pre>\n\
                <p>Inline <code>let x = 1;</code> stays inline.</p>\n\
                <code>first line\nsecond line</code>\n";
    let chunks = html(&page("T", body));
    assert_eq!(
        chunks[0].text,
        "# Code\n\nExample:\n\n\
         ```rust\nfn main() {\n    println!(\"<hi>\");\n}\n```\n\n\
         ```python\ndef f():\n    pass\n```\n\n\
         ````\nFenced ```inside``` text\n  indented\n````\n\n\
         Inline let x = 1; stays inline.\n\n\
         ```\nfirst line\nsecond line\n```"
    );
}

#[test]
fn long_code_blocks_split_between_lines() {
    let code: Vec<String> = (0..60)
        .map(|i| format!("    let value_{i} = compute({i}, \"text\");"))
        .collect();
    let body = format!(
        "<h1>Listing</h1>\n<pre><code class=\"language-rust\">fn main() {{\n{}\n}}</code></pre>\n",
        code.join("\n")
    );
    let src = page("Listing", &body);
    let chunks = html_within(&src, 60, 0);
    assert!(chunks.len() > 3, "{:?}", summary(&chunks));
    let mut lines_seen = Vec::new();
    for chunk in &chunks {
        let code_lines: Vec<&str> = chunk
            .text
            .lines()
            .skip_while(|line| !line.starts_with("```"))
            .collect();
        assert_eq!(code_lines.first(), Some(&"```rust"), "{chunk:?}");
        assert_eq!(code_lines.last(), Some(&"```"), "{chunk:?}");
        let inner = &code_lines[1..code_lines.len() - 1];
        // The chunk starts on the source line of its first code line.
        let first_source_line = src.lines().nth(chunk.start_line as usize - 1).unwrap();
        if chunk.text.starts_with("```") {
            assert!(first_source_line.ends_with(inner[0]), "{chunk:?}");
        }
        lines_seen.extend(inner.iter().map(|l| l.to_string()));
    }
    let mut expected = vec!["fn main() {".to_owned()];
    expected.extend(code);
    expected.push("}".to_owned());
    assert_eq!(lines_seen, expected);
}

#[test]
fn chrome_is_dropped() {
    let src = "<!DOCTYPE html><html class=\"sidebar-visible\"><head><title>Doc</title>\
        <style>p { color: red } CHROME</style><script>var CHROME = 1;</script></head>\n\
        <body class=\"has-sidebar\">\n\
        <header class=\"site-header\">CHROME header <a href=\"/\">home</a></header>\n\
        <nav>CHROME nav</nav>\n\
        <div class=\"sphinxsidebar\">CHROME sidebar</div>\n\
        <div class=\"md-sidebar md-sidebar--primary\">CHROME md sidebar</div>\n\
        <div id=\"toc\">CHROME toc</div>\n\
        <ol class=\"breadcrumb\"><li>CHROME crumbs</li></ol>\n\
        <rustdoc-search>CHROME search</rustdoc-search>\n\
        <div role=\"navigation\">CHROME role</div>\n\
        <div class=\"content\">\n\
        <h1>Title<a class=\"headerlink\" href=\"#t\" title=\"Link\">¶</a></h1>\n\
        <p>KEEP one<span aria-hidden=\"true\">CHROME icon</span>.</p>\n\
        <div hidden>CHROME hidden</div>\n\
        <form><input value=\"CHROME\"><button>CHROME button</button></form>\n\
        <noscript>CHROME noscript</noscript><template><p>CHROME template</p></template>\n\
        <svg><text>CHROME svg</text></svg>\n\
        <p>KEEP two <a href=\"javascript:void(0)\">CHROME js</a><a class=\"anchor\" href=\"#x\">§</a></p>\n\
        <div class=\"sidebar-state-open\"><p>KEEP state classes</p></div>\n\
        <aside>CHROME aside</aside>\n\
        </div>\n\
        <footer>CHROME footer</footer>\n\
        </body></html>\n";
    let chunks = html(src);
    let text = all_text(&chunks);
    assert!(!text.contains("CHROME"), "{text}");
    assert!(!text.contains('¶') && !text.contains('§'), "{text}");
    assert_eq!(
        text,
        "# Title\n\nKEEP one.\n\nKEEP two\n\nKEEP state classes"
    );
    assert_eq!(summary(&chunks), ["L12-20 section Title"]);
}

#[test]
fn main_content_is_preferred() {
    let cases = [
        "<div>OUTSIDE</div><main><p>INSIDE</p></main><div>OUTSIDE</div>",
        "<div>OUTSIDE</div><div role=\"main\"><p>INSIDE</p></div>",
        "<div>OUTSIDE</div><section id=\"main-content\"><p>INSIDE</p></section>",
        "<div>OUTSIDE</div><article><p>INSIDE</p></article>",
        "<div>OUTSIDE</div><div class=\"body content\"><p>INSIDE</p></div>",
        "<div>OUTSIDE</div><div id=\"content\"><p>INSIDE</p></div>",
        // An empty <main> does not hide the text elsewhere.
        "<main><nav>menu</nav></main><div>INSIDE</div>",
    ];
    for body in cases {
        let chunks = html(&page("T", body));
        assert_eq!(all_text(&chunks), "INSIDE", "{body}");
    }
}

#[test]
fn heading_noise_is_removed() {
    let cases = [
        (
            "<h2 id=\"x\">Title<a class=\"headerlink\" href=\"#x\">¶</a></h2>",
            "Title",
        ),
        (
            "<h2><a href=\"#y\" class=\"doc-anchor\">§</a>Examples</h2>",
            "Examples",
        ),
        ("<h2>§ Usage ¶</h2>", "Usage"),
        ("<h2># Hash</h2>", "Hash"),
        ("<h2>C#</h2>", "C#"),
        ("<h2>§Glued</h2>", "Glued"),
        (
            "<h1>Struct <a>Foo</a>&nbsp;<button id=\"copy-path\">Copy item path</button></h1>",
            "Struct Foo",
        ),
        ("<h1>Trait Bar Copy item path</h1>", "Trait Bar"),
        (
            "<h3 class=\"code-header\">impl&lt;T&gt; <a>Mutex</a>&lt;T&gt;</h3>",
            "impl<T> Mutex<T>",
        ),
    ];
    for (heading, expected) in cases {
        let chunks = html(&page("T", &format!("{heading}<p>text</p>")));
        assert_eq!(chunks[0].symbol.as_deref(), Some(expected), "{heading}");
    }
    // A heading without text opens no section.
    let chunks = html_within(
        &page("T", "<p>before the heading</p><h2>¶</h2><p>after</p>"),
        8,
        0,
    );
    assert_eq!(all_text(&chunks), "before the heading\n\nafter");
}

// ---------------------------------------------------------------------------
// Source lines

#[test]
fn headings_are_located_past_raw_text_and_comments() {
    let src = "<html><head><script>var s = \"<h2>fake</h2>\";</script>\n\
               <!-- <h2>commented</h2> --><style>h2::before { content: \"<h2>\" }</style></head>\n\
               <body><textarea><h2>raw</h2></textarea>\n\
               <H2 CLASS=\"x\"\n    title=\"a > b\">Real one</H2>\n\
               <p>Text of the first section.</p>\n\
               <noscript><h2>no script</h2></noscript>\n\
               <h2>Real two</h2><p>Text of the second section.</p>\n\
               <p>More text.</p>\n\
               </body></html>";
    let chunks = html_within(src, 20, 0);
    assert_eq!(
        summary(&chunks),
        ["L4-7 section Real one", "L8-9 section Real two"]
    );
}

#[test]
fn sections_end_before_the_next_one_and_at_the_content() {
    let src = "<html><body>\n<main>\n\n<h2>A</h2>\n<p>Alpha text.</p>\n\n\n<h2>B</h2>\n<p>Beta text.</p>\n\n</main>\n\
               <nav>\n<a href=\"x\">x</a>\n</nav>\n</body></html>\n";
    let chunks = html_within(src, 6, 0);
    assert_eq!(summary(&chunks), ["L4-5 section A", "L8-9 section B"]);
}

#[test]
fn text_without_markup_spans_the_whole_file() {
    let src = "Just some words\nover two lines\n";
    let chunks = html(src);
    assert_eq!(summary(&chunks), ["L1-2 preamble"]);
    assert_eq!(chunks[0].text, "Just some words over two lines");
}

#[test]
fn pages_without_content_give_no_chunks() {
    for src in [
        "",
        "  \n",
        "<html><body></body></html>",
        "<!DOCTYPE html><html><head><title>Only a title</title></head></html>",
        "<nav>menu</nav><footer>foot</footer>",
        "<script>let x = 1;</script><style>p {}</style>",
        "<!-- nothing -->",
    ] {
        assert!(html(src).is_empty(), "{src:?}");
    }
}

// ---------------------------------------------------------------------------
// Robustness

#[test]
fn malformed_markup_never_panics() {
    let cases = [
        "<h1",
        "<h1>unclosed heading",
        "</h2>stray end tag",
        "<<<>>> < > </ > <!> <? ?>",
        "<!--",
        "<![CDATA[ x",
        "<p><div></p></div><h2>x</h3>",
        "<table><h2>in table</h2><td>cell<tr>row</table>",
        "<select><h2>ignored</h2><option>o</select><h2>real</h2>",
        "<h1><h2>nested</h2></h1>",
        "<pre>\n\n\n</pre><pre></pre><code>\n</code>",
        "<a href='unterminated>text",
        "<ul><li><ul><li><ul><li>deep</li></ul></li></ul></li></ul>",
        "<plaintext><h1>not a heading",
        "\u{0}\u{1}<h1>\u{2}nul\u{0}</h1>\u{7f}",
        "<h1>Ünïcödé 日本語 ✓</h1><p>é\r\ntext\r\n</p>\r\n",
    ];
    for src in cases {
        for (max, min) in [(256, 32), (8, 2), (1, 0)] {
            html_within(src, max, min);
        }
    }
}

#[test]
fn binary_garbage_never_panics() {
    let mut state = 0x2545_f491_u32;
    let bytes: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    let src = String::from_utf8_lossy(&bytes);
    html(&src);
    html_within(&src, 16, 4);
}

#[test]
fn deep_nesting_falls_back_to_text_windows() {
    let started = std::time::Instant::now();
    let src = format!("{}<p>deep &amp; text</p>", "<div>".repeat(100_000));
    let chunks = html(&src);
    assert_eq!(summary(&chunks), ["L1-1 block"]);
    assert_eq!(chunks[0].text, "deep & text");
    // Moderate nesting is parsed, and stays fast.
    let src = format!("{}{}", "<div>".repeat(400), "<p>x".repeat(20_000));
    let chunks = html(&src);
    assert!(chunks.iter().all(|c| c.kind == ChunkKind::Preamble));
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

#[test]
fn huge_pages_fall_back_to_text_windows() {
    let item = "<h2>Title</h2>\n<p>words &amp; more words, <b>bold</b> &#x263A;</p>\n";
    let src = format!(
        "<html><head><script>{}</script></head><body>\n{}</body></html>\n",
        "var x = '<p>hidden</p>';\n".repeat(100),
        item.repeat(5 * 1024 * 1024 / item.len())
    );
    assert!(src.len() > html::MAX_PARSE_BYTES);
    let started = std::time::Instant::now();
    let chunks = html(&src);
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    assert!(chunks.len() > 100);
    assert!(chunks.iter().all(|c| c.kind == ChunkKind::Block));
    assert_eq!(chunks[0].start_line, 102);
    assert!(chunks[0]
        .text
        .starts_with("Title\n\nwords & more words, bold ☺\n\nTitle"));
    assert!(chunks.iter().all(|c| !c.text.contains('<')));
    assert!(chunks.windows(2).all(|w| w[0].end_line < w[1].start_line));
}

#[test]
fn real_pages_stay_valid_under_other_budgets() {
    for &(_, src) in PAGES {
        for (max, min) in [(24, 8), (64, 16), (1, 0), (100_000, 50_000)] {
            html_within(src, max, min);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_never_panics(src in "(?s).{0,400}", max in 1usize..64) {
        html_within(&src, max, max / 4);
    }

    #[test]
    fn tag_soup_never_panics(
        parts in prop::collection::vec(prop::sample::select(vec![
            "<h1>", "</h1>", "<h2 id=x>", "</h2>", "<h3>", "<p>", "</p>", "<div>", "</div>",
            "<pre>", "</pre>", "<code>", "</code>", "<ul>", "<li>", "</ul>", "<table>", "<td>",
            "<nav>", "</nav>", "<main>", "</main>", "<script>", "</script>", "<!--", "-->",
            "<a href=\"../x.html#y\">", "</a>", "<br>", "&amp;", "&#0;", "\n", "  ", "text",
            "more words", "é", "日本", "§", "¶", "<", ">", "\"", "'", "<title>", "</title>",
        ]), 0..120),
        max in 1usize..48,
    ) {
        let src: String = parts.concat();
        html_within(&src, max, max / 4);
    }
}

// ---------------------------------------------------------------------------
// Real pages

#[test]
fn real_pages_match_snapshots() {
    for &(name, src) in PAGES {
        let chunks = html(src);
        insta::with_settings!({
            prepend_module_to_snapshot => false,
            snapshot_path => "snapshots",
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, rendered(&chunks));
        });
    }
}

#[test]
fn real_pages_keep_docs_and_drop_chrome() {
    let chrome = [
        "Light (default)",
        "Print this book",
        "Search this book",
        "Previous chapter",
        "Click or press",
        "Change settings",
        "Expand description",
        "Copy item path",
        "In std::sync",
        "[−]",
        "· source",
    ];
    for &(name, src) in PAGES {
        let text = all_text(&html(src));
        for noise in chrome {
            assert!(!text.contains(noise), "{name}: {noise}");
        }
        // rustdoc's "Run" buttons on examples.
        assert!(!text.lines().any(|line| line.ends_with("Run")), "{name}");
    }
    let book = html(BOOK);
    let symbols: Vec<&str> = book.iter().filter_map(|c| c.symbol.as_deref()).collect();
    assert!(symbols.contains(&"Atomic Reference Counting with Arc<T>"));
    assert!(all_text(&book)
        .contains("```rust\nuse std::sync::Mutex;\n\nfn main() {\n    let m = Mutex::new(5);"));
    let mutex = html(MUTEX);
    let lock = mutex
        .iter()
        .find(|c| {
            c.symbol.as_deref() == Some("pub fn lock(&self) -> LockResult<MutexGuard<'_, T>>")
        })
        .unwrap();
    assert_eq!(
        lock.parent.as_deref(),
        Some("Struct std::sync::Mutex > Implementations > impl<T: ?Sized> Mutex<T>")
    );
    assert!(lock
        .text
        .contains("Acquires a mutex, blocking the current thread"));
    let line = MUTEX.lines().nth(lock.start_line as usize - 1).unwrap();
    assert!(line.contains("id=\"method.lock\""), "{line}");
}
