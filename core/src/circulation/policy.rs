//! The named policies a rules row points to: [`LoanPolicy`], [`FinePolicy`], [`LimitsPolicy`] and
//! [`LostPolicy`], with the [`Period`] and [`CalendarDate`] they are written in.

use super::fields::Fields;
use super::RulesError;
use crate::ids::MAX_AMOUNT;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The unit of a [`Period`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// 60 seconds.
    Minutes,
    /// 60 minutes.
    Hours,
    /// 24 hours.
    Days,
    /// 7 days.
    Weeks,
}

impl TimeUnit {
    /// The unit's length in milliseconds.
    pub const fn millis(self) -> u64 {
        match self {
            TimeUnit::Minutes => 60_000,
            TimeUnit::Hours => 3_600_000,
            TimeUnit::Days => 86_400_000,
            TimeUnit::Weeks => 604_800_000,
        }
    }

    /// Its plural name, as written in a rules file.
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeUnit::Minutes => "minutes",
            TimeUnit::Hours => "hours",
            TimeUnit::Days => "days",
            TimeUnit::Weeks => "weeks",
        }
    }

    fn parse(word: &str) -> Option<TimeUnit> {
        Some(match word {
            "minute" | "minutes" => TimeUnit::Minutes,
            "hour" | "hours" => TimeUnit::Hours,
            "day" | "days" => TimeUnit::Days,
            "week" | "weeks" => TimeUnit::Weeks,
            _ => return None,
        })
    }
}

/// A length of time, written `"14 days"`, `"4 hours"`, `"90 minutes"` or `"2 weeks"` (the
/// singular is accepted too). Its length in milliseconds is at most [`MAX_AMOUNT`] (about 285,000
/// years), so a due date computed from it always fits a timestamp. Serialized as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// How many units.
    pub amount: u64,
    /// Which unit.
    pub unit: TimeUnit,
}

impl Period {
    /// The period's length in milliseconds.
    pub const fn millis(self) -> u64 {
        // Bounded at load: amount × unit ≤ MAX_AMOUNT.
        self.amount.saturating_mul(self.unit.millis())
    }

    /// Reads `"N unit"`; `nonzero` refuses a zero amount.
    fn parse(text: &str, nonzero: bool) -> Result<Period, String> {
        let shape = "must be a whole number and a unit, like \"14 days\" (units: minutes, hours, days, weeks)";
        let mut words = text.split_whitespace();
        let (Some(n), Some(u), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("is {text:?}; it {shape}"));
        };
        let (Ok(amount), Some(unit)) = (n.parse::<u64>(), TimeUnit::parse(u)) else {
            return Err(format!("is {text:?}; it {shape}"));
        };
        if nonzero && amount == 0 {
            return Err(format!("is {text:?}; it must be longer than zero"));
        }
        if amount > MAX_AMOUNT / unit.millis() {
            return Err(format!(
                "is {text:?}; it must be at most {} {} (2^53 - 1 milliseconds)",
                MAX_AMOUNT / unit.millis(),
                unit.as_str()
            ));
        }
        Ok(Period { amount, unit })
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for CalendarDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Period::parse(&text, false).map_err(|r| serde::de::Error::custom(format!("period {r}")))
    }
}

impl<'de> Deserialize<'de> for CalendarDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CalendarDate::parse(&text).map_err(|r| serde::de::Error::custom(format!("date {r}")))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.unit.as_str())
    }
}

/// A calendar date, written `YYYY-MM-DD` (ISO 8601), checked to exist (30 February does not).
/// Serialized as written. The date itself is jiff's, as the [calendars](super::calendar) use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CalendarDate(pub jiff::civil::Date);

impl CalendarDate {
    /// Reads `YYYY-MM-DD` (years 1 to 9999).
    pub fn parse(text: &str) -> Result<CalendarDate, String> {
        let bad = || format!("is {text:?}, not a date written YYYY-MM-DD that exists");
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 10
            || b[4] != b'-'
            || b[7] != b'-'
            || !(digits(0..4) && digits(5..7) && digits(8..10))
        {
            return Err(bad());
        }
        let date: jiff::civil::Date = text.parse().map_err(|_| bad())?;
        if date.year() < 1 {
            return Err(bad());
        }
        Ok(CalendarDate(date))
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a loan's due date is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// The loan's start plus the period (capped at `cap_date` when there is one).
    Rolling,
    /// The `cap_date` itself, whatever the start (e.g. the end of term).
    Fixed,
}

/// What happens to a due date that falls on a day the branch is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedDay {
    /// Keep it.
    Keep,
    /// Move it to the end of the previous open day.
    PreviousOpen,
    /// Move it to the end of the next open day.
    NextOpen,
}

