//! `research`: a deep question in, a cited report out, progress streamed to stderr (or every event
//! as a JSON line on stdout with `--json`). Also the shared session runner of `sessions resume`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use aiex_research::{
    EventKind, Format, ResearchEngine, ResearchEvent, ResearchRequest, SessionHandle,
};

#[derive(Debug, Args)]
pub struct ResearchArgs {
    /// The question.
    #[arg(value_name = "QUESTION")]
    pub question: String,
    /// Collections to search, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub collections: Vec<String>,
    /// Sources to ask, comma-separated: code, docs, web (default: all configured).
    #[arg(long, value_delimiter = ',', value_name = "SOURCES")]
    pub sources: Vec<String>,
    /// Search rounds: 2 adds a round that searches the gaps of the first (default: research.depth).
    #[arg(long)]
    pub depth: Option<usize>,
    /// A question template (see `templates list`).
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How a session's report and events are printed.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write the report to this file (atomically) instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Report format: md, json or html (one self-contained page).
    #[arg(long, default_value = "md", value_parser = parse_format)]
    pub format: Format,
    /// Every event as one JSON object per line on stdout (the events the HTTP API streams); the
    /// report then goes only to `--out`.
    #[arg(long, visible_alias = "events")]
    pub json: bool,
    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Extractive synthesis and the deterministic planner even when an LLM is configured.
    #[arg(long)]
    pub no_llm: bool,
    /// A session that ends `complete_with_errors` (some searches failed) is a failure (exit
    /// status 2) instead of a warning on stderr; the report is written either way.
    #[arg(long)]
    pub strict: bool,
}

/// The engine over `collections`, with the configured LLM unless `--no-llm`.
pub fn engine(
    config: &aiex_config::Config,
    collections: &[String],
    output: &OutputArgs,
) -> anyhow::Result<Arc<ResearchEngine>> {
    let mut engine = ResearchEngine::from_config(config, collections)?;
    if !output.no_llm {
        engine = engine.with_llm_from_config()?;
    }
    Ok(Arc::new(engine))
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(
    config: &aiex_config::Config,
    args: &ResearchArgs,
    no_server: bool,
) -> anyhow::Result<()> {
    let depth = args.depth.unwrap_or(config.research.depth);
    if depth == 0 || depth > 3 {
        anyhow::bail!("--depth must be 1, 2 or 3");
    }
    let stay_local = args
        .output
        .no_llm
        .then_some("--no-llm has no HTTP API equivalent");
    if let Some(server) = super::delegate::find(config, no_server, stay_local) {
        return run_remote(&server, args, depth);
    }
    let engine = engine(config, &args.collections, &args.output)?;
    let request = ResearchRequest {
        question: args.question.clone(),
        collections: args.collections.clone(),
        depth,
        template: args.template.clone(),
        sources: args.sources.clone(),
    };
    let runtime = runtime()?;
    runtime.block_on(async {
        let handle = engine.start(request)?;
        drive(&engine, handle, &args.output).await
    })
}

/// Follows a running session to its end: progress or JSON events, Ctrl-C cancels, then the report.
pub async fn drive(
    engine: &Arc<ResearchEngine>,
    mut handle: SessionHandle,
    output: &OutputArgs,
) -> anyhow::Result<()> {
    let id = handle.id.clone();
    let canceller = handle.canceller();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = canceller.send(true);
        }
    });
    let mut last_id = 0u64;
    loop {
        match handle.events.recv().await {
            Ok(event) => {
                last_id = event.id;
                show(&event, output)?;
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                // Missed some: the log has them all.
                for event in engine.store().events_after(&id, last_id)? {
                    last_id = event.id;
                    show(&event, output)?;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
    interrupt.abort();
    let report = handle.wait().await?;
    let Some(report) = report else {
        anyhow::bail!("research cancelled; continue with `aiex-research sessions resume {id}`");
    };
    deliver(&report, output)
}

/// The session run by the server of this data directory (`POST /v1/research`, then its events
/// stream): events shown as the local run shows them, the report of its `report_ready` event
/// rendered and written the same way. The server's LLM settings apply. Ctrl-C cancels the
/// session (the server keeps it for `sessions resume`).
fn run_remote(
    server: &super::delegate::Server,
    args: &ResearchArgs,
    depth: usize,
) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "question": args.question,
        "collections": args.collections,
        "sources": args.sources,
        "depth": depth,
        "template": args.template,
    });
    server.block_on(async {
        let created: serde_json::Value = server.post_json("/v1/research", &body).await?;
        let id = created
            .get("id")
            .and_then(|id| id.as_str())
            .context("the server's session has no id")?
            .to_string();
        follow_remote(server, &id, 0, &args.output).await
    })
}

/// Resumes session `id` in the server of this data directory (`POST
/// /v1/research/{id}/resume`) and follows it from its next event, as [`run_remote`] does.
pub fn resume_remote(
    server: &super::delegate::Server,
    id: &str,
    after: u64,
    output: &OutputArgs,
) -> anyhow::Result<()> {
    server.block_on(async {
        let _: serde_json::Value = server
            .post_json(&format!("/v1/research/{id}/resume"), &serde_json::json!({}))
            .await?;
        follow_remote(server, id, after, output).await
    })
}

