//! Deterministic, seeded synthetic corpora: indicator feeds and the logs to hunt through.
//!
//! Benchmarks, load tests and end-to-end tests need large inputs whose contents are known:
//! millions of indicators of a realistic kind mix, and logs in which a controlled share of events
//! match them. Real feeds and real logs cannot be shipped at that scale (licences, privacy, size),
//! and random data made ad hoc in each test is neither realistic nor reproducible. This module
//! makes both from one [`GenConfig`]: every byte derives from [`GenConfig::seed`] through a
//! built-in xoshiro256** generator ([`Rng`], no dependency, identical on every platform), and all
//! dates are relative to [`GenConfig::now`], never the system clock, so the same configuration
//! always yields byte-identical files.
//!
//! * [`indicators`] makes the indicator rows ([`GenIndicator`]);
//! * [`write_indicators_csv`] / [`write_indicators_plain`] write them as a Sentinel
//!   `ThreatIntelligenceIndicator` CSV export or a plain list;
//! * [`write_network_csv`], [`write_network_ndjson`], [`write_dns_csv`], [`write_dns_ndjson`]
//!   stream `NetworkConnection` and `DnsEvents` logs in which about [`GenConfig::hit_rate`] of
//!   the events match an indicator and every other event is checked to match none;
//! * [`write_corpus`] writes all six files into a directory (`iocmatch gen`).
//!
//! The writers stream: they format each event into one reused buffer and never hold a whole
//! file in memory, so tens of millions of events are cheap. No function here panics on any
//! configuration or indicator slice; values that do not parse are simply never used as targets.

use crate::indicator::{Indicator, Key, Kind, Origin};
use crate::time::{Timestamp, TICKS_PER_SEC};
use ipnet::IpNet;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

const DAY: i64 = 86_400 * TICKS_PER_SEC;
/// Events span this many days before [`GenConfig::now`].
const EVENT_DAYS: i64 = 30;

/// A small, fast, seedable pseudo-random generator: xoshiro256** seeded through splitmix64.
///
/// The sequence for a seed is fixed forever (it is part of the corpus format): changing it would
/// change every generated corpus. Not for cryptographic use.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is four splitmix64 outputs of `seed` (never all zero).
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A number in `0..n` (multiply-shift; `0` when `n` is 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    #[inline]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + ((u128::from(self.next_u64()) * (u128::from(hi - lo) + 1)) >> 64) as u64
    }

    /// A float in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p` (never for `p <= 0` or NaN, always for `p >= 1`).
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A uniformly chosen element, or `None` for an empty slice.
    #[inline]
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }

    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        self.pick(items).copied().unwrap_or("")
    }
}

/// What to generate. Every output is a pure function of this.
#[derive(Clone, Debug, PartialEq)]
pub struct GenConfig {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Number of indicator rows ([`indicators`]).
    pub indicators: usize,
    /// Number of events in each log file.
    pub events: usize,
    /// The reference time: expirations are relative to it and events fall in the 30 days before
    /// it. Hunting a corpus with the same `now` reproduces its expiry split.
    pub now: Timestamp,
    /// The share of log events that match an indicator, in `[0, 1]` (values outside are clamped,
    /// NaN counts as 0).
    pub hit_rate: f64,
}

impl Default for GenConfig {
    /// Seed 1, 10 000 indicators, 100 000 events per log, `now` = 2025-01-01T00:00:00Z (fixed,
    /// not the clock, so defaults are reproducible), hit rate 1 %.
    fn default() -> GenConfig {
        GenConfig {
            seed: 1,
            indicators: 10_000,
            events: 100_000,
            now: Timestamp::from_unix_secs(1_735_689_600).unwrap_or_else(Timestamp::now),
            hit_rate: 0.01,
        }
    }
}

impl GenConfig {
    fn clamped_hit_rate(&self) -> f64 {
        if self.hit_rate.is_nan() {
            0.0
        } else {
            self.hit_rate.clamp(0.0, 1.0)
        }
    }
}

/// One generated indicator row, as a `ThreatIntelligenceIndicator` export would hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct GenIndicator {
    /// [`Kind::Ipv4`], [`Kind::Cidr4`], [`Kind::Ipv6`] or [`Kind::Domain`].
    pub kind: Kind,
    /// The value in canonical form (`203.0.113.7`, `198.51.0.0/16`, `2a01:4f8::1`, `evil.com`).
    pub value: String,
    /// `ConfidenceScore`, 25 to 100.
    pub confidence: u8,
    /// `Description`, from a fixed list matching the threat type.
    pub description: &'static str,
    /// `ThreatType` (`C2`, `Botnet`, `Phishing`, ...).
    pub threat_type: &'static str,
    /// `ExpirationDateTime`: about 70 % after `now`, 20 % before, 10 % `None` (null).
    pub expiration: Option<Timestamp>,
    /// `IndicatorId`, unique per row (duplicate values get their own id).
    pub id: String,
    /// `TimeGenerated`: a moment in the 90 days before `now`.
    pub time_generated: Timestamp,
}

impl GenIndicator {
    /// The row's normalized key (`None` only for a hand-made row with an invalid value).
    pub fn key(&self) -> Option<Key> {
        Key::parse_as(self.kind, &self.value).ok()
    }

