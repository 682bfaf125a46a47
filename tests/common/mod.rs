//! Helpers shared by the integration tests: a library on in-memory adapters with a manual clock
//! and a recording notifier, and invariant checks over the whole log.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use lendkit::adapters::{InMemoryEventBus, InMemoryEventStore, ManualClock, RecordingNotifier};
use lendkit::catalog::BookEvent;
use lendkit::error::StoreError;
use lendkit::event::{Envelope, Event};
use lendkit::ids::{CommandId, StreamId};
use lendkit::points::PointsEvent;
use lendkit::ports::{CommandRecord, Commit, DeadLetter, EventStore};
use lendkit::rentals::RentalEvent;
use lendkit::{block_on, Actor, Command, Library, LibraryBuilder, Outcome, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// 2026-01-01T00:00:00Z.
pub const START: Timestamp = Timestamp(1_767_225_600_000);

pub struct Harness {
    pub store: Arc<InMemoryEventStore>,
    pub clock: ManualClock,
    pub notices: Arc<RecordingNotifier>,
}

impl Harness {
    pub fn new() -> Self {
        Harness {
            store: Arc::new(InMemoryEventStore::new()),
            clock: ManualClock::new(START),
            notices: Arc::new(RecordingNotifier::new()),
        }
    }

    pub fn builder(&self) -> LibraryBuilder {
        LibraryBuilder::new(
            self.store.clone(),
            Arc::new(InMemoryEventBus::new()),
            Arc::new(self.clock.clone()),
        )
        .notifier(self.notices.clone())
    }

    pub fn library(&self) -> Library {
        block_on(self.builder().build()).unwrap()
    }
}

/// An in-memory store with two hooks, for a test that needs the store to refuse something or
/// another writer to step in: `refuse` sees each commit first and may fail it; `interlope` sees
/// each stream about to be read and may hand a commit to store first (as if another library
/// appended just then). Everything else is the inner store's.
pub struct Hooked {
    pub inner: InMemoryEventStore,
    pub refuse: Refuse,
    pub interlope: Interlope,
}

/// [`Hooked::refuse`]: the error to fail a commit with, if any.
pub type Refuse = Box<dyn Fn(&Commit) -> Option<StoreError> + Send + Sync>;
/// [`Hooked::interlope`]: a commit to store before a stream is read, if any.
pub type Interlope = Box<dyn Fn(&StreamId) -> Option<Commit> + Send + Sync>;

impl Hooked {
    /// A store that refuses the commits `refuse` fails.
    pub fn refusing(
        refuse: impl Fn(&Commit) -> Option<StoreError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Hooked {
            inner: InMemoryEventStore::new(),
            refuse: Box::new(refuse),
            interlope: Box::new(|_| None),
        })
    }

    /// A store where, the first time `stream` is read after a commit is put in the returned
    /// slot, that commit is stored first.
    pub fn interloping(stream: StreamId) -> (Arc<Self>, Arc<Mutex<Option<Commit>>>) {
        let slot = Arc::new(Mutex::new(None::<Commit>));
        let pending = slot.clone();
        let store = Arc::new(Hooked {
            inner: InMemoryEventStore::new(),
            refuse: Box::new(|_| None),
            interlope: Box::new(move |s| {
                if *s == stream {
                    pending.lock().unwrap().take()
                } else {
                    None
                }
            }),
        });
        (store, slot)
    }

    /// A library on this store, an in-memory bus and the system clock.
    pub fn library(
        self: &Arc<Self>,
        wrap: impl FnOnce(LibraryBuilder) -> LibraryBuilder,
    ) -> Library {
        block_on(
            wrap(LibraryBuilder::new(
                self.clone(),
                Arc::new(InMemoryEventBus::new()),
                Arc::new(lendkit::adapters::SystemClock::new()),
            ))
            .build(),
        )
        .unwrap()
    }
}

