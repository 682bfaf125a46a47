//! [`Durability`]: when a durable event store's appends reach the disk. Shared by the durable
//! adapters (`SledEventStore`, `SqliteEventStore`); each documents what the two settings mean
//! for its engine.

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Flush before every append returns (concurrent appends share a flush). Survives a crash
    /// or power loss of everything that returned success. On sled: sled's flush, then an
    /// `fdatasync` of its data file, since sled 0.34 syncs with `sync_file_range` only. On
    /// SQLite: `synchronous=FULL` (the write-ahead log is synced at every commit).
    #[default]
    EveryCommit,
    /// Flush in the background every `n` milliseconds. Faster; a crash may lose the appends of
    /// the last interval (whole appends only, never half of one).
    Periodic(u64),
}
