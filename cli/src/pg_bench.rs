//! `lendkit bench --pg URL --nats URL`: a library on PostgreSQL and NATS, each figure next to
//! a bound measured in the same run.
//!
//! - **Appends**: `PgEventStore::append` at 1, 4 and 16 writers (each with its own
//!   connection), against the bound — the same rows inserted by hand the cheapest way that
//!   keeps positions gap-free and in commit order: one transaction per commit that moves a
//!   counter row and inserts the events (no stream versions, no command ids). The rows are a
//!   real library's: the commits of lifecycles run in memory first, each writer with its own
//!   copy of the streams.
//! - **Lifecycles** through connected libraries with background runners, 1 and 3 of them (in
//!   this process, each with its own connections — what several app servers would be), every
//!   policy done before the clock stops.
//! - **Latency** from a reservation's commit to its copy's allocation (the catalog policy's
//!   reaction, handled by whichever of three worker libraries pulls it) at a steady 500
//!   reservations per second: p50 and p99.
//!
//! Each run works in schemas and namespaces of its own and drops them at the end.

use crate::bench::{must, setup};
use lendkit::adapters::InMemoryEventBus;
use lendkit::adapters::{NatsEventBus, PgEventStore, PgOptions};
use lendkit::event::Envelope;
use lendkit::ids::{CommandId, StreamId};
use lendkit::policies::{NOTICES, POLICIES};
use lendkit::ports::{Commit, EventStore, StreamAppend};
use lendkit::{block_on, Actor, Command, Config, ConnectOptions, OpenLibrary};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sizes: commits per append row, lifecycles, latency reservations.
struct Sizes {
    commits: usize,
    lifecycles: usize,
    latency_reservations: usize,
}

/// Runs the PostgreSQL and NATS bench and prints (or, with `json_out`, writes as one JSON
/// object) its figures.
pub fn run(
    pg: &str,
    nats: &str,
    quick: bool,
    json_out: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let sizes = if quick {
        Sizes {
            commits: 400,
            lifecycles: 200,
            latency_reservations: 300,
        }
    } else {
        Sizes {
            commits: 2_000,
            lifecycles: 1_000,
            latency_reservations: 1_500,
        }
    };
    let tag = format!("lk_bench_{}", std::process::id());
    let mut report = serde_json::Map::new();
    let say = |out: &mut dyn Write, line: String| -> io::Result<()> {
        if json_out {
            Ok(())
        } else {
            writeln!(out, "{line}")
        }
    };
    say(
        out,
        format!(
            "lendkit bench --pg: PostgreSQL {}, NATS {}",
            shown(pg),
            shown(nats)
        ),
    )?;

    // The rows: a real library's commits.
    let commits = library_commits(sizes.commits);
    let events: usize = commits
        .iter()
        .map(|c| c.appends.iter().map(|a| a.events.len()).sum::<usize>())
        .sum();
    say(
        out,
        format!(
            "appends: {} commits of a lifecycle workload ({events} events), per writer count (best of 2 rounds)",
            commits.len()
        ),
    )?;
    let mut appends = Vec::new();
    for writers in [1usize, 4, 16] {
        // Best of two rounds each, alternating, so that one slow moment of this noisy machine
        // does not decide the ratio.
        let (mut lendkit_rate, mut raw_rate) = (0f64, 0f64);
        for round in 0..2 {
            let schema = format!("{tag}_w{writers}_{round}");
            lendkit_rate = lendkit_rate.max(lendkit_appends(pg, &schema, &commits, writers));
            let _ = PgEventStore::drop_schema(pg, &schema);
            raw_rate = raw_rate.max(raw_appends(pg, &format!("{schema}_raw"), &commits, writers));
        }
        let ratio = lendkit_rate / raw_rate;
        say(out, format!("  {writers:>2} writers: PgEventStore {lendkit_rate:>7.0} commits/s   raw counter-row insert {raw_rate:>7.0} commits/s   ratio {ratio:.2}"))?;
        appends.push(json!({"writers": writers, "lendkit_commits_per_s": lendkit_rate, "raw_commits_per_s": raw_rate, "ratio": ratio}));
    }
    report.insert("pg_appends".into(), Value::Array(appends));

    let mut lifecycles = Vec::new();
    // Each policy with one worker (the default: one event in flight per policy, whichever
    // process takes it), then with one worker per partition of the stream (one event in flight
    // per policy and partition).
    for workers in [1u32, PARTITIONS] {
        for libraries in [1usize, 3] {
            let name = format!("{tag}_l{libraries}_w{workers}");
            let rate = lifecycles_per_s(pg, nats, &name, libraries, workers, sizes.lifecycles);
            drop_place(pg, nats, &name);
            let how = if workers == 1 {
                "each policy one worker".to_owned()
            } else {
                format!("each policy {workers} workers, one per partition")
            };
            say(out, format!("lifecycles through {libraries} connected librar{} ({how}; background runners, every policy done): {rate:>6.0}/s", if libraries == 1 { "y" } else { "ies" }))?;
            lifecycles.push(json!({"libraries": libraries, "policy_workers": workers, "lifecycles_per_s": rate, "lifecycles": sizes.lifecycles}));
        }
    }
    report.insert("pg_nats_lifecycles".into(), Value::Array(lifecycles));

    let mut latencies = Vec::new();
    // At the 500/s, and at 50/s, well below what the workers sustain (where the
    // figure is the hop itself, not a queue).
    for (rate, reservations) in [
        (500, sizes.latency_reservations),
        (50, sizes.latency_reservations / 5),
    ] {
        let name = format!("{tag}_lat{rate}");
        let (p50, p99, achieved) = latency(pg, nats, &name, reservations, rate);
        drop_place(pg, nats, &name);
        say(out, format!("latency, reservation commit -> copy allocated by one of 3 worker libraries, offered {rate}/s, reached {achieved:.0}/s: p50 {p50:.1} ms, p99 {p99:.1} ms"))?;
        latencies.push(json!({"offered_per_s": rate, "reservations_per_s": achieved, "p50_ms": p50, "p99_ms": p99, "reservations": reservations}));
    }
    report.insert("pg_nats_latency".into(), Value::Array(latencies));
    if json_out {
        writeln!(out, "{}", Value::Object(report))?;
    }
    Ok(())
}

