//! Byte-class bitmasks of 64-byte blocks, a cursor over the selected bytes of a buffer, and
//! the layout check of a sixteen-byte field.
//!
//! The CSV reader finds its delimiters here: one pass computes, per block of 64 bytes, a `u64`
//! with bit `j` set where byte `j` is one of a few delimiters, and the reader walks the set bits
//! (`trailing_zeros`, clear lowest). Searching delimiter by delimiter restarts a search and
//! mispredicts a branch per field; the bit walk does neither. On x86-64 a block is four SSE2
//! compares and `movemask`s per byte class (SSE2 is part of the x86-64 baseline, so no runtime
//! detection); elsewhere the portable SWAR masks of [`crate::swar`] compute the same bits.

/// The bits of the bytes of `block` equal to one of `set`.
#[inline(always)]
pub(crate) fn mask<const N: usize>(block: &[u8; 64], set: [u8; N]) -> u64 {
    let mut m = 0u64;
    for (k, lane) in block.chunks_exact(16).enumerate() {
        m |= u64::from(imp::mask16(lane.try_into().unwrap_or(&[0; 16]), set)) << (16 * k);
    }
    m
}

/// The first byte at or after `from` that is one of `set` (which must not hold 0), sixteen
/// bytes at a time: for the short searches of a JSON string's end, where a bitmask of the
/// whole record would be wasted on the few strings a record has.
#[inline(always)]
pub(crate) fn find_any<const N: usize>(b: &[u8], from: usize, set: [u8; N]) -> Option<usize> {
    let mut i = from;
    while let Some(lane) = b.get(i..i.saturating_add(16)) {
        let m = imp::mask16(lane.try_into().unwrap_or(&[0; 16]), set);
        if m != 0 {
            return Some(i + m.trailing_zeros() as usize);
        }
        i += 16;
    }
    crate::swar::find_any(b, i, set)
}

/// The first byte at or after `from` that is not one of a bare JSON scalar's (an ASCII letter
/// or digit, `-`, `+` or `.`), or `b.len()`: sixteen bytes at a time, then eight (the end of a
/// number or `true` in a JSON log record, which is rarely longer than a lane).
#[inline(always)]
pub(crate) fn scalar_end(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(lane) = b.get(i..i.saturating_add(16)) {
        let other = !imp::scalar16(lane.try_into().unwrap_or(&[0; 16])) & 0xffff;
        if other != 0 {
            return i + other.trailing_zeros() as usize;
        }
        i += 16;
    }
    crate::swar::scalar_end(b, i)
}

