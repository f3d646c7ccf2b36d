//! REST feed responses: the pages a threat-intel API returns for `GET /api/v1/iocs`.
//!
//! Commercial and community intel platforms expose their indicators through a paginated JSON
//! API rather than STIX/TAXII, and every vendor spells the fields a little differently. This
//! module turns saved responses of such APIs into [`Indicator`] records ([`Origin::Rest`]), so
//! that a sync job (or an analyst with `curl`) can drop pages next to the other feeds, and tells
//! the sync job where the next page is ([`next_page`]).
//!
//! # Accepted documents
//!
//! * One response: a JSON object whose `data` array holds the IOC objects
//!   (`results`, `items`, `iocs` and `indicators` are accepted in place of `data`). A `data`
//!   that is an object is one IOC; `null` is an empty page.
//! * Several responses concatenated, or NDJSON with one saved page per line.
//! * A bare JSON array of IOC objects (or of response objects), and NDJSON of IOC objects.
//!
//! A document in which no value is a response, an array or an IOC object (`{}`, an error
//! response such as `{"error":"invalid api key"}`, a string) is an error, as is an empty file
//! or a document whose first JSON value does not parse. Once a document has been recognized,
//! later problems are skipped records instead: a top-level value that is neither a response nor
//! an IOC ([`SkipReason::BadField`] at its line), a page that does not parse, say the truncated
//! last line of an NDJSON download ([`SkipReason::Malformed`] at its line; reading resumes at
//! the next line that starts with `{` or `[`).
//!
//! # Field mapping
//!
//! Field names match case-insensitively, ignoring `_`, `-` and spaces (`first_seen`,
//! `firstSeen`, `First-Seen` are one name). When an IOC carries several spellings of one field,
//! the first spelling listed here wins.
//!
//! | Indicator field | Accepted IOC fields | Notes |
//! |---|---|---|
//! | kind (via [`Kind::from_type_name`]) | `type`, `ioc_type`, `indicator_type`, `kind`, `category` | `category` is the type only when no other type field is present and its value names a kind; otherwise it is the threat type. No type: the kind is inferred from the value ([`Key::infer`]). |
//! | `keys`, `raw_value` | `value`, `ioc`, `indicator`, `ioc_value`, `observable` | Validated and normalized by [`Key::parse_as`]; a number is read as its text. |
//! | `id` | `id`, `uuid`, `ioc_id` | String or number. |
//! | `confidence` | `confidence`, `confidence_score`, `score` | Number or numeric string (a trailing `%` is allowed). Kept as given: a 0-1 score is **not** scaled to 0-100, because a `1` would be ambiguous. |
//! | `description` | `description`, `desc`, `comment` | |
//! | `threat_type` | `threat_type`, `threat`, `malware_family`, `category` | The first one present. |
//! | `tags` | `tags` | A string as is, or an array of strings (or of objects with a `name`) joined by `,`. |
//! | `source` | `source`, `feed`, `provider` | |
//! | `tlp` | `tlp` | |
//! | `valid_from` | `first_seen`, `firstseen`, `created`, `created_at` | Dates: see below. |
//! | `modified` | `last_seen`, `updated_at`, `modified` | |
//! | `expiration` | `expiration`, `expires`, `expires_at`, `expiry`, `valid_until`, `expiration_date` | |
//!
//! Dates are RFC 3339 / ISO 8601 strings (anything [`Timestamp::parse`] reads), or Unix epoch
//! seconds as a number or a digit string, with an optional fraction. An epoch number too large
//! to be seconds before year 10000 is read as milliseconds, which some APIs send. A date that
//! cannot be read, and a metadata field of the wrong JSON type (an object for a description),
//! leaves that field empty rather than dropping the indicator.
//!
//! # Skipped IOCs
//!
//! An IOC is located by its `id` ([`Location::Object`]) or, without one, by its 1-based position
//! among all IOC objects of the document ([`Location::Element`], counted across pages).
//!
//! | Problem | Reason | Detail |
//! |---|---|---|
//! | no value field, or a null / blank value | [`SkipReason::MissingValue`] | |
//! | a value that is an array or object, an item that is not an object | [`SkipReason::BadField`] | what was found |
//! | a type naming no supported kind | [`SkipReason::UnknownType`] | the type |
//! | a value that is not a valid key of its kind | [`SkipReason::BadValue`] | the value |

use super::{Collector, Location, SkipReason};
use crate::indicator::{Indicator, Key, Kind, Origin};
use crate::time::Timestamp;
use serde_json::{Map, Value};

