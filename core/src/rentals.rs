//! The Rental aggregate: one member's reservation of one book, from payment to return.
//!
//! A rental moves `Reserved → Confirmed → OnLoan → Returned`, or from `Reserved`/`Confirmed`
//! to `Canceled`; no other move exists. It is created only with a payment already taken
//! (the fee and the gateway's payment id are part of `RentalReserved`). Only its member or a
//! librarian acts on it; confirmation and refunds are lendkit's own. A delivered rental can
//! no longer be cancelled. A canceled rental records its refund once.

use crate::aggregate::{Aggregate, Context};
use crate::circulation::LoanTerms;
use crate::codes::ErrorCode;
use crate::holds::HoldTerms;
use crate::ids::{Actor, BookId, MemberId, Points, RentalId, StreamKind, Timestamp};
use serde::{Deserialize, Serialize};

/// Left out of the stored form when 0 (logs from before it was recorded).
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a rental stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RentalStatus {
    /// Not created yet.
    #[default]
    New,
    /// Paid for; waiting for a copy.
    Reserved,
    /// A copy is held for the member.
    Confirmed,
    /// The member has the book.
    OnLoan,
    /// The book is back.
    Returned,
    /// Cancelled (by the member, a librarian, or because no copy was free).
    Canceled,
}

impl RentalStatus {
    /// The status as shown in views: `"on_loan"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RentalStatus::New => "new",
            RentalStatus::Reserved => "reserved",
            RentalStatus::Confirmed => "confirmed",
            RentalStatus::OnLoan => "on_loan",
            RentalStatus::Returned => "returned",
            RentalStatus::Canceled => "canceled",
        }
    }
}

/// Commands on a rental. Every one names its rental.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RentalCommand {
    /// Create the rental for a payment already taken. Built by `Library::reserve_book`, which charges first.
    ReserveBook {
        /// New rental id.
        rental: RentalId,
        /// Who borrows.
        member: MemberId,
        /// What.
        book: BookId,
        /// The fee charged.
        fee: Points,
        /// The gateway's id for the charge.
        payment_id: String,
        /// Deliver to this address, or pick up in person when `None`.
        delivery_address: Option<String>,
        /// Set for a hold: the rental waits in the title's queue while no copy is free.
        hold: Option<HoldTerms>,
    },
    /// A copy is held: confirm (policy). A hold collected in person waits on the pickup shelf
    /// until `pickup_until` (filled in by the library from the rules and the branch's calendar).
    ConfirmRental {
        /// Rental.
        rental: RentalId,
        /// The last moment the member can collect it, for a hold on the pickup shelf.
        pickup_until: Option<Timestamp>,
    },
    /// A hold on the pickup shelf was not collected by its deadline (lendkit's clock-driven
    /// rules): the copy goes to the next in line; the fee is not refunded.
    ExpirePickup {
        /// Rental.
        rental: RentalId,
        /// The deadline that passed.
        until: Timestamp,
    },
    /// A hold still waiting is no longer needed (its `not_needed_after` passed; lendkit's
    /// clock-driven rules): cancelled and refunded.
    ExpireHold {
        /// Rental.
        rental: RentalId,
        /// The `not_needed_after` that passed.
        at: Timestamp,
    },
    /// The member picks the book up (대여). The library fills in the due date and the terms
    /// from the circulation rules; without them (no rules stored) the loan lasts the library's
    /// `loan_days`.
    StartLoan {
        /// Rental.
        rental: RentalId,
        /// The due date the rules give.
        due: Option<Timestamp>,
        /// The terms the loan is made under.
        terms: Option<Box<LoanTerms>>,
    },
    /// The member brings it back (반납).
    ReturnBook {
        /// Rental.
        rental: RentalId,
        /// When the book really came back (a drop box emptied later), if not now.
        returned_at: Option<Timestamp>,
    },
    /// Cancel (예약 취소); the refund, copy release and delivery cancellation follow as events.
    CancelRental {
        /// Rental.
        rental: RentalId,
        /// Why.
        reason: String,
        /// Whether the rental's delivery has already arrived (read from the delivery by the service).
        delivered: bool,
        /// Cancelling a hold (`cancel_hold`): refused for a rental that is not one.
        hold: bool,
    },
    /// Extend the loan by another loan period.
    RenewLoan {
        /// Rental.
        rental: RentalId,
        /// The new due date the loan's terms give (filled in by the library); without terms,
        /// the due date plus the library's `loan_days`.
        due: Option<Timestamp>,
        /// An automatic renewal names the due date it is for: once the loan was renewed or its
        /// due date dealt with, it changes nothing.
        for_due: Option<Timestamp>,
    },
    /// The loan's due date passed without a renewal (lendkit's clock-driven rules).
    MarkOverdue {
        /// Rental.
        rental: RentalId,
        /// The due date that passed.
        due: Timestamp,
    },
    /// An automatic renewal at the due date was refused (lendkit's clock-driven rules).
    RecordAutoRenewalFailed {
        /// Rental.
        rental: RentalId,
        /// The due date it was for.
        due: Timestamp,
        /// Why: the refusal's code.
        code: String,
    },
    /// The loan is overdue long enough to count the item as lost (lendkit's clock-driven rules).
    AgeToLost {
        /// Rental.
        rental: RentalId,
        /// When it counts as lost.
        at: Timestamp,
    },
    /// A hold waits for the title: the loan is recalled to `due`, earlier than it was due
    /// (lendkit's policy; the library computes `due` from the request policy).
    RecallLoan {
        /// Rental.
        rental: RentalId,
        /// The new due date.
        due: Timestamp,
    },
    /// The payment gateway refunded the fee (policy).
    RecordRefund {
        /// Rental.
        rental: RentalId,
    },
}

