// SPDX-License-Identifier: MPL-2.0
//! The n-grams of one order, keyed by their word ids.

use super::{Entry, FastMap, WordId};

/// The n-grams of one order. A key whose ids fit together in 64 bits is stored as that one
/// integer (every key of a 3-gram model with fewer than 2^21 words): no allocation per
/// n-gram, and one multiplication to hash it. Other keys keep their list of ids.
#[derive(Debug, Default)]
pub(super) struct NgramTable {
    packed: FastMap<u64, Entry>,
    wide: FastMap<Box<[WordId]>, Entry>,
}

impl NgramTable {
    /// A table with room for `capacity` n-grams.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self {
            packed: FastMap::with_capacity_and_hasher(capacity, Default::default()),
            wide: FastMap::default(),
        }
    }

    /// The ids of `key` (1 or more) in one integer, if each fits in its share of 64 bits;
    /// the same length always gets the same shares, so the packing is one-to-one.
    fn pack(key: &[WordId]) -> Option<u64> {
        let bits = 64 / u32::try_from(key.len()).ok()?.max(1);
        if bits >= 64 {
            return key.first().map(|&id| u64::from(id));
        }
        let mut packed = 0u64;
        for &id in key {
            let id = u64::from(id);
            if id >> bits != 0 {
                return None;
            }
            packed = (packed << bits) | id;
        }
        Some(packed)
    }

    /// The entry of `key`.
    #[inline]
    pub(super) fn get(&self, key: &[WordId]) -> Option<&Entry> {
        match Self::pack(key) {
            Some(packed) => self.packed.get(&packed),
            None => self.wide.get(key),
        }
    }

    /// Sets the entry of `key` (a repeated key keeps the last one, as a map does).
    pub(super) fn insert(&mut self, key: &[WordId], entry: Entry) {
        match Self::pack(key) {
            Some(packed) => {
                self.packed.insert(packed, entry);
            }
            None => {
                self.wide.insert(key.into(), entry);
            }
        }
    }

    /// The n-grams stored as one integer (see [`Self::pack`]).
    pub(super) fn packed(&self) -> &FastMap<u64, Entry> {
        &self.packed
    }

    /// The n-grams stored as lists of ids.
    pub(super) fn wide(&self) -> &FastMap<Box<[WordId]>, Entry> {
        &self.wide
    }

    /// Sets the entry of a key already packed (one read back from [`Self::packed`]).
    pub(super) fn insert_packed(&mut self, packed: u64, entry: Entry) {
        self.packed.insert(packed, entry);
    }

    /// Distinct n-grams stored.
    pub(super) fn len(&self) -> usize {
        self.packed.len() + self.wide.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_and_wide_keys_are_distinct_and_found() {
        let entry = |x: f32| Entry {
            logprob: x,
            backoff: 0.0,
        };
        let mut bigrams = NgramTable::default();
        bigrams.insert(&[1, 2], entry(1.0));
        bigrams.insert(&[2, 1], entry(2.0));
        bigrams.insert(&[u32::MAX, 1], entry(3.0));
        bigrams.insert(&[1, 2], entry(4.0));
        assert_eq!(bigrams.len(), 3);
        assert_eq!(bigrams.get(&[1, 2]).unwrap().logprob, 4.0);
        assert_eq!(bigrams.get(&[2, 1]).unwrap().logprob, 2.0);
        assert_eq!(bigrams.get(&[u32::MAX, 1]).unwrap().logprob, 3.0);
        let mut trigrams = NgramTable::default();
        // 1 << 21 does not fit a third of 64 bits: stored wide, next to a packed key.
        trigrams.insert(&[1 << 21, 0, 0], entry(5.0));
        trigrams.insert(&[1, 0, 0], entry(6.0));
        assert_eq!(trigrams.get(&[1 << 21, 0, 0]).unwrap().logprob, 5.0);
        assert_eq!(trigrams.get(&[1, 0, 0]).unwrap().logprob, 6.0);
        assert!(trigrams.get(&[0, 0, 1]).is_none());
        assert_eq!(trigrams.len(), 2);
    }
}
