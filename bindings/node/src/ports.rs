//! The host's ports: a payment gateway and a notifier written in JavaScript, and event
//! subscriptions.
//!
//! The core calls these from threads that are not Node's (a napi async task, or the background
//! runner), so every JS function is held as a weak napi `ThreadsafeFunction`: calls are queued to
//! the JS thread and their results awaited, and none of them keeps the process alive. The wrapper
//! (`index.js`) hands in normalised functions that always return a Promise of a [`PortReply`]
//! (sync returns, thrown errors and rejected promises alike), so a host failure is an answer
//! here, never a crash; a charge answer of an undocumented shape arrives as a failure. No rule
//! lives here: a reply is only translated into the port's result. A call that never answers is
//! ended by the breaker's call timeout or by closing the library (`Library::close`).

use lendkit::error::{NotifyError, PaymentError};
use lendkit::event::Envelope;
use lendkit::ids::{MemberId, Points, RentalId};
use lendkit::ports::{ChargeRef, Notifier, PaymentGateway, PaymentReceipt};
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

/// A JS function called from any thread with one argument, answering a Promise of a [`PortReply`].
/// Weak: it never keeps Node running.
pub type Port<Req> = ThreadsafeFunction<Req, Promise<PortReply>, Req, Status, false, true>;

/// A JS function handed every committed event; fire and forget. Weak: it never keeps Node running.
pub type Listener =
    ThreadsafeFunction<crate::output::Event, (), crate::output::Event, Status, false, true>;

/// What the host's `charge` is asked.
#[napi(object)]
pub struct ChargeRequest {
    /// Who pays.
    pub member_id: String,
    /// How many points.
    pub amount: f64,
    /// The idempotency key: the rental id.
    pub key: String,
}

/// What the host's `refund` is asked.
#[napi(object)]
pub struct RefundRequest {
    /// The key the charge was made with (the rental id).
    pub key: String,
    /// Who was charged.
    pub member_id: String,
    /// How much.
    pub amount: f64,
}

/// A message to a member about their rental or delivery (문자 알림).
#[napi(object)]
pub struct Notice {
    /// Who hears of it.
    pub member_id: String,
    /// The rental it is about.
    pub rental_id: String,
    /// The event that caused it (`RentalConfirmed`, `DeliveryStarted`, …).
    pub kind: String,
    /// A readable sentence.
    pub message: String,
    /// The causing event's id, so a notifier can drop duplicates.
    pub event_id: String,
}

/// How a host port answered (built by the wrapper from what the host function did).
#[napi(object)]
pub struct PortReply {
    /// True when the call succeeded.
    pub ok: bool,
    /// For a successful charge: the gateway's payment id, if it gave one.
    pub payment_id: Option<String>,
    /// For a failed charge: true when the gateway refused it (an answer, not an outage).
    pub declined: Option<bool>,
    /// For a failure: what the host said.
    pub message: Option<String>,
}

/// Calls a host port and waits for its reply. `Err` is the reason it gave no reply.
async fn ask<Req: 'static + napi::bindgen_prelude::ToNapiValue>(
    port: &Port<Req>,
    request: Req,
) -> Result<PortReply, String> {
    let promise = port
        .call_async_catch(request)
        .await
        .map_err(|e| format!("the host callback failed: {}", e.reason))?;
    promise
        .await
        .map_err(|e| format!("the host callback failed: {}", e.reason))
}

fn amount(points: Points) -> f64 {
    #[expect(
        clippy::cast_precision_loss,
        reason = "point amounts stay far below 2^53"
    )]
    let n = points.0 as f64;
    n
}

/// A payment gateway implemented by the host's `payment.charge` / `payment.refund`.
pub struct JsGateway {
    /// The host's charge.
    pub charge: Port<ChargeRequest>,
    /// The host's refund.
    pub refund: Port<RefundRequest>,
}

impl JsGateway {
    fn failure(reply: PortReply, what: &str) -> PaymentError {
        let message = reply
            .message
            .unwrap_or_else(|| format!("the host's {what} failed"));
        if reply.declined == Some(true) {
            PaymentError::Declined(message)
        } else {
            PaymentError::Unavailable(message)
        }
    }
}

#[async_trait::async_trait]
impl PaymentGateway for JsGateway {
    async fn charge(
        &self,
        member: &MemberId,
        points: Points,
        key: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError> {
        let request = ChargeRequest {
            member_id: member.to_string(),
            amount: amount(points),
            key: key.to_string(),
        };
        let reply = ask(&self.charge, request)
            .await
            .map_err(PaymentError::Unavailable)?;
        if !reply.ok {
            return Err(Self::failure(reply, "charge"));
        }
        // The wrapper already refuses every other answer; an empty id is no payment either.
        match reply.payment_id {
            None => Ok(PaymentReceipt {
                payment_id: format!("host:{key}"),
            }),
            Some(id) if id.is_empty() => Err(PaymentError::Unavailable(
                "charge answered with an empty payment id".into(),
            )),
            Some(payment_id) => Ok(PaymentReceipt { payment_id }),
        }
    }

    async fn refund(&self, charge: &ChargeRef) -> Result<(), PaymentError> {
        let request = RefundRequest {
            key: charge.key.to_string(),
            member_id: charge.member.to_string(),
            amount: amount(charge.amount),
        };
        let reply = ask(&self.refund, request)
            .await
            .map_err(PaymentError::Unavailable)?;
        if reply.ok {
            Ok(())
        } else {
            Err(Self::failure(reply, "refund"))
        }
    }
}

/// A notifier implemented by the host's `notifier(notice)`.
pub struct JsNotifier {
    /// The host's function.
    pub send: Port<Notice>,
}

#[async_trait::async_trait]
impl Notifier for JsNotifier {
    async fn send(&self, notice: &lendkit::ports::Notice) -> Result<(), NotifyError> {
        let request = Notice {
            member_id: notice.member_id.clone(),
            rental_id: notice.rental_id.clone(),
            kind: notice.kind.clone(),
            message: notice.message.clone(),
            event_id: notice.event_id.clone(),
        };
        let reply = ask(&self.send, request).await.map_err(NotifyError)?;
        if reply.ok {
            Ok(())
        } else {
            Err(NotifyError(
                reply
                    .message
                    .unwrap_or_else(|| "the host's notifier failed".into()),
            ))
        }
    }
}

/// A subscriber that queues every event to a JS listener without waiting for it.
pub fn subscriber(listener: Listener) -> lendkit::Subscriber {
    Box::new(move |e: &Envelope| {
        // A closing environment refuses the call; there is nobody left to tell.
        let _ = listener.call(
            crate::output::Event::from(e),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    })
}
