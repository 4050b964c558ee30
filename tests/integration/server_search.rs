//! Search in server mode answered by Qdrant alone: keyword (BM25 sparse vectors) and hybrid (one
//! fused query) against the embedded engines on the same fixture, keyword-only (`--no-embed`)
//! runs, and chunks read back from payloads without a local keyword index.
//!
//! Without a server each test prints `SKIPPED: no Qdrant server …` and returns early.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use aiex_config::{Config, SearchMode};
use aiex_indexer::{index_directory, IndexDir, IndexRequest, SearchRequest, Searcher};
use aiex_tests::qdrant::TestQdrant;

use crate::server_store::{assert_converged, write_repo, QUERIES};

/// Top-10 (path, start line) of `query` in `mode`.
fn top10(searcher: &Searcher, query: &str, mode: SearchMode) -> Vec<(String, u32)> {
    searcher
        .search(&SearchRequest::new(query, mode, 10))
        .expect("search")
        .hits
        .into_iter()
        .map(|hit| (hit.path, hit.start_line))
        .collect()
}

fn index(config: &Config, root: &std::path::Path, name: &str, embed: bool) {
    let cancel = AtomicBool::new(false);
    let mut request = IndexRequest::new(root);
    request.name = Some(name.to_string());
    request.embed = embed;
    index_directory(config, request, &mut |_| {}, &cancel).expect("indexing succeeds");
}

#[test]
fn server_keyword_and_hybrid_match_embedded() {
    let Some(qdrant) = TestQdrant::get("server_keyword_and_hybrid_match_embedded") else {
        return;
    };
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path().join("fixture");
    write_repo(&root);
    let embedded_data = tempfile::tempdir().expect("tempdir");
    let server_data = tempfile::tempdir().expect("tempdir");
    let embedded = aiex_tests::config(embedded_data.path(), &[]);
    let server = aiex_tests::config(
        server_data.path(),
        &[("vector.backend", "server"), ("vector.url", qdrant.url())],
    );
    let name = format!("search-{}", std::process::id());
    index(&embedded, &root, &name, true);
    index(&server, &root, &name, true);
    assert_converged(&server, &name);

    // The server needs no local keyword index to answer.
    std::fs::remove_dir_all(
        IndexDir::new(server.index_dir())
            .collection_paths(&name)
            .keyword,
    )
    .expect("remove the local keyword index");
    // Both fusion methods: relative scores (both sides fetched in one batch, fused by the node)
    // and reciprocal rank (fused by the server).
    for fusion in ["relative", "rrf"] {
        let fused = |config: &aiex_config::Config| {
            let mut config = config.clone();
            config.search.fusion = fusion.parse().expect("a fusion method");
            config
        };
        let local = Searcher::open(&fused(&embedded), &[]).expect("open");
        // The collection by name: a shared server (QDRANT_URL) lists other tests' collections.
        let remote = Searcher::open(&fused(&server), std::slice::from_ref(&name)).expect("open");
        assert_server_matches_embedded(&local, &remote, fusion);
    }
    let remote = Searcher::open(&server, std::slice::from_ref(&name)).expect("open");

    // Keyword mode expands prose words to code's abbreviations on both: the fixture never says
    // "length", only `len`, found through the expansion alone, in the same chunks.
    let local = Searcher::open(&embedded, &[]).expect("open");
    let expanded = |searcher: &Searcher| {
        let mut hits = top10(searcher, "length", SearchMode::Keyword);
        hits.sort();
        hits
    };
    let found = expanded(&local);
    assert_eq!(
        found
            .iter()
            .map(|(path, _)| path.as_str())
            .collect::<Vec<_>>(),
        ["py/text.py", "src/lib.rs"]
    );
    assert_eq!(expanded(&remote), found);
    drop(local);

    // Filters: language, and a path glob resolved through the manifest.
    let mut request = SearchRequest::new("text words", SearchMode::Keyword, 10);
    request.languages = vec![aiex_indexer::Language::Python];
    let hits = remote.search(&request).expect("search").hits;
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|hit| hit.path == "py/text.py"), "{hits:?}");
    let mut request = SearchRequest::new("distance points", SearchMode::Hybrid, 10);
    request.path_glob = Some("go/**".to_string());
    let hits = remote.search(&request).expect("search").hits;
    assert!(
        hits.iter().all(|hit| hit.path.starts_with("go/")),
        "{hits:?}"
    );

    // A hit's chunk, text included, read back from its payload.
    let hit = &remote
        .search(&SearchRequest::new(
            "polygon area shoelace",
            SearchMode::Keyword,
            1,
        ))
        .expect("search")
        .hits[0];
    assert!(hit.snippet.contains("shoelace"), "{hit:?}");
    let chunk = remote
        .get_chunk(&name, hit.chunk_id)
        .expect("get")
        .expect("the chunk");
    assert_eq!(chunk.path, "src/lib.rs");
    assert!(chunk.text.contains("fn polygon_area"), "{}", chunk.text);

    aiex_indexer::store::server::open_collection(
        &server,
        &IndexDir::new(server.index_dir())
            .collection_paths(&name)
            .vectors,
    )
    .expect("open")
    .clear()
    .expect("clear");
}

