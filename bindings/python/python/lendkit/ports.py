"""What a host passes in: the payment gateway and notifier protocols, for type checkers.

A payment gateway is any object with these two methods; a notifier is any callable taking a
:class:`lendkit.Notice`. Both are called from lendkit's threads with the GIL held, synchronously:
they are plain functions (an ``async def`` port returns a coroutine that never runs, which counts
as a failure). Exceptions they raise count as failures of that port: from the gateway, as an
outage the circuit breaker counts (``PAYMENT_UNAVAILABLE``) — unless it is a
:class:`lendkit.PaymentDeclinedError`, which declines the charge (``PAYMENT_DECLINED``); from the
notifier, as a failed notice that is retried. They never crash the library. Closing the library
ends any wait on them with ``LIBRARY_CLOSED``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal, Optional, Protocol, Tuple, Union

if TYPE_CHECKING:
    from ._native import Notice

__all__ = ["Durability", "Notifier", "PaymentGateway"]


class PaymentGateway(Protocol):
    """Takes payment for rentals; both calls must be idempotent per ``key`` (the rental id)."""

    def charge(self, member_id: str, amount: int, key: str) -> Optional[str]:
        """Charges ``amount`` points to ``member_id`` for rental ``key``; returns the payment id,
        a non-empty ``str`` (None: the key is the payment id). Any other answer is a failed
        charge (``PAYMENT_UNAVAILABLE``): nothing is stored and the breaker counts an outage."""
        ...

    def refund(self, key: str) -> object:
        """Refunds the charge made with ``key``. Any answer but an awaitable is a success."""
        ...


#: A notifier: called with each notice to send.
Notifier = Callable[["Notice"], object]

#: ``"every_commit"`` (the default: flushed before a command returns) or
#: ``("periodic", ms)`` (flushed every ``ms`` milliseconds; a crash may lose the last interval).
Durability = Union[Literal["every_commit"], Tuple[Literal["periodic"], int]]
