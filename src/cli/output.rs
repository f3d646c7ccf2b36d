//! Small printing helpers shared by subcommands.

use iocmatch::time::Timestamp;

/// Whether an error chain ends in a closed pipe (`iocmatch ... | head`): that ends quietly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Parses a `--now`-style timestamp argument.
pub fn parse_time_arg(s: &str) -> Result<Timestamp, String> {
    if s == "now" {
        return Ok(Timestamp::now());
    }
    Timestamp::parse(s).ok_or_else(|| {
        format!("invalid timestamp {s:?}: use ISO 8601 such as 2026-11-28T16:00:00Z, or M/D/YYYY")
    })
}

/// A confidence as KQL prints a real: no fraction when integral.
pub fn confidence(c: Option<f64>) -> String {
    match c {
        None => String::new(),
        Some(c) if c.fract() == 0.0 => format!("{c:.0}"),
        Some(c) => format!("{c}"),
    }
}

/// A nullable timestamp (empty when null).
pub fn time(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

/// Opens an index, naming the file in any error.
pub fn open_index(path: &std::path::Path) -> anyhow::Result<iocmatch::Index> {
    use anyhow::Context;
    iocmatch::Index::open(path).with_context(|| format!("cannot open index {}", path.display()))
}
