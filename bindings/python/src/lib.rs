//! Python bindings of lendkit: the extension module `lendkit._native`.
//!
//! The binding holds no rules. Each method converts its Python arguments while attached to the
//! interpreter, releases the GIL ([`call::detached`]) around the call into the core, and maps a
//! [`lendkit::Error`] to the `lendkit.errors` class of its family ([`errors::to_py`]). Python
//! objects handed to the core (payment gateway, notifier, subscriber callbacks) are called back
//! with the GIL re-acquired ([`ports`], [`subscription`]).
//!
//! One file per exposed class: [`library`] (`Library`, the base of the public `lendkit.Library`,
//! and `Opened`), [`actors`] (`Librarian`, `Member`),
//! [`rows`] (the frozen result rows), [`clock`] (`ManualClock`), [`subscription`]
//! (`Subscription`).

use pyo3::prelude::*;

mod actors;
mod args;
mod call;
mod clock;
mod errors;
mod json;
mod library;
mod logging;
mod options;
mod ports;
mod rows;
mod subscription;

/// The native part of the `lendkit` package; import `lendkit` instead.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<library::Library>()?;
    m.add_class::<library::Opened>()?;
    m.add_class::<actors::Librarian>()?;
    m.add_class::<actors::Member>()?;
    m.add_class::<clock::ManualClock>()?;
    m.add_class::<subscription::Subscription>()?;
    m.add_class::<rows::BookRow>()?;
    m.add_class::<rows::RentalRow>()?;
    m.add_class::<rows::MemberPage>()?;
    m.add_class::<rows::Event>()?;
    m.add_class::<rows::Outcome>()?;
    m.add_class::<rows::DeadLetter>()?;
    m.add_class::<rows::OverdueRow>()?;
    m.add_class::<rows::HoldShelfRow>()?;
    m.add_class::<rows::Notice>()?;
    m.add_class::<rows::ConsumerStatus>()?;
    m.add_function(wrap_pyfunction!(errors::error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(options::config_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(library::close_all, m)?)?;
    Ok(())
}

/// mimalloc for the Rust side of the extension, as in the `lendkit` binary: the core allocates
/// many small strings, and the system allocator costs it about a third of its time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
