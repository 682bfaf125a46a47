//! The synchronous payment step: the default points gateway, the call behind the circuit breaker, and `reserve_book`.

use super::route::{Plan, Step};
use super::*;

/// The default payment gateway: charges and refunds the member's [`PointAccount`] in the same store.
pub(super) struct PointsGateway {
    pub(super) engine: Arc<Engine>,
}

impl PointsGateway {
    /// The meta of a charge or refund: `system:charge:MEMBER:RENTAL`. The member is part of the
    /// id because command ids are library-wide: two members racing for one rental id make two
    /// charges, one of which is refunded — never one charge that counts for both.
    fn meta(member: &MemberId, key: &RentalId, what: &str) -> Meta {
        let command_id = CommandId::system_of(&[what, member.as_str(), key.as_str()]);
        Meta {
            actor: Actor::System,
            causation_id: command_id.to_string(),
            command_id,
            fingerprint: String::new(),
            fresh: false,
            at: None,
            correlation_id: key.to_string(),
            deferred: false,
            follow: false,
        }
    }
}

#[async_trait]
impl PaymentGateway for PointsGateway {
    async fn charge(
        &self,
        member: &MemberId,
        amount: Points,
        key: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError> {
        let charge = Step::Account(PointsCommand::ChargePoints {
            member: member.clone(),
            rental: key.clone(),
            points: amount,
        });
        let meta = Self::meta(member, key, "charge");
        match self.engine.run(Plan::one(charge), &meta).await {
            Ok(_) => Ok(PaymentReceipt {
                payment_id: points_payment_id(member, key),
            }),
            Err(Error::Points(crate::points::PointsError::InsufficientPoints {
                member,
                balance,
                needed,
            })) => Err(PaymentError::InsufficientPoints {
                member: member.to_string(),
                balance,
                needed,
            }),
            Err(Error::Points(crate::points::PointsError::NoAccount(member))) => {
                Err(PaymentError::NoAccount {
                    member: member.to_string(),
                })
            }
            Err(e) => Err(PaymentError::Unavailable(e.to_string())),
        }
    }

    async fn refund(&self, charge: &ChargeRef) -> Result<(), PaymentError> {
        let refund = Step::Account(PointsCommand::RefundPoints {
            member: charge.member.clone(),
            rental: charge.key.clone(),
        });
        let meta = Self::meta(&charge.member, &charge.key, "refund");
        self.engine
            .run(Plan::one(refund), &meta)
            .await
            .map(drop)
            .map_err(|e| PaymentError::Unavailable(e.to_string()))
    }
}

/// The payment id of a charge to `member`'s point account for `rental`: `points:MEMBER:RENTAL`
/// (joined, not formatted: it is made for every reservation).
fn points_payment_id(member: &MemberId, rental: &RentalId) -> String {
    ["points:", member.as_str(), ":", rental.as_str()].concat()
}

/// Whether the request policy takes a hold for pickup at `pickup` from a member who has `held`
/// holds now; the refusal's reason.
fn hold_allowed(
    policy: &crate::circulation::RequestPolicy,
    pickup: Option<&str>,
    held: usize,
) -> std::result::Result<(), String> {
    if !policy.holds {
        return Err("the request policy takes no holds for this member and item".into());
    }
    if !policy.picks_up_at(pickup) {
        return Err(format!(
            "holds cannot be collected at branch {}; the request policy's pickup branches are {}",
            pickup.unwrap_or("-"),
            policy
                .pickup_branches
                .as_deref()
                .unwrap_or_default()
                .join(", ")
        ));
    }
    if let Some(max) = policy.max_holds {
        if held as u64 >= max {
            return Err(format!(
                "the member has {held} holds, the most the request policy allows ({max})"
            ));
        }
    }
    Ok(())
}

impl Library {
    /// The synchronous step: check, charge, then store the rental; refund if storing fails.
    pub(super) async fn reserve_book(
        &self,
        book: BookId,
        member: MemberId,
        rental: RentalId,
        delivery_address: Option<String>,
        hold: Option<crate::holds::HoldTerms>,
        meta: &Meta,
    ) -> Result<Vec<Envelope>> {
        if !meta.fresh {
            if let Some(done) = self.engine.recorded(meta).await? {
                return Ok(done);
            }
        }
        let mut attempt = 0;
        loop {
            let result = self
                .reserve_once(
                    book.clone(),
                    member.clone(),
                    rental.clone(),
                    delivery_address.clone(),
                    hold.clone(),
                    meta,
                )
                .await;
            match result {
                // The member's account moved while the charge was decided (another charge or
                // a top-up): decide again on the fresh account.
                Err(Error::Storage(StoreError::Conflict { .. }))
                    if self.in_store_payment && attempt + 1 < MAX_CONFLICT_RETRIES =>
                {
                    attempt += 1;
                }
                Err(e) if e.is_rejection() => return self.engine.refused(e, meta).await,
                other => return other,
            }
        }
    }

