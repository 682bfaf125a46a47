//! [`SledEventStore`]: the durable embedded event log, on sled 0.34.
//!
//! Layout (one sled database, several trees):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `log` | position (u64, big-endian) | the envelope's compact stored form ([`Envelope::encode_compact`]); a library first written before `meta/schema` 6 also holds compact events whose payload spells out the correlation's id, instants and reactions' policies, one before 5 compact events whose payload spells out every text, one before 4 compact events with a header of strings, one before 3 compact events with a JSON payload, one before 2 events in the JSON wire form, and all are read |
//! | `streams` | `stream\0version` | position |
//! | `versions` | `stream` | the stream's version |
//! | `command_ids` | command id | the fingerprint's length (u16), the fingerprint, then the positions the command stored (u64 each) |
//! | `meta` | `format`, `schema`, `head`, `command_ids`, `snapshot:NAME` | `lendkit-events`, the store schema ([`STORE_SCHEMA`]), the last position, whether `command_ids` covers the log; a snapshot's position (8 bytes) then its body |
//! | `checkpoints` | consumer | position |
//! | `dead_letters` | id | JSON |
//!
//! One sled transaction per [`append`](EventStore::append) checks every stream's version and
//! that the command id was never applied, reads and advances the head, and writes the log
//! entries, stream entries, versions and the command record: a crash leaves all of an append
//! or none of it. (Databases written before command ids were library-wide kept per-stream
//! records in a `commands` tree; opening one builds `command_ids` from the log once.)
//!
//! **Durability.** With [`Durability::EveryCommit`] (the default) an append returns only after
//! its data is flushed to disk; concurrent appends share one flush (group commit), so a command
//! that returned success survives a crash or power loss. With [`Durability::Periodic`] sled
//! flushes in the background every few milliseconds: appends return sooner, and a crash loses
//! at most the appends of that last interval (never part of one).
//! [`append_unsynced`](EventStore::append_unsynced) and checkpoints are not flushed on their
//! own: the next flush (a synced append or [`sync`](EventStore::sync)) covers them.
//!
//! **Opening, and surviving a kill while opening.** A library is a folder: sled's files
//! (`conf`, `db`, `blobs/`, `snap.*`) plus two of lendkit's own, and
//! [`open`](SledEventStore::open) goes like this:
//!
//! 1. Judge the folder from its listing alone, before touching it: a file, or a directory
//!    holding anything but lendkit's and sled's files, is refused as `NotALibrary` untouched.
//! 2. Take lendkit's own lock: an exclusive `flock` (fs2) on `lendkit.lock` in the folder,
//!    held until the store is dropped. A second opener (another process, or another handle in
//!    this one) waits up to 1.5 s, then gets `Locked`. Everything below happens under it.
//! 3. Creation is all or nothing: before sled writes a byte of a new library, the marker file
//!    `lendkit.creating` is written and synced; it is removed (and the folder synced) only once
//!    `meta/format` and `meta/schema` are flushed. An open that finds the marker knows a
//!    creation was interrupted (nothing was ever stored in that library), removes sled's files
//!    and creates it afresh. A folder holding only sled's empty skeleton (`blobs/`, `conf`, an
//!    empty `db`: what sled writes before its first byte of data) is created afresh the same way.
//! 4. Remove sled's unfinished snapshots, `snap.<lsn>.generating`. sled 0.34 writes a snapshot
//!    during every open into such a file and renames it to `snap.<lsn>` once complete; a kill in
//!    between leaves the `.generating` file, which sorts last and so is what the next open reads:
//!    `Read corrupted data at file offset None` forever after (sled issue 1527). Removing it is
//!    safe: the previous complete snapshot stays until the rename, and sled replays the log from
//!    it, exactly as if the kill had come a moment before the snapshot was begun. (Before this,
//!    sled's own lock on `db` is probed, so a process that holds sled open without lendkit's lock
//!    never has a snapshot removed under it.)
//! 5. Open sled and check `meta/format` (another program's sled database is `NotALibrary`,
//!    and the `lendkit.lock` this open created is removed again) and `meta/schema`
//!    (`SchemaTooNew`). Corruption that sled reports in a library is `Damaged` (`CORRUPT`):
//!    retrying cannot help; the folder must be restored from a backup.

pub use crate::durability::Durability;
use crate::lock_file::{contended, io_failed, sync_dir, LockFile, LOCK_RETRY};
use crate::memory_store::check_shape;
use async_trait::async_trait;
use lendkit_core::error::StoreError;
use lendkit_core::event::{Envelope, Fact, Recorded, SCHEMA_VERSION};

