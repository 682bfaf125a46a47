//! The clock-driven circulation rules end to end: `advance_to` runs each piece of due work once
//! — again for the same instant, in steps or in one jump, and after a restart on sled — and the
//! overdue list shows what is late, with the fine so far.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lendkit::adapters::ManualClock;
use lendkit::{block_on, Actor, Command, Config, Library, OpenLibrary, Timestamp};
use proptest::prelude::*;
use std::sync::Arc;

const DAY: i64 = 86_400_000;

/// Rules with two loan policies — `auto` renews itself (twice at most), the rest is marked
/// overdue — a fine of 1 point a day capped at 10, and items aged to lost after `lost_days`.
fn rules(lost_days: u64) -> String {
    format!(
        r#"
[policies.loan.plain]
period = "7 days"
max_renewals = 2
[policies.loan.auto]
period = "7 days"
max_renewals = 2
auto_renew = true
[policies.fine.daily]
points = 1
per = "day"
max_per_loan = 10
[policies.limits.none]
[policies.lost.standard]
aged_to_lost_after_days = {lost_days}
replacement_cost = 20
processing_fee = 5
refund_window_days = 30
[calendars.main]
zone = "UTC"
hours = {{ mon = "09:00-18:00", tue = "09:00-18:00", wed = "09:00-18:00", thu = "09:00-18:00", fri = "09:00-18:00", sat = "09:00-18:00", sun = "09:00-18:00" }}
[[rules]]
loan = "plain"
fine = "daily"
limits = "none"
lost = "standard"
[[rules]]
item_type = "auto"
loan = "auto"
fine = "daily"
limits = "none"
lost = "standard"
"#
    )
}

fn change_rules(lib: &Library, text: &str) {
    run(
        lib,
        Command::ChangeCirculationRules {
            rules: text.into(),
            format: None,
        },
        &librarian(),
    )
    .unwrap();
}

/// `n` loans on books `b-0..`, every other one of the `auto` item type, all started now.
fn lend(lib: &Library, n: usize) {
    join(lib, "m-1");
    run(
        lib,
        Command::TopUp {
            member_id: "m-1".into(),
            points: 10_000,
        },
        &librarian(),
    )
    .unwrap();
    for i in 0..n {
        run(
            lib,
            Command::RegisterBook {
                book_id: format!("b-{i}"),
                title: "T".into(),
                copies: 1,
                fee: 1,
                author: None,
                item_type: (i % 2 == 1).then(|| "auto".into()),
                branch: Some("main".into()),
            },
            &librarian(),
        )
        .unwrap();
        reserve(lib, &format!("b-{i}"), "m-1", &format!("r-{i}")).unwrap();
    }
    settle(lib);
    for i in 0..n {
        run(
            lib,
            Command::StartLoan {
                rental_id: format!("r-{i}"),
                branch: None,
                override_reason: None,
            },
            &Actor::member("m-1"),
        )
        .unwrap();
    }
}

/// The stored events' types and streams from `after` on, ignoring positions and the order
/// across streams.
fn story(lib: &Library, after: u64) -> Vec<(String, String)> {
    let mut s: Vec<_> = all_events(lib)
        .into_iter()
        .filter(|e| e.position > after)
        .map(|e| (e.stream.to_string(), e.type_name().to_owned()))
        .collect();
    s.sort();
    s
}

