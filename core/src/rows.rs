//! The rows the library answers with, as data: every field of the views' rows, of a stored
//! event, a command's outcome, a dead letter, a notice and a consumer's status, with its kind.
//!
//! [`ROWS`] goes into `docs/schema.json` (under `"rows"`), from which `scripts/generate.py`
//! writes the Python stubs and the TypeScript interfaces of these rows; a test
//! (`tests/rows.rs`) checks each row's JSON form against its spec, so a field added to a struct
//! here fails until the table, and then every binding, has it.
//!
//! A row's JSON form is its `Serialize` form (the views' rows, [`DeadLetter`](crate::ports::DeadLetter),
//! [`Notice`](crate::ports::Notice), [`ConsumerStatus`](crate::library::ConsumerStatus)), the
//! wire form for an event ([`Envelope::to_json`](crate::event::Envelope::to_json)) and
//! [`Outcome::to_json`](crate::Outcome::to_json) for an outcome. Field names are snake_case;
//! the Node binding returns them camelCase, except inside an event's payload.

use serde_json::{json, Value};

/// What a row field holds. Deliberately few kinds: each maps to one type in every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A string.
    String,
    /// A whole number (within 0..=2^53−1, so exact in JavaScript).
    Integer,
    /// True or false.
    Boolean,
    /// The type name of an event (`RentalReserved`, …).
    EventType,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A list of rows of the named spec, in order.
    List(&'static str),
    /// A JSON object with any keys (an event's payload: snake_case wire names in every language).
    Object,
}

impl RowKind {
    /// The kind's name in the schema.
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::String => "string",
            RowKind::Integer => "integer",
            RowKind::Boolean => "boolean",
            RowKind::EventType => "event_type",
            RowKind::Enum(_) => "enum",
            RowKind::List(_) => "list",
            RowKind::Object => "object",
        }
    }
}

/// One field of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowField {
    /// Its name in snake_case, as in JSON (`book_id`).
    pub name: &'static str,
    /// What it holds.
    pub kind: RowKind,
    /// Whether it may be null (`None`). Only strings and integers are.
    pub optional: bool,
    /// What it means.
    pub doc: &'static str,
}

/// One row the library answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowSpec {
    /// The row's type name in the bindings (`BookRow`).
    pub name: &'static str,
    /// What it is.
    pub doc: &'static str,
    /// Every field, in the order of the JSON form.
    pub fields: &'static [RowField],
}

impl RowSpec {
    /// The spec named `name`.
    pub fn named(name: &str) -> Option<&'static RowSpec> {
        ROWS.iter().find(|r| r.name == name)
    }

    /// The spec as it appears in the schema.
    pub fn to_json(&self) -> Value {
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|f| {
                let mut field = json!({
                    "name": f.name,
                    "kind": f.kind.as_str(),
                    "optional": f.optional,
                    "doc": f.doc,
                });
                match f.kind {
                    RowKind::Enum(values) => field["values"] = json!(values),
                    RowKind::List(row) => field["row"] = json!(row),
                    _ => {}
                }
                field
            })
            .collect();
        json!({ "name": self.name, "doc": self.doc, "fields": fields })
    }
}

const fn field(name: &'static str, kind: RowKind, doc: &'static str) -> RowField {
    RowField {
        name,
        kind,
        optional: false,
        doc,
    }
}

const fn maybe(name: &'static str, kind: RowKind, doc: &'static str) -> RowField {
    RowField {
        name,
        kind,
        optional: true,
        doc,
    }
}

use RowKind::{Boolean, EventType, Integer, List, Object, String as Text};

