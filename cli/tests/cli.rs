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
    assert!(
        !dir.path().join("unused.db").exists(),
        "without --keep the demo leaves nothing behind"
    );
    // Kept, the demo's library answers the rules questions: the stored table explained for a
    // student at the main branch (row 2 beats the `* * *` row), with a due date at closing time.
    let kept = dir.path().join("demo.db");
    let demo = ok(&kept, &["demo", "--keep"]);
    assert!(demo.contains("kept: try"), "{demo}");
    let explained = ok(
        &kept,
        &[
            "rules",
            "explain",
            "--group",
            "student",
            "--item-type",
            "book",
            "--branch",
            "main",
        ],
    );
    assert!(
        explained.starts_with("rules version 1, stored in"),
        "{explained}"
    );
    assert!(
        explained.contains("wins:  rule 2: group student")
            && explained.contains("(fewer specific fields)")
            && explained.contains("a loan made now is due "),
        "{explained}"
    );
    let policy = ok(
        &kept,
        &["explain-policy", "m-2", "isbn-ddd", "--branch", "main"],
    );
    assert!(policy.contains("\"group\": \"student\""), "{policy}");
    let again = lendkit(&kept, &["demo", "--keep"]);
    assert!(
        !again.status.success(),
        "a second demo does not overwrite the kept library"
    );
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

/// Runs the command with its stdout already closed by the reader, as `lendkit … | head -0`
/// leaves it: the read end is dropped right after the process starts, long before it prints.
fn with_stdout_closed(db: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lendkit"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("library.db");
    // A write whose report nobody reads: stored, and a quiet success, not a panic that invites
    // a retry.
    let joined = with_stdout_closed(&db, &["join", "m-1", "Kim"]);
    let stderr = String::from_utf8_lossy(&joined.stderr);
    assert_eq!(joined.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
    let page: serde_json::Value =
        serde_json::from_str(&ok(&db, &["member", "m-1", "--json"])).unwrap();
    assert_eq!(page["points"], 100, "the command was stored once");
    for query in [
        &["books"][..],
        &["events", "--from", "1"],
        &["member", "m-1"],
        &["model"],
        &["demo"],
        &["completions", "bash"],
    ] {
        let out = with_stdout_closed(&db, query);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{query:?}: {stderr}");
        assert!(stderr.is_empty(), "{query:?}: {stderr}");
    }
}

#[test]
fn reads_never_create_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("nonexistent").join("dir").join("x.db");
    let beside = dir.path().join("x.db");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for db in [&typo, &beside, &empty] {
        for query in [
            &["books"][..],
            &["member", "m-1"],
            &["events"],
            &["dead-letters"],
            &["replay", "d-1"],
        ] {
            let out = lendkit(db, query);
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(1), "{query:?} on {db:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!(
                    "error NOT_A_LIBRARY: there is no lendkit library at {}\n",
                    db.display()
                )),
                "{stderr}"
            );
            assert!(
                stderr.contains("lendkit join"),
                "says how to create one: {stderr}"
            );
            assert!(out.stdout.is_empty(), "no empty book list");
        }
    }
    assert!(
        !dir.path().join("nonexistent").exists(),
        "no folder was made"
    );
    assert!(!beside.exists(), "no library was made");
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "the folder is untouched"
    );
}

