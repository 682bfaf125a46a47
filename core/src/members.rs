//! The Member aggregate: someone who may borrow.
//!
//! Invariants: a member id joins once; the name is not empty. A librarian registers members,
//! or a person registers themselves (acting as the member id they join with).

use crate::aggregate::{Aggregate, Context};
use crate::codes::ErrorCode;
use crate::ids::{MemberId, StreamKind};

/// Commands on a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberCommand {
    /// Register a member. Their point account opens with the welcome points in the same step.
    JoinMember {
        /// The new member's id.
        member: MemberId,
        /// Their name.
        name: String,
        /// How to reach them (phone or e-mail), for notices.
        contact: Option<String>,
        /// Their group for the circulation rules (`adult`, `student`, `staff`); none matches
        /// only the rules' `*`. Only a librarian assigns one.
        group: Option<String>,
    },
}

crate::event::event_enum! {
    /// Events of a member.
    pub enum MemberEvent {
        /// A member was registered.
        MemberJoined {
            /// Member id.
            member: MemberId,
            /// Name.
            name: String,
            /// Contact for notices.
            #[serde(default)]
            contact: Option<String>,
            /// Group for the circulation rules, if one was assigned.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            group: Option<String>,
        },
    }
}

/// Why a member command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemberError {
    /// Someone other than a librarian or the person themselves tried to register a member.
    #[error("only a librarian, or the person themselves, may register member {0}")]
    Unauthorized(MemberId),
    /// The id is taken.
    #[error("member {0} has already joined")]
    AlreadyJoined(MemberId),
    /// The name is empty.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Someone other than a librarian tried to put a member in a group.
    #[error(
        "only a librarian may put member {0} in a group (groups decide the circulation rules)"
    )]
    GroupLibrarianOnly(MemberId),
}

impl MemberError {
    /// Stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            MemberError::Unauthorized(_) | MemberError::GroupLibrarianOnly(_) => {
                ErrorCode::Unauthorized
            }
            MemberError::AlreadyJoined(_) => ErrorCode::MemberExists,
            MemberError::InvalidInput(_) => ErrorCode::InvalidInput,
        }
    }
}

/// A member. State is the fold of its [`MemberEvent`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    /// Id, once joined.
    pub id: Option<MemberId>,
    /// Name.
    pub name: String,
    /// Contact.
    pub contact: Option<String>,
    /// Group for the circulation rules.
    pub group: Option<String>,
}

impl Aggregate for Member {
    type Command = MemberCommand;
    type Event = MemberEvent;
    type Error = MemberError;
    const KIND: StreamKind = StreamKind::Member;

    fn decide(
        &self,
        command: &MemberCommand,
        ctx: &Context,
    ) -> Result<Vec<MemberEvent>, MemberError> {
        match command {
            MemberCommand::JoinMember {
                member,
                name,
                contact,
                group,
            } => {
                if !(ctx.actor.is_librarian() || ctx.actor.is_member(member)) {
                    return Err(MemberError::Unauthorized(member.clone()));
                }
                if group.is_some() && !ctx.actor.is_librarian() {
                    return Err(MemberError::GroupLibrarianOnly(member.clone()));
                }
                if self.id.is_some() {
                    return Err(MemberError::AlreadyJoined(member.clone()));
                }
                if name.trim().is_empty() {
                    return Err(MemberError::InvalidInput("name must not be empty".into()));
                }
                Ok(vec![MemberEvent::MemberJoined {
                    member: member.clone(),
                    name: name.trim().to_owned(),
                    contact: contact.clone(),
                    group: group.clone(),
                }])
            }
        }
    }

    fn apply(&mut self, event: &MemberEvent) {
        match event {
            MemberEvent::MemberJoined {
                member,
                name,
                contact,
                group,
            } => {
                self.id = Some(member.clone());
                self.name = name.clone();
                self.contact = contact.clone();
                self.group = group.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn join(name: &str) -> MemberCommand {
        MemberCommand::JoinMember {
            member: MemberId::new("m1"),
            name: name.into(),
            contact: None,
            group: None,
        }
    }

    #[test]
    fn a_person_may_register_themselves_but_not_others() {
        given::<Member>([])
            .when(join("Kim"), member("m1"))
            .then_events([MemberEvent::MemberJoined {
                member: MemberId::new("m1"),
                name: "Kim".into(),
                contact: None,
                group: None,
            }]);
        given::<Member>([])
            .when(join("Kim"), member("m2"))
            .then_err(MemberError::Unauthorized(MemberId::new("m1")));
    }

    #[test]
    fn a_member_joins_once_with_a_name() {
        let joined = MemberEvent::MemberJoined {
            member: MemberId::new("m1"),
            name: "Kim".into(),
            contact: None,
            group: None,
        };
        given::<Member>([joined])
            .when(join("Kim"), librarian())
            .then_code(ErrorCode::MemberExists);
        given::<Member>([])
            .when(join("  "), librarian())
            .then_code(ErrorCode::InvalidInput);
    }
}
