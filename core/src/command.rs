//! The commands a caller can send, as one serializable type, and what a command returns.
//!
//! Bindings and scenario files build a [`Command`] and hand it to
//! [`Library::execute`](crate::library::Library::execute); every input rule is checked here, once.

use crate::error::Error;
use crate::event::Envelope;
use crate::ids::{
    validate_amount, validate_document, validate_id, validate_text, Actor, CommandId, RentalId,
    MAX_AMOUNT,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// What a command field holds, and so the rule it is checked by. The bindings' methods and
/// types are generated from these kinds (see [`Command::SPECS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// An id ([`validate_id`]): non-empty, bounded, no invisible characters.
    Id,
    /// Free text that must not be empty: a title, a name, an address.
    Text,
    /// Free text that may be empty: an author, a contact, a reason.
    Note,
    /// An amount of points: a whole number in `1..=`[`MAX_AMOUNT`].
    Amount,
    /// A count of copies: a whole number in `1..=`[`u32::MAX`].
    Count,
    /// An instant: milliseconds since 1970-01-01T00:00:00Z (UTC), a whole number from 1 to
    /// [`MAX_AMOUNT`].
    Instant,
    /// A yes/no switch: `true` or `false`.
    Flag,
    /// A document (a rules file): text of at most [`MAX_DOCUMENT_LEN`](crate::ids::MAX_DOCUMENT_LEN) bytes, not empty.
    Document,
}

/// One field of a command.
#[derive(Debug, Serialize)]
pub struct FieldSpec {
    /// Its name in snake_case, as in JSON (`book_id`).
    pub name: &'static str,
    /// What it holds.
    pub kind: FieldKind,
    /// Whether it may be left out.
    pub optional: bool,
    /// What it means.
    #[serde(serialize_with = "trimmed")]
    pub doc: &'static str,
}

/// Doc comments come with the space after `///`; the schema leaves it out.
fn trimmed<S: serde::Serializer>(doc: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(doc.trim())
}

/// One command, as data: what the bindings' generated methods and types are made from.
#[derive(Debug, Serialize)]
pub struct CommandSpec {
    /// Its name in snake_case, as in JSON (`reserve_book`).
    pub name: &'static str,
    /// What it does and who may send it.
    #[serde(serialize_with = "trimmed")]
    pub doc: &'static str,
    /// Its fields, required ones first, in the order the bindings take them.
    pub fields: &'static [FieldSpec],
}

/// Left out of the JSON form: an absent optional field (so adding one to a command changes no
/// existing command's fingerprint), or an empty required one (which `validate` refuses anyway).
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The Rust type of a field kind.
macro_rules! field_type {
    (Id) => { String };
    (Text) => { String };
    (Note) => { String };
    (Document) => { String };
    (Amount) => { u64 };
    (Instant) => { u64 };
    (Count) => { u32 };
    (Flag) => { bool };
    (Option<$kind:ident>) => { Option<field_type!($kind)> };
}

/// The kind and optionality of a field type.
macro_rules! field_spec {
    ($kind:ident) => {
        (FieldKind::$kind, false)
    };
    (Option<$kind:ident>) => {
        (FieldKind::$kind, true)
    };
}

