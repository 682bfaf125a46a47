"""The library's log lines reach Python's ``logging`` under the logger ``lendkit``.

The level is the ``lendkit`` logger's effective level when a library opens; the lines carry
ids, command names and error codes, never a member's name, contact or address.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import lendkit

from conftest import LIBRARIAN, member

NAME = "Kim Secretname"
CONTACT = "kim@secret.example"
ADDRESS = "1 Secret Road, Hidden Town"


def a_day(lib: lendkit.Library) -> None:
    lib.register_book("b-1", "Dune", 1, 5, actor=LIBRARIAN)
    lib.join_member("m-1", NAME, contact=CONTACT, actor=LIBRARIAN)
    lib.reserve_book("b-1", "m-1", rental_id="r-1", delivery_address=ADDRESS, actor=member("m-1"))
    with pytest.raises(lendkit.LendkitError):
        lib.reserve_book("b-1", "m-1", rental_id="r-1", actor=member("m-2"))
    lib.settle()


@pytest.mark.parametrize("name", ["library.db", "library.sqlite"])
def test_debug_lines_reach_python_logging_without_personal_data(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lendkit")
    with lendkit.Library.open(tmp_path / name, background=False) as lib:
        a_day(lib)
    records = [r for r in caplog.records if r.name.startswith("lendkit")]
    names = {r.name for r in records}
    assert {"lendkit.command", "lendkit.policy", "lendkit.store"} <= names, names
    messages = [r.getMessage() for r in records]
    assert any(
        "command applied" in m and 'command="reserve_book"' in m for m in messages
    ), messages
    assert any("command refused" in m for m in messages), messages
    assert any(r.levelno == logging.DEBUG for r in records)
    text = "\n".join(messages)
    for secret in (NAME, "Secretname", CONTACT, "Secret Road", "Hidden Town"):
        assert secret not in text, [m for m in messages if secret in m]


def test_by_default_nothing_below_warning_crosses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lendkit")
    with lendkit.Library.open(tmp_path / "library.sqlite", background=False) as lib:
        a_day(lib)
    assert [r for r in caplog.records if r.name.startswith("lendkit")] == []
