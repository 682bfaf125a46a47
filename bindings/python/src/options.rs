//! The keyword arguments of `Library.open` / `Library.in_memory`, turned into a core
//! [`Config`]. Values are passed through: the core applies its own limits.

use crate::clock::ManualClock;
use crate::errors;
use crate::ports::{HostGateway, HostNotifier};
use lendkit::{BreakerConfig, Config, Durability, Rules};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Everything a library can be opened with (the Python keyword arguments).
pub(crate) struct Options<'a, 'py> {
    pub welcome_points: u64,
    pub loan_days: u32,
    pub max_renewals: u32,
    pub hold_shelf_days: u32,
    pub durability: Option<&'a Bound<'py, PyAny>>,
    pub payment: Option<&'a Bound<'py, PyAny>>,
    pub notifier: Option<&'a Bound<'py, PyAny>>,
    pub clock: Option<&'a Bound<'py, PyAny>>,
    pub background: bool,
    pub immediate_reactions: bool,
    pub max_attempts: u32,
    pub breaker_failure_threshold: u32,
    pub breaker_cool_down_ms: u64,
    pub payment_timeout_ms: Option<u64>,
    pub retry_backoff_ms: u64,
    pub workers: Option<BTreeMap<String, u32>>,
    pub fault_injection: bool,
}

impl Options<'_, '_> {
    /// The core configuration these options describe.
    pub(crate) fn config(self, py: Python<'_>) -> PyResult<Config> {
        let clock = match self.clock {
            None => None,
            Some(c) => match c.cast::<ManualClock>() {
                Ok(c) => Some(c.get().port()),
                Err(_) => {
                    return Err(errors::wrong_type(
                        "clock",
                        "a lendkit.ManualClock or None",
                        c,
                    ))
                }
            },
        };
        let payment = match self.payment {
            Some(p) if !p.is_none() => {
                Some(Arc::new(HostGateway::new(p)?) as Arc<dyn lendkit::ports::PaymentGateway>)
            }
            _ => None,
        };
        let notifier = match self.notifier {
            Some(n) if !n.is_none() => {
                Some(Arc::new(HostNotifier::new(n)?) as Arc<dyn lendkit::ports::Notifier>)
            }
            _ => None,
        };
        Ok(Config {
            durability: durability(py, self.durability)?,
            rules: Rules {
                welcome_points: self.welcome_points,
                loan_days: self.loan_days,
                max_renewals: self.max_renewals,
                hold_shelf_days: self.hold_shelf_days,
            },
            breaker: BreakerConfig {
                failure_threshold: self.breaker_failure_threshold,
                cool_down: Duration::from_millis(self.breaker_cool_down_ms),
                call_timeout: self.payment_timeout_ms.map(Duration::from_millis),
            },
            workers: self.workers.unwrap_or_default(),
            max_attempts: self.max_attempts,
            background: self.background,
            immediate_reactions: self.immediate_reactions,
            payment,
            notifier,
            clock,
            retry_backoff: Duration::from_millis(self.retry_backoff_ms),
            fault_injection: self.fault_injection,
            ..Config::default()
        })
    }
}

/// `None` or `"every_commit"`: flush before each command returns; `("periodic", ms)`: flush
/// every `ms` milliseconds (faster; a crash may lose the last interval).
fn durability(py: Python<'_>, value: Option<&Bound<'_, PyAny>>) -> PyResult<Durability> {
    const FORMS: &str = "durability is \"every_commit\" or (\"periodic\", milliseconds)";
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Durability::EveryCommit);
    };
    if value.is_instance_of::<PyString>() {
        let text: String = value.extract()?;
        return match text.as_str() {
            "every_commit" => Ok(Durability::EveryCommit),
            other => Err(errors::invalid(py, format!("{FORMS}, not {other:?}"))),
        };
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        let (mode, ms): (String, u64) = tuple.extract()?;
        return match mode.as_str() {
            "periodic" => Ok(Durability::Periodic(ms)),
            other => Err(errors::invalid(
                py,
                format!("{FORMS}, not ({other:?}, {ms})"),
            )),
        };
    }
    Err(errors::wrong_type(
        "durability",
        "\"every_commit\" or (\"periodic\", milliseconds)",
        value,
    ))
}

/// The defaults of the core's `Config`, under the keyword names of `Library.open` (a test
/// checks that the Python signature shows the same values).
#[pyfunction]
pub(crate) fn config_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let c = Config::default();
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let d = PyDict::new(py);
    d.set_item("welcome_points", c.rules.welcome_points)?;
    d.set_item("loan_days", c.rules.loan_days)?;
    d.set_item("max_renewals", c.rules.max_renewals)?;
    d.set_item("hold_shelf_days", c.rules.hold_shelf_days)?;
    d.set_item("background", c.background)?;
    d.set_item("immediate_reactions", c.immediate_reactions)?;
    d.set_item("max_attempts", c.max_attempts)?;
    d.set_item("breaker_failure_threshold", c.breaker.failure_threshold)?;
    d.set_item("breaker_cool_down_ms", millis(c.breaker.cool_down))?;
    d.set_item("payment_timeout_ms", c.breaker.call_timeout.map(millis))?;
    d.set_item("retry_backoff_ms", millis(c.retry_backoff))?;
    d.set_item("fault_injection", c.fault_injection)?;
    Ok(d)
}
