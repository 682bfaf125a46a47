//! Property tests: random command sequences by random actors. Whatever happens, after `settle`
//! the aggregates' invariants hold and every view equals a fresh rebuild from the log; a
//! refused command stores nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lendkit::{block_on, Actor, Command, ErrorCode};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Register {
        book: u8,
        copies: u32,
        fee: u64,
    },
    AddCopies {
        book: u8,
        copies: u32,
    },
    Join {
        member: u8,
    },
    TopUp {
        member: u8,
        points: u64,
    },
    Reserve {
        book: u8,
        member: u8,
        rental: u8,
        actor: u8,
        delivery: bool,
    },
    Rental {
        kind: u8,
        rental: u8,
        actor: u8,
    },
    Settle,
    Pause {
        consumer: u8,
    },
    Resume {
        consumer: u8,
    },
    AdvanceDays {
        days: u32,
    },
    Hold {
        book: u8,
        member: u8,
        rental: u8,
        actor: u8,
        not_needed_days: Option<u8>,
    },
    CancelHold {
        rental: u8,
        actor: u8,
    },
    Reorder {
        book: u8,
        rental: u8,
        position: u32,
    },
    Collect {
        rental: u8,
        actor: u8,
    },
    AdvanceTo,
}

const CONSUMERS: [&str; 7] = [
    "catalog",
    "rentals",
    "payments",
    "deliveries",
    "notices",
    "book_list",
    "member_page",
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3u8, 0..3u32, 0..60u64).prop_map(|(book, copies, fee)| Op::Register { book, copies, fee }),
        1 => (0..3u8, 0..3u32).prop_map(|(book, copies)| Op::AddCopies { book, copies }),
        2 => (0..4u8).prop_map(|member| Op::Join { member }),
        1 => (0..4u8, 0..50u64).prop_map(|(member, points)| Op::TopUp { member, points }),
        6 => (0..3u8, 0..4u8, 0..6u8, 0..12u8, any::<bool>()).prop_map(|(book, member, rental, actor, delivery)| Op::Reserve { book, member, rental, actor, delivery }),
        14 => (0..10u8, 0..6u8, 0..12u8).prop_map(|(kind, rental, actor)| Op::Rental { kind, rental, actor }),
        5 => Just(Op::Settle),
        1 => (0..7u8).prop_map(|consumer| Op::Pause { consumer }),
        1 => (0..7u8).prop_map(|consumer| Op::Resume { consumer }),
        1 => (0..20u32).prop_map(|days| Op::AdvanceDays { days }),
        8 => (0..3u8, 0..4u8, 0..6u8, 0..12u8, prop::option::weighted(0.2, 1..5u8)).prop_map(|(book, member, rental, actor, not_needed_days)| Op::Hold { book, member, rental, actor, not_needed_days }),
        2 => (0..6u8, 0..12u8).prop_map(|(rental, actor)| Op::CancelHold { rental, actor }),
        3 => (0..3u8, 0..6u8, 1..4u32).prop_map(|(book, rental, position)| Op::Reorder { book, rental, position }),
        3 => (0..6u8, 0..12u8).prop_map(|(rental, actor)| Op::Collect { rental, actor }),
        2 => Just(Op::AdvanceTo),
    ]
}

/// Actor 0-3: members m-0..m-3; 4: a librarian; 5 and up (the usual case): the rental's own
/// member, or a librarian for the librarian's own steps (marking deliveries).
fn actor(code: u8, owner: u8, librarians_step: bool) -> Actor {
    match code {
        0..=3 => Actor::member(format!("m-{code}")),
        4 => librarian(),
        _ if librarians_step => librarian(),
        _ => Actor::member(format!("m-{owner}")),
    }
}

