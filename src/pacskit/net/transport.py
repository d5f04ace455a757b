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
bytes are waiting: the read-ahead buffer is looked at first, then the bytes a TLS socket
has decrypted and holds, and a socket timeout bounds each wait.

A connection may be DICOM TLS (PS3.15 B.1): :meth:`Transport.connect` with a client
context does the handshake before the A-ASSOCIATE-RQ, :meth:`Transport.accept_tls`
the server's side of it (see :mod:`pacskit.net.tls` for the profiles). A plain
connection whose peer's first byte is a TLS record type (0x16 handshake, 0x15 alert)
speaks TLS on a non-TLS port: :class:`TlsOnPlainPort`, never a PDU of type 0x16.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import time
from dataclasses import dataclass

from pacskit.errors import (
    AssociationAborted,
    ConnectionRefused,
    HostNotFound,
    NetworkError,
    NetworkTimeout,
    TlsFailure,
)
from pacskit.net import exchange_log, tls
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


class TlsAborted(TlsFailure, AssociationAborted):
    """The connection ended for a TLS reason once open: the peer's alert (our certificate
    refused, or none sent), or TLS where plain DICOM was expected, or the reverse."""


class TlsOnPlainPort(TlsAborted):
    """The peer of a plain connection speaks TLS."""


class PlainOnTlsPort(TlsAborted):
    """The peer of a TLS listener speaks plain DICOM."""


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
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.peer_subject = ""
        self._first_read = True
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.timeout = timeout
        self.set_timeout(timeout)

    @classmethod
    def connect(cls, host: str, port: int, *, label: str, connect_timeout: float,
                timeout: float | None, context: ssl.SSLContext | None = None) -> Transport:
        """Open a TCP connection to ``host:port``; with ``context``, a TLS one, whose
        server certificate is checked against ``host`` if the context checks host names.

        Raises:
            HostNotFound, ConnectionRefused, NetworkTimeout, NetworkError: no connection.
            CertificateRejected: the server's certificate does not verify.
            TlsFailure: no TLS session.
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
        except ConnectionResetError:
            sock.close()
            raise AssociationAborted(f"{label}: the connection was reset as it opened") from None
        except OSError as exc:
            sock.close()
            raise NetworkError(f"{label}: cannot connect: {exc.strerror or exc}") from None
        if context is not None:
            sock = _handshake(sock, label, connect_timeout, context, host)
        transport = cls(sock, label, timeout)
        if context is not None:
            transport.peer_subject = tls.peer_subject(sock)  # type: ignore[arg-type]
            transport.log_tls()
        return transport

    def accept_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        """The server's side of a TLS handshake on this connection, within ``timeout``.

        Raises:
            PlainOnTlsPort: the peer's first byte is not a TLS handshake record.
            TlsAborted: the handshake failed (no common version or suite, no client
                certificate or one that does not verify).
            NetworkTimeout: no handshake within ``timeout``.
        """
        sock = self.sock
        if sock is None:
            raise AssociationAborted(f"the connection to {self.label} is closed")
        sock.settimeout(timeout)
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            self.close()
            raise NetworkTimeout(f"{self.label} sent nothing within {timeout:g} s") from None
        except OSError as exc:
            raise self._lost(exc) from None
        if not first:
            raise self._closed()
        if first[0] != tls.TLS_RECORD_HANDSHAKE:
            self.write_quietly(tls.PROTOCOL_VERSION_ALERT)
            self.close()
            raise PlainOnTlsPort(f"{self.label}: the peer speaks plain DICOM on a TLS port")
        self.sock = None
        wrapped = _handshake(sock, self.label, timeout, context, None)
        self.sock, self.tls, self._first_read = wrapped, True, False
        self.peer_subject = tls.peer_subject(wrapped)
        self.set_timeout(self.timeout)
        self.log_tls()

    def log_tls(self) -> None:
        """Log the TLS session of this connection (version, suite, peer certificate)."""
        sock = self.sock
        if isinstance(sock, ssl.SSLSocket):
            cipher = sock.cipher()
            exchange_log.tls_session(peer=self.label, version=sock.version() or "", subject=self.peer_subject,
                                     cipher=cipher[0] if cipher else "")

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
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
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
        except ssl.SSLError as exc:
            self.close()
            raise TlsAborted(f"{self.label}: TLS connection ended: {tls.meaning(exc)}") from None
        except OSError as exc:
            raise self._lost(exc) from None
        if not received:
            raise self._closed()
        if self._first_read:
            self._first_read = False
            if not self.tls and target[0] in (tls.TLS_RECORD_HANDSHAKE, tls.TLS_RECORD_ALERT):
                self.close()
                raise TlsOnPlainPort(f"{self.label}: the peer speaks TLS on a non-TLS port")
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
        except ssl.SSLError as exc:
            self.close()
            raise TlsAborted(f"{self.label}: TLS connection ended: {tls.meaning(exc)}") from None
        except OSError as exc:
            raise self._lost(exc) from None

    def _lost(self, exc: OSError) -> AssociationAborted:
        self.close()
        return AssociationAborted(f"connection to {self.label} lost: {exc.strerror or exc}")

    def _closed(self) -> AssociationAborted:
        self.close()
        return AssociationAborted(f"{self.label} closed the connection")

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


def _handshake(sock: socket.socket, label: str, timeout: float, context: ssl.SSLContext,
               host: str | None) -> ssl.SSLSocket:
    """``sock`` wrapped in TLS, the handshake done (a client's when ``host`` is given);
    closed if it fails."""
    sock.settimeout(timeout)
    wrapped = context.wrap_socket(sock, server_side=host is None, server_hostname=host,
                                  do_handshake_on_connect=False)
    try:
        wrapped.do_handshake()
        return wrapped
    except ssl.SSLEOFError:
        wrapped.close()
        raise TlsAborted(f"{label} closed the connection during the TLS handshake "
                         "(does it speak TLS on this port?)") from None
    except ssl.SSLError as exc:
        if host is None:
            _close_after_alert(wrapped)
            raise TlsAborted(f"{label}: {tls.meaning(exc)}") from None
        wrapped.close()
        raise tls.failure(label, exc) from None
    except TimeoutError:
        wrapped.close()
        raise NetworkTimeout(f"{label}: no TLS handshake within {timeout:g} s") from None
    except OSError as exc:
        wrapped.close()
        reason = "closed the connection during the TLS handshake"
        if isinstance(exc, ConnectionResetError | BrokenPipeError) or not exc.strerror:
            raise TlsAborted(f"{label} {reason} (does it speak TLS on this port?)") from None
        raise TlsAborted(f"{label}: TLS handshake failed: {exc.strerror}") from None


def _close_after_alert(sock: ssl.SSLSocket, linger: float = 1.0) -> None:
    """Close a connection whose handshake we refused so that our alert reaches the
    peer: end our side, then read what it still sends (its first PDU, after a TLS 1.3
    handshake it thinks complete) until it closes, for at most ``linger`` seconds —
    closing with unread bytes would reset the connection and lose the alert."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(linger)
        deadline = time.monotonic() + linger
        while time.monotonic() < deadline and sock.recv(1 << 16):
            pass
    except OSError:
        pass
    sock.close()
