//! [`PgEventStore`]: the event log in a PostgreSQL schema, shared by every process that opens
//! it — the store for a library served by several app servers.
//!
//! # Schema
//!
//! Every table lives in one schema, `lendkit` unless [`PgOptions::schema`] names another (so
//! one database can hold several libraries, and each test its own):
//!
//! ```sql
//! CREATE TABLE meta(key text PRIMARY KEY, value text NOT NULL);   -- format, schema, syncs
//! CREATE TABLE migrations(version integer PRIMARY KEY, name text NOT NULL,
//!                         applied_at timestamptz NOT NULL DEFAULT now());
//! CREATE TABLE counter(id boolean PRIMARY KEY DEFAULT true CHECK (id),  -- one row:
//!                      position bigint NOT NULL);                      -- the last position
//! CREATE TABLE streams(stream_id text PRIMARY KEY, version bigint NOT NULL);
//! CREATE TABLE events(
//!     position    bigint PRIMARY KEY,     -- global position, from 1, without gaps
//!     stream_id   text NOT NULL,          -- `member:m-1`
//!     version     bigint NOT NULL,        -- the event's version in its stream, from 1
//!     type        text NOT NULL,          -- `MemberJoined`
//!     command_id  text NOT NULL,          -- the command (commit) that stored it
//!     body        jsonb NOT NULL,         -- the envelope's JSON wire form, position included
//!     recorded_at timestamptz NOT NULL DEFAULT now(),
//!     CONSTRAINT events_stream_version UNIQUE (stream_id, version));
//! CREATE TABLE commands(command_id text PRIMARY KEY, fingerprint text NOT NULL,
//!                       first_position bigint NOT NULL, last_position bigint NOT NULL);
//! CREATE TABLE checkpoints(consumer text PRIMARY KEY, position bigint NOT NULL);
//! CREATE TABLE dead_letters(seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, body jsonb NOT NULL);
//! CREATE FUNCTION append_commit(…) RETURNS bigint;  -- one append (see "Appends")
//! ```
//!
//! `meta` holds `format` = `lendkit-events` (what makes a schema a lendkit library) and
//! `schema` = the event payload schema written ([`SCHEMA_VERSION`]), as the other stores do;
//! `migrations` the table layouts applied ([`MIGRATIONS`], embedded in the build). The log can
//! be read with any PostgreSQL client while libraries run:
//! `SELECT position, stream_id, type, body->'payload' FROM lendkit.events ORDER BY position`.
//!
//! # Opening
//!
//! [`PgEventStore::connect`] connects (a wrong URL, a server that is down, a refused login: a
//! [`StoreError::Backend`] naming the server, never a panic; the password is never shown),
//! then, in one transaction under a transaction-scoped advisory lock named after the schema (so
//! processes opening one schema at once take turns):
//!
//! - a schema that does not exist, or holds no table, is a new library: the schema is created
//!   and every migration runs;
//! - a schema holding tables without lendkit's `meta` marker is another program's:
//!   [`StoreError::NotALibrary`];
//! - a library whose `meta.schema` or whose newest migration is newer than this build knows
//!   was written by a newer lendkit: [`StoreError::SchemaTooNew`];
//! - otherwise the migrations it lacks run, and a library missing one of its tables is
//!   [`StoreError::Damaged`].
//!
//! A refusal rolls the transaction back: nothing is written. The migrations are lendkit's own
//! (a list of `(version, SQL)` run in order inside that transaction), not sqlx's migrator,
//! which keeps its table in the connection's search path and reports a newer library as a
//! generic "missing migration" instead of `SchemaTooNew`.
//!
//! # Appends
//!
//! One call of the schema's function `append_commit` (migration 2) per
//! [`append`](EventStore::append): a single statement, so one round trip and one transaction
//! (PostgreSQL's default READ COMMITTED). Inside it:
//!
//! 1. **Lock the streams and move their versions, in sorted order, in one statement.** For
//!    every stream the commit names (guards too), once, sorted:
//!    `INSERT INTO streams … ORDER BY stream_id ON CONFLICT DO UPDATE SET version = new WHERE
//!    version = expected RETURNING …`. A stream without a row gets one (right only if the
//!    commit expected version 0); a row at its expected version moves to the commit's version;
//!    a row at another version is locked but not moved. Every append takes its row locks in
//!    the same order, so appends to several streams cannot deadlock, whatever order their
//!    commits name the streams in; a writer that waits here sees the version its predecessor
//!    committed. (A stream named twice in a commit counts once: expected at its first part's
//!    version, moved past all its events; a commit whose second part expects another version
//!    than its first leaves is a conflict before any call.)
//! 2. **Check**: a stream not moved (or created though the commit expected it further) ends
//!    the call with SQLSTATE `LK409`, the named streams' versions as DETAIL; lendkit reports
//!    the first stale part in the commit's order — [`StoreError::Conflict`]. A commit of guards
//!    only ends here too (`LK204`; nothing stored, the append returns no events). An error
//!    ends the transaction, so a refusal writes nothing.
//! 3. A guard on a stream that has no events leaves no row behind.
//! 4. **Take the positions, last**: the single counter row moves
//!    (`UPDATE counter SET position = position + n RETURNING`) and the events are inserted with
//!    the positions after the old value (their bodies get the position written in). The counter
//!    row stays locked until COMMIT, so positions are handed out in commit order and a
//!    rolled-back append gives its numbers back: the log has no gaps and a reader of
//!    `position > p` never skips an event that commits later. The lock is held from here to the
//!    end of COMMIT only.
//! 5. **Record the command id** with its positions (`INSERT INTO commands … ON CONFLICT DO
//!    NOTHING`): an id applied before ends the call with `LK208` —
//!    [`StoreError::CommandApplied`]; a concurrent append of the same id waits for the first
//!    to end, then sees it.
//!
//! Then COMMIT. `UNIQUE(stream_id, version)` is the backstop: should two events ever claim one
//! version, the insert fails and the append is a retryable `STORAGE` error.
//!
//! Appends from one process share a pool of connections ([`PgOptions::max_connections`]);
//! appends from any number of processes serialize only on the counter row, from step 4 to the
//! end of COMMIT. (Before migration 2 an append was five round trips — BEGIN, three statements,
//! COMMIT — and reached 0.46–0.50 of the raw counter-row baseline at one writer; see
//! `docs/PERFORMANCE.md`.)
//!
//! [`command`](EventStore::command) returns the original events of an applied id (the
//! positions recorded in step 5), so a client that retries a command whose answer it lost
//! gets what the first attempt stored.
//!
//! # Durability
//!
//! PostgreSQL's own: an [`append`](EventStore::append) returns after its COMMIT, which (with
//! the server's default `synchronous_commit = on`) waits for the write-ahead log to be flushed.
//! [`append_unsynced`](EventStore::append_unsynced) runs its transaction with
//! `synchronous_commit` off (`set_config(…, true)` inside `append_commit`): it is committed,
//! ordered and visible to every reader at once, but a server crash may lose it until a synced
//! commit follows. PostgreSQL's log is sequential, so a crash loses a suffix of such commits, never one in the middle, and any
//! synced commit — this process's or another's — makes every commit before it durable.
//! [`sync`](EventStore::sync), when this handle made unsynced appends since the last one,
//! commits a one-row write (`meta.syncs`) with a synced commit. Checkpoints and dead letters
//! are single synced statements.
//!
//! # Waiting for new events
//!
//! The [`EventStore`] port has no way to wait for events: readers poll
//! [`read_all`](EventStore::read_all) from their checkpoint. The store therefore sends no
//! `NOTIFY` (whose global lock at commit costs appends ~12% at 16 writers); the bus that tails
//! the log adds one as a wake-up hint, with polling still the guarantee.
//!
//! # The runtime
//!
//! The core is runtime-agnostic (lendkit drives it with `futures::executor::block_on`, the
//! Node addon on blocking threads), while sqlx's connections need a tokio reactor. The store
//! therefore owns a small tokio runtime (two worker threads, named `lendkit-pg`) and runs every
//! call as a task on it: its futures can be awaited from any executor, inside a tokio runtime
//! of the host's or none. Dropping the last handle shuts the runtime down without blocking, so
//! it may be dropped anywhere.
//!
//! # Connections
//!
//! A pool of at most [`PgOptions::max_connections`] per handle, each checked before it is
//! handed out (a connection the server ended is replaced, not used), named
//! `lendkit:SCHEMA` in `pg_stat_activity`.
//!
//! # Errors
//!
//! Everything PostgreSQL or the network reports is [`StoreError::Backend`] (`STORAGE`,
//! retryable: an append that failed that way may be sent again under the same command id),
//! naming the server as `postgres://host:port/database` and the schema; a read-only server
//! (a standby) is [`StoreError::ReadOnly`]; a stored event that does not decode is
//! [`StoreError::Corrupt`].

