//! Rehearsing failures: a payment gateway that can be switched to fail as unavailable, so the
//! circuit breaker, the `PAYMENT_UNAVAILABLE` fallback and delayed refunds can be exercised on
//! purpose (in tests, and in drills on a staging library).

use lendkit_core::error::PaymentError;
use lendkit_core::ids::{MemberId, Points, RentalId};
use lendkit_core::ports::{ChargeRef, PaymentGateway, PaymentReceipt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A payment gateway in front of another: while its switch is on, every charge and refund
/// fails as unavailable (an outage, which the circuit breaker counts); otherwise it passes
/// every call on.
pub struct PaymentSwitch {
    inner: Arc<dyn PaymentGateway>,
    down: Arc<AtomicBool>,
}

impl PaymentSwitch {
    /// Puts a switch in front of `inner`; `down` turns the outage on and off.
    pub fn new(inner: Arc<dyn PaymentGateway>, down: Arc<AtomicBool>) -> Self {
        PaymentSwitch { inner, down }
    }

    fn check(&self) -> Result<(), PaymentError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PaymentError::Unavailable(
                "payments are switched off (simulated outage)".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl PaymentGateway for PaymentSwitch {
    async fn charge(
        &self,
        member: &MemberId,
        amount: Points,
        key: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError> {
        self.check()?;
        self.inner.charge(member, amount, key).await
    }

    async fn refund(&self, charge: &ChargeRef) -> Result<(), PaymentError> {
        self.check()?;
        self.inner.refund(charge).await
    }
}
