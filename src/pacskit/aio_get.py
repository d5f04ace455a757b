"""A retrieve by C-GET on asyncio: :func:`pacskit.retrieve.retrieve` for ``method="get"``
on :mod:`pacskit.net.aio_retrieve`, with the same plan (a C-FIND first, on
:mod:`pacskit.aio_finder`, when the query is not made of unique keys), the same
:class:`~pacskit.retrieve.Receiver` (checks, privacy, de-identification, the sink) and the
same counts. Instances the peer could not send for want of a context are asked for again
on the loop too (:mod:`pacskit.aio_syntax_retry`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import aclosing

from pydicom import Dataset

from pacskit import aio_finder, aio_syntax_retry
from pacskit.cancellation import Cancellation
from pacskit.models import AnswerCheck, RetrieveResult
from pacskit.net import aio_find
from pacskit.net.aio_retrieve import get_session
from pacskit.nodes import Node
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Query
from pacskit.retrieve import (
    InstanceSink,
    ProgressCallback,
    Receiver,
    RetrievePlan,
    add_counts,
    add_recovered,
    direct_plan,
    expected_of,
    is_direct,
    requests_of,
    resolving_search,
)
from pacskit.settings import Settings


async def plan_requests(settings: Settings, node: Node, query: Query, privacy: PrivacyPolicy) -> RetrievePlan:
    """As :func:`pacskit.retrieve.plan_requests`, the C-FIND on the loop."""
    if is_direct(query):
        return direct_plan(query)
    search = resolving_search(query)
    check = AnswerCheck(level=search.level)
    async with aio_find.find_session(settings, node, search.model.value) as session, \
            aclosing(aio_finder.checked_matches(session, search, privacy, check)) as found:
        matches = [match async for match in found]
    return RetrievePlan(requests_of(query, matches), check)


async def retrieve(settings: Settings, node: Node, query: Query, *, sink: InstanceSink | None,
                   privacy: PrivacyPolicy, progress: ProgressCallback | None = None,
                   cancellation: Cancellation | None = None,
                   transform: Callable[[Dataset], object] | None = None) -> RetrieveResult:
    """Retrieve what ``query`` matches by C-GET, as :func:`pacskit.retrieve.retrieve`;
    ``progress`` is called on the loop."""
    started = time.monotonic()
    if sink is not None:
        sink.prepare()
    plan = await plan_requests(settings, node, query, privacy)
    result = RetrieveResult(method="get")
    if plan.requests:
        receiver = Receiver(result, sink, privacy, progress, expected_of(plan.requests), cancellation, transform)
        model = query.model.value
        async with get_session(settings, node, model, receiver) as session:
            failures = []
            for request in plan.requests:
                if cancellation is not None and cancellation.cancelled:
                    break
                receiver.begin_request()
                counts = await session.c_get(request.identifier, receiver.on_response, cancellation)
                add_counts(result, counts)
                failures.append((request.identifier, [u for u in counts.failed_instances if u not in session.refused]))
        failures = [(identifier, uids) for identifier, uids in failures if uids]
        if failures:
            add_recovered(result, receiver, await aio_syntax_retry.retrieve_again(settings, node, model, failures,
                                                                                  receiver))
    result.check = plan.check
    result.seconds = time.monotonic() - started
    return result