use crate::memory_store::check_shape;
use crate::runtime::OwnedRuntime;
use async_trait::async_trait;
use lendkit_core::error::StoreError;
use lendkit_core::event::{Envelope, SCHEMA_VERSION};
use lendkit_core::ids::{CommandId, StreamId};
use lendkit_core::ports::{CommandRecord, Commit, DeadLetter, EventStore};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, Row};
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The value of `meta.format` in every lendkit library.
const FORMAT: &str = "lendkit-events";

/// The table layouts, in order: `(version, name, SQL)`, where `{s}` stands for the quoted
/// schema. A library records each one it ran in `migrations`; one whose newest is past the
/// last here was written by a newer lendkit and is refused. Add new ones at the end; never
/// change one that shipped.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "the log, streams, command records, checkpoints and dead letters",
        "
CREATE TABLE {s}.meta(key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE {s}.counter(
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    position bigint NOT NULL CHECK (position >= 0));
INSERT INTO {s}.counter(position) VALUES (0);
CREATE TABLE {s}.streams(stream_id text PRIMARY KEY, version bigint NOT NULL CHECK (version >= 0));
CREATE TABLE {s}.events(
    position bigint PRIMARY KEY CHECK (position > 0),
    stream_id text NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    type text NOT NULL,
    command_id text NOT NULL,
    body jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version UNIQUE (stream_id, version));
CREATE TABLE {s}.commands(
    command_id text PRIMARY KEY,
    fingerprint text NOT NULL,
    first_position bigint NOT NULL,
    last_position bigint NOT NULL);
CREATE TABLE {s}.checkpoints(consumer text PRIMARY KEY, position bigint NOT NULL);
CREATE TABLE {s}.dead_letters(seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, body jsonb NOT NULL);
",
    ),
    (2, "an append in one call: the function append_commit", APPEND_COMMIT),
];

/// Migration 2: [`append`](EventStore::append) as one server-side function, so that an append
/// is one round trip (see the module documentation, "Appends"). Its refusals are errors with
/// lendkit's own SQLSTATEs, which end the call's transaction (nothing written): `LK409` a stale
/// stream (DETAIL: the named streams' `[stream, version]` pairs as they are), `LK204` a commit
/// of guards only (nothing to store), `LK208` a command id already applied.
const APPEND_COMMIT: &str = "
CREATE FUNCTION {s}.append_commit(
    p_command text, p_fingerprint text, p_synced boolean,
    p_streams text[], p_expected int8[], p_new int8[], p_guarded text[],
    p_ids text[], p_versions int8[], p_types text[], p_bodies text[])
RETURNS bigint LANGUAGE plpgsql AS $append$
DECLARE
    v_moved bigint;
    v_created text[];
    v_updated text[];
    v_base bigint;
    v_n bigint := coalesce(cardinality(p_ids), 0);