#[async_trait::async_trait]
impl EventStore for Hooked {
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        if let Some(e) = (self.refuse)(&commit) {
            return Err(e);
        }
        self.inner.append(commit).await
    }
    async fn read_stream(&self, s: &StreamId) -> Result<Vec<Envelope>, StoreError> {
        self.read_stream_from(s, 0).await
    }
    async fn read_stream_from(
        &self,
        s: &StreamId,
        after: u64,
    ) -> Result<Vec<Envelope>, StoreError> {
        if let Some(commit) = (self.interlope)(s) {
            self.inner.append(commit).await?;
        }
        self.inner.read_stream_from(s, after).await
    }
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.inner.read_all(after, limit).await
    }
    async fn head(&self) -> Result<u64, StoreError> {
        self.inner.head().await
    }
    async fn command(&self, c: &CommandId) -> Result<Option<CommandRecord>, StoreError> {
        self.inner.command(c).await
    }
    async fn checkpoint(&self, c: &str) -> Result<Option<u64>, StoreError> {
        self.inner.checkpoint(c).await
    }
    async fn save_checkpoint(&self, c: &str, p: u64) -> Result<(), StoreError> {
        self.inner.save_checkpoint(c, p).await
    }
    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.checkpoints().await
    }
    async fn add_dead_letter(&self, l: DeadLetter) -> Result<(), StoreError> {
        self.inner.add_dead_letter(l).await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters().await
    }
    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.remove_dead_letter(id).await
    }
}

pub fn librarian() -> Actor {
    Actor::librarian("lib-1")
}

pub fn run(lib: &Library, command: Command, actor: &Actor) -> lendkit::Result<Outcome> {
    block_on(lib.execute(command, actor))
}

pub fn register(lib: &Library, book: &str, copies: u32, fee: u64) {
    run(
        lib,
        Command::RegisterBook {
            book_id: book.into(),
            title: format!("Title of {book}"),
            author: None,
            copies,
            fee,
            item_type: None,
            branch: None,
        },
        &librarian(),
    )
    .unwrap();
}

pub fn join(lib: &Library, member: &str) {
    run(
        lib,
        Command::JoinMember {
            member_id: member.into(),
            name: format!("Member {member}"),
            contact: None,
            group: None,
        },
        &librarian(),
    )
    .unwrap();
}

pub fn reserve(lib: &Library, book: &str, member: &str, rental: &str) -> lendkit::Result<Outcome> {
    run(
        lib,
        Command::ReserveBook {
            wait: None,
            book_id: book.into(),
            member_id: member.into(),
            rental_id: Some(rental.into()),
            delivery_address: None,
        },
        &Actor::member(member),
    )
}

pub fn settle(lib: &Library) {
    block_on(lib.settle()).unwrap();
}

pub fn all_events(lib: &Library) -> Vec<Envelope> {
    block_on(lib.events(1, usize::MAX)).unwrap()
}

pub fn count(events: &[Envelope], type_name: &str) -> usize {
    events.iter().filter(|e| e.type_name() == type_name).count()
}

