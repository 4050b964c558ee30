//! `aiex-research serve`: the HTTP API; `serve hash-key`: the hash of an API key for the
//! configuration.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use aiex_api::server::server_file::{self, ServerFile, ServerFileGuard};
use aiex_api::server::{self, AppState, ServerOptions};

use super::llm_args::LlmArgs;

/// How long running indexing jobs get to stop at a checkpoint on shutdown.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    /// Address and port to listen on (default `server.bind`, 127.0.0.1:8484). Any address other
    /// than a loopback one requires `server.api_keys`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// Accept indexing jobs but do not run them (they stay queued for a later start).
    #[arg(long)]
    pub no_jobs: bool,
    /// The LLM that plans research sessions and writes their reports (none: extractive).
    #[command(flatten)]
    pub llm: LlmArgs,
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Read an API key on stdin and print the `sha256:…` hash to put in `server.api_keys`.
    HashKey,
}

impl ServeArgs {
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut overrides: Vec<(String, String)> = self
            .bind
            .iter()
            .map(|bind| ("server.bind".to_string(), bind.clone()))
            .collect();
        overrides.extend(self.llm.overrides());
        overrides
    }
}

pub fn run(config: aiex_config::Config, args: &ServeArgs) -> anyhow::Result<()> {
    if let Some(ServeCommand::HashKey) = args.command {
        let mut key = String::new();
        std::io::stdin()
            .read_to_string(&mut key)
            .context("reading the key from stdin")?;
        let key = key.trim_end_matches(['\r', '\n']);
        if key.is_empty() {
            anyhow::bail!("no key on stdin");
        }
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", server::auth::hash_key(key))?;
        return Ok(());
    }
    let addr: SocketAddr = config
        .server
        .bind
        .parse()
        .map_err(|_| server::ServerError::InvalidBind(config.server.bind.clone()))?;
    server::check_bind(addr, &config.server)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| server::ServerError::Bind { addr, source })?;
        let local = listener.local_addr().unwrap_or(addr);
        let token = server_file::new_token();
        let data_dir = config.data_dir.clone();
        let state = AppState::new(
            config,
            ServerOptions {
                run_jobs: !args.no_jobs,
                local_token: Some(aiex_config::Secret::new(token.clone())),
            },
        )
        .await?;
        let advertised = advertise(&data_dir, local, token, !args.no_jobs).await;
        eprintln!("listening on http://{local} (Ctrl-C to stop)");
        let router = server::app(state.clone());
        let served = server::serve(state, router, listener, shutdown_signal(), DRAIN).await;
        if let Some(guard) = advertised {
            let _ = tokio::task::spawn_blocking(move || drop(guard)).await;
        }
        served?;
        eprintln!("stopped");
        anyhow::Ok(())
    })
}

/// Writes `server.json` into the data directory so that the command line of the same data
/// directory sends its work here; the guard removes it at the end. A server that listens on one
/// non-loopback address only (no loopback URL reaches it) advertises nothing, and a file that
/// cannot be written is a warning: the server works without it.
async fn advertise(
    data_dir: &std::path::Path,
    local: SocketAddr,
    token: String,
    jobs: bool,
) -> Option<ServerFileGuard> {
    let Some(url) = server_file::loopback_url(local) else {
        tracing::info!(
            "not writing {}: no loopback address reaches {local}",
            server_file::FILE_NAME
        );
        return None;
    };
    let file = ServerFile {
        pid: std::process::id(),
        url,
        token,
        version: env!("CARGO_PKG_VERSION").to_string(),
        jobs,
    };
    let dir = data_dir.to_path_buf();
    match tokio::task::spawn_blocking(move || ServerFileGuard::write(&dir, &file)).await {
        Ok(Ok(guard)) => Some(guard),
        Ok(Err(err)) => {
            tracing::warn!(
                "{} not written (the command line will not send its work here): {err}",
                server_file::path(data_dir).display()
            );
            None
        }
        Err(err) => {
            tracing::warn!("writing {}: {err}", server_file::FILE_NAME);
            None
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
