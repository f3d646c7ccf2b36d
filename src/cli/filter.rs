//! `iocmatch filter network|dns`: a pipeline stage. Records in on stdin, matching records out on
//! stdout, annotated; constant memory; flushes whenever the input pauses; reloads the index
//! when its file is replaced or on SIGHUP; a summary on stderr at the end or on SIGTERM.

use super::join_args::{parse_expiry, parse_log_format, parse_query, parse_semantics};
use super::output::parse_time_arg;
use super::Outcome;
use anyhow::{Context, Result};
use iocmatch::hunt::filter::{Filter, FilterStats, Mode, OnError};
use iocmatch::hunt::{Expiry, HuntOptions, Query, Semantics};
use iocmatch::index::{Index, IndexBytes};
use iocmatch::ingest::IngestOptions;
use iocmatch::logs::LogFormat;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
#[command(after_help = "\
Exit status: 0 when the stream was processed (whether or not anything matched: a pipeline
stage, as Spark's pipe(checkCode=True) and supervisors expect), 2 on error. A closed stdout
(broken pipe) ends quietly with 0.")]
pub struct Args {
    /// Which join: `network` (DestinationIP vs IP indicators) or `dns` (Name vs domains).
    #[arg(value_name = "QUERY", value_parser = parse_query)]
    query: Query,
    /// The index file (opened read-only; reloaded when replaced), or indicator feeds.
    #[arg(long, required = true, value_name = "INDEX")]
    index: Vec<PathBuf>,
    /// Input format instead of detection: ndjson, csv, zeek.
    #[arg(long, value_name = "FORMAT", value_parser = parse_log_format)]
    input_format: Option<LogFormat>,
    /// Pass every record, annotating the matching ones (enrichment).
    #[arg(long, conflicts_with = "invert")]
    annotate_all: bool,
    /// Pass the records that do not match, unchanged.
    #[arg(long)]
    invert: bool,
    /// Malformed records: skip (drop, counted), pass (unchanged, counted) or fail (exit 2).
    #[arg(long, default_value = "skip", value_parser = ["skip", "pass", "fail"])]
    on_error: String,
    /// Flush after every record (default: whenever the input pauses).
    #[arg(long)]
    line_buffered: bool,
    /// `normalized` or `kql` (see `iocmatch hunt --help`).
    #[arg(long, default_value = "normalized", value_parser = parse_semantics)]
    semantics: Semantics,
    /// Normalized DNS: match parent domains too.
    #[arg(long)]
    subdomains: bool,
    /// `now` or `at-event`.
    #[arg(long, default_value = "now", value_parser = parse_expiry)]
    expiry: Expiry,
    /// The time `now()` stands for (default: the current time, re-read per batch).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    now: Option<iocmatch::time::Timestamp>,
    /// Event fields to match (network `SourceIP,DestinationIP`; dns `Name,IPAddresses`).
    #[arg(long = "match", value_name = "FIELDS", value_delimiter = ',')]
    match_fields: Vec<String>,
    /// Read a field from another column or key: `DestinationIP=dst_ip`. Repeatable.
    #[arg(long, value_name = "FIELD=NAME")]
    column: Vec<String>,
    /// Worker threads for matching (default: all cores). One more thread reads stdin.
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

/// The identity of the index file, to notice a replacement (rename) or rewrite.
fn file_id(p: &std::path::Path) -> Option<(u64, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()?))
}

/// Loads the index, its lookup sections copied into huge pages: a filter runs for long.
fn load(paths: &[PathBuf]) -> Result<Index<IndexBytes>> {
    let mut index = super::join_args::load_index(paths, &IngestOptions::default())?.0;
    super::join_args::load_hot(&mut index);
    Ok(index)
}

