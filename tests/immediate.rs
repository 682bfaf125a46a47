//! Immediate reactions (`LibraryBuilder::immediate_reactions`): the in-process policies react
//! within the command that caused them — the same events, under the same command ids, that
//! `settle` stores otherwise — in order, and under one sync with the command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use common::*;
use lendkit::adapters::{InMemoryEventBus, InMemoryEventStore};
use lendkit::error::StoreError;
use lendkit::event::Envelope;
use lendkit::ids::{CommandId, StreamId};
use lendkit::ports::{CommandRecord, Commit, DeadLetter, EventStore};
use lendkit::rentals::RentalStatus;
use lendkit::{block_on, Actor, Command, Library, LibraryBuilder};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// An in-memory store that counts how it was asked to write, and can fail the reactions of
/// one policy (by command-id prefix) while `failing` is set.
#[derive(Default)]
struct Counting {
    inner: InMemoryEventStore,
    synced: AtomicUsize,
    unsynced: AtomicUsize,
    syncs: AtomicUsize,
    failing: AtomicBool,
    fail_prefix: std::sync::Mutex<String>,
}

impl Counting {
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.synced.load(Ordering::SeqCst),
            self.unsynced.load(Ordering::SeqCst),
            self.syncs.load(Ordering::SeqCst),
        )
    }
}

#[async_trait]
impl EventStore for Counting {
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.synced.fetch_add(1, Ordering::SeqCst);
        self.inner.append(commit).await
    }
    async fn append_unsynced(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        if self.failing.load(Ordering::SeqCst)
            && commit
                .command_id
                .as_str()
                .starts_with(self.fail_prefix.lock().unwrap().as_str())
        {
            return Err(StoreError::Backend("the disk said no".into()));
        }
        self.unsynced.fetch_add(1, Ordering::SeqCst);
        self.inner.append_unsynced(commit).await
    }
    async fn sync(&self) -> Result<(), StoreError> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync().await
    }
    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
        self.inner.read_stream(stream).await
    }
    async fn read_stream_from(
        &self,
        stream: &StreamId,
        after: u64,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.inner.read_stream_from(stream, after).await
    }
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.inner.read_all(after, limit).await
    }
    async fn head(&self) -> Result<u64, StoreError> {
        self.inner.head().await
    }
    async fn command(&self, command: &CommandId) -> Result<Option<CommandRecord>, StoreError> {
        self.inner.command(command).await
    }
    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        self.inner.checkpoint(consumer).await
    }
    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.inner.save_checkpoint(consumer, position).await
    }
    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.checkpoints().await
    }
    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError> {
        self.inner.add_dead_letter(letter).await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters().await
    }
    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.remove_dead_letter(id).await
    }
}

fn library(store: Arc<Counting>, immediate: bool) -> Library {
    let h = Harness::new();
    block_on(
        LibraryBuilder::new(store, Arc::new(InMemoryEventBus::new()), Arc::new(h.clock))
            .notifier(h.notices)
            .sole_writer(true)
            .immediate_reactions(immediate)
            .build(),
    )
    .unwrap()
}

fn status(lib: &Library, rental: &str) -> RentalStatus {
    block_on(lib.rental(rental)).unwrap().status
}

fn top_up(lib: &Library, member: &str, points: u64) {
    run(
        lib,
        Command::TopUp {
            member_id: member.into(),
            points,
        },
        &librarian(),
    )
    .unwrap();
}

fn cancel(lib: &Library, rental: &str, member: &str) -> lendkit::Result<lendkit::Outcome> {
    run(
        lib,
        Command::CancelRental {
            rental_id: rental.into(),
            reason: None,
        },
        &Actor::member(member),
    )
}

fn lend(lib: &Library, rental: &str) -> lendkit::Result<lendkit::Outcome> {
    run(
        lib,
        Command::StartLoan {
            rental_id: rental.into(),
            branch: None,
            override_reason: None,
        },
        &librarian(),
    )
}

fn give_back(lib: &Library, rental: &str) -> lendkit::Result<lendkit::Outcome> {
    run(
        lib,
        Command::ReturnBook {
            rental_id: rental.into(),
            returned_at: None,
        },
        &librarian(),
    )
}

