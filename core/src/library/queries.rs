//! Queries: the views, the log and the state of one rental — for the host, and through a
//! [`Reader`] for a caller whose reads are authorized like commands.

use super::*;

/// The queries a caller may make as an actor, authorized like commands: anyone reads the book
/// list; a member reads only their own page and rentals; the log, the dead letters (and their
/// replay) and the consumers' status are for librarians. The [`Actor::System`] actor is
/// lendkit's own and reads nothing through a reader.
///
/// The [`Library`]'s own query methods trust their caller (the host application, which decides
/// itself what to show to whom); a host that passes its users' identities through uses a reader.
///
/// ```
/// # use lendkit_core::{ids::Actor, ErrorCode};
/// # fn demo(lib: &lendkit_core::Library) {
/// let kim = Actor::member("m-1");
/// let err = lib.reader(&kim).member_page("m-2").unwrap_err();
/// assert_eq!(err.code(), ErrorCode::Unauthorized);
/// # }
/// ```
pub struct Reader<'a> {
    library: &'a Library,
    actor: &'a Actor,
}

impl Library {
    /// The queries `actor` may make, each checked before it runs (see [`Reader`]).
    pub fn reader<'a>(&'a self, actor: &'a Actor) -> Reader<'a> {
        Reader {
            library: self,
            actor,
        }
    }
}

impl Reader<'_> {
    fn refuse(&self, what: &str, who: &str) -> Error {
        Error::Unauthorized(format!("{} may not read {what}; {who}", self.actor))
    }

    fn librarian(&self, what: &str) -> Result<()> {
        Library::caller(self.actor)?;
        if self.actor.is_librarian() {
            Ok(())
        } else {
            Err(self.refuse(what, "only librarians may"))
        }
    }

    fn member_or_librarian(&self, member_id: &str, what: &str) -> Result<()> {
        Library::caller(self.actor)?;
        match self.actor {
            Actor::Librarian(_) => Ok(()),
            Actor::Member(m) if m.as_str() == member_id => Ok(()),
            _ => Err(self.refuse(what, "a member may read only their own")),
        }
    }

    /// Every book with its stock and status: anyone may read it.
    pub fn book_list(&self) -> Result<Vec<BookRow>> {
        Library::caller(self.actor)?;
        Ok(self.library.book_list())
    }

    /// A member's page: that member or a librarian.
    pub fn member_page(&self, member_id: &str) -> Result<MemberPage> {
        self.member_or_librarian(member_id, &format!("the page of member {member_id}"))?;
        self.library.member_page(member_id)
    }

    /// One rental's state: its member or a librarian (another member gets `UNAUTHORIZED`,
    /// whether or not the rental exists).
    pub async fn rental(&self, rental_id: &str) -> Result<Rental> {
        Library::caller(self.actor)?;
        let rental = self.library.rental(rental_id).await;
        if self.actor.is_librarian() {
            return rental;
        }
        match (&rental, self.actor) {
            (Ok(r), Actor::Member(m)) if r.member.as_ref() == Some(m) => rental,
            _ => Err(self.refuse(
                &format!("rental {rental_id}"),
                "a member may read only their own",
            )),
        }
    }

    /// Which circulation rules apply to a member borrowing a book: that member or a librarian.
    pub async fn explain_policy(
        &self,
        member_id: &str,
        book_id: &str,
        branch: Option<&str>,
    ) -> Result<serde_json::Value> {
        self.member_or_librarian(member_id, &format!("the rules of member {member_id}"))?;
        self.library
            .explain_policy(member_id, book_id, branch)
            .await
    }

    /// The blocks a member would meet now: that member or a librarian.
    pub async fn member_blocks(&self, member_id: &str) -> Result<serde_json::Value> {
        self.member_or_librarian(member_id, &format!("the blocks of member {member_id}"))?;
        self.library.member_blocks(member_id).await
    }

    /// The stored events: librarians.
    pub async fn events(&self, from_position: u64, limit: usize) -> Result<Vec<Envelope>> {
        self.librarian("the event log")?;
        self.library.events(from_position, limit).await
    }

    /// The position of the newest stored event: librarians.
    pub async fn head(&self) -> Result<u64> {
        self.librarian("the event log")?;
        self.library.head().await
    }

    /// The overdue list: librarians.
    pub async fn overdue_list(
        &self,
        now: crate::ids::Timestamp,
        branch: Option<&str>,
    ) -> Result<Vec<crate::views::OverdueRow>> {
        self.librarian("the overdue list")?;
        self.library.overdue_list(now, branch).await
    }

    /// The hold shelf: librarians.
    pub fn hold_shelf(&self, branch: Option<&str>) -> Result<Vec<crate::views::HoldShelfRow>> {
        self.librarian("the hold shelf")?;
        Ok(self.library.hold_shelf(branch))
    }

    /// The dead letters: librarians.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.librarian("the dead letters")?;
        self.library.dead_letters().await
    }

    /// Replays a dead letter: librarians.
    pub async fn replay_dead_letter(&self, id: &str) -> Result<()> {
        self.librarian("the dead letters")?;
        self.library.replay_dead_letter(id).await
    }

    /// The consumers' progress: librarians.
    pub async fn consumers(&self) -> Result<Vec<ConsumerStatus>> {
        self.librarian("the consumers' status")?;
        Ok(self.library.consumers().await)
    }
}