/// Defines [`Command`] and [`Command::SPECS`] from one table: adding a command here (and its
/// route in the library) is all the bindings need.
macro_rules! commands {
    ($(
        #[doc = $doc:literal]
        $variant:ident = $name:literal {
            $( #[doc = $fdoc:literal] $field:ident : $ty:ident $(< $inner:ident >)? ),* $(,)?
        }
    )*) => {
        /// A caller's command. The JSON form is `{"command": "reserve_book", "book_id": …}`.
        ///
        /// Every field may be left out of the JSON form: an optional one is then `None`, a
        /// required one empty or zero, which [`validate`](Command::validate) refuses. Absent
        /// optional fields are left out when it is written.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "command", deny_unknown_fields)]
        pub enum Command {
            $(
                #[doc = $doc]
                #[serde(rename = $name)]
                $variant {
                    $(
                        #[doc = $fdoc]
                        #[serde(default, skip_serializing_if = "is_default")]
                        $field: field_type!($ty $(< $inner >)?),
                    )*
                },
            )*
        }

        impl Command {
            /// Every command as data, in catalogue order.
            pub const SPECS: &'static [CommandSpec] = &[
                $( CommandSpec {
                    name: $name,
                    doc: $doc,
                    fields: &[ $( {
                        let (kind, optional) = field_spec!($ty $(< $inner >)?);
                        FieldSpec { name: stringify!($field), kind, optional, doc: $fdoc }
                    }, )* ],
                }, )*
            ];

            /// This command's spec.
            pub fn spec(&self) -> &'static CommandSpec {
                let name = match self { $( Command::$variant { .. } => $name, )* };
                // Every variant has its spec: both come from the same table.
                Self::SPECS.iter().find(|s| s.name == name).unwrap_or(&Self::SPECS[0])
            }

            /// The command's name in snake_case, as in JSON.
            pub fn name(&self) -> &'static str {
                match self { $( Command::$variant { .. } => $name, )* }
            }

            /// The command `name`d, from its fields' values in the order of its spec once
            /// [`check_fields`] has passed them: each value is moved out of its slot, with no
            /// second pass through serde. `None` if a field is not what the check let through
            /// (never, as both follow the same table).
            fn from_checked(name: &str, slots: &mut [Option<Value>]) -> Option<Command> {
                match name {
                    $( $name => {
                        // The spec lists the fields in the order the table declares them, and
                        // a struct expression's fields are evaluated in the order written.
                        let mut _slot = slots.iter_mut();
                        Some(Command::$variant {
                            $( $field: Checked::take(_slot.next()?.take())?, )*
                        })
                    } )*
                    _ => None,
                }
            }

            /// Checks the input rules every command shares, field by field from the table: ids
            /// well formed, texts bounded, amounts in `1..=`[`MAX_AMOUNT`].
            pub fn validate(&self) -> Result<(), Error> {
                match self {
                    $( Command::$variant { $($field),* } => {
                        $( FieldValue::check($field, stringify!($field), field_spec!($ty $(< $inner >)?).0)
                            .map_err(Error::InvalidInput)?; )*
                    } )*
                }
                Ok(())
            }
        }
    };
}

