"""lendkit for asyncio hosts (FastAPI, aiohttp, …): the same library, every call awaitable.

:class:`AsyncLibrary` wraps a :class:`lendkit.Library`. Each call that can wait — a command,
a query, ``settle``, ``close`` — runs in a worker thread (``asyncio.to_thread``), and the core
releases the GIL while it works, so the event loop never blocks and many calls run at once::

    import asyncio
    import lendkit
    from lendkit.aio import AsyncLibrary

    async def main() -> None:
        async with await AsyncLibrary.in_memory() as lib:
            librarian = lendkit.Librarian("lib-1")
            await lib.register_book("isbn-1", "Domain-Driven Design", copies=1, fee=30, actor=librarian)
            await lib.join_member("m-1", "Kim", actor=librarian)
            await lib.reserve_book("isbn-1", "m-1", actor=lendkit.Member("m-1"))
            await lib.settle()
            print(await lib.member_page("m-1"))

    asyncio.run(main())

The methods, their arguments, results and errors are :class:`lendkit.Library`'s; nothing is
decided here. A host's payment gateway and notifier stay plain (synchronous) callables, as
for :class:`lendkit.Library`: they are called from the core's threads.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Literal, Optional, Type, TypeVar

from ._commands import AsyncLibraryCommands
from .library import Library

if TYPE_CHECKING:
    from typing import Concatenate, ParamSpec

    from ._native import Event, Subscription

    _P = ParamSpec("_P")

__all__ = ["AsyncLibrary"]

_R = TypeVar("_R")


def _in_thread(
    method: Callable[Concatenate[Library, _P], _R],
) -> Callable[Concatenate[AsyncLibrary, _P], Coroutine[Any, Any, _R]]:
    """``method`` of the wrapped library, run in a worker thread and awaited."""

    async def run(self: AsyncLibrary, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await asyncio.to_thread(method, self.library, *args, **kwargs)

    run.__name__ = method.__name__
    run.__qualname__ = f"AsyncLibrary.{method.__name__}"
    run.__doc__ = method.__doc__
    return run


class AsyncLibrary(AsyncLibraryCommands):
    """A :class:`lendkit.Library` whose calls are awaitable. Open one with
    ``await AsyncLibrary.open(path, …)`` or ``await AsyncLibrary.in_memory(…)`` (the same options
    as :class:`lendkit.Library`), or wrap an open library with ``AsyncLibrary(library)``; use it
    in ``async with``. Every command is a coroutine method (``await lib.reserve_book(…)``)."""

    __slots__ = ("library",)

    library: Library
    """The wrapped library (for the few calls that never wait: ``pause``, ``payment_circuit`` …)."""

    def __init__(self, library: Library) -> None:
        self.library = library

    @classmethod
    async def open(cls, path: str, **options: Any) -> AsyncLibrary:
        """Opens (or creates) the library at ``path`` in a worker thread; see :meth:`lendkit.Library.open`."""
        return cls(await asyncio.to_thread(Library.open, path, **options))

    @classmethod
    async def connect(cls, pg_url: str, nats_url: str, **options: Any) -> AsyncLibrary:
        """Connects to a library shared through PostgreSQL and NATS, in a worker thread; see
        :meth:`lendkit.Library.connect`."""
        return cls(await asyncio.to_thread(Library.connect, pg_url, nats_url, **options))

    @classmethod
    async def in_memory(cls, **options: Any) -> AsyncLibrary:
        """A library kept in memory only; see :meth:`lendkit.Library.in_memory`."""
        return cls(await asyncio.to_thread(Library.in_memory, **options))

    async def __aenter__(self) -> AsyncLibrary:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> Literal[False]:
        await self.close()
        return False

    @property
    def closed(self) -> bool:
        """Whether the library was closed."""
        return self.library.closed

    def subscribe(self, callback: Callable[[Event], object]) -> Subscription:
        """See :meth:`lendkit.Library.subscribe`; ``callback`` runs in the core's thread (hand
        events to the loop with ``loop.call_soon_threadsafe``)."""
        return self.library.subscribe(callback)

    close = _in_thread(Library.close)
    flush = _in_thread(Library.flush)
    execute = _in_thread(Library.execute)
    execute_batch = _in_thread(Library.execute_batch)
    book_list = _in_thread(Library.book_list)
    member_page = _in_thread(Library.member_page)
    explain_policy = _in_thread(Library.explain_policy)
    member_blocks = _in_thread(Library.member_blocks)
    events = _in_thread(Library.events)
    head = _in_thread(Library.head)
    overdue_list = _in_thread(Library.overdue_list)
    hold_shelf = _in_thread(Library.hold_shelf)
    dead_letters = _in_thread(Library.dead_letters)
    replay_dead_letter = _in_thread(Library.replay_dead_letter)
    consumers = _in_thread(Library.consumers)
    settle = _in_thread(Library.settle)
    redeliver = _in_thread(Library.redeliver)
    advance_to = _in_thread(Library.advance_to)
