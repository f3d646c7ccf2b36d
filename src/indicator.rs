//! The indicator model every feed parser produces, and the normalization of lookup keys.
//!
//! An [`Indicator`] is one row of the `ThreatIntelligenceIndicator` table as KQL would see it
//! (its raw `NetworkIP` and `DomainName` strings, kept verbatim for the KQL-exact mode) plus the
//! normalized [`Key`]s the index answers lookups on. Normalization happens once, here, at compile
//! time: IPs canonical, domains lowercase without the trailing dot, hashes lowercase hex of a
//! valid length, URLs with lowercase scheme and host. No I/O lives in this module.

use crate::swar;
use crate::time::Timestamp;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of an indicator's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A single IPv4 address.
    Ipv4 = 1,
    /// A single IPv6 address.
    Ipv6 = 2,
    /// An IPv4 CIDR range (shorter than /32).
    Cidr4 = 3,
    /// An IPv6 CIDR range (shorter than /128).
    Cidr6 = 4,
    /// A domain name.
    Domain = 5,
    /// A URL.
    Url = 6,
    /// An e-mail address.
    Email = 7,
    /// An MD5 file hash.
    Md5 = 8,
    /// A SHA-1 file hash.
    Sha1 = 9,
    /// A SHA-256 file hash.
    Sha256 = 10,
    /// A SHA-512 file hash.
    Sha512 = 11,
    /// A CVE identifier.
    Cve = 12,
    /// A row with no usable lookup key (kept for the KQL-exact mode only).
    Unusable = 15,
}

impl Kind {
    /// All kinds, in tag order.
    pub const ALL: [Kind; 13] = [
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::Cidr4,
        Kind::Cidr6,
        Kind::Domain,
        Kind::Url,
        Kind::Email,
        Kind::Md5,
        Kind::Sha1,
        Kind::Sha256,
        Kind::Sha512,
        Kind::Cve,
        Kind::Unusable,
    ];

    /// The on-disk tag.
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// The kind of an on-disk tag.
    pub fn from_tag(tag: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.tag() == tag)
    }

    /// A short lowercase name (`ipv4`, `cidr6`, `sha256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::Cidr4 => "cidr4",
            Kind::Cidr6 => "cidr6",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Email => "email",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
            Kind::Sha512 => "sha512",
            Kind::Cve => "cve",
            Kind::Unusable => "unusable",
        }
    }

    /// The hash kind whose hex digest has `len` characters.
    pub fn hash_of_len(len: usize) -> Option<Kind> {
        match len {
            32 => Some(Kind::Md5),
            40 => Some(Kind::Sha1),
            64 => Some(Kind::Sha256),
            128 => Some(Kind::Sha512),
            _ => None,
        }
    }

    /// Parses a type name as feeds write it: `ipv4`, `IPv4-Addr`, `ip`, `domain`, `hostname`,
    /// `FQDN`, `url`, `uri`, `email`, `md5`, `sha1`, `SHA-1`, `sha256`, `cve`, `cidr`, ... .
    /// `ip`/`cidr` map to [`Kind::Ipv4`], `hash`/`filehash` to [`Kind::Sha256`]: callers treat the
    /// result as a hint and let [`Key::parse_as`] settle the exact kind from the value.
    pub fn from_type_name(name: &str) -> Option<Kind> {
        let n: String = name
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' ' | ':'))
            .flat_map(char::to_lowercase)
            .collect();
        Some(match n.as_str() {
            "ipv4" | "ipv4addr" | "ip" | "ipaddress" | "ipaddr" | "ipv4address" | "ipdst"
            | "ipsrc" | "networkip" | "cidr" | "ipv4cidr" | "ipv4net" | "netblock"
            | "ipv4range" => Kind::Ipv4,
            "ipv6" | "ipv6addr" | "ipv6address" | "ipv6cidr" | "ipv6net" => Kind::Ipv6,
            "domain" | "domainname" | "hostname" | "host" | "fqdn" | "dns" => Kind::Domain,
            "url" | "uri" | "link" => Kind::Url,
            "email" | "emailaddr" | "emailaddress" | "emailsender" | "emailsenderaddress"
            | "mail" => Kind::Email,
            "md5" | "filehashmd5" => Kind::Md5,
            "sha1" | "filehashsha1" => Kind::Sha1,
            "sha256" | "filehashsha256" => Kind::Sha256,
            "sha512" | "filehashsha512" => Kind::Sha512,
            "hash" | "filehash" | "file" => Kind::Sha256,
            "cve" | "cveid" | "vulnerability" => Kind::Cve,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A normalized lookup key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// An address or CIDR, canonical: IPv4-mapped IPv6 folded to IPv4, host bits cleared.
    Ip(IpNet),
    /// A string key of a string kind (domain, URL, e-mail, hash, CVE), already normalized.
    Str(Kind, String),
}

/// Why a value could not become a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyError {
    /// The value is empty (after trimming).
    Empty,
    /// Not an IP address or CIDR.
    BadIp,
    /// Not a valid domain name.
    BadDomain,
    /// Not a URL with a scheme and a host.
    BadUrl,
    /// Not an e-mail address.
    BadEmail,
    /// Not a hex digest of 32, 40, 64 or 128 digits (or not of the declared algorithm's length).
    BadHash,
    /// Not `CVE-YYYY-NNNN...`.
    BadCve,
    /// The kind of the value could not be inferred.
    Unrecognized,
}

