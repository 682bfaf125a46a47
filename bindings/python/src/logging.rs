//! The library's log records into Python's `logging`: the core's tracing events reach the
//! `log` facade (tracing's `log` feature), and this logger hands each to the Python logger
//! named after its target — `lendkit.command`, `lendkit.policy`, `lendkit.consumer`,
//! `lendkit.payment`, `lendkit.store`, all children of `lendkit`. The lines carry ids, command
//! names and error codes, never a member's name, contact or address.
//!
//! How much crosses into Python is the effective level of the `lendkit` logger when a library
//! opens (Python's default: warnings and worse), so a host that never configures logging pays
//! nothing for the debug events of every command.

use pyo3::prelude::*;
use std::sync::OnceLock;

/// Hands `log` records to Python's `logging`.
struct ToPython;

static TO_PYTHON: ToPython = ToPython;
/// Whether this logger is the process's `log` logger (another extension may have set one first).
static INSTALLED: OnceLock<bool> = OnceLock::new();

impl log::Log for ToPython {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("lendkit")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Python's levels: DEBUG 10, INFO 20, WARNING 30, ERROR 40; trace below debug.
        let level: u8 = match record.level() {
            log::Level::Error => 40,
            log::Level::Warn => 30,
            log::Level::Info => 20,
            log::Level::Debug => 10,
            log::Level::Trace => 5,
        };
        let name = record.target().replace("::", ".");
        let message = record.args().to_string();
        // The thread that logs holds no GIL (calls into the core release it), so taking it here
        // cannot deadlock; a record Python cannot take is dropped rather than raised.
        Python::attach(|py| {
            let sent = py
                .import("logging")
                .and_then(|logging| logging.getattr("getLogger")?.call1((name,)))
                .and_then(|logger| logger.call_method1("log", (level, message)));
            if let Err(e) = sent {
                e.print(py);
            }
        });
    }

    fn flush(&self) {}
}

/// Installs the bridge (once per process) and lets through what the `lendkit` logger's
/// effective level lets through now.
pub(crate) fn follow_python_level(py: Python<'_>) -> PyResult<()> {
    if !*INSTALLED.get_or_init(|| log::set_logger(&TO_PYTHON).is_ok()) {
        return Ok(());
    }
    let level: i64 = py
        .import("logging")?
        .getattr("getLogger")?
        .call1(("lendkit",))?
        .call_method0("getEffectiveLevel")?
        .extract()?;
    log::set_max_level(match level {
        ..=5 => log::LevelFilter::Trace,
        6..=10 => log::LevelFilter::Debug,
        11..=20 => log::LevelFilter::Info,
        21..=30 => log::LevelFilter::Warn,
        _ => log::LevelFilter::Error,
    });
    Ok(())
}
