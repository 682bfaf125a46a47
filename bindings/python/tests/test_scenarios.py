"""Every scenario file in tests/scenarios, run through the Python API.

The same files the Rust runner (tests/acceptance.rs) runs, read in place: one test per file,
named by its path. The runner only loads a file, drives the public Python API and compares, as
tests/scenarios/README.md describes; no rule lives here. Files under ``_pending/`` show known
bugs in the core and are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, cast

import pytest

import lendkit

ROOT = (Path(__file__).parent / "../../../tests/scenarios").resolve()
FILES = sorted(ROOT.rglob("*.json"))
PENDING = "_pending/"

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00.000Z
SEEDS = {"library", "water-purifier", "book-delivery", "ebook", "rental-payment", "rules"}
SCENARIO_FIELDS = {"description", "seed", "options", "given", "steps"}
OPTION_FIELDS = {"welcome_points", "loan_days", "max_renewals", "max_attempts", "breaker", "workers"}
BREAKER_FIELDS = {"failure_threshold", "cool_down_ms"}
EXPECT_FIELDS = {
    "error", "events", "new_events", "new_events_include", "book_list", "member_page",
    "notices", "payment_circuit", "dead_letters",
}
BOOK_FIELDS = {"book_id", "title", "copies", "available", "reserved", "on_loan", "status", "last_activity", "fee"}
PAGE_FIELDS = {"name", "points", "rentals"}
RENTAL_FIELDS = {"rental_id", "book_id", "status", "payment_status", "delivery_status", "fee", "due_date", "late_days"}
NOTICE_FIELDS = {"member_id", "rental_id", "kind", "message"}
MATCHER_FIELDS = {"type", "stream", "payload"}
COMMANDS = {
    "register_book", "add_copies", "join_member", "top_up", "reserve_book", "start_loan",
    "return_book", "cancel_rental", "renew_loan", "mark_delivered",
}
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


def known(what: str, given: Dict[str, Any], allowed: Set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise Malformed(f"{what}: no field {unknown[0]!r} (fields: {' '.join(sorted(allowed))})")


class World:
    """One scenario's library and the handles the runner keeps on it."""

    def __init__(self, options: Dict[str, Any]) -> None:
        known("options", options, OPTION_FIELDS)
        breaker = options.get("breaker", {})
        known("options.breaker", breaker, BREAKER_FIELDS)
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


def check_matchers(matchers: List[Any]) -> None:
    for m in matchers:
        if isinstance(m, dict):
            known("event matcher", m, MATCHER_FIELDS)
        elif not isinstance(m, str):
            raise Malformed(f"a matcher is a type or an object, not {m!r}")


def matches(matcher: Any, event: lendkit.Event) -> bool:
    wire = event.to_dict()
    if isinstance(matcher, dict):
        return all(k in wire and subset(v, wire[k]) for k, v in matcher.items())
    return bool(wire["type"] == matcher)


def all_match(matchers: List[Any], events: Sequence[lendkit.Event]) -> bool:
    check_matchers(matchers)
    return len(matchers) == len(events) and all(matches(m, e) for m, e in zip(matchers, events))


def in_order(matchers: List[Any], events: Sequence[lendkit.Event]) -> bool:
    check_matchers(matchers)
    rest = iter(events)
    return all(any(matches(m, e) for e in rest) for m in matchers)


def fields(what: str, expected: Dict[str, Any], actual: Dict[str, Any], allowed: Set[str]) -> None:
    known(what, expected, allowed)
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
            fields(f"{what} rentals[{i}]", w, g, RENTAL_FIELDS)


def step(w: World, action: Dict[str, Any], then: Dict[str, Any]) -> None:
    known("then", then, EXPECT_FIELDS)
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
    if "events" in then:
        if outcome is None:
            raise Malformed('"events" needs a command that succeeds')
        assert all_match(then["events"], outcome.events), (
            f"events: expected {json.dumps(then['events'])}, returned {show(outcome.events)}"
        )
    if "new_events" in then:
        assert all_match(then["new_events"], new), (
            f"new_events: expected {json.dumps(then['new_events'])}, found {show(new)}"
        )
    if "new_events_include" in then:
        assert in_order(then["new_events_include"], new), (
            f"new_events_include: no {json.dumps(then['new_events_include'])} in {show(new)}"
        )
    if "book_list" in then:
        rows = [r.to_dict() for r in lib.book_list()]
        for want in then["book_list"]:
            if "book_id" not in want:
                raise Malformed("a book_list row needs book_id")
            row = next((r for r in rows if r["book_id"] == want["book_id"]), None)
            assert row is not None, f"no book {want['book_id']} in {rows}"
            fields(f"book_list {want['book_id']}", want, row, BOOK_FIELDS)
    for member, want in then.get("member_page", {}).items():
        page = lib.member_page(member).to_dict()
        fields(f"member_page {member}", want, page, PAGE_FIELDS)
    if "notices" in then:
        want = then["notices"]
        for n in want:
            known("notice", n, NOTICE_FIELDS)
        sent = [n.to_dict() for n in w.notices[notices_before:]]
        ok = len(want) == len(sent)
        for n, s in zip(want, sent):
            try:
                fields("notice", n, s, NOTICE_FIELDS)
            except AssertionError:
                ok = False
        assert ok, f"notices: expected {json.dumps(want, ensure_ascii=False)}, sent {[(s['rental_id'], s['kind']) for s in sent]}"
    if "payment_circuit" in then:
        state = lib.payment_circuit()
        assert state == then["payment_circuit"], f"payment_circuit: expected {then['payment_circuit']}, found {state}"
    if "dead_letters" in then:
        letters = lib.dead_letters()
        found = [f"{d.id}: {d.error}" for d in letters]
        assert len(letters) == then["dead_letters"], f"dead_letters: expected {then['dead_letters']}, found {found}"


def run(rel: str, path: Path) -> None:
    scenario = json.loads(path.read_text(encoding="utf-8"))
    known("scenario", scenario, SCENARIO_FIELDS)
    for required in ("description", "seed", "steps"):
        if required not in scenario:
            raise Malformed(f"a scenario needs {required!r}")
    folder = rel[len(PENDING):] if rel.startswith(PENDING) else rel
    seed = scenario["seed"]
    if seed not in SEEDS or folder.split("/")[0] != seed:
        raise Malformed(f"seed {seed!r} must be one of {' '.join(sorted(SEEDS))} and name the folder")
    w = World(scenario.get("options", {}))
    try:
        for i, action in enumerate(scenario.get("given", [])):
            try:
                w.act(action)
            except lendkit.LendkitError as e:
                pytest.fail(f"given[{i}] {json.dumps(action, ensure_ascii=False)}: {e.code}: {e}")
        for i, st in enumerate(scenario["steps"]):
            known(f"steps[{i}]", st, {"when", "then"})
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
    run(rel, path)


def test_the_runner_catches_a_wrong_expectation(tmp_path: Path) -> None:
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
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(scenario))
    with pytest.raises(AssertionError, match="available expected 3, found 2"):
        run("library/wrong.json", path)
    scenario["steps"][1]["then"] = {"error": "BOOK_EXISTS"}
    path.write_text(json.dumps(scenario))
    with pytest.raises(pytest.fail.Exception, match="succeeded, expected error BOOK_EXISTS"):
        run("library/wrong.json", path)
    scenario["steps"][1]["then"] = {"book_lists": []}
    path.write_text(json.dumps(scenario))
    with pytest.raises(Malformed, match="no field 'book_lists'"):
        run("library/wrong.json", path)
