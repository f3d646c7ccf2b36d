//! STIX 2.x indicator objects, from every container they travel in.
//!
//! Indicators arrive as a STIX 2.1 bundle, a TAXII 2.1 envelope (a page of a collection, `{}`
//! when empty), a bare JSON array of objects, a single object, or NDJSON with one object (or
//! page) per line. This module reads all of them into [`Indicator`] records: one record per
//! key of a supported pattern (see [`super::pattern`]), carrying the object's id, `modified`,
//! validity and descriptive fields so that [`super::finalize`] can keep the newest version of an
//! id and drop revoked ones.
//!
//! Objects are deserialized one at a time, straight from the bytes, into a lenient struct whose
//! fields accept any JSON type, so a wrongly typed field costs one skipped object instead of the
//! whole document; only broken JSON or a document that is not STIX at all fails the file. The
//! outcome of every object is buffered and handed to the [`Collector`] only once the whole
//! document has parsed, so a failed file adds nothing.

use super::pattern::{self, PatternError};
use super::{Collector, Location, SkipReason};
use crate::indicator::{Indicator, Key, Origin};
use crate::time::Timestamp;
use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;
use std::fmt;

/// Parses a STIX document (bundle, TAXII envelope, array, single object or NDJSON) into `out`.
///
/// Non-indicator objects are ignored (and not counted as read). Each indicator object is
/// counted, then either pushed as one record per supported key, recorded as a revocation, or
/// skipped with its id (or element / line number) and a reason.
///
/// # Errors
/// A message with line and column when the document is not JSON, or JSON that is not STIX
/// (a scalar, an object with neither `type` nor `objects`, `objects` not an array). Nothing is
/// added to `out` then. In NDJSON, a bad line is skipped instead.
pub fn parse(bytes: &[u8], out: &mut Collector) -> Result<(), String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if looks_like_ndjson(bytes) {
        parse_ndjson(bytes, out);
        return Ok(());
    }
    let mut outcomes = Vec::new();
    parse_document(bytes, Fallback::Element, &mut outcomes)?;
    apply(outcomes, out);
    Ok(())
}

/// NDJSON when the first non-blank line is a complete `{...}` and more lines follow.
pub(crate) fn looks_like_ndjson(bytes: &[u8]) -> bool {
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    match lines.next() {
        Some(first) => {
            first.len() >= 2
                && first.first() == Some(&b'{')
                && first.last() == Some(&b'}')
                && lines.next().is_some()
        }
        None => false,
    }
}

fn parse_ndjson(bytes: &[u8], out: &mut Collector) {
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i as u64 + 1;
        if line.trim_ascii().is_empty() {
            continue;
        }
        let mut outcomes = Vec::new();
        match parse_document(line, Fallback::Line(line_no), &mut outcomes) {
            Ok(()) => apply(outcomes, out),
            Err(e) => {
                out.begin_object();
                out.skip(Location::Line(line_no), SkipReason::Malformed, e);
            }
        }
    }
}

/// Parses one JSON document, buffering the outcome of each indicator object.
fn parse_document(
    bytes: &[u8],
    fallback: Fallback,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let top = de
        .deserialize_any(TopVisitor {
            fallback,
            outcomes,
            element: 0,
        })
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    match top {
        Top::Container => Ok(()),
        Top::Single(obj) => {
            if let Some(o) = process(*obj, fallback.at(1)) {
                outcomes.push(o);
            }
            Ok(())
        }
        Top::Empty => Ok(()),
        Top::NotStix(keys) => Err(format!(
            "a JSON object with neither `type` nor `objects` (fields: {keys}): not STIX"
        )),
    }
}

fn apply(outcomes: Vec<Outcome>, out: &mut Collector) {
    for o in outcomes {
        out.begin_object();
        match o {
            Outcome::Skip(loc, reason, detail) => out.skip(loc, reason, detail),
            Outcome::Revoked(ind) => out.push_revoked(*ind),
            Outcome::Keep(inds) => inds.into_iter().for_each(|i| out.push(i)),
        }
    }
}

/// What became of one indicator object.
enum Outcome {
    Skip(Location, SkipReason, String),
    Revoked(Box<Indicator>),
    Keep(Vec<Indicator>),
}

