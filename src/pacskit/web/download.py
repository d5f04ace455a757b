"""A study or a series as one ZIP (docs/web-actions.md): the Retrieve Transaction
(PS3.18 10.4) of a study or series resource answered ``application/zip`` when the
``Accept`` header or the ``accept`` query parameter (PS3.18 8.3.3.1) asks for it; each
stored file byte for byte, streamed (:mod:`pacskit.web.zip_stream`), optionally with a
DICOMDIR (:mod:`pacskit.web.dicomdir`). No patient name goes into the ZIP's names or its
DICOMDIR."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Send

from pacskit.query import Level, Query
from pacskit.web import wado
from pacskit.web.dicomdir import NAME as DICOMDIR
from pacskit.web.dicomdir import DicomDir
from pacskit.web.media import parse_accept
from pacskit.web.multipart import coalesced
from pacskit.web.zip_stream import CutShort, Entry, zip_chunks

ZIP = "application/zip"
LOG = logging.getLogger("pacskit.web")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def wants_zip(request: Request) -> bool:
    """Whether a study or series Retrieve asks for ``application/zip``: the ``accept``
    query parameter says so, or the Accept header names it before any media type that
    covers the DICOM ones (``*/*`` keeps ``multipart/related``)."""
    parameter = request.query_params.get("accept")
    if parameter is not None:
        return any(media.type == ZIP for media in parse_accept(parameter))
    for media in parse_accept(request.headers.get("accept")):
        if media.type == ZIP:
            return True
        if media.type in ("*/*", "multipart/related", "multipart/*", wado.DICOM):
            return False
    return False


def zip_response(index: object, files: Path, study: str, series: str | None, dicomdir_param: str | None,
                 ) -> StreamingResponse:
    """The ZIP of ``study`` (or of its ``series``), streamed.

    Raises:
        HTTPException: 400, a bad UID or ``dicomdir`` value; 404, nothing stored there.
    """
    with_dicomdir = _flag(dicomdir_param)
    match = {"StudyInstanceUID": wado.check_uid(study)}
    if series is not None:
        match["SeriesInstanceUID"] = wado.check_uid(series)
    found = [str(ds.SeriesInstanceUID) for ds in index.find(  # type: ignore[attr-defined]
        Query(level=Level.SERIES, match=match, return_keys=("SeriesInstanceUID",)))]
    located: list[tuple[str, wado.Located]] = []
    for uid in found:
        try:
            located += [(uid, item) for item in wado.locate(index, files, study, uid)]
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
    if not located:
        what = f"series: {series}" if series is not None else f"study: {study}"
        raise HTTPException(404, f"no such {what}")
    name = f"series-{series}.zip" if series is not None else f"study-{study}.zip"
    return _ZipResponse(coalesced(zip_chunks(_entries(study, located, with_dicomdir))), media_type=ZIP,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


class _ZipResponse(StreamingResponse):
    """A streamed ZIP that, cut short (:class:`CutShort`), ends without completing the
    response: the server then closes the connection, and the client sees the download
    fail instead of a whole-looking file."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        except CutShort as exc:
            LOG.warning("ZIP download cut short, its connection closed: %s", exc)


def _entries(study: str, located: list[tuple[str, wado.Located]], with_dicomdir: bool) -> Iterator[Entry]:
    if not with_dicomdir:
        for series, item in located:
            yield Entry(f"{study}/{series}/{item.instance.sop_instance_uid}.dcm", item.path)
        return
    directory = DicomDir()
    try:
        unlisted = 0
        for _, item in located:
            file_id = directory.add(item.path)
            if file_id is None:
                unlisted += 1
                file_id = f"UNLISTED/F{unlisted:07d}"
            yield Entry(file_id, item.path)
        yield Entry(DICOMDIR, data=directory.encoded())
    finally:
        directory.close()


def _flag(value: str | None) -> bool:
    if value is None or value.lower() in _FALSE:
        return False
    if value.lower() in _TRUE:
        return True
    raise HTTPException(400, f"dicomdir must be true or false, not {value[:20]!r}")
