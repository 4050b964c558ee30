//! `aiex-research`: index repositories, search them, and (in later versions) research and serve.
//!
//! Errors print their chain once and exit with status 2; a search that finds nothing exits 1; a
//! closed stdout (`| head`) exits 0.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            if err.downcast_ref::<cli::NoMatches>().is_some() {
                return ExitCode::from(1);
            }
            let _ = writeln!(std::io::stderr().lock(), "error: {}", describe(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each said once: a cause whose text an outer message
/// already carries (`listening on …: Address already in use`) is not repeated.
fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
