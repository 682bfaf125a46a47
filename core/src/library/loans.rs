//! Loans under the circulation rules: before a plan is decided, each loan step (a start, a
//! renewal, a return) is expanded, from the rental, the member, the book and the stored rules,
//! into a step on the rental (with its due date and terms filled in) and a step on the member
//! (the member's record of loans and fees, and the blocks checked there).
//!
//! What the expansion read is guarded in the commit: the rules stream by its version (a change
//! of the rules meanwhile means deciding again), the rental by the version the terms were
//! computed from. The member's stream is written, so it is checked by the append itself —
//! two desks lending to one member at once cannot both pass a limit.

use super::route::{LoanAction, LoanRequest, Step};
use super::*;
use crate::circulation::{CirculationRules, LoanTerms, RULES_STREAM_ID};
use crate::members::LoanLimits;

/// A plan's steps as they are decided: loan steps expanded, and what the expansion read.
pub(super) struct Expanded {
    /// The steps to decide, in order; `None`: the plan's own (nothing needed expanding).
    pub(super) steps: Option<Vec<Step>>,
    /// Streams read but not written, with the version read: appended empty, so the store
    /// refuses the commit if one moved.
    pub(super) guards: Vec<StreamAppend>,
    /// Streams written whose version the expansion depended on: the decided version must be
    /// the same, or the plan is decided again.
    pub(super) pinned: Vec<(StreamId, u64)>,
}

impl Expanded {
    /// Adds a step to decide.
    fn push(&mut self, step: Step) {
        self.steps.get_or_insert_with(Vec::new).push(step);
    }
}

/// The circulation rules in force, taken out of the engine's cache while the expansion reads
/// them (so the table is never copied) and given back after.
struct RulesNow {
    version: u64,
    table: Option<crate::circulation::RulesTable>,
}

impl RulesNow {
    fn of(rules: Box<CirculationRules>) -> (RulesNow, Box<CirculationRules>) {
        let mut rest = rules;
        let now = RulesNow {
            version: rest.version,
            table: rest.table.take(),
        };
        (now, rest)
    }
}

impl Engine {
    /// Expands the plan's loan steps, and checks the groups and branches other steps name
    /// against the stored rules.
    pub(super) async fn expand(&self, steps: &[Step], ctx: &Context) -> Result<Expanded> {
        let mut out = Expanded {
            steps: None,
            guards: Vec::new(),
            pinned: Vec::new(),
        };
        let needs_rules = steps.iter().any(|s| {
            matches!(
                s,
                Step::Loan(_)
                    | Step::Member(MemberCommand::JoinMember { group: Some(_), .. })
                    | Step::Book(crate::catalog::BookCommand::RegisterBook {
                        branch: Some(_),
                        ..
                    })
            )
        });
        if !needs_rules {
            return Ok(out);
        }
        out.steps = Some(Vec::with_capacity(steps.len() + 1));
        let stream = StreamId::new(StreamKind::Rules, RULES_STREAM_ID);
        let (stored, version) = self.load::<CirculationRules>(&stream).await?;
        // Decisions made under a table must not commit after it changed. Before any table is
        // stored there is nothing to guard: a loan decided without rules and committed just after
        // the first table is the same as one committed just before it.
        if version > 0 {
            out.guards.push(StreamAppend {
                stream: stream.clone(),
                expected_version: version,
                events: vec![],
            });
        }
        let (rules, mut rest) = RulesNow::of(stored);
        let result = self.expand_with(steps, &rules, ctx, &mut out).await;
        rest.table = rules.table;
        self.keep(&stream, rest, version);
        result.map(|()| out)
    }

    async fn expand_with(
        &self,
        steps: &[Step],
        rules: &RulesNow,
        ctx: &Context,
        out: &mut Expanded,
    ) -> Result<()> {
        for step in steps {
            match step {
                Step::Loan(request) => self.expand_loan(request, rules, ctx, out).await?,
                Step::Member(MemberCommand::JoinMember {
                    group: Some(group), ..
                }) => {
                    if rules.table.as_ref().is_some_and(|t| !t.knows_group(group)) {
                        return Err(Error::not_found(ErrorCode::GroupNotFound, "group", group));
                    }
                    out.push(step.clone());
                }
                Step::Book(crate::catalog::BookCommand::RegisterBook {
                    branch: Some(branch),
                    ..
                }) => {
                    check_branch(rules, branch)?;
                    out.push(step.clone());
                }
                other => out.push(other.clone()),
            }
        }
        Ok(())
    }

