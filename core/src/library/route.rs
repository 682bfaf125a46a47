//! Routing, in one place: which aggregate(s) and stream(s) a command — a caller's or a
//! policy's — is decided on, and which other stream the decision reads.
//!
//! A [`Plan`] is data the engine runs: its [`Step`]s are decided in order, each on its own
//! stream, and stored in one commit; a step may name a stream it reads (a cancellation reads
//! the delivery, a delivery's arrival reads the rental), whose events fill in the step before
//! it is decided and whose version is checked in the same commit. Only `reserve_book` has
//! more to it — the synchronous payment — and is run by `payment.rs` on the same primitives.

use super::*;

/// One decision on one aggregate.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// On a book.
    Book(crate::catalog::BookCommand),
    /// On a member.
    Member(MemberCommand),
    /// On a member's point account.
    Account(PointsCommand),
    /// On a rental.
    Rental(RentalCommand),
    /// On a rental's delivery.
    Delivery(DeliveryCommand),
    /// On the library's circulation rules.
    Rules(crate::circulation::RulesCommand),
    /// A loan starts, is renewed or ends: the engine expands it, from the rental, the member,
    /// the book and the circulation rules, into a step on the rental and one on the member
    /// (see `loans.rs`).
    Loan(LoanRequest),
}

/// A loan's start, renewal or return, before the engine has looked up its terms.
#[derive(Debug, Clone)]
pub(crate) struct LoanRequest {
    /// The rental.
    pub(super) rental: RentalId,
    /// What happens.
    pub(super) action: LoanAction,
}

/// What happens to a loan.
#[derive(Debug, Clone)]
pub(crate) enum LoanAction {
    /// It starts, at `branch` (else the book's), perhaps despite a block.
    Start {
        branch: Option<String>,
        override_reason: Option<String>,
    },
    /// It is renewed, perhaps despite a block.
    Renew { override_reason: Option<String> },
    /// It ends; the book came back at `returned_at` (else now).
    Return { returned_at: Option<Timestamp> },
    /// Its due date `at` has come (the clock-driven rules): it renews itself if its terms say
    /// so, else it is marked overdue.
    Due { at: Timestamp },
    /// It is overdue long enough to count as lost at `at` (the clock-driven rules).
    Lost { at: Timestamp },
    /// It is overdue at `at`: the fine run up so far is charged (the clock-driven rules, daily).
    Accrue { at: Timestamp },
    /// A hold's copy was put on the pickup shelf: it is confirmed with the deadline the rules
    /// and the pickup branch's calendar give.
    Shelve,
    /// A hold (this request's rental) joined its title's queue: the title's loan due latest is
    /// recalled, if the hold's request policy recalls.
    Recall,
}

impl LoanRequest {
    /// A loan's start at the book's branch (a delivered rental's loan).
    pub(crate) fn start(rental: RentalId) -> LoanRequest {
        LoanRequest {
            rental,
            action: LoanAction::Start {
                branch: None,
                override_reason: None,
            },
        }
    }
}

impl Step {
    /// The stream the step is decided on and written to.
    pub(super) fn stream(&self) -> StreamId {
        match self {
            Step::Book(c) => StreamId::new(StreamKind::Book, c.book().as_str()),
            Step::Member(c) => StreamId::new(StreamKind::Member, c.member().as_str()),
            Step::Account(c) => StreamId::new(StreamKind::Account, c.member().as_str()),
            Step::Rental(c) => StreamId::new(StreamKind::Rental, c.rental().as_str()),
            Step::Loan(l) => StreamId::new(StreamKind::Rental, l.rental.as_str()),
            Step::Delivery(c) => StreamId::new(StreamKind::Delivery, c.rental().as_str()),
            Step::Rules(_) => StreamId::new(StreamKind::Rules, crate::circulation::RULES_STREAM_ID),
        }
    }

