//! The clock-driven rules: what comes due on open loans, and [`Library::advance_to`], which runs
//! it.
//!
//! Every open loan made under circulation rules has its moments: its **due date** (it renews
//! itself if its loan policy says `auto_renew`, else it is marked overdue and the member told);
//! from a day later, **every day while it is overdue**, the fine run up so far is charged to the
//! member's fee ledger (until the fine's cap); and, the lost policy's days after the due date,
//! the moment it **ages to lost** (billed: the fine so far, the replacement cost, the processing
//! fee). [`DueWork`] keeps them in time order. It is a fold
//! of the log, like the views: built from the log when the library opens and kept current by
//! every event the engine relays, so it is exactly as durable as the log and never disagrees
//! with it. `advance_to(now)` takes the work due at or before `now` from the front of it — the
//! cost grows with the due work, not with the open loans.
//!
//! Holds have their moments too: the **pickup deadline** of a copy on the pickup shelf, and the
//! **not needed after** of a hold still waiting.
//!
//! Each piece of work runs as lendkit's own command under an id made from the loan, the kind of
//! work and its instant (`system:due:RENTAL:at`), decided as of that instant. So running
//! `advance_to` twice, or again after a restart, changes nothing: the second run finds the
//! command applied (or the loan already renewed, marked, aged), and stores nothing.

use super::route::{LoanAction, LoanRequest, Plan, Step};
use super::*;
use crate::codes::ErrorFamily;
use crate::event::Fact;
use crate::rentals::RentalEvent;
use crate::views::View;
use std::collections::BTreeSet;

/// What comes due on a loan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Work {
    /// Its due date: renew it automatically, or mark it overdue.
    Due,
    /// It has been overdue long enough to count as lost.
    Lost,
    /// It is overdue: charge the fine run up so far (daily, until it is back, lost, or at the
    /// fine's cap).
    Accrue,
    /// A hold's copy was not collected from the pickup shelf by its deadline: it goes to the
    /// next in line.
    Pickup,
    /// A hold still waiting is no longer needed (its `not_needed_after`): cancelled, refunded.
    NotNeeded,
}

impl Work {
    fn as_str(self) -> &'static str {
        match self {
            Work::Due => "due",
            Work::Lost => "lost",
            Work::Accrue => "accrue",
            Work::Pickup => "pickup",
            Work::NotNeeded => "not-needed",
        }
    }
}

/// One open loan as the schedule knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduledLoan {
    /// Borrower.
    pub member: MemberId,
    /// Book.
    pub book: BookId,
    /// The branch it was made at.
    pub branch: Option<String>,
    /// Its due date.
    pub due: Timestamp,
    /// Days overdue before it counts as lost.
    aged_days: u64,
    /// Whether its due date has been dealt with (overdue notice or failed auto-renewal).
    noted: bool,
    /// The fine policy it was made under.
    pub fine: crate::circulation::FinePolicy,
    /// When the fine is next charged, while it is overdue.
    accrue_at: Option<Timestamp>,
    /// The fine charged for its current due date.
    fined: u64,
}

/// The schedule of clock-driven work: open loans under circulation rules, by the instant their
/// next work comes due. A fold of the log (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DueWork {
    queue: BTreeSet<(Timestamp, Work, RentalId)>,
    loans: crate::ids::IdMap<RentalId, ScheduledLoan>,
    /// Holds with a deadline: (not needed after, pickup until).
    holds: crate::ids::IdMap<RentalId, (Option<Timestamp>, Option<Timestamp>)>,
    /// Each member's holds not yet ended (waiting or on the pickup shelf), for the request
    /// policy's `max_holds`.
    held_by: crate::ids::IdMap<MemberId, crate::ids::IdSet<RentalId>>,
    /// Each title's open loans under rules that a hold may still recall, by due date.
    recallable: crate::ids::IdMap<BookId, BTreeSet<(Timestamp, RentalId)>>,
    position: u64,
}

impl DueWork {
    /// How many holds `member` has that have not ended (waiting or on the pickup shelf).
    pub fn holds_of(&self, member: &MemberId) -> usize {
        self.held_by.get(member).map_or(0, |h| h.len())
    }

    /// The open loan of `book` due latest that has not been recalled yet.
    pub fn latest_recallable(&self, book: &BookId) -> Option<(Timestamp, RentalId)> {
        self.recallable.get(book)?.last().cloned()
    }

    fn not_recallable(&mut self, rental: &RentalId) {
        if let Some(l) = self.loans.get(rental) {
            if let Some(set) = self.recallable.get_mut(&l.book) {
                set.remove(&(l.due, rental.clone()));
                if set.is_empty() {
                    self.recallable.remove(&l.book);
                }
            }
        }
    }

    fn recallable_now(&self, rental: &RentalId) -> bool {
        self.loans.get(rental).is_some_and(|l| {
            self.recallable
                .get(&l.book)
                .is_some_and(|s| s.contains(&(l.due, rental.clone())))
        })
    }

    fn hold_ended(&mut self, member: &MemberId, rental: &RentalId) {
        if let Some(held) = self.held_by.get_mut(member) {
            held.remove(rental);
            if held.is_empty() {
                self.held_by.remove(member);
            }
        }
    }

    /// The earliest piece of work due at or before `now`.
    fn first_due(&self, now: Timestamp) -> Option<(Timestamp, Work, RentalId)> {
        self.queue.first().filter(|(at, _, _)| *at <= now).cloned()
    }

    /// The open loans under circulation rules that are past due at `now`, earliest due first.
    pub fn overdue(&self, now: Timestamp) -> Vec<(&RentalId, &ScheduledLoan)> {
        let mut late: Vec<_> = self.loans.iter().filter(|(_, l)| l.due < now).collect();
        late.sort_by(|a, b| (a.1.due, a.0).cmp(&(b.1.due, b.0)));
        late
    }

    /// Takes a piece of work off the schedule (it ran, or there was nothing to do).
    fn done(&mut self, item: &(Timestamp, Work, RentalId)) {
        self.queue.remove(item);
    }

    fn unschedule(&mut self, rental: &RentalId) {
        if let Some(l) = self.loans.get(rental) {
            let lost = days_after(l.due, l.aged_days);
            self.queue.remove(&(l.due, Work::Due, rental.clone()));
            self.queue.remove(&(lost, Work::Lost, rental.clone()));
            if let Some(at) = l.accrue_at {
                self.queue.remove(&(at, Work::Accrue, rental.clone()));
            }
        }
    }

    /// Charges the fine next at `at` (or no more: `None`, or the fine's cap reached).
    fn accrue_next(&mut self, rental: &RentalId, at: Option<Timestamp>) {
        let Some(l) = self.loans.get_mut(rental) else {
            return;
        };
        if let Some(old) = l.accrue_at.take() {
            self.queue.remove(&(old, Work::Accrue, rental.clone()));
        }
        let capped = l.fine.max_per_loan.is_some_and(|max| l.fined >= max);
        if let (Some(at), false, true) = (at, capped, l.fine.points > 0) {
            l.accrue_at = Some(at);
            self.queue.insert((at, Work::Accrue, rental.clone()));
        }
    }

    /// An accrual at `at` ran: unless a charge moved it already, the next is a day later.
    fn accrued(&mut self, rental: &RentalId, at: Timestamp) {
        if self
            .loans
            .get(rental)
            .is_some_and(|l| l.accrue_at == Some(at))
        {
            self.accrue_next(rental, Some(at.plus_ms(crate::ids::DAY_MS)));
        }
    }

    /// A hold's clock-driven work ends (it was collected, cancelled or expired).
    fn unschedule_hold(&mut self, rental: &RentalId) {
        if let Some((not_needed, pickup)) = self.holds.remove(rental) {
            if let Some(at) = not_needed {
                self.queue.remove(&(at, Work::NotNeeded, rental.clone()));
            }
            if let Some(at) = pickup {
                self.queue.remove(&(at, Work::Pickup, rental.clone()));
            }
        }
    }

    fn schedule(&mut self, rental: &RentalId) {
        if let Some(l) = self.loans.get(rental) {
            if !l.noted {
                self.queue.insert((l.due, Work::Due, rental.clone()));
            }
            self.queue
                .insert((days_after(l.due, l.aged_days), Work::Lost, rental.clone()));
        }
    }
}

/// `days` whole days after `at` (saturating): when a loan due at `at` counts as lost, when a
/// refund window ends.
pub(super) fn days_after(at: Timestamp, days: u64) -> Timestamp {
    let ms = i64::try_from(days)
        .ok()
        .and_then(|d| d.checked_mul(crate::ids::DAY_MS))
        .unwrap_or(i64::MAX);
    at.plus_ms(ms)
}

