"""The DIMSE exchange of one association, without I/O (PS3.7 Section 9): what the
blocking driver (:class:`~pacskit.net.association.Association`) and the asyncio one
(:class:`~pacskit.net.aio_association.AsyncAssociation`) share.

:class:`MessageExchange` numbers requests (Message ID, PS3.7 9.1.1.1), tells a response
to the outstanding request from a request of the peer (:meth:`MessageExchange.is_response`),
hands the peer's requests to the handler registered for their command or answers them
with a failure status, turns outgoing messages into P-DATA-TF PDUs through the state
machine (:meth:`MessageExchange.data_pdus`), and logs the exchange
(:mod:`pacskit.net.exchange_log`) the same way on both drivers. A driver provides
:meth:`send` (a small message, written or buffered without waiting) and :meth:`abort`.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, NoReturn, Protocol

from pacskit.errors import AccessDenied, AssociationAborted, AssociationRejected, NetworkError
from pacskit.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacskit.net import exchange_log
from pacskit.net.assembly import MessageAssembler, ProtocolViolation, message_pdus
from pacskit.net.commands import (
    AFFECTED_SOP_CLASS_UID,
    COMMAND_FIELD,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    REQUESTED_SOP_CLASS_UID,
    failure_rsp,
)
from pacskit.net.memory_budget import UNLIMITED, MemoryBudget
from pacskit.net.ul.fsm import Indication, Primitive, SendPdu, State, UpperLayer
from pacskit.net.ul.negotiation import (
    AcceptedContext,
    Negotiated,
    Proposal,
    Rejection,
    read_acceptance,
)
from pacskit.net.wire import DataSink, Message, SinkFactory, parse_command
from pacskit.nodes import Node

LOG = logging.getLogger("pacskit.association")
P_DATA_TF = 0x04

UNRECOGNIZED_OPERATION = 0x0211
SOP_CLASS_NOT_SUPPORTED = 0x0122
RESOURCE_LIMITATION = 0x0213
# PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4, B.2.3: refused, out of resources
OUT_OF_RESOURCES = {0x0001: 0xA700, 0x0020: 0xA700, 0x0010: 0xA701, 0x0021: 0xA701}
NO_RESPONSE = {0x0FFF}  # C-CANCEL-RQ has no response (PS3.7 9.3.2.3)

# PS3.8 9.3.8 A-ABORT provider reasons
PROVIDER_REASONS = {
    0: "reason not specified", 1: "unrecognized PDU", 2: "unexpected PDU",
    4: "unrecognized PDU parameter", 5: "unexpected PDU parameter", 6: "invalid PDU parameter value",
}
INVALID_PARAMETER = 0x06
MAX_UNBOUNDED_PDU = 64 << 20


class ReleaseRequested(AssociationAborted):
    """The peer asked to end the association (A-RELEASE-RQ) instead of sending a message."""


DATA = Indication(Primitive.DATA)
"""What :meth:`MessageExchange.take_pdu` tells when presentation data values were queued."""


class RequestHandler(Protocol):
    """A service for one command of the peer's requests (see :attr:`MessageExchange.handlers`)."""

    def open(self, association: Any, context: AcceptedContext, message: Message) -> DataSink | None:
        """Where the request's dataset goes as it arrives (None: memory), called once its
        command set is read."""

    def handle(self, association: Any, context: AcceptedContext, message: Message) -> None:
        """Carry out the whole request and send its response(s)."""


