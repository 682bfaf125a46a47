//! The Book aggregate: a title in the catalogue and its copies.
//!
//! Invariants: `available = copies - allocated ≥ 0`; a rental holds at most one copy;
//! allocating or releasing twice for one rental changes nothing; only a librarian registers
//! books or adds copies; only lendkit's own policies allocate and release copies.

use crate::aggregate::{Aggregate, Context};
use crate::codes::ErrorCode;
use crate::ids::{BookId, Points, RentalId, StreamKind};
use std::collections::BTreeSet;

/// Commands on a book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookCommand {
    /// Put a new title in the catalogue with its first copies and its rental fee.
    RegisterBook {
        /// The new book's id.
        book: BookId,
        /// The title.
        title: String,
        /// The author, if known.
        author: Option<String>,
        /// Copies on the shelf (at least one).
        copies: u32,
        /// Points a rental costs (at least one).
        fee: Points,
        /// The item type for the circulation rules (`book`, `dvd`, `ebook`); none matches only
        /// the rules' `*`.
        item_type: Option<String>,
        /// The branch its copies belong to; none matches only the rules' `*`.
        branch: Option<String>,
    },
    /// Stock more copies of a registered title (입고).
    AddCopies {
        /// The book.
        book: BookId,
        /// How many (at least one).
        copies: u32,
    },
    /// Hold one free copy for a rental (policy).
    AllocateCopy {
        /// The book.
        book: BookId,
        /// The rental the copy is for.
        rental: RentalId,
    },
    /// Give a rental's copy back to the shelf (policy).
    ReleaseCopy {
        /// The book.
        book: BookId,
        /// The rental that held it.
        rental: RentalId,
    },
}

crate::event::event_enum! {
    /// Events of a book.
    pub enum BookEvent {
        /// The title entered the catalogue.
        BookRegistered {
            /// Book id.
            book: BookId,
            /// Title.
            title: String,
            /// Author.
            #[serde(default)]
            author: Option<String>,
            /// Copies on the shelf.
            copies: u32,
            /// Rental fee.
            fee: Points,
            /// Item type for the circulation rules, if one was given.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            item_type: Option<String>,
            /// The branch its copies belong to, if one was given.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            branch: Option<String>,
        },
        /// Copies were stocked.
        CopiesAdded {
            /// Book id.
            book: BookId,
            /// How many were added.
            copies: u32,
        },
        /// A copy is now held for a rental; stock went down.
        CopyAllocated {
            /// Book id.
            book: BookId,
            /// The rental.
            rental: RentalId,
        },
        /// No copy was free for the rental.
        CopyAllocationFailed {
            /// Book id.
            book: BookId,
            /// The rental.
            rental: RentalId,
            /// Why (today always `unavailable`).
            reason: String,
        },
        /// The rental's copy is back; stock went up.
        CopyReleased {
            /// Book id.
            book: BookId,
            /// The rental.
            rental: RentalId,
        },
    }
}

/// Why a book command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BookError {
    /// Only librarians manage the catalogue.
    #[error("only a librarian may {0}")]
    LibrarianOnly(&'static str),
    /// Copy allocation is lendkit's own job.
    #[error("copies are allocated and released by lendkit's policies, not by callers")]
    SystemOnly,
    /// The id is taken.
    #[error("book {0} is already registered; use add_copies to stock more")]
    AlreadyRegistered(BookId),
    /// The book does not exist.
    #[error("book {0} not found; register it first")]
    NotFound(BookId),
    /// The numbers make no sense.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Every copy is held or out on loan.
    #[error("book {0} has no free copy; retry after a return")]
    Unavailable(BookId),
}

impl BookError {
    /// Stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            BookError::LibrarianOnly(_) | BookError::SystemOnly => ErrorCode::Unauthorized,
            BookError::AlreadyRegistered(_) => ErrorCode::BookExists,
            BookError::NotFound(_) => ErrorCode::BookNotFound,
            BookError::InvalidInput(_) => ErrorCode::InvalidInput,
            BookError::Unavailable(_) => ErrorCode::BookUnavailable,
        }
    }
}

/// A title with its copies. State is the fold of its [`BookEvent`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    /// Its id, once registered.
    pub id: Option<BookId>,
    /// Title.
    pub title: String,
    /// Copies owned.
    pub copies: u32,
    /// Rental fee.
    pub fee: Points,
    /// Item type for the circulation rules.
    pub item_type: Option<String>,
    /// The branch its copies belong to.
    pub branch: Option<String>,
    /// Rentals currently holding a copy.
    pub allocated: BTreeSet<RentalId>,
}