    /// The other stream this step's decision reads, if any.
    pub(super) fn reads(&self) -> Option<StreamId> {
        match self {
            Step::Rental(RentalCommand::CancelRental { rental, .. }) => {
                Some(StreamId::new(StreamKind::Delivery, rental.as_str()))
            }
            Step::Delivery(DeliveryCommand::MarkDelivered { rental, .. }) => {
                Some(StreamId::new(StreamKind::Rental, rental.as_str()))
            }
            _ => None,
        }
    }

    /// Fills in what the step learns from the stream it reads.
    pub(super) fn fill(&mut self, read: &[Envelope]) {
        let events = || read.iter().map(|e| &e.event);
        match self {
            Step::Rental(RentalCommand::CancelRental { delivered, .. }) => {
                *delivered = Delivery::fold(events()).status == DeliveryStatus::Delivered;
            }
            Step::Delivery(DeliveryCommand::MarkDelivered {
                rental_canceled, ..
            }) => {
                *rental_canceled = Rental::fold(events()).status == RentalStatus::Canceled;
            }
            _ => {}
        }
    }
}

/// What a command comes to: steps stored in one commit.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Decided in order, each on its own stream, stored together.
    pub(super) steps: Vec<Step>,
}

impl Plan {
    /// A plan of one step.
    pub(super) fn one(step: Step) -> Plan {
        Plan { steps: vec![step] }
    }
}

/// What a caller's command is routed to.
pub(super) enum Route {
    /// Steps the engine runs.
    Plan(Plan),
    /// Input no aggregate needs to see to refuse (`INVALID_INPUT`).
    Invalid(String),
    /// The reservation, with its synchronous payment.
    Reserve {
        book: BookId,
        member: MemberId,
        delivery_address: Option<String>,
        /// Set for a hold (`place_hold`, or `reserve_book` with `wait`).
        hold: Option<crate::holds::HoldTerms>,
    },
}

