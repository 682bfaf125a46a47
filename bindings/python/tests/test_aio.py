"""lendkit.aio: the library for asyncio hosts. Every call is awaitable and never blocks the loop."""

from __future__ import annotations

import asyncio
import time
from typing import Dict, List

import pytest

import lendkit
from lendkit.aio import AsyncLibrary

LIBRARIAN = lendkit.Librarian("lib-1")


async def stocked(lib: AsyncLibrary, books: int, copies: int, members: int) -> None:
    for b in range(books):
        await lib.register_book(f"b-{b}", f"Book {b}", copies=copies, fee=1, actor=LIBRARIAN)
    for m in range(members):
        await lib.join_member(f"m-{m}", f"Member {m}", actor=LIBRARIAN)
        await lib.top_up(f"m-{m}", 100, actor=LIBRARIAN)
    await lib.settle()


@pytest.mark.asyncio
async def test_a_hundred_reservations_from_one_loop_at_once() -> None:
    async with await AsyncLibrary.in_memory(background=False) as lib:
        await stocked(lib, books=4, copies=30, members=10)
        before = (await lib.member_page("m-0")).points
        outcomes = await asyncio.gather(
            *(
                lib.reserve_book(
                    f"b-{i % 4}", f"m-{i % 10}", rental_id=f"r-{i}", actor=lendkit.Member(f"m-{i % 10}")
                )
                for i in range(100)
            )
        )
        assert [o.types for o in outcomes] == [["PointsCharged", "RentalReserved"]] * 100
        await lib.settle()
        pages = await asyncio.gather(*(lib.member_page(f"m-{m}") for m in range(10)))
        assert all(len(p.rentals) == 10 for p in pages)
        assert all(r.status == "confirmed" for p in pages for r in p.rentals)
        assert all(p.points == before - 10 for p in pages)
        events = await lib.events()
        assert sum(1 for e in events if e.type == "RentalConfirmed") == 100
        assert await lib.head() == len(events)
        assert sum(row.available for row in await lib.book_list()) == 4 * 30 - 100
    assert lib.closed


class SlowGateway:
    """A host gateway that takes its time: the loop must go on meanwhile."""

    def __init__(self) -> None:
        self.charges: Dict[str, int] = {}

    def charge(self, member_id: str, amount: int, key: str) -> str:
        time.sleep(0.3)
        self.charges[key] = amount
        return f"pay-{key}"

    def refund(self, key: str) -> None:
        pass


@pytest.mark.asyncio
async def test_the_loop_runs_while_a_command_waits_for_a_slow_gateway() -> None:
    gateway = SlowGateway()
    async with await AsyncLibrary.in_memory(background=False, payment=gateway) as lib:
        await stocked(lib, books=1, copies=2, members=1)
        ticks: List[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        try:
            outcome = await lib.reserve_book("b-0", "m-0", rental_id="r-1", actor=lendkit.Member("m-0"))
        finally:
            task.cancel()
        assert outcome.types == ["RentalReserved"]
        assert gateway.charges == {"r-1": 1}
        # The charge slept 0.3 s in a worker thread; the loop ticked all along.
        assert len(ticks) >= 10, ticks


@pytest.mark.asyncio
async def test_errors_are_the_package_exceptions() -> None:
    async with await AsyncLibrary.in_memory(background=False) as lib:
        await stocked(lib, books=1, copies=1, members=1)
        with pytest.raises(lendkit.NotFoundError) as missing:
            await lib.reserve_book("b-9", "m-0", actor=lendkit.Member("m-0"))
        assert missing.value.code == "BOOK_NOT_FOUND"
        with pytest.raises(lendkit.InvalidInputError):
            await lib.execute({"command": "reserve_book"}, actor=lendkit.Member("m-0"))
        answers = await lib.execute_batch(
            [
                {"command": "top_up", "actor": LIBRARIAN, "member_id": "m-0", "points": 5},
                {"command": "top_up", "actor": LIBRARIAN, "member_id": "m-9", "points": 5},
            ]
        )
        assert len(answers) == 2
        assert isinstance(answers[1], lendkit.NotFoundError)
    with pytest.raises(lendkit.StorageError) as closed:
        await lib.head()
    assert closed.value.code == "LIBRARY_CLOSED"


@pytest.mark.asyncio
async def test_a_file_library_opens_in_a_worker_thread(tmp_path: object) -> None:
    path = f"{tmp_path}/library.sqlite"
    async with await AsyncLibrary.open(path, background=False) as lib:
        await stocked(lib, books=1, copies=1, members=1)
        await lib.reserve_book("b-0", "m-0", rental_id="r-1", actor=lendkit.Member("m-0"))
        await lib.settle()
    async with await AsyncLibrary.open(path) as again:
        page = await again.member_page("m-0")
        assert [r.status for r in page.rentals] == ["confirmed"]