impl RentalCommand {
    /// The rental the command is about.
    pub fn rental(&self) -> &RentalId {
        match self {
            RentalCommand::ReserveBook { rental, .. }
            | RentalCommand::ConfirmRental { rental, .. }
            | RentalCommand::ExpirePickup { rental, .. }
            | RentalCommand::ExpireHold { rental, .. }
            | RentalCommand::StartLoan { rental, .. }
            | RentalCommand::ReturnBook { rental, .. }
            | RentalCommand::CancelRental { rental, .. }
            | RentalCommand::RenewLoan { rental, .. }
            | RentalCommand::MarkOverdue { rental, .. }
            | RentalCommand::RecordAutoRenewalFailed { rental, .. }
            | RentalCommand::AgeToLost { rental, .. }
            | RentalCommand::RecallLoan { rental, .. }
            | RentalCommand::RecordRefund { rental } => rental,
        }
    }
}

crate::event::event_enum! {
    /// Events of a rental.
    pub enum RentalEvent {
        /// Paid and reserved (예약).
        RentalReserved {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// Fee charged.
            fee: Points,
            /// Gateway's payment id.
            payment_id: String,
            /// Delivery address, if delivered.
            #[serde(default)]
            delivery_address: Option<String>,
            /// Set when the rental is a hold: it waits for a copy instead of failing.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            hold: Option<HoldTerms>,
        },
        /// A copy is held for the member.
        RentalConfirmed {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// Delivery address, if delivered.
            #[serde(default)]
            delivery_address: Option<String>,
        },
        /// The member has the book until `due`.
        LoanStarted {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// Due back.
            due: Timestamp,
            /// When the loan started (absent in logs written before it was recorded).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            started_at: Option<Timestamp>,
            /// The circulation rules' terms it was made under (absent when no rules were
            /// stored: the library's `loan_days` and `max_renewals` apply).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            terms: Option<Box<LoanTerms>>,
        },
        /// The loan was extended.
        LoanRenewed {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// New due date.
            due: Timestamp,
            /// Renewals so far, this one included (0 in logs written before it was recorded).
            #[serde(default, skip_serializing_if = "is_zero")]
            count: u32,
            /// Who renewed: `member`, `librarian` or `auto`.
            #[serde(default, skip_serializing_if = "String::is_empty")]
            by: String,
        },
        /// The book is back.
        BookReturned {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// Days past due (0 when on time).
            late_days: u32,
            /// When it really came back, when that was not when the return was recorded.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            returned_at: Option<Timestamp>,
        },
        /// The rental was cancelled; `fee` is owed back to the member.
        RentalCanceled {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// Why.
            reason: String,
            /// The fee to refund.
            fee: Points,
        },
        /// The loan's due date passed; the member is reminded.
        LoanOverdue {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// The due date that passed.
            due: Timestamp,
        },
        /// The loan could not renew itself on its due date; the due date is unchanged.
        AutoRenewalFailed {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// The due date it was for.
            due: Timestamp,
            /// Why (`RENEWAL_LIMIT`, `FEES_OWED`, `MEMBER_BLOCKED`, …).
            code: String,
        },
        /// The loan was overdue so long that the item counts as lost and is billed.
        ItemAgedToLost {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// When it was aged to lost (its due date plus the lost policy's days).
            at: Timestamp,
        },
        /// The fee went back to the member (결제 취소).
        PaymentRefunded {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Amount refunded.
            amount: Points,
        },
        /// A copy of a hold waits on the pickup shelf for the member until `until`; only they
        /// can borrow it (`collect_hold`).
        HoldAwaitingPickup {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// Where it waits.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            branch: Option<String>,
            /// The last moment it can be collected.
            until: Timestamp,
        },
        /// A member waits for the title: the loan is due back sooner, at `due` (it was due at
        /// `was`); it can no longer be renewed.
        LoanRecalled {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// The new due date.
            due: Timestamp,
            /// The due date before the recall.
            was: Timestamp,
        },
        /// The hold was not collected by `until`: the copy goes to the next in line. The fee is
        /// kept (the hold was filled).
        HoldPickupExpired {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Book.
            book: BookId,
            /// The deadline that passed.
            until: Timestamp,
        },
    }
}

