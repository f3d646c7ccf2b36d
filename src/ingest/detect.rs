//! Format detection by content: the first JSON value's shape, or a CSV header's column names.

use super::{Format, IngestOptions};
use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Column names (lowercase) only Sentinel's two indicator tables have.
const SENTINEL_COLUMNS: &[&str] = &[
    "networkip",
    "networksourceip",
    "networkdestinationip",
    "domainname",
    "url",
    "emailsenderaddress",
    "filehashvalue",
    "indicatorid",
    "pattern",
    "observablekey",
    "observablevalue",
    "networkcidrblock",
];

/// Value-column names of generic CSV feeds (lowercase, `_`/`-`/space removed).
pub(crate) const VALUE_COLUMNS: &[&str] = &[
    "ioc",
    "iocvalue",
    "indicator",
    "indicatorvalue",
    "value",
    "observable",
    "observablevalue",
    "ioc_value",
    "artifact",
    "data",
];

/// Type-column names of generic CSV feeds (same normalization).
pub(crate) const TYPE_COLUMNS: &[&str] = &[
    "ioctype",
    "type",
    "indicatortype",
    "observabletype",
    "datatype",
    "kind",
];

/// Lowercases a header name and drops `_`, `-`, spaces and a `[UTC]` suffix, so that
/// `IoC_Type`, `ioc-type` and `TimeGenerated [UTC]` compare as `ioctype`, `timegenerated`.
pub(crate) fn norm_header(h: &str) -> String {
    let h = h.trim().trim_start_matches('\u{feff}');
    let h = h.strip_suffix("[UTC]").unwrap_or(h);
    h.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Detects the format of a feed file.
///
/// # Errors
/// A description of what was seen when no format fits.
pub fn detect(bytes: &[u8], opts: &IngestOptions) -> Result<Format, String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let Some(first) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err("the file is empty".into());
    };
    if opts.value_column.is_some() {
        return Ok(Format::GenericCsv);
    }
    match bytes[first] {
        b'{' | b'[' => detect_json(&bytes[first..]),
        _ => Ok(detect_text(bytes)),
    }
}

fn detect_json(bytes: &[u8]) -> Result<Format, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let shape = match de.deserialize_any(ShapeVisitor) {
        Ok(s) => s,
        Err(e) if bytes[0] == b'[' => {
            // `[` may also start a plain line such as an IPv6 `[::1]`.
            if bytes
                .iter()
                .take_while(|&&b| b != b'\n')
                .any(|&b| b == b',')
            {
                return Err(format!("invalid JSON: {e}"));
            }
            return Ok(Format::Plain);
        }
        Err(e) => return Err(format!("invalid JSON: {e}")),
    };
    let keys: Vec<String> = shape.keys.iter().map(|k| norm_header(k)).collect();
    let has = |k: &str| keys.iter().any(|x| x == k);
    // STIX property names are lowercase; Log Analytics exports of the ThreatIntelIndicators
    // table also carry `Type`, `Id` and `Created` columns, so compare case-sensitively here.
    let raw = |k: &str| shape.keys.iter().any(|x| x == k);
    let stix_table = [
        "Pattern",
        "ObservableKey",
        "ObservableValue",
        "IsActive",
        "IsDeleted",
        "ValidUntil",
        "TenantId",
    ]
    .iter()
    .any(|k| raw(k));
    if has("objects")
        || shape.type_value.as_deref() == Some("bundle")
        || (!stix_table
            && raw("type")
            && raw("id")
            && (raw("spec_version") || raw("pattern") || raw("created")))
    {
        return Ok(Format::Stix);
    }
    // Log Analytics API shapes: `{"tables": [...]}` and OData `{"value": [...]}`.
    if !shape.array
        && (has("tables")
            || (has("value") && (keys.len() == 1 || keys.iter().any(|k| k.starts_with("@odata")))))
    {
        return Ok(Format::SentinelJson);
    }
    if !shape.array && has("data") {
        return Ok(Format::Rest);
    }
    if keys.iter().any(|k| SENTINEL_COLUMNS.contains(&k.as_str()))
        || has("threattype")
        || has("tenantid")
    {
        return Ok(Format::SentinelJson);
    }
    if has("type") || has("value") || has("indicator") || has("ioc") {
        return Ok(Format::Rest);
    }
    if shape.keys.is_empty() && shape.array {
        return Err("an empty JSON array".into());
    }
    Err(format!(
        "JSON with fields [{}]: not STIX, a Sentinel export or a REST feed",
        shape.keys.join(", ")
    ))
}

/// Columns only the newer, STIX-based `ThreatIntelIndicators` table has.
const STIX_TABLE_COLUMNS: &[&str] = &[
    "pattern",
    "observablekey",
    "observablevalue",
    "isactive",
    "validuntil",
    "isdeleted",
];

/// Whether a Sentinel export (CSV or JSON) is the newer `ThreatIntelIndicators` table rather
/// than the legacy `ThreatIntelligenceIndicator` one.
pub(crate) fn is_stix_table(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let first = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let keys: Vec<String> = match bytes.get(first) {
        Some(b'{' | b'[') => {
            let mut de = serde_json::Deserializer::from_slice(&bytes[first..]);
            match de.deserialize_any(ShapeVisitor) {
                Ok(s) => s.keys,
                Err(_) => return false,
            }
        }
        _ => header_line(bytes)
            .split([',', '\t'])
            .map(str::to_string)
            .collect(),
    };
    keys.iter()
        .any(|k| STIX_TABLE_COLUMNS.contains(&norm_header(k).as_str()))
}

