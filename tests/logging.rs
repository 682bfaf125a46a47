//! What the library logs (through `tracing`): every command, reaction, retry, dead letter,
//! circuit change and sync a host can follow — and never a member's name, contact or address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lendkit::{block_on, Actor, Command};

const NAME: &str = "Kim Secretname";
const CONTACT: &str = "kim@secret.example";
const ADDRESS: &str = "1 Secret Road, Hidden Town";

#[test]
fn a_day_is_logged_by_ids_and_codes_never_by_personal_data() {
    let h = Harness::new();
    let lib = block_on(h.builder().max_attempts(2).build()).unwrap();
    let log = logged(|| {
        run(
            &lib,
            Command::JoinMember {
                member_id: "m-1".into(),
                name: NAME.into(),
                contact: Some(CONTACT.into()),
                group: None,
            },
            &librarian(),
        )
        .unwrap();
        register(&lib, "b-1", 1, 5);
        run(
            &lib,
            Command::ReserveBook {
                wait: None,
                book_id: "b-1".into(),
                member_id: "m-1".into(),
                rental_id: Some("r-1".into()),
                delivery_address: Some(ADDRESS.into()),
            },
            &Actor::member("m-1"),
        )
        .unwrap();
        // The notifier fails: the notices consumer retries, then gives up (a dead letter).
        h.notices.fail_next(100);
        settle(&lib);
        h.clock.advance_days(1);
        settle(&lib);
        h.notices.fail_next(0);
        // A refused command is logged as refused, with its code.
        let _ = reserve(&lib, "b-1", "m-1", "r-1");
        run(
            &lib,
            Command::CancelRental {
                rental_id: "r-1".into(),
                reason: Some(format!("moving to {ADDRESS}")),
            },
            &Actor::member("m-1"),
        )
        .unwrap();
        settle(&lib);
    });
    for expected in [
        "command applied",
        "command=\"join_member\"",
        "command=\"reserve_book\"",
        "actor=member:m-1",
        "command refused",
        "reaction",
        "policy=\"catalog\"",
        "an event failed: it is tried again after the back-off",
        "gave up on an event: it moves to the dead letters",
        "synced",
    ] {
        assert!(log.contains(expected), "no `{expected}` in:\n{log}");
    }
    for secret in [NAME, "Secretname", CONTACT, "Secret Road", "Hidden Town"] {
        assert!(
            !log.contains(secret),
            "a log line carries personal data ({secret}):\n{}",
            log.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