/// A URL without credentials.
fn shown(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((head, host)) => format!("{}://{host}", head.split("://").next().unwrap_or("")),
        None => url.to_owned(),
    }
}

fn drop_place(pg: &str, nats: &str, name: &str) {
    let _ = PgEventStore::drop_schema(pg, name);
    let _ = NatsEventBus::delete_namespace(nats, name);
}

/// The commits of about `count` commits' worth of lifecycles run in memory, in log order.
fn library_commits(count: usize) -> Vec<Commit> {
    let lib = must(OpenLibrary::in_memory(Config {
        background: false,
        ..Config::default()
    }));
    // About 7 commits per lifecycle (setup included).
    let lifecycles = (count / 7).max(10);
    crate::bench::saga(&lib, 50, 10, lifecycles, "pgb");
    let log = must(block_on(lib.events(1, usize::MAX)));
    let mut commits: Vec<Commit> = Vec::new();
    for e in log {
        let same = commits.last().is_some_and(|c| c.command_id == e.command_id);
        if !same {
            if commits.len() == count {
                break;
            }
            commits.push(Commit {
                command_id: e.command_id.clone(),
                fingerprint: String::new(),
                appends: Vec::new(),
            });
        }
        let Some(commit) = commits.last_mut() else {
            continue;
        };
        let mut e = e;
        e.position = 0;
        match commit.appends.iter_mut().find(|a| a.stream == e.stream) {
            Some(a) => a.events.push(e),
            None => commit.appends.push(StreamAppend {
                stream: e.stream.clone(),
                expected_version: e.version - 1,
                events: vec![e],
            }),
        }
    }
    commits
}

