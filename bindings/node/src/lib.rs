//! The Node binding of lendkit (napi-rs 3): the native half of the `lendkit` npm package.
//!
//! `index.js` wraps this module: it turns `[CODE] message` errors into `Error`s with `code`,
//! accepts `Librarian(id)`/`Member(id)` actors and normalises the host's ports. No rule lives
//! here or there: every method converts its input, calls the core once and converts the result.
//!
//! | file | exposes |
//! |---|---|
//! | `library.rs` | `NativeLibrary` and `open` |
//! | `clock.rs` | `ManualClock` |
//! | `ports.rs` | host payment gateway, notifier, subscriptions |
//! | `input.rs`, `options.rs`, `output.rs` | the objects crossing the boundary |
//! | `errors.rs` | every error mapping |

// `allow`, not `expect`: an `expect(dead_code)` at the crate root is reported unfulfilled by rustc.
#![cfg_attr(
    test,
    allow(
        dead_code,
        reason = "napi registers the exports only in the addon build, not in the test harness"
    )
)]

mod clock;
mod errors;
mod input;
mod library;
mod logging;
mod options;
mod output;
mod ports;

use napi_derive::napi;

/// Every error code of the catalogue, in catalogue order.
#[napi(catch_unwind)]
pub fn error_codes() -> Vec<String> {
    errors::all_codes()
}

/// The error codes whose calls may succeed if simply tried again later.
#[napi(catch_unwind)]
pub fn retryable_codes() -> Vec<String> {
    errors::retryable_codes()
}

/// mimalloc for the Rust side of the addon, as in the `lendkit` binary: the core allocates many
/// small strings, and the system allocator costs it about a third of its time (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
