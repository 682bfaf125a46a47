//! Library calendars: when a branch is open, and when a loan made there falls due.
//!
//! A [`Calendar`] is a branch's IANA time zone, its weekly opening hours and its closed dates
//! (holidays, one-off closures). Due dates are computed in the branch's own local time, so the
//! same loan instant gives a branch in `Asia/Seoul` and one in `America/New_York` each its own
//! end of day, and a loan across a daylight-saving change keeps its local closing time.
//!
//! The rules ([`Calendar::due`]):
//! - A loan of days or weeks is due on the start's local date plus the period, at the **closing
//!   time** of that day. If the library is closed that day, the [`ClosedDay`] decides:
//!   `Keep` keeps the day (due at its last millisecond, local time), `NextOpen` moves to the
//!   closing time of the next open day, `PreviousOpen` to the closing time of the last open day
//!   before it (after the start's day; when there is none, the next open day).
//! - A loan of minutes or hours is due that much later. If that instant is outside the opening
//!   hours, `Keep` keeps it, `NextOpen` moves it to the next opening, `PreviousOpen` to the last
//!   closing before it (when that is after the start; otherwise the next opening).
//! - A cap date (a fixed schedule's end, or a cap on a rolling period) is never passed: a due
//!   date after the cap's end moves back to the cap day, by the same closed-day rule but never
//!   later than the cap.
//!
//! The time zone data is bundled (jiff's `tzdb-bundle-always`), so due dates are the same on a
//! machine without `/usr/share/zoneinfo`.

use super::policy::{CalendarDate, ClosedDay, Period, TimeUnit};
use crate::ids::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, ToSpan, Zoned};
use std::collections::BTreeSet;

/// Why a calendar (or a due date on it) cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The time zone is not an IANA zone name lendkit knows.
    #[error("time zone {0:?} is unknown; use an IANA name such as \"Asia/Seoul\" or \"America/New_York\"")]
    UnknownTimeZone(String),
    /// A day's closing time is not after its opening time.
    #[error("on {weekday}, the library closes at {closes} but opens at {opens}; closing must be after opening")]
    ClosesBeforeOpening {
        /// The weekday, in English.
        weekday: &'static str,
        /// Opening time.
        opens: String,
        /// Closing time.
        closes: String,
    },
    /// Closed every day of the week.
    #[error("the library is never open: give at least one weekday opening hours")]
    NeverOpen,
    /// Closed dates (with the weekly closed days) close a whole year without an open day.
    #[error("the closed dates close every day from {from} to {to}, a year or more; a loan could never fall due")]
    ClosedForAYear {
        /// First closed day of the run.
        from: String,
        /// Last closed day of the run.
        to: String,
    },
    /// A date or an instant is outside what the calendar can compute with.
    #[error("{0} is out of the calendar's range")]
    OutOfRange(String),
}

/// Opening hours of one weekday, in the branch's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// When the branch opens.
    pub opens: Time,
    /// When it closes (after `opens`, the same day).
    pub closes: Time,
}

impl Hours {
    /// Hours from `opens` to `closes`, given as `(hour, minute)`.
    pub fn new(opens: (i8, i8), closes: (i8, i8)) -> Result<Hours, CalendarError> {
        let time = |(h, m): (i8, i8)| {
            Time::new(h, m, 0, 0).map_err(|_| CalendarError::OutOfRange(format!("{h:02}:{m:02}")))
        };
        Ok(Hours {
            opens: time(opens)?,
            closes: time(closes)?,
        })
    }
}

/// When a branch is open. See the module docs for how due dates follow from it.
#[derive(Debug, Clone)]
pub struct Calendar {
    zone: String,
    tz: TimeZone,
    /// Opening hours by weekday, Monday first; `None` is a closed weekday.
    week: [Option<Hours>; 7],
    closed: BTreeSet<Date>,
}

/// How far the search for an open day goes before giving up (a validated calendar always
/// finds one sooner).
const SEARCH_DAYS: i32 = 400;

