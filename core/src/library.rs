//! The application service: runs commands, takes payment, and drives the consumers (policies and views).
//!
//! ## The flow of a command
//! 1. [`Command::validate`] checks the input.
//! 2. If the target stream already applied this command id, the original events are returned.
//! 3. The target aggregate (and, for a cancellation or a delivery, the other side's stream) is
//!    loaded from the store and the aggregate decides, purely.
//! 4. For `reserve_book` only: the fee is charged through the [`PaymentGateway`], behind the
//!    [`CircuitBreaker`]; no payment, no rental. If storing then fails, the charge is refunded.
//! 5. The events are appended with the version the decision was made on (and a version guard
//!    on any other stream it read); on a conflict the command is decided again on fresh state.
//! 6. Committed events are relayed, in position order, to the [`EventBus`].
//!
//! Consumers — the [`policies`](crate::policies) and the [`views`](crate::views) — run when
//! [`Library::settle`] (or [`Library::run_pending`]) is called: the core has no threads. The
//! `lendkit` facade crate can drive them in the background.

use crate::aggregate::{Aggregate, Context, Rules};
use crate::catalog::Book;
use crate::command::{Command, Outcome};
use crate::deliveries::{Delivery, DeliveryCommand, DeliveryStatus};
use crate::error::{Error, ErrorCode, PaymentError, Result, StoreError};
use crate::event::{Envelope, Event};
use crate::ids::{Actor, BookId, CommandId, MemberId, Points, RentalId, StreamId, StreamKind};
use crate::members::{Member, MemberCommand};
use crate::payment::{BreakerConfig, BreakerState, CircuitBreaker};
use crate::points::{PointAccount, PointsCommand};
use crate::policies::{Policy, Reaction, POLICIES};
use crate::ports::{
    ChargeRef, Clock, DeadLetter, EventBus, EventStore, Notice, Notifier, PaymentGateway,
    PaymentReceipt, StreamAppend,
};
use crate::rentals::{Rental, RentalCommand, RentalError, RentalStatus};
use crate::views::{BookList, BookRow, MemberPage, MemberPages, View};
use async_trait::async_trait;
use futures::future::{select, Either};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// How many times a command is re-decided after losing a version race before `CONFLICT` is returned.
const MAX_CONFLICT_RETRIES: u32 = 16;
/// How many events a consumer takes from the bus at a time.
const BATCH: usize = 256;
/// The most workers one policy may run with.
const MAX_WORKERS: u32 = 64;
/// The longest wait between two tries of a failing event.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(300);

/// Who, under which id, about which case, because of what.
#[derive(Debug, Clone)]
struct Meta {
    actor: Actor,
    command_id: CommandId,
    correlation_id: String,
    causation_id: String,
}

/// The store, the clock and the relay to the bus: what the library and the default gateway share.
pub(crate) struct Engine {
    store: Arc<dyn EventStore>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    rules: Rules,
    /// The last position handed to the bus.
    relayed: futures::lock::Mutex<u64>,
    /// The same, readable without waiting.
    relayed_at: std::sync::atomic::AtomicU64,
    /// Events this process stored and has not relayed yet, by position.
    recent: Mutex<std::collections::BTreeMap<u64, Arc<Envelope>>>,
    /// Called after new events were handed to the bus (a background runner wakes up on it).
    on_commit: Option<CommitHook>,
    /// Folded aggregates by stream, with the version they are folded to. Loading reads only
    /// the newer events, so a long stream costs no more to load than a short one.
    states: Mutex<StateCache>,
}

/// Folded aggregates by stream: (version, state).
type StateCache = HashMap<StreamId, (u64, Box<dyn std::any::Any + Send + Sync>)>;

/// Streams whose folded state is kept in memory at most; past it the cache starts over.
const STATE_CACHE: usize = 200_000;

/// A function called after newly committed events were handed to the bus.
pub type CommitHook = Arc<dyn Fn() + Send + Sync>;

impl Engine {
    /// The aggregate in `stream`, folded to its newest version. The folded state is taken out of
    /// the cache (so no copy is made) and only events newer than it are read; give it back with
    /// [`keep`](Engine::keep) once done. (A concurrent loader of the same stream meanwhile folds
    /// from the start: slower, equally correct.)
    async fn load<A: Aggregate>(&self, stream: &StreamId) -> Result<(A, u64)> {
        let cached = self
            .states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(stream)
            .and_then(|(v, any)| any.downcast::<A>().ok().map(|a| (*a, v)));
        let (mut state, mut version) = cached.unwrap_or_default();
        for e in self.store.read_stream_from(stream, version).await? {
            if let Some(own) = A::own_event(&e.event) {
                state.apply(own);
            }
            version = e.version;
        }
        Ok((state, version))
    }

