//! The member page (마이페이지): a member's points and every rental with its payment and delivery status.

use super::View;
use crate::catalog::BookEvent;
use crate::deliveries::{DeliveryEvent, DeliveryStatus};
use crate::event::{Event, Fact};
use crate::holds::{HoldQueue, QueuedHold};
use crate::ids::{BookId, MemberId, RentalId, Timestamp};
use crate::members::MemberEvent;
use crate::points::PointsEvent;
use crate::rentals::{RentalEvent, RentalStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::BuildHasher;

/// One rental on a member page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RentalRow {
    /// Rental id.
    pub rental_id: String,
    /// Book id.
    pub book_id: String,
    /// `reserved`, `confirmed`, `on_loan`, `lost` (aged to lost, not back), `returned` or `canceled`.
    pub status: String,
    /// `charged` or `refunded`.
    pub payment_status: String,
    /// `none`, `started`, `delivered` or `canceled`.
    pub delivery_status: String,
    /// Fee paid, in points.
    pub fee: u64,
    /// Due date (`YYYY-MM-DD`, UTC) while on loan or after.
    pub due_date: Option<String>,
    /// Days late at return.
    pub late_days: Option<u32>,
    /// The due instant (RFC 3339, UTC, milliseconds) while on loan or after: a branch's
    /// closing time can fall on another UTC date than its local one.
    pub due_at: Option<String>,
    /// Renewals the loan has left under its terms (none when it was made without stored rules).
    pub renewals_left: Option<u64>,
    /// While the rental is a hold waiting in its title's queue: its place in line, 1 first.
    pub position: Option<u64>,
    /// While a hold's copy waits on the pickup shelf: the deadline to collect it (RFC 3339, UTC).
    pub pickup_until: Option<String>,
}

/// One hold whose copy waits on a pickup shelf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldShelfRow {
    /// Hold id (its rental id).
    pub hold_id: String,
    /// Book id.
    pub book_id: String,
    /// Who collects it.
    pub member_id: String,
    /// The pickup branch, if one was named.
    pub branch: Option<String>,
    /// The deadline to collect it (RFC 3339, UTC).
    pub until: String,
    /// The copy was on the open shelf when the hold was filled (a free or a new copy, not one
    /// just returned): fetch it to the pickup shelf. These rows are the pull list.
    pub pull: bool,
}

/// One member's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPage {
    /// Member id.
    pub member_id: String,
    /// Name.
    pub name: String,
    /// Point balance.
    pub points: u64,
    /// Rentals, oldest first.
    pub rentals: Vec<RentalRow>,
    /// Points owed in fees (the fee ledger, apart from the point balance).
    pub fees_owed: u64,
    /// A librarian's block, with its reason, while one is in force.
    pub blocked: Option<String>,
}

/// A rental's status as a member page shows it: [`RentalStatus`] and the hold's and loss's
/// states around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Shown {
    Reserved,
    Waiting,
    Confirmed,
    AwaitingPickup,
    OnLoan,
    Returned,
    Canceled,
    Expired,
    Lost,
}

impl Shown {
    fn as_str(self) -> &'static str {
        match self {
            Shown::Reserved => RentalStatus::Reserved.as_str(),
            Shown::Waiting => "waiting",
            Shown::Confirmed => RentalStatus::Confirmed.as_str(),
            Shown::AwaitingPickup => "awaiting_pickup",
            Shown::OnLoan => RentalStatus::OnLoan.as_str(),
            Shown::Returned => RentalStatus::Returned.as_str(),
            Shown::Canceled => RentalStatus::Canceled.as_str(),
            Shown::Expired => "expired",
            Shown::Lost => "lost",
        }
    }
}

