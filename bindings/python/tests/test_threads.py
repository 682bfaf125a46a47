"""Threads and the GIL: one library shared by many threads, the GIL released in every call, and
Python callbacks re-acquiring it without deadlocks."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

import pytest

import lendkit

from conftest import LIBRARIAN, member, stock

THREADS = 8
COPIES = 3


def run_all(work: List[Callable[[], None]], timeout: float = 60) -> None:
    threads = [threading.Thread(target=w, daemon=True) for w in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"


@pytest.mark.parametrize("store", ["memory", "sled"])
def test_eight_threads_reserve_the_last_copies(store: str, tmp_path: Path) -> None:
    notices: List[lendkit.Notice] = []
    seen: List[int] = []
    if store == "sled":
        lib = lendkit.Library.open(tmp_path / "race.db", notifier=notices.append)
    else:
        lib = lendkit.Library.in_memory(notifier=notices.append)
    with lib:
        sub = lib.subscribe(lambda e: seen.append(e.position))
        stock(lib, copies=COPIES, members=THREADS)
        start = threading.Barrier(THREADS)
        outcomes: Dict[str, str] = {}

        def reserve(i: int) -> Callable[[], None]:
            def go() -> None:
                start.wait()
                try:
                    lib.reserve_book("b-1", f"m-{i}", actor=member(f"m-{i}"), rental_id=f"r-{i}")
                    outcomes[f"m-{i}"] = "reserved"
                except lendkit.RuleViolationError as e:
                    assert e.code == "BOOK_UNAVAILABLE"
                    outcomes[f"m-{i}"] = "unavailable"

            return go

        run_all([reserve(i) for i in range(1, THREADS + 1)])
        lib.settle(timeout=30)
        pages = [lib.member_page(f"m-{i}") for i in range(1, THREADS + 1)]
        statuses = [p.rentals[0].status if p.rentals else "none" for p in pages]
        assert statuses.count("confirmed") == COPIES, statuses
        for page, status in zip(pages, statuses):
            if status == "confirmed":
                assert page.points == 70
            else:
                assert page.points == 100, f"{page.member_id} was not refunded: {page}"
                if page.rentals:
                    assert (page.rentals[0].status, page.rentals[0].payment_status) == ("canceled", "refunded")
        book = lib.book_list()[0]
        assert (book.available, book.reserved, book.copies) == (0, COPIES, COPIES)
        assert sorted(seen) == list(range(seen[0], lib.head() + 1)), "every event reached the subscriber once"
        assert sum(1 for n in notices if n.kind == "RentalConfirmed") == COPIES
        sub.close()


def test_the_gil_is_released_while_the_core_waits_on_a_python_gateway() -> None:
    """A charge blocks in Python on another thread; while it does, this thread keeps running
    Python and calling the library. If any call held the GIL, this would deadlock."""
    entered = threading.Event()
    release = threading.Event()

    class BlockingGateway:
        def charge(self, member_id: str, amount: int, key: str) -> str:
            entered.set()
            assert release.wait(20), "never released"
            return f"pay-{key}"

        def refund(self, key: str) -> None:
            pass

    with lendkit.Library.in_memory(payment=BlockingGateway(), payment_timeout_ms=None) as lib:
        stock(lib)
        result: List[lendkit.Outcome] = []
        t = threading.Thread(
            target=lambda: result.append(lib.reserve_book("b-1", "m-1", actor=member("m-1"))), daemon=True
        )
        t.start()
        assert entered.wait(20), "the gateway was never called"
        # The reserving thread is inside the core, waiting for the gateway: Python runs on.
        counter = 0
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            counter += 1
        assert counter > 1000
        assert lib.book_list()[0].available == 1
        assert lib.member_page("m-1").points == 100
        release.set()
        t.join(20)
        assert not t.is_alive() and result and result[0].types == ["RentalReserved"]
        assert result[0].events[0].payload["payment_id"] == f"pay-{result[0].rental_id}"


def test_a_python_thread_runs_during_a_long_core_call(tmp_path: Path) -> None:
    """While one thread runs many durable commands (each waits for a disk flush), a pure-Python
    thread keeps counting: the GIL is not held across the core's work."""
    with lendkit.Library.open(tmp_path / "busy.db") as lib:
        lib.register_book("b-1", "T", 1, 10, actor=LIBRARIAN)
        stop = threading.Event()
        ticks = [0]

        def count() -> None:
            while not stop.is_set():
                ticks[0] += 1

        counter = threading.Thread(target=count, daemon=True)
        counter.start()
        before = ticks[0]
        for i in range(30):
            lib.add_copies("b-1", 1, actor=LIBRARIAN)
            lib.settle()
        stop.set()
        counter.join(10)
        assert ticks[0] - before > 1000


def test_callbacks_call_back_into_the_library_without_deadlock() -> None:
    """Subscribers and notifiers run on the library's threads and may call the library."""
    answers: List[int] = []
    errors: List[BaseException] = []

    with lendkit.Library.in_memory() as lib:

        def notifier(notice: lendkit.Notice) -> None:
            answers.append(len(lib.book_list()))
            try:
                lib.settle()
            except RuntimeError as e:  # settle() cannot wait for the call it is inside
                errors.append(e)

        def on_event(event: lendkit.Event) -> None:
            if event.type == "RentalConfirmed":
                lib.top_up(event.payload["member"], 5, actor=LIBRARIAN, command_id=f"bonus-{event.event_id}")
                lib.settle()

        lib2 = lendkit.Library.in_memory(notifier=notifier)
        with lib2:
            stock(lib2)
            lib2.reserve_book("b-1", "m-1", actor=member("m-1"))
            lib2.settle(timeout=20)
            assert answers and errors and "settle() cannot be called" in str(errors[0])
        stock(lib)
        sub = lib.subscribe(on_event)
        lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        lib.settle(timeout=20)
        deadline = time.monotonic() + 20
        while lib.member_page("m-1").points != 75 and time.monotonic() < deadline:
            lib.settle(timeout=20)
        assert lib.member_page("m-1").points == 75  # 100 - 30 + the 5 bonus points
        sub.close()