impl KeyError {
    /// A short reason, used in skip summaries.
    pub fn reason(self) -> &'static str {
        match self {
            KeyError::Empty => "empty value",
            KeyError::BadIp => "invalid IP address or CIDR",
            KeyError::BadDomain => "invalid domain name",
            KeyError::BadUrl => "invalid URL",
            KeyError::BadEmail => "invalid e-mail address",
            KeyError::BadHash => "invalid hash",
            KeyError::BadCve => "invalid CVE id",
            KeyError::Unrecognized => "unrecognized indicator value",
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for KeyError {}

impl Key {
    /// The kind of this key (an IP key tells address from CIDR by its prefix length).
    pub fn kind(&self) -> Kind {
        match self {
            Key::Ip(IpNet::V4(n)) if n.prefix_len() == 32 => Kind::Ipv4,
            Key::Ip(IpNet::V4(_)) => Kind::Cidr4,
            Key::Ip(IpNet::V6(n)) if n.prefix_len() == 128 => Kind::Ipv6,
            Key::Ip(IpNet::V6(_)) => Kind::Cidr6,
            Key::Str(k, _) => *k,
        }
    }

    /// Parses `value` as a key of the given kind. The IP kinds accept any address or CIDR (v4 or
    /// v6, the exact kind follows the value); hash kinds accept any valid digest length, unless
    /// `strict_hash` is set, when the length must match the declared algorithm.
    ///
    /// # Errors
    /// A [`KeyError`] naming what is wrong with the value.
    pub fn parse_as(kind: Kind, value: &str) -> Result<Key, KeyError> {
        let v = value.trim();
        if v.is_empty() {
            return Err(KeyError::Empty);
        }
        match kind {
            Kind::Ipv4 | Kind::Ipv6 | Kind::Cidr4 | Kind::Cidr6 => parse_ip_net(v).map(Key::Ip),
            Kind::Domain => normalize_domain(v).map(|d| Key::Str(Kind::Domain, d)),
            Kind::Url => normalize_url(v).map(|u| Key::Str(Kind::Url, u)),
            Kind::Email => normalize_email(v).map(|e| Key::Str(Kind::Email, e)),
            Kind::Md5 | Kind::Sha1 | Kind::Sha256 | Kind::Sha512 => {
                normalize_hash(v).map(|(k, h)| Key::Str(k, h))
            }
            Kind::Cve => normalize_cve(v).map(|c| Key::Str(Kind::Cve, c)),
            Kind::Unusable => Err(KeyError::Unrecognized),
        }
    }

    /// Infers the kind of a bare value (a line of a plain list): IP or CIDR, CVE id, hex digest,
    /// URL (has `://`), e-mail (has `@`), else domain name, which needs two labels at least: a
    /// bare word (`localhost`, a stray header such as `indicator`) is no inferred domain. A
    /// value whose kind is given (a STIX `domain-name`, a `DomainName` column) may be one label.
    ///
    /// # Errors
    /// [`KeyError::Unrecognized`] when the value is none of these.
    pub fn infer(value: &str) -> Result<Key, KeyError> {
        let v = value.trim();
        if v.is_empty() {
            return Err(KeyError::Empty);
        }
        if let Ok(net) = parse_ip_net(v) {
            return Ok(Key::Ip(net));
        }
        if v.len() > 4 && v[..4].eq_ignore_ascii_case("cve-") {
            return Key::parse_as(Kind::Cve, v);
        }
        if Kind::hash_of_len(v.len()).is_some() && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Key::parse_as(Kind::Sha256, v);
        }
        if v.contains("://") {
            return Key::parse_as(Kind::Url, v);
        }
        if v.contains('@') {
            return Key::parse_as(Kind::Email, v);
        }
        if !v.trim_end_matches('.').contains('.') {
            return Err(KeyError::Unrecognized);
        }
        normalize_domain(v)
            .map(|d| Key::Str(Kind::Domain, d))
            .map_err(|_| KeyError::Unrecognized)
    }

    /// The normalized value as text (CIDRs as `net/len`, single addresses without `/len`).
    pub fn value_string(&self) -> String {
        match self {
            Key::Ip(n) if n.prefix_len() == n.max_prefix_len() => n.addr().to_string(),
            Key::Ip(n) => n.to_string(),
            Key::Str(_, s) => s.clone(),
        }
    }

    /// Whether `text` equals [`Key::value_string`], decided without formatting the value for
    /// the common cases: an IPv4 host address and `text` in the dotted-quad grammar (no
    /// leading zeros, so each address has exactly one text, the one `Display` writes), and
    /// string keys.
    pub fn is_value_text(&self, text: &str) -> bool {
        match self {
            Key::Ip(IpNet::V4(n)) if n.prefix_len() == 32 => {
                parse_ipv4(text.as_bytes()) == Some(n.addr())
            }
            Key::Str(_, s) => s == text,
            Key::Ip(_) => self.value_string() == text,
        }
    }
}

/// Parses an address or CIDR the way the log readers will parse event addresses: surrounding
/// whitespace ignored, IPv4-mapped IPv6 folded to IPv4, host bits cleared, a zone (`%eth0`)
/// rejected. `[::1]` brackets are accepted.
///
/// # Errors
/// [`KeyError::BadIp`].
pub fn parse_ip_net(s: &str) -> Result<IpNet, KeyError> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => {
            if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                return Err(KeyError::BadIp);
            }
            (a, Some(l.parse::<u8>().map_err(|_| KeyError::BadIp)?))
        }
        None => (s, None),
    };
    let addr = parse_ip_addr(addr).ok_or(KeyError::BadIp)?;
    let net = match addr {
        IpAddr::V4(a) => {
            let l = len.unwrap_or(32);
            // A mapped v6 address with a v6 prefix length: fold the prefix too.
            IpNet::V4(Ipv4Net::new(a, l).map_err(|_| KeyError::BadIp)?)
        }
        IpAddr::V6(a) => {
            IpNet::V6(Ipv6Net::new(a, len.unwrap_or(128)).map_err(|_| KeyError::BadIp)?)
        }
    };
    Ok(net.trunc())
}

