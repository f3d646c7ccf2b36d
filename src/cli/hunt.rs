//! `iocmatch hunt network|dns`: the two Sentinel hunting joins over log files.

use super::join_args::{parse_expiry, parse_log_format, parse_query, parse_semantics};
use super::output::{parse_time_arg, Out};
use super::Outcome;
use anyhow::{Context, Result};
use iocmatch::hunt::{
    self, csv_cell, Expiry, HuntOptions, HuntReport, Match, Progress, Query, Semantics,
};
use iocmatch::index::{Field, Index, IndexBytes};
use iocmatch::ingest::IngestOptions;
use iocmatch::logs::input;
use iocmatch::logs::{LogFormat, Logical};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
#[command(after_help = "\
Queries (KQL, answered offline):
  network  NetworkConnection | join kind=inner (ThreatIntelligenceIndicator | where isnotnull(NetworkIP))
           on $left.DestinationIP == $right.NetworkIP | where ExpirationDateTime > now()
           | project TimeGenerated, SourceIP, DestinationIP, ConfidenceScore, Description
           | sort by TimeGenerated desc
  dns      the same over DnsEvents on $left.Name == $right.DomainName,
           projecting TimeGenerated, ClientIP, Name, ConfidenceScore, ThreatType

Exit status: 0 = matches found, 1 = no match, 2 = error.")]
pub struct Args {
    /// Which query: `network` or `dns`.
    #[arg(value_name = "QUERY", value_parser = parse_query)]
    query: Query,
    /// Log files or directories (`-` = stdin). CSV, NDJSON or Zeek logs, plain, gzip or zstd.
    #[arg(required = true, value_name = "LOG")]
    logs: Vec<PathBuf>,
    /// A compiled index, or indicator feeds (compiled in memory). Repeatable for feeds.
    #[arg(long, required = true, value_name = "INDEX")]
    index: Vec<PathBuf>,
    /// `normalized` (canonical IPs, CIDR containment, case-insensitive domains) or `kql`
    /// (KQL's exact string join, quirks included).
    #[arg(long, default_value = "normalized", value_parser = parse_semantics)]
    semantics: Semantics,
    /// The time `now()` stands for (default: the current time).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    now: Option<hunt_time::T>,
    /// `now`: indicators live at --now; `at-event`: live at the event's own time
    /// (valid_from <= TimeGenerated < expiration), for retro-hunting old logs.
    #[arg(long, default_value = "now", value_parser = parse_expiry)]
    expiry: Expiry,
    /// Normalized DNS: also match indicators of parent domains (a.evil.com ~ evil.com).
    #[arg(long)]
    subdomains: bool,
    /// Event fields to match: network `SourceIP,DestinationIP`; dns `Name,IPAddresses`.
    /// Adds a MatchedField column.
    #[arg(long = "match", value_name = "FIELDS", value_delimiter = ',')]
    match_fields: Vec<String>,
    /// Log format instead of detection: csv, ndjson, zeek.
    #[arg(long, value_name = "FORMAT", value_parser = parse_log_format)]
    input_format: Option<LogFormat>,
    /// Read a field from another column or key: `DestinationIP=dst_ip`, `Name=query`,
    /// `TimeGenerated=ts`, `SourceIP=src`. Repeatable.
    #[arg(long, value_name = "FIELD=NAME")]
    column: Vec<String>,
    /// Output format: csv, ndjson or table.
    #[arg(long, default_value = "csv", value_parser = ["csv", "ndjson", "table"])]
    format: String,
    /// Extra indicator columns: IndicatorId, ThreatType, Description, ConfidenceScore, Tags,
    /// Source, TrafficLightProtocolLevel, Name, ExpirationDateTime, ValidFrom, Indicator,
    /// IndicatorType, NetworkIP, DomainName, MatchedField, File, Line.
    #[arg(long = "with", value_name = "FIELDS", value_delimiter = ',')]
    with: Vec<String>,
    /// Write the matches to FILE (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
    /// Stop with an error at the first malformed record.
    #[arg(long)]
    strict: bool,
    /// Indicator feeds given to --index: keep only the newest row per IndicatorId.
    #[arg(long)]
    latest: bool,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

mod hunt_time {
    pub type T = iocmatch::time::Timestamp;
}

/// An output column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Time,
    Source,
    Key,
    Confidence,
    Str(Field),
    Expiration,
    ValidFrom,
    Kind,
    MatchedField,
    File,
    Line,
}

