//! The scenario runner: every `tests/scenarios/**/*.json` file is one test, run through the
//! public API exactly as `tests/scenarios/README.md` describes. No rule lives here: the runner
//! only loads a file, checks it against `tests/scenarios/scenario.schema.json`, drives the
//! library and compares. Files under `_pending/` show known bugs in the core and are reported
//! as ignored. Besides the files, it runs the cases of `tests/scenario-selftest.json` (which
//! every runner must judge alike), checks every file (pending ones too) against the schema and
//! the schema's commands against `Command::SPECS`.

use lendkit::adapters::{InMemoryEventBus, InMemoryEventStore, ManualClock, RecordingNotifier};
use lendkit::event::Envelope;
use lendkit::{block_on, Actor, BreakerConfig, Command, CommandId, Library, LibraryBuilder};
use lendkit::{Outcome, Rules, Timestamp};
use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// 2026-01-01T00:00:00.000Z, where every scenario's clock starts.
const START: Timestamp = Timestamp(1_767_225_600_000);
const PENDING: &str = "_pending/";
/// The format's one description, in `tests/scenarios/`; not a scenario itself.
const SCHEMA: &str = "scenario.schema.json";

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

/// How a step's `new_events`, `new_events_include` and `notices` are ordered.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Order {
    /// Only the order within each stream counts (the default).
    #[default]
    Stream,
    /// The exact order of the log counts.
    Global,
}

// The schema is checked first; `deny_unknown_fields` only catches a key the schema allows but
// this runner does not implement.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    error: Option<String>,
    #[serde(default)]
    order: Order,
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
/// Where a scenario's library keeps its log: every file runs on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Memory,
    Sled,
    Sqlite,
}

impl StoreKind {
    /// The store, in `dir` for the durable ones (flushed in the background: the scenarios test
    /// the rules on each store, not its durability, which the store suites and crash tests do).
    fn open(self, dir: &Path) -> Result<Arc<dyn lendkit::ports::EventStore>, String> {
        let periodic = lendkit::Durability::Periodic(50);
        Ok(match self {
            StoreKind::Memory => Arc::new(InMemoryEventStore::new()),
            StoreKind::Sled => Arc::new(
                lendkit::adapters::SledEventStore::open(dir.join("library.db"), periodic)
                    .map_err(|e| format!("sled: {e}"))?,
            ),
            StoreKind::Sqlite => Arc::new(
                lendkit::adapters::SqliteEventStore::open(dir.join("library.sqlite"), periodic)
                    .map_err(|e| format!("sqlite: {e}"))?,
            ),
        })
    }
}

struct World {
    lib: Library,
    /// The durable store's folder, removed with the world.
    _dir: Option<tempfile::TempDir>,
    clock: ManualClock,
    notices: Arc<RecordingNotifier>,
    payment_down: Arc<AtomicBool>,
}

fn text<E: Display>(e: E) -> String {
    e.to_string()
}

