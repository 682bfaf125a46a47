//! [`OpenLibrary`]: a [`Library`] on its embedded adapters, with a background runner.
//!
//! `lendkit::open("library.db")` opens (or creates) a library — a sled folder, or one SQLite file
//! (`Store`) — wires the in-memory bus
//! and the system clock, and starts one background thread that runs the consumers whenever
//! events are committed — so copies are allocated, rentals confirmed, refunds paid and views
//! updated without anyone calling [`Library::settle`] — and, on every tick, runs the clock-driven
//! circulation rules that have come due ([`Library::advance_to`] with the clock's time). Call `settle` to *wait* for that (tests,
//! scripts). Closing (or dropping) closes the core library — ending any call still waiting on a
//! host port with `LIBRARY_CLOSED` — then stops the thread and flushes the database.

use crate::drills::PaymentSwitch;
use crate::{Library, LibraryBuilder, Rules};
use lendkit_adapters::{
    Durability, InMemoryEventBus, InMemoryEventStore, SledEventStore, SystemClock,
};
use lendkit_core::event::Envelope;
use lendkit_core::payment::BreakerConfig;
use lendkit_core::ports::{Clock, EventStore, Notifier, PaymentGateway};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How to open a library. `Config::default()` is the embedded default.
#[derive(Clone)]
pub struct Config {
    /// Which embedded store keeps the library (default: from what is at the path).
    pub store: Store,
    /// When appends reach the disk. Default: durable before every command returns.
    pub durability: Durability,
    /// The most memory sled may use to cache pages, in bytes (sled only; default 128 MiB).
    pub cache_bytes: u64,
    /// Welcome points, loan length, renewals.
    pub rules: Rules,
    /// The circuit breaker around the payment gateway.
    pub breaker: BreakerConfig,
    /// Workers per policy (`{"catalog": 4}`); default one each.
    pub workers: BTreeMap<String, u32>,
    /// Attempts before an event is dead-lettered.
    pub max_attempts: u32,
    /// Run consumers on a background thread (default). Off: only `settle()` runs them.
    pub background: bool,
    /// The in-process policies (copy allocation, confirmation, release, deliveries) react within
    /// the command that caused them, so a command and its saga share one sync
    /// ([`LibraryBuilder::immediate_reactions`]). Off by default: reactions follow on the
    /// background thread or at `settle()`.
    pub immediate_reactions: bool,
    /// The payment gateway; default: the members' point accounts.
    pub payment: Option<Arc<dyn PaymentGateway>>,
    /// Where notices go; default: nowhere.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// The clock; default: the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// The first wait before a failing event is retried (it doubles per failure).
    pub retry_backoff: Duration,
    /// Lets [`OpenLibrary::set_payment_outage`] make the payment gateway fail on purpose, to
    /// rehearse an outage (circuit breaker, fallbacks, delayed refunds). Off by default.
    pub fault_injection: bool,
    /// A durable library saves the views' snapshot when it closes if its views have folded at
    /// least this many events since the last one (so the next open folds only what came
    /// after); 0 saves one at every close. Default 10,000: below that, folding at open costs
    /// less than writing a snapshot at every close (a one-command CLI run, say).
    pub snapshot_after_events: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store: Store::Auto,
            durability: Durability::EveryCommit,
            cache_bytes: lendkit_adapters::sled_store::DEFAULT_CACHE_BYTES,
            rules: Rules::default(),
            breaker: BreakerConfig::default(),
            workers: BTreeMap::new(),
            max_attempts: 5,
            background: true,
            immediate_reactions: false,
            payment: None,
            notifier: None,
            clock: None,
            retry_backoff: Duration::from_secs(1),
            fault_injection: false,
            snapshot_after_events: 10_000,
        }
    }
}