#[test]
fn advance_to_runs_due_work_once_and_the_overdue_list_shows_what_is_late() {
    let h = Harness::new();
    let lib = h.library();
    change_rules(&lib, &rules(60));
    lend(&lib, 2);
    let start = lib.now();
    // Nothing is due yet.
    assert_eq!(block_on(lib.advance_to(start)).unwrap().ran, 0);
    // Day 7 at closing time (the due date): the plain loan is overdue, the auto one renews
    // itself.
    let due = block_on(lib.rental("r-0")).unwrap().due.unwrap();
    assert_eq!(due, Timestamp(start.0 + 7 * DAY + 18 * 3_600_000));
    h.clock.set(due);
    let first = block_on(lib.advance_to(due)).unwrap();
    assert_eq!(first.ran, 2);
    let head = block_on(lib.head()).unwrap();
    assert_eq!(block_on(lib.advance_to(due)).unwrap().events, 0);
    assert_eq!(
        block_on(lib.head()).unwrap(),
        head,
        "a second run stores nothing"
    );
    let types: Vec<_> = story(&lib, head - first.events as u64)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert!(types.contains(&"LoanOverdue".to_owned()), "{types:?}");
    assert!(types.contains(&"LoanRenewed".to_owned()), "{types:?}");

    // Day 10: the plain loan is 3 days late (started days count: 2 days 6 hours); the overdue list says so, with its fine so far.
    let now = Timestamp(start.0 + 10 * DAY);
    let late = block_on(lib.overdue_list(now, None)).unwrap();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(
        (
            late[0].rental_id.as_str(),
            late[0].days_late,
            late[0].fee_so_far
        ),
        ("r-0", 3, 3)
    );
    assert_eq!(late[0].branch.as_deref(), Some("main"));
    assert!(block_on(lib.overdue_list(now, Some("north")))
        .unwrap()
        .is_empty());
    // A member may not read it.
    let refused = block_on(lib.reader(&Actor::member("m-1")).overdue_list(now, None));
    assert_eq!(
        refused.unwrap_err().code(),
        lendkit::ErrorCode::Unauthorized
    );
    // Far later: the fine is capped.
    let later = block_on(lib.overdue_list(Timestamp(start.0 + 50 * DAY), None)).unwrap();
    assert_eq!(later[0].fee_so_far, 10);
}

#[test]
fn due_work_survives_a_restart_and_is_never_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.db");
    let clock = ManualClock::new(START);
    let config = || Config {
        background: false,
        clock: Some(Arc::new(clock.clone())),
        ..Config::default()
    };
    {
        let lib = OpenLibrary::open(&path, config()).unwrap();
        change_rules(&lib, &rules(3));
        lend(&lib, 1);
        lib.close().unwrap();
    }
    // Due 7 days later at closing time (18:00 UTC).
    let due = Timestamp(START.0 + 7 * DAY + 18 * 3_600_000);
    clock.set(due);
    let head_after_due = {
        let lib = OpenLibrary::open(&path, config()).unwrap();
        assert_eq!(block_on(lib.advance_to(due)).unwrap().events, 1);
        let head = block_on(lib.head()).unwrap();
        lib.close().unwrap();
        head
    };
    {
        // Reopened: the schedule is rebuilt from the log; the due date was dealt with.
        let lib = OpenLibrary::open(&path, config()).unwrap();
        assert_eq!(block_on(lib.advance_to(due)).unwrap().events, 0);
        assert_eq!(block_on(lib.head()).unwrap(), head_after_due);
        // Three days later the item is aged to lost and billed, once.
        let lost = Timestamp(due.0 + 3 * DAY);
        clock.set(lost);
        let aged = block_on(lib.advance_to(lost)).unwrap();
        assert!(aged.events >= 4, "{aged:?}");
        assert_eq!(block_on(lib.advance_to(lost)).unwrap().events, 0);
        settle(&lib);
        assert_eq!(lib.member_page("m-1").unwrap().fees_owed, 3 + 20 + 5);
        lib.close().unwrap();
    }
    let lib = OpenLibrary::open(&path, config()).unwrap();
    let head = block_on(lib.head()).unwrap();
    assert_eq!(
        block_on(lib.advance_to(Timestamp(due.0 + 30 * DAY)))
            .unwrap()
            .events,
        0
    );
    assert_eq!(block_on(lib.head()).unwrap(), head);
    lib.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the clock steps: running `advance_to` again for the same instant stores nothing,
    /// and stepping through time stores the same events as one jump to the end.
    #[test]
    fn advance_to_is_idempotent_and_stepping_equals_jumping(
        loans in 1usize..5,
        lost_days in 1u64..40,
        steps in proptest::collection::vec(1i64..20, 1..8),
    ) {
        let text = rules(lost_days);
        let end: i64 = steps.iter().sum::<i64>() * DAY;

        let stepped = Harness::new();
        let a = stepped.library();
        change_rules(&a, &text);
        lend(&a, loans);
        let base = block_on(a.head()).unwrap();
        let mut t = a.now().0;
        for s in &steps {
            t += s * DAY;
            stepped.clock.set(Timestamp(t));
            block_on(a.advance_to(Timestamp(t))).unwrap();
            let head = block_on(a.head()).unwrap();
            prop_assert_eq!(block_on(a.advance_to(Timestamp(t))).unwrap().events, 0);
            prop_assert_eq!(block_on(a.head()).unwrap(), head);
        }

        let jumped = Harness::new();
        let b = jumped.library();
        change_rules(&b, &text);
        lend(&b, loans);
        let t_end = Timestamp(b.now().0 + end);
        jumped.clock.set(t_end);
        block_on(b.advance_to(t_end)).unwrap();
        prop_assert_eq!(story(&a, base), story(&b, base));
    }
}

