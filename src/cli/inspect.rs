//! `iocmatch inspect`: counts by kind, source and expiry state, build info and size.

use super::output::{open_index, parse_time_arg};
use super::Outcome;
use anyhow::Result;
use iocmatch::index::Field;
use iocmatch::indicator::{parse_ip_net, Kind};
use iocmatch::time::Timestamp;
use ipnet::{Ipv4Net, Ipv6Net};
use iprange::IpRange;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The index file.
    #[arg(value_name = "INDEX")]
    index: PathBuf,
    /// Classify expiry as of this time (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    now: Option<Timestamp>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// How many sources to list (the largest first).
    #[arg(long, default_value_t = 20, value_name = "N")]
    top: usize,
}

#[derive(serde::Serialize, Default)]
struct Stats {
    file: String,
    bytes: usize,
    format_version: u32,
    build_time: String,
    now: String,
    records: usize,
    by_kind: BTreeMap<String, u64>,
    by_source: Vec<(String, u64)>,
    live: u64,
    expired: u64,
    no_expiration: u64,
    not_yet_valid: u64,
    inactive: u64,
    ipv4_addresses_covered: u64,
    ipv6_prefixes_merged: usize,
}

pub fn run(a: Args) -> Result<Outcome> {
    let idx = open_index(&a.index)?;
    let now = a.now.unwrap_or_else(Timestamp::now);
    let mut st = Stats {
        file: a.index.display().to_string(),
        bytes: idx.as_bytes().len(),
        format_version: iocmatch::index::format::VERSION,
        build_time: super::output::time(idx.build_time()),
        now: now.to_string(),
        records: idx.len(),
        ..Stats::default()
    };
    let mut sources: BTreeMap<String, u64> = BTreeMap::new();
    // Coverage of the address space: overlapping and nested prefixes merged by `iprange`.
    let mut v4: IpRange<Ipv4Net> = IpRange::new();
    let mut v6: IpRange<Ipv6Net> = IpRange::new();
    for r in idx.records() {
        let r = r?;
        *st.by_kind.entry(r.kind().name().to_string()).or_insert(0) += 1;
        *sources
            .entry(r.field(Field::Source).to_string())
            .or_insert(0) += 1;
        match r.expiration() {
            None => st.no_expiration += 1,
            Some(e) if e > now => st.live += 1,
            Some(_) => st.expired += 1,
        }
        if r.valid_from().is_some_and(|v| v > now) {
            st.not_yet_valid += 1;
        }
        if r.active() == Some(false) {
            st.inactive += 1;
        }
        if matches!(
            r.kind(),
            Kind::Ipv4 | Kind::Cidr4 | Kind::Ipv6 | Kind::Cidr6
        ) {
            match parse_ip_net(r.value()) {
                Ok(ipnet::IpNet::V4(n)) => {
                    v4.add(n);
                }
                Ok(ipnet::IpNet::V6(n)) => {
                    v6.add(n);
                }
                Err(_) => {}
            }
        }
    }
    v4.simplify();
    v6.simplify();
    st.ipv4_addresses_covered = v4.iter().map(|n| 1u64 << (32 - n.prefix_len())).sum();
    st.ipv6_prefixes_merged = v6.iter().count();
    let mut by_source: Vec<(String, u64)> = sources.into_iter().collect();
    by_source.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    by_source.truncate(a.top);
    st.by_source = by_source;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(Outcome::Matched);
    }
    println!("index          {}", st.file);
    println!("size           {} bytes ({} records)", st.bytes, st.records);
    println!("format         version {}", st.format_version);
    println!("built          {}", st.build_time);
    println!("by kind");
    for k in Kind::ALL {
        if let Some(n) = st.by_kind.get(k.name()) {
            println!("  {:<12} {n}", k.name());
        }
    }
    println!("by source");
    for (s, n) in &st.by_source {
        println!("  {:<40} {n}", if s.is_empty() { "(none)" } else { s });
    }
    println!("expiry as of {}", st.now);
    println!("  live         {}", st.live);
    println!("  expired      {}", st.expired);
    println!("  no expiry    {}", st.no_expiration);
    println!("  not yet valid {}", st.not_yet_valid);
    println!("  inactive     {}", st.inactive);
    println!("IPv4 addresses covered  {}", st.ipv4_addresses_covered);
    println!("IPv6 merged prefixes    {}", st.ipv6_prefixes_merged);
    Ok(Outcome::Matched)
}
