//! NATS going away under a connected library: commands still commit and the views stay current
//! (PostgreSQL is the truth); the policies wait, and catch up — with nothing lost or doubled —
//! when the server is back.
//!
//! Runs a private `nats-server -js` (the Debian package's binary, as on the CI machine) on a
//! free port, so it can be stopped and started; needs `LENDKIT_PG_URL`. Without either it
//! prints `skipped: …` and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lendkit::adapters::{NatsEventBus, PgEventStore};
use lendkit::ports::EventStore;
use lendkit::{block_on, Actor, Command, Config, ConnectOptions, OpenLibrary};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Says why the test does not run, straight to stderr, past the harness's capture, so the skip
/// shows in every run.
fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

fn nats_server() -> Option<String> {
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .map(str::to_owned)
}

struct Server {
    binary: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Server {
    fn start(binary: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Server {
            binary: binary.to_owned(),
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.resume();
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again), on the same port and store directory, and waits until it answers.
    fn resume(&mut self) {
        let child = std::process::Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn with_nats_down_commands_commit_and_views_follow_and_the_policies_catch_up_after() {
    let Some(pg) = std::env::var("LENDKIT_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        skipped("LENDKIT_PG_URL is not set (this test needs PostgreSQL)");
        return;
    };
    let Some(binary) = nats_server() else {
        skipped("no nats-server binary (this test runs a private one)");
        return;
    };
    let mut nats = Server::start(&binary);
    let name = format!("lk_out_{}", std::process::id());
    let _ = PgEventStore::drop_schema(&pg, &name);
    let config = Config {
        background: false,
        ..Config::default()
    };
    // A pull answered while the client is still restoring its subscriptions after the
    // restart is lost to it; the server redelivers that message after ack_wait (30 s by
    // default; 5 s here, to keep the test short).
    let mut options = ConnectOptions::named(&name);
    options.nats.ack_wait = Duration::from_secs(5);
    let lib = OpenLibrary::connect(&pg, &nats.url(), options, config).unwrap();
    let librarian = Actor::librarian("lib-1");
    block_on(lib.execute(
        Command::RegisterBook {
            book_id: "isbn-1".into(),
            title: "Domain-Driven Design".into(),
            author: None,
            copies: 1,
            fee: 30,
            item_type: None,
            branch: None,
        },
        &librarian,
    ))
    .unwrap();
    block_on(lib.execute(
        Command::JoinMember {
            member_id: "m-1".into(),
            name: "Kim".into(),
            contact: None,
            group: None,
        },
        &librarian,
    ))
    .unwrap();
    block_on(lib.settle()).unwrap();

    nats.stop();
    let began = Instant::now();
    let reserved = block_on(lib.execute(
        Command::ReserveBook {
            book_id: "isbn-1".into(),
            member_id: "m-1".into(),
            rental_id: None,
            delivery_address: None,
            wait: None,
        },
        &Actor::member("m-1"),
    ))
    .unwrap();
    let took = began.elapsed();
    block_on(lib.settle()).unwrap();
    let page = lib.member_page("m-1").unwrap();
    assert_eq!(page.points, 70, "the view follows the committed charge");
    assert_eq!(
        page.rentals[0].status, "reserved",
        "no policy ran: {page:?}"
    );
    eprintln!("a command with NATS down took {} ms", took.as_millis());

    nats.resume();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        block_on(lib.settle()).unwrap();
        if lib.member_page("m-1").unwrap().rentals[0].status == "confirmed" {
            break;
        }
        assert!(Instant::now() < deadline, "the saga did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let store = PgEventStore::connect(&pg, ConnectOptions::named(&name).pg).unwrap();
    let log = block_on(store.read_all(0, usize::MAX)).unwrap();
    let confirmed = log
        .iter()
        .filter(|e| e.type_name() == "RentalConfirmed")
        .count();
    assert_eq!(confirmed, 1);
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=log.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(
        reserved.rental_id.unwrap().to_string(),
        lib.member_page("m-1").unwrap().rentals[0].rental_id
    );
    // The stream caught up with the log.
    let head = block_on(store.head()).unwrap();
    let bus = NatsEventBus::connect(
        &nats.url(),
        ConnectOptions::named(&name).nats,
        std::sync::Arc::new(store),
    )
    .unwrap();
    assert_eq!(block_on(bus.stream_last_sequence()).unwrap(), head);
    drop(lib);
    let _ = PgEventStore::drop_schema(&pg, &name);
}
