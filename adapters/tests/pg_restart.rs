//! PostgreSQL going down mid-run under a [`PgEventStore`] that is appending: appends fail with
//! a retryable `STORAGE` error (never a panic, never a hang) and succeed again when the server
//! is back; a client that retries under the same command id gets each command applied once;
//! no acknowledged append is lost, though the server was stopped the hard way
//! (`pg_ctl stop -m immediate`: no shutdown checkpoint, recovery from the WAL at start).
//!
//! Runs a private PostgreSQL cluster (the installed server's `initdb`/`pg_ctl`, as user
//! `postgres` when the test runs as root) in a temporary folder on a free port, so it can be
//! stopped and started without touching the shared server. Where no PostgreSQL binaries are
//! installed it prints `skipped: …` and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use lendkit_adapters::contract;
use lendkit_adapters::{PgEventStore, PgOptions};
use lendkit_core::error::StoreError;
use lendkit_core::ids::CommandId;
use lendkit_core::ports::EventStore;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Says why the test does not run, straight to stderr, past the harness's capture.
fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// The folder of the installed server's programs (`/usr/lib/postgresql/N/bin`), newest first.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

/// A private cluster, stopped when dropped.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run the server's programs as `postgres` (the server refuses to run as root).
    as_postgres: bool,
}

impl Cluster {
    fn create(bin: PathBuf) -> Result<Cluster, String> {
        let root = output("id", &["-u"]).map(|id| id.trim() == "0")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        if root {
            let ids = output("id", &["-u", "postgres"])?;
            let gid = output("id", &["-g", "postgres"])?;
            let (uid, gid) = (
                ids.trim().parse::<u32>().map_err(|e| e.to_string())?,
                gid.trim().parse::<u32>().map_err(|e| e.to_string())?,
            );
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown: {e}"))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let cluster = Cluster {
            bin,
            dir,
            port,
            as_postgres: root,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {args:?}: {}{}",
                program.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
    }

    /// Stops the server the hard way: no checkpoint, as after a crash.
    fn crash(&self) -> Result<(), String> {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

fn output(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What the writer saw.
#[derive(Default)]
struct Seen {
    /// Calls that failed with the retryable `STORAGE` error.
    storage_errors: AtomicUsize,
    /// Commands acknowledged (stored, or found applied by an earlier attempt).
    acknowledged: AtomicUsize,
}

/// Appends command `c-i` (one event to stream `m-i`) for i = 0, 1, …, each retried under its
/// id until the store answers: stored, or applied by an attempt whose answer was lost.
fn writer(store: PgEventStore, stop: Arc<AtomicBool>, seen: Arc<Seen>) -> usize {
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let id = format!("c-{i}");
        let commit = contract::commit(vec![contract::batch(
            &contract::stream(&format!("m-{i}")),
            0,
            1,
            &id,
        )]);
        match block_on(store.append(commit)) {
            Ok(stored) => {
                assert_eq!(stored.len(), 1);
            }
            Err(StoreError::Backend(message)) => {
                assert!(message.contains("127.0.0.1"), "names the server: {message}");
                seen.storage_errors.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            // A retry of an attempt that committed although its answer was lost: the stream
            // is past version 0 (checked first), or the id is recorded.
            Err(StoreError::Conflict { .. } | StoreError::CommandApplied(_)) => {
                let record = block_on(store.command(&CommandId::new(&id)));
                assert!(
                    matches!(record, Ok(Some(_))),
                    "{id} was refused but is not recorded: {record:?}"
                );
            }
            Err(other) => panic!("{id}: unexpected {other:?}"),
        }
        seen.acknowledged.fetch_add(1, Ordering::SeqCst);
        i += 1;
    }
    i
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn appends_fail_while_postgres_is_down_and_nothing_acknowledged_is_lost() {
    let Some(bin) = postgres_bin() else {
        skipped("no PostgreSQL server programs under /usr/lib/postgresql");
        return;
    };
    let cluster = match Cluster::create(bin) {
        Ok(c) => c,
        Err(e) => {
            skipped(&format!(
                "a private PostgreSQL cluster could not be made: {e}"
            ));
            return;
        }
    };
    cluster.start().unwrap();
    let options = PgOptions {
        schema: "lk_restart".into(),
        connect_timeout: Duration::from_secs(2),
        ..PgOptions::default()
    };
    let store = PgEventStore::connect(&cluster.url(), options.clone()).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let running = {
        let (store, stop, seen) = (store.clone(), Arc::clone(&stop), Arc::clone(&seen));
        std::thread::spawn(move || writer(store, stop, seen))
    };

    // Two outages while the writer appends, the server crashing mid-stream each time.
    for outage in 0..2 {
        let before = seen.acknowledged.load(Ordering::SeqCst);
        wait_for("appends before the outage", Duration::from_secs(30), || {
            seen.acknowledged.load(Ordering::SeqCst) >= before + 50
        });
        let errors = seen.storage_errors.load(Ordering::SeqCst);
        cluster.crash().unwrap();
        wait_for(
            "a STORAGE error while the server is down",
            Duration::from_secs(30),
            || seen.storage_errors.load(Ordering::SeqCst) > errors,
        );
        let stalled = seen.acknowledged.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            seen.acknowledged.load(Ordering::SeqCst),
            stalled,
            "outage {outage}: nothing is acknowledged while the server is down"
        );
        cluster.start().unwrap();
        wait_for("appends after the restart", Duration::from_secs(30), || {
            seen.acknowledged.load(Ordering::SeqCst) >= stalled + 50
        });
    }
    stop.store(true, Ordering::SeqCst);
    let commands = running.join().expect("the writer panicked");
    drop(store);

    // A new handle sees the whole log: every command once, positions 1..N without a gap.
    let store = PgEventStore::connect(&cluster.url(), options).unwrap();
    let log = block_on(store.read_all(0, commands + 10)).unwrap();
    assert_eq!(log.len(), commands, "one event per acknowledged command");
    for (n, event) in log.iter().enumerate() {
        assert_eq!(event.position, n as u64 + 1, "positions without a gap");
    }
    let mut ids: Vec<String> = log.iter().map(|e| e.command_id.to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), commands, "no command stored twice");
    for i in [0, commands / 2, commands - 1] {
        let record = block_on(store.command(&CommandId::new(format!("c-{i}")))).unwrap();
        assert!(record.is_some(), "c-{i} is recorded");
    }
    let errors = seen.storage_errors.load(Ordering::SeqCst);
    assert!(errors >= 2);
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "pg restart: 2 crashes, {commands} commands acknowledged and found once each, {errors} STORAGE errors on the way"
    );
}
