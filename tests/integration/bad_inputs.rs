//! Bad inputs give a counted skip or a clear error, and never lose what is already indexed.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use aiex_config::SearchMode;
use aiex_indexer::walk::SkipReason;
use aiex_indexer::{index_directory, Error, IndexRequest};

use crate::support::{index, search};

fn good_repo(root: &Path) {
    aiex_tests::write_files(
        root,
        &[
            ("src/lib.rs", "/// Adds two numbers.\npub fn add_numbers(a: i32, b: i32) -> i32 {\n    a + b\n}\n"),
            ("docs/guide.md", "# Guide\n\n## Setup\n\nInstall the frobnicator first.\n"),
        ],
    );
}

#[test]
fn bad_files_are_skipped_and_counted_without_losing_the_index() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(data.path(), &[("embedding.enabled", "false")]);
    good_repo(repo.path());
    let first = index(&config, repo.path());
    assert_eq!(first.added, 2);

    let root = repo.path();
    // Binary, invalid UTF-8, 50 MB, unparseable, deeply nested.
    std::fs::write(root.join("src/binary.rs"), [0u8, 159, 146, 150, 0, 1, 2]).expect("write");
    std::fs::write(root.join("src/latin1.py"), b"# caf\xe9\n".repeat(200)).expect("write");
    let big = std::fs::File::create(root.join("src/huge.rs")).expect("create");
    big.set_len(50 * 1024 * 1024).expect("sparse 50 MB file");
    std::fs::write(
        root.join("src/broken.rs"),
        "fn {{{{ ((( ]]] impl <<< struct ;;; }}\nlet unique_broken_token = 1;\n",
    )
    .expect("write");
    let nested = format!(
        "const deep = {}1{};\n",
        "[\n".repeat(20_000),
        "]\n".repeat(20_000)
    );
    std::fs::write(root.join("src/nested.js"), nested).expect("write");
    let nested_rs = format!(
        "fn deep_nesting() {{\n{}{}}}\n",
        "{\n".repeat(5_000),
        "}\n".repeat(5_000)
    );
    std::fs::write(root.join("src/nested.rs"), nested_rs).expect("write");
    // Symlinks: a loop, and one pointing outside the root.
    std::fs::write(
        outside.path().join("secret.rs"),
        "pub fn outside_secret() {}\n",
    )
    .expect("write");
    std::os::unix::fs::symlink(outside.path().join("secret.rs"), root.join("src/escape.rs"))
        .expect("symlink");
    std::os::unix::fs::symlink(root.join("loop_b"), root.join("loop_a")).expect("symlink");
    std::os::unix::fs::symlink(root.join("loop_a"), root.join("loop_b")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), root.join("outside_dir")).expect("symlink");
    // Unreadable (where permissions apply: not when the tests run as root).
    let unreadable = root.join("src/unreadable.rs");
    std::fs::write(&unreadable, "pub fn hidden_by_permissions() {}\n").expect("write");
    let mut permissions = std::fs::metadata(&unreadable).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o000);
    std::fs::set_permissions(&unreadable, permissions).expect("chmod");
    let permissions_apply = std::fs::read(&unreadable).is_err();

    let second = index(&config, repo.path());
    let skipped = |reason| second.skipped.get(&reason).copied().unwrap_or(0);
    assert_eq!(skipped(SkipReason::Binary), 1, "{second:?}");
    assert_eq!(skipped(SkipReason::InvalidUtf8), 1, "{second:?}");
    assert_eq!(skipped(SkipReason::TooLarge), 1, "{second:?}");
    assert_eq!(skipped(SkipReason::Symlink), 4, "{second:?}");
    if permissions_apply {
        assert_eq!(skipped(SkipReason::Unreadable), 1, "{second:?}");
    }
    // Unparseable and deeply nested files are still indexed (line windows as a fallback).
    assert_eq!(second.deleted, 0);
    assert!(
        second.added >= 3,
        "broken.rs, nested.js, nested.rs: {second:?}"
    );
    let hits = search(&config, "unique_broken_token", SearchMode::Keyword);
    assert_eq!(hits[0].path, "src/broken.rs");
    assert!(search(&config, "outside_secret", SearchMode::Keyword).is_empty());
    // What was indexed before is still there.
    assert_eq!(
        search(&config, "add_numbers", SearchMode::Keyword)[0].path,
        "src/lib.rs"
    );
    assert_eq!(
        search(&config, "frobnicator", SearchMode::Keyword)[0].path,
        "docs/guide.md"
    );
}

