use std::io::Write;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults < file < environment < flags), secrets redacted.
    Show,
}

pub fn run(config: &aiex_config::Config, command: &ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Show => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(config.to_redacted_toml().as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(())
}
