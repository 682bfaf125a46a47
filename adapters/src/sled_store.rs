//! [`SledEventStore`]: the durable embedded event log, on sled 0.34.
//!
//! Layout (one sled database, several trees):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `log` | position (u64, big-endian) | the envelope's JSON wire form (with its schema version) |
//! | `streams` | `stream\0version` | position |
//! | `versions` | `stream` | the stream's version |
//! | `command_ids` | command id | the fingerprint's length (u16), the fingerprint, then the positions the command stored (u64 each) |
//! | `meta` | `format`, `schema`, `head`, `command_ids` | `lendkit-events`, the schema written, the last position, whether `command_ids` covers the log |
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

use crate::memory_store::check_shape;
use async_trait::async_trait;
use lendkit_core::error::StoreError;
use lendkit_core::event::{Envelope, SCHEMA_VERSION};
use lendkit_core::ids::{CommandId, StreamId};
use lendkit_core::ports::{CommandRecord, Commit, DeadLetter, EventStore};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The value of `meta/format` in every lendkit database.
const FORMAT: &[u8] = b"lendkit-events";
/// sled's page cache unless told otherwise.
pub const DEFAULT_CACHE_BYTES: u64 = 128 << 20;
/// How long `open` waits for a lock held elsewhere before reporting `Locked`.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Flush before every append returns (concurrent appends share a flush). Survives a crash
    /// or power loss of everything that returned success.
    #[default]
    EveryCommit,
    /// Flush in the background every `n` milliseconds. Faster; a crash may lose the appends of
    /// the last interval (whole appends only, never half of one).
    Periodic(u64),
}

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
}

impl std::fmt::Debug for SledEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledEventStore")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish()
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
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
    /// Opens (or creates) the lendkit database at `path`.
    ///
    /// Fails with [`StoreError::NotALibrary`] when the path is a file or a directory holding
    /// something else, [`StoreError::SchemaTooNew`] when a newer lendkit wrote it, and
    /// [`StoreError::Locked`] when another process has it open; in each case nothing is changed.
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
        if path.is_file() {
            return Err(StoreError::NotALibrary(format!("{shown} (a file)")));
        }
        if path.is_dir() {
            let mut entries = std::fs::read_dir(&path)
                .map_err(|e| StoreError::Backend(format!("{shown}: {e}")))?;
            let empty = entries.next().is_none();
            if !empty && !path.join("conf").is_file() {
                return Err(StoreError::NotALibrary(format!(
                    "{shown} (a directory of other files)"
                )));
            }
        }
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(cache_bytes.max(1 << 20))
            .flush_every_ms(match durability {
                Durability::EveryCommit => None,
                Durability::Periodic(ms) => Some(ms.max(1)),
            });
        // A database closed a moment ago may still be held by sled's own background work for a
        // few milliseconds; a lock held by another process is reported after a short wait.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(io))
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    if std::time::Instant::now() >= deadline {
                        return Err(StoreError::Locked(shown));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e @ (sled::Error::Corruption { .. } | sled::Error::Unsupported(_)))
                    if !path.join("conf").is_file() =>
                {
                    return Err(StoreError::NotALibrary(format!("{shown} ({e})")))
                }
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "{shown} cannot be opened: {e}"
                    )))
                }
            }
        };
        let meta = db.open_tree("meta").map_err(backend)?;
        match meta.get("format").map_err(backend)? {
            Some(format) if format.as_ref() == FORMAT => {
                let schema = meta
                    .get("schema")
                    .map_err(backend)?
                    .map_or(0, |v| u64_of(&v));
                if schema > u64::from(SCHEMA_VERSION) {
                    return Err(StoreError::SchemaTooNew {
                        found: u32::try_from(schema).unwrap_or(u32::MAX),
                        supported: SCHEMA_VERSION,
                    });
                }
            }
            Some(_) => {
                return Err(StoreError::NotALibrary(format!(
                    "{shown} (a sled database of another program)"
                )))
            }
            None => {
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
                meta.insert("schema", &u64::from(SCHEMA_VERSION).to_be_bytes())
                    .map_err(backend)?;
                meta.insert("format", FORMAT).map_err(backend)?;
                db.flush().map_err(backend)?;
            }
        }
        let tree = |name: &str| db.open_tree(name).map_err(backend);
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
        if i.meta.get("command_ids").map_err(backend)?.is_some() {
            return Ok(());
        }
        let mut records: std::collections::HashMap<CommandId, Vec<u8>> =
            std::collections::HashMap::new();
        for kv in i.log.iter() {
            let (k, v) = kv.map_err(backend)?;
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
        i.command_ids.apply_batch(batch).map_err(backend)?;
        i.meta.insert("command_ids", &[1u8]).map_err(backend)?;
        i.db.flush().map_err(backend)?;
        Ok(())
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The durability setting it was opened with.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Flushes everything written so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.db.flush().map(drop).map_err(backend)
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
        self.inner.db.flush().map_err(backend)?;
        *flushed = covered;
        Ok(())
    }

    fn commit_ticket(&self) -> u64 {
        self.inner.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn decode(position: u64, bytes: &[u8]) -> Result<Envelope, StoreError> {
        Envelope::decode(bytes).map_err(|reason| StoreError::Corrupt { position, reason })
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
                    .map_err(backend)?
                    .ok_or(StoreError::Corrupt {
                        position: p,
                        reason: "indexed but missing from the log".into(),
                    })?;
                Self::decode(p, &bytes)
            })
            .collect()
    }
}

