"""DIMSE services, SCP side (PS3.4, PS3.7): the acceptor of ``pacskit serve`` and of the
C-MOVE-to-ourselves storage SCP.

Each connection is served by one thread, on an :class:`~pacskit.net.association.Association`
(the upper layer state machine and DIMSE messages): the A-ASSOCIATE-RQ is read and
answered, then every request goes to the handler registered for its command. The
protocol is the association's; what each service does — who may do what, where
instances go, what matches — belongs to a :class:`Services` implementation, whose
handlers raise :class:`DimseStatus` to answer anything but success.

What a peer can cost (docs/limits.md): connections beyond ``max_connections`` in all,
or ``max_connections_per_address`` from one address, are refused by the accept loop
itself (an A-ASSOCIATE-RJ written if the socket takes it at once, then closed: no thread);
associations beyond ``max_associations``, counted once their A-ASSOCIATE-RQ is complete,
are rejected (transient, local limit exceeded); all associations share one
:class:`~pacskit.net.memory_budget.MemoryBudget`. The accept loop never ends but by
:meth:`Acceptor.shutdown`: out of descriptors or memory, it waits and tries again.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar, cast

from pydicom import Dataset
from pydicom.multival import MultiValue
from pynetdicom.presentation import PresentationContext

from pacskit.audit import AuditTrail
from pacskit.deflate import IDENTIFIER_LIMIT, InflationLimitExceeded
from pacskit.errors import (
    AssociationAborted,
    NetworkError,
    NetworkTimeout,
    PacskitError,
    TlsFailure,
)
from pacskit.net import exchange_log
from pacskit.net.association import Association, ReleaseRequested, associate
from pacskit.net.commands import (
    ACTION_TYPE_ID,
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    ATTRIBUTE_IDENTIFIER_LIST,
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_FIND_RQ,
    C_GET_RQ,
    C_GET_RSP,
    C_MOVE_RQ,
    C_MOVE_RSP,
    C_STORE_RQ,
    COMMAND_FIELD,
    EVENT_TYPE_ID,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    MOVE_DESTINATION,
    N_ACTION_RQ,
    N_EVENT_REPORT_RQ,
    NORMALIZED_REQUESTS,
    REQUESTED_SOP_CLASS_UID,
    REQUESTED_SOP_INSTANCE_UID,
    c_echo_rsp,
    c_find_rsp,
    c_store_rsp,
    n_rsp,
    retrieve_rsp,
)
from pacskit.net.connection_limits import ConnectionLimits
from pacskit.net.identifier import PreEncoded, decode_identifier, encode_identifier
from pacskit.net.memory_budget import MemoryBudget
from pacskit.net.normalized import NormalizedRequest, NormalizedResponse
from pacskit.net.status import DimseStatus as DimseStatus  # re-exported: handlers raise it
from pacskit.net.status import Outcome, describe, outcome_of
from pacskit.net.store import FileSender, SendOutcome, batches, contexts_for, storage_targets
from pacskit.net.transport import Transport
from pacskit.net.ul.negotiation import (
    APPLICATION_CONTEXT_NAME,
    AcceptedContext,
    Rejection,
    Request,
)
from pacskit.net.ul.negotiation import context_id as context_id_of
from pacskit.net.ul.user_identity import UserIdentity
from pacskit.net.wire import DataSink, Fragment, Message
from pacskit.nodes import Node
from pacskit.scan import DicomFile, read_file
from pacskit.settings import Settings
from pacskit.transfer_syntax import TransferSyntax

LOG = logging.getLogger("pacskit.archive")
T = TypeVar("T")

MAX_IDENTIFIER = IDENTIFIER_LIMIT

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
SUB_OPERATIONS_WITH_FAILURES = 0xB000
UNABLE_TO_PERFORM_SUB_OPERATIONS = 0xA702
MOVE_DESTINATION_UNKNOWN = 0xA801
SOP_CLASS_NOT_SUPPORTED = 0x0122
NOT_AUTHORIZED = 0x0124
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


@dataclass(frozen=True)
class Peer:
    """Who is on the other side of an association: its AE titles and address, whether
    the association is DICOM TLS, the subject of the certificate it showed, and the user
    its User Identity (PS3.7 D.3.3.7) proved (empty for none)."""

    ae_title: str
    called_ae_title: str
    address: str
    tls: bool = False
    certificate_subject: str = ""
    user: str = ""


class IdentityRefused(Exception):
    """A User Identity that is not accepted (or its absence where one is required):
    ``reason`` is for the log and the audit trail, never for the peer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Authenticator = Callable[[Peer, UserIdentity | None], str]
