//! Feed parsers: every supported indicator format in, [`Indicator`] records out.
//!
//! [`ingest`] detects a file's format by content (or takes `IngestOptions::format`), hands it to
//! the format's module, and collects records and per-record problems in a [`Collector`]. Nothing
//! here prints: problems are returned with their file and line (or object id) for the caller to
//! report. [`finalize`] then applies the cross-file rules: the newest STIX version of an `id`
//! wins and a revoked one is dropped; with `--latest`, Sentinel rows are reduced to the newest row
//! per `IndicatorId` and inactive ones dropped.

mod detect;
pub mod generic_csv;
pub mod pattern;
pub mod plain;
pub mod rest;
pub mod sentinel;
pub mod sentinel_stix;
pub mod stix;

use crate::indicator::{Indicator, KeyError, Kind, Origin};
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

pub use detect::detect;
pub(crate) use detect::norm_header as norm_header_name;

/// How many problems a [`Report`] keeps verbatim (all are counted).
pub const MAX_PROBLEMS: usize = 1000;

/// A feed format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// STIX 2.1 bundle, TAXII 2.1 envelope, a JSON array or NDJSON of STIX objects.
    Stix,
    /// A `ThreatIntelligenceIndicator` or `ThreatIntelIndicators` export as CSV (the table is
    /// told by its columns: `Pattern`/`ObservableKey`/`ObservableValue`/`IsActive`/`ValidUntil`
    /// mean the newer, STIX-based table).
    SentinelCsv,
    /// The same as a JSON array or NDJSON.
    SentinelJson,
    /// A CSV feed with a value column and (optionally) a type column.
    GenericCsv,
    /// A REST feed response: a JSON object with a `data` array.
    Rest,
    /// One indicator per line, `#` comments.
    Plain,
}

impl Format {
    /// Parses a `--format` name.
    pub fn from_name(s: &str) -> Option<Format> {
        Some(match s {
            "stix" | "taxii" => Format::Stix,
            "sentinel-csv" => Format::SentinelCsv,
            "sentinel-json" => Format::SentinelJson,
            "csv" => Format::GenericCsv,
            "rest" => Format::Rest,
            "plain" | "list" => Format::Plain,
            _ => return None,
        })
    }

    /// The `--format` name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Stix => "stix",
            Format::SentinelCsv => "sentinel-csv",
            Format::SentinelJson => "sentinel-json",
            Format::GenericCsv => "csv",
            Format::Rest => "rest",
            Format::Plain => "plain",
        }
    }

    /// All `--format` names, for help texts.
    pub const NAMES: &'static [&'static str] = &[
        "stix",
        "sentinel-csv",
        "sentinel-json",
        "csv",
        "rest",
        "plain",
    ];
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Options for [`ingest`] and [`finalize`].
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// Skip detection and parse every file as this format.
    pub format: Option<Format>,
    /// Generic CSV: the value column's header name.
    pub value_column: Option<String>,
    /// Generic CSV: the type column's header name.
    pub type_column: Option<String>,
    /// Sentinel exports: keep only the newest row per `IndicatorId` and drop inactive rows.
    pub latest: bool,
}

/// Where in a file a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A 1-based line number.
    Line(u64),
    /// A STIX object id (or a REST item's id).
    Object(String),
    /// The n-th (1-based) element of a JSON array.
    Element(u64),
    /// The whole file.
    File,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Object(id) => write!(f, "object {id}"),
            Location::Element(n) => write!(f, "element {n}"),
            Location::File => f.write_str("file"),
        }
    }
}

/// Why a record was not turned into an indicator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// The value is not a valid key of its kind.
    BadValue(KeyError),
    /// The record's type names no supported indicator kind.
    UnknownType,
    /// The record has no value at all.
    MissingValue,
    /// A STIX pattern the engine cannot express as key lookups (AND, MATCHES, LIKE, FOLLOWEDBY,
    /// unsupported object paths, ...).
    UnsupportedPattern,
    /// A STIX pattern that does not parse.
    BadPattern,
    /// `pattern_type` other than `stix`.
    NotStixPattern,
    /// Not valid JSON / CSV at this position.
    Malformed,
    /// A required field is missing or has the wrong type.
    BadField,
}