/// The store schema written to `meta/schema`: what a reader must understand to read the
/// library. 1: events in the JSON wire form of payload schema 1. 2: events may also be in
/// the compact stored form ([`Envelope::encode_compact`]) with the payload as JSON text
/// (layout revision 1). 3: compact events may also hold the payload as binary fields (layout
/// revision 2, written on 2026-12-06). 4: compact events may also keep their header's command
/// id, actor and type as bytes and an index (layout revision 3, written on 2026-12-06 and 07).
/// 5: a compact event's payload may name the stream's or the actor's id by a tag instead of
/// spelling it out (layout revision 4, written on 2026-12-07). 6: it may also name the
/// correlation's id and its own instant by a tag, and its header keep a policy's reaction by
/// the policy's index (layout revision 5, written since later on 2026-12-07).
/// A library of an older schema is marked with this one
/// when this lendkit opens it (its events stay as they are and are read as before); a lendkit
/// that reads only an older schema then refuses it with `SCHEMA_TOO_NEW` instead of failing on
/// the first new event it reads. A new payload schema ([`SCHEMA_VERSION`]) raises this number
/// too.
pub const STORE_SCHEMA: u32 = 6;
const _: () = assert!(SCHEMA_VERSION <= STORE_SCHEMA);
use lendkit_core::ids::{CommandId, StreamId};
use lendkit_core::ports::{CommandRecord, Commit, DeadLetter, EventStore};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The value of `meta/format` in every lendkit database.
const FORMAT: &[u8] = b"lendkit-events";
/// sled's page cache unless told otherwise.
pub const DEFAULT_CACHE_BYTES: u64 = 128 << 20;
/// How long `open` waits for a lock held elsewhere before reporting `Locked`.
const LOCK_WAIT: Duration = Duration::from_millis(1500);
/// lendkit's own lock file in a library folder.
const LOCK_FILE: &str = "lendkit.lock";
/// Present in a library folder from before sled writes anything until the library is complete.
const CREATING_FILE: &str = "lendkit.creating";
/// The suffix of sled's unfinished snapshot files (`snap.<lsn>.generating`).
const UNFINISHED_SNAPSHOT: &str = ".generating";
/// How many positions of the log a reading thread of [`SledEventStore::replay`] reads and
/// hands over at a time.
const REPLAY_CHUNK: usize = 1024;
/// How many chunks each reading thread may have waiting for the fold.
const REPLAY_AHEAD: usize = 4;

/// The durable event store on a sled database. Cheap to clone (shares the database).
#[derive(Clone)]
pub struct SledEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    streams: sled::Tree,
    versions: sled::Tree,
    command_ids: sled::Tree,
    meta: sled::Tree,
    checkpoints: sled::Tree,
    dead_letters: sled::Tree,
    durability: Durability,
    /// Group commit: appends committed so far, and the count covered by the last flush.
    committed: AtomicU64,
    flushed: Mutex<u64>,
    /// sled's data file, opened by lendkit: after sled's flush (which syncs with
    /// `sync_file_range` only — no drive-cache flush, no file-size metadata) an `fdatasync` on
    /// it makes what sled wrote survive a power loss.
    data_file: Option<std::fs::File>,
    /// lendkit's lock on the folder; declared last so it is released after sled's handles.
    _lock: LockFile,
}

impl std::fmt::Debug for SledEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledEventStore")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish()
    }
}

/// sled 0.34's data file in a library folder.
fn path_of_data(folder: &Path) -> PathBuf {
    folder.join("db")
}

/// A sled failure as a store error: corruption is [`StoreError::Damaged`] (retrying cannot
/// help), anything else [`StoreError::Io`] with sled's error as its source.
fn sled_failed(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { .. } => StoreError::Damaged {
            path: path.display().to_string(),
            reason: e.to_string(),
        },
        // sled's own error has no `source`: keep the operating system's error itself.
        sled::Error::Io(io) => StoreError::io(path.display().to_string(), io),
        e => StoreError::io(path.display().to_string(), e),
    }
}

/// What a path holds, judged from its listing alone (nothing is opened or changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// Nothing is there yet.
    Nothing,
    /// A directory with nothing in it worth keeping: empty, or only lendkit's lock file and
    /// sled's skeleton (`blobs/` empty, `conf`, `db` empty) that sled writes before any data.
    Empty,
    /// A library whose creation was interrupted: [`CREATING_FILE`] is there.
    HalfCreated,
    /// A sled database holding data: a lendkit library, or another program's (`meta/format` tells).
    Database,
}

fn survey(path: &Path, shown: &str) -> Result<Found, StoreError> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(io_failed(shown, "read it", e)),
    };
    if !metadata.is_dir() {
        return Err(StoreError::NotALibrary(format!("{shown} (a file)")));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io_failed(shown, "list it", e))? {
        let entry = entry.map_err(|e| io_failed(shown, "list it", e))?;
        names.push(entry.file_name());
    }
    if names.iter().any(|n| n == CREATING_FILE) {
        return Ok(Found::HalfCreated);
    }
    let empty_dir = |name: &str| {
        std::fs::read_dir(path.join(name)).is_ok_and(|mut entries| entries.next().is_none())
    };
    let empty_file = |name: &str| {
        std::fs::symlink_metadata(path.join(name)).is_ok_and(|m| m.is_file() && m.len() == 0)
    };
    let skeleton = names.iter().all(|n| {
        n == LOCK_FILE
            || n == "conf"
            || (n == "blobs" && empty_dir("blobs"))
            || (n == "db" && empty_file("db"))
    });
    if skeleton {
        return Ok(Found::Empty);
    }
    if names.iter().any(|n| n == "conf") {
        return Ok(Found::Database);
    }
    Err(StoreError::NotALibrary(format!(
        "{shown} (a directory of other files)"
    )))
}

