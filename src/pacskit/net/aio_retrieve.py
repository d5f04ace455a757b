"""Query/Retrieve GET, SCU side, on asyncio (PS3.4 C.4.3): :class:`pacskit.net.retrieve.RetrieveSession`
on :mod:`pacskit.net.aio_association`, the same proposal (SCP role selection), the same
handling of the C-STORE sub-operations (handed to ``on_instance``) and of the responses.

A C-GET stopped by a cancellation or a timeout first sets its
:class:`~pacskit.cancellation.Cancellation` (every instance still arriving is refused,
nothing more is written), sends C-CANCEL (PS3.7 9.3.3.3) and waits at most
:data:`~pacskit.net.aio_association.CANCEL_GRACE` seconds for the final response; a peer
that goes on is aborted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydicom import Dataset

from pacskit.cancellation import Cancellation
from pacskit.errors import PacskitError
from pacskit.net.aio_association import AsyncAssociation, associate
from pacskit.net.aio_find import cancel_quietly, settle
from pacskit.net.commands import C_GET_RSP, STATUS, c_get_rq
from pacskit.net.retrieve import (
    GET_SOP_CLASSES,
    InstanceHandler,
    ProgressHandler,
    RetrieveSession,
    SubOperations,
    check_get_contexts,
    get_proposal,
)
from pacskit.net.status import Outcome, outcome_of
from pacskit.nodes import Node
from pacskit.settings import Settings


class AsyncGetSession(RetrieveSession):
    """One C-GET association on the event loop; its sub-operations served as they come."""

    association: AsyncAssociation  # type: ignore[assignment]

    async def c_get(self, identifier: Dataset, progress: ProgressHandler | None = None,
                    cancellation: Cancellation | None = None) -> SubOperations:
        """Send one C-GET and wait for its final response, storing what comes back; as
        :meth:`pacskit.net.retrieve.RetrieveSession.c_get`."""
        get_class = GET_SOP_CLASSES[self.model]
        context, encoded = self.prepared(identifier, get_class, "C-GET")
        association = self.association
        message_id = association.next_message_id()
        responses = association.request(context.context_id, c_get_rq(message_id, get_class), encoded,
                                        message_id=message_id)
        counts = SubOperations()
        finished = False
        try:
            async for message in responses:
                if self.counted(counts, self.response(message, C_GET_RSP, "C-GET", context), "C-GET", progress):
                    finished = True
                    break
            return counts
        except PacskitError:
            finished = True
            raise
        finally:
            await responses.aclose()
            if not finished:
                if cancellation is not None:
                    cancellation.cancel()
                if association.is_established:
                    cancel_quietly(association, context.context_id, message_id)
                    await settle(association, message_id, lambda response: outcome_of(
                        response.us(STATUS) or 0) is not Outcome.PENDING)


@asynccontextmanager
async def get_session(settings: Settings, node: Node, model: str,
                      on_instance: InstanceHandler) -> AsyncIterator[AsyncGetSession]:
    """An association for C-GET with pacskit as Storage SCP, as
    :func:`pacskit.net.retrieve.get_session`."""
    contexts, roles = get_proposal(model)
    async with associate(settings, node, contexts, roles=roles) as assoc:
        check_get_contexts(assoc, node, model)
        yield AsyncGetSession(assoc, node, model, "get", on_instance)