impl Book {
    /// True once registered.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }
    /// Copies on the shelf now.
    pub fn available(&self) -> u32 {
        self.copies
            .saturating_sub(u32::try_from(self.allocated.len()).unwrap_or(u32::MAX))
    }

    /// The quick check at reservation time: is a copy free right now? (The copy itself is
    /// allocated later by the catalog policy, which has the final word.)
    pub fn check_available(&self, book: &BookId) -> Result<(), BookError> {
        if !self.exists() {
            return Err(BookError::NotFound(book.clone()));
        }
        if self.available() == 0 {
            return Err(BookError::Unavailable(book.clone()));
        }
        Ok(())
    }
}

impl BookCommand {
    /// The book the command is about.
    pub fn book(&self) -> &BookId {
        match self {
            BookCommand::RegisterBook { book, .. }
            | BookCommand::AddCopies { book, .. }
            | BookCommand::AllocateCopy { book, .. }
            | BookCommand::ReleaseCopy { book, .. } => book,
        }
    }
}

impl Aggregate for Book {
    type Command = BookCommand;
    type Event = BookEvent;
    type Error = BookError;
    const KIND: StreamKind = StreamKind::Book;

    fn decide(&self, command: &BookCommand, ctx: &Context) -> Result<Vec<BookEvent>, BookError> {
        let exists = |book: &BookId| {
            if self.exists() {
                Ok(book.clone())
            } else {
                Err(BookError::NotFound(book.clone()))
            }
        };
        match command {
            BookCommand::RegisterBook {
                book,
                title,
                author,
                copies,
                fee,
                item_type,
                branch,
            } => {
                if !ctx.actor.is_librarian() {
                    return Err(BookError::LibrarianOnly("register books"));
                }
                if let Some(id) = &self.id {
                    return Err(BookError::AlreadyRegistered(id.clone()));
                }
                if *copies == 0 {
                    return Err(BookError::InvalidInput("copies must be at least 1".into()));
                }
                if fee.0 == 0 {
                    return Err(BookError::InvalidInput(
                        "fee must be at least 1 point".into(),
                    ));
                }
                Ok(vec![BookEvent::BookRegistered {
                    book: book.clone(),
                    title: title.trim().to_owned(),
                    author: author.clone(),
                    copies: *copies,
                    fee: *fee,
                    item_type: item_type.clone(),
                    branch: branch.clone(),
                }])
            }
            BookCommand::AddCopies { book, copies } => {
                if !ctx.actor.is_librarian() {
                    return Err(BookError::LibrarianOnly("add copies"));
                }
                let book = exists(book)?;
                if *copies == 0 {
                    return Err(BookError::InvalidInput(
                        "copies to add must be at least 1".into(),
                    ));
                }
                if self.copies.checked_add(*copies).is_none() {
                    return Err(BookError::InvalidInput(format!(
                        "book {book} cannot hold more than {} copies",
                        u32::MAX
                    )));
                }
                Ok(vec![BookEvent::CopiesAdded {
                    book,
                    copies: *copies,
                }])
            }
            BookCommand::AllocateCopy { book, rental } => {
                if !ctx.actor.is_system() {
                    return Err(BookError::SystemOnly);
                }
                let book = exists(book)?;
                if self.allocated.contains(rental) {
                    return Ok(vec![]);
                }
                if self.available() == 0 {
                    return Ok(vec![BookEvent::CopyAllocationFailed {
                        book,
                        rental: rental.clone(),
                        reason: "unavailable".into(),
                    }]);
                }
                Ok(vec![BookEvent::CopyAllocated {
                    book,
                    rental: rental.clone(),
                }])
            }
            BookCommand::ReleaseCopy { book, rental } => {
                if !ctx.actor.is_system() {
                    return Err(BookError::SystemOnly);
                }
                let book = exists(book)?;
                if !self.allocated.contains(rental) {
                    return Ok(vec![]);
                }
                Ok(vec![BookEvent::CopyReleased {
                    book,
                    rental: rental.clone(),
                }])
            }
        }
    }

