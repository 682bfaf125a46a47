//! `NativeLibrary`: one open library, wrapped by `Library` in `index.js`.
//!
//! Every method that touches storage is an `async fn`: JS gets a Promise at once and the core
//! runs on a thread of the blocking pool (see [`guarded`]), so the JS thread never waits for the
//! disk, the saga or a host port — and a host port called from the core can always reach it.
//! Sync methods only flip flags or read the breaker. Each method converts its input, calls the
//! core once and maps the result; errors go through `errors.rs` only. Every entry point is
//! `catch_unwind`: a panic becomes an error, never an abort of Node.
//!
//! `close()` first ends every wait on a host port (`Library::close`), so a port that never
//! answers cannot hang it, nor keep Node running through a Promise that never settles.

use crate::clock::ManualClock;
use crate::errors;
use crate::input::amount;
use crate::options::NativeOptions;
use crate::output::{
    answers_text, outcome_parts, BookRow, DeadLetter, Event, HoldShelfRow, MemberPage, OverdueRow,
};
use crate::ports::{subscriber, Listener};
use futures::executor::block_on;
use lendkit::{Actor, CommandId, OpenLibrary};
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Result};
use napi_derive::napi;
use std::borrow::Cow;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long `close()` waits for calls still running before it lets the last one close the library.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// Runs a call into the core on a thread of the blocking pool, never on the JS thread: the
/// core's futures block on the disk (sled) and wait for host ports, which need the JS thread
/// free. A panic becomes an error instead of a stranded Promise.
async fn guarded<T, F, Fut>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = lendkit::Result<T>>,
{
    let run = move || catch_unwind(AssertUnwindSafe(move || block_on(work())));
    match napi::tokio::task::spawn_blocking(run).await {
        Ok(Ok(result)) => result.map_err(errors::to_js),
        Ok(Err(panic)) => Err(errors::panicked(panic.as_ref())),
        Err(e) => Err(errors::panicked(&e.to_string())),
    }
}

/// Parses `librarian:ID` or `member:ID`.
fn actor(text: &str) -> Result<Actor> {
    match Actor::parse(text) {
        Ok(Actor::System) => Err(errors::invalid(
            "actor must be librarian:ID or member:ID; the system actor is lendkit's own",
        )),
        Ok(a) => Ok(a),
        Err(e) => Err(errors::invalid(e)),
    }
}

/// The open library, shared by every call in flight; `None` once closed.
struct Handle {
    library: Mutex<Option<Arc<OpenLibrary>>>,
    /// Whether a background runner delivers events to subscribers (else `settle` does).
    background: bool,
    /// Whether a command may run on the JS thread (see [`NativeLibrary::runs_inline`]).
    inline: bool,
    /// Whether `settle` may run on the JS thread (see [`NativeLibrary::settles_inline`]).
    settles_inline: bool,
}

/// One open library. Made by `open` (never by `new`); closed by `close()`.
#[napi]
pub struct NativeLibrary {
    handle: Arc<Handle>,
}

/// The core's configuration from the options and the clock (installing the options' logger).
fn config_of(mut options: NativeOptions, clock: Option<&ManualClock>) -> Result<lendkit::Config> {
    crate::logging::install(options.logger.take());
    let mut config = options.into_config()?;
    if let Some(c) = clock {
        config.clock = Some(Arc::new(c.shared()));
    }
    Ok(config)
}

/// Opens the sled database at `path` (or, without a path, a library in memory) with `options`
/// and, if given, a manual `clock`. Resolves to the open library.
#[napi(catch_unwind)]
pub fn open<'env>(
    env: &'env Env,
    path: Option<String>,
    options: NativeOptions,
    clock: Option<&ManualClock>,
) -> Result<PromiseRaw<'env, NativeLibrary>> {
    let config = config_of(options, clock)?;
    let background = config.background;
    // In memory, with the members' point accounts, a command touches no disk and calls no host
    // port (a JS gateway would need this very thread): nothing it waits for can need the JS thread.
    let inline = path.is_none() && config.payment.is_none();
    // A settle runs the policies, and the notices policy calls the notifier: with a JS notifier
    // it would wait for this very thread. Without one, it waits for nothing either.
    let settles_inline = inline && config.notifier.is_none();
    env.spawn_future(async move {
        let library = guarded(move || async move {
            match path {
                Some(p) => OpenLibrary::open_async(p, config).await,
                None => OpenLibrary::in_memory_async(config).await,
            }
        })
        .await?;
        Ok(NativeLibrary {
            handle: Arc::new(Handle {
                library: Mutex::new(Some(Arc::new(library))),
                background,
                inline,
                settles_inline,
            }),
        })
    })
}

