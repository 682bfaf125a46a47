//! Holds under concurrency and random interleavings: the queue is one aggregate per title (the
//! book's stream), so sixteen members placing holds at once get positions 1..16, sixteen desks
//! lending the one copy on the pickup shelf make one loan, and a return racing a cancel gives
//! the copy to exactly one member.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lendkit::{block_on, Actor, Command, ErrorCode, Library};
use proptest::prelude::*;

fn hold(lib: &Library, member: &str, hold: &str) -> lendkit::Result<lendkit::Outcome> {
    run(
        lib,
        Command::PlaceHold {
            copy: None,
            book_id: "b-1".into(),
            member_id: member.into(),
            hold_id: Some(hold.into()),
            pickup_branch: None,
            not_needed_after: None,
        },
        &Actor::member(member),
    )
}

fn collect(hold: &str) -> Command {
    Command::CollectHold {
        hold_id: hold.into(),
        branch: None,
        override_reason: None,
    }
}

/// A library whose one copy of b-1 is lent to m-x.
fn all_out() -> (Harness, Library) {
    let h = Harness::new();
    let lib = h.library();
    register(&lib, "b-1", 1, 10);
    join(&lib, "m-x");
    reserve(&lib, "b-1", "m-x", "r-x").unwrap();
    settle(&lib);
    run(
        &lib,
        Command::StartLoan {
            rental_id: "r-x".into(),
            branch: None,
            override_reason: None,
        },
        &Actor::member("m-x"),
    )
    .unwrap();
    (h, lib)
}

fn position(lib: &Library, member: &str) -> Option<u64> {
    lib.member_page(member).unwrap().rentals[0].position
}

#[test]
fn sixteen_members_placing_holds_at_once_get_positions_one_to_sixteen() {
    for round in 0..5 {
        let (_h, lib) = all_out();
        for i in 0..16 {
            join(&lib, &format!("m-{i}"));
        }
        std::thread::scope(|s| {
            for i in 0..16 {
                let lib = &lib;
                s.spawn(move || hold(lib, &format!("m-{i}"), &format!("h-{i}")).unwrap());
            }
        });
        settle(&lib);
        let mut positions: Vec<u64> = (0..16)
            .map(|i| position(&lib, &format!("m-{i}")).unwrap())
            .collect();
        positions.sort_unstable();
        assert_eq!(positions, (1..=16).collect::<Vec<_>>(), "round {round}");
        check_invariants(&lib);
    }
}

