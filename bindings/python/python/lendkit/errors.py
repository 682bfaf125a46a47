"""The exceptions lendkit raises.

Every failure has a stable code shared by Rust, Python and JavaScript (the catalogue is
``docs/errors.md``). Python raises one class per error *family*, each a subclass of
:class:`LendkitError`, with the code in ``err.code``::

    try:
        lib.reserve_book("isbn-1", "m-1", actor=lendkit.Member("m-1"))
    except lendkit.PaymentError as err:
        if err.code == "INSUFFICIENT_POINTS":
            ...

``CATALOGUE`` maps every code to its class and whether retrying later may help; a test keeps
it in step with the Rust core and the docs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple, Type

from ._commands import ERROR_CATALOGUE

__all__ = [
    "CATALOGUE",
    "CODES",
    "FAMILIES",
    "ConflictError",
    "InvalidInputError",
    "LendkitError",
    "NotFoundError",
    "PaymentDeclinedError",
    "PaymentError",
    "RuleViolationError",
    "StorageError",
    "UnauthorizedError",
]


class LendkitError(Exception):
    """Base class of every error lendkit raises.

    Attributes:
        code: the stable catalogue code, e.g. ``"INSUFFICIENT_POINTS"``.
        retryable: True when the same call may succeed if simply tried again later.
        retry_after: for ``PAYMENT_UNAVAILABLE`` with an open circuit breaker, the seconds
            until a trial call is let through; otherwise None.
    """

    family: ClassVar[str] = ""
    default_code: ClassVar[Optional[str]] = None

    code: str
    retryable: bool
    retry_after: Optional[float]

    def __init__(
        self,
        message: str = "",
        code: Optional[str] = None,
        *,
        retryable: Optional[bool] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        if code is None:
            code = type(self).default_code
        if code is None:
            raise TypeError(
                f"{type(self).__name__} needs a code, one of: {', '.join(sorted(CATALOGUE))}"
            )
        self.code = code
        known = CATALOGUE.get(code)
        self.retryable = (known[1] if known else False) if retryable is None else retryable
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        """The human-readable message (what went wrong, with the ids, and what to do)."""
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"

    def __reduce__(self) -> Tuple[Any, ...]:
        state = {"retryable": self.retryable, "retry_after": self.retry_after}
        return (type(self), (self.message, self.code), state)


class NotFoundError(LendkitError):
    """Something the call names does not exist (a book, member, rental, delivery, dead letter)."""

    family = "NotFound"


class RuleViolationError(LendkitError):
    """A business rule forbids the step in the current state (no free copy, renewal limit, …)."""

    family = "RuleViolation"


class UnauthorizedError(LendkitError):
    """The actor may not do this (a member registering a book, or acting on another's rental)."""

    family = "Unauthorized"
    default_code = "UNAUTHORIZED"


class PaymentError(LendkitError):
    """Payment failed: insufficient points, declined, or the gateway is unavailable.

    A host payment gateway may raise it (or any other exception) from ``charge``/``refund``
    to report an outage; that counts towards opening the circuit breaker.
    """

    family = "Payment"
    default_code = "PAYMENT_UNAVAILABLE"


class PaymentDeclinedError(PaymentError):
    """The payment gateway refused the charge (``PAYMENT_DECLINED``).

    A host payment gateway raises it from ``charge`` to decline for a business reason; unlike
    other exceptions it does not count as an outage, so it never opens the circuit breaker.
    """

    default_code = "PAYMENT_DECLINED"


class ConflictError(LendkitError):
    """Something already exists, or a concurrent writer won (``CONFLICT``: retry)."""

    family = "Conflict"
    default_code = "CONFLICT"


class StorageError(LendkitError):
    """The event store failed, the path is not a library, the library is closed, the database is
    damaged (``CORRUPT``: restore it from a backup) — or lendkit hit a bug (``INTERNAL``: a Rust
    panic, caught instead of crashing the interpreter)."""

    family = "Storage"
    default_code = "STORAGE"


class InvalidInputError(LendkitError, ValueError):
    """A value is malformed (an empty or over-long id, a zero amount). Also a ValueError."""

    family = "InvalidInput"
    default_code = "INVALID_INPUT"


#: Every code: the class raised for it, and whether retrying later may succeed.
#: Kept in step with the Rust core and docs/errors.md by tests/test_errors.py.
#: Every error family (as the Rust core names it) and its class.
FAMILIES: Dict[str, Type[LendkitError]] = {
    cls.family: cls
    for cls in (
        NotFoundError,
        RuleViolationError,
        UnauthorizedError,
        PaymentError,
        ConflictError,
        StorageError,
        InvalidInputError,
    )
}

#: The classes of codes that have a class of their own within their family.
_OWN_CLASS: Dict[str, Type[LendkitError]] = {"PAYMENT_DECLINED": PaymentDeclinedError}

#: Every code: its class and whether retrying later may help. Built from the catalogue the
#: generator writes from docs/schema.json (``_commands.ERROR_CATALOGUE``), so a new code in the
#: core needs no hand edit here.
CATALOGUE: Dict[str, Tuple[Type[LendkitError], bool]] = {
    code: (_OWN_CLASS.get(code, FAMILIES[family]), retryable) for code, family, retryable in ERROR_CATALOGUE
}

#: Every code and the class raised for it.
CODES: Dict[str, Type[LendkitError]] = {code: cls for code, (cls, _) in CATALOGUE.items()}


