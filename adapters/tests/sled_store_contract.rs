//! The store contract, run against [`SledEventStore`] on real files in a temporary directory,
//! with both durability settings; plus what only a durable store can show: data and
//! checkpoints survive reopening, and foreign or newer databases are refused untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use lendkit_adapters::contract;
use lendkit_adapters::contract::open_raw_sled;
use lendkit_adapters::{Durability, SledEventStore};
use lendkit_core::error::StoreError;
use lendkit_core::ports::EventStore;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A store factory: every call opens a fresh database in `dir`.
fn fresh(dir: &tempfile::TempDir, durability: Durability) -> impl Fn() -> SledEventStore + '_ {
    let n = AtomicUsize::new(0);
    move || {
        SledEventStore::open(
            dir.path()
                .join(format!("db-{}", n.fetch_add(1, Ordering::SeqCst))),
            durability,
        )
        .unwrap()
    }
}

macro_rules! contract_tests {
    ($($check:ident),* $(,)?) => {
        mod every_commit {
            use super::*;
            $( #[test] fn $check() { let dir = tempfile::tempdir().unwrap(); block_on(contract::$check(fresh(&dir, Durability::EveryCommit))); } )*
        }
        mod periodic {
            use super::*;
            $( #[test] fn $check() { let dir = tempfile::tempdir().unwrap(); block_on(contract::$check(fresh(&dir, Durability::Periodic(5)))); } )*
        }
    };
}

contract_tests!(
    append_then_read_back,
    stale_version_conflicts,
    concurrent_appends_one_wins,
    positions_gap_free_across_threads,
    multi_stream_all_or_nothing,
    read_all_returns_suffixes,
    command_ids_are_recorded,
    concurrent_commits_of_one_command_id,
    version_guards,
    checkpoints,
    dead_letters,
    unsynced_appends,
    snapshots,
);

/// A database written before command ids were library-wide (no `command_ids` tree) gets its
/// records built from the log when opened, so a retry after the upgrade is still recognised.
#[test]
fn command_records_are_built_for_an_older_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lib.db");
    let (a, b) = (contract::stream("m-1"), contract::stream("m-2"));
    {
        let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
        block_on(store.append(contract::commit(vec![
            contract::batch(&a, 0, 2, "c-1"),
            contract::batch(&b, 0, 1, "c-1"),
        ])))
        .unwrap();
        block_on(store.append(contract::commit(vec![contract::batch(&a, 2, 1, "c-2")]))).unwrap();
    }
    {
        // What an older lendkit left behind: the log, and no library-wide command records.
        let db = open_raw_sled(&path);
        db.drop_tree("command_ids").unwrap();
        db.open_tree("meta").unwrap().remove("command_ids").unwrap();
        db.flush().unwrap();
    }
    let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
    let c1 = block_on(store.command(&"c-1".into()))
        .unwrap()
        .expect("c-1 is recorded");
    assert_eq!(
        c1.fingerprint, "",
        "the fingerprint of an old record is unknown"
    );
    assert_eq!(
        c1.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let again = block_on(store.append(contract::commit(vec![contract::batch(&b, 1, 1, "c-2")])));
    assert_eq!(again, Err(StoreError::CommandApplied("c-2".into())));
}

#[test]
fn events_and_checkpoints_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lib.db");
    let s = contract::stream("m-1");
    {
        let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
        block_on(store.append(contract::commit(vec![contract::batch(&s, 0, 3, "c-1")]))).unwrap();
        block_on(store.save_checkpoint("catalog/1#0", 2)).unwrap();
    }
    let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
    let events = block_on(store.read_stream(&s)).unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.version, e.position))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 2), (3, 3)]
    );
    assert_eq!(block_on(store.head()).unwrap(), 3);
    assert_eq!(block_on(store.checkpoint("catalog/1#0")).unwrap(), Some(2));
    let again = block_on(store.append(contract::commit(vec![contract::batch(&s, 0, 1, "c-2")])))
        .unwrap_err();
    assert_eq!(
        again,
        StoreError::Conflict {
            stream: s.to_string(),
            expected: 0,
            actual: 3
        }
    );
}

#[test]
fn a_plain_file_or_a_foreign_directory_is_not_a_library_and_stays_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "my notes").unwrap();
    assert!(matches!(
        SledEventStore::open(&file, Durability::EveryCommit),
        Err(StoreError::NotALibrary(_))
    ));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "my notes");

    let foreign = dir.path().join("photos");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("cat.jpg"), "meow").unwrap();
    assert!(matches!(
        SledEventStore::open(&foreign, Durability::EveryCommit),
        Err(StoreError::NotALibrary(_))
    ));
    assert_eq!(
        std::fs::read_dir(&foreign).unwrap().count(),
        1,
        "nothing was created in a foreign directory"
    );

    let other_sled = dir.path().join("other.sled");
    {
        let db = sled::open(&other_sled).unwrap();
        db.insert("user:1", "alice").unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        SledEventStore::open(&other_sled, Durability::EveryCommit),
        Err(StoreError::NotALibrary(_))
    ));
    assert_eq!(
        open_raw_sled(&other_sled)
            .get("user:1")
            .unwrap()
            .unwrap()
            .as_ref(),
        b"alice"
    );
}