    /// The row as the Sentinel parser would read it back from [`write_indicators_csv`]:
    /// [`Indicator::for_key`] with origin [`Origin::SentinelLegacy`], plus id, description,
    /// threat type, confidence, expiration, `TimeGenerated` as `modified` and `Active = true`.
    /// `None` when the value does not parse.
    pub fn to_indicator(&self) -> Option<Indicator> {
        let mut ind = Indicator::for_key(self.key()?, &self.value, Origin::SentinelLegacy);
        ind.id.clone_from(&self.id);
        ind.description = self.description.to_string();
        ind.threat_type = self.threat_type.to_string();
        ind.confidence = Some(f64::from(self.confidence));
        ind.expiration = self.expiration;
        ind.modified = Some(self.time_generated);
        ind.active = Some(true);
        Some(ind)
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary.

const THREATS: &[(&str, &str)] = &[
    ("C2", "Cobalt Strike team server"),
    ("C2", "Sliver C2 endpoint"),
    ("C2", "AsyncRAT controller"),
    ("Botnet", "Emotet distribution node"),
    ("Botnet", "Mirai scanner and loader"),
    ("Botnet", "QakBot proxy tier"),
    ("Phishing", "Credential phishing page"),
    ("Phishing", "Microsoft 365 login lure"),
    ("Phishing", "Banking phishing kit"),
    ("Malware", "Malware download host"),
    ("Malware", "Stealer exfiltration endpoint"),
    ("Ransomware", "Ransomware negotiation portal"),
    ("Ransomware", "LockBit affiliate infrastructure"),
    ("MaliciousUrl", "Drive-by exploit kit landing"),
    ("Proxy", "Anonymizing proxy exit node"),
    ("CryptoMining", "Cryptomining pool endpoint"),
    ("WatchList", "Mass scanning source"),
];

const WORDS: &[&str] = &[
    "secure", "login", "update", "cdn", "mail", "account", "verify", "service", "cloud", "support",
    "portal", "online", "web", "app", "api", "auth", "office", "docs", "drive", "pay", "bank",
    "shop", "store", "track", "files", "static", "media", "news", "info", "data", "sync", "host",
    "link", "click", "get", "free", "best", "top", "fast", "smart", "safe", "global", "micro",
    "soft", "tech", "sys", "digital", "home", "live", "prime", "alpha", "nova", "zen", "blue",
    "red", "dark", "star", "sun", "moon", "cyber", "net", "hub", "box", "zone", "wave", "path",
    "gate", "core", "edge", "pixel", "delta", "omega", "vector", "metric", "signal", "cargo",
    "invoice", "wallet", "crypto", "token", "reward", "promo", "deal", "admin",
];

const SUBDOMAINS: &[&str] = &[
    "www", "cdn", "api", "mail", "login", "static", "img", "dl", "update", "m", "secure", "portal",
    "app", "files", "auth", "ns1", "web", "beacon",
];

const CONSONANTS: &[u8] = b"bcdfghjklmnprstvz";
const VOWELS: &[u8] = b"aeiou";

/// TLDs, repeated to weight them roughly as malicious-domain feeds do.
const TLDS: &[&str] = &[
    "com", "com", "com", "com", "com", "com", "com", "com", "net", "net", "net", "org", "org",
    "info", "info", "xyz", "xyz", "top", "top", "ru", "ru", "cn", "io", "biz", "online", "site",
    "club", "shop", "live", "co", "me", "cc", "pw", "su", "de", "uk", "in", "br", "tk", "icu",
];

/// Popular benign names for DNS misses.
const BENIGN: &[&str] = &[
    "www.google.com",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "graph.microsoft.com",
    "settings-win.data.microsoft.com",
    "github.com",
    "api.github.com",
    "cdn.jsdelivr.net",
    "www.bing.com",
    "time.windows.com",
    "ocsp.digicert.com",
    "fonts.googleapis.com",
    "s3.amazonaws.com",
    "update.googleapis.com",
    "clients4.google.com",
    "teams.microsoft.com",
    "slack.com",
    "zoom.us",
    "www.wikipedia.org",
    "ctldl.windowsupdate.com",
    "dns.msftncsi.com",
    "www.youtube.com",
    "static.xx.fbcdn.net",
    "www.linkedin.com",
    "login.live.com",
    "safebrowsing.googleapis.com",
    "edge.microsoft.com",
    "officecdn.microsoft.com",
    "www.apple.com",
    "push.apple.com",
];

/// First hextets of allocated global-unicast IPv6 space.
const V6_PREFIXES: &[u16] = &[
    0x2001, 0x2400, 0x2401, 0x2402, 0x2403, 0x2404, 0x2405, 0x2406, 0x2600, 0x2601, 0x2602, 0x2603,
    0x2604, 0x2605, 0x2606, 0x2607, 0x2620, 0x2800, 0x2803, 0x2a00, 0x2a01, 0x2a02, 0x2a03, 0x2a04,
    0x2a05, 0x2a06, 0x2a07, 0x2a0e, 0x2c0f,
];

/// CIDR prefix lengths, weighted towards /24 as real feeds are.
const CIDR_LENS: &[u8] = &[
    16, 17, 18, 19, 20, 20, 21, 21, 22, 22, 22, 23, 23, 23, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
    25, 25, 25, 26, 26, 26, 27, 27, 27, 28, 28, 28, 29, 29, 29, 30, 30,
];

// ---------------------------------------------------------------------------------------------
// Values.

/// Whether an IPv4 address is outside the private, shared, loopback, link-local, documentation,
/// benchmarking, multicast and reserved ranges.
fn is_public_v4(a: u32) -> bool {
    let o = a >> 24;
    !(o == 0
        || o == 10
        || o == 127
        || o >= 224
        || a & 0xFFC0_0000 == 0x6440_0000
        || a & 0xFFFF_0000 == 0xA9FE_0000
        || a & 0xFFF0_0000 == 0xAC10_0000
        || a & 0xFFFF_0000 == 0xC0A8_0000
        || a & 0xFFFF_FF00 == 0xC000_0000
        || a & 0xFFFF_FF00 == 0xC000_0200
        || a & 0xFFFE_0000 == 0xC612_0000
        || a & 0xFFFF_FF00 == 0xC633_6400
        || a & 0xFFFF_FF00 == 0xCB00_7100)
}

fn public_v4(rng: &mut Rng) -> u32 {
    for _ in 0..64 {
        let a = rng.next_u64() as u32;
        if is_public_v4(a) {
            return a;
        }
    }
    0x0808_0808
}

fn private_v4(rng: &mut Rng) -> u32 {
    let r = rng.next_u64() as u32;
    match rng.below(10) {
        0..=6 => 0x0A00_0000 | (r & 0x00FF_FFFF),
        7 | 8 => 0xC0A8_0000 | (r & 0x0000_FFFF),
        _ => 0xAC10_0000 | (r & 0x000F_FFFF),
    }
}

fn global_v6(rng: &mut Rng) -> u128 {
    let first = rng.pick(V6_PREFIXES).copied().unwrap_or(0x2001);
    let mut second = rng.next_u64() as u16;
    if first == 0x2001 && second == 0x0db8 {
        second = 0x0db9;
    }
    let net = (u128::from(first) << 112)
        | (u128::from(second) << 96)
        | (u128::from(rng.next_u64() as u32) << 64);
    let iid = if rng.chance(0.5) {
        u128::from(rng.next_u64())
    } else {
        u128::from(rng.range(1, 0x20))
    };
    net | iid
}

fn ula_v6(rng: &mut Rng) -> u128 {
    (0xfd00u128 << 112) | (u128::from(rng.next_u64()) << 48) | u128::from(rng.next_u64() as u16)
}

fn push_syllables(rng: &mut Rng, out: &mut String, n: u64) {
    for _ in 0..n {
        let c = CONSONANTS
            .get(rng.below(CONSONANTS.len() as u64) as usize)
            .copied()
            .unwrap_or(b'k');
        let v = VOWELS
            .get(rng.below(VOWELS.len() as u64) as usize)
            .copied()
            .unwrap_or(b'a');
        out.push(char::from(c));
        out.push(char::from(v));
        if rng.chance(0.2) {
            out.push(char::from(
                *b"nrsx".get(rng.below(4) as usize).unwrap_or(&b'n'),
            ));
        }
    }
}

fn push_digits(rng: &mut Rng, out: &mut String, n: u64) {
    for _ in 0..n {
        out.push(char::from(b'0' + rng.below(10) as u8));
    }
}

/// The registrable label: varied enough that accidental repeats stay rare at millions.
fn push_main_label(rng: &mut Rng, out: &mut String) {
    match rng.below(20) {
        0..=8 => {
            let n = rng.range(3, 4);
            push_syllables(rng, out, n);
        }
        9..=14 => {
            out.push_str(rng.pick_str(WORDS));
            push_syllables(rng, out, 2);
        }
        15..=17 => {
            out.push_str(rng.pick_str(WORDS));
            out.push('-');
            out.push_str(rng.pick_str(WORDS));
            let n = rng.range(2, 3);
            push_digits(rng, out, n);
        }
        _ => {
            out.push_str(rng.pick_str(WORDS));
            out.push_str(rng.pick_str(WORDS));
            push_syllables(rng, out, 1);
        }
    }
}

/// A random label for the left of a name.
fn push_sub_label(rng: &mut Rng, out: &mut String) {
    match rng.below(4) {
        0 | 1 => out.push_str(rng.pick_str(SUBDOMAINS)),
        2 => out.push_str(rng.pick_str(WORDS)),
        _ => {
            let n = rng.range(1, 3);
            push_syllables(rng, out, n);
        }
    }
}

/// A domain of 1 to 3 labels plus a TLD.
fn push_domain(rng: &mut Rng, out: &mut String) {
    let subs = match rng.below(20) {
        0..=9 => 0,
        10..=16 => 1,
        _ => 2,
    };
    for _ in 0..subs {
        push_sub_label(rng, out);
        out.push('.');
    }
    push_main_label(rng, out);
    out.push('.');
    out.push_str(rng.pick_str(TLDS));
}

fn shift(t: Timestamp, by: i64) -> Timestamp {
    let ticks = t
        .ticks()
        .saturating_add(by)
        .clamp(Timestamp::MIN.ticks(), Timestamp::MAX.ticks());
    Timestamp::from_ticks(ticks).unwrap_or(t)
}

fn uuid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFF,
        0x8000 | ((b >> 48) & 0x3FFF),
        b & 0xFFFF_FFFF_FFFF
    )
}

