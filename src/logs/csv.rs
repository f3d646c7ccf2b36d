//! CSV log records (RFC 4180: `"` quoting, `""` escapes, quoted newlines, LF or CRLF).
//!
//! Only the needed columns are materialized; the rest of a record is walked to find its end and
//! count its fields. Unquoted fields borrow from the input; a quoted field borrows the text
//! between its quotes unless it contains `""`, which is the only case that allocates.

use super::{utf8, Fields, Logical, Malformed, Prepared, Reader, Schema, LOGICAL, MAX_RECORD};
use std::borrow::Cow;

/// Column positions of the logical fields and the header's column count.
#[derive(Clone, Debug)]
pub struct Columns {
    /// Column index per logical field.
    pub index: [Option<usize>; LOGICAL],
    /// Number of columns in the header.
    pub count: usize,
    /// Logical slot by column index, up to the last needed column (`u8::MAX`: not needed);
    /// derived from `index` once, not for every chunk or record read.
    slots: Vec<u8>,
}

impl Columns {
    fn new(index: [Option<usize>; LOGICAL], count: usize) -> Columns {
        let max_needed = index.iter().flatten().copied().max();
        let mut slots = vec![u8::MAX; max_needed.map_or(0, |m| m + 1)];
        for (slot, ix) in index.iter().enumerate() {
            if let Some(c) = ix {
                slots[*c] = slot as u8;
            }
        }
        Columns {
            index,
            count,
            slots,
        }
    }
}

pub(super) fn prepare(
    head: &[u8],
    candidates: &[Vec<String>; LOGICAL],
) -> Result<Prepared, String> {
    let head_b = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let bom = head.len() - head_b.len();
    let end =
        memchr::memchr(b'\n', head_b).ok_or("no header line (no newline in the first block)")?;
    let line = head_b[..end].strip_suffix(b"\r").unwrap_or(&head_b[..end]);
    let line = std::str::from_utf8(line).map_err(|_| "the header line is not UTF-8")?;
    let mut names = Vec::new();
    let mut ok = true;
    split_fields(line.as_bytes(), &mut |f| match f {
        Some(f) => names.push(f.into_owned()),
        None => ok = false,
    });
    if !ok || names.is_empty() {
        return Err("the header line has broken quoting".into());
    }
    let index = super::resolve(&names, candidates);
    let mut schema = Schema::default();
    for (i, ix) in index.iter().enumerate() {
        schema.names[i] = ix.map(|j| names[j].clone());
    }
    Ok(Prepared {
        reader: Reader::Csv(Columns::new(index, names.len())),
        header_len: bom + end + 1,
        header_lines: 1,
        schema,
        columns: names,
    })
}

/// Splits one line (no newline inside) into fields; `None` marks broken quoting.
fn split_fields<'a>(line: &'a [u8], f: &mut dyn FnMut(Option<Cow<'a, str>>)) {
    let mut pos = 0;
    loop {
        match field(line, pos) {
            Some((v, next, sep)) => {
                f(Some(match std::str::from_utf8(&v) {
                    Ok(s) => Cow::Owned(s.to_string()),
                    Err(_) => Cow::Borrowed(""),
                }));
                if sep != b',' {
                    return;
                }
                pos = next;
            }
            None => {
                f(None);
                return;
            }
        }
    }
}

