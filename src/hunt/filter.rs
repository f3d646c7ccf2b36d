//! The pipeline filter: records in, matching records out unchanged, annotated with the
//! indicators they matched (NDJSON: a `ti` array; CSV: appended `ti_*` columns; Zeek TSV:
//! appended fields). The same join and semantics as [`super::hunt`], applied record by record
//! in input order, with constant memory: the caller feeds bytes as they arrive and gets output
//! bytes back.

use super::matcher::{scan_batched, Item, Matcher, Tally};
use super::{csv_cell, HuntOptions, Match};
use crate::error::{Error, Result};
use crate::index::{Field, Index};
use crate::logs::{self, input, LogFormat, Malformed, Prepared};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Which records pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Matching records, annotated.
    Matches,
    /// Every record; matching ones annotated.
    AnnotateAll,
    /// Non-matching records, unchanged.
    Invert,
}

/// What happens to a malformed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Drop it (counted).
    Skip,
    /// Pass it through unchanged (counted).
    Pass,
    /// Stop with an error naming its line.
    Fail,
}

/// Counts so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Records read.
    pub records: u64,
    /// Records that matched at least one live indicator.
    pub matched: u64,
    /// Records written.
    pub written: u64,
    /// Malformed records by reason.
    pub malformed: BTreeMap<Malformed, u64>,
}

/// A streaming filter over one input stream.
pub struct Filter {
    opts: HuntOptions,
    mode: Mode,
    on_error: OnError,
    prepared: Option<(LogFormat, Prepared)>,
    next_line: u64,
    odd: bool,
    /// Inside a record already known to be longer than [`logs::MAX_RECORD`]: its bytes are
    /// dropped (or passed) as they arrive, up to its end, so that memory stays bounded.
    long: bool,
    stats: FilterStats,
    name: String,
}

/// Bytes above which a batch is scanned in parallel chunks.
const PARALLEL_MIN: usize = 1 << 20;

impl Filter {
    /// A filter for a stream called `name` (for messages).
    pub fn new(opts: HuntOptions, mode: Mode, on_error: OnError, name: &str) -> Filter {
        Filter {
            opts,
            mode,
            on_error,
            prepared: None,
            next_line: 1,
            odd: false,
            long: false,
            stats: FilterStats::default(),
            name: name.to_string(),
        }
    }

    /// Moves `now()` (a long-running stage without a fixed `--now` follows the clock).
    pub fn set_now(&mut self, now: crate::time::Timestamp) {
        self.opts.now = now;
    }

    /// The counts so far.
    pub fn stats(&self) -> &FilterStats {
        &self.stats
    }

