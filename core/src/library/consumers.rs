//! The consumers: policies and views reading the bus, with checkpoints, retries, back-off and dead letters.

use super::route::{Plan, Step};
use super::*;

/// What a consumer is.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Policy(&'static Policy),
    BookList,
    MemberPages,
}

pub(super) struct Worker {
    pub(super) checkpoint: u64,
    /// The checkpoint last saved in the store (policies only).
    pub(super) saved: u64,
    /// Failed tries of the event after the checkpoint.
    pub(super) attempts: u32,
    /// Tries of that event that met a payment outage (these wait, but never dead-letter it).
    pub(super) outages: u32,
    /// Not before this time is that event tried again.
    pub(super) retry_at: Option<crate::ids::Timestamp>,
}

/// Why a consumer could not handle an event.
pub(super) struct Failure {
    pub(super) message: String,
    /// Set when the call was refused without being made (the breaker is open): wait this long, and do not count it as an attempt.
    pub(super) wait: Option<std::time::Duration>,
    /// A payment outage: wait and retry, but never give up on it (money is owed).
    pub(super) outage: bool,
}

pub(super) struct Consumer {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) workers: Vec<futures::lock::Mutex<Worker>>,
    /// How many workers the consumer runs with.
    pub(super) count: usize,
    pub(super) paused: AtomicBool,
}

impl Consumer {
    /// Policies keep durable checkpoints; views are rebuilt from the log when a library opens.
    pub(super) fn durable(&self) -> bool {
        matches!(self.kind, Kind::Policy(_))
    }
    /// The durable name of one worker's checkpoint: `catalog/3#1` is worker 1 of 3. (The
    /// count is part of the name: with another count, streams fall to other workers.)
    pub(super) fn checkpoint_key(&self, worker: usize) -> String {
        checkpoint_key(self.name, self.count, worker)
    }
}

/// The durable name of worker `worker`'s checkpoint of `consumer` run with `count` workers.
pub(super) fn checkpoint_key(consumer: &str, count: usize, worker: usize) -> String {
    format!("{consumer}/{count}#{worker}")
}

/// A consumer's progress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

impl Library {
    pub(super) fn consumer(&self, name: &str) -> Result<&Consumer> {
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
    /// once their time has come. On a closed library it fails with `LIBRARY_CLOSED`.
    ///
    /// The reactions `settle` stores are written without waiting for the disk, and one sync at
    /// the end makes all of them (and the checkpoints they moved) durable: when `settle`
    /// returns, what it did survives a crash as a command does. A crash before then loses some
    /// of them, never a host's payment or notice (the library syncs before every call to a
    /// host port); the policies derive them again from the same events, under the same ids.
    pub async fn settle(&self) -> Result<()> {
        loop {
            self.shutdown.check()?;
            self.engine.relay().await?;
            if !self.run_pass().await? {
                self.save_checkpoints().await?;
                return self.engine.sync().await;
            }
        }
    }

    /// One pass over every unpaused consumer's pending events, synced at its end as
    /// [`settle`](Library::settle) is. True if anything was handled or tried.
    pub async fn run_pending(&self) -> Result<bool> {
        let worked = self.run_pass().await?;
        self.save_checkpoints().await?;
        self.engine.sync().await?;
        Ok(worked)
    }

    /// Saves, in one write, every policy checkpoint that moved since it was last saved. (A
    /// checkpoint saved late only has its policy handle those events again after a crash,
    /// which changes nothing: reactions run under ids derived from the event.)
    async fn save_checkpoints(&self) -> Result<()> {
        // (consumer, worker, position)
        let mut moved = Vec::new();
        for (i, c) in self
            .consumers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.durable())
        {
            for (w, worker) in c.workers.iter().enumerate() {
                let worker = worker.lock().await;
                if worker.checkpoint != worker.saved {
                    moved.push((i, w, worker.checkpoint));
                }
            }
        }
        if moved.is_empty() {
            return Ok(());
        }
        let batch: Vec<(String, u64)> = moved
            .iter()
            .map(|&(i, w, position)| (self.consumers[i].checkpoint_key(w), position))
            .collect();
        self.engine.store.save_checkpoints(&batch).await?;
        for (i, w, position) in moved {
            let mut worker = self.consumers[i].workers[w].lock().await;
            worker.saved = worker.saved.max(position);
        }
        Ok(())
    }

