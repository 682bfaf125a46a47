"""Library.connect: two libraries in this process, connected to one PostgreSQL schema and one
NATS namespace (as two FastAPI workers would be), serve one library: the saga runs once, the
notices reach the one process with a notifier, both processes' views agree with a fresh one.

Needs LENDKIT_PG_URL and LENDKIT_NATS_URL (set by .ci/run); without them the tests skip,
saying so."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Iterator, List, Tuple

import pytest

import lendkit
from conftest import LIBRARIAN, member

PG = os.environ.get("LENDKIT_PG_URL", "")
NATS = os.environ.get("LENDKIT_NATS_URL", "")

needs_servers = pytest.mark.skipif(
    not (PG and NATS), reason="LENDKIT_PG_URL or LENDKIT_NATS_URL is not set (needs PostgreSQL and NATS)"
)


@pytest.fixture
def name() -> Iterator[str]:
    """A schema and namespace of this test's own, removed at its end."""
    n = f"lk_py_{os.getpid()}_{time.monotonic_ns() % 1_000_000}"
    lendkit.Library.drop_connected(PG, NATS, name=n)
    yield n
    lendkit.Library.drop_connected(PG, NATS, name=n)


def settle_all(libs: List[lendkit.Library]) -> None:
    """Settles each library in turn until every view has reached the log's head and a round
    stored nothing new (each process's settle is its own share of the work)."""
    deadline = time.monotonic() + 60
    while True:
        before = libs[0].head()
        for lib in libs:
            lib.settle()
        head = libs[0].head()
        views = [c for lib in libs for c in lib.consumers() if c.name in ("book_list", "member_pages")]
        if head == before and all(c.checkpoint >= head for c in views):
            return
        assert time.monotonic() < deadline, "the libraries did not settle"
        time.sleep(0.02)


@needs_servers
def test_two_connected_libraries_run_one_saga(name: str) -> None:
    notices: List[lendkit.Notice] = []
    a = lendkit.Library.connect(PG, NATS, name=name, background=False, notifier=notices.append)
    b = lendkit.Library.connect(PG, NATS, name=name, background=False)
    try:
        a.register_book("isbn-1", "Domain-Driven Design", 2, 30, actor=LIBRARIAN)
        pairs: List[Tuple[lendkit.Library, str]] = [(a, "m-0"), (b, "m-1"), (a, "m-2"), (b, "m-3")]
        for lib, m in pairs:
            lib.join_member(m, f"Member {m}", actor=LIBRARIAN)
        for lib, m in pairs:
            lib.reserve_book("isbn-1", m, actor=member(m))
        settle_all([b, a])

        types = Counter(e.type for e in a.events())
        assert types["RentalConfirmed"] == 2
        assert types["RentalCanceled"] == 2
        assert types["PointsRefunded"] == 2
        positions = [e.position for e in a.events()]
        assert positions == list(range(1, len(positions) + 1))
        # The notices went to the one process with a notifier, each once.
        kinds = Counter(n.kind for n in notices)
        assert kinds["RentalReserved"] == 4
        assert kinds["RentalConfirmed"] == 2

        fresh = lendkit.Library.connect(PG, NATS, name=name, background=False)
        try:
            settle_all([fresh, a, b])
            for lib in (a, b):
                assert [r.available for r in lib.book_list()] == [r.available for r in fresh.book_list()]
                for _, m in pairs:
                    mine, theirs = lib.member_page(m), fresh.member_page(m)
                    assert (mine.points, [r.status for r in mine.rentals]) == (
                        theirs.points,
                        [r.status for r in theirs.rentals],
                    )
            assert sorted(fresh.member_page(m).points for _, m in pairs) == [70, 70, 100, 100]
        finally:
            fresh.close()
    finally:
        a.close()
        b.close()


@needs_servers
def test_connect_refuses_what_it_cannot_do(name: str) -> None:
    with pytest.raises(lendkit.InvalidInputError):
        lendkit.Library.connect(PG, NATS, name=name, immediate_reactions=True)
    with pytest.raises(lendkit.StorageError) as refused:
        lendkit.Library.connect(PG, "nats://127.0.0.1:1", name=name, background=False)
    assert "nats://127.0.0.1:1" in str(refused.value)
    with pytest.raises(lendkit.StorageError):
        lendkit.Library.connect("postgres://postgres@127.0.0.1:1/test", NATS, name=name)


@needs_servers
def test_an_async_library_connects_too(name: str) -> None:
    import asyncio

    from lendkit.aio import AsyncLibrary

    async def run() -> int:
        async with await AsyncLibrary.connect(PG, NATS, name=name, background=False) as lib:
            await lib.join_member("m-1", "Kim", actor=LIBRARIAN)
            await lib.settle()
            page: lendkit.MemberPage = await lib.member_page("m-1")
            points: int = page.points
            return points

    assert asyncio.run(run()) == 100
