//! Stored events: the [`Event`] union of every aggregate's events, the [`Envelope`] around each
//! stored one, and the versioned JSON form they take on the wire and on disk.

use crate::aggregate::Aggregate;
use crate::catalog::BookEvent;
use crate::circulation::RulesEvent;
use crate::deliveries::DeliveryEvent;
use crate::ids::{Actor, CommandId, StreamId, StreamKind, Timestamp};
use crate::members::MemberEvent;
use crate::points::PointsEvent;
use crate::rentals::RentalEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) mod compact;
pub use compact::COMPACT_TAG;

/// Defines an aggregate's event enum (tagged by `type` in JSON) with its `TYPES` list and
/// `type_name()`, from the variants alone: an event type is named once.
macro_rules! event_enum {
    (
        $(#[doc = $doc:literal])*
        pub enum $name:ident {
            $( $(#[doc = $vdoc:literal])* $variant:ident {
                $( $(#[$fattr:meta])* $field:ident : $fty:ty ),* $(,)?
            } ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type")]
        pub enum $name {
            $( $(#[doc = $vdoc])* $variant { $( $(#[$fattr])* $field: $fty ),* }, )*
        }

        impl $name {
            /// Every event type name of this aggregate, in declaration order. Stable API.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($variant)),*];

            /// The event's type name, past tense: `"RentalReserved"`. Stable API.
            pub fn type_name(&self) -> &'static str {
                match self { $( Self::$variant { .. } => stringify!($variant), )* }
            }

            /// The event type's position in [`TYPES`](Self::TYPES): what the compact form's
            /// header stores instead of the name (the order is pinned by a test, see
            /// `event/compact.rs`). Computed when lendkit is built.
            pub(crate) fn type_index(&self) -> usize {
                match self { $( Self::$variant { .. } => {
                    const AT: usize = $crate::event::compact::position_of($name::TYPES, stringify!($variant));
                    AT
                } )* }
            }

            /// The event of type `type_name` from its payload's JSON text (the fields without
            /// `type`): what the tagged form decodes to, read in one pass — no tag to look for,
            /// nothing buffered. Used when a stored event is read.
            pub(crate) fn from_payload_str(
                type_name: &str,
                payload: &str,
            ) -> Result<Self, serde_json::Error> {
                match type_name {
                    $( stringify!($variant) => {
                        #[derive(serde::Deserialize)]
                        struct Payload { $( $(#[$fattr])* $field: $fty ),* }
                        let p: Payload = serde_json::from_str(payload)?;
                        Ok(Self::$variant { $( $field: p.$field ),* })
                    } )*
                    other => Err(<serde_json::Error as serde::de::Error>::unknown_variant(
                        other,
                        Self::TYPES,
                    )),
                }
            }

            /// Each event type's field names, in the order the compact form's binary payload
            /// writes them (declaration order). Pinned by a test: see `event/compact.rs`.
            pub(crate) const FIELDS: &'static [(&'static str, &'static [&'static str])] =
                &[$( (stringify!($variant), &[$(stringify!($field)),*]) ),*];

            /// Appends the event's fields to the compact form's binary payload, in
            /// declaration order.
            pub(crate) fn write_fields(&self, out: &mut $crate::event::compact::Out<'_>) {
                match self {
                    $( Self::$variant { $($field),* } => {
                        $( $crate::event::compact::Field::put($field, out); )*
                    } )*
                }
            }

            /// The event of type `type_name` read from the compact form's binary payload.
            pub(crate) fn read_fields(
                type_name: &str,
                r: &mut $crate::event::compact::Reader<'_>,
            ) -> Result<Self, String> {
                match type_name {
                    $( stringify!($variant) => Ok(Self::$variant {
                        $( $field: $crate::event::compact::Field::get(r)? ),*
                    }), )*
                    other => Err(format!("unknown event type {other:?}")),
                }
            }
        }
    };
}
pub(crate) use event_enum;

/// The payload schema version lendkit writes today. Older payloads are upcast on read;
/// newer ones are refused with a clear error instead of being misread.
pub const SCHEMA_VERSION: u32 = 1;

/// The table of aggregates: one row per aggregate — its [`Event`] variant, state type, event
/// and error types, and stream kind. It generates the [`Event`] union and its conversions,
/// [`Event::kind`], [`Event::type_name`], [`Event::types`] (the list the policy table and the
/// schema are checked against) and [`Stored`], which ties each aggregate to the union. The
/// aggregates themselves know nothing of the union: they depend only on ids, codes and the
/// [`Aggregate`] trait.
macro_rules! aggregates {
    ($( $(#[doc = $doc:literal])* $variant:ident => $state:ty, $event:ident, $error:ty, $kind:ident; )*) => {
        /// Any domain event, tagged by the aggregate it belongs to.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Event {
            $( $(#[doc = $doc])* $variant($event), )*
        }

        $(
            impl From<$event> for Event {
                fn from(e: $event) -> Self {
                    Event::$variant(e)
                }
            }

            impl Stored for $state {
                fn own_event(event: &Event) -> Option<&$event> {
                    match event {
                        Event::$variant(e) => Some(e),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )*

        impl Event {
            /// The kind of stream this event lives in.
            pub fn kind(&self) -> StreamKind {
                match self { $( Event::$variant(_) => StreamKind::$kind, )* }
            }

            /// The event's type name, past tense: `"RentalReserved"`. Stable API.
            pub fn type_name(&self) -> &'static str {
                match self { $( Event::$variant(e) => e.type_name(), )* }
            }

            /// Every event type with the kind of stream it lives in, aggregate by aggregate.
            pub fn types() -> impl Iterator<Item = (StreamKind, &'static str)> {
                [$( (StreamKind::$kind, $event::TYPES), )*]
                    .into_iter()
                    .flat_map(|(kind, types)| types.iter().map(move |t| (kind, *t)))
            }

            /// Every stream kind, in table order.
            pub const KINDS: &'static [StreamKind] = &[$(StreamKind::$kind),*];

            /// Every event type with its stream kind and its fields' names, aggregate by
            /// aggregate, each type's fields in declaration order — the order in which a
            /// stored event's compact form holds them.
            pub fn fields() -> impl Iterator<Item = (StreamKind, &'static str, &'static [&'static str])> {
                [$( (StreamKind::$kind, $event::FIELDS), )*]
                    .into_iter()
                    .flat_map(|(kind, types)| types.iter().map(move |(t, f)| (kind, *t, *f)))
            }

            /// Appends the event's fields to the compact form's binary payload.
            pub(crate) fn write_fields(&self, out: &mut compact::Out<'_>) {
                match self { $( Event::$variant(e) => e.write_fields(out), )* }
            }

            /// The event type's position among its aggregate's [`types`](Event::types).
            pub(crate) fn type_index(&self) -> usize {
                match self { $( Event::$variant(e) => e.type_index(), )* }
            }

            /// The name of the event type of `kind` at `index` (see [`Event::type_index`]).
            pub(crate) fn type_at(kind: StreamKind, index: usize) -> Option<&'static str> {
                match kind { $( StreamKind::$kind => $event::TYPES.get(index).copied(), )* }
            }

            /// An event of `kind` and `type_name` read from the compact form's binary payload.
            pub(crate) fn read_fields(
                kind: StreamKind,
                type_name: &str,
                r: &mut compact::Reader<'_>,
            ) -> Result<Event, String> {
                match kind { $( StreamKind::$kind => $event::read_fields(type_name, r).map(Event::$variant), )* }
            }

            /// Appends the event's tagged JSON form (`{"type":…,` then its fields) to `out`.
            fn write_tagged(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
                match self { $( Event::$variant(e) => serde_json::to_writer(out, e), )* }
            }

            fn payload_value(&self) -> Result<Value, serde_json::Error> {
                match self { $( Event::$variant(e) => serde_json::to_value(e), )* }
            }

            fn decode(kind: StreamKind, payload: Value) -> Result<Event, serde_json::Error> {
                match kind {
                    $( StreamKind::$kind => serde_json::from_value(payload).map(Event::$variant), )*
                }
            }

            /// [`decode`](Event::decode) of an event of `type_name` from its payload's text.
            fn decode_str(
                kind: StreamKind,
                type_name: &str,
                payload: &str,
            ) -> Result<Event, serde_json::Error> {
                match kind {
                    $( StreamKind::$kind => $event::from_payload_str(type_name, payload).map(Event::$variant), )*
                }
            }
        }

        /// Proof, for the compiler, that every row's error lifts into [`Error`](crate::Error).
        #[allow(dead_code)]
        fn errors_lift() {
            $( let _: fn($error) -> crate::Error = Into::into; )*
        }
    };
}

aggregates! {
    /// An event of a [`Book`](crate::catalog::Book).
    Book => crate::catalog::Book, BookEvent, crate::catalog::BookError, Book;
    /// An event of a [`Member`](crate::members::Member).
    Member => crate::members::Member, MemberEvent, crate::members::MemberError, Member;
    /// An event of a [`PointAccount`](crate::points::PointAccount).
    Account => crate::points::PointAccount, PointsEvent, crate::points::PointsError, Account;
    /// An event of a [`Rental`](crate::rentals::Rental).
    Rental => crate::rentals::Rental, RentalEvent, crate::rentals::RentalError, Rental;
    /// An event of a [`Delivery`](crate::deliveries::Delivery).
    Delivery => crate::deliveries::Delivery, DeliveryEvent, crate::deliveries::DeliveryError, Delivery;
    /// An event of the library's [`CirculationRules`](crate::circulation::CirculationRules).
    Rules => crate::circulation::CirculationRules, RulesEvent, crate::circulation::StoredRulesError, Rules;
}

/// An aggregate whose events are stored: its place in the [`Event`] union (made by the table).
pub trait Stored: Aggregate<Event: Into<Event>, Error: Into<crate::Error>> {
    /// This aggregate's event inside a stored [`Event`], if it is one of ours.
    fn own_event(event: &Event) -> Option<&Self::Event>;

    /// The state after `events` (other aggregates' events are skipped).
    fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut state = Self::default();
        for e in events {
            if let Some(own) = Self::own_event(e) {
                state.apply(own);
            }
        }
        state
    }
}

impl Event {
    /// The payload fields as a JSON object (without the type name).
    pub fn payload(&self) -> Value {
        let tagged = self.payload_value();
        // Serializing plain data structs into a Value cannot fail: no maps with non-string keys, no custom errors.
        let mut value = tagged.unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.remove("type");
        }
        value
    }

    /// Appends the payload's JSON text (the fields without the type name, as in the wire
    /// form's `payload`) to `out`, without building a `serde_json::Value`: the tagged form is
    /// written and its leading `"type":"…"` member cut out.
    pub fn write_payload(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let type_name = self.type_name();
        if self.write_tagged(out).is_ok() {
            // An internally tagged enum writes its tag first: `{"type":"Name"` then `,` or `}`.
            let tag_len = r#"{"type":""#.len() + type_name.len() + 1;
            let written = &out[start..];
            let tagged = written.len() > tag_len
                && written.starts_with(br#"{"type":""#)
                && &written[r#"{"type":""#.len()..tag_len - 1] == type_name.as_bytes()
                && written[tag_len - 1] == b'"';
            if tagged {
                let cut = if written[tag_len] == b',' {
                    tag_len + 1
                } else {
                    tag_len
                };
                out.drain(start + 1..start + cut);
                return;
            }
        }
        out.truncate(start);
        out.extend_from_slice(self.payload().to_string().as_bytes());
    }

    /// Rebuilds an event of `kind` from its type name and current-schema payload.
    pub fn from_payload(
        kind: StreamKind,
        type_name: &str,
        payload: Value,
    ) -> Result<Event, String> {
        let mut payload = payload;
        match &mut payload {
            Value::Object(map) => {
                map.insert("type".into(), Value::String(type_name.to_owned()));
            }
            other => return Err(format!("payload of {type_name} is not an object: {other}")),
        }
        let res = Self::decode(kind, payload);
        res.map_err(|e| format!("{} event {type_name}: {e}", kind.as_str()))
    }
}

/// A stored event with everything known about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Unique id of the event: `stream#version`.
    pub event_id: String,
    /// The stream (aggregate kind and id) it belongs to.
    pub stream: StreamId,
    /// Its version within the stream, from 1, without gaps.
    pub version: u64,
    /// Its position in the global log, from 1, without gaps, in commit order. Zero until stored.
    pub position: u64,
    /// When it was decided, by the library's clock.
    pub occurred_at: Timestamp,
    /// The business case it belongs to: the rental id for everything about a rental, else the member or book id.
    pub correlation_id: String,
    /// What caused it: the command id for a caller's command, the causing event's id for a policy's.
    pub causation_id: String,
    /// The id of the command that produced it.
    pub command_id: CommandId,
    /// Who issued that command.
    pub actor: Actor,
    /// The domain event itself.
    pub event: Event,
}

/// A stored event as a read model sees it: where it stands in the log, when it was decided,
/// and the event — what [`View::apply`](crate::views::View::apply) folds. Borrowed from an
/// [`Envelope`] ([`Envelope::fact`]) or a [`Recorded`] ([`Recorded::fact`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fact<'a> {
    /// Its position in the global log.
    pub position: u64,
    /// When it was decided, by the library's clock.
    pub occurred_at: Timestamp,
    /// The domain event.
    pub event: &'a Event,
}

impl Fact<'_> {
    /// The event's type name.
    pub fn type_name(&self) -> &'static str {
        self.event.type_name()
    }
}

/// A stored event without its envelope's ids: what
/// [`EventStore::read_recorded`](crate::ports::EventStore::read_recorded) reads for rebuilding
/// the read models, which use nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Its position in the global log.
    pub position: u64,
    /// When it was decided, by the library's clock.
    pub occurred_at: Timestamp,
    /// The domain event.
    pub event: Event,
}

impl Recorded {
    /// What this event tells a read model.
    pub fn fact(&self) -> Fact<'_> {
        Fact {
            position: self.position,
            occurred_at: self.occurred_at,
            event: &self.event,
        }
    }
}

impl From<Envelope> for Recorded {
    fn from(e: Envelope) -> Self {
        Recorded {
            position: e.position,
            occurred_at: e.occurred_at,
            event: e.event,
        }
    }
}

impl Envelope {
    /// The event's type name.
    pub fn type_name(&self) -> &'static str {
        self.event.type_name()
    }

    /// The id an event of `stream` at `version` gets.
    pub fn id_for(stream: &StreamId, version: u64) -> String {
        Envelope::id_in(stream.kind, &stream.id, version)
    }

    /// [`id_for`](Envelope::id_for) the stream of `kind` and `id`, without building it.
    pub(crate) fn id_in(kind: StreamKind, id: &str, version: u64) -> String {
        // Built by hand rather than with `format!`: every stored event's id is made here, on
        // every decode of the compact form too, and the formatting machinery cost several
        // times the copying.
        let stream_id = id;
        let kind = kind.as_str();
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = version;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let digits = &digits[at..];
        let mut id = String::with_capacity(kind.len() + stream_id.len() + digits.len() + 2);
        id.push_str(kind);
        id.push(':');
        id.push_str(stream_id);
        id.push('#');
        // ASCII digits only.
        id.extend(digits.iter().map(|d| char::from(*d)));
        id
    }

    /// The wire form: a JSON object with every envelope field, `type`, `schema` and `payload`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "event_id": self.event_id,
            "stream": self.stream.to_string(),
            "version": self.version,
            "position": self.position,
            "occurred_at": self.occurred_at.0,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "command_id": self.command_id.as_str(),
            "actor": self.actor.to_string(),
            "type": self.type_name(),
            "schema": SCHEMA_VERSION,
            "payload": self.event.payload(),
        })
    }

    /// The wire form ([`to_json`](Envelope::to_json)) as compact JSON text, written straight
    /// from the envelope without building a `serde_json::Value` first (the keys in the same
    /// order; the payload's fields in their declaration order). What the SQLite and
    /// PostgreSQL stores keep as an event's body and what NATS carries.
    pub fn to_json_text(&self) -> String {
        let mut out = Vec::with_capacity(384);
        let text = |out: &mut Vec<u8>, s: &str| {
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, s);
        };
        let number = |out: &mut Vec<u8>, n: &dyn std::fmt::Display| {
            use std::io::Write;
            let _ = write!(out, "{n}");
        };
        out.extend_from_slice(br#"{"actor":"#);
        match &self.actor {
            Actor::System => out.extend_from_slice(br#""system""#),
            other => text(&mut out, &other.to_string()),
        }
        out.extend_from_slice(br#","causation_id":"#);
        text(&mut out, &self.causation_id);
        out.extend_from_slice(br#","command_id":"#);
        text(&mut out, &self.command_id.0);
        out.extend_from_slice(br#","correlation_id":"#);
        text(&mut out, &self.correlation_id);
        out.extend_from_slice(br#","event_id":"#);
        text(&mut out, &self.event_id);
        out.extend_from_slice(br#","occurred_at":"#);
        number(&mut out, &self.occurred_at.0);
        out.extend_from_slice(br#","payload":"#);
        self.event.write_payload(&mut out);
        out.extend_from_slice(br#","position":"#);
        number(&mut out, &self.position);
        out.extend_from_slice(br#","schema":"#);
        number(&mut out, &SCHEMA_VERSION);
        out.extend_from_slice(br#","stream":"#);
        text(&mut out, &self.stream.to_string());
        out.extend_from_slice(br#","type":"#);
        text(&mut out, self.type_name());
        out.extend_from_slice(br#","version":"#);
        number(&mut out, &self.version);
        out.push(b'}');
        // Every piece above is valid UTF-8: JSON punctuation, escaped strings and numbers.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Encodes the envelope as its wire form's compact JSON text ([`to_json_text`](Envelope::to_json_text)).
    pub fn encode(&self) -> Vec<u8> {
        self.to_json_text().into_bytes()
    }

    /// Encodes the envelope in the compact stored form (see [`COMPACT_TAG`]'s module: a tag
    /// byte, varints, length-prefixed strings, ids that follow from others left out, the type
    /// as an index, and the payload's fields as tagged binary values). What a store that keeps
    /// its own bytes writes;
    /// [`decode`](Envelope::decode) reads it back, and the wire form ([`encode`](Envelope::encode))
    /// stays JSON.
    pub fn encode_compact(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        compact::encode_into(self, &mut out);
        out
    }

    /// [`encode_compact`](Envelope::encode_compact), appended to `out` (a buffer kept between
    /// events allocates nothing).
    pub fn encode_compact_into(&self, out: &mut Vec<u8>) {
        compact::encode_into(self, out);
    }

    /// Decodes a stored envelope, upcasting payloads written by older schemas.
    ///
    /// The usual case — an event of the current schema — is read straight from the bytes: the
    /// text is checked as UTF-8 once, the envelope's strings are borrowed where they need no
    /// unescaping, and the payload is decoded from its own text straight into its event type,
    /// without building a `serde_json::Value` or buffering the tagged form first (opening a library decodes every event:
    /// this path is several times cheaper). Anything else takes the general path of
    /// [`from_json`](Envelope::from_json); both give the same envelope or the same error.
    ///
    /// Bytes that begin with [`COMPACT_TAG`] are the compact form
    /// ([`encode_compact`](Envelope::encode_compact)), read field by field.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, String> {
        if bytes.first() == Some(&COMPACT_TAG) {
            return compact::decode(bytes);
        }
        Envelope::decode_wire(bytes)
    }

    /// What [`decode`](Envelope::decode) gives, without the envelope's ids: a stored event as
    /// the read models fold it. The compact form's ids are stepped over, neither checked nor
    /// copied (an id damaged in storage is found by the next full read); the wire form is
    /// decoded whole. The payload is read and checked as `decode` reads it.
    pub fn decode_recorded(bytes: &[u8]) -> Result<Recorded, String> {
        if bytes.first() == Some(&COMPACT_TAG) {
            return compact::decode_recorded(bytes);
        }
        Envelope::decode_wire(bytes).map(Recorded::from)
    }

    /// Whether the stored event `bytes` is of `stream`, read from the compact form's header
    /// alone (nothing after the stream is read or checked; the wire form is decoded whole): how
    /// a store that keeps only the bytes confirms which stream an event is of without keeping
    /// the stream's id a second time. An error is bytes that are no stored event.
    pub fn is_stored_in(bytes: &[u8], stream: &StreamId) -> Result<bool, String> {
        if bytes.first() == Some(&COMPACT_TAG) {
            let (kind, id) = compact::stream_of(bytes)?;
            return Ok(kind == stream.kind && id == stream.id.as_bytes());
        }
        Envelope::decode_wire(bytes).map(|e| e.stream == *stream)
    }

    /// What this envelope tells a read model (see [`Fact`]).
    pub fn fact(&self) -> Fact<'_> {
        Fact {
            position: self.position,
            occurred_at: self.occurred_at,
            event: &self.event,
        }
    }

    /// [`decode`](Envelope::decode) of the JSON wire form.
    fn decode_wire(bytes: &[u8]) -> Result<Envelope, String> {
        let fast = std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| serde_json::from_str::<WireRef<'_>>(text).ok())
            .filter(|w| w.schema == SCHEMA_VERSION);
        match fast {
            Some(wire) => Envelope::from_wire_ref(wire),
            None => {
                let wire: Wire = serde_json::from_slice(bytes)
                    .map_err(|e| format!("not a lendkit event: {e}"))?;
                Envelope::from_wire(wire)
            }
        }
    }

    /// An envelope of the current schema from its borrowed wire form (see [`decode`](Envelope::decode)).
    fn from_wire_ref(w: WireRef<'_>) -> Result<Envelope, String> {
        let stream = StreamId::parse(&w.stream)?;
        let actor = Actor::parse(&w.actor)?;
        let payload = w.payload.get();
        let event = if payload.trim_start().starts_with('{') {
            Event::decode_str(stream.kind, &w.type_name, payload)
                .map_err(|e| format!("{} event {}: {e}", stream.kind.as_str(), w.type_name))?
        } else {
            // Not an object: the general path words the error.
            let value: Value =
                serde_json::from_str(payload).map_err(|e| format!("not a lendkit event: {e}"))?;
            Event::from_payload(stream.kind, &w.type_name, value)?
        };
        Ok(Envelope {
            event_id: w.event_id.into_owned(),
            stream,
            version: w.version,
            position: w.position,
            occurred_at: Timestamp(w.occurred_at),
            correlation_id: w.correlation_id.into_owned(),
            causation_id: w.causation_id.into_owned(),
            command_id: CommandId::from(w.command_id.as_ref()),
            actor,
            event,
        })
    }

    /// Rebuilds an envelope from its [`to_json`](Envelope::to_json) form.
    pub fn from_json(value: Value) -> Result<Envelope, String> {
        let wire: Wire =
            serde_json::from_value(value).map_err(|e| format!("not a lendkit event: {e}"))?;
        Envelope::from_wire(wire)
    }

    fn from_wire(w: Wire) -> Result<Envelope, String> {
        if w.schema > SCHEMA_VERSION {
            return Err(format!(
                "event {} was written with schema {} but this lendkit reads up to {SCHEMA_VERSION}; upgrade lendkit",
                w.event_id, w.schema
            ));
        }
        let stream = StreamId::parse(&w.stream)?;
        let actor = Actor::parse(&w.actor)?;
        let payload = upcast(stream.kind, &w.type_name, w.schema, w.payload)?;
        let event = Event::from_payload(stream.kind, &w.type_name, payload)?;
        Ok(Envelope {
            event_id: w.event_id,
            stream,
            version: w.version,
            position: w.position,
            occurred_at: Timestamp(w.occurred_at),
            correlation_id: w.correlation_id,
            causation_id: w.causation_id,
            command_id: CommandId::from(w.command_id),
            actor,
            event,
        })
    }
}

#[derive(Deserialize, Serialize)]
struct Wire {
    event_id: String,
    stream: String,
    version: u64,
    position: u64,
    occurred_at: i64,
    correlation_id: String,
    causation_id: String,
    command_id: String,
    actor: String,
    #[serde(rename = "type")]
    type_name: String,
    schema: u32,
    payload: Value,
}

/// [`Wire`] borrowed from the stored text: strings without escapes are not copied, and the
/// payload stays text until its type is known.
#[derive(Deserialize)]
struct WireRef<'a> {
    #[serde(borrow)]
    event_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    stream: std::borrow::Cow<'a, str>,
    version: u64,
    position: u64,
    occurred_at: i64,
    #[serde(borrow)]
    correlation_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    causation_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    command_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    actor: std::borrow::Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    type_name: std::borrow::Cow<'a, str>,
    schema: u32,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

/// One step of the upcaster chain: turns a payload of `from_schema` into `from_schema + 1`.
type Upcaster = fn(StreamKind, &str, Value) -> Result<Value, String>;

/// Upcasters, indexed by the schema they read (entry 0 reads schema 0). Schema 1 is the first
/// released one, so the chain is empty today; a payload change adds an entry here and bumps
/// [`SCHEMA_VERSION`], and old logs keep loading.
const UPCASTERS: &[Upcaster] = &[];

fn upcast(
    kind: StreamKind,
    type_name: &str,
    schema: u32,
    mut payload: Value,
) -> Result<Value, String> {
    let mut s = schema;
    while s < SCHEMA_VERSION {
        let step = UPCASTERS
            .get(s as usize)
            .ok_or_else(|| format!("no upcaster from schema {s} for {type_name}"))?;
        payload = step(kind, type_name, payload)?;
        s += 1;
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_is_its_stream_and_version() {
        let s = StreamId::new(StreamKind::Rental, "r-1");
        for v in [0, 1, 9, 10, 12_345, u64::MAX] {
            assert_eq!(Envelope::id_for(&s, v), format!("rental:r-1#{v}"));
        }
    }

    #[test]
    fn the_table_of_aggregates_covers_every_stream_kind_once() {
        assert_eq!(Event::KINDS, &StreamKind::ALL[..]);
        let mut seen = std::collections::HashSet::new();
        for (_, t) in Event::types() {
            assert!(seen.insert(t), "event type {t} is declared twice");
        }
    }
}