    async fn expand_loan(
        &self,
        request: &LoanRequest,
        rules: &RulesNow,
        ctx: &Context,
        out: &mut Expanded,
    ) -> Result<()> {
        let rental_stream = StreamId::new(StreamKind::Rental, request.rental.as_str());
        let (rental, rental_version) = self.load::<Rental>(&rental_stream).await?;
        let seen = rental.clone();
        self.keep(&rental_stream, rental, rental_version);
        if let LoanAction::Recall = request.action {
            return self.expand_recall(&seen, rules, ctx, out).await;
        }
        if let LoanAction::Shelve = request.action {
            return self
                .expand_shelve(request, &seen, rental_version, rules, ctx, out)
                .await;
        }
        let plain = match &request.action {
            LoanAction::Start { .. } => RentalCommand::StartLoan {
                rental: request.rental.clone(),
                due: None,
                terms: None,
            },
            LoanAction::Renew { .. } => RentalCommand::RenewLoan {
                rental: request.rental.clone(),
                due: None,
                for_due: None,
            },
            // Clock-driven work on a loan that is not (or no longer) what it was scheduled
            // for changes nothing.
            LoanAction::Due { .. } | LoanAction::Lost { .. } | LoanAction::Accrue { .. } => {
                if !matches!(seen.status, RentalStatus::OnLoan) || seen.terms.is_none() {
                    return Ok(());
                }
                RentalCommand::MarkOverdue {
                    rental: request.rental.clone(),
                    due: seen.due.unwrap_or_default(),
                }
            }
            LoanAction::Return { returned_at } => RentalCommand::ReturnBook {
                rental: request.rental.clone(),
                returned_at: *returned_at,
            },
            LoanAction::Shelve | LoanAction::Recall => unreachable!("expanded above"),
        };
        // A rental that does not exist, is not the actor's, or is not where this step can go:
        // the rental's own decision says so (or, for lendkit's retries, changes nothing).
        let expected = match request.action {
            LoanAction::Start { .. } => RentalStatus::Confirmed,
            _ => RentalStatus::OnLoan,
        };
        let (Some(member), Some(book)) = (seen.member.clone(), seen.book.clone()) else {
            out.push(Step::Rental(plain));
            return Ok(());
        };
        let actor_may = match &ctx.actor {
            Actor::Member(m) => *m == member,
            _ => true,
        };
        if seen.status != expected || !actor_may {
            out.push(Step::Rental(plain));
            return Ok(());
        }
        out.pinned.push((rental_stream, rental_version));

        let member_stream = StreamId::new(StreamKind::Member, member.as_str());
        let (m, mv) = self.load::<Member>(&member_stream).await?;
        let group = m.group.clone();
        // Without stored rules and without a manual block, the member's record has nothing to
        // check or keep for a start or a renewal, nor for a return of a loan not on it: the
        // library stores and checks exactly what it did before rules existed.
        let member_step_needed = rules.table.is_some()
            || m.blocked.is_some()
            || m.loans.contains_key(&request.rental)
            || seen.lost_at.is_some();
        self.keep(&member_stream, m, mv);
        // The book's item type and branch matter only to a rules table; its hold queue to a
        // renewal.
        let renewing = matches!(
            request.action,
            LoanAction::Renew { .. } | LoanAction::Due { .. }
        );
        let (item_type, home_branch, has_holds) = if rules.table.is_some() || renewing {
            let book_stream = StreamId::new(StreamKind::Book, book.as_str());
            let (b, bv) = self.load::<Book>(&book_stream).await?;
            let found = (b.item_type.clone(), b.branch.clone(), b.has_holds());
            self.keep(&book_stream, b, bv);
            if renewing && found.2 {
                // The holds are read: a hold placed meanwhile means deciding again.
                out.guards.push(StreamAppend {
                    stream: book_stream,
                    expected_version: bv,
                    events: vec![],
                });
            }
            found
        } else {
            (None, None, false)
        };
        // Others wait for the title: no renewal (an automatic one is recorded as failed), unless
        // the request policy lets loans be renewed while others wait.
        let renew_with_holds = renewing
            && has_holds
            && rules.table.as_ref().is_some_and(|t| {
                let branch = seen
                    .terms
                    .as_ref()
                    .and_then(|t| t.branch.clone())
                    .or(home_branch.clone());
                request_for(t, group.as_deref(), item_type.as_deref(), branch.as_deref())
                    .is_some_and(|r| r.renew_with_holds)
            });
        if renewing && has_holds && !renew_with_holds {
            let due_for = match request.action {
                LoanAction::Due { at } => Some(at),
                _ => None,
            };
            let still_due = due_for.is_none_or(|at| {
                seen.due == Some(at) && seen.lost_at.is_none() && seen.due_noted != Some(at)
            });
            if still_due
                && (due_for.is_none() || seen.terms.as_ref().is_some_and(|t| t.loan.auto_renew))
            {
                return Err(crate::rentals::RentalError::HasHolds {
                    rental: request.rental.clone(),
                    book,
                }
                .into());
            }
        }

        let invalid = |e: crate::circulation::CalendarError| Error::InvalidInput(e.to_string());
        match &request.action {
            LoanAction::Start {
                branch,
                override_reason,
            } => {
                let pickup = seen.hold.as_ref().and_then(|h| h.pickup_branch.clone());
                let branch = branch.clone().or(pickup).or(home_branch);
                if let Some(b) = &branch {
                    check_branch(rules, b)?;
                }
                let (due, terms, limits) = match &rules.table {
                    Some(table) => {
                        let terms = LoanTerms::resolve(
                            table,
                            rules.version,
                            group.as_deref(),
                            item_type.as_deref(),
                            branch.as_deref(),
                        );
                        let calendar = branch.as_deref().and_then(|b| table.calendar(b));
                        let due = terms.due(ctx.now, calendar).map_err(invalid)?;
                        let limits = LoanLimits {
                            limits: Some(limits_for(
                                table,
                                group.as_deref(),
                                item_type.as_deref(),
                                branch.as_deref(),
                            )),
                            item_limit: terms
                                .loan
                                .item_limit
                                .map(|n| (terms.loan_policy.clone(), n)),
                        };
                        (due, Some(Box::new(terms)), limits)
                    }
                    None => (
                        ctx.now.plus_days(ctx.rules.loan_days),
                        None,
                        LoanLimits::default(),
                    ),
                };
                out.push(Step::Rental(RentalCommand::StartLoan {
                    rental: request.rental.clone(),
                    due: Some(due),
                    terms,
                }));
                // A hold charged on collecting is paid in the same commit.
                if let Some(fee) = seen.hold.as_ref().and_then(|h| h.collect_fee) {
                    out.push(Step::Account(PointsCommand::PayHoldFee {
                        member: member.clone(),
                        rental: request.rental.clone(),
                        points: Points(fee),
                    }));
                }
                // A hold's copy leaves the pickup shelf in the same commit: sixteen desks
                // lending it at once make one loan.
                if seen.pickup_until.is_some() {
                    out.push(Step::Book(crate::catalog::BookCommand::CollectHold {
                        book: book.clone(),
                        rental: request.rental.clone(),
                    }));
                }
                let record = rules.table.is_some();
                if member_step_needed || override_reason.is_some() {
                    out.push(Step::Member(MemberCommand::CheckOut {
                        member,
                        rental: request.rental.clone(),
                        due,
                        limits,
                        override_reason: override_reason.clone(),
                        record,
                    }));
                }
            }
            LoanAction::Renew { override_reason } => {
                let Some(due) = seen.due else {
                    out.push(Step::Rental(plain));
                    return Ok(());
                };
                let branch = seen
                    .terms
                    .as_ref()
                    .and_then(|t| t.branch.clone())
                    .or(home_branch);
                let calendar = calendar_of(rules, &seen);
                let (new_due, fine, forgive) = match &seen.terms {
                    Some(terms) => {
                        let new_due = terms.renewed_due(due, ctx.now, calendar).map_err(invalid)?;
                        let forgive = terms.fine.forgive_on_renewal;
                        let fine = if forgive {
                            0
                        } else {
                            terms.fine.fine(due, ctx.now, calendar)
                        };
                        (new_due, fine, forgive)
                    }
                    None => (due.plus_days(ctx.rules.loan_days), 0, false),
                };
                let limits = LoanLimits {
                    limits: rules.table.as_ref().map(|t| {
                        limits_for(t, group.as_deref(), item_type.as_deref(), branch.as_deref())
                    }),
                    item_limit: None,
                };
                out.push(Step::Rental(RentalCommand::RenewLoan {
                    rental: request.rental.clone(),
                    due: Some(new_due),
                    for_due: None,
                }));
                if member_step_needed || override_reason.is_some() || fine > 0 {
                    out.push(Step::Member(MemberCommand::Renew {
                        member,
                        rental: request.rental.clone(),
                        due: new_due,
                        limits,
                        fine,
                        forgive,
                        override_reason: override_reason.clone(),
                    }));
                }
            }
            LoanAction::Return { returned_at } => {
                // A return time in the future is refused by the rental; the fine is counted to
                // no later than now either way.
                let at = returned_at.map_or(ctx.now, |t| t.min(ctx.now));
                let calendar = calendar_of(rules, &seen);
                let fine = match (&seen.terms, seen.due, seen.lost_at) {
                    // An item aged to lost was billed its fine up to then, with the loan off
                    // the record: nothing more is charged.
                    (_, _, Some(_)) => 0,
                    (Some(terms), Some(due), None) => terms.fine.fine(due, at, calendar),
                    _ => 0,
                };
                // A lost item back within the refund window: its bill is refunded, and what
                // was paid from points goes back to the point account in the same commit.
                let refund_lost = match (&seen.terms, seen.lost_at) {
                    (Some(terms), Some(lost)) => {
                        let window = terms.lost.refund_window_days;
                        window > 0 && at <= super::due::days_after(lost, window)
                    }
                    _ => false,
                };
                let points = if refund_lost {
                    let member_stream = StreamId::new(StreamKind::Member, member.as_str());
                    let (m, mv) = self.load::<Member>(&member_stream).await?;
                    let points = m.lost_refund_points(&request.rental);
                    self.keep(&member_stream, m, mv);
                    out.pinned.push((member_stream, mv));
                    points
                } else {
                    0
                };
                out.push(Step::Rental(plain));
                if member_step_needed || fine > 0 || refund_lost {
                    out.push(Step::Member(MemberCommand::CheckIn {
                        member: member.clone(),
                        rental: request.rental.clone(),
                        fine,
                        refund_lost,
                    }));
                }
                if points > 0 {
                    out.push(Step::Account(PointsCommand::ReturnFeePoints {
                        member,
                        points: Points(points),
                    }));
                }
            }
            LoanAction::Due { at } => {
                let Some(terms) = seen.terms.as_deref() else {
                    return Ok(());
                };
                if seen.due != Some(*at) || seen.lost_at.is_some() || seen.due_noted == Some(*at) {
                    return Ok(());
                }
                if !terms.loan.auto_renew {
                    out.push(Step::Rental(RentalCommand::MarkOverdue {
                        rental: request.rental.clone(),
                        due: *at,
                    }));
                    return Ok(());
                }
                let branch = terms.branch.clone().or(home_branch);
                let calendar = calendar_of(rules, &seen);
                let new_due = terms.renewed_due(*at, ctx.now, calendar).map_err(invalid)?;
                let limits = LoanLimits {
                    limits: rules.table.as_ref().map(|t| {
                        limits_for(t, group.as_deref(), item_type.as_deref(), branch.as_deref())
                    }),
                    item_limit: None,
                };
                out.push(Step::Rental(RentalCommand::RenewLoan {
                    rental: request.rental.clone(),
                    due: Some(new_due),
                    for_due: Some(*at),
                }));
                out.push(Step::Member(MemberCommand::Renew {
                    member,
                    rental: request.rental.clone(),
                    due: new_due,
                    limits,
                    fine: 0,
                    forgive: false,
                    override_reason: None,
                }));
            }
            LoanAction::Shelve | LoanAction::Recall => {}
            LoanAction::Accrue { at } => {
                let (Some(terms), Some(due)) = (seen.terms.as_deref(), seen.due) else {
                    return Ok(());
                };
                if seen.lost_at.is_some() || *at <= due {
                    return Ok(());
                }
                let fine = terms.fine.fine(due, *at, calendar_of(rules, &seen));
                if fine > 0 {
                    out.push(Step::Member(MemberCommand::ChargeFine {
                        member,
                        rental: request.rental.clone(),
                        fine,
                    }));
                }
            }
            LoanAction::Lost { at } => {
                let (Some(terms), Some(due)) = (seen.terms.as_deref(), seen.due) else {
                    return Ok(());
                };
                // Scheduled from a due date a renewal has since moved: not lost yet.
                let lost_from = super::due::days_after(due, terms.lost.aged_to_lost_after_days);
                if seen.lost_at.is_some() || *at < lost_from {
                    return Ok(());
                }
                let fine = terms.fine.fine(due, *at, calendar_of(rules, &seen));
                out.push(Step::Rental(RentalCommand::AgeToLost {
                    rental: request.rental.clone(),
                    at: *at,
                }));
                out.push(Step::Member(MemberCommand::AgeToLost {
                    member,
                    rental: request.rental.clone(),
                    fine,
                    replacement: terms.lost.replacement_cost,
                    processing: terms.lost.processing_fee,
                }));
            }
        }
        Ok(())
    }
}

