//! The error catalogue: one [`Error`] for the library's callers, one stable [`ErrorCode`] per kind of failure.
//!
//! Codes are API shared by Rust, Python and Node: add new ones, never rename or reuse one.
//! `docs/errors.md` lists them with their meaning; a test keeps the two in step.

use crate::catalog::BookError;
use crate::deliveries::DeliveryError;
use crate::members::MemberError;
use crate::points::PointsError;
use crate::rentals::RentalError;
use std::time::Duration;

pub use crate::codes::{ErrorCode, ErrorFamily};

/// Failures of an [`EventStore`](crate::ports::EventStore) adapter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream's version was not the expected one: another writer appended first. Nothing was written.
    #[error("stream {stream} is at version {actual}, not {expected}; reload and retry")]
    Conflict {
        /// The stream whose version differed.
        stream: String,
        /// The version the writer expected.
        expected: u64,
        /// The version found inside the transaction.
        actual: u64,
    },
    /// A stored event could not be decoded: the database is damaged.
    #[error("stored event at position {position} cannot be decoded ({reason}): the database is damaged; restore the library folder from a backup")]
    Corrupt {
        /// Global position of the bad entry.
        position: u64,
        /// What the decoder said.
        reason: String,
    },
    /// The backing storage failed (I/O, full disk, closed database).
    #[error("storage failed: {0}")]
    Backend(String),
    /// The storage engine or the operating system failed, and said why: the error it returned is
    /// kept whole as this error's [`source`](std::error::Error::source) (a `std::io::Error`, a
    /// `rusqlite::Error`, a `sled::Error`, …), so a host can walk the chain or downcast it.
    /// The message repeats the cause, so that one line tells the whole story.
    #[error("storage failed: {context}: {source}")]
    Io {
        /// What lendkit was doing, and on which library (a path or a table).
        context: String,
        /// What the layer below reported.
        #[source]
        source: Cause,
    },
    /// The path holds something that is not a lendkit database.
    #[error("{0} is not a lendkit database; choose a new path or an existing lendkit database")]
    NotALibrary(String),
    /// The database was written by a newer schema than this build reads.
    #[error("the database was written with schema {found}, this lendkit reads up to {supported}; upgrade lendkit to open it")]
    SchemaTooNew {
        /// Schema found on disk.
        found: u32,
        /// Newest schema this build reads.
        supported: u32,
    },
    /// The commit's command id was already applied (by an earlier commit). Nothing was written.
    #[error("command id {0} was already applied")]
    CommandApplied(String),
    /// Another process holds the database open.
    #[error("{0} is already open (in another process, or through another handle in this one); close it there first")]
    Locked(String),
    /// The library's files cannot be written: a read-only file, folder or file system.
    #[error("{0} cannot be written (a read-only file, folder or file system); nothing was changed — make it writable, or copy the library somewhere writable")]
    ReadOnly(String),
    /// The database's files are damaged: the storage engine cannot read them. Retrying cannot
    /// help. Holds the folder and what the engine said.
    #[error("the database at {path} is damaged and cannot be read ({reason}); restore the folder from a backup, or move it aside and open a new library at that path")]
    Damaged {
        /// The library's folder.
        path: String,
        /// What the storage engine reported.
        reason: String,
    },
}

impl StoreError {
    /// A failure of the layer below, kept as the [`source`](std::error::Error::source) of a
    /// [`StoreError::Io`] with what lendkit was doing.
    pub fn io(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Io {
            context: context.into(),
            source: Cause::new(source),
        }
    }
}

/// The error a storage engine or the operating system returned, shared so that a
/// [`StoreError`] stays cheap to clone. It dereferences to the original error, and it is what
/// [`std::error::Error::source`] of a [`StoreError::Io`] returns (the original itself, so
/// `downcast_ref::<std::io::Error>()` works).
#[derive(Clone)]
pub struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// Keeps `error` whole.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(std::sync::Arc::new(error))
    }
}

