//! The saga: policies that react to stored events with new commands.
//!
//! Each [`Policy`] is a consumer group of the event log with its own checkpoint, so one can be
//! paused, fail or lag without stopping the others — reservations keep working while the
//! catalogue side is down. Reactions are pure functions of an event; the library runs them
//! under a command id derived from the causing event's id, so delivering an event twice
//! changes nothing the second time.
//!
//! | policy | when | then |
//! |---|---|---|
//! | catalog | RentalReserved | AllocateCopy (a hold with no copy free joins the queue) |
//! | catalog | RentalCanceled, BookReturned, HoldPickupExpired | ReleaseCopy (the copy goes to the first hold still wanted) |
//! | catalog | HoldQueued | RecallLoan (the loan due latest, if the hold's request policy recalls) |
//! | rentals | CopyAllocated | ConfirmRental (a hold's copy waits on the pickup shelf) |
//! | rentals | CopyAllocationFailed | CancelRental (unavailable) |
//! | rentals | Delivered | StartLoan |
//! | payments | RentalCanceled | refund through the gateway, then RecordRefund |
//! | deliveries | RentalConfirmed with an address | StartDelivery |
//! | deliveries | RentalCanceled | CancelDelivery |
//! | notices | every rental, hold or delivery status change | Notifier.send |
//!
//! (Opening a member's point account is not a policy here: `join_member` stores MemberJoined
//! and AccountOpened in one atomic append, so a member can pay the moment they exist.)

use crate::catalog::{BookCommand, BookEvent};
use crate::deliveries::{DeliveryCommand, DeliveryEvent};
use crate::event::{Envelope, Event};
use crate::holds::QueuedHold;
use crate::ids::RentalId;
use crate::ports::{ChargeRef, Notice};
use crate::rentals::{RentalCommand, RentalEvent};

/// What a policy asks the library to do about an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Run a command on a book.
    Book(BookCommand),
    /// Run a command on a rental.
    Rental(RentalCommand),
    /// Run a command on a delivery.
    Delivery(DeliveryCommand),
    /// Refund a charge through the payment gateway, then record it on the rental.
    Refund(ChargeRef),
    /// Send a notice to a member.
    Notify(Notice),
    /// Confirm a hold whose copy waits on the pickup shelf, with the deadline the rules give.
    Shelve(RentalId),
    /// A hold joined a queue: recall the title's loan due latest, if the hold's request policy
    /// recalls (the library finds the loan and computes the new due date).
    Recall(RentalId),
}

/// One line of a policy: when an event of type `when` is stored, `then` happens.
#[derive(Debug)]
pub struct Rule {
    /// The event type reacted to.
    pub when: &'static str,
    /// What is done, in words (the command's name).
    pub then: &'static str,
    /// The reaction, a pure function of the event.
    pub react: fn(&Envelope) -> Vec<Reaction>,
}

/// A named consumer group of rules.
#[derive(Debug)]
pub struct Policy {
    /// The consumer's name, used to pause, resume and checkpoint it.
    pub name: &'static str,
    /// Why it exists.
    pub why: &'static str,
    /// Its rules.
    pub rules: &'static [Rule],
}

impl Policy {
    /// Every reaction of this policy to `event`, in rule order.
    pub fn react(&self, event: &Envelope) -> Vec<Reaction> {
        // Every event reaches every policy and most concern none of its rules: a plain loop
        // over the few rules answers those with no iterator chain and no allocation.
        let ty = event.type_name();
        let mut reactions = Vec::new();
        for rule in self.rules.iter().filter(|r| r.when == ty) {
            let mut more = (rule.react)(event);
            if reactions.is_empty() {
                reactions = more;
            } else {
                reactions.append(&mut more);
            }
        }
        reactions
    }

    /// Whether one of this policy's rules is about events of type `event_type`.
    pub fn reacts_to(&self, event_type: &str) -> bool {
        self.rules.iter().any(|r| r.when == event_type)
    }

    /// The policy named `name`.
    pub fn named(name: &str) -> Option<&'static Policy> {
        POLICIES.iter().find(|p| p.name == name)
    }
}

/// Every policy lendkit runs.
pub const POLICIES: &[Policy] = &[CATALOG, RENTALS, PAYMENTS, DELIVERIES, NOTICES];

/// The policies whose reactions are commands on the library's own books, rentals and
/// deliveries — no call to a host port. A library that is its store's only writer runs them
/// within the command that caused them, in the same sync (see `LibraryBuilder::immediate_reactions`);
/// refunds and notices always wait for [`settle`](crate::Library::settle).
pub const IMMEDIATE: &[&Policy] = &[&CATALOG, &RENTALS, &DELIVERIES];