/// Normalized names of the fields holding a response's IOC array, in priority order.
const PAGE_FIELDS: &[&str] = &["data", "results", "items", "iocs", "indicators"];
/// Type fields (`category` is handled separately).
const TYPE_FIELDS: &[&str] = &["type", "ioctype", "indicatortype", "kind"];
const CATEGORY: &str = "category";
const VALUE_FIELDS: &[&str] = &["value", "ioc", "indicator", "iocvalue", "observable"];
const ID_FIELDS: &[&str] = &["id", "uuid", "iocid"];
const CONFIDENCE_FIELDS: &[&str] = &["confidence", "confidencescore", "score"];
const DESCRIPTION_FIELDS: &[&str] = &["description", "desc", "comment"];
const THREAT_FIELDS: &[&str] = &["threattype", "threat", "malwarefamily"];
const TAG_FIELDS: &[&str] = &["tags"];
const SOURCE_FIELDS: &[&str] = &["source", "feed", "provider"];
const TLP_FIELDS: &[&str] = &["tlp"];
const FIRST_SEEN_FIELDS: &[&str] = &["firstseen", "created", "createdat"];
const LAST_SEEN_FIELDS: &[&str] = &["lastseen", "updatedat", "modified"];
const EXPIRY_FIELDS: &[&str] = &[
    "expiration",
    "expires",
    "expiresat",
    "expiry",
    "validuntil",
    "expirationdate",
];

/// Parses a REST feed document (one response, concatenated responses / NDJSON of pages, or a
/// bare array of IOC objects) into `out`. See the module docs for the field mapping.
///
/// # Errors
/// A message when the file is empty, its first JSON value does not parse, or no value in it is
/// a response, an array or an IOC object. Bad IOCs are skipped through `out` instead.
pub fn parse(bytes: &[u8], out: &mut Collector) -> Result<(), String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    let mut p = Parser {
        out,
        element: 0,
        recognized: false,
        pending: Vec::new(),
    };
    let mut lines = LineCounter::default();
    let mut pos = 0;
    'chunks: while pos < bytes.len() {
        let chunk = &bytes[pos..];
        let mut stream = serde_json::Deserializer::from_slice(chunk).into_iter::<Value>();
        loop {
            let before = stream.byte_offset();
            let start = pos
                + before
                + chunk[before..]
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
            match stream.next() {
                None => break 'chunks,
                Some(Ok(v)) => {
                    let line = lines.line_at(bytes, start);
                    p.top_level(v, line);
                }
                Some(Err(e)) => {
                    if !p.recognized {
                        return Err(format!("invalid JSON: {e}"));
                    }
                    let line = lines.line_at(bytes, start);
                    let base = lines.line_at(bytes, pos);
                    p.out.begin_object();
                    p.out.skip(
                        Location::Line(line),
                        SkipReason::Malformed,
                        json_error(&e, base),
                    );
                    match resync(bytes, start) {
                        Some(next) => {
                            pos = next;
                            continue 'chunks;
                        }
                        None => break 'chunks,
                    }
                }
            }
        }
    }
    p.finish()
}

/// The pagination cursor or next-page URL a response carries, for a sync command to request
/// the next page; `None` on the last page.
///
/// Looked up, case-insensitively and ignoring `_`/`-`, in this order: `next`, `next_page`,
/// `next_cursor`; then `links.next`, `meta.next`, `pagination.next` (and their `next_page` /
/// `next_cursor`); then `cursor`. The first one present that holds a non-empty string, a
/// number, or a link object with an `href` wins; `null` and `""` are skipped. A `has_more` (at
/// the top or in `meta`/`pagination`) that is `false` means the last page. For several
/// concatenated responses (NDJSON of saved pages), the last response decides: it is the page
/// to continue from.
pub fn next_page(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut last = None;
    for v in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
        match v {
            Ok(Value::Object(m)) => last = Some(m),
            Ok(_) => last = None,
            Err(_) => break,
        }
    }
    cursor_of(&last?)
}

fn cursor_of(map: &Map<String, Value>) -> Option<String> {
    let top = Fields::new(map);
    let nested: Vec<Fields> = ["links", "meta", "pagination"]
        .iter()
        .filter_map(|k| match top.get(&[k]) {
            Some(Value::Object(m)) => Some(Fields::new(m)),
            _ => None,
        })
        .collect();
    let no_more = |f: &Fields| matches!(f.get(&["hasmore"]), Some(Value::Bool(false)));
    if no_more(&top) || nested.iter().any(no_more) {
        return None;
    }
    const NEXT: &[&str] = &["next", "nextpage", "nextcursor"];
    std::iter::once(&top)
        .chain(nested.iter())
        .flat_map(|f| NEXT.iter().filter_map(|k| f.get(&[k])))
        .chain(top.get(&["cursor"]))
        .find_map(cursor_value)
}

fn cursor_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(m) => match m.get("href") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Walks the top-level values of a document.
struct Parser<'a> {
    out: &'a mut Collector,
    /// IOC objects seen so far (1-based index of the last one).
    element: u64,
    /// Whether a response, an array or an IOC object has been seen.
    recognized: bool,
    /// Problems with top-level values seen before anything was recognized: reported once
    /// something is, else the first one becomes the file's error.
    pending: Vec<(Location, String)>,
}

