//! The frozen value objects the library returns: rows of the views, stored events, command
//! outcomes, dead letters, notices and consumer states. Each is immutable, compares and hashes
//! by value, and has a `__repr__` and a `to_dict()` whose keys are the core's JSON field names.

use crate::json;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;
use std::hash::{Hash, Hasher};

/// `Class(field=repr, …)` for the named attributes of `obj`.
fn repr(obj: &Bound<'_, PyAny>, class: &str, fields: &[&str]) -> PyResult<String> {
    let parts = fields
        .iter()
        .map(|f| Ok(format!("{f}={}", obj.getattr(*f)?.repr()?)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(format!("{class}({})", parts.join(", ")))
}

/// `value` serialized as a Python dict.
fn to_dict<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyDict>> {
    let value = serde_json::to_value(value).map_err(|e| crate::errors::not_serializable(&e))?;
    Ok(json::to_py(py, &value)?.cast_into::<PyDict>()?)
}

/// Implements `__repr__` and `to_dict` for a serializable row class.
macro_rules! row_methods {
    ($class:ident, [$($field:literal),* $(,)?]) => {
        #[pymethods]
        impl $class {
            /// The row as a plain dict (JSON field names).
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                to_dict(py, self)
            }

            fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                repr(slf.as_any(), stringify!($class), &[$($field),*])
            }
        }
    };
}

/// One book of the book list: its stock and status.
#[pyclass(module = "lendkit", frozen, eq, hash, get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BookRow {
    book_id: String,
    title: String,
    author: Option<String>,
    fee: u64,
    copies: u32,
    available: u32,
    reserved: u32,
    on_loan: u32,
    status: String,
    last_activity: String,
}

row_methods!(
    BookRow,
    [
        "book_id",
        "title",
        "author",
        "fee",
        "copies",
        "available",
        "reserved",
        "on_loan",
        "status",
        "last_activity"
    ]
);

impl From<lendkit::views::BookRow> for BookRow {
    fn from(r: lendkit::views::BookRow) -> Self {
        BookRow {
            book_id: r.book_id,
            title: r.title,
            author: r.author,
            fee: r.fee,
            copies: r.copies,
            available: r.available,
            reserved: r.reserved,
            on_loan: r.on_loan,
            status: r.status.as_str().to_owned(),
            last_activity: r.last_activity,
        }
    }
}

/// One rental on a member page.
#[pyclass(module = "lendkit", frozen, eq, hash, get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RentalRow {
    rental_id: String,
    book_id: String,
    status: String,
    payment_status: String,
    delivery_status: String,
    fee: u64,
    due_date: Option<String>,
    late_days: Option<u32>,
    due_at: Option<String>,
    renewals_left: Option<u64>,
    position: Option<u64>,
    pickup_until: Option<String>,
}

row_methods!(
    RentalRow,
    [
        "rental_id",
        "book_id",
        "status",
        "payment_status",
        "delivery_status",
        "fee",
        "due_date",
        "late_days",
        "due_at",
        "renewals_left",
        "position",
        "pickup_until"
    ]
);

impl From<lendkit::views::RentalRow> for RentalRow {
    fn from(r: lendkit::views::RentalRow) -> Self {
        RentalRow {
            rental_id: r.rental_id,
            book_id: r.book_id,
            status: r.status,
            payment_status: r.payment_status,
            delivery_status: r.delivery_status,
            fee: r.fee,
            due_date: r.due_date,
            late_days: r.late_days,
            due_at: r.due_at,
            renewals_left: r.renewals_left,
            position: r.position,
            pickup_until: r.pickup_until,
        }
    }
}

/// A member's page: their points, fees owed, block, and every rental.
#[pyclass(module = "lendkit", frozen, eq, hash, get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MemberPage {
    member_id: String,
    name: String,
    points: u64,
    rentals: Vec<RentalRow>,
    fees_owed: u64,
    blocked: Option<String>,
}

row_methods!(
    MemberPage,
    [
        "member_id",
        "name",
        "points",
        "rentals",
        "fees_owed",
        "blocked"
    ]
);