fn rental_command(kind: u8, rental: String) -> Command {
    match kind {
        0..=2 => Command::StartLoan {
            rental_id: rental,
            branch: None,
            override_reason: None,
        },
        3..=5 => Command::ReturnBook {
            rental_id: rental,
            returned_at: None,
        },
        6 => Command::CancelRental {
            rental_id: rental,
            reason: None,
        },
        7 => Command::RenewLoan {
            rental_id: rental,
            override_reason: None,
        },
        8 => Command::MarkDelivered { rental_id: rental },
        _ => Command::CancelRental {
            rental_id: rental,
            reason: Some("changed my mind".into()),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_and_views_match_a_rebuild(ops in prop::collection::vec(op(), 1..150), immediate in any::<bool>()) {
        let h = Harness::new();
        // Half the runs with the in-process policies reacting within each command.
        let lib = block_on(h.builder().sole_writer(immediate).immediate_reactions(immediate).build()).unwrap();
        let mut owners = [0u8; 8];
        let mut books = [0u8; 8];
        // A small library to start from; the random operations may add to it.
        for (book, copies) in [(0, 1), (1, 2)] {
            register(&lib, &format!("b-{book}"), copies, 20);
        }
        for member in 0..3 {
            join(&lib, &format!("m-{member}"));
        }
        for op in ops {
            let head = block_on(lib.head()).unwrap();
            let result = match op {
                Op::Register { book, copies, fee } => Some(run(&lib, Command::RegisterBook { book_id: format!("b-{book}"), title: format!("Book {book}"), author: None, copies, fee, item_type: None, branch: None, }, &librarian())),
                Op::AddCopies { book, copies } => Some(run(&lib, Command::AddCopies { book_id: format!("b-{book}"), copies }, &librarian())),
                Op::Join { member } => Some(run(&lib, Command::JoinMember { member_id: format!("m-{member}"), name: format!("M{member}"), contact: None, group: None, }, &librarian())),
                Op::TopUp { member, points } => Some(run(&lib, Command::TopUp { member_id: format!("m-{member}"), points }, &librarian())),
                Op::Reserve { book, member, rental, actor: a, delivery } => {
                    let r = run(&lib, Command::ReserveBook { wait: None,
                        book_id: format!("b-{book}"),
                        member_id: format!("m-{member}"),
                        rental_id: Some(format!("r-{rental}")),
                        delivery_address: delivery.then(|| "1 Library Road".to_owned()),
                    }, &actor(a, member, false));
                    if r.is_ok() { owners[rental as usize] = member; }
                    Some(r)
                }
                Op::Rental { kind, rental, actor: a } => Some(run(&lib, rental_command(kind, format!("r-{rental}")), &actor(a, owners[rental as usize], kind == 8))),
                Op::Settle => { settle(&lib); None }
                Op::Pause { consumer } => { lib.pause(CONSUMERS[consumer as usize]).unwrap(); None }
                Op::Resume { consumer } => { lib.resume(CONSUMERS[consumer as usize]).unwrap(); None }
                Op::AdvanceDays { days } => { h.clock.advance_days(days); None }
                Op::Hold { book, member, rental, actor: a, not_needed_days } => {
                    let r = run(&lib, Command::PlaceHold { copy: None,
                        book_id: format!("b-{book}"),
                        member_id: format!("m-{member}"),
                        hold_id: Some(format!("r-{rental}")),
                        pickup_branch: None,
                        not_needed_after: not_needed_days.map(|d| (lib.now().0 + i64::from(d) * 86_400_000) as u64),
                    }, &actor(a, member, false));
                    if r.is_ok() { owners[rental as usize] = member; books[rental as usize] = book; }
                    Some(r)
                }
                Op::CancelHold { rental, actor: a } => Some(run(&lib, Command::CancelHold { hold_id: format!("r-{rental}"), reason: None }, &actor(a, owners[rental as usize], false))),
                Op::Reorder { book, rental, position } => Some(run(&lib, Command::ReorderQueue { book_id: format!("b-{}", if book == 0 { book } else { books[rental as usize] }), hold_id: format!("r-{rental}"), position }, &librarian())),
                Op::Collect { rental, actor: a } => Some(run(&lib, Command::CollectHold { hold_id: format!("r-{rental}"), branch: None, override_reason: None }, &actor(a, owners[rental as usize], false))),
                Op::AdvanceTo => { block_on(lib.advance_to(lib.now())).unwrap(); None }
            };
            if let Some(Err(e)) = result {
                prop_assert!(!matches!(e.code(), ErrorCode::Storage | ErrorCode::Conflict), "unexpected {e}");
                prop_assert_eq!(block_on(lib.head()).unwrap(), head, "refused command {} stored events", e);
            }
        }
        for c in CONSUMERS {
            lib.resume(c).unwrap();
        }
        settle(&lib);
        check_invariants(&lib);
        if std::env::var("LENDKIT_PROP_DEBUG").is_ok() { let ev = all_events(&lib); eprintln!("events={} confirmed={} canceled={} returned={} delivered={} loans={} renewed={} queued={} reordered={} shelved={} collected={} expired={}", ev.len(), count(&ev, "RentalConfirmed"), count(&ev, "RentalCanceled"), count(&ev, "BookReturned"), count(&ev, "Delivered"), count(&ev, "LoanStarted"), count(&ev, "LoanRenewed"), count(&ev, "HoldQueued"), count(&ev, "QueueReordered"), count(&ev, "HoldAwaitingPickup"), count(&ev, "HoldCollected"), count(&ev, "HoldPickupExpired")); }
        prop_assert!(block_on(lib.dead_letters()).unwrap().is_empty());
    }
}
