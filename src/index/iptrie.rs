//! The IP prefix structure: every address and CIDR, v4 and v6, flattened into sorted disjoint
//! intervals, so that a lookup is one search and returns *every* indicator containing the
//! address — overlapping prefixes and duplicates included, as KQL's inner join yields a row per
//! pair.
//!
//! CIDR prefixes form a laminar family (two prefixes are nested or disjoint), so they are the
//! nodes of a tree. Each interval of the address line names the innermost prefix covering it;
//! the node's `parent` chain yields the enclosing ones. Intervals are found through a
//! first-level table indexed by the top address bits (bucket `b` holds the index of the
//! interval containing the bucket's first address, so the answer lies between two adjacent
//! table entries) and, for IPv4, an occupancy bitmap that answers most misses with one bit.
//!
//! Interval values: [`EMPTY`] (no prefix), `TAG | record` (one record, no enclosing prefix:
//! the common case of a lone address), or a node index. Node postings: `TAG | record` or an
//! offset into the postings array (`count`, then record ids). Parents precede children, which
//! bounds every chain walk even in a corrupt file.

use super::format::u32_at;
use crate::error::{Error, Result};

/// Interval value: no prefix covers the interval.
pub const EMPTY: u32 = u32::MAX;
/// Tag bit: the low 31 bits are a record id.
pub const TAG: u32 = 0x8000_0000;
/// No parent.
pub const NONE: u32 = u32::MAX;

/// The serialized sections of one address family.
pub struct Family {
    /// Interval starts (u32 LE for v4, u128 BE for v6).
    pub starts: Vec<u8>,
    /// Interval values.
    pub values: Vec<u8>,
    /// First-level table.
    pub l1: Vec<u8>,
    /// log2 of the first-level table size.
    pub l1_bits: u8,
    /// Occupancy bitmap (v4 only; empty otherwise).
    pub bitmap: Vec<u8>,
    /// log2 of the bitmap's block count (0 = none).
    pub bitmap_bits: u8,
    /// The blocks of the occupancy bitmap that intersect a prefix interval (same shape).
    pub interval_bitmap: Vec<u8>,
    /// Bloom filter over the lone addresses (v4 with a bitmap only; empty otherwise).
    pub lone_filter: Vec<u8>,
    /// Lone addresses, ascending (duplicates adjacent), same encoding as `starts`.
    pub lone_addrs: Vec<u8>,
    /// The record id of each lone address.
    pub lone_ids: Vec<u8>,
    /// First-level table over the lone addresses: `2^lone_l1_bits + 1` indices.
    pub lone_l1: Vec<u8>,
    /// log2 of its size.
    pub lone_l1_bits: u8,
}

/// Builds both families; node and posting arrays are shared.
#[derive(Default)]
pub struct IpBuilder {
    /// `(network, prefix length, record)`, sorted at `finish`.
    v4: Vec<(u128, u8, u32)>,
    v6: Vec<(u128, u8, u32)>,
}

/// The output of [`IpBuilder::finish`].
pub struct IpSections {
    /// IPv4.
    pub v4: Family,
    /// IPv6.
    pub v6: Family,
    /// Shared nodes.
    pub nodes: Vec<u8>,
    /// Shared postings.
    pub postings: Vec<u8>,
}