    /// Puts a folded aggregate back in the cache, unless a newer fold is already there.
    fn keep<A: Aggregate>(&self, stream: &StreamId, state: A, version: u64) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if states.len() >= STATE_CACHE {
            states.clear();
        }
        if !matches!(states.get(stream), Some((v, _)) if *v >= version) {
            states.insert(stream.clone(), (version, Box::new(state)));
        }
    }

    fn context(&self, meta: &Meta) -> Context {
        Context {
            actor: meta.actor.clone(),
            now: self.clock.now(),
            command_id: meta.command_id.clone(),
            rules: self.rules.clone(),
        }
    }

    fn envelopes(
        stream: &StreamId,
        version: u64,
        meta: &Meta,
        ctx: &Context,
        events: Vec<Event>,
    ) -> Vec<Envelope> {
        events
            .into_iter()
            .zip(version + 1..)
            .map(|(event, v)| Envelope {
                event_id: Envelope::id_for(stream, v),
                stream: stream.clone(),
                version: v,
                position: 0,
                occurred_at: ctx.now,
                correlation_id: meta.correlation_id.clone(),
                causation_id: meta.causation_id.clone(),
                command_id: meta.command_id.clone(),
                actor: meta.actor.clone(),
                event,
            })
            .collect()
    }

    /// Decides `command` on the aggregate in `stream` and stores the result. `guard` names another
    /// stream the decision reads (its events are passed to `command`); its version is checked in
    /// the same append. Re-sent command ids return the original events.
    async fn execute<A: Aggregate>(
        &self,
        stream: &StreamId,
        meta: &Meta,
        guard: Option<&StreamId>,
        command: impl Fn(&[Envelope]) -> A::Command,
    ) -> Result<Vec<Envelope>> {
        let mut attempt = 0;
        loop {
            if let Some(done) = self.store.command_events(stream, &meta.command_id).await? {
                return Ok(done);
            }
            let (mut state, version) = self.load::<A>(stream).await?;
            let (guard_events, guard_version) = match guard {
                Some(g) => {
                    let events = self.store.read_stream(g).await?;
                    let v = events.last().map_or(0, |e| e.version);
                    (events, v)
                }
                None => (Vec::new(), 0),
            };
            let ctx = self.context(meta);
            let decided = match state.decide(&command(&guard_events), &ctx) {
                Ok(decided) => decided,
                Err(e) => {
                    self.keep(stream, state, version);
                    return Err(e.into());
                }
            };
            if decided.is_empty() {
                self.keep(stream, state, version);
                return Ok(Vec::new());
            }
            for e in &decided {
                state.apply(e);
            }
            let new_version = version + decided.len() as u64;
            let events = decided.into_iter().map(Into::into).collect();
            let mut appends = vec![StreamAppend {
                stream: stream.clone(),
                expected_version: version,
                command_id: meta.command_id.clone(),
                events: Self::envelopes(stream, version, meta, &ctx, events),
            }];
            if let Some(g) = guard {
                appends.push(StreamAppend {
                    stream: g.clone(),
                    expected_version: guard_version,
                    command_id: meta.command_id.clone(),
                    events: vec![],
                });
            }
            match self.store.append(appends).await {
                Ok(stored) => {
                    self.keep(stream, state, new_version);
                    self.relay_stored(&stored).await;
                    return Ok(stored);
                }
                Err(StoreError::Conflict { .. }) if attempt + 1 < MAX_CONFLICT_RETRIES => {
                    attempt += 1
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Hands every committed event not yet relayed to the bus, in position order.
    async fn relay(&self) -> Result<()> {
        let mut relayed = self.relayed.lock().await;
        loop {
            // What this process just appended is relayed from memory; anything else (a gap left
            // by a writer that has not noted its events yet, or what was stored before this
            // library opened) is read back from the store.
            let remembered = {
                let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
                while let Some(entry) = recent.first_entry() {
                    if *entry.key() > *relayed {
                        break;
                    }
                    entry.remove();
                }
                let mut batch = Vec::new();
                while let Some(e) = recent.remove(&(*relayed + 1 + batch.len() as u64)) {
                    batch.push(e);
                    if batch.len() >= BATCH {
                        break;
                    }
                }
                batch
            };
            let batch: Vec<Arc<Envelope>> = if remembered.is_empty() {
                self.store
                    .read_all(*relayed, BATCH)
                    .await?
                    .into_iter()
                    .map(Arc::new)
                    .collect()
            } else {
                remembered
            };
            let Some(last) = batch.last().map(|e| e.position) else {
                return Ok(());
            };
            self.bus
                .publish(&batch)
                .await
                .map_err(|e| Error::Storage(StoreError::Backend(e.to_string())))?;
            *relayed = last;
            self.relayed_at.store(last, Ordering::SeqCst);
            if let Some(hook) = &self.on_commit {
                hook();
            }
        }
    }

    /// Notes freshly stored events and relays. The events are stored either way, so a failing
    /// bus must not turn the command into an error; the next [`Library::settle`] relays again.
    async fn relay_stored(&self, stored: &[Envelope]) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            for e in stored {
                recent.insert(e.position, Arc::new(e.clone()));
            }
        }
        let _ = self.relay().await;
    }
}

/// The default payment gateway: charges and refunds the member's [`PointAccount`] in the same store.
struct PointsGateway {
    engine: Arc<Engine>,
}

impl PointsGateway {
    fn meta(key: &RentalId, what: &str) -> Meta {
        Meta {
            actor: Actor::System,
            command_id: CommandId(format!("{what}:{key}")),
            correlation_id: key.to_string(),
            causation_id: format!("{what}:{key}"),
        }
    }
}

#[async_trait]
impl PaymentGateway for PointsGateway {
    async fn charge(
        &self,
        member: &MemberId,
        amount: Points,
        key: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError> {
        let stream = StreamId::new(StreamKind::Account, member.as_str());
        let cmd = PointsCommand::ChargePoints {
            member: member.clone(),
            rental: key.clone(),
            points: amount,
        };
        match self
            .engine
            .execute::<PointAccount>(&stream, &Self::meta(key, "charge"), None, |_| cmd.clone())
            .await
        {
            Ok(_) => Ok(PaymentReceipt {
                payment_id: format!("points:{member}:{key}"),
            }),
            Err(Error::Points(crate::points::PointsError::InsufficientPoints {
                member,
                balance,
                needed,
            })) => Err(PaymentError::InsufficientPoints {
                member: member.to_string(),
                balance,
                needed,
            }),
            Err(Error::Points(crate::points::PointsError::NoAccount(member))) => {
                Err(PaymentError::NoAccount {
                    member: member.to_string(),
                })
            }
            Err(e) => Err(PaymentError::Unavailable(e.to_string())),
        }
    }

    async fn refund(&self, charge: &ChargeRef) -> Result<(), PaymentError> {
        let stream = StreamId::new(StreamKind::Account, charge.member.as_str());
        let cmd = PointsCommand::RefundPoints {
            member: charge.member.clone(),
            rental: charge.key.clone(),
        };
        self.engine
            .execute::<PointAccount>(&stream, &Self::meta(&charge.key, "refund"), None, |_| {
                cmd.clone()
            })
            .await
            .map(drop)
            .map_err(|e| PaymentError::Unavailable(e.to_string()))
    }
}

/// A notifier that drops every notice (the default when the host gives none).
struct NoNotices;

#[async_trait]
impl Notifier for NoNotices {
    async fn send(&self, _: &Notice) -> Result<(), crate::error::NotifyError> {
        Ok(())
    }
}

/// What a consumer is.
#[derive(Clone, Copy)]
enum Kind {
    Policy(&'static Policy),
    BookList,
    MemberPages,
}

struct Worker {
    checkpoint: u64,
    /// Failed tries of the event after the checkpoint.
    attempts: u32,
    /// Tries of that event that met a payment outage (these wait, but never dead-letter it).
    outages: u32,
    /// Not before this time is that event tried again.
    retry_at: Option<crate::ids::Timestamp>,
}

/// Why a consumer could not handle an event.
struct Failure {
    message: String,
    /// Set when the call was refused without being made (the breaker is open): wait this long, and do not count it as an attempt.
    wait: Option<std::time::Duration>,
    /// A payment outage: wait and retry, but never give up on it (money is owed).
    outage: bool,
}

struct Consumer {
    name: &'static str,
    kind: Kind,
    workers: Vec<futures::lock::Mutex<Worker>>,
    /// How many workers the consumer runs with.
    count: usize,
    paused: AtomicBool,
}

impl Consumer {
    /// Policies keep durable checkpoints; views are rebuilt from the log when a library opens.
    fn durable(&self) -> bool {
        matches!(self.kind, Kind::Policy(_))
    }
    /// The durable name of one worker's checkpoint: `catalog/3#1` is worker 1 of 3. (The
    /// count is part of the name: with another count, streams fall to other workers.)
    fn checkpoint_key(&self, worker: usize) -> String {
        format!("{}/{}#{worker}", self.name, self.count)
    }
}

/// A consumer's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerStatus {
    /// Its name (`catalog`, `book_list`, …).
    pub name: String,
    /// Whether it is paused.
    pub paused: bool,
    /// How many workers share its events.
    pub workers: u32,
    /// The lowest position all its workers have handled up to.
    pub checkpoint: u64,
}

/// A function that wraps the default gateway in another.
type GatewayWrapper = Box<dyn FnOnce(Arc<dyn PaymentGateway>) -> Arc<dyn PaymentGateway> + Send>;

enum PaymentChoice {
    Points,
    Custom(Arc<dyn PaymentGateway>),
    Wrapped(GatewayWrapper),
}

/// Configures and opens a [`Library`] on a store, a bus and a clock.
pub struct LibraryBuilder {
    store: Arc<dyn EventStore>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    notifier: Arc<dyn Notifier>,
    payment: PaymentChoice,
    rules: Rules,
    breaker: BreakerConfig,
    workers: HashMap<String, u32>,
    max_attempts: u32,
    retry_backoff: std::time::Duration,
    on_commit: Option<CommitHook>,
}

impl LibraryBuilder {
    /// A builder with the default rules, the points gateway, no notices and a default breaker.
    pub fn new(store: Arc<dyn EventStore>, bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>) -> Self {
        LibraryBuilder {
            store,
            bus,
            clock,
            notifier: Arc::new(NoNotices),
            payment: PaymentChoice::Points,
            rules: Rules::default(),
            breaker: BreakerConfig::default(),
            workers: HashMap::new(),
            max_attempts: 5,
            retry_backoff: std::time::Duration::from_secs(1),
            on_commit: None,
        }
    }

    /// The wait before a failing event is tried again; it doubles with each failure (default 1 s, at most 5 min).
    pub fn retry_backoff(mut self, backoff: std::time::Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Calls `hook` whenever newly committed events have been handed to the bus, so a
    /// background runner can wake up and [`settle`](Library::settle). Keep it quick.
    pub fn on_commit(mut self, hook: CommitHook) -> Self {
        self.on_commit = Some(hook);
        self
    }

    /// Sends notices through `notifier`.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Takes payment through `gateway` instead of the members' point accounts.
    pub fn payment(mut self, gateway: Arc<dyn PaymentGateway>) -> Self {
        self.payment = PaymentChoice::Custom(gateway);
        self
    }

    /// Wraps the default points gateway (to add logging, or to simulate outages in tests).
    pub fn wrap_payment(
        mut self,
        wrap: impl FnOnce(Arc<dyn PaymentGateway>) -> Arc<dyn PaymentGateway> + Send + 'static,
    ) -> Self {
        self.payment = PaymentChoice::Wrapped(Box::new(wrap));
        self
    }

    /// The library's rules (welcome points, loan length, renewals).
    pub fn rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// The circuit breaker's thresholds.
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Runs the policy `consumer` with `workers` workers (1 to 64) sharing its events (by stream). Views always run with one.
    pub fn workers(mut self, consumer: &str, workers: u32) -> Self {
        self.workers.insert(consumer.to_owned(), workers);
        self
    }

    /// How many times a consumer tries an event before moving it to the dead letters (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Opens the library: registers every consumer with the bus, loads the policies' checkpoints,
    /// and relays the log from the oldest checkpoint so consumers that were behind catch up.
    pub async fn build(self) -> Result<Library> {
        for (name, n) in &self.workers {
            if !(1..=MAX_WORKERS).contains(n) {
                return Err(Error::InvalidInput(format!(
                    "policy {name:?} asks for {n} workers; between 1 and {MAX_WORKERS} are allowed"
                )));
            }
            if Policy::named(name).is_none() {
                return Err(Error::InvalidInput(format!(
                    "no policy named {name:?}; policies are {}",
                    policy_names()
                )));
            }
        }
        let engine = Arc::new(Engine {
            store: self.store,
            bus: self.bus,
            clock: self.clock,
            rules: self.rules,
            relayed: futures::lock::Mutex::new(0),
            relayed_at: std::sync::atomic::AtomicU64::new(0),
            recent: Mutex::new(std::collections::BTreeMap::new()),
            on_commit: self.on_commit,
            states: Mutex::new(HashMap::new()),
        });
        let gateway: Arc<dyn PaymentGateway> = match self.payment {
            PaymentChoice::Points => Arc::new(PointsGateway {
                engine: Arc::clone(&engine),
            }),
            PaymentChoice::Custom(g) => g,
            PaymentChoice::Wrapped(wrap) => wrap(Arc::new(PointsGateway {
                engine: Arc::clone(&engine),
            })),
        };
        let mut kinds: Vec<(&'static str, Kind, u32)> = POLICIES
            .iter()
            .map(|p| {
                (
                    p.name,
                    Kind::Policy(p),
                    self.workers.get(p.name).copied().unwrap_or(1),
                )
            })
            .collect();
        kinds.push((BookList::NAME, Kind::BookList, 1));
        kinds.push((MemberPages::NAME, Kind::MemberPages, 1));
        let mut consumers = Vec::new();
        // The views are rebuilt straight from the log (not through the bus), so opening a long
        // log does not queue every event for every consumer.
        let (book_list, member_pages) = fold_views(engine.store.as_ref()).await?;
        let views_at = book_list.position();
        let mut oldest = u64::MAX;
        for (name, kind, n) in kinds {
            engine
                .bus
                .join(name, n)
                .await
                .map_err(|e| Error::Storage(StoreError::Backend(e.to_string())))?;
            let mut c = Consumer {
                name,
                kind,
                workers: Vec::with_capacity(n as usize),
                count: n as usize,
                paused: AtomicBool::new(false),
            };
            for w in 0..n as usize {
                let checkpoint = if c.durable() {
                    engine
                        .store
                        .checkpoint(&c.checkpoint_key(w))
                        .await?
                        .unwrap_or(0)
                } else {
                    views_at
                };
                oldest = oldest.min(checkpoint);
                c.workers.push(futures::lock::Mutex::new(Worker {
                    checkpoint,
                    attempts: 0,
                    outages: 0,
                    retry_at: None,
                }));
            }
            consumers.push(c);
        }
        let start = if oldest == u64::MAX { 0 } else { oldest };
        *engine.relayed.lock().await = start;
        engine.relayed_at.store(start, Ordering::SeqCst);
        engine.relay().await?;
        Ok(Library {
            engine,
            gateway,
            breaker: CircuitBreaker::new(self.breaker),
            notifier: self.notifier,
            consumers,
            book_list: Mutex::new(book_list),
            member_pages: Mutex::new(member_pages),
            max_attempts: self.max_attempts,
            retry_backoff: self.retry_backoff,
        })
    }
}

/// Both views folded from the whole log, read in batches.
async fn fold_views(store: &dyn EventStore) -> Result<(BookList, MemberPages)> {
    let mut book_list = BookList::default();
    let mut pages = MemberPages::default();
    let mut after = 0;
    loop {
        let batch = store.read_all(after, 4096).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for e in &batch {
            book_list.apply(e);
            pages.apply(e);
        }
    }
    Ok((book_list, pages))
}

fn policy_names() -> String {
    POLICIES
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A lending library: the rules, running on the ports it was built with.
///
/// Every command returns the events it stored or a typed [`Error`]; nothing partial is ever
/// stored. Reactions (copy allocation, confirmation, refunds, deliveries, notices) and the
/// views follow when [`settle`](Library::settle) runs the consumers.
pub struct Library {
    engine: Arc<Engine>,
    gateway: Arc<dyn PaymentGateway>,
    breaker: CircuitBreaker,
    notifier: Arc<dyn Notifier>,
    consumers: Vec<Consumer>,
    book_list: Mutex<BookList>,
    member_pages: Mutex<MemberPages>,
    max_attempts: u32,
    retry_backoff: std::time::Duration,
}

impl Library {
    /// Starts configuring a library.
    pub fn builder(
        store: Arc<dyn EventStore>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> LibraryBuilder {
        LibraryBuilder::new(store, bus, clock)
    }

    /// The rules this library runs with.
    pub fn rules(&self) -> &Rules {
        &self.engine.rules
    }

    /// Runs a command as `actor` under a fresh command id.
    pub async fn execute(&self, command: Command, actor: &Actor) -> Result<Outcome> {
        self.execute_with_id(command, actor, None).await
    }

    /// Runs a command as `actor`. A `command_id` that the target stream already applied returns
    /// the original events and changes nothing: that is what makes a retry after a timeout safe.
    pub async fn execute_with_id(
        &self,
        command: Command,
        actor: &Actor,
        command_id: Option<CommandId>,
    ) -> Result<Outcome> {
        command.validate()?;
        if let Some(id) = &command_id {
            crate::ids::validate_id("command_id", id.as_str()).map_err(Error::InvalidInput)?;
        }
        let command_id = command_id.unwrap_or_else(CommandId::generate);
        let meta = |correlation: &str| Meta {
            actor: actor.clone(),
            command_id: command_id.clone(),
            correlation_id: correlation.to_owned(),
            causation_id: command_id.to_string(),
        };
        let outcome = |rental_id: Option<RentalId>, events: Vec<Envelope>| Outcome {
            command_id: command_id.clone(),
            rental_id,
            events,
        };
        match command {
            Command::RegisterBook {
                book_id,
                title,
                author,
                copies,
                fee,
            } => {
                let stream = StreamId::new(StreamKind::Book, &book_id);
                let cmd = crate::catalog::BookCommand::RegisterBook {
                    book: BookId(book_id.clone()),
                    title,
                    author,
                    copies,
                    fee: Points(fee),
                };
                let events = self
                    .engine
                    .execute::<Book>(&stream, &meta(&book_id), None, |_| cmd.clone())
                    .await?;
                Ok(outcome(None, events))
            }
            Command::AddCopies { book_id, copies } => {
                let stream = StreamId::new(StreamKind::Book, &book_id);
                let cmd = crate::catalog::BookCommand::AddCopies {
                    book: BookId(book_id.clone()),
                    copies,
                };
                let events = self
                    .engine
                    .execute::<Book>(&stream, &meta(&book_id), None, |_| cmd.clone())
                    .await?;
                Ok(outcome(None, events))
            }
            Command::JoinMember {
                member_id,
                name,
                contact,
            } => {
                let events = self
                    .join_member(
                        MemberId(member_id.clone()),
                        name,
                        contact,
                        &meta(&member_id),
                    )
                    .await?;
                Ok(outcome(None, events))
            }
            Command::TopUp { member_id, points } => {
                let stream = StreamId::new(StreamKind::Account, &member_id);
                let cmd = PointsCommand::TopUp {
                    member: MemberId(member_id.clone()),
                    points: Points(points),
                };
                let events = self
                    .engine
                    .execute::<PointAccount>(&stream, &meta(&member_id), None, |_| cmd.clone())
                    .await?;
                Ok(outcome(None, events))
            }
            Command::ReserveBook {
                book_id,
                member_id,
                rental_id,
                delivery_address,
            } => {
                let rental = rental_id.map(RentalId).unwrap_or_else(RentalId::generate);
                let events = self
                    .reserve_book(
                        BookId(book_id),
                        MemberId(member_id),
                        rental.clone(),
                        delivery_address,
                        &meta(rental.as_str()),
                    )
                    .await?;
                Ok(outcome(Some(rental), events))
            }
            Command::CancelRental { rental_id, reason } => {
                let reason = reason.unwrap_or_else(|| match actor {
                    Actor::Member(_) => "canceled by member".into(),
                    Actor::Librarian(_) => "canceled by librarian".into(),
                    Actor::System => "canceled".into(),
                });
                let rental = RentalId(rental_id);
                let events = self
                    .cancel_rental(&rental, reason, &meta(rental.as_str()))
                    .await?;
                Ok(outcome(Some(rental), events))
            }
            Command::MarkDelivered { rental_id } => {
                let rental = RentalId(rental_id);
                let stream = StreamId::new(StreamKind::Delivery, rental.as_str());
                let rental_stream = StreamId::new(StreamKind::Rental, rental.as_str());
                let events = self
                    .engine
                    .execute::<Delivery>(
                        &stream,
                        &meta(rental.as_str()),
                        Some(&rental_stream),
                        |rental_events| DeliveryCommand::MarkDelivered {
                            rental: rental.clone(),
                            rental_canceled: Rental::fold(rental_events.iter().map(|e| &e.event))
                                .status
                                == RentalStatus::Canceled,
                        },
                    )
                    .await?;
                Ok(outcome(Some(rental), events))
            }
            Command::StartLoan { rental_id } => {
                self.rental_step(
                    RentalId(rental_id),
                    |rental| RentalCommand::StartLoan { rental },
                    &meta,
                    &outcome,
                )
                .await
            }
            Command::ReturnBook { rental_id } => {
                self.rental_step(
                    RentalId(rental_id),
                    |rental| RentalCommand::ReturnBook { rental },
                    &meta,
                    &outcome,
                )
                .await
            }
            Command::RenewLoan { rental_id } => {
                self.rental_step(
                    RentalId(rental_id),
                    |rental| RentalCommand::RenewLoan { rental },
                    &meta,
                    &outcome,
                )
                .await
            }
        }
    }

    /// Runs many commands, one after another, in order; each gets its own outcome or error, and
    /// one refusal does not stop the rest. The same as calling [`execute_with_id`](Library::execute_with_id)
    /// for each — but a binding crosses the language boundary once for the whole batch.
    pub async fn execute_batch(
        &self,
        commands: Vec<(Command, Actor, Option<CommandId>)>,
    ) -> Vec<Result<Outcome>> {
        let mut results = Vec::with_capacity(commands.len());
        for (command, actor, command_id) in commands {
            results.push(self.execute_with_id(command, &actor, command_id).await);
        }
        results
    }

    async fn rental_step(
        &self,
        rental: RentalId,
        make: impl Fn(RentalId) -> RentalCommand,
        meta: &(dyn Fn(&str) -> Meta + Sync),
        outcome: &(dyn Fn(Option<RentalId>, Vec<Envelope>) -> Outcome + Sync),
    ) -> Result<Outcome> {
        let stream = StreamId::new(StreamKind::Rental, rental.as_str());
        let cmd = make(rental.clone());
        let events = self
            .engine
            .execute::<Rental>(&stream, &meta(rental.as_str()), None, |_| cmd.clone())
            .await?;
        Ok(outcome(Some(rental), events))
    }

    /// Joins a member and opens their point account in one atomic append.
    async fn join_member(
        &self,
        member: MemberId,
        name: String,
        contact: Option<String>,
        meta: &Meta,
    ) -> Result<Vec<Envelope>> {
        let member_stream = StreamId::new(StreamKind::Member, member.as_str());
        let account_stream = StreamId::new(StreamKind::Account, member.as_str());
        let join = MemberCommand::JoinMember {
            member: member.clone(),
            name,
            contact,
        };
        let open = PointsCommand::OpenAccount {
            member: member.clone(),
            welcome: Points(self.engine.rules.welcome_points),
        };
        let mut attempt = 0;
        loop {
            if let Some(done) = self
                .engine
                .store
                .command_events(&member_stream, &meta.command_id)
                .await?
            {
                let mut all = done;
                all.extend(
                    self.engine
                        .store
                        .command_events(&account_stream, &meta.command_id)
                        .await?
                        .unwrap_or_default(),
                );
                all.sort_by_key(|e| e.position);
                return Ok(all);
            }
            let (m, mv) = self.engine.load::<Member>(&member_stream).await?;
            let (a, av) = self.engine.load::<PointAccount>(&account_stream).await?;
            let ctx = self.engine.context(meta);
            let joined = m
                .decide(&join, &ctx)?
                .into_iter()
                .map(Event::from)
                .collect();
            let opened = a
                .decide(&open, &ctx)?
                .into_iter()
                .map(Event::from)
                .collect();
            let appends = vec![
                StreamAppend {
                    stream: member_stream.clone(),
                    expected_version: mv,
                    command_id: meta.command_id.clone(),
                    events: Engine::envelopes(&member_stream, mv, meta, &ctx, joined),
                },
                StreamAppend {
                    stream: account_stream.clone(),
                    expected_version: av,
                    command_id: meta.command_id.clone(),
                    events: Engine::envelopes(&account_stream, av, meta, &ctx, opened),
                },
            ];
            match self.engine.store.append(appends).await {
                Ok(stored) => {
                    self.engine.relay_stored(&stored).await;
                    return Ok(stored);
                }
                Err(StoreError::Conflict { .. }) if attempt + 1 < MAX_CONFLICT_RETRIES => {
                    attempt += 1
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The synchronous step: check, charge, then store the rental; refund if storing fails.
    async fn reserve_book(
        &self,
        book: BookId,
        member: MemberId,
        rental: RentalId,
        delivery_address: Option<String>,
        meta: &Meta,
    ) -> Result<Vec<Envelope>> {
        let stream = StreamId::new(StreamKind::Rental, rental.as_str());
        if let Some(done) = self
            .engine
            .store
            .command_events(&stream, &meta.command_id)
            .await?
        {
            return Ok(done);
        }
        let book_stream = StreamId::new(StreamKind::Book, book.as_str());
        let (b, book_version) = self.engine.load::<Book>(&book_stream).await?;
        let (exists, fee, availability) = (b.exists(), b.fee, b.check_available(&book));
        self.engine.keep(&book_stream, b, book_version);
        if !exists {
            return Err(Error::not_found(
                ErrorCode::BookNotFound,
                "book",
                book.as_str(),
            ));
        }
        let (m, _) = self
            .engine
            .load::<Member>(&StreamId::new(StreamKind::Member, member.as_str()))
            .await?;
        if m.id.is_none() {
            return Err(Error::not_found(
                ErrorCode::MemberNotFound,
                "member",
                member.as_str(),
            ));
        }
        let (state, version) = self.engine.load::<Rental>(&stream).await?;
        let ctx = self.engine.context(meta);
        let mut cmd = RentalCommand::ReserveBook {
            rental: rental.clone(),
            member: member.clone(),
            book: book.clone(),
            fee,
            payment_id: String::new(),
            delivery_address,
        };
        // Decide once before charging: who may reserve, and whether the rental id is free.
        state.decide(&cmd, &ctx)?;
        availability?;
        let receipt = self
            .call_gateway(self.gateway.charge(&member, fee, &rental))
            .await?;
        let payment_id = receipt.payment_id;
        if let RentalCommand::ReserveBook { payment_id: id, .. } = &mut cmd {
            id.clone_from(&payment_id);
        }
        let events = state
            .decide(&cmd, &ctx)?
            .into_iter()
            .map(Event::from)
            .collect();
        let append = StreamAppend {
            stream: stream.clone(),
            expected_version: version,
            command_id: meta.command_id.clone(),
            events: Engine::envelopes(&stream, version, meta, &ctx, events),
        };
        match self.engine.store.append(vec![append]).await {
            Ok(stored) => {
                self.engine.relay_stored(&stored).await;
                Ok(stored)
            }
            Err(StoreError::Conflict { .. }) => {
                // Someone stored this rental id first. A concurrent retry of this very command wins too.
                if let Some(done) = self
                    .engine
                    .store
                    .command_events(&stream, &meta.command_id)
                    .await?
                {
                    return Ok(done);
                }
                // If the winner's payment is this very charge (a gateway keyed by rental id
                // returned the same payment twice), the money is theirs: no refund. Otherwise our
                // charge paid for nothing and goes back.
                let (winner, _) = self.engine.load::<Rental>(&stream).await?;
                if winner.payment_id.as_deref() != Some(payment_id.as_str()) {
                    let charge = ChargeRef {
                        key: rental.clone(),
                        member,
                        amount: fee,
                    };
                    if let Err(refund) = self.call_gateway(self.gateway.refund(&charge)).await {
                        return Err(Error::Storage(StoreError::Backend(format!(
                            "rental {rental} was taken concurrently and the charge for it could not be refunded: {refund}"
                        ))));
                    }
                }
                Err(RentalError::AlreadyExists(rental).into())
            }
            Err(e) => {
                let charge = ChargeRef {
                    key: rental.clone(),
                    member,
                    amount: fee,
                };
                match self.call_gateway(self.gateway.refund(&charge)).await {
                    Ok(()) => Err(e.into()),
                    Err(refund) => Err(Error::Storage(StoreError::Backend(format!("{e}; the charge for rental {rental} could not be refunded either: {refund}")))),
                }
            }
        }
    }

    /// Cancels a rental, reading its delivery in the same decision (a delivered book cannot be cancelled).
    async fn cancel_rental(
        &self,
        rental: &RentalId,
        reason: String,
        meta: &Meta,
    ) -> Result<Vec<Envelope>> {
        let stream = StreamId::new(StreamKind::Rental, rental.as_str());
        let delivery = StreamId::new(StreamKind::Delivery, rental.as_str());
        self.engine
            .execute::<Rental>(&stream, meta, Some(&delivery), |delivery_events| {
                RentalCommand::CancelRental {
                    rental: rental.clone(),
                    reason: reason.clone(),
                    delivered: Delivery::fold(delivery_events.iter().map(|e| &e.event)).status
                        == DeliveryStatus::Delivered,
                }
            })
            .await
    }

    /// Calls the payment gateway behind the circuit breaker, with the configured timeout.
    async fn call_gateway<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, PaymentError>> + Send,
    ) -> Result<T> {
        let clock = &self.engine.clock;
        let permit = self
            .breaker
            .acquire(clock.now())
            .map_err(|retry_after| Error::PaymentUnavailable { retry_after })?;
        let result = match self.breaker.config().call_timeout {
            Some(limit) => match select(Box::pin(call), clock.sleep(limit)).await {
                Either::Left((r, _)) => r,
                Either::Right(((), _)) => Err(PaymentError::Unavailable(format!(
                    "no answer within {} ms",
                    limit.as_millis()
                ))),
            },
            None => call.await,
        };
        self.breaker.record(
            permit,
            clock.now(),
            matches!(&result, Err(e) if e.is_outage()),
        );
        result.map_err(Error::Payment)
    }

    /// The circuit breaker's state now.
    pub fn payment_circuit(&self) -> BreakerState {
        self.breaker.state(self.engine.clock.now())
    }

    // ---- consumers -------------------------------------------------------------------------

    fn consumer(&self, name: &str) -> Result<&Consumer> {
        self.consumers
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                let names: Vec<_> = self.consumers.iter().map(|c| c.name).collect();
                Error::InvalidInput(format!(
                    "no consumer named {name:?}; consumers are {}",
                    names.join(", ")
                ))
            })
    }

    /// Stops a consumer (`catalog`, `rentals`, `payments`, `deliveries`, `notices`, `book_list`,
    /// `member_page`): its events wait, everything else goes on. Used to show fault isolation.
    pub fn pause(&self, consumer: &str) -> Result<()> {
        self.consumer(consumer)?
            .paused
            .store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Lets a paused consumer go on; it catches up at the next [`settle`](Library::settle).
    pub fn resume(&self, consumer: &str) -> Result<()> {
        self.consumer(consumer)?
            .paused
            .store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Every consumer's progress.
    pub async fn consumers(&self) -> Vec<ConsumerStatus> {
        let mut out = Vec::new();
        for c in &self.consumers {
            let mut checkpoint = u64::MAX;
            for w in &c.workers {
                checkpoint = checkpoint.min(w.lock().await.checkpoint);
            }
            out.push(ConsumerStatus {
                name: c.name.to_owned(),
                paused: c.paused.load(Ordering::SeqCst),
                workers: u32::try_from(c.workers.len()).unwrap_or(u32::MAX),
                checkpoint: if checkpoint == u64::MAX {
                    0
                } else {
                    checkpoint
                },
            });
        }
        out
    }

    /// Runs every consumer that is not paused until none has anything left that it can do
    /// now: policies react, views catch up. An event whose handling fails waits — the retry
    /// delay doubles from `retry_backoff`, or lasts until the payment circuit lets calls through
    /// again — and after `max_attempts` real failures it moves to the dead letters. So `settle`
    /// always returns; a later call (or the background runner) picks the waiting events up
    /// once their time has come.
    pub async fn settle(&self) -> Result<()> {
        loop {
            self.engine.relay().await?;
            if !self.run_pending().await? {
                return Ok(());
            }
        }
    }

    /// One pass over every unpaused consumer's pending events. True if anything was handled or tried.
    pub async fn run_pending(&self) -> Result<bool> {
        let mut worked = false;
        for c in &self.consumers {
            if c.paused.load(Ordering::SeqCst) {
                continue;
            }
            for (w, worker) in c.workers.iter().enumerate() {
                worked |= self.run_worker(c, w, &mut *worker.lock().await).await?;
            }
        }
        Ok(worked)
    }

    async fn run_worker(&self, c: &Consumer, w: usize, state: &mut Worker) -> Result<bool> {
        let bus_err =
            |e: crate::error::BusError| Error::Storage(StoreError::Backend(e.to_string()));
        let now = self.engine.clock.now();
        if state.retry_at.is_some_and(|at| now < at) {
            return Ok(false);
        }
        let worker = u32::try_from(w).unwrap_or(u32::MAX);
        let batch = self
            .engine
            .bus
            .receive(c.name, worker, BATCH)
            .await
            .map_err(bus_err)?;
        let start = state.checkpoint;
        // Events the checkpoint already covers (redelivered after a restart) are only acknowledged.
        let mut progressed = batch.iter().any(|e| e.position <= start);
        for e in batch.iter().filter(|e| e.position > start) {
            match self.handle(c.kind, e).await {
                Ok(()) => {
                    state.checkpoint = e.position;
                    state.attempts = 0;
                    state.outages = 0;
                    state.retry_at = None;
                    progressed = true;
                }
                Err(Failure {
                    wait: Some(wait), ..
                }) => {
                    state.retry_at =
                        Some(now.plus_ms(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)));
                    break;
                }
                Err(Failure { outage: true, .. }) => {
                    state.outages += 1;
                    let backoff = self
                        .retry_backoff
                        .saturating_mul(1 << (state.outages - 1).min(16))
                        .min(MAX_BACKOFF);
                    state.retry_at =
                        Some(now.plus_ms(i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX)));
                    break;
                }
                Err(Failure { message, .. }) => {
                    state.attempts += 1;
                    if state.attempts < self.max_attempts {
                        let backoff = self
                            .retry_backoff
                            .saturating_mul(1 << (state.attempts - 1).min(16))
                            .min(MAX_BACKOFF);
                        state.retry_at = Some(
                            now.plus_ms(i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX)),
                        );
                        break;
                    }
                    self.engine
                        .store
                        .add_dead_letter(DeadLetter {
                            id: format!("{}@{}", c.name, e.position),
                            consumer: c.name.to_owned(),
                            position: e.position,
                            event_id: e.event_id.clone(),
                            event_type: e.type_name().to_owned(),
                            error: message,
                            attempts: state.attempts,
                        })
                        .await?;
                    state.checkpoint = e.position;
                    state.attempts = 0;
                    state.outages = 0;
                    state.retry_at = None;
                    progressed = true;
                }
            }
        }
        if state.checkpoint != start && c.durable() {
            self.engine
                .store
                .save_checkpoint(&c.checkpoint_key(w), state.checkpoint)
                .await?;
        }
        self.engine
            .bus
            .ack(c.name, worker, state.checkpoint)
            .await
            .map_err(bus_err)?;
        Ok(progressed)
    }

    /// Hands one event to one consumer. Rejections by the rules are expected outcomes of races
    /// the saga already resolved (a confirmation arriving after a cancellation) and count as handled.
    async fn handle(&self, kind: Kind, e: &Envelope) -> std::result::Result<(), Failure> {
        match kind {
            Kind::BookList => {
                self.book_list
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .apply(e);
                Ok(())
            }
            Kind::MemberPages => {
                self.member_pages
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .apply(e);
                Ok(())
            }
            Kind::Policy(policy) => {
                for (i, reaction) in policy.react(e).into_iter().enumerate() {
                    let meta = Meta {
                        actor: Actor::System,
                        command_id: CommandId(format!("{}:{i}:{}", policy.name, e.event_id)),
                        correlation_id: e.correlation_id.clone(),
                        causation_id: e.event_id.clone(),
                    };
                    match self.react(reaction, &meta).await {
                        Ok(()) => {}
                        Err(err) if err.is_rejection() => {}
                        Err(Error::PaymentUnavailable { retry_after }) => {
                            return Err(Failure {
                                message: format!(
                                    "{}: payments unavailable",
                                    ErrorCode::PaymentUnavailable
                                ),
                                wait: Some(retry_after),
                                outage: true,
                            })
                        }
                        Err(err) => {
                            let outage =
                                matches!(err, Error::Payment(PaymentError::Unavailable(_)));
                            return Err(Failure {
                                message: format!("{}: {err}", err.code()),
                                wait: None,
                                outage,
                            });
                        }
                    }
                }
                Ok(())
            }
        }
    }

    async fn react(&self, reaction: Reaction, meta: &Meta) -> Result<()> {
        let engine = &self.engine;
        match reaction {
            Reaction::Book(cmd) => {
                let stream = StreamId::new(StreamKind::Book, cmd.book().as_str());
                engine
                    .execute::<Book>(&stream, meta, None, |_| cmd.clone())
                    .await
                    .map(drop)
            }
            Reaction::Rental(RentalCommand::CancelRental { rental, reason, .. }) => {
                self.cancel_rental(&rental, reason, meta).await.map(drop)
            }
            Reaction::Rental(cmd) => {
                let stream = StreamId::new(StreamKind::Rental, cmd.rental().as_str());
                engine
                    .execute::<Rental>(&stream, meta, None, |_| cmd.clone())
                    .await
                    .map(drop)
            }
            Reaction::Delivery(cmd) => {
                let rental = match &cmd {
                    DeliveryCommand::StartDelivery { rental, .. }
                    | DeliveryCommand::MarkDelivered { rental, .. }
                    | DeliveryCommand::CancelDelivery { rental } => rental,
                };
                let stream = StreamId::new(StreamKind::Delivery, rental.as_str());
                engine
                    .execute::<Delivery>(&stream, meta, None, |_| cmd.clone())
                    .await
                    .map(drop)
            }
            Reaction::Refund(charge) => {
                self.call_gateway(self.gateway.refund(&charge)).await?;
                let stream = StreamId::new(StreamKind::Rental, charge.key.as_str());
                let cmd = RentalCommand::RecordRefund {
                    rental: charge.key.clone(),
                };
                engine
                    .execute::<Rental>(&stream, meta, None, |_| cmd.clone())
                    .await
                    .map(drop)
            }
            Reaction::Notify(notice) => self
                .notifier
                .send(&notice)
                .await
                .map_err(|e| Error::Storage(StoreError::Backend(e.to_string()))),
        }
    }

    /// Hands the stored event at `position` to `consumer` once more, as an at-least-once bus may
    /// do. Policies are idempotent and views ignore what they have seen, so nothing changes twice.
    pub async fn redeliver(&self, consumer: &str, position: u64) -> Result<()> {
        let c = self.consumer(consumer)?;
        let e = self.event_at(position).await?;
        self.handle(c.kind, &e)
            .await
            .map_err(|f| Error::Storage(StoreError::Backend(f.message)))
    }

    async fn event_at(&self, position: u64) -> Result<Envelope> {
        let found = self
            .engine
            .store
            .read_all(position.saturating_sub(1), 1)
            .await?;
        found
            .into_iter()
            .find(|e| e.position == position)
            .ok_or_else(|| Error::InvalidInput(format!("no event at position {position}")))
    }

    /// Events consumers gave up on, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        Ok(self.engine.store.dead_letters().await?)
    }

    /// Hands a dead letter's event to its consumer again; on success it leaves the list.
    pub async fn replay_dead_letter(&self, id: &str) -> Result<()> {
        let letters = self.engine.store.dead_letters().await?;
        let letter = letters
            .into_iter()
            .find(|l| l.id == id)
            .ok_or_else(|| Error::not_found(ErrorCode::DeadLetterNotFound, "dead letter", id))?;
        self.redeliver(&letter.consumer, letter.position).await?;
        self.engine.store.remove_dead_letter(id).await?;
        Ok(())
    }

    // ---- queries ---------------------------------------------------------------------------

    /// Every book with its stock and status, as of the last [`settle`](Library::settle).
    pub fn book_list(&self) -> Vec<BookRow> {
        self.book_list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rows()
    }

    /// A member's page: points and rentals, as of the last [`settle`](Library::settle).
    pub fn member_page(&self, member_id: &str) -> Result<MemberPage> {
        self.member_pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .page(member_id)
            .cloned()
            .ok_or_else(|| Error::not_found(ErrorCode::MemberNotFound, "member", member_id))
    }

    /// Copies of both views as they are now.
    pub fn views(&self) -> (BookList, MemberPages) {
        (
            self.book_list
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            self.member_pages
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    /// Both views built afresh from the whole log (for checks: after `settle`, they equal [`views`](Library::views)).
    pub async fn rebuild_views(&self) -> Result<(BookList, MemberPages)> {
        fold_views(self.engine.store.as_ref()).await
    }

    /// Stored events with `position >= from_position`, in order (at most `limit`).
    pub async fn events(&self, from_position: u64, limit: usize) -> Result<Vec<Envelope>> {
        Ok(self
            .engine
            .store
            .read_all(from_position.saturating_sub(1), limit)
            .await?)
    }

    /// The position of the newest event handed to the consumers: every committed event up to
    /// here is on its way to the policies and views. Readable without waiting.
    pub fn committed_position(&self) -> u64 {
        self.engine.relayed_at.load(Ordering::SeqCst)
    }

    /// The position of the newest stored event.
    pub async fn head(&self) -> Result<u64> {
        Ok(self.engine.store.head().await?)
    }

    /// The aggregate state of one rental, folded from its stream (for hosts that need more than the views).
    pub async fn rental(&self, rental_id: &str) -> Result<Rental> {
        let (r, _) = self
            .engine
            .load::<Rental>(&StreamId::new(StreamKind::Rental, rental_id))
            .await?;
        if r.status == RentalStatus::New {
            return Err(RentalError::NotFound(RentalId::new(rental_id)).into());
        }
        Ok(r)
    }
}