/// Whether the sixteen bytes of `lane` are ASCII digits where `digits` has a bit set (bit
/// `j` for byte `j`) and equal the bytes of `layout` elsewhere: a fixed-layout field (a
/// time's `HH:mm:ss.fffffffZ`) checked in one step.
#[inline(always)]
pub(crate) fn lane_layout(lane: &[u8; 16], layout: &[u8; 16], digits: u16) -> bool {
    imp::lane_layout(lane, layout, digits)
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use safe_arch::{
        bitand_m128i, bitandnot_m128i, bitor_m128i, cmp_eq_mask_i8_m128i, cmp_gt_mask_i8_m128i,
        cmp_lt_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i, sub_i8_m128i, zeroed_m128i,
    };

    #[inline(always)]
    pub(super) fn lane_layout(lane: &[u8; 16], layout: &[u8; 16], digits: u16) -> bool {
        let v = load_unaligned_m128i(lane);
        // A digit is a byte that stays at most 9 after subtracting `0` (unsigned).
        let d = sub_i8_m128i(v, set_splat_i8_m128i(b'0' as i8));
        let is_digit = cmp_eq_mask_i8_m128i(min_u8_m128i(d, set_splat_i8_m128i(9)), d);
        let same = cmp_eq_mask_i8_m128i(v, load_unaligned_m128i(layout));
        let bits = |m| move_mask_i8_m128i(m) as u16;
        (bits(is_digit) & digits) | (bits(same) & !digits) == u16::MAX
    }

    #[inline(always)]
    pub(super) fn mask16<const N: usize>(lane: &[u8; 16], set: [u8; N]) -> u32 {
        let v = load_unaligned_m128i(lane);
        let hits = set.iter().fold(zeroed_m128i(), |acc, &c| {
            bitor_m128i(acc, cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(c as i8)))
        });
        u32::from(move_mask_i8_m128i(hits) as u16)
    }

    /// The bits of the lane's bytes that a bare JSON scalar may hold. The compares are
    /// signed, so bytes from 0x80 up (negative) fall in neither range.
    #[inline(always)]
    pub(super) fn scalar16(lane: &[u8; 16]) -> u32 {
        let v = load_unaligned_m128i(lane);
        let splat = |c: u8| set_splat_i8_m128i(c as i8);
        let within = |x, lo: u8, hi: u8| {
            bitand_m128i(
                cmp_gt_mask_i8_m128i(x, splat(lo - 1)),
                cmp_lt_mask_i8_m128i(x, splat(hi + 1)),
            )
        };
        // Setting bit 5 folds `A..=Z` onto `a..=z` (and no other byte onto it).
        let letter = within(bitor_m128i(v, splat(0x20)), b'a', b'z');
        // `+`, `,`, `-`, `.`, `/`, `0..=9`, less the comma and the slash.
        let punct_or_digit = within(v, b'+', b'9');
        let comma_or_slash = bitor_m128i(
            cmp_eq_mask_i8_m128i(v, splat(b',')),
            cmp_eq_mask_i8_m128i(v, splat(b'/')),
        );
        let ok = bitor_m128i(letter, bitandnot_m128i(comma_or_slash, punct_or_digit));
        u32::from(move_mask_i8_m128i(ok) as u16)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use crate::swar::{bits, eq, scalar_bytes};

    #[inline(always)]
    pub(super) fn lane_layout(lane: &[u8; 16], layout: &[u8; 16], digits: u16) -> bool {
        lane.iter().zip(layout).enumerate().all(|(j, (&c, &l))| {
            if digits >> j & 1 == 1 {
                c.is_ascii_digit()
            } else {
                c == l
            }
        })
    }

    #[inline(always)]
    pub(super) fn mask16<const N: usize>(lane: &[u8; 16], set: [u8; N]) -> u32 {
        let mut m = 0u32;
        for (k, w) in lane.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
            let hits = set.iter().fold(0, |acc, &c| acc | eq(w, c));
            m |= bits(hits) << (8 * k);
        }
        m
    }

    /// The bits of the lane's bytes that a bare JSON scalar may hold.
    #[inline(always)]
    pub(super) fn scalar16(lane: &[u8; 16]) -> u32 {
        let mut m = 0u32;
        for (k, w) in lane.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
            m |= bits(scalar_bytes(w)) << (8 * k);
        }
        m
    }
}

/// A small set of bytes fixed at compile time, for a [`Cursor`]: its bytes' broadcasts are
/// then constants of the code, not rebuilt for every block (a fifth of a block's work).
pub(crate) trait ByteSet<const N: usize> {
    /// The bytes (never 0, the padding of the last block).
    const SET: [u8; N];
}

/// The positions of the bytes of a buffer that belong to the set `S`, in order, found one
/// 64-byte block at a time.
pub(crate) struct Cursor<'a, S: ByteSet<N>, const N: usize> {
    b: &'a [u8],
    /// Start of the current block.
    base: usize,
    /// Selected bytes of the current block not yet returned.
    bits: u64,
    set: std::marker::PhantomData<S>,
}

