//! `POST /v1/grep`: exact and regex search through the API, on a real index.

use axum::http::StatusCode;
use serde_json::json;

use super::{call, index_keywords, post_json, server_config, small_repo, state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_and_regex_matches_with_lines_and_offsets() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    let config = server_config(data.path(), None, &[]);
    let state = state(config.clone(), true).await;
    let root = repo.path().to_path_buf();
    let indexed = config.clone();
    tokio::task::spawn_blocking(move || index_keywords(&indexed, &root, "demo"))
        .await
        .expect("index");

    // A literal: its file, line number, byte offset and submatch offsets.
    let exact = call(
        &state,
        post_json("/v1/grep", &json!({"query": "strip_prefix"})),
    )
    .await;
    assert_eq!(exact.status, StatusCode::OK, "{}", exact.text);
    let body = exact.json();
    assert_eq!(body["matched_lines"], 1, "{body}");
    let file = &body["files"][0];
    assert_eq!(file["collection"], "demo");
    assert_eq!(file["path"], "src/table.rs");
    assert_eq!(file["language"], "rust");
    assert!(
        file.get("root").is_none(),
        "the server's directories stay private: {file}"
    );
    let line = &file["lines"][0];
    assert_eq!(line["line_number"], 3);
    let text = line["text"].as_str().expect("text");
    let start = text.find("strip_prefix").expect("in the line");
    assert_eq!(
        line["submatches"],
        json!([{"start": start, "end": start + "strip_prefix".len()}])
    );
    let source = std::fs::read_to_string(repo.path().join("src/table.rs")).expect("read");
    let offset = line["byte_offset"].as_u64().expect("offset") as usize;
    assert!(source[offset..].starts_with(text), "{offset}");

    // Context lines around the match, marked as such.
    let context = call(
        &state,
        post_json("/v1/grep", &json!({"query": "strip_prefix", "context": 1})),
    )
    .await;
    let lines = context.json()["files"][0]["lines"].clone();
    let numbers: Vec<(u64, bool)> = lines
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| (l["line_number"].as_u64().unwrap_or(0), l["context"] == true))
        .collect();
    assert_eq!(numbers, vec![(2, true), (3, false), (4, true)]);

    // A regex, a language filter, and the query language.
    let regex = call(
        &state,
        post_json(
            "/v1/grep",
            &json!({"query": r"def \w+", "mode": "regex", "languages": ["python"]}),
        ),
    )
    .await;
    assert_eq!(regex.status, StatusCode::OK, "{}", regex.text);
    let body = regex.json();
    assert_eq!(body["files"][0]["path"], "lib/queue.py", "{body}");
    assert_eq!(body["files"].as_array().map(Vec::len), Some(1));
    let none = call(
        &state,
        post_json("/v1/grep", &json!({"query": "strip_prefix lang:python"})),
    )
    .await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.json()["files"], json!([]));

    // Bad input: a clear error with the pattern's column; an unknown collection.
    let invalid = call(
        &state,
        post_json(
            "/v1/grep",
            &json!({"query": "fn (", "mode": "regex", "pattern_only": true}),
        ),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{}", invalid.text);
    assert_eq!(invalid.code(), "invalid_pattern");
    assert!(invalid.text.contains("column"), "{}", invalid.text);
    let unknown = call(
        &state,
        post_json("/v1/grep", &json!({"query": "x", "collections": ["nope"]})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
}