/// Why a rental command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RentalError {
    /// No such rental.
    #[error("rental {0} not found")]
    NotFound(RentalId),
    /// The rental id is taken.
    #[error("rental {0} already exists; choose another rental id")]
    AlreadyExists(RentalId),
    /// A member acted on someone else's rental.
    #[error(
        "rental {rental} belongs to another member; {actor} may act only on their own rentals"
    )]
    NotRentalOwner {
        /// Rental.
        rental: RentalId,
        /// Who tried.
        actor: String,
    },
    /// A member tried to reserve for someone else.
    #[error("{actor} may not reserve for member {member}")]
    Unauthorized {
        /// Who tried.
        actor: String,
        /// For whom.
        member: MemberId,
    },
    /// Only lendkit's policies confirm rentals and record refunds.
    #[error("this step is taken by lendkit's policies, not by callers")]
    SystemOnly,
    /// The move is not allowed from the current status.
    #[error("rental {rental} is {}; it cannot {action}", status.as_str())]
    InvalidTransition {
        /// Rental.
        rental: RentalId,
        /// Where it stands.
        status: RentalStatus,
        /// What was asked.
        action: &'static str,
    },
    /// The book was already delivered.
    #[error("rental {0} was already delivered; return the book instead of cancelling")]
    AlreadyDelivered(RentalId),
    /// Renewed too often.
    #[error("rental {rental} was already renewed {max} times; return the book")]
    RenewalLimit {
        /// Rental.
        rental: RentalId,
        /// The limit.
        max: u64,
    },
    /// A member acted on someone else's hold.
    #[error("hold {rental} belongs to another member; {actor} cannot act on it")]
    NotHoldOwner {
        /// The hold.
        rental: RentalId,
        /// Who tried.
        actor: String,
    },
    /// `cancel_hold` on a rental that is not a hold.
    #[error("rental {0} is not a hold; use cancel_rental")]
    NotAHold(RentalId),
    /// Other members wait for the title.
    #[error("other members wait for book {book}; rental {rental} cannot be renewed, return it")]
    HasHolds {
        /// Rental.
        rental: RentalId,
        /// Book.
        book: BookId,
    },
    /// A renewal would not move the due date.
    #[error("renewing rental {rental} would not move its due date ({due}): the loan's schedule ends there; return the book")]
    DueDateUnchanged {
        /// Rental.
        rental: RentalId,
        /// The due date (YYYY-MM-DD, UTC).
        due: String,
    },
    /// A return dated in the future or before the loan started.
    #[error("invalid input: returned_at {returned_at} is {why}")]
    BadReturnTime {
        /// The instant given (RFC 3339).
        returned_at: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl RentalError {
    /// Stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            RentalError::NotFound(_) => ErrorCode::RentalNotFound,
            RentalError::AlreadyExists(_) => ErrorCode::RentalExists,
            RentalError::NotRentalOwner { .. } => ErrorCode::NotRentalOwner,
            RentalError::Unauthorized { .. } | RentalError::SystemOnly => ErrorCode::Unauthorized,
            RentalError::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            RentalError::AlreadyDelivered(_) => ErrorCode::AlreadyDelivered,
            RentalError::RenewalLimit { .. } => ErrorCode::RenewalLimit,
            RentalError::DueDateUnchanged { .. } => ErrorCode::DueDateUnchanged,
            RentalError::BadReturnTime { .. } => ErrorCode::InvalidInput,
            RentalError::NotHoldOwner { .. } => ErrorCode::NotHoldOwner,
            RentalError::NotAHold(_) => ErrorCode::InvalidTransition,
            RentalError::HasHolds { .. } => ErrorCode::HasHolds,
        }
    }
}

