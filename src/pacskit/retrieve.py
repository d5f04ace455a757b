"""Retrieving instances: C-GET or C-MOVE requests on one association, and into a sink.

What the requests are is planned in :mod:`pacskit.retrieve_plan` (a query of unique keys
sent as it is, any other resolved by a C-FIND at its level, each match one request);
:func:`plan_requests` runs that C-FIND. All the requests of a retrieve share one
association.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from io import BytesIO
from typing import BinaryIO, Protocol

from pydicom import Dataset, dcmread

from pacskit.cancellation import Cancellation, RetrieveCancelled
from pacskit.deflate import InflationLimitExceeded, inflate_into, instance_limit
from pacskit.encoded import parse_file_meta, plain_file_meta
from pacskit.errors import (
    DimseFailure,
    MoveDestinationUnknown,
    NoStorageRole,
    PacskitError,
    ServiceNotSupported,
)
from pacskit.finder import run_query
from pacskit.models import (
    InstanceFailure,
    MoveDelivery,
    MoveProgress,
    MoveResult,
    RetrieveProgress,
    RetrieveResult,
)
from pacskit.net.find import find_session
from pacskit.net.retrieve import (
    STATUS_CANNOT_UNDERSTAND,
    InstanceRejected,
    Received,
    RetrieveSession,
    SubOperations,
    get_session,
    move_session,
)
from pacskit.net.scp import Deliveries, storage_scp
from pacskit.nodes import Node
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Query
from pacskit.retrieve_plan import (
    Plan,
    RetrieveRequest,
    dimse_requests,
    direct_plan,
    expected_of,
    is_direct,
    level_search,
    wholes_of,
)
from pacskit.settings import Settings
from pacskit.storage import WrittenInstance
from pacskit.syntax_retry import RetryOutcome, retrieve_again

ARRIVAL_QUIET = 2.0
"""Seconds a C-MOVE to ourselves waits, after its final response, for instances the peer
reported sent while no association of the peer's is open (one may still be opening)."""
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
FILE_META_HEAD = 64 << 10
"""How much of a received instance is read for its file meta information."""

ProgressCallback = Callable[[RetrieveProgress], None]
MoveProgressCallback = Callable[[MoveProgress], None]
CANCELLED = "the retrieve was cancelled"


def plan_requests(settings: Settings, node: Node, query: Query, privacy: PrivacyPolicy) -> Plan:
    """What a retrieve of ``query`` from ``node`` fetches (:mod:`pacskit.retrieve_plan`),
    searching by C-FIND when the query is not a retrieve identifier already: each match
    that stays once checked against the query (a PACS that ignores a key answers matches
    that fail it, :mod:`pacskit.answers`) fetched whole at the query's level.

    Raises:
        QueryError, NetworkError, DimseError: the C-FIND failed.
    """
    if is_direct(query):
        return direct_plan(query)
    search = level_search(query, query.level)
    with find_session(settings, node, query.model.value) as session:
        answers = run_query(session, search, privacy)
        wholes = wholes_of(search, answers)
    return Plan(wholes=wholes, model=query.model, check=answers.check)


class InstanceSink(Protocol):
    """What a :class:`Receiver` writes into: a :class:`~pacskit.storage.FolderSink`, or
    any sink of :mod:`pacskit.sinks`."""

    def prepare(self) -> None: ...

    def write_encoded(self, data: bytes | BinaryIO) -> WrittenInstance: ...


