//! How a library is opened from Node: the options object, turned into the facade's [`Config`].
//!
//! The wrapper (`index.js`) flattens the public options (`durability: { periodicMs }`,
//! `payment: { charge, refund }`, `breaker: { callTimeoutMs: null }`) into this shape and
//! normalises the host functions; this file only converts and range-checks.

use crate::errors;
use crate::input::{amount, count};
use crate::ports::{ChargeRequest, JsGateway, JsNotifier, Notice, Port, RefundRequest};
use lendkit::{BreakerConfig, Config, Durability, Rules};
use napi::Result;
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The circuit breaker around the payment gateway.
#[napi(object, object_to_js = false)]
pub struct BreakerOptions {
    /// Consecutive outages that open the circuit (default 5).
    pub failure_threshold: Option<f64>,
    /// How long the circuit stays open before a trial call, in ms (default 30000).
    pub cool_down_ms: Option<f64>,
    /// A slower payment call counts as an outage, in ms (default 5000).
    pub call_timeout_ms: Option<f64>,
    /// True: payment calls have no time limit.
    pub no_call_timeout: Option<bool>,
}

/// The native options (see `LibraryOptions` in `index.d.ts` for the public shape).
#[napi(object, object_to_js = false)]
pub struct NativeOptions {
    /// Points every new member's account opens with (default 100).
    pub welcome_points: Option<f64>,
    /// Loan (and renewal) length in days (default 14).
    pub loan_days: Option<f64>,
    /// How often one loan may be renewed (default 2).
    pub max_renewals: Option<f64>,
    /// Open days a hold's copy waits on the pickup shelf (default 7).
    pub hold_shelf_days: Option<f64>,
    /// The store: `sled`, `sqlite` or `auto` (default: the one already at the path).
    pub store: Option<String>,
    /// Flush in the background every this many ms instead of before each command returns.
    pub periodic_flush_ms: Option<f64>,
    /// Run the consumers on a background thread (default true).
    pub background: Option<bool>,
    /// Copy allocation, confirmation, release and deliveries within the command that caused
    /// them, under its sync (default false).
    pub immediate_reactions: Option<bool>,
    /// Attempts before an event is dead-lettered (default 5).
    pub max_attempts: Option<f64>,
    /// The first wait before a failing event is retried, in ms (default 1000; doubles per failure).
    pub retry_backoff_ms: Option<f64>,
    /// The payment circuit breaker.
    pub breaker: Option<BreakerOptions>,
    /// Workers per policy (`{ catalog: 4 }`).
    pub workers: Option<HashMap<String, f64>>,
    /// Allow `setPaymentOutage` (default false).
    pub fault_injection: Option<bool>,
    /// The host's charge (normalised by the wrapper).
    #[napi(ts_type = "(request: ChargeRequest) => Promise<PortReply>")]
    pub charge: Option<Port<ChargeRequest>>,
    /// The host's refund (normalised by the wrapper).
    #[napi(ts_type = "(request: RefundRequest) => Promise<PortReply>")]
    pub refund: Option<Port<RefundRequest>>,
    /// The host's notifier (normalised by the wrapper).
    #[napi(ts_type = "(notice: Notice) => Promise<PortReply>")]
    pub notify: Option<Port<Notice>>,
    /// Where the process's log lines go instead of stderr (normalised by the wrapper).
    #[napi(ts_type = "(record: LogRecord) => void")]
    pub logger: Option<crate::logging::Logger>,
}

fn ms(field: &str, value: f64) -> Result<Duration> {
    amount(field, value).map(Duration::from_millis)
}

impl NativeOptions {
    /// The facade's configuration; `background` is whether a runner thread drives the consumers.
    pub fn into_config(self) -> Result<Config> {
        let d = Config::default();
        let r = Rules::default();
        let rules = Rules {
            welcome_points: self
                .welcome_points
                .map_or(Ok(r.welcome_points), |n| amount("welcomePoints", n))?,
            loan_days: self
                .loan_days
                .map_or(Ok(r.loan_days), |n| count("loanDays", n))?,
            max_renewals: self
                .max_renewals
                .map_or(Ok(r.max_renewals), |n| count("maxRenewals", n))?,
            hold_shelf_days: self
                .hold_shelf_days
                .map_or(Ok(r.hold_shelf_days), |n| count("holdShelfDays", n))?,
        };
        let b = BreakerConfig::default();
        let breaker = match self.breaker {
            None => b,
            Some(o) => BreakerConfig {
                failure_threshold: o.failure_threshold.map_or(Ok(b.failure_threshold), |n| {
                    count("breaker.failureThreshold", n)
                })?,
                cool_down: o
                    .cool_down_ms
                    .map_or(Ok(b.cool_down), |n| ms("breaker.coolDownMs", n))?,
                call_timeout: if o.no_call_timeout == Some(true) {
                    None
                } else {
                    match o.call_timeout_ms {
                        Some(n) => Some(ms("breaker.callTimeoutMs", n)?),
                        None => b.call_timeout,
                    }
                },
            },
        };
        let mut workers = std::collections::BTreeMap::new();
        for (name, n) in self.workers.unwrap_or_default() {
            workers.insert(name.clone(), count(&format!("workers.{name}"), n)?);
        }
        let payment: Option<Arc<dyn lendkit::ports::PaymentGateway>> =
            match (self.charge, self.refund) {
                (Some(charge), Some(refund)) => Some(Arc::new(JsGateway { charge, refund })),
                (None, None) => None,
                _ => {
                    return Err(errors::invalid(
                        "payment needs both charge and refund functions",
                    ))
                }
            };
        let notifier: Option<Arc<dyn lendkit::ports::Notifier>> = self
            .notify
            .map(|send| Arc::new(JsNotifier { send }) as Arc<dyn lendkit::ports::Notifier>);
        let store = match self.store.as_deref() {
            None => lendkit::Store::Auto,
            Some(name) => lendkit::Store::parse(name).map_err(|_| {
                errors::invalid(format!(
                    "options.store is {name:?}; use 'sled', 'sqlite' or 'auto'"
                ))
            })?,
        };
        Ok(Config {
            store,
            durability: match self.periodic_flush_ms {
                Some(n) => Durability::Periodic(amount("durability.periodicMs", n)?),
                None => Durability::EveryCommit,
            },
            rules,
            breaker,
            workers,
            max_attempts: self
                .max_attempts
                .map_or(Ok(d.max_attempts), |n| count("maxAttempts", n))?,
            background: self.background.unwrap_or(d.background),
            immediate_reactions: self.immediate_reactions.unwrap_or(d.immediate_reactions),
            payment,
            notifier,
            clock: None,
            retry_backoff: self
                .retry_backoff_ms
                .map_or(Ok(d.retry_backoff), |n| ms("retryBackoffMs", n))?,
            fault_injection: self.fault_injection.unwrap_or(d.fault_injection),
            ..Config::default()
        })
    }
}
