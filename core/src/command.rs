//! The commands a caller can send, as one serializable type, and what a command returns.
//!
//! Bindings and scenario files build a [`Command`] and hand it to
//! [`Library::execute`](crate::library::Library::execute); every input rule is checked here, once.

use crate::error::Error;
use crate::event::Envelope;
use crate::ids::{validate_amount, validate_id, validate_text, Actor, CommandId, RentalId};
use serde::{Deserialize, Serialize};

/// A caller's command. The JSON form is `{"command": "reserve_book", "book_id": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Put a title in the catalogue (librarian).
    RegisterBook {
        /// New book id (e.g. an ISBN).
        book_id: String,
        /// Title.
        title: String,
        /// Author.
        #[serde(default)]
        author: Option<String>,
        /// Copies on the shelf, at least 1.
        copies: u32,
        /// Rental fee in points, at least 1.
        fee: u64,
    },
    /// Stock more copies (librarian).
    AddCopies {
        /// Book id.
        book_id: String,
        /// How many, at least 1.
        copies: u32,
    },
    /// Register a member (librarian, or the person themselves); opens their point account with the welcome points.
    JoinMember {
        /// New member id.
        member_id: String,
        /// Name.
        name: String,
        /// Phone or e-mail for notices.
        #[serde(default)]
        contact: Option<String>,
    },
    /// Add points to a member's account (librarian).
    TopUp {
        /// Member id.
        member_id: String,
        /// How many, at least 1.
        points: u64,
    },
    /// Reserve a book, paying its fee now (the member, or a librarian for them).
    ReserveBook {
        /// Book id.
        book_id: String,
        /// Member id.
        member_id: String,
        /// Rental id to use; generated when absent.
        #[serde(default)]
        rental_id: Option<String>,
        /// Deliver to this address; pick up in person when absent.
        #[serde(default)]
        delivery_address: Option<String>,
    },
    /// Pick up a confirmed rental (대여).
    StartLoan {
        /// Rental id.
        rental_id: String,
    },
    /// Bring a loan back (반납).
    ReturnBook {
        /// Rental id.
        rental_id: String,
    },
    /// Cancel a reservation (예약 취소); refund, copy release and delivery cancellation follow.
    CancelRental {
        /// Rental id.
        rental_id: String,
        /// Why; defaults to `canceled by member` / `canceled by librarian`.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Extend a loan.
    RenewLoan {
        /// Rental id.
        rental_id: String,
    },
    /// Record that a delivery arrived (librarian); the loan starts.
    MarkDelivered {
        /// Rental id.
        rental_id: String,
    },
}

impl Command {
    /// The command's name in snake_case, as in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Command::RegisterBook { .. } => "register_book",
            Command::AddCopies { .. } => "add_copies",
            Command::JoinMember { .. } => "join_member",
            Command::TopUp { .. } => "top_up",
            Command::ReserveBook { .. } => "reserve_book",
            Command::StartLoan { .. } => "start_loan",
            Command::ReturnBook { .. } => "return_book",
            Command::CancelRental { .. } => "cancel_rental",
            Command::RenewLoan { .. } => "renew_loan",
            Command::MarkDelivered { .. } => "mark_delivered",
        }
    }

    /// A command from its JSON form (`{"command": "reserve_book", "book_id": …}`), as bindings
    /// and files send it: a malformed one (an unknown command or field, a boolean where a number
    /// belongs, a number past `u64`, a lone surrogate) is `INVALID_INPUT`, and the command is
    /// [validated](Command::validate).
    pub fn from_json(text: &str) -> Result<Command, Error> {
        let command: Command = serde_json::from_str(text).map_err(not_a_command)?;
        command.validate()?;
        Ok(command)
    }

    /// [`from_json`](Command::from_json) for an already parsed JSON value.
    pub fn from_json_value(value: serde_json::Value) -> Result<Command, Error> {
        let command: Command = serde_json::from_value(value).map_err(not_a_command)?;
        command.validate()?;
        Ok(command)
    }

    /// What this command, sent by `actor`, is: a stable digest of its JSON form and the actor.
    /// A command id is recorded with the fingerprint of the command that first used it, so a
    /// retry (same fingerprint) returns the first outcome and a different command under the
    /// same id is refused with `COMMAND_ID_REUSED`.
    pub fn fingerprint(&self, actor: &Actor) -> String {
        // Serializing a plain enum of strings and integers cannot fail; an empty text would
        // only make every such command share one fingerprint, never panic.
        let json = serde_json::to_string(self).unwrap_or_default();
        crate::ids::digest(&["command", &actor.to_string(), &json])
    }

    /// Checks the input rules every command shares: ids well formed, texts bounded, amounts in
    /// `1..=`[`MAX_AMOUNT`](crate::ids::MAX_AMOUNT).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = Error::InvalidInput;
        let positive = validate_amount;
        let r = match self {
            Command::RegisterBook {
                book_id,
                title,
                author,
                copies,
                fee,
            } => validate_id("book_id", book_id)
                .and_then(|()| validate_text("title", title, true))
                .and_then(|()| {
                    author
                        .as_deref()
                        .map_or(Ok(()), |a| validate_text("author", a, false))
                })
                .and_then(|()| positive("copies", u64::from(*copies)))
                .and_then(|()| positive("fee", *fee)),
            Command::AddCopies { book_id, copies } => validate_id("book_id", book_id)
                .and_then(|()| positive("copies", u64::from(*copies))),
            Command::JoinMember {
                member_id,
                name,
                contact,
            } => validate_id("member_id", member_id)
                .and_then(|()| validate_text("name", name, true))
                .and_then(|()| {
                    contact
                        .as_deref()
                        .map_or(Ok(()), |c| validate_text("contact", c, false))
                }),
            Command::TopUp { member_id, points } => {
                validate_id("member_id", member_id).and_then(|()| positive("points", *points))
            }
            Command::ReserveBook {
                book_id,
                member_id,
                rental_id,
                delivery_address,
            } => validate_id("book_id", book_id)
                .and_then(|()| validate_id("member_id", member_id))
                .and_then(|()| {
                    rental_id
                        .as_deref()
                        .map_or(Ok(()), |r| validate_id("rental_id", r))
                })
                .and_then(|()| {
                    delivery_address
                        .as_deref()
                        .map_or(Ok(()), |a| validate_text("delivery_address", a, true))
                }),
            Command::CancelRental { rental_id, reason } => validate_id("rental_id", rental_id)
                .and_then(|()| {
                    reason
                        .as_deref()
                        .map_or(Ok(()), |r| validate_text("reason", r, false))
                }),
            Command::StartLoan { rental_id }
            | Command::ReturnBook { rental_id }
            | Command::RenewLoan { rental_id }
            | Command::MarkDelivered { rental_id } => validate_id("rental_id", rental_id),
        };
        r.map_err(bad)
    }
}

fn not_a_command(e: serde_json::Error) -> Error {
    Error::InvalidInput(format!("not a command: {e}"))
}

/// What a successful command returns: the events it stored (or, for a re-sent command id, the events it stored the first time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The command's id (given or generated); send it again to retry safely.
    pub command_id: CommandId,
    /// The rental the command was about, when there is one (for `reserve_book`: the new rental's id).
    pub rental_id: Option<RentalId>,
    /// The stored events with their positions and versions, in position order. Empty when the command changed nothing.
    pub events: Vec<Envelope>,
}

impl Outcome {
    /// The type names of the stored events.
    pub fn types(&self) -> Vec<&'static str> {
        self.events.iter().map(Envelope::type_name).collect()
    }
}
