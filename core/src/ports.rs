//! The ports: every way the core touches the world. Adapters implement them; the core never does I/O itself.
//!
//! | port | promise |
//! |---|---|
//! | [`EventStore`] | atomic, version-checked appends (several streams at once); a gap-free global log; durable checkpoints and command-id records |
//! | [`EventBus`] | hands committed events to consumer groups: each event to exactly one worker of each group, in order per stream |
//! | [`PaymentGateway`] | charges and refunds, idempotent per key |
//! | [`Notifier`] | sends a notice to a member; may fail, is retried |
//! | [`Clock`] | the time |

use crate::error::{BusError, NotifyError, PaymentError, StoreError};
use crate::event::{Envelope, Fact, Recorded};
use crate::ids::{CommandId, MemberId, Points, RentalId, StreamId, Timestamp};
use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Events for one stream in a [`Commit`], with the version the writer decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppend {
    /// The stream.
    pub stream: StreamId,
    /// The stream's version the decision was made on (0 for a new stream). Checked inside the store's transaction.
    pub expected_version: u64,
    /// Envelopes with `version` filled in (`expected_version + 1…`) and `position` 0; the store assigns positions.
    /// Empty means: only check the version (a guard on a stream the decision read).
    pub events: Vec<Envelope>,
}

/// One command's write: its events in one or more streams, stored atomically under the
/// command's id. A command id names one effect in the whole library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The command that decided these events. Recorded with the events, once per library: a
    /// second commit under the same id fails with [`StoreError::CommandApplied`].
    pub command_id: CommandId,
    /// What the command was ([`Command::fingerprint`](crate::Command::fingerprint)), so a
    /// re-sent id with other arguments can be told from a retry; empty for lendkit's own
    /// commands (policies, the points gateway).
    pub fingerprint: String,
    /// The streams written (and guarded), each checked against its expected version.
    pub appends: Vec<StreamAppend>,
}

/// What the store recorded for an applied command id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    /// The [`Commit::fingerprint`] it was stored with (empty when unknown or lendkit's own).
    pub fingerprint: String,
    /// The events it stored, in position order.
    pub events: Vec<Envelope>,
}

/// How many events [`EventStore::replay`]'s default reads at a time.
pub const REPLAY_BATCH: usize = 4096;

