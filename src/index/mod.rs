//! The compiled index: one file, memory-mapped, opened in constant time.
//!
//! [`build`] turns [`Indicator`](crate::indicator::Indicator) records into bytes (see FORMAT.md
//! for the layout); [`Index`] reads them from any `AsRef<[u8]>` — a `Vec<u8>` in tests, a
//! read-only memory map in production ([`Index::open`]). Opening checks the header and the
//! section table only; every later read is bounds-checked, so a corrupt or hostile file yields
//! [`Error::Corrupt`], never a panic. [`Index::verify`] checks the whole-file checksum and
//! walks every structure.

mod build;
mod fasthash;
pub mod format;
mod hot;
mod iptrie;
mod load;
mod records;
mod strtable;
mod verify;

pub use build::{build, build_image, write_atomic, Image};
pub use hot::HOT_LIMIT;
pub use load::{load, IndexBytes};
pub use records::{Field, Fixed, FIELDS};
pub use strtable::Ids;

#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::indicator::{canonical_v6, normalize_domain_cow, parse_ip_addr, Kind, Origin};
use crate::time::Timestamp;
use format::{Layout, Section};
use iptrie::FamilyView;
use memmap2::Mmap;
use std::net::IpAddr;
use std::path::Path;
use strtable::{hash, StrTable, TAG_RAW_DOMAIN_NAME, TAG_RAW_NETWORK_IP};

/// A compiled indicator index over bytes `S`.
///
/// `Index` is `Send + Sync` when `S` is: rayon workers share one `&Index`.
pub struct Index<S = Mmap> {
    data: S,
    layout: Layout,
    /// Lookup sections copied into huge pages ([`Index::load_hot_sections`]).
    hot: Option<hot::Hot>,
}

impl Index<Mmap> {
    /// Maps an index file read-only and validates its header.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened or mapped; the header errors of
    /// [`Index::from_bytes`].
    pub fn open(path: impl AsRef<Path>) -> Result<Index<Mmap>> {
        let map = crate::mmap::map(path.as_ref(), false)?;
        Index::from_bytes(map)
    }
}

impl<S: AsRef<[u8]>> Index<S> {
    /// Wraps index bytes, validating the header and section table (constant time).
    ///
    /// # Errors
    /// [`Error::NotAnIndex`], [`Error::Version`] or [`Error::Corrupt`].
    pub fn from_bytes(data: S) -> Result<Index<S>> {
        let layout = Layout::parse(data.as_ref())?;
        Ok(Index {
            data,
            layout,
            hot: None,
        })
    }

    /// Copies the sections a key's first probe reads (the IPv4 bitmaps and lone filter, the
    /// string-key filter and directory, first-level tables and the lone IPv6 addresses; at
    /// most [`HOT_LIMIT`] bytes) into anonymous memory that Linux backs with 2 MiB pages
    /// (transparent huge pages, requested with `madvise`), and reads them from there.
    /// Returns the bytes copied.
    ///
    /// Those reads land at random in megabytes, and with 4 KiB pages most of them also miss
    /// the TLB: a network hunt spent about 10 % less CPU with the copy. The answers are the
    /// same. It costs a few milliseconds and that much memory (8 MB for 1M indicators), so it
    /// pays for long hunts, not for a few lookups; the `hunt` command calls it for 32 MiB of
    /// input or more and for stdin, `filter` always. Elsewhere than Linux the copy is made
    /// with ordinary pages.
    ///
    /// # Errors
    /// When the anonymous map cannot be made; the index stays usable as it was.
    pub fn load_hot_sections(&mut self) -> std::io::Result<usize> {
        if self.hot.is_none() {
            self.hot = hot::Hot::copy(self.data.as_ref(), &self.layout, HOT_LIMIT)?;
        }
        Ok(self.hot.as_ref().map_or(0, hot::Hot::len))
    }

    #[inline]
    fn sect(&self, s: Section) -> &[u8] {
        if let Some(b) = self.hot.as_ref().and_then(|h| h.get(s)) {
            return b;
        }
        // In range: checked by `Layout::parse`.
        self.data.as_ref().get(self.layout.range(s)).unwrap_or(&[])
    }

    fn at(&self, s: Section) -> usize {
        self.layout.range(s).start
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.data.as_ref()
    }

    /// Number of indicator records.
    pub fn len(&self) -> usize {
        self.layout.records as usize
    }

    /// Whether the index holds no records.
    pub fn is_empty(&self) -> bool {
        self.layout.records == 0
    }

    /// When the index was built.
    pub fn build_time(&self) -> Option<Timestamp> {
        Timestamp::from_ticks(self.layout.build_time)
    }