fn build(o: &Options, kind: StoreKind) -> Result<World, String> {
    let clock = ManualClock::new(START);
    let notices = Arc::new(RecordingNotifier::new());
    let payment_down = Arc::new(AtomicBool::new(false));
    let (down, d) = (Arc::clone(&payment_down), Rules::default());
    let rules = Rules {
        hold_shelf_days: d.hold_shelf_days,
        welcome_points: o.welcome_points.unwrap_or(d.welcome_points),
        loan_days: o.loan_days.unwrap_or(d.loan_days),
        max_renewals: o.max_renewals.unwrap_or(d.max_renewals),
    };
    let breaker = BreakerConfig {
        failure_threshold: o.breaker.failure_threshold,
        cool_down: Duration::from_millis(o.breaker.cool_down_ms),
        call_timeout: None,
    };
    let dir = match kind {
        StoreKind::Memory => None,
        _ => Some(tempfile::tempdir().map_err(text)?),
    };
    let store = kind.open(dir.as_ref().map_or(Path::new("."), |d| d.path()))?;
    let bus = InMemoryEventBus::new();
    let mut builder = LibraryBuilder::new(store, Arc::new(bus), Arc::new(clock.clone()))
        .notifier(notices.clone())
        .wrap_payment(move |inner| Arc::new(lendkit::PaymentSwitch::new(inner, down)))
        .rules(rules)
        .breaker(breaker)
        // On the files, as `lendkit::open` runs a library: its only writer.
        .sole_writer(kind != StoreKind::Memory);
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
        _dir: dir,
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
        return Ok(block_on(
            w.lib
                .execute_with_id(command, &actor, id.map(CommandId::from)),
        )
        .map(Some));
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
        ["advance_to"] => {
            let at = lendkit::Timestamp::parse_rfc3339(&string("advance_to")?)?;
            if at < lendkit::ports::Clock::now(&w.clock) {
                return Err("advance_to cannot move the clock back".into());
            }
            w.clock.set(at);
            block_on(w.lib.advance_to(at)).and(done)
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

/// The scenario format, `tests/scenarios/scenario.schema.json`. The runner checks every file
/// against it with a walker that knows only the keywords the schema's `$comment` lists; the
/// seeds are read from it too.
struct Schema(Value);

impl Schema {
    fn load(path: &Path) -> Result<Schema, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map(Schema)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// `node` with its `$ref`s (`#/$defs/...`) followed.
    fn resolve<'a>(&'a self, mut node: &'a Value) -> Result<&'a Value, String> {
        while let Some(r) = node.get("$ref").and_then(Value::as_str) {
            let target = r.strip_prefix('#').and_then(|p| self.0.pointer(p));
            node = target.ok_or(format!("the schema has no {r}"))?;
        }
        Ok(node)
    }

    /// The keys of the object at `pointer` in the schema, e.g. `keys("/$defs/commands/$defs")`.
    fn keys(&self, pointer: &str) -> Vec<&str> {
        let found = self.0.pointer(pointer).and_then(Value::as_object);
        found
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Checks `value`, found at `at`, against the schema `node`.
    fn check(&self, node: &Value, value: &Value, at: &str) -> Result<(), String> {
        let node = self.resolve(node)?;
        if let Some(branches) = node.get("oneOf").and_then(Value::as_array) {
            self.one_of(node, branches, value, at)?;
        }
        if let Some(types) = node.get("type") {
            let types: Vec<&str> = match types {
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                t => t.as_str().into_iter().collect(),
            };
            ensure(types.iter().any(|t| is_type(t, value)), || {
                format!("{at}: must be {}, not {value}", types.join(" or "))
            })?;
        }
        if let Some(options) = node.get("enum").and_then(Value::as_array) {
            ensure(options.contains(value), || {
                format!(
                    "{at}: {value} is not one of {}",
                    Value::Array(options.clone())
                )
            })?;
        }
        if let Some(c) = node.get("const") {
            ensure(c == value, || format!("{at}: must be {c}, not {value}"))?;
        }
        if let Value::Object(object) = value {
            self.check_object(node, object, at)?;
        }
        if let (Some(items), Value::Array(values)) = (node.get("items"), value) {
            for (i, v) in values.iter().enumerate() {
                self.check(items, v, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    fn check_object(&self, node: &Value, object: &Object, at: &str) -> Result<(), String> {
        let empty = Map::new();
        let properties = node
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        // An unknown key first: a misspelt one is also a missing one.
        if node.get("additionalProperties") == Some(&Value::Bool(false)) {
            if let Some(k) = object.keys().find(|k| !properties.contains_key(*k)) {
                let names: Vec<&str> = properties.keys().map(String::as_str).collect();
                let (k, names) = (json!(k), names.join(" "));
                return Err(format!("{at}: no field {k} (fields: {names})"));
            }
        }
        for key in node
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = key.as_str().unwrap_or_default();
            ensure(object.contains_key(key), || {
                format!("{at}: needs {}", json!(key))
            })?;
        }
        for (k, v) in object {
            let at = format!("{at}.{k}");
            match (properties.get(k), node.get("additionalProperties")) {
                (Some(p), _) => self.check(p, v, &at)?,
                (None, Some(extra @ Value::Object(_))) => self.check(extra, v, &at)?,
                (None, _) => {}
            }
        }
        Ok(())
    }

    /// Exactly one branch must hold. When none does, the error is that of the one branch the
    /// value is evidently meant as (see [`Schema::meant`]), else that it is none of the forms.
    fn one_of(
        &self,
        node: &Value,
        branches: &[Value],
        value: &Value,
        at: &str,
    ) -> Result<(), String> {
        let results: Vec<Result<(), String>> =
            branches.iter().map(|b| self.check(b, value, at)).collect();
        let held = results.iter().filter(|r| r.is_ok()).count();
        let title = node
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("one of its forms");
        if held == 1 {
            return Ok(());
        }
        if held > 1 {
            return Err(format!("{at}: {value} is {title} in more than one way"));
        }
        let meant: Vec<usize> = (0..branches.len())
            .filter(|&i| self.meant(&branches[i], value))
            .collect();
        if let [i] = meant.as_slice() {
            return results[*i].clone();
        }
        Err(format!(
            "{at}: {value} is not {title} (see tests/scenarios/scenario.schema.json)"
        ))
    }

    /// Whether `value` is evidently meant as this branch: of its type, with every property the
    /// branch pins with `const` present and equal, and one of its required keys present (or it
    /// has none).
    fn meant(&self, branch: &Value, value: &Value) -> bool {
        let Ok(branch) = self.resolve(branch) else {
            return false;
        };
        if let Some(t) = branch.get("type").and_then(Value::as_str) {
            if !is_type(t, value) {
                return false;
            }
        }
        let Value::Object(object) = value else {
            return true;
        };
        let properties = branch.get("properties").and_then(Value::as_object);
        let pinned = properties.into_iter().flatten().all(|(k, p)| {
            let p = self.resolve(p).unwrap_or(p);
            p.get("const").is_none_or(|c| object.get(k) == Some(c))
        });
        let required: Vec<&str> = (branch.get("required").and_then(Value::as_array))
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        pinned && (required.is_empty() || required.iter().any(|k| object.contains_key(*k)))
    }
}

fn is_type(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn matches(m: &Value, e: &Envelope) -> bool {
    let j = e.to_json();
    match m {
        Value::Object(m) => m.iter().all(|(k, v)| subset(v, &j[k])),
        ty => j["type"] == *ty,
    }
}

/// Pairs each matcher with an item it matches, no item twice, so that within each stream the
/// items come in the order of their matchers; with `exact`, every item must be paired. A
/// matcher that names no stream may pair with an item of any stream; the order is checked in
/// the stream of the item it pairs with. True when some pairing does all that. With
/// [`Order::Global`] there is one stream, so the order of the whole list counts.
fn fit<M, T>(
    ms: &[M],
    items: &[T],
    stream: impl Fn(&T) -> String,
    matches: impl Fn(&M, &T) -> bool,
    exact: bool,
) -> bool {
    if exact && ms.len() != items.len() {
        return false;
    }
    // Each stream's items, in their order; streams in order of first appearance.
    let mut lanes: Vec<(String, Vec<&T>)> = Vec::new();
    for item in items {
        let s = stream(item);
        match lanes.iter_mut().find(|(name, _)| *name == s) {
            Some((_, lane)) => lane.push(item),
            None => lanes.push((s, vec![item])),
        }
    }
    let lanes: Vec<Vec<&T>> = lanes.into_iter().map(|(_, lane)| lane).collect();
    let mut failed = HashSet::new();
    let mut cursors = vec![0; lanes.len()];
    search(0, &mut cursors, ms, &lanes, &matches, exact, &mut failed)
}

/// [`fit`]'s search from matcher `i`, with each stream's items before its cursor used up.
fn search<M, T>(
    i: usize,
    cursors: &mut [usize],
    ms: &[M],
    lanes: &[Vec<&T>],
    matches: &impl Fn(&M, &T) -> bool,
    exact: bool,
    failed: &mut HashSet<(usize, Vec<usize>)>,
) -> bool {
    let Some(m) = ms.get(i) else {
        return !exact || cursors.iter().zip(lanes).all(|(c, lane)| *c == lane.len());
    };
    if failed.contains(&(i, cursors.to_vec())) {
        return false;
    }
    for (l, lane) in lanes.iter().enumerate() {
        let from = cursors[l];
        // The earliest fitting item of the stream (exact: only the next one) leaves the most room.
        let rest = lane.iter().enumerate().skip(from);
        let limit = if exact { 1 } else { usize::MAX };
        if let Some((j, _)) = rest.take(limit).find(|(_, item)| matches(m, item)) {
            cursors[l] = j + 1;
            let found = search(i + 1, cursors, ms, lanes, matches, exact, failed);
            cursors[l] = from;
            if found {
                return true;
            }
        }
    }
    failed.insert((i, cursors.to_vec()));
    false
}

/// The stream an event counts in for `order`.
fn lane(order: Order) -> impl Fn(&Envelope) -> String {
    move |e| match order {
        Order::Stream => e.stream.to_string(),
        Order::Global => String::new(),
    }
}

/// Compares the fields given in `expected` with the serialized `actual`.
fn fields(what: &str, expected: &Object, actual: &Value) -> Result<(), String> {
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
            fields(&format!("{what} rentals[{i}]"), w, g)?;
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
    // What a command returned is its own output: always in its exact order.
    if let Some(want) = &then.events {
        let got = outcome
            .ok_or("\"events\" needs a command that succeeds")?
            .events;
        let ok = fit(want, &got, lane(Order::Global), matches, true);
        ensure(ok, || {
            format!("events: expected {}, returned {}", json!(want), show(&got))
        })?;
    }
    let order = match then.order {
        Order::Stream => "in each stream's order",
        Order::Global => "in the log's order",
    };
    if let Some(want) = &then.new_events {
        let ok = fit(want, &new, lane(then.order), matches, true);
        ensure(ok, || {
            format!(
                "new_events: expected {} ({order}), found {}",
                json!(want),
                show(&new)
            )
        })?;
    }
    if let Some(want) = &then.new_events_include {
        let ok = fit(want, &new, lane(then.order), matches, false);
        ensure(ok, || {
            format!(
                "new_events_include: no {} ({order}) in {}",
                json!(want),
                show(&new)
            )
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
            fields(&format!("book_list {id}"), want, row)?;
        }
    }
    for (member, want) in then.member_page.iter().flatten() {
        let page = w
            .lib
            .member_page(member)
            .map_err(|e| format!("{member}: {e}"))?;
        let page = serde_json::to_value(page).map_err(text)?;
        fields(&format!("member_page {member}"), want, &page)?;
    }
    if let Some(want) = &then.notices {
        let sent = serde_json::to_value(&w.notices.notices()[notices_before..]).map_err(text)?;
        let sent = sent.as_array().cloned().unwrap_or_default();
        // A notice counts in the stream of the event it tells of.
        let log = block_on(w.lib.events(1, usize::MAX)).map_err(text)?;
        let mut streams = Vec::new();
        for n in &sent {
            let id = &n["event_id"];
            let e = log.iter().find(|e| *id == *e.event_id);
            streams.push(
                e.map(|e| e.stream.to_string())
                    .ok_or(format!("notice {n} tells of no stored event"))?,
            );
        }
        let sent: Vec<(Value, String)> = sent.into_iter().zip(streams).collect();
        let stream = |(_, s): &(Value, String)| match then.order {
            Order::Stream => s.clone(),
            Order::Global => String::new(),
        };
        let notice = |n: &Object, (s, _): &(Value, String)| fields("notice", n, s).is_ok();
        let ok = fit(want, &sent, stream, notice, true);
        let sent: Vec<Value> = sent
            .iter()
            .map(|(n, s)| json!([n["rental_id"], n["kind"], s]))
            .collect();
        ensure(ok, || {
            format!(
                "notices: expected {} ({order}), sent {}",
                json!(want),
                json!(sent)
            )
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

/// Runs the scenario `file`, named `name` (its path under `tests/scenarios`).
fn run(name: &str, file: &Value, schema: &Schema, kind: StoreKind) -> Result<(), String> {
    schema.check(&schema.0, file, "scenario")?;
    let s: Scenario =
        serde_json::from_value(file.clone()).map_err(|e| format!("not a scenario: {e}"))?;
    let folder = name.trim_start_matches(PENDING).split('/').next();
    ensure(folder == Some(s.seed.as_str()), || {
        format!("seed {:?} must name the folder", s.seed)
    })?;
    let w = build(&s.options, kind)?;
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

fn read(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(text)?;
    serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))
}

/// Every case of `tests/scenario-selftest.json` is judged as it says: each runner's matching
/// (and its schema check) must be able to fail, and fail for the reason given.
fn self_test(path: &Path, schema: &Schema) -> Result<(), String> {
    let cases = read(path)?;
    let base = cases["base"].as_object().ok_or("no base scenario")?;
    let list = cases["cases"].as_array().ok_or("no cases")?;
    ensure(!list.is_empty(), || "no cases".into())?;
    for case in list {
        let name = &case["name"];
        let mut scenario = base.clone();
        for (k, v) in case.as_object().into_iter().flatten() {
            if !matches!(k.as_str(), "name" | "fails_with") {
                scenario.insert(k.clone(), v.clone());
            }
        }
        let seed = scenario["seed"].as_str().unwrap_or_default().to_owned();
        let result = run(
            &format!("{seed}/self-test.json"),
            &Value::Object(scenario),
            schema,
            StoreKind::Memory,
        );
        match (&case["fails_with"], result) {
            (Value::Null, Ok(())) => {}
            (Value::Null, Err(e)) => return Err(format!("{name}: failed, expected a pass: {e}")),
            (Value::String(says), Err(e)) if e.contains(says.as_str()) => {}
            (Value::String(says), Err(e)) => {
                return Err(format!("{name}: failed without {says:?}: {e}"))
            }
            (Value::String(says), Ok(())) => {
                return Err(format!("{name}: passed, expected a failure with {says:?}"))
            }
            (other, _) => {
                return Err(format!(
                    "{name}: fails_with is null or a string, not {other}"
                ))
            }
        }
    }
    Ok(())
}

/// The schema's commands are `Command::SPECS`: the same names, fields, field kinds and
/// required fields, and the action form lists every one of them.
fn schema_commands(schema: &Schema) -> Result<(), String> {
    let specs = serde_json::to_value(Command::SPECS).map_err(text)?;
    let specs = specs.as_array().ok_or("SPECS is a list")?;
    let names: Vec<&str> = specs.iter().filter_map(|s| s["name"].as_str()).collect();
    let mut listed = schema.keys("/$defs/commands/$defs");
    listed.sort_unstable();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    ensure(listed == sorted, || {
        format!("the schema's commands {listed:?} are not Command::SPECS {sorted:?}")
    })?;
    let action = schema
        .0
        .pointer("/$defs/action/oneOf")
        .and_then(Value::as_array);
    let refs: Vec<&str> = action
        .into_iter()
        .flatten()
        .filter_map(|b| b["$ref"].as_str())
        .collect();
    for spec in specs {
        let name = spec["name"].as_str().unwrap_or_default();
        let at = format!("/$defs/commands/$defs/{name}");
        ensure(refs.contains(&format!("#{at}").as_str()), || {
            format!("$defs/action does not list {name}")
        })?;
        let def = schema.0.pointer(&at).ok_or(format!("no {at}"))?;
        let mut fields: Vec<&str> = schema.keys(&format!("{at}/properties"));
        fields.retain(|f| !matches!(*f, "command" | "as" | "command_id"));
        fields.sort_unstable();
        let spec_fields = spec["fields"].as_array().ok_or("fields is a list")?;
        let mut want: Vec<&str> = spec_fields
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        want.sort_unstable();
        ensure(fields == want, || {
            format!("{name}: the schema's fields {fields:?} are not the spec's {want:?}")
        })?;
        let required = def["required"]
            .as_array()
            .ok_or(format!("{name}: no required"))?;
        for f in spec_fields {
            let field = f["name"].as_str().unwrap_or_default();
            let kind = &f["kind"];
            let r = def["properties"][field]["$ref"]
                .as_str()
                .unwrap_or_default();
            ensure(
                r == format!("#/$defs/kinds/$defs/{}", kind.as_str().unwrap_or("?")),
                || format!("{name}.{field}: the schema says {r}, the spec {kind}"),
            )?;
            let optional = f["optional"] == json!(true);
            ensure(required.contains(&json!(field)) != optional, || {
                format!("{name}.{field}: required in the schema unless optional in the spec")
            })?;
        }
        for key in ["command", "as"] {
            ensure(required.contains(&json!(key)), || {
                format!("{name} must require {key}")
            })?;
        }
    }
    Ok(())
}

fn scenario_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    for path in entries.map(|e| e.path()) {
        if path.is_dir() {
            scenario_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "json")
            && path.file_name().is_some_and(|n| n != SCHEMA)
        {
            out.push(path);
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let root = tests.join("scenarios");
    let schema = match Schema::load(&root.join(SCHEMA)) {
        Ok(schema) => Arc::new(schema),
        Err(e) => {
            eprintln!("the scenario schema: {e}");
            std::process::exit(1);
        }
    };
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
    let mut trials = Vec::new();
    let (all, s) = (named.clone(), Arc::clone(&schema));
    trials.push(Trial::test(
        "schema: every file, pending ones too",
        move || {
            for (name, path) in &all {
                let file = read(path).map_err(|e| format!("{name}: {e}"))?;
                s.check(&s.0, &file, "scenario")
                    .map_err(|e| Failed::from(format!("{name}: {e}")))?;
            }
            Ok(())
        },
    ));
    let s = Arc::clone(&schema);
    trials.push(Trial::test(
        "schema: the commands are Command::SPECS",
        move || schema_commands(&s).map_err(Failed::from),
    ));
    let (s, cases) = (Arc::clone(&schema), tests.join("scenario-selftest.json"));
    trials.push(Trial::test(
        "self-test: tests/scenario-selftest.json",
        move || self_test(&cases, &s).map_err(Failed::from),
    ));
    // Every file on every store: in memory under its own name, on sled and SQLite under
    // `sled:` and `sqlite:`.
    for (name, path) in named {
        let pending = name.starts_with(PENDING);
        for (kind, prefix) in [
            (StoreKind::Memory, ""),
            (StoreKind::Sled, "sled:"),
            (StoreKind::Sqlite, "sqlite:"),
        ] {
            let (test, s, path) = (name.clone(), Arc::clone(&schema), path.clone());
            let trial = Trial::test(format!("{prefix}{name}"), move || {
                read(&path)
                    .and_then(|file| run(&test, &file, &s, kind))
                    .map_err(|e| Failed::from(format!("{prefix}{test}: {e}")))
            });
            trials.push(trial.with_ignored_flag(pending));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
