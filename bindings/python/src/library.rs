//! `lendkit._native.Library`, the base of `lendkit.Library`: a library on its embedded adapters
//! (a sled file or memory), with its background runner. Every method converts its arguments,
//! releases the GIL around the core call and converts the answer; the rules are all in the core.
//!
//! Commands enter through one method, `execute` (and `execute_batch`): a command's fields are
//! walked into JSON values ([`json::command`]) and `Command::from_fields` checks them all.
//! The per-command methods (`reserve_book`, …) are generated Python (`lendkit/_commands.py`),
//! mixed in by `lendkit.Library`, which is why this class is subclassable and `open` /
//! `in_memory` build an instance of the class they are called on.

use crate::actors;
use crate::args::Text;
use crate::call::{self, detached, Callback};
use crate::errors;
use crate::json;
use crate::options::Options;
use crate::rows::{
    BookRow, ConsumerStatus, DeadLetter, Event, HoldShelfRow, MemberPage, Outcome, OverdueRow,
};
use crate::subscription::{Hub, Subscription};
use lendkit::{Command, CommandId, Config, OpenLibrary};
use pyo3::prelude::*;
use pyo3::types::{PyMapping, PyType};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Everything one Python `Library` object owns.
struct State {
    /// The open library; `None` once closed. Calls clone the `Arc` and release the lock at once.
    open: Mutex<Option<Arc<OpenLibrary>>>,
    /// The Python subscribers.
    hub: Arc<Hub>,
    /// Whether a background runner drives the consumers.
    background: bool,
    /// Held while `settle` hands events to subscribers (without a background runner).
    delivering: Mutex<()>,
    /// `Library.open('…')` or `Library.in_memory()`, for `repr`.
    origin: String,
}

impl State {
    fn take(&self) -> Option<Arc<OpenLibrary>> {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Every library opened in this process, so `lendkit` can close them all at exit (before the
/// interpreter shuts down under their background runners).
static OPENED: Mutex<Vec<Weak<State>>> = Mutex::new(Vec::new());

/// Closes an open library, or leaves the last in-flight call to close it when it ends. The
/// core is closed first, so calls waiting on a host port end at once with `LIBRARY_CLOSED`.
fn shut(open: Arc<OpenLibrary>) -> lendkit::Result<()> {
    open.library().close();
    match Arc::try_unwrap(open) {
        Ok(open) => open.close(),
        Err(shared) => {
            drop(shared);
            Ok(())
        }
    }
}

/// A lending library: commands, queries, and the consumers that react to events.
///
/// Open one with `Library.open(path)` (a sled database: a folder; durable) or
/// `Library.in_memory()`, preferably in a `with` block. Safe to share between threads: every
/// call releases the GIL while the core works.
#[pyclass(module = "lendkit._native", frozen, subclass)]
pub struct Library {
    state: Arc<State>,
}

/// Closes a library that is being dropped without `close()`.
fn release(state: &State) {
    if let Some(open) = state.take() {
        // Stopping the runner waits for it, and it may be waiting for the GIL (a callback).
        let close = move || {
            let _ = catch_unwind(AssertUnwindSafe(|| shut(open)));
        };
        Python::try_attach(|py| py.detach(close));
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        release(&self.state);
    }
}

/// An opened library on its way into a new `Library` object: what `open` and `in_memory` hand
/// to the class they are called on (the only way to make one).
#[pyclass(module = "lendkit._native", frozen)]
pub struct Opened {
    state: Mutex<Option<Arc<State>>>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        // Left over only when making the object failed (a subclass's `__init__` raised).
        if let Some(state) = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            release(&state);
        }
    }
}

/// An instance of `cls` (`lendkit.Library` or a subclass) owning the library `state`.
fn instantiate<'py>(cls: &Bound<'py, PyType>, state: Arc<State>) -> PyResult<Bound<'py, PyAny>> {
    let opened = Opened {
        state: Mutex::new(Some(state)),
    };
    cls.call1((Py::new(cls.py(), opened)?,))
}

