//! `lendkit.Subscription`, and the hub that hands every committed event to the Python
//! callbacks subscribed to one library.
//!
//! The hub is the library's single subscriber in the core, and only while some Python callback
//! is subscribed: the background runner (or `settle()` without one) calls it with each
//! committed event in position order; it calls each Python callback with the GIL re-acquired.
//! An exception in a callback is reported through `sys.unraisablehook` and otherwise ignored:
//! it never reaches the runner. With no callback the core has no subscriber, so a settle reads
//! no event back from the store only to hand it to no one.

use crate::call::{as_callback, Callback};
use crate::rows;
use lendkit::event::Envelope;
use lendkit::OpenLibrary;
use pyo3::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// A subscribed callback and the position after which its events start.
type Entry = (u64, Arc<Py<PyAny>>);

/// The Python callbacks of one library, and the hub's own subscription in the core while it
/// has any.
#[derive(Default)]
pub(crate) struct Hub {
    /// One lock for both, so that a callback subscribing while the last one leaves can never
    /// end up without the core subscription it needs.
    inner: Mutex<Inner>,
    next: AtomicU64,
}

#[derive(Default)]
struct Inner {
    /// Each callback, and the position after which its events start.
    callbacks: BTreeMap<u64, Entry>,
    /// The library and the hub's subscription id in it, while some callback is subscribed.
    core: Option<(Weak<OpenLibrary>, u64)>,
}

impl Inner {
    /// Ends the hub's subscription in the core, if it has one.
    fn detach(&mut self) {
        if let Some((library, id)) = self.core.take() {
            if let Some(library) = library.upgrade() {
                library.unsubscribe(id);
            }
        }
    }
}

impl Hub {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands one committed event to every callback (called by the core, without the GIL).
    pub(crate) fn dispatch(&self, envelope: &Envelope) {
        let callbacks: Vec<Arc<Py<PyAny>>> = self
            .inner()
            .callbacks
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
    }

    /// True when some callback is subscribed.
    pub(crate) fn active(&self) -> bool {
        !self.inner().callbacks.is_empty()
    }

    /// Subscribes `callback` to the events committed to `library` from now on, subscribing
    /// the hub in the core first if no callback was. Called without the GIL (reading the head
    /// may wait for the store).
    pub(crate) fn add(
        self: &Arc<Self>,
        library: &Arc<OpenLibrary>,
        callback: Py<PyAny>,
    ) -> lendkit::Result<Subscription> {
        let mut inner = self.inner();
        if inner.core.is_none() {
            let hub = Arc::clone(self);
            let id = library.subscribe(Box::new(move |e| hub.dispatch(e)));
            inner.core = Some((Arc::downgrade(library), id));
        }
        // Read after the core subscription exists: it starts at or before this position, so
        // every event after it reaches the hub.
        let head = match crate::call::wait(library.head()) {
            Ok(head) => head,
            Err(e) => {
                if inner.callbacks.is_empty() {
                    inner.detach();
                }
                return Err(e);
            }
        };
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        inner.callbacks.insert(id, (head, Arc::new(callback)));
        Ok(Subscription {
            hub: Arc::clone(self),
            id,
        })
    }

    /// Drops every callback (the library was closed).
    pub(crate) fn clear(&self) {
        let callbacks = {
            let mut inner = self.inner();
            inner.detach();
            std::mem::take(&mut inner.callbacks)
        };
        drop(callbacks);
    }

    fn remove(&self, id: u64) -> bool {
        let mut inner = self.inner();
        let removed = inner.callbacks.remove(&id);
        if inner.callbacks.is_empty() {
            inner.detach();
        }
        drop(inner);
        removed.is_some()
    }

    fn contains(&self, id: u64) -> bool {
        self.inner().callbacks.contains_key(&id)
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
