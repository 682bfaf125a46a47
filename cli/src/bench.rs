//! `lendkit bench`: how fast lendkit is, next to the baselines that bound it, in one run.
//!
//! Every figure is measured here and now; ratios compare lendkit with a baseline measured in
//! the same process on the same machine. Nothing is asserted: the numbers are printed.

use lendkit::event::Envelope;
use lendkit::{block_on, Actor, Command, Config, Durability, OpenLibrary, Rules};
use serde_json::{json, Value};
use sled::transaction::Transactional;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// What to run, and how big.
pub struct Plan {
    /// Lifecycles per saga run.
    pub lifecycles: usize,
    /// Members and books in the saga runs.
    pub members: usize,
    /// Books in the saga runs.
    pub books: usize,
    /// Events in the replay log.
    pub replay_events: usize,
    /// Reservations per latency run.
    pub latency_calls: usize,
    /// Open loans in the clock-driven rules figure (1,000 of them come due).
    pub open_loans: usize,
    /// Holds waiting for one title in the hold-queue figure.
    pub queue_holds: usize,
}

impl Plan {
    /// The sizes the issue asks for (a 1,000,000-event replay).
    pub fn full() -> Self {
        Plan {
            lifecycles: 20_000,
            members: 200,
            books: 100,
            replay_events: 1_000_000,
            latency_calls: 2_000,
            open_loans: 100_000,
            queue_holds: 10_000,
        }
    }
    /// A smoke run in seconds.
    pub fn quick() -> Self {
        Plan {
            lifecycles: 2_000,
            members: 50,
            books: 20,
            replay_events: 50_000,
            latency_calls: 300,
            open_loans: 10_000,
            queue_holds: 10_000,
        }
    }
}

fn librarian() -> Actor {
    Actor::librarian("bench")
}

pub(crate) fn must<T>(r: lendkit::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench failed: {} {e}", e.code());
            std::process::exit(1)
        }
    }
}

/// Registers books and members with enough copies and points for `lifecycles` rentals.
pub(crate) fn setup(lib: &OpenLibrary, plan_members: usize, plan_books: usize, lifecycles: usize) {
    let copies = u32::try_from(lifecycles / plan_books + 2).unwrap_or(u32::MAX);
    for b in 0..plan_books {
        must(block_on(lib.execute(
            Command::RegisterBook {
                book_id: format!("b-{b}"),
                title: format!("Book {b}"),
                author: None,
                copies,
                fee: 1,
                item_type: None,
                branch: None,
            },
            &librarian(),
        )));
    }
    for m in 0..plan_members {
        must(block_on(lib.execute(
            Command::JoinMember {
                member_id: format!("m-{m}"),
                name: format!("Member {m}"),
                contact: None,
                group: None,
            },
            &librarian(),
        )));
        must(block_on(lib.execute(
            Command::TopUp {
                member_id: format!("m-{m}"),
                points: (lifecycles / plan_members + 2) as u64,
            },
            &librarian(),
        )));
    }
    must(block_on(lib.settle()));
}

/// The saga workload: reserve → (allocate, confirm) → loan → return → (release), in batches,
/// every policy and both views kept current, `settle` at the end of each batch.
/// Returns (lifecycles/s, events/s, events, elapsed).
pub fn saga(
    lib: &OpenLibrary,
    members: usize,
    books: usize,
    lifecycles: usize,
    tag: &str,
) -> (f64, f64, u64, Duration) {
    saga_in_batches(lib, members, books, lifecycles, tag, 500)
}

/// The SQLite CRUD peer (`crud.rs`) next to lendkit in memory, same members, books and
/// lifecycles, same run: batches of 500 (lendkit's figure `batched`, measured above) and each
/// lifecycle finished before the next; the peer in memory and on a file at FULL and NORMAL.
#[cfg(feature = "sqlite")]
fn crud_rows(
    plan: &Plan,
    batched: f64,
    tmp: &Path,
    report: &mut serde_json::Map<String, Value>,
    say: &mut dyn FnMut(String) -> io::Result<()>,
) -> io::Result<()> {
    use crate::crud::{lifecycles_per_s, Sync};
    let one_by_one = |immediate_reactions: bool| {
        let lib = must(OpenLibrary::in_memory(Config {
            background: false,
            immediate_reactions,
            ..Config::default()
        }));
        let n = plan.lifecycles / 4;
        saga_in_batches(&lib, plan.members, plan.books, n, "one", 1).0
    };
    let (one_by_one, one_by_one_immediate) = (one_by_one(false), one_by_one(true));
    for (shape, batch, lendkit) in [
        ("batches of 500", 500, batched),
        ("each finished first", 1, one_by_one),
    ] {
        let mut row = serde_json::Map::new();
        row.insert("lendkit_in_memory_lifecycles_per_s".into(), json!(lendkit));
        if batch == 1 {
            row.insert(
                "lendkit_in_memory_immediate_lifecycles_per_s".into(),
                json!(one_by_one_immediate),
            );
        }
        for sync in [Sync::Memory, Sync::Full, Sync::Normal] {
            let n = if sync == Sync::Full {
                plan.lifecycles / 10
            } else {
                plan.lifecycles
            };
            let crud = match lifecycles_per_s(tmp, sync, plan.members, plan.books, n, batch, 1) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("the SQLite CRUD peer failed: {e}");
                    continue;
                }
            };
            let key = match sync {
                Sync::Memory => "memory",
                Sync::Full => "full",
                Sync::Normal => "normal",
            };
            if sync == Sync::Memory {
                // Like for like: both in memory.
                row.insert(
                    format!("sqlite_crud_{key}"),
                    json!({"lifecycles_per_s": crud, "lendkit_in_memory_ratio": lendkit / crud}),
                );
                say(format!(
                    "SQLite CRUD peer, {shape}, {:<24} {crud:>10.0} lifecycles/s   lendkit in memory {lendkit:>10.0}   lendkit ÷ SQLite {:.2}",
                    sync.name(),
                    lendkit / crud
                ))?;
                if batch == 1 {
                    say(format!(
                        "  … with immediate reactions: lendkit in memory {one_by_one_immediate:>10.0}   lendkit ÷ SQLite {:.2}",
                        one_by_one_immediate / crud
                    ))?;
                }
            } else {
                row.insert(
                    format!("sqlite_crud_{key}"),
                    json!({"lifecycles_per_s": crud}),
                );
                say(format!(
                    "SQLite CRUD peer, {shape}, {:<24} {crud:>10.0} lifecycles/s",
                    sync.name()
                ))?;
            }
        }
        report.insert(
            format!(
                "sqlite_crud_{}",
                if batch == 1 {
                    "each_finished"
                } else {
                    "batches_of_500"
                }
            ),
            Value::Object(row),
        );
    }
    Ok(())
}

