//! The [`EventStore`] conformance suite. Every store adapter must pass it.
//!
//! [`run_all`] runs every check; each check is also a `pub async fn` of its own, so an adapter's
//! test file can give each its own `#[test]`. Every check builds a fresh, empty store with `make`
//! and panics with a message naming the broken promise when the store does not keep it.
//!
//! ```
//! use futures::executor::block_on;
//! use lendkit_adapters::{contract, InMemoryEventStore};
//!
//! block_on(contract::run_all(InMemoryEventStore::new));
//! ```
//!
//! The checks block the calling thread (some spawn threads and join them), so run them with
//! `futures::executor::block_on` rather than inside an async runtime's worker.

// These are test helpers: a broken promise must panic with a message, which is what
// unwrap/expect/assert are for here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use lendkit_core::error::StoreError;
use lendkit_core::event::{Envelope, Event, Fact, Recorded};
use lendkit_core::ids::{Actor, CommandId, MemberId, StreamId, StreamKind, Timestamp};
use lendkit_core::members::MemberEvent;
use lendkit_core::ports::{CommandRecord, Commit, DeadLetter, EventStore, StreamAppend};
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::thread;

/// sled itself, on a library that was just closed: sled's flusher thread lets go of its file
/// lock a moment after the last handle is dropped (under load, a noticeable moment), so this
/// waits for it, up to 10 s. For tests that look at or damage what a sled store wrote.
#[cfg(feature = "sled")]
pub fn open_raw_sled(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("sled::open({}) failed: {e}", path.display()),
        }
    }
}

/// The stream the contract writes for `id`: a member stream (`member:ID`).
pub fn stream(id: &str) -> StreamId {
    StreamId::new(StreamKind::Member, id)
}

/// A valid envelope of `stream` at `version`, decided by `command`, not yet stored (position 0).
pub fn envelope(stream: &StreamId, version: u64, command: &CommandId) -> Envelope {
    let ms = i64::try_from(version).unwrap_or(i64::MAX);
    Envelope {
        event_id: Envelope::id_for(stream, version),
        stream: stream.clone(),
        version,
        position: 0,
        occurred_at: Timestamp(1_795_651_200_000).plus_ms(ms),
        correlation_id: stream.id.clone(),
        causation_id: command.to_string(),
        command_id: command.clone(),
        actor: Actor::System,
        event: Event::Member(MemberEvent::MemberJoined {
            member: MemberId::new(stream.id.clone()),
            name: format!("Member {} v{version}", stream.id),
            contact: version
                .is_multiple_of(2)
                .then(|| format!("{}@example.invalid", stream.id)),
            group: None,
            joined_at: None,
        }),
    }
}

/// An append of `count` valid events to `stream`, decided on version `expected` by `command`.
pub fn batch(stream: &StreamId, expected: u64, count: u64, command: &str) -> StreamAppend {
    let command_id = CommandId::new(command);
    StreamAppend {
        stream: stream.clone(),
        expected_version: expected,
        events: (expected + 1..=expected + count)
            .map(|v| envelope(stream, v, &command_id))
            .collect(),
    }
}

/// The commit of `appends` under the command id their envelopes carry (`guard` when they
/// carry none), with the fingerprint `fp:` and that id.
pub fn commit(appends: Vec<StreamAppend>) -> Commit {
    let command_id = appends
        .iter()
        .flat_map(|a| a.events.first())
        .map(|e| e.command_id.clone())
        .next()
        .unwrap_or_else(|| CommandId::new("guard"));
    Commit {
        fingerprint: format!("fp:{command_id}"),
        command_id,
        appends,
    }
}

/// A pure version guard: checks `stream` is at `expected`, writes nothing.
pub fn guard(stream: &StreamId, expected: u64, command: &str) -> StreamAppend {
    batch(stream, expected, 0, command)
}

fn positions(events: &[Envelope]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}

