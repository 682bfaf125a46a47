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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Actor, Timestamp};

    const ROWS: &str = r#"
        [policies.loan.std]
        period = "21 days"
        [policies.fine.std]
        points = 1
        per = "day"
        [policies.limits.std]
        [policies.lost.std]
        aged_to_lost_after_days = 60
        replacement_cost = 20
        [[rules]]
        branch = "main"
        loan = "std"
        fine = "std"
        limits = "std"
        lost = "std"
        [[rules]]
        loan = "std"
        fine = "std"
        limits = "std"
        lost = "std"
    "#;

    fn change(rules: &CirculationRules, text: &str) -> Result<Vec<RulesEvent>, StoredRulesError> {
        let ctx = Context::new(Actor::librarian("lib-1"), Timestamp(0));
        let command = RulesCommand::ChangeRules {
            rules: text.to_owned(),
            format: None,
        };
        rules.decide(&command, &ctx)
    }

    fn calendar(hours: &str) -> String {
        format!(
            "[calendars.main]\nzone = \"Europe/Berlin\"\nhours = {{ mon = \"{hours}\" }}\n{ROWS}"
        )
    }

    #[test]
    fn calendars_are_changed_and_versioned_with_the_rows() {
        let mut rules = CirculationRules::default();
        for e in change(&rules, ROWS).unwrap() {
            rules.apply(&e);
        }
        assert_eq!(rules.version, 1);
        assert!(rules.table.as_ref().unwrap().calendar("main").is_none());
        // Adding a calendar is a new version of the rules, in the same event.
        let events = change(&rules, &calendar("09:00-18:00")).unwrap();
        assert!(matches!(
            &events[..],
            [RulesEvent::CirculationRulesChanged { version: 2, .. }]
        ));
        for e in &events {
            rules.apply(e);
        }
        let table = rules.table.as_ref().unwrap();
        assert_eq!(table.calendar("main").unwrap().zone(), "Europe/Berlin");
        assert!(table.knows_branch("main") && !table.knows_branch("north"));
        // A bad calendar stores nothing and names the calendar and the field.
        let err = change(&rules, &calendar("18:00-09:00")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert_eq!(
            err.to_string(),
            "invalid input: calendar \"main\", field hours.mon: on Monday, the library closes at \
             09:00:00 but opens at 18:00:00; closing must be after opening"
        );
        // So does a row naming a branch the calendars do not declare.
        let err = change(
            &rules,
            &calendar("09:00-18:00").replace("\"main\"\n", "\"north\"\n"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("rule 1, field branch: names branch \"north\", which has no calendar; declared: main"),
            "{err}"
        );
        // Changing only the hours is a new version too.
        let events = change(&rules, &calendar("10:00-18:00")).unwrap();
        assert!(matches!(
            &events[..],
            [RulesEvent::CirculationRulesChanged { version: 3, .. }]
        ));
    }
}
