"""immediate_reactions: the in-process policies react within the command that caused them.

Each test opens a real library file (sled or SQLite) without a background runner, so nothing
reacts unless the command itself does or ``settle()`` runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

import lendkit
from lendkit.aio import AsyncLibrary

from conftest import member, stock

STORES = ["library.db", "library.sqlite"]  # sled, SQLite


def rental_log(lib: lendkit.Library, rental_id: str) -> List[str]:
    """The types of the events stored on the rental's stream so far (the log, not a view)."""
    return [e.type for e in lib.events() if e.stream == f"rental:{rental_id}"]


@pytest.mark.parametrize("name", STORES)
def test_with_immediate_reactions_a_reservation_returns_confirmed(tmp_path: Path, name: str) -> None:
    with lendkit.Library.open(tmp_path / name, background=False, immediate_reactions=True) as lib:
        stock(lib)
        r = lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        # The outcome still holds the command's own events; the reactions follow them in the log.
        assert r.types == ["PointsCharged", "RentalReserved"]
        assert rental_log(lib, "r-1") == ["RentalReserved", "RentalConfirmed"]
        allocated = [e for e in lib.events() if e.type == "CopyAllocated"]
        assert [(e.stream, e.payload["rental"]) for e in allocated] == [("book:b-1", "r-1")]
        # The views still wait for settle.
        assert lib.member_page("m-1").rentals == []
        lib.settle()
        assert [row.status for row in lib.member_page("m-1").rentals] == ["confirmed"]
        assert rental_log(lib, "r-1") == ["RentalReserved", "RentalConfirmed"], "settle reacts no second time"


@pytest.mark.parametrize("name", STORES)
def test_by_default_a_reservation_stays_reserved_until_settle(tmp_path: Path, name: str) -> None:
    with lendkit.Library.open(tmp_path / name, background=False) as lib:
        stock(lib)
        r = lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        assert r.types == ["PointsCharged", "RentalReserved"]
        assert rental_log(lib, "r-1") == ["RentalReserved"]
        assert not [e for e in lib.events() if e.type == "CopyAllocated"]
        lib.settle()
        assert rental_log(lib, "r-1") == ["RentalReserved", "RentalConfirmed"]
        assert [row.status for row in lib.member_page("m-1").rentals] == ["confirmed"]


@pytest.mark.parametrize("name", STORES)
def test_with_immediate_reactions_the_last_copy_is_taken_at_once(tmp_path: Path, name: str) -> None:
    # The first reservation's copy is allocated before it returns, so the second member's
    # reservation of the one-copy book is refused outright, storing and charging nothing.
    with lendkit.Library.open(tmp_path / name, background=False, immediate_reactions=True) as lib:
        stock(lib, copies=1, members=2)
        lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        head = lib.head()
        with pytest.raises(lendkit.RuleViolationError) as refused:
            lib.reserve_book("b-1", "m-2", actor=member("m-2"), rental_id="r-2")
        assert refused.value.code == "BOOK_UNAVAILABLE"
        assert lib.head() == head
        lib.settle()
        assert lib.member_page("m-2").rentals == [] and lib.member_page("m-2").points == 100


@pytest.mark.parametrize("name", STORES)
def test_by_default_the_last_copy_is_taken_at_settle(tmp_path: Path, name: str) -> None:
    # Without immediate reactions the copy is still free when the second member reserves: the
    # reservation is stored and charged, then cancelled and refunded at settle.
    with lendkit.Library.open(tmp_path / name, background=False) as lib:
        stock(lib, copies=1, members=2)
        lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        r = lib.reserve_book("b-1", "m-2", actor=member("m-2"), rental_id="r-2")
        assert r.types == ["PointsCharged", "RentalReserved"]
        lib.settle()
        assert rental_log(lib, "r-2")[:2] == ["RentalReserved", "RentalCanceled"]
        [row] = lib.member_page("m-2").rentals
        assert (row.status, row.payment_status) == ("canceled", "refunded")
        assert [row.status for row in lib.member_page("m-1").rentals] == ["confirmed"]


@pytest.mark.asyncio
async def test_the_asyncio_wrapper_passes_immediate_reactions_on(tmp_path: Path) -> None:
    async with await AsyncLibrary.open(str(tmp_path / "library.sqlite"), background=False, immediate_reactions=True) as lib:
        await lib.register_book("b-1", "Book", copies=1, fee=30, actor=lendkit.Librarian("lib-1"))
        await lib.join_member("m-1", "Kim", actor=lendkit.Librarian("lib-1"))
        await lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        assert [e.type for e in await lib.events() if e.stream == "rental:r-1"] == ["RentalReserved", "RentalConfirmed"]
