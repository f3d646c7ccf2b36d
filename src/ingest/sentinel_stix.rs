//! Exports of Sentinel's STIX-based `ThreatIntelIndicators` table, as CSV or JSON.
//!
//! The table that replaced `ThreatIntelligenceIndicator` holds one row per published version of
//! a STIX indicator: the observable as `ObservableKey` (a STIX path such as `ipv4-addr:value`)
//! and `ObservableValue`, the `Pattern`, validity and state columns (`IsActive`, `IsDeleted`,
//! `Revoked`), and the whole STIX object as JSON in `Data`. Analysts export it from the portal
//! (CSV, with `TimeGenerated [UTC]`-style headers and US dates) or through the API (JSON arrays
//! or NDJSON). Every row becomes one [`Indicator`] record ([`Origin::SentinelStix`]), as KQL sees
//! rows: the newest-row-per-`Id` reduction is [`super::finalize`]'s job under `--latest`.
//!
//! The value comes from `ObservableKey`/`ObservableValue`, else from the `Pattern` column (read
//! with [`super::pattern`]), else from the pattern inside `Data`. A row with an observable that
//! yields no valid key is still kept, without keys, for the KQL-exact mode.

use super::detect::norm_header;
use super::pattern;
use super::stix::{clip, looks_like_ndjson, pattern_skip, StixObject};
use super::{Collector, Location, SkipReason};
use crate::indicator::{Indicator, Key, Kind, Origin};
use crate::time::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// Parses a `ThreatIntelIndicators` CSV export into `out`, one record per row.
///
/// Header names are matched case-insensitively, ignoring `_`, spaces and a `[UTC]` suffix; any
/// subset of the columns is accepted as long as one of them can carry a value (`Pattern`,
/// `ObservableValue` or `Data`). Problems are located by the line where the row starts.
///
/// # Errors
/// When the header cannot be read or has none of the value columns.
pub fn parse_csv(bytes: &[u8], out: &mut Collector) -> Result<(), String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes);
    let headers = rdr
        .byte_headers()
        .map_err(|e| format!("cannot read the CSV header: {e}"))?
        .clone();
    let cols: Vec<Option<Col>> = headers
        .iter()
        .map(|h| Col::from_header(&String::from_utf8_lossy(h)))
        .collect();
    check_columns(cols.iter().flatten().copied())?;
    let mut record = csv::ByteRecord::new();
    // csv's own line counter skips newlines inside quoted fields; count them from byte offsets.
    let mut lines = LineCounter::new(bytes);
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = lines.line_at(record.position().map_or(0, csv::Position::byte));
                let mut row = Row::default();
                for (col, cell) in cols.iter().zip(record.iter()) {
                    if let Some(col) = col {
                        row.set_text(*col, &String::from_utf8_lossy(cell));
                    }
                }
                process(row, Location::Line(line), out);
            }
            Err(e) => {
                let line = lines.line_at(e.position().map_or(0, csv::Position::byte));
                out.begin_object();
                out.skip(Location::Line(line), SkipReason::Malformed, e.to_string());
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }
                ) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Maps byte offsets (met in increasing order) to 1-based line numbers.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line of the first byte at or after `offset` that is not a line terminator (csv
    /// places a record's start on the `\n` of a preceding `\r\n`).
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut to = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while matches!(self.bytes.get(to), Some(b'\r' | b'\n')) {
            to += 1;
        }
        if to > self.offset {
            let seen = self.bytes.get(self.offset..to).unwrap_or(&[]);
            self.line += memchr::memchr_iter(b'\n', seen).count() as u64;
            self.offset = to;
        }
        self.line
    }
}

