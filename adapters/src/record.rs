//! The command record of the SQL stores, put back together: a commit's events take the
//! consecutive positions `first..=last`, so the record keeps only those two, and every one of
//! them must be in the log.

use lendkit_core::error::StoreError;
use lendkit_core::event::Envelope;
use lendkit_core::ids::CommandId;
use lendkit_core::ports::CommandRecord;

/// The record of `command` from its fingerprint and the events read at `first..=last`; the
/// database is damaged ([`StoreError::Corrupt`]) when any of those positions is missing.
pub(crate) fn whole(
    command: &CommandId,
    fingerprint: String,
    first: i64,
    last: i64,
    events: Vec<Envelope>,
) -> Result<CommandRecord, StoreError> {
    let expected = last
        .checked_sub(first)
        .and_then(|span| usize::try_from(span).ok())
        .and_then(|span| span.checked_add(1))
        .unwrap_or(0);
    if events.len() != expected {
        return Err(StoreError::Corrupt {
            position: u64::try_from(first).unwrap_or(0),
            reason: format!(
                "command {command} stored positions {first}..={last}, and {} of them are in the log",
                events.len()
            ),
        });
    }
    Ok(CommandRecord {
        fingerprint,
        events,
    })
}
