"""An async iterator over the items a blocking iterator yields in a worker thread, handed
over as each one arrives.

The thread runs ahead by at most :data:`AHEAD` items, then waits for the consumer. When
the consumer stops early (``break``, :meth:`ThreadAnswers.aclose`, cancellation or the
deadline), the thread stops at its next item and closes the iterator it reads, which
ends a C-FIND with C-CANCEL (PS3.7 9.1.2.1.5) and releases its association.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, Self, TypeVar

T = TypeVar("T")
AHEAD = 64
WAKE = 0.2
"""Seconds between the worker's looks at whether it was stopped, while it waits for room."""
_END = object()


class _Answers(AsyncIterator[T], Generic[T]):
    """An async iterator of answers that is also its own async context manager: leaving
    the ``async with`` closes it (:meth:`aclose`)."""

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        raise NotImplementedError


class ThreadAnswers(_Answers[T]):
    """``async for`` over ``start()``'s items, read in a worker thread.

    Args:
        start: opens the blocking iterator (called in the thread).
        timeout: seconds the whole iteration may take; then :class:`TimeoutError`.
    """

    def __init__(self, start: Callable[[], Iterator[T]], timeout: float | None = None) -> None:
        self._start = start
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._queue: asyncio.Queue[object] | None = None
        self._room = threading.Semaphore(AHEAD)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = False

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        queue = self._started()
        try:
            item = await asyncio.wait_for(queue.get(), self._remaining())
        except BaseException:
            self._abandon()
            raise
        self._room.release()
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Stop the worker thread (it closes its iterator) and wait until it has."""
        self._abandon()
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join)

    def _abandon(self) -> None:
        self._done = True
        self._stop.set()

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def _started(self) -> asyncio.Queue[object]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=_work, args=(self._start, loop, self._queue, self._room,
                                                                self._stop),
                                            name="pacskit-answers", daemon=True)
            self._thread.start()
        return self._queue

    def __del__(self) -> None:
        self._stop.set()


def _work(start: Callable[[], Iterator[object]], loop: asyncio.AbstractEventLoop,
          queue: asyncio.Queue[object], room: threading.Semaphore, stop: threading.Event) -> None:
    """The worker thread: holds no reference to its :class:`ThreadAnswers`, so that one
    dropped without :meth:`~ThreadAnswers.aclose` is collected and stops it."""

    def hand(item: object) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, item)

    try:
        items = start()
        try:
            for item in items:
                while not room.acquire(timeout=WAKE):
                    if stop.is_set():
                        break
                if stop.is_set():
                    break
                hand(item)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
    except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there
        hand(_Failure(exc))
        return
    hand(_END)


class _Failure:
    def __init__(self, error: Exception) -> None:
        self.error = error


class LoopAnswers(_Answers[T]):
    """``async for`` over the items of an async iterator read on the event loop itself
    (the native asyncio driver): no thread. Leaving early closes it, which ends a C-FIND
    with C-CANCEL.

    Args:
        start: opens the async iterator (at the first ``__anext__``).
        timeout: seconds the whole iteration may take; then :class:`TimeoutError`.
    """

    def __init__(self, start: Callable[[], AsyncIterator[T]], timeout: float | None = None) -> None:
        self._start = start
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._items: AsyncIterator[T] | None = None
        self._done = False

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        if self._items is None:
            self._items = self._start()
        try:
            async with asyncio.timeout(None if self._deadline is None else max(0.0, self._deadline - time.monotonic())):
                return await anext(self._items)
        except BaseException:
            self._done = True
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop the iteration (the find is cancelled and its association ended)."""
        self._done = True
        close = getattr(self._items, "aclose", None)
        if close is not None:
            await close()
