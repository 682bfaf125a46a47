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
//! | revision | `1` (this layout) |
//! | schema | the payload's schema version |
//! | version, position | varints |
//! | occurred_at | milliseconds, zigzag varint |
//! | stream | the kind's index in [`StreamKind::ALL`] (one byte), then the id |
//! | flags | bit 0: the event id is `stream#version` (not stored); bit 1: the correlation id is the stream's id (not stored); bit 2: the causation id is the command id (not stored) |
//! | event id, correlation id, causation id | strings, each unless its flag says it is derived |
//! | command id, actor, type | strings (the actor as written in the wire form: `member:m-1`) |
//! | payload | the rest: the payload's JSON text, without `type` (as in the wire form's `payload`) |
//!
//! The payload stays JSON so that the upcasters, which work on JSON, apply to it unchanged:
//! a payload of an older schema is upcast exactly as one read from the wire form.

use super::{upcast, Envelope, Event, SCHEMA_VERSION};
use crate::ids::{Actor, CommandId, StreamId, StreamKind, Timestamp};

/// The first byte of the compact form: `0xC1` never occurs in UTF-8, so JSON text never starts
/// with it, and [`Envelope::decode`] tells the two forms apart by it.
pub const COMPACT_TAG: u8 = 0xC1;
/// The layout revision written after the tag.
const REVISION: u8 = 1;

const EVENT_ID_DERIVED: u8 = 1;
const CORRELATION_IS_STREAM: u8 = 2;
const CAUSATION_IS_COMMAND: u8 = 4;

/// Appends the compact form of `e` to `out`.
pub(super) fn encode_into(e: &Envelope, out: &mut Vec<u8>) {
    out.push(COMPACT_TAG);
    out.push(REVISION);
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
    let causation_is_command = e.causation_id == e.command_id.0;
    let mut flags = 0;
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
    if !causation_is_command {
        put_str(out, &e.causation_id);
    }
    put_str(out, &e.command_id.0);
    match &e.actor {
        Actor::System => put_str(out, "system"),
        other => put_str(out, &other.to_string()),
    }
    put_str(out, e.event.type_name());
    e.event.write_payload(out);
}

/// Reads the compact form (the caller has seen the tag).
pub(super) fn decode(bytes: &[u8]) -> Result<Envelope, String> {
    let mut r = Reader { bytes, at: 1 };
    let revision = r.byte()?;
    if revision != REVISION {
        return Err(format!(
            "a stored event of compact layout {revision}, which this lendkit cannot read; upgrade lendkit"
        ));
    }
    let schema = u32::try_from(r.varint()?).map_err(|_| r.bad("schema"))?;
    let version = r.varint()?;
    let position = r.varint()?;
    let occurred_at = unzigzag(r.varint()?);
    let kind = *StreamKind::ALL
        .get(usize::from(r.byte()?))
        .ok_or_else(|| r.bad("stream kind"))?;
    let stream = StreamId::new(kind, r.str()?);
    if schema > SCHEMA_VERSION {
        return Err(format!(
            "event {stream}#{version} was written with schema {schema} but this lendkit reads up to {SCHEMA_VERSION}; upgrade lendkit"
        ));
    }
    let flags = r.byte()?;
    let event_id = if flags & EVENT_ID_DERIVED != 0 {
        Envelope::id_for(&stream, version)
    } else {
        r.str()?.to_owned()
    };
    let correlation_id = if flags & CORRELATION_IS_STREAM != 0 {
        stream.id.clone()
    } else {
        r.str()?.to_owned()
    };
    let causation = if flags & CAUSATION_IS_COMMAND != 0 {
        None
    } else {
        Some(r.str()?.to_owned())
    };
    let command_id = r.str()?.to_owned();
    let actor = Actor::parse(r.str()?)?;
    let type_name = r.str()?;
    let payload = std::str::from_utf8(&r.bytes[r.at..]).map_err(|_| r.bad("payload"))?;
    let event = if schema == SCHEMA_VERSION {
        Event::decode_str(stream.kind, type_name, payload)
            .map_err(|e| format!("{} event {type_name}: {e}", stream.kind.as_str()))?
    } else {
        let value = serde_json::from_str(payload).map_err(|e| format!("{type_name}: {e}"))?;
        let value = upcast(stream.kind, type_name, schema, value)?;
        Event::from_payload(stream.kind, type_name, value)?
    };
    Ok(Envelope {
        event_id,
        causation_id: causation.unwrap_or_else(|| command_id.clone()),
        stream,
        version,
        position,
        occurred_at: Timestamp(occurred_at),
        correlation_id,
        command_id: CommandId(command_id),
        actor,
        event,
    })
}

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
    rest.strip_prefix('#').is_some_and(|n| {
        n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'))
            && n.parse::<u64>().ok() == Some(version)
    })
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

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bad(&self, what: &str) -> String {
        format!(
            "not a lendkit event: the compact form's {what} at byte {} is damaged",
            self.at
        )
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or_else(|| self.bad("end"))?;
        self.at += 1;
        Ok(b)
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

    fn str(&mut self) -> Result<&'a str, String> {
        let len = usize::try_from(self.varint()?).map_err(|_| self.bad("length"))?;
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.bad("length"))?;
        let s = std::str::from_utf8(&self.bytes[self.at..end]).map_err(|_| self.bad("text"))?;
        self.at = end;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut r = Reader { bytes: &out, at: 1 };
            assert_eq!(r.varint(), Ok(n));
            assert_eq!(r.at, out.len());
            let cut = &out[..out.len() - 1];
            let mut r = Reader { bytes: cut, at: 1 };
            assert!(r.varint().is_err() || n < 128);
        }
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