impl SkipReason {
    /// A short, stable description used in summaries.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::BadValue(e) => e.reason(),
            SkipReason::UnknownType => "unsupported indicator type",
            SkipReason::MissingValue => "no indicator value",
            SkipReason::UnsupportedPattern => "pattern not expressible as key lookups",
            SkipReason::BadPattern => "invalid STIX pattern",
            SkipReason::NotStixPattern => "pattern_type is not stix",
            SkipReason::Malformed => "malformed record",
            SkipReason::BadField => "missing or invalid field",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// One skipped record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file (as named by the caller).
    pub file: String,
    /// Where in it.
    pub location: Location,
    /// Why it was skipped.
    pub reason: SkipReason,
    /// What exactly was wrong (the offending value or parser message).
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.location, self.reason)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Counts of one ingest run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Records (rows, STIX indicator objects, list lines) read.
    pub read: u64,
    /// Indicator records kept (before [`finalize`]).
    pub kept: u64,
    /// Kept records with no usable normalized key (KQL-exact mode only).
    pub unusable: u64,
    /// Skipped records by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// The first [`MAX_PROBLEMS`] problems, in input order.
    pub problems: Vec<Problem>,
    /// Files and the format each was read as.
    pub files: Vec<(String, Format)>,
    /// Records dropped by [`finalize`]: superseded STIX versions / older Sentinel rows.
    pub superseded: u64,
    /// Records dropped by [`finalize`]: all versions of revoked STIX indicators.
    pub revoked: u64,
    /// Records dropped by [`finalize`] under `latest`: inactive rows.
    pub inactive: u64,
}

impl Report {
    /// Total number of skipped records.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

#[derive(Clone, Debug)]
struct Meta {
    /// Which source object the record came from (records of one object share it).
    object: u64,
    revoked: bool,
}

/// Accumulates records and problems while parsers run. Parsers call [`Collector::begin_object`]
/// once per source record (row, STIX object, line), then [`Collector::push`] for each indicator
/// record it yields or [`Collector::skip`] when it yields none.
#[derive(Debug, Default)]
pub struct Collector {
    file: String,
    /// The records, and beside them (same index) where each came from: two vectors, so that
    /// [`finalize`] filters the records in place.
    records: Vec<Indicator>,
    metas: Vec<Meta>,
    object: u64,
    report: Report,
}

impl Collector {
    /// A collector with no records.
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Sets the file name used in problems from now on.
    pub fn set_file(&mut self, file: &str) {
        self.file = file.to_string();
    }

    /// The current file name.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Starts a new source record (counts it as read).
    pub fn begin_object(&mut self) {
        self.object += 1;
        self.report.read += 1;
    }

    /// Adds an indicator record of the current source record.
    pub fn push(&mut self, ind: Indicator) {
        self.push_meta(ind, false);
    }

    /// Records a revoked STIX version: it supersedes older versions and is then dropped.
    pub fn push_revoked(&mut self, ind: Indicator) {
        self.push_meta(ind, true);
    }

    fn push_meta(&mut self, ind: Indicator, revoked: bool) {
        if !revoked {
            self.report.kept += 1;
            if ind.keys.is_empty() {
                self.report.unusable += 1;
            }
        }
        self.records.push(ind);
        self.metas.push(Meta {
            object: self.object,
            revoked,
        });
    }

    /// Reserves room for the records of an input of `bytes` bytes (about one per 128 bytes, a
    /// short CSV row), so that a large feed does not copy its records on every doubling.
    pub fn reserve_for(&mut self, bytes: usize) {
        self.records.reserve(bytes / 128);
        self.metas.reserve(bytes / 128);
    }

