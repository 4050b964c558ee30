//! Shared pieces of the benchmarks: the public evaluation corpus, configurations, statistics and
//! memory figures. Benchmarks print their figures; they assert nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Deserialize;

/// The evaluation set shipped beside the repository (`../shared/eval`), or `$AIEX_EVAL_DIR`.
pub fn eval_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AIEX_EVAL_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/eval")
}

/// Where benchmark corpora and indexes are cached between runs.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("aiex/bench")
}

/// The built evaluation corpus (`corpus-docs/`, `corpus-nodocs/`, `queries.jsonl`), built once with
/// the set's own `build.sh` (crates from the Rust crate registry, Python's standard library).
pub fn codesearch_dir() -> PathBuf {
    let out = cache_dir().join("codesearch");
    if !out.join("queries.jsonl").is_file() {
        eprintln!("building the evaluation corpus into {}", out.display());
        let status = Command::new("bash")
            .arg(eval_dir().join("build.sh"))
            .arg(&out)
            .status()
            .expect("run the evaluation set's build.sh");
        assert!(status.success(), "build.sh failed");
    }
    out
}

/// One evaluation query: the answer is the chunk of `path` that contains `line`.
#[derive(Debug, Clone, Deserialize)]
pub struct EvalQuery {
    pub id: u64,
    pub query: String,
    pub lang: String,
    pub path: String,
    pub line: u32,
    pub end: u32,
}

pub fn eval_queries() -> Vec<EvalQuery> {
    queries_in(&codesearch_dir())
}

/// The queries of the evaluation set built in `dir`.
pub fn queries_in(dir: &Path) -> Vec<EvalQuery> {
    let text = std::fs::read_to_string(dir.join("queries.jsonl")).expect("queries");
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("query line"))
        .collect()
}

/// One of our own evaluation sets (`benches/eval/build-set.sh`: other crates and other Python
/// packages, built the same way as the public one): `second` or `third`, built once into the
/// cache.
pub fn own_set_dir(set: &str) -> PathBuf {
    let out = cache_dir().join(format!("codesearch-{set}"));
    if !out.join("queries.jsonl").is_file() {
        eprintln!("building the {set} evaluation set into {}", out.display());
        let status = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/build-set.sh"))
            .arg(set)
            .arg(&out)
            .env("AIEX_EVAL_DIR", eval_dir())
            .status()
            .expect("run build-set.sh");
        assert!(status.success(), "build-set.sh {set} failed");
    }
    out
}

/// A configuration whose data directory is `data_dir`, using the installed model.
pub fn config(data_dir: &Path) -> aiex_config::Config {
    aiex_tests::config(data_dir, &[])
}

/// Indexes `root` as `name` into `data_dir` (incrementally: a second call only checks).
pub fn ensure_indexed(data_dir: &Path, root: &Path, name: &str) -> aiex_indexer::IndexSummary {
    ensure_indexed_with(data_dir, root, name, true)
}

/// As [`ensure_indexed`]; without `embed`, the keyword side only (a later run with it embeds).
pub fn ensure_indexed_with(
    data_dir: &Path,
    root: &Path,
    name: &str,
    embed: bool,
) -> aiex_indexer::IndexSummary {
    index_kind(
        &config(data_dir),
        root,
        name,
        aiex_indexer::CollectionKind::Code,
        embed,
    )
}

/// The Rust book from Debian's rust-doc (`scripts/setup --with-rust-doc`), if installed.
pub fn rust_book() -> Option<PathBuf> {
    let book = PathBuf::from("/usr/share/doc/rust-doc/html/book");
    book.is_dir().then_some(book)
}

/// Indexes a documentation set (`print.html`, the whole book on one page, is left out).
pub fn ensure_docs_indexed(data_dir: &Path, root: &Path, name: &str) -> aiex_indexer::IndexSummary {
    let config = aiex_tests::config(data_dir, &[("index.exclude", "[\"print.html\"]")]);
    index_kind(
        &config,
        root,
        name,
        aiex_indexer::CollectionKind::Docs,
        true,
    )
}

fn index_kind(
    config: &aiex_config::Config,
    root: &Path,
    name: &str,
    kind: aiex_indexer::CollectionKind,
    embed: bool,
) -> aiex_indexer::IndexSummary {
    let mut request = aiex_indexer::IndexRequest::new(root);
    request.name = Some(name.to_string());
    request.kind = kind;
    request.embed = embed;
    let cancel = AtomicBool::new(false);
    let mut last = std::time::Instant::now();
    aiex_indexer::index_directory(
        config,
        request,
        &mut |event| {
            if last.elapsed() > Duration::from_secs(10) {
                eprintln!("  {name}: {event:?}");
                last = std::time::Instant::now();
            }
        },
        &cancel,
    )
    .expect("indexing succeeds")
}

/// The `p`-th percentile (0–100) of `values`, in the values' unit.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Peak resident memory of this process so far, in MiB (`VmHWM`).
pub fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:") / 1024.0
}

/// Current resident memory of this process, in MiB (`VmRSS`).
pub fn rss_mib() -> f64 {
    status_kib("VmRSS:") / 1024.0
}

/// Resets the peak-RSS counter (Linux: writing 5 to clear_refs), so phases can be measured apart.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Lines of text under `root` (for describing a corpus).
pub fn count_lines(root: &Path) -> usize {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                total += text.lines().count();
            }
        }
    }
    total
}

/// The machine, for the figures' context.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".to_string());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    format!("{cores} cores, {cpu}")
}

/// The comma-separated values of environment variable `var`, or `default` when it is not set.
pub fn picked(var: &str, default: &[&str]) -> Vec<String> {
    std::env::var(var).map_or_else(
        |_| default.iter().map(|s| s.to_string()).collect(),
        |value| value.split(',').map(|s| s.trim().to_string()).collect(),
    )
}
