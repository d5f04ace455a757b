"""The asynchronous client: the calls of :class:`~pacskit.client.Client`, awaited.

C-ECHO, C-FIND (the worklist's too), C-GET, C-MOVE to a third party or to ourselves (received
by a Storage SCP on the loop, :mod:`pacskit.net.aio_acceptor`), a get forwarded to a DIMSE
node or a DICOMweb server (:mod:`pacskit.aio_forward`), a copy from a DIMSE node or a
DICOMweb server (:mod:`pacskit.aio_copy`) and C-STORE with a DIMSE node run on the
event loop itself, on the asyncio driver of the association
(:mod:`pacskit.net.aio_association`): no thread, and a timeout or a cancellation stops
the exchange where it is (C-CANCEL, then A-ABORT if the peer does not stop within
:data:`~pacskit.net.aio_association.CANCEL_GRACE` seconds; a store's associations are
aborted). With a DICOMweb node, finds, retrieves, forwards and stores run on the loop too, on
``httpx.AsyncClient`` (:mod:`pacskit.aio_web`): a timeout or a cancellation stops the
request where it is. The other calls, and those with the archive or a folder, still do
their work in a worker thread per call (``asyncio.to_thread``): a timeout or a
cancellation stops the awaiting task at once; the worker of a find stops at its next
answer; that of a retrieve writes nothing more and refuses what still arrives, but waits
for the peer's final response; that of a move or a store runs to its end.

On every call: ``timeout=`` (:func:`asyncio.timeout`, in the calling task; retries and
their waits included), retries whose waits are ``asyncio.sleep``, progress callbacks run on the
event loop, and ``async for`` over find results as they arrive.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from pacskit import (
    aio_copy,
    aio_finder,
    aio_forward,
    aio_get,
    aio_move,
    aio_store,
    aio_web,
    aio_worklist,
    retry,
)
from pacskit.async_answers import LoopAnswers, ThreadAnswers
from pacskit.call_options import (
    AsyncFindOptions,
    AsyncRetrieveOptions,
    AsyncRetryOptions,
    RetrieveMethod,
    WorklistFilters,
)
from pacskit.cancellation import Cancellation
from pacskit.client import Client, instances_query, series_query, study_query
from pacskit.errors import UsageError
from pacskit.layout import DEFAULT_LAYOUT
from pacskit.level_queries import InstanceQuery, LevelQuery, PatientQuery, SeriesQuery, StudyQuery
from pacskit.models import (
    AnswerCheck,
    Answers,
    EchoResult,
    Matches,
    MoveResult,
    RetrieveResult,
    StoreResult,
)
from pacskit.net import aio_echo, aio_find
from pacskit.net.aio_limits import ConnectionLimit, within
from pacskit.nodes import Node
from pacskit.query import Query
from pacskit.results import InstanceResult, LevelResult, PatientResult, SeriesResult, StudyResult
from pacskit.retrieve import MoveProgressCallback, ProgressCallback
from pacskit.send import StoreProgressCallback
from pacskit.settings import Settings
from pacskit.sources import is_local_source
from pacskit.worklist.query import WorklistQuery, worklist_request

if TYPE_CHECKING:
    from pydicom import Dataset
    from typing_extensions import Unpack

    from pacskit.deid.profile import Deidentifier
    from pacskit.transfer import CopyResult

T = TypeVar("T")
R = TypeVar("R", bound=LevelResult)


class AsyncClient:
    """Async twin of :class:`~pacskit.client.Client`: same arguments, same exceptions,
    and ``timeout=`` (seconds, for the whole call) on each.

    >>> client = AsyncClient(max_connections=8)
    >>> studies = await client.find_studies("pacs", StudyQuery(patient_id="12345"), timeout=30)

    Every association it opens with a DIMSE node (PS3.8 Section 9) takes one of
    ``max_connections`` slots for that node's address (host and port) from before its TCP
    connection opens until it is closed; a call finding them all taken waits its turn,
    first come, first served, that wait counted in its ``timeout``. The slots are this
    client's own: another ``AsyncClient`` has its own. ``max_connections`` defaults to
    the ``client_max_connections`` setting (16).

    Attributes:
        connections: the slots (:class:`~pacskit.net.aio_limits.ConnectionLimit`): its
            ``limit``, and how many are ``held`` and ``waiting`` for a node.
    """

    def __init__(self, settings: Settings | None = None, *, config_file: Path | str | None = None,
                 max_connections: int | None = None):
        self.sync = Client(settings, config_file=config_file)
        self.connections = ConnectionLimit(self.settings.client_max_connections if max_connections is None
                                           else max_connections)

    @property
    def settings(self) -> Settings:
        """The settings in force."""
        return self.sync.settings

    async def _call(self, work: Callable[[], T], what: str, options: AsyncRetryOptions) -> T:
        """``work()`` in a worker thread, retried here, within the timeout."""
        policy = self.sync.policy(options.get("retries"), options.get("retry_backoff"))

        def attempt() -> Awaitable[T]:
            return asyncio.to_thread(work)

        return await within(retry.call_async(attempt, policy, what), options.get("timeout"))

    async def echo(self, node: Node | str, **options: Unpack[AsyncRetryOptions]) -> EchoResult:
        """See :meth:`Client.echo`; on the event loop, no thread."""
        target = self.sync.node(node)
        policy = self.sync.policy(options.get("retries"), options.get("retry_backoff"))
        status, associate_s, rtt_s = await within(
            retry.call_async(lambda: aio_echo.c_echo(self.settings, target, self.connections), policy, "C-ECHO"),
            options.get("timeout"))
        return EchoResult(node=target, status=status, associate_ms=associate_s * 1e3, rtt_ms=rtt_s * 1e3)

    def iter_find(self, node: Node | str, query: Query, *, timeout: float | None = None,
                  retries: int | None = None, retry_backoff: float | None = None,
                  deidentify: bool = False,
                  deid_options: Iterable[str] = ()) -> LoopAnswers[Dataset] | ThreadAnswers[Dataset]:
        """``async for`` over the matches of :meth:`Client.iter_find`, each as it arrives.

        >>> async with client.iter_find("pacs", query, timeout=30) as matches:
        ...     async for match in matches:
        ...         print(match.StudyInstanceUID)

        ``timeout`` bounds the whole iteration. Leaving the loop early without
        ``async with`` (or ``aclose()``) still stops the search, once the iterator is
        collected. With a DIMSE node the C-FIND runs on the event loop (no thread), with a
        DICOMweb node the QIDO-RS search; :meth:`matches` gives its ``check`` too.
        """
        if not self._finds_on_loop(node):
            return ThreadAnswers(lambda: self.sync.iter_find(node, query, retries=retries, retry_backoff=retry_backoff,
                                                             deidentify=deidentify, deid_options=deid_options),
                                 timeout)
        return LoopAnswers(lambda: self.matches(node, query, retries=retries, retry_backoff=retry_backoff,
                                                deidentify=deidentify, deid_options=deid_options)[0], timeout)

    def matches(self, node: Node | str, query: Query, *, retries: int | None = None,
                retry_backoff: float | None = None, deidentify: bool = False,
                deid_options: Iterable[str] = ()) -> tuple[AsyncIterator[Dataset], AnswerCheck]:
        """The matches of a C-FIND of ``query`` on the DIMSE node ``node`` (or a QIDO-RS
        search of a DICOMweb node), on the event loop, and the check they fill
        (:meth:`Client.iter_find`: the same query, checks, privacy, de-identification, and
        retries until the first answer)."""
        web = self.sync.web_node(node)
        target = self.sync.node(node) if web is None else None
        query, check, policy, deidentifier = self.sync.find_plan(
            node, query, {"retries": retries, "retry_backoff": retry_backoff, "deidentify": deidentify,
                          "deid_options": deid_options})

        def search() -> AsyncIterator[Dataset]:
            if web is not None:
                return aio_web.search(self.sync, web, query, check)
            return self._dimse_search(target, query, check)  # type: ignore[arg-type]

        return self._retried_search(search, check, policy, deidentifier), check

    def _finds_on_loop(self, node: Node | str) -> bool:
        """Whether a find of ``node`` runs on the event loop: DIMSE or DICOMweb."""
        return self.sync.is_dimse(node) or self.sync.web_node(node) is not None

    async def _retried_search(self, search: Callable[[], AsyncIterator[Dataset]], check: AnswerCheck,
                              policy: retry.RetryPolicy, deidentifier: Deidentifier | None) -> AsyncIterator[Dataset]:
        delays = policy.delays()
        while True:
            matches = search()
            try:
                first = await anext(matches)
            except StopAsyncIteration:
                return
            except Exception as exc:
                delay = retry.next_delay(exc, delays, "C-FIND") if check.answers == 0 else None
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                continue
            try:
                yield first if deidentifier is None else deidentifier(first, record=False)
                async for match in matches:
                    yield match if deidentifier is None else deidentifier(match, record=False)
            finally:
                await _closed(matches)
            return

    async def _dimse_search(self, node: Node, query: Query, check: AnswerCheck) -> AsyncIterator[Dataset]:
        privacy = self.sync.privacy
        async with aio_find.find_session(self.settings, node, query.model.value, self.connections) as session:
            found = aio_finder.checked_matches(session, query, privacy, check)
            try:
                async for match in found:
                    yield privacy.scrub_response(match)
            finally:
                await _closed(found)

    async def _all(self, node: Node | str, query: Query, timeout: float | None, options: AsyncRetryOptions,
                   **find: object) -> Matches:
        matches, check = self.matches(node, query, retries=options.get("retries"),
                                      retry_backoff=options.get("retry_backoff"), **find)  # type: ignore[arg-type]

        async def collect() -> list[Dataset]:
            try:
                return [match async for match in matches]
            finally:
                await _closed(matches)

        return Matches(Answers(iter(await within(collect(), timeout)), check))

    def iter_results(self, node: Node | str, query: LevelQuery, *, timeout: float | None = None,
                     retries: int | None = None,
                     retry_backoff: float | None = None) -> LoopAnswers[LevelResult] | ThreadAnswers[LevelResult]:
        """``async for`` over the typed results of a typed query, each as it arrives
        (see :meth:`iter_find`).

        >>> async for study in client.iter_results("pacs", StudyQuery(patient_id="12345")):
        ...     print(study.study_date)
        """
        if not self._finds_on_loop(node):
            return ThreadAnswers(lambda: self.sync.iter_results(node, query, retries=retries,
                                                                retry_backoff=retry_backoff), timeout)
        result, privacy = query.result, self.sync.privacy

        async def typed() -> AsyncIterator[LevelResult]:
            matches = self.matches(node, query.to_query(), retries=retries, retry_backoff=retry_backoff)[0]
            try:
                async for match in matches:
                    yield result.from_dataset(match, privacy)
            finally:
                await _closed(matches)

        return LoopAnswers(typed, timeout)

    async def find(self, node: Node | str, query: Query, **options: Unpack[AsyncFindOptions]) -> Matches:
        """See :meth:`Client.find`."""
        if not self._finds_on_loop(node):
            return await self._call(lambda: self.sync.find(node, query, retries=0, deidentify=options.get(
                "deidentify", False), deid_options=options.get("deid_options", ())), "C-FIND", options)
        return await self._all(node, query, options.get("timeout"), options,
                               deidentify=options.get("deidentify", False),
                               deid_options=options.get("deid_options", ()))

    async def _typed(self, kind: type[R], node: Node | str, query: LevelQuery,
                     options: AsyncRetryOptions) -> list[R]:
        if not self._finds_on_loop(node):
            found = await self._call(lambda: list(self.sync.iter_results(node, query, retries=0)), "C-FIND",
                                     options)
        else:
            matches = await self._all(node, query.to_query(), options.get("timeout"), options)
            found = [query.result.from_dataset(match, self.sync.privacy) for match in matches]
        return cast(list[R], found)

    async def find_patients(self, node: Node | str, query: PatientQuery | None = None,
                            **options: Unpack[AsyncRetryOptions]) -> list[PatientResult]:
        """See :meth:`Client.find_patients`."""
        return await self._typed(PatientResult, node, query or PatientQuery(), options)

    async def find_studies(self, node: Node | str, query: StudyQuery | None = None,
                           **options: Unpack[AsyncRetryOptions]) -> list[StudyResult]:
        """See :meth:`Client.find_studies`."""
        return await self._typed(StudyResult, node, query or StudyQuery(), options)

    async def find_series(self, node: Node | str, query: SeriesQuery | None = None,
                          **options: Unpack[AsyncRetryOptions]) -> list[SeriesResult]:
        """See :meth:`Client.find_series`."""
        return await self._typed(SeriesResult, node, query or SeriesQuery(), options)

    async def find_instances(self, node: Node | str, query: InstanceQuery | None = None,
                             **options: Unpack[AsyncRetryOptions]) -> list[InstanceResult]:
        """See :meth:`Client.find_instances`."""
        return await self._typed(InstanceResult, node, query or InstanceQuery(), options)

    def iter_worklist(self, node: Node | str, query: WorklistQuery | None = None, *,
                      timeout: float | None = None, **filters: Unpack[WorklistFilters]) -> LoopAnswers[Dataset]:
        """``async for`` over ``node``'s Modality Worklist items (PS3.4 K.4.1.2), each as
        it arrives, on the event loop (see :meth:`Client.iter_worklist` for ``query`` and
        ``filters``). Leaving early (``break`` inside ``async with``) sends C-CANCEL.

        Raises:
            QueryError: at once, an invalid key or value (or a name asked for).
        """
        identifier, limit = worklist_request(query, filters, self.sync.privacy)
        target = self.sync.node(node)
        return LoopAnswers(lambda: aio_worklist.items(self.settings, target, identifier, limit, self.sync.privacy,
                                                      self.connections), timeout)

    async def worklist(self, node: Node | str, query: WorklistQuery | None = None, *,
                       timeout: float | None = None, **filters: Unpack[WorklistFilters]) -> list[Dataset]:
        """See :meth:`Client.worklist`; on the event loop, no thread (:mod:`pacskit.aio_worklist`)."""
        return await within(aio_worklist.worklist(self.sync, node, query, filters, self.connections), timeout)

    async def get(
        self,
        node: Node | str,
        query: Query | LevelQuery,
        output: Path | str | None = None,
        *,
        layout: str = DEFAULT_LAYOUT,
        overwrite: bool = False,
        method: RetrieveMethod = "get",
        progress: ProgressCallback | None = None,
        wado_uri: bool = False,
        retries: int | None = None,
        retry_backoff: float | None = None,
        cancellation: Cancellation | None = None,
        timeout: float | None = None,
        deidentify: bool = False,
        deid_options: Iterable[str] = (),
        forward_to: str | None = None,
    ) -> RetrieveResult:
        """See :meth:`Client.get`. ``progress`` is called on the event loop. On a
        timeout or a cancellation of the awaiting task, nothing more is written or kept
        once :class:`TimeoutError` or :class:`asyncio.CancelledError` is raised (what still
        arrives is refused); in a worker thread (below) the worker goes on until the
        peer's final response. With a DIMSE node the retrieve runs on the event loop,
        whatever ``method`` (a C-MOVE to ourselves received by a Storage SCP on the loop,
        PS3.4 C.4.2.3), de-identified there with ``deidentify``/``deid_options``; from a
        DICOMweb node too (:func:`pacskit.aio_web.get`, WADO-RS or WADO-URI), de-identified
        there as well. ``forward_to`` a DIMSE node or a DICOMweb server, from a DIMSE
        node or a DICOMweb node, runs on the loop (:mod:`pacskit.aio_forward`): each
        instance C-STOREd on one kept association as it arrives, or held in a scratch
        folder and sent by STOW-RS (PS3.18 10.5) in batches of 50, the source's
        C-STORE-RSP (or the reading of the WADO-RS answer) waiting for it; a server's
        refusals come back per instance, with its reason, in ``local_failures``; nothing
        is forwarded once a cancellation or a timeout is raised (the batch held is not
        sent, the scratch folder is removed). ``forward_to`` the archive or a folder, and
        a retrieve from the archive or a folder, still run in a worker thread."""
        stop = cancellation or Cancellation()
        web = self.sync.web_node(node)
        if forward_to is not None and self._forwards_on_loop(node, forward_to):
            if method not in ("get", "move", "auto"):
                raise ValueError(f"method must be get, move or auto, not {method!r}")
            if output is not None:
                raise UsageError("forward_to and output are two storage modes: give one")
            return await self._native_forward(node, query, forward_to, method=method, progress=progress,
                                              stop=stop, retries=retries, retry_backoff=retry_backoff,
                                              timeout=timeout,
                                              deidentifier=self.sync.deidentifier_for(node, deidentify,
                                                                                      deid_options))
        if web is not None and forward_to is None:
            return await aio_web.get(self.sync, node, web, query, output, layout=layout, overwrite=overwrite,
                                     progress=progress, stop=stop, wado_uri=wado_uri, retries=retries,
                                     retry_backoff=retry_backoff, timeout=timeout, deidentify=deidentify,
                                     deid_options=deid_options)
        if self.sync.is_dimse(node) and forward_to is None:
            if method not in ("get", "move", "auto"):
                raise ValueError(f"method must be get, move or auto, not {method!r}")
            return await self._native_get(node, query, output, layout=layout, overwrite=overwrite,
                                          progress=progress, stop=stop, retries=retries,
                                          retry_backoff=retry_backoff, timeout=timeout,
                                          deidentifier=self.sync.deidentifier_for(node, deidentify, deid_options),
                                          method=method)
        on_loop = _on_loop(progress)

        def work() -> RetrieveResult:
            return self.sync.get(node, query, output, layout=layout, overwrite=overwrite, method=method,
                                 progress=on_loop, wado_uri=wado_uri, retries=0, cancellation=stop,
                                 deidentify=deidentify, deid_options=deid_options, forward_to=forward_to)

        try:
            return await self._call(work, "retrieve", {"retries": retries, "retry_backoff": retry_backoff,
                                                       "timeout": timeout})
        except BaseException:
            stop.cancel()
            raise

    async def _native_get(self, node: Node | str, query: Query | LevelQuery, output: Path | str | None, *,
                          layout: str, overwrite: bool, progress: ProgressCallback | None, stop: Cancellation,
                          retries: int | None, retry_backoff: float | None, timeout: float | None,
                          deidentifier: Deidentifier | None, method: RetrieveMethod = "get") -> RetrieveResult:
        """A C-GET on the event loop — the peer's C-STORE sub-operations served on the same
        association, written as they arrive — or a C-MOVE to ourselves, received by a
        Storage SCP on the loop (:func:`pacskit.net.aio_acceptor.storage_scp`). A timeout
        or a cancellation sets ``stop`` before C-CANCEL, so nothing is written after it."""
        target = self.sync.node(node)
        general = query.to_query() if isinstance(query, LevelQuery) else query
        sink = self.sync.folder_sink(output, layout, overwrite, deidentifier)
        policy = self.sync.policy(retries, retry_backoff)

        def attempt() -> Awaitable[RetrieveResult]:
            return aio_get.retrieve(self.settings, target, general, sink=sink, privacy=self.sync.privacy,
                                    progress=progress, cancellation=stop, transform=deidentifier, method=method,
                                    connections=self.connections)

        try:
            async with asyncio.timeout(timeout):
                return await retry.call_async(attempt, policy, "retrieve")
        except BaseException:
            stop.cancel()
            raise

    def _forwards_on_loop(self, node: Node | str, forward_to: str) -> bool:
        """Whether a forward from ``node`` to ``forward_to`` runs on the event loop: each
        a DIMSE node or a DICOMweb server."""
        return all(self.sync.is_dimse(end) or self.sync.web_node(end) is not None for end in (node, forward_to))

    def forward_sink(self, destination: Node | str,
                     deidentifier: Deidentifier | None = None) -> aio_forward.ForwardSink:
        """The sink on the loop of a DIMSE node (C-STORE, within :attr:`connections`) or a
        DICOMweb server (STOW-RS), de-identifying with ``deidentifier`` first."""
        from pacskit.sinks import deid_filter

        filters = [] if deidentifier is None else [deid_filter(deidentifier)]
        web = self.sync.web_node(destination)
        if web is not None:
            return aio_forward.AsyncWebSink(aio_web.web_client(self.sync, web), filters)
        return aio_forward.AsyncDimseSink(self.settings, self.sync.node(destination), self.connections, filters)

    async def _native_forward(self, node: Node | str, query: Query | LevelQuery, forward_to: str, *,
                              method: RetrieveMethod, progress: ProgressCallback | None, stop: Cancellation,
                              retries: int | None, retry_backoff: float | None, timeout: float | None,
                              deidentifier: Deidentifier | None) -> RetrieveResult:
        """The forward storage mode on the event loop (:mod:`pacskit.aio_forward`): the
        retrieve of :meth:`_native_get` (or of :func:`pacskit.aio_web.retrieve` from a
        DICOMweb node), each instance sent on to ``forward_to`` — by C-STORE over one kept
        association (within :attr:`connections`), or by STOW-RS in batches — de-identified
        first with ``deidentifier``, as :meth:`Client.get` with ``forward_to`` does."""
        from pacskit.endpoints import refuse_same
        from pacskit.retrieve import add_late_failures

        refuse_same(self.sync, node, forward_to)
        web = self.sync.web_node(node)
        general = query.to_query() if isinstance(query, LevelQuery) else query
        general.to_identifier(self.sync.privacy)
        policy = self.sync.policy(retries, retry_backoff)
        sink = self.forward_sink(forward_to, deidentifier)

        async def attempt() -> RetrieveResult:
            if web is not None:
                async with aio_web.web_client(self.sync, web) as http:
                    return await aio_web.retrieve(self.sync, http, general, None, progress, stop, forward=sink)
            return await aio_get.retrieve(self.settings, self.sync.node(node), general, sink=None,
                                          privacy=self.sync.privacy, progress=progress, cancellation=stop,
                                          method=method, connections=self.connections, forward=sink)

        try:
            async with asyncio.timeout(timeout):
                result = await retry.call_async(attempt, policy, "retrieve")
        except BaseException:
            stop.cancel()
            await sink.close(abort=True)
            raise
        add_late_failures(result, await sink.close(abort=stop.cancelled))
        return result

    async def copy(self, source: Node | str | Path, query: Query | LevelQuery,
                   destination: Node | str | Path | None = None, *, layout: str = DEFAULT_LAYOUT,
                   overwrite: bool = False, method: RetrieveMethod = "get", dry_run: bool = False,
                   progress: ProgressCallback | None = None, cancellation: Cancellation | None = None,
                   retries: int | None = None, retry_backoff: float | None = None,
                   timeout: float | None = None, wado_uri: bool = False, deidentify: bool = False,
                   deid_options: Iterable[str] = ()) -> CopyResult:
        """See :meth:`Client.copy`. From a DIMSE node or a DICOMweb server into memory, a
        folder, a DIMSE node or a DICOMweb server the copy runs on the event loop
        (:mod:`pacskit.aio_copy`: its searches, the destination asked what it holds, the
        C-GET, C-MOVE to ourselves, WADO-RS or WADO-URI, and the C-STOREs or STOW-RS
        requests to a node), ``progress`` called there; a timeout or a cancellation sends
        nothing more once it is raised (a STOW-RS batch not sent yet is dropped). From the
        archive or a folder, or into the archive, it runs in a worker thread
        (:meth:`Client.copy`, ``progress`` handed to the loop): on a timeout or a
        cancellation nothing more is copied once it is raised, though the worker finishes
        the instance in hand."""
        stop = cancellation or Cancellation()
        if aio_copy.runs_on_loop(self, source, destination):
            general = query.to_query() if isinstance(query, LevelQuery) else query
            deidentifier = self.sync.deidentifier_for(str(source) if isinstance(source, Path) else source,
                                                      deidentify, deid_options)
            return await aio_copy.copy(self, source, general, destination,  # type: ignore[arg-type]
                                       layout=layout, overwrite=overwrite, method=method, dry_run=dry_run,
                                       progress=progress, stop=stop, retries=retries, retry_backoff=retry_backoff,
                                       timeout=timeout, wado_uri=wado_uri, deidentifier=deidentifier)
        on_loop = _on_loop(progress)

        def work() -> CopyResult:
            return self.sync.copy(source, query, destination, layout=layout, overwrite=overwrite, method=method,
                                  dry_run=dry_run, progress=on_loop, cancellation=stop, retries=0,
                                  wado_uri=wado_uri, deidentify=deidentify, deid_options=deid_options)

        try:
            return await self._call(work, "copy", {"retries": retries, "retry_backoff": retry_backoff,
                                                   "timeout": timeout})
        except BaseException:
            stop.cancel()
            raise

    async def source_matches(self, node: Node | str, query: Query) -> list[Dataset]:
        """:meth:`Client.source_search` on the event loop: the matches of ``query`` as
        ``node`` (DIMSE or DICOMweb) holds them, checked, names withheld, never
        de-identified, retried as the settings say."""
        query.to_identifier(self.sync.privacy)
        check = AnswerCheck(level=query.level)
        web = self.sync.web_node(node)

        def search() -> AsyncIterator[Dataset]:
            if web is not None:
                return aio_web.search(self.sync, web, query, check)
            return self._dimse_search(self.sync.node(node), query, check)

        matches = self._retried_search(search, check, self.sync.policy(), None)
        try:
            return [match async for match in matches]
        finally:
            await _closed(matches)

    async def get_study(self, node: Node | str, study_uid: str, output: Path | str | None = None,
                        **options: Unpack[AsyncRetrieveOptions]) -> RetrieveResult:
        """See :meth:`Client.get_study`."""
        return await self.get(node, study_query(study_uid), output, **options)

    async def get_series(self, node: Node | str, study_uid: str, series_uid: str,
                         output: Path | str | None = None,
                         **options: Unpack[AsyncRetrieveOptions]) -> RetrieveResult:
        """See :meth:`Client.get_series`."""
        return await self.get(node, series_query(study_uid, series_uid), output, **options)

    async def get_instances(self, node: Node | str, study_uid: str, series_uid: str,
                            sop_instance_uids: list[str], output: Path | str | None = None,
                            **options: Unpack[AsyncRetrieveOptions]) -> RetrieveResult:
        """See :meth:`Client.get_instances`."""
        return await self.get(node, instances_query(study_uid, series_uid, sop_instance_uids), output,
                              **options)

    async def store(self, paths: Iterable[Path | str], node: Node | str, *,
                    patient_id: str | None = None, study_uid: str | None = None,
                    series_uid: str | None = None, parallel: int = 1,
                    progress: StoreProgressCallback | None = None,
                    timeout: float | None = None) -> StoreResult:
        """See :meth:`Client.store` (not retried: a file may have been stored).
        ``progress`` is called on the event loop. With a DIMSE node the C-STOREs run on
        the event loop (no thread; ``parallel`` associations as tasks); a timeout or a
        cancellation aborts the associations in use. To a DICOMweb node the STOW-RS
        requests run on it (:func:`pacskit.aio_web.store`)."""
        web = self.sync.web_node(node)
        if web is not None:
            return await aio_web.store(self.sync, web, paths, patient_id=patient_id, study_uid=study_uid,
                                       series_uid=series_uid, parallel=parallel, progress=progress,
                                       timeout=timeout)
        return await within(aio_store.store(
            self.settings, self.sync.node(node), paths, patient_id=patient_id, study_uid=study_uid,
            series_uid=series_uid, parallel=parallel, progress=progress, connections=self.connections), timeout)

    async def move(self, node: Node | str, query: Query | LevelQuery, destination: str,
                   progress: MoveProgressCallback | None = None, **options: Unpack[AsyncRetryOptions]) -> MoveResult:
        """See :meth:`Client.move`. With a DIMSE node the C-MOVE runs on the event loop
        (no thread, ``progress`` called at each pending response); a timeout or a
        cancellation sends C-CANCEL, and aborts a peer that goes on. From the archive or
        a folder, the files are sent in a worker thread."""
        if isinstance(node, str) and is_local_source(node):
            return await self._call(lambda: self.sync.move(node, query, destination, progress=_on_loop(progress),
                                                           retries=0), "C-MOVE", options)
        target = self.sync.node(node)
        general = query.to_query() if isinstance(query, LevelQuery) else query
        policy = self.sync.policy(options.get("retries"), options.get("retry_backoff"))

        def attempt() -> Awaitable[MoveResult]:
            return aio_move.move(self.settings, target, general, destination, self.sync.privacy, progress,
                                 self.connections)

        return await within(retry.call_async(attempt, policy, "C-MOVE"), options.get("timeout"))

    async def move_study(self, node: Node | str, study_uid: str, destination: str,
                         **options: Unpack[AsyncRetryOptions]) -> MoveResult:
        """See :meth:`Client.move_study`."""
        return await self.move(node, study_query(study_uid), destination, **options)

    async def move_series(self, node: Node | str, study_uid: str, series_uid: str, destination: str,
                          **options: Unpack[AsyncRetryOptions]) -> MoveResult:
        """See :meth:`Client.move_series`."""
        return await self.move(node, series_query(study_uid, series_uid), destination, **options)


P = TypeVar("P")


async def _closed(iterator: AsyncIterator[object]) -> None:
    """Close an async iterator that can be closed (an async generator: its ``finally``
    blocks run now, not when it is collected)."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def _on_loop(callback: Callable[[P], None] | None) -> Callable[[P], None] | None:
    """``callback`` made to run on the running event loop, whichever thread calls it."""
    if callback is None:
        return None
    loop = asyncio.get_running_loop()

    def hand(event: P) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback, event)

    return hand
