//! [`InMemoryEventStore`]: the event log kept in process memory.

use async_trait::async_trait;
use lendkit_core::error::StoreError;
use lendkit_core::event::{Envelope, Recorded};
use lendkit_core::ids::{CommandId, StreamId};
use lendkit_core::ports::{CommandRecord, Commit, DeadLetter, EventStore, StreamAppend};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// An [`EventStore`] held in memory, for tests, examples and embedded use without durability.
///
/// One mutex guards the whole state, so every [`append`](EventStore::append) is a single
/// transaction: all version checks, the position assignment and the command-id records happen
/// under that one lock. Positions are gap-free from 1 in commit order. Everything is lost when
/// the store is dropped.
#[derive(Debug, Default)]
pub struct InMemoryEventStore {
    state: Mutex<State>,
}

/// The most events the in-memory log holds: positions are kept as `u32` (far more than fit in
/// any machine's memory at 50 bytes or more per event).
const MAX_EVENTS: u64 = u32::MAX as u64;

#[derive(Debug, Default)]
struct State {
    /// The global log, each event in its compact stored form ([`Envelope::encode_compact`]):
    /// a few bytes in a shared chunk instead of the decoded envelope's dozen separately
    /// allocated strings, for a little more work per append than copying the envelope. A
    /// library reads its own log rarely (it keeps aggregates folded, and relays its own appends
    /// from memory); a read decodes.
    log: Log,
    /// Where an event is encoded before it is copied into the log (kept, so an append
    /// allocates nothing for it).
    scratch: Vec<u8>,
    /// Each stream's positions, in version order (so a stream's version is its length).
    streams: Streams,
    /// The applied command ids and what each stored.
    commands: Commands,
    /// The last position saved per consumer.
    checkpoints: HashMap<String, u64>,
    /// Dead letters, oldest first.
    dead_letters: Vec<DeadLetter>,
}

/// A hash table of 32-bit values found by a 32-bit tag of a key's hash, without the keys:
/// one word a value (the tag in the high half), hashed by the tag alone, so the table grows
/// without reading a key back. Tags may collide: the caller confirms a match its own way (the
/// command table and the stream table each read the log).
#[derive(Debug, Default)]
struct Tagged {
    hasher: foldhash::fast::RandomState,
    words: hashbrown::HashTable<u64>,
}

impl Tagged {
    /// The tag of `key`: the high half of its 64-bit hash.
    fn tag<K: std::hash::Hash + ?Sized>(&self, key: &K) -> u32 {
        (std::hash::BuildHasher::hash_one(&self.hasher, key) >> 32) as u32
    }

    /// The table's hash of a tag: spread over 64 bits (the table takes its slot from the low
    /// bits and a check byte from the high ones).
    fn spread(tag: u32) -> u64 {
        u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// The first value under `tag` that `is` accepts.
    fn find(&self, tag: u32, is: impl Fn(u32) -> bool) -> Option<u32> {
        self.words
            .find(Self::spread(tag), |&w| {
                (w >> 32) as u32 == tag && is(w as u32)
            })
            .map(|&w| w as u32)
    }

    /// Adds `value` under `tag` (beside any other value under it).
    fn insert(&mut self, tag: u32, value: u32) {
        let word = (u64::from(tag) << 32) | u64::from(value);
        self.words
            .insert_unique(Self::spread(tag), word, |&w| Self::spread((w >> 32) as u32));
    }
}

/// The applied command ids: where each one's events start, and its fingerprint.
///
/// One commit's positions are consecutive — [`append`](EventStore::append) gives them out one
/// after another under the lock — and the log marks the last of them, so a first position
/// names them all. And the engine's commits carry their id in every event they store, so the
/// id need not be kept a second time as text: a 32-bit tag of its hash finds the first
/// position, and the first event there, read back, confirms the id. Each such command is one
/// word in a hash table (8 bytes and the table's control byte, where a boxed id of 32–40
/// characters with its record took ten times that). A commit whose events carry another id, or
/// whose tag another id already holds, is kept by its text in `named` (so is one past the
/// 32-bit positions); every lookup looks there too, so nothing depends on the tags being free
/// of collisions. A fingerprint of 32 lowercase hex digits (what
/// [`Command::fingerprint`](lendkit_core::Command::fingerprint) gives) is kept as 16 bytes in
/// the log, beside the commit's first event; any other one by its text in `texts`.
#[derive(Debug, Default)]
struct Commands {
    /// Per command, its first position by the tag of its id.
    hashed: Tagged,
    /// By the id itself: the first positions of the commits `hashed` cannot hold.
    named: lendkit_core::ids::IdMap<Box<str>, u64>,
    /// By first position: the fingerprints that are not 32 lowercase hex digits (not empty).
    texts: lendkit_core::ids::IdMap<u64, Box<str>>,
}

impl Commands {
    /// The first position `hashed` holds for `tag`, if any (at most one: a second id with the
    /// same tag goes to `named`).
    fn tagged(&self, tag: u32) -> Option<u32> {
        self.hashed.find(tag, |_| true)
    }

    /// The first position of the events `id` stored, if it was applied.
    fn find(&self, id: &str, log: &Log) -> Result<Option<u64>, StoreError> {
        if let Some(&first) = self.named.get(id) {
            return Ok(Some(first));
        }
        let Some(first) = self.tagged(self.hashed.tag(id)) else {
            return Ok(None);
        };
        let first = u64::from(first);
        Ok((*first_command_id(log, first)? == *id).then_some(first))
    }

    /// Notes that `id` stored events from `first` on; `first_carries_id`: the first event
    /// carries `id` as its command id (so [`find`](Commands::find) can confirm it there).
    fn record(&mut self, id: &str, first: u64, first_carries_id: bool) {
        let tag = self.hashed.tag(id);
        match u32::try_from(first) {
            Ok(at) if first_carries_id && self.tagged(tag).is_none() => {
                self.hashed.insert(tag, at);
            }
            _ => {
                self.named.insert(id.into(), first);
            }
        }
    }

