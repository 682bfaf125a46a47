//! The Member aggregate: someone who may borrow, and their circulation record.
//!
//! Invariants: a member id joins once; the name is not empty. A librarian registers members,
//! or a person registers themselves (acting as the member id they join with).
//!
//! The member's stream is also where borrowing is decided for the member as a whole (the
//! per-member lock real libraries add after two desks lent past a limit at once): it records
//! each open loan and its due date (`LoanRecorded`, `LoanCleared`), the fee ledger
//! (`FeeCharged`, `FeePaid`, `FeeWaived`) and manual blocks. Borrowing, renewing and reserving
//! check the member's **blocks** against their group's limits policy here, in one place:
//! a manual block (`MEMBER_BLOCKED`), an expired card (`CARD_EXPIRED`), fees owed at or over
//! the limit (`FEES_OWED`), too many overdue or open loans, or too many under one loan policy
//! (`LIMIT_REACHED`). A librarian may override a block with a reason, which is recorded
//! (`BlockOverridden`). Returns are never blocked.

use crate::aggregate::{Aggregate, Context};
use crate::circulation::LimitsPolicy;
use crate::codes::ErrorCode;
use crate::ids::{Actor, MemberId, RentalId, StreamKind, Timestamp, DAY_MS, MAX_AMOUNT};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What is being done when blocks are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Borrowing {
    /// A loan starts.
    Borrow,
    /// A loan is renewed.
    Renew,
    /// A book is reserved.
    Reserve,
}

impl Borrowing {
    fn verb(self) -> &'static str {
        match self {
            Borrowing::Borrow => "borrow",
            Borrowing::Renew => "renew",
            Borrowing::Reserve => "reserve",
        }
    }
}

/// How a fee was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidFrom {
    /// From the member's point account, in the same commit.
    Points,
    /// At the desk, outside lendkit (cash, card): recorded by a librarian.
    External,
}

/// What a fee is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeKind {
    /// A late return.
    Overdue,
    /// An item that did not come back.
    Lost,
    /// The processing of a lost item.
    Processing,
}

impl FeeKind {
    /// Its name in fee ids and events (`overdue`).
    pub fn as_str(self) -> &'static str {
        match self {
            FeeKind::Overdue => "overdue",
            FeeKind::Lost => "lost",
            FeeKind::Processing => "processing",
        }
    }
}

/// The context a borrowing decision needs from the rules: the limits of the member's group
/// (resolved for this loan's item type and branch) and, for a new loan, its loan policy's
/// name and item limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoanLimits {
    /// The limits policy that applies; `None`: no limits (no rules stored).
    pub limits: Option<LimitsPolicy>,
    /// The loan policy's name and its `item_limit`, when it has one.
    pub item_limit: Option<(String, u64)>,
}

/// Commands on a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberCommand {
    /// Register a member. Their point account opens with the welcome points in the same step.
    JoinMember {
        /// The new member's id.
        member: MemberId,
        /// Their name.
        name: String,
        /// How to reach them (phone or e-mail), for notices.
        contact: Option<String>,
        /// Their group for the circulation rules (`adult`, `student`, `staff`); none matches
        /// only the rules' `*`. Only a librarian assigns one.
        group: Option<String>,
    },
    /// A loan starts: checked against the member's blocks, then recorded (filled in by the
    /// library from the rental and the rules).
    CheckOut {
        /// Borrower.
        member: MemberId,
        /// The rental.
        rental: RentalId,
        /// Its due date.
        due: Timestamp,
        /// The limits and item limit that apply.
        limits: LoanLimits,
        /// A librarian's reason to lend despite a block.
        override_reason: Option<String>,
        /// Whether the loan goes on the member's record: loans made under stored circulation
        /// rules do; loans made before any rules were stored (the library's `loan_days`) do not,
        /// so a library without rules stores exactly what it did before rules existed.
        record: bool,
    },
    /// A loan is renewed to `due`: checked against the member's blocks; the fine run up so far,
    /// if any, is charged.
    Renew {
        /// Borrower.
        member: MemberId,
        /// The rental.
        rental: RentalId,
        /// The new due date.
        due: Timestamp,
        /// The limits that apply.
        limits: LoanLimits,
        /// The fine the loan has run up so far that the renewal charges (0: none).
        fine: u64,
        /// The fine policy forgives on renewal: what was charged for this due date is waived.
        forgive: bool,
        /// A librarian's reason to renew despite a block.
        override_reason: Option<String>,
    },
    /// A loan was recalled to `due` (a hold waits for its title): the record moves with it.
    Recall {
        /// Borrower.
        member: MemberId,
        /// The rental.
        rental: RentalId,
        /// The new due date.
        due: Timestamp,
    },
    /// The fine an overdue loan has run up by now is charged (the clock-driven rules, daily):
    /// what it comes to less what was already charged for this due date.
    ChargeFine {
        /// Borrower.
        member: MemberId,
        /// The rental.
        rental: RentalId,
        /// The fine for the current due date, as of now.
        fine: u64,
    },
    /// A loan ended (returned): it leaves the record, and a fine is charged if one is due.
    CheckIn {
        /// Borrower.
        member: MemberId,
        /// The rental.
        rental: RentalId,
        /// The overdue fine (0: none).
        fine: u64,
        /// The item was aged to lost and came back within the refund window: its bill is refunded.
        refund_lost: bool,
    },
    /// The loan's item was aged to lost: the overdue fine so far, the replacement cost and the
    /// processing fee are billed, and the loan leaves the record.
    AgeToLost {
        /// Borrower.
        member: MemberId,
        /// The rental.
        rental: RentalId,
        /// The overdue fine up to now.
        fine: u64,
        /// The replacement cost.
        replacement: u64,
        /// The processing fee.
        processing: u64,
    },
    /// Pay fees, oldest first, up to `amount` points.
    PayFees {
        /// Who owes.
        member: MemberId,
        /// How much to pay, at most what is owed.
        amount: u64,
        /// From the point account (the member or a librarian) or at the desk (a librarian).
        from: PaidFrom,
    },
    /// Waive (part of) a fee (librarian).
    WaiveFee {
        /// Who owes.
        member: MemberId,
        /// The fee.
        fee: String,
        /// Why.
        reason: String,
    },
    /// Block the member from borrowing, renewing and reserving (librarian).
    BlockMember {
        /// Who.
        member: MemberId,
        /// Why.
        reason: String,
    },
    /// Lift a manual block (librarian).
    UnblockMember {
        /// Who.
        member: MemberId,
    },
}

