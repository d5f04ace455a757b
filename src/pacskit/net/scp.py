"""pacskit's own Storage SCP, started for as long as a C-MOVE to ourselves needs it, and
its listener for Storage Commitment reports, started for as long as ``pacskit commit``
waits for one.

Both run on the archive's :class:`~pacskit.net.acceptor.Acceptor` (one thread per
association, messages read straight from the socket): the first with a service that
hands each instance, still encoded and behind its file meta information, to the
retrieve; the second with one that hands each N-EVENT-REPORT of the Storage Commitment
Push Model SOP Class to the request waiting for it.

The Storage SCP admits only the peer it was started for (the node asked to move): associations
calling with that node's AE title, from its address (``move_check_peer``). It listens on
``move_bind_address``, by default the address of our interface towards that node (never
every interface unless configured so), and speaks DICOM TLS when the node does.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pydicom import Dataset
from pynetdicom import build_context
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # made by globals()

from pacskit.encoded import file_meta
from pacskit.net.acceptor import (
    SOP_CLASS_NOT_SUPPORTED,
    SUCCESS,
    UNRECOGNIZED_OPERATION,
    Acceptor,
    DimseStatus,
    Peer,
    Retrievable,
    StoreRequest,
    StoreSink,
)
from pacskit.net.commands import N_EVENT_REPORT_RQ
from pacskit.net.contexts import scp_storage_contexts
from pacskit.net.normalized import NormalizedRequest, NormalizedResponse
from pacskit.net.retrieve import AsyncInstanceHandler, InstanceHandler, Received, ReceivedInstance
from pacskit.net.tls import server_context
from pacskit.net.transport import resolve_host
from pacskit.nodes import Node
from pacskit.settings import Settings

LOG = logging.getLogger("pacskit.retrieve")


class Deliveries:
    """What reaches a C-MOVE destination: the connections open now, the addresses of ours
    the peer connected to, and each instance taken — so that a retrieve can wait until
    what the peer reports sent has arrived, or until nothing more can arrive."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._open = 0
        self._last_change = time.monotonic()
        self.connections = 0
        self.reached_at: list[str] = []

    def connection(self, conn: socket.socket, opened: bool) -> None:
        """Count a connection opening or closing (an :class:`Acceptor` hook)."""
        with self._changed:
            if opened:
                self._open += 1
                self.connections += 1
                try:
                    address = str(conn.getsockname()[0])
                except OSError:
                    address = ""
                if address and address not in self.reached_at:
                    self.reached_at.append(address)
            else:
                self._open -= 1
            self._last_change = time.monotonic()
            self._changed.notify_all()

    def instance(self) -> None:
        """Note that an instance was taken (whatever its outcome)."""
        with self._changed:
            self._last_change = time.monotonic()
            self._changed.notify_all()

    def wait(self, done: Callable[[], bool], quiet: float, idle: float) -> bool:
        """Wait until ``done()``, or until nothing can be coming: no connection open for
        ``quiet`` seconds, or connections open but silent (no instance, no connection
        opened or closed) for ``idle`` seconds, counted from now at the earliest. Whether
        ``done()`` came true."""
        with self._changed:
            self._last_change = time.monotonic()
            while not done():
                limit = self._last_change + (idle if self._open else quiet)
                left = limit - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True


@contextmanager
def storage_scp(settings: Settings, on_instance: InstanceHandler, port: int | None = None,
                deliveries: Deliveries | None = None, *, peer: Node | None = None,
                check_called_ae_title: bool = True) -> Iterator[Acceptor]:
    """Listen as a Storage SCP (AE title and port from settings) until the block ends;
    what arrives is also told to ``deliveries``.

    Only associations that call our AE title are accepted (unless
    ``check_called_ae_title`` is off); with ``peer``, only those
    from it (its AE title as calling AE title, from its address; any peer if
    ``move_check_peer`` is off), on the address of our
    interface towards it unless ``move_bind_address`` is set, over TLS when it is a TLS
    node (or ``tls.always``).

    Raises:
        NetworkError: the port cannot be listened on (in use, no permission).
        ConfigError: a TLS listener without a certificate.
    """
    if deliveries is not None:
        on_instance = _told(on_instance, deliveries)
    context = None
    if peer is not None and (peer.tls or settings.tls.always):
        context = server_context(settings.tls)
    acceptor = Acceptor(settings, destination_services(settings, on_instance, peer), destination_contexts(),
                        check_called_ae_title=check_called_ae_title,
                        on_connection=deliveries.connection if deliveries is not None else None)
    acceptor.start((listen_address(settings, peer), port if port is not None else settings.port), tls=context)
    try:
        yield acceptor
    finally:
        acceptor.shutdown()


def destination_services(settings: Settings, on_instance: InstanceHandler,
                         peer: Node | None, on_received: AsyncInstanceHandler | None = None) -> _MoveDestination:
    """The services of a C-MOVE destination (Verification and Storage, PS3.4 C.4.2.3)
    handing each instance to ``on_instance`` (or, on the asyncio acceptor, awaiting it on
    ``on_received``), admitting only ``peer`` unless ``move_check_peer`` is off."""
    return _MoveDestination(on_instance, peer if settings.move_check_peer else None, on_received)


def destination_contexts() -> list[PresentationContext]:
    """The presentation contexts a C-MOVE destination accepts: the storage ones and
    Verification."""
    return [*scp_storage_contexts(), build_context(Verification)]