"""Who the User Identity of an association proves (the user name; empty for none), or
:class:`IdentityRefused`."""


@dataclass(frozen=True)
class StoreRequest:
    """A C-STORE request as its command arrives; its dataset, encoded in
    ``transfer_syntax``, follows into the :class:`StoreSink` the service opens."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str


class StoreSink(DataSink, Protocol):
    """Where a C-STORE's dataset goes as it arrives (see :meth:`Services.store`)."""

    def finish(self) -> tuple[str, str] | None:
        """The whole dataset has arrived: store it, or raise :class:`DimseStatus`; the
        Study and Series Instance UIDs of what was stored, if known."""


@dataclass
class Refusal:
    """The sink of a C-STORE refused before its dataset arrived: the dataset is dropped."""

    status: int
    comment: str

    def write(self, data: Fragment) -> None:
        pass

    def discard(self) -> None:
        pass

    def finish(self) -> tuple[str, str] | None:
        raise DimseStatus(self.status, self.comment)


def store_request(context: AcceptedContext, message: Message) -> StoreRequest:
    """The C-STORE-RQ ``message`` on ``context`` as a :class:`StoreRequest` (PS3.7 9.1.1).

    Raises:
        DimseStatus: 0x0122, its Affected SOP Class is not the context's abstract syntax.
    """
    sop_class = message.text(AFFECTED_SOP_CLASS_UID)
    if sop_class != context.abstract_syntax:
        raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "the SOP class is not the context's")
    return StoreRequest(sop_class, message.text(AFFECTED_SOP_INSTANCE_UID), context.transfer_syntax)


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

    def allows(self, peer: Peer, operation: str, sop_class_uid: str) -> str | None:
        """None if ``peer`` may ask for ``operation`` (``find``, ``get``, ``move``) in the
        information model ``sop_class_uid``, else why not: asked before the request's
        identifier is decoded, and answered 0x0124 (Refused: Not Authorized, PS3.7 C.5.2)."""

    def echo(self, peer: Peer) -> None: ...

    def store(self, peer: Peer, request: StoreRequest) -> StoreSink:
        """Open where the dataset of ``request`` goes, as soon as its command arrives."""

    def find(self, peer: Peer, sop_class_uid: str, identifier: Dataset) -> Iterator[Dataset | PreEncoded]:
        """The response identifiers of a C-FIND, as datasets or encoded on demand."""

    def retrieve(self, peer: Peer, operation: str, sop_class_uid: str,
                 identifier: Dataset) -> Sequence[Retrievable]: ...

    def destination(self, peer: Peer, ae_title: str) -> Node: ...

    def normalized(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        """Serve a DIMSE-N request (PS3.7 10): its permission (:meth:`allows` with the
        operation ``n-create``, ``n-set``, ... and the SOP class) was granted; raise
        :class:`DimseStatus` for a failure (0x0211 for a SOP class served by no
        normalized service)."""


class Acceptor:
    """Listens for associations and serves each on its own thread.

    Args:
        settings: our AE title, port, timeouts, PDU size, and the limits of what peers
            may hold (``max_connections``, ``max_connections_per_address``,
            ``max_associations``, ``memory_budget``).
        services: what each request does.
        supported: the presentation contexts we accept, with roles.
        check_called_ae_title: reject associations not addressed to our AE title.
        on_connection: called with each accepted connection's socket and True when it
            opens, and with False once it is closed (after its association ended).
        authenticate: checks each association's User Identity (PS3.7 D.3.3.7); one it
            refuses is rejected (A-ASSOCIATE-RJ, permanent, service user, no reason
            given). Without it, a User Identity is ignored.
        audit: the audit trail (:mod:`pacskit.audit`): a record per association, per
            operation, per refused TLS handshake or identity.
    """

    def __init__(self, settings: Settings, services: Services, supported: list[PresentationContext],
                 *, check_called_ae_title: bool = True,
                 on_connection: Callable[[socket.socket, bool], None] | None = None,
                 authenticate: Authenticator | None = None, audit: AuditTrail | None = None) -> None:
        self.settings = settings
        self.services = services
        self.supported = supported
        self.check_called_ae_title = check_called_ae_title
        self.max_associations = settings.max_associations
        self.on_connection = on_connection
        self.authenticate = authenticate
        self.audit = audit
        self.budget = MemoryBudget(settings.memory_budget)
        self.limits = ConnectionLimits(settings.max_connections, settings.max_connections_per_address,
                                       settings.max_associations)
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._active: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self, address: tuple[str, int], *, reuse_port: bool = False,
              tls: ssl.SSLContext | None = None) -> None:
        """Listen on ``address`` and accept associations in a background thread; with
        ``tls``, DICOM TLS ones (PS3.15 B.1), the handshake done on each association's
        thread. May be called again for another address: all share the limits.

        Raises:
            NetworkError: the address cannot be listened on.
        """
        try:
            listener = socket.create_server(address, reuse_port=reuse_port, backlog=128)
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise NetworkError(f"cannot listen on {address[0]}:{address[1]}: {reason}") from None
        self._listeners.append(listener)
        thread = threading.Thread(target=self._accept_loop, args=(listener, tls), daemon=True,
                                  name="pacskit-acceptor-tls" if tls is not None else "pacskit-acceptor")
        self._threads.append(thread)
        thread.start()

    @property
    def connections(self) -> list[socket.socket]:
        """The sockets of the associations being served."""
        with self._lock:
            return list(self._active)

    def shutdown(self, grace: float = 5.0) -> None:
        """Stop listening; let associations in progress end for ``grace`` seconds, then
        abort the rest."""
        listeners, self._listeners = self._listeners, []
        self._stopping.set()
        for listener in listeners:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for thread in self._threads:
            thread.join(grace)
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

    def _accept_loop(self, listener: socket.socket, tls: ssl.SSLContext | None) -> None:
        waiting = ACCEPT_RETRY_FIRST
        while listener in self._listeners:
            try:
                conn, address = listener.accept()
            except OSError as exc:
                if listener not in self._listeners:
                    return
                if exc.errno in ACCEPT_TRANSIENT:
                    continue
                LOG.warning("cannot accept connections (%s): trying again in %g s",
                            exc.strerror or exc, waiting)
                self._stopping.wait(waiting)
                waiting = min(waiting * 2, ACCEPT_RETRY_MAX)
                continue
            waiting = ACCEPT_RETRY_FIRST
            self._admit(conn, address[0], address[1], tls)

    def _admit(self, conn: socket.socket, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        """Serve ``conn`` on a thread of its own, or refuse it here and now."""
        accepted = time.monotonic()
        refusal = self.limits.open(host)
        if refusal is not None:
            self.limits.refused(host, refusal)
            _refuse(conn)
            return
        thread = threading.Thread(target=self._serve, args=(conn, host, accepted, tls), daemon=True,
                                  name=f"pacskit-association-{host}:{port}")
        with self._lock:
            self._active[conn] = thread
        if self.on_connection is not None:
            self.on_connection(conn, True)
        try:
            thread.start()
        except RuntimeError as exc:
            LOG.warning("cannot start a thread for a connection from %s (%s): refused", host, exc)
            self._forget(conn, host)
            _refuse(conn)
            self._stopping.wait(ACCEPT_RETRY_FIRST)

    def _serve(self, conn: socket.socket, address: str, accepted: float, tls: ssl.SSLContext | None) -> None:
        session: _Session | None = None
        served = conn
        try:
            session = _Session(self, conn, address, accepted)
            if tls is not None:
                if not session.handshake(tls):
                    return
                served = self._rename(conn, session.transport.sock)
            session.run()
        except Exception:
            LOG.exception("association from %s failed", address)
        finally:
            if session is not None and session.counted:
                self.limits.end_association()
            self._forget(conn, address, served)
            try:
                served.close()
            except OSError:
                pass

    def _rename(self, conn: socket.socket, wrapped: socket.socket | None) -> socket.socket:
        """Track a connection by its TLS socket once the handshake has taken over its
        descriptor (so that :meth:`shutdown` can still end it)."""
        if wrapped is None:
            return conn
        with self._lock:
            self._active[wrapped] = self._active.pop(conn)
        return wrapped

    def _forget(self, conn: socket.socket, host: str, served: socket.socket | None = None) -> None:
        with self._lock:
            self._active.pop(served if served is not None else conn, None)
        self.limits.close(host)
        if self.on_connection is not None:
            self.on_connection(conn, False)


ACCEPT_RETRY_FIRST = 0.05
ACCEPT_RETRY_MAX = 1.0
ACCEPT_TRANSIENT = {errno.ECONNABORTED, errno.EPROTO, errno.EAGAIN, errno.EINTR}
_LOCAL_LIMIT_RJ = Rejection(0x02, 0x03, 0x02).encode()


def _refuse(conn: socket.socket) -> None:
    """Refuse a connection without a thread: read what it has sent so far (so that the
    close is not a reset that could destroy the answer), write an A-ASSOCIATE-RJ
    (transient, local limit exceeded, PS3.8 9.3.4) if the socket takes it at once, close."""
    try:
        conn.setblocking(False)
        for _ in range(4):
            if not conn.recv(1 << 16):
                break
    except OSError:
        pass
    try:
        conn.send(_LOCAL_LIMIT_RJ)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


class _Session:
    """One accepted association, from A-ASSOCIATE-RQ to release or abort: its requests
    go to the association's handlers, one for each command we serve."""

    def __init__(self, acceptor: Acceptor, conn: socket.socket, address: str, accepted: float) -> None:
        self.acceptor = acceptor
        self.settings = acceptor.settings
        self.services = acceptor.services
        self.address = address
        self.accepted = accepted
        self.counted = False
        self.transport = Transport(conn, address, self.settings.acse_timeout, budget=acceptor.budget)
        self.association: Association | None = None
        self.peer = Peer("", "", address)
        self.cancelled: set[int] = set()

    def handshake(self, context: ssl.SSLContext) -> bool:
        """The TLS handshake, within the ACSE timeout of the connection; whether it
        succeeded (a failure is logged, the connection closed)."""
        left = max(0.0, self.accepted + self.settings.acse_timeout - time.monotonic())
        try:
            self.transport.accept_tls(context, left)
        except (TlsFailure, AssociationAborted, NetworkTimeout) as exc:
            why = _without(exc.message, self.address)
            LOG.warning("TLS connection from %s refused: %s", self.address, why)
            self._security("tls", why)
            return False
        return True

    def run(self) -> None:
        started = time.monotonic()
        association, request = Association.incoming(self.transport, self.address, self.settings,
                                                    since=self.accepted, budget=self.acceptor.budget)
        self.association = association
        if request is None:
            return
        self.peer = Peer(request.calling_ae_title, request.called_ae_title, self.address,
                         self.transport.tls, self.transport.peer_subject)
        identity = request.identity
        association.label = exchange_log.peer_label(self.peer.ae_title, self.address, self.transport.peer_address[1])
        association.name_peer = True
        exchange_log.association_received(
            calling=request.calling_ae_title, called=request.called_ae_title, address=self.address,
            port=self.transport.peer_address[1],
            contexts=[(context_id_of(cx), str(cx.abstract_syntax), [str(s) for s in cx.transfer_syntax])
                      for cx in request.proposed],
            roles=request.roles, max_pdu=request.peer_max_pdu, implementation=request.implementation,
            identity=identity.description if identity is not None else "")
        rejection, why = self._rejection(request)
        if rejection is not None:
            LOG.warning("rejected an association from %s: %s", association.label, why)
            exchange_log.association_rejected(peer=association.label, result=rejection[0], source=rejection[1],
                                              reason=rejection[2], by_us=True)
            association.reject(Rejection(*rejection))
            self._audit_association("rejected", why, started)
            return
        association.accept(request, self.acceptor.supported, self.settings, identity_accepted=bool(self.peer.user))
        assert association.negotiated is not None
        association.log_accepted(len(request.proposed), by_us=True)
        association.max_data = MAX_IDENTIFIER
        association.handlers.update({
            C_ECHO_RQ: _Handler(self._echo),
            C_STORE_RQ: _Handler(self._store, self._open_store),
            C_FIND_RQ: _Handler(self._find),
            C_GET_RQ: _Handler(self._get),
            C_MOVE_RQ: _Handler(self._move),
            C_CANCEL_RQ: _Handler(self._cancel),
            **{field: _Handler(self._normalized) for field in NORMALIZED_REQUESTS},
        })
        association.started = started
        ended = "failed"
        try:
            ended = self._serve(association)
        finally:
            self._audit_association("accepted", "", started, ended)

    def _serve(self, association: Association) -> str:
        """Serve the association's requests until it ends; how it ended."""
        while True:
            try:
                message = association.receive(association.open_request)
            except ReleaseRequested:
                association.release_response()
                return "released"
            except NetworkTimeout as exc:
                LOG.warning("association with %s aborted: %s (network timeout %g s)", association.label, exc,
                            self.settings.network_timeout)
                association.abort()
                return "aborted: network timeout"
            except AssociationAborted:
                return "aborted"
            try:
                association.serve(message)
            except (AssociationAborted, NetworkTimeout) as exc:
                LOG.warning("association with %s lost: %s", association.label, exc)
                association.abort()
                return "aborted: connection lost"

    def _rejection(self, request: Request) -> tuple[tuple[int, int, int] | None, str]:
        if not request.protocol_version & 0x01:
            return PROTOCOL_VERSION_NOT_SUPPORTED, f"protocol version {request.protocol_version}"
        if request.application_context_name != APPLICATION_CONTEXT_NAME:
            return APPLICATION_CONTEXT_NOT_SUPPORTED, f"application context {request.application_context_name}"
        if self.acceptor.check_called_ae_title and self.peer.called_ae_title != self.settings.ae_title:
            return CALLED_AE_NOT_RECOGNISED, f"called AE title {self.peer.called_ae_title!r} is not ours"
        reason = self.services.admit(self.peer)
        if reason is not None:
            return CALLING_AE_NOT_RECOGNISED, reason
        reason = self._identify(request.identity)
        if reason is not None:
            return NO_REASON, reason
        self.counted = self.acceptor.limits.begin_association()
        if not self.counted:
            return LOCAL_LIMIT_EXCEEDED, f"more than {self.acceptor.max_associations} associations"
        return None, ""

    def _identify(self, identity: UserIdentity | None) -> str | None:
        """Check the association's User Identity (the peer's ``user`` is set from it);
        None if accepted, else why not (recorded as a security event)."""
        authenticate = self.acceptor.authenticate
        if authenticate is None:
            return None
        try:
            user = authenticate(self.peer, identity)
        except IdentityRefused as exc:
            self._security("user identity", exc.reason,
                           user=identity.username if identity is not None else None)
            return f"user identity refused: {exc.reason}"
        self.peer = replace(self.peer, user=user)
        return None

    def _security(self, what: str, reason: str, **fields: object) -> None:
        audit = self.acceptor.audit
        if audit is not None:
            audit.record("security", failure=what, reason=reason, address=self.address,
                         peer_ae=self.peer.ae_title or None, tls=self.transport.tls,
                         certificate_subject=self.transport.peer_subject or None, **fields)

    def _audit_association(self, outcome: str, reason: str, started: float, ended: str | None = None) -> None:
        audit = self.acceptor.audit
        if audit is not None:
            peer = self.peer
            audit.record("association", peer_ae=peer.ae_title, address=peer.address, called_ae=peer.called_ae_title,
                         user=peer.user or None, tls=peer.tls, certificate_subject=peer.certificate_subject or None,
                         outcome=outcome, reason=reason or None, ended=ended,
                         seconds=round(time.monotonic() - started, 3))

    def cancel_requested(self, message_id: int) -> bool:
        """Whether the peer has cancelled ``message_id`` (PS3.7 9.3.2.3), reading what it
        has sent so far."""
        association = self.association
        assert association is not None
        while message_id not in self.cancelled and association.has_pending():
            message = association.receive()
            association.done(message)
            if message.us(COMMAND_FIELD) == C_CANCEL_RQ:
                self.cancelled.add(message.us(MESSAGE_ID_BEING_RESPONDED_TO) or 0)
            else:
                LOG.warning("%s sent command 0x%04X during another operation; ignored", association.label,
                            message.us(COMMAND_FIELD) or 0)
        return message_id in self.cancelled

    def _cancel(self, association: Association, context: AcceptedContext, message: Message) -> None:
        self.cancelled.add(message.us(MESSAGE_ID_BEING_RESPONDED_TO) or 0)

    def _echo(self, association: Association, context: AcceptedContext, message: Message) -> None:
        started = time.monotonic()
        try:
            self._call("C-ECHO", self.services.echo, self.peer)
            status = SUCCESS
        except DimseStatus as exc:
            status = exc.status
        association.send(message.context_id, c_echo_rsp(_id(message), context.abstract_syntax, status))
        self._done("C-ECHO", status, started, sop_class=context.abstract_syntax)

    def _open_store(self, association: Association, context: AcceptedContext, message: Message) -> StoreSink:
        """The sink of a C-STORE's dataset, opened as soon as its command is read."""
        try:
            return self._call("C-STORE", self.services.store, self.peer, store_request(context, message))
        except DimseStatus as exc:
            return Refusal(exc.status, exc.comment)

    def _store(self, association: Association, context: AcceptedContext, message: Message) -> None:
        started = time.monotonic()
        sop_class = message.text(AFFECTED_SOP_CLASS_UID)
        sop_instance = message.text(AFFECTED_SOP_INSTANCE_UID)
        status, comment = SUCCESS, ""
        placed: tuple[str, str] | None = None
        try:
            if message.sink is None:
                raise DimseStatus(CANNOT_UNDERSTAND, "no dataset")
            placed = self._call("C-STORE", cast(StoreSink, message.sink).finish)
        except DimseStatus as exc:
            status, comment = exc.status, exc.comment
        association.send(message.context_id,
                         c_store_rsp(_id(message), sop_class, sop_instance, status, comment))
        study, series = placed or ("", "")
        self._done("C-STORE", status, started, sop_instance if status != SUCCESS else "", sop_class=sop_class,
                   study=study, series=series, instances=1 if status == SUCCESS else 0, instance=sop_instance)

    def _find(self, association: Association, context: AcceptedContext, message: Message) -> None:
        started = time.monotonic()
        sop_class = context.abstract_syntax
        message_id = _id(message)
        matches = 0
        keys: tuple[str, str] = ("", "")

        def answer(status: int, identifier: Dataset | PreEncoded | None = None, comment: str = "",
                   offending: tuple[int, ...] = ()) -> None:
            data = _encode(identifier, context.transfer_syntax) if identifier is not None else None
            association.send(message.context_id, c_find_rsp(message_id, sop_class, status,
                                                            has_identifier=data is not None,
                                                            comment=comment, offending=offending), data)
            if status != PENDING:
                self._done("C-FIND", status, started, f"{matches} matches", sop_class=sop_class,
                           study=keys[0], series=keys[1], matches=matches)

        try:
            self._permitted("C-FIND", "find", context.abstract_syntax)
            identifier = self._identifier(message, context)
            keys = _study_and_series(identifier)
            for match in self.services.find(self.peer, sop_class, identifier):
                if self.cancel_requested(message_id):
                    answer(CANCEL)
                    return
                answer(PENDING, match)
                matches += 1
        except DimseStatus as exc:
            answer(exc.status, comment=exc.comment, offending=exc.offending)
            return
        except Exception as exc:
            LOG.exception("C-FIND for %s failed", self.peer.ae_title)
            answer(UNABLE_TO_PROCESS, comment=f"C-FIND failed: {type(exc).__name__}")
            return
        answer(SUCCESS)

    def _get(self, association: Association, context: AcceptedContext, message: Message) -> None:
        run = _Retrieve(self, message, context, C_GET_RSP)
        try:
            self._permitted("C-GET", "get", context.abstract_syntax)
            identifier = self._identifier(message, context)
            run.keys = _study_and_series(identifier)
            stored = self._call("C-GET", self.services.retrieve, self.peer, "get",
                                context.abstract_syntax, identifier)
        except DimseStatus as exc:
            run.final(exc.status, exc.comment)
            return
        run.send_all(stored, FileSender(association, storage_targets(association)))

    def _move(self, association: Association, context: AcceptedContext, message: Message) -> None:
        run = _Retrieve(self, message, context, C_MOVE_RSP)
        try:
            self._permitted("C-MOVE", "move", context.abstract_syntax)
            identifier = self._identifier(message, context)
            run.keys = _study_and_series(identifier)
            run.destination = message.text(MOVE_DESTINATION)
            stored = self._call("C-MOVE", self.services.retrieve, self.peer, "move",
                                context.abstract_syntax, identifier)
            node = self._call("C-MOVE", self.services.destination, self.peer, message.text(MOVE_DESTINATION))
        except DimseStatus as exc:
            run.final(exc.status, exc.comment)
            return
        run.total = len(stored)
        originator = (self.peer.ae_title, _id(message))
        for batch in batches(stored):
            try:
                with associate(self.settings, node, contexts_for(batch)) as sub:
                    if not run.send_some(batch, FileSender(sub, storage_targets(sub), originator)):
                        return
            except PacskitError as exc:
                LOG.warning("C-MOVE to %s: %s", node.label, exc)
                run.fail(batch, f"cannot send to {node.ae_title}")
        run.finish()

    def _normalized(self, association: Association, context: AcceptedContext, message: Message) -> None:
        """A DIMSE-N request (PS3.7 10.3): checked, handed to the services, answered; then
        what the response asks to run after it (:attr:`NormalizedResponse.after`)."""
        started = time.monotonic()
        field = message.us(COMMAND_FIELD) or 0
        operation = NORMALIZED_REQUESTS[field]
        sop_class = message.text(AFFECTED_SOP_CLASS_UID) or message.text(REQUESTED_SOP_CLASS_UID)
        instance = message.text(AFFECTED_SOP_INSTANCE_UID) or message.text(REQUESTED_SOP_INSTANCE_UID)
        type_id = message.us(ACTION_TYPE_ID) if field == N_ACTION_RQ else message.us(EVENT_TYPE_ID)
        try:
            if sop_class != context.abstract_syntax:
                raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "the SOP class is not the context's")
            self._permitted(operation, operation.lower(), sop_class)
            dataset = self._identifier(message, context) if message.data is not None else None
            request = NormalizedRequest(field, sop_class, instance, dataset,
                                        type_id if field in (N_ACTION_RQ, N_EVENT_REPORT_RQ) else None,
                                        tuple(message.tags(ATTRIBUTE_IDENTIFIER_LIST)))
            response = self._call(operation, self.services.normalized, self.peer, request)
        except DimseStatus as exc:
            response = NormalizedResponse(exc.status, comment=exc.comment, offending=exc.offending,
                                          error_id=exc.error_id)
        try:
            data = _encode(response.dataset, context.transfer_syntax) if response.dataset is not None else None
        except DimseStatus as exc:
            response, data = NormalizedResponse(exc.status, comment=exc.comment), None
        association.send(message.context_id, n_rsp(
            field | 0x8000, _id(message), sop_class, response.sop_instance_uid or instance, response.status,
            has_dataset=data is not None, type_id=type_id, comment=response.comment,
            offending=response.offending, error_id=response.error_id), data)
        self._done(operation, response.status, started, instance if response.status != SUCCESS else "",
                   sop_class=sop_class, instance=response.sop_instance_uid or instance)
        if response.after is not None and response.status == SUCCESS:
            response.after(association)

    def _done(self, service: str, status: int, started: float, detail: str = "", *, sop_class: str = "",
              study: str = "", series: str = "", **counts: object) -> None:
        """An operation is answered: in the log, and in the audit trail with its SOP
        class, the study and series it was about where known, and ``counts``
        (``instances``, ``matches``, ``instance``, ``destination``)."""
        seconds = time.monotonic() - started
        outcome = outcome_of(status).value
        exchange_log.operation(peer=self.association.label if self.association else self.address,
                               service=service, outcome=outcome,
                               detail=", ".join(filter(None, [describe(status), detail])), seconds=seconds)
        audit = self.acceptor.audit
        if audit is not None:
            peer = self.peer
            audit.record("operation", peer_ae=peer.ae_title, address=peer.address, user=peer.user or None,
                         operation=service, sop_class=sop_class or None, study_uid=study or None,
                         series_uid=series or None, **counts, status=f"0x{status:04X}", outcome=outcome,
                         seconds=round(seconds, 3))

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

    def _permitted(self, what: str, operation: str, sop_class_uid: str) -> None:
        """Raise 0x0124 unless the peer may ask for ``operation``: before anything of the
        request is decoded."""
        reason = self._call(what, self.services.allows, self.peer, operation, sop_class_uid)
        if reason is not None:
            raise DimseStatus(NOT_AUTHORIZED, reason)

    def _identifier(self, message: Message, context: AcceptedContext) -> Dataset:
        """The request's identifier; 0xC000 if it cannot be read or, deflated, inflates
        beyond :data:`~pacskit.deflate.IDENTIFIER_LIMIT`."""
        if message.data is None:
            raise DimseStatus(CANNOT_UNDERSTAND, "no identifier")
        try:
            return decode_identifier(message.data, context.transfer_syntax)
        except InflationLimitExceeded as exc:
            LOG.warning("refused an identifier from %s: %s", self.peer.ae_title, exc)
            raise DimseStatus(CANNOT_UNDERSTAND, f"identifier inflates beyond {exc.limit >> 20} MiB") from None
        except ValueError as exc:
            raise DimseStatus(CANNOT_UNDERSTAND, str(exc)) from None


