//! Re-indexing: a changed file's new text is found and its old text is not, right after the run;
//! a collection without a file index gets one on its next run.

use aiex_indexer::grep::{CaseMode, GrepMode, GrepRequest};

use super::support::{config, index, matched_lines, pattern_request, search};

fn found(config: &aiex_config::Config, text: &str) -> usize {
    let request = pattern_request(text, GrepMode::Exact, CaseMode::Sensitive);
    matched_lines(&search(config, &request)).len()
}

#[test]
fn a_changed_file_is_searched_as_it_is_now() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("repo");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    let file = root.join("src/lib.rs");
    std::fs::write(&file, "fn parse_config() {}\nfn keep_me() {}\n").expect("write");
    std::fs::write(root.join("src/other.rs"), "fn other() {}\n").expect("write");
    let config = config(&temp.path().join("data"));
    index(&config, &root, "repo");
    assert_eq!(found(&config, "parse_config"), 1);

    std::fs::write(&file, "fn load_settings() {}\nfn keep_me() {}\n").expect("write");
    index(&config, &root, "repo");
    assert_eq!(found(&config, "parse_config"), 0);
    assert_eq!(found(&config, "load_settings"), 1);
    assert_eq!(found(&config, "keep_me"), 1);
    assert_eq!(found(&config, "fn other"), 1);

    std::fs::remove_file(root.join("src/other.rs")).expect("remove");
    index(&config, &root, "repo");
    assert_eq!(found(&config, "fn other"), 0);
}

#[test]
fn a_collection_without_a_file_index_is_backfilled_by_its_next_run() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("repo");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("main.py"), "def parse_config():\n    pass\n").expect("write");
    let config = config(&temp.path().join("data"));
    index(&config, &root, "repo");
    // As if indexed before the file index existed.
    std::fs::remove_dir_all(temp.path().join("data/index/collections/repo/grep")).expect("rm");
    let results = search(&config, &GrepRequest::new("parse_config", GrepMode::Exact));
    assert!(results.files.is_empty());
    assert!(results
        .notes
        .iter()
        .any(|note| note.contains("no file index")));

    let summary = index(&config, &root, "repo");
    assert_eq!(summary.changed, 0);
    assert_eq!(found(&config, "parse_config"), 1);
}

#[test]
fn the_query_language_combines_filters_and_patterns() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("repo");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::create_dir_all(root.join("tests")).expect("mkdir");
    std::fs::write(root.join("src/a.rs"), "fn parse_a() {}\n// todo\n").expect("write");
    std::fs::write(root.join("src/b.py"), "def parse_b():\n    pass\n").expect("write");
    std::fs::write(root.join("tests/c.rs"), "fn parse_c() {}\n").expect("write");
    let config = config(&temp.path().join("data"));
    index(&config, &root, "repo");
    let paths = |query: &str, mode: GrepMode| -> Vec<String> {
        let results = search(&config, &GrepRequest::new(query, mode));
        results.files.into_iter().map(|file| file.path).collect()
    };
    assert_eq!(
        paths("parse_", GrepMode::Exact),
        ["src/a.rs", "src/b.py", "tests/c.rs"]
    );
    assert_eq!(
        paths("lang:rust parse_", GrepMode::Exact),
        ["src/a.rs", "tests/c.rs"]
    );
    assert_eq!(
        paths("-path:tests lang:rust parse_", GrepMode::Exact),
        ["src/a.rs"]
    );
    assert_eq!(
        paths(r"/fn\s+parse_\w+/ -todo", GrepMode::Exact),
        ["tests/c.rs"]
    );
    assert_eq!(
        paths("parse_a OR parse_b", GrepMode::Exact),
        ["src/a.rs", "src/b.py"]
    );
    assert_eq!(paths(r"def\s+\w+", GrepMode::Regex), ["src/b.py"]);
    assert!(paths("repo:nope parse_", GrepMode::Exact).is_empty());
    assert!(paths("case:yes PARSE_", GrepMode::Exact).is_empty());
    assert_eq!(paths("case:no PARSE_A", GrepMode::Exact), ["src/a.rs"]);
}