impl Calendar {
    /// A calendar in time zone `zone` with opening hours per weekday (Monday first; `None`
    /// closed) and closed dates. Refuses an unknown zone, a day closing before it opens, a
    /// week with no open day, and closed dates that leave no open day for a whole year.
    pub fn new(
        zone: &str,
        week: [Option<Hours>; 7],
        closed: impl IntoIterator<Item = Date>,
    ) -> Result<Calendar, CalendarError> {
        let tz = jiff::tz::db()
            .get(zone)
            .map_err(|_| CalendarError::UnknownTimeZone(zone.to_owned()))?;
        for (day, hours) in week.iter().enumerate() {
            if let Some(h) = hours {
                if h.closes <= h.opens {
                    return Err(CalendarError::ClosesBeforeOpening {
                        weekday: WEEKDAYS[day],
                        opens: h.opens.to_string(),
                        closes: h.closes.to_string(),
                    });
                }
            }
        }
        if week.iter().all(Option::is_none) {
            return Err(CalendarError::NeverOpen);
        }
        let calendar = Calendar {
            zone: zone.to_owned(),
            tz,
            week,
            closed: closed.into_iter().collect(),
        };
        calendar.check_no_closed_year()?;
        Ok(calendar)
    }

    /// Open every day around the clock, in UTC: the calendar of a branch that has none (`*`).
    pub fn always_open() -> Calendar {
        let all_day = Hours {
            opens: Time::MIN,
            closes: Time::MAX,
        };
        Calendar {
            zone: "UTC".into(),
            tz: TimeZone::UTC,
            week: [Some(all_day); 7],
            closed: BTreeSet::new(),
        }
    }

    /// The IANA name of the calendar's time zone.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The opening hours on `date`, or `None` when the branch is closed that day.
    pub fn hours_on(&self, date: Date) -> Option<Hours> {
        if self.closed.contains(&date) {
            return None;
        }
        self.week[weekday_index(date.weekday())]
    }

    /// Whether the branch opens at all on `date`.
    pub fn is_open_on(&self, date: Date) -> bool {
        self.hours_on(date).is_some()
    }

    /// The local date of an instant.
    pub fn date_of(&self, at: Timestamp) -> Result<Date, CalendarError> {
        Ok(self.zoned(at)?.date())
    }

    /// When a loan of `period` made at `start` falls due, under `rule` and never after `cap`.
    pub fn due(
        &self,
        start: Timestamp,
        period: Period,
        rule: ClosedDay,
        cap: Option<CalendarDate>,
    ) -> Result<Timestamp, CalendarError> {
        let cap = cap.map(|c| c.0);
        let start_zoned = self.zoned(start)?;
        let due = match period.unit {
            TimeUnit::Days | TimeUnit::Weeks => {
                let amount = i64::try_from(period.amount)
                    .map_err(|_| CalendarError::OutOfRange(period.to_string()))?;
                let days =
                    amount.saturating_mul(if period.unit == TimeUnit::Weeks { 7 } else { 1 });
                let span = Span::new()
                    .try_days(days)
                    .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
                let date = start_zoned
                    .date()
                    .checked_add(span)
                    .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
                self.end_of_due_day(date, start_zoned.date(), rule)?
            }
            TimeUnit::Minutes | TimeUnit::Hours => {
                let amount = i64::try_from(period.amount)
                    .map_err(|_| CalendarError::OutOfRange(period.to_string()))?;
                let span: Span = if period.unit == TimeUnit::Hours {
                    amount.hours()
                } else {
                    amount.minutes()
                };
                let at = start_zoned
                    .checked_add(span)
                    .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
                self.within_hours(at, &start_zoned, rule)?
            }
        };
        match cap {
            Some(cap) if due.date() > cap => {
                // Never after the cap: its own day, or the last open day before it.
                let rule = if rule == ClosedDay::NextOpen {
                    ClosedDay::PreviousOpen
                } else {
                    rule
                };
                let capped = self.end_of_due_day(cap, start_zoned.date(), rule)?;
                Ok(millis(&capped))
            }
            _ => Ok(millis(&due)),
        }
    }

    /// The closing time of the `days`-th open day after the local date of `start` (a hold's
    /// pickup deadline: shelf days are counted in open days). `days` = 0 is `start`'s own day's
    /// closing time if it is open, else the next open day's.
    pub fn after_open_days(&self, start: Timestamp, days: u64) -> Result<Timestamp, CalendarError> {
        let mut day = self.zoned(start)?.date();
        if days == 0 {
            if let Some(h) = self.hours_on(day) {
                return Ok(millis(&self.at(day, h.closes)?));
            }
            return Ok(millis(&self.next_open_close(day)?));
        }
        let mut left = days;
        // A year without an open day is refused when the calendar is read, so this ends.
        let limit = u64::try_from(SEARCH_DAYS)
            .unwrap_or(400)
            .saturating_mul(days.min(366) + 1);
        for _ in 0..limit {
            day = day
                .tomorrow()
                .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
            if let Some(h) = self.hours_on(day) {
                left -= 1;
                if left == 0 {
                    return Ok(millis(&self.at(day, h.closes)?));
                }
            }
        }
        Err(CalendarError::OutOfRange(format!(
            "{days} open days after {day}"
        )))
    }

