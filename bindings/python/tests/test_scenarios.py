"""Every scenario file in tests/scenarios, run through the Python API.

The same files the Rust runner (tests/acceptance.rs) runs, read in place: one test per file,
named by its path. The runner only loads a file, checks it against
tests/scenarios/scenario.schema.json, drives the public Python API and compares, as
tests/scenarios/README.md describes; no rule lives here. Files under ``_pending/`` show known
bugs in the core and are skipped. The cases of tests/scenario-selftest.json, which every runner
must judge alike, show that the matching and the schema check can fail.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, TypeVar, cast

import pytest

import lendkit

TESTS = (Path(__file__).parent / "../../../tests").resolve()
ROOT = TESTS / "scenarios"
# The format's one description; not a scenario itself.
SCHEMA_FILE = ROOT / "scenario.schema.json"
SCHEMA: Dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
FILES = sorted(p for p in ROOT.rglob("*.json") if p != SCHEMA_FILE)
SELF_TEST: Dict[str, Any] = json.loads((TESTS / "scenario-selftest.json").read_text(encoding="utf-8"))
PENDING = "_pending/"

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00.000Z
COMMANDS = set(SCHEMA["$defs"]["commands"]["$defs"])
# Command fields whose Python keyword differs from the JSON field name.
KEYWORDS: Dict[Any, str] = {}  # none since add_copies takes copies=


class Malformed(Exception):
    """The scenario file itself is wrong (not the library)."""


def test_scenarios_exist() -> None:
    assert FILES, f"no scenario files (*.json) under {ROOT}"


def same(expected: Any, actual: Any) -> bool:
    """JSON equality: unlike Python's ==, True is not 1."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual))
    return bool(expected == actual)


def subset(expected: Any, actual: Any) -> bool:
    """Every key of ``expected`` is in ``actual`` with an equal value, recursively."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            subset(e, a) for e, a in zip(expected, actual)
        )
    return same(expected, actual)


def shown(value: Any) -> str:
    """JSON as the Rust and Node runners show it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# The scenario schema, walked by the keywords its $comment lists (as the Rust and Node runners do).


def resolve(node: Dict[str, Any]) -> Dict[str, Any]:
    while "$ref" in node:
        target: Any = SCHEMA
        for part in node["$ref"].lstrip("#").strip("/").split("/"):
            target = target[part]
        node = target
    return node


def is_type(t: str, v: Any) -> bool:
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    return t in kinds and isinstance(v, kinds[t])


def check(node: Dict[str, Any], value: Any, at: str) -> None:
    """Raises Malformed unless ``value``, found at ``at``, fits the schema ``node``."""
    node = resolve(node)
    if "oneOf" in node:
        one_of(node, value, at)
    if "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        if not any(is_type(t, value) for t in types):
            raise Malformed(f"{at}: must be {' or '.join(types)}, not {shown(value)}")
    if "enum" in node and not any(same(o, value) for o in node["enum"]):
        raise Malformed(f"{at}: {shown(value)} is not one of {shown(node['enum'])}")
    if "const" in node and not same(node["const"], value):
        raise Malformed(f"{at}: must be {shown(node['const'])}, not {shown(value)}")
    if isinstance(value, dict):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        # An unknown key first: a misspelt one is also a missing one.
        unknown = [k for k in value if k not in properties]
        if extra is False and unknown:
            raise Malformed(f"{at}: no field {shown(unknown[0])} (fields: {' '.join(properties)})")
        for k in node.get("required", []):
            if k not in value:
                raise Malformed(f"{at}: needs {shown(k)}")
        for k, v in value.items():
            if k in properties:
                check(properties[k], v, f"{at}.{k}")
            elif isinstance(extra, dict):
                check(extra, v, f"{at}.{k}")
    if isinstance(value, list) and "items" in node:
        for i, v in enumerate(value):
            check(node["items"], v, f"{at}[{i}]")


def one_of(node: Dict[str, Any], value: Any, at: str) -> None:
    """Exactly one branch must hold; else the error of the one branch the value is evidently
    meant as, or that it is none of the forms."""
    errors: List[Optional[Malformed]] = []
    for branch in node["oneOf"]:
        try:
            check(branch, value, at)
            errors.append(None)
        except Malformed as e:
            errors.append(e)
    held = errors.count(None)
    title = node.get("title", "one of its forms")
    if held == 1:
        return
    if held > 1:
        raise Malformed(f"{at}: {shown(value)} is {title} in more than one way")
    meant = [e for b, e in zip(node["oneOf"], errors) if meant_as(b, value)]
    if len(meant) == 1 and meant[0] is not None:
        raise meant[0]
    raise Malformed(f"{at}: {shown(value)} is not {title} (see tests/scenarios/scenario.schema.json)")


