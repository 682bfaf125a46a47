//! # lendkit
//!
//! The circulation rules of a lending library — books and copies, members and their points,
//! reservations paid with points, loans, returns, cancellations with refunds, deliveries and
//! notices — as one embeddable, event-sourced core that Rust, Python and Node run unchanged.
//!
//! This facade re-exports [`lendkit_core`] (the rules) and wires the embedded adapters of
//! [`lendkit_adapters`] behind its ports.
//!
//! ```
//! use lendkit::{block_on, in_memory, Actor, Command};
//!
//! block_on(async {
//!     let lib = in_memory().build().await?;
//!     let librarian = Actor::librarian("lib-1");
//!     lib.execute(Command::RegisterBook { book_id: "isbn-1".into(), title: "Domain-Driven Design".into(), author: None, copies: 1, fee: 30, item_type: None, branch: None }, &librarian).await?;
//!     lib.execute(Command::JoinMember { member_id: "m-1".into(), name: "Kim".into(), contact: None, group: None }, &librarian).await?;
//!     let kim = Actor::member("m-1");
//!     let reserved = lib.execute(Command::ReserveBook { book_id: "isbn-1".into(), member_id: "m-1".into(), rental_id: None, delivery_address: None, wait: None }, &kim).await?;
//!     lib.settle().await?; // the saga runs: a copy is allocated, the rental confirmed
//!     assert_eq!(lib.member_page("m-1")?.points, 70);
//!     assert_eq!(lib.member_page("m-1")?.rentals[0].status, "confirmed");
//!     let rental_id = reserved.rental_id.expect("reserve_book names its rental").to_string();
//!     lib.execute(Command::CancelRental { rental_id, reason: None }, &kim).await?;
//!     lib.settle().await?; // refund, copy release
//!     assert_eq!(lib.member_page("m-1")?.points, 100);
//!     assert_eq!(lib.book_list()[0].available, 1);
//!     Ok::<_, lendkit::Error>(())
//! })?;
//! # Ok::<_, lendkit::Error>(())
//! ```

pub use futures::executor::block_on;
pub use lendkit_adapters as adapters;
pub use lendkit_core::*;
pub use lendkit_core::{
    aggregate::Rules,
    ids::{Actor, BookId, CommandId, MemberId, Points, RentalId, Timestamp},
    payment::BreakerConfig,
};

pub mod drills;
mod migrate;
mod open;

pub use drills::PaymentSwitch;
pub use lendkit_adapters::Durability;
pub use migrate::{migrate, Migrated};
#[cfg(feature = "nats")]
pub use open::{connect, drop_connected, ConnectOptions};
pub use open::{open, Config, OpenLibrary, Store, Subscriber};

use lendkit_adapters::{InMemoryEventBus, InMemoryEventStore, SystemClock};
use std::sync::Arc;

/// A library builder on the in-memory store and bus and the system clock: nothing is kept
/// after the process ends. Configure it (rules, notifier, payment, breaker) and `build().await`.
pub fn in_memory() -> LibraryBuilder {
    LibraryBuilder::new(
        Arc::new(InMemoryEventStore::new()),
        Arc::new(InMemoryEventBus::new()),
        Arc::new(SystemClock::new()),
    )
}

/// The README's examples, compiled and run as doctests so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