#[test]
fn a_database_written_by_a_newer_schema_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    {
        let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
        block_on(store.append(contract::commit(vec![contract::batch(
            &contract::stream("m-1"),
            0,
            1,
            "c-1",
        )])))
        .unwrap();
    }
    {
        let db = open_raw_sled(&path);
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &99u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match SledEventStore::open(&path, Durability::EveryCommit) {
        Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let db = open_raw_sled(&path);
    assert_eq!(
        db.open_tree("meta")
            .unwrap()
            .get("schema")
            .unwrap()
            .unwrap()
            .as_ref(),
        &99u64.to_be_bytes()
    );
    assert_eq!(db.open_tree("log").unwrap().len(), 1);
}

/// A library an older lendkit wrote, and this one going on with it: two events stored, each
/// turned into `older`'s form of it and the store marked `schema`; then it opens, is marked with
/// the current store schema before anything new is written, reads its old events as they were,
/// and stores new ones beside them. Returns the database, for the caller to look at the log.
fn older_library_goes_on(
    dir: &std::path::Path,
    schema: u64,
    older: impl Fn(&[u8]) -> Vec<u8>,
) -> sled::Db {
    use lendkit_adapters::sled_store::STORE_SCHEMA;
    let path = dir.join("old.db");
    let (m1, m2) = (contract::stream("m-1"), contract::stream("m-2"));
    let written = {
        let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
        block_on(store.append(contract::commit(vec![contract::batch(&m1, 0, 2, "c-1")]))).unwrap();
        block_on(store.read_all(0, 100)).unwrap()
    };
    {
        let db = open_raw_sled(&path);
        let log = db.open_tree("log").unwrap();
        for kv in log.iter() {
            let (k, v) = kv.unwrap();
            log.insert(k, older(&v)).unwrap();
        }
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema", &schema.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    {
        let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
        assert_eq!(block_on(store.read_all(0, 100)).unwrap(), written);
        block_on(store.append(contract::commit(vec![contract::batch(&m2, 0, 1, "c-2")]))).unwrap();
        block_on(store.append(contract::commit(vec![contract::batch(&m1, 2, 1, "c-3")]))).unwrap();
        let all = block_on(store.read_all(0, 100)).unwrap();
        assert_eq!(&all[..2], &written[..]);
        assert_eq!(
            all.iter().map(|e| e.position).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        let m1_events = block_on(store.read_stream(&m1)).unwrap();
        assert_eq!(
            m1_events.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }
    let db = open_raw_sled(&path);
    let stored = db
        .open_tree("meta")
        .unwrap()
        .get("schema")
        .unwrap()
        .unwrap();
    assert_eq!(stored.as_ref(), &u64::from(STORE_SCHEMA).to_be_bytes());
    db
}

/// The layout revision (the byte after the compact tag) of each event in the log, in order.
fn revisions(db: &sled::Db) -> Vec<u8> {
    db.open_tree("log")
        .unwrap()
        .iter()
        .map(|kv| kv.unwrap().1[1])
        .collect()
}

/// A library written before the binary payload (store schema 2, compact events whose payload
/// is JSON text) goes on, marked with the current schema, with new events in the binary payload.
#[test]
fn a_library_of_compact_events_with_json_payloads_opens_and_goes_on_in_binary() {
    use lendkit_adapters::sled_store::STORE_SCHEMA;
    use lendkit_core::event::Envelope;
    use lendkit_core::testing::encode_compact_revision_1;
    let dir = tempfile::tempdir().unwrap();
    // What lendkit wrote before 2026-12-06: revision-1 compact events, schema 2.
    let db = older_library_goes_on(dir.path(), 2, |v| {
        assert_eq!(v[1], 5, "new events are of the current layout");
        let old = encode_compact_revision_1(&Envelope::decode(v).unwrap());
        assert!(old.len() > v.len());
        old
    });
    assert_eq!(STORE_SCHEMA, 6);
    assert_eq!(
        revisions(&db),
        [1, 1, 5, 5],
        "old events kept as they were, new ones binary"
    );
}

/// A library of store `schema` whose events are all of compact layout `revision` (as `encode`
/// writes it, longer than the current form) goes on, marked schema 6, reading its events as they
/// were and writing new ones in revision 5.
fn older_revision_goes_on(
    schema: u64,
    revision: u8,
    encode: fn(&lendkit_core::event::Envelope) -> Vec<u8>,
) {
    use lendkit_adapters::sled_store::STORE_SCHEMA;
    use lendkit_core::event::Envelope;
    let dir = tempfile::tempdir().unwrap();
    let db = older_library_goes_on(dir.path(), schema, |v| {
        let old = encode(&Envelope::decode(v).unwrap());
        assert_eq!(old[1], revision);
        // The contract's events name their member, the stream's id: shorter from revision
        // 4 on; what revision 5 adds (the correlation's id, the event's instant, a policy's
        // reaction) they do not hold.
        if revision < 4 {
            assert!(old.len() > v.len(), "the current revision is the shorter");
        } else {
            assert_eq!(old.len(), v.len());
        }
        old
    });
    assert_eq!(STORE_SCHEMA, 6);
    assert_eq!(revisions(&db), [revision, revision, 5, 5]);
}

/// A library written with the binary payload under a header of strings (store schema 3,
/// layout revision 2) goes on in the current revision (command id, actor and type as bytes and
/// an index; payload texts that repeat the stream's or the actor's id as a tag).
#[test]
fn a_library_of_revision_2_events_opens_and_goes_on_in_the_current_revision() {
    older_revision_goes_on(3, 2, lendkit_core::testing::encode_compact_revision_2);
}

/// A library written with every payload text spelled out (store schema 4, layout revision 3)
/// goes on in the current revision, whose payload names the stream's id by a tag.
#[test]
fn a_library_of_revision_3_events_opens_and_goes_on_in_the_current_revision() {
    older_revision_goes_on(4, 3, lendkit_core::testing::encode_compact_revision_3);
}

/// A library written with payload texts naming the stream's or the actor's id (store schema 5,
/// layout revision 4) goes on in the current revision.
#[test]
fn a_library_of_revision_4_events_opens_and_goes_on_in_the_current_revision() {
    older_revision_goes_on(5, 4, lendkit_core::testing::encode_compact_revision_4);
}

/// A library written before the compact form (store schema 1, every event as JSON) goes on
/// with new events compact beside the JSON ones.
#[test]
fn a_library_of_json_events_opens_and_goes_on_in_the_compact_form() {
    use lendkit_core::event::{Envelope, COMPACT_TAG};
    let dir = tempfile::tempdir().unwrap();
    // What an older lendkit wrote: JSON events, schema 1.
    let db = older_library_goes_on(dir.path(), 1, |v| {
        assert_eq!(v[0], COMPACT_TAG, "new events are stored compact");
        let json = Envelope::decode(v).unwrap().encode();
        assert_eq!(json[0], b'{');
        json
    });
    let firsts: Vec<u8> = db
        .open_tree("log")
        .unwrap()
        .iter()
        .map(|kv| kv.unwrap().1[0])
        .collect();
    assert_eq!(firsts, vec![b'{', b'{', COMPACT_TAG, COMPACT_TAG]);
}

#[test]
fn a_database_open_elsewhere_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let _first = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
    // sled holds an exclusive file lock per process open; a second open in this process fails the same way another process would.
    match SledEventStore::open(&path, Durability::EveryCommit) {
        Err(StoreError::Locked(_)) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
}

/// The names and contents of the files in `dir` (recursively), to show a folder was left as it was.
fn snapshot_of(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            for (inner, bytes) in snapshot_of(&entry.path()) {
                files.push((format!("{name}/{inner}"), bytes));
            }
        } else {
            files.push((name, std::fs::read(entry.path()).unwrap()));
        }
    }
    files.sort();
    files
}

/// A library with `events` events in three streams, closed and opened once more (so that sled
/// has written a snapshot), at `dir/name`.
fn closed_library(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    {
        let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
        for (i, s) in ["m-1", "m-2", "m-3"].into_iter().enumerate() {
            let batch = contract::batch(&contract::stream(s), 0, 2, &format!("c-{i}"));
            block_on(store.append(contract::commit(vec![batch]))).unwrap();
        }
    }
    drop(SledEventStore::open(&path, Durability::EveryCommit).unwrap());
    path
}

fn snapshot_files(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut snaps: Vec<_> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap.")
        })
        .collect();
    snaps.sort();
    snaps
}