/// The event log. Implementations must pass `lendkit_adapters::contract`.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores a commit atomically: either every stream's version matches, the command id was
    /// never applied, and every event is stored with the next global positions under one
    /// command record; or nothing is stored and the error says why —
    /// [`StoreError::Conflict`] names the first stale stream, [`StoreError::CommandApplied`] the
    /// command id that already has a record. The version checks, the command-id check, the
    /// position assignment and the record happen inside one transaction. A commit that stores
    /// no event (only version guards) records nothing. Returns the stored envelopes in position order.
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError>;

    /// [`append`](EventStore::append) without waiting for the disk: the commit is stored,
    /// ordered and readable when this returns, but a crash may lose it until the next
    /// [`sync`](EventStore::sync) or synced `append` returns. A crash loses a suffix of the
    /// unsynced commits, never one in the middle: whatever survives is a prefix of what was
    /// stored. The library uses it for the reactions of a settle pass (which it can derive again
    /// from the events they react to, under the same command ids) and syncs once at the end of
    /// the pass and before any call to a host port. Stores that sync every commit anyway (or
    /// never) keep this default.
    async fn append_unsynced(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.append(commit).await
    }

    /// Makes every commit and checkpoint stored so far as durable as a synced
    /// [`append`](EventStore::append) would be: one sync for all of them. Cheap when nothing
    /// is waiting; the default (for stores without a disk) does nothing.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Every event of one stream, in version order (empty for an unknown stream).
    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, StoreError>;

    /// The events of one stream with `version > after_version`, in version order. The library
    /// keeps folded aggregates in memory and reads only what is newer; adapters should answer
    /// this without reading the older events.
    async fn read_stream_from(
        &self,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut events = self.read_stream(stream).await?;
        events.retain(|e| e.version > after_version);
        Ok(events)
    }

    /// Up to `limit` events with `position > after`, in position order.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError>;

    /// [`read_all`](EventStore::read_all) without the envelopes' ids: each event's position,
    /// instant and event, what rebuilding the read models folds. The default reads whole
    /// envelopes; a store that keeps the compact form overrides it to step over the ids
    /// ([`Envelope::decode_recorded`]) instead of copying them.
    async fn read_recorded(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, StoreError> {
        Ok(self
            .read_all(after, limit)
            .await?
            .into_iter()
            .map(Recorded::from)
            .collect())
    }

    /// Every event with `position > after`, handed to `fold` one at a time in position order
    /// as the read models see it (a [`Fact`]); returns the position of the last event folded
    /// (`after` when there was none). What rebuilding the read models reads: the whole log, or
    /// what follows a snapshot. The default reads
    /// [`read_recorded`](EventStore::read_recorded) in batches; a store may read ahead on a
    /// thread of its own while `fold` runs (the sled store does, for long replays), but hands
    /// the events to `fold` on the calling thread, in order, each once. An error stops the
    /// replay: what was folded before it stays folded.
    async fn replay(
        &self,
        mut after: u64,
        fold: &mut (dyn for<'e> FnMut(Fact<'e>) + Send),
    ) -> Result<u64, StoreError> {
        loop {
            let batch = self.read_recorded(after, REPLAY_BATCH).await?;
            let Some(last) = batch.last() else {
                return Ok(after);
            };
            after = last.position;
            for event in &batch {
                fold(event.fact());
            }
        }
    }

    /// The highest position stored (0 for an empty log).
    async fn head(&self) -> Result<u64, StoreError>;

    /// The record of an applied command id (its fingerprint and the events it stored), or
    /// `None` when no commit under that id stored anything.
    async fn command(&self, command: &CommandId) -> Result<Option<CommandRecord>, StoreError>;

    /// The last position `consumer` has handled, if it ever saved one.
    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError>;

    /// Records that `consumer` has handled everything it should up to `position`. A durable
    /// store may make it durable with its next synced append rather than on its own: a
    /// checkpoint lost to a crash only has the consumer handle those events again, which the
    /// consumers make harmless (reactions run under command ids derived from the event; notices
    /// are at least once). A store shared by several processes keeps the greatest position
    /// saved, so that two processes saving one consumer's checkpoint in either order cannot
    /// move it back.
    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError>;

    /// [`save_checkpoint`](EventStore::save_checkpoint) for several consumers at once, as one
    /// write where the store can (the library saves the checkpoints a settle moved together).
    async fn save_checkpoints(&self, checkpoints: &[(String, u64)]) -> Result<(), StoreError> {
        for (consumer, position) in checkpoints {
            self.save_checkpoint(consumer, *position).await?;
        }
        Ok(())
    }

    /// Every saved checkpoint, by consumer name (to copy a library between stores).
    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Stores a dead letter (an event a consumer gave up on).
    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError>;

    /// Every dead letter not yet replayed, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;

    /// Removes a dead letter (after a successful replay); false when there was none with that id.
    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError>;

    /// The snapshot saved under `name`, if there is one: the log position it was taken at and
    /// its bytes. A snapshot is a cache of what the log says (the views folded up to a
    /// position, so that an open folds only the events after it): a store may lose one at
    /// any time, and the default keeps none.
    async fn snapshot(&self, name: &str) -> Result<Option<(u64, SnapshotBody)>, StoreError> {
        let _ = name;
        Ok(None)
    }

    /// Saves `body` as the snapshot `name` taken at log position `position`, replacing the one
    /// before all or nothing. The caller syncs the log up to `position` first, so a snapshot
    /// never gets ahead of what survives a crash. The default keeps nothing.
    async fn save_snapshot(
        &self,
        name: &str,
        position: u64,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        let _ = (name, position, body);
        Ok(())
    }
}

/// An event a consumer could not handle after every retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// `consumer@position`.
    pub id: String,
    /// The consumer group that gave up.
    pub consumer: String,
    /// Global position of the event.
    pub position: u64,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The last error.
    pub error: String,
    /// How many times it was tried.
    pub attempts: u32,
}

