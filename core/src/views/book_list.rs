//! The book list (도서 목록): every book with its stock and status.

use super::View;
use crate::catalog::BookEvent;
use crate::event::{Event, Fact};
use crate::ids::{BookId, RentalId};
use crate::rentals::RentalEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::BuildHasher;

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
#[derive(Debug, Clone, Default)]
pub struct BookList {
    /// Every book's row, in the order the books were registered: a row keeps its slot.
    rows: Vec<BookRow>,
    /// Each book's slot by book id: the order [`rows`](BookList::rows) lists them in.
    order: BTreeMap<BookId, u32>,
    /// Each book's slot, found by the hash of its id and checked against the row's own id: the
    /// lookup every rental step makes. One hash instead of the dozen or two id comparisons of
    /// the ordered map (of 10,000 books, about a third of the list's cost per event); it holds
    /// no copy of an id, and is not in the snapshot (built again when one is read).
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Rentals holding a copy, and whether that copy is out on loan.
    held: crate::ids::IdMap<RentalId, (BookId, bool)>,
    position: u64,
}

/// The view as a snapshot holds it (the same form as before the index): the rows by book id,
/// the held copies and the position.
#[derive(Serialize)]
struct Stored<'a> {
    books: Books<'a>,
    held: &'a crate::ids::IdMap<RentalId, (BookId, bool)>,
    position: u64,
}

/// The rows written as a map of book id to row, in book id order.
struct Books<'a>(&'a BookList);

impl Serialize for Books<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.books())
    }
}

/// [`Stored`] as read back.
#[derive(Deserialize)]
struct Read {
    books: BTreeMap<BookId, BookRow>,
    held: crate::ids::IdMap<RentalId, (BookId, bool)>,
    position: u64,
}

impl Serialize for BookList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            books: Books(self),
            held: &self.held,
            position: self.position,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for BookList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let read = Read::deserialize(d)?;
        let mut view = BookList {
            held: read.held,
            position: read.position,
            ..BookList::default()
        };
        for (book, row) in read.books {
            if !view.register(book, row) {
                return Err(serde::de::Error::custom("more books than a view can hold"));
            }
        }
        Ok(view)
    }
}

/// Two lists are equal when they show the same: the same rows by book id (whatever order the
/// books were registered in), the same held copies and position. The index follows the rows.
impl PartialEq for BookList {
    fn eq(&self, other: &Self) -> bool {
        self.books().eq(other.books()) && self.held == other.held && self.position == other.position
    }
}

impl Eq for BookList {}

impl BookList {
    /// Every book, ordered by id.
    pub fn rows(&self) -> Vec<BookRow> {
        // Sized up front: collected from the slots' walk, which gives no exact length, the
        // vector was regrown and its rows moved a dozen times for 10,000 books.
        let mut rows = Vec::with_capacity(self.rows.len());
        rows.extend(self.books().map(|(_, row)| row.clone()));
        rows
    }

    /// One book's row.
    pub fn row(&self, book: &str) -> Option<&BookRow> {
        self.rows.get(self.slot(book)?)
    }

    /// The slot of `book`'s row, found by the hash of its id.
    fn slot(&self, book: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(book);
        let &slot = self.index.find(hash, is_row_of(&self.rows, book))?;
        Some(slot as usize)
    }