#[test]
fn a_reservation_returns_with_its_copy_allocated_and_the_rental_confirmed() {
    let lib = library(Arc::new(Counting::default()), true);
    register(&lib, "b-1", 1, 5);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    assert_eq!(
        status(&lib, "r-1"),
        RentalStatus::Confirmed,
        "before any settle"
    );
    let events = all_events(&lib);
    let reserved = events
        .iter()
        .find(|e| e.type_name() == "RentalReserved")
        .unwrap();
    let allocated = events
        .iter()
        .find(|e| e.type_name() == "CopyAllocated")
        .unwrap();
    let confirmed = events
        .iter()
        .find(|e| e.type_name() == "RentalConfirmed")
        .unwrap();
    // The ids settle would have used: derived from the causing event.
    assert_eq!(
        allocated.command_id.as_str(),
        format!("system:catalog:0:{}", reserved.event_id)
    );
    assert_eq!(
        confirmed.command_id.as_str(),
        format!("system:rentals:0:{}", allocated.event_id)
    );
    assert_eq!(allocated.causation_id, reserved.event_id);
    // Settle finds nothing left for the policies to store (the views and notices catch up).
    let head = block_on(lib.head()).unwrap();
    settle(&lib);
    assert_eq!(block_on(lib.head()).unwrap(), head);
    let page = lib.member_page("m-1").unwrap();
    assert!(
        format!("{page:?}").contains("Confirmed") || format!("{page:?}").contains("confirmed"),
        "{page:?}"
    );
    // The copy is taken: a second member is refused before anything is charged.
    join(&lib, "m-2");
    let refused = reserve(&lib, "b-1", "m-2", "r-2").unwrap_err();
    assert_eq!(refused.code().as_str(), "BOOK_UNAVAILABLE", "{refused}");
    settle(&lib);
    check_invariants(&lib);
}

/// The same commands, settled after each one, store the same log in both modes: every event,
/// its stream, version, position, payload and command id.
#[test]
fn the_log_is_the_one_settle_would_have_stored() {
    let day = |immediate: bool| {
        let lib = library(Arc::new(Counting::default()), immediate);
        register(&lib, "b-1", 1, 5);
        register(&lib, "b-2", 2, 3);
        for m in ["m-1", "m-2", "m-3"] {
            join(&lib, m);
        }
        let mut answers = Vec::new();
        let mut step = |r: lendkit::Result<lendkit::Outcome>| {
            answers.push(r.map(|o| o.events.len()).map_err(|e| e.code()));
            settle(&lib);
        };
        step(reserve(&lib, "b-1", "m-1", "r-1"));
        step(reserve(&lib, "b-1", "m-2", "r-2"));
        step(reserve(&lib, "b-2", "m-2", "r-3"));
        step(reserve(&lib, "b-2", "m-3", "r-4"));
        step(cancel(&lib, "r-4", "m-3"));
        step(lend(&lib, "r-1"));
        step(give_back(&lib, "r-1"));
        step(reserve(&lib, "b-1", "m-3", "r-5"));
        step(lend(&lib, "r-3"));
        step(give_back(&lib, "r-3"));
        check_invariants(&lib);
        // The callers' own commands run under fresh ids, different in each run.
        let own = |id: &str| {
            if id.starts_with("system:") {
                id.to_owned()
            } else {
                "the caller's".to_owned()
            }
        };
        let log: Vec<String> = all_events(&lib)
            .iter()
            .map(|e| {
                format!(
                    "{} {}#{} {} {} by {} after {}",
                    e.position,
                    e.stream,
                    e.version,
                    e.type_name(),
                    e.event.payload(),
                    own(e.command_id.as_str()),
                    own(&e.causation_id)
                )
            })
            .collect();
        (log, answers, lib.book_list())
    };
    let (settled, answers_settled, books_settled) = day(false);
    let (immediate, answers_immediate, books_immediate) = day(true);
    assert!(settled.iter().any(|l| l.contains("RentalCanceled")));
    assert!(settled.iter().any(|l| l.contains("CopyReleased")));
    assert_eq!(settled, immediate);
    assert_eq!(books_settled, books_immediate);
    // Settled after each command, the callers hear the same in both: the taken copy is refused.
    assert!(answers_settled.contains(&Err(lendkit::ErrorCode::BookUnavailable)));
    assert_eq!(answers_settled, answers_immediate);
}

