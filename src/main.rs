//! The `lendkit` command: every library command and query from a terminal, on `./library.db`
//! (or `--db PATH`), printing readable tables or `--json`; `lendkit demo` plays the seed
//! stories on a fresh temporary database; `lendkit model` prints the domain model as a Mermaid
//! event-storming flowchart generated from the policy table.

mod bench;

/// mimalloc instead of the system allocator: lendkit allocates many small strings, and glibc's
/// malloc spent about 40% of the saga benchmark's time (see docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use lendkit::event::Envelope;
use lendkit::policies::POLICIES;
use lendkit::views::{BookRow, MemberPage};
use lendkit::{Actor, Command, Config, ErrorCode, ErrorFamily, Library, OpenLibrary};
use std::path::PathBuf;
use std::process::ExitCode;

/// The rules of a lending library, from the command line.
#[derive(Parser)]
#[command(name = "lendkit", version, about)]
struct Cli {
    /// The library database (created if missing).
    #[arg(long, global = true, default_value = "library.db")]
    db: PathBuf,
    /// Who acts: `librarian:ID` or `member:ID`.
    #[arg(
        long = "as",
        global = true,
        default_value = "librarian:admin",
        value_name = "ACTOR"
    )]
    actor: String,
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
        book_id: String,
        title: String,
        #[arg(long, default_value_t = 1)]
        copies: u32,
        #[arg(long)]
        fee: u64,
        #[arg(long)]
        author: Option<String>,
    },
    /// Stock more copies of a book (librarian).
    AddCopies { book_id: String, copies: u32 },
    /// Register a member; their point account opens with the welcome points.
    Join {
        member_id: String,
        name: String,
        #[arg(long)]
        contact: Option<String>,
    },
    /// Add points to a member's account (librarian).
    TopUp { member_id: String, points: u64 },
    /// Reserve a book, paying its fee in points.
    Reserve {
        book_id: String,
        member_id: String,
        #[arg(long)]
        rental_id: Option<String>,
        /// Deliver to this address instead of picking up.
        #[arg(long)]
        deliver_to: Option<String>,
    },
    /// Pick up a confirmed rental.
    Loan { rental_id: String },
    /// Return a loaned book.
    Return { rental_id: String },
    /// Cancel a reservation (refund, copy release and delivery cancellation follow).
    Cancel {
        rental_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Renew a loan.
    Renew { rental_id: String },
    /// Record that a delivery arrived (librarian).
    Deliver { rental_id: String },
    /// The book list.
    Books,
    /// A member's page.
    Member { member_id: String },
    /// Stored events.
    Events {
        #[arg(long, default_value_t = 1)]
        from: u64,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Events the consumers gave up on.
    DeadLetters,
    /// Hand a dead letter's event to its consumer again.
    Replay { id: String },
    /// Play the library stories on a fresh temporary database.
    Demo,
    /// Print the domain model as a Mermaid flowchart.
    Model,
    /// Measure throughput, latency, replay, queries and memory against same-run baselines (use a release build).
    Bench {
        /// Small sizes, for a smoke run.
        #[arg(long)]
        quick: bool,
        /// Only the in-memory saga throughput (the figure the Python and Node benches compare with).
        #[arg(long)]
        saga_only: bool,
        /// Internal: measure replay, queries and memory on this database in this process.
        #[arg(long, hide = true)]
        replay_part: Option<PathBuf>,
        /// Lifecycles per saga run (default 20,000; 2,000 with --quick).
        #[arg(long)]
        lifecycles: Option<usize>,
        /// Members in the saga runs.
        #[arg(long)]
        members: Option<usize>,
        /// Books in the saga runs.
        #[arg(long)]
        books: Option<usize>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error {}: {e}", e.code());
            eprintln!("hint: {}", hint(e.code()));
            ExitCode::FAILURE
        }
    }
}

/// One line on what to do next, by kind of error.
fn hint(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NotALibrary => {
            "point --db at a lendkit database, or at a path that does not exist yet"
        }
        ErrorCode::SchemaTooNew => "this database was written by a newer lendkit; upgrade lendkit",
        ErrorCode::LibraryLocked => {
            "another lendkit process has this database open; close it first"
        }
        ErrorCode::Corrupt => {
            "the database is damaged; restore its folder from a backup, or move it aside and start a new library"
        }
        ErrorCode::PaymentUnavailable | ErrorCode::Conflict | ErrorCode::Storage => {
            "try again in a moment; nothing was stored"
        }
        ErrorCode::NotRentalOwner => {
            "act as the rental's member (--as member:ID) or as a librarian"
        }
        code => match code.family() {
            ErrorFamily::InvalidInput => "check the arguments (lendkit <command> --help)",
            ErrorFamily::Unauthorized => {
                "act as someone allowed to: --as librarian:ID or --as member:ID"
            }
            ErrorFamily::NotFound => {
                "check the id; `lendkit books` and `lendkit member ID` list what exists"
            }
            ErrorFamily::Conflict => "choose another id",
            ErrorFamily::RuleViolation => "`lendkit member ID` shows where the rental stands",
            ErrorFamily::Payment => {
                "`lendkit member ID` shows the balance; a librarian can `top-up`"
            }
            ErrorFamily::Storage => "check the database path and the disk",
        },
    }
}

