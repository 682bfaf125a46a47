//! [`NatsEventBus`]: the event bus on a NATS JetStream stream, shared by every process of one
//! library — the bus for a library served by several app servers (with `PgEventStore` as the
//! store they share).
//!
//! # What is on the server
//!
//! One stream per library, named `LENDKIT_<namespace>`, holding subjects
//! `lk.<namespace>.ev.>` with retention *Limits* (kept for [`NatsOptions::max_age`], file
//! storage, a two-minute duplicate window). Each committed event is one message:
//!
//! - subject `lk.<namespace>.ev.<partition>.<aggregate>`, where `partition` is FNV-1a of the
//!   stream id modulo [`NatsOptions::partitions`] (as [`InMemoryEventBus::worker_for`]) and
//!   `aggregate` the stream kind (`rental`, `member`, …);
//! - payload the envelope's JSON wire form ([`Envelope::encode`]: `event_id`, `stream`,
//!   `version`, `position`, `occurred_at`, `correlation_id`, `causation_id`, `command_id`,
//!   `actor`, `type`, `schema`, `payload`), so a service in any language can subscribe
//!   without lendkit;
//! - headers `Nats-Msg-Id` = the position and `Lk-Position` = the position.
//!
//! **The stream's sequence is the log's position**: every message is published with
//! `Nats-Expected-Last-Sequence` = its position − 1, so the server refuses a gap or a double.
//! Every process relays what it reads from the log (the engine relays every committed event,
//! in order); when another process was first, the server's refusal says so and the relay moves
//! on. There is no relay leader to elect or to lose: the expected sequence is what makes the
//! copy exact, whoever publishes. A relay that finds the stream behind the log (NATS was down,
//! or a library older than its stream) fills the gap from the store.
//!
//! # Consumer groups
//!
//! - A **policy** ([`join`](EventBus::join)) acts once for the whole library: per worker one
//!   durable pull consumer `<group>-<worker>-of-<workers>`, explicit acks, `max_ack_pending` 1,
//!   filtered to the worker's partition (`lk.<ns>.ev.<worker>.>`) or, for a one-worker group,
//!   to every partition. Every process pulls from the same consumers: with one message in
//!   flight per consumer, one stream's events are handled one at a time, in order, by
//!   whichever process pulled them. A process that dies holding a message leaves it
//!   unacknowledged; the server gives it to another process after
//!   [`NatsOptions::ack_wait`]. The handler's effects are commands under ids derived from the
//!   event and the store dedupes them, so a redelivery changes nothing; the consumer's
//!   checkpoint in the store, not the ack, is the truth.
//!   A group runs with one worker or with [`NatsOptions::partitions`] workers. A consumer
//!   that joins when the stream no longer holds events it never acknowledged (they aged out
//!   past [`NatsOptions::max_age`] while no process ran it, or the group is new to an old
//!   library) reads those from the store, its partition's share, before it pulls again.
//! - A **view** ([`join_each_process`](EventBus::join_each_process)) is each process's own: it
//!   is fed in memory from the process's relay, never through the server.
//!
//! # When NATS is away
//!
//! The store is the truth. A publish while the connection is down delivers to the views and
//! returns `Ok` at once (commands commit, views stay current: no request waits out its
//! timeout); the relay marks itself behind and fills the stream from the store at the next
//! publish or pull once the client has reconnected (it does so by itself). A pull while down
//! returns no events (the policies wait); a warning is logged once per outage.