/// Generates `cfg.indicators` indicator rows.
///
/// The mix, in expectation: 60 % IPv4 addresses (public space only), 5 % IPv4 CIDRs (/16 to
/// /30, most /24), 5 % IPv6 addresses (allocated global unicast), 30 % domains (one to three
/// plausible labels and a common TLD). About 5 % of the rows repeat the value (and kind) of an
/// earlier row under a new id, as feeds that report one indicator several times do; a few more
/// repeats happen by chance. Expirations: 70 % in the year after `now`, 20 % in the 180 days
/// before, 10 % none.
pub fn indicators(cfg: &GenConfig) -> Vec<GenIndicator> {
    let mut rng = Rng::new(cfg.seed ^ 0x696E_6469_6361_746F);
    let mut out: Vec<GenIndicator> = Vec::with_capacity(cfg.indicators.min(1 << 22));
    for i in 0..cfg.indicators {
        let dup = if i > 0 && rng.chance(0.05) {
            out.get(rng.below(i as u64) as usize)
                .map(|d| (d.kind, d.value.clone()))
        } else {
            None
        };
        let (kind, value) = match dup {
            Some(kv) => kv,
            None => {
                let roll = rng.below(100);
                match roll {
                    0..=59 => (Kind::Ipv4, Ipv4Addr::from(public_v4(&mut rng)).to_string()),
                    60..=64 => {
                        let len = rng.pick(CIDR_LENS).copied().unwrap_or(24);
                        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                        let net = public_v4(&mut rng) & mask;
                        (Kind::Cidr4, format!("{}/{len}", Ipv4Addr::from(net)))
                    }
                    65..=69 => (Kind::Ipv6, Ipv6Addr::from(global_v6(&mut rng)).to_string()),
                    _ => {
                        let mut d = String::with_capacity(24);
                        push_domain(&mut rng, &mut d);
                        (Kind::Domain, d)
                    }
                }
            }
        };
        let (threat_type, description) = rng.pick(THREATS).copied().unwrap_or(("C2", ""));
        let confidence = rng.range(25, 100) as u8;
        let expiration = match rng.below(10) {
            0..=6 => Some(shift(
                cfg.now,
                rng.range(60 * TICKS_PER_SEC as u64, 365 * DAY as u64) as i64,
            )),
            7 | 8 => Some(shift(
                cfg.now,
                -(rng.range(60 * TICKS_PER_SEC as u64, 180 * DAY as u64) as i64),
            )),
            _ => None,
        };
        let time_generated = shift(cfg.now, -(rng.below(90 * DAY as u64) as i64));
        let id = uuid(&mut rng);
        out.push(GenIndicator {
            kind,
            value,
            confidence,
            description,
            threat_type,
            expiration,
            id,
            time_generated,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Formatting into a reused buffer.

/// Streams formatted bytes to a writer in 64 KiB chunks.
struct Out<'a, W: Write> {
    w: &'a mut W,
    buf: Vec<u8>,
}

impl<'a, W: Write> Out<'a, W> {
    fn new(w: &'a mut W) -> Self {
        Out {
            w,
            buf: Vec::with_capacity(1 << 17),
        }
    }

    #[inline]
    fn end_line(&mut self) -> io::Result<()> {
        self.buf.push(b'\n');
        if self.buf.len() >= 1 << 16 {
            self.w.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        self.w.flush()
    }
}

#[inline]
fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

#[inline]
fn push_padded(buf: &mut Vec<u8>, n: u32, width: usize) {
    let mut tmp = [b'0'; 10];
    let mut n = n;
    let width = width.min(tmp.len());
    for slot in tmp[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf.extend_from_slice(&tmp[..width]);
}

/// `yyyy-MM-ddTHH:mm:ss.fffffffZ`, always seven fraction digits.
#[inline]
fn push_ts(buf: &mut Vec<u8>, t: Timestamp) {
    let (y, mo, d, h, mi, s, sub) = t.to_parts();
    push_padded(buf, y.clamp(0, 9999) as u32, 4);
    buf.push(b'-');
    push_padded(buf, mo, 2);
    buf.push(b'-');
    push_padded(buf, d, 2);
    buf.push(b'T');
    push_padded(buf, h, 2);
    buf.push(b':');
    push_padded(buf, mi, 2);
    buf.push(b':');
    push_padded(buf, s, 2);
    buf.push(b'.');
    push_padded(buf, sub, 7);
    buf.push(b'Z');
}

#[inline]
fn push_v4(buf: &mut Vec<u8>, a: u32) {
    for (i, b) in a.to_be_bytes().into_iter().enumerate() {
        if i > 0 {
            buf.push(b'.');
        }
        push_u64(buf, u64::from(b));
    }
}

#[inline]
fn push_ip(buf: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => push_v4(buf, u32::from(a)),
        // Writing to a Vec cannot fail.
        IpAddr::V6(a) => {
            let _ = write!(buf, "{a}");
        }
    }
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn push_csv(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        buf.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                buf.push(b'"');
            }
            buf.push(b);
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(s.as_bytes());
    }
}

/// A JSON string literal.
fn push_json(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    for &b in s {
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            0..=0x1F => {
                let _ = write!(buf, "\\u{b:04x}");
            }
            _ => buf.push(b),
        }
    }
    buf.push(b'"');
}

// ---------------------------------------------------------------------------------------------
// Indicator writers.

/// Writes the rows as a Sentinel `ThreatIntelligenceIndicator` CSV export with the columns
/// `TimeGenerated,IndicatorId,NetworkIP,DomainName,ConfidenceScore,Description,ThreatType,`
/// `ExpirationDateTime,Active`. IP and CIDR rows fill `NetworkIP` (and leave `DomainName`
/// empty), domain rows the reverse. Dates are ISO 8601 UTC with seven fraction digits; a `None`
/// expiration is an empty cell; `Active` is `true`. Fields are quoted only when needed.
///
/// # Errors
/// Whatever `w` returns.
pub fn write_indicators_csv(w: &mut impl Write, rows: &[GenIndicator]) -> io::Result<()> {
    let mut out = Out::new(w);
    out.buf.extend_from_slice(
        b"TimeGenerated,IndicatorId,NetworkIP,DomainName,ConfidenceScore,Description,ThreatType,ExpirationDateTime,Active",
    );
    out.end_line()?;
    for r in rows {
        let b = &mut out.buf;
        push_ts(b, r.time_generated);
        b.push(b',');
        push_csv(b, &r.id);
        b.push(b',');
        if r.kind == Kind::Domain {
            b.push(b',');
            push_csv(b, &r.value);
        } else {
            push_csv(b, &r.value);
            b.push(b',');
        }
        b.push(b',');
        push_u64(b, u64::from(r.confidence));
        b.push(b',');
        push_csv(b, r.description);
        b.push(b',');
        push_csv(b, r.threat_type);
        b.push(b',');
        if let Some(t) = r.expiration {
            push_ts(b, t);
        }
        b.extend_from_slice(b",true");
        out.end_line()?;
    }
    out.finish()
}

/// Writes the values one per line (a plain list; duplicates appear once per row).
///
/// # Errors
/// Whatever `w` returns.
pub fn write_indicators_plain(w: &mut impl Write, rows: &[GenIndicator]) -> io::Result<()> {
    let mut out = Out::new(w);
    for r in rows {
        // A value with a line break would split; generated values never have one.
        out.buf.extend(
            r.value
                .bytes()
                .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
        out.end_line()?;
    }
    out.finish()
}

// ---------------------------------------------------------------------------------------------
// Hit targets and the miss check.

/// A fast, deterministic hasher (the Fx multiply-rotate scheme) for the miss checks, which run
/// once or more per event: the default SipHash would dominate the writers' time.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
}

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Fold the well-mixed high bits down: the table indexes by the low bits.
        self.0 ^ (self.0 >> 29)
    }
}

