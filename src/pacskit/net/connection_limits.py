"""How many connections and associations an acceptor holds, against its limits.

A connection is counted from ``accept()`` to its close, in all and by the peer's IP
address; an association from its complete A-ASSOCIATE-RQ to its end. A connection still
sending its A-ASSOCIATE-RQ is therefore bounded by the connection limits and by the
ACSE timeout (ARTIM, PS3.8 9.1.5), never by the association limit, so peers that never
finish their request cannot keep a caller who does from being served.
"""

from __future__ import annotations

import logging
import threading
import time

LOG = logging.getLogger("pacskit.archive")
REFUSAL_LOG_EVERY = 10.0


class ConnectionLimits:
    """Thread-safe counts of connections and associations, and the refusals they cause.

    Args:
        max_connections: connections at once, in all.
        per_address: connections at once from any one IP address.
        max_associations: associations at once.
    """

    def __init__(self, max_connections: int, per_address: int, max_associations: int) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        self.max_associations = max_associations
        self.connections = 0
        self.associations = 0
        self._by_address: dict[str, int] = {}
        self._lock = threading.Lock()
        self._refused = 0
        self._logged_at: float | None = None

    def open(self, host: str) -> str | None:
        """Count a new connection from ``host``; or, over a limit, why it is refused
        (and nothing is counted)."""
        with self._lock:
            if self.connections >= self.max_connections:
                return f"{self.max_connections} connections open (max_connections)"
            from_host = self._by_address.get(host, 0)
            if from_host >= self.per_address:
                return f"{self.per_address} connections open from {host} (max_connections_per_address)"
            self.connections += 1
            self._by_address[host] = from_host + 1
            return None

    def close(self, host: str) -> None:
        """A connection counted by :meth:`open` is closed."""
        with self._lock:
            self.connections -= 1
            left = self._by_address.get(host, 1) - 1
            if left > 0:
                self._by_address[host] = left
            else:
                self._by_address.pop(host, None)

    def begin_association(self) -> bool:
        """Count an association whose A-ASSOCIATE-RQ is complete; False (nothing counted)
        when ``max_associations`` are already being served."""
        with self._lock:
            if self.associations >= self.max_associations:
                return False
            self.associations += 1
            return True

    def end_association(self) -> None:
        """An association counted by :meth:`begin_association` has ended."""
        with self._lock:
            self.associations -= 1

    def refused(self, host: str, why: str) -> None:
        """Log a refused connection: the first one, then at most one line every
        :data:`REFUSAL_LOG_EVERY` seconds with how many were refused since."""
        now = time.monotonic()
        with self._lock:
            self._refused += 1
            if self._logged_at is not None and now - self._logged_at < REFUSAL_LOG_EVERY:
                return
            count, self._refused, self._logged_at = self._refused, 0, now
        LOG.warning("refused %d connection(s) at once, the last from %s: %s", count, host, why)
