//! The small tokio runtime each networked adapter owns (the PostgreSQL store, the NATS bus).
//!
//! The core is runtime-agnostic (lendkit drives it with `futures::executor::block_on`, the
//! bindings from their own threads), while sqlx and async-nats need tokio. Each adapter
//! therefore owns a runtime of two worker threads and runs every call as a task on it: the
//! task's handle can be awaited from any executor, inside a host's tokio runtime or none.

use std::future::Future;

const SHUT_DOWN: &str = "the runtime is shut down";

/// A runtime that shuts down without blocking when dropped (a plain drop blocks, and panics
/// when it happens inside another runtime).
pub(crate) struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    /// Starts a runtime of two worker threads named `name`.
    pub(crate) fn start(name: &str) -> std::io::Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .map(|r| OwnedRuntime(Some(r)))
    }

    /// Runs `work` as a task and awaits it, from any executor; `failed` names a task that
    /// panicked or was cancelled.
    pub(crate) async fn run<T, E>(
        &self,
        work: impl Future<Output = Result<T, E>> + Send + 'static,
        failed: impl FnOnce(String) -> E,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let Some(runtime) = self.0.as_ref() else {
            return Err(failed(SHUT_DOWN.into()));
        };
        match runtime.spawn(work).await {
            Ok(done) => done,
            Err(e) => Err(failed(e.to_string())),
        }
    }

    /// Starts `work` as a task that runs until it ends or the runtime shuts down.
    #[cfg(feature = "nats")]
    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = self.0.as_ref() {
            drop(runtime.spawn(work));
        }
    }

    /// Runs `work` and waits for it on the calling thread: through a channel, neither entering
    /// the runtime nor running an executor, so it may be called from anywhere (inside
    /// `block_on` or an async context too).
    pub(crate) fn block<T, E>(
        &self,
        work: impl Future<Output = Result<T, E>> + Send + 'static,
        failed: impl FnOnce(String) -> E,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let Some(runtime) = self.0.as_ref() else {
            return Err(failed(SHUT_DOWN.into()));
        };
        let (send, receive) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            // The receiver waits below until this is sent; it cannot be gone.
            let _ = send.send(work.await);
        });
        receive
            .recv()
            .unwrap_or_else(|_| Err(failed("the task ended without an answer".into())))
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