class Receiver:
    """Takes each received instance into a folder or memory, and keeps the tally."""

    def __init__(self, result: RetrieveResult, sink: InstanceSink | None, privacy: PrivacyPolicy,
                 progress: ProgressCallback | None, expected: int | None,
                 cancellation: Cancellation | None = None,
                 transform: Callable[[Dataset], object] | None = None) -> None:
        self.result = result
        self.transform = transform
        self.cancellation = cancellation
        self.sink = sink
        self.privacy = privacy
        self.progress = progress
        self.expected = expected
        self.state = RetrieveProgress(total=expected)
        self.lock = threading.Lock()
        self._settled = 0

    def __call__(self, data: Received) -> None:
        size = len(data) if isinstance(data, bytes | bytearray) else os.fstat(data.fileno()).st_size
        with self.refusing(data):
            _check_inflation(data, size)
            if self.cancellation is None:
                self._keep(data)
            else:
                self.cancellation.unless_cancelled(lambda: self._keep(data))
        with self.lock:
            self.result.bytes += size
            self.state.received += 1
            self.state.bytes = self.result.bytes
        self._report()

    @contextmanager
    def refusing(self, data: Received) -> Iterator[None]:
        """What taking ``data`` raises, counted as its failure and raised as the
        :class:`InstanceRejected` whose status its C-STORE-RSP carries."""
        try:
            yield
        except RetrieveCancelled:
            self._fail(data, CANCELLED)
            raise InstanceRejected(CANCELLED) from None
        except InstanceRejected as exc:
            self._fail(data, str(exc))
            raise
        except PacskitError as exc:
            self._fail(data, str(exc))
            raise InstanceRejected(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - undecodable data from the peer
            # The text of a decoder's error may quote the bytes it choked on: a name.
            reason = f"cannot decode the received instance ({type(exc).__name__})"
            self._fail(data, reason)
            raise InstanceRejected(reason, STATUS_CANNOT_UNDERSTAND) from None

    def _keep(self, data: Received) -> None:
        if self.sink is None:
            dataset = dcmread(_readable(data))
            if self.transform is not None:
                self.transform(dataset)
            self.privacy.blank_instance(dataset)
            with self.lock:
                self.result.instances.append(dataset)
            return
        written = self.sink.write_encoded(data)
        with self.lock:
            self.result.files.append(written.path)
            if written.skipped:
                self.result.skipped += 1
            else:
                self.result.written += 1

    def take(self, data: Received) -> bool:
        """Keep one instance received outside DIMSE (a WADO-RS part); whether it was
        kept (a failure is in ``result.local_failures``)."""
        try:
            self(data)
        except InstanceRejected:
            return False
        return True

    async def take_async(self, data: Received) -> bool:
        """:meth:`take` awaited (a receiver that forwards awaits the forward)."""
        return self.take(data)

    def expect(self, total: int | None) -> None:
        """Say how many instances are coming, when that becomes known."""
        with self.lock:
            self.expected = total
            self.state.total = total
        self._report()

    def begin_request(self) -> None:
        """Mark the start of the next request (counts in responses are per request)."""
        with self.lock:
            self._settled = self.result.completed + self.result.failed + self.result.warning

    def on_response(self, counts: SubOperations) -> None:
        """Follow the peer's sub-operation counts from each C-GET/C-MOVE response."""
        with self.lock:
            self.state.failed = self.result.failed + counts.failed
            if self.expected is None and counts.total is not None:
                self.state.total = self._settled + counts.total
        self._report()

    def _fail(self, data: Received, reason: str) -> None:
        uid = _sop_instance_uid(data)
        with self.lock:
            self.result.local_failures.append(InstanceFailure(sop_instance_uid=uid, reason=reason))

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.state.model_copy())


def add_late_failures(result: RetrieveResult, late: list[InstanceFailure]) -> None:
    """Count the instances a forward's sink refused after taking them (a STOW-RS batch,
    :class:`~pacskit.sinks.StowBatches`): failed locally, no longer written."""
    result.local_failures.extend(late)
    result.written = max(0, result.written - len(late))


def _sop_instance_uid(data: Received) -> str:
    """The instance's Media Storage SOP Instance UID, from its file meta information
    (which pacskit wrote from the C-STORE request): nothing is decoded or inflated."""
    meta, _ = parse_file_meta(_head(data), complete=False)
    return meta.get(0x0003) or "unknown"


def _head(data: Received) -> bytes:
    if isinstance(data, bytes | bytearray):
        return bytes(data[:FILE_META_HEAD])
    data.seek(0)
    head = data.read(FILE_META_HEAD)
    data.seek(0)
    return head


def _check_inflation(data: Received, size: int) -> None:
    """Refuse a deflated instance (PS3.5 A.5) that inflates beyond
    :func:`~pacskit.deflate.instance_limit` of its size, before anything decodes it.

    Raises:
        InstanceRejected: 0xA700 with the limit it broke, or 0xC000 if it does not inflate.
    """
    if isinstance(data, bytes | bytearray):
        plain = plain_file_meta(data)
        if plain is not None and plain[0] <= FILE_META_HEAD and plain[1] != DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
            return
    head = _head(data)
    meta, offset = parse_file_meta(head, complete=False)
    if meta.get(0x0010) != DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return
    if offset is None:
        raise InstanceRejected("the file meta information of a deflated instance is too long")
    limit = instance_limit(size - offset)
    source: BinaryIO = BytesIO(data) if isinstance(data, bytes | bytearray) else data
    source.seek(offset)
    try:
        inflate_into(source, limit, _dropped)
    except InflationLimitExceeded:
        raise InstanceRejected(f"the deflated instance ({size - offset} bytes) inflates beyond "
                               f"{limit >> 20} MiB, pacskit's limit") from None
    except ValueError as exc:
        raise InstanceRejected(f"cannot inflate the received instance: {exc}", STATUS_CANNOT_UNDERSTAND) from None
    finally:
        source.seek(0)


