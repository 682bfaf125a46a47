//! The library's surface as data: every command with its fields, every event type, every
//! error code, every consumer and every row the library answers with ([`crate::rows`]). The bindings' generated methods and type declarations are made
//! from this (`docs/schema.json`, checked against [`schema`] by a test), so a command or an event
//! added to the core reaches Python and JavaScript without a hand-written line.

use crate::command::Command;
use crate::error::ErrorCode;
use crate::event::Event;
use crate::policies::POLICIES;
use crate::rows::{RowSpec, ROWS};
use serde_json::{json, Value};

/// The schema as JSON (see the module docs). Keys and order are stable, so the text it prints
/// can be committed and compared.
pub fn schema() -> Value {
    let events: Vec<Value> = Event::types()
        .map(|(kind, name)| json!({ "type": name, "stream": kind.as_str() }))
        .collect();
    let errors: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|c| {
            json!({
                "code": c.as_str(),
                "family": c.family().as_str(),
                "retryable": c.is_retryable(),
            })
        })
        .collect();
    let mut consumers: Vec<&str> = POLICIES.iter().map(|p| p.name).collect();
    consumers.extend(["book_list", "member_page"]);
    json!({
        "schema_version": 1,
        "commands": Command::SPECS,
        "events": events,
        "errors": errors,
        "consumers": consumers,
        "rows": ROWS.iter().map(RowSpec::to_json).collect::<Vec<_>>(),
    })
}

/// [`schema`] as the pretty-printed text of `docs/schema.json` (with a final newline).
pub fn schema_text() -> String {
    // A `Value` always serializes.
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema.json");
        let want = super::schema_text();
        if std::env::var_os("LENDKIT_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/schema.json is not what the core describes; regenerate it with \
             `LENDKIT_BLESS=1 cargo test -p lendkit-core schema` and then `python3 scripts/generate.py`"
        );
    }
}
