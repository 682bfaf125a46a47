//! Events written today keep loading: `tests/fixtures/events-schema-1.jsonl` holds one stored
//! event of every type in schema 1's wire format (made by `examples/schema_fixture.rs`). If a
//! payload change breaks it, add an upcaster (core/src/event.rs) — never edit the fixture.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lendkit::event::Envelope;
use lendkit::views::{BookList, MemberPages, View};
use std::collections::BTreeSet;

const FIXTURE: &str = include_str!("fixtures/events-schema-1.jsonl");

fn fixture() -> Vec<serde_json::Value> {
    FIXTURE
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_stored_event_of_schema_1_decodes_and_encodes_back_unchanged() {
    for line in fixture() {
        let envelope = Envelope::from_json(line.clone())
            .unwrap_or_else(|e| panic!("{line} no longer decodes: {e}"));
        assert_eq!(
            envelope.to_json(),
            line,
            "re-encoding changed the stored form"
        );
        assert_eq!(
            Envelope::decode(line.to_string().as_bytes()).unwrap(),
            envelope
        );
    }
}

#[test]
fn the_fixture_covers_every_event_type() {
    let found: BTreeSet<String> = fixture()
        .iter()
        .map(|l| l["type"].as_str().unwrap().to_owned())
        .collect();
    // Every event type the core declares (its table of aggregates), not a copied list.
    let expected: BTreeSet<String> = lendkit::event::Event::types()
        .map(|(_, t)| t.to_owned())
        .collect();
    assert_eq!(
        found, expected,
        "a new event type needs a line in a fixture"
    );
}

#[test]
fn views_rebuilt_from_the_stored_log_tell_the_same_story() {
    let events: Vec<Envelope> = fixture()
        .into_iter()
        .map(|l| Envelope::from_json(l).unwrap())
        .collect();
    let books = BookList::rebuild(&events);
    let b = books.row("b-1").unwrap();
    assert_eq!(
        (b.copies, b.available, b.reserved, b.on_loan),
        (2, 0, 1, 1),
        "{b:?}"
    );
    let pages = MemberPages::rebuild(&events);
    let kim = pages.page("m-1").unwrap();
    // 100 welcome + 50 top-up - 20 (r-1) - 20 (r-4) - 20 (r-5, later refunded) + 20
    // - 10 (r-6) - 10 (r-7) - 2 (fees paid from points) - 5 (r-h) - 5 (r-r)
    assert_eq!(kim.points, 78);
    // r-6 came back 16 days late: 10 points (the cap), 2 paid, the rest waived.
    assert_eq!((kim.fees_owed, kim.blocked.as_deref()), (0, None));
    let statuses: Vec<_> = kim
        .rentals
        .iter()
        .map(|r| {
            (
                r.rental_id.as_str(),
                r.status.as_str(),
                r.payment_status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("r-1", "returned", "charged"),
            ("r-4", "confirmed", "charged"),
            ("r-5", "canceled", "refunded"),
            ("r-6", "returned", "charged"),
            ("r-7", "on_loan", "charged"),
            ("r-h", "returned", "charged"),
            ("r-r", "on_loan", "charged")
        ]
    );
    // Park's hold recalled r-r: due 28 days from its start (11 March), now 7 days from the
    // hold (18 February), and not renewable.
    let rr = &kim.rentals[6];
    assert_eq!(
        (rr.due_at.as_deref(), rr.renewals_left),
        (Some("2026-02-18T00:00:00.000Z"), Some(0))
    );
    let r7 = &kim.rentals[4];
    // Under the rules: lent on Saturday 31 January, 14 days, renewed once of once from the due
    // date: Saturday 28 February, when the branch closes at 13:00 in Seoul.
    assert_eq!(
        (r7.due_at.as_deref(), r7.renewals_left),
        (Some("2026-02-28T04:00:00.000Z"), Some(0))
    );
    let lee = pages.page("m-2").unwrap();
    assert_eq!(lee.rentals[1].delivery_status, "delivered");
    assert_eq!(lee.rentals[1].status, "on_loan");
    // The holds: Lee's first was cancelled and refunded, the second collected (a one-day loan,
    // later aged to lost); Park's was moved to the front, filled, and not collected in time.
    let park = pages.page("m-3").unwrap();
    let holds: Vec<_> = lee
        .rentals
        .iter()
        .chain(&park.rentals)
        .filter(|r| r.rental_id.starts_with("h-"))
        .map(|r| {
            (
                r.rental_id.as_str(),
                r.status.as_str(),
                r.payment_status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        holds,
        [
            ("h-1", "canceled", "refunded"),
            ("h-3", "lost", "charged"),
            ("h-2", "expired", "charged"),
            ("h-r", "waiting", "charged")
        ]
    );
    // Numbered copies: b-w's copy 1 went out on a loan that was aged to lost, copy 2 was
    // withdrawn.
    let w = books.row("b-w").unwrap();
    assert_eq!((w.copies, w.available, w.on_loan), (1, 0, 1), "{w:?}");
    let b = books.row("b-h").unwrap();
    assert_eq!((b.available, b.on_loan), (0, 1), "{b:?}");
    assert!(pages.hold_shelf(None).is_empty());
}

#[test]
fn a_newer_schema_or_an_unknown_type_is_refused_with_a_reason() {
    let mut line = fixture()[0].clone();
    line["schema"] = 2.into();
    let err = Envelope::from_json(line).unwrap_err();
    assert!(err.contains("upgrade lendkit"), "{err}");
    let mut line = fixture()[0].clone();
    line["type"] = "BookBurned".into();
    assert!(Envelope::from_json(line).is_err());
    assert!(Envelope::decode(b"not json")
        .unwrap_err()
        .contains("not a lendkit event"));
}

/// `Envelope::decode` reads the current schema on a path of its own (borrowed strings, the
/// payload straight into its type); it must agree with `from_json` on everything, errors too.
#[test]
fn decoding_stored_bytes_agrees_with_the_general_path_on_odd_input() {
    let decode = |line: &serde_json::Value| Envelope::decode(line.to_string().as_bytes());
    let general = |line: &serde_json::Value| Envelope::from_json(line.clone());
    let base = fixture()
        .into_iter()
        .find(|l| l["type"] == "BookRegistered")
        .expect("the fixture has a BookRegistered");
    // Escapes in the envelope's strings and the payload's (not borrowable: copied).
    let mut odd = base.clone();
    odd["payload"]["title"] = "\"Quoted\" \u{e9}t\u{e9} \\ tab\t \u{1F4DA}".into();
    odd["correlation_id"] = "b-\"1\"".into();
    assert_eq!(decode(&odd).unwrap(), general(&odd).unwrap());
    // A payload that names a `type` of its own: the envelope's type decides.
    let mut typed = base.clone();
    typed["payload"]["type"] = "BookBurned".into();
    assert_eq!(decode(&typed).unwrap(), general(&typed).unwrap());
    // Errors: an unknown type, a payload that is not an object, a missing field.
    let mut unknown = base.clone();
    unknown["type"] = "BookBurned".into();
    let mut scalar = base.clone();
    scalar["payload"] = 7.into();
    let mut missing = base.clone();
    missing["payload"]
        .as_object_mut()
        .expect("an object")
        .remove("title");
    for bad in [unknown, scalar, missing] {
        let (fast, slow) = (decode(&bad).unwrap_err(), general(&bad).unwrap_err());
        assert_eq!(
            fast.split(':').next(),
            slow.split(':').next(),
            "{fast} / {slow}"
        );
        assert!(!fast.is_empty());
    }
}

/// The compact stored form (what sled keeps) holds exactly what the wire form holds: every
/// event of schema 1 comes back equal, its payload is the wire form's payload, and the ids it
/// leaves out because they follow from others come back whether or not they do.
#[test]
fn the_compact_stored_form_round_trips_every_event_of_schema_1() {
    use lendkit::event::COMPACT_TAG;
    let mut named_ids = 0;
    let mut named_by_5 = 0;
    for line in fixture() {
        let envelope = Envelope::from_json(line.clone()).unwrap();
        let bytes = envelope.encode_compact();
        assert_eq!(bytes[0], COMPACT_TAG);
        assert!(
            bytes.len() < line.to_string().len(),
            "{} compact bytes for {} of JSON",
            bytes.len(),
            line.to_string().len()
        );
        let back = Envelope::decode(&bytes).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(back, envelope, "{line}");
        assert_eq!(back.to_json(), line, "the wire form changed on the way");
        // What libraries written before the binary payload hold (layout revision 1, the
        // payload as JSON text) reads as the same event, and is larger.
        let revision_1 = lendkit::testing::encode_compact_revision_1(&envelope);
        assert_eq!(revision_1[1], 1);
        assert_eq!(Envelope::decode(&revision_1).unwrap(), envelope, "{line}");
        assert!(bytes.len() < revision_1.len(), "{line}");
        // What libraries written on 2026-12-06 hold (layout revision 2, the header's command
        // id, actor and type as strings) reads as the same event, and is larger.
        let revision_2 = lendkit::testing::encode_compact_revision_2(&envelope);
        assert_eq!((bytes[1], revision_2[1]), (5, 2));
        assert_eq!(Envelope::decode(&revision_2).unwrap(), envelope, "{line}");
        assert!(bytes.len() < revision_2.len(), "{line}");
        // What libraries written until 2026-12-07 hold (layout revision 3, every payload text
        // written out) reads as the same event; revision 4 is shorter by the texts that repeat
        // the stream's or the actor's id.
        let revision_3 = lendkit::testing::encode_compact_revision_3(&envelope);
        assert_eq!(revision_3[1], 3);
        assert_eq!(Envelope::decode(&revision_3).unwrap(), envelope, "{line}");
        // Revision 4 (written on 2026-12-07) reads as the same event too; revision 5 is
        // shorter still where a text repeats the correlation's id, an instant the event's own
        // or the command id is a listed policy's reaction.
        let revision_4 = lendkit::testing::encode_compact_revision_4(&envelope);
        assert_eq!(revision_4[1], 4);
        assert_eq!(Envelope::decode(&revision_4).unwrap(), envelope, "{line}");
        assert!(revision_4.len() <= revision_3.len(), "{line}");
        assert!(bytes.len() <= revision_4.len(), "{line}");
        if revision_4.len() < revision_3.len() {
            named_ids += 1;
        }
        if bytes.len() < revision_4.len() {
            named_by_5 += 1;
        }
        // Every kind of actor, and a generated command id (32 lowercase hex digits, kept as
        // 16 bytes) or one that only looks like it, come back as they were.
        for actor in [
            lendkit::Actor::System,
            lendkit::Actor::librarian("desk-1"),
            lendkit::Actor::member("m-7"),
        ] {
            for command in [
                "0123456789abcdef0123456789abcdef",
                "0123456789abcdef0123456789abcdeF",
                "0123456789abcdef0123456789abcde",
            ] {
                let mut other = envelope.clone();
                other.actor = actor.clone();
                other.command_id = lendkit::CommandId::new(command);
                let compact = other.encode_compact();
                assert_eq!(Envelope::decode(&compact).unwrap(), other, "{line}");
                let as_text = lendkit::testing::encode_compact_revision_2(&other);
                assert_eq!(Envelope::decode(&as_text).unwrap(), other, "{line}");
                let spelled = lendkit::testing::encode_compact_revision_3(&other);
                assert_eq!(Envelope::decode(&spelled).unwrap(), other, "{line}");
                let named = lendkit::testing::encode_compact_revision_4(&other);
                assert_eq!(Envelope::decode(&named).unwrap(), other, "{line}");
                // Read without the ids (what the views' rebuild reads), from every form: the
                // ids are stepped over, whatever their shape.
                let recorded = lendkit::event::Recorded::from(other.clone());
                for form in [
                    compact,
                    as_text,
                    spelled,
                    named,
                    lendkit::testing::encode_compact_revision_1(&other),
                    other.encode(),
                ] {
                    assert_eq!(
                        Envelope::decode_recorded(&form).as_ref(),
                        Ok(&recorded),
                        "{line}"
                    );
                }
            }
        }
        // A policy's reaction: its command id is `system:` MIDDLE `:` the causing event's id,
        // which is often an event of the correlation's stream; both are kept as little as
        // that, and come back exactly — and ids only nearly of those shapes come back too.
        let corr = envelope.correlation_id.clone();
        for (command, causation) in [
            (
                format!("system:catalog:0:rental:{corr}#4"),
                format!("rental:{corr}#4"),
            ),
            (
                "system:catalog:0:book:x#4".to_owned(),
                "book:x#4".to_owned(),
            ),
            (
                format!("system:catalog:0rental:{corr}#4"),
                format!("rental:{corr}#4"),
            ),
            (
                format!("system:c:1:rental:{corr}#04"),
                format!("rental:{corr}#04"),
            ),
            (
                format!("catalog:0:rental:{corr}#4"),
                format!("rental:{corr}#4"),
            ),
            (
                "0123456789abcdef0123456789abcdef".into(),
                format!("member:{corr}#12"),
            ),
            ("c-1".into(), format!("shelf:{corr}#1")),
            ("c-1".into(), format!("rental:{corr}x#1")),
            ("c-1".into(), format!("rental:{corr}#")),
            (
                format!("system:notices:10:rental:{corr}#4"),
                format!("rental:{corr}#4"),
            ),
            (
                format!("system:catalog:00:rental:{corr}#4"),
                format!("rental:{corr}#4"),
            ),
            (
                format!("system:shelving:1:rental:{corr}#4"),
                format!("rental:{corr}#4"),
            ),
        ] {
            let mut reaction = envelope.clone();
            reaction.command_id = lendkit::CommandId::new(command.as_str());
            reaction.causation_id = causation;
            let compact = reaction.encode_compact();
            assert_eq!(Envelope::decode(&compact).unwrap(), reaction, "{command}");
            let named = lendkit::testing::encode_compact_revision_4(&reaction);
            assert_eq!(Envelope::decode(&named).unwrap(), reaction, "{command}");
            assert_eq!(
                Envelope::decode_recorded(&compact).unwrap(),
                lendkit::event::Recorded::from(reaction.clone()),
                "{command}"
            );
        }
        let mut plain = envelope.clone();
        plain.causation_id = format!("rental:{corr}#4");
        plain.command_id = lendkit::CommandId::new(format!("system:catalog:0:rental:{corr}#5"));
        let mut reaction = plain.clone();
        reaction.command_id = lendkit::CommandId::new(format!("system:catalog:0:rental:{corr}#4"));
        assert!(
            reaction.encode_compact().len() + 10 < plain.encode_compact().len(),
            "a reaction's command id is kept as its middle"
        );
        // Ids that do not follow from the others are stored, not derived.
        let mut odd = envelope.clone();
        odd.event_id = format!("{}#0{}", odd.stream, odd.version);
        odd.correlation_id = format!("{}x", odd.stream.id);
        odd.causation_id = format!("{}x", odd.command_id.0);
        assert_eq!(Envelope::decode(&odd.encode_compact()).unwrap(), odd);
        let mut same = envelope.clone();
        same.correlation_id = same.stream.id.clone();
        same.causation_id = same.command_id.to_string();
        same.event_id = Envelope::id_for(&same.stream, same.version);
        let compact = same.encode_compact();
        assert_eq!(Envelope::decode(&compact).unwrap(), same);
        // Derived ids are left out. (Not compared with the fixture's own form: a reaction's
        // causation and command id are kept shorter still, see below.)
        assert!(compact.len() < odd.encode_compact().len(), "{line}");
    }
    assert!(
        named_by_5 > 0,
        "some fixture event names its correlation's id or its own instant"
    );
    assert!(
        named_ids * 2 > fixture().len(),
        "most events' payloads name their stream's id: {named_ids} of {} shorter",
        fixture().len()
    );
}

#[test]
fn a_damaged_or_newer_compact_form_is_refused_with_a_reason() {
    let envelope = Envelope::from_json(fixture()[0].clone()).unwrap();
    let bytes = envelope.encode_compact();
    // Every cut is refused, never misread or a panic: the binary payload's fields are read to
    // its last byte.
    for cut in 1..bytes.len() {
        let err = Envelope::decode(&bytes[..cut]).unwrap_err();
        assert!(err.contains("not a lendkit event"), "cut {cut}: {err}");
        let err = Envelope::decode_recorded(&bytes[..cut]).unwrap_err();
        assert!(err.contains("not a lendkit event"), "cut {cut}: {err}");
    }
    // So is a byte too many.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Envelope::decode(&longer).is_err());
    assert!(Envelope::decode_recorded(&longer).is_err());
    // The JSON payload of layout revision 1: a cut one is an error too (its JSON does not parse).
    let revision_1 = lendkit::testing::encode_compact_revision_1(&envelope);
    assert!(Envelope::decode(&revision_1[..revision_1.len() - 1]).is_err());
    // A later layout, or a later payload schema, says to upgrade.
    let mut later = bytes.clone();
    later[1] = 6;
    assert!(Envelope::decode(&later)
        .unwrap_err()
        .contains("upgrade lendkit"));
    let mut newer = bytes.clone();
    newer[2] = 9;
    assert!(Envelope::decode(&newer)
        .unwrap_err()
        .contains("upgrade lendkit"));
    for refused in [&later, &newer] {
        assert!(Envelope::decode_recorded(refused)
            .unwrap_err()
            .contains("upgrade lendkit"));
    }
    // Random damage never panics.
    for i in 2..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0xA5;
        let _ = Envelope::decode(&damaged);
        let _ = Envelope::decode_recorded(&damaged);
    }
}

/// The wire form's text, written straight from the envelope, is the wire form: the same JSON
/// value as `to_json`, for every event of schema 1 and for strings that need escaping.
#[test]
fn the_wire_text_is_the_wire_form() {
    for line in fixture() {
        let mut envelope = Envelope::from_json(line.clone()).unwrap();
        let text: serde_json::Value = serde_json::from_str(&envelope.to_json_text()).unwrap();
        assert_eq!(text, line);
        assert_eq!(envelope.encode(), envelope.to_json_text().into_bytes());
        envelope.correlation_id = "\"q\" \\ \u{e9} \t \u{1F4DA}".into();
        envelope.causation_id = "\u{0}\u{1f}".into();
        let text: serde_json::Value = serde_json::from_str(&envelope.to_json_text()).unwrap();
        assert_eq!(text, envelope.to_json());
        assert_eq!(Envelope::decode(&envelope.encode()).unwrap(), envelope);
    }
}