/// Marks `dir` as a library being created (durably), then removes whatever sled left there
/// from an interrupted creation: no command was ever acknowledged in that library.
fn start_creation(dir: &Path, shown: &str) -> Result<(), StoreError> {
    File::create(dir.join(CREATING_FILE))
        .and_then(|f| f.sync_all())
        .and_then(|()| sync_dir(dir))
        .map_err(|e| io_failed(shown, "mark it as being created", e))?;
    let mut removed = false;
    for entry in std::fs::read_dir(dir).map_err(|e| io_failed(shown, "list it", e))? {
        let entry = entry.map_err(|e| io_failed(shown, "list it", e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let removal = if name == "blobs" {
            std::fs::remove_dir_all(entry.path())
        } else if name == "conf" || name == "db" || name.starts_with("snap.") {
            std::fs::remove_file(entry.path())
        } else {
            continue;
        };
        removal.map_err(|e| io_failed(shown, "clear an interrupted creation", e))?;
        removed = true;
    }
    if removed {
        sync_dir(dir).map_err(|e| io_failed(shown, "clear an interrupted creation", e))?;
    }
    Ok(())
}

/// Ends a creation: the library's format is flushed, so the marker goes (durably).
fn finish_creation(dir: &Path, shown: &str) -> Result<(), StoreError> {
    std::fs::remove_file(dir.join(CREATING_FILE))
        .and_then(|()| sync_dir(dir))
        .map_err(|e| io_failed(shown, "finish creating it", e))
}

/// Waits until no process holds sled's own lock on `dir/db` (a database closed a moment ago
/// is held by sled's background work for a few milliseconds; a sled opened elsewhere without
/// lendkit's lock is reported as `Locked`).
fn wait_for_sled_lock(dir: &Path, shown: &str, deadline: Instant) -> Result<(), StoreError> {
    loop {
        let file = match File::open(dir.join("db")) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_failed(shown, "open its data file", e)),
        };
        match fs2::FileExt::try_lock_exclusive(&file) {
            // Dropping the file releases the probe's lock at once.
            Ok(()) => return Ok(()),
            Err(e) if contended(&e) => {}
            Err(e) => return Err(io_failed(shown, "lock its data file", e)),
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Locked(shown.to_owned()));
        }
        std::thread::sleep(LOCK_RETRY);
    }
}

