//! The Delivery aggregate: bringing a rental's book to the member's address (배송).
//!
//! Invariants: one delivery per rental (its id is the rental id); it starts only for a
//! confirmed rental with an address (policy); a librarian marks it delivered; it cannot be
//! cancelled once delivered, nor delivered once cancelled or once its rental is cancelled.

use crate::aggregate::{Aggregate, Context};
use crate::codes::ErrorCode;
use crate::ids::{MemberId, RentalId, StreamKind};
use serde::{Deserialize, Serialize};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// No delivery.
    #[default]
    None,
    /// On its way.
    Started,
    /// Handed to the member.
    Delivered,
    /// Called off.
    Canceled,
}

impl DeliveryStatus {
    /// The status as shown in views.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::None => "none",
            DeliveryStatus::Started => "started",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Canceled => "canceled",
        }
    }
}

/// Commands on a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryCommand {
    /// Send the book (policy, once the rental is confirmed).
    StartDelivery {
        /// Rental.
        rental: RentalId,
        /// Recipient.
        member: MemberId,
        /// Address.
        address: String,
    },
    /// The courier handed it over (a librarian records it).
    MarkDelivered {
        /// Rental.
        rental: RentalId,
        /// Whether the rental was cancelled meanwhile (read from the rental by the service).
        rental_canceled: bool,
    },
    /// Call the delivery off (policy, after a cancellation).
    CancelDelivery {
        /// Rental.
        rental: RentalId,
    },
}

crate::event::event_enum! {
    /// Events of a delivery.
    pub enum DeliveryEvent {
        /// The book is on its way.
        DeliveryStarted {
            /// Rental.
            rental: RentalId,
            /// Recipient.
            member: MemberId,
            /// Address.
            address: String,
        },
        /// The member has the book.
        Delivered {
            /// Rental.
            rental: RentalId,
            /// Recipient.
            member: MemberId,
        },
        /// The delivery was called off.
        DeliveryCanceled {
            /// Rental.
            rental: RentalId,
            /// Recipient.
            member: MemberId,
        },
    }
}

/// Why a delivery command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// No delivery for that rental.
    #[error("rental {0} has no delivery")]
    NotFound(RentalId),
    /// Only librarians record deliveries.
    #[error("only a librarian may mark a delivery as delivered")]
    LibrarianOnly,
    /// Starting and cancelling are lendkit's own.
    #[error("deliveries are started and cancelled by lendkit's policies, not by callers")]
    SystemOnly,
    /// Already handed over.
    #[error("the delivery of rental {0} already arrived")]
    AlreadyDelivered(RentalId),
    /// Not on its way any more.
    #[error("the delivery of rental {rental} is {}; it cannot {action}", status.as_str())]
    InvalidTransition {
        /// Rental.
        rental: RentalId,
        /// Where it stands.
        status: DeliveryStatus,
        /// What was asked.
        action: &'static str,
    },
}

impl DeliveryError {
    /// Stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            DeliveryError::NotFound(_) => ErrorCode::DeliveryNotFound,
            DeliveryError::LibrarianOnly | DeliveryError::SystemOnly => ErrorCode::Unauthorized,
            DeliveryError::AlreadyDelivered(_) => ErrorCode::AlreadyDelivered,
            DeliveryError::InvalidTransition { .. } => ErrorCode::InvalidTransition,
        }
    }
}

/// A delivery. State is the fold of its [`DeliveryEvent`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Recipient.
    pub member: Option<MemberId>,
}

impl DeliveryCommand {
    /// The rental whose delivery the command is about.
    pub fn rental(&self) -> &RentalId {
        match self {
            DeliveryCommand::StartDelivery { rental, .. }
            | DeliveryCommand::MarkDelivered { rental, .. }
            | DeliveryCommand::CancelDelivery { rental } => rental,
        }
    }
}

impl Aggregate for Delivery {
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;
    type Error = DeliveryError;
    const KIND: StreamKind = StreamKind::Delivery;