/// Parses the field starting at `pos`: returns its bytes, the position after its terminator,
/// and the terminator (`,`, `\n`, or 0 at the end of input). `None` on broken quoting.
#[inline]
fn field(b: &[u8], pos: usize) -> Option<(Cow<'_, [u8]>, usize, u8)> {
    if b.get(pos) == Some(&b'"') {
        let mut i = pos + 1;
        let mut escaped = false;
        loop {
            let q = memchr::memchr(b'"', b.get(i..)?)? + i;
            if b.get(q + 1) == Some(&b'"') {
                escaped = true;
                i = q + 2;
                continue;
            }
            let inner = &b[pos + 1..q];
            let val: Cow<'_, [u8]> = if escaped {
                let mut v = Vec::with_capacity(inner.len());
                let mut k = 0;
                while k < inner.len() {
                    v.push(inner[k]);
                    k += if inner[k] == b'"' { 2 } else { 1 };
                }
                Cow::Owned(v)
            } else {
                Cow::Borrowed(inner)
            };
            return match b.get(q + 1) {
                None => Some((val, q + 1, 0)),
                Some(b',') => Some((val, q + 2, b',')),
                Some(b'\n') => Some((val, q + 2, b'\n')),
                Some(b'\r') if b.get(q + 2) == Some(&b'\n') => Some((val, q + 3, b'\n')),
                Some(b'\r') if q + 2 == b.len() => Some((val, q + 2, 0)),
                Some(_) => None,
            };
        }
    }
    match memchr::memchr3(b',', b'\n', b'"', &b[pos.min(b.len())..]) {
        None => {
            let v = &b[pos.min(b.len())..];
            let v = v.strip_suffix(b"\r").unwrap_or(v);
            Some((Cow::Borrowed(v), b.len(), 0))
        }
        Some(k) => {
            let at = pos + k;
            match b[at] {
                b'"' => None,
                sep => {
                    let v = &b[pos..at];
                    let v = if sep == b'\n' {
                        v.strip_suffix(b"\r").unwrap_or(v)
                    } else {
                        v
                    };
                    Some((Cow::Borrowed(v), at + 1, sep))
                }
            }
        }
    }
}

/// The delimiters the record scan walks.
struct DelimiterSet;

impl crate::blockmask::ByteSet<3> for DelimiterSet {
    const SET: [u8; 3] = [b',', b'\n', b'"'];
}

type Delimiters<'a> = crate::blockmask::Cursor<'a, DelimiterSet, 3>;

/// Scans a record whose needed fields are unquoted (nearly every record) from `seps`,
/// positioned at its first delimiter: fills the needed fields' byte ranges and returns the
/// position after the record, its column count and the newlines inside its quoted fields.
/// `None` at a quoted needed field or broken quoting: the general parser rescans the record.
#[inline(always)]
fn unquoted_record(
    seps: &mut Delimiters<'_>,
    b: &[u8],
    pos: usize,
    slot_of: &[u8],
    ranges: &mut [Option<(usize, usize)>; LOGICAL],
) -> Option<(usize, usize, u64)> {
    let mut col = 0usize;
    let mut start = pos;
    let mut newlines = 0u64;
    loop {
        let (at, sep) = match seps.next_pos() {
            Some(k) => (k, b.get(k).copied().unwrap_or(b'\n')),
            None => (b.len(), b'\n'),
        };
        if let Some(&slot) = slot_of.get(col) {
            if let Some(r) = ranges.get_mut(usize::from(slot)) {
                *r = Some((start, at));
            }
        }
        match sep {
            b',' => {
                col += 1;
                start = at + 1;
            }
            b'\n' => return Some(((at + 1).min(b.len()), col + 1, newlines)),
            _ => {
                // A quote: it may only open an unneeded field (a DNS answer list, say), which
                // is skipped to its closing quote; its commas and newlines are data.
                if at != start || slot_of.get(col).is_some_and(|&s| s != u8::MAX) {
                    return None;
                }
                let close = loop {
                    let q = seps.next_pos()?;
                    match b.get(q) {
                        Some(b'\n') => newlines += 1,
                        Some(b'"') if b.get(q + 1) == Some(&b'"') => {
                            // An escaped quote: its second half is no delimiter either.
                            seps.next_pos();
                        }
                        Some(b'"') => break q,
                        _ => {}
                    }
                };
                match (b.get(close + 1), b.get(close + 2)) {
                    (None | Some(b',' | b'\n'), _) | (Some(b'\r'), Some(b'\n')) => {}
                    _ => return None,
                }
            }
        }
    }
}

