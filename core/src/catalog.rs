//! The Book aggregate: a title in the catalogue and its copies.
//!
//! Invariants: `available = copies - allocated ≥ 0`; a rental holds at most one copy;
//! allocating or releasing twice for one rental changes nothing; only a librarian registers
//! books or adds copies; only lendkit's own policies allocate and release copies.

use crate::aggregate::{Aggregate, Context};
use crate::codes::ErrorCode;
use crate::holds::{HoldQueue, QueuedHold};
use crate::ids::{BookId, MemberId, Points, RentalId, StreamKind, Timestamp};
use std::collections::{BTreeSet, HashMap};

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
    /// Hold one free copy for a rental (policy); a hold with none free joins the queue.
    AllocateCopy {
        /// The book.
        book: BookId,
        /// The rental the copy is for.
        rental: RentalId,
        /// Its member.
        member: Option<MemberId>,
        /// Set when the rental is a hold: it waits in the queue while no copy is free.
        hold: Option<QueuedHold>,
    },
    /// Give a rental's copy back to the shelf (policy).
    ReleaseCopy {
        /// The book.
        book: BookId,
        /// The rental that held it.
        rental: RentalId,
    },
    /// Move a waiting hold to another place in the queue (librarian).
    ReorderQueue {
        /// The book.
        book: BookId,
        /// The hold (its rental).
        rental: RentalId,
        /// Its new position, 1 for first in line.
        position: u64,
    },
    /// The member took the held copy off the pickup shelf (part of the loan's start).
    CollectHold {
        /// The book.
        book: BookId,
        /// The hold (its rental).
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
        /// A copy is now held for a rental; stock went down. For a hold collected in person,
        /// the copy goes to the pickup shelf.
        CopyAllocated {
            /// Book id.
            book: BookId,
            /// The rental.
            rental: RentalId,
            /// The rental's member (absent in logs written before it was recorded).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            member: Option<MemberId>,
            /// True when the copy waits on the pickup shelf for a hold.
            #[serde(default, skip_serializing_if = "is_false")]
            hold_shelf: bool,
            /// True when that copy is on the open shelf (a free or a new copy, not one just
            /// returned): staff fetch it to the pickup shelf (the pull list).
            #[serde(default, skip_serializing_if = "is_false")]
            pull: bool,
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
        /// The rental's copy is back; stock went up (or it went straight to the next hold).
        CopyReleased {
            /// Book id.
            book: BookId,
            /// The rental.
            rental: RentalId,
        },
        /// No copy was free: the hold joined the end of the title's queue.
        HoldQueued {
            /// Book id.
            book: BookId,
            /// The hold (its rental).
            rental: RentalId,
            /// Who waits.
            member: MemberId,
            /// Its position when it joined (positions move up as holds ahead leave).
            position: u64,
            /// After this the member no longer wants it.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            not_needed_after: Option<Timestamp>,
            /// True when the hold is delivered rather than collected.
            #[serde(default, skip_serializing_if = "is_false")]
            delivery: bool,
        },
        /// A waiting hold left the queue unfilled (cancelled, or no longer needed).
        HoldLeftQueue {
            /// Book id.
            book: BookId,
            /// The hold (its rental).
            rental: RentalId,
            /// Who waited.
            member: MemberId,
        },
        /// A librarian moved a waiting hold to `position`.
        QueueReordered {
            /// Book id.
            book: BookId,
            /// The hold (its rental).
            rental: RentalId,
            /// Its new position.
            position: u64,
        },
        /// The held copy left the pickup shelf with its member (the loan started).
        HoldCollected {
            /// Book id.
            book: BookId,
            /// The hold (its rental).
            rental: RentalId,
        },
    }
}