/// Removes sled's unfinished snapshots (see the module documentation): a kill while sled wrote
/// one leaves a file that every later open would read as corrupt. Returns how many it removed.
fn clear_unfinished_snapshots(dir: &Path, shown: &str) -> Result<usize, StoreError> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| io_failed(shown, "list it", e))? {
        let entry = entry.map_err(|e| io_failed(shown, "list it", e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(UNFINISHED_SNAPSHOT) {
            std::fs::remove_file(entry.path())
                .map_err(|e| io_failed(shown, "remove an unfinished snapshot", e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir).map_err(|e| io_failed(shown, "remove an unfinished snapshot", e))?;
    }
    Ok(removed)
}

fn u64_of(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(buf)
}

fn stream_key(stream: &StreamId, suffix: &[u8]) -> Vec<u8> {
    let mut key = stream.to_string().into_bytes();
    key.push(0);
    key.extend_from_slice(suffix);
    key
}

/// A `command_ids` value: the fingerprint's length (u16), the fingerprint, the positions.
fn command_value(fingerprint: &str, positions: &[u8]) -> Vec<u8> {
    let fingerprint = &fingerprint.as_bytes()[..fingerprint.len().min(usize::from(u16::MAX))];
    let mut value = Vec::with_capacity(2 + fingerprint.len() + positions.len());
    value.extend_from_slice(&(fingerprint.len() as u16).to_be_bytes());
    value.extend_from_slice(fingerprint);
    value.extend_from_slice(positions);
    value
}

/// The fingerprint and positions of a `command_ids` value.
fn parse_command_value(value: &[u8]) -> (String, Vec<u64>) {
    let len = value
        .get(..2)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let fingerprint = value.get(2..2 + len).unwrap_or_default();
    let positions = value.get(2 + len..).unwrap_or_default();
    (
        String::from_utf8_lossy(fingerprint).into_owned(),
        positions.chunks(8).map(u64_of).collect(),
    )
}

impl SledEventStore {
    /// Opens (or creates) the lendkit database at `path`; see the module documentation for
    /// what opening does.
    ///
    /// Fails with [`StoreError::NotALibrary`] when the path is a file or a directory holding
    /// something else, [`StoreError::SchemaTooNew`] when a newer lendkit wrote it, and
    /// [`StoreError::Locked`] when another process has it open; in each case nothing is changed.
    /// [`StoreError::Damaged`] means the database's files are damaged (restore a backup).
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        Self::open_with_cache(path, durability, DEFAULT_CACHE_BYTES)
    }

    /// [`open`](SledEventStore::open) with sled's page cache limited to `cache_bytes` (the
    /// default is 128 MiB; sled's own default of 1 GiB made a library with a million events
    /// take about a gigabyte of memory).
    pub fn open_with_cache(
        path: impl AsRef<Path>,
        durability: Durability,
        cache_bytes: u64,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        // Judge the folder before touching it: a file or a directory of other files is refused as found.
        if survey(&path, &shown)? == Found::Nothing {
            std::fs::create_dir_all(&path).map_err(|e| io_failed(&shown, "create it", e))?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                // Best effort: only power loss in the next moments could forget the new folder,
                // and the library in it is created (and made durable) below anyway.
                let _ = sync_dir(parent);
            }
        }
        let deadline = Instant::now() + LOCK_WAIT;
        let lock = LockFile::acquire(&path.join(LOCK_FILE), &shown, deadline)?;
        // sled would fail on its first write with a bare I/O error: say what it is, up front.
        let files: Vec<PathBuf> = std::fs::read_dir(&path)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        if let Err(e) = crate::lock_file::check_writable(&shown, files.iter().map(PathBuf::as_path))
        {
            lock.release_as_found();
            return Err(e);
        }
        let (db, meta) = match Self::open_locked(&path, &shown, durability, cache_bytes, deadline) {
            Ok(opened) => opened,
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
        let data_file = match durability {
            Durability::EveryCommit => Some(
                std::fs::File::open(path_of_data(&path))
                    .map_err(|e| io_failed(&shown, "open its data file", e))?,
            ),
            Durability::Periodic(_) => None,
        };
        let tree = |name: &str| db.open_tree(name).map_err(|e| sled_failed(&path, e));
        let store = SledEventStore {
            inner: Arc::new(Inner {
                log: tree("log")?,
                streams: tree("streams")?,
                versions: tree("versions")?,
                command_ids: tree("command_ids")?,
                checkpoints: tree("checkpoints")?,
                dead_letters: tree("dead_letters")?,
                meta,
                db,
                path,
                durability,
                committed: AtomicU64::new(0),
                flushed: Mutex::new(0),
                data_file,
                _lock: lock,
            }),
        };
        store.index_command_ids()?;
        Ok(store)
    }

    /// Makes sure `command_ids` covers the whole log: a database written before command ids
    /// were library-wide gets its records built from the log's envelopes (each carries its
    /// command id; the fingerprints are unknown and left empty), once.
    fn index_command_ids(&self) -> Result<(), StoreError> {
        let i = &self.inner;
        if i.meta
            .get("command_ids")
            .map_err(|e| self.failed(e))?
            .is_some()
        {
            return Ok(());
        }
        let mut records: std::collections::HashMap<CommandId, Vec<u8>> =
            std::collections::HashMap::new();
        for kv in i.log.iter() {
            let (k, v) = kv.map_err(|e| self.failed(e))?;
            let e = Self::decode(u64_of(&k), &v)?;
            records
                .entry(e.command_id)
                .or_default()
                .extend_from_slice(&k);
        }
        let mut batch = sled::Batch::default();
        for (id, positions) in records {
            batch.insert(id.as_str().as_bytes(), command_value("", &positions));
        }
        i.command_ids
            .apply_batch(batch)
            .map_err(|e| self.failed(e))?;
        i.meta
            .insert("command_ids", &[1u8])
            .map_err(|e| self.failed(e))?;
        i.db.flush().map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// The part of opening done under lendkit's lock: finish or restart an interrupted
    /// creation, clear unfinished snapshots, open sled, check the format and the schema.
    fn open_locked(
        path: &Path,
        shown: &str,
        durability: Durability,
        cache_bytes: u64,
        deadline: Instant,
    ) -> Result<(sled::Db, sled::Tree), StoreError> {
        // Look again under the lock: another opener may have created the library meanwhile.
        let creating = match survey(path, shown)? {
            Found::Nothing => {
                return Err(StoreError::Backend(format!(
                    "{shown} was removed while it was being opened"
                )))
            }
            Found::Empty | Found::HalfCreated => {
                start_creation(path, shown)?;
                true
            }
            Found::Database => false,
        };
        wait_for_sled_lock(path, shown, deadline)?;
        clear_unfinished_snapshots(path, shown)?;
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes.max(1 << 20))
            .flush_every_ms(match durability {
                Durability::EveryCommit => None,
                Durability::Periodic(ms) => Some(ms.max(1)),
            });
        // sled's own lock was free a moment ago; a database closed in this process a moment ago
        // may still be held by sled's background work for a few milliseconds.
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(io))
                    if io.kind() == ErrorKind::WouldBlock || io.to_string().contains("lock") =>
                {
                    if Instant::now() >= deadline {
                        return Err(StoreError::Locked(shown.to_owned()));
                    }
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(e @ sled::Error::Unsupported(_)) => {
                    return Err(StoreError::NotALibrary(format!("{shown} ({e})")))
                }
                Err(e @ sled::Error::Corruption { .. }) => return Err(sled_failed(path, e)),
                Err(e) => return Err(StoreError::io(format!("{shown} cannot be opened"), e)),
            }
        };
        let failed = |e| sled_failed(path, e);
        let meta = db.open_tree("meta").map_err(failed)?;
        match meta.get("format").map_err(failed)? {
            Some(format) if format.as_ref() == FORMAT => {
                let schema = meta
                    .get("schema")
                    .map_err(failed)?
                    .map_or(0, |v| u64_of(&v));
                if schema > u64::from(STORE_SCHEMA) {
                    return Err(StoreError::SchemaTooNew {
                        found: u32::try_from(schema).unwrap_or(u32::MAX),
                        supported: STORE_SCHEMA,
                    });
                }
                if schema < u64::from(STORE_SCHEMA) {
                    // Marked before anything is written in the new form (see STORE_SCHEMA).
                    meta.insert("schema", &u64::from(STORE_SCHEMA).to_be_bytes())
                        .map_err(failed)?;
                    db.flush().map_err(failed)?;
                }
            }
            Some(_) => {
                return Err(StoreError::NotALibrary(format!(
                    "{shown} (a sled database of another program)"
                )))
            }
            None => {
                // Without the marker this is a library an older lendkit began to create, or
                // another program's database: only an empty one is taken as ours.
                let foreign = db
                    .tree_names()
                    .iter()
                    .any(|n| n.as_ref() != b"meta" && n.as_ref() != b"__sled__default")
                    || !db.is_empty();
                if foreign {
                    return Err(StoreError::NotALibrary(format!(
                        "{shown} (a sled database of another program)"
                    )));
                }
                meta.insert("schema", &u64::from(STORE_SCHEMA).to_be_bytes())
                    .map_err(failed)?;
                meta.insert("format", FORMAT).map_err(failed)?;
                db.flush().map_err(failed)?;
            }
        }
        if creating {
            finish_creation(path, shown)?;
        }
        Ok((db, meta))
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The durability setting it was opened with.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// A sled failure of this store (see [`sled_failed`]).
    fn failed(&self, e: sled::Error) -> StoreError {
        sled_failed(&self.inner.path, e)
    }

    /// Flushes everything written so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.db.flush().map(drop).map_err(|e| self.failed(e))
    }

    /// Makes a committed write durable according to the durability setting. With
    /// `EveryCommit`, concurrent callers share one flush: whoever flushes covers every write
    /// committed before the flush started.
    fn made_durable(&self, ticket: u64) -> Result<(), StoreError> {
        if self.inner.durability != Durability::EveryCommit {
            return Ok(());
        }
        let mut flushed = self
            .inner
            .flushed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *flushed >= ticket {
            return Ok(());
        }
        let covered = self.inner.committed.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        self.inner.db.flush().map_err(|e| self.failed(e))?;
        if let Some(file) = &self.inner.data_file {
            file.sync_data().map_err(|e| {
                StoreError::io(
                    format!(
                        "{}: syncing the data to disk failed",
                        self.inner.path.display()
                    ),
                    e,
                )
            })?;
        }
        *flushed = covered;
        tracing::debug!(
            target: "lendkit::store",
            store = "sled",
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "flushed and synced"
        );
        Ok(())
    }

    fn commit_ticket(&self) -> u64 {
        self.inner.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The last position stored.
    fn head_now(&self) -> Result<u64, StoreError> {
        Ok(self
            .inner
            .meta
            .get("head")
            .map_err(|e| self.failed(e))?
            .map_or(0, |v| u64_of(&v)))
    }

    fn decode(position: u64, bytes: &[u8]) -> Result<Envelope, StoreError> {
        Envelope::decode(bytes).map_err(|reason| StoreError::Corrupt { position, reason })
    }

    /// Up to `limit` events after position `after`, each read by `decode`.
    fn scan<T>(
        &self,
        after: u64,
        limit: usize,
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<Vec<T>, StoreError> {
        let from = after.saturating_add(1).to_be_bytes();
        // Sized up front from the head (sled's iterator gives no length, so collecting grew
        // the vector from nothing, copying the events on the way to a batch).
        let expected = self.head_now()?.saturating_sub(after);
        let mut events = Vec::with_capacity(limit.min(usize::try_from(expected).unwrap_or(limit)));
        for kv in self.inner.log.range(from..).take(limit) {
            let (k, v) = kv.map_err(|e| self.failed(e))?;
            let position = u64_of(&k);
            events.push(decode(&v).map_err(|reason| StoreError::Corrupt { position, reason })?);
        }
        Ok(events)
    }

    /// [`EventStore::replay`] on this thread: each event read, decoded and folded in turn.
    fn replay_here(
        &self,
        after: u64,
        fold: &mut (dyn for<'e> FnMut(Fact<'e>) + Send),
    ) -> Result<u64, StoreError> {
        let mut last = after;
        for kv in self
            .inner
            .log
            .range(after.saturating_add(1).to_be_bytes()..)
        {
            let (k, v) = kv.map_err(|e| self.failed(e))?;
            last = Self::fold_stored(&k, &v, fold)?;
        }
        Ok(last)
    }

    /// [`EventStore::replay`] with the log read on other threads: sled's iterator (finding,
    /// reading and deserializing leaves, stepping through them: more than half of a replay's
    /// time) runs there, a few chunks ahead, while this thread decodes and folds. The log up to
    /// the head is cut into chunks of [`REPLAY_CHUNK`] positions dealt in turn to `readers`
    /// threads, and taken back in the same turn, so the fold sees the log in order. Every end
    /// stops at the first error: the fold's thread drops its ends, and each reader's next
    /// hand-over fails. What was appended after the head was read is folded here at the end.
    fn replay_beside(
        &self,
        after: u64,
        head: u64,
        readers: usize,
        fold: &mut (dyn for<'e> FnMut(Fact<'e>) + Send),
    ) -> Result<u64, StoreError> {
        type Chunk = Result<Vec<(sled::IVec, sled::IVec)>, sled::Error>;
        let readers = readers.max(1);
        let log = &self.inner.log;
        let chunk_len = REPLAY_CHUNK as u64;
        let chunks = head.saturating_sub(after).div_ceil(chunk_len);
        let folded = std::thread::scope(|scope| {
            let mut ends = Vec::with_capacity(readers);
            for reader in 0..readers as u64 {
                let (hand_over, received) = std::sync::mpsc::sync_channel::<Chunk>(REPLAY_AHEAD);
                let spawned = std::thread::Builder::new()
                    .name("lendkit-replay".into())
                    .spawn_scoped(scope, move || {
                        for chunk in (reader..chunks).step_by(readers) {
                            let first = after + 1 + chunk * chunk_len;
                            let last = first.saturating_add(chunk_len - 1).min(head);
                            let read: Chunk = log
                                .range(first.to_be_bytes()..=last.to_be_bytes())
                                .collect();
                            let failed = read.is_err();
                            if hand_over.send(read).is_err() || failed {
                                return; // the fold stopped, or this reader did
                            }
                        }
                    });
                if spawned.is_err() {
                    // No thread to be had: the whole replay read here instead.
                    return None;
                }
                ends.push(received);
            }
            let mut last = after;
            for chunk in 0..chunks {
                // Cannot be out of range: `ends` holds `readers` receivers.
                let Ok(read) = ends[(chunk % readers as u64) as usize].recv() else {
                    break; // (a reader ended early: only after sending its error, taken below)
                };
                let read = match read {
                    Ok(read) => read,
                    Err(e) => return Some(Err(self.failed(e))),
                };
                for (k, v) in read {
                    match Self::fold_stored(&k, &v, fold) {
                        Ok(position) => last = position,
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
            Some(Ok(last))
        });
        match folded {
            Some(Ok(last)) => self.replay_here(last, fold),
            Some(Err(e)) => Err(e),
            None => self.replay_here(after, fold),
        }
    }

    /// One stored event (its log key and value) decoded and folded; its position.
    fn fold_stored(
        key: &[u8],
        value: &[u8],
        fold: &mut (dyn for<'e> FnMut(Fact<'e>) + Send),
    ) -> Result<u64, StoreError> {
        let position = u64_of(key);
        let recorded = Envelope::decode_recorded(value)
            .map_err(|reason| StoreError::Corrupt { position, reason })?;
        fold(recorded.fact());
        Ok(position)
    }

    fn events_at(
        &self,
        positions: impl IntoIterator<Item = u64>,
    ) -> Result<Vec<Envelope>, StoreError> {
        positions
            .into_iter()
            .map(|p| {
                let bytes = self
                    .inner
                    .log
                    .get(p.to_be_bytes())
                    .map_err(|e| self.failed(e))?
                    .ok_or(StoreError::Corrupt {
                        position: p,
                        reason: "indexed but missing from the log".into(),
                    })?;
                Self::decode(p, &bytes)
            })
            .collect()
    }

    /// Stores a commit in one sled transaction (see [`EventStore::append`]), and counts it;
    /// with `synced`, flushes before returning (else the next sync or synced append does).
    fn store(&self, commit: &Commit, synced: bool) -> Result<Vec<Envelope>, StoreError> {
        let stored = self.transact(commit)?;
        if !stored.is_empty() {
            let ticket = self.commit_ticket();
            if synced {
                self.made_durable(ticket)?;
            }
        }
        Ok(stored)
    }

    /// The sled transaction of [`store`](SledEventStore::store).
    fn transact(&self, commit: &Commit) -> Result<Vec<Envelope>, StoreError> {
        let appends = &commit.appends;
        for a in appends {
            check_shape(a)?;
        }
        let writes = appends.iter().any(|a| !a.events.is_empty());
        let command_key = commit.command_id.as_str().as_bytes();
        let i = &self.inner;
        let result = (&i.log, &i.streams, &i.versions, &i.command_ids, &i.meta).transaction(
            |(log, streams, versions, command_ids, meta)| {
                // Versions first, all of them, inside the transaction: a stale stream aborts the whole append.
                let mut seen: Vec<(&StreamId, u64)> = Vec::new();
                for a in appends {
                    let actual = match seen.iter().rev().find(|(s, _)| *s == &a.stream) {
                        Some((_, v)) => *v,
                        None => versions
                            .get(a.stream.to_string().as_bytes())?
                            .map_or(0, |v| u64_of(&v)),
                    };
                    if actual != a.expected_version {
                        return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                            stream: a.stream.to_string(),
                            expected: a.expected_version,
                            actual,
                        }));
                    }
                    seen.push((&a.stream, a.expected_version + a.events.len() as u64));
                }
                if !writes {
                    return Ok(Vec::new());
                }
                if command_ids.get(command_key)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(
                        StoreError::CommandApplied(commit.command_id.to_string()),
                    ));
                }
                let mut head = meta.get("head")?.map_or(0, |v| u64_of(&v));
                let mut stored = Vec::new();
                let mut positions = Vec::new();
                for a in appends {
                    if a.events.is_empty() {
                        continue;
                    }
                    for e in &a.events {
                        head += 1;
                        let mut e = e.clone();
                        e.position = head;
                        log.insert(&head.to_be_bytes(), e.encode_compact())?;
                        streams.insert(
                            stream_key(&a.stream, &e.version.to_be_bytes()),
                            &head.to_be_bytes(),
                        )?;
                        positions.extend_from_slice(&head.to_be_bytes());
                        stored.push(e);
                    }
                    let version = a.expected_version + a.events.len() as u64;
                    versions.insert(a.stream.to_string().as_bytes(), &version.to_be_bytes())?;
                }
                command_ids.insert(command_key, command_value(&commit.fingerprint, &positions))?;
                meta.insert("head", &head.to_be_bytes())?;
                Ok(stored)
            },
        );
        match result {
            Ok(stored) => Ok(stored),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(self.failed(e)),
        }
    }
}

