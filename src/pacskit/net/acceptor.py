"""DIMSE services, SCP side, straight on the socket (PS3.7, PS3.8).

pynetdicom's acceptor runs each association on two reactor threads and hands every
message across them, which costs milliseconds per C-STORE or C-FIND response. Here each
association is served by one thread: the A-ASSOCIATE-RQ is read and answered (its PDUs
decoded and encoded, and its presentation contexts negotiated, by pynetdicom), then the
DIMSE messages are read and written as P-DATA-TF PDUs on a
:class:`~pacskit.net.wire.Channel`. The protocol is this module's; what each service
does — who may do what, where instances go, what matches — belongs to a
:class:`Services` implementation, whose handlers raise :class:`DimseStatus` to answer
anything but success.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Protocol, TypeVar, cast

from pydicom import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext, negotiate_as_acceptor

from pacskit.encoded import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, encode_plain
from pacskit.errors import AssociationAborted, NetworkError, NetworkTimeout, PacskitError
from pacskit.net.association import associate
from pacskit.net.commands import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_FIND_RQ,
    C_GET_RQ,
    C_GET_RSP,
    C_MOVE_RQ,
    C_MOVE_RSP,
    C_STORE_RQ,
    COMMAND_FIELD,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    MOVE_DESTINATION,
    c_echo_rsp,
    c_find_rsp,
    c_store_rsp,
    retrieve_rsp,
)
from pacskit.net.status import Outcome, outcome_of
from pacskit.net.store import FileSender, SendOutcome, batches, contexts_for
from pacskit.net.wire import (
    Channel,
    DataSink,
    DirectChannel,
    Message,
    ReleaseRequested,
    SinkFactory,
)
from pacskit.nodes import Node
from pacskit.scan import DicomFile, read_file
from pacskit.settings import Settings

LOG = logging.getLogger("pacskit.archive")
T = TypeVar("T")

A_ASSOCIATE_RQ_TYPE = 0x01
A_ASSOCIATE_RJ_TYPE = 0x03
A_RELEASE_RP_TYPE = 0x06
APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"
MAX_ASSOCIATE_RQ = 1 << 20
MAX_IDENTIFIER = 16 << 20

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
SUB_OPERATIONS_WITH_FAILURES = 0xB000
UNABLE_TO_PERFORM_SUB_OPERATIONS = 0xA702
MOVE_DESTINATION_UNKNOWN = 0xA801
SOP_CLASS_NOT_SUPPORTED = 0x0122
UNRECOGNIZED_OPERATION = 0x0211
CANNOT_UNDERSTAND = 0xC000
UNABLE_TO_PROCESS = 0xC001

# A-ASSOCIATE-RJ (PS3.8 9.3.4): (result, source, reason)
NO_REASON = (0x01, 0x01, 0x01)
APPLICATION_CONTEXT_NOT_SUPPORTED = (0x01, 0x01, 0x02)
CALLING_AE_NOT_RECOGNISED = (0x01, 0x01, 0x03)
CALLED_AE_NOT_RECOGNISED = (0x01, 0x01, 0x07)
PROTOCOL_VERSION_NOT_SUPPORTED = (0x01, 0x02, 0x02)
LOCAL_LIMIT_EXCEEDED = (0x02, 0x03, 0x02)

PENDING_EVERY = 1


class DimseStatus(Exception):
    """Raised by a service handler: the request ends with ``status`` (and ``comment``)."""

    def __init__(self, status: int, comment: str = "") -> None:
        super().__init__(f"0x{status:04X} {comment}".strip())
        self.status = status
        self.comment = comment


@dataclass(frozen=True)
class Peer:
    """Who is on the other side of an association."""

    ae_title: str
    called_ae_title: str
    address: str


@dataclass(frozen=True)
class StoreRequest:
    """A C-STORE request as its command arrives; its dataset, encoded in
    ``transfer_syntax``, follows into the :class:`StoreSink` the service opens."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str


class StoreSink(DataSink, Protocol):
    """Where a C-STORE's dataset goes as it arrives (see :meth:`Services.store`)."""

    def finish(self) -> None:
        """The whole dataset has arrived: store it, or raise :class:`DimseStatus`."""