/// A rental. State is the fold of its [`RentalEvent`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rental {
    /// Where it stands.
    pub status: RentalStatus,
    /// Borrower.
    pub member: Option<MemberId>,
    /// Book.
    pub book: Option<BookId>,
    /// Fee charged.
    pub fee: Points,
    /// The gateway's id for the charge.
    pub payment_id: Option<String>,
    /// Delivery address, if any.
    pub delivery_address: Option<String>,
    /// Due date while on loan.
    pub due: Option<Timestamp>,
    /// Renewals so far.
    pub renewals: u32,
    /// When the loan started.
    pub loaned_at: Option<Timestamp>,
    /// The terms it was made under (none: the library's options).
    pub terms: Option<Box<LoanTerms>>,
    /// The due date whose passing was dealt with (an overdue notice, a failed auto-renewal).
    pub due_noted: Option<Timestamp>,
    /// When the item was aged to lost, if it was.
    pub lost_at: Option<Timestamp>,
    /// Whether the fee was refunded.
    pub refunded: bool,
    /// Set when the rental is a hold.
    pub hold: Option<HoldTerms>,
    /// While a hold's copy waits on the pickup shelf: until when.
    pub pickup_until: Option<Timestamp>,
    /// Whether the loan was recalled (it cannot be renewed).
    pub recalled: bool,
}

impl Rental {
    fn transition(&self, rental: &RentalId, action: &'static str) -> RentalError {
        RentalError::InvalidTransition {
            rental: rental.clone(),
            status: self.status,
            action,
        }
    }

    /// When a return counts as made: `returned_at` if given — not in the future, not before
    /// the loan started — else now.
    fn return_time(
        &self,
        returned_at: Option<Timestamp>,
        ctx: &Context,
    ) -> Result<Timestamp, RentalError> {
        let Some(at) = returned_at else {
            return Ok(ctx.now);
        };
        let bad = |why| RentalError::BadReturnTime {
            returned_at: at.to_rfc3339(),
            why,
        };
        if at > ctx.now {
            return Err(bad("in the future; a return can only be dated back"));
        }
        if self.loaned_at.is_some_and(|start| at < start) {
            return Err(bad("before the loan started"));
        }
        Ok(at)
    }

    /// Existence plus: only the rental's member, a librarian or lendkit may act on it.
    fn check_actor(
        &self,
        rental: &RentalId,
        actor: &Actor,
    ) -> Result<(MemberId, BookId), RentalError> {
        let (Some(member), Some(book)) = (self.member.clone(), self.book.clone()) else {
            return Err(RentalError::NotFound(rental.clone()));
        };
        match actor {
            Actor::Member(m) if *m != member => Err(RentalError::NotRentalOwner {
                rental: rental.clone(),
                actor: actor.to_string(),
            }),
            _ => Ok((member, book)),
        }
    }
}

impl Aggregate for Rental {
    type Command = RentalCommand;
    type Event = RentalEvent;
    type Error = RentalError;
    const KIND: StreamKind = StreamKind::Rental;