/// Connects to the library shared through the PostgreSQL server at `pg_url` and the NATS
/// server at `nats_url`, in schema and namespace `name` (default `lendkit`), with `options`
/// (`store` and durability do not apply); `ack_wait_ms` is how long a process may hold an event
/// before another takes it over. Resolves to the open library.
#[napi(catch_unwind)]
pub fn connect<'env>(
    env: &'env Env,
    pg_url: String,
    nats_url: String,
    name: Option<String>,
    ack_wait_ms: Option<u32>,
    options: NativeOptions,
    clock: Option<&ManualClock>,
) -> Result<PromiseRaw<'env, NativeLibrary>> {
    let config = config_of(options, clock)?;
    let background = config.background;
    let mut shared = lendkit::ConnectOptions::named(name.as_deref().unwrap_or("lendkit"));
    if let Some(ms) = ack_wait_ms {
        shared.nats.ack_wait = Duration::from_millis(u64::from(ms.max(1)));
    }
    env.spawn_future(async move {
        let library = guarded(move || async move {
            OpenLibrary::connect_async(&pg_url, &nats_url, shared, config).await
        })
        .await?;
        Ok(NativeLibrary {
            handle: Arc::new(Handle {
                library: Mutex::new(Some(Arc::new(library))),
                background,
                // Every command goes to the servers: never on the JS thread.
                inline: false,
                settles_inline: false,
            }),
        })
    })
}

/// Removes the library shared through PostgreSQL and NATS in schema and namespace `name`.
/// Resolves to true if there was something to remove.
#[napi(catch_unwind)]
pub async fn drop_connected(pg_url: String, nats_url: String, name: String) -> Result<bool> {
    guarded(move || async move { lendkit::drop_connected(&pg_url, &nats_url, &name) }).await
}

impl NativeLibrary {
    fn library(&self) -> Result<Arc<OpenLibrary>> {
        self.handle
            .library
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(errors::closed)
    }
}

impl Drop for NativeLibrary {
    fn drop(&mut self) {
        // Garbage-collected without close(): shut down on another thread, because closing joins
        // the runner, which may be waiting for a JS callback on this very thread.
        let taken = self
            .handle
            .library
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(library) = taken {
            let _ = std::thread::Builder::new()
                .name("lendkit-close".into())
                .spawn(move || drop(library));
        }
    }
}

/// One command of a batch, as the wrapper writes it into the batch's JSON text: the core's JSON
/// form of the command (`{"command": "reserve_book", "book_id": …}`), who issues it, and
/// optionally its command id.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchCommand<'a> {
    /// The command in the core's JSON form, read field by field (no JSON object is built).
    #[serde(borrow)]
    command: lendkit::CommandJson<'a>,
    /// `librarian:ID` or `member:ID`, borrowed from the text unless escaped in it.
    #[serde(borrow)]
    actor: Cow<'a, str>,
    /// A command id, to make a retry safe.
    #[serde(default, borrow)]
    command_id: Option<Cow<'a, str>>,
}

/// A batch's commands checked: the error already for each that cannot run (`None` for the
/// others, in order), and the runnable ones.
type Parsed = (
    Vec<Option<lendkit::Error>>,
    Vec<(lendkit::Command, Actor, Option<CommandId>)>,
);

/// A batch from its JSON text (an array of [`BatchCommand`]s, one string crossing for the whole
/// batch), checked: a text that is not such an array is `INVALID_INPUT` for the call.
fn parse_batch(text: &str) -> Result<Parsed> {
    let commands: Vec<BatchCommand> = serde_json::from_str(text).map_err(|e| {
        errors::invalid(format!(
            "a batch is an array of {{ command, actor, commandId? }}: {e}"
        ))
    })?;
    let mut answers: Vec<Option<lendkit::Error>> = Vec::with_capacity(commands.len());
    let mut runnable = Vec::with_capacity(commands.len());
    for c in commands {
        let parsed = c.command.into_command().and_then(|command| {
            let actor = Actor::parse(&c.actor).map_err(lendkit::Error::InvalidInput)?;
            if actor.is_system() {
                return Err(lendkit::Error::InvalidInput(
                    "actor must be librarian:ID or member:ID".into(),
                ));
            }
            Ok((
                command,
                actor,
                c.command_id.map(|id| CommandId::from(id.into_owned())),
            ))
        });
        match parsed {
            Ok(run) => {
                answers.push(None);
                runnable.push(run);
            }
            Err(e) => answers.push(Some(e)),
        }
    }
    Ok((answers, runnable))
}