/// A policy that owes an older event (here: paused, then resumed without a settle) does not
/// react at once to a newer one: the older reservation still gets the copy first.
#[test]
fn a_policy_that_owes_an_older_event_waits_for_its_consumer() {
    let lib = library(Arc::new(Counting::default()), true);
    register(&lib, "b-1", 1, 5);
    join(&lib, "m-1");
    join(&lib, "m-2");
    lib.pause("catalog").unwrap();
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    assert_eq!(
        status(&lib, "r-1"),
        RentalStatus::Reserved,
        "catalog is paused"
    );
    lib.resume("catalog").unwrap();
    reserve(&lib, "b-1", "m-2", "r-2").unwrap();
    assert_eq!(
        status(&lib, "r-2"),
        RentalStatus::Reserved,
        "the catalog still owes r-1 its copy: r-2 must not overtake it"
    );
    settle(&lib);
    assert_eq!(status(&lib, "r-1"), RentalStatus::Confirmed);
    assert_eq!(status(&lib, "r-2"), RentalStatus::Canceled);
    // Caught up again, the catalog reacts at once.
    register(&lib, "b-2", 1, 5);
    reserve(&lib, "b-2", "m-2", "r-3").unwrap();
    assert_eq!(status(&lib, "r-3"), RentalStatus::Confirmed);
    settle(&lib);
    check_invariants(&lib);
}

/// A command and its reactions: stored unsynced, one sync. Without immediate reactions the
/// command is one synced append and its settle one more sync.
#[test]
fn a_command_and_its_reactions_share_one_sync() {
    for immediate in [true, false] {
        let store = Arc::new(Counting::default());
        let lib = library(store.clone(), immediate);
        register(&lib, "b-1", 1, 5);
        join(&lib, "m-1");
        settle(&lib);
        let before = store.counts();
        top_up(&lib, "m-1", 10);
        let after = store.counts();
        assert_eq!(
            (after.0 - before.0, after.1 - before.1, after.2 - before.2),
            (1, 0, 0),
            "immediate {immediate}: a top-up sets nothing off: one synced append"
        );
        reserve(&lib, "b-1", "m-1", "r-1").unwrap();
        let reserved = store.counts();
        settle(&lib);
        let settled = store.counts();
        let (command, settle_cost) = (
            (
                reserved.0 - after.0,
                reserved.1 - after.1,
                reserved.2 - after.2,
            ),
            (
                settled.0 - reserved.0,
                settled.1 - reserved.1,
                settled.2 - reserved.2,
            ),
        );
        if immediate {
            // The reservation (with its charge), the allocation, the confirmation; one sync.
            assert_eq!(command, (0, 3, 1), "immediate: the reservation");
            assert_eq!(settle_cost, (0, 0, 0), "immediate: nothing left for settle");
        } else {
            assert_eq!(command, (1, 0, 0), "settled: the reservation");
            assert_eq!(settle_cost, (0, 2, 1), "settled: the saga, one sync");
        }
        assert_eq!(status(&lib, "r-1"), RentalStatus::Confirmed);
    }
}

/// A reaction that fails for a reason other than the rules is left to the consumer: the
/// command still succeeds (it is synced), and settle carries the reaction out.
#[test]
fn a_reaction_that_fails_is_left_to_the_consumer() {
    let store = Arc::new(Counting::default());
    *store.fail_prefix.lock().unwrap() = "system:rentals:".into();
    let lib = library(store.clone(), true);
    register(&lib, "b-1", 1, 5);
    join(&lib, "m-1");
    store.failing.store(true, Ordering::SeqCst);
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    let events = all_events(&lib);
    assert_eq!(count(&events, "CopyAllocated"), 1, "the catalog reacted");
    assert_eq!(
        count(&events, "RentalConfirmed"),
        0,
        "the confirmation failed"
    );
    assert_eq!(status(&lib, "r-1"), RentalStatus::Reserved);
    store.failing.store(false, Ordering::SeqCst);
    // The consumer meets the failure again on its own first try only if still failing; now it
    // confirms. (Its first try is not delayed: the event never failed for the consumer.)
    settle(&lib);
    assert_eq!(status(&lib, "r-1"), RentalStatus::Confirmed);
    assert_eq!(count(&all_events(&lib), "RentalConfirmed"), 1);
    settle(&lib);
    check_invariants(&lib);
}
