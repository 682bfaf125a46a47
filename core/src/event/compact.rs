//! The compact stored form of an [`Envelope`]: what a store that owns its bytes (sled) keeps
//! instead of the JSON wire form. Same content, read several times faster — opening a library
//! decodes every stored event, and most of the JSON form's cost is scanning text for the
//! envelope's strings and keys.
//!
//! Layout, all integers LEB128 varints, every string a varint byte length then UTF-8:
//!
//! | field | form |
//! |---|---|
//! | tag | [`COMPACT_TAG`] (`0xC1`, a byte no UTF-8 text holds, so never the first byte of JSON) |
//! | revision | `5` (this layout) |
//! | schema | the payload's schema version |
//! | version, position | varints |
//! | occurred_at | milliseconds, zigzag varint |
//! | stream | the kind's index in [`StreamKind::ALL`] (one byte), then the id |
//! | flags | bit 0: the event id is `stream#version` (not stored); bit 1: the correlation id is the stream's id (not stored); bit 2: the causation id is the command id (not stored); bit 3: the command id is 32 lowercase hex digits (a generated one), stored as its 16 bytes; bit 4: the command id is a policy reaction's, `system:` MIDDLE `:` causation id, and only MIDDLE is stored; bit 5: the causation id is an event id in the correlation's stream, `KIND:CORRELATION#VERSION`, stored as the kind's index (a byte) and the version (a varint); bit 6 (with bit 4 only): MIDDLE is `POLICY:NUMBER` of a policy lendkit lists (`REACTION_POLICIES`), stored as the policy's index (a byte) and the number (a varint); any other bit: damage |
//! | event id, correlation id, causation id | strings, each unless its flag says it is derived (the causation under bit 5 as said there) |
//! | command id | its 16 bytes under flag bit 3, MIDDLE under bit 4 (a string, or a byte and a varint under bit 6), else a string |
//! | actor | one byte, `0` lendkit itself, `1` a librarian, `2` a member; then the id, a string, for the last two |
//! | type | varint: the type's position in its aggregate's `TYPES` (declaration order, pinned with the fields by `the_binary_payload_layout_is_pinned`) |
//! | payload | the rest: the event's fields in declaration order, each a tagged value (below) |
//!
//! A payload field is a tag byte and its value: `0` null (an absent option), `1` text (varint
//! length, UTF-8), `2` a whole number (varint), `3` a signed one (zigzag varint: instants), `4`
//! false, `5` true, `6` JSON text (varint length; the few structured fields: loan and hold
//! terms, how a fee was paid), `7` the stream's id, `8` the actor's id and `9` the
//! correlation's id (a text equal to one of them, written as its tag alone: a rental's events
//! name their rental, a member's own commands their member, a book's or an account's events
//! the rental they are for), `10` the event's own instant (an instant equal to `occurred_at`:
//! a loan's start). No field names are stored: each event type's fields, in order,
//! are [`Event::fields`], pinned by the test `the_binary_payload_layout_is_pinned` — changing
//! an event's fields changes what stored payloads mean, so it takes a new [`SCHEMA_VERSION`]
//! with an upcaster, and this module must then keep the old field lists to turn a stored
//! payload of the old schema into JSON (tag by tag, under the old names) for the upcasters.
//! Today every payload is of schema 1, the current one, and is read straight into its event.
//!
//! Earlier layout revisions are still read. Revision 1 (written until 2026-12-06) kept the
//! payload as its JSON text without `type`, upcast like the wire form's payload. Revision 2
//! (written on 2026-12-06) had this payload under a header that kept the command id, the actor
//! (as the wire form writes it: `member:m-1`) and the type name as strings, with flag bit 3
//! unused. Revision 3 keeps them as bytes and indexes: a shorter event, and three strings less
//! to check and copy on every read. Revision 4 (from 2026-12-07) has revision 3's header and
//! payload, but writes a payload text that equals the stream's or the actor's id as tag `7` or
//! `8` alone, where revision 3 (which has no such tags) spelled it out. Revision 5 (from
//! 2026-12-07, later that day) adds tags `9` and `10` and flag bit 6, where revision 4 spelled
//! the correlation's id, the instant and the reaction's MIDDLE out. (So the reader a later
//! schema needs, turning an old payload into JSON tag by tag, takes those texts and the
//! instant from the header, as [`Reader`] does.)

use super::{upcast, Envelope, Event, Recorded, SCHEMA_VERSION};
use crate::ids::{Actor, CommandId, StreamId, StreamKind, Timestamp};

/// The first byte of the compact form: `0xC1` never occurs in UTF-8, so JSON text never starts
/// with it, and [`Envelope::decode`] tells the two forms apart by it.
pub const COMPACT_TAG: u8 = 0xC1;
/// The layout revision written after the tag: 5, revision 4's layout whose payload may also
/// name the correlation's id and the event's instant by a tag, and whose header keeps a
/// policy's reaction by the policy's index and the reaction's number.
const REVISION: u8 = 5;
/// The revision whose payload names the stream's or the actor's id by a tag; still read.
const REVISION_NAMED_IDS: u8 = 4;
/// The revision with the header of bytes and indexes (the header [`REVISION`] keeps), whose
/// payload repeats every text; still read.
const REVISION_BYTE_HEADER: u8 = 3;
/// The revision with the binary payload under a header of strings, still read.
const REVISION_TEXT_HEADER: u8 = 2;
/// The revision whose payload is JSON text, still read.
const REVISION_JSON_PAYLOAD: u8 = 1;

/// Payload value tags (see the module's table).
const NULL: u8 = 0;
const TEXT: u8 = 1;
const UINT: u8 = 2;
const INT: u8 = 3;
const FALSE: u8 = 4;
const TRUE: u8 = 5;
/// A text value that is the stream's id (revision 4).
const STREAM_TEXT: u8 = 7;
/// A text value that is the actor's id, a librarian's or a member's (revision 4).
const ACTOR_TEXT: u8 = 8;
const JSON: u8 = 6;
/// A text value that is the correlation's id (revision 5).
const CORRELATION_TEXT: u8 = 9;
/// An instant that is the event's own `occurred_at` (revision 5).
const EVENT_INSTANT: u8 = 10;

const EVENT_ID_DERIVED: u8 = 1;
const CORRELATION_IS_STREAM: u8 = 2;
const CAUSATION_IS_COMMAND: u8 = 4;
const COMMAND_ID_HEX: u8 = 8;
const COMMAND_ID_OF_CAUSATION: u8 = 16;
const CAUSATION_IN_CORRELATION: u8 = 32;
const REACTION_OF_POLICY: u8 = 64;
/// The flags each layout revision defines; any other bit is damage.
const FLAGS_OF_REVISION_5: u8 = 127;
const FLAGS_OF_REVISION_3: u8 = 63;

