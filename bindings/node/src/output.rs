//! What the library answers, as plain JS objects with camelCase keys.
//!
//! Event payloads keep their snake_case field names: they are the stored wire format
//! of every event, the same bytes Rust and Python read.

use lendkit::event::Envelope;
use napi_derive::napi;
use serde_json::Value;
use std::fmt::Write as _;

#[expect(
    clippy::cast_precision_loss,
    reason = "positions, versions and points stay far below 2^53"
)]
fn number(n: u64) -> f64 {
    n as f64
}

/// A stored event with everything known about it. (Its JSON form, written by `events_json` for
/// a command's outcome, has the same keys in the same order.)
#[napi(object, object_from_js = false)]
pub struct Event {
    /// Unique id: `stream#version`.
    pub event_id: String,
    /// The stream it belongs to: `rental:r-1`, `book:isbn-1`, …
    pub stream: String,
    /// Its version within the stream, from 1.
    pub version: f64,
    /// Its position in the global log, from 1, without gaps.
    pub position: f64,
    /// When it was decided (milliseconds since the Unix epoch).
    pub occurred_at: f64,
    /// The business case: the rental id for everything about a rental, else the member or book id.
    pub correlation_id: String,
    /// The command id or event id that caused it.
    pub causation_id: String,
    /// The id of the command that produced it.
    pub command_id: String,
    /// `librarian:ID`, `member:ID` or `system`.
    pub actor: String,
    /// The event type: `RentalReserved`, `CopyAllocated`, …
    #[napi(js_name = "type")]
    pub kind: String,
    /// The payload's schema version.
    pub schema: u32,
    /// The event's fields, with their stored snake_case names.
    pub payload: Value,
}

impl From<&Envelope> for Event {
    fn from(e: &Envelope) -> Self {
        Event {
            event_id: e.event_id.clone(),
            stream: e.stream.to_string(),
            version: number(e.version),
            position: number(e.position),
            #[expect(clippy::cast_precision_loss, reason = "times stay far below 2^53 ms")]
            occurred_at: e.occurred_at.0 as f64,
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id.clone(),
            command_id: e.command_id.to_string(),
            actor: e.actor.to_string(),
            kind: e.type_name().to_owned(),
            // What the wire form (`Envelope::to_json`) says, without building all of it.
            schema: lendkit::event::SCHEMA_VERSION,
            payload: e.event.payload(),
        }
    }
}

/// What a successful command returns, as the strings `[commandId, eventsJson, rentalId?]`: the
/// command's id (given or generated: send it again to retry safely), the JSON text of the
/// events it stored (an array of [`Event`]s, in position order; for a re-sent command id, the
/// first time's), which the wrapper parses when `events` is first read, and the rental the
/// command was about, when there is one (for `reserveBook`: the new rental's id). An array of
/// strings, not an object: napi defines an object's properties one by one, and this is made
/// once per command.
pub fn outcome_parts(o: lendkit::Outcome) -> Vec<String> {
    let mut parts = Vec::with_capacity(3);
    parts.push(o.command_id.to_string());
    parts.push(events_json(&o.events));
    if let Some(rental) = o.rental_id {
        parts.push(rental.to_string());
    }
    parts
}

/// Appends `value`'s JSON text (a string escaped, a number in digits) to `out`.
fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing into a `Vec` cannot fail, and strings and numbers always serialize.
    let _ = serde_json::to_writer(out, value);
}

/// The JSON text of an array of [`Event`]s for `events`: each event's camelCase keys, in
/// [`Event`]'s order, written straight from the envelope into one buffer (strings escaped by
/// `serde_json`, the payload written by the event itself) — no row structs, no `String` per
/// field, no re-validation of the payload's text. A test holds this form and [`Event`]'s to the
/// same objects (`test/outcomes.test.mjs`).
fn events_json(events: &[Envelope]) -> String {
    let mut out = Vec::with_capacity(512 * events.len() + 2);
    write_events(&mut out, events);
    utf8(out)
}

