"""How many associations one :class:`~pacskit.aio.AsyncClient` holds open at once with
each peer address: an :class:`asyncio.Semaphore` per (host, port) and event loop, taken
before the TCP connection opens and given back once it is closed (PS3.8 Section 9: an
association's lifetime is its connection's), so that a peer never sees more than
:attr:`ConnectionLimit.limit` of them. Those waiting for one are served first come,
first served; a waiter cancelled (or timed out) before it got one gives back nothing.

A task that holds every slot of an address itself (``async for`` loops nested deeper
than the limit, each holding an association) and asks for one more would wait for
itself: :class:`SlotsExhausted` is raised instead. For that a call runs in its caller's
task (:func:`within` bounds it in time), not in a task of its own."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

from pacskit.errors import UsageError
from pacskit.nodes import Node

T = TypeVar("T")

Address = tuple[str, int]


class _Slots:
    """One peer address's semaphore, and how many hold or wait for it."""

    def __init__(self, limit: int) -> None:
        self.semaphore = asyncio.Semaphore(limit)
        self.held = 0
        self.waiting = 0
        self.by_task: dict[asyncio.Task[object] | None, int] = {}


class SlotsExhausted(UsageError):
    """The calling task already holds every slot of the address it asks one more of."""


class ConnectionLimit:
    """At most ``limit`` associations open at once with each peer address.

    >>> limit = ConnectionLimit(16)
    >>> async with limit.slot(node):
    ...     ...  # open, use and release one association with node
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_connections must be at least 1, not {limit}")
        self.limit = limit
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Address, _Slots]] = \
            weakref.WeakKeyDictionary()

    def _slots(self, node: Node) -> _Slots:
        by_address = self._loops.setdefault(asyncio.get_running_loop(), {})
        address = (node.host, node.port)
        if address not in by_address:
            by_address[address] = _Slots(self.limit)
        return by_address[address]

    @asynccontextmanager
    async def slot(self, node: Node) -> AsyncIterator[None]:
        """Hold one of ``node``'s slots for the block, waiting for one first if all are
        taken (in the order of arrival)."""
        slots = self._slots(node)
        task = asyncio.current_task()
        if slots.semaphore.locked() and slots.by_task.get(task, 0) >= self.limit:
            raise SlotsExhausted(
                f"this task already holds all {self.limit} associations allowed with {node.host}:{node.port} "
                "(nested async for loops?): finish an outer one first, or raise max_connections")
        slots.waiting += 1
        try:
            await slots.semaphore.acquire()
        finally:
            slots.waiting -= 1
        slots.held += 1
        slots.by_task[task] = slots.by_task.get(task, 0) + 1
        try:
            yield
        finally:
            slots.held -= 1
            slots.by_task[task] -= 1
            if not slots.by_task[task]:
                del slots.by_task[task]
            slots.semaphore.release()

    def held(self, node: Node) -> int:
        """How many of ``node``'s slots are held now, on the running loop."""
        return self._slots(node).held

    def waiting(self, node: Node) -> int:
        """How many callers wait for one of ``node``'s slots now, on the running loop."""
        return self._slots(node).waiting


async def within(call: Awaitable[T], timeout: float | None) -> T:
    """``await call``, at most ``timeout`` seconds (None: no limit), in the calling task
    (``asyncio.timeout``; ``asyncio.wait_for`` would run it in a task of its own, and the
    slots its caller holds would not be counted as the call's own)."""
    async with asyncio.timeout(timeout):
        return await call
