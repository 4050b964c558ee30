//! `sym:`: matching lines restricted to the chunks whose symbol matches.

use std::collections::BTreeSet;
use std::time::Duration;

use aiex_indexer::grep::{GrepMode, GrepRequest};

use super::support::{config, index, matched_lines, search};

fn lines(config: &aiex_config::Config, query: &str) -> BTreeSet<(String, u64)> {
    let mut request = GrepRequest::new(query, GrepMode::Exact);
    request.max_lines = usize::MAX;
    request.time_budget = Duration::from_secs(600);
    matched_lines(&search(config, &request))
}

#[test]
fn sym_keeps_the_lines_inside_matching_symbols() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("repo");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::write(
        root.join("src/lib.rs"),
        "pub fn parse_config(text: &str) -> usize {\n    let width = text.len();\n    width\n}\n\npub fn render_page(width: usize) -> String {\n    let width = width * 2;\n    \"x\".repeat(width)\n}\n",
    )
    .expect("write");
    std::fs::write(
        root.join("src/other.rs"),
        "pub fn ParseHeader(width: u8) -> u8 {\n    width\n}\n",
    )
    .expect("write");
    let mut config = config(&temp.path().join("data"));
    // Each function its own chunk (small neighbours would merge under one symbol).
    config.chunk.min_tokens = 1;
    index(&config, &root, "repo");

    let all = lines(&config, "width");
    assert!(all.len() >= 7, "{all:?}");
    let path = |p: &str, n: u64| (p.to_string(), n);
    // Smart case: a lower-case value matches `ParseHeader` too.
    assert_eq!(
        lines(&config, "width sym:parse"),
        BTreeSet::from([
            path("src/lib.rs", 2),
            path("src/lib.rs", 3),
            path("src/other.rs", 1),
            path("src/other.rs", 2),
        ])
    );
    // A capital makes it case-sensitive; the value is a regex.
    assert_eq!(
        lines(&config, "width sym:Parse"),
        BTreeSet::from([path("src/other.rs", 1), path("src/other.rs", 2)])
    );
    assert_eq!(
        lines(&config, "width sym:^render_"),
        BTreeSet::from([
            path("src/lib.rs", 6),
            path("src/lib.rs", 7),
            path("src/lib.rs", 8),
        ])
    );
    assert!(lines(&config, "width sym:nothing_like_this").is_empty());
    // Every line found with `sym:` is found without it.
    assert!(lines(&config, "width sym:parse").is_subset(&all));
}
