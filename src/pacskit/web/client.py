"""The DICOMweb client (PS3.18): QIDO-RS search, WADO-RS retrieve and STOW-RS store over
HTTP, behind the same calls as C-FIND, C-GET and C-STORE.

A DICOMweb node is a base URL (``http://host:8042/dicom-web``), with optional HTTP basic
credentials (``http://user:password@host/...`` or the node's ``username``/``password``)
or a bearer token. Credentials never appear in messages or logs.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydicom import Dataset

from pacskit.answers import AnswerChecker, values_of
from pacskit.errors import (
    AccessDenied,
    AssociationAborted,
    ConnectionRefused,
    HostNotFound,
    HttpFailure,
    InvalidAddress,
    NetworkError,
    NetworkTimeout,
    PacskitError,
)
from pacskit.models import AnswerCheck, Answers, RetrieveResult
from pacskit.net import tls
from pacskit.nodes import url_without_credentials
from pacskit.privacy import PrivacyPolicy
from pacskit.query import LEVELS, UNIQUE_KEYS, Level, Query, tree_paths, vr_of
from pacskit.scan import DicomFile
from pacskit.web import json_answer
from pacskit.web.media import MediaType
from pacskit.web.multipart import MultipartError, file_chunks, iter_parts, new_boundary, write_parts
from pacskit.web.stow_outcome import error_reason, store_response, tally_stow

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
RETRIEVE_ACCEPT = f'multipart/related; type="{DICOM}"; transfer-syntax=*'
MAX_SEARCH_ANSWER = 64 << 20
STOW_BATCH_FILES = 50
STOW_BATCH_BYTES = 64 << 20
MAX_STOW_RESPONSE = 4 << 20
_COUNT_KEYS = {Level.STUDY: "NumberOfStudyRelatedInstances", Level.SERIES: "NumberOfSeriesRelatedInstances"}


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

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def qido_request(query: Query, privacy: PrivacyPolicy) -> tuple[str, dict[str, str]]:
    """The QIDO-RS resource and query parameters for ``query`` (PS3.18 10.6.1): match keys
    as ``keyword=value``, a list of UIDs separated by commas (PS3.18 8.3.4.1,
    ``uid-list-match``), the other return keys as ``includefield``. A patient-level query
    searches studies (QIDO-RS has no patient resource). Names withheld by ``privacy`` are
    neither matched nor included.

    Raises:
        QueryError: the query matches on a withheld name.
    """
    query.to_identifier(privacy)
    matching = query.matching_keys()
    params = {k: v.replace("\\", ",") if vr_of(k) == "UI" else v for k, v in matching.items()}
    included = [k for k in query.return_keywords(privacy) if k not in matching and k not in query.sequences]
    for path, value in tree_paths(query.sequences):
        if not privacy.filter_return_keys([path.rsplit(".", 1)[-1]]):
            continue
        if value:
            params[path] = value
        else:
            included.append(path)
    if query.level is Level.PATIENT:
        included.append("PatientID")
    if included:
        params["includefield"] = ",".join(dict.fromkeys(included))
    if query.limit is not None and query.level is not Level.PATIENT:
        params["limit"] = str(query.limit)
    study, series = _single_uid(matching.get("StudyInstanceUID")), _single_uid(matching.get("SeriesInstanceUID"))
    if query.level is Level.SERIES and study:
        params.pop("StudyInstanceUID")
        return f"studies/{study}/series", params
    if query.level is Level.IMAGE and study and series:
        params.pop("StudyInstanceUID")
        params.pop("SeriesInstanceUID")
        return f"studies/{study}/series/{series}/instances", params
    return {Level.PATIENT: "studies", Level.STUDY: "studies", Level.SERIES: "series",
            Level.IMAGE: "instances"}[query.level], params


def _query_string(params: dict[str, str]) -> str:
    """``params`` encoded for a URL, the characters a query may hold as they are (RFC 3986
    3.4): some servers do not decode ``%2A`` to a wildcard, or ``%2F`` in a media type."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe=_LITERAL)}" for k, v in params.items())


