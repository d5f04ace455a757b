"""A C-MOVE to a third party on asyncio: :func:`pacskit.retrieve.move` on
:mod:`pacskit.net.aio_retrieve`, with the same plan (a C-FIND first, on
:mod:`pacskit.aio_finder`, when the query is not made of unique keys), the same
progress (:class:`~pacskit.models.MoveProgress`, summed over the requests) and the same
counts. A timeout or a cancellation sends C-CANCEL for the C-MOVE in progress (PS3.7
9.3.4.3); the peer then has :data:`~pacskit.net.aio_association.CANCEL_GRACE` seconds to
answer before it is aborted."""

from __future__ import annotations

import time

from pacskit.aio_get import plan_requests
from pacskit.models import MoveResult
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.net.aio_retrieve import move_session
from pacskit.nodes import Node
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Query
from pacskit.retrieve import MoveProgressCallback, add_counts, move_report
from pacskit.retrieve_plan import dimse_requests
from pacskit.settings import Settings


async def move(settings: Settings, node: Node, query: Query, destination: str, privacy: PrivacyPolicy,
               progress: MoveProgressCallback | None = None,
               connections: ConnectionLimit | None = None) -> MoveResult:
    """C-MOVE what ``query`` matches to the AE title ``destination``, as
    :func:`pacskit.retrieve.move`; ``progress`` is called on the loop, each association
    with ``node`` opened within ``connections``.

    Raises:
        MoveDestinationUnknown: the peer does not know ``destination`` (0xA801).
        QueryError, NetworkError, DimseError: as the steps that fail.
    """
    started = time.monotonic()
    plan = await plan_requests(settings, node, query, privacy, connections)
    result = MoveResult(destination=destination, check=plan.check)
    requests = dimse_requests(plan)
    if requests:
        async with move_session(settings, node, query.model.value, connections) as session:
            for request in requests:
                add_counts(result, await session.c_move(request.identifier, destination,
                                                        move_report(result, progress)))
    result.seconds = time.monotonic() - started
    return result
