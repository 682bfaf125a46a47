//! The store contract, run against [`SqliteEventStore`] on real files in a temporary directory,
//! with both durability settings; plus what only a durable store can show: data, command
//! records and checkpoints survive reopening, foreign or newer files are refused untouched, a
//! library open elsewhere is locked, and a creation cut short starts afresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use lendkit_adapters::contract;
use lendkit_adapters::{Durability, SqliteEventStore};
use lendkit_core::error::StoreError;
use lendkit_core::ids::CommandId;
use lendkit_core::ports::{DeadLetter, EventStore};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A store factory: every call opens a fresh database in `dir`.
fn fresh(dir: &tempfile::TempDir, durability: Durability) -> impl Fn() -> SqliteEventStore + '_ {
    let n = AtomicUsize::new(0);
    move || {
        SqliteEventStore::open(
            dir.path()
                .join(format!("db-{}.sqlite", n.fetch_add(1, Ordering::SeqCst))),
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

fn one_event(store: &SqliteEventStore, stream: &str, command: &str) {
    let s = contract::stream(stream);
    block_on(store.append(contract::commit(vec![contract::batch(&s, 0, 1, command)]))).unwrap();
}

/// The names and contents of the files in `dir`, to show a folder was left as it was.
fn snapshot_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = if e.file_type().unwrap().is_dir() {
                b"<dir>".to_vec()
            } else {
                std::fs::read(e.path()).unwrap()
            };
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn events_command_records_checkpoints_and_dead_letters_survive_reopening() {
    for durability in [Durability::EveryCommit, Durability::Periodic(50)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("library.sqlite");
        let (s, t) = (contract::stream("m-1"), contract::stream("m-2"));
        let letter = DeadLetter {
            id: "notices@2".into(),
            consumer: "notices".into(),
            position: 2,
            event_id: "member:m-1#2".into(),
            event_type: "MemberJoined".into(),
            error: "smtp down".into(),
            attempts: 5,
        };
        let stored = {
            let store = SqliteEventStore::open(&path, durability).unwrap();
            let stored = block_on(store.append(contract::commit(vec![
                contract::batch(&s, 0, 3, "c-1"),
                contract::batch(&t, 0, 1, "c-1"),
            ])))
            .unwrap();
            block_on(store.save_checkpoint("catalog/1#0", 2)).unwrap();
            block_on(store.add_dead_letter(letter.clone())).unwrap();
            stored
        };
        let store = SqliteEventStore::open(&path, durability).unwrap();
        let events = block_on(store.read_stream(&s)).unwrap();
        assert_eq!(
            events
                .iter()
                .map(|e| (e.version, e.position))
                .collect::<Vec<_>>(),
            [(1, 1), (2, 2), (3, 3)]
        );
        assert_eq!(block_on(store.head()).unwrap(), 4);
        assert_eq!(block_on(store.read_all(0, 100)).unwrap(), stored);
        assert_eq!(block_on(store.checkpoint("catalog/1#0")).unwrap(), Some(2));
        assert_eq!(block_on(store.dead_letters()).unwrap(), [letter]);
        let record = block_on(store.command(&CommandId::new("c-1")))
            .unwrap()
            .expect("c-1 is recorded");
        assert_eq!(record.fingerprint, "fp:c-1");
        assert_eq!(record.events, stored);
        let again =
            block_on(store.append(contract::commit(vec![contract::batch(&s, 0, 1, "c-2")])))
                .unwrap_err();
        assert_eq!(
            again,
            StoreError::Conflict {
                stream: s.to_string(),
                expected: 0,
                actual: 3
            }
        );
        let retried =
            block_on(store.append(contract::commit(vec![contract::batch(&s, 3, 1, "c-1")])));
        assert_eq!(retried, Err(StoreError::CommandApplied("c-1".into())));
        let more = block_on(store.append(contract::commit(vec![contract::batch(&s, 3, 1, "c-3")])))
            .unwrap();
        assert_eq!(more[0].position, 5, "positions go on after a reopen");
    }
}

#[test]
fn the_log_reads_with_sqlite_tools_while_the_library_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.sqlite");
    let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
    one_event(&store, "m-1", "c-1");
    one_event(&store, "m-2", "c-2");
    let sqlite = Connection::open(&path).unwrap();
    let rows: Vec<(i64, String, String, String)> = sqlite
        .prepare("select position, stream, type, command_id from events order by position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            (1, "member:m-1".into(), "MemberJoined".into(), "c-1".into()),
            (2, "member:m-2".into(), "MemberJoined".into(), "c-2".into()),
        ]
    );
    let meta: Vec<(String, String)> = sqlite
        .prepare("select key, value from meta order by key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        meta,
        [
            ("format".into(), "lendkit-events".into()),
            ("schema".into(), "1".into())
        ]
    );
    let mode: String = sqlite
        .query_row("pragma journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(sqlite);
    // The reader did not disturb the library.
    one_event(&store, "m-3", "c-3");
    assert_eq!(block_on(store.head()).unwrap(), 3);
}

#[test]
fn a_directory_a_plain_file_or_a_foreign_database_is_not_a_library_and_stays_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |path: &Path| match SqliteEventStore::open(path, Durability::EveryCommit) {
        Err(StoreError::NotALibrary(_)) => {}
        other => panic!("expected NotALibrary for {path:?}, got {other:?}"),
    };

    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "my notes, long enough to hold a header").unwrap();
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "hi").unwrap();
    // SQLite's header and then nothing SQLite can read.
    let header_only = dir.path().join("header-only.sqlite");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend([0xAB; 200]);
    std::fs::write(&header_only, &bytes).unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::write(photos.join("cat.jpg"), "meow").unwrap();

    // Another program's database, one whose `meta` table has other columns, one whose `meta`
    // names another format, and one with lendkit's table names but no `meta` marker.
    let foreign = |name: &str, sql: &str| -> PathBuf {
        let path = dir.path().join(name);
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        path
    };
    let users = foreign(
        "users.sqlite",
        "create table users(id integer primary key, name text); insert into users(name) values ('alice');",
    );
    let odd_meta = foreign(
        "odd-meta.sqlite",
        "create table meta(id integer primary key, note text); insert into meta(note) values ('x');",
    );
    let other_format = foreign(
        "other-format.sqlite",
        "create table meta(key text primary key, value text); insert into meta values ('format', 'photos'), ('schema', '1');",
    );
    let unmarked = foreign(
        "unmarked.sqlite",
        "create table events(position integer primary key, stream text, version integer, type text, command_id text, body text);
         create table streams(stream text primary key, version integer);",
    );
    let wal_foreign = foreign(
        "wal.sqlite",
        "pragma journal_mode=wal; create table users(id integer primary key, name text); insert into users(name) values ('bob');",
    );

    let before = snapshot_of(dir.path());
    for path in [
        &notes,
        &short,
        &header_only,
        &photos,
        &users,
        &odd_meta,
        &other_format,
        &unmarked,
        &wal_foreign,
    ] {
        refused(path);
        refused(path);
    }
    assert!(
        snapshot_of(dir.path()) == before,
        "refused files are left exactly as they were, with no lock file, log or journal beside them"
    );
    let name: String = Connection::open(&users)
        .unwrap()
        .query_row("select name from users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "alice");
}

