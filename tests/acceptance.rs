//! The scenario runner: every `tests/scenarios/**/*.json` file is one test, run through the
//! public API exactly as `tests/scenarios/README.md` describes. No rule lives here: the runner
//! only loads a file, drives the library and compares. Files under `_pending/` show known
//! bugs in the core and are reported as ignored.

use lendkit::adapters::{InMemoryEventBus, InMemoryEventStore, ManualClock, RecordingNotifier};
use lendkit::event::Envelope;
use lendkit::{block_on, Actor, BreakerConfig, Command, CommandId, Library, LibraryBuilder};
use lendkit::{Outcome, Rules, Timestamp};
use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// 2026-01-01T00:00:00.000Z, where every scenario's clock starts.
const START: Timestamp = Timestamp(1_767_225_600_000);
const SEEDS: &str = "library water-purifier book-delivery ebook rental-payment rules";
const PENDING: &str = "_pending/";
const BOOK_FIELDS: &str =
    "book_id title copies available reserved on_loan status last_activity fee";
const PAGE_FIELDS: &str = "name points rentals";
const RENTAL_FIELDS: &str =
    "rental_id book_id status payment_status delivery_status fee due_date late_days";
const NOTICE_FIELDS: &str = "member_id rental_id kind message";
const MATCHER_FIELDS: &str = "type stream payload";

