//! The `lendkit` command: every library command and query from a terminal, on `./library.db`
//! (or `--db PATH`), printing readable tables or `--json`; `lendkit demo` plays the seed
//! stories on a fresh temporary database; `lendkit model` prints the domain model as a Mermaid
//! event-storming flowchart generated from the policy table.

mod bench;
#[cfg(feature = "sqlite")]
mod crud;
#[cfg(feature = "nats")]
mod pg_bench;

/// mimalloc instead of the system allocator: lendkit allocates many small strings, and glibc's
/// malloc spent about 40% of the saga benchmark's time (see docs/PERFORMANCE.md). Built
/// without transparent huge pages (`no_thp`, cli/Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use lendkit::catalog::BookError;
use lendkit::circulation::{Format, RulesTable};
use lendkit::event::Envelope;
use lendkit::policies::POLICIES;
use lendkit::views::{BookRow, MemberPage};
use lendkit::{Actor, Command, Config, ErrorCode, ErrorFamily, Library, OpenLibrary};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The rules of a lending library, from the command line.
#[derive(Parser)]
#[command(name = "lendkit", version, about)]
struct Cli {
    /// The library (a folder). A command that stores something creates it, inside a folder that
    /// must exist; queries need an existing library.
    #[arg(long, global = true, default_value = "library.db")]
    db: PathBuf,
    /// The store: `sled` (a folder), `sqlite` (one file), or `auto` — the one already at
    /// `--db`; a new library is sled unless the name ends in `.sqlite`.
    #[arg(long, global = true, default_value = "auto")]
    store: String,
    /// Who acts: `librarian:ID` or `member:ID`.
    #[arg(
        long = "as",
        global = true,
        default_value = "librarian:admin",
        value_name = "ACTOR"
    )]
    actor: String,
    /// The in-process policies react within the command that caused them: a reservation
    /// returns with its copy allocated and the rental confirmed (a copy already taken is
    /// refused at once), and the command and those reactions share one sync. Refunds, notices
    /// and the views still follow after it.
    #[arg(long, global = true)]
    immediate_reactions: bool,
    /// Log what the library does to stderr: once for info (circuit changes), twice for debug
    /// (every command, reaction and commit), three times for trace. Without it only warnings
    /// (retries, dead letters, failed commits) are printed; `RUST_LOG` (e.g. `lendkit=debug`)
    /// overrides both. Log lines carry ids, command names and error codes, never a member's
    /// name, contact or address.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// A command id, to make a retry safe (the same id returns the first result).
    #[arg(long, global = true)]
    command_id: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Register a book (librarian).
    RegisterBook {
        /// The book's id, e.g. its ISBN.
        book_id: String,
        /// The book's title.
        title: String,
        /// How many copies the library owns.
        #[arg(long, default_value_t = 1)]
        copies: u32,
        /// The fee in points a member pays to reserve it.
        #[arg(long)]
        fee: u64,
        /// The book's author.
        #[arg(long)]
        author: Option<String>,
        /// The item type the circulation rules know it by (`book`, `dvd`, …).
        #[arg(long)]
        item_type: Option<String>,
        /// The branch its copies belong to.
        #[arg(long)]
        branch: Option<String>,
    },
    /// Stock more copies of a book (librarian).
    AddCopies {
        /// The book's id.
        book_id: String,
        /// How many copies to add.
        copies: u32,
    },
    /// Register a member; their point account opens with the welcome points.
    #[command(name = "join-member", visible_alias = "join")]
    Join {
        /// The new member's id.
        member_id: String,
        /// The member's name.
        name: String,
        /// How to reach the member (notices go there).
        #[arg(long)]
        contact: Option<String>,
        /// The member's group for the circulation rules (`adult`, `student`, …; librarians only).
        #[arg(long)]
        group: Option<String>,
    },
    /// Replace the circulation rules with a rules file (librarian); see docs/rules.md.
    ChangeCirculationRules {
        /// The rules file (TOML, or JSON when it ends in `.json`).
        file: PathBuf,
    },
    /// Which circulation rules apply when a member borrows a book, and why (JSON).
    ExplainPolicy {
        /// The member's id.
        member_id: String,
        /// The book's id.
        book_id: String,
        /// The branch (default `*`).
        #[arg(long)]
        branch: Option<String>,
    },
    /// Add points to a member's point account (librarian).
    TopUp {
        /// The member's id.
        member_id: String,
        /// How many points to add.
        points: u64,
    },
    /// Reserve a book, paying its fee in points.
    #[command(name = "reserve-book", visible_alias = "reserve")]
    Reserve {
        /// The book's id.
        book_id: String,
        /// The member who rents it.
        member_id: String,
        /// An id for the rental (default: one derived from the command id).
        #[arg(long)]
        rental_id: Option<String>,
        /// Deliver to this address instead of picking up.
        #[arg(long)]
        deliver_to: Option<String>,
        /// When no copy is free, join the title's hold queue instead of failing.
        #[arg(long)]
        wait: bool,
    },
    /// Queue for a book whose copies are all out (the fee is paid now).
    PlaceHold {
        /// The book's id.
        book_id: String,
        /// The member who waits.
        member_id: String,
        /// An id for the hold (default: one derived from the command id).
        #[arg(long)]
        hold_id: Option<String>,
        /// The branch to collect it at (default: the book's).
        #[arg(long)]
        pickup_branch: Option<String>,
        /// Not wanted after this: RFC 3339 (`2026-03-16T17:30:00Z`) or ms since 1970.
        #[arg(long)]
        not_needed_after: Option<String>,
        /// Hold this copy (its number, 1 for the first) rather than any copy.
        #[arg(long)]
        copy: Option<u32>,
    },
    /// Take a copy that is on the shelf out of the collection (librarian).
    WithdrawCopy {
        /// The book's id.
        book_id: String,
        /// The copy's number (1 for the first).
        copy: u32,
    },
    /// Cancel a hold (the fee is refunded; the next in line moves up).
    CancelHold {
        /// The hold's id.
        hold_id: String,
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Move a waiting hold to another place in its book's queue (librarian).
    ReorderQueue {
        /// The book's id.
        book_id: String,
        /// The hold's id.
        hold_id: String,
        /// Its new position (1 is first in line).
        position: u32,
    },
    /// Collect a hold from the pickup shelf: the loan starts.
    CollectHold {
        /// The hold's id.
        hold_id: String,
        /// The branch lending it (default: the hold's pickup branch).
        #[arg(long)]
        branch: Option<String>,
        /// Lend although the member is blocked, for this reason (librarian).
        #[arg(long)]
        override_reason: Option<String>,
    },
    /// Copy the library at FROM into a new library at TO: every event at the same position,
    /// with its id and command record, every checkpoint and dead letter. `--store` names
    /// FROM's store (default: the one there), `--to-store` TO's (default: sled, or SQLite for a
    /// name ending in `.sqlite`).
    Migrate {
        /// The library to copy.
        from: PathBuf,
        /// Where the copy goes (must not hold a library yet).
        to: PathBuf,
        /// The copy's store: `sled` or `sqlite`.
        #[arg(long, default_value = "auto")]
        to_store: String,
    },
    /// Run this process's share of a library shared through PostgreSQL and NATS: its policies
    /// (each event handled once, by whichever worker process pulls it) and its clock-driven
    /// rules, until stdin closes or the process is stopped. Start as many as you like, on as
    /// many machines; a stopped or killed one leaves its events to the others. Needs a build
    /// with the `nats` feature (`cargo install lendkit-cli --features nats`).
    ServeWorkers {
        /// The PostgreSQL server: `postgres://user@host:5432/database`.
        #[arg(long)]
        pg: String,
        /// The NATS server: `nats://host:4222`.
        #[arg(long)]
        nats: String,
        /// The library's PostgreSQL schema and NATS namespace.
        #[arg(long, default_value = "lendkit")]
        name: String,
    },
    /// The holds waiting on a pickup shelf, with their deadlines (librarian).
    HoldShelf {
        /// Only this branch's shelf.
        #[arg(long)]
        branch: Option<String>,
    },
    /// Pick up a confirmed rental.
    #[command(name = "start-loan", visible_alias = "loan")]
    Loan {
        /// The rental's id.
        rental_id: String,
        /// The branch lending it (default: the book's).
        #[arg(long)]
        branch: Option<String>,
        /// Lend although the member is blocked, for this reason (librarian).
        #[arg(long)]
        override_reason: Option<String>,
    },
    /// Return a loaned book.
    #[command(name = "return-book", visible_alias = "return")]
    Return {
        /// The rental's id.
        rental_id: String,
        /// When it really came back: RFC 3339 (`2026-03-16T17:30:00Z`) or ms since 1970.
        #[arg(long)]
        returned_at: Option<String>,
    },
    /// Cancel a reservation (refund, copy release and delivery cancellation follow).
    #[command(name = "cancel-rental", visible_alias = "cancel")]
    Cancel {
        /// The rental's id.
        rental_id: String,
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Renew a loan.
    #[command(name = "renew-loan", visible_alias = "renew")]
    Renew {
        /// The rental's id.
        rental_id: String,
        /// Renew although the member is blocked, for this reason (librarian).
        #[arg(long)]
        override_reason: Option<String>,
    },
    /// Pay a member's fees, oldest first.
    PayFees {
        /// The member's id.
        member_id: String,
        /// How many points to pay.
        amount: u64,
        /// `points` (from the point account, the default) or `external` (paid at the desk).
        #[arg(long)]
        paid_from: Option<String>,
    },
    /// Waive what is left of a fee (librarian).
    WaiveFee {
        /// The member's id.
        member_id: String,
        /// The fee's id (`RENTAL:overdue`).
        fee_id: String,
        /// Why.
        reason: String,
    },
    /// Block a member from borrowing, renewing and reserving (librarian).
    BlockMember {
        /// The member's id.
        member_id: String,
        /// Why.
        reason: String,
    },
    /// Lift a member's block (librarian).
    UnblockMember {
        /// The member's id.
        member_id: String,
    },
    /// Record that a delivery arrived (librarian).
    #[command(name = "mark-delivered", visible_alias = "deliver")]
    Deliver {
        /// The rental's id.
        rental_id: String,
    },
    /// The book list.
    Books,
    /// A member's page.
    Member {
        /// The member's id.
        member_id: String,
    },
    /// Stored events.
    Events {
        /// The position of the first event to show.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// At most this many events.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Events the consumers gave up on.
    DeadLetters,
    /// Hand a dead letter's event to its consumer again.
    Replay {
        /// The dead letter's id, as `lendkit dead-letters` shows it.
        id: String,
    },
    /// Check or explain a circulation rules file (TOML or JSON; see docs/rules.md).
    Rules {
        #[command(subcommand)]
        action: RulesCmd,
    },
    /// Play the library stories on a fresh temporary database (with `--keep`: at `--db`, kept).
    Demo {
        /// Keep the demo's library at `--db` (which must not exist yet) instead of a temporary folder.
        #[arg(long)]
        keep: bool,
    },
    /// Print the domain model as a Mermaid flowchart.
    Model,
    /// Print a shell completion script for `lendkit` to stdout (e.g. `lendkit completions bash >
    /// ~/.local/share/bash-completion/completions/lendkit`).
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Measure throughput, latency, replay, queries and memory against same-run baselines (use a release build).
    Bench {
        /// Small sizes, for a smoke run.
        #[arg(long)]
        quick: bool,
        /// Only the in-memory saga throughput (the figure the Python and Node benches compare with).
        #[arg(long)]
        saga_only: bool,
        /// Only the durable stores next to the SQLite CRUD peer (both shapes, 1 and 16 callers).
        #[arg(long)]
        stores_only: bool,
        /// Internal: measure replay, queries and memory on this database in this process.
        #[arg(long, hide = true)]
        replay_part: Option<PathBuf>,
        /// Internal: build a replay log of this many events at `--db` (for profiling an open), and stop.
        #[arg(long, hide = true)]
        build_replay_log: Option<usize>,
        /// Lifecycles per saga run (default 20,000; 2,000 with --quick).
        #[arg(long)]
        lifecycles: Option<usize>,
        /// Members in the saga runs.
        #[arg(long)]
        members: Option<usize>,
        /// Books in the saga runs.
        #[arg(long)]
        books: Option<usize>,
        /// Only the PostgreSQL and NATS figures, against this PostgreSQL server (with
        /// `--nats`): appends next to a raw counter-row insert at 1, 4 and 16 writers,
        /// lifecycles through 1 and 3 connected libraries (policies with one worker, and with
        /// one per partition), commit-to-handler latency. Needs a build with the `nats` feature.
        #[arg(long, requires = "nats", value_name = "URL")]
        pg: Option<String>,
        /// The NATS server for `--pg`.
        #[arg(long, requires = "pg", value_name = "URL")]
        nats: Option<String>,
    },
}

/// `lendkit rules …`: the rules table, read from a file; no library is opened.
#[derive(Subcommand)]
enum RulesCmd {
    /// Validate a rules file: exit 0 with warnings (rows that can never match, unused policies) printed, or exit 1 naming the row or policy and the field at fault.
    Check {
        /// The rules file: `.json` is read as JSON, anything else as TOML.
        file: PathBuf,
    },
    /// Show which row wins for a group, an item type and a branch, why every other matching row lost, the resolved policies and the due date they give now.
    Explain {
        /// The rules file: `.json` is read as JSON, anything else as TOML; without one, the rules stored in the library at `--db`.
        file: Option<PathBuf>,
        /// The member's group.
        #[arg(long)]
        group: String,
        /// The item's type.
        #[arg(long)]
        item_type: String,
        /// The branch.
        #[arg(long)]
        branch: String,
    },
}

/// Reads and loads a rules file; an unreadable or invalid one is `INVALID_INPUT`.
fn load_rules(file: &Path) -> lendkit::Result<RulesTable> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        lendkit::Error::InvalidInput(format!(
            "cannot read the rules file {}: {e}",
            file.display()
        ))
    })?;
    let format = Format::for_file_name(&file.to_string_lossy());
    Ok(RulesTable::parse(&text, format)?)
}