    /// The fingerprint the command whose events start at `first` was stored with.
    fn fingerprint(&self, first: u64, log: &Log) -> String {
        if let Some(bytes) = log.digest(first) {
            return lendkit_core::ids::hex32(u128::from_be_bytes(bytes));
        }
        self.texts
            .get(&first)
            .map_or_else(String::new, |text| text.to_string())
    }
}

/// The log's bytes: events back to back in chunks of [`Log::CHUNK`] bytes (one allocated when
/// the last is full; an event longer than a chunk gets one of its own), and where each starts.
/// Per event that is its bytes and a 32-bit start word, where a box of its own cost two words
/// and the allocator's rounding; and an append allocates nothing but, now and then, a chunk.
/// The words are kept in blocks of [`Log::BLOCK`] that never grow (a vector grown by doubling
/// holds, on average, a third more than it uses, and frees a copy of itself each time it grows).
#[derive(Debug, Default)]
struct Log {
    chunks: Vec<Vec<u8>>,
    /// By position − 1, [`Log::BLOCK`] to a block.
    starts: Vec<Starts>,
}

/// A block of start words: the chunk its first event is in, and per event a word of the
/// event's chunk as an offset from that one (bits 20–31: an event starts at most one chunk
/// after the one before it, so the offsets of [`Log::BLOCK`] events are below 2^12), whether a
/// 16-byte digest precedes it there ([`Log::DIGEST`]), whether it is the last event of its
/// commit ([`Log::LAST`]), and where it starts in its chunk (low 18 bits: an event starts
/// below [`Log::CHUNK`] = 2^18, or at 0 in a chunk of its own). It ends where the next event of
/// the same chunk starts, or where the chunk's bytes end.
#[derive(Debug)]
struct Starts {
    chunk: u32,
    words: Vec<u32>,
}

impl Log {
    /// Bytes per chunk: large enough that the allocator hands out untouched pages (resident
    /// only as they fill), small enough that the last, partly filled one costs little. An
    /// event starts within the first `CHUNK` bytes of its chunk (see [`Starts`]).
    const CHUNK: usize = 1 << Self::OFFSET_BITS;
    const OFFSET_BITS: u32 = 18;
    /// Start words per block (16 KiB of them): their chunk offsets, 0 to `BLOCK` − 1, fit a
    /// word's 12 bits above [`Log::CHUNK_SHIFT`].
    const BLOCK: usize = 4096;
    /// The flag of a start word whose event is preceded by its commit's fingerprint as 16
    /// bytes.
    const DIGEST: u32 = 1 << 18;
    /// The flag of a start word whose event is the last of its commit.
    const LAST: u32 = 1 << 19;
    /// Where a start word's chunk offset begins.
    const CHUNK_SHIFT: u32 = 20;

    /// How many events the log holds (the head position).
    fn len(&self) -> u64 {
        match self.starts.last() {
            Some(last) => ((self.starts.len() - 1) * Self::BLOCK + last.words.len()) as u64,
            None => 0,
        }
    }

    /// The event at index `i` (position − 1): its chunk's index, where it starts there, and
    /// its flags ([`Log::DIGEST`], [`Log::LAST`]).
    fn start(&self, i: usize) -> Option<(usize, usize, u32)> {
        let block = self.starts.get(i / Self::BLOCK)?;
        let word = *block.words.get(i % Self::BLOCK)?;
        let chunk = block.chunk as usize + (word >> Self::CHUNK_SHIFT) as usize;
        let offset = (word & ((1 << Self::OFFSET_BITS) - 1)) as usize;
        Some((chunk, offset, word & (Self::DIGEST | Self::LAST)))
    }

    /// Adds an event's bytes at the next position, with its commit's fingerprint as `digest`
    /// (the first event of a commit that has one) and `last` if it ends its commit.
    fn push(&mut self, bytes: &[u8], digest: Option<&[u8; 16]>, last: bool) {
        let size = bytes.len() + digest.map_or(0, |d| d.len());
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.len() < Self::CHUNK && c.capacity() - c.len() >= size);
        if !fits {
            self.chunks.push(Vec::with_capacity(Self::CHUNK.max(size)));
        }
        // Not empty: a chunk was pushed above if there was none (so neither line can panic).
        let chunk = self.chunks.len() - 1;
        if self
            .starts
            .last()
            .is_none_or(|b| b.words.len() == Self::BLOCK)
        {
            self.starts.push(Starts {
                // Each event adds at most one chunk and the log holds at most MAX_EVENTS
                // (u32::MAX) events, so the chunks' count fits a u32.
                chunk: chunk as u32,
                words: Vec::with_capacity(Self::BLOCK),
            });
        }
        let into = &mut self.chunks[chunk];
        // Not empty: a block with room was pushed above if the last was full or missing.
        let Some(block) = self.starts.last_mut() else {
            return;
        };
        // The block's events began at its `chunk` and each added at most one: below BLOCK
        // (2^12) chunks on. The offset is below CHUNK (2^18): checked by `fits`, or 0 in a
        // fresh chunk.
        let mut word = ((chunk as u32 - block.chunk) << Self::CHUNK_SHIFT) | into.len() as u32;
        if let Some(digest) = digest {
            word |= Self::DIGEST;
            into.extend_from_slice(digest);
        }
        if last {
            word |= Self::LAST;
        }
        into.extend_from_slice(bytes);
        block.words.push(word);
    }

    /// The event's bytes (with its digest, if it has one) and its flags.
    fn record(&self, position: u64) -> Option<(&[u8], u32)> {
        let i = index_of(position)?;
        let (chunk, from, flags) = self.start(i)?;
        let bytes = self.chunks.get(chunk)?;
        let to = match self.start(i + 1) {
            Some((next, to, _)) if next == chunk => to,
            _ => bytes.len(),
        };
        Some((bytes.get(from..to)?, flags))
    }