impl Engine {
    /// A hold joined its title's queue: under a request policy that recalls, the title's open
    /// loan due latest (not recalled yet) is due back at the later of now plus `recall_days`
    /// and its start plus `recall_min_loan_days` — only ever earlier than it was due.
    async fn expand_recall(
        &self,
        hold: &Rental,
        rules: &RulesNow,
        ctx: &Context,
        out: &mut Expanded,
    ) -> Result<()> {
        let (Some(table), Some(member), Some(book)) = (&rules.table, &hold.member, &hold.book)
        else {
            return Ok(());
        };
        if hold.status != RentalStatus::Reserved {
            return Ok(());
        }
        let group = self.member_group(member).await?;
        let item_type = self.item_type(book).await?;
        let pickup = hold.hold.as_ref().and_then(|h| h.pickup_branch.as_deref());
        let Some(policy) = request_for(table, group.as_deref(), item_type.as_deref(), pickup)
        else {
            return Ok(());
        };
        let Some(days) = policy.recall_days else {
            return Ok(());
        };
        let latest = self
            .due_work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .latest_recallable(book);
        let Some((_, loan)) = latest else {
            return Ok(());
        };
        let stream = StreamId::new(StreamKind::Rental, loan.as_str());
        let (l, version) = self.load::<Rental>(&stream).await?;
        let found = (l.due, l.loaned_at, l.member.clone(), l.status);
        self.keep(&stream, l, version);
        let (Some(due), Some(started), Some(borrower), RentalStatus::OnLoan) = found else {
            return Ok(());
        };
        let recalled = super::due::days_after(ctx.now, days)
            .max(super::due::days_after(started, policy.recall_min_loan_days));
        if recalled >= due {
            return Ok(());
        }
        out.pinned.push((stream, version));
        out.push(Step::Rental(RentalCommand::RecallLoan {
            rental: loan.clone(),
            due: recalled,
        }));
        out.push(Step::Member(MemberCommand::Recall {
            member: borrower,
            rental: loan,
            due: recalled,
        }));
        Ok(())
    }