fn rules(action: RulesCmd, db: &Path, json: bool, out: &mut dyn Write) -> Outcome {
    match action {
        RulesCmd::Check { file } => {
            let table = load_rules(&file)?;
            if json {
                let report = serde_json::json!({
                    "valid": true,
                    "rules": table.rules().len(),
                    "warnings": table.warnings(),
                });
                writeln!(out, "{report:#}")?;
            } else {
                let (rows, warnings) = (table.rules().len(), table.warnings().len());
                let plural = |n: usize| if n == 1 { "" } else { "s" };
                writeln!(
                    out,
                    "{}: valid, {rows} rule{}, {warnings} warning{}",
                    file.display(),
                    plural(rows),
                    plural(warnings)
                )?;
                for warning in table.warnings() {
                    writeln!(out, "warning: {warning}")?;
                }
            }
        }
        RulesCmd::Explain {
            file,
            group,
            item_type,
            branch,
        } => {
            let (table, version) = match &file {
                Some(file) => (load_rules(file)?, None),
                None => {
                    let lib = open(db)?;
                    let stored = lendkit::block_on(lib.circulation_rules())?;
                    lib.close()?;
                    let Some((version, table)) = stored else {
                        return Err(lendkit::Error::InvalidInput(format!(
                            "no circulation rules are stored in {}; store some with `lendkit change-circulation-rules FILE`, or give a rules file",
                            db.display()
                        ))
                        .into());
                    };
                    (table, Some(version))
                }
            };
            let e = table.explain(&group, &item_type, &branch);
            // The due date the winning loan policy gives a loan made now at this branch.
            let now = lendkit::ports::Clock::now(&lendkit::adapters::SystemClock);
            let due = lendkit::circulation::due_date(
                &e.policies.loan.policy,
                now,
                table.calendar(&branch),
            )
            .map(|d| d.to_rfc3339())
            .map_err(|e| lendkit::Error::InvalidInput(e.to_string()))?;
            if json {
                let mut v = serde_json::json!(e);
                v["due_now"] = serde_json::json!(due);
                v["version"] = serde_json::json!(version);
                writeln!(out, "{v:#}")?;
            } else {
                if let Some(v) = version {
                    writeln!(out, "rules version {v}, stored in {}", db.display())?;
                }
                let row = |r: &lendkit::circulation::Rule| {
                    format!(
                        "rule {}: group {}, item_type {}, branch {} -> loan {}, fine {}, limits {}, lost {}",
                        r.row, r.group, r.item_type, r.branch, r.loan, r.fine, r.limits, r.lost
                    )
                };
                writeln!(out, "wins:  {}", row(e.winner))?;
                for b in &e.beaten {
                    writeln!(out, "lost:  {} ({})", row(b.rule), b.because)?;
                }
                let p = e.policies;
                writeln!(
                    out,
                    "loan {}: {}",
                    p.loan.name,
                    serde_json::json!(p.loan.policy)
                )?;
                writeln!(
                    out,
                    "fine {}: {}",
                    p.fine.name,
                    serde_json::json!(p.fine.policy)
                )?;
                writeln!(
                    out,
                    "limits {}: {}",
                    p.limits.name,
                    serde_json::json!(p.limits.policy)
                )?;
                writeln!(
                    out,
                    "lost {}: {}",
                    p.lost.name,
                    serde_json::json!(p.lost.policy)
                )?;
                if let Some(r) = p.request {
                    writeln!(out, "request {}: {}", r.name, serde_json::json!(r.policy))?;
                }
                writeln!(out, "a loan made now is due {due}")?;
            }
        }
    }
    Ok(())
}