    /// Processes the complete records at the start of `data` (all of it when `eof`), appending
    /// output to `out`; returns how many bytes were consumed (the caller keeps the rest and
    /// calls again with more). The first call that sees the whole header writes it.
    ///
    /// # Errors
    /// [`Error::Log`] for an unreadable header or, with [`OnError::Fail`], a malformed record;
    /// [`Error::Corrupt`] for a corrupt index.
    pub fn push<S: AsRef<[u8]> + Sync>(
        &mut self,
        index: &Index<S>,
        data: &[u8],
        eof: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let mut consumed = 0;
        if self.prepared.is_none() {
            let Some(n) = self.header(data, eof, out)? else {
                return Ok(0);
            };
            consumed = n;
        }
        let Some(quoted) = (self.prepared.as_ref()).map(|(_, p)| logs::quoted_newlines(&p.reader))
        else {
            return Ok(consumed);
        };
        if self.long {
            let n = self.continue_long(&data[consumed..], quoted, out);
            consumed += n;
            if self.long {
                return Ok(consumed);
            }
        }
        let rest = &data[consumed..];
        let end = if eof {
            rest.len()
        } else {
            input::last_boundary(rest, quoted, self.odd)
        };
        if end == 0 {
            if rest.len() > logs::MAX_RECORD {
                // No record ends within the limit: the first one is too long. Deal with it
                // now rather than hold it whole.
                self.start_long(rest, quoted, out)?;
                return Ok(consumed + rest.len());
            }
            return Ok(consumed);
        }
        let Some((format, p)) = &self.prepared else {
            return Ok(consumed);
        };
        let body = &rest[..end];
        let m = Matcher {
            index,
            opts: &self.opts,
        };
        // Line numbers matter only for an --on-error fail message; otherwise each chunk's line
        // count comes from scanning it, and no extra pass over the batch counts them.
        let exact_lines = self.on_error == OnError::Fail;
        let chunks = if body.len() < PARALLEL_MIN {
            vec![(0, body.len(), 0)]
        } else if exact_lines {
            input::split(body, quoted, PARALLEL_MIN / 2)
        } else {
            input::split_bounds(body, quoted, PARALLEL_MIN / 2)
                .into_iter()
                .map(|(a, b)| (a, b, 0))
                .collect()
        };
        let first = self.next_line;
        let mut lines = 0u64;
        let outs: Vec<std::result::Result<ChunkOut, (Vec<u8>, Error)>> = chunks
            .par_iter()
            .map(|&(a, b, l)| {
                chunk(
                    &m,
                    p,
                    *format,
                    self.mode,
                    self.on_error,
                    &body[a..b],
                    first + l,
                    index,
                )
            })
            .collect();
        for o in outs {
            let (bytes, tally, matched, written, chunk_lines) = match o {
                Ok(v) => v,
                Err((partial, e)) => {
                    // The records before the failing one still go out.
                    out.extend_from_slice(&partial);
                    return Err(match e {
                        Error::Log { message, .. } => Error::Log {
                            file: self.name.clone(),
                            message,
                        },
                        e => e,
                    });
                }
            };
            out.extend_from_slice(&bytes);
            lines += chunk_lines;
            // Every record is either matched-or-not (tally.records) or malformed (skipped).
            self.stats.records += tally.records + tally.skipped.len() as u64;
            self.stats.matched += matched;
            self.stats.written += written;
            for (_, why) in tally.skipped {
                *self.stats.malformed.entry(why).or_insert(0) += 1;
            }
        }
        self.next_line += lines;
        if quoted {
            // `last_boundary` cuts only where the quote parity is even; only the end of the
            // input may leave it odd. (Counting the body's quotes again cost a serial pass
            // over every block.)
            self.odd = eof && self.odd ^ input::parity(body);
        }
        Ok(consumed + end)
    }

    /// The start of a record longer than [`logs::MAX_RECORD`] (all of `rest`, which holds no
    /// record boundary): counted as malformed, and dropped or passed as `--on-error` says.
    fn start_long(&mut self, rest: &[u8], quoted: bool, out: &mut Vec<u8>) -> Result<()> {
        let why = Malformed::TooLong;
        if self.on_error == OnError::Fail {
            return Err(Error::Log {
                file: self.name.clone(),
                message: format!("line {}: {why} (--on-error fail)", self.next_line),
            });
        }
        self.stats.records += 1;
        *self.stats.malformed.entry(why).or_insert(0) += 1;
        self.long = true;
        self.continue_long(rest, quoted, out);
        if self.on_error == OnError::Pass {
            self.stats.written += 1;
        }
        Ok(())
    }

    /// Consumes the bytes of the overlong record in progress up to its end (or all of `data`
    /// if it does not end there); returns how many.
    fn continue_long(&mut self, data: &[u8], quoted: bool, out: &mut Vec<u8>) -> usize {
        let tail = input::RecordTail::find(data, quoted, &mut self.odd);
        let piece = &data[..tail.len];
        self.next_line += tail.newlines;
        if self.on_error == OnError::Pass {
            if tail.ended {
                out.extend_from_slice(trim_end(piece));
                out.push(b'\n');
            } else {
                out.extend_from_slice(piece);
            }
        }
        self.long = !tail.ended;
        tail.len
    }

