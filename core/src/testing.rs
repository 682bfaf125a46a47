//! A given/when/then harness for aggregates and policies, in the style of cqrs-es' `TestFramework`.
//!
//! ```
//! use lendkit_core::testing::*;
//! use lendkit_core::rentals::{Rental, RentalCommand, RentalError};
//! use lendkit_core::ids::RentalId;
//!
//! given::<Rental>([])
//!     .when(RentalCommand::ReturnBook { rental: RentalId::new("r1"), returned_at: None }, member("m1"))
//!     .then_err(RentalError::NotFound(RentalId::new("r1")));
//! ```

use crate::aggregate::{Aggregate, Context, Rules};
use crate::error::ErrorCode;
use crate::event::{Envelope, Event};
use crate::ids::{Actor, CommandId, StreamId, Timestamp};

/// A librarian (`lib-1`).
pub fn librarian() -> Actor {
    Actor::librarian("lib-1")
}

/// The member `id`.
pub fn member(id: &str) -> Actor {
    Actor::member(id)
}

/// lendkit itself, as its policies act.
pub fn system() -> Actor {
    Actor::System
}

/// Starts a test from the aggregate's past events.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let mut state = A::default();
    for e in events {
        state.apply(&e);
    }
    Given {
        state,
        now: Timestamp(0),
        rules: Rules::default(),
    }
}

/// The state an aggregate test starts from.
pub struct Given<A: Aggregate> {
    state: A,
    now: Timestamp,
    rules: Rules,
}

impl<A: Aggregate> Given<A> {
    /// Decide at this time (default: the epoch).
    pub fn at(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }

    /// Decide under these rules (default: [`Rules::default`]).
    pub fn with_rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// Runs `command` as `actor`.
    pub fn when(self, command: A::Command, actor: Actor) -> Then<A> {
        let ctx = Context {
            actor,
            now: self.now,
            command_id: CommandId::new("test"),
            rules: self.rules,
        };
        Then {
            result: self.state.decide(&command, &ctx),
            command,
        }
    }
}

/// The outcome of a decision, to be checked.
pub struct Then<A: Aggregate> {
    result: Result<Vec<A::Event>, A::Error>,
    command: A::Command,
}

impl<A: Aggregate> Then<A>
where
    A::Event: PartialEq,
{
    /// Asserts the decision produced exactly these events.
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = A::Event>) {
        let expected: Vec<_> = expected.into_iter().collect();
        match self.result {
            Ok(events) => assert_eq!(events, expected, "events of {:?}", self.command),
            Err(e) => panic!(
                "{:?} was refused with {e:?}; expected events {expected:?}",
                self.command
            ),
        }
    }

    /// Asserts the decision was refused with exactly this error.
    #[track_caller]
    pub fn then_err(self, expected: A::Error)
    where
        A::Error: PartialEq,
    {
        match self.result {
            Ok(events) => panic!(
                "{:?} produced {events:?}; expected error {expected:?}",
                self.command
            ),
            Err(e) => assert_eq!(e, expected, "error of {:?}", self.command),
        }
    }

    /// Asserts the decision was refused with an error of this code.
    #[track_caller]
    pub fn then_code(self, expected: ErrorCode)
    where
        A::Error: Into<crate::Error>,
    {
        match self.result {
            Ok(events) => panic!(
                "{:?} produced {events:?}; expected an error {expected}",
                self.command
            ),
            Err(e) => {
                let e: crate::Error = e.into();
                assert_eq!(e.code(), expected, "{e}");
            }
        }
    }
}

/// Wraps an event in an envelope as if stored at `position` (stream version = position), for policy and view tests.
pub fn stored(position: u64, event: impl Into<Event>, correlation: &str) -> Envelope {
    let event = event.into();
    let stream = StreamId::new(event.kind(), correlation);
    Envelope {
        event_id: Envelope::id_for(&stream, position),
        stream,
        version: position,
        position,
        occurred_at: Timestamp(position as i64),
        correlation_id: correlation.to_owned(),
        causation_id: format!("cmd-{position}"),
        command_id: CommandId::new(format!("cmd-{position}")),
        actor: Actor::System,
        event,
    }
}

/// `envelope` in the compact stored form as lendkit wrote it before 2026-12-06 (layout
/// revision 1: the payload as JSON text), for tests that a library holding such events still
/// reads them.
pub fn encode_compact_revision_1(envelope: &Envelope) -> Vec<u8> {
    crate::event::compact::encode_revision_1(envelope)
}

/// `envelope` in the compact stored form as lendkit wrote it on 2026-12-06 (layout revision 2:
/// the binary payload under a header that keeps the command id, the actor and the type name
/// as strings), for tests that a library holding such events still reads them.
pub fn encode_compact_revision_2(envelope: &Envelope) -> Vec<u8> {
    crate::event::compact::encode_revision_2(envelope)
}

/// `envelope` in the compact stored form as lendkit wrote it until 2026-12-07 (layout revision
/// 3: every text of the payload written out, where revision 4 names the stream's or the
/// actor's id by a tag), for tests that a library holding such events still reads them.
pub fn encode_compact_revision_3(envelope: &Envelope) -> Vec<u8> {
    crate::event::compact::encode_revision_3(envelope)
}

/// `envelope` in the compact stored form as lendkit wrote it on 2026-12-07 (layout revision 4:
/// the payload names the stream's or the actor's id by a tag, where revision 5 also names the
/// correlation's id and the event's instant, and keeps a policy's reaction by its index), for
/// tests that a library holding such events still reads them.
pub fn encode_compact_revision_4(envelope: &Envelope) -> Vec<u8> {
    crate::event::compact::encode_revision_4(envelope)
}