/// The policies whose reactions revision 5 keeps by index (flag bit 6), in the order of their
/// index: stored data, so a policy is only ever added at the end (a policy not listed is kept
/// by its name, as in revision 4).
const REACTION_POLICIES: [&str; 5] = ["catalog", "rentals", "payments", "deliveries", "notices"];

/// A reaction's MIDDLE, `POLICY:NUMBER`, as a listed policy's index and the number, when
/// that is exactly how it is written (a decimal with no sign or leading zero).
fn policy_reaction(middle: &str) -> Option<(u8, u64)> {
    let (policy, number) = middle.split_once(':')?;
    let index = REACTION_POLICIES.iter().position(|p| *p == policy)?;
    // Five policies: the index fits a byte.
    Some((index as u8, version_in(number)?))
}
const FLAGS_BEFORE_REVISION_3: u8 = 7;

/// A policy's reaction's command id, `system:` MIDDLE `:` and the causing event's id (see
/// `reaction_meta`): the MIDDLE (the policy and the reaction's number), which is all that
/// revision 3 stores of it (flag bit 4).
fn reaction_of<'a>(command_id: &'a str, causation_id: &str) -> Option<&'a str> {
    command_id
        .strip_prefix(crate::ids::SYSTEM_COMMAND_PREFIX)?
        .strip_suffix(causation_id)?
        .strip_suffix(':')
}

/// A causation id that is the id of an event in the stream of the correlation id —
/// `KIND:CORRELATION#VERSION`, as [`Envelope::id_for`] writes it — as the kind's index in
/// [`StreamKind::ALL`] and the version: all that revision 3 stores of it (flag bit 5).
fn event_of(causation_id: &str, correlation_id: &str) -> Option<(u8, u64)> {
    let (kind, rest) = causation_id.split_once(':')?;
    let index = StreamKind::ALL.iter().position(|k| k.as_str() == kind)?;
    let version = version_in(rest.strip_prefix(correlation_id)?.strip_prefix('#')?)?;
    // ALL has six kinds, so the index fits a byte.
    Some((index as u8, version))
}

/// `digits` as a version, when [`Envelope::id_for`] writes that version so: decimal, no sign,
/// no leading zero.
fn version_in(digits: &str) -> Option<u64> {
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// The actor's kind in revision 3's header.
const ACTOR_SYSTEM: u8 = 0;
const ACTOR_LIBRARIAN: u8 = 1;
const ACTOR_MEMBER: u8 = 2;

/// The position of `name` in `types`, computed when lendkit is built (a name missing from the
/// list fails the build): see the event enums' `type_index`.
pub(crate) const fn position_of(types: &[&str], name: &str) -> usize {
    let mut i = 0;
    while i < types.len() {
        let (a, b) = (types[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("an event type is missing from its aggregate's TYPES")
}

/// Appends the compact form of `e` to `out`.
pub(super) fn encode_into(e: &Envelope, out: &mut Vec<u8>) {
    put_header(e, out, REVISION);
    e.event.write_fields(&mut Out {
        correlation: Some(&e.correlation_id),
        occurred_at: Some(e.occurred_at.0),
        ..Out::named(out, e)
    });
}

/// The compact form as layout revision 4 wrote it (payload texts naming the stream's or the
/// actor's id by a tag, every other text and instant written out): what libraries written on
/// 2026-12-07 hold, for tests that such events still read.
pub(crate) fn encode_revision_4(e: &Envelope) -> Vec<u8> {
    let mut out = Vec::new();
    put_header(e, &mut out, REVISION_NAMED_IDS);
    e.event.write_fields(&mut Out::named(&mut out, e));
    out
}

/// The compact form as layout revision 3 wrote it (every payload text written out): what
/// libraries written until 2026-12-07 hold, for tests that such events still read.
pub(crate) fn encode_revision_3(e: &Envelope) -> Vec<u8> {
    let mut out = Vec::new();
    put_header(e, &mut out, REVISION_BYTE_HEADER);
    e.event.write_fields(&mut Out::plain(&mut out));
    out
}

/// The compact form as layout revision 1 wrote it (the payload as JSON text): what libraries
/// written before revision 2 hold, for tests that such events still read.
pub(crate) fn encode_revision_1(e: &Envelope) -> Vec<u8> {
    let mut out = Vec::new();
    put_header(e, &mut out, REVISION_JSON_PAYLOAD);
    e.event.write_payload(&mut out);
    out
}

/// The compact form as layout revision 2 wrote it (the header's command id, actor and type as
/// strings): what libraries written on 2026-12-06 hold, for tests that such events still read.
pub(crate) fn encode_revision_2(e: &Envelope) -> Vec<u8> {
    let mut out = Vec::new();
    put_header(e, &mut out, REVISION_TEXT_HEADER);
    e.event.write_fields(&mut Out::plain(&mut out));
    out
}

/// Everything before the payload, under layout `revision`.
fn put_header(e: &Envelope, out: &mut Vec<u8>, revision: u8) {
    out.push(COMPACT_TAG);
    out.push(revision);
    put_varint(out, u64::from(SCHEMA_VERSION));
    put_varint(out, e.version);
    put_varint(out, e.position);
    put_varint(out, zigzag(e.occurred_at.0));
    let kind = StreamKind::ALL
        .iter()
        .position(|k| *k == e.stream.kind)
        .unwrap_or(0);
    // ALL has six kinds, so the index fits a byte.
    out.push(kind as u8);
    put_str(out, &e.stream.id);
    let event_id_derived = is_id_for(&e.event_id, &e.stream, e.version);
    let correlation_is_stream = e.correlation_id == e.stream.id;
    let causation_is_command = *e.causation_id == *e.command_id.0;
    let (command_hex, reaction, caused_in) = if revision >= REVISION_BYTE_HEADER {
        (
            crate::ids::parse_hex32(&e.command_id.0),
            reaction_of(&e.command_id.0, &e.causation_id).filter(|_| !causation_is_command),
            event_of(&e.causation_id, &e.correlation_id).filter(|_| !causation_is_command),
        )
    } else {
        (None, None, None)
    };
    let policy = reaction
        .and_then(policy_reaction)
        .filter(|_| revision >= REVISION);
    let mut flags = 0;
    if policy.is_some() {
        flags |= REACTION_OF_POLICY;
    }
    if command_hex.is_some() {
        flags |= COMMAND_ID_HEX;
    }
    if reaction.is_some() {
        flags |= COMMAND_ID_OF_CAUSATION;
    }
    if caused_in.is_some() {
        flags |= CAUSATION_IN_CORRELATION;
    }
    if event_id_derived {
        flags |= EVENT_ID_DERIVED;
    }
    if correlation_is_stream {
        flags |= CORRELATION_IS_STREAM;
    }
    if causation_is_command {
        flags |= CAUSATION_IS_COMMAND;
    }
    out.push(flags);
    if !event_id_derived {
        put_str(out, &e.event_id);
    }
    if !correlation_is_stream {
        put_str(out, &e.correlation_id);
    }
    match caused_in {
        Some((kind, version)) => {
            out.push(kind);
            put_varint(out, version);
        }
        None if !causation_is_command => put_str(out, &e.causation_id),
        None => {}
    }
    if revision < REVISION_BYTE_HEADER {
        put_str(out, &e.command_id.0);
        match &e.actor {
            Actor::System => put_str(out, "system"),
            other => put_str(out, &other.to_string()),
        }
        put_str(out, e.event.type_name());
        return;
    }
    match (command_hex, reaction, policy) {
        (Some(bits), _, _) => out.extend_from_slice(&bits.to_be_bytes()),
        (None, Some(_), Some((index, number))) => {
            out.push(index);
            put_varint(out, number);
        }
        (None, Some(middle), None) => put_str(out, middle),
        (None, None, _) => put_str(out, &e.command_id.0),
    }
    match &e.actor {
        Actor::System => out.push(ACTOR_SYSTEM),
        Actor::Librarian(id) => {
            out.push(ACTOR_LIBRARIAN);
            put_str(out, id);
        }
        Actor::Member(id) => {
            out.push(ACTOR_MEMBER);
            put_str(out, &id.0);
        }
    }
    put_varint(out, e.event.type_index() as u64);
}

/// What comes before the ids: the layout, the schema, where the event stands and its stream.
struct Head<'a> {
    revision: u8,
    schema: u32,
    version: u64,
    position: u64,
    occurred_at: Timestamp,
    kind: StreamKind,
    /// The stream's id as stored (checked as text only where it is used).
    stream_id: &'a [u8],
    flags: u8,
}

impl Head<'_> {
    /// `kind:id#version`, for a reason (the id shown lossily if it is damaged).
    fn event(&self) -> String {
        format!(
            "{}:{}#{}",
            self.kind.as_str(),
            String::from_utf8_lossy(self.stream_id),
            self.version
        )
    }
}

/// `revision`, if this lendkit reads that layout (every one from revision 1 to [`REVISION`]).
fn readable(revision: u8) -> Result<u8, String> {
    if (REVISION_JSON_PAYLOAD..=REVISION).contains(&revision) {
        return Ok(revision);
    }
    Err(format!(
        "a stored event of compact layout {revision}, which this lendkit cannot read; upgrade lendkit"
    ))
}

/// Reads the compact form up to its flags (the caller has seen the tag), refusing a layout or
/// payload schema this lendkit cannot read.
fn head<'a>(r: &mut Reader<'a>) -> Result<Head<'a>, String> {
    let revision = readable(r.byte()?)?;
    let schema = u32::try_from(r.varint()?).map_err(|_| r.bad("schema"))?;
    let version = r.varint()?;
    let position = r.varint()?;
    let occurred_at = Timestamp(unzigzag(r.varint()?));
    let kind = *StreamKind::ALL
        .get(usize::from(r.byte()?))
        .ok_or_else(|| r.bad("stream kind"))?;
    let stream_id = r.raw()?;
    let head = Head {
        revision,
        schema,
        version,
        position,
        occurred_at,
        kind,
        stream_id,
        flags: 0,
    };
    if schema > SCHEMA_VERSION {
        return Err(format!(
            "event {} was written with schema {schema} but this lendkit reads up to {SCHEMA_VERSION}; upgrade lendkit",
            head.event()
        ));
    }
    let flags = r.byte()?;
    let known = if revision >= REVISION {
        FLAGS_OF_REVISION_5
    } else if revision >= REVISION_BYTE_HEADER {
        FLAGS_OF_REVISION_3
    } else {
        FLAGS_BEFORE_REVISION_3
    };
    // Bits 2 and 5 say where the causation comes from, bits 3 and 4 how the command id is
    // kept, and bit 4 rebuilds the command id from a causation that is stored: no writer sets
    // two of one pair, or bit 4 beside bit 2, so such flags are damage too.
    let exclusive = [
        CAUSATION_IS_COMMAND | CAUSATION_IN_CORRELATION,
        COMMAND_ID_HEX | COMMAND_ID_OF_CAUSATION,
        CAUSATION_IS_COMMAND | COMMAND_ID_OF_CAUSATION,
    ];
    // Bit 6 says how bit 4's MIDDLE is kept: alone it is damage.
    let orphan = flags & REACTION_OF_POLICY != 0 && flags & COMMAND_ID_OF_CAUSATION == 0;
    if flags & !known != 0 || orphan || exclusive.iter().any(|pair| flags & pair == *pair) {
        return Err(r.bad("flags"));
    }
    Ok(Head { flags, ..head })
}

