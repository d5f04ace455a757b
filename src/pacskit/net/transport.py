"""The one module that touches sockets: TCP connections for the DICOM upper layer
(PS3.8 9.1.1, TCP transport service).

A :class:`Transport` reads whole PDUs (PS3.8 9.3.1: a 6-byte header with the PDU type
and a 4-byte length) and writes bytes. Small reads go through a read-ahead buffer, so
several small PDUs cost one system call; the body of a large PDU is read straight into
its own buffer, which grows with what arrives beyond :data:`PREALLOCATED` (a length a
peer announces is never enough to make us allocate it). Every socket error becomes one
of pacskit's errors here, and nowhere else.

Reads are bounded by deadlines, not by a timeout per ``recv``: :class:`ReadBounds`
says how long the wait for a PDU's first byte may last (the idle time) and how long the
rest of it may take once it has started, or gives one deadline for all of it (ARTIM,
PS3.8 9.1.5); each ``recv`` waits only for the time left. A peer dripping one byte at a
time is cut at the deadline. Nothing here relies on ``select()`` alone to know whether
bytes are waiting: the read-ahead buffer is looked at first (a TLS socket will add its
own pending bytes), and a socket timeout bounds each wait.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from dataclasses import dataclass

from pacskit.errors import (
    AssociationAborted,
    ConnectionRefused,
    HostNotFound,
    NetworkError,
    NetworkTimeout,
)
from pacskit.net.memory_budget import UNLIMITED, MemoryBudget

PDU_HEADER = 6
READ_AHEAD = 64 << 10
PREALLOCATED = 4 << 20
COUNTED_PDU = 1 << 20
"""PDU bodies longer than this are counted against the memory budget while they are read
(shorter ones are bounded by the connection limit times the maximum PDU length)."""


class PduTooLarge(AssociationAborted):
    """The peer announced a PDU longer than we accept (PS3.8 D.1, Maximum Length)."""

    def __init__(self, message: str, pdu_type: int, length: int) -> None:
        super().__init__(message)
        self.pdu_type = pdu_type
        self.length = length


class OverBudget(AssociationAborted):
    """A PDU being read would take the memory of all associations over their budget."""


@dataclass(frozen=True)
class ReadBounds:
    """How long one :meth:`Transport.read_pdu` may take (None: no bound).

    Attributes:
        idle: seconds from the start of the read to the PDU's first byte.
        whole: seconds from its first byte to its last.
        until: a ``time.monotonic()`` deadline for all of it (ARTIM).
    """

    idle: float | None = None
    whole: float | None = None
    until: float | None = None


def _earliest(until: float | None, start: float, seconds: float | None) -> float | None:
    if seconds is None:
        return until
    return start + seconds if until is None else min(until, start + seconds)


def resolve_host(host: str, port: int) -> str:
    """The IP address to connect to for ``host`` (IPv4 preferred).

    Raises:
        HostNotFound: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise HostNotFound(f"host {host!r} not found ({reason})") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


