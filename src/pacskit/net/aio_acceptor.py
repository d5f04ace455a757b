"""A Storage SCP on asyncio (PS3.4 Annex B, PS3.7 9.1.1, PS3.8 Section 9): the C-MOVE
destination of :func:`pacskit.net.scp.storage_scp`, served on the event loop instead of
a thread per association.

:class:`StorageAcceptor` listens (``loop.create_server``, a
:class:`~pacskit.net.aio_pdu_stream.PduStream` per connection) and serves each connection
as a task, on :class:`AcceptedAssociation` — the asyncio driver
(:class:`~pacskit.net.aio_association.AsyncAssociation`) on the acceptor side, with the same
state machine, message assembly and DIMSE exchange as the blocking acceptor. Which
associations are accepted is the blocking acceptor's policy (PS3.8 9.3.4): protocol
version, application context, called AE title, then the services' ``admit`` (the peer
asked to move, from its address), then the connection and association limits; the
contexts are the storage ones and Verification. Each C-STORE's dataset goes, as it
arrives, into the sink the services open (:meth:`~pacskit.net.scp.MoveDestination.store`,
spooled to a temporary file past :data:`~pacskit.net.retrieve.SPOOL_AFTER` bytes) and is
answered with its C-STORE-RSP.

Time and memory are bounded as on the blocking acceptor: the whole A-ASSOCIATE-RQ within
the ACSE timeout of the connection, then each PDU within the network timeout of the
previous one; datasets held in memory count against one
:class:`~pacskit.net.memory_budget.MemoryBudget`; a PDU over our maximum length or a
malformed one is answered A-ABORT (service provider, invalid PDU parameter value).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Protocol, cast

from pynetdicom.presentation import PresentationContext

from pacskit.errors import AssociationAborted, NetworkError, NetworkTimeout
from pacskit.net import exchange_log
from pacskit.net.acceptor import (
    APPLICATION_CONTEXT_NOT_SUPPORTED,
    CALLED_AE_NOT_RECOGNISED,
    CALLING_AE_NOT_RECOGNISED,
    CANNOT_UNDERSTAND,
    LOCAL_LIMIT_EXCEEDED,
    MAX_IDENTIFIER,
    PROTOCOL_VERSION_NOT_SUPPORTED,
    SUCCESS,
    DimseStatus,
    Peer,
    Refusal,
    StoreRequest,
    StoreSink,
    store_request,
)
from pacskit.net.aio_association import AsyncAssociation
from pacskit.net.aio_pdu_stream import PduStream
from pacskit.net.association import MAX_NEGOTIATION_PDU
from pacskit.net.commands import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_STORE_RQ,
    MESSAGE_ID,
    c_echo_rsp,
    c_store_rsp,
)
from pacskit.net.connection_limits import ConnectionLimits
from pacskit.net.exchange import INVALID_PARAMETER, ReleaseRequested
from pacskit.net.memory_budget import MemoryBudget
from pacskit.net.retrieve import AsyncInstanceHandler, InstanceHandler
from pacskit.net.scp import destination_contexts, destination_services, listen_address
from pacskit.net.status import describe, outcome_of
from pacskit.net.tls import peer_subject, server_context
from pacskit.net.transport import TlsOnPlainPort
from pacskit.net.ul.fsm import Primitive
from pacskit.net.ul.negotiation import APPLICATION_CONTEXT_NAME, AcceptedContext, Rejection, Request
from pacskit.net.ul.negotiation import context_id as context_id_of
from pacskit.net.wire import DataSink, Message
from pacskit.nodes import Node
from pacskit.settings import Settings

LOG = logging.getLogger("pacskit.retrieve")
CLOSE_GRACE = 5.0
"""Seconds associations still open get to end when a Storage SCP stops normally."""


class StorageServices(Protocol):
    """What a Storage SCP does with an association and its C-STOREs (the part of
    :class:`~pacskit.net.acceptor.Services` a C-MOVE destination serves)."""

    def admit(self, peer: Peer) -> str | None:
        """None to accept an association, else why it is rejected."""

    def store(self, peer: Peer, request: StoreRequest) -> StoreSink:
        """Open where the dataset of ``request`` goes, as soon as its command arrives."""


class AsyncDeliveries:
    """What reaches the acceptor, for the retrieve waiting on it: as
    :class:`pacskit.net.scp.Deliveries`, awaited on the event loop."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self._open = 0
        self._last_change = time.monotonic()
        self.connections = 0
        self.reached_at: list[str] = []

    def _note(self) -> None:
        self._last_change = time.monotonic()
        self._changed.set()

    def opened(self, address: str) -> None:
        """A connection opened, on our ``address``."""
        self._open += 1
        self.connections += 1
        if address and address not in self.reached_at:
            self.reached_at.append(address)
        self._note()

    def closed(self) -> None:
        self._open -= 1
        self._note()

    def instance(self) -> None:
        """An instance was taken (whatever its outcome)."""
        self._note()

    async def wait(self, done: Callable[[], bool], quiet: float, idle: float) -> bool:
        """As :meth:`pacskit.net.scp.Deliveries.wait`: until ``done()``, or no connection
        open for ``quiet`` seconds, or connections open but silent for ``idle`` seconds
        (counted from now at the earliest); whether ``done()`` came true."""
        self._last_change = time.monotonic()
        while not done():
            left = self._last_change + (idle if self._open else quiet) - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                async with asyncio.timeout(left):
                    await self._changed.wait()
            except TimeoutError:
                pass
        return True


