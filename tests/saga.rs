//! The saga end to end on in-memory adapters: idempotent commands and policies, concurrency on
//! the last copy, fault isolation, consumer groups, dead letters, payment timeouts and the
//! refund when storing a paid rental fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use common::*;
use lendkit::adapters::{InMemoryEventBus, InMemoryEventStore, SystemClock};
use lendkit::error::{PaymentError, StoreError};
use lendkit::event::Envelope;
use lendkit::ids::{CommandId, MemberId, Points, RentalId, StreamId};
use lendkit::ports::{ChargeRef, Commit, EventStore, PaymentGateway, PaymentReceipt};
use lendkit::{block_on, Actor, BreakerConfig, Command, ErrorCode, LibraryBuilder};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_retried_reservation_is_charged_once() {
    let h = Harness::new();
    let lib = h.library();
    register(&lib, "b-1", 2, 30);
    join(&lib, "m-1");
    let cmd = Command::ReserveBook {
        wait: None,
        book_id: "b-1".into(),
        member_id: "m-1".into(),
        rental_id: Some("r-1".into()),
        delivery_address: None,
    };
    let id = Some(CommandId::new("client-retry-1"));
    let first =
        block_on(lib.execute_with_id(cmd.clone(), &Actor::member("m-1"), id.clone())).unwrap();
    let again = block_on(lib.execute_with_id(cmd, &Actor::member("m-1"), id)).unwrap();
    assert_eq!(
        first.events, again.events,
        "a retry returns the original events"
    );
    settle(&lib);
    let events = all_events(&lib);
    assert_eq!(count(&events, "PointsCharged"), 1);
    assert_eq!(count(&events, "RentalReserved"), 1);
    assert_eq!(lib.member_page("m-1").unwrap().points, 70);
    check_invariants(&lib);
}

#[test]
fn a_retried_cancellation_is_refunded_once() {
    let h = Harness::new();
    let lib = h.library();
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    let cancel = Command::CancelRental {
        rental_id: "r-1".into(),
        reason: None,
    };
    let id = Some(CommandId::new("cancel-once"));
    let first =
        block_on(lib.execute_with_id(cancel.clone(), &Actor::member("m-1"), id.clone())).unwrap();
    settle(&lib);
    let again = block_on(lib.execute_with_id(cancel.clone(), &Actor::member("m-1"), id)).unwrap();
    assert_eq!(first.events, again.events);
    // A different command id is a new request, and the rules refuse it.
    let err = block_on(lib.execute(cancel, &Actor::member("m-1"))).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidTransition);
    settle(&lib);
    let events = all_events(&lib);
    assert_eq!(count(&events, "PointsRefunded"), 1);
    assert_eq!(count(&events, "PaymentRefunded"), 1);
    assert_eq!(lib.member_page("m-1").unwrap().points, 100);
    check_invariants(&lib);
}

#[test]
fn delivering_every_event_twice_to_every_policy_changes_nothing() {
    let h = Harness::new();
    let lib = h.library();
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    join(&lib, "m-2");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    reserve(&lib, "b-1", "m-2", "r-2").unwrap();
    settle(&lib);
    run(
        &lib,
        Command::CancelRental {
            rental_id: "r-1".into(),
            reason: None,
        },
        &Actor::member("m-1"),
    )
    .unwrap();
    settle(&lib);
    let before = all_events(&lib);
    let notices_before = h.notices.notices().len();
    for e in &before {
        for consumer in ["catalog", "rentals", "payments", "deliveries"] {
            block_on(lib.redeliver(consumer, e.position)).unwrap();
        }
    }
    settle(&lib);
    assert_eq!(all_events(&lib), before, "redelivery stored nothing new");
    assert_eq!(h.notices.notices().len(), notices_before);
    check_invariants(&lib);
}

