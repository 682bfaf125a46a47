//! The engine: loads aggregates (kept folded in memory), decides, appends, and relays what was committed to the bus.

use super::folds::{Folded, Folds};
use super::route::{Plan, Step};
use super::*;

/// The store, the clock and the relay to the bus: what the library and the default gateway share.
pub(crate) struct Engine {
    pub(super) store: Arc<dyn EventStore>,
    pub(super) bus: Arc<dyn EventBus>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) rules: Rules,
    /// The last position handed to the bus.
    pub(super) relayed: futures::lock::Mutex<u64>,
    /// The same, readable without waiting.
    pub(super) relayed_at: std::sync::atomic::AtomicU64,
    /// Events this process stored and has not relayed yet, by position.
    pub(super) recent: Mutex<std::collections::BTreeMap<u64, Arc<Envelope>>>,
    /// Called after new events were handed to the bus (a background runner wakes up on it).
    pub(super) on_commit: Option<CommitHook>,
    /// Folded aggregates by stream, with the version they are folded to. Loading reads only
    /// the newer events, so a long stream costs no more to load than a short one.
    pub(super) states: Mutex<Folds>,
    /// The clock-driven work on open loans (see `due.rs`): folded from the log at build, kept
    /// current here as events are relayed.
    pub(super) due_work: Mutex<super::due::DueWork>,
    /// Set when a reaction was stored unsynced ([`Meta::deferred`]); [`Engine::sync`] clears
    /// it. Not the store's own notion of what waits: checkpoints alone wait for the next
    /// append rather than cost a sync of their own.
    pub(super) unsynced: std::sync::atomic::AtomicBool,
    /// Nothing else appends to the store (see [`LibraryBuilder::sole_writer`]).
    pub(super) sole_writer: bool,
    /// The policies that react within the command that caused them, with what each still
    /// owes (see `immediate.rs`); empty when reactions wait for [`Library::settle`].
    pub(super) immediate: Vec<super::immediate::Owed>,
}

/// What [`Engine::run_shared`] stored: the caller's own copy, or the relay's shared one.
enum Committed {
    Owned(Vec<Envelope>),
    Shared(Vec<Arc<Envelope>>),
}

/// One step decided: its stream, the version it was decided on, the new events and the state
/// after them (kept in the cache once they are stored).
pub(super) struct Decided {
    pub(super) stream: StreamId,
    pub(super) version: u64,
    pub(super) events: Vec<Event>,
    /// `None` when the aggregate is [final](crate::aggregate::Aggregate::is_final): not kept.
    state: Option<Folded>,
}

/// A function called after newly committed events were handed to the bus.
pub type CommitHook = Arc<dyn Fn() + Send + Sync>;

impl Engine {
    /// How many holds `member` has now that have not ended (as far as the relay has folded).
    pub(super) fn holds_of(&self, member: &MemberId) -> usize {
        self.due_work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .holds_of(member)
    }

    /// The aggregate in `stream`, folded to its newest version. The folded state is taken out of
    /// the cache in its box (no copy, no allocation) and only events newer than it are read;
    /// give the box back with [`keep`](Engine::keep) once done. (A concurrent loader of the same
    /// stream meanwhile folds from the start: slower, equally correct.)
    pub(super) async fn load<A: Stored>(&self, stream: &StreamId) -> Result<(Box<A>, u64)> {
        let cached = self.folds().take::<A>(stream);
        if self.sole_writer {
            if let Some(current) = cached {
                // Every append to the store went through this engine, which keeps the fold
                // after it: nothing newer can be stored.
                return Ok(current);
            }
        }
        let (mut state, mut version) = cached.unwrap_or_default();
        for e in self.store.read_stream_from(stream, version).await? {
            if let Some(own) = A::own_event(&e.event) {
                state.apply(own);
            }
            version = e.version;
        }
        self.folds().loaded(stream, version);
        Ok((state, version))
    }

    /// The cache of folded aggregates, locked.
    fn folds(&self) -> std::sync::MutexGuard<'_, Folds> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a folded aggregate back in the cache, unless a newer fold is already there (or the
    /// cache made room since the load: see `folds.rs`). A [final](Aggregate::is_final)
    /// aggregate is not kept: its entry goes, and a later load reads the store.
    pub(super) fn keep<A: Aggregate>(&self, stream: &StreamId, state: Box<A>, version: u64) {
        self.keep_boxed(stream, version, Self::worth_keeping(state));
    }

