//! The Rental aggregate: one member's reservation of one book, from payment to return.
//!
//! A rental moves `Reserved → Confirmed → OnLoan → Returned`, or from `Reserved`/`Confirmed`
//! to `Canceled`; no other move exists. It is created only with a payment already taken
//! (the fee and the gateway's payment id are part of `RentalReserved`). Only its member or a
//! librarian acts on it; confirmation and refunds are lendkit's own. A delivered rental can
//! no longer be cancelled. A canceled rental records its refund once.

use crate::aggregate::{Aggregate, Context};
use crate::codes::ErrorCode;
use crate::ids::{Actor, BookId, MemberId, Points, RentalId, StreamKind, Timestamp};
use serde::{Deserialize, Serialize};

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
    },
    /// A copy is held: confirm (policy).
    ConfirmRental {
        /// Rental.
        rental: RentalId,
    },
    /// The member picks the book up (대여).
    StartLoan {
        /// Rental.
        rental: RentalId,
    },
    /// The member brings it back (반납).
    ReturnBook {
        /// Rental.
        rental: RentalId,
    },
    /// Cancel (예약 취소); the refund, copy release and delivery cancellation follow as events.
    CancelRental {
        /// Rental.
        rental: RentalId,
        /// Why.
        reason: String,
        /// Whether the rental's delivery has already arrived (read from the delivery by the service).
        delivered: bool,
    },
    /// Extend the loan by another loan period.
    RenewLoan {
        /// Rental.
        rental: RentalId,
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
            | RentalCommand::ConfirmRental { rental }
            | RentalCommand::StartLoan { rental }
            | RentalCommand::ReturnBook { rental }
            | RentalCommand::CancelRental { rental, .. }
            | RentalCommand::RenewLoan { rental }
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
        },
        /// The loan was extended.
        LoanRenewed {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// New due date.
            due: Timestamp,
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
        /// The fee went back to the member (결제 취소).
        PaymentRefunded {
            /// Rental.
            rental: RentalId,
            /// Borrower.
            member: MemberId,
            /// Amount refunded.
            amount: Points,
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
        max: u32,
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
    /// Whether the fee was refunded.
    pub refunded: bool,
}

impl Rental {
    fn transition(&self, rental: &RentalId, action: &'static str) -> RentalError {
        RentalError::InvalidTransition {
            rental: rental.clone(),
            status: self.status,
            action,
        }
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
                }])
            }
            RentalCommand::ConfirmRental { .. } => {
                if !ctx.actor.is_system() {
                    return Err(RentalError::SystemOnly);
                }
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                match self.status {
                    S::Reserved => Ok(vec![RentalEvent::RentalConfirmed {
                        rental,
                        member,
                        book,
                        delivery_address: self.delivery_address.clone(),
                    }]),
                    S::Confirmed => Ok(vec![]),
                    _ => Err(self.transition(&rental, "be confirmed")),
                }
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
                    S::Confirmed => Ok(vec![RentalEvent::LoanStarted {
                        rental,
                        member,
                        book,
                        due: ctx.now.plus_days(ctx.rules.loan_days),
                    }]),
                    S::OnLoan if ctx.actor.is_system() => Ok(vec![]),
                    _ => Err(self.transition(&rental, "start a loan")),
                }
            }
            RentalCommand::ReturnBook { .. } => {
                let (member, book) = self.check_actor(&rental, &ctx.actor)?;
                match (self.status, self.due) {
                    (S::OnLoan, Some(due)) => Ok(vec![RentalEvent::BookReturned {
                        rental,
                        member,
                        book,
                        late_days: due.days_until(ctx.now),
                    }]),
                    _ => Err(self.transition(&rental, "be returned")),
                }
            }
            RentalCommand::CancelRental {
                reason, delivered, ..
            } => {
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
            RentalCommand::RenewLoan { .. } => {
                let (member, _) = self.check_actor(&rental, &ctx.actor)?;
                match (self.status, self.due) {
                    (S::OnLoan, Some(_)) if self.renewals >= ctx.rules.max_renewals => {
                        Err(RentalError::RenewalLimit {
                            rental,
                            max: ctx.rules.max_renewals,
                        })
                    }
                    (S::OnLoan, Some(due)) => Ok(vec![RentalEvent::LoanRenewed {
                        rental,
                        member,
                        due: due.plus_days(ctx.rules.loan_days),
                    }]),
                    _ => Err(self.transition(&rental, "be renewed")),
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
                ..
            } => {
                self.payment_id = Some(payment_id.clone());
                self.status = RentalStatus::Reserved;
                self.member = Some(member.clone());
                self.book = Some(book.clone());
                self.fee = *fee;
                self.delivery_address = delivery_address.clone();
            }
            RentalEvent::RentalConfirmed { .. } => self.status = RentalStatus::Confirmed,
            RentalEvent::LoanStarted { due, .. } => {
                self.status = RentalStatus::OnLoan;
                self.due = Some(*due);
            }
            RentalEvent::LoanRenewed { due, .. } => {
                self.due = Some(*due);
                self.renewals += 1;
            }
            RentalEvent::BookReturned { .. } => self.status = RentalStatus::Returned,
            RentalEvent::RentalCanceled { .. } => self.status = RentalStatus::Canceled,
            RentalEvent::PaymentRefunded { .. } => self.refunded = true,
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
        }
    }
    fn cancel(delivered: bool) -> RentalCommand {
        RentalCommand::CancelRental {
            rental: r(),
            reason: "changed my mind".into(),
            delivered,
        }
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
            .when(RentalCommand::StartLoan { rental: r() }, member("m1"))
            .then_code(ErrorCode::InvalidTransition);
        given::<Rental>([reserved(None), confirmed()])
            .when(RentalCommand::StartLoan { rental: r() }, member("m1"))
            .then_events([on_loan()]);
    }

    #[test]
    fn returning_late_counts_the_days() {
        given::<Rental>([reserved(None), confirmed(), on_loan()])
            .at(Timestamp(0).plus_days(16).plus_ms(1))
            .when(RentalCommand::ReturnBook { rental: r() }, member("m1"))
            .then_events([RentalEvent::BookReturned {
                rental: r(),
                member: MemberId::new("m1"),
                book: BookId::new("b1"),
                late_days: 3,
            }]);
    }

    #[test]
    fn renewals_are_limited() {
        let renewed = |d| RentalEvent::LoanRenewed {
            rental: r(),
            member: MemberId::new("m1"),
            due: Timestamp(0).plus_days(d),
        };
        given::<Rental>([
            reserved(None),
            confirmed(),
            on_loan(),
            renewed(28),
            renewed(42),
        ])
        .when(RentalCommand::RenewLoan { rental: r() }, member("m1"))
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
            .when(RentalCommand::ReturnBook { rental: r() }, member("m1"))
            .then_err(RentalError::NotFound(r()));
    }
}
