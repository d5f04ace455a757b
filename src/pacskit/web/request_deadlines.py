"""Deadlines for the request line, headers and body of every HTTP request (slowloris).

uvicorn's ``timeout_keep_alive`` only runs between requests and is cancelled by any byte
received, so a client sending its headers a line at a time, or its body a byte at a time,
holds its socket forever. :func:`request_deadlines_protocol` makes uvicorn's h11 protocol
class close such connections:

- the request line and headers must be complete within ``header_timeout`` seconds,
  counted from the connection, then from the end of each response (a kept-alive
  connection waits for its next request within the same time);
- the body must come at ``body_min_rate`` bytes a second after a grace of
  ``body_timeout`` seconds from the end of the headers: its deadline is
  ``body_timeout + received / body_min_rate`` (Apache's ``mod_reqtimeout`` rule,
  ``body=20,MinRate=500``). Time while uvicorn has paused reading, because the
  application has not taken what came, is not counted against the client.

A request cut before any response gets ``408 Request Timeout`` (RFC 9110 15.5.9) first; an
idle connection is just closed. A body cut midway is answered, the sending side shut, and
what still comes discarded for :data:`LINGER` seconds before the close: closing a socket
with unread data resets the connection, and the client would never read its 408.
Responses are not bounded.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

LOG = logging.getLogger("pacskit.web")
LINGER = 2.0


def _timed_out(reason: bytes) -> bytes:
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(reason), reason))


HEADERS_TIMED_OUT = _timed_out(b"the request headers did not come in time\n")
BODY_TIMED_OUT = _timed_out(b"the request body came too slowly\n")


class _RequestDeadlines(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request does not come in time."""

    header_timeout = 10.0
    body_timeout = 20.0
    body_min_rate = 500.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._owed = ""
        self._lingering = False
        self._body_started = 0.0
        self._body_received = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        in_body = self.conn.their_state is h11.SEND_BODY
        super().data_received(data)
        if in_body:
            self._body_received += len(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm the deadline of what the peer owes: a request's headers, or its body;
        disarm it once the request is in."""
        if self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            self._arm(self.header_timeout, "headers")
        elif state is h11.SEND_BODY:
            self._arm(self.body_timeout, "body")
        else:
            self._disarm()

    def _arm(self, delay: float, owed: str) -> None:
        if self._timer is not None and self._owed == owed:
            return
        self._disarm()
        if owed == "body":
            self._body_started, self._body_received = self.loop.time(), 0
        self._owed = owed
        self._timer = self.loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._owed == "body":
            self._body_expired()
        elif self.conn.their_state is h11.IDLE:
            pending, _ = self.conn.trailing_data
            self._close(HEADERS_TIMED_OUT if pending else None, "request headers not complete within %g s",
                        self.header_timeout)

    def _body_expired(self) -> None:
        if self.conn.their_state is not h11.SEND_BODY:
            return
        now = self.loop.time()
        if self.flow.read_paused:
            self._body_started, self._body_received = now, 0
            self._timer = self.loop.call_later(self.body_timeout, self._expired)
            return
        deadline = self._body_started + self.body_timeout + self._body_received / self.body_min_rate
        if now < deadline:
            self._timer = self.loop.call_later(deadline - now, self._expired)
            return
        self._close(BODY_TIMED_OUT, "request body slower than %g bytes/s after %g s", self.body_min_rate,
                    self.body_timeout, linger=True)

    def _close(self, answer: bytes | None, why: str, *args: float, linger: bool = False) -> None:
        if answer is not None:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            LOG.info(f"%s: {why}; connection closed", client, *args)
        cycle = self.cycle
        if answer is None or (cycle is not None and cycle.response_started):
            self.transport.close()
            return
        self.transport.write(answer)
        if cycle is not None:
            cycle.disconnected = True  # the application's receive() says http.disconnect, its send() is dropped
            cycle.message_event.set()
        if not (linger and self.transport.can_write_eof()):
            self.transport.close()
            return
        self._lingering = True
        self.transport.write_eof()
        self.loop.call_later(LINGER, self.transport.close)

def request_deadlines_protocol(header_timeout: float, body_timeout: float = 20.0,
                               body_min_rate: float = 500.0) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with these deadlines (see the module), to pass as
    ``uvicorn.Config(http=...)``."""
    return type("RequestDeadlinesProtocol", (_RequestDeadlines,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout, "body_min_rate": body_min_rate})
