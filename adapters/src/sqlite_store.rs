//! [`SqliteEventStore`]: the durable embedded event log in one SQLite file (SQLite is compiled
//! in through rusqlite's `bundled` feature; no system library is needed).
//!
//! # Schema
//!
//! One SQLite database in WAL mode (`library.sqlite`, with SQLite's `-wal` and `-shm` files
//! beside it while it is open, and lendkit's lock file `library.sqlite.lock`):
//!
//! ```sql
//! CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);  -- format, schema; and
//!     -- `snapshot:NAME`: a blob, the snapshot's position (8 bytes, big-endian) then its body
//! CREATE TABLE events(
//!     position   INTEGER PRIMARY KEY,  -- global position, from 1, without gaps
//!     stream     TEXT NOT NULL,        -- `member:m-1`
//!     version    INTEGER NOT NULL,     -- the event's version in its stream, from 1
//!     type       TEXT NOT NULL,        -- `MemberJoined`
//!     command_id TEXT NOT NULL,        -- the command (commit) that stored it
//!     body       TEXT NOT NULL,        -- the envelope's JSON wire form (with its schema version)
//!     UNIQUE(stream, version));
//! CREATE TABLE streams(stream TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
//! CREATE TABLE commands(
//!     command_id     TEXT PRIMARY KEY,
//!     fingerprint    TEXT NOT NULL,
//!     first_position INTEGER NOT NULL,  -- a commit's events take consecutive positions,
//!     last_position  INTEGER NOT NULL)  -- so these two name all of them
//!     WITHOUT ROWID;
//! CREATE TABLE checkpoints(consumer TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
//! CREATE TABLE dead_letters(
//!     seq  INTEGER PRIMARY KEY,         -- oldest first; replacing a letter keeps its place
//!     id   TEXT NOT NULL UNIQUE,        -- `consumer@position`
//!     body TEXT NOT NULL);              -- the dead letter as JSON
//! ```
//!
//! A new file gets 2 KiB pages, and `WITHOUT ROWID` on the tables keyed by text (one b-tree
//! each instead of a table and its index: fewer pages per commit). Files made before either
//! change answer the same SQL and open as they are.
//!
//! `meta` holds `format` = `lendkit-events` (what makes a SQLite file a lendkit library) and
//! `schema` = the event payload schema written ([`SCHEMA_VERSION`]), as sled's `meta` tree does.
//! The head is `max(position)`. The log can be read with SQLite's own tools, also while the
//! library is open: `sqlite3 library.sqlite 'select position, stream, type from events'`.
//! (Writing to it with them while lendkit runs is not supported.)
//!
//! # Appends
//!
//! Writes go through one writer connection. An [`append`](EventStore::append) runs inside a
//! `BEGIN IMMEDIATE` transaction: every stream's version is checked (guards with no events
//! too), then the command id (a commit that stores events under an applied id fails with
//! `CommandApplied`), then the events get the positions after `max(position)`, in commit order,
//! and the stream versions and the command record are written; a crash leaves all of an append
//! or none of it. **Group commit:** appends (and checkpoint and dead-letter writes) that arrive
//! while a transaction is being written wait, and the next writer stores all of them in one
//! transaction, each checked against the state its predecessors left, and one commit (one
//! `fsync`) covers them all. A refused append (conflict, applied command id) writes nothing and
//! does not disturb the others; a storage failure fails the whole group and stores none of it.
//! Reads use a small pool of read-only connections and do not wait for writers (WAL).
//!
//! # Durability
//!
//! With [`Durability::EveryCommit`] (the default) the database runs with `synchronous=FULL`:
//! an append returns only after its transaction is synced to the write-ahead log, so a command
//! that returned success survives a crash or power loss. With [`Durability::Periodic`]`(ms)` it
//! runs with `synchronous=NORMAL`, and a background thread runs `PRAGMA wal_checkpoint(PASSIVE)`
//! every `ms` milliseconds (a checkpoint syncs the log first); a commit checkpoints by itself
//! only once the log has grown past 16,384 pages, so commits do not wait for checkpoints. Appends return sooner; a killed
//! process loses nothing that returned, and a power loss or OS crash loses at most the appends
//! since the last sync, whole appends only. The thread stops when the store is dropped.
//!
//! [`append_unsynced`](EventStore::append_unsynced) (the reactions of a settle pass, or of a
//! command with immediate reactions) and checkpoints are not committed on their own: they go
//! into a write transaction the writer keeps open, each group under a savepoint, so a settle's
//! reactions and the checkpoints they moved — or a command and its reactions — are **one
//! transaction**: the pages they share are written to the log once. The open transaction is
//! committed by the next synced `append`, by [`sync`](EventStore::sync) (under `EveryCommit`
//! with a sync, writing a counter row in `meta` (`syncs`) so there is something to sync; under
//! `Periodic` without), before any read (read-only connections see only what is committed;
//! under `EveryCommit` that commit does not sync, and the next synced commit does), by
//! [`flush`](SqliteEventStore::flush), and when the store is dropped. A crash before then loses
//! those unsynced writes, a suffix, as the port allows. Should the commit of such a transaction
//! itself fail (a full disk), the writes it carried are gone although their callers were told
//! they were stored: the store then refuses every later call with a `STORAGE` error that says
//! to reopen the library, which rebuilds everything from what the file holds.
//!
//! # Opening, the lock, and creation
//!
//! 1. Judge the path before touching it: a directory, or a file that is neither empty nor a
//!    SQLite database (its first 16 bytes are `SQLite format 3\0`), is refused as `NotALibrary`.
//! 2. Take lendkit's lock: an exclusive `flock` (fs2) on the sidecar file `PATH.lock`, held until
//!    the store is dropped, as sled's `lendkit.lock`. A second opener (another process, or another
//!    handle in this one) waits up to 1.5 s, then gets `Locked` (`LIBRARY_LOCKED`). **Why a
//!    sidecar lock and not `PRAGMA locking_mode=EXCLUSIVE`:** SQLite's exclusive mode would
//!    also shut out every reader, so `sqlite3 library.sqlite 'select …'` would fail while the
//!    library is open, and it would force all reads onto the writer connection. The sidecar lock
//!    keeps lendkit to one writer process and leaves SQLite's own locking to order the readers.
//!    A refused open removes the lock file again if it created it.
//! 3. Look at the tables (reading only). A file with no tables at all (empty, or what a kill
//!    during creation left) is a new library: the database is switched to WAL, and every table
//!    and the `meta` rows are created in one transaction, so creation is all or nothing and a
//!    kill during it leaves a file that the next open creates afresh. A file whose `meta` says
//!    `format` = `lendkit-events` is a library; its `schema` must not be newer than this build
//!    reads (`SchemaTooNew`), and every table must be there (`Damaged` if not). Anything else
//!    — a database of another program, or lendkit's table names without the `meta` marker,
//!    which lendkit's one-transaction creation never leaves behind — is `NotALibrary`. A
//!    refused file is left as it was found.
//! 4. SQLite's own errors map as sled's do. While opening, a file with SQLite's header that
//!    SQLite still cannot read as a database (`SQLITE_NOTADB`) is `NotALibrary`, and a database
//!    that another program keeps locked (`SQLITE_BUSY`/`SQLITE_LOCKED` past the busy timeout) is
//!    `Locked` (`LIBRARY_LOCKED`). At any time a damaged file (`SQLITE_CORRUPT`, and
//!    `SQLITE_NOTADB` once open) is `Damaged` (`CORRUPT`): retrying cannot help, restore a
//!    backup; an event whose body cannot be decoded is `Corrupt`. Everything else (I/O errors,
//!    a full disk, a write lock that another program holds past the busy timeout) is `Backend`
//!    (`STORAGE`, retryable).