/// Where a library shared by several processes keeps its log and spreads its events (see
/// [`OpenLibrary::connect`]): the PostgreSQL schema and the NATS namespace, both `lendkit` by
/// default.
#[cfg(feature = "nats")]
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// The PostgreSQL store's settings (schema, connections, timeouts).
    pub pg: lendkit_adapters::PgOptions,
    /// The NATS bus's settings (namespace, partitions, ack wait, retention).
    pub nats: lendkit_adapters::NatsOptions,
}

#[cfg(feature = "nats")]
impl ConnectOptions {
    /// The PostgreSQL schema and NATS namespace `name` (both), other settings default.
    pub fn named(name: &str) -> Self {
        ConnectOptions {
            pg: lendkit_adapters::PgOptions::in_schema(name),
            nats: lendkit_adapters::NatsOptions::in_namespace(name),
        }
    }
}

/// Connects to the library shared through the PostgreSQL server at `pg_url` and the NATS
/// server at `nats_url`, in schema and namespace `lendkit`, with the default configuration
/// (see [`OpenLibrary::connect`]).
#[cfg(feature = "nats")]
pub fn connect(pg_url: &str, nats_url: &str) -> crate::Result<OpenLibrary> {
    OpenLibrary::connect(
        pg_url,
        nats_url,
        ConnectOptions::default(),
        Config::default(),
    )
}

/// Removes a library shared through PostgreSQL and NATS: the schema `name` (every table in it)
/// and the stream of namespace `name`. True if there was something to remove. Refuses, with
/// `NOT_A_LIBRARY`, a schema that holds another program's tables. For tests and for removing
/// a library on purpose: what it removes cannot be recovered.
#[cfg(feature = "nats")]
pub fn drop_connected(pg_url: &str, nats_url: &str, name: &str) -> crate::Result<bool> {
    let schema = lendkit_adapters::PgEventStore::drop_schema(pg_url, name)?;
    let stream = lendkit_adapters::NatsEventBus::delete_namespace(nats_url, name).map_err(|e| {
        crate::Error::Storage(crate::error::StoreError::io("removing the NATS stream", e))
    })?;
    Ok(schema || stream)
}

/// Opens the library at `path` with the default configuration.
pub fn open(path: impl AsRef<Path>) -> crate::Result<OpenLibrary> {
    OpenLibrary::open(path, Config::default())
}

/// A callback that receives every committed event, in position order, on the background thread.
pub type Subscriber = Box<dyn Fn(&Envelope) + Send + Sync>;

struct Shared {
    wake: Mutex<bool>,
    signal: Condvar,
    stop: AtomicBool,
    /// Subscribers by id, with the position they subscribed at (they see only later events).
    subscribers: Mutex<BTreeMap<u64, (u64, Arc<Subscriber>)>>,
    next_subscription: AtomicU64,
    /// Last position handed to subscribers.
    delivered: AtomicU64,
    /// One delivery at a time, so no batch reaches a subscriber twice.
    delivering: futures::lock::Mutex<()>,
    /// Whether closing has saved the views' snapshot already.
    snapshot_saved: AtomicBool,
}

impl Shared {
    fn poke(&self) {
        *self.wake.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.signal.notify_all();
    }
}

/// The embedded store a library lives in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Store {
    /// Decided by what is at the path: a folder is a sled library, a file a SQLite one
    /// (`NOT_A_LIBRARY` if it is not); nothing there yet: SQLite for a name ending in `.sqlite`
    /// or `.sqlite3`, else sled.
    #[default]
    Auto,
    /// sled: a folder, the default for a new library.
    Sled,
    /// SQLite: one file in WAL mode (`SqliteEventStore`), readable with the `sqlite3` tool.
    #[cfg(feature = "sqlite")]
    Sqlite,
}

