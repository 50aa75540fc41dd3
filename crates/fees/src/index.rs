//! The rule index: rules grouped by which dimensions they specify (a
//! bitmask), the groups in specificity order, one hash map per group keyed
//! by the specified dimensions' values. A lookup interns the request's
//! values once (one map per dimension) and probes the groups in order; the
//! first hit is the most specific rule, because no two rules of a group
//! share a key.

use crate::FeeConfigError;
use crate::rule::{Dimension, FeeRule, FeeSide, rank};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Bits of a dimension value's id inside a group key.
const ID_BITS: u32 = 24;
/// Distinct values one dimension may have across all rules.
pub const DIMENSION_VALUES_MAX: usize = (1 << ID_BITS) - 1;
/// Masks of five dimensions: at most this many groups per side.
const GROUPS_MAX: usize = 32;

/// The multiply-rotate hash of rustc (FxHash). The maps are built once from
/// the configuration and never grow from requests, so a request cannot
/// degrade them by choosing colliding values; a faster hash than SipHash
/// is then safe, and it is most of the lookup's cost.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher {
    hash: u64,
}

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        let remainder = chunks.remainder();
        tail[..remainder.len()].copy_from_slice(remainder);
        self.add(u64::from_le_bytes(tail) ^ ((remainder.len() as u64) << 56));
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_u128(&mut self, value: u128) {
        // Truncation is the point: the two halves are hashed in turn.
        self.add(value as u64);
        self.add((value >> 64) as u64);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply mixes into the high bits; the table indexes by the
        // low ones.
        self.hash.rotate_left(26)
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// The rules of one side that specify exactly the dimensions of `mask`.
#[derive(Debug, Clone)]
struct Group {
    mask: u8,
    rules: FastMap<u128, u32>,
}

/// The request's five dimension values, in [`Dimension::ALL`] order.
pub(crate) type RequestValues<'a> = [Option<&'a str>; 5];

#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// Per dimension: value → id (from 1).
    values: [FastMap<Box<str>, u32>; 5],
    /// Per side: groups, most specific first.
    sides: [Vec<Group>; 2],
}

fn group_key(ids: &[u32; 5], mask: u8) -> u128 {
    let mut key = 0u128;
    for (position, dimension) in Dimension::ALL.into_iter().enumerate() {
        if mask & dimension.bit() != 0 {
            key |= u128::from(ids[position]) << (ID_BITS * position as u32);
        }
    }
    key
}

impl Index {
    /// Indexes `rules`; two rules of one side with the same dimensions are
    /// refused, naming both.
    pub(crate) fn build(rules: &[FeeRule]) -> Result<Index, FeeConfigError> {
        let mut index = Index::default();
        let mut keys: Vec<(usize, u8, u128)> = Vec::with_capacity(rules.len());
        for rule in rules {
            let mut ids = [0u32; 5];
            for (position, dimension) in Dimension::ALL.into_iter().enumerate() {
                if let Some(value) = rule.dimensions.get(dimension) {
                    ids[position] = index.intern(position, value, &rule.id)?;
                }
            }
            let mask = rule.dimensions.mask();
            keys.push((rule.side.index(), mask, group_key(&ids, mask)));
        }
        for (rule_position, (side, mask, key)) in keys.into_iter().enumerate() {
            let groups = &mut index.sides[side];
            let group_position = match groups.iter().position(|group| group.mask == mask) {
                Some(position) => position,
                None => {
                    groups.push(Group {
                        mask,
                        rules: FastMap::default(),
                    });
                    groups.len() - 1
                }
            };
            let rule_number =
                u32::try_from(rule_position).map_err(|_| FeeConfigError::TooManyRules {
                    count: rules.len(),
                    max: crate::RULES_MAX,
                })?;
            if let Some(first) = groups[group_position].rules.insert(key, rule_number) {
                let name = |number: u32| {
                    rules
                        .get(number as usize)
                        .map_or_else(String::new, |rule| rule.id.clone())
                };
                return Err(FeeConfigError::Duplicate {
                    first: name(first),
                    second: name(rule_number),
                });
            }
        }
        for groups in &mut index.sides {
            groups.sort_by_key(|group| std::cmp::Reverse(rank(group.mask)));
            debug_assert!(groups.len() <= GROUPS_MAX);
        }
        Ok(index)
    }

    fn intern(&mut self, position: usize, value: &str, rule: &str) -> Result<u32, FeeConfigError> {
        let values = &mut self.values[position];
        if let Some(id) = values.get(value) {
            return Ok(*id);
        }
        if values.len() >= DIMENSION_VALUES_MAX {
            return Err(FeeConfigError::Invalid {
                rule: rule.to_owned(),
                field: Dimension::ALL[position].as_str().to_owned(),
                reason: format!("more than {DIMENSION_VALUES_MAX} distinct values"),
            });
        }
        let id = u32::try_from(values.len() + 1).unwrap_or(u32::MAX);
        values.insert(value.into(), id);
        Ok(id)
    }

    /// The position of the most specific rule of `side` matching `values`.
    pub(crate) fn find(&self, side: FeeSide, values: &RequestValues<'_>) -> Option<usize> {
        let mut ids = [0u32; 5];
        let mut available = 0u8;
        for (position, dimension) in Dimension::ALL.into_iter().enumerate() {
            let id = values[position].and_then(|value| self.values[position].get(value));
            if let Some(id) = id {
                ids[position] = *id;
                available |= dimension.bit();
            }
        }
        self.sides[side.index()]
            .iter()
            // A group needing a dimension the request lacks (or names a
            // value no rule has) cannot match.
            .filter(|group| group.mask & !available == 0)
            .find_map(|group| group.rules.get(&group_key(&ids, group.mask)))
            .map(|rule| *rule as usize)
    }
}

/// The reference lookup: a scan of every rule, keeping the most specific
/// match. The index must always agree with it.
pub(crate) fn find_by_scan(
    rules: &[FeeRule],
    side: FeeSide,
    values: &RequestValues<'_>,
) -> Option<usize> {
    let mut best: Option<(usize, (u32, u8))> = None;
    for (position, rule) in rules.iter().enumerate() {
        if rule.side != side {
            continue;
        }
        let matches = Dimension::ALL
            .into_iter()
            .enumerate()
            .all(|(index, dimension)| match rule.dimensions.get(dimension) {
                None => true,
                Some(value) => values[index] == Some(value),
            });
        if !matches {
            continue;
        }
        let candidate = rank(rule.dimensions.mask());
        if best.is_none_or(|(_, best_rank)| candidate > best_rank) {
            best = Some((position, candidate));
        }
    }
    best.map(|(position, _)| position)
}