use crate::durability::Durability;
use crate::lock_file::{io_failed, sync_dir, LockFile};
use crate::memory_store::check_shape;
use async_trait::async_trait;
use lendkit_core::error::StoreError;
use lendkit_core::event::{Envelope, SCHEMA_VERSION};
use lendkit_core::ids::{CommandId, StreamId};
use lendkit_core::ports::{CommandRecord, Commit, DeadLetter, EventStore};
use rusqlite::types::Value;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// [`Inner::head`] when the writer does not know the head (read it from the table).
const HEAD_UNKNOWN: u64 = u64::MAX;

/// The value of `meta.format` in every lendkit database.
const FORMAT: &str = "lendkit-events";
/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
/// How long `open` waits for a lock held elsewhere before reporting `Locked`.
const LOCK_WAIT: Duration = Duration::from_millis(1500);
/// How long a statement waits for SQLite's own locks (another program's transaction) before
/// failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections kept open between reads.
const IDLE_READERS: usize = 4;
/// Pages of log (4 KiB each) past which a commit checkpoints by itself under `Periodic`.
const WRITER_CHECKPOINT_PAGES: i64 = 16_384;
/// Every table of a library (besides `meta`).
const TABLES: &[&str] = &[
    "events",
    "streams",
    "commands",
    "checkpoints",
    "dead_letters",
];
/// The tables, created in one transaction with the `meta` rows (see the module documentation).
const CREATE_SCHEMA: &str = "
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events(
    position INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    command_id TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE(stream, version));
CREATE TABLE streams(stream TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE commands(
    command_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    first_position INTEGER NOT NULL,
    last_position INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE checkpoints(consumer TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE dead_letters(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
";

/// The durable store on one SQLite file. Cheap to clone (clones share the database); the
/// file is closed, and lendkit's lock released, when the last clone is dropped.
#[derive(Clone)]
pub struct SqliteEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    durability: Durability,
    /// The writer connection; whoever holds it writes the waiting group (see [`Writes`]).
    writer: Mutex<Connection>,
    /// Writes waiting for the writer, and the outcomes of written ones.
    writes: Mutex<Writes>,
    /// Signalled after every group is written.
    written: Condvar,
    /// Idle read-only connections.
    readers: Mutex<Vec<Connection>>,
    /// Set when a group was committed without a sync under `EveryCommit`; cleared by the next
    /// synced group (only the writer changes it).
    unsynced: std::sync::atomic::AtomicBool,
    /// Set while the writer holds a write transaction open with unsynced writes in it (only
    /// the writer changes it; readers commit it first).
    open: std::sync::atomic::AtomicBool,
    /// Why the store refuses every call: the commit of an open transaction failed, taking
    /// writes its callers were told were stored.
    poisoned: Mutex<Option<String>>,
    /// The log's head as the writer last left it, or [`HEAD_UNKNOWN`]: lendkit is the file's
    /// only writer (under its lock), so a commit need not ask SQLite for `max(position)`. Only
    /// the writer changes it; any failure of a group makes it unknown again.
    head: std::sync::atomic::AtomicU64,
    /// The `Periodic` checkpoint thread, stopped on drop.
    checkpointer: Option<Checkpointer>,
    /// lendkit's lock on the file; declared last so it is released after every connection.
    _lock: LockFile,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(Checkpointer { stop, thread }) = self.checkpointer.take() {
            drop(stop);
            // The thread only sleeps and checkpoints; it ends as soon as it sees the stop.
            let _ = thread.join();
        }
        // The readers close first, so that the writer is the last connection: the last one to
        // close folds the write-ahead log into the file and removes `-wal` and `-shm`, which a
        // read-only connection cannot do.
        lock(&self.readers).clear();
        // Unsynced writes still in the open transaction are committed, not rolled back.
        if self.open.load(std::sync::atomic::Ordering::SeqCst) {
            let writer = self
                .writer
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            let _ = writer.execute_batch("COMMIT");
        }
    }
}

/// The background checkpoint thread of [`Durability::Periodic`].
struct Checkpointer {
    /// Dropping it wakes the thread and ends it.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// One write, as queued for the writer.
enum Op {
    /// A commit, and whether it must be synced before its caller hears of it.
    Append(Commit, bool),
    /// No data: a synced commit that makes every unsynced one before it durable.
    Sync,
    /// Commits the open transaction, if any, without a sync (before a read).
    Flush,
    SaveCheckpoint(String, u64),
    SaveCheckpoints(Vec<(String, u64)>),
    AddDeadLetter(DeadLetter),
    RemoveDeadLetter(String),
    /// A snapshot: its name, position and body.
    SaveSnapshot(String, u64, Vec<u8>),
}

/// What a write returned.
enum Done {
    Appended(Vec<Envelope>),
    Saved,
    Removed(bool),
}

/// The group-commit queue: writes wait here under a ticket until a writer stores them.
#[derive(Default)]
struct Writes {
    next_ticket: u64,
    waiting: Vec<(u64, Op)>,
    done: HashMap<u64, Result<Done, StoreError>>,
}

impl std::fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEventStore")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The SQLite result code of a rusqlite error, if it carries one.
fn code_of(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
        rusqlite::Error::SqlInputError { error, .. } => Some(error.code),
        _ => None,
    }
}

/// A SQLite failure of the library at `path` as a store error: a damaged file is
/// [`StoreError::Damaged`] (retrying cannot help), anything else [`StoreError::Io`] with the
/// SQLite error as its source.
fn sqlite_failed(path: &Path, e: rusqlite::Error) -> StoreError {
    match code_of(&e) {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Damaged {
            path: path.display().to_string(),
            reason: e.to_string(),
        },
        // The file became write-protected while open (or its file system read-only).
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly(format!("{} ({e})", path.display())),
        _ => StoreError::io(path.display().to_string(), e),
    }
}

/// A number stored in an INTEGER column (SQLite's are signed 64-bit).
fn to_sql_int(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Backend(format!("{what} {n} is too large to store")))
}

/// A number read back from an INTEGER column; a negative one means the file was tampered with.
fn from_sql_int(n: i64, position: u64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt {
        position,
        reason: format!("{what} is {n}"),
    })
}

