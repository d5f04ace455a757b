"""A deadline for the request line and headers of every HTTP request (slowloris).

uvicorn's ``timeout_keep_alive`` only runs between requests and is cancelled by any byte
received, so a client sending its headers a line at a time holds its socket forever.
:func:`header_deadline_protocol` makes uvicorn's h11 protocol class close a connection
whose request headers are not complete within ``timeout`` seconds: counted from the
connection, then from the end of each response (a kept-alive connection waits for its
next request within the same time). A partial request gets ``408 Request Timeout``
(RFC 9110 15.5.9) first; an idle connection is just closed. Bodies and responses are
not bounded by it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

LOG = logging.getLogger("pacskit.web")
_REASON = b"the request headers did not come in time\n"
TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_REASON), _REASON))


class _HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose headers do not come in time."""

    header_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow_headers(self) -> None:
        """Arm the deadline while the peer owes the headers of a request, disarm it once
        they are in."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if not waiting:
            self._disarm()
        elif self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        pending, _ = self.conn.trailing_data
        if pending and self.conn.our_state is h11.IDLE:
            self.transport.write(TIMED_OUT)
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            LOG.info("%s: request headers not complete within %g s; connection closed",
                     client, self.header_timeout)
        self.transport.close()


def header_deadline_protocol(timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with a header deadline of ``timeout`` seconds, to pass
    as ``uvicorn.Config(http=...)``."""
    return type("HeaderDeadlineProtocol", (_HeaderDeadline,), {"header_timeout": timeout})
