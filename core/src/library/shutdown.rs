//! Closing a library: a flag that new calls check, and a signal that ends every wait on a host.
//!
//! The core has no runtime, so a host port that never answers (a payment gateway with no call
//! timeout, a notifier) would hold its caller for ever — and a binding's `close()`, which joins
//! the background runner, with it. [`Library::close`] flips the flag and fires the signal; every
//! wait on a host port races against it and ends with [`Error::Closed`] (`LIBRARY_CLOSED`).

use super::*;
use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};

/// The library's closed flag and the signal that ends waits on host ports.
pub(super) struct Shutdown {
    closed: AtomicBool,
    /// Dropped by [`close`](Shutdown::close): that completes every clone of `signal`.
    trigger: Mutex<Option<oneshot::Sender<()>>>,
    signal: Shared<oneshot::Receiver<()>>,
}

impl Shutdown {
    pub(super) fn new() -> Self {
        let (trigger, signal) = oneshot::channel();
        Shutdown {
            closed: AtomicBool::new(false),
            trigger: Mutex::new(Some(trigger)),
            signal: signal.shared(),
        }
    }

    /// Closes: new calls fail, and every wait in [`race`](Shutdown::race) ends. Idempotent.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        drop(
            self.trigger
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// `Err(Closed)` once closed.
    pub(super) fn check(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Waits for `work` (a call to a host port) unless the library is, or gets, closed first:
    /// then `work` is dropped unfinished and the answer is `Err(Closed)`.
    pub(super) async fn race<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T> {
        self.check()?;
        // A clone taken after `close` is already complete, so a close between the check and
        // here is not missed.
        match select(std::pin::pin!(work), self.signal.clone()).await {
            Either::Left((answer, _)) => Ok(answer),
            Either::Right(_) => Err(Error::Closed),
        }
    }
}

impl Library {
    /// Closes the library: commands and [`settle`](Library::settle) fail with
    /// `LIBRARY_CLOSED` from now on, and every call still waiting on a host port (a payment
    /// gateway or notifier that has not answered) ends at once with `LIBRARY_CLOSED`, storing
    /// nothing. The host's call itself may still complete — a gateway must be idempotent per
    /// key, so a retry after reopening with the same rental id is safe. Queries keep answering.
    /// Idempotent; call it before joining anything that may be waiting on a host.
    pub fn close(&self) {
        self.shutdown.close();
    }

    /// True once [`close`](Library::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shutdown.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_with_closed_when_closing_and_later_waits_fail_at_once() {
        let shutdown = Shutdown::new();
        let (_keep, never) = oneshot::channel::<()>();
        let waiting = shutdown.race(never);
        shutdown.close();
        assert!(matches!(
            futures::executor::block_on(waiting),
            Err(Error::Closed)
        ));
        assert!(matches!(
            futures::executor::block_on(shutdown.race(async { 1 })),
            Err(Error::Closed)
        ));
        assert!(shutdown.check().is_err());
        shutdown.close();
    }

    #[test]
    fn an_answer_before_closing_is_kept() {
        let shutdown = Shutdown::new();
        assert_eq!(
            futures::executor::block_on(shutdown.race(async { 7 })).ok(),
            Some(7)
        );
    }
}