    /// The parsed header.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Record `id` with all its fields.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if `id` is out of range or the record is malformed.
    pub fn record(&self, id: u32) -> Result<Record<'_>> {
        if id >= self.layout.records {
            return Err(Error::corrupt(
                self.at(Section::Records),
                format!(
                    "record id {id} out of range ({} records)",
                    self.layout.records
                ),
            ));
        }
        let fixed = records::fixed(self.sect(Section::Records), id, self.at(Section::Records))?;
        let strings = records::strings(
            self.sect(Section::Blocks),
            self.sect(Section::Strings),
            fixed.block,
            self.at(Section::Blocks),
        )?;
        Ok(Record { id, fixed, strings })
    }

    /// One string field of record `id`, decoding no other string: cheaper than
    /// [`Index::record`] when one field is all that is needed.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if `id` is out of range or the record's strings are malformed.
    pub fn field(&self, id: u32, field: Field) -> Result<&str> {
        let fixed = self.fixed(id)?;
        records::string_field(
            self.sect(Section::Blocks),
            self.sect(Section::Strings),
            fixed.block,
            self.at(Section::Blocks),
            field,
        )
    }

    /// The confidence of record `id`, as [`Record::confidence`] gives it, decoding at most the
    /// one string that holds it (most records keep it in their fixed part).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if `id` is out of range or the record is malformed.
    pub fn confidence(&self, id: u32) -> Result<Option<f64>> {
        let fixed = self.fixed(id)?;
        Ok(if fixed.confidence_in_block {
            self.field(id, Field::Confidence)?.parse().ok()
        } else {
            fixed.confidence
        })
    }

    /// The fixed fields of record `id`: no strings are touched.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if `id` is out of range or the record is malformed.
    pub fn fixed(&self, id: u32) -> Result<Fixed> {
        if id >= self.layout.records {
            return Err(Error::corrupt(
                self.at(Section::Records),
                format!("record id {id} out of range"),
            ));
        }
        records::fixed(self.sect(Section::Records), id, self.at(Section::Records))
    }

    /// The expiration of record `id` (`Ok(None)` = null), read from its fixed record only
    /// (and no other field of it).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if `id` is out of range or the stored time is invalid.
    #[inline]
    pub fn expiration(&self, id: u32) -> Result<Option<Timestamp>> {
        if id >= self.layout.records {
            return Err(Error::corrupt(
                self.at(Section::Records),
                format!("record id {id} out of range"),
            ));
        }
        records::expiration(self.sect(Section::Records), id, self.at(Section::Records))
    }

    /// Iterates all records in id order.
    pub fn records(&self) -> impl Iterator<Item = Result<Record<'_>>> + '_ {
        (0..self.layout.records).map(move |i| self.record(i))
    }

    fn v4(&self) -> FamilyView<'_> {
        FamilyView {
            starts: self.sect(Section::V4Starts),
            values: self.sect(Section::V4Values),
            l1: self.sect(Section::V4L1),
            l1_bits: self.layout.v4_l1_bits,
            values_at: self.at(Section::V4Values),
            lone_addrs: self.sect(Section::V4LoneAddrs),
            lone_ids: self.sect(Section::V4LoneIds),
            lone_l1: self.sect(Section::V4LoneL1),
            lone_l1_bits: self.layout.v4_lone_l1_bits,
        }
    }

    fn v6(&self) -> FamilyView<'_> {
        FamilyView {
            starts: self.sect(Section::V6Starts),
            values: self.sect(Section::V6Values),
            l1: self.sect(Section::V6L1),
            l1_bits: self.layout.v6_l1_bits,
            values_at: self.at(Section::V6Values),
            lone_addrs: self.sect(Section::V6LoneAddrs),
            lone_ids: self.sect(Section::V6LoneIds),
            lone_l1: self.sect(Section::V6LoneL1),
            lone_l1_bits: self.layout.v6_lone_l1_bits,
        }
    }

    #[inline]
    fn strtable(&self) -> StrTable<'_> {
        // Section lengths are checked at open.
        let buckets = self.layout.str_buckets as usize;
        StrTable {
            dir: self.sect(Section::StrSlots),
            keys: self.layout.str_keys as usize,
            filter: self.sect(Section::StrFilter),
            buckets: buckets.max(1),
            entries: self.sect(Section::StrEntries),
            entries_at: self.at(Section::StrEntries),
            slots_at: self.at(Section::StrSlots),
        }
    }

    /// The KQL raw-key filter (see [`Index::kql_absent`]).
    #[inline]
    pub(crate) fn kql_filter(&self) -> KqlFilter<'_> {
        KqlFilter {
            words: self.sect(Section::KqlFilter),
        }
    }

    /// Whether the KQL-exact join of event key `s` on `col` surely finds nothing: `s` is not
    /// empty, and no record's raw `col` string has its hash in the index's KQL filter (about
    /// 2 % of absent keys pass). `false` means "join it" ([`Index::visit_kql_network_ip`],
    /// [`Index::visit_kql_domain_name`]); those joins check this first themselves.
    #[inline]
    pub fn kql_absent(&self, col: KqlColumn, s: &str) -> bool {
        !s.is_empty() && !self.kql_filter().maybe(KqlFilter::hash(col, s))
    }

    fn checked(&self, id: u32) -> Result<u32> {
        if id < self.layout.records {
            Ok(id)
        } else {
            // The referring structure is not known here; the offset names the records section.
            Err(Error::corrupt(
                self.at(Section::Records),
                format!(
                    "a lookup structure refers to record {id}, beyond the {} records",
                    self.layout.records
                ),
            ))
        }
    }

    /// Whether the IPv4 bitmaps and the lone filter prove that no indicator address or CIDR
    /// contains `a` (`false` means "look it up"): the occupancy bit of `a`'s block, and for an
    /// occupied block without prefix intervals, the lone filter. With `raw_too`, also that no raw `NetworkIP`
    /// string can equal `a`'s spelling, so the KQL-exact join finds nothing either.
    ///
    /// The hunt probes this for a batch of records before matching them, so that the batch's
    /// cache misses overlap instead of queuing one per record.
    #[inline]
    pub fn ipv4_absent(&self, a: std::net::Ipv4Addr, raw_too: bool) -> bool {
        self.v4_filter().absent(a, raw_too)
    }

    /// The sections [`Index::ipv4_absent`] reads, found once for many checks in a row.
    #[inline]
    pub fn v4_filter(&self) -> V4Filter<'_> {
        V4Filter {
            occupancy: self.sect(Section::V4Bitmap),
            intervals: self.sect(Section::V4IntervalBitmap),
            lone: self.sect(Section::V4LoneFilter),
            bits: self.layout.v4_bitmap_bits,
            raw_parseable: self.layout.flags & format::FLAG_RAW_IP_PARSEABLE != 0,
        }
    }

    /// Whether no indicator address or CIDR contains the IPv6 address `a` (`false` means "look
    /// it up"; so does an IPv4-mapped `a`, which is looked up as IPv4); with `raw_too`, also
    /// that the KQL-exact join finds nothing (see [`Index::ipv4_absent`]). It reads the interval
    /// table and `a`'s lone bucket, whose two cache lines a batch reads ahead with
    /// [`Index::ipv6_probe_bytes`].
    #[inline]
    pub fn ipv6_absent(&self, a: std::net::Ipv6Addr, raw_too: bool) -> bool {
        self.v6_filter().absent(a, raw_too)
    }

    /// The bytes [`Index::ipv6_absent`] reads in turn for `a`'s lone bucket: with `first`, the
    /// bucket's first-level entry; without, the bucket's first address (found through that
    /// entry, so a batch touches the first bytes of all its keys, then the second ones).
    #[inline]
    pub fn ipv6_probe_bytes(&self, a: std::net::Ipv6Addr, first: bool) -> Option<&u8> {
        self.v6_filter().probe_byte(a, first)
    }

    /// The IPv6 tables as [`Index::ipv6_absent`] reads them, for a loop of probes that should
    /// not find the sections anew for every address.
    #[inline]
    pub(crate) fn v6_filter(&self) -> V6Filter<'_> {
        V6Filter {
            fam: self.v6(),
            raw_parseable: self.layout.flags & format::FLAG_RAW_IP_PARSEABLE != 0,
        }
    }

    /// Whether the IPv4 bitmaps rule `addr` out: its block is empty, or holds only lone
    /// addresses (no prefix interval) and the lone filter rules `addr` out. Most addresses are
    /// decided by the occupancy bit alone; the block of a lone address holds about 1 in 30
    /// addresses of a random stream (1M indicators), which the filter rules out but for ~1 %.
    #[inline]
    fn v4_bitmap_absent(&self, addr: u32) -> bool {
        // The occupancy bit alone first: in a loop of lookups and nothing else the bitmap
        // stays cached, and finding the other two sections for every address cost a third
        // of the lookup rate.
        iptrie::bitmap_absent(
            self.sect(Section::V4Bitmap),
            self.layout.v4_bitmap_bits,
            addr,
        ) || self.v4_filter().lone_block_absent(addr)
    }

    /// The byte [`Index::ipv4_absent`] reads first for `a`. Reading the bytes of a batch of
    /// keys in a tight loop (`std::hint::black_box(*byte)`) overlaps their cache misses; a
    /// check one key at a time waits for each miss in turn.
    #[inline]
    pub fn ipv4_probe_byte(&self, a: std::net::Ipv4Addr) -> Option<&u8> {
        iptrie::bitmap_byte(
            self.sect(Section::V4Bitmap),
            self.layout.v4_bitmap_bits,
            u32::from(a),
        )
    }

    /// The byte of the string table's filter that [`Index::domain_absent`] reads first for
    /// `normalized`, and decides on for most names that are absent (see
    /// [`Index::ipv4_probe_byte`]).
    #[inline]
    pub fn domain_probe_byte(&self, normalized: &str) -> Option<&u8> {
        self.domain_filter().filter_byte(domain_hash(normalized))
    }

    /// The string table's filter, directory and entries, for a loop of domain probes that
    /// should not find the sections anew for every name (see [`DomainFilter`]).
    #[inline]
    pub(crate) fn domain_filter(&self) -> DomainFilter<'_> {
        DomainFilter {
            table: self.strtable(),
            raw_normalizable: self.layout.flags & format::FLAG_RAW_DOMAIN_NORMALIZABLE != 0,
        }
    }

    /// Whether the string table's filter proves that no domain indicator equals `normalized` (a
    /// name as [`normalize_domain`](crate::indicator::normalize_domain) returns it; `false` means "look it up"). With `raw_too`,
    /// also that no raw `DomainName` string can equal it, so the KQL-exact join finds nothing
    /// either. Exact names only: says nothing about label suffixes.
    #[inline]
    pub fn domain_absent(&self, normalized: &str, raw_too: bool) -> bool {
        self.domain_filter()
            .absent(domain_hash(normalized), raw_too)
    }

    /// Calls `f` with the id of every record whose address or CIDR contains `addr` (innermost
    /// prefix first). IPv4-mapped IPv6 addresses are looked up as IPv4. A record with several
    /// matching keys is visited once per key. Allocation-free: the hunt's hot path.
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index, or whatever `f` returns.
    #[inline]
    pub fn visit_ip(&self, addr: IpAddr, f: impl FnMut(u32) -> Result<()>) -> Result<()> {
        // Most lookups are IPv4 misses that one bit answers: only that test is inlined into
        // the caller's loop, whatever else the compiler decides to inline.
        let addr = canonical(addr);
        if let IpAddr::V4(a) = addr {
            if self.v4_bitmap_absent(u32::from(a)) {
                return Ok(());
            }
        }
        self.visit_ip_rest(addr, f)
    }

    /// [`Index::visit_ip`] of a canonical address past the IPv4 bitmap test.
    #[inline(never)]
    fn visit_ip_rest(&self, addr: IpAddr, mut f: impl FnMut(u32) -> Result<()>) -> Result<()> {
        let (fam, key, width) = match addr {
            IpAddr::V4(a) => (self.v4(), u128::from(u32::from(a)), 4),
            IpAddr::V6(a) => (self.v6(), u128::from(a), 16),
        };
        let value = if width == 4 {
            fam.find_v4(key as u32)?
        } else {
            fam.find_v6(key)?
        };
        if value == iptrie::EMPTY {
            // A lone address is, by construction, outside every prefix interval.
            for i in fam.find_lone(key, width)? {
                f(self.checked(fam.lone_id(i)?)?)?;
            }
            return Ok(());
        }
        let nodes = self.sect(Section::Nodes);
        let postings = self.sect(Section::Postings);
        iptrie::visit(value, nodes, postings, self.at(Section::Nodes), &mut |id| {
            f(self.checked(id)?)
        })
    }

    /// Every record whose address or CIDR contains `addr`, each once.
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index.
    pub fn lookup_ip(&self, addr: IpAddr) -> Result<Vec<Record<'_>>> {
        let mut ids = Vec::new();
        self.visit_ip(addr, |id| {
            ids.push(id);
            Ok(())
        })?;
        self.materialize(ids)
    }

    fn materialize(&self, mut ids: Vec<u32>) -> Result<Vec<Record<'_>>> {
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|id| self.record(id)).collect()
    }

    /// Calls `f` with every record id stored under an exact string key of `kind`. The key must
    /// already be normalized (see [`crate::indicator`]).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index, or whatever `f` returns.
    #[inline]
    pub fn visit_key(
        &self,
        kind: Kind,
        key: &str,
        mut f: impl FnMut(u32) -> Result<()>,
    ) -> Result<()> {
        for id in self.strtable().get(kind.tag(), key.as_bytes())?.iter() {
            f(self.checked(id)?)?;
        }
        Ok(())
    }

    /// Calls `f` with every domain record matching `name`: the name is lowercased and a trailing
    /// dot dropped; with `suffix`, every label suffix is tried too (`a.b.evil.com` matches
    /// `evil.com` and `b.evil.com`, never `notevil.com`). Allocation-free for ASCII names.
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index, or whatever `f` returns.
    #[inline]
    pub fn visit_domain(
        &self,
        name: &str,
        suffix: bool,
        mut f: impl FnMut(u32) -> Result<()>,
    ) -> Result<()> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Ok(());
        }
        let owned;
        let key: &[u8] = if lower_ascii(name.as_bytes()) {
            // Already lowercase ASCII, as names in logs nearly always are: no copy.
            name.as_bytes()
        } else {
            owned = name.to_lowercase();
            owned.as_bytes()
        };
        let table = self.strtable();
        let tag = Kind::Domain.tag();
        let mut start = 0;
        loop {
            for id in table.get(tag, &key[start..])?.iter() {
                f(self.checked(id)?)?;
            }
            if !suffix {
                return Ok(());
            }
            match memchr::memchr(b'.', &key[start..]) {
                Some(dot) => start += dot + 1,
                None => return Ok(()),
            }
        }
    }

    /// [`Index::visit_ip`] for many addresses: calls `f(i, id)` for every record containing
    /// `addrs[i]`, in order of `i`. The same answers. The IPv4 bitmap bytes of a group of
    /// addresses are read back to back before any address is decided, so that their cache
    /// misses overlap instead of queuing. That pays when the bitmap is mostly out of cache,
    /// as in a hunt, where log bytes stream through the cache between lookups. In a tight
    /// loop of lookups and nothing else, the bitmap stays cached, and one [`Index::visit_ip`]
    /// per address is faster: the `index` bench measured 92-107 M/s for single calls and
    /// 55-61 M/s batched.
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index, or whatever `f` returns.
    pub fn visit_ips(
        &self,
        addrs: &[IpAddr],
        mut f: impl FnMut(usize, u32) -> Result<()>,
    ) -> Result<()> {
        for (g, group) in addrs.chunks(PROBE_GROUP).enumerate() {
            let mut bytes: [Option<&u8>; PROBE_GROUP] = [None; PROBE_GROUP];
            for (b, a) in bytes.iter_mut().zip(group) {
                if let IpAddr::V4(a) = canonical(*a) {
                    *b = self.ipv4_probe_byte(a);
                }
            }
            touch(&bytes);
            for (k, &a) in group.iter().enumerate() {
                let i = g * PROBE_GROUP + k;
                self.visit_ip(a, |id| f(i, id))?;
            }
        }
        Ok(())
    }

    /// [`Index::visit_domain`] for many names: calls `f(i, id)` for every domain record
    /// matching `names[i]`, in order of `i`. The same answers, faster for large inputs: the
    /// filter word of every name of a group (and, with `suffix`, of its label suffixes), then
    /// the directory and entries of those it lets through, are read back to back before any
    /// name is decided (see [`Index::visit_ips`]).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index, or whatever `f` returns.
    pub fn visit_domains<N: AsRef<str>>(
        &self,
        names: &[N],
        suffix: bool,
        mut f: impl FnMut(usize, u32) -> Result<()>,
    ) -> Result<()> {
        let table = self.strtable();
        let tag = Kind::Domain.tag();
        // Per group: the lowercased keys in one buffer, and one probe per key (and suffix):
        // (name index in the group, key range in `keys`, hash). A name that is not plain ASCII
        // (or is empty) has no probe and takes the single lookup.
        let mut keys: Vec<u8> = Vec::new();
        let mut probes: Vec<(usize, usize, usize, u64)> = Vec::new();
        let mut plain = [false; PROBE_GROUP];
        let mut bytes: Vec<Option<&u8>> = Vec::new();
        for (g, group) in names.chunks(PROBE_GROUP).enumerate() {
            keys.clear();
            probes.clear();
            for (k, name) in group.iter().enumerate() {
                let name = name.as_ref();
                let name = name.strip_suffix('.').unwrap_or(name);
                plain[k] = !name.is_empty() && name.is_ascii();
                if !plain[k] {
                    continue;
                }
                let at = keys.len();
                keys.extend_from_slice(name.as_bytes());
                keys[at..].make_ascii_lowercase();
                let mut start = at;
                loop {
                    probes.push((k, start, keys.len(), hash(tag, &keys[start..])));
                    match memchr::memchr(b'.', &keys[start..]) {
                        Some(dot) if suffix => start += dot + 1,
                        _ => break,
                    }
                }
            }
            // Rounds of overlapped misses: the filter words; for the probes the filter lets
            // through, the bucket directory, then the buckets' entries.
            bytes.clear();
            bytes.extend(probes.iter().map(|p| table.filter_probe_hashed(p.3)));
            touch(&bytes);
            probes.retain(|p| table.maybe(p.3));
            bytes.clear();
            bytes.extend(probes.iter().map(|p| table.dir_probe_hashed(p.3)));
            touch(&bytes);
            bytes.clear();
            for p in &probes {
                table.entry_bytes_hashed(p.3, |b| bytes.push(b));
            }
            touch(&bytes);
            let mut next = 0;
            for (k, name) in group.iter().enumerate() {
                let i = g * PROBE_GROUP + k;
                if !plain[k] {
                    self.visit_domain(name.as_ref(), suffix, |id| f(i, id))?;
                    continue;
                }
                while let Some(&(_, a, b, h)) = probes.get(next).filter(|p| p.0 == k) {
                    next += 1;
                    for id in table.get_hashed(tag, &keys[a..b], h)?.iter() {
                        f(i, self.checked(id)?)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Domain records matching `name` (see [`Index::visit_domain`]), each once.
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index.
    pub fn lookup_domain(&self, name: &str, suffix: bool) -> Result<Vec<Record<'_>>> {
        let mut ids = Vec::new();
        self.visit_domain(name, suffix, |id| {
            ids.push(id);
            Ok(())
        })?;
        self.materialize(ids)
    }

    fn lookup_normalized(&self, kind: Kind, key: Option<String>) -> Result<Vec<Record<'_>>> {
        let Some(key) = key else {
            return Ok(Vec::new());
        };
        let mut ids = Vec::new();
        self.visit_key(kind, &key, |id| {
            ids.push(id);
            Ok(())
        })?;
        self.materialize(ids)
    }

    /// Records of a file hash (MD5, SHA-1, SHA-256 or SHA-512 by length; any case).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index.
    pub fn lookup_hash(&self, hex: &str) -> Result<Vec<Record<'_>>> {
        match crate::indicator::normalize_hash(hex) {
            Ok((kind, h)) => self.lookup_normalized(kind, Some(h)),
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Records of a URL (scheme and host compared case-insensitively).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index.
    pub fn lookup_url(&self, url: &str) -> Result<Vec<Record<'_>>> {
        self.lookup_normalized(Kind::Url, crate::indicator::normalize_url(url).ok())
    }

    /// Records of an e-mail address (case-insensitive).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index.
    pub fn lookup_email(&self, email: &str) -> Result<Vec<Record<'_>>> {
        self.lookup_normalized(Kind::Email, crate::indicator::normalize_email(email).ok())
    }

    /// Records of a CVE id (case-insensitive).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index.
    pub fn lookup_cve(&self, cve: &str) -> Result<Vec<Record<'_>>> {
        self.lookup_normalized(Kind::Cve, crate::indicator::normalize_cve(cve).ok())
    }

    /// Looks up a value of any kind, inferring the kind as plain lists do: an address (every
    /// containing CIDR too), a hash, a URL, an e-mail, a CVE id, else a domain (with label
    /// suffixes when `suffix`).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index.
    pub fn lookup(&self, value: &str, suffix: bool) -> Result<Vec<Record<'_>>> {
        if let Some(a) = parse_ip_addr(value) {
            return self.lookup_ip(a);
        }
        match crate::indicator::Key::infer(value).map(|k| k.kind()) {
            Ok(Kind::Md5 | Kind::Sha1 | Kind::Sha256 | Kind::Sha512) => self.lookup_hash(value),
            Ok(Kind::Url) => self.lookup_url(value),
            Ok(Kind::Email) => self.lookup_email(value),
            Ok(Kind::Cve) => self.lookup_cve(value),
            Ok(Kind::Cidr4 | Kind::Cidr6) => {
                // A CIDR query: the records whose prefix contains the whole range.
                let Ok(q) = crate::indicator::parse_ip_net(value) else {
                    return Ok(Vec::new());
                };
                let mut v = self.lookup_ip(q.network())?;
                v.retain(|r| {
                    crate::indicator::parse_ip_net(r.value())
                        .is_ok_and(|n| n.prefix_len() <= q.prefix_len() && n.contains(&q.network()))
                });
                Ok(v)
            }
            _ => self.lookup_domain(value, suffix),
        }
    }

    /// KQL-exact join on `NetworkIP`: calls `f` with every record whose raw `NetworkIP` string
    /// equals `s` byte for byte (case-sensitive, untrimmed, empty included).
    ///
    /// Records whose raw string parses as an address are found through the IP structure and
    /// compared by string; the rest (invalid text, CIDR text) sit in a raw-string table; the
    /// index builder puts each record on exactly one of the two paths. The empty string is
    /// answered from a flag in each fixed record: a scan of all records, proportional to the
    /// number of rows such an event joins anyway (callers that see many empty keys should cache
    /// the answer).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index, or whatever `f` returns.
    pub fn visit_kql_network_ip(&self, s: &str, f: impl FnMut(u32) -> Result<()>) -> Result<()> {
        let parsed = parse_ip_addr(s);
        let normalized = |hits: &mut Vec<u32>| -> Result<bool> {
            let Some(a) = parsed else { return Ok(false) };
            self.visit_ip(a, |id| {
                hits.push(id);
                Ok(())
            })?;
            Ok(true)
        };
        // A dotted quad taken as it stands (digits at both ends: no space trimmed, no
        // brackets, no IPv6 form) is the text `std` displays for its address, so it equals the
        // raw string of a record marked KIND_KQL_IP_IS_KEY found through that address.
        let edge = |c: Option<&u8>| c.is_some_and(u8::is_ascii_digit);
        let displayed = matches!(parsed, Some(IpAddr::V4(_)))
            && edge(s.as_bytes().first())
            && edge(s.as_bytes().last())
            && !s.contains(':');
        let known = displayed.then_some((records::KIND_KQL_IP_IS_KEY, true));
        self.kql_join(s, KqlColumn::NetworkIp, normalized, known, f)
    }

    /// KQL-exact join on `DomainName` (see [`Index::visit_kql_network_ip`]).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an inconsistent index, or whatever `f` returns.
    pub fn visit_kql_domain_name(&self, s: &str, f: impl FnMut(u32) -> Result<()>) -> Result<()> {
        let normal = normalize_domain_cow(s).ok();
        // A record marked KIND_KQL_DOMAIN_IS_KEY found through `d` has the raw string `d`.
        let known = normal
            .as_deref()
            .map(|d| (records::KIND_KQL_DOMAIN_IS_KEY, d == s));
        let normalized = |hits: &mut Vec<u32>| -> Result<bool> {
            let Some(d) = &normal else { return Ok(false) };
            self.visit_key(Kind::Domain, d, |id| {
                hits.push(id);
                Ok(())
            })?;
            Ok(true)
        };
        self.kql_join(s, KqlColumn::DomainName, normalized, known, f)
    }

    /// The two paths of a KQL-exact join on raw string `s`: the normalized lookup (`normalized`
    /// collects candidate ids and says whether `s` had a normalized form) filtered by raw-string
    /// equality, then the raw table, which holds only what the first path cannot reach.
    /// `known = Some((bit, equal))`: a candidate whose kind byte has `bit` has a raw string
    /// equal to `s` exactly when `equal`, without reading it (see `records::KIND_KQL_*`).
    fn kql_join(
        &self,
        s: &str,
        col: KqlColumn,
        normalized: impl FnOnce(&mut Vec<u32>) -> Result<bool>,
        known: Option<(u8, bool)>,
        mut f: impl FnMut(u32) -> Result<()>,
    ) -> Result<()> {
        let (empty_flag, raw_flag) = match col {
            KqlColumn::NetworkIp => (records::FLAG_KQL_IP_EMPTY, format::FLAG_RAW_IP_PARSEABLE),
            KqlColumn::DomainName => (
                records::FLAG_KQL_DOMAIN_EMPTY,
                format::FLAG_RAW_DOMAIN_NORMALIZABLE,
            ),
        };
        if s.is_empty() {
            return self.visit_flagged(empty_flag, f);
        }
        if self.kql_absent(col, s) {
            return Ok(());
        }
        let mut hits: Vec<u32> = Vec::new();
        let had_form = normalized(&mut hits)?;
        hits.sort_unstable();
        hits.dedup();
        let records = self.sect(Section::Records);
        for id in hits {
            let equal = match known {
                Some((bit, equal))
                    if records::kind_byte(records, id).is_some_and(|k| k & bit != 0) =>
                {
                    equal
                }
                _ => self.field(id, col.field())? == s,
            };
            if equal {
                f(id)?;
            }
        }
        // A key with a normalized form is in the raw table only when the build said so (a
        // header flag): most indexes spare every event this second probe.
        if had_form && self.layout.flags & raw_flag == 0 {
            return Ok(());
        }
        for id in self.strtable().get(col.tag(), s.as_bytes())?.iter() {
            f(self.checked(id)?)?;
        }
        Ok(())
    }

    fn visit_flagged(&self, flag: u8, mut f: impl FnMut(u32) -> Result<()>) -> Result<()> {
        let recs = self.sect(Section::Records);
        for id in 0..self.layout.records {
            if records::flags(recs, id).is_some_and(|fl| fl & flag != 0) {
                f(id)?;
            }
        }
        Ok(())
    }
}

