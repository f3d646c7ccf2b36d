//! Hunting: the two Sentinel joins (NetworkConnection ⋈ NetworkIP, DnsEvents ⋈ DomainName)
//! answered offline against an [`Index`](crate::Index), in KQL-exact or normalized semantics.
//!
//! [`hunt`] reads log sources ([`crate::logs`]), matches every record on all cores and returns
//! the matches sorted as the query sorts them (`TimeGenerated` descending, nulls last, ties in
//! input order then indicator order), with a [`HuntReport`] of what was read and skipped.
//! Rendering is the caller's: a [`Match`] names the event's strings and the indicator record.

mod driver;
pub mod filter;
mod matcher;

pub use driver::{hunt, Progress};

use crate::logs::{LogFormat, Logical, Malformed, Schema, LOGICAL};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::fmt;

/// Appends `v` to `out` as one CSV field: quoted (quotes doubled) when it holds a comma, a
/// quote, CR or LF, as it stands otherwise (what the `csv` crate's writer does by default).
pub fn csv_cell(out: &mut Vec<u8>, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        for part in v.split_inclusive('"') {
            out.extend_from_slice(part.as_bytes());
            if part.ends_with('"') {
                out.push(b'"');
            }
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(v.as_bytes());
    }
}

/// A real as KQL prints it: no fraction when integral (`80`), else the shortest decimal that
/// reads back as the same value (`85.5`, `33.333`).
pub fn format_real(c: f64) -> String {
    if c.fract() == 0.0 {
        // An integer below 2^53 is exact in an i64 (`{c:.0}` took the exact, slow path of
        // float formatting: 3 % of a hunt's time in its output rows); -0 keeps its sign.
        if c.abs() < 9_007_199_254_740_992.0 && !(c == 0.0 && c.is_sign_negative()) {
            return (c as i64).to_string();
        }
        format!("{c:.0}")
    } else {
        c.to_string()
    }
}

/// Which of the two queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// NetworkConnection joined on `DestinationIP == NetworkIP`.
    Network,
    /// DnsEvents joined on `Name == DomainName`.
    Dns,
}

impl Query {
    /// The projected output columns, in order.
    pub fn columns(self) -> [&'static str; 5] {
        match self {
            Query::Network => [
                "TimeGenerated",
                "SourceIP",
                "DestinationIP",
                "ConfidenceScore",
                "Description",
            ],
            Query::Dns => [
                "TimeGenerated",
                "ClientIP",
                "Name",
                "ConfidenceScore",
                "ThreatType",
            ],
        }
    }

    /// The name of a logical field in this query's table.
    pub fn field_name(self, l: Logical) -> &'static str {
        match (self, l) {
            (_, Logical::Time) => "TimeGenerated",
            (Query::Network, Logical::Source) => "SourceIP",
            (Query::Network, Logical::Key) => "DestinationIP",
            (Query::Network, Logical::Extra) => "Extra",
            (Query::Dns, Logical::Source) => "ClientIP",
            (Query::Dns, Logical::Key) => "Name",
            (Query::Dns, Logical::Extra) => "IPAddresses",
        }
    }

    /// The logical field named `name` in this query (case-insensitive).
    pub fn logical(self, name: &str) -> Option<Logical> {
        [Logical::Time, Logical::Source, Logical::Key, Logical::Extra]
            .into_iter()
            .find(|&l| self.field_name(l).eq_ignore_ascii_case(name))
    }

    /// Candidate column / key names per logical field, most preferred first: Sentinel names,
    /// then other common schemas (ASIM, CommonSecurityLog, DeviceNetworkEvents, VMConnection,
    /// ECS) and Zeek.
    pub fn default_candidates(self) -> [Vec<String>; LOGICAL] {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let time = v(&[
            "TimeGenerated",
            "Timestamp",
            "@timestamp",
            "ts",
            "EventTime",
            "time",
        ]);
        match self {
            Query::Network => [
                time,
                v(&[
                    "SourceIP",
                    "SrcIpAddr",
                    "SourceIp",
                    "LocalIP",
                    "src_ip",
                    "id.orig_h",
                    "source.ip",
                ]),
                v(&[
                    "DestinationIP",
                    "DstIpAddr",
                    "DestinationIp",
                    "RemoteIP",
                    "dst_ip",
                    "id.resp_h",
                    "destination.ip",
                ]),
                Vec::new(),
            ],
            Query::Dns => [
                time,
                v(&[
                    "ClientIP",
                    "SrcIpAddr",
                    "client_ip",
                    "id.orig_h",
                    "source.ip",
                ]),
                v(&[
                    "Name",
                    "DnsQuery",
                    "QueryName",
                    "query",
                    "qname",
                    "dns.question.name",
                ]),
                v(&["IPAddresses", "DnsResponseName", "answers", "dns.answers"]),
            ],
        }
    }
}