def _dropped(piece: bytes) -> None:
    pass


def _readable(data: Received) -> BinaryIO:
    if isinstance(data, bytes | bytearray):
        return BytesIO(data)
    data.seek(0)
    return data


def retrieve_requests(
    settings: Settings,
    node: Node,
    query: Query,
    requests: list[RetrieveRequest],
    *,
    method: str,
    sink: InstanceSink | None,
    privacy: PrivacyPolicy,
    progress: ProgressCallback | None = None,
    cancellation: Cancellation | None = None,
    transform: Callable[[Dataset], object] | None = None,
) -> RetrieveResult:
    """Send the retrieve ``requests`` already planned (``query`` gives their information
    model; :func:`pacskit.retrieve_plan.dimse_requests`) on one association, by C-GET
    (``get``), C-MOVE to ourselves (``move``) or C-GET falling back to C-MOVE when the peer
    refuses C-GET (``auto``). Once ``cancellation`` is set, what still arrives is refused
    and no request is sent. Instances kept in memory (no ``sink``) are changed by
    ``transform`` (a folder sink de-identifies by itself).

    Raises:
        NetworkError, DimseError, OutputError: as the steps that fail.
    """
    expected = expected_of(requests)
    if method == "auto":
        try:
            result = _retrieve(settings, node, query, requests, "get", sink, privacy, progress, expected,
                               cancellation, transform)
        except (ServiceNotSupported, NoStorageRole):
            result = _retrieve(settings, node, query, requests, "move", sink, privacy, progress, expected,
                               cancellation, transform)
    else:
        result = _retrieve(settings, node, query, requests, method, sink, privacy, progress, expected,
                           cancellation, transform)
    return result


def _retrieve(settings: Settings, node: Node, query: Query, requests: list[RetrieveRequest],
              method: str, sink: InstanceSink | None, privacy: PrivacyPolicy,
              progress: ProgressCallback | None, expected: int | None,
              cancellation: Cancellation | None,
              transform: Callable[[Dataset], object] | None = None) -> RetrieveResult:
    result = RetrieveResult(method=method)
    if not requests:
        return result
    receiver = Receiver(result, sink, privacy, progress, expected, cancellation, transform)
    model = query.model.value
    if method == "get":
        with get_session(settings, node, model, receiver) as session:
            sent = _send_all(session, requests, result, receiver, None)
            failures = [(request.identifier, [u for u in counts.failed_instances if u not in session.refused])
                        for request, counts in sent]
        failures = [(identifier, uids) for identifier, uids in failures if uids]
        if failures:
            ask_again(settings, node, model, failures, result, receiver)
    else:
        deliveries = Deliveries()
        with storage_scp(settings, receiver, deliveries=deliveries, peer=node):
            with move_session(settings, node, model) as session:
                local_address = session.local_address
                try:
                    _send_all(session, requests, result, receiver, settings.ae_title)
                except DimseFailure as exc:
                    raise _with_registration_hint(exc, settings, node) from None
            _await_deliveries(result, deliveries, settings, node, local_address)
    return result


def _await_deliveries(result: RetrieveResult, deliveries: Deliveries, settings: Settings, node: Node,
                      local_address: str) -> None:
    """Wait, the C-MOVE association released, until the instances the peer reported sent
    (completed or with a warning, PS3.4 C.4.2.3.1) have arrived — a sub-association may
    still be delivering, or not yet open, when the final C-MOVE response comes — and
    record those that never did, with where the peer had to send them."""
    if not deliveries.wait(lambda: result.received >= result.completed + result.warning,
                           quiet=ARRIVAL_QUIET, idle=settings.dimse_timeout):
        record_undelivered(result, deliveries, settings, node, local_address)


class DeliveryCount(Protocol):
    """What a C-MOVE destination's acceptor counts: the connections the peer opened and
    the addresses of ours it reached."""

    connections: int
    reached_at: list[str]


