//! Tests of the `aiex-research` binary as users run it.

mod cli;
mod crash;
mod delegate;
mod pdf;
mod readme;
mod research;
mod research_failures;
mod research_flow;
mod server;
mod server_backend;
mod server_grep;
mod server_push;

use std::path::Path;
use std::process::{Command, Output};

/// The binary, with a private data directory and the installed model; user configuration ignored.
pub fn aiex(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aiex-research"));
    command.arg("--data-dir").arg(data_dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("AIEX") {
            command.env_remove(key);
        }
    }
    command.env("XDG_CONFIG_HOME", data_dir.join("no-config"));
    for (key, value) in aiex_tests::model_overrides() {
        let var = format!("AIEX__{}", key.replace('.', "__").to_uppercase());
        command.env(var, value);
    }
    command
}

/// Reads a started `serve`'s stderr (piped) until it says where it listens: the address, the
/// rest of its stderr, and what it printed so far.
pub fn listening(
    child: &mut std::process::Child,
) -> (
    String,
    std::io::BufReader<std::process::ChildStderr>,
    String,
) {
    use std::io::BufRead;
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr piped"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("read stderr") == 0 {
            panic!("serve exited before listening: {seen}");
        }
        seen.push_str(&line);
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split_whitespace().next().expect("address").to_owned();
            return (addr, stderr, seen);
        }
    }
}

pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("run aiex-research");
    assert!(
        output.status.success(),
        "{:?} failed: {}\n{}",
        command,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The JSON events of a `--json` run, one per line.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("one JSON event per line"))
        .collect()
}

/// The `type` of each JSON event of a `--json` run.
pub fn event_types(text: &str) -> Vec<String> {
    json_lines(text)
        .iter()
        .map(|event| event["type"].as_str().expect("type").to_string())
        .collect()
}