impl From<lendkit::views::MemberPage> for MemberPage {
    fn from(p: lendkit::views::MemberPage) -> Self {
        MemberPage {
            member_id: p.member_id,
            name: p.name,
            points: p.points,
            rentals: p.rentals.into_iter().map(RentalRow::from).collect(),
            fees_owed: p.fees_owed,
            blocked: p.blocked,
        }
    }
}

/// One overdue loan in the overdue list.
#[pyclass(module = "lendkit", frozen, eq, hash, get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct OverdueRow {
    rental_id: String,
    member_id: String,
    book_id: String,
    branch: Option<String>,
    due_at: String,
    days_late: u32,
    fee_so_far: u64,
}

row_methods!(
    OverdueRow,
    [
        "rental_id",
        "member_id",
        "book_id",
        "branch",
        "due_at",
        "days_late",
        "fee_so_far"
    ]
);

impl From<lendkit::views::OverdueRow> for OverdueRow {
    fn from(r: lendkit::views::OverdueRow) -> Self {
        OverdueRow {
            rental_id: r.rental_id,
            member_id: r.member_id,
            book_id: r.book_id,
            branch: r.branch,
            due_at: r.due_at,
            days_late: r.days_late,
            fee_so_far: r.fee_so_far,
        }
    }
}

/// One hold whose copy waits on a pickup shelf.
#[pyclass(module = "lendkit", frozen, eq, hash, get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct HoldShelfRow {
    hold_id: String,
    book_id: String,
    member_id: String,
    branch: Option<String>,
    until: String,
    pull: bool,
}

row_methods!(
    HoldShelfRow,
    ["hold_id", "book_id", "member_id", "branch", "until", "pull"]
);

impl From<lendkit::views::HoldShelfRow> for HoldShelfRow {
    fn from(r: lendkit::views::HoldShelfRow) -> Self {
        HoldShelfRow {
            hold_id: r.hold_id,
            book_id: r.book_id,
            member_id: r.member_id,
            branch: r.branch,
            until: r.until,
            pull: r.pull,
        }
    }
}

/// An event a consumer gave up on.
#[pyclass(module = "lendkit", frozen, eq, hash, get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DeadLetter {
    id: String,
    consumer: String,
    position: u64,
    event_id: String,
    event_type: String,
    error: String,
    attempts: u32,
}

row_methods!(
    DeadLetter,
    [
        "id",
        "consumer",
        "position",
        "event_id",
        "event_type",
        "error",
        "attempts"
    ]
);

impl From<lendkit::ports::DeadLetter> for DeadLetter {
    fn from(d: lendkit::ports::DeadLetter) -> Self {
        DeadLetter {
            id: d.id,
            consumer: d.consumer,
            position: d.position,
            event_id: d.event_id,
            event_type: d.event_type,
            error: d.error,
            attempts: d.attempts,
        }
    }
}

/// A message to a member about their rental or delivery, as handed to a notifier.
#[pyclass(module = "lendkit", frozen, eq, hash, get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Notice {
    member_id: String,
    rental_id: String,
    kind: String,
    message: String,
    event_id: String,
}

row_methods!(
    Notice,
    ["member_id", "rental_id", "kind", "message", "event_id"]
);

impl From<&lendkit::ports::Notice> for Notice {
    fn from(n: &lendkit::ports::Notice) -> Self {
        Notice {
            member_id: n.member_id.clone(),
            rental_id: n.rental_id.clone(),
            kind: n.kind.clone(),
            message: n.message.clone(),
            event_id: n.event_id.clone(),
        }
    }
}

/// A consumer's progress (a policy or a view).
#[pyclass(module = "lendkit", frozen, eq, hash, get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ConsumerStatus {
    name: String,
    paused: bool,
    workers: u32,
    checkpoint: u64,
}

row_methods!(ConsumerStatus, ["name", "paused", "workers", "checkpoint"]);

impl From<lendkit::library::ConsumerStatus> for ConsumerStatus {
    fn from(c: lendkit::library::ConsumerStatus) -> Self {
        ConsumerStatus {
            name: c.name,
            paused: c.paused,
            workers: c.workers,
            checkpoint: c.checkpoint,
        }
    }
}

/// A stored event: the envelope fields and the payload.
///
/// The row is the envelope itself: each field is read from it when asked, and the payload and
/// the wire form are built from it then. Most outcomes' events are never looked at, and copying
/// each one's strings (or building its wire form as a `Value`) up front was a large share of
/// what a command cost through the binding.
#[pyclass(module = "lendkit", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    envelope: lendkit::event::Envelope,
}