fn log2_ceil(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

impl IpBuilder {
    /// Adds a record under a prefix (host bits must be clear).
    pub fn add(&mut self, net: ipnet::IpNet, rec: u32) {
        match net {
            ipnet::IpNet::V4(n) => {
                self.v4
                    .push((u128::from(u32::from(n.network())), n.prefix_len(), rec))
            }
            ipnet::IpNet::V6(n) => self.v6.push((u128::from(n.network()), n.prefix_len(), rec)),
        }
    }

    /// Serializes.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when node or posting counts exceed 2^31.
    pub fn finish(self) -> Result<IpSections> {
        let mut nodes = Vec::new();
        let mut postings = Vec::new();
        let (v4, lone4) = build_family(self.v4, 32, &mut nodes, &mut postings)?;
        let (v6, lone6) = build_family(self.v6, 128, &mut nodes, &mut postings)?;
        let mut v4 = encode(v4, lone4, 32);
        // ~16 blocks per occupied interval or lone address keeps the bitmap sparse enough to
        // reject most misses.
        let n = v4.starts.len() / 4 + v4.lone_ids.len() / 4;
        let bits = if n <= 1 {
            0
        } else {
            (log2_ceil(n) + 4).clamp(3, 24) as u8
        };
        v4.bitmap_bits = bits;
        if bits > 0 {
            let mut bm = vec![0u8; (1usize << bits) / 8];
            let shift = 32 - u32::from(bits);
            let starts: Vec<u32> = v4
                .starts
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let vals: Vec<u32> = v4
                .values
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            for (i, (&s, &v)) in starts.iter().zip(&vals).enumerate() {
                if v == EMPTY {
                    continue;
                }
                let end = starts.get(i + 1).map_or(u32::MAX, |&e| e - 1);
                for blk in (s >> shift)..=(end >> shift) {
                    bm[(blk / 8) as usize] |= 1 << (blk % 8);
                }
            }
            v4.interval_bitmap = bm.clone();
            let lone = v4
                .lone_addrs
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            for a in lone.clone() {
                let blk = a >> shift;
                bm[(blk / 8) as usize] |= 1 << (blk % 8);
            }
            v4.bitmap = bm;
            v4.lone_filter = super::strtable::filter_bytes(lone.map(lone_hash));
        }
        let v6 = encode(v6, lone6, 128);
        Ok(IpSections {
            v4,
            v6,
            nodes,
            postings,
        })
    }
}

/// Flattens one family into `(start, value)` intervals and `(address, record)` lone pairs,
/// appending its nodes and postings.
#[allow(clippy::type_complexity)]
fn build_family(
    mut entries: Vec<(u128, u8, u32)>,
    width: u32,
    nodes: &mut Vec<u8>,
    postings: &mut Vec<u8>,
) -> Result<(Vec<(u128, u32)>, Vec<(u128, u32)>)> {
    let host_mask = |len: u8| -> u128 {
        let host = width - u32::from(len);
        if host == 0 {
            0
        } else if host >= 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        }
    };
    // (start, len) order puts an enclosing prefix before the prefixes it contains; ids stay in
    // record order within a prefix.
    entries.sort_unstable();
    let mut list: Vec<((u128, u8), &[(u128, u8, u32)])> = Vec::new();
    for group in entries.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        list.push(((group[0].0, group[0].1), group));
    }
    // Parents: the innermost earlier prefix still open.
    let mut parent = vec![usize::MAX; list.len()];
    let mut has_child = vec![false; list.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (i, ((start, _), _)) in list.iter().enumerate() {
        while let Some(&top) = stack.last() {
            let (ts, tl) = list[top].0;
            if ts | host_mask(tl) < *start {
                stack.pop();
            } else {
                break;
            }
        }
        if let Some(&top) = stack.last() {
            parent[i] = top;
            has_child[top] = true;
        }
        stack.push(i);
    }
    // Lone single addresses (no enclosing or enclosed prefix: most indicators) go to a plain
    // sorted array, which costs 8 bytes per address instead of two intervals.
    let mut lone: Vec<(u128, u32)> = Vec::new();
    let mut is_lone = vec![false; list.len()];
    for (i, ((start, len), ids)) in list.iter().enumerate() {
        if u32::from(*len) == width && parent[i] == usize::MAX && !has_child[i] {
            is_lone[i] = true;
            lone.extend(ids.iter().map(|e| (*start, e.2)));
        }
    }
    // Materialize nodes, except lone single-record prefixes, which go straight into intervals.
    // A single-record prefix without a parent answers its own intervals with `TAG | record`
    // even when it has children (they still name its node as their parent): a lookup there
    // reads no node.
    let too_large = || Error::TooLarge("more than 2^31 IP prefixes or postings".into());
    let mut value = vec![EMPTY; list.len()];
    let mut node_of = vec![NONE; list.len()];
    let mut node_count = nodes.len() / 8;
    for (i, (_, ids)) in list.iter().enumerate() {
        if is_lone[i] {
            continue;
        }
        let top_single = parent[i] == usize::MAX && ids.len() == 1;
        if top_single {
            value[i] = TAG | ids[0].2;
            if !has_child[i] {
                continue;
            }
        }
        let idx = u32::try_from(node_count)
            .ok()
            .filter(|&n| n < TAG)
            .ok_or_else(too_large)?;
        node_count += 1;
        node_of[i] = idx;
        if !top_single {
            value[i] = idx;
        }
        let p = if parent[i] == usize::MAX {
            NONE
        } else {
            node_of[parent[i]]
        };
        let post = if ids.len() == 1 {
            TAG | ids[0].2
        } else {
            let off = u32::try_from(postings.len() / 4)
                .ok()
                .filter(|&n| n < TAG)
                .ok_or_else(too_large)?;
            postings.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for e in *ids {
                postings.extend_from_slice(&e.2.to_le_bytes());
            }
            off
        };
        nodes.extend_from_slice(&p.to_le_bytes());
        nodes.extend_from_slice(&post.to_le_bytes());
    }
    // Sweep: boundaries where the innermost covering prefix changes.
    let mut out: Vec<(u128, u32)> = vec![(0, EMPTY)];
    let emit = |out: &mut Vec<(u128, u32)>, pos: u128, v: u32| {
        let last = out.len() - 1;
        if out[last].0 == pos {
            out[last].1 = v;
        } else if out[last].1 != v {
            out.push((pos, v));
        }
    };
    let mut open: Vec<(u128, u32)> = Vec::new(); // (inclusive end, value)
    let close_until =
        |out: &mut Vec<(u128, u32)>, open: &mut Vec<(u128, u32)>, limit: Option<u128>| {
            while let Some(&(end, _)) = open.last() {
                if limit.is_some_and(|l| end >= l) {
                    break;
                }
                open.pop();
                if let Some(next) = end
                    .checked_add(1)
                    .filter(|&n| width == 128 || n < 1u128 << width)
                {
                    let v = open.last().map_or(EMPTY, |&(_, v)| v);
                    emit(out, next, v);
                }
            }
        };
    for (i, ((start, len), _)) in list.iter().enumerate() {
        if is_lone[i] {
            continue;
        }
        close_until(&mut out, &mut open, Some(*start));
        open.push((start | host_mask(*len), value[i]));
        emit(&mut out, *start, value[i]);
    }
    close_until(&mut out, &mut open, None);
    Ok((out, lone))
}

