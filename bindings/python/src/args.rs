//! [`Text`]: a `str` argument (an actor's or a query's id) that is valid Unicode. A `str` holding
//! a lone surrogate (`"m\ud800"`) cannot become Rust text; it is refused as the package's own
//! `InvalidInputError` (code `INVALID_INPUT`) instead of raising `UnicodeEncodeError`. (Commands'
//! fields are converted by `json::command`.)

use crate::errors;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Text from a Python `str`; see the module docs.
pub(crate) struct Text(pub(crate) String);

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Text {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let obj: &Bound<'py, PyAny> = &obj;
        let Ok(text) = obj.cast::<PyString>() else {
            return Err(errors::wrong_type("the argument", "a str", obj));
        };
        match text.to_cow() {
            Ok(s) => Ok(Text(s.into_owned())),
            Err(_) => {
                let shown = obj
                    .repr()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|_| "the text".into());
                Err(errors::invalid(
                    obj.py(),
                    format!("{shown} is not valid text: it holds a lone surrogate"),
                ))
            }
        }
    }
}
