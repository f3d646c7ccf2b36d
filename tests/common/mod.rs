//! Shared by `hunt_reference.rs` and `hunt_duckdb_kql.rs`: a seeded PRNG, a generator of small
//! random `ThreatIntelligenceIndicator` / `NetworkConnection` / `DnsEvents` CSV datasets full of
//! colliding nasty values, KQL datetime/real rendering, and helpers that run the `iocmatch`
//! executable.
//!
//! Everything here is written from the KQL rules in the `hunt` spec, not from iocmatch's code:
//! the tests compare iocmatch against it.

#![allow(dead_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------------

/// SplitMix64: tiny, seedable, good enough to shuffle test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Time: 100 ns ticks since the Unix epoch, KQL's datetime precision
// ---------------------------------------------------------------------------------------------

pub const TICKS_PER_SEC: i64 = 10_000_000;
pub const TICKS_PER_DAY: i64 = 86_400 * TICKS_PER_SEC;

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn ticks_of(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * TICKS_PER_SEC
}

fn parts(t: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let days = t.div_euclid(TICKS_PER_DAY);
    let rest = t.rem_euclid(TICKS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    let secs = rest / TICKS_PER_SEC;
    (
        y,
        mo,
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rest % TICKS_PER_SEC,
    )
}

/// KQL's rendering of a datetime: `yyyy-MM-ddTHH:mm:ss[.fffffff]Z`, fraction zeros trimmed.
pub fn fmt_kql_time(t: i64) -> String {
    let (y, mo, d, h, mi, s, sub) = parts(t);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if sub != 0 {
        let frac = format!("{sub:07}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// A spelling of an instant, chosen by `style`: the same instant can be written several ways,
/// and all of them must compare equal once parsed.
///
/// 0 canonical (trimmed fraction, `Z`); 1 full fraction (7 digits, or 6 when `micros`);
/// 2 a space instead of `T` and no zone (UTC); 3 `+02:00` offset; 4 `-05:30` offset.
pub fn time_text(t: i64, style: usize, micros: bool) -> String {
    let shifted = |mins: i64| {
        let (y, mo, d, h, mi, s, sub) = parts(t + mins * 60 * TICKS_PER_SEC);
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if sub != 0 {
            out.push('.');
            out.push_str(format!("{sub:07}").trim_end_matches('0'));
        }
        out
    };
    match style % 5 {
        0 => fmt_kql_time(t),
        1 => {
            let (y, mo, d, h, mi, s, sub) = parts(t);
            if micros {
                format!(
                    "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z",
                    sub / 10
                )
            } else {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{sub:07}Z")
            }
        }
        2 => fmt_kql_time(t).trim_end_matches('Z').replacen('T', " ", 1),
        // A positive offset would push `9999-12-31T23:59:59Z` into year 10000, which no
        // engine should be asked to read.
        3 if parts(t).0 >= 9999 => fmt_kql_time(t),
        3 => format!("{}+02:00", shifted(120)),
        _ => format!("{}-05:30", shifted(-330)),
    }
}

/// The reference parser for the datetime spellings the generator writes: `YYYY-MM-DD`, `T` or a
/// space, `HH:MM:SS`, an optional fraction of 1 to 7 digits, then `Z`, `±HH:MM` or nothing
/// (UTC). Anything else, or an impossible calendar value, is `None` (KQL's null).
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b' '))
    {
        return None;
    }
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > mdays[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut sub = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 7 {
            return None;
        }
        sub = num(start, n)? * 10i64.pow((7 - n) as u32);
    }
    let offset_mins = match &b[i..] {
        b"" | b"Z" => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let oh = num(i + 1, 2)?;
            let om = num(i + 4, 2)?;
            let m = oh * 60 + om;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    Some(ticks_of(y, mo, d, h, mi, sec) + sub - offset_mins * 60 * TICKS_PER_SEC)
}

/// KQL's rendering of a real: no fraction when integral.
pub fn fmt_real(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A real cell as Kusto reads it: empty is null.
pub fn parse_real(s: &str) -> Option<f64> {
    if s.is_empty() {
        None
    } else {
        Some(s.parse().expect("the generator writes only numbers"))
    }
}

// ---------------------------------------------------------------------------------------------
// Value pools: small, so that collisions happen
// ---------------------------------------------------------------------------------------------

/// IP-ish values for `NetworkIP`, `DestinationIP`: spellings of one address, CIDR text, padded
/// strings, unicode digits, garbage and the empty string.
pub const IP_POOL: &[&str] = &[
    "1.2.3.4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "01.2.3.4",
    "::ffff:1.2.3.4",
    "1.2.3.5",
    "1.2.3.0/24",
    "10.0.0.0/8",
    "10.9.8.7",
    "2001:db8::1",
    "2001:DB8::1",
    "2001:0db8::1",
    "2001:db8:0:0:0:0:0:1",
    "2001:db8::/32",
    "fe80::1%eth0",
    "１.２.３.４",
    "not-an-ip",
    "",
    "",
    "192.0.2.1",
];

/// Domain-ish values for `DomainName`, `Name`: case and trailing-dot variants, padding,
/// unicode and punycode, commas and quotes, the empty string.
pub const DOMAIN_POOL: &[&str] = &[
    "evil.example",
    "EVIL.example",
    "evil.example.",
    "Evil.Example.",
    " evil.example",
    "sub.evil.example",
    "bücher.example",
    "xn--bcher-kva.example",
    "ΕΛΛΗΝΙΚΆ.example",
    "a,b.example",
    "\"quoted\".example",
    "bad..example",
    "localhost",
    "",
    "",
    "c2.test",
];

/// Other event-side strings (`SourceIP`, `ClientIP`).
pub const HOST_POOL: &[&str] = &[
    "10.0.0.1",
    "10.0.0.2",
    " 10.0.0.3",
    "",
    "host,with,comma",
    "q\"uote",
    "ünï",
    "fe80::1%eth0",
];

pub const DESCRIPTION_POOL: &[&str] = &[
    "",
    "plain",
    "with, comma",
    "with \"quotes\"",
    "multi\nline",
    "ünïcödé 例え",
    " padded ",
    "trailing,",
    "=cmd|' /C calc'!A0",
];

pub const THREAT_POOL: &[&str] = &["", "C2", "Botnet", "Phishing, Malware", "x\"y"];

pub const CONFIDENCE_POOL: &[&str] = &[
    "", "", "0", "50", "100", "75.5", "12.25", "99.9", "1e2", "50.0", "-1", "0.1", "33.333", "1000",
];

/// Event times no engine can read: KQL's null.
pub const BAD_TIME_POOL: &[&str] = &[
    "not-a-time",
    "2024-02-30T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-05-01T25:00:00Z",
    "yesterday",
];

// ---------------------------------------------------------------------------------------------
// Datasets
// ---------------------------------------------------------------------------------------------

pub const TI_HEADER: [&str; 6] = [
    "NetworkIP",
    "DomainName",
    "ConfidenceScore",
    "Description",
    "ThreatType",
    "ExpirationDateTime",
];
pub const NET_HEADER: [&str; 3] = ["TimeGenerated", "SourceIP", "DestinationIP"];
pub const DNS_HEADER: [&str; 3] = ["TimeGenerated", "ClientIP", "Name"];
pub const NET_OUT_HEADER: &str = "TimeGenerated,SourceIP,DestinationIP,ConfidenceScore,Description";
pub const DNS_OUT_HEADER: &str = "TimeGenerated,ClientIP,Name,ConfidenceScore,ThreatType";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    Network,
    Dns,
}

impl Query {
    pub fn name(self) -> &'static str {
        match self {
            Query::Network => "network",
            Query::Dns => "dns",
        }
    }

    pub fn out_header(self) -> &'static str {
        match self {
            Query::Network => NET_OUT_HEADER,
            Query::Dns => DNS_OUT_HEADER,
        }
    }
}

