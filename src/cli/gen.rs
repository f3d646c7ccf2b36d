//! `iocmatch gen`: a deterministic benchmark / test corpus (see data/README.md).

use super::output::parse_time_arg;
use super::Outcome;
use anyhow::{Context, Result};
use iocmatch::gen::{write_corpus, GenConfig, CORPUS_FILES};
use iocmatch::time::Timestamp;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Seed of every random choice: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Indicator rows.
    #[arg(long, default_value_t = 10_000)]
    indicators: usize,
    /// Events per log file.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Reference time: expirations are relative to it, events fall in the 30 days before.
    #[arg(long, default_value = "2025-01-01T00:00:00Z", value_parser = parse_time_arg)]
    now: Timestamp,
    /// Share of events that hit an indicator.
    #[arg(long, default_value_t = 0.01)]
    hit_rate: f64,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<Outcome> {
    let cfg = GenConfig {
        seed: a.seed,
        indicators: a.indicators,
        events: a.events,
        now: a.now,
        hit_rate: a.hit_rate,
    };
    write_corpus(&a.out, &cfg)
        .with_context(|| format!("writing the corpus to {}", a.out.display()))?;
    eprintln!("wrote {} to {}", CORPUS_FILES.join(", "), a.out.display());
    Ok(Outcome::Matched)
}