class _Handler:
    """A :class:`~pacskit.net.exchange.RequestHandler` made of a session's methods."""

    def __init__(self, handle: Callable[[Association, AcceptedContext, Message], None],
                 open_sink: Callable[[Association, AcceptedContext, Message], DataSink | None] | None = None) -> None:
        self._handle = handle
        self._open = open_sink

    def open(self, association: Association, context: AcceptedContext, message: Message) -> DataSink | None:
        return self._open(association, context, message) if self._open is not None else None

    def handle(self, association: Association, context: AcceptedContext, message: Message) -> None:
        self._handle(association, context, message)


class _Retrieve:
    """The sub-operations of one C-GET or C-MOVE and their responses (PS3.4 C.4.2.1.5,
    C.4.3.1.4): a pending response after each, a final one with the counts."""

    def __init__(self, session: _Session, message: Message, context: AcceptedContext,
                 command_field: int) -> None:
        assert session.association is not None
        self.session = session
        self.association = session.association
        self.peer = session.peer
        self.message = message
        self.message_id = _id(message)
        self.context = context
        self.command_field = command_field
        self.started = time.monotonic()
        self.keys: tuple[str, str] = ("", "")
        self.destination: str | None = None
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
            if self.session.cancel_requested(self.message_id):
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
        self.session._done("C-GET" if self.command_field == C_GET_RSP else "C-MOVE", status, self.started,
                           f"{self.completed} sent, {self.failed} failed" if self.total else "",
                           sop_class=self.context.abstract_syntax, study=self.keys[0], series=self.keys[1],
                           instances=self.completed + self.warning, failed=self.failed,
                           destination=self.destination)

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
        self.association.send(self.message.context_id,
                          retrieve_rsp(self.command_field, self.message_id, self.context.abstract_syntax,
                                       status, counts, has_identifier=data is not None, comment=comment),
                          data)


def _without(message: str, label: str) -> str:
    return message.removeprefix(f"{label}: ").removeprefix(label).lstrip(": ")


def _study_and_series(identifier: Dataset) -> tuple[str, str]:
    """The Study and Series Instance UIDs a request's identifier names, if any (a UID
    list as its values joined by backslashes)."""
    def text(keyword: str) -> str:
        value = identifier.get(keyword)
        if isinstance(value, MultiValue | list):
            return "\\".join(str(v) for v in value)
        return str(value or "")
    return text("StudyInstanceUID"), text("SeriesInstanceUID")


def _id(message: Message) -> int:
    return message.us(MESSAGE_ID) or 0


def _encode(dataset: Dataset | PreEncoded, syntax: TransferSyntax) -> bytes:
    try:
        return encode_identifier(dataset, syntax)
    except ValueError:
        raise DimseStatus(CANNOT_UNDERSTAND, "a response identifier cannot be encoded") from None

