//! Host ports: a payment gateway and a notifier written in Python.
//!
//! Each call runs on a thread of its own that re-acquires the GIL with `Python::try_attach`
//! (which gives up, instead of panicking, once the interpreter is shutting down), and the core
//! waits for its answer without blocking: so the call timeout, and closing the library, can
//! give up on a host that never returns. A Python exception never crosses back as a panic: from
//! `charge`/`refund` it becomes a gateway failure (`PaymentError::Unavailable`, which the
//! circuit breaker counts) — or a decline, if it is a `lendkit.PaymentDeclinedError` — and from
//! the notifier a `NotifyError`, which the notices consumer retries.
//!
//! Answers are checked, not trusted: `charge` must return the payment id (a non-empty `str`) or
//! `None`; anything else is a failed charge. Ports are called synchronously, so an awaitable
//! answer (an `async def` port) means the work never ran: a failure for every port.

use crate::call::{as_callback, Callback};
use crate::errors;
use crate::rows;
use async_trait::async_trait;
use futures::channel::oneshot;
use lendkit::error::{NotifyError, PaymentError};
use lendkit::ids::{MemberId, Points, RentalId};
use lendkit::ports::{ChargeRef, Notice, Notifier, PaymentGateway, PaymentReceipt};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

static DECLINED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A payment gateway object from Python: `charge(member_id, amount, key) -> str | None` (the
/// payment id, non-empty; None means the key) and `refund(key)` (any answer but an awaitable).
pub(crate) struct HostGateway {
    gateway: Arc<Py<PyAny>>,
}

impl HostGateway {
    /// Wraps `gateway` after checking that it has callable `charge` and `refund` methods.
    pub(crate) fn new(gateway: &Bound<'_, PyAny>) -> PyResult<Self> {
        for method in ["charge", "refund"] {
            let callable = gateway
                .getattr(method)
                .map(|m| m.is_callable())
                .unwrap_or(false);
            if !callable {
                return Err(errors::wrong_type(
                    "payment",
                    "an object with charge(member_id, amount, key) and refund(key) methods",
                    gateway,
                ));
            }
        }
        Ok(HostGateway {
            gateway: Arc::new(gateway.clone().unbind()),
        })
    }
}

/// Runs `call` with the GIL on a thread of its own (named `thread`) and waits for it without
/// blocking the executor, so the circuit breaker's call timeout — and closing the library —
/// can give up on a host port that hangs. `fail` makes the port's error from a reason.
async fn off_thread<T: Send + 'static, E: Send + 'static>(
    thread: &str,
    fail: fn(String) -> E,
    call: impl FnOnce(Python<'_>) -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            let answer = catch_unwind(AssertUnwindSafe(|| {
                as_callback(Callback::Port, || Python::try_attach(call))
                    .unwrap_or_else(|| Err(fail("the Python interpreter is shutting down".into())))
            }))
            .unwrap_or_else(|_| Err(fail("the host port call failed internally".into())));
            let _ = tx.send(answer);
        });
    if let Err(e) = spawned {
        return Err(fail(format!(
            "cannot start a thread for the host port: {e}"
        )));
    }
    rx.await
        .unwrap_or_else(|_| Err(fail("the host port call ended without an answer".into())))
}

/// The name of `value`'s type, for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// `Err(reason)` when a port answered with an awaitable: ports are called synchronously, so an
/// `async def` port's body never ran. A coroutine is closed, so Python does not warn that it
/// was never awaited.
fn not_awaitable(port: &str, answer: &Bound<'_, PyAny>) -> Result<(), String> {
    if !answer.hasattr("__await__").unwrap_or(false) {
        return Ok(());
    }
    if answer.hasattr("cr_frame").unwrap_or(false) {
        let _ = answer.call_method0("close");
    }
    Err(format!(
        "{port} returned an awaitable ({}); lendkit calls ports synchronously, so an async port never runs: make it a plain function",
        type_name(answer)
    ))
}

