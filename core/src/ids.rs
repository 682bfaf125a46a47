//! Identifiers, amounts, time and actors: the small value types every other module speaks in.
//!
//! Ids are plain strings chosen by the host (an ISBN, a member number, a rental
//! number); [`validate_id`] is the single rule for what an acceptable id looks like.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The longest id lendkit accepts, in bytes.
pub const MAX_ID_LEN: usize = 200;
/// The longest free text (title, name, address, reason) lendkit accepts, in bytes.
pub const MAX_TEXT_LEN: usize = 2_000;

/// The largest amount (fee, points, balance) lendkit holds: 2^53 − 1, the largest whole number
/// that Rust, Python and JavaScript all represent exactly. Every amount lies in `1..=MAX_AMOUNT`
/// and arithmetic on amounts is checked against it, never saturated.
pub const MAX_AMOUNT: u64 = (1 << 53) - 1;

/// Checks an amount: a whole number in `1..=`[`MAX_AMOUNT`]. Returns a reason fit for an
/// `INVALID_INPUT` message.
pub fn validate_amount(field: &str, value: u64) -> Result<(), String> {
    if value == 0 {
        Err(format!("{field} must be at least 1"))
    } else if value > MAX_AMOUNT {
        Err(format!(
            "{field} is {value}; the largest amount lendkit holds is {MAX_AMOUNT} (2^53 - 1)"
        ))
    } else {
        Ok(())
    }
}

/// The prefix of lendkit's own command ids (policies, the points gateway). A caller's command
/// id may not start with it, so no caller can pre-empt or replay an internal command.
pub const SYSTEM_COMMAND_PREFIX: &str = "system:";

/// Unicode format characters (general category Cf, Unicode 15.1): invisible characters such as
/// zero-width spaces and joiners, bidirectional controls and the byte order mark. An id holding
/// one looks like another id that does not, so ids refuse them.
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// True for a Unicode format character (category Cf).
pub fn is_format_char(c: char) -> bool {
    FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Checks an id: non-empty, at most [`MAX_ID_LEN`] bytes, no whitespace at either end, no
/// control or format (invisible) characters, and no U+FFFD — the replacement character a
/// malformed string (a lone UTF-16 surrogate from JavaScript) turns into, so two different
/// malformed ids never become one. Returns a reason fit for an `INVALID_INPUT` message.
pub fn validate_id(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!(
            "{field} is {} bytes long; the limit is {MAX_ID_LEN}",
            value.len()
        ));
    }
    // Printable ASCII without a space at either end passes every rule below (ASCII's only
    // other whitespace and its control characters lie outside 0x20..=0x7E, and every format
    // character and U+FFFD outside ASCII): nearly every id, checked in one pass over its bytes.
    let bytes = value.as_bytes();
    if bytes.iter().all(|b| (0x20..0x7f).contains(b))
        && bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
    {
        return Ok(());
    }
    if value.trim() != value {
        return Err(format!(
            "{field} {value:?} has leading or trailing whitespace"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{field} {value:?} contains a control character"));
    }
    if let Some(c) = value.chars().find(|&c| is_format_char(c)) {
        return Err(format!(
            "{field} {value:?} contains the invisible format character U+{:04X}",
            u32::from(c)
        ));
    }
    if value.contains('\u{FFFD}') {
        return Err(format!(
            "{field} {value:?} contains U+FFFD, the replacement character (a malformed string, \
             such as a lone UTF-16 surrogate, becomes it)"
        ));
    }
    Ok(())
}

/// Checks a caller's command id: a valid id that does not start with
/// [`SYSTEM_COMMAND_PREFIX`] (reserved for lendkit's own commands).
pub fn validate_command_id(value: &str) -> Result<(), String> {
    validate_id("command_id", value)?;
    if value.starts_with(SYSTEM_COMMAND_PREFIX) {
        return Err(format!(
            "command_id {value:?} starts with {SYSTEM_COMMAND_PREFIX:?}, which is reserved for lendkit's own commands"
        ));
    }
    Ok(())
}

/// The longest document (a rules file) lendkit accepts, in bytes.
pub const MAX_DOCUMENT_LEN: usize = 1 << 20;

/// Checks a document: not empty, at most [`MAX_DOCUMENT_LEN`] bytes, no NUL.
pub fn validate_document(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.len() > MAX_DOCUMENT_LEN {
        return Err(format!(
            "{field} is {} bytes long; the limit is {MAX_DOCUMENT_LEN}",
            value.len()
        ));
    }
    if value.contains('\0') {
        return Err(format!("{field} contains a NUL character"));
    }
    Ok(())
}

/// Checks free text: non-empty after trimming (when `required`), at most [`MAX_TEXT_LEN`] bytes, no NUL.
pub fn validate_text(field: &str, value: &str, required: bool) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.len() > MAX_TEXT_LEN {
        return Err(format!(
            "{field} is {} bytes long; the limit is {MAX_TEXT_LEN}",
            value.len()
        ));
    }
    if value.contains('\0') {
        return Err(format!("{field} contains a NUL character"));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Its text is shared, not copied: cloning an id — the library does, into the events,
        /// aggregates and view rows that name it — counts a reference.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Arc<str>);

        impl $name {
            /// Wraps a string without checking it; commands are checked by the library before they run.
            pub fn new(id: impl AsRef<str>) -> Self {
                Self(Arc::from(id.as_ref()))
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(Arc::from(s))
            }
        }
        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(Arc::from(s))
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(SharedText).map(Self)
            }
        }
    };
}

