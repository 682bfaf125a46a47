//! Copying a library from one embedded store to another (`lendkit migrate FROM TO`): every event
//! at the same position, with the same id, stream version and command record, every consumer
//! checkpoint and every dead letter.

use crate::error::StoreError;
use crate::open::Durable;
use crate::ports::{Commit, StreamAppend};
use crate::{Durability, Store};
use std::path::Path;

/// What a migration copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Events, at positions 1 to `events`.
    pub events: u64,
    /// Commits (one per command id).
    pub commits: u64,
    /// Consumer checkpoints.
    pub checkpoints: usize,
    /// Dead letters.
    pub dead_letters: usize,
}

/// Copies the library at `from` (in the store `from_store` names; `Auto`: the one there) into a
/// new library at `to` (in `to_store`): the same events at the same positions, with their ids,
/// versions and command records (fingerprints included), every checkpoint and dead letter. The
/// destination must be empty (`INVALID_INPUT` otherwise); a position that comes out different
/// stops the copy (`STORAGE`). Returns what was copied, and the stores used.
pub async fn migrate(
    from: &Path,
    from_store: Store,
    to: &Path,
    to_store: Store,
) -> crate::Result<(Migrated, Store, Store)> {
    if !from.exists() {
        return Err(crate::Error::InvalidInput(format!(
            "there is no library at {}",
            from.display()
        )));
    }
    let (source, from_kind) = Durable::open(from, from_store, Durability::EveryCommit)?;
    let source = source.store();
    // Written in the background, flushed once at the end.
    let (durable, to_kind) = Durable::open(to, to_store, Durability::Periodic(1_000))?;
    let target = durable.store();
    if target.head().await? > 0 {
        return Err(crate::Error::InvalidInput(format!(
            "{} already holds a library with events; migrate into a new path",
            to.display()
        )));
    }
    let mut done = Migrated::default();
    let mut after = 0;
    loop {
        let batch = source.read_all(after, 1_000).await?;
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        // One commit per run of events stored under one command id.
        let mut i = 0;
        while i < batch.len() {
            let command_id = batch[i].command_id.clone();
            let mut j = i;
            while j < batch.len() && batch[j].command_id == command_id {
                j += 1;
            }
            let events = &batch[i..j];
            let fingerprint = source
                .command(&command_id)
                .await?
                .map(|r| r.fingerprint)
                .unwrap_or_default();
            let mut appends: Vec<StreamAppend> = Vec::new();
            for e in events {
                let mut e = e.clone();
                e.position = 0;
                match appends.iter_mut().find(|a| a.stream == e.stream) {
                    Some(a) => a.events.push(e),
                    None => appends.push(StreamAppend {
                        stream: e.stream.clone(),
                        expected_version: e.version.saturating_sub(1),
                        events: vec![e],
                    }),
                }
            }
            let stored = target
                .append(Commit {
                    command_id,
                    fingerprint,
                    appends,
                })
                .await?;
            let same = stored.len() == events.len()
                && stored
                    .iter()
                    .zip(events)
                    .all(|(a, b)| a.position == b.position && a.event_id == b.event_id);
            if !same {
                return Err(crate::Error::Storage(StoreError::Backend(format!(
                    "copying to {} gave other positions than at {} (from position {}); the copy is incomplete, remove it",
                    to.display(),
                    from.display(),
                    events[0].position
                ))));
            }
            done.events += events.len() as u64;
            done.commits += 1;
            i = j;
        }
        after = last;
    }
    for (consumer, position) in source.checkpoints().await? {
        target.save_checkpoint(&consumer, position).await?;
        done.checkpoints += 1;
    }
    for letter in source.dead_letters().await? {
        target.add_dead_letter(letter).await?;
        done.dead_letters += 1;
    }
    // The copy is on the disk before it is reported.
    durable.flush()?;
    Ok((done, from_kind, to_kind))
}