BEGIN
    IF NOT p_synced THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    -- 1-3. Lock every stream named, in sorted order (p_streams is sorted and distinct), and move
    -- each from its expected version to its new one in the same statement. A row that is not
    -- at its expected version is locked but not moved, so it is not returned; a stream without
    -- a row gets one, which is right only if the commit expected version 0.
    WITH m AS (
        INSERT INTO {s}.streams AS s (stream_id, version)
        SELECT v.id, v.new FROM unnest(p_streams, p_new) AS v(id, new) ORDER BY v.id
        ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version
        WHERE s.version = p_expected[array_position(p_streams, excluded.stream_id)]
        RETURNING s.stream_id AS id, s.xmax = 0 AS fresh)
    SELECT count(*) FILTER (WHERE NOT m.fresh OR p_expected[array_position(p_streams, m.id)] = 0),
           array_agg(m.id) FILTER (WHERE m.fresh),
           array_agg(m.id) FILTER (WHERE NOT m.fresh)
    INTO v_moved, v_created, v_updated FROM m;
    IF v_moved <> cardinality(p_streams) THEN
        RAISE EXCEPTION 'a stream of the commit of % is not at its expected version', p_command
            USING ERRCODE = 'LK409',
                  -- the versions before this statement: a moved row was at its expected
                  -- one, a created row had none (0)
                  DETAIL = coalesce((SELECT jsonb_agg(jsonb_build_array(stream_id,
                                         CASE WHEN stream_id = ANY(coalesce(v_updated, '{}'))
                                              THEN p_expected[array_position(p_streams, stream_id)]
                                              ELSE version END))
                                     FROM {s}.streams
                                     WHERE stream_id = ANY(p_streams)
                                       AND NOT stream_id = ANY(coalesce(v_created, '{}'))), '[]')::text;
    END IF;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'a commit of guards only stores nothing' USING ERRCODE = 'LK204';
    END IF;
    -- A guard on a stream that has no events leaves no row behind.
    IF cardinality(p_guarded) > 0 THEN
        DELETE FROM {s}.streams WHERE stream_id = ANY(p_guarded) AND version = 0;
    END IF;
    -- 4. The positions, last: the counter row stays locked until COMMIT.
    UPDATE {s}.counter SET position = position + v_n RETURNING position - v_n INTO v_base;
    INSERT INTO {s}.events(position, stream_id, version, type, command_id, body)
    SELECT v_base + v.k, v.id, v.version, v.type, p_command,
           v.body::jsonb || jsonb_build_object('position', v_base + v.k)
    FROM unnest(p_ids, p_versions, p_types, p_bodies) WITH ORDINALITY AS v(id, version, type, body, k);
    -- 5. The command record, with its positions: an id applied before is refused.
    INSERT INTO {s}.commands(command_id, fingerprint, first_position, last_position)
    VALUES (p_command, p_fingerprint, v_base + 1, v_base + v_n)
    ON CONFLICT (command_id) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'command % was applied before', p_command USING ERRCODE = 'LK208';
    END IF;
    RETURN v_base;
END
$append$;
";

/// Every table of a library.
const TABLES: &[&str] = &[
    "meta",
    "migrations",
    "counter",
    "streams",
    "events",
    "commands",
    "checkpoints",
    "dead_letters",
];

/// How a [`PgEventStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// The schema that holds the library's tables (created if missing): lowercase ASCII
    /// letters, digits and `_`, starting with a letter or `_`, at most 63 bytes. Default
    /// `lendkit`.
    pub schema: String,
    /// Connections this handle keeps at most (concurrent calls beyond it wait). Default 8.
    pub max_connections: u32,
    /// How long connecting, or waiting for a free connection, may take before the call fails
    /// with a `STORAGE` error. Default 5 s.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: "lendkit".to_owned(),
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl PgOptions {
    /// The defaults, with the tables in `schema`.
    pub fn in_schema(schema: impl Into<String>) -> Self {
        PgOptions {
            schema: schema.into(),
            ..PgOptions::default()
        }
    }
}

/// The event store on a PostgreSQL schema (see the module documentation). Cheap to clone:
/// clones share the connections; the runtime and connections go when the last is dropped.
#[derive(Clone)]
pub struct PgEventStore {
    inner: Arc<Inner>,
}

/// Owns the runtime; the tasks hold only [`Shared`], so the runtime is never dropped by one of
/// its own tasks.
struct Inner {
    runtime: OwnedRuntime,
    shared: Arc<Shared>,
    /// Set when this handle made an unsynced append since its last sync.
    unsynced: AtomicBool,
}

/// What every task needs: the pool, the statements for this schema, and names for errors.
struct Shared {
    pool: PgPool,
    sql: Sql,
    /// `postgres://host:port/database schema NAME`: the server and schema, without a password.
    shown: String,
}

impl std::fmt::Debug for PgEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventStore")
            .field("library", &self.inner.shared.shown)
            .finish()
    }
}

/// The statements, with the schema written in (prepared once per connection by sqlx).
struct Sql {
    append_commit: String,
    versions: String,
    read_stream: String,
    read_stream_from: String,
    read_all: String,
    head: String,
    command: String,
    read_range: String,
    checkpoint: String,
    checkpoints: String,
    save_checkpoints: String,
    sync: String,
    add_dead_letter: String,
    dead_letters: String,
    remove_dead_letter: String,
}