/// How a subcommand uses the library at `--db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Not at all (`demo`, `model`, `bench`).
    None,
    /// It needs an existing library and never creates one (the queries, and `replay`).
    Existing,
    /// It stores a command: it creates the library if there is none, in an existing folder.
    Write,
}

impl Cmd {
    fn access(&self) -> Access {
        match self {
            Cmd::Rules {
                action: RulesCmd::Explain { file: None, .. },
            } => Access::Existing,
            Cmd::Demo { keep: true } => Access::Write,
            Cmd::Demo { .. }
            | Cmd::Model
            | Cmd::Completions { .. }
            | Cmd::Bench { .. }
            | Cmd::Rules { .. }
            | Cmd::Migrate { .. }
            | Cmd::ServeWorkers { .. } => Access::None,
            Cmd::Books
            | Cmd::Member { .. }
            | Cmd::Events { .. }
            | Cmd::DeadLetters
            | Cmd::ExplainPolicy { .. }
            | Cmd::HoldShelf { .. }
            | Cmd::Replay { .. } => Access::Existing,
            Cmd::RegisterBook { .. }
            | Cmd::AddCopies { .. }
            | Cmd::Join { .. }
            | Cmd::TopUp { .. }
            | Cmd::Reserve { .. }
            | Cmd::PlaceHold { .. }
            | Cmd::WithdrawCopy { .. }
            | Cmd::CancelHold { .. }
            | Cmd::ReorderQueue { .. }
            | Cmd::CollectHold { .. }
            | Cmd::Loan { .. }
            | Cmd::Return { .. }
            | Cmd::Cancel { .. }
            | Cmd::Renew { .. }
            | Cmd::Deliver { .. }
            | Cmd::PayFees { .. }
            | Cmd::WaiveFee { .. }
            | Cmd::BlockMember { .. }
            | Cmd::UnblockMember { .. }
            | Cmd::ChangeCirculationRules { .. } => Access::Write,
        }
    }
}

/// Why a run failed.
#[derive(Debug)]
enum Failure {
    /// lendkit said no (a rule, the input, the storage).
    Library(lendkit::Error),
    /// The command line said no before opening anything: no library where a query looks, no
    /// folder where a write would create one.
    Refused {
        code: ErrorCode,
        message: String,
        hint: String,
    },
    /// Writing to stdout failed. A reader that went away (`lendkit events | head`) is not a
    /// failure: the command is done, only its report is unwanted.
    Output(io::Error),
}

impl From<lendkit::Error> for Failure {
    fn from(e: lendkit::Error) -> Self {
        Failure::Library(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Output(e)
    }
}

type Outcome<T = ()> = Result<T, Failure>;

/// Sends the library's tracing events to stderr: warnings by default, more with `-v`, or what
/// `RUST_LOG` says.
fn logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("lendkit={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_target(true)
        .try_init();
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    // The subcommand as typed (`add-copies`), for hints.
    let subcommand = matches.subcommand_name().unwrap_or_default().to_owned();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    logging(cli.verbose);
    let access = cli.command.access();
    // Everything goes through one handle, so a closed pipe is an error to handle, not the panic
    // of `println!` (Rust ignores SIGPIPE, so the write fails with EPIPE instead).
    let mut out = io::stdout().lock();
    let result = execute(cli, &mut out).and_then(|()| out.flush().map_err(Failure::Output));
    let mut err = io::stderr().lock();
    // Writes to stderr are best effort: if it is closed too, there is no one left to tell.
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Output(e)) => {
            let _ = writeln!(err, "error: the output could not be written: {e}");
            if access == Access::Write {
                let _ = writeln!(
                    err,
                    "note: the command itself was stored; `lendkit events` shows it"
                );
            }
            ExitCode::FAILURE
        }
        Err(Failure::Library(e)) => {
            let _ = writeln!(err, "error {}: {}", e.code(), message(&e));
            let book = match &e {
                lendkit::Error::Book(BookError::AlreadyRegistered(book)) => Some(book.as_str()),
                _ => None,
            };
            let _ = writeln!(err, "hint: {}", hint(e.code(), book, &subcommand));
            ExitCode::FAILURE
        }
        Err(Failure::Refused {
            code,
            message,
            hint,
        }) => {
            let _ = writeln!(err, "error {code}: {message}");
            let _ = writeln!(err, "hint: {hint}");
            ExitCode::FAILURE
        }
    }
}