#[test]
fn server_keyword_only_runs_are_searchable_then_embedded() {
    let Some(qdrant) = TestQdrant::get("server_keyword_only_runs_are_searchable_then_embedded")
    else {
        return;
    };
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path().join("fixture");
    write_repo(&root);
    let data = tempfile::tempdir().expect("tempdir");
    let server = aiex_tests::config(
        data.path(),
        &[("vector.backend", "server"), ("vector.url", qdrant.url())],
    );
    let name = format!("keyword-only-{}", std::process::id());

    // `--no-embed`: keyword-only points, searchable by keyword; vectors reported unavailable.
    index(&server, &root, &name, false);
    assert_converged(&server, &name);
    let searcher = Searcher::open(&server, std::slice::from_ref(&name)).expect("open");
    let keyword = top10(
        &searcher,
        "turn a title into a url slug",
        SearchMode::Keyword,
    );
    assert_eq!(keyword[0].0, "py/text.py", "{keyword:?}");
    let hybrid = searcher
        .search(&SearchRequest::new(
            "turn a title into a url slug",
            SearchMode::Hybrid,
            10,
        ))
        .expect("search");
    assert_eq!(hybrid.hits[0].path, "py/text.py");
    assert_eq!(hybrid.vectors_unavailable.len(), 1, "{hybrid:?}");

    // A deleted file leaves the server even without embedding.
    std::fs::remove_file(root.join("README.md")).expect("delete");
    index(&server, &root, &name, false);
    assert_converged(&server, &name);

    // Embedding later fills in the dense vectors of the same points.
    index(&server, &root, &name, true);
    assert_converged(&server, &name);
    let searcher = Searcher::open(&server, std::slice::from_ref(&name)).expect("open");
    let vector = searcher
        .search(&SearchRequest::new(
            "distance between two points",
            SearchMode::Vector,
            10,
        ))
        .expect("search");
    assert!(vector.vectors_unavailable.is_empty(), "{vector:?}");
    assert_eq!(vector.hits[0].path, "src/lib.rs");

    // `index --status` counts the server's points; `index --remove` deletes them.
    let vectors = IndexDir::new(server.index_dir())
        .collection_paths(&name)
        .vectors;
    let (qdrant_collection, points) =
        aiex_indexer::store::server::collection_points(&server, &vectors).expect("points");
    assert!(
        qdrant_collection.starts_with("aiex_code_"),
        "{qdrant_collection}"
    );
    assert!(points > 0);
    aiex_indexer::store::server::remove_collection(&server, &name).expect("remove");
    assert_eq!(
        aiex_indexer::store::server::collection_points(&server, &vectors)
            .expect("points")
            .1,
        0
    );
}

/// The server's top 10 against the embedded one for each of [`QUERIES`], keyword and hybrid.
fn assert_server_matches_embedded(local: &Searcher, remote: &Searcher, fusion: &str) {
    for query in QUERIES {
        for mode in [SearchMode::Keyword, SearchMode::Hybrid] {
            let expected = top10(local, query, mode);
            let got = top10(remote, query, mode);
            assert!(!got.is_empty(), "{fusion} {mode} {query}");
            // The best hit is among the embedded two best; the rest of the top-10 mostly the
            // same. Qdrant's BM25 statistics differ from tantivy's (averages and idf per Qdrant
            // shard, not per field), and its idf counts a replaced point's old version until its
            // segment is optimised (a chunk's keyword-only point is replaced by the full one), so
            // close scores can swap from one run to the next.
            assert!(
                expected.iter().take(2).any(|hit| *hit == got[0]),
                "{fusion} {mode} `{query}`: {got:?} vs {expected:?}"
            );
            let expected: HashSet<_> = expected.into_iter().collect();
            let shared = got.iter().filter(|hit| expected.contains(hit)).count();
            assert!(
                shared * 10 >= got.len() * 7,
                "{fusion} {mode} `{query}`: {got:?} vs {expected:?}"
            );
        }
    }
}
