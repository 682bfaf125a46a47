//! Circulation rules: named policies and the rules table that picks them for a loan.
//!
//! A library's rules file names its policies — [`LoanPolicy`], [`FinePolicy`], [`LimitsPolicy`],
//! [`LostPolicy`] — and lists rows `(group | *, item type | *, branch | *) → {loan, fine, limits,
//! lost}`. For a member's group, an item's type and a branch, [`RulesTable::resolve`] returns the
//! policies of the **most specific** matching row:
//!
//! 1. the row with more non-`*` fields wins;
//! 2. then the row whose most important non-`*` field ranks higher: item type, then branch, then
//!    group (so among two-field rows: item type + branch, then item type + group, then branch +
//!    group; among one-field rows: item type, then branch, then group);
//! 3. then the later row in the file.
//!
//! The file may also declare the library's branches, each with its [`Calendar`]
//! (`[calendars.BRANCH]`: an IANA time zone, opening hours by weekday — a weekday left out is
//! closed — and closed dates), and its member groups (`groups = [...]`). Rows may then name only
//! those branches and groups; a file that declares no calendars accepts any branch, one without
//! `groups` any group ([`RulesTable::knows_branch`], [`RulesTable::knows_group`]). Being part of
//! the file, calendars and groups change with `change_circulation_rules` and are versioned in
//! the same [`RulesEvent`]. A day loan falls due at the closing time of an open day in its
//! branch's zone ([`Calendar::due`]); a branch without a calendar counts every day open, in UTC,
//! and its due dates are exactly the start plus the period.
//!
//! A `* * *` row is required, so every lookup resolves. Resolution is precomputed when the table
//! is loaded (one hash map per wildcard pattern, tried in precedence order), so it costs a few
//! hash lookups whatever the table's size; [`RulesTable::explain`] says why a row won.
//!
//! Loading checks everything and fails with a [`RulesError`] naming the row (from 1), the policy
//! or the branch's calendar, and the field; it becomes [`Error::InvalidInput`] at the library
//! boundary. What is valid but suspicious — a row an identical later row always beats, a policy
//! no row names — is a [`Warning`]. The format is described in `docs/rules.md`.
//!
//! This module only parses text: reading the file is the caller's business. What a policy
//! computes lives beside it: due dates on a branch's [`calendar`], overdue [`fine`]s.
//!
//! ```
//! use lendkit_core::circulation::RulesTable;
//!
//! let table = RulesTable::from_toml(r#"
//!     groups = ["adult", "student"]
//!
//!     [calendars.main]
//!     zone = "Europe/Berlin"
//!     hours = { mon = "09:00-18:00", sat = "10:00-14:00" }   # other weekdays closed
//!     closed = ["2026-12-25"]
//!
//!     [policies.loan.standard]
//!     period = "21 days"
//!     [policies.loan.short]
//!     period = "7 days"
//!     [policies.fine.none]
//!     points = 0
//!     per = "day"
//!     [policies.limits.none]
//!     [policies.lost.standard]
//!     aged_to_lost_after_days = 60
//!     replacement_cost = 20
//!
//!     [[rules]]
//!     loan = "standard"
//!     fine = "none"
//!     limits = "none"
//!     lost = "standard"
//!
//!     [[rules]]
//!     item_type = "dvd"
//!     loan = "short"
//!     fine = "none"
//!     limits = "none"
//!     lost = "standard"
//! "#)?;
//! let policies = table.resolve("student", "dvd", "main");
//! assert_eq!(policies.row, 2);
//! assert_eq!(policies.loan.name, "short");
//! assert_eq!(policies.loan.policy.period.to_string(), "7 days");
//! assert_eq!(table.calendar("main").map(|c| c.zone()), Some("Europe/Berlin"));
//! assert!(table.knows_branch("main") && !table.knows_branch("north"));
//! assert!(table.knows_group("student") && !table.knows_group("staff"));
//! # Ok::<_, lendkit_core::circulation::RulesError>(())
//! ```

mod branches;
pub mod calendar;
mod fields;
pub mod fine;
mod index;
mod policy;
mod stored;
mod table;
mod terms;

