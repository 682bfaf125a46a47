//! Host ports: a payment gateway and a notifier written in Python.
//!
//! The core calls them from whatever thread runs it (a caller's, or the background runner);
//! each call re-acquires the GIL with `Python::try_attach` (which gives up, instead of
//! panicking, once the interpreter is shutting down). A Python exception never crosses back
//! as a panic: from `charge`/`refund` it becomes a gateway failure (`PaymentError::Unavailable`,
//! which the circuit breaker counts) — or a decline, if it is a `lendkit.PaymentDeclinedError` —
//! and from the notifier a `NotifyError`, which the notices consumer retries.

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
/// payment id; None means the key) and `refund(key)`.
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

/// Runs `call` with the GIL on a thread of its own and waits for it without blocking the
/// executor, so the circuit breaker's call timeout can give up on a gateway that hangs.
async fn off_thread<T: Send + 'static>(
    call: impl FnOnce(Python<'_>) -> Result<T, PaymentError> + Send + 'static,
) -> Result<T, PaymentError> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("lendkit-host-payment".into())
        .spawn(move || {
            let answer = catch_unwind(AssertUnwindSafe(|| {
                as_callback(Callback::Port, || Python::try_attach(call)).unwrap_or_else(|| {
                    Err(PaymentError::Unavailable(
                        "the Python interpreter is shutting down".into(),
                    ))
                })
            }))
            .unwrap_or_else(|_| {
                Err(PaymentError::Unavailable(
                    "the payment gateway call failed internally".into(),
                ))
            });
            let _ = tx.send(answer);
        });
    if let Err(e) = spawned {
        return Err(PaymentError::Unavailable(format!(
            "cannot start a thread for the payment gateway: {e}"
        )));
    }
    rx.await.unwrap_or_else(|_| {
        Err(PaymentError::Unavailable(
            "the payment gateway call ended without an answer".into(),
        ))
    })
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
        off_thread(move |py| {
            let answer = gateway
                .bind(py)
                .call_method1("charge", (member, amount.0, &key))
                .map_err(|e| payment_error(py, "charge", &e))?;
            if answer.is_none() {
                return Ok(PaymentReceipt { payment_id: key });
            }
            match answer.extract::<String>() {
                Ok(payment_id) => Ok(PaymentReceipt { payment_id }),
                Err(_) => Err(PaymentError::Unavailable(format!(
                    "charge must return the payment id (a str) or None, not {}",
                    answer
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))),
            }
        })
        .await
    }

    async fn refund(&self, charge: &ChargeRef) -> Result<(), PaymentError> {
        let gateway = Arc::clone(&self.gateway);
        let key = charge.key.to_string();
        off_thread(move |py| {
            gateway
                .bind(py)
                .call_method1("refund", (key,))
                .map(drop)
                .map_err(|e| payment_error(py, "refund", &e))
        })
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
        let sent = catch_unwind(AssertUnwindSafe(move || {
            let call =
                |py: Python<'_>| {
                    callback.bind(py).call1((notice,)).map(drop).map_err(|e| {
                        NotifyError(format!("the notifier raised {}", describe(py, &e)))
                    })
                };
            as_callback(Callback::Port, || Python::try_attach(call)).unwrap_or_else(|| {
                Err(NotifyError(
                    "the Python interpreter is shutting down".into(),
                ))
            })
        }));
        sent.unwrap_or_else(|_| Err(NotifyError("the notifier call failed internally".into())))
    }
}