/// The bytes written by this module's writers as a `String`.
fn utf8(out: Vec<u8>) -> String {
    // JSON punctuation, escaped strings, numbers and the payloads' JSON: all UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends the JSON array of [`Event`]s for `events` to `out` (see [`events_json`]).
fn write_events(out: &mut Vec<u8>, events: &[Envelope]) {
    // A `String` reused for the fields that are formatted before they are escaped.
    let mut scratch = String::new();
    out.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"eventId":"#);
        json(out, &e.event_id);
        out.extend_from_slice(br#","stream":"#);
        scratch.clear();
        let _ = write!(scratch, "{}", e.stream);
        json(out, scratch.as_str());
        out.extend_from_slice(br#","version":"#);
        json(out, &e.version);
        out.extend_from_slice(br#","position":"#);
        json(out, &e.position);
        out.extend_from_slice(br#","occurredAt":"#);
        json(out, &e.occurred_at.0);
        out.extend_from_slice(br#","correlationId":"#);
        json(out, &e.correlation_id);
        out.extend_from_slice(br#","causationId":"#);
        json(out, &e.causation_id);
        out.extend_from_slice(br#","commandId":"#);
        json(out, e.command_id.as_str());
        out.extend_from_slice(br#","actor":"#);
        scratch.clear();
        let _ = write!(scratch, "{}", e.actor);
        json(out, scratch.as_str());
        out.extend_from_slice(br#","type":"#);
        json(out, e.type_name());
        out.extend_from_slice(br#","schema":"#);
        json(out, &lendkit::event::SCHEMA_VERSION);
        out.extend_from_slice(br#","payload":"#);
        e.event.write_payload(out);
        out.push(b'}');
    }
    out.push(b']');
}

/// The text of a batch's answers, one line per command in order (lines end with `\n`, the
/// last too):
///
/// - `o` + the command id + `\t` + the rental id (empty when the command was about none) + `\t`
///   + the JSON text of its events (written only `with_events`, else nothing) — an outcome;
/// - `e` + the JSON text of `{"code", "message"}` — an error.
///
/// An outcome's ids hold no control characters: they are the command's own, which the core
/// checked before running it (`Library::execute_with_id` refuses an id with one), or ones it
/// generated — never read back from storage — so a tab or a line break never occurs inside one,
/// and JSON text holds none unescaped. One string crosses for the whole
/// batch and the wrapper splits it at the line breaks and tabs: an outcome becomes an object
/// without a JSON parse (parsing a JSON array of answer objects cost the wrapper more than
/// the answers' bookkeeping), and the events are parsed when first read, as a single
/// command's are ([`outcome_parts`]).
pub fn answers_text<'a>(
    answers: impl ExactSizeIterator<Item = Result<&'a lendkit::Outcome, &'a lendkit::Error>>,
    with_events: bool,
) -> String {
    let mut out = Vec::with_capacity(answers.len() * if with_events { 1024 } else { 64 });
    for answer in answers {
        match answer {
            Ok(o) => {
                out.push(b'o');
                out.extend_from_slice(o.command_id.as_str().as_bytes());
                out.push(b'\t');
                if let Some(rental) = &o.rental_id {
                    out.extend_from_slice(rental.as_str().as_bytes());
                }
                out.push(b'\t');
                if with_events {
                    write_events(&mut out, &o.events);
                }
            }
            Err(e) => {
                out.extend_from_slice(br#"e{"code":"#);
                json(&mut out, e.code().as_str());
                out.extend_from_slice(br#","message":"#);
                json(&mut out, &e.to_string());
                out.push(b'}');
            }
        }
        out.push(b'\n');
    }
    utf8(out)
}

/// One row of the book list.
#[napi(object, object_from_js = false)]
pub struct BookRow {
    /// Book id.
    pub book_id: String,
    /// Title.
    pub title: String,
    /// Author.
    pub author: Option<String>,
    /// Rental fee in points.
    pub fee: f64,
    /// Copies owned.
    pub copies: u32,
    /// Copies on the shelf.
    pub available: u32,
    /// Copies held for reservations not yet picked up.
    pub reserved: u32,
    /// Copies out on loan.
    pub on_loan: u32,
    /// `available`, `reserved` or `on_loan`.
    pub status: String,
    /// The last business step about this book (`BookRegistered`, `RentalReserved`, …).
    pub last_activity: String,
}

impl From<lendkit::views::BookRow> for BookRow {
    fn from(r: lendkit::views::BookRow) -> Self {
        BookRow {
            book_id: r.book_id,
            title: r.title,
            author: r.author,
            fee: number(r.fee),
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
#[napi(object, object_from_js = false)]
pub struct RentalRow {
    /// Rental id.
    pub rental_id: String,
    /// Book id.
    pub book_id: String,
    /// `reserved`, `waiting` (a hold in its queue), `confirmed`, `awaiting_pickup` (a hold's copy
    /// on the pickup shelf), `on_loan`, `lost` (aged to lost, not back), `returned`, `canceled`
    /// or `expired` (a hold not collected in time).
    pub status: String,
    /// `charged` or `refunded`.
    pub payment_status: String,
    /// `none`, `started`, `delivered` or `canceled`.
    pub delivery_status: String,
    /// Fee paid, in points.
    pub fee: f64,
    /// Due date (`YYYY-MM-DD`, UTC) while on loan or after; else null.
    pub due_date: Option<String>,
    /// Days late at return; else null.
    pub late_days: Option<u32>,
    /// The due instant (RFC 3339, UTC, milliseconds) while on loan or after; else null.
    pub due_at: Option<String>,
    /// Renewals left under the loan's terms; null when made without stored rules.
    pub renewals_left: Option<f64>,
    /// While a hold waits in its title's queue: its place in line, 1 first; else null.
    pub position: Option<f64>,
    /// While a hold's copy waits on the pickup shelf: the deadline to collect it (RFC 3339,
    /// UTC); else null.
    pub pickup_until: Option<String>,
}

/// A member's page (마이페이지).
#[napi(object, object_from_js = false)]
pub struct MemberPage {
    /// Member id.
    pub member_id: String,
    /// Name.
    pub name: String,
    /// Point balance.
    pub points: f64,
    /// Rentals, oldest first.
    pub rentals: Vec<RentalRow>,
    /// Points owed in fees (apart from the point balance).
    pub fees_owed: f64,
    /// A librarian's block, with its reason, while one is in force; else null.
    pub blocked: Option<String>,
}

impl From<lendkit::views::MemberPage> for MemberPage {
    fn from(p: lendkit::views::MemberPage) -> Self {
        MemberPage {
            member_id: p.member_id,
            name: p.name,
            points: number(p.points),
            rentals: p
                .rentals
                .into_iter()
                .map(|r| RentalRow {
                    rental_id: r.rental_id,
                    book_id: r.book_id,
                    status: r.status,
                    payment_status: r.payment_status,
                    delivery_status: r.delivery_status,
                    fee: number(r.fee),
                    due_date: r.due_date,
                    late_days: r.late_days,
                    due_at: r.due_at,
                    renewals_left: r.renewals_left.map(number),
                    position: r.position.map(number),
                    pickup_until: r.pickup_until,
                })
                .collect(),
            fees_owed: number(p.fees_owed),
            blocked: p.blocked,
        }
    }
}

/// One overdue loan in the overdue list.
#[napi(object, object_from_js = false)]
pub struct OverdueRow {
    /// Rental id.
    pub rental_id: String,
    /// Borrower.
    pub member_id: String,
    /// Book id.
    pub book_id: String,
    /// The branch the loan was made at; else null.
    pub branch: Option<String>,
    /// The due instant (RFC 3339, UTC).
    pub due_at: String,
    /// Whole days late (started days count).
    pub days_late: u32,
    /// The fine run up so far, in points.
    pub fee_so_far: f64,
}

impl From<lendkit::views::OverdueRow> for OverdueRow {
    fn from(r: lendkit::views::OverdueRow) -> Self {
        OverdueRow {
            rental_id: r.rental_id,
            member_id: r.member_id,
            book_id: r.book_id,
            branch: r.branch,
            due_at: r.due_at,
            days_late: r.days_late,
            fee_so_far: number(r.fee_so_far),
        }
    }
}

/// One hold whose copy waits on a pickup shelf.
#[napi(object, object_from_js = false)]
pub struct HoldShelfRow {
    /// Hold id (its rental id).
    pub hold_id: String,
    /// Book id.
    pub book_id: String,
    /// Who collects it.
    pub member_id: String,
    /// The pickup branch; else null.
    pub branch: Option<String>,
    /// The deadline to collect it (RFC 3339, UTC).
    pub until: String,
    /// The copy was on the open shelf when the hold was filled: fetch it (the pull list).
    pub pull: bool,
}

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

/// An event a consumer gave up on after every retry.
#[napi(object, object_from_js = false)]
pub struct DeadLetter {
    /// `consumer@position`.
    pub id: String,
    /// The consumer that gave up.
    pub consumer: String,
    /// Global position of the event.
    pub position: f64,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The last error.
    pub error: String,
    /// How many times it was tried.
    pub attempts: u32,
}

impl From<lendkit::ports::DeadLetter> for DeadLetter {
    fn from(d: lendkit::ports::DeadLetter) -> Self {
        DeadLetter {
            id: d.id,
            consumer: d.consumer,
            position: number(d.position),
            event_id: d.event_id,
            event_type: d.event_type,
            error: d.error,
            attempts: d.attempts,
        }
    }
}
