//! Legacy Microsoft Sentinel `ThreatIntelligenceIndicator` exports (CSV, a JSON array, NDJSON,
//! or a Log Analytics API response), and the column mapping the generic CSV reader shares.
//!
//! This is the table Microsoft's KQL "TI map" rules join against, so the parser keeps every row
//! as its own record, including rows whose observable columns are empty or invalid, because KQL
//! still sees them. Each record keeps the raw `NetworkIP` and `DomainName` strings verbatim for
//! the KQL-exact mode. The normalized keys are derived the way those rules pick values: the
//! indicator IP is the first non-empty of `NetworkIP`, `NetworkDestinationIP`,
//! `NetworkSourceIP`. A row is skipped only when a date, score or flag cannot be read. The
//! problem names the line (or JSON element) and the column.

use super::detect::norm_header;
use super::{Collector, Location, SkipReason};
use crate::indicator::{normalize_hash, parse_ip_net, Indicator, Key, KeyError, Kind, Origin};
use crate::time::Timestamp;
use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A column the Sentinel and generic CSV readers understand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    NetworkIp,
    NetworkSourceIp,
    NetworkDestinationIp,
    NetworkCidrBlock,
    DomainName,
    Url,
    EmailSenderAddress,
    FileHashValue,
    FileHashType,
    ConfidenceScore,
    Description,
    ThreatType,
    ExpirationDateTime,
    Active,
    IndicatorId,
    TimeGenerated,
    FirstSeen,
    Tags,
    Tlp,
    SourceSystem,
}

/// Number of [`Field`] variants.
const FIELD_COUNT: usize = 20;
const _: () = assert!(Field::SourceSystem as usize + 1 == FIELD_COUNT);

impl Field {
    /// The field a normalized header (see `norm_header`) names, with a rank. Rank 0 is the
    /// Sentinel column name and higher ranks are looser aliases from other feeds. When two
    /// columns name one field, the lower rank wins, and on a tie the first column wins.
    pub(crate) fn from_header(norm: &str) -> Option<(Field, u8)> {
        use Field::*;
        Some(match norm {
            "networkip" => (NetworkIp, 0),
            "networksourceip" => (NetworkSourceIp, 0),
            "networkdestinationip" => (NetworkDestinationIp, 0),
            "networkcidrblock" => (NetworkCidrBlock, 0),
            "domainname" => (DomainName, 0),
            "url" => (Url, 0),
            "emailsenderaddress" => (EmailSenderAddress, 0),
            "filehashvalue" => (FileHashValue, 0),
            "filehashtype" => (FileHashType, 0),
            "confidencescore" => (ConfidenceScore, 0),
            "confidence" => (ConfidenceScore, 1),
            "description" => (Description, 0),
            "comment" | "comments" => (Description, 1),
            "threattype" => (ThreatType, 0),
            "threat" | "threatcategory" => (ThreatType, 1),
            "expirationdatetime" => (ExpirationDateTime, 0),
            "expiration" | "expirationdate" | "expiry" | "expires" | "expiresat" | "validuntil"
            | "validto" => (ExpirationDateTime, 1),
            "active" => (Active, 0),
            "isactive" => (Active, 1),
            "indicatorid" => (IndicatorId, 0),
            "iocid" | "id" => (IndicatorId, 1),
            "timegenerated" => (TimeGenerated, 0),
            "lastseen" | "lastupdated" | "lastmodified" | "modified" | "updated" | "updatedat" => {
                (TimeGenerated, 1)
            }
            "firstseen" | "validfrom" | "created" | "createdat" | "dateadded" => (FirstSeen, 0),
            "tags" => (Tags, 0),
            "labels" => (Tags, 1),
            "trafficlightprotocollevel" => (Tlp, 0),
            "tlp" | "tlplevel" => (Tlp, 1),
            "sourcesystem" => (SourceSystem, 0),
            "source" | "feedname" => (SourceSystem, 1),
            _ => return None,
        })
    }
}

/// One source row's cells, by [`Field`]: the column name as written (for messages) and the text.
pub(crate) struct Cells<'a> {
    slots: [Option<(&'a str, Cow<'a, str>, u8)>; FIELD_COUNT],
}

