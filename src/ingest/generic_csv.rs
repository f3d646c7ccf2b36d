//! Generic CSV indicator feeds: one value column, an optional type column, and optional
//! metadata columns. Microsoft's MSTIC `IoC`,`IoC_Type` files are an example.
//!
//! Many feeds are "a spreadsheet of IoCs" and not any standard format. This module finds the
//! value and type columns by their usual header names (or by the names the caller gives), reads
//! the kind from the type column when there is one (so `ip` with a CIDR value and `sha256` with
//! a digest of the wrong length are handled the same way everywhere), and reads the same
//! metadata columns as the Sentinel parser through its shared column mapping. Rows whose type is
//! not a supported kind (file paths, command lines, GUIDs) are skipped and reported, not
//! guessed.

use super::detect::{norm_header, TYPE_COLUMNS, VALUE_COLUMNS};
use super::sentinel::{
    apply_meta, csv_headers, csv_reader, declared_hash_kind, hash_key, next_record, strip_bom,
    ColumnMap,
};
use super::{Collector, IngestOptions, Location, SkipReason};
use crate::indicator::{Indicator, Key, Kind, Origin};

/// The column `name` names: an exact header match first, then a match after `norm_header`.
fn named_column(headers: &[String], name: &str) -> Option<usize> {
    let name = name.trim();
    headers
        .iter()
        .position(|h| h.trim_start_matches('\u{feff}').trim() == name)
        .or_else(|| {
            let n = norm_header(name);
            headers.iter().position(|h| norm_header(h) == n)
        })
}

/// The first of `names` (in their priority order) that the header has.
fn usual_column(headers: &[String], names: &[&str]) -> Option<usize> {
    let norm: Vec<String> = headers.iter().map(|h| norm_header(h)).collect();
    names.iter().find_map(|n| norm.iter().position(|h| h == n))
}

/// Resolves the value and type columns.
///
/// # Errors
/// When a named column is missing or no value column can be found. The message lists the
/// header's columns.
fn resolve_columns(
    headers: &[String],
    opts: &IngestOptions,
) -> Result<(usize, Option<usize>), String> {
    let listing = || headers.join(", ");
    let value = match &opts.value_column {
        Some(name) => named_column(headers, name)
            .ok_or_else(|| format!("no value column named {name:?} (columns: {})", listing()))?,
        None => usual_column(headers, VALUE_COLUMNS).ok_or_else(|| {
            format!(
                "no value column found (columns: {}); name one with --value-column",
                listing()
            )
        })?,
    };
    let kind = match &opts.type_column {
        Some(name) => Some(
            named_column(headers, name)
                .ok_or_else(|| format!("no type column named {name:?} (columns: {})", listing()))?,
        ),
        None => usual_column(headers, TYPE_COLUMNS).filter(|&i| i != value),
    };
    Ok((value, kind))
}

/// The key of `value`, given the row's type cell (blank: inferred from the value).
fn row_key(value: &str, type_name: &str) -> Result<Key, (SkipReason, String)> {
    let bad = |e| (SkipReason::BadValue(e), format!("{value:?}"));
    if type_name.is_empty() {
        return Key::infer(value).map_err(bad);
    }
    if let Some(declared) = declared_hash_kind(type_name) {
        return hash_key(value, Some(declared)).map_err(bad);
    }
    match Kind::from_type_name(type_name) {
        Some(kind) => Key::parse_as(kind, value).map_err(bad),
        None => Err((
            SkipReason::UnknownType,
            format!("type {type_name:?} (value {value:?})"),
        )),
    }
}