/// Whether `b` holds no uppercase letter and no byte outside ASCII (eight bytes at a time).
#[inline]
fn lower_ascii(b: &[u8]) -> bool {
    let mut at = 0;
    while at < b.len() {
        let w = crate::swar::word(b, at, 0);
        if (crate::swar::in_range(w, b'A', b'Z') | w & crate::swar::HIGH) != 0 {
            return false;
        }
        at += 8;
    }
    true
}

/// Keys per group of the batch lookups: enough independent memory reads to keep the memory
/// system busy, few enough that their cache lines are still there when the group is decided.
const PROBE_GROUP: usize = 32;

/// The string-table hash of a normalized domain name, for the `*_hashed` domain probes of
/// [`Index`].
#[inline]
pub(crate) fn domain_hash(normalized: &str) -> u64 {
    domain_hash_bytes(normalized.as_bytes())
}

#[inline]
fn domain_hash_bytes(normalized: &[u8]) -> u64 {
    hash(Kind::Domain.tag(), normalized)
}

/// The [`domain_hash`]es of `normalized` and each of its label suffixes (`b.evil.com`,
/// `evil.com`, `com` for `a.b.evil.com`: what [`Index::visit_domain`] with `suffix` looks up),
/// into `out`; their count, or `None` when there are more than `out` holds.
#[inline]
pub(crate) fn domain_suffix_hashes(normalized: &str, out: &mut [u64]) -> Option<usize> {
    let key = normalized.as_bytes();
    let mut start = 0;
    for (n, slot) in out.iter_mut().enumerate() {
        *slot = domain_hash_bytes(&key[start..]);
        match memchr::memchr(b'.', &key[start..]) {
            Some(dot) => start += dot + 1,
            None => return Some(n + 1),
        }
    }
    None
}