impl Parser<'_> {
    fn recognize(&mut self) {
        if !self.recognized {
            self.recognized = true;
            for (loc, detail) in std::mem::take(&mut self.pending) {
                self.out.begin_object();
                self.out.skip(loc, SkipReason::BadField, detail);
            }
        }
    }

    fn unrecognized(&mut self, line: u64, detail: String) {
        if self.recognized {
            self.out.begin_object();
            self.out
                .skip(Location::Line(line), SkipReason::BadField, detail);
        } else {
            self.pending.push((Location::Line(line), detail));
        }
    }

    fn finish(self) -> Result<(), String> {
        if self.recognized {
            return Ok(());
        }
        let why = self
            .pending
            .into_iter()
            .next()
            .map_or_else(|| "no JSON value".to_string(), |(_, d)| d);
        Err(format!("no REST response or indicator objects: {why}"))
    }

    fn top_level(&mut self, v: Value, line: u64) {
        match v {
            Value::Array(items) => {
                self.recognize();
                for it in items {
                    match it {
                        Value::Object(m) if classify(&m) == Class::Page => self.page(m, line),
                        other => self.item(other),
                    }
                }
            }
            Value::Object(m) => match classify(&m) {
                Class::Page => {
                    self.recognize();
                    self.page(m, line);
                }
                Class::Item => {
                    self.recognize();
                    self.item(Value::Object(m));
                }
                Class::Other => self.unrecognized(line, describe_other(&m)),
            },
            other => self.unrecognized(
                line,
                format!(
                    "expected a response object or an array, found {}",
                    json_kind(&other)
                ),
            ),
        }
    }

    fn page(&mut self, mut m: Map<String, Value>, line: u64) {
        let Some((name, key)) = PAGE_FIELDS.iter().find_map(|n| {
            m.iter()
                .find(|(k, v)| norm(k) == *n && !v.is_null())
                .map(|(k, _)| (*n, k.clone()))
        }) else {
            return;
        };
        match m.remove(&key).unwrap_or_default() {
            Value::Array(items) => {
                for it in items {
                    self.item(it);
                }
            }
            obj @ Value::Object(_) => self.item(obj),
            Value::Null => {}
            other => {
                self.out.begin_object();
                self.out.skip(
                    Location::Line(line),
                    SkipReason::BadField,
                    format!(
                        "`{name}` is {}: {}",
                        json_kind(&other),
                        scalar_text(&other).ok().flatten().unwrap_or_default()
                    ),
                );
            }
        }
    }

    fn item(&mut self, v: Value) {
        self.element += 1;
        self.out.begin_object();
        let here = Location::Element(self.element);
        let Value::Object(m) = v else {
            self.out.skip(
                here,
                SkipReason::BadField,
                format!("expected an IOC object, found {}", json_kind(&v)),
            );
            return;
        };
        let f = Fields::new(&m);
        let id = f.text(ID_FIELDS).unwrap_or_default();
        let loc = if id.is_empty() {
            here
        } else {
            Location::Object(id.clone())
        };
        match self.indicator(&f, id) {
            Ok(ind) => self.out.push(ind),
            Err((reason, detail)) => self.out.skip(loc, reason, detail),
        }
    }

    fn indicator(&self, f: &Fields, id: String) -> Result<Indicator, (SkipReason, String)> {
        // The type, and whether `category` served as it.
        let category = f
            .get(&[CATEGORY])
            .and_then(|v| scalar_text(v).ok().flatten());
        let (type_name, category_is_type) = match f.get_named(TYPE_FIELDS) {
            Some((name, v)) => match scalar_text(v) {
                Ok(t) => (t.filter(|t| !t.trim().is_empty()), false),
                Err(kind) => {
                    return Err((SkipReason::UnknownType, format!("`{name}` is {kind}")));
                }
            },
            None => match &category {
                Some(c) if Kind::from_type_name(c).is_some() => (Some(c.clone()), true),
                _ => (None, false),
            },
        };
        let raw = match f.get_named(VALUE_FIELDS) {
            None => return Err((SkipReason::MissingValue, "no value field".into())),
            Some((name, v)) => match scalar_text(v) {
                Ok(Some(s)) if !s.trim().is_empty() => s,
                Ok(_) => return Err((SkipReason::MissingValue, format!("`{name}` is empty"))),
                Err(kind) => return Err((SkipReason::BadField, format!("`{name}` is {kind}"))),
            },
        };
        let key = match &type_name {
            Some(t) => match Kind::from_type_name(t) {
                Some(kind) => Key::parse_as(kind, &raw),
                None => return Err((SkipReason::UnknownType, t.clone())),
            },
            None => Key::infer(&raw),
        }
        .map_err(|e| (SkipReason::BadValue(e), raw.clone()))?;

        let mut ind = Indicator::for_key(key, &raw, Origin::Rest);
        ind.id = id;
        ind.description = f.text(DESCRIPTION_FIELDS).unwrap_or_default();
        ind.threat_type = f
            .text(THREAT_FIELDS)
            .or(if category_is_type { None } else { category })
            .unwrap_or_default();
        ind.tags = f.get(TAG_FIELDS).map(tags_text).unwrap_or_default();
        ind.source = f.text(SOURCE_FIELDS).unwrap_or_default();
        ind.tlp = f.text(TLP_FIELDS).unwrap_or_default();
        ind.confidence = f.get(CONFIDENCE_FIELDS).and_then(number);
        ind.valid_from = f.get(FIRST_SEEN_FIELDS).and_then(date);
        ind.modified = f.get(LAST_SEEN_FIELDS).and_then(date);
        ind.expiration = f.get(EXPIRY_FIELDS).and_then(date);
        Ok(ind)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// A response with an IOC array.
    Page,
    /// One IOC.
    Item,
    /// Neither.
    Other,
}