/// A rental as the view keeps it: statuses as small enums and instants as numbers, turned into
/// a [`RentalRow`]'s text only when a page is asked for. (A library keeps one of these per
/// rental it ever had; as text they were most of an open library's memory.) The optional
/// fields are plain numbers with a bit each in `set` saying whether they hold a value: 72
/// bytes a row, where four `Option`s took 104 (a test holds it to that). In the views'
/// snapshot a row is a [`KeptForm`], whose short field names keep the snapshot small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "KeptForm", into = "KeptForm")]
struct Kept {
    rental: RentalId,
    book: BookId,
    fee: u64,
    /// Under [`Kept::RENEWALS`]; else 0.
    renewals_left: u64,
    /// The due instant's milliseconds under [`Kept::DUE`]; else 0.
    due: i64,
    /// The pickup deadline's milliseconds under [`Kept::PICKUP`]; else 0.
    pickup_until: i64,
    /// Under [`Kept::LATE`]; else 0.
    late_days: u32,
    status: Shown,
    delivery: DeliveryStatus,
    /// Which optional fields hold a value, and [`Kept::REFUNDED`].
    set: u8,
}

impl Kept {
    /// The payment was refunded.
    const REFUNDED: u8 = 1;
    const DUE: u8 = 2;
    const PICKUP: u8 = 4;
    const LATE: u8 = 8;
    const RENEWALS: u8 = 16;

    /// A row just reserved.
    fn reserved(rental: RentalId, book: BookId, fee: u64) -> Self {
        Kept {
            rental,
            book,
            fee,
            renewals_left: 0,
            due: 0,
            pickup_until: 0,
            late_days: 0,
            status: Shown::Reserved,
            delivery: DeliveryStatus::None,
            set: 0,
        }
    }

    fn has(&self, bit: u8) -> bool {
        self.set & bit != 0
    }

    /// Sets or clears `bit`, returning `value` to keep, or 0 (so equal rows compare equal).
    fn mark<T: Default>(&mut self, bit: u8, value: Option<T>) -> T {
        match value {
            Some(v) => {
                self.set |= bit;
                v
            }
            None => {
                self.set &= !bit;
                T::default()
            }
        }
    }

    fn refunded(&self) -> bool {
        self.has(Self::REFUNDED)
    }

    fn due(&self) -> Option<Timestamp> {
        self.has(Self::DUE).then_some(Timestamp(self.due))
    }

    fn set_due(&mut self, due: Option<Timestamp>) {
        self.due = self.mark(Self::DUE, due.map(|t| t.0));
    }

    fn pickup_until(&self) -> Option<Timestamp> {
        self.has(Self::PICKUP)
            .then_some(Timestamp(self.pickup_until))
    }

    fn set_pickup_until(&mut self, until: Option<Timestamp>) {
        self.pickup_until = self.mark(Self::PICKUP, until.map(|t| t.0));
    }

    fn late_days(&self) -> Option<u32> {
        self.has(Self::LATE).then_some(self.late_days)
    }

    fn set_late_days(&mut self, days: Option<u32>) {
        self.late_days = self.mark(Self::LATE, days);
    }

    fn renewals_left(&self) -> Option<u64> {
        self.has(Self::RENEWALS).then_some(self.renewals_left)
    }

    fn set_renewals_left(&mut self, left: Option<u64>) {
        self.renewals_left = self.mark(Self::RENEWALS, left);
    }
}

/// A [`Kept`] row as the views' snapshot writes it (the form rows had before they were packed;
/// snapshots written then read unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeptForm {
    #[serde(rename = "r")]
    rental: RentalId,
    #[serde(rename = "b")]
    book: BookId,
    #[serde(rename = "s")]
    status: Shown,
    /// The payment was refunded.
    #[serde(rename = "x", default, skip_serializing_if = "is_false")]
    refunded: bool,
    #[serde(rename = "d", default, skip_serializing_if = "is_none")]
    delivery: DeliveryStatus,
    #[serde(rename = "f")]
    fee: u64,
    /// The due instant, while on loan or after.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    due: Option<Timestamp>,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    late_days: Option<u32>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    renewals_left: Option<u64>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pickup_until: Option<Timestamp>,
}

impl From<KeptForm> for Kept {
    fn from(f: KeptForm) -> Self {
        let mut k = Kept::reserved(f.rental, f.book, f.fee);
        k.status = f.status;
        k.delivery = f.delivery;
        if f.refunded {
            k.set |= Kept::REFUNDED;
        }
        k.set_due(f.due);
        k.set_late_days(f.late_days);
        k.set_renewals_left(f.renewals_left);
        k.set_pickup_until(f.pickup_until);
        k
    }
}