/// An address with IPv4-mapped IPv6 folded to IPv4, as the index stores them.
#[inline]
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => canonical_v6(a),
        v4 => v4,
    }
}

/// The IPv4 occupancy bitmap, interval bitmap and lone filter of an index (see
/// [`Index::ipv4_absent`]), for a loop of absence checks that should not find its sections
/// anew for every address.
#[derive(Clone, Copy, Debug)]
pub struct V4Filter<'a> {
    occupancy: &'a [u8],
    intervals: &'a [u8],
    lone: &'a [u8],
    bits: u8,
    raw_parseable: bool,
}

impl<'a> V4Filter<'a> {
    /// The occupancy bitmap byte of `a`: what [`V4Filter::absent`] reads first.
    #[inline]
    pub(crate) fn occupancy_byte(&self, a: std::net::Ipv4Addr) -> Option<&'a u8> {
        iptrie::bitmap_byte(self.occupancy, self.bits, u32::from(a))
    }

    /// [`Index::ipv4_absent`].
    #[inline]
    pub fn absent(&self, a: std::net::Ipv4Addr, raw_too: bool) -> bool {
        self.absent_addr(u32::from(a)) && (!raw_too || !self.raw_parseable)
    }

    /// Whether the bitmaps rule `addr` out: its block is empty, or holds only lone addresses
    /// (no prefix interval) and the lone filter rules `addr` out. Most addresses are decided
    /// by the occupancy bit alone; the block of a lone address holds about 1 in 25 addresses
    /// of a random stream (1M indicators), which the filter rules out but for ~1 %.
    #[inline]
    fn absent_addr(&self, addr: u32) -> bool {
        iptrie::bitmap_absent(self.occupancy, self.bits, addr) || self.lone_block_absent(addr)
    }

    /// For an address in an occupied block: whether the block holds only lone addresses and
    /// the lone filter rules `addr` out.
    #[inline]
    fn lone_block_absent(&self, addr: u32) -> bool {
        self.bits != 0
            && !iptrie::bitmap_has(self.intervals, self.bits, addr)
            && !iptrie::lone_filter_maybe(self.lone, addr)
    }
}