/// Checks the invariants (every aggregate's, in its module doc) over the whole log, after settle. Panics with a reason.
pub fn check_invariants(lib: &Library) {
    let events = all_events(lib);
    // The log is gap-free and ordered; versions are gap-free per stream.
    let mut versions: HashMap<String, u64> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1, "positions have a gap at {i}");
        let v = versions.entry(e.stream.to_string()).or_insert(0);
        assert_eq!(e.version, *v + 1, "stream {} skips a version", e.stream);
        *v = e.version;
    }
    // Points: balance never negative, at most one charge and one refund per rental, refund = charge.
    let mut balance: BTreeMap<String, i128> = BTreeMap::new();
    let mut charged: HashMap<(String, String), u64> = HashMap::new();
    let mut refunded: HashMap<(String, String), u64> = HashMap::new();
    // Copies: allocated <= copies, a rental holds at most one copy.
    let mut copies: HashMap<String, i64> = HashMap::new();
    let mut held: HashMap<String, String> = HashMap::new();
    let mut canceled_paid: Vec<(String, String)> = Vec::new();
    let mut payment_refunded: HashMap<String, u32> = HashMap::new();
    // Hold queues, replayed as plain lists: positions are always 1..=n.
    let mut queues: HashMap<String, Vec<String>> = HashMap::new();
    let mut ended: HashMap<String, u32> = HashMap::new();
    let mut wanted_forever: HashMap<String, bool> = HashMap::new();
    // Numbered copies: each out to at most one rental, never a withdrawn one.
    let mut copy_holder: HashMap<(String, u32), String> = HashMap::new();
    let mut copy_of: HashMap<String, (String, u32)> = HashMap::new();
    let mut withdrawn: std::collections::HashSet<(String, u32)> = Default::default();
    let mut numbered: HashMap<String, u32> = HashMap::new();
    let mut hold_copy: HashMap<String, Option<u32>> = HashMap::new();
    for e in &events {
        match &e.event {
            Event::Book(BookEvent::HoldQueued {
                book,
                rental,
                position,
                not_needed_after,
                copy,
                ..
            }) => {
                let q = queues.entry(book.to_string()).or_default();
                assert!(!q.contains(&rental.to_string()), "{rental} queued twice");
                assert!(
                    !held.contains_key(rental.as_str()),
                    "{rental} queued while holding a copy"
                );
                q.push(rental.to_string());
                assert_eq!(
                    *position,
                    q.len() as u64,
                    "{rental} joined at a wrong position"
                );
                wanted_forever.insert(rental.to_string(), not_needed_after.is_none());
                hold_copy.insert(rental.to_string(), *copy);
            }
            Event::Book(BookEvent::HoldLeftQueue { book, rental, .. }) => {
                let q = queues.entry(book.to_string()).or_default();
                let before = q.len();
                q.retain(|r| r != rental.as_str());
                assert_eq!(q.len() + 1, before, "{rental} left a queue it was not in");
            }
            Event::Book(BookEvent::QueueReordered {
                book,
                rental,
                position,
            }) => {
                let q = queues.entry(book.to_string()).or_default();
                let at = q.iter().position(|r| r == rental.as_str());
                assert!(at.is_some(), "{rental} reordered while not waiting");
                assert!(
                    (1..=q.len() as u64).contains(position),
                    "position {position} outside 1..={}",
                    q.len()
                );
                q.retain(|r| r != rental.as_str());
                q.insert(*position as usize - 1, rental.to_string());
            }
            Event::Account(PointsEvent::AccountOpened { member, welcome }) => {
                balance.insert(member.to_string(), i128::from(welcome.0));
            }
            Event::Account(PointsEvent::PointsToppedUp { member, points }) => {
                *balance.get_mut(member.as_str()).unwrap() += i128::from(points.0)
            }
            Event::Account(PointsEvent::PointsCharged {
                member,
                rental,
                points,
            }) => {
                let b = balance.get_mut(member.as_str()).unwrap();
                *b -= i128::from(points.0);
                assert!(
                    *b >= 0,
                    "balance of {member} went negative at {}",
                    e.position
                );
                assert!(
                    charged
                        .insert((member.to_string(), rental.to_string()), points.0)
                        .is_none(),
                    "rental {rental} charged twice to {member}"
                );
            }
            Event::Account(PointsEvent::PointsRefunded {
                member,
                rental,
                points,
            }) => {
                *balance.get_mut(member.as_str()).unwrap() += i128::from(points.0);
                let key = (member.to_string(), rental.to_string());
                assert_eq!(
                    charged.get(&key),
                    Some(&points.0),
                    "refund of {rental} differs from its charge"
                );
                assert!(
                    refunded.insert(key, points.0).is_none(),
                    "rental {rental} refunded twice to {member}"
                );
            }
            Event::Book(BookEvent::BookRegistered {
                book, copies: n, ..
            }) => {
                numbered.insert(book.to_string(), *n);
                copies.insert(book.to_string(), i64::from(*n));
            }
            Event::Book(BookEvent::CopiesAdded { book, copies: n }) => {
                *copies.get_mut(book.as_str()).unwrap() += i64::from(*n);
                *numbered.entry(book.to_string()).or_default() += *n;
            }
            Event::Book(BookEvent::CopyWithdrawn { book, copy }) => {
                *copies.get_mut(book.as_str()).unwrap() -= 1;
                let key = (book.to_string(), *copy);
                assert!(
                    !copy_holder.contains_key(&key),
                    "copy {copy} of {book} withdrawn while out"
                );
                withdrawn.insert(key);
            }
            Event::Book(BookEvent::CopyAllocated {
                book, rental, copy, ..
            }) => {
                if let Some(copy) = copy {
                    let key = (book.to_string(), *copy);
                    assert!(
                        !withdrawn.contains(&key),
                        "withdrawn copy {copy} of {book} allocated"
                    );
                    if let Some(other) = copy_holder.insert(key.clone(), rental.to_string()) {
                        panic!("copy {copy} of {book} given to {rental} while {other} has it");
                    }
                    copy_of.insert(rental.to_string(), key);
                }
                if let Some(q) = queues.get_mut(book.as_str()) {
                    q.retain(|r| r != rental.as_str());
                }
                assert!(
                    held.insert(rental.to_string(), book.to_string()).is_none(),
                    "rental {rental} holds two copies"
                );
                let out = held.values().filter(|b| *b == book.as_str()).count() as i64;
                assert!(
                    out <= copies[book.as_str()],
                    "book {book} has more copies out than it owns"
                );
            }
            Event::Book(BookEvent::CopyReleased { rental, .. }) => {
                if let Some(key) = copy_of.remove(rental.as_str()) {
                    copy_holder.remove(&key);
                }
                assert!(
                    held.remove(rental.as_str()).is_some(),
                    "rental {rental} released a copy it did not hold"
                );
            }
            Event::Rental(RentalEvent::RentalCanceled { rental, member, .. }) => {
                canceled_paid.push((member.to_string(), rental.to_string()));
                *ended.entry(rental.to_string()).or_default() += 1;
                assert_eq!(ended[rental.as_str()], 1, "{rental} ended twice");
            }
            Event::Rental(
                RentalEvent::HoldPickupExpired { rental, .. }
                | RentalEvent::BookReturned { rental, .. },
            ) => {
                *ended.entry(rental.to_string()).or_default() += 1;
                assert_eq!(ended[rental.as_str()], 1, "{rental} ended twice");
            }
            Event::Rental(RentalEvent::PaymentRefunded { rental, .. }) => {
                *payment_refunded.entry(rental.to_string()).or_default() += 1
            }
            _ => {}
        }
    }
    for key in &canceled_paid {
        let rental = &key.1;
        assert!(
            refunded.contains_key(key),
            "canceled rental {rental} was not refunded"
        );
        assert_eq!(
            payment_refunded.get(rental),
            Some(&1),
            "canceled rental {rental} recorded its refund {:?} times",
            payment_refunded.get(rental)
        );
    }
    // The views agree with the log: points, availability.
    let (book_list, pages) = lib.views();
    for row in book_list.rows() {
        let out = held.values().filter(|b| **b == row.book_id).count() as i64;
        assert_eq!(
            i64::from(row.available),
            copies[&row.book_id] - out,
            "available of {}",
            row.book_id
        );
        assert_eq!(i64::from(row.copies), copies[&row.book_id]);
    }
    // A copy is never free while a hold that is always wanted waits for it: any copy for a
    // title-level hold, its own for a copy-level one.
    for (book, q) in &queues {
        let numbered = numbered.get(book).copied().unwrap_or(0);
        let free: Vec<u32> = (1..=numbered)
            .filter(|c| {
                let key = (book.clone(), *c);
                !copy_holder.contains_key(&key) && !withdrawn.contains(&key)
            })
            .collect();
        for r in q.iter().filter(|r| wanted_forever[*r]) {
            match hold_copy.get(r).copied().flatten() {
                None => assert!(
                    free.is_empty(),
                    "copies {free:?} of {book} are free while {r} waits"
                ),
                Some(c) => assert!(
                    !free.contains(&c),
                    "copy {c} of {book} is free while {r} waits for it"
                ),
            }
        }
    }
    // The member pages show each waiting hold at its place in line.
    for page in pages.pages() {
        let page = pages.page(&page.member_id).unwrap();
        for row in &page.rentals {
            let q = queues.get(&row.book_id);
            let at = q.and_then(|q| q.iter().position(|r| *r == row.rental_id));
            let at = at.filter(|_| row.status == "waiting");
            assert_eq!(
                row.position,
                at.map(|i| i as u64 + 1),
                "position of {} ({})",
                row.rental_id,
                row.status
            );
            let queued = q.is_some_and(|q| q.contains(&row.rental_id));
            assert_eq!(row.status == "waiting", queued, "{row:?}");
        }
    }
    for page in pages.pages() {
        assert_eq!(
            i128::from(page.points),
            balance[&page.member_id],
            "points of {}",
            page.member_id
        );
    }
    // Every view equals a fresh rebuild from the log.
    let rebuilt = block_on(lib.rebuild_views()).unwrap();
    assert_eq!(rebuilt.0, book_list, "book list differs from a rebuild");
    assert_eq!(rebuilt.1, pages, "member pages differ from a rebuild");
}

/// A small deterministic random number generator (xorshift), so no extra crate is needed.
pub struct Rng(pub u64);

impl Rng {
    /// A number in `0..n`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The files of a library folder with their sizes, for a failure message.
pub fn listing(db: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(db)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    format!(
                        "{} ({} bytes)",
                        e.file_name().to_string_lossy(),
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The log lines written while `f` runs on this thread, at every level.
pub fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}
