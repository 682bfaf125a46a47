//! Notifiers: [`RecordingNotifier`] keeps what it is sent, [`NullNotifier`] drops it.

use async_trait::async_trait;
use lendkit_core::error::NotifyError;
use lendkit_core::ports::{Notice, Notifier};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A [`Notifier`] that records every notice it sends successfully, for tests and demos.
///
/// [`fail_next`](RecordingNotifier::fail_next) makes the next sends fail, to exercise retries;
/// a failed send records nothing.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    state: Mutex<Recording>,
}

#[derive(Debug, Default)]
struct Recording {
    notices: Vec<Notice>,
    failures_left: u32,
}

impl RecordingNotifier {
    /// A notifier that has sent nothing and will not fail.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every notice sent successfully so far, in sending order.
    pub fn notices(&self) -> Vec<Notice> {
        self.lock().notices.clone()
    }

    /// Makes the next `n` sends fail with a [`NotifyError`] (replacing any earlier count; 0 stops failing).
    pub fn fail_next(&self, n: u32) {
        self.lock().failures_left = n;
    }

    fn lock(&self) -> MutexGuard<'_, Recording> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        let mut state = self.lock();
        if state.failures_left > 0 {
            state.failures_left -= 1;
            return Err(NotifyError(format!(
                "simulated failure sending {} about rental {} to member {} ({} more to come)",
                notice.kind, notice.rental_id, notice.member_id, state.failures_left
            )));
        }
        state.notices.push(notice.clone());
        Ok(())
    }
}

/// A [`Notifier`] that accepts every notice and drops it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullNotifier;

impl NullNotifier {
    /// The null notifier.
    pub fn new() -> Self {
        NullNotifier
    }
}

#[async_trait]
impl Notifier for NullNotifier {
    async fn send(&self, _notice: &Notice) -> Result<(), NotifyError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn notice(n: u32) -> Notice {
        Notice {
            member_id: "m-1".into(),
            rental_id: format!("r-{n}"),
            kind: "RentalConfirmed".into(),
            message: format!("rental r-{n} is confirmed"),
            event_id: format!("rental:r-{n}#1"),
        }
    }

    #[test]
    fn records_what_it_sends() {
        let notifier = RecordingNotifier::new();
        assert!(notifier.notices().is_empty());
        assert_eq!(block_on(notifier.send(&notice(1))), Ok(()));
        assert_eq!(block_on(notifier.send(&notice(2))), Ok(()));
        assert_eq!(notifier.notices(), [notice(1), notice(2)]);
    }

    #[test]
    fn fails_the_next_n_sends_and_records_nothing_for_them() {
        let notifier = RecordingNotifier::new();
        notifier.fail_next(2);
        assert!(block_on(notifier.send(&notice(1))).is_err());
        assert!(block_on(notifier.send(&notice(1))).is_err());
        assert_eq!(block_on(notifier.send(&notice(1))), Ok(()));
        assert_eq!(notifier.notices(), [notice(1)]);

        notifier.fail_next(1);
        notifier.fail_next(0);
        assert_eq!(block_on(notifier.send(&notice(2))), Ok(()));
    }

    #[test]
    fn null_notifier_accepts_everything() {
        assert_eq!(block_on(NullNotifier::new().send(&notice(1))), Ok(()));
    }
}