    /// How many open days lie after `from` up to and including `to` (both local dates).
    pub fn open_days_between(&self, from: Date, to: Date) -> i64 {
        let mut n = 0;
        let mut day = from;
        while day < to {
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
            if self.is_open_on(day) {
                n += 1;
            }
        }
        n
    }

    /// The end of the day a day-based loan falls due on, starting from `date`.
    fn end_of_due_day(
        &self,
        date: Date,
        start: Date,
        rule: ClosedDay,
    ) -> Result<Zoned, CalendarError> {
        if let Some(hours) = self.hours_on(date) {
            return self.at(date, hours.closes);
        }
        match rule {
            ClosedDay::Keep => self.at(date, Time::MAX),
            ClosedDay::NextOpen => self.next_open_close(date),
            ClosedDay::PreviousOpen => {
                let mut day = date;
                for _ in 0..SEARCH_DAYS {
                    day = day
                        .yesterday()
                        .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
                    if day <= start {
                        break;
                    }
                    if let Some(hours) = self.hours_on(day) {
                        return self.at(day, hours.closes);
                    }
                }
                self.next_open_close(date)
            }
        }
    }

    /// The closing time of the first open day after `date`.
    fn next_open_close(&self, date: Date) -> Result<Zoned, CalendarError> {
        let mut day = date;
        for _ in 0..SEARCH_DAYS {
            day = day
                .tomorrow()
                .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
            if let Some(hours) = self.hours_on(day) {
                return self.at(day, hours.closes);
            }
        }
        Err(CalendarError::OutOfRange(format!(
            "an open day after {date}"
        )))
    }

    /// A short loan's due instant moved into the opening hours by `rule`.
    fn within_hours(
        &self,
        at: Zoned,
        start: &Zoned,
        rule: ClosedDay,
    ) -> Result<Zoned, CalendarError> {
        let open_now = self
            .hours_on(at.date())
            .is_some_and(|h| at.time() >= h.opens && at.time() <= h.closes);
        if open_now || rule == ClosedDay::Keep {
            return Ok(at);
        }
        if rule == ClosedDay::PreviousOpen {
            // The last closing before `at`, if it is after the start.
            let mut day = at.date();
            for _ in 0..SEARCH_DAYS {
                if let Some(h) = self.hours_on(day) {
                    let close = self.at(day, h.closes)?;
                    if close < at {
                        if close > *start {
                            return Ok(close);
                        }
                        break;
                    }
                }
                day = day
                    .yesterday()
                    .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
            }
        }
        // The next opening after `at`.
        let mut day = at.date();
        for _ in 0..SEARCH_DAYS {
            if let Some(h) = self.hours_on(day) {
                let opens = self.at(day, h.opens)?;
                if opens > at {
                    return Ok(opens);
                }
            }
            day = day
                .tomorrow()
                .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
        }
        Err(CalendarError::OutOfRange(format!("an opening after {at}")))
    }

    /// `date` at local `time` in the calendar's zone (a time skipped by a DST change resolves
    /// to the instant after the gap, as jiff's compatible disambiguation does).
    fn at(&self, date: Date, time: Time) -> Result<Zoned, CalendarError> {
        date.to_datetime(time)
            .to_zoned(self.tz.clone())
            .map_err(|e| CalendarError::OutOfRange(e.to_string()))
    }

    fn zoned(&self, at: Timestamp) -> Result<Zoned, CalendarError> {
        jiff::Timestamp::from_millisecond(at.0)
            .map(|t| t.to_zoned(self.tz.clone()))
            .map_err(|e| CalendarError::OutOfRange(e.to_string()))
    }