fn versions(events: &[Envelope]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

fn at(mut envelope: Envelope, position: u64) -> Envelope {
    envelope.position = position;
    envelope
}

async fn append_ok<S: EventStore>(
    store: &S,
    appends: Vec<StreamAppend>,
    what: &str,
) -> Vec<Envelope> {
    match store.append(commit(appends)).await {
        Ok(stored) => stored,
        Err(e) => panic!("{what}: append must succeed, failed with {e:?}"),
    }
}

async fn command_record<S: EventStore>(store: &S, command: &str) -> Option<CommandRecord> {
    store
        .command(&CommandId::new(command))
        .await
        .expect("command failed")
}

async fn everything<S: EventStore>(store: &S) -> Vec<Envelope> {
    store
        .read_all(0, usize::MAX)
        .await
        .expect("read_all(0, MAX) failed")
}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S: EventStore + 'static>(make: impl Fn() -> S) {
    append_then_read_back(&make).await;
    stale_version_conflicts(&make).await;
    concurrent_appends_one_wins(&make).await;
    positions_gap_free_across_threads(&make).await;
    multi_stream_all_or_nothing(&make).await;
    read_all_returns_suffixes(&make).await;
    command_ids_are_recorded(&make).await;
    concurrent_commits_of_one_command_id(&make).await;
    version_guards(&make).await;
    checkpoints(&make).await;
    dead_letters(&make).await;
    unsynced_appends(&make).await;
    snapshots(&make).await;
}

/// A store that keeps snapshots returns the last one saved under a name, whole, and nothing
/// for a name never saved; one that keeps none (the port's default) returns nothing at all.
/// Either way a snapshot is never mistaken for another name's, nor for an older one.
pub async fn snapshots<S: EventStore>(make: impl Fn() -> S) {
    let store = make();
    assert_eq!(store.snapshot("views").await.unwrap(), None);
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store.save_snapshot("views", 3, body.clone()).await.unwrap();
    let kept = store.snapshot("views").await.unwrap();
    assert!(
        kept.is_none() || kept == Some((3, body.clone().into())),
        "snapshot read back changed"
    );
    if kept.is_none() {
        return;
    }
    store
        .save_snapshot("views", 9, b"newer".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.snapshot("views").await.unwrap(),
        Some((9, b"newer".to_vec().into())),
        "the newer snapshot replaces the older"
    );
    assert_eq!(store.snapshot("other").await.unwrap(), None);
    store.save_snapshot("other", 1, Vec::new()).await.unwrap();
    assert_eq!(
        store.snapshot("other").await.unwrap(),
        Some((1, Vec::new().into()))
    );
    assert_eq!(
        store.snapshot("views").await.unwrap(),
        Some((9, b"newer".to_vec().into()))
    );
}

/// (a) An append to a new stream at expected version 0 is read back unchanged but for its
/// positions: versions 1..n, positions 1..n without gaps, in `read_stream`, `read_all` and `head`.
pub async fn append_then_read_back<S: EventStore>(make: impl Fn() -> S) {
    let store = make();
    let s = stream("a-1");
    assert_eq!(
        store.head().await.unwrap(),
        0,
        "a new store's head must be 0"
    );
    assert!(
        store.read_stream(&s).await.unwrap().is_empty(),
        "an unknown stream must read as empty"
    );
    assert!(
        everything(&store).await.is_empty(),
        "a new store's log must be empty"
    );

    let first = batch(&s, 0, 3, "c-1");
    let sent = first.events.clone();
    let stored = append_ok(&store, vec![first], "first append to a new stream").await;
    assert_eq!(
        positions(&stored),
        [1, 2, 3],
        "positions of the first append"
    );
    let expected: Vec<_> = sent.into_iter().zip(1..).map(|(e, p)| at(e, p)).collect();
    assert_eq!(
        stored, expected,
        "append must return the envelopes as sent, with positions filled in"
    );
    assert_eq!(
        store.read_stream(&s).await.unwrap(),
        expected,
        "read_stream after the first append"
    );
    assert_eq!(store.head().await.unwrap(), 3, "head after 3 events");

    let second = append_ok(
        &store,
        vec![batch(&s, 3, 2, "c-2")],
        "second append at version 3",
    )
    .await;
    assert_eq!(positions(&second), [4, 5], "positions of the second append");
    let read = store.read_stream(&s).await.unwrap();
    assert_eq!(
        versions(&read),
        [1, 2, 3, 4, 5],
        "stream versions after two appends"
    );
    assert_eq!(
        positions(&read),
        [1, 2, 3, 4, 5],
        "stream positions after two appends"
    );
    assert_eq!(
        everything(&store).await,
        read,
        "read_all of a one-stream log equals read_stream"
    );
    assert_eq!(store.head().await.unwrap(), 5, "head after 5 events");
}