impl From<Kept> for KeptForm {
    fn from(k: Kept) -> Self {
        KeptForm {
            status: k.status,
            refunded: k.refunded(),
            delivery: k.delivery,
            fee: k.fee,
            due: k.due(),
            late_days: k.late_days(),
            renewals_left: k.renewals_left(),
            pickup_until: k.pickup_until(),
            rental: k.rental,
            book: k.book,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_none(d: &DeliveryStatus) -> bool {
    *d == DeliveryStatus::None
}

impl Kept {
    /// The row shown, with the hold's place in line (`position`) where it waits.
    fn row(&self, position: Option<u64>) -> RentalRow {
        RentalRow {
            rental_id: self.rental.to_string(),
            book_id: self.book.to_string(),
            status: self.status.as_str().to_owned(),
            payment_status: if self.refunded() {
                "refunded"
            } else {
                "charged"
            }
            .to_owned(),
            delivery_status: self.delivery.as_str().to_owned(),
            fee: self.fee,
            due_date: self.due().map(Timestamp::date),
            late_days: self.late_days(),
            due_at: self.due().map(Timestamp::to_rfc3339),
            renewals_left: self.renewals_left(),
            position,
            pickup_until: self.pickup_until().map(Timestamp::to_rfc3339),
        }
    }
}

/// A member's page as the view keeps it (its member id is its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Page {
    name: String,
    points: u64,
    rentals: Vec<Kept>,
    #[serde(default, skip_serializing_if = "is_zero")]
    fees_owed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The member pages view: one [`MemberPage`] per member.
#[derive(Debug, Clone, Default)]
pub struct MemberPages {
    /// Each member's slot in `pages`, by member id (`pages()` walks it in that order).
    slots: BTreeMap<MemberId, u32>,
    /// The same slots by the hash of the member id: the lookup of every event that names a
    /// member (one hash instead of the id comparisons of the ordered map). Not in the snapshot.
    slot_of: crate::ids::IdMap<MemberId, u32>,
    /// Every member's page, in the order they joined: a page keeps its slot.
    pages: Vec<Page>,
    /// Where each rental sits: its member's slot and its index in that member's list. Found by
    /// the hash of the rental id and checked against the row's own id, so the index holds no
    /// copy of an id (a large library has hundreds of thousands of rentals; a copy of each
    /// rental and member id was 15 MB of a million-event library). Not in the snapshot: built
    /// again from the rows when one is read.
    index: hashbrown::HashTable<(u32, u32)>,
    hasher: foldhash::fast::RandomState,
    /// Each title's hold queue, for the positions shown.
    queues: crate::ids::IdMap<BookId, HoldQueue>,
    /// Holds on the pickup shelves, by branch and deadline.
    shelf: std::collections::BTreeSet<(Option<String>, Timestamp, RentalId)>,
    /// Where each shelved hold is in `shelf`, with its member and book.
    shelved: crate::ids::IdMap<RentalId, (Option<String>, Timestamp, MemberId, BookId)>,
    /// Holds filled from the open shelf whose copy is not collected yet (the pull list).
    pulls: crate::ids::IdSet<RentalId>,
    position: u64,
}

/// The view as a snapshot holds it: the pages by member id, everything but the index.
#[derive(Serialize)]
struct Stored<'a> {
    pages: Pages<'a>,
    queues: &'a crate::ids::IdMap<BookId, HoldQueue>,
    shelf: &'a std::collections::BTreeSet<(Option<String>, Timestamp, RentalId)>,
    shelved: &'a crate::ids::IdMap<RentalId, (Option<String>, Timestamp, MemberId, BookId)>,
    pulls: &'a crate::ids::IdSet<RentalId>,
    position: u64,
}

/// The pages written as a map of member id to page, in member id order.
struct Pages<'a>(&'a MemberPages);

impl Serialize for Pages<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.members())
    }
}

/// [`Stored`] as read back.
#[derive(Deserialize)]
struct Read {
    pages: BTreeMap<MemberId, Page>,
    queues: crate::ids::IdMap<BookId, HoldQueue>,
    shelf: std::collections::BTreeSet<(Option<String>, Timestamp, RentalId)>,
    shelved: crate::ids::IdMap<RentalId, (Option<String>, Timestamp, MemberId, BookId)>,
    pulls: crate::ids::IdSet<RentalId>,
    position: u64,
}