    fn decide(
        &self,
        command: &RentalCommand,
        ctx: &Context,
    ) -> Result<Vec<RentalEvent>, RentalError> {
        use RentalStatus as S;
        let rental = command.rental().clone();
        match command {
            RentalCommand::ReserveBook {
                member,
                book,
                fee,
                payment_id,
                delivery_address,
                hold,
                ..
            } => {
                if !(ctx.actor.is_librarian() || ctx.actor.is_member(member)) {
                    return Err(RentalError::Unauthorized {
                        actor: ctx.actor.to_string(),
                        member: member.clone(),
                    });
                }
                if self.status != S::New {
                    return Err(RentalError::AlreadyExists(rental));
                }
                Ok(vec![RentalEvent::RentalReserved {
                    rental,
                    member: member.clone(),
                    book: book.clone(),
                    fee: *fee,
                    payment_id: payment_id.clone(),
                    delivery_address: delivery_address.clone(),
                    hold: hold.clone(),
                }])
            }
            RentalCommand::ConfirmRental { pickup_until, .. } => {
                if !ctx.actor.is_system() {
                    return Err(RentalError::SystemOnly);
                }
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                match (self.status, pickup_until) {
                    (S::Reserved, Some(until)) => Ok(vec![RentalEvent::HoldAwaitingPickup {
                        rental,
                        member,
                        book,
                        branch: self.hold.as_ref().and_then(|h| h.pickup_branch.clone()),
                        until: *until,
                    }]),
                    (S::Reserved, None) => Ok(vec![RentalEvent::RentalConfirmed {
                        rental,
                        member,
                        book,
                        delivery_address: self.delivery_address.clone(),
                    }]),
                    (S::Confirmed, _) => Ok(vec![]),
                    // A hold cancelled while its copy was on its way: the copy is released.
                    (S::Canceled, _) if self.hold.is_some() => Ok(vec![]),
                    _ => Err(self.transition(&rental, "be confirmed")),
                }
            }
            RentalCommand::ExpirePickup { until, .. } => {
                if !ctx.actor.is_system() {
                    return Err(RentalError::SystemOnly);
                }
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                if self.status != S::Confirmed || self.pickup_until != Some(*until) {
                    return Ok(vec![]);
                }
                Ok(vec![RentalEvent::HoldPickupExpired {
                    rental,
                    member,
                    book,
                    until: *until,
                }])
            }
            RentalCommand::ExpireHold { at, .. } => {
                if !ctx.actor.is_system() {
                    return Err(RentalError::SystemOnly);
                }
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                let wanted_until = self.hold.as_ref().and_then(|h| h.not_needed_after);
                if self.status != S::Reserved || wanted_until != Some(*at) {
                    return Ok(vec![]);
                }
                Ok(vec![RentalEvent::RentalCanceled {
                    rental,
                    member,
                    book,
                    reason: format!("not needed after {}", at.to_rfc3339()),
                    fee: self.fee,
                }])
            }
            RentalCommand::StartLoan { .. } => {
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                match self.status {
                    S::Confirmed if self.delivery_address.is_some() && !ctx.actor.is_system() => {
                        Err(RentalError::InvalidTransition {
                            rental,
                            status: self.status,
                            action: "be picked up while it is being delivered",
                        })
                    }
                    S::Confirmed => {
                        let RentalCommand::StartLoan { due, terms, .. } = command else {
                            unreachable!("matched above")
                        };
                        Ok(vec![RentalEvent::LoanStarted {
                            rental,
                            member,
                            book,
                            due: due.unwrap_or_else(|| ctx.now.plus_days(ctx.rules.loan_days)),
                            started_at: Some(ctx.now),
                            terms: terms.clone(),
                        }])
                    }
                    S::OnLoan if ctx.actor.is_system() => Ok(vec![]),
                    _ => Err(self.transition(&rental, "start a loan")),
                }
            }
            RentalCommand::ReturnBook { .. } => {
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                let RentalCommand::ReturnBook { returned_at, .. } = command else {
                    unreachable!("matched above")
                };
                match (self.status, self.due) {
                    (S::OnLoan, Some(due)) => {
                        let at = self.return_time(*returned_at, ctx)?;
                        Ok(vec![RentalEvent::BookReturned {
                            rental,
                            member,
                            book,
                            late_days: due.days_until(at),
                            returned_at: *returned_at,
                        }])
                    }
                    _ => Err(self.transition(&rental, "be returned")),
                }
            }
            RentalCommand::CancelRental {
                reason,
                delivered,
                hold,
                ..
            } => {
                if *hold {
                    if self.member.is_some() && self.hold.is_none() {
                        return Err(RentalError::NotAHold(rental));
                    }
                    if let (Actor::Member(m), Some(owner)) = (&ctx.actor, &self.member) {
                        if m != owner {
                            return Err(RentalError::NotHoldOwner {
                                rental,
                                actor: ctx.actor.to_string(),
                            });
                        }
                    }
                }
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                match self.status {
                    S::Reserved | S::Confirmed | S::OnLoan if *delivered => {
                        Err(RentalError::AlreadyDelivered(rental))
                    }
                    S::Reserved | S::Confirmed => Ok(vec![RentalEvent::RentalCanceled {
                        rental,
                        member,
                        book,
                        reason: reason.clone(),
                        fee: self.fee,
                    }]),
                    S::Canceled if ctx.actor.is_system() => Ok(vec![]),
                    _ => Err(self.transition(&rental, "be cancelled")),
                }
            }
            RentalCommand::RenewLoan {
                due: new_due,
                for_due,
                ..
            } => {
                let (member, _) = self.check_actor(&rental, &ctx.actor)?;
                if let Some(d) = for_due {
                    // An automatic renewal for a due date already renewed past or dealt with.
                    if self.status != S::OnLoan
                        || self.due != Some(*d)
                        || self.due_noted == Some(*d)
                        || self.lost_at.is_some()
                    {
                        return Ok(vec![]);
                    }
                }
                if self.status == S::OnLoan && self.recalled {
                    let book = self.book.clone().unwrap_or_else(|| BookId::new(""));
                    return Err(RentalError::HasHolds { rental, book });
                }
                if self.status == S::OnLoan && self.lost_at.is_some() {
                    return Err(RentalError::InvalidTransition {
                        rental,
                        status: self.status,
                        action: "be renewed: it was aged to lost",
                    });
                }
                let max = self
                    .terms
                    .as_ref()
                    .map_or(u64::from(ctx.rules.max_renewals), |t| t.loan.max_renewals);
                match (self.status, self.due) {
                    (S::OnLoan, Some(_)) if u64::from(self.renewals) >= max => {
                        Err(RentalError::RenewalLimit { rental, max })
                    }
                    (S::OnLoan, Some(due)) => {
                        let new_due = new_due.unwrap_or_else(|| due.plus_days(ctx.rules.loan_days));
                        if new_due <= due {
                            return Err(RentalError::DueDateUnchanged {
                                rental,
                                due: due.date(),
                            });
                        }
                        Ok(vec![RentalEvent::LoanRenewed {
                            rental,
                            member,
                            due: new_due,
                            count: self.renewals.saturating_add(1),
                            by: match &ctx.actor {
                                Actor::Member(_) => "member",
                                Actor::Librarian(_) => "librarian",
                                Actor::System => "auto",
                            }
                            .to_owned(),
                        }])
                    }
                    _ => Err(self.transition(&rental, "be renewed")),
                }
            }
            RentalCommand::MarkOverdue { due, .. } => {
                if !ctx.actor.is_system() {
                    return Err(RentalError::SystemOnly);
                }
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                if self.status != S::OnLoan
                    || self.due != Some(*due)
                    || self.due_noted == Some(*due)
                    || self.lost_at.is_some()
                {
                    return Ok(vec![]);
                }
                Ok(vec![RentalEvent::LoanOverdue {
                    rental,
                    member,
                    book,
                    due: *due,
                }])
            }
            RentalCommand::RecordAutoRenewalFailed { due, code, .. } => {
                if !ctx.actor.is_system() {
                    return Err(RentalError::SystemOnly);
                }
                let (member, _) = self.check_actor(&rental, &ctx.actor)?;
                if self.status != S::OnLoan
                    || self.due != Some(*due)
                    || self.due_noted == Some(*due)
                    || self.lost_at.is_some()
                {
                    return Ok(vec![]);
                }
                Ok(vec![RentalEvent::AutoRenewalFailed {
                    rental,
                    member,
                    due: *due,
                    code: code.clone(),
                }])
            }
            RentalCommand::AgeToLost { at, .. } => {
                if !ctx.actor.is_system() {
                    return Err(RentalError::SystemOnly);
                }
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                if self.status != S::OnLoan || self.lost_at.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![RentalEvent::ItemAgedToLost {
                    rental,
                    member,
                    book,
                    at: *at,
                }])
            }
            RentalCommand::RecallLoan { due, .. } => {
                if !ctx.actor.is_system() {
                    return Err(RentalError::SystemOnly);
                }
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                match self.due {
                    Some(was)
                        if self.status == S::OnLoan
                            && !self.recalled
                            && self.lost_at.is_none()
                            && *due < was =>
                    {
                        Ok(vec![RentalEvent::LoanRecalled {
                            rental,
                            member,
                            book,
                            due: *due,
                            was,
                        }])
                    }
                    _ => Ok(vec![]),
                }
            }
            RentalCommand::RecordRefund { .. } => {
                if !ctx.actor.is_system() {
                    return Err(RentalError::SystemOnly);
                }
                let (member, _) = self.check_actor(&rental, &ctx.actor)?;
                match self.status {
                    S::Canceled if self.refunded => Ok(vec![]),
                    S::Canceled => Ok(vec![RentalEvent::PaymentRefunded {
                        rental,
                        member,
                        amount: self.fee,
                    }]),
                    _ => Err(self.transition(&rental, "be refunded")),
                }
            }
        }
    }

    fn apply(&mut self, event: &RentalEvent) {
        match event {
            RentalEvent::RentalReserved {
                member,
                book,
                fee,
                payment_id,
                delivery_address,
                hold,
                ..
            } => {
                self.hold = hold.clone();
                self.payment_id = Some(payment_id.clone());
                self.status = RentalStatus::Reserved;
                self.member = Some(member.clone());
                self.book = Some(book.clone());
                self.fee = *fee;
                self.delivery_address = delivery_address.clone();
            }
            RentalEvent::RentalConfirmed { .. } => self.status = RentalStatus::Confirmed,
            RentalEvent::LoanStarted {
                due,
                terms,
                started_at,
                ..
            } => {
                self.status = RentalStatus::OnLoan;
                self.loaned_at = *started_at;
                self.due = Some(*due);
                self.terms = terms.clone();
            }
            RentalEvent::LoanRenewed { due, .. } => {
                self.due = Some(*due);
                self.renewals += 1;
            }
            RentalEvent::BookReturned { .. } => self.status = RentalStatus::Returned,
            RentalEvent::RentalCanceled { .. } | RentalEvent::HoldPickupExpired { .. } => {
                self.status = RentalStatus::Canceled
            }
            RentalEvent::LoanRecalled { due, .. } => {
                self.due = Some(*due);
                self.recalled = true;
            }
            RentalEvent::HoldAwaitingPickup { until, .. } => {
                self.status = RentalStatus::Confirmed;
                self.pickup_until = Some(*until);
            }
            RentalEvent::PaymentRefunded { .. } => self.refunded = true,
            RentalEvent::LoanOverdue { due, .. } | RentalEvent::AutoRenewalFailed { due, .. } => {
                self.due_noted = Some(*due)
            }
            RentalEvent::ItemAgedToLost { at, .. } => self.lost_at = Some(*at),
        }
    }

    /// Returned, or canceled with its fee refunded: every rental command is then refused or
    /// changes nothing (see `decide`).
    fn is_final(&self) -> bool {
        match self.status {
            RentalStatus::Returned => true,
            RentalStatus::Canceled => self.refunded,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const R: &str = "r1";
    fn r() -> RentalId {
        RentalId::new(R)
    }
    fn reserved(address: Option<&str>) -> RentalEvent {
        RentalEvent::RentalReserved {
            hold: None,
            rental: r(),
            member: MemberId::new("m1"),
            book: BookId::new("b1"),
            fee: Points(30),
            payment_id: "p1".into(),
            delivery_address: address.map(str::to_owned),
        }
    }
    fn confirmed() -> RentalEvent {
        RentalEvent::RentalConfirmed {
            rental: r(),
            member: MemberId::new("m1"),
            book: BookId::new("b1"),
            delivery_address: None,
        }
    }
    fn on_loan() -> RentalEvent {
        RentalEvent::LoanStarted {
            rental: r(),
            member: MemberId::new("m1"),
            book: BookId::new("b1"),
            due: Timestamp(0).plus_days(14),
            started_at: Some(Timestamp(0)),
            terms: None,
        }
    }
    fn start() -> RentalCommand {
        RentalCommand::StartLoan {
            rental: r(),
            due: None,
            terms: None,
        }
    }
    fn ret(returned_at: Option<Timestamp>) -> RentalCommand {
        RentalCommand::ReturnBook {
            rental: r(),
            returned_at,
        }
    }
    fn cancel(delivered: bool) -> RentalCommand {
        RentalCommand::CancelRental {
            hold: false,
            rental: r(),
            reason: "changed my mind".into(),
            delivered,
        }
    }

    #[test]
    fn a_rental_is_final_once_returned_or_refunded_after_a_cancel() {
        let fold = |events: Vec<RentalEvent>| {
            let mut rental = Rental::default();
            events.iter().for_each(|e| rental.apply(e));
            rental
        };
        let returned = RentalEvent::BookReturned {
            rental: r(),
            member: MemberId::new("m1"),
            book: BookId::new("b1"),
            late_days: 0,
            returned_at: None,
        };
        let canceled = RentalEvent::RentalCanceled {
            rental: r(),
            member: MemberId::new("m1"),
            book: BookId::new("b1"),
            reason: "changed my mind".into(),
            fee: Points(30),
        };
        let refunded = RentalEvent::PaymentRefunded {
            rental: r(),
            member: MemberId::new("m1"),
            amount: Points(30),
        };
        assert!(!fold(vec![reserved(None), confirmed(), on_loan()]).is_final());
        assert!(fold(vec![reserved(None), confirmed(), on_loan(), returned]).is_final());
        assert!(!fold(vec![reserved(None), canceled.clone()]).is_final());
        assert!(fold(vec![reserved(None), canceled, refunded]).is_final());
    }

    #[test]
    fn a_member_cannot_cancel_someone_elses_rental() {
        given::<Rental>([reserved(None)])
            .when(cancel(false), member("m2"))
            .then_err(RentalError::NotRentalOwner {
                rental: r(),
                actor: "member:m2".into(),
            });
    }

    #[test]
    fn cancelling_a_reservation_owes_the_fee_back() {
        given::<Rental>([reserved(None), confirmed()])
            .when(cancel(false), member("m1"))
            .then_events([RentalEvent::RentalCanceled {
                rental: r(),
                member: MemberId::new("m1"),
                book: BookId::new("b1"),
                reason: "changed my mind".into(),
                fee: Points(30),
            }]);
    }

    #[test]
    fn a_loan_cannot_be_cancelled() {
        given::<Rental>([reserved(None), confirmed(), on_loan()])
            .when(cancel(false), member("m1"))
            .then_code(ErrorCode::InvalidTransition);
    }

    #[test]
    fn a_delivered_rental_cannot_be_cancelled() {
        given::<Rental>([reserved(Some("Seoul"))])
            .when(cancel(true), member("m1"))
            .then_err(RentalError::AlreadyDelivered(r()));
    }

    #[test]
    fn a_loan_starts_only_once_confirmed() {
        given::<Rental>([reserved(None)])
            .when(start(), member("m1"))
            .then_code(ErrorCode::InvalidTransition);
        given::<Rental>([reserved(None), confirmed()])
            .when(start(), member("m1"))
            .then_events([on_loan()]);
    }

    #[test]
    fn returning_late_counts_the_days() {
        given::<Rental>([reserved(None), confirmed(), on_loan()])
            .at(Timestamp(0).plus_days(16).plus_ms(1))
            .when(ret(None), member("m1"))
            .then_events([RentalEvent::BookReturned {
                rental: r(),
                member: MemberId::new("m1"),
                book: BookId::new("b1"),
                late_days: 3,
                returned_at: None,
            }]);
    }

    #[test]
    fn a_return_dated_back_counts_from_then_but_never_from_the_future() {
        let now = Timestamp(0).plus_days(20);
        given::<Rental>([reserved(None), confirmed(), on_loan()])
            .at(now)
            .when(ret(Some(Timestamp(0).plus_days(14))), librarian())
            .then_events([RentalEvent::BookReturned {
                rental: r(),
                member: MemberId::new("m1"),
                book: BookId::new("b1"),
                late_days: 0,
                returned_at: Some(Timestamp(0).plus_days(14)),
            }]);
        given::<Rental>([reserved(None), confirmed(), on_loan()])
            .at(now)
            .when(ret(Some(now.plus_ms(1))), librarian())
            .then_code(ErrorCode::InvalidInput);
        given::<Rental>([reserved(None), confirmed(), on_loan()])
            .at(now)
            .when(ret(Some(Timestamp(-1))), librarian())
            .then_code(ErrorCode::InvalidInput);
    }

    #[test]
    fn a_renewal_must_move_the_due_date() {
        given::<Rental>([reserved(None), confirmed(), on_loan()])
            .when(
                RentalCommand::RenewLoan {
                    rental: r(),
                    due: Some(Timestamp(0).plus_days(14)),
                    for_due: None,
                },
                member("m1"),
            )
            .then_code(ErrorCode::DueDateUnchanged);
    }

    #[test]
    fn renewals_are_limited() {
        let renewed = |d| RentalEvent::LoanRenewed {
            rental: r(),
            member: MemberId::new("m1"),
            due: Timestamp(0).plus_days(d),
            count: 1,
            by: "member".into(),
        };
        given::<Rental>([
            reserved(None),
            confirmed(),
            on_loan(),
            renewed(28),
            renewed(42),
        ])
        .when(
            RentalCommand::RenewLoan {
                rental: r(),
                due: None,
                for_due: None,
            },
            member("m1"),
        )
        .then_err(RentalError::RenewalLimit {
            rental: r(),
            max: 2,
        });
    }

    #[test]
    fn the_refund_is_recorded_once() {
        let canceled = RentalEvent::RentalCanceled {
            rental: r(),
            member: MemberId::new("m1"),
            book: BookId::new("b1"),
            reason: "x".into(),
            fee: Points(30),
        };
        let refunded = RentalEvent::PaymentRefunded {
            rental: r(),
            member: MemberId::new("m1"),
            amount: Points(30),
        };
        given::<Rental>([reserved(None), canceled.clone()])
            .when(RentalCommand::RecordRefund { rental: r() }, system())
            .then_events([refunded.clone()]);
        given::<Rental>([reserved(None), canceled, refunded])
            .when(RentalCommand::RecordRefund { rental: r() }, system())
            .then_events([]);
    }

    #[test]
    fn unknown_rentals_are_not_found() {
        given::<Rental>([])
            .when(ret(None), member("m1"))
            .then_err(RentalError::NotFound(r()));
    }
}
