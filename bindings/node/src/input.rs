//! What crosses from JS as numbers, made ready for the core.
//!
//! Commands do not pass through here: they cross as the text of their JSON form
//! (`{"command": "reserve_book", "book_id": …}`, the keys made snake_case and the text written by
//! `index.js`) and are read and checked field by field by `lendkit::Command::from_json`, so Rust,
//! Python and Node refuse the same inputs with the same codes and messages. (`JSON.stringify`
//! writes a whole number as one, so nothing needs converting.) The numbers of options and
//! queries do: JS has one number type, and napi hands a whole number past `u32` over as a float.

use crate::errors;
use napi::Result;

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