impl Library {
    /// Every book with its stock and status, as of the last [`settle`](Library::settle).
    pub fn book_list(&self) -> Vec<BookRow> {
        self.book_list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rows()
    }

    /// A member's page: points and rentals, as of the last [`settle`](Library::settle).
    pub fn member_page(&self, member_id: &str) -> Result<MemberPage> {
        self.member_pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .page(member_id)
            .ok_or_else(|| Error::not_found(ErrorCode::MemberNotFound, "member", member_id))
    }

    /// The holds whose copies wait on the pickup shelf of `branch` (every branch: `None`): hold,
    /// book, member, deadline; earliest deadline first within a branch. As of the last
    /// [`settle`](Library::settle).
    pub fn hold_shelf(&self, branch: Option<&str>) -> Vec<crate::views::HoldShelfRow> {
        self.member_pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hold_shelf(branch)
    }

    /// Copies of both views as they are now.
    pub fn views(&self) -> (BookList, MemberPages) {
        (
            self.book_list
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            self.member_pages
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    /// Both views built afresh from the whole log (for checks: after `settle`, they equal [`views`](Library::views)).
    pub async fn rebuild_views(&self) -> Result<(BookList, MemberPages)> {
        let (books, pages, _) = fold_views(self.engine.store.as_ref()).await?;
        Ok((books, pages))
    }

    /// The loans under circulation rules past their due date at `now`, earliest due first:
    /// one [`OverdueRow`](crate::views::OverdueRow) each, with the days late and the fine it has run up so far, counted on
    /// its branch's calendar under the terms it was made under. `branch` keeps one branch's.
    pub async fn overdue_list(
        &self,
        now: crate::ids::Timestamp,
        branch: Option<&str>,
    ) -> Result<Vec<crate::views::OverdueRow>> {
        let late: Vec<(RentalId, crate::library::ScheduledLoan)> = self
            .engine
            .due_work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .overdue(now)
            .into_iter()
            .filter(|(_, l)| branch.is_none() || l.branch.as_deref() == branch)
            .map(|(r, l)| (r.clone(), l.clone()))
            .collect();
        let rules_stream = StreamId::new(StreamKind::Rules, crate::circulation::RULES_STREAM_ID);
        let (rules, rv) = self
            .engine
            .load::<crate::circulation::CirculationRules>(&rules_stream)
            .await?;
        let mut rows = Vec::with_capacity(late.len());
        for (rental, loan) in late {
            let calendar = rules
                .table
                .as_ref()
                .zip(loan.branch.as_deref())
                .and_then(|(t, b)| t.calendar(b));
            rows.push(crate::views::OverdueRow {
                rental_id: rental.to_string(),
                member_id: loan.member.to_string(),
                book_id: loan.book.to_string(),
                branch: loan.branch.clone(),
                due_at: loan.due.to_rfc3339(),
                days_late: loan.due.days_until(now),
                fee_so_far: loan.fine.fine(loan.due, now, calendar),
            });
        }
        self.engine.keep(&rules_stream, rules, rv);
        Ok(rows)
    }

    /// Stored events with `position >= from_position`, in order (at most `limit`).
    pub async fn events(&self, from_position: u64, limit: usize) -> Result<Vec<Envelope>> {
        Ok(self
            .engine
            .store
            .read_all(from_position.saturating_sub(1), limit)
            .await?)
    }

    /// The position of the newest event handed to the consumers: every committed event up to
    /// here is on its way to the policies and views. Readable without waiting.
    pub fn committed_position(&self) -> u64 {
        self.engine.relayed_at.load(Ordering::SeqCst)
    }

    /// The position of the newest stored event.
    pub async fn head(&self) -> Result<u64> {
        Ok(self.engine.store.head().await?)
    }

    /// Which circulation rules apply when `member_id` borrows `book_id` at `branch` (`*` when
    /// none is given): the rules row that wins for the member's group and the book's item type,
    /// every other matching row and why it lost, and the resolved policies — as JSON:
    /// `{"version", "member_id", "book_id", "group", "item_type", "branch", "explanation":
    /// {"winner", "beaten", "policies"}}`. `version` is the stored rules' version; 0 means no
    /// rules were stored yet and the library's defaults apply (a `* * *` row whose loan is
    /// `loan_days` long with `max_renewals` renewals, no fine, no limits).
    pub async fn explain_policy(
        &self,
        member_id: &str,
        book_id: &str,
        branch: Option<&str>,
    ) -> Result<serde_json::Value> {
        let member_stream = StreamId::new(StreamKind::Member, member_id);
        let (member, mv) = self.engine.load::<Member>(&member_stream).await?;
        let group = member.group.clone();
        if member.id.is_none() {
            // Any text can be asked for: an unknown member leaves nothing cached.
            self.engine.release(&member_stream, mv);
            return Err(Error::not_found(
                ErrorCode::MemberNotFound,
                "member",
                member_id,
            ));
        }
        self.engine.keep(&member_stream, member, mv);
        let book_stream = StreamId::new(StreamKind::Book, book_id);
        let (book, bv) = self.engine.load::<Book>(&book_stream).await?;
        if !book.exists() {
            self.engine.release(&book_stream, bv);
            return Err(Error::not_found(ErrorCode::BookNotFound, "book", book_id));
        }
        let item_type = book.item_type.clone();
        self.engine.keep(&book_stream, book, bv);
        let rules_stream = StreamId::new(StreamKind::Rules, crate::circulation::RULES_STREAM_ID);
        let (rules, rv) = self
            .engine
            .load::<crate::circulation::CirculationRules>(&rules_stream)
            .await?;
        let table = match &rules.table {
            Some(t) => t.clone(),
            None => self.default_rules()?,
        };
        let version = rules.version;
        self.engine.keep(&rules_stream, rules, rv);
        let (group, item_type, branch) = (
            group.as_deref().unwrap_or("*"),
            item_type.as_deref().unwrap_or("*"),
            branch.unwrap_or("*"),
        );
        let explanation = table.explain(group, item_type, branch);
        Ok(serde_json::json!({
            "version": version,
            "member_id": member_id,
            "book_id": book_id,
            "group": group,
            "item_type": item_type,
            "branch": branch,
            "explanation": serde_json::to_value(&explanation)
                .map_err(|e| Error::Internal(format!("an explanation did not serialize: {e}")))?,
        }))
    }

    /// The blocks `member_id` would meet now if they borrowed, renewed or reserved (under the
    /// limits of the rules' row for their group, any item type and branch), as JSON: a list of
    /// `{"action", "code", "message"}` — empty when nothing stops them. The same check the
    /// commands make, in `Member::block`; borrowing counts the loan it would add.
    pub async fn member_blocks(&self, member_id: &str) -> Result<serde_json::Value> {
        let stream = StreamId::new(StreamKind::Member, member_id);
        let (member, v) = self.engine.load::<Member>(&stream).await?;
        if member.id.is_none() {
            self.engine.release(&stream, v);
            return Err(Error::not_found(
                ErrorCode::MemberNotFound,
                "member",
                member_id,
            ));
        }
        let limits = crate::members::LoanLimits {
            limits: self
                .engine
                .current_limits(member.group.as_deref(), None, None)
                .await?,
            item_limit: None,
        };
        let now = self.engine.clock.now();
        let id = MemberId::new(member_id);
        // A rental id no loan can have: borrowing counts one loan more.
        let new = RentalId::new("");
        let blocks: Vec<serde_json::Value> = [
            (crate::members::Borrowing::Borrow, "borrow", Some(&new)),
            (crate::members::Borrowing::Renew, "renew", None),
            (crate::members::Borrowing::Reserve, "reserve", None),
        ]
        .into_iter()
        .filter_map(|(action, name, adding)| {
            member.block(&id, action, &limits, now, adding).map(|e| {
                serde_json::json!({"action": name, "code": e.code().as_str(), "message": e.to_string()})
            })
        })
        .collect();
        self.engine.keep(&stream, member, v);
        Ok(serde_json::Value::Array(blocks))
    }

    /// The circulation rules stored in the library — their version and table — or `None` before
    /// any were stored.
    pub async fn circulation_rules(&self) -> Result<Option<(u64, crate::circulation::RulesTable)>> {
        let stream = StreamId::new(StreamKind::Rules, crate::circulation::RULES_STREAM_ID);
        let (rules, v) = self
            .engine
            .load::<crate::circulation::CirculationRules>(&stream)
            .await?;
        let stored = rules.table.clone().map(|t| (rules.version, t));
        self.engine.keep(&stream, rules, v);
        Ok(stored)
    }

    /// The rules a library runs with before any were stored: its `loan_days` and
    /// `max_renewals` for everyone, no fine, no limits, nothing aged to lost.
    fn default_rules(&self) -> Result<crate::circulation::RulesTable> {
        let r = &self.engine.rules;
        let text = format!(
            "[policies.loan.default]\nperiod = \"{} days\"\nmax_renewals = {}\n\
             [policies.fine.none]\npoints = 0\nper = \"day\"\n\
             [policies.limits.none]\n\
             [policies.lost.none]\naged_to_lost_after_days = {}\nreplacement_cost = 0\n\
             [[rules]]\nloan = \"default\"\nfine = \"none\"\nlimits = \"none\"\nlost = \"none\"\n",
            r.loan_days.max(1),
            r.max_renewals,
            crate::ids::MAX_AMOUNT / crate::circulation::TimeUnit::Days.millis(),
        );
        crate::circulation::RulesTable::from_toml(&text).map_err(Into::into)
    }

    /// The aggregate state of one rental, folded from its stream (for hosts that need more than the views).
    pub async fn rental(&self, rental_id: &str) -> Result<Rental> {
        let stream = StreamId::new(StreamKind::Rental, rental_id);
        let (r, version) = self.engine.load::<Rental>(&stream).await?;
        if r.status == RentalStatus::New {
            // Any text can be asked for: a stream that holds nothing leaves nothing cached.
            self.engine.release(&stream, version);
            return Err(RentalError::NotFound(RentalId::new(rental_id)).into());
        }
        // The fold goes back (a copy), so the rental's next command need not read it again.
        self.engine.keep(&stream, r.clone(), version);
        Ok(*r)
    }
}
