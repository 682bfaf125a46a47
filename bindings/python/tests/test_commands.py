"""One command, one place: every command of the core (docs/schema.json) is a method of
lendkit.Library with the documented signature, and a bad field gets the same InvalidInputError
whichever way the command enters (its method, execute, execute_batch)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

import lendkit
from lendkit import _commands

from conftest import LIBRARIAN, stock

SCHEMA: Dict[str, Any] = json.loads((Path(__file__).parent / "../../../docs/schema.json").read_text(encoding="utf-8"))
P = inspect.Parameter


def documented(command: Dict[str, Any]) -> List[inspect.Parameter]:
    """The signature docs/schema.json promises for a command's method (after self)."""
    fields = command["fields"]
    types = {"amount": "int", "count": "int", "instant": "int", "flag": "bool"}

    def hint(f: Dict[str, Any]) -> str:
        return types.get(f["kind"], "str")

    params = [
        P(f["name"], P.POSITIONAL_OR_KEYWORD, annotation=hint(f))
        for f in fields
        if not f["optional"]
    ]
    params += [
        P(f["name"], P.KEYWORD_ONLY, default=None, annotation=f"Optional[{hint(f)}]")
        for f in fields
        if f["optional"]
    ]
    params.append(P("actor", P.KEYWORD_ONLY, annotation="Union[Librarian, Member]"))
    params.append(P("command_id", P.KEYWORD_ONLY, default=None, annotation="Optional[str]"))
    return params


@pytest.mark.parametrize("command", SCHEMA["commands"], ids=lambda c: c["name"])
def test_every_command_of_the_schema_is_a_method_with_its_documented_signature(command: Dict[str, Any]) -> None:
    method = getattr(lendkit.Library, command["name"], None)
    assert method is not None, f"lendkit.Library has no {command['name']}: run python3 scripts/generate.py"
    signature = inspect.signature(method)
    assert list(signature.parameters.values())[1:] == documented(command)
    assert signature.return_annotation == "Outcome"
    assert method.__doc__ and method.__doc__.startswith(command["doc"].split(";")[0].split(" (")[0])
    assert _commands.COMMANDS[command["name"]] == tuple(f["name"] for f in command["fields"])


def test_the_generated_names_are_the_schemas() -> None:
    assert list(_commands.EventType.__args__) == [e["type"] for e in SCHEMA["events"]]  # type: ignore[attr-defined]
    assert list(_commands.ErrorCode.__args__) == [e["code"] for e in SCHEMA["errors"]]  # type: ignore[attr-defined]
    assert list(_commands.ErrorCode.__args__) == list(lendkit.CODES)  # type: ignore[attr-defined]
    assert sorted(_commands.COMMANDS) == sorted(c["name"] for c in SCHEMA["commands"])


def test_open_and_in_memory_make_the_public_class(tmp_path: Path) -> None:
    with lendkit.Library.in_memory() as lib:
        assert type(lib) is lendkit.Library and isinstance(lib, lendkit._native.Library)
    with lendkit.Library.open(tmp_path / "lib.db") as lib:
        assert type(lib) is lendkit.Library

    class Mine(lendkit.Library):
        pass

    with Mine.in_memory() as mine:
        assert type(mine) is Mine
    with pytest.raises(TypeError, match="Library.open"):
        lendkit.Library("nope")  # type: ignore[arg-type]


def test_execute_takes_a_command_as_a_dict(lib: lendkit.Library) -> None:
    out = lib.execute({"command": "register_book", "book_id": "b-1", "title": "T", "copies": 1, "fee": 3}, actor=LIBRARIAN)
    assert out.types == ["BookRegistered"]
    again = lib.execute(
        {"command": "add_copies", "book_id": "b-1", "copies": 2}, actor=LIBRARIAN, command_id="c-1"
    )
    assert again.command_id == "c-1"
    assert lib.add_copies("b-1", copies=2, actor=LIBRARIAN, command_id="c-1") == again, "the same command"
    with pytest.raises(lendkit.InvalidInputError, match="register_book has no field \"n\""):
        lib.execute({"command": "register_book", "book_id": "b-2", "n": 1}, actor=LIBRARIAN)
    with pytest.raises(lendkit.InvalidInputError, match="is not one of"):
        lib.execute({"command": "burn_book"}, actor=LIBRARIAN)
    with pytest.raises(TypeError, match="a dict"):
        lib.execute(["register_book"], actor=LIBRARIAN)  # type: ignore[arg-type]


