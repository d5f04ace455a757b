"""PDUs read and written on a connected socket with deadlines: every read returns or
fails within its timeout, so a test whose peer goes quiet fails instead of hanging."""

from __future__ import annotations

import socket
import struct
import time

from raw_pdu import (
    A_ABORT_PDU,
    COMMAND_FRAGMENT,
    LAST_FRAGMENT,
    P_DATA_TF_PDU,
    Abort,
    Message,
    has_data_set,
    message_pdvs,
    p_data_tf,
    parse_command,
    parse_pdvs,
)

Pdu = tuple[int, bytes]


def describe_p_data(body: bytes) -> str:
    """The PDVs of a P-DATA-TF: context, and command field and status of a command."""
    described = []
    for context_id, control, value in parse_pdvs(body):
        if control & COMMAND_FRAGMENT and control & LAST_FRAGMENT:
            message = Message(context_id, parse_command(value))
            status = f"0x{message.status:04X}" if message.status is not None else "-"
            described.append(f"context {context_id}: command 0x{message.command_field or 0:04X} status {status}")
        else:
            described.append(f"context {context_id}: {'command' if control & COMMAND_FRAGMENT else 'data'} fragment")
    return "; ".join(described)


class PduTimeout(AssertionError):
    """Nothing (or not a whole PDU) arrived before the deadline."""


class UnexpectedPdu(AssertionError):
    """A PDU other than P-DATA-TF arrived while a DIMSE message was awaited."""

    def __init__(self, pdu_type: int, body: bytes) -> None:
        super().__init__(f"PDU type 0x{pdu_type:02X} ({body[:16].hex()}) instead of P-DATA-TF")
        self.pdu_type = pdu_type
        self.body = body


class PduLink:
    """One side of an association's TCP connection, at the PDU level."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._pdvs: list[tuple[int, int, bytes]] = []
        self.closed_by_peer = False

    def send(self, raw: bytes) -> None:
        """Write ``raw`` as is; a connection the peer already dropped is not an error
        (what the peer said before dropping it is still there to be read)."""
        try:
            self.sock.sendall(raw)
        except OSError:
            self.closed_by_peer = True

    def send_message(self, context_id: int, command: bytes, data: bytes | None = None) -> None:
        """One DIMSE message in one P-DATA-TF PDU."""
        self.send(p_data_tf(*message_pdvs(context_id, command, data)))

    def read_pdu(self, timeout: float = 5.0) -> Pdu | None:
        """The next PDU (type, body), or None once the peer has closed the connection.

        Raises:
            PduTimeout: no whole PDU within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        header = self._read_exactly(6, deadline)
        if header is None:
            return None
        pdu_type, _, length = struct.unpack(">BBI", header)
        body = self._read_exactly(length, deadline)
        if body is None:
            raise AssertionError(f"connection closed inside a PDU of type 0x{pdu_type:02X}")
        return pdu_type, body

    def read_message(self, timeout: float = 5.0) -> Message:
        """The next whole DIMSE message (P-DATA-TF PDUs until the last command fragment,
        and the last dataset fragment if the command announces a dataset).

        Raises:
            UnexpectedPdu: another PDU came first (an A-ABORT, say).
            PduTimeout, AssertionError: nothing in time, or the connection closed.
        """
        deadline = time.monotonic() + timeout
        command = bytearray()
        data = bytearray()
        parsed: dict[int, bytes] | None = None
        context: int | None = None
        while True:
            if self._pdvs:
                context_id, control, value = self._pdvs.pop(0)
            else:
                received = self.read_pdu(max(deadline - time.monotonic(), 0.01))
                if received is None:
                    raise AssertionError("connection closed while a DIMSE message was awaited")
                pdu_type, body = received
                if pdu_type != P_DATA_TF_PDU:
                    raise UnexpectedPdu(pdu_type, body)
                self._pdvs.extend(parse_pdvs(body))
                continue
            context = context_id if context is None else context
            if control & COMMAND_FRAGMENT:
                command += value
                if control & LAST_FRAGMENT:
                    parsed = parse_command(bytes(command))
                    if not has_data_set(parsed):
                        return Message(context, parsed)
            else:
                data += value
                if control & LAST_FRAGMENT and parsed is not None:
                    return Message(context, parsed, bytes(data))

    def read_abort(self, timeout: float = 5.0) -> Abort:
        """The A-ABORT the peer sends next.

        Raises:
            AssertionError: another PDU came first (a P-DATA-TF is described by its
                command field and status), or the connection closed without an A-ABORT.
        """
        received = self.read_pdu(timeout)
        if received is None:
            raise AssertionError("the connection closed without an A-ABORT PDU")
        pdu_type, body = received
        if pdu_type == P_DATA_TF_PDU:
            raise AssertionError(f"a P-DATA-TF instead of A-ABORT: {describe_p_data(body)}")
        if pdu_type != A_ABORT_PDU:
            raise AssertionError(f"PDU type 0x{pdu_type:02X} instead of A-ABORT")
        return Abort.parse(body)

    def wait_closed(self, timeout: float = 5.0) -> list[Pdu]:
        """Read until the peer closes the connection; the PDUs it sent before.

        Raises:
            PduTimeout: the connection is still open after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        seen = []
        while (received := self.read_pdu(max(deadline - time.monotonic(), 0.01))) is not None:
            seen.append(received)
        return seen

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _read_exactly(self, size: int, deadline: float) -> bytes | None:
        while len(self._buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PduTimeout(f"no whole PDU within the deadline ({len(self._buffer)} of {size} bytes)")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(max(size - len(self._buffer), 65536))
            except TimeoutError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed_by_peer = True
                return None
            self._buffer += chunk
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken
