use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use aiex_indexer::{index_directory, IndexDir, IndexProgress, IndexRequest, IndexSummary};

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Directory to index (a repository, a docs folder, …).
    #[arg(value_name = "PATH", required_unless_present_any = ["status", "remove", "batch", "push"])]
    pub path: Option<PathBuf>,
    /// Collection name (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Show collections, files, chunks, model, generation and size instead of indexing.
    #[arg(long, conflicts_with_all = ["path", "remove"])]
    pub status: bool,
    /// Delete a collection.
    #[arg(long, value_name = "NAME", conflicts_with = "path")]
    pub remove: Option<String>,
    /// Copy a collection indexed in embedded mode (this data directory's keyword index and
    /// vectors) into the Qdrant server of `vector.url`, without embedding it again; the
    /// collection is read from the data directory whatever `vector.backend` says.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with_all = ["path", "name", "status", "remove", "batch", "rebuild", "no_embed"]
    )]
    pub push: Option<String>,
    /// Drop the collection's stores and index from scratch.
    #[arg(long)]
    pub rebuild: bool,
    /// Only update the keyword index now; vectors are computed by a later run.
    #[arg(long)]
    pub no_embed: bool,
    /// Only index paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Skip files larger than this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Index hidden files and directories too.
    #[arg(long)]
    pub hidden: bool,
    /// Size of the parsing pool (0: one thread per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the summary (or status) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Index every `[[job]]` of a TOML file (`path`, optional `name`, `kind = "code"|"docs"`,
    /// `embed`, `rebuild`; paths relative to the file), a few at a time.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["path", "status", "remove"])]
    pub batch: Option<PathBuf>,
    /// With --batch: directories indexed at the same time (default: the file's `concurrency`,
    /// else `server.job_concurrency`).
    #[arg(long, value_name = "N", requires = "batch")]
    pub concurrency: Option<usize>,
}

fn toml_string_array(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_string())
}

impl IndexArgs {
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut overrides = Vec::new();
        if !self.include.is_empty() {
            overrides.push(("index.include".into(), toml_string_array(&self.include)));
        }
        if !self.exclude.is_empty() {
            overrides.push(("index.exclude".into(), toml_string_array(&self.exclude)));
        }
        if let Some(bytes) = self.max_file_bytes {
            overrides.push(("index.max_file_bytes".into(), bytes.to_string()));
        }
        if self.hidden {
            overrides.push(("index.hidden".into(), "true".into()));
        }
        if let Some(threads) = self.threads {
            overrides.push(("index.threads".into(), threads.to_string()));
        }
        overrides
    }
}

pub fn run(config: &aiex_config::Config, args: &IndexArgs, no_server: bool) -> anyhow::Result<()> {
    let index_dir = IndexDir::new(config.index_dir());
    let server = config.vector.backend == aiex_config::VectorBackend::Server;
    if server && (args.status || args.remove.is_some()) {
        // The collections the cluster holds, indexed through any node.
        aiex_indexer::store::server::sync_cache(config)?;
    }
    if args.status {
        return print_status(config, &index_dir, args.json);
    }
    if let Some(batch) = &args.batch {
        return super::batch_cmd::run(config, batch, args.concurrency, args.json, no_server);
    }
    if let Some(name) = &args.push {
        return run_push(config, name, args.json);
    }
    if let Some(name) = &args.remove {
        if server {
            aiex_indexer::store::server::remove_collection(config, name)?;
            if index_dir.collection_names()?.contains(name) {
                index_dir.remove(name)?;
            }
        } else {
            index_dir.remove(name)?;
        }
        eprintln!("removed collection `{name}`");
        return Ok(());
    }
    let Some(path) = &args.path else {
        anyhow::bail!("a PATH to index is required");
    };
    let mut request = IndexRequest::new(path);
    request.name = args.name.clone();
    request.rebuild = args.rebuild;
    request.embed = !args.no_embed;
    // The walk's settings are the server's own: flags that change them run here.
    let stay_local = (!args.overrides().is_empty()).then_some(
        "--include, --exclude, --max-file-bytes, --hidden and --threads have no HTTP API equivalent",
    );
    run_index(config, request, args.json, no_server, stay_local)
}