impl Sql {
    fn new(schema: &str) -> Sql {
        let s = quoted(schema);
        Sql {
            append_commit: format!(
                "SELECT {s}.append_commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            versions: format!(
                "SELECT stream_id, version FROM {s}.streams WHERE stream_id = ANY($1::text[])"
            ),
            read_stream: format!(
                "SELECT position, body::text FROM {s}.events WHERE stream_id = $1 ORDER BY version"
            ),
            read_stream_from: format!(
                "SELECT position, body::text FROM {s}.events
                 WHERE stream_id = $1 AND version > $2 ORDER BY version"
            ),
            read_all: format!(
                "SELECT position, body::text FROM {s}.events
                 WHERE position > $1 ORDER BY position LIMIT $2"
            ),
            head: format!("SELECT position FROM {s}.counter"),
            command: format!(
                "SELECT fingerprint, first_position, last_position FROM {s}.commands
                 WHERE command_id = $1"
            ),
            read_range: format!(
                "SELECT position, body::text FROM {s}.events
                 WHERE position BETWEEN $1 AND $2 ORDER BY position"
            ),
            checkpoint: format!("SELECT position FROM {s}.checkpoints WHERE consumer = $1"),
            checkpoints: format!(
                "SELECT consumer, position FROM {s}.checkpoints ORDER BY consumer"
            ),
            save_checkpoints: format!(
                // Processes sharing the schema save one consumer's checkpoint in any order:
                // it never moves back.
                "INSERT INTO {s}.checkpoints AS c (consumer, position)
                 SELECT * FROM unnest($1::text[], $2::int8[])
                 ON CONFLICT (consumer) DO UPDATE SET position = GREATEST(c.position, excluded.position)"
            ),
            sync: format!(
                "INSERT INTO {s}.meta AS m (key, value) VALUES ('syncs', '1')
                 ON CONFLICT (key) DO UPDATE SET value = (m.value::bigint + 1)::text"
            ),
            add_dead_letter: format!(
                "INSERT INTO {s}.dead_letters(id, body) VALUES ($1, $2::jsonb)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body"
            ),
            dead_letters: format!("SELECT body::text FROM {s}.dead_letters ORDER BY seq"),
            remove_dead_letter: format!("DELETE FROM {s}.dead_letters WHERE id = $1"),
        }
    }
}

/// A schema name as a quoted identifier (names are checked by [`check_schema`] first, so no
/// quote can be inside).
fn quoted(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// Refuses a schema name that is not a plain lowercase identifier.
fn check_schema(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 && !schema.starts_with("pg_") {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "the PostgreSQL schema name {schema:?} is not valid: use lowercase ASCII letters, digits \
             and _, starting with a letter or _ (not pg_), at most 63 bytes"
        )))
    }
}

/// A number for a `bigint` column.
fn to_sql_int(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Backend(format!("{what} {n} is too large to store")))
}

/// A number read back from a `bigint` column; a negative one means the tables were tampered with.
fn from_sql_int(n: i64, position: u64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt {
        position,
        reason: format!("{what} is {n}"),
    })
}

/// A sqlx failure as a store error, naming the library `shown`.
fn failed(shown: &str, e: &sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            match code {
                // read_only_sql_transaction: a standby, or default_transaction_read_only.
                "25006" => StoreError::ReadOnly(format!("{shown} (a read-only PostgreSQL server)")),
                "40001" | "40P01" => StoreError::Backend(format!(
                    "{shown}: PostgreSQL aborted the transaction ({}); nothing was stored, retry",
                    db.message()
                )),
                "42501" => StoreError::Backend(format!(
                    "{shown}: permission denied ({}); grant the user rights on the schema",
                    db.message()
                )),
                _ if code.starts_with("08") || code.starts_with("57") || code == "53300" => {
                    StoreError::Backend(format!(
                        "{shown}: PostgreSQL is unavailable ({}); retry when it is back",
                        db.message()
                    ))
                }
                _ => StoreError::Backend(format!(
                    "{shown}: PostgreSQL error {code}: {}",
                    db.message()
                )),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Backend(format!(
            "{shown}: PostgreSQL is unreachable ({e}); check that the server runs and the URL, then retry"
        )),
        sqlx::Error::Configuration(_) => {
            StoreError::Backend(format!("{shown}: the connection settings are refused ({e})"))
        }
        _ => StoreError::Backend(format!("{shown}: {e}")),
    }
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

/// The envelopes of rows `(position, body)`.
fn envelopes(rows: &[PgRow], shown: &str) -> Result<Vec<Envelope>, StoreError> {
    rows.iter()
        .map(|row| {
            let position: i64 = row.try_get(0).map_err(|e| failed(shown, &e))?;
            let body: &str = row.try_get(1).map_err(|e| failed(shown, &e))?;
            decode(position, body)
        })
        .collect()
}

/// The connect options of `url`, and how to name that server in messages (no password).
fn parse_url(url: &str) -> Result<(PgConnectOptions, String), StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        // sqlx's message may quote the URL; ours names only what is wrong with it.
        let why = match e {
            sqlx::Error::Configuration(inner) => inner.to_string(),
            other => other.to_string(),
        };
        StoreError::Backend(format!(
            "the PostgreSQL URL is not valid ({why}); expected postgres://user[:password]@host[:port]/database"
        ))
    })?;
    let shown = format!(
        "postgres://{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username())
    );
    Ok((options, shown))
}

/// How long a pooled connection may sit idle before it is pinged on its way out.
const IDLE_PING: Duration = Duration::from_secs(1);

fn new_runtime() -> Result<OwnedRuntime, StoreError> {
    OwnedRuntime::start("lendkit-pg").map_err(|e| {
        StoreError::Backend(format!("cannot start the PostgreSQL store's runtime: {e}"))
    })
}

fn task_failed(e: String) -> StoreError {
    StoreError::Backend(format!("the PostgreSQL store's task failed: {e}"))
}