#[test]
fn an_unfinished_snapshot_left_by_a_kill_is_cleared_and_the_library_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = closed_library(&dir, "lib.db");
    let snaps = snapshot_files(&path);
    assert_eq!(snaps.len(), 1, "sled wrote one snapshot: {snaps:?}");
    // What a kill halfway through sled's snapshot write leaves: the start of a snapshot in a
    // `.generating` file with a later LSN, which sorts last and so is what sled would read.
    let complete = std::fs::read(&snaps[0]).unwrap();
    let lsn = u64::from_str_radix(
        snaps[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("snap."),
        16,
    )
    .unwrap();
    let unfinished = path.join(format!("snap.{:016X}.generating", lsn + 4096));
    std::fs::write(&unfinished, &complete[..complete.len() / 2]).unwrap();
    let empty = path.join(format!("snap.{:016X}.generating", lsn + 8192));
    std::fs::write(&empty, b"").unwrap();
    // Without the fix, sled refuses this folder forever: "Read corrupted data at file offset None".
    let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
    assert_eq!(block_on(store.head()).unwrap(), 6);
    assert_eq!(block_on(store.read_all(0, 100)).unwrap().len(), 6);
    assert!(
        !unfinished.exists() && !empty.exists(),
        "the unfinished snapshots were removed"
    );
    drop(store);
    let store = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
    assert_eq!(block_on(store.read_all(0, 100)).unwrap().len(), 6);
}