    /// A member's group.
    async fn member_group(&self, member: &MemberId) -> Result<Option<String>> {
        let stream = StreamId::new(StreamKind::Member, member.as_str());
        let (m, v) = self.load::<Member>(&stream).await?;
        let group = m.group.clone();
        self.keep(&stream, m, v);
        Ok(group)
    }

    /// A book's item type.
    async fn item_type(&self, book: &BookId) -> Result<Option<String>> {
        let stream = StreamId::new(StreamKind::Book, book.as_str());
        let (b, v) = self.load::<Book>(&stream).await?;
        let item_type = b.item_type.clone();
        self.keep(&stream, b, v);
        Ok(item_type)
    }

    /// A hold's copy is on the pickup shelf: it is confirmed with the deadline, counted in open
    /// days of the pickup branch's calendar (calendar days without one), the request policy's
    /// `shelf_days` or else the library's `hold_shelf_days`.
    async fn expand_shelve(
        &self,
        request: &LoanRequest,
        seen: &Rental,
        rental_version: u64,
        rules: &RulesNow,
        ctx: &Context,
        out: &mut Expanded,
    ) -> Result<()> {
        let rental_stream = StreamId::new(StreamKind::Rental, request.rental.as_str());
        let pickup_until = if seen.status == RentalStatus::Reserved {
            let branch = seen.hold.as_ref().and_then(|h| h.pickup_branch.as_deref());
            let mut days = u64::from(ctx.rules.hold_shelf_days);
            if let (Some(table), Some(member), Some(book)) =
                (&rules.table, &seen.member, &seen.book)
            {
                let group = self.member_group(member).await?;
                let item_type = self.item_type(book).await?;
                if let Some(d) = request_for(table, group.as_deref(), item_type.as_deref(), branch)
                    .and_then(|r| r.shelf_days)
                {
                    days = d;
                }
            }
            let calendar = branch.and_then(|b| rules.table.as_ref()?.calendar(b));
            let until = match calendar {
                Some(c) => c
                    .after_open_days(ctx.now, days)
                    .map_err(|e| Error::InvalidInput(e.to_string()))?,
                None => super::due::days_after(ctx.now, days),
            };
            out.pinned.push((rental_stream, rental_version));
            Some(until)
        } else {
            None
        };
        out.push(Step::Rental(RentalCommand::ConfirmRental {
            rental: request.rental.clone(),
            pickup_until,
        }));
        Ok(())
    }

