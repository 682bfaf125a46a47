//! The store contract, run against [`PgEventStore`] on the PostgreSQL server that
//! `LENDKIT_PG_URL` names (`postgres://postgres@127.0.0.1:5432/test` in CI); plus what only a
//! shared store can show: two connections racing for one stream, multi-stream appends in
//! opposite orders, positions without gaps under many concurrent writers while a reader tails
//! the log, data surviving a reconnect, and newer or foreign schemas refused untouched.
//!
//! Without `LENDKIT_PG_URL` every test that needs the server prints
//! `skipped: LENDKIT_PG_URL is not set` and passes. Each test works in schemas of its own
//! (`lk_t_<pid>_<n>`), dropped when it ends, failed or not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use lendkit_adapters::contract;
use lendkit_adapters::{PgEventStore, PgOptions};
use lendkit_core::error::StoreError;
use lendkit_core::event::SCHEMA_VERSION;
use lendkit_core::ids::CommandId;
use lendkit_core::ports::{DeadLetter, EventStore};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// The server's URL, or `None` after printing the skip.
fn pg_url() -> Option<String> {
    match std::env::var("LENDKIT_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // Straight to stderr, past the test harness's capture, so the skip shows in every run.
            use std::io::Write;
            let test = std::thread::current().name().unwrap_or("a test").to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "skipped: LENDKIT_PG_URL is not set ({test} needs a PostgreSQL server)"
            );
            None
        }
    }
}

/// Schemas for one test: every name it hands out is dropped when it goes out of scope (also
/// when the test panics and unwinds).
struct Schemas {
    url: String,
    names: Mutex<Vec<String>>,
}

impl Schemas {
    fn new(url: &str) -> Schemas {
        Schemas {
            url: url.to_owned(),
            names: Mutex::new(Vec::new()),
        }
    }

    /// A name no other test (or run) uses, dropped at the end.
    fn name(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 1_000_000;
        let name = format!(
            "lk_t_{}_{seconds}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        self.names.lock().unwrap().push(name.clone());
        name
    }

    /// A store on `schema`.
    fn open(&self, schema: &str) -> PgEventStore {
        PgEventStore::connect(&self.url, PgOptions::in_schema(schema))
            .unwrap_or_else(|e| panic!("connect to {schema}: {e}"))
    }

    /// A store on a new schema.
    fn fresh(&self) -> PgEventStore {
        self.open(&self.name())
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        for name in self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            if let Err(e) = PgEventStore::drop_schema(&self.url, &name) {
                eprintln!("could not drop test schema {name}: {e}");
            }
        }
    }
}

/// Runs `sql` (one or more statements, no parameters) on the server, outside lendkit.
fn psql(url: &str, sql: &str) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.unwrap();
    });
}

/// The rows `sql` selects, each column read as text.
fn rows(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::{Connection, Row};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.unwrap();
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<Option<String>, _>(i))
                    .collect()
            })
            .collect()
    })
}

