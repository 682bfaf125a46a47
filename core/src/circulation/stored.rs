//! The library's circulation rules as an aggregate: every change is a command, checked before it
//! is stored, and an event with the next version, so the log says which rules were in force
//! when (stream `rules:library`).

use super::{Format, RulesError, RulesTable};
use crate::aggregate::{Aggregate, Context};
use crate::codes::ErrorCode;
use crate::ids::StreamKind;

/// The id of the one rules stream a library has.
pub const RULES_STREAM_ID: &str = "library";

/// Commands on the circulation rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesCommand {
    /// Replace the rules table with the one `rules` holds.
    ChangeRules {
        /// The rules file's text.
        rules: String,
        /// `toml` (the default) or `json`.
        format: Option<String>,
    },
}

crate::event::event_enum! {
    /// Events of the circulation rules.
    pub enum RulesEvent {
        /// A new rules table is in force from this event on.
        CirculationRulesChanged {
            /// 1 for the first table, then one more per change.
            version: u64,
            /// `toml` or `json`.
            format: String,
            /// The rules file's text, as sent (so the log keeps what was in force).
            rules: String,
        },
    }
}

/// Why a change of the rules is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoredRulesError {
    /// Only librarians change the rules.
    #[error("only a librarian may change the circulation rules")]
    LibrarianOnly,
    /// The format is neither `toml` nor `json`.
    #[error("invalid input: format is {0:?}; use \"toml\" or \"json\"")]
    UnknownFormat(String),
    /// The table is not valid (the message names the row or policy and the field).
    #[error("invalid input: {0}")]
    Invalid(#[from] RulesError),
}

impl StoredRulesError {
    /// Stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoredRulesError::LibrarianOnly => ErrorCode::Unauthorized,
            StoredRulesError::UnknownFormat(_) | StoredRulesError::Invalid(_) => {
                ErrorCode::InvalidInput
            }
        }
    }
}

/// The rules in force: the fold of the [`RulesEvent`]s. `None` until a table was stored.
#[derive(Debug, Clone, Default)]
pub struct CirculationRules {
    /// The version of the table in force (0 before the first).
    pub version: u64,
    /// The table in force.
    pub table: Option<RulesTable>,
    /// Its text, to recognise a change that changes nothing.
    text: Option<(String, String)>,
}

fn format_of(format: Option<&str>) -> Result<Format, StoredRulesError> {
    match format.unwrap_or("toml") {
        "toml" => Ok(Format::Toml),
        "json" => Ok(Format::Json),
        other => Err(StoredRulesError::UnknownFormat(other.to_owned())),
    }
}

impl Aggregate for CirculationRules {
    type Command = RulesCommand;
    type Event = RulesEvent;
    type Error = StoredRulesError;
    const KIND: StreamKind = StreamKind::Rules;

    fn decide(
        &self,
        command: &RulesCommand,
        ctx: &Context,
    ) -> Result<Vec<RulesEvent>, StoredRulesError> {
        match command {
            RulesCommand::ChangeRules { rules, format } => {
                if !ctx.actor.is_librarian() {
                    return Err(StoredRulesError::LibrarianOnly);
                }
                let parsed = format_of(format.as_deref())?;
                RulesTable::parse(rules, parsed)?;
                let format = if parsed == Format::Json {
                    "json"
                } else {
                    "toml"
                };
                if self
                    .text
                    .as_ref()
                    .is_some_and(|(f, t)| f == format && t == rules)
                {
                    return Ok(vec![]);
                }
                Ok(vec![RulesEvent::CirculationRulesChanged {
                    version: self.version + 1,
                    format: format.to_owned(),
                    rules: rules.clone(),
                }])
            }
        }
    }

    fn apply(&mut self, event: &RulesEvent) {
        match event {
            RulesEvent::CirculationRulesChanged {
                version,
                format,
                rules,
            } => {
                self.version = *version;
                // Checked when decided; should a later lendkit read an old table differently,
                // the last table it could read stays in force rather than none.
                if let Ok(table) =
                    format_of(Some(format)).and_then(|f| Ok(RulesTable::parse(rules, f)?))
                {
                    self.table = Some(table);
                }
                self.text = Some((format.clone(), rules.clone()));
            }
        }
    }
}