fn execute(cli: Cli) -> lendkit::Result<()> {
    let actor = Actor::parse(&cli.actor).map_err(lendkit::Error::InvalidInput)?;
    let command = match cli.command {
        Cmd::Demo => return lendkit::block_on(demo()),
        Cmd::Model => {
            print!("{}", model());
            return Ok(());
        }
        Cmd::Bench {
            quick,
            saga_only,
            replay_part,
            lifecycles,
            members,
            books,
        } => {
            match replay_part {
                Some(db) => println!("{}", bench::replay_part(&db)),
                None => {
                    let mut plan = if quick {
                        bench::Plan::quick()
                    } else {
                        bench::Plan::full()
                    };
                    plan.lifecycles = lifecycles.unwrap_or(plan.lifecycles).max(1);
                    plan.members = members.unwrap_or(plan.members).max(1);
                    plan.books = books.unwrap_or(plan.books).max(1);
                    bench::run(&plan, cli.json, saga_only)
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
        } => Command::RegisterBook {
            book_id,
            title,
            author,
            copies,
            fee,
        },
        Cmd::AddCopies { book_id, copies } => Command::AddCopies { book_id, copies },
        Cmd::Join {
            member_id,
            name,
            contact,
        } => Command::JoinMember {
            member_id,
            name,
            contact,
        },
        Cmd::TopUp { member_id, points } => Command::TopUp { member_id, points },
        Cmd::Reserve {
            book_id,
            member_id,
            rental_id,
            deliver_to,
        } => Command::ReserveBook {
            book_id,
            member_id,
            rental_id,
            delivery_address: deliver_to,
        },
        Cmd::Loan { rental_id } => Command::StartLoan { rental_id },
        Cmd::Return { rental_id } => Command::ReturnBook { rental_id },
        Cmd::Cancel { rental_id, reason } => Command::CancelRental { rental_id, reason },
        Cmd::Renew { rental_id } => Command::RenewLoan { rental_id },
        Cmd::Deliver { rental_id } => Command::MarkDelivered { rental_id },
        query => return run_query(&cli.db, query, cli.json, &actor),
    };
    let lib = OpenLibrary::open(
        &cli.db,
        Config {
            background: false,
            ..Config::default()
        },
    )?;
    let head = lendkit::block_on(lib.head())?;
    let outcome = lendkit::block_on(lib.execute_with_id(
        command,
        &actor,
        cli.command_id.map(lendkit::CommandId),
    ))?;
    // What the command stored (a reservation's charge is stored just before the rental), then
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
    if cli.json {
        let json = serde_json::json!({
            "command_id": outcome.command_id.as_str(),
            "rental_id": outcome.rental_id.as_ref().map(|r| r.as_str()),
            "events": stored.iter().map(Envelope::to_json).collect::<Vec<_>>(),
            "followed_by": followed.iter().map(Envelope::to_json).collect::<Vec<_>>(),
        });
        println!("{json:#}");
    } else {
        if let Some(r) = &outcome.rental_id {
            println!("rental {r}");
        }
        if replayed {
            println!(
                "command {} was already applied; its events:",
                outcome.command_id
            );
        }
        print_events("stored", &stored);
        print_events("then", &followed);
    }
    lib.close()
}

/// Runs a query as `actor`: reads are authorized like commands (a member sees only their own
/// page; the log and the dead letters are for librarians).
fn run_query(db: &std::path::Path, query: Cmd, json: bool, actor: &Actor) -> lendkit::Result<()> {
    let lib = OpenLibrary::open(
        db,
        Config {
            background: false,
            ..Config::default()
        },
    )?;
    lendkit::block_on(lib.settle())?;
    let reader = lib.reader(actor);
    match query {
        Cmd::Books => {
            let rows = reader.book_list()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                );
            } else {
                print_books(&rows);
            }
        }
        Cmd::Member { member_id } => {
            let page = reader.member_page(&member_id)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&page).unwrap_or_default()
                );
            } else {
                print_page(&page);
            }
        }
        Cmd::Events { from, limit } => {
            let events = lendkit::block_on(reader.events(from, limit))?;
            if json {
                println!(
                    "{:#}",
                    serde_json::Value::Array(events.iter().map(Envelope::to_json).collect())
                );
            } else {
                print_events("events", &events);
            }
        }
        Cmd::DeadLetters => {
            let letters = lendkit::block_on(reader.dead_letters())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&letters).unwrap_or_default()
                );
            } else if letters.is_empty() {
                println!("no dead letters");
            } else {
                for l in letters {
                    println!(
                        "  {:<24} {:<20} after {} attempts: {}",
                        l.id, l.event_type, l.attempts, l.error
                    );
                }
            }
        }
        Cmd::Replay { id } => {
            lendkit::block_on(reader.replay_dead_letter(&id))?;
            lendkit::block_on(lib.settle())?;
            println!("replayed {id}");
        }
        _ => {}
    }
    lib.close()
}

