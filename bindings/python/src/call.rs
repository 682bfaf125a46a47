//! Calling into the core: with the GIL released, on a runtime-agnostic executor, and with
//! panics turned into errors so that none reaches Python as a `PanicException`.

use crate::errors;
use pyo3::prelude::*;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Runs `f` — a call into the core that must not touch Python objects — with the GIL
/// released. A lendkit error becomes the matching `lendkit.errors` exception; a panic becomes
/// a `StorageError` with code `INTERNAL` instead of a `PanicException`.
pub(crate) fn detached<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> lendkit::Result<T> + Send,
    T: Send,
{
    py.detach(move || {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(errors::panicked(p.as_ref())))
    })
    .map_err(|e| errors::to_py(py, e))
}

/// Drives one of the core's futures to completion on this thread (they need no runtime).
///
/// Unlike `futures::executor::block_on`, this may nest: a Python callback that the library is
/// calling (a subscriber on the background runner, a notifier during `settle`) can call back
/// into the library on the same thread. Each wait has its own wake-up flag, so a wake-up meant
/// for an outer wait is never lost to an inner one.
pub(crate) fn wait<F: Future>(future: F) -> F::Output {
    /// Wakes the waiting thread and records that it was woken.
    struct Signal {
        woken: AtomicBool,
        thread: std::thread::Thread,
    }
    impl Wake for Signal {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.store(true, Ordering::SeqCst);
            self.thread.unpark();
        }
    }
    let signal = Arc::new(Signal {
        woken: AtomicBool::new(false),
        thread: std::thread::current(),
    });
    let waker = Waker::from(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        while !signal.woken.swap(false, Ordering::SeqCst) {
            std::thread::park();
        }
    }
}

/// Which kind of Python callback the current thread is running for the library, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Callback {
    /// A payment gateway or notifier: the library waits for it to return.
    Port,
    /// A subscriber: the background runner (or `settle`) waits for it to return.
    Subscriber,
}

thread_local! {
    static RUNNING: std::cell::Cell<Option<Callback>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` marked as a callback of `kind`, so that a call back into the library from inside
/// it can avoid waiting for itself.
pub(crate) fn as_callback<R>(kind: Callback, f: impl FnOnce() -> R) -> R {
    /// Restores the previous mark, even when `f` panics.
    struct Restore(Option<Callback>);
    impl Drop for Restore {
        fn drop(&mut self) {
            RUNNING.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(RUNNING.with(|r| r.replace(Some(kind))));
    f()
}

/// The callback the current thread is running, if any.
pub(crate) fn running_callback() -> Option<Callback> {
    RUNNING.with(std::cell::Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_nest_without_losing_a_wake_up() {
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tx.send(7)
        });
        let outer = wait(async {
            // An inner wait on the same thread, as a callback calling back into the library does.
            let inner = wait(async { 1 });
            rx.await.map(|v| v + inner)
        });
        assert_eq!(outer, Ok(8));
        assert!(sender.join().is_ok());
    }

    #[test]
    fn callbacks_are_marked_and_unmarked_even_on_panic() {
        assert_eq!(running_callback(), None);
        as_callback(Callback::Port, || {
            assert_eq!(running_callback(), Some(Callback::Port));
            as_callback(Callback::Subscriber, || {
                assert_eq!(running_callback(), Some(Callback::Subscriber));
            });
            assert_eq!(running_callback(), Some(Callback::Port));
        });
        let panicked = catch_unwind(|| as_callback(Callback::Port, || panic!("boom")));
        assert!(panicked.is_err());
        assert_eq!(running_callback(), None);
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let err = errors::panicked(&"index out of bounds");
        assert_eq!(err.code(), lendkit::ErrorCode::Internal);
        assert!(err.to_string().contains("index out of bounds"));
    }
}
