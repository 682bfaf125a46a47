//! The Book aggregate: a title in the catalogue and its copies.
//!
//! Invariants: `available = copies - allocated ≥ 0`; a rental holds at most one copy;
//! allocating or releasing twice for one rental changes nothing; only a librarian registers
//! books or adds copies; only lendkit's own policies allocate and release copies.

use crate::aggregate::{Aggregate, Context};
use crate::codes::ErrorCode;
use crate::holds::{HoldQueue, QueuedHold};
use crate::ids::{BookId, MemberId, Points, RentalId, StreamKind, Timestamp};
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
    /// Take a copy that is on the shelf out of the collection (librarian).
    WithdrawCopy {
        /// The book.
        book: BookId,
        /// The copy's number.
        copy: u32,
    },
    /// The copy a loan has was aged to lost (policy).
    MarkCopyLost {
        /// The book.
        book: BookId,
        /// The loan (its rental).
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
            /// The copy (its number, from 1); absent in logs written before copies were
            /// numbered, where the fold takes the lowest-numbered free copy, as lendkit did.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            copy: Option<u32>,
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
            /// For a copy-level hold: the copy it waits for.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            copy: Option<u32>,
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
        /// A librarian took a copy out of the collection: it is never lent or held again.
        CopyWithdrawn {
            /// Book id.
            book: BookId,
            /// The copy's number.
            copy: u32,
        },
        /// The copy a loan has was aged to lost: it cannot be held (until it comes back).
        CopyLost {
            /// Book id.
            book: BookId,
            /// The copy's number.
            copy: u32,
            /// The loan (its rental).
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
    /// The copy does not exist, was withdrawn, or is lost.
    #[error("copy {copy} of book {book} {why}; it cannot be held")]
    CopyNotHoldable {
        /// The book.
        book: BookId,
        /// The copy's number.
        copy: u32,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A copy out on a loan cannot be withdrawn.
    #[error("copy {copy} of book {book} is out; withdraw it once it is back")]
    CopyOut {
        /// The book.
        book: BookId,
        /// The copy's number.
        copy: u32,
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
            BookError::CopyNotHoldable { .. } => ErrorCode::CopyNotFound,
            BookError::CopyOut { .. } => ErrorCode::InvalidTransition,
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
    pub borrowers: crate::ids::IdMap<RentalId, MemberId>,
    /// Holds whose copy waits on the pickup shelf.
    pub shelf: BTreeSet<RentalId>,
    /// Holds waiting for a copy, first in line first.
    pub queue: HoldQueue,
    /// The copy (its number, from 1) each of those rentals holds.
    pub copy_of: crate::ids::IdMap<RentalId, u32>,
    /// Copies out (held for or lent to a rental), by number.
    pub out: BTreeSet<u32>,
    /// Copies taken out of the collection (never lent again).
    pub withdrawn: BTreeSet<u32>,
    /// Copies out on a loan that was aged to lost (until they come back).
    pub lost: BTreeSet<u32>,
}

impl Book {
    /// True once registered.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }
    /// Copies on the shelf now.
    pub fn available(&self) -> u32 {
        let gone = self.allocated.len().saturating_add(self.withdrawn.len());
        self.copies
            .saturating_sub(u32::try_from(gone).unwrap_or(u32::MAX))
    }

    /// The lowest-numbered copy on the shelf, if any: the copy a title-level allocation takes.
    /// (Walks the copies out and withdrawn, so it costs as many steps as copies are gone.)
    pub fn first_free_copy(&self) -> Option<u32> {
        let mut candidate = 1u32;
        let mut out = self.out.iter().peekable();
        let mut withdrawn = self.withdrawn.iter().peekable();
        loop {
            let next = match (out.peek(), withdrawn.peek()) {
                (Some(a), Some(b)) => (**a).min(**b),
                (Some(a), None) => **a,
                (None, Some(b)) => **b,
                (None, None) => break,
            };
            if next > candidate {
                break;
            }
            if out.peek() == Some(&&next) {
                out.next();
            }
            if withdrawn.peek() == Some(&&next) {
                withdrawn.next();
            }
            candidate = next.saturating_add(1);
        }
        (candidate <= self.copies).then_some(candidate)
    }

    /// Whether copy `copy` is on the shelf now.
    pub fn is_free(&self, copy: u32) -> bool {
        (1..=self.copies).contains(&copy)
            && !self.out.contains(&copy)
            && !self.withdrawn.contains(&copy)
    }

    /// Why copy `copy` cannot be held: it does not exist, was withdrawn, or is lost.
    fn unholdable(&self, copy: u32) -> Option<&'static str> {
        if !(1..=self.copies).contains(&copy) {
            Some("does not exist")
        } else if self.withdrawn.contains(&copy) {
            Some("was withdrawn")
        } else if self.lost.contains(&copy) {
            Some("is lost")
        } else {
            None
        }
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
    pub fn check_holdable(
        &self,
        book: &BookId,
        member: &MemberId,
        copy: Option<u32>,
    ) -> Result<(), BookError> {
        if !self.exists() {
            return Err(BookError::NotFound(book.clone()));
        }
        if let Some(why) = copy.and_then(|c| self.unholdable(c)) {
            return Err(BookError::CopyNotHoldable {
                book: book.clone(),
                copy: copy.unwrap_or_default(),
                why,
            });
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
    /// Each of `copies` (freed or new) to the first hold still wanted at `now` that takes it: a
    /// title-level hold takes any copy, a copy-level hold only its own. (`pull`: the copies are on
    /// the open shelf, not at the return desk.)
    fn promote(&self, book: &BookId, copies: &[u32], now: Timestamp, pull: bool) -> Vec<BookEvent> {
        let mut events = Vec::new();
        let mut taken: Vec<&RentalId> = Vec::new();
        for &copy in copies {
            let next = self.queue.iter().find(|h| {
                h.not_needed_after.is_none_or(|t| t >= now)
                    && h.copy.is_none_or(|c| c == copy)
                    && !taken.contains(&&h.rental)
            });
            if let Some(h) = next {
                taken.push(&h.rental);
                events.push(BookEvent::CopyAllocated {
                    book: book.clone(),
                    rental: h.rental.clone(),
                    member: Some(h.member.clone()),
                    hold_shelf: h.pickup,
                    pull: pull && h.pickup,
                    copy: Some(copy),
                });
            }
        }
        events
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
            | BookCommand::CollectHold { book, .. }
            | BookCommand::WithdrawCopy { book, .. }
            | BookCommand::MarkCopyLost { book, .. } => book,
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
                let new: Vec<u32> = (1..=*copies).map(|i| self.copies + i).collect();
                events.extend(self.promote(&book, &new, ctx.now, true));
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
                    // A copy-level hold takes its copy or waits for it.
                    let wanted = match hold.copy {
                        Some(c) if self.unholdable(c).is_some() => {
                            return Ok(vec![BookEvent::CopyAllocationFailed {
                                book,
                                rental: rental.clone(),
                                reason: "copy_not_holdable".into(),
                            }])
                        }
                        Some(c) => self.is_free(c).then_some(c),
                        None => self.first_free_copy(),
                    };
                    if let Some(copy) = wanted {
                        return Ok(vec![BookEvent::CopyAllocated {
                            book,
                            rental: rental.clone(),
                            member: Some(member.clone()),
                            hold_shelf: hold.pickup,
                            pull: hold.pickup,
                            copy: Some(copy),
                        }]);
                    }
                    return Ok(vec![BookEvent::HoldQueued {
                        book,
                        rental: rental.clone(),
                        member: member.clone(),
                        position: self.queue.len() as u64 + 1,
                        not_needed_after: hold.not_needed_after,
                        delivery: !hold.pickup,
                        copy: hold.copy,
                    }]);
                }
                let Some(copy) = self.first_free_copy() else {
                    return Ok(vec![BookEvent::CopyAllocationFailed {
                        book,
                        rental: rental.clone(),
                        reason: "unavailable".into(),
                    }]);
                };
                Ok(vec![BookEvent::CopyAllocated {
                    book,
                    rental: rental.clone(),
                    member: member.clone(),
                    hold_shelf: false,
                    pull: false,
                    copy: Some(copy),
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
                if let Some(&copy) = self.copy_of.get(rental) {
                    if !self.withdrawn.contains(&copy) {
                        events.extend(self.promote(&book, &[copy], ctx.now, false));
                    }
                }
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
            BookCommand::WithdrawCopy { book, copy } => {
                if !ctx.actor.is_librarian() {
                    return Err(BookError::LibrarianOnly("withdraw copies"));
                }
                let book = exists(book)?;
                if !(1..=self.copies).contains(copy) || self.withdrawn.contains(copy) {
                    return Err(BookError::CopyNotHoldable {
                        book,
                        copy: *copy,
                        why: if self.withdrawn.contains(copy) {
                            "was withdrawn already"
                        } else {
                            "does not exist"
                        },
                    });
                }
                if self.out.contains(copy) {
                    return Err(BookError::CopyOut { book, copy: *copy });
                }
                Ok(vec![BookEvent::CopyWithdrawn { book, copy: *copy }])
            }
            BookCommand::MarkCopyLost { book, rental } => {
                if !ctx.actor.is_system() {
                    return Err(BookError::SystemOnly);
                }
                let book = exists(book)?;
                Ok(match self.copy_of.get(rental) {
                    Some(&copy) if !self.lost.contains(&copy) => vec![BookEvent::CopyLost {
                        book,
                        copy,
                        rental: rental.clone(),
                    }],
                    _ => vec![],
                })
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
                copy,
                ..
            } => {
                // (Logs from before copies were numbered: the lowest free one, as allocated.)
                if let Some(copy) = copy.or_else(|| self.first_free_copy()) {
                    self.out.insert(copy);
                    self.copy_of.insert(rental.clone(), copy);
                }
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
                if let Some(copy) = self.copy_of.remove(rental) {
                    self.out.remove(&copy);
                    self.lost.remove(&copy);
                }
                self.allocated.remove(rental);
                self.borrowers.remove(rental);
                self.shelf.remove(rental);
            }
            BookEvent::HoldQueued {
                rental,
                member,
                not_needed_after,
                delivery,
                copy,
                ..
            } => self.queue.push_back(QueuedHold {
                rental: rental.clone(),
                member: member.clone(),
                not_needed_after: *not_needed_after,
                pickup: !*delivery,
                copy: *copy,
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
            BookEvent::CopyWithdrawn { copy, .. } => {
                self.withdrawn.insert(*copy);
            }
            BookEvent::CopyLost { copy, .. } => {
                self.lost.insert(*copy);
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
            copy: None,
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
    fn a_log_from_before_copies_were_numbered_folds_to_the_lowest_free_copies() {
        let mut book = Book::default();
        for e in [registered(3), allocated("r1"), allocated("r2")] {
            book.apply(&e);
        }
        assert_eq!(
            (
                book.copy_of[&RentalId::new("r1")],
                book.copy_of[&RentalId::new("r2")]
            ),
            (1, 2)
        );
        book.apply(&BookEvent::CopyReleased {
            book: BookId::new("b1"),
            rental: RentalId::new("r1"),
        });
        assert_eq!(book.first_free_copy(), Some(1));
        book.apply(&allocated("r3"));
        assert_eq!(book.copy_of[&RentalId::new("r3")], 1);
        assert_eq!(book.first_free_copy(), Some(3));
    }

    #[test]
    fn a_released_copy_passes_a_hold_for_another_copy_by() {
        let queued = |r: &str, copy: Option<u32>| BookEvent::HoldQueued {
            book: BookId::new("b1"),
            rental: RentalId::new(r),
            member: MemberId::new(format!("m-{r}")),
            position: 0,
            not_needed_after: None,
            delivery: false,
            copy,
        };
        let with_copy = |r: &str, copy: u32| BookEvent::CopyAllocated {
            book: BookId::new("b1"),
            rental: RentalId::new(r),
            member: None,
            hold_shelf: false,
            pull: false,
            copy: Some(copy),
        };
        given::<Book>([
            registered(2),
            with_copy("x", 1),
            with_copy("y", 2),
            queued("a", Some(2)),
            queued("b", None),
        ])
        .when(
            BookCommand::ReleaseCopy {
                book: BookId::new("b1"),
                rental: RentalId::new("x"),
            },
            system(),
        )
        .then_events([
            BookEvent::CopyReleased {
                book: BookId::new("b1"),
                rental: RentalId::new("x"),
            },
            BookEvent::CopyAllocated {
                book: BookId::new("b1"),
                rental: RentalId::new("b"),
                member: Some(MemberId::new("m-b")),
                hold_shelf: true,
                pull: false,
                copy: Some(1),
            },
        ]);
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