    /// One try of [`reserve_book`](Library::reserve_book), after its command id was found new.
    async fn reserve_once(
        &self,
        book: BookId,
        member: MemberId,
        rental: RentalId,
        delivery_address: Option<String>,
        mut hold: Option<crate::holds::HoldTerms>,
        meta: &Meta,
    ) -> Result<Vec<Envelope>> {
        let stream = StreamId::new(StreamKind::Rental, rental.as_str());
        let book_stream = StreamId::new(StreamKind::Book, book.as_str());
        let (b, book_version) = self.engine.load::<Book>(&book_stream).await?;
        // A hold waits when no copy is free; it is refused only to a member who has the title.
        let availability = match &hold {
            Some(h) => b.check_holdable(&book, &member, h.copy),
            None => b.check_available(&book),
        };
        let (exists, fee) = (b.exists(), b.fee);
        let (item_type, branch) = (b.item_type.clone(), b.branch.clone());
        self.engine.keep(&book_stream, b, book_version);
        if !exists {
            return Err(Error::not_found(
                ErrorCode::BookNotFound,
                "book",
                book.as_str(),
            ));
        }
        let member_stream = StreamId::new(StreamKind::Member, member.as_str());
        let (m, member_version) = self.engine.load::<Member>(&member_stream).await?;
        if m.id.is_none() {
            return Err(Error::not_found(
                ErrorCode::MemberNotFound,
                "member",
                member.as_str(),
            ));
        }
        // A blocked member cannot reserve (checked before anything is charged; the loan's
        // start checks again, under the member's lock).
        let limits = crate::members::LoanLimits {
            limits: self
                .engine
                .current_limits(m.group.as_deref(), item_type.as_deref(), branch.as_deref())
                .await?,
            item_limit: None,
        };
        let now = self.engine.clock.now();
        if let Some(h) = &mut hold {
            if let Some(t) = h.not_needed_after {
                if t <= now {
                    self.engine.keep(&member_stream, m, member_version);
                    return Err(Error::InvalidInput(format!(
                        "not_needed_after {} is not in the future",
                        t.to_rfc3339()
                    )));
                }
            }
            if h.pickup_branch.is_none() {
                h.pickup_branch.clone_from(&branch);
            }
            if let Some(pickup) = &h.pickup_branch {
                if !self.engine.knows_branch(pickup).await? {
                    self.engine.keep(&member_stream, m, member_version);
                    return Err(Error::not_found(
                        ErrorCode::BranchNotFound,
                        "branch",
                        pickup,
                    ));
                }
            }
        }
        // The request policy of the member's group, the item type and the pickup branch.
        let mut fee = fee;
        if let Some(h) = &mut hold {
            let pickup = h.pickup_branch.clone();
            let policy = self
                .engine
                .request_policy(m.group.as_deref(), item_type.as_deref(), pickup.as_deref())
                .await?;
            let held = self.engine.holds_of(&member);
            if let Err(why) = hold_allowed(&policy, pickup.as_deref(), held) {
                self.engine.keep(&member_stream, m, member_version);
                return Err(Error::HoldNotAllowed(why));
            }
            fee = policy.fee.map_or(fee, Points);
            if policy.charge == crate::circulation::Charge::Collect {
                h.collect_fee = Some(fee.0);
                fee = Points(0);
            }
        }
        let block = m.block(
            &member,
            crate::members::Borrowing::Reserve,
            &limits,
            now,
            None,
        );
        self.engine.keep(&member_stream, m, member_version);
        if let Some(block) = block {
            return Err(block.into());
        }
        let (state, version) = self.engine.load::<Rental>(&stream).await?;
        let ctx = self.engine.context(meta);
        let mut cmd = RentalCommand::ReserveBook {
            rental: rental.clone(),
            member: member.clone(),
            book: book.clone(),
            fee,
            payment_id: String::new(),
            delivery_address,
            hold,
        };
        // Decide once before charging: who may reserve, and whether the rental id is free.
        state.decide(&cmd, &ctx)?;
        availability?;
        // The members' point accounts live in this store: the charge is decided on the account
        // and stored in the reservation's own commit — one atomic, durable write, under the
        // reservation's command id.
        if self.in_store_payment && fee.0 > 0 {
            return self
                .reserve_charged_in_store(
                    &member, &rental, fee, &stream, version, state, cmd, meta, &ctx,
                )
                .await;
        }
        // A hold paid on collecting (or a free one) charges nothing now.
        let payment_id = if fee.0 == 0 {
            String::new()
        } else {
            self.call_gateway(self.gateway.charge(&member, fee, &rental))
                .await?
                .payment_id
        };
        if let RentalCommand::ReserveBook { payment_id: id, .. } = &mut cmd {
            id.clone_from(&payment_id);
        }
        let reserved = state.decide(&cmd, &ctx)?;
        let events = reserved.iter().cloned().map(Event::from).collect();
        let append = StreamAppend {
            stream: stream.clone(),
            expected_version: version,
            events: Engine::envelopes(&stream, version, meta, &ctx, events),
        };
        match self
            .engine
            .store_commit(Engine::commit(meta, vec![append]), meta)
            .await
        {
            Ok(stored) => {
                // The new rental, folded: its saga loads it next.
                let mut rental_state = state;
                for e in &reserved {
                    rental_state.apply(e);
                }
                self.engine
                    .keep(&stream, rental_state, version + reserved.len() as u64);
                self.engine.relay_stored(&stored).await;
                Ok(stored)
            }
            Err(StoreError::Conflict { .. } | StoreError::CommandApplied(_)) if fee.0 == 0 => {
                // Nothing was charged: a concurrent retry's outcome is ours, or the id is taken.
                if let Some(done) = self.engine.recorded(meta).await? {
                    return Ok(done);
                }
                Err(RentalError::AlreadyExists(rental).into())
            }
            Err(StoreError::Conflict { .. } | StoreError::CommandApplied(_)) => {
                // Someone stored this rental id (or used this command id) first. When that was
                // a concurrent retry of this very command, its outcome is ours.
                let recorded = self.engine.recorded(meta).await;
                if let Ok(Some(done)) = recorded {
                    return Ok(done);
                }
                // If the winner's payment is this very charge (a gateway keyed by rental id
                // returned the same payment twice), the money is theirs: no refund. Otherwise our
                // charge paid for nothing and goes back.
                let (winner, _) = self.engine.load::<Rental>(&stream).await?;
                if winner.payment_id.as_deref() != Some(payment_id.as_str()) {
                    let charge = ChargeRef {
                        key: rental.clone(),
                        member,
                        amount: fee,
                    };
                    if let Err(refund) = self.call_gateway(self.gateway.refund(&charge)).await {
                        return Err(Error::Storage(StoreError::Backend(format!(
                            "rental {rental} was taken concurrently and the charge for it could not be refunded: {refund}"
                        ))));
                    }
                }
                // The command id went to a different command (COMMAND_ID_REUSED), or the rental
                // id to another reservation.
                recorded?;
                Err(RentalError::AlreadyExists(rental).into())
            }
            Err(e) if fee.0 == 0 => Err(e.into()),
            Err(e) => {
                let charge = ChargeRef {
                    key: rental.clone(),
                    member,
                    amount: fee,
                };
                match self.call_gateway(self.gateway.refund(&charge)).await {
                    Ok(()) => Err(e.into()),
                    Err(refund) => Err(Error::Storage(StoreError::Backend(format!("{e}; the charge for rental {rental} could not be refunded either: {refund}")))),
                }
            }
        }
    }

