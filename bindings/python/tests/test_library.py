"""The Library object: lifetime, persistence, commands, queries and the value objects."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional, List

import pytest

import lendkit
from lendkit import _native

from conftest import LIBRARIAN, START_MS, member, stock


def test_context_manager_closes(tmp_path: Path) -> None:
    with lendkit.Library.open(tmp_path / "lib.db") as lib:
        assert not lib.closed
        assert "open" in repr(lib) and "lib.db" in repr(lib)
        stock(lib)
    assert lib.closed and "closed" in repr(lib)
    with pytest.raises(lendkit.StorageError, match="closed") as caught:
        lib.book_list()
    assert caught.value.code == "LIBRARY_CLOSED" and not caught.value.retryable
    lib.close()  # closing twice is harmless


@pytest.mark.parametrize("name,store", [("library.db", None), ("library.sqlite", None), ("lib", "sqlite")])
def test_a_library_survives_close_and_reopen_on_either_store(tmp_path: Path, name: str, store: Optional[str]) -> None:
    path = tmp_path / name
    with lendkit.Library.open(path, store=store) as lib:  # type: ignore[arg-type]
        stock(lib, copies=2)
        r = lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        lib.settle()
        events = lib.events()
        page = lib.member_page("m-1")
        books = lib.book_list()
    assert path.exists()
    # sled keeps a folder, SQLite one file (and its WAL beside it); reopening finds which.
    assert path.is_dir() == (name == "library.db")
    with lendkit.Library.open(str(path)) as again:
        again.settle()
        assert again.events() == events
        assert again.member_page("m-1") == page
        assert again.book_list() == books
        assert page.points == 70 and page.rentals[0].status == "confirmed"
        # the rental id is taken for good, and its command id still answers with its events
        with pytest.raises(lendkit.ConflictError):
            again.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        retried = again.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1", command_id=r.command_id)
        assert retried.events == r.events


def test_an_unknown_store_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(lendkit.InvalidInputError) as bad:
        lendkit.Library.open(tmp_path / "x", store="csv")  # type: ignore[arg-type]
    assert "sqlite" in str(bad.value)
    assert not (tmp_path / "x").exists()


def test_a_text_file_is_not_a_library_on_either_store(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("not a library")
    with pytest.raises(lendkit.StorageError) as refused:
        lendkit.Library.open(path)
    assert refused.value.code == "NOT_A_LIBRARY"
    assert path.read_text() == "not a library"


def test_periodic_durability_and_flush(tmp_path: Path) -> None:
    with lendkit.Library.open(tmp_path / "fast.db", durability=("periodic", 50)) as lib:
        stock(lib)
        lib.flush()
    with lendkit.Library.open(tmp_path / "fast.db", durability="every_commit") as lib:
        lib.settle()
        assert [b.book_id for b in lib.book_list()] == ["b-1"]


def test_commands_return_their_events(lib: lendkit.Library) -> None:
    registered = lib.register_book("b-1", "Domain-Driven Design", 2, 30, author="Eric Evans", actor=LIBRARIAN)
    assert registered.types == ["BookRegistered"] and registered.rental_id is None
    e = registered.events[0]
    assert (e.type, e.stream, e.version, e.position) == ("BookRegistered", "book:b-1", 1, 1)
    assert e.payload == {"book": "b-1", "title": "Domain-Driven Design", "author": "Eric Evans", "copies": 2, "fee": 30}
    assert e.actor == "librarian:lib-1" and e.correlation_id == "b-1" and e.event_id == "book:b-1#1"
    assert e.causation_id == registered.command_id == e.command_id
    assert e.to_dict()["payload"] == e.payload and e.to_dict()["type"] == "BookRegistered"
    joined = lib.join_member("m-1", "Kim", contact="kim@example.org", actor=LIBRARIAN)
    assert joined.types == ["MemberJoined", "AccountOpened"]
    assert lib.add_copies("b-1", 1, actor=LIBRARIAN).types == ["CopiesAdded"]
    assert lib.top_up("m-1", 50, actor=LIBRARIAN).types == ["PointsToppedUp"]
    reserved = lib.reserve_book("b-1", "m-1", actor=member("m-1"), delivery_address="1 Main St")
    assert reserved.rental_id and reserved.types == ["PointsCharged", "RentalReserved"]
    lib.settle()
    rental = reserved.rental_id
    assert lib.member_page("m-1").rentals[0].delivery_status == "started"
    assert lib.mark_delivered(rental, actor=LIBRARIAN).types == ["Delivered"]
    lib.settle()
    assert lib.member_page("m-1").rentals[0].status == "on_loan"
    assert lib.renew_loan(rental, actor=member("m-1")).types == ["LoanRenewed"]
    assert lib.return_book(rental, actor=member("m-1")).types == ["BookReturned"]
    second = lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-2")
    lib.settle()
    assert lib.start_loan("r-2", actor=member("m-1")).types == ["LoanStarted"]
    assert second.rental_id == "r-2"
    third = lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-3")
    canceled = lib.cancel_rental(third.rental_id or "", actor=member("m-1"), reason="changed my mind")
    assert canceled.events[0].payload["reason"] == "changed my mind"
    lib.settle()
    assert [r.status for r in lib.member_page("m-1").rentals] == ["returned", "on_loan", "canceled"]


def test_a_resent_command_id_acts_once(lib: lendkit.Library) -> None:
    stock(lib)
    first = lib.top_up("m-1", 10, actor=LIBRARIAN, command_id="top-up-1")
    head = lib.head()
    again = lib.top_up("m-1", 10, actor=LIBRARIAN, command_id="top-up-1")
    assert again == first and lib.head() == head
    lib.settle()
    assert lib.member_page("m-1").points == 110


def test_rows_are_frozen_values(lib: lendkit.Library) -> None:
    stock(lib)
    row = lib.book_list()[0]
    assert row == lib.book_list()[0] and hash(row) == hash(lib.book_list()[0])
    assert row.to_dict() == {
        "book_id": "b-1", "title": "Book b-1", "author": None, "fee": 30, "copies": 1, "available": 1,
        "reserved": 0, "on_loan": 0, "status": "available", "last_activity": "BookRegistered",
    }
    assert repr(row).startswith("BookRow(book_id='b-1', title='Book b-1', author=None, fee=30")
    with pytest.raises(AttributeError):
        row.copies = 5  # type: ignore[misc]
    page = lib.member_page("m-1")
    assert page.to_dict() == {
        "member_id": "m-1", "name": "Member 1", "points": 100, "rentals": [], "fees_owed": 0, "blocked": None,
    }
    assert repr(page) == "MemberPage(member_id='m-1', name='Member 1', points=100, rentals=[], fees_owed=0, blocked=None)"
    events = lib.events()
    assert events[0] != events[1] and events[0] == lib.events(from_position=1, limit=1)[0]
    assert {e.position for e in events} == set(range(1, len(events) + 1))
    payload = events[0].payload
    payload["book"] = "changed"
    assert events[0].payload["book"] == "b-1", "payload is a fresh dict: the event stays unchanged"
    assert lib.events(from_position=2) == events[1:]
    assert "Event(position=1, type='BookRegistered'" in repr(events[0])
    status = lib.consumers()
    assert {c.name for c in status} >= {"catalog", "rentals", "payments", "notices", "book_list", "member_page"}
    assert all(c.checkpoint == lib.head() for c in status if not c.paused)


def test_actors_are_values() -> None:
    assert lendkit.Librarian("lib-1") == lendkit.Librarian("lib-1") != lendkit.Member("lib-1")
    assert {lendkit.Member("m-1"), lendkit.Member("m-1")} == {lendkit.Member("m-1")}
    assert repr(lendkit.Member("m-1")) == "Member('m-1')" and str(lendkit.Librarian("x")) == "librarian:x"
    assert lendkit.Member("m-1").id == "m-1"


def test_pause_resume_and_redeliver(lib: lendkit.Library) -> None:
    stock(lib)
    lib.pause("catalog")
    r = lib.reserve_book("b-1", "m-1", actor=member("m-1"))
    lib.settle()
    assert lib.member_page("m-1").rentals[0].status == "reserved"
    assert lib.book_list()[0].available == 1
    lib.resume("catalog")
    lib.settle()
    assert lib.member_page("m-1").rentals[0].status == "confirmed"
    head = lib.head()
    lib.redeliver("catalog", r.events[0].position)
    lib.settle()
    assert lib.head() == head, "a redelivered event changes nothing twice"


def test_dead_letters_and_replay() -> None:
    clock = lendkit.ManualClock(START_MS)
    failing = {"on": True}

    def notifier(notice: lendkit.Notice) -> None:
        if failing["on"]:
            raise ConnectionError("sms gateway down")

    with lendkit.Library.in_memory(background=False, clock=clock, notifier=notifier, max_attempts=2) as lib:
        stock(lib)
        lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        for _ in range(4):
            lib.settle()
            clock.advance_ms(60_000)
        letters = lib.dead_letters()
        assert letters and all(d.consumer == "notices" for d in letters)
        assert "ConnectionError: sms gateway down" in letters[0].error
        assert lib.member_page("m-1").rentals[0].status == "confirmed", "notices never block rentals"
        failing["on"] = False
        lib.replay_dead_letter(letters[0].id)
        assert len(lib.dead_letters()) == len(letters) - 1


def test_background_runner_reacts_without_settle() -> None:
    with lendkit.Library.in_memory() as lib:
        stock(lib)
        lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        lib.settle(timeout=10)
        assert lib.member_page("m-1").rentals[0].status == "confirmed"


def test_settle_timeout_raises_timeout_error() -> None:
    import threading

    release = threading.Event()

    class SlowGateway:
        def charge(self, member_id: str, amount: int, key: str) -> None:
            return None

        def refund(self, key: str) -> None:
            release.wait(10)

    with lendkit.Library.in_memory(background=False, payment=SlowGateway(), payment_timeout_ms=None) as lib:
        stock(lib)
        r = lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        lib.settle()
        lib.cancel_rental(r.rental_id or "", actor=member("m-1"))
        with pytest.raises(TimeoutError):
            lib.settle(timeout=0.2)
        release.set()
        lib.settle(timeout=10)
        assert lib.member_page("m-1").rentals[0].payment_status == "refunded"


def test_signature_defaults_are_the_cores() -> None:
    defaults = _native.config_defaults()
    for method in (lendkit.Library.open, lendkit.Library.in_memory):
        params = inspect.signature(method).parameters
        for name, value in defaults.items():
            assert params[name].default == value, (
                f"{method.__name__}({name}=...) defaults to {params[name].default!r}, the core to {value!r}: "
                f"change the #[pyo3(signature)] in src/library.rs and the stub"
            )


def test_the_wheel_is_abi3() -> None:
    assert _native.__file__ is not None and ".abi3." in Path(_native.__file__).name


def runner_threads(expect: int = -1) -> int:
    """How many background runners this process has (waiting up to 5 s for `expect`: a new
    thread names itself only once it runs)."""
    import time

    deadline = time.monotonic() + 5
    while True:
        names = []
        for task in Path("/proc/self/task").iterdir():
            try:
                names.append((task / "comm").read_text())
            except OSError:  # the thread ended meanwhile
                pass
        n = sum(1 for name in names if name.startswith("lendkit-consume"))
        if n == expect or expect < 0 or time.monotonic() > deadline:
            return n
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts threads through /proc")
def test_dropping_an_open_library_stops_its_runner() -> None:
    import gc

    gc.collect()
    before = runner_threads()
    notices: List[lendkit.Notice] = []
    lib = lendkit.Library.in_memory(notifier=notices.append)
    assert runner_threads(before + 1) == before + 1
    stock(lib)
    lib.reserve_book("b-1", "m-1", actor=member("m-1"))
    del lib  # the runner may be inside the notifier, waiting for the GIL: no deadlock
    gc.collect()
    assert runner_threads(before) == before


def test_the_interpreter_exits_cleanly_with_libraries_left_open(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = """
import time, lendkit
lib = lendkit.Library.open("left-open.db", notifier=lambda n: time.sleep(0.01))
lib.subscribe(lambda e: lib.book_list())          # a cycle through the library itself
staff = lendkit.Librarian("lib-1")
lib.register_book("b-1", "T", 2, 10, actor=staff)
lib.join_member("m-1", "Kim", actor=staff)
lib.reserve_book("b-1", "m-1", actor=lendkit.Member("m-1"))
print("done")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "done\n", done.stderr
    with lendkit.Library.open(tmp_path / "left-open.db") as lib:
        lib.settle()
        assert lib.member_page("m-1").rentals[0].status == "confirmed"
