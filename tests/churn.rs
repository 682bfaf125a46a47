//! Kill tests for the moments `tests/crash.rs` does not reach: opening and creating a library.
//!
//! - **Open/close churn**: a child process opens an existing library, appends a command,
//!   closes, and does it again, over and over; the parent kills it with SIGKILL at a random
//!   moment, then reopens the library itself. Every reopen must succeed and show every command
//!   the child acknowledged, at the position it reported. `LENDKIT_CHURN_CYCLES` sets the number
//!   of kills (default 300; `LENDKIT_CHURN_CYCLES=3000 cargo test --test churn` is the long run).
//! - **Kill during creation**: a child creates a fresh library; the parent kills it 0–10 ms
//!   after the child says it is about to open (two kills in three), or 10–100 ms after (one in
//!   three: a debug build needs some 60–100 ms to create a library, and sled writes its first
//!   files only some 10 ms in). Every folder must then open as a lendkit library and take
//!   commands. `LENDKIT_CREATE_KILLS` sets the number of kills (default 300).
//!
//! - **Damage**: a library whose files are truly damaged fails with `CORRUPT` (not retryable),
//!   at open (a snapshot sled cannot read) and at read (an event that does not decode).
//!
//! `LENDKIT_CHURN_SEED` replays a run (the seed is printed); `LENDKIT_KEEP_CHURN_DB` keeps the
//! folders of a failing run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{listing, Rng};
use lendkit::{Actor, Command, Config, ErrorCode, OpenLibrary};
use libtest_mimic::{Arguments, Failed, Trial};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

const CHURN_CHILD_ENV: &str = "LENDKIT_CHURN_CHILD";
const CREATE_CHILD_ENV: &str = "LENDKIT_CREATE_CHILD";

fn main() {
    if let Ok(db) = std::env::var(CHURN_CHILD_ENV) {
        churn_child(&db);
        return;
    }
    if let Ok(db) = std::env::var(CREATE_CHILD_ENV) {
        create_child(&db);
        return;
    }
    let args = Arguments::from_args();
    libtest_mimic::run(
        &args,
        vec![
            Trial::test(
                "open_close_churn_under_random_sigkill_leaves_no_unopenable_library",
                || churn("db"),
            ),
            Trial::test(
                "a_kill_during_creation_leaves_a_folder_that_opens_as_a_library",
                || kill_during_creation("db"),
            ),
            // The same on SQLite: a `.sqlite` name picks it (for the children too).
            Trial::test(
                "sqlite: open_close_churn_under_random_sigkill_leaves_no_unopenable_library",
                || churn("sqlite"),
            ),
            Trial::test(
                "sqlite: a_kill_during_creation_leaves_a_file_that_opens_as_a_library",
                || kill_during_creation("sqlite"),
            ),
            Trial::test(
                "a_damaged_library_is_corrupt_not_a_retryable_storage_failure",
                damaged,
            ),
        ],
    )
    .exit();
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    let seed = env_number(
        "LENDKIT_CHURN_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    ) | 1;
    eprintln!("seed: LENDKIT_CHURN_SEED={seed}");
    seed
}

fn config() -> Config {
    Config {
        background: false,
        ..Config::default()
    }
}

/// The churn child: open, append one command, close, forever. Prints `opening` before each
/// open, `opened` after it, then `ok <event_id>@<position>` for each acknowledged command; `error <CODE> <message>` if an
/// open fails (the parent counts that as an unopenable library).
fn churn_child(db: &str) {
    let mut out = std::io::stdout().lock();
    let librarian = Actor::librarian("lib-1");
    for round in 0u64.. {
        writeln!(out, "opening").unwrap();
        out.flush().unwrap();
        let lib = match OpenLibrary::open(db, config()) {
            Ok(lib) => lib,
            Err(e) => {
                writeln!(out, "error {} {e}", e.code()).unwrap();
                out.flush().unwrap();
                std::process::exit(2);
            }
        };
        writeln!(out, "opened").unwrap();
        let joined = lendkit::block_on(lib.execute(
            Command::JoinMember {
                member_id: format!("m-{}-{round}", std::process::id()),
                name: "Churn".into(),
                contact: None,
                group: None,
            },
            &librarian,
        ));
        if let Ok(outcome) = joined {
            let ids: Vec<String> = outcome
                .events
                .iter()
                .map(|e| format!("{}@{}", e.event_id, e.position))
                .collect();
            writeln!(out, "ok {}", ids.join(" ")).unwrap();
        }
        out.flush().unwrap();
        lib.close().unwrap();
    }
}

/// The creation child: says `start`, creates the library, says `created`.
fn create_child(db: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "start").unwrap();
    out.flush().unwrap();
    let lib = OpenLibrary::open(db, config()).unwrap();
    writeln!(out, "created").unwrap();
    out.flush().unwrap();
    lib.close().unwrap();
}

