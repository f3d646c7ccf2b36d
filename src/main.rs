//! The `iocmatch` command: a thin CLI over the library. It parses arguments, calls the engine,
//! prints, and maps outcomes to exit codes (0 = match / success, 1 = no match, 2 = error).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