_LITERAL = "*?,-./:_~"


def _single_uid(value: str | None) -> str | None:
    if value and "\\" not in value and "*" not in value and "?" not in value and "/" not in value:
        return value
    return None


class DicomWebClient:
    """One DICOMweb service, used for a series of requests on kept-alive connections.

    Args:
        node: the service.
        privacy: the patient-name policy (applied to requests and everything received).
        timeout: seconds without data before a request fails.
        connect_timeout: seconds to wait for the TCP connection.
        connections: the most connections kept open at once (parallel STOW-RS requests).
        max_search_answer: the most bytes of QIDO-RS answers one search reads, all its
            pages together (:mod:`pacskit.web.json_answer` bounds their nesting).
    """

    def __init__(self, node: WebNode, privacy: PrivacyPolicy, *, timeout: float = 120.0,
                 connect_timeout: float = 10.0, connections: int = 4,
                 max_search_answer: int = MAX_SEARCH_ANSWER, verify: ssl.SSLContext | bool = True) -> None:
        self.node = node
        self.privacy = privacy
        self.max_search_answer = max_search_answer
        self.http = httpx.Client(
            base_url=node.url + "/", auth=node._auth(), follow_redirects=False, verify=verify,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))

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
        found = self._checked(query, self._search(resource, params), check)
        if query.level is Level.PATIENT:
            found = _patients(found, query, self.privacy)
        yield from (self.privacy.scrub_response(match) for match in found)

    def _checked(self, query: Query, answers: list[Dataset], check: AnswerCheck) -> list[Dataset]:
        """The ``answers`` of ``query`` that stay (:class:`AnswerChecker`); an empty
        ModalitiesInStudy is checked against the Modality of the study's series."""
        if query.level is Level.PATIENT:
            check.level = Level.STUDY
            query = query.model_copy(update={"level": Level.STUDY})
        return list(AnswerChecker(query, check).filter(answers, self._series_modalities))

    def _series_modalities(self, study: Dataset) -> list[str] | None:
        uid = values_of(study, "StudyInstanceUID")
        if not uid:
            return None
        series = self._search(f"studies/{quote(uid[0], safe='')}/series", {"includefield": "Modality"})
        return [m for item in series for m in values_of(item, "Modality")] or None

    def _search(self, resource: str, params: dict[str, str]) -> list[Dataset]:
        """Every match, page after page while the server says it has more (PS3.18
        8.3.4.1: a Warning that additional results can be requested)."""
        limit = int(params["limit"]) if "limit" in params else None
        found: list[Dataset] = []
        budget = self.max_search_answer
        while True:
            page_params = dict(params)
            if found:
                page_params["offset"] = str(len(found))
                if limit is not None:
                    page_params["limit"] = str(limit - len(found))
            page, more, size = self._search_page(resource, page_params, budget)
            found += page
            budget -= size
            if not more or not page or (limit is not None and len(found) >= limit):
                return found

    def _search_page(self, resource: str, params: dict[str, str], budget: int
                     ) -> tuple[list[Dataset], bool, int]:
        """One QIDO-RS response: its matches, whether the server has more, its size."""
        target = resource + ("?" + _query_string(params) if params else "")
        with self._request("GET", target, headers={"Accept": DICOM_JSON}) as response:
            if response.status_code == 204:
                return [], False, 0
            _check(response, "QIDO-RS")
            more = "additional results" in response.headers.get("warning", "").lower()
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > budget:
                    raise HttpFailure(f"QIDO-RS: {self.node.label} answered more than the limit of "
                                      f"{_mib(self.max_search_answer)} (max_search_answer); narrow the "
                                      "query or set a limit")
        size, items = len(body), json_answer.datasets(body)
        del body
        try:
            return list(items), more, size
        except json_answer.AnswerError as exc:
            raise HttpFailure(f"QIDO-RS: {self.node.label} answered malformed DICOM JSON: {exc}") from None

    def retrieve(self, query: Query, receiver: Any, *, wado_uri: bool = False) -> None:
        """Retrieve what ``query`` matches by WADO-RS (PS3.18 10.4), one request per
        matching study, series or instance as the query's level says, each response
        read as it arrives and every instance handed to ``receiver`` (see
        :class:`pacskit.retrieve.Receiver`) as it is complete. Instances keep their
        transfer syntax (``transfer-syntax=*``). With ``wado_uri``, the instances are
        listed by QIDO-RS and fetched one by one by WADO-URI (PS3.18 9) at ``/wado`` on
        the same host.

        Raises:
            QueryError, NetworkError, HttpFailure: a request failed.
        """
        if wado_uri:
            self._retrieve_by_uri(query, receiver)
            return
        targets = self._retrieve_targets(query, receiver)
        result: RetrieveResult = receiver.result
        receiver.expect(sum(count or 0 for _, count in targets) if all(c for _, c in targets) else None)
        for resource, count in targets:
            result.requests += 1
            received = self._retrieve_one(resource, receiver)
            result.completed += received
            if count is not None and received < count:
                result.failed += count - received

    def retrieve_resources(self, resources: list[tuple[str, int]], receiver: Any) -> None:
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
            received = self._retrieve_one("/".join(quote(part, safe="") if i % 2 else part
                                                   for i, part in enumerate(resource.split("/"))), receiver)
            result.completed += received
            result.failed += max(0, count - received)

    def _retrieve_by_uri(self, query: Query, receiver: Any) -> None:
        instances = Query(level=Level.IMAGE, model=query.model, match=dict(query.match),
                          return_keys=["StudyInstanceUID", "SeriesInstanceUID"])
        result: RetrieveResult = receiver.result
        result.check = AnswerCheck(level=Level.IMAGE)
        found = self._checked(instances, self._search(*qido_request(instances, self.privacy)), result.check)
        receiver.expect(len(found))
        self.retrieve_instances([(str(m.get("StudyInstanceUID", "")), str(m.get("SeriesInstanceUID", "")),
                                  str(m.get("SOPInstanceUID", ""))) for m in found], receiver)

    def retrieve_instances(self, instances: list[tuple[str, str, str]], receiver: Any) -> None:
        """Retrieve by WADO-URI (PS3.18 9), at ``/wado`` on the same host, each instance
        given as (study, series, SOP Instance UID), into ``receiver``; one the server does
        not have (404) is counted failed.

        Raises:
            NetworkError, HttpFailure: a request failed.
        """
        result: RetrieveResult = receiver.result
        endpoint = self.node.origin + "/wado"
        for study, series, sop in instances:
            if receiver.cancellation is not None and receiver.cancellation.cancelled:
                return
            params = {"requestType": "WADO", "contentType": DICOM,
                      "studyUID": study, "seriesUID": series, "objectUID": sop}
            result.requests += 1
            target = f"{endpoint}?{_query_string(params)}"
            with self._request("GET", target, headers={"Accept": DICOM}) as response:
                if response.status_code == 404:
                    result.failed += 1
                    result.failed_instances.append(sop)
                    continue
                _check(response, "WADO-URI")
                if receiver.take(response.read()):
                    result.completed += 1

    def _retrieve_targets(self, query: Query, receiver: Any) -> list[tuple[str, int | None]]:
        """(WADO-RS resource, instances expected) for every match of ``query`` that stays
        once checked; the check goes to ``receiver.result.check``."""
        level = Level.STUDY if query.level is Level.PATIENT else query.level
        unique = [UNIQUE_KEYS[above] for above in LEVELS[LEVELS.index(Level.STUDY): LEVELS.index(level) + 1]]
        needed = [*unique, *([_COUNT_KEYS[level]] if level in _COUNT_KEYS else [])]
        search = Query(level=level, model=query.model, match=dict(query.match),
                       return_keys=[*query.return_keys, *needed] if level is query.level else needed)
        resource, params = qido_request(search, self.privacy)
        targets = []
        result: RetrieveResult = receiver.result
        result.check = AnswerCheck(level=level)
        for match in self._checked(search, self._search(resource, params), result.check):
            uids = [str(match.get(k, "") or "") for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
            study, series, sop = (quote(u, safe="") for u in uids)
            if level is Level.STUDY and study:
                targets.append((f"studies/{study}", _count(match, _COUNT_KEYS[level])))
            elif level is Level.SERIES and study and series:
                targets.append((f"studies/{study}/series/{series}", _count(match, _COUNT_KEYS[level])))
            elif level is Level.IMAGE and study and series and sop:
                targets.append((f"studies/{study}/series/{series}/instances/{sop}", 1))
        return targets

    def _retrieve_one(self, resource: str, receiver: Any) -> int:
        received = 0
        with self._request("GET", resource, headers={"Accept": RETRIEVE_ACCEPT}) as response:
            if response.status_code in (204, 404):
                return 0
            _check(response, "WADO-RS")
            media = MediaType.parse(response.headers.get("content-type", ""))
            boundary = media.params.get("boundary")
            if media.type != "multipart/related" or not boundary:
                raise HttpFailure(f"WADO-RS: {self.node.label} answered "
                                  f"{response.headers.get('content-type', 'no Content-Type')!r}, "
                                  "not multipart/related")
            try:
                for headers, body in iter_parts(ResponseBody(response), boundary):
                    if MediaType.parse(headers.get("content-type", DICOM)).type != DICOM:
                        continue
                    received += 1
                    receiver.take(body)
            except MultipartError as exc:
                raise HttpFailure(f"WADO-RS: the response of {self.node.label} is malformed "
                                  f"after {received} instances: {exc}") from None
        return received

    def store(self, files: list[DicomFile], tally: Any, *, parallel: int = 1) -> None:
        """STOW-RS the ``files`` (PS3.18 10.5), in requests of up to
        :data:`STOW_BATCH_FILES` files, ``parallel`` requests at a time; each file's outcome
        goes to ``tally`` (a callable taking a :class:`~pacskit.net.store.SendOutcome`).

        Raises:
            NetworkError, HttpFailure: every request failed the same way.
        """
        batches = list(_batches(files))
        errors: list[PacskitError] = []
        lock = threading.Lock()

        def send(batch: list[DicomFile]) -> None:
            try:
                self._store_batch(batch, tally)
            except PacskitError as exc:
                with lock:
                    errors.append(exc)
                _fail_all(batch, tally, str(exc))

        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(batches))),
                                thread_name_prefix="pacskit-stow") as pool:
            list(pool.map(send, batches))
        if errors and len(errors) == len(batches) and isinstance(errors[0], (NetworkError, HttpFailure)):
            raise errors[0]

    def _store_batch(self, batch: list[DicomFile], tally: Any) -> None:
        """One Store Instances request; each file's outcome from the answer, whatever its
        HTTP status. An answer that is not a Store Instances Response fails the batch
        with the server's reason, in one line.

        Raises:
            HttpFailure: the answer is an error, or not a Store Instances Response.
        """
        boundary = new_boundary()
        body = write_parts(((DICOM, file_chunks(f.path)) for f in batch), boundary)
        headers = {"Content-Type": f'multipart/related; type="{DICOM}"; boundary={boundary}',
                   "Accept": DICOM_JSON}
        with self._request("POST", "studies", content=body, headers=headers) as response:
            answer = self._read_answer(response)
            status, phrase = response.status_code, response.reason_phrase
            content_type = response.headers.get("content-type", "")
        stored = store_response(answer)
        http = f"HTTP {status} {phrase}".strip()
        if stored is not None:
            tally_stow(batch, stored, tally, http if status >= 300 else None)
            return
        reason = error_reason(answer, content_type)
        if status < 300:
            raise HttpFailure(f"STOW-RS: {self.node.label} answered {http} without a Store Instances "
                              f"Response" + (f": {reason}" if reason else ""), status=status)
        raise HttpFailure(f"STOW-RS: {http}" + (f": {reason}" if reason else ""), status=status)

    def _read_answer(self, response: httpx.Response) -> bytes:
        answer = bytearray()
        for chunk in response.iter_bytes():
            answer += chunk
            if len(answer) > MAX_STOW_RESPONSE:
                raise HttpFailure(f"STOW-RS: {self.node.label} answered more than "
                                  f"{MAX_STOW_RESPONSE >> 20} MiB", status=response.status_code)
        return bytes(answer)

    @contextmanager
    def _request(self, method: str, resource: str, **options: Any) -> Iterator[httpx.Response]:
        try:
            with self.http.stream(method, resource, **options) as response:
                if response.status_code in (401, 403):
                    raise AccessDenied(f"{self.node.label} refused the request: HTTP {response.status_code} "
                                       f"({'credentials needed' if response.status_code == 401 else 'forbidden'})")
                yield response
        except httpx.ConnectTimeout:
            raise NetworkTimeout(f"{self.node.label}: no connection within the timeout") from None
        except httpx.TimeoutException:
            raise NetworkTimeout(f"{self.node.label} did not answer within the timeout") from None
        except httpx.ConnectError as exc:
            text = str(exc).lower()
            tls_error = _ssl_error(exc)
            if tls_error is not None:
                raise tls.failure(self.node.label, tls_error) from None
            if "name or service not known" in text or "nodename nor servname" in text \
                    or "temporary failure in name resolution" in text or "no address associated" in text:
                raise HostNotFound(f"host of {self.node.label} does not resolve") from None
            raise ConnectionRefused(f"cannot connect to {self.node.label}: {_reason(exc)}") from None
        except httpx.TransportError as exc:
            raise AssociationAborted(f"{self.node.label} closed the connection: {_reason(exc)}") from None


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind an httpx error, if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


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
    detail = ""
    try:
        detail = response.read()[:200].decode("utf-8", "replace").strip().splitlines()[0]
    except (httpx.HTTPError, IndexError):
        pass
    raise HttpFailure(f"{service}: HTTP {response.status_code} {response.reason_phrase}"
                      + (f": {detail}" if detail else ""), status=response.status_code)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