macro_rules! contract_tests {
    ($($check:ident),* $(,)?) => {
        mod contract_suite {
            use super::*;
            $(
                #[test]
                fn $check() {
                    let Some(url) = pg_url() else { return };
                    let schemas = Schemas::new(&url);
                    block_on(contract::$check(|| schemas.fresh()));
                }
            )*
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
);

/// Two stores (two processes' worth of connections) on one schema append to one stream at the
/// same version at once, round after round: exactly one wins each round, the other gets a
/// conflict naming the winner's version.
#[test]
fn two_connections_racing_for_one_stream_one_wins() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.name();
    let stores = [schemas.open(&schema), schemas.open(&schema)];
    let s = contract::stream("contested");
    let mut version = 0;
    for round in 0..25 {
        let barrier = Arc::new(Barrier::new(2));
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let (barrier, s) = (Arc::clone(&barrier), s.clone());
                    scope.spawn(move || {
                        let commit = contract::commit(vec![contract::batch(
                            &s,
                            version,
                            2,
                            &format!("r{round}-w{i}"),
                        )]);
                        barrier.wait();
                        block_on(store.append(commit))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(
                    e,
                    &StoreError::Conflict {
                        stream: s.to_string(),
                        expected: version,
                        actual: version + 2
                    },
                    "round {round}"
                );
            }
        }
        version += 2;
    }
    let events = block_on(stores[0].read_stream(&s)).unwrap();
    assert_eq!(events.len(), 50);
    assert_eq!(block_on(stores[1].head()).unwrap(), 50);
}

/// Two tasks append to the same two streams in one commit each, one naming them `a, b`, the
/// other `b, a`, over and over from separate connections. With the rows locked in sorted order
/// neither ever waits for the other in a cycle: no deadlock error (PostgreSQL would abort one
/// after its deadlock timeout), every commit is stored or a plain conflict that a retry fixes.
#[test]
fn multi_stream_appends_in_opposite_orders_do_not_deadlock() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.name();
    let stores = [schemas.open(&schema), schemas.open(&schema)];
    let (a, b) = (contract::stream("a"), contract::stream("b"));
    const COMMITS: u64 = 100;
    let started = Instant::now();
    let conflicts: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(t, store)| {
                let (a, b) = (a.clone(), b.clone());
                scope.spawn(move || {
                    let mut conflicts = 0;
                    for i in 0..COMMITS {
                        let command = format!("t{t}-c{i}");
                        loop {
                            let va = block_on(store.read_stream(&a)).unwrap().len() as u64;
                            let vb = block_on(store.read_stream(&b)).unwrap().len() as u64;
                            let (first, second) = (
                                contract::batch(&a, va, 1, &command),
                                contract::batch(&b, vb, 1, &command),
                            );
                            let appends = if t == 0 {
                                vec![first, second]
                            } else {
                                vec![second, first]
                            };
                            match block_on(store.append(contract::commit(appends))) {
                                Ok(stored) => {
                                    assert_eq!(stored.len(), 2);
                                    break;
                                }
                                Err(StoreError::Conflict { .. }) => conflicts += 1,
                                Err(e) => panic!("task {t} commit {i}: {e}"),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let store = &stores[0];
    assert_eq!(
        block_on(store.read_stream(&a)).unwrap().len() as u64,
        2 * COMMITS
    );
    assert_eq!(
        block_on(store.read_stream(&b)).unwrap().len() as u64,
        2 * COMMITS
    );
    assert_eq!(block_on(store.head()).unwrap(), 4 * COMMITS);
    eprintln!(
        "{} commits in opposite orders in {:?}, {} conflicts retried",
        2 * COMMITS,
        started.elapsed(),
        conflicts.iter().sum::<u64>()
    );
}

/// A count from the environment, or `default`.
fn count_from_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 16 tasks × 1,000 appends (issue 19's bar), each task on its own connection pool, while a
/// reader tails the log with `read_all(last seen)`: the positions are exactly 1..=16,000, every
/// append got consecutive ones, and the reader, which only ever asks for what follows what it
/// has, saw every one of them in order — no event committed behind its back at a position it
/// had passed. About 20 s here; `LENDKIT_PG_WRITERS` and `LENDKIT_PG_APPENDS` change the shape.
#[test]
fn positions_are_contiguous_under_concurrent_writers_and_a_tailing_reader() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.name();
    let tasks = usize::try_from(count_from_env("LENDKIT_PG_WRITERS", 16)).unwrap();
    let appends = count_from_env("LENDKIT_PG_APPENDS", 1000);
    let writers: Vec<PgEventStore> = (0..tasks).map(|_| schemas.open(&schema)).collect();
    let reader = schemas.open(&schema);
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let (batches, tailed) = std::thread::scope(|scope| {
        let tail = scope.spawn(|| {
            let mut seen = Vec::new();
            let mut last = 0;
            loop {
                let finished = done.load(Ordering::SeqCst) == tasks;
                let next = block_on(reader.read_all(last, 64)).unwrap();
                for e in &next {
                    assert_eq!(e.position, last + 1, "the tail skipped a position");
                    last = e.position;
                    seen.push(e.position);
                }
                if finished && next.is_empty() {
                    return seen;
                }
            }
        });
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(t, store)| {
                let done = &done;
                scope.spawn(move || {
                    let s = contract::stream(&format!("w{t}"));
                    let mut stored = Vec::new();
                    for i in 0..appends {
                        let commit =
                            contract::commit(vec![contract::batch(&s, i, 1, &format!("t{t}-{i}"))]);
                        stored.push(block_on(store.append(commit)).unwrap());
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                    stored
                })
            })
            .collect();
        let batches: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        (batches, tail.join().unwrap())
    });
    let elapsed = started.elapsed();
    let total = tasks as u64 * appends;
    let log = block_on(reader.read_all(0, usize::MAX)).unwrap();
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    assert_eq!(tailed, (1..=total).collect::<Vec<_>>());
    assert_eq!(batches.len() as u64, total);
    assert_eq!(block_on(reader.head()).unwrap(), total);
    eprintln!(
        "{total} appends from {tasks} writers in {elapsed:?}: {:.0} appends/s",
        total as f64 / elapsed.as_secs_f64()
    );
}

/// Events, command records, checkpoints and dead letters are in the database, not in the
/// handle: a new connection finds them and goes on from the same positions.
#[test]
fn everything_survives_a_reconnect() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.name();
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
        let store = schemas.open(&schema);
        let stored = block_on(store.append(contract::commit(vec![
            contract::batch(&s, 0, 3, "c-1"),
            contract::batch(&t, 0, 1, "c-1"),
        ])))
        .unwrap();
        block_on(store.save_checkpoint("catalog/1#0", 2)).unwrap();
        block_on(store.add_dead_letter(letter.clone())).unwrap();
        stored
    };
    let store = schemas.open(&schema);
    assert_eq!(block_on(store.head()).unwrap(), 4);
    assert_eq!(block_on(store.read_all(0, 100)).unwrap(), stored);
    assert_eq!(block_on(store.checkpoint("catalog/1#0")).unwrap(), Some(2));
    assert_eq!(block_on(store.dead_letters()).unwrap(), [letter]);
    let record = block_on(store.command(&CommandId::new("c-1")))
        .unwrap()
        .unwrap();
    assert_eq!(record.fingerprint, "fp:c-1");
    assert_eq!(record.events, stored);
    assert_eq!(
        block_on(store.append(contract::commit(vec![contract::batch(&s, 3, 1, "c-1")]))),
        Err(StoreError::CommandApplied("c-1".into()))
    );
    let more =
        block_on(store.append(contract::commit(vec![contract::batch(&s, 3, 1, "c-2")]))).unwrap();
    assert_eq!(more[0].position, 5, "positions go on after a reconnect");
}

/// The log reads with plain SQL: one row per event with its stream, type and command, and the
/// body is the envelope's JSON with its position.
#[test]
fn the_log_reads_with_plain_sql() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.name();
    let store = schemas.open(&schema);
    let s = contract::stream("m-1");
    block_on(store.append(contract::commit(vec![contract::batch(&s, 0, 2, "c-1")]))).unwrap();
    let got = rows(
        &url,
        &format!(
            "SELECT position::text, stream_id, version::text, type, command_id, (body->>'position')
             FROM {schema}.events ORDER BY position"
        ),
    );
    let row = |p: &str, v: &str| {
        ["p", "member:m-1", "v", "MemberJoined", "c-1", "p"]
            .iter()
            .map(|c| {
                Some(match *c {
                    "p" => p.to_owned(),
                    "v" => v.to_owned(),
                    other => other.to_owned(),
                })
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(got, [row("1", "1"), row("2", "2")]);
    let meta = rows(
        &url,
        &format!("SELECT key, value FROM {schema}.meta ORDER BY key"),
    );
    assert_eq!(
        meta,
        [
            vec![Some("format".into()), Some("lendkit-events".into())],
            vec![Some("schema".into()), Some(SCHEMA_VERSION.to_string())],
        ]
    );
}

/// A library written by a newer lendkit — a newer event schema in `meta`, or a migration this
/// build does not know — is refused with `SchemaTooNew`, and opening writes nothing.
#[test]
fn a_schema_written_by_a_newer_lendkit_is_refused_untouched() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);

    let newer_events = schemas.name();
    drop(schemas.open(&newer_events));
    psql(
        &url,
        &format!(
            "UPDATE {newer_events}.meta SET value = '{}' WHERE key = 'schema'",
            SCHEMA_VERSION + 1
        ),
    );
    match PgEventStore::connect(&url, PgOptions::in_schema(&newer_events)) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }

    let newer_tables = schemas.name();
    drop(schemas.open(&newer_tables));
    let known = lendkit_adapters::pg_store::MIGRATIONS.len();
    psql(
        &url,
        &format!(
            "INSERT INTO {newer_tables}.migrations(version, name) VALUES ({}, 'from the future');
             CREATE TABLE {newer_tables}.future(x int);",
            known + 1
        ),
    );
    let before = rows(
        &url,
        &format!("SELECT version::text FROM {newer_tables}.migrations ORDER BY version"),
    );
    match PgEventStore::connect(&url, PgOptions::in_schema(&newer_tables)) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found as usize, supported as usize), (known + 1, known));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(
        rows(
            &url,
            &format!("SELECT version::text FROM {newer_tables}.migrations ORDER BY version"),
        ),
        before,
        "nothing was written"
    );
}

/// A library written before appends were one function call (migration 1 only) gets the
/// function on its next open and appends on from where it was; a library whose function was
/// dropped (by hand) is damaged, not a library that fails each append.
#[test]
fn a_library_of_migration_1_is_migrated_and_one_without_its_function_is_damaged() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let s = contract::stream("m-1");

    let old = schemas.name();
    let stored = {
        let store = schemas.open(&old);
        block_on(store.append(contract::commit(vec![contract::batch(&s, 0, 2, "c-1")]))).unwrap()
    };
    psql(
        &url,
        &format!(
            "DROP FUNCTION {old}.append_commit; DELETE FROM {old}.migrations WHERE version > 1;"
        ),
    );
    let store = schemas.open(&old);
    assert_eq!(
        rows(
            &url,
            &format!("SELECT max(version)::text FROM {old}.migrations")
        ),
        [[Some(
            lendkit_adapters::pg_store::MIGRATIONS.len().to_string()
        )]],
        "the missing migration ran"
    );
    assert_eq!(block_on(store.read_all(0, 10)).unwrap(), stored);
    let more =
        block_on(store.append(contract::commit(vec![contract::batch(&s, 2, 1, "c-2")]))).unwrap();
    assert_eq!((more[0].position, more[0].version), (3, 3));
    assert_eq!(
        block_on(store.append(contract::commit(vec![contract::batch(&s, 2, 1, "c-3")]))),
        Err(StoreError::Conflict {
            stream: s.to_string(),
            expected: 2,
            actual: 3
        })
    );
    drop(store);

    psql(&url, &format!("DROP FUNCTION {old}.append_commit"));
    match PgEventStore::connect(&url, PgOptions::in_schema(&old)) {
        Err(StoreError::Damaged { reason, .. }) => {
            assert!(reason.contains("append_commit"), "{reason}");
        }
        other => panic!("expected Damaged, got {other:?}"),
    }
}