/// `commits` with every stream and command id made the writer's own.
fn for_writer(commits: &[Commit], writer: usize) -> Vec<Commit> {
    let rename = |s: &StreamId| StreamId::new(s.kind, format!("{}~w{writer}", s.id));
    commits
        .iter()
        .map(|c| Commit {
            command_id: CommandId::new(format!("{}~w{writer}", c.command_id)),
            fingerprint: c.fingerprint.clone(),
            appends: c
                .appends
                .iter()
                .map(|a| StreamAppend {
                    stream: rename(&a.stream),
                    expected_version: a.expected_version,
                    events: a
                        .events
                        .iter()
                        .map(|e| {
                            let stream = rename(&e.stream);
                            Envelope {
                                event_id: Envelope::id_for(&stream, e.version),
                                stream,
                                command_id: CommandId::new(format!("{}~w{writer}", e.command_id)),
                                ..e.clone()
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Commits per second of `writers` threads, each appending its own copy of the commits
/// (`commits.len() / writers` each) through a store of its own.
fn lendkit_appends(pg: &str, schema: &str, commits: &[Commit], writers: usize) -> f64 {
    let _ = PgEventStore::drop_schema(pg, schema);
    let options = PgOptions {
        max_connections: 1,
        ..PgOptions::in_schema(schema)
    };
    let stores: Vec<PgEventStore> = (0..writers)
        .map(|_| must(PgEventStore::connect(pg, options.clone()).map_err(lendkit::Error::from)))
        .collect();
    let share = (commits.len() / writers).max(1);
    let work: Vec<Vec<Commit>> = (0..writers)
        .map(|w| for_writer(&commits[..share], w))
        .collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for (store, mine) in stores.iter().zip(work) {
            s.spawn(move || {
                for c in mine {
                    must(block_on(store.append(c)).map_err(lendkit::Error::from));
                }
            });
        }
    });
    (share * writers) as f64 / started.elapsed().as_secs_f64()
}

/// The bound: the same rows by hand — per commit, one transaction that moves a counter row
/// and inserts the events (`position`, `stream_id`, `version`, `type`, `command_id`, `body`).
fn raw_appends(pg: &str, schema: &str, commits: &[Commit], writers: usize) -> f64 {
    use sqlx::{Connection, Executor};
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench failed: a tokio runtime: {e}");
            std::process::exit(1)
        }
    };
    let fail = |e: sqlx::Error| -> ! {
        eprintln!("bench failed: the raw PostgreSQL baseline: {e}");
        std::process::exit(1)
    };
    let share = (commits.len() / writers).max(1);
    let work: Vec<Vec<Commit>> = (0..writers)
        .map(|w| for_writer(&commits[..share], w))
        .collect();
    let s = schema.to_owned();
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(pg).await.unwrap_or_else(|e| fail(e));
        let setup = format!(
            "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s};
             CREATE TABLE {s}.counter(id boolean PRIMARY KEY DEFAULT true, position bigint NOT NULL);
             INSERT INTO {s}.counter(position) VALUES (0);
             CREATE TABLE {s}.events(position bigint PRIMARY KEY, stream_id text NOT NULL,
                 version bigint NOT NULL, type text NOT NULL, command_id text NOT NULL,
                 body jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),
                 UNIQUE (stream_id, version));"
        );
        conn.execute(sqlx::AssertSqlSafe(setup)).await.unwrap_or_else(|e| fail(e));
        let _ = conn.close().await;
    });
    let mut conns = Vec::new();
    for _ in 0..writers {
        conns.push(runtime.block_on(async {
            sqlx::PgConnection::connect(pg)
                .await
                .unwrap_or_else(|e| fail(e))
        }));
    }
    let counter = format!("UPDATE {s}.counter SET position = position + $1 RETURNING position");
    let insert = format!(
        "INSERT INTO {s}.events(position, stream_id, version, type, command_id, body)
         SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::jsonb[])"
    );
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for (mut conn, mine) in conns.into_iter().zip(work) {
            let (counter, insert) = (counter.clone(), insert.clone());
            tasks.push(tokio::spawn(async move {
                for c in mine {
                    let rows: Vec<&Envelope> = c.appends.iter().flat_map(|a| &a.events).collect();
                    let mut tx = conn.begin().await?;
                    let last: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(counter.clone()))
                        .bind(rows.len() as i64)
                        .fetch_one(&mut *tx)
                        .await?;
                    let first = last - rows.len() as i64 + 1;
                    let positions: Vec<i64> = (first..=last).collect();
                    let streams: Vec<String> = rows.iter().map(|e| e.stream.to_string()).collect();
                    let versions: Vec<i64> = rows.iter().map(|e| e.version as i64).collect();
                    let types: Vec<String> =
                        rows.iter().map(|e| e.type_name().to_owned()).collect();
                    let commands: Vec<String> =
                        rows.iter().map(|e| e.command_id.to_string()).collect();
                    let bodies: Vec<String> = rows
                        .iter()
                        .zip(&positions)
                        .map(|(e, p)| {
                            let mut e = (*e).clone();
                            e.position = *p as u64;
                            e.to_json_text()
                        })
                        .collect();
                    sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                        .bind(positions)
                        .bind(streams)
                        .bind(versions)
                        .bind(types)
                        .bind(commands)
                        .bind(bodies)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                }
                let _ = conn.close().await;
                Ok::<(), sqlx::Error>(())
            }));
        }
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => fail(e),
                Err(e) => {
                    eprintln!("bench failed: the raw baseline's task: {e}");
                    std::process::exit(1)
                }
            }
        }
    });
    let rate = (share * writers) as f64 / started.elapsed().as_secs_f64();
    runtime.block_on(async {
        if let Ok(mut conn) = sqlx::PgConnection::connect(pg).await {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {s} CASCADE"
                )))
                .await;
        }
    });
    rate
}