class AcceptedAssociation(AsyncAssociation):
    """An association a peer opened to us."""

    async def incoming(self, deadline: float) -> Request | None:
        """The peer's A-ASSOCIATE-RQ, whole by ``deadline`` (``time.monotonic()``); None
        when none came, or one that cannot be decoded (the connection is then aborted or
        closed), as :meth:`pacskit.net.association.Association.incoming`."""
        self._run(self.ul.transport_indication())
        artim = self.ul.artim_deadline
        try:
            indication = await self._next_indication(MAX_NEGOTIATION_PDU,
                                                     until=min(deadline, artim) if artim is not None else deadline)
        except NetworkTimeout:
            LOG.warning("%s sent no whole A-ASSOCIATE-RQ in time: disconnected", self.label)
            self.close()
            return None
        except TlsOnPlainPort:
            LOG.warning("%s: the peer speaks TLS on a non-TLS port: disconnected", self.label)
            self.close()
            return None
        except (AssociationAborted, NetworkError):
            self.close()
            return None
        if indication.primitive is not Primitive.ASSOCIATE_INDICATION:
            self.close()
            return None
        try:
            return Request.decode(bytes(indication.pdu or b""))
        except Exception:  # noqa: BLE001 - a malformed request is aborted
            self.abort(source=0x02, reason=INVALID_PARAMETER)
            return None

    async def accept(self, request: Request, supported: Sequence[PresentationContext], settings: Settings) -> None:
        """Answer ``request`` with an A-ASSOCIATE-AC for what we support."""
        pdu, self.negotiated = request.accept(supported, self.max_pdu)
        self._run(self.ul.accept(pdu))
        await self._drain()
        self.negotiation_done()
        self.timeout = settings.network_timeout

    async def reject(self, rejection: Rejection) -> None:
        """Answer with an A-ASSOCIATE-RJ, and wait (ARTIM) for the peer to close."""
        try:
            self._run(self.ul.reject(rejection.encode()))
            await self._drain()
        except NetworkError:
            pass
        await self._linger()

    async def release_response(self) -> None:
        """Answer the peer's A-RELEASE-RQ (AR-4) and wait (ARTIM) for it to close."""
        try:
            self._run(self.ul.release_response())
            await self._drain()
        except NetworkError:
            pass
        exchange_log.released(peer=self.label, by_peer=True, seconds=self.age())
        await self._linger()


