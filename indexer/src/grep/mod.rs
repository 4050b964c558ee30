//! Exact and regex search at index speed, with ripgrep's conventions.
//!
//! The file index ([`store`]) holds every file's folded trigrams and its content. A query
//! ([`query`]) is parsed into patterns and filters; each pattern ([`pattern`]) is compiled with
//! ripgrep's rules and yields a trigram condition ([`trigrams`]) that narrows the candidate files;
//! the compiled regex then verifies candidates on their stored content ([`verify`]), on a rayon
//! pool, under a match limit and a time budget. In server mode the files, their trigrams and the
//! candidate narrowing are in Qdrant ([`crate::store::server::files`]); verification is the same. A pattern with no usable trigram (`\w+`) scans every
//! stored file, with a note saying so.
//!
//! Threading: synchronous; verification runs on the current rayon pool (callers in async code run
//! [`GrepSearcher::search`] on their CPU pool).

pub mod pattern;
pub mod query;
pub mod read;
pub mod store;
pub mod trigrams;
pub mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use regex::Regex;
use serde::Serialize;

pub use pattern::{CaseMode, Pattern, PatternOptions};
pub use query::{parse_query, ParsedQuery, TermKind};
pub use verify::GrepLine;

use crate::collection::IndexDir;
use crate::lang::Language;
use crate::store::keyword::KeywordStore;
use crate::store::server::files::FileRef;
use crate::store::server::{ServerFiles, ServerVectorStore};
use store::{FileStore, StoredFile};
use trigrams::TrigramQuery;
use verify::{count_matching_lines, matching_lines, with_context, LineHits};

/// Candidates verified per parallel batch, between checks of the limits.
const BATCH: usize = 256;

/// Errors of exact and regex search: bad input is told apart from the index failing.
#[derive(Debug, thiserror::Error)]
pub enum GrepError {
    #[error("invalid pattern `{pattern}`{}: {message}", column.map(|c| format!(" at column {c}")).unwrap_or_default())]
    InvalidPattern {
        pattern: String,
        message: String,
        /// 1-based, in characters of the pattern.
        column: Option<usize>,
    },
    #[error("invalid query `{query}` at column {column}: {message}")]
    InvalidQuery {
        query: String,
        message: String,
        column: usize,
    },
    #[error("the query has no pattern (filters alone match nothing)")]
    EmptyQuery,
    #[error(transparent)]
    Index(#[from] crate::Error),
}

impl GrepError {
    /// Whether the error is the user's (bad input) rather than the index's.
    pub fn is_user_error(&self) -> bool {
        match self {
            GrepError::InvalidPattern { .. }
            | GrepError::InvalidQuery { .. }
            | GrepError::EmptyQuery => true,
            GrepError::Index(err) => err.is_user_error(),
        }
    }
}

impl From<tantivy::TantivyError> for GrepError {
    fn from(err: tantivy::TantivyError) -> Self {
        GrepError::Index(err.into())
    }
}

/// How the query's bare words are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrepMode {
    /// Literal strings (`--fixed-strings`).
    #[default]
    Exact,
    /// `regex` crate syntax.
    Regex,
}

/// An exact or regex search.
#[derive(Debug, Clone)]
pub struct GrepRequest {
    /// In the query language of [`query`].
    pub query: String,
    pub mode: GrepMode,
    /// The query is one pattern, without the query language (ripgrep's `-e PATTERN`).
    pub pattern_only: bool,
    pub case: CaseMode,
    pub word: bool,
    /// Context lines before and after each matching line.
    pub before: usize,
    pub after: usize,
    /// At most this many matching lines in all.
    pub max_lines: usize,
    /// Verification stops after this long (the results say they are truncated).
    pub time_budget: Duration,
    /// Every match of each line (false: the first only, enough for plain `path:line:col:text`).
    pub all_submatches: bool,
    /// The lines themselves (false: only the counts, for `--count` and `--files-with-matches`).
    pub with_lines: bool,
}

