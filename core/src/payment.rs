//! The synchronous payment step: the circuit breaker around the [`PaymentGateway`](crate::ports::PaymentGateway) port, and
//! the default gateway that pays with the member's [`PointAccount`](crate::points::PointAccount).
//!
//! The breaker is closed while the gateway works. After `failure_threshold` consecutive
//! outages (errors the gateway reports as unavailable, or calls slower than `call_timeout`) it
//! opens: calls fail at once with `PAYMENT_UNAVAILABLE` and a `retry_after`, nothing is stored.
//! After `cool_down` it is half-open: one trial call goes through; success closes it, failure
//! opens it again. Declined charges (insufficient points) are answers, not outages: they never
//! trip it. Time comes from the library's [`Clock`](crate::ports::Clock).

use crate::ids::Timestamp;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How the circuit breaker behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive outages that open the circuit (at least 1).
    pub failure_threshold: u32,
    /// How long the circuit stays open before a trial call.
    pub cool_down: Duration,
    /// A call slower than this counts as an outage and fails with `PAYMENT_UNAVAILABLE`. `None`: no limit.
    pub call_timeout: Option<Duration>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
            call_timeout: Some(Duration::from_secs(5)),
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast.
    Open,
    /// One trial call goes through.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Timestamp,
    trial_in_flight: bool,
}

/// A circuit breaker driven by an outside clock. Thread-safe.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// Permission to make one call; report its outcome with [`CircuitBreaker::record`].
#[derive(Debug)]
#[must_use]
pub struct Permit {
    trial: bool,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        let config = BreakerConfig {
            failure_threshold: config.failure_threshold.max(1),
            ..config
        };
        CircuitBreaker {
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: Timestamp(0),
                trial_in_flight: false,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cool_down_ms(&self) -> i64 {
        i64::try_from(self.config.cool_down.as_millis()).unwrap_or(i64::MAX)
    }

    /// The state at `now` (an open breaker whose cool-down has passed reports half-open).
    pub fn state(&self, now: Timestamp) -> BreakerState {
        let inner = self.lock();
        match inner.state {
            BreakerState::Open
                if now.0.saturating_sub(inner.opened_at.0) >= self.cool_down_ms() =>
            {
                BreakerState::HalfOpen
            }
            s => s,
        }
    }

    /// Asks to make a call at `now`. Refused with the time left until a trial is allowed.
    pub fn acquire(&self, now: Timestamp) -> Result<Permit, Duration> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(Permit { trial: false }),
            BreakerState::Open => {
                let waited = now.0.saturating_sub(inner.opened_at.0);
                let left = self.cool_down_ms().saturating_sub(waited);
                if left > 0 {
                    Err(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
                } else {
                    inner.state = BreakerState::HalfOpen;
                    inner.trial_in_flight = true;
                    tracing::info!(
                        target: "lendkit::payment",
                        circuit = "half_open",
                        "payment circuit half open: one trial call goes through"
                    );
                    Ok(Permit { trial: true })
                }
            }
            BreakerState::HalfOpen if inner.trial_in_flight => Err(Duration::from_millis(100)),
            BreakerState::HalfOpen => {
                inner.trial_in_flight = true;
                Ok(Permit { trial: true })
            }
        }
    }

    /// Reports how a permitted call went: `outage` true for a failure of the gateway itself.
    pub fn record(&self, permit: Permit, now: Timestamp, outage: bool) {
        let mut inner = self.lock();
        if permit.trial {
            inner.trial_in_flight = false;
        }
        if outage {
            inner.failures = inner.failures.saturating_add(1);
            if permit.trial
                || inner.state == BreakerState::HalfOpen
                || inner.failures >= self.config.failure_threshold
            {
                if inner.state != BreakerState::Open {
                    tracing::warn!(
                        target: "lendkit::payment",
                        circuit = "open",
                        failures = inner.failures,
                        cool_down_ms = self.cool_down_ms(),
                        "payment circuit opened: calls are refused until the cool-down ends"
                    );
                }
                inner.state = BreakerState::Open;
                inner.opened_at = now;
            }
        } else {
            if inner.state != BreakerState::Closed {
                tracing::info!(
                    target: "lendkit::payment",
                    circuit = "closed",
                    "payment circuit closed: the gateway answers again"
                );
            }
            inner.failures = 0;
            inner.state = BreakerState::Closed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: 2,
            cool_down: Duration::from_millis(1000),
            call_timeout: None,
        })
    }

    #[test]
    fn opens_after_consecutive_outages_and_fails_fast() {
        let b = breaker();
        let p = b.acquire(Timestamp(0)).unwrap();
        b.record(p, Timestamp(0), true);
        assert_eq!(b.state(Timestamp(0)), BreakerState::Closed);
        let p = b.acquire(Timestamp(10)).unwrap();
        b.record(p, Timestamp(10), true);
        assert_eq!(b.state(Timestamp(10)), BreakerState::Open);
        assert_eq!(
            b.acquire(Timestamp(510)).unwrap_err(),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = breaker();
        for (t, outage) in [(0, true), (1, false), (2, true)] {
            let p = b.acquire(Timestamp(t)).unwrap();
            b.record(p, Timestamp(t), outage);
        }
        assert_eq!(b.state(Timestamp(3)), BreakerState::Closed);
    }

    #[test]
    fn half_open_lets_one_trial_through_then_closes_or_reopens() {
        let b = breaker();
        for t in [0, 1] {
            let p = b.acquire(Timestamp(t)).unwrap();
            b.record(p, Timestamp(t), true);
        }
        let trial = b.acquire(Timestamp(1001)).unwrap();
        assert!(
            b.acquire(Timestamp(1001)).is_err(),
            "only one trial at a time"
        );
        b.record(trial, Timestamp(1002), true);
        assert_eq!(b.state(Timestamp(1002)), BreakerState::Open);
        let trial = b.acquire(Timestamp(2002)).unwrap();
        b.record(trial, Timestamp(2003), false);
        assert_eq!(b.state(Timestamp(2003)), BreakerState::Closed);
        assert!(b.acquire(Timestamp(2004)).is_ok());
    }
}
