"""What a DICOMweb request carries and what its answer means, without I/O: shared by the
blocking client (:mod:`pacskit.web.client`, ``httpx.Client``) and the asynchronous one
(:mod:`pacskit.web.aio_client`, ``httpx.AsyncClient``), so that both send the same
requests (PS3.18 10.4 WADO-RS, 10.5 STOW-RS, 10.6 QIDO-RS) and read the same answers
into the same results and errors.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
from pydicom import Dataset

from pacskit.answers import values_of
from pacskit.errors import (
    AccessDenied,
    AssociationAborted,
    ConnectionRefused,
    HostNotFound,
    HttpFailure,
    NetworkError,
    NetworkTimeout,
    PacskitError,
)
from pacskit.models import AnswerCheck
from pacskit.net import tls
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Level, Query, tree_paths, vr_of
from pacskit.scan import DicomFile
from pacskit.web import json_answer
from pacskit.web.media import MediaType
from pacskit.web.multipart import new_boundary
from pacskit.web.stow_outcome import error_reason, store_response, tally_stow

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
RETRIEVE_ACCEPT = f'multipart/related; type="{DICOM}"; transfer-syntax=*'
SEARCH_HEADERS = {"Accept": DICOM_JSON}
RETRIEVE_HEADERS = {"Accept": RETRIEVE_ACCEPT}
STOW_BATCH_FILES = 50
STOW_BATCH_BYTES = 64 << 20
MAX_STOW_RESPONSE = 4 << 20
_LITERAL = "*?,-./:_~"


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


def query_string(params: dict[str, str]) -> str:
    """``params`` encoded for a URL, the characters a query may hold as they are (RFC 3986
    3.4): some servers do not decode ``%2A`` to a wildcard, or ``%2F`` in a media type."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe=_LITERAL)}" for k, v in params.items())


def _single_uid(value: str | None) -> str | None:
    if value and "\\" not in value and "*" not in value and "?" not in value and "/" not in value:
        return value
    return None


def search_target(resource: str, params: dict[str, str], found: int) -> str:
    """The URL (relative to the service root) of the QIDO-RS page after ``found`` matches:
    ``offset`` and what is left of ``limit`` once the first page is in (PS3.18 8.3.4.1)."""
    page = dict(params)
    if found:
        page["offset"] = str(found)
        if "limit" in params:
            page["limit"] = str(int(params["limit"]) - found)
    return resource + ("?" + query_string(page) if page else "")


def search_done(params: dict[str, str], page: list[Dataset], more: bool, found: int) -> bool:
    """Whether a search is over once ``page`` is in (``found`` matches in all): the server
    said it has no more (no Warning that additional results can be requested), or the
    page was empty, or ``limit`` is reached."""
    return not more or not page or ("limit" in params and found >= int(params["limit"]))


def has_more(response: httpx.Response) -> bool:
    """Whether a QIDO-RS answer says more results can be requested (PS3.18 8.3.4.1)."""
    return "additional results" in response.headers.get("warning", "").lower()


def search_too_big(label: str, max_search_answer: int) -> HttpFailure:
    """The failure of a search whose answers pass ``max_search_answer`` bytes."""
    return HttpFailure(f"QIDO-RS: {label} answered more than the limit of {_mib(max_search_answer)} "
                       "(max_search_answer); narrow the query or set a limit")


def page_matches(body: bytes | bytearray, label: str) -> list[Dataset]:
    """The datasets of one QIDO-RS answer (PS3.18 F.2, bounded by :mod:`json_answer`).

    Raises:
        HttpFailure: not DICOM JSON.
    """
    try:
        return list(json_answer.datasets(body))
    except json_answer.AnswerError as exc:
        raise HttpFailure(f"QIDO-RS: {label} answered malformed DICOM JSON: {exc}") from None


def series_search(study: Dataset) -> tuple[str, dict[str, str]] | None:
    """The QIDO-RS search of the Modality of a study's series, to check ModalitiesInStudy
    (None without a Study Instance UID)."""
    uid = values_of(study, "StudyInstanceUID")
    return (f"studies/{quote(str(uid[0]), safe='')}/series", {"includefield": "Modality"}) if uid else None


def modalities_of(series: list[Dataset]) -> list[str] | None:
    """The Modality values of a study's series, None without any."""
    return [m for item in series for m in values_of(item, "Modality")] or None


def quoted_resource(resource: str) -> str:
    """``studies/{uid}/series/{uid}...`` with each UID quoted for a URL."""
    return "/".join(quote(part, safe="") if i % 2 else part for i, part in enumerate(resource.split("/")))


def wado_uri_instances(query: Query) -> Query:
    """The QIDO-RS search that lists the instances a WADO-URI retrieve fetches."""
    return Query(level=Level.IMAGE, model=query.model, match=dict(query.match),
                 return_keys=["StudyInstanceUID", "SeriesInstanceUID"])


def wado_uri_target(origin: str, instance: tuple[str, str, str]) -> str:
    """The WADO-URI request of one instance, given as (study, series, SOP Instance UID)
    (PS3.18 9.1), at ``/wado`` of ``origin``."""
    study, series, sop = instance
    params = {"requestType": "WADO", "contentType": DICOM, "studyUID": study, "seriesUID": series, "objectUID": sop}
    return f"{origin}/wado?{query_string(params)}"


