//! PDF documents in documentation sets: text per page, page numbers in hits, failures named.

use std::path::{Path, PathBuf};

use crate::{aiex, json_lines, run_ok, stdout};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../indexer/tests/fixtures/pdf")
        .join(name)
}

fn copy_fixture(name: &str, to: &Path) {
    std::fs::copy(fixture(name), to.join(name)).expect("copy fixture");
}

fn summary(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(stdout(output).trim()).expect("summary json")
}

#[test]
fn docs_sets_index_pdf_pages_and_name_failed_pdfs() {
    let data = tempfile::tempdir().expect("tempdir");
    let docs = tempfile::tempdir().expect("tempdir");
    copy_fixture("manual.pdf", docs.path());
    copy_fixture("corrupt.pdf", docs.path());
    copy_fixture("encrypted.pdf", docs.path());
    aiex_tests::write_files(
        docs.path(),
        &[(
            "notes.md",
            "# Notes\n\nKeep the warranty card with the widget.\n",
        )],
    );
    let add = || {
        let mut command = aiex(data.path());
        command
            .args(["docs", "add", "manuals"])
            .arg(docs.path())
            .args(["--no-embed", "--json"]);
        command
    };

    let first = summary(&run_ok(&mut add()));
    assert_eq!(first["scanned"], 4, "{first}");
    assert_eq!(first["added"], 2, "{first}");
    assert_eq!(first["skipped"]["pdf_unreadable"], 1, "{first}");
    assert_eq!(first["skipped"]["pdf_encrypted"], 1, "{first}");
    let failed: Vec<(String, String, String)> = first["failed"]
        .as_array()
        .expect("failed files")
        .iter()
        .map(|file| {
            (
                file["path"].as_str().unwrap_or_default().to_string(),
                file["reason"].as_str().unwrap_or_default().to_string(),
                file["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 2, "{first}");
    assert_eq!(failed[0].0, "corrupt.pdf");
    assert_eq!(failed[0].1, "pdf_unreadable");
    assert!(failed[0].2.starts_with("unreadable PDF: "), "{failed:?}");
    assert_eq!(
        failed[1],
        (
            "encrypted.pdf".to_string(),
            "pdf_encrypted".to_string(),
            "encrypted PDF: it needs a password".to_string()
        )
    );

    // A word only on page 2: the hit is the PDF, on page 2.
    let events = run_ok(aiex(data.path()).args([
        "search",
        "spanner locknut",
        "--sources",
        "docs",
        "--mode",
        "keyword",
        "--json",
    ]));
    let merged: serde_json::Value = json_lines(&stdout(&events))
        .into_iter()
        .find(|event| event["type"] == "merged")
        .expect("a merged event");
    let best = &merged["hits"][0];
    assert_eq!(best["path"], "manual.pdf", "{merged}");
    assert_eq!(best["page"], 2, "{merged}");
    assert_eq!(best["kind"], "page", "{merged}");
    assert_eq!(best["language"], "pdf", "{merged}");
    assert_eq!(best["title"], "manual.pdf (page 2)", "{merged}");
    assert!(
        best["snippet"]
            .as_str()
            .is_some_and(|snippet| snippet.contains("spanner")),
        "{merged}"
    );
    let listed = stdout(&run_ok(aiex(data.path()).args([
        "search",
        "spanner locknut",
        "--sources",
        "docs",
        "--mode",
        "keyword",
    ])));
    assert!(listed.contains("manuals:manual.pdf (page 2)"), "{listed}");

    // Exact search reads the extracted text, not the PDF's bytes.
    let exact = stdout(&run_ok(aiex(data.path()).args([
        "search",
        "--mode",
        "exact",
        "locknut with a spanner",
    ])));
    assert!(
        exact.starts_with("manual.pdf:") && exact.contains("locknut with a spanner"),
        "{exact}"
    );

    // Incremental: nothing changed, the bad PDFs are reported again.
    let again = summary(&run_ok(&mut add()));
    assert_eq!(again["changed"], 0, "{again}");
    assert_eq!(again["unchanged"], 2, "{again}");
    assert_eq!(again["chunks_written"], 0, "{again}");
    assert_eq!(again["failed"].as_array().map(Vec::len), Some(2), "{again}");

    // A code collection keeps PDFs out, as binary files.
    let code = summary(&run_ok(
        aiex(data.path()).arg("index").arg(docs.path()).args([
            "--name",
            "code",
            "--no-embed",
            "--json",
        ]),
    ));
    assert_eq!(code["added"], 1, "{code}");
    assert_eq!(code["skipped"]["binary"], 3, "{code}");
    assert_eq!(code["failed"].as_array().map(Vec::len), Some(0), "{code}");
}
