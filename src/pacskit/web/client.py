"""The DICOMweb client (PS3.18): QIDO-RS search, WADO-RS retrieve and STOW-RS store over
HTTP, behind the same calls as C-FIND, C-GET and C-STORE.

A DICOMweb node is a base URL (``http://host:8042/dicom-web``), with optional HTTP basic
credentials (``http://user:password@host/...`` or the node's ``username``/``password``)
or a bearer token. Credentials never appear in messages or logs.
"""

from __future__ import annotations

import functools
import ssl
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydicom import Dataset

from pacskit.answers import AnswerChecker
from pacskit.errors import InvalidAddress, PacskitError
from pacskit.models import AnswerCheck, Answers, RetrieveResult
from pacskit.nodes import url_without_credentials
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Level, Query
from pacskit.scan import DicomFile
from pacskit.web import exchange
from pacskit.web.exchange import (  # noqa: F401 - the names this module has always had
    DICOM,
    DICOM_JSON,
    MAX_STOW_RESPONSE,
    RETRIEVE_ACCEPT,
    STOW_BATCH_BYTES,
    STOW_BATCH_FILES,
    qido_request,
)
from pacskit.web.exchange import query_string as _query_string  # noqa: F401
from pacskit.web.multipart import MultipartError, file_chunks, iter_parts, write_parts

MAX_SEARCH_ANSWER = 64 << 20


@dataclass(frozen=True)
class WebNode:
    """A DICOMweb service: its base URL (without credentials) and how to authenticate.

    Attributes:
        url: the service root, e.g. ``http://127.0.0.1:8042/dicom-web``.
        username, password: HTTP basic credentials, if any.
        token: a bearer token, if any.
        name: its name in the nodes table, if it has one.
    """

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    name: str | None = None

    @classmethod
    def parse(cls, url: str, *, name: str | None = None, username: str | None = None,
              password: str | None = None, token: str | None = None) -> WebNode:
        """A node from ``http(s)://[user:password@]host[:port]/path``.

        Raises:
            InvalidAddress: not an http(s) URL with a host.
        """
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise InvalidAddress(f"malformed DICOMweb URL: {exc}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise InvalidAddress(f"malformed DICOMweb URL {url_without_credentials(url)!r}: "
                                 "expected http(s)://host[:port]/path")
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc += f":{port}" if port else ""
        base = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
        return cls(base, username=parts.username or username, password=parts.password or password,
                   token=token, name=name)

    @property
    def label(self) -> str:
        """The name if it has one, else the URL."""
        return self.name or self.url

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of the URL."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def _auth(self) -> httpx.Auth | None:
        if self.token:
            return _Bearer(self.token)
        if self.username is not None:
            return httpx.BasicAuth(self.username, self.password or "")
        return None


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class WebClientBase:
    """What the blocking and the asynchronous DICOMweb clients share: the service, the
    privacy policy, the search bound, the HTTP client (:meth:`open`) and how matches and
    retrieve counts are kept.

    Args:
        node: the service.
        privacy: the patient-name policy (applied to requests and everything received).
        timeout: seconds without data before a request fails.
        connect_timeout: seconds to wait for the TCP connection.
        connections: the most connections kept open at once (parallel STOW-RS requests).
        max_search_answer: the most bytes of QIDO-RS answers one search reads, all its
            pages together (:mod:`pacskit.web.json_answer` bounds their nesting).
        verify: the TLS context of an ``https`` service (or whether to verify).
    """

    def __init__(self, node: WebNode, privacy: PrivacyPolicy, *, timeout: float = 120.0,
                 connect_timeout: float = 10.0, connections: int = 4,
                 max_search_answer: int = MAX_SEARCH_ANSWER, verify: ssl.SSLContext | bool = True) -> None:
        self.node = node
        self.privacy = privacy
        self.max_search_answer = max_search_answer
        self.http = self.open(**http_options(node, timeout, connect_timeout, connections, verify))

    def open(self, **options: Any) -> Any:
        """The HTTP client (``httpx.Client`` or ``httpx.AsyncClient``) made with ``options``."""
        raise NotImplementedError

    def kept(self, query: Query, checked: list[Dataset]) -> Iterator[Dataset]:
        """The matches of ``query`` as given: patients made of study answers for a
        patient-level query, names withheld by the policy removed."""
        found = exchange.patients_of(checked, query, self.privacy) if query.level is Level.PATIENT else checked
        return (self.privacy.scrub_response(match) for match in found)

    @staticmethod
    def count_request(result: RetrieveResult, expected: int | None, received: int) -> None:
        """Count one WADO-RS request that brought ``received`` of ``expected`` instances."""
        result.completed += received
        if expected is not None and received < expected:
            result.failed += expected - received


