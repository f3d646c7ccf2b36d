//! `iocmatch verify`: the whole-file checksum and a walk of every structure.

use super::Outcome;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The index file.
    #[arg(value_name = "INDEX")]
    index: PathBuf,
}

pub fn run(a: Args) -> Result<Outcome> {
    let idx = super::output::open_index(&a.index)?;
    let s = idx
        .verify()
        .with_context(|| format!("{} failed verification", a.index.display()))?;
    println!(
        "{}: OK ({} records, {} IP intervals, {} string keys, {} bytes)",
        a.index.display(),
        s.records,
        s.ip_intervals,
        s.string_keys,
        idx.as_bytes().len()
    );
    Ok(Outcome::Matched)
}