/// Parses one address, folding IPv4-mapped IPv6 (`::ffff:1.2.3.4`) to IPv4.
pub fn parse_ip_addr(s: &str) -> Option<IpAddr> {
    // Log fields are nearly always bare: skip the Unicode-aware trim when both ends are
    // ASCII alphanumerics.
    let edge = |c: Option<&u8>| c.is_some_and(u8::is_ascii_alphanumeric);
    let b = s.as_bytes();
    let s = if edge(b.first()) && edge(b.last()) {
        s
    } else {
        s.trim()
    };
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    if let Some(v4) = parse_ipv4(s.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    // Without a colon it is no IPv6 address either (and std would say no to it again).
    if !s.contains(':') {
        return None;
    }
    parse_ipv6(s.as_bytes()).map(canonical_v6)
}

/// IPv6 text, exactly as `std` accepts it (groups of 1 to 4 hex digits, at most one `::`, an
/// optional trailing dotted quad), without its general parser's overhead: `std` tries an
/// embedded IPv4 address at every group, and network logs hold a few percent of IPv6 keys.
/// The grammar walk is `std`'s own (`core::net::parser`), so the two agree on every input.
fn parse_ipv6(b: &[u8]) -> Option<Ipv6Addr> {
    /// Reads up to `groups.len()` groups from `b[*i..]` (each after a `:` but the first):
    /// returns how many, and whether the last two came from an embedded IPv4 address.
    fn read_groups(b: &[u8], i: &mut usize, groups: &mut [u16]) -> (usize, bool) {
        let limit = groups.len();
        for n in 0..limit {
            let at = if n > 0 {
                if b.get(*i) != Some(&b':') {
                    return (n, false);
                }
                *i + 1
            } else {
                *i
            };
            // A trailing embedded IPv4 address needs room for two groups.
            if n + 1 < limit {
                if let Some((v4, len)) = ipv4_prefix(b.get(at..).unwrap_or_default()) {
                    let [a, b2, c, d] = v4;
                    groups[n] = u16::from_be_bytes([a, b2]);
                    groups[n + 1] = u16::from_be_bytes([c, d]);
                    *i = at + len;
                    return (n + 2, true);
                }
            }
            // One group: 1 to 4 hex digits (more fails the group).
            let mut v = 0u32;
            let mut k = at;
            while let Some(d) = b.get(k).and_then(|&c| (c as char).to_digit(16)) {
                if k - at == 4 {
                    return (n, false);
                }
                v = v * 16 + d;
                k += 1;
            }
            if k == at {
                return (n, false);
            }
            groups[n] = v as u16;
            *i = k;
        }
        (limit, false)
    }
    let mut i = 0;
    let mut head = [0u16; 8];
    let (head_size, head_v4) = read_groups(b, &mut i, &mut head);
    if head_size < 8 {
        if head_v4 || b.get(i..i + 2) != Some(b"::") {
            return None;
        }
        i += 2;
        let mut tail = [0u16; 7];
        let limit = 8 - (head_size + 1);
        let (tail_size, _) = read_groups(b, &mut i, &mut tail[..limit]);
        head[8 - tail_size..].copy_from_slice(&tail[..tail_size]);
    }
    (i == b.len()).then(|| Ipv6Addr::from(head))
}

/// The dotted quad at the start of `b` (as `std` reads one inside IPv6 text: 1 to 3 digits
/// per octet, no leading zero, at most 255) and its length.
fn ipv4_prefix(b: &[u8]) -> Option<([u8; 4], usize)> {
    // Cheap rejection of the usual case, a hex group: no dot within the first four bytes.
    if !b.iter().take(4).any(|&c| c == b'.') {
        return None;
    }
    let mut out = [0u8; 4];
    let mut i = 0;
    for (n, o) in out.iter_mut().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v = 0u32;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start == 3 {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || (len > 1 && b[start] == b'0') {
            return None;
        }
        *o = u8::try_from(v).ok()?;
    }
    Some((out, i))
}

/// Dotted-quad IPv4, exactly as `std` accepts it (four decimal octets of 1 to 3 digits, no
/// leading zero, at most 255), without its general parser's overhead: the log hot loop calls
/// this once per record.
#[inline]
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let n = b.len();
    if !(7..=15).contains(&n) {
        return None;
    }
    // Eight bytes at a time, without a data-dependent branch (the octet lengths of real
    // addresses vary at random, and a branch per digit mispredicts): the dots as bits, and
    // whether any byte is neither a dot nor a digit. Padding is '0'.
    let mut dots = 0u32;
    let mut other = 0u64;
    for half in 0..2 {
        let w = swar::word(b, 8 * half, b'0');
        let dot = swar::eq(w, b'.');
        other |= !(swar::in_range(w, b'0', b'9') | dot) & swar::HIGH;
        dots |= swar::bits(dot) << (8 * half);
    }
    if other != 0 || dots.count_ones() != 3 {
        return None;
    }
    let p1 = dots.trailing_zeros() as usize;
    let dots = dots & (dots - 1);
    let p2 = dots.trailing_zeros() as usize;
    let p3 = (dots & (dots - 1)).trailing_zeros() as usize;
    let digit = |i: usize| u32::from(b[i].wrapping_sub(b'0'));
    // Octets accumulate in a register (bytes stored one by one and reloaded as a word stall).
    let mut addr = 0u32;
    for (s, e) in [(0, p1), (p1 + 1, p2), (p2 + 1, p3), (p3 + 1, n)] {
        let len = e.checked_sub(s)?;
        // 1 to 3 digits, no leading zero.
        if !(1..=3).contains(&len) || (len > 1 && b[s] == b'0') {
            return None;
        }
        // The digits end before `e`; a shorter octet's unused terms read some byte in
        // bounds and are multiplied by zero.
        let v = digit(e - 1)
            + 10 * digit(e.saturating_sub(2)) * u32::from(len >= 2)
            + 100 * digit(e.saturating_sub(3)) * u32::from(len >= 3);
        if v > 255 {
            return None;
        }
        addr = addr << 8 | v;
    }
    Some(Ipv4Addr::from(addr))
}

