//! The tools: their arguments (with JSON schemas) and what each runs. Validation, searches and
//! research sessions are those of the HTTP routes ([`crate::server::routes`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use aiex_indexer::grep::read::{read_lines, ReadError};
use aiex_indexer::grep::GrepSearcher;
use aiex_indexer::{CollectionKind, IndexDir};
use aiex_research::{EventKind, Format};
use futures_util::StreamExt;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{caller_of, refused, AiexMcp, McpContext};
use crate::server::error::ApiError;
use crate::server::research::BudgetOverrides;
use crate::server::research_stream::{progress_text, Followed};
use crate::server::routes::grep::{GrepModeBody, GrepRequestBody, GrepResponse};
use crate::server::routes::research::ResearchBody;
use crate::server::routes::search::{self as search_route, CollectionInfo, SearchRequestBody};

/// How a search matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Ranked by words (BM25).
    Keyword,
    /// Ranked by meaning (embeddings).
    Vector,
    /// Both, fused.
    Hybrid,
    /// Every line that contains the query's literal strings (ripgrep's rules).
    Exact,
    /// Every line that matches the query's regular expressions (ripgrep's rules).
    Regex,
}

/// Arguments of `search`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words, identifiers or a question. With mode `exact` or `regex`: the patterns, with the
    /// filters of the query language (`lang:rust path:src/ -path:tests "a phrase" /fn\s+\w+/`).
    #[schemars(length(min = 1, max = 2048))]
    pub query: String,
    /// Sources: `code`, `docs`, `web` (or `web:serper`, `web:tavily`, `web:searxng`); absent or
    /// empty: all.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Collections to search (see `list_collections`); absent or empty: all.
    #[serde(default)]
    pub collections: Vec<String>,
    /// `keyword`, `vector`, `hybrid` (default: the configured mode), `exact` or `regex`.
    #[serde(default)]
    pub mode: Option<SearchMode>,
    /// Only this language (`rust`, `python`, `typescript`, …).
    #[serde(default)]
    pub language: Option<String>,
    /// Only paths (relative to the collection root) matching this glob, e.g. `src/**/*.rs`
    /// (ranked modes; with `exact`/`regex` use a `path:` filter in the query).
    #[serde(default)]
    pub path: Option<String>,
    /// Most results: hits (1 to 200, default the configured limit), or matching lines with
    /// `exact`/`regex` (1 to 10000, default 1000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub limit: Option<usize>,
}

/// Arguments of `read`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    /// The collection (see `list_collections`).
    pub collection: String,
    /// The file's path relative to the collection root, as search results give it.
    pub path: String,
    /// First line, from 1 (default 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub start_line: Option<usize>,
    /// Last line, inclusive (default: to the end, at most 2000 lines).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub end_line: Option<usize>,
}

/// Arguments of `research`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResearchArgs {
    /// The question.
    #[schemars(length(min = 1, max = 4000))]
    pub question: String,
    /// Search rounds, 1 to 3 (default: the configured depth); later rounds search the gaps.
    #[serde(default)]
    #[schemars(range(min = 1, max = 3))]
    pub depth: Option<usize>,
    /// Collections to search; absent or empty: all.
    #[serde(default)]
    pub collections: Vec<String>,
}

/// Arguments of `index_status`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IndexStatusArgs {
    /// One collection; absent: all.
    #[serde(default)]
    pub collection: Option<String>,
}

/// One collection, for `list_collections`.
#[derive(Debug, Clone, Serialize)]
struct CollectionSummary {
    name: String,
    kind: &'static str,
    files: usize,
    chunks: usize,
    /// Files per language, most first.
    languages: BTreeMap<String, usize>,
}

/// A collection's index, for `index_status`.
#[derive(Debug, Clone, Serialize)]
struct CollectionIndex {
    #[serde(flatten)]
    info: CollectionInfo,
    /// The last indexing run: when it finished (seconds since the epoch) and what it skipped.
    last_run: Option<aiex_indexer::manifest::LastRun>,
}

fn json_result(value: &impl Serialize) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(value) => CallToolResult::structured(value),
        Err(err) => refused(ApiError::internal(err)),
    }
}

impl From<ReadError> for ApiError {
    fn from(err: ReadError) -> Self {
        let message = err.to_string();
        match err {
            ReadError::InvalidPath { .. } => ApiError::bad_request("invalid_path", message),
            ReadError::NotIndexed { .. } => ApiError::not_found("file_not_indexed", message),
            ReadError::NoFileIndex { .. } => ApiError::conflict("no_file_index", message),
            ReadError::InvalidRange { .. } => ApiError::bad_request("invalid_range", message),
            ReadError::Index(err) => err.into(),
        }
    }
}

/// Runs blocking index work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

