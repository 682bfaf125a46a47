//! The views' snapshot: both views and the schedule of due work, saved with the log position
//! they were folded up to, so that opening a library folds only the events after it instead of
//! the whole log.
//!
//! A snapshot is a cache of what the log says, never a second truth: it is saved when a durable
//! library closes (after the log is synced up to its position), and it is used only when it was
//! written by this lendkit version in this format and its position is not past the head of the
//! log; anything else — no snapshot, another version, a damaged one, a store that keeps none —
//! and the views are folded from the whole log, as they always could be.
//! [`Library::rebuild_views`] always folds the whole log, and the tests hold the two equal.

use super::builder::fold_views_after;
use super::due::DueWork;
use super::*;
use crate::event::SCHEMA_VERSION;
use crate::views::{BookList, MemberPages};

/// The snapshot's name in the store.
const VIEWS: &str = "views";

/// Bumped whenever what a view keeps, or how it folds an event, changes in a way a saved
/// snapshot cannot follow. (A snapshot from another lendkit version is never used either.)
const FORMAT: u32 = 2;

/// The lendkit version that wrote a snapshot.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The saved form (borrowed, to save without copying the views).
#[derive(serde::Serialize)]
struct Saving<'a> {
    format: u32,
    lendkit: &'a str,
    schema: u32,
    book_list: &'a BookList,
    member_pages: &'a MemberPages,
    due: &'a DueWork,
}

/// The saved form, read back.
#[derive(serde::Deserialize)]
struct Saved {
    format: u32,
    lendkit: String,
    schema: u32,
    book_list: BookList,
    member_pages: MemberPages,
    due: DueWork,
}

/// The views at the head of the log: from the store's snapshot and the events after it, or
/// folded from the whole log when there is no snapshot this build can use.
/// Also returns the position of the snapshot used (0: none).
pub(super) async fn load_views(
    store: &dyn EventStore,
) -> Result<((BookList, MemberPages, DueWork), u64)> {
    let Some((position, body)) = store.snapshot(VIEWS).await? else {
        return Ok((fold_views_after(store, Default::default(), 0).await?, 0));
    };
    let saved = usable(store, position, &body).await?;
    // The bytes are not needed beside the views decoded from them.
    drop(body);
    let views = match saved {
        Some(saved) => {
            let start = (saved.book_list, saved.member_pages, saved.due);
            (fold_views_after(store, start, position).await?, position)
        }
        None => (fold_views_after(store, Default::default(), 0).await?, 0),
    };
    Ok(views)
}

/// The snapshot saved at `position`, if this build can use it.
async fn usable(store: &dyn EventStore, position: u64, body: &[u8]) -> Result<Option<Saved>> {
    let head = store.head().await?;
    let saved = match serde_json::from_slice::<Saved>(body) {
        Ok(saved) => saved,
        Err(e) => {
            tracing::warn!(target: "lendkit::store", position, error = %e, "the views' snapshot cannot be read; folding the whole log");
            return Ok(None);
        }
    };
    if saved.format != FORMAT || saved.lendkit != VERSION || saved.schema != SCHEMA_VERSION {
        tracing::debug!(target: "lendkit::store", format = saved.format, lendkit = %saved.lendkit, "the views' snapshot is from another version; folding the whole log");
        return Ok(None);
    }
    if position > head {
        // The log lost its tail after the snapshot was saved (it never should: the log is
        // synced first); the snapshot would tell of events that are not there.
        tracing::warn!(target: "lendkit::store", position, head, "the views' snapshot is ahead of the log; folding the whole log");
        return Ok(None);
    }
    tracing::debug!(target: "lendkit::store", position, head, "views from their snapshot");
    Ok(Some(saved))
}

impl Library {
    /// Saves both views and the schedule of due work as the store's snapshot, at the log
    /// position they have reached (syncing the log up to there first), so that the next open
    /// folds only the events after it. Returns that position (0: nothing was saved, the log is
    /// empty). A durable library does this when it closes; calling it at other times (after a
    /// long import, say) only makes the next open faster. A store without snapshots keeps
    /// nothing.
    pub async fn save_views_snapshot(&self) -> Result<u64> {
        let book_list = self
            .book_list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let member_pages = self
            .member_pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let due = self
            .engine
            .due_work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // Each view passes over what it has seen, so the earliest of their positions is where
        // the next open resumes folding.
        let position = book_list
            .position()
            .min(member_pages.position())
            .min(due.position());
        if position == 0 {
            return Ok(0);
        }
        let body = serde_json::to_vec(&Saving {
            format: FORMAT,
            lendkit: VERSION,
            schema: SCHEMA_VERSION,
            book_list: &book_list,
            member_pages: &member_pages,
            due: &due,
        })
        .map_err(|e| Error::Internal(format!("the views cannot be saved: {e}")))?;
        // Never ahead of what survives a crash: the log up to `position` is on the disk first.
        self.engine.store.sync().await?;
        self.engine
            .store
            .save_snapshot(VIEWS, position, body)
            .await?;
        self.views_saved_at.store(position, Ordering::SeqCst);
        tracing::debug!(target: "lendkit::store", position, "views' snapshot saved");
        Ok(position)
    }

    /// How many events the views have folded since their last snapshot (the one this library
    /// opened from, or saved since): what the next open would fold on top of it.
    pub fn views_unsaved(&self) -> u64 {
        let at = self
            .book_list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .position()
            .min(
                self.member_pages
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .position(),
            );
        at.saturating_sub(self.views_saved_at.load(Ordering::SeqCst))
    }
}
