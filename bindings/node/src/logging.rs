//! The library's log lines, as `LENDKIT_LOG` says: a level (`debug`) for lendkit's own lines,
//! or targets with levels (`lendkit::command=debug,lendkit=warn`). Without it, warnings and
//! worse only (retries, dead letters, failed commits). They go to stderr, or — once a library
//! was opened with a `logger` option — to that JS function instead, as [`LogRecord`]s. The
//! lines carry ids, command names and error codes, never a member's name, contact or address.
//!
//! Logging is per process (as `tracing` is): the logger of the last library opened with one
//! receives the lines of every library of the process.

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::{Arc, Once, RwLock};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{filter_fn, LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// One log line as the host's `logger` receives it.
#[napi(object)]
pub struct LogRecord {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// Where it comes from: `lendkit::command`, `lendkit::policy`, `lendkit::store`, …
    pub target: String,
    /// The line: what happened, then its fields as `key=value`.
    pub message: String,
    /// The line's fields by name (`command`, `command_id`, `code`, …), as text.
    pub fields: HashMap<String, String>,
}

/// The host's logger: a JS function called with every [`LogRecord`], fire and forget. Weak: it
/// never keeps Node running.
pub type Logger = ThreadsafeFunction<LogRecord, (), LogRecord, Status, false, true>;

static INSTALLED: Once = Once::new();
static HOST: RwLock<Option<Arc<Logger>>> = RwLock::new(None);

/// The host's logger, if one was given.
fn host() -> Option<Arc<Logger>> {
    HOST.read().ok().and_then(|h| h.clone())
}

/// Installs the process's logging once, at the first open; a `logger` given to this open
/// becomes the one every line goes to from now on.
pub(crate) fn install(logger: Option<Logger>) {
    if let Some(logger) = logger {
        if let Ok(mut host) = HOST.write() {
            *host = Some(Arc::new(logger));
        }
    }
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
                    .with_target(true)
                    .with_filter(filter_fn(|_| host().is_none())),
            )
            .with(ToHost)
            .with(targets)
            .try_init();
    });
}

/// Hands each line to the host's logger, when there is one.
struct ToHost;

impl<S: Subscriber> Layer<S> for ToHost {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Some(logger) = host() else { return };
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        for (name, value) in &fields.named {
            let _ = write!(message, " {name}={value}");
        }
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let record = LogRecord {
            level: level.to_owned(),
            target: meta.target().to_owned(),
            message: message.trim_start().to_owned(),
            fields: fields.named.into_iter().collect(),
        };
        // A closing environment refuses the call; there is nobody left to tell.
        let _ = logger.call(record, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// An event's message and its other fields, in the order they were recorded.
#[derive(Default)]
struct Fields {
    message: String,
    named: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.keep(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.keep(field, format!("{value:?}"));
    }
}

impl Fields {
    fn keep(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.named.push((field.name().to_owned(), value));
        }
    }
}