/// Reads a string into an `Arc<str>` with one allocation, whether the deserializer lends it
/// or hands it over.
struct SharedText;

impl serde::de::Visitor<'_> for SharedText {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Arc<str>, E> {
        Ok(Arc::from(text))
    }
}

string_id!(
    /// A book title's id, usually its ISBN. Several copies share one book id.
    BookId
);
string_id!(
    /// A member's id; the member's point account has the same id.
    MemberId
);
string_id!(
    /// A rental's id: the correlation key of everything that happens to one reservation, from payment to return.
    RentalId
);
string_id!(
    /// The id of a command, given by the caller or generated. Re-sending a command with an id the
    /// target stream has already applied returns the original events instead of acting twice.
    CommandId
);

impl CommandId {
    /// A fresh random command id.
    pub fn generate() -> Self {
        // Written into a buffer, not through `Display`: the same 32 lowercase hex digits.
        let mut buffer = uuid::Uuid::encode_buffer();
        Self::from(&*uuid::Uuid::new_v4().simple().encode_lower(&mut buffer))
    }
}

impl CommandId {
    /// A command id of lendkit's own (a policy's reaction, the points gateway): `system:` and `what`.
    pub fn system(what: impl fmt::Display) -> Self {
        Self::from(format!("{SYSTEM_COMMAND_PREFIX}{what}"))
    }

    /// [`system`](CommandId::system) of `parts` joined by `:`, written straight into one string
    /// of the right size: the ids lendkit makes for every reaction and charge, where the
    /// formatting machinery cost several times the copying.
    pub fn system_of(parts: &[&str]) -> Self {
        let len = SYSTEM_COMMAND_PREFIX.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut id = String::with_capacity(len);
        id.push_str(SYSTEM_COMMAND_PREFIX);
        for (n, part) in parts.iter().enumerate() {
            if n > 0 {
                id.push(':');
            }
            id.push_str(part);
        }
        Self::from(id)
    }
}

/// `n` in decimal, without the formatting machinery for the small numbers it is mostly given.
pub(crate) fn decimal(n: usize) -> std::borrow::Cow<'static, str> {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match DIGITS.get(n) {
        Some(digit) => std::borrow::Cow::Borrowed(digit),
        None => std::borrow::Cow::Owned(n.to_string()),
    }
}

/// A stable 128-bit digest of `parts` (FNV-1a, 128 bits, each part prefixed by its length), as
/// 32 hex digits. The same input gives the same digest in every version and on every machine;
/// it tells commands apart and derives ids, and guards against no adversary (an id's owner is
/// the only one who can reuse it).
pub(crate) fn digest(parts: &[&str]) -> String {
    parts
        .iter()
        .fold(Digest::new(), |d, p| d.part(&[p.as_bytes()]))
        .finish()
}