/// How keys are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Semantics {
    /// KQL exactly: raw strings, empty joins empty, null expiration dropped.
    Kql,
    /// Canonical IPs with CIDR containment, case-insensitive domains, no expiration = live.
    Normalized,
}

/// Which indicators count as live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// `ExpirationDateTime > now()`.
    Now,
    /// The event's time lies in `[valid_from, expiration)`.
    AtEvent,
}

/// Options of a hunt.
#[derive(Clone, Debug)]
pub struct HuntOptions {
    /// The query.
    pub query: Query,
    /// The semantics.
    pub semantics: Semantics,
    /// `now()`.
    pub now: Timestamp,
    /// Expiry rule.
    pub expiry: Expiry,
    /// Normalized domains: also match parent domains (`a.evil.com` ~ `evil.com`).
    pub subdomains: bool,
    /// Which event fields are matched (default: the key only).
    pub match_fields: Vec<Logical>,
    /// Force a log format instead of detecting it.
    pub input_format: Option<LogFormat>,
    /// Column / key names per logical field, overriding the defaults.
    pub columns: [Option<String>; LOGICAL],
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Stop at the first malformed record.
    pub strict: bool,
    /// Target chunk size for parallel scanning (default 2 MiB), and the block size of a
    /// compressed or piped input.
    pub chunk_size: usize,
}

impl HuntOptions {
    /// Whether the hunt matches the key field alone (the default; `--match` adds others).
    pub fn key_only(&self) -> bool {
        // (A slice pattern: comparing with `[Logical::Key]` called the slice `eq`, 40
        // instructions a record on the hot path.)
        matches!(self.match_fields[..], [Logical::Key])
    }

    /// The column / key names to read per logical field: the query's defaults, overridden by
    /// `columns`. The `Extra` field (DNS answers) is read only when matched on: the CSV reader
    /// then keeps records whose answer list is quoted on its fast path.
    pub(crate) fn candidates(&self) -> [Vec<String>; LOGICAL] {
        let mut c = self.query.default_candidates();
        for (i, o) in self.columns.iter().enumerate() {
            if let Some(name) = o {
                c[i] = vec![name.clone()];
            }
        }
        if !self.match_fields.contains(&Logical::Extra) {
            c[Logical::Extra as usize].clear();
        }
        c
    }

    /// Defaults for a query: normalized semantics, now = the current time.
    pub fn new(query: Query) -> HuntOptions {
        HuntOptions {
            query,
            semantics: Semantics::Normalized,
            now: Timestamp::now(),
            expiry: Expiry::Now,
            subdomains: false,
            match_fields: vec![Logical::Key],
            input_format: None,
            columns: Default::default(),
            threads: 0,
            strict: false,
            chunk_size: 2 << 20,
        }
    }
}

/// One output row: an event and the indicator record it joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The event's time (null when absent, or unparseable in kql mode).
    pub time: Option<Timestamp>,
    /// The event's `SourceIP` / `ClientIP`, as given (`""` when absent).
    pub source: String,
    /// The event's `DestinationIP` / `Name`, as given.
    pub key: String,
    /// Which event field matched (and its value when it is not the key).
    pub matched: Logical,
    /// The matched value when it is not `key` (a source address or a DNS answer).
    pub matched_value: String,
    /// The indicator record.
    pub record: u32,
    /// Index of the input file.
    pub file: u32,
    /// Line of the record in its file.
    pub line: u64,
}