/// The IPv6 interval table and lone addresses of an index (see [`Index::ipv6_absent`]).
#[derive(Clone, Copy)]
pub(crate) struct V6Filter<'a> {
    fam: FamilyView<'a>,
    raw_parseable: bool,
}

impl<'a> V6Filter<'a> {
    /// [`Index::ipv6_absent`].
    #[inline]
    pub(crate) fn absent(&self, a: std::net::Ipv6Addr, raw_too: bool) -> bool {
        if a.to_ipv4_mapped().is_some() {
            return false;
        }
        let key = u128::from(a);
        self.fam.find_v6(key).is_ok_and(|v| v == iptrie::EMPTY)
            && self.fam.find_lone(key, 16).is_ok_and(|r| r.is_empty())
            && (!raw_too || !self.raw_parseable)
    }

    /// [`Index::ipv6_probe_bytes`].
    #[inline]
    pub(crate) fn probe_byte(&self, a: std::net::Ipv6Addr, first: bool) -> Option<&'a u8> {
        if first {
            self.fam.lone_l1_byte(u128::from(a))
        } else {
            self.fam.lone_bucket_byte(u128::from(a), 16)
        }
    }
}

/// The string table of an index as a domain lookup reads it, in the order of its reads: the
/// filter word, then (for a name it lets through) the bucket directory, then the bucket's
/// entries. Names are given by their [`domain_hash`].
#[derive(Clone, Copy)]
pub(crate) struct DomainFilter<'a> {
    table: StrTable<'a>,
    raw_normalizable: bool,
}

