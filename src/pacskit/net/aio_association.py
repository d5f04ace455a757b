"""One association on asyncio streams, the requestor side (PS3.7 Section 9, PS3.8 Section 9):
the same state machine (:class:`~pacskit.net.ul.fsm.UpperLayer`), message assembly
(:mod:`pacskit.net.assembly`) and DIMSE exchange (:class:`~pacskit.net.exchange.MessageExchange`)
as the blocking :class:`~pacskit.net.association.Association`, driven without a thread.

:func:`associate` opens the connection (``loop.create_connection`` with a
:class:`~pacskit.net.aio_pdu_stream.PduStream`, DICOM TLS with a context of
:mod:`pacskit.net.tls`), negotiates, and releases or aborts when the block
ends. Time is bounded as on the blocking driver: the A-ASSOCIATE-AC within the ACSE
timeout, every later PDU within the DIMSE timeout of the previous one and then within
as long again from its first byte to its last, the wait for the peer to close after a
release within ARTIM (PS3.8 9.1.5). A PDU already received is taken without waiting or
arming a timer; a read or a write that waits can be cancelled at any moment, and what was
received of a PDU stays buffered.

A handler of the peer's requests may have an ``answer`` coroutine
(:meth:`AsyncAssociation.served`): it is awaited, and nothing more is read from the
association until it has answered — the peer is held back by TCP flow control.

Writes: :meth:`AsyncAssociation.send` buffers a message on the stream without waiting
(for responses sent by a handler, as a C-GET's C-STORE-RSP);
:meth:`AsyncAssociation.send_message` writes one and waits until the stream has taken it,
in batches of :data:`~pacskit.net.association.SEND_BATCH` bytes, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager, nullcontext
from typing import Any, BinaryIO

from pynetdicom.presentation import PresentationContext

from pacskit.errors import (
    AssociationAborted,
    ConnectionRefused,
    DimseError,
    HostNotFound,
    NetworkError,
    NetworkTimeout,
    TlsFailure,
)
from pacskit.net import exchange_log, tls
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.net.aio_pdu_stream import PduStream, PeerClosed
from pacskit.net.association import MAX_NEGOTIATION_PDU, SEND_BATCH, identity_for
from pacskit.net.commands import COMMAND_FIELD, MESSAGE_ID
from pacskit.net.exchange import DATA, MessageExchange
from pacskit.net.memory_budget import UNLIMITED, MemoryBudget
from pacskit.net.transport import PDU_HEADER, PduTooLarge, TlsAborted, TlsOnPlainPort
from pacskit.net.ul.fsm import CloseTransport, Indication, OpenTransport, SendPdu, State
from pacskit.net.ul.negotiation import Proposal
from pacskit.net.wire import Message, SinkFactory, parse_command
from pacskit.nodes import Node
from pacskit.settings import Settings

CANCEL_GRACE = 0.5
"""Seconds a peer has to answer a C-CANCEL with its final response, or an A-RELEASE-RQ
sent after it, before it is aborted."""
ABORT_UNSENT = 1 << 20
"""Past this many bytes still unwritten, an abort drops them (and its A-ABORT) instead of
waiting for a peer that does not read."""


class AsyncAssociation(MessageExchange):
    """An association on a :class:`~pacskit.net.aio_pdu_stream.PduStream`, the requestor side.

    Attributes:
        timeout: seconds each PDU may take to start arriving, and then to arrive whole,
            and a write to be taken (the DIMSE timeout once established).
    """

    def __init__(self, stream: PduStream, label: str, *, max_pdu: int, artim_timeout: float,
                 timeout: float | None, tls_used: bool = False, budget: MemoryBudget = UNLIMITED) -> None:
        super().__init__(label, max_pdu=max_pdu, artim_timeout=artim_timeout, budget=budget)
        self.stream = stream
        self.timeout = timeout
        self.tls = tls_used
        self._open = True
        self._first_read = True
        self.settled = False
        """True once a request left early has had its final response: the association can
        be released instead of aborted."""

    # -- establishment -----------------------------------------------------------------

    @classmethod
    async def connect(cls, settings: Settings, node: Node, proposal: Proposal) -> AsyncAssociation:
        """Connect to ``node`` and negotiate ``proposal``; as
        :meth:`pacskit.net.association.Association.connect`, with the same errors."""
        context = tls.client_context(settings.tls) if node.tls or settings.tls.always else None
        stream = await _open(node, settings.connect_timeout, context)
        association = cls(stream, node.label, max_pdu=settings.max_pdu,
                          artim_timeout=settings.acse_timeout, timeout=settings.acse_timeout,
                          tls_used=context is not None)
        if context is not None:
            _log_tls(stream, node.label)
        try:
            await association._negotiate(settings, node, proposal)
        except BaseException:
            await association.closed()
            raise
        return association

    async def _negotiate(self, settings: Settings, node: Node, proposal: Proposal) -> None:
        """Send the A-ASSOCIATE-RQ and read its answer, within the ACSE timeout."""
        try:
            self._run(self.ul.associate_request(proposal.encode()), expect_open=True)
            self.log_requested(proposal, node, settings.max_pdu)
            self._run(self.ul.transport_confirmed())
            until = time.monotonic() + settings.acse_timeout
            try:
                indication = await self._next_indication(MAX_NEGOTIATION_PDU, until=until)
                self.conclude_negotiation(indication, proposal, node)
            except NetworkTimeout:
                self.abort()
                raise NetworkTimeout(f"{node.description}: no answer to the association request "
                                     f"within {settings.acse_timeout:g} s") from None
        except TlsOnPlainPort:
            self.close()
            raise TlsFailure(f"{node.description} answers in TLS: it expects DICOM TLS on port {node.port} "
                             "(--tls, a dicoms:// address, or tls = true for the node)") from None
        except AssociationAborted as exc:
            self.close()
            if self.tls or isinstance(exc, TlsFailure) or \
                    not any(text in str(exc) for text in ("closed the connection", "lost:")):
                raise
            raise AssociationAborted(f"{node.description} closed the connection without answering the "
                                     "association request (if it expects DICOM TLS: --tls, a dicoms:// "
                                     "address, or tls = true for the node)") from None
        except asyncio.CancelledError:
            self.abort()  # Sta5 + Evt15 is AA-1: A-ABORT, even before the answer (PS3.8 9.2)
            raise
        except BaseException:
            self.close()
            raise
        self.negotiation_done()
        self.timeout = settings.dimse_timeout
        self.log_accepted(len(proposal.numbered))

    # -- the upper layer's outputs -------------------------------------------------------

    def _run(self, outputs: list[Any], *, expect_open: bool = False) -> list[Indication]:
        indications = []
        for output in outputs:
            if isinstance(output, SendPdu):
                exchange_log.pdu("sent", peer=self.label, pdu_type=output.data[0], length=len(output.data))
                self._write(output.data)
            elif isinstance(output, Indication):
                indications.append(output)
            elif isinstance(output, CloseTransport):
                self._close_stream()
            elif isinstance(output, OpenTransport) and not expect_open:
                raise NetworkError("the upper layer asked for a connection in the middle of an association")
        return indications

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._open or self.stream.is_closing():
            raise AssociationAborted(f"the connection to {self.label} is closed")
        self.stream.write(data)

    async def _drain(self) -> None:
        try:
            await self.stream.drain(self.timeout)
        except TimeoutError:
            raise NetworkTimeout(f"{self.label} stopped reading ({self.timeout:g} s)") from None
        except ssl.SSLError as exc:
            self.close()
            raise TlsAborted(f"{self.label}: TLS connection ended: {tls.meaning(exc)}") from None
        except OSError as exc:
            self.close()
            raise AssociationAborted(f"connection to {self.label} lost: {exc.strerror or exc}") from None

    async def _read_pdu(self, limit: int, until: float | None = None) -> tuple[int, bytearray]:
        """The next whole PDU (type, and its bytes header included): its first byte within
        :attr:`timeout`, the rest within as long again, all of it by ``until``
        (``time.monotonic()``) when given.

        Raises:
            PduTooLarge, AssociationAborted, NetworkTimeout: as
                :meth:`pacskit.net.transport.Transport.read_pdu`.
        """
        if not self._open:
            raise AssociationAborted(f"the connection to {self.label} is closed")
        stream = self.stream
        buffer = stream.buffer
        waited = self.timeout
        try:
            if len(buffer) < PDU_HEADER:
                waited = _bound(self.timeout, until)
                await stream.fill(PDU_HEADER, waited)
                buffer = stream.buffer
            if self._first_read:
                self._first_read = False
                if not self.tls and buffer[0] in (tls.TLS_RECORD_HANDSHAKE, tls.TLS_RECORD_ALERT):
                    self.close()
                    raise TlsOnPlainPort(f"{self.label}: the peer speaks TLS on a non-TLS port")
            length = _LENGTH.unpack_from(buffer, 2)[0]
            if length > limit:
                raise PduTooLarge(f"{self.label} sent a PDU of {length} bytes (at most {limit} accepted)",
                                  buffer[0], length)
            if len(buffer) < PDU_HEADER + length:
                waited = _bound(self.timeout, until)
                await stream.fill(PDU_HEADER + length, waited)
            pdu = stream.take(PDU_HEADER + length)
            return pdu[0], pdu
        except TimeoutError:
            raise NetworkTimeout(f"no whole PDU from {self.label} within {waited or 0:.3g} s") from None
        except PeerClosed:
            self._close_stream()
            raise AssociationAborted(f"{self.label} closed the connection") from None
        except ssl.SSLError as exc:
            self._close_stream()
            raise TlsAborted(f"{self.label}: TLS connection ended: {tls.meaning(exc)}") from None
        except OSError as exc:
            self._close_stream()
            raise AssociationAborted(f"connection to {self.label} lost: {exc.strerror or exc}") from None

    async def _next_indication(self, limit: int, until: float | None = None) -> Indication:
        """Read PDUs until the state machine has something to tell (see
        :meth:`~pacskit.net.exchange.MessageExchange.take_pdu`)."""
        while True:
            try:
                pdu_type, pdu = await self._read_pdu(limit, until)
            except PduTooLarge as exc:
                self.refuse_too_large(exc)
                raise
            except AssociationAborted:
                self.connection_lost()
                raise
            indication = self.take_pdu(pdu_type, pdu)
            if indication is not None:
                return indication

    # -- DIMSE messages ------------------------------------------------------------------

    def send(self, context_id: int, command: bytes, data: bytes | BinaryIO | None = None) -> None:
        """Buffer a message on the stream without waiting (a handler's response); the
        next read or :meth:`send_message` waits for the stream to take it."""
        for pdu in self.data_pdus(context_id, command, data):
            self._write(pdu)

    async def send_message(self, context_id: int, command: bytes, data: bytes | BinaryIO | None = None) -> None:
        """Send a message, waiting for the stream to take it batch by batch.

        Raises:
            AssociationAborted, NetworkTimeout: the peer is gone or stopped reading, or
                the association has already ended.
        """
        pending = 0
        for pdu in self.data_pdus(context_id, command, data):
            self._write(pdu)
            pending += len(pdu)
            if pending >= SEND_BATCH:
                await self._drain()
                pending = 0
        await self._drain()

    async def receive(self, sink: SinkFactory | None = None) -> Message:
        """Read one whole DIMSE message, as :meth:`pacskit.net.association.Association.receive`."""
        try:
            while True:
                message = self.next_message(sink)
                if message is not None:
                    return message
                self.expect_data(await self._next_indication(self.data_limit()))
        except asyncio.CancelledError:
            raise  # what was read stays assembled: the message may still be read whole
        except BaseException:
            self.assembler.abandon()
            raise

    async def request(self, context_id: int, command: bytes, data: bytes | BinaryIO | None = None,
                      sink: SinkFactory | None = None, *,
                      message_id: int | None = None) -> AsyncGenerator[Message, None]:
        """Send a request and yield its responses, the peer's requests meanwhile served by
        :attr:`handlers`; as :meth:`pacskit.net.association.Association.request`."""
        if message_id is None:
            message_id = struct.unpack("<H", parse_command(command).get(MESSAGE_ID, b"\0\0")[:2])[0]
        self.settled = False
        await self.send_message(context_id, command, data)
        while True:
            message = await self.receive(sink or self.open_request)
            if not self.is_response(message, message_id):
                await self.served(message)
                await self._drain()
                continue
            yield message

    async def served(self, message: Message) -> None:
        """:meth:`~pacskit.net.exchange.MessageExchange.serve`, a handler with an
        ``answer`` coroutine awaited instead (a C-STORE sub-operation whose response waits
        for a forward): no other message of this association is read meanwhile."""
        field = message.us(COMMAND_FIELD) or 0
        answer = getattr(self.handlers.get(field), "answer", None)
        if answer is None or field & 0x8000 or message.over_budget or message.context_id not in self.contexts:
            self.serve(message)
            return
        try:
            await answer(self, self.contexts[message.context_id], message)
        finally:
            self.done(message)

    # -- ending ---------------------------------------------------------------------------

    async def release(self) -> None:
        """Release the association (PS3.8 9.3.6–9.3.7), a collision answered as the
        requestor does (Sta9, AR-9); a peer that does not answer in time is aborted."""
        try:
            self._run(self.ul.release_request())
            await self._drain()
            while self.ul.state not in (State.STA1, State.STA13):
                if await self._next_indication(self.data_limit()) is DATA:
                    self.assembler.clear()
                if self.ul.awaiting_release_response:
                    self._run(self.ul.release_response())
        except NetworkTimeout:
            self.abort()
            return
        except NetworkError:
            pass
        exchange_log.released(peer=self.label, by_peer=False, seconds=self.age())
        await self._linger()

    async def _linger(self) -> None:
        """Sta13: wait for the peer to close the connection, at most until ARTIM expires."""
        deadline = self.ul.artim_deadline
        while self._open and self.ul.state is not State.STA1:
            if deadline is None or deadline <= time.monotonic():
                self._run(self.ul.poll(time.monotonic() if deadline is None else deadline))
                break
            try:
                self._run(self.ul.pdu_received(*await self._read_pdu(MAX_NEGOTIATION_PDU, until=deadline)))
            except (NetworkError, PduTooLarge):
                break
        self.close()

    def abort(self, source: int = 0x00, reason: int = 0x00) -> None:
        """Send A-ABORT (PS3.8 9.3.8) if the connection is still there, and close it."""
        if self._open and self.ul.state not in (State.STA1, State.STA13):
            if self.stream.unsent > ABORT_UNSENT:
                self.stream.abort()
            else:
                try:
                    for output in self.ul.abort(source, reason):
                        if isinstance(output, SendPdu):
                            self.stream.write(bytes(output.data))
                except Exception:  # noqa: BLE001 - aborting must not fail
                    pass
            exchange_log.aborted(peer=self.label, source=source, reason=reason, by_us=True)
        self.close()

    def _close_stream(self) -> None:
        if self._open:
            self._open = False
            self.stream.close()

    async def closed(self) -> None:
        """Close the connection (:meth:`close`) and wait until it is, what is buffered
        written, at most :data:`CANCEL_GRACE` seconds; then it is dropped."""
        self.close()
        try:
            async with asyncio.timeout(CANCEL_GRACE):
                await self.stream.wait_closed()
        except TimeoutError:
            self.stream.abort()
        except Exception:  # noqa: BLE001 - how the connection ended was already reported
            pass

    def close(self) -> None:
        """Close the connection (idempotent); what is buffered is still written, what was
        being received is discarded."""
        self.assembler.abandon()
        self.assembler.release_all()
        self._close_stream()
        if self.ul.state is not State.STA1:
            try:
                self.ul.transport_closed()
            except Exception:  # noqa: BLE001 - the machine may already consider it closed
                pass


_LENGTH = struct.Struct(">I")


def _bound(timeout: float | None, until: float | None) -> float | None:
    if until is None:
        return timeout
    left = max(0.0, until - time.monotonic())
    return left if timeout is None else min(timeout, left)


async def _open(node: Node, connect_timeout: float, context: ssl.SSLContext | None) -> PduStream:
    """A connection to ``node``, TLS with ``context`` (the server's certificate checked
    against its host name if the context checks names); the errors of
    :meth:`pacskit.net.transport.Transport.connect`."""
    label = node.description
    try:
        async with asyncio.timeout(connect_timeout):
            _, stream = await asyncio.get_running_loop().create_connection(
                PduStream, node.host, node.port, ssl=context,
                server_hostname=node.host if context is not None else None)
    except TimeoutError:
        raise NetworkTimeout(f"{label}: no TCP connection within {connect_timeout:g} s") from None
    except socket.gaierror as exc:
        raise HostNotFound(f"host {node.host!r} not found ({exc.strerror or exc})") from None
    except ConnectionRefusedError:
        raise ConnectionRefused(f"{label}: connection refused (nothing listens on port {node.port})") from None
    except ConnectionResetError:
        raise AssociationAborted(f"{label}: the connection was reset as it opened") from None
    except ssl.SSLEOFError:
        raise TlsAborted(f"{label} closed the connection during the TLS handshake "
                         "(does it speak TLS on this port?)") from None
    except ssl.SSLError as exc:
        raise tls.failure(label, exc) from None
    except OSError as exc:
        raise NetworkError(f"{label}: cannot connect: {exc.strerror or exc}") from None
    sock = stream.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    return stream


def _log_tls(stream: PduStream, label: str) -> None:
    sslobj = stream.get_extra_info("ssl_object")
    if sslobj is None:
        return
    cipher = sslobj.cipher()
    exchange_log.tls_session(peer=label, version=sslobj.version() or "", subject=tls.peer_subject(sslobj),
                             cipher=cipher[0] if cipher else "")


@asynccontextmanager
async def associate(settings: Settings, node: Node, contexts: Sequence[PresentationContext], *,
                    roles: dict[str, tuple[bool, bool]] | None = None, extended: Sequence[Any] = (),
                    connections: ConnectionLimit | None = None) -> AsyncIterator[AsyncAssociation]:
    """As :func:`pacskit.net.association.associate`, on asyncio streams: released when the
    block ends (or it raised :class:`~pacskit.errors.DimseError`), aborted if it raises
    anything else — a cancellation or a timeout included. With ``connections``, one of
    its slots for ``node`` is held from before the connection opens until it is closed."""
    async with connections.slot(node) if connections is not None else nullcontext(), \
            _associated(settings, node, contexts, roles, extended) as association:
        yield association


@asynccontextmanager
async def _associated(settings: Settings, node: Node, contexts: Sequence[PresentationContext],
                      roles: dict[str, tuple[bool, bool]] | None,
                      extended: Sequence[Any]) -> AsyncIterator[AsyncAssociation]:
    proposal = Proposal(settings.ae_title, node.ae_title, contexts, settings.max_pdu, roles or {}, extended,
                        identity_for(settings, node))
    association = await AsyncAssociation.connect(settings, node, proposal)
    try:
        yield association
    except DimseError:
        await association.release()
        raise
    except BaseException:
        if association.settled and association.is_established:
            await _release_within(association, CANCEL_GRACE)
        else:
            association.abort()
        raise
    else:
        if association.is_established:
            await association.release()
        else:
            association.close()
    finally:
        association.abort()
        await association.closed()


async def _release_within(association: AsyncAssociation, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await association.release()
    except BaseException:  # noqa: BLE001 - the caller raises what ended the block
        association.abort()
