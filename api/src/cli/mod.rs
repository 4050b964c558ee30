//! Command-line interface: argument parsing and the commands.

mod batch_cmd;
mod config_cmd;
mod delegate;
mod docs_cmd;
mod grep_out;
mod index_cmd;
mod llm_args;
mod llm_cmd;
mod mcp_cmd;
mod research_cmd;
mod search_cmd;
mod serve_cmd;
mod sessions_cmd;
mod templates_cmd;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Aiex: search and research over your code, its documentation and the web.
#[derive(Debug, Parser)]
#[command(name = "aiex-research", version, about)]
pub struct Cli {
    /// Configuration file (default: $AIEX_CONFIG, else ~/.config/aiex/config.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory holding the index, the model and the runtime (overrides `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); AIEX_LOG sets a filter too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Run `index`, `docs add`, `search` and `research` in this process even when a server of the
    /// same data directory is running (by default they are sent to it: it owns the vector
    /// stores).
    #[arg(
        long,
        global = true,
        env = "AIEX_NO_SERVER",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub no_server: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Index a directory into a collection, or show the index's status.
    Index(index_cmd::IndexArgs),
    /// Search indexed collections.
    Search(search_cmd::SearchArgs),
    /// Index, list and remove documentation sets (searched by the `docs` source).
    Docs {
        #[command(subcommand)]
        command: docs_cmd::DocsCommand,
    },
    /// Research a question: plan, search, select evidence, write a cited report.
    Research(research_cmd::ResearchArgs),
    /// List, show and resume research sessions.
    Sessions {
        #[command(subcommand)]
        command: sessions_cmd::SessionsCommand,
    },
    /// Question templates for `research --template`.
    Templates {
        #[command(subcommand)]
        command: templates_cmd::TemplatesCommand,
    },
    /// Serve the HTTP API (search, research sessions, indexing jobs, history, metrics, OpenAPI).
    Serve(serve_cmd::ServeArgs),
    /// Serve MCP (Model Context Protocol) on stdin/stdout: search, read, research for IDE agents.
    Mcp(mcp_cmd::McpArgs),
    /// Talk to the configured LLM providers: one question, or their health.
    Llm {
        #[command(subcommand)]
        command: llm_cmd::LlmCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
}

pub use grep_out::NoMatches;

/// Logging on stderr: `AIEX_LOG` filters (default by `-v`), `AIEX_LOG_FORMAT=json` writes one
/// JSON object per line (for servers), and colour is used only on a terminal. The server's
/// access log (target `aiex::access`) is on at the default level.
pub fn init_logging(verbose: u8) {
    use std::io::IsTerminal;
    // qdrant-edge warns about process-wide feature flags that only a Qdrant server initialises.
    let default = match verbose {
        0 => "warn,aiex::access=info,qdrant_edge=error",
        1 => "info,qdrant_edge=error",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIEX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json =
        std::env::var("AIEX_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(false).try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

/// Loads the configuration with the global flags and a command's own flags as the top layer.
fn load_config(
    cli: &Cli,
    mut overrides: Vec<(String, String)>,
) -> anyhow::Result<aiex_config::Config> {
    if let Some(dir) = &cli.data_dir {
        overrides.push(("data_dir".to_string(), dir.display().to_string()));
    }
    let options = aiex_config::LoadOptions {
        file: cli.config.clone(),
        env: None,
        overrides,
    };
    aiex_config::Config::load(&options).map_err(|err| name_cli_flags(err).into())
}

/// The command-line flag that sets a configuration key, as the user typed it.
fn cli_flag(key: &str) -> Option<&'static str> {
    Some(match key {
        "data_dir" => "data-dir",
        "search.limit" => "limit",
        "search.mode" => "mode",
        "index.include" => "include",
        "index.exclude" => "exclude",
        "index.max_file_bytes" => "max-file-bytes",
        "index.hidden" => "hidden",
        "index.threads" => "threads",
        "llm.url" => "llm-url",
        "llm.model" => "llm-model",
        "llm.provider" => "llm-provider",
        "server.bind" => "bind",
        _ => return None,
    })
}

/// Problems with a value given on the command line name the flag (`--limit`), not the key.
fn name_cli_flags(mut err: aiex_config::ConfigError) -> aiex_config::ConfigError {
    if let aiex_config::ConfigError::Invalid { problems } = &mut err {
        for problem in problems {
            if let Some(aiex_config::Source::Flag(key)) = &mut problem.source {
                if let Some(flag) = cli_flag(key) {
                    *key = flag.to_owned();
                }
            }
        }
    }
    err
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Index(args) => {
            let config = load_config(&cli, args.overrides())?;
            index_cmd::run(&config, args, cli.no_server)
        }
        Command::Search(args) => {
            let config = load_config(&cli, args.overrides())?;
            search_cmd::run(&config, args, cli.no_server)
        }
        Command::Docs { command } => {
            let config = load_config(&cli, Vec::new())?;
            docs_cmd::run(&config, command, cli.no_server)
        }
        Command::Research(args) => {
            let config = load_config(&cli, Vec::new())?;
            research_cmd::run(&config, args, cli.no_server)
        }
        Command::Sessions { command } => {
            let config = load_config(&cli, Vec::new())?;
            sessions_cmd::run(&config, command, cli.no_server)
        }
        Command::Templates { command } => templates_cmd::run(command),
        Command::Serve(args) => {
            let config = load_config(&cli, args.overrides())?;
            serve_cmd::run(config, args)
        }
        Command::Mcp(args) => {
            let config = load_config(&cli, args.overrides())?;
            mcp_cmd::run(config, args, cli.no_server)
        }
        Command::Llm { command } => {
            let config = load_config(&cli, command.overrides())?;
            llm_cmd::run(&config, command)
        }
        Command::Config { command } => {
            let config = load_config(&cli, Vec::new())?;
            config_cmd::run(&config, command)
        }
    }
}