pub use calendar::{Calendar, CalendarError, Hours};
pub use policy::{
    CalendarDate, Charge, ClosedDay, FinePolicy, FineRate, LimitsPolicy, LoanPolicy, LostPolicy,
    Period, RenewFrom, RequestPolicy, Schedule, TimeUnit,
};
pub use stored::{CirculationRules, RulesCommand, RulesEvent, StoredRulesError, RULES_STREAM_ID};
pub use table::{
    Beaten, Explanation, Format, LostBecause, Match, Named, Resolved, Rule, RulesTable,
};
pub use terms::{due_date, LoanTerms};

use crate::error::Error;
use serde::Serialize;
use std::fmt;

/// The four kinds of policy a rules row names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// [`LoanPolicy`]: `[policies.loan.NAME]`, a row's `loan`.
    Loan,
    /// [`FinePolicy`]: `[policies.fine.NAME]`, a row's `fine`.
    Fine,
    /// [`LimitsPolicy`]: `[policies.limits.NAME]`, a row's `limits`.
    Limits,
    /// [`LostPolicy`]: `[policies.lost.NAME]`, a row's `lost`.
    Lost,
    /// [`RequestPolicy`]: `[policies.request.NAME]`, a row's optional `request`.
    Request,
}

impl PolicyKind {
    /// The four every row names, in file order (a row's `request` is optional).
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::Loan,
        PolicyKind::Fine,
        PolicyKind::Limits,
        PolicyKind::Lost,
    ];

    /// Its name in a rules file (`loan`, `fine`, `limits`, `lost`).
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Loan => "loan",
            PolicyKind::Fine => "fine",
            PolicyKind::Limits => "limits",
            PolicyKind::Lost => "lost",
            PolicyKind::Request => "request",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a rules file was refused. Each names where: the row (from 1), the policy or the branch's
/// calendar, and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The text is not TOML or JSON.
    #[error("the rules file is not valid {format}: {reason}")]
    Syntax {
        /// `TOML` or `JSON`.
        format: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The file's outline is wrong: an unknown top-level key, `policies`, `rules` or `calendars`
    /// of the wrong shape, or a bad `groups` list.
    #[error("{field}: {reason}")]
    File {
        /// The key at fault (`rules`, `policies.loans`, `groups`, …).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A policy's field is missing, unknown or out of range.
    #[error("{kind} policy {name:?}, field {field}: {reason}")]
    Policy {
        /// Its kind.
        kind: PolicyKind,
        /// Its name.
        name: String,
        /// The field at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A row's field is missing, unknown or names no policy.
    #[error("rule {row}, field {field}: {reason}")]
    Row {
        /// The row's position in `rules`, from 1.
        row: usize,
        /// The field at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A branch's calendar (`[calendars.BRANCH]`) is unreadable or impossible: an unknown time
    /// zone, opening hours that are not `"HH:MM-HH:MM"` or close before they open, no open
    /// weekday, a bad or a whole year of closed dates, an unknown field.
    #[error("calendar {branch:?}, field {field}: {reason}")]
    Calendar {
        /// The branch.
        branch: String,
        /// The field at fault (`zone`, `hours.mon`, `closed`, …).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No row has `*` in all three key fields, so some loans would have no policy.
    #[error("no `* * *` row: add a rule whose group, item_type and branch are all \"*\" (or left out), so every loan finds its policies")]
    NoFallback,
}

impl From<RulesError> for Error {
    fn from(e: RulesError) -> Self {
        Error::InvalidInput(e.to_string())
    }
}

/// Something valid but probably unintended in a rules table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum Warning {
    /// The row can never win: a later row has the identical key, and the later of two identical
    /// rows always wins. (Only an identical later key can do this: a lookup with the row's own
    /// values, and values found in no row where it has `*`, is matched by nothing more specific.)
    Shadowed {
        /// The row that never wins, from 1.
        row: usize,
        /// The later row with the same key, from 1.
        by: usize,
    },
    /// A policy no row names.
    UnusedPolicy {
        /// Its kind.
        kind: PolicyKind,
        /// Its name.
        name: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Shadowed { row, by } => write!(
                f,
                "rule {row} can never match: rule {by} has the same group, item_type and branch \
                 and, being later, always wins"
            ),
            Warning::UnusedPolicy { kind, name } => {
                write!(f, "{kind} policy {name:?} is named by no rule")
            }
        }
    }
}
