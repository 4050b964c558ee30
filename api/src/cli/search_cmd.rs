use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::grep_out::{self, GrepArgs, ModeArg, NoMatches};
use aiex_search::enhance::{enhance, Enhancement};
use aiex_search::sources::web::WebSource;
use aiex_search::{
    CoordinatedSearch, Coordinator, CoordinatorOptions, Hit, SearchEvent, SourceQuery,
};

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for: words, identifiers, or a question.
    #[arg(value_name = "QUERY")]
    pub query: String,
    /// Sources to ask, comma-separated: code, docs (default: every source that has collections).
    /// (`web` too when a Serper or Tavily key or a SearxNG URL is configured).
    #[arg(long, value_delimiter = ',', value_name = "SOURCES")]
    pub sources: Vec<String>,
    /// Collection to search (repeatable; default: all).
    #[arg(long = "collection", value_name = "NAME")]
    pub collections: Vec<String>,
    /// keyword (BM25), vector (embeddings) or hybrid (both, fused) for local sources; exact or
    /// regex for ripgrep-style matching lines (`path:line:column:text`) of code and docs.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Only hits in this language (repeatable): rust, python, ts, …
    #[arg(long = "lang", value_name = "LANG")]
    pub languages: Vec<String>,
    /// Only hits whose path (relative to the collection root) matches this glob.
    #[arg(long = "path", value_name = "GLOB")]
    pub path_glob: Option<String>,
    /// Number of hits.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Web results only from this domain (repeatable).
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub include_domains: Vec<String>,
    /// No web results from this domain (repeatable).
    #[arg(long = "exclude-domain", value_name = "DOMAIN")]
    pub exclude_domains: Vec<String>,
    /// Web results from the last day, week, month or year.
    #[arg(long, value_name = "RANGE")]
    pub since: Option<String>,
    /// The search's events, one JSON object per line, as they happen (the same events the HTTP
    /// API streams over SSE).
    #[arg(long, visible_alias = "events", conflicts_with = "hits")]
    pub json: bool,
    /// One JSON object per hit of the final list.
    #[arg(long)]
    pub hits: bool,
    /// After the results: per-source timings, cache hits, and ranks before and after fusion.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub grep: GrepArgs,
}

impl SearchArgs {
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut overrides = Vec::new();
        if let Some(mode) = self.mode.and_then(ModeArg::ranked) {
            overrides.push(("search.mode".into(), mode.to_string()));
        }
        if let Some(limit) = self.limit {
            overrides.push(("search.limit".into(), limit.to_string()));
        }
        overrides
    }
}

/// The `--hits` line of one hit: where it is, its score and snippet.
#[derive(Serialize)]
struct JsonHit<'a> {
    #[serde(flatten)]
    locator: &'a aiex_search::Locator,
    score: f32,
    snippet: &'a str,
}

fn json_hit(hit: &Hit) -> JsonHit<'_> {
    JsonHit {
        locator: &hit.locator,
        score: hit.score,
        snippet: &hit.snippet,
    }
}

/// Deadlines, budget, fusion and cache settings from the configuration.
pub fn coordinator_options(config: &aiex_config::Config) -> CoordinatorOptions {
    aiex_search::setup::coordinator_options(config)
}

