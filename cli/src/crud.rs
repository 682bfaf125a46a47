//! The peer in the bench: the same lending lifecycle written as plain CRUD on SQLite, the way a
//! developer would without lendkit — rusqlite with SQLite compiled in, the statements one would
//! write, one transaction per user request:
//!
//! 1. **reserve**: `UPDATE accounts SET balance = balance - fee WHERE member = ? AND balance >=
//!    fee`, `UPDATE books SET available = available - 1 WHERE book = ? AND available > 0`, then
//!    `INSERT` the rental as confirmed (the charge and the copy are checked by the rows changed);
//! 2. **loan**: `UPDATE rentals SET status = 'on_loan' WHERE id = ? AND status = 'confirmed'`;
//! 3. **return**: the rental to `returned` (guarded by its status) and the copy back.
//!
//! It keeps no history, no views, no notices, no idempotency: it is the floor lendkit is compared
//! with, on the same members, books and lifecycles, in the same run.

use rusqlite::{params, Connection};
use std::path::Path;
use std::time::Instant;

/// Where the CRUD database lives and how it syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// `:memory:`.
    Memory,
    /// A file in WAL mode with `synchronous=FULL` (an fsync per transaction).
    Full,
    /// A file in WAL mode with `synchronous=NORMAL` (syncs at WAL checkpoints).
    Normal,
}

impl Sync {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Sync::Memory => "in memory",
            Sync::Full => "file, synchronous=FULL",
            Sync::Normal => "file, synchronous=NORMAL",
        }
    }
}

/// The database file of a `sync` setting (none in memory).
fn path_of(dir: &Path, sync: Sync) -> std::path::PathBuf {
    dir.join(format!("crud-{}.sqlite", sync.name().len()))
}

fn open(dir: &Path, sync: Sync) -> rusqlite::Result<Connection> {
    let conn = match sync {
        Sync::Memory => Connection::open_in_memory()?,
        Sync::Full | Sync::Normal => {
            std::fs::create_dir_all(dir)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let path = path_of(dir, sync);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.busy_timeout(std::time::Duration::from_secs(30))?;
            conn.pragma_update(
                None,
                "synchronous",
                if sync == Sync::Full { "FULL" } else { "NORMAL" },
            )?;
            conn
        }
    };
    conn.execute_batch(
        "CREATE TABLE accounts (member TEXT PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE books (book TEXT PRIMARY KEY, available INTEGER NOT NULL, fee INTEGER NOT NULL);
         CREATE TABLE rentals (id TEXT PRIMARY KEY, member TEXT NOT NULL, book TEXT NOT NULL,
                               status TEXT NOT NULL, fee INTEGER NOT NULL);",
    )?;
    Ok(conn)
}

fn reserve(conn: &mut Connection, id: &str, member: &str, book: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let fee: i64 = tx
        .prepare_cached("SELECT fee FROM books WHERE book = ?1")?
        .query_row(params![book], |r| r.get(0))?;
    let charged = tx
        .prepare_cached(
            "UPDATE accounts SET balance = balance - ?2 WHERE member = ?1 AND balance >= ?2",
        )?
        .execute(params![member, fee])?;
    let held = tx
        .prepare_cached(
            "UPDATE books SET available = available - 1 WHERE book = ?1 AND available > 0",
        )?
        .execute(params![book])?;
    if charged != 1 || held != 1 {
        return Ok(false); // rolled back when `tx` drops
    }
    tx.prepare_cached(
        "INSERT INTO rentals (id, member, book, status, fee) VALUES (?1, ?2, ?3, 'confirmed', ?4)",
    )?
    .execute(params![id, member, book, fee])?;
    tx.commit()?;
    Ok(true)
}

fn lend(conn: &mut Connection, id: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = tx
        .prepare_cached(
            "UPDATE rentals SET status = 'on_loan' WHERE id = ?1 AND status = 'confirmed'",
        )?
        .execute(params![id])?;
    tx.commit()?;
    Ok(n == 1)
}

