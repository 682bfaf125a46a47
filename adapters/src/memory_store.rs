//! [`InMemoryEventStore`]: the event log kept in process memory.

use async_trait::async_trait;
use lendkit_core::error::StoreError;
use lendkit_core::event::Envelope;
use lendkit_core::ids::{CommandId, StreamId};
use lendkit_core::ports::{CommandRecord, Commit, DeadLetter, EventStore, StreamAppend};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// An [`EventStore`] held in memory, for tests, examples and embedded use without durability.
///
/// One mutex guards the whole state, so every [`append`](EventStore::append) is a single
/// transaction: all version checks, the position assignment and the command-id records happen
/// under that one lock. Positions are gap-free from 1 in commit order. Everything is lost when
/// the store is dropped.
#[derive(Debug, Default)]
pub struct InMemoryEventStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The global log; the event at position `p` is `log[p - 1]`, in its compact stored form
    /// ([`Envelope::encode_compact`]): one allocation instead of the decoded envelope's dozen
    /// separately allocated strings (−17 % resident memory per lifecycle), for a little more
    /// work per append than copying the envelope (about +2 % of a lifecycle's instructions). A
    /// library reads its own log rarely (it keeps aggregates folded, and relays its own appends
    /// from memory); a read decodes.
    log: Vec<Box<[u8]>>,
    /// Each stream's positions, in version order (so a stream's version is its length).
    streams: lendkit_core::ids::IdMap<StreamId, Vec<u64>>,
    /// Each applied command id (as text) and what it stored.
    commands: lendkit_core::ids::IdMap<Box<str>, Recorded>,
    /// The last position saved per consumer.
    checkpoints: HashMap<String, u64>,
    /// Dead letters, oldest first.
    dead_letters: Vec<DeadLetter>,
}

/// What an applied command stored: its fingerprint (empty, and then not allocated, for
/// lendkit's own commands) and its events' positions. One commit's positions are consecutive —
/// [`append`](EventStore::append) gives them out one after another under the lock — so the first
/// and the count name them all, with no list to allocate per command.
#[derive(Debug)]
struct Recorded {
    fingerprint: Box<str>,
    first: u64,
    count: u32,
}

impl State {
    fn version(&self, stream: &StreamId) -> u64 {
        self.streams
            .get(stream)
            .map_or(0, |positions| positions.len() as u64)
    }

    fn head(&self) -> u64 {
        self.log.len() as u64
    }

    fn events_at(
        &self,
        positions: impl IntoIterator<Item = u64>,
    ) -> Result<Vec<Envelope>, StoreError> {
        positions
            .into_iter()
            .filter_map(|p| Some((p, self.log.get(index_of(p)?)?)))
            .map(|(p, bytes)| decode(p, bytes))
            .collect()
    }
}

/// The envelope stored at `position`. The bytes were encoded by this store from an envelope,
/// so an error here is a bug in the encoding; it is reported, not hidden.
fn decode(position: u64, bytes: &[u8]) -> Result<Envelope, StoreError> {
    Envelope::decode(bytes).map_err(|reason| StoreError::Corrupt { position, reason })
}

/// The log index of position `p` (positions start at 1).
fn index_of(position: u64) -> Option<usize> {
    usize::try_from(position.checked_sub(1)?).ok()
}