#[test]
fn writes_create_a_library_only_in_a_folder_that_exists() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent").join("dir");
    let out = lendkit(&missing.join("x.db"), &["join", "m-1", "Kim"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error NOT_A_LIBRARY: the folder {} does not exist",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("mkdir"), "{stderr}");
    assert!(
        !dir.path().join("nonexistent").exists(),
        "no folder was made"
    );
    // In a folder that exists, the first write creates the library (a folder itself).
    let db = dir.path().join("x.db");
    ok(&db, &["join", "m-1", "Kim"]);
    assert!(db.is_dir());
}

#[test]
fn an_error_says_each_thing_once_and_hints_name_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("library.db");
    ok(&db, &["register-book", "b-1", "Refactoring", "--fee", "20"]);
    let fail = |args: &[&str]| {
        let out = lendkit(&db, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        String::from_utf8(out.stderr).unwrap()
    };

    let zero = fail(&["add-copies", "b-1", "0"]);
    assert!(zero.starts_with("error INVALID_INPUT: "), "{zero}");
    assert!(!zero.to_lowercase().contains("invalid input:"), "{zero}");
    assert!(zero.contains("`lendkit add-copies --help`"), "{zero}");
    let actor = fail(&["books", "--as", "boss:1"]);
    assert!(actor.starts_with("error INVALID_INPUT: "), "{actor}");
    assert!(!actor.to_lowercase().contains("invalid input:"), "{actor}");

    let again = fail(&["register-book", "b-1", "Refactoring", "--fee", "20"]);
    assert!(
        again.starts_with("error BOOK_EXISTS: book b-1 is already registered\n"),
        "{again}"
    );
    assert!(again.contains("`lendkit add-copies b-1 COPIES`"), "{again}");
    assert!(!again.contains("add_copies"), "{again}");

    let letter = fail(&["replay", "nope"]);
    assert!(
        letter.starts_with("error DEAD_LETTER_NOT_FOUND: "),
        "{letter}"
    );
    assert!(letter.contains("`lendkit dead-letters`"), "{letter}");

    for message in [&zero, &actor, &again, &letter] {
        assert_eq!(
            message.lines().count(),
            2,
            "an error line and a hint: {message}"
        );
        assert!(
            message.lines().nth(1).unwrap().starts_with("hint: "),
            "{message}"
        );
    }
}

/// The subcommands `lendkit [PATH…] --help` lists (none for a leaf), without `help`.
fn subcommands_of(path: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_lendkit"))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "lendkit {path:?} --help");
    let help = String::from_utf8(out.stdout).unwrap();
    let Some(commands) = help.split("Commands:\n").nth(1) else {
        return Vec::new();
    };
    commands
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .filter(|c| c != "help")
        .collect()
}

/// The subcommands `lendkit --help` lists.
fn subcommands() -> Vec<String> {
    subcommands_of(&[])
}

#[test]
fn every_argument_of_every_subcommand_has_a_help_line() {
    let commands = subcommands();
    assert!(commands.len() >= 17, "{commands:?}");
    // Every command at every depth (`rules check` too), and `lendkit` itself.
    let mut walk: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = 0;
    while let Some(path) = walk.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for sub in subcommands_of(&args) {
            let mut deeper = path.clone();
            deeper.push(sub);
            walk.push(deeper);
        }
        seen += 1;
        let command = args.join(" ");
        let out = Command::new(env!("CARGO_BIN_EXE_lendkit"))
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{command} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        // The command says what it does, on the first line.
        assert!(
            help.lines()
                .next()
                .is_some_and(|l| !l.trim().is_empty() && !l.starts_with("Usage")),
            "`lendkit {command} --help` does not say what it does:\n{help}"
        );
        let mut in_list = false;
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if *line == "Arguments:" || *line == "Options:" {
                in_list = true;
            } else if !line.starts_with(' ') {
                in_list = false;
            } else if in_list && line.starts_with("  ") && line.trim_start().starts_with(['-', '<'])
            {
                // `  <BOOK_ID>  The book's id`: an entry, its help after two spaces — or, in
                // clap's long layout, on the next line, indented further.
                let entry = line.trim();
                let indent = line.len() - line.trim_start().len();
                let below = lines.get(i + 1).is_some_and(|next| {
                    !next.trim().is_empty()
                        && next.len() - next.trim_start().len() > indent
                        && !next.trim_start().starts_with(['-', '<'])
                });
                // Only `[default: …]` or `[possible values: …]` after the entry is no help.
                let beside = entry
                    .split_once("  ")
                    .is_some_and(|(_, text)| !text.trim().starts_with('['));
                assert!(
                    beside || below,
                    "`lendkit {command} --help`: {entry} has no help line"
                );
            }
        }
    }
    assert!(
        seen > commands.len() + 2,
        "the walk reached the nested commands: {seen}"
    );
}

/// `lendkit completions SHELL`, which must succeed quietly.
fn completions(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lendkit"))
        .args(["completions", shell])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "completions {shell}: {stderr}");
    assert!(stderr.is_empty(), "completions {shell}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completion_scripts_know_every_subcommand_and_the_global_options() {
    let commands = subcommands();
    for (shell, mark) in [
        ("bash", "complete -F _lendkit"),
        ("zsh", "#compdef lendkit"),
        ("fish", "complete -c lendkit"),
        ("elvish", "edit:completion:arg-completer[lendkit]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = completions(shell);
        assert!(script.contains(mark), "{shell}: no `{mark}` in\n{script}");
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell}: no {command}");
        }
        for option in ["db", "store", "as", "json", "command-id"] {
            // fish spells a long option `-l NAME`; the others `--NAME`.
            let spelled = match shell {
                "fish" => format!("-l {option}"),
                _ => format!("--{option}"),
            };
            assert!(script.contains(&spelled), "{shell}: no {spelled}");
        }
    }
    // An unknown shell is a usage error that lists the known ones.
    let out = Command::new(env!("CARGO_BIN_EXE_lendkit"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bash") && stderr.contains("fish"),
        "{stderr}"
    );
}

