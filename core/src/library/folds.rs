//! The engine's cache of folded aggregates: by stream, the version folded to and (unless a
//! loader has it out) the state.
//!
//! Loaders run concurrently, so a fold can come back after a newer one was stored. Two rules
//! keep an older fold from being trusted:
//!
//! - every load leaves an entry with the version it read ([`Folds::loaded`]); a fold comes back
//!   ([`Folds::keep`]) only over an entry that is not newer than it;
//! - a fold whose entry is gone does not come back: the next load reads the store. An entry goes
//!   when the stream is known to be further on than the cache can say — an append found it
//!   there ([`Folds::stale`]), or its aggregate became [final](crate::aggregate::Aggregate::is_final)
//!   and is not kept — and when the cache [makes room](Folds::make_room).
//!
//! So a finished rental leaves nothing behind, and the entries are the folds kept and the loads
//! in flight.

use crate::ids::{IdMap, StreamId};
use std::any::Any;

/// A folded aggregate, of the type its stream holds.
pub(super) type Folded = Box<dyn Any + Send + Sync>;

/// Streams the cache holds at most; past it, it [makes room](Folds::make_room).
pub(super) const LIMIT: usize = 200_000;

/// Folded aggregates by stream: (version, state). An entry without a state is a marker: a
/// loader read the stream to that version and has not given its fold back (yet: a query may
/// never give it back).
pub(super) struct Folds {
    entries: IdMap<StreamId, (u64, Option<Folded>)>,
    limit: usize,
}

impl Default for Folds {
    fn default() -> Self {
        Self::with_limit(LIMIT)
    }
}

impl Folds {
    /// A cache that holds at most `limit` streams.
    pub(super) fn with_limit(limit: usize) -> Self {
        Self {
            entries: IdMap::default(),
            limit,
        }
    }