/// Reads the compact form (the caller has seen the tag).
pub(super) fn decode(bytes: &[u8]) -> Result<Envelope, String> {
    let mut r = Reader::new(bytes, 1);
    let head = head(&mut r)?;
    let stream = StreamId::new(head.kind, text(&r, head.stream_id)?);
    let flags = head.flags;
    let event_id = if flags & EVENT_ID_DERIVED != 0 {
        Envelope::id_for(&stream, head.version)
    } else {
        r.str()?.to_owned()
    };
    // The stream's id was checked as text above.
    let (correlation, correlation_id) = if flags & CORRELATION_IS_STREAM != 0 {
        (head.stream_id, stream.id.clone())
    } else {
        let bytes = r.raw()?;
        (bytes, text(&r, bytes)?.to_owned())
    };
    let causation = if flags & CAUSATION_IS_COMMAND != 0 {
        None
    } else if flags & CAUSATION_IN_CORRELATION != 0 {
        let kind = *StreamKind::ALL
            .get(usize::from(r.byte()?))
            .ok_or_else(|| r.bad("causation"))?;
        let version = r.varint()?;
        Some(Envelope::id_in(kind, &correlation_id, version))
    } else {
        Some(r.str()?.to_owned())
    };
    r.named_header(&head, correlation);
    let (command_id, actor) = if head.revision >= REVISION_BYTE_HEADER {
        let command_id = if flags & COMMAND_ID_HEX != 0 {
            crate::ids::hex32(u128::from_be_bytes(r.array()?))
        } else if flags & COMMAND_ID_OF_CAUSATION != 0 {
            let causation = causation.as_deref().ok_or_else(|| r.bad("flags"))?;
            if flags & REACTION_OF_POLICY != 0 {
                let name = REACTION_POLICIES
                    .get(usize::from(r.byte()?))
                    .ok_or_else(|| r.bad("policy"))?;
                let number = match r.varint()? {
                    // A reaction's number is almost always one digit: no allocation for it.
                    n @ 0..=9 => crate::ids::decimal(n as usize),
                    n => std::borrow::Cow::Owned(n.to_string()),
                };
                let prefix = crate::ids::SYSTEM_COMMAND_PREFIX;
                [prefix, name, ":", &number, ":", causation].concat()
            } else {
                let middle = r.str()?;
                [crate::ids::SYSTEM_COMMAND_PREFIX, middle, ":", causation].concat()
            }
        } else {
            r.str()?.to_owned()
        };
        let actor = match r.byte()? {
            ACTOR_SYSTEM => Actor::System,
            ACTOR_LIBRARIAN => {
                let id = r.str()?;
                Actor::check_librarian_id(id)?;
                r.named_actor(id.as_bytes(), head.revision);
                Actor::librarian(id)
            }
            ACTOR_MEMBER => {
                let id = r.str()?;
                Actor::check_member_id(id)?;
                r.named_actor(id.as_bytes(), head.revision);
                Actor::member(id)
            }
            _ => return Err(r.bad("actor")),
        };
        (command_id, actor)
    } else {
        let command_id = r.str()?.to_owned();
        (command_id, Actor::parse(r.str()?)?)
    };
    let event = event(&mut r, &head)?;
    Ok(Envelope {
        event_id,
        causation_id: causation.unwrap_or_else(|| command_id.clone()),
        stream,
        version: head.version,
        position: head.position,
        occurred_at: head.occurred_at,
        correlation_id,
        command_id: CommandId::from(command_id),
        actor,
        event,
    })
}