impl MemberCommand {
    /// The member the command is about.
    pub fn member(&self) -> &MemberId {
        match self {
            MemberCommand::JoinMember { member, .. }
            | MemberCommand::CheckOut { member, .. }
            | MemberCommand::Renew { member, .. }
            | MemberCommand::Recall { member, .. }
            | MemberCommand::CheckIn { member, .. }
            | MemberCommand::ChargeFine { member, .. }
            | MemberCommand::AgeToLost { member, .. }
            | MemberCommand::PayFees { member, .. }
            | MemberCommand::WaiveFee { member, .. }
            | MemberCommand::BlockMember { member, .. }
            | MemberCommand::UnblockMember { member } => member,
        }
    }
}

crate::event::event_enum! {
    /// Events of a member.
    pub enum MemberEvent {
        /// A member was registered.
        MemberJoined {
            /// Member id.
            member: MemberId,
            /// Name.
            name: String,
            /// Contact for notices.
            #[serde(default)]
            contact: Option<String>,
            /// Group for the circulation rules, if one was assigned.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            group: Option<String>,
            /// When they joined (a card's expiry counts from it; absent in logs written before
            /// lendkit recorded it: such a card never expires).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            joined_at: Option<Timestamp>,
        },
        /// A loan is on the member's record until `due` (on checkout and on every renewal).
        LoanRecorded {
            /// Borrower.
            member: MemberId,
            /// The rental.
            rental: RentalId,
            /// Its due date.
            due: Timestamp,
            /// The loan policy it is under (for per-policy item limits).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            loan_policy: Option<String>,
        },
        /// A loan left the member's record (returned).
        LoanCleared {
            /// Borrower.
            member: MemberId,
            /// The rental.
            rental: RentalId,
        },
        /// A fee was charged to the member's fee ledger (apart from their points).
        FeeCharged {
            /// Who owes.
            member: MemberId,
            /// The fee's id: `RENTAL:KIND` (`r-1:overdue`).
            fee: String,
            /// What for.
            kind: FeeKind,
            /// The loan it is for.
            rental: RentalId,
            /// Points owed.
            amount: u64,
        },
        /// (Part of) a fee was paid.
        FeePaid {
            /// Who paid.
            member: MemberId,
            /// The fee.
            fee: String,
            /// Points paid.
            amount: u64,
            /// From the point account or at the desk.
            from: PaidFrom,
        },
        /// A lost item came back within the refund window: its fee is void; what was still owed
        /// is dropped and what was paid is given back (to the point account, as far as it was
        /// paid from there; the rest at the desk).
        FeeRefunded {
            /// Who is refunded.
            member: MemberId,
            /// The fee.
            fee: String,
            /// Points still owed, dropped.
            canceled: u64,
            /// Points paid, given back.
            repaid: u64,
            /// Of those, points returned to the point account.
            to_points: u64,
        },
        /// (The rest of) a fee was waived by a librarian.
        FeeWaived {
            /// Who owed.
            member: MemberId,
            /// The fee.
            fee: String,
            /// Points waived.
            amount: u64,
            /// The librarian.
            by: String,
            /// Why.
            reason: String,
        },
        /// A librarian blocked the member.
        MemberBlocked {
            /// Who.
            member: MemberId,
            /// Why.
            reason: String,
        },
        /// A librarian lifted the manual block.
        MemberUnblocked {
            /// Who.
            member: MemberId,
        },
        /// A librarian lent, renewed or reserved despite a block.
        BlockOverridden {
            /// Who was blocked.
            member: MemberId,
            /// The block's code (`LIMIT_REACHED`, `FEES_OWED`, …).
            code: String,
            /// The librarian.
            by: String,
            /// Their reason.
            reason: String,
            /// The rental it was for.
            rental: RentalId,
        },
    }
}

impl MemberEvent {
    /// The member the event is about.
    pub fn member(&self) -> &MemberId {
        match self {
            MemberEvent::MemberJoined { member, .. }
            | MemberEvent::LoanRecorded { member, .. }
            | MemberEvent::LoanCleared { member, .. }
            | MemberEvent::FeeCharged { member, .. }
            | MemberEvent::FeePaid { member, .. }
            | MemberEvent::FeeWaived { member, .. }
            | MemberEvent::FeeRefunded { member, .. }
            | MemberEvent::MemberBlocked { member, .. }
            | MemberEvent::MemberUnblocked { member }
            | MemberEvent::BlockOverridden { member, .. } => member,
        }
    }
}