    /// Takes the fold of `stream` out (leaving its version as a marker), with its version. It
    /// stays in its box: a loader decides on it there and [`keep`](Folds::keep) puts the same
    /// box back, so a load moves no aggregate and allocates nothing.
    pub(super) fn take<A: 'static>(&mut self, stream: &StreamId) -> Option<(Box<A>, u64)> {
        let (version, state) = self.entries.get_mut(stream)?;
        let folded = state.take()?.downcast::<A>().ok()?;
        Some((folded, *version))
    }

    /// Notes that a loader read `stream` from the store up to `version`: the entry its
    /// [`keep`](Folds::keep) needs. A fold older than that is dropped (it is behind the store).
    pub(super) fn loaded(&mut self, stream: &StreamId, version: u64) {
        match self.entries.get_mut(stream) {
            Some((v, state)) => {
                if *v < version {
                    *v = version;
                    *state = None;
                }
            }
            None => {
                self.make_room();
                self.entries.insert(stream.clone(), (version, None));
            }
        }
    }

    /// Puts a fold of `stream` at `version` back, unless the entry is newer — or gone (see the
    /// module's docs). `None` (a final aggregate, not kept): the entry goes.
    pub(super) fn keep(&mut self, stream: &StreamId, version: u64, state: Option<Folded>) {
        let Some(entry) = self.entries.get_mut(stream) else {
            return;
        };
        let newer = match entry {
            (v, Some(_)) => *v >= version,
            (v, None) => *v > version,
        };
        if newer {
            return;
        }
        match state {
            Some(state) => *entry = (version, Some(state)),
            None => {
                self.entries.remove(stream);
            }
        }
    }

    /// Drops the marker a load of `stream` at `version` left, for a load whose fold does not come
    /// back (a query on a stream that holds nothing, say): without it the marker would stay until
    /// the cache makes room. A fold, or a marker another load moved on, stays.
    pub(super) fn release(&mut self, stream: &StreamId, version: u64) {
        if matches!(self.entries.get(stream), Some((v, None)) if *v == version) {
            self.entries.remove(stream);
        }
    }

    /// Notes that `stream` is at `version` in the store (an append found it there): an older
    /// entry goes, so no fold older than that comes back and the next load reads the store.
    pub(super) fn stale(&mut self, stream: &StreamId, version: u64) {
        if matches!(self.entries.get(stream), Some((v, _)) if *v < version) {
            self.entries.remove(stream);
        }
    }

    /// Room in a full cache: first the entries without a state go — the markers of loads (a
    /// query's load is not given back) — and only if the folds themselves fill more than half of it does the
    /// cache start over.
    fn make_room(&mut self) {
        if self.entries.len() < self.limit {
            return;
        }
        self.entries.retain(|_, (_, state)| state.is_some());
        if self.entries.len() >= self.limit / 2 {
            self.entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::StreamKind;
    use crate::rentals::Rental;

    fn stream(n: usize) -> StreamId {
        StreamId::new(StreamKind::Rental, format!("r-{n}"))
    }

    fn folded() -> Option<Folded> {
        Some(Box::new(Rental::default()))
    }

    fn ids(folds: &Folds) -> Vec<String> {
        let mut kept: Vec<_> = folds.entries.keys().map(|s| s.id.clone()).collect();
        kept.sort();
        kept
    }

    #[test]
    fn a_full_cache_drops_the_entries_without_a_state_first() {
        let mut folds = Folds::with_limit(11);
        for n in 0..3 {
            folds.loaded(&stream(n), 1);
            folds.keep(&stream(n), 1, folded());
        }
        for n in 3..11 {
            folds.loaded(&stream(n), 4);
        }
        assert_eq!(folds.entries.len(), 11, "not full until the eleventh");
        folds.loaded(&stream(11), 4);
        assert_eq!(ids(&folds), ["r-0", "r-1", "r-11", "r-2"], "the folds stay");
    }

    #[test]
    fn a_cache_full_of_folds_starts_over() {
        let mut folds = Folds::with_limit(10);
        for n in 0..6 {
            folds.loaded(&stream(n), 1);
            folds.keep(&stream(n), 1, folded());
        }
        for n in 6..10 {
            folds.loaded(&stream(n), 4);
        }
        folds.loaded(&stream(10), 0);
        assert_eq!(ids(&folds), ["r-10"], "six folds of ten: more than half");
    }

    #[test]
    fn a_fold_comes_back_only_over_an_entry_not_newer_than_it() {
        let mut folds = Folds::default();
        let s = stream(1);
        // Two loaders read the stream at 3; the first stores 4 and 5 and keeps its fold.
        folds.loaded(&s, 3);
        folds.loaded(&s, 3);
        folds.keep(&s, 5, folded());
        // The second, deciding nothing, puts back its fold at 3: not over the newer one.
        folds.keep(&s, 3, folded());
        assert_eq!(folds.take::<Rental>(&s).map(|(_, v)| v), Some(5));
    }

    #[test]
    fn a_fold_loaded_before_the_cache_made_room_does_not_come_back() {
        let mut folds = Folds::with_limit(3);
        let s = stream(1);
        // A slow loader reads the stream at 3; another writer loads it, stores 4 and keeps it.
        folds.loaded(&s, 3);
        folds.loaded(&s, 3);
        folds.keep(&s, 4, folded());
        // The cache fills with folds and starts over: the fold at 4 goes with the rest.
        for n in 2..4 {
            folds.loaded(&stream(n), 1);
            folds.keep(&stream(n), 1, folded());
        }
        folds.loaded(&stream(4), 1);
        assert!(!folds.entries.contains_key(&s));
        // The slow loader puts back its fold at 3: behind the store, so it must not be kept
        // (a sole writer's next load would trust it).
        folds.keep(&s, 3, folded());
        assert!(
            !folds.entries.contains_key(&s),
            "the next load reads the store"
        );
    }

    #[test]
    fn a_final_aggregate_leaves_nothing_and_an_older_fold_does_not_take_its_place() {
        let mut folds = Folds::default();
        let s = stream(1);
        folds.loaded(&s, 3);
        folds.loaded(&s, 3);
        // One loader stores the return: the rental is final, not kept.
        folds.keep(&s, 4, None);
        assert!(
            folds.entries.is_empty(),
            "nothing left of a finished rental"
        );
        // The other gives back its fold at 3.
        folds.keep(&s, 3, folded());
        assert!(folds.entries.is_empty());
    }

    #[test]
    fn an_append_that_found_the_stream_further_on_drops_its_entry() {
        let mut folds = Folds::default();
        let s = stream(1);
        folds.loaded(&s, 2);
        folds.keep(&s, 2, folded());
        folds.stale(&s, 2);
        assert!(
            folds.take::<Rental>(&s).is_some(),
            "not further on: the fold stays"
        );
        folds.keep(&s, 2, folded());
        folds.stale(&s, 5);
        assert!(folds.entries.is_empty());
        folds.keep(&s, 2, folded());
        assert!(folds.entries.is_empty(), "nor does the fold at 2 come back");
    }

    #[test]
    fn a_load_that_read_further_than_the_fold_kept_drops_it() {
        let mut folds = Folds::default();
        let s = stream(1);
        folds.loaded(&s, 2);
        folds.keep(&s, 2, folded());
        // A loader that read the store to 4 (it did not take that fold) notes it.
        folds.loaded(&s, 4);
        assert!(
            folds.take::<Rental>(&s).is_none(),
            "a fold at 2 is behind 4"
        );
        folds.keep(&s, 2, folded());
        assert!(folds.take::<Rental>(&s).is_none(), "nor does it come back");
        folds.keep(&s, 4, folded());
        assert_eq!(folds.take::<Rental>(&s).map(|(_, v)| v), Some(4));
    }
    #[test]
    fn a_load_released_leaves_nothing_unless_the_entry_moved_on() {
        let mut folds = Folds::default();
        let s = stream(1);
        folds.loaded(&s, 0);
        folds.release(&s, 0);
        assert!(
            folds.entries.is_empty(),
            "a query of an empty stream leaves nothing"
        );
        folds.loaded(&s, 2);
        folds.loaded(&s, 3);
        folds.release(&s, 2);
        assert_eq!(
            folds.entries.get(&s).map(|(v, _)| *v),
            Some(3),
            "another load's marker"
        );
        folds.keep(&s, 3, folded());
        folds.release(&s, 3);
        assert!(folds.take::<Rental>(&s).is_some(), "a fold stays");
    }
}
