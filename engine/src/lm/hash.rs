// SPDX-License-Identifier: MPL-2.0
//! A fast hasher for the integer and short-string keys of the language model and the beam
//! search. The standard SipHash is built to resist chosen keys at a cost several times
//! this one's, and the decoder hashes millions of keys per minute of audio. Each map still
//! gets a random seed, so a crafted ARPA file cannot aim at fixed collisions.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

/// 2^64 / golden ratio: an odd constant with well-spread bits.
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The high and low halves of the 128-bit product xor-ed: every input bit reaches most
/// output bits in one multiplication.
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Hashes the words written to it 8 bytes at a time with one multiplication each.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastHasher {
    state: u64,
}

impl FastHasher {
    /// A hasher with a fixed seed, for hashes that must agree between processes (names and
    /// checksums of files), never for maps of keys read from files.
    pub(crate) fn with_seed(seed: u64) -> Self {
        Self { state: seed }
    }

    #[inline]
    fn add(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, MULTIPLIER);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

/// Makes [`FastHasher`]s that start from this map's random seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        // RandomState's keys are random per process and per map.
        Self {
            seed: RandomState::new().hash_one(0u64),
        }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { state: self.seed }
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, FastState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_apart() {
        let state = FastState::default();
        assert_eq!(state.hash_one("cat"), state.hash_one(String::from("cat")));
        assert_ne!(state.hash_one("a"), state.hash_one("a\0"));
        assert_ne!(
            state.hash_one([1u32, 2].as_slice()),
            state.hash_one([2u32, 1].as_slice())
        );
        let mut map: FastMap<Box<[u32]>, u32> = FastMap::default();
        for i in 0..1000u32 {
            map.insert(vec![i, i / 7].into_boxed_slice(), i);
        }
        assert!((0..1000u32).all(|i| map.get([i, i / 7].as_slice()) == Some(&i)));
    }
}