/// (b) An append with a stale (or future) expected version fails with
/// `Conflict { expected, actual }` and stores nothing.
pub async fn stale_version_conflicts<S: EventStore>(make: impl Fn() -> S) {
    let store = make();
    let s = stream("b-1");
    append_ok(&store, vec![batch(&s, 0, 2, "c-1")], "setup").await;
    let before = everything(&store).await;

    for expected in [0, 1, 3, 7] {
        let result = store
            .append(commit(vec![batch(&s, expected, 1, "c-stale")]))
            .await;
        assert_eq!(
            result,
            Err(StoreError::Conflict {
                stream: s.to_string(),
                expected,
                actual: 2
            }),
            "append at expected version {expected} to a stream at version 2"
        );
    }
    assert_eq!(
        store.head().await.unwrap(),
        2,
        "a conflicting append must not move the head"
    );
    assert_eq!(
        everything(&store).await,
        before,
        "a conflicting append must store nothing"
    );
    assert_eq!(
        command_record(&store, "c-stale").await,
        None,
        "a conflicting append must not record its command id"
    );
}

/// (c) Eight threads append to one stream at the same expected version at once: exactly one
/// wins, seven get `Conflict`, and the stream holds exactly the winner's batch.
pub async fn concurrent_appends_one_wins<S: EventStore + 'static>(make: impl Fn() -> S) {
    const WRITERS: usize = 8;
    let store = Arc::new(make());
    let s = stream("contested");
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, barrier, s) = (Arc::clone(&store), Arc::clone(&barrier), s.clone());
            thread::spawn(move || {
                let append = batch(&s, 0, 2, &format!("writer-{i}"));
                barrier.wait();
                (i, block_on(store.append(commit(vec![append]))))
            })
        })
        .collect();
    let results: Vec<_> = writers
        .into_iter()
        .map(|w| w.join().expect("a writer thread panicked"))
        .collect();

    let winners: Vec<_> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {WRITERS} concurrent appends at version 0 must win; results: {results:?}"
    );
    let conflict = StoreError::Conflict {
        stream: s.to_string(),
        expected: 0,
        actual: 2,
    };
    for (i, result) in &results {
        if let Err(e) = result {
            assert_eq!(e, &conflict, "writer {i} lost and must get a conflict");
        }
    }
    let winner = CommandId::new(format!("writer-{}", winners[0]));
    let read = store.read_stream(&s).await.unwrap();
    assert_eq!(
        versions(&read),
        [1, 2],
        "the contested stream must hold exactly one batch"
    );
    assert!(
        read.iter().all(|e| e.command_id == winner),
        "the contested stream must hold the winner's events: {read:?}"
    );
    assert_eq!(
        store.head().await.unwrap(),
        2,
        "head after one winning batch of 2"
    );
}