    /// [`run_pending`](Library::run_pending) without the sync at the end.
    async fn run_pass(&self) -> Result<bool> {
        self.shutdown.check()?;
        let spans = self.engine.bus.spans_processes();
        let runnable = self.consumers.iter().filter(|c| {
            // A library sharing its bus with other processes leaves the notices to those that
            // have a notifier: taking them here would drop them for everyone.
            let left_to_others = spans
                && !self.notifying
                && matches!(c.kind, Kind::Policy(p) if p.name == crate::policies::NOTICES.name);
            !c.paused.load(Ordering::SeqCst) && !left_to_others
        });
        let mut worked = false;
        if spans {
            // Each event taken from such a bus is a round trip: the consumers take theirs at
            // the same time rather than one after another. (They are independent: each keeps
            // its own checkpoint, and their reactions are commands like any other.)
            for done in futures::future::join_all(runnable.map(|c| self.run_consumer(c))).await {
                worked |= done?;
            }
        } else {
            for c in runnable {
                worked |= self.run_consumer(c).await?;
            }
        }
        Ok(worked)
    }

    /// Every worker of `c` takes and handles what the bus has for it.
    async fn run_consumer(&self, c: &Consumer) -> Result<bool> {
        let mut worked = false;
        // A bus spanning processes hands out few events at a time (NATS: one in flight per
        // consumer): it is asked again while it has more, so a pass is not one event per
        // policy. A bus in this process hands out all it holds, up to a full batch: only a full
        // one is worth asking again.
        let few_at_a_time = self.engine.bus.spans_processes();
        for (w, worker) in c.workers.iter().enumerate() {
            let mut state = worker.lock().await;
            for _ in 0..MAX_ROUNDS {
                let (progressed, received) = self.run_worker(c, w, &mut state).await?;
                worked |= progressed;
                if !progressed || received == 0 || (!few_at_a_time && received < BATCH) {
                    break;
                }
            }
        }
        Ok(worked)
    }

