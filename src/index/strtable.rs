//! The string-key table: one open-addressing hash table for every kind looked up by exact
//! string (domains, URLs, e-mails, hashes, CVE ids, and the raw KQL keys no normalized lookup
//! reaches). A key is a one-byte tag (its kind) plus bytes.
//!
//! Slots are `u64`: the hash's high 32 bits beside the entry's offset, so a probe touches an
//! entry (and its key bytes) only when 32 bits of hash already agree. Slot positions use
//! multiply-shift reduction, so the table needs no power-of-two size and sits at a load factor
//! of about 0.6; linear probing keeps a miss within one or two cache lines.

use super::fasthash::FastMap;
use super::format::{put_varint, u64_at, varint_at};
use crate::error::{Error, Result};

/// Key tags. Kind tags (see [`crate::indicator::Kind`]) are below 0x20.
pub const TAG_RAW_NETWORK_IP: u8 = 0x20;
/// Raw `DomainName` strings not reachable through a normalized domain lookup.
pub const TAG_RAW_DOMAIN_NAME: u8 = 0x21;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The table's hash: deterministic across builds and platforms (it is part of the format).
pub fn hash(tag: u8, key: &[u8]) -> u64 {
    let mut h = (u64::from(tag) << 56 ^ key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut w = [0u8; 8];
        w[..rem.len()].copy_from_slice(rem);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    // murmur3's finalizer: every input bit reaches the high half used for slots and tags.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn slot_of(h: u64, n: usize) -> usize {
    ((u128::from(h) * n as u128) >> 64) as usize
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

    /// Serializes to `(slots, entries)`; entries are in `(tag, key)` order so that the output
    /// is deterministic.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the entries exceed 4 GiB.
    pub fn finish(self) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut keys: Vec<_> = self.map.into_iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let n = (keys.len() * 5 / 3).max(1);
        let mut slots = vec![0u64; n];
        let mut entries = Vec::new();
        for (tagged, ids) in keys {
            let (tag, key) = (tagged[0], &tagged[1..]);
            let off = entries.len();
            if off >= u32::MAX as usize - 1 {
                return Err(Error::TooLarge("string-key entries exceed 4 GiB".into()));
            }
            entries.push(tag);
            put_varint(&mut entries, key.len() as u64);
            entries.extend_from_slice(key);
            put_varint(&mut entries, ids.len() as u64);
            for id in ids {
                entries.extend_from_slice(&id.to_le_bytes());
            }
            let h = hash(tag, key);
            let mut i = slot_of(h, n);
            while slots[i] != 0 {
                i = if i + 1 == n { 0 } else { i + 1 };
            }
            // The slot position comes from the hash's high bits; the stored tag from its low
            // bits, so that neighbouring keys do not share tags.
            slots[i] = (h << 32) | (off as u64 + 1);
        }
        let mut out = Vec::with_capacity(n * 8);
        for s in slots {
            out.extend_from_slice(&s.to_le_bytes());
        }
        Ok((out, entries))
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
    /// Slot bytes; non-empty and a multiple of 8 (checked by `Layout::parse`).
    pub slots: &'a [u8],
    /// Entry bytes.
    pub entries: &'a [u8],
    /// Byte offset of `entries` in the file, for error messages.
    pub entries_at: usize,
    /// Byte offset of `slots` in the file, for error messages.
    pub slots_at: usize,
}

impl<'a> StrTable<'a> {
    /// Looks up a key.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when a slot points outside the entries or an entry is malformed.
    pub fn get(&self, tag: u8, key: &[u8]) -> Result<Ids<'a>> {
        self.get_hashed(tag, key, hash(tag, key))
    }

    /// [`StrTable::get`] with the key's [`hash`] computed by the caller.
    ///
    /// # Errors
    /// As [`StrTable::get`].
    #[inline]
    pub fn get_hashed(&self, tag: u8, key: &[u8], h: u64) -> Result<Ids<'a>> {
        let n = self.slots.len() / 8;
        let want = h & 0xffff_ffff;
        let mut i = slot_of(h, n);
        // At most n probes: a hostile table may have no empty slot.
        for _ in 0..n {
            let s = u64_at(self.slots, i * 8).unwrap_or(0);
            if s == 0 {
                return Ok(Ids::EMPTY);
            }
            if s >> 32 == want {
                let off = ((s & 0xffff_ffff) as usize).checked_sub(1).ok_or_else(|| {
                    Error::corrupt(self.slots_at + i * 8, "string-key slot with a null entry")
                })?;
                if let Some(ids) = self.entry_if(off, tag, key)? {
                    return Ok(ids);
                }
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        Ok(Ids::EMPTY)
    }

    /// The first byte of the first slot `(tag, key)` probes.
    #[inline]
    pub fn first_slot(&self, tag: u8, key: &[u8]) -> Option<&'a u8> {
        self.first_slot_hashed(hash(tag, key))
    }

    /// The first byte of the first slot probed for a key of hash `h`.
    #[inline]
    pub fn first_slot_hashed(&self, h: u64) -> Option<&'a u8> {
        let n = self.slots.len() / 8;
        (n > 0).then(|| self.slots.get(slot_of(h, n) * 8)).flatten()
    }

    /// The first byte of the entry the first slot with a matching hash tag points to, for a
    /// key of hash `h` (within 8 probes): what a lookup reads next after the slots.
    #[inline]
    pub fn entry_byte_hashed(&self, h: u64) -> Option<&'a u8> {
        let n = self.slots.len() / 8;
        if n == 0 {
            return None;
        }
        let want = h & 0xffff_ffff;
        let mut i = slot_of(h, n);
        for _ in 0..8.min(n) {
            let s = u64_at(self.slots, i * 8)?;
            if s == 0 {
                return None;
            }
            if s >> 32 == want {
                return self
                    .entries
                    .get(((s & 0xffff_ffff) as usize).checked_sub(1)?);
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        None
    }

    /// Whether the slots alone prove that `(tag, key)` is absent: the probe sequence reaches an
    /// empty slot before any slot whose hash tag matches (within 8 probes). `false` = maybe.
    /// Reads only the slot array, no entry: the batched pre-probe of the hunt.
    #[inline]
    pub fn surely_absent(&self, tag: u8, key: &[u8]) -> bool {
        let n = self.slots.len() / 8;
        if n == 0 {
            return true;
        }
        let h = hash(tag, key);
        let want = h & 0xffff_ffff;
        let mut i = slot_of(h, n);
        for _ in 0..8.min(n) {
            match u64_at(self.slots, i * 8) {
                Some(0) => return true,
                Some(s) if s >> 32 != want => {}
                _ => return false,
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        false
    }

    fn entry_if(&self, off: usize, tag: u8, key: &[u8]) -> Result<Option<Ids<'a>>> {
        let e = self.entry(off)?;
        Ok((e.tag == tag && e.key == key).then_some(e.ids))
    }

    /// Decodes the entry at `off`.
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
    /// # Errors
    /// [`Error::Corrupt`] at the first malformed entry.
    pub fn for_each(&self, mut f: impl FnMut(u8, &'a [u8], Ids<'a>) -> Result<()>) -> Result<()> {
        let mut off = 0;
        let mut starts: Vec<(usize, u64)> = Vec::new();
        while off < self.entries.len() {
            let Entry { tag, key, ids, end } = self.entry(off)?;
            f(tag, key, ids)?;
            starts.push((off, hash(tag, key) & 0xffff_ffff));
            off = end;
        }
        // Every slot must point at the start of an entry whose key hashes to the slot's tag, and
        // every entry must be reachable from exactly one slot.
        let mut reached = vec![false; starts.len()];
        for i in 0..self.slots.len() / 8 {
            let s = u64_at(self.slots, i * 8).unwrap_or(0);
            if s == 0 {
                continue;
            }
            let bad = |what: &str| Error::corrupt(self.slots_at + i * 8, what.to_string());
            let off = ((s & 0xffff_ffff) as usize)
                .checked_sub(1)
                .ok_or_else(|| bad("null entry"))?;
            let k = starts
                .binary_search_by_key(&off, |e| e.0)
                .map_err(|_| bad("string-key slot does not point at an entry"))?;
            if std::mem::replace(&mut reached[k], true) {
                return Err(bad("two slots point at one entry"));
            }
            if starts[k].1 != s >> 32 {
                return Err(bad("string-key slot tag disagrees with its key's hash"));
            }
        }
        if reached.iter().any(|r| !r) {
            return Err(Error::corrupt(
                self.slots_at,
                "a string-key entry has no slot",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_misses() {
        let mut b = StrTableBuilder::default();
        for i in 0..1000u32 {
            b.add(5, format!("d{i}.example").as_bytes(), i);
        }
        b.add(5, b"d7.example", 5000);
        b.add(6, b"d7.example", 6000);
        let (slots, entries) = b.finish().unwrap();
        let t = StrTable {
            slots: &slots,
            entries: &entries,
            entries_at: 0,
            slots_at: 0,
        };
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
            assert!(t
                .get(5, format!("x{i}.example").as_bytes())
                .unwrap()
                .is_empty());
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
    fn full_table_terminates() {
        // Every slot occupied with a matching hash tag but pointing at garbage: no hang, no panic.
        let slots: Vec<u8> = std::iter::repeat_n(u64::MAX.to_le_bytes(), 16)
            .flatten()
            .collect();
        let t = StrTable {
            slots: &slots,
            entries: &[1, 2, 3],
            entries_at: 0,
            slots_at: 0,
        };
        assert!(t.get(5, b"x").is_err() || t.get(5, b"x").unwrap().is_empty());
    }
}