impl PgEventStore {
    /// Connects to the PostgreSQL database at `url` (`postgres://user[:password]@host[:port]/database`)
    /// and opens — creating or migrating it if need be — the library in `options.schema`; see
    /// the module documentation for what opening does. Blocks the calling thread until done.
    ///
    /// Fails with [`StoreError::Backend`] for a wrong URL, a server that does not answer or a
    /// refused login, [`StoreError::NotALibrary`] when the schema holds another program's
    /// tables, [`StoreError::SchemaTooNew`] when a newer lendkit wrote it, and
    /// [`StoreError::Damaged`] when tables are missing; in each case nothing is written.
    pub fn connect(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        check_schema(&options.schema)?;
        let (connect, shown) = parse_url(url)?;
        let shown = format!("{shown} schema {}", options.schema);
        let runtime = new_runtime()?;
        let sql = Sql::new(&options.schema);
        // What pg_stat_activity shows for the store's connections.
        let application_name = format!("lendkit:{}", options.schema);
        let opened = {
            let shown = shown.clone();
            runtime.block(
                async move {
                    let pool = PgPoolOptions::new()
                        .max_connections(options.max_connections.max(1))
                        .acquire_timeout(options.connect_timeout)
                        // A connection idle for a while is pinged before it is handed out (the
                        // server may have ended it); one in steady use is not, which saves a
                        // round trip per append. A connection that fails mid-call is closed, and
                        // the call fails with a retryable STORAGE error.
                        .test_before_acquire(false)
                        .before_acquire(|conn, meta| {
                            Box::pin(async move {
                                if meta.idle_for > IDLE_PING {
                                    sqlx::Connection::ping(conn).await?;
                                }
                                Ok(true)
                            })
                        })
                        .connect_with(connect.application_name(&application_name))
                        .await
                        .map_err(|e| failed(&shown, &e))?;
                    let migrated = {
                        let mut conn = pool.acquire().await.map_err(|e| failed(&shown, &e))?;
                        open_schema(&mut conn, &options.schema, &shown).await
                    };
                    if let Err(e) = migrated {
                        pool.close().await;
                        return Err(e);
                    }
                    Ok(pool)
                },
                task_failed,
            )
        };
        // A failure drops the runtime, which shuts it down without blocking.
        let pool = opened?;
        tracing::debug!(target: "lendkit::store", store = "pg", library = %shown, "opened");
        Ok(PgEventStore {
            inner: Arc::new(Inner {
                runtime,
                shared: Arc::new(Shared { pool, sql, shown }),
                unsynced: AtomicBool::new(false),
            }),
        })
    }

    /// Drops the library in `schema` of the database at `url`, with every table in it (the
    /// whole schema). Returns false when there was no such schema. Refuses with
    /// [`StoreError::NotALibrary`] a schema that holds tables but is not a lendkit library, so
    /// it cannot drop another program's data. Meant for tests and for removing a library on
    /// purpose: what it drops cannot be recovered.
    pub fn drop_schema(url: &str, schema: &str) -> Result<bool, StoreError> {
        check_schema(schema)?;
        let (connect, shown) = parse_url(url)?;
        let shown = format!("{shown} schema {schema}");
        let runtime = new_runtime()?;
        let schema = schema.to_owned();
        let dropped = runtime.block(
            async move {
                let fail = |e: sqlx::Error| failed(&shown, &e);
                let mut conn = PgConnection::connect_with(&connect).await.map_err(fail)?;
                let mut tx = conn.begin().await.map_err(fail)?;
                lock_schema(&mut tx, &schema).await.map_err(fail)?;
                let Some(tables) = tables_of(&mut tx, &schema).await.map_err(fail)? else {
                    return Ok(false);
                };
                if !tables.is_empty() {
                    // A library of any version may be dropped; another program's schema not.
                    library_version(&mut tx, &schema, &tables, &shown, false).await?;
                }
                let drop = format!("DROP SCHEMA {} CASCADE", quoted(&schema));
                tx.execute(AssertSqlSafe(drop)).await.map_err(fail)?;
                tx.commit().await.map_err(fail)?;
                let _ = conn.close().await;
                Ok(true)
            },
            task_failed,
        );
        drop(runtime);
        dropped
    }

    /// The server and schema, as errors name them: `postgres://host:port/database schema NAME`.
    pub fn library(&self) -> &str {
        &self.inner.shared.shown
    }

    /// Runs `work` as a task on the store's runtime and awaits it (from any executor).
    async fn run<T, F>(&self, work: impl FnOnce(Arc<Shared>) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let task = work(Arc::clone(&self.inner.shared));
        self.inner.runtime.run(task, task_failed).await
    }

    /// An append, synced or not (see [`EventStore::append_unsynced`]).
    async fn append_as(&self, commit: Commit, synced: bool) -> Result<Vec<Envelope>, StoreError> {
        for a in &commit.appends {
            check_shape(a)?;
        }
        let stored = self
            .run(move |shared| async move { shared.append(commit, synced).await })
            .await?;
        if !synced && !stored.is_empty() {
            self.inner.unsynced.store(true, Ordering::SeqCst);
        }
        Ok(stored)
    }
}

/// Takes the transaction-scoped advisory lock that orders openers (and droppers) of `schema`.
async fn lock_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('lendkit-schema:' || $1, 0))")
        .bind(schema)
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// The names of the tables (and views) in `schema`, or `None` when there is no such schema.
async fn tables_of(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        return Ok(None);
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(tables))
}

/// Judges a schema that holds `tables`: a lendkit library (its newest migration is returned)
/// or not, and — when `judge_version` — not written by a newer lendkit. Reads only.
async fn library_version(
    conn: &mut PgConnection,
    schema: &str,
    tables: &[String],
    shown: &str,
    judge_version: bool,
) -> Result<i32, StoreError> {
    let s = quoted(schema);
    let foreign =
        || StoreError::NotALibrary(format!("{shown} (it holds tables of another program)"));
    if !tables.iter().any(|t| t == "meta") {
        return Err(foreign());
    }
    // Another program's `meta` may have other columns: then it is not ours. The lookup runs in
    // a savepoint so that such an error does not end the transaction.
    let meta_sql =
        format!("SELECT key, value::text FROM {s}.meta WHERE key IN ('format', 'schema')");
    let mut sp = conn.begin().await.map_err(|e| failed(shown, &e))?;
    let rows: Vec<(String, String)> = match sqlx::query_as(AssertSqlSafe(meta_sql))
        .fetch_all(&mut *sp)
        .await
    {
        Ok(rows) => {
            sp.commit().await.map_err(|e| failed(shown, &e))?;
            rows
        }
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42703") => {
            sp.rollback().await.map_err(|e| failed(shown, &e))?;
            return Err(foreign());
        }
        Err(e) => return Err(failed(shown, &e)),
    };
    let value = |key: &str| rows.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if value("format") != Some(FORMAT) {
        return Err(foreign());
    }
    if !judge_version {
        return Ok(0);
    }
    let Some(schema_version) = value("schema").and_then(|v| v.parse::<u64>().ok()) else {
        return Err(StoreError::Damaged {
            path: shown.to_owned(),
            reason: "meta has no readable schema version".into(),
        });
    };
    if schema_version > u64::from(SCHEMA_VERSION) {
        return Err(StoreError::SchemaTooNew {
            found: u32::try_from(schema_version).unwrap_or(u32::MAX),
            supported: SCHEMA_VERSION,
        });
    }
    if !tables.iter().any(|t| t == "migrations") {
        return Err(StoreError::Damaged {
            path: shown.to_owned(),
            reason: "the library has no migrations table".into(),
        });
    }
    let newest: Option<i32> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT max(version) FROM {s}.migrations"
    )))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| failed(shown, &e))?;
    let newest = newest.unwrap_or(0);
    let known = MIGRATIONS.last().map_or(0, |(v, _, _)| *v);
    if newest > known {
        return Err(StoreError::SchemaTooNew {
            found: u32::try_from(newest).unwrap_or(u32::MAX),
            supported: u32::try_from(known).unwrap_or(0),
        });
    }
    Ok(newest)
}

