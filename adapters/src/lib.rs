//! # lendkit-adapters
//!
//! Embedded adapters for the [ports](lendkit_core::ports) of `lendkit-core`: everything a library
//! needs to run in one process, without a database or a network.
//!
//! | adapter | port | promise |
//! |---|---|---|
//! | [`InMemoryEventStore`] | [`EventStore`](lendkit_core::ports::EventStore) | every append is one transaction under one lock: version checks for every stream, gap-free positions from 1 in commit order, command-id records; all or nothing. Not durable. |
//! | [`InMemoryEventBus`] | [`EventBus`](lendkit_core::ports::EventBus) | every event to exactly one worker of every joined group, chosen by a stable hash of its stream, so one stream's events reach one worker in order; redelivered until acknowledged |
//! | [`SystemClock`] | [`Clock`](lendkit_core::ports::Clock) | wall-clock time in ms since the epoch; real timers |
//! | [`ManualClock`] | [`Clock`](lendkit_core::ports::Clock) | time that only moves when a test moves it; its sleeps end when the time is moved past them |
//! | [`RecordingNotifier`] | [`Notifier`](lendkit_core::ports::Notifier) | keeps every notice sent; can be told to fail the next sends |
//! | `SledEventStore` (feature `sled`) | [`EventStore`](lendkit_core::ports::EventStore) | durable: one sled transaction per append; flush before returning by default (group commit), or periodic flushes |
//! | `SqliteEventStore` (feature `sqlite`) | [`EventStore`](lendkit_core::ports::EventStore) | durable, in one SQLite file (WAL) that SQLite's own tools can read: one `BEGIN IMMEDIATE` transaction per group of concurrent appends, each checked and stored all or nothing; synced before returning by default (`synchronous=FULL`), or `synchronous=NORMAL` with periodic checkpoints |
//! | `PgEventStore` (feature `pg`) | [`EventStore`](lendkit_core::ports::EventStore) | durable and shared by processes: the tables of one PostgreSQL schema; one transaction per append, streams locked in sorted order and version-checked, the command id recorded, positions taken last from one counter row (gap-free, in commit order); synced by PostgreSQL's commit |
//! | `NatsEventBus` (feature `nats`) | [`EventBus`](lendkit_core::ports::EventBus) | shared by processes: one JetStream stream whose sequence is the log's position (each event published expecting its predecessor: no gap, no double); each policy's events go to one process at a time, one in flight per partition, so one stream's events are handled in order; the views are each process's own, fed in memory |
//! | [`NullNotifier`] | [`Notifier`](lendkit_core::ports::Notifier) | accepts and drops every notice |
//!
//! With the `contract` feature, the `contract` module holds the conformance suite every
//! [`EventStore`](lendkit_core::ports::EventStore) adapter must pass; `InMemoryEventStore` passes it.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod clock;
#[cfg(feature = "contract")]
pub mod contract;
pub mod durability;
#[cfg(any(feature = "sled", feature = "sqlite"))]
mod lock_file;
pub mod memory_bus;
pub mod memory_store;
#[cfg(feature = "nats")]
pub mod nats_bus;
pub mod notifier;
#[cfg(feature = "pg")]
pub mod pg_store;
#[cfg(any(feature = "sqlite", feature = "pg"))]
mod record;
#[cfg(any(feature = "pg", feature = "nats"))]
mod runtime;
#[cfg(feature = "sled")]
pub mod sled_store;
#[cfg(feature = "sqlite")]
pub mod sqlite_store;

pub use clock::{ManualClock, SystemClock};
pub use durability::Durability;
pub use memory_bus::InMemoryEventBus;
pub use memory_store::InMemoryEventStore;
#[cfg(feature = "nats")]
pub use nats_bus::{NatsEventBus, NatsOptions};
pub use notifier::{NullNotifier, RecordingNotifier};
#[cfg(feature = "pg")]
pub use pg_store::{PgEventStore, PgOptions};
#[cfg(feature = "sled")]
pub use sled_store::SledEventStore;
#[cfg(feature = "sqlite")]
pub use sqlite_store::SqliteEventStore;
