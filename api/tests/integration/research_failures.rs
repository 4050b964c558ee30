//! `research` when searches fail (a web provider that cannot be reached): the report names the
//! failed searches instead of reporting no evidence, the last event says
//! `complete_with_errors`, stderr warns and the exit status is 0, or 2 under `--strict`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::{aiex, run_ok, stdout};

const QUESTION: &str = "How does the job queue hand out its oldest job?";

/// A loopback address nothing listens on: connections to it are refused.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// `aiex-research` over `data` with keyword search and a Serper provider that cannot be reached.
fn with_dead_web(data: &Path, web: &str) -> Command {
    let mut command = aiex(data);
    command
        .env("AIEX__SEARCH__MODE", "keyword")
        .env("AIEX__WEB__SERPER_API_KEY", "test-key")
        .env("AIEX__WEB__SERPER_URL", web)
        .env("AIEX__WEB__MAX_RETRIES", "0")
        .env("AIEX__SEARCH__WEB_DEADLINE_MS", "3000");
    command
}

fn indexed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let code = dir.path().join("code");
    aiex_tests::write_files(
        &code,
        &[(
            "src/queue.rs",
            "/// A first-in first-out queue of jobs.\npub struct JobQueue {\n    jobs: Vec<String>,\n}\n\nimpl JobQueue {\n    /// Takes the oldest job of the queue, if any.\n    pub fn pop(&mut self) -> Option<String> {\n        if self.jobs.is_empty() { None } else { Some(self.jobs.remove(0)) }\n    }\n}\n",
        )],
    );
    run_ok(
        aiex(&dir.path().join("data"))
            .arg("index")
            .arg(&code)
            .args(["--name", "queue", "--no-embed"]),
    );
    dir
}

#[test]
fn failed_searches_are_reported_and_fail_only_under_strict() {
    let dir = indexed();
    let data = dir.path().join("data");
    let web = closed_port();

    let output = run_ok(
        with_dead_web(&data, &web).args(["research", QUESTION, "--no-llm", "--format", "json"]),
    );
    let report: Value = serde_json::from_str(&stdout(&output)).expect("JSON report");
    let failed = report["failed_searches"]
        .as_array()
        .expect("failed searches");
    assert!(!failed.is_empty(), "{report}");
    assert!(
        failed.iter().all(|f| f["source"] == "web:serper"),
        "{report}"
    );
    assert!(
        !report["references"]
            .as_array()
            .expect("references")
            .is_empty(),
        "the code collection still answers: {report}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: research complete_with_errors:"),
        "{stderr}"
    );

    // The Markdown report names them; the events end with `complete_with_errors`.
    let output = run_ok(with_dead_web(&data, &web).args(["research", QUESTION, "--no-llm"]));
    let markdown = stdout(&output);
    assert!(markdown.contains("## Searches that failed"), "{markdown}");
    assert!(markdown.contains("`web:serper`: "), "{markdown}");
    let output =
        run_ok(with_dead_web(&data, &web).args(["research", QUESTION, "--no-llm", "--json", "-q"]));
    let last: Value =
        serde_json::from_str(stdout(&output).lines().last().expect("events")).expect("JSON event");
    assert_eq!(last["type"], "done", "{last}");
    assert_eq!(last["status"], "complete_with_errors", "{last}");
    assert!(!last["failures"].as_array().expect("failures").is_empty());
    let sessions = run_ok(aiex(&data).args(["sessions", "list", "--json"]));
    assert!(
        stdout(&sessions)
            .lines()
            .all(|line| line.contains("\"status\":\"complete_with_errors\"")),
        "{}",
        stdout(&sessions)
    );

    // Under --strict the same session is a failure, its report still printed.
    let output = with_dead_web(&data, &web)
        .args(["research", QUESTION, "--no-llm", "--strict"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).contains("## Searches that failed"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: research complete_with_errors:") && stderr.contains("(--strict)"),
        "{stderr}"
    );

    // Without the web provider every search answers: complete, and --strict passes.
    let output = run_ok(
        aiex(&data)
            .env("AIEX__SEARCH__MODE", "keyword")
            .args(["research", QUESTION, "--no-llm", "--strict", "--json", "-q"]),
    );
    let last: Value =
        serde_json::from_str(stdout(&output).lines().last().expect("events")).expect("JSON event");
    assert_eq!(last["type"], "done");
    assert!(
        last.get("status").is_none() && last.get("failures").is_none(),
        "{last}"
    );
}