#[test]
fn sixteen_desks_lending_the_one_copy_on_the_shelf_make_one_loan_to_its_holder() {
    for round in 0..5 {
        let (_h, lib) = all_out();
        join(&lib, "m-a");
        for i in 0..16 {
            join(&lib, &format!("m-{i}"));
        }
        hold(&lib, "m-a", "h-a").unwrap();
        settle(&lib);
        run(
            &lib,
            Command::ReturnBook {
                rental_id: "r-x".into(),
                returned_at: None,
            },
            &librarian(),
        )
        .unwrap();
        settle(&lib);
        // Back at the desk, straight to the pickup shelf: not on the pull list.
        assert!(!lib.hold_shelf(None)[0].pull);
        // Eight desks collect A's hold; eight other members try to borrow the copy.
        let results: Vec<(bool, lendkit::Result<lendkit::Outcome>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let lib = &lib;
                    s.spawn(move || {
                        if i % 2 == 0 {
                            (true, block_on(lib.execute(collect("h-a"), &librarian())))
                        } else {
                            let m = format!("m-{i}");
                            (false, reserve(lib, "b-1", &m, &format!("r-{i}")))
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let loans: usize = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .map(|o| o.types().iter().filter(|t| **t == "LoanStarted").count())
            .sum();
        assert_eq!(loans, 1, "round {round}: {results:?}");
        for (collecting, r) in &results {
            match (collecting, r) {
                (true, Ok(_)) => {}
                (true, Err(e)) => assert_eq!(e.code(), ErrorCode::InvalidTransition, "{e}"),
                // On the shelf it is held for A; once lent, it is simply out.
                (false, r) => assert!(
                    matches!(
                        r.as_ref().err().map(lendkit::Error::code),
                        Some(ErrorCode::HeldForOther | ErrorCode::BookUnavailable)
                    ),
                    "round {round}: {r:?}"
                ),
            }
        }
        settle(&lib);
        let a = lib.member_page("m-a").unwrap();
        assert_eq!(a.rentals[0].status, "on_loan");
        assert!(lib.hold_shelf(None).is_empty());
        check_invariants(&lib);
    }
}

#[test]
fn holds_filled_from_the_open_shelf_are_the_pull_list() {
    let (_h, lib) = all_out();
    for m in ["m-a", "m-b", "m-c"] {
        join(&lib, m);
    }
    hold(&lib, "m-a", "h-a").unwrap();
    hold(&lib, "m-b", "h-b").unwrap();
    settle(&lib);
    // Two new copies go to the two waiting holds: both must be fetched from the stacks.
    run(
        &lib,
        Command::AddCopies {
            book_id: "b-1".into(),
            copies: 3,
        },
        &librarian(),
    )
    .unwrap();
    settle(&lib);
    // The third new copy is free: a hold placed now is filled from the shelf too.
    hold(&lib, "m-c", "h-c").unwrap();
    settle(&lib);
    let shelf = lib.hold_shelf(None);
    let pulls: Vec<(&str, bool)> = shelf.iter().map(|r| (r.hold_id.as_str(), r.pull)).collect();
    assert_eq!(pulls.len(), 3, "{shelf:?}");
    assert!(pulls.iter().all(|(_, pull)| *pull), "{pulls:?}");
    run(&lib, collect("h-a"), &Actor::member("m-a")).unwrap();
    settle(&lib);
    assert_eq!(lib.hold_shelf(None).len(), 2);
    check_invariants(&lib);
}

#[test]
fn a_return_racing_a_cancel_gives_the_copy_to_exactly_one_member() {
    for round in 0..20 {
        let (_h, lib) = all_out();
        join(&lib, "m-a");
        join(&lib, "m-b");
        hold(&lib, "m-a", "h-a").unwrap();
        hold(&lib, "m-b", "h-b").unwrap();
        settle(&lib);
        std::thread::scope(|s| {
            let lib = &lib;
            s.spawn(move || {
                run(
                    lib,
                    Command::ReturnBook {
                        rental_id: "r-x".into(),
                        returned_at: None,
                    },
                    &Actor::member("m-x"),
                )
                .unwrap();
                settle(lib);
            });
            s.spawn(move || {
                run(
                    lib,
                    Command::CancelHold {
                        hold_id: "h-a".into(),
                        reason: None,
                    },
                    &Actor::member("m-a"),
                )
                .unwrap();
                settle(lib);
            });
        });
        settle(&lib);
        let shelf = lib.hold_shelf(None);
        assert_eq!(shelf.len(), 1, "round {round}: {shelf:?}");
        assert_eq!(shelf[0].member_id, "m-b", "round {round}");
        let a = lib.member_page("m-a").unwrap();
        assert_eq!(
            (a.points, a.rentals[0].status.as_str()),
            (100, "canceled"),
            "round {round}: A is refunded once"
        );
        assert_eq!(lib.book_list()[0].available, 0);
        check_invariants(&lib);
    }
}

const RECALL_RULES: &str = r#"
[policies.loan.month]
period = "28 days"
max_renewals = 1
[policies.fine.daily]
points = 1
per = "day"
[policies.limits.none]
[policies.lost.standard]
aged_to_lost_after_days = 20
replacement_cost = 5
[policies.request.recall]
recall_days = 3
recall_min_loan_days = 1
shelf_days = 2
[[rules]]
loan = "month"
fine = "daily"
limits = "none"
lost = "standard"
request = "recall"
"#;

#[derive(Debug, Clone)]
enum Op {
    Place(u8, Option<u32>),
    Withdraw(u32),
    Cancel(u8),
    Reorder(u8, u32),
    Collect(u8),
    Return(u8),
    Days(u8),
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => ((0..8u8), prop::option::weighted(0.25, 1..4u32)).prop_map(|(m, c)| Op::Place(m, c)),
        1 => (1..4u32).prop_map(Op::Withdraw),
        2 => (0..8u8).prop_map(Op::Cancel),
        3 => ((0..8u8), (1..6u32)).prop_map(|(m, p)| Op::Reorder(m, p)),
        6 => (0..8u8).prop_map(Op::Collect),
        5 => (0..8u8).prop_map(Op::Return),
        2 => (0..9u8).prop_map(Op::Days),
        4 => Just(Op::Settle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random interleavings of placing, cancelling, reordering, collecting, returning,
    /// pickup deadlines and the clock, on a title with two copies and eight members: positions
    /// are always 1..n, a copy is on at most one shelf or loan, every hold ends once, fees are
    /// refunded at most what was charged, and the views equal a rebuild (`check_invariants`).
    #[test]
    fn the_hold_queue_never_loses_its_place(ops in prop::collection::vec(op(), 1..80), copies in 1..4u32, rules in any::<bool>(), immediate in any::<bool>()) {
        let h = Harness::new();
        // Half the runs with the in-process policies reacting within each command.
        let lib = block_on(h.builder().sole_writer(immediate).immediate_reactions(immediate).build()).unwrap();
        if rules {
            // Four-week loans that a hold recalls to three days from now (at least a day).
            run(&lib, Command::ChangeCirculationRules { rules: RECALL_RULES.into(), format: None }, &librarian()).unwrap();
        }
        register(&lib, "b-1", copies, 10);
        for m in 0..8 {
            join(&lib, &format!("m-{m}"));
        }
        // Each member's current hold (a member places a new one after the last ended).
        let mut n = [0u32; 8];
        for op in ops {
            let head = block_on(lib.head()).unwrap();
            let id = |m: u8, n: &[u32; 8]| format!("h-{m}-{}", n[m as usize]);
            let member = |m: u8| Actor::member(format!("m-{m}"));
            let result = match op {
                Op::Place(m, copy) => {
                    n[m as usize] += 1;
                    Some(run(&lib, Command::PlaceHold {
                        book_id: "b-1".into(),
                        member_id: format!("m-{m}"),
                        hold_id: Some(id(m, &n)),
                        pickup_branch: None,
                        not_needed_after: None,
                        copy,
                    }, &member(m)))
                }
                Op::Withdraw(copy) => Some(run(&lib, Command::WithdrawCopy { book_id: "b-1".into(), copy }, &librarian())),
                Op::Cancel(m) => Some(run(&lib, Command::CancelHold { hold_id: id(m, &n), reason: None }, &member(m))),
                Op::Reorder(m, p) => Some(run(&lib, Command::ReorderQueue { book_id: "b-1".into(), hold_id: id(m, &n), position: p }, &librarian())),
                Op::Collect(m) => Some(run(&lib, collect(&id(m, &n)), &member(m))),
                Op::Return(m) => Some(run(&lib, Command::ReturnBook { rental_id: id(m, &n), returned_at: None }, &member(m))),
                Op::Days(d) => {
                    h.clock.advance_days(u32::from(d));
                    block_on(lib.advance_to(lib.now())).unwrap();
                    None
                }
                Op::Settle => { settle(&lib); None }
            };
            if let Some(Err(e)) = result {
                prop_assert!(!matches!(e.code(), ErrorCode::Storage | ErrorCode::Conflict | ErrorCode::Internal), "unexpected {e}");
                prop_assert_eq!(block_on(lib.head()).unwrap(), head, "refused command {} stored events", e);
            }
        }
        settle(&lib);
        block_on(lib.advance_to(lib.now())).unwrap();
        settle(&lib);
        check_invariants(&lib);
        prop_assert!(block_on(lib.dead_letters()).unwrap().is_empty());
        if std::env::var("LENDKIT_PROP_DEBUG").is_ok() {
            let ev = all_events(&lib);
            let n = |t: &str| count(&ev, t);
            eprintln!("queued={} reordered={} shelved={} collected={} expired={} recalled={} returned={} canceled={} lost={}", n("HoldQueued"), n("QueueReordered"), n("HoldAwaitingPickup"), n("HoldCollected"), n("HoldPickupExpired"), n("LoanRecalled"), n("BookReturned"), n("RentalCanceled"), n("ItemAgedToLost"));
        }
        // The queue's positions, as the pages show them, are exactly 1..=n.
        let mut positions: Vec<u64> = (0..8)
            .flat_map(|m| lib.member_page(&format!("m-{m}")).unwrap().rentals)
            .filter_map(|r| r.position)
            .collect();
        positions.sort_unstable();
        prop_assert_eq!(positions.clone(), (1..=positions.len() as u64).collect::<Vec<_>>());
    }
}
