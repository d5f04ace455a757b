"""A retrieve by C-GET or by C-MOVE to ourselves on asyncio: :meth:`pacskit.Client.get` from a DIMSE node
on :mod:`pacskit.net.aio_retrieve`, with the same plan (a C-FIND first, on
:mod:`pacskit.aio_finder`, when the query is not made of unique keys), the same
:class:`~pacskit.retrieve.Receiver` (checks, privacy, de-identification, the sink) and the
same counts. Instances the peer could not send for want of a context are asked for again
on the loop too (:mod:`pacskit.aio_syntax_retry`).

A C-MOVE to ourselves (PS3.4 C.4.2.3) receives on a Storage SCP of the event loop
(:func:`pacskit.net.aio_acceptor.storage_scp`), listening while the C-MOVE requests are
sent, and waits as the blocking one does for the instances the peer reports sent. Once
the task running the retrieve is being cancelled (a cancellation, a timeout), every
instance still arriving is refused: nothing is written after the cancel, even before the
C-CANCEL is on the wire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import aclosing

from pydicom import Dataset

from pacskit import aio_finder, aio_syntax_retry
from pacskit.aio_forward import ForwardReceiver, ForwardSink
from pacskit.cancellation import Cancellation
from pacskit.errors import DimseFailure, NoStorageRole, ServiceNotSupported
from pacskit.models import AnswerCheck, RetrieveResult
from pacskit.net import aio_acceptor, aio_find
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.net.aio_retrieve import get_session, move_session
from pacskit.net.retrieve import AsyncInstanceHandler, Received
from pacskit.nodes import Node
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Query
from pacskit.retrieve import (
    ARRIVAL_QUIET,
    InstanceSink,
    ProgressCallback,
    Receiver,
    _with_registration_hint,
    add_counts,
    add_recovered,
    record_undelivered,
)
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


async def plan_requests(settings: Settings, node: Node, query: Query, privacy: PrivacyPolicy,
                        connections: ConnectionLimit | None = None) -> Plan:
    """As :func:`pacskit.retrieve.plan_requests`, the C-FIND on the loop (within ``connections``)."""
    if is_direct(query):
        return direct_plan(query)
    search = level_search(query, query.level)
    check = AnswerCheck(level=search.level)
    async with aio_find.find_session(settings, node, search.model.value, connections) as session, \
            aclosing(aio_finder.checked_matches(session, search, privacy, check)) as found:
        matches = [match async for match in found]
    return Plan(wholes=wholes_of(search, matches), model=query.model, check=check)


async def retrieve(settings: Settings, node: Node, query: Query, *, sink: InstanceSink | None,
                   privacy: PrivacyPolicy, progress: ProgressCallback | None = None,
                   cancellation: Cancellation | None = None,
                   transform: Callable[[Dataset], object] | None = None, method: str = "get",
                   connections: ConnectionLimit | None = None,
                   forward: ForwardSink | None = None) -> RetrieveResult:
    """Retrieve what ``query`` matches by C-GET (``get``), C-MOVE to ourselves (``move``)
    or C-GET falling back to C-MOVE when the peer refuses C-GET (``auto``), as
    :meth:`pacskit.Client.get` from a DIMSE node; ``progress`` is called on the loop. Each
    association with ``node`` is opened within ``connections``. With ``forward`` (and no
    ``sink``), each instance is sent on to it as it arrives (:mod:`pacskit.aio_forward`);
    it is not closed here."""
    started = time.monotonic()
    if sink is not None:
        sink.prepare()
    plan = await plan_requests(settings, node, query, privacy, connections)
    result = await retrieve_requests(settings, node, query, dimse_requests(plan), method=method, sink=sink,
                                     privacy=privacy, progress=progress, cancellation=cancellation,
                                     transform=transform, connections=connections, forward=forward)
    result.check = plan.check
    result.seconds = time.monotonic() - started
    return result


async def retrieve_requests(settings: Settings, node: Node, query: Query, requests: list[RetrieveRequest], *,
                            method: str, sink: InstanceSink | None, privacy: PrivacyPolicy,
                            progress: ProgressCallback | None, cancellation: Cancellation | None,
                            transform: Callable[[Dataset], object] | None, connections: ConnectionLimit | None,
                            forward: ForwardSink | None) -> RetrieveResult:
    """The retrieve ``requests`` already planned, as :func:`pacskit.retrieve.retrieve_requests`
    sends them (``query`` gives their information model), on the loop; into ``sink`` or
    sent on to ``forward``."""
    steps = (sink, privacy, progress, cancellation, transform, connections, forward)
    if method == "auto":
        try:
            return await _retrieve(settings, node, query, requests, "get", *steps)
        except (ServiceNotSupported, NoStorageRole):
            return await _retrieve(settings, node, query, requests, "move", *steps)
    return await _retrieve(settings, node, query, requests, method, *steps)


async def _retrieve(settings: Settings, node: Node, query: Query, requests: list[RetrieveRequest], method: str,
                    sink: InstanceSink | None, privacy: PrivacyPolicy, progress: ProgressCallback | None,
                    cancellation: Cancellation | None, transform: Callable[[Dataset], object] | None,
                    connections: ConnectionLimit | None, forward: ForwardSink | None) -> RetrieveResult:
    result = RetrieveResult(method=method)
    if not requests:
        return result
    if (method == "move" or forward is not None) and cancellation is None:
        cancellation = Cancellation()
    receiver: Receiver
    if forward is not None:
        receiver = ForwardReceiver(result, forward, privacy, progress, expected_of(requests), cancellation,
                                   asyncio.current_task())
    else:
        receiver = Receiver(result, sink, privacy, progress, expected_of(requests), cancellation, transform)
    if method == "get":
        await _get(settings, node, query.model.value, requests, result, receiver, connections)
    else:
        await _move_here(settings, node, query.model.value, requests, result, receiver, connections)
    return result


def _awaited(receiver: Receiver) -> AsyncInstanceHandler | None:
    return receiver.forward if isinstance(receiver, ForwardReceiver) else None


async def _get(settings: Settings, node: Node, model: str, requests: list[RetrieveRequest], result: RetrieveResult,
               receiver: Receiver, connections: ConnectionLimit | None) -> None:
    cancellation = receiver.cancellation
    async with get_session(settings, node, model, receiver, connections=connections,
                           on_received=_awaited(receiver)) as session:
        failures = []
        for request in requests:
            if cancellation is not None and cancellation.cancelled:
                break
            receiver.begin_request()
            counts = await session.c_get(request.identifier, receiver.on_response, cancellation)
            add_counts(result, counts)
            failures.append((request.identifier, [u for u in counts.failed_instances if u not in session.refused]))
    failures = [(identifier, uids) for identifier, uids in failures if uids]
    if failures:
        add_recovered(result, receiver, await aio_syntax_retry.retrieve_again(
            settings, node, model, failures, receiver, connections, on_received=_awaited(receiver)))


async def _move_here(settings: Settings, node: Node, model: str, requests: list[RetrieveRequest],
                     result: RetrieveResult, receiver: Receiver, connections: ConnectionLimit | None) -> None:
    """C-MOVE ``requests`` to our own AE title, received by a Storage SCP on the loop
    (the associations the peer opens to it are the peer's, not counted in ``connections``)."""
    stop = receiver.cancellation
    assert stop is not None
    owner = asyncio.current_task()

    def take(data: Received) -> None:
        if owner is not None and owner.cancelling():
            stop.cancel()
        receiver(data)

    deliveries = aio_acceptor.AsyncDeliveries()
    async with aio_acceptor.storage_scp(settings, take, deliveries=deliveries, peer=node,
                                        on_received=_awaited(receiver)):
        async with move_session(settings, node, model, connections) as session:
            local_address = session.local_address
            try:
                for request in requests:
                    if stop.cancelled:
                        break
                    receiver.begin_request()
                    add_counts(result, await session.c_move(request.identifier, settings.ae_title,
                                                            receiver.on_response, stop))
            except DimseFailure as exc:
                raise _with_registration_hint(exc, settings, node) from None
        await _await_deliveries(result, deliveries, settings, node, local_address)


async def _await_deliveries(result: RetrieveResult, deliveries: aio_acceptor.AsyncDeliveries, settings: Settings,
                            node: Node, local_address: str) -> None:
    """As :func:`pacskit.retrieve._await_deliveries`: wait for the instances the peer
    reported sent, and record those that never came, with where the peer had to send them."""
    if not await deliveries.wait(lambda: result.received >= result.completed + result.warning,
                                 quiet=ARRIVAL_QUIET, idle=settings.dimse_timeout):
        record_undelivered(result, deliveries, settings, node, local_address)