/// Every command's answer as [`answers_text`]: the refused ones as they are, the others from
/// the results in order.
fn batch_answers(
    refused: &[Option<lendkit::Error>],
    results: &[lendkit::Result<lendkit::Outcome>],
    with_events: bool,
) -> String {
    let missing = lendkit::Error::Internal("batch answer missing".into());
    let mut results = results.iter();
    let answers = refused.iter().map(|r| match r {
        Some(e) => Err(e),
        None => results.next().map_or(Err(&missing), |r| r.as_ref()),
    });
    answers_text(answers, with_events)
}

#[napi]
impl NativeLibrary {
    /// Runs many commands in order in one call: `commands` is the JSON text of an array of
    /// `{ command, actor, commandId? }` (the command in the core's JSON form), and the answers
    /// come back as one text, a line each (see `answers_text`) — one crossing each way for the whole
    /// batch. Each command gets its own answer, and a refusal does not stop the rest.
    #[napi(catch_unwind)]
    pub async fn execute_batch(
        &self,
        commands: String,
        with_events: Option<bool>,
    ) -> Result<String> {
        let library = self.library()?;
        let (answers, runnable) = parse_batch(&commands)?;
        let results =
            guarded(move || async move { Ok(library.execute_batch(runnable).await) }).await?;
        Ok(batch_answers(
            &answers,
            &results,
            with_events.unwrap_or(true),
        ))
    }