commands! {
    /// Put a title in the catalogue (librarian).
    RegisterBook = "register_book" {
        /// New book id (e.g. an ISBN).
        book_id: Id,
        /// Title.
        title: Text,
        /// Copies on the shelf, at least 1.
        copies: Count,
        /// Rental fee in points, at least 1.
        fee: Amount,
        /// Author.
        author: Option<Note>,
        /// Item type for the circulation rules (`book`, `dvd`, …); without one only the rules' `*` rows apply.
        item_type: Option<Id>,
        /// The branch its copies belong to (their loans follow that branch's rules and calendar unless lent elsewhere); none: the rules' `*`.
        branch: Option<Id>,
    }
    /// Stock more copies (librarian).
    AddCopies = "add_copies" {
        /// Book id.
        book_id: Id,
        /// How many, at least 1.
        copies: Count,
    }
    /// Register a member (librarian, or the person themselves); opens their point account with the welcome points.
    JoinMember = "join_member" {
        /// New member id.
        member_id: Id,
        /// Name.
        name: Text,
        /// Phone or e-mail for notices.
        contact: Option<Note>,
        /// Group for the circulation rules (`adult`, `student`, …; a librarian's to give); without one only the rules' `*` rows apply.
        group: Option<Id>,
    }
    /// Add points to a member's point account (librarian).
    TopUp = "top_up" {
        /// Member id.
        member_id: Id,
        /// How many, at least 1.
        points: Amount,
    }
    /// Reserve a book, paying its fee now (the member, or a librarian for them).
    ReserveBook = "reserve_book" {
        /// Book id.
        book_id: Id,
        /// Member id.
        member_id: Id,
        /// Rental id to use; derived from the command id when absent (so a retry names the same rental).
        rental_id: Option<Id>,
        /// Deliver to this address; pick up in person when absent.
        delivery_address: Option<Text>,
        /// When no copy is free, join the title's hold queue (the fee is paid now and refunded if the hold is cancelled or expires unfilled) instead of failing.
        wait: Option<Flag>,
    }
    /// Queue for a title (the member, or a librarian for them): the fee is paid now; the next copy returned is held for the first in line on the pickup shelf. Refused when the member already has the title.
    PlaceHold = "place_hold" {
        /// Book id.
        book_id: Id,
        /// Member id.
        member_id: Id,
        /// Hold id (the hold is a rental that waits; this is its rental id); derived from the command id when absent.
        hold_id: Option<Id>,
        /// The branch to collect it at; defaults to the book's branch.
        pickup_branch: Option<Id>,
        /// The member no longer wants it after this instant (ms since 1970, UTC): still waiting then, it is cancelled and refunded.
        not_needed_after: Option<Instant>,
        /// Hold this copy (its number, 1 for the first) rather than any copy of the title; a lost or withdrawn copy cannot be held.
        copy: Option<Count>,
    }
    /// Cancel a hold, waiting or on the pickup shelf (its member, or a librarian); the fee is refunded and the next in line moves up.
    CancelHold = "cancel_hold" {
        /// Hold id.
        hold_id: Id,
        /// Why; defaults to `canceled by member` / `canceled by librarian`.
        reason: Option<Note>,
    }
    /// Move a waiting hold to another place in its title's queue (librarian).
    ReorderQueue = "reorder_queue" {
        /// Book id.
        book_id: Id,
        /// Hold id.
        hold_id: Id,
        /// Its new position: 1 is first in line, at most the queue's length.
        position: Count,
    }
    /// Take a copy that is on the shelf out of the collection (librarian): it is never lent or held again.
    WithdrawCopy = "withdraw_copy" {
        /// Book id.
        book_id: Id,
        /// The copy's number (1 for the first).
        copy: Count,
    }
    /// Collect a hold from the pickup shelf: the loan starts (only its member, or a librarian for them).
    CollectHold = "collect_hold" {
        /// Hold id.
        hold_id: Id,
        /// The branch lending it; defaults to the hold's pickup branch.
        branch: Option<Id>,
        /// A librarian's reason to lend although the member is blocked (recorded as BlockOverridden).
        override_reason: Option<Text>,
    }
    /// Pick up a confirmed rental (the member, or a librarian for them).
    StartLoan = "start_loan" {
        /// Rental id.
        rental_id: Id,
        /// The branch lending it (its rules and calendar decide the due date); defaults to the book's branch.
        branch: Option<Id>,
        /// A librarian's reason to lend although the member is blocked (recorded as BlockOverridden).
        override_reason: Option<Text>,
    }
    /// Bring a loan back (the member, or a librarian for them). Never blocked.
    ReturnBook = "return_book" {
        /// Rental id.
        rental_id: Id,
        /// When the book really came back (ms since 1970, UTC), for a drop box emptied later: fines count to then. Not in the future, not before the loan started.
        returned_at: Option<Instant>,
    }
    /// Cancel a reservation; the refund, the copy's release and the delivery's cancellation follow.
    CancelRental = "cancel_rental" {
        /// Rental id.
        rental_id: Id,
        /// Why; defaults to `canceled by member` / `canceled by librarian`.
        reason: Option<Note>,
    }
    /// Extend a loan by its loan period, from the due date or from now as its loan policy says; refused over the renewal limit, when the member is blocked, or when the due date would not move.
    RenewLoan = "renew_loan" {
        /// Rental id.
        rental_id: Id,
        /// A librarian's reason to renew although the member is blocked (recorded as BlockOverridden).
        override_reason: Option<Text>,
    }
    /// Record that a delivery arrived (librarian); the loan starts.
    MarkDelivered = "mark_delivered" {
        /// Rental id.
        rental_id: Id,
    }
    /// Pay a member's fees, oldest first (the member from their points, or a librarian).
    PayFees = "pay_fees" {
        /// Member id.
        member_id: Id,
        /// Points to pay, at most what is owed.
        amount: Amount,
        /// `points` (the default: from the member's point account) or `external` (paid at the desk; librarian).
        paid_from: Option<Id>,
    }
    /// Waive what is left of a fee (librarian).
    WaiveFee = "waive_fee" {
        /// Member id.
        member_id: Id,
        /// The fee's id (`RENTAL:overdue`, as in FeeCharged).
        fee_id: Id,
        /// Why.
        reason: Text,
    }
    /// Block a member from borrowing, renewing and reserving (librarian).
    BlockMember = "block_member" {
        /// Member id.
        member_id: Id,
        /// Why.
        reason: Text,
    }
    /// Lift a member's manual block (librarian).
    UnblockMember = "unblock_member" {
        /// Member id.
        member_id: Id,
    }
    /// Replace the circulation rules (librarian): a rules table in TOML or JSON (see docs/rules.md), checked before it is stored; each change gets the next version.
    ChangeCirculationRules = "change_circulation_rules" {
        /// The rules file's text.
        rules: Document,
        /// `toml` (the default) or `json`.
        format: Option<Id>,
    }
}