#[test]
fn the_bash_completion_completes_a_subcommand_and_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("lendkit.bash");
    std::fs::write(&script, completions("bash")).unwrap();
    // Load the script as bash-completion would and ask it what `lendkit reg<TAB>` and
    // `lendkit register-book --co<TAB>` complete to.
    let complete = |words: &str| {
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
             _lendkit lendkit \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &program])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bash: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let subs = complete("lendkit reg");
    assert_eq!(
        subs.split_whitespace().collect::<Vec<_>>(),
        ["register-book"],
        "{subs}"
    );
    let options = complete("lendkit register-book --co");
    assert!(
        options.split_whitespace().any(|o| o == "--copies"),
        "{options}"
    );
}

/// A rules file with the issue's rows: `* * *` → 21 days, `student * *` → 14, `* dvd *` → 7.
const RULES: &str = r#"
[policies.loan.standard]
period = "21 days"
[policies.loan.student]
period = "14 days"
[policies.loan.short]
period = "7 days"
[policies.fine.daily]
points = 1
per = "day"
[policies.limits.default]
max_loans = 30
[policies.lost.standard]
aged_to_lost_after_days = 60
replacement_cost = 20

[[rules]]
loan = "standard"
fine = "daily"
limits = "default"
lost = "standard"

[[rules]]
group = "student"
loan = "student"
fine = "daily"
limits = "default"
lost = "standard"

[[rules]]
item_type = "dvd"
loan = "short"
fine = "daily"
limits = "default"
lost = "standard"
"#;

/// `lendkit rules ARGS…` on `text` written to a temporary file named `name`.
fn rules(name: &str, text: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let (sub, rest) = args.split_first().unwrap();
    Command::new(env!("CARGO_BIN_EXE_lendkit"))
        .args(["rules", sub])
        .arg(&file)
        .args(rest)
        .output()
        .unwrap()
}

#[test]
fn rules_check_accepts_a_valid_table() {
    let out = rules("rules.toml", RULES, &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("valid, 3 rules, 0 warnings"), "{stdout}");
    assert!(out.stderr.is_empty());

    let explained = rules(
        "rules.toml",
        RULES,
        &[
            "explain",
            "--group",
            "student",
            "--item-type",
            "dvd",
            "--branch",
            "main",
        ],
    );
    let text = String::from_utf8(explained.stdout).unwrap();
    assert!(text.starts_with("wins:  rule 3:"), "{text}");
    assert!(
        text.contains("rule 1:") && text.contains("(fewer specific fields)"),
        "{text}"
    );
    assert!(
        text.contains("rule 2:") && text.contains("(lower precedence"),
        "{text}"
    );
    assert!(text.contains("\"period\":\"7 days\""), "{text}");
}