    /// Every book with its row, in book id order.
    fn books(&self) -> impl Iterator<Item = (&BookId, &BookRow)> + '_ {
        self.order
            .iter()
            .filter_map(|(book, &slot)| Some((book, self.rows.get(slot as usize)?)))
    }

    fn row_mut(&mut self, book: &str) -> Option<&mut BookRow> {
        let slot = self.slot(book)?;
        self.rows.get_mut(slot)
    }

    /// Puts `row` in the list as `book`'s (over the row it had, if any). False past
    /// [`u32::MAX`] books.
    fn register(&mut self, book: BookId, mut row: BookRow) -> bool {
        // The index finds a row by its own id, so the row carries the id it is kept under.
        if row.book_id != book.as_str() {
            row.book_id = book.to_string();
        }
        if let Some(&slot) = self.order.get(&book) {
            if let Some(kept) = self.rows.get_mut(slot as usize) {
                *kept = row;
                return true;
            }
        }
        let Ok(slot) = u32::try_from(self.rows.len()) else {
            return false;
        };
        let hash = self.hasher.hash_one(row.book_id.as_str());
        self.rows.push(row);
        let BookList {
            rows,
            index,
            hasher,
            ..
        } = self;
        index.insert_unique(hash, slot, |&at| {
            rows.get(at as usize)
                .map_or(0, |r| hasher.hash_one(r.book_id.as_str()))
        });
        self.order.insert(book, slot);
        true
    }

    fn touch(&mut self, book: &BookId, activity: Option<&str>, change: impl FnOnce(&mut BookRow)) {
        if let Some(row) = self.row_mut(book.as_str()) {
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

/// Whether an index entry points at `book`'s row: how a probe by the id's hash is checked.
fn is_row_of<'a>(rows: &'a [BookRow], book: &'a str) -> impl Fn(&u32) -> bool + 'a {
    move |&slot| rows.get(slot as usize).is_some_and(|r| r.book_id == book)
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
                self.register(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Points, Timestamp};

    fn registered(book: &str, copies: u32) -> Event {
        Event::Book(BookEvent::BookRegistered {
            book: BookId::new(book),
            title: format!("Title {book}"),
            author: None,
            copies,
            fee: Points(3),
            item_type: None,
            branch: None,
        })
    }

    fn allocated(book: &str, rental: &str) -> Event {
        Event::Book(BookEvent::CopyAllocated {
            book: BookId::new(book),
            rental: RentalId::new(rental),
            member: None,
            hold_shelf: false,
            pull: false,
            copy: None,
        })
    }

    fn folded(events: &[Event]) -> BookList {
        let mut view = BookList::default();
        for (i, event) in events.iter().enumerate() {
            view.apply(Fact {
                position: i as u64 + 1,
                occurred_at: Timestamp(0),
                event,
            });
        }
        view
    }

    #[test]
    fn rows_are_listed_by_id_and_found_by_id_whatever_the_order_of_registration() {
        let books = ["b-9", "a-1", "b-10", "m-5", "a-0"];
        let mut events: Vec<Event> = books.iter().map(|b| registered(b, 2)).collect();
        events.push(allocated("m-5", "r-1"));
        events.push(allocated("m-5", "r-2"));
        events.push(allocated("a-0", "r-3"));
        events.push(allocated("nowhere", "r-4"));
        let view = folded(&events);
        let ids: Vec<String> = view.rows().into_iter().map(|r| r.book_id).collect();
        assert_eq!(ids, ["a-0", "a-1", "b-10", "b-9", "m-5"]);
        let m5 = view.row("m-5").unwrap();
        assert_eq!(
            (m5.available, m5.reserved, m5.status),
            (0, 2, BookStatus::Reserved)
        );
        assert_eq!(view.row("a-0").unwrap().available, 1);
        assert_eq!(view.row("b-9").unwrap().available, 2);
        assert!(view.row("nowhere").is_none());
        assert!(view.row("m-").is_none());

        // The same events with the books registered in another order: an equal list.
        let mut other: Vec<Event> = books.iter().rev().map(|b| registered(b, 2)).collect();
        other.extend_from_slice(&events[books.len()..]);
        assert_eq!(folded(&other), view);
        // One step fewer: not equal.
        assert_ne!(folded(&other[..other.len() - 2]), view);
    }

    #[test]
    fn a_snapshot_reads_back_equal_with_its_index_built_again() {
        let mut events: Vec<Event> = (0..300).map(|b| registered(&format!("b-{b}"), 3)).collect();
        events.push(allocated("b-17", "r-1"));
        events.push(registered("b-17", 5));
        let view = folded(&events);
        // Registered again: one row, the new one's.
        assert_eq!(view.rows().len(), 300);
        assert_eq!(view.row("b-17").unwrap().copies, 5);

        let text = serde_json::to_string(&view).unwrap();
        // The stored form is the rows by id, as before the index: what older snapshots hold.
        let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(stored["books"]["b-17"]["copies"], 5);
        assert_eq!(stored["held"]["r-1"][0], "b-17");
        let read: BookList = serde_json::from_str(&text).unwrap();
        assert_eq!(read, view);
        for b in 0..300 {
            let id = format!("b-{b}");
            assert_eq!(read.row(&id), view.row(&id), "{id}");
        }
        // A step folded on the read list changes the row it names.
        let mut read = read;
        read.apply(Fact {
            position: 1_000,
            occurred_at: Timestamp(0),
            event: &allocated("b-299", "r-2"),
        });
        assert_eq!(read.row("b-299").unwrap().available, 2);
    }
}
