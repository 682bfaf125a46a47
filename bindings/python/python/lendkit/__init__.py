"""lendkit: the circulation rules of a lending library, as an embeddable event-sourced core.

The rules run in Rust (the same core as the Rust and Node packages); this package is a thin,
typed binding. Start with :class:`Library`::

    import lendkit

    with lendkit.Library.in_memory() as lib:
        librarian = lendkit.Librarian("lib-1")
        lib.register_book("isbn-1", "Domain-Driven Design", copies=1, fee=30, actor=librarian)
        lib.join_member("m-1", "Kim", actor=librarian)
        r = lib.reserve_book("isbn-1", "m-1", actor=lendkit.Member("m-1"))
        lib.settle()
        print(lib.member_page("m-1"))

Errors are :class:`LendkitError` subclasses with a stable ``.code`` (see :mod:`lendkit.errors`).
"""

from __future__ import annotations

import atexit

from . import _native
from ._commands import CommandName, ErrorCode, EventType
from ._native import (
    BookRow,
    ConsumerStatus,
    DeadLetter,
    Event,
    Librarian,
    ManualClock,
    Member,
    MemberPage,
    Notice,
    Outcome,
    OverdueRow,
    HoldShelfRow,
    RentalRow,
    Subscription,
    __version__,
)
from .errors import (
    CODES,
    ConflictError,
    InvalidInputError,
    LendkitError,
    NotFoundError,
    PaymentDeclinedError,
    PaymentError,
    RuleViolationError,
    StorageError,
    UnauthorizedError,
)
from .library import Library
from .ports import Durability, Notifier, PaymentGateway

# Stop every library's background runner before the interpreter shuts down under it.
atexit.register(_native._close_all)

__all__ = [
    "CODES",
    "BookRow",
    "CommandName",
    "ConflictError",
    "ConsumerStatus",
    "DeadLetter",
    "Durability",
    "ErrorCode",
    "Event",
    "EventType",
    "InvalidInputError",
    "LendkitError",
    "Librarian",
    "Library",
    "ManualClock",
    "Member",
    "MemberPage",
    "NotFoundError",
    "Notice",
    "Notifier",
    "Outcome",
    "OverdueRow",
    "HoldShelfRow",
    "PaymentDeclinedError",
    "PaymentError",
    "PaymentGateway",
    "RentalRow",
    "RuleViolationError",
    "StorageError",
    "Subscription",
    "UnauthorizedError",
    "__version__",
]