impl Command {
    /// The rental the command names, if it names one (`reserve_book` only when given one).
    pub fn rental_id(&self) -> Option<&str> {
        match self {
            Command::StartLoan { rental_id, .. }
            | Command::ReturnBook { rental_id, .. }
            | Command::RenewLoan { rental_id, .. }
            | Command::MarkDelivered { rental_id }
            | Command::CancelRental { rental_id, .. } => Some(rental_id),
            Command::ReserveBook { rental_id, .. } => rental_id.as_deref(),
            Command::PlaceHold { hold_id, .. } => hold_id.as_deref(),
            Command::CancelHold { hold_id, .. }
            | Command::ReorderQueue { hold_id, .. }
            | Command::CollectHold { hold_id, .. } => Some(hold_id),
            Command::RegisterBook { .. }
            | Command::AddCopies { .. }
            | Command::WithdrawCopy { .. }
            | Command::JoinMember { .. }
            | Command::TopUp { .. }
            | Command::PayFees { .. }
            | Command::WaiveFee { .. }
            | Command::BlockMember { .. }
            | Command::UnblockMember { .. }
            | Command::ChangeCirculationRules { .. } => None,
        }
    }

    /// A command from its JSON form (`{"command": "reserve_book", "book_id": …}`), as bindings
    /// and files send it: a malformed one (an unknown command or field, a boolean where a number
    /// belongs, a number past `u64`, a lone surrogate) is `INVALID_INPUT`, and the command is
    /// [validated](Command::validate).
    pub fn from_json(text: &str) -> Result<Command, Error> {
        serde_json::from_str::<CommandJson<'_>>(text)
            .map_err(not_a_command)?
            .into_command()
    }

    /// [`from_json`](Command::from_json) for an already parsed JSON value. Every field is
    /// checked against the command's spec before it is converted, so the error names the field.
    pub fn from_json_value(value: Value) -> Result<Command, Error> {
        let Value::Object(mut fields) = value else {
            return Self::from_fields(None, std::iter::empty::<(&str, Value)>());
        };
        let command = fields.remove("command");
        Self::from_fields(command.as_ref(), fields)
    }

    /// The command that `command` (the JSON form's `"command"` value: its name) names, from
    /// its other fields as a binding reads them off a caller's dict or object — the same checks
    /// and messages as [`from_json_value`](Command::from_json_value), without building a JSON
    /// object first. An unknown field is `INVALID_INPUT` naming it; a `"command"` among
    /// `fields` is passed over. Of a field given twice, the last counts.
    pub fn from_fields<K: AsRef<str>>(
        command: Option<&Value>,
        fields: impl IntoIterator<Item = (K, Value)>,
    ) -> Result<Command, Error> {
        let name = command.and_then(Value::as_str);
        let Some(spec) = Self::SPECS.iter().find(|s| Some(s.name) == name) else {
            let names: Vec<_> = Self::SPECS.iter().map(|s| s.name).collect();
            return Err(Error::InvalidInput(format!(
                "not a command: {} is not one of {}",
                command.map_or("a missing \"command\"".into(), Value::to_string),
                names.join(", ")
            )));
        };
        // One slot per field of the spec, in its order.
        let mut slots = [const { None }; MAX_FIELDS];
        let slots = &mut slots[..spec.fields.len()];
        for (key, value) in fields {
            let key = key.as_ref();
            match spec.fields.iter().position(|f| f.name == key) {
                Some(i) => slots[i] = Some(value),
                None if key == "command" => {}
                None => {
                    let names: Vec<_> = spec.fields.iter().map(|f| f.name).collect();
                    return Err(Error::InvalidInput(format!(
                        "{} has no field {key:?}; its fields are {}",
                        spec.name,
                        names.join(", ")
                    )));
                }
            }
        }
        check_fields(spec, slots).map_err(Error::InvalidInput)?;
        Self::from_checked(spec.name, slots).ok_or_else(|| {
            Error::Internal(format!(
                "{} passed the field check but could not be read",
                spec.name
            ))
        })
    }

    /// What this command, sent by `actor`, is: a stable digest of its JSON form and the actor.
    /// A command id is recorded with the fingerprint of the command that first used it, so a
    /// retry (same fingerprint) returns the first outcome and a different command under the
    /// same id is refused with `COMMAND_ID_REUSED`.
    pub fn fingerprint(&self, actor: &Actor) -> String {
        thread_local! {
            /// The command's JSON text, written into a buffer kept for the next command.
            static JSON: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let digest = |json: &[u8]| {
            let [kind, id] = actor.text_pieces();
            // `digest(&["command", &actor.to_string(), json])`, without building the texts.
            crate::ids::Digest::new()
                .part(&[b"command"])
                .part(&[kind.as_bytes(), id.as_bytes()])
                .part(&[json])
                .finish()
        };
        // Serializing a plain enum of strings and integers cannot fail; an empty text would
        // only make every such command share one fingerprint, never panic.
        JSON.with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut json) => {
                json.clear();
                if serde_json::to_writer(&mut *json, self).is_err() {
                    json.clear();
                }
                let fingerprint = digest(&json);
                // A rules document can be a megabyte: such a buffer is not kept.
                if json.capacity() > 1 << 16 {
                    *json = Vec::new();
                }
                fingerprint
            }
            Err(_) => digest(&serde_json::to_vec(self).unwrap_or_default()),
        })
    }
}