    /// Reads the header once it is complete; returns the bytes it took.
    fn header(&mut self, data: &[u8], eof: bool, out: &mut Vec<u8>) -> Result<Option<usize>> {
        if data.is_empty() {
            return Ok(None);
        }
        let format = self
            .opts
            .input_format
            .unwrap_or_else(|| LogFormat::detect(data));
        // The header must be whole: CSV one line, Zeek every leading `#` line plus one record
        // line (or the end), NDJSON a first line to sample (unless that line is longer than a
        // record may be: it is then skipped as too long, as the hunt skips it).
        let complete = match format {
            LogFormat::Csv => eof || memchr::memchr(b'\n', data).is_some(),
            LogFormat::Ndjson => {
                eof || data.len() > logs::MAX_RECORD || memchr::memchr(b'\n', data).is_some()
            }
            LogFormat::ZeekTsv => {
                eof || data
                    .split_inclusive(|&b| b == b'\n')
                    .any(|l| !l.starts_with(b"#") && l.ends_with(b"\n"))
            }
        };
        if !complete {
            if data.len() > logs::MAX_RECORD {
                return Err(Error::Log {
                    file: self.name.clone(),
                    message: format!(
                        "not a readable {format} stream: no header line within the first 1 MiB"
                    ),
                });
            }
            return Ok(None);
        }
        let p = logs::prepare(format, data, &self.opts.candidates()).map_err(|m| Error::Log {
            file: self.name.clone(),
            message: format!("not a readable {format} stream: {m}"),
        })?;
        for &l in &self.opts.match_fields {
            if p.schema.names[l as usize].is_none() {
                let f = self.opts.query.field_name(l);
                return Err(Error::Log {
                    file: self.name.clone(),
                    message: format!(
                        "no {f} field (found: {}); name it with --column {f}=NAME",
                        p.columns.join(", ")
                    ),
                });
            }
        }
        let head = &data[..p.header_len.min(data.len())];
        let annotate = self.mode != Mode::Invert;
        match format {
            LogFormat::Csv if annotate => {
                let line = head.strip_suffix(b"\n").unwrap_or(head);
                let (line, crlf) = match line.strip_suffix(b"\r") {
                    Some(l) => (l, true),
                    None => (line, false),
                };
                out.extend_from_slice(line);
                for c in TI_COLUMNS {
                    out.push(b',');
                    out.extend_from_slice(c.as_bytes());
                }
                out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            LogFormat::ZeekTsv if annotate => {
                for l in head.split_inclusive(|&b| b == b'\n') {
                    let body = l.strip_suffix(b"\n").unwrap_or(l);
                    out.extend_from_slice(body);
                    if body.starts_with(b"#fields") || body.starts_with(b"#types") {
                        for c in TI_COLUMNS {
                            out.push(b'\t');
                            out.extend_from_slice(if body.starts_with(b"#fields") {
                                c.as_bytes()
                            } else {
                                b"string"
                            });
                        }
                    }
                    out.push(b'\n');
                }
            }
            _ => out.extend_from_slice(head),
        }
        self.next_line = p.header_lines + 1;
        let n = p.header_len.min(data.len());
        self.prepared = Some((format, p));
        Ok(Some(n))
    }
}

/// One chunk's output bytes, counts, matched records and written records.
/// Output bytes, counts, records matched, records written, line ends scanned.
type ChunkOut = (Vec<u8>, Tally, u64, u64, u64);

/// The appended CSV / Zeek columns.
pub const TI_COLUMNS: [&str; 9] = [
    "ti_count",
    "ti_value",
    "ti_kind",
    "ti_confidence",
    "ti_threat_type",
    "ti_description",
    "ti_id",
    "ti_expiration",
    "ti_field",
];

/// Output and counts of one chunk, shared by the scan's two callbacks.
struct ChunkState {
    out: Vec<u8>,
    tally: Tally,
    matched: u64,
    written: u64,
    err: Option<Error>,
}

impl ChunkState {
    /// A malformed record: dropped, passed unchanged, or the end, as `on_error` says.
    fn malformed(&mut self, on_error: OnError, line: u64, raw: &[u8], why: Malformed) {
        self.tally.skipped.push((line, why));
        match on_error {
            OnError::Skip => {}
            OnError::Pass => {
                self.out.extend_from_slice(trim_end(raw));
                self.out.push(b'\n');
                self.written += 1;
            }
            OnError::Fail => {
                if self.err.is_none() {
                    self.err = Some(Error::Log {
                        file: String::new(),
                        message: format!("line {line}: {why} (--on-error fail)"),
                    });
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn chunk<S: AsRef<[u8]>>(
    m: &Matcher<'_, S>,
    p: &Prepared,
    format: LogFormat,
    mode: Mode,
    on_error: OnError,
    b: &[u8],
    first_line: u64,
    index: &Index<S>,
) -> std::result::Result<ChunkOut, (Vec<u8>, Error)> {
    let st = std::cell::RefCell::new(ChunkState {
        out: Vec::with_capacity(if mode == Mode::Matches {
            1024
        } else {
            b.len() + b.len() / 8
        }),
        tally: Tally::default(),
        matched: 0,
        written: 0,
        err: None,
    });
    let mut matches: Vec<Match> = Vec::new();
    let mut cands = Vec::new();
    let mut on_record =
        |line: u64, span: std::ops::Range<usize>, fields: &logs::Fields<'_>, no_match: bool| {
            let mut s = st.borrow_mut();
            let s = &mut *s;
            if s.err.is_some() {
                return;
            }
            matches.clear();
            let before = s.tally.skipped.len();
            if let Err(e) = m.record(
                0,
                line,
                fields,
                no_match,
                &mut cands,
                &mut matches,
                &mut s.tally,
            ) {
                s.err = Some(e);
                return;
            }
            let raw = b.get(span).unwrap_or(&[]);
            if s.tally.skipped.len() > before {
                // Normalized mode rejected the key or time: malformed for the filter too.
                if let Some((l, why)) = s.tally.skipped.pop() {
                    s.tally.records -= 1;
                    s.malformed(on_error, l, raw, why);
                }
                return;
            }
            let rec = trim_end(raw);
            let hit = !matches.is_empty();
            s.matched += u64::from(hit);
            let pass = match mode {
                Mode::Matches => hit,
                Mode::AnnotateAll => true,
                Mode::Invert => !hit,
            };
            if !pass {
                return;
            }
            s.written += 1;
            if mode == Mode::Invert {
                s.out.extend_from_slice(rec);
                s.out.push(b'\n');
                return;
            }
            if let Err(e) = annotate(&mut s.out, rec, format, &matches, index, m.opts.query) {
                s.err = Some(e);
            }
        };
    // Not lean: every record's output is written in input order.
    let scanned = scan_batched(m, &p.reader, b, first_line, None, &mut |item| match item {
        Item::Record(line, span, fields, no_match) => {
            on_record(*line, span.clone(), fields, *no_match)
        }
        Item::Bad(line, span, why) => {
            st.borrow_mut()
                .malformed(on_error, *line, b.get(span.clone()).unwrap_or(&[]), *why)
        }
    });
    let s = st.into_inner();
    let lines = match scanned {
        Ok((lines, _)) => lines,
        Err(e) => return Err((s.out, s.err.unwrap_or(e))),
    };
    if let Some(e) = s.err {
        // The output of the records before the failure still goes out.
        return Err((s.out, e));
    }
    Ok((s.out, s.tally, s.matched, s.written, lines))
}

fn trim_end(r: &[u8]) -> &[u8] {
    let r = r.strip_suffix(b"\n").unwrap_or(r);
    r.strip_suffix(b"\r").unwrap_or(r)
}

fn annotate<S: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    rec: &[u8],
    format: LogFormat,
    ms: &[Match],
    index: &Index<S>,
    q: super::Query,
) -> Result<()> {
    let mut recs = Vec::with_capacity(ms.len());
    for mt in ms {
        recs.push((index.record(mt.record)?, q.field_name(mt.matched)));
    }
    match format {
        LogFormat::Ndjson => {
            let close = rec.iter().rposition(|&c| c == b'}').unwrap_or(rec.len());
            let open = rec.iter().position(|&c| c == b'{').unwrap_or(0);
            let empty = rec
                .get(open + 1..close)
                .is_none_or(|inner| inner.trim_ascii().is_empty());
            out.extend_from_slice(&rec[..close]);
            if !empty {
                out.push(b',');
            }
            out.extend_from_slice(b"\"ti\":[");
            for (i, (r, field)) in recs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                ti_object(out, r, field);
            }
            out.push(b']');
            out.extend_from_slice(rec.get(close..).unwrap_or(b"}"));
        }
        LogFormat::Csv | LogFormat::ZeekTsv => {
            let (sep, join) = if format == LogFormat::Csv {
                (b',', "|")
            } else {
                (b'\t', ",")
            };
            out.extend_from_slice(rec);
            out.push(sep);
            out.extend_from_slice(ms.len().to_string().as_bytes());
            // Column by column, each holding one value per match.
            let mut cell = String::new();
            for col in 0..TI_COLUMNS.len() - 1 {
                cell.clear();
                for (i, (r, field)) in recs.iter().enumerate() {
                    if i > 0 {
                        cell.push_str(join);
                    }
                    ti_value(&mut cell, r, field, col);
                }
                out.push(sep);
                if format == LogFormat::Csv {
                    csv_cell(out, &cell);
                } else if cell.is_empty() {
                    out.push(b'-');
                } else {
                    let v = cell.replace(['\t', '\n'], " ");
                    out.extend_from_slice(v.as_bytes());
                }
            }
        }
    }
    out.push(b'\n');
    Ok(())
}

/// Column `col` of the `ti_*` columns after `ti_count` (see [`TI_COLUMNS`]) for one matched indicator, appended to `cell`.
fn ti_value(cell: &mut String, r: &crate::index::Record<'_>, field: &str, col: usize) {
    match col {
        0 => cell.push_str(r.value()),
        1 => cell.push_str(r.kind().name()),
        2 => {
            if let Some(c) = r.confidence() {
                cell.push_str(&super::format_real(c));
            }
        }
        3 => cell.push_str(r.field(Field::ThreatType)),
        4 => cell.push_str(r.field(Field::Description)),
        5 => cell.push_str(r.field(Field::Id)),
        6 => {
            if let Some(t) = r.expiration() {
                use std::fmt::Write;
                // Writing to a String cannot fail.
                let _ = write!(cell, "{t}");
            }
        }
        _ => cell.push_str(field),
    }
}

/// One element of an NDJSON record's `ti` array, keys in alphabetical order, written
/// directly: building a `serde_json` map per match cost as much as matching the record.
fn ti_object(out: &mut Vec<u8>, r: &crate::index::Record<'_>, field: &str) {
    put(out, b'{', "confidence", &r.confidence());
    put(out, b',', "description", r.field(Field::Description));
    put(
        out,
        b',',
        "expiration",
        &r.expiration().map(|t| t.to_string()),
    );
    put(out, b',', "field", field);
    put(out, b',', "id", r.field(Field::Id));
    put(out, b',', "kind", r.kind().name());
    put(out, b',', "threat_type", r.field(Field::ThreatType));
    put(out, b',', "value", r.value());
    out.push(b'}');
}

/// `sep"key":value`, the value written by serde_json (strings escaped, a non-finite number
/// as `null`; writing into a Vec cannot fail).
fn put<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, sep: u8, key: &str, v: &T) {
    out.push(sep);
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hunt::Query;
    use crate::time::Timestamp;

    /// Feeds `input` in pieces of `piece` bytes as the CLI does (the unconsumed tail carried in
    /// front of the next piece), then the end; returns the output.
    fn feed(index: &Index<Vec<u8>>, input: &[u8], piece: usize, on_error: OnError) -> String {
        let mut opts = HuntOptions::new(Query::Network);
        opts.now = Timestamp::MIN;
        let mut f = Filter::new(opts, Mode::Matches, on_error, "test");
        let (mut carry, mut out) = (Vec::new(), Vec::new());
        for p in input.chunks(piece) {
            carry.extend_from_slice(p);
            let n = f.push(index, &carry, false, &mut out).unwrap();
            carry.drain(..n);
        }
        let n = f.push(index, &carry, true, &mut out).unwrap();
        assert_eq!(n, carry.len());
        String::from_utf8(out).unwrap()
    }

    /// CSV with quoted newlines, doubled quotes and a malformed row, fed in pieces of every
    /// size from one byte up: the quote parity carried between pushes puts every cut at a real
    /// record boundary, so the output is the hand-expected one whatever the pieces.
    #[test]
    fn csv_quote_parity_is_carried_between_pushes() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("iocs.txt");
        std::fs::write(&list, "10.0.0.1\n").unwrap();
        let (inds, _) =
            crate::ingest::load_files(&[&list], &crate::ingest::IngestOptions::default()).unwrap();
        let index = Index::from_bytes(crate::index::build(&inds, Timestamp::MIN).unwrap()).unwrap();
        let rows = [
            "TimeGenerated,SourceIP,DestinationIP,Note",
            "2024-01-01T00:00:00Z,1.1.1.1,10.0.0.1,\"a\n10.0.0.1,\"\"b\"\"\n\"",
            "2024-01-01T00:00:01Z,1.1.1.1,10.0.0.2,\"\"\"\n2024-01-01T00:00:09Z,1.1.1.1,10.0.0.1,x\"",
            "2024-01-01T00:00:02Z,1.1.1.1,bad,x",
            "2024-01-01T00:00:03Z,1.1.1.1,10.0.0.1,\"\"",
        ];
        let input = rows.join("\n") + "\n";
        let tail = ",1,10.0.0.1,ipv4,,,,,,DestinationIP\n";
        let header = format!("{},{}\n", rows[0], TI_COLUMNS.join(","));
        let skip = format!("{header}{}{tail}{}{tail}", rows[1], rows[4]);
        let pass = format!("{header}{}{tail}{}\n{}{tail}", rows[1], rows[3], rows[4]);
        for piece in (1..=40).chain([97, input.len()]) {
            let got = feed(&index, input.as_bytes(), piece, OnError::Skip);
            assert_eq!(got, skip, "pieces of {piece}");
            let got = feed(&index, input.as_bytes(), piece, OnError::Pass);
            assert_eq!(got, pass, "pieces of {piece}");
        }
    }
}
