//! `lendkit.Librarian` and `lendkit.Member`: who issues a command. The core decides what each
//! may do; the binding only names them.

use crate::args::Text;
use crate::errors;
use lendkit::Actor;
use pyo3::prelude::*;

/// Library staff: registers books, adds copies, registers members, tops up points, marks
/// deliveries, and may act on any rental.
#[pyclass(module = "lendkit", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Librarian {
    id: String,
}

#[pymethods]
impl Librarian {
    /// A librarian with this staff id (non-empty, at most 200 bytes, no surrounding spaces).
    #[new]
    fn new(py: Python<'_>, id: Text) -> PyResult<Self> {
        Actor::check_librarian_id(&id.0).map_err(|reason| errors::invalid(py, reason))?;
        Ok(Librarian { id: id.0 })
    }

    /// The staff id.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr(py, "Librarian", &self.id)
    }

    fn __str__(&self) -> String {
        Actor::librarian(&self.id).to_string()
    }
}

/// A member: reserves for themselves and acts on their own rentals only.
#[pyclass(module = "lendkit", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    id: String,
}

#[pymethods]
impl Member {
    /// The member with this member id.
    #[new]
    fn new(py: Python<'_>, id: Text) -> PyResult<Self> {
        Actor::check_member_id(&id.0).map_err(|reason| errors::invalid(py, reason))?;
        Ok(Member { id: id.0 })
    }

    /// The member id.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr(py, "Member", &self.id)
    }

    fn __str__(&self) -> String {
        Actor::member(&self.id).to_string()
    }
}

fn repr(py: Python<'_>, class: &str, id: &str) -> PyResult<String> {
    let id = id.into_pyobject(py)?.repr()?;
    Ok(format!("{class}({id})"))
}

/// The core actor for an optional `actor=` argument of a query (`None`: the host is trusted).
pub(crate) fn optional(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Actor>> {
    obj.filter(|o| !o.is_none()).map(actor).transpose()
}

/// The core actor for an `actor=` argument: a `Librarian` or a `Member`, nothing else.
pub(crate) fn actor(obj: &Bound<'_, PyAny>) -> PyResult<Actor> {
    if let Ok(l) = obj.cast::<Librarian>() {
        return Ok(Actor::librarian(&l.get().id));
    }
    if let Ok(m) = obj.cast::<Member>() {
        return Ok(Actor::member(&m.get().id));
    }
    Err(errors::wrong_type(
        "actor",
        "a lendkit.Librarian or a lendkit.Member",
        obj,
    ))
}