#[async_trait]
impl EventStore for SledEventStore {
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
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
                        log.insert(&head.to_be_bytes(), e.encode())?;
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
        let stored = match result {
            Ok(stored) => stored,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(backend(e)),
        };
        if !stored.is_empty() {
            let ticket = self.commit_ticket();
            self.made_durable(ticket)?;
        }
        Ok(stored)
    }

    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
        let prefix = stream_key(stream, &[]);
        let positions: Result<Vec<u64>, StoreError> = self
            .inner
            .streams
            .scan_prefix(prefix)
            .values()
            .map(|v| v.map(|v| u64_of(&v)).map_err(backend))
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
            .map(|kv| kv.map(|(_, v)| u64_of(&v)).map_err(backend))
            .collect();
        self.events_at(positions?)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let from = after.saturating_add(1).to_be_bytes();
        self.inner
            .log
            .range(from..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(backend)?;
                Self::decode(u64_of(&k), &v)
            })
            .collect()
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self
            .inner
            .meta
            .get("head")
            .map_err(backend)?
            .map_or(0, |v| u64_of(&v)))
    }

    async fn command(&self, command: &CommandId) -> Result<Option<CommandRecord>, StoreError> {
        let Some(value) = self
            .inner
            .command_ids
            .get(command.as_str().as_bytes())
            .map_err(backend)?
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
            .map_err(backend)?
            .map(|v| u64_of(&v)))
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.inner
            .checkpoints
            .insert(consumer, &position.to_be_bytes())
            .map_err(backend)?;
        let ticket = self.commit_ticket();
        self.made_durable(ticket)
    }

    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError> {
        let seq = match self
            .inner
            .dead_letters
            .get(letter.id.as_bytes())
            .map_err(backend)?
        {
            Some(old) => u64_of(&old[..8.min(old.len())]),
            None => self.inner.db.generate_id().map_err(backend)?,
        };
        let mut value = seq.to_be_bytes().to_vec();
        value.extend(serde_json::to_vec(&letter).map_err(|e| StoreError::Backend(e.to_string()))?);
        self.inner
            .dead_letters
            .insert(letter.id.as_bytes(), value)
            .map_err(backend)?;
        let ticket = self.commit_ticket();
        self.made_durable(ticket)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut letters = Vec::new();
        for kv in self.inner.dead_letters.iter() {
            let (_, v) = kv.map_err(backend)?;
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
            .map_err(backend)?
            .is_some();
        if removed {
            let ticket = self.commit_ticket();
            self.made_durable(ticket)?;
        }
        Ok(removed)
    }
}