class MessageExchange:
    """The driver-independent half of an association, for either role.

    Attributes:
        negotiated: the accepted contexts, the peer's maximum PDU length and identity.
        handlers: the services for the peer's requests, by command field.
        assembler: the messages being assembled from what the peer sends.
    """

    def __init__(self, label: str, *, max_pdu: int, artim_timeout: float,
                 budget: MemoryBudget = UNLIMITED) -> None:
        self.label = label
        self.max_pdu = max_pdu
        self.budget = budget
        self.ul = UpperLayer(artim_timeout=artim_timeout, max_pdu_length=max_pdu)
        self.assembler = MessageAssembler(label, budget)
        self.negotiated: Negotiated | None = None
        self.handlers: dict[int, RequestHandler] = {}
        self.peer_max = 0
        self.name_peer = False
        self.started = time.monotonic()
        self._message_id = 0

    # -- to be provided by the driver ----------------------------------------------------

    def send(self, context_id: int, command: bytes, data: bytes | BinaryIO | None = None) -> None:
        raise NotImplementedError

    def abort(self, source: int = 0x00, reason: int = 0x00) -> None:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------

    @property
    def max_data(self) -> int:
        """The most bytes of a dataset kept in memory when no sink takes it."""
        return self.assembler.max_data

    @max_data.setter
    def max_data(self, value: int) -> None:
        self.assembler.max_data = value

    @property
    def contexts(self) -> dict[int, AcceptedContext]:
        """The accepted presentation contexts, by ID."""
        return self.negotiated.contexts if self.negotiated is not None else {}

    @property
    def is_established(self) -> bool:
        return self.ul.state is State.STA6

    def negotiation_done(self) -> None:
        """The association is established: PDVs are checked against its contexts."""
        assert self.negotiated is not None
        self.peer_max = self.negotiated.peer_max_pdu
        self.assembler.contexts = self.negotiated.contexts

    def next_message_id(self) -> int:
        """A Message ID for a new request (PS3.7 9.1.1.1), 1 to 65535 in turn."""
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def data_pdus(self, context_id: int, command: bytes,
                  data: bytes | BinaryIO | None) -> Iterator[bytes | bytearray | memoryview]:
        """The P-DATA-TF PDUs of one message, each passed through the state machine
        (Evt9) and logged as it is produced.

        Raises:
            AssociationAborted: the association has ended (aborted or released meanwhile).
        """
        if self.ul.state not in (State.STA6, State.STA8):
            raise AssociationAborted(f"{self.label}: the association has ended ({self.ul.state.name}); "
                                     "nothing more can be sent on it")
        if exchange_log.DIMSE.isEnabledFor(exchange_log.INFO):
            context = self.contexts.get(context_id)
            exchange_log.message("sent", peer=self.label, context_id=context_id, command=parse_command(command),
                                 dataset=data if isinstance(data, bytes | bytearray) else None,
                                 transfer_syntax=str(context.transfer_syntax) if context else None,
                                 name_peer=self.name_peer)
        for pdu in message_pdus(context_id, command, data, self.peer_max):
            for output in self.ul.send_data(pdu):
                if isinstance(output, SendPdu):
                    exchange_log.pdu("sent", peer=self.label, pdu_type=P_DATA_TF, length=len(pdu))
                    yield output.data

    def received(self, message: Message) -> Message:
        """``message``, logged as received."""
        if exchange_log.DIMSE.isEnabledFor(exchange_log.INFO):
            context = self.contexts.get(message.context_id)
            exchange_log.message("received", peer=self.label, context_id=message.context_id,
                                 command=message.command, dataset=message.data,
                                 transfer_syntax=str(context.transfer_syntax) if context else None,
                                 name_peer=self.name_peer)
        return message

    def is_response(self, message: Message, message_id: int) -> bool:
        """Whether ``message`` is a response to request ``message_id`` (False: a request
        of the peer, to :meth:`serve`).

        Raises:
            AssociationAborted: a response to another Message ID (the association is
                aborted).
        """
        field = message.us(COMMAND_FIELD) or 0
        if not field & 0x8000:
            return False
        answered = message.us(MESSAGE_ID_BEING_RESPONDED_TO)
        if answered != message_id:
            self.abort()
            raise AssociationAborted(f"{self.label} answered message ID {answered} while request "
                                     f"{message_id} was outstanding; the association was aborted")
        return True

    def open_request(self, context_id: int, command: dict[int, bytes]) -> DataSink | None:
        """Where the dataset of the peer's request goes: what its handler opens (a
        :data:`~pacskit.net.wire.SinkFactory`)."""
        handler = self.handlers.get(command_field(command))
        context = self.contexts.get(context_id)
        if handler is None or context is None:
            return None
        return handler.open(self, context, Message(context_id, command, None))

    def done(self, message: Message) -> None:
        """The association is done with ``message``: what its dataset held of the memory
        budget is given back."""
        self.assembler.done(message)

    def serve(self, message: Message) -> None:
        """Hand a request to its handler, or answer it with a failure status: 0xA700 or
        0xA701 (refused, out of resources; 0x0213 for other services) when its dataset
        did not fit in the memory budget. A response that answers nothing we asked is
        dropped (there is nothing to answer it with)."""
        field = message.us(COMMAND_FIELD) or 0
        context = self.contexts[message.context_id]
        if field & 0x8000:
            LOG.warning("%s sent a response (command 0x%04X, to message ID %d) to no outstanding request; "
                        "ignored", self.label, field, message.us(MESSAGE_ID_BEING_RESPONDED_TO) or 0)
            self.done(message)
            if message.sink is not None:
                message.sink.discard()
            return
        if message.over_budget:
            self._refuse_over_budget(message, field, context)
            return
        handler = self.handlers.get(field)
        if handler is not None:
            try:
                handler.handle(self, context, message)
            finally:
                self.done(message)
            return
        self.done(message)
        if message.sink is not None:
            message.sink.discard()
        sop_class = message.text(AFFECTED_SOP_CLASS_UID) or message.text(REQUESTED_SOP_CLASS_UID)
        status = UNRECOGNIZED_OPERATION
        if sop_class and sop_class != context.abstract_syntax:
            status = SOP_CLASS_NOT_SUPPORTED
        LOG.warning("%s sent a request pacskit does not serve here (command 0x%04X on context %d, %s): "
                    "answered 0x%04X", self.label, field, message.context_id, context.abstract_syntax, status)
        if field in NO_RESPONSE:
            return
        self.send(message.context_id, failure_rsp(field | 0x8000, message.us(MESSAGE_ID) or 0,
                                                  sop_class or context.abstract_syntax, status))

    def _refuse_over_budget(self, message: Message, field: int, context: AcceptedContext) -> None:
        status = OUT_OF_RESOURCES.get(field, RESOURCE_LIMITATION)
        sop_class = message.text(AFFECTED_SOP_CLASS_UID) or context.abstract_syntax
        LOG.warning("%s: command 0x%04X refused with 0x%04X (out of resources: memory budget of %d MiB in use)",
                    self.label, field, status, self.budget.limit >> 20)
        if field not in NO_RESPONSE:
            self.send(message.context_id, failure_rsp(field | 0x8000, message.us(MESSAGE_ID) or 0, sop_class,
                                                      status, "out of resources: the server's memory for "
                                                      "requests is in use, try again later"))

    # -- negotiation and ending, the same on every driver ---------------------------------

    def _run(self, outputs: list[Any]) -> list[Indication]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def log_requested(self, proposal: Proposal, node: Node, max_pdu: int) -> None:
        """Log the A-ASSOCIATE-RQ sent (INFO) and its contexts (DEBUG)."""
        exchange_log.association_requested(
            calling=proposal.calling_ae_title, called=proposal.called_ae_title, address=node.host,
            port=node.port, contexts=[(cx.context_id, cx.abstract_syntax, list(cx.transfer_syntax))
                                      for cx in proposal.numbered],
            roles=dict(proposal.roles), max_pdu=max_pdu, implementation=ours(),
            identity=proposal.identity.description if proposal.identity is not None else "")

    def conclude_negotiation(self, indication: Indication, proposal: Proposal, node: Node) -> None:
        """Take the peer's answer to the A-ASSOCIATE-RQ (the requestor side, PS3.8 9.3.3, 9.3.4).

        Raises:
            AssociationRejected: an A-ASSOCIATE-RJ (with its reason).
            AssociationAborted: an A-ABORT, or a malformed A-ASSOCIATE-AC or -RJ (an
                AC is answered with A-ABORT, service provider, invalid PDU parameter value).
            AccessDenied: the user identity's positive response was asked for and is missing.
        """
        if indication.primitive is Primitive.ASSOCIATE_REJECTED:
            try:
                rejection = Rejection.decode(bytes(indication.pdu or b""))
            except ProtocolViolation as exc:
                raise AssociationAborted(f"{node.description} sent a malformed A-ASSOCIATE-RJ: {exc}") from None
            exchange_log.association_rejected(peer=self.label, result=rejection.result,
                                              source=rejection.source, reason=rejection.reason)
            kind = "permanently" if rejection.result == 1 else "transiently"
            hint = " (it may have refused the user identity sent)" \
                if proposal.identity is not None and rejection.result == 1 and rejection.source == 1 else ""
            raise AssociationRejected(f"{node.description} rejected the association {kind}: "
                                      f"{rejection.meaning}{hint}",
                                      result=rejection.result, source=rejection.source,
                                      reason=rejection.reason)
        if indication.primitive is not Primitive.ASSOCIATE_ACCEPTED:
            raise AssociationAborted(f"{node.description} aborted the association request")
        try:
            self.negotiated = read_acceptance(bytes(indication.pdu or b""), proposal)
        except ProtocolViolation as exc:
            self.abort(source=0x02, reason=INVALID_PARAMETER)
            raise AssociationAborted(f"{node.description} sent a malformed A-ASSOCIATE-AC ({exc}); "
                                     "the association was aborted") from None
        if proposal.identity is not None and proposal.identity.response_requested \
                and self.negotiated.identity_response is None:
            self.abort()
            raise AccessDenied(f"{node.description} accepted the association without confirming the user "
                               "identity (no positive response, PS3.7 D.3.3.7)")

    def log_accepted(self, proposed: int, *, by_us: bool = False) -> None:
        """Log what the negotiation accepted (INFO) and each context (DEBUG)."""
        negotiated = self.negotiated
        assert negotiated is not None
        exchange_log.association_accepted(
            peer=self.label,
            accepted=[(cx.context_id, cx.abstract_syntax, str(cx.transfer_syntax), cx.as_scu, cx.as_scp)
                      for cx in negotiated.contexts.values()],
            refused=[(cx.context_id, cx.abstract_syntax, cx.result) for cx in negotiated.refused],
            proposed=proposed, max_pdu=negotiated.peer_max_pdu if not by_us else self.max_pdu,
            implementation=negotiated.peer_implementation if not by_us else ours(), by_us=by_us)

    def told(self, indication: Indication) -> Indication:
        """An indication that ends or changes the association: raise for aborts."""
        primitive = indication.primitive
        if primitive is Primitive.ABORT:
            source, reason = indication.source or 0, indication.reason or 0
            exchange_log.aborted(peer=self.label, source=source, reason=reason, by_us=False)
            self.close()
            why = f" ({PROVIDER_REASONS.get(reason, f'reason {reason}')})" if source == 2 else ""
            raise AssociationAborted(f"{self.label} aborted the association{why}")
        if primitive is Primitive.PROVIDER_ABORT:
            reason = indication.reason or 0
            self.close()
            exchange_log.aborted(peer=self.label, source=2, reason=reason, by_us=True)
            raise AssociationAborted(f"{self.label} broke the protocol: {PROVIDER_REASONS.get(reason, f'reason {reason}')}"
                                     "; the association was aborted")
        if primitive is Primitive.TRANSPORT_CLOSED:
            self.close()
            raise AssociationAborted(f"{self.label} closed the connection")
        return indication

    def protocol_violation(self, what: str) -> NoReturn:
        """Abort (A-ABORT, service provider, invalid PDU parameter value) and raise."""
        self.assembler.abandon()
        try:
            self._run(self.ul.invalid_pdu(INVALID_PARAMETER))
        except NetworkError:
            pass
        self.close()
        exchange_log.aborted(peer=self.label, source=2, reason=INVALID_PARAMETER, by_us=True, why=what)
        raise AssociationAborted(f"{self.label} broke the protocol ({what}); the association was aborted")

    # -- what the peer sends ---------------------------------------------------------------

    def take_pdu(self, pdu_type: int, pdu: bytearray) -> Indication | None:
        """Hand a PDU read to the state machine; a P-DATA-TF's values are queued for
        :meth:`next_message`. What the state machine has to tell (:data:`DATA` when values
        were queued), or None: read on.

        Raises:
            AssociationAborted: the association was aborted, by either side, or the
                connection was closed, or the PDU broke the protocol.
        """
        exchange_log.pdu("received", peer=self.label, pdu_type=pdu_type, length=len(pdu))
        if pdu_type == P_DATA_TF and self.ul.state is State.STA6:
            for indication in self._run(self.ul.pdu_received(pdu_type, pdu)):
                if indication.primitive is Primitive.DATA:
                    self._queue_pdvs(pdu)
                else:
                    return self.told(indication)
            return DATA if self.assembler.pending else None
        for indication in self._run(self.ul.pdu_received(pdu_type, pdu)):
            if indication.primitive is Primitive.DATA:
                self._queue_pdvs(pdu)
                return DATA
            return self.told(indication)
        return None

    def _queue_pdvs(self, pdu: bytearray) -> None:
        try:
            self.assembler.feed(pdu)
        except ProtocolViolation as exc:
            self.protocol_violation(str(exc))

    def next_message(self, sink: SinkFactory | None) -> Message | None:
        """The next whole message of the queued values (logged), or None: read more.

        Raises:
            AssociationAborted: the values broke the protocol (the association is aborted).
        """
        try:
            message = self.assembler.next_message(sink)
        except ProtocolViolation as exc:
            self.protocol_violation(str(exc))
        return self.received(message) if message is not None else None

    def expect_data(self, indication: Indication) -> None:
        """What :meth:`take_pdu` told, while a message is awaited: anything but data ends it.

        Raises:
            ReleaseRequested: the peer asked to release the association.
            AssociationAborted: the association ended otherwise.
        """
        if indication is DATA:
            return
        if indication.primitive is Primitive.RELEASE_INDICATION:
            raise ReleaseRequested(f"{self.label} released the association")
        raise AssociationAborted(f"{self.label} ended the association ({indication.primitive.name})")

    def data_limit(self) -> int:
        """The longest P-DATA-TF accepted (our maximum PDU length, PS3.8 D.1)."""
        return self.max_pdu or MAX_UNBOUNDED_PDU

    def refuse_too_large(self, exc: Exception) -> None:
        """A PDU over our maximum length was announced (Evt19): A-ABORT, and close."""
        self._run(self.ul.invalid_pdu(INVALID_PARAMETER))
        self.close()
        exchange_log.aborted(peer=self.label, source=2, reason=INVALID_PARAMETER, by_us=True, why=str(exc))

    def connection_lost(self) -> None:
        """The connection is gone (Evt17)."""
        try:
            for indication in self._run(self.ul.transport_closed()):
                if indication.primitive is Primitive.ABORT:
                    exchange_log.aborted(peer=self.label, source=indication.source or 0,
                                         reason=indication.reason or 0, by_us=False)
        except NetworkError:
            pass
        self.close()

    def age(self) -> float:
        return time.monotonic() - self.started


def ours() -> tuple[str, str]:
    """Our Implementation Class UID and Version Name (PS3.7 D.3.3.2, D.3.3.3)."""
    return IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME


def command_field(command: dict[int, bytes]) -> int:
    raw = command.get(COMMAND_FIELD, b"\0\0")
    return struct.unpack("<H", raw[:2])[0] if len(raw) >= 2 else 0