fn classify(m: &Map<String, Value>) -> Class {
    let f = Fields::new(m);
    let has = |names: &[&str]| f.fields.iter().any(|(k, _)| names.contains(&k.as_str()));
    if has(VALUE_FIELDS) {
        Class::Item
    } else if has(PAGE_FIELDS) {
        Class::Page
    } else if has(TYPE_FIELDS) || has(&[CATEGORY]) {
        Class::Item
    } else {
        Class::Other
    }
}

fn describe_other(m: &Map<String, Value>) -> String {
    let keys: Vec<&str> = m.keys().map(String::as_str).take(10).collect();
    let f = Fields::new(m);
    let msg = f
        .text(&["error", "message", "detail", "errormessage"])
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    if keys.is_empty() {
        "an empty object, with no `data` array and no indicator fields".into()
    } else {
        format!(
            "an object with no `data` array and no indicator fields: keys [{}]{msg}",
            keys.join(", ")
        )
    }
}

/// An object's fields under normalized names, in the object's order.
struct Fields<'a> {
    fields: Vec<(String, &'a Value)>,
}

impl<'a> Fields<'a> {
    fn new(m: &'a Map<String, Value>) -> Fields<'a> {
        Fields {
            fields: m.iter().map(|(k, v)| (norm(k), v)).collect(),
        }
    }

    /// The first non-null field among `names` (in their priority order), with its name.
    fn get_named(&self, names: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        names.iter().find_map(|n| {
            self.fields
                .iter()
                .find(|(k, v)| k == n && !v.is_null())
                .map(|(_, v)| (*n, *v))
        })
    }

    fn get(&self, names: &[&'static str]) -> Option<&'a Value> {
        self.get_named(names).map(|(_, v)| v)
    }

    /// A scalar field as trimmed text; `None` when absent, blank or not a scalar.
    fn text(&self, names: &[&'static str]) -> Option<String> {
        self.get(names)
            .and_then(|v| scalar_text(v).ok().flatten())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
}

/// Lowercases and drops `_`, `-` and spaces.
fn norm(k: &str) -> String {
    k.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A scalar as text (`None` for null); `Err` names the JSON type of an array or object.
fn scalar_text(v: &Value) -> Result<Option<String>, &'static str> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(_) | Value::Object(_) => Err(json_kind(v)),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn tags_text(v: &Value) -> String {
    let one = |v: &Value| -> Option<String> {
        match v {
            Value::Object(m) => m
                .get("name")
                .or_else(|| m.get("tag"))
                .and_then(|n| scalar_text(n).ok().flatten()),
            other => scalar_text(other).ok().flatten(),
        }
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    };
    match v {
        Value::Array(items) => items.iter().filter_map(one).collect::<Vec<_>>().join(","),
        other => one(other).unwrap_or_default(),
    }
}

/// A finite number, or a numeric string (a trailing `%` allowed).
fn number(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().trim_end_matches('%').trim_end().parse().ok()?,
        _ => return None,
    };
    x.is_finite().then_some(x)
}

/// An RFC 3339 string, or epoch seconds (milliseconds when too large for seconds).
fn date(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                epoch(s)
            } else {
                Timestamp::parse(s)
            }
        }
        Value::Number(n) => epoch(&n.to_string()),
        _ => None,
    }
}

fn epoch(s: &str) -> Option<Timestamp> {
    Timestamp::parse_epoch(s).or_else(|| {
        // Milliseconds: drop the last three integer digits into the fraction.
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.len() <= 3 || frac.len() > 6 {
            return None;
        }
        let (secs, ms) = int.split_at(int.len() - 3);
        Timestamp::parse_epoch(&format!("{secs}.{ms}{frac}"))
    })
}

/// A serde_json error with its line made absolute (`base` is the line the parsed chunk starts
/// on; chunks start at line starts, so the column is right as it is).
fn json_error(e: &serde_json::Error, base: u64) -> String {
    let msg = e.to_string();
    let msg = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
    format!(
        "invalid JSON: {msg} at line {} column {}",
        base + e.line() as u64 - 1,
        e.column()
    )
}

/// The start of the first line after the line of `from` that begins with `{` or `[`.
fn resync(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        i += memchr::memchr(b'\n', bytes.get(i..)?)? + 1;
        if matches!(bytes.get(i), Some(b'{' | b'[')) {
            return Some(i);
        }
    }
}

