"""One association, either role: the upper layer state machine driven over a transport,
and DIMSE messages on it (PS3.7 Section 9 and Annex E, PS3.8 Section 9).

An :class:`Association` is driven by one thread at a time. It reads PDUs from its
:class:`~pacskit.net.transport.Transport`, hands each to the state machine
(:class:`~pacskit.net.ul.fsm.UpperLayer`) and carries out what that answers; P-DATA-TF
PDUs are split into their presentation data values, every one of them kept in order, and
assembled into :class:`~pacskit.net.wire.Message` objects, each checked to stay on one
presentation context that was accepted (PS3.8 9.3.5.1).

Requests and responses: :meth:`Association.request` sends a request and yields the
responses whose Message ID Being Responded To is its Message ID; any request the peer
sends meanwhile (the C-STORE sub-operations of a C-GET, an N-EVENT-REPORT) goes to the
handler registered for its command (:attr:`Association.handlers`), on either role. A
request without a handler is answered with a failure status (0x0211 unrecognized
operation, or 0x0122 when the context's SOP class is not the request's) instead of an
abort.

Time and memory: every PDU is read within bounds (:class:`~pacskit.net.transport.ReadBounds`):
the A-ASSOCIATE-RQ within the ACSE timeout of the connection (ARTIM, PS3.8 9.1.5), and
on an established association each PDU within the network timeout (acceptor) or DIMSE
timeout (requestor) of the previous one, and then within as long again from its first
byte to its last. A dataset kept in memory is counted twice (its bytes, and the dataset
decoded from them) against the acceptor's
:class:`~pacskit.net.memory_budget.MemoryBudget` until its request is served; one that
does not fit is dropped as it arrives and its request answered with a failure status
(0xA700 or 0xA701, out of resources), without reaching its handler.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from pacskit.errors import (
    AssociationAborted,
    DimseError,
    NetworkError,
    NetworkTimeout,
    TlsFailure,
)
from pacskit.net import exchange_log
from pacskit.net.commands import MESSAGE_ID
from pacskit.net.exchange import DATA, INVALID_PARAMETER, MessageExchange
from pacskit.net.exchange import ReleaseRequested as ReleaseRequested  # re-exported
from pacskit.net.memory_budget import UNLIMITED, MemoryBudget
from pacskit.net.tls import client_context
from pacskit.net.transport import OverBudget, PduTooLarge, ReadBounds, TlsOnPlainPort, Transport
from pacskit.net.ul.fsm import (
    CloseTransport,
    Indication,
    OpenTransport,
    Primitive,
    SendPdu,
    State,
)
from pacskit.net.ul.negotiation import (
    ContextLike,
    Proposal,
    Rejection,
    Request,
)
from pacskit.net.ul.user_identity import UserIdentity
from pacskit.net.wire import Message, SinkFactory, parse_command
from pacskit.nodes import Node
from pacskit.settings import Settings

if TYPE_CHECKING:
    from pynetdicom.presentation import PresentationContext

LOG = logging.getLogger("pacskit.association")
P_DATA_TF = 0x04
MAX_NEGOTIATION_PDU = 1 << 20
SEND_BATCH = 256 << 10

REASON_NOT_SPECIFIED = 0x00


class Association(MessageExchange):
    """An established association (or one being negotiated), for either role.

    Attributes:
        negotiated: the accepted contexts, the peer's maximum PDU length and identity.
        handlers: the services for the peer's requests, by command field.
        max_data: the most bytes of a dataset kept in memory when no sink takes it.
        budget: what datasets kept in memory are counted against (shared by all the
            associations of an acceptor).

    The DIMSE exchange and the message assembly are :class:`~pacskit.net.exchange.MessageExchange`'s
    and :mod:`pacskit.net.assembly`'s, shared with the asyncio driver; this class does
    the blocking I/O.
    """

    def __init__(self, transport: Transport, label: str, *, max_pdu: int, artim_timeout: float,
                 budget: MemoryBudget = UNLIMITED) -> None:
        super().__init__(label, max_pdu=max_pdu, artim_timeout=artim_timeout, budget=budget)
        self.transport = transport
        self._outbox: list[bytes | bytearray | memoryview] = []

    # -- establishment -----------------------------------------------------------------

    @classmethod
    def connect(cls, settings: Settings, node: Node, proposal: Proposal) -> Association:
        """Connect to ``node`` and negotiate ``proposal`` (the requestor side).

        Raises:
            HostNotFound, ConnectionRefused, NetworkTimeout, NetworkError: no connection.
            AssociationRejected: the peer rejected the association (with its reason).
            AssociationAborted: the peer aborted or closed the connection instead.
        """
        context = client_context(settings.tls) if node.tls or settings.tls.always else None
        transport = Transport.connect(node.host, node.port, label=node.description,
                                      connect_timeout=settings.connect_timeout, timeout=settings.acse_timeout,
                                      context=context)
        try:
            return cls.negotiate(transport, settings, node, proposal)
        except TlsOnPlainPort:
            raise TlsFailure(f"{node.description} answers in TLS: it expects DICOM TLS on port {node.port} "
                             "(--tls, a dicoms:// address, or tls = true for the node)") from None
        except AssociationAborted as exc:
            if context is not None or isinstance(exc, TlsFailure) or \
                    not any(text in str(exc) for text in ("closed the connection", "lost:")):
                raise
            raise AssociationAborted(f"{node.description} closed the connection without answering the "
                                     "association request (if it expects DICOM TLS: --tls, a dicoms:// "
                                     "address, or tls = true for the node)") from None

    @classmethod
    def negotiate(cls, transport: Transport, settings: Settings, node: Node, proposal: Proposal) -> Association:
        """Negotiate ``proposal`` over a connection just opened to ``node``.

        Raises:
            AssociationRejected, AssociationAborted, NetworkTimeout: as :meth:`connect`.
        """
        label = node.label
        request_pdu = proposal.encode()
        association = cls(transport, label, max_pdu=settings.max_pdu, artim_timeout=settings.acse_timeout)
        association._run(association.ul.associate_request(request_pdu), expect_open=True)
        association.log_requested(proposal, node, settings.max_pdu)
        association._run(association.ul.transport_confirmed())
        transport.bounds = ReadBounds(until=time.monotonic() + settings.acse_timeout)
        try:
            association.conclude_negotiation(association._next_indication(MAX_NEGOTIATION_PDU), proposal, node)
        except NetworkTimeout:
            association.abort()
            raise NetworkTimeout(f"{node.description}: no answer to the association request "
                                 f"within {settings.acse_timeout:g} s") from None
        except BaseException:
            association.transport.close()
            raise
        association._established(settings)
        association.log_accepted(len(proposal.numbered))
        return association

    @classmethod
    def incoming(cls, transport: Transport, label: str, settings: Settings, *, since: float | None = None,
                 budget: MemoryBudget = UNLIMITED) -> tuple[Association, Request | None]:
        """A connection a peer opened (the acceptor side), with its A-ASSOCIATE-RQ
        decoded; None when it sent none, or one that cannot be decoded (the connection
        is then aborted or closed).

        The whole A-ASSOCIATE-RQ must arrive within the ACSE timeout of ``since`` (when
        the connection was accepted; now by default): ARTIM runs from the transport
        connection indication (PS3.8 9.2, AE-5), and there is no A-ABORT in Sta2, so a
        peer still sending it at the deadline is disconnected (AA-2).
        """
        association = cls(transport, label, max_pdu=settings.max_pdu, artim_timeout=settings.acse_timeout,
                          budget=budget)
        association._run(association.ul.transport_indication())
        transport.set_timeout(settings.acse_timeout)
        deadline = (time.monotonic() if since is None else since) + settings.acse_timeout
        artim = association.ul.artim_deadline
        transport.bounds = ReadBounds(until=min(deadline, artim) if artim is not None else deadline)
        try:
            indication = association._next_indication(MAX_NEGOTIATION_PDU)
        except NetworkTimeout:
            LOG.warning("%s sent no whole A-ASSOCIATE-RQ within %g s: disconnected", label,
                        settings.acse_timeout)
            association.close()
            return association, None
        except TlsOnPlainPort:
            LOG.warning("%s: the peer speaks TLS on a non-TLS port: disconnected", label)
            association.close()
            return association, None
        except AssociationAborted:
            association.close()
            return association, None
        if indication.primitive is not Primitive.ASSOCIATE_INDICATION:
            association.close()
            return association, None
        try:
            request = Request.decode(bytes(indication.pdu or b""))
        except Exception:  # noqa: BLE001 - a malformed request is aborted
            association.abort(source=0x02, reason=INVALID_PARAMETER)
            return association, None
        return association, request

    def accept(self, request: Request, supported: Sequence[PresentationContext], settings: Settings, *,
               identity_accepted: bool = False) -> None:
        """Answer ``request`` with an A-ASSOCIATE-AC for what we support (with the User
        Identity's positive response, when asked for, if ``identity_accepted``)."""
        pdu, self.negotiated = request.accept(supported, self.max_pdu, identity_accepted=identity_accepted)
        self._run(self.ul.accept(pdu))
        self._established(settings)

    def reject(self, rejection: Rejection) -> None:
        """Answer with an A-ASSOCIATE-RJ, and wait (ARTIM) for the peer to close."""
        try:
            self._run(self.ul.reject(rejection.encode()))
        except NetworkError:
            pass
        self._linger()

    def _established(self, settings: Settings) -> None:
        self.negotiation_done()
        self.transport.set_timeout(settings.dimse_timeout if self.ul.is_requestor else settings.network_timeout)

    # -- the upper layer's outputs -------------------------------------------------------

    def _run(self, outputs: list[Any], *, expect_open: bool = False) -> list[Indication]:
        """Carry out the state machine's outputs; the indications among them."""
        indications = []
        for output in outputs:
            if isinstance(output, SendPdu):
                self._flush()
                exchange_log.pdu("sent", peer=self.label, pdu_type=output.data[0], length=len(output.data))
                self.transport.write(output.data)
            elif isinstance(output, Indication):
                indications.append(output)
            elif isinstance(output, CloseTransport):
                self._flush_quietly()
                self.transport.close()
            elif isinstance(output, OpenTransport) and not expect_open:
                raise NetworkError("the upper layer asked for a connection in the middle of an association")
        return indications

    def _next_indication(self, limit: int) -> Indication:
        """Read PDUs until the state machine has something to tell; a P-DATA-TF's values
        are queued.

        Raises:
            AssociationAborted: the association was aborted, by either side, or the
                connection was lost (after the state machine has answered that).
            NetworkTimeout: nothing came within the timeout.
        """
        while True:
            try:
                pdu_type, pdu = self.transport.read_pdu(limit)
            except PduTooLarge as exc:
                self.refuse_too_large(exc)
                raise
            except OverBudget as exc:
                LOG.warning("%s; the association is aborted", exc)
                self.abort(source=0x02, reason=REASON_NOT_SPECIFIED)
                raise
            except AssociationAborted:
                self.connection_lost()
                raise
            indication = self.take_pdu(pdu_type, pdu)
            if indication is not None:
                return indication

    # -- presentation data values --------------------------------------------------------

    def has_pending(self) -> bool:
        """Whether the peer has sent something not read yet (a C-CANCEL, say)."""
        return self.assembler.pending or self.transport.has_pending()

    # -- DIMSE messages ------------------------------------------------------------------

    def send(self, context_id: int, command: bytes, data: bytes | BinaryIO | None = None) -> None:
        """Send a command set and its dataset (bytes, or a file positioned at the dataset,
        read fragment by fragment) on ``context_id``. The command shares the first PDU with
        the first dataset fragment when both fit; PDUs are written in batches of about
        :data:`SEND_BATCH` bytes.

        Raises:
            AssociationAborted, NetworkTimeout: the peer is gone or stopped reading, or
                the association has already ended (aborted or released meanwhile).
        """
        pending = 0
        for pdu in self.data_pdus(context_id, command, data):
            if pending >= SEND_BATCH:
                self._flush()
                pending = 0
            self._outbox.append(pdu)
            pending += len(pdu)
        self._flush()

    def _flush(self) -> None:
        if self._outbox:
            data = b"".join(self._outbox) if len(self._outbox) > 1 else self._outbox[0]
            self._outbox.clear()
            self.transport.write(data)

    def _flush_quietly(self) -> None:
        try:
            self._flush()
        except NetworkError:
            self._outbox.clear()

    def receive(self, sink: SinkFactory | None = None) -> Message:
        """Read one whole DIMSE message (command, and dataset if the command says so).

        ``sink(context_id, command)``, called once the command is read, may return a
        :class:`~pacskit.net.wire.DataSink` that takes the dataset's fragments as they
        arrive instead of memory; it is discarded if the message does not arrive whole.

        Raises:
            ReleaseRequested: the peer asked to release the association.
            AssociationAborted: the association was aborted or broke the protocol (a
                dataset on another context than its command, a command set of over
                64 KiB, more than :attr:`max_data` bytes to keep in memory).
            NetworkTimeout: nothing within the timeout.
        """
        try:
            while True:
                message = self.next_message(sink)
                if message is not None:
                    return message
                self.expect_data(self._next_indication(self.data_limit()))
        except BaseException:
            self.assembler.abandon()
            raise

    def request(self, context_id: int, command: bytes, data: bytes | BinaryIO | None = None,
                sink: SinkFactory | None = None, *, message_id: int | None = None) -> Iterator[Message]:
        """Send a request and yield its responses: the messages whose Message ID Being
        Responded To is the request's Message ID (PS3.7 9.1.1.1); the caller stops after
        the final one. Requests the peer sends in between are served by :attr:`handlers`
        (their datasets opened by ``sink`` first, then by the handler's ``open``).
        ``message_id`` is the command's Message ID (read from it when not given).

        Raises:
            AssociationAborted: the peer answered another Message ID (the association
                is aborted), or the association was lost.
            NetworkTimeout: no message within the DIMSE timeout.
        """
        if message_id is None:
            message_id = struct.unpack("<H", parse_command(command).get(MESSAGE_ID, b"\0\0")[:2])[0]
        self.send(context_id, command, data)
        while True:
            message = self.receive(sink or self.open_request)
            if not self.is_response(message, message_id):
                self.serve(message)
                continue
            yield message

    # -- ending ---------------------------------------------------------------------------

    def release(self) -> None:
        """Release the association (PS3.8 9.3.6–9.3.7), answering a release collision as
        the Standard asks (Table 9-10: Sta9/AR-9 for a requestor, Sta10/AR-10/AR-4 for an
        acceptor); a peer that does not answer in time is aborted."""
        try:
            self._run(self.ul.release_request())
            while self.ul.state not in (State.STA1, State.STA13):
                if self._next_indication(self.data_limit()) is DATA:
                    self.assembler.clear()
                if self.ul.awaiting_release_response:
                    self._run(self.ul.release_response())
        except NetworkTimeout:
            self.abort()
            return
        except NetworkError:
            pass
        exchange_log.released(peer=self.label, by_peer=False, seconds=self.age())
        self._linger()

    def release_response(self) -> None:
        """Answer the peer's A-RELEASE-RQ (AR-4) and wait (ARTIM) for it to close."""
        try:
            self._run(self.ul.release_response())
        except NetworkError:
            pass
        exchange_log.released(peer=self.label, by_peer=True, seconds=self.age())
        self._linger()

    def _linger(self) -> None:
        """Sta13: wait for the peer to close the connection, at most until ARTIM expires."""
        deadline = self.ul.artim_deadline
        while self.transport.sock is not None and self.ul.state is not State.STA1:
            left = (deadline - time.monotonic()) if deadline is not None else 0
            if left <= 0:
                self._run(self.ul.poll(time.monotonic() if deadline is None else deadline))
                break
            self.transport.bounds = ReadBounds(until=deadline)
            try:
                self._run(self.ul.pdu_received(*self.transport.read_pdu(MAX_NEGOTIATION_PDU)))
            except (NetworkError, PduTooLarge):
                break
        self.close()

    def abort(self, source: int = 0x00, reason: int = 0x00) -> None:
        """Send A-ABORT (PS3.8 9.3.8), if the connection is still there, and close it."""
        self._outbox.clear()
        if self.transport.sock is not None and self.ul.state not in (State.STA1, State.STA13):
            try:
                for output in self.ul.abort(source, reason):
                    if isinstance(output, SendPdu):
                        self.transport.write_quietly(bytes(output.data))
            except Exception:  # noqa: BLE001 - aborting must not fail
                pass
            exchange_log.aborted(peer=self.label, source=source, reason=reason, by_us=True)
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent), giving back what its messages held of the
        memory budget."""
        self.assembler.release_all()
        self.transport.close()
        if self.ul.state is not State.STA1:
            try:
                self.ul.transport_closed()
            except Exception:  # noqa: BLE001 - the machine may already consider it closed
                pass



@contextmanager
def associate(settings: Settings, node: Node, contexts: Sequence[ContextLike], *,
              roles: dict[str, tuple[bool, bool]] | None = None,
              extended: Sequence[Any] = ()) -> Iterator[Association]:
    """An association with ``node`` proposing ``contexts`` (and SCP/SCU ``roles``),
    released when the block ends, aborted if it raises — but for a failure status the
    peer answered (:class:`~pacskit.errors.DimseError`): the exchange is whole, so the
    association is released.

    Raises:
        HostNotFound, ConnectionRefused, NetworkTimeout, AssociationRejected,
        AssociationAborted, NetworkError: the association could not be established.
    """
    proposal = Proposal(settings.ae_title, node.ae_title, contexts, settings.max_pdu, roles or {}, extended,
                        identity_for(settings, node))
    association = Association.connect(settings, node, proposal)
    try:
        yield association
    except DimseError:
        association.release()
        raise
    except BaseException:
        association.abort()
        raise
    else:
        if association.is_established:
            association.release()
        else:
            association.close()


def identity_for(settings: Settings, node: Node) -> UserIdentity | None:
    """The User Identity (PS3.7 D.3.3.7) sent to ``node``: the one of ``settings.identity``
    (the command line's) if it names a user or a token, else the node's own."""
    chosen = settings.identity
    if chosen.user or chosen.token:
        return UserIdentity.of(username=chosen.user, password=chosen.password, token=chosen.token,
                               response_requested=chosen.response)
    return UserIdentity.of(username=node.username, password=node.password, token=node.token,
                           response_requested=node.identity_response or chosen.response)