#[test]
fn a_database_written_by_a_newer_schema_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.sqlite");
    {
        let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
        one_event(&store, "m-1", "c-1");
    }
    Connection::open(&path)
        .unwrap()
        .execute("update meta set value = '99' where key = 'schema'", [])
        .unwrap();
    let before = snapshot_of(dir.path());
    for _ in 0..2 {
        match SqliteEventStore::open(&path, Durability::EveryCommit) {
            Err(StoreError::SchemaTooNew {
                found: 99,
                supported: 1,
            }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
    assert!(snapshot_of(dir.path()) == before, "the file is untouched");
    let sqlite = Connection::open(&path).unwrap();
    let schema: String = sqlite
        .query_row("select value from meta where key = 'schema'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(schema, "99");
    let events: i64 = sqlite
        .query_row("select count(*) from events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, 1);
}

#[test]
fn a_library_open_elsewhere_is_locked_and_opens_at_once_when_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sqlite");
    let first = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
    one_event(&first, "m-1", "c-1");
    // The flock belongs to the open file, so a second open in this process fails just as one in
    // another process would.
    match SqliteEventStore::open(&path, Durability::EveryCommit) {
        Err(StoreError::Locked(shown)) => assert_eq!(shown, path.display().to_string()),
        other => panic!("expected Locked, got {other:?}"),
    }
    // A clone shares the lock; the library closes when the last one is dropped.
    let clone = first.clone();
    drop(first);
    assert!(matches!(
        SqliteEventStore::open(&path, Durability::EveryCommit),
        Err(StoreError::Locked(_))
    ));
    assert_eq!(block_on(clone.head()).unwrap(), 1);
    drop(clone);
    let started = std::time::Instant::now();
    let store = SqliteEventStore::open(&path, Durability::Periodic(10)).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_millis(1000));
    assert_eq!(block_on(store.head()).unwrap(), 1);
}

#[test]
fn a_creation_cut_short_is_started_afresh_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    // What a kill during creation can leave: an empty file (SQLite created it, nothing written),
    // a file switched to WAL with no table yet, or a WAL whose creation transaction never
    // committed (SQLite ignores it: the file has no table).
    let empty = dir.path().join("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    let switched = dir.path().join("switched.sqlite");
    {
        let sqlite = Connection::open(&switched).unwrap();
        let mode: String = sqlite
            .query_row("pragma journal_mode=wal", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    let lock_left = dir.path().join("lock-left.sqlite");
    std::fs::write(dir.path().join("lock-left.sqlite.lock"), b"").unwrap();
    for path in [&empty, &switched, &lock_left] {
        {
            let store = SqliteEventStore::open(path, Durability::EveryCommit).unwrap();
            assert_eq!(block_on(store.head()).unwrap(), 0, "{path:?} starts empty");
            one_event(&store, "m-1", "c");
        }
        let store = SqliteEventStore::open(path, Durability::EveryCommit).unwrap();
        assert_eq!(block_on(store.read_all(0, 10)).unwrap().len(), 1);
    }
}

#[test]
fn a_library_in_a_new_folder_is_created_with_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/library.sqlite");
    let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
    one_event(&store, "m-1", "c-1");
    assert_eq!(store.path(), path);
    assert_eq!(store.durability(), Durability::EveryCommit);
    assert!(path.is_file());
}

#[test]
fn a_damaged_database_is_reported_as_damaged_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lib.sqlite");
    {
        let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
        for i in 0..20 {
            one_event(&store, &format!("m-{i}"), &format!("c-{i}"));
        }
    }
    assert!(
        !dir.path().join("lib.sqlite-wal").exists(),
        "closing the library moved its log into the file"
    );
    // Scribble over the first page's table of contents (after the 100-byte file header).
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[100..140] {
        *b ^= 0x5A;
    }
    std::fs::write(&path, &bytes).unwrap();
    let before = snapshot_of(dir.path());
    for _ in 0..2 {
        match SqliteEventStore::open(&path, Durability::EveryCommit) {
            Err(StoreError::Damaged {
                path: shown,
                reason,
            }) => {
                assert_eq!(shown, path.display().to_string());
                assert!(reason.contains("malformed"), "{reason}");
            }
            other => panic!("expected Damaged, got {other:?}"),
        }
    }
    assert!(
        snapshot_of(dir.path()) == before,
        "a damaged database is left as it was"
    );
}

#[test]
fn a_library_missing_a_table_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lib.sqlite");
    drop(SqliteEventStore::open(&path, Durability::EveryCommit).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute_batch("drop table commands")
        .unwrap();
    match SqliteEventStore::open(&path, Durability::EveryCommit) {
        Err(StoreError::Damaged { reason, .. }) => assert!(reason.contains("commands"), "{reason}"),
        other => panic!("expected Damaged, got {other:?}"),
    }
}

#[test]
fn a_damaged_event_body_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lib.sqlite");
    {
        let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
        one_event(&store, "m-1", "c-1");
        one_event(&store, "m-2", "c-2");
    }
    Connection::open(&path)
        .unwrap()
        .execute(
            "update events set body = '{\"not\": 1}' where position = 2",
            [],
        )
        .unwrap();
    let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
    assert_eq!(block_on(store.read_all(0, 1)).unwrap().len(), 1);
    match block_on(store.read_all(0, 10)) {
        Err(StoreError::Corrupt { position: 2, .. }) => {}
        other => panic!("expected Corrupt at 2, got {other:?}"),
    }
}

#[test]
fn periodic_durability_checkpoints_in_the_background_and_flush_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lib.sqlite");
    let store = SqliteEventStore::open(&path, Durability::Periodic(5)).unwrap();
    let created = std::fs::metadata(&path).unwrap().len();
    for i in 0..50 {
        one_event(&store, &format!("m-{i}"), &format!("c-{i}"));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::metadata(&path).unwrap().len() <= created {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpoint thread never copied the log into the file"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    store.flush().unwrap();
    assert_eq!(block_on(store.head()).unwrap(), 50);
}

/// Set in the child process of the kill tests: the library it writes to, and its durability.
const CHILD_PATH: &str = "LENDKIT_SQLITE_KILL_CHILD";
const CHILD_DURABILITY: &str = "LENDKIT_SQLITE_KILL_DURABILITY";

/// Not a test of its own: the writer that the kill tests run in a child process (and kill). In
/// a normal test run it returns at once. With 4 threads it appends commits of 2 events (one to
/// each of the thread's 2 streams) and prints `ok COMMAND` after every append that returned.
#[test]
fn kill_child_writer() {
    use std::io::Write;
    let Ok(path) = std::env::var(CHILD_PATH) else {
        return;
    };
    let durability = match std::env::var(CHILD_DURABILITY).as_deref() {
        Ok("periodic") => Durability::Periodic(20),
        _ => Durability::EveryCommit,
    };
    let store = std::sync::Arc::new(SqliteEventStore::open(&path, durability).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                let (a, b) = (
                    contract::stream(&format!("t{t}-a")),
                    contract::stream(&format!("t{t}-b")),
                );
                for i in 0u64.. {
                    let command = format!("t{t}-c{i}");
                    block_on(store.append(contract::commit(vec![
                        contract::batch(&a, i, 1, &command),
                        contract::batch(&b, i, 1, &command),
                    ])))
                    .unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ok {command}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

/// Runs [`kill_child_writer`] on `path` in a child process, kills it after `after`, and returns
/// the commands it reported stored.
fn run_and_kill(path: &Path, durability: &str, after: std::time::Duration) -> Vec<String> {
    use std::io::Read;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "kill_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PATH, path)
        .env(CHILD_DURABILITY, durability)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out.lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_killed_writer_leaves_whole_commits_and_every_one_it_acknowledged() {
    for durability in ["every", "periodic"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.sqlite");
        let mut acknowledged = Vec::new();
        for round in 0..3 {
            acknowledged.extend(run_and_kill(
                &path,
                durability,
                std::time::Duration::from_millis(300 + 100 * round),
            ));
            let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
            let log = block_on(store.read_all(0, usize::MAX)).unwrap();
            let head = block_on(store.head()).unwrap();
            assert_eq!(
                log.iter().map(|e| e.position).collect::<Vec<_>>(),
                (1..=head).collect::<Vec<_>>(),
                "{durability} round {round}: the log is gap-free"
            );
            let mut commands: Vec<_> = log.iter().map(|e| e.command_id.clone()).collect();
            commands.dedup();
            for command in &commands {
                let record = block_on(store.command(command)).unwrap().unwrap();
                assert_eq!(
                    record.events.len(),
                    2,
                    "{durability} round {round}: {command} is stored whole"
                );
            }
            assert_eq!(log.len(), 2 * commands.len());
            for command in &acknowledged {
                assert!(
                    block_on(store.command(&CommandId::new(command.as_str())))
                        .unwrap()
                        .is_some(),
                    "{durability} round {round}: acknowledged {command} was lost"
                );
            }
            assert!(
                !acknowledged.is_empty() || round == 0,
                "the child wrote nothing"
            );
        }
        assert!(!acknowledged.is_empty(), "the child never appended");
    }
}

#[test]
fn a_library_killed_while_being_created_opens() {
    let dir = tempfile::tempdir().unwrap();
    for (i, ms) in [0u64, 1, 2, 3, 4, 6, 8, 12, 16, 25].into_iter().enumerate() {
        let path = dir.path().join(format!("lib-{i}.sqlite"));
        run_and_kill(&path, "every", std::time::Duration::from_millis(ms));
        let store = SqliteEventStore::open(&path, Durability::EveryCommit)
            .unwrap_or_else(|e| panic!("killed after {ms} ms: {e:?}"));
        let head = block_on(store.head()).unwrap();
        assert_eq!(
            block_on(store.read_all(0, usize::MAX)).unwrap().len() as u64,
            head
        );
    }
}

/// Closing the store leaves one file: the write-ahead log is folded in and removed, whichever
/// connections were used (reads open read-only ones).
#[test]
fn closing_leaves_only_the_database_file() {
    for durability in [Durability::EveryCommit, Durability::Periodic(50)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("library.sqlite");
        {
            let store = SqliteEventStore::open(&path, durability).unwrap();
            let s = contract::stream("w-1");
            block_on(store.append(contract::commit(vec![contract::batch(&s, 0, 3, "c-1")])))
                .unwrap();
            assert_eq!(block_on(store.read_stream(&s)).unwrap().len(), 3);
            assert_eq!(block_on(store.read_all(0, 10)).unwrap().len(), 3);
        }
        for companion in ["-wal", "-shm"] {
            let file = format!("{}{companion}", path.display());
            assert!(
                !std::path::Path::new(&file).exists(),
                "{durability:?}: {file} is left after closing"
            );
        }
        let store = SqliteEventStore::open(&path, durability).unwrap();
        assert_eq!(
            block_on(store.head()).unwrap(),
            3,
            "{durability:?}: the events are in the file"
        );
    }
}

/// How many events a connection of its own (a reader outside the store) sees committed.
fn committed_events(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("select count(*) from events", [], |r| r.get(0))
        .unwrap()
}

/// Unsynced appends and checkpoints (a settle's reactions, a command's immediate reactions)
/// wait in one open transaction: nobody outside sees them until a sync commits them all at
/// once — under both settings — while the store's own reads see them at once (committing
/// first), and dropping the store commits them rather than rolling them back.
#[test]
fn unsynced_writes_are_one_transaction_until_a_sync() {
    for durability in [Durability::EveryCommit, Durability::Periodic(60_000)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("library.sqlite");
        let store = SqliteEventStore::open(&path, durability).unwrap();
        one_event(&store, "m-1", "c-1");
        for (i, stream) in ["m-2", "m-3"].into_iter().enumerate() {
            let s = contract::stream(stream);
            let commit = contract::commit(vec![contract::batch(&s, 0, 1, &format!("r-{i}"))]);
            assert_eq!(block_on(store.append_unsynced(commit)).unwrap().len(), 1);
        }
        block_on(store.save_checkpoints(&[("catalog/1#0".into(), 3)])).unwrap();
        assert_eq!(
            committed_events(&path),
            1,
            "{durability:?}: the unsynced appends are not committed one by one"
        );
        block_on(store.sync()).unwrap();
        assert_eq!(
            committed_events(&path),
            3,
            "{durability:?}: the sync commits all"
        );
        // More unsynced writes; a read through the store sees them (and commits them first).
        let s = contract::stream("m-4");
        block_on(store.append_unsynced(contract::commit(vec![contract::batch(&s, 0, 1, "r-9")])))
            .unwrap();
        assert_eq!(committed_events(&path), 3);
        assert_eq!(block_on(store.head()).unwrap(), 4);
        assert_eq!(committed_events(&path), 4);
        // Left open at the end, they are committed when the store closes.
        let s = contract::stream("m-5");
        block_on(store.append_unsynced(contract::commit(vec![contract::batch(&s, 0, 1, "r-10")])))
            .unwrap();
        block_on(store.save_checkpoints(&[("catalog/1#0".into(), 5)])).unwrap();
        drop(store);
        let store = SqliteEventStore::open(&path, durability).unwrap();
        assert_eq!(block_on(store.head()).unwrap(), 5, "{durability:?}");
        assert_eq!(
            block_on(store.checkpoint("catalog/1#0")).unwrap(),
            Some(5),
            "{durability:?}"
        );
    }
}

/// A refused append in the open transaction (a stale version) changes nothing and leaves the
/// unsynced writes before it in place.
#[test]
fn a_refusal_inside_the_open_transaction_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.sqlite");
    let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
    let s = contract::stream("m-1");
    block_on(store.append_unsynced(contract::commit(vec![contract::batch(&s, 0, 1, "a")])))
        .unwrap();
    let stale =
        block_on(store.append_unsynced(contract::commit(vec![contract::batch(&s, 0, 1, "b")])));
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    block_on(store.append_unsynced(contract::commit(vec![contract::batch(&s, 1, 1, "c")])))
        .unwrap();
    block_on(store.sync()).unwrap();
    assert_eq!(committed_events(&path), 2);
    let ids: Vec<String> = block_on(store.read_all(0, 10))
        .unwrap()
        .iter()
        .map(|e| e.command_id.to_string())
        .collect();
    assert_eq!(ids, ["a", "c"]);
}

const POISON_PATH: &str = "LENDKIT_SQLITE_POISON_CHILD";

/// The child of [`a_failed_commit_of_waiting_writes_refuses_every_call_until_reopened`]: runs
/// under a file-size limit, stores 400 events unsynced (they wait in the open transaction, in
/// SQLite's page cache), then syncs — the commit does not fit — and reports each answer.
#[test]
fn poison_child() {
    use std::io::Write;
    let Ok(path) = std::env::var(POISON_PATH) else {
        return;
    };
    let answer = |r: Result<String, StoreError>| match r {
        Ok(s) => format!("ok {s}"),
        Err(e) => format!("error {e}"),
    };
    let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
    let s = contract::stream("big");
    let unsynced =
        block_on(store.append_unsynced(contract::commit(vec![contract::batch(&s, 0, 400, "big")])))
            .map(|stored| stored.len().to_string());
    let synced = block_on(store.sync()).map(|()| String::new());
    let head = block_on(store.head()).map(|h| h.to_string());
    let one = contract::stream("after");
    let append =
        block_on(store.append(contract::commit(vec![contract::batch(&one, 0, 1, "after")])))
            .map(|stored| stored.len().to_string());
    let mut out = std::io::stdout().lock();
    // On lines of their own, after the test runner's `test poison_child ... `.
    writeln!(out).unwrap();
    for (what, r) in [
        ("unsynced", unsynced),
        ("sync", synced),
        ("head", head),
        ("append", append),
    ] {
        writeln!(out, "{what} {}", answer(r)).unwrap();
    }
    out.flush().unwrap();
}

/// Writes waiting in the open transaction were reported stored; when the commit that should
/// make them durable fails (here: the log may not grow, as on a full disk), they are gone. The
/// sync fails, and so does every later call — with a `STORAGE` error that says to reopen —
/// rather than answer from a store that lost what the library was told it holds. Reopened,
/// the library has every synced event and none of the lost ones.
#[test]
fn a_failed_commit_of_waiting_writes_refuses_every_call_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.sqlite");
    {
        let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
        one_event(&store, "m-1", "c-1");
    }
    // No file may grow past the database's size or the 32 KiB of the log's index (`-shm`),
    // whichever is more, plus 4 KiB (in 512-byte blocks): room for the open and a small
    // commit, not for 400 events.
    let size = std::fs::metadata(&path).unwrap().len().max(32 * 1024);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$0\" --exact poison_child --nocapture --test-threads 1",
            size / 512 + 8
        ))
        .arg(std::env::current_exe().unwrap())
        .env(POISON_PATH, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |what: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{what} ")))
            .unwrap_or_else(|| {
                panic!(
                    "no `{what}` from the child:\n{stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .to_owned()
    };
    assert_eq!(
        line("unsynced"),
        "ok 400",
        "stored, waiting in the open transaction"
    );
    assert!(line("sync").starts_with("error "), "{stdout}");
    for what in ["head", "append"] {
        let answer = line(what);
        assert!(
            answer.starts_with("error ") && answer.contains("reopen the library"),
            "{what}: {answer}"
        );
    }
    let store = SqliteEventStore::open(&path, Durability::EveryCommit).unwrap();
    assert_eq!(
        block_on(store.head()).unwrap(),
        1,
        "the synced event, none of the lost"
    );
    one_event(&store, "m-2", "c-2");
    assert_eq!(block_on(store.head()).unwrap(), 2);
}

/// A file made before the text-keyed tables were `WITHOUT ROWID` (its command ids a plain
/// `UNIQUE` index beside a rowid) refuses a repeated command id the same way, with nothing
/// written: the store finds a repeat by the constraint, not by a lookup.
#[test]
fn a_file_of_the_first_layout_refuses_a_repeated_command_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("first.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE events(position INTEGER PRIMARY KEY, stream TEXT NOT NULL,
                 version INTEGER NOT NULL, type TEXT NOT NULL, command_id TEXT NOT NULL,
                 body TEXT NOT NULL, UNIQUE(stream, version));
             CREATE TABLE streams(stream TEXT PRIMARY KEY, version INTEGER NOT NULL);
             CREATE TABLE commands(command_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
                 first_position INTEGER NOT NULL, last_position INTEGER NOT NULL);
             CREATE TABLE checkpoints(consumer TEXT PRIMARY KEY, position INTEGER NOT NULL);
             CREATE TABLE dead_letters(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
                 body TEXT NOT NULL);
             INSERT INTO meta(key, value) VALUES ('format', 'lendkit-events'), ('schema', '1');",
        )
        .unwrap();
    }
    for durability in [Durability::EveryCommit, Durability::Periodic(50)] {
        let store = SqliteEventStore::open(&path, durability).unwrap();
        let (a, b) = (contract::stream("a"), contract::stream("b"));
        let head = block_on(store.head()).unwrap();
        let first = format!("c-{head}");
        block_on(store.append(contract::commit(vec![contract::batch(&a, head, 1, &first)])))
            .unwrap();
        for unsynced in [false, true] {
            let again = contract::commit(vec![contract::batch(&b, 0, 1, &first)]);
            let result = if unsynced {
                block_on(store.append_unsynced(again))
            } else {
                block_on(store.append(again))
            };
            match result {
                Err(StoreError::CommandApplied(id)) => assert_eq!(id, first),
                other => panic!("{durability:?}: expected CommandApplied, got {other:?}"),
            }
        }
        assert_eq!(block_on(store.head()).unwrap(), head + 1, "{durability:?}");
        assert!(block_on(store.read_stream(&b)).unwrap().is_empty());
    }
}

/// A write group that SQLite fails undoes every append in it, those that had gone through
/// before the failing one too; the store's memory of the head must go back with them, or the
/// next commit leaves a gap. Callers race, so groups hold several appends; a trigger fails
/// every event of one stream.
#[test]
fn a_failed_group_leaves_no_gap_in_the_positions() {
    for durability in [Durability::EveryCommit, Durability::Periodic(50)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("library.sqlite");
        let store = std::sync::Arc::new(SqliteEventStore::open(&path, durability).unwrap());
        one_event(&store, "first", "c-first");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.stream LIKE '%:doomed%'
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            )
            .unwrap();
        let stored = std::sync::Arc::new(AtomicUsize::new(1));
        let failed = std::sync::Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|t| {
                let (store, stored, failed) = (store.clone(), stored.clone(), failed.clone());
                std::thread::spawn(move || {
                    let mut version = 0;
                    for i in 0..60 {
                        let doomed = t == 0 && i % 3 == 0;
                        let stream = if doomed {
                            contract::stream(&format!("doomed-{i}"))
                        } else {
                            contract::stream(&format!("t{t}"))
                        };
                        let expected = if doomed { 0 } else { version };
                        let commit = contract::commit(vec![contract::batch(
                            &stream,
                            expected,
                            1,
                            &format!("c-{t}-{i}"),
                        )]);
                        match block_on(store.append(commit)) {
                            Ok(events) => {
                                assert!(!doomed, "the trigger let a doomed event through");
                                stored.fetch_add(events.len(), Ordering::SeqCst);
                                version += 1;
                            }
                            // The trigger's refusal, or the group's failure it caused.
                            Err(StoreError::Io { .. } | StoreError::Backend(_)) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(other) => panic!("unexpected {other:?}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let log = block_on(store.read_all(0, usize::MAX)).unwrap();
        let head = block_on(store.head()).unwrap();
        assert_eq!(
            log.iter().map(|e| e.position).collect::<Vec<_>>(),
            (1..=head).collect::<Vec<_>>(),
            "{durability:?}: a gap in the positions"
        );
        assert_eq!(log.len(), stored.load(Ordering::SeqCst), "{durability:?}");
        assert!(failed.load(Ordering::SeqCst) >= 20, "{durability:?}");
    }
}
