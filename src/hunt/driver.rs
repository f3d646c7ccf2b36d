//! The parallel driver: files in order, each cut into chunks of whole records that rayon
//! workers scan against one shared `&Index`; chunk results are merged in input order, then all
//! matches are sorted once.

use super::matcher::{scan_batched, Item, Matcher, Tally};
use super::{Expiry, FileReport, HuntOptions, HuntReport, Match, FIRST_SKIPPED};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::logs::input::{self, Opened, Source};
use crate::logs::{self, LogFormat, Prepared};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering as AtOrd};

/// Bytes processed so far, for a progress display on another thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of input scanned.
    pub bytes: AtomicU64,
    /// Records scanned.
    pub records: AtomicU64,
}

/// The output order: `TimeGenerated` descending with nulls last; ties in input order (file,
/// line), then indicator record order, then matched field.
fn order(a: &Match, b: &Match) -> Ordering {
    match (a.time, b.time) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then(a.file.cmp(&b.file))
    .then(a.line.cmp(&b.line))
    .then(a.record.cmp(&b.record))
    .then((a.matched as u8).cmp(&(b.matched as u8)))
}

/// Runs a hunt over `sources` in order.
///
/// # Errors
/// [`Error::Io`] for an unreadable input, [`Error::Log`] for a file without the key field (or
/// the first malformed record under `strict`), [`Error::Corrupt`] for a corrupt index.
pub fn hunt<S: AsRef<[u8]> + Sync>(
    index: &Index<S>,
    sources: &[Source],
    opts: &HuntOptions,
    progress: &Progress,
) -> Result<(Vec<Match>, HuntReport)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| Error::Log {
            file: String::new(),
            message: format!("cannot start worker threads: {e}"),
        })?;
    pool.install(|| {
        let mut report = HuntReport::default();
        let mut matches = Vec::new();
        for (i, src) in sources.iter().enumerate() {
            let file = u32::try_from(i).unwrap_or(u32::MAX);
            let fr = run_source(index, src, file, opts, progress, &mut matches)?;
            report.files.push(fr);
        }
        report.pairs_expired = report.files.iter().map(|f| f.pairs_expired).sum();
        matches.par_sort_unstable_by(order);
        report.indicators_expired = expired_indicators(index, opts)?;
        Ok((matches, report))
    })
}

fn expired_indicators<S: AsRef<[u8]>>(index: &Index<S>, opts: &HuntOptions) -> Result<u64> {
    if opts.expiry != Expiry::Now {
        return Ok(0);
    }
    let mut n = 0;
    for id in 0..index.len() as u32 {
        n += u64::from(!super::matcher::live(opts, &index.fixed(id)?, None));
    }
    Ok(n)
}

fn candidates(opts: &HuntOptions) -> [Vec<String>; logs::LOGICAL] {
    let mut c = opts.query.default_candidates();
    for (i, o) in opts.columns.iter().enumerate() {
        if let Some(name) = o {
            c[i] = vec![name.clone()];
        }
    }
    c
}