def _count(match: Dataset, keyword: str) -> int | None:
    value = match.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _patients(studies: Iterable[Dataset], query: Query, privacy: PrivacyPolicy) -> list[Dataset]:
    """Patient-level answers from study-level ones: one per Patient ID, with the patient
    attributes asked for and the number of studies."""
    keys = [k for k in query.return_keywords(privacy) if not k.startswith("NumberOf")]
    patients: dict[tuple[str, str], Dataset] = {}
    counts: dict[tuple[str, str], int] = {}
    for study in studies:
        key = (str(study.get("PatientID", "") or ""), str(study.get("IssuerOfPatientID", "") or ""))
        if key not in patients:
            patient = Dataset()
            for keyword in keys:
                if keyword in study:
                    patient[keyword] = study[keyword]
            patients[key] = patient
        counts[key] = counts.get(key, 0) + 1
    for key, patient in patients.items():
        if "NumberOfPatientRelatedStudies" in query.return_keywords(privacy):
            patient.NumberOfPatientRelatedStudies = counts[key]
    found = list(patients.values())
    return found[: query.limit] if query.limit is not None else found


def _batches(files: list[DicomFile]) -> Iterator[list[DicomFile]]:
    batch: list[DicomFile] = []
    size = 0
    for file in files:
        if batch and (len(batch) >= STOW_BATCH_FILES or size + file.size > STOW_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(file)
        size += file.size
    if batch:
        yield batch


def _fail_all(batch: list[DicomFile], tally: Any, reason: str) -> None:
    from pacskit.net.store import SendOutcome

    for file in batch:
        tally(SendOutcome(file, None, reason))


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:160]
