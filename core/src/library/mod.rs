//! The application service: runs commands, takes payment, and drives the consumers (policies and views).
//!
//! ## The flow of a command
//! 1. [`Command::validate`] checks the input.
//! 2. If the target stream already applied this command id, the original events are returned.
//! 3. The target aggregate (and, for a cancellation or a delivery, the other side's stream) is
//!    loaded from the store and the aggregate decides, purely.
//! 4. For `reserve_book` only: the fee is charged through the [`PaymentGateway`], behind the
//!    [`CircuitBreaker`]; no payment, no rental. If storing then fails, the charge is refunded.
//! 5. The events are appended with the version the decision was made on (and a version guard
//!    on any other stream it read); on a conflict the command is decided again on fresh state.
//! 6. Committed events are relayed, in position order, to the [`EventBus`].
//! 7. With [immediate reactions](LibraryBuilder::immediate_reactions) on, the in-process
//!    policies react to them before the command returns, and one sync covers the command and
//!    its reactions (step 5 then stores without waiting for the disk).
//!
//! Consumers — the [`policies`](crate::policies) and the [`views`](crate::views) — run when
//! [`Library::settle`] (or [`Library::run_pending`]) is called: the core has no threads. The
//! `lendkit` facade crate can drive them in the background.

use crate::aggregate::{Aggregate, Context, Rules};
use crate::catalog::Book;
use crate::command::{Command, Outcome};
use crate::deliveries::{Delivery, DeliveryCommand, DeliveryStatus};
use crate::error::{Error, ErrorCode, PaymentError, Result, StoreError};
use crate::event::{Envelope, Event, Stored};
use crate::ids::{
    Actor, BookId, CommandId, MemberId, Points, RentalId, StreamId, StreamKind, Timestamp,
};
use crate::members::{Member, MemberCommand, PaidFrom};
use crate::payment::{BreakerConfig, BreakerState, CircuitBreaker};
use crate::points::{PointAccount, PointsCommand};
use crate::policies::{Policy, Reaction, POLICIES};
use crate::ports::{
    ChargeRef, Clock, Commit, DeadLetter, EventBus, EventStore, Notice, Notifier, PaymentGateway,
    PaymentReceipt, StreamAppend,
};
use crate::rentals::{Rental, RentalCommand, RentalError, RentalStatus};
use crate::views::{BookList, BookRow, MemberPage, MemberPages, View};
use async_trait::async_trait;
use futures::future::{select, Either};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// How many times a command is re-decided after losing a version race before `CONFLICT` is returned.
const MAX_CONFLICT_RETRIES: u32 = 16;
/// How many events a consumer takes from the bus at a time.
const BATCH: usize = 256;
/// How many batches one worker takes from the bus in one pass, at most, while they come.
const MAX_ROUNDS: usize = 64;
/// The most workers one policy may run with.
const MAX_WORKERS: u32 = 64;
/// The longest wait between two tries of a failing event.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(300);

/// Who, under which id, about which case, because of what.
#[derive(Debug, Clone)]
struct Meta {
    actor: Actor,
    command_id: CommandId,
    /// The caller's command's [`Command::fingerprint`]; empty for lendkit's own commands.
    fingerprint: String,
    /// True when the library generated the command id just now: no record can exist for it
    /// yet, so the first try skips looking for one.
    fresh: bool,
    /// The instant the command is decided as of, when not the clock's now: the clock-driven
    /// rules decide each due work at its own instant (an automatic renewal at the due date).
    at: Option<Timestamp>,
    correlation_id: String,
    causation_id: String,
    /// Stored without waiting for the disk ([`EventStore::append_unsynced`]): a reaction of a
    /// settle pass, which the pass syncs at its end (and before any call to a host port). Its
    /// events go to the relay as they are; [`Engine::run`] returns none of them.
    deferred: bool,
    /// A caller's command: when its events are ones a policy reacts to at once (see
    /// `immediate.rs`), it is stored unsynced and synced once with those reactions.
    follow: bool,
}

mod builder;
mod consumers;
mod due;
mod engine;
mod folds;
mod immediate;
mod loans;
mod payment;
mod queries;
mod route;
mod shutdown;
mod snapshot;

use builder::fold_views;
pub use builder::LibraryBuilder;
pub use consumers::ConsumerStatus;
use consumers::{Consumer, Kind, Worker};
pub use due::{Advanced, DueWork, ScheduledLoan, Work};
pub use engine::CommitHook;
use engine::Engine;
use payment::PointsGateway;
pub use queries::Reader;
use route::Route;
use shutdown::Shutdown;

/// A lending library: the rules, running on the ports it was built with.
///
/// Every command returns the events it stored or a typed [`Error`]; nothing partial is ever
/// stored. Reactions (copy allocation, confirmation, refunds, deliveries, notices) and the
/// views follow when [`settle`](Library::settle) runs the consumers — or, for copy allocation,
/// confirmation, release and deliveries, within the command itself when the library was built
/// with [`immediate_reactions`](LibraryBuilder::immediate_reactions).
pub struct Library {
    engine: Arc<Engine>,
    gateway: Arc<dyn PaymentGateway>,
    breaker: CircuitBreaker,
    notifier: Arc<dyn Notifier>,
    /// Whether a host notifier listens: without one the notices policy writes no notices.
    notifying: bool,
    /// Whether payment is the members' point accounts in this store (no call leaves the
    /// process, so none needs a time limit).
    in_store_payment: bool,
    consumers: Vec<Consumer>,
    book_list: Mutex<BookList>,
    member_pages: Mutex<MemberPages>,
    max_attempts: u32,
    retry_backoff: std::time::Duration,
    shutdown: Shutdown,
    /// The log position of the views' last snapshot (opened from or saved), 0 for none.
    views_saved_at: std::sync::atomic::AtomicU64,
}