fn prepare(name: &str, head: &[u8], opts: &HuntOptions) -> Result<(LogFormat, Prepared)> {
    let format = opts.input_format.unwrap_or_else(|| LogFormat::detect(head));
    let err = |message: String| Error::Log {
        file: name.to_string(),
        message,
    };
    let p = logs::prepare(format, head, &candidates(opts))
        .map_err(|m| err(format!("not a readable {format} log: {m}")))?;
    for &l in &opts.match_fields {
        if p.schema.names[l as usize].is_none() {
            let f = opts.query.field_name(l);
            return Err(err(format!(
                "no {f} {} (found: {}); name it with --column {f}=NAME",
                if format == LogFormat::Ndjson {
                    "key"
                } else {
                    "column"
                },
                p.columns
                    .iter()
                    .take(30)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok((format, p))
}

struct ChunkOut {
    matches: Vec<Match>,
    tally: Tally,
    error: Option<Error>,
}

fn scan_chunk<S: AsRef<[u8]>>(
    m: &Matcher<'_, S>,
    p: &Prepared,
    file: u32,
    chunk: &[u8],
    first_line: u64,
) -> ChunkOut {
    let mut out = ChunkOut {
        matches: Vec::new(),
        tally: Tally::default(),
        error: None,
    };
    let mut cands = Vec::new();
    let mut skipped = Vec::new();
    scan_batched(m, &p.reader, chunk, first_line, &mut |item| match item {
        Item::Record(line, _, fields, no_match) => {
            if out.error.is_none() {
                if let Err(e) = m.record(
                    file,
                    line,
                    &fields,
                    no_match,
                    &mut cands,
                    &mut out.matches,
                    &mut out.tally,
                ) {
                    out.error = Some(e);
                }
            }
        }
        Item::Bad(line, _, why) => skipped.push((line, why)),
    });
    // Reader rejections and matcher rejections, in line order.
    out.tally.skipped.extend(skipped);
    out.tally.skipped.sort_unstable_by_key(|s| s.0);
    out
}

fn absorb(
    fr: &mut FileReport,
    out: ChunkOut,
    matches: &mut Vec<Match>,
    strict: bool,
) -> Result<()> {
    if let Some(e) = out.error {
        return Err(e);
    }
    let t = out.tally;
    fr.records += t.records + t.skipped.iter().filter(|s| is_read_error(s.1)).count() as u64;
    fr.null_times += t.null_times;
    fr.matches += out.matches.len() as u64;
    fr.pairs_expired += t.pairs_expired;
    for (line, why) in t.skipped {
        if strict {
            return Err(Error::Log {
                file: fr.name.clone(),
                message: format!("line {line}: {why} (--strict)"),
            });
        }
        *fr.skipped.entry(why).or_insert(0) += 1;
        if fr.first_skipped.len() < FIRST_SKIPPED {
            fr.first_skipped.push((line, why));
        }
    }
    matches.extend(out.matches);
    Ok(())
}

/// Records the reader rejected never reached the matcher's count.
fn is_read_error(m: logs::Malformed) -> bool {
    !matches!(m, logs::Malformed::BadKey | logs::Malformed::BadTime)
}

fn run_source<S: AsRef<[u8]> + Sync>(
    index: &Index<S>,
    src: &Source,
    file: u32,
    opts: &HuntOptions,
    progress: &Progress,
    matches: &mut Vec<Match>,
) -> Result<FileReport> {
    let name = src.name();
    let mut fr = FileReport {
        name: name.clone(),
        ..FileReport::default()
    };
    let m = Matcher { index, opts };
    match input::open(src)? {
        Opened::Whole(whole) => {
            let data = whole.as_ref();
            if data.is_empty() {
                return Ok(fr);
            }
            let head = &data[..data.len().min(1 << 20)];
            let (format, p) = prepare(&name, head, opts)?;
            fr.format = Some(format);
            fr.schema = p.schema.clone();
            fr.bytes = data.len() as u64;
            let body = &data[p.header_len.min(data.len())..];
            let chunks = input::split(body, logs::quoted_newlines(&p.reader), opts.chunk_size);
            let outs: Vec<ChunkOut> = chunks
                .par_iter()
                .map(|&(a, b, first)| {
                    let out = scan_chunk(&m, &p, file, &body[a..b], p.header_lines + 1 + first);
                    progress.bytes.fetch_add((b - a) as u64, AtOrd::Relaxed);
                    progress
                        .records
                        .fetch_add(out.tally.records, AtOrd::Relaxed);
                    out
                })
                .collect();
            for out in outs {
                absorb(&mut fr, out, matches, opts.strict)?;
            }
        }
        Opened::Stream(mut r) => {
            stream(&m, &name, &mut *r, file, opts, progress, &mut fr, matches)?
        }
    }
    Ok(fr)
}

#[allow(clippy::too_many_arguments)]
fn stream<S: AsRef<[u8]> + Sync>(
    m: &Matcher<'_, S>,
    name: &str,
    r: &mut (dyn Read + Send),
    file: u32,
    opts: &HuntOptions,
    progress: &Progress,
    fr: &mut FileReport,
    matches: &mut Vec<Match>,
) -> Result<()> {
    let io = |source| Error::Io {
        path: name.into(),
        source,
    };
    // The head, for detection and the header.
    let mut head = Vec::new();
    r.take(1 << 20).read_to_end(&mut head).map_err(io)?;
    if head.is_empty() {
        return Ok(());
    }
    let (format, p) = prepare(name, &head, opts)?;
    fr.format = Some(format);
    fr.schema = p.schema.clone();
    let quoted = logs::quoted_newlines(&p.reader);
    let mut carry = head.split_off(p.header_len.min(head.len()));
    let mut odd = false;
    let mut line = p.header_lines + 1;
    let block = opts.chunk_size.max(1 << 16);
    let batch = rayon::current_num_threads().max(1) * 2;
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(batch);
        s.spawn(move || loop {
            match input::next_block(r, &mut carry, &mut odd, quoted, block) {
                Ok(Some(b)) => {
                    if tx.send(Ok(b)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        });
        let mut pending: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut done = false;
        while !done {
            // Block for one, then take whatever else is ready, up to a batch.
            let mut take =
                |b: std::io::Result<Vec<u8>>, pending: &mut Vec<(Vec<u8>, u64)>| -> Result<()> {
                    let b = b.map_err(io)?;
                    let l = memchr::memchr_iter(b'\n', &b).count() as u64;
                    pending.push((b, line));
                    line += l;
                    Ok(())
                };
            match rx.recv() {
                Ok(b) => take(b, &mut pending)?,
                Err(_) => done = true,
            }
            while pending.len() < batch {
                match rx.try_recv() {
                    Ok(b) => take(b, &mut pending)?,
                    Err(_) => break,
                }
            }
            let outs: Vec<ChunkOut> = pending
                .par_iter()
                .map(|(b, first)| {
                    let out = scan_chunk(m, &p, file, b, *first);
                    progress.bytes.fetch_add(b.len() as u64, AtOrd::Relaxed);
                    progress
                        .records
                        .fetch_add(out.tally.records, AtOrd::Relaxed);
                    out
                })
                .collect();
            for (b, _) in pending.drain(..) {
                fr.bytes += b.len() as u64;
            }
            for out in outs {
                absorb(fr, out, matches, opts.strict)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}
