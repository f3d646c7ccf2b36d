//! The string-key table: one bucketed hash table for every kind looked up by exact string
//! (domains, URLs, e-mails, hashes, CVE ids, and the raw KQL keys no normalized lookup
//! reaches). A key is a one-byte tag (its kind) plus bytes.
//!
//! Keys are grouped into about `keys / 4` buckets by their hash's high bits (multiply-shift
//! reduction), and the entries are stored bucket by bucket. A directory gives each bucket's
//! first entry offset: 4 bytes per bucket, 1 per key.
//!
//! In front of it, a blocked Bloom filter answers most misses with one read: three bits of one
//! 64-bit word per key, 12 to 24 bits per key in all. A key it lets through is nearly always
//! present, so a lookup then reads the directory and walks the bucket's (about four) entries.
//! Filter and directory together take 2.5-4 bytes per key and stay in cache where larger
//! structures did not: format version 4 kept 16-bit fingerprints and key indices beside the
//! offsets (4 bytes per key for the directory alone), version 1 open-addressing slots (13).

use super::fasthash::FastMap;
use super::format::{put_varint, u32_at, varint_at};
use crate::error::{Error, Result};

/// Key tags. Kind tags (see [`crate::indicator::Kind`]) are below 0x20.
pub const TAG_RAW_NETWORK_IP: u8 = 0x20;
/// Raw `DomainName` strings not reachable through a normalized domain lookup.
pub const TAG_RAW_DOMAIN_NAME: u8 = 0x21;