/// (d) Four threads each make 50 appends to their own streams at once: the global log is
/// positions 1..=N without gaps, each append got consecutive positions, and each stream's
/// versions ascend with position.
pub async fn positions_gap_free_across_threads<S: EventStore + 'static>(make: impl Fn() -> S) {
    const THREADS: usize = 4;
    const APPENDS: u64 = 50;
    const STREAMS_PER_THREAD: u64 = 5;
    let store = Arc::new(make());
    let barrier = Arc::new(Barrier::new(THREADS));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            thread::spawn(move || {
                let mut version = BTreeMap::new();
                let mut stored = Vec::new();
                barrier.wait();
                for i in 0..APPENDS {
                    let s = stream(&format!("t{t}-s{}", i % STREAMS_PER_THREAD));
                    let v = version.entry(s.clone()).or_insert(0);
                    let count = 1 + i % 3;
                    let result = block_on(store.append(commit(vec![batch(
                        &s,
                        *v,
                        count,
                        &format!("t{t}-c{i}"),
                    )])));
                    let events = result
                        .unwrap_or_else(|e| panic!("thread {t} append {i} to {s} at {v}: {e:?}"));
                    *v += count;
                    stored.push(events);
                }
                stored
            })
        })
        .collect();
    let batches: Vec<Vec<Envelope>> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("a writer thread panicked"))
        .collect();

    let all = store.read_all(0, usize::MAX).await.unwrap();
    let total = batches.iter().map(Vec::len).sum::<usize>() as u64;
    assert_eq!(
        positions(&all),
        (1..=total).collect::<Vec<_>>(),
        "global positions must be 1..=N without gaps"
    );
    assert_eq!(
        store.head().await.unwrap(),
        total,
        "head must be the number of events"
    );
    for stored in &batches {
        let first = stored[0].position;
        assert_eq!(
            positions(stored),
            (first..first + stored.len() as u64).collect::<Vec<_>>(),
            "one append's events must get consecutive positions"
        );
        for e in stored {
            let index = usize::try_from(e.position - 1).unwrap();
            assert_eq!(
                &all[index], e,
                "append's return value must match the log at position {}",
                e.position
            );
        }
    }
    let mut by_stream: BTreeMap<StreamId, Vec<Envelope>> = BTreeMap::new();
    for e in &all {
        by_stream
            .entry(e.stream.clone())
            .or_default()
            .push(e.clone());
    }
    assert_eq!(
        by_stream.len(),
        THREADS * STREAMS_PER_THREAD as usize,
        "number of streams written"
    );
    for (s, events) in by_stream {
        assert_eq!(
            versions(&events),
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "stream {s}: versions must ascend 1, 2, … in position order"
        );
        assert_eq!(
            store.read_stream(&s).await.unwrap(),
            events,
            "read_stream({s}) must match the log"
        );
    }
}

