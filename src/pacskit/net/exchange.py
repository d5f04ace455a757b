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
from typing import Any, BinaryIO, Protocol

from pacskit.errors import AssociationAborted
from pacskit.net import exchange_log
from pacskit.net.assembly import MessageAssembler, message_pdus
from pacskit.net.commands import (
    AFFECTED_SOP_CLASS_UID,
    COMMAND_FIELD,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    REQUESTED_SOP_CLASS_UID,
    failure_rsp,
)
from pacskit.net.memory_budget import UNLIMITED, MemoryBudget
from pacskit.net.ul.fsm import SendPdu, State, UpperLayer
from pacskit.net.ul.negotiation import AcceptedContext, Negotiated
from pacskit.net.wire import DataSink, Message, parse_command

LOG = logging.getLogger("pacskit.association")
P_DATA_TF = 0x04

UNRECOGNIZED_OPERATION = 0x0211
SOP_CLASS_NOT_SUPPORTED = 0x0122
RESOURCE_LIMITATION = 0x0213
# PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4, B.2.3: refused, out of resources
OUT_OF_RESOURCES = {0x0001: 0xA700, 0x0020: 0xA700, 0x0010: 0xA701, 0x0021: 0xA701}
NO_RESPONSE = {0x0FFF}  # C-CANCEL-RQ has no response (PS3.7 9.3.2.3)


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

    def data_pdus(self, context_id: int, command: bytes, data: bytes | BinaryIO | None) -> Iterator[bytes]:
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

    def age(self) -> float:
        return time.monotonic() - self.started


def command_field(command: dict[int, bytes]) -> int:
    raw = command.get(COMMAND_FIELD, b"\0\0")
    return struct.unpack("<H", raw[:2])[0] if len(raw) >= 2 else 0
