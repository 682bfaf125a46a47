//! `OpenLibrary::connect`: several libraries in one process, connected to one PostgreSQL
//! schema and one NATS namespace, behave as one library — the saga runs once, whoever took
//! the command and whoever pulled the event; every process's views agree with a fresh
//! rebuild from the log; the stream holds the log, position for position.
//!
//! Needs `LENDKIT_PG_URL` and `LENDKIT_NATS_URL` (both set by `.ci/run`); without them each
//! test prints `skipped: …` and passes. Each test uses a schema and namespace of its own,
//! dropped when it ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lendkit::adapters::{NatsEventBus, PgEventStore, RecordingNotifier};
use lendkit::ports::EventStore;
use lendkit::{block_on, Actor, Command, Config, ConnectOptions, OpenLibrary};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn servers() -> Option<(String, String)> {
    let pg = std::env::var("LENDKIT_PG_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let nats = std::env::var("LENDKIT_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    match (pg, nats) {
        (Some(pg), Some(nats)) => Some((pg, nats)),
        _ => {
            use std::io::Write;
            let test = std::thread::current().name().unwrap_or("a test").to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "skipped: LENDKIT_PG_URL or LENDKIT_NATS_URL is not set ({test} needs PostgreSQL and NATS)"
            );
            None
        }
    }
}

/// A schema and namespace for one test, dropped at the end.
struct Place {
    pg: String,
    nats: String,
    name: String,
}

impl Place {
    fn new(pg: &str, nats: &str, tag: &str) -> Place {
        let name = format!("lk_c_{}_{tag}", std::process::id());
        let _ = PgEventStore::drop_schema(pg, &name);
        let _ = NatsEventBus::delete_namespace(nats, &name);
        Place {
            pg: pg.into(),
            nats: nats.into(),
            name,
        }
    }

    fn store(&self) -> PgEventStore {
        PgEventStore::connect(&self.pg, ConnectOptions::named(&self.name).pg).unwrap()
    }

    fn connect(&self) -> OpenLibrary {
        self.connect_with(None)
    }

    fn connect_with(&self, notifier: Option<Arc<RecordingNotifier>>) -> OpenLibrary {
        let mut options = ConnectOptions::named(&self.name);
        options.nats.ack_wait = Duration::from_secs(2);
        let config = Config {
            background: false,
            notifier: notifier.map(|n| n as Arc<dyn lendkit::ports::Notifier>),
            ..Config::default()
        };
        OpenLibrary::connect(&self.pg, &self.nats, options, config).unwrap()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = PgEventStore::drop_schema(&self.pg, &self.name);
        let _ = NatsEventBus::delete_namespace(&self.nats, &self.name);
    }
}