fn put_addr(out: &mut Vec<u8>, a: u128, width: u32) {
    if width == 32 {
        out.extend_from_slice(&(a as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&a.to_be_bytes());
    }
}

/// The lone-address bucket of `addr` among `2^bits` (part of the format; FORMAT.md gives the
/// same arithmetic): the address's 64-bit halves mixed, then the top `bits` bits.
#[inline]
pub fn lone_bucket(addr: u128, bits: u8) -> usize {
    if bits == 0 {
        return 0;
    }
    let hi = (addr >> 64) as u64;
    let lo = addr as u64;
    let mut h = (hi ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ lo).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> (64 - u32::from(bits.min(63)))) as usize
}

/// The lone first-level table's entries for addresses in `buckets` (of `2^bits`): per bucket
/// the number of addresses in the buckets before it, then the total (`2^bits + 1` entries).
/// The writer builds the table with it; `verify` checks the file's against it.
pub fn bucket_starts(buckets: &[usize], bits: u8) -> Vec<usize> {
    let n = 1usize << bits;
    let mut first = vec![0usize; n + 1];
    for &b in buckets {
        if let Some(c) = first.get_mut(b + 1) {
            *c += 1;
        }
    }
    for b in 0..n {
        first[b + 1] += first[b];
    }
    first
}

/// A first-level table: entry `b` is `first(b)`, for `b` in `0..=2^bits`.
fn l1_table(bits: u8, first: impl Fn(u128) -> usize, width: u32, last: usize) -> Vec<u8> {
    let buckets = 1usize << bits;
    let mut l1 = Vec::with_capacity((buckets + 1) * 4);
    for b in 0..buckets {
        let start = if bits == 0 {
            0
        } else {
            (b as u128) << (width - u32::from(bits))
        };
        l1.extend_from_slice(&(first(start) as u32).to_le_bytes());
    }
    l1.extend_from_slice(&(last as u32).to_le_bytes());
    l1
}

