//! Every exception the binding raises is made here: each lendkit error becomes its
//! `lendkit.errors` class, and the few built-in exceptions the binding raises itself
//! (`TypeError` for a wrong argument, `TimeoutError`, `RuntimeError`) are named here too.
//!
//! The classes live in `lendkit/errors.py` (one per error family, `PaymentDeclinedError` for
//! `PAYMENT_DECLINED`); they are imported once and cached. The exception's message is the
//! core's message, `.code` its stable code, `.retryable` whether retrying later may help.
//! Wrong Python *types* never get here: PyO3's argument extraction raises `TypeError` (or
//! `OverflowError` for a negative count) before the core is called.

use lendkit::{Error, ErrorCode};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTimeoutError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

static CODES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static FAMILIES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// The Python exception for a lendkit error.
pub(crate) fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let retry_after = match &err {
        Error::PaymentUnavailable { retry_after } => Some(retry_after.as_secs_f64()),
        _ => None,
    };
    let code = err.code();
    let raised = raise(py, code, code.is_retryable(), &err.to_string(), retry_after);
    if let Some(os) = os_error_below(&err) {
        // `raise StorageError(...) from OSError(errno, strerror)`: what the operating system
        // said stays reachable as `__cause__`, as Python's own I/O errors are.
        let cause = match os.raw_os_error() {
            Some(errno) => PyOSError::new_err((errno, os.to_string())),
            None => PyOSError::new_err(os.to_string()),
        };
        raised.set_cause(py, Some(cause));
    }
    raised
}

/// The operating system's error in the chain of `err`'s sources, if there is one.
fn os_error_below(err: &Error) -> Option<&std::io::Error> {
    let mut below = std::error::Error::source(err);
    while let Some(e) = below {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        below = e.source();
    }
    None
}

/// `StorageError` (`LIBRARY_CLOSED`) for a call on a closed library.
pub(crate) fn closed(py: Python<'_>) -> PyErr {
    to_py(py, Error::Closed)
}

/// `InvalidInputError` (also a `ValueError`) for a value the binding cannot pass on.
pub(crate) fn invalid(py: Python<'_>, message: impl Into<String>) -> PyErr {
    to_py(py, Error::InvalidInput(message.into()))
}

/// The error a panic inside the core turns into (`INTERNAL`): Python sees a `StorageError`
/// rather than a `PanicException`.
pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    Error::Internal(what)
}

/// `TypeError`: `what` must be `expected`, and `got` is not.
pub(crate) fn wrong_type(what: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let type_name = got
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "this type".into());
    PyTypeError::new_err(format!("{what} must be {expected}, not {type_name}"))
}

/// `TimeoutError` from `settle(timeout=...)`.
pub(crate) fn settle_timed_out(seconds: f64) -> PyErr {
    PyTimeoutError::new_err(format!(
        "the library did not settle within {seconds} s; its consumers go on in the background"
    ))
}

/// `RuntimeError` for `settle()` called from a payment gateway or notifier.
pub(crate) fn settle_inside_port() -> PyErr {
    PyRuntimeError::new_err(
        "settle() cannot be called from a payment gateway or notifier: the library is waiting for that call to return",
    )
}

/// `ValueError` for a row that cannot be serialized (never expected: rows are plain data).
pub(crate) fn not_serializable(err: &serde_json::Error) -> PyErr {
    PyValueError::new_err(format!("cannot convert to a dict: {err}"))
}

fn raise(
    py: Python<'_>,
    code: ErrorCode,
    retryable: bool,
    message: &str,
    retry_after: Option<f64>,
) -> PyErr {
    build(py, code, retryable, message, retry_after).unwrap_or_else(|import_failed| {
        PyRuntimeError::new_err(format!(
            "{code}: {message} (lendkit.errors could not be used: {import_failed})"
        ))
    })
}

fn build(
    py: Python<'_>,
    code: ErrorCode,
    retryable: bool,
    message: &str,
    retry_after: Option<f64>,
) -> PyResult<PyErr> {
    let codes = CODES.import(py, "lendkit.errors", "CODES")?;
    let class = match codes.get_item(code.as_str())? {
        Some(class) => class,
        None => {
            let families = FAMILIES.import(py, "lendkit.errors", "FAMILIES")?;
            match families.get_item(code.family().as_str())? {
                Some(class) => class,
                None => py.import("lendkit.errors")?.getattr("LendkitError")?,
            }
        }
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item("retryable", retryable)?;
    kwargs.set_item("retry_after", retry_after)?;
    let exception = class.call((message, code.as_str()), Some(&kwargs))?;
    Ok(PyErr::from_value(exception))
}

/// Every error code the core knows, in catalogue order, as `(code, family, retryable)`.
#[pyfunction]
pub(crate) fn error_codes() -> Vec<(&'static str, &'static str, bool)> {
    ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str(), c.family().as_str(), c.is_retryable()))
        .collect()
}
