"""Every row class has exactly the fields of its row in the core's schema (docs/schema.json), from
which its stub is generated: a field the core adds, or one the binding returns but the schema
lacks, fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Set

import lendkit
from lendkit import _native

from conftest import LIBRARIAN, START_MS, member

SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "schema.json").read_text(encoding="utf-8"))
ROWS: Dict[str, Dict[str, Any]] = {row["name"]: row for row in SCHEMA["rows"]}
EVENT_TYPES = {e["type"] for e in SCHEMA["events"]}

#: What a row class has beyond its schema fields (binding-specific, hand-written in the stub).
EXTRAS: Dict[str, Set[str]] = {"Outcome": {"types"}}


def attributes(obj: object) -> Set[str]:
    """The public attributes of `obj` that are not methods."""
    return {name for name in dir(obj) if not name.startswith("_") and not callable(getattr(obj, name))}


def fits(field: Dict[str, Any], value: object) -> bool:
    if value is None:
        return bool(field["optional"])
    kind = field["kind"]
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "event_type":
        return value in EVENT_TYPES
    if kind == "enum":
        return value in field["values"]
    if kind == "object":
        return isinstance(value, dict)
    assert kind == "list", kind
    return isinstance(value, list) and all(type(item).__name__ == field["row"] for item in value)


def rows() -> Dict[str, List[object]]:
    """Real rows of every kind, from a small library that went through a loan, a late return, a
    cancellation and a notice that failed for good."""
    notices: List[lendkit.Notice] = []

    def notifier(notice: lendkit.Notice) -> None:
        if not notices:
            notices.append(notice)
            raise RuntimeError("the SMS provider is down")
        notices.append(notice)

    clock = lendkit.ManualClock(START_MS)
    found: Dict[str, List[object]] = {name: [] for name in ROWS}
    with lendkit.Library.in_memory(background=False, clock=clock, notifier=notifier, max_attempts=1) as lib:
        outcomes = [
            lib.register_book("b-1", "Domain-Driven Design", 2, 10, author="Evans", actor=LIBRARIAN),
            lib.register_book("b-2", "Refactoring", 1, 5, actor=LIBRARIAN),
            lib.join_member("m-1", "Kim", actor=LIBRARIAN),
            lib.reserve_book("b-1", "m-1", rental_id="r-1", actor=member("m-1")),
        ]
        lib.settle()
        outcomes.append(lib.start_loan("r-1", actor=LIBRARIAN))
        clock.advance_days(20)
        outcomes.append(lib.return_book("r-1", actor=LIBRARIAN))
        outcomes.append(lib.reserve_book("b-2", "m-1", rental_id="r-2", actor=member("m-1")))
        lib.settle()
        outcomes.append(lib.cancel_rental("r-2", reason="changed my mind", actor=member("m-1")))
        lib.settle()
        # A loan under stored rules (renewals left), and a blocked member.
        rules = (Path(__file__).parents[3] / "tests" / "fixtures" / "circulation-rules.toml").read_text(encoding="utf-8")
        lib.change_circulation_rules(rules, actor=LIBRARIAN)
        outcomes.append(lib.reserve_book("b-1", "m-1", rental_id="r-3", actor=member("m-1")))
        lib.settle()
        lib.start_loan("r-3", actor=LIBRARIAN)
        outcomes.append(lib.reserve_book("b-1", "m-1", rental_id="r-4", actor=member("m-1")))
        lib.settle()
        lib.start_loan("r-4", branch="main", actor=LIBRARIAN)
        clock.advance_days(30)
        lib.join_member("m-2", "Lee", actor=LIBRARIAN)
        lib.block_member("m-2", "card reported lost", actor=LIBRARIAN)
        lib.settle()
        # Holds: one on the shelf at a named branch, one at none, one waiting in line.
        lib.join_member("m-3", "Park", actor=LIBRARIAN)
        lib.join_member("m-4", "Choi", actor=LIBRARIAN)
        lib.register_book("b-3", "Holds", 1, 5, actor=LIBRARIAN)
        for who, book, hold, branch in [("m-3", "b-3", "h-1", "main"), ("m-4", "b-2", "h-2", None), ("m-3", "b-2", "h-3", None)]:
            lib.place_hold(book, who, hold_id=hold, pickup_branch=branch, actor=member(who))
            lib.settle()
        page = lib.member_page("m-1")
        found["BookRow"] += lib.book_list()
        found["MemberPage"] += [page, lib.member_page("m-2")]
        found["RentalRow"] += page.rentals + lib.member_page("m-3").rentals
        found["HoldShelfRow"] += lib.hold_shelf()
        assert len(found["HoldShelfRow"]) == 2
        found["Event"] += lib.events()
        found["Outcome"] += outcomes
        found["OverdueRow"] += lib.overdue_list()
        assert len(found["OverdueRow"]) == 2
        found["DeadLetter"] += lib.dead_letters()
        found["Notice"] += notices
        found["ConsumerStatus"] += lib.consumers()
    return found


def test_every_row_class_has_exactly_its_schema_fields() -> None:
    found = rows()
    for name, spec in ROWS.items():
        cls = getattr(_native, name)
        assert cls.__name__ == name and name in _native.__all__
        instances = found[name]
        assert instances, f"no {name} was made"
        fields = [f["name"] for f in spec["fields"]]
        for row in instances:
            assert type(row) is cls
            have = attributes(row)
            assert have == set(fields) | EXTRAS.get(name, set()), (
                f"{name}: attributes {sorted(have)} are not the schema's fields {fields} "
                "(regenerate docs/schema.json and the stubs, and return the field)"
            )
            for f in spec["fields"]:
                value = getattr(row, f["name"])
                assert fits(f, value), f"{name}.{f['name']} = {value!r} is not a {f['kind']}"
            dict_form = getattr(row, "to_dict")()
            assert set(dict_form) == set(fields), f"{name}.to_dict(): {list(dict_form)}"
        # Every optional field is seen both set and None.
        for f in spec["fields"]:
            if f["optional"]:
                seen = {getattr(row, f["name"]) is None for row in instances}
                assert seen == {True, False}, f"{name}.{f['name']} was not seen both set and None"


def test_every_native_row_class_is_in_the_schema() -> None:
    native_rows = {
        name
        for name in _native.__all__
        if isinstance(getattr(_native, name), type) and callable(getattr(getattr(_native, name), "to_dict", None))
    }
    assert native_rows == set(ROWS), "a native class with to_dict() is a row: describe it in lendkit::rows::ROWS"