/// Runs one indexing request with progress on stderr and the summary (text or JSON) on stdout:
/// as a job of the server of this data directory when one is running (see [`super::delegate`]),
/// else here (`stay_local`: why not, see [`super::delegate::find`]).
pub(crate) fn run_index(
    config: &aiex_config::Config,
    request: IndexRequest,
    json: bool,
    no_server: bool,
    stay_local: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(server) = super::delegate::find(config, no_server, stay_local) {
        if !server.runs_jobs() {
            tracing::info!(
                "the server at {} does not run indexing jobs (--no-jobs): indexing in this process",
                server.url()
            );
        } else if let Some(root) = std::fs::canonicalize(&request.root)
            .ok()
            .filter(|root| root.is_dir())
            .and_then(|root| root.to_str().map(str::to_string))
        {
            return run_index_remote(&server, &request, &root, json);
        }
        // A path the server cannot be sent (missing, not a directory, not UTF-8): the local run
        // says what is wrong with it.
    }
    refuse_if_vectors_held(config, &request, no_server, stay_local)?;
    run_index_local(config, request, json)
}

/// Refuses a local run that would compute vectors into an embedded vector store another process
/// holds open (a running `serve` of this data directory, or another `index`), before it changes
/// anything: otherwise it would commit its keywords and then fail at the vector step.
/// `no_server` and `stay_local` are what kept this command here (see [`super::delegate::find`]).
pub(crate) fn refuse_if_vectors_held(
    config: &aiex_config::Config,
    request: &IndexRequest,
    no_server: bool,
    stay_local: Option<&str>,
) -> anyhow::Result<()> {
    if config.vector.backend != aiex_config::VectorBackend::Edge || !request.wants_vectors(config) {
        return Ok(());
    }
    // A root or name that cannot be used: the run itself says what is wrong.
    let Ok(root) = request.root.canonicalize() else {
        return Ok(());
    };
    let name = request
        .name
        .clone()
        .unwrap_or_else(|| aiex_indexer::collection::default_name(&root));
    if aiex_indexer::collection::validate_name(&name).is_err() {
        return Ok(());
    }
    let vectors = IndexDir::new(config.index_dir())
        .collection_paths(&name)
        .vectors;
    if !aiex_indexer::store::vector::held_by_another_process(&vectors) {
        return Ok(());
    }
    let server = aiex_api::server::server_file::ServerFile::read(&config.data_dir)
        .ok()
        .flatten()
        .filter(|file| !file.process_gone());
    let (holder, remedy) = match &server {
        Some(file) => {
            let why_here = match (no_server, stay_local) {
                (true, _) => Some("--no-server"),
                (false, Some(why)) => Some(why),
                (false, None) => {
                    (!file.jobs).then_some("the server runs no indexing jobs (--no-jobs)")
                }
            };
            let remedy = why_here.map_or_else(String::new, |why| {
                format!("this command runs in this process ({why}): drop that to send it to the server, ")
            });
            (
                format!("the server at {} (process {})", file.url, file.pid),
                remedy,
            )
        }
        None => (
            "another process (an indexing run or a server)".to_string(),
            "wait for it to finish, ".to_string(),
        ),
    };
    anyhow::bail!(
        "the vector store of collection `{name}` is held by {holder}; nothing was indexed. \
         To index it, {remedy}add --no-embed to index its keywords only, or stop the other process"
    )
}

fn run_index_local(
    config: &aiex_config::Config,
    request: IndexRequest,
    json: bool,
) -> anyhow::Result<()> {
    let path = request.root.clone();
    let mut reporter = Reporter::new();
    let cancel = AtomicBool::new(false);
    let summary = index_directory(
        config,
        request,
        &mut |event| reporter.report(event),
        &cancel,
    )
    .with_context(|| format!("indexing {}", path.display()));
    reporter.finish();
    print_summary(&summary?, json)
}

/// The summary of a run on stdout, as text or one JSON object.
fn print_summary(summary: &IndexSummary, json: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut stdout, summary)?;
        writeln!(stdout)?;
    } else {
        write_summary(&mut stdout, summary)?;
    }
    stdout.flush()?;
    Ok(())
}