/// What a path holds, judged without opening it as a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// Nothing is there yet.
    Nothing,
    /// An empty file: nothing worth keeping (SQLite takes it as an empty database).
    Empty,
    /// A SQLite database: a lendkit library, or another program's (`meta` tells).
    Database,
}

fn survey(path: &Path, shown: &str) -> Result<Found, StoreError> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(io_failed(shown, "read it", e)),
    };
    if metadata.is_dir() {
        return Err(StoreError::NotALibrary(format!("{shown} (a directory)")));
    }
    if metadata.len() == 0 {
        return Ok(Found::Empty);
    }
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| io_failed(shown, "read it", e))?;
    match file.read_exact(&mut header) {
        Ok(()) if &header == SQLITE_HEADER => Ok(Found::Database),
        Ok(()) => Err(StoreError::NotALibrary(format!(
            "{shown} (not a SQLite database)"
        ))),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(StoreError::NotALibrary(format!(
            "{shown} (a file too short to be a SQLite database)"
        ))),
        Err(e) => Err(io_failed(shown, "read it", e)),
    }
}

/// `PATH.lock`: lendkit's lock file beside the database.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// What the tables of an opened file say it is.
enum Kind {
    /// No table at all: a library to create.
    Fresh,
    /// A lendkit library (format and schema checked).
    Library,
}