    /// `read` of the stored rules table (`None` before any was stored), taken out of the cache
    /// and given back, so the table is never copied.
    async fn with_rules<T>(
        &self,
        read: impl FnOnce(Option<&crate::circulation::RulesTable>) -> T,
    ) -> Result<T> {
        let stream = StreamId::new(StreamKind::Rules, RULES_STREAM_ID);
        let (rules, version) = self.load::<CirculationRules>(&stream).await?;
        let found = read(rules.table.as_ref());
        self.keep(&stream, rules, version);
        Ok(found)
    }

    /// The limits policy that applies now to a member of `group` and an item of `item_type` at
    /// `branch`; `None` before any rules were stored.
    pub(super) async fn current_limits(
        &self,
        group: Option<&str>,
        item_type: Option<&str>,
        branch: Option<&str>,
    ) -> Result<Option<crate::circulation::LimitsPolicy>> {
        self.with_rules(|t| t.map(|t| limits_for(t, group, item_type, branch)))
            .await
    }

    /// The request policy that applies now to a member of `group` and an item of `item_type` at
    /// `branch`: the winning row's, or the defaults (also before any rules were stored).
    pub(super) async fn request_policy(
        &self,
        group: Option<&str>,
        item_type: Option<&str>,
        branch: Option<&str>,
    ) -> Result<crate::circulation::RequestPolicy> {
        self.with_rules(|t| {
            t.and_then(|t| request_for(t, group, item_type, branch))
                .unwrap_or_default()
        })
        .await
    }

