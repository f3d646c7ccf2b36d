//! Fixed-size indicator records and their strings.
//!
//! A record is [`RECORD_SIZE`] bytes: `valid_from i64`, `expiration i64` (`i64::MIN` = null),
//! `block u32`, `confidence u16` (exact hundredths; `0xFFFE` = in the strings, `0xFFFF` =
//! null), `kind u8`, `flags u8`. So the
//! expiry filter reads 24 bytes and no string. The strings of a record live in its *block*:
//! `present u16` (bit `f` set when [`Field`] `f` is non-empty), `same u16` (bit `f` set when
//! field `f` equals `RawValue`, the common case for the normalized value and the KQL columns),
//! then one varint offset into the string pool for each present field not marked same, in
//! field order. The pool holds `varint len` + UTF-8 bytes per string. Strings that repeat
//! across records (descriptions, threat types, tags, sources) are stored once; strings nearly
//! always unique to their record (values, ids, the KQL columns, `modified`) are stored once per
//! run of equal consecutive values, without a dictionary: a dictionary of every id and value of
//! a million indicators outgrows the caches, and its probes cost a quarter of a compile.

use super::fasthash::FastMap;
use super::format::{put_varint, u32_at, u64_at, varint_at, RECORD_SIZE};
use crate::error::{Error, Result};
use crate::indicator::{Indicator, Kind, Origin};
use crate::time::Timestamp;
use std::borrow::Cow;

/// The string fields of a record, in block order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Field {
    /// The normalized value of the record's first key (`""` when unusable).
    Value,
    /// The value as given.
    RawValue,
    /// `IndicatorId` / STIX id.
    Id,
    /// STIX name.
    Name,
    /// `Description`.
    Description,
    /// `ThreatType`.
    ThreatType,
    /// `Tags`.
    Tags,
    /// `SourceSystem` / creator / feed.
    Source,
    /// `TrafficLightProtocolLevel`.
    Tlp,
    /// STIX `created_by_ref`.
    CreatedByRef,
    /// KQL's raw `NetworkIP`.
    KqlNetworkIp,
    /// KQL's raw `DomainName`.
    KqlDomainName,
    /// `modified` / `TimeGenerated`, ISO 8601.
    Modified,
    /// A confidence that hundredths in the fixed record cannot hold exactly (`33.333`, `-1`,
    /// `1000`), as the shortest decimal that reads back as the same `f64`.
    Confidence,
}

/// Number of string fields a version-1 block holds.
pub const FIELDS: usize = 14;

impl Field {
    /// Every field, in block order.
    pub const ALL: [Field; FIELDS] = [
        Field::Value,
        Field::RawValue,
        Field::Id,
        Field::Name,
        Field::Description,
        Field::ThreatType,
        Field::Tags,
        Field::Source,
        Field::Tlp,
        Field::CreatedByRef,
        Field::KqlNetworkIp,
        Field::KqlDomainName,
        Field::Modified,
        Field::Confidence,
    ];
}

const NULL_TIME: i64 = i64::MIN;
const NULL_CONF: u16 = 0xFFFF;
/// The confidence is in the string block ([`Field::Confidence`]).
const CONF_IN_BLOCK: u16 = 0xFFFE;
const FLAG_ACTIVE_KNOWN: u8 = 1;
const FLAG_ACTIVE: u8 = 2;
/// The raw `NetworkIP` is `""` (KQL's empty-joins-empty quirk scans for these).
pub(crate) const FLAG_KQL_IP_EMPTY: u8 = 4;
/// The raw `DomainName` is `""`.
pub(crate) const FLAG_KQL_DOMAIN_EMPTY: u8 = 8;

fn origin_code(o: Origin) -> u8 {
    match o {
        Origin::Stix => 0,
        Origin::SentinelLegacy => 1,
        Origin::SentinelStix => 2,
        Origin::GenericCsv => 3,
        Origin::Rest => 4,
        Origin::Plain => 5,
    }
}

fn origin_of(code: u8) -> Option<Origin> {
    Some(match code {
        0 => Origin::Stix,
        1 => Origin::SentinelLegacy,
        2 => Origin::SentinelStix,
        3 => Origin::GenericCsv,
        4 => Origin::Rest,
        5 => Origin::Plain,
        _ => return None,
    })
}

