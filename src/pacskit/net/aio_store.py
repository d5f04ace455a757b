"""Storage service, SCU side, on asyncio (PS3.4 Annex B): :func:`pacskit.net.store.send_files`
on :mod:`pacskit.net.aio_association`. The same contexts (:func:`~pacskit.net.store.contexts_for`,
in the same batches), the files sent as they are on disk (their dataset bytes streamed
from the file, never decoded) or converted when the peer refuses their syntax, the same
new association when one is lost mid-store and the same outcome per file
(:class:`~pacskit.net.store.StoreRun`, :class:`~pacskit.net.store.FileSender`).

A cancellation or a timeout aborts the association in use (there is no C-CANCEL for a
C-STORE, PS3.7 9.3.1): the file in flight then has no outcome.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from pacskit.errors import AssociationAborted, NetworkError, NetworkTimeout, ServiceNotSupported
from pacskit.net.aio_association import AsyncAssociation, associate
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.net.store import (
    FileSender,
    OutcomeHandler,
    SendOutcome,
    StoreRun,
    contexts_for,
    conversion_timeout,
    storage_targets,
)
from pacskit.nodes import Node
from pacskit.scan import DicomFile, HeldInstance
from pacskit.settings import Settings


class AsyncFileSender(FileSender):
    """:class:`~pacskit.net.store.FileSender` on the event loop."""

    association: AsyncAssociation  # type: ignore[assignment]

    async def send(self, item: DicomFile | HeldInstance) -> SendOutcome:  # type: ignore[override]
        """C-STORE one file (or instance held in memory) and wait for its response.

        Raises:
            AssociationAborted, NetworkTimeout: the association is lost.
        """
        with self.prepared(item) as request:
            if isinstance(request, SendOutcome):
                return request
            responses = self.association.request(request.context_id, request.command, request.data,
                                                 message_id=request.message_id)
            try:
                response = await anext(responses)
            finally:
                await responses.aclose()
        return self.outcome(item, response, request.converted)


class AsyncStoreRun(StoreRun):
    """:class:`~pacskit.net.store.StoreRun` on the event loop, its associations within
    :attr:`connections`."""

    def __init__(self, settings: Settings, node: Node, on_outcome: OutcomeHandler,
                 connections: ConnectionLimit | None = None) -> None:
        super().__init__(settings, node, on_outcome)
        self.connections = connections

    async def send(self, batch: list[DicomFile], *, last_try: bool) -> None:  # type: ignore[override]
        """As :meth:`pacskit.net.store.StoreRun.send`."""
        pending = deque(batch)
        while pending:
            opened = False
            try:
                async with associate(self.settings, self.node, contexts_for(batch),
                                     connections=self.connections) as assoc:
                    self.check_accepted(assoc)
                    opened = True
                    sender = AsyncFileSender(assoc, storage_targets(assoc),  # type: ignore[arg-type]
                                             conversion_timeout=conversion_timeout(self.settings))
                    while pending:
                        self.report(await sender.send(pending[0]))
                        pending.popleft()
            except (AssociationAborted, NetworkTimeout) as exc:
                if not opened:
                    raise
                self.lost_with(exc, pending, last_try)


async def send_files(settings: Settings, node: Node, files: Sequence[DicomFile], on_outcome: OutcomeHandler,
                     connections: ConnectionLimit | None = None) -> None:
    """C-STORE ``files`` to ``node`` (within ``connections``), as
    :func:`pacskit.net.store.send_files`.

    Raises:
        NetworkError, ServiceNotSupported: as :func:`pacskit.net.store.send_files`.
    """
    run = AsyncStoreRun(settings, node, on_outcome, connections)
    sendable = run.sendable_files(files)
    try:
        for batch, last_try in run.rounds(sendable):
            await run.send(batch, last_try=last_try)
    except (NetworkError, ServiceNotSupported) as exc:
        run.fail([f for f in sendable if f not in run.reported], str(exc))
        raise
    run.check_answered()
