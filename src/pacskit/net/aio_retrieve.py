"""Query/Retrieve GET and MOVE, SCU side, on asyncio (PS3.4 C.4.2, C.4.3):
:class:`pacskit.net.retrieve.RetrieveSession` on :mod:`pacskit.net.aio_association`, the
same proposals (SCP role selection for C-GET), the same requests, the same handling of a
C-GET's C-STORE sub-operations (handed to ``on_instance``) and the same reading of the
responses.

A C-GET or C-MOVE stopped by a cancellation or a timeout first sets its
:class:`~pacskit.cancellation.Cancellation` (for a C-GET: every instance still arriving
is refused, nothing more is written), sends C-CANCEL (PS3.7 9.3.3.3, 9.3.4.3) and waits
at most :data:`~pacskit.net.aio_association.CANCEL_GRACE` seconds for the final
response; a peer that goes on is aborted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydicom import Dataset
from pynetdicom.presentation import PresentationContext

from pacskit.cancellation import Cancellation
from pacskit.errors import PacskitError
from pacskit.net.aio_association import AsyncAssociation, associate
from pacskit.net.aio_find import cancel_quietly, settle
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.net.commands import STATUS
from pacskit.net.retrieve import (
    AsyncInstanceHandler,
    InstanceHandler,
    ProgressHandler,
    ReceivedInstance,
    RetrieveExchange,
    SubOperations,
    check_get_contexts,
    check_move_contexts,
    get_proposal,
    move_contexts,
)
from pacskit.net.status import Outcome, outcome_of
from pacskit.net.ul.negotiation import AcceptedContext
from pacskit.net.wire import Message
from pacskit.nodes import Node
from pacskit.settings import Settings


class AsyncRetrieveSession(RetrieveExchange[AsyncAssociation]):
    """One C-GET or C-MOVE association on the event loop; a C-GET's sub-operations
    served as they come: handed to ``on_instance``, or with ``on_received`` awaited on
    it, the C-STORE-RSP sent once it has returned (nothing more is read from the peer
    meanwhile). Sub-operations that still arrive while a C-CANCEL settles go to
    ``on_instance`` (which then refuses them)."""

    on_received: AsyncInstanceHandler | None = None

    async def answer(self, association: AsyncAssociation, context: AcceptedContext, message: Message) -> None:
        """As :meth:`~pacskit.net.retrieve.RetrieveExchange.handle`, ``on_received`` awaited."""
        received = self.on_received
        if received is None:
            self.handle(association, context, message)
            return
        status = self.early_status(context, message, True)
        if status is None:
            assert isinstance(message.sink, ReceivedInstance)
            try:
                status = await message.sink.status_async(received)
            finally:
                message.sink.discard()
        self.answer_store(association, message, status)

    @property
    def local_address(self) -> str:
        """Our IP address on this association (as the peer sees it), or ""."""
        sockname = self.association.stream.get_extra_info("sockname")
        return str(sockname[0]) if sockname else ""

    async def c_get(self, identifier: Dataset, progress: ProgressHandler | None = None,
                    cancellation: Cancellation | None = None) -> SubOperations:
        """Send one C-GET and wait for its final response, storing what comes back; as
        :meth:`pacskit.net.retrieve.RetrieveSession.c_get`."""
        return await self._exchange(identifier, None, progress, cancellation)

    async def c_move(self, identifier: Dataset, destination: str,
                     progress: ProgressHandler | None = None,
                     cancellation: Cancellation | None = None) -> SubOperations:
        """Send one C-MOVE to ``destination`` and wait for its final response; as
        :meth:`pacskit.net.retrieve.RetrieveSession.c_move`."""
        return await self._exchange(identifier, destination, progress, cancellation)

    async def _exchange(self, identifier: Dataset, destination: str | None, progress: ProgressHandler | None,
                        cancellation: Cancellation | None) -> SubOperations:
        kind = self.retrieve_request(destination)
        context, encoded = self.prepared(identifier, kind.sop_class, kind.service)
        association = self.association
        message_id = association.next_message_id()
        responses = association.request(context.context_id, kind.command(message_id), encoded,
                                        message_id=message_id)
        counts = SubOperations()
        finished = False
        try:
            async for message in responses:
                response = self.response(message, kind.response_field, kind.service, context)
                if self.counted(counts, response, kind.service, progress):
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
async def get_session(settings: Settings, node: Node, model: str, on_instance: InstanceHandler,
                      storage: list[PresentationContext] | None = None,
                      connections: ConnectionLimit | None = None,
                      on_received: AsyncInstanceHandler | None = None) -> AsyncIterator[AsyncRetrieveSession]:
    """An association for C-GET with pacskit as Storage SCP (on the ``storage``
    contexts; within ``connections``), as :func:`pacskit.net.retrieve.get_session`;
    with ``on_received``, each instance is awaited on it (see :class:`AsyncRetrieveSession`)."""
    contexts, roles = get_proposal(model, storage)
    async with associate(settings, node, contexts, roles=roles, connections=connections) as assoc:
        check_get_contexts(assoc, node, model)
        session = AsyncRetrieveSession(assoc, node, model, "get", on_instance)
        session.on_received = on_received
        yield session


@asynccontextmanager
async def move_session(settings: Settings, node: Node, model: str,
                       connections: ConnectionLimit | None = None) -> AsyncIterator[AsyncRetrieveSession]:
    """An association for C-MOVE requests (within ``connections``), as
    :func:`pacskit.net.retrieve.move_session`."""
    async with associate(settings, node, move_contexts(model), connections=connections) as assoc:
        check_move_contexts(assoc, node, model)
        yield AsyncRetrieveSession(assoc, node, model, "move")