fn with_col(name: &str) -> Option<Col> {
    Some(match name.to_ascii_lowercase().as_str() {
        "indicatorid" | "id" => Col::Str(Field::Id),
        "threattype" => Col::Str(Field::ThreatType),
        "description" => Col::Str(Field::Description),
        "confidencescore" | "confidence" => Col::Confidence,
        "tags" => Col::Str(Field::Tags),
        "source" | "sourcesystem" => Col::Str(Field::Source),
        "trafficlightprotocollevel" | "tlp" => Col::Str(Field::Tlp),
        "name" => Col::Str(Field::Name),
        "expirationdatetime" | "expiration" => Col::Expiration,
        "validfrom" => Col::ValidFrom,
        "indicator" | "value" => Col::Str(Field::Value),
        "indicatortype" | "kind" => Col::Kind,
        "networkip" => Col::Str(Field::KqlNetworkIp),
        "domainname" => Col::Str(Field::KqlDomainName),
        "matchedfield" => Col::MatchedField,
        "file" => Col::File,
        "line" => Col::Line,
        _ => return None,
    })
}

pub fn run(a: Args) -> Result<Outcome> {
    let start = Instant::now();
    let mut opts = HuntOptions::new(a.query);
    opts.semantics = a.semantics;
    if let Some(now) = a.now {
        opts.now = now;
    }
    opts.expiry = a.expiry;
    opts.subdomains = a.subdomains;
    opts.input_format = a.input_format;
    opts.threads = a.threads;
    opts.strict = a.strict;
    super::join_args::apply_fields(&mut opts, &a.match_fields, &a.column)?;
    let mut cols: Vec<(String, Col)> = a
        .query
        .columns()
        .iter()
        .zip([
            Col::Time,
            Col::Source,
            Col::Key,
            Col::Confidence,
            Col::Str(if a.query == Query::Network {
                Field::Description
            } else {
                Field::ThreatType
            }),
        ])
        .map(|(n, c)| (n.to_string(), c))
        .collect();
    if !opts.key_only() {
        cols.push(("MatchedField".into(), Col::MatchedField));
    }
    for w in &a.with {
        let w = w.trim();
        let c = with_col(w).with_context(|| format!("--with {w}: unknown field (see --help)"))?;
        if !cols.iter().any(|(_, x)| *x == c) {
            cols.push((w.to_string(), c));
        }
    }

    let ingest_opts = IngestOptions {
        latest: a.latest,
        ..IngestOptions::default()
    };
    let (mut index, ingest_report) = super::join_args::load_index(&a.index, &ingest_opts)?;
    if let (Some(r), false) = (&ingest_report, a.quiet) {
        eprintln!(
            "indicators: {} records from {} file(s), {} skipped",
            index.len(),
            r.files.len(),
            r.skipped_total()
        );
    }
    let sources = input::expand(&a.logs)?;
    if super::join_args::long_hunt(&sources) {
        super::join_args::load_hot(&mut index);
    }
    let progress = Progress::default();
    let show = !a.quiet && std::io::stderr().is_terminal();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (matches, report) = std::thread::scope(|s| -> Result<_> {
        let ticker = show.then(|| s.spawn(|| progress_bar(&progress, &done, start)));
        let r = hunt::hunt(&index, &sources, &opts, &progress);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = ticker {
            let _ = t.join();
        }
        Ok(r?)
    })?;

    let rows = Rows {
        index: &index,
        cols: &cols,
        sources: &sources,
        query: a.query,
    };
    let mut out = Out::open(a.output.as_deref())?;
    // The hunt's thread count formats the rows too (0: all cores).
    let threads = match a.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    match a.format.as_str() {
        "ndjson" => rows.write_ndjson(&mut out, &matches, threads)?,
        "table" => rows.write_table(&mut out, &matches)?,
        _ => rows.write_csv(&mut out, &matches, threads)?,
    }
    out.finish()?;
    if !a.quiet {
        eprint!("{}", summary(&report, &opts, start.elapsed().as_secs_f64()));
    }
    Ok(if matches.is_empty() {
        Outcome::NoMatch
    } else {
        Outcome::Matched
    })
}