/// Per-file counts.
#[derive(Clone, Debug, Default)]
pub struct FileReport {
    /// The file's name.
    pub name: String,
    /// The detected format.
    pub format: Option<LogFormat>,
    /// Where each logical field was read from.
    pub schema: Schema,
    /// Records read.
    pub records: u64,
    /// Output rows from this file.
    pub matches: u64,
    /// Skipped records by reason.
    pub skipped: BTreeMap<Malformed, u64>,
    /// The first skipped records: `(line, reason)`.
    pub first_skipped: Vec<(u64, Malformed)>,
    /// kql mode: records whose time did not parse and became null.
    pub null_times: u64,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Joined pairs dropped by the expiry rule.
    pub pairs_expired: u64,
}

/// How many skipped positions a [`FileReport`] keeps.
pub const FIRST_SKIPPED: usize = 5;

/// What a hunt read and did.
#[derive(Clone, Debug, Default)]
pub struct HuntReport {
    /// Per input file, in input order.
    pub files: Vec<FileReport>,
    /// (event, indicator) pairs that joined but were dropped by the expiry rule.
    pub pairs_expired: u64,
    /// Indicator records not live as of `now` (now mode).
    pub indicators_expired: u64,
}

impl HuntReport {
    /// Total records read.
    pub fn records(&self) -> u64 {
        self.files.iter().map(|f| f.records).sum()
    }
    /// Total output rows.
    pub fn matches(&self) -> u64 {
        self.files.iter().map(|f| f.matches).sum()
    }
    /// Total skipped records.
    pub fn skipped(&self) -> u64 {
        self.files.iter().flat_map(|f| f.skipped.values()).sum()
    }
}

impl fmt::Display for Semantics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Semantics::Kql => "kql",
            Semantics::Normalized => "normalized",
        })
    }
}

#[cfg(test)]
mod tests {
    /// `csv_cell` writes each field as the `csv` crate's writer does (the hunt's CSV rows
    /// and the filter's appended columns are read back by CSV readers): random records of
    /// two to four fields of commas, quotes, CR, LF, spaces, letters and a multi-byte char.
    #[test]
    fn csv_cell_writes_what_the_csv_writer_writes() {
        let mut rng = crate::gen::Rng::new(0x0c5e_0001);
        let alphabet = [",", "\"", "\n", "\r", " ", "a", "b", "é", "'", "\\"];
        let mut quoted = 0;
        for _ in 0..20_000 {
            let fields: Vec<String> = (0..2 + rng.below(3))
                .map(|_| {
                    (0..rng.below(6))
                        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                        .collect()
                })
                .collect();
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            w.write_record(&fields).unwrap();
            let want = w.into_inner().unwrap();
            let mut got = Vec::new();
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    got.push(b',');
                }
                super::csv_cell(&mut got, f);
            }
            got.push(b'\n');
            assert_eq!(got, want, "{fields:?}");
            quoted += usize::from(want.contains(&b'"'));
        }
        assert!(quoted > 5_000, "{quoted}");
    }

    /// `format_real` prints what `{:.0}` prints for integral values (the short path below
    /// 2^53, the formatter above it, -0 and the infinities included) and the shortest
    /// round-trip form otherwise.
    #[test]
    fn format_real_equals_the_formatter() {
        let mut rng = crate::gen::Rng::new(0x0f0f_0001);
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            80.0,
            85.5,
            100.0,
            1e15,
            9.007_199_254_740_992e15,
        ];
        values.extend([f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e20, 0.1, 33.333]);
        for _ in 0..20_000 {
            let bits = rng.below(u64::MAX);
            let v = f64::from_bits(bits);
            values.push(if v.is_nan() { 1.5 } else { v });
            values.push((rng.below(1 << 60) as f64) * if rng.below(2) == 0 { 1.0 } else { -1.0 });
            values.push(rng.below(101) as f64);
        }
        for c in values {
            let want = if c.fract() == 0.0 {
                format!("{c:.0}")
            } else {
                c.to_string()
            };
            assert_eq!(super::format_real(c), want, "{c:e}");
        }
    }
}