type FxSet<T> = HashSet<T, BuildHasherDefault<Fx>>;

/// What the log generators aim at, and what a miss must avoid.
struct Targets {
    /// One entry per IP row (duplicates included), to aim hits at.
    ips: Vec<IpNet>,
    /// One entry per domain row, normalized.
    domains: Vec<String>,
    v4: FxSet<u32>,
    v4_ranges: Vec<(u32, u32)>,
    v6: FxSet<u128>,
    v6_ranges: Vec<(u128, u128)>,
    names: FxSet<String>,
}

fn merge<T: Ord + Copy>(mut r: Vec<(T, T)>) -> Vec<(T, T)> {
    r.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn in_ranges<T: Ord + Copy>(r: &[(T, T)], a: T) -> bool {
    let i = r.partition_point(|x| x.0 <= a);
    i > 0 && r.get(i - 1).is_some_and(|x| a <= x.1)
}

impl Targets {
    fn new(rows: &[GenIndicator]) -> Targets {
        let mut t = Targets {
            ips: Vec::new(),
            domains: Vec::new(),
            v4: FxSet::default(),
            v4_ranges: Vec::new(),
            v6: FxSet::default(),
            v6_ranges: Vec::new(),
            names: FxSet::default(),
        };
        let mut r4 = Vec::new();
        let mut r6 = Vec::new();
        for row in rows {
            match row.key() {
                Some(Key::Ip(net)) => {
                    t.ips.push(net);
                    match net {
                        IpNet::V4(n) if n.prefix_len() == 32 => {
                            t.v4.insert(u32::from(n.addr()));
                        }
                        IpNet::V4(n) => r4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                        IpNet::V6(n) if n.prefix_len() == 128 => {
                            t.v6.insert(u128::from(n.addr()));
                        }
                        IpNet::V6(n) => {
                            r6.push((u128::from(n.network()), u128::from(n.broadcast())))
                        }
                    }
                }
                Some(Key::Str(Kind::Domain, d)) => {
                    t.names.insert(d.clone());
                    t.domains.push(d);
                }
                _ => {}
            }
        }
        t.v4_ranges = merge(r4);
        t.v6_ranges = merge(r6);
        t
    }

    fn hits_ip(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.contains(&a) || in_ranges(&self.v4_ranges, a)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.contains(&a) || in_ranges(&self.v6_ranges, a)
            }
        }
    }

    /// Whether a name (any case, optional trailing dot) or one of its label suffixes is a
    /// domain target.
    fn hits_name(&self, name: &[u8]) -> bool {
        let name = name.strip_suffix(b".").unwrap_or(name);
        // Generated misses are lowercase already: no allocation on the hot path.
        let lower;
        let name = if name.iter().any(u8::is_ascii_uppercase) {
            lower = name.to_ascii_lowercase();
            &lower[..]
        } else {
            name
        };
        let Ok(mut s) = std::str::from_utf8(name) else {
            return false;
        };
        loop {
            if self.names.contains(s) {
                return true;
            }
            match s.split_once('.') {
                Some((_, rest)) => s = rest,
                None => return false,
            }
        }
    }

    /// An address inside a random IP target, or `None` without IP targets.
    fn ip_hit(&self, rng: &mut Rng) -> Option<IpAddr> {
        let net = *rng.pick(&self.ips)?;
        Some(match net {
            IpNet::V4(n) => {
                let host = u32::MAX.checked_shr(u32::from(n.prefix_len())).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(
                    u32::from(n.network()) | (rng.next_u64() as u32 & host),
                ))
            }
            IpNet::V6(n) => {
                let host = u128::MAX
                    .checked_shr(u32::from(n.prefix_len()))
                    .unwrap_or(0);
                let r = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
                IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | (r & host)))
            }
        })
    }

    /// A public address that matches no target (retrying a few times; practically always).
    fn v4_miss(&self, rng: &mut Rng) -> IpAddr {
        let mut a = public_v4(rng);
        for _ in 0..32 {
            if !self.hits_ip(IpAddr::V4(Ipv4Addr::from(a))) {
                break;
            }
            a = public_v4(rng);
        }
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn v6_miss(&self, rng: &mut Rng) -> IpAddr {
        let mut a = global_v6(rng);
        for _ in 0..32 {
            if !self.hits_ip(IpAddr::V6(Ipv6Addr::from(a))) {
                break;
            }
            a = global_v6(rng);
        }
        IpAddr::V6(Ipv6Addr::from(a))
    }
}

// ---------------------------------------------------------------------------------------------
// Event streams.

/// Ascending event times over the 30 days before `now`.
struct Clock {
    start: i64,
    span: u128,
    n: u128,
}

