//! Reading a policy's or a row's fields one at a time, so every error names its place and field.

use super::{PolicyKind, RulesError};
use crate::ids::MAX_AMOUNT;
use serde_json::{Map, Value};

/// Where a set of fields sits in the rules file: a named policy, a 1-based row or a branch's
/// calendar.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    /// `[policies.KIND.NAME]`.
    Policy(PolicyKind, String),
    /// The `row`-th `[[rules]]` entry, from 1.
    Row(usize),
    /// `[calendars.BRANCH]`.
    Calendar(String),
}

impl Place {
    /// The error for `field` at this place.
    pub(crate) fn error(&self, field: &str, reason: impl Into<String>) -> RulesError {
        let (field, reason) = (field.to_owned(), reason.into());
        match self {
            Place::Policy(kind, name) => RulesError::Policy {
                kind: *kind,
                name: name.clone(),
                field,
                reason,
            },
            Place::Row(row) => RulesError::Row {
                row: *row,
                field,
                reason,
            },
            Place::Calendar(branch) => RulesError::Calendar {
                branch: branch.clone(),
                field,
                reason,
            },
        }
    }
}

/// The fields of one table of the rules file. Each accessor removes its field; [`Fields::finish`]
/// refuses whatever is left, naming the fields that exist.
pub(crate) struct Fields {
    map: Map<String, Value>,
    place: Place,
    known: Vec<&'static str>,
}

impl Fields {
    /// The fields of `value`, which must be a table.
    pub(crate) fn new(value: Value, place: Place, what: &str) -> Result<Fields, RulesError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                place,
                known: Vec::new(),
            }),
            other => Err(place.error(
                "*",
                format!(
                    "{what} must be a table of fields, not {}",
                    json_type(&other)
                ),
            )),
        }
    }

    /// Where these fields are.
    pub(crate) fn place(&self) -> &Place {
        &self.place
    }

    fn take(&mut self, field: &'static str) -> Option<Value> {
        self.known.push(field);
        self.map.remove(field).filter(|v| !v.is_null())
    }

    /// An optional field of any type (null is left out), for the caller to read.
    pub(crate) fn opt_value(&mut self, field: &'static str) -> Option<Value> {
        self.take(field)
    }

    /// An optional whole number in `0..=`[`MAX_AMOUNT`].
    pub(crate) fn opt_amount(&mut self, field: &'static str) -> Result<Option<u64>, RulesError> {
        match self.take(field) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= MAX_AMOUNT => Ok(Some(n)),
                Some(n) => Err(self.place.error(
                    field,
                    format!(
                        "{n} is over the largest amount lendkit holds, {MAX_AMOUNT} (2^53 - 1)"
                    ),
                )),
                None => Err(self.place.error(
                    field,
                    format!(
                        "must be a whole number from 0 to {MAX_AMOUNT}, not {}",
                        shown(&v)
                    ),
                )),
            },
        }
    }

    /// A required whole number in `0..=`[`MAX_AMOUNT`].
    pub(crate) fn amount(&mut self, field: &'static str) -> Result<u64, RulesError> {
        self.opt_amount(field)?
            .ok_or_else(|| self.place.error(field, "is required"))
    }

    /// An optional string.
    pub(crate) fn opt_text(&mut self, field: &'static str) -> Result<Option<String>, RulesError> {
        match self.take(field) {
            None => Ok(None),
            Some(v) => match as_text(&v) {
                Some(s) => Ok(Some(s.to_owned())),
                None => Err(self
                    .place
                    .error(field, format!("must be a string, not {}", json_type(&v)))),
            },
        }
    }

    /// A required string.
    pub(crate) fn text(&mut self, field: &'static str) -> Result<String, RulesError> {
        self.opt_text(field)?
            .ok_or_else(|| self.place.error(field, "is required"))
    }

    /// A boolean, `false` when left out.
    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, RulesError> {
        match self.take(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(self
                .place
                .error(field, format!("must be true or false, not {}", shown(&v)))),
        }
    }

    /// One of `choices` (left out: `default`, when there is one).
    pub(crate) fn choice<T: Copy>(
        &mut self,
        field: &'static str,
        choices: &[(&str, T)],
        default: Option<T>,
    ) -> Result<T, RulesError> {
        let names = || {
            choices
                .iter()
                .map(|(n, _)| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.opt_text(field)? {
            None => default.ok_or_else(|| {
                self.place
                    .error(field, format!("is required: one of {}", names()))
            }),
            Some(s) => choices
                .iter()
                .find(|(n, _)| *n == s)
                .map(|&(_, v)| v)
                .ok_or_else(|| {
                    self.place
                        .error(field, format!("is {s:?}, not one of {}", names()))
                }),
        }
    }

    /// Refuses any field no accessor took.
    pub(crate) fn finish(self) -> Result<(), RulesError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(extra) => Err(self.place.error(
                extra,
                format!(
                    "is not a field here; the fields are {}",
                    self.known.join(", ")
                ),
            )),
        }
    }
}

/// The key the `toml` crate gives a date or time literal when it is read as generic data.
const TOML_DATETIME: &str = "$__toml_private_datetime";

/// A string, or a TOML date written without quotes (`cap_date = 2026-06-30`), which the `toml`
/// crate gives as a one-key table.
pub(crate) fn as_text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Object(m) if m.len() == 1 => m.get(TOML_DATETIME).and_then(Value::as_str),
        _ => None,
    }
}

/// The error for a top-level part of the file (`rules`, `policies.KIND`, `groups`, …).
pub(crate) fn file_error(field: &str, reason: impl Into<String>) -> RulesError {
    RulesError::File {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// `a string`, `a table`, … for messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        other => json_type(other).to_owned(),
    }
}