impl SqliteEventStore {
    /// Opens (or creates) the lendkit library in the SQLite file at `path` (its parent folders
    /// are created if need be); see the module documentation for what opening does.
    ///
    /// Fails with [`StoreError::NotALibrary`] when the path is a directory or a file holding
    /// something else, [`StoreError::SchemaTooNew`] when a newer lendkit wrote it, and
    /// [`StoreError::Locked`] when it is open elsewhere; in each case nothing is changed.
    /// [`StoreError::Damaged`] means SQLite cannot read the file (restore a backup).
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        // Judge the path before touching it: a directory or another kind of file is refused as found.
        if survey(&path, &shown)? == Found::Nothing {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| io_failed(&shown, "create its folder", e))?;
            }
        }
        let lock = LockFile::acquire(&lock_path(&path), &shown, Instant::now() + LOCK_WAIT)?;
        // SQLite would open a write-protected file read-only and fail at the first write.
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        let shm = PathBuf::from(format!("{}-shm", path.display()));
        if let Err(e) =
            crate::lock_file::check_writable(&shown, [path.as_path(), wal.as_path(), shm.as_path()])
        {
            lock.release_as_found();
            return Err(e);
        }
        let writer = match Self::open_locked(&path, &shown, durability) {
            Ok(writer) => writer,
            Err(e) => {
                if matches!(
                    e,
                    StoreError::NotALibrary(_) | StoreError::SchemaTooNew { .. }
                ) {
                    lock.release_as_found();
                }
                return Err(e);
            }
        };
        let checkpointer = match durability {
            // Every commit syncs anyway; the checkpoints SQLite runs as the log grows add
            // about one sync per thousand pages.
            Durability::EveryCommit => None,
            Durability::Periodic(ms) => Some(Self::start_checkpointer(
                Self::connect(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?,
                Duration::from_millis(ms.max(1)),
            )?),
        };
        Ok(SqliteEventStore {
            inner: Arc::new(Inner {
                path,
                durability,
                writer: Mutex::new(writer),
                writes: Mutex::new(Writes::default()),
                written: Condvar::new(),
                readers: Mutex::new(Vec::new()),
                unsynced: std::sync::atomic::AtomicBool::new(false),
                open: std::sync::atomic::AtomicBool::new(false),
                poisoned: Mutex::new(None),
                head: std::sync::atomic::AtomicU64::new(HEAD_UNKNOWN),
                checkpointer,
                _lock: lock,
            }),
        })
    }

    /// A connection to the database at `path` with `flags` (plus no-mutex: each connection is
    /// used by one thread at a time) and lendkit's busy timeout.
    fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
        let failed = |e: rusqlite::Error| sqlite_failed(path, e);
        let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(failed)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        // The bundled SQLite is built with STAT4, under which a statement whose plan could
        // depend on a bound value (`version > ?2`, `LIMIT ?2`) is compiled again whenever that
        // value changes — every read. The query planner stability guarantee turns that off:
        // the cached statements stay compiled (their plans use the indexes either way).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(failed)?;
        Ok(conn)
    }

    /// The part of opening done under lendkit's lock: judge the file again, open it, check or
    /// create the schema, and set the journal and sync modes. Returns the writer connection.
    fn open_locked(
        path: &Path,
        shown: &str,
        durability: Durability,
    ) -> Result<Connection, StoreError> {
        // Look again under the lock: another opener may have created the library meanwhile.
        let found = survey(path, shown)?;
        let flags = match found {
            Found::Nothing => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            Found::Empty | Found::Database => OpenFlags::SQLITE_OPEN_READ_WRITE,
        };
        let conn = Self::connect(path, flags)?;
        // While opening, a file that passed the header check but that SQLite cannot read as a
        // database is another program's; a lock held by another program means it is in use.
        let opening = |e: rusqlite::Error| match code_of(&e) {
            Some(ErrorCode::NotADatabase) => {
                StoreError::NotALibrary(format!("{shown} (not a SQLite database: {e})"))
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Locked(shown.to_owned())
            }
            _ => sqlite_failed(path, e),
        };
        let kind = Self::kind_of(&conn, shown).map_err(|e| match e {
            Judged::Refused(e) => e,
            Judged::Failed(e) => opening(e),
        })?;
        if found == Found::Nothing {
            // Best effort: only power loss in the next moments could forget the new file's
            // name, and then the library was never used.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = sync_dir(parent);
            }
        }
        if let Kind::Fresh = kind {
            // Every commit writes each page it changed, whole, to the log: smaller pages
            // write less (a lifecycle's commits ran 14 % faster than with 4 KiB pages), and an
            // event's JSON still fits in one.
            conn.pragma_update(None, "page_size", 2048)
                .map_err(opening)?;
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(opening)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "{shown}: SQLite could not switch to write-ahead logging (journal mode is {mode})"
            )));
        }
        let synchronous = match durability {
            Durability::EveryCommit => "FULL",
            Durability::Periodic(_) => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(opening)?;
        if let Durability::Periodic(_) = durability {
            // The checkpoint thread folds the log (a checkpoint syncs): no commit waits for it,
            // unless the log has grown this far (the thread cannot keep up, or a reader holds
            // old pages).
            conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
                .map_err(opening)?;
        }
        if let Kind::Fresh = kind {
            Self::create(&conn).map_err(opening)?;
        }
        Ok(conn)
    }

    /// Reads what the file is, changing nothing.
    fn kind_of(conn: &Connection, shown: &str) -> Result<Kind, Judged> {
        let mut tables = Vec::new();
        {
            let mut stmt = conn
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
                .map_err(Judged::Failed)?;
            let mut rows = stmt.query([]).map_err(Judged::Failed)?;
            while let Some(row) = rows.next().map_err(Judged::Failed)? {
                tables.push(row.get::<_, String>(0).map_err(Judged::Failed)?);
            }
        }
        if tables.is_empty() {
            return Ok(Kind::Fresh);
        }
        let foreign = || {
            Judged::Refused(StoreError::NotALibrary(format!(
                "{shown} (a SQLite database of another program)"
            )))
        };
        if !tables.iter().any(|t| t == "meta") {
            return Err(foreign());
        }
        // Another program's `meta` table may have other columns: then it is not ours.
        let meta = |key: &str| -> Result<Option<Value>, Judged> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get::<_, Value>(0)
            })
            .optional()
            .map_err(|e| match code_of(&e) {
                Some(ErrorCode::Unknown) => foreign(),
                _ => Judged::Failed(e),
            })
        };
        match meta("format")? {
            Some(Value::Text(format)) if format == FORMAT => {}
            _ => return Err(foreign()),
        }
        let schema = match meta("schema")? {
            Some(Value::Text(text)) => text.parse::<u64>().ok(),
            Some(Value::Integer(n)) => u64::try_from(n).ok(),
            _ => None,
        };
        let Some(schema) = schema else {
            return Err(Judged::Refused(StoreError::Damaged {
                path: shown.to_owned(),
                reason: "meta has no readable schema version".into(),
            }));
        };
        if schema > u64::from(SCHEMA_VERSION) {
            return Err(Judged::Refused(StoreError::SchemaTooNew {
                found: u32::try_from(schema).unwrap_or(u32::MAX),
                supported: SCHEMA_VERSION,
            }));
        }
        if let Some(missing) = TABLES
            .iter()
            .find(|t| !tables.iter().any(|have| have == *t))
        {
            return Err(Judged::Refused(StoreError::Damaged {
                path: shown.to_owned(),
                reason: format!("the library has no {missing} table"),
            }));
        }
        Ok(Kind::Library)
    }

    /// Creates every table and the `meta` rows in one transaction.
    fn create(conn: &Connection) -> Result<(), rusqlite::Error> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let created = conn.execute_batch(CREATE_SCHEMA).and_then(|()| {
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('format', ?1), ('schema', ?2)",
                params![FORMAT, SCHEMA_VERSION.to_string()],
            )
        });
        match created {
            Ok(_) => conn.execute_batch("COMMIT"),
            Err(e) => {
                // The creation failed as a whole; rolling back cannot make it worse.
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Starts the `Periodic` thread: a passive checkpoint every `every`, until stopped.
    fn start_checkpointer(conn: Connection, every: Duration) -> Result<Checkpointer, StoreError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("lendkit-sqlite-checkpoint".into())
            .spawn(move || {
                // Until the store is dropped (the sender goes, and the wait ends at once).
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    // A failed checkpoint is tried again at the next tick; appends go on
                    // either way, and SQLite checkpoints by itself as the log grows.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop, thread })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The durability setting it was opened with.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Makes everything committed so far durable (with `Periodic`, without waiting for the next
    /// checkpoint): copies the write-ahead log into the database file and syncs both.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.commit_open()?;
        let conn = lock(&self.inner.writer);
        conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))
            .map_err(|e| self.failed(e))
    }

    /// Commits the writer's open transaction, if it holds one, so that a read-only connection
    /// sees what was stored in it; refuses when the store is poisoned.
    fn commit_open(&self) -> Result<(), StoreError> {
        if let Some(why) = lock(&self.inner.poisoned).as_ref() {
            return Err(StoreError::Backend(why.clone()));
        }
        if self.inner.open.load(std::sync::atomic::Ordering::SeqCst) {
            self.write(Op::Flush)?;
        }
        Ok(())
    }

    /// A SQLite failure of this store (see [`sqlite_failed`]).
    fn failed(&self, e: rusqlite::Error) -> StoreError {
        sqlite_failed(&self.inner.path, e)
    }

    /// Runs `read` on an idle read-only connection (opening one if none is idle).
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.commit_open()?;
        let idle = lock(&self.inner.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => Self::connect(&self.inner.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        };
        let result = read(&conn);
        let mut readers = lock(&self.inner.readers);
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
        result
    }

    /// The envelopes of the rows `(position, body)` that `sql` selects with `params`.
    fn envelopes(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(|e| self.failed(e))?;
            let mut rows = stmt.query(params).map_err(|e| self.failed(e))?;
            let mut events = Vec::new();
            while let Some(row) = rows.next().map_err(|e| self.failed(e))? {
                let position: i64 = row.get(0).map_err(|e| self.failed(e))?;
                let body: String = row.get(1).map_err(|e| self.failed(e))?;
                events.push(decode(position, &body)?);
            }
            Ok(events)
        })
    }

    /// Queues `op` and returns its outcome once a writer has stored it (see the module docs).
    fn write(&self, op: Op) -> Result<Done, StoreError> {
        let inner = &*self.inner;
        let mut writes = lock(&inner.writes);
        writes.next_ticket += 1;
        let ticket = writes.next_ticket;
        writes.waiting.push((ticket, op));
        loop {
            if let Some(done) = writes.done.remove(&ticket) {
                return done;
            }
            let writer = match inner.writer.try_lock() {
                Ok(writer) => writer,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    // A writer is at work; it wakes everyone when its group is stored.
                    writes = inner
                        .written
                        .wait(writes)
                        .unwrap_or_else(PoisonError::into_inner);
                    continue;
                }
            };
            // This thread is the writer now: it stores every waiting write, its own among them.
            let group = std::mem::take(&mut writes.waiting);
            drop(writes);
            let poisoned = lock(&inner.poisoned).clone();
            let outcomes = match poisoned {
                Some(why) => group
                    .into_iter()
                    .map(|(ticket, _)| (ticket, Err(StoreError::Backend(why.clone()))))
                    .collect(),
                None => Self::write_as_writer(inner, &writer, group),
            };
            // The outcomes are posted while the writer is still held, so that no waiting thread
            // can become a writer with nothing to write; the wake-up comes after the release.
            lock(&inner.writes).done.extend(outcomes);
            drop(writer);
            writes = lock(&inner.writes);
            inner.written.notify_all();
        }
    }
}

