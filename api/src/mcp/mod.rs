//! The MCP server (Model Context Protocol, on the `rmcp` SDK): Aiex's search, file reads and
//! research as tools for IDE agents (Claude Code, Cursor, Zed, VS Code, …).
//!
//! Tools, each with a JSON schema: `search` (ranked, exact or regex), `read` (lines of an indexed
//! file, read back from the index, so nothing outside the indexed roots is reachable),
//! `research` (a research session with progress notifications, answered by its cited report),
//! `list_collections` and `index_status`. They call the same engine as the HTTP routes: input is
//! checked by the routes' own validation, searches run on the server's [`EngineSlot`], research
//! sessions are the [`ResearchManager`]'s (stored and resumable like any other).
//!
//! A refused or failed call answers a tool error (`isError: true`) whose text says what was wrong,
//! with `{"error":{"code","message"}}` as its structured content; arguments that do not match a
//! tool's schema (a wrong type, an unknown field) are tool errors too (`invalid_arguments`), so an
//! agent can correct itself; an unknown tool is a protocol error. Two transports: stdio (`aiex-research mcp`, [`serve_stdio`]) and streamable HTTP at
//! `/mcp` on `serve` ([`http`]), behind the API's key check and limits.

pub mod http;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool_handler, ErrorData, RoleServer, ServerHandler, ServiceExt};
use tokio_util::sync::CancellationToken;

use crate::engine::EngineParts;
use crate::server::auth::Caller;
use crate::server::engine_slot::EngineSlot;
use crate::server::error::{ApiError, ServerError};
use crate::server::research::ResearchManager;
use crate::server::stream::StreamContext;
use crate::server::AppState;

/// What the tools work with: the server's, or a standalone process's own.
pub struct McpContext {
    pub config: Arc<aiex_config::Config>,
    pub engine: Arc<EngineSlot>,
    pub research: Arc<ResearchManager>,
    pub streams: StreamContext,
}

impl McpContext {
    /// The context of the HTTP server (`/mcp` on `serve`).
    pub fn of_state(state: &AppState) -> Self {
        McpContext {
            config: Arc::clone(&state.config),
            engine: Arc::clone(&state.engine),
            research: Arc::clone(&state.research),
            streams: state.streams.clone(),
        }
    }

    /// A context of its own (stdio): an engine over the index, research sessions with `llm`
    /// planning and writing when configured. Sessions of a server are not resumed here.
    pub async fn standalone(
        config: aiex_config::Config,
        shutdown: CancellationToken,
    ) -> Result<Self, ServerError> {
        let config = Arc::new(config);
        let parts = EngineParts::new(&config)
            .map_err(|err| ServerError::Serve(std::io::Error::other(err.to_string())))?;
        let engine = Arc::new(EngineSlot::new(Arc::clone(&config), parts));
        let llm = aiex_llm::Llm::from_config(&config.llm)?;
        let research = ResearchManager::open(
            Arc::clone(&config),
            Arc::clone(&engine),
            llm,
            shutdown.clone(),
        )
        .await;
        let streams =
            StreamContext::new(Duration::from_secs(config.server.keep_alive_secs), shutdown);
        Ok(McpContext {
            config,
            engine,
            research,
            streams,
        })
    }
}

/// The MCP server's handler: one per connection (stdio) or session (HTTP), sharing the context.
#[derive(Clone)]
pub struct AiexMcp {
    context: Arc<McpContext>,
}

impl AiexMcp {
    pub fn new(context: Arc<McpContext>) -> Self {
        AiexMcp { context }
    }
}

/// The caller of a request: the API key's owner over HTTP, `local` on stdio.
fn caller_of(context: &RequestContext<RoleServer>) -> Caller {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .unwrap_or_else(Caller::local)
}

/// A tool error: the message for people and agents, the code and message as structured content.
fn refused(err: ApiError) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(format!(
        "{} ({})",
        err.message, err.code
    ))]);
    result.structured_content = Some(serde_json::json!({
        "error": { "code": err.code, "message": err.message }
    }));
    result
}

const INSTRUCTIONS: &str = "Aiex searches and researches the code and documentation collections \
indexed on this machine (and the web when configured). `list_collections` names them; `search` \
finds ranked passages (keyword, vector, hybrid) or every matching line (exact, regex) with \
`path:lines`; `read` returns lines of an indexed file; `research` answers a question with a cited \
report (it takes a while: progress is notified); `index_status` tells how complete the index is.";

#[tool_handler]
impl ServerHandler for AiexMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("aiex", env!("CARGO_PKG_VERSION"))
                    .with_title("Aiex")
                    .with_description(
                        "Search and research over your code, its documentation and the web",
                    ),
            )
            .with_instructions(INSTRUCTIONS)
    }

    /// Runs a tool; arguments that do not fit its schema (the SDK answers them as a tool error
    /// with its own text) get the same shape as every other refusal, coded `invalid_arguments`.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = ToolCallContext::new(self, request, context);
        match Self::tool_router().call(call).await? {
            CallToolResponse::Complete(result)
                if result.is_error == Some(true) && result.structured_content.is_none() =>
            {
                let message = result
                    .content
                    .iter()
                    .filter_map(|content| content.as_text())
                    .map(|text| text.text.as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
                let message = message
                    .strip_prefix("failed to deserialize parameters: ")
                    .unwrap_or(&message);
                Ok(refused(ApiError::bad_request(
                    "invalid_arguments",
                    format!("invalid arguments: {message}"),
                ))
                .into())
            }
            other => Ok(other),
        }
    }
}

/// Serves MCP on stdin and stdout until the client closes them.
pub async fn serve_stdio(context: Arc<McpContext>) -> anyhow::Result<()> {
    let service = AiexMcp::new(Arc::clone(&context))
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|err| anyhow::anyhow!("starting the MCP server: {err}"))?;
    let quit = service.waiting().await;
    context.streams.shutdown.cancel();
    context.research.begin_shutdown();
    context.research.wait_stopped(Duration::from_secs(10)).await;
    quit.map_err(|err| anyhow::anyhow!("the MCP server stopped: {err}"))?;
    Ok(())
}