/// Where a renewal's new period starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewFrom {
    /// From the current due date.
    Due,
    /// From the moment of the renewal.
    Now,
}

/// The unit a fine is charged per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FineRate {
    /// Per day late (short loans may be fined per hour).
    Day,
    /// Per hour late.
    Hour,
}

/// Left out of a loan's stored terms when false (terms stored before it existed read as false).
fn is_false(b: &bool) -> bool {
    !*b
}

/// How long a loan lasts and how it renews. In a rules file: `[policies.loan.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoanPolicy {
    /// `period` (required): the loan's length, e.g. `"21 days"`; longer than zero.
    pub period: Period,
    /// `schedule`: `"rolling"` (default) or `"fixed"`.
    pub schedule: Schedule,
    /// `cap_date`: `YYYY-MM-DD`; a rolling loan is never due after it, a fixed one is due on it
    /// (so a fixed schedule requires it).
    pub cap_date: Option<CalendarDate>,
    /// `closed_day`: `"keep"` (default), `"previous_open"` or `"next_open"`.
    pub closed_day: ClosedDay,
    /// `max_renewals`: how many times a loan may be renewed (default 0).
    pub max_renewals: u64,
    /// `renew_from`: `"due"` (default) or `"now"`.
    pub renew_from: RenewFrom,
    /// `item_limit`: at most this many loans under this policy per member (none when left out).
    pub item_limit: Option<u64>,
    /// `auto_renew`: on its due date the loan renews itself when it may (default false); when it
    /// may not, `AutoRenewalFailed` says why and the member is told.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_renew: bool,
}

impl LoanPolicy {
    pub(crate) fn read(mut f: Fields) -> Result<LoanPolicy, RulesError> {
        let text = f.text("period")?;
        let period = Period::parse(&text, true).map_err(|r| f.place().error("period", r))?;
        let schedule = f.choice(
            "schedule",
            &[("rolling", Schedule::Rolling), ("fixed", Schedule::Fixed)],
            Some(Schedule::Rolling),
        )?;
        let cap_date = match f.opt_text("cap_date")? {
            Some(text) => {
                Some(CalendarDate::parse(&text).map_err(|r| f.place().error("cap_date", r))?)
            }
            None if schedule == Schedule::Fixed => {
                return Err(f.place().error(
                    "cap_date",
                    "is required by schedule = \"fixed\" (the due date)",
                ))
            }
            None => None,
        };
        let closed_day = f.choice(
            "closed_day",
            &[
                ("keep", ClosedDay::Keep),
                ("previous_open", ClosedDay::PreviousOpen),
                ("next_open", ClosedDay::NextOpen),
            ],
            Some(ClosedDay::Keep),
        )?;
        let max_renewals = f.opt_amount("max_renewals")?.unwrap_or(0);
        let renew_from = f.choice(
            "renew_from",
            &[("due", RenewFrom::Due), ("now", RenewFrom::Now)],
            Some(RenewFrom::Due),
        )?;
        let item_limit = f.opt_amount("item_limit")?;
        let auto_renew = f.flag("auto_renew")?;
        f.finish()?;
        Ok(LoanPolicy {
            period,
            schedule,
            cap_date,
            closed_day,
            max_renewals,
            renew_from,
            item_limit,
            auto_renew,
        })
    }
}

/// What a late return costs. In a rules file: `[policies.fine.NAME]`. [`FinePolicy::fine`]
/// computes it; the [`fine`](super::fine) module says how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinePolicy {
    /// `points` (required): points charged per `per` late; 0 for no fine.
    pub points: u64,
    /// `per` (required): `"day"` or `"hour"`.
    pub per: FineRate,
    /// `grace`: how late a return may be before any fine, e.g. `"2 days"` (default none).
    pub grace: Option<Period>,
    /// `charge_grace`: once the grace is exceeded, charge the grace period too (default false).
    pub charge_grace: bool,
    /// `count_closed_days`: count days the branch is closed as late (default false).
    pub count_closed_days: bool,
    /// `max_per_loan`: the most one loan's fine can reach (no cap when left out).
    pub max_per_loan: Option<u64>,
    /// `forgive_on_renewal`: a renewal drops the fine run up so far (default false).
    pub forgive_on_renewal: bool,
}

impl FinePolicy {
    pub(crate) fn read(mut f: Fields) -> Result<FinePolicy, RulesError> {
        let points = f.amount("points")?;
        let per = f.choice(
            "per",
            &[("day", FineRate::Day), ("hour", FineRate::Hour)],
            None,
        )?;
        let grace = match f.opt_text("grace")? {
            Some(text) => {
                Some(Period::parse(&text, false).map_err(|r| f.place().error("grace", r))?)
            }
            None => None,
        };
        let charge_grace = f.flag("charge_grace")?;
        let count_closed_days = f.flag("count_closed_days")?;
        let max_per_loan = f.opt_amount("max_per_loan")?;
        let forgive_on_renewal = f.flag("forgive_on_renewal")?;
        f.finish()?;
        Ok(FinePolicy {
            points,
            per,
            grace,
            charge_grace,
            count_closed_days,
            max_per_loan,
            forgive_on_renewal,
        })
    }
}