impl<'a> Cells<'a> {
    fn new() -> Cells<'a> {
        Cells {
            slots: std::array::from_fn(|_| None),
        }
    }

    /// Offers a cell; it takes the slot unless a lower-ranked column already holds it.
    fn offer(&mut self, field: Field, rank: u8, column: &'a str, value: Cow<'a, str>) {
        let slot = &mut self.slots[field as usize];
        let better = match slot {
            Some(s) => rank < s.2,
            None => true,
        };
        if better {
            *slot = Some((column, value, rank));
        }
    }

    /// The cell's text, verbatim; `None` when the row has no such column.
    pub(crate) fn get(&self, field: Field) -> Option<&str> {
        self.slots[field as usize].as_ref().map(|s| s.1.as_ref())
    }

    /// The cell with its column name, when present and not blank.
    fn non_blank(&self, field: Field) -> Option<(&str, &str)> {
        self.slots[field as usize]
            .as_ref()
            .map(|s| (s.0, s.1.as_ref()))
            .filter(|(_, v)| !v.trim().is_empty())
    }

    fn time(&self, field: Field) -> Result<Option<Timestamp>, String> {
        match self.non_blank(field) {
            None => Ok(None),
            Some((col, v)) => Timestamp::parse(v)
                .map(Some)
                .ok_or_else(|| format!("{col}: invalid date {v:?}")),
        }
    }

    fn flag(&self, field: Field) -> Result<Option<bool>, String> {
        match self.non_blank(field) {
            None => Ok(None),
            Some((col, v)) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| format!("{col}: not a boolean {v:?}")),
        }
    }

    fn real(&self, field: Field) -> Result<Option<f64>, String> {
        match self.non_blank(field) {
            None => Ok(None),
            Some((col, v)) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| format!("{col}: not a number {v:?}")),
        }
    }

    fn text(&self, field: Field) -> String {
        self.get(field).unwrap_or("").to_string()
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("true") || v == "1" {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") || v == "0" {
        Some(false)
    } else {
        None
    }
}

/// `Tags` text: a JSON array of strings (`["a","b"]`) becomes `a,b`; anything else is kept.
fn tags_text(v: &str) -> String {
    let t = v.trim();
    if t.starts_with('[') {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(t) {
            return join_scalars(&items).unwrap_or_else(|| t.to_string());
        }
    }
    v.to_string()
}

/// Scalars of a JSON array joined with `,`, or `None` when an element is an array or object.
fn join_scalars(items: &[Value]) -> Option<String> {
    let mut parts = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(s) => parts.push(s.clone()),
            Value::Null => {}
            Value::Bool(_) | Value::Number(_) => parts.push(item.to_string()),
            Value::Array(_) | Value::Object(_) => return None,
        }
    }
    Some(parts.join(","))
}

/// Fills the metadata of `ind` (dates, flag, score, id, texts) from a row's cells. Empty cells
/// leave the field as is (`None`/`""`), which is KQL's null for datetimes.
///
/// # Errors
/// A detail naming the column and value when a date, `Active` or `ConfidenceScore` is unreadable.
pub(crate) fn apply_meta(cells: &Cells<'_>, ind: &mut Indicator) -> Result<(), String> {
    ind.modified = cells.time(Field::TimeGenerated)?;
    ind.expiration = cells.time(Field::ExpirationDateTime)?;
    ind.valid_from = cells.time(Field::FirstSeen)?;
    ind.active = cells.flag(Field::Active)?;
    ind.confidence = cells.real(Field::ConfidenceScore)?;
    ind.id = cells.text(Field::IndicatorId);
    ind.description = cells.text(Field::Description);
    ind.threat_type = cells.text(Field::ThreatType);
    ind.tlp = cells.text(Field::Tlp);
    ind.source = cells.text(Field::SourceSystem);
    ind.tags = cells.get(Field::Tags).map(tags_text).unwrap_or_default();
    Ok(())
}

/// The hash algorithm a type name declares explicitly (`MD5`, `SHA-1`, `sha256`,
/// `FileHash-SHA512`, ...). Vague names such as `hash` or `filehash` declare none.
pub(crate) fn declared_hash_kind(name: &str) -> Option<Kind> {
    let n: String = name
        .trim()
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' ' | ':'))
        .flat_map(char::to_lowercase)
        .collect();
    match n.as_str() {
        "md5" | "filehashmd5" => Some(Kind::Md5),
        "sha1" | "filehashsha1" => Some(Kind::Sha1),
        "sha256" | "filehashsha256" => Some(Kind::Sha256),
        "sha512" | "filehashsha512" => Some(Kind::Sha512),
        _ => None,
    }
}

/// A hash key whose algorithm, when declared, must agree with the digest length.
///
/// # Errors
/// [`KeyError::BadHash`] for a bad digest or a length that contradicts `declared`.
pub(crate) fn hash_key(value: &str, declared: Option<Kind>) -> Result<Key, KeyError> {
    let (kind, hex) = normalize_hash(value)?;
    if declared.is_some_and(|d| d != kind) {
        return Err(KeyError::BadHash);
    }
    Ok(Key::Str(kind, hex))
}

