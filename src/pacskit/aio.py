"""The asynchronous client: the calls of :class:`~pacskit.client.Client`, awaited.

For now the sync core does the DIMSE and DICOMweb work in a worker thread per call
(``asyncio.to_thread``); this layer adds what belongs to asyncio: ``timeout=`` on every
call (:func:`asyncio.wait_for`, retries and their waits included), retries whose waits
are ``asyncio.sleep``, progress callbacks run on the event loop, and ``async for`` over
find results as they arrive (:mod:`pacskit.async_answers`).

A timeout or a cancellation stops the awaiting task at once. The worker thread of a
find stops at its next answer; that of a retrieve writes nothing more and refuses what
still arrives, but waits for the peer's final response; that of a move or a store runs
to its end, as no driver on asyncio streams can stop it yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pacskit import retry
from pacskit.async_answers import ThreadAnswers
from pacskit.call_options import (
    AsyncRetrieveOptions,
    AsyncRetryOptions,
    RetrieveMethod,
    WorklistFilters,
)
from pacskit.cancellation import Cancellation
from pacskit.client import Client, instances_query, series_query, study_query
from pacskit.layout import DEFAULT_LAYOUT
from pacskit.level_queries import InstanceQuery, LevelQuery, PatientQuery, SeriesQuery, StudyQuery
from pacskit.models import EchoResult, Matches, MoveResult, RetrieveResult, StoreResult
from pacskit.nodes import Node
from pacskit.query import Query
from pacskit.results import InstanceResult, LevelResult, PatientResult, SeriesResult, StudyResult
from pacskit.retrieve import ProgressCallback
from pacskit.send import StoreProgressCallback
from pacskit.settings import Settings
from pacskit.worklist.query import WorklistQuery

if TYPE_CHECKING:
    from pydicom import Dataset
    from typing_extensions import Unpack

    from pacskit.transfer import CopyResult

T = TypeVar("T")


class AsyncClient:
    """Async twin of :class:`~pacskit.client.Client`: same arguments, same exceptions,
    and ``timeout=`` (seconds, for the whole call) on each.

    >>> client = AsyncClient()
    >>> studies = await client.find_studies("pacs", StudyQuery(patient_id="12345"), timeout=30)
    """

    def __init__(self, settings: Settings | None = None, *, config_file: Path | str | None = None):
        self.sync = Client(settings, config_file=config_file)

    @property
    def settings(self) -> Settings:
        """The settings in force."""
        return self.sync.settings

    async def _call(self, work: Callable[[], T], what: str, options: AsyncRetryOptions) -> T:
        """``work()`` in a worker thread, retried here, within the timeout."""
        policy = self.sync.policy(options.get("retries"), options.get("retry_backoff"))

        def attempt() -> Awaitable[T]:
            return asyncio.to_thread(work)

        return await asyncio.wait_for(retry.call_async(attempt, policy, what), options.get("timeout"))

    async def echo(self, node: Node | str, **options: Unpack[AsyncRetryOptions]) -> EchoResult:
        """See :meth:`Client.echo`."""
        return await self._call(lambda: self.sync.echo(node, retries=0), "C-ECHO", options)

    def iter_find(self, node: Node | str, query: Query, *, timeout: float | None = None,
                  retries: int | None = None, retry_backoff: float | None = None) -> ThreadAnswers[Dataset]:
        """``async for`` over the matches of :meth:`Client.iter_find`, each as it arrives.

        >>> async with client.iter_find("pacs", query, timeout=30) as matches:
        ...     async for match in matches:
        ...         print(match.StudyInstanceUID)

        ``timeout`` bounds the whole iteration. Leaving the loop early without
        ``async with`` (or ``aclose()``) still stops the search, once the iterator is
        collected.
        """
        return ThreadAnswers(lambda: self.sync.iter_find(node, query, retries=retries,
                                                         retry_backoff=retry_backoff), timeout)

    def iter_results(self, node: Node | str, query: LevelQuery, *, timeout: float | None = None,
                     retries: int | None = None,
                     retry_backoff: float | None = None) -> ThreadAnswers[LevelResult]:
        """``async for`` over the typed results of a typed query, each as it arrives
        (see :meth:`iter_find`).

        >>> async for study in client.iter_results("pacs", StudyQuery(patient_id="12345")):
        ...     print(study.study_date)
        """
        return ThreadAnswers(lambda: self.sync.iter_results(node, query, retries=retries,
                                                            retry_backoff=retry_backoff), timeout)

    async def find(self, node: Node | str, query: Query, **options: Unpack[AsyncRetryOptions]) -> Matches:
        """See :meth:`Client.find`."""
        return await self._call(lambda: self.sync.find(node, query, retries=0), "C-FIND", options)

    async def find_patients(self, node: Node | str, query: PatientQuery | None = None,
                            **options: Unpack[AsyncRetryOptions]) -> list[PatientResult]:
        """See :meth:`Client.find_patients`."""
        return await self._call(lambda: self.sync.find_patients(node, query, retries=0), "C-FIND", options)

    async def find_studies(self, node: Node | str, query: StudyQuery | None = None,
                           **options: Unpack[AsyncRetryOptions]) -> list[StudyResult]:
        """See :meth:`Client.find_studies`."""
        return await self._call(lambda: self.sync.find_studies(node, query, retries=0), "C-FIND", options)

    async def find_series(self, node: Node | str, query: SeriesQuery | None = None,
                          **options: Unpack[AsyncRetryOptions]) -> list[SeriesResult]:
        """See :meth:`Client.find_series`."""
        return await self._call(lambda: self.sync.find_series(node, query, retries=0), "C-FIND", options)

    async def find_instances(self, node: Node | str, query: InstanceQuery | None = None,
                             **options: Unpack[AsyncRetryOptions]) -> list[InstanceResult]:
        """See :meth:`Client.find_instances`."""
        return await self._call(lambda: self.sync.find_instances(node, query, retries=0), "C-FIND", options)

    async def worklist(self, node: Node | str, query: WorklistQuery | None = None, *,
                       timeout: float | None = None, **filters: Unpack[WorklistFilters]) -> list[Dataset]:
        """See :meth:`Client.worklist`."""
        return await self._call(lambda: self.sync.worklist(node, query, **filters), "worklist C-FIND",
                                {"retries": 0, "timeout": timeout})

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
        forward_to: str | None = None,
    ) -> RetrieveResult:
        """See :meth:`Client.get`. ``progress`` is called on the event loop. On a
        timeout or a cancellation of the awaiting task, nothing more is written or kept
        once :class:`TimeoutError` or :class:`asyncio.CancelledError` is raised (what still
        arrives is refused), though the worker thread goes on until the peer's final
        response."""
        on_loop = _on_loop(progress)
        stop = cancellation or Cancellation()

        def work() -> RetrieveResult:
            return self.sync.get(node, query, output, layout=layout, overwrite=overwrite, method=method,
                                 progress=on_loop, wado_uri=wado_uri, retries=0, cancellation=stop,
                                 forward_to=forward_to)

        try:
            return await self._call(work, "retrieve", {"retries": retries, "retry_backoff": retry_backoff,
                                                       "timeout": timeout})
        except BaseException:
            stop.cancel()
            raise

    async def copy(self, source: Node | str | Path, query: Query | LevelQuery,
                   destination: Node | str | Path | None = None, *, layout: str = DEFAULT_LAYOUT,
                   overwrite: bool = False, method: RetrieveMethod = "get", dry_run: bool = False,
                   progress: ProgressCallback | None = None, cancellation: Cancellation | None = None,
                   retries: int | None = None, retry_backoff: float | None = None,
                   timeout: float | None = None) -> CopyResult:
        """See :meth:`Client.copy`. ``progress`` is called on the event loop; on a timeout
        or a cancellation of the awaiting task nothing more is copied once it is raised."""
        on_loop = _on_loop(progress)
        stop = cancellation or Cancellation()

        def work() -> CopyResult:
            return self.sync.copy(source, query, destination, layout=layout, overwrite=overwrite, method=method,
                                  dry_run=dry_run, progress=on_loop, cancellation=stop, retries=0)

        try:
            return await self._call(work, "copy", {"retries": retries, "retry_backoff": retry_backoff,
                                                   "timeout": timeout})
        except BaseException:
            stop.cancel()
            raise

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
        ``progress`` is called on the event loop."""
        on_loop = _on_loop(progress)

        def work() -> StoreResult:
            return self.sync.store(paths, node, patient_id=patient_id, study_uid=study_uid,
                                   series_uid=series_uid, parallel=parallel, progress=on_loop)

        return await self._call(work, "C-STORE", {"retries": 0, "timeout": timeout})

    async def move(self, node: Node | str, query: Query | LevelQuery, destination: str,
                   **options: Unpack[AsyncRetryOptions]) -> MoveResult:
        """See :meth:`Client.move`."""
        return await self._call(lambda: self.sync.move(node, query, destination, retries=0), "C-MOVE",
                                options)

    async def move_study(self, node: Node | str, study_uid: str, destination: str,
                         **options: Unpack[AsyncRetryOptions]) -> MoveResult:
        """See :meth:`Client.move_study`."""
        return await self.move(node, study_query(study_uid), destination, **options)

    async def move_series(self, node: Node | str, study_uid: str, series_uid: str, destination: str,
                          **options: Unpack[AsyncRetryOptions]) -> MoveResult:
        """See :meth:`Client.move_series`."""
        return await self.move(node, series_query(study_uid, series_uid), destination, **options)


P = TypeVar("P")


def _on_loop(callback: Callable[[P], None] | None) -> Callable[[P], None] | None:
    """``callback`` made to run on the running event loop, whichever thread calls it."""
    if callback is None:
        return None
    loop = asyncio.get_running_loop()

    def hand(event: P) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback, event)

    return hand