/// [`run_index`] as a job of `server` (`POST /v1/index/jobs` with the directory, followed over
/// its events stream): the job's progress drives the same progress display and its summary is
/// printed as a local run's. Ctrl-C cancels the job.
fn run_index_remote(
    server: &super::delegate::Server,
    request: &IndexRequest,
    root: &str,
    json: bool,
) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "items": [{
            "path": root,
            "name": request.name,
            "kind": request.kind.name(),
        }],
        "embed": request.embed,
        "rebuild": request.rebuild,
    });
    let shown = request.root.display().to_string();
    let mut reporter = Reporter::new();
    let outcome = server.block_on(async {
        let record: serde_json::Value = server.post_json("/v1/index/jobs", &body).await?;
        let id = record
            .get("id")
            .and_then(|id| id.as_str())
            .context("the server's job has no id")?
            .to_string();
        let mut summary = None;
        let mut failure = None;
        server
            .follow(
                &format!("/v1/index/jobs/{id}/events"),
                "job",
                &format!("/v1/index/jobs/{id}"),
                "interrupted: the server's indexing job was cancelled",
                |event: serde_json::Value| {
                    match event.get("type").and_then(|kind| kind.as_str()) {
                        Some("progress") => {
                            if let Some(progress) = event
                                .get("progress")
                                .and_then(|progress| IndexProgress::deserialize(progress).ok())
                            {
                                reporter.report(progress);
                            }
                        }
                        Some("item_finished") => {
                            let value = event.get("summary").cloned().unwrap_or_default();
                            summary = Some(
                                serde_json::from_value::<IndexSummary>(value)
                                    .context("reading the summary of the server's job")?,
                            );
                        }
                        Some("item_failed") => {
                            failure = Some(
                                event
                                    .get("error")
                                    .and_then(|error| error.as_str())
                                    .unwrap_or("the server's job failed")
                                    .to_string(),
                            );
                        }
                        Some("done") => return Ok(ControlFlow::Break(())),
                        _ => {}
                    }
                    Ok(ControlFlow::Continue(()))
                },
            )
            .await?;
        match (summary, failure) {
            (Some(summary), _) => Ok(summary),
            (None, Some(failure)) => Err(anyhow::anyhow!(failure)),
            (None, None) => Err(anyhow::anyhow!("the server's job ended without a summary")),
        }
    });
    reporter.finish();
    let summary = outcome.with_context(|| format!("indexing {shown}"))?;
    print_summary(&summary, json)
}

/// `index --push NAME`: the copy, progress lines on stderr, the summary (text or JSON) on stdout.
fn run_push(config: &aiex_config::Config, name: &str, json: bool) -> anyhow::Result<()> {
    let mut last_line = Instant::now();
    let summary = aiex_indexer::push::push_collection(config, name, &mut |done, total| {
        if done == total || last_line.elapsed() > Duration::from_secs(5) {
            eprintln!("pushing: {done}/{total} points");
            last_line = Instant::now();
        }
    })?;
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut stdout, &summary)?;
        writeln!(stdout)?;
    } else {
        writeln!(
            stdout,
            "pushed `{}` to {} ({}): {} points, {} files, {} chunks, revision {}, took {:.2}s",
            summary.collection,
            summary.url,
            summary.qdrant_collection,
            summary.points,
            summary.files,
            summary.chunks,
            summary.revision,
            summary.took_ms as f64 / 1000.0
        )?;
    }
    stdout.flush()?;
    Ok(())
}

/// Shows progress as a bar on a terminal, as occasional plain lines otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    last_line: Instant,
    stage: &'static str,
    embed_started: Option<Instant>,
}

