//! `POST /v1/grep`: exact and regex search over the collections' file index, with the query
//! language and ripgrep's rules of `search --mode exact|regex`. The answer holds every matching
//! line with its number, byte offset and submatch offsets, and the context lines asked for, file
//! by file in collection and path order.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aiex_indexer::grep::{
    CaseMode, FileMatches, GrepError, GrepLine, GrepMode, GrepRequest, GrepResults, GrepSearcher,
};

use crate::engine::check_languages;
use crate::server::error::{ApiError, ApiJson};
use crate::server::routes::search::MAX_QUERY_CHARS;
use crate::server::AppState;

/// Most matching lines one request may ask for.
pub const MAX_LINES: usize = 10_000;
/// Matching lines when the request names no limit.
const DEFAULT_LINES: usize = 1_000;
/// Most context lines before or after a match.
pub const MAX_CONTEXT: usize = 20;
/// Most collections or languages a request may list.
const MAX_LIST: usize = 64;
/// Verification stops after this long; the answer then says it is truncated.
const TIME_BUDGET: Duration = Duration::from_secs(10);

/// How the query's patterns are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GrepModeBody {
    /// Literal strings.
    #[default]
    Exact,
    /// Regular expressions (`regex` crate syntax).
    Regex,
}

/// How letter case is matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaseBody {
    /// Insensitive unless a pattern has an upper-case letter (ripgrep's smart case).
    #[default]
    Smart,
    Sensitive,
    Insensitive,
}

/// An exact or regex search.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrepRequestBody {
    /// Patterns and filters in the query language (`lang:rust path:src/ -path:tests
    /// "exact phrase" /fn\s+parse_\w+/ foo OR bar`), or one pattern with `pattern_only`.
    #[schema(min_length = 1, max_length = 2048)]
    pub query: String,
    /// `exact` (default) or `regex`: how bare words of the query are read.
    #[serde(default)]
    pub mode: GrepModeBody,
    /// The query is one pattern, without the query language (ripgrep's `-e PATTERN`).
    #[serde(default)]
    pub pattern_only: bool,
    /// Collections to search; empty: all.
    #[serde(default)]
    pub collections: Vec<String>,
    /// Languages to keep (`rust`, `python`, …), the same as `lang:` filters.
    #[serde(default)]
    pub languages: Vec<String>,
    /// `smart` (default), `sensitive` or `insensitive`.
    #[serde(default)]
    pub case: CaseBody,
    /// Whole words only.
    #[serde(default)]
    pub word: bool,
    /// Context lines before each match.
    #[serde(default)]
    #[schema(maximum = 20)]
    pub before: Option<usize>,
    /// Context lines after each match.
    #[serde(default)]
    #[schema(maximum = 20)]
    pub after: Option<usize>,
    /// Context lines before and after each match (`before` and `after` take precedence).
    #[serde(default)]
    #[schema(maximum = 20)]
    pub context: Option<usize>,
    /// Most matching lines in all (default 1000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// One matching or context line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrepLineBody {
    /// 1-based.
    pub line_number: u64,
    /// Byte offset of the line's start in the file.
    pub byte_offset: u64,
    /// The line without its line break.
    pub text: String,
    /// Byte ranges `[start, end)` of the matches in `text`; empty for a context line.
    pub submatches: Vec<Submatch>,
    /// A context line, not a match.
    pub context: bool,
}

/// One match in a line.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Submatch {
    pub start: usize,
    pub end: usize,
}

/// The matches in one file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrepFile {
    pub collection: String,
    /// Relative to the collection's root.
    pub path: String,
    pub language: Option<String>,
    pub matched_lines: usize,
    pub submatches: usize,
    /// Matching and context lines, in file order.
    pub lines: Vec<GrepLineBody>,
}

/// What an exact or regex search found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrepResponse {
    pub files: Vec<GrepFile>,
    pub matched_lines: usize,
    pub submatches: usize,
    /// Files the trigram index left to verify.
    pub candidates: usize,
    /// Files in the searched collections.
    pub files_total: u64,
    /// Bytes of stored content verified.
    pub bytes_searched: u64,
    /// The line limit or the time budget cut the search short.
    pub truncated: bool,
    /// How the search went (a pattern with no literal scans every file, an ignored filter, …).
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
}

impl From<GrepResults> for GrepResponse {
    fn from(results: GrepResults) -> Self {
        GrepResponse {
            files: results.files.into_iter().map(GrepFile::from).collect(),
            matched_lines: results.matched_lines,
            submatches: results.submatches,
            candidates: results.candidates,
            files_total: results.files_total,
            bytes_searched: results.bytes_searched,
            truncated: results.truncated,
            notes: results.notes,
            elapsed_ms: results.elapsed_ms,
        }
    }
}

impl From<FileMatches> for GrepFile {
    fn from(file: FileMatches) -> Self {
        // The collection's root directory stays on the server: paths are relative to it.
        GrepFile {
            collection: file.collection,
            path: file.path,
            language: file.language.map(|language| language.name().to_string()),
            matched_lines: file.matched_lines,
            submatches: file.submatches,
            lines: file.lines.into_iter().map(GrepLineBody::from).collect(),
        }
    }
}

impl From<GrepLine> for GrepLineBody {
    fn from(line: GrepLine) -> Self {
        GrepLineBody {
            line_number: line.line_number,
            byte_offset: line.byte_offset,
            text: line.text,
            submatches: line
                .submatches
                .into_iter()
                .map(|(start, end)| Submatch { start, end })
                .collect(),
            context: line.context,
        }
    }
}