impl GrepRequest {
    pub fn new(query: impl Into<String>, mode: GrepMode) -> Self {
        GrepRequest {
            query: query.into(),
            mode,
            pattern_only: false,
            case: CaseMode::Smart,
            word: false,
            before: 0,
            after: 0,
            max_lines: 10_000,
            time_budget: Duration::from_secs(10),
            all_submatches: true,
            with_lines: true,
        }
    }
}

/// The matches in one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileMatches {
    pub collection: String,
    /// The collection's root directory.
    pub root: PathBuf,
    /// Relative to the root.
    pub path: String,
    pub language: Option<Language>,
    /// Matching lines and context lines, in file order.
    pub lines: Vec<GrepLine>,
    pub matched_lines: usize,
    pub submatches: usize,
}

/// What a search found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GrepResults {
    pub files: Vec<FileMatches>,
    pub matched_lines: usize,
    pub submatches: usize,
    /// Files the trigram index left to verify.
    pub candidates: usize,
    /// Files in the searched collections.
    pub files_total: u64,
    /// Bytes of stored content verified.
    pub bytes_searched: u64,
    /// The match limit or the time budget cut the search short.
    pub truncated: bool,
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
}

/// One compiled alternative: every positive pattern must occur, no negative one may.
struct Alternative {
    positive: Vec<usize>,
    negative: Vec<usize>,
}

/// A query compiled against its request.
struct Compiled {
    patterns: Vec<Pattern>,
    alternatives: Vec<Alternative>,
    languages: Vec<String>,
    exclude_languages: Vec<String>,
    paths: Vec<Regex>,
    exclude_paths: Vec<Regex>,
    repos: Vec<Regex>,
    exclude_repos: Vec<Regex>,
    /// `sym:`: matching lines must lie in a chunk whose symbol matches one of these.
    symbols: Vec<Regex>,
    trigrams: TrigramQuery,
    notes: Vec<String>,
}

fn compile(request: &GrepRequest) -> Result<Compiled, GrepError> {
    let bare = match request.mode {
        GrepMode::Exact => TermKind::Literal,
        GrepMode::Regex => TermKind::Regex,
    };
    let parsed = if request.pattern_only {
        ParsedQuery {
            alternatives: vec![vec![query::Term {
                text: request.query.clone(),
                kind: bare,
                negated: false,
            }]],
            ..ParsedQuery::default()
        }
    } else {
        parse_query(&request.query, bare)?
    };
    let case = parsed.case.unwrap_or(request.case);
    let mut patterns = Vec::new();
    let mut alternatives = Vec::new();
    let mut alternative_queries = Vec::new();
    for terms in &parsed.alternatives {
        let mut alternative = Alternative {
            positive: Vec::new(),
            negative: Vec::new(),
        };
        let mut required = Vec::new();
        for term in terms {
            let options = PatternOptions {
                fixed: term.kind == TermKind::Literal,
                case,
                word: request.word,
            };
            let pattern = Pattern::new(&term.text, options)?;
            if term.negated {
                alternative.negative.push(patterns.len());
            } else {
                required.push(pattern.trigrams.clone());
                alternative.positive.push(patterns.len());
            }
            patterns.push(pattern);
        }
        if alternative.positive.is_empty() {
            return Err(GrepError::EmptyQuery);
        }
        alternative_queries.push(TrigramQuery::And(required));
        alternatives.push(alternative);
    }
    if alternatives.is_empty() {
        return Err(GrepError::EmptyQuery);
    }
    let trigrams = simplify(TrigramQuery::Or(alternative_queries));
    let notes = Vec::new();
    let regexes = |sources: &[String], insensitive: bool| -> Result<Vec<Regex>, GrepError> {
        sources
            .iter()
            .map(|source| {
                regex::RegexBuilder::new(source)
                    .case_insensitive(insensitive)
                    .build()
                    .map_err(|err| GrepError::InvalidPattern {
                        pattern: source.clone(),
                        message: err.to_string(),
                        column: None,
                    })
            })
            .collect()
    };
    let filters = &parsed.filters;
    Ok(Compiled {
        patterns,
        alternatives,
        languages: filters.languages.iter().map(|l| l.to_lowercase()).collect(),
        exclude_languages: filters
            .exclude_languages
            .iter()
            .map(|l| l.to_lowercase())
            .collect(),
        paths: regexes(&filters.paths, false)?,
        exclude_paths: regexes(&filters.exclude_paths, false)?,
        repos: regexes(&filters.repos, false)?,
        exclude_repos: regexes(&filters.exclude_repos, false)?,
        symbols: filters
            .symbols
            .iter()
            .map(|source| {
                // Smart case, as for patterns: insensitive unless the value has a capital.
                let insensitive = !source.chars().any(char::is_uppercase);
                regexes(std::slice::from_ref(source), insensitive).map(|mut one| one.remove(0))
            })
            .collect::<Result<_, _>>()?,
        trigrams,
        notes,
    })
}