use crate::memory_bus::InMemoryEventBus;
use crate::runtime::OwnedRuntime;
use async_nats::jetstream;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};
use async_trait::async_trait;
use futures::StreamExt;
use lendkit_core::error::BusError;
use lendkit_core::event::Envelope;
use lendkit_core::ports::{EventBus, EventStore};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How a [`NatsEventBus`] names and keeps its stream.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// Names the library's stream (`LENDKIT_<namespace>`) and subjects (`lk.<namespace>.ev.>`):
    /// 1 to 64 ASCII letters, digits, `_` or `-`. Default `lendkit`.
    pub namespace: String,
    /// Partitions of the subjects (1 to 64), fixed when the stream is created. A policy runs
    /// with one worker or with this many. Default 4.
    pub partitions: u32,
    /// How long a pulled message may stay unacknowledged before the server gives it to
    /// another process (a process that died holding it). Default 30 s.
    pub ack_wait: Duration,
    /// How long the stream keeps a message. A policy whose events aged out catches up from the
    /// store. Default 7 days.
    pub max_age: Duration,
    /// How long connecting may take. Default 5 s.
    pub connect_timeout: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            namespace: "lendkit".into(),
            partitions: 4,
            ack_wait: Duration::from_secs(30),
            max_age: Duration::from_secs(7 * 24 * 3600),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl NatsOptions {
    /// The defaults, in `namespace`.
    pub fn in_namespace(namespace: impl Into<String>) -> Self {
        NatsOptions {
            namespace: namespace.into(),
            ..NatsOptions::default()
        }
    }
}

/// The event bus on a NATS JetStream stream (see the module documentation). Cheap to clone.
#[derive(Clone)]
pub struct NatsEventBus {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: OwnedRuntime,
    shared: Arc<Shared>,
    /// The views of this process.
    local: InMemoryEventBus,
}

struct Shared {
    /// The connection (asked whether it is up before any request, so an outage costs no
    /// request timeout).
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    prefix: String,
    partitions: u32,
    ack_wait: Duration,
    store: Arc<dyn EventStore>,
    /// `nats://host:port namespace NAME`, as errors name the bus.
    shown: String,
    /// The last position known to be in the stream; the relay's lock.
    published: tokio::sync::Mutex<u64>,
    /// Set when a publish failed: the stream is behind the log until a relay fills it.
    behind: AtomicBool,
    /// Set while the server cannot be reached (a warning is logged when it becomes so).
    down: AtomicBool,
    /// The library-wide groups joined in this process.
    groups: Mutex<HashMap<String, Arc<Group>>>,
    /// The highest position the relay has handed to NATS, readable without the lock.
    published_at: AtomicU64,
}

struct Group {
    workers: Vec<tokio::sync::Mutex<Worker>>,
}

impl Group {
    fn worker(&self, worker: u32) -> Result<&tokio::sync::Mutex<Worker>, BusError> {
        self.workers
            .get(worker as usize)
            .ok_or_else(|| BusError(format!("there is no worker {worker}")))
    }
}

struct Worker {
    consumer: PullConsumer,
    /// Which partition it takes (`None`: every one).
    partition: Option<u32>,
    /// Pulled, not acknowledged yet: returned again by the next receive.
    held: Vec<(Arc<Envelope>, jetstream::Message)>,
    /// Positions the consumer never got that the stream no longer holds (aged out past
    /// `max_age`): `(after, upto)`, read from the store before anything is pulled.
    gap: Option<(u64, u64)>,
    /// The gap's events read so far and not yet acknowledged, oldest first.
    backlog: std::collections::VecDeque<Arc<Envelope>>,
}

/// The longest a pull waits while another process holds the consumer's message in flight.
const PULL_WAIT: Duration = Duration::from_millis(20);

/// Events the relay publishes before awaiting the server's acks.
const PIPELINE: usize = 256;

fn check_namespace(namespace: &str) -> Result<(), BusError> {
    let ok = (1..=64).contains(&namespace.len())
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BusError(format!(
            "NATS namespace {namespace:?} is not allowed: 1 to 64 ASCII letters, digits, '_' or '-'"
        )))
    }
}

/// The server address without credentials, for messages.
fn shown_url(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((scheme_and_user, host)) => {
            let scheme = scheme_and_user.split_once("://").map_or("nats", |(s, _)| s);
            format!("{scheme}://{host}")
        }
        None => url.to_owned(),
    }
}