/// Builds the record of one `ThreatIntelligenceIndicator` row.
///
/// # Errors
/// The [`apply_meta`] detail when a date, flag or score is unreadable.
fn sentinel_row(cells: &Cells<'_>) -> Result<Indicator, String> {
    let mut ind = Indicator {
        origin: Origin::SentinelLegacy,
        kql_network_ip: cells.text(Field::NetworkIp),
        kql_domain_name: cells.text(Field::DomainName),
        ..Indicator::default()
    };
    apply_meta(cells, &mut ind)?;

    let nonempty = |f: Field| cells.get(f).filter(|v| !v.is_empty());

    // Microsoft's rules: the first non-empty of the three IP columns, valid or not.
    let ip = [
        Field::NetworkIp,
        Field::NetworkDestinationIp,
        Field::NetworkSourceIp,
    ]
    .into_iter()
    .find_map(nonempty);
    let mut sources: Vec<(&str, Result<Key, KeyError>)> = Vec::new();
    if let Some(raw) = ip {
        sources.push((raw, parse_ip_net(raw).map(Key::Ip)));
    }
    if let Some(raw) = nonempty(Field::NetworkCidrBlock) {
        sources.push((raw, parse_ip_net(raw).map(Key::Ip)));
    }
    for (field, kind) in [
        (Field::DomainName, Kind::Domain),
        (Field::Url, Kind::Url),
        (Field::EmailSenderAddress, Kind::Email),
    ] {
        if let Some(raw) = nonempty(field) {
            sources.push((raw, Key::parse_as(kind, raw)));
        }
    }
    if let Some(raw) = nonempty(Field::FileHashValue) {
        let key = match cells.get(Field::FileHashType).map(str::trim) {
            None | Some("") => hash_key(raw, None),
            Some(t) => match declared_hash_kind(t) {
                Some(k) => hash_key(raw, Some(k)),
                // An algorithm the index has no kind for (ssdeep, imphash, ...).
                None => Err(KeyError::BadHash),
            },
        };
        sources.push((raw, key));
    }
    let mut keys: Vec<Key> = Vec::new();
    let mut first_raw: Option<&str> = None;
    for (raw, key) in &sources {
        if let Ok(k) = key {
            first_raw.get_or_insert(raw);
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    // No key: the first non-empty observable cell, so the record still shows what the row held.
    let any_raw = sources.first().map(|s| s.0);
    ind.raw_value = first_raw.or(any_raw).unwrap_or("").to_string();
    ind.keys = keys;
    Ok(ind)
}

/// Strips a UTF-8 byte order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
}

/// A CSV reader over a whole file (BOM already stripped): header row, records of any length
/// (callers check them).
pub(crate) fn csv_reader(input: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input)
}

/// The 1-based line a record starts on. csv's position can point at the `\n` left over from
/// the previous record's CRLF, or at blank lines it skips, so those are stepped over here.
fn start_line(input: &[u8], pos: Option<&csv::Position>) -> u64 {
    let Some(pos) = pos else { return 0 };
    let mut line = pos.line();
    let from = usize::try_from(pos.byte()).unwrap_or(usize::MAX);
    for &b in input.get(from..).unwrap_or(&[]) {
        match b {
            b'\n' => line += 1,
            b'\r' => {}
            _ => break,
        }
    }
    line
}

/// The header row's names, as written.
///
/// # Errors
/// When the file has no header row or it is not UTF-8.
pub(crate) fn csv_headers(rdr: &mut csv::Reader<&[u8]>) -> Result<Vec<String>, String> {
    let headers = rdr
        .headers()
        .map_err(|e| format!("unreadable CSV header: {e}"))?;
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err("no CSV header row".into());
    }
    Ok(headers.iter().map(str::to_string).collect())
}

/// The next record and the line it starts on; `Ok(None)` at the end. A record that is not
/// UTF-8 or whose length differs from the header's is skipped (as malformed) here.
///
/// # Errors
/// A reader error that leaves no way to continue.
pub(crate) fn next_record(
    input: &[u8],
    rdr: &mut csv::Reader<&[u8]>,
    record: &mut csv::StringRecord,
    columns: usize,
    out: &mut Collector,
) -> Result<Option<u64>, String> {
    loop {
        match rdr.read_record(record) {
            Ok(false) => return Ok(None),
            Ok(true) => {
                let line = start_line(input, record.position());
                if record.len() == columns {
                    return Ok(Some(line));
                }
                out.begin_object();
                out.skip(
                    Location::Line(line),
                    SkipReason::Malformed,
                    format!("{} fields where the header has {columns}", record.len()),
                );
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { pos, err } => {
                    let line = start_line(input, pos.as_ref());
                    let detail = format!("not UTF-8 ({err})");
                    out.begin_object();
                    out.skip(Location::Line(line), SkipReason::Malformed, detail);
                }
                _ => return Err(format!("unreadable CSV: {e}")),
            },
        }
    }
}

/// Which CSV column feeds each [`Field`].
pub(crate) struct ColumnMap {
    slots: [Option<usize>; FIELD_COUNT],
}