impl Clock {
    fn new(cfg: &GenConfig) -> Clock {
        let start = shift(cfg.now, -EVENT_DAYS * DAY);
        Clock {
            start: start.ticks(),
            span: (cfg.now.ticks() - start.ticks()).max(0) as u128,
            n: (cfg.events as u128).max(1),
        }
    }

    /// The time of event `i`: the start of its slot plus a random offset inside the slot, so
    /// times never decrease.
    fn at(&self, i: usize, rng: &mut Rng) -> Timestamp {
        let base = (self.span * i as u128 / self.n) as i64;
        let slot = (self.span / self.n) as u64;
        Timestamp::from_ticks(
            self.start
                .saturating_add(base)
                .saturating_add(rng.below(slot) as i64),
        )
        .unwrap_or(Timestamp::MIN)
    }
}

struct NetEvent {
    time: Timestamp,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    proto: &'static str,
    bytes: u64,
}

const PORTS: &[u16] = &[
    443, 443, 443, 443, 443, 443, 443, 443, 80, 80, 80, 80, 53, 53, 22, 8080, 8443, 445, 3389, 25,
    123, 993, 4444, 0, 0, 0,
];

/// What both event generators step through: their random stream, clock and event count.
struct Events {
    rng: Rng,
    clock: Clock,
    hit_rate: f64,
    i: usize,
    n: usize,
}

impl Events {
    /// The events of `cfg`, drawing from a stream seeded by `cfg.seed ^ salt`.
    fn new(cfg: &GenConfig, salt: u64) -> Events {
        Events {
            rng: Rng::new(cfg.seed ^ salt),
            clock: Clock::new(cfg),
            hit_rate: cfg.clamped_hit_rate(),
            i: 0,
            n: cfg.events,
        }
    }

    /// The next event's time and whether it is to hit an indicator; `None` after the last.
    fn next(&mut self) -> Option<(Timestamp, bool)> {
        if self.i >= self.n {
            return None;
        }
        let time = self.clock.at(self.i, &mut self.rng);
        self.i += 1;
        Some((time, self.rng.chance(self.hit_rate)))
    }
}

struct NetGen<'a> {
    t: &'a Targets,
    ev: Events,
}

impl<'a> NetGen<'a> {
    fn new(cfg: &GenConfig, t: &'a Targets) -> Self {
        NetGen {
            t,
            ev: Events::new(cfg, 0x6E65_7477_6F72_6B21),
        }
    }
}

impl Iterator for NetGen<'_> {
    type Item = NetEvent;

    fn next(&mut self) -> Option<NetEvent> {
        let (time, hit) = self.ev.next()?;
        let rng = &mut self.ev.rng;
        let hit = if hit { self.t.ip_hit(rng) } else { None };
        let dst = match hit {
            Some(a) => a,
            None if rng.chance(0.07) => self.t.v6_miss(rng),
            None => self.t.v4_miss(rng),
        };
        let src = match dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(private_v4(rng))),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(ula_v6(rng))),
        };
        let port = match rng.pick(PORTS).copied().unwrap_or(443) {
            0 => rng.range(1024, 65535) as u16,
            p => p,
        };
        let proto = if matches!(port, 53 | 123) || rng.chance(0.05) {
            "UDP"
        } else {
            "TCP"
        };
        let magnitude = rng.range(6, 22) as u32;
        let bytes = 40 + rng.below(1u64 << magnitude);
        Some(NetEvent {
            time,
            src,
            dst,
            port,
            proto,
            bytes,
        })
    }
}

struct DnsEvent {
    time: Timestamp,
    client: u32,
    qtype: &'static str,
    ips: [Option<IpAddr>; 2],
}

struct DnsGen<'a> {
    t: &'a Targets,
    ev: Events,
    scratch: String,
}

impl<'a> DnsGen<'a> {
    fn new(cfg: &GenConfig, t: &'a Targets) -> Self {
        DnsGen {
            t,
            ev: Events::new(cfg, 0x646E_7365_7665_6E74),
            scratch: String::with_capacity(64),
        }
    }

    /// The next event, its queried name written to `name` (cleared first).
    fn next_into(&mut self, name: &mut Vec<u8>) -> Option<DnsEvent> {
        let (time, hit) = self.ev.next()?;
        name.clear();
        let rng = &mut self.ev.rng;
        let target = if hit { rng.pick(&self.t.domains) } else { None };
        match target {
            Some(d) => match rng.below(20) {
                // Exact.
                0..=11 => name.extend_from_slice(d.as_bytes()),
                // A subdomain of the indicator.
                12..=16 => {
                    for _ in 0..rng.range(1, 2) {
                        self.scratch.clear();
                        push_sub_label(rng, &mut self.scratch);
                        name.extend_from_slice(self.scratch.as_bytes());
                        name.push(b'.');
                    }
                    name.extend_from_slice(d.as_bytes());
                }
                // All upper case.
                17 => name.extend(d.bytes().map(|b| b.to_ascii_uppercase())),
                // Mixed case.
                _ => name.extend(d.bytes().map(|b| {
                    if rng.chance(0.5) {
                        b.to_ascii_uppercase()
                    } else {
                        b
                    }
                })),
            },
            None => {
                for _ in 0..32 {
                    name.clear();
                    if rng.chance(0.5) {
                        name.extend_from_slice(rng.pick_str(BENIGN).as_bytes());
                    } else {
                        self.scratch.clear();
                        push_domain(rng, &mut self.scratch);
                        name.extend_from_slice(self.scratch.as_bytes());
                    }
                    if !self.t.hits_name(name) {
                        break;
                    }
                }
            }
        }
        let client = private_v4(rng);
        let (qtype, ips) = match rng.below(20) {
            0..=14 => {
                let second = rng.chance(0.25).then(|| self.t.v4_miss(rng));
                ("A", [Some(self.t.v4_miss(rng)), second])
            }
            15..=17 => ("AAAA", [Some(self.t.v6_miss(rng)), None]),
            18 => ("MX", [None, None]),
            _ => ("TXT", [None, None]),
        };
        Some(DnsEvent {
            time,
            client,
            qtype,
            ips,
        })
    }
}

fn push_ip_list(buf: &mut Vec<u8>, ips: &[Option<IpAddr>; 2]) {
    for (i, a) in ips.iter().flatten().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_ip(buf, *a);
    }
}

fn net_csv(w: &mut impl Write, cfg: &GenConfig, t: &Targets) -> io::Result<()> {
    let mut out = Out::new(w);
    out.buf.extend_from_slice(
        b"TimeGenerated,SourceIP,DestinationIP,DestinationPort,Protocol,BytesSent",
    );
    out.end_line()?;
    for e in NetGen::new(cfg, t) {
        let b = &mut out.buf;
        push_ts(b, e.time);
        b.push(b',');
        push_ip(b, e.src);
        b.push(b',');
        push_ip(b, e.dst);
        b.push(b',');
        push_u64(b, u64::from(e.port));
        b.push(b',');
        b.extend_from_slice(e.proto.as_bytes());
        b.push(b',');
        push_u64(b, e.bytes);
        out.end_line()?;
    }
    out.finish()
}

