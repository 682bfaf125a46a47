//! The `lendkit` command, run as a user would: a database on disk, tables and JSON out, errors
//! with a code, a hint and a non-zero exit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn lendkit(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lendkit"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

fn ok(db: &Path, args: &[&str]) -> String {
    let out = lendkit(db, args);
    assert!(
        out.status.success(),
        "lendkit {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_session_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("library.db");
    ok(
        &db,
        &[
            "register-book",
            "isbn-1",
            "Domain-Driven Design",
            "--copies",
            "1",
            "--fee",
            "30",
        ],
    );
    ok(&db, &["join", "m-1", "Kim"]);
    let reserved = ok(
        &db,
        &[
            "reserve",
            "isbn-1",
            "m-1",
            "--rental-id",
            "r-1",
            "--as",
            "member:m-1",
        ],
    );
    assert!(
        reserved.contains("PointsCharged")
            && reserved.contains("RentalReserved")
            && reserved.contains("RentalConfirmed"),
        "{reserved}"
    );

    let refused = lendkit(&db, &["cancel", "r-1", "--as", "member:m-2"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(stderr.starts_with("error NOT_RENTAL_OWNER:"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");

    let page: serde_json::Value =
        serde_json::from_str(&ok(&db, &["member", "m-1", "--json"])).unwrap();
    assert_eq!(page["points"], 70);
    assert_eq!(page["rentals"][0]["status"], "confirmed");

    let canceled: serde_json::Value =
        serde_json::from_str(&ok(&db, &["cancel", "r-1", "--as", "member:m-1", "--json"])).unwrap();
    let followed: Vec<_> = canceled["followed_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        followed.contains(&"PointsRefunded".to_owned())
            && followed.contains(&"CopyReleased".to_owned()),
        "{followed:?}"
    );

    let books: serde_json::Value = serde_json::from_str(&ok(&db, &["books", "--json"])).unwrap();
    assert_eq!(books[0]["available"], 1);
    assert_eq!(books[0]["last_activity"], "RentalCanceled");
    let events: serde_json::Value =
        serde_json::from_str(&ok(&db, &["events", "--from", "1", "--json"])).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 11);
    assert_eq!(ok(&db, &["dead-letters"]).trim(), "no dead letters");
}

#[test]
fn a_retry_with_the_same_command_id_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("library.db");
    ok(&db, &["join", "m-1", "Kim"]);
    ok(&db, &["top-up", "m-1", "5", "--command-id", "t-1"]);
    let again = ok(&db, &["top-up", "m-1", "5", "--command-id", "t-1"]);
    assert!(again.contains("already applied"), "{again}");
    let page: serde_json::Value =
        serde_json::from_str(&ok(&db, &["member", "m-1", "--json"])).unwrap();
    assert_eq!(page["points"], 105);
}

#[test]
fn a_path_that_is_not_a_library_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let out = lendkit(&file, &["books"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .starts_with("error NOT_A_LIBRARY:"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    let bad_actor = lendkit(&dir.path().join("x.db"), &["books", "--as", "boss:1"]);
    assert!(String::from_utf8(bad_actor.stderr)
        .unwrap()
        .starts_with("error INVALID_INPUT:"));
}

#[test]
fn the_demo_and_the_model_run() {
    let dir = tempfile::tempdir().unwrap();
    let demo = ok(&dir.path().join("unused.db"), &["demo"]);
    assert!(
        demo.contains("NOT_RENTAL_OWNER"),
        "the demo shows a refused cancellation"
    );
    assert!(demo.contains("payment refunded"), "the demo shows a refund");
    let model = ok(&dir.path().join("unused.db"), &["model"]);
    assert!(model.starts_with("flowchart LR"));
    assert!(model.contains("evt_RentalReserved(RentalReserved):::event --> pol_catalog[/catalog policy/]:::policy --> cmd_AllocateCopy[AllocateCopy]:::command"), "{model}");
}

fn refused(db: &Path, args: &[&str]) -> String {
    let out = lendkit(db, args);
    assert!(!out.status.success(), "lendkit {args:?} must fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn the_system_actor_is_refused_and_reads_follow_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("library.db");
    ok(
        &db,
        &[
            "register-book",
            "isbn-1",
            "DDD",
            "--copies",
            "1",
            "--fee",
            "30",
        ],
    );
    ok(&db, &["join", "m-1", "Kim"]);
    ok(&db, &["join", "m-2", "Lee"]);
    ok(
        &db,
        &[
            "reserve",
            "isbn-1",
            "m-1",
            "--rental-id",
            "r-1",
            "--as",
            "member:m-1",
        ],
    );
    for args in [
        &["loan", "r-1", "--as", "system"][..],
        &["cancel", "r-1", "--as", "system"],
        &["renew", "r-1", "--as", "system"],
        &["return", "r-1", "--as", "system"],
    ] {
        let err = refused(&db, args);
        assert!(err.contains("UNAUTHORIZED"), "{args:?}: {err}");
    }
    assert!(ok(&db, &["member", "m-1", "--as", "member:m-1"]).contains("70 points"));
    let err = refused(&db, &["member", "m-1", "--as", "member:m-2"]);
    assert!(err.contains("UNAUTHORIZED"), "{err}");
    for args in [&["events"][..], &["dead-letters"]] {
        let mut args = args.to_vec();
        args.extend(["--as", "member:m-1"]);
        let err = refused(&db, &args);
        assert!(err.contains("UNAUTHORIZED"), "{args:?}: {err}");
    }
    assert!(ok(&db, &["events"]).contains("RentalReserved"));
    assert!(ok(&db, &["books", "--as", "member:m-2"]).contains("isbn-1"));
}