class StorageAcceptor:
    """Listens for associations and serves each as a task of the event loop.

    Args:
        settings: our AE title, timeouts, PDU size and limits (``max_connections``,
            ``max_connections_per_address``, ``max_associations``, ``memory_budget``).
        services: who is admitted, where each dataset goes.
        supported: the presentation contexts we accept.
        check_called_ae_title: reject associations not addressed to our AE title.
        deliveries: told of each connection and each instance.
    """

    def __init__(self, settings: Settings, services: StorageServices, supported: list[PresentationContext], *,
                 check_called_ae_title: bool = True, deliveries: AsyncDeliveries | None = None) -> None:
        self.settings = settings
        self.services = services
        self.supported = supported
        self.check_called_ae_title = check_called_ae_title
        self.deliveries = deliveries
        self.budget = MemoryBudget(settings.memory_budget)
        self.limits = ConnectionLimits(settings.max_connections, settings.max_connections_per_address,
                                       settings.max_associations)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._associations: set[AcceptedAssociation] = set()
        self._tls = False

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        """Listen on ``host``:``port`` (0: a free port, see :attr:`port`); with ``tls``,
        DICOM TLS (PS3.15 B.1).

        Raises:
            NetworkError: the address cannot be listened on.
        """
        self._tls = tls is not None
        try:
            listener = socket.create_server((host, port), backlog=128)
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise NetworkError(f"cannot listen on {host}:{port}: {reason}") from None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: PduStream(on_connected=self._accepted), sock=listener, ssl=tls,
            ssl_handshake_timeout=self.settings.acse_timeout if tls is not None else None)

    @property
    def port(self) -> int:
        """The port listened on."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, grace: float = 5.0) -> None:
        """Stop listening; let associations in progress end for ``grace`` seconds, then
        abort the rest."""
        if self._server is not None:
            self._server.close()
        tasks = set(self._tasks)
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for association in list(self._associations):
            association.abort()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _accepted(self, stream: PduStream) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, stream: PduStream) -> None:
        accepted = time.monotonic()
        peer_address = stream.get_extra_info("peername") or ("", 0)
        host, port = str(peer_address[0]), int(peer_address[1])
        refusal = self.limits.open(host)
        if refusal is not None:
            self.limits.refused(host, refusal)
            stream.write(Rejection(*LOCAL_LIMIT_EXCEEDED).encode())
            stream.close()
            return
        ours = stream.get_extra_info("sockname") or ("",)
        if self.deliveries is not None:
            self.deliveries.opened(str(ours[0]))
        settings = self.settings
        association = AcceptedAssociation(stream, host, max_pdu=settings.max_pdu,
                                          artim_timeout=settings.acse_timeout, timeout=settings.acse_timeout,
                                          tls_used=self._tls, budget=self.budget)
        self._associations.add(association)
        counted = False
        try:
            counted = await self._run(association, host, port, accepted)
        except asyncio.CancelledError:
            association.abort()
            raise
        except Exception:
            LOG.exception("association from %s failed", host)
            association.abort()
        finally:
            association.close()
            self._associations.discard(association)
            if counted:
                self.limits.end_association()
            self.limits.close(host)
            if self.deliveries is not None:
                self.deliveries.closed()

    async def _run(self, association: AcceptedAssociation, host: str, port: int, accepted: float) -> bool:
        """Negotiate and serve one association; whether it was counted against
        ``max_associations``."""
        request = await association.incoming(accepted + self.settings.acse_timeout)
        if request is None:
            return False
        sslobj = association.stream.get_extra_info("ssl_object")
        peer = Peer(request.calling_ae_title, request.called_ae_title, host, self._tls,
                    peer_subject(sslobj) if sslobj is not None else "")
        association.label = exchange_log.peer_label(peer.ae_title, host, port)
        association.name_peer = True
        exchange_log.association_received(
            calling=request.calling_ae_title, called=request.called_ae_title, address=host, port=port,
            contexts=[(context_id_of(cx), str(cx.abstract_syntax), [str(s) for s in cx.transfer_syntax])
                      for cx in request.proposed],
            roles=request.roles, max_pdu=request.peer_max_pdu, implementation=request.implementation,
            identity=request.identity.description if request.identity is not None else "")
        rejection, why, counted = self._rejection(request, peer)
        if rejection is not None:
            LOG.warning("rejected an association from %s: %s", association.label, why)
            exchange_log.association_rejected(peer=association.label, result=rejection[0], source=rejection[1],
                                              reason=rejection[2], by_us=True)
            await association.reject(Rejection(*rejection))
            return counted
        await association.accept(request, self.supported, self.settings)
        association.log_accepted(len(request.proposed), by_us=True)
        association.max_data = MAX_IDENTIFIER
        store = _Store(self, peer)
        association.handlers.update({C_STORE_RQ: store, C_ECHO_RQ: _Echo(), C_CANCEL_RQ: _Ignored()})
        association.started = accepted
        await self._serve_requests(association)
        return counted

    def _rejection(self, request: Request, peer: Peer) -> tuple[tuple[int, int, int] | None, str, bool]:
        """As the blocking acceptor's: the A-ASSOCIATE-RJ (result, source, reason) and
        why, or None; and whether the association was counted."""
        if not request.protocol_version & 0x01:
            return PROTOCOL_VERSION_NOT_SUPPORTED, f"protocol version {request.protocol_version}", False
        if request.application_context_name != APPLICATION_CONTEXT_NAME:
            return APPLICATION_CONTEXT_NOT_SUPPORTED, f"application context {request.application_context_name}", \
                False
        if self.check_called_ae_title and peer.called_ae_title != self.settings.ae_title:
            return CALLED_AE_NOT_RECOGNISED, f"called AE title {peer.called_ae_title!r} is not ours", False
        reason = self.services.admit(peer)
        if reason is not None:
            return CALLING_AE_NOT_RECOGNISED, reason, False
        if not self.limits.begin_association():
            return LOCAL_LIMIT_EXCEEDED, f"more than {self.settings.max_associations} associations", False
        return None, "", True

    async def _serve_requests(self, association: AcceptedAssociation) -> None:
        """Serve the association's requests until it ends."""
        while True:
            try:
                message = await association.receive(association.open_request)
            except ReleaseRequested:
                await association.release_response()
                return
            except NetworkTimeout as exc:
                LOG.warning("association with %s aborted: %s (network timeout %g s)", association.label, exc,
                            self.settings.network_timeout)
                association.abort()
                return
            except AssociationAborted:
                return
            try:
                await association.served(message)
                await association._drain()
            except (AssociationAborted, NetworkTimeout) as exc:
                LOG.warning("association with %s lost: %s", association.label, exc)
                association.abort()
                return