impl Store {
    /// The store named `name` (`sled`, `sqlite`, or `auto`).
    pub fn parse(name: &str) -> crate::Result<Store> {
        match name {
            "auto" => Ok(Store::Auto),
            "sled" => Ok(Store::Sled),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Store::Sqlite),
            other => Err(crate::Error::InvalidInput(format!(
                "store is {other:?}; use \"sled\" or \"sqlite\" (or \"auto\": from what is at the path)"
            ))),
        }
    }

    /// Its name: `auto`, `sled` or `sqlite`.
    pub fn name(self) -> &'static str {
        match self {
            Store::Auto => "auto",
            Store::Sled => "sled",
            #[cfg(feature = "sqlite")]
            Store::Sqlite => "sqlite",
        }
    }

    /// The store a library at `path` is opened with.
    pub(crate) fn at(self, path: &Path) -> Store {
        match self {
            Store::Auto => {}
            chosen => return chosen,
        }
        #[cfg(feature = "sqlite")]
        {
            if path.is_file() {
                return Store::Sqlite;
            }
            let named = path.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                x.eq_ignore_ascii_case("sqlite") || x.eq_ignore_ascii_case("sqlite3")
            });
            if !path.exists() && named {
                return Store::Sqlite;
            }
        }
        let _ = path;
        Store::Sled
    }
}

/// The durable store behind an open library, for flushing.
pub(crate) enum Durable {
    Sled(SledEventStore),
    #[cfg(feature = "sqlite")]
    Sqlite(lendkit_adapters::SqliteEventStore),
}

impl Durable {
    /// Opens the store a library at `path` lives in (`store`: as [`Store`] says).
    pub(crate) fn open(
        path: &Path,
        store: Store,
        durability: Durability,
    ) -> crate::Result<(Durable, Store)> {
        let chosen = store.at(path);
        let opened = match chosen {
            #[cfg(feature = "sqlite")]
            Store::Sqlite => {
                Durable::Sqlite(lendkit_adapters::SqliteEventStore::open(path, durability)?)
            }
            _ => Durable::Sled(SledEventStore::open(path, durability)?),
        };
        Ok((opened, chosen))
    }

    /// The store, behind the port.
    pub(crate) fn store(&self) -> Arc<dyn EventStore> {
        match self {
            Durable::Sled(s) => Arc::new(s.clone()),
            #[cfg(feature = "sqlite")]
            Durable::Sqlite(s) => Arc::new(s.clone()),
        }
    }

    pub(crate) fn flush(&self) -> crate::Result<()> {
        match self {
            Durable::Sled(s) => s.flush()?,
            #[cfg(feature = "sqlite")]
            Durable::Sqlite(s) => s.flush()?,
        }
        Ok(())
    }
}

/// A library on its embedded adapters. Dereferences to [`Library`] for commands and queries.
pub struct OpenLibrary {
    library: Arc<Library>,
    durable: Option<Durable>,
    shared: Arc<Shared>,
    runner: Option<JoinHandle<()>>,
    outage: Option<Arc<AtomicBool>>,
    /// [`Config::snapshot_after_events`].
    snapshot_after_events: u64,
}

impl std::ops::Deref for OpenLibrary {
    type Target = Library;
    fn deref(&self) -> &Library {
        &self.library
    }
}

impl OpenLibrary {
    /// Opens (or creates) the library at `path`, in the store `config.store` names (by default
    /// the one already there; a new library is a sled folder unless the name ends in
    /// `.sqlite`). Fails with `NOT_A_LIBRARY`,
    /// `SCHEMA_TOO_NEW` or `LIBRARY_LOCKED` without changing anything, and with `CORRUPT` when
    /// the database is damaged (restore it from a backup). A library whose creation or whose
    /// last open was cut short by a kill is finished or repaired here (see
    /// [`SledEventStore::open`]).
    ///
    /// Blocks; inside an async runtime use [`open_async`](OpenLibrary::open_async).
    pub fn open(path: impl AsRef<Path>, config: Config) -> crate::Result<Self> {
        futures::executor::block_on(Self::open_async(path, config))
    }

