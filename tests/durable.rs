//! The embedded default on a real sled file: restarts keep everything, consumers resume from
//! their durable checkpoints, views are rebuilt on open, the background runner works the saga
//! without being asked, and subscriptions see every committed event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lendkit::adapters::{ManualClock, RecordingNotifier};
use lendkit::{block_on, Actor, Command, Config, OpenLibrary};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn manual(notices: &Arc<RecordingNotifier>) -> Config {
    Config {
        background: false,
        clock: Some(Arc::new(ManualClock::new(START))),
        notifier: Some(notices.clone()),
        ..Config::default()
    }
}

#[test]
fn reservations_taken_while_the_catalog_is_paused_are_settled_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.db");
    let notices = Arc::new(RecordingNotifier::new());
    {
        let lib = OpenLibrary::open(&db, manual(&notices)).unwrap();
        register(&lib, "b-1", 2, 10);
        for m in 0..5 {
            join(&lib, &format!("m-{m}"));
        }
        lib.pause("catalog").unwrap();
        for m in 0..5 {
            reserve(&lib, "b-1", &format!("m-{m}"), &format!("r-{m}")).unwrap();
        }
        settle(&lib);
        assert_eq!(count(&all_events(&lib), "CopyAllocated"), 0);
        lib.close().unwrap();
    }
    // A new process: the catalog consumer starts from its durable checkpoint, before the reservations.
    let lib = OpenLibrary::open(&db, manual(&notices)).unwrap();
    settle(&lib);
    let events = all_events(&lib);
    assert_eq!(count(&events, "CopyAllocated"), 2);
    assert_eq!(count(&events, "CopyAllocationFailed"), 3);
    assert_eq!(count(&events, "PointsRefunded"), 3);
    check_invariants(&lib);
    // Once more: nothing is applied twice after another restart.
    lib.close().unwrap();
    let lib = OpenLibrary::open(&db, manual(&notices)).unwrap();
    settle(&lib);
    assert_eq!(all_events(&lib).len(), events.len());
    check_invariants(&lib);
}

#[test]
fn a_retry_after_a_restart_returns_the_first_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.db");
    let notices = Arc::new(RecordingNotifier::new());
    let reserve = || Command::ReserveBook {
        wait: None,
        book_id: "b-1".into(),
        member_id: "m-1".into(),
        rental_id: None,
        delivery_address: None,
    };
    let id = || Some(lendkit::CommandId::new("c-77"));
    let first = {
        let lib = OpenLibrary::open(&db, manual(&notices)).unwrap();
        register(&lib, "b-1", 2, 10);
        join(&lib, "m-1");
        let first = block_on(lib.execute_with_id(reserve(), &Actor::member("m-1"), id())).unwrap();
        settle(&lib);
        lib.close().unwrap();
        first
    };
    let lib = OpenLibrary::open(&db, manual(&notices)).unwrap();
    let head = all_events(&lib).len();
    let again = block_on(lib.execute_with_id(reserve(), &Actor::member("m-1"), id())).unwrap();
    assert_eq!(again.rental_id, first.rental_id);
    assert_eq!(again.events, first.events);
    let other = Command::TopUp {
        member_id: "m-1".into(),
        points: 5,
    };
    let err = block_on(lib.execute_with_id(other, &Actor::librarian("lib-1"), id())).unwrap_err();
    assert_eq!(err.code(), lendkit::ErrorCode::CommandIdReused);
    settle(&lib);
    assert_eq!(all_events(&lib).len(), head, "the retry stored nothing");
    assert_eq!(lib.member_page("m-1").unwrap().points, 90);
}

