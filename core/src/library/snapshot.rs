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
use crate::views::{BookList, MemberPages, View};

/// The snapshot's name in the store.
const VIEWS: &str = "views";

/// Bumped whenever what a view keeps, or how it folds an event, changes in a way a saved
/// snapshot cannot follow. (A snapshot from another lendkit version is never used either.)
const FORMAT: u32 = 3;

/// The lendkit version that wrote a snapshot.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Who wrote a snapshot (the rest of it passed over unread).
#[derive(serde::Deserialize)]
struct Written {
    format: u32,
    lendkit: String,
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
        // Another version's views need not read as this one's: only say "damaged" when the
        // snapshot does not even say which version wrote it.
        Err(e) => {
            match serde_json::from_slice::<Written>(body) {
                Ok(w) if w.format != FORMAT || w.lendkit != VERSION => {
                    tracing::debug!(target: "lendkit::store", format = w.format, lendkit = %w.lendkit, "the views' snapshot is from another version; folding the whole log");
                }
                _ => {
                    tracing::warn!(target: "lendkit::store", position, error = %e, "the views' snapshot cannot be read; folding the whole log");
                }
            }
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
        // Each view is written straight into the body under its own lock (a copy of the member
        // pages of a large library would be tens of megabytes more at close). They need not be
        // at one position: each passes over what it has seen, so the earliest of their
        // positions is where the next open resumes folding.
        let failed =
            |e: serde_json::Error| Error::Internal(format!("the views cannot be saved: {e}"));
        let mut body = format!(
            r#"{{"format":{FORMAT},"lendkit":{},"schema":{SCHEMA_VERSION}"#,
            serde_json::to_string(VERSION).map_err(failed)?
        )
        .into_bytes();
        // One view, under its lock: its key, its JSON, and its position.
        fn part<V: View + serde::Serialize>(
            body: &mut Vec<u8>,
            key: &str,
            view: &Mutex<V>,
        ) -> serde_json::Result<u64> {
            let view = view.lock().unwrap_or_else(PoisonError::into_inner);
            body.extend_from_slice(format!(",\"{key}\":").as_bytes());
            serde_json::to_writer(&mut *body, &*view)?;
            Ok(view.position())
        }
        let position = part(&mut body, "book_list", &self.book_list)
            .map_err(failed)?
            .min(part(&mut body, "member_pages", &self.member_pages).map_err(failed)?)
            .min(part(&mut body, "due", &self.engine.due_work).map_err(failed)?);
        body.push(b'}');
        if position == 0 {
            return Ok(0);
        }
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