impl ColumnMap {
    /// Maps header names to fields, leaving out the columns in `exclude`.
    pub(crate) fn new(headers: &[String], exclude: &[usize]) -> ColumnMap {
        let mut slots = [None; FIELD_COUNT];
        let mut ranks = [u8::MAX; FIELD_COUNT];
        for (i, h) in headers.iter().enumerate() {
            if exclude.contains(&i) {
                continue;
            }
            if let Some((f, rank)) = Field::from_header(&norm_header(h)) {
                let at = f as usize;
                if slots[at].is_none() || rank < ranks[at] {
                    slots[at] = Some(i);
                    ranks[at] = rank;
                }
            }
        }
        ColumnMap { slots }
    }

    /// Whether no column maps to a field.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The cells of one record.
    pub(crate) fn cells<'a>(
        &self,
        headers: &'a [String],
        record: &'a csv::StringRecord,
    ) -> Cells<'a> {
        let mut cells = Cells::new();
        for (at, slot) in self.slots.iter().enumerate() {
            if let Some(i) = *slot {
                if let (Some(name), Some(v)) = (headers.get(i), record.get(i)) {
                    cells.slots[at] = Some((name.as_str(), Cow::Borrowed(v), 0));
                }
            }
        }
        cells
    }
}

/// Parses a `ThreatIntelligenceIndicator` CSV export: one record per row, each
/// [`Origin::SentinelLegacy`]. Any subset of the table's columns is accepted, and header names
/// are matched loosely (`TimeGenerated [UTC]`, `networkip`).
///
/// # Errors
/// When the file has no header row or no column of the table at all, or cannot be read.
pub fn parse_csv(bytes: &[u8], out: &mut Collector) -> Result<(), String> {
    let input = strip_bom(bytes);
    let mut rdr = csv_reader(input);
    let headers = csv_headers(&mut rdr)?;
    let map = ColumnMap::new(&headers, &[]);
    if map.is_empty() {
        return Err(format!(
            "no ThreatIntelligenceIndicator column in the header (columns: {})",
            headers.join(", ")
        ));
    }
    let mut record = csv::StringRecord::new();
    while let Some(line) = next_record(input, &mut rdr, &mut record, headers.len(), out)? {
        out.begin_object();
        let cells = map.cells(&headers, &record);
        match sentinel_row(&cells) {
            Ok(ind) => out.push(ind),
            Err(detail) => out.skip(Location::Line(line), SkipReason::BadField, detail),
        }
    }
    Ok(())
}

/// A JSON value as cell text: strings verbatim, `null` as `""` (KQL strings are never null),
/// arrays of scalars joined with `,`, other values as JSON text.
fn cell_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Null => Cow::Borrowed(""),
        Value::Array(items) => Cow::Owned(join_scalars(items).unwrap_or_else(|| v.to_string())),
        _ => Cow::Owned(v.to_string()),
    }
}

fn object_cells(obj: &Map<String, Value>) -> Cells<'_> {
    let mut cells = Cells::new();
    for (k, v) in obj {
        if let Some((f, rank)) = Field::from_header(&norm_header(k)) {
            cells.offer(f, rank, k, cell_text(v));
        }
    }
    cells
}

/// Turns one JSON row into a record (or a skip) at `loc`.
fn json_row(v: &Value, loc: Location, out: &mut Collector) {
    out.begin_object();
    let Value::Object(obj) = v else {
        out.skip(loc, SkipReason::Malformed, "not a JSON object");
        return;
    };
    match sentinel_row(&object_cells(obj)) {
        Ok(ind) => out.push(ind),
        Err(detail) => out.skip(loc, SkipReason::BadField, detail),
    }
}

/// Streams the elements of a top-level JSON array into the collector.
struct RowsVisitor<'c> {
    out: &'c mut Collector,
}

impl<'de> Visitor<'de> for RowsVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0u64;
        while let Some(v) = seq.next_element::<Value>()? {
            n += 1;
            json_row(&v, Location::Element(n), self.out);
        }
        Ok(())
    }
}

/// A Log Analytics query response: `{"tables":[{"columns":[{"name":..}],"rows":[[..]]}]}`.
fn tables_rows(tables: &[Value], out: &mut Collector) -> Result<(), String> {
    let mut n = 0u64;
    for table in tables {
        let (Some(Value::Array(columns)), Some(Value::Array(rows))) =
            (table.get("columns"), table.get("rows"))
        else {
            return Err("a `tables` entry without `columns` and `rows` arrays".into());
        };
        let names: Vec<&str> = columns
            .iter()
            .map(|c| c.get("name").and_then(Value::as_str).unwrap_or(""))
            .collect();
        let fields: Vec<Option<(Field, u8)>> = names
            .iter()
            .map(|c| Field::from_header(&norm_header(c)))
            .collect();
        for row in rows {
            n += 1;
            out.begin_object();
            let loc = Location::Element(n);
            let Value::Array(values) = row else {
                out.skip(loc, SkipReason::Malformed, "a row that is not an array");
                continue;
            };
            if values.len() != names.len() {
                let detail = format!("{} values for {} columns", values.len(), names.len());
                out.skip(loc, SkipReason::Malformed, detail);
                continue;
            }
            let mut cells = Cells::new();
            for ((name, field), v) in names.iter().zip(&fields).zip(values) {
                if let Some((f, rank)) = *field {
                    cells.offer(f, rank, name, cell_text(v));
                }
            }
            match sentinel_row(&cells) {
                Ok(ind) => out.push(ind),
                Err(detail) => out.skip(loc, SkipReason::BadField, detail),
            }
        }
    }
    Ok(())
}

