//! The hybrid mode's literal-match boost on a real index: a quoted phrase or an identifier held
//! verbatim outranks chunks that only repeat its words.

use aiex_config::SearchMode;

use crate::support::{index, search};

#[test]
fn quoted_phrases_and_identifiers_rank_verbatim_holders_first() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    aiex_tests::write_files(
        repo.path(),
        &[
            (
                "src/words.rs",
                "// parse parse parse: config config config, file file file\npub fn parse_all() -> u8 {\n    1\n}\n",
            ),
            (
                "src/phrase.rs",
                "// the loader will parse config file contents once\npub fn load() -> u8 {\n    2\n}\n",
            ),
            (
                "src/ident.rs",
                "pub fn setup() -> u8 {\n    let settings = read_settings();\n    settings\n}\n",
            ),
            (
                "src/split.rs",
                "// read the settings: read them, settings first, read settings again\npub fn other() -> u8 {\n    3\n}\n",
            ),
        ],
    );
    let config = aiex_tests::config(data.path(), &[("embedding.enabled", "false")]);
    index(&config, repo.path());

    // Keywords alone favour the file that repeats the words.
    let keyword = search(&config, "\"parse config file\"", SearchMode::Keyword);
    assert_eq!(keyword[0].path, "src/words.rs", "{keyword:?}");
    // Hybrid ranks the verbatim phrase first.
    let hybrid = search(&config, "\"parse config file\"", SearchMode::Hybrid);
    assert_eq!(hybrid[0].path, "src/phrase.rs", "{hybrid:?}");
    assert!(hybrid.iter().any(|hit| hit.path == "src/words.rs"));

    // The same for an identifier.
    let hybrid = search(&config, "where is read_settings", SearchMode::Hybrid);
    assert_eq!(hybrid[0].path, "src/ident.rs", "{hybrid:?}");
    // A plain-word query gets no boost: hybrid keeps the keyword order.
    let plain = search(&config, "parse config file", SearchMode::Hybrid);
    let plain_keyword = search(&config, "parse config file", SearchMode::Keyword);
    let paths = |hits: &[aiex_indexer::SearchHit]| -> Vec<String> {
        hits.iter().map(|hit| hit.path.clone()).collect()
    };
    assert_eq!(paths(&plain), paths(&plain_keyword));
}