/// (e) An append to two streams is all-or-nothing: one stale stream fails it (naming that stream)
/// and neither stream changes; when both are current, both are stored with consecutive positions.
pub async fn multi_stream_all_or_nothing<S: EventStore>(make: impl Fn() -> S) {
    let store = make();
    let (a, b) = (stream("e-a"), stream("e-b"));
    append_ok(&store, vec![batch(&a, 0, 1, "setup")], "setup").await;
    let before = everything(&store).await;

    let stale_second = store
        .append(commit(vec![batch(&a, 1, 2, "c-x"), batch(&b, 3, 1, "c-x")]))
        .await;
    assert_eq!(
        stale_second,
        Err(StoreError::Conflict {
            stream: b.to_string(),
            expected: 3,
            actual: 0
        }),
        "an append whose second stream is stale"
    );
    let stale_first = store
        .append(commit(vec![batch(&a, 0, 2, "c-y"), batch(&b, 0, 1, "c-y")]))
        .await;
    assert_eq!(
        stale_first,
        Err(StoreError::Conflict {
            stream: a.to_string(),
            expected: 0,
            actual: 1
        }),
        "an append whose first stream is stale"
    );
    assert_eq!(
        everything(&store).await,
        before,
        "a failed multi-stream append must store nothing of either stream"
    );
    assert!(
        store.read_stream(&b).await.unwrap().is_empty(),
        "the valid part of a failed append must not be stored"
    );

    let stored = append_ok(
        &store,
        vec![batch(&a, 1, 2, "c-z"), batch(&b, 0, 1, "c-z")],
        "two current streams",
    )
    .await;
    assert_eq!(
        stored.len(),
        3,
        "a two-stream append returns every stored event"
    );
    let mut sorted = positions(&stored);
    sorted.sort_unstable();
    assert_eq!(
        positions(&stored),
        sorted,
        "append must return events in position order"
    );
    assert_eq!(
        sorted,
        [2, 3, 4],
        "a two-stream append must take the next consecutive positions"
    );
    assert_eq!(
        versions(&store.read_stream(&a).await.unwrap()),
        [1, 2, 3],
        "versions of the first stream"
    );
    assert_eq!(
        versions(&store.read_stream(&b).await.unwrap()),
        [1],
        "versions of the second stream"
    );
    assert_eq!(
        store.head().await.unwrap(),
        4,
        "head after both streams were stored"
    );

    // A stream named twice in one commit: its second part goes on where its first ends.
    let twice = append_ok(
        &store,
        vec![
            batch(&b, 1, 1, "c-t"),
            batch(&a, 3, 1, "c-t"),
            batch(&b, 2, 2, "c-t"),
        ],
        "a stream named twice",
    )
    .await;
    assert_eq!(positions(&twice), [5, 6, 7, 8]);
    assert_eq!(
        versions(&store.read_stream(&b).await.unwrap()),
        [1, 2, 3, 4],
        "both parts of a stream named twice"
    );
    let before = everything(&store).await;
    for (what, appends, conflict) in [
        (
            "a second part that does not go on from its first",
            vec![
                batch(&a, 4, 1, "c-u"),
                batch(&b, 4, 1, "c-u"),
                batch(&b, 4, 1, "c-u"),
            ],
            (b.to_string(), 4, 5),
        ),
        (
            "such a commit whose first part is stale too",
            vec![
                batch(&a, 2, 1, "c-v"),
                batch(&b, 4, 1, "c-v"),
                batch(&b, 4, 1, "c-v"),
            ],
            (a.to_string(), 2, 4),
        ),
    ] {
        let (stream, expected, actual) = conflict;
        assert_eq!(
            store.append(commit(appends)).await,
            Err(StoreError::Conflict {
                stream,
                expected,
                actual
            }),
            "{what}"
        );
    }
    assert_eq!(
        everything(&store).await,
        before,
        "a refused commit naming a stream twice must store nothing"
    );
}

/// (f) `read_all(p, limit)` returns exactly the events after every position `p`, at most `limit`.
pub async fn read_all_returns_suffixes<S: EventStore>(make: impl Fn() -> S) {
    let store = make();
    let streams = [stream("f-1"), stream("f-2"), stream("f-3")];
    let mut version = [0u64; 3];
    for i in 0..5 {
        let k = i % 3;
        let count = 1 + (i as u64 % 2);
        append_ok(
            &store,
            vec![batch(&streams[k], version[k], count, &format!("c-{i}"))],
            "setup",
        )
        .await;
        version[k] += count;
    }
    let all = everything(&store).await;
    let n = all.len();
    assert_eq!(n, 7, "events written");
    for after in 0..=n + 2 {
        let suffix = &all[after.min(n)..];
        for limit in [0, 1, 2, 3, n, usize::MAX] {
            let got = store.read_all(after as u64, limit).await.unwrap();
            let want: Vec<_> = suffix.iter().take(limit).cloned().collect();
            assert_eq!(got, want, "read_all(after = {after}, limit = {limit})");
            // The same events without their envelopes' ids.
            let recorded = store.read_recorded(after as u64, limit).await.unwrap();
            let want: Vec<Recorded> = want.into_iter().map(Recorded::from).collect();
            assert_eq!(
                recorded, want,
                "read_recorded(after = {after}, limit = {limit})"
            );
        }
        // Replayed: the same suffix folded in order, each event once, and its last position.
        let mut folded = Vec::new();
        let last = store
            .replay(after as u64, &mut |fact| folded.push(recorded_of(fact)))
            .await
            .unwrap();
        let want: Vec<Recorded> = suffix.iter().cloned().map(Recorded::from).collect();
        assert_eq!(folded, want, "replay(after = {after})");
        assert_eq!(
            last,
            suffix.last().map_or(after as u64, |e| e.position),
            "the position replay(after = {after}) returns"
        );
    }
}