/// Keys per bucket the writer aims at.
const KEYS_PER_BUCKET: usize = 4;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The table's hash: deterministic across builds and platforms (it is part of the format).
///
/// The key is read as little-endian 64-bit words, the last one zero-filled. That tail word is
/// loaded from the key's last eight bytes and shifted (see [`crate::swar::word`]): copying
/// the tail into a zeroed buffer first made the load wait on the byte stores, a quarter of a
/// single domain lookup's time.
#[inline]
pub fn hash(tag: u8, key: &[u8]) -> u64 {
    let mut h = (u64::from(tag) << 56 ^ key.len() as u64).wrapping_mul(K);
    let mut at = 0;
    while at < key.len() {
        h = (h ^ crate::swar::word(key, at, 0))
            .wrapping_mul(K)
            .rotate_left(29);
        at += 8;
    }
    // murmur3's finalizer: every input bit reaches the high half used for buckets.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The bucket of hash `h` among `n` (multiply-shift: the hash's high bits).
fn bucket_of(h: u64, n: usize) -> usize {
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// Byte length of the `StrSlots` section (the directory) for `buckets` buckets: `buckets + 1`
/// `u32` entry offsets, padded to a multiple of 8. `None` on overflow.
pub fn slots_len(buckets: usize) -> Option<usize> {
    Some(buckets.checked_add(1)?.checked_mul(4)?.checked_add(7)? / 8 * 8)
}

/// The filter word of hash `h` among `words` (a power of two) and the mask of its three bits.
/// The bits come from a remix of `h`, so that they are independent of the bucket (the high
/// bits of `h`).
#[inline]
pub(crate) fn filter_slot(h: u64, words: usize) -> (usize, u64) {
    let g = h.rotate_left(32).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let g = g ^ (g >> 32);
    let word = ((u128::from(g) * words as u128) >> 64) as usize;
    let mask = 1u64 << (g & 63) | 1u64 << ((g >> 6) & 63) | 1u64 << ((g >> 12) & 63);
    (word, mask)
}

/// The number of filter words for `keys` keys: a power of two with 12 to 24 bits per key.
pub fn filter_words(keys: usize) -> usize {
    keys.saturating_mul(12)
        .div_ceil(64)
        .max(1)
        .next_power_of_two()
}

/// A filter of [`filter_words`] words for `hashes` (one per key) with every hash's bits set,
/// as the little-endian bytes of its words. The string table's and the lone IPv4 addresses'
/// filters are both built here.
pub(crate) fn filter_bytes(hashes: impl ExactSizeIterator<Item = u64>) -> Vec<u8> {
    let words = filter_words(hashes.len());
    filter_bytes_sized(hashes, words)
}

/// [`filter_bytes`] with `words` words (any number from 1: [`filter_slot`] reduces by
/// multiply-shift, not by a mask).
pub(crate) fn filter_bytes_sized(hashes: impl Iterator<Item = u64>, words: usize) -> Vec<u8> {
    let mut filter = vec![0u64; words.max(1)];
    for h in hashes {
        let (w, mask) = filter_slot(h, filter.len());
        filter[w] |= mask;
    }
    filter.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Whether a filter (little-endian `u64` words) lets hash `h` through (`false`: no key of it
/// has that hash). An empty filter lets everything through.
#[inline]
pub(crate) fn filter_maybe(filter: &[u8], h: u64) -> bool {
    let words = filter.len() / 8;
    if words == 0 {
        return true;
    }
    let (w, mask) = filter_slot(h, words);
    super::format::u64_at(filter, w * 8).is_none_or(|word| word & mask == mask)
}

/// The first byte of the filter word [`filter_maybe`] reads for hash `h` (for prefetching);
/// `None` for an empty filter.
#[inline]
pub(crate) fn filter_byte(filter: &[u8], h: u64) -> Option<&u8> {
    let words = filter.len() / 8;
    filter.get((words > 0).then(|| filter_slot(h, words).0 * 8)?)
}

/// Whether `len` is a valid `StrFilter` section length: a power of two of 8-byte words.
pub fn filter_len_ok(len: usize) -> bool {
    len % 8 == 0 && (len / 8).is_power_of_two()
}

/// The serialized table (see [`StrTableBuilder::finish`]).
pub struct StrSections {
    /// The `StrSlots` section: the directory.
    pub slots: Vec<u8>,
    /// The `StrFilter` section: the Bloom filter words.
    pub filter: Vec<u8>,
    /// The `StrEntries` section.
    pub entries: Vec<u8>,
    /// Number of buckets (at least 1).
    pub buckets: u32,
    /// Number of keys.
    pub keys: u32,
}

/// Collects `(tag, key) -> record ids` and serializes the two sections.
#[derive(Default)]
pub struct StrTableBuilder {
    /// Keyed by the tag byte followed by the key bytes.
    map: FastMap<Vec<u8>, Vec<u32>>,
    scratch: Vec<u8>,
}

impl StrTableBuilder {
    /// Adds one record id under a key (duplicates within a key are kept: each is a join row).
    pub fn add(&mut self, tag: u8, key: &[u8], rec: u32) {
        self.scratch.clear();
        self.scratch.push(tag);
        self.scratch.extend_from_slice(key);
        match self.map.get_mut(self.scratch.as_slice()) {
            Some(v) => v.push(rec),
            None => {
                self.map.insert(self.scratch.clone(), vec![rec]);
            }
        }
    }

    /// Serializes; entries are in `(bucket, tag, key)` order so that the output is
    /// deterministic.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the entries exceed 4 GiB or the keys 2^32.
    pub fn finish(self) -> Result<StrSections> {
        let too_large = || Error::TooLarge("string-key entries exceed 4 GiB".into());
        let n = self.map.len();
        let buckets = (n / KEYS_PER_BUCKET).max(1);
        let mut keys: Vec<(usize, u64, Vec<u8>, Vec<u32>)> = self
            .map
            .into_iter()
            .map(|(tagged, ids)| {
                let h = hash(tagged[0], &tagged[1..]);
                (bucket_of(h, buckets), h, tagged, ids)
            })
            .collect();
        keys.sort_unstable_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));
        let mut dir = Vec::with_capacity((buckets + 1) * 4 + 4);
        let mut entries = Vec::new();
        let filter = filter_bytes(keys.iter().map(|k| k.1));
        let mut next = 0usize;
        for b in 0..=buckets {
            while let Some(k) = keys.get(next).filter(|k| k.0 < b) {
                let (tag, key) = (k.2[0], &k.2[1..]);
                entries.push(tag);
                put_varint(&mut entries, key.len() as u64);
                entries.extend_from_slice(key);
                put_varint(&mut entries, k.3.len() as u64);
                for id in &k.3 {
                    entries.extend_from_slice(&id.to_le_bytes());
                }
                next += 1;
            }
            let first_entry = u32::try_from(entries.len()).map_err(|_| too_large())?;
            dir.extend_from_slice(&first_entry.to_le_bytes());
        }
        debug_assert_eq!(next, n);
        while dir.len() % 8 != 0 {
            dir.push(0);
        }
        debug_assert_eq!(Some(dir.len()), slots_len(buckets));
        Ok(StrSections {
            slots: dir,
            filter,
            entries,
            buckets: u32::try_from(buckets).map_err(|_| too_large())?,
            keys: u32::try_from(n).map_err(|_| too_large())?,
        })
    }
}

/// The ids of one key: `count` little-endian `u32`s.
#[derive(Clone, Copy, Debug)]
pub struct Ids<'a>(&'a [u8]);

impl<'a> Ids<'a> {
    /// The empty list.
    pub const EMPTY: Ids<'static> = Ids(&[]);

    /// Iterates the ids.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One decoded entry.
struct Entry<'a> {
    tag: u8,
    key: &'a [u8],
    ids: Ids<'a>,
    /// The offset after the entry.
    end: usize,
}

/// A view of the two sections.
#[derive(Clone, Copy)]
pub struct StrTable<'a> {
    /// The directory: per bucket, and one past the last, the `u32` offset of its first entry.
    pub dir: &'a [u8],
    /// Number of keys (the header's count, checked by [`StrTable::for_each`]).
    pub keys: usize,
    /// The Bloom filter: a power of two of little-endian `u64` words (checked at open).
    pub filter: &'a [u8],
    /// Number of buckets (at least 1; checked by `Layout::parse` with the section lengths).
    pub buckets: usize,
    /// Entry bytes.
    pub entries: &'a [u8],
    /// Byte offset of `entries` in the file, for error messages.
    pub entries_at: usize,
    /// Byte offset of `dir` in the file, for error messages.
    pub slots_at: usize,
}

