//! The index file's layout: header, section table, and the checked readers every other reader
//! module goes through. FORMAT.md describes the same layout byte by byte; a change to either
//! bumps [`VERSION`].
//!
//! All integers are little-endian. Sections are 8-byte aligned. [`Layout::parse`] validates,
//! in time independent of the indicator count, everything the lookup paths later rely on:
//! magic, version, lengths, that each section lies inside the file, and that element counts of
//! sections that go together agree. Values *inside* sections (record ids, offsets) are checked
//! when they are read.

use crate::error::{Error, Result};

/// The first 8 bytes of every index.
pub const MAGIC: [u8; 8] = *b"IOCMATCH";
/// The format version this build writes and reads.
pub const VERSION: u32 = 7;
/// Size of the fixed part of the header.
pub const FIXED_HEADER: usize = 64;
/// Byte offset of the CRC-32 in the header (zeroed while the checksum is computed).
pub const CHECKSUM_AT: usize = 40;
/// Header flag: some raw `NetworkIP` string in the raw table parses as an address (so an
/// address-shaped event key must probe the raw table too).
pub const FLAG_RAW_IP_PARSEABLE: u32 = 1;
/// Header flag: some raw `DomainName` string in the raw table normalizes as a domain.
pub const FLAG_RAW_DOMAIN_NORMALIZABLE: u32 = 2;

/// Size of one fixed indicator record.
pub const RECORD_SIZE: usize = 24;
/// Size of one IP prefix node.
pub const NODE_SIZE: usize = 8;

/// Sections, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Section {
    /// Fixed records, [`RECORD_SIZE`] bytes each.
    Records,
    /// Per-record string blocks (varint references into `Strings`).
    Blocks,
    /// Interned strings, each `varint len` + UTF-8 bytes; offset 0 is the empty string.
    Strings,
    /// IPv4 interval starts, `u32` each, ascending, the first 0.
    V4Starts,
    /// IPv4 interval values, `u32` each (see `iptrie`).
    V4Values,
    /// IPv4 first-level table: `2^l1_bits + 1` `u32` interval indices.
    V4L1,
    /// IPv4 occupancy bitmap over `2^bitmap_bits` address blocks.
    V4Bitmap,
    /// IPv6 interval starts, 16 bytes (big-endian u128) each.
    V6Starts,
    /// IPv6 interval values.
    V6Values,
    /// IPv6 first-level table.
    V6L1,
    /// Prefix nodes: `parent u32`, `postings u32`.
    Nodes,
    /// Posting lists: `count u32` then `count` record ids.
    Postings,
    /// String-key directory: per bucket and one past the last, the `u32` offset of its first
    /// entry, padded to 8 bytes.
    StrSlots,
    /// String-key entries, bucket by bucket: `tag u8`, `varint len`, key bytes, `varint n`,
    /// `n` × `u32` ids.
    StrEntries,
    /// Lone IPv4 addresses (no enclosing or enclosed prefix), `u32` each, ascending.
    V4LoneAddrs,
    /// Their record ids, `u32` each.
    V4LoneIds,
    /// First-level table over them: `2^lone_l1_bits + 1` `u32` indices.
    V4LoneL1,
    /// Lone IPv6 addresses, 16 bytes (big-endian) each, ascending.
    V6LoneAddrs,
    /// Their record ids.
    V6LoneIds,
    /// First-level table over them.
    V6LoneL1,
    /// String-key Bloom filter: a power of two of `u64` words, three bits per key.
    StrFilter,
    /// The IPv4 bitmap's blocks that intersect a prefix interval (same shape as `V4Bitmap`).
    V4IntervalBitmap,
    /// Bloom filter over the lone IPv4 addresses, like `StrFilter` (empty without a bitmap).
    V4LoneFilter,
    /// Bloom filter over every record's raw KQL join strings (`NetworkIP`, `DomainName`), read
    /// like `StrFilter` but of any number of words: a KQL-exact join key it rules out joins
    /// nothing.
    KqlFilter,
}