/// What `replay` hands a fold, kept: the fact with its event copied.
pub fn recorded_of(fact: Fact<'_>) -> Recorded {
    Recorded {
        position: fact.position,
        occurred_at: fact.occurred_at,
        event: fact.event.clone(),
    }
}

/// (g) A command id names one effect in the whole store: `command` returns the fingerprint and
/// every event a command stored (in every stream, in position order), `None` for an id never
/// applied; a second commit under an applied id fails with `CommandApplied` and stores nothing,
/// whatever stream it writes.
pub async fn command_ids_are_recorded<S: EventStore>(make: impl Fn() -> S) {
    let store = make();
    let (a, b, c) = (stream("g-a"), stream("g-b"), stream("g-c"));
    let first = append_ok(&store, vec![batch(&a, 0, 2, "c-1")], "first command").await;
    let both = append_ok(
        &store,
        vec![batch(&a, 2, 1, "c-2"), batch(&b, 0, 2, "c-2")],
        "second command",
    )
    .await;

    assert_eq!(
        command_record(&store, "c-1").await,
        Some(CommandRecord {
            fingerprint: "fp:c-1".into(),
            events: first
        }),
        "the record of command c-1"
    );
    assert_eq!(
        command_record(&store, "c-2").await,
        Some(CommandRecord {
            fingerprint: "fp:c-2".into(),
            events: both
        }),
        "the record of command c-2, across both streams"
    );
    assert_eq!(
        command_record(&store, "c-unknown").await,
        None,
        "an unknown command id"
    );

    let before = everything(&store).await;
    for (what, appends) in [
        ("the same stream", vec![batch(&a, 3, 1, "c-1")]),
        ("another stream", vec![batch(&c, 0, 1, "c-1")]),
        (
            "several streams",
            vec![batch(&b, 2, 1, "c-2"), batch(&c, 0, 1, "c-2")],
        ),
    ] {
        let id = appends[0].events[0].command_id.to_string();
        assert_eq!(
            store.append(commit(appends)).await,
            Err(StoreError::CommandApplied(id.clone())),
            "a second commit of {id} to {what}"
        );
    }
    assert_eq!(
        everything(&store).await,
        before,
        "a commit under an applied command id must store nothing"
    );
    assert_eq!(
        store.read_stream(&c).await.unwrap(),
        vec![],
        "nothing reached {c}"
    );
}

/// (g2) Writers racing with one command id on different streams (no version can clash): exactly
/// one commit is stored, every other fails with `CommandApplied`.
pub async fn concurrent_commits_of_one_command_id<S: EventStore + 'static>(make: impl Fn() -> S) {
    const WRITERS: usize = 16;
    let store = Arc::new(make());
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            thread::spawn(move || {
                let append = batch(&stream(&format!("g2-{i}")), 0, 1, "one-id");
                barrier.wait();
                block_on(store.append(commit(vec![append])))
            })
        })
        .collect();
    let results: Vec<_> = writers
        .into_iter()
        .map(|w| w.join().expect("writer thread panicked"))
        .collect();
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one commit of command one-id: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert_eq!(
                e,
                &StoreError::CommandApplied("one-id".into()),
                "the losers of a command-id race"
            );
        }
    }
    assert_eq!(store.head().await.unwrap(), 1, "one event stored in all");
}