def meant_as(branch: Dict[str, Any], value: Any) -> bool:
    """Of the branch's type, every property it pins with const present and equal, and one of its
    required keys present (or it has none)."""
    branch = resolve(branch)
    if isinstance(branch.get("type"), str) and not is_type(branch["type"], value):
        return False
    if not isinstance(value, dict):
        return True
    for k, p in branch.get("properties", {}).items():
        p = resolve(p)
        if "const" in p and not (k in value and same(p["const"], value[k])):
            return False
    required = branch.get("required", [])
    return not required or any(k in value for k in required)


class World:
    """One scenario's library and the handles the runner keeps on it."""

    def __init__(self, options: Dict[str, Any]) -> None:
        breaker = options.get("breaker", {})
        self.clock = lendkit.ManualClock(START_MS)
        self.notices: List[lendkit.Notice] = []
        kwargs: Dict[str, Any] = {
            k: options[k] for k in ("welcome_points", "loan_days", "max_renewals", "max_attempts") if k in options
        }
        self.lib = lendkit.Library.in_memory(
            **kwargs,
            clock=self.clock,
            notifier=self.notices.append,
            background=False,
            fault_injection=True,
            breaker_failure_threshold=breaker.get("failure_threshold", 3),
            breaker_cool_down_ms=breaker.get("cool_down_ms", 60_000),
            payment_timeout_ms=None,
            workers=options.get("workers", {}),
        )

    def act(self, action: Dict[str, Any]) -> Optional[lendkit.Outcome]:
        """Runs one action; returns a command's outcome. Library errors propagate."""
        lib = self.lib
        if "command" in action:
            fields = dict(action)
            name = fields.pop("command")
            if name not in COMMANDS:
                raise Malformed(f"not a command: {name!r}")
            actor = parse_actor(fields.pop("as", None))
            kwargs = {KEYWORDS.get((name, k), k): v for k, v in fields.items()}
            method = getattr(lib, name)
            try:
                return cast(lendkit.Outcome, method(actor=actor, **kwargs))
            except TypeError as e:
                raise Malformed(f"{name}: {e}") from e
        keys = sorted(action)
        if keys == ["settle"] and action["settle"] is True:
            lib.settle()
        elif keys == ["pause"]:
            lib.pause(action["pause"])
        elif keys == ["resume"]:
            lib.resume(action["resume"])
        elif keys == ["payment"]:
            if action["payment"] not in ("up", "down"):
                raise Malformed(f'payment is "up" or "down", not {action["payment"]!r}')
            lib.set_payment_outage(action["payment"] == "down")
        elif keys == ["advance_days"]:
            self.clock.advance_days(action["advance_days"])
        elif keys == ["advance_ms"]:
            self.clock.advance_ms(action["advance_ms"])
        elif keys == ["advance_to"]:
            try:
                at = datetime.fromisoformat(str(action["advance_to"]).replace("Z", "+00:00"))
            except ValueError as e:
                raise Malformed(f"advance_to takes an RFC 3339 instant: {e}") from e
            ms = round(at.timestamp() * 1000)
            if ms < self.clock.now():
                raise Malformed("advance_to cannot move the clock back")
            self.clock.set(ms)
            lib.advance_to(ms)
        elif keys == ["event", "redeliver"]:
            found = [e for e in lib.events() if e.type == action["event"]]
            if not found:
                raise Malformed(f"no stored {action['event']} to redeliver")
            lib.redeliver(action["redeliver"], found[0].position)
        elif keys == ["position", "redeliver"]:
            lib.redeliver(action["redeliver"], action["position"])
        else:
            raise Malformed(f"not an action (see tests/scenarios/README.md): {action}")
        return None


def parse_actor(text: Optional[str]) -> "lendkit.Librarian | lendkit.Member":
    kind, _, id = (text or "").partition(":")
    if kind == "librarian":
        return lendkit.Librarian(id)
    if kind == "member":
        return lendkit.Member(id)
    raise Malformed(f"actor {text!r} is not of the form librarian:ID or member:ID")


def show(events: Sequence[lendkit.Event]) -> str:
    return json.dumps([{"type": e.type, "stream": e.stream, "payload": e.payload} for e in events], ensure_ascii=False)


def matches(matcher: Any, event: lendkit.Event) -> bool:
    wire = event.to_dict()
    if isinstance(matcher, dict):
        return all(k in wire and subset(v, wire[k]) for k, v in matcher.items())
    return bool(wire["type"] == matcher)


M = TypeVar("M")
T = TypeVar("T")