#[tool_router(vis = "pub(super)")]
impl AiexMcp {
    #[tool(
        description = "Search the indexed code and documentation (and the web when configured). Ranked modes (keyword, vector, hybrid) answer the best passages with their collection, path, lines and a snippet; exact and regex answer every matching line, file by file, like ripgrep.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn search(&self, Parameters(args): Parameters<SearchArgs>) -> CallToolResult {
        let outcome = match args.mode {
            Some(SearchMode::Exact) | Some(SearchMode::Regex) => grep(&self.context, args)
                .await
                .map(|found| json_result(&found)),
            _ => ranked_search(&self.context, args)
                .await
                .map(|found| json_result(&found)),
        };
        outcome.unwrap_or_else(refused)
    }

    #[tool(
        description = "Read lines of an indexed file (as the index holds it), by collection and path relative to the collection root, as search results give them. At most 2000 lines a call; `truncated` says when more are left.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn read(&self, Parameters(args): Parameters<ReadArgs>) -> CallToolResult {
        let config = self.context.config.clone();
        let read = blocking(move || {
            read_lines(
                &config,
                &args.collection,
                &args.path,
                args.start_line,
                args.end_line,
            )
            .map_err(ApiError::from)
        })
        .await;
        match read {
            Ok(lines) => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(format!(
                    "{}:{}:{}-{} (of {} lines{})\n{}",
                    lines.collection,
                    lines.path,
                    lines.start_line,
                    lines.end_line,
                    lines.total_lines,
                    if lines.truncated { ", truncated" } else { "" },
                    lines.text
                ))]);
                result.structured_content = serde_json::to_value(&lines).ok();
                result
            }
            Err(err) => refused(err),
        }
    }

    #[tool(
        description = "Research a question in depth: plan, search the collections (and the web when configured) in rounds, select evidence, and write a report whose claims cite numbered references (`path:lines` or URLs). Takes from seconds to minutes; progress is notified. The session is stored like any other research session.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn research(
        &self,
        Parameters(args): Parameters<ResearchArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        research(&self.context, args, context)
            .await
            .unwrap_or_else(refused)
    }

    #[tool(
        description = "List the indexed collections (code repositories and documentation sets) with their kind, files, chunks and languages.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_collections(&self) -> CallToolResult {
        let index_dir = IndexDir::new(self.context.config.index_dir());
        blocking(move || collection_summaries(&index_dir))
            .await
            .map(|collections| json_result(&serde_json::json!({ "collections": collections })))
            .unwrap_or_else(refused)
    }

    #[tool(
        description = "How complete the index is, per collection: files, chunks, chunks with embeddings, whether vectors are complete, generation, size on disk, model, and the last indexing run.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn index_status(&self, Parameters(args): Parameters<IndexStatusArgs>) -> CallToolResult {
        let index_dir = IndexDir::new(self.context.config.index_dir());
        blocking(move || index_statuses(&index_dir, args.collection.as_deref()))
            .await
            .map(|collections| json_result(&serde_json::json!({ "collections": collections })))
            .unwrap_or_else(refused)
    }
}

async fn ranked_search(
    context: &McpContext,
    args: SearchArgs,
) -> Result<search_route::SearchResponse, ApiError> {
    let body = SearchRequestBody {
        query: args.query,
        sources: args.sources,
        collections: args.collections,
        languages: args.language.into_iter().collect(),
        path: args.path,
        limit: args.limit,
        mode: match args.mode {
            Some(SearchMode::Keyword) => Some(aiex_config::SearchMode::Keyword),
            Some(SearchMode::Vector) => Some(aiex_config::SearchMode::Vector),
            Some(SearchMode::Hybrid) => Some(aiex_config::SearchMode::Hybrid),
            _ => None,
        },
        ..SearchRequestBody::default()
    };
    let params = search_route::validate(&body, context.config.search.limit)?;
    let engine = search_route::engine_for(&context.engine, &params.collections).await?;
    let (search, _) = engine.prepare(&params, false);
    Ok(search_route::collect(engine.coordinator.search(search)).await)
}