/// What a member may have before borrowing is blocked. In a rules file:
/// `[policies.limits.NAME]`; every field left out is no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsPolicy {
    /// `max_loans`: open loans at most (0 blocks borrowing).
    pub max_loans: Option<u64>,
    /// `max_overdue`: overdue loans at most.
    pub max_overdue: Option<u64>,
    /// `max_fees_owed`: points owed in fees at most.
    pub max_fees_owed: Option<u64>,
    /// `card_expiry_days`: a membership card is valid this many days from joining (at least 1).
    pub card_expiry_days: Option<u64>,
}

impl LimitsPolicy {
    pub(crate) fn read(mut f: Fields) -> Result<LimitsPolicy, RulesError> {
        let max_loans = f.opt_amount("max_loans")?;
        let max_overdue = f.opt_amount("max_overdue")?;
        let max_fees_owed = f.opt_amount("max_fees_owed")?;
        let card_expiry_days = days(&mut f, "card_expiry_days", false)?;
        f.finish()?;
        Ok(LimitsPolicy {
            max_loans,
            max_overdue,
            max_fees_owed,
            card_expiry_days,
        })
    }
}

/// When a hold's fee is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Charge {
    /// When the hold is placed; refunded if it is cancelled or expires unfilled.
    #[default]
    Place,
    /// When the hold is collected (the loan starts); nothing is charged for a hold that never is.
    Collect,
}

/// How members queue for items: holds, the pickup shelf and recalls. In a rules file:
/// `[policies.request.NAME]`, named by a row's optional `request`; a row without one takes
/// holds with every default below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPolicy {
    /// `holds` (default `true`): whether holds are taken at all (`HOLD_NOT_ALLOWED` if not).
    pub holds: bool,
    /// `max_holds`: holds a member may have at once, waiting or on the pickup shelf (none: no
    /// limit; `HOLD_NOT_ALLOWED` past it).
    pub max_holds: Option<u64>,
    /// `shelf_days`: open days of the pickup branch a copy waits on the pickup shelf (none: the
    /// library's `hold_shelf_days`).
    pub shelf_days: Option<u64>,
    /// `pickup_branches`: the branches holds may be collected at (none: any branch the rules
    /// know; `HOLD_NOT_ALLOWED` for another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_branches: Option<Vec<String>>,
    /// `fee`: points a hold costs (none: the book's fee).
    pub fee: Option<u64>,
    /// `charge`: `"place"` (default) or `"collect"`.
    pub charge: Charge,
    /// `renew_with_holds` (default `false`): whether a loan may be renewed while others wait.
    pub renew_with_holds: bool,
    /// `recall_days`: a hold placed while no copy is free recalls the loan due latest, to be
    /// back this many days from now — but never before its start plus `recall_min_loan_days`,
    /// and never later than it was due (none: no recalls).
    pub recall_days: Option<u64>,
    /// `recall_min_loan_days`: the days a recalled loan is guaranteed from its start (default 0).
    pub recall_min_loan_days: u64,
}

impl Default for RequestPolicy {
    fn default() -> Self {
        RequestPolicy {
            holds: true,
            max_holds: None,
            shelf_days: None,
            pickup_branches: None,
            fee: None,
            charge: Charge::Place,
            renew_with_holds: false,
            recall_days: None,
            recall_min_loan_days: 0,
        }
    }
}