fn print_events(title: &str, events: &[Envelope]) {
    if events.is_empty() {
        return;
    }
    println!("{title}:");
    for e in events {
        println!(
            "  {:>6}  {:<22} {:<24} {:<16} {}",
            e.position,
            e.type_name(),
            e.stream.to_string(),
            e.actor.to_string(),
            e.event.payload()
        );
    }
}

fn print_books(rows: &[BookRow]) {
    println!(
        "  {:<10} {:<28} {:>6} {:>9} {:>8} {:>7}  {:<9} last activity",
        "book", "title", "copies", "available", "reserved", "on loan", "status"
    );
    for r in rows {
        println!(
            "  {:<10} {:<28} {:>6} {:>9} {:>8} {:>7}  {:<9} {}",
            r.book_id,
            r.title,
            r.copies,
            r.available,
            r.reserved,
            r.on_loan,
            r.status.as_str(),
            r.last_activity
        );
    }
}

fn print_page(p: &MemberPage) {
    println!("  member {} ({}): {} points", p.member_id, p.name, p.points);
    for r in &p.rentals {
        println!(
            "    {:<6} {:<10} {:<10} payment {:<9} delivery {:<9} due {}",
            r.rental_id,
            r.book_id,
            r.status,
            r.payment_status,
            r.delivery_status,
            r.due_date.as_deref().unwrap_or("-")
        );
    }
}

async fn step(lib: &Library, title: &str, commands: Vec<(Command, Actor)>) -> lendkit::Result<()> {
    println!("\n== {title}");
    for (command, actor) in commands {
        let name = command.name();
        match lib.execute(command, &actor).await {
            Ok(out) => println!("  {actor} {name}: {}", out.types().join(", ")),
            Err(e) => println!("  {actor} {name}: refused, {} ({e})", e.code()),
        }
    }
    lib.settle().await?;
    print_books(&lib.book_list());
    for m in ["m-1", "m-2"] {
        if let Ok(p) = lib.member_page(m) {
            print_page(&p);
        }
    }
    Ok(())
}

async fn demo() -> lendkit::Result<()> {
    let dir = std::env::temp_dir().join(format!("lendkit-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    println!("a fresh library at {}", dir.display());
    let lib = OpenLibrary::open_async(
        &dir,
        Config {
            background: false,
            ..Config::default()
        },
    )
    .await?;
    let result = demo_story(&lib).await;
    lib.close()?;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo_story(lib: &Library) -> lendkit::Result<()> {
    let librarian = Actor::librarian("lib-1");
    let (kim, lee) = (Actor::member("m-1"), Actor::member("m-2"));
    let reserve = |rental: &str, member: &str, address: Option<&str>| Command::ReserveBook {
        book_id: "isbn-ddd".into(),
        member_id: member.into(),
        rental_id: Some(rental.into()),
        delivery_address: address.map(str::to_owned),
    };
    step(
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
                },
                librarian.clone(),
            ),
            (
                Command::JoinMember {
                    member_id: "m-1".into(),
                    name: "Kim".into(),
                    contact: Some("010-1234".into()),
                },
                librarian.clone(),
            ),
            (
                Command::JoinMember {
                    member_id: "m-2".into(),
                    name: "Lee".into(),
                    contact: None,
                },
                librarian.clone(),
            ),
        ],
    )
    .await?;
    step(
        lib,
        "Kim reserves: 30 points are charged, a copy is allocated, the rental confirmed",
        vec![(reserve("r-1", "m-1", None), kim.clone())],
    )
    .await?;
    step(
        lib,
        "Kim picks the book up",
        vec![(
            Command::StartLoan {
                rental_id: "r-1".into(),
            },
            kim.clone(),
        )],
    )
    .await?;
    step(
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
        lib,
        "Kim returns the book",
        vec![(
            Command::ReturnBook {
                rental_id: "r-1".into(),
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
        ("ReleaseCopy", "Book", "CopyReleased"),
        ("JoinMember", "Member", "MemberJoined"),
        ("JoinMember", "PointAccount", "AccountOpened"),
        ("TopUp", "PointAccount", "PointsToppedUp"),
        ("ReserveBook", "PointAccount", "PointsCharged"),
        ("ReserveBook", "Rental", "RentalReserved"),
        ("ConfirmRental", "Rental", "RentalConfirmed"),
        ("StartLoan", "Rental", "LoanStarted"),
        ("RenewLoan", "Rental", "LoanRenewed"),
        ("ReturnBook", "Rental", "BookReturned"),
        ("CancelRental", "Rental", "RentalCanceled"),
        ("RefundPayment", "PointAccount", "PointsRefunded"),
        ("RefundPayment", "Rental", "PaymentRefunded"),
        ("StartDelivery", "Delivery", "DeliveryStarted"),
        ("MarkDelivered", "Delivery", "Delivered"),
        ("CancelDelivery", "Delivery", "DeliveryCanceled"),
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
