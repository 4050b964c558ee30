//! Indexing: initial run split into walk/parse/chunk, keyword commit and embedding; the pipeline's
//! embedding rate against the raw embedder's; re-index after one changed file; peak RSS; size on
//! disk. On the public evaluation corpus (with embeddings) and on a larger corpus (the Python
//! standard library, keyword side only: embedding it would take hours on two cores). With a Qdrant
//! binary or server at hand, a small part of the evaluation corpus in server mode, with the time
//! spent writing to Qdrant. The model section loads the embedding model with each way of treating
//! its graph (optimised at every load as fastembed did, optimised once and read from the cache,
//! not optimised) and embeds 256 chunks of the evaluation corpus with each, batched as the pipeline
//! batches. The manifest section times a run's checkpoints on synthetic manifests shaped like
//! collections of about 1M and 10M lines: the journal's append of what changed against a rewrite
//! of the whole manifest (what each checkpoint cost before the journal), and reading it back.
//! `AIEX_BENCH_SECTIONS=eval,stdlib,server,model,manifest` picks sections.
//!
//! `cargo bench -p aiex-benches --bench indexing`

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use aiex_benches::{codesearch_dir, config, count_lines, peak_rss_mib, reset_peak_rss};
use aiex_indexer::embed::{
    Embedder, OnnxEmbedder, OnnxEmbedderOptions, SessionOptimization, SessionSource,
};
use aiex_indexer::{
    index_directory, IndexDir, IndexRequest, IndexSummary, SearchRequest, Searcher,
};

fn run(config: &aiex_config::Config, root: &Path, name: &str, embed: bool) -> (IndexSummary, f64) {
    let mut request = IndexRequest::new(root);
    request.name = Some(name.to_string());
    request.embed = embed;
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let summary = index_directory(config, request, &mut |_| {}, &cancel).expect("index");
    (summary, started.elapsed().as_secs_f64())
}

fn describe(label: &str, summary: &IndexSummary, seconds: f64) {
    let t = &summary.timings;
    println!(
        "  {label}: {:.2} s total | walk {} ms, read+parse+chunk {} ms, keyword commit {} ms, embed {} ms (of which vector writes {} ms) | {} files changed, {} chunks written, {} embedded",
        seconds, t.walk_ms, t.chunk_ms, t.keyword_ms, t.embed_ms, t.vector_write_ms, summary.changed, summary.chunks_written, summary.embedded
    );
}

fn touch_one_file(root: &Path, relative: &str) {
    let path = root.join(relative);
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str("\n// touched by the indexing benchmark\n");
    std::fs::write(&path, text).expect("write");
}

/// Whether section `name` runs: `AIEX_BENCH_SECTIONS` (comma-separated: `eval`, `stdlib`,
/// `server`) picks some; all run by default.
fn section(name: &str) -> bool {
    std::env::var("AIEX_BENCH_SECTIONS").map_or(true, |sections| {
        sections.split(',').any(|s| s.trim() == name)
    })
}