/// Opens the library in `schema` inside one transaction (see the module documentation).
async fn open_schema(conn: &mut PgConnection, schema: &str, shown: &str) -> Result<(), StoreError> {
    let fail = |e: sqlx::Error| failed(shown, &e);
    let s = quoted(schema);
    let mut tx = conn.begin().await.map_err(fail)?;
    lock_schema(&mut tx, schema).await.map_err(fail)?;
    let tables = tables_of(&mut tx, schema).await.map_err(fail)?;
    let applied = match &tables {
        None => {
            tx.execute(AssertSqlSafe(format!("CREATE SCHEMA {s}")))
                .await
                .map_err(fail)?;
            0
        }
        Some(tables) if tables.is_empty() => 0,
        Some(tables) => library_version(&mut tx, schema, tables, shown, true).await?,
    };
    if applied == 0 {
        tx.execute(AssertSqlSafe(format!(
            "CREATE TABLE {s}.migrations(version integer PRIMARY KEY, name text NOT NULL,
                                         applied_at timestamptz NOT NULL DEFAULT now())"
        )))
        .await
        .map_err(fail)?;
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > applied) {
        sqlx::raw_sql(AssertSqlSafe(sql.replace("{s}", &s)))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {s}.migrations(version, name) VALUES ($1, $2)"
        )))
        .bind(version)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tracing::info!(target: "lendkit::store", store = "pg", library = %shown, migration = version, "migrated");
    }
    if applied == 0 {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {s}.meta(key, value) VALUES ('format', $1), ('schema', $2)"
        )))
        .bind(FORMAT)
        .bind(SCHEMA_VERSION.to_string())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    }
    let present = tables_of(&mut tx, schema)
        .await
        .map_err(fail)?
        .unwrap_or_default();
    if let Some(missing) = TABLES.iter().find(|t| !present.iter().any(|p| p == *t)) {
        return Err(StoreError::Damaged {
            path: shown.to_owned(),
            reason: format!("the library has no {missing} table"),
        });
    }
    let appends: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname = $1 AND p.proname = 'append_commit')",
    )
    .bind(schema)
    .fetch_one(&mut *tx)
    .await
    .map_err(fail)?;
    if !appends {
        return Err(StoreError::Damaged {
            path: shown.to_owned(),
            reason: "the library has no append_commit function".into(),
        });
    }
    tx.commit().await.map_err(fail)
}

/// What an append sends, prepared (and checked for size) before the call.
struct Plan {
    /// Every stream the commit names, once each, sorted (the lock order), with the version
    /// the commit expects it at (its first part's) and the version after the commit.
    streams: Vec<String>,
    expected: Vec<i64>,
    new: Vec<i64>,
    /// The streams the commit only guards (no events).
    guarded: Vec<String>,
    /// False when a stream named twice is expected, the second time, at another version than
    /// its first part leaves it at: such a commit is a conflict whatever is stored.
    consistent: bool,
    /// The events' columns, in commit order.
    ids: Vec<String>,
    versions: Vec<i64>,
    types: Vec<String>,
    bodies: Vec<String>,
}

fn plan(commit: &Commit) -> Result<Plan, StoreError> {
    // (stream, expected, after, events) per stream, in the commit's order.
    let mut named: Vec<(String, u64, u64, usize)> = Vec::with_capacity(commit.appends.len());
    let mut consistent = true;
    let (mut ids, mut versions, mut types, mut bodies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in &commit.appends {
        let stream = a.stream.to_string();
        let count = a.events.len();
        for e in &a.events {
            ids.push(stream.clone());
            versions.push(to_sql_int(e.version, "version")?);
            types.push(e.type_name().to_owned());
            bodies.push(e.to_json_text());
        }
        let after = a.expected_version.saturating_add(count as u64);
        match named.iter_mut().find(|(s, ..)| *s == stream) {
            Some((_, _, at, events)) => {
                consistent &= *at == a.expected_version;
                *at = after;
                *events += count;
            }
            None => named.push((stream, a.expected_version, after, count)),
        }
    }
    named.sort_by(|x, y| x.0.cmp(&y.0));
    let mut plan = Plan {
        streams: Vec::with_capacity(named.len()),
        expected: Vec::with_capacity(named.len()),
        new: Vec::with_capacity(named.len()),
        guarded: Vec::new(),
        consistent,
        ids,
        versions,
        types,
        bodies,
    };
    for (stream, expected, after, events) in named {
        plan.expected.push(to_sql_int(expected, "version")?);
        plan.new.push(to_sql_int(after, "version")?);
        if events == 0 {
            plan.guarded.push(stream.clone());
        }
        plan.streams.push(stream);
    }
    Ok(plan)
}

/// The first stream of `commit`, in its order, whose expected version differs from `current`
/// (a stream named twice is checked against its own earlier part; a stream not in `current`
/// is at version 0).
fn first_stale(commit: &Commit, current: &[(String, u64)]) -> Option<StoreError> {
    let mut seen: Vec<(&StreamId, u64)> = Vec::new();
    for a in &commit.appends {
        let actual = match seen.iter().rev().find(|(s, _)| *s == &a.stream) {
            Some((_, v)) => *v,
            None => {
                let name = a.stream.to_string();
                current
                    .iter()
                    .find(|(s, _)| *s == name)
                    .map_or(0, |(_, v)| *v)
            }
        };
        if actual != a.expected_version {
            return Some(StoreError::Conflict {
                stream: a.stream.to_string(),
                expected: a.expected_version,
                actual,
            });
        }
        seen.push((
            &a.stream,
            a.expected_version.saturating_add(a.events.len() as u64),
        ));
    }
    None
}

/// Rows `(stream_id, version)` as numbers.
fn stream_versions(rows: &[PgRow], shown: &str) -> Result<Vec<(String, u64)>, StoreError> {
    rows.iter()
        .map(|row| {
            let stream: String = row.try_get(0).map_err(|e| failed(shown, &e))?;
            let version: i64 = row.try_get(1).map_err(|e| failed(shown, &e))?;
            let version = from_sql_int(version, 0, &format!("the version of {stream}"))?;
            Ok((stream, version))
        })
        .collect()
}

/// The versions an `LK409` refusal reports in its DETAIL (`[[stream, version], …]`).
fn refused_versions(db: &dyn sqlx::error::DatabaseError) -> Option<Vec<(String, u64)>> {
    db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|e| e.detail())
        .and_then(|d| serde_json::from_str(d).ok())
}