fn encode(intervals: Vec<(u128, u32)>, lone: Vec<(u128, u32)>, width: u32) -> Family {
    let n = intervals.len();
    let mut starts = Vec::with_capacity(n * if width == 32 { 4 } else { 16 });
    let mut values = Vec::with_capacity(n * 4);
    for &(s, v) in &intervals {
        put_addr(&mut starts, s, width);
        values.extend_from_slice(&v.to_le_bytes());
    }
    // About 8 intervals per first-level bucket; bucket b holds the interval containing its
    // first address.
    let max_bits = if width == 32 { 20 } else { 16 };
    let m = lone.len();
    let l1_bits = log2_ceil(n).saturating_sub(3).min(max_bits) as u8;
    let l1 = l1_table(
        l1_bits,
        |a| intervals.partition_point(|iv| iv.0 <= a).saturating_sub(1),
        width,
        n - 1,
    );
    // Hashed buckets of about four addresses each: real feeds crowd their IPv6 addresses into
    // a few /32s, where buckets by leading bits would hold thousands.
    let lone_l1_bits = log2_ceil(m).saturating_sub(2).min(max_bits) as u8;
    let buckets: Vec<usize> = lone
        .iter()
        .map(|&(a, _)| lone_bucket(a, lone_l1_bits))
        .collect();
    let first = bucket_starts(&buckets, lone_l1_bits);
    // A stable counting sort by bucket: within a bucket, ascending addresses and, per address,
    // record order, as `lone` has them.
    let mut order = vec![0usize; m];
    let mut next = first.clone();
    for (i, &b) in buckets.iter().enumerate() {
        order[next[b]] = i;
        next[b] += 1;
    }
    let lone_l1: Vec<u8> = first
        .iter()
        .flat_map(|&i| (i as u32).to_le_bytes())
        .collect();
    let mut lone_addrs = Vec::with_capacity(m * if width == 32 { 4 } else { 16 });
    let mut lone_ids = Vec::with_capacity(m * 4);
    for &(a, id) in order.iter().map(|&i| &lone[i]) {
        put_addr(&mut lone_addrs, a, width);
        lone_ids.extend_from_slice(&id.to_le_bytes());
    }
    Family {
        starts,
        values,
        l1,
        l1_bits,
        bitmap: Vec::new(),
        bitmap_bits: 0,
        interval_bitmap: Vec::new(),
        lone_filter: Vec::new(),
        lone_addrs,
        lone_ids,
        lone_l1,
        lone_l1_bits,
    }
}

/// A view of one family's sections (validated shapes: see `Layout::parse`).
#[derive(Clone, Copy)]
pub struct FamilyView<'a> {
    /// Interval starts.
    pub starts: &'a [u8],
    /// Interval values.
    pub values: &'a [u8],
    /// First-level table.
    pub l1: &'a [u8],
    /// log2 of its size.
    pub l1_bits: u8,
    /// File offset of `values`, for errors.
    pub values_at: usize,
    /// Lone addresses.
    pub lone_addrs: &'a [u8],
    /// Their record ids.
    pub lone_ids: &'a [u8],
    /// First-level table over the lone addresses.
    pub lone_l1: &'a [u8],
    /// log2 of its size.
    pub lone_l1_bits: u8,
}

impl<'a> FamilyView<'a> {
    fn value_at(&self, i: usize) -> Result<u32> {
        u32_at(self.values, i * 4)
            .ok_or_else(|| Error::corrupt(self.values_at, "interval index out of range"))
    }