@asynccontextmanager
async def storage_scp(settings: Settings, on_instance: InstanceHandler, *, port: int | None = None,
                      deliveries: AsyncDeliveries | None = None, peer: Node | None = None,
                      check_called_ae_title: bool = True,
                      on_received: AsyncInstanceHandler | None = None) -> AsyncIterator[StorageAcceptor]:
    """Listen as a Storage SCP until the block ends, as
    :func:`pacskit.net.scp.storage_scp` (the same address, admitted peer, contexts and
    TLS), on the event loop. Associations still open when the block ends are given
    :data:`CLOSE_GRACE` seconds to finish, none if it raised (a cancellation, a timeout):
    they are aborted. With ``on_received``, each instance is awaited on it instead of
    handed to ``on_instance``, its C-STORE-RSP sent once it returned (nothing more is
    read from that association meanwhile).

    Raises:
        NetworkError: the port cannot be listened on (in use, no permission).
        ConfigError: a TLS listener without a certificate.
    """
    context = server_context(settings.tls) if peer is not None and (peer.tls or settings.tls.always) else None
    acceptor = StorageAcceptor(settings, destination_services(settings, on_instance, peer, on_received),
                               destination_contexts(),
                               check_called_ae_title=check_called_ae_title, deliveries=deliveries)
    await acceptor.start(listen_address(settings, peer), port if port is not None else settings.port, context)
    try:
        yield acceptor
    except BaseException:
        await acceptor.close(0)
        raise
    else:
        await acceptor.close(CLOSE_GRACE)