type Object = Map<String, Value>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    #[allow(dead_code)] // for readers; required so that every file says what it shows
    description: String,
    seed: String,
    #[serde(default)]
    options: Options,
    #[serde(default)]
    given: Vec<Object>,
    steps: Vec<Step>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Options {
    welcome_points: Option<u64>,
    loan_days: Option<u32>,
    max_renewals: Option<u32>,
    max_attempts: Option<u32>,
    #[serde(default)]
    breaker: Breaker,
    #[serde(default)]
    workers: BTreeMap<String, u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Breaker {
    failure_threshold: u32,
    cool_down_ms: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            failure_threshold: 3,
            cool_down_ms: 60_000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    when: Object,
    #[serde(default)]
    then: Expect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    error: Option<String>,
    events: Option<Vec<Value>>,
    new_events: Option<Vec<Value>>,
    new_events_include: Option<Vec<Value>>,
    book_list: Option<Vec<Object>>,
    member_page: Option<BTreeMap<String, Object>>,
    notices: Option<Vec<Object>>,
    payment_circuit: Option<String>,
    dead_letters: Option<usize>,
}

/// One scenario's library and the handles the runner keeps on it.
struct World {
    lib: Library,
    clock: ManualClock,
    notices: Arc<RecordingNotifier>,
    payment_down: Arc<AtomicBool>,
}

fn text<E: Display>(e: E) -> String {
    e.to_string()
}

fn build(o: &Options) -> Result<World, String> {
    let clock = ManualClock::new(START);
    let notices = Arc::new(RecordingNotifier::new());
    let payment_down = Arc::new(AtomicBool::new(false));
    let (down, d) = (Arc::clone(&payment_down), Rules::default());
    let rules = Rules {
        welcome_points: o.welcome_points.unwrap_or(d.welcome_points),
        loan_days: o.loan_days.unwrap_or(d.loan_days),
        max_renewals: o.max_renewals.unwrap_or(d.max_renewals),
    };
    let breaker = BreakerConfig {
        failure_threshold: o.breaker.failure_threshold,
        cool_down: Duration::from_millis(o.breaker.cool_down_ms),
        call_timeout: None,
    };
    let (store, bus) = (InMemoryEventStore::new(), InMemoryEventBus::new());
    let mut builder = LibraryBuilder::new(Arc::new(store), Arc::new(bus), Arc::new(clock.clone()))
        .notifier(notices.clone())
        .wrap_payment(move |inner| Arc::new(lendkit::PaymentSwitch::new(inner, down)))
        .rules(rules)
        .breaker(breaker);
    for (consumer, n) in &o.workers {
        builder = builder.workers(consumer, *n);
    }
    if let Some(n) = o.max_attempts {
        builder = builder.max_attempts(n);
    }
    let lib =
        block_on(builder.build()).map_err(|e| format!("the library could not be built: {e}"))?;
    Ok(World {
        lib,
        clock,
        notices,
        payment_down,
    })
}

/// Runs one action: `Ok` with the library's answer, `Err` when the action itself is malformed.
fn act(w: &World, action: &Object) -> Result<lendkit::Result<Option<Outcome>>, String> {
    let string = |k: &str| {
        action[k]
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("{k} takes a string"))
    };
    let number = |k: &str| {
        action[k]
            .as_u64()
            .ok_or(format!("{k} takes a whole number"))
    };
    if action.contains_key("command") {
        let mut fields = action.clone();
        let actor = Actor::parse(&string("as")?)?;
        fields.remove("as");
        let id = fields
            .remove("command_id")
            .map(|_| string("command_id"))
            .transpose()?;
        let command: Command = serde_json::from_value(Value::Object(fields))
            .map_err(|e| format!("not a command: {e}"))?;
        return Ok(block_on(w.lib.execute_with_id(command, &actor, id.map(CommandId))).map(Some));
    }
    let mut keys: Vec<&str> = action.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let done = Ok(None);
    Ok(match keys.as_slice() {
        ["settle"] if action["settle"] == json!(true) => block_on(w.lib.settle()).and(done),
        ["pause"] => w.lib.pause(&string("pause")?).and(done),
        ["resume"] => w.lib.resume(&string("resume")?).and(done),
        ["payment"] => {
            let down = match string("payment")?.as_str() {
                "down" => true,
                "up" => false,
                other => return Err(format!("payment is \"up\" or \"down\", not {other:?}")),
            };
            w.payment_down.store(down, Ordering::SeqCst);
            done
        }
        ["advance_days"] => {
            w.clock
                .advance_days(u32::try_from(number("advance_days")?).map_err(text)?);
            done
        }
        ["advance_ms"] => {
            w.clock
                .advance(Duration::from_millis(number("advance_ms")?));
            done
        }
        ["event", "redeliver"] => {
            let ty = string("event")?;
            let all = block_on(w.lib.events(1, usize::MAX)).map_err(text)?;
            let found = all.iter().find(|e| e.type_name() == ty);
            let position = found
                .ok_or(format!("no stored {ty} to redeliver"))?
                .position;
            block_on(w.lib.redeliver(&string("redeliver")?, position)).and(done)
        }
        ["position", "redeliver"] => {
            block_on(w.lib.redeliver(&string("redeliver")?, number("position")?)).and(done)
        }
        _ => return Err("not an action (see tests/scenarios/README.md)".into()),
    })
}

/// Events as shown in failure messages.
fn show(events: &[Envelope]) -> String {
    let shown = events.iter().map(|e| {
        let j = e.to_json();
        json!({ "type": j["type"], "stream": j["stream"], "payload": j["payload"] })
    });
    Value::Array(shown.collect()).to_string()
}

/// True when every key of `expected` is in `actual` with an equal value, recursively.
fn subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|x| subset(v, x))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(v, x)| subset(v, x))
        }
        _ => expected == actual,
    }
}

/// Checks that a file names only fields the format knows.
fn known(what: &str, expected: &Object, allowed: &str) -> Result<(), String> {
    let unknown = expected
        .keys()
        .find(|k| !allowed.split(' ').any(|a| a == *k));
    unknown.map_or(Ok(()), |k| {
        Err(format!("{what}: no field {k:?} (fields: {allowed})"))
    })
}

/// Checks that a matcher is a type name or an object with known fields.
fn matchers(ms: &[Value]) -> Result<&[Value], String> {
    for m in ms {
        match m {
            Value::String(_) => {}
            Value::Object(o) => known("event matcher", o, MATCHER_FIELDS)?,
            other => return Err(format!("a matcher is a type or an object, not {other}")),
        }
    }
    Ok(ms)
}

