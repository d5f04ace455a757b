"""An event loop that refuses worker threads: proof that an AsyncClient call ran on the
loop itself (``asyncio.to_thread`` and ``run_in_executor(None, ...)`` fail the call)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class NoThreads(concurrent.futures.ThreadPoolExecutor):
    """A default executor that refuses work."""

    def submit(self, *args, **kwargs):
        raise AssertionError("a worker thread was asked for")


def run_without_threads(main: Callable[[], Awaitable[T]]) -> T:
    """``main()`` on a fresh loop whose default executor is :class:`NoThreads`."""
    loop = asyncio.new_event_loop()
    loop.set_default_executor(NoThreads(max_workers=1))
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()
