"""WADO-URI (PS3.18 9): ``GET /wado?requestType=WADO&studyUID=&seriesUID=&objectUID=``.

``contentType`` (a comma-separated list, best first) is ``application/dicom``, or
``image/jpeg`` / ``image/png`` for a rendered frame (``frameNumber``, ``windowCenter``
and ``windowWidth``, ``imageQuality``). Without it a single-frame image is sent as
``image/jpeg`` and anything else as ``application/dicom`` (PS3.18 9.1.2.2.2).
``transferSyntax`` may ask for Explicit VR Little Endian; ``anonymize=yes`` is refused.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from pacskit.web import pixel_budget, render, wado
from pacskit.web.media import EXPLICIT_VR_LITTLE_ENDIAN, MediaType
from pacskit.web.stored import StoredFiles

DICOM = "application/dicom"


def retrieve(request: Request, index: object, files: Path, stored: StoredFiles, *,
             pixel_budget: int = 64 << 20) -> Response:
    """Answer a WADO-URI request.

    Raises:
        HTTPException: 400 a missing or malformed parameter; 404 not stored; 406 a
            content type or transfer syntax that cannot be served.
    """
    params = request.query_params
    if params.get("requestType") != "WADO":
        raise HTTPException(400, "requestType must be WADO")
    missing = [name for name in ("studyUID", "seriesUID", "objectUID") if not params.get(name)]
    if missing:
        raise HTTPException(400, f"missing parameter {missing[0]}")
    if params.get("anonymize", "").lower() == "yes":
        raise HTTPException(406, "anonymize=yes is not supported")
    item = wado.locate(index, files, params["studyUID"], params["seriesUID"], params["objectUID"])[0]
    for media in _content_types(params.get("contentType"), item.path, stored):
        if media.covers(DICOM):
            return _dicom(item, params.get("transferSyntax"), pixel_budget, stored)
        for candidate in render.RENDERED_TYPES:
            if media.covers(candidate):
                return _rendered(item, candidate, request, stored, pixel_budget)
    raise HTTPException(406, f"contentType {params.get('contentType')!r} cannot be served")


def _content_types(asked: str | None, path: Path, stored: StoredFiles) -> list[MediaType]:
    if asked:
        return [MediaType.parse(item) for item in asked.split(",") if item.strip()]
    with stored.open(path) as header:
        image = "Rows" in header and int(header.get("NumberOfFrames") or 1) == 1
    return [MediaType("image/jpeg" if image else DICOM)]


def _dicom(item: wado.Located, asked: str | None, budget: int, stored_files: StoredFiles) -> Response:
    stored = item.instance.transfer_syntax
    if not asked or asked == stored:
        return FileResponse(item.path, media_type=DICOM)
    if asked == EXPLICIT_VR_LITTLE_ENDIAN and wado.decodable(stored):
        _, chunks = next(wado.instance_parts([item], asked, budget, stored_files))
        return StreamingResponse(chunks, media_type=DICOM)
    raise HTTPException(406, f"the instance is stored in {stored} and cannot be sent in {asked[:80]}")


def _rendered(item: wado.Located, media: str, request: Request, stored: StoredFiles, budget: int) -> Response:
    params = request.query_params
    frame = params.get("frameNumber", "1")
    if not frame.isdigit() or int(frame) < 1:
        raise HTTPException(400, f"frameNumber must be a positive integer, not {frame[:40]!r}")
    window = None
    if params.get("windowCenter") or params.get("windowWidth"):
        window = render.parse_window(f"{params.get('windowCenter', '')},{params.get('windowWidth', '')}")
    quality = params.get("imageQuality", "90")
    if not quality.isdigit():
        raise HTTPException(400, f"imageQuality must be an integer, not {quality[:40]!r}")
    with stored.open(item.path, pixels=True) as ds:
        wado.check_frames(wado.check_image(ds), [int(frame)])
        pixel_budget.check(ds, 1, budget)
        body = render.render(ds, int(frame), media, window=window, quality=int(quality))
    return Response(body, media_type=media)