/// Why a member command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemberError {
    /// Someone other than a librarian or the person themselves tried to register a member.
    #[error("only a librarian, or the person themselves, may register member {0}")]
    Unauthorized(MemberId),
    /// The id is taken.
    #[error("member {0} has already joined")]
    AlreadyJoined(MemberId),
    /// The name is empty.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Someone other than a librarian tried to put a member in a group.
    #[error(
        "only a librarian may put member {0} in a group (groups decide the circulation rules)"
    )]
    GroupLibrarianOnly(MemberId),
    /// No such member.
    #[error("member {0} not found")]
    NotFound(MemberId),
    /// Only a librarian may do this (block, waive, take external payments, override).
    #[error("only a librarian may {0}")]
    LibrarianOnly(&'static str),
    /// A limit of the member's group is reached.
    #[error("member {member} cannot {action}: {why}")]
    LimitReached {
        /// Who.
        member: MemberId,
        /// What was refused.
        action: &'static str,
        /// Which limit.
        why: String,
    },
    /// The member owes fees at or over their group's limit.
    #[error("member {member} cannot {action}: they owe {owed} points in fees and the limit is {limit}; pay at least {} first", owed + 1 - limit)]
    FeesOwed {
        /// Who.
        member: MemberId,
        /// What was refused.
        action: &'static str,
        /// Owed.
        owed: u64,
        /// The limit.
        limit: u64,
    },
    /// The member's card has expired.
    #[error("member {member} cannot {action}: their card expired on {expired}; renew the membership (returns are still accepted)")]
    CardExpired {
        /// Who.
        member: MemberId,
        /// What was refused.
        action: &'static str,
        /// When (YYYY-MM-DD, UTC).
        expired: String,
    },
    /// A librarian blocked the member.
    #[error("member {member} cannot {action}: blocked by a librarian ({reason})")]
    Blocked {
        /// Who.
        member: MemberId,
        /// What was refused.
        action: &'static str,
        /// The block's reason.
        reason: String,
    },
    /// No such fee, or nothing left to pay or waive.
    #[error("member {member} has no open fee {fee}")]
    FeeNotFound {
        /// Who.
        member: MemberId,
        /// The fee id asked for.
        fee: String,
    },
}

impl MemberError {
    /// Stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            MemberError::Unauthorized(_)
            | MemberError::GroupLibrarianOnly(_)
            | MemberError::LibrarianOnly(_) => ErrorCode::Unauthorized,
            MemberError::AlreadyJoined(_) => ErrorCode::MemberExists,
            MemberError::InvalidInput(_) => ErrorCode::InvalidInput,
            MemberError::NotFound(_) => ErrorCode::MemberNotFound,
            MemberError::LimitReached { .. } => ErrorCode::LimitReached,
            MemberError::FeesOwed { .. } => ErrorCode::FeesOwed,
            MemberError::CardExpired { .. } => ErrorCode::CardExpired,
            MemberError::Blocked { .. } => ErrorCode::MemberBlocked,
            MemberError::FeeNotFound { .. } => ErrorCode::FeeNotFound,
        }
    }
}

/// A loan on the member's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLoan {
    /// When it is due.
    pub due: Timestamp,
    /// The loan policy it is under.
    pub loan_policy: Option<String>,
    /// The overdue fine charged for lateness past the current due date (a renewal starts anew).
    pub fined: u64,
}

/// One fee on the member's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fee {
    /// What for.
    pub kind: FeeKind,
    /// The loan.
    pub rental: RentalId,
    /// Charged.
    pub amount: u64,
    /// Paid so far.
    pub paid: u64,
    /// Waived so far.
    pub waived: u64,
    /// Of what was paid, paid from the point account.
    pub paid_points: u64,
    /// Refunded (a lost item came back): nothing is owed any more.
    pub refunded: bool,
}

impl Fee {
    /// What is still owed.
    pub fn owed(&self) -> u64 {
        if self.refunded {
            return 0;
        }
        self.amount
            .saturating_sub(self.paid.saturating_add(self.waived))
    }
}

/// A member. State is the fold of its [`MemberEvent`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    /// Id, once joined.
    pub id: Option<MemberId>,
    /// Name.
    pub name: String,
    /// Contact.
    pub contact: Option<String>,
    /// Group for the circulation rules.
    pub group: Option<String>,
    /// When they joined, if recorded.
    pub joined_at: Option<Timestamp>,
    /// Open loans by rental.
    pub loans: BTreeMap<RentalId, OpenLoan>,
    /// The fee ledger, by fee id, in the order charged.
    pub fees: BTreeMap<String, Fee>,
    /// Fee ids in the order they were charged (payments go oldest first).
    pub fee_order: Vec<String>,
    /// A manual block's reason.
    pub blocked: Option<String>,
}

impl Member {
    /// Points owed in fees.
    pub fn fees_owed(&self) -> u64 {
        self.fees
            .values()
            .fold(0u64, |sum, f| sum.saturating_add(f.owed()))
    }

    /// Loans past their due date at `now`.
    pub fn overdue(&self, now: Timestamp) -> usize {
        self.loans.values().filter(|l| l.due < now).count()
    }

    /// When the card expires under `limits`, if it does.
    pub fn card_expires(&self, limits: &LimitsPolicy) -> Option<Timestamp> {
        let days = limits.card_expiry_days?;
        let joined = self.joined_at?;
        let ms = i64::try_from(days).ok()?.checked_mul(DAY_MS)?;
        Some(joined.plus_ms(ms))
    }

    fn joined(&self, member: &MemberId) -> Result<(), MemberError> {
        match self.id {
            Some(_) => Ok(()),
            None => Err(MemberError::NotFound(member.clone())),
        }
    }