/// The catalogue side: holds and frees copies.
pub const CATALOG: Policy = Policy {
    name: "catalog",
    why: "copies are allocated asynchronously, so reservations keep working while the catalogue side is down",
    rules: &[
        Rule { when: "RentalReserved", then: "AllocateCopy", react: allocate },
        Rule { when: "RentalCanceled", then: "ReleaseCopy", react: release },
        Rule { when: "BookReturned", then: "ReleaseCopy", react: release },
        Rule { when: "HoldPickupExpired", then: "ReleaseCopy", react: release },
        Rule { when: "HoldQueued", then: "RecallLoan", react: recall },
        Rule { when: "ItemAgedToLost", then: "MarkCopyLost", react: copy_lost },
    ],
};

/// The rental side: confirms, compensates and starts delivered loans.
pub const RENTALS: Policy = Policy {
    name: "rentals",
    why: "a rental follows its copy: confirmed when one is held, cancelled (and refunded) when none is free",
    rules: &[
        Rule { when: "CopyAllocated", then: "ConfirmRental", react: confirm },
        Rule { when: "CopyAllocationFailed", then: "CancelRental", react: cancel_unavailable },
        Rule { when: "Delivered", then: "StartLoan", react: start_delivered_loan },
    ],
};

/// The payment side: refunds cancelled rentals exactly once.
pub const PAYMENTS: Policy = Policy {
    name: "payments",
    why: "a cancelled rental's fee goes back to the member, exactly once",
    rules: &[Rule {
        when: "RentalCanceled",
        then: "RefundPayment",
        react: refund,
    }],
};

/// The delivery side.
pub const DELIVERIES: Policy = Policy {
    name: "deliveries",
    why: "confirmed rentals with an address are delivered; cancelled ones are called back",
    rules: &[
        Rule {
            when: "RentalConfirmed",
            then: "StartDelivery",
            react: start_delivery,
        },
        Rule {
            when: "RentalCanceled",
            then: "CancelDelivery",
            react: cancel_delivery,
        },
    ],
};

/// Notices to members.
pub const NOTICES: Policy = Policy {
    name: "notices",
    why: "the member hears of every change to their rental or delivery",
    rules: &[
        Rule {
            when: "LoanOverdue",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "AutoRenewalFailed",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "ItemAgedToLost",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "RentalReserved",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "RentalConfirmed",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "HoldQueued",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "HoldAwaitingPickup",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "HoldPickupExpired",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "LoanRecalled",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "LoanStarted",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "LoanRenewed",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "BookReturned",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "RentalCanceled",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "PaymentRefunded",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "DeliveryStarted",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "Delivered",
            then: "SendNotice",
            react: notify,
        },
        Rule {
            when: "DeliveryCanceled",
            then: "SendNotice",
            react: notify,
        },
    ],
};

fn allocate(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Rental(RentalEvent::RentalReserved {
            rental,
            book,
            member,
            hold,
            delivery_address,
            ..
        }) => {
            vec![Reaction::Book(BookCommand::AllocateCopy {
                book: book.clone(),
                rental: rental.clone(),
                member: Some(member.clone()),
                hold: hold.as_ref().map(|h| QueuedHold {
                    rental: rental.clone(),
                    member: member.clone(),
                    not_needed_after: h.not_needed_after,
                    pickup: delivery_address.is_none(),
                    copy: h.copy,
                }),
            })]
        }
        _ => vec![],
    }
}

fn release(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Rental(
            RentalEvent::RentalCanceled { rental, book, .. }
            | RentalEvent::BookReturned { rental, book, .. }
            | RentalEvent::HoldPickupExpired { rental, book, .. },
        ) => {
            vec![Reaction::Book(BookCommand::ReleaseCopy {
                book: book.clone(),
                rental: rental.clone(),
            })]
        }
        _ => vec![],
    }
}

fn copy_lost(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Rental(RentalEvent::ItemAgedToLost { rental, book, .. }) => {
            vec![Reaction::Book(BookCommand::MarkCopyLost {
                book: book.clone(),
                rental: rental.clone(),
            })]
        }
        _ => vec![],
    }
}

fn recall(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Book(BookEvent::HoldQueued { rental, .. }) => vec![Reaction::Recall(rental.clone())],
        _ => vec![],
    }
}