fn matches(m: &Value, e: &Envelope) -> bool {
    let j = e.to_json();
    match m {
        Value::Object(m) => m.iter().all(|(k, v)| subset(v, &j[k])),
        ty => j["type"] == *ty,
    }
}

/// Exactly these events, in order.
fn all_match(ms: &[Value], events: &[Envelope]) -> Result<bool, String> {
    let ms = matchers(ms)?;
    Ok(ms.len() == events.len() && ms.iter().zip(events).all(|(m, e)| matches(m, e)))
}

/// These events among `events`, in this relative order.
fn in_order(ms: &[Value], events: &[Envelope]) -> Result<bool, String> {
    let mut rest = events.iter();
    Ok(matchers(ms)?.iter().all(|m| rest.any(|e| matches(m, e))))
}

/// Compares the fields given in `expected` with the serialized `actual`.
fn fields(what: &str, expected: &Object, actual: &Value, allowed: &str) -> Result<(), String> {
    known(what, expected, allowed)?;
    for (k, v) in expected {
        if k != "rentals" {
            let found = &actual[k];
            ensure(found == v, || {
                format!("{what}: {k} expected {v}, found {found} in {actual}")
            })?;
            continue;
        }
        let (Value::Array(want), Value::Array(got)) = (v, &actual[k]) else {
            return Err(format!("{what}: rentals must be a list"));
        };
        if want.len() != got.len() {
            let n = want.len();
            return Err(format!("{what}: expected {n} rentals, found {}", actual[k]));
        }
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            let w = w
                .as_object()
                .ok_or(format!("{what}: rentals[{i}] is not an object"))?;
            fields(&format!("{what} rentals[{i}]"), w, g, RENTAL_FIELDS)?;
        }
    }
    Ok(())
}

/// `Err(message())` unless `ok`.
fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(message())
    }
}

/// Runs one step and checks its expectations.
fn step(w: &World, action: &Object, then: &Expect) -> Result<(), String> {
    let head_before = block_on(w.lib.head()).map_err(text)?;
    let notices_before = w.notices.notices().len();
    let result = act(w, action)?;
    let grew = block_on(w.lib.head()).map_err(text)? != head_before;
    let new = block_on(w.lib.events(head_before + 1, usize::MAX)).map_err(text)?;
    let outcome = match (result, &then.error) {
        (Ok(outcome), None) => outcome,
        (Err(e), None) => return Err(format!("failed with {} ({e}), expected success", e.code())),
        (Ok(_), Some(code)) => return Err(format!("succeeded, expected error {code}")),
        (Err(e), Some(code)) if e.code().as_str() != code => {
            return Err(format!("failed with {} ({e}), expected {code}", e.code()))
        }
        (Err(_), Some(_)) if grew => {
            return Err(format!("failed, but the log grew: {}", show(&new)))
        }
        (Err(_), Some(_)) => None,
    };
    if let Some(want) = &then.events {
        let got = outcome
            .ok_or("\"events\" needs a command that succeeds")?
            .events;
        let ok = all_match(want, &got)?;
        ensure(ok, || {
            format!("events: expected {}, returned {}", json!(want), show(&got))
        })?;
    }
    if let Some(want) = &then.new_events {
        let ok = all_match(want, &new)?;
        ensure(ok, || {
            format!("new_events: expected {}, found {}", json!(want), show(&new))
        })?;
    }
    if let Some(want) = &then.new_events_include {
        let ok = in_order(want, &new)?;
        ensure(ok, || {
            format!("new_events_include: no {} in {}", json!(want), show(&new))
        })?;
    }
    if let Some(rows) = &then.book_list {
        let list = serde_json::to_value(w.lib.book_list()).map_err(text)?;
        for want in rows {
            let id = want.get("book_id").ok_or("a book_list row needs book_id")?;
            let mut rows = list.as_array().into_iter().flatten();
            let row = rows
                .find(|r| r["book_id"] == *id)
                .ok_or(format!("no book {id} in {list}"))?;
            fields(&format!("book_list {id}"), want, row, BOOK_FIELDS)?;
        }
    }
    for (member, want) in then.member_page.iter().flatten() {
        let page = w
            .lib
            .member_page(member)
            .map_err(|e| format!("{member}: {e}"))?;
        let page = serde_json::to_value(page).map_err(text)?;
        fields(&format!("member_page {member}"), want, &page, PAGE_FIELDS)?;
    }
    if let Some(want) = &then.notices {
        want.iter()
            .try_for_each(|n| known("notice", n, NOTICE_FIELDS))?;
        let sent = serde_json::to_value(&w.notices.notices()[notices_before..]).map_err(text)?;
        let sent = sent.as_array().cloned().unwrap_or_default();
        let same = want.len() == sent.len()
            && (want.iter().zip(&sent)).all(|(n, s)| fields("notice", n, s, NOTICE_FIELDS).is_ok());
        let sent: Vec<Value> = sent
            .iter()
            .map(|n| json!([n["rental_id"], n["kind"]]))
            .collect();
        ensure(same, || {
            format!("notices: expected {}, sent {sent:?}", json!(want))
        })?;
    }
    if let Some(want) = &then.payment_circuit {
        let state = w.lib.payment_circuit().as_str();
        ensure(state == want, || {
            format!("payment_circuit: expected {want}, found {state}")
        })?;
    }
    if let Some(want) = then.dead_letters {
        let letters = block_on(w.lib.dead_letters()).map_err(text)?;
        let found: Vec<_> = letters
            .iter()
            .map(|l| format!("{}: {}", l.id, l.error))
            .collect();
        ensure(found.len() == want, || {
            format!("dead_letters: expected {want}, found {found:?}")
        })?;
    }
    Ok(())
}