    /// The first block that stops `action` now, if any: a manual block, an expired card, fees
    /// owed, too many overdue loans, too many loans (a new loan counts: `adding`), too many under
    /// the loan's policy.
    pub fn block(
        &self,
        member: &MemberId,
        action: Borrowing,
        limits: &LoanLimits,
        now: Timestamp,
        adding: Option<&RentalId>,
    ) -> Option<MemberError> {
        let verb = action.verb();
        if let Some(reason) = &self.blocked {
            return Some(MemberError::Blocked {
                member: member.clone(),
                action: verb,
                reason: reason.clone(),
            });
        }
        let Some(l) = &limits.limits else {
            return None;
        };
        if let Some(expires) = self.card_expires(l) {
            if now >= expires {
                return Some(MemberError::CardExpired {
                    member: member.clone(),
                    action: verb,
                    expired: expires.date(),
                });
            }
        }
        let owed = self.fees_owed();
        if let Some(limit) = l.max_fees_owed {
            if owed >= limit && owed > 0 {
                return Some(MemberError::FeesOwed {
                    member: member.clone(),
                    action: verb,
                    owed,
                    limit,
                });
            }
        }
        let overdue = self.overdue(now) as u64;
        if let Some(max) = l.max_overdue {
            if overdue > max {
                return Some(MemberError::LimitReached {
                    member: member.clone(),
                    action: verb,
                    why: format!(
                        "{overdue} loans are overdue and the limit is {max}; return them first"
                    ),
                });
            }
        }
        let new = adding.is_some_and(|r| !self.loans.contains_key(r));
        if let (Some(max), true) = (l.max_loans, new) {
            let open = self.loans.len() as u64;
            if open >= max {
                return Some(MemberError::LimitReached {
                    member: member.clone(),
                    action: verb,
                    why: format!("they have {open} loans and the limit is {max}"),
                });
            }
        }
        if let (Some((policy, max)), true) = (&limits.item_limit, new) {
            let under = self
                .loans
                .values()
                .filter(|o| o.loan_policy.as_deref() == Some(policy))
                .count() as u64;
            if under >= *max {
                return Some(MemberError::LimitReached {
                    member: member.clone(),
                    action: verb,
                    why: format!(
                        "they have {under} loans under loan policy {policy:?}, whose item limit is {max}"
                    ),
                });
            }
        }
        None
    }

    /// `Ok` with the override event when a librarian overrides a block, `Err` when blocked.
    fn check_blocks(
        &self,
        member: &MemberId,
        rental: &RentalId,
        action: Borrowing,
        limits: &LoanLimits,
        ctx: &Context,
        override_reason: Option<&String>,
    ) -> Result<Option<MemberEvent>, MemberError> {
        if override_reason.is_some() && !ctx.actor.is_librarian() {
            return Err(MemberError::LibrarianOnly("override a block"));
        }
        let adding = (action == Borrowing::Borrow).then_some(rental);
        let Some(block) = self.block(member, action, limits, ctx.now, adding) else {
            return Ok(None);
        };
        match (override_reason, &ctx.actor) {
            (Some(reason), Actor::Librarian(by)) => Ok(Some(MemberEvent::BlockOverridden {
                member: member.clone(),
                code: block.code().as_str().to_owned(),
                by: by.clone(),
                reason: reason.clone(),
                rental: rental.clone(),
            })),
            _ => Err(block),
        }
    }

    /// Folds a charge into the ledger: a fee id charged again grows.
    fn charge(&mut self, fee: &str, kind: FeeKind, rental: &RentalId, amount: u64) {
        match self.fees.get_mut(fee) {
            Some(f) => f.amount = f.amount.saturating_add(amount),
            None => {
                self.fee_order.push(fee.to_owned());
                self.fees.insert(
                    fee.to_owned(),
                    Fee {
                        kind,
                        rental: rental.clone(),
                        amount,
                        paid: 0,
                        waived: 0,
                        paid_points: 0,
                        refunded: false,
                    },
                );
            }
        }
    }

    /// The overdue fine to charge when the loan's fine for its current due date comes to `fine`:
    /// what was not charged yet (a loan not on the record has had nothing charged).
    fn more_fine(&self, member: &MemberId, rental: &RentalId, fine: u64) -> Option<MemberEvent> {
        let fined = self.loans.get(rental).map_or(0, |l| l.fined);
        let more = fine.saturating_sub(fined);
        (more > 0).then(|| Self::fee_charged(member, rental, FeeKind::Overdue, more))
    }

    /// A renewal under a policy that forgives: what is still owed of the fine charged for the
    /// current due date is waived by lendkit.
    fn forgive(&self, member: &MemberId, rental: &RentalId) -> Option<MemberEvent> {
        let fined = self.loans.get(rental).map_or(0, |l| l.fined);
        let fee = format!("{rental}:{}", FeeKind::Overdue.as_str());
        let owed = self.fees.get(&fee).map_or(0, Fee::owed).min(fined);
        (owed > 0).then(|| MemberEvent::FeeWaived {
            member: member.clone(),
            fee,
            amount: owed,
            by: "lendkit".into(),
            reason: "forgiven on renewal (the fine policy's forgive_on_renewal)".into(),
        })
    }

    /// The refunds of a lost item's bill (replacement cost and processing fee), each once.
    fn refunds(&self, member: &MemberId, rental: &RentalId) -> Vec<MemberEvent> {
        [FeeKind::Lost, FeeKind::Processing]
            .into_iter()
            .filter_map(|kind| {
                let id = format!("{rental}:{}", kind.as_str());
                let fee = self.fees.get(&id).filter(|f| !f.refunded)?;
                let (canceled, repaid) = (fee.owed(), fee.paid);
                (canceled + repaid > 0).then(|| MemberEvent::FeeRefunded {
                    member: member.clone(),
                    fee: id,
                    canceled,
                    repaid,
                    to_points: fee.paid_points.min(repaid),
                })
            })
            .collect()
    }

