"""DIMSE messages straight on the socket, for the hot paths.

pynetdicom runs every association on two reactor threads; each message crosses them
through queues, which costs about a millisecond per small instance. For a C-STORE SCU the
conversation is a strict request/response alternation, so once pynetdicom has negotiated
the association, :class:`DirectChannel` takes it over: both reactor threads are stopped
and messages are written and read as P-DATA-TF PDUs (PS3.8 9.3.5) by the calling thread.
The channel ends the association itself, with A-RELEASE (or A-ABORT on error).
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from pynetdicom.association import Association

from pacskit.errors import AssociationAborted, NetworkError, NetworkTimeout
from pacskit.nodes import Node

P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07
PDV_OVERHEAD = 6  # item length (4), presentation context ID (1), message control header (1)
UNBOUNDED_FRAGMENT = 1 << 20
MAX_INCOMING_PDU = 64 << 20
MAX_COMMAND = 64 << 10
SEND_BATCH = 256 << 10
READ_AHEAD = 64 << 10
PREALLOCATED = 4 << 20
LAST_FRAGMENT = 0x02
COMMAND = 0x01


Fragment = bytes | bytearray | memoryview


class DataSink(Protocol):
    """Where a dataset goes as it arrives, fragment by fragment. A fragment may be a view
    into the PDU it came in, which stays valid for as long as the view is kept."""

    def write(self, data: Fragment) -> None: ...

    def discard(self) -> None: ...


SinkFactory = Callable[[int, dict[int, bytes]], "DataSink | None"]


@dataclass
class Message:
    """A received DIMSE message: its command elements (raw values) and dataset — bytes,
    or the :class:`DataSink` that took them."""

    context_id: int
    command: dict[int, bytes]
    data: bytes | None
    sink: DataSink | None = None

    def us(self, element: int) -> int | None:
        """An US command element (group 0000) as an int."""
        raw = self.command.get(element)
        return struct.unpack("<H", raw[:2])[0] if raw and len(raw) >= 2 else None

    def text(self, element: int) -> str:
        """A text or UI command element, without padding."""
        return self.command.get(element, b"").rstrip(b"\0 ").decode("ascii", "replace")


class ReleaseRequested(AssociationAborted):
    """The peer asked to end the association (A-RELEASE-RQ) instead of sending a message."""


class Channel:
    """DIMSE messages on a connected socket, as P-DATA-TF PDUs (PS3.8 9.3.5).

    Args:
        sock: the connected socket (``None`` until a subclass has it).
        label: how the peer is named in error messages.
        timeout: seconds to wait for each read or write.
        peer_max: the largest PDU the peer accepts (0: no limit).
    """

    def __init__(self, sock: socket.socket | None, label: str, timeout: float, peer_max: int) -> None:
        self.sock = sock
        self.label = label
        self.timeout = timeout
        self.peer_max = peer_max
        self.max_data: int | None = None
        self._buffer = bytearray()
        self._read_ahead = memoryview(bytearray(READ_AHEAD))

    def has_pending(self) -> bool:
        """Whether the peer has sent something not read yet (a C-CANCEL, say)."""
        if self._buffer:
            return True
        if self.sock is None:
            return False
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def send(self, context_id: int, command: bytes, data: bytes | BinaryIO | None = None) -> None:
        """Send a command set and its dataset (bytes, or a file positioned at the dataset,
        read fragment by fragment). The command shares the first PDU with the first
        dataset fragment when both fit; PDUs are written in batches of about
        :data:`SEND_BATCH` bytes."""
        fragment = (self.peer_max or UNBOUNDED_FRAGMENT) - PDV_OVERHEAD
        pending: list[bytes] = []
        pending_size = 0
        items = [_pdv(context_id, COMMAND | LAST_FRAGMENT, command)]
        size = len(items[0])
        if data is not None:
            for chunk, last in _fragments(data, fragment):
                item = _pdv(context_id, LAST_FRAGMENT if last else 0x00, chunk)
                if size + len(item) > fragment + PDV_OVERHEAD:
                    pdu = _p_data_tf(items)
                    pending.append(pdu)
                    pending_size += len(pdu)
                    items, size = [], 0
                    if pending_size >= SEND_BATCH:
                        self.write(b"".join(pending))
                        pending, pending_size = [], 0
                items.append(item)
                size += len(item)
        pending.append(_p_data_tf(items))
        self.write(b"".join(pending))

    def receive(self, sink: SinkFactory | None = None) -> Message:
        """Read one whole DIMSE message (command, and dataset if the command says so).

        ``sink(context_id, command)``, called once the command is read, may return a
        :class:`DataSink` that takes the dataset's fragments as they arrive, instead of
        memory; it is discarded if the message does not arrive whole.

        Raises:
            AssociationAborted: the peer aborted or closed the connection
                (:class:`ReleaseRequested` when it asked to release the association), or
                sent more than :attr:`max_data` bytes of dataset to keep in memory.
            NetworkTimeout: nothing within the DIMSE timeout.
        """
        command = bytearray()
        data: list[memoryview] = []
        size = 0
        parsed: dict[int, bytes] | None = None
        target: DataSink | None = None
        try:
            while True:
                for context_id, control, value in self._read_p_data():
                    if control & COMMAND:
                        command += value
                        if len(command) > MAX_COMMAND:
                            raise AssociationAborted(f"{self.label} sent a command set of over {MAX_COMMAND} bytes")
                        if control & LAST_FRAGMENT:
                            parsed = parse_command(bytes(command))
                            if parsed.get(0x0800, b"\x01\x01")[:2] == b"\x01\x01":
                                return Message(context_id, parsed, None)
                            target = sink(context_id, parsed) if sink is not None else None
                            if target is not None:
                                for early in data:
                                    target.write(early)
                                data.clear()
                        continue
                    if target is not None:
                        target.write(value)
                    else:
                        data.append(value)
                        size += len(value)
                        if self.max_data is not None and size > self.max_data:
                            raise AssociationAborted(f"{self.label} sent a dataset of over {self.max_data} bytes")
                    if control & LAST_FRAGMENT and parsed is not None:
                        return Message(context_id, parsed, None if target is not None else b"".join(data), target)
        except BaseException:
            if target is not None:
                target.discard()
            raise

    def _read_p_data(self) -> list[tuple[int, int, memoryview]]:
        """The presentation data values of the next P-DATA-TF PDU, as views into it."""
        pdu_type, body = self.read_pdu()
        if pdu_type == A_ABORT:
            self.sock = None
            raise AssociationAborted(f"{self.label} aborted the association")
        if pdu_type == A_RELEASE_RQ:
            raise ReleaseRequested(f"{self.label} released the association")
        if pdu_type != P_DATA_TF:
            raise AssociationAborted(f"{self.label} sent an unexpected PDU (type {pdu_type})")
        items = []
        view = memoryview(body)
        pos = 0
        while pos + PDV_OVERHEAD <= len(body):
            length = struct.unpack_from(">I", body, pos)[0]
            if length < 2 or pos + 4 + length > len(body):
                raise AssociationAborted(f"{self.label} sent a malformed P-DATA-TF PDU")
            items.append((body[pos + 4], body[pos + 5], view[pos + 6:pos + 4 + length]))
            pos += 4 + length
        return items

    def read_pdu(self, limit: int | None = None) -> tuple[int, bytearray]:
        """One whole PDU: its type and body (at most ``limit`` bytes, by default the
        larger of 64 MiB and the peer's maximum).

        Raises:
            AssociationAborted: the PDU is too large, or the connection is lost.
            NetworkTimeout: nothing within the timeout.
        """
        header = self._read_exactly(6)
        pdu_type, length = header[0], struct.unpack_from(">I", header, 2)[0]
        if length > (limit or max(MAX_INCOMING_PDU, self.peer_max)):
            raise AssociationAborted(f"{self.label} sent a PDU of {length} bytes")
        return pdu_type, self._read_exactly(length)

    def _read_exactly(self, count: int) -> bytearray:
        """``count`` bytes: small reads go through a read-ahead buffer (several PDUs per
        system call); the rest of a large one is read straight into its own buffer, which
        grows with what arrives beyond :data:`PREALLOCATED` (a peer's announced length
        alone does not make us allocate)."""
        if count > READ_AHEAD and len(self._buffer) < count:
            out = bytearray(max(len(self._buffer), min(count, PREALLOCATED)))
            filled = len(self._buffer)
            out[:filled] = self._buffer
            self._buffer.clear()
            while filled < count:
                if filled == len(out):
                    out += bytes(min(len(out), count - len(out)))
                with memoryview(out) as view, view[filled:] as free:
                    filled += self._receive_into(free)
            return out
        while len(self._buffer) < count:
            self._buffer += self._read_ahead[:self._receive_into(self._read_ahead)]
        out = self._buffer[:count]
        del self._buffer[:count]
        return out

    def _receive_into(self, target: memoryview) -> int:
        assert self.sock is not None
        try:
            received = self.sock.recv_into(target)
        except TimeoutError:
            raise NetworkTimeout(f"no answer from {self.label} within {self.timeout:g} s") from None
        except OSError as exc:
            raise AssociationAborted(f"connection to {self.label} lost: {exc}") from None
        if not received:
            self.sock = None
            raise AssociationAborted(f"{self.label} closed the connection")
        return received

    def write(self, data: bytes) -> None:
        """Write raw bytes (whole PDUs).

        Raises:
            AssociationAborted, NetworkTimeout: the peer is gone or stopped reading.
        """
        assert self.sock is not None
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise NetworkTimeout(f"{self.label} stopped reading ({self.timeout:g} s)") from None
        except OSError as exc:
            self.sock = None
            raise AssociationAborted(f"connection to {self.label} lost: {exc}") from None

    def abort(self) -> None:
        """Send A-ABORT (PS3.8 9.3.8), if the connection is still there."""
        if self.sock is None:
            return
        try:
            self.sock.sendall(struct.pack(">BBIBBBB", A_ABORT, 0, 4, 0, 0, 0, 0))
        except OSError:
            pass


class DirectChannel(Channel):
    """An established association, taken over from pynetdicom (see the module docstring).

    Raises:
        NetworkError: on entry, if pynetdicom's reactors do not stop in time.
    """

    def __init__(self, assoc: Association, node: Node, timeout: float) -> None:
        super().__init__(None, node.label, timeout, int(assoc.acceptor.maximum_length or 0))
        self.assoc = assoc
        self.node = node

    def __enter__(self) -> DirectChannel:
        assoc = self.assoc
        assoc._reactor_checkpoint.clear()
        deadline = time.monotonic() + self.timeout
        while not assoc._is_paused and assoc.is_established and time.monotonic() < deadline:
            time.sleep(0.0001)
        dul = assoc.dul
        dul._kill_thread = True
        wake = getattr(dul, "_wake", None)
        if wake is not None:
            wake()
        dul.join(self.timeout)
        if dul.is_alive() or dul.socket is None or dul.socket.socket is None:
            raise NetworkError(f"cannot take over the association with {self.node.label}")
        self.sock = dul.socket.socket
        self.sock.settimeout(self.timeout)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._release()
            else:
                self.abort()
        finally:
            self._close()

    def _release(self) -> None:
        if self.sock is None:
            return
        self.write(struct.pack(">BBII", A_RELEASE_RQ, 0, 4, 0))
        try:
            while True:
                pdu_type, _ = self.read_pdu()
                if pdu_type in (A_RELEASE_RP, A_ABORT):
                    return
        except (NetworkError, AssociationAborted):
            return

    def _close(self) -> None:
        assoc = self.assoc
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if assoc.dul.socket is not None:
            assoc.dul.socket.close()
        assoc.is_established = False
        assoc.is_released = True
        assoc._kill = True
        assoc._reactor_checkpoint.set()


def _pdv(context_id: int, control: int, value: bytes) -> bytes:
    return struct.pack(">IBB", len(value) + 2, context_id, control) + value


def _p_data_tf(items: list[bytes]) -> bytes:
    body = b"".join(items)
    return struct.pack(">BBI", P_DATA_TF, 0, len(body)) + body


def _fragments(data: bytes | BinaryIO, size: int) -> Iterator[tuple[bytes, bool]]:
    """``data`` in pieces of at most ``size`` bytes, each with whether it is the last; an
    empty dataset is one empty piece (the message still needs its last fragment)."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), size):
            yield bytes(view[start:start + size]), start + size >= len(view)
        if not view:
            yield b"", True
        return
    chunk = data.read(size)
    if not chunk:
        yield b"", True
    while chunk:
        following = data.read(size)
        yield chunk, not following
        chunk = following


def parse_command(raw: bytes) -> dict[int, bytes]:
    """The elements of a command set (group 0000, Implicit VR Little Endian) by element
    number, values raw."""
    elements: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(raw):
        group, element, length = struct.unpack_from("<HHI", raw, pos)
        if group != 0x0000 or pos + 8 + length > len(raw):
            break
        elements[element] = raw[pos + 8:pos + 8 + length]
        pos += 8 + length
    return elements
