//! JSON values both ways: event payloads and serialized rows as plain Python objects, and a
//! command's Python fields as the JSON values the core reads.

use lendkit::Command;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString};
use pyo3::IntoPyObjectExt;
use serde_json::Value;

/// `value` as `None`, `bool`, `int`, `float`, `str`, `list` or `dict`.
pub(crate) fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    match value {
        Value::Null => Ok(py.None().into_bound(py)),
        Value::Bool(b) => b.into_bound_py_any(py),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_bound_py_any(py),
            (None, Some(i)) => i.into_bound_py_any(py),
            (None, None) => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py),
        },
        Value::String(s) => s.into_bound_py_any(py),
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|v| to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, items)?.into_any())
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            Ok(dict.into_any())
        }
    }
}

/// A command from a Python mapping of field names (`{"command": "reserve_book", "book_id":
/// …}`), leaving out the keys in `skip` (a batch item's `actor` and `command_id`). Only
/// conversions happen here: each value becomes the JSON value the core reads, handed to
/// `Command::from_fields` with its name (no JSON object is built), and every rule is the core's.
/// The outer error is a Python failure (a mapping whose `items()` raises); the inner one is
/// `INVALID_INPUT` naming the field whose value JSON cannot hold, or the core's refusal.
pub(crate) fn command(
    fields: &Bound<'_, PyMapping>,
    skip: &[&str],
) -> PyResult<Result<Command, lendkit::Error>> {
    let mut name = None;
    // The keys stay Python strings, read in place as UTF-8 (no copy).
    let mut values: Vec<(PyBackedStr, Value)> =
        Vec::with_capacity(fields.cast::<PyDict>().map_or(0, |d| d.len()));
    let mut put = |key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>| {
        let Ok(key) = key.cast::<PyString>() else {
            return Err(invalid(format!(
                "a command's keys are field names (str), not {}",
                type_name(key)
            )));
        };
        let Ok(key) = PyBackedStr::try_from(key.clone()) else {
            return Err(invalid(
                "a command's field name holds a lone surrogate".into(),
            ));
        };
        if !skip.contains(&&*key) {
            let value = field(&key, value)?;
            if &*key == "command" {
                name = Some(value);
            } else {
                values.push((key, value));
            }
        }
        Ok(())
    };
    if let Ok(dict) = fields.cast::<PyDict>() {
        // A dict (nearly always) is walked in place, without `items()`' list of pairs. Nothing
        // here runs Python code that could change it while it is walked.
        for (key, value) in dict.iter() {
            if let Err(e) = put(&key, &value) {
                return Ok(Err(e));
            }
        }
    } else {
        for item in fields.items()?.iter() {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            if let Err(e) = put(&key, &value) {
                return Ok(Err(e));
            }
        }
    }
    Ok(Command::from_fields(name.as_ref(), values))
}

/// One field's value: `str`, `bool`, `int` (within `i64`/`u64`), `float` (finite) or `None`.
fn field(name: &str, value: &Bound<'_, PyAny>) -> Result<Value, lendkit::Error> {
    let shown = || {
        value
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "this value".into())
    };
    if value.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = value.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if value.is_instance_of::<PyInt>() {
        if let Ok(n) = value.extract::<i64>() {
            Ok(Value::from(n))
        } else if let Ok(n) = value.extract::<u64>() {
            Ok(Value::from(n))
        } else {
            Err(invalid(format!(
                "{name} is {}, a whole number out of range for a command (-2^63 to 2^64 - 1)",
                shown()
            )))
        }
    } else if let Ok(f) = value.cast::<PyFloat>() {
        serde_json::Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| invalid(format!("{name} is {}, not a finite number", shown())))
    } else if let Ok(s) = value.cast::<PyString>() {
        match s.to_cow() {
            Ok(s) => Ok(Value::String(s.into_owned())),
            Err(_) => Err(invalid(format!(
                "{name} is {}, which is not valid text: it holds a lone surrogate",
                shown()
            ))),
        }
    } else {
        Err(invalid(format!(
            "{name} must be a str, an int, a float, a bool or None, not {}",
            type_name(value)
        )))
    }
}

fn invalid(message: String) -> lendkit::Error {
    lendkit::Error::InvalidInput(message)
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "this type".into())
}