    /// The reservation with its charge on the member's point account, in one commit. A stream
    /// that moved meanwhile (the account, by another charge or top-up) is `CONFLICT`, which
    /// [`reserve_book`](Library::reserve_book) answers by deciding again.
    #[allow(clippy::too_many_arguments)]
    async fn reserve_charged_in_store(
        &self,
        member: &MemberId,
        rental: &RentalId,
        fee: Points,
        stream: &StreamId,
        version: u64,
        state: Box<Rental>,
        mut cmd: RentalCommand,
        meta: &Meta,
        ctx: &Context,
    ) -> Result<Vec<Envelope>> {
        self.shutdown.check()?;
        let account_stream = StreamId::new(StreamKind::Account, member.as_str());
        let (account, account_version) = self.engine.load::<PointAccount>(&account_stream).await?;
        let system = Context {
            actor: Actor::System,
            ..ctx.clone()
        };
        let charge = PointsCommand::ChargePoints {
            member: member.clone(),
            rental: rental.clone(),
            points: fee,
        };
        let charged = match account.decide(&charge, &system) {
            Ok(events) => events,
            Err(e) => {
                self.engine.keep(&account_stream, account, account_version);
                // The same errors, codes and messages a gateway's refusal gives.
                return Err(match e {
                    crate::points::PointsError::InsufficientPoints {
                        member,
                        balance,
                        needed,
                    } => Error::Payment(PaymentError::InsufficientPoints {
                        member: member.to_string(),
                        balance,
                        needed,
                    }),
                    crate::points::PointsError::NoAccount(member) => {
                        Error::Payment(PaymentError::NoAccount {
                            member: member.to_string(),
                        })
                    }
                    other => other.into(),
                });
            }
        };
        if let RentalCommand::ReserveBook { payment_id, .. } = &mut cmd {
            *payment_id = points_payment_id(member, rental);
        }
        let reserved = match state.decide(&cmd, ctx) {
            Ok(events) => events,
            Err(e) => {
                self.engine.keep(&account_stream, account, account_version);
                return Err(e.into());
            }
        };
        let charged_len = charged.len() as u64;
        let appends = vec![
            // The charge first, as a gateway's charge came first: positions read as before.
            StreamAppend {
                stream: account_stream.clone(),
                expected_version: account_version,
                events: Engine::envelopes(
                    &account_stream,
                    account_version,
                    meta,
                    ctx,
                    charged.iter().cloned().map(Event::from).collect(),
                ),
            },
            StreamAppend {
                stream: stream.clone(),
                expected_version: version,
                events: Engine::envelopes(
                    stream,
                    version,
                    meta,
                    ctx,
                    reserved.iter().cloned().map(Event::from).collect(),
                ),
            },
        ];
        match self
            .engine
            .store_commit(Engine::commit(meta, appends), meta)
            .await
        {
            Ok(stored) => {
                let mut account = account;
                for e in &charged {
                    account.apply(e);
                }
                self.engine
                    .keep(&account_stream, account, account_version + charged_len);
                // The new rental, folded: its saga loads it next.
                let mut rental_state = state;
                for e in &reserved {
                    rental_state.apply(e);
                }
                self.engine
                    .keep(stream, rental_state, version + reserved.len() as u64);
                self.engine.relay_stored(&stored).await;
                Ok(stored)
            }
            Err(StoreError::Conflict {
                stream: moved,
                expected,
                actual,
            }) => {
                if moved == account_stream.to_string() {
                    // The account moved on: the next try folds it from the store.
                    self.engine.stale(&account_stream, actual);
                } else {
                    self.engine.keep(&account_stream, account, account_version);
                }
                if let Some(done) = self.engine.recorded(meta).await? {
                    return Ok(done);
                }
                if moved == stream.to_string() {
                    // The rental id was taken by another reservation.
                    return Err(RentalError::AlreadyExists(rental.clone()).into());
                }
                Err(Error::Storage(StoreError::Conflict {
                    stream: moved,
                    expected,
                    actual,
                }))
            }
            Err(StoreError::CommandApplied(_)) => {
                self.engine.keep(&account_stream, account, account_version);
                match self.engine.recorded(meta).await? {
                    Some(done) => Ok(done),
                    None => Err(RentalError::AlreadyExists(rental.clone()).into()),
                }
            }
            Err(e) => {
                self.engine.keep(&account_stream, account, account_version);
                Err(e.into())
            }
        }
    }