#[test]
fn bad_requests_are_clear_errors() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(data.path(), &[("embedding.enabled", "false")]);
    good_repo(repo.path());
    let cancel = AtomicBool::new(false);
    let run = |request: IndexRequest| index_directory(&config, request, &mut |_| {}, &cancel);

    let missing = run(IndexRequest::new(repo.path().join("does-not-exist")));
    assert!(matches!(missing, Err(Error::NotADirectory { .. })));
    let file = run(IndexRequest::new(repo.path().join("src/lib.rs")));
    assert!(matches!(file, Err(Error::NotADirectory { .. })));
    let mut bad_name = IndexRequest::new(repo.path());
    bad_name.name = Some("../escape".into());
    assert!(matches!(
        run(bad_name),
        Err(Error::InvalidCollectionName { .. })
    ));

    let mut named = IndexRequest::new(repo.path());
    named.name = Some("shared".into());
    run(named).expect("index");
    let other = tempfile::tempdir().expect("tempdir");
    good_repo(other.path());
    let mut clash = IndexRequest::new(other.path());
    clash.name = Some("shared".into());
    let err = run(clash).expect_err("same name, other root");
    assert!(matches!(err, Error::CollectionRootMismatch { .. }));
    assert!(err.is_user_error());

    // A missing model is a clear error naming the setup command, not a panic.
    let no_model = aiex_tests::config(
        data.path(),
        &[
            ("embedding.model_dir", "/nonexistent/model"),
            ("embedding.enabled", "true"),
        ],
    );
    let mut request = IndexRequest::new(other.path());
    request.name = Some("needs-model".into());
    let err = index_directory(&no_model, request, &mut |_| {}, &cancel).expect_err("model missing");
    assert!(err.to_string().contains("scripts/setup"), "{err}");
    // ...and the keyword side of that run is committed and searchable all the same.
    let hits = search(&no_model, "add_numbers", SearchMode::Keyword);
    assert!(hits.iter().any(|hit| hit.collection == "needs-model"));
}

#[test]
fn failed_rebuild_loses_nothing_and_searches_degrade() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let config = aiex_tests::config(data.path(), &[]);
    good_repo(repo.path());
    let first = index(&config, repo.path());
    assert!(first.vectors_complete);

    // An invalid glob fails the run before anything on disk is touched, even with --rebuild.
    let bad_glob = aiex_tests::config(data.path(), &[("index.include", "[\"src/[\"]")]);
    let cancel = AtomicBool::new(false);
    let mut rebuild = IndexRequest::new(repo.path());
    rebuild.rebuild = true;
    let err = index_directory(&bad_glob, rebuild, &mut |_| {}, &cancel).expect_err("bad glob");
    assert!(matches!(err, Error::InvalidGlob { .. }), "{err}");
    assert_eq!(
        search(&config, "add_numbers", SearchMode::Hybrid)[0].path,
        "src/lib.rs"
    );

    // Keyword searches do not take the vector store, so an indexing run can embed meanwhile.
    let searcher = aiex_indexer::Searcher::open(&config, &[]).expect("open");
    std::fs::write(
        repo.path().join("src/more.rs"),
        "pub fn more_numbers() -> u8 { 7 }\n",
    )
    .expect("write");
    let second = index(&config, repo.path());
    assert_eq!((second.added, second.embedded), (1, 1));
    let hits = searcher
        .search(&aiex_indexer::SearchRequest::new(
            "add_numbers",
            SearchMode::Keyword,
            5,
        ))
        .expect("keyword search");
    assert_eq!(hits.hits[0].path, "src/lib.rs");
    drop(searcher);

    // Hybrid search without a usable model falls back to keywords and says why.
    let no_model = aiex_tests::config(
        data.path(),
        &[("embedding.model_dir", "/nonexistent/model")],
    );
    let searcher = aiex_indexer::Searcher::open(&no_model, &[]).expect("open");
    let results = searcher
        .search(&aiex_indexer::SearchRequest::new(
            "add_numbers",
            SearchMode::Hybrid,
            5,
        ))
        .expect("hybrid degrades");
    assert_eq!(results.hits[0].path, "src/lib.rs");
    assert!(
        results
            .vectors_unavailable
            .iter()
            .any(|(_, reason)| reason.contains("scripts/setup")),
        "{:?}",
        results.vectors_unavailable
    );
    // ...while a vector-only search is a clear error.
    assert!(searcher
        .search(&aiex_indexer::SearchRequest::new(
            "add_numbers",
            SearchMode::Vector,
            5
        ))
        .is_err());
}