pub fn run(config: &aiex_config::Config, args: &SearchArgs, no_server: bool) -> anyhow::Result<()> {
    // Exact and regex matching read the file index only (no vector store): always here.
    if let Some(mode) = args.grep.mode(args.mode) {
        return grep_out::run(config, args, mode);
    }
    aiex_api::engine::check_search_input(
        &args.languages,
        &args.sources,
        args.since.as_deref(),
        args.path_glob.as_deref(),
    )?;
    use aiex_api::server::routes::search::{MAX_LIMIT, MAX_QUERY_CHARS};
    let stay_local = if args.explain {
        Some("--explain shows this process's query analysis and cache".to_string())
    } else if config.search.limit > MAX_LIMIT || args.query.trim().chars().count() > MAX_QUERY_CHARS
    {
        Some(format!(
            "the HTTP API takes at most {MAX_LIMIT} hits and {MAX_QUERY_CHARS} characters of query"
        ))
    } else {
        None
    };
    if let Some(server) = super::delegate::find(config, no_server, stay_local.as_deref()) {
        return run_remote(&server, config, args);
    }
    let local = aiex_search::setup::local_sources(config, &args.collections)?;
    let mut sources = local.sources.clone();
    let (web, requested) = web_and_sources(config, args)?;
    if let Some(web) = web {
        sources.push(Arc::new(web));
    }
    if sources.is_empty() {
        anyhow::bail!("no collections yet: run `aiex-research index PATH` first");
    }
    // Only web queries and --explain use the collections' languages.
    let languages = if sources.iter().any(|s| s.name().starts_with("web")) || args.explain {
        local.languages()
    } else {
        Vec::new()
    };
    let enhancement = enhance(&args.query, &args.languages, &languages);
    let coordinator = Arc::new(Coordinator::new(sources, coordinator_options(config)));
    let mut query = SourceQuery::new(args.query.clone(), config.search.limit);
    query.collections = args.collections.clone();
    query.languages = args.languages.clone();
    query.path_glob = args.path_glob.clone();
    query.include_domains = args.include_domains.clone();
    query.exclude_domains = args.exclude_domains.clone();
    query.time_range = args.since.clone();
    query.web_query = Some(enhancement.web_query.clone());
    let search = CoordinatedSearch {
        query,
        sources: requested,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let events = runtime.block_on(print_events(&coordinator, search, args))?;
    let mut stdout = std::io::stdout().lock();
    let found = write_results(&mut stdout, &events, args)?;
    if args.explain {
        write_explanation(&mut stdout, &enhancement, &events, &coordinator)?;
    }
    stdout.flush()?;
    if !found {
        return Err(NoMatches.into());
    }
    Ok(())
}

/// The configured web source, and the sources to ask: those requested, less the web when it is
/// not configured (said in a note; nothing left to ask is an error).
fn web_and_sources(
    config: &aiex_config::Config,
    args: &SearchArgs,
) -> anyhow::Result<(Option<WebSource>, Vec<String>)> {
    let web = WebSource::from_config(config).context("configuring web search")?;
    let wants_web = args.sources.iter().any(|s| s.starts_with("web"));
    let mut requested = args.sources.clone();
    if web.is_none() && wants_web {
        eprintln!(
            "note: web search is not configured (set web.serper_api_key, web.tavily_api_key \
             or web.searxng_url)"
        );
        requested.retain(|s| !s.starts_with("web"));
        if requested.is_empty() {
            anyhow::bail!("no source left to ask");
        }
    }
    Ok((web, requested))
}

/// The search sent to the server of this data directory (`POST /v1/search`, its events as
/// SSE): each event shown as it comes, as the local search's, then the same results. The
/// limit and mode are this command's (flags and configuration), sent explicitly.
fn run_remote(
    server: &super::delegate::Server,
    config: &aiex_config::Config,
    args: &SearchArgs,
) -> anyhow::Result<()> {
    // The web's absence is handled as locally (this command's configuration names the web
    // providers, as the server's does when they share it).
    let (_, sources) = web_and_sources(config, args)?;
    let body = serde_json::json!({
        "query": args.query,
        "sources": sources,
        "collections": args.collections,
        "languages": args.languages,
        "path": args.path_glob,
        "limit": config.search.limit,
        "domains": args.include_domains,
        "exclude_domains": args.exclude_domains,
        "since": args.since,
        "mode": config.search.mode,
    });
    let events = server.block_on(async {
        let mut stream = server.post_events("/v1/search", &body).await?;
        let mut events = Vec::new();
        while let Some(frame) = stream.next().await? {
            if frame.event == "error" {
                anyhow::bail!("{}", frame.error_message());
            }
            let event: SearchEvent = match serde_json::from_str(&frame.data) {
                Ok(event) => event,
                // The stream's own end marker (`{"type":"done"}`) after the search's `done`.
                Err(_) if frame.event == "done" => break,
                Err(err) => {
                    return Err(
                        anyhow::Error::new(err).context("reading the server's search events")
                    )
                }
            };
            show_event(&event, args)?;
            let done = matches!(event, SearchEvent::Done { .. });
            events.push(event);
            if done {
                break;
            }
        }
        Ok(events)
    })?;
    let mut stdout = std::io::stdout().lock();
    let found = write_results(&mut stdout, &events, args)?;
    stdout.flush()?;
    if !found {
        return Err(NoMatches.into());
    }
    Ok(())
}

/// The final list of a search's events (`--hits` lines, or ranked text unless `--json`);
/// whether it has any hit.
fn write_results(
    stdout: &mut impl Write,
    events: &[SearchEvent],
    args: &SearchArgs,
) -> anyhow::Result<bool> {
    let merged = events.iter().find_map(|event| match event {
        SearchEvent::Merged { hits, .. } => Some(hits),
        _ => None,
    });
    let empty = Vec::new();
    let merged = merged.unwrap_or(&empty);
    if args.hits {
        for hit in merged {
            serde_json::to_writer(&mut *stdout, &json_hit(hit))?;
            writeln!(stdout)?;
        }
    } else if !args.json {
        if merged.is_empty() {
            writeln!(stdout, "no results")?;
        }
        for (rank, hit) in merged.iter().enumerate() {
            write_hit(stdout, rank + 1, hit)?;
        }
    }
    Ok(!merged.is_empty())
}

/// `--explain`: how the query was read, each source's part, and the cache.
fn write_explanation(
    stdout: &mut impl Write,
    enhancement: &Enhancement,
    events: &[SearchEvent],
    coordinator: &Coordinator,
) -> anyhow::Result<()> {
    writeln!(stdout, "explain:")?;
    writeln!(
        stdout,
        "  query: code terms {:?}; web query {:?}{}",
        enhancement.code_terms,
        enhancement.web_query,
        match (&enhancement.context, enhancement.context_from) {
            (Some(context), Some(from)) => format!(" (context {context} from {from})"),
            _ => String::new(),
        }
    )?;
    write_explain(stdout, events)?;
    let stats = coordinator.cache_stats();
    writeln!(
        stdout,
        "  cache: {} hits, {} misses, {} entries",
        stats.hits, stats.misses, stats.entries
    )?;
    Ok(())
}

/// Collects the events, printing them (`--json`) or progress and notes (stderr) as they come.
async fn print_events(
    coordinator: &Arc<Coordinator>,
    search: CoordinatedSearch,
    args: &SearchArgs,
) -> anyhow::Result<Vec<SearchEvent>> {
    let mut receiver = coordinator.search(search);
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await {
        show_event(&event, args)?;
        events.push(event);
    }
    Ok(events)
}

/// One event as it comes: a JSON line (`--json`), else its notes and failures on stderr.
fn show_event(event: &SearchEvent, args: &SearchArgs) -> anyhow::Result<()> {
    if args.json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer(&mut stdout, event)?;
        writeln!(stdout)?;
        stdout.flush()?;
    } else {
        match event {
            SearchEvent::Results { notes, .. } => {
                for note in notes {
                    eprintln!("note: {note}");
                }
            }
            SearchEvent::SourceFailed { source, error, .. } => {
                eprintln!("warning: source `{source}` failed: {error}");
            }
            _ => {}
        }
    }
    Ok(())
}