/// Number of sections.
pub const SECTIONS: usize = 24;

impl Section {
    /// All sections in table order.
    pub const ALL: [Section; SECTIONS] = [
        Section::Records,
        Section::Blocks,
        Section::Strings,
        Section::V4Starts,
        Section::V4Values,
        Section::V4L1,
        Section::V4Bitmap,
        Section::V6Starts,
        Section::V6Values,
        Section::V6L1,
        Section::Nodes,
        Section::Postings,
        Section::StrSlots,
        Section::StrEntries,
        Section::V4LoneAddrs,
        Section::V4LoneIds,
        Section::V4LoneL1,
        Section::V6LoneAddrs,
        Section::V6LoneIds,
        Section::V6LoneL1,
        Section::StrFilter,
        Section::V4IntervalBitmap,
        Section::V4LoneFilter,
        Section::KqlFilter,
    ];
}

/// Total header size: fixed part plus the section table.
pub const HEADER_LEN: usize = FIXED_HEADER + 16 * SECTIONS;

/// The parsed header. Offsets are validated against the file length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Build time (100 ns ticks since the epoch).
    pub build_time: i64,
    /// Number of records.
    pub records: u32,
    /// Stored checksum.
    pub checksum: u32,
    /// Header flags (`FLAG_*`).
    pub flags: u32,
    /// log2 of the IPv4 bitmap's block count (0 = no bitmap).
    pub v4_bitmap_bits: u8,
    /// log2 of the IPv4 first-level table size.
    pub v4_l1_bits: u8,
    /// log2 of the IPv6 first-level table size.
    pub v6_l1_bits: u8,
    /// log2 of the lone IPv4 first-level table size.
    pub v4_lone_l1_bits: u8,
    /// log2 of the lone IPv6 first-level table size.
    pub v6_lone_l1_bits: u8,
    /// Number of string-key buckets (at least 1).
    pub str_buckets: u32,
    /// Number of string keys.
    pub str_keys: u32,
    /// `(offset, len)` of each section.
    pub sections: [(usize, usize); SECTIONS],
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Reads a LEB128 varint (at most 10 bytes, fitting in u64); returns the value and the offset
/// after it.
#[inline(always)]
pub(crate) fn varint_at(b: &[u8], off: usize) -> Option<(u64, usize)> {
    // One byte (a value below 128) is the common case: key lengths, id counts, string lengths.
    match b.get(off) {
        Some(&byte) if byte < 0x80 => Some((u64::from(byte), off + 1)),
        _ => varint_at_long(b, off),
    }
}

