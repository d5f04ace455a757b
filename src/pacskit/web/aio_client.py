"""The DICOMweb client on asyncio (PS3.18): QIDO-RS search, WADO-RS retrieve and STOW-RS
store on ``httpx.AsyncClient``, on the event loop itself, no thread.

The requests and the reading of their answers are those of the blocking client
(:mod:`pacskit.web.exchange`); a WADO-RS answer is read as it arrives by the same
multipart parser (:func:`pacskit.web.multipart.aiter_parts`: bounded memory, a large part
spooled to a temporary file), each instance handed to the receiver on the loop and
awaited there (``take_async``: a forward sends it on before the answer is read further,
:mod:`pacskit.aio_forward`). A cancellation of the awaiting task (or a timeout) stops a
request where it is: nothing is handed to the receiver after it, and a part being read
is dropped with its spool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import httpx
from pydicom import Dataset

from pacskit.answers import AnswerChecker
from pacskit.errors import PacskitError
from pacskit.models import AnswerCheck, RetrieveResult
from pacskit.query import Query
from pacskit.scan import DicomFile
from pacskit.web import exchange
from pacskit.web.client import WebClientBase, WebNode  # noqa: F401 - WebNode in the example
from pacskit.web.exchange import DICOM, MAX_STOW_RESPONSE, qido_request
from pacskit.web.multipart import MultipartError, aiter_parts, file_chunks, write_parts


class AsyncDicomWebClient(WebClientBase):
    """One DICOMweb service on the event loop, for a series of requests on kept-alive
    connections; the async twin of :class:`pacskit.web.client.DicomWebClient`, with the
    same arguments (:class:`~pacskit.web.client.WebClientBase`).

    >>> async with AsyncDicomWebClient(WebNode.parse(url), privacy) as client:
    ...     async for match in client.checked_search(query, check):
    ...         print(match.StudyInstanceUID)
    """

    def open(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)

    async def aclose(self) -> None:
        """Close the connections."""
        await self.http.aclose()

    async def __aenter__(self) -> AsyncDicomWebClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def checked_search(self, query: Query, check: AnswerCheck) -> AsyncGenerator[Dataset, None]:
        """The matches of ``query`` by QIDO-RS (PS3.18 10.6), as
        :meth:`DicomWebClient.checked_search <pacskit.web.client.DicomWebClient.checked_search>`:
        names withheld by the policy removed, every answer checked against the query, the
        outcome counted in ``check``.

        Raises:
            QueryError: the query matches on a withheld name.
            NetworkError, HttpFailure: the request failed.
        """
        resource, params = qido_request(query, self.privacy)
        for match in self.kept(query, await self._checked(query, await self._search(resource, params), check)):
            yield match

    async def _checked(self, query: Query, answers: list[Dataset], check: AnswerCheck) -> list[Dataset]:
        checker = AnswerChecker(exchange.checked_query(query, check), check)
        kept = []
        for answer in answers:
            modalities = await self._series_modalities(answer) if checker.needs_series(answer) else None
            if checker.keep(answer, modalities):
                kept.append(answer)
        return kept

    async def _series_modalities(self, study: Dataset) -> list[str] | None:
        search = exchange.series_search(study)
        return None if search is None else exchange.modalities_of(await self._search(*search))

    async def _search(self, resource: str, params: dict[str, str]) -> list[Dataset]:
        found: list[Dataset] = []
        budget = self.max_search_answer
        while True:
            page, more, size = await self._search_page(exchange.search_target(resource, params, len(found)), budget)
            found += page
            budget -= size
            if exchange.search_done(params, page, more, len(found)):
                return found

    async def _search_page(self, target: str, budget: int) -> tuple[list[Dataset], bool, int]:
        async with self._request("GET", target, headers=exchange.SEARCH_HEADERS) as response:
            if response.status_code == 204:
                return [], False, 0
            await _check(response, "QIDO-RS")
            more = exchange.has_more(response)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > budget:
                    raise exchange.search_too_big(self.node.label, self.max_search_answer)
        return exchange.page_matches(body, self.node.label), more, len(body)

    async def retrieve_resources(self, resources: list[tuple[str, int | None]], receiver: Any) -> None:
        """Retrieve by WADO-RS (PS3.18 10.4) the study, series or instance resources given,
        each with the number of instances it should bring, into ``receiver`` (a
        :class:`pacskit.retrieve.Receiver`), as :meth:`DicomWebClient.retrieve_resources
        <pacskit.web.client.DicomWebClient.retrieve_resources>`: what
        :func:`pacskit.retrieve_plan.wado_rs_resources` made of a plan.

        Raises:
            NetworkError, HttpFailure: a request failed.
        """
        result: RetrieveResult = receiver.result
        for resource, count in resources:
            if receiver.cancellation is not None and receiver.cancellation.cancelled:
                return
            result.requests += 1
            self.count_request(result, count, await self._retrieve_one(exchange.quoted_resource(resource), receiver))

    async def retrieve_instances(self, instances: list[tuple[str, str, str]], receiver: Any) -> None:
        """Retrieve by WADO-URI (PS3.18 9), at ``/wado`` on the same host, each instance
        given as (study, series, SOP Instance UID), into ``receiver``; one the server does
        not have (404) is counted failed.

        Raises:
            NetworkError, HttpFailure: a request failed.
        """
        result: RetrieveResult = receiver.result
        for instance in instances:
            if receiver.cancellation is not None and receiver.cancellation.cancelled:
                return
            result.requests += 1
            async with self._request("GET", exchange.wado_uri_target(self.node.origin, instance),
                                     headers={"Accept": DICOM}) as response:
                if response.status_code == 404:
                    result.failed += 1
                    result.failed_instances.append(instance[2])
                    continue
                await _check(response, "WADO-URI")
                if await receiver.take_async(await response.aread()):
                    result.completed += 1

    async def _retrieve_one(self, resource: str, receiver: Any) -> int:
        received = 0
        async with self._request("GET", resource, headers=exchange.RETRIEVE_HEADERS) as response:
            if response.status_code in (204, 404):
                return 0
            await _check(response, "WADO-RS")
            boundary = exchange.retrieve_boundary(response, self.node.label)
            try:
                async with aclosing(aiter_parts(response.aiter_bytes(), boundary)) as parts:
                    async for headers, body in parts:
                        if exchange.is_instance(headers):
                            await receiver.take_async(body)
                            received += 1
            except MultipartError as exc:
                raise exchange.malformed_retrieve(self.node.label, received, exc) from None
        return received

    async def store(self, files: list[DicomFile], tally: Any, *, parallel: int = 1) -> None:
        """STOW-RS the ``files`` (PS3.18 10.5) in the batches of the blocking client,
        ``parallel`` requests at a time on the loop; each file's outcome goes to
        ``tally``.

        Raises:
            NetworkError, HttpFailure: every request failed the same way.
        """
        batches = list(exchange.stow_batches(files))
        errors: list[PacskitError] = []
        slots = asyncio.Semaphore(max(1, parallel))

        async def send(batch: list[DicomFile]) -> None:
            async with slots:
                try:
                    await self._store_batch(batch, tally)
                except PacskitError as exc:
                    errors.append(exc)
                    exchange.fail_all(batch, tally, str(exc))

        await asyncio.gather(*(send(batch) for batch in batches))
        failure = exchange.store_failure(errors, len(batches))
        if failure is not None:
            raise failure

    async def _store_batch(self, batch: list[DicomFile], tally: Any) -> None:
        boundary = exchange.stow_boundary()
        body = _chunks(write_parts(((DICOM, file_chunks(f.path)) for f in batch), boundary))
        async with self._request("POST", "studies", content=body,
                                 headers=exchange.stow_headers(boundary)) as response:
            answer = bytearray()
            async for chunk in response.aiter_bytes():
                answer += chunk
                if len(answer) > MAX_STOW_RESPONSE:
                    raise exchange.stow_answer_too_big(self.node.label, response.status_code)
        exchange.stow_outcome(batch, tally, bytes(answer), response, self.node.label)

    @asynccontextmanager
    async def _request(self, method: str, resource: str, **options: Any) -> AsyncIterator[httpx.Response]:
        try:
            async with self.http.stream(method, resource, **options) as response:
                exchange.refuse_denied(response, self.node.label)
                yield response
        except httpx.TransportError as exc:
            raise exchange.transport_failure(exc, self.node.label) from None


async def _chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A request body read from local files, as ``httpx.AsyncClient`` takes it."""
    for chunk in chunks:
        yield chunk


async def _check(response: httpx.Response, service: str) -> None:
    if response.status_code < 300:
        return
    try:
        head = await response.aread()
    except httpx.HTTPError:
        head = b""
    raise exchange.http_failure(response, service, head)