/// The durable stores' table: for each durability setting, shape and number of callers, the
/// SQLite CRUD peer on a file with the matching sync setting, then lendkit on the SQLite store
/// and on sled, with lendkit ÷ CRUD.
#[cfg(feature = "sqlite")]
fn store_table(
    plan: &Plan,
    tmp: &Path,
    report: &mut serde_json::Map<String, Value>,
    say: &mut dyn FnMut(String) -> io::Result<()>,
) -> io::Result<()> {
    use crate::crud::{lifecycles_per_s, Sync};
    use lendkit::Store;
    let mut cell = 0;
    for (setting, durability, sync, share) in [
        ("every_commit", Durability::EveryCommit, Sync::Full, 20),
        ("periodic_100ms", Durability::Periodic(100), Sync::Normal, 2),
    ] {
        for (shape, key, batch) in [
            ("each finished first", "each_finished", 1),
            ("batches of 500", "batches_of_500", 500),
        ] {
            for callers in [1, 16] {
                // `LENDKIT_BENCH_CELL=every_commit/batches_of_500/1/sqlite` (or `…/sled`,
                // `…/sqlite_immediate`, `…/sled_immediate`, `…/crud`) runs one cell alone, to profile it or count its syncs; without the
                // last part, the whole row.
                let only = std::env::var("LENDKIT_BENCH_CELL").ok();
                let wanted = |store: &str| {
                    only.as_deref().is_none_or(|o| {
                        o == format!("{setting}/{key}/{callers}/{store}")
                            || o == format!("{setting}/{key}/{callers}")
                    })
                };
                if [
                    "sqlite",
                    "sqlite_immediate",
                    "sled",
                    "sled_immediate",
                    "crud",
                ]
                .iter()
                .all(|store| !wanted(store))
                {
                    continue;
                }
                let n = (plan.lifecycles / share).max(callers * 4);
                let crud = if !wanted("crud") {
                    f64::NAN
                } else {
                    lifecycles_per_s(
                        &tmp.join("crud-table"),
                        sync,
                        plan.members,
                        plan.books,
                        n,
                        batch,
                        callers,
                    )
                    .unwrap_or_else(|e| {
                        eprintln!("the SQLite CRUD peer failed: {e}");
                        f64::NAN
                    })
                };
                let mut row = serde_json::Map::new();
                row.insert("lifecycles".into(), json!(n));
                row.insert(
                    format!(
                        "sqlite_crud_{}_lifecycles_per_s",
                        sync.name()
                            .rsplit('=')
                            .next()
                            .unwrap_or("file")
                            .to_lowercase()
                    ),
                    json!(crud),
                );
                let mut line = format!(
                    "{setting:<15}{shape:<20}{callers:>3} caller(s): SQLite CRUD {:<7}{crud:>8.0}/s",
                    sync.name().rsplit('=').next().unwrap_or(""),
                );
                // Each store as a library opens by default (reactions at settle), and with
                // immediate reactions (a command and its saga under one sync).
                for (name, store, immediate) in [
                    ("sqlite", Store::Sqlite, false),
                    ("sqlite_immediate", Store::Sqlite, true),
                    ("sled", Store::Sled, false),
                    ("sled_immediate", Store::Sled, true),
                ] {
                    cell += 1;
                    if !wanted(name) {
                        continue;
                    }
                    let path = match store {
                        Store::Sqlite => tmp.join(format!("table-{cell}.sqlite")),
                        _ => tmp.join(format!("table-{cell}")),
                    };
                    let lib = must(OpenLibrary::open(
                        &path,
                        Config {
                            background: false,
                            durability,
                            store,
                            immediate_reactions: immediate,
                            ..Config::default()
                        },
                    ));
                    let (lps, ..) =
                        saga_by_callers(&lib, plan.members, plan.books, n, "t", batch, callers);
                    must(lib.close());
                    row.insert(
                        format!("lendkit_{name}"),
                        json!({"lifecycles_per_s": lps, "ratio": lps / crud}),
                    );
                    let shown = match name {
                        "sqlite" => "SQLite store",
                        "sqlite_immediate" => "+immediate",
                        "sled" => "sled",
                        _ => "+immediate",
                    };
                    line.push_str(&format!("   {shown} {lps:>8.0}/s ({:.2}×)", lps / crud));
                }
                report.insert(
                    format!("stores_{setting}_{key}_{callers}_callers"),
                    Value::Object(row),
                );
                say(line)?;
            }
        }
    }
    Ok(())
}