fn main() {
    println!("indexing benchmark; machine: {}", aiex_benches::machine());
    let scratch = aiex_benches::cache_dir().join("indexing-scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    if section("eval") {
        eval_corpus(&scratch);
    }
    if section("stdlib") {
        stdlib_corpus(&scratch);
    }
    if section("model") {
        model_session(&scratch);
    }
    if section("manifest") {
        manifest_checkpoints(&scratch);
    }
    if section("server") {
        if let Some(qdrant) =
            aiex_tests::qdrant::TestQdrant::get("the indexing benchmark's server mode")
        {
            server_mode(&scratch, qdrant.url());
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `count` chunk texts of the indexed evaluation corpus (those a broad keyword query finds first),
/// as the pipeline hands them to the embedder.
fn sample_chunks(config: &aiex_config::Config, count: usize) -> Vec<String> {
    let searcher = Searcher::open(config, &[]).expect("open");
    searcher
        .search(&SearchRequest::new(
            "fn def self return value",
            aiex_config::SearchMode::Keyword,
            count,
        ))
        .expect("search")
        .hits
        .into_iter()
        .filter_map(|hit| {
            searcher
                .get_chunk(&hit.collection, hit.chunk_id)
                .ok()
                .flatten()
        })
        .map(|chunk| chunk.embedding_text())
        .collect()
}

/// Model load time and embedding rate for each way of treating the graph, on 256 chunks of the
/// evaluation corpus (indexed once into the shared `data-docs` directory).
fn model_session(scratch: &Path) {
    const LOADS: usize = 5;
    const ROUNDS: usize = 3;
    const SAMPLE: usize = 256;
    let data_dir = aiex_benches::cache_dir().join("data-docs");
    aiex_benches::ensure_indexed(
        &data_dir,
        &codesearch_dir().join("corpus-docs"),
        "codesearch-docs",
    );
    let config = config(&data_dir);
    let sample = sample_chunks(&config, SAMPLE);
    let cache_dir = scratch.join("model-cache");
    let options = |optimization: SessionOptimization| OnnxEmbedderOptions {
        optimization,
        cache_dir: Some(cache_dir.clone()),
        ..OnnxEmbedderOptions::from_config(&config)
    };
    println!(
        "\nembedding model: load (median of {LOADS}, runtime library loaded before) and rate on {} chunks, batches of {}, {} threads (0: one per core)",
        sample.len(),
        config.embedding.batch_size,
        config.embedding.threads
    );
    // The runtime library is loaded once per process: not part of any variant's figure.
    aiex_indexer::embed::runtime(&config.runtime_path()).expect("runtime");
    let time_load = |optimization: SessionOptimization| {
        let started = Instant::now();
        let embedder = OnnxEmbedder::load(&options(optimization)).expect("model");
        (started.elapsed().as_secs_f64() * 1000.0, embedder)
    };
    let mut first_loads = Vec::new();
    for _ in 0..LOADS {
        let _ = std::fs::remove_dir_all(&cache_dir);
        let (ms, embedder) = time_load(SessionOptimization::Cached);
        assert!(matches!(
            embedder.session_source(),
            SessionSource::Optimized { saved: Some(_) }
        ));
        first_loads.push(ms);
    }
    println!(
        "  first load, optimise and save the graph: {:.0} ms",
        aiex_benches::percentile(&first_loads, 50.0)
    );
    let variants = [
        (
            "optimised at every load (level 3)",
            SessionOptimization::EveryLoad,
        ),
        (
            "saved optimised graph, optimisation off",
            SessionOptimization::Cached,
        ),
        (
            "original graph, optimisation off",
            SessionOptimization::Disabled,
        ),
    ];
    for (label, optimization) in &variants {
        let loads: Vec<f64> = (0..LOADS).map(|_| time_load(*optimization).0).collect();
        println!(
            "  load, {label}: {:.0} ms (min {:.0} ms)",
            aiex_benches::percentile(&loads, 50.0),
            aiex_benches::percentile(&loads, 0.0)
        );
    }
    // Rounds interleave the variants, so that other load on the machine spreads over all of them;
    // CPU time (all threads of the process) is less disturbed by that load than wall time.
    let mut rates = vec![Vec::new(); variants.len()];
    let mut cpu = vec![Vec::new(); variants.len()];
    for _ in 0..ROUNDS {
        for (index, (_, optimization)) in variants.iter().enumerate() {
            let (_, mut embedder) = time_load(*optimization);
            let cpu_before = process_cpu_seconds();
            let started = Instant::now();
            embedder.embed(&sample).expect("embed");
            rates[index].push(sample.len() as f64 / started.elapsed().as_secs_f64());
            cpu[index].push(1000.0 * (process_cpu_seconds() - cpu_before) / sample.len() as f64);
        }
    }
    let baseline_rate = rates[0].iter().copied().fold(0.0, f64::max);
    let baseline_cpu = aiex_benches::percentile(&cpu[0], 50.0);
    for (index, (label, _)) in variants.iter().enumerate() {
        let best = rates[index].iter().copied().fold(0.0, f64::max);
        let cpu_ms = aiex_benches::percentile(&cpu[index], 50.0);
        println!(
            "  embedding, {label}: {best:.1} chunks/s (best of {ROUNDS}: {}), {:.1}% of level 3 at load; CPU {cpu_ms:.1} ms per chunk (median of {ROUNDS}: {}), {:.1}% of level 3 at load",
            rates[index]
                .iter()
                .map(|rate| format!("{rate:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            100.0 * best / baseline_rate,
            cpu[index]
                .iter()
                .map(|ms| format!("{ms:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            100.0 * cpu_ms / baseline_cpu
        );
    }
    let _ = std::fs::remove_dir_all(&cache_dir);
}

/// CPU time of this process so far (user and system, all threads), from `/proc/self/stat`.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): utime and stime are the
    // 12th and 13th of them, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Server mode on one Qdrant node: two small crates of the evaluation corpus indexed with
/// embeddings, the run split into its stages and the upserts to Qdrant, then one file changed.
fn server_mode(scratch: &Path, url: &str) {
    let work = scratch.join("server-corpus");
    for crate_dir in ["walkdir-2.5.0", "glob-0.3.4"] {
        copy_dir(
            &codesearch_dir().join("corpus-docs").join(crate_dir),
            &work.join(crate_dir),
        );
    }
    println!(
        "\ncorpus: walkdir + glob of the evaluation set ({} lines), server mode on one Qdrant node ({url})",
        count_lines(&work)
    );
    let data = scratch.join("data-server");
    let config = aiex_tests::config(&data, &[("vector.backend", "server"), ("vector.url", url)]);
    let (initial, seconds) = run(&config, &work, "server-bench", true);
    describe("initial", &initial, seconds);
    touch_one_file(&work, "walkdir-2.5.0/src/lib.rs");
    let (one, seconds) = run(&config, &work, "server-bench", true);
    describe("one file changed", &one, seconds);
    aiex_indexer::store::server::remove_collection(&config, "server-bench").expect("remove");
}

/// The evaluation corpus, with embeddings.
fn eval_corpus(scratch: &Path) {
    let corpus = codesearch_dir().join("corpus-docs");
    let work = scratch.join("corpus");
    copy_dir(&corpus, &work);
    println!(
        "\ncorpus: evaluation set, corpus-docs ({} lines)",
        count_lines(&work)
    );
    let data = scratch.join("data");
    let config = config(&data);
    reset_peak_rss();
    let (initial, seconds) = run(&config, &work, "eval", true);
    describe("initial", &initial, seconds);
    let pipeline_rate = initial.embedded as f64 / (initial.timings.embed_ms as f64 / 1000.0);
    println!("  peak RSS while indexing: {:.0} MiB", peak_rss_mib());

    // The raw embedder on the same texts, same batch settings.
    let sample = sample_chunks(&config, 512);
    let mut embedder =
        OnnxEmbedder::load(&OnnxEmbedderOptions::from_config(&config)).expect("model");
    let started = Instant::now();
    embedder.embed(&sample).expect("embed");
    let raw_rate = sample.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "  embedding: pipeline {:.1} chunks/s, raw embedder {:.1} chunks/s on {} chunks of the same corpus ({:.0}%)",
        pipeline_rate,
        raw_rate,
        sample.len(),
        100.0 * pipeline_rate / raw_rate
    );
    drop(embedder);

    let (unchanged, seconds) = run(&config, &work, "eval", true);
    describe("no change", &unchanged, seconds);
    touch_one_file(&work, "serde_json-1.0.154/src/value/mod.rs");
    let (one, seconds) = run(&config, &work, "eval", true);
    describe("one file changed", &one, seconds);
    let status = IndexDir::new(config.index_dir()).status().expect("status");
    println!(
        "  index size on disk: {:.1} MiB for {} chunks",
        status[0].size_bytes as f64 / 1048576.0,
        status[0].chunks
    );
}

/// A larger corpus: the Python standard library, keyword side.
fn stdlib_corpus(scratch: &Path) {
    let stdlib = python_stdlib();
    let big = scratch.join("stdlib");
    copy_dir(&stdlib, &big);
    println!(
        "\ncorpus: Python {} standard library ({} lines), keyword side",
        python_version(),
        count_lines(&big)
    );
    let big_data = scratch.join("data-stdlib");
    let big_config = aiex_benches::config(&big_data);
    reset_peak_rss();
    let (initial, seconds) = run(&big_config, &big, "stdlib", false);
    describe("initial", &initial, seconds);
    println!("  peak RSS while indexing: {:.0} MiB", peak_rss_mib());
    touch_one_file(&big, "json/decoder.py");
    let (one, seconds) = run(&big_config, &big, "stdlib", false);
    describe("one file changed", &one, seconds);
    let status = IndexDir::new(big_config.index_dir())
        .status()
        .expect("status");
    println!(
        "  index size on disk: {:.1} MiB (keyword only)",
        status[0].size_bytes as f64 / 1048576.0
    );
}

fn python_stdlib() -> std::path::PathBuf {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .expect("python3");
    std::path::PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn python_version() -> String {
    let output = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .expect("python3");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .trim_start_matches("Python ")
        .to_string()
}

/// Copies a tree (regular files only), so the benchmark can modify it.
fn copy_dir(from: &Path, to: &Path) {
    let mut stack = vec![from.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let target = to.join(path.strip_prefix(from).expect("under root"));
            if file_type.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|name| name == "__pycache__" || name == "site-packages")
                {
                    continue;
                }
                stack.push(path);
            } else if file_type.is_file() {
                std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
                std::fs::copy(&path, &target).expect("copy");
            }
        }
    }
}

/// A manifest of `files` files of 8 chunks each, none embedded (a collection just chunked).
fn synthetic_manifest(files: usize) -> aiex_indexer::manifest::Manifest {
    use aiex_indexer::manifest::{ChunkRecord, FileRecord, Manifest};
    let mut manifest = Manifest::new("bench", Path::new("/src/bench"));
    for file in 0..files {
        let hash = blake3::hash(&file.to_le_bytes());
        let chunks = (0..8u32)
            .map(|chunk| ChunkRecord {
                id: u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
                    .wrapping_add(u64::from(chunk)),
                start_line: chunk * 16 + 1,
                end_line: chunk * 16 + 15,
                embedded: false,
            })
            .collect();
        manifest.files.insert(
            format!("crates/crate_{}/src/module_{file}.rs", file / 40),
            FileRecord {
                hash: hash.to_hex().to_string(),
                size: 4096,
                mtime_ns: 1_700_000_000_000_000_000 + file as u64,
                language: aiex_indexer::Language::Rust,
                chunks,
            },
        );
    }
    manifest
}

/// An embedding run's checkpoints (each marks the next 256 chunks embedded, 32 files) against a
/// rewrite of the whole manifest at each, then loading the manifest and its status record.
fn manifest_checkpoints(scratch: &Path) {
    use aiex_indexer::manifest::{Manifest, ManifestFile};
    const CHECKPOINTS: usize = 40;
    println!(
        "manifest checkpoints (synthetic: 8 chunks per file, 256 chunks embedded per checkpoint)"
    );
    for (label, files) in [("~1M lines", 8_000), ("~10M lines", 80_000)] {
        let dir = scratch.join(format!("manifest-{files}"));
        std::fs::create_dir_all(&dir).expect("scratch");
        let path = dir.join("manifest.json");
        let mut manifest = synthetic_manifest(files);
        let paths: Vec<String> = manifest.files.keys().cloned().collect();
        let embed_batch = |manifest: &mut Manifest, round: usize| {
            for path in &paths[round * 32..(round + 1) * 32] {
                if let Some(file) = manifest.files.get_mut(path) {
                    for chunk in &mut file.chunks {
                        chunk.embedded = true;
                    }
                }
            }
        };
        let mut whole = Vec::new();
        let mut rewrite = manifest.clone();
        for round in 0..CHECKPOINTS {
            embed_batch(&mut rewrite, round);
            let started = Instant::now();
            Manifest::save(&rewrite, &path).expect("save");
            whole.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let snapshot_bytes = std::fs::metadata(&path).expect("snapshot").len();
        let _ = std::fs::remove_file(&path);
        let mut writer = ManifestFile::fresh(&path);
        writer.save(&manifest).expect("snapshot");
        let mut appended = Vec::new();
        for round in 0..CHECKPOINTS {
            embed_batch(&mut manifest, round);
            let started = Instant::now();
            writer.save(&manifest).expect("checkpoint");
            appended.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let journal_bytes =
            std::fs::metadata(dir.join("manifest.log")).map_or(0, |meta| meta.len());
        let started = Instant::now();
        let loaded = Manifest::load(&path).expect("load").expect("present");
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(loaded, manifest);
        let started = Instant::now();
        let head = Manifest::load_head(&path).expect("head").expect("present");
        let head_ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(head.embedded_chunks, CHECKPOINTS * 256);
        println!(
            "  {label}: {files} files, {} chunks; snapshot {:.1} MiB",
            files * 8,
            snapshot_bytes as f64 / 1048576.0
        );
        println!(
            "    checkpoint p50: whole rewrite {:.1} ms, journal append {:.2} ms ({} bytes each on average)",
            aiex_benches::percentile(&whole, 50.0),
            aiex_benches::percentile(&appended, 50.0),
            journal_bytes / CHECKPOINTS as u64
        );
        println!(
            "    load (snapshot + {CHECKPOINTS} checkpoints) {load_ms:.1} ms; status record {head_ms:.2} ms"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