#[async_trait]
impl EventStore for SledEventStore {
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.store(&commit, true)
    }

    async fn append_unsynced(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.store(&commit, false)
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.made_durable(self.inner.committed.load(Ordering::SeqCst))
    }

    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
        let prefix = stream_key(stream, &[]);
        let positions: Result<Vec<u64>, StoreError> = self
            .inner
            .streams
            .scan_prefix(prefix)
            .values()
            .map(|v| v.map(|v| u64_of(&v)).map_err(|e| self.failed(e)))
            .collect();
        self.events_at(positions?)
    }

    async fn read_stream_from(
        &self,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<Envelope>, StoreError> {
        let from = stream_key(stream, &after_version.saturating_add(1).to_be_bytes());
        let prefix = stream_key(stream, &[]);
        let positions: Result<Vec<u64>, StoreError> = self
            .inner
            .streams
            .range(from..)
            .take_while(|kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .map(|kv| kv.map(|(_, v)| u64_of(&v)).map_err(|e| self.failed(e)))
            .collect();
        self.events_at(positions?)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.scan(after, limit, Envelope::decode)
    }

    async fn read_recorded(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, StoreError> {
        self.scan(after, limit, Envelope::decode_recorded)
    }

    /// Short replays (a snapshot's tail) are read on the calling thread; longer ones have the
    /// log read on threads of their own (one per core, at most four), a few chunks ahead of
    /// the fold.
    async fn replay(
        &self,
        after: u64,
        fold: &mut (dyn for<'e> FnMut(Fact<'e>) + Send),
    ) -> Result<u64, StoreError> {
        let head = self.head_now()?;
        if head.saturating_sub(after) <= 2 * REPLAY_CHUNK as u64 {
            return self.replay_here(after, fold);
        }
        let readers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
        self.replay_beside(after, head, readers, fold)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.head_now()
    }

    async fn command(&self, command: &CommandId) -> Result<Option<CommandRecord>, StoreError> {
        let Some(value) = self
            .inner
            .command_ids
            .get(command.as_str().as_bytes())
            .map_err(|e| self.failed(e))?
        else {
            return Ok(None);
        };
        let (fingerprint, positions) = parse_command_value(&value);
        Ok(Some(CommandRecord {
            fingerprint,
            events: self.events_at(positions)?,
        }))
    }

    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .inner
            .checkpoints
            .get(consumer)
            .map_err(|e| self.failed(e))?
            .map(|v| u64_of(&v)))
    }

    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner
            .checkpoints
            .iter()
            .map(|entry| {
                let (k, v) = entry.map_err(|e| self.failed(e))?;
                Ok((String::from_utf8_lossy(&k).into_owned(), u64_of(&v)))
            })
            .collect()
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.inner
            .checkpoints
            .insert(consumer, &position.to_be_bytes())
            .map_err(|e| self.failed(e))?;
        self.commit_ticket();
        // Counted but not flushed on its own: the next sync or synced append makes it durable. A
        // checkpoint lost to a crash before then only has its consumer handle those events
        // again, which changes nothing (reactions run under ids derived from the event).
        Ok(())
    }

    async fn save_checkpoints(&self, checkpoints: &[(String, u64)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (consumer, position) in checkpoints {
            batch.insert(consumer.as_bytes(), &position.to_be_bytes());
        }
        self.inner
            .checkpoints
            .apply_batch(batch)
            .map_err(|e| self.failed(e))?;
        self.commit_ticket();
        Ok(())
    }

    /// Kept in the `meta` tree under `snapshot:NAME`: the position (8 bytes, big-endian), then
    /// the body.
    async fn snapshot(
        &self,
        name: &str,
    ) -> Result<Option<(u64, lendkit_core::ports::SnapshotBody)>, StoreError> {
        let key = format!("snapshot:{name}");
        let value = self
            .inner
            .meta
            .get(key.as_bytes())
            .map_err(|e| self.failed(e))?;
        Ok(value.and_then(crate::lock_file::snapshot_parts))
    }

    async fn save_snapshot(
        &self,
        name: &str,
        position: u64,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        let value = crate::lock_file::snapshot_value(position, &body);
        self.inner
            .meta
            .insert(format!("snapshot:{name}").as_bytes(), value)
            .map_err(|e| self.failed(e))?;
        let ticket = self.commit_ticket();
        self.made_durable(ticket)
    }

    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError> {
        let seq = match self
            .inner
            .dead_letters
            .get(letter.id.as_bytes())
            .map_err(|e| self.failed(e))?
        {
            Some(old) => u64_of(&old[..8.min(old.len())]),
            None => self.inner.db.generate_id().map_err(|e| self.failed(e))?,
        };
        let mut value = seq.to_be_bytes().to_vec();
        value.extend(serde_json::to_vec(&letter).map_err(|e| StoreError::Backend(e.to_string()))?);
        self.inner
            .dead_letters
            .insert(letter.id.as_bytes(), value)
            .map_err(|e| self.failed(e))?;
        let ticket = self.commit_ticket();
        self.made_durable(ticket)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut letters = Vec::new();
        for kv in self.inner.dead_letters.iter() {
            let (_, v) = kv.map_err(|e| self.failed(e))?;
            if v.len() < 8 {
                continue;
            }
            let letter: DeadLetter = serde_json::from_slice(&v[8..])
                .map_err(|e| StoreError::Backend(format!("dead letter: {e}")))?;
            letters.push((u64_of(&v[..8]), letter));
        }
        letters.sort_by_key(|(seq, _)| *seq);
        Ok(letters.into_iter().map(|(_, l)| l).collect())
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self
            .inner
            .dead_letters
            .remove(id.as_bytes())
            .map_err(|e| self.failed(e))?
            .is_some();
        if removed {
            let ticket = self.commit_ticket();
            self.made_durable(ticket)?;
        }
        Ok(removed)
    }
}

