use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use aiex_search::crawl::{crawl, CrawlOptions};

use aiex_indexer::{CollectionKind, IndexDir, IndexRequest};

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Index a documentation set as NAME: a directory of Markdown and HTML (e.g. rustdoc output),
    /// or a site URL, crawled politely (same host, robots.txt, depth and page limits).
    Add {
        name: String,
        #[arg(value_name = "PATH_OR_URL")]
        source: String,
        /// Crawl: most pages fetched.
        #[arg(long, default_value_t = 200)]
        max_pages: usize,
        /// Crawl: most link hops from the start page.
        #[arg(long, default_value_t = 3)]
        max_depth: usize,
        /// Only update the keyword index now.
        #[arg(long)]
        no_embed: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List documentation sets.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a documentation set.
    Remove { name: String },
}

pub fn run(
    config: &aiex_config::Config,
    command: &DocsCommand,
    no_server: bool,
) -> anyhow::Result<()> {
    let index_dir = IndexDir::new(config.index_dir());
    let server = config.vector.backend == aiex_config::VectorBackend::Server;
    if server && !matches!(command, DocsCommand::Add { .. }) {
        // The documentation sets the cluster holds, indexed through any node.
        aiex_indexer::store::server::sync_cache(config)?;
    }
    let mut stdout = std::io::stdout().lock();
    match command {
        DocsCommand::Add {
            name,
            source,
            max_pages,
            max_depth,
            no_embed,
            json,
        } => {
            let path = if aiex_config::is_http_url(source) {
                aiex_indexer::collection::validate_name(name)?;
                let mirror = config.data_dir.join("mirrors").join(name);
                let options = CrawlOptions {
                    max_pages: *max_pages,
                    max_depth: *max_depth,
                    net: aiex_search::fetch::NetPolicy::from_config(&config.fetch),
                    ..CrawlOptions::default()
                };
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting the async runtime")?;
                let report = runtime
                    .block_on(crawl(source, &mirror, &options))
                    .with_context(|| format!("crawling {source}"))?;
                eprintln!(
                    "crawled {source}: {} pages ({} disallowed by robots.txt, {} skipped, {} failed)",
                    report.fetched, report.skipped_robots, report.skipped_other, report.failed
                );
                for problem in &report.problems {
                    eprintln!("  {} {}: {}", problem.outcome, problem.url, problem.reason);
                }
                let listed = report.problems.len();
                let problems = report.skipped_other + report.failed;
                if problems > listed {
                    eprintln!("  … and {} more", problems - listed);
                }
                mirror
            } else {
                PathBuf::from(source)
            };
            let mut request = IndexRequest::new(path);
            request.name = Some(name.clone());
            request.kind = CollectionKind::Docs;
            request.embed = !no_embed;
            super::index_cmd::run_index(config, request, *json, no_server, None)?;
        }
        DocsCommand::List { json } => {
            let docs: Vec<_> = index_dir
                .status()?
                .into_iter()
                .filter(|status| status.kind == CollectionKind::Docs)
                .collect();
            if *json {
                serde_json::to_writer_pretty(&mut stdout, &docs)?;
                writeln!(stdout)?;
            } else if docs.is_empty() {
                writeln!(
                    stdout,
                    "no documentation sets: add one with `aiex-research docs add NAME PATH`"
                )?;
            } else {
                for status in docs {
                    writeln!(
                        stdout,
                        "{}  {} files, {} chunks, vectors {}, {}",
                        status.name,
                        status.files,
                        status.chunks,
                        if status.vectors_complete {
                            "complete"
                        } else {
                            "incomplete"
                        },
                        status.root.display()
                    )?;
                }
            }
        }
        DocsCommand::Remove { name } => {
            if index_dir.head(name)?.kind != CollectionKind::Docs {
                anyhow::bail!(
                    "`{name}` is a code collection; remove it with `index --remove {name}`"
                );
            }
            if server {
                aiex_indexer::store::server::remove_collection(config, name)?;
            }
            index_dir.remove(name)?;
            eprintln!("removed documentation set `{name}`");
        }
    }
    stdout.flush()?;
    Ok(())
}