/// Turns the needed fields' byte ranges into text: slices of `text` (the chunk's valid UTF-8
/// prefix, checked once) when they lie inside it, else [`needed_fields_checked`].
#[inline]
fn needed_fields<'a>(
    b: &'a [u8],
    text: &'a str,
    ranges: &[Option<(usize, usize)>; LOGICAL],
    end: usize,
    ncols: usize,
) -> (Fields<'a>, usize, usize, bool) {
    let mut fields: Fields<'a> = [None, None, None, None];
    for (f, r) in fields.iter_mut().zip(ranges) {
        if let Some(r) = *r {
            match prefix_text(b, text, r) {
                Some(t) => *f = Some(Cow::Borrowed(t)),
                None => return needed_fields_checked(b, ranges, end, ncols),
            }
        }
    }
    (fields, end, ncols, true)
}

/// The field at `s..e` of `b` (without a CR before its line end) as a slice of `text`, the
/// chunk's valid UTF-8 prefix; `None` past it. Delimiters are ASCII, so a field of valid
/// text starts and ends on char boundaries; `get` checks that anyway.
#[inline(always)]
fn prefix_text<'a>(b: &[u8], text: &'a str, (s, e): (usize, usize)) -> Option<&'a str> {
    text.get(s..strip_cr(b, s, e))
}

/// The end of the field `s..e` without a CR before its line end.
#[inline(always)]
fn strip_cr(b: &[u8], s: usize, e: usize) -> usize {
    if e > s && b.get(e - 1) == Some(&b'\r') {
        e - 1
    } else {
        e
    }
}

/// [`needed_fields`] for fields past the chunk's valid UTF-8 prefix: one UTF-8 check over
/// the span holding them all, else (a bad byte somewhere in that span) one check per field.
#[cold]
fn needed_fields_checked<'a>(
    b: &'a [u8],
    ranges: &[Option<(usize, usize)>; LOGICAL],
    end: usize,
    ncols: usize,
) -> (Fields<'a>, usize, usize, bool) {
    let mut fields: Fields<'a> = Default::default();
    let hi = ranges.iter().flatten().map(|r| r.1).max();
    let lo = ranges.iter().flatten().map(|r| r.0).min();
    let span = lo
        .zip(hi)
        .map(|(lo, hi)| (lo, std::str::from_utf8(&b[lo..hi])));
    match span {
        None => (fields, end, ncols, true),
        Some((lo, Ok(text))) => {
            for (f, r) in fields.iter_mut().zip(ranges) {
                if let Some((s, e)) = *r {
                    *f = text.get(s - lo..strip_cr(b, s, e) - lo).map(Cow::Borrowed);
                }
            }
            (fields, end, ncols, true)
        }
        Some((_, Err(_))) => {
            let mut ok = true;
            for (f, r) in fields.iter_mut().zip(ranges) {
                if let Some((s, e)) = *r {
                    match std::str::from_utf8(&b[s..strip_cr(b, s, e)]) {
                        Ok(v) => *f = Some(Cow::Borrowed(v)),
                        Err(_) => ok = false,
                    }
                }
            }
            (fields, end, ncols, ok)
        }
    }
}

/// Skips a broken record starting at `record_start`: to its end by quote parity (the rule the
/// chunker uses), or, when a quote is never closed, to the end of its first line, so that one
/// stray quote costs one record rather than the rest of the file.
fn skip_record(b: &[u8], record_start: usize) -> usize {
    let mut inq = false;
    for (i, &c) in b.iter().enumerate().skip(record_start) {
        match c {
            b'"' => inq = !inq,
            b'\n' if !inq => return i + 1,
            _ => {}
        }
    }
    memchr::memchr(b'\n', &b[record_start.min(b.len())..]).map_or(b.len(), |k| record_start + k + 1)
}