    /// Takes one batch from the bus for worker `w` of `c` and handles it. Returns whether
    /// anything was handled or tried, and how many events the bus handed out.
    async fn run_worker(
        &self,
        c: &Consumer,
        w: usize,
        state: &mut Worker,
    ) -> Result<(bool, usize)> {
        let bus_err = |e: crate::error::BusError| Error::Storage(StoreError::io("event bus", e));
        let now = self.engine.clock.now();
        if state.retry_at.is_some_and(|at| now < at) {
            return Ok((false, 0));
        }
        let worker = u32::try_from(w).unwrap_or(u32::MAX);
        // A bus in this process holds every relayed event routed to this worker: once the
        // worker has handled all it was handed, it has handled everything up to what was
        // relayed before it asked — even when none of it was routed here (a partition idle
        // for a while would otherwise keep an old checkpoint, show false lag and have the log
        // relayed from there at the next open). A bus spanning processes may still be
        // delivering: its workers move only with what they handle.
        let relayed = (!self.engine.bus.spans_processes())
            .then(|| self.engine.relayed_at.load(Ordering::SeqCst));
        let batch = self
            .engine
            .bus
            .receive(c.name, worker, BATCH)
            .await
            .map_err(bus_err)?;
        let start = state.checkpoint;
        // Events the checkpoint already covers (redelivered after a restart) are only acknowledged.
        let mut progressed = batch.iter().any(|e| e.position <= start);
        let mut closed = false;
        // Set when an event is left waiting (a failure, a refused call, closing).
        let mut stopped = false;
        for e in batch.iter().filter(|e| e.position > start) {
            // Reacted to within the command that stored it (see `immediate.rs`).
            let done_at_once = match c.kind {
                Kind::Policy(policy) => self.engine.reacted_at_once(policy, e.position),
                _ => false,
            };
            let handled = if done_at_once {
                Ok(())
            } else {
                // `handle`, spelled out: an event that needs no reaction (nearly all of them)
                // then costs no future of `carry_out`'s size (callgrind: 3 k instructions a
                // lifecycle less than awaiting `handle`).
                match self.apply_or_react(c.kind, e) {
                    None => Ok(()),
                    Some((policy, reactions)) => self.carry_out(policy, e, reactions).await,
                }
            };
            match handled {
                // Closing ended the handling (a host port was still busy): not a failure of the
                // event, so it is neither counted nor given up on; it is handled after reopening.
                Err(_) if self.shutdown.is_closed() => {
                    closed = true;
                    stopped = true;
                    break;
                }
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
                    stopped = true;
                    break;
                }
                Err(Failure {
                    outage: true,
                    message,
                    ..
                }) => {
                    state.outages += 1;
                    let backoff = self
                        .retry_backoff
                        .saturating_mul(1 << (state.outages - 1).min(16))
                        .min(MAX_BACKOFF);
                    tracing::warn!(
                        target: "lendkit::consumer",
                        consumer = c.name,
                        position = e.position,
                        event_type = e.type_name(),
                        outages = state.outages,
                        backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        code = message.split(':').next().unwrap_or(""),
                        "payment outage: the event waits and is tried again"
                    );
                    state.retry_at =
                        Some(now.plus_ms(i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX)));
                    stopped = true;
                    break;
                }
                Err(Failure { message, .. }) => {
                    state.attempts += 1;
                    if state.attempts < self.max_attempts {
                        let backoff = self
                            .retry_backoff
                            .saturating_mul(1 << (state.attempts - 1).min(16))
                            .min(MAX_BACKOFF);
                        tracing::warn!(
                            target: "lendkit::consumer",
                            consumer = c.name,
                            position = e.position,
                            event_type = e.type_name(),
                            attempts = state.attempts,
                            backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                            code = message.split(':').next().unwrap_or(""),
                            "an event failed: it is tried again after the back-off"
                        );
                        state.retry_at = Some(
                            now.plus_ms(i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX)),
                        );
                        stopped = true;
                        break;
                    }
                    tracing::warn!(
                        target: "lendkit::consumer",
                        consumer = c.name,
                        position = e.position,
                        event_type = e.type_name(),
                        attempts = state.attempts,
                        code = message.split(':').next().unwrap_or(""),
                        "gave up on an event: it moves to the dead letters"
                    );
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
        if let Some(relayed) = relayed {
            if !stopped && batch.len() < BATCH && relayed > state.checkpoint {
                state.checkpoint = relayed;
            }
        }
        if let Kind::Policy(policy) = c.kind {
            self.engine.passed(policy, state.checkpoint);
        }
        self.engine
            .bus
            .ack(c.name, worker, state.checkpoint)
            .await
            .map_err(bus_err)?;
        if closed {
            return Err(Error::Closed);
        }
        Ok((progressed, batch.len()))
    }

    /// Hands one event to one consumer. Rejections by the rules are expected outcomes of races
    /// the saga already resolved (a confirmation arriving after a cancellation) and count as handled.
    async fn handle(&self, kind: Kind, e: &Envelope) -> std::result::Result<(), Failure> {
        match self.apply_or_react(kind, e) {
            None => Ok(()),
            Some((policy, reactions)) => self.carry_out(policy, e, reactions).await,
        }
    }

    /// What [`handle`](Library::handle) does without waiting: a view applies the event; a policy
    /// decides its reactions, and only those (rare: most events concern none of a policy's
    /// rules) are left to [`carry_out`](Library::carry_out). So the usual event costs no future.
    fn apply_or_react(&self, kind: Kind, e: &Envelope) -> Option<(&'static Policy, Vec<Reaction>)> {
        match kind {
            Kind::BookList => {
                self.book_list
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .apply(e.fact());
                None
            }
            Kind::MemberPages => {
                self.member_pages
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .apply(e.fact());
                None
            }
            // Nobody listens for notices: none is written (each is a formatted message).
            Kind::Policy(policy)
                if !self.notifying && policy.name == crate::policies::NOTICES.name =>
            {
                None
            }
            Kind::Policy(policy) => {
                let reactions = policy.react(e);
                (!reactions.is_empty()).then_some((policy, reactions))
            }
        }
    }