    fn decide(
        &self,
        command: &DeliveryCommand,
        ctx: &Context,
    ) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        use DeliveryStatus as S;
        match command {
            DeliveryCommand::StartDelivery {
                rental,
                member,
                address,
            } => {
                if !ctx.actor.is_system() {
                    return Err(DeliveryError::SystemOnly);
                }
                match self.status {
                    S::None => Ok(vec![DeliveryEvent::DeliveryStarted {
                        rental: rental.clone(),
                        member: member.clone(),
                        address: address.clone(),
                    }]),
                    _ => Ok(vec![]),
                }
            }
            DeliveryCommand::MarkDelivered {
                rental,
                rental_canceled,
            } => {
                if !ctx.actor.is_librarian() {
                    return Err(DeliveryError::LibrarianOnly);
                }
                let Some(member) = self.member.clone() else {
                    return Err(DeliveryError::NotFound(rental.clone()));
                };
                match self.status {
                    S::Started if *rental_canceled => Err(DeliveryError::InvalidTransition {
                        rental: rental.clone(),
                        status: self.status,
                        action: "be delivered: its rental was cancelled",
                    }),
                    S::Started => Ok(vec![DeliveryEvent::Delivered {
                        rental: rental.clone(),
                        member,
                    }]),
                    S::Delivered => Err(DeliveryError::AlreadyDelivered(rental.clone())),
                    _ => Err(DeliveryError::InvalidTransition {
                        rental: rental.clone(),
                        status: self.status,
                        action: "be delivered",
                    }),
                }
            }
            DeliveryCommand::CancelDelivery { rental } => {
                if !ctx.actor.is_system() {
                    return Err(DeliveryError::SystemOnly);
                }
                match (self.status, self.member.clone()) {
                    (S::Started, Some(member)) => Ok(vec![DeliveryEvent::DeliveryCanceled {
                        rental: rental.clone(),
                        member,
                    }]),
                    (S::Delivered, _) => Err(DeliveryError::AlreadyDelivered(rental.clone())),
                    _ => Ok(vec![]),
                }
            }
        }
    }

    fn apply(&mut self, event: &DeliveryEvent) {
        match event {
            DeliveryEvent::DeliveryStarted { member, .. } => {
                self.status = DeliveryStatus::Started;
                self.member = Some(member.clone());
            }
            DeliveryEvent::Delivered { .. } => self.status = DeliveryStatus::Delivered,
            DeliveryEvent::DeliveryCanceled { .. } => self.status = DeliveryStatus::Canceled,
        }
    }

    /// Delivered or canceled: every delivery command is then refused or changes nothing.
    fn is_final(&self) -> bool {
        matches!(
            self.status,
            DeliveryStatus::Delivered | DeliveryStatus::Canceled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn r() -> RentalId {
        RentalId::new("r1")
    }
    fn started() -> DeliveryEvent {
        DeliveryEvent::DeliveryStarted {
            rental: r(),
            member: MemberId::new("m1"),
            address: "Seoul".into(),
        }
    }

    #[test]
    fn a_delivery_is_final_once_delivered_or_canceled() {
        let fold = |events: &[DeliveryEvent]| {
            let mut d = Delivery::default();
            events.iter().for_each(|e| d.apply(e));
            d.is_final()
        };
        let delivered = DeliveryEvent::Delivered {
            rental: r(),
            member: MemberId::new("m1"),
        };
        let canceled = DeliveryEvent::DeliveryCanceled {
            rental: r(),
            member: MemberId::new("m1"),
        };
        assert!(!fold(&[]));
        assert!(!fold(&[started()]));
        assert!(fold(&[started(), delivered]));
        assert!(fold(&[started(), canceled]));
    }

    #[test]
    fn a_delivered_book_cannot_be_called_back() {
        given::<Delivery>([
            started(),
            DeliveryEvent::Delivered {
                rental: r(),
                member: MemberId::new("m1"),
            },
        ])
        .when(DeliveryCommand::CancelDelivery { rental: r() }, system())
        .then_err(DeliveryError::AlreadyDelivered(r()));
    }

    #[test]
    fn cancelling_a_delivery_that_never_started_changes_nothing() {
        given::<Delivery>([])
            .when(DeliveryCommand::CancelDelivery { rental: r() }, system())
            .then_events([]);
    }

    #[test]
    fn only_librarians_mark_deliveries() {
        given::<Delivery>([started()])
            .when(
                DeliveryCommand::MarkDelivered {
                    rental: r(),
                    rental_canceled: false,
                },
                member("m1"),
            )
            .then_err(DeliveryError::LibrarianOnly);
        given::<Delivery>([started()])
            .when(
                DeliveryCommand::MarkDelivered {
                    rental: r(),
                    rental_canceled: false,
                },
                librarian(),
            )
            .then_events([DeliveryEvent::Delivered {
                rental: r(),
                member: MemberId::new("m1"),
            }]);
    }

    #[test]
    fn a_cancelled_rental_is_not_delivered() {
        given::<Delivery>([started()])
            .when(
                DeliveryCommand::MarkDelivered {
                    rental: r(),
                    rental_canceled: true,
                },
                librarian(),
            )
            .then_code(ErrorCode::InvalidTransition);
    }
}