fn write_hit(out: &mut impl Write, rank: usize, hit: &Hit) -> std::io::Result<()> {
    let symbol = match (&hit.locator.symbol, &hit.locator.kind) {
        (Some(symbol), Some(kind)) => format!("  {kind} {symbol}"),
        _ => String::new(),
    };
    match (&hit.locator.url, &hit.locator.path) {
        (Some(url), _) => writeln!(
            out,
            "{rank:>2}. [{}] {}  {url}  ({:.4})",
            hit.locator.source, hit.locator.title, hit.score
        )?,
        (None, Some(_)) if hit.locator.page.is_some() => writeln!(
            out,
            "{rank:>2}. {}  ({:.4})",
            hit.locator.place(),
            hit.score
        )?,
        (None, Some(path)) => writeln!(
            out,
            "{rank:>2}. {}:{path}:{}-{}{symbol}  ({:.4})",
            hit.locator.collection.as_deref().unwrap_or(""),
            hit.locator.start_line.unwrap_or(0),
            hit.locator.end_line.unwrap_or(0),
            hit.score
        )?,
        (None, None) => writeln!(
            out,
            "{rank:>2}. [{}] {}  ({:.4})",
            hit.locator.source, hit.locator.title, hit.score
        )?,
    }
    let first_line = hit.snippet_line.unwrap_or(0) as usize;
    for (offset, line) in hit.snippet.lines().enumerate() {
        if hit.snippet_line.is_some() {
            writeln!(out, "    {:>5} | {line}", first_line + offset)?;
        } else {
            writeln!(out, "          {line}")?;
        }
    }
    writeln!(out)
}

fn write_explain(out: &mut impl Write, events: &[SearchEvent]) -> std::io::Result<()> {
    let mut lists: Vec<(&str, &Vec<Hit>)> = Vec::new();
    for event in events {
        match event {
            SearchEvent::Results {
                source,
                hits,
                took_ms,
                cached,
                ..
            } => {
                writeln!(
                    out,
                    "  source {source}: {} hits in {took_ms:.2} ms{}",
                    hits.len(),
                    if *cached { " (cache hit)" } else { "" }
                )?;
                lists.push((source, hits));
            }
            SearchEvent::SourceFailed { source, error, .. } => {
                writeln!(out, "  source {source}: failed: {error}")?;
            }
            SearchEvent::Merged { hits, .. } => {
                writeln!(out, "  ranks (fused <- per source):")?;
                for (rank, hit) in hits.iter().enumerate() {
                    let key = hit.key();
                    let before: Vec<String> = lists
                        .iter()
                        .filter_map(|(source, list)| {
                            list.iter()
                                .position(|other| other.key() == key)
                                .map(|position| format!("{source} #{}", position + 1))
                        })
                        .collect();
                    writeln!(out, "    #{} <- {}  {key}", rank + 1, before.join(", "))?;
                }
            }
            SearchEvent::Done { timings, .. } => {
                writeln!(
                    out,
                    "  fusion {:.2} ms, total {:.2} ms",
                    timings.fusion_ms, timings.total_ms
                )?;
            }
            SearchEvent::SourceStarted { .. } => {}
        }
    }
    Ok(())
}