/// Folds an IPv4-mapped IPv6 address to its IPv4 address.
pub fn canonical_v6(a: Ipv6Addr) -> IpAddr {
    match a.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(a),
    }
}

/// Lowercases, strips one trailing dot and checks the name is a plausible DNS name: labels of
/// 1..=63 characters from letters, digits, `-`, `_` (and non-ASCII, for IDNs written in Unicode),
/// at most 253 characters, not an IP address.
///
/// # Errors
/// [`KeyError::BadDomain`].
pub fn normalize_domain(s: &str) -> Result<String, KeyError> {
    normalize_domain_cow(s).map(Cow::into_owned)
}

/// [`normalize_domain`] without an allocation when `s` is already normal (lowercase ASCII,
/// no surrounding space, no trailing dot), as names in DNS logs nearly always are.
///
/// # Errors
/// [`KeyError::BadDomain`].
pub fn normalize_domain_cow(s: &str) -> Result<Cow<'_, str>, KeyError> {
    if let Some(verdict) = normal_ascii_domain(s.as_bytes()) {
        return if verdict {
            Ok(Cow::Borrowed(s))
        } else {
            Err(KeyError::BadDomain)
        };
    }
    normalize_domain_general(s).map(Cow::Owned)
}

/// The rules of [`normalize_domain`], for any input.
fn normalize_domain_general(s: &str) -> Result<String, KeyError> {
    let s = s.trim();
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return Err(KeyError::BadDomain);
    }
    for label in s.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(KeyError::BadDomain);
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii())
        {
            return Err(KeyError::BadDomain);
        }
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Err(KeyError::BadDomain);
    }
    Ok(s.to_lowercase())
}