/// Parses a `ThreatIntelIndicators` JSON export (an array of row objects, NDJSON, or a single
/// row object) into `out`, one record per row.
///
/// # Errors
/// When the document is not JSON (message with line and column), not an array or object of
/// rows, or its rows have none of the value columns. In NDJSON a bad line is skipped instead.
pub fn parse_json(bytes: &[u8], out: &mut Collector) -> Result<(), String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if looks_like_ndjson(bytes) {
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.trim_ascii().is_empty() {
                continue;
            }
            let loc = Location::Line(i as u64 + 1);
            match serde_json::from_slice::<Value>(line) {
                Ok(v) => json_row(v, loc, out),
                Err(e) => {
                    out.begin_object();
                    out.skip(loc, SkipReason::Malformed, e.to_string());
                }
            }
        }
        return Ok(());
    }
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let rows = match doc {
        Value::Array(rows) => rows,
        obj @ Value::Object(_) => vec![obj],
        other => {
            return Err(format!(
                "expected an array of ThreatIntelIndicators rows, found {}",
                json_type(&other)
            ))
        }
    };
    let names = rows
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|m| m.keys())
        .filter_map(|k| Col::from_header(k));
    if !rows.is_empty() {
        check_columns(names)?;
    }
    for (i, v) in rows.into_iter().enumerate() {
        json_row(v, Location::Element(i as u64 + 1), out);
    }
    Ok(())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_row(v: Value, loc: Location, out: &mut Collector) {
    let Value::Object(map) = v else {
        out.begin_object();
        out.skip(
            loc,
            SkipReason::Malformed,
            format!("row is {}, not an object", json_type(&v)),
        );
        return;
    };
    let mut row = Row::default();
    for (k, v) in map {
        let Some(col) = Col::from_header(&k) else {
            continue;
        };
        match (col, v) {
            (_, Value::Null) => {}
            (Col::Data, Value::Object(m)) => {
                row.data = StixObject::deserialize(Value::Object(m)).ok();
            }
            (Col::Tags, Value::Array(items)) => {
                let tags: Vec<String> = items
                    .into_iter()
                    .map(|t| match t {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect();
                row.set_text(col, &tags.join(","));
            }
            (_, Value::String(s)) => row.set_text(col, &s),
            (_, other) => row.set_text(col, &other.to_string()),
        }
    }
    process(row, loc, out);
}

/// Fails unless some column can carry a value.
fn check_columns(mut cols: impl Iterator<Item = Col>) -> Result<(), String> {
    if cols.any(|c| matches!(c, Col::Pattern | Col::ObservableValue | Col::Data)) {
        Ok(())
    } else {
        Err("no Pattern, ObservableValue or Data column: not a ThreatIntelIndicators export".into())
    }
}

/// The columns this parser reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Id,
    TimeGenerated,
    SourceSystem,
    IsActive,
    IsDeleted,
    Revoked,
    ValidFrom,
    ValidUntil,
    Confidence,
    Pattern,
    PatternType,
    ObservableKey,
    ObservableValue,
    Tags,
    Data,
    Created,
    Modified,
    Name,
    Description,
}

const NCOLS: usize = 19;

impl Col {
    fn from_header(h: &str) -> Option<Col> {
        Some(match norm_header(h).as_str() {
            "id" => Col::Id,
            "timegenerated" => Col::TimeGenerated,
            "sourcesystem" => Col::SourceSystem,
            "isactive" => Col::IsActive,
            "isdeleted" => Col::IsDeleted,
            "revoked" => Col::Revoked,
            "validfrom" => Col::ValidFrom,
            "validuntil" => Col::ValidUntil,
            "confidence" => Col::Confidence,
            "pattern" => Col::Pattern,
            "patterntype" => Col::PatternType,
            "observablekey" => Col::ObservableKey,
            "observablevalue" => Col::ObservableValue,
            "tags" => Col::Tags,
            "data" => Col::Data,
            "created" => Col::Created,
            "modified" => Col::Modified,
            "name" => Col::Name,
            "description" => Col::Description,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Col::Id => "Id",
            Col::TimeGenerated => "TimeGenerated",
            Col::SourceSystem => "SourceSystem",
            Col::IsActive => "IsActive",
            Col::IsDeleted => "IsDeleted",
            Col::Revoked => "Revoked",
            Col::ValidFrom => "ValidFrom",
            Col::ValidUntil => "ValidUntil",
            Col::Confidence => "Confidence",
            Col::Pattern => "Pattern",
            Col::PatternType => "PatternType",
            Col::ObservableKey => "ObservableKey",
            Col::ObservableValue => "ObservableValue",
            Col::Tags => "Tags",
            Col::Data => "Data",
            Col::Created => "Created",
            Col::Modified => "Modified",
            Col::Name => "Name",
            Col::Description => "Description",
        }
    }
}

/// One row: the text of each known column (`None` when absent or empty, as Kusto strings are
/// never null) and the parsed `Data` object.
#[derive(Default)]
struct Row {
    text: [Option<String>; NCOLS],
    data: Option<StixObject>,
}

impl Row {
    fn set_text(&mut self, col: Col, s: &str) {
        let s = s.trim();
        if s.is_empty() {
            return;
        }
        match col {
            // `Data` holds the STIX object as JSON text; a truncated cell (spreadsheet limits)
            // only loses what it would have added.
            Col::Data => self.data = serde_json::from_str::<StixObject>(s).ok(),
            // `Tags` is a dynamic array; CSV exports render it as JSON.
            Col::Tags if s.starts_with('[') => {
                let joined = serde_json::from_str::<Vec<String>>(s)
                    .map(|t| t.join(","))
                    .unwrap_or_else(|_| s.to_string());
                if !joined.is_empty() {
                    self.put(col, joined);
                }
            }
            _ => self.put(col, s.to_string()),
        }
    }

    fn put(&mut self, col: Col, s: String) {
        if let Some(slot) = self.text.get_mut(col as usize) {
            *slot = Some(s);
        }
    }

    fn get(&self, col: Col) -> Option<&str> {
        self.text.get(col as usize).and_then(|s| s.as_deref())
    }

    fn take(&mut self, col: Col) -> Option<String> {
        self.text.get_mut(col as usize).and_then(Option::take)
    }

    fn date(&self, col: Col) -> Result<Option<Timestamp>, String> {
        match self.get(col) {
            None => Ok(None),
            Some(s) => Timestamp::parse(s)
                .map(Some)
                .ok_or_else(|| format!("{}: invalid timestamp {:?}", col.name(), clip(s, 60))),
        }
    }

    fn flag(&self, col: Col) -> Result<Option<bool>, String> {
        match self.get(col) {
            None => Ok(None),
            Some(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(Some(true)),
            Some(s) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(Some(false)),
            Some(s) => Err(format!("{}: not a boolean: {:?}", col.name(), clip(s, 30))),
        }
    }

    fn confidence(&self) -> Result<Option<f64>, String> {
        match self.get(Col::Confidence) {
            None => Ok(None),
            Some(s) => match s.parse::<f64>() {
                Ok(n) if (0.0..=100.0).contains(&n) => Ok(Some(n)),
                _ => Err(format!("Confidence: not a number 0-100: {:?}", clip(s, 30))),
            },
        }
    }
}

fn process(row: Row, loc: Location, out: &mut Collector) {
    out.begin_object();
    match record(row) {
        Ok(ind) => out.push(ind),
        Err((reason, detail)) => out.skip(loc, reason, detail),
    }
}

/// The keys of a row and the raw value they came from.
struct Found {
    keys: Vec<Key>,
    raw: String,
}

fn record(mut row: Row) -> Result<Indicator, (SkipReason, String)> {
    let bad = |e: String| (SkipReason::BadField, e);
    let time_generated = row.date(Col::TimeGenerated).map_err(bad)?;
    let modified_col = row.date(Col::Modified).map_err(bad)?;
    let created = row.date(Col::Created).map_err(bad)?;
    let valid_from = row.date(Col::ValidFrom).map_err(bad)?;
    let valid_until = row.date(Col::ValidUntil).map_err(bad)?;
    let is_active = row.flag(Col::IsActive).map_err(bad)?;
    let is_deleted = row.flag(Col::IsDeleted).map_err(bad)?;
    let revoked = row.flag(Col::Revoked).map_err(bad)?;
    let confidence = row.confidence().map_err(bad)?;

    let observable = match (row.get(Col::ObservableKey), row.get(Col::ObservableValue)) {
        (key, Some(value)) => Some((key.unwrap_or(""), value)),
        _ => None,
    };
    let mut found = None;
    let mut kql_kind = None;
    if let Some((key, value)) = observable {
        kql_kind = observable_kind(key);
        if let Some(kind) = kql_kind {
            if let Ok(k) = Key::parse_as(kind, value) {
                found = Some(Found {
                    keys: vec![k],
                    raw: value.to_string(),
                });
            }
        }
    }
    let mut why_not = (
        SkipReason::MissingValue,
        "no ObservableValue or Pattern".into(),
    );
    if found.is_none() {
        let pattern_type = row
            .get(Col::PatternType)
            .or_else(|| row.data.as_ref().and_then(|d| d.pattern_type.as_str()));
        let pattern_text = row
            .get(Col::Pattern)
            .or_else(|| row.data.as_ref().and_then(|d| d.pattern.as_str()));
        match (pattern_type, pattern_text) {
            (_, None) => {}
            (Some(t), Some(_)) if !t.eq_ignore_ascii_case("stix") => {
                why_not = (
                    SkipReason::NotStixPattern,
                    format!("PatternType {}", clip(t, 40)),
                );
            }
            (_, Some(p)) => match from_pattern(p) {
                Ok(f) => found = Some(f),
                Err(e) => why_not = e,
            },
        }
    }
    let (keys, raw) = match found {
        Some(f) => (f.keys, f.raw),
        // A row about an observable stays, without keys, for the KQL-exact mode.
        None if observable.is_some() => (
            Vec::new(),
            observable.map(|(_, v)| v.to_string()).unwrap_or_default(),
        ),
        None => return Err(why_not),
    };
    let mut ind = match keys.split_first() {
        Some((first, rest)) => {
            let mut ind = Indicator::for_key(first.clone(), &raw, Origin::SentinelStix);
            ind.keys.extend(rest.iter().cloned());
            ind
        }
        None => {
            let mut ind = Indicator {
                raw_value: raw.clone(),
                origin: Origin::SentinelStix,
                ..Indicator::default()
            };
            match kql_kind {
                Some(Kind::Ipv4 | Kind::Ipv6) => ind.kql_network_ip = raw,
                Some(Kind::Domain) => ind.kql_domain_name = raw,
                _ => {}
            }
            ind
        }
    };
    let data = row.data.take();
    let from_data =
        |f: fn(&StixObject) -> Option<&str>| data.as_ref().and_then(f).unwrap_or("").to_string();
    ind.id = row
        .take(Col::Id)
        .unwrap_or_else(|| from_data(|d| d.id.as_str()));
    ind.name = row
        .take(Col::Name)
        .unwrap_or_else(|| from_data(|d| d.name.as_str()));
    ind.description = row
        .take(Col::Description)
        .unwrap_or_else(|| from_data(|d| d.description.as_str()));
    ind.created_by_ref = from_data(|d| d.created_by_ref.as_str());
    ind.threat_type = data
        .as_ref()
        .map(StixObject::threat_type)
        .unwrap_or_default();
    ind.tags = row.take(Col::Tags).unwrap_or_default();
    ind.source = row.take(Col::SourceSystem).unwrap_or_default();
    ind.confidence = confidence;
    ind.valid_from = valid_from;
    ind.expiration = valid_until;
    ind.modified = time_generated.or(modified_col).or(created);
    ind.active = match (is_active, is_deleted, revoked) {
        (None, None, None) => None,
        (a, d, r) => Some(a.unwrap_or(true) && !d.unwrap_or(false) && !r.unwrap_or(false)),
    };
    Ok(ind)
}

/// The kind an `ObservableKey` names: a STIX path (`ipv4-addr:value`,
/// `file:hashes.'SHA-256'`), or a bare object type (`ipv4-addr`, `url`) as some connectors
/// write it.
fn observable_kind(key: &str) -> Option<Kind> {
    let key = key.trim();
    let path = if key.contains(':') {
        key.to_string()
    } else {
        match key.to_ascii_lowercase().as_str() {
            t @ ("ipv4-addr" | "ipv6-addr" | "domain-name" | "url" | "email-addr") => {
                format!("{t}:value")
            }
            _ => return None,
        }
    };
    match pattern::parse(&format!("[{path} = '']")) {
        Ok(c) if c.len() == 1 => c.first().map(|c| c.kind),
        _ => None,
    }
}

/// All keys of a pattern; any invalid value makes the whole pattern unusable.
fn from_pattern(p: &str) -> Result<Found, (SkipReason, String)> {
    let comparisons = pattern::parse(p).map_err(|e| pattern_skip(&e, p))?;
    let mut keys: Vec<Key> = Vec::with_capacity(comparisons.len());
    let mut raw = None;
    for c in comparisons {
        let key = Key::parse_as(c.kind, &c.value).map_err(|e| {
            (
                SkipReason::BadValue(e),
                format!("{} value {:?}", c.kind, clip(&c.value, 100)),
            )
        })?;
        if !keys.contains(&key) {
            keys.push(key);
        }
        raw.get_or_insert(c.value);
    }
    match raw {
        Some(raw) => Ok(Found { keys, raw }),
        None => Err((SkipReason::MissingValue, "pattern has no comparison".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{finalize, IngestOptions, Problem};
    use super::*;
    use crate::indicator::KeyError;
    use std::collections::BTreeMap;

    fn data(name: &str) -> Vec<u8> {
        let path = format!("{}/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn run(f: fn(&[u8], &mut Collector) -> Result<(), String>, bytes: &[u8]) -> Collector {
        let mut c = Collector::new();
        c.set_file("test");
        f(bytes, &mut c).expect("parses");
        c
    }

    fn problem<'a>(c: &'a Collector, loc: &Location) -> &'a Problem {
        c.report()
            .problems
            .iter()
            .find(|p| &p.location == loc)
            .unwrap_or_else(|| panic!("no problem at {loc}: {:?}", c.report().problems))
    }

    fn kinds(c: &Collector) -> BTreeMap<Kind, usize> {
        let mut m = BTreeMap::new();
        for i in c.indicators() {
            *m.entry(i.kind()).or_insert(0) += 1;
        }
        m
    }

    fn ts(t: Option<Timestamp>) -> String {
        t.map_or_else(|| "-".into(), |t| t.to_string())
    }

    #[test]
    fn csv_export() {
        let c = run(parse_csv, &data("threatintelindicators.csv"));
        let r = c.report();
        // 12 rows: 9 with keys, 1 kept without keys (file:name observable), 2 skipped.
        assert_eq!(r.read, 12);
        assert_eq!(r.kept, 10);
        assert_eq!(r.unusable, 1);
        let want: BTreeMap<Kind, usize> = [
            (Kind::Ipv4, 3),
            (Kind::Cidr4, 1),
            (Kind::Domain, 2),
            (Kind::Url, 1),
            (Kind::Sha256, 1),
            (Kind::Email, 1),
            (Kind::Unusable, 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(kinds(&c), want);
        // The third row spans lines 4-5 (a newline in Description), so the row with a bad
        // ValidUntil starts on line 13 and the one with only a MATCHES pattern on line 14.
        let p = problem(&c, &Location::Line(13));
        assert_eq!(p.reason, SkipReason::BadField);
        assert!(
            p.detail.starts_with("ValidUntil: invalid timestamp"),
            "{}",
            p.detail
        );
        let p = problem(&c, &Location::Line(14));
        assert_eq!(p.reason, SkipReason::UnsupportedPattern);
        assert!(p.detail.starts_with("MATCHES: "), "{}", p.detail);

        let inds: Vec<&Indicator> = c.indicators().collect();
        // Row 2: the portal's US date format, IsActive/Revoked as True/False.
        let first = inds[0];
        assert_eq!(first.id, "indicator--3f9c1e2a-6b1d-4c55-9f0e-2d7a1b000001");
        assert_eq!(first.origin, Origin::SentinelStix);
        assert_eq!(first.keys[0].value_string(), "203.0.113.7");
        assert_eq!(first.kql_network_ip, "203.0.113.7");
        assert_eq!(ts(first.modified), "2026-03-01T08:00:05.123Z");
        assert_eq!(ts(first.valid_from), "2026-01-10T00:00:00Z");
        assert_eq!(ts(first.expiration), "2026-12-31T00:00:00Z");
        assert_eq!(first.confidence, Some(85.0));
        assert_eq!(first.active, Some(true));
        assert_eq!(first.tags, "c2,examplerat");
        assert_eq!(first.threat_type, "malicious-activity,command-and-control");
        assert_eq!(
            first.created_by_ref,
            "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
        );
        assert_eq!(first.name, "C2 server");
        assert_eq!(first.source, "TAXII");
        // The same id republished later: a second record, now deleted.
        let again = inds[1];
        assert_eq!(again.id, first.id);
        assert_eq!(again.active, Some(false));
        // Domain value normalized, raw kept for KQL.
        let dom = inds
            .iter()
            .find(|i| i.kql_domain_name == "Update.Evil.Example")
            .expect("domain row");
        assert_eq!(dom.keys[0].value_string(), "update.evil.example");
        // Value from the Pattern column only: an OR chain gives one record with both keys.
        let chain = inds
            .iter()
            .find(|i| i.id == "indicator--3f9c1e2a-6b1d-4c55-9f0e-2d7a1b000007")
            .expect("pattern row");
        assert_eq!(
            chain.keys.iter().map(Key::value_string).collect::<Vec<_>>(),
            ["192.0.2.51", "192.0.2.52"]
        );
        // Value from Data.pattern only.
        assert!(inds
            .iter()
            .any(|i| i.keys.first().map(Key::value_string).as_deref()
                == Some("https://login.evil.example/owa")));
        // The file:name observable is kept without keys.
        let unusable = inds.iter().find(|i| i.keys.is_empty()).expect("unusable");
        assert_eq!(unusable.raw_value, "invoice_2026.pdf.exe");
        assert_eq!(unusable.kql_network_ip, "");

        let (kept, rep) = finalize(
            c,
            &IngestOptions {
                latest: true,
                ..IngestOptions::default()
            },
        );
        assert_eq!(rep.superseded, 1);
        assert_eq!(rep.inactive, 1);
        assert_eq!(kept.len(), 8);
    }

    #[test]
    fn json_export() {
        let c = run(parse_json, &data("threatintelindicators.json"));
        let r = c.report();
        assert_eq!(r.read, 6);
        assert_eq!(r.kept, 4);
        assert_eq!(r.unusable, 1);
        let p = problem(&c, &Location::Element(5));
        assert_eq!(p.reason, SkipReason::BadField);
        assert!(p.detail.starts_with("TimeGenerated"), "{}", p.detail);
        let p = problem(&c, &Location::Element(6));
        assert_eq!(p.reason, SkipReason::MissingValue);
        let inds: Vec<&Indicator> = c.indicators().collect();
        assert_eq!(inds[0].keys[0].value_string(), "2001:db8:bad::/48");
        assert_eq!(inds[0].kql_network_ip, "2001:db8:bad::/48");
        assert_eq!(inds[0].tags, "scanner,ipv6");
        assert_eq!(inds[0].threat_type, "anomalous-activity");
        assert_eq!(inds[0].confidence, Some(40.0));
        assert_eq!(ts(inds[0].modified), "2026-03-03T10:00:00.1234567Z");
        assert_eq!(inds[0].active, Some(true));
        // Data given as JSON text instead of an object, bare ObservableKey.
        assert_eq!(inds[1].keys[0].value_string(), "mal.evil.example");
        assert_eq!(inds[1].threat_type, "malicious-activity");
        assert_eq!(
            inds[1].id,
            "indicator--9d41c7a0-0c55-4b7e-8a11-5a0c00000002"
        );
        // Data's id and name stand in for missing columns.
        assert_eq!(inds[2].keys[0].kind(), Kind::Md5);
        assert_eq!(inds[2].name, "Loader hash");
        // An invalid domain observable: kept without keys, raw value in DomainName.
        assert!(inds[3].keys.is_empty());
        assert_eq!(inds[3].kql_domain_name, "bad domain.example");
        assert_eq!(inds[3].active, Some(false));
    }

    #[test]
    fn ndjson_and_partial_columns() {
        let nd = concat!(
            "{\"ObservableKey\":\"url:value\",\"ObservableValue\":\"HTTP://X.Example/a\",\"TimeGenerated\":\"2026-03-01T00:00:00Z\"}\n",
            "{\"ObservableKey\":\"url:value\",\n",
            "\n",
            "{\"Pattern\":\"[email-addr:value = 'a@evil.example']\"}\n",
            "[1]\n",
        );
        let c = run(parse_json, nd.as_bytes());
        assert_eq!(c.report().read, 4);
        assert_eq!(c.report().kept, 2);
        assert_eq!(
            problem(&c, &Location::Line(2)).reason,
            SkipReason::Malformed
        );
        assert_eq!(
            problem(&c, &Location::Line(5)).reason,
            SkipReason::Malformed
        );
        // A CSV with just two columns, odd header spellings, a short row.
        let csv = "observable_value,OBSERVABLE KEY,TimeGenerated [UTC]\n\
                   1.2.3.4,ipv4-addr:value,\"11/28/2026, 4:48:49.123 PM\"\n\
                   evil.example\n\
                   5.6.7.8,ipv4-addr:value,yesterday\n";
        let c = run(parse_csv, csv.as_bytes());
        assert_eq!(c.report().read, 3);
        assert_eq!(c.report().kept, 2);
        // No ObservableKey: the value cannot be typed, kept without keys.
        assert_eq!(c.report().unusable, 1);
        let first = c.indicators().next().expect("row");
        assert_eq!(ts(first.modified), "2026-11-28T16:48:49.123Z");
        assert_eq!(first.active, None);
        let p = problem(&c, &Location::Line(4));
        assert_eq!(p.reason, SkipReason::BadField);
    }

    #[test]
    fn not_an_export() {
        let mut c = Collector::new();
        assert!(parse_csv(b"TenantId,TimeGenerated\nx,2026-01-01\n", &mut c)
            .unwrap_err()
            .contains("no Pattern"));
        assert!(parse_json(b"[{\"TenantId\":\"x\"}]", &mut c).is_err());
        assert!(parse_json(b"42", &mut c).is_err());
        assert!(parse_json(b"[{\"Pattern\": ", &mut c)
            .unwrap_err()
            .contains("line 1 column"));
        assert_eq!(c.report().read, 0);
        assert!(parse_json(b"[]", &mut c).is_ok());
    }

    #[test]
    fn observable_keys() {
        assert_eq!(observable_kind("ipv4-addr:value"), Some(Kind::Ipv4));
        assert_eq!(observable_kind("ipv4-addr"), Some(Kind::Ipv4));
        assert_eq!(observable_kind("file:hashes.'SHA-256'"), Some(Kind::Sha256));
        assert_eq!(observable_kind("file:hashes.MD5"), Some(Kind::Md5));
        assert_eq!(observable_kind("email-addr:value"), Some(Kind::Email));
        assert_eq!(observable_kind("file:name"), None);
        assert_eq!(observable_kind("x'] OR ['"), None);
        assert_eq!(observable_kind(""), None);
        assert_eq!(
            record(Row::default()).map_err(|e| e.0),
            Err(SkipReason::MissingValue)
        );
        let _ = KeyError::Empty;
    }

    #[test]
    fn detected_and_routed_by_ingest() {
        use super::super::{ingest, Format};
        for (f, format, read) in [
            ("threatintelindicators.csv", Format::SentinelCsv, 12),
            ("stix-bundle.json", Format::Stix, 13),
            ("taxii-envelope.json", Format::Stix, 3),
            ("stix-objects.ndjson", Format::Stix, 5),
        ] {
            let mut c = Collector::new();
            let got = ingest(&data(f), f, &IngestOptions::default(), &mut c);
            assert_eq!(got, Ok(format), "{f}");
            assert_eq!(c.report().read, read, "{f}");
        }
        // A real JSON export carries Log Analytics' `Type` column next to `Id` and `Created`;
        // detection must still route it here by its table columns.
        let f = "threatintelindicators.json";
        let mut c = Collector::new();
        assert_eq!(
            ingest(&data(f), f, &IngestOptions::default(), &mut c),
            Ok(Format::SentinelJson)
        );
        assert_eq!(c.report().read, 6);
    }

    #[test]
    fn never_panics_on_garbage() {
        for f in ["threatintelindicators.csv", "threatintelindicators.json"] {
            let bytes = data(f);
            let mut st = 0x1234_5678_9abc_def1_u64;
            for cut in (0..bytes.len()).step_by(11) {
                let mut c = Collector::new();
                let _ = parse_csv(&bytes[..cut], &mut c);
                let _ = parse_json(&bytes[..cut], &mut c);
            }
            for _ in 0..1000 {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                let mut b = bytes.clone();
                let at = (st as usize) % b.len().max(1);
                if let Some(x) = b.get_mut(at) {
                    *x = (st >> 40) as u8;
                }
                let mut c = Collector::new();
                let _ = parse_csv(&b, &mut c);
                let _ = parse_json(&b, &mut c);
            }
        }
    }
}
