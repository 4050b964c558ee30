use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use aiex_indexer::{CollectionKind, IndexDir, IndexRequest};

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Index a documentation set (a directory of Markdown and HTML, e.g. rustdoc output) as NAME.
    Add {
        name: String,
        path: PathBuf,
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

pub fn run(config: &aiex_config::Config, command: &DocsCommand) -> anyhow::Result<()> {
    let index_dir = IndexDir::new(config.index_dir());
    let mut stdout = std::io::stdout().lock();
    match command {
        DocsCommand::Add {
            name,
            path,
            no_embed,
            json,
        } => {
            let mut request = IndexRequest::new(path);
            request.name = Some(name.clone());
            request.kind = CollectionKind::Docs;
            request.embed = !no_embed;
            super::index_cmd::run_index(config, request, *json)?;
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
            if index_dir.manifest(name)?.kind != CollectionKind::Docs {
                anyhow::bail!(
                    "`{name}` is a code collection; remove it with `index --remove {name}`"
                );
            }
            index_dir.remove(name)?;
            eprintln!("removed documentation set `{name}`");
        }
    }
    stdout.flush()?;
    Ok(())
}