/// Serializes records, blocks and the string pool. Strings are interned by reference into the
/// indicators being compiled (`'a`), so interning allocates only for the few computed fields.
pub struct RecordsBuilder<'a> {
    records: Vec<u8>,
    blocks: Vec<u8>,
    strings: Vec<u8>,
    /// String -> offset in `strings`, for the fields whose values repeat across records:
    /// borrowed from the indicators where possible.
    interned: FastMap<Cow<'a, str>, u64>,
    /// Per field, the offset of the last string stored without the dictionary (0: none).
    last: [u64; FIELDS],
}

/// The fields whose values are nearly always unique to their record, as bits: stored without
/// the dictionary.
const UNIQUE: u16 = 1 << Field::Value as u16
    | 1 << Field::RawValue as u16
    | 1 << Field::Id as u16
    | 1 << Field::KqlNetworkIp as u16
    | 1 << Field::KqlDomainName as u16
    | 1 << Field::Modified as u16;

impl<'a> RecordsBuilder<'a> {
    /// A builder sized for `n` records.
    pub fn with_capacity(n: usize) -> RecordsBuilder<'a> {
        RecordsBuilder {
            records: Vec::with_capacity(n * RECORD_SIZE),
            blocks: Vec::with_capacity(n * 8),
            strings: vec![0],
            interned: FastMap::default(),
            last: [0; FIELDS],
        }
    }

    /// Stores `s` without the dictionary, unless it equals the previous string of field `f`.
    fn store(&mut self, f: usize, s: &str) -> u64 {
        let prev = self.last[f];
        if prev != 0 && pooled(&self.strings, prev) == Ok(s) {
            return prev;
        }
        let at = self.strings.len() as u64;
        put_varint(&mut self.strings, s.len() as u64);
        self.strings.extend_from_slice(s.as_bytes());
        self.last[f] = at;
        at
    }

    /// Interns `s` (one map probe for a string seen before, one insert for a new one).
    fn intern(&mut self, s: Cow<'a, str>) -> u64 {
        let next = self.strings.len() as u64;
        match self.interned.entry(s) {
            std::collections::hash_map::Entry::Occupied(e) => *e.get(),
            std::collections::hash_map::Entry::Vacant(e) => {
                put_varint(&mut self.strings, e.key().len() as u64);
                self.strings.extend_from_slice(e.key().as_bytes());
                e.insert(next);
                next
            }
        }
    }

    /// Appends one record.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the blocks exceed 4 GiB.
    pub fn push(&mut self, ind: &'a Indicator) -> Result<()> {
        let block = u32::try_from(self.blocks.len())
            .map_err(|_| Error::TooLarge("record string blocks exceed 4 GiB".into()))?;
        // The two computed fields; a string key's value is borrowed as is.
        let value: Cow<'a, str> = match ind.keys.first() {
            Some(crate::indicator::Key::Str(_, s)) => s.as_str().into(),
            // An address given in its normal text, as feeds nearly always give it: the raw
            // value is the value (formatting it took a twentieth of a compile).
            Some(k) if k.is_value_text(&ind.raw_value) => ind.raw_value.as_str().into(),
            Some(k) => k.value_string().into(),
            None => "".into(),
        };
        let modified = ind.modified.map(|t| t.to_string()).unwrap_or_default();
        let conf = match ind.confidence {
            Some(c)
                if c.is_finite()
                    && (0.0..=655.33).contains(&c)
                    && (c * 100.0).round() / 100.0 == c =>
            {
                (c * 100.0).round() as u16
            }
            Some(c) if c.is_finite() => CONF_IN_BLOCK,
            _ => NULL_CONF,
        };
        let conf_text = match ind.confidence {
            Some(c) if conf == CONF_IN_BLOCK => c.to_string(),
            _ => String::new(),
        };
        let mut fields = [""; FIELDS];
        fields[Field::Value as usize] = &value;
        for (f, slot) in fields
            .iter_mut()
            .enumerate()
            .take(Field::Modified as usize)
            .skip(1)
        {
            *slot = borrowed_field(ind, f);
        }
        fields[Field::Modified as usize] = &modified;
        fields[Field::Confidence as usize] = &conf_text;
        let raw = Field::RawValue as usize;
        let (mut present, mut same) = (0u16, 0u16);
        for (f, v) in fields.iter().enumerate() {
            if !v.is_empty() {
                present |= 1 << f;
                if f != raw && *v == fields[raw] {
                    same |= 1 << f;
                }
            }
        }
        self.blocks.extend_from_slice(&present.to_le_bytes());
        self.blocks.extend_from_slice(&same.to_le_bytes());
        for (f, &text) in fields.iter().enumerate() {
            if present & (1 << f) != 0 && same & (1 << f) == 0 {
                let o = if UNIQUE & (1 << f) != 0 {
                    self.store(f, text)
                } else if f == Field::Confidence as usize {
                    // Computed: the dictionary keeps its own copy.
                    self.intern(Cow::Owned(text.to_owned()))
                } else {
                    // Borrowed from the indicator, which outlives the dictionary.
                    self.intern(Cow::Borrowed(borrowed_field(ind, f)))
                };
                put_varint(&mut self.blocks, o);
            }
        }
        let mut flags = origin_code(ind.origin) << 4;
        if ind.kql_network_ip.is_empty() {
            flags |= FLAG_KQL_IP_EMPTY;
        }
        if ind.kql_domain_name.is_empty() {
            flags |= FLAG_KQL_DOMAIN_EMPTY;
        }
        if let Some(a) = ind.active {
            flags |= FLAG_ACTIVE_KNOWN | if a { FLAG_ACTIVE } else { 0 };
        }
        let r = &mut self.records;
        r.extend_from_slice(
            &ind.valid_from
                .map_or(NULL_TIME, Timestamp::ticks)
                .to_le_bytes(),
        );
        r.extend_from_slice(
            &ind.expiration
                .map_or(NULL_TIME, Timestamp::ticks)
                .to_le_bytes(),
        );
        r.extend_from_slice(&block.to_le_bytes());
        r.extend_from_slice(&conf.to_le_bytes());
        r.push(ind.kind().tag() | kind_bits(ind));
        r.push(flags);
        Ok(())
    }

    /// `(records, blocks, strings)`.
    pub fn finish(self) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        (self.records, self.blocks, self.strings)
    }
}