@dataclass
class _Outcome:
    """What a C-STORE-RSP says."""

    status: int = SUCCESS
    comment: str = ""


class _Store:
    """C-STORE (PS3.4 B.2): the dataset into the sink the services open, answered with
    the status of its ``finish``."""

    def __init__(self, acceptor: StorageAcceptor, peer: Peer) -> None:
        self.acceptor = acceptor
        self.peer = peer

    def open(self, association: AcceptedAssociation, context: AcceptedContext, message: Message) -> DataSink:
        try:
            return self.acceptor.services.store(self.peer, store_request(context, message))
        except DimseStatus as exc:
            return Refusal(exc.status, exc.comment)

    def handle(self, association: AcceptedAssociation, context: AcceptedContext, message: Message) -> None:
        started = time.monotonic()
        with self._stored() as outcome:
            if message.sink is None:
                raise DimseStatus(CANNOT_UNDERSTAND, "no dataset")
            cast(StoreSink, message.sink).finish()
        self._answer(association, message, outcome.status, outcome.comment, started)

    async def answer(self, association: AcceptedAssociation, context: AcceptedContext, message: Message) -> None:
        """As :meth:`handle`, a sink that finishes asynchronously (``finish_async``, a
        forward) awaited: the C-STORE-RSP waits for it."""
        finish = getattr(message.sink, "finish_async", None)
        if finish is None:
            self.handle(association, context, message)
            return
        started = time.monotonic()
        with self._stored() as outcome:
            await finish()
        self._answer(association, message, outcome.status, outcome.comment, started)

    @contextmanager
    def _stored(self) -> Iterator[_Outcome]:
        """The status and comment of a C-STORE's outcome (success, unless what runs inside
        raises), each instance counted as delivered."""
        outcome = _Outcome()
        try:
            yield outcome
        except DimseStatus as exc:
            outcome.status, outcome.comment = exc.status, exc.comment
        except Exception as exc:
            LOG.exception("C-STORE for %s failed", self.peer.ae_title)
            outcome.status, outcome.comment = 0xC001, f"C-STORE failed: {type(exc).__name__}"
        finally:
            if self.acceptor.deliveries is not None:
                self.acceptor.deliveries.instance()

    def _answer(self, association: AcceptedAssociation, message: Message, status: int, comment: str,
                started: float) -> None:
        sop_class = message.text(AFFECTED_SOP_CLASS_UID)
        sop_instance = message.text(AFFECTED_SOP_INSTANCE_UID)
        association.send(message.context_id, c_store_rsp(message.us(MESSAGE_ID) or 0, sop_class, sop_instance,
                                                         status, comment))
        exchange_log.operation(peer=association.label, service="C-STORE", outcome=outcome_of(status).value,
                               detail=", ".join(filter(None, [describe(status),
                                                              sop_instance if status != SUCCESS else ""])),
                               seconds=time.monotonic() - started)


class _Echo:
    """C-ECHO (PS3.4 A.4): answered success."""

    def open(self, association: AcceptedAssociation, context: AcceptedContext, message: Message) -> None:
        return None

    def handle(self, association: AcceptedAssociation, context: AcceptedContext, message: Message) -> None:
        association.send(message.context_id, c_echo_rsp(message.us(MESSAGE_ID) or 0, context.abstract_syntax,
                                                        SUCCESS))


class _Ignored:
    """C-CANCEL (PS3.7 9.3.2.3) of nothing in progress: there is nothing to answer."""

    def open(self, association: AcceptedAssociation, context: AcceptedContext, message: Message) -> None:
        return None

    def handle(self, association: AcceptedAssociation, context: AcceptedContext, message: Message) -> None:
        return None