// Deliberately not `std::error::Error` itself: thiserror then finds `as_dyn_error` through this
// `Deref`, so `StoreError::source()` is the original error rather than this wrapper.
impl std::ops::Deref for Cause {
    type Target = dyn std::error::Error + Send + Sync + 'static;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

/// Two causes are equal when they are the same error or say the same thing (errors of the
/// layers below are rarely comparable themselves).
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

/// Failures of a [`PaymentGateway`](crate::ports::PaymentGateway).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The member cannot afford the fee.
    #[error("member {member} has {balance} points but the fee is {needed}; top up first")]
    InsufficientPoints {
        /// Who was charged.
        member: String,
        /// Their balance.
        balance: u64,
        /// The fee.
        needed: u64,
    },
    /// The member has no point account.
    #[error("member {member} has no point account")]
    NoAccount {
        /// Who was charged.
        member: String,
    },
    /// The gateway refused the charge for a business reason.
    #[error("payment declined: {0}")]
    Declined(String),
    /// The gateway failed, timed out or is overloaded. Counts towards opening the circuit breaker.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
}

impl PaymentError {
    /// True for failures of the gateway itself (as opposed to a declined charge); only these trip the circuit breaker.
    pub fn is_outage(&self) -> bool {
        matches!(self, PaymentError::Unavailable(_))
    }
}

/// Failures of a [`Notifier`](crate::ports::Notifier).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notice could not be sent: {0}")]
pub struct NotifyError(pub String);

/// Failures of an [`EventBus`](crate::ports::EventBus).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event bus failed: {0}")]
pub struct BusError(pub String);

/// Every error a [`Library`](crate::library::Library) call can return. Each has a stable [`code`](Error::code).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A book rule was broken.
    #[error(transparent)]
    Book(#[from] BookError),
    /// A member rule was broken.
    #[error(transparent)]
    Member(#[from] MemberError),
    /// A point account rule was broken.
    #[error(transparent)]
    Points(#[from] PointsError),
    /// A rental rule was broken.
    #[error(transparent)]
    Rental(#[from] RentalError),
    /// A delivery rule was broken.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// A change of the circulation rules was refused.
    #[error(transparent)]
    Rules(#[from] crate::circulation::StoredRulesError),
    /// Malformed input; nothing was stored.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The actor may not do or see this (the message says who may); nothing was stored.
    #[error("{0}")]
    Unauthorized(String),
    /// Something the command names does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// The code: `BOOK_NOT_FOUND`, `MEMBER_NOT_FOUND`, …
        code: ErrorCode,
        /// What kind of thing (`book`, `member`, …).
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A concurrent writer won; nothing was stored. Retry the command.
    #[error(
        "stream {stream} changed concurrently (expected version {expected}, found {actual}); retry"
    )]
    Conflict {
        /// The contested stream.
        stream: String,
        /// The version the command was decided on.
        expected: u64,
        /// The version found when storing.
        actual: u64,
    },
    /// The request policy takes no such hold (holds not allowed, another pickup branch, the
    /// member's holds at the maximum).
    #[error("hold not allowed: {0}")]
    HoldNotAllowed(String),
    /// The command id was already used for a different command; nothing was stored.
    #[error("command id {command_id} was already used for a different command ({previous}); send a new command id for a new command")]
    CommandIdReused {
        /// The re-used id.
        command_id: String,
        /// What the id was first used for (the first event type it stored, or `an earlier command`).
        previous: String,
    },
    /// The payment was refused or failed.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The circuit breaker around the payment gateway is open: the call was not attempted.
    #[error("payments are unavailable right now; retry in {} ms", retry_after.as_millis())]
    PaymentUnavailable {
        /// How long until the breaker lets a trial call through.
        retry_after: Duration,
    },
    /// The event store failed; nothing was stored (or the database is damaged: see [`ErrorCode::Corrupt`]).
    #[error(transparent)]
    Storage(StoreError),
    /// The library was closed.
    #[error("the library is closed; open it again")]
    Closed,
    /// A bug in lendkit, caught at a language boundary instead of crashing the host.
    #[error("internal error (a bug in lendkit, please report it): {0}")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict {
                stream,
                expected,
                actual,
            } => Error::Conflict {
                stream,
                expected,
                actual,
            },
            other => Error::Storage(other),
        }
    }
}

