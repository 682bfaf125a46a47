//! [`NatsEventBus`] against the NATS server that `LENDKIT_NATS_URL` names
//! (`nats://127.0.0.1:4222` in CI), with an in-memory store as the log: the stream's sequence
//! is the log's position whoever publishes, gaps are filled from the store, a policy's events
//! go to one process at a time, views get every event in every process, and a stream or
//! setting that does not fit is refused.
//!
//! Without `LENDKIT_NATS_URL` every test prints `skipped: LENDKIT_NATS_URL is not set` and
//! passes. Each test uses a namespace of its own (`t<pid>_<n>`), deleted when it ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use lendkit_adapters::contract::{batch, commit, stream};
use lendkit_adapters::{InMemoryEventStore, NatsEventBus, NatsOptions};
use lendkit_core::event::Envelope;
use lendkit_core::ports::{EventBus, EventStore};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn nats_url() -> Option<String> {
    match std::env::var("LENDKIT_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            use std::io::Write;
            let test = std::thread::current().name().unwrap_or("a test").to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "skipped: LENDKIT_NATS_URL is not set ({test} needs a NATS server with JetStream)"
            );
            None
        }
    }
}

/// A namespace for one test, deleted (with its stream) when dropped.
struct Namespace {
    url: String,
    name: String,
}

impl Namespace {
    fn new(url: &str) -> Namespace {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let _ = NatsEventBus::delete_namespace(url, &name);
        Namespace {
            url: url.to_owned(),
            name,
        }
    }

    fn options(&self) -> NatsOptions {
        NatsOptions {
            ack_wait: Duration::from_secs(2),
            ..NatsOptions::in_namespace(&self.name)
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = NatsEventBus::delete_namespace(&self.url, &self.name);
    }
}

/// Appends `n` one-event commits to `store`, on `streams` streams in turn; returns them.
fn append(store: &InMemoryEventStore, n: usize, streams: usize) -> Vec<Arc<Envelope>> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut out = Vec::new();
    for _ in 0..n {
        let i = NEXT.fetch_add(1, Ordering::SeqCst);
        let s = stream(&format!("m-{}", i % streams));
        let version = block_on(store.read_stream(&s)).unwrap().len() as u64;
        let stored = block_on(store.append(commit(vec![batch(
            &s,
            version,
            1,
            &format!("c-{}-{i}", std::process::id()),
        )])))
        .unwrap();
        out.extend(stored.into_iter().map(Arc::new));
    }
    out
}

fn positions(events: &[Arc<Envelope>]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}

#[test]
fn two_processes_relaying_the_same_log_leave_one_copy_in_position_order() {
    let Some(url) = nats_url() else { return };
    let ns = Namespace::new(&url);
    let store = Arc::new(InMemoryEventStore::new());
    let a = NatsEventBus::connect(&url, ns.options(), store.clone()).unwrap();
    let b = NatsEventBus::connect(&url, ns.options(), store.clone()).unwrap();
    let events = append(&store, 40, 7);
    // Both relay everything, in overlapping, interleaved batches.
    block_on(a.publish(&events[..25])).unwrap();
    block_on(b.publish(&events[..10])).unwrap();
    block_on(b.publish(&events[10..40])).unwrap();
    block_on(a.publish(&events[25..])).unwrap();
    assert_eq!(block_on(a.stream_last_sequence()).unwrap(), 40);
    assert_eq!(a.published(), 40);
    assert_eq!(b.published(), 40);
    // A one-worker group sees every event once, in position order, with its envelope intact.
    block_on(a.join("catalog", 1)).unwrap();
    let mut seen = Vec::new();
    loop {
        let got = block_on(a.receive("catalog", 0, 256)).unwrap();
        let Some(last) = got.last().map(|e| e.position) else {
            break;
        };
        assert_eq!(got.len(), 1, "one message in flight per consumer");
        seen.extend(got);
        block_on(a.ack("catalog", 0, last)).unwrap();
    }
    assert_eq!(positions(&seen), (1..=40).collect::<Vec<_>>());
    for (got, sent) in seen.iter().zip(&events) {
        assert_eq!(**got, **sent);
    }
}

