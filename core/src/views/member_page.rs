//! The member page (마이페이지): a member's points and every rental with its payment and delivery status.

use super::View;
use crate::catalog::BookEvent;
use crate::deliveries::{DeliveryEvent, DeliveryStatus};
use crate::event::{Envelope, Event};
use crate::holds::{HoldQueue, QueuedHold};
use crate::ids::{BookId, MemberId, RentalId, Timestamp};
use crate::members::MemberEvent;
use crate::points::PointsEvent;
use crate::rentals::{RentalEvent, RentalStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
/// rental it ever had; as text they were most of an open library's memory.) The short field
/// names keep the views' snapshot small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Kept {
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
            payment_status: if self.refunded { "refunded" } else { "charged" }.to_owned(),
            delivery_status: self.delivery.as_str().to_owned(),
            fee: self.fee,
            due_date: self.due.map(Timestamp::date),
            late_days: self.late_days,
            due_at: self.due.map(Timestamp::to_rfc3339),
            renewals_left: self.renewals_left,
            position,
            pickup_until: self.pickup_until.map(Timestamp::to_rfc3339),
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPages {
    pages: BTreeMap<MemberId, Page>,
    /// Where each rental sits: its member and index in that member's list.
    index: crate::ids::IdMap<RentalId, (MemberId, usize)>,
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

impl MemberPages {
    /// The page of `member`, if they have joined.
    pub fn page(&self, member: &str) -> Option<MemberPage> {
        let member = MemberId::new(member);
        let page = self.pages.get(&member)?;
        Some(self.shown(&member, page))
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
        self.pages
            .iter()
            .map(|(member, page)| self.shown(member, page))
    }

    fn rental(&mut self, rental: &RentalId) -> Option<&mut Kept> {
        let (member, i) = self.index.get(rental)?;
        self.pages.get_mut(member)?.rentals.get_mut(*i)
    }

    fn points(&mut self, member: &MemberId, change: impl FnOnce(&mut u64)) {
        if let Some(p) = self.pages.get_mut(member) {
            change(&mut p.points);
        }
    }
}

impl View for MemberPages {
    const NAME: &'static str = "member_page";

    fn apply(&mut self, e: &Envelope) {
        if e.position <= self.position {
            return;
        }
        self.position = e.position;
        match &e.event {
            Event::Member(MemberEvent::MemberJoined { member, name, .. }) => {
                self.pages.entry(member.clone()).or_insert_with(|| Page {
                    name: name.clone(),
                    points: 0,
                    rentals: vec![],
                    fees_owed: 0,
                    blocked: None,
                });
            }
            Event::Member(m) => {
                let Some(page) = self.pages.get_mut(m.member()) else {
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
                    if let Some(page) = self.pages.get_mut(member) {
                        self.index
                            .insert(rental.clone(), (member.clone(), page.rentals.len()));
                        page.rentals.push(Kept {
                            rental: rental.clone(),
                            book: book.clone(),
                            status: Shown::Reserved,
                            refunded: false,
                            delivery: DeliveryStatus::None,
                            fee: fee.0,
                            due: None,
                            late_days: None,
                            renewals_left: None,
                            pickup_until: None,
                        });
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
                        row.pickup_until = Some(*until);
                    }
                }
                RentalEvent::LoanRecalled { rental, due, .. } => {
                    if let Some(row) = self.rental(rental) {
                        row.due = Some(*due);
                        row.renewals_left = row.renewals_left.map(|_| 0);
                    }
                }
                RentalEvent::HoldPickupExpired { rental, .. } => {
                    self.unshelve(rental);
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::Expired;
                        row.pickup_until = None;
                    }
                }
                RentalEvent::LoanStarted {
                    rental, due, terms, ..
                } => {
                    self.unshelve(rental);
                    if let Some(row) = self.rental(rental) {
                        row.pickup_until = None;
                        row.status = Shown::OnLoan;
                        row.due = Some(*due);
                        row.renewals_left = terms.as_ref().map(|t| t.loan.max_renewals);
                    }
                }
                RentalEvent::LoanRenewed { rental, due, .. } => {
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::OnLoan;
                        row.due = Some(*due);
                        row.renewals_left = row.renewals_left.map(|n| n.saturating_sub(1));
                    }
                }
                RentalEvent::BookReturned {
                    rental, late_days, ..
                } => {
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::Returned;
                        row.late_days = Some(*late_days);
                    }
                }
                RentalEvent::RentalCanceled { rental, .. } => {
                    self.unshelve(rental);
                    if let Some(row) = self.rental(rental) {
                        row.status = Shown::Canceled;
                        row.pickup_until = None;
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
                        row.refunded = true;
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
