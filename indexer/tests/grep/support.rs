//! Shared helpers: a configuration in a temporary directory, indexing, searching, and ripgrep.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use aiex_config::Config;
use aiex_indexer::grep::{CaseMode, GrepMode, GrepRequest, GrepResults, GrepSearcher};
use aiex_indexer::{index_directory, IndexRequest, IndexSummary};

/// A configuration whose data directory is `data_dir`, without embeddings.
pub fn config(data_dir: &Path) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    config.embedding.enabled = false;
    config.index.threads = 2;
    config
}

pub fn index(config: &Config, root: &Path, name: &str) -> IndexSummary {
    let mut request = IndexRequest::new(root);
    request.name = Some(name.to_string());
    request.embed = false;
    index_directory(config, request, &mut |_| {}, &AtomicBool::new(false)).expect("index")
}

/// A request for one whole pattern (no query language), without limits that could cut it short.
pub fn pattern_request(pattern: &str, mode: GrepMode, case: CaseMode) -> GrepRequest {
    let mut request = GrepRequest::new(pattern, mode);
    request.pattern_only = true;
    request.case = case;
    request.max_lines = usize::MAX;
    request.time_budget = Duration::from_secs(600);
    request
}

pub fn search(config: &Config, request: &GrepRequest) -> GrepResults {
    GrepSearcher::open(config, &[])
        .expect("open")
        .search(request)
        .expect("search")
}

/// The (path, line number) pairs of the matching lines.
pub fn matched_lines(results: &GrepResults) -> BTreeSet<(String, u64)> {
    results
        .files
        .iter()
        .flat_map(|file| {
            file.lines
                .iter()
                .filter(|line| !line.context)
                .map(|line| (file.path.clone(), line.line_number))
        })
        .collect()
}

/// Whether `rg` can run; prints the SKIPPED line when it cannot.
pub fn ripgrep_available(test: &str) -> bool {
    let available = Command::new("rg")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !available {
        // As `aiex_tests::skip` (which this crate cannot depend on): required by `scripts/test`.
        let required = std::env::var("AIEX_TEST_REQUIRE").unwrap_or_default();
        assert!(
            !required
                .split(',')
                .any(|name| name.trim() == "ripgrep" || name.trim() == "all"),
            "{test} cannot run: ripgrep (`rg`) is not installed (AIEX_TEST_REQUIRE={required})"
        );
        println!("SKIPPED: {test}: ripgrep (`rg`) is not installed (scripts/setup --with-ripgrep)");
    }
    available
}

/// ripgrep's matching lines for `args` over `files` (relative to `root`).
pub fn ripgrep(
    root: &Path,
    args: &[&str],
    pattern: &str,
    files: &[String],
) -> BTreeSet<(String, u64)> {
    let output = Command::new("rg")
        .current_dir(root)
        .args([
            "--no-config",
            "--no-heading",
            "--with-filename",
            "--line-number",
            "--null",
        ])
        .args(args)
        .arg("-e")
        .arg(pattern)
        .arg("--")
        .args(files)
        .output()
        .expect("run rg");
    assert!(
        output.status.code() != Some(2),
        "rg failed on {pattern:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = BTreeSet::new();
    for record in output.stdout.split(|&byte| byte == b'\n') {
        let Some(nul) = record.iter().position(|&byte| byte == 0) else {
            continue;
        };
        let path = String::from_utf8_lossy(&record[..nul]).into_owned();
        let rest = &record[nul + 1..];
        let Some(colon) = rest.iter().position(|&byte| byte == b':') else {
            continue;
        };
        let number: u64 = String::from_utf8_lossy(&rest[..colon])
            .parse()
            .expect("line number");
        lines.insert((path, number));
    }
    lines
}

/// The source directory of `name-version` in the local cargo registry, if present.
pub fn registry_crate(name_version: &str) -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    let registries = std::fs::read_dir(cargo_home.join("registry").join("src")).ok()?;
    registries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join(name_version))
        .find(|path| path.is_dir())
}

/// Copies `from` into `to` (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let kind = entry.file_type().expect("file type");
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
