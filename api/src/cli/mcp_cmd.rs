//! `aiex-research mcp`: the MCP server on stdin and stdout, for IDE agents that start it as a
//! command (the streamable-HTTP transport is `/mcp` on `serve`).
//!
//! Beside a running `serve` of the same data directory (which owns its vector stores, see
//! [`super::delegate`]), the command relays the messages between stdio and that server's `/mcp`
//! instead, authenticated as the local owner: the agent sees the same tools, answered by the
//! server.

use anyhow::Context;
use clap::Args;
use rmcp::service::{RoleClient, RoleServer};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport, Transport};
use tokio_util::sync::CancellationToken;

use aiex_api::mcp::{serve_stdio, McpContext};

use super::llm_args::LlmArgs;

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The LLM that plans research sessions and writes their reports (none: extractive).
    #[command(flatten)]
    pub llm: LlmArgs,
}

impl McpArgs {
    pub fn overrides(&self) -> Vec<(String, String)> {
        self.llm.overrides()
    }
}

pub fn run(config: aiex_config::Config, args: &McpArgs, no_server: bool) -> anyhow::Result<()> {
    let stay_local = (!args.overrides().is_empty())
        .then_some("LLM flags configure this process's research only");
    if let Some(server) = super::delegate::find(&config, no_server, stay_local) {
        let (url, token) = server.mcp_endpoint();
        return server.block_on(relay(url, token));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let context = McpContext::standalone(config, CancellationToken::new()).await?;
        serve_stdio(std::sync::Arc::new(context)).await
    })
}

/// Passes every message from stdin to the server's MCP endpoint `url` and every message of the
/// server to stdout, until the agent closes stdin or the server ends the session.
async fn relay(url: String, token: String) -> anyhow::Result<()> {
    let client = reqwest_mcp::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let config = StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token);
    let mut remote = IntoTransport::<RoleClient, _, _>::into_transport(
        StreamableHttpClientTransport::with_client(client, config),
    );
    let mut local =
        IntoTransport::<RoleServer, std::io::Error, _>::into_transport(rmcp::transport::stdio());
    let outcome = loop {
        tokio::select! {
            message = local.receive() => {
                let Some(message) = message else {
                    break Ok(());
                };
                if let Err(err) = remote.send(message).await {
                    break Err(anyhow::anyhow!("sending a message to the MCP server at {url}: {err}"));
                }
            }
            message = remote.receive() => {
                let Some(message) = message else {
                    break Err(anyhow::anyhow!("the MCP server at {url} ended the session"));
                };
                if let Err(err) = local.send(message).await {
                    break Err(anyhow::anyhow!("writing to stdout: {err}"));
                }
            }
        }
    };
    let _ = remote.close().await;
    let _ = local.close().await;
    outcome
}