    /// The bytes of the event at `position` (from 1).
    fn get(&self, position: u64) -> Option<&[u8]> {
        let (bytes, flags) = self.record(position)?;
        if flags & Self::DIGEST == 0 {
            Some(bytes)
        } else {
            bytes.get(16..)
        }
    }

    /// The 16-byte fingerprint kept beside the event at `position`, if it has one.
    fn digest(&self, position: u64) -> Option<[u8; 16]> {
        let (bytes, flags) = self.record(position)?;
        if flags & Self::DIGEST == 0 {
            return None;
        }
        bytes.get(..16)?.try_into().ok()
    }

    /// The last position of the commit whose events start at `first`.
    fn commit_end(&self, first: u64) -> Result<u64, StoreError> {
        let head = self.len();
        (first..=head)
            .find(|&p| {
                index_of(p)
                    .and_then(|i| self.start(i))
                    .is_some_and(|(_, _, flags)| flags & Self::LAST != 0)
            })
            .ok_or_else(|| StoreError::Corrupt {
                position: first,
                reason: "a command's events do not end in the log".into(),
            })
    }
}

// The start word's layout, checked when lendkit is built: the flags sit between the offset
// and the chunk offset, and a block's chunk offsets fit above them.
const _: () = assert!(
    Log::DIGEST == 1 << Log::OFFSET_BITS
        && Log::LAST == Log::DIGEST << 1
        && Log::CHUNK_SHIFT == Log::OFFSET_BITS + 2
        && Log::BLOCK <= 1 << (32 - Log::CHUNK_SHIFT)
);

/// The command id of the event at `position`, read back from the log.
fn first_command_id(log: &Log, position: u64) -> Result<std::sync::Arc<str>, StoreError> {
    let bytes = log.get(position).ok_or_else(|| StoreError::Corrupt {
        position,
        reason: "a command's first event is missing from the log".into(),
    })?;
    Ok(decode(position, bytes)?.command_id.0)
}

/// Each stream's positions, in version order, found by the hash of the stream's id.
///
/// The streams sit in the order they began, in blocks of [`Streams::BLOCK`] that never grow
/// (nor are copied as a table grown by doubling is), 16 bytes each: up to four positions in
/// place — a rental's whole life — or, for a longer stream, where its vector is in `spilled`.
/// The stream's id is not kept here at all: the log holds it in the header of the stream's
/// first event. The hash table holds a word per stream, a 32-bit tag of the id's hash and the
/// slot (hashed by the tag alone, so the table grows without the ids); a tag match is confirmed
/// by reading the first event's stream from the log, so two streams with one tag are both
/// found. Positions are `u32`s: an append past [`MAX_EVENTS`] is refused.
#[derive(Debug, Default)]
struct Streams {
    /// Per stream, its slot in `all` by the tag of its id.
    index: Tagged,
    /// The streams' positions ([`Streams::at`] reads them), [`Streams::BLOCK`] to a block.
    all: Vec<Vec<[u32; 4]>>,
    /// The positions of the streams of more than four events.
    spilled: Vec<Vec<u32>>,
}

impl Streams {
    /// Streams per block (at 16 bytes each, 64 KiB).
    const BLOCK: usize = 4096;

    /// The positions kept in `slot`: the positions themselves, then zeros (no event is at
    /// position 0), or a zero and the index of the stream's vector in `spilled`.
    fn at(&self, slot: u32) -> Option<&[u32]> {
        let slot = slot as usize;
        let kept = self.all.get(slot / Self::BLOCK)?.get(slot % Self::BLOCK)?;
        if kept[0] == 0 {
            return self.spilled.get(kept[1] as usize).map(Vec::as_slice);
        }
        let used = kept.iter().take_while(|&&p| p != 0).count();
        Some(&kept[..used])
    }

    /// Whether the stream in `slot` is `stream`: its first event, in `log`, says. (The log's
    /// bytes are this store's own encoding; bytes it cannot read are no match.)
    fn holds(&self, slot: u32, stream: &StreamId, log: &Log) -> bool {
        self.at(slot)
            .and_then(|positions| positions.first())
            .and_then(|&first| log.get(u64::from(first)))
            .is_some_and(|bytes| Envelope::is_stored_in(bytes, stream).unwrap_or(false))
    }

    /// The slot of `stream`, if it has events.
    fn slot(&self, stream: &StreamId, tag: u32, log: &Log) -> Option<u32> {
        self.index.find(tag, |slot| self.holds(slot, stream, log))
    }

    /// The slot of `stream`, if it has events.
    fn find(&self, stream: &StreamId, log: &Log) -> Option<u32> {
        self.slot(stream, self.index.tag(stream), log)
    }

    /// How many events the stream in `slot` has (its version); none without a slot.
    fn count(&self, slot: Option<u32>) -> u64 {
        slot.and_then(|slot| self.at(slot))
            .map_or(0, |positions| positions.len() as u64)
    }

    /// The positions of `stream`'s events, in version order (none if it has none).
    fn get(&self, stream: &StreamId, log: &Log) -> &[u32] {
        self.find(stream, log)
            .and_then(|slot| self.at(slot))
            .unwrap_or_default()
    }

    /// Adds `positions` (from 1; their events already in `log`) to the end of `stream`'s, in
    /// `found` if it was found there before them.
    fn extend(
        &mut self,
        stream: &StreamId,
        found: Option<u32>,
        positions: std::ops::RangeInclusive<u32>,
        log: &Log,
    ) {
        let mut positions = positions.filter(|&p| p != 0);
        let slot = match found {
            Some(slot) => slot,
            None => {
                // Not found before: looked up again, as an earlier append of the same commit
                // may have begun it.
                let tag = self.index.tag(stream);
                match self.slot(stream, tag, log) {
                    Some(slot) => slot,
                    None => {
                        // A new stream's first position goes in with it (so a slot's first
                        // word is 0 only when its positions are spilled).
                        let Some(first) = positions.next() else {
                            return;
                        };
                        self.begin(tag, first)
                    }
                }
            }
        };
        for position in positions {
            self.push(slot, position);
        }
    }

