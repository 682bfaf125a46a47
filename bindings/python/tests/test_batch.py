"""execute_batch: many commands in one crossing into Rust, each with its own answer."""

import lendkit
import pytest


def test_a_batch_answers_each_command_in_order_and_a_refusal_does_not_stop_the_rest() -> None:
    with lendkit.Library.in_memory(background=False) as lib:
        librarian = lendkit.Librarian("lib-1")
        answers = lib.execute_batch(
            [
                {"command": "register_book", "actor": librarian, "book_id": "b-1", "title": "Refactoring", "copies": 1, "fee": 30},
                {"command": "join_member", "actor": librarian, "member_id": "m-1", "name": "Kim"},
                {"command": "reserve_book", "actor": lendkit.Member("m-1"), "book_id": "b-1", "member_id": "m-1", "rental_id": "r-1", "command_id": "c-1"},
                {"command": "cancel_rental", "actor": lendkit.Member("m-2"), "rental_id": "r-1"},
                {"command": "top_up", "actor": librarian, "member_id": "m-1", "points": 0},
                {"command": "burn_book", "actor": librarian, "book_id": "b-1"},
                {"command": "reserve_book", "actor": lendkit.Member("m-1"), "book_id": "b-1", "member_id": "m-1", "rental_id": "r-1", "command_id": "c-1"},
            ]
        )
        assert [e.type for e in answers[0].events] == ["BookRegistered"]
        assert answers[2].rental_id == "r-1"
        assert isinstance(answers[3], lendkit.UnauthorizedError) and answers[3].code == "NOT_RENTAL_OWNER"
        assert isinstance(answers[4], lendkit.InvalidInputError)
        assert answers[5].code == "INVALID_INPUT"
        assert answers[6].events == answers[2].events, "the same command id is applied once"
        lib.settle()
        assert lib.member_page("m-1").points == 70


def test_a_batch_can_leave_the_events_out_and_refuses_what_is_not_a_batch() -> None:
    with lendkit.Library.in_memory(background=False) as lib:
        [a] = lib.execute_batch([{"command": "join_member", "actor": lendkit.Librarian("x"), "member_id": "m-1", "name": "Kim"}], events=False)
        assert a.events == [] and len(lib.events()) == 2
        with pytest.raises(TypeError):
            lib.execute_batch([42])  # type: ignore[list-item]
        with pytest.raises(lendkit.InvalidInputError):
            lib.execute_batch([{"command": "join_member", "member_id": "m-2", "name": "Lee"}])