#[test]
fn a_consumer_group_split_across_a_restart_handles_each_event_once_in_stream_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.db");
    let notices = Arc::new(RecordingNotifier::new());
    let config = || {
        let mut c = manual(&notices);
        c.workers = [
            ("catalog".to_owned(), 3),
            ("notices".to_owned(), 3),
            ("payments".to_owned(), 2),
        ]
        .into_iter()
        .collect();
        c
    };
    {
        let lib = OpenLibrary::open(&db, config()).unwrap();
        register(&lib, "b-1", 3, 10);
        register(&lib, "b-2", 1, 10);
        for m in 0..8 {
            join(&lib, &format!("m-{m}"));
            reserve(
                &lib,
                if m % 2 == 0 { "b-1" } else { "b-2" },
                &format!("m-{m}"),
                &format!("r-{m}"),
            )
            .unwrap();
        }
        // Only part of the work before the "crash": one pass, then close.
        block_on(lib.run_pending()).unwrap();
        lib.close().unwrap();
    }
    let lib = OpenLibrary::open(&db, config()).unwrap();
    settle(&lib);
    run(
        &lib,
        Command::CancelRental {
            rental_id: "r-0".into(),
            reason: None,
        },
        &Actor::member("m-0"),
    )
    .unwrap();
    settle(&lib);
    let events = all_events(&lib);
    let by_id: HashMap<&str, _> = events.iter().map(|e| (e.event_id.as_str(), e)).collect();
    let mut seen = HashSet::new();
    let mut last: HashMap<String, u64> = HashMap::new();
    for n in notices.notices() {
        assert!(
            seen.insert(n.event_id.clone()),
            "{} notified twice",
            n.event_id
        );
        let e = by_id[n.event_id.as_str()];
        let prev = last.insert(e.stream.to_string(), e.version).unwrap_or(0);
        assert!(e.version > prev, "{} notified out of order", e.stream);
    }
    let notifiable = [
        "RentalReserved",
        "RentalConfirmed",
        "RentalCanceled",
        "PaymentRefunded",
    ];
    assert_eq!(
        seen.len(),
        events
            .iter()
            .filter(|e| notifiable.contains(&e.type_name()))
            .count()
    );
    check_invariants(&lib);
}

#[test]
fn views_rebuilt_on_open_equal_the_views_before_closing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.db");
    let notices = Arc::new(RecordingNotifier::new());
    let before = {
        let lib = OpenLibrary::open(&db, manual(&notices)).unwrap();
        register(&lib, "b-1", 2, 10);
        join(&lib, "m-1");
        reserve(&lib, "b-1", "m-1", "r-1").unwrap();
        settle(&lib);
        run(
            &lib,
            Command::StartLoan {
                rental_id: "r-1".into(),
                branch: None,
                override_reason: None,
            },
            &Actor::member("m-1"),
        )
        .unwrap();
        settle(&lib);
        lib.views()
    };
    let lib = OpenLibrary::open(&db, manual(&notices)).unwrap();
    settle(&lib);
    assert_eq!(lib.views(), before);
    assert_eq!(lib.member_page("m-1").unwrap().rentals[0].status, "on_loan");
}