/// NDJSON: one row object per line. A bad line is skipped and the rest continue; when no line
/// is a JSON object the document is rejected with `whole_error`.
fn ndjson(bytes: &[u8], out: &mut Collector, whole_error: &str) -> Result<(), String> {
    let lines = || {
        bytes
            .split(|&b| b == b'\n')
            .enumerate()
            .filter_map(|(i, l)| {
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                (!l.trim_ascii().is_empty()).then_some((i as u64 + 1, l))
            })
    };
    let is_object = |l: &[u8]| {
        l.trim_ascii().starts_with(b"{") && serde_json::from_slice::<IgnoredAny>(l).is_ok()
    };
    if !lines().any(|(_, l)| is_object(l)) {
        return Err(format!("invalid JSON: {whole_error}"));
    }
    for (n, l) in lines() {
        match serde_json::from_slice::<Value>(l) {
            Ok(v) => json_row(&v, Location::Line(n), out),
            Err(e) => {
                out.begin_object();
                out.skip(Location::Line(n), SkipReason::Malformed, e.to_string());
            }
        }
    }
    Ok(())
}

/// Parses a `ThreatIntelligenceIndicator` JSON export: an array of row objects, NDJSON (one row
/// per line), a single row object, or a Log Analytics API response (`{"value":[..]}` or
/// `{"tables":[{"columns":..,"rows":..}]}`). Problems are located by array element, by NDJSON
/// line, or by row number across tables.
///
/// # Errors
/// When the document as a whole is unusable: broken JSON that is not NDJSON, an array with a
/// syntax error, an NDJSON file without a single valid object line, or a top-level scalar.
pub fn parse_json(bytes: &[u8], out: &mut Collector) -> Result<(), String> {
    let bytes = strip_bom(bytes);
    let Some(start) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err("the file is empty".into());
    };
    if bytes[start] == b'[' {
        // Check the syntax first (allocation-free) so that a broken file adds no records.
        serde_json::from_slice::<IgnoredAny>(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        return de
            .deserialize_seq(RowsVisitor { out })
            .map_err(|e| format!("invalid JSON: {e}"));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(obj)) => {
            if let Some(Value::Array(rows)) = obj.get("value") {
                for (i, v) in rows.iter().enumerate() {
                    json_row(v, Location::Element(i as u64 + 1), out);
                }
                Ok(())
            } else if let Some(Value::Array(tables)) = obj.get("tables") {
                tables_rows(tables, out)
            } else {
                json_row(&Value::Object(obj), Location::Line(1), out);
                Ok(())
            }
        }
        Ok(_) => Err("expected a JSON array, an object or NDJSON".into()),
        Err(e) => ndjson(bytes, out, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{finalize, IngestOptions, Problem, Report};

    const CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sentinel-legacy.csv");
    const JSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sentinel-legacy.json");
    const NDJSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sentinel-legacy.ndjson");

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn run(parse: fn(&[u8], &mut Collector) -> Result<(), String>, bytes: &[u8]) -> Collector {
        let mut c = Collector::new();
        c.set_file("t");
        parse(bytes, &mut c).expect("parses");
        c
    }

    fn keys(ind: &Indicator) -> Vec<String> {
        ind.keys
            .iter()
            .map(|k| format!("{}:{}", k.kind(), k.value_string()))
            .collect()
    }

    fn ts(s: &str) -> Option<Timestamp> {
        Some(Timestamp::parse(s).expect("test date"))
    }

    fn problems(r: &Report) -> Vec<(Location, SkipReason)> {
        r.problems
            .iter()
            .map(|p: &Problem| (p.location.clone(), p.reason))
            .collect()
    }

    #[test]
    fn csv_fixture_rows() {
        let c = run(parse_csv, &read(CSV));
        let r = c.report().clone();
        // 18 data rows on lines 2-20 (one row spans lines 16-17); line 18 (bad
        // ExpirationDateTime) and line 19 (ConfidenceScore "high") are skipped, every other row
        // is kept, and three of those (c3, i9, n14) have no usable key.
        assert_eq!(r.read, 18);
        assert_eq!(r.kept, 16);
        assert_eq!(r.unusable, 3);
        assert_eq!(
            problems(&r),
            vec![
                (Location::Line(18), SkipReason::BadField),
                (Location::Line(19), SkipReason::BadField),
            ]
        );
        assert!(r.problems[0].detail.contains("ExpirationDateTime"));
        assert!(r.problems[0].detail.contains("2024-13-45"));
        assert!(r.problems[1].detail.contains("ConfidenceScore"));
        assert!(r.problems[1].detail.contains("high"));

        let rows: Vec<&Indicator> = c.indicators().collect();
        let by =
            |id: &str| -> Vec<&Indicator> { rows.iter().copied().filter(|i| i.id == id).collect() };
        // Three rows of one indicator; the ISO, 7-digit and portal dates.
        let a = by("indicator--a1");
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|i| keys(i) == ["ipv4:203.0.113.10"]));
        assert_eq!(a[0].modified, ts("2024-03-01T10:00:00Z"));
        assert_eq!(a[1].modified, ts("2024-03-09T10:00:00.1234567Z"));
        assert_eq!(a[2].modified, ts("2024-03-05T09:15:30.5Z"));
        assert_eq!(a[0].tags, "c2,apt");
        assert_eq!(a[0].confidence, Some(80.0));
        assert_eq!(a[1].confidence, Some(85.5));
        assert_eq!(a[0].active, Some(true));
        assert_eq!(a[1].active, Some(true));
        assert_eq!(a[2].active, Some(true));
        assert_eq!(a[0].expiration, ts("2024-06-01T00:00:00Z"));
        assert_eq!(a[2].expiration, ts("2024-06-30T00:00:00Z"));
        assert_eq!(a[0].source, "SecurityGraph");
        assert_eq!(a[0].tlp, "Amber");
        assert_eq!(a[0].threat_type, "C2");
        assert_eq!(a[0].description, "Cobalt Strike team server");
        assert_eq!(a[0].origin, Origin::SentinelLegacy);
        assert_eq!(a[0].raw_value, "203.0.113.10");
        assert_eq!(a[0].kql_network_ip, "203.0.113.10");
        assert_eq!(a[0].kql_domain_name, "");

        // Domain-only rows: empty NetworkIP, max-datetime expiry, then an inactive newer row.
        let b = by("indicator--b2");
        assert_eq!(b.len(), 2);
        assert_eq!(keys(b[0]), ["domain:evil-domain.example"]);
        assert_eq!(b[0].kql_network_ip, "");
        assert_eq!(b[0].kql_domain_name, "Evil-Domain.Example.");
        assert_eq!(b[0].raw_value, "Evil-Domain.Example.");
        assert_eq!(b[0].expiration, Some(Timestamp::MAX));
        assert_eq!(b[1].active, Some(false));
        assert_eq!(b[1].expiration, None);

        // Invalid NetworkIP text: kept, unusable, raw string verbatim (with its spaces).
        let c3 = by("indicator--c3");
        assert_eq!(c3.len(), 1);
        assert!(c3[0].keys.is_empty());
        assert_eq!(c3[0].kind(), Kind::Unusable);
        assert_eq!(c3[0].kql_network_ip, " not-an-ip ");
        assert_eq!(c3[0].raw_value, " not-an-ip ");

        // Uppercase IPv6: the key is canonical, the KQL string is not.
        let d = by("indicator--d4");
        assert_eq!(keys(d[0]), ["ipv6:2001:db8::bad:1"]);
        assert_eq!(d[0].kql_network_ip, "2001:DB8::BAD:1");

        // NetworkDestinationIP only: an IP key, but KQL's NetworkIP stays "".
        let e = by("indicator--e5");
        assert_eq!(keys(e[0]), ["ipv4:198.51.100.7"]);
        assert_eq!(e[0].kql_network_ip, "");
        assert_eq!(e[0].raw_value, "198.51.100.7");

        // An invalid NetworkIP shadows a valid NetworkDestinationIP; the domain still counts.
        let f = by("indicator--f6");
        assert_eq!(keys(f[0]), ["domain:ok.example"]);
        assert_eq!(f[0].kql_network_ip, "999.1.1.1");
        assert_eq!(f[0].raw_value, "ok.example");

        let h = by("indicator--h8");
        assert_eq!(keys(h[0]), [format!("sha256:{}", "ab".repeat(32))]);
        // MD5 declared, 64 digits given: no key.
        let i = by("indicator--i9");
        assert!(i[0].keys.is_empty());
        assert_eq!(i[0].raw_value, "CD".repeat(32));
        assert_eq!(
            keys(by("indicator--j10")[0]),
            ["url:http://evil.example/Path?q=1"]
        );
        assert_eq!(keys(by("indicator--k11")[0]), ["email:phish@evil.example"]);
        assert_eq!(keys(by("indicator--l12")[0]), ["cidr4:10.20.0.0/16"]);
        // The multi-line description row: dates read, tags not JSON.
        let m = by("indicator--m13");
        assert_eq!(m[0].description, "line one\nline two");
        assert_eq!(m[0].tags, "plain tag");
        assert_eq!(keys(m[0]), ["ipv4:192.0.2.1"]);
        // A row whose observable columns are all empty.
        let n = by("indicator--n14");
        assert!(n[0].keys.is_empty());
        assert_eq!(n[0].raw_value, "");
    }

    #[test]
    fn csv_latest() {
        let c = run(parse_csv, &read(CSV));
        let opts = IngestOptions {
            latest: true,
            ..IngestOptions::default()
        };
        let (recs, r) = finalize(c, &opts);
        // a1: 3 rows -> the 2024-03-09 one; b2: newest row is inactive -> dropped.
        assert_eq!(r.superseded, 3);
        assert_eq!(r.inactive, 1);
        assert_eq!(recs.len(), 16 - 3 - 1);
        let a: Vec<&Indicator> = recs.iter().filter(|i| i.id == "indicator--a1").collect();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].modified, ts("2024-03-09T10:00:00.1234567Z"));
        assert!(!recs.iter().any(|i| i.id == "indicator--b2"));
        // Without --latest every row stays.
        let (all, _) = finalize(run(parse_csv, &read(CSV)), &IngestOptions::default());
        assert_eq!(all.len(), 16);
    }

    #[test]
    fn json_fixture() {
        let c = run(parse_json, &read(JSON));
        let r = c.report().clone();
        assert_eq!(r.read, 6);
        assert_eq!(r.kept, 5);
        assert_eq!(r.unusable, 1);
        assert_eq!(
            problems(&r),
            vec![(Location::Element(5), SkipReason::BadField)]
        );
        assert!(r.problems[0].detail.contains("TimeGenerated"));
        let rows: Vec<&Indicator> = c.indicators().collect();
        assert_eq!(keys(rows[0]), ["ipv4:203.0.113.10"]);
        assert_eq!(rows[0].tags, "c2,apt");
        assert_eq!(rows[0].confidence, Some(80.0));
        assert_eq!(rows[0].active, Some(true));
        assert_eq!(rows[0].expiration, None);
        assert_eq!(rows[1].tags, "x,y");
        assert_eq!(rows[1].active, Some(false));
        assert_eq!(rows[1].expiration, Some(Timestamp::MAX));
        assert_eq!(keys(rows[2]), ["domain:evil.example"]);
        assert_eq!(rows[2].kql_network_ip, "");
        assert!(rows[3].keys.is_empty());
        assert_eq!(rows[3].kql_network_ip, "bogus");
        assert_eq!(keys(rows[4]), ["sha1:".to_string() + &"0a".repeat(20)]);
        let (kept, r) = finalize(
            c,
            &IngestOptions {
                latest: true,
                ..IngestOptions::default()
            },
        );
        // Two rows of indicator--a1; the newer one is inactive.
        assert_eq!((r.superseded, r.inactive, kept.len()), (1, 1, 3));
    }

    #[test]
    fn ndjson_fixture() {
        let c = run(parse_json, &read(NDJSON));
        let r = c.report().clone();
        // Lines 1, 2, 5 are rows; line 3 is broken JSON; line 4 is blank; line 6 is an array.
        assert_eq!(r.read, 5);
        assert_eq!(r.kept, 3);
        assert_eq!(
            problems(&r),
            vec![
                (Location::Line(3), SkipReason::Malformed),
                (Location::Line(6), SkipReason::Malformed),
            ]
        );
        let rows: Vec<&Indicator> = c.indicators().collect();
        assert_eq!(keys(rows[0]), ["ipv4:198.51.100.1"]);
        assert_eq!(keys(rows[1]), ["ipv4:198.51.100.2", "domain:two.example"]);
        assert_eq!(rows[1].raw_value, "198.51.100.2");
        assert_eq!(rows[2].modified, ts("2024-03-02T00:00:00Z"));
    }

    #[test]
    fn api_shapes() {
        let odata =
            br#"{"value":[{"NetworkIP":"1.2.3.4","IndicatorId":"x"},{"DomainName":"a.example"}]}"#;
        let c = run(parse_json, odata);
        assert_eq!((c.report().read, c.report().kept), (2, 2));
        let tables = br#"{"tables":[{"name":"PrimaryResult","columns":[
            {"name":"TimeGenerated","type":"datetime"},{"name":"NetworkIP","type":"string"},
            {"name":"Active","type":"bool"},{"name":"ConfidenceScore","type":"real"}],
            "rows":[["2024-01-01T00:00:00Z","1.2.3.4",true,50.5],
                    ["2024-01-02T00:00:00Z","",false,null],
                    ["x"]]}]}"#;
        let c = run(parse_json, tables);
        let r = c.report();
        assert_eq!((r.read, r.kept, r.unusable), (3, 2, 1));
        assert_eq!(
            problems(r),
            vec![(Location::Element(3), SkipReason::Malformed)]
        );
        let rows: Vec<&Indicator> = c.indicators().collect();
        assert_eq!(rows[0].confidence, Some(50.5));
        assert_eq!(rows[1].active, Some(false));
        assert_eq!(rows[1].confidence, None);
        // A single object (one-line NDJSON).
        let c = run(parse_json, br#"{"NetworkIP":"1.2.3.4"}"#);
        assert_eq!(c.report().kept, 1);
    }

    #[test]
    fn unusable_documents() {
        let mut c = Collector::new();
        assert!(parse_json(b"[{\"NetworkIP\":\"1.2.3.4\"}, {", &mut c).is_err());
        assert!(parse_json(b"not json\nat all\n", &mut c).is_err());
        assert!(parse_json(b"  ", &mut c).is_err());
        assert!(parse_json(b"42", &mut c).is_err());
        assert!(parse_json(br#"{"tables":[{"rows":[]}]}"#, &mut c).is_err());
        assert!(parse_csv(b"", &mut c).is_err());
        assert!(parse_csv(b"foo,bar\n1,2\n", &mut c).is_err());
        assert_eq!(c.report().read, 0);
        assert_eq!(c.report().kept, 0);
    }

    #[test]
    fn csv_edge_cases() {
        // BOM, a partial column set, a ragged row, a non-UTF-8 row, CRLF.
        let mut bytes = b"\xef\xbb\xbfDomainName,Active\r\nA.example,1\r\nb.example\r\n".to_vec();
        bytes.extend_from_slice(b"c\xff.example,0\r\n,\r\n");
        let c = run(parse_csv, &bytes);
        let r = c.report();
        assert_eq!((r.read, r.kept, r.unusable), (4, 2, 1));
        assert_eq!(
            problems(r),
            vec![
                (Location::Line(3), SkipReason::Malformed),
                (Location::Line(4), SkipReason::Malformed),
            ]
        );
        let rows: Vec<&Indicator> = c.indicators().collect();
        assert_eq!(keys(rows[0]), ["domain:a.example"]);
        assert_eq!(rows[0].active, Some(true));
        assert_eq!(rows[0].kql_domain_name, "A.example");
        // Header-only file: nothing read, no error.
        let c = run(parse_csv, b"NetworkIP,IndicatorId\n");
        assert_eq!(c.report().read, 0);
        // Bad Active value.
        let c = run(parse_csv, b"NetworkIP,Active\n1.2.3.4,maybe\n");
        assert_eq!(
            problems(c.report()),
            vec![(Location::Line(2), SkipReason::BadField)]
        );
    }

    #[test]
    fn truncated_inputs_never_panic() {
        for path in [CSV, JSON, NDJSON] {
            let bytes = read(path);
            for end in 0..bytes.len() {
                let mut c = Collector::new();
                let _ = parse_csv(&bytes[..end], &mut c);
                let _ = parse_json(&bytes[..end], &mut c);
            }
        }
    }

    #[test]
    fn detected_through_ingest() {
        use crate::ingest::{ingest, Format};
        for (path, format, kept) in [
            (CSV, Format::SentinelCsv, 16),
            (JSON, Format::SentinelJson, 5),
            (NDJSON, Format::SentinelJson, 3),
        ] {
            let mut c = Collector::new();
            let got = ingest(&read(path), path, &IngestOptions::default(), &mut c);
            assert_eq!(got, Ok(format), "{path}");
            assert_eq!(c.report().kept, kept, "{path}");
        }
    }

    #[test]
    fn column_aliases_and_hashes() {
        assert_eq!(
            Field::from_header(&norm_header("TimeGenerated [UTC]")),
            Some((Field::TimeGenerated, 0))
        );
        // The Sentinel name outranks an alias whatever the column order.
        let h: Vec<String> = ["last_seen", "TimeGenerated"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let map = ColumnMap::new(&h, &[]);
        assert_eq!(map.slots[Field::TimeGenerated as usize], Some(1));
        assert_eq!(declared_hash_kind("SHA-256"), Some(Kind::Sha256));
        assert_eq!(declared_hash_kind("hash"), None);
        assert!(hash_key(&"a".repeat(32), Some(Kind::Sha1)).is_err());
        assert!(hash_key(&"a".repeat(32), None).is_ok());
        assert_eq!(tags_text(r#"["a", "b"]"#), "a,b");
        assert_eq!(tags_text("[broken"), "[broken");
        assert_eq!(tags_text("[]"), "");
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