    /// [`open`](OpenLibrary::open) for async callers.
    pub async fn open_async(path: impl AsRef<Path>, config: Config) -> crate::Result<Self> {
        let path = path.as_ref();
        match config.store.at(path) {
            #[cfg(feature = "sqlite")]
            Store::Sqlite => {
                let store = lendkit_adapters::SqliteEventStore::open(path, config.durability)?;
                Self::start(
                    Arc::new(store.clone()),
                    Some(Durable::Sqlite(store)),
                    config,
                )
                .await
            }
            _ => {
                let store =
                    SledEventStore::open_with_cache(path, config.durability, config.cache_bytes)?;
                Self::start(Arc::new(store.clone()), Some(Durable::Sled(store)), config).await
            }
        }
    }

    /// A library kept in memory only: nothing survives the process. Blocks; inside an async
    /// runtime use [`in_memory_async`](OpenLibrary::in_memory_async).
    pub fn in_memory(config: Config) -> crate::Result<Self> {
        futures::executor::block_on(Self::in_memory_async(config))
    }

    /// [`in_memory`](OpenLibrary::in_memory) for async callers.
    pub async fn in_memory_async(config: Config) -> crate::Result<Self> {
        Self::start(Arc::new(InMemoryEventStore::new()), None, config).await
    }

    /// Connects to a library shared by several processes: its log in a PostgreSQL schema
    /// (`pg_url`, [`PgOptions`](lendkit_adapters::PgOptions)), its events spread through a
    /// NATS JetStream stream (`nats_url`, [`NatsOptions`](lendkit_adapters::NatsOptions)).
    /// Every process that connects with the same schema and namespace serves the same books,
    /// members and rentals under the same rules: each policy reaction happens once for the
    /// library, in whichever process pulled the event; each process keeps the views current
    /// for its own queries. `config.store`, `durability` and `cache_bytes` do not apply
    /// (PostgreSQL's commit is the sync); `config.immediate_reactions` is refused, since it
    /// needs a sole writer.
    ///
    /// Fails with `STORAGE` naming the server or the setting when a server cannot be reached,
    /// the schema or stream belongs to something else, or a newer lendkit wrote the schema
    /// (`SCHEMA_TOO_NEW`); nothing is written then. Blocks; inside an async runtime use
    /// [`connect_async`](OpenLibrary::connect_async).
    #[cfg(feature = "nats")]
    pub fn connect(
        pg_url: &str,
        nats_url: &str,
        options: ConnectOptions,
        config: Config,
    ) -> crate::Result<Self> {
        futures::executor::block_on(Self::connect_async(pg_url, nats_url, options, config))
    }

    /// [`connect`](OpenLibrary::connect) for async callers.
    #[cfg(feature = "nats")]
    pub async fn connect_async(
        pg_url: &str,
        nats_url: &str,
        options: ConnectOptions,
        config: Config,
    ) -> crate::Result<Self> {
        if config.immediate_reactions {
            return Err(crate::Error::InvalidInput(
                "immediate_reactions needs a library that is its store's only writer; a connected library shares its store".into(),
            ));
        }
        let store = lendkit_adapters::PgEventStore::connect(pg_url, options.pg)?;
        let store: Arc<dyn EventStore> = Arc::new(store);
        let nats_failed =
            |e| crate::Error::Storage(crate::error::StoreError::io("connecting to NATS", e));
        let bus =
            lendkit_adapters::NatsEventBus::connect(nats_url, options.nats, Arc::clone(&store))
                .map_err(nats_failed)?;
        let background = config.background;
        let opened = Self::start_on(store, Arc::new(bus.clone()), false, None, config).await?;
        if background {
            // Another process's events wake the runner at once, not at its next tick.
            let shared = Arc::clone(&opened.shared);
            bus.on_published(Arc::new(move || shared.poke()))
                .map_err(nats_failed)?;
        }
        Ok(opened)
    }

    async fn start(
        store: Arc<dyn EventStore>,
        durable: Option<Durable>,
        config: Config,
    ) -> crate::Result<Self> {
        // The store was opened here, for this library alone (under its lock, on disk).
        Self::start_on(
            store,
            Arc::new(InMemoryEventBus::new()),
            true,
            durable,
            config,
        )
        .await
    }