impl NatsEventBus {
    /// Connects to the NATS server at `url` (`nats://host:port`) and opens — creating it if
    /// need be — the library's stream in `options.namespace`. `store` is the library's event
    /// store, which the relay reads to fill the stream when it is behind. Blocks the calling
    /// thread until done.
    ///
    /// Fails with a [`BusError`] naming the server or the setting for: a wrong URL or a server
    /// that does not answer, a server without JetStream, a stream of that name with other
    /// settings (subjects, retention, partitions), and a stream holding more events than the
    /// store's log (the namespace belongs to another library). Nothing is created then.
    pub fn connect(
        url: &str,
        options: NatsOptions,
        store: Arc<dyn EventStore>,
    ) -> Result<Self, BusError> {
        check_namespace(&options.namespace)?;
        if !(1..=64).contains(&options.partitions) {
            return Err(BusError(format!(
                "NATS partitions is {}; between 1 and 64 are allowed",
                options.partitions
            )));
        }
        let shown = format!("{} namespace {}", shown_url(url), options.namespace);
        let runtime = OwnedRuntime::start("lendkit-nats")
            .map_err(|e| BusError(format!("cannot start the NATS bus's runtime: {e}")))?;
        let url = url.to_owned();
        let opened = {
            let shown = shown.clone();
            let store = Arc::clone(&store);
            runtime.block(
                async move { open(&url, &options, &shown, store).await },
                |e| BusError(format!("the NATS bus's task failed: {e}")),
            )
        }?;
        tracing::debug!(target: "lendkit::bus", bus = "nats", library = %shown, published = opened.published_at.load(Ordering::SeqCst), "opened");
        Ok(NatsEventBus {
            inner: Arc::new(Inner {
                runtime,
                shared: Arc::new(opened),
                local: InMemoryEventBus::new(),
            }),
        })
    }

    /// Deletes the stream of `namespace` (and its consumers) on the server at `url`. Returns
    /// false when there was none. Meant for tests and for removing a library on purpose.
    pub fn delete_namespace(url: &str, namespace: &str) -> Result<bool, BusError> {
        check_namespace(namespace)?;
        let runtime = OwnedRuntime::start("lendkit-nats")
            .map_err(|e| BusError(format!("cannot start the NATS bus's runtime: {e}")))?;
        let url = url.to_owned();
        let stream = format!("LENDKIT_{namespace}");
        runtime.block(
            async move {
                let client = async_nats::connect(&url).await.map_err(|e| {
                    BusError(format!("cannot reach NATS at {}: {e}", shown_url(&url)))
                })?;
                let js = jetstream::new(client);
                match js.delete_stream(&stream).await {
                    Ok(_) => Ok(true),
                    Err(e) if e.to_string().contains("not found") => Ok(false),
                    Err(e) => Err(BusError(format!(
                        "cannot delete the NATS stream {stream}: {e}"
                    ))),
                }
            },
            |e| BusError(format!("the NATS bus's task failed: {e}")),
        )
    }

    /// Calls `wake` whenever any process publishes an event of this library (a plain NATS
    /// subscription on its subjects), until the bus is dropped: a background runner can then
    /// wake on another process's events instead of waiting for its next tick. `wake` should be
    /// cheap (set a flag, signal a condition variable); calls are not coalesced here.
    pub fn on_published(&self, wake: Arc<dyn Fn() + Send + Sync>) -> Result<(), BusError> {
        let shared = Arc::clone(&self.inner.shared);
        let subject = format!("{}.>", shared.prefix);
        let subscriber = self.inner.runtime.block(
            async move {
                shared
                    .client
                    .subscribe(subject)
                    .await
                    .map_err(|e| shared.unreachable(e))
            },
            |e| BusError(format!("the NATS bus's task failed: {e}")),
        )?;
        self.inner.runtime.spawn(async move {
            let mut subscriber = subscriber;
            while subscriber.next().await.is_some() {
                wake();
            }
        });
        Ok(())
    }

    /// The last position this process knows to be in the stream.
    pub fn published(&self) -> u64 {
        self.inner.shared.published_at.load(Ordering::SeqCst)
    }