/// The stream's kind and id (its bytes, not checked as text) from the compact form's header
/// (the caller has seen the tag).
///
/// The numbers before it (schema, version, position, instant) are stepped over, not decoded:
/// a store confirms a stream this way on every append.
pub(super) fn stream_of(bytes: &[u8]) -> Result<(StreamKind, &[u8]), String> {
    let mut r = Reader::new(bytes, 1);
    readable(r.byte()?)?;
    // Four varints end at the fourth byte without the high bit (the full read checks their
    // lengths).
    let mut ends = 0;
    while ends < 4 {
        if r.byte()? & 0x80 == 0 {
            ends += 1;
        }
    }
    let kind = *StreamKind::ALL
        .get(usize::from(r.byte()?))
        .ok_or_else(|| r.bad("stream kind"))?;
    Ok((kind, r.raw()?))
}

/// Reads the compact form without its ids (the caller has seen the tag): they are stepped
/// over by their lengths, neither checked as text nor copied.
pub(super) fn decode_recorded(bytes: &[u8]) -> Result<Recorded, String> {
    let mut r = Reader::new(bytes, 1);
    let head = head(&mut r)?;
    let flags = head.flags;
    // The event id and the correlation, each stored unless derived; then the causation.
    if flags & EVENT_ID_DERIVED == 0 {
        r.raw()?;
    }
    let correlation = if flags & CORRELATION_IS_STREAM != 0 {
        head.stream_id
    } else {
        r.raw()?
    };
    if flags & CAUSATION_IN_CORRELATION != 0 {
        r.byte()?;
        r.varint()?;
    } else if flags & CAUSATION_IS_COMMAND == 0 {
        r.raw()?;
    }
    r.named_header(&head, correlation);
    if head.revision >= REVISION_BYTE_HEADER {
        if flags & COMMAND_ID_HEX != 0 {
            r.array()?;
        } else if flags & REACTION_OF_POLICY != 0 {
            r.byte()?;
            r.varint()?;
        } else {
            r.raw()?;
        }
        match r.byte()? {
            ACTOR_SYSTEM => {}
            ACTOR_LIBRARIAN | ACTOR_MEMBER => {
                let id = r.raw()?;
                r.named_actor(id, head.revision);
            }
            _ => return Err(r.bad("actor")),
        }
    } else {
        r.raw()?;
        r.raw()?;
    }
    Ok(Recorded {
        position: head.position,
        occurred_at: head.occurred_at,
        event: event(&mut r, &head)?,
    })
}

/// Reads the type and the payload, the rest of the bytes.
fn event(r: &mut Reader<'_>, head: &Head<'_>) -> Result<Event, String> {
    let type_name = if head.revision >= REVISION_BYTE_HEADER {
        let index = usize::try_from(r.varint()?).map_err(|_| r.bad("type"))?;
        Event::type_at(head.kind, index).ok_or_else(|| r.bad("type"))?
    } else {
        r.str()?
    };
    if head.revision == REVISION_JSON_PAYLOAD {
        return json_payload(r, head.kind, type_name, head.schema);
    }
    if head.schema != SCHEMA_VERSION {
        // Only possible once a later schema exists: see the module's documentation.
        return Err(format!(
            "event {} has a binary payload of schema {}, which this lendkit reads only at schema {SCHEMA_VERSION}",
            head.event(),
            head.schema
        ));
    }
    let event = Event::read_fields(head.kind, type_name, r)
        .map_err(|e| format!("{} event {type_name}: {e}", head.kind.as_str()))?;
    if r.at != r.bytes.len() {
        return Err(r.bad("payload's end"));
    }
    Ok(event)
}

/// `bytes`, read at `r`, as text.
fn text<'a>(r: &Reader<'_>, bytes: &'a [u8]) -> Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|_| r.bad("text"))
}

/// The event of a revision-1 compact form, whose payload (the rest of the bytes) is JSON text.
fn json_payload(
    r: &Reader<'_>,
    kind: StreamKind,
    type_name: &str,
    schema: u32,
) -> Result<Event, String> {
    let payload = std::str::from_utf8(&r.bytes[r.at..]).map_err(|_| r.bad("payload"))?;
    if schema == SCHEMA_VERSION {
        return Event::decode_str(kind, type_name, payload)
            .map_err(|e| format!("{} event {type_name}: {e}", kind.as_str()));
    }
    let value = serde_json::from_str(payload).map_err(|e| format!("{type_name}: {e}"))?;
    let value = upcast(kind, type_name, schema, value)?;
    Event::from_payload(kind, type_name, value)
}

