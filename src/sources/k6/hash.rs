//! The hash of the k6 JSON source's cache keys.

use std::hash::{BuildHasher, Hasher};

use super::scanner::word_at;

/// The hash of the cache's keys (metric name and raw tag set, ~200 bytes a sample): eight
/// bytes a step with a multiply (FxHash's), seeded per source, a final mix for the high bits the
/// table uses. SipHash, the default, costs several times more on keys this long, and the keys
/// come from the user's own k6 run, so flooding it with collisions would only slow that run.
#[derive(Debug, Clone, Copy)]
pub struct KeyHash(u64);

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.0)
    }
}

pub struct KeyHasher(u64);

const HASH_K: u64 = 0xf135_7aea_2e62_a9c5;

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(HASH_K).rotate_left(26);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(word_at(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let h = self.0;
        (h ^ (h >> 29)).wrapping_mul(HASH_K) ^ (h >> 32)
    }
}

impl KeyHash {
    /// A hash seeded with `seed` (a source seeds it at random).
    pub fn new(seed: u64) -> Self {
        KeyHash(seed)
    }
}