    /// A new stream's slot, holding its `first` position, found by `tag`.
    fn begin(&mut self, tag: u32, first: u32) -> u32 {
        if self
            .all
            .last()
            .is_none_or(|block| block.len() == Self::BLOCK)
        {
            self.all.push(Vec::with_capacity(Self::BLOCK));
        }
        // There are fewer streams than events, and so fewer than 2^32.
        let mut slot = ((self.all.len() - 1) * Self::BLOCK) as u32;
        // Not empty: a block with room was pushed above if the last was full or missing.
        if let Some(block) = self.all.last_mut() {
            slot += block.len() as u32;
            block.push([first, 0, 0, 0]);
        }
        self.index.insert(tag, slot);
        slot
    }

    /// Adds `position` at the end of the positions in `slot`.
    fn push(&mut self, slot: u32, position: u32) {
        let slot = slot as usize;
        let Some(kept) = self
            .all
            .get_mut(slot / Self::BLOCK)
            .and_then(|block| block.get_mut(slot % Self::BLOCK))
        else {
            return;
        };
        if kept[0] == 0 {
            if let Some(many) = self.spilled.get_mut(kept[1] as usize) {
                many.push(position);
            }
        } else if let Some(free) = kept.iter_mut().find(|p| **p == 0) {
            *free = position;
        } else {
            let mut many = Vec::with_capacity(2 * kept.len());
            many.extend_from_slice(kept);
            many.push(position);
            // Fewer spilled streams than streams: the index fits a u32.
            *kept = [0, self.spilled.len() as u32, 0, 0];
            self.spilled.push(many);
        }
    }
}

/// A fingerprint of exactly 32 lowercase hex digits as its 16 bytes (formatting them back
/// gives the same text); anything else is kept as text.
fn digest_bytes(fingerprint: &str) -> Option<[u8; 16]> {
    lendkit_core::ids::parse_hex32(fingerprint).map(u128::to_be_bytes)
}

impl State {
    fn head(&self) -> u64 {
        self.log.len()
    }

    fn events_at(
        &self,
        positions: impl IntoIterator<Item = u64>,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.read_at(positions, Envelope::decode)
    }

    /// The events at `positions` (those the log holds), each read by `decode`.
    fn read_at<T>(
        &self,
        positions: impl IntoIterator<Item = u64>,
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<Vec<T>, StoreError> {
        let positions = positions.into_iter();
        let mut events = Vec::with_capacity(positions.size_hint().0);
        for position in positions {
            if let Some(bytes) = self.log.get(position) {
                events.push(
                    decode(bytes).map_err(|reason| StoreError::Corrupt { position, reason })?,
                );
            }
        }
        Ok(events)
    }
}

/// The envelope stored at `position`. The bytes were encoded by this store from an envelope,
/// so an error here is a bug in the encoding; it is reported, not hidden.
fn decode(position: u64, bytes: &[u8]) -> Result<Envelope, StoreError> {
    Envelope::decode(bytes).map_err(|reason| StoreError::Corrupt { position, reason })
}

/// Refuses a commit of `events` more events than a log of `head` events has room for.
fn room_for(head: u64, events: usize) -> Result<(), StoreError> {
    if head.saturating_add(events as u64) > MAX_EVENTS {
        return Err(StoreError::Backend(format!(
            "the in-memory log holds at most {MAX_EVENTS} events; it has {head}, and a commit of {events} more was refused"
        )));
    }
    Ok(())
}

/// The log index of position `p` (positions start at 1).
fn index_of(position: u64) -> Option<usize> {
    usize::try_from(position.checked_sub(1)?).ok()
}

/// Checks that an append's envelopes belong to its stream and carry the next versions.
pub(crate) fn check_shape(append: &StreamAppend) -> Result<(), StoreError> {
    let mut want = append.expected_version;
    for envelope in &append.events {
        want = want.saturating_add(1);
        if envelope.stream != append.stream {
            return Err(StoreError::Backend(format!(
                "append to stream {} contains event {} of stream {}; every event must belong to the stream it is appended to",
                append.stream, envelope.event_id, envelope.stream
            )));
        }
        if envelope.version != want {
            return Err(StoreError::Backend(format!(
                "append to stream {} at expected version {} contains event {} with version {}, not {want}; \
                 versions must run from expected_version + 1 without gaps",
                append.stream, append.expected_version, envelope.event_id, envelope.version
            )));
        }
    }
    Ok(())
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(&self, commit: Commit) -> Result<Vec<Envelope>, StoreError> {
        let appends = commit.appends;
        for append in &appends {
            check_shape(append)?;
        }
        let writes = appends.iter().any(|a| !a.events.is_empty());
        let mut state = self.lock();
        // Each append's stream's slot, where it has one already: found once, for the check and
        // for the positions added.
        let mut slots = Vec::with_capacity(appends.len());
        for (i, append) in appends.iter().enumerate() {
            let slot = state.streams.find(&append.stream, &state.log);
            slots.push(slot);
            // A stream named twice in one call is checked against its own earlier part: the
            // version the last earlier append of it leaves (that append passed this check, so
            // its expected version was the stream's then). A commit names a stream or two, so
            // looking back is cheaper than keeping a map.
            let actual = match appends[..i]
                .iter()
                .rev()
                .find(|a| a.stream == append.stream)
            {
                Some(earlier) => earlier.expected_version + earlier.events.len() as u64,
                None => state.streams.count(slot),
            };
            if actual != append.expected_version {
                return Err(StoreError::Conflict {
                    stream: append.stream.to_string(),
                    expected: append.expected_version,
                    actual,
                });
            }
        }
        if writes
            && state
                .commands
                .find(commit.command_id.as_str(), &state.log)?
                .is_some()
        {
            return Err(StoreError::CommandApplied(commit.command_id.to_string()));
        }
        // Checked before anything is stored, so a refusal stores nothing.
        let events: usize = appends.iter().map(|a| a.events.len()).sum();
        room_for(state.head(), events)?;
        let first = state.head() + 1;
        let first_carries_id = appends
            .iter()
            .find_map(|a| a.events.first())
            .is_some_and(|e| e.command_id == commit.command_id);
        // The fingerprint goes beside the first event when it is 16 bytes' worth of digits.
        let digest = digest_bytes(&commit.fingerprint);
        let mut stored = Vec::with_capacity(events);
        for (append, slot) in appends.into_iter().zip(slots) {
            if append.events.is_empty() {
                continue;
            }
            let from = state.head() + 1;
            for mut envelope in append.events {
                envelope.position = state.head() + 1;
                let State { log, scratch, .. } = &mut *state;
                scratch.clear();
                envelope.encode_compact_into(scratch);
                let beside = digest.as_ref().filter(|_| envelope.position == first);
                log.push(scratch, beside, stored.len() + 1 == events);
                stored.push(envelope);
            }
            let to = state.head();
            // Both at most MAX_EVENTS (checked above), so they fit a u32.
            let State { streams, log, .. } = &mut *state;
            streams.extend(&append.stream, slot, from as u32..=to as u32, log);
        }
        if writes {
            let commands = &mut state.commands;
            commands.record(commit.command_id.as_str(), first, first_carries_id);
            if digest.is_none() && !commit.fingerprint.is_empty() {
                commands
                    .texts
                    .insert(first, commit.fingerprint.into_boxed_str());
            }
        }
        Ok(stored)
    }

    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
        let state = self.lock();
        let positions = state.streams.get(stream, &state.log);
        state.events_at(positions.iter().map(|&p| u64::from(p)))
    }