/// How an event's field is written in the binary payload and read back: one tagged value.
pub(crate) trait Field: Sized {
    /// Appends the tagged value.
    fn put(&self, out: &mut Out<'_>);
    /// Reads the tagged value; a tag of another kind is damage.
    fn get(r: &mut Reader<'_>) -> Result<Self, String>;
}

impl Field for String {
    fn put(&self, out: &mut Out<'_>) {
        put_text(out, self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, String> {
        get_text(r).map(str::to_owned)
    }
}

/// A text value of the payload: the stream's, the actor's or the correlation's id by its tag
/// alone where the layout allows it, else its tag, then the string.
fn put_text(out: &mut Out<'_>, text: &str) {
    if out.stream == Some(text) {
        out.push(STREAM_TEXT);
    } else if out.actor == Some(text) {
        out.push(ACTOR_TEXT);
    } else if out.correlation == Some(text) {
        out.push(CORRELATION_TEXT);
    } else {
        out.push(TEXT);
        put_str(out, text);
    }
}

/// A text value of the payload, borrowed from the bytes.
fn get_text<'a>(r: &mut Reader<'a>) -> Result<&'a str, String> {
    let named = match r.byte()? {
        TEXT => return r.str(),
        STREAM_TEXT => r.stream,
        ACTOR_TEXT => r.actor,
        CORRELATION_TEXT => r.correlation,
        _ => None,
    };
    let bytes = named.ok_or_else(|| r.bad("payload's value"))?;
    std::str::from_utf8(bytes).map_err(|_| r.bad("text"))
}

/// Where a payload is written: its bytes, and what of the header a field may name by a tag
/// instead of repeating it (`None` writes it out): the stream's and the actor's id from
/// revision 4, the correlation's id and the event's instant from revision 5.
pub(crate) struct Out<'a> {
    bytes: &'a mut Vec<u8>,
    stream: Option<&'a str>,
    actor: Option<&'a str>,
    correlation: Option<&'a str>,
    occurred_at: Option<i64>,
}

impl<'a> Out<'a> {
    /// A payload written with every text spelled out (the layouts before revision 4).
    fn plain(bytes: &'a mut Vec<u8>) -> Self {
        Self {
            bytes,
            stream: None,
            actor: None,
            correlation: None,
            occurred_at: None,
        }
    }

    /// A payload naming `e`'s stream and actor by a tag (revision 4's).
    fn named(bytes: &'a mut Vec<u8>, e: &'a Envelope) -> Self {
        let actor = match &e.actor {
            Actor::System => None,
            Actor::Librarian(id) => Some(id.as_str()),
            Actor::Member(id) => Some(id.as_str()),
        };
        Self {
            stream: Some(&e.stream.id),
            actor,
            ..Self::plain(bytes)
        }
    }
}

impl std::ops::Deref for Out<'_> {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        self.bytes
    }
}

impl std::ops::DerefMut for Out<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.bytes
    }
}

