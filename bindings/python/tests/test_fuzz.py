"""Fuzz: wrong types, huge strings, unicode, negative numbers and None thrown at every method.

Only lendkit errors or the built-in TypeError / ValueError / OverflowError (and TimeoutError from
``settle(timeout=...)``) may come out — never
a PanicException, a SystemError or a crash — and the database is consistent afterwards: the
log has no gaps, every book's counts add up, every balance is what its events say, and the
views equal a fresh rebuild from the log after reopening.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lendkit

from conftest import LIBRARIAN

ALLOWED = (lendkit.LendkitError, TypeError, ValueError, OverflowError, TimeoutError)

IDS = st.sampled_from(["b-1", "b-2", "m-1", "m-2", "r-1", "r-2", "lib-1", "catalog", "notices", "payments"])
WEIRD_TEXT = st.one_of(
    st.text(max_size=30),
    st.text(min_size=150, max_size=400),
    st.sampled_from(
        [
            "",
            " ",
            " b-1",
            "b-1 ",
            "a\nb",
            "\x00",
            "\ud800",  # a lone surrogate: not encodable as UTF-8
            "도서-1",
            "📚" * 60,
            "x" * 201,
            "x" * 2_001,
            "y" * 1_000_000,
            "librarian:lib-1",
        ]
    ),
)
WEIRD_NUMBER = st.one_of(
    st.integers(min_value=-3, max_value=200),
    st.sampled_from([0, -1, 2**31, 2**32, 2**32 - 1, 2**63, 2**64, 2**64 - 1, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
WEIRD = st.one_of(
    st.none(),
    IDS,
    WEIRD_TEXT,
    WEIRD_NUMBER,
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.tuples(st.text(max_size=5), st.integers()),
    st.just(object()),
    st.just(lendkit.Member("m-1")),
)
ACTORS = st.one_of(st.sampled_from([LIBRARIAN, lendkit.Member("m-1"), lendkit.Member("m-2")]), WEIRD)

# name -> (positional arguments, keyword arguments besides actor), from the core's schema: the
# required fields are positional, the optional ones keyword-only.
SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "schema.json").read_text(encoding="utf-8"))
COMMANDS: Dict[str, Tuple[int, List[str]]] = {
    c["name"]: (
        sum(1 for f in c["fields"] if not f["optional"]),
        [f["name"] for f in c["fields"] if f["optional"]] + ["command_id"],
    )
    for c in SCHEMA["commands"]
}
MOST_POSITIONAL = max(n for n, _ in COMMANDS.values())
KEYWORDS = sorted({k for _, ks in COMMANDS.values() for k in ks})
QUERIES: Dict[str, int] = {
    "member_page": 1,
    "events": 2,
    "replay_dead_letter": 1,
    "pause": 1,
    "resume": 1,
    "redeliver": 2,
    "set_payment_outage": 1,
    "subscribe": 1,
    "settle": 1,
}


def check(call: Callable[[], Any]) -> Any:
    """Runs `call`; fails on anything but an allowed exception or a caught Rust panic."""
    try:
        return call()
    except ALLOWED as e:
        if isinstance(e, lendkit.LendkitError):
            assert e.code in lendkit.CODES, e
            assert e.code != "INTERNAL", f"the core panicked: {e}"
        return None
    except BaseException as e:  # PanicException derives from BaseException
        raise AssertionError(f"{type(e).__module__}.{type(e).__name__} escaped: {e!r}") from e


def consistent(lib: lendkit.Library) -> None:
    lib.settle(timeout=60)
    events = lib.events()
    assert [e.position for e in events] == list(range(1, len(events) + 1)), "the log has gaps"
    for book in lib.book_list():
        assert book.available + book.reserved + book.on_loan == book.copies, book
        assert min(book.available, book.reserved, book.on_loan) >= 0
    balance: Dict[str, int] = defaultdict(int)
    for e in events:
        sign = {"AccountOpened": 1, "PointsToppedUp": 1, "PointsCharged": -1, "PointsRefunded": 1}.get(e.type)
        if sign is not None:
            p = e.payload
            balance[p["member"]] += sign * (p["welcome"] if e.type == "AccountOpened" else p["points"])
    for m, points in balance.items():
        assert points >= 0
        assert lib.member_page(m).points == points, f"{m}: page says {lib.member_page(m).points}, events {points}"


def test_fuzz_every_method(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.db"
    lib = lendkit.Library.open(path, background=False, durability=("periodic", 100), fault_injection=True)
    lib.register_book("b-1", "Seed", 2, 30, actor=LIBRARIAN)
    lib.join_member("m-1", "Kim", actor=LIBRARIAN)
    lib.join_member("m-2", "Lee", actor=LIBRARIAN)

    @settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        name=st.sampled_from(sorted(COMMANDS)),
        args=st.lists(st.one_of(IDS, WEIRD), min_size=MOST_POSITIONAL, max_size=MOST_POSITIONAL),
        kwargs=st.dictionaries(st.sampled_from(KEYWORDS), WEIRD, max_size=2),
        actor=ACTORS,
    )
    def commands(name: str, args: List[Any], kwargs: Dict[str, Any], actor: Any) -> None:
        positional, allowed = COMMANDS[name]
        kw = {k: v for k, v in kwargs.items() if k in allowed}
        check(lambda: getattr(lib, name)(*args[:positional], actor=actor, **kw))

    @settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(name=st.sampled_from(sorted(QUERIES)), args=st.lists(WEIRD, min_size=2, max_size=2))
    def queries(name: str, args: List[Any]) -> None:
        if name == "settle" and isinstance(args[0], (int, float)) and not isinstance(args[0], bool):
            if not math.isfinite(args[0]) or args[0] > 5:
                args = [1.0]
        check(lambda: getattr(lib, name)(*args[: QUERIES[name]]))
        if name == "pause":
            check(lambda: lib.resume(args[0]))
        if name == "set_payment_outage":
            lib.set_payment_outage(False)

    commands()
    queries()
    for name in ("catalog", "rentals", "payments", "deliveries", "notices", "book_list", "member_page"):
        lib.resume(name)
    lib.set_payment_outage(False)
    consistent(lib)
    books, pages, log = lib.book_list(), [lib.member_page(m) for m in ("m-1", "m-2")], lib.events()
    lib.close()
    with lendkit.Library.open(path, background=False) as again:
        again.settle()
        assert again.events() == log
        assert again.book_list() == books, "the views equal a rebuild from the log"
        assert [again.member_page(m) for m in ("m-1", "m-2")] == pages
        consistent(again)


@settings(max_examples=150, deadline=None, database=None)
@given(
    options=st.dictionaries(
        st.sampled_from(
            [
                "welcome_points", "loan_days", "max_renewals", "durability", "payment", "notifier", "clock",
                "background", "immediate_reactions", "max_attempts", "breaker_failure_threshold", "breaker_cool_down_ms",
                "payment_timeout_ms", "retry_backoff_ms", "fault_injection",
            ]
        ),
        WEIRD,
        max_size=3,
    ),
    workers=st.one_of(st.none(), WEIRD, st.dictionaries(st.one_of(IDS, WEIRD_TEXT), st.integers(-1, 4), max_size=2)),
)
def test_fuzz_opening_options(options: Dict[str, Any], workers: Any) -> None:
    lib = check(lambda: lendkit.Library.in_memory(workers=workers, **options))
    if lib is not None:
        check(lambda: lib.register_book("b-1", "T", 1, 10, actor=LIBRARIAN))
        check(lambda: lib.join_member("m-1", "Kim", actor=LIBRARIAN))
        check(lambda: lib.reserve_book("b-1", "m-1", actor=lendkit.Member("m-1")))
        check(lambda: lib.settle(timeout=10))
        lib.close()


@settings(max_examples=150, deadline=None, database=None)
@given(value=WEIRD, other=WEIRD)
def test_fuzz_small_classes(value: Any, other: Any) -> None:
    check(lambda: lendkit.Librarian(value))
    check(lambda: lendkit.Member(value))
    clock = check(lambda: lendkit.ManualClock(value)) or lendkit.ManualClock()
    check(lambda: clock.advance_ms(value))
    check(lambda: clock.advance_days(other))
    check(lambda: clock.set(value))
    check(lambda: clock.now())