    /// Whether the stored rules know `branch` (any branch is known while they declare no
    /// calendars, or none are stored).
    pub(super) async fn knows_branch(&self, branch: &str) -> Result<bool> {
        self.with_rules(|t| t.is_none_or(|t| t.knows_branch(branch)))
            .await
    }
}

/// The calendar of the branch a loan was made at, in the rules as they stand.
fn calendar_of<'r>(
    rules: &'r RulesNow,
    rental: &Rental,
) -> Option<&'r crate::circulation::Calendar> {
    let branch = rental.terms.as_ref()?.branch.as_deref()?;
    rules.table.as_ref()?.calendar(branch)
}

/// The limits policy a member of `group` has for an item of `item_type` at `branch`.
fn limits_for(
    table: &crate::circulation::RulesTable,
    group: Option<&str>,
    item_type: Option<&str>,
    branch: Option<&str>,
) -> crate::circulation::LimitsPolicy {
    let key = |v: Option<&str>| v.unwrap_or("*").to_owned();
    table
        .resolve(&key(group), &key(item_type), &key(branch))
        .limits
        .policy
        .clone()
}

/// The request policy of the row for a member of `group` and an item of `item_type` at
/// `branch`, if it names one.
fn request_for(
    table: &crate::circulation::RulesTable,
    group: Option<&str>,
    item_type: Option<&str>,
    branch: Option<&str>,
) -> Option<crate::circulation::RequestPolicy> {
    let key = |v: Option<&str>| v.unwrap_or("*").to_owned();
    table
        .resolve(&key(group), &key(item_type), &key(branch))
        .request
        .map(|r| r.policy.clone())
}

/// A branch the stored rules do not know is `BRANCH_NOT_FOUND` (any branch is known while the
/// rules declare no calendars, or none are stored).
fn check_branch(rules: &RulesNow, branch: &str) -> Result<()> {
    match &rules.table {
        Some(t) if !t.knows_branch(branch) => Err(Error::not_found(
            ErrorCode::BranchNotFound,
            "branch",
            branch,
        )),
        _ => Ok(()),
    }
}