/// [`saga`] in batches of `batch` lifecycles: `batch` = 1 finishes each lifecycle (settled
/// after its reservation and after its return) before the next.
pub fn saga_in_batches(
    lib: &OpenLibrary,
    members: usize,
    books: usize,
    lifecycles: usize,
    tag: &str,
    batch: usize,
) -> (f64, f64, u64, Duration) {
    saga_by_callers(lib, members, books, lifecycles, tag, batch, 1)
}

/// [`saga_in_batches`] with `callers` threads at once, each running every `callers`-th
/// lifecycle in its own batches (and settling them itself).
pub fn saga_by_callers(
    lib: &OpenLibrary,
    members: usize,
    books: usize,
    lifecycles: usize,
    tag: &str,
    batch: usize,
    callers: usize,
) -> (f64, f64, u64, Duration) {
    setup(lib, members, books, lifecycles);
    let head = must(block_on(lib.head()));
    let callers = callers.max(1);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..callers {
            scope.spawn(move || {
                let mine: Vec<usize> = (t..lifecycles).step_by(callers).collect();
                for chunk in mine.chunks(batch.max(1)) {
                    lifecycles_once(lib, members, books, chunk, tag);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let events = must(block_on(lib.head())) - head;
    let secs = elapsed.as_secs_f64();
    (
        lifecycles as f64 / secs,
        events as f64 / secs,
        events,
        elapsed,
    )
}

/// The lifecycles numbered `which`, phase by phase: every reservation, a settle, every loan,
/// every return, a settle.
fn lifecycles_once(lib: &OpenLibrary, members: usize, books: usize, which: &[usize], tag: &str) {
    let ids: Vec<(String, String, String)> = which
        .iter()
        .map(|i| {
            (
                format!("{tag}-{i}"),
                format!("m-{}", i % members),
                format!("b-{}", i % books),
            )
        })
        .collect();
    for (rental, member, book) in &ids {
        must(block_on(lib.execute(
            Command::ReserveBook {
                wait: None,
                book_id: book.clone(),
                member_id: member.clone(),
                rental_id: Some(rental.clone()),
                delivery_address: None,
            },
            &Actor::member(member.clone()),
        )));
    }
    must(block_on(lib.settle()));
    for (rental, member, _) in &ids {
        must(block_on(lib.execute(
            Command::StartLoan {
                rental_id: rental.clone(),
                branch: None,
                override_reason: None,
            },
            &Actor::member(member.clone()),
        )));
    }
    for (rental, member, _) in &ids {
        must(block_on(lib.execute(
            Command::ReturnBook {
                rental_id: rental.clone(),
                returned_at: None,
            },
            &Actor::member(member.clone()),
        )));
    }
    must(block_on(lib.settle()));
}

/// The storage limit: the same envelopes written to a fresh sled database as raw bytes, one
/// transaction per original command (and stream), flushing after each when `flush` is set.
fn raw_sled(dir: &Path, events: &[Envelope], flush: bool) -> Duration {
    let db = sled::Config::new()
        .path(dir)
        .flush_every_ms(if flush { None } else { Some(100) })
        .open();
    let db = match db {
        Ok(db) => db,
        Err(e) => {
            eprintln!("bench failed: raw sled: {e}");
            std::process::exit(1)
        }
    };
    let (Ok(log), Ok(index)) = (db.open_tree("log"), db.open_tree("index")) else {
        eprintln!("bench failed: raw sled trees");
        std::process::exit(1)
    };
    // Group consecutive envelopes of one command into one transaction, as lendkit's appends are.
    let mut groups: Vec<Vec<(Vec<u8>, Vec<u8>)>> = Vec::new();
    let mut last_cmd = None;
    for e in events {
        let entry = (e.position.to_be_bytes().to_vec(), e.encode_compact());
        if last_cmd.as_ref() == Some(&e.command_id) {
            if let Some(g) = groups.last_mut() {
                g.push(entry);
                continue;
            }
        }
        last_cmd = Some(e.command_id.clone());
        groups.push(vec![entry]);
    }
    let started = Instant::now();
    for g in &groups {
        let r: Result<(), sled::transaction::TransactionError<()>> =
            (&log, &index).transaction(|(log, index)| {
                for (k, v) in g {
                    log.insert(k.as_slice(), v.as_slice())?;
                    index.insert(k.as_slice(), k.as_slice())?;
                }
                Ok(())
            });
        if r.is_err() {
            eprintln!("bench failed: raw sled transaction");
            std::process::exit(1)
        }
        if flush && db.flush().is_err() {
            eprintln!("bench failed: raw sled flush");
            std::process::exit(1)
        }
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e6
}

/// `reserve_book` latency on sled (payment included), with `callers` concurrent threads.
fn latency(dir: &Path, callers: usize, calls: usize) -> (f64, f64, f64) {
    let lib = std::sync::Arc::new(must(OpenLibrary::open(
        dir,
        Config {
            background: false,
            ..Config::default()
        },
    )));
    setup(&lib, callers.max(8), 10, calls * 8);
    let per = calls / callers;
    let threads: Vec<_> = (0..callers)
        .map(|t| {
            let lib = lib.clone();
            std::thread::spawn(move || {
                let member = format!("m-{t}");
                (0..per)
                    .map(|i| {
                        let started = Instant::now();
                        must(block_on(lib.execute(
                            Command::ReserveBook {
                                wait: None,
                                book_id: format!("b-{}", i % 10),
                                member_id: member.clone(),
                                rental_id: Some(format!("lat-{t}-{i}")),
                                delivery_address: None,
                            },
                            &Actor::member(member.clone()),
                        )));
                        started.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    all.sort();
    (
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
    )
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Builds a log of at least `events` events through the real saga, on a sled database at `db`
/// with periodic flushing; the policies' checkpoints end at the head, as in a library in use.
pub fn build_replay_log(db: &Path, events: usize) -> u64 {
    let lib = must(OpenLibrary::open(
        db,
        Config {
            background: false,
            durability: Durability::Periodic(200),
            rules: Rules {
                welcome_points: 1_000_000,
                ..Rules::default()
            },
            ..Config::default()
        },
    ));
    // Seven events per lifecycle, plus a margin so the log passes `events`.
    saga(&lib, 1_000, 10_000, events / 7 + 2_000, "replay");
    // One member with 1,000 rentals, for the member page query.
    must(block_on(lib.execute(
        Command::JoinMember {
            member_id: "busy".into(),
            name: "Busy Reader".into(),
            contact: None,
            group: None,
        },
        &librarian(),
    )));
    for i in 0..1_000 {
        let cmd = Command::ReserveBook {
            wait: None,
            book_id: format!("b-{}", i % 10_000),
            member_id: "busy".into(),
            rental_id: Some(format!("busy-{i}")),
            delivery_address: None,
        };
        must(block_on(lib.execute(cmd, &Actor::member("busy"))));
    }
    must(block_on(lib.settle()));
    let head = must(block_on(lib.head()));
    must(lib.close());
    head
}

/// The replay, query and memory figures, measured in a fresh process so peak RSS is the library's own.
pub fn replay_part(db: &Path) -> Value {
    let before = rss_kib("VmRSS:");
    let started = Instant::now();
    let lib = must(OpenLibrary::open(
        db,
        Config {
            background: false,
            ..Config::default()
        },
    ));
    let open = started.elapsed();
    let after_open = rss_kib("VmRSS:");
    let open_peak = rss_kib("VmHWM:");
    let head = must(block_on(lib.head()));
    // Queries: the book list (10,000 books) and the page of the member with the most rentals.
    let n = 50;
    let started = Instant::now();
    let mut rows = 0;
    for _ in 0..n {
        rows = lib.book_list().len();
    }
    let book_list_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    // `build_replay_log`'s member with 1,000 rentals. (Not found by scanning `views()`: that
    // clones both views, and the copy would count in the serving peak below.)
    let member = "busy";
    let rentals = lib.member_page(member).map_or(0, |p| p.rentals.len());
    let started = Instant::now();
    for _ in 0..n {
        let _ = lib.member_page(member);
    }
    let member_page_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    // The library open and serving queries: its peak so far. (The rebuild below holds a
    // second copy of both views, which is the rebuild's cost, not the library's.)
    let serving_peak = rss_kib("VmHWM:");
    let serving_rss = rss_kib("VmRSS:");
    let started = Instant::now();
    let rebuilt = must(block_on(lib.rebuild_views()));
    let rebuild = started.elapsed();
    drop(rebuilt);
    json!({
        "events": head,
        "open_s": open.as_secs_f64(),
        "serving_peak_rss_mib": serving_peak as f64 / 1024.0,
        "rebuild_events_per_s": head as f64 / rebuild.as_secs_f64(),
        "book_list_rows": rows,
        "book_list_us": book_list_us,
        "member_page_rentals": rentals,
        "member_page_us": member_page_us,
        "rss_before_open_mib": before as f64 / 1024.0,
        "rss_after_open_mib": after_open as f64 / 1024.0,
        "serving_rss_mib": serving_rss as f64 / 1024.0,
        "open_peak_rss_mib": open_peak as f64 / 1024.0,
        "peak_rss_mib": rss_kib("VmHWM:") as f64 / 1024.0,
    })
}

/// Runs everything and prints a table (or JSON) to `out`; stops at the first failed write (a
/// reader that went away), removing its temporary databases either way.
pub fn run(
    plan: &Plan,
    json_out: bool,
    saga_only: bool,
    stores_only: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let tmp = std::env::temp_dir().join(format!("lendkit-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = run_in(&tmp, plan, json_out, saga_only, stores_only, out);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn run_in(
    tmp: &Path,
    plan: &Plan,
    json_out: bool,
    saga_only: bool,
    stores_only: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut report = serde_json::Map::new();
    let mut lines: Vec<String> = Vec::new();
    let say = |out: &mut dyn Write, lines: &mut Vec<String>, s: String| {
        lines.push(s);
        match lines.last() {
            Some(s) if !json_out => writeln!(out, "{s}"),
            _ => Ok(()),
        }
    };
    say(
        out,
        &mut lines,
        format!(
            "lendkit bench: {} lifecycles, {} members, {} books",
            plan.lifecycles, plan.members, plan.books
        ),
    )?;

    if stores_only {
        #[cfg(feature = "sqlite")]
        store_table(plan, tmp, &mut report, &mut |s| say(out, &mut lines, s))?;
        if json_out {
            writeln!(out, "{}", Value::Object(report))?;
        }
        return Ok(());
    }

    // Saga throughput in memory, and its in-memory baseline; what the library holds per
    // lifecycle (resident memory grown, the log and both views included).
    let resident_before = rss_kib("VmRSS:");
    let lib = must(OpenLibrary::in_memory(Config {
        background: false,
        ..Config::default()
    }));
    let (lps, eps, events, _) = saga(&lib, plan.members, plan.books, plan.lifecycles, "mem");
    let grown = rss_kib("VmRSS:").saturating_sub(resident_before);
    let per_lifecycle = grown as f64 * 1024.0 / plan.lifecycles.max(1) as f64;
    let log = must(block_on(lib.events(1, usize::MAX)));
    drop(lib);
    let started = Instant::now();
    let mut v: Vec<Envelope> = Vec::with_capacity(log.len());
    for e in &log {
        v.push(e.clone());
    }
    let vec_eps = v.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    drop(v);
    report.insert("saga_memory".into(), json!({"lifecycles_per_s": lps, "events_per_s": eps, "events": events, "baseline_vec_events_per_s": vec_eps, "ratio": eps / vec_eps}));
    say(out,&mut lines, format!("saga, in memory          {lps:>10.0} lifecycles/s {eps:>10.0} events/s   Vec baseline {vec_eps:>12.0} events/s   ratio {:.4}", eps / vec_eps))?;
    report.insert(
        "memory_in_memory_library".into(),
        json!({"lifecycles": plan.lifecycles, "resident_kib_grown": grown, "bytes_per_lifecycle": per_lifecycle}),
    );
    say(
        out,
        &mut lines,
        format!(
            "memory, in-memory library: {per_lifecycle:.0} bytes resident per completed lifecycle ({} lifecycles, {grown} KiB grown; log and both views)",
            plan.lifecycles
        ),
    )?;
    if saga_only {
        if json_out {
            writeln!(out, "{}", Value::Object(report))?;
        }
        return Ok(());
    }
    #[cfg(feature = "sqlite")]
    crud_rows(plan, lps, tmp, &mut report, &mut |s| {
        say(out, &mut lines, s)
    })?;

    // Rule resolution on a 1,000-row table, and a scan that scores every row as its baseline.
    let (index_ns, scan_ns) = rule_resolution(1_000);
    report.insert(
        "rule_resolution".into(),
        json!({"rows": 1_000, "ns_per_lookup": index_ns, "baseline_scan_ns_per_lookup": scan_ns, "ratio": index_ns / scan_ns}),
    );
    say(
        out,
        &mut lines,
        format!(
            "rule resolution, 1,000-row table: {index_ns:.0} ns per lookup   brute-force scan baseline {scan_ns:.0} ns   ratio {:.4}",
            index_ns / scan_ns
        ),
    )?;

    // The clock-driven rules: advance_to when 1,000 loans come due among many open ones, against
    // the same 1,000 due with no other loans open (the baseline): time grows with the due work.
    let due = 1_000.min(plan.open_loans);
    let among_many = advance_to_seconds(plan.open_loans, due);
    let alone = advance_to_seconds(due, due);
    report.insert(
        "advance_to".into(),
        json!({"open_loans": plan.open_loans, "due": due, "seconds": among_many,
               "baseline_only_due_open_seconds": alone, "ratio": among_many / alone}),
    );
    say(
        out,
        &mut lines,
        format!(
            "advance_to, {due} due among {} open loans: {:.1} ms   baseline {due} due, none else open: {:.1} ms   ratio {:.2}",
            plan.open_loans,
            among_many * 1e3,
            alone * 1e3,
            among_many / alone
        ),
    )?;

    // The hold queue: placing, cancelling from the middle and a return that fills the first
    // hold, on a title with many holds waiting, against the same on a title with ten.
    let ops = 200;
    let long = hold_queue_us(plan.queue_holds, ops);
    let short = hold_queue_us(10, ops);
    let (queue_ops, short_ops) = queue_struct_us(plan.queue_holds);
    report.insert(
        "hold_queue".into(),
        json!({"holds": plan.queue_holds, "ops": ops,
               "place_us": long[0], "cancel_middle_us": long[1], "return_promote_us": long[2],
               "baseline_10_holds_us": short,
               "ratios": [long[0] / short[0], long[1] / short[1], long[2] / short[2]],
               "queue_only_us": queue_ops, "queue_only_baseline_10_us": short_ops}),
    );
    say(
        out,
        &mut lines,
        format!(
            "hold queue, {} holds on one title (command + its settle, in memory): place {:.1} µs, cancel from the middle {:.1} µs, return → pickup shelf {:.1} µs   baseline 10 holds: {:.1} / {:.1} / {:.1} µs   ratios {:.2} / {:.2} / {:.2}",
            plan.queue_holds, long[0], long[1], long[2], short[0], short[1], short[2],
            long[0] / short[0], long[1] / short[1], long[2] / short[2]
        ),
    )?;
    say(
        out,
        &mut lines,
        format!(
            "hold queue alone (the book's order-statistic queue): place {:.2} µs, cancel from the middle {:.2} µs, position {:.2} µs, promote {:.2} µs   baseline 10 holds: {:.2} / {:.2} / {:.2} / {:.2} µs",
            queue_ops[0], queue_ops[1], queue_ops[2], queue_ops[3],
            short_ops[0], short_ops[1], short_ops[2], short_ops[3]
        ),
    )?;

    for (name, durability, flush) in [
        ("every_commit", Durability::EveryCommit, true),
        ("periodic_100ms", Durability::Periodic(100), false),
    ] {
        let dir = tmp.join(format!("saga-{name}"));
        let lib = must(OpenLibrary::open(
            &dir,
            Config {
                background: false,
                durability,
                ..Config::default()
            },
        ));
        let lifecycles = if flush {
            plan.lifecycles / 4
        } else {
            plan.lifecycles
        };
        let head = must(block_on(lib.head()));
        let (lps, eps, events, elapsed) = saga(&lib, plan.members, plan.books, lifecycles, name);
        let log = must(block_on(lib.events(head + 1, usize::MAX)));
        must(lib.close());
        let raw = raw_sled(&tmp.join(format!("raw-{name}")), &log, flush);
        let raw_eps = log.len() as f64 / raw.as_secs_f64();
        report.insert(
            format!("saga_sled_{name}"),
            json!({"lifecycles": lifecycles, "lifecycles_per_s": lps, "events_per_s": eps, "events": events, "elapsed_s": elapsed.as_secs_f64(), "baseline_raw_sled_events_per_s": raw_eps, "ratio": eps / raw_eps}),
        );
        say(out,&mut lines, format!("saga, sled {name:<14}{lps:>10.0} lifecycles/s {eps:>10.0} events/s   raw sled     {raw_eps:>12.0} events/s   ratio {:.2}", eps / raw_eps))?;
    }

    // Both stores next to the SQLite CRUD peer on a file with the matching sync setting: each
    // shape, 1 and 16 callers, same lifecycles, same run.
    #[cfg(feature = "sqlite")]
    store_table(plan, tmp, &mut report, &mut |s| say(out, &mut lines, s))?;

    for callers in [1, 8] {
        let (p50, p99, p999) = latency(
            &tmp.join(format!("latency-{callers}")),
            callers,
            plan.latency_calls,
        );
        report.insert(
            format!("reserve_latency_{callers}_callers_us"),
            json!({"p50": p50, "p99": p99, "p999": p999}),
        );
        say(out,&mut lines, format!("reserve_book on sled, {callers} caller(s): p50 {p50:>8.0} µs  p99 {p99:>8.0} µs  p999 {p999:>8.0} µs"))?;
    }

    let db = tmp.join("replay");
    let built = build_replay_log(&db, plan.replay_events);
    let child =
        std::process::Command::new(std::env::current_exe().unwrap_or_else(|_| "lendkit".into()))
            .args(["bench", "--replay-part"])
            .arg(&db)
            .output();
    let replay: Value = match child {
        Ok(out) if out.status.success() => {
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
        }
        Ok(out) => {
            eprintln!(
                "replay part failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Value::Null
        }
        Err(e) => {
            eprintln!("replay part failed: {e}");
            Value::Null
        }
    };
    say(
        out,
        &mut lines,
        format!(
            "replay: {built} events; open (views from the snapshot saved at its last close, and the events after it) {:.2} s; both views folded from the whole log {:.0} events/s",
            replay["open_s"].as_f64().unwrap_or(0.0),
            replay["rebuild_events_per_s"].as_f64().unwrap_or(0.0)
        ),
    )?;
    say(
        out,
        &mut lines,
        format!(
            "queries: book_list ({} books) {:.0} µs; member_page ({} rentals) {:.1} µs",
            replay["book_list_rows"],
            replay["book_list_us"].as_f64().unwrap_or(0.0),
            replay["member_page_rentals"],
            replay["member_page_us"].as_f64().unwrap_or(0.0)
        ),
    )?;
    say(
        out,
        &mut lines,
        format!(
            "memory: peak RSS {:.0} MiB with the {built}-event database open and serving queries ({:.0} MiB after also rebuilding both views beside the live ones)",
            replay["serving_peak_rss_mib"].as_f64().unwrap_or(0.0),
            replay["peak_rss_mib"].as_f64().unwrap_or(0.0)
        ),
    )?;
    report.insert("replay".into(), replay);
    if json_out {
        writeln!(out, "{}", Value::Object(report))?;
    }
    Ok(())
}

/// A rules table of `rows` rows over 20 groups, 50 item types and 10 branches (each field `*` one
/// time in three), and the nanoseconds per lookup of the precomputed resolution and of a scan
/// that scores every row, over the same lookups (a tenth of them name values no row has).
pub fn rule_resolution(rows: usize) -> (f64, f64) {
    use lendkit::circulation::RulesTable;
    use std::hint::black_box;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut field = |prefix: &str, n: u64| {
        if next(3) == 0 {
            "*".to_owned()
        } else {
            format!("{prefix}{}", next(n))
        }
    };
    let mut rules = vec![json!({"loan": "l0", "fine": "f", "limits": "x", "lost": "y"})];
    while rules.len() < rows {
        rules.push(json!({
            "group": field("g", 20), "item_type": field("t", 50), "branch": field("b", 10),
            "loan": format!("l{}", rules.len() % 10), "fine": "f", "limits": "x", "lost": "y",
        }));
    }
    let loans: serde_json::Map<String, Value> = (0..10)
        .map(|i| {
            (
                format!("l{i}"),
                json!({"period": format!("{} days", i + 1)}),
            )
        })
        .collect();
    let file = json!({
        "policies": {
            "loan": loans,
            "fine": {"f": {"points": 1, "per": "day"}},
            "limits": {"x": {}},
            "lost": {"y": {"aged_to_lost_after_days": 60, "replacement_cost": 20}},
        },
        "rules": rules,
    });
    let table = must(RulesTable::from_value(file).map_err(lendkit::Error::from));
    let mut value = |prefix: &str, n: u64| format!("{prefix}{}", next(n + n / 10));
    let lookups: Vec<(String, String, String)> = (0..4_096)
        .map(|_| (value("g", 20), value("t", 50), value("b", 10)))
        .collect();
    let time = |rounds: usize, f: &dyn Fn(&str, &str, &str) -> usize| {
        let started = Instant::now();
        let mut sum = 0;
        for _ in 0..rounds {
            for (g, t, b) in &lookups {
                sum += f(black_box(g), black_box(t), black_box(b));
            }
        }
        black_box(sum);
        started.elapsed().as_nanos() as f64 / (rounds * lookups.len()) as f64
    };
    let index = time(200, &|g, t, b| table.resolve_row(g, t, b));
    let scan = time(5, &|g, t, b| table.resolve_row_by_scan(g, t, b));
    (index, scan)
}

/// A core library on the in-memory store and bus, with `clock`.
fn memory_library(clock: &lendkit::adapters::ManualClock) -> lendkit::Library {
    use lendkit::adapters::{InMemoryEventBus, InMemoryEventStore};
    must(block_on(
        lendkit::LibraryBuilder::new(
            std::sync::Arc::new(InMemoryEventStore::new()),
            std::sync::Arc::new(InMemoryEventBus::new()),
            std::sync::Arc::new(clock.clone()),
        )
        .build(),
    ))
}

/// Microseconds per operation, averaged over `ops` of each, with `holds` holds waiting for one
/// title (in memory; each command followed by the `settle` that runs its reactions): placing a
/// hold, cancelling one from the middle of the queue, and a return whose copy goes to the first
/// in line (released, put on the pickup shelf, confirmed with its deadline).
fn hold_queue_us(holds: usize, ops: usize) -> [f64; 3] {
    let lib = memory_library(&lendkit::adapters::ManualClock::new(lendkit::Timestamp(
        1_767_225_600_000,
    )));
    let exec = |c: Command, a: &Actor| must(block_on(lib.execute(c, a)));
    let copies = u32::try_from(ops).unwrap_or(u32::MAX);
    exec(
        Command::RegisterBook {
            book_id: "b-q".into(),
            title: "Queued".into(),
            copies,
            fee: 1,
            author: None,
            item_type: None,
            branch: None,
        },
        &librarian(),
    );
    let members = holds + 4 * ops;
    for m in 0..members {
        exec(
            Command::JoinMember {
                member_id: format!("m-{m}"),
                name: "M".into(),
                contact: None,
                group: None,
            },
            &librarian(),
        );
    }
    // Every copy out on loan, to the last members.
    for i in 0..ops {
        let m = format!("m-{}", holds + 3 * ops + i);
        exec(
            Command::ReserveBook {
                wait: None,
                book_id: "b-q".into(),
                member_id: m.clone(),
                rental_id: Some(format!("r-{i}")),
                delivery_address: None,
            },
            &Actor::member(m),
        );
    }
    must(block_on(lib.settle()));
    for i in 0..ops {
        exec(
            Command::StartLoan {
                rental_id: format!("r-{i}"),
                branch: None,
                override_reason: None,
            },
            &librarian(),
        );
    }
    let place = |m: usize| {
        exec(
            Command::PlaceHold {
                copy: None,
                book_id: "b-q".into(),
                member_id: format!("m-{m}"),
                hold_id: Some(format!("h-{m}")),
                pickup_branch: None,
                not_needed_after: None,
            },
            &Actor::member(format!("m-{m}")),
        )
    };
    for m in 0..holds {
        place(m);
        if m % 500 == 499 {
            must(block_on(lib.settle()));
        }
    }
    must(block_on(lib.settle()));
    // Rounds that keep the queue at `holds`: place one (timed), cancel one from the middle
    // (timed), return a loan whose copy goes to the first in line (timed), then that member
    // collects it (their loan is returned next round) and one more hold is placed (untimed).
    let mut line: Vec<usize> = (0..holds).collect();
    let mut next = holds;
    let mut loans: std::collections::VecDeque<String> =
        (0..ops).map(|i| format!("r-{i}")).collect();
    let mut spent = [std::time::Duration::ZERO; 3];
    let settle = || must(block_on(lib.settle()));
    for _ in 0..ops {
        let t = Instant::now();
        place(next);
        settle();
        spent[0] += t.elapsed();
        line.push(next);
        next += 1;
        let m = line.remove(line.len() / 2);
        let t = Instant::now();
        exec(
            Command::CancelHold {
                hold_id: format!("h-{m}"),
                reason: None,
            },
            &Actor::member(format!("m-{m}")),
        );
        settle();
        spent[1] += t.elapsed();
        let Some(loan) = loans.pop_front() else { break };
        let t = Instant::now();
        exec(
            Command::ReturnBook {
                rental_id: loan,
                returned_at: None,
            },
            &librarian(),
        );
        settle();
        spent[2] += t.elapsed();
        let first = line.remove(0);
        exec(
            Command::CollectHold {
                hold_id: format!("h-{first}"),
                branch: None,
                override_reason: None,
            },
            &Actor::member(format!("m-{first}")),
        );
        loans.push_back(format!("h-{first}"));
        place(next);
        line.push(next);
        next += 1;
        settle();
    }
    let [place_us, cancel_us, promote_us] = spent.map(|d| d.as_secs_f64() * 1e6 / ops as f64);
    [place_us, cancel_us, promote_us]
}

/// Microseconds per operation of the hold queue itself (no library around it) with `holds`
/// waiting, and with ten: placing at the end, cancelling from the middle, asking a position,
/// and promoting the first in line.
fn queue_struct_us(holds: usize) -> ([f64; 4], [f64; 4]) {
    use lendkit::holds::{HoldQueue, QueuedHold};
    use lendkit::{MemberId, RentalId};
    use std::hint::black_box;
    let hold = |i: usize| QueuedHold {
        copy: None,
        rental: RentalId::new(format!("h-{i}")),
        member: MemberId::new(format!("m-{i}")),
        not_needed_after: None,
        pickup: true,
    };
    // Each round places one hold, cancels one from the middle, asks a position and promotes
    // the first in line, then places one more (untimed): the queue stays at `n` holds. Each
    // operation is timed on its own (the clock read costs some tens of nanoseconds of it).
    let measure = |n: usize| {
        let rounds = 10_000;
        let mut q = HoldQueue::default();
        for i in 0..n {
            q.push_back(hold(i));
        }
        let mut next = n;
        let mut spent = [std::time::Duration::ZERO; 4];
        for k in 0..rounds {
            let h = hold(next);
            next += 1;
            let t = Instant::now();
            q.push_back(h);
            spent[0] += t.elapsed();
            let middle = q.at(q.len() as u64 / 2 + 1).map(|h| h.rental.clone());
            if let Some(r) = middle {
                let t = Instant::now();
                black_box(q.remove(&r));
                spent[1] += t.elapsed();
            }
            let asked = q
                .at((k % q.len().max(1)) as u64 + 1)
                .map(|h| h.rental.clone());
            if let Some(r) = asked {
                let t = Instant::now();
                black_box(q.position(&r));
                spent[2] += t.elapsed();
            }
            let t = Instant::now();
            let first = q
                .first_wanted(lendkit::Timestamp(0))
                .map(|h| h.rental.clone());
            if let Some(r) = first {
                black_box(q.remove(&r));
            }
            spent[3] += t.elapsed();
            q.push_back(hold(next));
            next += 1;
        }
        spent.map(|d| d.as_secs_f64() * 1e6 / rounds as f64)
    };
    (measure(holds), measure(10))
}

/// Seconds one `advance_to` takes when `due` of `open` loans (all made under circulation rules,
/// in memory) have come due: each of those is marked overdue.
fn advance_to_seconds(open: usize, due: usize) -> f64 {
    use lendkit::adapters::ManualClock;
    use lendkit::Timestamp;
    let start = Timestamp(1_767_225_600_000);
    let clock = ManualClock::new(start);
    let lib = memory_library(&clock);
    let exec = |c: Command, a: &Actor| must(block_on(lib.execute(c, a)));
    exec(
        Command::ChangeCirculationRules {
            rules: r#"
[policies.loan.long]
period = "365 days"
[policies.loan.short]
period = "7 days"
[policies.fine.none]
points = 0
per = "day"
[policies.limits.none]
[policies.lost.standard]
aged_to_lost_after_days = 60
replacement_cost = 20
[[rules]]
loan = "long"
fine = "none"
limits = "none"
lost = "standard"
[[rules]]
item_type = "short"
loan = "short"
fine = "none"
limits = "none"
lost = "standard"
"#
            .into(),
            format: None,
        },
        &librarian(),
    );
    let copies = u32::try_from(open).unwrap_or(u32::MAX);
    for (book, item_type) in [("b-long", "long"), ("b-short", "short")] {
        exec(
            Command::RegisterBook {
                book_id: book.into(),
                title: "T".into(),
                copies,
                fee: 1,
                author: None,
                item_type: Some(item_type.into()),
                branch: None,
            },
            &librarian(),
        );
    }
    let members = open.div_ceil(1_000).max(1);
    for m in 0..members {
        exec(
            Command::JoinMember {
                member_id: format!("m-{m}"),
                name: "M".into(),
                contact: None,
                group: None,
            },
            &librarian(),
        );
        exec(
            Command::TopUp {
                member_id: format!("m-{m}"),
                points: 2_000,
            },
            &librarian(),
        );
    }
    for i in 0..open {
        let member = format!("m-{}", i % members);
        let book = if i < due { "b-short" } else { "b-long" };
        exec(
            Command::ReserveBook {
                wait: None,
                book_id: book.into(),
                member_id: member.clone(),
                rental_id: Some(format!("r-{i}")),
                delivery_address: None,
            },
            &Actor::member(member),
        );
        if i % 500 == 499 {
            must(block_on(lib.settle()));
        }
    }
    must(block_on(lib.settle()));
    for i in 0..open {
        exec(
            Command::StartLoan {
                rental_id: format!("r-{i}"),
                branch: None,
                override_reason: None,
            },
            &librarian(),
        );
    }
    let now = Timestamp(start.0 + 8 * 86_400_000);
    clock.set(now);
    let started = Instant::now();
    let advanced = must(block_on(lib.advance_to(now)));
    let seconds = started.elapsed().as_secs_f64();
    if advanced.ran != due {
        eprintln!(
            "advance_to ran {} pieces of work where {due} were due",
            advanced.ran
        );
    }
    seconds
}