impl<'a> DomainFilter<'a> {
    /// The filter byte a lookup reads first ([`Index::domain_probe_byte`]).
    #[inline]
    pub(crate) fn filter_byte(&self, h: u64) -> Option<&'a u8> {
        self.table.filter_probe_hashed(h)
    }

    /// Whether the filter lets the name through (`false`: no domain indicator equals it).
    #[inline]
    pub(crate) fn maybe(&self, h: u64) -> bool {
        self.table.maybe(h)
    }

    /// [`Index::domain_absent`].
    #[inline]
    pub(crate) fn absent(&self, h: u64, raw_too: bool) -> bool {
        !self.maybe(h) && (!raw_too || !self.raw_normalizable)
    }

    /// The directory byte a lookup reads after the filter (before [`DomainFilter::entry_bytes`],
    /// which depends on it): a batch reads these back to back first, so that both rounds of
    /// misses overlap.
    #[inline]
    pub(crate) fn dir_byte(&self, h: u64) -> Option<&'a u8> {
        self.table.dir_probe_hashed(h)
    }

    /// The entry bytes a lookup reads when the filter lets the name through (finding them
    /// reads the directory), passed to `f`.
    #[inline]
    pub(crate) fn entry_bytes(&self, h: u64, f: impl FnMut(Option<&'a u8>)) {
        self.table.entry_bytes_hashed(h, f)
    }
}

