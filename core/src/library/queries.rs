//! Queries: the views, the log and the state of one rental.

use super::*;

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
            .cloned()
            .ok_or_else(|| Error::not_found(ErrorCode::MemberNotFound, "member", member_id))
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
        fold_views(self.engine.store.as_ref()).await
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

    /// The aggregate state of one rental, folded from its stream (for hosts that need more than the views).
    pub async fn rental(&self, rental_id: &str) -> Result<Rental> {
        let (r, _) = self
            .engine
            .load::<Rental>(&StreamId::new(StreamKind::Rental, rental_id))
            .await?;
        if r.status == RentalStatus::New {
            return Err(RentalError::NotFound(RentalId::new(rental_id)).into());
        }
        Ok(r)
    }
}
