//! A library opened by `lendkit::open` (or in memory) is the only writer of its store, so it
//! folds aggregates from memory without asking the store. Sixteen desks racing on the same
//! members' point accounts and the same books still get every reservation through, each paid
//! once — the folds a slower desk would put back are never older than what is stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lendkit::{block_on, Actor, Command, Config, OpenLibrary, Store};

fn race(lib: &OpenLibrary) {
    for b in 0..2 {
        register(lib, &format!("b-{b}"), 1_000, 1);
    }
    for m in 0..4 {
        let member = format!("m-{m}");
        join(lib, &member);
        run(
            lib,
            Command::TopUp {
                member_id: member,
                points: 1_000,
            },
            &librarian(),
        )
        .unwrap();
    }
    std::thread::scope(|scope| {
        for desk in 0..16 {
            scope.spawn(move || {
                for i in 0..40 {
                    let member = format!("m-{}", (desk + i) % 4);
                    let outcome = block_on(lib.execute(
                        Command::ReserveBook {
                            wait: None,
                            book_id: format!("b-{}", i % 2),
                            member_id: member.clone(),
                            rental_id: Some(format!("r-{desk}-{i}")),
                            delivery_address: None,
                        },
                        &Actor::member(member),
                    ));
                    assert!(outcome.is_ok(), "desk {desk}, try {i}: {outcome:?}");
                    if i % 8 == 0 {
                        block_on(lib.settle()).unwrap();
                    }
                }
            });
        }
    });
    settle(lib);
    let events = all_events(lib);
    assert_eq!(count(&events, "RentalReserved"), 16 * 40);
    assert_eq!(count(&events, "RentalConfirmed"), 16 * 40);
    assert_eq!(count(&events, "PointsCharged"), 16 * 40);
    check_invariants(lib);
}

#[test]
fn sixteen_desks_on_four_accounts_in_memory() {
    let lib = OpenLibrary::in_memory(Config {
        background: false,
        ..Config::default()
    })
    .unwrap();
    race(&lib);
}

#[test]
fn sixteen_desks_on_four_accounts_on_each_store() {
    for (name, store) in [("lib.db", Store::Sled), ("lib.sqlite", Store::Sqlite)] {
        let dir = tempfile::tempdir().unwrap();
        let lib = OpenLibrary::open(
            dir.path().join(name),
            Config {
                background: false,
                durability: lendkit::Durability::Periodic(50),
                store,
                ..Config::default()
            },
        )
        .unwrap();
        race(&lib);
    }
}
