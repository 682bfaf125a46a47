//! Overdue fines: what a late return costs under a [`FinePolicy`].
//!
//! [`FinePolicy::fine`] is a pure function of three things: when the loan was due, when it was
//! returned (the `returned_at` of the return, which may be earlier than when the return was
//! processed: a book dropped in the box on the due date owes nothing), and the calendar of the
//! branch it is counted on. It reads no clock and never fails: any two instants give a fine.
//!
//! # How late
//!
//! [`FinePolicy::units_late`] measures lateness in the fine's unit, `per`. A return at or before
//! the due instant is never late.
//!
//! - **Per day**: the number of the branch's local dates after the due date, up to and including
//!   the return's date. A loan due at closing time on Monday is one day late when it comes back on
//!   Tuesday, at any hour, and not late at all when it comes back later on Monday (through the
//!   book drop). With `count_closed_days = false` only the dates the branch opens count
//!   ([`Calendar::open_days_between`]): a loan due on Friday and returned on Tuesday, across a
//!   closed Sunday, is three days late, not four. A return on a closed date adds nothing for
//!   that date.
//! - **Per hour**: the time from due to return in hours, rounded up: any started hour counts.
//!   Hours are elapsed time, so a night with a daylight-saving change is 23 or 25 of them. With
//!   `count_closed_days = false`, the time that falls on a date the branch is closed is left
//!   out — the whole local date, midnight to midnight — and what remains is rounded up. Opening
//!   hours within an open date are not looked at: an hour fine runs through the night.
//! - **Without a calendar** (`None`, a branch that has none): every day counts, and days are
//!   UTC dates. This is what [`Calendar::always_open`] gives too.
//!
//! Why closed time is left out as it passes rather than by subtracting 24 hours per closed
//! date (as Koha does): so a fine never drops while an item stays out. Subtracting a whole
//! closed Sunday at Monday 00:00 would make a return at 00:30 owe less than one at 23:30 the
//! night before.
//!
//! # Grace, rate and cap
//!
//! 1. The `grace` period is converted to the fine's unit, rounding up ([`FinePolicy::grace_units`]):
//!    a grace of `"36 hours"` on a day fine is 2 days, `"2 days"` on an hour fine is 48 hours,
//!    `"90 minutes"` on an hour fine is 2 hours. A day of grace is a unit of lateness, so with
//!    `count_closed_days = false` a grace of 2 days is two *open* days.
//! 2. A loan at most `grace` late owes nothing. Past it, the chargeable units are the units late
//!    minus the grace — or all the units late when `charge_grace` is set (FOLIO's behaviour,
//!    Koha's `FinesIncludeGracePeriod`).
//! 3. The fine is the chargeable units times `points`, capped at `max_per_loan` when there is
//!    one, and never more than [`MAX_AMOUNT`], the largest amount lendkit holds. The
//!    multiplication cannot overflow: it stops at the cap.
//!
//! So a fine only grows with lateness, never exceeds its cap, and is zero within the grace;
//! property tests check these for random policies and calendars. (One historic exception to
//! the growth: a zone whose clocks once went back across midnight, as Goose Bay's did until
//! 2010, repeats an hour of the previous date, and a day fine counted in that hour is a day
//! less. No zone's current rules do this.)
//!
//! # Cost
//!
//! Without skipping closed days, a fine costs a few arithmetic operations whatever the lateness.
//! Skipping closed days walks the calendar one date at a time, so it costs time in proportion
//! to the days late (well under a microsecond a day). Instants beyond the years −9999 and 9999,
//! which no calendar covers, count as those years' ends.
//!
//! # Example
//!
//! One point a day, two days' grace, at most ten points, at a branch in Berlin open Monday to
//! Saturday:
//!
//! ```
//! use jiff::civil::date;
//! use lendkit_core::circulation::{Calendar, FinePolicy, FineRate, Hours, Period, TimeUnit};
//! use lendkit_core::ids::Timestamp;
//!
//! let h = Hours::new((9, 0), (18, 0))?;
//! let monday_to_saturday = [Some(h), Some(h), Some(h), Some(h), Some(h), Some(h), None];
//! let berlin = Calendar::new("Europe/Berlin", monday_to_saturday, [])?;
//! let at = |d: i8, hour: i8| -> Result<Timestamp, jiff::Error> {
//!     let z = date(2026, 3, d).at(hour, 0, 0, 0).in_tz("Europe/Berlin")?;
//!     Ok(Timestamp(z.timestamp().as_millisecond()))
//! };
//! let daily = FinePolicy {
//!     points: 1,
//!     per: FineRate::Day,
//!     grace: Some(Period { amount: 2, unit: TimeUnit::Days }),
//!     charge_grace: false,
//!     count_closed_days: false,
//!     max_per_loan: Some(10),
//!     forgive_on_renewal: false,
//! };
//! let due = at(2, 18)?; // Monday 2 March, closing time
//! assert_eq!(daily.fine(due, at(2, 21)?, Some(&berlin)), 0); // the book drop, same evening
//! assert_eq!(daily.fine(due, at(4, 10)?, Some(&berlin)), 0); // 2 days late: within the grace
//! assert_eq!(daily.units_late(due, at(7, 10)?, Some(&berlin)), 5);
//! assert_eq!(daily.fine(due, at(7, 10)?, Some(&berlin)), 3); // 5 days late, 2 of them grace
//! assert_eq!(daily.fine(due, at(31, 10)?, Some(&berlin)), 10); // capped
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::calendar::Calendar;
use super::policy::{FinePolicy, FineRate};
use crate::ids::{Timestamp, DAY_MS, MAX_AMOUNT};
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// One hour in milliseconds.
const HOUR_MS: u64 = 3_600_000;