#[test]
fn the_background_runner_works_the_saga_and_subscribers_see_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let lib = OpenLibrary::open(dir.path().join("lib.db"), Config::default()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let id = lib.subscribe(Box::new(move |e| sink.lock().unwrap().push(e.position)));
    register(&lib, "b-1", 1, 10);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    // Nobody calls settle: the runner confirms the rental by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while lib
        .member_page("m-1")
        .map(|p| p.rentals.first().map(|r| r.status.clone()))
        .ok()
        .flatten()
        .as_deref()
        != Some("confirmed")
    {
        assert!(
            Instant::now() < deadline,
            "the background runner did not confirm the rental"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    while seen.lock().unwrap().len() < block_on(lib.head()).unwrap() as usize {
        assert!(Instant::now() < deadline, "the subscriber missed events");
        std::thread::sleep(Duration::from_millis(10));
    }
    let positions = seen.lock().unwrap().clone();
    assert_eq!(
        positions,
        (1..=positions.len() as u64).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert!(lib.unsubscribe(id));
    assert!(!lib.unsubscribe(id));
    lib.close().unwrap();
}

#[test]
fn dead_letters_survive_a_restart_and_can_be_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.db");
    let notices = Arc::new(RecordingNotifier::new());
    let clock = ManualClock::new(START);
    let config = || Config {
        max_attempts: 2,
        clock: Some(Arc::new(clock.clone())),
        ..manual(&notices)
    };
    {
        let lib = OpenLibrary::open(&db, config()).unwrap();
        register(&lib, "b-1", 1, 10);
        join(&lib, "m-1");
        notices.fail_next(2);
        reserve(&lib, "b-1", "m-1", "r-1").unwrap();
        settle(&lib);
        clock.advance(Duration::from_secs(10));
        settle(&lib);
        assert_eq!(block_on(lib.dead_letters()).unwrap().len(), 1);
        lib.close().unwrap();
    }
    let lib = OpenLibrary::open(&db, config()).unwrap();
    let letters = block_on(lib.dead_letters()).unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    block_on(lib.replay_dead_letter(&letters[0].id)).unwrap();
    assert!(block_on(lib.dead_letters()).unwrap().is_empty());
    assert!(notices.notices().iter().any(|n| n.kind == "RentalReserved"));
}

#[test]
fn a_subscriber_sees_only_what_is_committed_after_it_subscribed() {
    let notices = Arc::new(RecordingNotifier::new());
    let lib = OpenLibrary::in_memory(manual(&notices)).unwrap();
    register(&lib, "b-1", 1, 10);
    join(&lib, "m-1");
    let head = block_on(lib.head()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    lib.subscribe(Box::new(move |e| sink.lock().unwrap().push(e.position)));
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    block_on(lib.deliver()).unwrap();
    let positions = seen.lock().unwrap().clone();
    assert_eq!(
        positions,
        (head + 1..=block_on(lib.head()).unwrap()).collect::<Vec<_>>()
    );
}

/// With nobody subscribed, a delivery (which then reads no events) counts everything committed as
/// delivered; a subscriber added afterwards, then removed, then another, each get exactly the
/// events committed while they listened.
#[test]
fn delivering_to_nobody_counts_all_as_delivered_and_later_subscribers_miss_nothing() {
    let notices = Arc::new(RecordingNotifier::new());
    let lib = OpenLibrary::in_memory(manual(&notices)).unwrap();
    register(&lib, "b-1", 3, 10);
    join(&lib, "m-1");
    settle(&lib);
    assert_eq!(lib.delivered(), 0);
    block_on(lib.deliver()).unwrap();
    let head = block_on(lib.head()).unwrap();
    assert_eq!(lib.delivered(), head, "everything counts as delivered");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let first = lib.subscribe(Box::new(move |e| sink.lock().unwrap().push(e.position)));
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    block_on(lib.deliver()).unwrap();
    let after_first = block_on(lib.head()).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        (head + 1..=after_first).collect::<Vec<_>>()
    );
    assert!(lib.unsubscribe(first));
    reserve(&lib, "b-1", "m-1", "r-2").unwrap();
    settle(&lib);
    block_on(lib.deliver()).unwrap();
    let unheard = block_on(lib.head()).unwrap();
    assert_eq!(lib.delivered(), unheard);
    let later = Arc::new(Mutex::new(Vec::new()));
    let sink = later.clone();
    lib.subscribe(Box::new(move |e| sink.lock().unwrap().push(e.position)));
    reserve(&lib, "b-1", "m-1", "r-3").unwrap();
    settle(&lib);
    block_on(lib.deliver()).unwrap();
    assert_eq!(
        *later.lock().unwrap(),
        (unheard + 1..=block_on(lib.head()).unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(seen.lock().unwrap().len() as u64, after_first - head);
}

/// `lendkit::migrate` copies a library from sled to SQLite and back: the same events at the same
/// positions with the same ids, the same command records (a retry after the move still returns
/// the first outcome), the same checkpoints and dead letters, and the same views.
#[test]
fn a_library_migrates_between_stores_with_positions_ids_and_checkpoints_intact() {
    use lendkit::ports::EventStore;
    use lendkit::Store;
    let dir = tempfile::tempdir().unwrap();
    let (sled_path, sqlite_path, back) = (
        dir.path().join("lib.db"),
        dir.path().join("lib.sqlite"),
        dir.path().join("back.db"),
    );
    let notices = Arc::new(RecordingNotifier::new());
    let reserved = {
        let lib = OpenLibrary::open(&sled_path, manual(&notices)).unwrap();
        register(&lib, "b-1", 2, 10);
        join(&lib, "m-1");
        join(&lib, "m-2");
        let r = block_on(lib.execute_with_id(
            Command::ReserveBook {
                wait: None,
                book_id: "b-1".into(),
                member_id: "m-1".into(),
                rental_id: Some("r-1".into()),
                delivery_address: None,
            },
            &Actor::member("m-1"),
            Some(lendkit::CommandId::new("c-1")),
        ))
        .unwrap();
        settle(&lib);
        reserve(&lib, "b-1", "m-2", "r-2").unwrap();
        settle(&lib);
        lib.close().unwrap();
        r
    };
    let (done, from, to) = block_on(lendkit::migrate(
        &sled_path,
        Store::Auto,
        &sqlite_path,
        Store::Auto,
    ))
    .unwrap();
    assert_eq!((from, to), (Store::Sled, Store::Sqlite));
    assert!(done.events > 10 && done.checkpoints > 0, "{done:?}");
    // A second migration into a library that has events is refused.
    let again = block_on(lendkit::migrate(
        &sled_path,
        Store::Auto,
        &sqlite_path,
        Store::Auto,
    ));
    assert_eq!(again.unwrap_err().code(), lendkit::ErrorCode::InvalidInput);
    block_on(lendkit::migrate(
        &sqlite_path,
        Store::Auto,
        &back,
        Store::Sled,
    ))
    .unwrap();
    let open = |p: &std::path::Path| -> Arc<dyn EventStore> {
        if p.extension().is_some_and(|x| x == "sqlite") {
            Arc::new(
                lendkit::adapters::SqliteEventStore::open(p, lendkit::Durability::EveryCommit)
                    .unwrap(),
            )
        } else {
            Arc::new(
                lendkit::adapters::SledEventStore::open(p, lendkit::Durability::EveryCommit)
                    .unwrap(),
            )
        }
    };
    let stores: Vec<Arc<dyn EventStore>> = [&sled_path, &sqlite_path, &back]
        .into_iter()
        .map(|p| open(p.as_path()))
        .collect();
    let log = |s: &Arc<dyn EventStore>| block_on(s.read_all(0, usize::MAX)).unwrap();
    let first = log(&stores[0]);
    let record = |s: &Arc<dyn EventStore>| {
        block_on(s.command(&lendkit::CommandId::new("c-1")))
            .unwrap()
            .unwrap()
    };
    for s in &stores[1..] {
        assert_eq!(log(s), first, "the log differs after migrating");
        assert_eq!(
            block_on(s.checkpoints()).unwrap(),
            block_on(stores[0].checkpoints()).unwrap()
        );
        assert_eq!(record(s), record(&stores[0]));
    }
    drop(stores);
    // Opened as a library, the copy answers a retry with the first outcome and shows the same pages.
    let lib = OpenLibrary::open(&sqlite_path, manual(&notices)).unwrap();
    let retried = block_on(lib.execute_with_id(
        Command::ReserveBook {
            wait: None,
            book_id: "b-1".into(),
            member_id: "m-1".into(),
            rental_id: Some("r-1".into()),
            delivery_address: None,
        },
        &Actor::member("m-1"),
        Some(lendkit::CommandId::new("c-1")),
    ))
    .unwrap();
    assert_eq!(retried.events, reserved.events);
    assert_eq!(lib.member_page("m-1").unwrap().points, 90);
    assert_eq!(lib.book_list()[0].available, 0);
}

#[test]
fn an_idle_partition_is_caught_up_in_the_stored_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.db");
    let notices = Arc::new(RecordingNotifier::new());
    let config = || {
        let mut config = manual(&notices);
        for policy in ["catalog", "rentals", "notices"] {
            config.workers.insert(policy.to_owned(), 8);
        }
        config
    };
    let head = {
        let lib = OpenLibrary::open(&db, config()).unwrap();
        register(&lib, "b-1", 2, 10);
        join(&lib, "m-1");
        reserve(&lib, "b-1", "m-1", "r-1").unwrap();
        settle(&lib);
        let head = block_on(lib.head()).unwrap();
        lib.close().unwrap();
        head
    };
    // Most of each policy's eight workers never had an event routed to them; the checkpoints
    // they stored say they are caught up all the same (an old one would show as lag, and have
    // the log relayed from there at every open).
    let lib = OpenLibrary::open(&db, config()).unwrap();
    let policies: Vec<_> = block_on(lib.consumers())
        .into_iter()
        .filter(|c| c.workers == 8)
        .collect();
    assert_eq!(policies.len(), 3, "{policies:?}");
    for c in policies {
        assert_eq!(c.checkpoint, head, "{} reopened behind", c.name);
    }
}
