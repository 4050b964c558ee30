//! Exact and regex search beside ripgrep on the same files, in the same run (page cache warm for
//! both): index time and size against the source size, then p50/p99 latency of 50 selective
//! literals, 50 regexes and 10 non-selective patterns, in process (median of three runs each),
//! next to `rg` (median of three calls); then per CLI call: the release `aiex-research` binary
//! against `rg`, both with `--count` (the same work, little output).
//!
//! `scripts/setup --with-ripgrep && cargo build --release -p aiex-api && cargo bench -p
//! aiex-benches --bench grep` (without the release binary the per-call table is left out).
//!
//! The corpus: crates of the workspace's Cargo.lock (pinned by name here, by version there),
//! copied from the local cargo registry, at least 1M lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use aiex_indexer::collection::dir_size;
use aiex_indexer::grep::{CaseMode, GrepMode, GrepRequest, GrepSearcher};
use aiex_indexer::{index_directory, IndexDir, IndexRequest};

const CRATES: &[&str] = &[
    "tantivy",
    "tokio",
    "regex-automata",
    "regex-syntax",
    "syn",
    "hyper",
    "clap_builder",
    "serde_json",
    "rustls",
    "h2",
    "chrono",
    "reqwest",
    "axum",
    "rayon-core",
    "tree-sitter",
    "qdrant-edge",
    "ort",
    "fastembed",
    "tokenizers",
    "hashbrown",
    "serde",
    "futures-util",
    "indexmap",
    "memchr",
    "aho-corasick",
    "bstr",
    "jiff",
    "icu_properties",
    "idna",
    "url",
    "tower",
    "tracing-subscriber",
    "minijinja",
    "moka",
    "html5ever",
    "scraper",
    "charabia",
    "quinn-proto",
    "webpki-roots",
    "zerovec",
    "ndarray",
    "geo",
    "image",
    "rustix",
    "nix",
    "libc",
    "object",
    "gimli",
    "itertools",
    "proptest",
    "insta",
    "tonic",
    "prost",
    "bincode",
];
const MIN_LINES: usize = 1_000_000;