/// The values of [`BookStatus`](crate::views::BookStatus).
pub const BOOK_STATUSES: &[&str] = &["available", "reserved", "on_loan"];
/// The values of a rental's status on a member page.
pub const RENTAL_STATUSES: &[&str] = &[
    "reserved",
    "waiting",
    "confirmed",
    "awaiting_pickup",
    "on_loan",
    "lost",
    "returned",
    "canceled",
    "expired",
];
/// The values of a rental's payment status on a member page.
pub const PAYMENT_STATUSES: &[&str] = &["charged", "refunded"];
/// The values of a rental's delivery status on a member page.
pub const DELIVERY_STATUSES: &[&str] = &["none", "started", "delivered", "canceled"];

/// Every row the library answers with (see the module docs).
pub const ROWS: &[RowSpec] = &[
    RowSpec {
        name: "BookRow",
        doc: "One book of the book list: its stock and status.",
        fields: &[
            field("book_id", Text, "Book id."),
            field("title", Text, "Title."),
            maybe("author", Text, "Author."),
            field("fee", Integer, "Rental fee in points."),
            field("copies", Integer, "Copies owned."),
            field("available", Integer, "Copies on the shelf."),
            field("reserved", Integer, "Copies held for reservations not yet picked up."),
            field("on_loan", Integer, "Copies out on loan."),
            field("status", RowKind::Enum(BOOK_STATUSES), "Summary status."),
            field(
                "last_activity",
                Text,
                "The last business step about this book (`BookRegistered`, `RentalReserved`, …).",
            ),
        ],
    },
    RowSpec {
        name: "RentalRow",
        doc: "One rental on a member page.",
        fields: &[
            field("rental_id", Text, "Rental id."),
            field("book_id", Text, "Book id."),
            field("status", RowKind::Enum(RENTAL_STATUSES), "The rental's status."),
            field(
                "payment_status",
                RowKind::Enum(PAYMENT_STATUSES),
                "Whether its fee is charged or refunded.",
            ),
            field(
                "delivery_status",
                RowKind::Enum(DELIVERY_STATUSES),
                "Where its delivery is.",
            ),
            field("fee", Integer, "Fee paid, in points."),
            maybe(
                "due_date",
                Text,
                "Due date (`YYYY-MM-DD`, UTC) while on loan or after.",
            ),
            maybe("late_days", Integer, "Days late at return."),
            maybe(
                "due_at",
                Text,
                "The due instant (RFC 3339, UTC, milliseconds) while on loan or after: a branch's closing time can fall on another UTC date than its local one.",
            ),
            maybe(
                "renewals_left",
                Integer,
                "Renewals the loan has left under its terms (none when it was made without stored rules).",
            ),
            maybe(
                "position",
                Integer,
                "While the rental is a hold waiting in its title's queue: its place in line, 1 first.",
            ),
            maybe(
                "pickup_until",
                Text,
                "While a hold's copy waits on the pickup shelf: the deadline to collect it (RFC 3339, UTC).",
            ),
        ],
    },
    RowSpec {
        name: "MemberPage",
        doc: "A member's page: their points, fees owed, block, and every rental.",
        fields: &[
            field("member_id", Text, "Member id."),
            field("name", Text, "Name."),
            field("points", Integer, "Point balance."),
            field("rentals", List("RentalRow"), "Rentals, oldest first."),
            field(
                "fees_owed",
                Integer,
                "Points owed in fees (the fee ledger, apart from the point balance).",
            ),
            maybe(
                "blocked",
                Text,
                "A librarian's block, with its reason, while one is in force.",
            ),
        ],
    },
    RowSpec {
        name: "Event",
        doc: "A stored event: the envelope's fields and the payload.",
        fields: &[
            field("event_id", Text, "Unique id of the event: `stream#version`."),
            field(
                "stream",
                Text,
                "The stream it belongs to: `rental:r-1`, `book:isbn-1`, `member:m-1`, `account:m-1`, `delivery:r-1`.",
            ),
            field("version", Integer, "Its version within the stream, from 1."),
            field(
                "position",
                Integer,
                "Its position in the global log, from 1, without gaps.",
            ),
            field(
                "occurred_at",
                Integer,
                "When it was decided, in milliseconds since the Unix epoch (the library's clock).",
            ),
            field(
                "correlation_id",
                Text,
                "The business case: the rental id for everything about a rental, else the member or book id.",
            ),
            field(
                "causation_id",
                Text,
                "The command id or event id that caused it.",
            ),
            field("command_id", Text, "The id of the command that stored it."),
            field("actor", Text, "`librarian:ID`, `member:ID` or `system`."),
            field("type", EventType, "The event type, past tense: `RentalReserved`."),
            field("schema", Integer, "The payload's schema version."),
            field(
                "payload",
                Object,
                "The event's own fields, with their stored snake_case names in every language.",
            ),
        ],
    },
    RowSpec {
        name: "Outcome",
        doc: "What a command returns: its command id, the rental it concerned, and the events it stored.",
        fields: &[
            field(
                "command_id",
                Text,
                "The command's id (given or generated); send it again to retry safely.",
            ),
            maybe(
                "rental_id",
                Text,
                "The rental the command was about (for `reserve_book`: the new rental's id).",
            ),
            field(
                "events",
                List("Event"),
                "The stored events in position order; empty when the command changed nothing.",
            ),
        ],
    },
    RowSpec {
        name: "OverdueRow",
        doc: "One loan made under circulation rules that is past its due date (the overdue list).",
        fields: &[
            field("rental_id", Text, "Rental id."),
            field("member_id", Text, "Borrower."),
            field("book_id", Text, "Book id."),
            maybe(
                "branch",
                Text,
                "The branch the loan was made at, if one was named.",
            ),
            field("due_at", Text, "The due instant (RFC 3339, UTC)."),
            field("days_late", Integer, "Whole days late (started days count)."),
            field(
                "fee_so_far",
                Integer,
                "The fine the loan has run up so far, in points (charged when it comes back).",
            ),
        ],
    },
    RowSpec {
        name: "HoldShelfRow",
        doc: "One hold whose copy waits on a pickup shelf (the hold shelf list).",
        fields: &[
            field("hold_id", Text, "Hold id (its rental id)."),
            field("book_id", Text, "Book id."),
            field("member_id", Text, "Who collects it."),
            maybe("branch", Text, "The pickup branch, if one was named."),
            field("until", Text, "The deadline to collect it (RFC 3339, UTC)."),
            field(
                "pull",
                Boolean,
                "The copy was on the open shelf when the hold was filled (a free or a new copy, not one just returned): fetch it to the pickup shelf. These rows are the pull list.",
            ),
        ],
    },
    RowSpec {
        name: "DeadLetter",
        doc: "An event a consumer gave up on after every retry.",
        fields: &[
            field("id", Text, "`consumer@position`."),
            field("consumer", Text, "The consumer that gave up."),
            field("position", Integer, "Global position of the event."),
            field("event_id", Text, "The event's id."),
            field("event_type", EventType, "The event's type."),
            field("error", Text, "The last error."),
            field("attempts", Integer, "How many times it was tried."),
        ],
    },
    RowSpec {
        name: "Notice",
        doc: "A message to a member about their rental or delivery, as handed to a notifier.",
        fields: &[
            field("member_id", Text, "Who hears of it."),
            field("rental_id", Text, "The rental it is about."),
            field(
                "kind",
                EventType,
                "The event that caused it (`RentalConfirmed`, `DeliveryStarted`, …).",
            ),
            field("message", Text, "A readable sentence."),
            field(
                "event_id",
                Text,
                "The causing event's id, so a notifier can drop duplicates.",
            ),
        ],
    },
    RowSpec {
        name: "ConsumerStatus",
        doc: "A consumer's progress (a policy or a view).",
        fields: &[
            field("name", Text, "Its name (`catalog`, `book_list`, …)."),
            field("paused", Boolean, "Whether it is paused."),
            field("workers", Integer, "How many workers share its events."),
            field(
                "checkpoint",
                Integer,
                "The lowest position all its workers have handled up to.",
            ),
        ],
    },
];