/// Follows the server's session `id` from after event `after` to its end: events shown as the
/// local run shows them, the report of its `report_ready` event delivered the same way. Ctrl-C
/// cancels the session (the server keeps it for `sessions resume`).
async fn follow_remote(
    server: &super::delegate::Server,
    id: &str,
    after: u64,
    output: &OutputArgs,
) -> anyhow::Result<()> {
    let mut report = None;
    let resume_hint =
        format!("research cancelled; continue with `aiex-research sessions resume {id}`");
    server
        .follow(
            &format!("/v1/research/{id}/events?after={after}"),
            "session",
            &format!("/v1/research/{id}"),
            &resume_hint,
            |event: ResearchEvent| {
                show(&event, output)?;
                match event.kind {
                    EventKind::ReportReady { report: ready } => report = Some(*ready),
                    EventKind::Failed { error } => anyhow::bail!("{error}"),
                    EventKind::Cancelled {} => anyhow::bail!("{resume_hint}"),
                    EventKind::Done { .. } => return Ok(ControlFlow::Break(())),
                    _ => {}
                }
                Ok(ControlFlow::Continue(()))
            },
        )
        .await?;
    let report = report.context("the server's session ended without a report")?;
    deliver(&report, output)
}

/// The finished report: written to `--out`, or printed (unless `--json`), then the warning (or
/// the failure under `--strict`) of searches that failed.
fn deliver(report: &aiex_research::Report, output: &OutputArgs) -> anyhow::Result<()> {
    let text = report.render(output.format)?;
    match &output.out {
        Some(path) => {
            aiex_research::report::write_atomic(path, text.as_bytes())?;
            if !output.quiet {
                eprintln!("report written to {}", path.display());
            }
        }
        None if !output.json => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
        None => {}
    }
    degraded(report, output)
}

/// A report whose searches partly failed: a warning on stderr, or the failure under `--strict`.
fn degraded(report: &aiex_research::Report, output: &OutputArgs) -> anyhow::Result<()> {
    let failed = report.failed_searches.len();
    if failed == 0 {
        return Ok(());
    }
    let noun = if failed == 1 { "search" } else { "searches" };
    let message = format!(
        "research complete_with_errors: {failed} {noun} failed, so evidence may be missing (the report's \"Searches that failed\" lists them)"
    );
    if output.strict {
        anyhow::bail!("{message} (--strict)");
    }
    eprintln!("warning: {message}");
    Ok(())
}

fn show(event: &ResearchEvent, output: &OutputArgs) -> anyhow::Result<()> {
    if output.json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer(&mut stdout, event)?;
        writeln!(stdout)?;
        stdout.flush()?;
    }
    if !output.quiet {
        match &event.kind {
            // The synthesis as it is written, when the report itself goes to a file.
            EventKind::SynthesisDelta { text } if output.out.is_some() && !output.json => {
                let mut stderr = std::io::stderr().lock();
                stderr.write_all(text.as_bytes())?;
                stderr.flush()?;
            }
            kind => {
                if let Some(line) = progress_line(kind) {
                    eprintln!("{line}");
                }
            }
        }
    }
    Ok(())
}

/// The progress line of an event, if it has one.
pub fn progress_line(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::SessionStarted { session, .. } => format!("research session {session}"),
        EventKind::Resumed { session, completed } => {
            format!(
                "resuming session {session} (done: {})",
                completed.join(", ")
            )
        }
        EventKind::StageStarted { stage, round } if *round > 0 => {
            format!("» {} (round {round})", stage.name())
        }
        EventKind::StageStarted { stage, .. } => format!("» {}", stage.name()),
        EventKind::StageSkipped { stage, reason, .. } => {
            format!("» {} skipped: {reason}", stage.name())
        }
        EventKind::Planned { plan } => {
            let mut lines = vec![format!(
                "  {} sub-questions ({:?}):",
                plan.sub_questions.len(),
                plan.question_type
            )];
            for sub in &plan.sub_questions {
                lines.push(format!("   {}. {}", sub.index + 1, sub.text));
            }
            lines.join("\n")
        }
        EventKind::SearchCompleted {
            sub_question,
            query,
            found,
            took_ms,
            failures,
            ..
        } => {
            let mut line = format!(
                "  [{}] {query:?}: {} results ({took_ms} ms)",
                sub_question + 1,
                found.len()
            );
            for failure in failures {
                line.push_str(&format!(
                    "\n    warning: source {} failed: {}",
                    failure.source, failure.error
                ));
            }
            line
        }
        EventKind::SearchFailed { query, error, .. } => {
            format!("  warning: search {query:?} failed: {error}")
        }
        EventKind::PageFetched { page, .. } => {
            format!(
                "  read {}",
                page.locator.url.as_deref().unwrap_or(&page.locator.title)
            )
        }
        EventKind::PageFailed { url, error, .. } => format!("  could not read {url}: {error}"),
        EventKind::EvidenceSelected { passages, gaps, .. } => format!(
            "  {} evidence passages; {} sub-questions with gaps",
            passages.len(),
            gaps.len()
        ),
        EventKind::CitationsRemoved { removed } => {
            let raws: Vec<&str> = removed.iter().map(|r| r.raw.as_str()).collect();
            format!("  removed citations to nothing: {}", raws.join(", "))
        }
        EventKind::BudgetExhausted {
            budget,
            stage,
            limit,
            ..
        } => format!(
            "  budget reached: {} (limit {limit}) during {}",
            budget.name(),
            stage.name()
        ),
        EventKind::Warning { message } => format!("  warning: {message}"),
        EventKind::Cancelled {} => "cancelled".to_string(),
        EventKind::Failed { error } => format!("failed: {error}"),
        EventKind::Done {
            took_ms, failures, ..
        } if !failures.is_empty() => format!(
            "done in {:.1} s: complete_with_errors ({} failed searches)",
            *took_ms as f64 / 1000.0,
            failures.len()
        ),
        EventKind::Done { took_ms, .. } => {
            format!("done in {:.1} s", *took_ms as f64 / 1000.0)
        }
        _ => return None,
    })
}