/// Starts the Python side of an opened library.
fn start(
    py: Python<'_>,
    config: Config,
    open: impl FnOnce(Config) -> lendkit::Result<OpenLibrary> + Send,
    origin: String,
) -> PyResult<Arc<State>> {
    crate::logging::follow_python_level(py)?;
    let background = config.background;
    let (open, hub) = detached(py, move || {
        let open = open(config)?;
        Ok((open, Arc::new(Hub::default())))
    })?;
    let state = Arc::new(State {
        open: Mutex::new(Some(Arc::new(open))),
        hub,
        background,
        delivering: Mutex::new(()),
        origin,
    });
    let mut opened = OPENED.lock().unwrap_or_else(PoisonError::into_inner);
    opened.retain(|w| w.strong_count() > 0);
    opened.push(Arc::downgrade(&state));
    Ok(state)
}

/// Closes every library still open (registered with `atexit` by `lendkit/__init__.py`).
#[pyfunction(name = "_close_all")]
pub(crate) fn close_all(py: Python<'_>) {
    let states: Vec<Arc<State>> = OPENED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .filter_map(|w| w.upgrade())
        .collect();
    for state in states {
        if let Some(open) = state.take() {
            let _ = detached(py, move || shut(open));
        }
        state.hub.clear();
    }
}

impl Library {
    /// The open library, or `StorageError` once closed.
    fn lib(&self, py: Python<'_>) -> PyResult<Arc<OpenLibrary>> {
        self.state
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| errors::closed(py))
    }
}

/// A command id argument: a `str` (`TypeError` otherwise), or `None` for a generated one. The
/// inner error is `INVALID_INPUT` for a `str` holding a lone surrogate.
fn command_id(value: Option<&Bound<'_, PyAny>>) -> PyResult<lendkit::Result<Option<CommandId>>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Ok(None));
    };
    let text = value
        .cast::<pyo3::types::PyString>()
        .map_err(|_| errors::wrong_type("command_id", "a str or None", value))?;
    Ok(match text.to_cow() {
        Ok(id) => Ok(Some(CommandId::from(&*id))),
        Err(_) => Err(lendkit::Error::InvalidInput(format!(
            "command_id is {}, which is not valid text: it holds a lone surrogate",
            value.repr().map(|r| r.to_string()).unwrap_or_default()
        ))),
    })
}

/// A command from its Python mapping: `INVALID_INPUT` naming the field for a bad value.
fn command(fields: &Bound<'_, PyAny>, skip: &[&str]) -> PyResult<lendkit::Result<Command>> {
    let fields = fields
        .cast::<PyMapping>()
        .map_err(|_| errors::wrong_type("a command", "a dict of its fields", fields))?;
    json::command(fields, skip)
}

/// Waits for `lib.settle()` until `deadline`; false when the deadline passed first (the
/// settling goes on in the background).
fn settle_until(lib: &OpenLibrary, deadline: Option<Instant>) -> lendkit::Result<bool> {
    let Some(deadline) = deadline else {
        return call::wait(lib.settle()).map(|()| true);
    };
    let core = Arc::clone(lib.library());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lendkit-settle".into())
        .spawn(move || {
            let _ = tx.send(call::wait(core.settle()));
        })
        .map_err(|e| {
            lendkit::Error::Storage(lendkit::error::StoreError::Backend(format!(
                "cannot start a thread to settle: {e}"
            )))
        })?;
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(settled) => settled.map(|()| true),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(false),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(crate::errors::panicked(&"settle ended without an answer"))
        }
    }
}

#[pymethods]
impl Library {
    /// Made only by `open` and `in_memory`, which hand the opened library to the class.
    #[new]
    fn new(opened: &Bound<'_, PyAny>) -> PyResult<Self> {
        let state = opened.cast::<Opened>().ok().and_then(|o| {
            o.get()
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        });
        match state {
            Some(state) => Ok(Library { state }),
            None => Err(pyo3::exceptions::PyTypeError::new_err(
                "open a library with Library.open(path) or Library.in_memory()",
            )),
        }
    }