/// How an object without an id is located: by its array position or by its NDJSON line.
#[derive(Clone, Copy)]
enum Fallback {
    Element,
    Line(u64),
}

impl Fallback {
    fn at(self, element: u64) -> Location {
        match self {
            Fallback::Element => Location::Element(element),
            Fallback::Line(n) => Location::Line(n),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One object

/// Builds the records of one object; `None` for objects that are not indicators.
fn process(obj: StixObject, fallback: Location) -> Option<Outcome> {
    if obj.not_object {
        return Some(Outcome::Skip(
            fallback,
            SkipReason::Malformed,
            "array element is not a JSON object".into(),
        ));
    }
    if obj.ty.as_str() != Some("indicator") {
        return None;
    }
    let id = obj
        .id
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let loc = id.clone().map_or(fallback, Location::Object);
    Some(match indicator(obj, id) {
        Ok(o) => o,
        Err((reason, detail)) => Outcome::Skip(loc, reason, detail),
    })
}

pub(crate) type Skip = (SkipReason, String);

fn bad_field(e: String) -> Skip {
    (SkipReason::BadField, e)
}

fn indicator(obj: StixObject, id: Option<String>) -> Result<Outcome, Skip> {
    // Revocation first: it is permanent and needs nothing but the id.
    match &obj.revoked {
        Field::Absent | Field::Null | Field::Bool(false) => {}
        Field::Bool(true) => {
            let id = id.ok_or_else(|| bad_field("revoked indicator without an id".into()))?;
            let modified = obj
                .modified
                .date("modified")
                .ok()
                .flatten()
                .or_else(|| obj.created.date("created").ok().flatten());
            return Ok(Outcome::Revoked(Box::new(Indicator {
                id,
                modified,
                origin: Origin::Stix,
                ..Indicator::default()
            })));
        }
        _ => return Err(bad_field("revoked is not a boolean".into())),
    }
    match obj.pattern_type.text("pattern_type").map_err(bad_field)? {
        None | Some("stix") => {}
        Some(other) => {
            return Err((
                SkipReason::NotStixPattern,
                format!("pattern_type {}", clip(other, 40)),
            ))
        }
    }
    let pattern_text = match obj.pattern.text("pattern").map_err(bad_field)? {
        Some(p) => p,
        None => return Err((SkipReason::MissingValue, "no pattern".into())),
    };
    let comparisons = pattern::parse(pattern_text).map_err(|e| pattern_skip(&e, pattern_text))?;
    let mut keys: Vec<(Key, String)> = Vec::with_capacity(comparisons.len());
    for c in comparisons {
        let key = Key::parse_as(c.kind, &c.value).map_err(|e| {
            (
                SkipReason::BadValue(e),
                format!("{} value {:?}", c.kind, clip(&c.value, 100)),
            )
        })?;
        // An OR chain may repeat a value: one record per distinct key.
        if !keys.iter().any(|(k, _)| *k == key) {
            keys.push((key, c.value));
        }
    }
    let base = base_record(&obj, id)?;
    Ok(Outcome::Keep(
        keys.into_iter()
            .map(|(key, raw)| {
                let mut ind = Indicator::for_key(key, &raw, Origin::Stix);
                let keys = std::mem::take(&mut ind.keys);
                Indicator {
                    keys,
                    raw_value: ind.raw_value,
                    kql_network_ip: ind.kql_network_ip,
                    kql_domain_name: ind.kql_domain_name,
                    ..base.clone()
                }
            })
            .collect(),
    ))
}

/// The skip for a pattern that yields no keys: the reason and the (truncated) pattern.
pub(crate) fn pattern_skip(e: &PatternError, pattern_text: &str) -> Skip {
    let (reason, why) = match e {
        PatternError::Syntax(m) => (SkipReason::BadPattern, m),
        PatternError::Unsupported(m) => (SkipReason::UnsupportedPattern, m),
    };
    (reason, format!("{why}: {}", clip(pattern_text, 120)))
}

/// The fields every record of an object shares.
fn base_record(obj: &StixObject, id: Option<String>) -> Result<Indicator, Skip> {
    let created_by_ref = obj
        .created_by_ref
        .text("created_by_ref")
        .map_err(bad_field)?
        .unwrap_or("")
        .to_string();
    let modified = match obj.modified.date("modified").map_err(bad_field)? {
        Some(t) => Some(t),
        None => obj.created.date("created").map_err(bad_field)?,
    };
    let labels = obj.labels.list("labels").map_err(bad_field)?;
    let types = obj
        .indicator_types
        .list("indicator_types")
        .map_err(bad_field)?;
    Ok(Indicator {
        id: id.unwrap_or_default(),
        name: obj
            .name
            .text("name")
            .map_err(bad_field)?
            .unwrap_or("")
            .into(),
        description: obj
            .description
            .text("description")
            .map_err(bad_field)?
            .unwrap_or("")
            .into(),
        confidence: obj.confidence.confidence().map_err(bad_field)?,
        valid_from: obj.valid_from.date("valid_from").map_err(bad_field)?,
        expiration: obj.valid_until.date("valid_until").map_err(bad_field)?,
        modified,
        threat_type: types.or(labels).map(|l| l.join(",")).unwrap_or_default(),
        tags: labels.map(|l| l.join(",")).unwrap_or_default(),
        source: created_by_ref.clone(),
        created_by_ref,
        origin: Origin::Stix,
        ..Indicator::default()
    })
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or("")),
        None => s.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient object model

/// A field of a STIX object, of whatever JSON type it came as.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Field {
    /// Not in the object.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// An array of strings.
    List(Vec<String>),
    /// An object, or an array with non-string elements.
    Other,
}

impl Field {
    /// The string, if the field is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(s) => Some(s),
            _ => None,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Field::Absent => "absent",
            Field::Null => "null",
            Field::Str(_) => "a string",
            Field::Num(_) => "a number",
            Field::Bool(_) => "a boolean",
            Field::List(_) => "a list",
            Field::Other => "an object",
        }
    }