def fit(ms: Sequence[M], items: Sequence[T], stream: Callable[[T], str], match: Callable[[M, T], bool], exact: bool) -> bool:
    """Pairs each matcher with an item it matches, no item twice, so that within each stream the
    items come in the order of their matchers; with ``exact``, every item must be paired. A
    matcher that names no stream may pair with an item of any stream; the order is checked in the
    stream of the item it pairs with. True when some pairing does all that. For the global order,
    ``stream`` puts every item in one stream."""
    if exact and len(ms) != len(items):
        return False
    by_stream: Dict[str, List[T]] = {}  # each stream's items in their order
    for item in items:
        by_stream.setdefault(stream(item), []).append(item)
    lanes = list(by_stream.values())
    failed: Set[Tuple[int, Tuple[int, ...]]] = set()

    def search(i: int, cursors: Tuple[int, ...]) -> bool:
        if i == len(ms):
            return not exact or all(c == len(lane) for c, lane in zip(cursors, lanes))
        if (i, cursors) in failed:
            return False
        for l, lane in enumerate(lanes):
            # The earliest fitting item of the stream (exact: only the next one) leaves the most room.
            stop = min(cursors[l] + 1, len(lane)) if exact else len(lane)
            j = next((j for j in range(cursors[l], stop) if match(ms[i], lane[j])), None)
            if j is not None and search(i + 1, cursors[:l] + (j + 1,) + cursors[l + 1 :]):
                return True
        failed.add((i, cursors))
        return False

    return search(0, (0,) * len(lanes))


def fields(what: str, expected: Dict[str, Any], actual: Dict[str, Any]) -> None:
    for k, v in expected.items():
        if k != "rentals":
            found = actual.get(k)
            assert same(v, found), f"{what}: {k} expected {v!r}, found {found!r} in {actual}"
            continue
        got = actual.get(k)
        if not isinstance(v, list) or not isinstance(got, list):
            raise Malformed(f"{what}: rentals must be a list")
        assert len(v) == len(got), f"{what}: expected {len(v)} rentals, found {got}"
        for i, (w, g) in enumerate(zip(v, got)):
            fields(f"{what} rentals[{i}]", w, g)


def step(w: World, action: Dict[str, Any], then: Dict[str, Any]) -> None:
    lib = w.lib
    head_before = lib.head()
    notices_before = len(w.notices)
    outcome: Optional[lendkit.Outcome] = None
    error: Optional[lendkit.LendkitError] = None
    try:
        outcome = w.act(action)
    except lendkit.LendkitError as e:
        error = e
    new = lib.events(from_position=head_before + 1)
    want_error = then.get("error")
    if error is None and want_error is not None:
        pytest.fail(f"succeeded, expected error {want_error}")
    if error is not None:
        if want_error is None:
            pytest.fail(f"failed with {error.code} ({error}), expected success")
        if error.code != want_error:
            pytest.fail(f"failed with {error.code} ({error}), expected {want_error}")
        if lib.head() != head_before:
            pytest.fail(f"failed, but the log grew: {show(new)}")
    one_stream: Callable[[Any], str] = lambda _: ""
    # What a command returned is its own output: always in its exact order.
    if "events" in then:
        if outcome is None:
            raise Malformed('"events" needs a command that succeeds')
        assert fit(then["events"], outcome.events, one_stream, matches, True), (
            f"events: expected {json.dumps(then['events'])}, returned {show(outcome.events)}"
        )
    by_log = then.get("order", "stream") == "global"
    order = "in the log's order" if by_log else "in each stream's order"
    lane: Callable[[lendkit.Event], str] = one_stream if by_log else (lambda e: e.stream)
    if "new_events" in then:
        assert fit(then["new_events"], new, lane, matches, True), (
            f"new_events: expected {json.dumps(then['new_events'])} ({order}), found {show(new)}"
        )
    if "new_events_include" in then:
        assert fit(then["new_events_include"], new, lane, matches, False), (
            f"new_events_include: no {json.dumps(then['new_events_include'])} ({order}) in {show(new)}"
        )
    if "book_list" in then:
        rows = [r.to_dict() for r in lib.book_list()]
        for want in then["book_list"]:
            row = next((r for r in rows if r["book_id"] == want["book_id"]), None)
            assert row is not None, f"no book {want['book_id']} in {rows}"
            fields(f"book_list {want['book_id']}", want, row)
    for member, want in then.get("member_page", {}).items():
        page = lib.member_page(member).to_dict()
        fields(f"member_page {member}", want, page)
    if "notices" in then:
        want = then["notices"]
        # A notice counts in the stream of the event it tells of.
        streams = {e.event_id: e.stream for e in lib.events()}
        sent: List[Tuple[Dict[str, Any], str]] = []
        for n in w.notices[notices_before:]:
            if n.event_id not in streams:
                raise AssertionError(f"notice {n.to_dict()} tells of no stored event")
            sent.append((n.to_dict(), streams[n.event_id]))

        def notice(expected: Dict[str, Any], got: Tuple[Dict[str, Any], str]) -> bool:
            return all(k in got[0] and same(v, got[0][k]) for k, v in expected.items())

        ok = fit(want, sent, lambda s: "" if by_log else s[1], notice, True)
        assert ok, (
            f"notices: expected {json.dumps(want, ensure_ascii=False)} ({order}), "
            f"sent {[(n['rental_id'], n['kind'], s) for n, s in sent]}"
        )
    if "payment_circuit" in then:
        state = lib.payment_circuit()
        assert state == then["payment_circuit"], f"payment_circuit: expected {then['payment_circuit']}, found {state}"
    if "dead_letters" in then:
        letters = lib.dead_letters()
        found = [f"{d.id}: {d.error}" for d in letters]
        assert len(letters) == then["dead_letters"], f"dead_letters: expected {then['dead_letters']}, found {found}"