    /// [`execute_batch`](NativeLibrary::execute_batch) on the calling thread, for a library
    /// that [`runs_inline`](NativeLibrary::runs_inline); otherwise an `INVALID_INPUT` error.
    #[napi(catch_unwind)]
    pub fn execute_batch_now(&self, commands: String, with_events: Option<bool>) -> Result<String> {
        if !self.handle.inline {
            return Err(errors::invalid(
                "executeBatchNow is only for a library in memory with the members' point accounts",
            ));
        }
        let library = self.library()?;
        let (answers, runnable) = parse_batch(&commands)?;
        let run = move || block_on(library.execute_batch(runnable));
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(results) => Ok(batch_answers(
                &answers,
                &results,
                with_events.unwrap_or(true),
            )),
            Err(panic) => Err(errors::panicked(panic.as_ref())),
        }
    }

    /// Whether [`execute_now`](NativeLibrary::execute_now) may be used: a library in memory whose
    /// payment is the members' point accounts. Its commands wait for no disk and no host port,
    /// so running one on the JS thread takes microseconds — less than the hop to a worker
    /// thread and back that a Promise costs.
    #[napi]
    pub fn runs_inline(&self) -> bool {
        self.handle.inline
    }

    /// Whether [`settle_now`](NativeLibrary::settle_now) may be used: a library that
    /// [`runs_inline`](NativeLibrary::runs_inline) and has no JS notifier, so that its policies
    /// wait for no disk and no host port either (subscribers are called without waiting).
    #[napi]
    pub fn settles_inline(&self) -> bool {
        self.handle.settles_inline
    }

    /// [`settle`](NativeLibrary::settle) on the calling thread, for a library that
    /// [`settles_inline`](NativeLibrary::settles_inline); otherwise an `INVALID_INPUT` error.
    /// The saga's reactions then run on the thread that stored the commands, as in Rust.
    #[napi(catch_unwind)]
    pub fn settle_now(&self) -> Result<()> {
        if !self.handle.settles_inline {
            return Err(errors::invalid(
                "settleNow is only for a library in memory with the members' point accounts and no JS notifier",
            ));
        }
        let library = self.library()?;
        let deliver = !self.handle.background;
        let run = move || {
            block_on(library.settle())?;
            if deliver {
                block_on(library.deliver())?;
            }
            Ok::<(), lendkit::Error>(())
        };
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(result) => result.map_err(errors::to_js),
            Err(panic) => Err(errors::panicked(panic.as_ref())),
        }
    }

    /// [`execute`](NativeLibrary::execute) on the calling thread, for a library that
    /// [`runs_inline`](NativeLibrary::runs_inline); otherwise an `INVALID_INPUT` error.
    #[napi(
        catch_unwind,
        ts_args_type = "command: string, actor: string, commandId?: string | undefined | null"
    )]
    pub fn execute_now(
        &self,
        command: String,
        actor: String,
        command_id: Option<String>,
    ) -> Result<Vec<String>> {
        if !self.handle.inline {
            return Err(errors::invalid(
                "executeNow is only for a library in memory with the members' point accounts",
            ));
        }
        let command = lendkit::Command::from_json(&command).map_err(errors::to_js)?;
        let actor = self::actor(&actor)?;
        let library = self.library()?;
        let run = move || {
            block_on(library.execute_with_id(command, &actor, command_id.map(CommandId::from)))
        };
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(result) => result.map(outcome_parts).map_err(errors::to_js),
            Err(panic) => Err(errors::panicked(panic.as_ref())),
        }
    }

    /// Runs a command, given as the text of its JSON form (`{"command": "reserve_book",
    /// "book_id": …}`: one string crosses, where napi reading an object takes a call per key and
    /// per field), as `actor` (`librarian:ID` / `member:ID`), under `commandId` if given. Every
    /// field is checked by the core, which names the one at fault. The wrapper's per-command
    /// methods are made of this.
    #[napi(
        catch_unwind,
        ts_args_type = "command: string, actor: string, commandId?: string | undefined | null"
    )]
    pub async fn execute(
        &self,
        command: String,
        actor: String,
        command_id: Option<String>,
    ) -> Result<Vec<String>> {
        let command = lendkit::Command::from_json(&command).map_err(errors::to_js)?;
        let actor = self::actor(&actor)?;
        let library = self.library()?;
        guarded(move || async move {
            library
                .execute_with_id(command, &actor, command_id.map(CommandId::from))
                .await
        })
        .await
        .map(outcome_parts)
    }

    /// Waits until the policies and views have caught up (and, without a background runner,
    /// hands new events to subscribers).
    #[napi(catch_unwind)]
    pub async fn settle(&self) -> Result<()> {
        let library = self.library()?;
        let deliver = !self.handle.background;
        guarded(move || async move {
            library.settle().await?;
            if deliver {
                library.deliver().await?;
            }
            Ok(())
        })
        .await
    }

    /// Every book with its stock and status, as of the last settle. With an actor, checked
    /// like a command (anyone may read it).
    #[napi(catch_unwind)]
    pub async fn book_list(&self, actor: Option<String>) -> Result<Vec<BookRow>> {
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        guarded(move || async move {
            match &actor {
                Some(a) => library.reader(a).book_list(),
                None => Ok(library.book_list()),
            }
        })
        .await
        .map(|rows| rows.into_iter().map(BookRow::from).collect())
    }

    /// Which circulation rules apply when a member borrows a book at a branch: the rules'
    /// version, the member's group, the book's item type, the branch and the explanation
    /// (winner, beaten, policies), with the core's snake_case keys. With an actor, that member
    /// or a librarian.
    #[napi(catch_unwind)]
    pub async fn explain_policy(
        &self,
        member_id: String,
        book_id: String,
        branch: Option<String>,
        actor: Option<String>,
    ) -> Result<serde_json::Value> {
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        guarded(move || async move {
            let branch = branch.as_deref();
            match &actor {
                Some(a) => {
                    library
                        .reader(a)
                        .explain_policy(&member_id, &book_id, branch)
                        .await
                }
                None => library.explain_policy(&member_id, &book_id, branch).await,
            }
        })
        .await
    }

    /// A member's page: points and rentals, as of the last settle. With an actor, only that
    /// member or a librarian may read it.
    #[napi(catch_unwind)]
    pub async fn member_page(
        &self,
        member_id: String,
        actor: Option<String>,
    ) -> Result<MemberPage> {
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        guarded(move || async move {
            match &actor {
                Some(a) => library.reader(a).member_page(&member_id),
                None => library.member_page(&member_id),
            }
        })
        .await
        .map(MemberPage::from)
    }

    /// Stored events with `position >= fromPosition` (default 1), at most `limit`, in order.
    /// With an actor, librarians only.
    #[napi(catch_unwind)]
    pub async fn events(
        &self,
        from_position: Option<f64>,
        limit: Option<f64>,
        actor: Option<String>,
    ) -> Result<Vec<Event>> {
        let from = from_position.map_or(Ok(1), |n| amount("fromPosition", n))?;
        let limit = match limit {
            Some(n) => usize::try_from(amount("limit", n)?).unwrap_or(usize::MAX),
            None => usize::MAX,
        };
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        guarded(move || async move {
            match &actor {
                Some(a) => library.reader(a).events(from, limit).await,
                None => library.events(from, limit).await,
            }
        })
        .await
        .map(|events| events.iter().map(Event::from).collect())
    }

    /// The position of the newest stored event (0 when empty). With an actor, librarians only.
    #[napi(catch_unwind)]
    pub async fn head(&self, actor: Option<String>) -> Result<f64> {
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        #[expect(clippy::cast_precision_loss, reason = "positions stay far below 2^53")]
        guarded(move || async move {
            match &actor {
                Some(a) => library.reader(a).head().await,
                None => library.head().await,
            }
        })
        .await
        .map(|h| h as f64)
    }

    /// Runs the clock-driven circulation rules due at or before `nowMs` (ms since 1970, UTC):
    /// automatic renewals, overdue notices, items aged to lost. Resolves to how many pieces of
    /// work ran; running it twice for the same instant changes nothing.
    #[napi(catch_unwind)]
    pub async fn advance_to(&self, now_ms: f64) -> Result<u32> {
        let library = self.library()?;
        let now = crate::clock::millis("nowMs", now_ms)?;
        guarded(move || async move { library.advance_to(lendkit::Timestamp(now)).await })
            .await
            .map(|a| u32::try_from(a.ran).unwrap_or(u32::MAX))
    }

    /// Loans made under circulation rules that are past due at `nowMs` (default: the clock's
    /// time), earliest due first; `branch` keeps one branch's. With an actor, librarians only.
    #[napi(catch_unwind)]
    pub async fn overdue_list(
        &self,
        now_ms: Option<f64>,
        branch: Option<String>,
        actor: Option<String>,
    ) -> Result<Vec<OverdueRow>> {
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        let now = now_ms
            .map(|ms| crate::clock::millis("nowMs", ms))
            .transpose()?;
        guarded(move || async move {
            let now = now.map_or_else(|| library.now(), lendkit::Timestamp);
            let branch = branch.as_deref();
            match &actor {
                Some(a) => library.reader(a).overdue_list(now, branch).await,
                None => library.overdue_list(now, branch).await,
            }
        })
        .await
        .map(|rows| rows.into_iter().map(OverdueRow::from).collect())
    }

    /// The holds whose copies wait on the pickup shelf of `branch` (every branch when absent),
    /// with their deadlines. With an actor, librarians only.
    #[napi(catch_unwind)]
    pub async fn hold_shelf(
        &self,
        branch: Option<String>,
        actor: Option<String>,
    ) -> Result<Vec<HoldShelfRow>> {
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        guarded(move || async move {
            let branch = branch.as_deref();
            match &actor {
                Some(a) => library.reader(a).hold_shelf(branch),
                None => Ok(library.hold_shelf(branch)),
            }
        })
        .await
        .map(|rows| rows.into_iter().map(HoldShelfRow::from).collect())
    }

    /// The blocks a member would meet now if they borrowed, renewed or reserved:
    /// `[{ action, code, message }]`, empty when nothing stops them. With an actor, that member
    /// or a librarian.
    #[napi(catch_unwind)]
    pub async fn member_blocks(
        &self,
        member_id: String,
        actor: Option<String>,
    ) -> Result<serde_json::Value> {
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        guarded(move || async move {
            match &actor {
                Some(a) => library.reader(a).member_blocks(&member_id).await,
                None => library.member_blocks(&member_id).await,
            }
        })
        .await
    }

    /// Events consumers gave up on, oldest first. With an actor, librarians only.
    #[napi(catch_unwind)]
    pub async fn dead_letters(&self, actor: Option<String>) -> Result<Vec<DeadLetter>> {
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        guarded(move || async move {
            match &actor {
                Some(a) => library.reader(a).dead_letters().await,
                None => library.dead_letters().await,
            }
        })
        .await
        .map(|letters| letters.into_iter().map(DeadLetter::from).collect())
    }

    /// Hands a dead letter's event to its consumer again; on success it leaves the list. With
    /// an actor, librarians only.
    #[napi(catch_unwind)]
    pub async fn replay_dead_letter(&self, id: String, actor: Option<String>) -> Result<()> {
        let (library, actor) = (self.library()?, reader_actor(actor)?);
        guarded(move || async move {
            match &actor {
                Some(a) => library.reader(a).replay_dead_letter(&id).await,
                None => library.replay_dead_letter(&id).await,
            }
        })
        .await
    }

    /// Hands the stored event at `position` to `consumer` once more (it must change nothing).
    #[napi(catch_unwind)]
    pub async fn redeliver(&self, consumer: String, position: f64) -> Result<()> {
        let position = amount("position", position)?;
        let library = self.library()?;
        guarded(move || async move { library.redeliver(&consumer, position).await }).await
    }

    /// Writes everything to disk (a no-op in memory).
    #[napi(catch_unwind)]
    pub async fn flush(&self) -> Result<()> {
        let library = self.library()?;
        guarded(move || async move { library.flush() }).await
    }

    /// Ends every call still waiting on a host port with `LIBRARY_CLOSED`, stops the
    /// background runner, waits for calls in flight and flushes. Idempotent.
    #[napi(catch_unwind)]
    pub async fn close(&self) -> Result<()> {
        let taken = self
            .handle
            .library
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(mut shared) = taken else {
            return Ok(());
        };
        // First: a call waiting on a host port that never answers would otherwise never end,
        // and its pending Promise would keep Node running.
        shared.library().close();
        let started = std::time::Instant::now();
        loop {
            match Arc::try_unwrap(shared) {
                Ok(library) => return guarded(move || async move { library.close() }).await,
                Err(still_used) if started.elapsed() < CLOSE_WAIT => {
                    shared = still_used;
                    futures_timer::Delay::new(Duration::from_millis(5)).await;
                }
                // A call is stuck: the last one to finish closes the library.
                Err(_) => return Ok(()),
            }
        }
    }

    /// True once `close()` was called.
    #[napi(getter, catch_unwind)]
    pub fn closed(&self) -> bool {
        self.library().is_err()
    }

    /// Stops a consumer (`catalog`, `rentals`, `payments`, `deliveries`, `notices`, `book_list`, `member_page`).
    #[napi(catch_unwind)]
    pub fn pause(&self, consumer: String) -> Result<()> {
        self.library()?.pause(&consumer).map_err(errors::to_js)
    }

    /// Lets a paused consumer go on.
    #[napi(catch_unwind)]
    pub fn resume(&self, consumer: String) -> Result<()> {
        self.library()?.resume(&consumer).map_err(errors::to_js)
    }

    /// The payment circuit breaker's state: `closed`, `open` or `half_open`.
    #[napi(catch_unwind)]
    pub fn payment_circuit(&self) -> Result<String> {
        Ok(self.library()?.payment_circuit().as_str().to_owned())
    }

    /// Makes the payment gateway fail as unavailable (true) or work again (false). Needs `faultInjection`.
    #[napi(catch_unwind)]
    pub fn set_payment_outage(&self, down: bool) -> Result<()> {
        self.library()?
            .set_payment_outage(down)
            .map_err(errors::to_js)
    }

    /// Calls `listener` with every event committed from now on; returns the subscription's id.
    /// The listener never keeps Node running.
    #[napi(catch_unwind, ts_args_type = "listener: (event: Event) => void")]
    pub fn subscribe(&self, listener: Listener) -> Result<f64> {
        let id = self.library()?.subscribe(subscriber(listener));
        #[expect(
            clippy::cast_precision_loss,
            reason = "subscription ids stay far below 2^53"
        )]
        Ok(id as f64)
    }

    /// Ends a subscription; true if it was active.
    #[napi(catch_unwind)]
    pub fn unsubscribe(&self, id: f64) -> Result<bool> {
        let id = amount("id", id)?;
        match self.library() {
            Ok(library) => Ok(library.unsubscribe(id)),
            Err(_) => Ok(false),
        }
    }
}

/// The actor of a query (`librarian:ID` / `member:ID`), or `None` when the host reads for itself.
fn reader_actor(actor: Option<String>) -> Result<Option<Actor>> {
    actor
        .map(|a| Actor::parse(&a).map_err(|e| errors::to_js(lendkit::Error::InvalidInput(e))))
        .transpose()
}
