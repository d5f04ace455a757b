"""The connection under an asyncio association: an :class:`asyncio.Protocol` that keeps
what the peer sends until a whole PDU is there (PS3.8 9.3.1: a type, a reserved byte, a
4-byte big-endian length, then that many bytes), and writes with flow control.

:class:`PduStream` replaces ``asyncio.StreamReader``/``StreamWriter`` for
:mod:`pacskit.net.aio_association` because the association reads PDU by PDU with a
timeout on each: a stream's ``readexactly`` under ``asyncio.timeout`` arms, reschedules
and cancels a timer for every PDU, although most PDUs of a transfer are already buffered
when they are asked for. Here :meth:`PduStream.fill` returns at once when the bytes are
there; a wait that really waits is woken once the bytes it needs have come rather than
at every segment, and its deadline is kept by one timer per connection, moved only when
it fires (deadlines only move later, so it fires about once per timeout, not per wait).

Memory stays bounded: reading from the socket is paused once more than
:data:`READ_HIGH_WATER` bytes wait unread and no read needs them (a PDU larger than that
is let in whole: its size was checked against the limit from its header); writing waits
(:meth:`PduStream.drain`) while the transport holds more than its high-water mark.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

READ_HIGH_WATER = 128 << 10
"""Unread bytes past which reading from the socket pauses (unless a read needs more)."""


class PeerClosed(Exception):
    """The peer closed the connection (end of file) before the bytes asked for came."""


class PduStream(asyncio.Protocol):
    """One connection's bytes, for one association.

    Args:
        on_connected: called with the stream once the connection is made (and its TLS
            handshake done): how a listening server starts serving it.
    """

    def __init__(self, on_connected: Callable[[PduStream], None] | None = None) -> None:
        self._on_connected = on_connected
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._wanted = 0
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._ended = False
        self._lost: BaseException | None = None
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._on_connected is not None:
            self._on_connected(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None:
            if len(self._buffer) >= self._wanted:
                self._wake(self._waiter)
        elif len(self._buffer) > READ_HIGH_WATER and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        self._ended = True
        if self._waiter is not None:
            self._wake(self._waiter)
        return True  # what is still to be sent (an A-ABORT) may go out: closed by us or when lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._lost = exc
        if self._waiter is not None:
            self._wake(self._waiter)
        if self._drain_waiter is not None:
            self._wake(self._drain_waiter)
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain_waiter is not None:
            self._wake(self._drain_waiter)

    @staticmethod
    def _wake(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    # -- reading ------------------------------------------------------------------------

    @property
    def buffer(self) -> bytearray:
        """The bytes received and not yet taken (read it, do not keep it)."""
        return self._buffer

    async def fill(self, size: int, timeout: float | None) -> None:
        """Wait until at least ``size`` bytes are buffered, at most ``timeout`` seconds.

        Raises:
            TimeoutError: they did not come in time (what came is kept).
            PeerClosed: the peer closed the connection first.
            OSError: the connection was lost with this error (an ``ssl.SSLError`` for TLS).
        """
        if len(self._buffer) >= size:
            return
        self._watch(timeout)
        try:
            while len(self._buffer) < size:
                if self._lost is not None:
                    raise self._lost
                if self._ended:
                    raise PeerClosed
                if self._reading_paused and self._transport is not None:
                    self._reading_paused = False
                    self._transport.resume_reading()
                self._wanted = size
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        finally:
            self._deadline = None

    def _watch(self, timeout: float | None) -> None:
        """Give the wait starting now ``timeout`` seconds (None: no limit)."""
        if timeout is None:
            self._deadline = None
            return
        self._deadline = self._loop.time() + timeout
        if self._timer is None or self._timer.when() > self._deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(self._deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._expire)
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(TimeoutError())

    def take(self, size: int) -> bytearray:
        """The first ``size`` buffered bytes (there must be as many), removed."""
        if len(self._buffer) == size:
            taken, self._buffer = self._buffer, bytearray()
        else:
            taken = self._buffer[:size]
            del self._buffer[:size]
        if self._reading_paused and len(self._buffer) <= READ_HIGH_WATER and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        return taken

    # -- writing ------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert self._transport is not None
        self._transport.write(data)

    @property
    def unsent(self) -> int:
        """Bytes written and not yet taken by the socket."""
        return 0 if self._transport is None else self._transport.get_write_buffer_size()

    async def drain(self, timeout: float | None) -> None:
        """Wait until the transport is below its high-water mark again, at most
        ``timeout`` seconds.

        Raises:
            TimeoutError: the peer did not read in time.
            ConnectionResetError: the connection was lost (or the error it was lost with).
        """
        self._raise_if_lost()
        if not self._writing_paused:
            return
        timer = None if timeout is None else self._loop.call_later(timeout, self._expire_drain)
        try:
            while self._writing_paused:
                self._drain_waiter = self._loop.create_future()
                try:
                    await self._drain_waiter
                finally:
                    self._drain_waiter = None
                self._raise_if_lost()
        finally:
            if timer is not None:
                timer.cancel()

    def _raise_if_lost(self) -> None:
        if self._closed.done():
            raise self._lost if self._lost is not None else ConnectionResetError("Connection lost")

    def _expire_drain(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(TimeoutError())

    # -- the connection -----------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def close(self) -> None:
        """Close once what is buffered is written."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, what is buffered dropped."""
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (what was buffered written)."""
        await asyncio.shield(self._closed)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default if self._transport is None else self._transport.get_extra_info(name, default)