fn progress_bar(p: &Progress, done: &std::sync::atomic::AtomicBool, start: Instant) {
    use std::sync::atomic::Ordering;
    let mut shown = false;
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let t = start.elapsed().as_secs_f64();
        if t < 1.0 {
            continue;
        }
        let b = p.bytes.load(Ordering::Relaxed) as f64;
        let r = p.records.load(Ordering::Relaxed);
        eprint!(
            "\r{:>10} records  {:>8.1} MB  {:>7.1} MB/s ",
            r,
            b / 1e6,
            b / 1e6 / t
        );
        shown = true;
    }
    if shown {
        eprint!("\r{:60}\r", "");
    }
}

/// Output rows formatted per round (see [`write_rounds`]).
const ROUND: usize = 8192;

/// Rows as CSV lines (fields quoted where needed, `\n` line ends), a null as empty.
fn csv_lines(rows: impl Iterator<Item = Result<Vec<Option<String>>>>) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for row in rows {
        w.write_record(row?.into_iter().map(Option::unwrap_or_default))?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{}", e.error()))
}

/// Writes the rows of `ms` in order, formatted by `threads` threads a round at a time: each
/// formats a slice of the round into its own buffer (`format`), and the buffers are written in
/// turn. The rows of a long hunt's matches took a tenth of its time on one thread, after the
/// scan on all of them.
fn write_rounds(
    out: &mut Out,
    ms: &[Match],
    threads: usize,
    format: impl Fn(&[Match]) -> Result<Vec<u8>> + Sync,
) -> Result<()> {
    for round in ms.chunks(ROUND) {
        let mut parts = round.chunks(round.len().div_ceil(threads.max(1)).max(1));
        let first = parts.next().unwrap_or_default();
        let bufs = std::thread::scope(|s| {
            let others: Vec<_> = parts.map(|p| s.spawn(|| format(p))).collect();
            let mut bufs = vec![format(first)];
            for h in others {
                let joined = h.join();
                bufs.push(
                    joined.unwrap_or_else(|_| Err(anyhow::anyhow!("an output thread failed"))),
                );
            }
            bufs
        });
        for b in bufs {
            out.write_all(&b?)?;
        }
    }
    Ok(())
}

/// How matches become output rows: the index for indicator fields, the chosen columns, the
/// input names (for `File`) and the query (for `MatchedField`).
struct Rows<'a> {
    index: &'a Index<IndexBytes>,
    cols: &'a [(String, Col)],
    sources: &'a [input::Source],
    query: Query,
}