fn header_line(bytes: &[u8]) -> String {
    let line = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| {
            let t = l.trim_ascii();
            !t.is_empty() && !t.starts_with(b"#")
        })
        .unwrap_or(b"");
    String::from_utf8_lossy(line).into_owned()
}

fn detect_text(bytes: &[u8]) -> Format {
    let header = header_line(bytes);
    let cols: Vec<String> = header.split([',', '\t']).map(norm_header).collect();
    if cols.len() < 2 {
        return Format::Plain;
    }
    if cols.iter().any(|c| SENTINEL_COLUMNS.contains(&c.as_str())) {
        return Format::SentinelCsv;
    }
    if cols.iter().any(|c| VALUE_COLUMNS.contains(&c.as_str())) {
        return Format::GenericCsv;
    }
    Format::Plain
}

/// The top-level keys of the first JSON object (or of the first element of a top-level array),
/// collected without building a DOM.
struct Shape {
    array: bool,
    keys: Vec<String>,
    type_value: Option<String>,
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut keys = Vec::new();
        let mut type_value = None;
        while let Some(k) = map.next_key::<String>()? {
            if k == "type" {
                type_value = map
                    .next_value::<serde_json::Value>()?
                    .as_str()
                    .map(str::to_string);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            keys.push(k);
        }
        Ok(Shape {
            array: false,
            keys,
            type_value,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let first = seq.next_element::<MaybeShape>()?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let mut shape = first.and_then(|m| m.0).unwrap_or(Shape {
            array: true,
            keys: Vec::new(),
            type_value: None,
        });
        shape.array = true;
        Ok(shape)
    }
}

/// An array element: an object's shape, or nothing for scalars.
struct MaybeShape(Option<Shape>);

impl<'de> de::Deserialize<'de> for MaybeShape {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeShape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaybeShape, A::Error> {
                ShapeVisitor.visit_map(map).map(|s| MaybeShape(Some(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeShape, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeShape(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<MaybeShape, E> {
                Ok(MaybeShape(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeShape, E> {
                Ok(MaybeShape(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeShape, E> {
                Ok(MaybeShape(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeShape, E> {
                Ok(MaybeShape(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeShape, E> {
                Ok(MaybeShape(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeShape, E> {
                Ok(MaybeShape(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(s: &str) -> Result<Format, String> {
        detect(s.as_bytes(), &IngestOptions::default())
    }

    #[test]
    fn json_shapes() {
        assert_eq!(
            det(r#"{"type":"bundle","id":"bundle--1","objects":[]}"#),
            Ok(Format::Stix)
        );
        assert_eq!(det(r#"{"more":false,"objects":[]}"#), Ok(Format::Stix));
        assert_eq!(
            det("{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--1\"}\n{\"type\":\"indicator\"}"),
            Ok(Format::Stix)
        );
        assert_eq!(
            det(r#"{"data":[{"type":"ipv4","value":"1.2.3.4"}]}"#),
            Ok(Format::Rest)
        );
        assert_eq!(
            det(r#"[{"NetworkIP":"1.2.3.4","ThreatType":"C2"}]"#),
            Ok(Format::SentinelJson)
        );
        assert_eq!(
            det("{\"Id\":\"x\",\"Pattern\":\"[ipv4-addr:value = '1.2.3.4']\"}"),
            Ok(Format::SentinelJson)
        );
        assert!(det(r#"{"hello":1}"#).is_err());
        assert_eq!(
            det(
                r#"[{"TenantId":"t","Type":"ThreatIntelIndicators","Id":"indicator--1","Created":"2026-01-01","Pattern":"[ipv4-addr:value = '1.2.3.4']","IsActive":true}]"#
            ),
            Ok(Format::SentinelJson)
        );
        assert_eq!(
            det(r#"{"tables":[{"name":"PrimaryResult","columns":[],"rows":[]}]}"#),
            Ok(Format::SentinelJson)
        );
        assert_eq!(
            det(r#"{"@odata.context":"x","value":[]}"#),
            Ok(Format::SentinelJson)
        );
        assert!(det(r#"{"objects": [ "#)
            .unwrap_err()
            .contains("invalid JSON"));
        assert!(det("   \n").unwrap_err().contains("empty"));
    }

    #[test]
    fn text_shapes() {
        assert_eq!(
            det("TimeGenerated,IoC,IoC_Type\n1/1/2024,1.2.3.4,ip\n"),
            Ok(Format::GenericCsv)
        );
        assert_eq!(
            det("IndicatorId,NetworkIP\nx,1.2.3.4\n"),
            Ok(Format::SentinelCsv)
        );
        assert_eq!(det("# list\n1.2.3.4\nevil.com\n"), Ok(Format::Plain));
        assert_eq!(det("[2001:db8::1]\n"), Ok(Format::Plain));
        assert!(is_stix_table(b"Id,Pattern,ObservableKey\n"));
        assert!(!is_stix_table(b"IndicatorId,NetworkIP\n"));
        assert!(is_stix_table(br#"[{"Id":"x","IsActive":true}]"#));
    }
}