    /// The state to keep once stored: none for a [final](Aggregate::is_final) aggregate.
    fn worth_keeping<A: Aggregate>(state: Box<A>) -> Option<Folded> {
        (!state.is_final()).then_some(state as Folded)
    }

    /// [`keep`](Engine::keep) for a state already boxed (`None`: a final aggregate's entry
    /// goes).
    fn keep_boxed(&self, stream: &StreamId, version: u64, state: Option<Folded>) {
        self.folds().keep(stream, version, state);
    }

    /// For a load whose fold does not come back: drops the marker it left in the cache.
    pub(super) fn release(&self, stream: &StreamId, version: u64) {
        self.folds().release(stream, version);
    }

    /// Notes that `stream` is at `version` in the store (an append found it there): no fold
    /// older than that goes back into the cache, and the next load reads the store.
    pub(super) fn stale(&self, stream: &StreamId, version: u64) {
        self.folds().stale(stream, version);
    }

    /// The events a command id already stored, if it was applied: a retry of the same command
    /// (or a command id whose fingerprint is unknown) gets them back; the id applied to a
    /// different command is `COMMAND_ID_REUSED`.
    pub(super) async fn recorded(&self, meta: &Meta) -> Result<Option<Vec<Envelope>>> {
        let Some(record) = self.store.command(&meta.command_id).await? else {
            return Ok(None);
        };
        if record.fingerprint.is_empty() || record.fingerprint == meta.fingerprint {
            return Ok(Some(record.events));
        }
        Err(Error::CommandIdReused {
            command_id: meta.command_id.to_string(),
            previous: record.events.first().map_or_else(
                || "an earlier command".to_owned(),
                |e| format!("{} in {}", e.type_name(), e.stream),
            ),
        })
    }

    /// A refusal `e` — unless a concurrent retry of the same command was stored meanwhile
    /// (the state was decided on after that retry's events, so the rules said no to doing it
    /// twice): then that retry's outcome is this command's too.
    pub(super) async fn refused(&self, e: Error, meta: &Meta) -> Result<Vec<Envelope>> {
        match self.recorded(meta).await {
            Ok(Some(done)) => Ok(done),
            _ => Err(e),
        }
    }

    /// The commit of `appends` under `meta`'s command id and fingerprint.
    pub(super) fn commit(meta: &Meta, appends: Vec<StreamAppend>) -> Commit {
        Commit {
            command_id: meta.command_id.clone(),
            fingerprint: meta.fingerprint.clone(),
            appends,
        }
    }

    /// Whether a failed commit is worth deciding again: a stream moved on (decide on fresh
    /// state), or the command id was applied meanwhile (the next try returns that outcome).
    pub(super) fn retry(e: &StoreError, attempt: u32) -> bool {
        matches!(
            e,
            StoreError::Conflict { .. } | StoreError::CommandApplied(_)
        ) && attempt + 1 < MAX_CONFLICT_RETRIES
    }

    pub(super) fn context(&self, meta: &Meta) -> Context {
        Context {
            actor: meta.actor.clone(),
            now: meta.at.unwrap_or_else(|| self.clock.now()),
            command_id: meta.command_id.clone(),
            rules: self.rules.clone(),
        }
    }

