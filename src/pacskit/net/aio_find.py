"""Query/Retrieve FIND, SCU side, on asyncio (PS3.4 C.4.1): :class:`pacskit.net.find.FindSession`
on :mod:`pacskit.net.aio_association`, the same requests and the same reading of the
responses (:class:`~pacskit.net.find.FindExchange`).

A find left early (the consumer stops, the task is cancelled or times out) sends
C-CANCEL (PS3.7 9.3.2.3) and waits at most :data:`CANCEL_GRACE` seconds for the peer's
final response; a peer that does not stop by then is aborted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager

from pydicom import Dataset
from pynetdicom import build_context

from pacskit.net.aio_association import CANCEL_GRACE, AsyncAssociation, associate
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.net.commands import c_cancel_rq
from pacskit.net.find import FINAL, FIND_SOP_CLASSES, FindExchange, find_context
from pacskit.net.ul.negotiation import AcceptedContext
from pacskit.net.wire import Message
from pacskit.nodes import Node
from pacskit.settings import Settings


class AsyncFindSession(FindExchange):
    """One association over which C-FIND requests are sent in turn, on the event loop."""

    def __init__(self, association: AsyncAssociation, node: Node, model: str, context: AcceptedContext) -> None:
        super().__init__(node, model, context)
        self.association = association

    async def find(self, identifier: Dataset, limit: int | None = None) -> AsyncGenerator[Dataset, None]:
        """Send one C-FIND and yield the identifier of every pending response, as
        :meth:`pacskit.net.find.FindSession.find`. Close it (``aclose``) if left early."""
        association = self.association
        message_id = association.next_message_id()
        command, request = self.request(message_id, identifier)
        responses = association.request(self.context_id, command, request, message_id=message_id)
        count = 0
        cancelled = finished = False
        try:
            async for response in responses:
                match = self.answer(response)
                if match is FINAL:
                    finished = True
                    return
                if cancelled or match is None:
                    continue
                yield match
                count += 1
                if limit is not None and count >= limit:
                    association.send(self.context_id, c_cancel_rq(message_id))
                    cancelled = True
        finally:
            await responses.aclose()
            if not finished and association.is_established:
                if not cancelled:
                    cancel_quietly(association, self.context_id, message_id)
                await settle(association, message_id, lambda response: self.answer(response) is FINAL)


def cancel_quietly(association: AsyncAssociation, context_id: int, message_id: int) -> None:
    try:
        association.send(context_id, c_cancel_rq(message_id))
    except Exception:  # noqa: BLE001 - the association is aborted next if it cannot be sent
        association.abort()


async def settle(association: AsyncAssociation, message_id: int, is_final: Callable[[Message], bool]) -> None:
    """After a C-CANCEL: read responses to ``message_id`` (dropped; the peer's requests
    meanwhile served) until the final one, for at most :data:`CANCEL_GRACE` seconds;
    the association is aborted if the peer goes on, or anything fails."""
    if not association.is_established:
        return
    try:
        async with asyncio.timeout(CANCEL_GRACE):
            while True:
                message = await association.receive(association.open_request)
                if not association.is_response(message, message_id):
                    association.serve(message)
                    continue
                try:
                    final = is_final(message)
                except Exception:  # noqa: BLE001 - a failure status ends the exchange too
                    final = True
                if final:
                    association.settled = True
                    return
    except Exception:  # noqa: BLE001 - any failure here ends in the abort below
        pass
    association.abort()


@asynccontextmanager
async def find_session(settings: Settings, node: Node, model: str,
                       connections: ConnectionLimit | None = None) -> AsyncIterator[AsyncFindSession]:
    """An association for C-FIND in ``model`` (within ``connections``), as
    :func:`pacskit.net.find.find_session`."""
    async with associate(settings, node, [build_context(FIND_SOP_CLASSES[model])],
                         connections=connections) as assoc:
        yield AsyncFindSession(assoc, node, model, find_context(assoc, node, model))
