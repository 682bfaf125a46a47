"""Holds from Python threads: the queue is one aggregate per title in the core, so threads
placing holds at once get positions 1..n, threads lending the one copy on the pickup shelf make
one loan, and a return racing a cancel gives the copy to exactly one member."""

from __future__ import annotations

import threading
from typing import Callable, List, Optional

import pytest

import lendkit

from conftest import LIBRARIAN, member


def all_out(lib: lendkit.Library, members: List[str]) -> None:
    """b-1 has one copy, lent to m-x; the members have joined."""
    lib.register_book("b-1", "Holds", 1, 10, actor=LIBRARIAN)
    for m in ["m-x", *members]:
        lib.join_member(m, m, actor=LIBRARIAN)
    lib.reserve_book("b-1", "m-x", rental_id="r-x", actor=member("m-x"))
    lib.settle()
    lib.start_loan("r-x", actor=member("m-x"))


def together(calls: List[Callable[[], None]]) -> None:
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], None]) -> None:
        barrier.wait()
        call()

    threads = [threading.Thread(target=go, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_sixteen_threads_placing_holds_get_positions_one_to_sixteen() -> None:
    members = [f"m-{i}" for i in range(16)]
    with lendkit.Library.in_memory(background=False) as lib:
        all_out(lib, members)

        def place(m: str) -> Callable[[], None]:
            def call() -> None:
                lib.place_hold("b-1", m, hold_id=f"h-{m}", actor=member(m))

            return call

        together([place(m) for m in members])
        lib.settle()
        positions = sorted(lib.member_page(m).rentals[0].position or 0 for m in members)
        assert positions == list(range(1, 17))
        assert all(lib.member_page(m).rentals[0].status == "waiting" for m in members)


def test_sixteen_threads_lending_the_copy_on_the_shelf_make_one_loan_to_its_holder() -> None:
    others = [f"m-{i}" for i in range(8)]
    with lendkit.Library.in_memory(background=False) as lib:
        all_out(lib, ["m-a", *others])
        lib.place_hold("b-1", "m-a", hold_id="h-a", actor=member("m-a"))
        lib.settle()
        lib.return_book("r-x", actor=member("m-x"))
        lib.settle()
        [shelf] = lib.hold_shelf()
        assert (shelf.hold_id, shelf.member_id) == ("h-a", "m-a")
        loans: List[str] = []
        refusals: List[Optional[str]] = []

        def collect() -> None:
            try:
                outcome = lib.collect_hold("h-a", actor=LIBRARIAN)
                loans.extend(t for t in outcome.types if t == "LoanStarted")
            except lendkit.RuleViolationError as e:
                refusals.append(e.code)

        def borrow(m: str) -> Callable[[], None]:
            def call() -> None:
                with pytest.raises(lendkit.RuleViolationError) as refused:
                    lib.reserve_book("b-1", m, actor=member(m))
                assert refused.value.code in ("HELD_FOR_OTHER", "BOOK_UNAVAILABLE")

            return call

        together([collect for _ in range(8)] + [borrow(m) for m in others])
        assert loans == ["LoanStarted"]
        assert set(refusals) <= {"INVALID_TRANSITION"} and len(refusals) == 7
        lib.settle()
        assert lib.member_page("m-a").rentals[0].status == "on_loan"
        assert lib.hold_shelf() == []


def test_a_return_racing_a_cancel_gives_the_copy_to_exactly_one_member() -> None:
    for _ in range(5):
        with lendkit.Library.in_memory(background=False) as lib:
            all_out(lib, ["m-a", "m-b"])
            lib.place_hold("b-1", "m-a", hold_id="h-a", actor=member("m-a"))
            lib.place_hold("b-1", "m-b", hold_id="h-b", actor=member("m-b"))
            lib.settle()

            def give_back() -> None:
                lib.return_book("r-x", actor=member("m-x"))
                lib.settle()

            def cancel() -> None:
                lib.cancel_hold("h-a", actor=member("m-a"))
                lib.settle()

            together([give_back, cancel])
            lib.settle()
            assert [(r.hold_id, r.member_id) for r in lib.hold_shelf()] == [("h-b", "m-b")]
            a = lib.member_page("m-a")
            assert (a.points, a.rentals[0].status, a.rentals[0].payment_status) == (100, "canceled", "refunded")


def test_hold_mistakes_are_typed_errors_and_store_nothing(lib: lendkit.Library) -> None:
    all_out(lib, ["m-a", "m-b"])
    lib.place_hold("b-1", "m-a", hold_id="h-a", actor=member("m-a"))
    lib.settle()
    head = lib.head()
    with pytest.raises(lendkit.NotFoundError) as unknown:
        lib.place_hold("b-404", "m-a", actor=member("m-a"))
    assert unknown.value.code == "BOOK_NOT_FOUND"
    with pytest.raises(lendkit.RuleViolationError) as twice:
        lib.place_hold("b-1", "m-a", actor=member("m-a"))
    assert twice.value.code == "ALREADY_HELD"
    with pytest.raises(lendkit.UnauthorizedError) as other:
        lib.cancel_hold("h-a", actor=member("m-b"))
    assert other.value.code == "NOT_HOLD_OWNER"
    with pytest.raises(lendkit.UnauthorizedError):
        lib.reorder_queue("b-1", "h-a", 1, actor=member("m-a"))
    with pytest.raises(lendkit.InvalidInputError) as outside:
        lib.reorder_queue("b-1", "h-a", 2, actor=LIBRARIAN)
    assert outside.value.code == "INVALID_INPUT"
    with pytest.raises(lendkit.InvalidInputError):
        lib.place_hold("b-1", "m-b", not_needed_after=1, actor=member("m-b"))
    with pytest.raises(lendkit.RuleViolationError) as renew:
        lib.renew_loan("r-x", actor=member("m-x"))
    assert renew.value.code == "HAS_HOLDS"
    assert lib.head() == head