/// Parses a generic CSV feed: a header row, a value column, an optional type column, and any of
/// the Sentinel metadata columns (`ExpirationDateTime`, `ConfidenceScore`, `Active`,
/// `TimeGenerated`, `Tags`, ... and aliases such as `first_seen`, `last_seen`, `expiry`). Each
/// row gives one [`Origin::GenericCsv`] record. The KQL columns are filled by
/// [`Indicator::for_key`] from the trimmed value. Without a `SourceSystem`-like column the
/// source stays empty ([`super::load_files`] fills in the file name).
///
/// # Errors
/// When the file has no header, a column named in `opts` is missing (the message lists the
/// columns), or no value column is found.
pub fn parse(bytes: &[u8], opts: &IngestOptions, out: &mut Collector) -> Result<(), String> {
    let input = strip_bom(bytes);
    let mut rdr = csv_reader(input);
    let headers = csv_headers(&mut rdr)?;
    let (value_col, type_col) = resolve_columns(&headers, opts)?;
    let exclude: Vec<usize> = std::iter::once(value_col).chain(type_col).collect();
    let meta = ColumnMap::new(&headers, &exclude);
    let mut record = csv::StringRecord::new();
    while let Some(line) = next_record(input, &mut rdr, &mut record, headers.len(), out)? {
        out.begin_object();
        let loc = Location::Line(line);
        let value = record.get(value_col).unwrap_or("").trim();
        if value.is_empty() {
            let detail = format!("empty {}", headers[value_col]);
            out.skip(loc, SkipReason::MissingValue, detail);
            continue;
        }
        let type_name = type_col.and_then(|i| record.get(i)).unwrap_or("").trim();
        let key = match row_key(value, type_name) {
            Ok(k) => k,
            Err((reason, detail)) => {
                out.skip(loc, reason, detail);
                continue;
            }
        };
        let mut ind = Indicator::for_key(key, value, Origin::GenericCsv);
        if let Err(detail) = apply_meta(&meta.cells(&headers, &record), &mut ind) {
            out.skip(loc, SkipReason::BadField, detail);
            continue;
        }
        out.push(ind);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::KeyError;
    use crate::ingest::count_by_kind;
    use crate::time::Timestamp;
    use std::collections::BTreeMap;

    const FEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/generic-feed.csv");
    const MSTIC: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/realdata/mstic_RapidReleaseTI_Indicators.csv"
    );

    fn run(bytes: &[u8], opts: &IngestOptions) -> Result<Collector, String> {
        let mut c = Collector::new();
        c.set_file("feed.csv");
        parse(bytes, opts, &mut c).map(|()| c)
    }

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn skips(c: &Collector) -> Vec<(u64, SkipReason)> {
        c.report()
            .problems
            .iter()
            .map(|p| match p.location {
                Location::Line(n) => (n, p.reason),
                _ => (0, p.reason),
            })
            .collect()
    }

    #[test]
    fn fixture_feed() {
        let c = run(&read(FEED), &IngestOptions::default()).expect("parses");
        let r = c.report();
        assert_eq!((r.read, r.kept, r.unusable), (14, 9, 0));
        assert_eq!(
            skips(&c),
            vec![
                (7, SkipReason::BadValue(KeyError::BadHash)),
                (9, SkipReason::UnknownType),
                (10, SkipReason::MissingValue),
                (12, SkipReason::BadValue(KeyError::BadIp)),
                (13, SkipReason::BadField),
            ]
        );
        assert!(r.problems[1].detail.contains("filepath"));
        assert!(r.problems[4].detail.contains("expiry"));
        let rows: Vec<&Indicator> = c.indicators().collect();
        let got: Vec<String> = rows
            .iter()
            .map(|i| format!("{}:{}", i.kind(), i.keys[0].value_string()))
            .collect();
        assert_eq!(
            got,
            [
                "ipv4:203.0.113.50",
                "cidr4:10.0.0.0/8",
                "domain:evil.example",
                "url:https://evil.example/x",
                "email:bad@evil.example",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "ipv4:198.51.100.9",
                "ipv6:2001:db8::1",
                "cve:CVE-2021-44228",
            ]
        );
        let first = rows[0];
        assert_eq!(first.origin, Origin::GenericCsv);
        assert_eq!(first.kql_network_ip, "203.0.113.50");
        assert_eq!(first.kql_domain_name, "");
        assert_eq!(first.valid_from, Timestamp::parse("2024-01-01"));
        assert_eq!(first.modified, Timestamp::parse("2024-03-01T12:00:00Z"));
        assert_eq!(first.expiration, Timestamp::parse("2024-12-31"));
        assert_eq!(first.confidence, Some(90.0));
        assert_eq!(first.description, "C2 server");
        assert_eq!(first.tags, "c2,botnet");
        assert_eq!(first.tlp, "TLP:AMBER");
        assert_eq!(first.source, "");
        assert_eq!(rows[1].kql_network_ip, "10.1.2.3/8");
        assert_eq!(rows[1].raw_value, "10.1.2.3/8");
        assert_eq!(rows[2].kql_domain_name, "Evil.Example");
        assert_eq!(rows[2].kql_network_ip, "");
        assert_eq!(rows[3].kql_domain_name, "");
        assert_eq!(rows[6].expiration, None);
    }

    #[test]
    fn mstic_real_feed() {
        // Expected numbers come from a Python `csv` pass over the file, independent of this
        // code. IoC_Type counts are domainname 168, sha256 57, filepath 4, IP 3, GUID 2,
        // commandline 2 and URL 1, for 237 rows. Every domain matches a DNS-label regex, every
        // sha256 is 64 hex digits, every IP is dotted-quad and the URL is http(s)://host/...
        // `datetime.strptime(v, "%m/%d/%Y")` over TimeGenerated and ExpirationDateTime fails on
        // one cell only: line 206 (goodsforuw.com) has TimeGenerated "19/20/2022", so that
        // domain row is skipped as a bad field. Kept: 167 + 57 + 3 + 1 = 228. filepath, GUID
        // and commandline are unsupported types (8 rows): lines 11-14 (filepath), 18-19 (GUID)
        // and 20-21 (commandline). Line 20 is the quoted command line with embedded quotes.
        const READ: u64 = 237;
        const KEPT_DOMAIN: u64 = 167;
        const KEPT_SHA256: u64 = 57;
        const KEPT_IPV4: u64 = 3;
        const KEPT_URL: u64 = 1;
        const SKIPPED_UNKNOWN_TYPE: u64 = 8;
        const SKIPPED_BAD_FIELD: u64 = 1;
        const SKIPPED_LINES: [u64; 9] = [11, 12, 13, 14, 18, 19, 20, 21, 206];

        let c = run(&read(MSTIC), &IngestOptions::default()).expect("parses");
        let r = c.report().clone();
        assert_eq!(r.read, READ);
        assert_eq!(r.kept, KEPT_DOMAIN + KEPT_SHA256 + KEPT_IPV4 + KEPT_URL);
        assert_eq!(r.unusable, 0);
        assert_eq!(
            r.skipped,
            BTreeMap::from([
                (SkipReason::UnknownType, SKIPPED_UNKNOWN_TYPE),
                (SkipReason::BadField, SKIPPED_BAD_FIELD),
            ])
        );
        let lines: Vec<u64> = skips(&c).iter().map(|s| s.0).collect();
        assert_eq!(lines, SKIPPED_LINES);
        // Debug-quoted in the detail, so the embedded quote shows as \".
        assert!(r.problems[6].detail.contains(r#"TPLink.exe\" 27E57D84"#));
        assert_eq!(r.problems[8].reason, SkipReason::BadField);
        assert!(r.problems[8]
            .detail
            .contains("TimeGenerated: invalid date \"19/20/2022\""));
        let recs: Vec<Indicator> = c.indicators().cloned().collect();
        assert_eq!(
            count_by_kind(&recs),
            BTreeMap::from([
                (Kind::Ipv4, KEPT_IPV4),
                (Kind::Domain, KEPT_DOMAIN),
                (Kind::Url, KEPT_URL),
                (Kind::Sha256, KEPT_SHA256),
            ])
        );
        // Metadata of the first row: 12/7/2022, expires 12/7/2025, score 100, TRUE.
        let first = &recs[0];
        assert_eq!(first.modified, Timestamp::parse("2022-12-07"));
        assert_eq!(first.expiration, Timestamp::parse("2025-12-07"));
        assert_eq!(first.confidence, Some(100.0));
        assert_eq!(first.active, Some(true));
        assert_eq!(first.tlp, "Clear");
        assert_eq!(first.threat_type, "Cryptocurrency Industry");
        // The `Type` column ("Rapid Release TI") is not mistaken for the type column.
        assert_eq!(first.kind(), Kind::Sha256);
    }

    #[test]
    fn truncated_inputs_never_panic() {
        let bytes = read(FEED);
        for end in 0..bytes.len() {
            let _ = run(&bytes[..end], &IngestOptions::default());
        }
    }

    #[test]
    fn detected_through_ingest() {
        use crate::ingest::{ingest, Format};
        for (path, kept) in [(FEED, 9), (MSTIC, 228)] {
            let mut c = Collector::new();
            let got = ingest(&read(path), path, &IngestOptions::default(), &mut c);
            assert_eq!(got, Ok(Format::GenericCsv), "{path}");
            assert_eq!(c.report().kept, kept, "{path}");
        }
    }

    #[test]
    fn named_columns() {
        let csv = b"Observed,What,Note\nevil.example,domain,x\n1.2.3.4,url,y\n";
        let opts = IngestOptions {
            value_column: Some("observed".into()),
            type_column: Some("What".into()),
            ..IngestOptions::default()
        };
        let c = run(csv, &opts).expect("parses");
        assert_eq!(c.report().kept, 1);
        assert_eq!(skips(&c), vec![(3, SkipReason::BadValue(KeyError::BadUrl))]);
        let bad = IngestOptions {
            value_column: Some("Missing".into()),
            ..IngestOptions::default()
        };
        let err = run(csv, &bad).err().unwrap_or_default();
        assert!(
            err.contains("\"Missing\"") && err.contains("Observed, What, Note"),
            "{err}"
        );
        let bad_type = IngestOptions {
            value_column: Some("Observed".into()),
            type_column: Some("Kind of thing".into()),
            ..IngestOptions::default()
        };
        assert!(run(csv, &bad_type).is_err());
        // No usual value column and none named.
        let err = run(csv, &IngestOptions::default())
            .err()
            .unwrap_or_default();
        assert!(err.contains("--value-column"), "{err}");
        // No type column: every kind inferred; an unrecognizable value is reported.
        let c = run(
            b"indicator\n1.2.3.4\nC:\\x.dll\n",
            &IngestOptions::default(),
        )
        .expect("parses");
        assert_eq!(c.report().kept, 1);
        assert_eq!(
            skips(&c),
            vec![(3, SkipReason::BadValue(KeyError::Unrecognized))]
        );
    }
}