/// Field `f` (1..=11) of an indicator, borrowed.
fn borrowed_field(ind: &Indicator, f: usize) -> &str {
    match f {
        1 => &ind.raw_value,
        2 => &ind.id,
        3 => &ind.name,
        4 => &ind.description,
        5 => &ind.threat_type,
        6 => &ind.tags,
        7 => &ind.source,
        8 => &ind.tlp,
        9 => &ind.created_by_ref,
        10 => &ind.kql_network_ip,
        11 => &ind.kql_domain_name,
        _ => "",
    }
}

/// The fixed part of a record: everything the expiry filter needs, without strings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fixed {
    /// STIX `valid_from`.
    pub valid_from: Option<Timestamp>,
    /// `ExpirationDateTime` / `valid_until` (`None` = null).
    pub expiration: Option<Timestamp>,
    /// Confidence 0-100 (two decimals kept).
    pub confidence: Option<f64>,
    /// The confidence is not in `confidence` but in the record's strings.
    pub confidence_in_block: bool,
    /// The kind of the record's first key.
    pub kind: Kind,
    /// `Active` when the source had it.
    pub active: Option<bool>,
    /// Where the record came from.
    pub origin: Origin,
    pub(crate) block: u32,
}

/// Decodes record `i` from the records section (`at` = its file offset, for errors).
pub(crate) fn fixed(records: &[u8], i: u32, at: usize) -> Result<Fixed> {
    let off = i as usize * RECORD_SIZE;
    let bad = |what: &str| Error::corrupt(at + off, format!("record {i}: {what}"));
    let valid_from = time_at(records, i, 0, at)?;
    let expiration = time_at(records, i, 8, at)?;
    let block = u32_at(records, off + 16).ok_or_else(|| bad("out of range"))?;
    let tail = records
        .get(off + 20..off + 24)
        .ok_or_else(|| bad("out of range"))?;
    let conf = u16::from_le_bytes([tail[0], tail[1]]);
    let kind = Kind::from_tag(tail[2] & !(KIND_KQL_IP_IS_KEY | KIND_KQL_DOMAIN_IS_KEY))
        .ok_or_else(|| bad("unknown kind tag"))?;
    let flags = tail[3];
    let origin = origin_of(flags >> 4).ok_or_else(|| bad("unknown origin"))?;
    Ok(Fixed {
        valid_from,
        expiration,
        confidence: (conf < CONF_IN_BLOCK).then(|| f64::from(conf) / 100.0),
        confidence_in_block: conf == CONF_IN_BLOCK,
        kind,
        active: (flags & FLAG_ACTIVE_KNOWN != 0).then_some(flags & FLAG_ACTIVE != 0),
        origin,
        block,
    })
}

