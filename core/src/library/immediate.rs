//! Reactions at once: a caller's command, and what the in-process policies do about it (the
//! copy allocated, the rental confirmed, the returned copy released), stored under one sync.
//!
//! The policies in [`IMMEDIATE`](crate::policies::IMMEDIATE) only run commands on the
//! library's own aggregates. When the library is its store's only writer, they react to a
//! caller's command before [`Library::execute`] returns: the same reactions, under the same
//! command ids derived from the event, that [`Library::settle`] would run — only sooner. The
//! command is stored without waiting for the disk, its reactions after it, and one sync makes
//! all of them durable before the caller hears of success: a reservation costs the disk what a
//! CRUD transaction that charges, inserts and allocates costs it. Refunds and notices (calls to
//! host ports) still wait for `settle`, as do the views.
//!
//! **Order is kept.** A policy reacts at once to an event only when it owes nothing older:
//! every earlier event it reacts to was handled (by its consumer or at once), none is waiting
//! in the bus, failing, or held back by a pause. Otherwise the event waits for the consumer, in
//! order, as before. Each policy keeps here the positions it still owes and those it reacted to
//! at once; its consumer passes over the latter and, as its checkpoint moves, forgets both.
//! Should a consumer meet an event at the same time (a background runner), the command ids make
//! the second reaction a no-op.
//!
//! **A crash** between the command's unsynced commit and the sync loses the command with its
//! reactions, before the caller heard of it. A reaction that fails here for any reason other than
//! the rules saying no is left to the consumer, which retries it as it retries anything.

use super::*;
use std::collections::{BTreeSet, VecDeque};

/// What one immediate policy still owes, by position.
pub(super) struct Owed {
    pub(super) policy: &'static Policy,
    state: Mutex<Owing>,
}

struct Owing {
    /// The consumer has handled everything up to here.
    floor: u64,
    /// Relayed events after `floor` the policy reacts to and has not handled yet.
    waiting: BTreeSet<u64>,
    /// Events after `floor` it reacted to at once: its consumer passes over them.
    done: BTreeSet<u64>,
}

impl Owed {
    /// `policy`, whose consumer has handled everything up to `floor`.
    pub(super) fn new(policy: &'static Policy, floor: u64) -> Owed {
        Owed {
            policy,
            state: Mutex::new(Owing {
                floor,
                waiting: BTreeSet::new(),
                done: BTreeSet::new(),
            }),
        }
    }

    fn owing(&self) -> std::sync::MutexGuard<'_, Owing> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Engine {
    /// Whether an immediate policy reacts to any of `events` (their command is then stored
    /// unsynced, and synced after the reactions).
    pub(super) fn reacts_at_once<'a>(
        &self,
        mut events: impl Iterator<Item = &'a Envelope>,
    ) -> bool {
        !self.immediate.is_empty()
            && events.any(|e| {
                let ty = e.type_name();
                self.immediate.iter().any(|o| o.policy.reacts_to(ty))
            })
    }

    /// Notes relayed events: each one an immediate policy reacts to is owed until handled.
    pub(super) fn note_relayed(&self, batch: &[Arc<Envelope>]) {
        for owed in &self.immediate {
            let mut owing = None;
            for e in batch {
                if owed.policy.reacts_to(e.type_name()) {
                    let owing = owing.get_or_insert_with(|| owed.owing());
                    if e.position > owing.floor && !owing.done.contains(&e.position) {
                        owing.waiting.insert(e.position);
                    }
                }
            }
        }
    }

    /// Takes the event at `position` for the `i`th immediate policy to react to now: only when
    /// it is owed and nothing older is.
    fn claim(&self, i: usize, position: u64) -> bool {
        let mut owing = self.immediate[i].owing();
        if owing.waiting.first() != Some(&position) {
            return false;
        }
        owing.waiting.remove(&position);
        owing.done.insert(position);
        true
    }

    /// Gives the event at `position` back to the `i`th immediate policy's consumer.
    fn give_back(&self, i: usize, position: u64) {
        let mut owing = self.immediate[i].owing();
        owing.done.remove(&position);
        owing.waiting.insert(position);
    }

    /// Whether `policy` already reacted to the event at `position` (its consumer then passes
    /// over it).
    pub(super) fn reacted_at_once(&self, policy: &Policy, position: u64) -> bool {
        self.immediate
            .iter()
            .find(|o| o.policy.name == policy.name)
            .is_some_and(|o| o.owing().done.remove(&position))
    }

    /// `policy`'s consumer has handled everything up to `checkpoint`.
    pub(super) fn passed(&self, policy: &Policy, checkpoint: u64) {
        if let Some(owed) = self.immediate.iter().find(|o| o.policy.name == policy.name) {
            let mut owing = owed.owing();
            if checkpoint > owing.floor {
                owing.floor = checkpoint;
                let after = checkpoint.saturating_add(1);
                owing.waiting = owing.waiting.split_off(&after);
                owing.done = owing.done.split_off(&after);
            }
        }
    }
}

impl Library {
    /// The immediate policies' reactions to a caller's freshly stored events — and to the
    /// events those store, and so on — then one sync for the command and all of them.
    pub(super) async fn react_at_once(&self, stored: &[Envelope]) -> Result<()> {
        if !self.engine.reacts_at_once(stored.iter()) {
            return Ok(());
        }
        let mut next = VecDeque::new();
        for e in stored {
            self.react_now(e, &mut next).await;
        }
        while let Some(e) = next.pop_front() {
            self.react_now(&e, &mut next).await;
        }
        self.engine.sync().await
    }

    /// Every immediate policy that owes nothing older reacts to `e`; what they store joins `next`.
    async fn react_now(&self, e: &Envelope, next: &mut VecDeque<Arc<Envelope>>) {
        for (i, owed) in self.engine.immediate.iter().enumerate() {
            let policy = owed.policy;
            if !policy.reacts_to(e.type_name())
                || self.shutdown.is_closed()
                || self
                    .consumers
                    .iter()
                    .any(|c| c.name == policy.name && c.paused.load(Ordering::SeqCst))
                || !self.engine.claim(i, e.position)
            {
                continue;
            }
            let mut handled = true;
            tracing::debug!(
                target: "lendkit::policy",
                policy = policy.name,
                event_type = e.type_name(),
                position = e.position,
                correlation_id = e.correlation_id.as_str(),
                "reaction within the command"
            );
            for (k, reaction) in policy.react(e).into_iter().enumerate() {
                if matches!(reaction, Reaction::Refund(_) | Reaction::Notify(_)) {
                    // A host port: the consumer calls it, after the sync.
                    handled = false;
                    break;
                }
                match self
                    .react(reaction, &Self::reaction_meta(policy, k, e))
                    .await
                {
                    Ok(events) => next.extend(events),
                    Err(err) if err.is_rejection() => {}
                    Err(_) => {
                        handled = false;
                        break;
                    }
                }
            }
            if !handled {
                tracing::info!(
                    target: "lendkit::policy",
                    policy = policy.name,
                    event_type = e.type_name(),
                    position = e.position,
                    "a reaction within the command failed: left to the policy's consumer"
                );
                self.engine.give_back(i, e.position);
            }
        }
    }
}