/// A command's JSON form as read off a text, not yet checked: its `"command"` value and its
/// other fields in the order they came, their names borrowed from the text where they can be.
///
/// Reading one builds no JSON object (no map, no owned field names): a binding that receives
/// commands as JSON text — one, or a batch of them in one text — deserializes each into a
/// `CommandJson` and turns it into a [`Command`] with
/// [`into_command`](CommandJson::into_command), which checks every field and words every
/// refusal as [`Command::from_json_value`] does. Any JSON value can be read as one (what is not
/// an object is refused by `into_command` as a command without a `"command"`), so one bad
/// command in a batch does not make the whole text unreadable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandJson<'a> {
    /// The `"command"` value (its name), if there is one; of two, the last.
    command: Option<Value>,
    /// Every other field, in the order of the text.
    fields: Vec<(Cow<'a, str>, Value)>,
}

impl CommandJson<'_> {
    /// The command these fields name, checked as [`Command::from_fields`] checks it: an
    /// unknown command or field, or a field of the wrong kind, is `INVALID_INPUT` naming it.
    pub fn into_command(self) -> Result<Command, Error> {
        Command::from_fields(self.command.as_ref(), self.fields)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for CommandJson<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CommandJsonVisitor(std::marker::PhantomData))
    }
}

/// Reads an object field by field; any other JSON value reads as no fields at all.
struct CommandJsonVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for CommandJsonVisitor<'a> {
    type Value = CommandJson<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a command: an object with a \"command\" and its fields")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut read = CommandJson {
            command: None,
            fields: Vec::with_capacity(map.size_hint().unwrap_or(4)),
        };
        while let Some(FieldName(name)) = map.next_key()? {
            let value: Value = map.next_value()?;
            if name == "command" {
                read.command = Some(value);
            } else {
                read.fields.push((name, value));
            }
        }
        Ok(read)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(CommandJson::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(CommandJson::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(CommandJson::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(CommandJson::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(CommandJson::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(CommandJson::default())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(CommandJson::default())
    }
}

/// A field's name, borrowed from the text unless it had to be unescaped.
struct FieldName<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for FieldName<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Name<'a> {
            type Value = FieldName<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Borrowed(name)))
            }
            fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Owned(name.to_owned())))
            }
            fn visit_string<E>(self, name: String) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(Name(std::marker::PhantomData))
    }
}

/// A field's Rust value from its JSON value, once [`check_fields`] has passed it (`None`: not
/// what the check lets through). An absent or `null` optional field is `None`.
trait Checked: Sized {
    fn take(value: Option<Value>) -> Option<Self>;
}

