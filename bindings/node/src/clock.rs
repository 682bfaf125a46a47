//! `ManualClock`: a clock that only moves when told to, for tests and simulations.

use crate::errors;
use lendkit::adapters;
use lendkit::Timestamp;
use napi::Result;
use napi_derive::napi;
use std::time::Duration;

/// 2026-01-01T00:00:00.000Z, where a clock made without a start time stands.
const DEFAULT_START_MS: i64 = 1_767_225_600_000;

/// A clock that stands still until moved. Hand it to `Library.open`/`Library.inMemory` as
/// `options.clock` and keep it to move time: due dates, late days and the payment circuit's
/// cool-down all read it.
#[napi]
pub struct ManualClock {
    inner: adapters::ManualClock,
}

/// A whole number of milliseconds from a JS number.
pub(crate) fn millis(field: &str, value: f64) -> Result<i64> {
    if !value.is_finite() || value.fract() != 0.0 || value.abs() > 9_007_199_254_740_991.0 {
        return Err(errors::invalid(format!(
            "{field} must be a whole number of milliseconds, not {value}"
        )));
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "checked: whole and within 2^53"
    )]
    Ok(value as i64)
}

#[napi]
impl ManualClock {
    /// A clock showing `startMs` (milliseconds since the Unix epoch; default 2026-01-01T00:00:00Z).
    #[napi(constructor, catch_unwind)]
    pub fn new(start_ms: Option<f64>) -> Result<Self> {
        let start = start_ms.map_or(Ok(DEFAULT_START_MS), |ms| millis("startMs", ms))?;
        Ok(ManualClock {
            inner: adapters::ManualClock::new(Timestamp(start)),
        })
    }

    /// The time shown, in milliseconds since the Unix epoch.
    #[napi(catch_unwind)]
    pub fn now(&self) -> f64 {
        use lendkit::ports::Clock;
        #[expect(clippy::cast_precision_loss, reason = "times stay far below 2^53 ms")]
        let ms = self.inner.now().0 as f64;
        ms
    }

    /// Sets the time (it may go backwards).
    #[napi(catch_unwind)]
    pub fn set(&self, ms: f64) -> Result<()> {
        self.inner.set(Timestamp(millis("ms", ms)?));
        Ok(())
    }

    /// Moves the time forward by `ms` milliseconds.
    #[napi(catch_unwind)]
    pub fn advance(&self, ms: f64) -> Result<()> {
        let ms = millis("ms", ms)?;
        let ms = u64::try_from(ms)
            .map_err(|_| errors::invalid(format!("ms must not be negative, not {ms}")))?;
        self.inner.advance(Duration::from_millis(ms));
        Ok(())
    }

    /// Moves the time forward by whole days.
    #[napi(catch_unwind)]
    pub fn advance_days(&self, days: f64) -> Result<()> {
        let n = millis("days", days)?;
        let n = u32::try_from(n).map_err(|_| {
            errors::invalid(format!("days must be between 0 and 4294967295, not {days}"))
        })?;
        self.inner.advance_days(n);
        Ok(())
    }
}

impl ManualClock {
    /// The clock to hand to the core (clones share one time).
    pub fn shared(&self) -> adapters::ManualClock {
        self.inner.clone()
    }
}