// The contract's helpers write the events these tests replay.
#[cfg(all(test, feature = "contract"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::contract::{self, recorded_of};
    use futures::executor::block_on;

    /// A store in `dir` holding `n` events, written as commits of up to 500 events over three
    /// streams.
    fn store_of(dir: &tempfile::TempDir, n: u64) -> SledEventStore {
        let store = SledEventStore::open(dir.path().join("lib"), Durability::EveryCommit).unwrap();
        let streams = [
            contract::stream("m-1"),
            contract::stream("m-2"),
            contract::stream("m-3"),
        ];
        let mut versions = [0u64; 3];
        let mut written = 0;
        for i in 0.. {
            if written == n {
                break;
            }
            let count = (n - written).min(500);
            let k = i % 3;
            block_on(store.append(contract::commit(vec![contract::batch(
                &streams[k],
                versions[k],
                count,
                &format!("c-{i}"),
            )])))
            .unwrap();
            versions[k] += count;
            written += count;
        }
        store
    }

    fn replayed(
        store: &SledEventStore,
        after: u64,
        head: u64,
        readers: usize,
    ) -> (Result<u64, StoreError>, Vec<Recorded>) {
        let mut folded = Vec::new();
        let last = store.replay_beside(after, head, readers, &mut |fact| {
            folded.push(recorded_of(fact))
        });
        (last, folded)
    }

    /// The log read on one to five threads, from anywhere (chunk edges, the last event, past
    /// the head), is folded in position order, each event once, as `read_recorded` reads it;
    /// the position returned is the last folded. Events appended after the head the readers
    /// were given are folded too.
    #[test]
    fn a_replay_read_on_other_threads_folds_the_log_in_order_each_event_once() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = REPLAY_CHUNK as u64;
        let n = 3 * chunk + 700;
        let store = store_of(&dir, n);
        let all = block_on(store.read_recorded(0, usize::MAX)).unwrap();
        assert_eq!(all.len() as u64, n, "events written");
        for readers in [1, 2, 3, 5] {
            for after in [0, 1, chunk - 1, chunk, chunk + 1, 1_500, n - 1, n, n + 3] {
                for head in [n, n - 300, after + 1] {
                    let (last, folded) = replayed(&store, after, head, readers);
                    let want = &all[after.min(n) as usize..];
                    assert!(
                        folded == want,
                        "replay after {after} to head {head} on {readers} readers: {} events folded, {} wanted",
                        folded.len(),
                        want.len()
                    );
                    assert_eq!(last.unwrap(), after.max(n), "the last position folded");
                }
            }
        }
        // Through the port: long enough to be read beside, the same events.
        let mut folded = Vec::new();
        let last = block_on(store.replay(0, &mut |fact| folded.push(recorded_of(fact)))).unwrap();
        assert_eq!((last, folded), (n, all));
    }

    /// A damaged event in the middle of a long replay stops it with `Corrupt` at that event's
    /// position, after every earlier event was folded in order and none after it, whatever the
    /// number of readers (and no reader is left waiting: the test ends).
    #[test]
    fn a_damaged_event_stops_a_replay_read_beside_at_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = REPLAY_CHUNK as u64;
        let n = 4 * chunk;
        let store = store_of(&dir, n);
        let all = block_on(store.read_recorded(0, usize::MAX)).unwrap();
        let damaged = 2 * chunk + 17;
        store
            .inner
            .log
            .insert(damaged.to_be_bytes(), &b"not an event"[..])
            .unwrap();
        for readers in [1, 2, 3] {
            for after in [0, chunk + 5] {
                let (last, folded) = replayed(&store, after, n, readers);
                match last {
                    Err(StoreError::Corrupt { position, .. }) => assert_eq!(position, damaged),
                    other => panic!("expected Corrupt at {damaged}, got {other:?}"),
                }
                assert!(
                    folded[..] == all[after as usize..damaged as usize - 1],
                    "{readers} readers from {after}: {} events folded before the damage",
                    folded.len()
                );
            }
        }
        let mut folded = 0;
        match block_on(store.replay(0, &mut |_| folded += 1)) {
            Err(StoreError::Corrupt { position, .. }) => assert_eq!(position, damaged),
            other => panic!("expected Corrupt at {damaged}, got {other:?}"),
        }
        assert_eq!(folded, damaged - 1);
    }
}