    /// The stream's last sequence as the server reports it now (= the last position relayed
    /// by any process).
    pub async fn stream_last_sequence(&self) -> Result<u64, BusError> {
        let shared = Arc::clone(&self.inner.shared);
        self.run(async move { shared.last_sequence().await }).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, BusError>> + Send + 'static,
    ) -> Result<T, BusError> {
        self.inner
            .runtime
            .run(work, |e| {
                BusError(format!("the NATS bus's task failed: {e}"))
            })
            .await
    }
}

/// Connects, checks or creates the stream, and compares it with the store's log.
async fn open(
    url: &str,
    options: &NatsOptions,
    shown: &str,
    store: Arc<dyn EventStore>,
) -> Result<Shared, BusError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(options.connect_timeout)
        .connect(url)
        .await
        .map_err(|e| BusError(format!("cannot reach NATS at {shown}: {e}")))?;
    let js = jetstream::new(client.clone());
    let name = format!("LENDKIT_{}", options.namespace);
    let prefix = format!("lk.{}.ev", options.namespace);
    let description = format!("lendkit events; partitions={}", options.partitions);
    let wanted = jetstream::stream::Config {
        name: name.clone(),
        description: Some(description.clone()),
        subjects: vec![format!("{prefix}.>")],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        discard: DiscardPolicy::Old,
        max_age: options.max_age,
        // The server refuses a window longer than the age limit.
        duplicate_window: Duration::from_secs(120).min(options.max_age),
        ..Default::default()
    };
    let mut stream = match js.get_stream(&name).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            js.create_stream(wanted.clone()).await.map_err(|e| {
                BusError(format!(
                    "cannot create the NATS stream {name} at {shown}: {e}"
                ))
            })?
        }
        Err(e) => {
            return Err(BusError(format!(
                "cannot open the NATS stream {name} at {shown} (is JetStream enabled?): {e}"
            )))
        }
    };
    let info = stream.info().await.map_err(|e| {
        BusError(format!(
            "cannot read the NATS stream {name} at {shown}: {e}"
        ))
    })?;
    let have = &info.config;
    let differs = |setting: &str, have: String, want: String| {
        BusError(format!(
            "the NATS stream {name} at {shown} has {setting} {have}; this library needs {want} \
             (a stream of another program or of another lendkit setup: use another namespace)"
        ))
    };
    if have.subjects != wanted.subjects {
        return Err(differs(
            "subjects",
            format!("{:?}", have.subjects),
            format!("{:?}", wanted.subjects),
        ));
    }
    if have.retention != RetentionPolicy::Limits {
        return Err(differs(
            "retention",
            format!("{:?}", have.retention),
            "Limits".into(),
        ));
    }
    if have.description.as_deref() != Some(description.as_str()) {
        return Err(differs(
            "description",
            format!("{:?}", have.description),
            format!("{description:?} (partitions are fixed when the stream is created)"),
        ));
    }
    let last = info.state.last_sequence;
    let head = store
        .head()
        .await
        .map_err(|e| BusError(format!("cannot read the library's log: {e}")))?;
    if last > head {
        return Err(BusError(format!(
            "the NATS stream {name} at {shown} holds events up to position {last}, but the \
             library's log ends at {head}: the namespace belongs to another library"
        )));
    }
    Ok(Shared {
        client,
        js,
        stream: name,
        prefix,
        partitions: options.partitions,
        ack_wait: options.ack_wait,
        store,
        shown: shown.to_owned(),
        published: tokio::sync::Mutex::new(last),
        behind: AtomicBool::new(last < head),
        down: AtomicBool::new(false),
        groups: Mutex::new(HashMap::new()),
        published_at: AtomicU64::new(last),
    })
}

impl Shared {
    fn subject(&self, e: &Envelope) -> String {
        let partition = InMemoryEventBus::worker_for(&e.stream, self.partitions);
        format!("{}.{partition}.{}", self.prefix, e.stream.kind.as_str())
    }