/// A schema holding another program's tables is not a library: opening it is refused, writes
/// nothing, and `drop_schema` will not drop it. An empty schema (made by a DBA, say) becomes one.
#[test]
fn a_foreign_schema_is_refused_and_an_empty_one_is_used() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let foreign = schemas.name();
    psql(
        &url,
        &format!(
            "CREATE SCHEMA {foreign}; CREATE TABLE {foreign}.orders(id int);
             INSERT INTO {foreign}.orders VALUES (1);"
        ),
    );
    let tables = || {
        rows(
            &url,
            &format!(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = '{foreign}' ORDER BY 1"
            ),
        )
    };
    let before = tables();
    assert!(matches!(
        PgEventStore::connect(&url, PgOptions::in_schema(&foreign)),
        Err(StoreError::NotALibrary(_))
    ));
    // A `meta` table of another shape is not lendkit's either.
    psql(&url, &format!("CREATE TABLE {foreign}.meta(k int)"));
    assert!(matches!(
        PgEventStore::connect(&url, PgOptions::in_schema(&foreign)),
        Err(StoreError::NotALibrary(_))
    ));
    assert!(matches!(
        PgEventStore::drop_schema(&url, &foreign),
        Err(StoreError::NotALibrary(_))
    ));
    assert_eq!(tables().len(), before.len() + 1, "only the test's own meta");
    psql(&url, &format!("DROP SCHEMA {foreign} CASCADE"));

    let empty = schemas.name();
    psql(&url, &format!("CREATE SCHEMA {empty}"));
    let store = schemas.open(&empty);
    let s = contract::stream("m-1");
    block_on(store.append(contract::commit(vec![contract::batch(&s, 0, 1, "c-1")]))).unwrap();
    assert_eq!(block_on(store.head()).unwrap(), 1);
    drop(store);
    assert!(PgEventStore::drop_schema(&url, &empty).unwrap());
    assert!(!PgEventStore::drop_schema(&url, &empty).unwrap());
}

