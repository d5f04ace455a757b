"""STOW-RS, Store Transaction (PS3.18 10.5): instances POSTed in a
``multipart/related; type="application/dicom"`` body enter the archive through the one
ingest path, as C-STORE ones do.

The body is spooled to a file in the archive's scratch folder as it arrives (never whole
in memory), up to ``web.max_body`` bytes (413 past it, and reading stops). The whole
message is checked before any part is stored: a malformed one (no closing delimiter, a
truncated body) is 400 and stores nothing; a disk too full for the body is 507. Each part
is then read alone from the spooled body, its PS3.10 file meta gives the SOP Class, SOP
Instance and transfer syntax, and its dataset is copied into the ingest as it came, a
megabyte at a time: no part is ever whole in memory.
The response (PS3.18 10.5.3) lists what was stored (ReferencedSOPSequence) and what
was not (FailedSOPSequence, with a FailureReason from PS3.4 Annex B status codes, and
why in an Error Comment (0000,0902), as a C-STORE response would say it):
200 when every instance was stored, 202 when some were, 409 when none was.
"""

from __future__ import annotations

import errno
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pydicom import Dataset, dcmread
from pydicom.sequence import Sequence
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from pacskit.archive.ingest import (
    CANNOT_UNDERSTAND,
    DATASET_DOES_NOT_MATCH_SOP_CLASS,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    OUT_OF_RESOURCES,
    SUCCESS,
    Ingest,
)
from pacskit.deflate import InflationLimitExceeded, inflate_head, instance_limit
from pacskit.encoded import header_dataset, parse_file_meta
from pacskit.web.media import MediaType
from pacskit.web.multipart import MultipartError, PartSpan, PartWindow, scan_parts
from pacskit.web.qido import retrieve_url

DICOM = "application/dicom"
META_HEAD = 64 << 10
"""What is read of a part to find its file meta information."""
COPY_CHUNK = 1 << 20
DICOM_JSON = "application/dicom+json"
STUDY_MISMATCH = DATASET_DOES_NOT_MATCH_SOP_CLASS
STUDY_AND_SERIES = frozenset({0x0020000D, 0x0020000E})
"""FailureReason of an instance of another study than the request's (PS3.18 10.5.3.2
names no code of its own; pacskit answers 0xA900, "does not match")."""


@dataclass
class Outcome:
    """What a Store Transaction did, as its response dataset will say."""

    stored: list[Dataset] = field(default_factory=list)
    failed: list[Dataset] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)

    @property
    def status(self) -> int:
        """200 (all stored), 202 (some), 409 (none) — PS3.18 10.5.3.1."""
        if not self.failed:
            return 200
        return 202 if self.stored else 409