/// One pass over a name of lowercase ASCII letters, digits, `-`, `_` and `.`: whether it is a
/// normal domain (`Some(true)`), surely not one (`Some(false)`: an empty or overlong label, an
/// overlong name, a dotted quad), or `None` when it has other bytes (uppercase, non-ASCII,
/// space, a trailing dot...) and the general rules must decide.
#[inline]
fn normal_ascii_domain(b: &[u8]) -> Option<bool> {
    use swar::{eq, in_range};
    if b.is_empty() || b.len() > 253 || b.last() == Some(&b'.') {
        // Empty, too long, or a trailing dot (stripped by the general rules).
        return None;
    }
    // Eight bytes at a time: every byte a lowercase letter, digit, `-`, `_` or `.`, and the
    // labels between dots 1..=63 long. Anything else goes to the general rules, which give
    // the verdict (this path only ever accepts what they accept unchanged).
    let mut letters = 0u64;
    let mut run = 0usize;
    for at in (0..b.len()).step_by(8) {
        // '0' pads the last word: a digit, neither a letter nor a dot.
        let w = swar::word(b, at, b'0');
        let len = (b.len() - at).min(8);
        let letter = in_range(w, b'a', b'z') | eq(w, b'-') | eq(w, b'_');
        let dot = eq(w, b'.');
        if letter | in_range(w, b'0', b'9') | dot != swar::HIGH {
            return None;
        }
        letters |= letter;
        let mut dots = dot;
        let mut from = 0usize;
        while dots != 0 {
            let p = (dots.trailing_zeros() / 8) as usize;
            run += p - from;
            if run == 0 || run > 63 {
                return None;
            }
            run = 0;
            from = p + 1;
            dots &= dots - 1;
        }
        run += len - from;
        if run > 63 {
            return None;
        }
    }
    if run == 0 {
        return None;
    }
    Some(letters != 0 || parse_ipv4(b).is_none())
}

/// Lowercases the scheme and the host of a URL (and drops a trailing dot of the host); the
/// path, query and fragment are kept as given, since servers treat them case-sensitively.
///
/// # Errors
/// [`KeyError::BadUrl`] when there is no `scheme://host`.
pub fn normalize_url(s: &str) -> Result<String, KeyError> {
    let s = s.trim();
    let (scheme, rest) = s.split_once("://").ok_or(KeyError::BadUrl)?;
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(KeyError::BadUrl);
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.chars().any(char::is_whitespace) {
        return Err(KeyError::BadUrl);
    }
    // Keep userinfo as is; lowercase the host[:port] part after it.
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    if hostport.is_empty() {
        return Err(KeyError::BadUrl);
    }
    let mut host = hostport.to_lowercase();
    if let Some(stripped) = host.strip_suffix('.') {
        host = stripped.to_string();
    } else if let Some(i) = host.rfind(".:") {
        host.remove(i);
    }
    Ok(format!(
        "{}://{userinfo}{host}{tail}",
        scheme.to_ascii_lowercase()
    ))
}

/// Lowercases an e-mail address (both parts, as mail systems compare them in practice).
///
/// # Errors
/// [`KeyError::BadEmail`] without exactly one `@` and non-empty parts.
pub fn normalize_email(s: &str) -> Result<String, KeyError> {
    let s = s.trim();
    let (local, domain) = s.split_once('@').ok_or(KeyError::BadEmail)?;
    if local.is_empty()
        || domain.contains('@')
        || s.chars().any(char::is_whitespace)
        || normalize_domain(domain).is_err()
    {
        return Err(KeyError::BadEmail);
    }
    Ok(s.to_lowercase())
}

/// Lowercase hex of a valid digest length; the kind follows the length.
///
/// # Errors
/// [`KeyError::BadHash`].
pub fn normalize_hash(s: &str) -> Result<(Kind, String), KeyError> {
    let s = s.trim();
    let kind = Kind::hash_of_len(s.len()).ok_or(KeyError::BadHash)?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::BadHash);
    }
    Ok((kind, s.to_ascii_lowercase()))
}

/// `CVE-YYYY-NNNN` (four or more digits), uppercased.
///
/// # Errors
/// [`KeyError::BadCve`].
pub fn normalize_cve(s: &str) -> Result<String, KeyError> {
    let u = s.trim().to_ascii_uppercase();
    let mut parts = u.splitn(3, '-');
    let ok = parts.next() == Some("CVE")
        && parts
            .next()
            .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
        && parts
            .next()
            .is_some_and(|n| n.len() >= 4 && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(u)
    } else {
        Err(KeyError::BadCve)
    }
}

/// Where an indicator came from, for messages and `inspect`'s counts by source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Origin {
    /// A STIX 2.1 bundle, TAXII envelope or NDJSON of STIX objects.
    #[default]
    Stix,
    /// A legacy Sentinel `ThreatIntelligenceIndicator` export row.
    SentinelLegacy,
    /// A `ThreatIntelIndicators` (STIX-based) export row.
    SentinelStix,
    /// A generic CSV feed (value + type columns).
    GenericCsv,
    /// A REST feed response (`data` array).
    Rest,
    /// A plain list, one value per line.
    Plain,
}