BAD = [
    ("register_book", {"book_id": "b-9", "title": "T", "copies": 1, "fee": True}, "fee is a boolean"),
    ("register_book", {"book_id": "b-9", "title": "T", "copies": 1, "fee": 2**64}, "fee is 18446744073709551616"),
    ("register_book", {"book_id": "b-9", "title": "T", "copies": 1, "fee": -(2**63) - 1}, "fee is -9223372036854775809"),
    ("register_book", {"book_id": "b-9", "title": "T", "copies": 1, "fee": 1.5}, "fee is 1.5"),
    ("register_book", {"book_id": "b-9", "title": "T", "copies": 1, "fee": float("nan")}, "fee is nan"),
    ("register_book", {"book_id": "b-9", "title": "T", "copies": 2**32, "fee": 1}, "copies is 4294967296"),
    ("register_book", {"book_id": "b\ud800", "title": "T", "copies": 1, "fee": 1}, "book_id is 'b\\\\ud800'"),
    ("register_book", {"book_id": b"b-9", "title": "T", "copies": 1, "fee": 1}, "book_id must be a str"),
    ("join_member", {"member_id": "m\udc00", "name": "Kim"}, "member_id is"),
    ("reserve_book", {"book_id": "b-1", "member_id": "m-1", "rental_id": "r\ud800"}, "rental_id is"),
    ("top_up", {"member_id": "m-1", "points": 0}, "points"),
    ("top_up", {"member_id": "", "points": 1}, "member_id"),
]


@pytest.mark.parametrize("name, fields, says", BAD, ids=[f"{n}-{s}" for n, _, s in BAD])
def test_the_same_bad_field_is_the_same_error_whichever_way_it_enters(
    lib: lendkit.Library, name: str, fields: Dict[str, Any], says: str
) -> None:
    stock(lib)
    head = lib.head()
    required = [f["name"] for c in SCHEMA["commands"] if c["name"] == name for f in c["fields"] if not f["optional"]]
    positional = [fields[k] for k in required]
    keywords = {k: v for k, v in fields.items() if k not in required}
    with pytest.raises(lendkit.InvalidInputError, match=says) as by_method:
        getattr(lib, name)(*positional, **keywords, actor=LIBRARIAN)
    with pytest.raises(lendkit.InvalidInputError) as by_execute:
        lib.execute({"command": name, **fields}, actor=LIBRARIAN)
    [by_batch] = lib.execute_batch([{"command": name, "actor": LIBRARIAN, **fields}])
    assert isinstance(by_batch, lendkit.InvalidInputError)
    assert by_method.value.code == by_execute.value.code == by_batch.code == "INVALID_INPUT"
    assert str(by_method.value) == str(by_execute.value) == str(by_batch)
    assert lib.head() == head, "nothing was stored"


def test_a_bad_command_id_is_refused_the_same_way_everywhere(lib: lendkit.Library) -> None:
    with pytest.raises(lendkit.InvalidInputError, match="command_id is") as by_method:
        lib.join_member("m-1", "Kim", actor=LIBRARIAN, command_id="c\ud800")
    with pytest.raises(lendkit.InvalidInputError) as by_execute:
        lib.execute({"command": "join_member", "member_id": "m-1", "name": "Kim"}, actor=LIBRARIAN, command_id="c\ud800")
    [by_batch] = lib.execute_batch(
        [{"command": "join_member", "actor": LIBRARIAN, "command_id": "c\ud800", "member_id": "m-1", "name": "Kim"}]
    )
    assert str(by_method.value) == str(by_execute.value) == str(by_batch)
    assert lib.head() == 0
