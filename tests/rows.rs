//! Every row the library answers with has exactly the keys and JSON types its spec in
//! `lendkit::rows::ROWS` says (and so `docs/schema.json`, from which the bindings' row types are
//! generated): a field added to a struct, or to the table alone, fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lendkit::event::Event;
use lendkit::rows::{mismatches, RowKind, RowSpec, ROWS};
use lendkit::{block_on, Actor, Command};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Real rows of every spec, in their JSON form, from a small library that went through a loan, a
/// late return, a cancellation and a dead-lettered notice.
fn rows() -> BTreeMap<&'static str, Vec<Value>> {
    let h = Harness::new();
    let lib = block_on(h.builder().max_attempts(1).build()).unwrap();
    let mut outcomes = vec![];
    outcomes.push(
        run(
            &lib,
            Command::RegisterBook {
                book_id: "b-1".into(),
                title: "Domain-Driven Design".into(),
                author: Some("Evans".into()),
                copies: 2,
                fee: 10,
                item_type: None,
                branch: None,
            },
            &librarian(),
        )
        .unwrap(),
    );
    register(&lib, "b-2", 1, 5);
    join(&lib, "m-1");
    h.notices.fail_next(1);
    outcomes.push(reserve(&lib, "b-1", "m-1", "r-1").unwrap());
    settle(&lib);
    outcomes.push(
        run(
            &lib,
            Command::StartLoan {
                rental_id: "r-1".into(),
                branch: None,
                override_reason: None,
            },
            &librarian(),
        )
        .unwrap(),
    );
    h.clock.advance(Duration::from_secs(20 * 86_400));
    outcomes.push(
        run(
            &lib,
            Command::ReturnBook {
                rental_id: "r-1".into(),
                returned_at: None,
            },
            &librarian(),
        )
        .unwrap(),
    );
    outcomes.push(reserve(&lib, "b-2", "m-1", "r-2").unwrap());
    settle(&lib);
    outcomes.push(
        run(
            &lib,
            Command::CancelRental {
                rental_id: "r-2".into(),
                reason: Some("changed my mind".into()),
            },
            &Actor::member("m-1"),
        )
        .unwrap(),
    );
    settle(&lib);
    // A loan under stored rules (renewals left), and a blocked member.
    run(
        &lib,
        Command::ChangeCirculationRules {
            rules: std::fs::read_to_string("tests/fixtures/circulation-rules.toml").unwrap(),
            format: None,
        },
        &librarian(),
    )
    .unwrap();
    outcomes.push(reserve(&lib, "b-1", "m-1", "r-3").unwrap());
    settle(&lib);
    run(
        &lib,
        Command::StartLoan {
            rental_id: "r-3".into(),
            branch: None,
            override_reason: None,
        },
        &librarian(),
    )
    .unwrap();
    outcomes.push(reserve(&lib, "b-1", "m-1", "r-4").unwrap());
    settle(&lib);
    run(
        &lib,
        Command::StartLoan {
            rental_id: "r-4".into(),
            branch: Some("main".into()),
            override_reason: None,
        },
        &librarian(),
    )
    .unwrap();
    h.clock.advance(Duration::from_secs(30 * 86_400));
    join(&lib, "m-2");
    run(
        &lib,
        Command::BlockMember {
            member_id: "m-2".into(),
            reason: "card reported lost".into(),
        },
        &librarian(),
    )
    .unwrap();
    settle(&lib);
    // Holds: one on the shelf at a named branch, one at none, one waiting in line.
    join(&lib, "m-3");
    join(&lib, "m-4");
    register(&lib, "b-3", 1, 5);
    let hold = |member: &str, book: &str, hold: &str, branch: Option<&str>| {
        run(
            &lib,
            Command::PlaceHold {
                copy: None,
                book_id: book.into(),
                member_id: member.into(),
                hold_id: Some(hold.into()),
                pickup_branch: branch.map(Into::into),
                not_needed_after: None,
            },
            &Actor::member(member),
        )
        .unwrap();
        settle(&lib);
    };
    hold("m-3", "b-3", "h-1", Some("main"));
    hold("m-4", "b-2", "h-2", None);
    hold("m-3", "b-2", "h-3", None);

    let json = |v: &dyn erased::Serialize| v.to_value();
    let mut rows: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    rows.insert("BookRow", lib.book_list().iter().map(|r| json(r)).collect());
    let page = lib.member_page("m-1").unwrap();
    let holder = lib.member_page("m-3").unwrap();
    rows.insert(
        "RentalRow",
        page.rentals
            .iter()
            .chain(&holder.rentals)
            .map(|r| json(r))
            .collect(),
    );
    let shelf = lib.hold_shelf(None);
    assert_eq!(shelf.len(), 2, "{shelf:?}");
    rows.insert("HoldShelfRow", shelf.iter().map(|r| json(r)).collect());
    let blocked = lib.member_page("m-2").unwrap();
    rows.insert("MemberPage", vec![json(&page), json(&blocked)]);
    rows.insert(
        "Event",
        all_events(&lib).iter().map(|e| e.to_json()).collect(),
    );
    rows.insert(
        "Outcome",
        outcomes.iter().map(lendkit::Outcome::to_json).collect(),
    );
    let overdue = block_on(lib.overdue_list(lib.now(), None)).unwrap();
    assert_eq!(overdue.len(), 2, "{overdue:?}");
    rows.insert("OverdueRow", overdue.iter().map(|r| json(r)).collect());
    let letters = block_on(lib.dead_letters()).unwrap();
    rows.insert("DeadLetter", letters.iter().map(|d| json(d)).collect());
    rows.insert(
        "Notice",
        h.notices.notices().iter().map(|n| json(n)).collect(),
    );
    let consumers = block_on(lib.consumers());
    rows.insert(
        "ConsumerStatus",
        consumers.iter().map(|c| json(c)).collect(),
    );
    rows
}

