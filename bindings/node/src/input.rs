//! The commands' inputs as JS objects with camelCase keys, turned into the core's [`Command`].
//!
//! Only the shape is checked here (a number must be a whole, non-negative number that fits);
//! every rule — ids well formed, amounts at least 1, texts bounded — is the core's
//! [`Command::validate`], so Rust, Python and Node reject the same inputs with the same codes.

use crate::errors;
use lendkit::Command;
use napi::Result;
use napi_derive::napi;

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

/// `registerBook`: put a title in the catalogue (librarian).
#[napi(object, object_to_js = false)]
pub struct RegisterBookInput {
    /// New book id (e.g. an ISBN).
    pub book_id: String,
    /// Title.
    pub title: String,
    /// Copies on the shelf, at least 1.
    pub copies: f64,
    /// Rental fee in points, at least 1.
    pub fee: f64,
    /// Author.
    pub author: Option<String>,
    /// Command id, to retry safely.
    pub command_id: Option<String>,
}

/// `addCopies`: stock more copies (librarian).
#[napi(object, object_to_js = false)]
pub struct AddCopiesInput {
    /// Book id.
    pub book_id: String,
    /// How many, at least 1.
    pub copies: f64,
    /// Command id, to retry safely.
    pub command_id: Option<String>,
}

/// `joinMember`: register a member; their point account opens with the welcome points.
#[napi(object, object_to_js = false)]
pub struct JoinMemberInput {
    /// New member id.
    pub member_id: String,
    /// Name.
    pub name: String,
    /// Phone or e-mail for notices.
    pub contact: Option<String>,
    /// Command id, to retry safely.
    pub command_id: Option<String>,
}

/// `topUp`: add points to a member's account (librarian).
#[napi(object, object_to_js = false)]
pub struct TopUpInput {
    /// Member id.
    pub member_id: String,
    /// How many, at least 1.
    pub points: f64,
    /// Command id, to retry safely.
    pub command_id: Option<String>,
}

/// `reserveBook`: reserve a book, paying its fee now.
#[napi(object, object_to_js = false)]
pub struct ReserveBookInput {
    /// Book id.
    pub book_id: String,
    /// Member id.
    pub member_id: String,
    /// Rental id to use; generated when absent.
    pub rental_id: Option<String>,
    /// Deliver to this address; pick up in person when absent.
    pub delivery_address: Option<String>,
    /// Command id, to retry safely.
    pub command_id: Option<String>,
}

/// `startLoan`, `returnBook`, `renewLoan`, `markDelivered`: one step of a rental.
#[napi(object, object_to_js = false)]
pub struct RentalInput {
    /// Rental id.
    pub rental_id: String,
    /// Command id, to retry safely.
    pub command_id: Option<String>,
}

/// `cancelRental`: cancel a reservation; refund, copy release and delivery cancellation follow.
#[napi(object, object_to_js = false)]
pub struct CancelRentalInput {
    /// Rental id.
    pub rental_id: String,
    /// Why; defaults to `canceled by member` / `canceled by librarian`.
    pub reason: Option<String>,
    /// Command id, to retry safely.
    pub command_id: Option<String>,
}

/// A command and the caller's command id, if any.
pub type Request = (Command, Option<String>);

impl RegisterBookInput {
    /// The core command.
    pub fn into_request(self) -> Result<Request> {
        let command = Command::RegisterBook {
            copies: count("copies", self.copies)?,
            fee: amount("fee", self.fee)?,
            book_id: self.book_id,
            title: self.title,
            author: self.author,
        };
        Ok((command, self.command_id))
    }
}

impl AddCopiesInput {
    /// The core command.
    pub fn into_request(self) -> Result<Request> {
        let command = Command::AddCopies {
            copies: count("copies", self.copies)?,
            book_id: self.book_id,
        };
        Ok((command, self.command_id))
    }
}

impl JoinMemberInput {
    /// The core command.
    pub fn into_request(self) -> Request {
        let command = Command::JoinMember {
            member_id: self.member_id,
            name: self.name,
            contact: self.contact,
        };
        (command, self.command_id)
    }
}

impl TopUpInput {
    /// The core command.
    pub fn into_request(self) -> Result<Request> {
        let command = Command::TopUp {
            points: amount("points", self.points)?,
            member_id: self.member_id,
        };
        Ok((command, self.command_id))
    }
}

impl ReserveBookInput {
    /// The core command.
    pub fn into_request(self) -> Request {
        let command = Command::ReserveBook {
            book_id: self.book_id,
            member_id: self.member_id,
            rental_id: self.rental_id,
            delivery_address: self.delivery_address,
        };
        (command, self.command_id)
    }
}

impl CancelRentalInput {
    /// The core command.
    pub fn into_request(self) -> Request {
        let command = Command::CancelRental {
            rental_id: self.rental_id,
            reason: self.reason,
        };
        (command, self.command_id)
    }
}

impl RentalInput {
    /// The core command `make` builds from the rental id.
    pub fn into_request(self, make: fn(String) -> Command) -> Request {
        (make(self.rental_id), self.command_id)
    }
}