impl Rows<'_> {
    /// The cells of one match, `None` for null.
    fn row(&self, m: &Match) -> Result<Vec<Option<String>>> {
        self.cols.iter().map(|(_, c)| self.cell(m, *c)).collect()
    }

    /// One cell of match `m`, `None` for null. Each column reads what it needs of the
    /// indicator: its fixed part, or one string (a string is a likely cache miss in a pool of
    /// a hundred megabytes).
    fn cell(&self, m: &Match, c: Col) -> Result<Option<String>> {
        let (idx, id) = (self.index, m.record);
        Ok(match c {
            Col::Time => m.time.map(|t| t.to_string()),
            Col::Source => Some(m.source.clone()),
            Col::Key => Some(m.key.clone()),
            Col::Confidence => idx.confidence(id)?.map(iocmatch::hunt::format_real),
            Col::Str(f) => Some(idx.field(id, f)?.to_string()),
            Col::Expiration => idx.fixed(id)?.expiration.map(|t| t.to_string()),
            Col::ValidFrom => idx.fixed(id)?.valid_from.map(|t| t.to_string()),
            Col::Kind => Some(idx.fixed(id)?.kind.name().to_string()),
            Col::MatchedField => Some(self.query.field_name(m.matched).to_string()),
            Col::File => Some(
                self.sources
                    .get(m.file as usize)
                    .map(|s| s.name())
                    .unwrap_or_default(),
            ),
            Col::Line => Some(m.line.to_string()),
        })
    }

    /// Appends match `m` as a CSV line: what [`csv_lines`] makes of [`Rows::row`], written
    /// without a `String` per cell for the common columns (the rows of a long hunt are
    /// written after its scan).
    fn csv_row(&self, m: &Match, out: &mut Vec<u8>) -> Result<()> {
        for (i, (_, c)) in self.cols.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let at = out.len();
            match *c {
                // A time is digits and `-:.TZ`: never quoted.
                Col::Time => {
                    if let Some(t) = m.time {
                        t.push_to(out);
                    }
                }
                Col::Source => csv_cell(out, &m.source),
                Col::Key => csv_cell(out, &m.key),
                Col::Str(f) => csv_cell(out, self.index.field(m.record, f)?),
                c => {
                    if let Some(v) = self.cell(m, c)? {
                        csv_cell(out, &v);
                    }
                }
            }
            // A record of one empty field is written `""` (else it would read as no record).
            if self.cols.len() == 1 && out.len() == at {
                out.extend_from_slice(b"\"\"");
            }
        }
        out.push(b'\n');
        Ok(())
    }

    fn write_csv(&self, out: &mut Out, ms: &[Match], threads: usize) -> Result<()> {
        let names = self.cols.iter().map(|(n, _)| Some(n.clone()));
        out.write_all(&csv_lines(std::iter::once(Ok(names.collect())))?)?;
        write_rounds(out, ms, threads, |part| {
            let mut buf = Vec::with_capacity(part.len() * 96);
            for m in part {
                self.csv_row(m, &mut buf)?;
            }
            Ok(buf)
        })
    }

    fn write_ndjson(&self, out: &mut Out, ms: &[Match], threads: usize) -> Result<()> {
        write_rounds(out, ms, threads, |part| {
            let mut buf = Vec::new();
            self.ndjson_lines(&mut buf, part)?;
            Ok(buf)
        })
    }

    fn ndjson_lines(&self, out: &mut Vec<u8>, ms: &[Match]) -> Result<()> {
        for m in ms {
            let mut o = serde_json::Map::new();
            for ((n, c), v) in self.cols.iter().zip(self.row(m)?) {
                let v = match (c, v) {
                    (_, None) => serde_json::Value::Null,
                    (Col::Confidence, Some(s)) => s
                        .parse::<f64>()
                        .map_or(serde_json::Value::String(s), serde_json::Value::from),
                    (Col::Line, Some(s)) => s
                        .parse::<u64>()
                        .map_or(serde_json::Value::String(s), serde_json::Value::from),
                    (_, Some(s)) => serde_json::Value::String(s),
                };
                o.insert(n.clone(), v);
            }
            serde_json::to_writer(&mut *out, &o)?;
            out.push(b'\n');
        }
        Ok(())
    }

    fn write_table(&self, out: &mut Out, ms: &[Match]) -> Result<()> {
        let mut rows: Vec<Vec<String>> = vec![self.cols.iter().map(|(n, _)| n.clone()).collect()];
        for m in ms {
            let row = self.row(m)?;
            rows.push(
                row.into_iter()
                    .map(|v| v.unwrap_or_default().replace(['\n', '\r', '\t'], " "))
                    .collect(),
            );
        }
        let widths: Vec<usize> = (0..self.cols.len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            writeln!(out, "{}", line.join("  ").trim_end())?;
        }
        Ok(())
    }
}

fn summary(r: &HuntReport, opts: &HuntOptions, secs: f64) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for f in &r.files {
        let _ = write!(
            s,
            "{}: {} records, {} matches",
            f.name, f.records, f.matches
        );
        if let Some(fmt) = f.format {
            let names: Vec<String> = [Logical::Time, Logical::Source, Logical::Key, Logical::Extra]
                .iter()
                .filter_map(|&l| {
                    f.schema.names[l as usize]
                        .as_ref()
                        .filter(|_| {
                            l != Logical::Extra || opts.match_fields.contains(&Logical::Extra)
                        })
                        .map(|n| format!("{}={n}", opts.query.field_name(l)))
                })
                .collect();
            let _ = write!(s, " [{fmt}: {}]", names.join(", "));
        }
        let skipped: u64 = f.skipped.values().sum();
        if skipped > 0 {
            let reasons: Vec<String> = f.skipped.iter().map(|(w, n)| format!("{n} {w}")).collect();
            let first: Vec<String> = f
                .first_skipped
                .iter()
                .map(|(l, _)| format!("line {l}"))
                .collect();
            let _ = write!(
                s,
                "; skipped {skipped} ({}; first at {})",
                reasons.join(", "),
                first.join(", ")
            );
        }
        if f.null_times > 0 {
            let _ = write!(s, "; {} unparseable times read as null", f.null_times);
        }
        s.push('\n');
    }
    let records = r.records();
    let _ = writeln!(
        s,
        "total: {} records in {} file(s), {} matches, {} skipped; {} joined pairs dropped as expired ({} indicators not live at {}); {:.2} s, {:.1} M records/s",
        records,
        r.files.len(),
        r.matches(),
        r.skipped(),
        r.pairs_expired,
        r.indicators_expired,
        opts.now,
        secs,
        records as f64 / secs.max(1e-9) / 1e6
    );
    s
}