fn main() {
    println!("grep benchmark; machine: {}", aiex_benches::machine());
    let corpus = aiex_benches::cache_dir().join("grep-corpus");
    let lines = build_corpus(&corpus);
    let data_dir = aiex_benches::cache_dir().join("data-grep");
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut config = aiex_benches::config(&data_dir);
    config.embedding.enabled = false;
    let started = Instant::now();
    let mut request = IndexRequest::new(&corpus);
    request.name = Some("grep-corpus".to_string());
    request.embed = false;
    let summary =
        index_directory(&config, request, &mut |_| {}, &AtomicBool::new(false)).expect("index");
    let index_time = started.elapsed();
    let index_dir = IndexDir::new(config.index_dir());
    let paths = index_dir.collection_paths("grep-corpus");
    let manifest = index_dir.manifest("grep-corpus").expect("manifest");
    let source_bytes: u64 = manifest.files.values().map(|file| file.size).sum();
    let grep_bytes = dir_size(&paths.grep);
    let keyword_bytes = dir_size(&paths.keyword);
    println!(
        "corpus: {} files, {lines} lines, {:.1} MiB of indexed source",
        summary.scanned,
        mib(source_bytes)
    );
    println!(
        "index: {:.1} s (walk, chunk, keyword and file index; no embedding); file index {:.1} MiB = {:.2}x source; chunk index {:.1} MiB",
        index_time.as_secs_f64(),
        mib(grep_bytes),
        grep_bytes as f64 / source_bytes as f64,
        mib(keyword_bytes)
    );

    let searcher = GrepSearcher::open(&config, &[]).expect("open");
    let words = selective_words(&corpus, &manifest.files.keys().cloned().collect::<Vec<_>>());
    let literals: Vec<String> = words.iter().take(50).cloned().collect();
    let regexes: Vec<String> = words
        .iter()
        .skip(50)
        .take(50)
        .enumerate()
        .map(|(n, word)| {
            let prefix: String = word.chars().take(4).collect();
            match n % 5 {
                0 => format!(r"fn\s+{prefix}\w*"),
                1 => format!(r"\b{word}\b"),
                2 => format!(r"{prefix}[a-z_]+\("),
                3 => format!("({word}|{prefix}_unused)"),
                _ => format!(r"{prefix}\w*\s*[:=]"),
            }
        })
        .collect();
    let broad: Vec<String> = [
        r"\w+\(\)",
        "^$",
        r"^\s*//",
        "[{}]",
        r"\bself\b",
        "fn ",
        "TODO|FIXME",
        r"\d{3,}",
        "(?i)error",
        r"\s+$",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    println!();
    let classes = [
        ("50 selective literals", GrepMode::Exact, &literals),
        ("50 regexes", GrepMode::Regex, &regexes),
        ("10 non-selective", GrepMode::Regex, &broad),
    ];
    table(&classes, &corpus, false, |pattern, mode| {
        let mut request = GrepRequest::new(pattern, mode);
        request.pattern_only = true;
        request.case = CaseMode::Smart;
        request.max_lines = usize::MAX;
        request.time_budget = Duration::from_secs(600);
        // What `rg --line-number` computes: the matching lines, not every match in them.
        request.all_submatches = false;
        // Warm once, then time (the page cache is warm for both sides).
        let _ = searcher.search(&request).expect("search");
        median_ms(|| {
            let _ = searcher.search(&request).expect("search");
        })
    });
    drop(searcher);

    let Some(binary) = release_binary() else {
        println!(
            "\n(per CLI call: build the release binary first, `cargo build --release -p aiex-api`)"
        );
        return;
    };
    println!(
        "\nper CLI call (`aiex-research search --mode exact|regex -e --count` vs `rg --count`):"
    );
    table(&classes, &corpus, true, |pattern, mode| {
        let call = || {
            let output = Command::new(&binary)
                .arg("--data-dir")
                .arg(&data_dir)
                .env("AIEX__EMBEDDING__ENABLED", "false")
                .args(["search", "--mode"])
                .arg(if mode == GrepMode::Exact {
                    "exact"
                } else {
                    "regex"
                })
                .args(["-e", "--count", "--color", "never"])
                .arg(pattern)
                .output()
                .expect("run aiex-research");
            assert!(
                output.status.code().is_some_and(|code| code <= 1),
                "{pattern}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        call();
        median_ms(call)
    });
}

/// One table row per class of patterns: `ours` times a pattern (ms), beside `rg` on the corpus
/// (with `--count` when `count`).
fn table(
    classes: &[(&str, GrepMode, &Vec<String>)],
    corpus: &Path,
    count: bool,
    mut ours: impl FnMut(&str, GrepMode) -> f64,
) {
    println!("| queries | aiex p50 | aiex p99 | rg p50 | rg p99 | p50 speed-up |");
    println!("|---|---|---|---|---|---|");
    for &(label, mode, patterns) in classes {
        let mut mine = Vec::new();
        let mut theirs = Vec::new();
        for pattern in patterns {
            mine.push(ours(pattern, mode));
            if let Some(ms) = ripgrep_ms(corpus, pattern, mode, count) {
                theirs.push(ms);
            }
        }
        let p = |values: &[f64], q: f64| aiex_benches::percentile(values, q);
        println!(
            "| {label} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1}x |",
            p(&mine, 50.0),
            p(&mine, 99.0),
            p(&theirs, 50.0),
            p(&theirs, 99.0),
            p(&theirs, 50.0) / p(&mine, 50.0)
        );
    }
}

/// The median of three timed runs of `run`, in milliseconds.
fn median_ms(mut run: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..3)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[1]
}

/// The release `aiex-research` next to this benchmark's build, if it was built.
fn release_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let binary = exe.parent()?.parent()?.join("aiex-research");
    binary.is_file().then_some(binary)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// An `rg` call over the corpus directory, in milliseconds (after a warming call; the median of
/// three).
fn ripgrep_ms(corpus: &Path, pattern: &str, mode: GrepMode, count: bool) -> Option<f64> {
    let run = || {
        let mut command = Command::new("rg");
        command
            .args([
                "--no-config",
                "--line-number",
                "--smart-case",
                "--no-messages",
            ])
            .current_dir(corpus);
        if mode == GrepMode::Exact {
            command.arg("--fixed-strings");
        }
        if count {
            command.arg("--count");
        }
        command.arg("-e").arg(pattern).arg(".").output().ok()
    };
    run()?;
    Some(median_ms(|| {
        let _ = run();
    }))
}

/// Copies the pinned crates (versions from Cargo.lock) into `corpus` once; returns its line count.
fn build_corpus(corpus: &Path) -> usize {
    if !corpus.join(".complete").exists() {
        let _ = std::fs::remove_dir_all(corpus);
        let lock =
            std::fs::read_to_string(workspace_root().join("Cargo.lock")).expect("Cargo.lock");
        let versions = lock_versions(&lock);
        for name in CRATES {
            for version in versions.get(*name).into_iter().flatten() {
                let dir = format!("{name}-{version}");
                if let Some(source) = registry_crate(&dir) {
                    copy_dir(&source, &corpus.join(&dir));
                }
            }
        }
        std::fs::write(corpus.join(".complete"), "").expect("stamp");
    }
    let lines = aiex_benches::count_lines(corpus);
    assert!(
        lines >= MIN_LINES,
        "corpus has {lines} lines, fewer than {MIN_LINES}"
    );
    lines
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn lock_versions(lock: &str) -> BTreeMap<String, Vec<String>> {
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_string());
        } else if let (Some(value), Some(current)) = (line.strip_prefix("version = "), name.take())
        {
            versions
                .entry(current)
                .or_default()
                .push(value.trim_matches('"').to_string());
        }
    }
    versions
}

fn registry_crate(name_version: &str) -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    std::fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join(name_version))
        .find(|path| path.is_dir())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            let _ = std::fs::copy(entry.path(), &target);
        }
    }
}

/// Identifiers of 8+ characters that occur in few files: what a programmer greps for.
fn selective_words(corpus: &Path, files: &[String]) -> Vec<String> {
    let identifier = regex::Regex::new(r"\b[a-z][a-z0-9_]{7,24}\b").expect("valid");
    let mut file_counts: BTreeMap<String, usize> = BTreeMap::new();
    for file in files.iter().step_by(3) {
        let text = std::fs::read_to_string(corpus.join(file)).unwrap_or_default();
        let mut seen: Vec<&str> = identifier.find_iter(&text).map(|m| m.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        for word in seen {
            *file_counts.entry(word.to_string()).or_default() += 1;
        }
    }
    let mut words: Vec<String> = file_counts
        .into_iter()
        .filter(|(_, count)| (2..=5).contains(count))
        .map(|(word, _)| word)
        .collect();
    // A deterministic spread over the alphabet rather than the first 100 words.
    let step = (words.len() / 100).max(1);
    words = words.into_iter().step_by(step).take(100).collect();
    words
}