@dataclass
class _Refusal:
    """The sink of a C-STORE refused before its dataset arrived: the dataset is dropped."""

    status: int
    comment: str

    def write(self, data: bytes) -> None:
        pass

    def discard(self) -> None:
        pass

    def finish(self) -> None:
        raise DimseStatus(self.status, self.comment)


class Retrievable(Protocol):
    """A stored instance a C-GET or C-MOVE sends."""

    @property
    def path(self) -> Path: ...

    @property
    def sop_class_uid(self) -> str: ...

    @property
    def sop_instance_uid(self) -> str: ...

    @property
    def transfer_syntax(self) -> str: ...


class Services(Protocol):
    """What an archive does for each request; handlers raise :class:`DimseStatus`."""

    def admit(self, peer: Peer) -> str | None:
        """None to accept an association, else why it is rejected (calling AE title
        not recognised)."""

    def echo(self, peer: Peer) -> None: ...

    def store(self, peer: Peer, request: StoreRequest) -> StoreSink:
        """Open where the dataset of ``request`` goes, as soon as its command arrives."""

    def find(self, peer: Peer, sop_class_uid: str, identifier: Dataset) -> Iterator[Dataset]: ...

    def retrieve(self, peer: Peer, operation: str, sop_class_uid: str,
                 identifier: Dataset) -> Sequence[Retrievable]: ...

    def destination(self, peer: Peer, ae_title: str) -> Node: ...


@dataclass(frozen=True)
class Negotiated:
    """An accepted presentation context: its syntaxes, and whether we may send C-STORE
    requests on it (the requestor took the SCP role, PS3.7 D.3.3.4)."""

    abstract_syntax: str
    transfer_syntax: UID
    as_scu: bool


class Acceptor:
    """Listens for associations and serves each on its own thread.

    Args:
        settings: our AE title, port, timeouts and PDU size.
        services: what each request does.
        supported: the presentation contexts we accept, with roles.
        check_called_ae_title: reject associations not addressed to our AE title.
        max_associations: more at once are rejected (local limit exceeded).
        on_connection: called with each accepted connection's socket and True when it
            opens, and with False once it is closed (after its association ended).
    """

    def __init__(self, settings: Settings, services: Services, supported: list[PresentationContext],
                 *, check_called_ae_title: bool = True, max_associations: int = 64,
                 on_connection: Callable[[socket.socket, bool], None] | None = None) -> None:
        self.settings = settings
        self.services = services
        self.supported = supported
        self.check_called_ae_title = check_called_ae_title
        self.max_associations = max_associations
        self.on_connection = on_connection
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._active: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, address: tuple[str, int], *, reuse_port: bool = False) -> None:
        """Listen on ``address`` and accept associations in a background thread.

        Raises:
            NetworkError: the address cannot be listened on.
        """
        try:
            listener = socket.create_server(address, reuse_port=reuse_port, backlog=128)
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise NetworkError(f"cannot listen on {address[0]}:{address[1]}: {reason}") from None
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, name="pacskit-acceptor", daemon=True)
        self._thread.start()

    @property
    def connections(self) -> list[socket.socket]:
        """The sockets of the associations being served."""
        with self._lock:
            return list(self._active)

    def shutdown(self, grace: float = 5.0) -> None:
        """Stop listening; let associations in progress end for ``grace`` seconds, then
        abort the rest."""
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        if self._thread is not None:
            self._thread.join(grace)
        with self._lock:
            active = list(self._active.items())
        for conn, thread in active:
            thread.join(grace / max(1, len(active)))
            if thread.is_alive():
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                thread.join(1.0)

    def _accept_loop(self) -> None:
        while self._listener is not None:
            try:
                conn, address = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve, args=(conn, address[0]), daemon=True,
                                      name=f"pacskit-association-{address[0]}:{address[1]}")
            with self._lock:
                self._active[conn] = thread
            if self.on_connection is not None:
                self.on_connection(conn, True)
            thread.start()

    def _serve(self, conn: socket.socket, address: str) -> None:
        try:
            with self._lock:
                crowded = len(self._active) > self.max_associations
            _Association(self, conn, address, crowded).run()
        except Exception:
            LOG.exception("association from %s failed", address)
        finally:
            with self._lock:
                self._active.pop(conn, None)
            try:
                conn.close()
            except OSError:
                pass
            if self.on_connection is not None:
                self.on_connection(conn, False)


