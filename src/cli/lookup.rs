//! `iocmatch lookup`: every indicator matching each value, with all its fields.

use super::output::{confidence, open_index, time};
use super::Outcome;
use anyhow::Result;
use iocmatch::index::{Field, Record};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The index file.
    #[arg(value_name = "INDEX")]
    index: PathBuf,
    /// Values to look up: IP addresses (every containing CIDR matches), CIDRs, domains, URLs,
    /// e-mail addresses, hashes, CVE ids. The kind is inferred per value.
    #[arg(required = true, value_name = "VALUE")]
    values: Vec<String>,
    /// Domains also match indicators of their parent domains (`a.evil.com` matches `evil.com`).
    #[arg(long)]
    subdomains: bool,
    /// Print one JSON object per match (NDJSON) instead of text.
    #[arg(long)]
    json: bool,
}

const FIELDS: [(&str, Field); 12] = [
    ("raw_value", Field::RawValue),
    ("id", Field::Id),
    ("name", Field::Name),
    ("description", Field::Description),
    ("threat_type", Field::ThreatType),
    ("tags", Field::Tags),
    ("source", Field::Source),
    ("tlp", Field::Tlp),
    ("created_by_ref", Field::CreatedByRef),
    ("kql_network_ip", Field::KqlNetworkIp),
    ("kql_domain_name", Field::KqlDomainName),
    ("modified", Field::Modified),
];

pub fn run(a: Args) -> Result<Outcome> {
    let idx = open_index(&a.index)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut any = false;
    for v in &a.values {
        let recs = idx.lookup(v, a.subdomains)?;
        any |= !recs.is_empty();
        if a.json {
            for r in &recs {
                writeln!(out, "{}", serde_json::to_string(&json(v, r))?)?;
            }
        } else if recs.is_empty() {
            writeln!(out, "{v}: no match")?;
        } else {
            writeln!(
                out,
                "{v}: {} match{}",
                recs.len(),
                if recs.len() == 1 { "" } else { "es" }
            )?;
            for r in &recs {
                writeln!(out, "  {} {} (record {})", r.kind(), r.value(), r.id)?;
                writeln!(out, "    confidence      {}", confidence(r.confidence()))?;
                writeln!(out, "    valid_from      {}", time(r.valid_from()))?;
                writeln!(out, "    expiration      {}", time(r.expiration()))?;
                if let Some(act) = r.active() {
                    writeln!(out, "    active          {act}")?;
                }
                for (name, f) in FIELDS {
                    let s = r.field(f);
                    if !s.is_empty() {
                        writeln!(out, "    {name:<15} {s}")?;
                    }
                }
            }
        }
    }
    out.flush()?;
    Ok(if any {
        Outcome::Matched
    } else {
        Outcome::NoMatch
    })
}

fn json(query: &str, r: &Record<'_>) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("query".into(), query.into());
    m.insert("record".into(), r.id.into());
    m.insert("kind".into(), r.kind().name().into());
    m.insert("value".into(), r.value().into());
    m.insert("confidence".into(), r.confidence().into());
    m.insert(
        "valid_from".into(),
        r.valid_from().map(|t| t.to_string()).into(),
    );
    m.insert(
        "expiration".into(),
        r.expiration().map(|t| t.to_string()).into(),
    );
    m.insert("active".into(), r.active().into());
    for (name, f) in FIELDS {
        m.insert(name.into(), r.field(f).into());
    }
    serde_json::Value::Object(m)
}