/// Reads every byte, in a tight loop and with nothing waiting on the values: the misses
/// overlap. `black_box` keeps the reads from being optimized away. The batch lookups here and
/// the hunt's batched matcher both use it.
#[inline]
pub fn touch(bytes: &[Option<&u8>]) {
    for b in bytes.iter().flatten() {
        std::hint::black_box(**b);
    }
}

/// Asks the CPU to start loading the cache line holding `b` and to go on without waiting
/// (x86-64: `prefetcht0`, through `safe_arch`; elsewhere nothing). A hunt prefetches each
/// key's first lookup byte as soon as the record is read, so that the miss completes while
/// the batch's other records are scanned.
#[inline(always)]
pub fn prefetch(b: &u8) {
    #[cfg(target_arch = "x86_64")]
    safe_arch::prefetch_t0(b);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = b;
}

/// [`prefetch`] of a byte a probe may not have (a section empty in this index).
#[inline(always)]
pub(crate) fn prefetch_opt(b: Option<&u8>) {
    if let Some(b) = b {
        prefetch(b);
    }
}

/// The two raw columns the KQL joins compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KqlColumn {
    /// `NetworkIP`, joined by the network query.
    NetworkIp,
    /// `DomainName`, joined by the DNS query.
    DomainName,
}

impl KqlColumn {
    /// Both columns.
    pub const ALL: [KqlColumn; 2] = [KqlColumn::NetworkIp, KqlColumn::DomainName];