impl FinePolicy {
    /// The fine for a loan due at `due` and returned at `returned`, counted on the branch's
    /// calendar (`None`: no calendar — every day counts, days are UTC dates). Zero when the
    /// return is not late or within the grace; never more than `max_per_loan` (when set) nor
    /// [`MAX_AMOUNT`]. See the [module docs](crate::circulation::fine) for the rules.
    pub fn fine(&self, due: Timestamp, returned: Timestamp, calendar: Option<&Calendar>) -> u64 {
        let late = self.units_late(due, returned, calendar);
        let grace = self.grace_units();
        if late <= grace {
            return 0;
        }
        let chargeable = if self.charge_grace {
            late
        } else {
            late - grace
        };
        let fine = chargeable.saturating_mul(self.points).min(MAX_AMOUNT);
        match self.max_per_loan {
            Some(max) => fine.min(max),
            None => fine,
        }
    }

    /// How late, in the fine's unit (days or hours), before grace — also useful for views.
    /// Zero when `returned` is not after `due`. With a calendar and `count_closed_days` false,
    /// closed days are skipped as the [module docs](crate::circulation::fine) say.
    pub fn units_late(
        &self,
        due: Timestamp,
        returned: Timestamp,
        calendar: Option<&Calendar>,
    ) -> u64 {
        if returned <= due {
            return 0;
        }
        match (self.per, calendar) {
            (FineRate::Day, None) => utc_days_between(due, returned),
            (FineRate::Day, Some(calendar)) => {
                local_days_between(calendar, due, returned, self.count_closed_days)
            }
            (FineRate::Hour, Some(calendar)) if !self.count_closed_days => {
                hours_rounded_up(open_millis_between(calendar, due, returned))
            }
            (FineRate::Hour, _) => hours_rounded_up(returned.0.abs_diff(due.0)),
        }
    }

    /// The grace in the fine's unit, rounded up: `"36 hours"` is 2 for a day fine, `"2 days"`
    /// 48 for an hour fine. Zero without a grace.
    pub fn grace_units(&self) -> u64 {
        let unit = match self.per {
            FineRate::Day => DAY_MS.unsigned_abs(),
            FineRate::Hour => HOUR_MS,
        };
        self.grace.map_or(0, |g| g.millis().div_ceil(unit))
    }
}

/// Whole hours in `ms`, a started hour counting as one.
fn hours_rounded_up(ms: u64) -> u64 {
    ms.div_ceil(HOUR_MS)
}

/// UTC dates after `due`'s, up to and including `returned`'s.
fn utc_days_between(due: Timestamp, returned: Timestamp) -> u64 {
    // Each day number is within ±1.1 × 10^11, so the difference cannot overflow.
    let days = returned.0.div_euclid(DAY_MS) - due.0.div_euclid(DAY_MS);
    u64::try_from(days).unwrap_or(0)
}