def run(rel: str, scenario: Dict[str, Any]) -> None:
    """Runs a scenario named ``rel`` (its path under tests/scenarios)."""
    check(SCHEMA, scenario, "scenario")
    folder = rel[len(PENDING):] if rel.startswith(PENDING) else rel
    seed = scenario["seed"]
    if folder.split("/")[0] != seed:
        raise Malformed(f"seed {seed!r} must name the folder")
    w = World(scenario.get("options", {}))
    try:
        for i, action in enumerate(scenario.get("given", [])):
            try:
                w.act(action)
            except lendkit.LendkitError as e:
                pytest.fail(f"given[{i}] {json.dumps(action, ensure_ascii=False)}: {e.code}: {e}")
        for i, st in enumerate(scenario["steps"]):
            try:
                step(w, st["when"], st.get("then", {}))
            except AssertionError as e:
                raise AssertionError(f"steps[{i}] (when {json.dumps(st['when'], ensure_ascii=False)}): {e}") from None
    finally:
        w.lib.close()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_scenario(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    if rel.startswith(PENDING):
        pytest.skip("a known bug in the core (tests/scenarios/_pending)")
    run(rel, json.loads(path.read_text(encoding="utf-8")))


def test_every_file_fits_the_schema() -> None:
    """Pending files too: they are skipped, not exempt from the format."""
    for path in FILES:
        check(SCHEMA, json.loads(path.read_text(encoding="utf-8")), path.relative_to(ROOT).as_posix())


@pytest.mark.parametrize("case", SELF_TEST["cases"], ids=lambda c: str(c["name"]))
def test_self_test_case(case: Dict[str, Any]) -> None:
    """Each case of tests/scenario-selftest.json is judged as it says, as in every runner."""
    scenario = {**SELF_TEST["base"], **{k: v for k, v in case.items() if k not in ("name", "fails_with")}}
    error: Optional[BaseException] = None
    try:
        run(f"{scenario['seed']}/self-test.json", scenario)
    except (AssertionError, Malformed, pytest.fail.Exception) as e:
        error = e
    if case["fails_with"] is None:
        assert error is None, f"failed, expected a pass: {error}"
    else:
        assert error is not None, f"passed, expected a failure with {case['fails_with']!r}"
        assert case["fails_with"] in str(error), f"failed without {case['fails_with']!r}: {error}"


def test_the_runner_catches_a_wrong_expectation() -> None:
    scenario: Dict[str, Any] = {
        "description": "a deliberately wrong expectation",
        "seed": "library",
        "steps": [
            {
                "when": {"command": "register_book", "as": "librarian:lib-1", "book_id": "b-1", "title": "T", "copies": 2, "fee": 30},
                "then": {"events": ["BookRegistered"]},
            },
            {"when": {"settle": True}, "then": {"book_list": [{"book_id": "b-1", "available": 3}]}},
        ],
    }
    with pytest.raises(AssertionError, match="available expected 3, found 2"):
        run("library/wrong.json", scenario)
    scenario["steps"][1]["then"] = {"error": "BOOK_EXISTS"}
    with pytest.raises(pytest.fail.Exception, match="succeeded, expected error BOOK_EXISTS"):
        run("library/wrong.json", scenario)
    scenario["steps"][1]["then"] = {"book_lists": []}
    with pytest.raises(Malformed, match='no field "book_lists"'):
        run("library/wrong.json", scenario)
