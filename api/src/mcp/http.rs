//! `/mcp` on `serve`: the streamable-HTTP transport of the MCP server, mounted behind the API's
//! key check, rate limit and request limits (see [`crate::server::app_with`]).
//!
//! Guards of its own, from the server's settings: request bodies up to `server.max_body_bytes`;
//! without API keys (the server then listens on loopback only) the `Host` header must name a
//! loopback host, which stops DNS-rebinding pages; with keys the key is the guard. A request
//! with an `Origin` header (a browser's) is refused unless that origin is in
//! `server.cors_allowed_origins`.

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::{AiexMcp, McpContext};
use crate::server::AppState;

/// The MCP service over the server's state, ending its sessions at the server's shutdown.
pub fn service(state: &AppState) -> StreamableHttpService<AiexMcp, LocalSessionManager> {
    let context = Arc::new(McpContext::of_state(state));
    let server = &state.config.server;
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(state.streams.shutdown.child_token())
        .with_sse_keep_alive(Some(state.streams.keep_alive))
        .with_max_request_body_bytes(server.max_body_bytes);
    if !server.api_keys.is_empty() {
        config = config.disable_allowed_hosts();
    }
    let origins = &server.cors_allowed_origins;
    config = if origins.iter().any(|origin| origin == "*") {
        config.disable_allowed_origins()
    } else if origins.is_empty() {
        config.enforce_origin_validation()
    } else {
        config.with_allowed_origins(origins.iter().cloned())
    };
    StreamableHttpService::new(
        move || Ok(AiexMcp::new(Arc::clone(&context))),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