    /// A string field: `None` when absent or null, an error naming the field for other types.
    pub(crate) fn text(&self, name: &str) -> Result<Option<&str>, String> {
        match self {
            Field::Absent | Field::Null => Ok(None),
            Field::Str(s) => Ok(Some(s)),
            other => Err(format!("{name} is {}, not a string", other.type_name())),
        }
    }

    /// A timestamp field.
    pub(crate) fn date(&self, name: &str) -> Result<Option<Timestamp>, String> {
        match self.text(name)? {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Ok(None),
            Some(s) => Timestamp::parse(s)
                .map(Some)
                .ok_or_else(|| format!("{name}: invalid timestamp {:?}", clip(s, 60))),
        }
    }

    /// A list of strings (an empty list counts as absent).
    pub(crate) fn list(&self, name: &str) -> Result<Option<&[String]>, String> {
        match self {
            Field::Absent | Field::Null => Ok(None),
            Field::List(l) if l.is_empty() => Ok(None),
            Field::List(l) => Ok(Some(l)),
            other => Err(format!(
                "{name} is {}, not a list of strings",
                other.type_name()
            )),
        }
    }

    /// STIX `confidence`: an integer 0-100.
    fn confidence(&self) -> Result<Option<f64>, String> {
        match self {
            Field::Absent | Field::Null => Ok(None),
            Field::Num(n) if (0.0..=100.0).contains(n) && n.fract() == 0.0 => Ok(Some(*n)),
            Field::Num(n) => Err(format!("confidence {n} is not an integer 0-100")),
            other => Err(format!("confidence is {}, not a number", other.type_name())),
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Field, E> {
                Ok(Field::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Field, E> {
                Ok(Field::Str(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Field, E> {
                Ok(Field::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Field, E> {
                Ok(Field::Num(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Field, E> {
                Ok(Field::Num(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Field, E> {
                Ok(Field::Num(v))
            }
            fn visit_unit<E>(self) -> Result<Field, E> {
                Ok(Field::Null)
            }
            fn visit_none<E>(self) -> Result<Field, E> {
                Ok(Field::Null)
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
                Field::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
                let mut items = Vec::new();
                let mut all_strings = true;
                while let Some(f) = seq.next_element::<Field>()? {
                    match f {
                        Field::Str(s) if all_strings => items.push(s),
                        _ => all_strings = false,
                    }
                }
                Ok(if all_strings {
                    Field::List(items)
                } else {
                    Field::Other
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields of a STIX object this crate reads; all others are skipped unparsed.
#[derive(Debug, Default)]
pub(crate) struct StixObject {
    pub(crate) ty: Field,
    pub(crate) id: Field,
    pub(crate) pattern: Field,
    pub(crate) pattern_type: Field,
    pub(crate) name: Field,
    pub(crate) description: Field,
    pub(crate) confidence: Field,
    pub(crate) valid_from: Field,
    pub(crate) valid_until: Field,
    pub(crate) created: Field,
    pub(crate) modified: Field,
    pub(crate) created_by_ref: Field,
    pub(crate) revoked: Field,
    pub(crate) labels: Field,
    pub(crate) indicator_types: Field,
    /// The value was not a JSON object at all.
    pub(crate) not_object: bool,
}

impl StixObject {
    /// `indicator_types` (2.1), else `labels` (2.0), joined by `,`.
    pub(crate) fn threat_type(&self) -> String {
        let pick = |f: &Field| match f {
            Field::List(l) if !l.is_empty() => Some(l.join(",")),
            _ => None,
        };
        pick(&self.indicator_types)
            .or_else(|| pick(&self.labels))
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Prop {
    Type,
    Id,
    Pattern,
    PatternType,
    Name,
    Description,
    Confidence,
    ValidFrom,
    ValidUntil,
    Created,
    Modified,
    CreatedByRef,
    Revoked,
    Labels,
    IndicatorTypes,
    Objects,
    More,
    Next,
    #[serde(other)]
    Other,
}

/// Stores one field of an object; returns false for names that are not object fields.
fn set_field(obj: &mut StixObject, name: &Prop, value: Field) -> bool {
    let slot = match name {
        Prop::Type => &mut obj.ty,
        Prop::Id => &mut obj.id,
        Prop::Pattern => &mut obj.pattern,
        Prop::PatternType => &mut obj.pattern_type,
        Prop::Name => &mut obj.name,
        Prop::Description => &mut obj.description,
        Prop::Confidence => &mut obj.confidence,
        Prop::ValidFrom => &mut obj.valid_from,
        Prop::ValidUntil => &mut obj.valid_until,
        Prop::Created => &mut obj.created,
        Prop::Modified => &mut obj.modified,
        Prop::CreatedByRef => &mut obj.created_by_ref,
        Prop::Revoked => &mut obj.revoked,
        Prop::Labels => &mut obj.labels,
        Prop::IndicatorTypes => &mut obj.indicator_types,
        Prop::Objects | Prop::More | Prop::Next | Prop::Other => return false,
    };
    *slot = value;
    true
}

/// An element of `objects`: any JSON value, read as an object when it is one.
impl<'de> Deserialize<'de> for StixObject {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<StixObject, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StixObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a STIX object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StixObject, A::Error> {
                let mut obj = StixObject::default();
                while let Some(name) = map.next_key::<Prop>()? {
                    if matches!(name, Prop::Objects | Prop::More | Prop::Next | Prop::Other) {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        let v = map.next_value::<Field>()?;
                        set_field(&mut obj, &name, v);
                    }
                }
                Ok(obj)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StixObject, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(not_object())
            }
            fn visit_str<E>(self, _: &str) -> Result<StixObject, E> {
                Ok(not_object())
            }
            fn visit_bool<E>(self, _: bool) -> Result<StixObject, E> {
                Ok(not_object())
            }
            fn visit_i64<E>(self, _: i64) -> Result<StixObject, E> {
                Ok(not_object())
            }
            fn visit_u64<E>(self, _: u64) -> Result<StixObject, E> {
                Ok(not_object())
            }
            fn visit_f64<E>(self, _: f64) -> Result<StixObject, E> {
                Ok(not_object())
            }
            fn visit_unit<E>(self) -> Result<StixObject, E> {
                Ok(not_object())
            }
        }
        d.deserialize_any(V)
    }
}

fn not_object() -> StixObject {
    StixObject {
        not_object: true,
        ..StixObject::default()
    }
}

/// The top-level value of a document.
enum Top {
    /// A bundle, envelope or array: its objects were processed while parsing.
    Container,
    /// A single object.
    Single(Box<StixObject>),
    /// `{}` or an envelope without `objects`: an empty page.
    Empty,
    /// An object with none of the STIX fields (its field names, for the message).
    NotStix(String),
}

struct TopVisitor<'o> {
    fallback: Fallback,
    outcomes: &'o mut Vec<Outcome>,
    element: u64,
}

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a STIX bundle, a TAXII envelope, a STIX object or an array of them")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, seq: A) -> Result<Top, A::Error> {
        ObjectsSeed {
            fallback: self.fallback,
            outcomes: self.outcomes,
            element: &mut self.element,
        }
        .visit_seq(seq)?;
        Ok(Top::Container)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Top, A::Error> {
        let mut obj = StixObject::default();
        let mut container = false;
        let mut envelope = false;
        let mut keys: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let name = Prop::deserialize(de::value::StrDeserializer::<A::Error>::new(&key))?;
            if keys.len() < 8 {
                keys.push(key);
            }
            match name {
                Prop::Objects => {
                    container = true;
                    map.next_value_seed(ObjectsSeed {
                        fallback: self.fallback,
                        outcomes: self.outcomes,
                        element: &mut self.element,
                    })?;
                }
                Prop::More | Prop::Next => {
                    envelope = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Prop::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let v = map.next_value::<Field>()?;
                    set_field(&mut obj, &name, v);
                }
            }
        }
        Ok(if container {
            Top::Container
        } else if obj.ty != Field::Absent {
            Top::Single(Box::new(obj))
        } else if envelope || keys.is_empty() {
            Top::Empty
        } else {
            Top::NotStix(keys.join(", "))
        })
    }
}

/// The `objects` array (or a top-level array): each element is processed as it is parsed.
struct ObjectsSeed<'o, 'e> {
    fallback: Fallback,
    outcomes: &'o mut Vec<Outcome>,
    element: &'e mut u64,
}

impl<'de> DeserializeSeed<'de> for ObjectsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of STIX objects")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(obj) = seq.next_element::<StixObject>()? {
            *self.element += 1;
            if let Some(o) = process(obj, self.fallback.at(*self.element)) {
                self.outcomes.push(o);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{finalize, IngestOptions, Problem};
    use super::*;
    use crate::indicator::{KeyError, Kind};
    use std::collections::BTreeMap;

    fn data(name: &str) -> Vec<u8> {
        let path = format!("{}/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn run(bytes: &[u8]) -> Collector {
        let mut c = Collector::new();
        c.set_file("test");
        parse(bytes, &mut c).expect("parses");
        c
    }

    fn kinds<'a>(inds: impl Iterator<Item = &'a Indicator>) -> BTreeMap<Kind, usize> {
        let mut m = BTreeMap::new();
        for i in inds {
            *m.entry(i.kind()).or_insert(0) += 1;
        }
        m
    }

    fn values<'a>(inds: impl Iterator<Item = &'a Indicator>) -> Vec<String> {
        inds.flat_map(|i| i.keys.iter().map(Key::value_string))
            .collect()
    }

    fn problem<'a>(c: &'a Collector, loc: &Location) -> &'a Problem {
        c.report()
            .problems
            .iter()
            .find(|p| &p.location == loc)
            .unwrap_or_else(|| panic!("no problem at {loc}: {:?}", c.report().problems))
    }

    fn obj(id: &str) -> Location {
        Location::Object(id.to_string())
    }

    #[test]
    fn hand_written_bundle() {
        let c = run(&data("stix-bundle.json"));
        let r = c.report();
        // 13 indicator objects (identity, malware and relationship objects are not counted).
        assert_eq!(r.read, 13);
        // Kept records: v1 (1) + v2 (1) + v3 (2) of the versioned id, OR chain (4 distinct of
        // 5), CIDR (1), v6 CIDR (1), hashes (3), 2.0 labels (1), revoked-target (1).
        assert_eq!(r.kept, 15);
        assert_eq!(r.unusable, 0);
        let skipped: Vec<(SkipReason, u64)> = r.skipped.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(
            skipped,
            vec![
                (SkipReason::BadValue(KeyError::BadDomain), 1),
                (SkipReason::UnsupportedPattern, 1),
                (SkipReason::BadField, 1),
            ]
        );
        let p = problem(&c, &obj("indicator--a7c9d0e1-0b1c-4d2e-8f3a-000000000009"));
        assert_eq!(p.reason, SkipReason::UnsupportedPattern);
        assert!(
            p.detail.starts_with("MATCHES: [domain-name:value MATCHES"),
            "{}",
            p.detail
        );
        let p = problem(&c, &obj("indicator--a7c9d0e1-0b1c-4d2e-8f3a-00000000000a"));
        assert_eq!(p.reason, SkipReason::BadValue(KeyError::BadDomain));
        assert!(p.detail.contains("\"bad domain.example\""), "{}", p.detail);
        let p = problem(&c, &obj("indicator--a7c9d0e1-0b1c-4d2e-8f3a-00000000000b"));
        assert_eq!(p.reason, SkipReason::BadField);
        assert!(
            p.detail.starts_with("valid_until: invalid timestamp"),
            "{}",
            p.detail
        );

        let (kept, rep) = finalize(c, &IngestOptions::default());
        // Versions 1 and 2 superseded (2 records), the revoked id's record dropped (1).
        assert_eq!(rep.superseded, 2);
        assert_eq!(rep.revoked, 1);
        assert_eq!(kept.len(), 12);
        let by_kind = kinds(kept.iter());
        let want: BTreeMap<Kind, usize> = [
            (Kind::Ipv4, 4),
            (Kind::Cidr4, 1),
            (Kind::Cidr6, 1),
            (Kind::Domain, 2),
            (Kind::Url, 1),
            (Kind::Md5, 1),
            (Kind::Sha1, 1),
            (Kind::Sha256, 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(by_kind, want);
        let v3: Vec<&Indicator> = kept
            .iter()
            .filter(|i| i.id == "indicator--a7c9d0e1-0b1c-4d2e-8f3a-000000000001")
            .collect();
        assert_eq!(
            values(v3.iter().copied()),
            ["203.0.113.7", "c2.evil.example"]
        );
        let first = v3[0];
        assert_eq!(first.name, "C2 server (v3)");
        assert_eq!(first.threat_type, "malicious-activity,command-and-control");
        assert_eq!(first.confidence, Some(85.0));
        assert_eq!(first.kql_network_ip, "203.0.113.7");
        assert_eq!(v3[1].kql_domain_name, "C2.Evil.Example.");
        assert_eq!(v3[1].raw_value, "C2.Evil.Example.");
        assert_eq!(
            first.created_by_ref,
            "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
        );
        assert_eq!(first.source, first.created_by_ref);
        assert_eq!(
            first.modified.map(|t| t.to_string()).as_deref(),
            Some("2026-03-01T08:00:00Z")
        );
        assert_eq!(
            first.expiration.map(|t| t.to_string()).as_deref(),
            Some("2026-12-31T00:00:00Z")
        );
        assert_eq!(
            first.valid_from.map(|t| t.to_string()).as_deref(),
            Some("2026-01-10T00:00:00Z")
        );
        let all = values(kept.iter());
        for v in [
            "198.51.100.0/24",
            "2001:db8:bad::/48",
            "http://dl.evil.example/Payload.exe",
            "44d88612fea8a8f36de82e1278abb02f",
            "3395856ce81f2b7382dee72602f798b642f14140",
            "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
        ] {
            assert!(all.iter().any(|x| x == v), "{v} missing from {all:?}");
        }
        assert!(!all.iter().any(|x| x == "192.0.2.66"), "revoked id kept");
        // STIX 2.0 object: labels give both threat_type and tags.
        let legacy = kept
            .iter()
            .find(|i| i.id == "indicator--a7c9d0e1-0b1c-4d2e-8f3a-00000000000c")
            .expect("2.0 object");
        assert_eq!(legacy.threat_type, "malicious-activity");
        assert_eq!(legacy.tags, "malicious-activity");
        assert_eq!(
            legacy.modified.map(|t| t.to_string()).as_deref(),
            Some("2017-05-01T00:00:00Z")
        );
    }

    #[test]
    fn taxii_envelope_and_empty_pages() {
        let c = run(&data("taxii-envelope.json"));
        let r = c.report();
        assert_eq!(r.read, 3);
        assert_eq!(r.kept, 2);
        assert_eq!(r.skipped.get(&SkipReason::NotStixPattern), Some(&1));
        let p = problem(&c, &obj("indicator--5d2e9c3e-0000-4000-8000-000000000003"));
        assert_eq!(p.detail, "pattern_type sigma");
        assert_eq!(
            values(c.indicators()),
            ["evil-update.example", "203.0.113.99"]
        );
        for empty in [
            "{}",
            " {} \n",
            r#"{"more":false}"#,
            r#"{"more":false,"objects":[]}"#,
            "[]",
        ] {
            let c = run(empty.as_bytes());
            assert_eq!(c.report().read, 0, "{empty}");
        }
    }

    #[test]
    fn ndjson_with_a_bad_line() {
        let c = run(&data("stix-objects.ndjson"));
        let r = c.report();
        // 6 non-blank lines: 4 indicators, 1 malware (ignored), 1 broken line.
        assert_eq!(r.read, 5);
        assert_eq!(r.kept, 3);
        let p = problem(&c, &Location::Line(4));
        assert_eq!(p.reason, SkipReason::Malformed);
        assert!(p.detail.contains("line 1 column"), "{}", p.detail);
        // The indicator without an id is located by its line.
        let p = problem(&c, &Location::Line(7));
        assert_eq!(p.reason, SkipReason::BadPattern);
        assert_eq!(
            values(c.indicators()),
            [
                "192.0.2.10",
                "phish@evil.example",
                "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
            ]
        );
    }

    #[test]
    fn arrays_single_objects_and_locations() {
        let one = r#"{"type":"indicator","id":"indicator--1","pattern":"[url:value = 'HTTP://A.Example/x']","modified":"2026-01-01T00:00:00Z"}"#;
        let c = run(one.as_bytes());
        assert_eq!(values(c.indicators()), ["http://a.example/x"]);
        let arr = format!(
            r#"[{one}, {{"type":"indicator","pattern":"[ipv4-addr:value = '1.2.3']"}}, 7, {{"type":"note"}}]"#
        );
        let c = run(arr.as_bytes());
        assert_eq!(c.report().read, 3);
        assert_eq!(
            problem(&c, &Location::Element(2)).reason,
            SkipReason::BadValue(KeyError::BadIp)
        );
        assert_eq!(
            problem(&c, &Location::Element(3)).reason,
            SkipReason::Malformed
        );
        // Wrongly typed fields skip one object, not the document.
        let typed = r#"{"type":"bundle","objects":[
            {"type":"indicator","id":"indicator--a","pattern":"[ipv4-addr:value = '1.2.3.4']","confidence":"high"},
            {"type":"indicator","id":"indicator--b","pattern":42},
            {"type":"indicator","id":"indicator--c","pattern":"[ipv4-addr:value = '1.2.3.4']","revoked":"yes"},
            {"type":"indicator","id":"indicator--d","pattern":"[ipv4-addr:value = '1.2.3.4']","labels":[1,2]},
            {"type":"indicator","id":"indicator--e","pattern":"[ipv4-addr:value = '1.2.3.4']","confidence":101},
            {"type":"indicator","id":"indicator--f"},
            {"type":"indicator","id":"indicator--g","pattern":"[ipv4-addr:value = '1.2.3.4']","objects":{"0":{}}}
        ]}"#;
        let c = run(typed.as_bytes());
        assert_eq!(c.report().read, 7);
        assert_eq!(c.report().kept, 1);
        assert_eq!(c.report().skipped.get(&SkipReason::BadField), Some(&5));
        assert_eq!(c.report().skipped.get(&SkipReason::MissingValue), Some(&1));
        assert!(problem(&c, &obj("indicator--a"))
            .detail
            .contains("confidence"));
    }

    #[test]
    fn documents_that_are_not_stix() {
        for (doc, want) in [
            ("", "EOF while parsing"),
            (
                "{\"type\":\"bundle\",\n\"objects\":[{\"type\":",
                "line 2 column",
            ),
            ("42", "invalid type"),
            (r#"{"hello":"world"}"#, "not STIX"),
            (r#"{"objects":"nope"}"#, "invalid type"),
            (
                r#"{"type":"bundle","objects":[]} trailing"#,
                "trailing characters",
            ),
        ] {
            let mut c = Collector::new();
            let e = parse(doc.as_bytes(), &mut c).expect_err(doc);
            assert!(e.contains(want), "{doc:?}: {e}");
            assert_eq!(c.report().read, 0);
        }
        // A broken document adds nothing, even after good objects.
        let mut c = Collector::new();
        let doc = r#"{"objects":[{"type":"indicator","id":"indicator--1","pattern":"[url:value = 'http://a.example/']"}, {"#;
        assert!(parse(doc.as_bytes(), &mut c).is_err());
        assert_eq!(c.indicators().count(), 0);
    }

    #[test]
    fn oasis_apt1() {
        let c = run(&data("realdata/stix/oasis_apt1.json"));
        let r = c.report();
        assert_eq!(r.read, 12);
        assert_eq!(r.kept, 10);
        assert_eq!(r.skipped.get(&SkipReason::UnsupportedPattern), Some(&2));
        let p = problem(&c, &obj("indicator--b3b6b540-d838-41e2-853b-005056c00008"));
        assert!(
            p.detail.starts_with("object path x509-certificate:issuer"),
            "{}",
            p.detail
        );
        let by_kind = kinds(c.indicators());
        assert_eq!(by_kind.get(&Kind::Cidr4), Some(&4));
        assert_eq!(by_kind.get(&Kind::Domain), Some(&3));
        assert_eq!(by_kind.get(&Kind::Md5), Some(&3));
        let all = values(c.indicators());
        for cidr in [
            "223.166.0.0/15",
            "58.246.0.0/15",
            "112.64.0.0/15",
            "139.226.0.0/15",
        ] {
            assert!(all.iter().any(|v| v == cidr), "{cidr}");
        }
        let cidr = c
            .indicators()
            .find(|i| i.id == "indicator--031778a4-057f-48e6-9db9-c8d72b81ccd5")
            .expect("cidr indicator");
        assert_eq!(cidr.kql_network_ip, "223.166.0.0/15");
        assert!(!cidr.threat_type.is_empty());
    }

    #[test]
    fn oasis_poisonivy() {
        let c = run(&data("realdata/stix/oasis_poisonivy.json"));
        let r = c.report();
        assert_eq!(r.read, 25);
        // 22 supported objects; 2 `file:name` patterns; 1 domain with a space.
        assert_eq!(r.skipped.get(&SkipReason::UnsupportedPattern), Some(&2));
        assert_eq!(
            r.skipped.get(&SkipReason::BadValue(KeyError::BadDomain)),
            Some(&1)
        );
        let p = problem(&c, &obj("indicator--4e4c4ad7-4909-456a-b6fa-e24a6f682a40"));
        assert_eq!(p.detail, "domain value \"domain autuo.xicp.net\"");
        // Nothing of the bad object is applied, not even its valid IP.
        assert!(!values(c.indicators()).iter().any(|v| v == "60.10.1.115"));
        let chain: Vec<String> = values(
            c.indicators()
                .filter(|i| i.id == "indicator--329ae6e9-25bd-49e8-89d1-aae4ca52e4a7"),
        );
        assert_eq!(
            chain,
            [
                "www.webserver.dynssl.com",
                "113.10.246.30",
                "219.90.112.203",
                "75.126.95.138",
                "219.90.112.197",
                "202.65.222.45"
            ]
        );
        assert_eq!(r.kept as usize, c.indicators().count());
        let by_kind = kinds(c.indicators());
        assert_eq!(by_kind.values().sum::<usize>(), r.kept as usize);
        assert_eq!(
            by_kind.keys().copied().collect::<Vec<_>>(),
            [Kind::Ipv4, Kind::Domain]
        );
    }

    #[test]
    fn small_oasis_examples() {
        for f in [
            "realdata/stix/oasis_indicator-for-c2-ip-address.json",
            "realdata/stix/oasis_indicators-for-C2-with-COA.json",
        ] {
            let c = run(&data(f));
            assert_eq!(c.report().skipped_total(), 0, "{f}");
            assert!(c.report().kept >= 1, "{f}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let bundle = data("stix-bundle.json");
        let mut st = 0x2545_f491_4f6c_dd1d_u64;
        for cut in (0..bundle.len()).step_by(7) {
            let mut c = Collector::new();
            let _ = parse(&bundle[..cut], &mut c);
        }
        for _ in 0..2000 {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            let mut b = bundle.clone();
            let at = (st as usize) % b.len().max(1);
            if let Some(x) = b.get_mut(at) {
                *x = (st >> 32) as u8;
            }
            let mut c = Collector::new();
            let _ = parse(&b, &mut c);
        }
    }
}
