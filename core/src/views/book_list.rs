//! The book list (도서 목록): every book with its stock and status.

use super::View;
use crate::catalog::BookEvent;
use crate::event::{Event, Fact};
use crate::ids::{BookId, RentalId};
use crate::rentals::RentalEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A book's status in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookStatus {
    /// At least one copy is on the shelf.
    Available,
    /// No copy on the shelf; some are held for reservations.
    Reserved,
    /// Every copy is out on loan.
    OnLoan,
}

impl BookStatus {
    /// The status as text.
    pub fn as_str(self) -> &'static str {
        match self {
            BookStatus::Available => "available",
            BookStatus::Reserved => "reserved",
            BookStatus::OnLoan => "on_loan",
        }
    }
}

/// One row of the book list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookRow {
    /// Book id.
    pub book_id: String,
    /// Title.
    pub title: String,
    /// Author.
    pub author: Option<String>,
    /// Rental fee in points.
    pub fee: u64,
    /// Copies owned.
    pub copies: u32,
    /// Copies on the shelf.
    pub available: u32,
    /// Copies held for reservations not yet picked up.
    pub reserved: u32,
    /// Copies out on loan.
    pub on_loan: u32,
    /// Summary status.
    pub status: BookStatus,
    /// The last business step that concerned this book: `BookRegistered`, `CopiesAdded`,
    /// `RentalReserved`, `LoanStarted`, `RentalCanceled` or `BookReturned`. (The catalog's own
    /// copy bookkeeping that follows a step does not replace it.)
    pub last_activity: String,
}

/// The book list view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookList {
    books: BTreeMap<BookId, BookRow>,
    /// Rentals holding a copy, and whether that copy is out on loan.
    held: crate::ids::IdMap<RentalId, (BookId, bool)>,
    position: u64,
}

impl BookList {
    /// Every book, ordered by id.
    pub fn rows(&self) -> Vec<BookRow> {
        self.books.values().cloned().collect()
    }

    /// One book's row.
    pub fn row(&self, book: &str) -> Option<&BookRow> {
        self.books.get(&BookId::new(book))
    }

    fn touch(&mut self, book: &BookId, activity: Option<&str>, change: impl FnOnce(&mut BookRow)) {
        if let Some(row) = self.books.get_mut(book) {
            change(row);
            if let Some(activity) = activity {
                // Written over in place: a fresh `String` per event was an allocation and a
                // free for every rental step, live and in every rebuild.
                if row.last_activity != activity {
                    row.last_activity.clear();
                    row.last_activity.push_str(activity);
                }
            }
            row.status = if row.available > 0 {
                BookStatus::Available
            } else if row.reserved == 0 && row.on_loan > 0 {
                BookStatus::OnLoan
            } else {
                BookStatus::Reserved
            };
        }
    }
}

impl View for BookList {
    const NAME: &'static str = "book_list";

    fn apply(&mut self, e: Fact<'_>) {
        if e.position <= self.position {
            return;
        }
        self.position = e.position;
        let step = Some(e.type_name());
        match e.event {
            Event::Book(BookEvent::BookRegistered {
                book,
                title,
                author,
                copies,
                fee,
                ..
            }) => {
                self.books.insert(
                    book.clone(),
                    BookRow {
                        book_id: book.to_string(),
                        title: title.clone(),
                        author: author.clone(),
                        fee: fee.0,
                        copies: *copies,
                        available: *copies,
                        reserved: 0,
                        on_loan: 0,
                        status: BookStatus::Available,
                        last_activity: e.type_name().to_owned(),
                    },
                );
            }
            Event::Book(BookEvent::CopiesAdded { book, copies }) => self.touch(book, step, |r| {
                r.copies = r.copies.saturating_add(*copies);
                r.available = r.available.saturating_add(*copies);
            }),
            Event::Book(BookEvent::CopyWithdrawn { book, .. }) => self.touch(book, step, |r| {
                r.copies = r.copies.saturating_sub(1);
                r.available = r.available.saturating_sub(1);
            }),
            Event::Book(BookEvent::CopyAllocated { book, rental, .. }) => {
                self.held.insert(rental.clone(), (book.clone(), false));
                self.touch(book, None, |r| {
                    r.available = r.available.saturating_sub(1);
                    r.reserved += 1;
                });
            }
            Event::Book(BookEvent::CopyReleased { book, rental }) => {
                let on_loan = self.held.remove(rental).is_some_and(|(_, l)| l);
                self.touch(book, None, |r| {
                    r.available += 1;
                    if on_loan {
                        r.on_loan = r.on_loan.saturating_sub(1);
                    } else {
                        r.reserved = r.reserved.saturating_sub(1);
                    }
                });
            }
            Event::Rental(RentalEvent::LoanStarted { rental, book, .. }) => {
                let moved = match self.held.get_mut(rental) {
                    Some((_, on_loan)) if !*on_loan => {
                        *on_loan = true;
                        true
                    }
                    _ => false,
                };
                self.touch(book, step, |r| {
                    if moved {
                        r.reserved = r.reserved.saturating_sub(1);
                        r.on_loan += 1;
                    }
                });
            }
            Event::Rental(
                RentalEvent::RentalReserved { book, .. }
                | RentalEvent::RentalCanceled { book, .. }
                | RentalEvent::BookReturned { book, .. },
            ) => self.touch(book, step, |_| {}),
            _ => {}
        }
    }

    fn position(&self) -> u64 {
        self.position
    }
}