    async fn start_on(
        store: Arc<dyn EventStore>,
        bus: Arc<dyn lendkit_core::ports::EventBus>,
        sole_writer: bool,
        durable: Option<Durable>,
        config: Config,
    ) -> crate::Result<Self> {
        let shared = Arc::new(Shared {
            wake: Mutex::new(true),
            signal: Condvar::new(),
            stop: AtomicBool::new(false),
            subscribers: Mutex::new(BTreeMap::new()),
            next_subscription: AtomicU64::new(1),
            delivered: AtomicU64::new(0),
            delivering: futures::lock::Mutex::new(()),
            snapshot_saved: AtomicBool::new(false),
        });
        let clock = config
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock::new()));
        let mut builder = LibraryBuilder::new(store, bus, clock)
            .rules(config.rules.clone())
            .breaker(config.breaker.clone())
            .max_attempts(config.max_attempts)
            .retry_backoff(config.retry_backoff)
            .sole_writer(sole_writer)
            .immediate_reactions(config.immediate_reactions);
        for (name, n) in &config.workers {
            builder = builder.workers(name, *n);
        }
        let outage = config
            .fault_injection
            .then(|| Arc::new(AtomicBool::new(false)));
        builder = match (config.payment.clone(), outage.clone()) {
            (Some(p), None) => builder.payment(p),
            (Some(p), Some(down)) => builder.payment(Arc::new(PaymentSwitch::new(p, down))),
            (None, Some(down)) => {
                builder.wrap_payment(move |inner| Arc::new(PaymentSwitch::new(inner, down)))
            }
            (None, None) => builder,
        };
        if let Some(n) = config.notifier.clone() {
            builder = builder.notifier(n);
        }
        if config.background {
            let s = Arc::clone(&shared);
            builder = builder.on_commit(Arc::new(move || s.poke()));
        }
        let library = Arc::new(builder.build().await?);
        let head = library.head().await?;
        shared.delivered.store(head, Ordering::SeqCst);
        let runner = if config.background {
            let (lib, s) = (Arc::clone(&library), Arc::clone(&shared));
            Some(
                std::thread::Builder::new()
                    .name("lendkit-consumers".into())
                    .spawn(move || run(&lib, &s))
                    .map_err(|e| {
                        crate::Error::Storage(crate::error::StoreError::Backend(format!(
                            "cannot start the consumer thread: {e}"
                        )))
                    })?,
            )
        } else {
            None
        };
        Ok(OpenLibrary {
            library,
            durable,
            shared,
            runner,
            outage,
            snapshot_after_events: config.snapshot_after_events,
        })
    }

    /// Makes the payment gateway fail as unavailable (`true`) or work again (`false`).
    /// Needs `Config::fault_injection`; otherwise `INVALID_INPUT`.
    pub fn set_payment_outage(&self, down: bool) -> crate::Result<()> {
        match &self.outage {
            Some(flag) => {
                flag.store(down, Ordering::SeqCst);
                Ok(())
            }
            None => Err(crate::Error::InvalidInput("payment outages can only be simulated when the library was opened with fault_injection".into())),
        }
    }

    /// The core library (to share with other threads).
    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    /// Calls `callback` with every event committed after this call, in position order, on the
    /// background thread. Returns an id for [`unsubscribe`](OpenLibrary::unsubscribe).
    /// Without a background runner, callbacks run during [`deliver`](OpenLibrary::deliver).
    pub fn subscribe(&self, callback: Subscriber) -> u64 {
        let id = self.shared.next_subscription.fetch_add(1, Ordering::SeqCst);
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (self.library.committed_position(), Arc::new(callback)));
        id
    }

    /// Stops a subscription; true if it existed.
    pub fn unsubscribe(&self, id: u64) -> bool {
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
            .is_some()
    }

    /// Hands every committed event not yet seen by subscribers to them (the background runner does this by itself).
    pub async fn deliver(&self) -> crate::Result<()> {
        deliver(&self.library, &self.shared).await
    }

    /// The position up to which events have been handed to subscribers.
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::SeqCst)
    }

    /// Flushes the database to disk (a no-op in memory).
    pub fn flush(&self) -> crate::Result<()> {
        if let Some(d) = &self.durable {
            d.flush()?;
        }
        Ok(())
    }

    /// Closes the core library (every call still waiting on a host port — a payment gateway or
    /// notifier that has not answered — ends with `LIBRARY_CLOSED`, and later calls fail so),
    /// then stops the background runner and flushes. Dropping does the same.
    pub fn close(mut self) -> crate::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> crate::Result<()> {
        // First: the runner may be waiting on a host port, and joining it would wait for ever.
        self.library.close();
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.poke();
        if let Some(r) = self.runner.take() {
            let _ = r.join();
        }
        // The views' snapshot, so that the next open folds only what comes after it. Once:
        // a second shutdown (close, then drop) has nothing new to save. A failure costs only
        // speed at the next open, never data: it is logged, and closing goes on.
        if self.durable.is_some()
            && self.library.views_unsaved() >= self.snapshot_after_events
            && !self.shared.snapshot_saved.swap(true, Ordering::SeqCst)
        {
            // On a thread of its own: closing may be called from inside an executor (an async
            // host), where blocking on another would panic.
            let library = &self.library;
            let saved = std::thread::scope(|s| {
                s.spawn(|| crate::block_on(library.save_views_snapshot()))
                    .join()
            });
            match saved {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(target: "lendkit::store", code = %e.code(), error = %e, "the views' snapshot was not saved; the next open folds the events since the last one");
                }
                Err(_) => {
                    tracing::warn!(target: "lendkit::store", "saving the views' snapshot panicked; the next open folds the events since the last one");
                }
            }
        }
        self.flush()
    }
}

