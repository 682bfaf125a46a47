//! The error-code catalogue: one stable [`ErrorCode`] per kind of failure, with its family and
//! whether retrying may help. A leaf module: the aggregates name their codes from here, and
//! [`Error`](crate::Error) (which wraps the aggregates' errors) builds on it.
//!
//! Codes are API shared by Rust, Python and Node: add new ones, never rename or reuse one.
//! `docs/errors.md` lists them with their meaning; a test keeps the two in step.

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, $family:ident, $retry:literal; )*) => {
        /// A stable, language-neutral name for each kind of failure (`"INSUFFICIENT_POINTS"`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in catalogue order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as it appears in every language: `"BOOK_UNAVAILABLE"`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* }
            }

            /// The family the code belongs to; bindings raise one exception class per family.
            pub fn family(self) -> ErrorFamily {
                match self { $(ErrorCode::$variant => ErrorFamily::$family,)* }
            }

            /// True when the same call may succeed if simply tried again later.
            pub fn is_retryable(self) -> bool {
                match self { $(ErrorCode::$variant => $retry,)* }
            }

            /// The code named by `text`, if there is one.
            pub fn parse(text: &str) -> Option<ErrorCode> {
                match text { $($text => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    /// A command's input is malformed: an empty id, a zero amount, an over-long text.
    InvalidInput = "INVALID_INPUT", InvalidInput, false;
    /// The actor may not do this at all (a member registering a book).
    Unauthorized = "UNAUTHORIZED", Unauthorized, false;
    /// A member acted on a rental that is not theirs.
    NotRentalOwner = "NOT_RENTAL_OWNER", Unauthorized, false;
    /// A member acted on a hold that is not theirs.
    NotHoldOwner = "NOT_HOLD_OWNER", Unauthorized, false;
    /// No book with that id is registered.
    BookNotFound = "BOOK_NOT_FOUND", NotFound, false;
    /// No member with that id has joined.
    MemberNotFound = "MEMBER_NOT_FOUND", NotFound, false;
    /// No rental with that id exists.
    RentalNotFound = "RENTAL_NOT_FOUND", NotFound, false;
    /// The rental has no delivery.
    DeliveryNotFound = "DELIVERY_NOT_FOUND", NotFound, false;
    /// The member has no open fee with that id.
    FeeNotFound = "FEE_NOT_FOUND", NotFound, false;
    /// The circulation rules declare calendars, and none for that branch.
    BranchNotFound = "BRANCH_NOT_FOUND", NotFound, false;
    /// The circulation rules declare member groups, and not that one.
    GroupNotFound = "GROUP_NOT_FOUND", NotFound, false;
    /// The book has no such copy to hold: the number does not exist, or the copy was withdrawn
    /// or is lost.
    CopyNotFound = "COPY_NOT_FOUND", NotFound, false;
    /// No hold with that id waits in the book's queue.
    HoldNotFound = "HOLD_NOT_FOUND", NotFound, false;
    /// A dead letter with that id does not exist (or was already replayed).
    DeadLetterNotFound = "DEAD_LETTER_NOT_FOUND", NotFound, false;
    /// A book with that id is already registered.
    BookExists = "BOOK_EXISTS", Conflict, false;
    /// A member with that id has already joined.
    MemberExists = "MEMBER_EXISTS", Conflict, false;
    /// A rental with that id already exists.
    RentalExists = "RENTAL_EXISTS", Conflict, false;
    /// The book has no free copy right now.
    BookUnavailable = "BOOK_UNAVAILABLE", RuleViolation, true;
    /// Every free copy of the book is on the pickup shelf for another member's hold; place a
    /// hold to queue for the next one.
    HeldForOther = "HELD_FOR_OTHER", RuleViolation, true;
    /// The member already has this title on loan, reserved or on hold.
    AlreadyHeld = "ALREADY_HELD", RuleViolation, false;
    /// Other members wait for this title, so the loan cannot be renewed; return it.
    HasHolds = "HAS_HOLDS", RuleViolation, false;
    /// Holds are not taken here: the request policy does not allow them for this member and
    /// item, or the pickup branch is not one of its pickup branches, or the member holds as many
    /// titles as the policy allows.
    HoldNotAllowed = "HOLD_NOT_ALLOWED", RuleViolation, false;
    /// The rental (or delivery) is not in a state that allows this step.
    InvalidTransition = "INVALID_TRANSITION", RuleViolation, false;
    /// The book was already delivered, so the rental can no longer be cancelled.
    AlreadyDelivered = "ALREADY_DELIVERED", RuleViolation, false;
    /// The loan was already renewed as often as the rules allow.
    RenewalLimit = "RENEWAL_LIMIT", RuleViolation, false;
    /// A limit of the member's group is reached: open loans, overdue loans, or loans under one
    /// loan policy. Return something (or ask a librarian to override with a reason).
    LimitReached = "LIMIT_REACHED", RuleViolation, false;
    /// The member owes fees at or over their group's limit; pay some first.
    FeesOwed = "FEES_OWED", RuleViolation, false;
    /// The member's card has expired; renew the membership. Returns are still accepted.
    CardExpired = "CARD_EXPIRED", RuleViolation, false;
    /// A librarian blocked the member from borrowing, renewing and reserving.
    MemberBlocked = "MEMBER_BLOCKED", RuleViolation, false;
    /// A renewal would not move the due date (a fixed schedule, or a cap date reached).
    DueDateUnchanged = "DUE_DATE_UNCHANGED", RuleViolation, false;
    /// The member's balance is lower than the fee.
    InsufficientPoints = "INSUFFICIENT_POINTS", Payment, false;
    /// The payment gateway refused the charge.
    PaymentDeclined = "PAYMENT_DECLINED", Payment, false;
    /// The payment gateway is failing or overloaded; the circuit breaker is open. Retry later.
    PaymentUnavailable = "PAYMENT_UNAVAILABLE", Payment, true;
    /// Another writer changed the same stream at the same time. Retry.
    Conflict = "CONFLICT", Conflict, true;
    /// The command id was already used for a different command (other arguments, another
    /// command or another actor). Nothing was stored; choose a new command id.
    CommandIdReused = "COMMAND_ID_REUSED", Conflict, false;
    /// The event store failed. Nothing was stored.
    Storage = "STORAGE", Storage, true;
    /// The path is not a lendkit database (a plain file, or another program's data). Nothing was changed.
    NotALibrary = "NOT_A_LIBRARY", Storage, false;
    /// The database was written by a newer lendkit. Nothing was changed; upgrade lendkit.
    SchemaTooNew = "SCHEMA_TOO_NEW", Storage, false;
    /// The database is open in another process.
    LibraryLocked = "LIBRARY_LOCKED", Storage, true;
    /// The library's files cannot be written (a read-only file, folder or file system). Nothing
    /// was changed; make them writable, or copy the library somewhere writable.
    LibraryReadOnly = "LIBRARY_READ_ONLY", Storage, false;
    /// The library was closed; open it again to go on.
    LibraryClosed = "LIBRARY_CLOSED", Storage, false;
    /// A bug in lendkit (a panic caught at a language boundary). Nothing was stored by the failed call.
    Internal = "INTERNAL", Storage, false;
    /// The database is damaged: its files cannot be read, or a stored event does not decode.
    /// Retrying cannot help; restore the library folder from a backup.
    Corrupt = "CORRUPT", Storage, false;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The families of errors. Python raises one exception class per family (`lendkit.NotFoundError`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorFamily {
    /// Malformed input.
    InvalidInput,
    /// The actor may not do this.
    Unauthorized,
    /// Something named does not exist.
    NotFound,
    /// Something already exists, or a concurrent change won.
    Conflict,
    /// A business rule forbids it in the current state.
    RuleViolation,
    /// Payment failed.
    Payment,
    /// Storage failed.
    Storage,
}

impl ErrorFamily {
    /// The family's name as used for exception classes: `"NotFound"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorFamily::InvalidInput => "InvalidInput",
            ErrorFamily::Unauthorized => "Unauthorized",
            ErrorFamily::NotFound => "NotFound",
            ErrorFamily::Conflict => "Conflict",
            ErrorFamily::RuleViolation => "RuleViolation",
            ErrorFamily::Payment => "Payment",
            ErrorFamily::Storage => "Storage",
        }
    }
}