/// `lendkit serve-workers`: connects, says so, and runs the background consumers until stdin
/// closes.
#[cfg(feature = "nats")]
fn serve_workers(pg: &str, nats: &str, name: &str, out: &mut dyn Write) -> Outcome {
    use std::io::Read;
    let lib = OpenLibrary::connect(
        pg,
        nats,
        lendkit::ConnectOptions::named(name),
        Config::default(),
    )?;
    writeln!(
        out,
        "serving the workers of library {name} (close stdin or stop the process to end)"
    )?;
    out.flush()?;
    let _ = io::stdin().read_to_end(&mut Vec::new());
    lib.close()?;
    Ok(())
}

/// `lendkit serve-workers` in a build without PostgreSQL and NATS.
#[cfg(not(feature = "nats"))]
fn serve_workers(pg: &str, nats: &str, _: &str, _: &mut dyn Write) -> Outcome {
    Err(without_nats((pg, nats)))
}

/// The refusal of a subcommand or option that needs PostgreSQL and NATS in a build without them.
#[cfg(not(feature = "nats"))]
fn without_nats(_servers: (&str, &str)) -> Failure {
    Failure::Refused {
        code: ErrorCode::InvalidInput,
        message: "this lendkit was built without PostgreSQL and NATS".into(),
        hint: "install it with `cargo install lendkit-cli --features nats`".into(),
    }
}

/// The error's message without a restatement of its code (`INVALID_INPUT: invalid input: …`).
fn message(e: &lendkit::Error) -> String {
    if let lendkit::Error::Book(BookError::AlreadyRegistered(book)) = e {
        // The core's message names the API call (`add_copies`); the hint names the subcommand.
        return format!("book {book} is already registered");
    }
    let text = e.to_string();
    let spoken = format!("{}: ", e.code().as_str().replace('_', " ").to_lowercase());
    match text.get(..spoken.len()) {
        Some(head) if head.eq_ignore_ascii_case(&spoken) => text[spoken.len()..].to_owned(),
        _ => text,
    }
}

/// One line on what to do next, naming subcommands as they are typed (`subcommand` is the one
/// that failed); `book` is the book of a `BOOK_EXISTS`.
fn hint(code: ErrorCode, book: Option<&str>, subcommand: &str) -> String {
    match code {
        ErrorCode::NotALibrary => {
            "point --db at a lendkit library (a folder), or at a new path in an existing folder \
             to create one"
                .into()
        }
        ErrorCode::Corrupt => {
            "the database is damaged; restore its folder from a backup, or move it aside and start a new library"
                .into()
        }
        ErrorCode::SchemaTooNew => "`lendkit --version` shows the version of this build".into(),
        ErrorCode::LibraryLocked => "wait for the other lendkit command to finish".into(),
        ErrorCode::LibraryReadOnly => {
            "make the library's files writable (or copy it somewhere writable) and try again"
                .into()
        }
        ErrorCode::PaymentUnavailable | ErrorCode::Conflict | ErrorCode::Storage => {
            "try again in a moment; nothing was stored".into()
        }
        ErrorCode::NotRentalOwner => {
            "act as the rental's member (--as member:ID) or as a librarian".into()
        }
        ErrorCode::BookExists => format!(
            "stock more with `lendkit add-copies {} COPIES`, or choose another book id",
            book.unwrap_or("BOOK_ID")
        ),
        ErrorCode::BookNotFound => {
            "`lendkit books` lists the books; `lendkit register-book` adds one".into()
        }
        ErrorCode::MemberNotFound => {
            "check the member id; `lendkit join MEMBER_ID NAME` registers a member".into()
        }
        ErrorCode::RentalNotFound => {
            "check the rental id; `lendkit member MEMBER_ID` lists a member's rentals".into()
        }
        ErrorCode::DeliveryNotFound => {
            "only a rental reserved with --deliver-to has a delivery; `lendkit member MEMBER_ID` \
             shows the rentals"
                .into()
        }
        ErrorCode::DeadLetterNotFound => "`lendkit dead-letters` lists the dead letters".into(),
        ErrorCode::InsufficientPoints => {
            "a librarian can add points: `lendkit top-up MEMBER_ID POINTS`".into()
        }
        code => match code.family() {
            ErrorFamily::InvalidInput if subcommand == "rules" => {
                "docs/rules.md describes the rules file; `lendkit rules check FILE` checks one"
                    .into()
            }
            ErrorFamily::InvalidInput if subcommand.is_empty() => {
                "`lendkit --help` describes the arguments".into()
            }
            ErrorFamily::InvalidInput => {
                format!("`lendkit {subcommand} --help` describes the arguments")
            }
            ErrorFamily::Unauthorized => {
                "act as someone allowed to: --as librarian:ID or --as member:ID".into()
            }
            ErrorFamily::NotFound => "check the id".into(),
            ErrorFamily::Conflict => "choose another id".into(),
            ErrorFamily::RuleViolation => {
                "`lendkit member MEMBER_ID` shows where the member's rentals stand".into()
            }
            ErrorFamily::Payment => {
                "`lendkit member MEMBER_ID` shows the balance; a librarian can `lendkit top-up`"
                    .into()
            }
            ErrorFamily::Storage => "check the --db path and the disk".into(),
        },
    }
}

/// Refuses before anything is opened: a query where there is no library (it would create an
/// empty one and show it), or a write whose folder does not exist (it would create the tree).
fn check_db(db: &Path, access: Access) -> Outcome {
    let exists = db.exists();
    match access {
        Access::None => Ok(()),
        Access::Existing => {
            let empty_folder = db.is_dir()
                && std::fs::read_dir(db)
                    .map(|mut entries| entries.next().is_none())
                    .unwrap_or(false);
            if exists && !empty_folder {
                return Ok(());
            }
            Err(Failure::Refused {
                code: ErrorCode::NotALibrary,
                message: format!("there is no lendkit library at {}", db.display()),
                hint: "check --db; a command that stores something creates the library, e.g. \
                       `lendkit register-book` or `lendkit join`"
                    .into(),
            })
        }
        Access::Write => {
            if exists {
                return Ok(());
            }
            // `library.db` has the parent "": the current folder.
            let folder = match db.parent() {
                Some(p) if p.as_os_str().is_empty() => Path::new("."),
                Some(p) => p,
                None => return Ok(()),
            };
            if folder.is_dir() {
                return Ok(());
            }
            Err(Failure::Refused {
                code: ErrorCode::NotALibrary,
                message: format!(
                    "the folder {} does not exist, so no library can be created at {}",
                    folder.display(),
                    db.display()
                ),
                hint: format!(
                    "check --db, or create the folder first: mkdir -p {}",
                    folder.display()
                ),
            })
        }
    }
}