fn net_ndjson(w: &mut impl Write, cfg: &GenConfig, t: &Targets) -> io::Result<()> {
    let mut out = Out::new(w);
    for e in NetGen::new(cfg, t) {
        let b = &mut out.buf;
        b.extend_from_slice(b"{\"TimeGenerated\":\"");
        push_ts(b, e.time);
        b.extend_from_slice(b"\",\"SourceIP\":\"");
        push_ip(b, e.src);
        b.extend_from_slice(b"\",\"DestinationIP\":\"");
        push_ip(b, e.dst);
        b.extend_from_slice(b"\",\"DestinationPort\":");
        push_u64(b, u64::from(e.port));
        b.extend_from_slice(b",\"Protocol\":\"");
        b.extend_from_slice(e.proto.as_bytes());
        b.extend_from_slice(b"\",\"BytesSent\":");
        push_u64(b, e.bytes);
        b.push(b'}');
        out.end_line()?;
    }
    out.finish()
}

fn dns_csv(w: &mut impl Write, cfg: &GenConfig, t: &Targets) -> io::Result<()> {
    let mut out = Out::new(w);
    out.buf
        .extend_from_slice(b"TimeGenerated,ClientIP,Name,QueryType,IPAddresses");
    out.end_line()?;
    let mut gen = DnsGen::new(cfg, t);
    let mut name = Vec::with_capacity(64);
    while let Some(e) = gen.next_into(&mut name) {
        let b = &mut out.buf;
        push_ts(b, e.time);
        b.push(b',');
        push_v4(b, e.client);
        b.push(b',');
        push_csv(b, std::str::from_utf8(&name).unwrap_or(""));
        b.push(b',');
        b.extend_from_slice(e.qtype.as_bytes());
        b.push(b',');
        let two = e.ips[1].is_some();
        if two {
            b.push(b'"');
        }
        push_ip_list(b, &e.ips);
        if two {
            b.push(b'"');
        }
        out.end_line()?;
    }
    out.finish()
}

fn dns_ndjson(w: &mut impl Write, cfg: &GenConfig, t: &Targets) -> io::Result<()> {
    let mut out = Out::new(w);
    let mut gen = DnsGen::new(cfg, t);
    let mut name = Vec::with_capacity(64);
    while let Some(e) = gen.next_into(&mut name) {
        let b = &mut out.buf;
        b.extend_from_slice(b"{\"TimeGenerated\":\"");
        push_ts(b, e.time);
        b.extend_from_slice(b"\",\"ClientIP\":\"");
        push_v4(b, e.client);
        b.extend_from_slice(b"\",\"Name\":");
        push_json(b, &name);
        b.extend_from_slice(b",\"QueryType\":\"");
        b.extend_from_slice(e.qtype.as_bytes());
        b.extend_from_slice(b"\",\"IPAddresses\":\"");
        push_ip_list(b, &e.ips);
        b.extend_from_slice(b"\"}");
        out.end_line()?;
    }
    out.finish()
}

/// Writes a `NetworkConnection` log as CSV: a header
/// `TimeGenerated,SourceIP,DestinationIP,DestinationPort,Protocol,BytesSent`, then
/// `cfg.events` events with ascending times over the 30 days before `cfg.now`.
///
/// Sources are private addresses (ULA for IPv6 flows). About `cfg.hit_rate` of the events go to
/// an indicator's address: an IPv4 address exactly, an address inside an IPv4 CIDR, or an IPv6
/// address, in the proportions of the indicator rows (expired indicators included). Every
/// other destination is a random public address checked to match no indicator (7 % of them
/// IPv6). The network and DNS logs use independent random streams.
///
/// # Errors
/// Whatever `w` returns.
pub fn write_network_csv(
    w: &mut impl Write,
    cfg: &GenConfig,
    rows: &[GenIndicator],
) -> io::Result<()> {
    net_csv(w, cfg, &Targets::new(rows))
}

/// The events of [`write_network_csv`] (the same ones, for the same arguments) as NDJSON
/// objects with the same field names; `DestinationPort` and `BytesSent` are numbers.
///
/// # Errors
/// Whatever `w` returns.
pub fn write_network_ndjson(
    w: &mut impl Write,
    cfg: &GenConfig,
    rows: &[GenIndicator],
) -> io::Result<()> {
    net_ndjson(w, cfg, &Targets::new(rows))
}

/// Writes a `DnsEvents` log as CSV: a header `TimeGenerated,ClientIP,Name,QueryType,IPAddresses`,
/// then `cfg.events` events with ascending times over the 30 days before `cfg.now`.
///
/// About `cfg.hit_rate` of the queries are for an indicator domain: 60 % exactly as listed,
/// 25 % a subdomain of it (`cdn.evil.com` for `evil.com`), 15 % in upper or mixed case. Every
/// other name (popular benign names and random ones) is checked to match no indicator, neither
/// exactly nor by a label suffix. `IPAddresses` holds one or two IPv4 answers for `A`, one IPv6
/// answer for `AAAA` and nothing for `MX`/`TXT`, joined by `,` (the cell quoted then), and
/// never matches an IP indicator, so a DNS hit is always a name hit.
///
/// # Errors
/// Whatever `w` returns.
pub fn write_dns_csv(w: &mut impl Write, cfg: &GenConfig, rows: &[GenIndicator]) -> io::Result<()> {
    dns_csv(w, cfg, &Targets::new(rows))
}

/// The events of [`write_dns_csv`] (the same ones) as NDJSON objects with the same field names;
/// all values are strings.
///
/// # Errors
/// Whatever `w` returns.
pub fn write_dns_ndjson(
    w: &mut impl Write,
    cfg: &GenConfig,
    rows: &[GenIndicator],
) -> io::Result<()> {
    dns_ndjson(w, cfg, &Targets::new(rows))
}

/// The files [`write_corpus`] writes, in order.
pub const CORPUS_FILES: [&str; 6] = [
    "indicators.csv",
    "indicators.txt",
    "NetworkConnection.csv",
    "NetworkConnection.ndjson",
    "DnsEvents.csv",
    "DnsEvents.ndjson",
];