#[test]
fn member_blocks_says_what_would_stop_a_member_now() {
    let h = Harness::new();
    let lib = h.library();
    change_rules(
        &lib,
        &rules(60).replace(
            "[policies.limits.none]",
            "[policies.limits.none]\nmax_loans = 1\nmax_fees_owed = 5",
        ),
    );
    lend(&lib, 1);
    let blocks = |who: &str| block_on(lib.member_blocks(who)).unwrap();
    // One loan out of one: only a new loan is refused.
    let now = blocks("m-1");
    let found: Vec<(&str, &str)> = now
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["action"].as_str().unwrap(), b["code"].as_str().unwrap()))
        .collect();
    assert_eq!(found, [("borrow", "LIMIT_REACHED")]);
    // A manual block stops everything; the member may read their own blocks, not another's.
    run(
        &lib,
        Command::BlockMember {
            member_id: "m-1".into(),
            reason: "card stolen".into(),
        },
        &librarian(),
    )
    .unwrap();
    let codes: Vec<String> = blocks("m-1")
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, ["MEMBER_BLOCKED"; 3]);
    let own = block_on(lib.reader(&Actor::member("m-1")).member_blocks("m-1"));
    assert!(own.is_ok());
    join(&lib, "m-2");
    let other = block_on(lib.reader(&Actor::member("m-2")).member_blocks("m-1"));
    assert_eq!(other.unwrap_err().code(), lendkit::ErrorCode::Unauthorized);
    assert_eq!(
        block_on(lib.member_blocks("nobody")).unwrap_err().code(),
        lendkit::ErrorCode::MemberNotFound
    );
}

#[test]
fn two_desks_lending_to_one_member_at_once_cannot_both_pass_a_limit() {
    for round in 0..20 {
        let h = Harness::new();
        let lib = h.library();
        change_rules(
            &lib,
            &rules(60).replace(
                "[policies.limits.none]",
                "[policies.limits.none]\nmax_loans = 1",
            ),
        );
        join(&lib, "m-1");
        for i in 0..2 {
            run(
                &lib,
                Command::RegisterBook {
                    book_id: format!("b-{i}"),
                    title: "T".into(),
                    copies: 1,
                    fee: 1,
                    author: None,
                    item_type: None,
                    branch: None,
                },
                &librarian(),
            )
            .unwrap();
            reserve(&lib, &format!("b-{i}"), "m-1", &format!("r-{i}")).unwrap();
        }
        settle(&lib);
        let results: Vec<lendkit::Result<lendkit::Outcome>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let lib = &lib;
                    s.spawn(move || {
                        block_on(lib.execute(
                            Command::StartLoan {
                                rental_id: format!("r-{i}"),
                                branch: None,
                                override_reason: None,
                            },
                            &librarian(),
                        ))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let lent = results.iter().filter(|r| r.is_ok()).count();
        let refused: Vec<_> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(lendkit::Error::code))
            .collect();
        assert_eq!(lent, 1, "round {round}: {results:?}");
        assert_eq!(refused, [lendkit::ErrorCode::LimitReached], "round {round}");
    }
}