class _ServerChannel(Channel):
    """A channel that sets C-CANCEL requests aside as they arrive (PS3.7 9.3.2.3)."""

    def __init__(self, sock: socket.socket, label: str, timeout: float) -> None:
        super().__init__(sock, label, timeout, 0)
        self.cancelled: set[int] = set()

    def receive(self, sink: SinkFactory | None = None) -> Message:
        while True:
            message = super().receive(sink)
            if message.us(COMMAND_FIELD) != C_CANCEL_RQ:
                return message
            self.cancelled.add(message.us(MESSAGE_ID_BEING_RESPONDED_TO) or 0)

    def cancel_requested(self, message_id: int) -> bool:
        """Whether the peer has cancelled ``message_id``, reading what it has sent."""
        while message_id not in self.cancelled and self.has_pending():
            message = super().receive()
            if message.us(COMMAND_FIELD) == C_CANCEL_RQ:
                self.cancelled.add(message.us(MESSAGE_ID_BEING_RESPONDED_TO) or 0)
            else:
                LOG.warning("%s sent command 0x%04X during another operation; ignored", self.label,
                            message.us(COMMAND_FIELD) or 0)
        return message_id in self.cancelled


class _Association:
    """One association, from A-ASSOCIATE-RQ to release or abort."""

    def __init__(self, acceptor: Acceptor, conn: socket.socket, address: str, crowded: bool) -> None:
        self.acceptor = acceptor
        self.settings = acceptor.settings
        self.services = acceptor.services
        self.address = address
        self.crowded = crowded
        self.channel = _ServerChannel(conn, address, self.settings.acse_timeout)
        self.contexts: dict[int, Negotiated] = {}
        self.peer = Peer("", "", address)

    def run(self) -> None:
        if not self._associate():
            return
        self.channel.timeout = self.settings.network_timeout
        self.channel.sock.settimeout(self.settings.network_timeout)  # type: ignore[union-attr]
        self.channel.max_data = MAX_IDENTIFIER
        while True:
            try:
                message = self.channel.receive(self._open_store)
            except ReleaseRequested:
                self._send_pdu(A_RELEASE_RP_TYPE, b"\0\0\0\0")
                return
            except (AssociationAborted, NetworkTimeout) as exc:
                LOG.info("association with %s ended: %s", self.peer.ae_title or self.address, exc)
                return
            try:
                self._dispatch(message)
            except (AssociationAborted, NetworkTimeout) as exc:
                LOG.warning("association with %s lost: %s", self.peer.ae_title, exc)
                return

    def _associate(self) -> bool:
        """Read the A-ASSOCIATE-RQ and accept or reject it; whether it was accepted."""
        try:
            self.channel.sock.settimeout(self.settings.acse_timeout)  # type: ignore[union-attr]
            pdu_type, body = self.channel.read_pdu(MAX_ASSOCIATE_RQ)
        except (AssociationAborted, NetworkTimeout):
            return False
        if pdu_type != A_ASSOCIATE_RQ_TYPE:
            self.channel.abort()
            return False
        request = A_ASSOCIATE_RQ()
        try:
            request.decode(struct.pack(">BBI", pdu_type, 0, len(body)) + body)
            primitive = request.to_primitive()
        except Exception:  # noqa: BLE001 - a malformed request is aborted
            LOG.warning("malformed A-ASSOCIATE-RQ from %s", self.address)
            self.channel.abort()
            return False
        self.peer = Peer(str(primitive.calling_ae_title).strip(), str(primitive.called_ae_title).strip(),
                         self.address)
        rejection, why = self._rejection(request, primitive)
        if rejection is not None:
            LOG.warning("rejected an association from %s at %s: %s", self.peer.ae_title, self.address, why)
            self._send_pdu(A_ASSOCIATE_RJ_TYPE, struct.pack(">BBBB", 0, *rejection))
            return False
        self._accept(primitive)
        return True

    def _rejection(self, request: A_ASSOCIATE_RQ,
                   primitive: A_ASSOCIATE) -> tuple[tuple[int, int, int] | None, str]:
        if not request.protocol_version & 0x01:
            return PROTOCOL_VERSION_NOT_SUPPORTED, f"protocol version {request.protocol_version}"
        if str(primitive.application_context_name) != APPLICATION_CONTEXT_NAME:
            return APPLICATION_CONTEXT_NOT_SUPPORTED, f"application context {primitive.application_context_name}"
        if self.acceptor.check_called_ae_title and self.peer.called_ae_title != self.settings.ae_title:
            return CALLED_AE_NOT_RECOGNISED, f"called AE title {self.peer.called_ae_title!r} is not ours"
        reason = self.services.admit(self.peer)
        if reason is not None:
            return CALLING_AE_NOT_RECOGNISED, reason
        if self.crowded:
            return LOCAL_LIMIT_EXCEEDED, f"more than {self.acceptor.max_associations} associations"
        return None, ""

    def _accept(self, primitive: A_ASSOCIATE) -> None:
        roles = {}
        peer_max = 0
        for item in primitive.user_information:
            if isinstance(item, SCP_SCU_RoleSelectionNegotiation):
                roles[item.sop_class_uid] = (item.scu_role, item.scp_role)
            elif isinstance(item, MaximumLengthNotification):
                peer_max = int(item.maximum_length_received or 0)
        results, reply_roles = negotiate_as_acceptor(
            primitive.presentation_context_definition_list, self.acceptor.supported, roles or None)
        self.contexts = {int(cx.context_id): Negotiated(str(cx.abstract_syntax), UID(cx.transfer_syntax[0]),
                                                        bool(cx.as_scu))
                         for cx in results if cx.result == 0x00}
        self.channel.peer_max = peer_max
        maximum = MaximumLengthNotification()
        maximum.maximum_length_received = self.settings.max_pdu
        implementation = ImplementationClassUIDNotification()
        implementation.implementation_class_uid = UID(IMPLEMENTATION_CLASS_UID)
        version = ImplementationVersionNameNotification()
        version.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        answer = A_ASSOCIATE()
        answer.application_context_name = UID(APPLICATION_CONTEXT_NAME)
        answer.calling_ae_title = primitive.calling_ae_title
        answer.called_ae_title = primitive.called_ae_title
        answer.result = 0x00
        answer.result_source = 0x01
        answer.presentation_context_definition_results_list = results
        answer.user_information = [maximum, implementation, version, *reply_roles]
        pdu = A_ASSOCIATE_AC()
        pdu.from_primitive(answer)
        self.channel.write(pdu.encode())

    def _send_pdu(self, pdu_type: int, body: bytes) -> None:
        try:
            self.channel.write(struct.pack(">BBI", pdu_type, 0, len(body)) + body)
        except (AssociationAborted, NetworkTimeout):
            pass

    def _dispatch(self, message: Message) -> None:
        context = self.contexts.get(message.context_id)
        if context is None:
            LOG.warning("%s used presentation context %d, which was not accepted", self.peer.ae_title,
                        message.context_id)
            self.channel.abort()
            raise AssociationAborted("unknown presentation context")
        command = message.us(COMMAND_FIELD)
        handler = {C_ECHO_RQ: self._echo, C_STORE_RQ: self._store, C_FIND_RQ: self._find,
                   C_GET_RQ: self._get, C_MOVE_RQ: self._move}.get(command or 0)
        if handler is None:
            LOG.warning("%s sent unsupported command 0x%04X", self.peer.ae_title, command or 0)
            self.channel.abort()
            raise AssociationAborted("unsupported command")
        handler(message, context)

    def _echo(self, message: Message, context: Negotiated) -> None:
        try:
            self._call("C-ECHO", self.services.echo, self.peer)
            status = SUCCESS
        except DimseStatus as exc:
            status = exc.status
        self.channel.send(message.context_id, c_echo_rsp(_id(message), context.abstract_syntax, status))

    def _open_store(self, context_id: int, command: dict[int, bytes]) -> StoreSink | None:
        """The sink of a C-STORE's dataset, opened as soon as its command is read."""
        request = Message(context_id, command, None)
        context = self.contexts.get(context_id)
        if request.us(COMMAND_FIELD) != C_STORE_RQ or context is None:
            return None
        sop_class = request.text(AFFECTED_SOP_CLASS_UID)
        try:
            if sop_class != context.abstract_syntax:
                raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "the SOP class is not the context's")
            return self._call("C-STORE", self.services.store, self.peer, StoreRequest(
                sop_class, request.text(AFFECTED_SOP_INSTANCE_UID), context.transfer_syntax))
        except DimseStatus as exc:
            return _Refusal(exc.status, exc.comment)

    def _store(self, message: Message, context: Negotiated) -> None:
        sop_class = message.text(AFFECTED_SOP_CLASS_UID)
        sop_instance = message.text(AFFECTED_SOP_INSTANCE_UID)
        status, comment = SUCCESS, ""
        try:
            if message.sink is None:
                raise DimseStatus(CANNOT_UNDERSTAND, "no dataset")
            self._call("C-STORE", cast(StoreSink, message.sink).finish)
        except DimseStatus as exc:
            status, comment = exc.status, exc.comment
        self.channel.send(message.context_id,
                          c_store_rsp(_id(message), sop_class, sop_instance, status, comment))

    def _find(self, message: Message, context: Negotiated) -> None:
        sop_class = context.abstract_syntax
        message_id = _id(message)

        def answer(status: int, identifier: Dataset | None = None, comment: str = "") -> None:
            data = _encode(identifier, context.transfer_syntax) if identifier is not None else None
            self.channel.send(message.context_id, c_find_rsp(message_id, sop_class, status,
                                                             has_identifier=data is not None,
                                                             comment=comment), data)

        try:
            for match in self.services.find(self.peer, sop_class, self._identifier(message, context)):
                if self.channel.cancel_requested(message_id):
                    answer(CANCEL)
                    return
                answer(PENDING, match)
        except DimseStatus as exc:
            answer(exc.status, comment=exc.comment)
            return
        except Exception as exc:
            LOG.exception("C-FIND for %s failed", self.peer.ae_title)
            answer(UNABLE_TO_PROCESS, comment=f"C-FIND failed: {type(exc).__name__}")
            return
        answer(SUCCESS)

    def _get(self, message: Message, context: Negotiated) -> None:
        run = _Retrieve(self, message, context, C_GET_RSP)
        try:
            stored = self._call("C-GET", self.services.retrieve, self.peer, "get",
                                context.abstract_syntax, self._identifier(message, context))
        except DimseStatus as exc:
            run.final(exc.status, exc.comment)
            return
        targets = {(cx.abstract_syntax, str(cx.transfer_syntax)): cx_id
                   for cx_id, cx in self.contexts.items() if cx.as_scu}
        run.send_all(stored, FileSender(self.channel, targets))

    def _move(self, message: Message, context: Negotiated) -> None:
        run = _Retrieve(self, message, context, C_MOVE_RSP)
        try:
            stored = self._call("C-MOVE", self.services.retrieve, self.peer, "move",
                                context.abstract_syntax, self._identifier(message, context))
            node = self._call("C-MOVE", self.services.destination, self.peer, message.text(MOVE_DESTINATION))
        except DimseStatus as exc:
            run.final(exc.status, exc.comment)
            return
        run.total = len(stored)
        for batch in batches(stored):
            try:
                with associate(self.settings, node, contexts_for(batch)) as assoc, \
                        DirectChannel(assoc, node, self.settings.dimse_timeout) as channel:
                    targets = {(cx.abstract_syntax, cx.transfer_syntax[0]): cx.context_id
                               for cx in assoc.accepted_contexts}
                    if not run.send_some(batch, FileSender(channel, targets)):
                        return
            except PacskitError as exc:
                LOG.warning("C-MOVE to %s: %s", node.label, exc)
                run.fail(batch, f"cannot send to {node.ae_title}")
        run.finish()

    def _call(self, what: str, handler: Callable[..., T], *args: object) -> T:
        """``handler(*args)``; anything it raises but a status is logged and answered
        0xC001 (unable to process)."""
        try:
            return handler(*args)
        except DimseStatus:
            raise
        except Exception as exc:
            LOG.exception("%s for %s failed", what, self.peer.ae_title)
            raise DimseStatus(UNABLE_TO_PROCESS, f"{what} failed: {type(exc).__name__}") from None

    def _identifier(self, message: Message, context: Negotiated) -> Dataset:
        if message.data is None:
            raise DimseStatus(CANNOT_UNDERSTAND, "no identifier")
        syntax = context.transfer_syntax
        try:
            return decode(BytesIO(message.data), syntax.is_implicit_VR, syntax.is_little_endian,
                          syntax.is_deflated)
        except Exception as exc:  # noqa: BLE001 - an identifier pydicom cannot read
            raise DimseStatus(CANNOT_UNDERSTAND, f"unreadable identifier: {exc}") from None


