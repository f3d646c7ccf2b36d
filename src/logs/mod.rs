//! Log readers: network-connection and DNS records as CSV, NDJSON or Zeek logs, reduced to the
//! few fields a hunt needs, without building rows or a JSON DOM.
//!
//! A [`Schema`] says where each [`Logical`] field lives in a file (a CSV column, a JSON key or
//! dotted path, a Zeek field). [`scan`] walks a chunk of complete records and hands each
//! record's fields to a callback as borrowed strings (owned only when a CSV field has escaped
//! quotes or a JSON string has escapes). Malformed records are reported with their line and
//! skipped. Chunks come from [`input`], which cuts files at record boundaries so that chunks can
//! be scanned in parallel.

mod csv;
pub mod input;
mod json;
mod zeek;

use std::borrow::Cow;
use std::fmt;

/// A log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line (Zeek JSON logs included).
    Ndjson,
    /// Zeek's tab-separated logs with `#fields` header lines.
    ZeekTsv,
}

impl LogFormat {
    /// Parses an `--input-format` name.
    pub fn from_name(s: &str) -> Option<LogFormat> {
        Some(match s {
            "csv" => LogFormat::Csv,
            "ndjson" | "json" | "jsonl" => LogFormat::Ndjson,
            "zeek" | "zeek-tsv" | "tsv" => LogFormat::ZeekTsv,
            _ => return None,
        })
    }

    /// Detects the format from a file's first bytes (after decompression).
    pub fn detect(head: &[u8]) -> LogFormat {
        let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
        let first = head
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        let rest = &head[first..];
        if rest.starts_with(b"#separator") || rest.starts_with(b"#fields") {
            LogFormat::ZeekTsv
        } else if rest.starts_with(b"{") {
            LogFormat::Ndjson
        } else {
            LogFormat::Csv
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Csv => "csv",
            LogFormat::Ndjson => "ndjson",
            LogFormat::ZeekTsv => "zeek",
        })
    }
}

/// The fields a hunt reads from a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Logical {
    /// `TimeGenerated`.
    Time = 0,
    /// `SourceIP` (network) / `ClientIP` (dns).
    Source = 1,
    /// `DestinationIP` (network) / `Name` (dns): the join key.
    Key = 2,
    /// `IPAddresses` (dns answers; network: unused).
    Extra = 3,
}

/// Number of logical fields.
pub const LOGICAL: usize = 4;

/// Where each logical field is found: a column name / JSON key or dotted path per field
/// (`None` = absent: the field reads as missing in every record).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schema {
    /// Names by [`Logical`] index.
    pub names: [Option<String>; LOGICAL],
}

/// One record's fields, by [`Logical`] index. `None` = the field is absent or unset (Zeek `-`,
/// JSON `null`, a missing key).
pub type Fields<'a> = [Option<Cow<'a, str>>; LOGICAL];

/// Why a record was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Malformed {
    /// CSV: not as many fields as the header.
    FieldCount,
    /// CSV: a quote where none may be, or an unterminated quoted field.
    Quoting,
    /// A needed field is not valid UTF-8.
    Utf8,
    /// NDJSON: not a JSON object.
    Json,
    /// A record longer than [`MAX_RECORD`].
    TooLong,
    /// Normalized mode: the key field is not an address / a domain name.
    BadKey,
    /// Normalized mode: the time field does not parse.
    BadTime,
}

