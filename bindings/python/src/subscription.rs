//! `lendkit.Subscription`, and the hub that hands every committed event to the Python
//! callbacks subscribed to one library.
//!
//! The hub is the library's single subscriber in the core: the background runner (or
//! `settle()` without one) calls it with each committed event in position order; it calls each
//! Python callback with the GIL re-acquired. An exception in a callback is reported through
//! `sys.unraisablehook` and otherwise ignored: it never reaches the runner.

use crate::call::{as_callback, Callback};
use crate::rows;
use lendkit::event::Envelope;
use pyo3::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A subscribed callback and the position after which its events start.
type Entry = (u64, Arc<Py<PyAny>>);

/// The Python callbacks of one library.
#[derive(Default)]
pub(crate) struct Hub {
    /// Each callback, and the position after which its events start.
    callbacks: Mutex<BTreeMap<u64, Entry>>,
    next: AtomicU64,
    /// The last position handed to every callback.
    delivered: AtomicU64,
}

impl Hub {
    /// Hands one committed event to every callback (called by the core, without the GIL).
    pub(crate) fn dispatch(&self, envelope: &Envelope) {
        let callbacks: Vec<Arc<Py<PyAny>>> = self
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|(after, _)| envelope.position > *after)
            .map(|(_, callback)| Arc::clone(callback))
            .collect();
        if !callbacks.is_empty() {
            let event = rows::Event::from(envelope);
            as_callback(Callback::Subscriber, || {
                Python::try_attach(|py| {
                    let Ok(event) = Py::new(py, event) else {
                        return;
                    };
                    for callback in callbacks {
                        let callback = callback.bind(py);
                        if let Err(err) = callback.call1((event.clone_ref(py),)) {
                            err.write_unraisable(py, Some(callback));
                        }
                    }
                })
            });
        }
        self.delivered
            .fetch_max(envelope.position, Ordering::SeqCst);
    }

    /// True when some callback is subscribed.
    pub(crate) fn active(&self) -> bool {
        !self
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// The last position handed to the callbacks.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::SeqCst)
    }

    /// Marks everything up to `position` as delivered (nothing before a library opened is).
    pub(crate) fn start_at(&self, position: u64) {
        self.delivered.fetch_max(position, Ordering::SeqCst);
    }

    /// Subscribes `callback` to the events after position `after`.
    pub(crate) fn add(self: &Arc<Self>, callback: Py<PyAny>, after: u64) -> Subscription {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (after, Arc::new(callback)));
        Subscription {
            hub: Arc::clone(self),
            id,
        }
    }

    /// Drops every callback (the library was closed).
    pub(crate) fn clear(&self) {
        let callbacks = std::mem::take(
            &mut *self
                .callbacks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        drop(callbacks);
    }

    fn remove(&self, id: u64) -> bool {
        self.callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
            .is_some()
    }

    fn contains(&self, id: u64) -> bool {
        self.callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&id)
    }
}

/// A callback's subscription to a library's committed events. `close()` (or leaving a `with`
/// block) ends it; events already being delivered may still arrive once.
#[pyclass(module = "lendkit", frozen)]
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
}

#[pymethods]
impl Subscription {
    /// Stops the callback from receiving further events. Closing twice is harmless.
    fn close(&self) {
        // The hub's lock is never held while waiting for the GIL, so taking it attached is safe.
        self.hub.remove(self.id);
    }

    /// True until closed.
    #[getter]
    fn active(&self) -> bool {
        self.hub.contains(self.id)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.hub.contains(self.id) {
            "active"
        } else {
            "closed"
        };
        format!("<lendkit.Subscription {} {state}>", self.id)
    }
}