/// (h) An append with no events is a version guard: it passes when the version matches and
/// writes nothing (not even a command record), and fails the whole append with `Conflict` when not.
pub async fn version_guards<S: EventStore>(make: impl Fn() -> S) {
    let store = make();
    let (read, written) = (stream("h-read"), stream("h-written"));
    append_ok(&store, vec![batch(&read, 0, 2, "setup")], "setup").await;

    let alone = append_ok(
        &store,
        vec![guard(&read, 2, "c-guard")],
        "a matching guard alone",
    )
    .await;
    assert!(
        alone.is_empty(),
        "a guard alone stores nothing, returned {alone:?}"
    );
    assert_eq!(
        store.head().await.unwrap(),
        2,
        "a guard must not move the head"
    );

    let with = append_ok(
        &store,
        vec![guard(&read, 2, "c-1"), batch(&written, 0, 1, "c-1")],
        "a matching guard with events",
    )
    .await;
    assert_eq!(
        positions(&with),
        [3],
        "only the guarded append's events are stored"
    );
    assert_eq!(
        versions(&store.read_stream(&read).await.unwrap()),
        [1, 2],
        "a guard must not write to its stream"
    );
    assert_eq!(
        command_record(&store, "guard").await,
        None,
        "a guard alone must not record its command"
    );
    assert_eq!(
        command_record(&store, "c-1")
            .await
            .map(|r| positions(&r.events)),
        Some(vec![3]),
        "a guarded commit records only the events it stored"
    );

    let before = everything(&store).await;
    let stale = store
        .append(commit(vec![
            guard(&read, 1, "c-2"),
            batch(&written, 1, 1, "c-2"),
        ]))
        .await;
    assert_eq!(
        stale,
        Err(StoreError::Conflict {
            stream: read.to_string(),
            expected: 1,
            actual: 2
        }),
        "a stale guard"
    );
    assert_eq!(
        store.append(commit(vec![guard(&read, 3, "c-3")])).await,
        Err(StoreError::Conflict {
            stream: read.to_string(),
            expected: 3,
            actual: 2
        }),
        "a guard ahead of the stream"
    );
    assert_eq!(
        everything(&store).await,
        before,
        "a failed guard must store nothing"
    );
}

/// (i) A checkpoint is `None` until saved, then the last value saved, per consumer.
pub async fn checkpoints<S: EventStore>(make: impl Fn() -> S) {
    let store = make();
    assert_eq!(
        store.checkpoint("views").await.unwrap(),
        None,
        "checkpoint before any save"
    );
    store.save_checkpoint("views", 5).await.unwrap();
    assert_eq!(
        store.checkpoint("views").await.unwrap(),
        Some(5),
        "checkpoint after saving 5"
    );
    store.save_checkpoint("views", 9).await.unwrap();
    assert_eq!(
        store.checkpoint("views").await.unwrap(),
        Some(9),
        "checkpoint after saving 9"
    );
    assert_eq!(
        store.checkpoint("notices").await.unwrap(),
        None,
        "another consumer's checkpoint"
    );
    store.save_checkpoint("notices", 0).await.unwrap();
    assert_eq!(
        store.checkpoint("notices").await.unwrap(),
        Some(0),
        "a saved 0 is not None"
    );
    assert_eq!(
        store.checkpoint("views").await.unwrap(),
        Some(9),
        "consumers' checkpoints are separate"
    );
    let mut all = store.checkpoints().await.unwrap();
    all.sort();
    assert_eq!(
        all,
        [("notices".to_owned(), 0), ("views".to_owned(), 9)],
        "every checkpoint is listed, each once, with its last position"
    );
}

