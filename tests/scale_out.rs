//! Scale-out: one library on PostgreSQL and NATS, its policies run by three worker processes
//! that the harness SIGKILLs at random and restarts, while 200 members race for 20 titles × 3
//! copies through three connected libraries (the app servers, here threads of the harness)
//! that retry every command under the same command id.
//!
//! Then, once every policy's checkpoint has reached the log's head: positions run 1..N without
//! a gap; each title has min(copies, demand) winners; every acknowledged command was applied
//! once; every charge and every refund happened once per rental; the views of a fresh process
//! equal a live one's; the NATS stream's last sequence is the last position.
//!
//! The worker processes are this test binary itself, started with `LENDKIT_SCALE_OUT_NODE`.
//! Needs `LENDKIT_PG_URL` and `LENDKIT_NATS_URL` (set by `.ci/run`); without them it prints
//! `skipped: …` and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lendkit::adapters::{NatsEventBus, PgEventStore};
use lendkit::ports::EventStore;
use lendkit::{block_on, Actor, Command, CommandId, Config, ConnectOptions, OpenLibrary};
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODE_ENV: &str = "LENDKIT_SCALE_OUT_NODE";
const NODES: usize = 3;
const TITLES: usize = 20;
const COPIES: u32 = 3;
const MEMBERS: usize = 200;
const KILLS: usize = 10;

fn main() {
    if let Ok(name) = std::env::var(NODE_ENV) {
        node(&name);
        return;
    }
    let args = Arguments::from_args();
    libtest_mimic::run(
        &args,
        vec![Trial::test(
            "three_killed_and_restarted_workers_lose_and_double_nothing",
            scale_out,
        )],
    )
    .exit();
}

fn options(name: &str) -> ConnectOptions {
    let mut options = ConnectOptions::named(name);
    // A killed worker's message in flight goes to another after this.
    options.nats.ack_wait = Duration::from_secs(1);
    options
}

/// A worker process: runs the consumers in the background until its stdin closes (or it is
/// killed).
fn node(name: &str) {
    let pg = std::env::var("LENDKIT_PG_URL").unwrap();
    let nats = std::env::var("LENDKIT_NATS_URL").unwrap();
    let config = Config {
        retry_backoff: Duration::from_millis(50),
        ..Config::default()
    };
    let lib = OpenLibrary::connect(&pg, &nats, options(name), config).unwrap();
    println!("ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    lib.close().unwrap();
}

fn start_node(name: &str) -> Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .env(NODE_ENV, name)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// A small deterministic generator (xorshift), seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn scale_out() -> Result<(), Failed> {
    let (Some(pg), Some(nats)) = (
        std::env::var("LENDKIT_PG_URL")
            .ok()
            .filter(|u| !u.is_empty()),
        std::env::var("LENDKIT_NATS_URL")
            .ok()
            .filter(|u| !u.is_empty()),
    ) else {
        eprintln!("skipped: LENDKIT_PG_URL or LENDKIT_NATS_URL is not set (scale_out needs PostgreSQL and NATS)");
        return Ok(());
    };
    let name = format!("lk_so_{}", std::process::id());
    let _ = PgEventStore::drop_schema(&pg, &name);
    let _ = NatsEventBus::delete_namespace(&nats, &name);
    let result = run(&pg, &nats, &name);
    let _ = PgEventStore::drop_schema(&pg, &name);
    let _ = NatsEventBus::delete_namespace(&nats, &name);
    result
}

