//! `aiex-research mcp`: the MCP server on stdin and stdout, for IDE agents that start it as a
//! command (the streamable-HTTP transport is `/mcp` on `serve`).

use anyhow::Context;
use clap::Args;
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

pub fn run(config: aiex_config::Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let context = McpContext::standalone(config, CancellationToken::new()).await?;
        serve_stdio(std::sync::Arc::new(context)).await
    })
}
