"""A copy on asyncio: :meth:`pacskit.AsyncClient.copy` from a DIMSE node or a DICOMweb
server into memory, a folder, a DIMSE node or a DICOMweb server, on the event loop (no
thread).

The plan is :mod:`pacskit.transfer`'s (:func:`pacskit.transfer.planning`: the query's
matches, each expanded into its instances by an IMAGE-level search, or kept whole when
the destination holds nothing of it), its searches by C-FIND (:mod:`pacskit.aio_finder`)
or QIDO-RS (:mod:`pacskit.aio_web`) on the loop; the destination is asked what it already
holds (a folder by its files, a node by an IMAGE-level C-FIND or QIDO-RS per series,
:func:`pacskit.sinks.presence`), and only the rest is fetched, by C-GET or C-MOVE to
ourselves (:func:`pacskit.aio_get.retrieve_requests`) or WADO-RS / WADO-URI
(:func:`pacskit.aio_web.fetch`): into the folder as it arrives, or sent on to the node
(:mod:`pacskit.aio_forward`). The result is :func:`pacskit.transfer.outline` and
:func:`~pacskit.transfer.settle`'s, as the blocking copy's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom import Dataset

from pacskit import aio_forward, aio_get, aio_web, retry
from pacskit.cancellation import Cancellation
from pacskit.endpoints import holdings_query, open_sink, place, refuse_same
from pacskit.errors import ServiceNotSupported, UsageError
from pacskit.models import InstanceFailure, RetrieveResult
from pacskit.nodes import Node
from pacskit.query import Level, Query
from pacskit.retrieve import ProgressCallback
from pacskit.retrieve_plan import Plan, answered_async, dimse_requests
from pacskit.sinks import FolderDestination, cannot_ask, presence
from pacskit.transfer import (
    CopyResult,
    DimseSource,
    PlanStep,
    add_failures,
    outline,
    planning,
    settle,
    web_whole_levels,
)

if TYPE_CHECKING:
    from pacskit.aio import AsyncClient
    from pacskit.deid import Deidentifier

Search = Callable[[Query], Awaitable[list[Dataset]]]
AsyncFinder = Callable[[dict[str, str], "int | None"], Awaitable[list[str]]]
"""As :data:`pacskit.sinks.Finder`, awaited."""


def runs_on_loop(client: AsyncClient, source: Node | str | Path, destination: Node | str | Path | None) -> bool:
    """Whether a copy from ``source`` to ``destination`` runs here: from a DIMSE node or
    a DICOMweb server, into memory, a folder, a DIMSE node or a DICOMweb server."""
    ends = [place(client.sync, source, as_source=True)[0]]
    if destination is not None:
        ends.append(place(client.sync, destination, as_source=False)[0])
    return ends[0] in ("dimse", "web") and all(end != "archive" for end in ends)


async def plan(search: Search, query: Query, whole_levels: frozenset[Level],
               holds_any: Callable[[dict[str, str]], Awaitable[bool]] | None) -> Plan:
    """:func:`pacskit.transfer.plan` on the loop, its searches and questions awaited."""
    async def answer(step: PlanStep) -> Any:
        kind, asked = step
        return await search(asked) if kind == "search" else await holds_any(asked)  # type: ignore[misc]

    return await answered_async(planning(query, whole_levels, holds_any is not None), answer)


class Destination:
    """Where a copy on the loop puts instances: a folder (``folder``, written as they
    arrive) or a node (``forward``: C-STORE or STOW-RS), asked what it holds by ``find``."""

    def __init__(self, label: str, folder: FolderDestination | None = None,
                 forward: aio_forward.ForwardSink | None = None, find: AsyncFinder | None = None) -> None:
        self.label = label
        self.folder = folder
        self.forward = forward
        self.find = find

    async def holds_any(self, match: dict[str, str]) -> bool:
        """Whether it may hold an instance under ``match`` (see :meth:`pacskit.sinks.Sink.holds_any`)."""
        if self.folder is not None:
            return self.folder.holds_any(match)
        found = await self._held(match, 1)
        return found is None or bool(found)

    async def present(self, instances: Sequence[tuple[str, str, str]]) -> set[str]:
        """Which of ``instances`` it holds (see :meth:`pacskit.sinks.Sink.present`)."""
        if self.folder is not None:
            return self.folder.present(instances)
        return await answered_async(presence(instances), lambda match: self._held(match, None))

    async def _held(self, match: dict[str, str], limit: int | None) -> list[str] | None:
        if self.find is None:
            return None
        try:
            return await self.find(match, limit)
        except ServiceNotSupported as exc:
            cannot_ask(exc)
            self.find = None
            return None

    async def close(self, *, abort: bool = False) -> list[InstanceFailure]:
        """What the node refused after taking it (a STOW-RS batch); ``abort``: send nothing more."""
        if self.forward is not None:
            return await self.forward.close(abort=abort)
        return []


def destination_of(client: AsyncClient, name: Node | str | Path, layout: str, overwrite: bool,
                   deidentifier: Deidentifier | None) -> Destination:
    """The destination ``name`` names, as :func:`pacskit.endpoints.open_sink` opens it."""
    if place(client.sync, name, as_source=False)[0] == "folder":
        folder = open_sink(client.sync, name, layout=layout, overwrite=overwrite, deidentifier=deidentifier)
        assert isinstance(folder, FolderDestination)
        return Destination(folder.label, folder=folder)
    node = name if isinstance(name, Node) else str(name)
    forward = client.forward_sink(node, deidentifier)

    async def find(match: dict[str, str], limit: int | None) -> list[str]:
        return [str(m.get("SOPInstanceUID", "") or "") for m in await client.source_matches(node, holdings_query(
            match, limit))]

    return Destination(forward.label, forward=forward, find=find)


async def copy(client: AsyncClient, source: Node | str, query: Query, destination: Node | str | Path | None, *,
               layout: str, overwrite: bool, method: str, dry_run: bool, progress: ProgressCallback | None,
               stop: Cancellation, retries: int | None, retry_backoff: float | None, timeout: float | None,
               wado_uri: bool, deidentifier: Deidentifier | None) -> CopyResult:
    """:meth:`pacskit.Client.copy` on the loop (see the module), within ``timeout``: a
    timeout or a cancellation sets ``stop`` and sends nothing more (a STOW-RS batch
    not sent yet is dropped).

    Raises:
        UsageError: the same place twice, a bad layout, or ``wado_uri`` from a source
            that is not a DICOMweb server.
        QueryError, NetworkError, DimseError, OutputError: as the step that fails.
    """
    sync = client.sync
    query.to_identifier(sync.privacy)
    if destination is not None:
        refuse_same(sync, source, destination)
    web = sync.web_node(source) if isinstance(source, str) else None
    if wado_uri and web is None:
        raise UsageError(f"--wado-uri reads from a DICOMweb server; {source} is not one")
    target = sync.node(source) if web is None else None
    label = web.label if web is not None else target.label  # type: ignore[union-attr]
    whole_levels = web_whole_levels(wado_uri) if web is not None else DimseSource.whole_levels
    into = None if destination is None else destination_of(client, destination, layout, overwrite, deidentifier)

    async def fetch(fetching: Plan) -> RetrieveResult:
        folder = None if into is None else into.folder
        forward = None if into is None else into.forward
        if web is not None:
            async with aio_web.web_client(sync, web) as http:
                receiver = await aio_web.fetch(sync, http, fetching, folder, progress, stop, wado_uri=wado_uri,
                                               transform=deidentifier, forward=forward)
            return receiver.result
        if folder is not None:
            folder.prepare()
        return await aio_get.retrieve_requests(
            client.settings, target, Query(level=Level.SERIES, model=fetching.model),  # type: ignore[arg-type]
            dimse_requests(fetching), method=method, sink=folder, privacy=sync.privacy, progress=progress,
            cancellation=stop, transform=deidentifier, connections=client.connections, forward=forward)

    async def attempt() -> CopyResult:
        started = time.monotonic()
        planned = await plan(lambda q: client.source_matches(source, q), query, whole_levels,
                             None if dry_run or into is None else into.holds_any)
        held = await into.present(planned.instances) if planned.instances and into is not None else set()
        result, fetching = outline(label, 0, "memory" if into is None else into.label, query, planned, held, dry_run)
        if fetching is not None:
            settle(result, await fetch(fetching), stop)
        result.seconds = time.monotonic() - started
        return result

    try:
        async with asyncio.timeout(timeout):
            result = await retry.call_async(attempt, sync.policy(retries, retry_backoff), "copy")
    except BaseException:
        stop.cancel()
        if into is not None:
            await into.close(abort=True)
        raise
    add_failures(result, [] if into is None else await into.close(abort=stop.cancelled))
    return result
