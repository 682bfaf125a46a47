//! A full disk: a child process stores commands on a library while the kernel lets it write
//! only so many bytes (`ulimit -f`, with SIGXFSZ ignored, so a write past it fails with EFBIG
//! the way a full disk fails with ENOSPC). The first command that cannot be stored fails with a
//! typed, retryable `STORAGE` error — no panic, no crash — and after the limit is lifted the
//! library opens with every acknowledged command, and nothing half-written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lendkit::{Actor, Command, Config, OpenLibrary};
use std::io::Write;
use std::process::Command as Process;

const CHILD_ENV: &str = "LENDKIT_DISK_FULL_CHILD";

fn config() -> Config {
    Config {
        background: false,
        ..Config::default()
    }
}

/// The child: top-ups and reservations until one fails; prints `ok <event_id>@<position>…` per
/// success, then `error <CODE> <retryable>` and exits.
fn child(db: &str) {
    let mut out = std::io::stdout().lock();
    let lib = match OpenLibrary::open(db, config()) {
        Ok(lib) => lib,
        Err(e) => {
            writeln!(out, "error {} {}", e.code(), e.code().is_retryable()).unwrap();
            return;
        }
    };
    let librarian = Actor::librarian("lib-1");
    for i in 0u64.. {
        let member = format!("m-{}", i % 50);
        let cmd = if i < 50 {
            Command::JoinMember {
                member_id: member,
                name: "A member with a rather long name, to fill the disk sooner".repeat(4),
                contact: None,
                group: None,
            }
        } else {
            Command::TopUp {
                member_id: member,
                points: 1,
            }
        };
        match lendkit::block_on(lib.execute(cmd, &librarian)) {
            Ok(outcome) => {
                let ids: Vec<String> = outcome
                    .events
                    .iter()
                    .map(|e| format!("{}@{}", e.event_id, e.position))
                    .collect();
                writeln!(out, "ok {}", ids.join(" ")).unwrap();
            }
            Err(e) => {
                writeln!(out, "error {} {}", e.code(), e.code().is_retryable()).unwrap();
                // What the layer below said, kept as the error's source chain.
                let mut below = std::error::Error::source(&e);
                while let Some(cause) = below {
                    let errno = cause
                        .downcast_ref::<std::io::Error>()
                        .and_then(std::io::Error::raw_os_error);
                    writeln!(out, "cause {errno:?} {cause}").unwrap();
                    below = cause.source();
                }
                out.flush().unwrap();
                // Exits without closing: what a host would see if it gave up here.
                std::process::exit(0);
            }
        }
    }
}

fn run_full_disk(name: &str) {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        child(&db);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(name);
    // The library exists first, so the limit bites while storing commands.
    OpenLibrary::open(&db, config()).unwrap().close().unwrap();
    let exe = std::env::current_exe().unwrap();
    let test = std::thread::current().name().unwrap().to_owned();
    // 2 MiB more than the library takes now, in 512-byte blocks.
    let out = Process::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$0\" --exact {test} --nocapture --test-threads 1",
            4096 + size_of(&db) / 512
        ))
        .arg(&exe)
        .env(CHILD_ENV, &db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "the child panicked when the disk was full:\n{stderr}"
    );
    let error = stdout
        .lines()
        .find_map(|l| l.strip_prefix("error "))
        .unwrap_or_else(|| panic!("no command failed:\n{stdout}\n{stderr}"));
    assert_eq!(
        error, "STORAGE true",
        "a full disk is a retryable STORAGE error"
    );
    // The error keeps what the storage engine (or the OS) reported as its source: on sled the
    // OS's EFBIG (27, "File too large", as sled passes it on), on SQLite its own error (a disk
    // I/O error with its extended code: SQLITE_IOERR_WRITE is 778).
    let causes: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("cause "))
        .collect();
    assert!(
        !causes.is_empty(),
        "the STORAGE error has no source:\n{stdout}"
    );
    if name.ends_with(".sqlite") {
        assert!(
            causes.iter().any(|c| c.contains("disk")),
            "SQLite's own error is not in the chain: {causes:?}"
        );
    } else {
        assert!(
            causes
                .iter()
                .any(|c| c.contains("27") && c.contains("File too large")),
            "the OS's EFBIG is not in the chain: {causes:?}"
        );
    }
    let acknowledged: Vec<(String, u64)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .flat_map(|l| l.split(' ').filter(|s| !s.is_empty()))
        .map(|id| {
            let (event, position) = id.rsplit_once('@').unwrap();
            (event.to_owned(), position.parse().unwrap())
        })
        .collect();
    assert!(
        acknowledged.len() > 50,
        "only {} events stored",
        acknowledged.len()
    );
    eprintln!(
        "{name}: {} events acknowledged before the disk filled; then: {error}",
        acknowledged.len()
    );
    // The limit lifted: the library opens, with every acknowledged event where it was.
    let lib = OpenLibrary::open(&db, config()).unwrap();
    let log = lendkit::block_on(lib.events(1, usize::MAX)).unwrap();
    for (event, position) in &acknowledged {
        let found = log.iter().find(|e| e.position == *position);
        assert_eq!(
            found.map(|e| e.event_id.as_str()),
            Some(event.as_str()),
            "acknowledged {event}@{position} is missing after the disk filled"
        );
    }
    // Nothing half-written: positions are 1..n and every top-up is whole.
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1, "a gap in the log");
    }
    // And it takes commands again.
    lendkit::block_on(lib.execute(
        Command::TopUp {
            member_id: "m-1".into(),
            points: 1,
        },
        &Actor::librarian("lib-1"),
    ))
    .unwrap();
    lib.close().unwrap();
}

/// The bytes a library takes on disk (a file, or a folder's files).
fn size_of(path: &std::path::Path) -> u64 {
    if path.is_file() {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| size_of(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn sqlite_a_full_disk_is_a_retryable_storage_error_and_loses_nothing_acknowledged() {
    run_full_disk("full.sqlite");
}

#[test]
fn sled_a_full_disk_is_a_retryable_storage_error_and_loses_nothing_acknowledged() {
    run_full_disk("full.db");
}
