//! The parallel driver: files in order, each cut into chunks of whole records that rayon
//! workers scan against one shared `&Index`; chunk results are merged in input order, then all
//! matches are sorted once.

use super::matcher::{scan_batched, Item, LeanCounts, Matcher, Tally};
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
    // One time per record, no other field (a hunt's fixed cost: 1M records).
    let mut n = 0;
    for id in 0..index.len() as u32 {
        n += u64::from(!super::matcher::live_now(opts, index.expiration(id)?));
    }
    Ok(n)
}

fn prepare(name: &str, head: &[u8], opts: &HuntOptions) -> Result<(LogFormat, Prepared)> {
    let format = opts.input_format.unwrap_or_else(|| LogFormat::detect(head));
    let err = |message: String| Error::Log {
        file: name.to_string(),
        message,
    };
    let p = logs::prepare(format, head, &opts.candidates())
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
    /// Line ends in the chunk.
    lines: u64,
    /// An odd number of quote characters in the chunk (CSV).
    odd_quotes: bool,
}

impl ChunkOut {
    /// Moves every line number on by `by`: chunks of a mapped file are scanned as if each
    /// began at line `first_line`, and learn their real first line once the chunks before
    /// them have reported their line counts.
    fn shift_lines(&mut self, by: u64) {
        for m in &mut self.matches {
            m.line += by;
        }
        for s in &mut self.tally.skipped {
            s.0 += by;
        }
    }
}

/// Scans one chunk; `lean` lets [`scan_batched`] rule most records out before building
/// their fields (the hunt always does; the tests compare it with the full path).
fn scan_chunk<S: AsRef<[u8]>>(
    m: &Matcher<'_, S>,
    p: &Prepared,
    file: u32,
    chunk: &[u8],
    first_line: u64,
    lean: bool,
) -> ChunkOut {
    let mut out = ChunkOut {
        matches: Vec::new(),
        tally: Tally::default(),
        error: None,
        lines: 0,
        odd_quotes: false,
    };
    let mut cands = Vec::new();
    let mut skipped = Vec::new();
    let mut counts = LeanCounts::default();
    let lean = lean.then_some(&mut counts);
    let scanned = scan_batched(
        m,
        &p.reader,
        chunk,
        first_line,
        lean,
        &mut |item| match item {
            Item::Record(line, _, fields, no_match) => {
                if out.error.is_none() {
                    if let Err(e) = m.record(
                        file,
                        *line,
                        fields,
                        *no_match,
                        &mut cands,
                        &mut out.matches,
                        &mut out.tally,
                    ) {
                        out.error = Some(e);
                    }
                }
            }
            Item::Bad(line, _, why) => skipped.push((*line, *why)),
        },
    );
    match scanned {
        Ok((lines, odd)) => (out.lines, out.odd_quotes) = (lines, odd),
        Err(e) => {
            out.error.get_or_insert(e);
        }
    }
    // The records the lean pre-filter ruled out (it reads their times too).
    out.tally.records += counts.records;
    out.tally.null_times += counts.null_times;
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
        Opened::Plain(f) => plain_file(&m, &name, &f, file, progress, &mut fr, matches)?,
        Opened::Stream(mut r) => {
            stream(&m, &name, &mut *r, file, opts, progress, &mut fr, matches)?
        }
    }
    Ok(fr)
}

