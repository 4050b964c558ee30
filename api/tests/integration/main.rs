//! Tests of the `aiex-research` binary as users run it.

mod cli;
mod crash;
mod readme;
mod research;
mod research_failures;
mod server;
mod server_backend;
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