    fn bucket_range(&self, bucket: usize, n: usize) -> Result<(usize, usize)> {
        let lo = u32_at(self.l1, bucket * 4).map(|v| v as usize);
        let hi = u32_at(self.l1, bucket * 4 + 4).map(|v| v as usize);
        match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi && hi < n => Ok((lo, hi)),
            _ => Err(Error::corrupt(
                self.values_at,
                "first-level table entry out of range",
            )),
        }
    }

    /// The range of lone entries equal to `addr` (`width` = 4 or 16 bytes per address).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent table.
    #[inline]
    pub fn find_lone(&self, addr: u128, width: usize) -> Result<std::ops::Range<usize>> {
        let n = self.lone_ids.len() / 4;
        if n == 0 {
            return Ok(0..0);
        }
        let bucket = lone_bucket(addr, self.lone_l1_bits);
        let lo = u32_at(self.lone_l1, bucket * 4).map(|v| v as usize);
        let hi = u32_at(self.lone_l1, bucket * 4 + 4).map(|v| v as usize);
        let (mut lo, hi) = match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi && hi <= n => (lo, hi),
            _ => {
                return Err(Error::corrupt(
                    self.values_at,
                    "lone first-level table entry out of range",
                ))
            }
        };
        let at = |i: usize| -> u128 {
            let b = self
                .lone_addrs
                .get(i * width..(i + 1) * width)
                .unwrap_or(&[]);
            if width == 4 {
                <[u8; 4]>::try_from(b).map_or(u128::MAX, |b| u128::from(u32::from_le_bytes(b)))
            } else {
                <[u8; 16]>::try_from(b).map_or(u128::MAX, u128::from_be_bytes)
            }
        };
        // First i in [lo, hi) with at(i) >= addr.
        let mut len = hi - lo;
        while len > 0 {
            let half = len / 2;
            if at(lo + half) < addr {
                lo += half + 1;
                len -= half + 1;
            } else {
                len = half;
            }
        }
        let mut end = lo;
        while end < hi && at(end) == addr {
            end += 1;
        }
        Ok(lo..end)
    }

    /// The record id of lone entry `i`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when `i` is out of range.
    /// The byte of the lone first-level entry of `addr`'s bucket: the first read of a lone
    /// search, for a batch to touch ahead.
    #[inline]
    pub fn lone_l1_byte(&self, addr: u128) -> Option<&'a u8> {
        self.lone_l1.get(lone_bucket(addr, self.lone_l1_bits) * 4)
    }

    /// The first address byte of `addr`'s lone bucket: the second read of a lone search (it
    /// reads the first-level entry, which a batch has just touched).
    #[inline]
    pub fn lone_bucket_byte(&self, addr: u128, width: usize) -> Option<&'a u8> {
        let k = lone_bucket(addr, self.lone_l1_bits);
        let first = u32_at(self.lone_l1, k * 4)? as usize;
        self.lone_addrs.get(first.checked_mul(width)?)
    }

    pub fn lone_id(&self, i: usize) -> Result<u32> {
        u32_at(self.lone_ids, i * 4)
            .ok_or_else(|| Error::corrupt(self.values_at, "lone index out of range"))
    }

    /// The interval value covering an IPv4 address (the bitmap is checked by the caller).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent table.
    #[inline]
    pub fn find_v4(&self, addr: u32) -> Result<u32> {
        let n = self.starts.len() / 4;
        let bucket = if self.l1_bits == 0 {
            0
        } else {
            (addr >> (32 - u32::from(self.l1_bits))) as usize
        };
        let (mut lo, hi) = self.bucket_range(bucket, n)?;
        // Largest i in [lo, hi] with starts[i] <= addr (starts[lo] <= addr by construction;
        // a corrupt file at worst yields a wrong but in-range answer).
        let mut len = hi - lo + 1;
        while len > 1 {
            let half = len / 2;
            let mid = lo + half;
            if u32_at(self.starts, mid * 4).unwrap_or(u32::MAX) <= addr {
                lo = mid;
            }
            len -= half;
        }
        self.value_at(lo)
    }

    /// The interval value covering an IPv6 address.
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent table.
    pub fn find_v6(&self, addr: u128) -> Result<u32> {
        let n = self.starts.len() / 16;
        let bucket = if self.l1_bits == 0 {
            0
        } else {
            (addr >> (128 - u32::from(self.l1_bits))) as usize
        };
        let (mut lo, hi) = self.bucket_range(bucket, n)?;
        let start = |i: usize| -> u128 {
            self.starts
                .get(i * 16..i * 16 + 16)
                .and_then(|s| <[u8; 16]>::try_from(s).ok())
                .map_or(u128::MAX, u128::from_be_bytes)
        };
        let mut len = hi - lo + 1;
        while len > 1 {
            let half = len / 2;
            let mid = lo + half;
            if start(mid) <= addr {
                lo = mid;
            }
            len -= half;
        }
        self.value_at(lo)
    }
}