fn give_back(conn: &mut Connection, id: &str, book: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = tx
        .prepare_cached(
            "UPDATE rentals SET status = 'returned' WHERE id = ?1 AND status = 'on_loan'",
        )?
        .execute(params![id])?;
    if n != 1 {
        return Ok(false);
    }
    tx.prepare_cached("UPDATE books SET available = available + 1 WHERE book = ?1")?
        .execute(params![book])?;
    tx.commit()?;
    Ok(true)
}

/// Lifecycles per second of the CRUD peer: `members` members with enough points, `books` books
/// with enough copies, `lifecycles` reserve → loan → return, in batches of `batch` (each phase
/// for the whole batch, as `lendkit bench` runs it) — `batch` = 1 finishes each lifecycle before
/// the next. With `callers` > 1, that many threads run every `callers`-th lifecycle each,
/// sharing the one connection behind a mutex.
pub fn lifecycles_per_s(
    dir: &Path,
    sync: Sync,
    members: usize,
    books: usize,
    lifecycles: usize,
    batch: usize,
    callers: usize,
) -> rusqlite::Result<f64> {
    let mut conn = open(dir, sync)?;
    {
        let tx = conn.transaction()?;
        for m in 0..members {
            tx.execute(
                "INSERT INTO accounts VALUES (?1, ?2)",
                params![format!("m-{m}"), 1_000_000_000i64],
            )?;
        }
        let copies = i64::try_from(lifecycles / books.max(1) + 2).unwrap_or(i64::MAX);
        for b in 0..books {
            tx.execute(
                "INSERT INTO books VALUES (?1, ?2, 30)",
                params![format!("b-{b}"), copies],
            )?;
        }
        tx.commit()?;
    }
    let callers = callers.max(1);
    let shared = std::sync::Mutex::new(conn);
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let outcome: rusqlite::Result<()> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..callers)
            .map(|t| {
                let (shared, failed) = (&shared, &failed);
                scope.spawn(move || -> rusqlite::Result<()> {
                    // Callers share the one connection: a connection each would make SQLite's
                    // busy handler put the losers of every write race to sleep (for
                    // milliseconds), which no team would ship — a pool of one is what they do.
                    let mine: Vec<usize> = (t..lifecycles).step_by(callers).collect();
                    for chunk in mine.chunks(batch.max(1)) {
                        let n = {
                            let mut conn = shared.lock().unwrap_or_else(|p| p.into_inner());
                            run_batch(&mut conn, chunk, members, books)?
                        };
                        failed.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        threads
            .into_iter()
            .try_for_each(|t| t.join().unwrap_or(Err(rusqlite::Error::InvalidQuery)))
    });
    outcome?;
    let secs = started.elapsed().as_secs_f64();
    let failed = failed.into_inner();
    if failed > 0 {
        eprintln!("the SQLite CRUD peer refused {failed} steps; its figure is not comparable");
    }
    Ok(lifecycles as f64 / secs.max(1e-9))
}

/// The lifecycles numbered `which`, phase by phase; how many steps were refused.
fn run_batch(
    conn: &mut Connection,
    which: &[usize],
    members: usize,
    books: usize,
) -> rusqlite::Result<usize> {
    let ids: Vec<(String, String, String)> = which
        .iter()
        .map(|i| {
            (
                format!("r-{i}"),
                format!("m-{}", i % members.max(1)),
                format!("b-{}", i % books.max(1)),
            )
        })
        .collect();
    let mut failed = 0;
    for (id, member, book) in &ids {
        failed += usize::from(!reserve(conn, id, member, book)?);
    }
    for (id, _, _) in &ids {
        failed += usize::from(!lend(conn, id)?);
    }
    for (id, _, book) in &ids {
        failed += usize::from(!give_back(conn, id, book)?);
    }
    Ok(failed)
}
