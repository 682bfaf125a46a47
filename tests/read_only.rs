//! A library whose files cannot be written — a write-protected file, or (for root, whom
//! permissions do not stop) an immutable one — is refused at open with `LIBRARY_READ_ONLY`,
//! not retryable, and nothing is changed; once writable again it opens with every command it
//! acknowledged and takes new ones. On sled and on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lendkit::{block_on, Actor, Command, Config, ErrorCode, OpenLibrary, Store};
use std::path::{Path, PathBuf};
use std::process::Command as Process;

fn config(store: Store) -> Config {
    Config {
        background: false,
        store,
        ..Config::default()
    }
}

fn join(lib: &OpenLibrary, member: &str) -> lendkit::Result<lendkit::Outcome> {
    block_on(lib.execute(
        Command::JoinMember {
            member_id: member.into(),
            name: format!("Member {member}"),
            contact: None,
            group: None,
        },
        &Actor::librarian("lib-1"),
    ))
}

/// The library's files (a SQLite library's file and its companions; a sled folder's files).
fn files_of(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect()
    } else {
        ["", "-wal", "-shm"]
            .iter()
            .map(|s| PathBuf::from(format!("{}{s}", path.display())))
            .filter(|p| p.exists())
            .collect()
    };
    files.sort();
    files
}

fn contents(files: &[PathBuf]) -> Vec<Vec<u8>> {
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Makes `files` unwritable (or writable again). Root ignores permissions, so it uses the
/// immutable attribute; false when that is not possible here.
fn protect(files: &[PathBuf], on: bool) -> bool {
    let root = Process::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    for f in files {
        if root {
            let done = Process::new("chattr")
                .arg(if on { "+i" } else { "-i" })
                .arg(f)
                .status()
                .is_ok_and(|s| s.success());
            if !done {
                return false;
            }
        } else {
            let mut permissions = std::fs::metadata(f).unwrap().permissions();
            permissions.set_readonly(on);
            std::fs::set_permissions(f, permissions).unwrap();
        }
    }
    true
}

fn refused_then_reopened(name: &str, store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let acknowledged = {
        let lib = OpenLibrary::open(&path, config(store)).unwrap();
        let first = join(&lib, "m-1").unwrap();
        let second = join(&lib, "m-2").unwrap();
        lib.close().unwrap();
        [first.events, second.events].concat()
    };
    let files = files_of(&path);
    let before = contents(&files);
    if !protect(&files, true) {
        eprintln!("SKIPPED ({name}): cannot make the files immutable on this machine (chattr)");
        return;
    }
    let refused = OpenLibrary::open(&path, config(store));
    let after = contents(&files);
    assert!(
        protect(&files, false),
        "{name}: cannot make the files writable again"
    );
    let e = refused
        .err()
        .expect("a read-only library must not open for writing");
    assert_eq!(e.code(), ErrorCode::LibraryReadOnly, "{name}: {e}");
    assert!(
        !e.code().is_retryable(),
        "{name}: a read-only library is not a retry away"
    );
    assert_eq!(after, before, "{name}: the refused open changed the files");

    let lib = OpenLibrary::open(&path, config(store)).unwrap();
    let events = block_on(lib.events(1, usize::MAX)).unwrap();
    assert_eq!(
        events, acknowledged,
        "{name}: the acknowledged commands after reopening"
    );
    join(&lib, "m-3").unwrap();
    lib.close().unwrap();
}

#[test]
fn a_read_only_sled_library_is_refused_and_opens_once_writable() {
    refused_then_reopened("lib.db", Store::Sled);
}

#[test]
fn a_read_only_sqlite_library_is_refused_and_opens_once_writable() {
    refused_then_reopened("lib.sqlite", Store::Sqlite);
}
