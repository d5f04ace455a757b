"""The memory all associations of one acceptor may hold together.

What a peer makes the server keep in memory is counted here: the body of a PDU while it
is being read (beyond the read-ahead buffer) and the dataset of a request kept in memory
(a C-FIND, C-GET or C-MOVE identifier) until its handler is done. A reservation that
would take the total over the limit is refused; the caller then refuses the request (see
:mod:`pacskit.net.association`) instead of growing.
"""

from __future__ import annotations

import threading


class MemoryBudget:
    """A thread-safe count of bytes reserved against ``limit`` (0: no limit, nothing counted)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        """Bytes reserved now."""
        return self._in_use

    def reserve(self, size: int) -> bool:
        """Reserve ``size`` bytes; False (and nothing reserved) if that would exceed the
        limit. Without a limit nothing is counted."""
        if not self.limit:
            return True
        with self._lock:
            if self._in_use + size > self.limit:
                return False
            self._in_use += size
            return True

    def release(self, size: int) -> None:
        """Give back ``size`` bytes reserved earlier."""
        if size and self.limit:
            with self._lock:
                self._in_use -= size


UNLIMITED = MemoryBudget(0)