/// Record `i`'s expiration alone (what [`fixed`] reads at its offset 8).
#[inline]
pub(crate) fn expiration(records: &[u8], i: u32, at: usize) -> Result<Option<Timestamp>> {
    time_at(records, i, 8, at)
}

/// The nullable time at byte `o` of record `i`.
#[inline]
fn time_at(records: &[u8], i: u32, o: usize, at: usize) -> Result<Option<Timestamp>> {
    let off = i as usize * RECORD_SIZE;
    let bad = |what: &str| Error::corrupt(at + off, format!("record {i}: {what}"));
    let t = u64_at(records, off + o).ok_or_else(|| bad("out of range"))? as i64;
    if t == NULL_TIME {
        Ok(None)
    } else {
        Timestamp::from_ticks(t)
            .map(Some)
            .ok_or_else(|| bad("timestamp out of range"))
    }
}

/// Kind byte bit: the record has one key, a host address, and its raw KQL `NetworkIP` is that
/// address's text as `std` displays it. A KQL join that found the record through its address
/// then knows the raw string without reading it.
pub(crate) const KIND_KQL_IP_IS_KEY: u8 = 0x80;
/// Kind byte bit: the record has one key, a domain, and its raw KQL `DomainName` is that key.
pub(crate) const KIND_KQL_DOMAIN_IS_KEY: u8 = 0x40;

/// Offset of the kind byte in a record.
pub(crate) const KIND_AT: usize = 22;

/// The kind byte of record `i` (the kind tag and the `KIND_*` bits).
#[inline]
pub(crate) fn kind_byte(records: &[u8], i: u32) -> Option<u8> {
    records.get(i as usize * RECORD_SIZE + KIND_AT).copied()
}

/// The `KIND_*` bits of an indicator's record.
fn kind_bits(ind: &Indicator) -> u8 {
    match ind.keys.as_slice() {
        [crate::indicator::Key::Ip(n)]
            if n.prefix_len() == n.max_prefix_len()
                && displays_as(n.addr(), &ind.kql_network_ip) =>
        {
            KIND_KQL_IP_IS_KEY
        }
        [crate::indicator::Key::Str(Kind::Domain, d)] if ind.kql_domain_name == *d => {
            KIND_KQL_DOMAIN_IS_KEY
        }
        _ => 0,
    }
}

/// Whether `addr` as `std` displays it is exactly `s`, compared piece by piece as the
/// formatter writes it: a compile checks every address indicator, and building each text
/// would be an allocation per indicator.
fn displays_as(addr: std::net::IpAddr, s: &str) -> bool {
    struct Rest<'a>(&'a str);
    impl std::fmt::Write for Rest<'_> {
        fn write_str(&mut self, part: &str) -> std::fmt::Result {
            self.0 = self.0.strip_prefix(part).ok_or(std::fmt::Error)?;
            Ok(())
        }
    }
    let mut rest = Rest(s);
    std::fmt::write(&mut rest, format_args!("{addr}")).is_ok() && rest.0.is_empty()
}

/// The flags byte of record `i`.
#[inline]
pub(crate) fn flags(records: &[u8], i: u32) -> Option<u8> {
    records.get(i as usize * RECORD_SIZE + 23).copied()
}

/// Decodes the strings of a block.
/// The error for a malformed string block at `block`.
fn block_error(block: u32, blocks_at: usize) -> impl Fn(&str) -> Error + Copy {
    move |what| Error::corrupt(blocks_at + block as usize, format!("string block: {what}"))
}