    async fn read_stream_from(
        &self,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<Envelope>, StoreError> {
        let state = self.lock();
        let skip = usize::try_from(after_version).unwrap_or(usize::MAX);
        let newer = state
            .streams
            .get(stream, &state.log)
            .get(skip..)
            .unwrap_or_default();
        state.events_at(newer.iter().map(|&p| u64::from(p)))
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let state = self.lock();
        let last = after.saturating_add(limit as u64).min(state.head());
        state.events_at(after.saturating_add(1)..=last)
    }

    async fn read_recorded(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, StoreError> {
        let state = self.lock();
        let last = after.saturating_add(limit as u64).min(state.head());
        state.read_at(after.saturating_add(1)..=last, Envelope::decode_recorded)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.lock().head())
    }

    async fn command(&self, command: &CommandId) -> Result<Option<CommandRecord>, StoreError> {
        let state = self.lock();
        let Some(first) = state.commands.find(command.as_str(), &state.log)? else {
            return Ok(None);
        };
        Ok(Some(CommandRecord {
            fingerprint: state.commands.fingerprint(first, &state.log),
            events: state.events_at(first..=state.log.commit_end(first)?)?,
        }))
    }

    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().checkpoints.get(consumer).copied())
    }

    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut all: Vec<(String, u64)> = self
            .lock()
            .checkpoints
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        all.sort();
        Ok(all)
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.lock()
            .checkpoints
            .insert(consumer.to_owned(), position);
        Ok(())
    }

    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError> {
        let mut state = self.lock();
        match state.dead_letters.iter_mut().find(|l| l.id == letter.id) {
            Some(existing) => *existing = letter,
            None => state.dead_letters.push(letter),
        }
        Ok(())
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.lock().dead_letters.clone())
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let before = state.dead_letters.len();
        state.dead_letters.retain(|l| l.id != id);
        Ok(state.dead_letters.len() != before)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;
    use futures::executor::block_on;
    use lendkit_core::ids::{Actor, MemberId, StreamKind, Timestamp};
    use lendkit_core::members::MemberEvent;

    fn stream(id: &str) -> StreamId {
        StreamId::new(StreamKind::Member, id)
    }

    fn envelope(stream: &StreamId, version: u64) -> Envelope {
        Envelope {
            event_id: Envelope::id_for(stream, version),
            stream: stream.clone(),
            version,
            position: 0,
            occurred_at: Timestamp(0),
            correlation_id: stream.id.clone(),
            causation_id: "c".into(),
            command_id: CommandId::new("c"),
            actor: Actor::System,
            event: MemberEvent::MemberJoined {
                member: MemberId::new(stream.id.clone()),
                name: "n".into(),
                contact: None,
                group: None,
                joined_at: None,
            }
            .into(),
        }
    }

    fn commit(appends: Vec<StreamAppend>) -> Commit {
        Commit {
            command_id: CommandId::generate(),
            fingerprint: String::new(),
            appends,
        }
    }

    fn append(stream: &StreamId, expected: u64, events: Vec<Envelope>) -> StreamAppend {
        StreamAppend {
            stream: stream.clone(),
            expected_version: expected,
            events,
        }
    }

    #[test]
    fn rejects_events_of_another_stream() {
        let store = InMemoryEventStore::new();
        let (a, b) = (stream("a"), stream("b"));
        let err =
            block_on(store.append(commit(vec![append(&a, 0, vec![envelope(&b, 1)])]))).unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend(m) if m.contains("member:a") && m.contains("member:b")),
            "{err:?}"
        );
        assert_eq!(block_on(store.head()).unwrap(), 0);
    }

    #[test]
    fn rejects_versions_that_do_not_follow_the_expected_one() {
        let store = InMemoryEventStore::new();
        let a = stream("a");
        for versions in [vec![2], vec![1, 3], vec![0]] {
            let events = versions.iter().map(|&v| envelope(&a, v)).collect();
            let err = block_on(store.append(commit(vec![append(&a, 0, events)]))).unwrap_err();
            assert!(
                matches!(&err, StoreError::Backend(m) if m.contains("version")),
                "{versions:?}: {err:?}"
            );
        }
        assert_eq!(block_on(store.head()).unwrap(), 0);
    }

    #[test]
    fn a_stream_named_twice_is_checked_against_its_own_first_part() {
        let store = InMemoryEventStore::new();
        let a = stream("a");
        let stored = block_on(store.append(commit(vec![
            append(&a, 0, vec![envelope(&a, 1)]),
            append(&a, 1, vec![envelope(&a, 2)]),
        ])))
        .unwrap();
        assert_eq!(
            stored.iter().map(|e| e.position).collect::<Vec<_>>(),
            [1, 2]
        );
        // One stream of two events, not two streams begun by one commit.
        let read = block_on(store.read_stream(&a)).unwrap();
        assert_eq!(read.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(store.lock().streams.all[0].len(), 1);
        let err = block_on(store.append(commit(vec![
            append(&a, 2, vec![envelope(&a, 3)]),
            append(&a, 2, vec![envelope(&a, 3)]),
        ])))
        .unwrap_err();
        assert_eq!(
            err,
            StoreError::Conflict {
                stream: "member:a".into(),
                expected: 2,
                actual: 3
            }
        );
        assert_eq!(block_on(store.head()).unwrap(), 2);
    }

    #[test]
    fn positions_given_by_the_caller_are_overwritten() {
        let store = InMemoryEventStore::new();
        let a = stream("a");
        let mut e = envelope(&a, 1);
        e.position = 42;
        let stored = block_on(store.append(commit(vec![append(&a, 0, vec![e])]))).unwrap();
        assert_eq!(stored[0].position, 1);
        assert_eq!(block_on(store.read_all(0, 10)).unwrap(), stored);
        assert!(block_on(store.read_all(u64::MAX, 10)).unwrap().is_empty());
    }

    fn carrying(mut e: Envelope, id: &str) -> Envelope {
        e.command_id = CommandId::new(id);
        e
    }

    fn commit_as(id: &str, fingerprint: &str, appends: Vec<StreamAppend>) -> Commit {
        Commit {
            command_id: CommandId::new(id),
            fingerprint: fingerprint.into(),
            appends,
        }
    }

    fn positions(record: &CommandRecord) -> Vec<u64> {
        record.events.iter().map(|e| e.position).collect()
    }

    #[test]
    fn a_command_is_found_whether_its_events_carry_its_id_or_another() {
        let store = InMemoryEventStore::new();
        let a = stream("a");
        let digest = "0123456789abcdef0123456789abcdef";
        // Found by the hash of its id, confirmed by the id its first event carries.
        let events = vec![
            carrying(envelope(&a, 1), "c-1"),
            carrying(envelope(&a, 2), "c-1"),
        ];
        block_on(store.append(commit_as("c-1", digest, vec![append(&a, 0, events)]))).unwrap();
        // Its event carries c-1 too, right after c-1's own: kept by its text, and c-1's
        // span does not run into it.
        let events = vec![carrying(envelope(&a, 3), "c-1")];
        block_on(store.append(commit_as("c-2", "mine", vec![append(&a, 2, events)]))).unwrap();

        let one = block_on(store.command(&CommandId::new("c-1")))
            .unwrap()
            .unwrap();
        assert_eq!(
            (positions(&one), one.fingerprint.as_str()),
            (vec![1, 2], digest)
        );
        let two = block_on(store.command(&CommandId::new("c-2")))
            .unwrap()
            .unwrap();
        assert_eq!(
            (positions(&two), two.fingerprint.as_str()),
            (vec![3], "mine")
        );
        assert!(block_on(store.command(&CommandId::new("c-3")))
            .unwrap()
            .is_none());
        for id in ["c-1", "c-2"] {
            let again = vec![append(&a, 3, vec![carrying(envelope(&a, 4), id)])];
            let err = block_on(store.append(commit_as(id, "", again))).unwrap_err();
            assert!(
                matches!(&err, StoreError::CommandApplied(c) if c == id),
                "{err:?}"
            );
        }
        assert_eq!(
            block_on(store.head()).unwrap(),
            3,
            "a refused commit stores nothing"
        );
    }

    #[test]
    fn an_id_whose_tag_another_id_holds_is_kept_by_its_text() {
        let a = stream("a");
        let mut log = Log::default();
        for (v, id) in [(1, "x"), (2, "y")] {
            let mut e = carrying(envelope(&a, v), id);
            e.position = v;
            log.push(&e.encode_compact(), None, true);
        }
        let mut commands = Commands::default();
        commands.record("x", 1, true);
        // As if "y" had x's tag: the table's word for y's tag names x's first position, whose
        // event says x.
        let y = commands.hashed.tag("y");
        commands.hashed.insert(y, 1);
        assert_eq!(commands.find("y", &log).unwrap(), None);
        commands.record("y", 2, true);
        assert!(commands.named.contains_key("y"));
        assert_eq!(commands.find("y", &log).unwrap(), Some(2));
        assert_eq!(commands.find("x", &log).unwrap(), Some(1));
    }

    #[test]
    fn a_position_past_32_bits_is_kept_by_the_id() {
        let mut commands = Commands::default();
        commands.record("far", 1 << 32, true);
        assert_eq!(
            commands.find("far", &Log::default()).unwrap(),
            Some(1 << 32)
        );
        assert_eq!(commands.hashed.words.len(), 0);
        commands.record("near", u64::from(u32::MAX), false);
        assert_eq!(
            commands.hashed.words.len(),
            0,
            "its event does not carry the id"
        );
    }

    #[test]
    fn the_table_of_tags_grows_and_still_finds_every_command() {
        let a = stream("a");
        let ids: Vec<String> = (0..5_000).map(|i| format!("cmd-{i}")).collect();
        let mut log = Log::default();
        let mut commands = Commands::default();
        for (v, id) in (1..).zip(&ids) {
            let mut e = carrying(envelope(&a, v), id);
            e.position = v;
            log.push(&e.encode_compact(), None, true);
            commands.record(id, v, true);
        }
        assert_eq!(
            commands.hashed.words.len() + commands.named.len(),
            ids.len()
        );
        for (v, id) in (1..).zip(&ids) {
            assert_eq!(commands.find(id, &log).unwrap(), Some(v), "{id}");
        }
        assert_eq!(commands.find("cmd-5000", &log).unwrap(), None);
    }

    #[test]
    fn a_fingerprint_reads_back_exactly_as_it_was_given() {
        let given = [
            "",
            "0123456789abcdef0123456789abcdef",
            "00000000000000000000000000000000",
            "0123456789ABCDEF0123456789ABCDEF",
            "+123456789abcdef0123456789abcdef",
            "0123456789abcdef",
            "ünïcödé",
        ];
        let store = InMemoryEventStore::new();
        let a = stream("a");
        for (v, fingerprint) in (1..).zip(given) {
            // Two events each, so a digest sits beside a first event and not a last one.
            let events = vec![
                carrying(envelope(&a, 2 * v - 1), &format!("c-{v}")),
                carrying(envelope(&a, 2 * v), &format!("c-{v}")),
            ];
            let id = format!("c-{v}");
            block_on(store.append(commit_as(
                &id,
                fingerprint,
                vec![append(&a, 2 * v - 2, events)],
            )))
            .unwrap();
        }
        for (v, fingerprint) in (1u64..).zip(given) {
            let record = block_on(store.command(&CommandId::new(format!("c-{v}"))))
                .unwrap()
                .unwrap();
            assert_eq!(record.fingerprint, fingerprint);
            assert_eq!(positions(&record), [2 * v - 1, 2 * v]);
        }
        let state = store.lock();
        let digests = (1..=state.log.len())
            .filter(|&p| state.log.digest(p).is_some())
            .count();
        assert_eq!(digests, 2, "lowercase hex digits only");
        assert_eq!(state.commands.texts.len(), 4, "the empty one is not kept");
        drop(state);
        let stream = block_on(store.read_stream(&a)).unwrap();
        assert_eq!(stream.len(), 2 * given.len(), "each event reads back whole");
    }

    #[test]
    fn the_log_gives_back_each_event_s_bytes_across_chunks() {
        let mut log = Log::default();
        // Sizes that fill chunks unevenly, one larger than a chunk, and empty ones.
        let sizes = [
            0,
            1,
            100_000,
            100_000,
            70_000,
            Log::CHUNK + 5,
            3,
            0,
            Log::CHUNK,
            Log::CHUNK - 16,
            7,
        ];
        let events: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 31 + i) as u8).collect())
            .collect();
        // Every third event with a digest beside it (and the one of a chunk's size, so the
        // two overflow a chunk), every other one the last of its commit.
        let digest_of = |i: usize| (i % 3 == 1 || i == 8).then_some([i as u8 ^ 0x5A; 16]);
        for (i, e) in events.iter().enumerate() {
            log.push(e, digest_of(i).as_ref(), i % 2 == 0);
        }
        assert_eq!(log.len(), events.len() as u64);
        for (i, e) in events.iter().enumerate() {
            let position = i as u64 + 1;
            assert_eq!(log.get(position), Some(e.as_slice()), "position {position}");
            assert_eq!(log.digest(position), digest_of(i), "position {position}");
            let end = if i % 2 == 0 { position } else { position + 1 };
            assert_eq!(
                log.commit_end(position).ok(),
                Some(end).filter(|&e| e <= log.len())
            );
        }
        assert_eq!(log.get(0), None);
        assert_eq!(log.get(events.len() as u64 + 1), None);
        assert!(
            log.chunks.len() >= 4,
            "the large events took chunks of their own"
        );
        assert!(log.chunks.iter().all(|c| c.len() <= c.capacity()));
    }

    #[test]
    fn a_block_s_events_may_each_start_a_chunk_of_their_own() {
        let mut log = Log::default();
        // Each event more than half a chunk: every one starts a chunk, so the words of the
        // first block count chunks on from its first, and the second block's first event is
        // in a later chunk than the first block's.
        let big = Log::CHUNK / 2 + 1;
        let count = 40;
        for i in 0..count {
            let bytes = vec![i as u8; big];
            log.push(&bytes, (i % 2 == 0).then_some(&[i as u8; 16]), i % 3 == 0);
        }
        // A full block of small events after them (in the last big event's chunk, which has
        // room), then one more in a new block.
        let smalls = Log::BLOCK - count + 1;
        for i in 0..smalls {
            log.push(&(i as u32).to_le_bytes(), None, true);
        }
        assert_eq!(log.chunks.len(), count);
        assert_eq!(log.starts.len(), 2);
        assert_eq!(log.starts[1].chunk as usize, count - 1);
        for i in 0..count {
            let position = i as u64 + 1;
            assert_eq!(log.get(position), Some(&vec![i as u8; big][..]), "{i}");
            assert_eq!(log.digest(position), (i % 2 == 0).then_some([i as u8; 16]));
            let (chunk, offset, _) = log.start(i).unwrap();
            assert_eq!((chunk, offset), (i, 0));
        }
        for i in [0, smalls - 2, smalls - 1] {
            let position = (count + i) as u64 + 1;
            assert_eq!(
                log.get(position),
                Some(&(i as u32).to_le_bytes()[..]),
                "{i}"
            );
            assert_eq!(log.commit_end(position).ok(), Some(position));
        }
    }

    #[test]
    fn the_log_s_start_words_run_across_blocks() {
        let mut log = Log::default();
        let count = Log::BLOCK * 2 + 3;
        for i in 0..count {
            log.push(&(i as u32).to_le_bytes(), None, true);
        }
        assert_eq!(log.len(), count as u64);
        assert_eq!(log.starts.len(), 3);
        assert!(log.starts.iter().all(|b| b.words.capacity() == Log::BLOCK));
        for i in [0, Log::BLOCK - 1, Log::BLOCK, 2 * Log::BLOCK, count - 1] {
            let position = i as u64 + 1;
            assert_eq!(
                log.get(position),
                Some(&(i as u32).to_le_bytes()[..]),
                "{i}"
            );
        }
    }

    /// Appends `count` events of `stream` to `log`; their positions.
    fn logged(log: &mut Log, stream: &StreamId, count: u32) -> std::ops::RangeInclusive<u32> {
        let from = log.len() as u32 + 1;
        for _ in 0..count {
            let mut e = envelope(stream, 1);
            e.position = log.len() + 1;
            log.push(&e.encode_compact(), None, true);
        }
        from..=log.len() as u32
    }

    #[test]
    fn a_stream_keeps_four_positions_in_place_and_more_spilled() {
        let (mut log, mut streams) = (Log::default(), Streams::default());
        let (a, b, c) = (stream("a"), stream("b"), stream("c"));
        assert!(streams.get(&a, &log).is_empty());
        let mut want = [Vec::new(), Vec::new(), Vec::new()];
        // One event at a time, interleaved, until each has spilled (a first, so its vector
        // is the first spilled: index 0) and grown on.
        for _ in 0..7 {
            for (i, s) in [&a, &b, &c].into_iter().enumerate() {
                let new = logged(&mut log, s, 1);
                want[i].extend(new.clone());
                streams.extend(s, None, new, &log);
            }
        }
        // And several at once.
        let new = logged(&mut log, &b, 3);
        want[1].extend(new.clone());
        streams.extend(&b, None, new, &log);
        for (i, s) in [&a, &b, &c].into_iter().enumerate() {
            assert_eq!(streams.get(s, &log), want[i].as_slice(), "{s}");
        }
        assert_eq!(streams.all[0], [[0, 0, 0, 0], [0, 1, 0, 0], [0, 2, 0, 0]]);
        assert_eq!(streams.spilled.len(), 3);
        // A stream of four stays in place.
        let d = stream("d");
        let new = logged(&mut log, &d, 4);
        streams.extend(&d, None, new.clone(), &log);
        let four: Vec<u32> = new.collect();
        assert_eq!(streams.all[0][3][..], four[..]);
        assert_eq!(streams.get(&d, &log).len(), 4);
        assert_eq!(streams.spilled.len(), 3);
    }

    #[test]
    fn streams_are_found_across_blocks_and_as_the_table_grows() {
        let (mut log, mut streams) = (Log::default(), Streams::default());
        let count = Streams::BLOCK * 2 + 5;
        let ids: Vec<StreamId> = (0..count).map(|i| stream(&format!("s-{i}"))).collect();
        // Each stream begins with one event; every seventh gets four more, one by one.
        let mut want: Vec<Vec<u32>> = vec![Vec::new(); count];
        for (i, id) in ids.iter().enumerate() {
            let new = logged(&mut log, id, 1);
            want[i].extend(new.clone());
            streams.extend(id, None, new, &log);
        }
        for (i, id) in ids.iter().enumerate().step_by(7) {
            for _ in 0..4 {
                let new = logged(&mut log, id, 1);
                want[i].extend(new.clone());
                streams.extend(id, None, new, &log);
            }
        }
        assert_eq!(streams.all.len(), 3);
        assert!(streams.all.iter().all(|b| b.capacity() == Streams::BLOCK));
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(streams.get(id, &log), want[i].as_slice(), "{id}");
        }
        assert!(streams.get(&stream("s-none"), &log).is_empty());
        // The same id of another kind is another stream.
        let book = StreamId::new(StreamKind::Book, "s-0");
        assert!(streams.get(&book, &log).is_empty());
        let new = logged(&mut log, &book, 1);
        streams.extend(&book, None, new.clone(), &log);
        assert_eq!(streams.get(&book, &log), [*new.start()]);
        assert_eq!(streams.get(&ids[0], &log), want[0].as_slice());
    }

    #[test]
    fn two_streams_with_one_tag_are_told_apart_by_the_log() {
        let (mut log, mut streams) = (Log::default(), Streams::default());
        let (a, b) = (stream("a"), stream("b"));
        let first_a = logged(&mut log, &a, 1);
        streams.extend(&a, None, first_a.clone(), &log);
        // `b` begun under `a`'s tag, as a collision of the hashes' high halves would.
        let first_b = logged(&mut log, &b, 1);
        streams.begin(streams.index.tag(&a), *first_b.start());
        let (more_a, more_b) = (logged(&mut log, &a, 1), logged(&mut log, &b, 1));
        // `b` is looked up by its own tag: not found, it would begin again — so look it up
        // as the colliding table holds it, by `a`'s tag.
        let tag_a = streams.index.tag(&a);
        let slot_b = streams.slot(&b, tag_a, &log).expect("b under a's tag");
        let slot_a = streams.slot(&a, tag_a, &log).expect("a");
        assert_ne!(slot_a, slot_b);
        streams.push(slot_b, *more_b.start());
        streams.extend(&a, Some(slot_a), more_a.clone(), &log);
        assert_eq!(streams.get(&a, &log), [*first_a.start(), *more_a.start()]);
        assert_eq!(
            streams.at(slot_b),
            Some(&[*first_b.start(), *more_b.start()][..])
        );
    }

    #[test]
    fn a_commit_past_the_most_events_the_log_holds_is_refused() {
        assert!(room_for(0, 3).is_ok());
        assert!(room_for(MAX_EVENTS - 1, 1).is_ok());
        let err = room_for(MAX_EVENTS - 1, 2).unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend(m) if m.contains("at most 4294967295 events")),
            "{err:?}"
        );
        assert!(room_for(MAX_EVENTS, usize::MAX).is_err());
    }
}