/// Hands committed events to consumer groups.
///
/// Each registered group has a number of workers; every published event goes to exactly one
/// worker of every group, chosen by its stream, so one stream's events reach one worker in
/// order. Delivery is at-least-once: an event stays pending for its worker until acknowledged.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Registers a consumer group with `workers` workers (at least one). Events published before a group joins are not delivered to it.
    async fn join(&self, group: &str, workers: u32) -> Result<(), BusError>;

    /// Registers a group that every process runs for itself, with one worker: a view each
    /// process keeps in its own memory. A bus that spans processes delivers every event to this
    /// group in every process (where a group from [`join`](EventBus::join) gets each event in
    /// one process only); a bus within one process treats it as `join(group, 1)`, which is
    /// what this method does unless a bus says otherwise.
    async fn join_each_process(&self, group: &str) -> Result<(), BusError> {
        self.join(group, 1).await
    }

    /// Whether other processes take events from this bus too (false unless a bus says so).
    /// A library on such a bus leaves a policy it cannot carry out (notices, without a
    /// notifier) to the processes that can.
    fn spans_processes(&self) -> bool {
        false
    }

    /// Publishes committed events, in position order.
    async fn publish(&self, events: &[Arc<Envelope>]) -> Result<(), BusError>;

    /// Up to `max` pending events for one worker of a group, oldest first, without removing them.
    async fn receive(
        &self,
        group: &str,
        worker: u32,
        max: usize,
    ) -> Result<Vec<Arc<Envelope>>, BusError>;

    /// Removes the worker's pending events with `position <= upto`.
    async fn ack(&self, group: &str, worker: u32, upto: u64) -> Result<(), BusError>;
}

/// A snapshot's bytes as a store hands them out: its own buffer where it can (a snapshot can
/// be tens of megabytes, and a copy of it would count in an opening library's peak memory),
/// else a `Vec`. Reads as `&[u8]`.
pub struct SnapshotBody(Box<dyn AsRef<[u8]> + Send + Sync>);

impl SnapshotBody {
    /// `bytes`, kept as they are.
    pub fn new(bytes: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        SnapshotBody(Box::new(bytes))
    }
}

impl std::ops::Deref for SnapshotBody {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl From<Vec<u8>> for SnapshotBody {
    fn from(bytes: Vec<u8>) -> Self {
        SnapshotBody::new(bytes)
    }
}

impl PartialEq for SnapshotBody {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SnapshotBody {}

impl std::fmt::Debug for SnapshotBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapshotBody({} bytes)", self.len())
    }
}

/// What a successful charge returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReceipt {
    /// The gateway's id for the payment.
    pub payment_id: String,
}

/// A charge to refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRef {
    /// The idempotency key the charge was made with (the rental id).
    pub key: RentalId,
    /// Who was charged.
    pub member: MemberId,
    /// How much.
    pub amount: Points,
}

/// Takes payment for rentals. Both calls are idempotent per key: a repeated charge or refund
/// with the same key must not move money twice.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Charges `member` `amount` points for the rental `key`.
    async fn charge(
        &self,
        member: &MemberId,
        amount: Points,
        key: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError>;
    /// Refunds the charge made with `charge.key`.
    async fn refund(&self, charge: &ChargeRef) -> Result<(), PaymentError>;
}

/// A message to a member about their rental or delivery (문자 알림).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Who hears of it.
    pub member_id: String,
    /// The rental it is about.
    pub rental_id: String,
    /// The event that caused it (`RentalConfirmed`, `DeliveryStarted`, …).
    pub kind: String,
    /// A readable sentence.
    pub message: String,
    /// The id of the event, so a notifier can drop duplicates.
    pub event_id: String,
}

/// Sends notices. Failures are retried by the notices consumer and never block rentals.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one notice.
    async fn send(&self, notice: &Notice) -> Result<(), NotifyError>;
}

/// The time, and a way to wait.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
    /// A future that completes after `duration`. Used to time out payment calls; a clock that
    /// cannot wait returns a future that never completes, which disables call timeouts.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let _ = duration;
        Box::pin(futures::future::pending())
    }
}