impl SqliteEventStore {
    /// Writes a group as the writer: kept in the open transaction (checkpoints and unsynced
    /// appends only: a checkpoint lost to a crash only has its consumer handle those events
    /// again, under ids derived from the event, and an unsynced append is one the library
    /// derives again), committed without a sync (a [`Op::Flush`] among those), or committed
    /// with the connection's sync setting (anything else). Keeps `open`, `unsynced` and
    /// `poisoned` true to what happened.
    fn write_as_writer(
        inner: &Inner,
        writer: &Connection,
        group: Vec<(u64, Op)>,
    ) -> Vec<(u64, Result<Done, StoreError>)> {
        use std::sync::atomic::Ordering::SeqCst;
        let lazy = |op: &Op| {
            matches!(
                op,
                Op::SaveCheckpoint(..) | Op::SaveCheckpoints(_) | Op::Append(_, false)
            )
        };
        let ending = if group.iter().all(|(_, op)| lazy(op)) {
            Ending::Keep
        } else if group
            .iter()
            .all(|(_, op)| lazy(op) || matches!(op, Op::Flush))
        {
            Ending::NoSync
        } else {
            Ending::Synced
        };
        let every_commit = inner.durability == Durability::EveryCommit;
        let was_open = inner.open.load(SeqCst);
        let quiet = ending == Ending::NoSync && every_commit;
        if quiet {
            let _ = run(writer, "PRAGMA synchronous=NORMAL");
        }
        let (writes, started) = (group.len(), std::time::Instant::now());
        let written = write_group(writer, &inner.path, group, ending, was_open, &inner.head);
        tracing::debug!(
            target: "lendkit::store",
            store = "sqlite",
            writes,
            ending = match ending {
                Ending::Keep => "kept open",
                Ending::NoSync => "committed",
                Ending::Synced => "committed and synced",
            },
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "write group"
        );
        // Whether the commit, if any, carried data (an empty one syncs nothing).
        let carried = was_open
            || written.outcomes.iter().any(|(_, outcome)| match outcome {
                Ok(Done::Appended(stored)) => !stored.is_empty(),
                Ok(Done::Saved | Done::Removed(_)) => true,
                Err(_) => false,
            });
        inner.open.store(written.open, SeqCst);
        if let Some(lost) = &written.lost {
            tracing::error!(
                target: "lendkit::store",
                store = "sqlite",
                error = %lost,
                "a commit failed and took unsynced writes with it: the store refuses every call until reopened"
            );
            *lock(&inner.poisoned) = Some(format!(
                "{}: a commit failed ({lost}) and took with it writes that had been reported \
                 stored; reopen the library, which rebuilds from what the file holds",
                inner.path.display()
            ));
        }
        let mut outcomes = written.outcomes;
        if quiet {
            if let Err(e) = run(writer, "PRAGMA synchronous=FULL") {
                // Never let a later append go unsynced: fail it rather.
                let error = sqlite_failed(&inner.path, e);
                outcomes = outcomes
                    .into_iter()
                    .map(|(t, _)| (t, Err(error.clone())))
                    .collect();
            }
        }
        if every_commit && written.committed && carried {
            // A commit without a sync leaves the log unsynced up to its end; a synced one covers
            // everything before it.
            inner.unsynced.store(ending == Ending::NoSync, SeqCst);
        }
        outcomes
    }
}

