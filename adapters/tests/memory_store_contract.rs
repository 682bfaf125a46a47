//! The store contract, run against [`InMemoryEventStore`]: one test per check.

use futures::executor::block_on;
use lendkit_adapters::contract;
use lendkit_adapters::InMemoryEventStore;

#[test]
fn append_then_read_back() {
    block_on(contract::append_then_read_back(InMemoryEventStore::new));
}

#[test]
fn stale_version_conflicts() {
    block_on(contract::stale_version_conflicts(InMemoryEventStore::new));
}

#[test]
fn concurrent_appends_one_wins() {
    block_on(contract::concurrent_appends_one_wins(
        InMemoryEventStore::new,
    ));
}

#[test]
fn positions_gap_free_across_threads() {
    block_on(contract::positions_gap_free_across_threads(
        InMemoryEventStore::new,
    ));
}

#[test]
fn multi_stream_all_or_nothing() {
    block_on(contract::multi_stream_all_or_nothing(
        InMemoryEventStore::new,
    ));
}

#[test]
fn read_all_returns_suffixes() {
    block_on(contract::read_all_returns_suffixes(InMemoryEventStore::new));
}

#[test]
fn command_ids_are_recorded() {
    block_on(contract::command_ids_are_recorded(InMemoryEventStore::new));
}

#[test]
fn concurrent_commits_of_one_command_id() {
    block_on(contract::concurrent_commits_of_one_command_id(
        InMemoryEventStore::new,
    ));
}

#[test]
fn version_guards() {
    block_on(contract::version_guards(InMemoryEventStore::new));
}

#[test]
fn checkpoints() {
    block_on(contract::checkpoints(InMemoryEventStore::new));
}

#[test]
fn dead_letters() {
    block_on(contract::dead_letters(InMemoryEventStore::new));
}

#[test]
fn run_all_passes() {
    block_on(contract::run_all(InMemoryEventStore::new));
}

#[test]
fn unsynced_appends() {
    block_on(contract::unsynced_appends(InMemoryEventStore::new));
}

#[test]
fn snapshots() {
    // The in-memory store keeps none (nothing reopens it): the contract's other branch.
    block_on(contract::snapshots(InMemoryEventStore::new));
}