impl Serialize for MemberPages {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            pages: Pages(self),
            queues: &self.queues,
            shelf: &self.shelf,
            shelved: &self.shelved,
            pulls: &self.pulls,
            position: self.position,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MemberPages {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let read = Read::deserialize(d)?;
        let mut view = MemberPages {
            queues: read.queues,
            shelf: read.shelf,
            shelved: read.shelved,
            pulls: read.pulls,
            position: read.position,
            ..MemberPages::default()
        };
        for (member, page) in read.pages {
            let rentals = page.rentals.len();
            let Some(slot) = view.join(member, page) else {
                return Err(serde::de::Error::custom(
                    "more members than a view can hold",
                ));
            };
            for i in 0..rentals {
                if !view.index_row(slot, i) {
                    return Err(serde::de::Error::custom(
                        "more rentals than a view can hold",
                    ));
                }
            }
        }
        Ok(view)
    }
}

/// Two views are equal when they show the same: the same pages by member (whatever order the
/// members joined in) and the same queues, shelves and position. The index follows the rows.
impl PartialEq for MemberPages {
    fn eq(&self, other: &Self) -> bool {
        self.members().eq(other.members())
            && self.queues == other.queues
            && self.shelf == other.shelf
            && self.shelved == other.shelved
            && self.pulls == other.pulls
            && self.position == other.position
    }
}

impl Eq for MemberPages {}

impl MemberPages {
    /// The page of `member`, if they have joined.
    pub fn page(&self, member: &str) -> Option<MemberPage> {
        let member = MemberId::new(member);
        let page = self.page_of(&member)?;
        Some(self.shown(&member, page))
    }

    /// Every member with their page, in member id order.
    fn members(&self) -> impl Iterator<Item = (&MemberId, &Page)> + '_ {
        self.slots
            .iter()
            .filter_map(|(member, &slot)| Some((member, self.pages.get(slot as usize)?)))
    }

    fn page_of(&self, member: &MemberId) -> Option<&Page> {
        self.pages.get(*self.slot_of.get(member)? as usize)
    }

    fn page_of_mut(&mut self, member: &MemberId) -> Option<&mut Page> {
        self.pages.get_mut(*self.slot_of.get(member)? as usize)
    }

    /// Adds `member`'s page (kept as it is if they have one); their slot, `None` past
    /// [`u32::MAX`] members.
    fn join(&mut self, member: MemberId, page: Page) -> Option<u32> {
        if let Some(&slot) = self.slot_of.get(&member) {
            return Some(slot);
        }
        let slot = u32::try_from(self.pages.len()).ok()?;
        self.pages.push(page);
        self.slot_of.insert(member.clone(), slot);
        self.slots.insert(member, slot);
        Some(slot)
    }

    /// Indexes the row at `i` of the page in `slot` by its rental id (a row of the same rental
    /// indexed before is no longer found: the newer one is). False past [`u32::MAX`] rows.
    fn index_row(&mut self, slot: u32, i: usize) -> bool {
        let Ok(i) = u32::try_from(i) else {
            return false;
        };
        let MemberPages {
            pages,
            index,
            hasher,
            ..
        } = self;
        let Some(rental) = row_at(pages, (slot, i)).map(|k| &k.rental) else {
            return false;
        };
        let hash = hasher.hash_one(rental.as_str());
        let rehash =
            |&at: &(u32, u32)| row_at(pages, at).map_or(0, |k| hasher.hash_one(k.rental.as_str()));
        match index.entry(hash, is_row_of(pages, rental), rehash) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = (slot, i),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert((slot, i));
            }
        }
        true
    }

    /// `page` of `member` as shown: every rental's row, a waiting hold with its place in line.
    fn shown(&self, member: &MemberId, page: &Page) -> MemberPage {
        MemberPage {
            member_id: member.to_string(),
            name: page.name.clone(),
            points: page.points,
            rentals: page
                .rentals
                .iter()
                .map(|kept| {
                    let position = (kept.status == Shown::Waiting)
                        .then(|| self.queues.get(&kept.book)?.position(&kept.rental))
                        .flatten();
                    kept.row(position)
                })
                .collect(),
            fees_owed: page.fees_owed,
            blocked: page.blocked.clone(),
        }
    }

    /// The holds on the pickup shelf of `branch` (every branch: `None`), earliest deadline
    /// first within a branch.
    pub fn hold_shelf(&self, branch: Option<&str>) -> Vec<HoldShelfRow> {
        self.shelf
            .iter()
            .filter(|(b, _, _)| branch.is_none() || b.as_deref() == branch)
            .filter_map(|(b, until, rental)| {
                let (_, _, member, book) = self.shelved.get(rental)?;
                Some(HoldShelfRow {
                    hold_id: rental.to_string(),
                    book_id: book.to_string(),
                    member_id: member.to_string(),
                    branch: b.clone(),
                    until: until.to_rfc3339(),
                    pull: self.pulls.contains(rental),
                })
            })
            .collect()
    }

    fn unshelve(&mut self, rental: &RentalId) {
        self.pulls.remove(rental);
        if let Some((b, until, _, _)) = self.shelved.remove(rental) {
            self.shelf.remove(&(b, until, rental.clone()));
        }
    }

    /// Every page as [`page`](MemberPages::page) shows it, ordered by member id.
    pub fn pages(&self) -> impl Iterator<Item = MemberPage> + '_ {
        self.members()
            .map(|(member, page)| self.shown(member, page))
    }

    fn rental(&mut self, rental: &RentalId) -> Option<&mut Kept> {
        let hash = self.hasher.hash_one(rental.as_str());
        let pages = &self.pages;
        let &(slot, i) = self.index.find(hash, is_row_of(pages, rental))?;
        self.pages
            .get_mut(slot as usize)?
            .rentals
            .get_mut(i as usize)
    }

    fn points(&mut self, member: &MemberId, change: impl FnOnce(&mut u64)) {
        if let Some(p) = self.page_of_mut(member) {
            change(&mut p.points);
        }
    }
}