impl RequestPolicy {
    pub(crate) fn read(mut f: Fields) -> Result<RequestPolicy, RulesError> {
        let holds = match f.opt_value("holds") {
            None => true,
            Some(Value::Bool(b)) => b,
            Some(v) => {
                return Err(f
                    .place()
                    .error("holds", format!("must be true or false, not {v}")))
            }
        };
        let max_holds = f.opt_amount("max_holds")?;
        let shelf_days = days(&mut f, "shelf_days", false)?;
        let pickup_branches = match f.opt_value("pickup_branches") {
            None => None,
            Some(Value::Array(items)) => {
                let mut branches = Vec::with_capacity(items.len());
                for item in items {
                    let Value::String(b) = item else {
                        return Err(f.place().error(
                            "pickup_branches",
                            format!("must be a list of branch names, not one holding {item}"),
                        ));
                    };
                    crate::ids::validate_id("pickup_branches", &b)
                        .map_err(|r| f.place().error("pickup_branches", r))?;
                    branches.push(b);
                }
                Some(branches)
            }
            Some(v) => {
                return Err(f.place().error(
                    "pickup_branches",
                    format!("must be a list of branch names, not {v}"),
                ))
            }
        };
        let fee = f.opt_amount("fee")?;
        let charge = f.choice(
            "charge",
            &[("place", Charge::Place), ("collect", Charge::Collect)],
            Some(Charge::Place),
        )?;
        let renew_with_holds = f.flag("renew_with_holds")?;
        let recall_days = days(&mut f, "recall_days", false)?;
        let recall_min_loan_days = days(&mut f, "recall_min_loan_days", false)?.unwrap_or(0);
        f.finish()?;
        Ok(RequestPolicy {
            holds,
            max_holds,
            shelf_days,
            pickup_branches,
            fee,
            charge,
            renew_with_holds,
            recall_days,
            recall_min_loan_days,
        })
    }

    /// Whether holds may be collected at `branch` (`None`: no branch named, always allowed).
    pub fn picks_up_at(&self, branch: Option<&str>) -> bool {
        match (&self.pickup_branches, branch) {
            (Some(allowed), Some(b)) => allowed.iter().any(|a| a == b),
            _ => true,
        }
    }
}

/// What happens to an item that does not come back. In a rules file: `[policies.lost.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostPolicy {
    /// `aged_to_lost_after_days` (required): days overdue before the item counts as lost (at least 1).
    pub aged_to_lost_after_days: u64,
    /// `replacement_cost` (required): points billed for the item.
    pub replacement_cost: u64,
    /// `processing_fee`: points billed on top of the replacement cost (default 0); refunded with
    /// it when the item comes back within the refund window.
    pub processing_fee: u64,
    /// `refund_window_days`: the bill (replacement cost and processing fee) is refunded if the
    /// item comes back within this many days of it (default 0: never).
    pub refund_window_days: u64,
}

impl LostPolicy {
    pub(crate) fn read(mut f: Fields) -> Result<LostPolicy, RulesError> {
        let aged_to_lost_after_days =
            days(&mut f, "aged_to_lost_after_days", true)?.unwrap_or_default();
        let replacement_cost = f.amount("replacement_cost")?;
        let processing_fee = f.opt_amount("processing_fee")?.unwrap_or(0);
        let refund_window_days = days(&mut f, "refund_window_days", false)?.unwrap_or(0);
        f.finish()?;
        Ok(LostPolicy {
            aged_to_lost_after_days,
            replacement_cost,
            processing_fee,
            refund_window_days,
        })
    }
}

/// A count of days: at least 1 (0 for `refund_window_days`), at most what fits 2^53 − 1 ms.
fn days(f: &mut Fields, field: &'static str, required: bool) -> Result<Option<u64>, RulesError> {
    let most = MAX_AMOUNT / TimeUnit::Days.millis();
    let value = if required {
        Some(f.amount(field)?)
    } else {
        f.opt_amount(field)?
    };
    match value {
        Some(0) if !matches!(field, "refund_window_days" | "recall_min_loan_days") => {
            Err(f.place().error(field, "must be at least 1 day"))
        }
        Some(n) if n > most => Err(f
            .place()
            .error(field, format!("is {n}; it must be at most {most} days"))),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_and_refuse() {
        assert_eq!(
            Period::parse("14 days", true),
            Ok(Period {
                amount: 14,
                unit: TimeUnit::Days
            })
        );
        assert_eq!(Period::parse("1 hour", true).unwrap().millis(), 3_600_000);
        assert!(Period::parse("0 days", true)
            .unwrap_err()
            .contains("longer than zero"));
        assert!(Period::parse("0 days", false).is_ok());
        for bad in [
            "14",
            "days",
            "-1 days",
            "1.5 days",
            "2 months",
            "1 day extra",
        ] {
            assert!(Period::parse(bad, true).is_err(), "{bad}");
        }
        let most = MAX_AMOUNT / TimeUnit::Weeks.millis();
        assert!(Period::parse(&format!("{most} weeks"), true).is_ok());
        assert!(Period::parse(&format!("{} weeks", most + 1), true).is_err());
    }

    #[test]
    fn dates_must_exist() {
        assert_eq!(
            CalendarDate::parse("2028-02-29").unwrap().to_string(),
            "2028-02-29"
        );
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-04-31",
            "2026-4-1",
            "0000-01-01",
            "2026/01/01",
            "+026-01-01",
        ] {
            assert!(CalendarDate::parse(bad).is_err(), "{bad}");
        }
        assert!(CalendarDate::parse("2000-02-29").is_ok());
    }
}