    /// Opens (or creates) the library at `path`: a sled folder, or one SQLite file (`store`:
    /// `"sled"`, `"sqlite"`, or by default the one already there; a new library is sled unless
    /// the name ends in `.sqlite`).
    ///
    /// Fails with `StorageError` (`NOT_A_LIBRARY`, `SCHEMA_TOO_NEW`, `LIBRARY_LOCKED`) without
    /// changing anything. See the README for every keyword.
    #[classmethod]
    #[pyo3(signature = (
        path, *, store = None, welcome_points = 100, loan_days = 14, max_renewals = 2, hold_shelf_days = 7,
        durability = None,
        payment = None, notifier = None, clock = None, background = true,
        immediate_reactions = false, max_attempts = 5,
        breaker_failure_threshold = 5, breaker_cool_down_ms = 30000, payment_timeout_ms = 5000,
        retry_backoff_ms = 1000, workers = None, fault_injection = false
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one Rust argument per Python keyword argument"
    )]
    fn open<'py>(
        cls: &Bound<'py, PyType>,
        path: PathBuf,
        store: Option<String>,
        welcome_points: u64,
        loan_days: u32,
        max_renewals: u32,
        hold_shelf_days: u32,
        durability: Option<&Bound<'_, PyAny>>,
        payment: Option<&Bound<'_, PyAny>>,
        notifier: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        background: bool,
        immediate_reactions: bool,
        max_attempts: u32,
        breaker_failure_threshold: u32,
        breaker_cool_down_ms: u64,
        payment_timeout_ms: Option<u64>,
        retry_backoff_ms: u64,
        workers: Option<BTreeMap<String, u32>>,
        fault_injection: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let config = Options {
            welcome_points,
            loan_days,
            max_renewals,
            hold_shelf_days,
            durability,
            payment,
            notifier,
            clock,
            background,
            immediate_reactions,
            max_attempts,
            breaker_failure_threshold,
            breaker_cool_down_ms,
            payment_timeout_ms,
            retry_backoff_ms,
            workers,
            fault_injection,
        }
        .config(py)?;
        let config = lendkit::Config {
            store: match store.as_deref() {
                None => lendkit::Store::Auto,
                Some(name) => {
                    lendkit::Store::parse(name).map_err(|e| crate::errors::to_py(py, e))?
                }
            },
            ..config
        };
        let origin = format!("Library.open({:?})", path.display().to_string());
        let open = move |config| call::wait(OpenLibrary::open_async(path, config));
        instantiate(cls, start(py, config, open, origin)?)
    }

    /// Connects to a library shared by several processes: its log in the PostgreSQL schema
    /// `name` at `pg_url`, its events spread through the NATS JetStream stream of namespace
    /// `name` at `nats_url`. Every process connected with the same `name` serves the same
    /// books, members and rentals: each policy reaction happens once, in whichever process
    /// takes the event; each process keeps its own views. The keywords are `open`'s, without
    /// `store` and `durability` (PostgreSQL's commit is the sync) and with `ack_wait_ms`: how
    /// long a process may hold an event before another takes it over.
    ///
    /// Fails with `StorageError` naming the server or the setting (nothing is written then),
    /// and with `InvalidInputError` for `immediate_reactions=True`.
    #[classmethod]
    #[pyo3(signature = (
        pg_url, nats_url, *, name = "lendkit", welcome_points = 100, loan_days = 14,
        max_renewals = 2, hold_shelf_days = 7,
        payment = None, notifier = None, clock = None, background = true,
        immediate_reactions = false, max_attempts = 5,
        breaker_failure_threshold = 5, breaker_cool_down_ms = 30000, payment_timeout_ms = 5000,
        retry_backoff_ms = 1000, workers = None, fault_injection = false, ack_wait_ms = 30000
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one Rust argument per Python keyword argument"
    )]
    fn connect<'py>(
        cls: &Bound<'py, PyType>,
        pg_url: String,
        nats_url: String,
        name: &str,
        welcome_points: u64,
        loan_days: u32,
        max_renewals: u32,
        hold_shelf_days: u32,
        payment: Option<&Bound<'_, PyAny>>,
        notifier: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        background: bool,
        immediate_reactions: bool,
        max_attempts: u32,
        breaker_failure_threshold: u32,
        breaker_cool_down_ms: u64,
        payment_timeout_ms: Option<u64>,
        retry_backoff_ms: u64,
        workers: Option<BTreeMap<String, u32>>,
        fault_injection: bool,
        ack_wait_ms: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let config = Options {
            welcome_points,
            loan_days,
            max_renewals,
            hold_shelf_days,
            durability: None,
            payment,
            notifier,
            clock,
            background,
            immediate_reactions,
            max_attempts,
            breaker_failure_threshold,
            breaker_cool_down_ms,
            payment_timeout_ms,
            retry_backoff_ms,
            workers,
            fault_injection,
        }
        .config(py)?;
        let mut options = lendkit::ConnectOptions::named(name);
        options.nats.ack_wait = std::time::Duration::from_millis(ack_wait_ms.max(1));
        let origin = format!("Library.connect(name={name:?})");
        let open = move |config| {
            call::wait(OpenLibrary::connect_async(
                &pg_url, &nats_url, options, config,
            ))
        };
        instantiate(cls, start(py, config, open, origin)?)
    }

    /// Removes a library shared through PostgreSQL and NATS (see `connect`): the schema `name`
    /// and its stream. True if there was something to remove. A schema holding another
    /// program's tables is refused (`StorageError`, `NOT_A_LIBRARY`). What it removes cannot be
    /// recovered.
    #[staticmethod]
    #[pyo3(signature = (pg_url, nats_url, *, name))]
    fn drop_connected(
        py: Python<'_>,
        pg_url: String,
        nats_url: String,
        name: String,
    ) -> PyResult<bool> {
        detached(py, move || {
            lendkit::drop_connected(&pg_url, &nats_url, &name)
        })
    }

    /// A library kept in memory only: nothing survives the process. Same keywords as `open`
    /// (`durability` has no effect).
    #[classmethod]
    #[pyo3(signature = (
        *, welcome_points = 100, loan_days = 14, max_renewals = 2, hold_shelf_days = 7,
        durability = None,
        payment = None, notifier = None, clock = None, background = true,
        immediate_reactions = false, max_attempts = 5,
        breaker_failure_threshold = 5, breaker_cool_down_ms = 30000, payment_timeout_ms = 5000,
        retry_backoff_ms = 1000, workers = None, fault_injection = false
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one Rust argument per Python keyword argument"
    )]
    fn in_memory<'py>(
        cls: &Bound<'py, PyType>,
        welcome_points: u64,
        loan_days: u32,
        max_renewals: u32,
        hold_shelf_days: u32,
        durability: Option<&Bound<'_, PyAny>>,
        payment: Option<&Bound<'_, PyAny>>,
        notifier: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        background: bool,
        immediate_reactions: bool,
        max_attempts: u32,
        breaker_failure_threshold: u32,
        breaker_cool_down_ms: u64,
        payment_timeout_ms: Option<u64>,
        retry_backoff_ms: u64,
        workers: Option<BTreeMap<String, u32>>,
        fault_injection: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let config = Options {
            welcome_points,
            loan_days,
            max_renewals,
            hold_shelf_days,
            durability,
            payment,
            notifier,
            clock,
            background,
            immediate_reactions,
            max_attempts,
            breaker_failure_threshold,
            breaker_cool_down_ms,
            payment_timeout_ms,
            retry_backoff_ms,
            workers,
            fault_injection,
        }
        .config(py)?;
        let open = |config| call::wait(OpenLibrary::in_memory_async(config));
        instantiate(cls, start(py, config, open, "Library.in_memory()".into())?)
    }

    // ---- lifetime ----------------------------------------------------------------------

    /// Stops the background runner and flushes the database. Calls still waiting on a host
    /// port (a payment gateway or notifier that has not returned) end at once with
    /// `StorageError` (`LIBRARY_CLOSED`). Closing twice is harmless; any other call on a closed
    /// library raises `StorageError` (`LIBRARY_CLOSED`).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let closed = match self.state.take() {
            Some(open) => detached(py, move || shut(open)),
            None => Ok(()),
        };
        // Subscribers often refer to the library: dropping them lets the garbage collector free both.
        self.state.hub.clear();
        closed
    }

    /// True once closed.
    #[getter]
    fn closed(&self) -> bool {
        self.state
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "open" };
        format!("<lendkit.{} {state}>", self.state.origin)
    }

    /// Flushes the database to disk (a no-op in memory).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let lib = self.lib(py)?;
        detached(py, move || lib.flush())
    }

    // ---- commands ----------------------------------------------------------------------

    /// Runs `command` (`{"command": "reserve_book", "book_id": …}`) as `actor`. The core checks
    /// every field: a bad one is `InvalidInputError` naming it. `lendkit.Library` has one method
    /// per command over this one.
    #[pyo3(signature = (command, *, actor, command_id = None))]
    fn execute(
        &self,
        py: Python<'_>,
        command: &Bound<'_, PyAny>,
        actor: &Bound<'_, PyAny>,
        command_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Outcome> {
        let command = self::command(command, &[])?.map_err(|e| errors::to_py(py, e))?;
        let actor = actors::actor(actor)?;
        let id = self::command_id(command_id)?.map_err(|e| errors::to_py(py, e))?;
        let lib = self.lib(py)?;
        detached(py, move || {
            call::wait(lib.execute_with_id(command, &actor, id)).map(Outcome::from)
        })
    }

    /// Runs many commands in order in one call, crossing into Rust once for the whole batch.
    ///
    /// Each item is a dict: `{"command": "reserve_book", "actor": Member("m-1"), "book_id": …}`
    /// with the command's fields as keyword names (and optionally `"command_id"`). Returns one
    /// answer per item, in order: the `Outcome`, or the `LendkitError` it failed with (returned,
    /// not raised; a refusal does not stop the rest). `events=False` leaves the events out of
    /// the outcomes, which is faster when only success matters.
    #[pyo3(signature = (commands, *, events = true))]
    fn execute_batch(
        &self,
        py: Python<'_>,
        commands: &Bound<'_, PyAny>,
        events: bool,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let mut answers: Vec<Option<Py<PyAny>>> = Vec::new();
        let mut runnable = Vec::new();
        for item in commands.try_iter()? {
            let item = item?;
            let fields = item
                .cast::<PyMapping>()
                .map_err(|_| errors::wrong_type("a batch item", "a dict", &item))?;
            let actor = match fields.get_item("actor") {
                Ok(a) => actors::actor(&a)?,
                Err(_) => return Err(errors::invalid(py, "every batch item needs an \"actor\"")),
            };
            let command = json::command(fields, &["actor", "command_id"])?;
            let id = command_id(fields.get_item("command_id").ok().as_ref())?;
            let parsed = command.and_then(|command| Ok((command, id?)));
            match parsed {
                Ok((command, id)) => {
                    answers.push(None);
                    runnable.push((command, actor, id));
                }
                Err(e) => answers.push(Some(errors::to_py(py, e).into_value(py).into_any())),
            }
        }
        let lib = self.lib(py)?;
        let results = detached(py, move || Ok(call::wait(lib.execute_batch(runnable))))?;
        let mut results = results.into_iter();
        answers
            .into_iter()
            .map(|a| match a {
                Some(err) => Ok(err),
                None => match results.next() {
                    Some(Ok(mut outcome)) => {
                        if !events {
                            outcome.events.clear();
                        }
                        Ok(Py::new(py, Outcome::from(outcome))?.into_any())
                    }
                    Some(Err(e)) => Ok(errors::to_py(py, e).into_value(py).into_any()),
                    None => Err(errors::to_py(
                        py,
                        lendkit::Error::Internal("batch answer missing".into()),
                    )),
                },
            })
            .collect()
    }

    // ---- queries -----------------------------------------------------------------------

    /// Every book with its stock and status, as of the consumers' last run. Anyone may read it;
    /// `actor` (a `Librarian` or `Member`) is checked like a command's.
    #[pyo3(signature = (*, actor = None))]
    fn book_list(
        &self,
        py: Python<'_>,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<BookRow>> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        detached(py, move || {
            let rows = match &actor {
                Some(a) => lib.reader(a).book_list()?,
                None => lib.book_list(),
            };
            Ok(rows.into_iter().map(BookRow::from).collect())
        })
    }

    /// A member's points and rentals, as of the consumers' last run. With `actor`, only that
    /// member or a librarian may read it (`UnauthorizedError`); without, the host is trusted.
    #[pyo3(signature = (member_id, *, actor = None))]
    fn member_page(
        &self,
        py: Python<'_>,
        member_id: Text,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<MemberPage> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        detached(py, move || {
            match &actor {
                Some(a) => lib.reader(a).member_page(&member_id.0),
                None => lib.member_page(&member_id.0),
            }
            .map(MemberPage::from)
        })
    }

    /// The blocks `member_id` would meet now if they borrowed, renewed or reserved: a list of
    /// dicts `{"action", "code", "message"}`, empty when nothing stops them. With `actor`, that
    /// member or a librarian.
    #[pyo3(signature = (member_id, *, actor = None))]
    fn member_blocks(
        &self,
        py: Python<'_>,
        member_id: Text,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        let value = detached(py, move || match &actor {
            Some(a) => call::wait(lib.reader(a).member_blocks(&member_id.0)),
            None => call::wait(lib.member_blocks(&member_id.0)),
        })?;
        Ok(crate::json::to_py(py, &value)?.unbind())
    }

    /// Which circulation rules apply when `member_id` borrows `book_id` at `branch`: a dict with
    /// the rules' `version`, the member's `group`, the book's `item_type`, the `branch` and the
    /// `explanation` (`winner`, `beaten`, `policies`). With `actor`, that member or a librarian.
    #[pyo3(signature = (member_id, book_id, branch = None, *, actor = None))]
    fn explain_policy(
        &self,
        py: Python<'_>,
        member_id: Text,
        book_id: Text,
        branch: Option<Text>,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        let value = detached(py, move || {
            let branch = branch.as_ref().map(|b| b.0.as_str());
            match &actor {
                Some(a) => call::wait(lib.reader(a).explain_policy(
                    &member_id.0,
                    &book_id.0,
                    branch,
                )),
                None => call::wait(lib.explain_policy(&member_id.0, &book_id.0, branch)),
            }
        })?;
        Ok(crate::json::to_py(py, &value)?.unbind())
    }

    /// Stored events with `position >= from_position`, in order (at most `limit`). With
    /// `actor`, librarians only.
    #[pyo3(signature = (from_position = 0, limit = None, *, actor = None))]
    fn events(
        &self,
        py: Python<'_>,
        from_position: u64,
        limit: Option<usize>,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Event>> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        detached(py, move || {
            let limit = limit.unwrap_or(usize::MAX);
            let events = match &actor {
                Some(a) => call::wait(lib.reader(a).events(from_position, limit))?,
                None => call::wait(lib.events(from_position, limit))?,
            };
            Ok(events.iter().map(Event::from).collect())
        })
    }

    /// Runs the clock-driven circulation rules that have come due at or before `now_ms`
    /// (milliseconds since 1970, UTC): automatic renewals, overdue notices, items aged to lost.
    /// Returns how many pieces of work ran. Running it twice for the same instant changes
    /// nothing. The background runner calls it with the clock's time.
    fn advance_to(&self, py: Python<'_>, now_ms: i64) -> PyResult<usize> {
        let lib = self.lib(py)?;
        detached(py, move || {
            call::wait(lib.advance_to(lendkit::Timestamp(now_ms))).map(|a| a.ran)
        })
    }

    /// The loans made under circulation rules that are past due at `now_ms` (default: the
    /// clock's time), earliest due first, each with its days late and the fine so far; `branch`
    /// keeps one branch's. With `actor`, librarians only.
    #[pyo3(signature = (now_ms = None, branch = None, *, actor = None))]
    fn overdue_list(
        &self,
        py: Python<'_>,
        now_ms: Option<i64>,
        branch: Option<Text>,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<OverdueRow>> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        detached(py, move || {
            let now = now_ms.map_or_else(|| lib.now(), lendkit::Timestamp);
            let branch = branch.as_ref().map(|b| b.0.as_str());
            let rows = match &actor {
                Some(a) => call::wait(lib.reader(a).overdue_list(now, branch))?,
                None => call::wait(lib.overdue_list(now, branch))?,
            };
            Ok(rows.into_iter().map(OverdueRow::from).collect())
        })
    }

    /// The holds whose copies wait on the pickup shelf of `branch` (every branch: `None`), with
    /// their deadlines, earliest first within a branch. With `actor`, librarians only.
    #[pyo3(signature = (branch = None, *, actor = None))]
    fn hold_shelf(
        &self,
        py: Python<'_>,
        branch: Option<Text>,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<HoldShelfRow>> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        detached(py, move || {
            let branch = branch.as_ref().map(|b| b.0.as_str());
            let rows = match &actor {
                Some(a) => lib.reader(a).hold_shelf(branch)?,
                None => lib.hold_shelf(branch),
            };
            Ok(rows.into_iter().map(HoldShelfRow::from).collect())
        })
    }

    /// The position of the newest stored event (0 for an empty log). With `actor`, librarians only.
    #[pyo3(signature = (*, actor = None))]
    fn head(&self, py: Python<'_>, actor: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        detached(py, move || match &actor {
            Some(a) => call::wait(lib.reader(a).head()),
            None => call::wait(lib.head()),
        })
    }

    /// Events the consumers gave up on, oldest first. With `actor`, librarians only.
    #[pyo3(signature = (*, actor = None))]
    fn dead_letters(
        &self,
        py: Python<'_>,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<DeadLetter>> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        detached(py, move || {
            let letters = match &actor {
                Some(a) => call::wait(lib.reader(a).dead_letters())?,
                None => call::wait(lib.dead_letters())?,
            };
            Ok(letters.into_iter().map(DeadLetter::from).collect())
        })
    }

    /// Hands a dead letter's event to its consumer again; on success it leaves the list. With
    /// `actor`, librarians only.
    #[pyo3(signature = (id, *, actor = None))]
    fn replay_dead_letter(
        &self,
        py: Python<'_>,
        id: Text,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        detached(py, move || match &actor {
            Some(a) => call::wait(lib.reader(a).replay_dead_letter(&id.0)),
            None => call::wait(lib.replay_dead_letter(&id.0)),
        })
    }

    /// Every consumer's progress. With `actor`, librarians only.
    #[pyo3(signature = (*, actor = None))]
    fn consumers(
        &self,
        py: Python<'_>,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<ConsumerStatus>> {
        let (lib, actor) = (self.lib(py)?, actors::optional(actor)?);
        detached(py, move || {
            let all = match &actor {
                Some(a) => call::wait(lib.reader(a).consumers())?,
                None => call::wait(lib.consumers()),
            };
            Ok(all.into_iter().map(ConsumerStatus::from).collect())
        })
    }

    /// The payment circuit breaker's state: `"closed"`, `"open"` or `"half_open"`.
    fn payment_circuit(&self, py: Python<'_>) -> PyResult<&'static str> {
        let lib = self.lib(py)?;
        detached(py, move || Ok(lib.payment_circuit().as_str()))
    }

    // ---- consumers ---------------------------------------------------------------------

    /// Waits until every unpaused consumer has done what it can now (policies reacted, views
    /// caught up) and subscribers have been handed every committed event. Raises
    /// `TimeoutError` after `timeout` seconds; the work goes on in the background.
    #[pyo3(signature = (timeout = None))]
    fn settle(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        if call::running_callback() == Some(Callback::Port) {
            return Err(errors::settle_inside_port());
        }
        let deadline = match timeout {
            None => None,
            Some(t) => match Duration::try_from_secs_f64(t) {
                Ok(d) => Some(Instant::now() + d),
                Err(_) => {
                    return Err(errors::invalid(
                        py,
                        format!("timeout is a number of seconds, at least 0, not {t}"),
                    ))
                }
            },
        };
        let lib = self.lib(py)?;
        let state = Arc::clone(&self.state);
        let settled = detached(py, move || {
            if !settle_until(&lib, deadline)? {
                return Ok(false);
            }
            if call::running_callback() == Some(Callback::Subscriber) {
                // Called from a subscriber: the events it waits for are behind this very call.
                return Ok(true);
            }
            if !state.background {
                // One delivery at a time, so no event reaches a subscriber twice. (A subscriber
                // calling settle() returned above, so this never waits for itself.)
                let _delivering = state
                    .delivering
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                call::wait(lib.deliver())?;
                return Ok(true);
            }
            if state.hub.active() {
                let head = call::wait(lib.head())?;
                while lib.delivered() < head {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Ok(true)
        })?;
        if settled {
            Ok(())
        } else {
            Err(errors::settle_timed_out(timeout.unwrap_or_default()))
        }
    }

    /// Stops a consumer (`catalog`, `rentals`, `payments`, `deliveries`, `notices`,
    /// `book_list`, `member_page`): its events wait, everything else goes on.
    fn pause(&self, py: Python<'_>, consumer: String) -> PyResult<()> {
        let lib = self.lib(py)?;
        detached(py, move || lib.pause(&consumer))
    }

    /// Lets a paused consumer go on; it catches up at the next settle.
    fn resume(&self, py: Python<'_>, consumer: String) -> PyResult<()> {
        let lib = self.lib(py)?;
        detached(py, move || lib.resume(&consumer))
    }

    /// Hands the stored event at `position` to `consumer` once more (as an at-least-once bus
    /// may); consumers are idempotent, so nothing changes twice.
    fn redeliver(&self, py: Python<'_>, consumer: String, position: u64) -> PyResult<()> {
        let lib = self.lib(py)?;
        detached(py, move || call::wait(lib.redeliver(&consumer, position)))
    }

    /// Makes the payment gateway fail as unavailable (`True`) or work again (`False`), to
    /// rehearse an outage. Needs `fault_injection=True` at open; otherwise `InvalidInputError`.
    fn set_payment_outage(&self, py: Python<'_>, down: bool) -> PyResult<()> {
        let lib = self.lib(py)?;
        detached(py, move || lib.set_payment_outage(down))
    }

    /// Calls `callback(event)` with every event committed from now on, in position order, on
    /// the background thread (or during `settle()` without one). Exceptions it raises are
    /// reported through `sys.unraisablehook` and otherwise ignored.
    fn subscribe(&self, py: Python<'_>, callback: Bound<'_, PyAny>) -> PyResult<Subscription> {
        if !callback.is_callable() {
            return Err(errors::wrong_type(
                "callback",
                "a callable taking a lendkit.Event",
                &callback,
            ));
        }
        let (lib, hub) = (self.lib(py)?, Arc::clone(&self.state.hub));
        let callback = callback.unbind();
        detached(py, move || hub.add(&lib, callback))
    }
}