impl<'a, S: ByteSet<N>, const N: usize> Cursor<'a, S, N> {
    /// A cursor returning the positions at or after `from` of the bytes in `S`.
    pub(crate) fn new(b: &'a [u8], from: usize) -> Cursor<'a, S, N> {
        let mut c = Cursor {
            b,
            base: 0,
            bits: 0,
            set: std::marker::PhantomData,
        };
        c.seek(from);
        c
    }

    /// Continues from `from`, before or after the positions returned so far.
    #[inline]
    pub(crate) fn seek(&mut self, from: usize) {
        self.base = from;
        self.load();
    }

    #[inline(always)]
    fn load(&mut self) {
        self.bits = match self.b.get(self.base..self.base.saturating_add(64)) {
            Some(block) => mask(block.try_into().unwrap_or(&[0; 64]), S::SET),
            None => self.tail_bits(),
        };
    }

    /// The bits of the last, short block (zero-padded).
    #[cold]
    #[inline(never)]
    fn tail_bits(&self) -> u64 {
        let mut pad = [0u8; 64];
        let tail = self.b.get(self.base..).unwrap_or_default();
        pad[..tail.len()].copy_from_slice(tail);
        mask(&pad, S::SET)
    }

    /// The next selected position, or `None` at the end of the buffer.
    #[inline(always)]
    pub(crate) fn next_pos(&mut self) -> Option<usize> {
        while self.bits == 0 {
            self.base = self.base.saturating_add(64);
            if self.base >= self.b.len() {
                return None;
            }
            self.load();
        }
        let at = self.base + self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Masks, searches and cursor walks against a byte-by-byte definition, on random buffers,
    /// start points and seeks.
    #[test]
    fn masks_and_cursor_match_bytewise() {
        let mut rng = crate::gen::Rng::new(0xb10c_0001);
        let alphabet = b"ab,\n\"\r\x00\xff\x80 ";
        struct Set;
        impl ByteSet<3> for Set {
            const SET: [u8; 3] = [b',', b'\n', b'"'];
        }
        let set = Set::SET;
        for _ in 0..3000 {
            let b = crate::logs::testing::random_bytes(&mut rng, alphabet, 300);
            let expect = |from: usize| -> Vec<usize> {
                (from..b.len()).filter(|&i| set.contains(&b[i])).collect()
            };
            if let Some(block) = b.get(..64) {
                let block: &[u8; 64] = block.try_into().unwrap();
                let want = (0..64)
                    .filter(|&i| set.contains(&block[i]))
                    .fold(0u64, |m, i| m | 1 << i);
                assert_eq!(mask(block, set), want);
            }
            let from = rng.below(b.len() as u64 + 3) as usize;
            assert_eq!(find_any(&b, from, set), expect(from).first().copied());
            let mut c = Cursor::<Set, 3>::new(&b, from);
            let mut got = Vec::new();
            while let Some(p) = c.next_pos() {
                got.push(p);
            }
            assert_eq!(got, expect(from), "{b:?} from {from}");
            // Seek from a returned position, forward or back: the rest is what lies past the
            // seek.
            let mut c = Cursor::<Set, 3>::new(&b, 0);
            for _ in 0..rng.below(5) {
                c.next_pos();
            }
            let to = rng.below(b.len() as u64 + 3) as usize;
            c.seek(to);
            let mut got = Vec::new();
            while let Some(p) = c.next_pos() {
                got.push(p);
            }
            assert_eq!(got, expect(to), "{b:?} seek {to}");
        }
    }

    /// [`lane_layout`] against a byte-by-byte definition: random lanes of digits, the bytes
    /// around them (`/`, `:`) and bytes from 0x80 up, random digit masks and layouts.
    #[test]
    fn lane_layout_matches_bytewise() {
        let mut rng = crate::gen::Rng::new(0xb10c_0002);
        let alphabet = b"0189/:.Z\x00\x7f\x80\xb0\xff";
        let (mut yes, mut no) = (0, 0);
        for _ in 0..200_000 {
            let digits = rng.below(1 << 16) as u16;
            let mut layout = [0u8; 16];
            let mut lane = [0u8; 16];
            for j in 0..16 {
                layout[j] = alphabet[rng.below(alphabet.len() as u64) as usize];
                // Mostly a byte that passes, so that every position gets to decide.
                lane[j] = match (rng.below(16), digits >> j & 1 == 1) {
                    (0, _) => alphabet[rng.below(alphabet.len() as u64) as usize],
                    (_, true) => b'0' + rng.below(10) as u8,
                    (_, false) => layout[j],
                };
            }
            let want = (0..16).all(|j| {
                if digits >> j & 1 == 1 {
                    lane[j].is_ascii_digit()
                } else {
                    lane[j] == layout[j]
                }
            });
            assert_eq!(
                lane_layout(&lane, &layout, digits),
                want,
                "{lane:?} {layout:?} {digits:x}"
            );
            if want {
                yes += 1;
            } else {
                no += 1;
            }
        }
        assert!(yes > 10_000 && no > 10_000, "{yes} {no}");
    }
}