async def store(request: Request, ingest: Ingest, max_body: int, base_url: str,
                study: str | None = None) -> Response:
    """Run a Store Transaction on ``request``; ``study`` is the Study Instance UID of
    the path (``POST /studies/{study}``), which every instance must belong to.

    Raises:
        HTTPException: 415 not ``multipart/related`` of ``application/dicom``; 400 no
            boundary, or a malformed message; 413 a body over ``max_body``.
    """
    boundary = _boundary(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise HTTPException(413, f"the body ({declared} bytes) is over the limit of {max_body} bytes")
    spool = ingest.scratch / f"stow-{ingest.scratch_prefix}{uuid.uuid4().hex}.body"
    try:
        await _spool(request, spool, max_body)
        outcome = await run_in_threadpool(_store_parts, spool, boundary, ingest, base_url, study)
    finally:
        spool.unlink(missing_ok=True)
    return Response(_response(outcome, base_url, study), status_code=outcome.status, media_type=DICOM_JSON)


def _boundary(content_type: str) -> str:
    media = MediaType.parse(content_type)
    if media.type != "multipart/related":
        raise HTTPException(415, f'a Store request is multipart/related; type="{DICOM}", '
                                 f"not {content_type[:80] or 'without a Content-Type'}")
    inner = media.params.get("type")
    if inner is not None and MediaType.parse(inner).type != DICOM:
        raise HTTPException(415, f"only {DICOM} parts can be stored, not {inner[:80]}")
    boundary = media.params.get("boundary", "")
    if not boundary:
        raise HTTPException(400, "the multipart/related Content-Type has no boundary")
    return boundary


async def _spool(request: Request, spool: Path, max_body: int) -> None:
    received = 0
    try:
        with open(spool, "xb") as fh:
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_body:
                    raise HTTPException(413, f"the body is over the limit of {max_body} bytes")
                fh.write(chunk)
    except ClientDisconnect:
        raise HTTPException(400, "the client disconnected before the end of the body") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise HTTPException(507, "the archive's disk is full: nothing was stored") from None
        raise


def _store_parts(spool: Path, boundary: str, ingest: Ingest, base_url: str, study: str | None) -> Outcome:
    outcome = Outcome()
    with open(spool, "rb") as fh:
        try:
            parts = scan_parts(fh, boundary)
        except MultipartError as exc:
            raise HTTPException(400, f"malformed multipart body: {exc}") from None
        if not parts:
            raise HTTPException(400, "the multipart body holds no part")
        for part in parts:
            _store_part(fh, part, ingest, base_url, study, outcome)
    return outcome


def _store_part(fh: BinaryIO, part: PartSpan, ingest: Ingest, base_url: str, study: str | None,
                outcome: Outcome) -> None:
    """Store one part, read from the spooled body through a window on its bytes: its file
    meta and header are read from its head, its dataset copied into the ingest piece by
    piece — memory does not grow with the instance's size."""
    media = MediaType.parse(part.content_type or DICOM)
    if media.type != DICOM:
        outcome.failed.append(_failed("", "", CANNOT_UNDERSTAND, f"a {media.type[:64]} part, not {DICOM}"))
        return
    window = PartWindow(fh, part.start, part.size)
    head = window.read(META_HEAD)
    if head[128:132] != b"DICM":
        outcome.failed.append(_failed("", "", CANNOT_UNDERSTAND, "not a DICOM file (no DICM prefix)"))
        return
    meta, offset = parse_file_meta(head, complete=part.size <= len(head))
    sop_class, sop_instance, syntax = (meta.get(n, "") for n in (0x0002, 0x0003, 0x0010))
    if offset is None or not (sop_class and sop_instance and syntax):
        outcome.failed.append(_failed(sop_class, sop_instance, CANNOT_UNDERSTAND,
                                      "its file meta information lacks a SOP Class, SOP Instance or "
                                      "Transfer Syntax UID"))
        return
    try:
        header = _study_and_series(window, offset, syntax)
        uids = str(header.get("StudyInstanceUID", "")), str(header.get("SeriesInstanceUID", ""))
    except InflationLimitExceeded as exc:
        outcome.failed.append(_failed(sop_class, sop_instance, OUT_OF_RESOURCES,
                                      f"inflates beyond {exc.limit >> 20} MiB, the limit"))
        return
    except Exception as exc:  # noqa: BLE001 - whatever pydicom cannot read is bad data
        outcome.failed.append(_failed(sop_class, sop_instance, CANNOT_UNDERSTAND, f"unreadable dataset: {exc}"))
        return
    if study is not None and uids[0] != study:
        outcome.failed.append(_failed(sop_class, sop_instance, STUDY_MISMATCH,
                                      f"an instance of another study than {study}"))
        return
    incoming = ingest.receive(sop_class, sop_instance, syntax)
    window.seek(offset)
    while chunk := window.read(COPY_CHUNK):
        incoming.write(chunk)
    result = incoming.finish()
    if result.status != SUCCESS:
        outcome.failed.append(_failed(sop_class, sop_instance, result.status, result.reason))
        return
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    item.RetrieveURL = retrieve_url(base_url, *uids, sop_instance)
    outcome.stored.append(item)
    outcome.studies.add(uids[0])


def _study_and_series(window: PartWindow, offset: int, syntax: str) -> Dataset:
    """The Study and Series Instance UIDs of a part; a deflated one (PS3.5 A.5) is
    inflated within :func:`~pacskit.deflate.instance_limit`, only its head kept.

    Raises:
        InflationLimitExceeded: it inflates beyond the limit.
    """
    window.seek(0)
    if syntax != DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return dcmread(window, stop_before_pixels=True, specific_tags=["StudyInstanceUID", "SeriesInstanceUID"])
    window.seek(offset)
    inflated = inflate_head(window, instance_limit(window.size - offset))
    return header_dataset(inflated.head, 0, EXPLICIT_VR_LITTLE_ENDIAN, STUDY_AND_SERIES)


def _failed(sop_class: str, sop_instance: str, reason: int, comment: str = "") -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class or None
    item.ReferencedSOPInstanceUID = sop_instance or None
    item.FailureReason = reason
    if comment:
        item.ErrorComment = " ".join(comment.split())[:64]
    return item


def _response(outcome: Outcome, base_url: str, study: str | None) -> bytes:
    ds = Dataset()
    studies = {study} if study else outcome.studies
    if len(studies) == 1:
        ds.RetrieveURL = retrieve_url(base_url, next(iter(studies)))
    if outcome.failed:
        ds.FailedSOPSequence = Sequence(outcome.failed)
    if outcome.stored:
        ds.ReferencedSOPSequence = Sequence(outcome.stored)
    return json.dumps(ds.to_json_dict()).encode()