    fn apply(&mut self, event: &BookEvent) {
        match event {
            BookEvent::BookRegistered {
                book,
                title,
                copies,
                fee,
                item_type,
                branch,
                ..
            } => {
                self.id = Some(book.clone());
                self.branch = branch.clone();
                self.title = title.clone();
                self.copies = *copies;
                self.fee = *fee;
                self.item_type = item_type.clone();
            }
            BookEvent::CopiesAdded { copies, .. } => {
                self.copies = self.copies.saturating_add(*copies)
            }
            BookEvent::CopyAllocated { rental, .. } => {
                self.allocated.insert(rental.clone());
            }
            BookEvent::CopyAllocationFailed { .. } => {}
            BookEvent::CopyReleased { rental, .. } => {
                self.allocated.remove(rental);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn registered(copies: u32) -> BookEvent {
        BookEvent::BookRegistered {
            book: BookId::new("b1"),
            title: "DDD".into(),
            author: None,
            copies,
            fee: Points(30),
            item_type: None,
            branch: None,
        }
    }
    fn allocated(r: &str) -> BookEvent {
        BookEvent::CopyAllocated {
            book: BookId::new("b1"),
            rental: RentalId::new(r),
        }
    }

    #[test]
    fn only_librarians_register() {
        given::<Book>([])
            .when(
                BookCommand::RegisterBook {
                    book: BookId::new("b1"),
                    title: "DDD".into(),
                    author: None,
                    copies: 1,
                    fee: Points(30),
                    item_type: None,
                    branch: None,
                },
                member("m1"),
            )
            .then_err(BookError::LibrarianOnly("register books"));
    }

    #[test]
    fn registering_twice_is_refused() {
        given::<Book>([registered(1)])
            .when(
                BookCommand::RegisterBook {
                    book: BookId::new("b1"),
                    title: "DDD".into(),
                    author: None,
                    copies: 1,
                    fee: Points(30),
                    item_type: None,
                    branch: None,
                },
                librarian(),
            )
            .then_err(BookError::AlreadyRegistered(BookId::new("b1")));
    }

    #[test]
    fn zero_copies_or_fee_is_invalid() {
        given::<Book>([])
            .when(
                BookCommand::RegisterBook {
                    book: BookId::new("b1"),
                    title: "x".into(),
                    author: None,
                    copies: 0,
                    fee: Points(1),
                    item_type: None,
                    branch: None,
                },
                librarian(),
            )
            .then_code(ErrorCode::InvalidInput);
        given::<Book>([])
            .when(
                BookCommand::RegisterBook {
                    book: BookId::new("b1"),
                    title: "x".into(),
                    author: None,
                    copies: 1,
                    fee: Points(0),
                    item_type: None,
                    branch: None,
                },
                librarian(),
            )
            .then_code(ErrorCode::InvalidInput);
    }

    #[test]
    fn the_last_copy_goes_to_one_rental_only() {
        given::<Book>([registered(1), allocated("r1")])
            .when(
                BookCommand::AllocateCopy {
                    book: BookId::new("b1"),
                    rental: RentalId::new("r2"),
                },
                system(),
            )
            .then_events([BookEvent::CopyAllocationFailed {
                book: BookId::new("b1"),
                rental: RentalId::new("r2"),
                reason: "unavailable".into(),
            }]);
    }

    #[test]
    fn allocation_and_release_are_idempotent_per_rental() {
        given::<Book>([registered(2), allocated("r1")])
            .when(
                BookCommand::AllocateCopy {
                    book: BookId::new("b1"),
                    rental: RentalId::new("r1"),
                },
                system(),
            )
            .then_events([]);
        given::<Book>([registered(2)])
            .when(
                BookCommand::ReleaseCopy {
                    book: BookId::new("b1"),
                    rental: RentalId::new("r1"),
                },
                system(),
            )
            .then_events([]);
    }

    #[test]
    fn callers_cannot_allocate() {
        given::<Book>([registered(1)])
            .when(
                BookCommand::AllocateCopy {
                    book: BookId::new("b1"),
                    rental: RentalId::new("r1"),
                },
                librarian(),
            )
            .then_err(BookError::SystemOnly);
    }

    #[test]
    fn adding_copies_needs_a_registered_book() {
        given::<Book>([])
            .when(
                BookCommand::AddCopies {
                    book: BookId::new("b1"),
                    copies: 2,
                },
                librarian(),
            )
            .then_code(ErrorCode::BookNotFound);
        given::<Book>([registered(1)])
            .when(
                BookCommand::AddCopies {
                    book: BookId::new("b1"),
                    copies: 2,
                },
                librarian(),
            )
            .then_events([BookEvent::CopiesAdded {
                book: BookId::new("b1"),
                copies: 2,
            }]);
    }
}
