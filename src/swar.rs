//! Eight bytes at a time in a `u64` (SWAR): the byte-class masks shared by the log readers and
//! the address and name checks. A mask has the high bit of each selected byte set.

pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;

/// Bytes of `w` equal to `c` (exact: no false positives, so positions need no recheck).
#[inline(always)]
pub(crate) fn eq(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    !(((x & !HIGH) + !HIGH) | x) & HIGH
}

/// ASCII bytes of `w` in `lo..=hi` (`hi` below 0x7f).
#[inline(always)]
pub(crate) fn in_range(w: u64, lo: u8, hi: u8) -> u64 {
    // For an ASCII byte, `b | 0x80` minus n < 0x80 borrows from no neighbour.
    let ge = |n: u8| ((w | HIGH) - ONES * u64::from(n)) & HIGH;
    ge(lo) & !ge(hi + 1) & !w & HIGH
}

/// A mask as one bit per byte: bit `j` for byte `j` (the partial products are distinct, so
/// nothing carries).
#[inline(always)]
pub(crate) fn bits(m: u64) -> u32 {
    (((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56) as u32
}

/// The eight bytes of `b` from `at` as a little-endian word, bytes past its end read as
/// `fill`. A short tail is taken from `b`'s last eight bytes when it has eight: copying it to
/// a buffer first would stall the load on the stores.
#[inline(always)]
pub(crate) fn word(b: &[u8], at: usize, fill: u8) -> u64 {
    if let Some(w) = b.get(at..at + 8) {
        return u64::from_le_bytes(w.try_into().unwrap_or_default());
    }
    let n = b.len().saturating_sub(at) as u32;
    let fill = (ONES * u64::from(fill)).checked_shl(8 * n).unwrap_or(0);
    match b.get(b.len().wrapping_sub(8)..) {
        Some(last) => {
            let last = u64::from_le_bytes(last.try_into().unwrap_or_default());
            last.checked_shr(8 * (8 - n)).unwrap_or(0) | fill
        }
        None => {
            let mut pad = [0u8; 8];
            let tail = b.get(at..).unwrap_or_default();
            pad[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(pad) | fill
        }
    }
}

/// `a == b`, inline, eight bytes at a time: for short keys (JSON keys, index string keys) a
/// `memcmp` call costs more than the comparison.
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        // Byte by byte: a short tail loaded as a word would wait on the stores padding it.
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    // Whole words, then the last eight bytes (overlapping the previous word).
    let mut at = 0;
    while at + 8 < n {
        if word(a, at, 0) != word(b, at, 0) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8, 0) == word(b, n - 8, 0)
}

/// The first byte at or after `from` that is one of `set` (which must not hold 0).
#[inline(always)]
pub(crate) fn find_any<const N: usize>(b: &[u8], from: usize, set: [u8; N]) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        let w = word(b, i, 0);
        let m = set.iter().fold(0, |m, &c| m | eq(w, c));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    None
}

/// Bytes of `w` that a bare JSON scalar may hold: ASCII letters and digits, `-`, `+`, `.`.
#[inline(always)]
pub(crate) fn scalar_bytes(w: u64) -> u64 {
    in_range(w, b'0', b'9')
        | in_range(w, b'a', b'z')
        | in_range(w, b'A', b'Z')
        | eq(w, b'-')
        | eq(w, b'+')
        | eq(w, b'.')
}

/// The first byte at or after `from` that is not one of a bare JSON scalar's (number, `true`,
/// `false`, `null`): an ASCII letter or digit, `-`, `+` or `.`; `b.len()` if there is none.
#[inline]
pub(crate) fn scalar_end(b: &[u8], mut p: usize) -> usize {
    while p < b.len() {
        // Bytes past the end read as 0, which ends the scalar.
        let other = !scalar_bytes(word(b, p, 0)) & HIGH;
        if other != 0 {
            return (p + (other.trailing_zeros() / 8) as usize).min(b.len());
        }
        p += 8;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every helper against a byte-by-byte definition, on random words and tails.
    #[test]
    fn masks_words_and_search_match_bytewise() {
        let mut rng = crate::gen::Rng::new(0x5a4a_0001);
        let alphabet = b"09az.,\n\"\\\x00\x7f\x80\xff-_A";
        for _ in 0..50_000 {
            let b = crate::logs::testing::random_bytes(&mut rng, alphabet, 20);
            let len = b.len();
            let at = rng.below(len as u64 + 2) as usize;
            let want: Vec<u8> = (0..8).map(|k| *b.get(at + k).unwrap_or(&b'#')).collect();
            let w = word(&b, at, b'#');
            assert_eq!(w.to_le_bytes().to_vec(), want, "{b:?} {at}");
            for (k, &c) in want.iter().enumerate() {
                let bit = |m: u64| m >> (8 * k + 7) & 1 == 1;
                assert_eq!(bit(eq(w, b'.')), c == b'.');
                assert_eq!(bit(in_range(w, b'0', b'9')), c.is_ascii_digit());
                assert_eq!(bits(eq(w, c)) >> k & 1, 1);
            }
            let set = [b',', b'\n', b'"'];
            let naive = b
                .iter()
                .skip(at)
                .position(|c| set.contains(c))
                .map(|p| at + p);
            assert_eq!(find_any(&b, at, set), naive, "{b:?} {at}");
        }
    }

    /// `same` is `==`: equal slices, one differing byte at every position, other lengths.
    #[test]
    fn same_is_slice_equality() {
        let a: Vec<u8> = (0..40u8)
            .map(|i| i.wrapping_mul(29).wrapping_add(3))
            .collect();
        for len in 0..=40 {
            let x = &a[..len];
            assert!(same(x, x.to_vec().as_slice()), "{len}");
            for pos in 0..len {
                let mut y = x.to_vec();
                y[pos] ^= 0x20;
                assert!(!same(x, &y), "{len} {pos}");
            }
            if len > 0 {
                assert!(!same(x, &a[..len - 1]));
            }
            if len < a.len() {
                // The same length, other bytes (a shifted window).
                assert_eq!(same(&a[1..=len], x), a[1..=len] == *x, "{len}");
            }
        }
    }
}