impl View for DueWork {
    const NAME: &'static str = "due_work";

    fn apply(&mut self, e: Fact<'_>) {
        if e.position <= self.position {
            return;
        }
        self.position = e.position;
        if let Event::Member(crate::members::MemberEvent::FeeCharged {
            rental,
            kind: crate::members::FeeKind::Overdue,
            amount,
            ..
        }) = e.event
        {
            // A charge (an accrual, as of its instant) moves the next accrual a day on.
            // (Only while it accrues: a renewal's charge belongs to the due date it left.)
            let next = self.loans.get_mut(rental).and_then(|l| {
                l.accrue_at?;
                l.fined = l.fined.saturating_add(*amount);
                Some(e.occurred_at.plus_ms(crate::ids::DAY_MS))
            });
            if next.is_some() {
                self.accrue_next(rental, next);
            }
            return;
        }
        let Event::Rental(r) = e.event else {
            return;
        };
        match r {
            RentalEvent::RentalReserved {
                rental,
                member,
                hold: Some(hold),
                ..
            } => {
                self.held_by
                    .entry(member.clone())
                    .or_default()
                    .insert(rental.clone());
                if let Some(at) = hold.not_needed_after {
                    self.holds.insert(rental.clone(), (Some(at), None));
                    self.queue.insert((at, Work::NotNeeded, rental.clone()));
                }
                return;
            }
            RentalEvent::HoldAwaitingPickup { rental, until, .. } => {
                self.unschedule_hold(rental);
                self.holds.insert(rental.clone(), (None, Some(*until)));
                self.queue.insert((*until, Work::Pickup, rental.clone()));
                return;
            }
            RentalEvent::RentalConfirmed { rental, .. } => self.unschedule_hold(rental),
            RentalEvent::LoanStarted { rental, member, .. }
            | RentalEvent::RentalCanceled { rental, member, .. }
            | RentalEvent::HoldPickupExpired { rental, member, .. } => {
                self.unschedule_hold(rental);
                self.hold_ended(member, rental);
            }
            _ => {}
        }
        match r {
            RentalEvent::LoanStarted {
                rental,
                member,
                book,
                due,
                terms: Some(terms),
                ..
            } => {
                self.unschedule(rental);
                self.loans.insert(
                    rental.clone(),
                    ScheduledLoan {
                        member: member.clone(),
                        book: book.clone(),
                        branch: terms.branch.clone(),
                        due: *due,
                        aged_days: terms.lost.aged_to_lost_after_days,
                        noted: false,
                        fine: terms.fine.clone(),
                        accrue_at: None,
                        fined: 0,
                    },
                );
                self.recallable
                    .entry(book.clone())
                    .or_default()
                    .insert((*due, rental.clone()));
                self.schedule(rental);
            }
            RentalEvent::LoanRenewed { rental, due, .. } => {
                self.unschedule(rental);
                let recallable = self.recallable_now(rental);
                self.not_recallable(rental);
                if let Some(l) = self.loans.get_mut(rental) {
                    l.due = *due;
                    l.noted = false;
                    l.accrue_at = None;
                    l.fined = 0;
                    if recallable {
                        self.recallable
                            .entry(l.book.clone())
                            .or_default()
                            .insert((*due, rental.clone()));
                    }
                }
                self.schedule(rental);
            }
            RentalEvent::LoanRecalled { rental, due, .. } => {
                self.unschedule(rental);
                self.not_recallable(rental);
                if let Some(l) = self.loans.get_mut(rental) {
                    l.due = *due;
                    l.noted = false;
                    l.accrue_at = None;
                    l.fined = 0;
                }
                self.schedule(rental);
            }
            RentalEvent::LoanOverdue { rental, due, .. }
            | RentalEvent::AutoRenewalFailed { rental, due, .. } => {
                let mut overdue = false;
                if let Some(l) = self.loans.get_mut(rental) {
                    if l.due == *due {
                        l.noted = true;
                        overdue = true;
                    }
                }
                self.queue.remove(&(*due, Work::Due, rental.clone()));
                if overdue {
                    // From a day after the due date, the fine is charged day by day.
                    self.accrue_next(rental, Some(due.plus_ms(crate::ids::DAY_MS)));
                }
            }
            RentalEvent::ItemAgedToLost { rental, .. }
            | RentalEvent::BookReturned { rental, .. } => {
                self.unschedule(rental);
                self.not_recallable(rental);
                self.loans.remove(rental);
            }
            _ => {}
        }
    }

