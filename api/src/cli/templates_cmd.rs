//! `templates list`: the question templates `research --template` accepts.

use std::io::Write;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Every template with its sections.
    List {
        /// One JSON object per template.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: &TemplatesCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match command {
        TemplatesCommand::List { json } => {
            for template in aiex_research::template::TEMPLATES {
                if *json {
                    serde_json::to_writer(&mut stdout, template)?;
                    writeln!(stdout)?;
                    continue;
                }
                writeln!(stdout, "{}\n    {}", template.name, template.description)?;
                let headings: Vec<&str> = template.sections.iter().map(|s| s.heading).collect();
                writeln!(stdout, "    sections: {}", headings.join(" · "))?;
            }
        }
    }
    stdout.flush()?;
    Ok(())
}