/// (j) Dead letters: added ones are listed oldest first, adding one with an existing id replaces
/// it, and removing reports whether there was one.
pub async fn dead_letters<S: EventStore>(make: impl Fn() -> S) {
    let letter = |consumer: &str, position: u64, error: &str| DeadLetter {
        id: format!("{consumer}@{position}"),
        consumer: consumer.to_owned(),
        position,
        event_id: format!("member:m-{position}#1"),
        event_type: "MemberJoined".to_owned(),
        error: error.to_owned(),
        attempts: 5,
    };
    let store = make();
    assert!(
        store.dead_letters().await.unwrap().is_empty(),
        "a new store has no dead letters"
    );
    let (a, b) = (
        letter("notices", 3, "smtp down"),
        letter("views", 7, "bad data"),
    );
    store.add_dead_letter(a.clone()).await.unwrap();
    store.add_dead_letter(b.clone()).await.unwrap();
    assert_eq!(
        store.dead_letters().await.unwrap(),
        [a.clone(), b.clone()],
        "dead letters, oldest first"
    );

    let a2 = DeadLetter {
        attempts: 9,
        ..letter("notices", 3, "smtp still down")
    };
    store.add_dead_letter(a2.clone()).await.unwrap();
    let listed = store.dead_letters().await.unwrap();
    assert_eq!(
        listed.len(),
        2,
        "adding a dead letter with an existing id must replace it: {listed:?}"
    );
    assert!(
        listed.contains(&a2) && listed.contains(&b),
        "the replaced letter must be the new one: {listed:?}"
    );

    assert!(
        store.remove_dead_letter(&a.id).await.unwrap(),
        "removing an existing dead letter"
    );
    assert!(
        !store.remove_dead_letter(&a.id).await.unwrap(),
        "removing it again"
    );
    assert!(
        !store.remove_dead_letter("nobody@1").await.unwrap(),
        "removing an unknown id"
    );
    assert_eq!(
        store.dead_letters().await.unwrap(),
        [b],
        "dead letters after removal"
    );
}

/// (l) An unsynced append is an append in everything but the wait for the disk: interleaved with
/// synced ones it takes the next positions, checks versions and command ids the same way and is
/// readable at once; `sync` succeeds with and without anything waiting.
pub async fn unsynced_appends<S: EventStore>(make: impl Fn() -> S) {
    let store = make();
    let s = stream("l-1");
    let first = match store
        .append_unsynced(commit(vec![batch(&s, 0, 2, "c-1")]))
        .await
    {
        Ok(stored) => stored,
        Err(e) => panic!("an unsynced append to a new stream must succeed, failed with {e:?}"),
    };
    assert_eq!(positions(&first), [1, 2], "positions of an unsynced append");
    assert_eq!(
        store.read_stream(&s).await.unwrap(),
        first,
        "an unsynced append is readable at once"
    );
    let second = append_ok(
        &store,
        vec![batch(&s, 2, 1, "c-2")],
        "a synced append after it",
    )
    .await;
    assert_eq!(positions(&second), [3], "a synced append follows it");
    assert_eq!(
        store
            .append_unsynced(commit(vec![batch(&s, 1, 1, "c-3")]))
            .await,
        Err(StoreError::Conflict {
            stream: s.to_string(),
            expected: 1,
            actual: 3
        }),
        "an unsynced append at a stale version"
    );
    assert_eq!(
        store
            .append_unsynced(commit(vec![batch(&stream("l-2"), 0, 1, "c-1")]))
            .await,
        Err(StoreError::CommandApplied("c-1".into())),
        "an unsynced append under an applied command id"
    );
    assert_eq!(
        command_record(&store, "c-1").await.map(|r| r.events),
        Some(first),
        "an unsynced append records its command id"
    );
    store.sync().await.expect("sync with commits waiting");
    store.sync().await.expect("sync with nothing waiting");
    store.save_checkpoint("l", 3).await.unwrap();
    store.sync().await.expect("sync with a checkpoint waiting");
    assert_eq!(
        store.checkpoint("l").await.unwrap(),
        Some(3),
        "the checkpoint"
    );
    assert_eq!(everything(&store).await.len(), 3, "nothing else was stored");
}