/// What is wrong with `value` as a row of `spec`: every key missing or extra, and every value
/// of another JSON type than its field's kind (nested rows included); empty when it fits.
/// `event_types` are the names an [`RowKind::EventType`] field may hold.
pub fn mismatches(spec: &RowSpec, value: &Value, event_types: &[&str]) -> Vec<String> {
    let mut out = vec![];
    check_row(spec, value, event_types, spec.name, &mut out);
    out
}

fn check_row(spec: &RowSpec, value: &Value, event_types: &[&str], at: &str, out: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        out.push(format!("{at}: not a JSON object: {value}"));
        return;
    };
    for key in object.keys() {
        if !spec.fields.iter().any(|f| f.name == key) {
            out.push(format!("{at}: key {key:?} is not a field of {}", spec.name));
        }
    }
    for f in spec.fields {
        let at = format!("{at}.{}", f.name);
        match object.get(f.name) {
            None => out.push(format!("{at}: missing")),
            Some(Value::Null) if f.optional => {}
            Some(v) => check_value(f.kind, v, event_types, &at, out),
        }
    }
}

fn check_value(kind: RowKind, v: &Value, event_types: &[&str], at: &str, out: &mut Vec<String>) {
    let fits = match kind {
        Text => v.is_string(),
        Integer => v.is_u64() || v.is_i64(),
        Boolean => v.is_boolean(),
        EventType => v.as_str().is_some_and(|s| event_types.contains(&s)),
        RowKind::Enum(values) => v.as_str().is_some_and(|s| values.contains(&s)),
        Object => v.is_object(),
        List(row) => {
            let Some(items) = v.as_array() else {
                out.push(format!("{at}: not a list: {v}"));
                return;
            };
            let Some(spec) = RowSpec::named(row) else {
                out.push(format!("{at}: no row named {row:?}"));
                return;
            };
            for (i, item) in items.iter().enumerate() {
                check_row(spec, item, event_types, &format!("{at}[{i}]"), out);
            }
            true
        }
    };
    if !fits {
        out.push(format!("{at}: {v} is not a {}", kind.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::BookStatus;

    #[test]
    fn every_list_names_a_row_and_names_are_unique() {
        for (i, spec) in ROWS.iter().enumerate() {
            assert!(
                ROWS[..i].iter().all(|r| r.name != spec.name),
                "{}",
                spec.name
            );
            for (j, f) in spec.fields.iter().enumerate() {
                assert!(
                    spec.fields[..j].iter().all(|g| g.name != f.name),
                    "{}.{}",
                    spec.name,
                    f.name
                );
                if let RowKind::List(row) = f.kind {
                    assert!(RowSpec::named(row).is_some(), "{}.{}", spec.name, f.name);
                }
                assert!(
                    !f.optional || matches!(f.kind, RowKind::String | RowKind::Integer),
                    "{}.{}: only strings and integers may be optional",
                    spec.name,
                    f.name
                );
            }
        }
    }

    #[test]
    fn the_book_statuses_are_the_enums_values() {
        for s in [
            BookStatus::Available,
            BookStatus::Reserved,
            BookStatus::OnLoan,
        ] {
            assert!(BOOK_STATUSES.contains(&s.as_str()));
        }
    }

    #[test]
    fn a_row_with_a_missing_extra_or_mistyped_key_is_told() {
        let spec = RowSpec::named("ConsumerStatus").unwrap();
        let good = json!({ "name": "catalog", "paused": false, "workers": 1, "checkpoint": 3 });
        assert!(mismatches(spec, &good, &[]).is_empty());
        let bad = json!({ "name": "catalog", "paused": 0, "checkpoint": 3, "extra": 1 });
        let found = mismatches(spec, &bad, &[]);
        assert_eq!(found.len(), 3, "{found:?}");
    }
}