fn spawn(env: &str, db: &Path) -> Child {
    Process::new(std::env::current_exe().unwrap())
        .env(env, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn keep(dir: tempfile::TempDir) {
    if std::env::var("LENDKIT_KEEP_CHURN_DB").is_ok() {
        eprintln!("kept {}", dir.keep().display());
    }
}

fn churn(ext: &str) -> Result<(), Failed> {
    let cycles = env_number("LENDKIT_CHURN_CYCLES", 300);
    let mut rng = Rng(seed());
    let dir = tempfile::tempdir().unwrap();
    let mut generation = 0;
    let mut db = dir.path().join(format!("churn-0.{ext}"));
    OpenLibrary::open(&db, config()).unwrap().close().unwrap();
    let mut acknowledged: Vec<(String, u64)> = Vec::new();
    let mut unopenable: Vec<String> = Vec::new();
    let (mut killed_opening, started) = (0, Instant::now());
    for cycle in 0..cycles {
        let mut child = spawn(CHURN_CHILD_ENV, &db);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        // A child needs some 30 ms to its first open, then about 20 ms per open, append and
        // close: kills land before the first open, inside sled's recovery, mid-append, in close.
        std::thread::sleep(Duration::from_micros(rng.next(120_000)));
        child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, no goodbye.
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        if lines.last().is_some_and(|l| l == "opening") {
            killed_opening += 1;
        }
        if let Some(error) = lines.iter().find(|l| l.starts_with("error ")) {
            unopenable.push(format!(
                "cycle {cycle}: the child could not open: {error}; files: {:?}",
                listing(&db)
            ));
        }
        for line in lines.iter().filter_map(|l| l.strip_prefix("ok ")) {
            for id in line.split(' ').filter(|s| !s.is_empty()) {
                let (event_id, position) = id.rsplit_once('@').unwrap();
                acknowledged.push((event_id.to_owned(), position.parse().unwrap()));
            }
        }
        let lib = match OpenLibrary::open(&db, config()) {
            Ok(lib) => lib,
            Err(e) => {
                unopenable.push(format!(
                    "cycle {cycle}: {} {e}; files: {:?}",
                    e.code(),
                    listing(&db)
                ));
                // Go on with a fresh library, to count how often this happens.
                generation += 1;
                db = dir.path().join(format!("churn-{generation}.{ext}"));
                acknowledged.clear();
                OpenLibrary::open(&db, config()).unwrap().close().unwrap();
                continue;
            }
        };
        let events = lendkit::block_on(lib.events(1, usize::MAX)).unwrap();
        for (event_id, position) in &acknowledged {
            let found = events
                .get(*position as usize - 1)
                .map(|e| e.event_id.as_str());
            if found != Some(event_id.as_str()) {
                keep(dir);
                return Err(format!(
                    "after kill {cycle}: acknowledged {event_id} at {position}, found {found:?}"
                )
                .into());
            }
        }
        lib.close().unwrap();
    }
    eprintln!(
        "churn: {cycles} kills in {:.1?}, {killed_opening} of them while the child was \
         opening the library, {} acknowledged commands checked, {} unopenable",
        started.elapsed(),
        acknowledged.len(),
        unopenable.len()
    );
    if !unopenable.is_empty() {
        keep(dir);
        return Err(format!(
            "{} of {cycles} kills left a library that does not open:\n{}",
            unopenable.len(),
            unopenable.join("\n")
        )
        .into());
    }
    // Many kills should land inside an open (a child says `opening` before each one): at least
    // a third. (The share follows how long an open takes next to an append and a close, which
    // moves with the machine's load: 146 to 254 of 300 in two runs on a busy 2-core machine.)
    if killed_opening * 3 < cycles {
        return Err(format!(
            "only {killed_opening} of {cycles} kills came while a child was opening the \
             library; the kills proved too little"
        )
        .into());
    }
    Ok(())
}

/// A child creating the library at `db`, once it has said `start`, and its output.
fn creating(db: &Path) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child = spawn(CREATE_CHILD_ENV, db);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "start");
    (child, stdout)
}