/// Generates the indicators of `cfg` and writes the whole corpus into `dir` (created if
/// missing, files overwritten): `indicators.csv` ([`write_indicators_csv`]), `indicators.txt`
/// ([`write_indicators_plain`]), `NetworkConnection.csv` / `.ndjson` ([`write_network_csv`],
/// [`write_network_ndjson`]) and `DnsEvents.csv` / `.ndjson` ([`write_dns_csv`],
/// [`write_dns_ndjson`]).
///
/// # Errors
/// The first I/O error, its message naming the file.
pub fn write_corpus(dir: &Path, cfg: &GenConfig) -> io::Result<()> {
    let named = |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| named(dir, e))?;
    let rows = indicators(cfg);
    let targets = Targets::new(&rows);
    for (i, name) in CORPUS_FILES.iter().enumerate() {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path).map_err(|e| named(&path, e))?;
        match i {
            0 => write_indicators_csv(&mut f, &rows),
            1 => write_indicators_plain(&mut f, &rows),
            2 => net_csv(&mut f, cfg, &targets),
            3 => net_ndjson(&mut f, cfg, &targets),
            4 => dns_csv(&mut f, cfg, &targets),
            _ => dns_ndjson(&mut f, cfg, &targets),
        }
        .map_err(|e| named(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn cfg(seed: u64, indicators: usize, events: usize, hit_rate: f64) -> GenConfig {
        GenConfig {
            seed,
            indicators,
            events,
            hit_rate,
            ..GenConfig::default()
        }
    }

    /// All six outputs, in [`CORPUS_FILES`] order.
    fn outputs(c: &GenConfig) -> Vec<Vec<u8>> {
        let rows = indicators(c);
        let mut v = vec![Vec::new(); 6];
        write_indicators_csv(&mut v[0], &rows).unwrap();
        write_indicators_plain(&mut v[1], &rows).unwrap();
        write_network_csv(&mut v[2], c, &rows).unwrap();
        write_network_ndjson(&mut v[3], c, &rows).unwrap();
        write_dns_csv(&mut v[4], c, &rows).unwrap();
        write_dns_ndjson(&mut v[5], c, &rows).unwrap();
        v
    }

    #[test]
    fn same_seed_same_bytes() {
        let c = cfg(7, 3_000, 5_000, 0.05);
        let a = outputs(&c);
        assert_eq!(a, outputs(&c));
        let dir = tempfile::tempdir().unwrap();
        write_corpus(dir.path(), &c).unwrap();
        for (name, bytes) in CORPUS_FILES.iter().zip(&a) {
            assert_eq!(
                &std::fs::read(dir.path().join(name)).unwrap(),
                bytes,
                "{name}"
            );
        }
        // Known values of the generator itself, so that a change to it is noticed.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0x99EC_5F36_CB75_F2B4);
    }

    #[test]
    fn different_seeds_differ() {
        let a = outputs(&cfg(1, 1_000, 1_000, 0.05));
        let b = outputs(&cfg(2, 1_000, 1_000, 0.05));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_ne!(x, y, "{}", CORPUS_FILES[i]);
        }
    }

    #[test]
    fn kind_mix_and_duplicates() {
        let rows = indicators(&cfg(3, 100_000, 0, 0.0));
        assert_eq!(rows.len(), 100_000);
        let share = |k: Kind| rows.iter().filter(|r| r.kind == k).count() as f64 / 1e5;
        for (k, want) in [
            (Kind::Ipv4, 0.60),
            (Kind::Cidr4, 0.05),
            (Kind::Ipv6, 0.05),
            (Kind::Domain, 0.30),
        ] {
            let got = share(k);
            assert!((got - want).abs() <= 0.02, "{k}: {got}");
        }
        let mut seen = HashSet::new();
        let dups = rows
            .iter()
            .filter(|r| !seen.insert(r.value.as_str()))
            .count() as f64
            / 1e5;
        assert!((0.04..=0.07).contains(&dups), "duplicates {dups}");
        let ids: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), rows.len());
    }

    #[test]
    fn values_are_valid_and_realistic() {
        for r in indicators(&cfg(4, 20_000, 0, 0.0)) {
            let key = r.key().unwrap_or_else(|| panic!("{r:?}"));
            assert_eq!(key.kind(), r.kind, "{}", r.value);
            assert_eq!(key.value_string(), r.value, "values are canonical");
            assert!((25..=100).contains(&r.confidence));
            assert!(!r.description.is_empty() && !r.threat_type.is_empty());
            match r.kind {
                Kind::Ipv4 => assert!(is_public_v4(u32::from(
                    r.value.parse::<Ipv4Addr>().unwrap()
                ))),
                Kind::Cidr4 => {
                    let len: u8 = r.value.split_once('/').unwrap().1.parse().unwrap();
                    assert!((16..=30).contains(&len), "{}", r.value);
                }
                Kind::Ipv6 => assert!(!r.value.starts_with("2001:db8:")),
                Kind::Domain => {
                    let labels = r.value.split('.').count();
                    assert!((2..=4).contains(&labels), "{}", r.value);
                    assert!(r.value.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b == b'.'
                        || b == b'-'));
                }
                k => panic!("unexpected kind {k}"),
            }
        }
    }

    #[test]
    fn expiry_split() {
        let c = cfg(5, 100_000, 0, 0.0);
        let rows = indicators(&c);
        let n = rows.len() as f64;
        let future = rows
            .iter()
            .filter(|r| r.expiration.is_some_and(|t| t > c.now))
            .count() as f64
            / n;
        let past = rows
            .iter()
            .filter(|r| r.expiration.is_some_and(|t| t <= c.now))
            .count() as f64
            / n;
        let none = rows.iter().filter(|r| r.expiration.is_none()).count() as f64 / n;
        assert!((future - 0.70).abs() <= 0.02, "future {future}");
        assert!((past - 0.20).abs() <= 0.02, "past {past}");
        assert!((none - 0.10).abs() <= 0.02, "none {none}");
    }

    /// An independent matcher over the generated rows: std parsing, a hash set per kind and a
    /// brute-force scan of the CIDRs.
    struct Reference {
        v4: HashSet<Ipv4Addr>,
        cidrs: Vec<(u32, u32)>,
        v6: HashSet<Ipv6Addr>,
        names: HashSet<String>,
    }

    impl Reference {
        fn new(rows: &[GenIndicator]) -> Reference {
            let mut r = Reference {
                v4: HashSet::new(),
                cidrs: Vec::new(),
                v6: HashSet::new(),
                names: HashSet::new(),
            };
            for row in rows {
                match row.kind {
                    Kind::Ipv4 => {
                        r.v4.insert(row.value.parse().unwrap());
                    }
                    Kind::Cidr4 => {
                        let (a, l) = row.value.split_once('/').unwrap();
                        let a = u32::from(a.parse::<Ipv4Addr>().unwrap());
                        let mask = !(u32::MAX >> l.parse::<u32>().unwrap());
                        r.cidrs.push((a & mask, mask));
                    }
                    Kind::Ipv6 => {
                        r.v6.insert(row.value.parse().unwrap());
                    }
                    _ => {
                        r.names.insert(row.value.clone());
                    }
                }
            }
            r
        }

        /// 0 = miss, 1 = exact IPv4, 2 = inside a CIDR only, 3 = IPv6.
        fn ip(&self, s: &str) -> u8 {
            match s.parse::<IpAddr>().unwrap() {
                IpAddr::V4(a) if self.v4.contains(&a) => 1,
                IpAddr::V4(a) => {
                    let a = u32::from(a);
                    u8::from(self.cidrs.iter().any(|&(n, m)| a & m == n)) * 2
                }
                IpAddr::V6(a) => u8::from(self.v6.contains(&a)) * 3,
            }
        }

        /// 0 = miss, 1 = exact, 2 = subdomain, 3 = case variant (exact otherwise).
        fn name(&self, s: &str) -> u8 {
            let lower = s.to_lowercase();
            if self.names.contains(&lower) {
                return if lower == s { 1 } else { 3 };
            }
            let mut rest = lower.as_str();
            while let Some((_, r)) = rest.split_once('.') {
                if self.names.contains(r) {
                    return 2;
                }
                rest = r;
            }
            0
        }
    }

    fn check_times(times: &[&str], c: &GenConfig) {
        let lo = shift(c.now, -30 * DAY);
        let mut prev = Timestamp::MIN;
        for t in times {
            assert_eq!(t.len(), 28, "{t}");
            let ts = Timestamp::parse(t).unwrap();
            assert!(ts >= prev && ts >= lo && ts <= c.now, "{t}");
            prev = ts;
        }
    }

    #[test]
    fn network_hit_rate() {
        let c = cfg(11, 5_000, 100_000, 0.02);
        let rows = indicators(&c);
        let reference = Reference::new(&rows);
        let mut csv = Vec::new();
        write_network_csv(&mut csv, &c, &rows).unwrap();
        let text = String::from_utf8(csv).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("TimeGenerated,SourceIP,DestinationIP,DestinationPort,Protocol,BytesSent")
        );
        let mut kinds = [0usize; 4];
        let mut times = Vec::new();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 6, "{line}");
            assert_eq!(reference.ip(f[1]), 0, "sources never hit: {line}");
            kinds[reference.ip(f[2]) as usize] += 1;
            f[3].parse::<u16>().unwrap();
            assert!(f[4] == "TCP" || f[4] == "UDP");
            f[5].parse::<u64>().unwrap();
            times.push(f[0]);
        }
        assert_eq!(times.len(), 100_000);
        check_times(&times, &c);
        let hits = kinds[1] + kinds[2] + kinds[3];
        assert!((1_760..=2_240).contains(&hits), "{kinds:?}");
        assert!(
            kinds[2] > 20 && kinds[3] > 20,
            "CIDR and IPv6 hits: {kinds:?}"
        );
    }

    #[test]
    fn dns_hit_rate() {
        let c = cfg(12, 5_000, 100_000, 0.02);
        let rows = indicators(&c);
        let reference = Reference::new(&rows);
        let mut csv = Vec::new();
        write_dns_csv(&mut csv, &c, &rows).unwrap();
        let text = String::from_utf8(csv).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("TimeGenerated,ClientIP,Name,QueryType,IPAddresses")
        );
        let mut kinds = [0usize; 4];
        let mut times = Vec::new();
        for line in lines {
            let f: Vec<&str> = line.splitn(5, ',').collect();
            assert_eq!(f.len(), 5, "{line}");
            kinds[reference.name(f[2]) as usize] += 1;
            for ip in f[4].trim_matches('"').split(',').filter(|s| !s.is_empty()) {
                assert_eq!(reference.ip(ip), 0, "answers never hit: {line}");
            }
            times.push(f[0]);
        }
        assert_eq!(times.len(), 100_000);
        check_times(&times, &c);
        let hits = kinds[1] + kinds[2] + kinds[3];
        assert!((1_760..=2_240).contains(&hits), "{kinds:?}");
        assert!(
            kinds[2] > 200 && kinds[3] > 100,
            "subdomain and case hits: {kinds:?}"
        );
    }

    #[test]
    fn ndjson_carries_the_csv_events() {
        let c = cfg(13, 2_000, 3_000, 0.1);
        let o = outputs(&c);
        let csv_rows = |b: &[u8]| -> Vec<Vec<String>> {
            let mut r = csv::Reader::from_reader(b);
            r.records()
                .map(|x| x.unwrap().iter().map(str::to_string).collect())
                .collect()
        };
        for (csv_i, json_i, fields) in [
            (
                2,
                3,
                &[
                    "TimeGenerated",
                    "SourceIP",
                    "DestinationIP",
                    "DestinationPort",
                    "Protocol",
                    "BytesSent",
                ][..],
            ),
            (
                4,
                5,
                &[
                    "TimeGenerated",
                    "ClientIP",
                    "Name",
                    "QueryType",
                    "IPAddresses",
                ][..],
            ),
        ] {
            let rows = csv_rows(&o[csv_i]);
            let json: Vec<serde_json::Value> = std::str::from_utf8(&o[json_i])
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(rows.len(), 3_000);
            assert_eq!(json.len(), 3_000);
            for (r, j) in rows.iter().zip(&json) {
                for (cell, name) in r.iter().zip(fields) {
                    let v = match &j[*name] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    assert_eq!(&v, cell, "{name}");
                }
            }
        }
    }

    #[test]
    fn indicators_csv_reads_back() {
        use crate::ingest::{finalize, ingest, Collector, Format, IngestOptions};
        let c = cfg(14, 5_000, 0, 0.0);
        let rows = indicators(&c);
        let mut bytes = Vec::new();
        write_indicators_csv(&mut bytes, &rows).unwrap();
        let opts = IngestOptions::default();
        let mut col = Collector::new();
        assert_eq!(
            ingest(&bytes, "indicators.csv", &opts, &mut col).unwrap(),
            Format::SentinelCsv
        );
        let (inds, _) = finalize(col, &opts);
        assert_eq!(inds.len(), rows.len());
        for (ind, row) in inds.iter().zip(&rows) {
            let want = row.to_indicator().unwrap();
            assert_eq!(ind.keys, want.keys);
            assert_eq!(ind.id, want.id);
            assert_eq!(ind.expiration, want.expiration);
            assert_eq!(ind.confidence, want.confidence);
            assert_eq!(ind.kql_network_ip, want.kql_network_ip);
            assert_eq!(ind.kql_domain_name, want.kql_domain_name);
        }
        let mut plain = Vec::new();
        write_indicators_plain(&mut plain, &rows).unwrap();
        let text = String::from_utf8(plain).unwrap();
        assert!(text.lines().eq(rows.iter().map(|r| r.value.as_str())));
    }

    #[test]
    fn odd_configs_and_rows_do_not_panic() {
        for now in [Timestamp::MIN, Timestamp::MAX] {
            for hit_rate in [f64::NAN, -1.0, 0.0, 1.0, 7.0] {
                let c = GenConfig {
                    seed: u64::MAX,
                    indicators: 50,
                    events: 50,
                    now,
                    hit_rate,
                };
                let _ = outputs(&c);
                let _ = outputs(&GenConfig {
                    indicators: 0,
                    ..c.clone()
                });
            }
        }
        let mut rows = indicators(&cfg(1, 10, 0, 0.0));
        rows[0].value = "not, an \"ip\"\n".into();
        rows[1].kind = Kind::Cidr6;
        rows[1].value = "::/0".into();
        rows[2].value = "0.0.0.0/0".into();
        rows[2].kind = Kind::Cidr4;
        let c = cfg(1, 10, 200, 1.0);
        let mut sink = Vec::new();
        write_indicators_csv(&mut sink, &rows).unwrap();
        write_network_csv(&mut sink, &c, &rows).unwrap();
        write_dns_ndjson(&mut sink, &c, &rows).unwrap();
        assert!(csv::Reader::from_reader(&sink[..])
            .records()
            .next()
            .is_some());
    }
}