/// A [`digest`] built part by part, a part possibly given in pieces (hashed as their
/// concatenation), so that a caller need not join them into one string first.
pub(crate) struct Digest(u128);

impl Digest {
    pub(crate) fn new() -> Self {
        Digest(FNV128_OFFSET)
    }

    /// Adds the part made of `pieces`, prefixed by its length as [`digest`] does.
    pub(crate) fn part(self, pieces: &[&[u8]]) -> Self {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        let hash = fnv1a_128_on(self.0, &(len as u64).to_be_bytes());
        Digest(pieces.iter().fold(hash, |h, p| fnv1a_128_on(h, p)))
    }

    /// The 32 hex digits.
    pub(crate) fn finish(self) -> String {
        hex32(self.0)
    }
}

const FNV128_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;

/// FNV-1a with 128 bits over the bytes of `chunks`, in order.
#[cfg(test)]
fn fnv1a_128(chunks: &[&[u8]]) -> u128 {
    chunks
        .iter()
        .fold(FNV128_OFFSET, |hash, c| fnv1a_128_on(hash, c))
}

/// FNV-1a with 128 bits, continued from `hash` over `bytes`.
fn fnv1a_128_on(mut hash: u128, bytes: &[u8]) -> u128 {
    for &b in bytes {
        hash ^= u128::from(b);
        // × the FNV prime, 2^88 + 0x13b, as a small multiply and a shift (the same product
        // modulo 2^128, without a full 128-bit multiplication per byte).
        hash = hash.wrapping_mul(0x13b).wrapping_add(hash << 88);
    }
    hash
}

/// `value` as 32 lowercase hex digits, as `format!("{value:032x}")` writes it: the form of
/// generated command ids and of fingerprints. [`parse_hex32`] reads it back.
pub fn hex32(value: u128) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 32];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = HEX[((value >> (124 - 4 * i)) & 0xf) as usize];
    }
    // Hex digits are ASCII, so this is always text.
    std::str::from_utf8(&digits)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// The 128 bits written as exactly 32 lowercase hex digits — a generated command id, a
/// fingerprint — so that a store may keep them as 16 bytes: [`hex32`] of the result gives
/// `text` back. Anything else (upper case, another length, other characters) is `None`.
pub fn parse_hex32(text: &str) -> Option<u128> {
    if text.len() != 32 {
        return None;
    }
    let mut value = 0u128;
    for b in text.bytes() {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = value << 4 | u128::from(digit);
    }
    Some(value)
}

impl RentalId {
    /// The rental id a `reserve_book` without an explicit rental id gets: `r-` and 16 hex digits
    /// derived from its command id, so a retry under the same command id (even 16 at once)
    /// names the same rental, is charged under the same key, and stores one rental.
    pub fn for_command(command: &CommandId) -> Self {
        let d = digest(&["rental", command.as_str()]);
        Self::from(format!("r-{}", &d[..16]))
    }
}

/// An amount of points. Points are whole numbers: fees, balances and refunds never use floating point.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Points(pub u64);

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} points", self.0)
    }
}

/// Milliseconds since the Unix epoch, UTC. The only notion of time in the core; it comes from the [`Clock`](crate::ports::Clock) port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

impl Timestamp {
    /// This instant plus `days` whole days.
    pub fn plus_days(self, days: u32) -> Self {
        Timestamp(
            self.0
                .saturating_add(i64::from(days).saturating_mul(DAY_MS)),
        )
    }

    /// This instant plus `ms` milliseconds.
    pub fn plus_ms(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Whole days (rounded up) from `self` until `later`; zero when `later` is not after `self`.
    pub fn days_until(self, later: Timestamp) -> u32 {
        let ms = later.0.saturating_sub(self.0);
        if ms <= 0 {
            0
        } else {
            u32::try_from((ms + DAY_MS - 1) / DAY_MS).unwrap_or(u32::MAX)
        }
    }

    /// Reads an RFC 3339 instant (`2026-03-16T17:30:00Z`, `2026-03-16T18:30:00+01:00`).
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
        text.parse::<jiff::Timestamp>()
            .map(|t| Timestamp(t.as_millisecond()))
            .map_err(|_| {
                format!("{text:?} is not an RFC 3339 instant such as 2026-03-16T17:30:00Z")
            })
    }

