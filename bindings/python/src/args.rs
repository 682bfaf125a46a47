//! Arguments that need more than PyO3's stock conversion, so that bad input is the package's own
//! `InvalidInputError` (code `INVALID_INPUT`) in Python as in Rust and Node:
//! - [`Text`]: a `str` that is valid Unicode. A `str` holding a lone surrogate (`"m\ud800"`)
//!   cannot become Rust text; it is refused here instead of raising `UnicodeEncodeError`.
//! - [`whole`]: an amount or a count. `True`/`False` are not numbers, and a number out of range
//!   is refused naming the argument instead of raising `OverflowError`. The range itself
//!   (`1..=2^53-1`) is the core's rule, checked by `Command::validate`.

use crate::errors;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};

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

/// `Option<Text>` as `Option<String>`.
pub(crate) fn text(t: Option<Text>) -> Option<String> {
    t.map(String::from)
}

/// A whole number argument `name` in `0..=max`: an `int`, not a `bool`.
pub(crate) fn whole(obj: &Bound<'_, PyAny>, name: &str, max: u64) -> PyResult<u64> {
    let py = obj.py();
    let type_name = || {
        obj.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "this type".into())
    };
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(errors::invalid(
            py,
            format!(
                "{name} must be a whole number (an int), not {}",
                type_name()
            ),
        ));
    }
    match obj.extract::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(errors::invalid(
            py,
            format!(
                "{name} is {}; it must be a whole number from 1 to {max}",
                obj.str().map(|s| s.to_string()).unwrap_or_default()
            ),
        )),
    }
}

/// An amount (fee, points) argument: a whole number up to `u64::MAX`, whose range the core checks
/// (so the message is the same in every language).
pub(crate) fn amount(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    whole(obj, name, u64::MAX)
}

/// A count (copies) argument.
pub(crate) fn count(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u32> {
    whole(obj, name, u64::from(u32::MAX)).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}