/// A generated dataset: the TI table, event files for both queries, and `now()`.
pub struct Dataset {
    pub now: i64,
    /// `--now` as passed to iocmatch (and, for duckdb-kql, inside `datetime(...)`).
    pub now_text: String,
    /// Rows of [`TI_HEADER`] cells.
    pub ti: Vec<[String; 6]>,
    /// Files of rows of [`NET_HEADER`] cells.
    pub net_files: Vec<Vec<[String; 3]>>,
    /// Files of rows of [`DNS_HEADER`] cells.
    pub dns_files: Vec<Vec<[String; 3]>>,
    /// Whether each CSV file is written with every field quoted (by file: TI, net..., dns...).
    pub quote_all: Vec<bool>,
}

/// Generation knobs.
#[derive(Clone, Copy)]
pub struct GenOptions {
    /// Times on microsecond boundaries and fractions of at most 6 digits (duckdb-kql keeps
    /// microseconds only).
    pub micros: bool,
    pub ti_rows: (usize, usize),
    pub events: (usize, usize),
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            micros: false,
            ti_rows: (5, 40),
            events: (20, 200),
        }
    }
}

pub fn generate(rng: &mut Rng, opts: GenOptions) -> Dataset {
    // The smallest step: one tick (100 ns), or one microsecond for duckdb-kql.
    let step: i64 = if opts.micros { 10 } else { 1 };
    let base = ticks_of(2024, 5, 1, 10, 0, 0);
    let mut now = base + (rng.next_u64() % (TICKS_PER_DAY as u64)) as i64;
    now -= now.rem_euclid(step);
    // Sometimes a round `now`, so that trimmed spellings are exercised too.
    if rng.chance(20) {
        now -= now.rem_euclid(TICKS_PER_SEC);
    }
    let now_text = if opts.micros {
        time_text(now, 1, true)
    } else {
        time_text(now, rng.below(2), false)
    };

    let far_future = ticks_of(9999, 12, 31, 23, 59, 59) + TICKS_PER_SEC - step;
    let expirations: Vec<Option<i64>> = vec![
        None,
        None,
        Some(now),
        Some(now),
        Some(now - step),
        Some(now + step),
        Some(now + 7 * step),
        Some(now - 7 * step),
        Some(now + TICKS_PER_SEC),
        Some(now - TICKS_PER_SEC),
        Some(now + TICKS_PER_DAY),
        Some(now - TICKS_PER_DAY),
        Some(far_future),
        Some(ticks_of(2000, 1, 1, 0, 0, 0)),
    ];

    let n_ti = rng.range(opts.ti_rows.0, opts.ti_rows.1);
    let mut ti: Vec<[String; 6]> = Vec::with_capacity(n_ti);
    for i in 0..n_ti {
        if i > 0 && rng.chance(20) {
            let dup = ti[rng.below(ti.len())].clone();
            ti.push(dup);
            continue;
        }
        let ip = if rng.chance(65) {
            *rng.pick(IP_POOL)
        } else {
            ""
        };
        let domain = if rng.chance(65) {
            *rng.pick(DOMAIN_POOL)
        } else {
            ""
        };
        let exp = match *rng.pick(&expirations) {
            None => String::new(),
            Some(t) => time_text(t, rng.below(5), opts.micros),
        };
        ti.push([
            ip.to_string(),
            domain.to_string(),
            rng.pick(CONFIDENCE_POOL).to_string(),
            rng.pick(DESCRIPTION_POOL).to_string(),
            rng.pick(THREAT_POOL).to_string(),
            exp,
        ]);
    }
    // `iocmatch compile` refuses a feed without one usable key: make sure there is one.
    ti[0][0] = "192.0.2.1".into();

    // A few instants shared by many events, so that sort ties happen; spelled variously.
    let instants: Vec<i64> = vec![
        now,
        now - step,
        now + step,
        base,
        base + 5 * TICKS_PER_SEC,
        base - TICKS_PER_DAY + 3 * step,
        now - TICKS_PER_DAY,
    ];
    let event_time = |rng: &mut Rng| -> String {
        match rng.below(10) {
            0 => String::new(),
            1 => rng.pick(BAD_TIME_POOL).to_string(),
            2 => {
                let t = base + (rng.next_u64() % (2 * TICKS_PER_DAY as u64)) as i64;
                time_text(t - t.rem_euclid(step), rng.below(5), opts.micros)
            }
            _ => time_text(*rng.pick(&instants), rng.below(5), opts.micros),
        }
    };

    let files = |rng: &mut Rng, keys: &[&str], other: &[&str]| -> Vec<Vec<[String; 3]>> {
        let n = rng.range(opts.events.0, opts.events.1);
        let n_files = rng.range(1, 3);
        let mut out = vec![Vec::new(); n_files];
        for _ in 0..n {
            let key = if rng.chance(85) {
                *rng.pick(keys)
            } else {
                *rng.pick(other)
            };
            let row = [
                event_time(rng),
                rng.pick(HOST_POOL).to_string(),
                key.to_string(),
            ];
            let f = rng.below(n_files);
            out[f].push(row);
        }
        // No empty file: an event file holds at least one row.
        for f in &mut out {
            if f.is_empty() {
                f.push([fmt_kql_time(now), "10.0.0.1".into(), keys[0].to_string()]);
            }
        }
        out
    };
    let net_files = files(rng, IP_POOL, DOMAIN_POOL);
    let dns_files = files(rng, DOMAIN_POOL, IP_POOL);
    let quote_all = (0..1 + net_files.len() + dns_files.len())
        .map(|_| rng.chance(25))
        .collect();
    Dataset {
        now,
        now_text,
        ti,
        net_files,
        dns_files,
        quote_all,
    }
}