/// Checks that an append's envelopes belong to its stream and carry the next versions.
pub(crate) fn check_shape(append: &StreamAppend) -> Result<(), StoreError> {
    let mut want = append.expected_version;
    for envelope in &append.events {
        want = want.saturating_add(1);
        if envelope.stream != append.stream {
            return Err(StoreError::Backend(format!(
                "append to stream {} contains event {} of stream {}; every event must belong to the stream it is appended to",
                append.stream, envelope.event_id, envelope.stream
            )));
        }
        if envelope.version != want {
            return Err(StoreError::Backend(format!(
                "append to stream {} at expected version {} contains event {} with version {}, not {want}; \
                 versions must run from expected_version + 1 without gaps",
                append.stream, append.expected_version, envelope.event_id, envelope.version
            )));
        }
    }
    Ok(())
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        let appends = commit.appends;
        for append in &appends {
            check_shape(append)?;
        }
        let writes = appends.iter().any(|a| !a.events.is_empty());
        let mut state = self.lock();
        {
            // Versions as they would be after the appends checked so far, so that a stream named
            // twice in one call is checked against its own earlier part.
            let mut working: HashMap<&StreamId, u64> = HashMap::new();
            for append in &appends {
                let actual = working
                    .get(&append.stream)
                    .copied()
                    .unwrap_or_else(|| state.version(&append.stream));
                if actual != append.expected_version {
                    return Err(StoreError::Conflict {
                        stream: append.stream.to_string(),
                        expected: append.expected_version,
                        actual,
                    });
                }
                working.insert(
                    &append.stream,
                    append.expected_version + append.events.len() as u64,
                );
            }
        }
        if writes && state.commands.contains_key(commit.command_id.as_str()) {
            return Err(StoreError::CommandApplied(commit.command_id.to_string()));
        }
        // Checked before anything is stored, so a refusal stores nothing. (A commit's events
        // are all in memory, so their count is far below u32::MAX in practice.)
        let events: usize = appends.iter().map(|a| a.events.len()).sum();
        let count = u32::try_from(events).map_err(|_| {
            StoreError::Backend(format!(
                "a commit of {events} events is more than one command can record"
            ))
        })?;
        let first = state.head() + 1;
        let mut stored = Vec::with_capacity(events);
        for append in appends {
            if append.events.is_empty() {
                continue;
            }
            let from = state.head() + 1;
            for mut envelope in append.events {
                envelope.position = state.head() + 1;
                state.log.push(envelope.encode_compact().into_boxed_slice());
                stored.push(envelope);
            }
            let to = state.head();
            state
                .streams
                .entry(append.stream)
                .or_default()
                .extend(from..=to);
        }
        if writes {
            state.commands.insert(
                commit.command_id.0.into_boxed_str(),
                Recorded {
                    fingerprint: commit.fingerprint.into_boxed_str(),
                    first,
                    count,
                },
            );
        }
        Ok(stored)
    }

    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
        let state = self.lock();
        Ok(state
            .streams
            .get(stream)
            .map(|positions| state.events_at(positions.iter().copied()))
            .transpose()?
            .unwrap_or_default())
    }

    async fn read_stream_from(
        &self,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<Envelope>, StoreError> {
        let state = self.lock();
        let skip = usize::try_from(after_version).unwrap_or(usize::MAX);
        Ok(state
            .streams
            .get(stream)
            .map(|positions| {
                state.events_at(positions.get(skip..).unwrap_or_default().iter().copied())
            })
            .transpose()?
            .unwrap_or_default())
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let state = self.lock();
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(state.log.len());
        state.log[start..]
            .iter()
            .take(limit)
            .zip(start as u64 + 1..)
            .map(|(bytes, position)| decode(position, bytes))
            .collect()
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.lock().head())
    }

    async fn command(&self, command: &CommandId) -> Result<Option<CommandRecord>, StoreError> {
        let state = self.lock();
        state
            .commands
            .get(command.as_str())
            .map(|r| {
                Ok(CommandRecord {
                    fingerprint: r.fingerprint.clone().into_string(),
                    events: state.events_at(r.first..r.first + u64::from(r.count))?,
                })
            })
            .transpose()
    }

    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().checkpoints.get(consumer).copied())
    }

    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut all: Vec<(String, u64)> = self
            .lock()
            .checkpoints
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        all.sort();
        Ok(all)
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.lock()
            .checkpoints
            .insert(consumer.to_owned(), position);
        Ok(())
    }

    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError> {
        let mut state = self.lock();
        match state.dead_letters.iter_mut().find(|l| l.id == letter.id) {
            Some(existing) => *existing = letter,
            None => state.dead_letters.push(letter),
        }
        Ok(())
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.lock().dead_letters.clone())
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let before = state.dead_letters.len();
        state.dead_letters.retain(|l| l.id != id);
        Ok(state.dead_letters.len() != before)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;
    use futures::executor::block_on;
    use lendkit_core::ids::{Actor, MemberId, StreamKind, Timestamp};
    use lendkit_core::members::MemberEvent;

    fn stream(id: &str) -> StreamId {
        StreamId::new(StreamKind::Member, id)
    }

    fn envelope(stream: &StreamId, version: u64) -> Envelope {
        Envelope {
            event_id: Envelope::id_for(stream, version),
            stream: stream.clone(),
            version,
            position: 0,
            occurred_at: Timestamp(0),
            correlation_id: stream.id.clone(),
            causation_id: "c".into(),
            command_id: CommandId::new("c"),
            actor: Actor::System,
            event: MemberEvent::MemberJoined {
                member: MemberId::new(stream.id.clone()),
                name: "n".into(),
                contact: None,
                group: None,
                joined_at: None,
            }
            .into(),
        }
    }

    fn commit(appends: Vec<StreamAppend>) -> Commit {
        Commit {
            command_id: CommandId::generate(),
            fingerprint: String::new(),
            appends,
        }
    }

    fn append(stream: &StreamId, expected: u64, events: Vec<Envelope>) -> StreamAppend {
        StreamAppend {
            stream: stream.clone(),
            expected_version: expected,
            events,
        }
    }

    #[test]
    fn rejects_events_of_another_stream() {
        let store = InMemoryEventStore::new();
        let (a, b) = (stream("a"), stream("b"));
        let err =
            block_on(store.append(commit(vec![append(&a, 0, vec![envelope(&b, 1)])]))).unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend(m) if m.contains("member:a") && m.contains("member:b")),
            "{err:?}"
        );
        assert_eq!(block_on(store.head()).unwrap(), 0);
    }

    #[test]
    fn rejects_versions_that_do_not_follow_the_expected_one() {
        let store = InMemoryEventStore::new();
        let a = stream("a");
        for versions in [vec![2], vec![1, 3], vec![0]] {
            let events = versions.iter().map(|&v| envelope(&a, v)).collect();
            let err = block_on(store.append(commit(vec![append(&a, 0, events)]))).unwrap_err();
            assert!(
                matches!(&err, StoreError::Backend(m) if m.contains("version")),
                "{versions:?}: {err:?}"
            );
        }
        assert_eq!(block_on(store.head()).unwrap(), 0);
    }

    #[test]
    fn a_stream_named_twice_is_checked_against_its_own_first_part() {
        let store = InMemoryEventStore::new();
        let a = stream("a");
        let stored = block_on(store.append(commit(vec![
            append(&a, 0, vec![envelope(&a, 1)]),
            append(&a, 1, vec![envelope(&a, 2)]),
        ])))
        .unwrap();
        assert_eq!(
            stored.iter().map(|e| e.position).collect::<Vec<_>>(),
            [1, 2]
        );
        let err = block_on(store.append(commit(vec![
            append(&a, 2, vec![envelope(&a, 3)]),
            append(&a, 2, vec![envelope(&a, 3)]),
        ])))
        .unwrap_err();
        assert_eq!(
            err,
            StoreError::Conflict {
                stream: "member:a".into(),
                expected: 2,
                actual: 3
            }
        );
        assert_eq!(block_on(store.head()).unwrap(), 2);
    }

    #[test]
    fn positions_given_by_the_caller_are_overwritten() {
        let store = InMemoryEventStore::new();
        let a = stream("a");
        let mut e = envelope(&a, 1);
        e.position = 42;
        let stored = block_on(store.append(commit(vec![append(&a, 0, vec![e])]))).unwrap();
        assert_eq!(stored[0].position, 1);
        assert_eq!(block_on(store.read_all(0, 10)).unwrap(), stored);
        assert!(block_on(store.read_all(u64::MAX, 10)).unwrap().is_empty());
    }
}