impl Drop for OpenLibrary {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

async fn deliver(lib: &Library, shared: &Shared) -> crate::Result<()> {
    let _one_at_a_time = shared.delivering.lock().await;
    loop {
        let subscribers: Vec<(u64, Arc<Subscriber>)> = {
            let all = shared
                .subscribers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if all.is_empty() {
                // Nobody to hand events to, so nothing is read: everything committed so far
                // counts as delivered. Read under the lock: a subscriber added after it takes
                // its start (`subscribe`) at or past this position, so it misses nothing.
                let committed = lib.committed_position();
                shared.delivered.fetch_max(committed, Ordering::SeqCst);
                return Ok(());
            }
            all.values().cloned().collect()
        };
        let from = shared.delivered.load(Ordering::SeqCst);
        let batch = lib.events(from + 1, 512).await?;
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok(());
        };
        for e in &batch {
            for (_, s) in subscribers.iter().filter(|(start, _)| e.position > *start) {
                // A panicking subscriber must not take the runner down with it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s(e)));
            }
        }
        shared.delivered.store(last, Ordering::SeqCst);
    }
}

/// The background runner: waits for a commit (or a short tick, for retries and the clock), then
/// settles and runs the clock-driven work that has come due.
fn run(lib: &Library, shared: &Shared) {
    const TICK: Duration = Duration::from_millis(200);
    loop {
        {
            let mut woke = shared.wake.lock().unwrap_or_else(PoisonError::into_inner);
            if !*woke && !shared.stop.load(Ordering::SeqCst) {
                woke = shared
                    .signal
                    .wait_timeout(woke, TICK)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            *woke = false;
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        // Errors are retried on the next tick; the consumers keep their checkpoints. A panic (a
        // bug) must not silently stop the runner: it is caught, and the next tick tries again.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = futures::executor::block_on(lib.settle());
            // The clock-driven rules: due dates, automatic renewals, items aged to lost.
            let _ = futures::executor::block_on(lib.advance_to(lib.now()));
            let _ = futures::executor::block_on(deliver(lib, shared));
        }));
    }
}