/// Flattens the nested conditions the alternatives build.
fn simplify(query: TrigramQuery) -> TrigramQuery {
    match query {
        TrigramQuery::And(parts) => {
            let parts: Vec<_> = parts
                .into_iter()
                .map(simplify)
                .filter(|part| !part.is_all())
                .collect();
            match parts.len() {
                0 => TrigramQuery::All,
                1 => parts.into_iter().next().unwrap_or(TrigramQuery::All),
                _ => TrigramQuery::And(parts),
            }
        }
        TrigramQuery::Or(parts) => {
            let parts: Vec<_> = parts.into_iter().map(simplify).collect();
            if parts.iter().any(TrigramQuery::is_all) {
                return TrigramQuery::All;
            }
            match parts.len() {
                0 => TrigramQuery::All,
                1 => parts.into_iter().next().unwrap_or(TrigramQuery::All),
                _ => TrigramQuery::Or(parts),
            }
        }
        other => other,
    }
}

impl Compiled {
    fn keeps_file(&self, file: &StoredFile) -> bool {
        let language = file.language.map_or("", Language::name);
        if !self.languages.is_empty() && !self.languages.iter().any(|l| l == language) {
            return false;
        }
        if self.exclude_languages.iter().any(|l| l == language) {
            return false;
        }
        if !self.paths.is_empty() && !self.paths.iter().any(|re| re.is_match(&file.path)) {
            return false;
        }
        !self.exclude_paths.iter().any(|re| re.is_match(&file.path))
    }

    fn keeps_collection(&self, name: &str) -> bool {
        (self.repos.is_empty() || self.repos.iter().any(|re| re.is_match(name)))
            && !self.exclude_repos.iter().any(|re| re.is_match(name))
    }

