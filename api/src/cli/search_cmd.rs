use std::io::Write;

use clap::Args;
use serde::Serialize;

use aiex_config::SearchMode;
use aiex_indexer::{Language, SearchHit, SearchRequest, Searcher};

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for: words, identifiers, or a question.
    #[arg(value_name = "QUERY")]
    pub query: String,
    /// Collection to search (repeatable; default: all).
    #[arg(long = "collection", value_name = "NAME")]
    pub collections: Vec<String>,
    /// keyword (BM25), vector (embeddings) or hybrid (both, fused).
    #[arg(long)]
    pub mode: Option<SearchMode>,
    /// Only hits in this language (repeatable): rust, python, ts, …
    #[arg(long = "lang", value_name = "LANG")]
    pub languages: Vec<String>,
    /// Only hits whose path (relative to the collection root) matches this glob.
    #[arg(long = "path", value_name = "GLOB")]
    pub path_glob: Option<String>,
    /// Number of hits.
    #[arg(long)]
    pub limit: Option<usize>,
    /// One JSON object per hit.
    #[arg(long)]
    pub json: bool,
}

impl SearchArgs {
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut overrides = Vec::new();
        if let Some(mode) = self.mode {
            overrides.push(("search.mode".into(), mode.to_string()));
        }
        if let Some(limit) = self.limit {
            overrides.push(("search.limit".into(), limit.to_string()));
        }
        overrides
    }
}

/// The `--json` line of one hit.
#[derive(Serialize)]
struct JsonHit<'a> {
    collection: &'a str,
    path: &'a str,
    start_line: u32,
    end_line: u32,
    language: Language,
    symbol: Option<&'a str>,
    kind: &'a str,
    score: f32,
    snippet: &'a str,
}

pub fn run(config: &aiex_config::Config, args: &SearchArgs) -> anyhow::Result<()> {
    let languages = args
        .languages
        .iter()
        .map(|name| {
            Language::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Language::all().iter().map(|l| l.name()).collect();
                anyhow::anyhow!("unknown language `{name}` (known: {})", known.join(", "))
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let searcher = Searcher::open(config, &args.collections)?;
    if searcher.collection_names().is_empty() {
        anyhow::bail!("no collections yet: run `aiex-research index PATH` first");
    }
    let request = SearchRequest {
        query: args.query.clone(),
        mode: config.search.mode,
        collections: args.collections.clone(),
        languages,
        path_glob: args.path_glob.clone(),
        limit: config.search.limit,
    };
    let results = searcher.search(&request)?;
    for name in &results.vectors_incomplete {
        eprintln!(
            "note: vectors of `{name}` are still being computed; vector results may be partial"
        );
    }
    for (name, reason) in &results.vectors_unavailable {
        eprintln!("note: `{name}` searched by keywords only ({reason})");
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        for hit in &results.hits {
            serde_json::to_writer(&mut stdout, &json_hit(hit))?;
            writeln!(stdout)?;
        }
    } else {
        if results.hits.is_empty() {
            writeln!(stdout, "no results")?;
        }
        for (rank, hit) in results.hits.iter().enumerate() {
            write_hit(&mut stdout, rank + 1, hit)?;
        }
    }
    stdout.flush()?;
    Ok(())
}

fn json_hit(hit: &SearchHit) -> JsonHit<'_> {
    JsonHit {
        collection: &hit.collection,
        path: &hit.path,
        start_line: hit.start_line,
        end_line: hit.end_line,
        language: hit.language,
        symbol: hit.symbol.as_deref(),
        kind: hit.kind.name(),
        score: hit.score,
        snippet: &hit.snippet,
    }
}

fn write_hit(out: &mut impl Write, rank: usize, hit: &SearchHit) -> std::io::Result<()> {
    let symbol = match (&hit.symbol, &hit.parent) {
        // A container's own chunk has its header as parent: `struct Foo` in `pub struct Foo`.
        (Some(symbol), Some(parent)) if !parent.contains(symbol.as_str()) => {
            format!("  {} {symbol} in {parent}", hit.kind.name())
        }
        (Some(symbol), _) => format!("  {} {symbol}", hit.kind.name()),
        (None, _) => String::new(),
    };
    writeln!(
        out,
        "{rank:>2}. {}:{}:{}-{}{symbol}  ({:.4})",
        hit.collection, hit.path, hit.start_line, hit.end_line, hit.score
    )?;
    for (offset, line) in hit.snippet.lines().enumerate() {
        writeln!(
            out,
            "    {:>5} | {line}",
            hit.snippet_start_line as usize + offset
        )?;
    }
    writeln!(out)
}