fn confirm(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Book(BookEvent::CopyAllocated {
            rental, hold_shelf, ..
        }) => {
            if *hold_shelf {
                // The pickup deadline comes from the rules and the branch's calendar.
                return vec![Reaction::Shelve(rental.clone())];
            }
            vec![Reaction::Rental(RentalCommand::ConfirmRental {
                rental: rental.clone(),
                pickup_until: None,
            })]
        }
        _ => vec![],
    }
}

fn cancel_unavailable(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Book(BookEvent::CopyAllocationFailed { rental, reason, .. }) => {
            vec![Reaction::Rental(RentalCommand::CancelRental {
                rental: rental.clone(),
                reason: reason.clone(),
                delivered: false,
                hold: false,
            })]
        }
        _ => vec![],
    }
}

fn start_delivered_loan(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Delivery(DeliveryEvent::Delivered { rental, .. }) => {
            vec![Reaction::Rental(RentalCommand::StartLoan {
                rental: rental.clone(),
                due: None,
                terms: None,
            })]
        }
        _ => vec![],
    }
}

fn refund(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Rental(RentalEvent::RentalCanceled {
            rental,
            member,
            fee,
            ..
        }) if fee.0 > 0 => {
            // (A hold charged on collecting paid nothing yet: nothing to refund.)
            vec![Reaction::Refund(ChargeRef {
                key: rental.clone(),
                member: member.clone(),
                amount: *fee,
            })]
        }
        _ => vec![],
    }
}

fn start_delivery(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Rental(RentalEvent::RentalConfirmed {
            rental,
            member,
            delivery_address: Some(address),
            ..
        }) => {
            vec![Reaction::Delivery(DeliveryCommand::StartDelivery {
                rental: rental.clone(),
                member: member.clone(),
                address: address.clone(),
            })]
        }
        _ => vec![],
    }
}

fn cancel_delivery(e: &Envelope) -> Vec<Reaction> {
    match &e.event {
        Event::Rental(RentalEvent::RentalCanceled { rental, .. }) => {
            vec![Reaction::Delivery(DeliveryCommand::CancelDelivery {
                rental: rental.clone(),
            })]
        }
        _ => vec![],
    }
}