/// The store `--store` names, for every library this run opens.
static STORE: std::sync::OnceLock<lendkit::Store> = std::sync::OnceLock::new();
/// Whether `--immediate-reactions` was given, for every library this run opens.
static IMMEDIATE_REACTIONS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn open(db: &Path) -> lendkit::Result<OpenLibrary> {
    OpenLibrary::open(
        db,
        Config {
            background: false,
            store: STORE.get().copied().unwrap_or_default(),
            immediate_reactions: IMMEDIATE_REACTIONS.get().copied().unwrap_or_default(),
            ..Config::default()
        },
    )
}

fn execute(cli: Cli, out: &mut dyn Write) -> Outcome {
    let actor = Actor::parse(&cli.actor).map_err(lendkit::Error::InvalidInput)?;
    let _ = STORE.set(lendkit::Store::parse(&cli.store)?);
    let _ = IMMEDIATE_REACTIONS.set(cli.immediate_reactions);
    check_db(&cli.db, cli.command.access())?;
    let command = match cli.command {
        Cmd::Demo { keep } => {
            return lendkit::block_on(demo(keep.then_some(cli.db.as_path()), out))
        }
        Cmd::Rules { action } => return rules(action, &cli.db, cli.json, out),
        Cmd::Migrate { from, to, to_store } => {
            let from_store = STORE.get().copied().unwrap_or_default();
            let to_store = lendkit::Store::parse(&to_store)?;
            let (done, a, b) =
                lendkit::block_on(lendkit::migrate(&from, from_store, &to, to_store))?;
            writeln!(
                out,
                "copied {} events ({} commits), {} checkpoints and {} dead letters from {} ({}) to {} ({})",
                done.events,
                done.commits,
                done.checkpoints,
                done.dead_letters,
                from.display(),
                a.name(),
                to.display(),
                b.name()
            )?;
            return Ok(());
        }
        Cmd::Model => {
            out.write_all(model().as_bytes())?;
            return Ok(());
        }
        Cmd::ServeWorkers { pg, nats, name } => return serve_workers(&pg, &nats, &name, out),
        Cmd::Completions { shell } => {
            // Into a buffer first: clap_complete panics on a failed write, and a closed pipe
            // (`lendkit completions bash | head`) is an output error to report, not a panic.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lendkit", &mut script);
            out.write_all(&script)?;
            return Ok(());
        }
        Cmd::Bench {
            quick,
            saga_only,
            stores_only,
            replay_part,
            build_replay_log,
            lifecycles,
            members,
            books,
            pg,
            nats,
        } => {
            if let (Some(pg), Some(nats)) = (pg, nats) {
                #[cfg(feature = "nats")]
                pg_bench::run(&pg, &nats, quick, cli.json, out)?;
                #[cfg(not(feature = "nats"))]
                return Err(without_nats((&pg, &nats)));
                #[cfg(feature = "nats")]
                return Ok(());
            }
            if let Some(events) = build_replay_log {
                let head = bench::build_replay_log(&cli.db, events);
                writeln!(out, "built {} with {head} events", cli.db.display())?;
                return Ok(());
            }
            match replay_part {
                Some(db) => writeln!(out, "{}", bench::replay_part(&db))?,
                None => {
                    let mut plan = if quick {
                        bench::Plan::quick()
                    } else {
                        bench::Plan::full()
                    };
                    plan.lifecycles = lifecycles.unwrap_or(plan.lifecycles).max(1);
                    plan.members = members.unwrap_or(plan.members).max(1);
                    plan.books = books.unwrap_or(plan.books).max(1);
                    bench::run(&plan, cli.json, saga_only, stores_only, out)?
                }
            }
            return Ok(());
        }
        Cmd::RegisterBook {
            book_id,
            title,
            copies,
            fee,
            author,
            item_type,
            branch,
        } => Command::RegisterBook {
            book_id,
            title,
            author,
            copies,
            fee,
            item_type,
            branch,
        },
        Cmd::AddCopies { book_id, copies } => Command::AddCopies { book_id, copies },
        Cmd::Join {
            member_id,
            name,
            contact,
            group,
        } => Command::JoinMember {
            member_id,
            name,
            contact,
            group,
        },
        Cmd::ChangeCirculationRules { file } => {
            let rules = std::fs::read_to_string(&file).map_err(|e| {
                lendkit::Error::InvalidInput(format!("cannot read {}: {e}", file.display()))
            })?;
            let json = file.extension().is_some_and(|x| x == "json");
            Command::ChangeCirculationRules {
                rules,
                format: Some(if json { "json" } else { "toml" }.into()),
            }
        }
        Cmd::TopUp { member_id, points } => Command::TopUp { member_id, points },
        Cmd::Reserve {
            book_id,
            member_id,
            rental_id,
            deliver_to,
            wait,
        } => Command::ReserveBook {
            wait: wait.then_some(true),
            book_id,
            member_id,
            rental_id,
            delivery_address: deliver_to,
        },
        Cmd::PlaceHold {
            book_id,
            member_id,
            hold_id,
            pickup_branch,
            not_needed_after,
            copy,
        } => Command::PlaceHold {
            book_id,
            member_id,
            hold_id,
            pickup_branch,
            not_needed_after: not_needed_after.map(|t| instant(&t)).transpose()?,
            copy,
        },
        Cmd::WithdrawCopy { book_id, copy } => Command::WithdrawCopy { book_id, copy },
        Cmd::CancelHold { hold_id, reason } => Command::CancelHold { hold_id, reason },
        Cmd::ReorderQueue {
            book_id,
            hold_id,
            position,
        } => Command::ReorderQueue {
            book_id,
            hold_id,
            position,
        },
        Cmd::CollectHold {
            hold_id,
            branch,
            override_reason,
        } => Command::CollectHold {
            hold_id,
            branch,
            override_reason,
        },
        Cmd::Loan {
            rental_id,
            branch,
            override_reason,
        } => Command::StartLoan {
            rental_id,
            branch,
            override_reason,
        },
        Cmd::Return {
            rental_id,
            returned_at,
        } => Command::ReturnBook {
            rental_id,
            returned_at: returned_at.map(|t| instant(&t)).transpose()?,
        },
        Cmd::PayFees {
            member_id,
            amount,
            paid_from,
        } => Command::PayFees {
            member_id,
            amount,
            paid_from,
        },
        Cmd::WaiveFee {
            member_id,
            fee_id,
            reason,
        } => Command::WaiveFee {
            member_id,
            fee_id,
            reason,
        },
        Cmd::BlockMember { member_id, reason } => Command::BlockMember { member_id, reason },
        Cmd::UnblockMember { member_id } => Command::UnblockMember { member_id },
        Cmd::Cancel { rental_id, reason } => Command::CancelRental { rental_id, reason },
        Cmd::Renew {
            rental_id,
            override_reason,
        } => Command::RenewLoan {
            rental_id,
            override_reason,
        },
        Cmd::Deliver { rental_id } => Command::MarkDelivered { rental_id },
        query => return run_query(&cli.db, query, cli.json, &actor, out),
    };
    let lib = open(&cli.db)?;
    let head = lendkit::block_on(lib.head())?;
    let outcome = lendkit::block_on(lib.execute_with_id(
        command,
        &actor,
        cli.command_id.map(lendkit::CommandId::from),
    ))?;
    // What the command stored (with the in-store point accounts a reservation's charge is in its
    // commit; a host gateway's charge is stored just before it), then
    // what the policies did about it.
    let done = outcome.events.last().map_or(head, |e| e.position.max(head));
    let replayed = !outcome.events.is_empty() && outcome.events.iter().all(|e| e.position <= head);
    let stored = if replayed {
        outcome.events.clone()
    } else {
        lendkit::block_on(lib.events(head + 1, usize::try_from(done - head).unwrap_or(usize::MAX)))?
    };
    lendkit::block_on(lib.settle())?;
    let followed = lendkit::block_on(lib.events(done + 1, usize::MAX))?;
    // Close before printing: the command and its reactions are stored whatever happens to the
    // output.
    lib.close()?;
    if cli.json {
        let json = serde_json::json!({
            "command_id": outcome.command_id.as_str(),
            "rental_id": outcome.rental_id.as_ref().map(|r| r.as_str()),
            "events": stored.iter().map(Envelope::to_json).collect::<Vec<_>>(),
            "followed_by": followed.iter().map(Envelope::to_json).collect::<Vec<_>>(),
        });
        writeln!(out, "{json:#}")?;
    } else {
        if let Some(r) = &outcome.rental_id {
            writeln!(out, "rental {r}")?;
        }
        if replayed {
            writeln!(
                out,
                "command {} was already applied; its events:",
                outcome.command_id
            )?;
        }
        print_events(out, "stored", &stored)?;
        print_events(out, "then", &followed)?;
    }
    Ok(())
}

