//! # lendkit-core
//!
//! The circulation rules of a lending library — registering books, members and their points,
//! reservations paid with points, loans, returns, cancellations with refunds, deliveries and
//! notices — as a pure event-sourced domain. This crate does no I/O: it talks to the world
//! through the [`ports`], and the `lendkit` crate wires embedded adapters behind them.
//!
//! ## The parts
//! - Aggregates, each a pure `decide` and a total `apply`: [`catalog::Book`], [`members::Member`],
//!   [`points::PointAccount`], [`rentals::Rental`], [`deliveries::Delivery`].
//! - [`policies`]: the saga. Consumers of the event log that turn events into new commands
//!   (allocate a copy, confirm, refund, release, deliver, notify).
//! - [`views`]: the read models, [`views::BookList`] and [`views::MemberPage`], built only from events.
//! - [`library::Library`]: the application service that runs commands, the payment step and the consumers.
//! - [`error`]: the error catalogue with stable codes shared by Rust, Python and JavaScript.
//! - [`testing`]: a given/when/then harness.
//! - [`schema`]: the commands, events, error codes and consumers as data, for the bindings' generators.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod aggregate;
pub mod catalog;
pub mod circulation;
pub mod codes;
pub mod deliveries;
pub mod error;
pub mod event;
pub mod holds;
pub mod ids;
pub mod members;
pub mod points;
pub mod ports;
pub mod rentals;
pub mod testing;

pub use error::{Error, ErrorCode, ErrorFamily, Result};
pub mod command;
pub mod library;
pub mod payment;
pub mod policies;
pub mod rows;
pub mod schema;
pub mod views;

pub use command::{Command, CommandJson, Outcome};
pub use library::{Library, LibraryBuilder};