impl Library {
    /// Starts configuring a library.
    pub fn builder(
        store: Arc<dyn EventStore>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> LibraryBuilder {
        LibraryBuilder::new(store, bus, clock)
    }

    /// The library clock's time now.
    pub fn now(&self) -> Timestamp {
        self.engine.clock.now()
    }

    /// The rules this library runs with.
    pub fn rules(&self) -> &Rules {
        &self.engine.rules
    }

    /// Runs a command as `actor` under a fresh command id.
    pub async fn execute(&self, command: Command, actor: &Actor) -> Result<Outcome> {
        self.execute_with_id(command, actor, None).await
    }

    /// Runs a command as `actor`.
    ///
    /// A command id names one effect in the whole library: sending a command again under an
    /// id that was already applied returns the first outcome (the same rental id, the same
    /// events) and changes nothing — that is what makes a retry after a timeout safe, after a
    /// restart too and with many retries at once. The same id with a different command, other
    /// arguments or another actor is refused with `COMMAND_ID_REUSED`. A `reserve_book`
    /// without a rental id gets one derived from the command id, so its retries name the same
    /// rental. Ids starting with `system:` are lendkit's own and refused (`INVALID_INPUT`), as
    /// is the [`Actor::System`] actor (`UNAUTHORIZED`): only lendkit's policies act as it.
    pub async fn execute_with_id(
        &self,
        command: Command,
        actor: &Actor,
        command_id: Option<CommandId>,
    ) -> Result<Outcome> {
        self.shutdown.check()?;
        command.validate()?;
        Self::caller(actor)?;
        if let Some(id) = &command_id {
            crate::ids::validate_command_id(id.as_str()).map_err(Error::InvalidInput)?;
        }
        let fresh = command_id.is_none();
        let command_id = command_id.unwrap_or_else(CommandId::generate);
        let fingerprint = command.fingerprint(actor);
        let name = command.name();
        let outcome = self
            .run_command(command, actor, command_id.clone(), fresh, fingerprint)
            .await;
        // Ids, names of commands and codes only: never a payload (names, contacts, addresses).
        match &outcome {
            Ok(o) => tracing::debug!(
                target: "lendkit::command",
                command = name,
                command_id = %command_id,
                actor = %actor,
                correlation_id = o.events.first().map_or("", |e| e.correlation_id.as_str()),
                events = o.events.len(),
                "command applied"
            ),
            // Refusals by the rules, the input, the actor or payment are answers, not faults.
            Err(e) if e.code().family() != crate::error::ErrorFamily::Storage => tracing::debug!(
                target: "lendkit::command",
                command = name,
                command_id = %command_id,
                actor = %actor,
                code = %e.code(),
                "command refused"
            ),
            Err(e) => tracing::warn!(
                target: "lendkit::command",
                command = name,
                command_id = %command_id,
                actor = %actor,
                code = %e.code(),
                "command failed"
            ),
        }
        outcome
    }

    /// [`execute_with_id`](Library::execute_with_id) once the input is checked.
    async fn run_command(
        &self,
        command: Command,
        actor: &Actor,
        command_id: CommandId,
        fresh: bool,
        fingerprint: String,
    ) -> Result<Outcome> {
        let rental = match &command {
            Command::ReserveBook { rental_id, .. }
            | Command::PlaceHold {
                hold_id: rental_id, ..
            } => Some(
                rental_id
                    .clone()
                    .map_or_else(|| RentalId::for_command(&command_id), RentalId::from),
            ),
            other => other.rental_id().map(RentalId::new),
        };
        let meta = |correlation: String| Meta {
            actor: actor.clone(),
            command_id: command_id.clone(),
            fingerprint,
            fresh,
            at: None,
            correlation_id: correlation,
            causation_id: command_id.to_string(),
            deferred: false,
            follow: true,
        };
        let events = match self.route(command, actor, rental.as_ref()) {
            Route::Plan(plan) => {
                let subject = plan
                    .steps
                    .first()
                    .map(|s| s.stream().id)
                    .unwrap_or_default();
                self.engine.run(plan, &meta(subject)).await?
            }
            Route::Invalid(why) => return Err(Error::InvalidInput(why)),
            Route::Reserve {
                book,
                member,
                delivery_address,
                hold,
            } => {
                // `rental` is always set for a reservation (explicit or derived above).
                let rental = rental
                    .clone()
                    .unwrap_or_else(|| RentalId::for_command(&command_id));
                self.reserve_book(
                    book,
                    member,
                    rental.clone(),
                    delivery_address,
                    hold,
                    &meta(rental.to_string()),
                )
                .await?
            }
        };
        self.react_at_once(&events).await?;
        Ok(Outcome {
            command_id,
            rental_id: rental,
            events,
        })
    }

    /// Runs many commands, one after another, in order; each gets its own outcome or error, and
    /// one refusal does not stop the rest. The same as calling [`execute_with_id`](Library::execute_with_id)
    /// for each — but a binding crosses the language boundary once for the whole batch.
    pub async fn execute_batch(
        &self,
        commands: Vec<(Command, Actor, Option<CommandId>)>,
    ) -> Vec<Result<Outcome>> {
        let mut results = Vec::with_capacity(commands.len());
        for (command, actor, command_id) in commands {
            results.push(self.execute_with_id(command, &actor, command_id).await);
        }
        results
    }

    /// Refuses [`Actor::System`]: it is lendkit's own actor, used only by its policies.
    fn caller(actor: &Actor) -> Result<()> {
        if actor.is_system() {
            return Err(Error::Unauthorized(
                "the system actor is lendkit's own, used only by its policies; act as a librarian or a member".into(),
            ));
        }
        Ok(())
    }
}
