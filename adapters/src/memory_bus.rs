//! [`InMemoryEventBus`]: consumer groups with per-worker queues in process memory.

use async_trait::async_trait;
use lendkit_core::error::BusError;
use lendkit_core::event::Envelope;
use lendkit_core::ids::StreamId;
use lendkit_core::ports::EventBus;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// An [`EventBus`] held in memory.
///
/// Each group joined with `n` workers gets `n` queues. A published event is copied into one queue
/// of every group, chosen by a stable hash (FNV-1a) of its stream id, so one stream's events always
/// reach the same worker, in publish order, and the choice is the same in every run.
/// Delivery is at-least-once: [`receive`](EventBus::receive) returns pending events without
/// removing them, and they are delivered again until [`ack`](EventBus::ack)ed.
#[derive(Debug, Default)]
pub struct InMemoryEventBus {
    groups: Mutex<BTreeMap<String, Vec<VecDeque<Arc<Envelope>>>>>,
}

/// 64-bit FNV-1a: a stable hash, unlike `std`'s randomly seeded one.
#[cfg(test)]
fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_on(FNV_OFFSET, bytes)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes` continued from `hash` (so parts hash as their concatenation).
fn fnv1a_on(hash: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(hash, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

/// FNV-1a of a stream's text form, `kind:id`, without writing it out.
fn stream_hash(stream: &StreamId) -> u64 {
    let hash = fnv1a_on(FNV_OFFSET, stream.kind.as_str().as_bytes());
    let hash = fnv1a_on(hash, b":");
    fnv1a_on(hash, stream.id.as_bytes())
}

impl InMemoryEventBus {
    /// A bus with no groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// The worker (`0..workers`) that receives the events of `stream` in a group of `workers`
    /// workers: FNV-1a of the stream's text form (`kind:id`) modulo `workers`. Zero when `workers` is 0.
    pub fn worker_for(stream: &StreamId, workers: u32) -> u32 {
        if workers == 0 {
            return 0;
        }
        let slot = stream_hash(stream) % u64::from(workers);
        // `slot < workers`, so it fits.
        u32::try_from(slot).unwrap_or(0)
    }

    /// How many events are pending (published, not yet acknowledged) across all workers of
    /// `group`; 0 for a group that has not joined.
    pub fn pending(&self, group: &str) -> usize {
        self.lock()
            .get(group)
            .map_or(0, |queues| queues.iter().map(VecDeque::len).sum())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<VecDeque<Arc<Envelope>>>>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The queue of `worker` in `group`, or a [`BusError`] naming what is unknown.
fn queue_of<'a>(
    groups: &'a mut BTreeMap<String, Vec<VecDeque<Arc<Envelope>>>>,
    group: &str,
    worker: u32,
) -> Result<&'a mut VecDeque<Arc<Envelope>>, BusError> {
    let queues = groups
        .get_mut(group)
        .ok_or_else(|| BusError(format!("consumer group {group:?} has not joined the bus")))?;
    let count = queues.len();
    usize::try_from(worker)
        .ok()
        .and_then(|w| queues.get_mut(w))
        .ok_or_else(|| {
            BusError(format!(
                "consumer group {group:?} has {count} workers (0..{count}); there is no worker {worker}"
            ))
        })
}

#[async_trait]
impl EventBus for InMemoryEventBus {
    async fn join(&self, group: &str, workers: u32) -> Result<(), BusError> {
        if workers == 0 {
            return Err(BusError(format!(
                "consumer group {group:?} must have at least one worker"
            )));
        }
        let count = usize::try_from(workers).map_err(|_| {
            BusError(format!(
                "{workers} workers are more than this platform can hold"
            ))
        })?;
        let mut groups = self.lock();
        match groups.get(group) {
            Some(queues) if queues.len() == count => Ok(()),
            Some(queues) => Err(BusError(format!(
                "consumer group {group:?} already joined with {} workers; it cannot join again with {workers}",
                queues.len()
            ))),
            None => {
                groups.insert(group.to_owned(), vec![VecDeque::new(); count]);
                Ok(())
            }
        }
    }

    async fn publish(&self, events: &[Arc<Envelope>]) -> Result<(), BusError> {
        // Each stream is hashed once, whatever the number of groups.
        let hashes: Vec<u64> = events.iter().map(|e| stream_hash(&e.stream)).collect();
        let mut groups = self.lock();
        for queues in groups.values_mut() {
            let workers = queues.len() as u64;
            for (envelope, hash) in events.iter().zip(&hashes) {
                let worker = if workers == 0 { 0 } else { hash % workers };
                if let Some(queue) = usize::try_from(worker).ok().and_then(|w| queues.get_mut(w)) {
                    // Each queue stays in position order (so `ack` removes a prefix): the
                    // library relays in order, and anything older is put in its place.
                    match queue.back() {
                        Some(last) if last.position > envelope.position => {
                            let at = queue.partition_point(|e| e.position <= envelope.position);
                            queue.insert(at, Arc::clone(envelope));
                        }
                        _ => queue.push_back(Arc::clone(envelope)),
                    }
                }
            }
        }
        Ok(())
    }

    async fn receive(
        &self,
        group: &str,
        worker: u32,
        max: usize,
    ) -> Result<Vec<Arc<Envelope>>, BusError> {
        let mut groups = self.lock();
        let queue = queue_of(&mut groups, group, worker)?;
        Ok(queue.iter().take(max).cloned().collect())
    }

    async fn ack(&self, group: &str, worker: u32, upto: u64) -> Result<(), BusError> {
        let mut groups = self.lock();
        let queue = queue_of(&mut groups, group, worker)?;
        // In position order (see `publish`): what is acknowledged is a prefix.
        let acknowledged = queue.partition_point(|e| e.position <= upto);
        queue.drain(..acknowledged);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;
    use futures::executor::block_on;
    use lendkit_core::testing::stored;

    /// Events 1..=n over `streams` correlation ids, round robin, with positions 1..=n.
    fn events(n: u64, streams: &[&str]) -> Vec<Arc<Envelope>> {
        (1..=n)
            .map(|p| {
                let member = streams[(p as usize - 1) % streams.len()];
                Arc::new(stored(
                    p,
                    lendkit_core::members::MemberEvent::MemberJoined {
                        member: member.into(),
                        name: format!("member {p}"),
                        contact: None,
                        group: None,
                        joined_at: None,
                    },
                    member,
                ))
            })
            .collect()
    }

    const STREAMS: [&str; 6] = ["m-1", "m-2", "m-3", "m-4", "m-5", "m-6"];

    #[test]
    fn partitioning_is_stable_and_in_range() {
        let s = StreamId::new(lendkit_core::ids::StreamKind::Member, "m-1");
        let first = InMemoryEventBus::worker_for(&s, 7);
        assert!(first < 7);
        assert_eq!(first, InMemoryEventBus::worker_for(&s, 7));
        assert_eq!(InMemoryEventBus::worker_for(&s, 1), 0);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        // The mapping is the FNV-1a of the text form, as it always was (checkpoints are kept
        // per worker, so a stream must not move to another worker between versions).
        for kind in [
            lendkit_core::ids::StreamKind::Book,
            lendkit_core::ids::StreamKind::Rental,
        ] {
            for id in STREAMS {
                let s = StreamId::new(kind, id);
                assert_eq!(stream_hash(&s), fnv1a(s.to_string().as_bytes()), "{s}");
            }
        }
    }

    #[test]
    fn join_checks_worker_counts() {
        let bus = InMemoryEventBus::new();
        assert!(block_on(bus.join("g", 0)).is_err());
        block_on(bus.join("g", 2)).unwrap();
        block_on(bus.join("g", 2)).unwrap();
        assert!(block_on(bus.join("g", 3)).is_err());
        assert!(block_on(bus.receive("nope", 0, 10)).is_err());
        assert!(block_on(bus.receive("g", 2, 10)).is_err());
        assert!(block_on(bus.ack("g", 2, 10)).is_err());
        assert!(block_on(bus.ack("nope", 0, 10)).is_err());
    }

    #[test]
    fn each_event_goes_to_exactly_one_worker_in_stream_order() {
        let bus = InMemoryEventBus::new();
        block_on(bus.join("g", 2)).unwrap();
        let all = events(30, &STREAMS);
        block_on(bus.publish(&all)).unwrap();
        assert_eq!(bus.pending("g"), 30);

        let w0 = block_on(bus.receive("g", 0, usize::MAX)).unwrap();
        let w1 = block_on(bus.receive("g", 1, usize::MAX)).unwrap();
        assert_eq!(w0.len() + w1.len(), 30);
        let mut positions: Vec<u64> = w0.iter().chain(&w1).map(|e| e.position).collect();
        positions.sort_unstable();
        assert_eq!(positions, (1..=30).collect::<Vec<_>>());
        for stream in STREAMS {
            let in0 = w0.iter().any(|e| e.stream.id == stream);
            let in1 = w1.iter().any(|e| e.stream.id == stream);
            assert!(in0 != in1, "stream {stream} must go to exactly one worker");
        }
        for queue in [&w0, &w1] {
            assert!(queue.windows(2).all(|w| w[0].position < w[1].position));
        }
    }

    #[test]
    fn receive_redelivers_until_ack() {
        let bus = InMemoryEventBus::new();
        block_on(bus.join("g", 1)).unwrap();
        block_on(bus.publish(&events(5, &STREAMS))).unwrap();

        let first = block_on(bus.receive("g", 0, 3)).unwrap();
        assert_eq!(
            first.iter().map(|e| e.position).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(block_on(bus.receive("g", 0, 3)).unwrap(), first);

        block_on(bus.ack("g", 0, 2)).unwrap();
        assert_eq!(bus.pending("g"), 3);
        let next = block_on(bus.receive("g", 0, 10)).unwrap();
        assert_eq!(
            next.iter().map(|e| e.position).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        block_on(bus.ack("g", 0, 5)).unwrap();
        assert!(block_on(bus.receive("g", 0, 10)).unwrap().is_empty());
        assert_eq!(bus.pending("g"), 0);
    }

    #[test]
    fn a_queue_stays_in_position_order_whatever_the_publishing_order() {
        // `ack` removes a prefix, so an event published late (an older position) must take its
        // place rather than the back.
        let bus = InMemoryEventBus::new();
        block_on(bus.join("g", 1)).unwrap();
        let all = events(6, &STREAMS);
        block_on(bus.publish(&[all[0].clone(), all[1].clone(), all[4].clone()])).unwrap();
        block_on(bus.publish(&[all[2].clone(), all[5].clone(), all[3].clone()])).unwrap();
        let positions = |bus: &InMemoryEventBus| {
            block_on(bus.receive("g", 0, usize::MAX))
                .unwrap()
                .iter()
                .map(|e| e.position)
                .collect::<Vec<_>>()
        };
        assert_eq!(positions(&bus), [1, 2, 3, 4, 5, 6]);
        block_on(bus.ack("g", 0, 3)).unwrap();
        assert_eq!(positions(&bus), [4, 5, 6]);
        block_on(bus.ack("g", 0, 0)).unwrap();
        assert_eq!(positions(&bus), [4, 5, 6]);
        block_on(bus.ack("g", 0, 9)).unwrap();
        assert!(positions(&bus).is_empty());
    }

    #[test]
    fn groups_are_independent() {
        let bus = InMemoryEventBus::new();
        block_on(bus.join("a", 2)).unwrap();
        block_on(bus.publish(&events(4, &STREAMS))).unwrap();
        block_on(bus.join("b", 1)).unwrap();
        block_on(bus.publish(&events(10, &STREAMS)[4..])).unwrap();

        // `b` joined late: it sees only what was published after.
        assert_eq!(bus.pending("a"), 10);
        assert_eq!(bus.pending("b"), 6);
        let b = block_on(bus.receive("b", 0, usize::MAX)).unwrap();
        assert_eq!(
            b.iter().map(|e| e.position).collect::<Vec<_>>(),
            (5..=10).collect::<Vec<_>>()
        );

        block_on(bus.ack("b", 0, 10)).unwrap();
        assert_eq!(bus.pending("b"), 0);
        assert_eq!(bus.pending("a"), 10);
        assert_eq!(bus.pending("unknown"), 0);
    }
}