def listen_address(settings: Settings, peer: Node | None) -> str:
    """Where the C-MOVE listener binds: ``move_bind_address``, else our address towards
    ``peer`` (the one the kernel would send from), else ``bind_address``."""
    if settings.move_bind_address:
        return settings.move_bind_address
    if peer is None:
        return settings.bind_address
    address = resolve_host(peer.host, peer.port)
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((address, peer.port))
            return str(probe.getsockname()[0])
        except OSError:
            return settings.bind_address


def _told(on_instance: InstanceHandler, deliveries: Deliveries) -> InstanceHandler:
    def handle(data: Received) -> None:
        try:
            on_instance(data)
        finally:
            deliveries.instance()

    return handle


class _MoveDestination:
    """The services of a C-MOVE destination: Verification and Storage only."""

    def __init__(self, on_instance: InstanceHandler, expected: Node | None = None,
                 on_received: AsyncInstanceHandler | None = None) -> None:
        self.on_instance = on_instance
        self.on_received = on_received
        self.expected = expected
        self.expected_address = resolve_host(expected.host, expected.port) if expected is not None else ""

    def admit(self, peer: Peer) -> str | None:
        expected = self.expected
        if expected is None:
            return None
        if peer.ae_title != expected.ae_title:
            reason = f"calling AE title {peer.ae_title!r} is not {expected.ae_title!r}, the peer asked to move"
        elif peer.address != self.expected_address:
            reason = f"{peer.address} is not {self.expected_address}, the address of {expected.ae_title}"
        else:
            return None
        LOG.warning("C-MOVE listener refused an association: %s", reason)
        return reason

    def allows(self, peer: Peer, operation: str, sop_class_uid: str) -> str | None:
        return None if operation.startswith("n-") else f"a C-MOVE destination does not {operation}"

    def echo(self, peer: Peer) -> None:
        pass

    def store(self, peer: Peer, request: StoreRequest) -> StoreSink:
        meta = file_meta(request.sop_class_uid, request.sop_instance_uid, request.transfer_syntax,
                         peer.ae_title or None)
        if self.on_received is not None:
            return _AwaitedInstance(self.on_instance, meta, self.on_received)
        return _Instance(self.on_instance, meta)

    def find(self, peer: Peer, sop_class_uid: str, identifier: Dataset) -> Iterator[Dataset]:
        raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "a C-MOVE destination does not answer C-FIND")

    def retrieve(self, peer: Peer, operation: str, sop_class_uid: str,
                 identifier: Dataset) -> Sequence[Retrievable]:
        raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "a C-MOVE destination does not retrieve")

    def destination(self, peer: Peer, ae_title: str) -> Node:
        raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "a C-MOVE destination does not move")

    def normalized(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        raise DimseStatus(UNRECOGNIZED_OPERATION, f"a C-MOVE destination does not serve {request.operation}")


@contextmanager
def report_listener(settings: Settings, sop_class_uid: str, on_report: Callable[[Peer, NormalizedRequest], int],
                    port: int | None = None) -> Iterator[Acceptor]:
    """Listen (AE title and port from settings) until the block ends for N-EVENT-REPORT
    requests of ``sop_class_uid`` on associations a peer opens to us, where it is the SCP
    of that SOP class (PS3.4 J.3.3: the Storage Commitment SCP requests the association
    and selects the SCP role, PS3.7 D.3.3.4). ``on_report`` returns each one's status.

    Raises:
        NetworkError: the port cannot be listened on (in use, no permission).
    """
    context = build_context(sop_class_uid, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    context.scu_role = context.scp_role = True
    acceptor = Acceptor(settings, _ReportDestination(on_report), [context, build_context(Verification)])
    acceptor.start((settings.bind_address, port if port is not None else settings.port))
    try:
        yield acceptor
    finally:
        acceptor.shutdown()


class _ReportDestination(_MoveDestination):
    """The services of a listener for event reports: Verification and N-EVENT-REPORT."""

    def __init__(self, on_report: Callable[[Peer, NormalizedRequest], int]) -> None:
        super().__init__(lambda received: None)
        self.on_report = on_report

    def store(self, peer: Peer, request: StoreRequest) -> StoreSink:
        raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "this listener takes event reports only")

    def normalized(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        if request.command_field != N_EVENT_REPORT_RQ:
            return super().normalized(peer, request)
        return NormalizedResponse(self.on_report(peer, request))


class _Instance(ReceivedInstance):
    """One C-STORE's dataset, handed to the retrieve once whole."""

    def __init__(self, on_instance: InstanceHandler, meta: bytes) -> None:
        super().__init__(meta)
        self.on_instance = on_instance

    def finish(self) -> None:
        try:
            status = self.status(self.on_instance)
        finally:
            self.discard()
        if status != SUCCESS:
            raise DimseStatus(status)


class _AwaitedInstance(_Instance):
    """One C-STORE's dataset, awaited on ``on_received`` once whole (the asyncio
    acceptor calls :meth:`finish_async`)."""

    def __init__(self, on_instance: InstanceHandler, meta: bytes, on_received: AsyncInstanceHandler) -> None:
        super().__init__(on_instance, meta)
        self.on_received = on_received

    async def finish_async(self) -> None:
        try:
            status = await self.status_async(self.on_received)
        finally:
            self.discard()
        if status != SUCCESS:
            raise DimseStatus(status)