    /// The calendar date (UTC) as `YYYY-MM-DD`.
    pub fn date(self) -> String {
        let days = self.0.div_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// The instant as RFC 3339 text in UTC with milliseconds, e.g. `2026-11-26T10:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        let ms_of_day = self.0.rem_euclid(DAY_MS);
        let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
        let (mi, rest) = (rest / 60_000, rest % 60_000);
        let (s, ms) = (rest / 1000, rest % 1000);
        format!("{}T{h:02}:{mi:02}:{s:02}.{ms:03}Z", self.date())
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, UTC).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Who issues a command. Rules in the aggregates decide what each actor may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// Library staff: registers books, adds copies, registers members, tops up points, marks deliveries, and may act on any rental.
    Librarian(String),
    /// A member: reserves for themselves and acts on their own rentals only.
    Member(MemberId),
    /// lendkit itself, acting for a policy (allocating copies, refunding, confirming).
    System,
}

impl Actor {
    /// A librarian with this staff id.
    pub fn librarian(id: impl Into<String>) -> Self {
        Actor::Librarian(id.into())
    }
    /// A member with this member id.
    pub fn member(id: impl Into<String>) -> Self {
        Actor::Member(MemberId::from(id.into()))
    }
    /// True for a librarian.
    pub fn is_librarian(&self) -> bool {
        matches!(self, Actor::Librarian(_))
    }
    /// True for lendkit's own policies.
    pub fn is_system(&self) -> bool {
        matches!(self, Actor::System)
    }
    /// True when this actor is the given member.
    pub fn is_member(&self, member: &MemberId) -> bool {
        matches!(self, Actor::Member(m) if m == member)
    }
    /// Checks a librarian's staff id by the rule [`parse`](Actor::parse) applies.
    pub fn check_librarian_id(id: &str) -> Result<(), String> {
        validate_id("librarian id", id)
    }

    /// Checks a member id by the rule [`parse`](Actor::parse) applies.
    pub fn check_member_id(id: &str) -> Result<(), String> {
        validate_id("member id", id)
    }

    /// Parses `librarian:ID`, `member:ID` or `system`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("librarian", id)) => Actor::check_librarian_id(id).map(|()| Actor::librarian(id)),
            Some(("member", id)) => Actor::check_member_id(id).map(|()| Actor::member(id)),
            None if text == "system" => Ok(Actor::System),
            _ => Err(format!(
                "actor {text:?} is not of the form librarian:ID or member:ID"
            )),
        }
    }
}

impl Actor {
    /// The actor's text (`member:ID`, as [`Display`](fmt::Display) writes it) in two pieces,
    /// without building it.
    pub(crate) fn text_pieces(&self) -> [&str; 2] {
        match self {
            Actor::Librarian(id) => ["librarian:", id],
            Actor::Member(id) => ["member:", id.as_str()],
            Actor::System => ["system", ""],
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Librarian(id) => write!(f, "librarian:{id}"),
            Actor::Member(id) => write!(f, "member:{id}"),
            Actor::System => f.write_str("system"),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Actor::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The kinds of event streams: one per aggregate type. Renaming a kind orphans stored streams, so these names are API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// A [`Book`](crate::catalog::Book) and its copies.
    Book,
    /// A [`Member`](crate::members::Member).
    Member,
    /// A member's [`PointAccount`](crate::points::PointAccount).
    Account,
    /// A [`Rental`](crate::rentals::Rental).
    Rental,
    /// A rental's [`Delivery`](crate::deliveries::Delivery).
    Delivery,
    /// The library's [`CirculationRules`](crate::circulation::CirculationRules) (one stream, `rules:library`).
    Rules,
}

impl StreamKind {
    /// Every kind, in a fixed order.
    pub const ALL: [StreamKind; 6] = [
        StreamKind::Book,
        StreamKind::Member,
        StreamKind::Account,
        StreamKind::Rental,
        StreamKind::Delivery,
        StreamKind::Rules,
    ];
    /// The kind's stable name, used in stream ids (`rental:r-1`).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Book => "book",
            StreamKind::Member => "member",
            StreamKind::Account => "account",
            StreamKind::Rental => "rental",
            StreamKind::Delivery => "delivery",
            StreamKind::Rules => "rules",
        }
    }
}