fn kill_during_creation(ext: &str) -> Result<(), Failed> {
    let kills = env_number("LENDKIT_CREATE_KILLS", 300);
    let mut rng = Rng(seed());
    let dir = tempfile::tempdir().unwrap();
    let mut refused: Vec<String> = Vec::new();
    // How long a creation takes on this machine now, from the child's `start` to `created`
    // (the quickest of three): the kills are spread over twice that, so about half land inside
    // it however fast or loaded the machine is.
    let span = (0..3)
        .map(|i| {
            let (mut child, mut stdout) = creating(&dir.path().join(format!("timed-{i}.{ext}")));
            let began = Instant::now();
            let mut line = String::new();
            while stdout.read_line(&mut line).unwrap() > 0 && line.trim() != "created" {
                line.clear();
            }
            let took = began.elapsed();
            child.kill().unwrap();
            child.wait().unwrap();
            u64::try_from(took.as_micros())
                .unwrap_or(u64::MAX)
                .max(1_000)
        })
        .min()
        .unwrap_or(10_000);
    let (mut unfinished, started) = (0, Instant::now());
    for kill in 0..kills {
        let db = dir.path().join(format!("lib-{kill}.{ext}"));
        let (mut child, stdout) = creating(&db);
        let delay = rng.next(2 * span + 1);
        std::thread::sleep(Duration::from_micros(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        let rest: Vec<String> = stdout.lines().map_while(Result::ok).collect();
        if !rest.iter().any(|l| l == "created") {
            unfinished += 1;
        }
        match OpenLibrary::open(&db, config()) {
            Ok(lib) => {
                // It is a working library: it takes a command and keeps it.
                let before = lendkit::block_on(lib.head()).unwrap();
                if before != 0 {
                    return Err(format!("kill {kill}: a new library holds {before} events").into());
                }
                let outcome = lendkit::block_on(lib.execute(
                    Command::JoinMember {
                        member_id: "m-1".into(),
                        name: "After".into(),
                        contact: None,
                        group: None,
                    },
                    &Actor::librarian("lib-1"),
                ))
                .map_err(|e| format!("kill {kill}: the reopened library refused a command: {e}"))?;
                lib.close().unwrap();
                let lib = OpenLibrary::open(&db, config())
                    .map_err(|e| format!("kill {kill}: second reopen: {} {e}", e.code()))?;
                let events = lendkit::block_on(lib.events(1, usize::MAX)).unwrap();
                if events != outcome.events {
                    return Err(format!(
                        "kill {kill}: stored {:?}, found {:?} after reopening",
                        outcome.events, events
                    )
                    .into());
                }
                lib.close().unwrap();
            }
            Err(e) => refused.push(format!(
                "kill {kill}: {} {e}; files: {:?}",
                e.code(),
                listing(&db)
            )),
        }
    }
    eprintln!(
        "creation (about {span} µs): {kills} kills in {:.1?}, {unfinished} before the child \
         had created the library, {} refused afterwards",
        started.elapsed(),
        refused.len()
    );
    if !refused.is_empty() {
        keep(dir);
        return Err(format!(
            "{} of {kills} folders killed during creation do not open:\n{}",
            refused.len(),
            refused.join("\n")
        )
        .into());
    }
    if unfinished * 4 < kills {
        return Err(format!(
            "only {unfinished} of {kills} kills landed before creation finished; the test \
             proved too little"
        )
        .into());
    }
    Ok(())
}

/// A library with one command in it, closed, and opened and closed once more so that sled has
/// written a snapshot of it.
fn library_with_a_member(path: &Path) {
    let lib = OpenLibrary::open(path, config()).unwrap();
    lendkit::block_on(lib.execute(
        Command::JoinMember {
            member_id: "m-1".into(),
            name: "Ada".into(),
            contact: None,
            group: None,
        },
        &Actor::librarian("lib-1"),
    ))
    .unwrap();
    lib.close().unwrap();
    OpenLibrary::open(path, config()).unwrap().close().unwrap();
}

fn expect_corrupt(what: &str, result: lendkit::Result<OpenLibrary>) -> Result<(), Failed> {
    match result {
        Err(e) if e.code() == ErrorCode::Corrupt => {
            let message = e.to_string();
            if e.code().is_retryable()
                || !message.contains("backup")
                || message.contains("try again")
            {
                return Err(format!("{what}: unhelpful message or retry hint: {message}").into());
            }
            Ok(())
        }
        Err(e) => Err(format!("{what}: expected CORRUPT, got {} {e}", e.code()).into()),
        Ok(_) => Err(format!("{what}: expected CORRUPT, but it opened").into()),
    }
}

fn damaged() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    // A snapshot sled cannot read (its checksum fails).
    let db = dir.path().join("snapshot.db");
    library_with_a_member(&db);
    let snap = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap.")
        })
        .expect("sled wrote a snapshot");
    let mut bytes = std::fs::read(&snap).unwrap();
    for b in &mut bytes[10..30] {
        *b ^= 0xFF;
    }
    std::fs::write(&snap, &bytes).unwrap();
    expect_corrupt("a damaged snapshot", OpenLibrary::open(&db, config()))?;
    // An event in the log that does not decode: opening replays the log into the views.
    let db = dir.path().join("event.db");
    library_with_a_member(&db);
    {
        let raw = lendkit::adapters::contract::open_raw_sled(&db);
        raw.open_tree("log")
            .unwrap()
            .insert(1u64.to_be_bytes(), b"{not an envelope".as_slice())
            .unwrap();
        raw.flush().unwrap();
    }
    expect_corrupt("an undecodable event", OpenLibrary::open(&db, config()))
}