    /// Calls the payment gateway behind the circuit breaker, with the configured timeout.
    /// Closing the library ends the wait with `LIBRARY_CLOSED` (timeout or not).
    pub(super) async fn call_gateway<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, PaymentError>> + Send,
    ) -> Result<T> {
        self.shutdown.check()?;
        // A host's gateway acts on what it is told: the reactions that led to the call are on
        // the disk first. (The in-store point accounts are in the log itself, after them.)
        if !self.in_store_payment {
            self.engine.sync().await?;
        }
        let clock = &self.engine.clock;
        let permit = self
            .breaker
            .acquire(clock.now())
            .map_err(|retry_after| Error::PaymentUnavailable { retry_after })?;
        let answer = async {
            // The members' point accounts answer from this store: no timer is armed for them.
            let limit = self
                .breaker
                .config()
                .call_timeout
                .filter(|_| !self.in_store_payment);
            match limit {
                Some(limit) => match select(Box::pin(call), clock.sleep(limit)).await {
                    Either::Left((r, _)) => r,
                    Either::Right(((), _)) => Err(PaymentError::Unavailable(format!(
                        "no answer within {} ms",
                        limit.as_millis()
                    ))),
                },
                None => call.await,
            }
        };
        // Closed while waiting: the gateway did not fail, so the breaker is not told (and a
        // closed library makes no more calls).
        let result = self.shutdown.race(answer).await?;
        self.breaker.record(
            permit,
            clock.now(),
            matches!(&result, Err(e) if e.is_outage()),
        );
        result.map_err(Error::Payment)
    }

    /// The circuit breaker's state now.
    pub fn payment_circuit(&self) -> BreakerState {
        self.breaker.state(self.engine.clock.now())
    }
}
