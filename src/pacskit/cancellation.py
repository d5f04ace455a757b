"""A retrieve's cancellation, set from another thread: once :meth:`Cancellation.cancel`
returns, no instance is written or kept any more, none is being written, and no further
request is sent. Set from a signal handler on the thread that is keeping an instance
(Ctrl-C during a copy), it returns at once: that instance ends whole, the next is refused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Cancellation:
    """Set once, by :meth:`cancel`; instances are kept through :meth:`unless_cancelled`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled

    def cancel(self) -> None:
        """Refuse every instance from now on; returns once none is being kept by another
        thread (the lock is reentrant, so a signal handler interrupting a keep does not
        wait for itself)."""
        with self._lock:
            self._cancelled = True

    def unless_cancelled(self, keep: Callable[[], T]) -> T:
        """``keep()``, unless cancelled before it began.

        Raises:
            RetrieveCancelled: the retrieve was cancelled.
        """
        with self._lock:
            if self._cancelled:
                raise RetrieveCancelled
            return keep()


class RetrieveCancelled(Exception):
    """An instance arrived after its retrieve was cancelled."""