impl Checked for String {
    fn take(value: Option<Value>) -> Option<Self> {
        match value? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Checked for u64 {
    fn take(value: Option<Value>) -> Option<Self> {
        value?.as_u64()
    }
}

impl Checked for u32 {
    fn take(value: Option<Value>) -> Option<Self> {
        u32::try_from(value?.as_u64()?).ok()
    }
}

impl Checked for bool {
    fn take(value: Option<Value>) -> Option<Self> {
        value?.as_bool()
    }
}

impl<T: Checked> Checked for Option<T> {
    fn take(value: Option<Value>) -> Option<Self> {
        match value {
            None | Some(Value::Null) => Some(None),
            v => T::take(v).map(Some),
        }
    }
}

/// A field's value, checked by the rule of its kind (the same rules [`check_fields`] applies to
/// the JSON form).
trait FieldValue {
    fn check(&self, name: &str, kind: FieldKind) -> Result<(), String>;
}

impl FieldValue for String {
    fn check(&self, name: &str, kind: FieldKind) -> Result<(), String> {
        match kind {
            FieldKind::Id => validate_id(name, self),
            FieldKind::Text => validate_text(name, self, true),
            FieldKind::Document => validate_document(name, self),
            FieldKind::Note
            | FieldKind::Amount
            | FieldKind::Count
            | FieldKind::Instant
            | FieldKind::Flag => validate_text(name, self, false),
        }
    }
}

impl FieldValue for u64 {
    fn check(&self, name: &str, _: FieldKind) -> Result<(), String> {
        validate_amount(name, *self)
    }
}

impl FieldValue for bool {
    fn check(&self, _: &str, _: FieldKind) -> Result<(), String> {
        Ok(())
    }
}

impl FieldValue for u32 {
    fn check(&self, name: &str, _: FieldKind) -> Result<(), String> {
        validate_amount(name, u64::from(*self))
    }
}

impl<T: FieldValue> FieldValue for Option<T> {
    fn check(&self, name: &str, kind: FieldKind) -> Result<(), String> {
        self.as_ref().map_or(Ok(()), |v| v.check(name, kind))
    }
}

/// The most fields a command has: the size of [`Command::from_fields`]' slots.
const MAX_FIELDS: usize = {
    let mut most = 0;
    let mut i = 0;
    while i < Command::SPECS.len() {
        if Command::SPECS[i].fields.len() > most {
            most = Command::SPECS[i].fields.len();
        }
        i += 1;
    }
    most
};

/// Checks a command's field values (`slots`, in the order of its spec) against the spec,
/// naming the field at fault: a missing required one, a value of the wrong type or out of range.
fn check_fields(spec: &CommandSpec, slots: &[Option<Value>]) -> Result<(), String> {
    for (field, slot) in spec.fields.iter().zip(slots) {
        let name = field.name;
        let value = match slot {
            None | Some(Value::Null) if field.optional => continue,
            None | Some(Value::Null) => return Err(format!("{} needs {name}", spec.name)),
            Some(v) => v,
        };
        match field.kind {
            FieldKind::Id | FieldKind::Text | FieldKind::Note | FieldKind::Document => {
                let Value::String(text) = value else {
                    return Err(format!("{name} must be a string, not {}", json_type(value)));
                };
                match field.kind {
                    FieldKind::Id => validate_id(name, text)?,
                    FieldKind::Text => validate_text(name, text, true)?,
                    FieldKind::Document => validate_document(name, text)?,
                    _ => validate_text(name, text, false)?,
                }
            }
            FieldKind::Flag => {
                if !value.is_boolean() {
                    return Err(format!(
                        "{name} must be true or false, not {}",
                        shown(value)
                    ));
                }
            }
            FieldKind::Amount | FieldKind::Count | FieldKind::Instant => {
                let max = if field.kind == FieldKind::Count {
                    u64::from(u32::MAX)
                } else {
                    MAX_AMOUNT
                };
                match value.as_u64() {
                    Some(n) if n <= max => validate_amount(name, n)?,
                    Some(n) if field.kind != FieldKind::Count => validate_amount(name, n)?,
                    _ => {
                        return Err(format!(
                            "{name} is {}, but {name} must be a whole number from 1 to {max}",
                            shown(value)
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => json_type(other).to_owned(),
    }
}

fn not_a_command(e: serde_json::Error) -> Error {
    Error::InvalidInput(format!("not a command: {e}"))
}

/// What a successful command returns: the events it stored (or, for a re-sent command id, the events it stored the first time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The command's id (given or generated); send it again to retry safely.
    pub command_id: CommandId,
    /// The rental the command was about, when there is one (for `reserve_book`: the new rental's id).
    pub rental_id: Option<RentalId>,
    /// The stored events with their positions and versions, in position order. Empty when the command changed nothing.
    pub events: Vec<Envelope>,
}

impl Outcome {
    /// The type names of the stored events.
    pub fn types(&self) -> Vec<&'static str> {
        self.events.iter().map(Envelope::type_name).collect()
    }

    /// The JSON form: `command_id`, `rental_id` (null when none) and `events`, each in its
    /// wire form ([`Envelope::to_json`]).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "command_id": self.command_id.as_str(),
            "rental_id": self.rental_id.as_ref().map(ToString::to_string),
            "events": self.events.iter().map(Envelope::to_json).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_spec_round_trips_through_the_enum() {
        for spec in Command::SPECS {
            let mut value = json!({ "command": spec.name });
            for f in spec.fields {
                value[f.name] = match f.kind {
                    FieldKind::Amount | FieldKind::Count | FieldKind::Instant => json!(3),
                    FieldKind::Flag => json!(true),
                    _ => json!(format!("{}-1", f.name)),
                };
            }
            let command = Command::from_json_value(value.clone())
                .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
            assert_eq!(command.name(), spec.name);
            assert_eq!(command.spec().name, spec.name);
            assert_eq!(
                serde_json::to_value(&command).unwrap(),
                value,
                "{}",
                spec.name
            );
            command.validate().unwrap();
        }
    }

    #[test]
    fn fields_are_read_as_serde_reads_them() {
        // `from_json_value` moves each checked field out of the map itself; serde's reading of
        // the same JSON is the reference, with every field, with the required ones only, and
        // with the optional ones null.
        for spec in Command::SPECS {
            for shape in ["all", "required", "null"] {
                let mut value = json!({ "command": spec.name });
                for f in spec.fields {
                    if f.optional && shape == "required" {
                        continue;
                    }
                    value[f.name] = match f.kind {
                        _ if f.optional && shape == "null" => Value::Null,
                        FieldKind::Count => json!(u32::MAX),
                        FieldKind::Amount | FieldKind::Instant => json!(MAX_AMOUNT),
                        FieldKind::Flag => json!(false),
                        _ => json!(format!("{} é 1", f.name)),
                    };
                }
                let ours = Command::from_json_value(value.clone())
                    .unwrap_or_else(|e| panic!("{} ({shape}): {e}", spec.name));
                let serde: Command = serde_json::from_value(value).unwrap();
                assert_eq!(ours, serde, "{} ({shape})", spec.name);
            }
        }
    }

    #[test]
    fn fields_given_one_by_one_read_as_the_json_form() {
        // `from_fields` is what the bindings call with a caller's dict or object: the fields in
        // whatever order the caller wrote them, `"command"` possibly among them.
        let json = json!({"command": "reserve_book", "book_id": "b-1", "member_id": "m-1",
            "rental_id": "r-1", "delivery_address": null, "wait": true});
        let expected = Command::from_json_value(json.clone()).unwrap();
        let name = json!("reserve_book");
        let mut fields: Vec<(String, Value)> = json
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.reverse();
        assert_eq!(
            Command::from_fields(Some(&name), fields.clone()).unwrap(),
            expected
        );
        // Of a field given twice, the last counts.
        let twice = [
            ("book_id", json!("b-0")),
            ("book_id", json!("b-1")),
            ("member_id", json!("m-1")),
        ];
        let Command::ReserveBook { book_id, .. } =
            Command::from_fields(Some(&name), twice).unwrap()
        else {
            panic!("not a reservation");
        };
        assert_eq!(book_id, "b-1");
        // The checks and their messages are the JSON form's.
        let unknown = [
            ("book_id", json!("b-1")),
            ("member_id", json!("m-1")),
            ("copy", json!(1)),
        ];
        let err = Command::from_fields(Some(&name), unknown).unwrap_err();
        assert!(
            err.to_string()
                .contains("reserve_book has no field \"copy\""),
            "{err}"
        );
        let missing = [("book_id", json!("b-1"))];
        let err = Command::from_fields(Some(&name), missing).unwrap_err();
        assert!(
            err.to_string().contains("reserve_book needs member_id"),
            "{err}"
        );
        let err = Command::from_fields(None, fields).unwrap_err();
        assert!(err.to_string().contains("a missing \"command\""), "{err}");
        let err = Command::from_json_value(json!(["reserve_book"])).unwrap_err();
        assert!(err.to_string().contains("a missing \"command\""), "{err}");
    }

    #[test]
    fn a_fingerprint_is_the_digest_of_the_actor_and_the_json_text() {
        // Fingerprints are stored in command records: the way they are computed may change,
        // what they are may not.
        let commands = [
            json!({"command": "reserve_book", "book_id": "b-1", "member_id": "m-1"}),
            json!({"command": "top_up", "member_id": "m-é", "points": 12}),
            json!({"command": "register_book", "book_id": "b\"2", "title": "T", "copies": 1, "fee": 3}),
        ];
        let actors = [
            Actor::member("m-1"),
            Actor::librarian("lib \u{1F600}"),
            Actor::System,
        ];
        for value in commands {
            let command = Command::from_json_value(value).unwrap();
            for actor in &actors {
                let json = serde_json::to_string(&command).unwrap();
                let plain = crate::ids::digest(&["command", &actor.to_string(), &json]);
                assert_eq!(command.fingerprint(actor), plain);
            }
        }
        assert_eq!(
            Command::from_json(r#"{"command":"unblock_member","member_id":"m-1"}"#)
                .unwrap()
                .fingerprint(&Actor::librarian("lib-1")),
            crate::ids::digest(&[
                "command",
                "librarian:lib-1",
                r#"{"command":"unblock_member","member_id":"m-1"}"#
            ])
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                json!({"command": "top_up", "member_id": "m-1", "points": true}),
                "points must be a whole number",
            ),
            (
                json!({"command": "top_up", "member_id": "m-1", "points": 1.5}),
                "points must be a whole number",
            ),
            (
                json!({"command": "top_up", "member_id": "m-1", "points": -1}),
                "points must be a whole number",
            ),
            (
                json!({"command": "top_up", "member_id": "m-1", "points": 9_007_199_254_740_992_u64}),
                "largest amount",
            ),
            (
                json!({"command": "top_up", "member_id": "m-1"}),
                "top_up needs points",
            ),
            (
                json!({"command": "top_up", "member_id": 5, "points": 1}),
                "member_id must be a string",
            ),
            (
                json!({"command": "top_up", "member_id": "m-1", "points": 1, "x": 1}),
                "no field \"x\"",
            ),
            (
                json!({"command": "add_copies", "book_id": "b", "copies": 4_294_967_296_u64}),
                "copies must be a whole number from 1 to 4294967295",
            ),
            (json!({"command": "nope"}), "is not one of"),
            (json!({"book_id": "b"}), "a missing \"command\""),
        ];
        for (value, says) in cases {
            let err = Command::from_json_value(value.clone()).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput);
            assert!(err.to_string().contains(says), "{value}: {err}");
            // The text read field by field says the same.
            let text = Command::from_json(&value.to_string()).unwrap_err();
            assert_eq!(text.to_string(), err.to_string(), "{value}");
        }
    }

    #[test]
    fn a_text_read_field_by_field_is_the_json_value_read_whole() {
        // Good and bad commands, escaped names and values, a name given twice (the last
        // counts), a "command" given twice, and values that are not objects at all.
        let texts = [
            r#"{"command":"reserve_book","book_id":"b-1","member_id":"m-1","rental_id":"r-1"}"#,
            r#"{"member_id":"m-1","command":"top_up","points":3}"#,
            r#"{"command":"top_up","member_id":"m-1","points":3,"points":4}"#,
            r#"{"command":"nope","command":"top_up","member_id":"m-1","points":3}"#,
            r#"{"command":"top_up","command":"nope","member_id":"m-1","points":3}"#,
            r#"{"comm\u0061nd":"top_up","member\u005fid":"m\"1","points":3}"#,
            r#"{"command":"register_book","book_id":"b\u00e9","title":"\ud83d\ude00","copies":1,"fee":0}"#,
            r#"{"command":"top_up","member_id":"m-1","points":3,"nested":{"a":[1,2]}}"#,
            r#"{"command":"top_up","member_id":null,"points":3}"#,
            r#"{"command":5,"member_id":"m-1"}"#,
            r#"{}"#,
            r#"[{"command":"top_up","member_id":"m-1","points":3}]"#,
            r#""top_up""#,
            r#"7"#,
            r#"-7"#,
            r#"7.5"#,
            r#"true"#,
            r#"null"#,
        ];
        for text in texts {
            let whole = Command::from_json_value(serde_json::from_str(text).unwrap());
            let by_field = Command::from_json(text);
            match (&whole, &by_field) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
                _ => panic!("{text}: {whole:?} against {by_field:?}"),
            }
            // Inside a larger text, as a batch carries it, the same.
            let batch = format!("[{text},{text}]");
            let read: Vec<CommandJson<'_>> = serde_json::from_str(&batch).unwrap();
            assert_eq!(read.len(), 2, "{text}");
            for one in read {
                let b = one.into_command();
                assert_eq!(format!("{whole:?}"), format!("{b:?}"), "{text}");
            }
        }
        // A text that is not JSON, or a lone surrogate, is refused as not a command.
        for text in [
            r#"{"command":"top_up""#,
            r#"{"command":"\ud800"}"#,
            "",
            "{} {}",
        ] {
            let err = Command::from_json(text).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput, "{text}");
            assert!(err.to_string().contains("not a command: "), "{text}: {err}");
        }
        // Names are borrowed from the text unless they had to be unescaped.
        let text = r#"{"command":"top_up","member_id":"m-1","p\u006fints":3}"#;
        let read: CommandJson<'_> = serde_json::from_str(text).unwrap();
        assert!(matches!(read.fields[0].0, Cow::Borrowed("member_id")));
        assert!(matches!(&read.fields[1].0, Cow::Owned(n) if n == "points"));
    }
}
