//! `lendkit.ManualClock`: time that moves only when the host moves it (tests, demos, replays).

use crate::call::detached;
use lendkit::adapters::ManualClock as CoreClock;
use lendkit::ports::Clock;
use lendkit::Timestamp;
use pyo3::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// A clock that stands still until moved. Give it to `Library.open(..., clock=...)` and keep
/// it to move time: loans fall due, the payment circuit breaker cools down.
///
/// Times are milliseconds since the Unix epoch (UTC).
#[pyclass(module = "lendkit", frozen)]
pub struct ManualClock {
    inner: CoreClock,
}

impl ManualClock {
    /// The clock as the core's clock port (sharing this clock's time).
    pub(crate) fn port(&self) -> Arc<dyn Clock> {
        Arc::new(self.inner.clone())
    }
}

#[pymethods]
impl ManualClock {
    /// A clock showing `start_ms`.
    #[new]
    #[pyo3(signature = (start_ms = 0))]
    fn new(start_ms: i64) -> Self {
        ManualClock {
            inner: CoreClock::new(Timestamp(start_ms)),
        }
    }

    /// The time now, in milliseconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.inner.now().0
    }

    /// Moves the time forward by `ms` milliseconds.
    fn advance_ms(&self, py: Python<'_>, ms: u64) -> PyResult<()> {
        let clock = self.inner.clone();
        detached(py, move || {
            clock.advance(Duration::from_millis(ms));
            Ok(())
        })
    }

    /// Moves the time forward by `days` whole days.
    fn advance_days(&self, py: Python<'_>, days: u32) -> PyResult<()> {
        let clock = self.inner.clone();
        detached(py, move || {
            clock.advance_days(days);
            Ok(())
        })
    }

    /// Sets the time to `ms` (it may go backwards).
    fn set(&self, py: Python<'_>, ms: i64) -> PyResult<()> {
        let clock = self.inner.clone();
        detached(py, move || {
            clock.set(Timestamp(ms));
            Ok(())
        })
    }

    fn __repr__(&self) -> String {
        format!("ManualClock(start_ms={})", self.inner.now().0)
    }
}
