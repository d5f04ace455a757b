"""The one module that touches sockets: TCP connections for the DICOM upper layer
(PS3.8 9.1.1, TCP transport service).

A :class:`Transport` reads whole PDUs (PS3.8 9.3.1: a 6-byte header with the PDU type
and a 4-byte length) and writes bytes. Small reads go through a read-ahead buffer, so
several small PDUs cost one system call; the body of a large PDU is read straight into
its own buffer, which grows with what arrives beyond :data:`PREALLOCATED` (a length a
peer announces is never enough to make us allocate it). Every socket error becomes one
of pacskit's errors here, and nowhere else.

Nothing here relies on ``select()`` alone to know whether bytes are waiting: the
read-ahead buffer is looked at first (a TLS socket will add its own pending bytes).
"""

from __future__ import annotations

import select
import socket
import struct

from pacskit.errors import (
    AssociationAborted,
    ConnectionRefused,
    HostNotFound,
    NetworkError,
    NetworkTimeout,
)

PDU_HEADER = 6
READ_AHEAD = 64 << 10
PREALLOCATED = 4 << 20


class PduTooLarge(AssociationAborted):
    """The peer announced a PDU longer than we accept (PS3.8 D.1, Maximum Length)."""

    def __init__(self, message: str, pdu_type: int, length: int) -> None:
        super().__init__(message)
        self.pdu_type = pdu_type
        self.length = length


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
        timeout: seconds any one read or write may wait.
    """

    def __init__(self, sock: socket.socket, label: str, timeout: float | None) -> None:
        self.sock: socket.socket | None = sock
        self.label = label
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
        """Seconds any one read or write may wait from now on (None: forever)."""
        self.timeout = timeout
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

    def read_pdu(self, limit: int) -> tuple[int, bytearray]:
        """The next whole PDU: its type, and its bytes (header included).

        Raises:
            PduTooLarge: its length field is above ``limit``; nothing of its body is read.
            AssociationAborted: the connection was closed or lost.
            NetworkTimeout: nothing within the timeout.
        """
        header = self._read_exactly(PDU_HEADER)
        pdu_type = header[0]
        length = struct.unpack_from(">I", header, 2)[0]
        if length > limit:
            raise PduTooLarge(f"{self.label} sent a PDU of {length} bytes (at most {limit} accepted)",
                              pdu_type, length)
        return pdu_type, self._read_exactly(length, header)

    def _read_exactly(self, count: int, head: bytearray | None = None) -> bytearray:
        """``head`` followed by the next ``count`` bytes, in one buffer."""
        start = len(head) if head is not None else 0
        if count > READ_AHEAD and len(self._buffer) < count:
            out = bytearray(start + max(len(self._buffer), min(count, PREALLOCATED)))
            if head is not None:
                out[:start] = head
            filled = start + len(self._buffer)
            out[start:filled] = self._buffer
            self._buffer.clear()
            end = start + count
            while filled < end:
                if filled == len(out):
                    out += bytes(min(len(out), end - len(out)))
                with memoryview(out) as view, view[filled:] as free:
                    filled += self._receive_into(free)
            return out
        while len(self._buffer) < count:
            self._buffer += self._read_ahead[:self._receive_into(self._read_ahead)]
        out = head + self._buffer[:count] if head is not None else self._buffer[:count]
        del self._buffer[:count]
        return out

    def _receive_into(self, target: memoryview) -> int:
        if self.sock is None:
            raise AssociationAborted(f"the connection to {self.label} is closed")
        try:
            received = self.sock.recv_into(target)
        except TimeoutError:
            raise NetworkTimeout(f"no answer from {self.label} within {self.timeout:g} s") from None
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