#[test]
fn rules_check_warns_of_a_row_that_can_never_match() {
    let shadowed = RULES.replace("group = \"student\"", "item_type = \"dvd\"");
    let out = rules("rules.toml", &shadowed, &["check"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("warning: rule 2 can never match: rule 3 has the same"),
        "{stdout}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.json");
    let as_json = serde_json::json!({
        "policies": {
            "loan": {"std": {"period": "21 days"}},
            "fine": {"std": {"points": 1, "per": "day"}},
            "limits": {"std": {}},
            "lost": {"std": {"aged_to_lost_after_days": 60, "replacement_cost": 20}}
        },
        "rules": [
            {"loan": "std", "fine": "std", "limits": "std", "lost": "std"},
            {"group": "*", "item_type": "*", "branch": "*", "loan": "std", "fine": "std", "limits": "std", "lost": "std"}
        ]
    });
    std::fs::write(&file, as_json.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lendkit"))
        .args(["rules", "check", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(
        report["warnings"],
        serde_json::json!([{"warning": "shadowed", "row": 1, "by": 2}])
    );
}

#[test]
fn rules_check_refuses_an_invalid_table_naming_row_and_field() {
    let cases = [
        (
            RULES.replace("loan = \"short\"", "loan = \"shorter\""),
            "error INVALID_INPUT: rule 3, field loan: names the loan policy \"shorter\"",
        ),
        (
            RULES.replace("period = \"14 days\"", "period = \"0 days\""),
            "error INVALID_INPUT: loan policy \"student\", field period: is \"0 days\"",
        ),
        (
            RULES.replacen(
                "loan = \"standard\"\nfine",
                "group = \"adult\"\nloan = \"standard\"\nfine",
                1,
            ),
            "error INVALID_INPUT: no `* * *` row",
        ),
        (
            "[[rules]\n".to_owned(),
            "error INVALID_INPUT: the rules file is not valid TOML",
        ),
    ];
    for (text, says) in cases {
        let out = rules("rules.toml", &text, &["check"]);
        assert_eq!(out.status.code(), Some(1), "{says}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with(says), "{stderr}\nshould start: {says}");
        assert!(stderr.contains("hint: docs/rules.md"), "{stderr}");
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_lendkit"))
        .args(["rules", "check", "/nonexistent/rules.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8(missing.stderr)
        .unwrap()
        .starts_with("error INVALID_INPUT: cannot read the rules file"));
}

/// `EveryCommit` on sled ends every acknowledged command with an `fdatasync` of sled's data
/// file (sled 0.34's own flush only calls `sync_file_range`, which neither flushes the drive's
/// cache nor the file's size). Shown with strace, when the machine has it.
#[test]
fn a_command_on_sled_is_acknowledged_after_an_fdatasync() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("SKIPPED: strace is not installed, so the sync calls cannot be counted");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.db");
    ok(&db, &["join-member", "m-1", "Kim", "--as", "librarian:l-1"]);
    let trace = dir.path().join("trace");
    let out = Command::new("strace")
        .args(["-f", "-e", "trace=fdatasync,fsync,sync_file_range", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_lendkit"))
        .arg("--db")
        .arg(&db)
        .args(["top-up", "m-1", "5", "--as", "librarian:l-1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&trace).unwrap();
    let fdatasyncs = calls.lines().filter(|l| l.contains("fdatasync(")).count();
    assert!(
        fdatasyncs >= 1,
        "no fdatasync while storing a command:\n{calls}"
    );
}

/// The syncs (`fsync`/`fdatasync`) of the library's own files while `lendkit ARGS` runs.
fn syncs_of(db: &Path, args: &[&str]) -> usize {
    let trace = db.with_extension("trace");
    let out = Command::new("strace")
        .args(["-f", "-y", "-e", "trace=fdatasync,fsync", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_lendkit"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&trace).unwrap();
    let name = db.to_string_lossy().into_owned();
    calls
        .lines()
        .filter(|l| l.contains("sync(") && l.contains(&format!("<{name}")))
        .filter(|l| !l.contains(".generating>") && !l.contains(&format!("<{name}>")))
        .count()
}

/// What a reservation's saga costs the disk, in syncs, next to a top-up (which sets nothing
/// off), on both stores, shown with strace, one command per process as the CLI runs them. By
/// default a user request is one durable commit and what its settle stores is another: on sled
/// a reservation, whose saga allocates a copy and confirms the rental, costs exactly one sync
/// more than a top-up — not one per reaction. On SQLite the settle's reactions and the
/// checkpoints it moves are one transaction, and a top-up's settle has checkpoints to commit
/// too (at close, the process's last commit): the two cost the same. With
/// `--immediate-reactions` the copy is allocated and the rental confirmed within the
/// reservation, under its sync: on both stores a reservation costs exactly what a top-up costs.
/// Either way the member page then says confirmed. (Per lifecycle in a long-running library
/// the counts are in docs/PERFORMANCE.md: 5 syncs by default, 3 with immediate reactions.)
#[test]
fn a_saga_costs_one_sync_after_its_request_or_none_with_immediate_reactions() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("SKIPPED: strace is not installed, so the sync calls cannot be counted");
        return;
    }
    for name in ["lib.db", "lib.sqlite"] {
        let by_default = if name.ends_with(".sqlite") { 0 } else { 1 };
        for (immediate, extra) in [(false, by_default), (true, 0)] {
            let mode = if immediate {
                "--immediate-reactions"
            } else {
                "by default"
            };
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join(name);
            let librarian = ["--as", "librarian:l-1"];
            let flag: &[&str] = if immediate {
                &["--immediate-reactions"]
            } else {
                &[]
            };
            ok(
                &db,
                &[&["join-member", "m-1", "Kim"][..], &librarian].concat(),
            );
            ok(
                &db,
                &[
                    &["register-book", "b-1", "Dune", "--fee", "5"][..],
                    &librarian,
                ]
                .concat(),
            );
            let top_up = syncs_of(
                &db,
                &[&["top-up", "m-1", "50"][..], &librarian, flag].concat(),
            );
            let reserve = syncs_of(
                &db,
                &[
                    &["reserve-book", "b-1", "m-1", "--as", "member:m-1"][..],
                    flag,
                ]
                .concat(),
            );
            assert!(
                top_up >= 1,
                "{name}, {mode}: a top-up was stored without a sync"
            );
            assert_eq!(
                reserve,
                top_up + extra,
                "{name}, {mode}: a reservation and its saga must cost {extra} sync(s) more than a top-up"
            );
            let page = ok(&db, &["member", "m-1"]);
            assert!(page.contains("confirmed"), "{name}, {mode}: {page}");
        }
    }
}
