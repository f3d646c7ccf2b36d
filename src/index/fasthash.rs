//! A fast, non-cryptographic hasher for the builder's in-memory maps (interning, grouping).
//!
//! SipHash, std's default, costs a tenth of compile time on a million indicators. The keys
//! here come from the feeds being compiled, and a hostile feed could at worst slow its own
//! compilation down, so flooding resistance buys nothing. The on-disk table uses its own,
//! format-defined hash ([`super::strtable::hash`]).

use std::hash::{BuildHasherDefault, Hasher};

/// FxHash-style word-at-a-time hasher.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rem = chunks.remainder();
        if !rem.is_empty() {
            let mut w = [0u8; 8];
            w[..rem.len()].copy_from_slice(rem);
            self.write_u64(u64::from_le_bytes(w) ^ (rem.len() as u64) << 59);
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(K);
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes its control bits from the top: fold the well-mixed high half down.
        self.0.rotate_left(20)
    }
}

/// `HashMap<K, V, FastBuild>`.
pub type FastBuild = BuildHasherDefault<FastHasher>;
/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastBuild>;