#[test]
fn many_threads_reserving_the_last_copies_get_exactly_that_many_loans() {
    const COPIES: u32 = 3;
    const MEMBERS: usize = 16;
    let h = Harness::new();
    let lib = Arc::new(h.library());
    register(&lib, "b-1", COPIES, 10);
    for m in 0..MEMBERS {
        join(&lib, &format!("m-{m}"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    // One thread keeps the consumers running while the reservations race.
    let driver = {
        let (lib, stop) = (lib.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                block_on(lib.settle()).unwrap();
            }
        })
    };
    let threads: Vec<_> = (0..MEMBERS)
        .map(|m| {
            let lib = lib.clone();
            std::thread::spawn(move || reserve(&lib, "b-1", &format!("m-{m}"), &format!("r-{m}")))
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::SeqCst);
    driver.join().unwrap();
    settle(&lib);
    for r in &results {
        if let Err(e) = r {
            assert_eq!(
                e.code(),
                ErrorCode::BookUnavailable,
                "a reservation may only be refused for want of a copy: {e}"
            );
        }
    }
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert!(accepted >= COPIES as usize);
    let events = all_events(&lib);
    assert_eq!(
        count(&events, "RentalConfirmed"),
        COPIES as usize,
        "exactly as many confirmed as copies"
    );
    assert_eq!(count(&events, "RentalCanceled"), accepted - COPIES as usize);
    assert_eq!(
        count(&events, "PointsRefunded"),
        accepted - COPIES as usize,
        "every loser refunded"
    );
    assert_eq!(lib.book_list()[0].available, 0);
    check_invariants(&lib);
}

#[test]
fn reservations_go_on_while_the_catalog_is_paused_and_are_settled_once_on_resume() {
    let h = Harness::new();
    let lib = h.library();
    register(&lib, "b-1", 2, 10);
    for m in 0..5 {
        join(&lib, &format!("m-{m}"));
    }
    lib.pause("catalog").unwrap();
    for m in 0..5 {
        reserve(&lib, "b-1", &format!("m-{m}"), &format!("r-{m}")).unwrap();
    }
    settle(&lib);
    let events = all_events(&lib);
    assert_eq!(
        count(&events, "RentalReserved"),
        5,
        "all reservations accepted while the catalog is down"
    );
    assert_eq!(count(&events, "CopyAllocated"), 0);
    assert_eq!(lib.book_list()[0].available, 2, "nothing allocated yet");
    lib.resume("catalog").unwrap();
    settle(&lib);
    let events = all_events(&lib);
    assert_eq!(count(&events, "CopyAllocated"), 2);
    assert_eq!(count(&events, "CopyAllocationFailed"), 3);
    assert_eq!(count(&events, "RentalCanceled"), 3);
    assert_eq!(count(&events, "PointsRefunded"), 3);
    check_invariants(&lib);
}

#[test]
fn a_consumer_group_shares_events_without_duplicates_and_keeps_stream_order() {
    let h = Harness::new();
    let lib = block_on(
        h.builder()
            .workers("catalog", 3)
            .workers("notices", 4)
            .workers("payments", 2)
            .build(),
    )
    .unwrap();
    register(&lib, "b-1", 4, 5);
    register(&lib, "b-2", 1, 5);
    for m in 0..8 {
        join(&lib, &format!("m-{m}"));
        let book = if m % 2 == 0 { "b-1" } else { "b-2" };
        reserve(&lib, book, &format!("m-{m}"), &format!("r-{m}")).unwrap();
    }
    settle(&lib);
    for m in [0, 2] {
        run(
            &lib,
            Command::CancelRental {
                rental_id: format!("r-{m}"),
                reason: None,
            },
            &Actor::member(format!("m-{m}")),
        )
        .unwrap();
    }
    settle(&lib);
    let notices = h.notices.notices();
    let mut seen = HashMap::new();
    for n in &notices {
        assert!(
            seen.insert(n.event_id.clone(), ()).is_none(),
            "event {} notified twice",
            n.event_id
        );
    }
    let events = all_events(&lib);
    let notifiable = [
        "RentalReserved",
        "RentalConfirmed",
        "RentalCanceled",
        "PaymentRefunded",
    ];
    assert_eq!(
        notices.len(),
        events
            .iter()
            .filter(|e| notifiable.contains(&e.type_name()))
            .count(),
        "every status change notified once"
    );
    // Per stream, notices arrive in version order.
    let mut last: HashMap<String, u64> = HashMap::new();
    let position: HashMap<&str, &Envelope> =
        events.iter().map(|e| (e.event_id.as_str(), e)).collect();
    for n in &notices {
        let e = position[n.event_id.as_str()];
        let prev = last.insert(e.stream.to_string(), e.version).unwrap_or(0);
        assert!(
            e.version > prev,
            "stream {} notified out of order",
            e.stream
        );
    }
    let statuses: Vec<_> = lib.consumers_blocking();
    assert!(statuses
        .iter()
        .any(|c| c.name == "catalog" && c.workers == 3));
    // Two books' streams cannot keep four notice workers busy: the idle ones are caught up
    // all the same, so no consumer shows lag after a settle.
    let head = block_on(lib.head()).unwrap();
    for c in &statuses {
        assert_eq!(c.checkpoint, head, "{} lags after a settle", c.name);
    }
    check_invariants(&lib);
}

trait ConsumersBlocking {
    fn consumers_blocking(&self) -> Vec<lendkit::library::ConsumerStatus>;
}
impl ConsumersBlocking for lendkit::Library {
    fn consumers_blocking(&self) -> Vec<lendkit::library::ConsumerStatus> {
        block_on(self.consumers())
    }
}

#[test]
fn a_notice_that_keeps_failing_becomes_a_dead_letter_and_can_be_replayed() {
    let h = Harness::new();
    let lib = block_on(h.builder().max_attempts(3).build()).unwrap();
    register(&lib, "b-1", 1, 5);
    join(&lib, "m-1");
    h.notices.fail_next(3);
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    assert!(
        block_on(lib.dead_letters()).unwrap().is_empty(),
        "a failure first waits for a retry"
    );
    assert!(
        h.notices.notices().is_empty(),
        "notices wait behind the failing one, in order"
    );
    assert_eq!(
        lib.member_page("m-1").unwrap().rentals[0].status,
        "confirmed",
        "the failing notifier blocked nothing else"
    );
    for _ in 0..2 {
        h.clock.advance(Duration::from_secs(60));
        settle(&lib);
    }
    let letters = block_on(lib.dead_letters()).unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        (
            letters[0].consumer.as_str(),
            letters[0].event_type.as_str(),
            letters[0].attempts
        ),
        ("notices", "RentalReserved", 3)
    );
    // The rental itself went on: the failing notifier blocked nothing.
    assert_eq!(
        lib.member_page("m-1").unwrap().rentals[0].status,
        "confirmed"
    );
    assert_eq!(
        h.notices
            .notices()
            .iter()
            .map(|n| n.kind.as_str())
            .collect::<Vec<_>>(),
        ["RentalConfirmed"]
    );
    block_on(lib.replay_dead_letter(&letters[0].id)).unwrap();
    assert!(block_on(lib.dead_letters()).unwrap().is_empty());
    assert_eq!(h.notices.notices().last().unwrap().kind, "RentalReserved");
    let missing = block_on(lib.replay_dead_letter("notices@999")).unwrap_err();
    assert_eq!(missing.code(), ErrorCode::DeadLetterNotFound);
}

/// A gateway that never answers in time.
struct Slow;

#[async_trait]
impl PaymentGateway for Slow {
    async fn charge(
        &self,
        _: &MemberId,
        _: Points,
        _: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError> {
        futures_timer::Delay::new(Duration::from_secs(5)).await;
        Ok(PaymentReceipt {
            payment_id: "late".into(),
        })
    }
    async fn refund(&self, _: &ChargeRef) -> Result<(), PaymentError> {
        Ok(())
    }
}

#[test]
fn a_refund_during_a_payment_outage_waits_and_is_paid_once_payment_is_back() {
    let h = Harness::new();
    let down = Arc::new(AtomicBool::new(false));
    let flag = down.clone();
    let lib = block_on(
        h.builder()
            .breaker(BreakerConfig {
                failure_threshold: 2,
                cool_down: Duration::from_secs(30),
                call_timeout: None,
            })
            .max_attempts(3)
            .wrap_payment(move |inner| Arc::new(lendkit::PaymentSwitch::new(inner, flag)))
            .build(),
    )
    .unwrap();
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    down.store(true, Ordering::SeqCst);
    run(
        &lib,
        Command::CancelRental {
            rental_id: "r-1".into(),
            reason: None,
        },
        &Actor::member("m-1"),
    )
    .unwrap();
    // Many minutes of outage: the refund keeps waiting (the open circuit is not held against it) and is never dead-lettered.
    for _ in 0..20 {
        settle(&lib);
        h.clock.advance(Duration::from_secs(31));
    }
    assert_eq!(
        lib.member_page("m-1").unwrap().points,
        70,
        "no refund while payments are down"
    );
    assert!(block_on(lib.dead_letters()).unwrap().is_empty());
    down.store(false, Ordering::SeqCst);
    h.clock.advance(Duration::from_secs(300));
    settle(&lib);
    assert_eq!(lib.member_page("m-1").unwrap().points, 100);
    assert_eq!(
        lib.member_page("m-1").unwrap().rentals[0].payment_status,
        "refunded"
    );
    assert_eq!(count(&all_events(&lib), "PointsRefunded"), 1);
    check_invariants(&lib);
}

#[test]
fn slow_payments_time_out_and_open_the_circuit() {
    let lib = block_on(
        LibraryBuilder::new(
            Arc::new(InMemoryEventStore::new()),
            Arc::new(InMemoryEventBus::new()),
            Arc::new(SystemClock::new()),
        )
        .payment(Arc::new(Slow))
        .breaker(BreakerConfig {
            failure_threshold: 2,
            cool_down: Duration::from_secs(60),
            call_timeout: Some(Duration::from_millis(50)),
        })
        .build(),
    )
    .unwrap();
    register(&lib, "b-1", 1, 5);
    join(&lib, "m-1");
    for i in 0..2 {
        let err = reserve(&lib, "b-1", "m-1", &format!("r-{i}")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PaymentUnavailable, "{err}");
    }
    assert_eq!(lib.payment_circuit().as_str(), "open");
    let started = std::time::Instant::now();
    let err = reserve(&lib, "b-1", "m-1", "r-9").unwrap_err();
    assert!(
        matches!(err, lendkit::Error::PaymentUnavailable { retry_after } if retry_after > Duration::from_secs(50)),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "an open circuit fails without calling the gateway"
    );
    assert_eq!(
        count(&all_events(&lib), "RentalReserved"),
        0,
        "no payment, no rental"
    );
}

/// A store that refuses to store rentals, to show the refund after a charge whose rental could
/// not be stored.
fn no_rentals() -> Arc<Hooked> {
    Hooked::refusing(|commit| {
        commit
            .appends
            .iter()
            .any(|a| a.stream.kind == lendkit::ids::StreamKind::Rental)
            .then(|| StoreError::Backend("disk full".into()))
    })
}

#[test]
fn a_charge_whose_rental_cannot_be_stored_is_refunded_before_the_error_returns() {
    // A gateway outside the store (here the points gateway behind a wrapper): it charges first,
    // and the charge is given back when the rental cannot be stored.
    let lib = no_rentals().library(|b| b.wrap_payment(|inner| inner));
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    let err = reserve(&lib, "b-1", "m-1", "r-1").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Storage);
    let events = all_events(&lib);
    assert_eq!(count(&events, "PointsCharged"), 1);
    assert_eq!(
        count(&events, "PointsRefunded"),
        1,
        "the charge was given back"
    );
    settle(&lib);
    assert_eq!(lib.member_page("m-1").unwrap().points, 100);
    assert!(lib.member_page("m-1").unwrap().rentals.is_empty());
}

#[test]
fn with_the_in_store_point_accounts_a_reservation_that_cannot_be_stored_charges_nothing() {
    // The charge is in the reservation's own commit: the store refuses both or neither.
    let lib = no_rentals().library(|b| b);
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    let err = reserve(&lib, "b-1", "m-1", "r-1").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Storage);
    let events = all_events(&lib);
    assert_eq!(count(&events, "PointsCharged"), 0);
    assert_eq!(count(&events, "PointsRefunded"), 0);
    settle(&lib);
    assert_eq!(lib.member_page("m-1").unwrap().points, 100);
}