class DicomWebClient(WebClientBase):
    """One DICOMweb service, used for a series of requests on kept-alive connections
    (the arguments of :class:`WebClientBase`)."""

    def open(self, **options: Any) -> httpx.Client:
        return httpx.Client(**options)

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def __enter__(self) -> DicomWebClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(self, query: Query) -> Answers:
        """The matches of ``query`` by QIDO-RS (PS3.18 10.6), names withheld by the policy
        removed, every answer checked against the query as over DIMSE
        (:mod:`pacskit.answers`; a server ignores the parameters it does not support,
        PS3.18 8.3): the result's ``check`` says what was dropped or kept unverified.

        Raises:
            QueryError: the query matches on a withheld name.
            NetworkError, HttpFailure: the request failed.
        """
        check = AnswerCheck(level=query.level)
        return Answers(self.checked_search(query, check), check)

    def checked_search(self, query: Query, check: AnswerCheck) -> Iterator[Dataset]:
        """The matches of :meth:`search`, the outcome of the checks counted in ``check``
        (of study answers, for a patient-level query)."""
        resource, params = qido_request(query, self.privacy)
        yield from self.kept(query, self._checked(query, self._search(resource, params), check))

    def _checked(self, query: Query, answers: list[Dataset], check: AnswerCheck) -> list[Dataset]:
        """The ``answers`` of ``query`` that stay (:class:`AnswerChecker`); an empty
        ModalitiesInStudy is checked against the Modality of the study's series."""
        return list(AnswerChecker(exchange.checked_query(query, check), check).filter(answers,
                                                                                      self._series_modalities))

    def _series_modalities(self, study: Dataset) -> list[str] | None:
        search = exchange.series_search(study)
        return None if search is None else exchange.modalities_of(self._search(*search))

    def _search(self, resource: str, params: dict[str, str]) -> list[Dataset]:
        """Every match, page after page while the server says it has more (PS3.18
        8.3.4.1: a Warning that additional results can be requested)."""
        found: list[Dataset] = []
        budget = self.max_search_answer
        while True:
            page, more, size = self._search_page(exchange.search_target(resource, params, len(found)), budget)
            found += page
            budget -= size
            if exchange.search_done(params, page, more, len(found)):
                return found

    def _search_page(self, target: str, budget: int) -> tuple[list[Dataset], bool, int]:
        """One QIDO-RS response: its matches, whether the server has more, its size."""
        with self._request("GET", target, headers=exchange.SEARCH_HEADERS) as response:
            if response.status_code == 204:
                return [], False, 0
            _check(response, "QIDO-RS")
            more = exchange.has_more(response)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > budget:
                    raise exchange.search_too_big(self.node.label, self.max_search_answer)
        return exchange.page_matches(body, self.node.label), more, len(body)

    def retrieve_resources(self, resources: list[tuple[str, int | None]], receiver: Any) -> None:
        """Retrieve by WADO-RS (PS3.18 10.4) the study, series or instance resources
        given (``studies/{uid}/series/{uid}[/instances/{uid}]``), each with the number of
        instances it should bring, into ``receiver``: what a copy planned itself
        (:mod:`pacskit.transfer`).

        Raises:
            NetworkError, HttpFailure: a request failed.
        """
        result: RetrieveResult = receiver.result
        for resource, count in resources:
            if receiver.cancellation is not None and receiver.cancellation.cancelled:
                return
            result.requests += 1
            self.count_request(result, count, self._retrieve_one(exchange.quoted_resource(resource), receiver))

    def retrieve_instances(self, instances: list[tuple[str, str, str]], receiver: Any) -> None:
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
            with self._request("GET", exchange.wado_uri_target(self.node.origin, instance),
                               headers={"Accept": DICOM}) as response:
                if response.status_code == 404:
                    result.failed += 1
                    result.failed_instances.append(instance[2])
                    continue
                _check(response, "WADO-URI")
                if receiver.take(response.read()):
                    result.completed += 1

    def _retrieve_one(self, resource: str, receiver: Any) -> int:
        received = 0
        with self._request("GET", resource, headers=exchange.RETRIEVE_HEADERS) as response:
            if response.status_code in (204, 404):
                return 0
            _check(response, "WADO-RS")
            boundary = exchange.retrieve_boundary(response, self.node.label)
            try:
                for headers, body in iter_parts(ResponseBody(response), boundary):
                    received += take_part(receiver, headers, body)
            except MultipartError as exc:
                raise exchange.malformed_retrieve(self.node.label, received, exc) from None
        return received

    def store(self, files: list[DicomFile], tally: Any, *, parallel: int = 1) -> None:
        """STOW-RS the ``files`` (PS3.18 10.5), in requests of up to
        :data:`STOW_BATCH_FILES` files, ``parallel`` requests at a time; each file's outcome
        goes to ``tally`` (a callable taking a :class:`~pacskit.net.store.SendOutcome`).

        Raises:
            NetworkError, HttpFailure: every request failed the same way.
        """
        batches = list(exchange.stow_batches(files))
        errors: list[PacskitError] = []
        lock = threading.Lock()

        def send(batch: list[DicomFile]) -> None:
            try:
                self._store_batch(batch, tally)
            except PacskitError as exc:
                with lock:
                    errors.append(exc)
                exchange.fail_all(batch, tally, str(exc))

        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(batches))),
                                thread_name_prefix="pacskit-stow") as pool:
            list(pool.map(send, batches))
        failure = exchange.store_failure(errors, len(batches))
        if failure is not None:
            raise failure

    def _store_batch(self, batch: list[DicomFile], tally: Any) -> None:
        """One Store Instances request; each file's outcome from the answer, whatever its
        HTTP status (:func:`exchange.stow_outcome`).

        Raises:
            HttpFailure: the answer is an error, or not a Store Instances Response.
        """
        boundary = exchange.stow_boundary()
        body = write_parts(((DICOM, file_chunks(f.path)) for f in batch), boundary)
        with self._request("POST", "studies", content=body, headers=exchange.stow_headers(boundary)) as response:
            answer = self._read_answer(response)
        exchange.stow_outcome(batch, tally, answer, response, self.node.label)

    def _read_answer(self, response: httpx.Response) -> bytes:
        answer = bytearray()
        for chunk in response.iter_bytes():
            answer += chunk
            if len(answer) > MAX_STOW_RESPONSE:
                raise exchange.stow_answer_too_big(self.node.label, response.status_code)
        return bytes(answer)

    @contextmanager
    def _request(self, method: str, resource: str, **options: Any) -> Iterator[httpx.Response]:
        try:
            with self.http.stream(method, resource, **options) as response:
                exchange.refuse_denied(response, self.node.label)
                yield response
        except httpx.TransportError as exc:
            raise exchange.transport_failure(exc, self.node.label) from None