/// A string block's `present` and `same` bit sets, checked: only known fields, `same` only
/// on present fields and never on the raw value itself.
fn block_head(blocks: &[u8], block: u32) -> std::result::Result<(u16, u16), &'static str> {
    let b = block as usize;
    let head = blocks.get(b..b + 4).ok_or("truncated")?;
    let present = u16::from_le_bytes([head[0], head[1]]);
    let same = u16::from_le_bytes([head[2], head[3]]);
    let raw = Field::RawValue as usize;
    if present >> FIELDS != 0 || same & !present != 0 || same & (1 << raw) != 0 {
        return Err("bad field bits");
    }
    Ok((present, same))
}

/// The string at offset `o` of the pool (a varint length, then the bytes).
#[inline]
fn pooled(pool: &[u8], o: u64) -> std::result::Result<&str, &'static str> {
    let o = usize::try_from(o).map_err(|_| "string offset out of range")?;
    let (len, start) = varint_at(pool, o).ok_or("string offset out of range")?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .ok_or("string length out of range")?;
    let bytes = pool.get(start..end).ok_or("string out of range")?;
    std::str::from_utf8(bytes).map_err(|_| "string is not UTF-8")
}

/// One string field of the block at `block`, decoding only the references before it (and the
/// raw value's, when the field is marked equal to it): what a KQL raw-string comparison needs.
///
/// # Errors
/// As [`strings`].
pub(crate) fn string_field<'a>(
    blocks: &[u8],
    pool: &'a [u8],
    block: u32,
    blocks_at: usize,
    field: Field,
) -> Result<&'a str> {
    let bad = block_error(block, blocks_at);
    let (present, same) = block_head(blocks, block).map_err(bad)?;
    let raw = Field::RawValue as usize;
    let want = field as usize;
    if present & (1 << want) == 0 {
        return Ok("");
    }
    // The stored field to read: the raw value's when marked equal to it.
    let target = if same & (1 << want) != 0 { raw } else { want };
    let mut p = block as usize + 4;
    for f in 0..FIELDS {
        if present & (1 << f) == 0 || same & (1 << f) != 0 {
            continue;
        }
        let (o, next) = varint_at(blocks, p).ok_or_else(|| bad("truncated"))?;
        if f == target {
            let s = pooled(pool, o).map_err(bad)?;
            if target != want && s.is_empty() {
                return Err(bad("field marked equal to an empty raw value"));
            }
            return Ok(s);
        }
        p = next;
    }
    Err(bad("bad field bits"))
}

pub(crate) fn strings<'a>(
    blocks: &[u8],
    pool: &'a [u8],
    block: u32,
    blocks_at: usize,
) -> Result<[&'a str; FIELDS]> {
    let bad = block_error(block, blocks_at);
    let (present, same) = block_head(blocks, block).map_err(bad)?;
    let raw = Field::RawValue as usize;
    let mut p = block as usize + 4;
    let mut out = [""; FIELDS];
    for (f, slot) in out.iter_mut().enumerate() {
        if present & (1 << f) == 0 || same & (1 << f) != 0 {
            continue;
        }
        let (o, next) = varint_at(blocks, p).ok_or_else(|| bad("truncated"))?;
        p = next;
        *slot = pooled(pool, o).map_err(bad)?;
    }
    if same != 0 && out[raw].is_empty() {
        return Err(bad("field marked equal to an empty raw value"));
    }
    for f in 0..FIELDS {
        if same & (1 << f) != 0 {
            out[f] = out[raw];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::displays_as;

    /// Against `to_string`, on spellings that share a prefix with the displayed text, extend
    /// it, or differ in case or notation.
    #[test]
    fn displays_as_agrees_with_to_string() {
        let addrs = ["1.2.3.4", "1.2.3.45", "2001:db8::1", "::ffff:1.2.3.4", "::"];
        let spellings = [
            "1.2.3.4",
            "1.2.3.45",
            "1.2.3",
            "1.2.3.4 ",
            " 1.2.3.4",
            "",
            "2001:db8::1",
            "2001:DB8::1",
            "2001:db8:0::1",
            "::ffff:1.2.3.4",
            "::",
            ":",
        ];
        for a in addrs {
            let a: std::net::IpAddr = a.parse().unwrap();
            for s in spellings {
                assert_eq!(displays_as(a, s), a.to_string() == s, "{a} {s:?}");
            }
        }
    }
}