/// `serde_json::to_value` behind a trait object, so one closure takes every row type.
mod erased {
    pub trait Serialize {
        fn to_value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Serialize for T {
        fn to_value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

#[test]
fn every_row_has_exactly_the_fields_and_types_of_its_spec() {
    let event_types: Vec<&str> = Event::types().map(|(_, name)| name).collect();
    let rows = rows();
    let names: BTreeSet<&str> = ROWS.iter().map(|r| r.name).collect();
    assert_eq!(
        rows.keys().copied().collect::<BTreeSet<_>>(),
        names,
        "this test builds a row of every spec"
    );
    for spec in ROWS {
        let values = &rows[spec.name];
        assert!(!values.is_empty(), "no {} was made", spec.name);
        for value in values {
            let wrong = mismatches(spec, value, &event_types);
            assert!(
                wrong.is_empty(),
                "{} does not fit its spec in lendkit::rows::ROWS:\n  {}\n{value:#}",
                spec.name,
                wrong.join("\n  ")
            );
        }
        // Every optional field is seen both null and set, so each kind is checked for real.
        for f in spec.fields.iter().filter(|f| f.optional) {
            let seen: BTreeSet<bool> = values.iter().map(|v| v[f.name].is_null()).collect();
            assert_eq!(
                seen.len(),
                2,
                "{}.{} was not seen both null and set",
                spec.name,
                f.name
            );
        }
    }
}

#[test]
fn a_field_the_struct_lacks_or_adds_is_told() {
    let event_types: Vec<&str> = Event::types().map(|(_, name)| name).collect();
    let rows = rows();
    let spec = RowSpec::named("BookRow").unwrap();
    let mut row = rows["BookRow"][0].clone();
    row.as_object_mut().unwrap().remove("title");
    row["shelf"] = Value::from("A-3");
    row["fee"] = Value::from("10");
    assert_eq!(mismatches(spec, &row, &event_types).len(), 3);
    assert!(matches!(
        spec.fields
            .iter()
            .find(|f| f.name == "status")
            .map(|f| f.kind),
        Some(RowKind::Enum(_))
    ));
}