    /// The one pattern a file must match, when the query is just that (no alternatives, no
    /// negated patterns): its lines need no merging.
    fn single_pattern(&self) -> Option<&Regex> {
        match self.alternatives.as_slice() {
            [Alternative { positive, negative }] if negative.is_empty() => {
                match positive.as_slice() {
                    [index] => Some(&self.patterns[*index].regex),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The matching lines of `content` (at most `max_lines`), or `None` when no alternative holds.
    fn file_hits(&self, content: &str, max_lines: usize, first_only: bool) -> Option<LineHits> {
        if let Some(regex) = self.single_pattern() {
            let hits = matching_lines(content, regex, max_lines, first_only);
            return (!hits.is_empty()).then_some(hits);
        }
        let mut hits_by_pattern: HashMap<usize, LineHits> = HashMap::new();
        let mut merged: Option<LineHits> = None;
        for alternative in &self.alternatives {
            if alternative
                .negative
                .iter()
                .any(|&index| self.patterns[index].regex.is_match(content))
            {
                continue;
            }
            let mut holds = true;
            for &index in &alternative.positive {
                let hits = hits_by_pattern.entry(index).or_insert_with(|| {
                    matching_lines(content, &self.patterns[index].regex, max_lines, first_only)
                });
                if hits.is_empty() {
                    holds = false;
                    break;
                }
            }
            if !holds {
                continue;
            }
            let merged = merged.get_or_insert_with(LineHits::new);
            for index in &alternative.positive {
                for (line, (start, end, submatches)) in &hits_by_pattern[index] {
                    let entry = merged
                        .entry(*line)
                        .or_insert_with(|| (*start, *end, Vec::new()));
                    entry.2.extend(submatches);
                }
            }
        }
        let mut merged = merged?;
        for (_, _, submatches) in merged.values_mut() {
            submatches.sort_unstable();
            submatches.dedup();
        }
        while merged.len() > max_lines {
            merged.pop_last();
        }
        Some(merged)
    }
}

/// Where a file's symbols are read from (`sym:` filters): the chunk index, or the chunk points
/// in the server.
enum Symbols {
    Local(KeywordStore),
    Server(ServerVectorStore),
}

impl Symbols {
    fn spans(&self, path: &str) -> crate::Result<Vec<(String, u32, u32)>> {
        match self {
            Symbols::Local(keyword) => keyword.symbol_spans(path),
            Symbols::Server(store) => store.symbol_spans(path),
        }
    }
}

impl Compiled {
    /// With `sym:`, keeps the lines of `hits` that lie in a chunk of `path` whose symbol
    /// matches; without it, every line.
    fn symbol_lines(
        &self,
        symbols: Option<&Symbols>,
        path: &str,
        mut hits: LineHits,
    ) -> Result<LineHits, GrepError> {
        let Some(symbols) = symbols.filter(|_| !self.symbols.is_empty()) else {
            return Ok(hits);
        };
        let spans: Vec<(u32, u32)> = symbols
            .spans(path)?
            .into_iter()
            .filter(|(symbol, _, _)| self.symbols.iter().any(|re| re.is_match(symbol)))
            .map(|(_, start, end)| (start, end))
            .collect();
        hits.retain(|&line, _| {
            let number = u32::try_from(line + 1).unwrap_or(u32::MAX);
            spans
                .iter()
                .any(|&(start, end)| (start..=end).contains(&number))
        });
        Ok(hits)
    }

    /// Verifies `file` of `collection`: None when it is filtered out, else its size and, when it
    /// matches, its lines (at most `remaining` matching ones, with context).
    fn verify(
        &self,
        request: &GrepRequest,
        collection: &GrepCollection,
        symbols: Option<&Symbols>,
        file: StoredFile,
        remaining: usize,
    ) -> Result<Option<(u64, Option<FileMatches>)>, GrepError> {
        if !self.keeps_file(&file) {
            return Ok(None);
        }
        let bytes = file.content.len() as u64;
        let Some((lines, matched_lines, submatches)) =
            self.file_matches(request, symbols, &file, remaining)?
        else {
            return Ok(Some((bytes, None)));
        };
        Ok(Some((
            bytes,
            Some(FileMatches {
                collection: collection.name.clone(),
                root: collection.root.clone(),
                path: file.path,
                language: file.language,
                lines,
                matched_lines,
                submatches,
            }),
        )))
    }

    /// The matching lines of `file` (at most `remaining`, with context; none kept when the
    /// request wants counts only), with how many lines and submatches matched; None when
    /// nothing matches.
    fn file_matches(
        &self,
        request: &GrepRequest,
        symbols: Option<&Symbols>,
        file: &StoredFile,
        remaining: usize,
    ) -> Result<Option<(Vec<GrepLine>, usize, usize)>, GrepError> {
        let first_only = !request.all_submatches;
        // Counts only (`--count`, `--files-with-matches`) of one pattern: lines are counted
        // without being kept.
        if let Some(regex) = self
            .single_pattern()
            .filter(|_| symbols.is_none() && !request.with_lines)
        {
            let (matched_lines, submatches) =
                count_matching_lines(&file.content, regex, remaining, first_only);
            return Ok((matched_lines > 0).then(|| (Vec::new(), matched_lines, submatches)));
        }
        // With `sym:`, lines outside the symbols are dropped before the cap.
        let cap = if symbols.is_some() {
            usize::MAX
        } else {
            remaining
        };
        let Some(hits) = self.file_hits(&file.content, cap, first_only) else {
            return Ok(None);
        };
        let mut hits = self.symbol_lines(symbols, &file.path, hits)?;
        if hits.is_empty() {
            return Ok(None);
        }
        while hits.len() > remaining {
            hits.pop_last();
        }
        let lines = if request.with_lines {
            with_context(&file.content, &hits, request.before, request.after)
        } else {
            Vec::new()
        };
        let submatches = hits.values().map(|hit| hit.2.len()).sum();
        Ok(Some((lines, hits.len(), submatches)))
    }
}

/// Where a collection's files are: the node's file index, or the server's file collection
/// (server mode, [`crate::store::server::files`]).
enum Files {
    Local(FileStore),
    Server(Arc<ServerFiles>),
}

/// Candidate files of one store, before their contents are read.
enum Candidates<'s> {
    Local(&'s FileStore, Vec<tantivy::DocAddress>),
    Server(&'s ServerFiles, Vec<FileRef>),
}

impl Candidates<'_> {
    fn len(&self) -> usize {
        match self {
            Candidates::Local(_, addresses) => addresses.len(),
            Candidates::Server(_, refs) => refs.len(),
        }
    }

    /// Reads candidates `range` back and hands each to `verify`, in parallel; a local file is
    /// read and verified by the same thread, while its content is in cache. Files gone since are
    /// left out, and so are those `verify` answers `None` for.
    fn verify_each<T: Send>(
        &self,
        range: std::ops::Range<usize>,
        verify: impl Fn(StoredFile) -> Result<Option<T>, GrepError> + Sync + Send,
    ) -> Result<Vec<T>, GrepError> {
        match self {
            Candidates::Local(store, addresses) => addresses[range]
                .par_iter()
                .map(|&address| match store.file(address)? {
                    Some(file) => verify(file),
                    None => Ok(None),
                })
                .filter_map(Result::transpose)
                .collect(),
            Candidates::Server(files, refs) => files
                .read(&refs[range])?
                .into_par_iter()
                .map(verify)
                .filter_map(Result::transpose)
                .collect(),
        }
    }
}

impl Files {
    fn num_files(&self, collection: &str) -> Result<u64, GrepError> {
        Ok(match self {
            Files::Local(store) => store.num_files(),
            Files::Server(files) => files.count(collection)?,
        })
    }

    fn candidates(
        &self,
        collection: &str,
        query: &TrigramQuery,
    ) -> Result<Candidates<'_>, GrepError> {
        Ok(match self {
            Files::Local(store) => Candidates::Local(store, store.candidates(query)?),
            Files::Server(files) => Candidates::Server(files, files.candidates(collection, query)?),
        })
    }
}

/// A collection open for exact and regex search.
struct GrepCollection {
    name: String,
    root: PathBuf,
    /// `None` for a collection indexed before the file index existed.
    files: Option<Files>,
    /// The chunk index, read for `sym:` filters (embedded mode).
    keyword_dir: PathBuf,
    kind: crate::manifest::CollectionKind,
}

/// Exact and regex search over collections.
pub struct GrepSearcher {
    collections: Vec<GrepCollection>,
    /// Server mode: the configuration, to open the chunk points for `sym:` filters.
    server: Option<aiex_config::Config>,
}

impl std::fmt::Debug for GrepSearcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrepSearcher").finish_non_exhaustive()
    }
}

impl GrepSearcher {
    /// Opens `names` (all collections when empty). In server mode the collections are those of
    /// the registry in Qdrant and their files are read from the server, so a node needs no local
    /// index.
    pub fn open(config: &aiex_config::Config, names: &[String]) -> Result<Self, GrepError> {
        let index_dir = IndexDir::new(config.index_dir());
        let server_mode = config.vector.backend == aiex_config::VectorBackend::Server;
        let server_files = if server_mode {
            crate::store::server::sync_cache(config)?;
            ServerFiles::connect(config, false)?.map(Arc::new)
        } else {
            None
        };
        let names = if names.is_empty() {
            index_dir.collection_names()?
        } else {
            names.to_vec()
        };
        let mut collections = Vec::with_capacity(names.len());
        for name in names {
            let head = index_dir.head(&name)?;
            let paths = index_dir.collection_paths(&name);
            let files = if server_mode {
                server_files.clone().map(Files::Server)
            } else {
                FileStore::open_existing(&paths.grep)?.map(Files::Local)
            };
            collections.push(GrepCollection {
                files,
                keyword_dir: paths.keyword.clone(),
                root: head.root,
                kind: head.kind,
                name,
            });
        }
        Ok(GrepSearcher {
            collections,
            server: server_mode.then(|| config.clone()),
        })
    }

