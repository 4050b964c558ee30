//! `aiex-research index --batch jobs.toml`.

use crate::{aiex, run_ok, stdout};

#[test]
fn batch_file_indexes_every_job_with_a_concurrency_limit() {
    let data = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    super::small_repo(&work.path().join("alpha"));
    super::small_repo(&work.path().join("beta"));
    aiex_tests::write_files(
        &work.path().join("guide"),
        &[(
            "intro.md",
            "# Queues\n\nA job queue runs background jobs in order.\n",
        )],
    );
    let batch = work.path().join("jobs.toml");
    std::fs::write(
        &batch,
        "concurrency = 2\n\n[[job]]\npath = \"alpha\"\nembed = false\n\n[[job]]\npath = \"beta\"\nname = \"second\"\nembed = false\n\n[[job]]\npath = \"guide\"\nkind = \"docs\"\nembed = false\n",
    )
    .expect("write");
    let output = run_ok(
        aiex(data.path())
            .args(["index", "--batch"])
            .arg(&batch)
            .args(["--concurrency", "2", "--json"]),
    );
    let items: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, ["alpha", "second", "guide"]);
    assert!(items.iter().all(|i| i["state"] == "succeeded"), "{items:?}");
    assert_eq!(items[2]["kind"], "docs");

    let status = run_ok(aiex(data.path()).args(["index", "--status", "--json"]));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status.as_array().map(Vec::len), Some(3));

    // A missing directory fails before anything is indexed.
    std::fs::write(&batch, "[[job]]\npath = \"nowhere\"\n").expect("write");
    let failed = aiex(data.path())
        .args(["index", "--batch"])
        .arg(&batch)
        .output()
        .expect("run");
    assert_eq!(failed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("nowhere"));
}