fn is_false(b: &bool) -> bool {
    !*b
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
    /// The free copies wait on the pickup shelf for other members.
    #[error("every free copy of book {0} is held for another member; place a hold to queue for the next one")]
    HeldForOther(BookId),
    /// The member has this title already.
    #[error("member {member} already has book {book} on loan, reserved or on hold")]
    AlreadyHeld {
        /// The book.
        book: BookId,
        /// The member.
        member: MemberId,
    },
    /// The hold does not wait in this book's queue.
    #[error("no hold {rental} waits in the queue of book {book}")]
    HoldNotFound {
        /// The book.
        book: BookId,
        /// The hold.
        rental: RentalId,
    },
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
            BookError::HeldForOther(_) => ErrorCode::HeldForOther,
            BookError::AlreadyHeld { .. } => ErrorCode::AlreadyHeld,
            BookError::HoldNotFound { .. } => ErrorCode::HoldNotFound,
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
    /// The members of those rentals, where known.
    pub borrowers: HashMap<RentalId, MemberId>,
    /// Holds whose copy waits on the pickup shelf.
    pub shelf: BTreeSet<RentalId>,
    /// Holds waiting for a copy, first in line first.
    pub queue: HoldQueue,
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
            if !self.shelf.is_empty() {
                return Err(BookError::HeldForOther(book.clone()));
            }
            return Err(BookError::Unavailable(book.clone()));
        }
        Ok(())
    }

    /// The quick check when a hold is placed: the book exists and the member does not have it
    /// already (on loan, reserved, on the shelf or in the queue). The catalog's allocation
    /// checks again and has the final word.
    pub fn check_holdable(&self, book: &BookId, member: &MemberId) -> Result<(), BookError> {
        if !self.exists() {
            return Err(BookError::NotFound(book.clone()));
        }
        if self.has_member(member) {
            return Err(BookError::AlreadyHeld {
                book: book.clone(),
                member: member.clone(),
            });
        }
        Ok(())
    }

    /// Whether `member` holds a copy of this title or waits for one.
    pub fn has_member(&self, member: &MemberId) -> bool {
        self.borrowers.values().any(|m| m == member) || self.queue.holds_member(member)
    }

    /// Whether other members wait for this title.
    pub fn has_holds(&self) -> bool {
        !self.queue.is_empty()
    }

    /// A copy for each of the first `copies` holds still wanted at `now`.
    /// (`pull`: the copies are on the open shelf, not at the return desk.)
    fn promote(&self, book: &BookId, copies: u32, now: Timestamp, pull: bool) -> Vec<BookEvent> {
        self.queue
            .iter()
            .filter(|h| h.not_needed_after.map_or(true, |t| t >= now))
            .take(copies as usize)
            .map(|h| BookEvent::CopyAllocated {
                book: book.clone(),
                rental: h.rental.clone(),
                member: Some(h.member.clone()),
                hold_shelf: h.pickup,
                pull: pull && h.pickup,
            })
            .collect()
    }
}