impl Reporter {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg:<10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Reporter {
            bar,
            last_line: Instant::now(),
            stage: "",
            embed_started: None,
        }
    }

    fn report(&mut self, event: IndexProgress) {
        let (stage, done, total) = match event {
            IndexProgress::Walked { files, skipped } => {
                self.line(&format!("found {files} files ({skipped} skipped)"));
                return;
            }
            IndexProgress::Chunking { done, total } => ("parsing", done, total),
            IndexProgress::KeywordCommitted { generation, chunks } => {
                self.line(&format!(
                    "keyword index committed: generation {generation}, {chunks} chunks (searchable now)"
                ));
                return;
            }
            IndexProgress::Embedding { done, total } => {
                self.embed_started.get_or_insert_with(Instant::now);
                ("embedding", done, total)
            }
            IndexProgress::Optimizing => {
                self.line("building the vector index");
                return;
            }
        };
        match &self.bar {
            Some(bar) => {
                if self.stage != stage {
                    bar.reset();
                    bar.set_message(stage);
                    bar.set_length(total as u64);
                }
                bar.set_position(done as u64);
            }
            None => {
                if self.stage != stage
                    || done == total
                    || self.last_line.elapsed() > Duration::from_secs(5)
                {
                    let rate = match (stage, self.embed_started) {
                        ("embedding", Some(started)) if started.elapsed().as_secs_f64() > 0.5 => {
                            format!(
                                ", {:.1} chunks/s",
                                done as f64 / started.elapsed().as_secs_f64()
                            )
                        }
                        _ => String::new(),
                    };
                    eprintln!("{stage}: {done}/{total}{rate}");
                    self.last_line = Instant::now();
                }
            }
        }
        self.stage = stage;
    }

    fn line(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn write_summary(out: &mut impl Write, summary: &IndexSummary) -> std::io::Result<()> {
    let seconds = |ms: u64| ms as f64 / 1000.0;
    writeln!(
        out,
        "indexed `{}` ({}) generation {}",
        summary.collection,
        summary.root.display(),
        summary.generation
    )?;
    writeln!(
        out,
        "  files:   {} scanned, {} changed ({} added, {} modified), {} unchanged, {} deleted",
        summary.scanned,
        summary.changed,
        summary.added,
        summary.modified,
        summary.unchanged,
        summary.deleted
    )?;
    if summary.skipped.is_empty() {
        writeln!(out, "  skipped: none")?;
    } else {
        let reasons: Vec<String> = summary
            .skipped
            .iter()
            .map(|(reason, count)| format!("{count} {}", reason.name()))
            .collect();
        writeln!(
            out,
            "  skipped: {} ({})",
            summary.skipped_total(),
            reasons.join(", ")
        )?;
    }
    for failed in &summary.failed {
        writeln!(
            out,
            "  failed:  {} ({}): {}",
            failed.path,
            failed.reason.name(),
            failed.detail
        )?;
    }
    writeln!(
        out,
        "  chunks:  {} in collection, {} written, {} embedded, {} vectors reused",
        summary.chunks, summary.chunks_written, summary.embedded, summary.vectors_reused
    )?;
    writeln!(
        out,
        "  vectors: {}",
        if summary.vectors_complete {
            "complete"
        } else {
            "incomplete (run `index` again to finish)"
        }
    )?;
    let timings = &summary.timings;
    writeln!(
        out,
        "  time:    {:.2}s (walk {:.2}s, parse {:.2}s, keyword {:.2}s, embed {:.2}s)",
        seconds(timings.total_ms),
        seconds(timings.walk_ms),
        seconds(timings.chunk_ms),
        seconds(timings.keyword_ms),
        seconds(timings.embed_ms)
    )
}

fn print_status(
    config: &aiex_config::Config,
    index_dir: &IndexDir,
    json: bool,
) -> anyhow::Result<()> {
    let server = config.vector.backend == aiex_config::VectorBackend::Server;
    let status = index_dir.status()?;
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, &status)?;
        writeln!(stdout)?;
        return Ok(());
    }
    writeln!(stdout, "index: {}", index_dir.path().display())?;
    if status.is_empty() {
        writeln!(stdout, "no collections yet: run `aiex-research index PATH`")?;
    }
    for collection in status {
        let vectors = if collection.vectors_complete {
            "complete".to_string()
        } else {
            format!(
                "{}/{} embedded",
                collection.embedded_chunks, collection.chunks
            )
        };
        writeln!(stdout, "{}", collection.name)?;
        writeln!(stdout, "  kind:       {}", collection.kind.name())?;
        writeln!(stdout, "  root:       {}", collection.root.display())?;
        writeln!(stdout, "  files:      {}", collection.files)?;
        writeln!(stdout, "  chunks:     {}", collection.chunks)?;
        writeln!(stdout, "  vectors:    {vectors}")?;
        writeln!(
            stdout,
            "  model:      {} ({} dims)",
            collection.model_id.as_deref().unwrap_or("none"),
            collection
                .dimension
                .map_or("-".to_string(), |d| d.to_string())
        )?;
        writeln!(stdout, "  generation: {}", collection.generation)?;
        if server {
            let vectors_dir = index_dir.collection_paths(&collection.name).vectors;
            match aiex_indexer::store::server::collection_points(config, &vectors_dir) {
                Ok((qdrant, points)) => {
                    writeln!(stdout, "  server:     {points} points in {qdrant}")?;
                }
                Err(err) => writeln!(stdout, "  server:     {err}")?,
            }
        }
        writeln!(
            stdout,
            "  size:       {:.1} MiB",
            collection.size_bytes as f64 / (1024.0 * 1024.0)
        )?;
    }
    Ok(())
}