impl Error {
    /// The stable code of this error, the same in Rust, Python and JavaScript.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Book(e) => e.code(),
            Error::Member(e) => e.code(),
            Error::Points(e) => e.code(),
            Error::Rental(e) => e.code(),
            Error::Delivery(e) => e.code(),
            Error::Rules(e) => e.code(),
            Error::InvalidInput(_) => ErrorCode::InvalidInput,
            Error::Unauthorized(_) => ErrorCode::Unauthorized,
            Error::NotFound { code, .. } => *code,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::CommandIdReused { .. } => ErrorCode::CommandIdReused,
            Error::HoldNotAllowed(_) => ErrorCode::HoldNotAllowed,
            Error::Payment(PaymentError::InsufficientPoints { .. }) => {
                ErrorCode::InsufficientPoints
            }
            Error::Payment(PaymentError::NoAccount { .. }) => ErrorCode::MemberNotFound,
            Error::Payment(PaymentError::Declined(_)) => ErrorCode::PaymentDeclined,
            Error::Payment(PaymentError::Unavailable(_)) => ErrorCode::PaymentUnavailable,
            Error::PaymentUnavailable { .. } => ErrorCode::PaymentUnavailable,
            Error::Storage(StoreError::NotALibrary(_)) => ErrorCode::NotALibrary,
            Error::Storage(StoreError::SchemaTooNew { .. }) => ErrorCode::SchemaTooNew,
            Error::Storage(StoreError::Locked(_)) => ErrorCode::LibraryLocked,
            Error::Storage(StoreError::ReadOnly(_)) => ErrorCode::LibraryReadOnly,
            Error::Storage(StoreError::Corrupt { .. } | StoreError::Damaged { .. }) => {
                ErrorCode::Corrupt
            }
            Error::Storage(_) => ErrorCode::Storage,
            Error::Closed => ErrorCode::LibraryClosed,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// True for domain-rule rejections: deterministic answers that retrying the same command cannot change.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Error::Book(_)
                | Error::Member(_)
                | Error::Points(_)
                | Error::Rental(_)
                | Error::Delivery(_)
                | Error::Rules(_)
                | Error::InvalidInput(_)
                | Error::Unauthorized(_)
                | Error::NotFound { .. }
        )
    }

    pub(crate) fn not_found(code: ErrorCode, what: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            code,
            what,
            id: id.into(),
        }
    }
}

/// The result type of every library call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!(code
                .as_str()
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_'));
        }
    }

    #[test]
    fn a_damaged_database_is_corrupt_not_a_retryable_storage_failure() {
        let damaged = [
            StoreError::Corrupt {
                position: 7,
                reason: "expected value".into(),
            },
            StoreError::Damaged {
                path: "/data/library.db".into(),
                reason: "Read corrupted data at file offset None".into(),
            },
        ];
        for e in damaged {
            let e = Error::from(e);
            assert_eq!(e.code(), ErrorCode::Corrupt);
            assert!(!e.code().is_retryable());
            assert_eq!(e.code().family(), ErrorFamily::Storage);
            let message = e.to_string();
            assert!(message.contains("backup"), "{message}");
            assert!(!message.contains("try again"), "{message}");
            assert!(!message.contains("nothing was stored"), "{message}");
        }
        assert_eq!(ErrorCode::parse("CORRUPT"), Some(ErrorCode::Corrupt));
    }

    #[test]
    fn a_storage_failure_keeps_what_the_layer_below_said_as_its_source() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
        let e = Error::from(StoreError::io("/data/library.db: cannot write", io));
        assert_eq!(e.code(), ErrorCode::Storage);
        assert!(e.to_string().contains("No space left on device"), "{e}");
        // `Error::Storage` is transparent: its source is the store error's source, the original.
        let below = e.source().expect("a source");
        let io = below
            .downcast_ref::<std::io::Error>()
            .expect("the io::Error itself");
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
        let copy = e.clone();
        assert_eq!(copy, e);
    }

    #[test]
    fn the_error_catalogue_in_docs_lists_every_code() {
        let doc = include_str!("../../docs/errors.md");
        let missing: Vec<_> = ErrorCode::ALL
            .iter()
            .filter(|c| !doc.contains(&format!("`{}`", c.as_str())))
            .collect();
        assert!(missing.is_empty(), "docs/errors.md lacks rows for {missing:?}: add a row `| `CODE` | meaning | retryable | family |` for each");
    }
}
