//! What every aggregate is: a fold of its events that decides, purely, which new events a command causes.

use crate::ids::{Actor, CommandId, StreamKind, Timestamp};

/// The rules a library runs with. Carried in every [`Context`], so aggregates stay pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Points every new member's account opens with (the seeds use 100).
    pub welcome_points: u64,
    /// Length of a loan, and of each renewal, in days.
    pub loan_days: u32,
    /// How many times one loan may be renewed.
    pub max_renewals: u32,
    /// Open days a hold's copy waits on the pickup shelf, where the circulation rules' request
    /// policy does not say.
    pub hold_shelf_days: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            welcome_points: 100,
            loan_days: 14,
            max_renewals: 2,
            hold_shelf_days: 7,
        }
    }
}

/// Everything a decision may know besides the aggregate's own state: who asks, when, under which command id and rules.
#[derive(Debug, Clone)]
pub struct Context {
    /// Who issued the command.
    pub actor: Actor,
    /// The clock's time when the command is decided.
    pub now: Timestamp,
    /// The command's id.
    pub command_id: CommandId,
    /// The library's rules.
    pub rules: Rules,
}

impl Context {
    /// A context for `actor` at `now` with a fresh command id and default rules (handy in tests).
    pub fn new(actor: Actor, now: Timestamp) -> Self {
        Context {
            actor,
            now,
            command_id: CommandId::generate(),
            rules: Rules::default(),
        }
    }
}

/// An event-sourced aggregate: its state is the fold of its events; [`decide`](Aggregate::decide) is pure.
pub trait Aggregate: Default + Send + Sync + 'static {
    /// The commands it accepts.
    type Command: std::fmt::Debug + Send + Sync;
    /// The events it emits.
    type Event: Clone + std::fmt::Debug + Send + Sync;
    /// Why it refuses a command.
    type Error: std::fmt::Debug;
    /// The stream kind its events are stored under. Renaming it orphans stored streams.
    const KIND: StreamKind;

    /// The events `command` causes in the current state, or why it is refused. Never has side effects.
    fn decide(
        &self,
        command: &Self::Command,
        ctx: &Context,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Total: it never fails and never checks rules.
    fn apply(&mut self, event: &Self::Event);

    /// True when no command can add an event any more: the aggregate's life is over (a rental
    /// returned, or canceled and refunded). The library keeps open aggregates folded in memory
    /// to decide their next command without reading the store; a final one is not kept, since
    /// what is left to do with it is to refuse or ignore a late command, which reads it back.
    /// Only the memory it holds depends on this, never an outcome.
    fn is_final(&self) -> bool {
        false
    }
}