/// How a group's write ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Kept in the open transaction.
    Keep,
    /// Committed without a sync.
    NoSync,
    /// Committed with the connection's sync setting.
    Synced,
}

/// What writing a group did.
struct Written {
    outcomes: Vec<(u64, Result<Done, StoreError>)>,
    /// A write transaction is open afterwards.
    open: bool,
    /// Something was committed.
    committed: bool,
    /// Writes of earlier groups, reported stored, were lost with this failure.
    lost: Option<StoreError>,
}

/// How judging a file failed: a verdict on the file, or SQLite could not read it.
enum Judged {
    Refused(StoreError),
    Failed(rusqlite::Error),
}

/// Decodes the body of the event stored at `position`.
fn decode(position: i64, body: &str) -> Result<Envelope, StoreError> {
    let at = u64::try_from(position).unwrap_or(0);
    let envelope = Envelope::decode(body.as_bytes()).map_err(|reason| StoreError::Corrupt {
        position: at,
        reason,
    })?;
    if envelope.position != at {
        return Err(StoreError::Corrupt {
            position: at,
            reason: format!("the stored envelope says position {}", envelope.position),
        });
    }
    Ok(envelope)
}

/// Runs one statement that returns no rows, compiled once per connection (`execute_batch`
/// would parse it again every time: a tenth of a commit's instructions).
fn run(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.raw_execute()?;
    Ok(())
}

/// Stores a group of writes under a savepoint of the write transaction — begun here unless
/// one is open — and ends as `ending` says. A refused write changes nothing and the group goes
/// on; a SQLite failure undoes the whole group (only the group, when earlier ones wait in the
/// open transaction) and is every write's outcome.
fn write_group(
    conn: &Connection,
    path: &Path,
    group: Vec<(u64, Op)>,
    ending: Ending,
    was_open: bool,
    head: &std::sync::atomic::AtomicU64,
) -> Written {
    let tickets: Vec<u64> = group.iter().map(|(ticket, _)| *ticket).collect();
    let nothing = group.iter().all(|(_, op)| matches!(op, Op::Flush));
    if group.is_empty() || (nothing && !was_open) {
        return Written {
            outcomes: tickets.into_iter().map(|t| (t, Ok(Done::Saved))).collect(),
            open: was_open,
            committed: false,
            lost: None,
        };
    }
    let failed = |e: rusqlite::Error, open: bool, lost: bool| {
        // Whatever the group appended may be rolled back: the head is read afresh next time.
        head.store(HEAD_UNKNOWN, std::sync::atomic::Ordering::SeqCst);
        let error = sqlite_failed(path, e);
        Written {
            outcomes: tickets.iter().map(|&t| (t, Err(error.clone()))).collect(),
            open,
            committed: false,
            lost: lost.then_some(error),
        }
    };
    let applied = (|| -> Result<Vec<Result<Done, StoreError>>, rusqlite::Error> {
        if !was_open {
            if !conn.is_autocommit() {
                // A transaction left open by a group whose rollback failed: never committed.
                conn.execute_batch("ROLLBACK")?;
            }
            run(conn, "BEGIN IMMEDIATE")?;
        }
        // A savepoint only where earlier groups wait in the open transaction: a group that
        // begins the transaction is undone by rolling it all back, and a savepoint would cost
        // a statement each way plus a copy of every page it changes (SQLite's sub-journal).
        if was_open {
            run(conn, "SAVEPOINT grp")?;
        }
        let mut outcomes = Vec::with_capacity(group.len());
        for (_, op) in group {
            outcomes.push(apply(conn, op, head)?);
        }
        if was_open {
            run(conn, "RELEASE grp")?;
        }
        Ok(outcomes)
    })();
    let outcomes = match applied {
        Ok(outcomes) => outcomes,
        Err(e) => {
            if was_open {
                // Undo this group only; what earlier groups stored stays open.
                if conn.execute_batch("ROLLBACK TO grp; RELEASE grp").is_ok() {
                    return failed(e, true, false);
                }
            }
            if !conn.is_autocommit() {
                // Nothing of it may stay. Should even the rollback fail, the transaction is
                // never committed: the next group rolls it back before it begins.
                let _ = conn.execute_batch("ROLLBACK");
            }
            return failed(e, false, was_open);
        }
    };
    let outcomes: Vec<(u64, Result<Done, StoreError>)> =
        tickets.iter().copied().zip(outcomes).collect();
    if ending == Ending::Keep {
        return Written {
            outcomes,
            open: true,
            committed: false,
            lost: None,
        };
    }
    if let Err(e) = run(conn, "COMMIT") {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return failed(e, false, was_open);
    }
    Written {
        outcomes,
        open: false,
        committed: true,
        lost: None,
    }
}