/// Runs a query as `actor`: reads are authorized like commands (a member sees only their own
/// page; the log and the dead letters are for librarians).
fn run_query(db: &Path, query: Cmd, json: bool, actor: &Actor, out: &mut dyn Write) -> Outcome {
    let lib = open(db)?;
    let printed = query_on(&lib, query, json, actor, out);
    // Closed whether or not the output could be written.
    let closed = lib.close();
    printed?;
    Ok(closed?)
}

fn query_on(
    lib: &OpenLibrary,
    query: Cmd,
    json: bool,
    actor: &Actor,
    out: &mut dyn Write,
) -> Outcome {
    lendkit::block_on(lib.settle())?;
    let reader = lib.reader(actor);
    match query {
        Cmd::Books => {
            let rows = reader.book_list()?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                )?;
            } else {
                print_books(out, &rows)?;
            }
        }
        Cmd::ExplainPolicy {
            member_id,
            book_id,
            branch,
        } => {
            let explained =
                lendkit::block_on(reader.explain_policy(&member_id, &book_id, branch.as_deref()))?;
            writeln!(out, "{explained:#}")?;
        }
        Cmd::HoldShelf { branch } => {
            let rows = reader.hold_shelf(branch.as_deref())?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                )?;
            } else {
                for r in &rows {
                    writeln!(
                        out,
                        "  {:<8} {:<10} {:<10} {:<10} until {}{}",
                        r.branch.as_deref().unwrap_or("-"),
                        r.hold_id,
                        r.book_id,
                        r.member_id,
                        r.until,
                        if r.pull {
                            "  (pull from the shelf)"
                        } else {
                            ""
                        }
                    )?;
                }
            }
        }
        Cmd::Member { member_id } => {
            let page = reader.member_page(&member_id)?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&page).unwrap_or_default()
                )?;
            } else {
                print_page(out, &page)?;
                let blocks = lendkit::block_on(reader.member_blocks(&member_id))?;
                for b in blocks.as_array().into_iter().flatten() {
                    writeln!(
                        out,
                        "    cannot {}: {} ({})",
                        b["action"].as_str().unwrap_or("?"),
                        b["code"].as_str().unwrap_or("?"),
                        b["message"].as_str().unwrap_or("")
                    )?;
                }
            }
        }
        Cmd::Events { from, limit } => {
            let events = lendkit::block_on(reader.events(from, limit))?;
            if json {
                writeln!(
                    out,
                    "{:#}",
                    serde_json::Value::Array(events.iter().map(Envelope::to_json).collect())
                )?;
            } else {
                print_events(out, "events", &events)?;
            }
        }
        Cmd::DeadLetters => {
            let letters = lendkit::block_on(reader.dead_letters())?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&letters).unwrap_or_default()
                )?;
            } else if letters.is_empty() {
                writeln!(out, "no dead letters")?;
            } else {
                for l in letters {
                    writeln!(
                        out,
                        "  {:<24} {:<20} after {} attempts: {}",
                        l.id, l.event_type, l.attempts, l.error
                    )?;
                }
            }
        }
        Cmd::Replay { id } => {
            lendkit::block_on(reader.replay_dead_letter(&id))?;
            lendkit::block_on(lib.settle())?;
            writeln!(out, "replayed {id}")?;
        }
        _ => {}
    }
    Ok(())
}

fn print_events(out: &mut dyn Write, title: &str, events: &[Envelope]) -> io::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title}:")?;
    for e in events {
        writeln!(
            out,
            "  {:>6}  {:<22} {:<24} {:<16} {}",
            e.position,
            e.type_name(),
            e.stream.to_string(),
            e.actor.to_string(),
            e.event.payload()
        )?;
    }
    Ok(())
}

fn print_books(out: &mut dyn Write, rows: &[BookRow]) -> io::Result<()> {
    writeln!(
        out,
        "  {:<10} {:<28} {:>6} {:>9} {:>8} {:>7}  {:<9} last activity",
        "book", "title", "copies", "available", "reserved", "on loan", "status"
    )?;
    for r in rows {
        writeln!(
            out,
            "  {:<10} {:<28} {:>6} {:>9} {:>8} {:>7}  {:<9} {}",
            r.book_id,
            r.title,
            r.copies,
            r.available,
            r.reserved,
            r.on_loan,
            r.status.as_str(),
            r.last_activity
        )?;
    }
    Ok(())
}

fn print_page(out: &mut dyn Write, p: &MemberPage) -> io::Result<()> {
    writeln!(
        out,
        "  member {} ({}): {} points",
        p.member_id, p.name, p.points
    )?;
    for r in &p.rentals {
        writeln!(
            out,
            "    {:<6} {:<10} {:<10} payment {:<9} delivery {:<9} due {}",
            r.rental_id,
            r.book_id,
            r.status,
            r.payment_status,
            r.delivery_status,
            r.due_date.as_deref().unwrap_or("-")
        )?;
        if let Some(p) = r.position {
            writeln!(out, "           number {p} in line")?;
        }
        if let Some(until) = &r.pickup_until {
            writeln!(out, "           on the pickup shelf until {until}")?;
        }
    }
    Ok(())
}