/// Local dates after `due`'s, up to and including `returned`'s; only open ones unless
/// `count_closed`.
fn local_days_between(
    calendar: &Calendar,
    due: Timestamp,
    returned: Timestamp,
    count_closed: bool,
) -> u64 {
    let zone = Zone::of(calendar);
    let (from, to) = (zone.date_of(due), zone.date_of(returned));
    let days = if count_closed {
        to.since(from).map_or(0, |span| i64::from(span.get_days()))
    } else {
        calendar.open_days_between(from, to)
    };
    u64::try_from(days).unwrap_or(0)
}

/// The milliseconds from `due` to `returned` (`due < returned`) that fall on local dates the
/// branch is open: the elapsed time minus its overlap with each closed date, midnight to
/// midnight.
fn open_millis_between(calendar: &Calendar, due: Timestamp, returned: Timestamp) -> u64 {
    let elapsed = returned.0.abs_diff(due.0);
    let zone = Zone::of(calendar);
    let (from, to) = (in_calendar_range(due), in_calendar_range(returned));
    let last = zone.date_of(returned);
    let mut day = zone.date_of(due);
    let mut closed: u64 = 0;
    loop {
        if !calendar.is_open_on(day) {
            let start = zone.start_of(day).map_or(from, |s| s.max(from));
            let end = day
                .tomorrow()
                .ok()
                .and_then(|next| zone.start_of(next))
                .map_or(to, |e| e.min(to));
            if end > start {
                closed = closed.saturating_add(end.0.abs_diff(start.0));
            }
        }
        if day >= last {
            break;
        }
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    elapsed.saturating_sub(closed)
}

/// `at`, moved into the instants jiff can place on a calendar (years −9999 to 9999).
fn in_calendar_range(at: Timestamp) -> Timestamp {
    let first = jiff::Timestamp::MIN.as_millisecond();
    let last = jiff::Timestamp::MAX.as_millisecond();
    Timestamp(at.0.clamp(first, last))
}

/// A calendar's time zone, for local dates and their first instants.
struct Zone(TimeZone);

impl Zone {
    fn of(calendar: &Calendar) -> Zone {
        // The calendar checked its zone when it was made, so the lookup finds it.
        Zone(jiff::tz::db().get(calendar.zone()).unwrap_or(TimeZone::UTC))
    }

    /// The local date of `at` (of the calendar's first or last instant when beyond them).
    fn date_of(&self, at: Timestamp) -> Date {
        let at = in_calendar_range(at);
        jiff::Timestamp::from_millisecond(at.0)
            .map_or(if at.0 < 0 { Date::MIN } else { Date::MAX }, |t| {
                t.to_zoned(self.0.clone()).date()
            })
    }

    /// The first instant of local date `date` (after the gap when a clock change skips
    /// midnight); `None` beyond the calendar's range.
    fn start_of(&self, date: Date) -> Option<Timestamp> {
        date.to_zoned(self.0.clone())
            .ok()
            .map(|z| Timestamp(z.timestamp().as_millisecond()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circulation::calendar::Hours;
    use crate::circulation::policy::{Period, TimeUnit};
    use jiff::civil::date;

    const BERLIN: &str = "Europe/Berlin";

    /// Open Monday to Saturday, 09:00 to 18:00; closed on Sunday.
    fn monday_to_saturday() -> [Option<Hours>; 7] {
        let h = Hours::new((9, 0), (18, 0)).unwrap();
        [Some(h), Some(h), Some(h), Some(h), Some(h), Some(h), None]
    }

    fn berlin() -> Calendar {
        Calendar::new(BERLIN, monday_to_saturday(), []).unwrap()
    }

    /// `d` March 2026 at `h:m`, Berlin time (2 March 2026 is a Monday).
    fn march(d: i8, h: i8, m: i8) -> Timestamp {
        let z = date(2026, 3, d).at(h, m, 0, 0).in_tz(BERLIN).unwrap();
        Timestamp(z.timestamp().as_millisecond())
    }

    fn period(amount: u64, unit: TimeUnit) -> Period {
        Period { amount, unit }
    }

    /// The issue's policy: 1 point a day, 2 days' grace, at most 10.
    fn daily() -> FinePolicy {
        FinePolicy {
            points: 1,
            per: FineRate::Day,
            grace: Some(period(2, TimeUnit::Days)),
            charge_grace: false,
            count_closed_days: false,
            max_per_loan: Some(10),
            forgive_on_renewal: false,
        }
    }

    fn hourly() -> FinePolicy {
        FinePolicy {
            points: 1,
            per: FineRate::Hour,
            grace: None,
            charge_grace: false,
            count_closed_days: false,
            max_per_loan: None,
            forgive_on_renewal: false,
        }
    }

    #[test]
    fn within_the_grace_nothing_is_owed() {
        let cal = berlin();
        let due = march(2, 18, 0); // Monday, closing time
        let returned = march(4, 10, 0); // Wednesday: Tuesday and Wednesday late
        assert_eq!(daily().units_late(due, returned, Some(&cal)), 2);
        assert_eq!(daily().fine(due, returned, Some(&cal)), 0);
    }

    #[test]
    fn past_the_grace_the_grace_is_charged_only_with_charge_grace() {
        let cal = berlin();
        let due = march(2, 18, 0);
        let returned = march(7, 10, 0); // Saturday: Tuesday to Saturday, 5 days
        assert_eq!(daily().units_late(due, returned, Some(&cal)), 5);
        assert_eq!(daily().fine(due, returned, Some(&cal)), 3);
        let charge_grace = FinePolicy {
            charge_grace: true,
            ..daily()
        };
        assert_eq!(charge_grace.fine(due, returned, Some(&cal)), 5);
    }

    #[test]
    fn a_fine_stops_at_its_cap() {
        let cal = berlin();
        let due = march(2, 18, 0);
        let april_1 = {
            let z = date(2026, 4, 1).at(10, 0, 0, 0).in_tz(BERLIN).unwrap();
            Timestamp(z.timestamp().as_millisecond())
        };
        // 30 days late, counting every day: 28 chargeable, capped at 10.
        let counting_closed = FinePolicy {
            count_closed_days: true,
            ..daily()
        };
        assert_eq!(counting_closed.units_late(due, april_1, Some(&cal)), 30);
        assert_eq!(counting_closed.fine(due, april_1, Some(&cal)), 10);
        assert_eq!(counting_closed.fine(due, april_1, None), 10);
        // Without the closed Sundays (8, 15, 22, 29 March): 26 days, capped all the same.
        assert_eq!(daily().units_late(due, april_1, Some(&cal)), 26);
        assert_eq!(daily().fine(due, april_1, Some(&cal)), 10);
        // Below the cap, and reaching it: 10 open days late (Sunday 8 March skipped), then 12.
        assert_eq!(daily().fine(due, march(13, 12, 0), Some(&cal)), 8);
        assert_eq!(daily().fine(due, march(16, 12, 0), Some(&cal)), 10);
    }

    #[test]
    fn closed_days_are_not_late_unless_counted() {
        let cal = berlin();
        let no_grace = FinePolicy {
            grace: None,
            max_per_loan: None,
            ..daily()
        };
        let due = march(6, 18, 0); // Friday
        let returned = march(10, 11, 0); // Tuesday: Saturday, (Sunday), Monday, Tuesday
        assert_eq!(no_grace.fine(due, returned, Some(&cal)), 3);
        let counting_closed = FinePolicy {
            count_closed_days: true,
            ..no_grace.clone()
        };
        assert_eq!(counting_closed.fine(due, returned, Some(&cal)), 4);
        // Without a calendar every day counts.
        assert_eq!(no_grace.fine(due, returned, None), 4);
        // A closed date (a holiday) is skipped like a closed weekday.
        let holiday = Calendar::new(BERLIN, monday_to_saturday(), [date(2026, 3, 9)]).unwrap();
        assert_eq!(no_grace.fine(due, returned, Some(&holiday)), 2);
        // Returned on the closed Sunday: only Saturday counts.
        assert_eq!(no_grace.fine(due, march(8, 12, 0), Some(&cal)), 1);
    }

    #[test]
    fn a_return_on_the_due_date_is_not_late() {
        let cal = berlin();
        let due = march(2, 18, 0);
        // Dropped in the box before closing, or in the evening after it; processed days later
        // with the drop as `returned_at`.
        for returned in [march(2, 12, 0), due, march(2, 21, 0), march(2, 23, 59)] {
            assert_eq!(daily().units_late(due, returned, Some(&cal)), 0);
            assert_eq!(daily().fine(due, returned, Some(&cal)), 0);
            let strict = FinePolicy {
                grace: None,
                charge_grace: true,
                count_closed_days: true,
                max_per_loan: None,
                ..daily()
            };
            assert_eq!(strict.fine(due, returned, Some(&cal)), 0);
        }
        // Just past midnight is the next date.
        assert_eq!(daily().units_late(due, march(3, 0, 0), Some(&cal)), 1);
    }

    #[test]
    fn days_are_the_branchs_local_dates() {
        let no_grace = FinePolicy {
            grace: None,
            ..daily()
        };
        // Due 2 March 23:00 UTC (3 March 00:00 in Berlin), back 3 March 00:30 UTC.
        let due = Timestamp(
            date(2026, 3, 2)
                .at(23, 0, 0, 0)
                .in_tz("UTC")
                .unwrap()
                .timestamp()
                .as_millisecond(),
        );
        let returned = due.plus_ms(90 * 60_000);
        assert_eq!(no_grace.units_late(due, returned, None), 1);
        assert_eq!(no_grace.units_late(due, returned, Some(&berlin())), 0);
        assert_eq!(
            no_grace.units_late(due, returned, Some(&Calendar::always_open())),
            1
        );
    }

    #[test]
    fn an_hour_fine_counts_started_hours() {
        let cal = berlin();
        let due = march(6, 18, 0); // Friday, closing time
        assert_eq!(hourly().fine(due, march(6, 20, 30), Some(&cal)), 3);
        assert_eq!(hourly().fine(due, march(6, 20, 0), Some(&cal)), 2);
        assert_eq!(hourly().fine(due, due.plus_ms(1), Some(&cal)), 1);
        assert_eq!(hourly().fine(due, march(6, 20, 30), None), 3);
        let graced = FinePolicy {
            points: 5,
            grace: Some(period(90, TimeUnit::Minutes)),
            ..hourly()
        };
        assert_eq!(graced.grace_units(), 2);
        assert_eq!(graced.fine(due, march(6, 19, 30), Some(&cal)), 0);
        assert_eq!(graced.fine(due, march(6, 20, 30), Some(&cal)), 5);
        let charge_grace = FinePolicy {
            charge_grace: true,
            ..graced
        };
        assert_eq!(charge_grace.fine(due, march(6, 20, 30), Some(&cal)), 15);
    }

    #[test]
    fn an_hour_fine_skips_closed_dates_as_they_pass() {
        let cal = berlin();
        let due = march(7, 17, 0); // Saturday 17:00
        let counting_closed = FinePolicy {
            count_closed_days: true,
            ..hourly()
        };
        // Saturday 7 hours, Sunday (closed) 24, Monday 10.
        assert_eq!(counting_closed.fine(due, march(9, 10, 0), Some(&cal)), 41);
        assert_eq!(hourly().fine(due, march(9, 10, 0), Some(&cal)), 17);
        // Never less a moment later: Sunday night then Monday just after midnight.
        assert_eq!(hourly().fine(due, march(8, 23, 30), Some(&cal)), 7);
        assert_eq!(hourly().fine(due, march(9, 0, 0), Some(&cal)), 7);
        assert_eq!(hourly().fine(due, march(9, 0, 30), Some(&cal)), 8);
        // Without a calendar there is nothing to skip.
        assert_eq!(hourly().fine(due, march(9, 10, 0), None), 41);
    }

    #[test]
    fn a_closed_date_is_skipped_whole_across_a_clock_change() {
        // Clocks go forward on Sunday 29 March 2026 in Berlin: that Sunday has 23 hours.
        let cal = berlin();
        let due = march(28, 18, 0); // Saturday
        let returned = march(30, 9, 0); // Monday
        assert_eq!(returned.0 - due.0, 38 * 3_600_000);
        let counting_closed = FinePolicy {
            count_closed_days: true,
            ..hourly()
        };
        assert_eq!(counting_closed.fine(due, returned, Some(&cal)), 38);
        // Saturday 6 hours and Monday 9; all 23 of Sunday's are skipped.
        assert_eq!(hourly().fine(due, returned, Some(&cal)), 15);
    }

    #[test]
    fn the_grace_is_converted_rounding_up() {
        let day = |grace| FinePolicy { grace, ..daily() };
        let hour = |grace| FinePolicy { grace, ..hourly() };
        assert_eq!(day(Some(period(36, TimeUnit::Hours))).grace_units(), 2);
        assert_eq!(day(Some(period(24, TimeUnit::Hours))).grace_units(), 1);
        assert_eq!(day(Some(period(1, TimeUnit::Weeks))).grace_units(), 7);
        assert_eq!(day(Some(period(1, TimeUnit::Minutes))).grace_units(), 1);
        assert_eq!(day(Some(period(0, TimeUnit::Days))).grace_units(), 0);
        assert_eq!(day(None).grace_units(), 0);
        assert_eq!(hour(Some(period(2, TimeUnit::Days))).grace_units(), 48);
        assert_eq!(hour(Some(period(61, TimeUnit::Minutes))).grace_units(), 2);
        // The longest grace a rules file accepts.
        let most = MAX_AMOUNT / TimeUnit::Minutes.millis();
        assert_eq!(
            hour(Some(period(most, TimeUnit::Minutes))).grace_units(),
            (most * 60_000).div_ceil(HOUR_MS)
        );
        // A 36-hour grace on a day fine: 2 days late is still within it.
        let cal = berlin();
        let p = day(Some(period(36, TimeUnit::Hours)));
        assert_eq!(p.fine(march(2, 18, 0), march(4, 10, 0), Some(&cal)), 0);
        assert_eq!(p.fine(march(2, 18, 0), march(5, 10, 0), Some(&cal)), 1);
    }

    #[test]
    fn huge_fines_saturate_and_never_panic() {
        let cal = berlin();
        let extremes = [
            (Timestamp(i64::MIN), Timestamp(i64::MAX)),
            (Timestamp(i64::MIN), Timestamp(0)),
            (Timestamp(0), Timestamp(i64::MAX)),
            (Timestamp(i64::MAX - 1), Timestamp(i64::MAX)),
            (Timestamp(i64::MIN), Timestamp(i64::MIN + 1)),
        ];
        for per in [FineRate::Day, FineRate::Hour] {
            for charge_grace in [false, true] {
                let uncapped = FinePolicy {
                    points: u64::MAX,
                    per,
                    grace: Some(period(1000, TimeUnit::Weeks)),
                    charge_grace,
                    count_closed_days: true,
                    max_per_loan: None,
                    forgive_on_renewal: false,
                };
                let capped = FinePolicy {
                    max_per_loan: Some(500),
                    ..uncapped.clone()
                };
                for (due, returned) in extremes {
                    for calendar in [None, Some(&cal)] {
                        let f = uncapped.fine(due, returned, calendar);
                        assert!(f <= MAX_AMOUNT);
                        assert!(capped.fine(due, returned, calendar) <= 500);
                        assert_eq!(uncapped.fine(returned, due, calendar), 0);
                    }
                }
                // Late beyond any grace: the uncapped fine stops at the largest amount.
                let all = uncapped.fine(Timestamp(i64::MIN), Timestamp(i64::MAX), None);
                assert_eq!(all, MAX_AMOUNT);
                let all = capped.fine(Timestamp(i64::MIN), Timestamp(i64::MAX), Some(&cal));
                assert_eq!(all, 500);
            }
        }
        // A million points a day for a year: 365 million, well within the largest amount.
        let rich = FinePolicy {
            points: 1_000_000,
            grace: None,
            max_per_loan: None,
            count_closed_days: true,
            ..daily()
        };
        let year = Timestamp(365 * DAY_MS);
        assert_eq!(rich.fine(Timestamp(0), year, None), 365_000_000);
    }

    #[test]
    fn skipping_closed_days_works_at_the_ends_of_time() {
        // Walking a calendar over many years is slow but total; here a century of hours.
        let cal = berlin();
        let due = march(2, 18, 0);
        let century = due.plus_ms(100 * 365 * DAY_MS);
        let late = hourly().units_late(due, century, Some(&cal));
        let all = FinePolicy {
            count_closed_days: true,
            ..hourly()
        }
        .units_late(due, century, Some(&cal));
        // About a seventh of the time is on Sundays.
        assert!(late < all && late > all * 5 / 7, "{late} of {all}");
        // Near the calendar's limits nothing panics.
        for (due, returned) in [
            (Timestamp(i64::MAX - 10 * DAY_MS), Timestamp(i64::MAX)),
            (Timestamp(i64::MIN), Timestamp(i64::MIN + 10 * DAY_MS)),
        ] {
            for per in [FineRate::Day, FineRate::Hour] {
                let p = FinePolicy { per, ..hourly() };
                let _ = p.fine(due, returned, Some(&cal));
            }
        }
    }

    mod properties {
        use super::*;
        use jiff::ToSpan;
        use proptest::prelude::*;

        fn policy() -> impl Strategy<Value = FinePolicy> {
            (
                // Small rates often, so a fine stays under its cap and differences show.
                prop_oneof![0u64..4, 0u64..1000],
                prop::bool::ANY,
                prop::option::of((
                    0u64..10,
                    prop::sample::select(vec![TimeUnit::Hours, TimeUnit::Days]),
                )),
                prop::bool::ANY,
                prop::bool::ANY,
                prop::option::of(0u64..500),
            )
                .prop_map(
                    |(points, daily, grace, charge_grace, count_closed_days, max_per_loan)| {
                        FinePolicy {
                            points,
                            per: if daily { FineRate::Day } else { FineRate::Hour },
                            grace: grace.map(|(amount, unit)| Period { amount, unit }),
                            charge_grace,
                            count_closed_days,
                            max_per_loan,
                            forgive_on_renewal: false,
                        }
                    },
                )
        }

        /// Random closed weekdays (at least one open), a few closed dates in early 2026.
        fn calendar() -> impl Strategy<Value = Calendar> {
            (
                prop::array::uniform7(prop::bool::weighted(0.7)),
                prop::collection::vec(0i64..150, 0..6),
                prop::sample::select(vec![
                    "UTC",
                    "Europe/Berlin",
                    "America/New_York",
                    "Asia/Seoul",
                ]),
            )
                .prop_filter_map("a calendar that opens", |(open, closed, zone)| {
                    let h = Hours::new((9, 0), (18, 0)).ok()?;
                    let week = open.map(|o| o.then_some(h));
                    let closed = closed
                        .into_iter()
                        .filter_map(|d| date(2026, 1, 1).checked_add(d.days()).ok());
                    Calendar::new(zone, week, closed).ok()
                })
        }

        const JAN_1_2026: i64 = 1_767_225_600_000;

        proptest! {
            #[test]
            fn fines_grow_with_lateness_and_respect_cap_and_grace(
                policy in policy(),
                calendar in prop::option::of(calendar()),
                due in 0i64..100 * DAY_MS,
                first in -3 * DAY_MS..40 * DAY_MS,
                // Often less than a day: a fine must not drop at midnight either.
                more in prop_oneof![0i64..DAY_MS, 0i64..40 * DAY_MS],
            ) {
                let cal = calendar.as_ref();
                let due = Timestamp(JAN_1_2026 + due);
                let (r1, r2) = (due.plus_ms(first), due.plus_ms(first + more));

                let (f1, f2) = (policy.fine(due, r1, cal), policy.fine(due, r2, cal));
                prop_assert!(f1 <= f2, "fine dropped from {} to {}", f1, f2);
                let (u1, u2) = (policy.units_late(due, r1, cal), policy.units_late(due, r2, cal));
                prop_assert!(u1 <= u2, "lateness dropped from {} to {}", u1, u2);

                if let Some(max) = policy.max_per_loan {
                    prop_assert!(f2 <= max);
                }
                prop_assert_eq!(policy.fine(due, due, cal), 0);
                prop_assert_eq!(policy.units_late(due, due, cal), 0);
                for (units, fine) in [(u1, f1), (u2, f2)] {
                    if units <= policy.grace_units() {
                        prop_assert_eq!(fine, 0);
                    }
                }
            }

            #[test]
            fn skipping_closed_days_never_costs_more(
                policy in policy(),
                calendar in calendar(),
                due in 0i64..100 * DAY_MS,
                late in 0i64..40 * DAY_MS,
            ) {
                let due = Timestamp(JAN_1_2026 + due);
                let returned = due.plus_ms(late);
                let skipping = FinePolicy { count_closed_days: false, ..policy.clone() };
                let counting = FinePolicy { count_closed_days: true, ..policy };
                prop_assert!(
                    skipping.fine(due, returned, Some(&calendar))
                        <= counting.fine(due, returned, Some(&calendar))
                );
            }

            #[test]
            fn no_calendar_is_the_always_open_calendar(
                policy in policy(),
                due in any::<i32>(),
                late in 0i64..40 * DAY_MS,
            ) {
                let due = Timestamp(JAN_1_2026 + i64::from(due) * 1000);
                let returned = due.plus_ms(late);
                let open = Calendar::always_open();
                prop_assert_eq!(
                    policy.fine(due, returned, None),
                    policy.fine(due, returned, Some(&open))
                );
            }
        }
    }
}
