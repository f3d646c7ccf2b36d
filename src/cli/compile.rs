//! `iocmatch compile`: feeds in, one index file out, with a summary of what was read.

use super::output::parse_time_arg;
use super::Outcome;
use anyhow::{bail, Context, Result};
use iocmatch::indicator::Kind;
use iocmatch::ingest::{self, Format, IngestOptions, Report};
use iocmatch::time::Timestamp;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Indicator files: STIX 2.1 bundles / TAXII envelopes / STIX NDJSON, Sentinel
    /// ThreatIntelligenceIndicator or ThreatIntelIndicators exports (CSV, JSON, NDJSON),
    /// generic CSV feeds, REST feed responses, plain lists. The format is detected per file.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The index file to write (atomically: a temporary file, then a rename).
    #[arg(short, long, value_name = "INDEX")]
    output: PathBuf,
    /// Parse every file as this format instead of detecting it.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    format: Option<Format>,
    /// Sentinel exports: keep only the newest row per IndicatorId (by TimeGenerated) and drop
    /// inactive rows, as Microsoft's analytics rules do.
    #[arg(long)]
    latest: bool,
    /// Generic CSV: the header of the value column.
    #[arg(long, value_name = "NAME")]
    value_column: Option<String>,
    /// Generic CSV: the header of the type column.
    #[arg(long, value_name = "NAME")]
    type_column: Option<String>,
    /// Build time stored in the header (default: now). Fix it for byte-identical rebuilds.
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    build_time: Option<Timestamp>,
    /// How many skipped records to list (all are counted).
    #[arg(long, default_value_t = 10, value_name = "N")]
    show_problems: usize,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::from_name(s)
        .ok_or_else(|| format!("unknown format {s:?}; one of: {}", Format::NAMES.join(", ")))
}

pub fn run(a: Args) -> Result<Outcome> {
    let start = Instant::now();
    let opts = IngestOptions {
        format: a.format,
        value_column: a.value_column,
        type_column: a.type_column,
        latest: a.latest,
    };
    let (records, report) = ingest::load_files(&a.files, &opts)?;
    let parsed = start.elapsed();
    if !a.quiet {
        eprint!("{}", summary(&report, &records, a.show_problems));
    }
    let usable = records.iter().filter(|r| !r.keys.is_empty()).count();
    if usable == 0 {
        bail!(
            "no usable indicator in {} (read {}, skipped {}): nothing to compile",
            a.files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            report.read,
            report.skipped_total()
        );
    }
    let image =
        iocmatch::index::build_image(&records, a.build_time.unwrap_or_else(Timestamp::now))?;
    let built = start.elapsed();
    image
        .write_atomic(&a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    if !a.quiet {
        let total = start.elapsed();
        eprintln!(
            "wrote {}: {} records, {} bytes, in {:.2} s (parse {:.2} s, build {:.2} s, write {:.2} s)",
            a.output.display(),
            records.len(),
            image.len(),
            total.as_secs_f64(),
            parsed.as_secs_f64(),
            (built - parsed).as_secs_f64(),
            (total - built).as_secs_f64()
        );
    }
    Ok(Outcome::Matched)
}

/// The human summary of an ingest run.
pub fn summary(report: &Report, records: &[iocmatch::indicator::Indicator], show: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for (file, format) in &report.files {
        let _ = writeln!(s, "{file}: read as {format}");
    }
    let _ = writeln!(
        s,
        "read {} records; kept {} ({} with no usable key, kept for --semantics kql only); skipped {}",
        report.read,
        records.len(),
        records.iter().filter(|r| r.keys.is_empty()).count(),
        report.skipped_total()
    );
    for (reason, n) in &report.skipped {
        let _ = writeln!(s, "  skipped {n:>8}  {reason}");
    }
    if report.superseded + report.revoked + report.inactive > 0 {
        let _ = writeln!(
            s,
            "dropped {} older versions, {} revoked, {} inactive",
            report.superseded, report.revoked, report.inactive
        );
    }
    let by_kind = ingest::count_by_kind(records);
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .filter_map(|k| by_kind.get(k).map(|n| format!("{k} {n}")))
        .collect();
    if !kinds.is_empty() {
        let _ = writeln!(s, "by kind: {}", kinds.join(", "));
    }
    for p in report.problems.iter().take(show) {
        let _ = writeln!(s, "  {p}");
    }
    let total = report.skipped_total() as usize;
    if total > show.min(report.problems.len()) {
        let _ = writeln!(
            s,
            "  ... {} more (--show-problems N lists more)",
            total - show.min(report.problems.len())
        );
    }
    s
}