    /// The points a refund of `rental`'s lost-item bill would return to the point account.
    pub fn lost_refund_points(&self, rental: &RentalId) -> u64 {
        [FeeKind::Lost, FeeKind::Processing]
            .into_iter()
            .filter_map(|kind| self.fees.get(&format!("{rental}:{}", kind.as_str())))
            .filter(|f| !f.refunded)
            .map(|f| f.paid_points.min(f.paid))
            .sum()
    }

    fn fee_charged(
        member: &MemberId,
        rental: &RentalId,
        kind: FeeKind,
        amount: u64,
    ) -> MemberEvent {
        MemberEvent::FeeCharged {
            member: member.clone(),
            fee: format!("{rental}:{}", kind.as_str()),
            kind,
            rental: rental.clone(),
            amount: amount.min(MAX_AMOUNT),
        }
    }
}

impl Aggregate for Member {
    type Command = MemberCommand;
    type Event = MemberEvent;
    type Error = MemberError;
    const KIND: StreamKind = StreamKind::Member;

    fn decide(
        &self,
        command: &MemberCommand,
        ctx: &Context,
    ) -> Result<Vec<MemberEvent>, MemberError> {
        match command {
            MemberCommand::JoinMember {
                member,
                name,
                contact,
                group,
            } => {
                if !(ctx.actor.is_librarian() || ctx.actor.is_member(member)) {
                    return Err(MemberError::Unauthorized(member.clone()));
                }
                if group.is_some() && !ctx.actor.is_librarian() {
                    return Err(MemberError::GroupLibrarianOnly(member.clone()));
                }
                if self.id.is_some() {
                    return Err(MemberError::AlreadyJoined(member.clone()));
                }
                if name.trim().is_empty() {
                    return Err(MemberError::InvalidInput("name must not be empty".into()));
                }
                Ok(vec![MemberEvent::MemberJoined {
                    member: member.clone(),
                    name: name.trim().to_owned(),
                    contact: contact.clone(),
                    group: group.clone(),
                    joined_at: Some(ctx.now),
                }])
            }
            MemberCommand::CheckOut {
                member,
                rental,
                due,
                limits,
                override_reason,
                record,
            } => {
                self.joined(member)?;
                if self.loans.contains_key(rental) {
                    return Ok(vec![]);
                }
                let mut events = Vec::new();
                events.extend(self.check_blocks(
                    member,
                    rental,
                    Borrowing::Borrow,
                    limits,
                    ctx,
                    override_reason.as_ref(),
                )?);
                if *record {
                    events.push(MemberEvent::LoanRecorded {
                        member: member.clone(),
                        rental: rental.clone(),
                        due: *due,
                        loan_policy: limits.item_limit.as_ref().map(|(p, _)| p.clone()),
                    });
                }
                Ok(events)
            }
            MemberCommand::Renew {
                member,
                rental,
                due,
                limits,
                fine,
                forgive,
                override_reason,
            } => {
                self.joined(member)?;
                let mut events = Vec::new();
                events.extend(self.check_blocks(
                    member,
                    rental,
                    Borrowing::Renew,
                    limits,
                    ctx,
                    override_reason.as_ref(),
                )?);
                if *forgive {
                    events.extend(self.forgive(member, rental));
                } else {
                    events.extend(self.more_fine(member, rental, *fine));
                }
                // Only a loan on the record moves there (one made before any rules were stored
                // is not on it).
                if let Some(open) = self.loans.get(rental) {
                    events.push(MemberEvent::LoanRecorded {
                        member: member.clone(),
                        rental: rental.clone(),
                        due: *due,
                        loan_policy: open.loan_policy.clone(),
                    });
                }
                Ok(events)
            }
            MemberCommand::Recall {
                member,
                rental,
                due,
            } => {
                if !ctx.actor.is_system() {
                    return Err(MemberError::LibrarianOnly("recall a loan (lendkit does)"));
                }
                self.joined(member)?;
                Ok(match self.loans.get(rental) {
                    Some(open) if open.due != *due => vec![MemberEvent::LoanRecorded {
                        member: member.clone(),
                        rental: rental.clone(),
                        due: *due,
                        loan_policy: open.loan_policy.clone(),
                    }],
                    _ => vec![],
                })
            }
            MemberCommand::CheckIn {
                member,
                rental,
                fine,
                refund_lost,
            } => {
                self.joined(member)?;
                let mut events = Vec::new();
                if *refund_lost {
                    events.extend(self.refunds(member, rental));
                }
                events.extend(self.more_fine(member, rental, *fine));
                if self.loans.contains_key(rental) {
                    events.push(MemberEvent::LoanCleared {
                        member: member.clone(),
                        rental: rental.clone(),
                    });
                }
                Ok(events)
            }
            MemberCommand::ChargeFine {
                member,
                rental,
                fine,
            } => {
                self.joined(member)?;
                if !self.loans.contains_key(rental) {
                    return Ok(vec![]);
                }
                Ok(self.more_fine(member, rental, *fine).into_iter().collect())
            }
            MemberCommand::AgeToLost {
                member,
                rental,
                fine,
                replacement,
                processing,
            } => {
                self.joined(member)?;
                let lost = format!("{rental}:{}", FeeKind::Lost.as_str());
                if self.fees.contains_key(&lost) {
                    return Ok(vec![]);
                }
                let mut events: Vec<MemberEvent> =
                    self.more_fine(member, rental, *fine).into_iter().collect();
                // The replacement cost is charged even when 0, so a second aging finds it.
                events.push(Self::fee_charged(
                    member,
                    rental,
                    FeeKind::Lost,
                    *replacement,
                ));
                if *processing > 0 {
                    events.push(Self::fee_charged(
                        member,
                        rental,
                        FeeKind::Processing,
                        *processing,
                    ));
                }
                if self.loans.contains_key(rental) {
                    events.push(MemberEvent::LoanCleared {
                        member: member.clone(),
                        rental: rental.clone(),
                    });
                }
                Ok(events)
            }
            MemberCommand::PayFees {
                member,
                amount,
                from,
            } => {
                let allowed = match from {
                    PaidFrom::External => ctx.actor.is_librarian(),
                    PaidFrom::Points => ctx.actor.is_librarian() || ctx.actor.is_member(member),
                };
                if !allowed {
                    return Err(match from {
                        PaidFrom::External => {
                            MemberError::LibrarianOnly("record a payment made at the desk")
                        }
                        PaidFrom::Points => MemberError::Unauthorized(member.clone()),
                    });
                }
                self.joined(member)?;
                let owed = self.fees_owed();
                if *amount == 0 || *amount > owed {
                    return Err(MemberError::InvalidInput(format!(
                        "amount is {amount}; member {member} owes {owed} points in fees, so pay between 1 and {owed}"
                    )));
                }
                let mut left = *amount;
                let mut events = Vec::new();
                for id in &self.fee_order {
                    let Some(fee) = self.fees.get(id) else {
                        continue;
                    };
                    let pay = fee.owed().min(left);
                    if pay == 0 {
                        continue;
                    }
                    left -= pay;
                    events.push(MemberEvent::FeePaid {
                        member: member.clone(),
                        fee: id.clone(),
                        amount: pay,
                        from: *from,
                    });
                    if left == 0 {
                        break;
                    }
                }
                Ok(events)
            }
            MemberCommand::WaiveFee {
                member,
                fee,
                reason,
            } => {
                let Actor::Librarian(by) = &ctx.actor else {
                    return Err(MemberError::LibrarianOnly("waive a fee"));
                };
                self.joined(member)?;
                let owed = self.fees.get(fee).map_or(0, Fee::owed);
                if owed == 0 {
                    return Err(MemberError::FeeNotFound {
                        member: member.clone(),
                        fee: fee.clone(),
                    });
                }
                Ok(vec![MemberEvent::FeeWaived {
                    member: member.clone(),
                    fee: fee.clone(),
                    amount: owed,
                    by: by.clone(),
                    reason: reason.clone(),
                }])
            }
            MemberCommand::BlockMember { member, reason } => {
                if !ctx.actor.is_librarian() {
                    return Err(MemberError::LibrarianOnly("block a member"));
                }
                self.joined(member)?;
                if self.blocked.as_ref() == Some(reason) {
                    return Ok(vec![]);
                }
                Ok(vec![MemberEvent::MemberBlocked {
                    member: member.clone(),
                    reason: reason.clone(),
                }])
            }
            MemberCommand::UnblockMember { member } => {
                if !ctx.actor.is_librarian() {
                    return Err(MemberError::LibrarianOnly("unblock a member"));
                }
                self.joined(member)?;
                if self.blocked.is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![MemberEvent::MemberUnblocked {
                    member: member.clone(),
                }])
            }
        }
    }

    fn apply(&mut self, event: &MemberEvent) {
        match event {
            MemberEvent::MemberJoined {
                member,
                name,
                contact,
                group,
                joined_at,
            } => {
                self.id = Some(member.clone());
                self.name = name.clone();
                self.contact = contact.clone();
                self.group = group.clone();
                self.joined_at = *joined_at;
            }
            MemberEvent::LoanRecorded {
                rental,
                due,
                loan_policy,
                ..
            } => {
                // A new due date (a renewal) starts a new period of lateness.
                self.loans.insert(
                    rental.clone(),
                    OpenLoan {
                        due: *due,
                        loan_policy: loan_policy.clone(),
                        fined: 0,
                    },
                );
            }
            MemberEvent::LoanCleared { rental, .. } => {
                self.loans.remove(rental);
            }
            MemberEvent::FeeCharged {
                fee,
                kind,
                rental,
                amount,
                ..
            } => {
                if *kind == FeeKind::Overdue {
                    if let Some(open) = self.loans.get_mut(rental) {
                        open.fined = open.fined.saturating_add(*amount);
                    }
                }
                self.charge(fee, *kind, rental, *amount);
            }
            MemberEvent::FeePaid {
                fee, amount, from, ..
            } => {
                if let Some(f) = self.fees.get_mut(fee) {
                    f.paid = f.paid.saturating_add(*amount);
                    if *from == PaidFrom::Points {
                        f.paid_points = f.paid_points.saturating_add(*amount);
                    }
                }
            }
            MemberEvent::FeeRefunded { fee, .. } => {
                if let Some(f) = self.fees.get_mut(fee) {
                    f.refunded = true;
                }
            }
            MemberEvent::FeeWaived { fee, amount, .. } => {
                if let Some(f) = self.fees.get_mut(fee) {
                    f.waived = f.waived.saturating_add(*amount);
                }
            }
            MemberEvent::MemberBlocked { reason, .. } => self.blocked = Some(reason.clone()),
            MemberEvent::MemberUnblocked { .. } => self.blocked = None,
            MemberEvent::BlockOverridden { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn join(name: &str) -> MemberCommand {
        MemberCommand::JoinMember {
            member: MemberId::new("m1"),
            name: name.into(),
            contact: None,
            group: None,
        }
    }

    #[test]
    fn a_person_may_register_themselves_but_not_others() {
        given::<Member>([])
            .when(join("Kim"), member("m1"))
            .then_events([MemberEvent::MemberJoined {
                member: MemberId::new("m1"),
                name: "Kim".into(),
                contact: None,
                group: None,
                joined_at: Some(Timestamp(0)),
            }]);
        given::<Member>([])
            .when(join("Kim"), member("m2"))
            .then_err(MemberError::Unauthorized(MemberId::new("m1")));
    }

    #[test]
    fn a_member_joins_once_with_a_name() {
        let joined = MemberEvent::MemberJoined {
            member: MemberId::new("m1"),
            name: "Kim".into(),
            contact: None,
            group: None,
            joined_at: None,
        };
        given::<Member>([joined])
            .when(join("Kim"), librarian())
            .then_code(ErrorCode::MemberExists);
        given::<Member>([])
            .when(join("  "), librarian())
            .then_code(ErrorCode::InvalidInput);
    }

    fn m1() -> MemberId {
        MemberId::new("m1")
    }
    fn r(n: u32) -> RentalId {
        RentalId::new(format!("r{n}"))
    }
    fn joined_at(at: i64) -> MemberEvent {
        MemberEvent::MemberJoined {
            member: m1(),
            name: "Kim".into(),
            contact: None,
            group: None,
            joined_at: Some(Timestamp(at)),
        }
    }
    fn recorded(n: u32, due: i64) -> MemberEvent {
        MemberEvent::LoanRecorded {
            member: m1(),
            rental: r(n),
            due: Timestamp(due),
            loan_policy: Some("standard".into()),
        }
    }
    fn limits(f: impl FnOnce(&mut LimitsPolicy)) -> LoanLimits {
        let mut l = LimitsPolicy {
            max_loans: None,
            max_overdue: None,
            max_fees_owed: None,
            card_expiry_days: None,
        };
        f(&mut l);
        LoanLimits {
            limits: Some(l),
            item_limit: None,
        }
    }
    fn check_out(n: u32, limits: LoanLimits, override_reason: Option<&str>) -> MemberCommand {
        MemberCommand::CheckOut {
            member: m1(),
            rental: r(n),
            due: Timestamp(DAY_MS * 14),
            limits,
            override_reason: override_reason.map(str::to_owned),
            record: true,
        }
    }
    fn charged(n: u32, amount: u64) -> MemberEvent {
        MemberEvent::FeeCharged {
            member: m1(),
            fee: format!("r{n}:overdue"),
            kind: FeeKind::Overdue,
            rental: r(n),
            amount,
        }
    }

    #[test]
    fn max_loans_counts_the_loans_on_the_record() {
        let two = || limits(|l| l.max_loans = Some(2));
        given::<Member>([joined_at(0), recorded(1, DAY_MS * 30)])
            .when(check_out(2, two(), None), member("m1"))
            .then_events([MemberEvent::LoanRecorded {
                member: m1(),
                rental: r(2),
                due: Timestamp(DAY_MS * 14),
                loan_policy: None,
            }]);
        given::<Member>([
            joined_at(0),
            recorded(1, DAY_MS * 30),
            recorded(2, DAY_MS * 30),
        ])
        .when(check_out(3, two(), None), member("m1"))
        .then_code(ErrorCode::LimitReached);
        // A loan already on the record (a retry) is not a new one.
        given::<Member>([
            joined_at(0),
            recorded(1, DAY_MS * 30),
            recorded(2, DAY_MS * 30),
        ])
        .when(check_out(2, two(), None), member("m1"))
        .then_events([]);
    }

    #[test]
    fn overdue_loans_block_past_the_limit() {
        let none_overdue = || limits(|l| l.max_overdue = Some(0));
        given::<Member>([joined_at(0), recorded(1, DAY_MS)])
            .at(Timestamp(DAY_MS))
            .when(check_out(2, none_overdue(), None), member("m1"))
            .then_events([MemberEvent::LoanRecorded {
                member: m1(),
                rental: r(2),
                due: Timestamp(DAY_MS * 14),
                loan_policy: None,
            }]);
        given::<Member>([joined_at(0), recorded(1, DAY_MS)])
            .at(Timestamp(DAY_MS + 1))
            .when(check_out(2, none_overdue(), None), member("m1"))
            .then_code(ErrorCode::LimitReached);
    }

    #[test]
    fn fees_owed_block_once_they_reach_the_limit() {
        let ten = || limits(|l| l.max_fees_owed = Some(10));
        given::<Member>([joined_at(0), charged(1, 10)])
            .when(check_out(2, ten(), None), member("m1"))
            .then_code(ErrorCode::FeesOwed);
        given::<Member>([joined_at(0), charged(1, 9)])
            .when(check_out(2, ten(), None), member("m1"))
            .then_events([MemberEvent::LoanRecorded {
                member: m1(),
                rental: r(2),
                due: Timestamp(DAY_MS * 14),
                loan_policy: None,
            }]);
    }

    #[test]
    fn a_card_expires_from_joining() {
        let thirty = || limits(|l| l.card_expiry_days = Some(30));
        given::<Member>([joined_at(0)])
            .at(Timestamp(DAY_MS * 30))
            .when(check_out(1, thirty(), None), member("m1"))
            .then_code(ErrorCode::CardExpired);
        // A card from a log that did not record joining never expires.
        given::<Member>([MemberEvent::MemberJoined {
            member: m1(),
            name: "Kim".into(),
            contact: None,
            group: None,
            joined_at: None,
        }])
        .at(Timestamp(DAY_MS * 3000))
        .when(check_out(1, thirty(), None), member("m1"))
        .then_events([MemberEvent::LoanRecorded {
            member: m1(),
            rental: r(1),
            due: Timestamp(DAY_MS * 14),
            loan_policy: None,
        }]);
    }

    #[test]
    fn only_a_librarian_overrides_a_block_and_the_override_is_recorded() {
        let blocked = MemberEvent::MemberBlocked {
            member: m1(),
            reason: "stolen card".into(),
        };
        given::<Member>([joined_at(0), blocked.clone()])
            .when(check_out(1, LoanLimits::default(), None), member("m1"))
            .then_code(ErrorCode::MemberBlocked);
        given::<Member>([joined_at(0), blocked.clone()])
            .when(
                check_out(1, LoanLimits::default(), Some("found")),
                member("m1"),
            )
            .then_code(ErrorCode::Unauthorized);
        given::<Member>([joined_at(0), blocked])
            .when(
                check_out(1, LoanLimits::default(), Some("checked ID")),
                librarian(),
            )
            .then_events([
                MemberEvent::BlockOverridden {
                    member: m1(),
                    code: "MEMBER_BLOCKED".into(),
                    by: "lib-1".into(),
                    reason: "checked ID".into(),
                    rental: r(1),
                },
                MemberEvent::LoanRecorded {
                    member: m1(),
                    rental: r(1),
                    due: Timestamp(DAY_MS * 14),
                    loan_policy: None,
                },
            ]);
    }

    #[test]
    fn a_return_is_never_blocked_and_charges_only_what_a_renewal_did_not() {
        let blocked = MemberEvent::MemberBlocked {
            member: m1(),
            reason: "x".into(),
        };
        given::<Member>([joined_at(0), recorded(1, 0), blocked, charged(1, 4)])
            .when(
                MemberCommand::CheckIn {
                    member: m1(),
                    rental: r(1),
                    fine: 7,
                    refund_lost: false,
                },
                member("m1"),
            )
            .then_events([
                charged(1, 3),
                MemberEvent::LoanCleared {
                    member: m1(),
                    rental: r(1),
                },
            ]);
    }

    fn renew(fine: u64, forgive: bool) -> MemberCommand {
        MemberCommand::Renew {
            member: m1(),
            rental: r(1),
            due: Timestamp(DAY_MS * 30),
            limits: LoanLimits::default(),
            fine,
            forgive,
            override_reason: None,
        }
    }

    #[test]
    fn a_late_renewal_charges_what_the_daily_charges_did_not_or_forgives_them() {
        // 3 points were charged day by day for the current due date; the renewal finds 5.
        given::<Member>([joined_at(0), recorded(1, DAY_MS), charged(1, 3)])
            .when(renew(5, false), member("m1"))
            .then_events([
                charged(1, 2),
                MemberEvent::LoanRecorded {
                    member: m1(),
                    rental: r(1),
                    due: Timestamp(DAY_MS * 30),
                    loan_policy: Some("standard".into()),
                },
            ]);
        // Forgiven on renewal: the 3 charged are waived by lendkit.
        given::<Member>([joined_at(0), recorded(1, DAY_MS), charged(1, 3)])
            .when(renew(0, true), member("m1"))
            .then_events([
                MemberEvent::FeeWaived {
                    member: m1(),
                    fee: "r1:overdue".into(),
                    amount: 3,
                    by: "lendkit".into(),
                    reason: "forgiven on renewal (the fine policy's forgive_on_renewal)".into(),
                },
                MemberEvent::LoanRecorded {
                    member: m1(),
                    rental: r(1),
                    due: Timestamp(DAY_MS * 30),
                    loan_policy: Some("standard".into()),
                },
            ]);
        // After a renewal, lateness past the new due date is a new fine: 4 more, not 4 − 3.
        given::<Member>([
            joined_at(0),
            recorded(1, DAY_MS),
            charged(1, 3),
            recorded(1, DAY_MS * 30),
        ])
        .when(
            MemberCommand::CheckIn {
                member: m1(),
                rental: r(1),
                fine: 4,
                refund_lost: false,
            },
            member("m1"),
        )
        .then_events([
            charged(1, 4),
            MemberEvent::LoanCleared {
                member: m1(),
                rental: r(1),
            },
        ]);
    }

    proptest::proptest! {
        /// Whatever is charged, paid and waived, in any order: what is paid and waived never
        /// exceeds what was charged, and what is owed is charged − paid − waived.
        #[test]
        fn the_fee_ledger_never_pays_or_waives_more_than_was_charged(
            ops in proptest::collection::vec((0u8..3, 1u64..50, 0u32..3), 1..40)
        ) {
            let mut state = Member::default();
            state.apply(&joined_at(0));
            let (mut charged_total, mut paid, mut waived) = (0u64, 0u64, 0u64);
            for (op, amount, loan) in ops {
                let (command, actor) = match op {
                    0 => {
                        state.apply(&charged(loan, amount));
                        charged_total += amount;
                        continue;
                    }
                    1 => (MemberCommand::PayFees { member: m1(), amount, from: PaidFrom::External }, Actor::librarian("lib-1")),
                    _ => (MemberCommand::WaiveFee { member: m1(), fee: format!("r{loan}:overdue"), reason: "kind".into() }, Actor::librarian("lib-1")),
                };
                let ctx = Context::new(actor, Timestamp(0));
                if let Ok(events) = state.decide(&command, &ctx) {
                    for e in &events {
                        match e {
                            MemberEvent::FeePaid { amount, .. } => paid += amount,
                            MemberEvent::FeeWaived { amount, .. } => waived += amount,
                            _ => {}
                        }
                        state.apply(e);
                    }
                }
                proptest::prop_assert!(paid + waived <= charged_total);
                proptest::prop_assert_eq!(state.fees_owed(), charged_total - paid - waived);
            }
        }
    }
}
