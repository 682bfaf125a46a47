//! A power loss in the middle of a settle: the reactions a settle pass stores wait for one sync
//! at its end, so the power may take some of them. Whatever it takes, no host ever acted on it —
//! no refund paid and no notice sent for something the rebooted library then decides otherwise
//! — and the rebooted library finishes the saga with each charge and refund exactly once.
//!
//! The store here keeps what a disk keeps: every write in order, and how far the last sync
//! reached. Cutting the power after the k-th write, for every k, and rebooting from the synced
//! prefix, covers every moment a real crash could pick.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use common::*;
use lendkit::adapters::{InMemoryEventBus, InMemoryEventStore, RecordingNotifier};
use lendkit::error::{PaymentError, StoreError};
use lendkit::event::Envelope;
use lendkit::ids::{CommandId, MemberId, Points, RentalId, StreamId};
use lendkit::ports::{
    ChargeRef, CommandRecord, Commit, DeadLetter, EventStore, PaymentGateway, PaymentReceipt,
};
use lendkit::{block_on, Command, LibraryBuilder};
use std::sync::{Arc, Mutex};

/// One write, as the disk saw it.
#[derive(Clone)]
enum Write {
    Append(Commit),
    Checkpoint(String, u64),
}

#[derive(Default)]
struct Disk {
    writes: Vec<Write>,
    /// How many of `writes` the last sync covered.
    synced: usize,
    /// Writes still possible before the power goes (`None`: it never goes).
    power_left: Option<usize>,
}

/// An in-memory store that remembers what a power loss would keep.
struct PowerLossStore {
    live: InMemoryEventStore,
    disk: Mutex<Disk>,
}

impl PowerLossStore {
    fn new(power_left: Option<usize>) -> Self {
        PowerLossStore {
            live: InMemoryEventStore::new(),
            disk: Mutex::new(Disk {
                power_left,
                ..Disk::default()
            }),
        }
    }

    /// A write may happen: the power is still on. Counts it against what is left.
    fn powered(&self) -> Result<(), StoreError> {
        let mut disk = self.disk.lock().unwrap();
        match &mut disk.power_left {
            Some(0) => Err(StoreError::Backend("the power is off".into())),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn wrote(&self, write: Write, synced: bool) {
        let mut disk = self.disk.lock().unwrap();
        disk.writes.push(write);
        if synced {
            disk.synced = disk.writes.len();
        }
    }

    /// The store a reboot finds: the synced writes, replayed in order.
    fn reboot(&self) -> PowerLossStore {
        let kept: Vec<Write> = {
            let disk = self.disk.lock().unwrap();
            disk.writes[..disk.synced].to_vec()
        };
        let store = PowerLossStore::new(None);
        for write in kept {
            match write {
                Write::Append(commit) => {
                    block_on(store.append(commit)).unwrap();
                }
                Write::Checkpoint(consumer, position) => {
                    block_on(store.save_checkpoint(&consumer, position)).unwrap();
                }
            }
        }
        store
    }

    async fn append_as(&self, commit: Commit, synced: bool) -> Result<Vec<Envelope>, StoreError> {
        self.powered()?;
        let stored = self.live.append(commit.clone()).await?;
        if !stored.is_empty() {
            self.wrote(Write::Append(commit), synced);
        }
        Ok(stored)
    }
}

#[async_trait]
impl EventStore for PowerLossStore {
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.append_as(commit, true).await
    }
    async fn append_unsynced(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.append_as(commit, false).await
    }
    async fn sync(&self) -> Result<(), StoreError> {
        self.powered()?;
        let mut disk = self.disk.lock().unwrap();
        disk.synced = disk.writes.len();
        Ok(())
    }
    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
        self.live.read_stream(stream).await
    }
    async fn read_stream_from(
        &self,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.live.read_stream_from(stream, after_version).await
    }
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.live.read_all(after, limit).await
    }
    async fn head(&self) -> Result<u64, StoreError> {
        self.live.head().await
    }
    async fn command(&self, command: &CommandId) -> Result<Option<CommandRecord>, StoreError> {
        self.live.command(command).await
    }
    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        self.live.checkpoint(consumer).await
    }
    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.powered()?;
        self.live.save_checkpoint(consumer, position).await?;
        self.wrote(Write::Checkpoint(consumer.to_owned(), position), false);
        Ok(())
    }
    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.live.checkpoints().await
    }
    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError> {
        self.live.add_dead_letter(letter).await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.live.dead_letters().await
    }
    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        self.live.remove_dead_letter(id).await
    }
}

