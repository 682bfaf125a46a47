//! Reading the rules file's `[calendars.BRANCH]` tables and its `groups` list: which branches
//! and member groups the rows may name, and when each branch is open.

use super::calendar::{Calendar, CalendarError, Hours};
use super::fields::{as_text, file_error, json_type, Fields, Place};
use super::policy::CalendarDate;
use super::RulesError;
use crate::ids::validate_id;
use jiff::civil::{Date, Time};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// The weekday keys of `hours`, Monday first (the order [`Calendar::new`] takes).
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Reads `calendars`: a table of branch names to calendars. Left out (or null): none.
pub(crate) fn read_calendars(
    value: Option<Value>,
) -> Result<BTreeMap<String, Calendar>, RulesError> {
    let branches = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(branches)) => branches,
        Some(other) => {
            return Err(file_error(
                "calendars",
                format!(
                    "must be a table of branches ([calendars.BRANCH]), not {}",
                    json_type(&other)
                ),
            ))
        }
    };
    let mut calendars = BTreeMap::new();
    for (branch, value) in branches {
        let place = Place::Calendar(branch.clone());
        validate_id("name", &branch).map_err(|r| place.error("name", r))?;
        if branch == "*" {
            return Err(place.error(
                "name",
                "\"*\" means any branch in a rule, so it cannot be a branch's name",
            ));
        }
        let calendar = read_calendar(Fields::new(value, place, "a calendar")?)?;
        calendars.insert(branch, calendar);
    }
    Ok(calendars)
}

/// Reads one `[calendars.BRANCH]`: `zone`, `hours`, `closed`.
fn read_calendar(mut f: Fields) -> Result<Calendar, RulesError> {
    let zone = f.text("zone")?;
    let week = match f.opt_value("hours") {
        Some(hours) => read_week(f.place(), hours)?,
        None => {
            return Err(f.place().error(
                "hours",
                "is required: the opening hours by weekday, like { mon = \"09:00-18:00\" } \
                 (a weekday left out is closed)",
            ))
        }
    };
    let closed = match f.opt_value("closed") {
        Some(closed) => read_closed(f.place(), closed)?,
        None => Vec::new(),
    };
    let place = f.place().clone();
    f.finish()?;
    Calendar::new(&zone, week, closed).map_err(|e| {
        let field = match &e {
            CalendarError::UnknownTimeZone(_) => "zone".to_owned(),
            CalendarError::ClosesBeforeOpening { weekday, .. } => {
                // "Monday" → "mon": the key it was written under.
                format!("hours.{}", weekday.get(..3).unwrap_or("").to_lowercase())
            }
            CalendarError::NeverOpen => "hours".to_owned(),
            CalendarError::ClosedForAYear { .. } | CalendarError::OutOfRange(_) => {
                "closed".to_owned()
            }
        };
        place.error(&field, e.to_string())
    })
}

/// Reads `hours`: weekday keys (`mon` … `sun`) to `"HH:MM-HH:MM"`; a weekday left out is closed.
fn read_week(place: &Place, hours: Value) -> Result<[Option<Hours>; 7], RulesError> {
    let Value::Object(days) = hours else {
        return Err(place.error(
            "hours",
            format!(
                "must be a table of weekdays, like {{ mon = \"09:00-18:00\" }}, not {}",
                json_type(&hours)
            ),
        ));
    };
    let mut week = [None; 7];
    for (day, value) in days {
        let field = format!("hours.{day}");
        let Some(i) = WEEKDAYS.iter().position(|d| *d == day) else {
            return Err(place.error(
                &field,
                format!("is not a weekday; the weekdays are {}", WEEKDAYS.join(", ")),
            ));
        };
        week[i] = match value {
            Value::Null => None,
            Value::String(text) => Some(read_hours(&text).map_err(|r| place.error(&field, r))?),
            other => {
                return Err(place.error(
                    &field,
                    format!(
                        "must be a string \"HH:MM-HH:MM\", not {}",
                        json_type(&other)
                    ),
                ))
            }
        };
    }
    Ok(week)
}

/// Reads `"HH:MM-HH:MM"`, opening then closing time; `24:00` closes at midnight.
fn read_hours(text: &str) -> Result<Hours, String> {
    let shape =
        || format!("is {text:?}; opening hours are written \"HH:MM-HH:MM\", like \"09:00-18:00\"");
    let (opens, closes) = text.split_once('-').ok_or_else(shape)?;
    let time = |part: &str, closing: bool| -> Result<Time, String> {
        let b = part.trim().as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 5 || b[2] != b':' || !(digits(0..2) && digits(3..5)) {
            return Err(shape());
        }
        let (h, m) = (
            i8::try_from((b[0] - b'0') * 10 + (b[1] - b'0')),
            i8::try_from((b[3] - b'0') * 10 + (b[4] - b'0')),
        );
        match (h, m) {
            (Ok(24), Ok(0)) if closing => Ok(Time::MAX),
            (Ok(h), Ok(m)) if h < 24 && m < 60 => Time::new(h, m, 0, 0).map_err(|_| shape()),
            _ => Err(format!(
                "is {text:?}; {} is not a time of day (00:00 to 23:59, and 24:00 to close at \
                 midnight)",
                part.trim()
            )),
        }
    };
    Ok(Hours {
        opens: time(opens, false)?,
        closes: time(closes, true)?,
    })
}

/// Reads `closed`: an array of dates `YYYY-MM-DD` (quoted or, in TOML, not).
fn read_closed(place: &Place, closed: Value) -> Result<Vec<Date>, RulesError> {
    let Value::Array(entries) = closed else {
        return Err(place.error(
            "closed",
            format!(
                "must be an array of dates, like [\"2026-12-25\"], not {}",
                json_type(&closed)
            ),
        ));
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| match as_text(entry) {
            Some(text) => CalendarDate::parse(text)
                .map(|d| d.0)
                .map_err(|r| place.error("closed", r)),
            None => Err(place.error(
                "closed",
                format!(
                    "entry {} must be a date written YYYY-MM-DD, not {}",
                    i + 1,
                    json_type(entry)
                ),
            )),
        })
        .collect()
}

/// Reads `groups`: the member groups rows may name, each an id, none twice. Left out (or null):
/// no list, so any group is accepted.
pub(crate) fn read_groups(value: Option<Value>) -> Result<Option<Vec<String>>, RulesError> {
    let entries = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(file_error(
                "groups",
                format!(
                    "must be an array of group names, like [\"adult\", \"student\"], not {}",
                    json_type(&other)
                ),
            ))
        }
    };
    let mut groups = Vec::with_capacity(entries.len());
    let mut seen = HashSet::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let Value::String(group) = entry else {
            return Err(file_error(
                "groups",
                format!(
                    "entry {} must be a string, not {}",
                    i + 1,
                    json_type(&entry)
                ),
            ));
        };
        validate_id("group", &group).map_err(|r| file_error("groups", r))?;
        if group == "*" {
            return Err(file_error(
                "groups",
                "\"*\" means any group in a rule, so it cannot be a group's name",
            ));
        }
        if !seen.insert(group.clone()) {
            return Err(file_error("groups", format!("{group:?} is listed twice")));
        }
        groups.push(group);
    }
    Ok(Some(groups))
}