#[test]
fn a_reservation_and_its_charge_are_one_commit_and_concurrent_charges_on_one_account_all_land() {
    // Sixteen reservations by one member at once: each decides its charge on the account, the
    // ones that lose the race on the account decide again, and every one is charged once.
    let h = Harness::new();
    let lib = h.library();
    register(&lib, "b-1", 16, 5);
    join(&lib, "m-1");
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let lib = &lib;
                s.spawn(move || reserve(lib, "b-1", "m-1", &format!("r-{i}")).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outcomes {
        assert_eq!(o.types(), ["PointsCharged", "RentalReserved"]);
        let commands: std::collections::HashSet<_> =
            o.events.iter().map(|e| e.command_id.clone()).collect();
        assert_eq!(commands.len(), 1, "one commit, one command id");
    }
    settle(&lib);
    assert_eq!(lib.member_page("m-1").unwrap().points, 100 - 16 * 5);
    check_invariants(&lib);
}

/// Holds every charge until `n` charges are in flight, so reservations race past payment together.
struct Rendezvous {
    inner: Arc<dyn PaymentGateway>,
    barrier: Arc<std::sync::Barrier>,
}

#[async_trait]
impl PaymentGateway for Rendezvous {
    async fn charge(
        &self,
        m: &MemberId,
        a: Points,
        k: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError> {
        let receipt = self.inner.charge(m, a, k).await;
        self.barrier.wait();
        receipt
    }
    async fn refund(&self, c: &ChargeRef) -> Result<(), PaymentError> {
        self.inner.refund(c).await
    }
}

#[test]
fn two_members_racing_for_one_rental_id_pay_once_between_them() {
    let h = Harness::new();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let b = barrier.clone();
    let lib = Arc::new(
        block_on(
            h.builder()
                .wrap_payment(move |inner| Arc::new(Rendezvous { inner, barrier: b }))
                .build(),
        )
        .unwrap(),
    );
    register(&lib, "b-1", 2, 30);
    join(&lib, "m-1");
    join(&lib, "m-2");
    let racers: Vec<_> = ["m-1", "m-2"]
        .into_iter()
        .map(|m| {
            let lib = lib.clone();
            std::thread::spawn(move || reserve(&lib, "b-1", m, "r-1"))
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    let lost: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(lost.len(), 1, "exactly one reservation wins: {results:?}");
    assert_eq!(lost[0].code(), ErrorCode::RentalExists);
    settle(&lib);
    let points: Vec<u64> = ["m-1", "m-2"]
        .iter()
        .map(|m| lib.member_page(m).unwrap().points)
        .collect();
    assert_eq!(
        points.iter().sum::<u64>(),
        170,
        "one fee taken between them, the loser refunded: {points:?}"
    );
    check_invariants(&lib);
}

#[test]
fn library_futures_are_send_so_any_multithreaded_runtime_can_run_them() {
    fn send<T: Send>(future: T) -> T {
        future
    }
    let h = Harness::new();
    let lib = h.library();
    let join = Command::JoinMember {
        member_id: "m-1".into(),
        name: "Kim".into(),
        contact: None,
        group: None,
    };
    block_on(send(lib.execute_with_id(join, &librarian(), None))).unwrap();
    block_on(send(lib.settle())).unwrap();
    assert_eq!(block_on(send(lib.events(1, 10))).unwrap().len(), 2);
    block_on(send(lib.dead_letters())).unwrap();
}

#[test]
fn worker_counts_are_bounded() {
    let h = Harness::new();
    for n in [0, 65, u32::MAX] {
        let err = block_on(h.builder().workers("catalog", n).build())
            .err()
            .expect("refused");
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{n} workers: {err}");
    }
    let err = block_on(h.builder().workers("accounting", 2).build())
        .err()
        .expect("refused");
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(block_on(h.builder().workers("catalog", 64).build()).is_ok());
}

fn reserve_without_rental_id(book: &str, member: &str) -> Command {
    Command::ReserveBook {
        wait: None,
        book_id: book.into(),
        member_id: member.into(),
        rental_id: None,
        delivery_address: None,
    }
}

#[test]
fn sixteen_concurrent_retries_of_one_command_id_make_one_rental_and_one_charge() {
    let h = Harness::new();
    let lib = Arc::new(h.library());
    register(&lib, "b-1", 20, 5);
    join(&lib, "m-1");
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (lib, barrier) = (lib.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                block_on(lib.execute_with_id(
                    reserve_without_rental_id("b-1", "m-1"),
                    &Actor::member("m-1"),
                    Some(CommandId::new("c-77")),
                ))
            })
        })
        .collect();
    let outcomes: Vec<_> = callers
        .into_iter()
        .map(|t| t.join().unwrap().expect("every retry succeeds"))
        .collect();
    let first = &outcomes[0];
    for o in &outcomes {
        assert_eq!(
            o.rental_id, first.rental_id,
            "one rental id for every caller"
        );
        assert_eq!(
            o.events, first.events,
            "every caller gets the first outcome"
        );
    }
    settle(&lib);
    let events = all_events(&lib);
    assert_eq!(count(&events, "RentalReserved"), 1);
    assert_eq!(count(&events, "PointsCharged"), 1);
    assert_eq!(count(&events, "PointsRefunded"), 0);
    assert_eq!(lib.member_page("m-1").unwrap().points, 95);
    check_invariants(&lib);
}

#[test]
fn the_system_actor_and_system_command_ids_are_lendkits_own() {
    let h = Harness::new();
    let lib = h.library();
    register(&lib, "b-1", 1, 5);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    let head = all_events(&lib).len();
    for command in [
        Command::StartLoan {
            rental_id: "r-1".into(),
            branch: None,
            override_reason: None,
        },
        Command::CancelRental {
            rental_id: "r-1".into(),
            reason: None,
        },
        Command::TopUp {
            member_id: "m-1".into(),
            points: 5,
        },
        reserve_without_rental_id("b-1", "m-1"),
    ] {
        let err = run(&lib, command, &Actor::System).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthorized, "{err}");
    }
    let err = block_on(lib.execute_with_id(
        Command::StartLoan {
            rental_id: "r-1".into(),
            branch: None,
            override_reason: None,
        },
        &Actor::member("m-1"),
        Some(CommandId::new("system:charge:m-1:r-1")),
    ))
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    assert_eq!(all_events(&lib).len(), head, "nothing was stored");
}

