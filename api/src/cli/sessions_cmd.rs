//! `sessions list|show|resume`: research sessions stored under the data directory. `resume`
//! goes to a running server of the same data directory, as `research` does.

use clap::Subcommand;
use std::io::Write;

use aiex_research::{Format, SessionStore};

use super::research_cmd::{drive, engine, resume_remote, runtime, OutputArgs};

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sessions, newest first.
    List {
        /// Sessions shown.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Sessions skipped first.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// One JSON object per session.
        #[arg(long)]
        json: bool,
    },
    /// A session's status and report, or its stored events.
    Show {
        id: String,
        /// The stored events (JSON lines) instead of the report.
        #[arg(long)]
        events: bool,
        /// With --events: only events after this id.
        #[arg(long, default_value_t = 0, value_name = "ID")]
        after: u64,
        /// Report format: md, json or html (one self-contained page).
        #[arg(long, default_value = "md", value_parser = parse_format)]
        format: Format,
    },
    /// Continue an interrupted session from its last completed stage.
    Resume {
        id: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
}

pub fn run(
    config: &aiex_config::Config,
    command: &SessionsCommand,
    no_server: bool,
) -> anyhow::Result<()> {
    let store = SessionStore::new(&config.data_dir);
    let mut stdout = std::io::stdout().lock();
    match command {
        SessionsCommand::List {
            limit,
            offset,
            json,
        } => {
            let (sessions, total) = store.list(*offset, *limit)?;
            if *json {
                for session in &sessions {
                    serde_json::to_writer(&mut stdout, session)?;
                    writeln!(stdout)?;
                }
            } else if sessions.is_empty() {
                writeln!(stdout, "no research sessions")?;
            } else {
                for session in &sessions {
                    let status = serde_json::to_value(session.status)?;
                    writeln!(
                        stdout,
                        "{}  {}  {:<10}  {}",
                        session.id,
                        session.started_at,
                        status.as_str().unwrap_or(""),
                        session.question
                    )?;
                }
                if total > offset + sessions.len() {
                    writeln!(
                        stdout,
                        "({} more; use --offset)",
                        total - offset - sessions.len()
                    )?;
                }
            }
        }
        SessionsCommand::Show {
            id,
            events,
            after,
            format,
        } => {
            if *events {
                for event in store.events_after(id, *after)? {
                    serde_json::to_writer(&mut stdout, &event)?;
                    writeln!(stdout)?;
                }
            } else {
                let summary = store.summary(id)?;
                match store.report(id)? {
                    Some(report) => stdout.write_all(report.render(*format)?.as_bytes())?,
                    None => {
                        let status = serde_json::to_value(summary.status)?;
                        writeln!(
                            stdout,
                            "session {}: {}, {} events, last stage {}\nquestion: {}\nno report yet: `aiex-research sessions resume {}`",
                            summary.id,
                            status.as_str().unwrap_or(""),
                            summary.last_event_id,
                            summary.last_stage.map_or("none", |stage| stage.name()),
                            summary.question,
                            summary.id
                        )?;
                    }
                }
            }
        }
        SessionsCommand::Resume { id, output } => {
            drop(stdout);
            let state = store.state(id)?;
            // Beside a running server of this data directory, the server resumes it (it owns the
            // vector stores the session searches).
            let stay_local = output
                .no_llm
                .then_some("--no-llm has no HTTP API equivalent");
            if let Some(server) = super::delegate::find(config, no_server, stay_local) {
                return resume_remote(&server, id, state.last_id, output);
            }
            let collections = state
                .request
                .as_ref()
                .map(|request| request.collections.clone())
                .unwrap_or_default();
            let engine = engine(config, &collections, output)?;
            let runtime = runtime()?;
            return runtime.block_on(async {
                let handle = engine.resume(id)?;
                drive(&engine, handle, output).await
            });
        }
    }
    stdout.flush()?;
    Ok(())
}