/// A host's payment service: what it did stays done whatever happens to the library.
#[derive(Default)]
struct Ledger {
    /// (`charge` | `refund`, rental) in the order the calls came; a repeated key moves nothing.
    moves: Mutex<Vec<(&'static str, String)>>,
}

impl Ledger {
    fn did(&self, what: &'static str, key: &str) -> bool {
        self.moves
            .lock()
            .unwrap()
            .iter()
            .any(|(w, k)| *w == what && k == key)
    }
}

#[async_trait]
impl PaymentGateway for Ledger {
    async fn charge(
        &self,
        _: &MemberId,
        _: Points,
        key: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError> {
        if !self.did("charge", key.as_str()) {
            self.moves
                .lock()
                .unwrap()
                .push(("charge", key.as_str().to_owned()));
        }
        Ok(PaymentReceipt {
            payment_id: format!("pay-{key}"),
        })
    }
    async fn refund(&self, charge: &ChargeRef) -> Result<(), PaymentError> {
        if !self.did("refund", charge.key.as_str()) {
            self.moves
                .lock()
                .unwrap()
                .push(("refund", charge.key.as_str().to_owned()));
        }
        Ok(())
    }
}

/// A library on `store`; with `immediate`, its in-process policies react within each command
/// (stored unsynced with it, one sync for all).
fn library(
    store: Arc<PowerLossStore>,
    ledger: &Arc<Ledger>,
    notices: &Arc<RecordingNotifier>,
    immediate: bool,
) -> lendkit::Library {
    let h = Harness::new();
    block_on(
        LibraryBuilder::new(store, Arc::new(InMemoryEventBus::new()), Arc::new(h.clock))
            .notifier(notices.clone())
            .payment(ledger.clone())
            .sole_writer(immediate)
            .immediate_reactions(immediate)
            .build(),
    )
    .unwrap()
}

/// The day's work: two members want the one copy; the saga confirms one and cancels and
/// refunds the other. With immediate reactions the second is refused before anything is
/// charged (the copy is already allocated), so the first member cancels instead, and that
/// cancellation is refunded. Returns the commands that were acknowledged: the rentals
/// reserved, and `cancel r-1` when the cancellation was.
fn the_day(lib: &lendkit::Library, immediate: bool) -> Vec<&'static str> {
    let mut acknowledged = Vec::new();
    for (member, rental) in [("m-1", "r-1"), ("m-2", "r-2")] {
        if reserve(lib, "b-1", member, rental).is_ok() {
            acknowledged.push(rental);
        }
    }
    if immediate && acknowledged.contains(&"r-1") {
        let canceled = block_on(lib.execute(
            Command::CancelRental {
                rental_id: "r-1".into(),
                reason: None,
            },
            &lendkit::Actor::member("m-1"),
        ));
        if canceled.is_ok() {
            acknowledged.push("cancel r-1");
        }
    }
    let _ = block_on(lib.settle());
    acknowledged
}

#[test]
fn no_host_acts_on_a_reaction_the_power_took() {
    power_cut_after_every_write(false);
}

/// The same day with the in-process policies reacting within each command: a reservation, its
/// allocation and its confirmation (or cancellation) are stored unsynced and synced once before
/// the member hears of it — so the power takes all of them or none of the acknowledged ones.
#[test]
fn no_host_acts_on_a_reaction_the_power_took_when_reactions_are_immediate() {
    power_cut_after_every_write(true);
}

fn power_cut_after_every_write(immediate: bool) {
    // How many writes the whole day takes, with the power on.
    let writes = {
        let store = Arc::new(PowerLossStore::new(None));
        let lib = library(
            store.clone(),
            &Arc::new(Ledger::default()),
            &Arc::new(RecordingNotifier::new()),
            immediate,
        );
        register(&lib, "b-1", 1, 5);
        join(&lib, "m-1");
        join(&lib, "m-2");
        let before = store.disk.lock().unwrap().writes.len();
        the_day(&lib, immediate);
        let events = all_events(&lib);
        assert_eq!(
            count(&events, "RentalConfirmed"),
            1,
            "one member gets the copy"
        );
        assert_eq!(
            count(&events, "PaymentRefunded"),
            1,
            "the other is refunded"
        );
        let after = store.disk.lock().unwrap().writes.len();
        after - before + 2
    };
    let mut lost_reactions = 0;
    for cut in 0..=writes {
        let ledger = Arc::new(Ledger::default());
        let notices = Arc::new(RecordingNotifier::new());
        let store = Arc::new(PowerLossStore::new(None));
        let acknowledged = {
            let lib = library(store.clone(), &ledger, &notices, immediate);
            register(&lib, "b-1", 1, 5);
            join(&lib, "m-1");
            join(&lib, "m-2");
            store.disk.lock().unwrap().power_left = Some(cut);
            the_day(&lib, immediate)
        };
        {
            let disk = store.disk.lock().unwrap();
            lost_reactions += disk.writes.len() - disk.synced;
        }
        // The reboot; then the librarian stocks a second copy before the saga has run again:
        // a lost cancellation of the second member would now go the other way.
        let rebooted = Arc::new(store.reboot());
        let lib = library(rebooted, &ledger, &notices, immediate);
        run(
            &lib,
            Command::AddCopies {
                book_id: "b-1".into(),
                copies: 1,
            },
            &librarian(),
        )
        .unwrap();
        settle(&lib);
        let events = all_events(&lib);
        let of = |rental: &str, kind: &str| {
            events
                .iter()
                .filter(|e| e.stream.id == rental && e.type_name() == kind)
                .count()
        };
        for (what, key) in ledger.moves.lock().unwrap().iter() {
            match *what {
                // A charge whose reservation could not be stored is paid back at once; no
                // rental ever existed.
                "refund" if of(key, "RentalReserved") == 0 => {}
                "refund" => {
                    assert_eq!(
                        of(key, "RentalCanceled"),
                        1,
                        "cut after {cut} writes: {key} was refunded by the host but is not canceled"
                    );
                    assert_eq!(
                        of(key, "PaymentRefunded"),
                        1,
                        "cut after {cut} writes: the refund of {key} is not recorded once"
                    );
                }
                // A charge whose reservation the power stopped was never acknowledged: the
                // member's retry (same rental id, same key) finds it at the host.
                _ => {}
            }
        }
        for done in acknowledged {
            if done == "cancel r-1" {
                assert_eq!(
                    of("r-1", "RentalCanceled"),
                    1,
                    "cut after {cut} writes: the acknowledged cancellation of r-1 was lost"
                );
                continue;
            }
            let rental = done;
            assert_eq!(
                of(rental, "RentalReserved"),
                1,
                "cut after {cut} writes: the acknowledged reservation {rental} was lost"
            );
        }
        for rental in ["r-1", "r-2"] {
            if of(rental, "RentalConfirmed") == 1 && of(rental, "RentalCanceled") == 0 {
                assert!(
                    ledger.did("charge", rental) && !ledger.did("refund", rental),
                    "cut after {cut} writes: {rental} is confirmed but its money went back"
                );
            }
        }
        for notice in notices.notices() {
            assert!(
                events
                    .iter()
                    .any(|e| e.event_id == notice.event_id && e.type_name() == notice.kind),
                "cut after {cut} writes: a notice told of {} {}, which the rebooted library does not have",
                notice.kind,
                notice.event_id
            );
        }
        // Every canceled rental was paid back once, in the log and at the host.
        for rental in ["r-1", "r-2"] {
            if of(rental, "RentalCanceled") == 1 {
                assert_eq!(
                    of(rental, "PaymentRefunded"),
                    1,
                    "cut after {cut} writes: canceled {rental} has no single refund"
                );
                assert!(
                    ledger.did("refund", rental),
                    "cut after {cut} writes: canceled {rental} was never refunded by the host"
                );
            }
        }
        assert!(
            events.iter().zip(1..).all(|(e, p)| e.position == p),
            "cut after {cut} writes: the rebooted log has a gap"
        );
    }
    assert!(
        lost_reactions > 0,
        "no cut ever caught an unsynced reaction: the test shows nothing"
    );
}
