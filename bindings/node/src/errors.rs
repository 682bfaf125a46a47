//! Every failure the binding reports, mapped in one place.
//!
//! napi's `async fn` rejects only with its own `Status`, so the core's stable code travels in
//! the message: `[INSUFFICIENT_POINTS] member m-1 has 10 points but the fee is 30; top up first`.
//! The JavaScript wrapper (`index.js`) turns that back into an `Error` whose `code` is the
//! catalogue string and whose message is the core's message. Sync and async methods use the
//! same form, so `err.code` is right everywhere.

use lendkit::error::ErrorCode;
use napi::{Error, Status};

/// The message of a native error that carries `code`: `[CODE] message`.
fn coded(code: ErrorCode, message: impl std::fmt::Display) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("[{}] {message}", code.as_str()),
    )
}

/// A core error as a native error carrying its stable code.
pub fn to_js(e: lendkit::Error) -> Error {
    coded(e.code(), e)
}

/// Malformed input caught by the binding before it reaches the core (`INVALID_INPUT`).
pub fn invalid(message: impl std::fmt::Display) -> Error {
    coded(ErrorCode::InvalidInput, format!("invalid input: {message}"))
}

/// A call on a library that was closed.
pub fn closed() -> Error {
    to_js(lendkit::Error::Closed)
}

/// A panic inside the core, caught before it reached Node. Always a bug in lendkit.
pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    to_js(lendkit::Error::Internal(what))
}

/// The codes whose calls may succeed if simply tried again later (the wrapper's `err.retryable`).
pub fn retryable_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .filter(|c| c.is_retryable())
        .map(|c| c.as_str().to_owned())
        .collect()
}

/// Every code of the catalogue, in catalogue order (the wrapper's frozen `ErrorCode`).
pub fn all_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}