fn notify(e: &Envelope) -> Vec<Reaction> {
    let (member, rental, message) = match &e.event {
        Event::Rental(r) => match r {
            RentalEvent::RentalReserved {
                rental,
                member,
                book,
                fee,
                ..
            } => (
                member,
                rental,
                format!("Your reservation of {book} is paid ({fee}); we will tell you when a copy is held for you."),
            ),
            RentalEvent::RentalConfirmed {
                rental,
                member,
                book,
                ..
            } => (member, rental, format!("A copy of {book} is held for you.")),
            RentalEvent::HoldAwaitingPickup {
                rental,
                member,
                book,
                branch,
                until,
            } => (
                member,
                rental,
                match branch {
                    Some(b) => format!("A copy of {book} waits for you at {b} until {}.", until.date()),
                    None => format!("A copy of {book} waits for you until {}.", until.date()),
                },
            ),
            RentalEvent::LoanRecalled {
                rental,
                member,
                book,
                due,
                ..
            } => (
                member,
                rental,
                format!("Another member is waiting for {book}: please bring it back by {}.", due.date()),
            ),
            RentalEvent::HoldPickupExpired {
                rental,
                member,
                book,
                until,
            } => (
                member,
                rental,
                format!("Your hold on {book} was not collected by {} and went to the next member.", until.date()),
            ),
            RentalEvent::LoanStarted {
                rental,
                member,
                book,
                due,
                ..
            } => (
                member,
                rental,
                format!("You have {book} until {}.", due.date()),
            ),
            RentalEvent::LoanRenewed {
                rental,
                member,
                due,
                ..
            } => (
                member,
                rental,
                format!("Your loan is renewed until {}.", due.date()),
            ),
            RentalEvent::BookReturned {
                rental,
                member,
                book,
                late_days,
                ..
            } => {
                let late = if *late_days == 0 {
                    String::from("on time")
                } else {
                    format!("{late_days} days late")
                };
                (
                    member,
                    rental,
                    format!("Thank you for returning {book} ({late})."),
                )
            }
            RentalEvent::RentalCanceled {
                rental,
                member,
                book,
                reason,
                ..
            } => (
                member,
                rental,
                format!("Your rental of {book} was cancelled ({reason})."),
            ),
            RentalEvent::PaymentRefunded {
                rental,
                member,
                amount,
            } => (member, rental, format!("{amount} were refunded.")),
            RentalEvent::LoanOverdue {
                rental,
                member,
                book,
                due,
            } => (
                member,
                rental,
                format!("{book} was due on {}; please bring it back.", due.date()),
            ),
            RentalEvent::AutoRenewalFailed {
                rental,
                member,
                due,
                code,
            } => (
                member,
                rental,
                format!(
                    "Your loan could not be renewed ({code}); it was due on {}.",
                    due.date()
                ),
            ),
            RentalEvent::ItemAgedToLost {
                rental,
                member,
                book,
                ..
            } => (
                member,
                rental,
                format!("{book} is so long overdue that it counts as lost and is billed; bring it back to get the bill refunded."),
            ),
        },
        Event::Book(BookEvent::HoldQueued {
            rental,
            member,
            book,
            position,
            ..
        }) => (
            member,
            rental,
            format!("No copy of {book} is free: you are number {position} in line."),
        ),
        Event::Delivery(d) => match d {
            DeliveryEvent::DeliveryStarted {
                rental,
                member,
                address,
            } => (
                member,
                rental,
                format!("Your book is on its way to {address}."),
            ),
            DeliveryEvent::Delivered { rental, member } => {
                (member, rental, String::from("Your book was delivered."))
            }
            DeliveryEvent::DeliveryCanceled { rental, member } => (
                member,
                rental,
                String::from("Your delivery was called off."),
            ),
        },
        _ => return vec![],
    };
    vec![Reaction::Notify(Notice {
        member_id: member.to_string(),
        rental_id: rental.to_string(),
        kind: e.type_name().to_owned(),
        message,
        event_id: e.event_id.clone(),
    })]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BookId, MemberId, Points, RentalId};
    use crate::testing::stored;

    #[test]
    fn every_rule_reacts_to_an_event_type_that_exists() {
        let types: Vec<&str> = Event::types().map(|(_, t)| t).collect();
        for policy in POLICIES {
            for rule in policy.rules {
                assert!(
                    types.contains(&rule.when),
                    "policy {} reacts to {:?}, which is no event type; event types are {types:?}",
                    policy.name,
                    rule.when
                );
            }
        }
    }

    fn reserved() -> Envelope {
        stored(
            1,
            RentalEvent::RentalReserved {
                hold: None,
                rental: RentalId::new("r1"),
                member: MemberId::new("m1"),
                book: BookId::new("b1"),
                fee: Points(30),
                payment_id: "p".into(),
                delivery_address: None,
            },
            "r1",
        )
    }

    #[test]
    fn a_reservation_asks_the_catalog_for_a_copy() {
        assert_eq!(
            CATALOG.react(&reserved()),
            vec![Reaction::Book(BookCommand::AllocateCopy {
                hold: None,
                member: Some(MemberId::new("m1")),
                book: BookId::new("b1"),
                rental: RentalId::new("r1")
            })]
        );
        assert!(RENTALS.react(&reserved()).is_empty());
    }

    #[test]
    fn a_cancellation_refunds_releases_and_recalls() {
        let canceled = stored(
            2,
            RentalEvent::RentalCanceled {
                rental: RentalId::new("r1"),
                member: MemberId::new("m1"),
                book: BookId::new("b1"),
                reason: "x".into(),
                fee: Points(30),
            },
            "r1",
        );
        assert_eq!(
            PAYMENTS.react(&canceled),
            vec![Reaction::Refund(ChargeRef {
                key: RentalId::new("r1"),
                member: MemberId::new("m1"),
                amount: Points(30)
            })]
        );
        assert_eq!(CATALOG.react(&canceled).len(), 1);
        assert_eq!(
            DELIVERIES.react(&canceled),
            vec![Reaction::Delivery(DeliveryCommand::CancelDelivery {
                rental: RentalId::new("r1")
            })]
        );
        assert!(
            matches!(NOTICES.react(&canceled).as_slice(), [Reaction::Notify(n)] if n.member_id == "m1" && n.kind == "RentalCanceled")
        );
    }

    #[test]
    fn no_copy_means_cancel() {
        let failed = stored(
            3,
            BookEvent::CopyAllocationFailed {
                book: BookId::new("b1"),
                rental: RentalId::new("r1"),
                reason: "unavailable".into(),
            },
            "r1",
        );
        assert_eq!(
            RENTALS.react(&failed),
            vec![Reaction::Rental(RentalCommand::CancelRental {
                hold: false,
                rental: RentalId::new("r1"),
                reason: "unavailable".into(),
                delivered: false
            })]
        );
    }
}