/// The payment id in `charge`'s answer: a non-empty `str`, or `None` (the key is the id).
/// Anything else is a gateway that does not say what it did: a failed charge.
fn payment_id(answer: &Bound<'_, PyAny>, key: String) -> Result<String, String> {
    not_awaitable("charge", answer)?;
    if answer.is_none() {
        return Ok(key);
    }
    match answer.extract::<String>() {
        Ok(id) if !id.is_empty() => Ok(id),
        Ok(_) => Err(
            "charge must return the payment id (a non-empty str) or None, not an empty str".into(),
        ),
        Err(_) => Err(format!(
            "charge must return the payment id (a non-empty str) or None, not {}",
            type_name(answer)
        )),
    }
}

/// What a Python exception from the gateway means: a decline, or an outage.
fn payment_error(py: Python<'_>, method: &str, err: &PyErr) -> PaymentError {
    let text = describe(py, err);
    let declined = DECLINED
        .import(py, "lendkit.errors", "PaymentDeclinedError")
        .map(|class| err.is_instance(py, class.as_any()))
        .unwrap_or(false);
    if declined {
        PaymentError::Declined(text)
    } else {
        PaymentError::Unavailable(format!("{method} raised {text}"))
    }
}

/// `TypeName: message` of a Python exception.
fn describe(py: Python<'_>, err: &PyErr) -> String {
    let type_name = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let message = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if message.is_empty() {
        type_name
    } else {
        format!("{type_name}: {message}")
    }
}

#[async_trait]
impl PaymentGateway for HostGateway {
    async fn charge(
        &self,
        member: &MemberId,
        amount: Points,
        key: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError> {
        let gateway = Arc::clone(&self.gateway);
        let (member, key) = (member.to_string(), key.to_string());
        off_thread(
            "lendkit-host-payment",
            PaymentError::Unavailable,
            move |py| {
                let answer = gateway
                    .bind(py)
                    .call_method1("charge", (member, amount.0, &key))
                    .map_err(|e| payment_error(py, "charge", &e))?;
                payment_id(&answer, key)
                    .map(|payment_id| PaymentReceipt { payment_id })
                    .map_err(PaymentError::Unavailable)
            },
        )
        .await
    }

    async fn refund(&self, charge: &ChargeRef) -> Result<(), PaymentError> {
        let gateway = Arc::clone(&self.gateway);
        let key = charge.key.to_string();
        off_thread(
            "lendkit-host-payment",
            PaymentError::Unavailable,
            move |py| {
                let answer = gateway
                    .bind(py)
                    .call_method1("refund", (key,))
                    .map_err(|e| payment_error(py, "refund", &e))?;
                not_awaitable("refund", &answer).map_err(PaymentError::Unavailable)
            },
        )
        .await
    }
}

/// A notifier from Python: any callable taking a `lendkit.Notice`.
pub(crate) struct HostNotifier {
    callback: Arc<Py<PyAny>>,
}

impl HostNotifier {
    /// Wraps `callback` after checking that it is callable.
    pub(crate) fn new(callback: &Bound<'_, PyAny>) -> PyResult<Self> {
        if !callback.is_callable() {
            return Err(errors::wrong_type(
                "notifier",
                "a callable taking a lendkit.Notice",
                callback,
            ));
        }
        Ok(HostNotifier {
            callback: Arc::new(callback.clone().unbind()),
        })
    }
}

#[async_trait]
impl Notifier for HostNotifier {
    async fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        let notice = rows::Notice::from(notice);
        let callback = Arc::clone(&self.callback);
        off_thread("lendkit-host-notifier", NotifyError, move |py| {
            let answer = callback
                .bind(py)
                .call1((notice,))
                .map_err(|e| NotifyError(format!("the notifier raised {}", describe(py, &e))))?;
            not_awaitable("the notifier", &answer).map_err(NotifyError)
        })
        .await
    }
}