pub fn run(a: Args) -> Result<Outcome> {
    let mut opts = HuntOptions::new(a.query);
    opts.semantics = a.semantics;
    opts.subdomains = a.subdomains;
    opts.expiry = a.expiry;
    opts.input_format = a.input_format;
    if let Some(n) = a.now {
        opts.now = n;
    }
    super::join_args::apply_fields(&mut opts, &a.match_fields, &a.column)?;
    let mode = if a.annotate_all {
        Mode::AnnotateAll
    } else if a.invert {
        Mode::Invert
    } else {
        Mode::Matches
    };
    let on_error = match a.on_error.as_str() {
        "pass" => OnError::Pass,
        "fail" => OnError::Fail,
        _ => OnError::Skip,
    };
    let fixed_now = a.now.is_some();

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .context("cannot start worker threads")?;
    let mut index = load(&a.index)?;
    let watch = (a.index.len() == 1).then(|| a.index[0].clone());
    let mut seen = watch.as_deref().and_then(file_id);

    let hup = Arc::new(AtomicBool::new(false));
    let term = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGHUP, &hup),
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGINT, &term),
    ] {
        signal_hook::flag::register(sig, Arc::clone(flag))
            .context("cannot install signal handlers")?;
    }

    // A reader thread turns stdin into large blocks (see `blocks`), so the main loop can
    // notice signals and index replacements while the input is idle.
    let blocks = super::blocks::spawn();

    let mut filter = Filter::new(opts.clone(), mode, on_error, "<stdin>");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // The unfinished record at the end of the last block, put in front of the next one.
    let mut carry: Vec<u8> = Vec::new();
    let mut obuf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut last_check = Instant::now();
    let result = (|| -> Result<()> {
        loop {
            if term.load(Ordering::Relaxed) {
                break;
            }
            let reload_due = hup.swap(false, Ordering::Relaxed)
                || (last_check.elapsed() > Duration::from_millis(500)
                    && watch.as_deref().and_then(file_id) != seen);
            if reload_due {
                last_check = Instant::now();
                if let Some(w) = &watch {
                    match load(std::slice::from_ref(w)) {
                        Ok(new) => {
                            if !a.quiet {
                                eprintln!(
                                    "iocmatch: index {} reloaded: {} -> {} indicators",
                                    w.display(),
                                    index.len(),
                                    new.len()
                                );
                            }
                            index = new;
                            seen = file_id(w);
                        }
                        Err(e) => {
                            // Keep serving with the old index; say why.
                            eprintln!(
                                "iocmatch: index reload failed, keeping the previous one: {}",
                                super::message(&e)
                            );
                            seen = file_id(w);
                        }
                    }
                }
            } else if last_check.elapsed() > Duration::from_millis(500) {
                last_check = Instant::now();
            }
            let block = match blocks.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(b) => Some(b.context("reading stdin")?),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => None,
            };
            let eof = block.is_none();
            // A block handed over before it was full means the input paused: flush after it.
            let paused = block.as_ref().is_some_and(|b| !b.full);
            let block = match block {
                Some(mut b) => {
                    if b.prepend(&carry) {
                        carry.clear();
                        Some(b)
                    } else {
                        // A record longer than the headroom: the rare slow path.
                        carry.extend_from_slice(b.data());
                        let _ = blocks.pool.send(b.buf);
                        None
                    }
                }
                None => None,
            };
            let data = block.as_ref().map_or(carry.as_slice(), |b| b.data());
            if !fixed_now {
                filter.set_now(iocmatch::time::Timestamp::now());
            }
            let pushed = pool.install(|| filter.push(&index, data, eof, &mut obuf));
            // Whatever was produced goes out, also before an --on-error fail stop.
            out.write_all(&obuf)?;
            obuf.clear();
            let used = match pushed {
                Ok(n) => n,
                Err(e) => {
                    out.flush()?;
                    return Err(e.into());
                }
            };
            if let Some(b) = block {
                carry.extend_from_slice(&b.data()[used..]);
                let _ = blocks.pool.send(b.buf);
            } else {
                carry.drain(..used);
            }
            // The input paused (nothing more queued) or every record must go out now.
            if a.line_buffered || paused || eof {
                out.flush()?;
            }
            if eof {
                break;
            }
        }
        out.flush()?;
        Ok(())
    })();
    let stats = filter.stats().clone();
    match result {
        Ok(()) => {}
        Err(e) if super::output::is_broken_pipe(&e) => return Ok(Outcome::Matched),
        Err(e) => {
            if !a.quiet {
                eprint!("{}", summary(&stats));
            }
            return Err(e);
        }
    }
    if !a.quiet {
        eprint!("{}", summary(&stats));
    }
    Ok(Outcome::Matched)
}

fn summary(s: &FilterStats) -> String {
    let mut out = format!(
        "iocmatch filter: {} records read, {} matched, {} written",
        s.records, s.matched, s.written
    );
    let bad: u64 = s.malformed.values().sum();
    if bad > 0 {
        let reasons: Vec<String> = s
            .malformed
            .iter()
            .map(|(w, n)| format!("{n} {w}"))
            .collect();
        out.push_str(&format!(", {bad} malformed ({})", reasons.join(", ")));
    }
    out.push('\n');
    out
}