/// Hunts a plain file, mapped one window at a time. Each window ends at a record boundary (the
/// next starts there, outside any quotes), is cut into chunks scanned in parallel, and is
/// unmapped before the next is mapped: memory stays bounded by the window, whatever the file's
/// size. A record longer than a window widens it.
fn plain_file<S: AsRef<[u8]> + Sync>(
    m: &Matcher<'_, S>,
    name: &str,
    f: &input::PlainFile,
    file: u32,
    progress: &Progress,
    fr: &mut FileReport,
    matches: &mut Vec<Match>,
) -> Result<()> {
    if f.is_empty() {
        return Ok(());
    }
    let opts = m.opts;
    // Sixteen chunks per worker (64 MiB with the default 2 MiB chunks on two cores), at most
    // 1 GiB: with the index, what a hunt keeps in memory. The workers wait for each other at
    // a window's end; small chunks keep that wait short (8 MiB chunks, four per worker, were
    // 3-10 % slower on two threads).
    let workers = rayon::current_num_threads().max(1) as u64;
    let window = (opts.chunk_size as u64)
        .saturating_mul(workers * 16)
        .clamp(1, 1 << 30);
    fr.bytes = f.len();
    let mut prepared: Option<Prepared> = None;
    let mut off = 0u64;
    let mut lines_before = 0u64;
    let mut span = window;
    // The next window, mapped (pages loaded) while the workers scan the current one.
    let mut ahead: Option<(std::ops::Range<u64>, Result<memmap2::Mmap>)> = None;
    // Whether CSV windows are still cut before their quote parities are known (see below).
    let mut guess_cuts = true;
    while off < f.len() {
        // The first window holds the whole head that detection and the header read (1 MiB).
        let span_here = if off == 0 { span.max(1 << 20) } else { span };
        let end = off.saturating_add(span_here).min(f.len());
        let map = match ahead.take() {
            Some((r, map)) if r == (off..end) => map?,
            _ => f.window(off..end)?,
        };
        let data: &[u8] = &map;
        let p = match &prepared {
            Some(p) => p,
            None => {
                let (format, p) = prepare(name, &data[..data.len().min(1 << 20)], opts)?;
                fr.format = Some(format);
                fr.schema = p.schema.clone();
                lines_before = p.header_lines;
                prepared.insert(p)
            }
        };
        // The header precedes the first window's records.
        let start = if off == 0 {
            p.header_len.min(data.len())
        } else {
            0
        };
        let quoted = logs::quoted_newlines(&p.reader);
        let whole = end == f.len();
        let body = &data[start..];
        // A CSV field may hold newlines, so a cut must lie where the quote parity is even.
        // Finding the parities first took a pass over the data (4 % of a CSV hunt). Instead
        // the window is cut at newlines as if no field held one, and the chunks' quote
        // parities, counted while they are scanned, confirm the cuts afterwards; only a cut
        // that fell inside a quoted field makes the window be cut exactly and scanned again,
        // and the rest of the file be cut exactly from the start (a file whose fields hold
        // newlines would otherwise have most of its windows scanned twice).
        let scanned = loop {
            let guess = quoted && guess_cuts;
            let (take, chunks) =
                input::split_window(body, quoted && !guess, opts.chunk_size, whole);
            if take == 0 && !whole {
                break None;
            }
            let body = &body[..take];
            let next = off + (start + take) as u64;
            let next = next..next.saturating_add(window).min(f.len());
            let (outs, next_map) = rayon::join(
                || {
                    chunks
                        .par_iter()
                        .map(|&(a, b)| scan_chunk(m, p, file, &body[a..b], 1, true))
                        .collect::<Vec<ChunkOut>>()
                },
                || (!next.is_empty()).then(|| f.window(next.clone())),
            );
            ahead = next_map.map(|m| (next, m));
            if guess && !cuts_outside_quotes(&outs, whole) {
                guess_cuts = false;
                continue;
            }
            break Some((take, outs));
        };
        let Some((take, outs)) = scanned else {
            // No record ends inside this window: widen it.
            span = span.saturating_mul(2);
            continue;
        };
        span = window;
        progress.bytes.fetch_add(take as u64, AtOrd::Relaxed);
        for mut out in outs {
            progress
                .records
                .fetch_add(out.tally.records, AtOrd::Relaxed);
            out.shift_lines(lines_before);
            lines_before += out.lines;
            absorb(fr, out, matches, opts.strict)?;
        }
        off += (start + take) as u64;
    }
    Ok(())
}