#[test]
fn a_relay_behind_the_log_fills_the_gap_from_the_store() {
    let Some(url) = nats_url() else { return };
    let ns = Namespace::new(&url);
    let store = Arc::new(InMemoryEventStore::new());
    // Ten events were stored before the bus existed (a library older than its stream).
    append(&store, 10, 3);
    let bus = NatsEventBus::connect(&url, ns.options(), store.clone()).unwrap();
    assert_eq!(bus.published(), 0);
    let more = append(&store, 2, 3);
    block_on(bus.publish(&more)).unwrap();
    assert_eq!(block_on(bus.stream_last_sequence()).unwrap(), 12);
    // Reopening: the stream and the log agree, nothing is published again.
    let again = NatsEventBus::connect(&url, ns.options(), store.clone()).unwrap();
    assert_eq!(again.published(), 12);
}

#[test]
fn a_policys_events_go_to_one_process_at_a_time_and_views_to_every_process() {
    let Some(url) = nats_url() else { return };
    let ns = Namespace::new(&url);
    let store = Arc::new(InMemoryEventStore::new());
    let a = NatsEventBus::connect(&url, ns.options(), store.clone()).unwrap();
    let b = NatsEventBus::connect(&url, ns.options(), store.clone()).unwrap();
    for bus in [&a, &b] {
        block_on(bus.join("rentals", 1)).unwrap();
        block_on(bus.join_each_process("book_list")).unwrap();
    }
    let events = append(&store, 6, 2);
    block_on(a.publish(&events)).unwrap();
    // Each view gets all six in its own process (b's relay reads the same log).
    block_on(b.publish(&events)).unwrap();
    for bus in [&a, &b] {
        let view = block_on(bus.receive("book_list", 0, 256)).unwrap();
        assert_eq!(positions(&view), vec![1, 2, 3, 4, 5, 6]);
    }
    // a pulls the first event of the policy; until a acknowledges it, b gets nothing.
    let first = block_on(a.receive("rentals", 0, 256)).unwrap();
    assert_eq!(positions(&first), vec![1]);
    assert_eq!(
        positions(&block_on(b.receive("rentals", 0, 256)).unwrap()),
        Vec::<u64>::new()
    );
    // Received again (not acknowledged): the same event.
    assert_eq!(
        positions(&block_on(a.receive("rentals", 0, 256)).unwrap()),
        vec![1]
    );
    block_on(a.ack("rentals", 0, 1)).unwrap();
    assert_eq!(
        positions(&block_on(b.receive("rentals", 0, 256)).unwrap()),
        vec![2]
    );
    // b dies holding event 2: after ack_wait the server gives it to a.
    drop(b);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let taken_over = loop {
        let got = block_on(a.receive("rentals", 0, 256)).unwrap();
        if !got.is_empty() || std::time::Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(positions(&taken_over), vec![2]);
}

#[test]
fn partitioned_groups_keep_each_stream_on_one_worker() {
    let Some(url) = nats_url() else { return };
    let ns = Namespace::new(&url);
    let store = Arc::new(InMemoryEventStore::new());
    let bus = NatsEventBus::connect(&url, ns.options(), store.clone()).unwrap();
    let err = block_on(bus.join("notices", 3)).unwrap_err();
    assert!(
        err.0.contains("1 worker or with the stream's 4 partitions"),
        "{err}"
    );
    block_on(bus.join("notices", 4)).unwrap();
    let events = append(&store, 24, 6);
    block_on(bus.publish(&events)).unwrap();
    let mut total = 0;
    for w in 0..4u32 {
        let mut got = Vec::new();
        loop {
            let batch = block_on(bus.receive("notices", w, 256)).unwrap();
            let Some(last) = batch.last().map(|e| e.position) else {
                break;
            };
            got.extend(batch);
            block_on(bus.ack("notices", w, last)).unwrap();
        }
        for e in &got {
            assert_eq!(
                lendkit_adapters::InMemoryEventBus::worker_for(&e.stream, 4),
                w,
                "{} went to worker {w}",
                e.event_id
            );
        }
        let p = positions(&got);
        assert!(p.windows(2).all(|w| w[0] < w[1]), "in order: {p:?}");
        total += got.len();
    }
    assert_eq!(total, 24);
}

#[test]
fn a_stream_that_does_not_fit_is_refused_naming_the_setting() {
    let Some(url) = nats_url() else { return };
    let ns = Namespace::new(&url);
    let store = Arc::new(InMemoryEventStore::new());
    NatsEventBus::connect(&url, ns.options(), store.clone()).unwrap();
    // Other partitions than the stream was created with.
    let other = NatsOptions {
        partitions: 8,
        ..ns.options()
    };
    let err = NatsEventBus::connect(&url, other, store.clone())
        .err()
        .unwrap();
    assert!(err.0.contains("partitions=4"), "{err}");
    // A stream holding more than the log: another library's namespace.
    let events = append(&store, 3, 1);
    let bus = NatsEventBus::connect(&url, ns.options(), store.clone()).unwrap();
    block_on(bus.publish(&events)).unwrap();
    let empty = Arc::new(InMemoryEventStore::new());
    let err = NatsEventBus::connect(&url, ns.options(), empty)
        .err()
        .unwrap();
    assert!(err.0.contains("belongs to another library"), "{err}");
    // Bad names and unreachable servers are refused before anything is created.
    let err = NatsEventBus::connect(&url, NatsOptions::in_namespace("a.b"), store.clone())
        .err()
        .unwrap();
    assert!(err.0.contains("not allowed"), "{err}");
    let nowhere = NatsOptions {
        connect_timeout: Duration::from_millis(500),
        ..ns.options()
    };
    let err = NatsEventBus::connect("nats://127.0.0.1:1", nowhere, store)
        .err()
        .unwrap();
    assert!(
        err.0.contains("cannot reach NATS at nats://127.0.0.1:1"),
        "{err}"
    );
}

#[test]
fn a_consumer_whose_events_aged_out_of_the_stream_reads_them_from_the_store() {
    let Some(url) = nats_url() else { return };
    let ns = Namespace::new(&url);
    let store = Arc::new(InMemoryEventStore::new());
    let options = NatsOptions {
        max_age: Duration::from_secs(1),
        ..ns.options()
    };
    let bus = NatsEventBus::connect(&url, options.clone(), store.clone()).unwrap();
    block_on(bus.join("early", 1)).unwrap();
    let events = append(&store, 5, 2);
    block_on(bus.publish(&events)).unwrap();
    // "early" takes all five in time.
    for p in 1..=5 {
        assert_eq!(
            positions(&block_on(bus.receive("early", 0, 256)).unwrap()),
            vec![p]
        );
        block_on(bus.ack("early", 0, p)).unwrap();
    }
    // Past max_age the stream holds none of them.
    std::thread::sleep(Duration::from_millis(2500));
    // A process joining now: "late" never got them, "early" has no gap.
    let later = NatsEventBus::connect(&url, options, store.clone()).unwrap();
    block_on(later.join("early", 1)).unwrap();
    block_on(later.join("late", 4)).unwrap();
    assert_eq!(
        positions(&block_on(later.receive("early", 0, 256)).unwrap()),
        Vec::<u64>::new()
    );
    let mut from_store = Vec::new();
    for w in 0..4 {
        let got = block_on(later.receive("late", w, 256)).unwrap();
        for e in &got {
            assert_eq!(
                lendkit_adapters::InMemoryEventBus::worker_for(&e.stream, 4),
                w
            );
        }
        if let Some(last) = got.last().map(|e| e.position) {
            block_on(later.ack("late", w, last)).unwrap();
        }
        from_store.extend(positions(&got));
        assert!(block_on(later.receive("late", w, 256)).unwrap().is_empty());
    }
    from_store.sort_unstable();
    assert_eq!(from_store, vec![1, 2, 3, 4, 5]);
    // What comes next arrives through the stream, to both.
    let next = append(&store, 1, 2);
    block_on(later.publish(&next)).unwrap();
    assert_eq!(
        positions(&block_on(later.receive("early", 0, 256)).unwrap()),
        vec![6]
    );
    let w = lendkit_adapters::InMemoryEventBus::worker_for(&next[0].stream, 4);
    assert_eq!(
        positions(&block_on(later.receive("late", w, 256)).unwrap()),
        vec![6]
    );
}