/// Processes opening one new schema at once take turns: one creates it, the others find it made.
#[test]
fn concurrent_opens_of_a_new_schema_create_it_once() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.name();
    let stores: Vec<PgEventStore> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| schemas.open(&schema)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let s = contract::stream("m-1");
    block_on(stores[0].append(contract::commit(vec![contract::batch(&s, 0, 1, "c-1")]))).unwrap();
    for store in &stores {
        assert_eq!(block_on(store.head()).unwrap(), 1);
    }
    assert_eq!(
        rows(
            &url,
            &format!("SELECT count(*)::text FROM {schema}.migrations")
        ),
        [vec![Some(
            lendkit_adapters::pg_store::MIGRATIONS.len().to_string()
        )]]
    );
}

/// The store's futures run on its own runtime, so they can be awaited inside a host's tokio
/// runtime as well as under `block_on`, and the store may be dropped there.
#[test]
fn the_store_works_inside_a_host_tokio_runtime() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let store = schemas.fresh();
    let host = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    host.block_on(async move {
        let s = contract::stream("m-1");
        store
            .append(contract::commit(vec![contract::batch(&s, 0, 1, "c-1")]))
            .await
            .unwrap();
        assert_eq!(store.head().await.unwrap(), 1);
        drop(store);
    });
}