/// Exact or regex search over the collections of the sources asked (`code`, `docs`).
async fn grep(context: &McpContext, args: SearchArgs) -> Result<GrepResponse, ApiError> {
    if args.path.is_some() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`path` globs apply to ranked modes; with exact or regex, put a `path:` filter (a regex on the path) in the query",
        ));
    }
    let mut kinds = Vec::new();
    for source in &args.sources {
        match source.as_str() {
            "code" => kinds.push(CollectionKind::Code),
            "docs" => kinds.push(CollectionKind::Docs),
            other => {
                return Err(ApiError::bad_request(
                    "unknown_source",
                    format!("exact and regex search the indexed collections: source `{other}` is not one (use `code` or `docs`)"),
                ))
            }
        }
    }
    let body = GrepRequestBody {
        query: args.query,
        mode: if args.mode == Some(SearchMode::Regex) {
            GrepModeBody::Regex
        } else {
            GrepModeBody::Exact
        },
        collections: args.collections,
        languages: args.language.into_iter().collect(),
        limit: args.limit,
        ..GrepRequestBody::default()
    };
    let request = crate::server::routes::grep::validate(&body)?;
    let config = Arc::clone(&context.config);
    let asked = body.collections;
    let results = blocking(move || {
        let index_dir = IndexDir::new(config.index_dir());
        let collections = if asked.is_empty() && !kinds.is_empty() {
            let mut names = Vec::new();
            for kind in kinds {
                names.extend(index_dir.collection_names_of(kind)?);
            }
            if names.is_empty() {
                return Ok(None);
            }
            names
        } else {
            asked
        };
        Ok(Some(
            GrepSearcher::open(&config, &collections)?.search(&request)?,
        ))
    })
    .await?;
    match results {
        Some(results) => Ok(GrepResponse::from(results)),
        None => Err(ApiError::not_found(
            "no_collections",
            "no collections of the sources asked",
        )),
    }
}

fn collection_summaries(index_dir: &IndexDir) -> Result<Vec<CollectionSummary>, ApiError> {
    let mut summaries = Vec::new();
    for name in index_dir.collection_names()? {
        let manifest = index_dir.manifest(&name)?;
        let mut languages = BTreeMap::new();
        for file in manifest.files.values() {
            *languages
                .entry(file.language.name().to_string())
                .or_insert(0) += 1;
        }
        summaries.push(CollectionSummary {
            kind: manifest.kind.name(),
            files: manifest.files.len(),
            chunks: manifest.chunk_count(),
            languages,
            name,
        });
    }
    Ok(summaries)
}

fn index_statuses(
    index_dir: &IndexDir,
    only: Option<&str>,
) -> Result<Vec<CollectionIndex>, ApiError> {
    if let Some(name) = only {
        // An unknown or invalid name is refused as such.
        index_dir.head(name)?;
    }
    Ok(index_dir
        .status()?
        .into_iter()
        .filter(|status| only.is_none_or(|name| name == status.name))
        .map(|status| CollectionIndex {
            last_run: status.last_run.clone(),
            info: CollectionInfo::from(status),
        })
        .collect())
}

/// Starts a session, notifies its progress, and answers its report.
async fn research(
    context: &McpContext,
    args: ResearchArgs,
    request_context: RequestContext<RoleServer>,
) -> Result<CallToolResult, ApiError> {
    let body = ResearchBody {
        question: args.question,
        collections: args.collections,
        depth: args.depth,
        ..ResearchBody::default()
    };
    let request = crate::server::routes::research::validate(&body, context.config.research.depth)?;
    let owner = caller_of(&request_context);
    let id = context
        .research
        .create(
            &owner.0,
            request,
            "md".to_string(),
            BudgetOverrides::default(),
        )
        .await?;
    let token = request_context.meta.get_progress_token();
    let mut followed = std::pin::pin!(context.research.followed(&id, 0, &context.streams));
    let mut step = 0u32;
    let mut report = None;
    loop {
        let next = tokio::select! {
            next = followed.next() => next,
            () = request_context.ct.cancelled() => {
                // The client gave up: the session stops too (its log stays whole).
                let _ = context.research.cancel(&id).await;
                return Err(ApiError::conflict("cancelled", "the research call was cancelled"));
            }
        };
        let event = match next {
            Some(Followed::Event(event)) => *event,
            Some(Followed::Control { data, .. }) => {
                let text = |key: &str| {
                    data.get(key)
                        .and_then(|value| value.as_str())
                        .unwrap_or("the session stopped")
                        .to_string()
                };
                return Err(ApiError::unavailable("research_stopped", text("message")));
            }
            None => break,
        };
        if let (Some(token), Some(text)) = (&token, progress_text(&event.kind)) {
            step += 1;
            let progress = ProgressNotificationParam::new(token.clone(), f64::from(step))
                .with_message(text.trim());
            if let Err(err) = request_context.peer.notify_progress(progress).await {
                tracing::debug!(error = %err, "progress not sent");
            }
        }
        match event.kind {
            EventKind::ReportReady { report: ready } => report = Some(ready),
            EventKind::Failed { error } => {
                return Err(ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "research_failed",
                    format!("the research session failed: {error}"),
                ))
            }
            EventKind::Cancelled {} => {
                return Err(ApiError::conflict(
                    "cancelled",
                    "the research session was cancelled",
                ))
            }
            EventKind::Done { .. } => break,
            _ => {}
        }
    }
    let Some(report) = report else {
        return Err(ApiError::unavailable(
            "incomplete",
            "the research session stopped before its report",
        ));
    };
    let markdown = report
        .render(Format::Markdown)
        .map_err(crate::server::research::research_error)?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(markdown)]);
    result.structured_content = Some(serde_json::json!({
        "session_id": id,
        "report": report,
    }));
    Ok(result)
}