impl BookCommand {
    /// The book the command is about.
    pub fn book(&self) -> &BookId {
        match self {
            BookCommand::RegisterBook { book, .. }
            | BookCommand::AddCopies { book, .. }
            | BookCommand::AllocateCopy { book, .. }
            | BookCommand::ReleaseCopy { book, .. }
            | BookCommand::ReorderQueue { book, .. }
            | BookCommand::CollectHold { book, .. } => book,
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
                // New copies go to the holds waiting first.
                let mut events = vec![BookEvent::CopiesAdded {
                    book: book.clone(),
                    copies: *copies,
                }];
                events.extend(self.promote(&book, *copies, ctx.now, true));
                Ok(events)
            }
            BookCommand::AllocateCopy {
                book,
                rental,
                member,
                hold,
            } => {
                if !ctx.actor.is_system() {
                    return Err(BookError::SystemOnly);
                }
                let book = exists(book)?;
                if self.allocated.contains(rental) || self.queue.contains(rental) {
                    return Ok(vec![]);
                }
                if let (Some(hold), Some(member)) = (hold, member) {
                    // The final word on a member holding a title twice (the placing checked
                    // quickly; two placed at once are caught here).
                    if self.has_member(member) {
                        return Ok(vec![BookEvent::CopyAllocationFailed {
                            book,
                            rental: rental.clone(),
                            reason: "already_held".into(),
                        }]);
                    }
                    if self.available() == 0 {
                        return Ok(vec![BookEvent::HoldQueued {
                            book,
                            rental: rental.clone(),
                            member: member.clone(),
                            position: self.queue.len() as u64 + 1,
                            not_needed_after: hold.not_needed_after,
                            delivery: !hold.pickup,
                        }]);
                    }
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
                    member: member.clone(),
                    hold_shelf: hold.as_ref().is_some_and(|h| h.pickup),
                    pull: hold.as_ref().is_some_and(|h| h.pickup),
                }])
            }
            BookCommand::ReleaseCopy { book, rental } => {
                if !ctx.actor.is_system() {
                    return Err(BookError::SystemOnly);
                }
                let book = exists(book)?;
                if let Some(member) = self.queue.get(rental).map(|h| h.member.clone()) {
                    return Ok(vec![BookEvent::HoldLeftQueue {
                        book,
                        rental: rental.clone(),
                        member,
                    }]);
                }
                if !self.allocated.contains(rental) {
                    return Ok(vec![]);
                }
                // The copy goes straight to the first hold still wanted, if any.
                let mut events = vec![BookEvent::CopyReleased {
                    book: book.clone(),
                    rental: rental.clone(),
                }];
                events.extend(self.promote(&book, 1, ctx.now, false));
                Ok(events)
            }
            BookCommand::ReorderQueue {
                book,
                rental,
                position,
            } => {
                if !ctx.actor.is_librarian() {
                    return Err(BookError::LibrarianOnly("reorder a hold queue"));
                }
                let book = exists(book)?;
                if !self.queue.contains(rental) {
                    return Err(BookError::HoldNotFound {
                        book,
                        rental: rental.clone(),
                    });
                }
                let n = self.queue.len() as u64;
                if *position == 0 || *position > n {
                    return Err(BookError::InvalidInput(format!(
                        "position {position} is outside the queue of book {book}: 1 to {n}"
                    )));
                }
                if self.queue.position(rental) == Some(*position) {
                    return Ok(vec![]);
                }
                Ok(vec![BookEvent::QueueReordered {
                    book,
                    rental: rental.clone(),
                    position: *position,
                }])
            }
            BookCommand::CollectHold { book, rental } => {
                let book = exists(book)?;
                if !self.shelf.contains(rental) {
                    return Ok(vec![]);
                }
                Ok(vec![BookEvent::HoldCollected {
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
            BookEvent::CopyAllocated {
                rental,
                member,
                hold_shelf,
                ..
            } => {
                self.allocated.insert(rental.clone());
                self.queue.remove(rental);
                if let Some(member) = member {
                    self.borrowers.insert(rental.clone(), member.clone());
                }
                if *hold_shelf {
                    self.shelf.insert(rental.clone());
                }
            }
            BookEvent::CopyAllocationFailed { .. } => {}
            BookEvent::CopyReleased { rental, .. } => {
                self.allocated.remove(rental);
                self.borrowers.remove(rental);
                self.shelf.remove(rental);
            }
            BookEvent::HoldQueued {
                rental,
                member,
                not_needed_after,
                delivery,
                ..
            } => self.queue.push_back(QueuedHold {
                rental: rental.clone(),
                member: member.clone(),
                not_needed_after: *not_needed_after,
                pickup: !*delivery,
            }),
            BookEvent::HoldLeftQueue { rental, .. } => {
                self.queue.remove(rental);
            }
            BookEvent::QueueReordered {
                rental, position, ..
            } => {
                self.queue.move_to(rental, *position);
            }
            BookEvent::HoldCollected { rental, .. } => {
                self.shelf.remove(rental);
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
            member: None,
            hold_shelf: false,
            pull: false,
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
                    member: None,
                    hold: None,
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
                    member: None,
                    hold: None,
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
                    member: None,
                    hold: None,
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
