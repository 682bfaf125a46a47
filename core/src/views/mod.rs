//! Read models (CQRS): answers for screens, built only from stored events — never by reading
//! aggregates — so they can be dropped and rebuilt from the log with the same result.
//!
//! Each view folds events in global log order (one worker), tracks the last position it
//! applied, and ignores anything at or before it, so a redelivered event changes nothing.

mod book_list;
mod member_page;

pub use book_list::{BookList, BookRow, BookStatus};
pub use member_page::{HoldShelfRow, MemberPage, MemberPages, RentalRow};

/// One overdue loan in the overdue list (`Library::overdue_list`): loans made under circulation
/// rules, past their due date.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OverdueRow {
    /// Rental id.
    pub rental_id: String,
    /// Borrower.
    pub member_id: String,
    /// Book id.
    pub book_id: String,
    /// The branch the loan was made at, if one was named.
    pub branch: Option<String>,
    /// The due instant (RFC 3339, UTC).
    pub due_at: String,
    /// Whole days late (started days count).
    pub days_late: u32,
    /// The fine the loan has run up so far, in points (charged when it comes back).
    pub fee_so_far: u64,
}

use crate::event::{Envelope, Fact};

/// A read model fed by events.
pub trait View: Default + Send + Sync + 'static {
    /// The consumer name of this view.
    const NAME: &'static str;
    /// Folds one event (in position order); events at or before the last applied position are
    /// ignored. A view reads only the event, its position and its instant ([`Fact`]), so that
    /// a rebuild need not decode the envelopes' ids ([`Envelope::decode_recorded`]).
    fn apply(&mut self, event: Fact<'_>);
    /// The last position applied.
    fn position(&self) -> u64;
    /// A fresh view built from `events`.
    fn rebuild<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> Self {
        let mut v = Self::default();
        for e in events {
            v.apply(e.fact());
        }
        v
    }
}