impl Shared {
    fn failed(&self, e: &sqlx::Error) -> StoreError {
        failed(&self.shown, e)
    }

    /// One append: one call of `append_commit`, in its own transaction (see the module
    /// documentation).
    async fn append(&self, commit: Commit, synced: bool) -> Result<Vec<Envelope>, StoreError> {
        let started = Instant::now();
        let plan = plan(&commit)?;
        if !plan.consistent {
            // A conflict whatever is stored: report the first stale part as things are.
            return Err(self.stale_now(&commit).await);
        }
        let called = sqlx::query_scalar::<_, i64>(AssertSqlSafe(self.sql.append_commit.as_str()))
            .bind(commit.command_id.as_str())
            .bind(&commit.fingerprint)
            .bind(synced)
            .bind(&plan.streams)
            .bind(&plan.expected)
            .bind(&plan.new)
            .bind(&plan.guarded)
            .bind(&plan.ids)
            .bind(&plan.versions)
            .bind(&plan.types)
            .bind(&plan.bodies)
            .fetch_one(&self.pool)
            .await;
        let base = match called {
            Ok(base) => base,
            Err(sqlx::Error::Database(db)) => match db.code().as_deref() {
                Some("LK409") => {
                    return Err(match refused_versions(db.as_ref()) {
                        Some(current) => first_stale(&commit, &current)
                            .unwrap_or_else(|| self.taken_concurrently(&commit)),
                        None => self.taken_concurrently(&commit),
                    })
                }
                // Guards only: nothing to store, nothing recorded.
                Some("LK204") => return Ok(Vec::new()),
                Some("LK208") => {
                    return Err(StoreError::CommandApplied(commit.command_id.to_string()))
                }
                // The backstop (`UNIQUE(stream_id, version)`), which the stream locks rule out.
                _ if db.constraint() == Some("events_stream_version") => {
                    return Err(self.taken_concurrently(&commit))
                }
                _ => return Err(self.failed(&sqlx::Error::Database(db))),
            },
            Err(e) => return Err(self.failed(&e)),
        };
        let base = from_sql_int(base, 0, "the position counter")?;
        let mut position = base;
        let mut stored = Vec::with_capacity(plan.ids.len());
        for a in commit.appends {
            for mut e in a.events {
                position += 1;
                e.position = position;
                stored.push(e);
            }
        }
        tracing::debug!(
            target: "lendkit::store",
            store = "pg",
            events = stored.len(),
            synced,
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "append"
        );
        Ok(stored)
    }

    /// The conflict of a commit that cannot apply whatever is stored: its first stale part
    /// against the versions as they are now.
    async fn stale_now(&self, commit: &Commit) -> StoreError {
        let streams: Vec<String> = commit
            .appends
            .iter()
            .map(|a| a.stream.to_string())
            .collect();
        let rows = sqlx::query(AssertSqlSafe(self.sql.versions.as_str()))
            .bind(&streams)
            .fetch_all(&self.pool)
            .await;
        let current = match rows {
            Ok(rows) => match stream_versions(&rows, &self.shown) {
                Ok(current) => current,
                Err(e) => return e,
            },
            Err(e) => return self.failed(&e),
        };
        first_stale(commit, &current).unwrap_or_else(|| self.taken_concurrently(commit))
    }

    /// The retryable error for a refusal whose stale stream could not be named (which the
    /// locks rule out).
    fn taken_concurrently(&self, commit: &Commit) -> StoreError {
        StoreError::Backend(format!(
            "{}: a version of the commit of {} was taken concurrently; nothing was stored, retry",
            self.shown, commit.command_id
        ))
    }

    async fn envelopes(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(&e))?;
        envelopes(&rows, &self.shown)
    }
}