/// Line numbers of increasing byte offsets, counted incrementally.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, bytes: &[u8], off: usize) -> u64 {
        let off = off.min(bytes.len());
        if off < self.offset {
            *self = LineCounter::default();
        }
        self.line += memchr::memchr_iter(b'\n', &bytes[self.offset..off]).count() as u64;
        self.offset = off;
        self.line + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::KeyError;
    use crate::ingest::{ingest, Format, IngestOptions, Problem};

    const PAGE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/rest-iocs.json"));
    const PAGES: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/rest-pages.ndjson"
    ));

    fn run(s: &[u8]) -> (Result<(), String>, Collector) {
        let mut c = Collector::new();
        c.set_file("t.json");
        let r = parse(s, &mut c);
        (r, c)
    }

    fn ok(s: &str) -> Collector {
        let (r, c) = run(s.as_bytes());
        assert_eq!(r, Ok(()), "{s}");
        c
    }

    fn keys(c: &Collector) -> Vec<(Kind, String)> {
        c.indicators()
            .map(|i| (i.kind(), i.keys[0].value_string()))
            .collect()
    }

    fn problems(c: &Collector) -> Vec<(Location, SkipReason, String)> {
        c.report()
            .problems
            .iter()
            .map(|p: &Problem| (p.location.clone(), p.reason, p.detail.clone()))
            .collect()
    }

    fn ts(s: &str) -> Option<Timestamp> {
        Some(Timestamp::parse(s).expect("test timestamp"))
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn fixture_page_keys_and_skips() {
        let c = ok(PAGE);
        assert_eq!(
            keys(&c),
            vec![
                (Kind::Ipv4, s("198.51.100.23")),
                (Kind::Ipv6, s("2001:db8::bad")),
                (Kind::Domain, s("evil-update.example")),
                (Kind::Url, s("https://evil-update.example/Payload.EXE?id=7")),
                (Kind::Md5, s("44d88612fea8a8f36de82e1278abb02f")),
                (Kind::Sha1, s("3395856ce81f2b7382dee72602f798b642f14140")),
                (
                    Kind::Sha256,
                    s("275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f")
                ),
                (Kind::Cve, s("CVE-2021-44228")),
                (Kind::Domain, s("no-id.example.org")),
                (Kind::Cidr4, s("192.0.2.0/24")),
                (Kind::Ipv4, s("203.0.113.7")),
            ]
        );
        assert_eq!(
            problems(&c),
            vec![
                (
                    Location::Object(s("ioc-1010")),
                    SkipReason::MissingValue,
                    s("no value field")
                ),
                (
                    Location::Object(s("ioc-1011")),
                    SkipReason::UnknownType,
                    s("mutex")
                ),
                (
                    Location::Object(s("ioc-1012")),
                    SkipReason::BadValue(KeyError::BadIp),
                    s("203.0.113.300")
                ),
            ]
        );
        let r = c.report();
        assert_eq!(
            (r.read, r.kept, r.skipped_total(), r.unusable),
            (14, 11, 3, 0)
        );
        assert!(c.indicators().all(|i| i.origin == Origin::Rest));
    }

    #[test]
    fn fixture_page_metadata() {
        let c = ok(PAGE);
        let v: Vec<&Indicator> = c.indicators().collect();
        let a = v[0];
        assert_eq!(a.id, "ioc-1001");
        assert_eq!(a.raw_value, "198.51.100.23");
        assert_eq!(a.kql_network_ip, "198.51.100.23");
        assert_eq!(a.confidence, Some(90.0));
        assert_eq!(a.threat_type, "botnet_cc");
        assert_eq!(a.tags, "emotet,c2");
        assert_eq!(a.source, "acme-intel");
        assert_eq!(a.tlp, "amber");
        assert_eq!(a.description, "Emotet C2 server");
        assert_eq!(a.valid_from, ts("2024-05-01T10:00:00Z"));
        assert_eq!(a.modified, ts("2024-05-20T08:30:00Z"));
        assert_eq!(a.expiration, ts("2024-08-01T00:00:00Z"));

        let b = v[1];
        assert_eq!(b.id, "ioc-1002");
        assert_eq!(b.confidence, Some(75.0));
        assert_eq!(b.threat_type, "scanner");
        // created_at 1714557600 epoch seconds; updated_at at +02:00.
        assert_eq!(b.valid_from, ts("2024-05-01T10:00:00Z"));
        assert_eq!(b.modified, ts("2024-05-02T10:00:00Z"));
        assert_eq!(b.expiration, None);
        assert_eq!(b.source, "acme-intel");

        let d = v[2];
        assert_eq!(d.id, "5f0c2a7e-8d4b-4c1e-9a55-3b6f0e2d7c11");
        assert_eq!(d.raw_value, "Evil-Update.EXAMPLE.");
        assert_eq!(d.kql_domain_name, "Evil-Update.EXAMPLE.");
        assert_eq!(d.kql_network_ip, "");
        assert_eq!(d.confidence, Some(0.8), "0-1 scores are kept as given");
        assert_eq!(d.threat_type, "QakBot");
        assert_eq!(d.tags, "loader,phishing");
        assert_eq!(d.valid_from, ts("2024-04-30T00:00:00Z"));
        assert_eq!(
            d.modified.map(|t| t.to_string()),
            Some(s("2024-05-03T00:00:00.5Z"))
        );
        assert_eq!(d.expiration, ts("2025-01-01T00:00:00Z"));
        assert_eq!(d.source, "partner-x");
        assert_eq!(d.description, "QakBot update domain");

        let u = v[3];
        assert_eq!(u.id, "1004");
        assert_eq!(u.threat_type, "malware_download", "category beside a kind");
        assert_eq!(u.expiration, ts("2024-12-31T23:59:59Z"));

        assert_eq!(v[4].description, "EICAR test file");
        assert_eq!(v[4].expiration, ts("2024-12-31T23:59:59Z"));
        assert_eq!(v[6].tags, "eicar,test");
        assert_eq!(v[7].confidence, Some(100.0));
        assert_eq!(v[7].description, "Log4Shell");

        let n = v[8];
        assert_eq!(n.id, "");
        assert_eq!(n.threat_type, "", "category used as the type");
        assert_eq!(n.valid_from, ts("2024-05-05T00:00:00Z"));

        assert_eq!(v[9].raw_value, "192.0.2.77/24");
        assert_eq!(v[9].kql_network_ip, "192.0.2.77/24");
        assert_eq!(v[9].expiration, ts("2024-09-01T00:00:00Z"));
        assert_eq!(v[10].threat_type, "scanner");
    }

    #[test]
    fn fixture_pages_ndjson() {
        let c = ok(PAGES);
        assert_eq!(
            keys(&c),
            vec![
                (Kind::Ipv4, s("198.51.100.10")),
                (Kind::Domain, s("c2.bad.example")),
                (
                    Kind::Sha256,
                    s("275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f")
                ),
            ]
        );
        assert_eq!(
            problems(&c),
            vec![
                (
                    Location::Object(s("p1-3")),
                    SkipReason::MissingValue,
                    s("no value field")
                ),
                (
                    Location::Object(s("p2-2")),
                    SkipReason::BadValue(KeyError::BadIp),
                    s("not-an-ip")
                ),
            ]
        );
        let first = c.indicators().next().unwrap();
        assert_eq!(first.confidence, Some(80.0));
        assert_eq!(first.modified, ts("2024-06-01T00:00:00Z"));
        assert_eq!(c.report().read, 5);
        // The last page says it is the last one.
        assert_eq!(next_page(PAGES.as_bytes()), None);
        let page1 = PAGES.lines().next().unwrap();
        assert_eq!(
            next_page(page1.as_bytes()).as_deref(),
            Some("/api/v1/iocs?limit=3&cursor=Mw")
        );
        assert_eq!(
            next_page(PAGE.as_bytes()).as_deref(),
            Some("/api/v1/iocs?limit=100&cursor=eyJvZmZzZXQiOjEwMH0")
        );
    }

    #[test]
    fn detected_and_ingested() {
        let opts = IngestOptions::default();
        for (doc, kept) in [(PAGE, 11), (PAGES, 3)] {
            let mut c = Collector::new();
            assert_eq!(ingest(doc.as_bytes(), "f", &opts, &mut c), Ok(Format::Rest));
            assert_eq!(c.report().kept, kept);
        }
    }

    #[test]
    fn bare_arrays_and_item_ndjson() {
        let c = ok(r#"[{"type":"ipv4","value":"1.2.3.4"}, 5, {"value":"X.Example"}, null]"#);
        assert_eq!(
            keys(&c),
            vec![(Kind::Ipv4, s("1.2.3.4")), (Kind::Domain, s("x.example"))]
        );
        assert_eq!(
            problems(&c),
            vec![
                (
                    Location::Element(2),
                    SkipReason::BadField,
                    s("expected an IOC object, found a number")
                ),
                (
                    Location::Element(4),
                    SkipReason::BadField,
                    s("expected an IOC object, found null")
                ),
            ]
        );
        // NDJSON of IOC objects, and an array of responses.
        let c = ok("{\"ioc\":\"evil.example\"}\n{\"ioc\":\"CVE-2024-3094\",\"kind\":\"cve\"}\n");
        assert_eq!(
            keys(&c),
            vec![
                (Kind::Domain, s("evil.example")),
                (Kind::Cve, s("CVE-2024-3094"))
            ]
        );
        let c = ok(r#"[{"data":[{"value":"1.2.3.4"}]},{"data":[{"value":"::1"}]}]"#);
        assert_eq!(
            keys(&c),
            vec![(Kind::Ipv4, s("1.2.3.4")), (Kind::Ipv6, s("::1"))]
        );
        assert_eq!(ok("[]").report().read, 0);
    }

    #[test]
    fn data_shapes() {
        assert_eq!(ok(r#"{"data":[]}"#).report().read, 0);
        assert_eq!(ok(r#"{"data":null,"meta":{}}"#).report().read, 0);
        let c = ok(r#"{"data":{"type":"url","value":"http://A.example/x"}}"#);
        assert_eq!(keys(&c), vec![(Kind::Url, s("http://a.example/x"))]);
        let c = ok(r#"{"results":[{"value":"1.2.3.4"}],"next":null}"#);
        assert_eq!(keys(&c), vec![(Kind::Ipv4, s("1.2.3.4"))]);
        // ThreatFox answers "no result" with a string in `data`.
        let c = ok(
            "\n{\"query_status\":\"no_result\",\"data\":\"Your search did not yield any results\"}",
        );
        assert_eq!(
            problems(&c),
            vec![(
                Location::Line(2),
                SkipReason::BadField,
                s("`data` is a string: Your search did not yield any results")
            )]
        );
    }

    #[test]
    fn field_spellings_and_precedence() {
        let c = ok(r#"{"data":[
            {"IOC_TYPE":"Domain","IOC-Value":"a.example","Threat_Type":"c2","Malware-Family":"x"},
            {"type":"ipv4","category":"c2","value":"1.2.3.4"},
            {"category":"phishing","value":"b.example"},
            {"category":"url","value":"b.example"},
            {"type":"","value":"c.example"},
            {"type":"ipv4","ioc_type":"domain","value":"9.9.9.9"}
        ]}"#);
        assert_eq!(
            keys(&c),
            vec![
                (Kind::Domain, s("a.example")),
                (Kind::Ipv4, s("1.2.3.4")),
                (Kind::Domain, s("b.example")),
                (Kind::Domain, s("c.example")),
                (Kind::Ipv4, s("9.9.9.9")),
            ]
        );
        let t: Vec<&str> = c.indicators().map(|i| i.threat_type.as_str()).collect();
        assert_eq!(t, ["c2", "c2", "phishing", "", ""]);
        assert_eq!(
            problems(&c),
            vec![(
                Location::Element(4),
                SkipReason::BadValue(KeyError::BadUrl),
                s("b.example")
            )]
        );
    }

    #[test]
    fn numbers_where_strings_are_expected() {
        let c = ok(r#"{"data":[
            {"id":12,"type":4,"value":"1.2.3.4"},
            {"id":13,"type":"ipv4","value":3232235777},
            {"id":14,"type":"domain","value":["a.com"]},
            {"id":15,"type":{"name":"ipv4"},"value":"1.2.3.4"},
            {"id":16,"type":"domain","value":"   "},
            {"id":{"x":1},"value":"1.2.3.4","description":{"a":1},"confidence":"high",
             "first_seen":"yesterday","tags":7,"expiration":1e300,"source":true,
             "last_seen":[1]}
        ]}"#);
        assert_eq!(
            problems(&c),
            vec![
                (Location::Object(s("12")), SkipReason::UnknownType, s("4")),
                (
                    Location::Object(s("13")),
                    SkipReason::BadValue(KeyError::BadIp),
                    s("3232235777")
                ),
                (
                    Location::Object(s("14")),
                    SkipReason::BadField,
                    s("`value` is an array")
                ),
                (
                    Location::Object(s("15")),
                    SkipReason::UnknownType,
                    s("`type` is an object")
                ),
                (
                    Location::Object(s("16")),
                    SkipReason::MissingValue,
                    s("`value` is empty")
                ),
            ]
        );
        let i = c.indicators().next().unwrap();
        assert_eq!(i.keys, vec![Key::infer("1.2.3.4").unwrap()]);
        assert_eq!(
            (i.id.as_str(), i.description.as_str(), i.tags.as_str()),
            ("", "", "7")
        );
        assert_eq!(i.source, "true");
        assert_eq!(
            (i.confidence, i.valid_from, i.expiration, i.modified),
            (None, None, None, None)
        );
    }

    #[test]
    fn epoch_dates() {
        let c = ok(
            r#"[{"value":"1.2.3.4","first_seen":1714557600000,"last_seen":"1714557600",
            "expires":1714557600.5}]"#,
        );
        let i = c.indicators().next().unwrap();
        assert_eq!(i.valid_from, ts("2024-05-01T10:00:00Z"), "milliseconds");
        assert_eq!(i.modified, ts("2024-05-01T10:00:00Z"), "digit string");
        assert_eq!(i.expiration, ts("2024-05-01T10:00:00.5Z"));
        assert_eq!(date(&Value::from(-5)), Timestamp::from_unix_secs(-5));
        assert_eq!(date(&Value::from("9".repeat(40))), None);
        assert_eq!(date(&Value::from("1.2.3")), None);
    }

    #[test]
    fn whole_file_errors() {
        for (doc, why) in [
            ("", "empty"),
            ("  \n\t", "empty"),
            ("\u{feff}", "empty"),
            ("{}", "an empty object"),
            (r#"{"error":"invalid api key"}"#, "(invalid api key)"),
            ("\"hello\"", "found a string"),
            ("42", "found a number"),
            ("{\"data\":[", "invalid JSON"),
            ("not json at all", "invalid JSON"),
            ("{\"data\":[{\"value\":1e400}]}", "invalid JSON"),
            ("{}\n{\"data\":", "invalid JSON"),
        ] {
            let (r, c) = run(doc.as_bytes());
            let e = r.expect_err(doc);
            assert!(e.contains(why), "{doc}: {e}");
            assert_eq!(c.report().read, 0, "{doc}");
        }
        let (r, _) = run(b"{\"data\":[{\"value\":\"\xff\xfe\"}]}");
        assert!(r.unwrap_err().contains("invalid JSON"));
    }

    #[test]
    fn deep_nesting_is_an_error() {
        for doc in [
            "[".repeat(100_000),
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            format!(
                "{{\"data\":[{{\"value\":{}1{}}}]}}",
                "[".repeat(200),
                "]".repeat(200)
            ),
            "{\"a\":".repeat(50_000),
        ] {
            let (r, c) = run(doc.as_bytes());
            assert!(r.is_err());
            assert_eq!(c.report().read, 0);
            assert_eq!(next_page(doc.as_bytes()), None);
        }
    }

    #[test]
    fn later_problems_are_skips() {
        // A truncated NDJSON line: skipped, reading resumes on the next line.
        let c = ok("{\"data\":[{\"value\":\"1.2.3.4\"}]}\n{\"data\":[{\"val\n{\"data\":[{\"value\":\"5.6.7.8\"}]}\n");
        assert_eq!(
            keys(&c),
            vec![(Kind::Ipv4, s("1.2.3.4")), (Kind::Ipv4, s("5.6.7.8"))]
        );
        let p = problems(&c);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].0.clone(), p[0].1),
            (Location::Line(2), SkipReason::Malformed)
        );
        assert!(p[0].2.starts_with("invalid JSON: "), "{}", p[0].2);
        assert!(p[0].2.contains("control character"), "{}", p[0].2);
        assert_eq!(c.report().read, 3);

        // Truncated at the end: nothing to resume.
        let c = ok("{\"data\":[{\"value\":\"1.2.3.4\"}]}\n{\"data\":[");
        assert_eq!(c.report().skipped_total(), 1);

        // A later chunk's error position is absolute: line 4, not line 2 of the chunk.
        let c = ok("[{\"value\":\"1.2.3.4\"}]\n{x\n{\"data\":[]}\n{\"data\": ]}\n");
        let p = problems(&c);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].0, Location::Line(4));
        assert!(p[1].2.ends_with("at line 4 column 10"), "{}", p[1].2);

        // An unrecognized value before and after recognized ones.
        let c = ok("{\"foo\":1}\n{\"data\":[{\"value\":\"1.2.3.4\"}]}\n7\n");
        assert_eq!(
            problems(&c),
            vec![
                (
                    Location::Line(1),
                    SkipReason::BadField,
                    s("an object with no `data` array and no indicator fields: keys [foo]")
                ),
                (
                    Location::Line(3),
                    SkipReason::BadField,
                    s("expected a response object or an array, found a number")
                ),
            ]
        );
        assert_eq!(c.report().read, 3);
    }

    #[test]
    fn huge_values() {
        let big = "a".repeat(1 << 20);
        let doc = format!("{{\"data\":[{{\"type\":\"domain\",\"value\":\"{big}\"}}]}}");
        let c = ok(&doc);
        let p = &c.report().problems[0];
        assert_eq!(p.reason, SkipReason::BadValue(KeyError::BadDomain));
        assert!(p.detail.len() < 300);
        let doc = format!("{{\"data\":[{{\"type\":\"{big}\",\"value\":\"x\"}}]}}");
        assert_eq!(
            ok(&doc).report().problems[0].reason,
            SkipReason::UnknownType
        );
    }

    #[test]
    fn pagination_cursors() {
        let np = |s: &str| next_page(s.as_bytes());
        assert_eq!(
            np(r#"{"data":[],"next":"https://api.example/iocs?page=2"}"#).as_deref(),
            Some("https://api.example/iocs?page=2")
        );
        assert_eq!(np(r#"{"data":[],"Next_Page":3}"#).as_deref(), Some("3"));
        assert_eq!(
            np(r#"{"data":[],"links":{"next":{"href":"/p/2"}}}"#).as_deref(),
            Some("/p/2")
        );
        assert_eq!(
            np(r#"{"data":[],"meta":{"next":"c2"}}"#).as_deref(),
            Some("c2")
        );
        assert_eq!(
            np(r#"{"data":[],"pagination":{"next_cursor":"c3"}}"#).as_deref(),
            Some("c3")
        );
        assert_eq!(np(r#"{"data":[],"cursor":"c4"}"#).as_deref(), Some("c4"));
        assert_eq!(
            np(r#"{"data":[],"next":null,"cursor":"c5"}"#).as_deref(),
            Some("c5")
        );
        assert_eq!(
            np(r#"{"data":[],"next":"","links":{"next":"/p/9"}}"#).as_deref(),
            Some("/p/9")
        );
        assert_eq!(np(r#"{"data":[],"cursor":"c6","has_more":false}"#), None);
        assert_eq!(
            np(r#"{"data":[],"cursor":"c7","meta":{"hasMore":false}}"#),
            None
        );
        assert_eq!(np(r#"{"data":[],"next":true}"#), None);
        assert_eq!(np(r#"{"data":[]}"#), None);
        assert_eq!(np("[{\"next\":\"x\"}]"), None);
        assert_eq!(np(""), None);
        assert_eq!(np("\u{feff}{\"next\":\"n\"}"), Some(s("n")));
        assert_eq!(
            np("{\"next\":\"a\"}\n{\"next\":\"b\"}\n{\"nex"),
            Some(s("b"))
        );
        assert_eq!(np("\u{0}\u{1}garbage"), None);
    }
}
