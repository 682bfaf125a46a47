//! The terms a loan is made under: the policies the rules table resolved when it started, copied
//! onto the loan (`LoanStarted.terms`), so a later change of the table never moves an open
//! loan's due date or changes its fine rate — and the due dates those terms give on a branch's
//! calendar.

use super::calendar::{Calendar, CalendarError};
use super::policy::{FinePolicy, LoanPolicy, LostPolicy, Period, RenewFrom, Schedule, TimeUnit};
use super::table::RulesTable;
use crate::ids::Timestamp;
use serde::{Deserialize, Serialize};

/// What a loan was made under: the rules version and row that matched, the branch, and the
/// resolved loan, fine and lost policies by name and value. (Limits are not copied: they are
/// the member's group's limits as they stand when the member next borrows, renews or reserves.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoanTerms {
    /// The version of the circulation rules the loan was made under.
    pub rules_version: u64,
    /// The row of that table that matched, from 1.
    pub row: usize,
    /// The branch the loan was made at, if one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The loan policy's name.
    pub loan_policy: String,
    /// Its values.
    pub loan: LoanPolicy,
    /// The fine policy's name.
    pub fine_policy: String,
    /// Its values.
    pub fine: FinePolicy,
    /// The lost-item policy's name.
    pub lost_policy: String,
    /// Its values.
    pub lost: LostPolicy,
}

impl LoanTerms {
    /// The terms `table` (at `version`) gives a member of `group` borrowing an item of
    /// `item_type` at `branch` (`None` for each: matched only by `*`).
    pub fn resolve(
        table: &RulesTable,
        version: u64,
        group: Option<&str>,
        item_type: Option<&str>,
        branch: Option<&str>,
    ) -> LoanTerms {
        // A value no row can name: an unset key matches only `*` rows.
        let key = |v: Option<&str>| v.unwrap_or("*").to_owned();
        let (g, i, b) = (key(group), key(item_type), key(branch));
        let r = table.resolve(&g, &i, &b);
        LoanTerms {
            rules_version: version,
            row: r.row,
            branch: branch.map(str::to_owned),
            loan_policy: r.loan.name.clone(),
            loan: r.loan.policy.clone(),
            fine_policy: r.fine.name.clone(),
            fine: r.fine.policy.clone(),
            lost_policy: r.lost.name.clone(),
            lost: r.lost.policy.clone(),
        }
    }

    /// When a loan under these terms, starting at `start`, falls due on `calendar` (the
    /// branch's; `None`: no calendar).
    pub fn due(
        &self,
        start: Timestamp,
        calendar: Option<&Calendar>,
    ) -> Result<Timestamp, CalendarError> {
        due_date(&self.loan, start, calendar)
    }

    /// The due date a renewal at `now` of a loan due at `due` gives: the period again, from the
    /// due date or from now (`renew_from`), on `calendar`.
    pub fn renewed_due(
        &self,
        due: Timestamp,
        now: Timestamp,
        calendar: Option<&Calendar>,
    ) -> Result<Timestamp, CalendarError> {
        let from = match self.loan.renew_from {
            RenewFrom::Due => due,
            RenewFrom::Now => now,
        };
        due_date(&self.loan, from, calendar)
    }
}

/// The due date of a loan under `loan` starting at `start`.
///
/// On a branch **with a calendar**, [`Calendar::due`] decides: day and week loans fall due at
/// the closing time of an open day in the branch's zone, under the policy's closed-day rule,
/// never after the cap date. On a branch **without one**, every day is open and dates are UTC:
/// a rolling loan is due exactly `period` after its start (so the library's default `loan_days`
/// keep their meaning), and a cap date ends at its last millisecond, UTC.
///
/// A fixed schedule is due on its cap date (its closing time; by the closed-day rule, never
/// after it), wherever the loan starts.
pub fn due_date(
    loan: &LoanPolicy,
    start: Timestamp,
    calendar: Option<&Calendar>,
) -> Result<Timestamp, CalendarError> {
    let fixed_on = match (loan.schedule, loan.cap_date) {
        (Schedule::Fixed, Some(cap)) => Some(cap),
        _ => None,
    };
    let Some(cal) = calendar else {
        // No calendar: every day open, UTC; a cap day ends at its last millisecond.
        let cap_end = match loan.cap_date {
            Some(cap) => Some(end_of_utc_day(cap)?),
            None => None,
        };
        let due = match (fixed_on, cap_end) {
            (Some(_), Some(end)) => end,
            _ => start.plus_ms(i64::try_from(loan.period.millis()).unwrap_or(i64::MAX)),
        };
        return Ok(match cap_end {
            Some(end) if end < due => end,
            _ => due,
        });
    };
    let period = match fixed_on {
        Some(cap) => {
            // A fixed schedule is the days from the start's local date to the cap (a cap
            // before the start: due on the start's day).
            let days = cal
                .date_of(start)?
                .until(cap.0)
                .map_err(|e| CalendarError::OutOfRange(e.to_string()))?
                .get_days()
                .max(0);
            Period {
                amount: u64::try_from(days).unwrap_or(0),
                unit: TimeUnit::Days,
            }
        }
        None => loan.period,
    };
    cal.due(start, period, loan.closed_day, loan.cap_date)
}