/// The partitions of the benches' NATS streams (the default).
const PARTITIONS: u32 = 4;

/// A connected library whose policies run with `workers` workers each (1, or one per
/// partition).
fn connect(pg: &str, nats: &str, name: &str, background: bool, workers: u32) -> OpenLibrary {
    let options = ConnectOptions::named(name);
    debug_assert_eq!(options.nats.partitions, PARTITIONS);
    must(OpenLibrary::connect(
        pg,
        nats,
        options,
        Config {
            background,
            workers: POLICIES
                .iter()
                .map(|p| (p.name.to_owned(), workers))
                .collect(),
            ..Config::default()
        },
    ))
}

/// Waits until every policy has handled every event: each worker's checkpoint has reached the
/// last event of its share of the log (the head, for a policy with one worker; with one worker
/// per partition, the last event of a stream in that partition).
fn wait_for_policies(store: &PgEventStore, workers: u32, read: &mut (u64, Vec<u64>)) {
    loop {
        let head = must(block_on(store.head()).map_err(lendkit::Error::from));
        let last = if workers == 1 {
            vec![head]
        } else {
            // The last position of each partition, read on from where the last call stopped.
            let (read_to, last) = read;
            last.resize(workers as usize, 0);
            while *read_to < head {
                let page =
                    must(block_on(store.read_all(*read_to, 1_000)).map_err(lendkit::Error::from));
                let Some(end) = page.last().map(|e| e.position) else {
                    break;
                };
                for e in &page {
                    last[InMemoryEventBus::worker_for(&e.stream, workers) as usize] = e.position;
                }
                *read_to = end;
            }
            last.clone()
        };
        let checkpoints = must(block_on(store.checkpoints()).map_err(lendkit::Error::from));
        // Not notices: these libraries have no notifier, so they leave it to processes that do.
        let done = POLICIES.iter().filter(|p| p.name != NOTICES.name).all(|p| {
            last.iter().enumerate().all(|(w, &upto)| {
                let key = format!("{}/{workers}#{w}", p.name);
                upto == 0 || checkpoints.iter().any(|(k, at)| *k == key && *at >= upto)
            })
        });
        if done {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Lifecycles per second through `libraries` connected libraries (background runners on),
/// commands spread over them from one thread each, every policy done at the end of each phase.
fn lifecycles_per_s(
    pg: &str,
    nats: &str,
    name: &str,
    libraries: usize,
    workers: u32,
    lifecycles: usize,
) -> f64 {
    drop_place(pg, nats, name);
    let libs: Vec<OpenLibrary> = (0..libraries)
        .map(|_| connect(pg, nats, name, true, workers))
        .collect();
    let (members, books) = (100, 10);
    setup(&libs[0], members, books, lifecycles);
    let store =
        must(PgEventStore::connect(pg, PgOptions::in_schema(name)).map_err(lendkit::Error::from));
    let mut read = (0, Vec::new());
    wait_for_policies(&store, workers, &mut read);
    let started = Instant::now();
    let mut phase = |f: &(dyn Fn(&OpenLibrary, usize) + Sync)| {
        std::thread::scope(|s| {
            for (t, lib) in libs.iter().enumerate() {
                s.spawn(move || {
                    for i in (t..lifecycles).step_by(libraries) {
                        f(lib, i);
                    }
                });
            }
        });
        wait_for_policies(&store, workers, &mut read);
    };
    let member = |i: usize| format!("m-{}", i % members);
    phase(&|lib, i| {
        must(block_on(lib.execute(
            Command::ReserveBook {
                book_id: format!("b-{}", i % books),
                member_id: member(i),
                rental_id: Some(format!("r-{i}")),
                delivery_address: None,
                wait: None,
            },
            &Actor::member(member(i)),
        )));
    });
    phase(&|lib, i| {
        must(block_on(lib.execute(
            Command::StartLoan {
                rental_id: format!("r-{i}"),
                branch: None,
                override_reason: None,
            },
            &Actor::member(member(i)),
        )));
        must(block_on(lib.execute(
            Command::ReturnBook {
                rental_id: format!("r-{i}"),
                returned_at: None,
            },
            &Actor::member(member(i)),
        )));
    });
    lifecycles as f64 / started.elapsed().as_secs_f64()
}

/// p50 and p99 (ms) from a reservation's commit to its `CopyAllocated`, at a steady `rate`
/// reservations per second through one app library, three worker libraries running the
/// policies; and the rate reached.
fn latency(pg: &str, nats: &str, name: &str, reservations: usize, rate: u32) -> (f64, f64, f64) {
    drop_place(pg, nats, name);
    let app = connect(pg, nats, name, false, 1);
    let workers: Vec<OpenLibrary> = (0..3).map(|_| connect(pg, nats, name, true, 1)).collect();
    setup(&workers[0], 500, 10, reservations);
    let store =
        must(PgEventStore::connect(pg, PgOptions::in_schema(name)).map_err(lendkit::Error::from));
    wait_for_policies(&store, 1, &mut (0, Vec::new()));
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let allocated: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut achieved = 0.0;
    std::thread::scope(|s| {
        // The tailer: sees each allocation within a millisecond or two of its commit.
        s.spawn(|| {
            let mut after = must(block_on(store.head()).map_err(lendkit::Error::from));
            loop {
                let batch =
                    must(block_on(store.read_all(after, 1_000)).map_err(lendkit::Error::from));
                let now = Instant::now();
                for e in &batch {
                    if e.type_name() == "CopyAllocated" {
                        // A rental's events carry its id as their correlation id.
                        allocated
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(e.correlation_id.clone(), now);
                    }
                    after = e.position;
                }
                let seen = allocated
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len();
                if done.load(std::sync::atomic::Ordering::SeqCst) && seen >= reservations {
                    return;
                }
                if batch.is_empty() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let pace = Duration::from_secs(1) / rate.max(1);
        let started = Instant::now();
        for i in 0..reservations {
            let due = started + pace * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let member = format!("m-{}", i % 500);
            must(block_on(app.execute(
                Command::ReserveBook {
                    book_id: format!("b-{}", i % 10),
                    member_id: member.clone(),
                    rental_id: Some(format!("lat-{i}")),
                    delivery_address: None,
                    wait: None,
                },
                &Actor::member(member),
            )));
            committed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(format!("lat-{i}"), Instant::now());
        }
        achieved = reservations as f64 / started.elapsed().as_secs_f64();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let committed = committed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let allocated = allocated
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut waits: Vec<f64> = committed
        .iter()
        .filter_map(|(rental, at)| {
            allocated
                .get(rental)
                .map(|seen| seen.saturating_duration_since(*at).as_secs_f64() * 1e3)
        })
        .collect();
    waits.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        waits
            .get(((waits.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    (pick(0.5), pick(0.99), achieved)
}