def take_part(receiver: Any, headers: dict[str, str], body: bytes | Any) -> int:
    """Hand a WADO-RS part to ``receiver`` if it is an instance; 1 if it was one."""
    if not exchange.is_instance(headers):
        return 0
    receiver.take(body)
    return 1


def http_options(node: WebNode, timeout: float, connect_timeout: float, connections: int,
                 verify: ssl.SSLContext | bool) -> dict[str, Any]:
    """The keyword arguments of ``httpx.Client`` and ``httpx.AsyncClient`` for ``node``:
    its root, its credentials, no redirects, the TLS context, the timeouts and how many
    connections are kept. A plain ``http`` service gets a TLS context that is never used
    (no redirect is followed) rather than httpx's default, which loads the CA bundle
    again for every client."""
    if verify is True and node.url.startswith("http:"):
        verify = _never_used_context()
    return {"base_url": node.url + "/", "auth": node._auth(), "follow_redirects": False, "verify": verify,
            "timeout": httpx.Timeout(timeout, connect=connect_timeout),
            "limits": httpx.Limits(max_connections=connections, max_keepalive_connections=connections)}


class ResponseBody:
    """An HTTP response body as a file-like object read once, front to back."""

    def __init__(self, response: httpx.Response) -> None:
        self.chunks = response.iter_bytes()
        self.pending = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.pending) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.pending += chunk
        data, self.pending = (self.pending, b"") if size < 0 else (self.pending[:size], self.pending[size:])
        return data


def _check(response: httpx.Response, service: str) -> None:
    if response.status_code < 300:
        return
    try:
        head = response.read()
    except httpx.HTTPError:
        head = b""
    raise exchange.http_failure(response, service, head)


@functools.cache
def _never_used_context() -> ssl.SSLContext:
    """A client context that trusts nothing (no CA loaded): what an ``http`` service's
    client holds instead of loading the CA bundle."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