/// Settles every library in turn until every policy's saved checkpoint (shared by the
/// processes) and every process's views have reached the log's head.
fn settle_all(place: &Place, libs: &[&OpenLibrary]) {
    let store = place.store();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        for lib in libs {
            block_on(lib.settle()).unwrap();
        }
        let head = block_on(store.head()).unwrap();
        let policies = block_on(store.checkpoints()).unwrap();
        let policies_done = !policies.is_empty() && policies.iter().all(|(_, p)| *p >= head);
        let views_done = libs.iter().all(|lib| {
            block_on(lib.consumers())
                .iter()
                .filter(|c| matches!(c.name.as_str(), "book_list" | "member_pages"))
                .all(|c| c.checkpoint >= head)
        });
        if policies_done && views_done {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the libraries did not settle: head {head}, checkpoints {policies:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reserve(book: &str, member: &str) -> Command {
    Command::ReserveBook {
        book_id: book.into(),
        member_id: member.into(),
        rental_id: None,
        delivery_address: None,
        wait: None,
    }
}

#[test]
fn two_processes_run_one_saga_and_agree_on_every_view() {
    let Some((pg, nats)) = servers() else { return };
    let place = Place::new(&pg, &nats, "saga");
    // Only `a` has a notifier: `b` must leave every notice to it.
    let notices = Arc::new(RecordingNotifier::new());
    let a = place.connect_with(Some(Arc::clone(&notices)));
    let b = place.connect();
    let librarian = Actor::librarian("lib-1");
    a.execute_blocking(
        Command::RegisterBook {
            book_id: "isbn-1".into(),
            title: "Domain-Driven Design".into(),
            author: None,
            copies: 2,
            fee: 30,
            item_type: None,
            branch: None,
        },
        &librarian,
    );
    for (i, lib) in [&a, &b, &a, &b, &a].iter().enumerate() {
        lib.execute_blocking(
            Command::JoinMember {
                member_id: format!("m-{i}"),
                name: format!("Member {i}"),
                contact: None,
                group: None,
            },
            &librarian,
        );
    }
    // Five members race for two copies, through both processes.
    for (i, lib) in [&a, &b, &a, &b, &a].iter().enumerate() {
        lib.execute_blocking(
            reserve("isbn-1", &format!("m-{i}")),
            &Actor::member(format!("m-{i}")),
        );
    }
    // `b` settles first: without the rule it would take (and drop) the notices.
    settle_all(&place, &[&b, &a]);

    // The log: two confirmed, three canceled and refunded, each once.
    let log = block_on(a.events(1, 100_000)).unwrap();
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=log.len() as u64).collect::<Vec<_>>());
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &log {
        *by_type.entry(e.type_name()).or_default() += 1;
    }
    assert_eq!(by_type.get("RentalConfirmed"), Some(&2), "{by_type:?}");
    assert_eq!(by_type.get("RentalCanceled"), Some(&3), "{by_type:?}");
    assert_eq!(by_type.get("PointsRefunded"), Some(&3), "{by_type:?}");
    assert_eq!(by_type.get("PointsCharged"), Some(&5), "{by_type:?}");

    // Every notice reached the one notifier, once: five reservations, two confirmations,
    // three cancellations, three refunds.
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for n in notices.notices() {
        *kinds.entry(n.kind.clone()).or_default() += 1;
    }
    assert_eq!(kinds.get("RentalReserved"), Some(&5), "{kinds:?}");
    assert_eq!(kinds.get("RentalConfirmed"), Some(&2), "{kinds:?}");
    assert_eq!(kinds.get("RentalCanceled"), Some(&3), "{kinds:?}");

    // Both processes' views, and a third process's fresh rebuild, agree.
    let c = place.connect();
    settle_all(&place, &[&a, &b, &c]);
    for lib in [&a, &b] {
        assert_eq!(lib.book_list(), c.book_list());
        for i in 0..5 {
            let m = format!("m-{i}");
            assert_eq!(lib.member_page(&m).unwrap(), c.member_page(&m).unwrap());
        }
    }
    assert_eq!(c.book_list()[0].available, 0);
    let points: Vec<u64> = (0..5)
        .map(|i| c.member_page(&format!("m-{i}")).unwrap().points)
        .collect();
    assert_eq!(points.iter().filter(|&&p| p == 70).count(), 2, "{points:?}");
    assert_eq!(
        points.iter().filter(|&&p| p == 100).count(),
        3,
        "{points:?}"
    );

    // The stream holds the log, sequence for position.
    let bus = NatsEventBus::connect(
        &nats,
        ConnectOptions::named(&place.name).nats,
        std::sync::Arc::new(place.store()),
    )
    .unwrap();
    assert_eq!(
        block_on(bus.stream_last_sequence()).unwrap(),
        block_on(a.head()).unwrap()
    );
}

#[test]
fn a_connected_library_refuses_immediate_reactions_and_unreachable_servers() {
    let Some((pg, nats)) = servers() else { return };
    let place = Place::new(&pg, &nats, "refuse");
    let config = Config {
        immediate_reactions: true,
        background: false,
        ..Config::default()
    };
    let err = OpenLibrary::connect(&pg, &nats, ConnectOptions::named(&place.name), config)
        .err()
        .unwrap();
    assert_eq!(err.code().as_str(), "INVALID_INPUT", "{err}");
    let mut options = ConnectOptions::named(&place.name);
    options.nats.connect_timeout = Duration::from_millis(500);
    let config = Config {
        background: false,
        ..Config::default()
    };
    let err = OpenLibrary::connect(&pg, "nats://127.0.0.1:1", options, config)
        .err()
        .unwrap();
    assert_eq!(err.code().as_str(), "STORAGE", "{err}");
    assert!(err.to_string().contains("nats://127.0.0.1:1"), "{err}");
}

trait Blocking {
    fn execute_blocking(&self, command: Command, actor: &Actor);
}

impl Blocking for OpenLibrary {
    fn execute_blocking(&self, command: Command, actor: &Actor) {
        block_on(self.execute(command, actor)).unwrap();
    }
}