pub(super) fn scan<'a>(
    cols: &Columns,
    b: &'a [u8],
    first_line: u64,
    lean: &mut impl FnMut(u64, std::ops::Range<usize>, &'a str, &'a str) -> bool,
    rec: &mut impl FnMut(u64, std::ops::Range<usize>, Fields<'a>),
    bad: &mut impl FnMut(u64, std::ops::Range<usize>, Malformed),
) -> (u64, bool) {
    let max_needed = cols.slots.len().checked_sub(1);
    let slot_of = &cols.slots[..];
    // The chunk's valid UTF-8 prefix (all of it, nearly always), checked in one pass: the
    // records inside it need no check of their own.
    let text = super::valid_prefix(b);
    let mut seps = Delimiters::new(b, 0);
    let mut pos = 0;
    let mut line = first_line;
    // Quote characters in the chunk, for its parity (see `logs::scan`). A record the fast path
    // takes holds an even number (each quoted field: its two quotes and doubled ones), so
    // only the others are counted.
    let mut quotes = 0u64;
    while pos < b.len() {
        let start = pos;
        // Blank lines hold no record.
        if b[pos] == b'\n' {
            pos += 1;
            line += 1;
            seps.seek(pos);
            continue;
        }
        if b[pos] == b'\r' && b.get(pos + 1) == Some(&b'\n') {
            pos += 2;
            line += 1;
            seps.seek(pos);
            continue;
        }
        // Fast path: the needed fields unquoted, the delimiters walked from their bitmasks;
        // else the general parser (which also reports broken quoting).
        let mut ranges = [None; LOGICAL];
        if let Some((end, ncols, newlines)) =
            unquoted_record(&mut seps, b, pos, slot_of, &mut ranges)
        {
            // A well-formed record whose needed fields lie in the valid prefix (so all of
            // them are text) is offered to `lean` first, as its time and key.
            let in_text =
                || text.len() == b.len() || ranges.iter().flatten().all(|r| r.1 <= text.len());
            if ncols == cols.count && end - start <= MAX_RECORD && in_text() {
                let get = |slot: Logical| match ranges[slot as usize] {
                    Some(r) => prefix_text(b, text, r),
                    None => Some(""),
                };
                if let (Some(t), Some(k)) = (get(Logical::Time), get(Logical::Key)) {
                    if lean(line, start..end, t, k) {
                        line += 1 + newlines;
                        pos = end;
                        continue;
                    }
                }
            }
            let (fields, end, ncols, utf8_ok) = needed_fields(b, text, &ranges, end, ncols);
            let span = start..end;
            if end - start > MAX_RECORD {
                bad(line, span, Malformed::TooLong);
            } else if !utf8_ok {
                bad(line, span, Malformed::Utf8);
            } else if ncols != cols.count {
                bad(line, span, Malformed::FieldCount);
            } else {
                rec(line, span, fields);
            }
            line += 1 + newlines;
            pos = end;
            continue;
        }
        let mut fields: Fields<'a> = Default::default();
        let mut col = 0usize;
        let mut broken: Option<Malformed> = None;
        let end = loop {
            match field(b, pos) {
                None => {
                    broken = Some(Malformed::Quoting);
                    break skip_record(b, start);
                }
                Some((v, next, sep)) => {
                    if max_needed.is_some_and(|m| col <= m) {
                        for (slot, ix) in cols.index.iter().enumerate() {
                            if *ix == Some(col) {
                                match v {
                                    Cow::Borrowed(s) => match utf8(s) {
                                        Some(s) => fields[slot] = Some(Cow::Borrowed(s)),
                                        None => broken = Some(Malformed::Utf8),
                                    },
                                    Cow::Owned(ref o) => match String::from_utf8(o.clone()) {
                                        Ok(s) => fields[slot] = Some(Cow::Owned(s)),
                                        Err(_) => broken = Some(Malformed::Utf8),
                                    },
                                }
                            }
                        }
                    }
                    col += 1;
                    pos = next;
                    if sep != b',' {
                        break next;
                    }
                }
            }
        };
        let text = &b[start..end.min(b.len())];
        let mut lines_in = 0u64;
        for k in memchr::memchr2_iter(b'\n', b'"', text) {
            if text[k] == b'\n' {
                lines_in += 1;
            } else {
                quotes += 1;
            }
        }
        if text.len() > MAX_RECORD {
            broken = Some(Malformed::TooLong);
        } else if broken.is_none() && col != cols.count {
            broken = Some(Malformed::FieldCount);
        }
        match broken {
            Some(why) => bad(line, start..end.min(b.len()), why),
            None => rec(line, start..end.min(b.len()), fields),
        }
        line += lines_in;
        pos = end;
        seps.seek(pos);
    }
    (line - first_line, quotes % 2 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::testing::{cands, Recs};

    /// The four network/DNS columns, records from line 2.
    fn run(text: impl AsRef<[u8]>) -> (Recs, Vec<(u64, Malformed)>) {
        let names: [&[&str]; 4] = [
            &["TimeGenerated"],
            &["SourceIP"],
            &["DestinationIP"],
            &["IPAddresses"],
        ];
        crate::logs::testing::run(crate::logs::LogFormat::Csv, text.as_ref(), &names, 2)
    }

    /// The bitmask scanner against a byte-by-byte reference, on random quote-free
    /// lines of every length, with CRs, multi-byte UTF-8 and invalid bytes in needed and
    /// unneeded columns.
    #[test]
    fn plain_rows_match_a_naive_splitter() {
        let mut rng = crate::gen::Rng::new(0x1234_5678_9abc_def1u64);
        let mut next = move |n: u64| rng.below(n);
        let pieces: [&[u8]; 8] = [
            b"a",
            b"1.2.3.4",
            b",",
            b",",
            b"\r",
            "\u{e9}".as_bytes(),
            b"\xff",
            b"xyz0123456789",
        ];
        let header = "X,TimeGenerated,SourceIP,Y,DestinationIP,Z,W\n";
        for _ in 0..3000 {
            let mut body = Vec::new();
            for _ in 0..next(6) {
                for _ in 0..next(14) {
                    body.extend_from_slice(pieces[next(8) as usize]);
                }
                body.push(b'\n');
            }
            if next(2) == 0 {
                body.extend_from_slice(b"tail,without,newline,x,y,z,w");
            }
            // Reference: split lines, then commas; a line of 7 fields is a record.
            let mut want: Vec<(u64, Vec<Option<String>>)> = Vec::new();
            let mut want_bad = Vec::new();
            let mut lines: Vec<&[u8]> = body.split(|&c| c == b'\n').collect();
            if body.last() == Some(&b'\n') || body.is_empty() {
                lines.pop();
            }
            for (k, l) in lines.iter().enumerate() {
                let line = 2 + k as u64;
                if l.is_empty() || *l == b"\r" {
                    continue;
                }
                let cols: Vec<&[u8]> = l.split(|&c| c == b',').collect();
                let strip = |f: &[u8]| f.strip_suffix(b"\r").unwrap_or(f).to_vec();
                let needed = [cols.get(1), cols.get(2), cols.get(4)].map(|c| c.map(|c| strip(c)));
                let text: Option<Vec<String>> = needed
                    .iter()
                    .flatten()
                    .map(|v| String::from_utf8(v.clone()).ok())
                    .collect();
                match text {
                    None => want_bad.push((line, Malformed::Utf8)),
                    Some(_) if cols.len() != 7 => want_bad.push((line, Malformed::FieldCount)),
                    Some(t) => {
                        let mut f: Vec<Option<String>> = t.into_iter().map(Some).collect();
                        f.push(None);
                        want.push((line, f));
                    }
                }
            }
            let mut text = header.as_bytes().to_vec();
            text.extend_from_slice(&body);
            let (recs, bads) = run(&text);
            let shown = String::from_utf8_lossy(&body);
            assert_eq!(recs, want, "{shown:?}");
            assert_eq!(bads, want_bad, "{shown:?}");
        }
    }

    /// Quoted fields in columns that are not needed (commas, newlines and `""` inside) keep
    /// the fast path; records and line numbers come out as built.
    #[test]
    fn quoted_unneeded_columns() {
        let mut rng = crate::gen::Rng::new(0x0dd_ba11_cafe_f00du64);
        let mut next = move |n: u64| rng.below(n);
        let quoted = [
            "\"a,b\"",
            "\"\"",
            "\"x\ny\"",
            "\"say \"\"hi\"\"\"",
            "\"1.2.3.4, 5.6.7.8\"",
        ];
        for _ in 0..2000 {
            let mut text = String::from("X,TimeGenerated,SourceIP,Y,DestinationIP\n");
            let mut want = Vec::new();
            let mut line = 2u64;
            for r in 0..next(8) {
                let x = if next(2) == 0 {
                    quoted[next(5) as usize]
                } else {
                    "x"
                };
                let y = if next(2) == 0 {
                    quoted[next(5) as usize]
                } else {
                    ""
                };
                let (t, s, d) = (format!("t{r}"), format!("s{r}"), format!("d{r}"));
                let eol = if next(3) == 0 { "\r\n" } else { "\n" };
                text.push_str(&format!("{x},{t},{s},{y},{d}{eol}"));
                want.push((line, vec![Some(t), Some(s), Some(d), None]));
                line += 1 + (x.matches('\n').count() + y.matches('\n').count()) as u64;
            }
            let (recs, bads) = run(&text);
            assert_eq!(recs, want, "{text:?}");
            assert!(bads.is_empty(), "{text:?}: {bads:?}");
        }
    }

    #[test]
    fn fields_quotes_and_lines() {
        let t = "TimeGenerated,X,SourceIP,DestinationIP\n\
                 2026-01-01,\"a,b\",1.1.1.1,2.2.2.2\n\
                 2026-01-02,\"multi\nline\",\"3.3.3.3\",\"say \"\"hi\"\"\"\r\n\
                 \n\
                 2026-01-03,x,4.4.4.4\n\
                 2026-01-04,x\"y,5.5.5.5,6.6.6.6\n\
                 2026-01-05,,,\n";
        let (recs, bads) = run(t);
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs[0],
            (
                2,
                vec![
                    Some("2026-01-01".into()),
                    Some("1.1.1.1".into()),
                    Some("2.2.2.2".into()),
                    None
                ]
            )
        );
        assert_eq!(recs[1].0, 3);
        assert_eq!(recs[1].1[2].as_deref(), Some("say \"hi\""));
        assert_eq!(recs[1].1[1].as_deref(), Some("3.3.3.3"));
        // A stray quote in an unquoted field costs that record only.
        assert_eq!(
            recs[2],
            (
                8,
                vec![
                    Some("2026-01-05".into()),
                    Some("".into()),
                    Some("".into()),
                    None
                ]
            )
        );
        assert_eq!(
            bads,
            vec![(6, Malformed::FieldCount), (7, Malformed::Quoting)]
        );
    }

    #[test]
    fn unterminated_quote_and_last_line_without_newline() {
        let (recs, bads) = run("TimeGenerated,SourceIP,DestinationIP\na,b,c\nd,\"e,f\ng,h,i");
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(bads, vec![(3, Malformed::Quoting)]);
        let (recs, bads) = run("TimeGenerated,SourceIP,DestinationIP\na,b,c");
        assert_eq!((recs.len(), bads.len()), (1, 0));
        // In a column that is not needed: the scan past the open quote reaches the end, and
        // the records after the broken one's first line are still read.
        let (recs, bads) = run("TimeGenerated,SourceIP,DestinationIP,X\na,b,c,\"x\nd,e,f,g\n");
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3]);
        assert_eq!(bads, vec![(2, Malformed::Quoting)]);
    }

    #[test]
    fn invalid_utf8_in_a_needed_field() {
        let mut t = b"TimeGenerated,SourceIP,DestinationIP\n".to_vec();
        t.extend_from_slice(b"a,\xff,c\nd,e,f\n");
        let p = prepare(
            &t,
            &cands(&[&["TimeGenerated"], &["SourceIP"], &["DestinationIP"]]),
        )
        .unwrap();
        let Reader::Csv(c) = &p.reader else { panic!() };
        let mut n = 0;
        let mut bads = Vec::new();
        scan(
            c,
            &t[p.header_len..],
            2,
            &mut |_, _, _, _| false,
            &mut |_, _, _| n += 1,
            &mut |l, _, w| bads.push((l, w)),
        );
        assert_eq!((n, bads), (1, vec![(2, Malformed::Utf8)]));
    }
}