    /// Skips the current source record.
    pub fn skip(&mut self, location: Location, reason: SkipReason, detail: impl Into<String>) {
        *self.report.skipped.entry(reason).or_insert(0) += 1;
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(Problem {
                file: self.file.clone(),
                location,
                reason,
                detail: truncate(detail.into(), 200),
            });
        }
    }

    /// The report so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The records collected so far.
    pub fn indicators(&self) -> impl Iterator<Item = &Indicator> {
        self.records.iter()
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Errors that stop a whole file (as opposed to skipped records).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    /// The content matches no supported format.
    #[error("{file}: not a recognizable indicator format ({why})")]
    Unrecognized {
        /// The file.
        file: String,
        /// What was seen.
        why: String,
    },
    /// The file was declared or detected as a format but its structure is broken.
    #[error("{file}: not valid {format}: {why}")]
    Invalid {
        /// The file.
        file: String,
        /// The format.
        format: Format,
        /// What is wrong, with a position where known.
        why: String,
    },
}

/// Parses one file's bytes into `out`, detecting the format unless `opts.format` is set.
///
/// # Errors
/// [`IngestError`] when the file is not a recognizable format; bad records inside a
/// recognizable file are skipped and reported through the collector instead.
pub fn ingest(
    bytes: &[u8],
    file: &str,
    opts: &IngestOptions,
    out: &mut Collector,
) -> Result<Format, IngestError> {
    out.set_file(file);
    let format = match opts.format {
        Some(f) => f,
        None => detect(bytes, opts).map_err(|why| IngestError::Unrecognized {
            file: file.to_string(),
            why,
        })?,
    };
    let invalid = |why: String| IngestError::Invalid {
        file: file.to_string(),
        format,
        why,
    };
    match format {
        Format::Stix => stix::parse(bytes, out).map_err(invalid)?,
        Format::SentinelCsv if detect::is_stix_table(bytes) => {
            sentinel_stix::parse_csv(bytes, out).map_err(invalid)?
        }
        Format::SentinelCsv => sentinel::parse_csv(bytes, out).map_err(invalid)?,
        Format::SentinelJson if detect::is_stix_table(bytes) => {
            sentinel_stix::parse_json(bytes, out).map_err(invalid)?
        }
        Format::SentinelJson => sentinel::parse_json(bytes, out).map_err(invalid)?,
        Format::GenericCsv => generic_csv::parse(bytes, opts, out).map_err(invalid)?,
        Format::Rest => rest::parse(bytes, out).map_err(invalid)?,
        Format::Plain => plain::parse(bytes, out).map_err(invalid)?,
    }
    out.report.files.push((file.to_string(), format));
    Ok(format)
}

/// Reads, detects and parses indicator files, then applies [`finalize`]. Records with no
/// source of their own get the file's name as their source.
///
/// # Errors
/// [`crate::Error::Io`] when a file cannot be read, [`crate::Error::Ingest`] when one is not a
/// recognizable format.
pub fn load_files<P: AsRef<std::path::Path>>(
    paths: &[P],
    opts: &IngestOptions,
) -> Result<(Vec<Indicator>, Report), crate::Error> {
    let mut c = Collector::new();
    for p in paths {
        let p = p.as_ref();
        let file = feed_bytes(p)?;
        let bytes = file.as_ref();
        let name = p.display().to_string();
        let first = c.records.len();
        c.reserve_for(bytes.len());
        ingest(bytes, &name, opts, &mut c)?;
        let base = p
            .file_name()
            .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
        for ind in &mut c.records[first..] {
            if ind.source.is_empty() {
                ind.source.clone_from(&base);
            }
        }
    }
    Ok(finalize(c, opts))
}

/// The bytes of the feed file `p`: mapped when it is a regular file (a large feed is then
/// neither copied nor held twice: a 150 MB CSV read into the heap cost a fifth of a second of
/// page zeroing and copying), read otherwise (a pipe such as `<(curl ...)`, a device).
fn feed_bytes(p: &std::path::Path) -> Result<crate::index::IndexBytes, crate::Error> {
    use crate::index::IndexBytes;
    let io = |source| crate::Error::Io {
        path: p.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(p).map_err(io)?;
    if meta.is_file() && meta.len() > 0 {
        if let Ok(map) = crate::mmap::map(p, true) {
            return Ok(IndexBytes::Mapped(map));
        }
    }
    std::fs::read(p).map(IndexBytes::Owned).map_err(io)
}

/// Applies the cross-record rules and returns the final records in input order:
///
/// * STIX records ([`Origin::Stix`]): per `id`, only the records of the newest `modified`
///   version survive (ties: the later one in input order); if any version is revoked the `id`
///   is dropped entirely, as STIX revocation is permanent.
/// * With `opts.latest`: Sentinel rows (both tables) are reduced per `IndicatorId` to the row
///   with the newest `TimeGenerated` (ties: the later one), then rows with `Active == false`
///   are dropped.
pub fn finalize(c: Collector, opts: &IngestOptions) -> (Vec<Indicator>, Report) {
    let Collector {
        mut records,
        metas,
        mut report,
        ..
    } = c;
    // Winner per (group, id): (modified, object ordinal).
    let group_of = |ind: &Indicator| -> Option<u8> {
        match ind.origin {
            Origin::Stix => Some(0),
            Origin::SentinelLegacy | Origin::SentinelStix if opts.latest => Some(1),
            _ => None,
        }
    };
    let mut best: HashMap<(u8, &str), (Option<Timestamp>, u64)> = HashMap::new();
    let mut revoked: HashSet<&str> = HashSet::new();
    for (ind, meta) in records.iter().zip(&metas) {
        if meta.revoked && !ind.id.is_empty() {
            revoked.insert(ind.id.as_str());
        }
        let Some(g) = group_of(ind) else { continue };
        if ind.id.is_empty() {
            continue;
        }
        let cand = (ind.modified, meta.object);
        best.entry((g, ind.id.as_str()))
            .and_modify(|b| {
                if cand >= *b {
                    *b = cand;
                }
            })
            .or_insert(cand);
    }
    let verdict: Vec<Verdict> = records
        .iter()
        .zip(&metas)
        .map(|(ind, meta)| {
            if meta.revoked {
                return Verdict::Marker;
            }
            match group_of(ind) {
                Some(0) if revoked.contains(ind.id.as_str()) => Verdict::Revoked,
                Some(g) if !ind.id.is_empty() => {
                    if best
                        .get(&(g, ind.id.as_str()))
                        .is_some_and(|b| b.1 == meta.object)
                    {
                        Verdict::Keep
                    } else {
                        Verdict::Superseded
                    }
                }
                _ => Verdict::Keep,
            }
        })
        .collect();
    drop((best, revoked));
    // In place: `retain` visits every record once, in order.
    let mut verdicts = verdict.into_iter();
    records.retain(|ind| match verdicts.next() {
        Some(Verdict::Marker) | None => false,
        Some(Verdict::Superseded) => {
            report.superseded += 1;
            false
        }
        Some(Verdict::Revoked) => {
            report.revoked += 1;
            false
        }
        Some(Verdict::Keep)
            if opts.latest
                && matches!(ind.origin, Origin::SentinelLegacy | Origin::SentinelStix)
                && ind.active == Some(false) =>
        {
            report.inactive += 1;
            false
        }
        Some(Verdict::Keep) => true,
    });
    (records, report)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    Superseded,
    Revoked,
    /// A revocation marker: never output itself.
    Marker,
}

/// Counts records per kind (for summaries).
pub fn count_by_kind(records: &[Indicator]) -> BTreeMap<Kind, u64> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r.kind()).or_insert(0) += 1;
    }
    m
}