/// One aggregate instance's stream: its kind and id, written `kind:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The aggregate type.
    pub kind: StreamKind,
    /// The aggregate's id within its kind.
    pub id: String,
}

impl StreamId {
    /// The stream of aggregate `id` of `kind`.
    pub fn new(kind: StreamKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }
    /// Parses `kind:id`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, id) = text
            .split_once(':')
            .ok_or_else(|| format!("stream {text:?} is not of the form kind:id"))?;
        let kind = StreamKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| format!("stream {text:?} has an unknown kind {kind:?}"))?;
        Ok(StreamId::new(kind, id))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        StreamId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A hash map keyed by ids (streams, rentals, members, command ids): foldhash instead of the
/// standard library's SipHash, which took about 6 % of a lifecycle. Each map gets its own
/// random seed, so ids chosen to collide cannot be prepared in advance.
pub type IdMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A hash set of ids; see [`IdMap`].
pub type IdSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_shortcut_of_validate_id_agrees_with_its_rules() {
        // validate_id passes printable ASCII in one pass; every rule spelled out must agree.
        let by_rules = |v: &str| {
            !v.is_empty()
                && v.len() <= MAX_ID_LEN
                && v.trim() == v
                && !v.chars().any(char::is_control)
                && !v.chars().any(is_format_char)
                && !v.contains('\u{FFFD}')
        };
        let chars = (0u32..0x100)
            .chain([0x2028, 0x200B, 0x3000, 0xFEFF, 0xFFFD, 0xE0001])
            .filter_map(char::from_u32);
        for c in chars {
            for v in [
                format!("{c}"),
                format!("a{c}"),
                format!("{c}a"),
                format!("a{c}b"),
            ] {
                assert_eq!(validate_id("id", &v).is_ok(), by_rules(&v), "{v:?}");
            }
        }
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(1_795_651_200_000).date(), "2026-11-26");
        assert_eq!(Timestamp(951_782_400_000).date(), "2000-02-29");
    }

    #[test]
    fn days_until_rounds_up_and_never_negative() {
        let t = Timestamp(0);
        assert_eq!(t.days_until(Timestamp(1)), 1);
        assert_eq!(t.days_until(Timestamp(DAY_MS)), 1);
        assert_eq!(t.days_until(Timestamp(DAY_MS + 1)), 2);
        assert_eq!(Timestamp(5).days_until(t), 0);
    }

    #[test]
    fn actors_round_trip_through_text() {
        for a in [
            Actor::librarian("lib-1"),
            Actor::member("m-1"),
            Actor::System,
        ] {
            assert_eq!(Actor::parse(&a.to_string()), Ok(a));
        }
        assert!(Actor::parse("member:").is_err());
        assert!(Actor::parse("boss:1").is_err());
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("book id", "isbn-1").is_ok());
        assert!(validate_id("book id", "").is_err());
        assert!(validate_id("book id", " x").is_err());
        assert!(validate_id("book id", "a\nb").is_err());
        assert!(validate_id("book id", &"x".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn ids_that_look_alike_are_refused() {
        for bad in [
            "m\u{200B}1",  // zero-width space
            "m\u{200D}1",  // zero-width joiner
            "m\u{202E}1",  // right-to-left override
            "\u{FEFF}m1",  // byte order mark
            "m\u{FFFD}",   // a lone surrogate from JavaScript, replaced
            "m\u{E0041}1", // a tag character
            "m1\u{00A0}",  // trailing no-break space
        ] {
            assert!(
                validate_id("member_id", bad).is_err(),
                "{bad:?} must be refused"
            );
        }
        assert!(validate_id("member_id", "김민지-1").is_ok());
        assert!(validate_id("member_id", "m 1").is_ok());
    }

    #[test]
    fn amounts_stay_exact_in_every_language() {
        assert!(validate_amount("fee", 1).is_ok());
        assert!(validate_amount("fee", MAX_AMOUNT).is_ok());
        assert!(validate_amount("fee", MAX_AMOUNT + 1).is_err());
        assert!(validate_amount("fee", u64::MAX).is_err());
        assert!(validate_amount("fee", 0).is_err());
    }

    #[test]
    fn a_generated_command_id_is_32_lowercase_hex_digits_and_new_each_time() {
        let ids: Vec<CommandId> = (0..50).map(|_| CommandId::generate()).collect();
        for id in &ids {
            let text = id.as_str();
            assert_eq!(text.len(), 32, "{text}");
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{text}"
            );
            // What the compact stored form keeps as 16 bytes.
            assert_eq!(parse_hex32(text).map(hex32).as_deref(), Some(text));
        }
        let distinct: std::collections::HashSet<&str> = ids.iter().map(CommandId::as_str).collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn caller_command_ids_cannot_take_lendkits_own_prefix() {
        assert!(validate_command_id("c-77").is_ok());
        assert!(validate_command_id("system:charge:r-1").is_err());
        assert_eq!(
            CommandId::system("charge:r-1").as_str(),
            "system:charge:r-1"
        );
        // Joined from parts: the same text as formatted.
        for parts in [
            &["charge", "m-1", "r-1"][..],
            &["catalog", "0", "rental:r-7#1"],
            &["one"],
            &[],
            &["", "a", ""],
        ] {
            assert_eq!(
                CommandId::system_of(parts),
                CommandId::system(parts.join(":")),
                "{parts:?}"
            );
        }
        for n in [0, 1, 9, 10, 11, 99, 12345, usize::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
    }

    #[test]
    fn digests_are_stable_across_versions() {
        // Stored in command records: these values must never change.
        assert_eq!(
            digest(&["rental", "c-77"]),
            "60727b055c1a695981df6381fdf0e00f"
        );
        assert_eq!(digest(&["rental", "c-78"]), digest(&["rental", "c-78"]));
        assert_ne!(
            digest(&["ab", "c"]),
            digest(&["a", "bc"]),
            "parts are length-prefixed"
        );
    }

    #[test]
    fn the_digest_is_fnv_1a_128() {
        // The published FNV-1a 128-bit test vectors for "" and "a".
        assert_eq!(
            format!("{:032x}", fnv1a_128(&[])),
            "6c62272e07bb014262b821756295c58d"
        );
        assert_eq!(
            format!("{:032x}", fnv1a_128(&[b"a"])),
            "d228cb696f1a8caf78912b704e4a8964"
        );
    }

    #[test]
    fn the_digest_shortcuts_agree_with_the_plain_definition() {
        // FNV-1a 128 as published: a full multiplication by the prime per byte, printed by
        // format!. The digest's shift-and-multiply and its hex writer must give the same.
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        let mut text = String::new();
        for n in 0..300u32 {
            text.push(char::from_u32(0x20 + (n * 7919) % 0x2f0).unwrap_or('x'));
            let plain = text.bytes().fold(FNV128_OFFSET, |h, b| {
                (h ^ u128::from(b)).wrapping_mul(PRIME)
            });
            assert_eq!(fnv1a_128_on(FNV128_OFFSET, text.as_bytes()), plain);
            assert_eq!(hex32(plain), format!("{plain:032x}"));
        }
        assert_eq!(hex32(0), "0".repeat(32));
        for text in [
            "0".repeat(32),
            "f".repeat(32),
            "0123456789abcdef0123456789abcdef".into(),
        ] {
            assert_eq!(parse_hex32(&text).map(hex32), Some(text.clone()));
        }
        for text in [
            "A".repeat(32),
            "0".repeat(31),
            "0".repeat(33),
            "g".repeat(32),
            String::new(),
            "é".repeat(16),
        ] {
            assert_eq!(parse_hex32(&text), None, "{text:?}");
        }
        assert_eq!(hex32(u128::MAX), "f".repeat(32));
    }

    #[test]
    fn derived_rental_ids_are_stable_and_distinct() {
        let a = RentalId::for_command(&CommandId::new("c-77"));
        assert_eq!(a, RentalId::for_command(&CommandId::new("c-77")));
        assert_ne!(a, RentalId::for_command(&CommandId::new("c-78")));
        assert_eq!(a.as_str().len(), 18);
        assert!(validate_id("rental_id", a.as_str()).is_ok());
    }
}