/// One bucket: its entries' byte range `e0..e1`.
#[derive(Clone, Copy)]
struct Bucket {
    e0: usize,
    e1: usize,
}

impl<'a> StrTable<'a> {
    /// Looks up a key.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the directory or an entry is malformed.
    #[inline]
    pub fn get(&self, tag: u8, key: &[u8]) -> Result<Ids<'a>> {
        self.get_hashed(tag, key, hash(tag, key))
    }

    /// The bucket of hash `h`, `None` when the directory is inconsistent.
    #[inline]
    fn bucket(&self, h: u64) -> Option<Bucket> {
        let at = bucket_of(h, self.buckets) * 4;
        let e0 = u32_at(self.dir, at)? as usize;
        let e1 = u32_at(self.dir, at + 4)? as usize;
        (e0 <= e1).then_some(Bucket { e0, e1 })
    }

    fn bad_dir(&self) -> Error {
        Error::corrupt(self.slots_at, "string-key directory entry out of range")
    }

    /// [`StrTable::get`] with the key's [`hash`] computed by the caller.
    ///
    /// # Errors
    /// As [`StrTable::get`].
    #[inline]
    pub fn get_hashed(&self, tag: u8, key: &[u8], h: u64) -> Result<Ids<'a>> {
        if !self.maybe(h) {
            return Ok(Ids::EMPTY);
        }
        let b = self.bucket(h).ok_or_else(|| self.bad_dir())?;
        // The filter has let the key through, so it is nearly always present: walk the
        // bucket's few entries from the directory's offset.
        let mut off = b.e0;
        while off < b.e1 {
            let e = self.entry(off)?;
            if e.tag == tag && crate::swar::same(e.key, key) {
                return Ok(e.ids);
            }
            off = e.end;
        }
        Ok(Ids::EMPTY)
    }

    /// Whether the filter lets a key of hash `h` through (`false`: surely absent). An empty
    /// filter (only in a hand-made view) lets everything through.
    #[inline]
    pub fn maybe(&self, h: u64) -> bool {
        filter_maybe(self.filter, h)
    }

    /// The filter byte a lookup of a key of hash `h` reads first.
    #[inline]
    pub fn filter_probe_hashed(&self, h: u64) -> Option<&'a u8> {
        filter_byte(self.filter, h)
    }

    /// The directory entry of the bucket of hash `h`: what a lookup reads after the filter.
    #[inline]
    pub fn dir_probe_hashed(&self, h: u64) -> Option<&'a u8> {
        self.dir.get(bucket_of(h, self.buckets) * 4)
    }

    /// The entry bytes a lookup of a key of hash `h` reads after the directory, when the
    /// filter lets it through: one byte per 64-byte line of its bucket's entries (at most 4
    /// lines), passed to `f`.
    #[inline]
    pub fn entry_bytes_hashed(&self, h: u64, mut f: impl FnMut(Option<&'a u8>)) {
        let Some(b) = self.bucket(h) else { return };
        let mut at = b.e0;
        for _ in 0..4 {
            if at >= b.e1 {
                break;
            }
            f(self.entries.get(at));
            at = (at | 63) + 1;
        }
    }

    /// Decodes the entry at `off`.
    #[inline]
    fn entry(&self, off: usize) -> Result<Entry<'a>> {
        let bad = || Error::corrupt(self.entries_at + off, "malformed string-key entry");
        let tag = *self.entries.get(off).ok_or_else(bad)?;
        let (klen, kstart) = varint_at(self.entries, off + 1).ok_or_else(bad)?;
        let kend = usize::try_from(klen)
            .ok()
            .and_then(|l| kstart.checked_add(l))
            .ok_or_else(bad)?;
        let key = self.entries.get(kstart..kend).ok_or_else(bad)?;
        let (n, ids_at) = varint_at(self.entries, kend).ok_or_else(bad)?;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(4))
            .and_then(|l| l.checked_add(ids_at))
            .ok_or_else(bad)?;
        let ids = Ids(self.entries.get(ids_at..end).ok_or_else(bad)?);
        Ok(Entry { tag, key, ids, end })
    }

    /// Walks every entry (for `verify` and `inspect`): calls `f(tag, key, ids)`.
    ///
    /// Checks the whole structure on the way: the directory starts at offset 0, never
    /// decreases, and ends at the end of the entries; each bucket's entries lie back to back
    /// from its directory offset to exactly the next bucket's; every key hashes to the bucket
    /// it is stored in and passes the filter; the keys number the header's count.
    ///
    /// # Errors
    /// [`Error::Corrupt`] at the first inconsistency.
    pub fn for_each(&self, mut f: impl FnMut(u8, &'a [u8], Ids<'a>) -> Result<()>) -> Result<()> {
        let dir_at = |b: usize| -> Result<usize> {
            u32_at(self.dir, b * 4)
                .map(|e| e as usize)
                .ok_or_else(|| self.bad_dir())
        };
        let bad = |b: usize, what: &str| Error::corrupt(self.slots_at + b * 4, what.to_string());
        if dir_at(0)? != 0 {
            return Err(bad(0, "string-key directory does not start at 0"));
        }
        let mut off = 0;
        let mut keys = 0usize;
        for b in 0..self.buckets {
            let e1 = dir_at(b + 1)?;
            if e1 < off {
                return Err(bad(b + 1, "string-key directory entry out of order"));
            }
            while off < e1 {
                let Entry { tag, key, ids, end } = self.entry(off)?;
                let h = hash(tag, key);
                if bucket_of(h, self.buckets) != b || end > e1 {
                    return Err(Error::corrupt(
                        self.entries_at + off,
                        "string-key entry in the wrong bucket",
                    ));
                }
                if !self.maybe(h) {
                    return Err(Error::corrupt(
                        self.entries_at + off,
                        "string-key entry missing from the filter",
                    ));
                }
                f(tag, key, ids)?;
                keys += 1;
                off = end;
            }
        }
        if off != self.entries.len() || keys != self.keys {
            return Err(bad(
                self.buckets,
                "string-key directory does not end at the last entry, or the key count differs",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of the keys `{prefix}{i}{suffix}` under `tag`, key `i` holding record `i`.
    fn table(tag: u8, n: u32, prefix: &str, suffix: &str) -> StrSections {
        let mut b = StrTableBuilder::default();
        for i in 0..n {
            b.add(tag, format!("{prefix}{i}{suffix}").as_bytes(), i);
        }
        b.finish().unwrap()
    }

    fn view(s: &StrSections) -> StrTable<'_> {
        StrTable {
            dir: &s.slots,
            keys: s.keys as usize,
            filter: &s.filter,
            buckets: s.buckets as usize,
            entries: &s.entries,
            entries_at: 0,
            slots_at: 0,
        }
    }

    /// The hash is part of the format: [`hash`] must equal its definition, words assembled
    /// byte by byte with the last one zero-filled, for every tail length and both short keys
    /// (no eight bytes to load the tail from) and long ones.
    #[test]
    fn hash_matches_its_byte_by_byte_definition() {
        fn reference(tag: u8, key: &[u8]) -> u64 {
            let mut h = (u64::from(tag) << 56 ^ key.len() as u64).wrapping_mul(K);
            for chunk in key.chunks(8) {
                let w = chunk
                    .iter()
                    .enumerate()
                    .fold(0u64, |w, (i, &b)| w | u64::from(b) << (8 * i));
                h = (h ^ w).wrapping_mul(K).rotate_left(29);
            }
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            h ^ (h >> 33)
        }
        let bytes: Vec<u8> = (0..64u32).map(|i| (i * 37 + 200) as u8).collect();
        for len in 0..=40 {
            for start in [0, 3, 11] {
                let key = &bytes[start..start + len];
                for tag in [0, 3, TAG_RAW_DOMAIN_NAME] {
                    assert_eq!(hash(tag, key), reference(tag, key), "len {len} at {start}");
                }
            }
        }
    }

    #[test]
    fn roundtrip_and_misses() {
        let mut b = StrTableBuilder::default();
        for i in 0..1000u32 {
            b.add(5, format!("d{i}.example").as_bytes(), i);
        }
        b.add(5, b"d7.example", 5000);
        b.add(6, b"d7.example", 6000);
        let s = b.finish().unwrap();
        assert_eq!(s.keys, 1001);
        assert_eq!(Some(s.slots.len()), slots_len(s.buckets as usize));
        let t = view(&s);
        for i in 0..1000u32 {
            let ids: Vec<u32> = t
                .get(5, format!("d{i}.example").as_bytes())
                .unwrap()
                .iter()
                .collect();
            if i == 7 {
                assert_eq!(ids, vec![7, 5000]);
            } else {
                assert_eq!(ids, vec![i]);
            }
            assert!(t.maybe(hash(5, format!("d{i}.example").as_bytes())));
            assert!(t
                .dir_probe_hashed(hash(5, format!("d{i}.example").as_bytes()))
                .is_some());
            let mut touched = 0;
            t.entry_bytes_hashed(hash(5, format!("d{i}.example").as_bytes()), |b| {
                touched += usize::from(b.is_some());
            });
            assert!(touched >= 1);
            let miss = format!("x{i}.example");
            assert!(t.get(5, miss.as_bytes()).unwrap().is_empty());
            assert!(
                t.get(6, format!("d{i}.example").as_bytes())
                    .unwrap()
                    .is_empty()
                    || i == 7
            );
        }
        assert_eq!(
            t.get(6, b"d7.example").unwrap().iter().collect::<Vec<_>>(),
            vec![6000]
        );
        assert!(t.get(6, b"d8.example").unwrap().is_empty());
        let mut n = 0;
        t.for_each(|_, _, ids| {
            n += ids.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1002);
    }

    #[test]
    fn filter_passes_every_key_and_few_others() {
        let s = table(5, 50_000, "n", ".example");
        assert_eq!(s.filter.len() / 8, filter_words(50_000));
        assert!(filter_len_ok(s.filter.len()));
        // 12 to 24 bits per key.
        let bits = s.filter.len() * 8;
        assert!((50_000 * 12..=50_000 * 24).contains(&bits), "{bits} bits");
        let t = view(&s);
        for i in 0..50_000u32 {
            assert!(
                t.maybe(hash(5, format!("n{i}.example").as_bytes())),
                "key {i}"
            );
        }
        // Three bits of a word at 20.97 bits per key: about 0.4 % of absent keys pass.
        let passed = (0..100_000u32)
            .filter(|i| t.maybe(hash(5, format!("m{i}.example").as_bytes())))
            .count();
        assert!(
            passed < 1_500,
            "{passed} of 100000 absent keys passed the filter"
        );
        // A key of another tag is another key.
        let other = (0..10_000u32)
            .filter(|i| t.maybe(hash(6, format!("n{i}.example").as_bytes())))
            .count();
        assert!(other < 150, "{other} of 10000 keys of another tag passed");
        // Whatever passes, the table still answers exactly.
        for i in 0..20_000u32 {
            let miss = format!("m{i}.example");
            assert!(t.get(5, miss.as_bytes()).unwrap().is_empty());
        }
    }

    #[test]
    fn walk_finds_a_key_missing_from_the_filter() {
        let s = table(5, 64, "d", "");
        view(&s).for_each(|_, _, _| Ok(())).unwrap();
        let h = hash(5, b"d3");
        let (w, mask) = filter_slot(h, s.filter.len() / 8);
        let mut filter = s.filter.clone();
        let word = u64::from_le_bytes(filter[w * 8..w * 8 + 8].try_into().unwrap()) & !mask;
        filter[w * 8..w * 8 + 8].copy_from_slice(&word.to_le_bytes());
        let t = StrTable {
            filter: &filter,
            ..view(&s)
        };
        assert!(t.get(5, b"d3").unwrap().is_empty());
        let e = t.for_each(|_, _, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains("missing from the filter"), "{e}");
    }

    #[test]
    fn one_crowded_bucket() {
        // Three keys, so one bucket: each is found by walking it, misses still miss.
        let s = table(5, 3, "k", "");
        assert_eq!(s.buckets, 1);
        let t = view(&s);
        for i in 0..3u32 {
            let ids: Vec<u32> = t
                .get(5, format!("k{i}").as_bytes())
                .unwrap()
                .iter()
                .collect();
            assert_eq!(ids, vec![i]);
        }
        for i in 3..1000u32 {
            assert!(t.get(5, format!("k{i}").as_bytes()).unwrap().is_empty());
        }
        // An empty filter (a hand-made view) lets everything through to the walk.
        let t = StrTable { filter: &[], ..t };
        for i in 3..1000u32 {
            assert!(t.get(5, format!("k{i}").as_bytes()).unwrap().is_empty());
        }
        assert_eq!(t.get(5, b"k1").unwrap().iter().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn empty_table() {
        let s = StrTableBuilder::default().finish().unwrap();
        assert_eq!((s.buckets, s.keys), (1, 0));
        let t = view(&s);
        assert!(t.get(5, b"x").unwrap().is_empty());
        assert!(!t.maybe(hash(5, b"x")));
        assert!(t.dir_probe_hashed(hash(5, b"x")).is_some());
        t.for_each(|_, _, _| Ok(())).unwrap();
    }

    #[test]
    fn corrupt_directory_never_panics() {
        let s = table(5, 100, "d", "");
        let dir_len = (s.buckets as usize + 1) * 4;
        for at in 0..dir_len {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut slots = s.slots.clone();
                slots[at] = v;
                let t = StrTable {
                    dir: &slots,
                    keys: s.keys as usize,
                    filter: &s.filter,
                    buckets: s.buckets as usize,
                    entries: &s.entries,
                    entries_at: 0,
                    slots_at: 0,
                };
                for i in 0..120u32 {
                    let k = format!("d{i}");
                    let _ = t.get(5, k.as_bytes());
                    let _ = t.maybe(hash(5, k.as_bytes()));
                    let _ = t.dir_probe_hashed(hash(5, k.as_bytes()));
                    t.entry_bytes_hashed(hash(5, k.as_bytes()), |_| {});
                }
                if slots != s.slots {
                    assert!(t.for_each(|_, _, _| Ok(())).is_err());
                }
            }
        }
    }
}