impl Malformed {
    /// A short description for summaries.
    pub fn describe(self) -> &'static str {
        match self {
            Malformed::FieldCount => "wrong number of fields",
            Malformed::Quoting => "broken quoting",
            Malformed::Utf8 => "invalid UTF-8",
            Malformed::Json => "not a JSON object",
            Malformed::TooLong => "record longer than 1 MiB",
            Malformed::BadKey => "invalid key (not an address or domain)",
            Malformed::BadTime => "unparseable time",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Records longer than this are skipped as malformed.
pub const MAX_RECORD: usize = 1 << 20;

/// A prepared reader for one file: its format and where the fields are.
#[derive(Clone, Debug)]
pub enum Reader {
    /// CSV: column indices and the header's column count.
    Csv(csv::Columns),
    /// NDJSON: key paths.
    Json(json::Paths),
    /// Zeek TSV: field indices and the header's conventions.
    Zeek(zeek::Header),
}

/// What the header of a file told: the reader, the header's byte length (data starts there)
/// and the header's line count.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The reader for the data.
    pub reader: Reader,
    /// Bytes of header before the first record.
    pub header_len: usize,
    /// Lines of header before the first record.
    pub header_lines: u64,
    /// The resolved schema (which column / key each logical field is read from).
    pub schema: Schema,
    /// All column names seen (for messages).
    pub columns: Vec<String>,
}

/// Resolves the header of a file against the candidate names for each logical field.
///
/// `candidates[i]` lists acceptable names for logical field `i`, in preference order
/// (matched case-insensitively, ignoring `_`, `-`, spaces and a `[UTC]` suffix for CSV).
///
/// # Errors
/// A message when the header is unreadable.
pub fn prepare(
    format: LogFormat,
    head: &[u8],
    candidates: &[Vec<String>; LOGICAL],
) -> Result<Prepared, String> {
    match format {
        LogFormat::Csv => csv::prepare(head, candidates),
        LogFormat::Ndjson => json::prepare(head, candidates),
        LogFormat::ZeekTsv => zeek::prepare(head, candidates),
    }
}

/// Scans a chunk of complete records. `first_line` is the 1-based line number of the chunk's
/// first byte. Calls `rec(line, span, fields)` per record and `bad(line, span, why)` per
/// malformed one; `span` is the record's byte range in `chunk` (without its line end for
/// line-based formats, with it for CSV). Returns the number of line ends scanned (the line
/// count of a chunk that ends with one) and, for CSV, whether the chunk holds an odd number
/// of quote characters (`false` for the other formats): with it a caller that cut a CSV
/// file at newlines before knowing where quoted fields lie can check afterwards that no cut
/// fell inside one (the quote parity before each cut is even).
pub fn scan<'a>(
    reader: &Reader,
    chunk: &'a [u8],
    first_line: u64,
    rec: &mut impl FnMut(u64, std::ops::Range<usize>, Fields<'a>),
    bad: &mut impl FnMut(u64, std::ops::Range<usize>, Malformed),
) -> (u64, bool) {
    scan_lean(reader, chunk, first_line, &mut |_, _, _, _| false, rec, bad)
}

/// [`scan`], offering each well-formed record whose time and key are borrowed text to
/// `lean(line, span, time, key)` first (a missing field reads as `""`). When `lean` returns
/// `true` it has taken the record, and `rec` is not called for it: a caller that needs only
/// those two fields of most records saves building the others, and can read them later with
/// [`fields_at`]. Zeek logs give every record to `rec`.
pub fn scan_lean<'a>(
    reader: &Reader,
    chunk: &'a [u8],
    first_line: u64,
    lean: &mut impl FnMut(u64, std::ops::Range<usize>, &'a str, &'a str) -> bool,
    rec: &mut impl FnMut(u64, std::ops::Range<usize>, Fields<'a>),
    bad: &mut impl FnMut(u64, std::ops::Range<usize>, Malformed),
) -> (u64, bool) {
    match reader {
        Reader::Csv(c) => csv::scan(c, chunk, first_line, lean, rec, bad),
        Reader::Json(p) => (json::scan(p, chunk, first_line, lean, rec, bad), false),
        Reader::Zeek(h) => (zeek::scan(h, chunk, first_line, rec, bad), false),
    }
}

/// The needed fields of the one record at `span` of `chunk`, as [`scan`] gives them: for a
/// record whose fields [`scan_lean`] did not build. `None` when `span` holds no record.
pub fn fields_at<'a>(
    reader: &Reader,
    chunk: &'a [u8],
    span: std::ops::Range<usize>,
) -> Option<Fields<'a>> {
    Rereader::new(reader).fields_at(chunk, span)
}

/// Reads records again by their spans ([`fields_at`]), keeping what reading one learns for
/// the next: a JSON log's key layout, which a first read of a record learns at a cost.
#[derive(Debug)]
pub struct Rereader<'r> {
    reader: &'r Reader,
    shape: json::Shape,
}

impl<'r> Rereader<'r> {
    /// A rereader of records read by `reader`.
    pub fn new(reader: &'r Reader) -> Rereader<'r> {
        Rereader {
            reader,
            shape: json::Shape::default(),
        }
    }

    /// [`fields_at`].
    pub fn fields_at<'a>(
        &mut self,
        chunk: &'a [u8],
        span: std::ops::Range<usize>,
    ) -> Option<Fields<'a>> {
        let b = chunk.get(span)?;
        let mut out = None;
        let mut rec = |_, _, fields| {
            if out.is_none() {
                out = Some(fields);
            }
        };
        let mut lean = |_, _, _, _| false;
        let mut bad = |_, _, _| {};
        match self.reader {
            Reader::Json(p) => {
                json::scan_with(p, b, 0, &mut self.shape, &mut lean, &mut rec, &mut bad);
            }
            r => {
                scan_lean(r, b, 0, &mut lean, &mut rec, &mut bad);
            }
        }
        out
    }
}