/// One indicator record: one row of the indicator table, as KQL joins see it.
///
/// A record usually has one normalized key; a legacy Sentinel row with several observable
/// columns (say `NetworkIP` and `DomainName`) can have more, and a row whose values are empty or
/// invalid has none ([`Kind::Unusable`]) yet is kept for the KQL-exact mode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Indicator {
    /// Normalized lookup keys; empty when the row has no usable value.
    pub keys: Vec<Key>,
    /// The value as given, before normalization.
    pub raw_value: String,
    /// KQL's `NetworkIP` column, verbatim (`""` when the row has none, as Kusto strings are
    /// never null). For non-Sentinel sources: the raw value of an IP indicator, else `""`.
    pub kql_network_ip: String,
    /// KQL's `DomainName` column, verbatim (same convention).
    pub kql_domain_name: String,
    /// `IndicatorId` / STIX `id`.
    pub id: String,
    /// STIX `name`.
    pub name: String,
    /// `Description`.
    pub description: String,
    /// `ThreatType`, or STIX `indicator_types`/`labels` joined by `,`.
    pub threat_type: String,
    /// `Tags` (comma-joined).
    pub tags: String,
    /// `SourceSystem`, STIX `created_by_ref`'s identity, or the feed file name.
    pub source: String,
    /// `TrafficLightProtocolLevel`.
    pub tlp: String,
    /// STIX `created_by_ref`.
    pub created_by_ref: String,
    /// `ConfidenceScore` / STIX `confidence` (0-100; a real in Sentinel).
    pub confidence: Option<f64>,
    /// STIX `valid_from` (no Sentinel column: `null`).
    pub valid_from: Option<Timestamp>,
    /// `ExpirationDateTime` / STIX `valid_until`; `None` is KQL's null.
    pub expiration: Option<Timestamp>,
    /// STIX `modified` / Sentinel `TimeGenerated`: which version of an indicator is newest.
    pub modified: Option<Timestamp>,
    /// Sentinel `Active` / `IsActive` (`None` when the column is absent).
    pub active: Option<bool>,
    /// Where the record came from.
    pub origin: Origin,
}

impl Indicator {
    /// The record's kind: the kind of its first key, or [`Kind::Unusable`].
    pub fn kind(&self) -> Kind {
        self.keys.first().map_or(Kind::Unusable, Key::kind)
    }