#[test]
fn amounts_past_2_pow_53_are_refused_and_a_refund_is_never_lost() {
    let h = Harness::new();
    let lib = h.library();
    let max = lendkit::ids::MAX_AMOUNT;
    for fee in [max + 1, u64::MAX, 1 << 63] {
        let err = run(
            &lib,
            Command::RegisterBook {
                book_id: "b-x".into(),
                title: "x".into(),
                author: None,
                copies: 1,
                fee,
                item_type: None,
                branch: None,
            },
            &librarian(),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "fee {fee}: {err}");
    }
    register(&lib, "b-1", 1, 10);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    // 90 points left, 10 refundable: a top-up may take the balance to max - 10 and no further.
    let top_up = |points| {
        run(
            &lib,
            Command::TopUp {
                member_id: "m-1".into(),
                points,
            },
            &librarian(),
        )
    };
    let err = top_up(max - 99).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    top_up(max - 100).unwrap();
    run(
        &lib,
        Command::CancelRental {
            rental_id: "r-1".into(),
            reason: None,
        },
        &Actor::member("m-1"),
    )
    .unwrap();
    settle(&lib);
    assert_eq!(
        lib.member_page("m-1").unwrap().points,
        max,
        "the refund arrived"
    );
    assert_eq!(count(&all_events(&lib), "PointsRefunded"), 1);
    assert!(block_on(lib.dead_letters()).unwrap().is_empty());
    let err = top_up(1).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    check_invariants(&lib);
}

