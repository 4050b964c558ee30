//! `kill -9` at any point leaves the last generation searchable, and the next run completes the work.

use std::path::Path;
use std::time::{Duration, Instant};

use aiex_indexer::manifest::Manifest;

use crate::{aiex, run_ok, stdout};

/// A repository big enough that embedding takes several seconds.
pub(crate) fn synthetic_repo(root: &Path, files: usize) {
    for file in 0..files {
        let mut text = String::new();
        for function in 0..4 {
            text.push_str(&format!(
                "def compute_{file}_{function}(values, threshold={function}):\n    \"\"\"Computes statistic {function} of module {file} over the values.\"\"\"\n    total = 0\n    for index, value in enumerate(values):\n        if value > threshold + {file}:\n            total += value * index - {function}\n        else:\n            total -= threshold\n    return total / max(1, len(values))\n\n\n"
            ));
        }
        std::fs::write(root.join(format!("module_{file}.py")), text).expect("write");
    }
}

/// The manifest as a reader sees it while the run writes it (snapshot and journal).
fn manifest(data: &Path) -> Option<Manifest> {
    Manifest::load(&data.join("index/collections/crashy/manifest.json"))
        .ok()
        .flatten()
}

pub(crate) fn embedded_in(manifest: Option<&Manifest>) -> usize {
    manifest.map_or(0, Manifest::embedded_count)
}

pub(crate) fn summary(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("json summary")
}

#[test]
fn kill_during_embedding_then_resume() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    synthetic_repo(repo.path(), 150);
    let mut child = aiex(data.path())
        .arg("index")
        .arg(repo.path())
        .args(["--name", "crashy", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait for the first durable embedding checkpoint, then kill at once.
    let started = Instant::now();
    let mut embedded_at_kill = 0;
    while started.elapsed() < Duration::from_secs(300) {
        embedded_at_kill = embedded_in(manifest(data.path()).as_ref());
        if embedded_at_kill > 0 || child.try_wait().expect("poll").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let at_kill = manifest(data.path()).expect("keyword generation committed before embedding");
    let total = at_kill.chunk_count();
    assert!(
        embedded_at_kill > 0 && embedded_at_kill < total,
        "killed mid-embedding: {embedded_at_kill}/{total}"
    );
    assert_eq!(at_kill.generation, 1);

    // The committed generation is searchable while vectors are incomplete.
    let hits =
        run_ok(aiex(data.path()).args(["search", "compute_42_3", "--mode", "keyword", "--hits"]));
    assert!(stdout(&hits).contains("module_42.py"));
    let partial = run_ok(aiex(data.path()).args(["search", "statistic of the values", "--hits"]));
    assert!(String::from_utf8_lossy(&partial.stderr).contains("still being computed"));

    // The next run finishes without redoing durable work.
    let resumed = summary(&run_ok(
        aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "crashy", "--json"]),
    ));
    assert_eq!(resumed["changed"], 0);
    assert_eq!(resumed["vectors_complete"], true);
    let embedded = resumed["embedded"].as_u64().expect("number") as usize;
    let reused = resumed["vectors_reused"].as_u64().expect("number") as usize;
    assert!(embedded <= total - embedded_at_kill, "{resumed}");
    assert_eq!(embedded + reused, total - embedded_at_kill, "{resumed}");
    assert_eq!(resumed["chunks"].as_u64(), Some(total as u64));
    let vector = run_ok(aiex(data.path()).args([
        "search",
        "statistic 3 of module 17",
        "--mode",
        "vector",
        "--hits",
        "--limit",
        "50",
    ]));
    assert!(stdout(&vector).lines().count() == 50);
}

#[test]
fn kill_early_then_rerun_converges() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    synthetic_repo(repo.path(), 20);
    for delay_ms in [30u64, 150, 400] {
        let mut child = aiex(data.path())
            .arg("index")
            .arg(repo.path())
            .args(["--name", "crashy", "--no-embed"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().expect("reap");
        // Change the repository between runs, as a user would.
        std::fs::write(
            repo.path().join(format!("extra_{delay_ms}.py")),
            format!("def extra_{delay_ms}():\n    return {delay_ms}\n"),
        )
        .expect("write");
    }
    let done = summary(&run_ok(
        aiex(data.path()).arg("index").arg(repo.path()).args([
            "--name",
            "crashy",
            "--no-embed",
            "--json",
        ]),
    ));
    let status = run_ok(aiex(data.path()).args(["index", "--status", "--json"]));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status[0]["files"], 23, "{status}");
    assert_eq!(done["chunks"], status[0]["chunks"]);
    // Every file is searchable exactly once.
    for name in ["compute_7_2", "extra_30", "extra_150", "extra_400"] {
        let hits = run_ok(aiex(data.path()).args([
            "search", name, "--mode", "keyword", "--hits", "--limit", "100",
        ]));
        let count = stdout(&hits)
            .lines()
            .filter(|line| line.contains(&format!("\"symbol\":\"{name}\"")))
            .count();
        assert_eq!(count, 1, "{name}: {}", stdout(&hits));
    }
}