fn run(name: &str, path: &Path) -> Result<(), String> {
    let file = std::fs::read_to_string(path).map_err(text)?;
    let s: Scenario = serde_json::from_str(&file).map_err(|e| format!("not a scenario: {e}"))?;
    let folder = name.trim_start_matches(PENDING).split('/').next();
    let ok = SEEDS.split(' ').any(|seed| seed == s.seed) && folder == Some(s.seed.as_str());
    ensure(ok, || {
        format!(
            "seed {:?} must be one of {SEEDS} and name the folder",
            s.seed
        )
    })?;
    let w = build(&s.options)?;
    for (i, action) in s.given.iter().enumerate() {
        let when = Value::Object(action.clone());
        if let Err(e) = act(&w, action).and_then(|r| r.map_err(|e| format!("{}: {e}", e.code()))) {
            return Err(format!("given[{i}] {when}: {e}"));
        }
    }
    for (i, st) in s.steps.iter().enumerate() {
        let when = Value::Object(st.when.clone());
        step(&w, &st.when, &st.then).map_err(|e| format!("steps[{i}] (when {when}): {e}"))?;
    }
    Ok(())
}

fn scenario_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    for path in entries.map(|e| e.path()) {
        if path.is_dir() {
            scenario_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files = Vec::new();
    scenario_files(&root, &mut files);
    let mut named: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap_or(&p).components();
            let parts: Vec<_> = rel
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            (parts.join("/"), p)
        })
        .collect();
    named.sort();
    if named.is_empty() {
        eprintln!("no scenario files (*.json) under {}", root.display());
        std::process::exit(1);
    }
    let trials = named.into_iter().map(|(name, path)| {
        let pending = name.starts_with(PENDING);
        let test = name.clone();
        Trial::test(name, move || {
            run(&test, &path).map_err(|e| Failed::from(format!("{test}: {e}")))
        })
        .with_ignored_flag(pending)
    });
    libtest_mimic::run(&args, trials.collect()).exit();
}
