//! `search --mode exact|regex`: exact and regex search with ripgrep's conventions on the command
//! line: `path:line:column:text`, context lines, colours, counts, file lists, `rg --json` lines,
//! and exit status 1 when nothing matches.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::json;

use aiex_config::SearchMode;

use super::search_cmd::SearchArgs;
use aiex_indexer::grep::{
    CaseMode, FileMatches, GrepLine, GrepMode, GrepRequest, GrepResults, GrepSearcher,
};

/// What nothing-found returns, so `main` exits with status 1 (as grep and ripgrep do).
#[derive(Debug)]
pub struct NoMatches;

impl std::fmt::Display for NoMatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no matches")
    }
}

impl std::error::Error for NoMatches {}

/// `--mode`: the ranked modes of local sources, or exact / regex search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Keyword,
    Vector,
    Hybrid,
    /// Literal strings, ripgrep style (`path:line:column:text`).
    Exact,
    /// Regular expressions (`regex` crate syntax), ripgrep style.
    Regex,
}

impl ModeArg {
    /// The ranked mode, for the `search.mode` setting.
    pub fn ranked(self) -> Option<SearchMode> {
        match self {
            ModeArg::Keyword => Some(SearchMode::Keyword),
            ModeArg::Vector => Some(SearchMode::Vector),
            ModeArg::Hybrid => Some(SearchMode::Hybrid),
            ModeArg::Exact | ModeArg::Regex => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colours when stdout is a terminal.
    #[default]
    Auto,
    Always,
    Never,
}

/// ripgrep's flags, for `--mode exact|regex`.
#[derive(Debug, Clone, Default, Args)]
pub struct GrepArgs {
    /// Literal strings (the same as `--mode exact`).
    #[arg(short = 'F', long)]
    pub fixed_strings: bool,
    /// Case-insensitive (default: smart case, insensitive unless the pattern has upper case).
    #[arg(short = 'i', long, overrides_with = "case_sensitive")]
    pub ignore_case: bool,
    /// Case-sensitive.
    #[arg(short = 's', long, overrides_with = "ignore_case")]
    pub case_sensitive: bool,
    /// Whole words only.
    #[arg(short = 'w', long)]
    pub word_regexp: bool,
    /// Lines of context after each match.
    #[arg(short = 'A', long, value_name = "NUM")]
    pub after_context: Option<usize>,
    /// Lines of context before each match.
    #[arg(short = 'B', long, value_name = "NUM")]
    pub before_context: Option<usize>,
    /// Lines of context before and after each match.
    #[arg(short = 'C', long, value_name = "NUM")]
    pub context: Option<usize>,
    /// Highlight matches: auto (when stdout is a terminal), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Only the number of matching lines per file.
    #[arg(short = 'c', long, conflicts_with = "files_with_matches")]
    pub count: bool,
    /// Only the paths of files with a match.
    #[arg(short = 'l', long)]
    pub files_with_matches: bool,
    /// The query is one pattern, without the query language (`lang:`, `path:`, `OR`, …).
    #[arg(short = 'e', long = "pattern-only")]
    pub pattern_only: bool,
}

impl GrepArgs {
    /// The exact/regex mode asked for, if any.
    pub fn mode(&self, mode: Option<ModeArg>) -> Option<GrepMode> {
        match mode {
            Some(ModeArg::Exact) => Some(GrepMode::Exact),
            Some(ModeArg::Regex) => Some(GrepMode::Regex),
            None if self.fixed_strings => Some(GrepMode::Exact),
            _ => None,
        }
    }
}

/// Runs an exact or regex search and prints it the way ripgrep would.
pub fn run(
    config: &aiex_config::Config,
    search: &SearchArgs,
    mode: GrepMode,
) -> anyhow::Result<()> {
    let args = &search.grep;
    let json = search.json;
    let mut query = search.query.clone();
    if !args.pattern_only {
        for language in &search.languages {
            query.push_str(&format!(" lang:{language}"));
        }
    }
    let mut request = GrepRequest::new(query, mode);
    request.pattern_only = args.pattern_only;
    request.case = if args.case_sensitive {
        CaseMode::Sensitive
    } else if args.ignore_case {
        CaseMode::Insensitive
    } else {
        CaseMode::Smart
    };
    request.word = args.word_regexp;
    request.before = args.before_context.or(args.context).unwrap_or(0);
    request.after = args.after_context.or(args.context).unwrap_or(0);
    // As ripgrep: every match unless `--limit` caps them (the time budget still bounds a run).
    request.max_lines = search.limit.unwrap_or(usize::MAX);
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal() && !search.json,
    };
    // Only what is printed: counts and file lists need no lines, plain lines only the first
    // match's column; colours and `--json` show every match.
    request.with_lines = !(args.count || args.files_with_matches) || search.json;
    request.all_submatches = color || search.json;
    request.time_budget = Duration::from_secs(30);
    let searcher = GrepSearcher::open(config, &search.collections)?;
    let results = searcher.search(&request)?;
    for note in &results.notes {
        eprintln!("note: {note}");
    }
    let mut stdout = std::io::stdout().lock();
    let single = single_collection(&results);
    if json {
        write_json(&mut stdout, &results)?;
    } else if args.count {
        for file in &results.files {
            writeln!(
                stdout,
                "{}:{}",
                display_path(file, single),
                file.matched_lines
            )?;
        }
    } else if args.files_with_matches {
        for file in &results.files {
            writeln!(stdout, "{}", display_path(file, single))?;
        }
    } else {
        let with_context = request.before > 0 || request.after > 0;
        write_lines(&mut stdout, &results, color, with_context)?;
    }
    stdout.flush()?;
    if results.files.is_empty() {
        return Err(NoMatches.into());
    }
    Ok(())
}

/// Paths relative to the collection root when one collection answered; otherwise under its root.
/// Whether paths print relative to their collection's root: when one collection answered.
fn single_collection(results: &GrepResults) -> bool {
    results
        .files
        .windows(2)
        .all(|pair| pair[0].collection == pair[1].collection)
}

fn display_path(file: &FileMatches, single: bool) -> String {
    if single {
        file.path.clone()
    } else {
        file.root.join(&file.path).display().to_string()
    }
}

const PATH_COLOR: &str = "\x1b[35m";
const LINE_COLOR: &str = "\x1b[32m";
const MATCH_COLOR: &str = "\x1b[1;31m";
const RESET: &str = "\x1b[0m";

fn write_lines(
    out: &mut impl Write,
    results: &GrepResults,
    color: bool,
    with_context: bool,
) -> std::io::Result<()> {
    let paint = |code: &str, text: &str| {
        if color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    };
    let mut first_group = true;
    let single = single_collection(results);
    for file in &results.files {
        let path = paint(PATH_COLOR, &display_path(file, single));
        let mut previous: Option<u64> = None;
        for line in &file.lines {
            let contiguous = previous.is_some_and(|number| number + 1 == line.line_number);
            if with_context && !contiguous && !first_group {
                writeln!(out, "--")?;
            }
            first_group = false;
            previous = Some(line.line_number);
            let number = paint(LINE_COLOR, &line.line_number.to_string());
            if line.context {
                writeln!(out, "{path}-{number}-{}", line.text)?;
            } else {
                let text = highlight(line, color);
                writeln!(out, "{path}:{number}:{}:{text}", line.column())?;
            }
        }
    }
    Ok(())
}

fn highlight(line: &GrepLine, color: bool) -> String {
    if !color {
        return line.text.clone();
    }
    let mut text = String::with_capacity(line.text.len() + 16 * line.submatches.len());
    let mut at = 0usize;
    for &(start, end) in &line.submatches {
        if start < at || end > line.text.len() {
            continue;
        }
        text.push_str(&line.text[at..start]);
        text.push_str(MATCH_COLOR);
        text.push_str(&line.text[start..end]);
        text.push_str(RESET);
        at = end;
    }
    text.push_str(&line.text[at..]);
    text
}

/// ripgrep's `--json` messages: `begin`, `match`/`context`, `end` per file, then `summary`.
fn write_json(out: &mut impl Write, results: &GrepResults) -> anyhow::Result<()> {
    let elapsed = |ms: u64| {
        let duration = Duration::from_millis(ms);
        json!({
            "secs": duration.as_secs(),
            "nanos": duration.subsec_nanos(),
            "human": format!("{:.6}s", duration.as_secs_f64()),
        })
    };
    let single = single_collection(results);
    for file in &results.files {
        let path = json!({ "text": display_path(file, single) });
        writeln!(out, "{}", json!({"type": "begin", "data": {"path": path}}))?;
        for line in &file.lines {
            let submatches: Vec<_> = line
                .submatches
                .iter()
                .map(|&(start, end)| {
                    json!({
                        "match": {"text": line.text.get(start..end).unwrap_or("")},
                        "start": start,
                        "end": end,
                    })
                })
                .collect();
            let kind = if line.context { "context" } else { "match" };
            let message = json!({
                "type": kind,
                "data": {
                    "path": path,
                    "lines": {"text": format!("{}\n", line.text)},
                    "line_number": line.line_number,
                    "absolute_offset": line.byte_offset,
                    "submatches": submatches,
                }
            });
            writeln!(out, "{message}")?;
        }
        let stats = json!({
            "elapsed": elapsed(0),
            "searches": 1,
            "searches_with_match": 1,
            "bytes_searched": 0,
            "bytes_printed": 0,
            "matched_lines": file.matched_lines,
            "matches": file.submatches,
        });
        writeln!(
            out,
            "{}",
            json!({"type": "end", "data": {"path": path, "binary_offset": null, "stats": stats}})
        )?;
    }
    let summary = json!({
        "type": "summary",
        "data": {
            "elapsed_total": elapsed(results.elapsed_ms),
            "stats": {
                "elapsed": elapsed(results.elapsed_ms),
                "searches": results.candidates,
                "searches_with_match": results.files.len(),
                "bytes_searched": results.bytes_searched,
                "bytes_printed": 0,
                "matched_lines": results.matched_lines,
                "matches": results.submatches,
            }
        }
    });
    writeln!(out, "{summary}")?;
    Ok(())
}