#[test]
fn reads_are_authorized_like_commands_when_an_actor_is_given() {
    let h = Harness::new();
    let lib = h.library();
    register(&lib, "b-1", 1, 5);
    join(&lib, "m-1");
    join(&lib, "m-2");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    let (kim, lee, staff) = (Actor::member("m-1"), Actor::member("m-2"), librarian());
    let unauthorized = |r: lendkit::Result<()>| {
        assert_eq!(r.unwrap_err().code(), ErrorCode::Unauthorized);
    };
    assert_eq!(lib.reader(&kim).member_page("m-1").unwrap().points, 95);
    unauthorized(lib.reader(&lee).member_page("m-1").map(drop));
    assert_eq!(lib.reader(&staff).member_page("m-1").unwrap().points, 95);
    assert_eq!(lib.reader(&lee).book_list().unwrap().len(), 1);
    assert!(block_on(lib.reader(&kim).rental("r-1")).is_ok());
    unauthorized(block_on(lib.reader(&lee).rental("r-1")).map(drop));
    unauthorized(block_on(lib.reader(&lee).rental("r-unknown")).map(drop));
    for member in [&kim, &lee] {
        unauthorized(block_on(lib.reader(member).events(1, 10)).map(drop));
        unauthorized(block_on(lib.reader(member).head()).map(drop));
        unauthorized(block_on(lib.reader(member).dead_letters()).map(drop));
        unauthorized(block_on(lib.reader(member).replay_dead_letter("x")));
        unauthorized(block_on(lib.reader(member).consumers()).map(drop));
    }
    unauthorized(lib.reader(&Actor::System).book_list().map(drop));
    assert!(!block_on(lib.reader(&staff).events(1, 10))
        .unwrap()
        .is_empty());
    assert!(block_on(lib.reader(&staff).dead_letters())
        .unwrap()
        .is_empty());
    assert_eq!(
        block_on(lib.reader(&staff).replay_dead_letter("x"))
            .unwrap_err()
            .code(),
        ErrorCode::DeadLetterNotFound
    );
}

