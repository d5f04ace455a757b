"""The Modality Worklist C-FIND (PS3.4 K.4.1.2) on asyncio: :meth:`pacskit.client.Client.worklist`
on an :class:`~pacskit.net.aio_find.AsyncFindSession`, with the same identifier
(:func:`~pacskit.worklist.query.worklist_request`), the same reading of each response
(:class:`~pacskit.net.find.FindExchange`) and the same privacy policy on every item.

A worklist find left early (a timeout, a cancellation) sends C-CANCEL, then releases the
association, or aborts it if the peer goes on (:mod:`pacskit.net.aio_find`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from pydicom import Dataset

from pacskit.net import aio_find
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.nodes import Node
from pacskit.privacy import PrivacyPolicy
from pacskit.settings import Settings
from pacskit.worklist.query import WorklistQuery, worklist_request

if TYPE_CHECKING:
    from pacskit.client import Client


async def items(settings: Settings, node: Node, identifier: Dataset, limit: int | None,
                privacy: PrivacyPolicy, connections: ConnectionLimit | None = None) -> AsyncGenerator[Dataset, None]:
    """The worklist items ``node`` answers ``identifier`` with, each as it arrives and as
    ``privacy`` lets it out; C-CANCEL after ``limit`` of them. Close it (``aclose``) if
    left early. The association is opened within ``connections``.

    Raises:
        ServiceNotSupported: the peer does not offer the worklist.
        NetworkError, DimseError: the C-FIND failed.
    """
    async with aio_find.find_session(settings, node, "worklist", connections) as session, \
            aclosing(session.find(identifier, limit)) as answers:
        async for item in answers:
            yield privacy.scrub_response(item)


async def worklist(client: Client, node: Node | str, query: WorklistQuery | None,
                   filters: Mapping[str, Any], connections: ConnectionLimit | None = None) -> list[Dataset]:
    """Every item of ``client``'s :meth:`~pacskit.client.Client.worklist` of ``node``, on
    the event loop: ``query``, or one built from ``filters``; the association opened
    within ``connections``.

    Raises:
        QueryError, ServiceNotSupported, NetworkError, DimseError: as :meth:`Client.worklist`.
    """
    identifier, limit = worklist_request(query, filters, client.privacy)
    found = items(client.settings, client.node(node), identifier, limit, client.privacy, connections)
    async with aclosing(found):
        return [item async for item in found]