/// The last millisecond of `date`, UTC.
fn end_of_utc_day(date: super::policy::CalendarDate) -> Result<Timestamp, CalendarError> {
    let zoned = date
        .0
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
    Ok(Timestamp(zoned.timestamp().as_millisecond()).plus_ms(crate::ids::DAY_MS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circulation::RulesTable;

    fn ts(text: &str) -> Timestamp {
        let t: jiff::Timestamp = text.parse().unwrap();
        Timestamp(t.as_millisecond())
    }

    fn table() -> RulesTable {
        RulesTable::from_toml(
            r#"
            [policies.loan.standard]
            period = "21 days"
            [policies.loan.student]
            period = "14 days"
            [policies.loan.dvd]
            period = "7 days"
            [policies.loan.term]
            period = "28 days"
            cap_date = "2026-06-30"
            [policies.loan.fixed]
            period = "1 day"
            schedule = "fixed"
            cap_date = "2026-06-30"
            [policies.fine.none]
            points = 0
            per = "day"
            [policies.limits.none]
            [policies.lost.none]
            aged_to_lost_after_days = 60
            replacement_cost = 0
            [[rules]]
            loan = "standard"
            fine = "none"
            limits = "none"
            lost = "none"
            [[rules]]
            group = "student"
            loan = "student"
            fine = "none"
            limits = "none"
            lost = "none"
            [[rules]]
            item_type = "dvd"
            loan = "dvd"
            fine = "none"
            limits = "none"
            lost = "none"
            [[rules]]
            group = "term"
            loan = "term"
            fine = "none"
            limits = "none"
            lost = "none"
            [[rules]]
            group = "fixed"
            loan = "fixed"
            fine = "none"
            limits = "none"
            lost = "none"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn terms_name_the_row_and_copy_the_policies() {
        let t = table();
        let dvd = LoanTerms::resolve(&t, 3, Some("student"), Some("dvd"), None);
        assert_eq!((dvd.row, dvd.rules_version), (3, 3));
        assert_eq!(dvd.loan_policy, "dvd");
        let start = ts("2026-03-02T10:00:00Z");
        assert_eq!(dvd.due(start, None).unwrap(), ts("2026-03-09T10:00:00Z"));
        let book = LoanTerms::resolve(&t, 3, Some("adult"), Some("book"), Some("main"));
        assert_eq!(book.loan_policy, "standard");
        assert_eq!(book.branch.as_deref(), Some("main"));
        assert_eq!(book.due(start, None).unwrap(), ts("2026-03-23T10:00:00Z"));
        let json = serde_json::to_value(&book).unwrap();
        assert_eq!(json["loan"]["period"], "21 days");
        let back: LoanTerms = serde_json::from_value(json).unwrap();
        assert_eq!(back, book);
    }

    #[test]
    fn a_cap_is_never_passed_without_a_calendar() {
        let t = table();
        let term = LoanTerms::resolve(&t, 1, Some("term"), None, None);
        assert_eq!(
            term.due(ts("2026-06-15T09:30:00Z"), None).unwrap(),
            ts("2026-06-30T23:59:59.999Z")
        );
        assert_eq!(
            term.due(ts("2026-05-01T09:30:00Z"), None).unwrap(),
            ts("2026-05-29T09:30:00Z")
        );
        let fixed = LoanTerms::resolve(&t, 1, Some("fixed"), None, None);
        assert_eq!(
            fixed.due(ts("2026-06-01T09:30:00Z"), None).unwrap(),
            ts("2026-06-30T23:59:59.999Z")
        );
    }

    #[test]
    fn renewals_count_from_the_due_date_or_from_now() {
        let t = table();
        let mut terms = LoanTerms::resolve(&t, 1, Some("student"), None, None);
        let due = ts("2026-03-10T00:00:00Z");
        let now = ts("2026-03-09T00:00:00Z");
        assert_eq!(
            terms.renewed_due(due, now, None).unwrap(),
            ts("2026-03-24T00:00:00Z")
        );
        terms.loan.renew_from = RenewFrom::Now;
        assert_eq!(
            terms.renewed_due(due, now, None).unwrap(),
            ts("2026-03-23T00:00:00Z")
        );
    }
}