/// Applies one write inside the group's transaction. The outer error is a SQLite failure (the
/// group must be rolled back); the inner one a refusal, decided before anything was written.
fn apply(
    conn: &Connection,
    op: Op,
    head: &std::sync::atomic::AtomicU64,
) -> Result<Result<Done, StoreError>, rusqlite::Error> {
    match op {
        Op::Append(commit, _) => append_in(conn, &commit, head).map(|r| r.map(Done::Appended)),
        Op::Flush => Ok(Ok(Done::Saved)),
        Op::Sync => {
            // A row must change for the commit to be written (and synced) at all.
            conn.prepare_cached(
                "INSERT INTO meta(key, value) VALUES ('syncs', '1')
                 ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            )?
            .execute([])?;
            Ok(Ok(Done::Saved))
        }
        Op::SaveCheckpoint(consumer, position) => save_checkpoints(conn, &[(consumer, position)]),
        Op::SaveCheckpoints(checkpoints) => save_checkpoints(conn, &checkpoints),
        Op::SaveSnapshot(name, position, body) => {
            let value = crate::lock_file::snapshot_value(position, &body);
            conn.prepare_cached(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![format!("snapshot:{name}"), value])?;
            Ok(Ok(Done::Saved))
        }
        Op::AddDeadLetter(letter) => {
            let body = match serde_json::to_string(&letter) {
                Ok(body) => body,
                Err(e) => return Ok(Err(StoreError::Backend(format!("dead letter: {e}")))),
            };
            conn.prepare_cached(
                "INSERT INTO dead_letters(id, body) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            )?
            .execute(params![letter.id, body])?;
            Ok(Ok(Done::Saved))
        }
        Op::RemoveDeadLetter(id) => {
            let removed = conn
                .prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?
                .execute([id])?;
            Ok(Ok(Done::Removed(removed > 0)))
        }
    }
}

/// Checkpoints inside the group's transaction (see [`apply`] for the two kinds of error).
fn save_checkpoints(
    conn: &Connection,
    checkpoints: &[(String, u64)],
) -> Result<Result<Done, StoreError>, rusqlite::Error> {
    let mut rows = Vec::with_capacity(checkpoints.len());
    for (consumer, position) in checkpoints {
        match to_sql_int(*position, "checkpoint") {
            Ok(p) => rows.push((consumer, p)),
            Err(e) => return Ok(Err(e)),
        }
    }
    let mut save = conn.prepare_cached(
        "INSERT INTO checkpoints(consumer, position) VALUES (?1, ?2)
         ON CONFLICT(consumer) DO UPDATE SET position = excluded.position",
    )?;
    for (consumer, position) in rows {
        save.execute(params![consumer, position])?;
    }
    Ok(Ok(Done::Saved))
}

/// One append inside the group's transaction (see [`apply`] for the two kinds of error).
fn append_in(
    conn: &Connection,
    commit: &Commit,
    known_head: &std::sync::atomic::AtomicU64,
) -> Result<Result<Vec<Envelope>, StoreError>, rusqlite::Error> {
    // Versions first, all of them: a stale stream refuses the whole append. A stream named twice
    // is checked against its own earlier part.
    let mut seen: Vec<(&StreamId, u64)> = Vec::new();
    for a in &commit.appends {
        let actual = match seen.iter().rev().find(|(s, _)| *s == &a.stream) {
            Some((_, v)) => *v,
            None => {
                let stored: Option<i64> = conn
                    .prepare_cached("SELECT version FROM streams WHERE stream = ?1")?
                    .query_row([a.stream.to_string()], |row| row.get(0))
                    .optional()?;
                match stored.map(|v| from_sql_int(v, 0, &format!("the version of {}", a.stream))) {
                    None => 0,
                    Some(Ok(v)) => v,
                    Some(Err(e)) => return Ok(Err(e)),
                }
            }
        };
        if actual != a.expected_version {
            return Ok(Err(StoreError::Conflict {
                stream: a.stream.to_string(),
                expected: a.expected_version,
                actual,
            }));
        }
        seen.push((
            &a.stream,
            a.expected_version.saturating_add(a.events.len() as u64),
        ));
    }
    if commit.appends.iter().all(|a| a.events.is_empty()) {
        return Ok(Ok(Vec::new()));
    }
    let head = match known_head.load(std::sync::atomic::Ordering::SeqCst) {
        HEAD_UNKNOWN => {
            let head: i64 = conn
                .prepare_cached("SELECT coalesce(max(position), 0) FROM events")?
                .query_row([], |row| row.get(0))?;
            match from_sql_int(head, 0, "the head") {
                Ok(head) => head,
                Err(e) => return Ok(Err(e)),
            }
        }
        head => head,
    };
    // Every number is checked before the first write, so a refusal never leaves a partial append.
    let count: u64 = commit.appends.iter().map(|a| a.events.len() as u64).sum();
    for a in &commit.appends {
        let last_version = a.expected_version.saturating_add(a.events.len() as u64);
        if let Err(e) = to_sql_int(last_version, "version") {
            return Ok(Err(e));
        }
    }
    if let Err(e) = to_sql_int(head.saturating_add(count), "position") {
        return Ok(Err(e));
    }
    // The command record first: its primary key is the check that the command id was never
    // applied (a violation writes nothing and leaves the transaction as it was), so a commit
    // needs no lookup of its own.
    let recorded = conn
        .prepare_cached(
            "INSERT INTO commands(command_id, fingerprint, first_position, last_position)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            commit.command_id.as_str(),
            commit.fingerprint,
            (head + 1) as i64,
            (head + count) as i64,
        ]);
    match recorded {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            // PRIMARYKEY in a `WITHOUT ROWID` table; UNIQUE in a file made before those.
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            return Ok(Err(StoreError::CommandApplied(
                commit.command_id.to_string(),
            )));
        }
        Err(e) => return Err(e),
    }
    let mut insert_event = conn.prepare_cached(
        "INSERT INTO events(position, stream, version, type, command_id, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut set_version = conn.prepare_cached(
        "INSERT INTO streams(stream, version) VALUES (?1, ?2)
         ON CONFLICT(stream) DO UPDATE SET version = excluded.version",
    )?;
    let mut position = head;
    let mut stored = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for a in &commit.appends {
        if a.events.is_empty() {
            continue;
        }
        let stream = a.stream.to_string();
        for e in &a.events {
            position += 1;
            let mut e = e.clone();
            e.position = position;
            // Checked above: positions and versions fit.
            insert_event.execute(params![
                position as i64,
                stream,
                e.version as i64,
                e.type_name(),
                commit.command_id.as_str(),
                e.to_json_text(),
            ])?;
            stored.push(e);
        }
        let version = a.expected_version.saturating_add(a.events.len() as u64);
        set_version.execute(params![stream, version as i64])?;
    }
    known_head.store(position, std::sync::atomic::Ordering::SeqCst);
    Ok(Ok(stored))
}