impl Hash for Event {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.envelope.event_id.hash(state);
        self.envelope.position.hash(state);
    }
}

impl From<lendkit::event::Envelope> for Event {
    fn from(envelope: lendkit::event::Envelope) -> Self {
        Event { envelope }
    }
}

impl From<&lendkit::event::Envelope> for Event {
    fn from(e: &lendkit::event::Envelope) -> Self {
        Event::from(e.clone())
    }
}

#[pymethods]
impl Event {
    /// Position in the global log, from 1, without gaps.
    #[getter]
    fn position(&self) -> u64 {
        self.envelope.position
    }

    /// `stream#version`.
    #[getter]
    fn event_id(&self) -> &str {
        &self.envelope.event_id
    }

    /// The event type, past tense: `RentalReserved`.
    #[getter]
    #[pyo3(name = "type")]
    fn type_name(&self) -> &'static str {
        self.envelope.type_name()
    }

    /// `kind:id`, e.g. `rental:r-1`.
    #[getter]
    fn stream(&self) -> String {
        self.envelope.stream.to_string()
    }

    /// Version within the stream, from 1.
    #[getter]
    fn version(&self) -> u64 {
        self.envelope.version
    }

    /// The business case (rental, member or book id) the whole chain is about.
    #[getter]
    fn correlation_id(&self) -> &str {
        &self.envelope.correlation_id
    }

    /// The command id or event id that caused it.
    #[getter]
    fn causation_id(&self) -> &str {
        &self.envelope.causation_id
    }

    /// The id of the command that stored it.
    #[getter]
    fn command_id(&self) -> &str {
        self.envelope.command_id.as_str()
    }

    /// `librarian:ID`, `member:ID` or `system`.
    #[getter]
    fn actor(&self) -> String {
        self.envelope.actor.to_string()
    }

    /// When it happened, in milliseconds since the Unix epoch (the library's clock).
    #[getter]
    fn occurred_at(&self) -> i64 {
        self.envelope.occurred_at.0
    }

    /// The payload schema version (what the wire form, `to_dict()`, says).
    #[getter]
    fn schema(&self) -> u64 {
        u64::from(lendkit::event::SCHEMA_VERSION)
    }

    /// The event's own fields (a fresh dict each time).
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json::to_py(py, &self.envelope.event.payload())
    }

    /// The wire form: every envelope field, `type`, `schema` and `payload`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json::to_py(py, &self.envelope.to_json())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        repr(
            slf.as_any(),
            "Event",
            &["position", "type", "stream", "version", "payload"],
        )
    }
}

/// What a command returns: its command id, the rental it concerned, and the events it stored.
#[pyclass(module = "lendkit", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The command's id (given or generated); send it again to retry safely.
    #[pyo3(get)]
    command_id: String,
    /// The rental the command was about (for `reserve_book`: the new rental's id), else None.
    #[pyo3(get)]
    rental_id: Option<String>,
    /// The stored events in position order; empty when the command changed nothing.
    #[pyo3(get)]
    events: Vec<Event>,
}

impl Hash for Outcome {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.command_id.hash(state);
        self.rental_id.hash(state);
    }
}

impl From<lendkit::Outcome> for Outcome {
    fn from(o: lendkit::Outcome) -> Self {
        Outcome {
            command_id: o.command_id.to_string(),
            rental_id: o.rental_id.map(|r| r.to_string()),
            events: o.events.into_iter().map(Event::from).collect(),
        }
    }
}

#[pymethods]
impl Outcome {
    /// The stored events' types, in order.
    #[getter]
    fn types(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| e.envelope.type_name().to_owned())
            .collect()
    }

    /// `command_id`, `rental_id` and `events` (each as its wire dict).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("command_id", &self.command_id)?;
        dict.set_item("rental_id", &self.rental_id)?;
        let events = self
            .events
            .iter()
            .map(|e| e.to_dict(py))
            .collect::<PyResult<Vec<_>>>()?;
        dict.set_item("events", events)?;
        Ok(dict)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        repr(
            slf.as_any(),
            "Outcome",
            &["command_id", "rental_id", "types"],
        )
    }
}