impl From<GrepError> for ApiError {
    fn from(err: GrepError) -> Self {
        let message = err.to_string();
        match err {
            GrepError::InvalidPattern { .. } => ApiError::bad_request("invalid_pattern", message),
            GrepError::InvalidQuery { .. } => ApiError::bad_request("invalid_query", message),
            GrepError::EmptyQuery => ApiError::bad_request("empty_query", message),
            GrepError::Index(err) => err.into(),
        }
    }
}

/// The indexer's request for `body`, or why it is refused.
pub(crate) fn validate(body: &GrepRequestBody) -> Result<GrepRequest, ApiError> {
    if body.query.trim().is_empty() {
        return Err(ApiError::bad_request("empty_query", "the query is empty"));
    }
    if body.query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "query_too_long",
            format!("the query is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let limit = body.limit.unwrap_or(DEFAULT_LINES);
    if !(1..=MAX_LINES).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LINES}"),
        ));
    }
    let context = [body.before, body.after, body.context];
    if context.iter().flatten().any(|&lines| lines > MAX_CONTEXT) {
        return Err(ApiError::bad_request(
            "invalid_context",
            format!("context is at most {MAX_CONTEXT} lines"),
        ));
    }
    if body.collections.len() > MAX_LIST || body.languages.len() > MAX_LIST {
        return Err(ApiError::bad_request(
            "too_many_values",
            format!("lists hold at most {MAX_LIST} values"),
        ));
    }
    check_languages(&body.languages)
        .map_err(|message| ApiError::bad_request("unknown_language", message))?;
    if body.pattern_only && !body.languages.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "languages are filters of the query language: not with pattern_only",
        ));
    }
    let mut query = body.query.clone();
    for language in &body.languages {
        query.push_str(&format!(" lang:{language}"));
    }
    let mode = match body.mode {
        GrepModeBody::Exact => GrepMode::Exact,
        GrepModeBody::Regex => GrepMode::Regex,
    };
    let mut request = GrepRequest::new(query, mode);
    request.pattern_only = body.pattern_only;
    request.case = match body.case {
        CaseBody::Smart => CaseMode::Smart,
        CaseBody::Sensitive => CaseMode::Sensitive,
        CaseBody::Insensitive => CaseMode::Insensitive,
    };
    request.word = body.word;
    request.before = body.before.or(body.context).unwrap_or(0);
    request.after = body.after.or(body.context).unwrap_or(0);
    request.max_lines = limit;
    request.time_budget = TIME_BUDGET;
    Ok(request)
}

/// Exact or regex search with ripgrep's rules over the collections' file index: every matching
/// line with its number and submatch offsets, and context lines.
#[utoipa::path(
    post,
    path = "/v1/grep",
    tag = "search",
    request_body = GrepRequestBody,
    responses(
        (status = 200, description = "The matching lines, file by file", body = GrepResponse),
        (status = 400, description = "Invalid request, pattern or query (with the column)", body = crate::server::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = crate::server::error::ErrorBody),
        (status = 422, description = "The body does not match the schema", body = crate::server::error::ErrorBody),
        (status = 401, description = "Missing, invalid or revoked key", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such collection", body = crate::server::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn grep(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<GrepRequestBody>,
) -> Result<Response, ApiError> {
    let request = validate(&body)?;
    let config = state.config.clone();
    let collections = body.collections;
    let results = tokio::task::spawn_blocking(move || {
        GrepSearcher::open(&config, &collections)?.search(&request)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(ApiJson(GrepResponse::from(results)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(query: &str) -> GrepRequestBody {
        GrepRequestBody {
            query: query.to_string(),
            ..GrepRequestBody::default()
        }
    }

    #[test]
    fn requests_map_to_ripgrep_options() {
        let mut asked = body("parse_config");
        asked.mode = GrepModeBody::Regex;
        asked.case = CaseBody::Insensitive;
        asked.word = true;
        asked.context = Some(2);
        asked.after = Some(5);
        asked.languages = vec!["rust".to_string()];
        let request = validate(&asked).expect("valid");
        assert_eq!(request.query, "parse_config lang:rust");
        assert_eq!(request.mode, GrepMode::Regex);
        assert_eq!(request.case, CaseMode::Insensitive);
        assert!(request.word);
        assert_eq!((request.before, request.after), (2, 5));
        assert_eq!(request.max_lines, DEFAULT_LINES);
    }

    #[test]
    fn bad_requests_are_refused_with_a_code() {
        let code = |asked: GrepRequestBody| validate(&asked).expect_err("refused").code;
        assert_eq!(code(body("  ")), "empty_query");
        assert_eq!(
            code(GrepRequestBody {
                limit: Some(0),
                ..body("x")
            }),
            "invalid_limit"
        );
        assert_eq!(
            code(GrepRequestBody {
                context: Some(MAX_CONTEXT + 1),
                ..body("x")
            }),
            "invalid_context"
        );
        assert_eq!(
            code(GrepRequestBody {
                languages: vec!["klingon".to_string()],
                ..body("x")
            }),
            "unknown_language"
        );
        assert_eq!(
            code(body(&"x".repeat(MAX_QUERY_CHARS + 1))),
            "query_too_long"
        );
    }
}
