//! The hold queue of a title: who waits for a copy, in which order.
//!
//! A hold is a rental that waits (`place_hold`, or `reserve_book` with `wait`): its fee is paid
//! like a reservation's and refunded like one when it is cancelled or no longer needed. While
//! every copy is out, the catalog puts it in its title's [`HoldQueue`] (`HoldQueued`, on the
//! book's stream); a returned copy goes to the first hold still wanted (`CopyAllocated`), which
//! then waits on the pickup shelf (`HoldAwaitingPickup{until}`) or is delivered.
//!
//! **Positions cannot break.** A hold's position is not stored per hold: it is its rank in the
//! queue's order, so after any committed event the positions are exactly `1..=n`, with no gap
//! and no duplicate, whatever was cancelled, filled or reordered. The order is a key per hold
//! (placing appends; a librarian's reorder picks a key between the new neighbours), kept in a
//! treap with subtree sizes, so placing, cancelling, reordering, promoting and asking a
//! position all cost O(log n) in the queue's length. The queue lives in the book aggregate, so
//! a return, a cancel and a placement on one title are decided one after the other: a copy
//! goes to exactly one member.

use crate::ids::{MemberId, RentalId, Timestamp};
use serde::{Deserialize, Serialize};

/// What makes a rental a hold: where it is collected, and until when it is wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldTerms {
    /// The branch where the member collects it (none: the book's branch, or anywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_branch: Option<String>,
    /// After this the member no longer wants it: still waiting then, it is cancelled and
    /// refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_needed_after: Option<Timestamp>,
    /// For a copy-level hold: the copy (its number, from 1) it waits for; none: any copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<u32>,
    /// Points charged when the hold is collected (the request policy's `charge = "collect"`);
    /// none: the fee was paid when it was placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect_fee: Option<u64>,
}

/// Keys of consecutive placements are this far apart, so a reorder finds a key in between
/// without renumbering (it renumbers, in order, when a gap is used up).
const GAP: u64 = 1 << 20;

/// One hold in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedHold {
    /// The hold (its rental).
    pub rental: RentalId,
    /// Who waits.
    pub member: MemberId,
    /// After this the member no longer wants it (it is skipped, then expires).
    pub not_needed_after: Option<Timestamp>,
    /// Whether it waits on the pickup shelf when filled (else it is delivered).
    pub pickup: bool,
    /// For a copy-level hold: the copy it waits for (the others pass it by).
    pub copy: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    key: u64,
    priority: u64,
    size: usize,
    hold: QueuedHold,
    left: Link,
    right: Link,
}

type Link = Option<Box<Node>>;

fn size(link: &Link) -> usize {
    link.as_ref().map_or(0, |n| n.size)
}

/// A fixed pseudo-random priority per key (splitmix64): the treap's shape is a function of the
/// keys alone, so a fold of the same events always gives the same queue.
fn priority(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fix(node: &mut Node) {
    node.size = 1 + size(&node.left) + size(&node.right);
}

/// Splits into (keys < `key`, keys ≥ `key`).
fn split(link: Link, key: u64) -> (Link, Link) {
    match link {
        None => (None, None),
        Some(mut node) => {
            if node.key < key {
                let (l, r) = split(node.right.take(), key);
                node.right = l;
                fix(&mut node);
                (Some(node), r)
            } else {
                let (l, r) = split(node.left.take(), key);
                node.left = r;
                fix(&mut node);
                (l, Some(node))
            }
        }
    }
}

/// Joins two treaps, every key of `a` below every key of `b`.
fn merge(a: Link, b: Link) -> Link {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(mut a), Some(mut b)) => {
            if a.priority >= b.priority {
                a.right = merge(a.right.take(), Some(b));
                fix(&mut a);
                Some(a)
            } else {
                b.left = merge(Some(a), b.left.take());
                fix(&mut b);
                Some(b)
            }
        }
    }
}

/// A title's queue of holds, first in line first. See the module docs.
///
/// Saved (in a views snapshot) as its holds in line order with their keys, and rebuilt from
/// them: the treap's shape is a function of the keys, so the rebuilt queue is the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "SavedQueue", from = "SavedQueue")]
pub struct HoldQueue {
    root: Link,
    keys: crate::ids::IdMap<RentalId, u64>,
    /// Holds per member.
    members: crate::ids::IdMap<MemberId, usize>,
    /// The key the next placement gets.
    next: u64,
}

/// A [`HoldQueue`] as saved: the key the next placement gets, and each hold with its key.
#[derive(Serialize, Deserialize)]
struct SavedQueue {
    next: u64,
    holds: Vec<(u64, QueuedHold)>,
}

impl From<HoldQueue> for SavedQueue {
    fn from(queue: HoldQueue) -> Self {
        let mut holds = Vec::with_capacity(queue.len());
        let mut stack: Vec<&Node> = Vec::new();
        let mut link = queue.root.as_deref();
        loop {
            while let Some(node) = link {
                stack.push(node);
                link = node.left.as_deref();
            }
            let Some(node) = stack.pop() else { break };
            holds.push((node.key, node.hold.clone()));
            link = node.right.as_deref();
        }
        SavedQueue {
            next: queue.next,
            holds,
        }
    }
}

