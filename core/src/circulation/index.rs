//! The precomputed resolution: the table's values interned to small numbers, and one exact-key
//! hash map per wildcard pattern, tried in precedence order.

use super::table::{Match, Rule};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Bits of a row's pattern: which key fields are not `*`.
pub(crate) const GROUP: u8 = 1;
pub(crate) const BRANCH: u8 = 2;
pub(crate) const ITEM_TYPE: u8 = 4;

/// The eight patterns, most specific first: more non-`*` fields, then item type > branch >
/// group. For patterns of the same size, a larger bit value is exactly the higher precedence,
/// so a row's rank is `(pattern.count_ones(), pattern)`.
pub(crate) const PRECEDENCE: [u8; 8] = [7, 6, 5, 3, 4, 2, 1, 0];

/// A row's rank: compare ranks, then rows (the later wins).
pub(crate) fn rank(pattern: u8) -> (u32, u8) {
    (pattern.count_ones(), pattern)
}

/// A small fast hasher (the multiply-rotate of rustc's FxHash) for the index's short keys. The
/// keys come from the library's own rules file, so hash flooding is not a concern.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut last = [0; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last) ^ (rest.len() as u64) << 56);
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Fx = BuildHasherDefault<FxHasher>;

/// A key field's value as a number: 0 is `*`, a value seen in the table is its number from 1.
type Key = [u32; 3];

/// The index: built once when the table is loaded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// Each key field's values, numbered from 1: group, item type, branch.
    values: [HashMap<String, u32, Fx>; 3],
    /// By pattern: the exact key (0 where the pattern has `*`) → the winning row's position
    /// (from 0), the last row with that key.
    patterns: [HashMap<Key, u32, Fx>; 8],
    /// Which patterns have any row, in precedence order.
    used: Vec<u8>,
    /// The last `* * *` row.
    fallback: usize,
}

impl Index {
    /// Indexes `rules`; `fallback` is the position of the last `* * *` row.
    pub(crate) fn build(rules: &[Rule], fallback: usize) -> Index {
        let mut index = Index {
            fallback,
            ..Index::default()
        };
        for (position, rule) in rules.iter().enumerate() {
            let mut key = [0; 3];
            for (field, m) in rule.key().into_iter().enumerate() {
                if let Match::Is(value) = m {
                    let next = u32::try_from(index.values[field].len() + 1).unwrap_or(u32::MAX);
                    key[field] = *index.values[field].entry(value.clone()).or_insert(next);
                }
            }
            let row = u32::try_from(position).unwrap_or(u32::MAX);
            // A later identical key replaces the earlier: the later row wins.
            index.patterns[usize::from(rule.pattern())].insert(key, row);
        }
        index.used = PRECEDENCE
            .into_iter()
            .filter(|&p| !index.patterns[usize::from(p)].is_empty())
            .collect();
        index
    }

    /// The position (from 0) of the row that wins for these values.
    pub(crate) fn resolve(&self, group: &str, item_type: &str, branch: &str) -> usize {
        let g = self.values[0].get(group).copied().unwrap_or(0);
        let i = self.values[1].get(item_type).copied().unwrap_or(0);
        let b = self.values[2].get(branch).copied().unwrap_or(0);
        for &pattern in &self.used {
            let want = |bit: u8, id: u32| pattern & bit == 0 || id != 0;
            if !(want(GROUP, g) && want(ITEM_TYPE, i) && want(BRANCH, b)) {
                // A value the table never names matches only `*`.
                continue;
            }
            let pick = |bit: u8, id: u32| if pattern & bit == 0 { 0 } else { id };
            let key = [pick(GROUP, g), pick(ITEM_TYPE, i), pick(BRANCH, b)];
            if let Some(&row) = self.patterns[usize::from(pattern)].get(&key) {
                return row as usize;
            }
        }
        self.fallback
    }
}