impl SqliteEventStore {
    /// An append, synced before it returns or not (see [`EventStore::append_unsynced`]).
    fn append_as(&self, commit: Commit, synced: bool) -> Result<Vec<Envelope>, StoreError> {
        for a in &commit.appends {
            check_shape(a)?;
        }
        match self.write(Op::Append(commit, synced))? {
            Done::Appended(stored) => Ok(stored),
            Done::Saved | Done::Removed(_) => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.append_as(commit, true)
    }

    async fn append_unsynced(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.append_as(commit, false)
    }

    async fn sync(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let open = self.inner.open.load(SeqCst);
        if self.inner.durability != Durability::EveryCommit {
            // Nothing waits for a sync here; what the open transaction holds is committed.
            return if open {
                self.write(Op::Flush).map(drop)
            } else {
                Ok(())
            };
        }
        if !open && !self.inner.unsynced.load(SeqCst) {
            return Ok(());
        }
        self.write(Op::Sync).map(drop)
    }

    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
        self.envelopes(
            "SELECT position, body FROM events WHERE stream = ?1 ORDER BY version",
            [stream.to_string()],
        )
    }

    async fn read_stream_from(
        &self,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<Envelope>, StoreError> {
        // A version past SQLite's integers has nothing after it.
        let Ok(after) = i64::try_from(after_version) else {
            return Ok(Vec::new());
        };
        self.envelopes(
            "SELECT position, body FROM events WHERE stream = ?1 AND version > ?2 ORDER BY version",
            params![stream.to_string(), after],
        )
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        // No position is past SQLite's integers, so nothing comes after such a one.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A negative LIMIT is no limit to SQLite.
        let limit = i64::try_from(limit).unwrap_or(-1);
        self.envelopes(
            "SELECT position, body FROM events WHERE position > ?1 ORDER BY position LIMIT ?2",
            [after, limit],
        )
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let head: i64 = self.read(|conn| {
            conn.prepare_cached("SELECT coalesce(max(position), 0) FROM events")
                .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
                .map_err(|e| self.failed(e))
        })?;
        from_sql_int(head, 0, "the head")
    }

    async fn command(&self, command: &CommandId) -> Result<Option<CommandRecord>, StoreError> {
        let record: Option<(String, i64, i64)> = self.read(|conn| {
            conn.prepare_cached(
                "SELECT fingerprint, first_position, last_position FROM commands
                 WHERE command_id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([command.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()
            })
            .map_err(|e| self.failed(e))
        })?;
        let Some((fingerprint, first, last)) = record else {
            return Ok(None);
        };
        let events = self.envelopes(
            "SELECT position, body FROM events WHERE position BETWEEN ?1 AND ?2 ORDER BY position",
            [first, last],
        )?;
        crate::record::whole(command, fingerprint, first, last, events).map(Some)
    }

    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        let position: Option<i64> = self.read(|conn| {
            conn.prepare_cached("SELECT position FROM checkpoints WHERE consumer = ?1")
                .and_then(|mut stmt| stmt.query_row([consumer], |row| row.get(0)).optional())
                .map_err(|e| self.failed(e))
        })?;
        position
            .map(|p| from_sql_int(p, 0, &format!("the checkpoint of {consumer}")))
            .transpose()
    }

    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = self.read(|conn| {
            conn.prepare_cached("SELECT consumer, position FROM checkpoints ORDER BY consumer")
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(|e| self.failed(e))
        })?;
        rows.into_iter()
            .map(|(consumer, p)| {
                let position = from_sql_int(p, 0, &format!("the checkpoint of {consumer}"))?;
                Ok((consumer, position))
            })
            .collect()
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.write(Op::SaveCheckpoint(consumer.to_owned(), position))
            .map(drop)
    }

    async fn save_checkpoints(&self, checkpoints: &[(String, u64)]) -> Result<(), StoreError> {
        self.write(Op::SaveCheckpoints(checkpoints.to_vec()))
            .map(drop)
    }

    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError> {
        self.write(Op::AddDeadLetter(letter)).map(drop)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let bodies: Vec<String> = self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT body FROM dead_letters ORDER BY seq")
                .map_err(|e| self.failed(e))?;
            let rows = stmt
                .query_map([], |row| row.get(0))
                .map_err(|e| self.failed(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.failed(e))
        })?;
        bodies
            .iter()
            .map(|body| {
                serde_json::from_str(body)
                    .map_err(|e| StoreError::Backend(format!("dead letter: {e}")))
            })
            .collect()
    }

    /// Kept in `meta` under `snapshot:NAME`, as a blob: the position (8 bytes, big-endian),
    /// then the body.
    async fn snapshot(
        &self,
        name: &str,
    ) -> Result<Option<(u64, lendkit_core::ports::SnapshotBody)>, StoreError> {
        let key = format!("snapshot:{name}");
        let value: Option<Vec<u8>> = self.read(|conn| {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [&key], |row| {
                row.get::<_, Vec<u8>>(0)
            })
            .optional()
            .map_err(|e| self.failed(e))
        })?;
        Ok(value.and_then(crate::lock_file::snapshot_parts))
    }

    async fn save_snapshot(
        &self,
        name: &str,
        position: u64,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.write(Op::SaveSnapshot(name.to_owned(), position, body))
            .map(drop)
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        match self.write(Op::RemoveDeadLetter(id.to_owned()))? {
            Done::Removed(removed) => Ok(removed),
            Done::Appended(_) | Done::Saved => Ok(false),
        }
    }
}