/// A server that goes away under an open store turns calls into `STORAGE` errors, not panics.
#[test]
fn calls_to_an_unreachable_server_fail_with_a_storage_error() {
    let options = PgOptions {
        connect_timeout: Duration::from_secs(1),
        ..PgOptions::in_schema("lendkit")
    };
    match PgEventStore::connect("postgres://postgres@127.0.0.1:1/test", options) {
        Err(StoreError::Backend(why)) => assert!(why.contains("unreachable"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// The server ends the store's connections under it (as a restart or a failover does): calls
/// answer with a `STORAGE` error or succeed, never panic, and once the server takes
/// connections again the store appends as before, with nothing committed lost and no gap.
#[test]
fn connections_ended_by_the_server_are_replaced() {
    let Some(url) = pg_url() else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.name();
    let store = schemas.open(&schema);
    let s = contract::stream("m-1");
    let mut version = 0;
    for round in 0..3 {
        block_on(store.append(contract::commit(vec![contract::batch(
            &s,
            version,
            1,
            &format!("before-{round}"),
        )])))
        .unwrap();
        version += 1;
        // Only this store's connections (the test's schema names them).
        let ended = rows(
            &url,
            &format!(
                "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity
                 WHERE application_name = 'lendkit:{schema}'"
            ),
        );
        assert!(
            !ended.is_empty(),
            "round {round}: no connection of the store found"
        );
        let mut failures = 0;
        loop {
            let command = format!("after-{round}");
            match block_on(store.append(contract::commit(vec![contract::batch(
                &s, version, 1, &command,
            )]))) {
                Ok(_) => break,
                Err(StoreError::Backend(why)) => {
                    failures += 1;
                    assert!(failures < 20, "the store never recovered: {why}");
                    // A lost answer may hide a commit: the same command id tells.
                    if block_on(store.command(&CommandId::new(command.as_str())))
                        .ok()
                        .flatten()
                        .is_some()
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        version += 1;
    }
    let log = block_on(store.read_all(0, usize::MAX)).unwrap();
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=version).collect::<Vec<_>>()
    );
}