def record_undelivered(result: RetrieveResult, deliveries: DeliveryCount, settings: Settings, node: Node,
                       local_address: str) -> None:
    """Record the instances the peer reported sent that never arrived, with where the peer
    had to send them (the address it reached, else ours as it sees it)."""
    result.not_received = result.completed + result.warning - result.received
    host = next(iter(deliveries.reached_at), None)
    if host is None:
        host = settings.bind_address if settings.bind_address not in WILDCARD_ADDRESSES else local_address
    result.delivery = MoveDelivery(peer=node.label, ae_title=settings.ae_title, host=host or "this host",
                                   port=settings.port, connections=deliveries.connections)


def _with_registration_hint(exc: DimseFailure, settings: Settings, node: Node) -> DimseFailure:
    hint = (f"register AE title {settings.ae_title!r} with this host and port {settings.port} "
            f"on {node.label}")
    if isinstance(exc, MoveDestinationUnknown):
        return MoveDestinationUnknown(f"{exc.message}: {hint}", status=exc.status, comment=exc.comment)
    return type(exc)(f"{exc.message} (if {node.label} does not know us: {hint})",
                     status=exc.status, comment=exc.comment)


def _send_all(session: RetrieveSession, requests: list[RetrieveRequest], result: RetrieveResult,
              receiver: Receiver, destination: str | None) -> list[tuple[RetrieveRequest, SubOperations]]:
    sent = []
    for request in requests:
        if receiver.cancellation is not None and receiver.cancellation.cancelled:
            break
        receiver.begin_request()
        if destination is None:
            counts = session.c_get(request.identifier, receiver.on_response)
        else:
            counts = session.c_move(request.identifier, destination, receiver.on_response)
        add_counts(result, counts)
        sent.append((request, counts))
    return sent


def ask_again(settings: Settings, node: Node, model: str, failures: list[tuple[Dataset, list[str]]],
         result: RetrieveResult, receiver: Receiver) -> None:
    """Ask again for the instances the peer failed to send (not those we refused), over
    associations offering their transfer syntaxes (:mod:`pacskit.syntax_retry`)."""
    add_recovered(result, receiver, retrieve_again(settings, node, model, failures, receiver))


def add_recovered(result: RetrieveResult, receiver: Receiver, again: RetryOutcome) -> None:
    """What asking again brought, into ``result`` (and reported)."""
    recovered = len(again.recovered)
    result.requests += again.requests
    result.recovered = recovered
    result.completed += recovered
    result.failed = max(0, result.failed - recovered)
    result.failed_instances = [u for u in result.failed_instances if u not in again.recovered]
    result.failure_reason = again.reason
    receiver.on_response(SubOperations(completed=result.completed))


def move_report(result: MoveResult, progress: MoveProgressCallback | None) -> Callable[[SubOperations], None] | None:
    """The progress handler of the next C-MOVE of a move: its counts added to those of
    the requests before it (``result``), as :class:`MoveProgress`."""
    if progress is None:
        return None
    done = result.completed + result.failed + result.warning
    return partial(_report_move, progress, MoveProgress(done=done, failed=result.failed, total=done))


def _report_move(progress: MoveProgressCallback, before: MoveProgress, counts: SubOperations) -> None:
    done = counts.completed + counts.failed + counts.warning
    total = None if counts.total is None else (before.total or 0) + counts.total
    progress(MoveProgress(done=before.done + done, failed=before.failed + counts.failed, total=total))


def add_counts(result: RetrieveResult | MoveResult, counts: SubOperations) -> None:
    result.requests += 1
    result.completed += counts.completed
    result.failed += counts.failed
    result.warning += counts.warning
    result.remaining += counts.remaining or 0
    result.failed_instances.extend(counts.failed_instances)


def move(settings: Settings, node: Node, query: Query, destination: str,
         privacy: PrivacyPolicy, progress: MoveProgressCallback | None = None) -> MoveResult:
    """C-MOVE what ``query`` matches to the AE title ``destination``; ``progress`` is
    called with each pending response's counts, summed over the requests.

    Raises:
        MoveDestinationUnknown: the peer does not know ``destination`` (0xA801).
        QueryError, NetworkError, DimseError: as the steps that fail.
    """
    started = time.monotonic()
    plan = plan_requests(settings, node, query, privacy)
    result = MoveResult(destination=destination, check=plan.check)
    requests = dimse_requests(plan)
    if requests:
        with move_session(settings, node, query.model.value) as session:
            for request in requests:
                add_counts(result, session.c_move(request.identifier, destination, move_report(result, progress)))
    result.seconds = time.monotonic() - started
    return result