def retrieve_boundary(response: httpx.Response, label: str) -> str:
    """The multipart boundary of a WADO-RS answer.

    Raises:
        HttpFailure: the answer is not ``multipart/related``.
    """
    media = MediaType.parse(response.headers.get("content-type", ""))
    boundary = media.params.get("boundary")
    if media.type != "multipart/related" or not boundary:
        raise HttpFailure(f"WADO-RS: {label} answered {response.headers.get('content-type', 'no Content-Type')!r}, "
                          "not multipart/related")
    return boundary


def is_instance(headers: dict[str, str]) -> bool:
    """Whether a WADO-RS part is a DICOM instance (a part without Content-Type is one)."""
    return MediaType.parse(headers.get("content-type", DICOM)).type == DICOM


def malformed_retrieve(label: str, received: int, exc: Exception) -> HttpFailure:
    """The failure of a WADO-RS answer that stops being a valid multipart message."""
    return HttpFailure(f"WADO-RS: the response of {label} is malformed after {received} instances: {exc}")


def refuse_denied(response: httpx.Response, label: str) -> None:
    """Raise :class:`AccessDenied` for an answer 401 or 403."""
    if response.status_code not in (401, 403):
        return
    raise AccessDenied(f"{label} refused the request: HTTP {response.status_code} "
                        f"({'credentials needed' if response.status_code == 401 else 'forbidden'})")


def http_failure(response: httpx.Response, service: str, head: bytes) -> HttpFailure:
    """The error of an answer 300 or above, with the first line of its body (``head``)."""
    lines = head[:200].decode("utf-8", "replace").strip().splitlines()
    detail = lines[0] if lines else ""
    return HttpFailure(f"{service}: HTTP {response.status_code} {response.reason_phrase}"
                       + (f": {detail}" if detail else ""), status=response.status_code)


def transport_failure(exc: httpx.TransportError, label: str) -> NetworkError:
    """The pacskit error of an httpx transport error: a timeout, a TLS failure, a host
    that does not resolve, a refused or a closed connection."""
    if isinstance(exc, httpx.ConnectTimeout):
        return NetworkTimeout(f"{label}: no connection within the timeout")
    if isinstance(exc, httpx.TimeoutException):
        return NetworkTimeout(f"{label} did not answer within the timeout")
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        tls_error = _ssl_error(exc)
        if tls_error is not None:
            return tls.failure(label, tls_error)
        if "name or service not known" in text or "nodename nor servname" in text \
                or "temporary failure in name resolution" in text or "no address associated" in text:
            return HostNotFound(f"host of {label} does not resolve")
        return ConnectionRefused(f"cannot connect to {label}: {_reason(exc)}")
    return AssociationAborted(f"{label} closed the connection: {_reason(exc)}")


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind an httpx error, if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def stow_headers(boundary: str) -> dict[str, str]:
    """The headers of a Store Instances request (PS3.18 10.5.1)."""
    return {"Content-Type": f'multipart/related; type="{DICOM}"; boundary={boundary}', "Accept": DICOM_JSON}


def stow_boundary() -> str:
    """A fresh boundary for a Store Instances request."""
    return new_boundary()


def stow_answer_too_big(label: str, status: int) -> HttpFailure:
    """The failure of a Store Instances answer past :data:`MAX_STOW_RESPONSE`."""
    return HttpFailure(f"STOW-RS: {label} answered more than {MAX_STOW_RESPONSE >> 20} MiB", status=status)


def stow_outcome(batch: list[DicomFile], tally: Any, answer: bytes, response: httpx.Response, label: str) -> None:
    """Each file's outcome from a Store Instances answer (PS3.18 10.5.3), whatever its
    HTTP status.

    Raises:
        HttpFailure: the answer is an error, or not a Store Instances Response.
    """
    status, phrase = response.status_code, response.reason_phrase
    stored = store_response(answer)
    http = f"HTTP {status} {phrase}".strip()
    if stored is not None:
        tally_stow(batch, stored, tally, http if status >= 300 else None)
        return
    reason = error_reason(answer, response.headers.get("content-type", ""))
    if status < 300:
        raise HttpFailure(f"STOW-RS: {label} answered {http} without a Store Instances "
                          f"Response" + (f": {reason}" if reason else ""), status=status)
    raise HttpFailure(f"STOW-RS: {http}" + (f": {reason}" if reason else ""), status=status)


def stow_batches(files: list[DicomFile]) -> Iterator[list[DicomFile]]:
    """``files`` in Store Instances requests of at most :data:`STOW_BATCH_FILES` files
    and :data:`STOW_BATCH_BYTES` bytes (a larger file goes alone)."""
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


def fail_all(batch: list[DicomFile], tally: Any, reason: str) -> None:
    """Every file of a request that failed as a whole, failed for ``reason``."""
    from pacskit.net.store import SendOutcome

    for file in batch:
        tally(SendOutcome(file, None, reason))


def store_failure(errors: list[PacskitError], batches: int) -> PacskitError | None:
    """What a store raises: the network or HTTP failure that every request had, else None."""
    if errors and len(errors) == batches and isinstance(errors[0], (NetworkError, HttpFailure)):
        return errors[0]
    return None


def patients_of(studies: Iterable[Dataset], query: Query, privacy: PrivacyPolicy) -> list[Dataset]:
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


def checked_query(query: Query, check: AnswerCheck) -> Query:
    """The query answers are checked against: a patient-level one is answered by studies."""
    if query.level is Level.PATIENT:
        check.level = Level.STUDY
        return query.model_copy(update={"level": Level.STUDY})
    return query


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:160]
