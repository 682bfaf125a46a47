"""Shared helpers for the lendkit Python tests."""

from __future__ import annotations

from typing import Iterator

import pytest

import lendkit

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00.000Z

LIBRARIAN = lendkit.Librarian("lib-1")


def member(id: str) -> lendkit.Member:
    return lendkit.Member(id)


@pytest.fixture
def lib() -> Iterator[lendkit.Library]:
    """An in-memory library without a background runner: reactions happen on settle()."""
    with lendkit.Library.in_memory(background=False) as library:
        yield library


def stock(lib: lendkit.Library, book_id: str = "b-1", copies: int = 1, fee: int = 30, members: int = 1) -> None:
    """Registers a book and members m-1…m-N, and lets the views catch up."""
    lib.register_book(book_id, f"Book {book_id}", copies, fee, actor=LIBRARIAN)
    for i in range(1, members + 1):
        lib.join_member(f"m-{i}", f"Member {i}", actor=LIBRARIAN)
    lib.settle()