impl Library {
    /// Routes a caller's command. `rental` is the rental the command is about, when it is one.
    pub(super) fn route(
        &self,
        command: Command,
        actor: &Actor,
        rental: Option<&RentalId>,
    ) -> Route {
        let rental = || rental.cloned().unwrap_or_else(|| RentalId::new(""));
        let step = match command {
            Command::RegisterBook {
                book_id,
                title,
                author,
                copies,
                fee,
                item_type,
                branch,
            } => Step::Book(crate::catalog::BookCommand::RegisterBook {
                book: BookId::from(book_id),
                title,
                author,
                copies,
                fee: Points(fee),
                item_type,
                branch,
            }),
            Command::WithdrawCopy { book_id, copy } => {
                Step::Book(crate::catalog::BookCommand::WithdrawCopy {
                    book: BookId::from(book_id),
                    copy,
                })
            }
            Command::AddCopies { book_id, copies } => {
                Step::Book(crate::catalog::BookCommand::AddCopies {
                    book: BookId::from(book_id),
                    copies,
                })
            }
            Command::JoinMember {
                member_id,
                name,
                contact,
                group,
            } => {
                // Joining opens the point account in the same commit, so a member can pay the
                // moment they exist.
                let member = MemberId::from(member_id);
                return Route::Plan(Plan {
                    steps: vec![
                        Step::Member(MemberCommand::JoinMember {
                            member: member.clone(),
                            name,
                            contact,
                            group,
                        }),
                        Step::Account(PointsCommand::OpenAccount {
                            member,
                            welcome: Points(self.engine.rules.welcome_points),
                        }),
                    ],
                });
            }
            Command::TopUp { member_id, points } => Step::Account(PointsCommand::TopUp {
                member: MemberId::from(member_id),
                points: Points(points),
            }),
            Command::ReserveBook {
                book_id,
                member_id,
                delivery_address,
                wait,
                ..
            } => {
                return Route::Reserve {
                    book: BookId::from(book_id),
                    member: MemberId::from(member_id),
                    delivery_address,
                    hold: (wait == Some(true)).then(crate::holds::HoldTerms::default),
                }
            }
            Command::PlaceHold {
                book_id,
                member_id,
                pickup_branch,
                not_needed_after,
                copy,
                ..
            } => {
                return Route::Reserve {
                    book: BookId::from(book_id),
                    member: MemberId::from(member_id),
                    delivery_address: None,
                    hold: Some(crate::holds::HoldTerms {
                        pickup_branch,
                        not_needed_after: not_needed_after.map(|ms| Timestamp(ms as i64)),
                        copy,
                        collect_fee: None,
                    }),
                }
            }
            Command::CancelHold { reason, .. } => Step::Rental(RentalCommand::CancelRental {
                rental: rental(),
                reason: reason.unwrap_or_else(|| match actor {
                    Actor::Librarian(_) => "canceled by librarian".into(),
                    _ => "canceled by member".into(),
                }),
                delivered: false,
                hold: true,
            }),
            Command::ReorderQueue {
                book_id, position, ..
            } => Step::Book(crate::catalog::BookCommand::ReorderQueue {
                book: BookId::from(book_id),
                rental: rental(),
                position: u64::from(position),
            }),
            Command::CollectHold {
                branch,
                override_reason,
                ..
            } => Step::Loan(LoanRequest {
                rental: rental(),
                action: LoanAction::Start {
                    branch,
                    override_reason,
                },
            }),
            Command::StartLoan {
                branch,
                override_reason,
                ..
            } => Step::Loan(LoanRequest {
                rental: rental(),
                action: LoanAction::Start {
                    branch,
                    override_reason,
                },
            }),
            Command::ReturnBook { returned_at, .. } => Step::Loan(LoanRequest {
                rental: rental(),
                action: LoanAction::Return {
                    returned_at: returned_at.map(|ms| Timestamp(ms as i64)),
                },
            }),
            Command::RenewLoan {
                override_reason, ..
            } => Step::Loan(LoanRequest {
                rental: rental(),
                action: LoanAction::Renew { override_reason },
            }),
            Command::PayFees {
                member_id,
                amount,
                paid_from,
            } => {
                let member = MemberId::from(member_id);
                let from = match paid_from.as_deref() {
                    None | Some("points") => PaidFrom::Points,
                    Some("external") => PaidFrom::External,
                    Some(other) => {
                        return Route::Invalid(format!(
                            "paid_from is {other:?}; use \"points\" or \"external\""
                        ))
                    }
                };
                let mut steps = vec![Step::Member(MemberCommand::PayFees {
                    member: member.clone(),
                    amount,
                    from,
                })];
                if from == PaidFrom::Points {
                    steps.push(Step::Account(PointsCommand::PayFees {
                        member,
                        points: Points(amount),
                    }));
                }
                return Route::Plan(Plan { steps });
            }
            Command::WaiveFee {
                member_id,
                fee_id,
                reason,
            } => Step::Member(MemberCommand::WaiveFee {
                member: MemberId::from(member_id),
                fee: fee_id,
                reason,
            }),
            Command::BlockMember { member_id, reason } => {
                Step::Member(MemberCommand::BlockMember {
                    member: MemberId::from(member_id),
                    reason,
                })
            }
            Command::UnblockMember { member_id } => Step::Member(MemberCommand::UnblockMember {
                member: MemberId::from(member_id),
            }),
            Command::CancelRental { reason, .. } => Step::Rental(RentalCommand::CancelRental {
                rental: rental(),
                reason: reason.unwrap_or_else(|| match actor {
                    Actor::Librarian(_) => "canceled by librarian".into(),
                    _ => "canceled by member".into(),
                }),
                delivered: false,
                hold: false,
            }),
            Command::MarkDelivered { .. } => Step::Delivery(DeliveryCommand::MarkDelivered {
                rental: rental(),
                rental_canceled: false,
            }),
            Command::ChangeCirculationRules { rules, format } => {
                Step::Rules(crate::circulation::RulesCommand::ChangeRules { rules, format })
            }
        };
        Route::Plan(Plan::one(step))
    }
}