/// Ids are text.
macro_rules! text_fields {
    ($($id:ty),*) => {$(
        impl Field for $id {
            fn put(&self, out: &mut Out<'_>) {
                put_text(out, &self.0);
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, String> {
                get_text(r).map(Self::from)
            }
        }
    )*};
}
text_fields!(
    crate::ids::BookId,
    crate::ids::MemberId,
    crate::ids::RentalId
);

impl Field for u64 {
    fn put(&self, out: &mut Out<'_>) {
        out.push(UINT);
        put_varint(out, *self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, String> {
        r.tag(UINT)?;
        r.varint()
    }
}

impl Field for u32 {
    fn put(&self, out: &mut Out<'_>) {
        u64::from(*self).put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, String> {
        u32::try_from(u64::get(r)?).map_err(|_| r.bad("number"))
    }
}

impl Field for crate::ids::Points {
    fn put(&self, out: &mut Out<'_>) {
        self.0.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, String> {
        u64::get(r).map(Self)
    }
}

impl Field for Timestamp {
    fn put(&self, out: &mut Out<'_>) {
        if out.occurred_at == Some(self.0) {
            out.push(EVENT_INSTANT);
        } else {
            out.push(INT);
            put_varint(out, zigzag(self.0));
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, String> {
        match r.byte()? {
            INT => Ok(Timestamp(unzigzag(r.varint()?))),
            EVENT_INSTANT => r
                .occurred_at
                .map(Timestamp)
                .ok_or_else(|| r.bad("payload's value")),
            _ => Err(r.bad("payload's value")),
        }
    }
}

impl Field for bool {
    fn put(&self, out: &mut Out<'_>) {
        out.push(if *self { TRUE } else { FALSE });
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, String> {
        match r.byte()? {
            TRUE => Ok(true),
            FALSE => Ok(false),
            _ => Err(r.bad("payload's value")),
        }
    }
}

impl<T: Field> Field for Option<T> {
    fn put(&self, out: &mut Out<'_>) {
        match self {
            None => out.push(NULL),
            Some(v) => v.put(out),
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, String> {
        if r.bytes.get(r.at) == Some(&NULL) {
            r.at += 1;
            return Ok(None);
        }
        T::get(r).map(Some)
    }
}

impl<T: Field> Field for Box<T> {
    fn put(&self, out: &mut Out<'_>) {
        (**self).put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, String> {
        T::get(r).map(Box::new)
    }
}

/// The structured fields are their JSON text.
macro_rules! json_fields {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn put(&self, out: &mut Out<'_>) {
                out.push(JSON);
                // Plain data (no maps with non-string keys, no serializer that fails): this
                // cannot fail; were it to, `null` is stored and reading it back fails with a
                // reason rather than giving a wrong value.
                let text = serde_json::to_string(self).unwrap_or_else(|_| "null".into());
                put_str(out, &text);
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, String> {
                r.tag(JSON)?;
                let text = r.str()?;
                serde_json::from_str(text).map_err(|e| format!("{}: {e}", stringify!($t)))
            }
        }
    )*};
}
json_fields!(
    crate::members::PaidFrom,
    crate::members::FeeKind,
    crate::holds::HoldTerms,
    crate::circulation::LoanTerms
);

/// True when `event_id` is [`Envelope::id_for`]`(stream, version)`, checked without formatting.
fn is_id_for(event_id: &str, stream: &StreamId, version: u64) -> bool {
    let Some(rest) = event_id.strip_prefix(stream.kind.as_str()) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(':') else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(stream.id.as_str()) else {
        return false;
    };
    rest.strip_prefix('#')
        .and_then(version_in)
        .is_some_and(|v| v == version)
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A cursor over a compact form's bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The stream's id, which a payload text may name (revision 4).
    stream: Option<&'a [u8]>,
    /// The actor's id, which a payload text may name (revision 4, a librarian or a member).
    actor: Option<&'a [u8]>,
    /// The correlation's id, which a payload text may name (revision 5).
    correlation: Option<&'a [u8]>,
    /// The event's instant, which a payload instant may name (revision 5).
    occurred_at: Option<i64>,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], at: usize) -> Self {
        Self {
            bytes,
            at,
            stream: None,
            actor: None,
            correlation: None,
            occurred_at: None,
        }
    }

    /// Notes what of the header the payload may name, as far as `head`'s layout lets it: the
    /// stream's id (revision 4), the `correlation`'s and the event's instant (revision 5).
    fn named_header(&mut self, head: &Head<'a>, correlation: &'a [u8]) {
        if head.revision >= REVISION_NAMED_IDS {
            self.stream = Some(head.stream_id);
        }
        if head.revision >= REVISION {
            self.correlation = Some(correlation);
            self.occurred_at = Some(head.occurred_at.0);
        }
    }

    /// Notes the actor's id, for the payload to name, if the layout `revision` lets it.
    fn named_actor(&mut self, id: &'a [u8], revision: u8) {
        if revision >= REVISION_NAMED_IDS {
            self.actor = Some(id);
        }
    }

    fn bad(&self, what: &str) -> String {
        format!(
            "not a lendkit event: the compact form's {what} at byte {} is damaged",
            self.at
        )
    }

    /// Reads a payload value's tag, which must be `want`.
    fn tag(&mut self, want: u8) -> Result<(), String> {
        if self.byte()? == want {
            Ok(())
        } else {
            Err(self.bad("payload's value"))
        }
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or_else(|| self.bad("end"))?;
        self.at += 1;
        Ok(b)
    }

    /// The next 16 bytes.
    fn array(&mut self) -> Result<[u8; 16], String> {
        let bytes = self
            .bytes
            .get(self.at..self.at + 16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or_else(|| self.bad("end"))?;
        self.at += 16;
        Ok(bytes)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.bad("number"))
    }

    /// A length-prefixed string's bytes, not checked as text.
    fn raw(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| self.bad("length"))?;
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.bad("length"))?;
        let bytes = &self.bytes[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let bytes = self.raw()?;
        std::str::from_utf8(bytes).map_err(|_| self.bad("text"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each event type's fields in the order the binary payload holds them, as of schema 1.
    /// Stored payloads are read by this order: if this test fails, an event's fields changed —
    /// that needs a new `SCHEMA_VERSION` with its upcaster, and this module must keep this list
    /// to read the payloads already stored (see the module's documentation).
    const SCHEMA_1_FIELDS: &str = "
book BookRegistered: book title author copies fee item_type branch
book CopiesAdded: book copies
book CopyAllocated: book rental member hold_shelf pull copy
book CopyAllocationFailed: book rental reason
book CopyReleased: book rental
book HoldQueued: book rental member position not_needed_after delivery copy
book HoldLeftQueue: book rental member
book QueueReordered: book rental position
book HoldCollected: book rental
book CopyWithdrawn: book copy
book CopyLost: book copy rental
member MemberJoined: member name contact group joined_at
member LoanRecorded: member rental due loan_policy
member LoanCleared: member rental
member FeeCharged: member fee kind rental amount
member FeePaid: member fee amount from
member FeeRefunded: member fee canceled repaid to_points
member FeeWaived: member fee amount by reason
member MemberBlocked: member reason
member MemberUnblocked: member
member BlockOverridden: member code by reason rental
account AccountOpened: member welcome
account PointsToppedUp: member points
account PointsCharged: member rental points
account PointsSpentOnFees: member points
account FeePointsReturned: member points
account PointsRefunded: member rental points
rental RentalReserved: rental member book fee payment_id delivery_address hold
rental RentalConfirmed: rental member book delivery_address
rental LoanStarted: rental member book due started_at terms
rental LoanRenewed: rental member due count by
rental BookReturned: rental member book late_days returned_at
rental RentalCanceled: rental member book reason fee
rental LoanOverdue: rental member book due
rental AutoRenewalFailed: rental member due code
rental ItemAgedToLost: rental member book at
rental PaymentRefunded: rental member amount
rental HoldAwaitingPickup: rental member book branch until
rental LoanRecalled: rental member book due was
rental HoldPickupExpired: rental member book until
delivery DeliveryStarted: rental member address
delivery Delivered: rental member
delivery DeliveryCanceled: rental member
rules CirculationRulesChanged: version format rules
";

    #[test]
    fn the_binary_payload_layout_is_pinned() {
        let layout: Vec<String> = Event::fields()
            .map(|(kind, name, fields)| format!("{} {name}: {}", kind.as_str(), fields.join(" ")))
            .collect();
        let layout = layout.join("\n");
        assert_eq!(layout, SCHEMA_1_FIELDS.trim(), "\n{layout}\n");
    }

    #[test]
    fn a_payload_text_names_the_stream_s_or_the_actor_s_id_by_a_tag() {
        use crate::ids::MemberId;
        use crate::members::MemberEvent;
        let mut e = crate::testing::stored(
            1,
            MemberEvent::MemberJoined {
                member: MemberId::new("m-1"),
                name: "desk-1".into(),
                contact: None,
                group: None,
                joined_at: None,
            },
            "m-1",
        );
        e.actor = Actor::librarian("desk-1");
        let bytes = e.encode_compact();
        // The member is the stream's id, the name the actor's: a tag each, no length or text.
        assert!(bytes.ends_with(&[STREAM_TEXT, ACTOR_TEXT, NULL, NULL, NULL]));
        let spelled = encode_revision_3(&e);
        assert_eq!(
            bytes.len() + 2 + "m-1".len() + "desk-1".len(),
            spelled.len()
        );
        assert_eq!(Envelope::decode(&bytes).unwrap(), e);
        assert_eq!(Envelope::decode(&spelled).unwrap(), e);
        assert_eq!(
            Envelope::decode_recorded(&bytes).unwrap(),
            Recorded::from(e.clone())
        );
        // Revision 3 has no such tags: there they are damage.
        let mut older = bytes.clone();
        older[1] = REVISION_BYTE_HEADER;
        assert!(decode(&older).unwrap_err().contains("payload's value"));
        assert!(decode_recorded(&older)
            .unwrap_err()
            .contains("payload's value"));
        // Nor is there an actor's id to name when lendkit itself acted.
        e.actor = Actor::System;
        let system = e.encode_compact();
        assert!(system.ends_with(&[
            STREAM_TEXT,
            TEXT,
            6,
            b'd',
            b'e',
            b's',
            b'k',
            b'-',
            b'1',
            0,
            0,
            0
        ]));
        let mut damaged = system[..system.len() - 11].to_vec();
        damaged.extend([ACTOR_TEXT, NULL, NULL, NULL]);
        assert!(decode(&damaged).unwrap_err().contains("payload's value"));
        assert!(decode_recorded(&damaged)
            .unwrap_err()
            .contains("payload's value"));
        damaged.truncate(damaged.len() - 4);
        damaged.extend([
            TEXT, 6, b'd', b'e', b's', b'k', b'-', b'1', NULL, NULL, NULL,
        ]);
        assert_eq!(
            Envelope::decode(&damaged).unwrap(),
            e,
            "the same bytes, undamaged"
        );
    }

    /// A book's event for a rental, made by a policy's reaction to the rental's first event:
    /// revision 5 names the rental by the correlation's tag and keeps the reaction's MIDDLE as
    /// the policy's index and its number.
    fn copy_released(middle: &str) -> Envelope {
        use crate::catalog::BookEvent;
        use crate::ids::{BookId, RentalId};
        let mut e = crate::testing::stored(
            7,
            BookEvent::CopyReleased {
                book: BookId::new("b-1"),
                rental: RentalId::new("mem-22"),
            },
            "b-1",
        );
        e.correlation_id = "mem-22".into();
        e.causation_id = "rental:mem-22#4".into();
        e.command_id = CommandId::new(format!("system:{middle}:rental:mem-22#4"));
        e
    }

    #[test]
    fn revision_5_names_the_correlation_and_the_instant_and_indexes_the_policy() {
        let e = copy_released("catalog:0");
        let bytes = e.encode_compact();
        let before = encode_revision_4(&e);
        assert_eq!(bytes[1], REVISION);
        // The rental (the correlation's id) is one byte where it took its tag, length and
        // text; the MIDDLE `catalog:0` two (index, number) where it took its length and text.
        assert!(bytes.ends_with(&[STREAM_TEXT, CORRELATION_TEXT]));
        assert_eq!(
            bytes.len() + ("mem-22".len() + 1) + ("catalog:0".len() + 1 - 2),
            before.len()
        );
        for form in [&bytes, &before] {
            assert_eq!(Envelope::decode(form).unwrap(), e);
            assert_eq!(
                Envelope::decode_recorded(form).unwrap(),
                Recorded::from(e.clone())
            );
        }
        // Every policy lendkit runs has an index; a MIDDLE of another shape is kept as text
        // and comes back exactly.
        for policy in crate::policies::POLICIES {
            assert!(policy_reaction(&format!("{}:3", policy.name)).is_some());
        }
        for middle in [
            "rentals:12",
            "notices:0",
            "catalog:01",
            "catalog:-1",
            "catalog:",
            "shelving:0",
            "catalog:0:x",
            "catalog",
        ] {
            let other = copy_released(middle);
            let bytes = other.encode_compact();
            // Shorter than revision 4 by the rental's text, and by MIDDLE's text (with its
            // length) less the index and the number where the policy is listed.
            let indexed = policy_reaction(middle).map_or(0, |(_, number)| {
                let mut n = Vec::new();
                put_varint(&mut n, number);
                middle.len() + 1 - 1 - n.len()
            });
            assert_eq!(
                bytes.len() + "mem-22".len() + 1 + indexed,
                encode_revision_4(&other).len(),
                "{middle}"
            );
            assert_eq!(indexed > 0, ["rentals:12", "notices:0"].contains(&middle));
            assert_eq!(Envelope::decode(&bytes).unwrap(), other, "{middle}");
            assert_eq!(
                Envelope::decode_recorded(&bytes).unwrap(),
                Recorded::from(other.clone())
            );
        }

        // A loan started at the event's own instant: the instant is its tag alone.
        use crate::ids::{BookId, MemberId, RentalId};
        use crate::rentals::RentalEvent;
        let mut loan = crate::testing::stored(
            3,
            RentalEvent::LoanStarted {
                rental: RentalId::new("mem-22"),
                member: MemberId::new("m-2"),
                book: BookId::new("b-1"),
                due: Timestamp(1_797_822_309_069),
                started_at: Some(Timestamp(1_796_612_709_069)),
                terms: None,
            },
            "mem-22",
        );
        loan.occurred_at = Timestamp(1_796_612_709_069);
        let bytes = loan.encode_compact();
        assert!(bytes.ends_with(&[EVENT_INSTANT, NULL]));
        assert_eq!(bytes.len() + 6, encode_revision_4(&loan).len());
        assert_eq!(Envelope::decode(&bytes).unwrap(), loan);
        assert_eq!(
            Envelope::decode_recorded(&bytes).unwrap(),
            Recorded::from(loan.clone())
        );
        // Another instant is written out.
        loan.occurred_at = Timestamp(1_796_612_709_070);
        let bytes = loan.encode_compact();
        assert!(!bytes.ends_with(&[EVENT_INSTANT, NULL]));
        assert_eq!(bytes.len(), encode_revision_4(&loan).len());
        assert_eq!(Envelope::decode(&bytes).unwrap(), loan);
    }

    #[test]
    fn a_stored_event_s_stream_is_read_from_its_header() {
        let e = copy_released("catalog:0");
        let own = e.stream.clone();
        let other_kind = StreamId::new(StreamKind::Rental, "b-1");
        let other_id = StreamId::new(StreamKind::Book, "b-10");
        let compact = e.encode_compact();
        for form in [compact.clone(), encode_revision_1(&e), e.encode()] {
            assert_eq!(Envelope::is_stored_in(&form, &own), Ok(true));
            assert_eq!(Envelope::is_stored_in(&form, &other_kind), Ok(false));
            assert_eq!(Envelope::is_stored_in(&form, &other_id), Ok(false));
        }
        // Only the header up to the stream is read: a cut payload still names its stream, a
        // cut header is an error.
        assert_eq!(
            Envelope::is_stored_in(&compact[..compact.len() - 2], &own),
            Ok(true)
        );
        assert!(Envelope::is_stored_in(&compact[..6], &own).is_err());
        assert!(Envelope::is_stored_in(b"not an event", &own).is_err());
    }

    #[test]
    fn revision_5_s_tags_and_flag_are_damage_elsewhere() {
        let e = copy_released("catalog:0");
        let bytes = e.encode_compact();
        // Revision 4 has neither the correlation's tag nor flag bit 6.
        let mut older = bytes.clone();
        older[1] = REVISION_NAMED_IDS;
        assert!(decode(&older).is_err());
        assert!(decode_recorded(&older).is_err());
        // Flag bit 6 without bit 4.
        let head = {
            let mut r = Reader::new(&bytes, 1);
            head(&mut r).unwrap();
            r.at - 1
        };
        assert_eq!(
            bytes[head],
            REACTION_OF_POLICY | COMMAND_ID_OF_CAUSATION | CAUSATION_IN_CORRELATION | 1
        );
        let mut orphan = bytes.clone();
        orphan[head] &= !COMMAND_ID_OF_CAUSATION;
        assert!(decode(&orphan).unwrap_err().contains("flags"));
        assert!(decode_recorded(&orphan).unwrap_err().contains("flags"));
        // A policy index past the list.
        let at = bytes
            .windows(2)
            .position(|w| w == [0, 0])
            .expect("the catalog's index and reaction 0");
        let mut unknown = bytes.clone();
        unknown[at] = REACTION_POLICIES.len() as u8;
        assert!(decode(&unknown).unwrap_err().contains("policy"));
        // A revision-5 instant's tag in a revision-4 event is damage.
        let mut loan = crate::testing::stored(
            3,
            crate::rentals::RentalEvent::LoanStarted {
                rental: crate::ids::RentalId::new("r-1"),
                member: crate::ids::MemberId::new("m-2"),
                book: crate::ids::BookId::new("b-1"),
                due: Timestamp(10),
                started_at: Some(Timestamp(3)),
                terms: None,
            },
            "r-1",
        );
        loan.occurred_at = Timestamp(3);
        let mut bytes = loan.encode_compact();
        assert!(bytes.ends_with(&[EVENT_INSTANT, NULL]));
        bytes[1] = REVISION_NAMED_IDS;
        assert!(decode(&bytes).unwrap_err().contains("payload's value"));
        assert!(decode_recorded(&bytes)
            .unwrap_err()
            .contains("payload's value"));
    }

    /// Revision 3's header with a derived event id, correlation and causation: the last bytes
    /// before the payload are the 16 of the command id, the actor's kind and the type's index.
    #[test]
    fn a_damaged_actor_or_type_index_is_refused() {
        use crate::catalog::BookEvent;
        use crate::ids::BookId;
        let mut e = crate::testing::stored(
            3,
            BookEvent::CopiesAdded {
                book: BookId::new("b-1"),
                copies: 2,
            },
            "b-1",
        );
        e.command_id = CommandId::generate();
        e.causation_id = e.command_id.to_string();
        let bytes = e.encode_compact();
        let mut header = Vec::new();
        put_header(&e, &mut header, REVISION);
        assert_eq!(bytes[1], REVISION);
        let (actor, type_at) = (header.len() - 2, header.len() - 1);
        assert_eq!(header[actor], ACTOR_SYSTEM);
        assert_eq!(usize::from(header[type_at]), e.event.type_index());
        assert_eq!(BookEvent::TYPES[e.event.type_index()], "CopiesAdded");
        assert_eq!(
            &header[actor - 16..actor],
            &crate::ids::parse_hex32(&e.command_id.0)
                .map(u128::to_be_bytes)
                .unwrap()
        );
        assert_eq!(Envelope::decode(&bytes).unwrap(), e);
        let mut bad_actor = bytes.clone();
        bad_actor[actor] = 3;
        assert!(decode(&bad_actor).unwrap_err().contains("actor"));
        let mut bad_type = bytes.clone();
        bad_type[type_at] = BookEvent::TYPES.len() as u8;
        assert!(decode(&bad_type).unwrap_err().contains("type"));
        // The same index names another type of the same aggregate: the payload then fails to
        // read as that type's fields, rather than reading as a wrong event.
        let mut other_type = bytes.clone();
        other_type[type_at] = 0;
        assert!(decode(&other_type).is_err());
        // A flag no revision defines is damage, not a field to guess at. (The flags come just
        // before the command id's 16 bytes, the actor and the type; everything before them is
        // the same in revision 2.)
        let at = header.len() - 2 - 16 - 1;
        assert_eq!(
            bytes[at],
            EVENT_ID_DERIVED | CORRELATION_IS_STREAM | CAUSATION_IS_COMMAND | COMMAND_ID_HEX
        );
        for bit in [64u8, 128, COMMAND_ID_OF_CAUSATION, CAUSATION_IN_CORRELATION] {
            let mut damaged = bytes.clone();
            damaged[at] |= bit;
            assert!(decode(&damaged).unwrap_err().contains("flags"), "{bit}");
            assert!(
                decode_recorded(&damaged).unwrap_err().contains("flags"),
                "{bit}"
            );
        }
        let mut revision_2 = encode_revision_2(&e);
        assert_eq!(
            revision_2[at],
            EVENT_ID_DERIVED | CORRELATION_IS_STREAM | CAUSATION_IS_COMMAND
        );
        assert_eq!(decode(&revision_2).unwrap(), e);
        revision_2[at] |= COMMAND_ID_HEX;
        assert!(decode(&revision_2).unwrap_err().contains("flags"));
    }

    #[test]
    fn every_event_type_knows_its_index() {
        for kind in Event::KINDS {
            let names: Vec<&str> = Event::types()
                .filter(|(k, _)| k == kind)
                .map(|(_, t)| t)
                .collect();
            for (i, name) in names.iter().enumerate() {
                assert_eq!(Event::type_at(*kind, i), Some(*name));
            }
            assert_eq!(Event::type_at(*kind, names.len()), None);
        }
        assert_eq!(position_of(&["A", "BB", "B"], "B"), 2);
        assert_eq!(position_of(&["A", "BB", "B"], "BB"), 1);
    }

    #[test]
    fn zigzag_round_trips_the_extremes() {
        for n in [0, 1, -1, 63, -64, i64::MAX, i64::MIN, 1_733_400_000_000] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
    }

    #[test]
    fn varints_round_trip_and_a_cut_one_is_refused() {
        for n in [0, 1, 127, 128, 300, u64::MAX] {
            let mut out = vec![COMPACT_TAG];
            put_varint(&mut out, n);
            let mut r = Reader::new(&out, 1);
            assert_eq!(r.varint(), Ok(n));
            assert_eq!(r.at, out.len());
            let cut = &out[..out.len() - 1];
            let mut r = Reader::new(cut, 1);
            assert!(r.varint().is_err() || n < 128);
            // Followed by more bytes: read to its own end, no further.
            let mut more = out.clone();
            more.extend([0x85, 0x01]);
            let mut r = Reader::new(&more, 1);
            assert_eq!((r.varint(), r.at), (Ok(n), out.len()));
            assert_eq!((r.varint(), r.at), (Ok(0x85), out.len() + 2));
            assert!(r.varint().unwrap_err().contains("end"));
        }
        // Ten bytes that each say another follows: too long, whatever comes after.
        let mut long = vec![COMPACT_TAG];
        long.extend([0xff; 10]);
        long.push(0);
        let mut r = Reader::new(&long, 1);
        let e = r.varint().unwrap_err();
        assert!(e.contains("number") && e.contains("byte 11"), "{e}");
        // Cut anywhere inside: the end, named where the bytes ran out.
        for cut in 1..11 {
            let mut r = Reader::new(&long[..cut], 1);
            let e = r.varint().unwrap_err();
            assert!(
                e.contains("end") && e.contains(&format!("byte {cut}")),
                "{e}"
            );
        }
        let mut r = Reader::new(&long, 40);
        assert!(r.varint().unwrap_err().contains("end"));
    }

    #[test]
    fn an_event_id_is_derived_only_when_it_is_exactly_stream_hash_version() {
        let s = StreamId::new(StreamKind::Rental, "r-1");
        assert!(is_id_for("rental:r-1#3", &s, 3));
        assert!(!is_id_for("rental:r-1#03", &s, 3));
        assert!(!is_id_for("rental:r-1#+3", &s, 3));
        assert!(!is_id_for("rental:r-1#4", &s, 3));
        assert!(!is_id_for("rental:r-10#3", &s, 3));
        assert!(!is_id_for("book:r-1#3", &s, 3));
        assert!(!is_id_for("e-17", &s, 3));
        assert!(is_id_for("rental:r-1#0", &s, 0));
    }
}
