//! Configuring and opening a library.

use super::*;

/// A notifier that drops every notice (the default when the host gives none).
pub(super) struct NoNotices;

#[async_trait]
impl Notifier for NoNotices {
    async fn send(&self, _: &Notice) -> Result<(), crate::error::NotifyError> {
        Ok(())
    }
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
    /// Whether a notifier was given (without one, notices are not even written).
    notifying: bool,
    payment: PaymentChoice,
    rules: Rules,
    breaker: BreakerConfig,
    workers: HashMap<String, u32>,
    max_attempts: u32,
    retry_backoff: std::time::Duration,
    on_commit: Option<CommitHook>,
    sole_writer: bool,
    immediate_reactions: bool,
}

impl LibraryBuilder {
    /// A builder with the default rules, the points gateway, no notices and a default breaker.
    pub fn new(store: Arc<dyn EventStore>, bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>) -> Self {
        LibraryBuilder {
            store,
            bus,
            clock,
            notifier: Arc::new(NoNotices),
            notifying: false,
            payment: PaymentChoice::Points,
            rules: Rules::default(),
            breaker: BreakerConfig::default(),
            workers: HashMap::new(),
            max_attempts: 5,
            retry_backoff: std::time::Duration::from_secs(1),
            sole_writer: false,
            immediate_reactions: false,
            on_commit: None,
        }
    }

    /// The wait before a failing event is tried again; it doubles with each failure (default 1 s, at most 5 min).
    pub fn retry_backoff(mut self, backoff: std::time::Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Promises that nothing but this library appends to the store while it is open (a store
    /// it was given alone, under a lock that keeps other processes out). Aggregates it keeps
    /// folded in memory are then current without asking the store for newer events, which
    /// saves a read per stream a command touches. Without the promise (the default), every
    /// load asks; should the promise be broken, appends still fail with a conflict and are
    /// decided again on what is stored, but a decision that only reads a stream may use a
    /// stale fold.
    pub fn sole_writer(mut self, sole: bool) -> Self {
        self.sole_writer = sole;
        self
    }

    /// Whether the policies that only touch this library's own aggregates (copy allocation,
    /// confirmation, release, deliveries: [`IMMEDIATE`](crate::policies::IMMEDIATE)) react
    /// within the command that caused them, so that a command and what it sets off share one
    /// sync of the disk (default: no). A reservation then returns with its copy allocated and
    /// the rental confirmed instead of `RentalReserved` alone — the same events under the same
    /// ids, stored sooner (the outcome carries the command's own events; the reactions are in
    /// the log) — and a second reservation of a copy already taken is refused at once
    /// (`BOOK_UNAVAILABLE`) rather than reserved, then cancelled and refunded by the saga. It takes a
    /// [`sole_writer`](LibraryBuilder::sole_writer) library, and a policy run with one worker
    /// that is neither paused nor behind; otherwise every reaction waits for
    /// [`settle`](Library::settle) (or the background runner). Refunds, notices and the views
    /// wait for it either way.
    pub fn immediate_reactions(mut self, immediate: bool) -> Self {
        self.immediate_reactions = immediate;
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
        self.notifying = true;
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
        if self.rules.welcome_points > crate::ids::MAX_AMOUNT {
            return Err(Error::InvalidInput(format!(
                "welcome_points is {}; the largest amount lendkit holds is {} (2^53 - 1)",
                self.rules.welcome_points,
                crate::ids::MAX_AMOUNT
            )));
        }
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
        // The immediate policies start out owing what their consumer has not handled yet.
        let mut immediate = Vec::new();
        if self.sole_writer && self.immediate_reactions {
            for &policy in crate::policies::IMMEDIATE {
                if self.workers.get(policy.name).copied().unwrap_or(1) == 1 {
                    let floor = self
                        .store
                        .checkpoint(&super::consumers::checkpoint_key(policy.name, 1, 0))
                        .await?
                        .unwrap_or(0);
                    immediate.push(super::immediate::Owed::new(policy, floor));
                }
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
            states: Mutex::new(Default::default()),
            due_work: Mutex::new(super::due::DueWork::default()),
            unsynced: std::sync::atomic::AtomicBool::new(false),
            sole_writer: self.sole_writer,
            immediate,
        });
        let in_store_payment = matches!(self.payment, PaymentChoice::Points);
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
        // From the views' snapshot, when the store has a usable one: only the events after it.
        let ((book_list, member_pages, due_work), views_saved_at) =
            super::snapshot::load_views(engine.store.as_ref()).await?;
        *engine
            .due_work
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = due_work;
        let views_at = book_list.position();
        let mut oldest = u64::MAX;
        for (name, kind, n) in kinds {
            // A policy acts once for the whole library; the views are this process's own.
            let joined = match kind {
                Kind::Policy(_) => engine.bus.join(name, n).await,
                Kind::BookList | Kind::MemberPages => engine.bus.join_each_process(name).await,
            };
            joined.map_err(|e| Error::Storage(StoreError::io("joining the event bus", e)))?;
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
                    saved: checkpoint,
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
        engine.relay_stored_log().await?;
        Ok(Library {
            engine,
            gateway,
            breaker: CircuitBreaker::new(self.breaker),
            notifier: self.notifier,
            notifying: self.notifying,
            in_store_payment,
            consumers,
            book_list: Mutex::new(book_list),
            member_pages: Mutex::new(member_pages),
            max_attempts: self.max_attempts,
            retry_backoff: self.retry_backoff,
            shutdown: Shutdown::new(),
            views_saved_at: std::sync::atomic::AtomicU64::new(views_saved_at),
        })
    }
}

/// Both views (and the schedule of due work) folded from the whole log, read in batches.
pub(super) async fn fold_views(
    store: &dyn EventStore,
) -> Result<(BookList, MemberPages, super::due::DueWork)> {
    fold_views_after(store, Default::default(), 0).await
}

/// `views` brought up to the head of the log by folding the events after position `after`
/// (each view also passes over what it has already seen).
pub(super) async fn fold_views_after(
    store: &dyn EventStore,
    views: (BookList, MemberPages, super::due::DueWork),
    after: u64,
) -> Result<(BookList, MemberPages, super::due::DueWork)> {
    let (mut book_list, mut pages, mut due) = views;
    store
        .replay(after, &mut |fact| {
            book_list.apply(fact);
            pages.apply(fact);
            due.apply(fact);
        })
        .await?;
    Ok((book_list, pages, due))
}

fn policy_names() -> String {
    POLICIES
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}
