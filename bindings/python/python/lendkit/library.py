"""The public :class:`lendkit.Library`: the native library with one method per command."""

from __future__ import annotations

from . import _native
from ._commands import LibraryCommands

__all__ = ["Library"]


class Library(_native.Library, LibraryCommands):
    """A lending library: commands, queries, and the consumers that react to events.

    Open one with ``Library.open(path)`` (a sled database: a folder; durable) or
    ``Library.in_memory()``, preferably in a ``with`` block. Safe to share between threads: every
    call releases the GIL while the core works.

    Every command of the core is a method (``register_book``, ``reserve_book``, …, generated from
    ``docs/schema.json`` into ``lendkit/_commands.py``) over :meth:`execute`, which takes the
    command as a dict (``{"command": "reserve_book", "book_id": …}``); :meth:`execute_batch`
    runs many in one call. Queries and the consumers' controls are the native class's own.
    """

    __slots__ = ()
