//! What crosses from JS as numbers and commands, made ready for the core.
//!
//! A command arrives as its JSON form (`{"command": "reserve_book", "book_id": …}`, the keys
//! made snake_case by `index.js`) and is checked field by field by [`Command::from_json_value`],
//! so Rust, Python and Node refuse the same inputs with the same codes and messages. The only
//! conversion is of numbers: JS has one number type, and napi hands a whole number past `u32` over
//! as a float, which the core would refuse as not whole.

use crate::errors;
use lendkit::Command;
use napi::Result;
use serde_json::Value;

/// The largest whole number a JS number holds exactly (2^53 − 1).
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A whole number in `0..=max` from a JS number, or `INVALID_INPUT`.
pub fn whole(field: &str, value: f64, max: f64) -> Result<u64> {
    if !value.is_finite() || value.fract() != 0.0 || value < 0.0 || value > max {
        return Err(errors::invalid(format!(
            "{field} must be a whole number between 0 and {max}, not {value}"
        )));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked: whole, in 0..=2^53"
    )]
    Ok(value as u64)
}

/// A `u32` count from a JS number.
pub fn count(field: &str, value: f64) -> Result<u32> {
    whole(field, value, f64::from(u32::MAX)).and_then(|n| u32::try_from(n).map_err(errors::invalid))
}

/// A `u64` amount from a JS number (at most 2^53 − 1, the largest a JS number holds exactly).
pub fn amount(field: &str, value: f64) -> Result<u64> {
    whole(field, value, MAX_SAFE)
}

/// 2^63: the whole numbers of smaller magnitude fit an `i64`.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

/// A command from its JSON form; `INVALID_INPUT` naming the field at fault.
pub fn command(mut value: Value) -> lendkit::Result<Command> {
    if let Value::Object(fields) = &mut value {
        for field in fields.values_mut() {
            // Every whole f64 of magnitude below 2^63 is an i64 exactly.
            let whole = field
                .as_f64()
                .filter(|n| n.fract() == 0.0 && n.abs() < I64_LIMIT);
            if let (true, Some(n)) = (field.is_f64(), whole) {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "checked: whole, of magnitude below 2^63"
                )]
                let whole = n as i64;
                *field = Value::from(whole);
            }
        }
    }
    Command::from_json_value(value)
}