async fn step(
    out: &mut dyn Write,
    lib: &Library,
    title: &str,
    commands: Vec<(Command, Actor)>,
) -> Outcome {
    writeln!(out, "\n== {title}")?;
    for (command, actor) in commands {
        let name = command.name();
        match lib.execute(command, &actor).await {
            Ok(done) => writeln!(out, "  {actor} {name}: {}", done.types().join(", "))?,
            Err(e) => writeln!(out, "  {actor} {name}: refused, {} ({e})", e.code())?,
        }
    }
    lib.settle().await?;
    print_books(out, &lib.book_list())?;
    for m in ["m-1", "m-2"] {
        if let Ok(p) = lib.member_page(m) {
            print_page(out, &p)?;
        }
    }
    Ok(())
}

async fn demo(keep: Option<&Path>, out: &mut dyn Write) -> Outcome {
    let dir = match keep {
        Some(path) => {
            if path.exists() {
                return Err(lendkit::Error::InvalidInput(format!(
                    "{} exists; `demo --keep` plays the story on a new library: give another --db",
                    path.display()
                ))
                .into());
            }
            path.to_path_buf()
        }
        None => std::env::temp_dir().join(format!("lendkit-demo-{}", std::process::id())),
    };
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    writeln!(out, "a fresh library at {}", dir.display())?;
    let lib = OpenLibrary::open_async(
        &dir,
        Config {
            background: false,
            ..Config::default()
        },
    )
    .await?;
    let result = demo_story(out, &lib).await;
    lib.close()?;
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        writeln!(
            out,
            "kept: try `lendkit --db {} rules explain --group student --item-type book --branch main`",
            dir.display()
        )?;
    }
    result
}

async fn demo_story(out: &mut dyn Write, lib: &Library) -> Outcome {
    let librarian = Actor::librarian("lib-1");
    let (kim, lee) = (Actor::member("m-1"), Actor::member("m-2"));
    let reserve = |rental: &str, member: &str, address: Option<&str>| Command::ReserveBook {
        wait: None,
        book_id: "isbn-ddd".into(),
        member_id: member.into(),
        rental_id: Some(rental.into()),
        delivery_address: address.map(str::to_owned),
    };
    step(
        out,
        lib,
        "a librarian stores the circulation rules: adults borrow for 21 days, students for 14, at the main branch's opening hours",
        vec![(
            Command::ChangeCirculationRules {
                rules: DEMO_RULES.into(),
                format: None,
            },
            librarian.clone(),
        )],
    )
    .await?;
    step(
        out,
        lib,
        "a librarian registers books and members (each member starts with 100 points)",
        vec![
            (
                Command::RegisterBook {
                    book_id: "isbn-ddd".into(),
                    title: "Domain-Driven Design".into(),
                    author: Some("Eric Evans".into()),
                    copies: 2,
                    fee: 30,
                    item_type: Some("book".into()),
                    branch: Some("main".into()),
                },
                librarian.clone(),
            ),
            (
                Command::RegisterBook {
                    book_id: "isbn-ddia".into(),
                    title: "Designing Data-Intensive Apps".into(),
                    author: None,
                    copies: 1,
                    fee: 40,
                    item_type: Some("book".into()),
                    branch: Some("main".into()),
                },
                librarian.clone(),
            ),
            (
                Command::JoinMember {
                    member_id: "m-1".into(),
                    name: "Kim".into(),
                    contact: Some("010-1234".into()),
                    group: Some("adult".into()),
                },
                librarian.clone(),
            ),
            (
                Command::JoinMember {
                    member_id: "m-2".into(),
                    name: "Lee".into(),
                    contact: None,
                    group: Some("student".into()),
                },
                librarian.clone(),
            ),
        ],
    )
    .await?;
    step(
        out,
        lib,
        "Kim reserves: 30 points are charged, a copy is allocated, the rental confirmed",
        vec![(reserve("r-1", "m-1", None), kim.clone())],
    )
    .await?;
    step(
        out,
        lib,
        "Kim picks the book up",
        vec![(
            Command::StartLoan {
                rental_id: "r-1".into(),
                branch: None,
                override_reason: None,
            },
            kim.clone(),
        )],
    )
    .await?;
    step(
        out,
        lib,
        "Lee reserves the last copy for delivery; Lee tries to cancel Kim's rental",
        vec![
            (
                reserve("r-2", "m-2", Some("12 Sejong-daero, Seoul")),
                lee.clone(),
            ),
            (
                Command::CancelRental {
                    rental_id: "r-1".into(),
                    reason: None,
                },
                lee.clone(),
            ),
        ],
    )
    .await?;
    step(
        out,
        lib,
        "Lee cancels: the delivery is called back, the copy released, 30 points refunded",
        vec![(
            Command::CancelRental {
                rental_id: "r-2".into(),
                reason: None,
            },
            lee.clone(),
        )],
    )
    .await?;
    step(
        out,
        lib,
        "Kim returns the book",
        vec![(
            Command::ReturnBook {
                rental_id: "r-1".into(),
                returned_at: None,
            },
            kim,
        )],
    )
    .await?;
    Ok(())
}

/// The domain model as a Mermaid flowchart: commands (blue) cause events (orange) on
/// aggregates; policies (purple) turn events into commands. Generated from [`POLICIES`].
fn model() -> String {
    let mut out = String::from("flowchart LR\n");
    let commands = [
        ("RegisterBook", "Book", "BookRegistered"),
        ("AddCopies", "Book", "CopiesAdded"),
        ("AllocateCopy", "Book", "CopyAllocated"),
        ("AllocateCopy", "Book", "CopyAllocationFailed"),
        ("AllocateCopy", "Book", "HoldQueued"),
        ("ReleaseCopy", "Book", "CopyReleased"),
        ("ReleaseCopy", "Book", "HoldLeftQueue"),
        ("ReorderQueue", "Book", "QueueReordered"),
        ("CollectHold", "Book", "HoldCollected"),
        ("WithdrawCopy", "Book", "CopyWithdrawn"),
        ("MarkCopyLost", "Book", "CopyLost"),
        ("JoinMember", "Member", "MemberJoined"),
        ("JoinMember", "PointAccount", "AccountOpened"),
        ("StartLoan", "Member", "LoanRecorded"),
        ("StartLoan", "Member", "BlockOverridden"),
        ("ReturnBook", "Member", "LoanCleared"),
        ("ReturnBook", "Member", "FeeCharged"),
        ("ReturnBook", "Member", "FeeRefunded"),
        ("ReturnBook", "PointAccount", "FeePointsReturned"),
        ("PayFees", "Member", "FeePaid"),
        ("PayFees", "PointAccount", "PointsSpentOnFees"),
        ("WaiveFee", "Member", "FeeWaived"),
        ("BlockMember", "Member", "MemberBlocked"),
        ("UnblockMember", "Member", "MemberUnblocked"),
        ("TopUp", "PointAccount", "PointsToppedUp"),
        ("ReserveBook", "PointAccount", "PointsCharged"),
        ("ReserveBook", "Rental", "RentalReserved"),
        ("PlaceHold", "Rental", "RentalReserved"),
        ("ConfirmRental", "Rental", "RentalConfirmed"),
        ("ConfirmRental", "Rental", "HoldAwaitingPickup"),
        ("StartLoan", "Rental", "LoanStarted"),
        ("CollectHold", "Rental", "LoanStarted"),
        ("RenewLoan", "Rental", "LoanRenewed"),
        ("ReturnBook", "Rental", "BookReturned"),
        ("CancelRental", "Rental", "RentalCanceled"),
        ("CancelHold", "Rental", "RentalCanceled"),
        ("MarkOverdue", "Rental", "LoanOverdue"),
        ("RecordAutoRenewalFailed", "Rental", "AutoRenewalFailed"),
        ("AgeToLost", "Rental", "ItemAgedToLost"),
        ("RecallLoan", "Rental", "LoanRecalled"),
        ("ExpirePickup", "Rental", "HoldPickupExpired"),
        ("RefundPayment", "PointAccount", "PointsRefunded"),
        ("RefundPayment", "Rental", "PaymentRefunded"),
        ("StartDelivery", "Delivery", "DeliveryStarted"),
        ("MarkDelivered", "Delivery", "Delivered"),
        ("CancelDelivery", "Delivery", "DeliveryCanceled"),
        (
            "ChangeCirculationRules",
            "CirculationRules",
            "CirculationRulesChanged",
        ),
    ];
    for (command, aggregate, event) in commands {
        out.push_str(&format!("  cmd_{command}[{command}]:::command --> agg_{aggregate}{{{{{aggregate}}}}}:::aggregate --> evt_{event}({event}):::event\n"));
    }
    for p in POLICIES {
        for rule in p.rules {
            if rule.then == "SendNotice" {
                continue;
            }
            out.push_str(&format!(
                "  evt_{}({}):::event --> pol_{}[/{} policy/]:::policy --> cmd_{}[{}]:::command\n",
                rule.when, rule.when, p.name, p.name, rule.then, rule.then
            ));
        }
    }
    let notices: Vec<_> = POLICIES
        .iter()
        .flat_map(|p| p.rules)
        .filter(|r| r.then == "SendNotice")
        .map(|r| r.when)
        .collect();
    for when in notices {
        out.push_str(&format!(
            "  evt_{when}({when}):::event -.-> notice[/notices: Notifier.send/]:::policy\n"
        ));
    }
    out.push_str("  classDef command fill:#a7c7ff\n  classDef event fill:#ffb56b\n  classDef aggregate fill:#fff59d\n  classDef policy fill:#d7b4f3\n");
    out
}

