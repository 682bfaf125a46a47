//! Crash test: a child process runs reservations, loans, returns and cancellations on a sled
//! database with `Durability::EveryCommit` and reports every command that returned success; the
//! parent kills it with SIGKILL at random moments, reopens the database and checks that every
//! acknowledged event is there, nothing is half-written or applied twice, the invariants hold,
//! and after `settle` the views equal a rebuild from the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Rng;

use lendkit::{Actor, Command, Config, ErrorCode, OpenLibrary};
use libtest_mimic::{Arguments, Trial};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "LENDKIT_CRASH_CHILD";
const KILLS: u64 = 24;

fn main() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        child(&db);
        return;
    }
    let args = Arguments::from_args();
    libtest_mimic::run(
        &args,
        vec![
            Trial::test(
                "killed_at_random_moments_loses_nothing_acknowledged",
                || parent("crash.db"),
            ),
            // The same on SQLite: a `.sqlite` name picks it (for the child too).
            Trial::test(
                "sqlite: killed_at_random_moments_loses_nothing_acknowledged",
                || parent("crash.sqlite"),
            ),
        ],
    )
    .exit();
}

fn config() -> Config {
    Config {
        background: false,
        ..Config::default()
    }
}

/// The child: works forever on the database, printing `ok <event_id>@<position> …` after each success.
fn child(db: &str) {
    let lib = OpenLibrary::open(db, config()).unwrap();
    let librarian = Actor::librarian("lib-1");
    let run = |cmd: Command, actor: &Actor| lendkit::block_on(lib.execute(cmd, actor));
    let mut out = std::io::stdout().lock();
    for b in 0..3 {
        let _ = run(
            Command::RegisterBook {
                book_id: format!("b-{b}"),
                title: format!("Book {b}"),
                author: None,
                copies: 2,
                fee: 10,
                item_type: None,
                branch: None,
            },
            &librarian,
        );
    }
    for m in 0..6 {
        let _ = run(
            Command::JoinMember {
                member_id: format!("m-{m}"),
                name: format!("Member {m}"),
                contact: None,
                group: None,
            },
            &librarian,
        );
    }
    let mut rng = Rng(u64::from(std::process::id()) * 2_654_435_761 + 1);
    let mut rentals: Vec<(String, String)> = Vec::new();
    for i in 0.. {
        let member = format!("m-{}", rng.next(6));
        let cmd = match rng.next(10) {
            0..=3 => {
                let rental = format!("r-{}-{i}", std::process::id());
                rentals.push((rental.clone(), member.clone()));
                (
                    Command::ReserveBook {
                        wait: None,
                        book_id: format!("b-{}", rng.next(3)),
                        member_id: member.clone(),
                        rental_id: Some(rental),
                        delivery_address: None,
                    },
                    Actor::member(member),
                )
            }
            4 => (
                Command::TopUp {
                    member_id: member,
                    points: 20,
                },
                librarian.clone(),
            ),
            5 => {
                lendkit::block_on(lib.settle()).unwrap();
                writeln!(out, "settled").unwrap();
                continue;
            }
            k if !rentals.is_empty() => {
                let (rental, owner) = rentals[rng.next(rentals.len() as u64) as usize].clone();
                let cmd = match k {
                    6 => Command::StartLoan {
                        rental_id: rental,
                        branch: None,
                        override_reason: None,
                    },
                    7 => Command::ReturnBook {
                        rental_id: rental,
                        returned_at: None,
                    },
                    _ => Command::CancelRental {
                        rental_id: rental,
                        reason: None,
                    },
                };
                (cmd, Actor::member(owner))
            }
            _ => continue,
        };
        if let Ok(outcome) = run(cmd.0, &cmd.1) {
            let ids: Vec<String> = outcome
                .events
                .iter()
                .map(|e| format!("{}@{}", e.event_id, e.position))
                .collect();
            writeln!(out, "ok {}", ids.join(" ")).unwrap();
            out.flush().unwrap();
        }
    }
}

fn parent(name: &str) -> Result<(), libtest_mimic::Failed> {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(name);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut acknowledged: Vec<(String, u64)> = Vec::new();
    for kill in 0..KILLS {
        let mut child = Process::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(30 + rng.next(250)));
        child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, no goodbye.
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        for line in lines.iter().filter_map(|l| l.strip_prefix("ok ")) {
            for id in line.split(' ').filter(|s| !s.is_empty()) {
                let (event_id, position) = id.rsplit_once('@').unwrap();
                acknowledged.push((event_id.to_owned(), position.parse().unwrap()));
            }
        }
        // Reopen after every kill: what was acknowledged is there, exactly where it was reported.
        let lib = match OpenLibrary::open(&db, config()) {
            Ok(lib) => lib,
            Err(e) => {
                let listing = common::listing(&db);
                if std::env::var("LENDKIT_KEEP_CRASH_DB").is_ok() {
                    let kept = dir.keep();
                    eprintln!("kept {}", kept.display());
                }
                return Err(format!("reopen after kill {kill}: {e}; files: {listing:?}").into());
            }
        };
        let events = lendkit::block_on(lib.events(1, usize::MAX)).unwrap();
        for (event_id, position) in &acknowledged {
            let found = events
                .get(*position as usize - 1)
                .map(|e| e.event_id.as_str());
            if found != Some(event_id.as_str()) {
                return Err(format!(
                    "after kill {kill}: acknowledged {event_id} at {position}, found {found:?}"
                )
                .into());
            }
        }
        lendkit::block_on(lib.settle()).unwrap();
        common::check_invariants(&lib);
        let letters = lendkit::block_on(lib.dead_letters()).unwrap();
        if !letters.is_empty() {
            return Err(format!("dead letters after kill {kill}: {letters:?}").into());
        }
        lib.close().unwrap();
    }
    let lib = OpenLibrary::open(&db, config()).unwrap();
    let total = lendkit::block_on(lib.head()).unwrap();
    eprintln!(
        "crash test: {KILLS} kills, {} acknowledged events checked, {total} events in the log",
        acknowledged.len()
    );
    if acknowledged.len() < 50 {
        return Err(format!(
            "the children acknowledged only {} events; the test proved too little",
            acknowledged.len()
        )
        .into());
    }
    let canceled = lendkit::block_on(lib.events(1, usize::MAX))
        .unwrap()
        .iter()
        .filter(|e| e.type_name() == "RentalCanceled")
        .count();
    if canceled == 0 {
        return Err("no cancellation happened; the refund path was not exercised".into());
    }
    let _ = ErrorCode::Conflict;
    Ok(())
}