fn run(pg: &str, nats: &str, name: &str) -> Result<(), Failed> {
    let started = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("scale_out seed {seed}");
    let app = |_: usize| {
        OpenLibrary::connect(
            pg,
            nats,
            options(name),
            Config {
                background: false,
                ..Config::default()
            },
        )
        .unwrap()
    };
    // The app servers take commands; they never settle: the workers run the policies.
    let apps: Vec<OpenLibrary> = (0..NODES).map(app).collect();
    let librarian = Actor::librarian("lib-1");
    for t in 0..TITLES {
        block_on(apps[t % NODES].execute(
            Command::RegisterBook {
                book_id: format!("t-{t}"),
                title: format!("Title {t}"),
                author: None,
                copies: COPIES,
                fee: 30,
                item_type: None,
                branch: None,
            },
            &librarian,
        ))?;
    }
    for m in 0..MEMBERS {
        block_on(apps[m % NODES].execute(
            Command::JoinMember {
                member_id: format!("m-{m}"),
                name: format!("Member {m}"),
                contact: None,
                group: None,
            },
            &librarian,
        ))?;
    }

    let mut workers: Vec<Child> = (0..NODES).map(|_| start_node(name)).collect();
    // Each member reserves one title (skewed: low titles are wanted more), through an app
    // server, retrying under the same command id; every outcome is kept.
    let acknowledged: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    std::thread::scope(|s| -> Result<(), Failed> {
        for (i, lib) in apps.iter().enumerate() {
            let acknowledged = Arc::clone(&acknowledged);
            s.spawn(move || {
                let mut rng = Rng(seed.wrapping_add(i as u64 * 7919) | 1);
                for m in (i..MEMBERS).step_by(NODES) {
                    let title = rng.below(TITLES).min(rng.below(TITLES));
                    let id = CommandId::new(format!("reserve-{m}"));
                    let command = Command::ReserveBook {
                        book_id: format!("t-{title}"),
                        member_id: format!("m-{m}"),
                        rental_id: None,
                        delivery_address: None,
                        wait: None,
                    };
                    let actor = Actor::member(format!("m-{m}"));
                    let first =
                        block_on(lib.execute_with_id(command.clone(), &actor, Some(id.clone())));
                    // The retry of a client that timed out: the same outcome, nothing new.
                    let again = block_on(lib.execute_with_id(command, &actor, Some(id)));
                    if let (Ok(a), Ok(b)) = (&first, &again) {
                        assert_eq!(a.rental_id, b.rental_id);
                        assert_eq!(a.events, b.events);
                        acknowledged.lock().unwrap().push((
                            format!("m-{m}"),
                            format!("t-{title}"),
                            a.rental_id.clone().unwrap().to_string(),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(rng.below(15) as u64));
                }
            });
        }
        // The killer: a random worker, at random moments, at least KILLS times.
        let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut kills = 0;
        while kills < KILLS {
            std::thread::sleep(Duration::from_millis(150 + rng.below(250) as u64));
            let w = rng.below(NODES);
            workers[w].kill()?;
            workers[w].wait()?;
            workers[w] = start_node(name);
            kills += 1;
        }
        Ok(())
    })?;
    eprintln!(
        "scale_out: {} reservations acknowledged, {KILLS} kills, {:.1} s",
        acknowledged.lock().unwrap().len(),
        started.elapsed().as_secs_f64()
    );

    // Wait until every policy's checkpoint is the log's head.
    let store = PgEventStore::connect(pg, options(name).pg)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head = block_on(store.head())?;
        let checkpoints = block_on(store.checkpoints())?;
        if !checkpoints.is_empty() && checkpoints.iter().all(|(_, p)| *p >= head) {
            // Quiet for a moment: nothing new was stored meanwhile.
            std::thread::sleep(Duration::from_millis(500));
            if block_on(store.head())? == head {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the workers did not catch up: head {head}, checkpoints {checkpoints:?}"
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for mut w in workers {
        drop(w.stdin.take());
        w.wait()?;
    }

    // The log.
    let log = block_on(store.read_all(0, usize::MAX))?;
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    if positions != (1..=log.len() as u64).collect::<Vec<_>>() {
        return Err("positions are not 1..N".into());
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut demand: BTreeMap<String, u32> = BTreeMap::new();
    for (_, title, _) in &acknowledged {
        *demand.entry(title.clone()).or_default() += 1;
    }
    // Per rental: how many times each thing happened to it.
    let mut per_rental: BTreeMap<(String, &'static str), u32> = BTreeMap::new();
    let mut commands: BTreeSet<String> = BTreeSet::new();
    for e in &log {
        let kind = e.type_name();
        if matches!(
            kind,
            "RentalReserved"
                | "RentalConfirmed"
                | "RentalCanceled"
                | "PointsCharged"
                | "PointsRefunded"
        ) {
            *per_rental
                .entry((e.correlation_id.clone(), kind))
                .or_default() += 1;
        }
        if kind == "RentalReserved" {
            commands.insert(e.command_id.to_string());
        }
    }
    for ((rental, kind), n) in &per_rental {
        if *n != 1 {
            return Err(format!("{kind} happened {n} times to {rental}").into());
        }
    }
    for (member, _, rental) in &acknowledged {
        let reserved = per_rental.get(&(rental.clone(), "RentalReserved"));
        let charged = per_rental.get(&(rental.clone(), "PointsCharged"));
        if reserved != Some(&1) || charged != Some(&1) {
            return Err(format!(
                "{member}'s acknowledged reservation {rental} is not stored once, charged once"
            )
            .into());
        }
        let confirmed = per_rental.contains_key(&(rental.clone(), "RentalConfirmed"));
        let canceled = per_rental.contains_key(&(rental.clone(), "RentalCanceled"));
        let refunded = per_rental.contains_key(&(rental.clone(), "PointsRefunded"));
        if confirmed == canceled || canceled != refunded {
            return Err(format!(
                "{rental}: confirmed {confirmed}, canceled {canceled}, refunded {refunded}"
            )
            .into());
        }
    }
    if commands.len() != acknowledged.len() {
        return Err(format!(
            "{} reservations stored for {} acknowledged",
            commands.len(),
            acknowledged.len()
        )
        .into());
    }

    // Winners per title, and every view, from a fresh process against a live one.
    let fresh = OpenLibrary::connect(
        pg,
        nats,
        options(name),
        Config {
            background: false,
            ..Config::default()
        },
    )?;
    block_on(fresh.settle())?;
    block_on(apps[0].settle())?;
    let books = fresh.book_list();
    if books != apps[0].book_list() {
        return Err("a live process's book list differs from a fresh rebuild".into());
    }
    for b in &books {
        let wanted = demand.get(b.book_id.as_str()).copied().unwrap_or(0);
        let winners = COPIES - b.available;
        if winners != wanted.min(COPIES) {
            return Err(format!(
                "{}: {winners} winners for {wanted} reservations of {COPIES} copies",
                b.book_id
            )
            .into());
        }
    }
    for m in 0..MEMBERS {
        let m = format!("m-{m}");
        if fresh.member_page(&m)? != apps[0].member_page(&m)? {
            return Err(
                format!("{m}'s page differs between a live process and a fresh one").into(),
            );
        }
    }
    let bus = NatsEventBus::connect(nats, options(name).nats, Arc::new(store))?;
    let last = block_on(bus.stream_last_sequence())?;
    if last != log.len() as u64 {
        return Err(format!("the stream ends at {last}, the log at {}", log.len()).into());
    }
    eprintln!(
        "scale_out: {} events, {} rentals, done in {:.1} s",
        log.len(),
        acknowledged.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