/// The row at `(slot, i)`: the `i`th rental of the page in `slot`.
fn row_at(pages: &[Page], (slot, i): (u32, u32)) -> Option<&Kept> {
    pages.get(slot as usize)?.rentals.get(i as usize)
}

/// Whether an index entry points at `rental`'s row: how a probe by the id's hash is checked.
fn is_row_of<'a>(pages: &'a [Page], rental: &'a RentalId) -> impl Fn(&(u32, u32)) -> bool + 'a {
    move |&at| row_at(pages, at).is_some_and(|k| k.rental == *rental)
}

impl View for MemberPages {
    const NAME: &'static str = "member_page";

    fn apply(&mut self, e: Fact<'_>) {
        if e.position <= self.position {
            return;
        }
        self.position = e.position;
        match e.event {
            Event::Member(MemberEvent::MemberJoined { member, name, .. }) => {
                self.join(
                    member.clone(),
                    Page {
                        name: name.clone(),
                        points: 0,
                        rentals: vec![],
                        fees_owed: 0,
                        blocked: None,
                    },
                );
            }
            Event::Member(m) => {
                let Some(page) = self.page_of_mut(m.member()) else {
                    return;
                };
                match m {
                    MemberEvent::FeeCharged { amount, .. } => {
                        page.fees_owed = page.fees_owed.saturating_add(*amount)
                    }
                    MemberEvent::FeePaid { amount, .. } | MemberEvent::FeeWaived { amount, .. } => {
                        page.fees_owed = page.fees_owed.saturating_sub(*amount)
                    }
                    MemberEvent::FeeRefunded { canceled, .. } => {
                        page.fees_owed = page.fees_owed.saturating_sub(*canceled)
                    }
                    MemberEvent::MemberBlocked { reason, .. } => {
                        page.blocked = Some(reason.clone())
                    }
                    MemberEvent::MemberUnblocked { .. } => page.blocked = None,
                    MemberEvent::MemberJoined { .. }
                    | MemberEvent::LoanRecorded { .. }
                    | MemberEvent::LoanCleared { .. }
                    | MemberEvent::BlockOverridden { .. } => {}
                }
            }
            Event::Account(a) => match a {
                PointsEvent::AccountOpened { member, welcome } => {
                    self.points(member, |p| *p = welcome.0)
                }
                PointsEvent::PointsToppedUp { member, points }
                | PointsEvent::FeePointsReturned { member, points }
                | PointsEvent::PointsRefunded { member, points, .. } => {
                    self.points(member, |p| *p = p.saturating_add(points.0))
                }
                PointsEvent::PointsCharged {
                    member,
                    points,
                    rental,
                } => {
                    self.points(member, |p| *p = p.saturating_sub(points.0));
                    // A hold paid on collecting: its row shows what was paid.
                    if let Some(row) = self.rental(rental) {
                        if row.fee == 0 {
                            row.fee = points.0;
                        }
                    }
                }
                PointsEvent::PointsSpentOnFees { member, points } => {
                    self.points(member, |p| *p = p.saturating_sub(points.0))
                }
            },
            Event::Rental(r) => match r {
                RentalEvent::RentalReserved {
                    rental,
                    member,
                    book,
                    fee,
                    ..
                } => {
                    if let Some(&slot) = self.slot_of.get(member) {
                        let Some(page) = self.pages.get_mut(slot as usize) else {
                            return;
                        };
                        page.rentals
                            .push(Kept::reserved(rental.clone(), book.clone(), fee.0));
                        let i = page.rentals.len() - 1;
                        self.index_row(slot, i);
                    }
                }
                RentalEvent::RentalConfirmed { rental, .. } => {
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::Confirmed;
                    }
                }
                RentalEvent::HoldAwaitingPickup {
                    rental,
                    member,
                    book,
                    branch,
                    until,
                } => {
                    self.shelf.insert((branch.clone(), *until, rental.clone()));
                    self.shelved.insert(
                        rental.clone(),
                        (branch.clone(), *until, member.clone(), book.clone()),
                    );
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::AwaitingPickup;
                        row.set_pickup_until(Some(*until));
                    }
                }
                RentalEvent::LoanRecalled { rental, due, .. } => {
                    if let Some(row) = self.rental(rental) {
                        row.set_due(Some(*due));
                        row.set_renewals_left(row.renewals_left().map(|_| 0));
                    }
                }
                RentalEvent::HoldPickupExpired { rental, .. } => {
                    self.unshelve(rental);
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::Expired;
                        row.set_pickup_until(None);
                    }
                }
                RentalEvent::LoanStarted {
                    rental, due, terms, ..
                } => {
                    self.unshelve(rental);
                    if let Some(row) = self.rental(rental) {
                        row.set_pickup_until(None);
                        row.status = Shown::OnLoan;
                        row.set_due(Some(*due));
                        row.set_renewals_left(terms.as_ref().map(|t| t.loan.max_renewals));
                    }
                }
                RentalEvent::LoanRenewed { rental, due, .. } => {
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::OnLoan;
                        row.set_due(Some(*due));
                        row.set_renewals_left(row.renewals_left().map(|n| n.saturating_sub(1)));
                    }
                }
                RentalEvent::BookReturned {
                    rental, late_days, ..
                } => {
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::Returned;
                        row.set_late_days(Some(*late_days));
                    }
                }
                RentalEvent::RentalCanceled { rental, .. } => {
                    self.unshelve(rental);
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::Canceled;
                        row.set_pickup_until(None);
                    }
                }
                RentalEvent::ItemAgedToLost { rental, .. } => {
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::Lost;
                    }
                }
                RentalEvent::LoanOverdue { .. } | RentalEvent::AutoRenewalFailed { .. } => {}
                RentalEvent::PaymentRefunded { rental, .. } => {
                    if let Some(row) = self.rental(rental) {
                        row.set |= Kept::REFUNDED;
                    }
                }
            },
            Event::Delivery(d) => {
                let (rental, s) = match d {
                    DeliveryEvent::DeliveryStarted { rental, .. } => {
                        (rental, DeliveryStatus::Started)
                    }
                    DeliveryEvent::Delivered { rental, .. } => (rental, DeliveryStatus::Delivered),
                    DeliveryEvent::DeliveryCanceled { rental, .. } => {
                        (rental, DeliveryStatus::Canceled)
                    }
                };
                if let Some(row) = self.rental(rental) {
                    row.delivery = s;
                }
            }
            Event::Book(b) => match b {
                BookEvent::HoldQueued {
                    book,
                    rental,
                    member,
                    not_needed_after,
                    delivery,
                    copy,
                    ..
                } => {
                    self.queues
                        .entry(book.clone())
                        .or_default()
                        .push_back(QueuedHold {
                            rental: rental.clone(),
                            member: member.clone(),
                            not_needed_after: *not_needed_after,
                            pickup: !*delivery,
                            copy: *copy,
                        });
                    // (A hold cancelled before the catalog queued it stays cancelled: it
                    // leaves the queue right after.)
                    if let Some(row) = self.rental(rental) {
                        if row.status == Shown::Reserved {
                            row.status = Shown::Waiting;
                        }
                    }
                }
                BookEvent::CopyAllocated {
                    book, rental, pull, ..
                } => {
                    if let Some(q) = self.queues.get_mut(book) {
                        q.remove(rental);
                    }
                    if *pull {
                        self.pulls.insert(rental.clone());
                    }
                }
                BookEvent::HoldLeftQueue { book, rental, .. } => {
                    if let Some(q) = self.queues.get_mut(book) {
                        q.remove(rental);
                    }
                }
                BookEvent::CopyReleased { rental, .. } => {
                    self.pulls.remove(rental);
                }
                BookEvent::QueueReordered {
                    book,
                    rental,
                    position,
                } => {
                    if let Some(q) = self.queues.get_mut(book) {
                        q.move_to(rental, *position);
                    }
                }
                _ => {}
            },
            Event::Rules(_) => {}
        }
    }

    fn position(&self) -> u64 {
        self.position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_row_is_72_bytes() {
        assert_eq!(std::mem::size_of::<Kept>(), 72);
    }

    #[test]
    fn a_kept_row_reads_and_writes_the_snapshot_form_rows_always_had() {
        let mut row = Kept::reserved(RentalId::new("r-1"), BookId::new("b-1"), 3);
        row.status = Shown::Returned;
        row.delivery = DeliveryStatus::Delivered;
        row.set |= Kept::REFUNDED;
        row.set_due(Some(Timestamp(-5)));
        row.set_late_days(Some(0));
        row.set_renewals_left(Some(u64::MAX));
        row.set_pickup_until(Some(Timestamp(i64::MIN)));
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"r": "r-1", "b": "b-1", "s": "returned", "x": true,
                "d": "delivered", "f": 3, "u": -5, "l": 0, "n": u64::MAX,
                "p": i64::MIN})
        );
        let back: Kept = serde_json::from_value(json).unwrap();
        assert_eq!(back, row);
        assert_eq!(back.due(), Some(Timestamp(-5)));
        assert_eq!(back.late_days(), Some(0));
        assert_eq!(back.renewals_left(), Some(u64::MAX));
        assert_eq!(back.pickup_until(), Some(Timestamp(i64::MIN)));

        // A row whose optional fields were set and cleared equals one never set, and writes
        // none of them.
        let mut cleared = Kept::reserved(RentalId::new("r-1"), BookId::new("b-1"), 3);
        cleared.set_due(Some(Timestamp(9)));
        cleared.set_pickup_until(Some(Timestamp(9)));
        cleared.set_late_days(Some(9));
        cleared.set_renewals_left(Some(9));
        cleared.set_due(None);
        cleared.set_pickup_until(None);
        cleared.set_late_days(None);
        cleared.set_renewals_left(None);
        let fresh = Kept::reserved(RentalId::new("r-1"), BookId::new("b-1"), 3);
        assert_eq!(cleared, fresh);
        assert_eq!(
            serde_json::to_value(&cleared).unwrap(),
            serde_json::json!({"r": "r-1", "b": "b-1", "s": "reserved", "f": 3})
        );
        let row = cleared.row(None);
        assert_eq!(
            (
                row.due_at,
                row.late_days,
                row.renewals_left,
                row.pickup_until
            ),
            (None, None, None, None)
        );
        assert_eq!(row.payment_status, "charged");
    }
}