/// The byte of a v4 occupancy bitmap of `2^bits` blocks that holds `addr`'s block bit
/// (`None` without a bitmap).
#[inline]
pub fn bitmap_byte(bitmap: &[u8], bits: u8, addr: u32) -> Option<&u8> {
    bitmap_block(bits, addr).and_then(|blk| bitmap.get(blk / 8))
}

/// The block of `addr` in a bitmap of `2^bits` blocks (`None` without a bitmap).
#[inline]
fn bitmap_block(bits: u8, addr: u32) -> Option<usize> {
    (bits != 0).then(|| (addr >> (32 - u32::from(bits))) as usize)
}

/// The hash of a lone IPv4 address for the lone filter (see FORMAT.md): the address times an
/// odd constant, so that [`super::strtable::filter_slot`]'s remix spreads neighbouring
/// addresses over unrelated words.
#[inline]
pub fn lone_hash(addr: u32) -> u64 {
    (u64::from(addr) | 1 << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Whether `addr`'s block bit is set in a bitmap of `2^bits` blocks (`true` when its byte is
/// missing: the caller then looks the address up).
#[inline]
pub fn bitmap_has(bitmap: &[u8], bits: u8, addr: u32) -> bool {
    bitmap_block(bits, addr).is_none_or(|blk| {
        bitmap
            .get(blk / 8)
            .is_none_or(|b| b & (1 << (blk % 8)) != 0)
    })
}

/// Whether a lone filter lets `addr` through (`false`: no lone address equals it). An empty
/// filter lets everything through.
#[inline]
pub fn lone_filter_maybe(filter: &[u8], addr: u32) -> bool {
    super::strtable::filter_maybe(filter, lone_hash(addr))
}

/// Whether a v4 occupancy bitmap rules `addr` out: its block holds no interval and no lone
/// address. Without a bitmap, `false`.
#[inline]
pub fn bitmap_absent(bitmap: &[u8], bits: u8, addr: u32) -> bool {
    // The bitmap length matches `bits` (checked at open).
    bitmap_block(bits, addr).is_some_and(|blk| {
        bitmap
            .get(blk / 8)
            .is_none_or(|b| b & (1 << (blk % 8)) == 0)
    })
}

/// Walks an interval value's records: the innermost prefix's first, then each enclosing one's.
///
/// # Errors
/// [`Error::Corrupt`] when a node or posting lies outside its section or a parent does not
/// precede its child.
pub fn visit(
    value: u32,
    nodes: &[u8],
    postings: &[u8],
    nodes_at: usize,
    f: &mut impl FnMut(u32) -> Result<()>,
) -> Result<()> {
    if value == EMPTY {
        return Ok(());
    }
    if value & TAG != 0 {
        return f(value & !TAG);
    }
    let mut node = value;
    loop {
        let at = node as usize * 8;
        let bad = || Error::corrupt(nodes_at + at, "IP prefix node out of range");
        let parent = u32_at(nodes, at).ok_or_else(bad)?;
        let post = u32_at(nodes, at + 4).ok_or_else(bad)?;
        if post & TAG != 0 {
            f(post & !TAG)?;
        } else {
            let p = post as usize * 4;
            let count = u32_at(postings, p).ok_or_else(bad)? as usize;
            let ids = count
                .checked_mul(4)
                .and_then(|l| postings.get(p + 4..(p + 4).checked_add(l)?))
                .ok_or_else(bad)?;
            for c in ids.chunks_exact(4) {
                f(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))?;
            }
        }
        if parent == NONE {
            return Ok(());
        }
        if parent >= node {
            return Err(bad());
        }
        node = parent;
    }
}