    /// Carries out a policy's reactions to `e`, in order, each under its own command id.
    async fn carry_out(
        &self,
        policy: &'static Policy,
        e: &Envelope,
        reactions: Vec<Reaction>,
    ) -> std::result::Result<(), Failure> {
        for (i, reaction) in reactions.into_iter().enumerate() {
            let meta = Self::reaction_meta(policy, i, e);
            tracing::debug!(
                target: "lendkit::policy",
                policy = policy.name,
                event_type = e.type_name(),
                position = e.position,
                command_id = %meta.command_id,
                correlation_id = e.correlation_id.as_str(),
                "reaction"
            );
            match self.react(reaction, &meta).await {
                Ok(_) => {}
                Err(err) if err.is_rejection() => {}
                Err(Error::PaymentUnavailable { retry_after }) => {
                    return Err(Failure {
                        message: format!("{}: payments unavailable", ErrorCode::PaymentUnavailable),
                        wait: Some(retry_after),
                        outage: true,
                    })
                }
                Err(err) => {
                    let outage = matches!(err, Error::Payment(PaymentError::Unavailable(_)));
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

    /// Who runs a policy's `i`th reaction to `e`, and under which id: lendkit's own actor, under a
    /// command id derived from the event, so a second delivery of `e` changes nothing.
    pub(super) fn reaction_meta(policy: &Policy, i: usize, e: &Envelope) -> Meta {
        Meta {
            actor: Actor::System,
            command_id: CommandId::system_of(&[policy.name, &crate::ids::decimal(i), &e.event_id]),
            fingerprint: String::new(),
            fresh: false,
            at: None,
            correlation_id: e.correlation_id.clone(),
            causation_id: e.event_id.clone(),
            deferred: true,
            follow: false,
        }
    }

    /// Carries out one reaction; the events it stored, if any.
    pub(super) async fn react(
        &self,
        reaction: Reaction,
        meta: &Meta,
    ) -> Result<Vec<Arc<Envelope>>> {
        let step = match reaction {
            Reaction::Book(cmd) => Step::Book(cmd),
            Reaction::Rental(RentalCommand::StartLoan { rental, .. }) => {
                Step::Loan(super::route::LoanRequest::start(rental))
            }
            Reaction::Rental(cmd) => Step::Rental(cmd),
            Reaction::Delivery(cmd) => Step::Delivery(cmd),
            Reaction::Shelve(rental) => Step::Loan(super::route::LoanRequest {
                rental,
                action: super::route::LoanAction::Shelve,
            }),
            Reaction::Recall(hold) => Step::Loan(super::route::LoanRequest {
                rental: hold,
                action: super::route::LoanAction::Recall,
            }),
            Reaction::Refund(charge) => {
                self.call_gateway(self.gateway.refund(&charge)).await?;
                Step::Rental(RentalCommand::RecordRefund { rental: charge.key })
            }
            // The notifier has no time limit, so only closing ends a wait on it. What the notice
            // tells is on the disk before it is sent.
            Reaction::Notify(notice) => {
                self.engine.sync().await?;
                return self
                    .shutdown
                    .race(self.notifier.send(&notice))
                    .await?
                    .map(|()| Vec::new())
                    .map_err(|e| Error::Storage(StoreError::io("sending a notice", e)));
            }
        };
        self.engine.run_shared(Plan::one(step), meta).await
    }

    /// Hands the stored event at `position` to `consumer` once more, as an at-least-once bus may
    /// do. Policies are idempotent and views ignore what they have seen, so nothing changes twice.
    pub async fn redeliver(&self, consumer: &str, position: u64) -> Result<()> {
        self.shutdown.check()?;
        let c = self.consumer(consumer)?;
        let e = self.event_at(position).await?;
        self.handle(c.kind, &e).await.map_err(|f| {
            if self.shutdown.is_closed() {
                Error::Closed
            } else {
                Error::Storage(StoreError::Backend(f.message))
            }
        })?;
        self.engine.sync().await
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
}