/// An instant given on the command line: RFC 3339 (`2026-03-16T17:30:00Z`) or milliseconds
/// since 1970.
fn instant(text: &str) -> Result<u64, lendkit::Error> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    lendkit::Timestamp::parse_rfc3339(text)
        .ok()
        .and_then(|t| u64::try_from(t.0).ok())
        .ok_or_else(|| {
            lendkit::Error::InvalidInput(format!(
                "returned_at is {text:?}; give an RFC 3339 instant such as 2026-03-16T17:30:00Z, or milliseconds since 1970"
            ))
        })
}

/// The demo library's circulation rules.
const DEMO_RULES: &str = r#"
groups = ["adult", "student"]

[calendars.main]
zone = "Asia/Seoul"
hours = { mon = "09:00-18:00", tue = "09:00-18:00", wed = "09:00-18:00", thu = "09:00-18:00", fri = "09:00-18:00", sat = "10:00-14:00" }

[policies.loan.adult]
period = "21 days"
max_renewals = 2
closed_day = "next_open"
[policies.loan.student]
period = "14 days"
max_renewals = 1
closed_day = "next_open"
[policies.fine.daily]
points = 1
per = "day"
grace = "1 day"
max_per_loan = 20
[policies.limits.standard]
max_loans = 5
max_fees_owed = 30
[policies.lost.standard]
aged_to_lost_after_days = 60
replacement_cost = 40
processing_fee = 5
refund_window_days = 90

[[rules]]
loan = "adult"
fine = "daily"
limits = "standard"
lost = "standard"

[[rules]]
group = "student"
loan = "student"
fine = "daily"
limits = "standard"
lost = "standard"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_shows_every_event_type_and_every_command() {
        let model = model();
        for (_, event) in lendkit::event::Event::types() {
            assert!(
                model.contains(&format!("evt_{event}({event})")),
                "lendkit model does not show {event}"
            );
        }
        for spec in Command::SPECS {
            let name: String = spec
                .name
                .split('_')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .collect();
            assert!(
                model.contains(&format!("cmd_{name}[")),
                "lendkit model does not show {name}"
            );
        }
    }

    #[test]
    fn every_command_has_a_subcommand_of_its_own_name() {
        let cli = <Cli as clap::CommandFactory>::command();
        for spec in Command::SPECS {
            let name = spec.name.replace('_', "-");
            assert!(
                cli.find_subcommand(&name).is_some(),
                "the core's command {} has no `lendkit {name}` subcommand",
                spec.name
            );
        }
    }

    /// Every argument and option of `lendkit` and of each subcommand, with the path to it.
    fn arguments(command: &clap::Command, path: &str, found: &mut Vec<(String, clap::Arg)>) {
        for arg in command.get_arguments() {
            found.push((path.to_owned(), arg.clone()));
        }
        for sub in command.get_subcommands() {
            arguments(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }

    #[test]
    fn every_flag_and_positional_argument_has_a_help_line() {
        let mut command = Cli::command();
        command.build();
        let mut found = Vec::new();
        arguments(&command, "lendkit", &mut found);
        assert!(
            found.len() > 40,
            "the walk finds the arguments: {}",
            found.len()
        );
        let missing: Vec<String> = found
            .iter()
            .filter(|(_, arg)| {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                help.trim().is_empty()
            })
            .map(|(path, arg)| format!("{path} {}", arg.get_id()))
            .collect();
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
        let mut silent = Vec::new();
        without_about(&command, "lendkit", &mut silent);
        assert!(
            silent.is_empty(),
            "subcommands without a help line: {silent:?}"
        );
    }

    /// The subcommands, at any depth (`lendkit rules check`), that do not say what they do.
    fn without_about(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            if sub
                .get_about()
                .is_none_or(|about| about.to_string().trim().is_empty())
            {
                found.push(path.clone());
            }
            without_about(sub, &path, found);
        }
    }

    #[test]
    fn hints_name_only_subcommands_that_exist() {
        let command = Cli::command();
        for &code in ErrorCode::ALL {
            let hint = hint(code, None, "add-copies");
            for quoted in hint.split('`').skip(1).step_by(2) {
                let mut words = quoted.split_whitespace();
                assert_eq!(words.next(), Some("lendkit"), "{code}: `{quoted}`");
                let sub = words.next().unwrap_or_default();
                assert!(
                    sub.starts_with("--") || command.find_subcommand(sub).is_some(),
                    "{code}: `{quoted}` names no subcommand"
                );
            }
            let api_names = hint
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| w.contains('_') && w.chars().any(char::is_lowercase))
                .collect::<Vec<_>>();
            assert!(api_names.is_empty(), "{code}: {hint}: {api_names:?}");
        }
    }

    #[test]
    fn a_message_does_not_repeat_its_code() {
        let e = lendkit::Error::InvalidInput("copies must be at least 1".into());
        assert_eq!(message(&e), "copies must be at least 1");
        let e = lendkit::Error::NotFound {
            code: ErrorCode::BookNotFound,
            what: "book",
            id: "b-1".into(),
        };
        assert_eq!(message(&e), "book b-1 not found");
    }
}