    fn position(&self) -> u64 {
        self.position
    }
}

/// What one [`Library::advance_to`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Advanced {
    /// Pieces of work that came due and were run.
    pub ran: usize,
    /// Events they stored.
    pub events: usize,
    /// Pieces of work refused for good (a bug or damaged data, never a rule: a refused
    /// automatic renewal is stored as `AutoRenewalFailed`), taken off the schedule.
    pub failed: usize,
}

impl Library {
    /// Runs every piece of clock-driven work that has come due at or before `now`: on a loan's
    /// due date an automatic renewal (`LoanRenewed{by: "auto"}`, or `AutoRenewalFailed{code}`
    /// with the due date unchanged) or else `LoanOverdue`; past the lost policy's days,
    /// `ItemAgedToLost` with the bill; a hold not collected by its pickup deadline,
    /// `HoldPickupExpired` (the copy goes to the next in line); a hold still waiting past its
    /// `not_needed_after`, cancelled and refunded. Each is decided as of its own instant. Running it again
    /// for the same instant, or after a restart, changes nothing. The facade's background runner
    /// calls it with the clock's time; call it yourself in tests and with `background` off.
    pub async fn advance_to(&self, now: Timestamp) -> Result<Advanced> {
        self.shutdown.check()?;
        let mut advanced = Advanced::default();
        loop {
            // One at a time, earliest first: a piece of work may schedule another before the
            // next one (an overdue loan's first accrual comes before its aging to lost), so
            // running in one jump stores what running in steps does.
            self.engine.relay().await?;
            let next = self
                .engine
                .due_work
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .first_due(now);
            let Some(item) = next else {
                return Ok(advanced);
            };
            match self.run_work(&item).await {
                Ok(events) => advanced.events += events,
                // A piece of work refused for good (not a passing storage failure) is taken off
                // the schedule, so it cannot hold back the work behind it; it is counted.
                Err(e) if !e.code().is_retryable() => advanced.failed += 1,
                Err(e) => return Err(e),
            }
            advanced.ran += 1;
            // What the work stored is relayed (and folded into the schedule) first.
            self.engine.relay().await?;
            let mut schedule = self
                .engine
                .due_work
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if item.1 == Work::Accrue {
                schedule.accrued(&item.2, item.0);
            } else {
                schedule.done(&item);
            }
        }
    }

    /// Runs one piece of due work; the events it stored.
    async fn run_work(&self, (at, work, rental): &(Timestamp, Work, RentalId)) -> Result<usize> {
        let meta = |what: &str| Meta {
            actor: Actor::System,
            command_id: CommandId::system(format_args!("{what}:{rental}:{}", at.to_rfc3339())),
            fingerprint: String::new(),
            fresh: false,
            at: Some(*at),
            correlation_id: rental.to_string(),
            causation_id: format!("{}@{}", work.as_str(), at.to_rfc3339()),
            deferred: false,
            follow: false,
        };
        let loan = |action| {
            Step::Loan(LoanRequest {
                rental: rental.clone(),
                action,
            })
        };
        let plan = Plan::one(match work {
            Work::Due => loan(LoanAction::Due { at: *at }),
            Work::Lost => loan(LoanAction::Lost { at: *at }),
            Work::Accrue => loan(LoanAction::Accrue { at: *at }),
            Work::Pickup => Step::Rental(RentalCommand::ExpirePickup {
                rental: rental.clone(),
                until: *at,
            }),
            Work::NotNeeded => Step::Rental(RentalCommand::ExpireHold {
                rental: rental.clone(),
                at: *at,
            }),
        });
        match self.engine.run(plan, &meta(work.as_str())).await {
            Ok(events) => Ok(events.len()),
            // An automatic renewal the rules refuse: the due date stays, and the member is told.
            Err(e) if *work == Work::Due && e.code().family() == ErrorFamily::RuleViolation => {
                let failed = Plan::one(Step::Rental(RentalCommand::RecordAutoRenewalFailed {
                    rental: rental.clone(),
                    due: *at,
                    code: e.code().as_str().to_owned(),
                }));
                Ok(self.engine.run(failed, &meta("due-failed")).await?.len())
            }
            Err(e) => Err(e),
        }
    }
}