#[test]
fn a_damaged_database_is_reported_as_damaged_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = closed_library(&dir, "lib.db");
    let snaps = snapshot_files(&path);
    let mut bytes = std::fs::read(&snaps[0]).unwrap();
    for b in &mut bytes[10..30] {
        *b ^= 0xFF;
    }
    std::fs::write(&snaps[0], &bytes).unwrap();
    let before = snapshot_of(&path);
    for _ in 0..2 {
        match SledEventStore::open(&path, Durability::EveryCommit) {
            Err(StoreError::Damaged {
                path: shown,
                reason,
            }) => {
                assert_eq!(shown, path.display().to_string());
                assert!(reason.contains("corrupt"), "{reason}");
            }
            other => panic!("expected Damaged, got {other:?}"),
        }
    }
    assert!(
        snapshot_of(&path) == before,
        "a damaged database is left exactly as it was"
    );
}

#[test]
fn a_creation_interrupted_by_a_kill_is_started_afresh_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    // What kills during creation left behind: lendkit's marker with sled's files half-written
    // (a truncated `conf`, a `db` without lendkit's format), or, from before the marker existed,
    // sled's empty skeleton alone.
    let half = dir.path().join("half.db");
    let complete = closed_library(&dir, "complete.db");
    std::fs::create_dir(&half).unwrap();
    for name in ["conf", "db"] {
        std::fs::copy(complete.join(name), half.join(name)).unwrap();
    }
    let conf = std::fs::read(half.join("conf")).unwrap();
    std::fs::write(half.join("conf"), &conf[..conf.len() - 4]).unwrap();
    std::fs::create_dir(half.join("blobs")).unwrap();
    std::fs::write(half.join("snap.0000000000000010.generating"), b"x").unwrap();
    std::fs::write(half.join("lendkit.creating"), b"").unwrap();
    let skeleton = dir.path().join("skeleton.db");
    std::fs::create_dir_all(skeleton.join("blobs")).unwrap();
    std::fs::write(skeleton.join("conf"), &conf[..20]).unwrap();
    std::fs::write(skeleton.join("db"), b"").unwrap();
    for path in [&half, &skeleton] {
        {
            let store = SledEventStore::open(path, Durability::EveryCommit).unwrap();
            assert_eq!(block_on(store.head()).unwrap(), 0, "{path:?} starts empty");
            block_on(store.append(contract::commit(vec![contract::batch(
                &contract::stream("m-1"),
                0,
                1,
                "c",
            )])))
            .unwrap();
        }
        assert!(!path.join("lendkit.creating").exists());
        let store = SledEventStore::open(path, Durability::EveryCommit).unwrap();
        assert_eq!(block_on(store.read_all(0, 10)).unwrap().len(), 1);
    }
}

#[test]
fn a_refused_sled_database_keeps_no_lock_file_and_a_closed_library_opens_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let other_sled = dir.path().join("other.sled");
    {
        let db = sled::open(&other_sled).unwrap();
        db.insert("user:1", "alice").unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        SledEventStore::open(&other_sled, Durability::EveryCommit),
        Err(StoreError::NotALibrary(_))
    ));
    assert!(!other_sled.join("lendkit.lock").exists());
    let path = dir.path().join("lib.db");
    let first = SledEventStore::open(&path, Durability::EveryCommit).unwrap();
    drop(first);
    let started = std::time::Instant::now();
    drop(SledEventStore::open(&path, Durability::EveryCommit).unwrap());
    assert!(started.elapsed() < std::time::Duration::from_millis(1000));
}