/// Whether records of this reader can contain raw newlines (CSV quoted fields), which makes
/// chunk boundaries depend on quote parity.
pub fn quoted_newlines(reader: &Reader) -> bool {
    matches!(reader, Reader::Csv(_))
}

pub(crate) fn norm_name(h: &str) -> String {
    crate::ingest::norm_header_name(h)
}

/// Picks, for each logical field, the first candidate present among `names` (normalized
/// comparison); returns the index into `names`.
pub(crate) fn resolve(
    names: &[String],
    candidates: &[Vec<String>; LOGICAL],
) -> [Option<usize>; LOGICAL] {
    let normed: Vec<String> = names.iter().map(|n| norm_name(n)).collect();
    let mut out = [None; LOGICAL];
    for (i, cands) in candidates.iter().enumerate() {
        out[i] = cands.iter().find_map(|c| {
            // An exact match first (dotted Zeek names), then the normalized one.
            names.iter().position(|n| n == c).or_else(|| {
                let c = norm_name(c);
                normed.iter().position(|n| *n == c)
            })
        });
    }
    out
}

fn utf8(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// The longest valid UTF-8 prefix of `b` (all of it, nearly always), checked in one pass: the
/// readers slice a chunk's fields from it instead of checking each. `simdutf8` checks ASCII
/// text several times faster than `std` (runtime-detected AVX2 / SSE4.2) with the same verdict.
pub(crate) fn valid_prefix(b: &[u8]) -> &str {
    match simdutf8::compat::from_utf8(b) {
        Ok(t) => t,
        Err(e) => simdutf8::compat::from_utf8(&b[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// Test support shared by the readers' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Fewer than `max` bytes drawn from `alphabet`.
    pub fn random_bytes(rng: &mut crate::gen::Rng, alphabet: &[u8], max: u64) -> Vec<u8> {
        let len = rng.below(max) as usize;
        (0..len)
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
            .collect()
    }

    /// A record's needed fields as owned strings.
    pub fn owned(f: &Fields<'_>) -> Vec<Option<String>> {
        f.iter().map(|x| x.as_deref().map(str::to_string)).collect()
    }

    /// Records as `(line, needed fields as owned strings)`.
    pub type Recs = Vec<(u64, Vec<Option<String>>)>;

    /// Column or key candidates: one list of names per logical field, in order.
    pub fn cands(names: &[&[&str]]) -> [Vec<String>; LOGICAL] {
        let mut c: [Vec<String>; LOGICAL] = Default::default();
        for (i, n) in names.iter().enumerate() {
            c[i] = n.iter().map(|s| s.to_string()).collect();
        }
        c
    }

    /// Prepares `text` as `format` with the candidates `names`, scans what follows its header
    /// (line numbers from `first_line`), and collects records and rejections.
    pub fn run(
        format: LogFormat,
        text: &[u8],
        names: &[&[&str]],
        first_line: u64,
    ) -> (Recs, Vec<(u64, Malformed)>) {
        let p = prepare(format, text, &cands(names)).unwrap();
        let mut recs = Vec::new();
        let mut bads = Vec::new();
        scan(
            &p.reader,
            &text[p.header_len..],
            first_line,
            &mut |l, _, f| recs.push((l, owned(&f))),
            &mut |l, _, w| bads.push((l, w)),
        );
        (recs, bads)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::owned;
    use super::*;

    /// One scan's records as owned text: `(line, span, fields)`.
    type Seen = Vec<(u64, std::ops::Range<usize>, Vec<Option<String>>)>;

    /// For random documents of `pieces` after `header`: every record [`scan`] gives is read
    /// again, equal, by [`fields_at`] and by one [`Rereader`] kept across the records; and
    /// [`scan_lean`] with a hook that takes every record it is offered gives the same records
    /// (the taken ones as their time and key, a missing field as `""`), the same rejections
    /// and the same line count.
    fn reread_and_lean_agree(format: LogFormat, header: &str, pieces: &[&[u8]], seed: u64) {
        let names: [&[&str]; 4] = [&["t"], &["s"], &["k"], &["x"]];
        let p = prepare(format, header.as_bytes(), &testing::cands(&names)).unwrap();
        let mut rng = crate::gen::Rng::new(seed);
        let (mut records, mut taken) = (0, 0);
        for _ in 0..3000 {
            let mut b = Vec::new();
            for _ in 0..rng.below(12) {
                b.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
            }
            let shown = String::from_utf8_lossy(&b).into_owned();
            let (mut seen, mut bads): (Seen, Vec<_>) = (Vec::new(), Vec::new());
            let lines = scan(
                &p.reader,
                &b,
                1,
                &mut |l, span, f| seen.push((l, span, owned(&f))),
                &mut |l, span, why| bads.push((l, span, why)),
            );
            let mut again = Rereader::new(&p.reader);
            for (_, span, f) in &seen {
                let one = fields_at(&p.reader, &b, span.clone()).map(|f| owned(&f));
                assert_eq!(one.as_ref(), Some(f), "{shown:?} {span:?}");
                let kept = again.fields_at(&b, span.clone()).map(|f| owned(&f));
                assert_eq!(kept.as_ref(), Some(f), "{shown:?} {span:?}");
            }
            let lean_seen = std::cell::RefCell::new(Vec::new());
            let mut lean_bads = Vec::new();
            let lean_lines = scan_lean(
                &p.reader,
                &b,
                1,
                &mut |l, span, t: &str, k: &str| {
                    let f = vec![Some(t.to_string()), None, Some(k.to_string()), None];
                    lean_seen.borrow_mut().push((l, span, f, true));
                    true
                },
                &mut |l, span, f| lean_seen.borrow_mut().push((l, span, owned(&f), false)),
                &mut |l, span, why| lean_bads.push((l, span, why)),
            );
            let lean_seen = lean_seen.into_inner();
            assert_eq!(lean_lines, lines, "{shown:?}");
            assert_eq!(lean_bads, bads, "{shown:?}");
            assert_eq!(lean_seen.len(), seen.len(), "{shown:?}");
            for ((l, span, f, was_taken), (wl, wspan, wf)) in lean_seen.iter().zip(&seen) {
                assert_eq!((l, span), (wl, wspan), "{shown:?}");
                if *was_taken {
                    let text = |i: usize| Some(wf[i].clone().unwrap_or_default());
                    assert_eq!((&f[0], &f[2]), (&text(0), &text(2)), "{shown:?}");
                    taken += 1;
                } else {
                    assert_eq!(f, wf, "{shown:?}");
                }
            }
            records += seen.len();
        }
        // The pieces make records, and for CSV and NDJSON many of them go the lean way (not
        // those after a bad byte in their chunk).
        assert!(records > 3000, "{records} records");
        if format != LogFormat::ZeekTsv {
            assert!(taken * 5 > records * 2, "{taken} of {records} taken");
        }
    }

    #[test]
    fn csv_records_reread_and_lean() {
        let pieces: [&[u8]; 15] = [
            b"2024-01-01T00:00:00Z,10.0.0.1,evil.com,x\n",
            b"2024-01-01T00:00:00Z,10.0.0.1,evil.com,x\r\n",
            b",,,\n",
            b"t,s,\"k,\"\"q\"\"\",x\n",
            b"t,s,k,\"a\nb\"\n",
            b"t,s,k\n",
            b"t,\xff,k,x\n",
            // A bad byte after the time and the key, in a needed field.
            b"t,s,k,\xff\n",
            b"\xc3\xa9,s,\xc3\xa9,x\n",
            b"\"",
            b",",
            b"\n",
            b"\r",
            b"a",
            b"t,s,k,x",
        ];
        reread_and_lean_agree(LogFormat::Csv, "t,s,k,x\n", &pieces, 0x1ea0_0001);
    }

    #[test]
    fn ndjson_records_reread_and_lean() {
        let pieces: [&[u8]; 14] = [
            b"{\"t\":\"2024-01-01T00:00:00Z\",\"s\":\"10.0.0.1\",\"k\":\"evil.com\",\"n\":5}\n",
            br#"{"k":"a\nb","t":null}"#,
            b"{\"s\":\"x\",\"k\":\"y\"}\n",
            b"{\"t\":7,\"k\":\"q\",\"x\":[1,\"a b\"]}\n",
            b"{\"k\" : \"sp\" , \"t\" : \"u\" }\r\n",
            b"{\"k\":\"\\u00e9\"}\n",
            b"\n",
            b"\r\n",
            b" ",
            b"{",
            b"}",
            b"\"",
            b"\xff",
            b",",
        ];
        let header = r#"{"t":"1","s":"2","k":"3","x":"4"}"#;
        reread_and_lean_agree(LogFormat::Ndjson, header, &pieces, 0x1ea0_0002);
    }

    #[test]
    fn zeek_records_reread() {
        let header = "#separator \\x09\n#fields\tt\ts\tk\tx\n";
        let pieces: [&[u8]; 8] = [
            b"1.5\t10.0.0.1\tevil.com\ta,b\n",
            b"-\t-\t-\t-\n",
            b"1\t2\t3\n",
            b"#close\tx\n",
            b"\t",
            b"\n",
            b"\xff",
            b"x",
        ];
        reread_and_lean_agree(LogFormat::ZeekTsv, header, &pieces, 0x1ea0_0003);
    }
}