    fn symbols(&self, collection: &GrepCollection) -> Result<Symbols, GrepError> {
        Ok(match &self.server {
            Some(config) => Symbols::Server(crate::store::server::open_tenant(
                config,
                &collection.name,
                collection.kind,
            )?),
            None => Symbols::Local(KeywordStore::open(&collection.keyword_dir)?),
        })
    }

    /// Runs `request` over every collection, in collection then path order.
    pub fn search(&self, request: &GrepRequest) -> Result<GrepResults, GrepError> {
        let started = Instant::now();
        let compiled = compile(request)?;
        let mut results = GrepResults {
            notes: compiled.notes.clone(),
            ..GrepResults::default()
        };
        let mut scanned_all = false;
        for collection in &self.collections {
            if !compiled.keeps_collection(&collection.name) {
                continue;
            }
            let Some(files) = &collection.files else {
                results.notes.push(format!(
                    "collection `{}` has no file index yet: run `index` on it again",
                    collection.name
                ));
                continue;
            };
            results.files_total += files.num_files(&collection.name)?;
            scanned_all |= compiled.trigrams.is_all();
            let symbols = if compiled.symbols.is_empty() {
                None
            } else {
                Some(self.symbols(collection)?)
            };
            let candidates = files.candidates(&collection.name, &compiled.trigrams)?;
            results.candidates += candidates.len();
            let mut found = Vec::new();
            let mut start = 0;
            while start < candidates.len() {
                let end = (start + BATCH).min(candidates.len());
                let remaining = request.max_lines.saturating_sub(results.matched_lines);
                if remaining == 0 || started.elapsed() > request.time_budget {
                    results.truncated = true;
                    break;
                }
                let verified = candidates.verify_each(start..end, |file| {
                    compiled.verify(request, collection, symbols.as_ref(), file, remaining)
                })?;
                start = end;
                let mut batch_found: Vec<FileMatches> = verified
                    .into_iter()
                    .filter_map(|(bytes, file)| {
                        results.bytes_searched += bytes;
                        file
                    })
                    .collect();
                batch_found.sort_by(|a, b| a.path.cmp(&b.path));
                for file in batch_found {
                    let remaining = request.max_lines.saturating_sub(results.matched_lines);
                    if remaining == 0 {
                        results.truncated = true;
                        break;
                    }
                    let file = cap_lines(file, remaining);
                    results.matched_lines += file.matched_lines;
                    results.submatches += file.submatches;
                    found.push(file);
                }
            }
            found.sort_by(|a, b| a.path.cmp(&b.path));
            results.files.extend(found);
        }
        if scanned_all {
            results.notes.push(
                "no literal of three characters or more narrows this pattern: every stored file was scanned"
                    .to_string(),
            );
        }
        if results.truncated {
            results.notes.push(format!(
                "stopped early: {} matching lines or {} ms reached",
                request.max_lines,
                request.time_budget.as_millis()
            ));
        }
        results.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(results)
    }
}

/// Keeps the first `max` matching lines of `file` (and their context).
fn cap_lines(mut file: FileMatches, max: usize) -> FileMatches {
    if file.matched_lines <= max {
        return file;
    }
    if file.lines.is_empty() {
        // Counts only: the first `max` matching lines (their submatches are not kept apart).
        file.matched_lines = max;
        file.submatches = file.submatches.min(max);
        return file;
    }
    let mut kept = 0usize;
    let mut cut = file.lines.len();
    for (index, line) in file.lines.iter().enumerate() {
        if !line.context {
            if kept == max {
                cut = index;
                break;
            }
            kept += 1;
        }
    }
    file.lines.truncate(cut);
    file.matched_lines = kept;
    file.submatches = file.lines.iter().map(|line| line.submatches.len()).sum();
    file
}
