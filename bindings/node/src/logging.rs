//! The library's log lines on stderr, as `LENDKIT_LOG` says: a level (`debug`) for lendkit's
//! own lines, or targets with levels (`lendkit::command=debug,lendkit=warn`). Without it,
//! warnings and worse only (retries, dead letters, failed commits). The lines carry ids,
//! command names and error codes, never a member's name, contact or address.

use std::str::FromStr;
use std::sync::Once;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static INSTALLED: Once = Once::new();

/// Installs the stderr logger once per process, at the first open.
pub(crate) fn install() {
    INSTALLED.call_once(|| {
        let wanted = std::env::var("LENDKIT_LOG").unwrap_or_default();
        let wanted = wanted.trim();
        let warnings = || Targets::new().with_target("lendkit", LevelFilter::WARN);
        let targets = if wanted.is_empty() {
            warnings()
        } else if let Ok(level) = LevelFilter::from_str(wanted) {
            Targets::new().with_target("lendkit", level)
        } else {
            Targets::from_str(wanted).unwrap_or_else(|_| warnings())
        };
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .with_target(true),
            )
            .with(targets)
            .try_init();
    });
}