    /// The record field holding the column's raw string.
    fn field(self) -> Field {
        match self {
            KqlColumn::NetworkIp => Field::KqlNetworkIp,
            KqlColumn::DomainName => Field::KqlDomainName,
        }
    }

    /// The string-table tag of the column's raw strings, which also seeds their
    /// [`KqlFilter`] hashes.
    fn tag(self) -> u8 {
        match self {
            KqlColumn::NetworkIp => TAG_RAW_NETWORK_IP,
            KqlColumn::DomainName => TAG_RAW_DOMAIN_NAME,
        }
    }
}

/// The hash of the KQL filter (part of the format, FORMAT.md): every event key of a kql
/// hunt is hashed, so it is built for short keys, whose bytes it reads as at most two
/// possibly overlapping words and mixes with one 64×64→128-bit multiply (a key of up to 16
/// bytes; a longer one takes one multiply per 16 bytes). The string table's [`hash`], a
/// multiply chain per 8 bytes and a three-multiply finalizer, cost a kql hunt about 8 % of
/// its time here; the filter's slot function remixes the result anyway.
#[inline]
pub(crate) fn kql_hash(tag: u8, key: &[u8]) -> u64 {
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    let mum = |a: u64, b: u64| {
        let r = u128::from(a) * u128::from(b);
        r as u64 ^ (r >> 64) as u64
    };
    let n = key.len();
    let seed = u64::from(tag) << 56 ^ n as u64;
    // Little-endian words at `at` (in range by the length tests below).
    let le8 = |at: usize| {
        key.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let le4 = |at: usize| {
        key.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
    };
    let byte = |at: usize| key.get(at).map_or(0, |&c| u64::from(c));
    if n <= 16 {
        let (a, b) = match n {
            8..=16 => (le8(0), le8(n - 8)),
            4..=7 => (le4(0), le4(n - 4)),
            1..=3 => (byte(0) << 16 | byte(n / 2) << 8 | byte(n - 1), 0),
            _ => (0, 0),
        };
        return mum(a ^ P0 ^ seed, b ^ P1);
    }
    let mut h = seed;
    let mut at = 0;
    while at + 16 < n {
        h = mum(le8(at) ^ P0 ^ h, le8(at + 8) ^ P1);
        at += 16;
    }
    mum(le8(n - 16) ^ P0 ^ h, le8(n - 8) ^ P1 ^ seed)
}

/// The `KqlFilter` section: a Bloom filter over every record's raw `NetworkIP` and
/// `DomainName` strings. A KQL-exact join is raw-string equality, so a key the filter rules
/// out joins nothing: one hash of the key's bytes and one read, where the join's own first
/// step parses or normalizes the key.
#[derive(Clone, Copy)]
pub(crate) struct KqlFilter<'a> {
    words: &'a [u8],
}

impl<'a> KqlFilter<'a> {
    /// The hash the filter is probed with for event key `s` of `col` (part of the format; see
    /// [`kql_hash`]).
    #[inline]
    pub(crate) fn hash(col: KqlColumn, s: &str) -> u64 {
        kql_hash(col.tag(), s.as_bytes())
    }

    /// The filter byte a probe of hash `h` reads (for prefetching).
    #[inline]
    pub(crate) fn byte(&self, h: u64) -> Option<&'a u8> {
        strtable::filter_byte(self.words, h)
    }

    /// Whether a key of hash `h` may join (`false`: surely not, unless the key is `""`, which
    /// joins through the record flags and is never probed here).
    #[inline]
    pub(crate) fn maybe(&self, h: u64) -> bool {
        strtable::filter_maybe(self.words, h)
    }
}

/// What [`Index::verify`] walked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifySummary {
    /// Records decoded.
    pub records: u64,
    /// IP intervals checked.
    pub ip_intervals: u64,
    /// String keys checked.
    pub string_keys: u64,
}

/// One indicator record read from an index.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    /// The record's id (its position in the index).
    pub id: u32,
    fixed: Fixed,
    strings: [&'a str; FIELDS],
}

impl<'a> Record<'a> {
    /// A string field.
    pub fn field(&self, f: Field) -> &'a str {
        self.strings[f as usize]
    }

    /// The normalized value of the record's first key.
    pub fn value(&self) -> &'a str {
        self.field(Field::Value)
    }

    /// The kind of the record's first key.
    pub fn kind(&self) -> Kind {
        self.fixed.kind
    }

    /// Confidence (`ConfidenceScore`, a real; STIX 0-100).
    pub fn confidence(&self) -> Option<f64> {
        if self.fixed.confidence_in_block {
            self.field(Field::Confidence).parse().ok()
        } else {
            self.fixed.confidence
        }
    }

    /// `valid_from`.
    pub fn valid_from(&self) -> Option<Timestamp> {
        self.fixed.valid_from
    }

    /// `ExpirationDateTime` / `valid_until` (`None` = null).
    pub fn expiration(&self) -> Option<Timestamp> {
        self.fixed.expiration
    }

    /// `Active`, when the source had it.
    pub fn active(&self) -> Option<bool> {
        self.fixed.active
    }

    /// Where the record came from.
    pub fn origin(&self) -> Origin {
        self.fixed.origin
    }

    /// The fixed fields.
    pub fn fixed(&self) -> &Fixed {
        &self.fixed
    }
}