class _Retrieve:
    """The sub-operations of one C-GET or C-MOVE and their responses (PS3.4 C.4.2.1.5,
    C.4.3.1.4): a pending response after each, a final one with the counts."""

    def __init__(self, association: _Association, message: Message, context: Negotiated,
                 command_field: int) -> None:
        self.channel = association.channel
        self.peer = association.peer
        self.message = message
        self.message_id = _id(message)
        self.context = context
        self.command_field = command_field
        self.total = 0
        self.completed = self.failed = self.warning = 0
        self.failed_instances: list[str] = []

    def send_all(self, stored: Sequence[Retrievable], sender: FileSender) -> None:
        self.total = len(stored)
        if self.send_some(stored, sender):
            self.finish()

    def send_some(self, stored: Sequence[Retrievable], sender: FileSender) -> bool:
        """Send ``stored``; False if the peer cancelled (the final response is sent)."""
        for item in stored:
            if self.channel.cancel_requested(self.message_id):
                self.final(CANCEL)
                return False
            self._count(item, self._send(item, sender))
            self._respond(PENDING, (self._remaining(), self.completed, self.failed, self.warning))
        return True

    def fail(self, stored: Sequence[Retrievable], reason: str) -> None:
        for item in stored:
            self.failed += 1
            self.failed_instances.append(item.sop_instance_uid)
        LOG.warning("C-MOVE for %s: %d sub-operations failed: %s", self.peer.ae_title, len(stored), reason)

    def finish(self) -> None:
        if not self.failed and not self.warning:
            self.final(SUCCESS)
        elif self.failed == self.total:
            self.final(UNABLE_TO_PERFORM_SUB_OPERATIONS)
        else:
            self.final(SUB_OPERATIONS_WITH_FAILURES)

    def final(self, status: int, comment: str = "") -> None:
        identifier = None
        if self.failed_instances and status != SUCCESS:
            identifier = Dataset()
            identifier.FailedSOPInstanceUIDList = self.failed_instances
        remaining = self._remaining() if status == CANCEL else None
        self._respond(status, (remaining, self.completed, self.failed, self.warning), identifier, comment)

    def _remaining(self) -> int:
        return max(0, self.total - self.completed - self.failed - self.warning)

    def _send(self, item: Retrievable, sender: FileSender) -> SendOutcome | str:
        try:
            described: DicomFile = read_file(item.path)
        except Exception as exc:  # noqa: BLE001 - a stored file that cannot be read fails its sub-operation
            return f"cannot read {item.path.name}: {exc}"
        return sender.send(described)

    def _count(self, item: Retrievable, outcome: SendOutcome | str) -> None:
        if isinstance(outcome, str) or outcome.status is None:
            reason = outcome if isinstance(outcome, str) else outcome.reason
            LOG.warning("sub-operation for %s failed: %s", item.sop_instance_uid, reason)
            self.failed += 1
            self.failed_instances.append(item.sop_instance_uid)
            return
        kind = outcome_of(outcome.status)
        if kind is Outcome.FAILURE:
            self.failed += 1
            self.failed_instances.append(item.sop_instance_uid)
        elif kind is Outcome.WARNING:
            self.warning += 1
        else:
            self.completed += 1

    def _respond(self, status: int, counts: tuple[int | None, int, int, int],
                 identifier: Dataset | None = None, comment: str = "") -> None:
        data = _encode(identifier, self.context.transfer_syntax) if identifier is not None else None
        self.channel.send(self.message.context_id,
                          retrieve_rsp(self.command_field, self.message_id, self.context.abstract_syntax,
                                       status, counts, has_identifier=data is not None, comment=comment),
                          data)


def _id(message: Message) -> int:
    return message.us(MESSAGE_ID) or 0


def _encode(dataset: Dataset, syntax: UID) -> bytes:
    if syntax.is_little_endian and not syntax.is_deflated:
        plain = encode_plain(dataset, implicit=syntax.is_implicit_VR)
        if plain is not None:
            return plain
    encoded = encode(dataset, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
    if encoded is None:
        raise DimseStatus(CANNOT_UNDERSTAND, "a response identifier cannot be encoded")
    return encoded