    pub(super) fn envelopes(
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

    /// Decides `command` on the aggregate in `stream`: the events and the state after them.
    /// A refusal puts the state back in the cache and is the error.
    pub(super) async fn decide<A: Stored>(
        &self,
        stream: StreamId,
        command: &A::Command,
        ctx: &Context,
    ) -> Result<Decided> {
        let (mut state, version) = self.load::<A>(&stream).await?;
        let events = match state.decide(command, ctx) {
            Ok(events) => events,
            Err(e) => {
                self.keep(&stream, state, version);
                return Err(e.into());
            }
        };
        for e in &events {
            state.apply(e);
        }
        Ok(Decided {
            stream,
            version,
            events: events.into_iter().map(Into::into).collect(),
            state: Self::worth_keeping(state),
        })
    }

    /// [`decide`](Engine::decide) for a step, on the aggregate it names.
    async fn decide_step(&self, step: &Step, ctx: &Context) -> Result<Decided> {
        let stream = step.stream();
        match step {
            Step::Book(c) => self.decide::<Book>(stream, c, ctx).await,
            Step::Member(c) => self.decide::<Member>(stream, c, ctx).await,
            Step::Account(c) => self.decide::<PointAccount>(stream, c, ctx).await,
            Step::Rental(c) => self.decide::<Rental>(stream, c, ctx).await,
            Step::Delivery(c) => self.decide::<Delivery>(stream, c, ctx).await,
            Step::Rules(c) => {
                self.decide::<crate::circulation::CirculationRules>(stream, c, ctx)
                    .await
            }
            Step::Loan(_) => Err(Error::Internal(
                "a loan step reached the engine unexpanded".into(),
            )),
        }
    }

    /// Runs a plan: decides its steps in order (each filled in from the stream it reads) and
    /// stores them in one commit, with a version guard on every stream read. A command id
    /// already applied returns its events; a stream that moved meanwhile means deciding again.
    pub(super) async fn run(&self, plan: Plan, meta: &Meta) -> Result<Vec<Envelope>> {
        match self.run_committed(plan, meta).await? {
            Committed::Owned(events) => Ok(events),
            Committed::Shared(_) => Ok(Vec::new()),
        }
    }

    /// [`run`](Engine::run) for a reaction ([`Meta::deferred`]): the events it stored, as the
    /// relay shares them (no copy is made).
    pub(super) async fn run_shared(&self, plan: Plan, meta: &Meta) -> Result<Vec<Arc<Envelope>>> {
        match self.run_committed(plan, meta).await? {
            Committed::Owned(events) => Ok(events.into_iter().map(Arc::new).collect()),
            Committed::Shared(events) => Ok(events),
        }
    }

    /// Stores a commit of `meta`'s command: synced, unless it is a reaction
    /// ([`Meta::deferred`]) or a caller's command whose events some policy reacts to at once
    /// ([`Meta::follow`]; the caller then syncs once after those reactions).
    pub(super) async fn store_commit(
        &self,
        commit: Commit,
        meta: &Meta,
    ) -> std::result::Result<Vec<Envelope>, StoreError> {
        let unsynced = meta.deferred
            || (meta.follow
                && self.reacts_at_once(commit.appends.iter().flat_map(|a| a.events.iter())));
        if !unsynced {
            return self.store.append(commit).await;
        }
        let stored = self.store.append_unsynced(commit).await?;
        if !stored.is_empty() {
            self.unsynced.store(true, Ordering::SeqCst);
        }
        Ok(stored)
    }

    async fn run_committed(&self, mut plan: Plan, meta: &Meta) -> Result<Committed> {
        let mut attempt = 0;
        loop {
            // A reaction does not look first: it is new nearly always, and when its event is
            // delivered again the store refuses the repeated command id atomically, and the
            // next try returns what was recorded. (A caller's command with its own id looks
            // first, so that a retry costs no decision.)
            if attempt > 0 || (!meta.fresh && !meta.deferred) {
                if let Some(done) = self.recorded(meta).await? {
                    return Ok(Committed::Owned(done));
                }
            }
            let ctx = self.context(meta);
            let expanded = match self.expand(&plan.steps, &ctx).await {
                Ok(e) => e,
                Err(e) => return self.refused(e, meta).await.map(Committed::Owned),
            };
            let mut guards = expanded.guards;
            let mut expanded_steps = expanded.steps;
            let steps: &mut [Step] = match &mut expanded_steps {
                Some(steps) => steps,
                None => &mut plan.steps,
            };
            let mut decided = Vec::with_capacity(steps.len());
            for step in steps.iter_mut() {
                if let Some(read) = step.reads() {
                    let events = self.store.read_stream(&read).await?;
                    step.fill(&events);
                    guards.push(StreamAppend {
                        expected_version: events.last().map_or(0, |e| e.version),
                        stream: read,
                        events: vec![],
                    });
                }
                match self.decide_step(step, &ctx).await {
                    Ok(d) => decided.push(d),
                    Err(e) => return self.refused(e, meta).await.map(Committed::Owned),
                }
            }
            // The expansion read a stream this plan also writes: decided on another version,
            // its terms may be stale — decide again.
            let moved = expanded.pinned.iter().any(|(stream, version)| {
                decided
                    .iter()
                    .any(|d| &d.stream == stream && d.version != *version)
            });
            if moved && attempt + 1 < MAX_CONFLICT_RETRIES {
                // The decided states hold events that were not stored: none goes back (the
                // loads left their versions noted), so the next try folds from the store.
                drop(decided);
                attempt += 1;
                continue;
            }
            if decided.iter().all(|d| d.events.is_empty()) {
                for d in decided {
                    self.keep_boxed(&d.stream, d.version, d.state);
                }
                return Ok(Committed::Owned(Vec::new()));
            }
            let mut appends: Vec<StreamAppend> = decided
                .iter_mut()
                .map(|d| StreamAppend {
                    stream: d.stream.clone(),
                    expected_version: d.version,
                    events: Self::envelopes(
                        &d.stream,
                        d.version,
                        meta,
                        &ctx,
                        std::mem::take(&mut d.events),
                    ),
                })
                .collect();
            appends.append(&mut guards);
            let written: Vec<u64> = appends.iter().map(|a| a.events.len() as u64).collect();
            let commit = Self::commit(meta, appends);
            match self.store_commit(commit, meta).await {
                Ok(stored) => {
                    for (d, n) in decided.into_iter().zip(written) {
                        self.keep_boxed(&d.stream, d.version + n, d.state);
                    }
                    if meta.deferred {
                        // A reaction's events go to the relay without a copy; whoever reacts
                        // to them at once shares the relay's (see [`Meta::deferred`]).
                        return Ok(Committed::Shared(self.relay_owned(stored).await));
                    }
                    self.relay_stored(&stored).await;
                    return Ok(Committed::Owned(stored));
                }
                Err(e) if Self::retry(&e, attempt) => {
                    if let StoreError::Conflict { stream, actual, .. } = &e {
                        if let Some(d) = decided.iter().find(|d| d.stream.to_string() == *stream) {
                            self.stale(&d.stream, *actual);
                        }
                    }
                    attempt += 1
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Makes every commit stored unsynced so far durable (one sync of the store), if there is any.
    pub(super) async fn sync(&self) -> Result<()> {
        if self.unsynced.swap(false, Ordering::SeqCst) {
            let started = std::time::Instant::now();
            if let Err(e) = self.store.sync().await {
                self.unsynced.store(true, Ordering::SeqCst);
                tracing::warn!(target: "lendkit::store", error = %e, "sync failed");
                return Err(e.into());
            }
            tracing::debug!(
                target: "lendkit::store",
                micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "synced"
            );
        }
        Ok(())
    }

    /// Hands every committed event not yet relayed to the bus, in position order. A library
    /// that is its store's only writer relays what it stored itself, from memory: nobody else
    /// stores anything, so the store is read only to fill a gap.
    pub(super) async fn relay(&self) -> Result<()> {
        self.relay_from_store(!self.sole_writer).await
    }

    /// [`relay`](Engine::relay), reading the store for everything after what was relayed: at
    /// open, for what was stored before.
    pub(super) async fn relay_stored_log(&self) -> Result<()> {
        self.relay_from_store(true).await
    }

    /// [`relay`](Engine::relay); with `look` false, the store is read only to fill a gap
    /// between what this process stored — not to find what others may have (the next
    /// [`relay`](Engine::relay), at every settle, looks): a commit costs no read.
    async fn relay_from_store(&self, look: bool) -> Result<()> {
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
            if remembered.is_empty()
                && !look
                && self
                    .recent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_empty()
            {
                return Ok(());
            }
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
            {
                let mut due = self.due_work.lock().unwrap_or_else(PoisonError::into_inner);
                for e in &batch {
                    crate::views::View::apply(&mut *due, e.fact());
                }
            }
            self.note_relayed(&batch);
            self.bus
                .publish(&batch)
                .await
                .map_err(|e| Error::Storage(StoreError::io("publishing to the event bus", e)))?;
            *relayed = last;
            self.relayed_at.store(last, Ordering::SeqCst);
            if let Some(hook) = &self.on_commit {
                hook();
            }
        }
    }

    /// Notes freshly stored events and relays. The events are stored either way, so a failing
    /// bus must not turn the command into an error; the next [`Library::settle`] relays again.
    pub(super) async fn relay_stored(&self, stored: &[Envelope]) {
        self.relay_owned(stored.to_vec()).await;
    }

    /// [`relay_stored`](Engine::relay_stored) taking the events, so none is copied: they come
    /// back as the relay shares them.
    async fn relay_owned(&self, stored: Vec<Envelope>) -> Vec<Arc<Envelope>> {
        let shared: Vec<Arc<Envelope>> = stored.into_iter().map(Arc::new).collect();
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            for e in &shared {
                recent.insert(e.position, Arc::clone(e));
            }
        }
        let _ = self.relay_from_store(false).await;
        shared
    }
}