/// [`varint_at`] of two bytes or more (or none).
#[inline(never)]
fn varint_at_long(b: &[u8], mut off: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(off)?;
        off += 1;
        v |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some((v, off));
        }
    }
    None
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Layout {
    /// Parses and validates the header of `b`.
    ///
    /// # Errors
    /// [`Error::NotAnIndex`], [`Error::Version`] or [`Error::Corrupt`] with the offset of the
    /// offending header field.
    pub fn parse(b: &[u8]) -> Result<Layout> {
        if b.len() < 8 || b[..8] != MAGIC {
            return Err(Error::NotAnIndex);
        }
        let short = |off: usize| {
            Error::corrupt(
                off,
                format!(
                    "file truncated ({} bytes, header needs {HEADER_LEN})",
                    b.len()
                ),
            )
        };
        let version = u32_at(b, 8).ok_or_else(|| short(8))?;
        if version != VERSION {
            return Err(Error::Version {
                expected: VERSION,
                found: version,
            });
        }
        if b.len() < HEADER_LEN {
            return Err(short(b.len()));
        }
        let header_len = u32_at(b, 12).ok_or_else(|| short(12))?;
        if header_len as usize != HEADER_LEN {
            return Err(Error::corrupt(
                12,
                format!("header length {header_len}, expected {HEADER_LEN}"),
            ));
        }
        let file_len = u64_at(b, 16).ok_or_else(|| short(16))?;
        if file_len != b.len() as u64 {
            return Err(Error::corrupt(
                16,
                format!("header records a file of {file_len} bytes but it has {} (truncated or extended)", b.len()),
            ));
        }
        let build_time = u64_at(b, 24).ok_or_else(|| short(24))? as i64;
        let records = u32_at(b, 32).ok_or_else(|| short(32))?;
        let flags = u32_at(b, 36).ok_or_else(|| short(36))?;
        if flags & !(FLAG_RAW_IP_PARSEABLE | FLAG_RAW_DOMAIN_NORMALIZABLE) != 0 {
            return Err(Error::corrupt(
                36,
                format!("unknown header flags {flags:#x}"),
            ));
        }
        let checksum = u32_at(b, CHECKSUM_AT).ok_or_else(|| short(CHECKSUM_AT))?;
        let nsect = u32_at(b, 44).ok_or_else(|| short(44))?;
        if nsect as usize != SECTIONS {
            return Err(Error::corrupt(
                44,
                format!("{nsect} sections, expected {SECTIONS}"),
            ));
        }
        let (v4_bitmap_bits, v4_l1_bits, v6_l1_bits) = (b[48], b[49], b[50]);
        let (v4_lone_l1_bits, v6_lone_l1_bits) = (b[51], b[52]);
        if [
            v4_bitmap_bits,
            v4_l1_bits,
            v6_l1_bits,
            v4_lone_l1_bits,
            v6_lone_l1_bits,
        ]
        .iter()
        .any(|&x| x > 24)
        {
            return Err(Error::corrupt(48, "table size out of range"));
        }
        let str_buckets = u32_at(b, 56).ok_or_else(|| short(56))?;
        let str_keys = u32_at(b, 60).ok_or_else(|| short(60))?;
        let mut sections = [(0usize, 0usize); SECTIONS];
        for (i, s) in sections.iter_mut().enumerate() {
            let at = FIXED_HEADER + 16 * i;
            let off = u64_at(b, at).ok_or_else(|| short(at))?;
            let len = u64_at(b, at + 8).ok_or_else(|| short(at + 8))?;
            let end = off.checked_add(len);
            if off < HEADER_LEN as u64 || off % 8 != 0 || end.is_none_or(|e| e > file_len) {
                return Err(Error::corrupt(
                    at,
                    format!(
                        "section {:?} at {off}+{len} lies outside the file",
                        Section::ALL[i]
                    ),
                ));
            }
            // Both fit in usize: they are bounded by the slice length.
            *s = (off as usize, len as usize);
        }
        let l = Layout {
            build_time,
            records,
            checksum,
            flags,
            v4_bitmap_bits,
            v4_l1_bits,
            v6_l1_bits,
            v4_lone_l1_bits,
            v6_lone_l1_bits,
            str_buckets,
            str_keys,
            sections,
        };
        l.check_shapes()?;
        Ok(l)
    }

    fn len(&self, s: Section) -> usize {
        self.sections[s as usize].1
    }

    fn check_shapes(&self) -> Result<()> {
        let table = |s: Section| FIXED_HEADER + 16 * (s as usize) + 8;
        let want = |s: Section, ok: bool, what: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::corrupt(table(s), format!("section {s:?}: {what}")))
            }
        };
        use Section::*;
        want(
            Records,
            self.len(Records) == self.records as usize * RECORD_SIZE,
            "length disagrees with the record count",
        )?;
        want(Strings, self.len(Strings) >= 1, "missing the empty string")?;
        want(
            V4Starts,
            self.len(V4Starts) % 4 == 0 && self.len(V4Starts) >= 4,
            "bad length",
        )?;
        want(
            V4Values,
            self.len(V4Values) == self.len(V4Starts),
            "length disagrees with V4Starts",
        )?;
        want(
            V4L1,
            self.len(V4L1) == ((1usize << self.v4_l1_bits) + 1) * 4,
            "bad length",
        )?;
        let bitmap = if self.v4_bitmap_bits == 0 {
            0
        } else {
            ((1usize << self.v4_bitmap_bits) / 8).max(1)
        };
        want(V4Bitmap, self.len(V4Bitmap) == bitmap, "bad length")?;
        want(
            V4IntervalBitmap,
            self.len(V4IntervalBitmap) == bitmap,
            "length disagrees with V4Bitmap",
        )?;
        want(
            V4LoneFilter,
            if bitmap == 0 {
                self.len(V4LoneFilter) == 0
            } else {
                super::strtable::filter_len_ok(self.len(V4LoneFilter))
            },
            "length is not a power of two of 8-byte words (none without a bitmap)",
        )?;
        want(
            V6Starts,
            self.len(V6Starts) % 16 == 0 && self.len(V6Starts) >= 16,
            "bad length",
        )?;
        want(
            V6Values,
            self.len(V6Values) * 4 == self.len(V6Starts),
            "length disagrees with V6Starts",
        )?;
        want(
            V6L1,
            self.len(V6L1) == ((1usize << self.v6_l1_bits) + 1) * 4,
            "bad length",
        )?;
        want(Nodes, self.len(Nodes) % NODE_SIZE == 0, "bad length")?;
        want(Postings, self.len(Postings) % 4 == 0, "bad length")?;
        want(
            StrSlots,
            self.str_buckets >= 1
                && Some(self.len(StrSlots))
                    == super::strtable::slots_len(self.str_buckets as usize),
            "length disagrees with the bucket count",
        )?;
        want(V4LoneAddrs, self.len(V4LoneAddrs) % 4 == 0, "bad length")?;
        want(
            V4LoneIds,
            self.len(V4LoneIds) == self.len(V4LoneAddrs),
            "length disagrees with V4LoneAddrs",
        )?;
        want(
            V4LoneL1,
            self.len(V4LoneL1) == ((1usize << self.v4_lone_l1_bits) + 1) * 4,
            "bad length",
        )?;
        want(V6LoneAddrs, self.len(V6LoneAddrs) % 16 == 0, "bad length")?;
        want(
            V6LoneIds,
            self.len(V6LoneIds) * 4 == self.len(V6LoneAddrs),
            "length disagrees with V6LoneAddrs",
        )?;
        want(
            V6LoneL1,
            self.len(V6LoneL1) == ((1usize << self.v6_lone_l1_bits) + 1) * 4,
            "bad length",
        )?;
        want(
            StrFilter,
            super::strtable::filter_len_ok(self.len(StrFilter)),
            "length is not a power of two of 8-byte words",
        )?;
        want(
            KqlFilter,
            self.len(KqlFilter) % 8 == 0 && self.len(KqlFilter) >= 8,
            "length is not a positive multiple of 8",
        )?;
        Ok(())
    }

    /// The byte range of a section.
    pub fn range(&self, s: Section) -> std::ops::Range<usize> {
        let (o, l) = self.sections[s as usize];
        o..o + l
    }
}

/// Stores [`checksum`] of `b`, a whole file, in its header.
pub fn put_checksum(b: &mut [u8]) {
    let crc = checksum(b);
    if let Some(field) = b.get_mut(CHECKSUM_AT..CHECKSUM_AT + 4) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
}

/// CRC-32 of the whole file with the checksum field taken as zero.
pub fn checksum(b: &[u8]) -> u32 {
    let at = CHECKSUM_AT.min(b.len());
    let rest: [&[u8]; 2] = match b.get(CHECKSUM_AT + 4..) {
        Some(rest) => [&[0; 4], rest],
        None => [&[], &[]],
    };
    checksum_parts([&b[..at]].into_iter().chain(rest))
}

/// [`checksum`] of a file given as its parts in order, its checksum field still zero (as
/// [`super::Image`] holds it before the field is filled in).
pub fn checksum_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    parts.into_iter().for_each(|p| h.update(p));
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(varint_at(&b, 0), Some((v, b.len())));
            assert_eq!(varint_at(&b[..b.len() - 1], 0), None);
        }
        assert_eq!(varint_at(&[0xff; 11], 0), None);
    }
}
