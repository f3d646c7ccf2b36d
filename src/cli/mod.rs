//! Argument definitions and dispatch. Every subcommand lives in its own file and returns an
//! [`Outcome`]; this module turns it into an exit code and reports errors on stderr.

mod blocks;
mod compile;
mod filter;
mod gen;
mod hunt;
mod inspect;
mod join_args;
mod lookup;
mod output;
mod sync;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// What a subcommand achieved, as grep reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success / something matched: exit 0.
    Matched,
    /// Ran fine but nothing matched: exit 1.
    NoMatch,
}

#[derive(Parser)]
#[command(
    name = "iocmatch",
    version,
    about = "Offline threat-intelligence matching: compile indicator feeds into one memory-mapped index, then hunt through logs.",
    after_help = "Exit status: 0 = success or a match, 1 = no match, 2 = error (grep's convention).\nRun `iocmatch <command> --help` for the options of each command."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile indicator files (STIX/TAXII, Sentinel exports, CSV, REST, plain lists) into an index.
    Compile(compile::Args),
    /// Show what an index holds: counts by kind, source and expiry state, build info, size.
    Inspect(inspect::Args),
    /// Look values up in an index and print every matching indicator.
    Lookup(lookup::Args),
    /// Hunt: the Sentinel NetworkConnection / DnsEvents joins over log files.
    Hunt(hunt::Args),
    /// A pipeline stage: records on stdin, matching records (annotated) on stdout.
    Filter(filter::Args),
    /// Write a deterministic test corpus (indicators and logs) for benchmarks.
    Gen(gen::Args),
    /// Check an index's checksum and every internal reference.
    Verify(verify::Args),
    /// Pull indicators from a TAXII 2.1 server or a REST feed API into a fresh index.
    Sync(sync::Args),
}

/// Parses the command line, runs the subcommand and returns its exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    let result = match cli.command {
        Command::Compile(a) => compile::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Lookup(a) => lookup::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Hunt(a) => hunt::run(a),
        Command::Gen(a) => gen::run(a),
        Command::Filter(a) => filter::run(a),
        Command::Sync(a) => sync::run(a),
    };
    match result {
        Ok(Outcome::Matched) => ExitCode::SUCCESS,
        Ok(Outcome::NoMatch) => ExitCode::from(1),
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iocmatch: error: {}", message(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes, `: `-separated, without repeating a cause that the message before
/// it already ends with (the library's errors name their file and quote the underlying I/O
/// error, which is also their `source`).
pub fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::message;
    use anyhow::Context;

    #[test]
    fn message_skips_a_cause_the_message_already_quotes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let lib = iocmatch::Error::Io {
            path: "/x/log.csv".into(),
            source: io,
        };
        // The library error quotes its source; the context line does not.
        let e = anyhow::Error::new(lib).context("cannot load the index");
        assert_eq!(
            message(&e),
            "cannot load the index: /x/log.csv: no such file"
        );
        // A cause the message does not end with is kept.
        let e = Err::<(), _>(std::io::Error::other("disk on fire"))
            .context("writing out.iocx")
            .unwrap_err();
        assert_eq!(message(&e), "writing out.iocx: disk on fire");
    }
}