    /// Refuses closed dates that, with the closed weekdays, leave a year without an open day.
    fn check_no_closed_year(&self) -> Result<(), CalendarError> {
        let mut run: Option<(Date, Date)> = None;
        for &date in &self.closed {
            // Extend the current run over closed weekdays between closed dates.
            if let Some((from, to)) = run {
                let mut day = to;
                let mut joined = false;
                while let Ok(next) = day.tomorrow() {
                    if next == date {
                        joined = true;
                        break;
                    }
                    if next > date || self.is_open_on(next) {
                        break;
                    }
                    day = next;
                }
                run = Some(if joined { (from, date) } else { (date, date) });
            } else {
                run = Some((date, date));
            }
            if let Some((from, to)) = run {
                if to.since(from).map_or(0, |s| s.get_days()) >= 365 {
                    return Err(CalendarError::ClosedForAYear {
                        from: from.to_string(),
                        to: to.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn weekday_index(day: Weekday) -> usize {
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

fn millis(z: &Zoned) -> Timestamp {
    Timestamp(z.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn weekdays_9_to_18_closed_sunday() -> [Option<Hours>; 7] {
        let h = Hours::new((9, 0), (18, 0)).unwrap();
        [Some(h), Some(h), Some(h), Some(h), Some(h), Some(h), None]
    }

    fn days(amount: u64) -> Period {
        Period {
            amount,
            unit: TimeUnit::Days,
        }
    }

    fn local(cal: &Calendar, ts: Timestamp) -> String {
        jiff::Timestamp::from_millisecond(ts.0)
            .unwrap()
            .to_zoned(cal.tz.clone())
            .strftime("%Y-%m-%d %H:%M %a")
            .to_string()
    }

    fn instant(zone: &str, y: i16, m: i8, d: i8, h: i8) -> Timestamp {
        let z = date(y, m, d).at(h, 0, 0, 0).in_tz(zone).unwrap();
        Timestamp(z.timestamp().as_millisecond())
    }

    #[test]
    fn a_holiday_due_date_follows_the_closed_day_rule() {
        // A 14-day loan made Monday 2 March 2026; Monday 16 March is a holiday.
        let cal = Calendar::new(
            "Europe/Berlin",
            weekdays_9_to_18_closed_sunday(),
            [date(2026, 3, 16)],
        )
        .unwrap();
        let start = instant("Europe/Berlin", 2026, 3, 2, 10);
        let due = |rule| local(&cal, cal.due(start, days(14), rule, None).unwrap());
        assert_eq!(due(ClosedDay::NextOpen), "2026-03-17 18:00 Tue");
        assert_eq!(due(ClosedDay::PreviousOpen), "2026-03-14 18:00 Sat");
        assert_eq!(due(ClosedDay::Keep), "2026-03-16 23:59 Mon");
    }

    #[test]
    fn a_rolling_period_never_passes_its_cap() {
        let cal = Calendar::new("UTC", weekdays_9_to_18_closed_sunday(), []).unwrap();
        let start = instant("UTC", 2026, 6, 15, 10);
        let due = cal
            .due(
                start,
                days(28),
                ClosedDay::NextOpen,
                Some(CalendarDate(date(2026, 6, 30))),
            )
            .unwrap();
        assert_eq!(local(&cal, due), "2026-06-30 18:00 Tue");
    }

    #[test]
    fn each_branch_ends_the_day_in_its_own_time_zone() {
        let h = Hours::new((10, 0), (20, 0)).unwrap();
        let seoul = Calendar::new("Asia/Seoul", [Some(h); 7], []).unwrap();
        let new_york = Calendar::new("America/New_York", [Some(h); 7], []).unwrap();
        // 2026-03-02 23:00 UTC: already 3 March in Seoul, still 2 March in New York.
        let start = Timestamp(
            jiff::Timestamp::from_second(1_772_492_400)
                .unwrap()
                .as_millisecond(),
        );
        let s = seoul.due(start, days(7), ClosedDay::Keep, None).unwrap();
        let n = new_york.due(start, days(7), ClosedDay::Keep, None).unwrap();
        assert_eq!(local(&seoul, s), "2026-03-10 20:00 Tue");
        assert_eq!(local(&new_york, n), "2026-03-09 20:00 Mon");
    }

    #[test]
    fn a_loan_across_a_dst_change_keeps_its_local_closing_time() {
        let h = Hours::new((9, 0), (18, 0)).unwrap();
        let cal = Calendar::new("America/New_York", [Some(h); 7], []).unwrap();
        // DST starts on 8 March 2026 in New York.
        let start = instant("America/New_York", 2026, 3, 2, 12);
        let due = cal.due(start, days(14), ClosedDay::Keep, None).unwrap();
        assert_eq!(local(&cal, due), "2026-03-16 18:00 Mon");
        // 14 days and 6 hours of wall-clock time, minus the hour the clocks skipped.
        assert_eq!(due.0 - start.0, (14 * 24 + 6 - 1) * 3_600_000);
    }

    #[test]
    fn short_loans_move_into_opening_hours() {
        let cal = Calendar::new("UTC", weekdays_9_to_18_closed_sunday(), []).unwrap();
        let start = instant("UTC", 2026, 3, 6, 16); // Friday 16:00
        let hours = |n, rule| {
            let p = Period {
                amount: n,
                unit: TimeUnit::Hours,
            };
            local(&cal, cal.due(start, p, rule, None).unwrap())
        };
        assert_eq!(hours(1, ClosedDay::NextOpen), "2026-03-06 17:00 Fri");
        assert_eq!(hours(4, ClosedDay::NextOpen), "2026-03-07 09:00 Sat");
        assert_eq!(hours(4, ClosedDay::PreviousOpen), "2026-03-06 18:00 Fri");
        assert_eq!(hours(4, ClosedDay::Keep), "2026-03-06 20:00 Fri");
    }

    #[test]
    fn open_days_are_counted_without_closed_ones() {
        let cal =
            Calendar::new("UTC", weekdays_9_to_18_closed_sunday(), [date(2026, 3, 10)]).unwrap();
        // After Friday 6 March up to Wednesday 11 March: Sat, (Sun closed), Mon, (Tue holiday), Wed.
        assert_eq!(
            cal.open_days_between(date(2026, 3, 6), date(2026, 3, 11)),
            3
        );
        assert_eq!(
            cal.open_days_between(date(2026, 3, 11), date(2026, 3, 6)),
            0
        );
    }

    #[test]
    fn bad_calendars_are_refused() {
        assert!(matches!(
            Calendar::new("Mars/Olympus", weekdays_9_to_18_closed_sunday(), []),
            Err(CalendarError::UnknownTimeZone(_))
        ));
        assert_eq!(
            Calendar::new("UTC", [None; 7], []).unwrap_err(),
            CalendarError::NeverOpen
        );
        let backwards = Hours::new((18, 0), (9, 0)).unwrap();
        assert!(matches!(
            Calendar::new("UTC", [Some(backwards); 7], []),
            Err(CalendarError::ClosesBeforeOpening {
                weekday: "Monday",
                ..
            })
        ));
        let year: Vec<Date> = (0..366)
            .map(|d| date(2026, 1, 1).checked_add(d.days()).unwrap())
            .collect();
        assert!(matches!(
            Calendar::new("UTC", weekdays_9_to_18_closed_sunday(), year.clone()),
            Err(CalendarError::ClosedForAYear { .. })
        ));
        // Closing every open weekday of a year (Sundays are closed anyway) is a closed year too.
        let open_days: Vec<Date> = year
            .into_iter()
            .filter(|d| d.weekday() != Weekday::Sunday)
            .collect();
        assert!(matches!(
            Calendar::new("UTC", weekdays_9_to_18_closed_sunday(), open_days),
            Err(CalendarError::ClosedForAYear { .. })
        ));
        // Three weeks of closures are fine.
        let weeks: Vec<Date> = (0..21)
            .map(|d| date(2026, 7, 1).checked_add(d.days()).unwrap())
            .collect();
        assert!(Calendar::new("UTC", weekdays_9_to_18_closed_sunday(), weeks).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn calendar() -> impl Strategy<Value = Calendar> {
            (
                prop::array::uniform7(prop::option::weighted(0.7, (6i8..12, 13i8..23))),
                prop::collection::vec(0i64..120, 0..30),
                prop::sample::select(vec![
                    "UTC",
                    "Asia/Seoul",
                    "America/New_York",
                    "Europe/Berlin",
                ]),
            )
                .prop_filter_map("a calendar that opens", |(week, closed, zone)| {
                    let week = week.map(|d| d.map(|(o, c)| Hours::new((o, 0), (c, 0)).unwrap()));
                    let closed = closed
                        .into_iter()
                        .map(|d| date(2026, 1, 1).checked_add(d.days()).unwrap());
                    Calendar::new(zone, week, closed).ok()
                })
        }

        proptest! {
            #[test]
            fn a_moved_due_date_is_never_on_a_closed_day(
                cal in calendar(),
                start_day in 0i64..100,
                length in 1u64..60,
                next in any::<bool>(),
            ) {
                let start = date(2026, 1, 1).checked_add(start_day.days()).unwrap().at(12, 0, 0, 0);
                let start = Timestamp(start.to_zoned(cal.tz.clone()).unwrap().timestamp().as_millisecond());
                let rule = if next { ClosedDay::NextOpen } else { ClosedDay::PreviousOpen };
                let due = cal.due(start, days(length), rule, None).unwrap();
                let day = cal.date_of(due).unwrap();
                prop_assert!(cal.is_open_on(day), "due on {day}, a closed day");
                prop_assert!(due > start);
                // At that day's closing time.
                let closes = cal.hours_on(day).unwrap().closes;
                let at = jiff::Timestamp::from_millisecond(due.0).unwrap().to_zoned(cal.tz.clone()).time();
                prop_assert_eq!((at.hour(), at.minute()), (closes.hour(), closes.minute()));
            }
        }
    }
}