/// The files of a dataset on disk.
pub struct Files {
    pub ti: PathBuf,
    pub net: Vec<PathBuf>,
    pub dns: Vec<PathBuf>,
}

impl Files {
    pub fn logs(&self, q: Query) -> &[PathBuf] {
        match q {
            Query::Network => &self.net,
            Query::Dns => &self.dns,
        }
    }
}

pub fn write_csv<const N: usize>(
    path: &Path,
    header: &[&str; N],
    rows: &[[String; N]],
    quote_all: bool,
) {
    let style = if quote_all {
        csv::QuoteStyle::Always
    } else {
        csv::QuoteStyle::Necessary
    };
    let mut w = csv::WriterBuilder::new()
        .quote_style(style)
        .from_path(path)
        .unwrap();
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

impl Dataset {
    pub fn write(&self, dir: &Path) -> Files {
        let ti = dir.join("ti.csv");
        write_csv(&ti, &TI_HEADER, &self.ti, self.quote_all[0]);
        let mut q = self.quote_all[1..].iter();
        let mut net = Vec::new();
        for (i, rows) in self.net_files.iter().enumerate() {
            let p = dir.join(format!("net{i}.csv"));
            write_csv(&p, &NET_HEADER, rows, *q.next().unwrap());
            net.push(p);
        }
        let mut dns = Vec::new();
        for (i, rows) in self.dns_files.iter().enumerate() {
            let p = dir.join(format!("dns{i}.csv"));
            write_csv(&p, &DNS_HEADER, rows, *q.next().unwrap());
            dns.push(p);
        }
        Files { ti, net, dns }
    }
}

/// Reads a CSV file's records (header included) with the `csv` crate.
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap();
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// Parses CSV text (header included) into records.
pub fn parse_csv(text: &[u8]) -> Result<Vec<Vec<String>>, csv::Error> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    r.records()
        .map(|rec| rec.map(|rec| rec.iter().map(str::to_string).collect()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The literal KQL reference
// ---------------------------------------------------------------------------------------------

/// One reference output row: its cells, and whether the event is one normalized mode accepts
/// (a valid join key, and a time that is empty or parses).
pub struct RefRow {
    pub cells: Vec<String>,
    pub time: Option<i64>,
    pub key_valid: bool,
}

/// The KQL query evaluated literally: every TI row is kept (`isnotnull` of a Kusto string is
/// always true, the empty string included); inner join = every (event, indicator) pair whose raw
/// strings are equal, case-sensitive and untrimmed, produced in event order (files in command-line
/// order, then lines) then TI row order; `ExpirationDateTime > now()` drops nulls and equal
/// instants (100 ns precision); a stable sort by time descending puts null times last.
pub fn reference(q: Query, files: &Files, now: i64) -> Vec<RefRow> {
    let ti = read_csv(&files.ti);
    assert_eq!(ti[0], TI_HEADER);
    // project the iocs columns: (key, ConfidenceScore, Description or ThreatType, expiration)
    let iocs: Vec<(String, Option<f64>, String, Option<i64>)> = ti[1..]
        .iter()
        .map(|r| {
            let key = match q {
                Query::Network => r[0].clone(),
                Query::Dns => r[1].clone(),
            };
            let text = match q {
                Query::Network => r[3].clone(),
                Query::Dns => r[4].clone(),
            };
            (key, parse_real(&r[2]), text, parse_time_cell(&r[5]))
        })
        .collect();
    let mut rows = Vec::new();
    for log in files.logs(q) {
        let events = read_csv(log);
        let header = match q {
            Query::Network => &NET_HEADER,
            Query::Dns => &DNS_HEADER,
        };
        assert_eq!(events[0], header);
        for ev in &events[1..] {
            let time = parse_time_cell(&ev[0]);
            for (key, conf, text, exp) in &iocs {
                if ev[2] != *key {
                    continue;
                }
                // where ExpirationDateTime > now(): null compares as null, i.e. not true.
                if !exp.is_some_and(|e| e > now) {
                    continue;
                }
                rows.push(RefRow {
                    cells: vec![
                        time.map(fmt_kql_time).unwrap_or_default(),
                        ev[1].clone(),
                        ev[2].clone(),
                        conf.map(fmt_real).unwrap_or_default(),
                        text.clone(),
                    ],
                    time,
                    // Normalized mode's malformed records (issue 3): an invalid key, or a time
                    // that is present but does not parse (kql reads it as null).
                    key_valid: match q {
                        Query::Network => ev[2].parse::<IpAddr>().is_ok(),
                        Query::Dns => valid_domain(&ev[2]),
                    } && (ev[0].is_empty() || time.is_some()),
                });
            }
        }
    }
    // sort by TimeGenerated desc: nulls last, stable (Vec::sort_by is).
    rows.sort_by(|a, b| match (a.time, b.time) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    rows
}

/// A datetime cell: empty is null, and so is a value no parser can read.
pub fn parse_time_cell(s: &str) -> Option<i64> {
    if s.is_empty() {
        None
    } else {
        parse_time(s)
    }
}

/// A plain ASCII host name of two or more labels, optionally with one trailing dot.
pub fn valid_domain(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The expected stdout: the header, then the rows, written by the `csv` crate.
pub fn render(q: Query, rows: &[RefRow]) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(q.out_header().split(',')).unwrap();
    for r in rows {
        w.write_record(&r.cells).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Running iocmatch
// ---------------------------------------------------------------------------------------------

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iocmatch"))
}

/// `iocmatch compile TI -o DIR/ti.iocx`; panics with stderr when it fails.
pub fn compile_index(ti: &Path, dir: &Path) -> PathBuf {
    let idx = dir.join("ti.iocx");
    let out = bin()
        .arg("compile")
        .arg(ti)
        .arg("-o")
        .arg(&idx)
        .args(["--format", "sentinel-csv", "--quiet"])
        .args(["--build-time", "2024-01-01T00:00:00Z"])
        .output()
        .expect("run iocmatch compile");
    assert!(
        out.status.success(),
        "iocmatch compile {} failed: {}",
        ti.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    idx
}

/// `iocmatch hunt QUERY --index IDX --semantics SEM --now NOW --format csv LOGS...`.
pub fn hunt(q: Query, semantics: &str, idx: &Path, now: &str, logs: &[PathBuf]) -> Output {
    bin()
        .args(["hunt", q.name(), "--index"])
        .arg(idx)
        .args(["--semantics", semantics, "--now", now, "--format", "csv"])
        .args(logs)
        .output()
        .expect("run iocmatch hunt")
}

/// The stdout of a hunt, or why it failed (exit 0 = rows, 1 = none, grep's convention; 2 =
/// error).
pub fn hunt_stdout(
    q: Query,
    semantics: &str,
    idx: &Path,
    now: &str,
    logs: &[PathBuf],
) -> Result<String, String> {
    let out = hunt(q, semantics, idx, now, logs);
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!(
            "iocmatch hunt {} --semantics {semantics} failed ({:?}): {}",
            q.name(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("hunt output is not UTF-8: {e}"))
}

/// Rows of `got` missing from `want` and the reverse, as multisets (for messages).
pub fn multiset_diff(
    want: &[Vec<String>],
    got: &[Vec<String>],
) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let mut extra: Vec<Vec<String>> = got.to_vec();
    let mut missing = Vec::new();
    for w in want {
        if let Some(i) = extra.iter().position(|g| g == w) {
            extra.swap_remove(i);
        } else {
            missing.push(w.clone());
        }
    }
    (missing, extra)
}
