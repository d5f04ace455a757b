"""DICOMweb for :class:`~pacskit.aio.AsyncClient`, on the event loop (no thread): QIDO-RS
finds, WADO-RS (or WADO-URI) retrieves and STOW-RS stores on
:class:`~pacskit.web.aio_client.AsyncDicomWebClient`, with what the blocking
:class:`~pacskit.client.Client` decides for them: its settings (timeouts, TLS, search
bound), its privacy policy, its sinks and :class:`~pacskit.retrieve.Receiver`, its store
filters and tally, and the retries of :mod:`pacskit.retry` (waits ``asyncio.sleep``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom import Dataset

from pacskit import retry
from pacskit.aio_forward import ForwardReceiver, ForwardSink
from pacskit.cancellation import Cancellation
from pacskit.client import Client
from pacskit.file_source import FileSource
from pacskit.level_queries import LevelQuery
from pacskit.models import AnswerCheck, RetrieveResult, StoreResult
from pacskit.net.aio_limits import within
from pacskit.nodes import Node
from pacskit.query import Query
from pacskit.retrieve import InstanceSink, ProgressCallback, Receiver
from pacskit.retrieve_plan import (
    Plan,
    level_search,
    wado_rs_resources,
    wado_uri_instances,
    web_fetch_level,
    wholes_of,
)
from pacskit.send import StoreProgressCallback, Tally

if TYPE_CHECKING:
    from pacskit.deid import Deidentifier
    from pacskit.web.aio_client import AsyncDicomWebClient
    from pacskit.web.client import WebNode


async def search(client: Client, web: WebNode, query: Query, check: AnswerCheck) -> AsyncGenerator[Dataset, None]:
    """The matches of ``query`` at ``web`` by QIDO-RS, checked into ``check``, names
    withheld as the settings say (:meth:`Client.iter_find`)."""
    async with web_client(client, web) as http, \
            aclosing(http.checked_search(query, check)) as found:
        async for match in found:
            yield match


async def get(client: Client, node: Node | str, web: WebNode, query: Query | LevelQuery, output: Path | str | None, *,
              layout: str, overwrite: bool, progress: ProgressCallback | None, stop: Cancellation,
              wado_uri: bool, retries: int | None, retry_backoff: float | None,
              timeout: float | None, deidentify: bool = False, deid_options: Iterable[str] = ()) -> RetrieveResult:
    """A retrieve from ``web`` by WADO-RS (WADO-URI with ``wado_uri``) as
    :meth:`Client.get` does it, into the folder ``output`` or memory, de-identified as
    ``deidentify``/``deid_options`` and the node's settings say (PS3.15 Annex E);
    ``progress`` is called on the loop. A timeout or a cancellation sets ``stop`` as it is
    raised: nothing is kept after it, and a part being read is dropped with its spool."""
    general = query.to_query() if isinstance(query, LevelQuery) else query
    deidentifier = client.deidentifier_for(node, deidentify, deid_options)
    sink = client.folder_sink(output, layout, overwrite, deidentifier)

    async def attempt() -> RetrieveResult:
        async with web_client(client, web) as http:
            return await retrieve(client, http, general, sink, progress, stop, wado_uri=wado_uri,
                                  transform=deidentifier)

    try:
        return await within(retry.call_async(attempt, client.policy(retries, retry_backoff), "retrieve"), timeout)
    except BaseException:
        stop.cancel()
        raise


async def retrieve(client: Client, http: AsyncDicomWebClient, query: Query, sink: InstanceSink | None,
                   progress: ProgressCallback | None, stop: Cancellation, *, wado_uri: bool = False,
                   transform: Deidentifier | None = None, forward: ForwardSink | None = None) -> RetrieveResult:
    """One retrieve of what ``query`` matches, planned as the blocking client plans it
    (:func:`_plan`), into ``sink`` (memory when None) or, with ``forward``, each instance
    sent on to it as it arrives (:class:`pacskit.aio_forward.ForwardReceiver`)."""
    started = time.monotonic()
    plan = await _plan(http, query, wado_uri)
    receiver = await fetch(client, http, plan, sink, progress, stop, wado_uri=wado_uri, transform=transform,
                           forward=forward)
    receiver.result.check = plan.check
    receiver.result.seconds = time.monotonic() - started
    return receiver.result


async def fetch(client: Client, http: AsyncDicomWebClient, plan: Plan, sink: InstanceSink | None,
                progress: ProgressCallback | None, stop: Cancellation | None, *, wado_uri: bool,
                transform: Deidentifier | None, forward: ForwardSink | None) -> Receiver:
    """Fetch ``plan`` by WADO-RS (WADO-URI with ``wado_uri``), as
    :meth:`pacskit.transfer.WebSource.fetch` does; the receiver that took it."""
    receiver: Receiver
    if forward is None:
        receiver = client.wado_receiver(sink, progress, stop, wado_uri=wado_uri, transform=transform)
    else:
        receiver = ForwardReceiver(RetrieveResult(method="wado-uri" if wado_uri else "wado-rs"), forward,
                                   client.privacy, progress, None, stop, asyncio.current_task())
    receiver.expect(plan.expected)
    if wado_uri:
        await http.retrieve_instances(wado_uri_instances(plan), receiver)
    else:
        await http.retrieve_resources(wado_rs_resources(plan), receiver)
    return receiver


async def _plan(http: AsyncDicomWebClient, query: Query, wado_uri: bool) -> Plan:
    """The plan of the blocking client's DICOMweb source (:func:`pacskit.transfer.plan_at_level`),
    its QIDO-RS search on the loop: each match whole at the level WADO-RS (or WADO-URI)
    fetches it at."""
    search = level_search(query, web_fetch_level(query.level, wado_uri))
    check = AnswerCheck(level=search.level)
    async with aclosing(http.checked_search(search, check)) as found:
        matches = [match async for match in found]
    return Plan(wholes=wholes_of(search, matches), model=query.model, check=check)


async def store(client: Client, web: WebNode, paths: Iterable[Path | str], *, patient_id: str | None,
                study_uid: str | None, series_uid: str | None, parallel: int,
                progress: StoreProgressCallback | None, timeout: float | None) -> StoreResult:
    """STOW-RS the DICOM files under ``paths`` to ``web`` as :meth:`Client.store` does
    (the same filters, batches and tally), ``parallel`` requests at a time; not retried."""
    async def send() -> StoreResult:
        source = FileSource(paths, patient_id=patient_id, study_uid=study_uid, series_uid=series_uid)
        result = StoreResult(not_dicom=source.not_dicom, filtered_out=source.filtered_out)
        async with web_client(client, web, parallel) as http:
            await http.store(source.files, Tally(result, len(source.files), progress), parallel=parallel)
        result.seconds = time.monotonic() - source.started
        return result

    return await within(send(), timeout)


def web_client(client: Client, web: WebNode, connections: int = 1) -> AsyncDicomWebClient:
    """An async DICOMweb client of ``web`` with the settings of ``client`` (:meth:`Client.web_options`)."""
    from pacskit.web.aio_client import AsyncDicomWebClient  # httpx only for the nodes that need it

    return AsyncDicomWebClient(web, client.privacy, **client.web_options(web, connections))