#[async_trait]
impl EventStore for PgEventStore {
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.append_as(commit, true).await
    }

    async fn append_unsynced(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        self.append_as(commit, false).await
    }

    async fn sync(&self) -> Result<(), StoreError> {
        if !self.inner.unsynced.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let synced = self
            .run(|shared| async move {
                sqlx::query(AssertSqlSafe(shared.sql.sync.as_str()))
                    .execute(&shared.pool)
                    .await
                    .map(drop)
                    .map_err(|e| shared.failed(&e))
            })
            .await;
        if synced.is_err() {
            // Still waiting for a sync.
            self.inner.unsynced.store(true, Ordering::SeqCst);
        }
        synced
    }

    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
        let stream = stream.to_string();
        self.run(|shared| async move {
            let query = sqlx::query(AssertSqlSafe(shared.sql.read_stream.as_str())).bind(stream);
            shared.envelopes(query).await
        })
        .await
    }

    async fn read_stream_from(
        &self,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<Envelope>, StoreError> {
        // A version past bigint has nothing after it.
        let Ok(after) = i64::try_from(after_version) else {
            return Ok(Vec::new());
        };
        let stream = stream.to_string();
        self.run(|shared| async move {
            let query = sqlx::query(AssertSqlSafe(shared.sql.read_stream_from.as_str()))
                .bind(stream)
                .bind(after);
            shared.envelopes(query).await
        })
        .await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(|shared| async move {
            let query = sqlx::query(AssertSqlSafe(shared.sql.read_all.as_str()))
                .bind(after)
                .bind(limit);
            shared.envelopes(query).await
        })
        .await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.run(|shared| async move {
            let head: i64 = sqlx::query_scalar(AssertSqlSafe(shared.sql.head.as_str()))
                .fetch_one(&shared.pool)
                .await
                .map_err(|e| shared.failed(&e))?;
            from_sql_int(head, 0, "the head")
        })
        .await
    }

    async fn command(&self, command: &CommandId) -> Result<Option<CommandRecord>, StoreError> {
        let command = command.clone();
        self.run(|shared| async move {
            let record: Option<(String, i64, i64)> =
                sqlx::query_as(AssertSqlSafe(shared.sql.command.as_str()))
                    .bind(command.as_str())
                    .fetch_optional(&shared.pool)
                    .await
                    .map_err(|e| shared.failed(&e))?;
            let Some((fingerprint, first, last)) = record else {
                return Ok(None);
            };
            let query = sqlx::query(AssertSqlSafe(shared.sql.read_range.as_str()))
                .bind(first)
                .bind(last);
            let events = shared.envelopes(query).await?;
            crate::record::whole(&command, fingerprint, first, last, events).map(Some)
        })
        .await
    }

    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        let consumer = consumer.to_owned();
        self.run(|shared| async move {
            let position: Option<i64> =
                sqlx::query_scalar(AssertSqlSafe(shared.sql.checkpoint.as_str()))
                    .bind(&consumer)
                    .fetch_optional(&shared.pool)
                    .await
                    .map_err(|e| shared.failed(&e))?;
            position
                .map(|p| from_sql_int(p, 0, &format!("the checkpoint of {consumer}")))
                .transpose()
        })
        .await
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.save_checkpoints(&[(consumer.to_owned(), position)])
            .await
    }

    async fn save_checkpoints(&self, checkpoints: &[(String, u64)]) -> Result<(), StoreError> {
        // One row per consumer (the last value named wins), as one statement.
        let mut consumers: Vec<String> = Vec::with_capacity(checkpoints.len());
        let mut positions: Vec<i64> = Vec::with_capacity(checkpoints.len());
        for (consumer, position) in checkpoints {
            let position = to_sql_int(*position, "checkpoint")?;
            match consumers.iter().position(|c| c == consumer) {
                Some(i) => positions[i] = position,
                None => {
                    consumers.push(consumer.clone());
                    positions.push(position);
                }
            }
        }
        if consumers.is_empty() {
            return Ok(());
        }
        self.run(|shared| async move {
            sqlx::query(AssertSqlSafe(shared.sql.save_checkpoints.as_str()))
                .bind(consumers)
                .bind(positions)
                .execute(&shared.pool)
                .await
                .map(drop)
                .map_err(|e| shared.failed(&e))
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.run(|shared| async move {
            let rows: Vec<(String, i64)> =
                sqlx::query_as(AssertSqlSafe(shared.sql.checkpoints.as_str()))
                    .fetch_all(&shared.pool)
                    .await
                    .map_err(|e| shared.failed(&e))?;
            rows.into_iter()
                .map(|(consumer, p)| {
                    let position = from_sql_int(p, 0, &format!("the checkpoint of {consumer}"))?;
                    Ok((consumer, position))
                })
                .collect()
        })
        .await
    }

    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError> {
        let body = serde_json::to_string(&letter)
            .map_err(|e| StoreError::Backend(format!("dead letter: {e}")))?;
        self.run(|shared| async move {
            sqlx::query(AssertSqlSafe(shared.sql.add_dead_letter.as_str()))
                .bind(&letter.id)
                .bind(body)
                .execute(&shared.pool)
                .await
                .map(drop)
                .map_err(|e| shared.failed(&e))
        })
        .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.run(|shared| async move {
            let bodies: Vec<String> =
                sqlx::query_scalar(AssertSqlSafe(shared.sql.dead_letters.as_str()))
                    .fetch_all(&shared.pool)
                    .await
                    .map_err(|e| shared.failed(&e))?;
            bodies
                .iter()
                .map(|body| {
                    serde_json::from_str(body)
                        .map_err(|e| StoreError::Backend(format!("dead letter: {e}")))
                })
                .collect()
        })
        .await
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(|shared| async move {
            sqlx::query(AssertSqlSafe(shared.sql.remove_dead_letter.as_str()))
                .bind(id)
                .execute(&shared.pool)
                .await
                .map(|done| done.rows_affected() > 0)
                .map_err(|e| shared.failed(&e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["lendkit", "lk_t_1_2", "_x", "a1"] {
            assert!(check_schema(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Lendkit",
            "1abc",
            "a-b",
            "a\"b",
            "pg_catalog",
            &"x".repeat(64),
        ] {
            assert!(
                matches!(check_schema(bad), Err(StoreError::Backend(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_bad_url_is_a_typed_error_that_shows_no_password() {
        match PgEventStore::connect("mysql://u:secret@h/db", PgOptions::default()) {
            Err(StoreError::Backend(why)) => {
                assert!(!why.contains("secret"), "{why}");
                assert!(why.contains("URL"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_server_that_is_down_is_a_typed_error() {
        let options = PgOptions {
            connect_timeout: Duration::from_secs(2),
            ..PgOptions::default()
        };
        // Port 1 on the loopback: nothing listens there.
        match PgEventStore::connect("postgres://u:secret@127.0.0.1:1/db", options) {
            Err(StoreError::Backend(why)) => {
                assert!(!why.contains("secret"), "{why}");
                assert!(why.contains("postgres://127.0.0.1:1/db"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
}
