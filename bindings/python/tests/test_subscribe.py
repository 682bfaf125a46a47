"""subscribe(): every committed event, in order, on the background thread."""

from __future__ import annotations

import sys
import threading
from typing import Any, List

import pytest

import lendkit

from conftest import member, stock


def test_a_subscriber_gets_every_committed_event_in_order_on_the_background_thread() -> None:
    seen: List[lendkit.Event] = []
    threads = set()

    def on_event(e: lendkit.Event) -> None:
        threads.add(threading.get_ident())
        seen.append(e)

    with lendkit.Library.in_memory() as lib:
        stock(lib)
        lib.settle()
        head = lib.head()
        with lib.subscribe(on_event) as sub:
            assert sub.active and "active" in repr(sub)
            lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
            lib.settle(timeout=20)
            assert seen == lib.events(from_position=head + 1), "exactly the events since subscribing"
            assert [e.type for e in seen][:2] == ["PointsCharged", "RentalReserved"]
            assert "RentalConfirmed" in [e.type for e in seen]
            assert threads and threading.get_ident() not in threads
        assert not sub.active and "closed" in repr(sub)
        count = len(seen)
        lib.top_up("m-1", 5, actor=lendkit.Librarian("lib-1"))
        lib.settle(timeout=20)
        assert len(seen) == count, "a closed subscription gets nothing more"


def test_a_raising_subscriber_is_reported_and_never_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    good: List[str] = []

    def bad(e: lendkit.Event) -> None:
        raise ValueError(f"cannot handle {e.type}")

    with lendkit.Library.in_memory() as lib:
        bad_sub = lib.subscribe(bad)
        lib.subscribe(lambda e: good.append(e.type))
        stock(lib)
        lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        lib.settle(timeout=20)
        assert "RentalConfirmed" in good, "other subscribers go on"
        assert reported and isinstance(reported[0].exc_value, ValueError)
        assert lib.member_page("m-1").rentals[0].status == "confirmed"
        bad_sub.close()
        bad_sub.close()


def test_without_a_background_runner_subscribers_run_during_settle() -> None:
    seen: List[int] = []
    with lendkit.Library.in_memory(background=False) as lib:
        lib.subscribe(lambda e: seen.append(threading.get_ident()))
        stock(lib)
        assert seen and set(seen) == {threading.get_ident()}
        n = len(seen)
        lib.top_up("m-1", 1, actor=lendkit.Librarian("lib-1"))
        assert len(seen) == n, "nothing is delivered before settle"
        lib.settle()
        assert len(seen) == n + 1


def test_subscribe_checks_its_argument() -> None:
    lib = lendkit.Library.in_memory()
    with pytest.raises(TypeError, match="callable"):
        lib.subscribe(42)  # type: ignore[arg-type]
    lib.close()
    with pytest.raises(lendkit.StorageError):
        lib.subscribe(print)


def test_closing_frees_subscribers_that_refer_to_the_library() -> None:
    import gc
    import weakref

    lib = lendkit.Library.in_memory()

    def on_event(e: lendkit.Event) -> None:
        lib.book_list()

    sub = lib.subscribe(on_event)
    watch = weakref.ref(on_event)
    del on_event
    lib.close()
    assert not sub.active
    del lib
    gc.collect()
    assert watch() is None


@pytest.mark.parametrize("background", [True, False])
def test_subscribing_late_closing_and_subscribing_again(background: bool) -> None:
    # The hub subscribes in the core only while some callback is subscribed: a callback that
    # comes after others have left must still get exactly the events committed after it came.
    first: List[int] = []
    second: List[int] = []
    with lendkit.Library.in_memory(background=background) as lib:
        stock(lib)
        lib.settle(timeout=20)
        a = lib.subscribe(lambda e: first.append(e.position))
        b = lib.subscribe(lambda e: second.append(e.position))
        lib.top_up("m-1", 1, actor=lendkit.Librarian("lib-1"))
        lib.settle(timeout=20)
        assert first == second == [lib.head()]
        a.close()
        lib.top_up("m-1", 1, actor=lendkit.Librarian("lib-1"))
        lib.settle(timeout=20)
        assert len(first) == 1, "a closed subscription gets nothing more"
        assert second[-1] == lib.head() and len(second) == 2, "the other one goes on"
        b.close()
        lib.top_up("m-1", 1, actor=lendkit.Librarian("lib-1"))
        lib.settle(timeout=20)
        assert len(second) == 2
        head = lib.head()
        late: List[int] = []
        with lib.subscribe(lambda e: late.append(e.position)):
            # Nothing new since subscribing: settle returns at once instead of waiting for
            # events no subscriber was owed.
            lib.settle(timeout=5)
            assert late == []
            lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-late")
            lib.settle(timeout=20)
            assert late == [e.position for e in lib.events(from_position=head + 1)]
            assert len(late) >= 3


def test_subscriptions_come_and_go_from_many_threads_while_commands_run() -> None:
    # Subscribing and closing race with each other and with the runner's deliveries; whatever
    # the interleaving, a subscription that stays gets every event committed after it came.
    errors: List[BaseException] = []
    with lendkit.Library.in_memory() as lib:
        stock(lib)
        lib.settle(timeout=20)
        stop = threading.Event()

        def churn() -> None:
            try:
                while not stop.is_set():
                    with lib.subscribe(lambda e: None):
                        pass
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=churn) for _ in range(3)]
        for t in threads:
            t.start()
        kept: List[int] = []
        head = lib.head()
        with lib.subscribe(lambda e: kept.append(e.position)):
            for i in range(20):
                lib.top_up("m-1", 1, actor=lendkit.Librarian("lib-1"))
            lib.settle(timeout=20)
            stop.set()
            for t in threads:
                t.join()
            assert not errors, errors
            assert kept == [e.position for e in lib.events(from_position=head + 1)]
            assert len(kept) >= 20