#[test]
fn concurrent_retries_of_a_rental_step_all_get_the_first_outcome() {
    let h = Harness::new();
    let lib = Arc::new(h.library());
    register(&lib, "b-1", 1, 5);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (lib, barrier) = (lib.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                block_on(lib.execute_with_id(
                    Command::StartLoan {
                        rental_id: "r-1".into(),
                        branch: None,
                        override_reason: None,
                    },
                    &Actor::member("m-1"),
                    Some(CommandId::new("c-loan")),
                ))
            })
        })
        .collect();
    let outcomes: Vec<_> = callers
        .into_iter()
        .map(|t| {
            t.join()
                .unwrap()
                .expect("a retry is never refused by its own first try")
        })
        .collect();
    assert!(outcomes.iter().all(|o| o.events == outcomes[0].events));
    assert_eq!(count(&all_events(&lib), "LoanStarted"), 1);
}

const RULES: &str = include_str!("fixtures/circulation-rules.toml");

#[test]
fn circulation_rules_are_stored_as_events_and_explained_for_a_member_and_a_book() {
    let h = Harness::new();
    let lib = h.library();
    let change = |rules: &str| Command::ChangeCirculationRules {
        rules: rules.into(),
        format: None,
    };
    run(
        &lib,
        Command::RegisterBook {
            book_id: "dvd-1".into(),
            title: "A film".into(),
            author: None,
            copies: 1,
            fee: 5,
            item_type: Some("dvd".into()),
            branch: None,
        },
        &librarian(),
    )
    .unwrap();
    register(&lib, "b-1", 1, 5);
    run(
        &lib,
        Command::JoinMember {
            member_id: "s-1".into(),
            name: "Student".into(),
            contact: None,
            group: Some("student".into()),
        },
        &librarian(),
    )
    .unwrap();
    join(&lib, "m-1");
    // Before any rules: the library's defaults (loan_days) for everyone.
    let default = block_on(lib.explain_policy("m-1", "b-1", None)).unwrap();
    assert_eq!(default["version"], 0);
    assert_eq!(
        default["explanation"]["policies"]["loan"]["period"],
        "14 days"
    );
    // Only a librarian changes the rules, and a bad table stores nothing, naming row and field.
    let err = run(&lib, change(RULES), &Actor::member("m-1")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthorized);
    let bad = RULES.replace("loan = \"dvd\"", "loan = \"nope\"");
    let err = run(&lib, change(&bad), &librarian()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(err.to_string().contains("rule 3, field loan"), "{err}");
    let stored = run(&lib, change(RULES), &librarian()).unwrap();
    assert_eq!(stored.types(), ["CirculationRulesChanged"]);
    // The same table again changes nothing; a new one is version 2.
    assert!(run(&lib, change(RULES), &librarian())
        .unwrap()
        .events
        .is_empty());
    let explain =
        |member: &str, book: &str| block_on(lib.explain_policy(member, book, None)).unwrap();
    let student_dvd = explain("s-1", "dvd-1");
    assert_eq!(student_dvd["version"], 1);
    assert_eq!(student_dvd["group"], "student");
    assert_eq!(student_dvd["item_type"], "dvd");
    assert_eq!(
        student_dvd["explanation"]["policies"]["loan"]["name"],
        "dvd"
    );
    assert_eq!(
        explain("m-1", "b-1")["explanation"]["policies"]["loan"]["name"],
        "adult"
    );
    assert_eq!(
        explain("s-1", "b-1")["explanation"]["policies"]["loan"]["name"],
        "student"
    );
    // A member reads only their own; a self-registered member cannot pick a group.
    let err = block_on(
        lib.reader(&Actor::member("m-1"))
            .explain_policy("s-1", "b-1", None),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthorized);
    let err = run(
        &lib,
        Command::JoinMember {
            member_id: "x-1".into(),
            name: "X".into(),
            contact: None,
            group: Some("staff".into()),
        },
        &Actor::member("x-1"),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthorized);
    assert_eq!(
        block_on(lib.explain_policy("nobody", "b-1", None))
            .unwrap_err()
            .code(),
        ErrorCode::MemberNotFound
    );
}

#[test]
fn a_return_decided_again_after_another_writer_moved_the_rental_is_decided_on_the_stored_rental() {
    // The return's expansion notes the rental at version v; another writer then stores an
    // overdue notice on it (v + 1), so the return is decided on a version it did not expand on,
    // and decided again. The second decision must start from the stored rental (on loan, with
    // the notice), not from the first decision's state, in which the book was already back.
    // The member's stream is read while the return is expanded, after the rental's version was
    // noted: the other writer steps in there.
    let (store, pending) =
        Hooked::interloping(StreamId::new(lendkit::ids::StreamKind::Member, "m-1"));
    let lib = store.library(|b| b);
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    let member = Actor::member("m-1");
    let loan = Command::StartLoan {
        rental_id: "r-1".into(),
        branch: None,
        override_reason: None,
    };
    run(&lib, loan, &member).unwrap();
    settle(&lib);

    let rental = StreamId::new(lendkit::ids::StreamKind::Rental, "r-1");
    let stored = block_on(store.inner.read_stream(&rental)).unwrap();
    let last = stored.last().unwrap().clone();
    let due = stored
        .iter()
        .find_map(|e| match &e.event {
            lendkit::event::Event::Rental(lendkit::rentals::RentalEvent::LoanStarted {
                due,
                ..
            }) => Some(*due),
            _ => None,
        })
        .unwrap();
    let command_id = CommandId::new("another-writer");
    let notice = Envelope {
        event_id: format!("{rental}#{}", last.version + 1),
        stream: rental.clone(),
        version: last.version + 1,
        position: 0,
        occurred_at: last.occurred_at,
        correlation_id: "r-1".into(),
        causation_id: command_id.to_string(),
        command_id: command_id.clone(),
        actor: Actor::System,
        event: lendkit::event::Event::Rental(lendkit::rentals::RentalEvent::LoanOverdue {
            rental: RentalId::new("r-1"),
            member: MemberId::new("m-1"),
            book: lendkit::ids::BookId::new("b-1"),
            due,
        }),
    };
    *pending.lock().unwrap() = Some(Commit {
        command_id,
        fingerprint: String::new(),
        appends: vec![lendkit::ports::StreamAppend {
            stream: rental.clone(),
            expected_version: last.version,
            events: vec![notice],
        }],
    });

    let back = Command::ReturnBook {
        rental_id: "r-1".into(),
        returned_at: None,
    };
    let outcome = run(&lib, back, &member);
    assert!(
        pending.lock().unwrap().is_none(),
        "the other writer's notice was stored during the return"
    );
    let outcome = outcome.expect("the book goes back although the rental moved meanwhile");
    assert_eq!(
        outcome
            .events
            .iter()
            .map(|e| e.type_name())
            .collect::<Vec<_>>(),
        ["BookReturned"]
    );
    let types: Vec<_> = block_on(store.inner.read_stream(&rental))
        .unwrap()
        .iter()
        .map(|e| e.type_name())
        .collect();
    assert_eq!(
        types[types.len() - 2..],
        ["LoanOverdue", "BookReturned"],
        "the return is stored after the other writer's notice"
    );
    settle(&lib);
    check_invariants(&lib);
}