impl From<SavedQueue> for HoldQueue {
    fn from(saved: SavedQueue) -> Self {
        let mut queue = HoldQueue::default();
        for (key, hold) in saved.holds {
            queue.insert(key, hold);
        }
        queue.next = saved.next;
        queue
    }
}

impl HoldQueue {
    /// Holds waiting.
    pub fn len(&self) -> usize {
        size(&self.root)
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Whether `rental` waits in this queue.
    pub fn contains(&self, rental: &RentalId) -> bool {
        self.keys.contains_key(rental)
    }

    /// Whether `member` has a hold waiting here.
    pub fn holds_member(&self, member: &MemberId) -> bool {
        self.members.contains_key(member)
    }

    /// The waiting hold `rental`.
    pub fn get(&self, rental: &RentalId) -> Option<&QueuedHold> {
        let key = *self.keys.get(rental)?;
        let mut link = &self.root;
        while let Some(node) = link {
            if key == node.key {
                return Some(&node.hold);
            }
            link = if key < node.key {
                &node.left
            } else {
                &node.right
            };
        }
        None
    }

    /// The hold's position, 1 for the first in line; `None` if it does not wait here.
    pub fn position(&self, rental: &RentalId) -> Option<u64> {
        let key = *self.keys.get(rental)?;
        let mut rank = 0;
        let mut link = &self.root;
        while let Some(node) = link {
            if key < node.key {
                link = &node.left;
            } else {
                rank += size(&node.left) + 1;
                if key == node.key {
                    break;
                }
                link = &node.right;
            }
        }
        u64::try_from(rank).ok()
    }

    /// The hold at `position` (1-based).
    pub fn at(&self, position: u64) -> Option<&QueuedHold> {
        let mut k = usize::try_from(position.checked_sub(1)?).ok()?;
        let mut link = &self.root;
        while let Some(node) = link {
            let left = size(&node.left);
            if k < left {
                link = &node.left;
            } else if k == left {
                return Some(&node.hold);
            } else {
                k -= left + 1;
                link = &node.right;
            }
        }
        None
    }

    /// The holds in line order.
    pub fn iter(&self) -> impl Iterator<Item = &QueuedHold> {
        let mut stack: Vec<&Node> = Vec::new();
        let mut link = self.root.as_deref();
        std::iter::from_fn(move || {
            while let Some(node) = link {
                stack.push(node);
                link = node.left.as_deref();
            }
            let node = stack.pop()?;
            link = node.right.as_deref();
            Some(&node.hold)
        })
    }

    /// The first hold still wanted at `now` (its `not_needed_after` not passed).
    pub fn first_wanted(&self, now: Timestamp) -> Option<&QueuedHold> {
        self.iter()
            .find(|h| h.not_needed_after.is_none_or(|t| t >= now))
    }

    /// Puts `hold` at the end of the line (a hold already waiting stays where it is).
    pub fn push_back(&mut self, hold: QueuedHold) {
        if self.keys.contains_key(&hold.rental) {
            return;
        }
        let Some(key) = self.next_key() else {
            self.renumber();
            return self.push_back(hold);
        };
        self.insert(key, hold);
    }

    /// Takes `rental` out of the line; the holds behind it move up one.
    pub fn remove(&mut self, rental: &RentalId) -> Option<QueuedHold> {
        let key = self.keys.remove(rental)?;
        let (left, rest) = split(self.root.take(), key);
        let (node, right) = split(rest, key.saturating_add(1));
        self.root = merge(left, right);
        let hold = node?.hold;
        if let Some(n) = self.members.get_mut(&hold.member) {
            *n -= 1;
            if *n == 0 {
                self.members.remove(&hold.member);
            }
        }
        Some(hold)
    }

    /// Moves `rental` to `position` (1-based; past the end means last). False if it does not
    /// wait here.
    pub fn move_to(&mut self, rental: &RentalId, position: u64) -> bool {
        let Some(hold) = self.remove(rental) else {
            return false;
        };
        let n = self.len() as u64;
        let p = position.clamp(1, n + 1);
        if p == n + 1 {
            self.push_back(hold);
            return true;
        }
        // Between the holds now at p − 1 and p.
        let lo = if p > 1 {
            self.at(p - 1)
                .and_then(|h| self.keys.get(&h.rental).copied())
        } else {
            Some(0)
        };
        let hi = self.at(p).and_then(|h| self.keys.get(&h.rental).copied());
        match (lo, hi) {
            (Some(lo), Some(hi)) if hi - lo > 1 => self.insert(lo + (hi - lo) / 2, hold),
            _ => {
                self.renumber();
                // After renumbering every gap is GAP wide.
                self.insert_at(p, hold);
            }
        }
        true
    }

    fn insert_at(&mut self, p: u64, hold: QueuedHold) {
        let lo = if p > 1 {
            self.at(p - 1)
                .and_then(|h| self.keys.get(&h.rental).copied())
                .unwrap_or(0)
        } else {
            0
        };
        let hi = self
            .at(p)
            .and_then(|h| self.keys.get(&h.rental).copied())
            .unwrap_or(lo.saturating_add(2 * GAP));
        self.insert(lo + (hi - lo) / 2, hold);
    }

    fn next_key(&mut self) -> Option<u64> {
        let key = self.next.checked_add(GAP)?;
        self.next = key;
        Some(key)
    }

    fn insert(&mut self, key: u64, hold: QueuedHold) {
        self.keys.insert(hold.rental.clone(), key);
        *self.members.entry(hold.member.clone()).or_default() += 1;
        let node = Box::new(Node {
            key,
            priority: priority(key),
            size: 1,
            hold,
            left: None,
            right: None,
        });
        let (left, right) = split(self.root.take(), key);
        self.root = merge(merge(left, Some(node)), right);
    }

    /// Gives every hold a fresh key, GAP apart, in line order (when a gap is used up).
    fn renumber(&mut self) {
        let holds: Vec<QueuedHold> = self.iter().cloned().collect();
        *self = HoldQueue::default();
        for hold in holds {
            let key = self.next.saturating_add(GAP);
            self.next = key;
            self.insert(key, hold);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hold(i: u32) -> QueuedHold {
        QueuedHold {
            rental: RentalId::new(format!("r{i}")),
            member: MemberId::new(format!("m{i}")),
            not_needed_after: None,
            pickup: true,
            copy: None,
        }
    }

    #[test]
    fn placing_appends_and_positions_follow_the_line() {
        let mut q = HoldQueue::default();
        for i in 0..5 {
            q.push_back(hold(i));
        }
        assert_eq!(q.position(&RentalId::new("r0")), Some(1));
        assert_eq!(q.position(&RentalId::new("r4")), Some(5));
        q.remove(&RentalId::new("r1"));
        assert_eq!(q.position(&RentalId::new("r2")), Some(2));
        assert!(q.move_to(&RentalId::new("r4"), 1));
        let order: Vec<_> = q.iter().map(|h| h.rental.to_string()).collect();
        assert_eq!(order, ["r4", "r0", "r2", "r3"]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32),
        Remove(u32),
        Move(u32, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u32..40).prop_map(Op::Push),
            2 => (0u32..40).prop_map(Op::Remove),
            2 => ((0u32..40), (0u64..45)).prop_map(|(i, p)| Op::Move(i, p)),
        ]
    }

    proptest! {
        /// The queue equals a plain list under any mix of placing, cancelling and reordering,
        /// and its positions are always exactly 1..=n.
        #[test]
        fn the_queue_is_a_list_with_positions_one_to_n(ops in prop::collection::vec(op(), 0..300)) {
            let mut q = HoldQueue::default();
            let mut model: Vec<u32> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(i) => {
                        q.push_back(hold(i));
                        if !model.contains(&i) { model.push(i); }
                    }
                    Op::Remove(i) => {
                        let removed = q.remove(&RentalId::new(format!("r{i}"))).is_some();
                        prop_assert_eq!(removed, model.contains(&i));
                        model.retain(|x| *x != i);
                    }
                    Op::Move(i, p) => {
                        let moved = q.move_to(&RentalId::new(format!("r{i}")), p);
                        prop_assert_eq!(moved, model.contains(&i));
                        if moved {
                            model.retain(|x| *x != i);
                            let at = (p.max(1) as usize - 1).min(model.len());
                            model.insert(at, i);
                        }
                    }
                }
                let order: Vec<String> = q.iter().map(|h| h.rental.to_string()).collect();
                let want: Vec<String> = model.iter().map(|i| format!("r{i}")).collect();
                prop_assert_eq!(&order, &want);
                prop_assert_eq!(q.len(), model.len());
                for (k, i) in model.iter().enumerate() {
                    let r = RentalId::new(format!("r{i}"));
                    prop_assert_eq!(q.position(&r), Some(k as u64 + 1));
                    prop_assert_eq!(q.at(k as u64 + 1).map(|h| &h.rental), Some(&r));
                }
                // Saved (in a views snapshot) and read back, it is the same queue, down to
                // the treap's shape and the next key.
                let saved = serde_json::to_string(&q).unwrap();
                let read: HoldQueue = serde_json::from_str(&saved).unwrap();
                prop_assert_eq!(&read, &q);
            }
        }
    }

    #[test]
    fn many_reorders_to_the_front_renumber_and_keep_the_order() {
        let mut q = HoldQueue::default();
        for i in 0..50 {
            q.push_back(hold(i));
        }
        // Each move to position 2 halves the gap after the first: renumbering must kick in.
        for i in 2..50 {
            assert!(q.move_to(&RentalId::new(format!("r{i}")), 2));
        }
        let order: Vec<_> = q.iter().map(|h| h.rental.to_string()).collect();
        assert_eq!(order[0], "r0");
        assert_eq!(order[1], "r49");
        assert_eq!(order[48], "r2");
        assert_eq!(order[49], "r1");
        for (k, h) in q.iter().enumerate() {
            assert_eq!(q.position(&h.rental), Some(k as u64 + 1));
        }
    }
}
