//! The README shows only what exists: every `aiex-research` command line it shows (in code blocks and
//! inline code) names subcommands and flags that the binary accepts.

use std::collections::HashMap;
use std::process::Command;

/// `aiex-research PATH --help`, run once per path.
fn help(path: &[String], cache: &mut HashMap<Vec<String>, String>) -> String {
    cache
        .entry(path.to_vec())
        .or_insert_with(|| {
            let output = Command::new(env!("CARGO_BIN_EXE_aiex-research"))
                .args(path)
                .arg("--help")
                .output()
                .expect("run aiex-research --help");
            assert!(
                output.status.success(),
                "aiex-research {} --help failed: {}",
                path.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        })
        .clone()
}

/// The subcommand names listed under `Commands:` in a help text.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn has_flag(help: &str, flag: &str) -> bool {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=')
        .any(|word| word == flag)
}

/// The README's code: the lines of fenced blocks and the inline code spans of other lines.
fn code_segments(readme: &str) -> Vec<(usize, String)> {
    let mut segments = Vec::new();
    let mut fenced = false;
    for (number, line) in readme.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            let code = line.split(" #").next().unwrap_or(line);
            segments.push((number + 1, code.to_string()));
        } else {
            for (i, span) in line.split('`').enumerate() {
                if i % 2 == 1 {
                    segments.push((number + 1, span.to_string()));
                }
            }
        }
    }
    segments
}

#[test]
fn every_command_and_flag_the_readme_shows_exists() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read README.md");
    let mut cache = HashMap::new();
    let top = subcommands(&help(&[], &mut cache));
    assert!(top.iter().any(|c| c == "search"), "{top:?}");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (line, segment) in code_segments(&readme) {
        let tokens: Vec<&str> = segment.split_whitespace().collect();
        // Where the command starts: after `aiex-research`, or at a usage line's subcommand
        // (`serve [--bind ADDR:PORT]`).
        let start = match tokens.iter().position(|t| *t == "aiex-research") {
            Some(at) => at + 1,
            None if tokens.first().is_some_and(|t| top.iter().any(|c| c == t)) => 0,
            None => continue,
        };
        let mut path: Vec<String> = Vec::new();
        for token in &tokens[start..] {
            if ["|", "&&", ";", "||", ">", "2>&1"].contains(token) {
                break;
            }
            let word = token.trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')');
            if let Some(flag) = word.strip_prefix("--") {
                let flag = format!("--{}", flag.split('=').next().unwrap_or(flag));
                if flag == "--" {
                    continue;
                }
                checked += 1;
                if !has_flag(&help(&path, &mut cache), &flag) {
                    wrong.push(format!(
                        "line {line}: `aiex-research {} {flag}`",
                        path.join(" ")
                    ));
                }
            } else if !word.starts_with('-') && !word.is_empty() {
                let known = subcommands(&help(&path, &mut cache));
                if known.iter().any(|c| c == word) {
                    path.push(word.to_string());
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} flags found in the README");
    assert!(
        wrong.is_empty(),
        "flags the README shows that do not exist:\n{}",
        wrong.join("\n")
    );
}