    async fn last_sequence(&self) -> Result<u64, BusError> {
        let mut stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| self.unreachable(e))?;
        let info = stream.info().await.map_err(|e| self.unreachable(e))?;
        Ok(info.state.last_sequence)
    }

    /// An error unless the client is connected now: while the server is away, a request would
    /// only wait for its timeout (5 s) before failing.
    fn connected(&self) -> Result<(), BusError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(self.unreachable(format!("the connection is {state:?}"))),
        }
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> BusError {
        BusError(format!("NATS at {} cannot be used: {e}", self.shown))
    }

    /// Notes a failure to reach the server: a warning when the outage begins.
    fn went_down(&self, e: &BusError) {
        if !self.down.swap(true, Ordering::SeqCst) {
            tracing::warn!(target: "lendkit::bus", bus = "nats", error = %e, "NATS cannot be reached: commands still commit; the policies wait until it is back");
        }
    }

    fn came_back(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            tracing::info!(target: "lendkit::bus", bus = "nats", library = %self.shown, "NATS is reachable again");
        }
    }

    /// Publishes `events` (consecutive positions, as the engine relays them) — and, first,
    /// anything between what the stream holds and them, read from the store.
    async fn relay(&self, events: &[Arc<Envelope>]) -> Result<(), BusError> {
        match events.last() {
            Some(last) => self.relay_upto(last.position, events).await,
            None => Ok(()),
        }
    }

    /// Fills the stream up to the store's head.
    async fn catch_up(&self) -> Result<(), BusError> {
        let head = self
            .store
            .head()
            .await
            .map_err(|e| BusError(format!("cannot read the library's log: {e}")))?;
        self.relay_upto(head, &[]).await?;
        self.behind.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Publishes every position up to `upto` the stream lacks: from `events` where they hold
    /// it, else read from the store.
    async fn relay_upto(&self, upto: u64, events: &[Arc<Envelope>]) -> Result<(), BusError> {
        let mut published = self.published.lock().await;
        if *published < upto {
            self.connected()?;
        }
        while *published < upto {
            let next = *published + 1;
            let batch: Vec<Arc<Envelope>> = match events.iter().position(|e| e.position == next) {
                Some(i) => events[i..].iter().take(PIPELINE).cloned().collect(),
                None => self
                    .store
                    .read_all(*published, PIPELINE)
                    .await
                    .map_err(|e| BusError(format!("cannot read the library's log: {e}")))?
                    .into_iter()
                    .map(Arc::new)
                    .collect(),
            };
            if batch.is_empty() {
                break;
            }
            *published = self.publish_batch(&batch).await?;
            self.published_at.store(*published, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Publishes consecutive events (pipelined), each expecting its predecessor as the
    /// stream's last message. Returns the stream's last position after it: past the batch, or,
    /// when another process published some of them first, as far as the stream got.
    async fn publish_batch(&self, batch: &[Arc<Envelope>]) -> Result<u64, BusError> {
        let mut acks = Vec::with_capacity(batch.len());
        for e in batch {
            let message = PublishMessage::build()
                .payload(e.encode().into())
                .message_id(e.position.to_string())
                .header("Lk-Position", e.position.to_string().as_str())
                .expected_last_sequence(e.position - 1);
            let ack = self
                .js
                .send_publish(self.subject(e), message)
                .await
                .map_err(|err| self.unreachable(err))?;
            acks.push((e.position, ack));
        }
        let mut last = batch[0].position - 1;
        for (position, ack) in acks {
            match ack.await {
                Ok(ack) if ack.sequence == position || ack.duplicate => last = position,
                Ok(ack) => {
                    return Err(BusError(format!(
                        "the NATS stream {} stored position {position} as sequence {}: its \
                         sequence no longer follows the library's log",
                        self.stream, ack.sequence
                    )))
                }
                // Another process published it first: the stream is further on than this
                // batch knew. (The acks after this one fail the same way.)
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    let stream_last = self.last_sequence().await?;
                    return Ok(stream_last.max(last));
                }
                Err(e) => return Err(self.unreachable(e)),
            }
        }
        Ok(last)
    }

    fn group(&self, group: &str) -> Option<Arc<Group>> {
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)
            .cloned()
    }

    async fn join(&self, group: &str, workers: u32) -> Result<Arc<Group>, BusError> {
        if workers != 1 && workers != self.partitions {
            return Err(BusError(format!(
                "consumer group {group:?} asks for {workers} workers; on NATS a group runs with 1 \
                 worker or with the stream's {} partitions",
                self.partitions
            )));
        }
        if let Some(existing) = self.group(group) {
            if existing.workers.len() == workers as usize {
                return Ok(existing);
            }
            return Err(BusError(format!(
                "consumer group {group:?} already joined with {} workers; it cannot join again with {workers}",
                existing.workers.len()
            )));
        }
        let mut stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| self.unreachable(e))?;
        // The first position the stream still holds (past its last when it is empty).
        let first_held = stream
            .info()
            .await
            .map_err(|e| self.unreachable(e))?
            .state
            .first_sequence;
        let mut list = Vec::new();
        for w in 0..workers {
            let name = format!("{group}-{w}-of-{workers}");
            let filter = if workers == 1 {
                format!("{}.>", self.prefix)
            } else {
                format!("{}.{w}.>", self.prefix)
            };
            let config = pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: filter.clone(),
                ack_policy: AckPolicy::Explicit,
                ack_wait: self.ack_wait,
                max_ack_pending: 1,
                max_deliver: -1,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            };
            let mut consumer: PullConsumer = stream
                .get_or_create_consumer(&name, config)
                .await
                .map_err(|e| {
                    BusError(format!(
                        "cannot open the NATS consumer {name} of stream {}: {e}",
                        self.stream
                    ))
                })?;
            let info = consumer.info().await.map_err(|e| self.unreachable(e))?;
            if info.config.filter_subject != filter || info.config.max_ack_pending != 1 {
                return Err(BusError(format!(
                    "the NATS consumer {name} of stream {} has filter_subject {:?} and \
                     max_ack_pending {}; lendkit needs {filter:?} and 1",
                    self.stream, info.config.filter_subject, info.config.max_ack_pending
                )));
            }
            // Acknowledged up to `floor`; if the stream has since dropped what follows, those
            // events come from the store first.
            let floor = info.ack_floor.stream_sequence;
            let gap = (first_held > floor + 1).then(|| (floor, first_held - 1));
            if let Some((after, upto)) = gap {
                tracing::info!(target: "lendkit::bus", bus = "nats", consumer = %name, after, upto, "the stream no longer holds events this consumer never got: they are read from the store");
            }
            list.push(tokio::sync::Mutex::new(Worker {
                consumer,
                partition: (workers > 1).then_some(w),
                held: Vec::new(),
                gap,
                backlog: std::collections::VecDeque::new(),
            }));
        }
        let joined = Arc::new(Group { workers: list });
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(group.to_owned())
            .or_insert_with(|| Arc::clone(&joined));
        Ok(joined)
    }

    async fn receive(&self, group: &Group, worker: u32) -> Result<Vec<Arc<Envelope>>, BusError> {
        self.connected()?;
        if self.behind.load(Ordering::SeqCst) {
            self.catch_up().await?;
        }
        let mut w = group.worker(worker)?.lock().await;
        // Until the gap is read: a partition's share of a chunk may be empty.
        while w.backlog.is_empty() {
            let Some((after, upto)) = w.gap else { break };
            let read = self
                .store
                .read_all(after, PIPELINE)
                .await
                .map_err(|e| BusError(format!("cannot read the library's log: {e}")))?;
            let reached = read.last().map_or(upto, |e| e.position.min(upto));
            let partitions = self.partitions;
            let partition = w.partition;
            w.backlog.extend(
                read.into_iter()
                    .filter(|e| e.position <= upto)
                    .filter(|e| {
                        partition.is_none_or(|p| {
                            InMemoryEventBus::worker_for(&e.stream, partitions) == p
                        })
                    })
                    .map(Arc::new),
            );
            w.gap = (reached < upto).then_some((reached, upto));
        }
        if !w.backlog.is_empty() {
            return Ok(w.backlog.iter().cloned().collect());
        }
        if w.held.is_empty() {
            let mut batch = w
                .consumer
                .fetch()
                .max_messages(1)
                // With no message pending the server answers at once; while another process
                // holds the one message in flight, it would keep the request open until that
                // is acknowledged: this bounds the wait.
                .expires(PULL_WAIT)
                .messages()
                .await
                .map_err(|e| self.unreachable(e))?;
            while let Some(message) = batch.next().await {
                let message = message.map_err(|e| self.unreachable(e))?;
                match Envelope::decode(&message.payload) {
                    Ok(e) => w.held.push((Arc::new(e), message)),
                    Err(why) => {
                        // Not an event of lendkit's: it can never be handled; the server is
                        // told to stop delivering it.
                        tracing::warn!(target: "lendkit::bus", bus = "nats", subject = %message.subject, error = %why, "a message on the library's subjects is not a lendkit event: dropped");
                        let _ = message.ack_with(jetstream::AckKind::Term).await;
                    }
                }
            }
        }
        Ok(w.held.iter().map(|(e, _)| Arc::clone(e)).collect())
    }

    async fn ack(&self, group: &Group, worker: u32, upto: u64) -> Result<(), BusError> {
        let mut w = group.worker(worker)?.lock().await;
        while w.backlog.front().is_some_and(|e| e.position <= upto) {
            w.backlog.pop_front();
        }
        if w.held.first().is_some_and(|(e, _)| e.position <= upto) {
            self.connected()?;
        }
        while let Some((e, _)) = w.held.first() {
            if e.position > upto {
                break;
            }
            let (_, message) = w.held.remove(0);
            if let Err(err) = message.ack().await {
                // Left for the server to redeliver after ack_wait; the checkpoint makes that
                // a no-op.
                return Err(self.unreachable(err));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventBus for NatsEventBus {
    async fn join(&self, group: &str, workers: u32) -> Result<(), BusError> {
        let shared = Arc::clone(&self.inner.shared);
        let group = group.to_owned();
        self.run(async move { shared.join(&group, workers).await.map(|_| ()) })
            .await
    }

    async fn join_each_process(&self, group: &str) -> Result<(), BusError> {
        self.inner.local.join(group, 1).await
    }

    fn spans_processes(&self) -> bool {
        true
    }

    async fn publish(&self, events: &[Arc<Envelope>]) -> Result<(), BusError> {
        self.inner.local.publish(events).await?;
        let shared = Arc::clone(&self.inner.shared);
        let events = events.to_vec();
        // The store is the truth and the views are fed: a failed relay fills the stream later.
        self.run(async move {
            match shared.relay(&events).await {
                Ok(()) => shared.came_back(),
                Err(e) => {
                    shared.behind.store(true, Ordering::SeqCst);
                    shared.went_down(&e);
                }
            }
            Ok(())
        })
        .await
    }

    async fn receive(
        &self,
        group: &str,
        worker: u32,
        max: usize,
    ) -> Result<Vec<Arc<Envelope>>, BusError> {
        let Some(joined) = self.inner.shared.group(group) else {
            return self.inner.local.receive(group, worker, max).await;
        };
        let shared = Arc::clone(&self.inner.shared);
        self.run(async move {
            match shared.receive(&joined, worker).await {
                Ok(events) => {
                    shared.came_back();
                    Ok(events)
                }
                Err(e) => {
                    shared.went_down(&e);
                    Ok(Vec::new())
                }
            }
        })
        .await
    }

    async fn ack(&self, group: &str, worker: u32, upto: u64) -> Result<(), BusError> {
        let Some(joined) = self.inner.shared.group(group) else {
            return self.inner.local.ack(group, worker, upto).await;
        };
        let shared = Arc::clone(&self.inner.shared);
        self.run(async move {
            if let Err(e) = shared.ack(&joined, worker, upto).await {
                shared.went_down(&e);
            }
            Ok(())
        })
        .await
    }
}