    /// A record for one key with the KQL columns derived as Sentinel's importer fills them: the
    /// raw value goes to `NetworkIP` for IP kinds and to `DomainName` for domains.
    pub fn for_key(key: Key, raw_value: &str, origin: Origin) -> Indicator {
        let mut ind = Indicator {
            raw_value: raw_value.to_string(),
            origin,
            ..Indicator::default()
        };
        match key.kind() {
            Kind::Ipv4 | Kind::Ipv6 | Kind::Cidr4 | Kind::Cidr6 => {
                ind.kql_network_ip = raw_value.to_string()
            }
            Kind::Domain => ind.kql_domain_name = raw_value.to_string(),
            _ => {}
        }
        ind.keys.push(key);
        ind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_value_text` answers exactly "`value_string() == text`", for texts built from
    /// address-like pieces (leading zeros, too many digits, spaces, IPv6, CIDR suffixes)
    /// against keys near them.
    #[test]
    fn is_value_text_equals_comparing_the_formatted_value() {
        let mut rng = crate::gen::Rng::new(0x1f0e_77a2);
        let pieces = [
            "0", "1", "25", "255", "256", "007", "10", ".", ".", ".", "/24", " ", "::", "a",
        ];
        let keys: Vec<Key> = [
            "1.2.3.4",
            "10.0.0.0/8",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "2001:db8::/32",
        ]
        .iter()
        .map(|s| Key::Ip(parse_ip_net(s).unwrap()))
        .chain([Key::Str(Kind::Domain, "evil.example".into())])
        .collect();
        let mut equal = 0;
        for i in 0..20_000 {
            let key = &keys[i % keys.len()];
            let text = if i % 5 == 0 {
                // The value itself, or a near miss of it.
                let mut v = key.value_string();
                if i % 10 == 0 {
                    v.insert(rng.below(v.len() as u64 + 1) as usize, '0');
                }
                v
            } else {
                (0..rng.range(1, 9))
                    .map(|_| pieces[rng.below(pieces.len() as u64) as usize])
                    .collect()
            };
            let want = key.value_string() == text;
            equal += usize::from(want);
            assert_eq!(key.is_value_text(&text), want, "{key:?} {text:?}");
        }
        assert!(equal > 1000, "{equal} equal cases");
    }

    /// The one-pass domain check agrees with the general rules wherever it answers.
    #[test]
    fn domain_fast_path_matches_general_rules() {
        let mut rng = crate::gen::Rng::new(0x51_7cc1_b727_220au64);
        let mut next = move |n: u64| rng.below(n);
        let pieces = [
            "a",
            "z9",
            ".",
            "-",
            "_",
            "1",
            "0",
            "Q",
            " ",
            "é",
            "x".repeat(60).leak(),
            "255.",
        ];
        let mut answered = 0;
        for _ in 0..200_000 {
            let s: String = (0..next(12))
                .map(|_| pieces[next(pieces.len() as u64) as usize])
                .collect();
            let general = normalize_domain_general(&s);
            if let Some(v) = normal_ascii_domain(s.as_bytes()) {
                answered += 1;
                assert_eq!(v, general.is_ok(), "{s:?}");
                if v {
                    assert_eq!(general.as_deref(), Ok(s.as_str()));
                }
            }
            assert_eq!(normalize_domain(&s), general, "{s:?}");
        }
        assert!(answered > 20_000, "{answered}");
    }

    /// The dotted-quad fast path accepts exactly what `std` accepts.
    #[test]
    fn ipv4_fast_path_matches_std() {
        let mut rng = crate::gen::Rng::new(0x2545_f491_4f6c_dd1du64);
        let mut next = move |n: u64| rng.below(n);
        let alphabet = b"0123456789.:a ";
        let mut valid = 0;
        for _ in 0..300_000 {
            let mut s: Vec<u8> = if next(2) == 0 {
                format!("{}.{}.{}.{}", next(300), next(300), next(300), next(300)).into_bytes()
            } else {
                Vec::new()
            };
            for _ in 0..next(4) {
                let c = alphabet[next(alphabet.len() as u64) as usize];
                if s.is_empty() || next(2) == 0 {
                    s.push(c);
                } else {
                    let at = next(s.len() as u64) as usize;
                    s[at] = c;
                }
            }
            let std = std::str::from_utf8(&s).unwrap().parse::<Ipv4Addr>().ok();
            assert_eq!(parse_ipv4(&s), std, "{:?}", String::from_utf8_lossy(&s));
            valid += usize::from(std.is_some());
        }
        assert!(valid > 10_000, "only {valid} valid addresses generated");
        for s in [
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.4.",
            "256.1.1.1",
            "1.2.3.4 ",
            "0.0.0.0",
        ] {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse().ok(), "{s}");
        }
    }

    /// The IPv6 fast path against `std` on a million random strings: mutated addresses of
    /// every shape (compressed, embedded IPv4, long groups) and random text.
    #[test]
    fn ipv6_parser_agrees_with_std() {
        let mut rng = crate::gen::Rng::new(0x1b6_0000_0001);
        let mut next = move |n: u64| rng.below(n);
        let alphabet = b"0123456789abcdefABCDEFg:.:.: %[]";
        let mut valid = 0;
        for _ in 0..1_000_000 {
            let mut s: Vec<u8> = match next(4) {
                0 => {
                    let a = Ipv6Addr::from(
                        (u128::from(next(u64::MAX)) << 64) | u128::from(next(u64::MAX)),
                    );
                    let groups = a.segments();
                    let zeros = next(8) as usize;
                    let mut g: Vec<String> = groups.iter().map(|g| format!("{g:x}")).collect();
                    for x in g.iter_mut().skip(zeros).take(next(4) as usize) {
                        *x = "0".into();
                    }
                    g.join(":").into_bytes()
                }
                1 => {
                    let a = Ipv6Addr::from(u128::from(next(1 << 40)) << next(90));
                    a.to_string().into_bytes()
                }
                2 => format!(
                    "{}::{}.{}.{}.{}",
                    ["", "ffff", "0:0:0:0:0", "1:2:3:4:5", "64:ff9b"][next(5) as usize],
                    next(300),
                    next(300),
                    next(300),
                    next(300)
                )
                .into_bytes(),
                _ => Vec::new(),
            };
            for _ in 0..next(4) {
                let c = alphabet[next(alphabet.len() as u64) as usize];
                if s.is_empty() || next(2) == 0 {
                    let at = next(s.len() as u64 + 1) as usize;
                    s.insert(at, c);
                } else {
                    let at = next(s.len() as u64) as usize;
                    if next(3) == 0 {
                        s.remove(at);
                    } else {
                        s[at] = c;
                    }
                }
            }
            let text = std::str::from_utf8(&s).unwrap();
            let std = text.parse::<Ipv6Addr>().ok();
            assert_eq!(parse_ipv6(&s), std, "{text:?}");
            valid += usize::from(std.is_some());
        }
        assert!(valid > 200_000, "only {valid} valid addresses generated");
        for s in [
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::1.2.3.4",
            "::ffff:1.2.3.4",
            "::1.2.3.4:5",
            "1.2.3.4::",
            "::01.2.3.4",
            "::1.2.3.256",
            "1::2::3",
            "12345::",
            ":1::",
            "1:::2",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4::5:6:7:8",
            "::1234.1.1.1",
            "abcd:ef01::",
            "ABCD::EF01",
        ] {
            assert_eq!(parse_ipv6(s.as_bytes()), s.parse().ok(), "{s}");
        }
    }

    fn ip(s: &str) -> String {
        parse_ip_net(s).map_or_else(|e| format!("ERR {e}"), |n| Key::Ip(n).value_string())
    }

    #[test]
    fn ip_normalization() {
        assert_eq!(ip("1.2.3.4"), "1.2.3.4");
        assert_eq!(ip(" 1.2.3.4 "), "1.2.3.4");
        assert_eq!(ip("10.1.2.3/8"), "10.0.0.0/8");
        assert_eq!(ip("::ffff:1.2.3.4"), "1.2.3.4");
        assert_eq!(ip("2001:DB8::1"), "2001:db8::1");
        assert_eq!(ip("2001:0db8:0:0::1"), "2001:db8::1");
        assert_eq!(ip("2001:db8::1/32"), "2001:db8::/32");
        assert_eq!(ip("[2001:db8::1]"), "2001:db8::1");
        assert_eq!(ip("1.2.3.4/32"), "1.2.3.4");
        for bad in [
            "1.2.3",
            "1.2.3.4/33",
            "1.2.3.4/",
            "01.2.3.4",
            "fe80::1%eth0",
            "1.2.3.4/a",
            "",
            "evil.com",
        ] {
            assert!(parse_ip_net(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Key::Ip(parse_ip_net("10.0.0.0/8").unwrap()).kind(),
            Kind::Cidr4
        );
        assert_eq!(Key::Ip(parse_ip_net("::1").unwrap()).kind(), Kind::Ipv6);
    }

    #[test]
    fn domain_normalization() {
        assert_eq!(normalize_domain("Evil.COM.").unwrap(), "evil.com");
        assert_eq!(
            normalize_domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            normalize_domain("Bücher.Example").unwrap(),
            "bücher.example"
        );
        for bad in [
            "",
            ".",
            "a..b",
            "has space.com",
            "1.2.3.4",
            "a/b.com",
            &"a".repeat(64),
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_hash_email_cve() {
        assert_eq!(
            normalize_url("HTTP://Evil.COM./Path?Q=A").unwrap(),
            "http://evil.com/Path?Q=A"
        );
        assert_eq!(
            normalize_url("https://User@Host.EXAMPLE:8443").unwrap(),
            "https://User@host.example:8443"
        );
        assert!(normalize_url("evil.com/path").is_err());
        assert!(normalize_url("http:///path").is_err());
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        assert_eq!(
            normalize_hash(md5).unwrap(),
            (Kind::Md5, md5.to_ascii_lowercase())
        );
        assert!(normalize_hash("abc").is_err());
        assert!(normalize_hash(&"g".repeat(32)).is_err());
        assert_eq!(
            normalize_email("Bad.Guy@Evil.COM").unwrap(),
            "bad.guy@evil.com"
        );
        assert!(normalize_email("a@b@c").is_err());
        assert_eq!(normalize_cve("cve-2021-44228").unwrap(), "CVE-2021-44228");
        assert!(normalize_cve("CVE-21-44228").is_err());
    }

    #[test]
    fn inference() {
        let k = |s: &str| Key::infer(s).map(|k| k.kind());
        assert_eq!(k("1.2.3.4"), Ok(Kind::Ipv4));
        assert_eq!(k("10.0.0.0/8"), Ok(Kind::Cidr4));
        assert_eq!(k("2001:db8::/32"), Ok(Kind::Cidr6));
        assert_eq!(k("evil.com"), Ok(Kind::Domain));
        assert_eq!(k("Evil.COM."), Ok(Kind::Domain));
        assert_eq!(k("localhost"), Err(KeyError::Unrecognized));
        assert_eq!(k("indicator"), Err(KeyError::Unrecognized));
        assert_eq!(k("wpad."), Err(KeyError::Unrecognized));
        assert_eq!(k("https://evil.com/x"), Ok(Kind::Url));
        assert_eq!(k("a@evil.com"), Ok(Kind::Email));
        assert_eq!(k(&"a".repeat(40)), Ok(Kind::Sha1));
        assert_eq!(k("CVE-2024-3094"), Ok(Kind::Cve));
        assert_eq!(k("C:\\ProgramData\\x.dll"), Err(KeyError::Unrecognized));
        assert_eq!(k("   "), Err(KeyError::Empty));
    }

    #[test]
    fn type_names() {
        assert_eq!(Kind::from_type_name("IPv4-Addr"), Some(Kind::Ipv4));
        assert_eq!(Kind::from_type_name("domain-name"), Some(Kind::Domain));
        assert_eq!(Kind::from_type_name("SHA-256"), Some(Kind::Sha256));
        assert_eq!(Kind::from_type_name("FileHash-SHA1"), Some(Kind::Sha1));
        assert_eq!(Kind::from_type_name("mutex"), None);
    }
}
