//! `lendkit.Library`: a library on its embedded adapters (a sled file or memory), with its
//! background runner. Every method converts its arguments, releases the GIL around the core
//! call and converts the answer; the rules are all in the core.

use crate::actors;
use crate::args::{self, Text};
use crate::call::{self, detached, Callback};
use crate::errors;
use crate::options::Options;
use crate::rows::{BookRow, ConsumerStatus, DeadLetter, Event, MemberPage, Outcome};
use crate::subscription::{Hub, Subscription};
use lendkit::{Command, CommandId, Config, OpenLibrary};
use pyo3::prelude::*;
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
/// Open one with `Library.open(path)` (a sled database file, durable) or
/// `Library.in_memory()`, preferably in a `with` block. Safe to share between threads: every
/// call releases the GIL while the core works.
#[pyclass(module = "lendkit", frozen)]
pub struct Library {
    state: Arc<State>,
}

impl Drop for Library {
    fn drop(&mut self) {
        if let Some(open) = self.state.take() {
            // Stopping the runner waits for it, and it may be waiting for the GIL (a callback).
            let close = move || {
                let _ = catch_unwind(AssertUnwindSafe(|| shut(open)));
            };
            Python::try_attach(|py| py.detach(close));
        }
    }
}

/// Starts the Python side of an opened library.
fn start(
    py: Python<'_>,
    config: Config,
    open: impl FnOnce(Config) -> lendkit::Result<OpenLibrary> + Send,
    origin: String,
) -> PyResult<Library> {
    let background = config.background;
    let (open, hub) = detached(py, move || {
        let open = open(config)?;
        let hub = Arc::new(Hub::default());
        let dispatcher = Arc::clone(&hub);
        open.subscribe(Box::new(move |e| dispatcher.dispatch(e)));
        hub.start_at(call::wait(open.head())?);
        Ok((open, hub))
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
    Ok(Library { state })
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

    /// Runs a command as `actor`.
    fn execute(
        &self,
        py: Python<'_>,
        command: Command,
        actor: &Bound<'_, PyAny>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        let actor = actors::actor(actor)?;
        let lib = self.lib(py)?;
        let id = command_id.map(|t| CommandId(t.0));
        detached(py, move || {
            call::wait(lib.execute_with_id(command, &actor, id)).map(Outcome::from)
        })
    }
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
    /// Opens (or creates) the library stored in the sled database at `path`.
    ///
    /// Fails with `StorageError` (`NOT_A_LIBRARY`, `SCHEMA_TOO_NEW`, `LIBRARY_LOCKED`) without
    /// changing anything. See the README for every keyword.
    #[staticmethod]
    #[pyo3(signature = (
        path, *, welcome_points = 100, loan_days = 14, max_renewals = 2, durability = None,
        payment = None, notifier = None, clock = None, background = true, max_attempts = 5,
        breaker_failure_threshold = 5, breaker_cool_down_ms = 30000, payment_timeout_ms = 5000,
        retry_backoff_ms = 1000, workers = None, fault_injection = false
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one Rust argument per Python keyword argument"
    )]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        welcome_points: u64,
        loan_days: u32,
        max_renewals: u32,
        durability: Option<&Bound<'_, PyAny>>,
        payment: Option<&Bound<'_, PyAny>>,
        notifier: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        background: bool,
        max_attempts: u32,
        breaker_failure_threshold: u32,
        breaker_cool_down_ms: u64,
        payment_timeout_ms: Option<u64>,
        retry_backoff_ms: u64,
        workers: Option<BTreeMap<String, u32>>,
        fault_injection: bool,
    ) -> PyResult<Library> {
        let config = Options {
            welcome_points,
            loan_days,
            max_renewals,
            durability,
            payment,
            notifier,
            clock,
            background,
            max_attempts,
            breaker_failure_threshold,
            breaker_cool_down_ms,
            payment_timeout_ms,
            retry_backoff_ms,
            workers,
            fault_injection,
        }
        .config(py)?;
        let origin = format!("Library.open({:?})", path.display().to_string());
        start(
            py,
            config,
            move |config| call::wait(OpenLibrary::open_async(path, config)),
            origin,
        )
    }

    /// A library kept in memory only: nothing survives the process. Same keywords as `open`
    /// (`durability` has no effect).
    #[staticmethod]
    #[pyo3(signature = (
        *, welcome_points = 100, loan_days = 14, max_renewals = 2, durability = None,
        payment = None, notifier = None, clock = None, background = true, max_attempts = 5,
        breaker_failure_threshold = 5, breaker_cool_down_ms = 30000, payment_timeout_ms = 5000,
        retry_backoff_ms = 1000, workers = None, fault_injection = false
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one Rust argument per Python keyword argument"
    )]
    fn in_memory(
        py: Python<'_>,
        welcome_points: u64,
        loan_days: u32,
        max_renewals: u32,
        durability: Option<&Bound<'_, PyAny>>,
        payment: Option<&Bound<'_, PyAny>>,
        notifier: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        background: bool,
        max_attempts: u32,
        breaker_failure_threshold: u32,
        breaker_cool_down_ms: u64,
        payment_timeout_ms: Option<u64>,
        retry_backoff_ms: u64,
        workers: Option<BTreeMap<String, u32>>,
        fault_injection: bool,
    ) -> PyResult<Library> {
        let config = Options {
            welcome_points,
            loan_days,
            max_renewals,
            durability,
            payment,
            notifier,
            clock,
            background,
            max_attempts,
            breaker_failure_threshold,
            breaker_cool_down_ms,
            payment_timeout_ms,
            retry_backoff_ms,
            workers,
            fault_injection,
        }
        .config(py)?;
        start(
            py,
            config,
            |config| call::wait(OpenLibrary::in_memory_async(config)),
            "Library.in_memory()".into(),
        )
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

    /// Puts a title in the catalogue with `copies` copies and a rental `fee` in points (librarian).
    #[pyo3(signature = (book_id, title, copies, fee, *, author = None, actor, command_id = None))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one Rust argument per Python argument"
    )]
    fn register_book(
        &self,
        py: Python<'_>,
        book_id: Text,
        title: Text,
        copies: &Bound<'_, PyAny>,
        fee: &Bound<'_, PyAny>,
        author: Option<Text>,
        actor: &Bound<'_, PyAny>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        let command = Command::RegisterBook {
            book_id: book_id.0,
            title: title.0,
            author: args::text(author),
            copies: args::count(copies, "copies")?,
            fee: args::amount(fee, "fee")?,
        };
        self.execute(py, command, actor, command_id)
    }

    /// Stocks `n` more copies of a book (librarian).
    #[pyo3(signature = (book_id, n, *, actor, command_id = None))]
    fn add_copies(
        &self,
        py: Python<'_>,
        book_id: Text,
        n: &Bound<'_, PyAny>,
        actor: &Bound<'_, PyAny>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        let command = Command::AddCopies {
            book_id: book_id.0,
            copies: args::count(n, "n")?,
        };
        self.execute(py, command, actor, command_id)
    }

    /// Registers a member (librarian, or the person themselves); their point account opens
    /// with the welcome points.
    #[pyo3(signature = (member_id, name, *, contact = None, actor, command_id = None))]
    fn join_member(
        &self,
        py: Python<'_>,
        member_id: Text,
        name: Text,
        contact: Option<Text>,
        actor: &Bound<'_, PyAny>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        let command = Command::JoinMember {
            member_id: member_id.0,
            name: name.0,
            contact: args::text(contact),
        };
        self.execute(py, command, actor, command_id)
    }

    /// Adds points to a member's account (librarian).
    #[pyo3(signature = (member_id, points, *, actor, command_id = None))]
    fn top_up(
        &self,
        py: Python<'_>,
        member_id: Text,
        points: &Bound<'_, PyAny>,
        actor: &Bound<'_, PyAny>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        let command = Command::TopUp {
            member_id: member_id.0,
            points: args::amount(points, "points")?,
        };
        self.execute(py, command, actor, command_id)
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
        let dumps = py.import("json")?.getattr("dumps")?;
        let mut answers: Vec<Option<Py<PyAny>>> = Vec::new();
        let mut runnable = Vec::new();
        for item in commands.try_iter()? {
            let item = item?;
            let dict = item
                .cast::<pyo3::types::PyDict>()
                .map_err(|_| errors::wrong_type("a batch item", "a dict", &item))?
                .copy()?;
            let actor = match dict.get_item("actor")? {
                Some(a) => actors::actor(&a)?,
                None => return Err(errors::invalid(py, "every batch item needs an \"actor\"")),
            };
            dict.del_item("actor")?;
            let command_id = match dict.get_item("command_id")? {
                Some(id) if !id.is_none() => Some(CommandId(id.extract::<Text>()?.0)),
                _ => None,
            };
            if dict.contains("command_id")? {
                dict.del_item("command_id")?;
            }
            let text: String = dumps.call1((dict,))?.extract()?;
            match Command::from_json(&text) {
                Ok(command) => {
                    answers.push(None);
                    runnable.push((command, actor, command_id));
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

    /// Reserves a book, paying its fee now; `.rental_id` of the result names the rental. A copy
    /// is allocated (or the rental cancelled and refunded) by the consumers that follow.
    #[pyo3(signature = (
        book_id, member_id, *, actor, rental_id = None, delivery_address = None, command_id = None
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one Rust argument per Python argument"
    )]
    fn reserve_book(
        &self,
        py: Python<'_>,
        book_id: Text,
        member_id: Text,
        actor: &Bound<'_, PyAny>,
        rental_id: Option<Text>,
        delivery_address: Option<Text>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        let command = Command::ReserveBook {
            book_id: book_id.0,
            member_id: member_id.0,
            rental_id: args::text(rental_id),
            delivery_address: args::text(delivery_address),
        };
        self.execute(py, command, actor, command_id)
    }

    /// Picks up a confirmed rental: the loan starts.
    #[pyo3(signature = (rental_id, *, actor, command_id = None))]
    fn start_loan(
        &self,
        py: Python<'_>,
        rental_id: Text,
        actor: &Bound<'_, PyAny>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        self.execute(
            py,
            Command::StartLoan {
                rental_id: rental_id.0,
            },
            actor,
            command_id,
        )
    }

    /// Brings a loan back.
    #[pyo3(signature = (rental_id, *, actor, command_id = None))]
    fn return_book(
        &self,
        py: Python<'_>,
        rental_id: Text,
        actor: &Bound<'_, PyAny>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        self.execute(
            py,
            Command::ReturnBook {
                rental_id: rental_id.0,
            },
            actor,
            command_id,
        )
    }

    /// Cancels a reservation; the refund, the copy's release and the delivery's cancellation
    /// follow as events.
    #[pyo3(signature = (rental_id, *, actor, reason = None, command_id = None))]
    fn cancel_rental(
        &self,
        py: Python<'_>,
        rental_id: Text,
        actor: &Bound<'_, PyAny>,
        reason: Option<Text>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        let command = Command::CancelRental {
            rental_id: rental_id.0,
            reason: args::text(reason),
        };
        self.execute(py, command, actor, command_id)
    }

    /// Extends a loan by the loan period.
    #[pyo3(signature = (rental_id, *, actor, command_id = None))]
    fn renew_loan(
        &self,
        py: Python<'_>,
        rental_id: Text,
        actor: &Bound<'_, PyAny>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        self.execute(
            py,
            Command::RenewLoan {
                rental_id: rental_id.0,
            },
            actor,
            command_id,
        )
    }

    /// Records that a delivery arrived (librarian); the loan starts.
    #[pyo3(signature = (rental_id, *, actor, command_id = None))]
    fn mark_delivered(
        &self,
        py: Python<'_>,
        rental_id: Text,
        actor: &Bound<'_, PyAny>,
        command_id: Option<Text>,
    ) -> PyResult<Outcome> {
        self.execute(
            py,
            Command::MarkDelivered {
                rental_id: rental_id.0,
            },
            actor,
            command_id,
        )
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
                while state.hub.delivered() < head {
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
        let lib = self.lib(py)?;
        let head = detached(py, move || call::wait(lib.head()))?;
        Ok(self.state.hub.add(callback.unbind(), head))
    }
}
