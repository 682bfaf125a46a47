"""The promises of issue 12, through the Python API: one effect per command id, no caller acts
as the system, reads follow the actor, numbers and strings mean the same in every language."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import List

import pytest

import lendkit

from conftest import LIBRARIAN, START_MS, member, stock

MAX_AMOUNT = 2**53 - 1


def test_a_retried_reservation_without_a_rental_id_charges_once(lib: lendkit.Library) -> None:
    stock(lib, copies=3)
    first = lib.reserve_book("b-1", "m-1", actor=member("m-1"), command_id="c-77")
    again = lib.reserve_book("b-1", "m-1", actor=member("m-1"), command_id="c-77")
    assert again.rental_id == first.rental_id
    assert [e.position for e in again.events] == [e.position for e in first.events]
    lib.settle()
    page = lib.member_page("m-1")
    assert page.points == 70 and len(page.rentals) == 1
    assert [e.type for e in lib.events()].count("PointsCharged") == 1


def test_a_command_id_reused_for_another_command_is_refused(lib: lendkit.Library) -> None:
    stock(lib, copies=3, members=2)
    lib.reserve_book("b-1", "m-1", actor=member("m-1"), command_id="c-1")
    head = lib.head()
    with pytest.raises(lendkit.ConflictError) as reused:
        lib.reserve_book("b-1", "m-2", actor=member("m-2"), command_id="c-1")
    assert reused.value.code == "COMMAND_ID_REUSED" and not reused.value.retryable
    with pytest.raises(lendkit.ConflictError, match="already used"):
        lib.top_up("m-1", 5, actor=LIBRARIAN, command_id="c-1")
    assert lib.head() == head


def test_sixteen_threads_with_one_command_id_make_one_rental() -> None:
    with lendkit.Library.in_memory(background=False) as lib:
        stock(lib, copies=20)
        barrier = threading.Barrier(16)
        rentals: List[str] = []

        def reserve() -> None:
            barrier.wait()
            rental = lib.reserve_book("b-1", "m-1", actor=member("m-1"), command_id="c-once").rental_id
            assert rental is not None
            rentals.append(rental)

        threads = [threading.Thread(target=reserve) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lib.settle()
        assert len(rentals) == 16 and len(set(rentals)) == 1
        assert lib.member_page("m-1").points == 70
        assert [e.type for e in lib.events()].count("RentalReserved") == 1


def test_reads_follow_the_actor(lib: lendkit.Library) -> None:
    stock(lib, members=2)
    lib.reserve_book("b-1", "m-1", actor=member("m-1"))
    lib.settle()
    assert lib.member_page("m-1", actor=member("m-1")).points == 70
    assert lib.member_page("m-1", actor=LIBRARIAN).points == 70
    assert lib.member_page("m-1").points == 70  # no actor: the host is trusted
    with pytest.raises(lendkit.UnauthorizedError) as denied:
        lib.member_page("m-1", actor=member("m-2"))
    assert denied.value.code == "UNAUTHORIZED"
    assert len(lib.book_list(actor=member("m-2"))) == 1
    for read in (
        lambda: lib.events(actor=member("m-1")),
        lambda: lib.head(actor=member("m-1")),
        lambda: lib.dead_letters(actor=member("m-1")),
        lambda: lib.replay_dead_letter("x", actor=member("m-1")),
        lambda: lib.consumers(actor=member("m-1")),
    ):
        with pytest.raises(lendkit.UnauthorizedError):
            read()
    assert lib.events(actor=LIBRARIAN) and lib.head(actor=LIBRARIAN) > 0
    assert lib.dead_letters(actor=LIBRARIAN) == []


@pytest.mark.parametrize(
    "fee, says",
    [(True, "fee must be a whole number"), (False, "fee must be a whole number"), (1.0, "fee must be a whole number"),
     (2**63, "largest amount"), (2**64, "fee is 18446744073709551616"), (MAX_AMOUNT + 1, "largest amount"), (-5, "fee is -5")],
)
def test_amounts_are_exact_in_every_language(lib: lendkit.Library, fee: object, says: str) -> None:
    with pytest.raises(lendkit.InvalidInputError, match=says) as bad:
        lib.register_book("b-x", "T", 1, fee, actor=LIBRARIAN)  # type: ignore[arg-type]
    assert bad.value.code == "INVALID_INPUT"
    assert lib.head() == 0


def test_a_top_up_keeps_room_for_every_refund(lib: lendkit.Library) -> None:
    stock(lib, fee=10)
    r = lib.reserve_book("b-1", "m-1", actor=member("m-1"))
    assert r.rental_id is not None
    lib.settle()
    with pytest.raises(lendkit.InvalidInputError, match="largest amount"):
        lib.top_up("m-1", MAX_AMOUNT - 99, actor=LIBRARIAN)
    lib.top_up("m-1", MAX_AMOUNT - 100, actor=LIBRARIAN)
    lib.cancel_rental(r.rental_id, actor=member("m-1"))
    lib.settle()
    assert lib.member_page("m-1").points == MAX_AMOUNT
    answers = lib.execute_batch([
        {"command": "top_up", "actor": LIBRARIAN, "member_id": "m-1", "points": True},
        {"command": "top_up", "actor": LIBRARIAN, "member_id": "m-1", "points": 2**64},
    ])
    for answer in answers:
        assert isinstance(answer, lendkit.InvalidInputError) and answer.code == "INVALID_INPUT"


@pytest.mark.parametrize("bad", ["m\ud800", "m\udc00", "m\u200b1", "m\u202e1", "\ufeffm1", " m1", "m1\n"])
def test_ids_that_look_alike_are_refused(lib: lendkit.Library, bad: str) -> None:
    with pytest.raises(lendkit.InvalidInputError) as refused:
        lib.join_member(bad, "Kim", actor=LIBRARIAN)
    assert refused.value.code == "INVALID_INPUT"
    with pytest.raises(lendkit.InvalidInputError):
        lendkit.Member(bad)
    answers = lib.execute_batch([{"command": "join_member", "actor": LIBRARIAN, "member_id": bad, "name": "Kim"}])
    assert isinstance(answers[0], lendkit.InvalidInputError)
    assert lib.head() == 0


def test_command_ids_of_lendkit_itself_are_refused(lib: lendkit.Library) -> None:
    with pytest.raises(lendkit.InvalidInputError, match="reserved"):
        lib.join_member("m-1", "Kim", actor=LIBRARIAN, command_id="system:charge:m-1:r-1")


# The table the Rust and Node tests use too.
RULES = (Path(__file__).parents[3] / "tests" / "fixtures" / "circulation-rules.toml").read_text(encoding="utf-8")


def test_circulation_rules_are_stored_and_explained(lib: lendkit.Library) -> None:
    lib.register_book("dvd-1", "A film", 1, 5, item_type="dvd", actor=LIBRARIAN)
    lib.join_member("s-1", "Student", group="student", actor=LIBRARIAN)
    before = lib.explain_policy("s-1", "dvd-1")
    assert before["version"] == 0 and before["explanation"]["policies"]["loan"]["name"] == "default"
    with pytest.raises(lendkit.InvalidInputError, match="rule 3, field loan"):
        lib.change_circulation_rules(RULES.replace('loan = "dvd"', 'loan = "nope"'), actor=LIBRARIAN)
    changed = lib.change_circulation_rules(RULES, actor=LIBRARIAN)
    assert changed.types == ["CirculationRulesChanged"]
    explained = lib.explain_policy("s-1", "dvd-1", actor=member("s-1"))
    assert explained["version"] == 1 and explained["item_type"] == "dvd" and explained["group"] == "student"
    assert explained["explanation"]["policies"]["loan"]["name"] == "dvd"
    with pytest.raises(lendkit.UnauthorizedError):
        lib.explain_policy("s-1", "dvd-1", actor=member("m-1"))
    with pytest.raises(lendkit.UnauthorizedError):
        lib.join_member("x-1", "X", group="staff", actor=member("x-1"))


def test_member_blocks_and_the_clock_driven_rules(lib: lendkit.Library) -> None:
    stock(lib, members=2)
    assert lib.member_blocks("m-1") == []
    lib.block_member("m-1", "card reported stolen", actor=LIBRARIAN)
    blocks = lib.member_blocks("m-1", actor=member("m-1"))
    assert [(b["action"], b["code"]) for b in blocks] == [
        ("borrow", "MEMBER_BLOCKED"), ("renew", "MEMBER_BLOCKED"), ("reserve", "MEMBER_BLOCKED"),
    ]
    assert "card reported stolen" in blocks[0]["message"]
    with pytest.raises(lendkit.UnauthorizedError):
        lib.member_blocks("m-1", actor=member("m-2"))
    with pytest.raises(lendkit.UnauthorizedError):
        lib.overdue_list(actor=member("m-2"))
    with pytest.raises(lendkit.NotFoundError):
        lib.member_blocks("nobody")
    # Nothing is due in a library without rules: advance_to runs nothing, twice.
    assert lib.advance_to(START_MS + 86_400_000) == 0
    assert lib.overdue_list(now_ms=START_MS + 86_400_000) == []