class Transport:
    """A TCP connection carrying PDUs.

    Args:
        sock: a connected socket (``TCP_NODELAY`` is set on it).
        label: how the peer is named in error messages.
        timeout: seconds a write may take, and the idle and whole-PDU bounds of reads
            until :attr:`bounds` is set.
        budget: what large PDU bodies being read are counted against.
    """

    def __init__(self, sock: socket.socket, label: str, timeout: float | None, *,
                 budget: MemoryBudget = UNLIMITED) -> None:
        self.sock: socket.socket | None = sock
        self.label = label
        self.budget = budget
        self.bounds = ReadBounds(timeout, timeout)
        self._buffer = bytearray()
        self._read_ahead = memoryview(bytearray(READ_AHEAD))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.timeout = timeout
        self.set_timeout(timeout)

    @classmethod
    def connect(cls, host: str, port: int, *, label: str, connect_timeout: float,
                timeout: float | None) -> Transport:
        """Open a TCP connection to ``host:port``.

        Raises:
            HostNotFound, ConnectionRefused, NetworkTimeout, NetworkError: no connection.
        """
        address = resolve_host(host, port)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(connect_timeout)
        try:
            sock.connect((address, port))
        except ConnectionRefusedError:
            sock.close()
            raise ConnectionRefused(f"{label}: connection refused (nothing listens on port {port})") from None
        except TimeoutError:
            sock.close()
            raise NetworkTimeout(f"{label}: no TCP connection within {connect_timeout:g} s") from None
        except OSError as exc:
            sock.close()
            raise NetworkError(f"{label}: cannot connect: {exc.strerror or exc}") from None
        return cls(sock, label, timeout)

    def set_timeout(self, timeout: float | None) -> None:
        """Seconds a write may take, and a read may wait for a PDU and then take to read
        it, from now on (None: forever)."""
        self.timeout = timeout
        self.bounds = ReadBounds(timeout, timeout)
        if self.sock is not None:
            self.sock.settimeout(timeout)

    @property
    def local_address(self) -> str:
        """Our IP address on this connection, or "" once it is closed."""
        try:
            return str(self.sock.getsockname()[0]) if self.sock is not None else ""
        except OSError:
            return ""

    @property
    def peer_address(self) -> tuple[str, int]:
        """The peer's address and port, or ("", 0) once the connection is closed."""
        try:
            host, port = self.sock.getpeername()[:2] if self.sock is not None else ("", 0)
            return str(host), int(port)
        except OSError:
            return "", 0

    def has_pending(self) -> bool:
        """Whether the peer has sent bytes we have not read yet."""
        if self._buffer:
            return True
        if self.sock is None:
            return False
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def wait_readable(self, seconds: float, wake: int) -> bool:
        """Wait until the peer has sent something not read yet (True), or for at most
        ``seconds`` or until the file descriptor ``wake`` is readable (False)."""
        if self._buffer:
            return True
        if self.sock is None:
            return False
        try:
            return self.sock in select.select([self.sock, wake], [], [], max(0.0, seconds))[0]
        except (OSError, ValueError):
            return False

    def read_pdu(self, limit: int) -> tuple[int, bytearray]:
        """The next whole PDU: its type, and its bytes (header included), within
        :attr:`bounds`.

        Raises:
            PduTooLarge: its length field is above ``limit``; nothing of its body is read.
            OverBudget: its body would take the memory budget over its limit.
            AssociationAborted: the connection was closed or lost.
            NetworkTimeout: no whole PDU within the bounds.
        """
        bounds = self.bounds
        start = time.monotonic()
        deadline = _earliest(bounds.until, start, bounds.idle)
        if not self._buffer:
            self._buffer += self._read_ahead[:self._receive_into(self._read_ahead, deadline, start)]
            start = time.monotonic()
        deadline = _earliest(bounds.until, start, bounds.whole)
        header = self._read_exactly(PDU_HEADER, deadline, start)
        pdu_type = header[0]
        length = struct.unpack_from(">I", header, 2)[0]
        if length > limit:
            raise PduTooLarge(f"{self.label} sent a PDU of {length} bytes (at most {limit} accepted)",
                              pdu_type, length)
        return pdu_type, self._read_exactly(length, deadline, start, header)

    def _read_exactly(self, count: int, deadline: float | None, start: float,
                      head: bytearray | None = None) -> bytearray:
        """``head`` followed by the next ``count`` bytes, in one buffer."""
        at = len(head) if head is not None else 0
        if count > READ_AHEAD and len(self._buffer) < count:
            return self._read_large(count, deadline, start, head, at)
        while len(self._buffer) < count:
            self._buffer += self._read_ahead[:self._receive_into(self._read_ahead, deadline, start)]
        out = head + self._buffer[:count] if head is not None else self._buffer[:count]
        del self._buffer[:count]
        return out

    def _read_large(self, count: int, deadline: float | None, start: float,
                    head: bytearray | None, at: int) -> bytearray:
        """A body beyond the read-ahead buffer, read straight into its own buffer, which
        is counted against the budget while it fills if it is over :data:`COUNTED_PDU`."""
        size = at + max(len(self._buffer), min(count, PREALLOCATED))
        counted = count > COUNTED_PDU
        reserved = 0
        try:
            if counted:
                reserved = self._reserve(size, reserved)
            out = bytearray(size)
            if head is not None:
                out[:at] = head
            filled = at + len(self._buffer)
            out[at:filled] = self._buffer
            self._buffer.clear()
            end = at + count
            while filled < end:
                if filled == len(out):
                    grow = min(len(out), end - len(out))
                    if counted:
                        reserved = self._reserve(grow, reserved)
                    out += bytes(grow)
                with memoryview(out) as view, view[filled:] as free:
                    filled += self._receive_into(free, deadline, start)
            return out
        finally:
            self.budget.release(reserved)

    def _reserve(self, size: int, reserved: int) -> int:
        if not self.budget.reserve(size):
            raise OverBudget(f"a PDU from {self.label} would take the memory of all associations over "
                             f"{self.budget.limit >> 20} MiB")
        return reserved + size

    def _receive_into(self, target: memoryview, deadline: float | None, start: float) -> int:
        sock = self.sock
        if sock is None:
            raise AssociationAborted(f"the connection to {self.label} is closed")
        try:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
            else:
                sock.settimeout(None)
            received = sock.recv_into(target)
        except TimeoutError:
            waited = (deadline or start) - start
            raise NetworkTimeout(f"no whole PDU from {self.label} within {waited:.3g} s") from None
        except OSError as exc:
            self.close()
            raise AssociationAborted(f"connection to {self.label} lost: {exc.strerror or exc}") from None
        if not received:
            self.close()
            raise AssociationAborted(f"{self.label} closed the connection")
        return received

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` (whole PDUs).

        Raises:
            AssociationAborted: the connection is lost or closed.
            NetworkTimeout: the peer stopped reading for longer than the timeout.
        """
        if self.sock is None:
            raise AssociationAborted(f"the connection to {self.label} is closed")
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except TimeoutError:
            raise NetworkTimeout(f"{self.label} stopped reading ({self.timeout:g} s)") from None
        except OSError as exc:
            self.close()
            raise AssociationAborted(f"connection to {self.label} lost: {exc.strerror or exc}") from None

    def write_quietly(self, data: bytes) -> None:
        """Write ``data`` if the connection is still there, ignoring any error (an
        A-ABORT on the way out)."""
        if self.sock is None:
            return
        try:
            self.sock.settimeout(1.0)
            self.sock.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        """Close the connection (idempotent)."""
        sock, self.sock = self.sock, None
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
