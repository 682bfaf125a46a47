//! The store contract, run against [`SledEventStore`] on real files in a temporary directory,
//! with both durability settings; plus what only a durable store can show: data and
//! checkpoints survive reopening, and foreign or newer databases are refused untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use lendkit_adapters::contract;
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
        let db = sled::open(&path).unwrap();
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
        sled::open(&other_sled)
            .unwrap()
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
        let db = sled::open(&path).unwrap();
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
    let db = sled::open(&path).unwrap();
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
