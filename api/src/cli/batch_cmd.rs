//! `aiex-research index --batch jobs.toml`: many directories indexed in this process, a few at a
//! time, through the same job runner as the HTTP API's indexing jobs; or, beside a running server
//! of the same data directory, as that server's jobs (see [`super::delegate`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use aiex_api::server::jobs::{JobItemSpec, JobKind, JobManager, JobOptions, JobRecord, JobState};

/// The batch file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchFile {
    /// Directories indexed at the same time (the `--concurrency` flag wins).
    concurrency: Option<usize>,
    #[serde(rename = "job", default)]
    jobs: Vec<BatchJob>,
}

/// One `[[job]]`: a directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchJob {
    path: String,
    name: Option<String>,
    #[serde(default)]
    kind: JobKind,
    #[serde(default = "default_true")]
    embed: bool,
    #[serde(default)]
    rebuild: bool,
}

fn default_true() -> bool {
    true
}

pub fn run(
    config: &aiex_config::Config,
    file: &Path,
    concurrency: Option<usize>,
    json: bool,
    no_server: bool,
) -> anyhow::Result<()> {
    let (batch, items) = read_batch(file)?;
    let stay_local = concurrency
        .is_some()
        .then_some("--concurrency has no HTTP API equivalent");
    if let Some(server) = super::delegate::find(config, no_server, stay_local) {
        if server.runs_jobs() {
            if batch.concurrency.is_some() {
                tracing::info!(
                    "the server runs its own server.job_concurrency jobs at a time, not the file's \
                     concurrency"
                );
            }
            return run_remote(&server, items, json);
        }
        tracing::info!(
            "the server at {} does not run indexing jobs (--no-jobs): indexing in this process",
            server.url()
        );
    }
    // As `index PATH`: nothing starts when a directory's vectors are held by another process.
    for (path, job) in &items {
        let mut request = aiex_indexer::IndexRequest::new(path);
        request.name = job.name.clone();
        request.embed = job.embed;
        super::index_cmd::refuse_if_vectors_held(config, &request, no_server, stay_local)?;
    }
    let concurrency = concurrency
        .or(batch.concurrency)
        .unwrap_or(config.server.job_concurrency)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let config = Arc::new(config.clone());
    let records = runtime.block_on(run_jobs(config, items, concurrency))?;
    let failed = print_records(&records, json)?;
    if failed > 0 {
        anyhow::bail!("{failed} of {} directories were not indexed", records.len());
    }
    Ok(())
}

/// The batch file and its directories, canonical, with their job entries.
fn read_batch(file: &Path) -> anyhow::Result<(BatchFile, Vec<(PathBuf, BatchJob)>)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut batch: BatchFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    if batch.jobs.is_empty() {
        anyhow::bail!("{} lists no [[job]]", file.display());
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for job in std::mem::take(&mut batch.jobs) {
        let path = base.join(&job.path);
        let canonical = path
            .canonicalize()
            .with_context(|| format!("{} does not exist", path.display()))?;
        if let Some(name) = &job.name {
            aiex_indexer::collection::validate_name(name)?;
        }
        items.push((canonical, job));
    }
    Ok((batch, items))
}

/// Runs one job per directory until all have ended (or Ctrl-C stopped them at a checkpoint);
/// their final records.
async fn run_jobs(
    config: Arc<aiex_config::Config>,
    items: Vec<(PathBuf, BatchJob)>,
    concurrency: usize,
) -> anyhow::Result<Vec<JobRecord>> {
    let shutdown = CancellationToken::new();
    let interrupt = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping at the next checkpoint");
            interrupt.cancel();
        }
    });
    let options = JobOptions {
        dir: None,
        concurrency,
        run: true,
        roots: None,
        // The CLI's batch runs in this process; in server mode each directory still takes its
        // collection's lease in the cluster.
        shared: false,
    };
    let manager = JobManager::start(config, options, None, shutdown.clone()).await?;
    let mut ids = Vec::new();
    for (path, job) in items {
        let spec = JobItemSpec {
            path: path.display().to_string(),
            name: job.name.clone(),
            kind: job.kind,
        };
        let record = manager
            .submit("local", vec![(path, spec)], job.embed, job.rebuild)
            .await?;
        ids.push(record.id);
    }
    tokio::select! {
        () = manager.wait_all() => {}
        () = shutdown.cancelled() => manager.wait_stopped(std::time::Duration::from_secs(60)).await,
    }
    Ok(ids
        .iter()
        .filter_map(|id| manager.get(id, None).ok())
        .collect())
}

/// The batch as jobs of `server`, one per directory: their final records polled from
/// `GET /v1/index/jobs/{id}` and printed as a local batch's. Ctrl-C cancels them.
fn run_remote(
    server: &super::delegate::Server,
    items: Vec<(PathBuf, BatchJob)>,
    json: bool,
) -> anyhow::Result<()> {
    let records = server.block_on(async {
        let mut ids = Vec::new();
        for (path, job) in &items {
            let path = path
                .to_str()
                .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
            let body = serde_json::json!({
                "items": [{"path": path, "name": job.name, "kind": job.kind}],
                "embed": job.embed,
                "rebuild": job.rebuild,
            });
            let record: JobRecord = server.post_json("/v1/index/jobs", &body).await?;
            ids.push(record.id);
        }
        let interrupt = tokio::signal::ctrl_c();
        tokio::pin!(interrupt);
        let mut interrupted = false;
        loop {
            let mut records = Vec::with_capacity(ids.len());
            for id in &ids {
                records.push(
                    server
                        .get_json::<JobRecord>(&format!("/v1/index/jobs/{id}"))
                        .await?,
                );
            }
            if records.iter().all(|record| record.state.is_terminal()) {
                return anyhow::Ok(records);
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(300)) => {}
                _ = &mut interrupt, if !interrupted => {
                    interrupted = true;
                    eprintln!("interrupted: cancelling the server's jobs");
                    for id in &ids {
                        server.delete(&format!("/v1/index/jobs/{id}")).await;
                    }
                }
            }
        }
    })?;
    let failed = print_records(&records, json)?;
    if failed > 0 {
        anyhow::bail!("{failed} of {} directories were not indexed", records.len());
    }
    Ok(())
}

/// Prints one line (or JSON object) per directory; how many were not indexed.
fn print_records(records: &[JobRecord], json: bool) -> anyhow::Result<usize> {
    let mut stdout = std::io::stdout().lock();
    let mut failed = 0;
    for record in records {
        for item in &record.items {
            if item.state != JobState::Succeeded {
                failed += 1;
            }
            if json {
                serde_json::to_writer(&mut stdout, item)?;
                writeln!(stdout)?;
            } else {
                let detail = match (&item.error, &item.summary) {
                    (Some(error), _) => error.clone(),
                    (None, Some(summary)) => format!(
                        "{} changed, {} unchanged, {} chunks",
                        summary["changed"], summary["unchanged"], summary["chunks"]
                    ),
                    (None, None) => String::new(),
                };
                writeln!(
                    stdout,
                    "{:<9} {} {}  {detail}",
                    item.state.name(),
                    item.name.as_deref().unwrap_or("-"),
                    item.path.display()
                )?;
            }
        }
    }
    stdout.flush()?;
    Ok(failed)
}
