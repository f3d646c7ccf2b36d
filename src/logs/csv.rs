//! CSV log records (RFC 4180: `"` quoting, `""` escapes, quoted newlines, LF or CRLF).
//!
//! Only the needed columns are materialized; the rest of a record is walked to find its end and
//! count its fields. Unquoted fields borrow from the input; a quoted field borrows the text
//! between its quotes unless it contains `""`, which is the only case that allocates.

use super::{utf8, Fields, Malformed, Prepared, Reader, Schema, LOGICAL, MAX_RECORD};
use std::borrow::Cow;

/// Column positions of the logical fields and the header's column count.
#[derive(Clone, Debug)]
pub struct Columns {
    /// Column index per logical field.
    pub index: [Option<usize>; LOGICAL],
    /// Number of columns in the header.
    pub count: usize,
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
        reader: Reader::Csv(Columns {
            index,
            count: names.len(),
        }),
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

/// Scans a record that has no quote before its line end: returns its needed fields, the
/// position after it, its column count and whether the needed fields are UTF-8; `None` when a
/// quote appears (the general parser takes over).
#[inline]
fn plain_record<'a>(
    b: &'a [u8],
    pos: usize,
    slot_of: &[u8],
) -> Option<(Fields<'a>, usize, usize, bool)> {
    let mut fields: Fields<'a> = Default::default();
    let mut col = 0usize;
    let mut start = pos;
    let mut ok = true;
    let mut take = |col: usize, s: usize, e: usize, fields: &mut Fields<'a>| {
        if let Some(&slot) = slot_of.get(col) {
            if slot != u8::MAX {
                let v = &b[s..e];
                let v = v.strip_suffix(b"\r").unwrap_or(v);
                match std::str::from_utf8(v) {
                    Ok(v) => fields[slot as usize] = Some(Cow::Borrowed(v)),
                    Err(_) => ok = false,
                }
            }
        }
    };
    let mut i = pos;
    while i < b.len() {
        match b[i] {
            b',' => {
                take(col, start, i, &mut fields);
                col += 1;
                start = i + 1;
            }
            b'\n' => {
                take(col, start, i, &mut fields);
                return Some((fields, i + 1, col + 1, ok));
            }
            b'"' => return None,
            _ => {}
        }
        i += 1;
    }
    take(col, start, b.len(), &mut fields);
    Some((fields, b.len(), col + 1, ok))
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
    rec: &mut dyn FnMut(u64, std::ops::Range<usize>, Fields<'a>),
    bad: &mut dyn FnMut(u64, std::ops::Range<usize>, Malformed),
) {
    // Column index -> logical slot, for the needed columns.
    let max_needed = cols.index.iter().flatten().copied().max();
    let mut slot_of = vec![u8::MAX; max_needed.map_or(0, |m| m + 1)];
    for (slot, ix) in cols.index.iter().enumerate() {
        if let Some(c) = ix {
            slot_of[*c] = slot as u8;
        }
    }
    let mut pos = 0;
    let mut line = first_line;
    while pos < b.len() {
        let start = pos;
        // Blank lines hold no record.
        if b[pos] == b'\n' {
            pos += 1;
            line += 1;
            continue;
        }
        if b[pos] == b'\r' && b.get(pos + 1) == Some(&b'\n') {
            pos += 2;
            line += 1;
            continue;
        }
        // Fast path: a record without quotes is one line; one pass finds its commas and end.
        if let Some((fields, end, ncols, utf8_ok)) = plain_record(b, pos, &slot_of) {
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
            line += 1;
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
        let lines_in = memchr::memchr_iter(b'\n', text).count() as u64;
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(names: &[&str]) -> [Vec<String>; LOGICAL] {
        let mut c: [Vec<String>; LOGICAL] = Default::default();
        for (i, n) in names.iter().enumerate() {
            c[i] = vec![n.to_string()];
        }
        c
    }

    type Recs = Vec<(u64, Vec<Option<String>>)>;

    fn run(text: &str) -> (Recs, Vec<(u64, Malformed)>) {
        let p = prepare(
            text.as_bytes(),
            &cands(&["TimeGenerated", "SourceIP", "DestinationIP", "IPAddresses"]),
        )
        .unwrap();
        let Reader::Csv(c) = &p.reader else { panic!() };
        let mut recs = Vec::new();
        let mut bads = Vec::new();
        scan(
            c,
            &text.as_bytes()[p.header_len..],
            2,
            &mut |l, _, f| {
                recs.push((
                    l,
                    f.iter()
                        .map(|x| x.as_ref().map(|s| s.to_string()))
                        .collect(),
                ))
            },
            &mut |l, _, w| bads.push((l, w)),
        );
        (recs, bads)
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
    }

    #[test]
    fn invalid_utf8_in_a_needed_field() {
        let mut t = b"TimeGenerated,SourceIP,DestinationIP\n".to_vec();
        t.extend_from_slice(b"a,\xff,c\nd,e,f\n");
        let p = prepare(&t, &cands(&["TimeGenerated", "SourceIP", "DestinationIP"])).unwrap();
        let Reader::Csv(c) = &p.reader else { panic!() };
        let mut n = 0;
        let mut bads = Vec::new();
        scan(
            c,
            &t[p.header_len..],
            2,
            &mut |_, _, _| n += 1,
            &mut |l, _, w| bads.push((l, w)),
        );
        assert_eq!((n, bads), (1, vec![(2, Malformed::Utf8)]));
    }
}