/// Whether chunks cut at newlines, each scanned as if it began outside quotes, were cut
/// only at record boundaries: the quote parity before each chunk is even, and after the
/// last one too unless it ends the input (where an unterminated quote is the last record's
/// problem, reported by its scan).
fn cuts_outside_quotes(outs: &[ChunkOut], whole: bool) -> bool {
    let mut odd = false;
    for o in outs {
        if odd {
            return false;
        }
        odd ^= o.odd_quotes;
    }
    whole || !odd
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
    let carry = head.split_off(p.header_len.min(head.len()));
    let mut line = p.header_lines + 1;
    let block = opts.chunk_size.max(1 << 16);
    let batch = rayon::current_num_threads().max(1) * 2;
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<(Vec<u8>, u64)>>(batch);
        let mut blocks = input::StreamBlocks::new(carry, quoted, block);
        s.spawn(move || loop {
            match blocks.next(r) {
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
            let mut take = |b: std::io::Result<(Vec<u8>, u64)>,
                            pending: &mut Vec<(Vec<u8>, u64)>|
             -> Result<()> {
                let (b, skipped) = b.map_err(io)?;
                line += skipped;
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
                    let out = scan_chunk(m, &p, file, b, *first, true);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hunt::Query;
    use crate::logs::Malformed;
    use crate::time::Timestamp;

    /// An index of the plain-list `indicators`, built in memory.
    fn index_of(dir: &std::path::Path, indicators: &str) -> Index<Vec<u8>> {
        let list = dir.join("iocs.txt");
        std::fs::write(&list, indicators).unwrap();
        let (inds, _) =
            crate::ingest::load_files(&[&list], &crate::ingest::IngestOptions::default()).unwrap();
        Index::from_bytes(crate::index::build(&inds, Timestamp::MIN).unwrap()).unwrap()
    }

    /// A network hunt of `log` (normalized, everything live) with the given chunk size.
    fn run(
        index: &Index<Vec<u8>>,
        log: &std::path::Path,
        chunk_size: usize,
    ) -> (Vec<Match>, HuntReport) {
        let mut opts = HuntOptions::new(Query::Network);
        opts.now = Timestamp::MIN;
        opts.chunk_size = chunk_size;
        opts.threads = 2;
        hunt(
            index,
            &[Source::File(log.to_path_buf())],
            &opts,
            &Progress::default(),
        )
        .unwrap()
    }

    /// Line numbers of matches and skipped records are the same whether a file is one chunk or
    /// one chunk per record (each chunk learns its first line from the counts before it), and
    /// equal the hand-counted ones, with a quoted newline and a blank line in between.
    #[test]
    fn line_numbers_do_not_depend_on_chunking() {
        let dir = tempfile::tempdir().unwrap();
        let index = index_of(dir.path(), "10.0.0.1\n");
        let log = dir.path().join("net.csv");
        std::fs::write(
            &log,
            "TimeGenerated,SourceIP,DestinationIP,Note\n\
             2024-01-01T00:00:00Z,1.1.1.1,10.0.0.1,x\n\
             2024-01-01T00:00:01Z,1.1.1.1,10.0.0.2,\"multi\nline\"\n\
             2024-01-01T00:00:02Z,1.1.1.1,bad,x\n\
             \n\
             2024-01-01T00:00:03Z,1.1.1.1,10.0.0.1\n\
             2024-01-01T00:00:04Z,1.1.1.1,10.0.0.1,\"a\"\"b\"\n",
        )
        .unwrap();
        let (whole, whole_report) = run(&index, &log, 8 << 20);
        let lines: Vec<u64> = whole.iter().map(|m| m.line).collect();
        assert_eq!(lines, [8, 2]); // time descending
        let f = &whole_report.files[0];
        assert_eq!(
            f.first_skipped,
            [(5, Malformed::BadKey), (7, Malformed::FieldCount)]
        );
        // Small chunks make small windows too (4 chunks per worker): the windows widen for
        // records longer than they are, and end at record boundaries outside quotes.
        for size in [1, 7, 30, 64, 200] {
            let (m, r) = run(&index, &log, size);
            assert_eq!(m, whole, "chunk size {size}");
            assert_eq!(
                r.files[0].first_skipped, f.first_skipped,
                "chunk size {size}"
            );
            assert_eq!(r.files[0].records, f.records, "chunk size {size}");
        }
    }

    /// A file is cut at newlines before its quote parities are known, and the chunks' parities
    /// confirm the cuts afterwards (or the window is cut again exactly). On 300 records, every
    /// third with a quoted field holding newlines (and doubled quotes), every 29th with broken
    /// quoting (two quotes inside an unquoted field: the record alone is skipped), then a last
    /// record with an unterminated quote: the matches, their line
    /// numbers and the skipped records are the hand-expected ones at every chunk size, so
    /// with cuts inside quoted fields (sizes 1 to 64) and without (the whole file).
    #[test]
    fn cuts_inside_quoted_fields_are_detected_and_redone() {
        let dir = tempfile::tempdir().unwrap();
        let index = index_of(dir.path(), "10.0.0.1\n");
        let log = dir.path().join("net.csv");
        let mut text = String::from("TimeGenerated,SourceIP,DestinationIP,Note\n");
        let (mut want, mut want_skipped) = (Vec::new(), Vec::new());
        let mut line = 2u64;
        for i in 0..300u64 {
            let ip = if i % 2 == 0 { "10.0.0.1" } else { "10.0.0.2" };
            let t = format!("2024-01-01T00:{:02}:{:02}Z", i / 60, i % 60);
            let (note, lines) = if i % 29 == 5 {
                ("b\"ro\"ken".to_string(), 1)
            } else if i % 3 == 0 {
                (format!("\"a\n\"\"{i}\"\",\nb\n\""), 4)
            } else {
                ("x".to_string(), 1)
            };
            text.push_str(&format!("{t},1.1.1.1,{ip},{note}\n"));
            if i % 29 == 5 {
                want_skipped.push((line, Malformed::Quoting));
            } else if i % 2 == 0 {
                want.push(line);
            }
            line += lines;
        }
        text.push_str("2024-01-01T01:00:00Z,1.1.1.1,10.0.0.1,\"never closed\n");
        want_skipped.push((line, Malformed::Quoting));
        std::fs::write(&log, &text).unwrap();
        // Time descending: the later records first.
        want.reverse();
        for size in (1..=64).chain([8 << 20]) {
            let (m, r) = run(&index, &log, size);
            let lines: Vec<u64> = m.iter().map(|m| m.line).collect();
            assert_eq!(lines, want, "chunk size {size}");
            let f = &r.files[0];
            assert_eq!(
                f.first_skipped,
                want_skipped[..want_skipped.len().min(crate::hunt::FIRST_SKIPPED)],
                "chunk size {size}"
            );
            assert_eq!(
                f.skipped.values().sum::<u64>(),
                want_skipped.len() as u64,
                "chunk size {size}"
            );
            assert_eq!(f.records, 301, "chunk size {size}");
        }
    }

    /// The check itself: the parity before each chunk must be even, and after the last one
    /// unless it ends the input.
    #[test]
    fn cut_check_reads_the_parity_before_each_chunk() {
        let outs = |odd: &[bool]| -> Vec<ChunkOut> {
            odd.iter()
                .map(|&o| ChunkOut {
                    matches: Vec::new(),
                    tally: Tally::default(),
                    error: None,
                    lines: 0,
                    odd_quotes: o,
                })
                .collect()
        };
        assert!(cuts_outside_quotes(&outs(&[false, false]), false));
        // An odd chunk puts the next cut inside quotes, even if a later one closes them.
        assert!(!cuts_outside_quotes(&outs(&[true, true, false]), false));
        assert!(!cuts_outside_quotes(&outs(&[true, false]), false));
        assert!(!cuts_outside_quotes(&outs(&[false, true]), false));
        assert!(cuts_outside_quotes(&outs(&[false, true]), true));
        assert!(!cuts_outside_quotes(&outs(&[true, false, true]), true));
        assert!(cuts_outside_quotes(&outs(&[]), false));
    }

    /// A kql hunt over 200 records (several batches) against `index`, whose record 1 is
    /// reachable only through the raw table with key `raw` and record 0 normally with key
    /// `normal`: every seventh record carries `raw`, every eleventh `normal`, the rest
    /// `other(i)`. Each must join exactly its record, with the index's lookup sections read
    /// from the file's bytes and then from their copy in huge pages.
    fn kql_batch_reaches_raw_rows(
        index: &mut Index<Vec<u8>>,
        query: Query,
        header: &str,
        (raw, normal): (&str, &str),
        other: impl Fn(u32) -> String,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.csv");
        let mut text = format!("{header}\n");
        let mut want = Vec::new();
        for i in 0..200u32 {
            let key = if i % 7 == 0 {
                want.push((u64::from(i) + 2, 1));
                raw.to_string()
            } else if i % 11 == 0 {
                want.push((u64::from(i) + 2, 0));
                normal.to_string()
            } else {
                other(i)
            };
            text.push_str(&format!("2024-01-01T00:00:00Z,10.0.0.1,{key}\n"));
        }
        std::fs::write(&log, text).unwrap();
        let mut opts = HuntOptions::new(query);
        opts.semantics = crate::hunt::Semantics::Kql;
        opts.now = Timestamp::from_unix_secs(1_700_000_000).unwrap();
        // Also with a KQL filter that lets every key through, so that every key takes the
        // batch's second, parsed probe.
        let mut all_pass = saturated_kql_filter(index);
        for (index, saturated) in [(index, false), (&mut all_pass, true)] {
            for hot in [false, true] {
                if hot {
                    assert!(index.load_hot_sections().unwrap() > 0);
                }
                let src = [Source::File(log.clone())];
                let (matches, _) = hunt(index, &src, &opts, &Progress::default()).unwrap();
                let mut got: Vec<(u64, u32)> = matches.iter().map(|m| (m.line, m.record)).collect();
                got.sort_unstable();
                assert_eq!(
                    got, want,
                    "hot sections: {hot}, saturated filter: {saturated}"
                );
            }
        }
    }

    /// `index` with a KQL filter that lets every key through, so that every key of a kql
    /// hunt takes the batch's second, parsed probe.
    fn saturated_kql_filter(index: &Index<Vec<u8>>) -> Index<Vec<u8>> {
        let mut bytes = index.as_bytes().to_vec();
        let range = index
            .layout()
            .range(crate::index::format::Section::KqlFilter);
        bytes[range].fill(0xff);
        crate::index::format::put_checksum(&mut bytes);
        let index = Index::from_bytes(bytes).unwrap();
        assert!(!index.kql_absent(crate::index::KqlColumn::NetworkIp, "192.0.2.1"));
        index
    }

    /// An index of `rows`, each expiring long after the tests' clock.
    fn live_index(mut rows: Vec<crate::indicator::Indicator>) -> Index<Vec<u8>> {
        let future = Timestamp::from_unix_secs(2_000_000_000).unwrap();
        for r in &mut rows {
            r.expiration = Some(future);
        }
        Index::from_bytes(crate::index::build(&rows, Timestamp::MIN).unwrap()).unwrap()
    }

    /// KQL's DNS join compares raw strings, so a row reachable only through the raw
    /// `DomainName` table (a normalizable name, but not among the row's keys) must match even
    /// though the string table's filter has never seen its normalized form: the batched
    /// pre-probe may rule a name out only when no such row exists.
    #[test]
    fn kql_dns_reaches_raw_only_domain_rows_through_the_batch() {
        use crate::indicator::{Indicator, Key, Kind, Origin};
        let odd = Indicator {
            kql_domain_name: "Odd.Example".into(),
            ..Indicator::default()
        };
        let mut plain = Indicator::for_key(
            Key::Str(Kind::Domain, "evil.example".into()),
            "evil.example",
            Origin::Plain,
        );
        plain.kql_domain_name = "evil.example".into();
        let mut index = live_index(vec![plain, odd]);
        assert_ne!(
            index.layout().flags & crate::index::format::FLAG_RAW_DOMAIN_NORMALIZABLE,
            0
        );
        kql_batch_reaches_raw_rows(
            &mut index,
            Query::Dns,
            "TimeGenerated,ClientIP,Name",
            ("Odd.Example", "evil.example"),
            |i| format!("host{i}.example"),
        );
    }

    /// The same for the network query: a row whose raw `NetworkIP` is an address it has no
    /// IP key for is reached through the raw table, though the IPv4 bitmap rules the address
    /// out.
    #[test]
    fn kql_network_reaches_raw_only_ip_rows_through_the_batch() {
        use crate::indicator::{Indicator, Key, Origin};
        let odd = Indicator {
            kql_network_ip: "9.9.9.9".into(),
            ..Indicator::default()
        };
        let net = crate::indicator::parse_ip_net("10.1.2.3").unwrap();
        let mut plain = Indicator::for_key(Key::Ip(net), "10.1.2.3", Origin::Plain);
        plain.kql_network_ip = "10.1.2.3".into();
        let mut index = live_index(vec![plain, odd]);
        assert!(index.ipv4_absent("9.9.9.9".parse().unwrap(), false));
        kql_batch_reaches_raw_rows(
            &mut index,
            Query::Network,
            "TimeGenerated,SourceIP,DestinationIP",
            ("9.9.9.9", "10.1.2.3"),
            |i| format!("172.16.{}.{}", i / 256, i % 256),
        );
    }

    /// The lean pre-filter of a kql hunt changes nothing a chunk reports: on random network
    /// and DNS logs, CSV and NDJSON, whose keys hit, miss, are empty, quoted or escaped (the
    /// full path), whose times are valid, empty or unparseable, and with malformed records in
    /// between, the matches (in the hunt's order), records, null times, expired pairs,
    /// skipped records, line count and quote parity equal the full path's. Also with a KQL
    /// filter that passes every key, so that every key takes the pre-filter's second probe.
    #[test]
    fn lean_prefilter_changes_no_chunk_result() {
        use crate::indicator::{Indicator, Key, Kind, Origin};
        let at = |s: i64| Timestamp::from_unix_secs(s).unwrap();
        let mut rows = Vec::new();
        for (i, v) in ["10.0.0.1", "10.0.0.2", "2001:db8::1", "10.0.0.1"]
            .iter()
            .enumerate()
        {
            let net = crate::indicator::parse_ip_net(v).unwrap();
            let mut ind = Indicator::for_key(Key::Ip(net), v, Origin::Plain);
            ind.expiration = Some(at(if i == 1 { 100 } else { 2_000_000_000 }));
            rows.push(ind);
        }
        for (i, v) in ["evil.com", "bad.example"].iter().enumerate() {
            let mut ind =
                Indicator::for_key(Key::Str(Kind::Domain, v.to_string()), v, Origin::Plain);
            ind.expiration = Some(at(if i == 1 { 100 } else { 2_000_000_000 }));
            rows.push(ind);
        }
        let cidr = crate::indicator::parse_ip_net("10.9.0.0/16").unwrap();
        let mut ind = Indicator::for_key(Key::Ip(cidr), "10.9.0.0/16", Origin::Plain);
        ind.expiration = Some(at(2_000_000_000));
        rows.push(ind);
        let built = Index::from_bytes(crate::index::build(&rows, Timestamp::MIN).unwrap()).unwrap();
        let saturated = saturated_kql_filter(&built);
        for index in [built, saturated] {
            lean_prefilter_on(&index);
        }
    }

    fn lean_prefilter_on(index: &Index<Vec<u8>>) {
        let at = |s: i64| Timestamp::from_unix_secs(s).unwrap();
        let times = [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.1234567Z",
            "2024-01-01T00:00:01.5Z",
            "",
            "garbage",
            "1/2/2024 3:04:05 PM",
        ];
        let keys = [
            "10.0.0.1",
            "10.0.0.2",
            "10.0.0.3",
            "2001:db8::1",
            "10.9.0.0/16",
            "10.9.1.1",
            "",
            "evil.com",
            "EVIL.com",
            "bad.example",
            "x.evil.com",
            "none.example",
        ];
        let mut rng = crate::gen::Rng::new(0x1ea0_0004);
        // Matches, null times, expired pairs and skipped records seen, per query.
        let mut seen = [[0u64; 4]; 2];
        for (query, key_name) in [(Query::Network, "DestinationIP"), (Query::Dns, "Name")] {
            let mut opts = HuntOptions::new(query);
            opts.semantics = crate::hunt::Semantics::Kql;
            opts.now = at(1_700_000_000);
            let m = Matcher { index, opts: &opts };
            for json in [false, true] {
                for _ in 0..200 {
                    let mut text = if json {
                        String::new()
                    } else {
                        format!("TimeGenerated,SourceIP,{key_name},Note\n")
                    };
                    for _ in 0..rng.below(80) {
                        let t = times[rng.below(times.len() as u64) as usize];
                        let k = keys[rng.below(keys.len() as u64) as usize];
                        let odd = rng.below(8);
                        text.push_str(&match (json, odd) {
                            (false, 0) => format!("{t},1.1.1.1,\"{k}\",x\n"),
                            (false, 1) => format!("{t},1.1.1.1,{k}\n"),
                            (false, 2) => format!("{t},1.1.1.1,{k},\"a\"\"b\nc\"\r\n"),
                            (false, _) => format!("{t},1.1.1.1,{k},x\n"),
                            (true, 0) => format!(
                                "{{\"TimeGenerated\":\"{t}\",\"{key_name}\":\"\\u00{:02x}{}\"}}\n",
                                k.bytes().next().unwrap_or(b'a'),
                                k.get(1..).unwrap_or("")
                            ),
                            (true, 1) => "{\"TimeGenerated\":\n".to_string(),
                            (true, 2) => format!("{{\"{key_name}\":\"{k}\"}}\n"),
                            (true, _) => format!(
                                "{{\"TimeGenerated\":\"{t}\",\"SourceIP\":\"1.1.1.1\",\"{key_name}\":\"{k}\"}}\n"
                            ),
                        });
                    }
                    if json && text.is_empty() {
                        continue;
                    }
                    let head = if json {
                        format!(
                            "{{\"TimeGenerated\":\"t\",\"SourceIP\":\"s\",\"{key_name}\":\"k\"}}\n"
                        )
                    } else {
                        text.clone()
                    };
                    let p = crate::logs::prepare(
                        if json {
                            LogFormat::Ndjson
                        } else {
                            LogFormat::Csv
                        },
                        head.as_bytes(),
                        &opts.candidates(),
                    )
                    .unwrap();
                    let body = if json {
                        text.as_bytes()
                    } else {
                        &text.as_bytes()[p.header_len..]
                    };
                    let full = scan_chunk(&m, &p, 0, body, 2, false);
                    let lean = scan_chunk(&m, &p, 0, body, 2, true);
                    let sorted = |o: &ChunkOut| {
                        let mut v = o.matches.clone();
                        v.sort_by(order);
                        v
                    };
                    assert!(full.error.is_none() && lean.error.is_none(), "{text:?}");
                    assert_eq!(sorted(&lean), sorted(&full), "{text:?}");
                    let counts = |o: &ChunkOut| {
                        let t = &o.tally;
                        (
                            t.records,
                            t.null_times,
                            t.pairs_expired,
                            t.skipped.clone(),
                            o.lines,
                            o.odd_quotes,
                        )
                    };
                    assert_eq!(counts(&lean), counts(&full), "{text:?}");
                    let t = &lean.tally;
                    let s = &mut seen[query as usize];
                    s[0] += lean.matches.len() as u64;
                    s[1] += t.null_times;
                    s[2] += t.pairs_expired;
                    s[3] += t.skipped.len() as u64;
                }
            }
        }
        for s in seen {
            assert!(s.iter().all(|&n| n > 10), "{seen:?}");
        }
    }

    /// The report counts the indicators not live at `now`: expired ones, and in kql mode those
    /// without an expiration (KQL's `ExpirationDateTime > now()` is false for null); with
    /// `--expiry at-event` none (liveness depends on each event).
    #[test]
    fn indicators_not_live_are_counted_by_the_expiry_rule() {
        use crate::indicator::{Indicator, Key, Origin};
        let at = |s: i64| Timestamp::from_unix_secs(s).unwrap();
        // Expirations: two past, one exactly now (not live: `>`), three future, two null.
        let exps = [
            Some(100),
            Some(999),
            Some(1000),
            Some(1001),
            Some(5000),
            Some(9000),
            None,
            None,
        ];
        let inds: Vec<Indicator> = exps
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let v = format!("10.0.0.{i}");
                let net = crate::indicator::parse_ip_net(&v).unwrap();
                let mut ind = Indicator::for_key(Key::Ip(net), &v, Origin::Plain);
                ind.expiration = e.map(at);
                ind
            })
            .collect();
        let index = Index::from_bytes(crate::index::build(&inds, Timestamp::MIN).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("net.csv");
        std::fs::write(
            &log,
            "TimeGenerated,SourceIP,DestinationIP
",
        )
        .unwrap();
        for (semantics, expiry, want) in [
            (crate::hunt::Semantics::Kql, Expiry::Now, 5),
            (crate::hunt::Semantics::Normalized, Expiry::Now, 3),
            (crate::hunt::Semantics::Kql, Expiry::AtEvent, 0),
        ] {
            let mut opts = HuntOptions::new(Query::Network);
            opts.semantics = semantics;
            opts.expiry = expiry;
            opts.now = at(1000);
            let src = [Source::File(log.clone())];
            let (_, report) = hunt(&index, &src, &opts, &Progress::default()).unwrap();
            assert_eq!(report.indicators_expired, want, "{semantics:?} {expiry:?}");
        }
    }

    /// A log bigger than the first window, hunted in windows of a few KiB (quoted newlines,
    /// malformed records and one record longer than a window among them), gives exactly the
    /// answer of one 8 MiB window.
    #[test]
    fn windows_give_the_answer_of_one_map() {
        let dir = tempfile::tempdir().unwrap();
        let index = index_of(dir.path(), "10.0.0.0/24\n10.0.0.7\n");
        let mut text = String::from("TimeGenerated,SourceIP,DestinationIP,Note\n");
        for i in 0..60_000u32 {
            let dst = format!("10.0.{}.{}", i % 3, i % 256);
            let note = match i % 97 {
                0 => "\"two\nlines\"".to_string(),
                1 => "\"a,\"\"b\"\"\"".to_string(),
                _ => "x".to_string(),
            };
            match i % 1013 {
                5 => text.push_str("2024-01-01T00:00:00Z,1.1.1.1\n"),
                6 => text.push_str(&format!("2024-01-01T00:00:00Z,1.1.1.1,bad{i},x\n")),
                7 => text.push_str(&format!(
                    "2024-01-01T00:00:00Z,1.1.1.1,{dst},\"{}\"\n",
                    "y".repeat(100_000)
                )),
                _ => text.push_str(&format!(
                    "2024-01-01T{:02}:{:02}:{:02}Z,1.1.1.1,{dst},{note}\n",
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60
                )),
            }
        }
        assert!(text.len() > 4 << 20);
        let log = dir.path().join("big.csv");
        std::fs::write(&log, &text).unwrap();
        let (whole, whole_report) = run(&index, &log, 64 << 20);
        assert!(whole.len() > 10_000);
        for size in [4096, 50_000] {
            let (m, r) = run(&index, &log, size);
            assert_eq!(m.len(), whole.len(), "chunk size {size}");
            assert!(m == whole, "chunk size {size}");
            let (a, b) = (&r.files[0], &whole_report.files[0]);
            assert_eq!(
                (a.records, a.matches, &a.skipped),
                (b.records, b.matches, &b.skipped)
            );
            assert_eq!(a.first_skipped, b.first_skipped);
        }
    }
}
