"""The DICOMweb application of the archive (PS3.18): Studies Service routes under
``/dicom-web`` — Search (QIDO-RS, 10.6), Retrieve (WADO-RS, 10.4) and Store (STOW-RS,
10.5) — and WADO-URI (PS3.18 9) at ``/wado``, over the archive's index and files; and
the worklist's items at ``/worklist`` (:mod:`pacskit.web.worklist_routes`), the performed
procedure steps at ``/mpps`` (:mod:`pacskit.web.mpps_routes`); a study or series as a ZIP
(:mod:`pacskit.web.download`) and the web page's actions under ``/api``
(:mod:`pacskit.web.actions`, docs/web-actions.md); the web page at ``/`` and ``/ui``
(:mod:`pacskit.web.page`).

Errors are answered with their status and a one-line reason in a ``text/plain`` body:
400 for a malformed request or query, 404 for what is not stored, 406 for an Accept
header nothing can satisfy, 413 for a body over the limit, 415 for a media type that
cannot be stored. They are JSON, ``{"status": …, "error": …}``, under ``/api`` and for a
request whose Accept header names a JSON media type; a study or series deleted in this
run is said to have been deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.uid import UID
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route

from pacskit.errors import QueryError
from pacskit.query import Level
from pacskit.web import download, pixel_budget, qido, render, stow, uri, wado
from pacskit.web.access_log import AccessLogMiddleware
from pacskit.web.actions import Actions, Deletions
from pacskit.web.auth import AuthMiddleware
from pacskit.web.media import EXPLICIT_VR_LITTLE_ENDIAN, parse_accept
from pacskit.web.mpps_routes import mpps_routes
from pacskit.web.multipart import coalesced, new_boundary, write_parts
from pacskit.web.openapi import openapi
from pacskit.web.page import page_routes
from pacskit.web.stored import StoredFiles
from pacskit.web.worklist_routes import worklist_routes

if TYPE_CHECKING:
    from pacskit.archive.server import Archive

PREFIX = "/dicom-web"
DICOM_JSON = "application/dicom+json"


class DicomWeb:
    """The routes' handlers, over one archive's index and files.

    Args:
        archive: the open archive (its index, ingest and settings).
    """

    def __init__(self, archive: Archive, deletions: Deletions | None = None) -> None:
        self.deletions = deletions or Deletions()
        self.index = archive.index
        self.ingest = archive.ingest
        self.files: Path = archive.ingest.files
        self.cap = min(archive.settings.archive.find_limit, archive.settings.web.search_limit)
        self.max_body = archive.settings.web.max_body
        self.pixel_budget = archive.settings.web.pixel_budget
        self.stored = StoredFiles(archive.ingest.scratch, archive.ingest.scratch_prefix)

    @staticmethod
    def base_url(request: Request) -> str:
        """The service's root URL as the client reached it. A Host header without a port
        (dicomweb-client sends one) gets the port the request came in on."""
        url = request.base_url
        server = request.scope.get("server")
        if url.port is None and server and server[1] not in (None, {"http": 80, "https": 443}.get(url.scheme)):
            url = url.replace(port=server[1])
        return str(url).rstrip("/") + PREFIX

    def search(self, level: Level, parents: tuple[Level, ...] = ()) -> Callable[[Request], Response]:
        """A Search Transaction handler (PS3.18 10.6) at ``level``."""

        def handler(request: Request) -> Response:
            _accept_json(request)
            search = qido.parse_search(level, request.query_params.multi_items(), _path_uids(request), parents)
            results, truncated = qido.run_search(self.index, search, self.base_url(request), self.cap)
            warnings = [*search.warnings, *([qido.TRUNCATED_WARNING] if truncated else [])]
            headers = {"Warning": ", ".join(warnings)} if warnings else None
            return Response(json.dumps(results), media_type=DICOM_JSON, headers=headers)

        return handler

    def count(self, level: Level) -> Callable[[Request], Response]:
        """The number of matches of a Search at ``level``, paging aside: ``{"count": N}``
        (the ``/count`` resources, see :mod:`pacskit.web.qido`)."""

        def handler(request: Request) -> Response:
            _accept_json(request)
            search = qido.parse_search(level, request.query_params.multi_items(), _path_uids(request))
            return JSONResponse({"count": qido.count_matches(self.index, search)})

        return handler

    def retrieve(self, request: Request) -> Response:
        """Retrieve a study, series or instance (PS3.18 10.4.1.1.1), streamed, in the
        transfer syntax :func:`wado.choose_representation` picks; 206 with a Warning when
        some instances cannot be sent in it (see :mod:`pacskit.web.wado`). A study or
        series asked for as ``application/zip`` is one ZIP (:mod:`pacskit.web.download`)."""
        p = request.path_params
        if "sop" not in p and download.wants_zip(request):
            try:
                return download.zip_response(self.index, self.files, p["study"], p.get("series"),
                                             request.query_params.get("dicomdir"))
            except HTTPException as exc:
                raise self._explained(exc, p) from None
        located = self._locate(request)
        single = "sop" in request.path_params
        representation = wado.choose_representation(
            parse_accept(request.headers.get("accept")),
            {item.instance.transfer_syntax for item in located}, single=single)
        if not representation.multipart:
            item = located[0]
            wanted = representation.transfer_syntax or item.instance.transfer_syntax
            media_type = f"{wado.DICOM}; transfer-syntax={wanted}"
            if wanted == item.instance.transfer_syntax:
                return FileResponse(item.path, media_type=media_type)
            single_parts = wado.instance_parts([item], wanted, self.pixel_budget, self.stored)
            return StreamingResponse(next(single_parts)[1], media_type=media_type)
        boundary = new_boundary()
        syntax = representation.transfer_syntax
        media_type = f'multipart/related; type="{wado.DICOM}"; boundary={boundary}'
        if syntax:
            media_type += f"; transfer-syntax={syntax}"
        sendable = [item for item in located if representation.can_send(item.instance.transfer_syntax)]
        parts = wado.instance_parts(sendable, syntax, self.pixel_budget, self.stored)
        if single:
            parts = iter(list(parts))
        left_out = len(located) - len(sendable)
        if not left_out:
            return StreamingResponse(coalesced(write_parts(parts, boundary)), media_type=media_type)
        warning = (f'299 pacskit: "{left_out} of {len(located)} instances cannot be sent in {syntax} '
                   'and were left out; transfer-syntax=* sends them as stored"')
        return StreamingResponse(coalesced(write_parts(parts, boundary)), status_code=206,
                                 media_type=media_type, headers={"Warning": warning})

    def metadata(self, request: Request) -> Response:
        """The metadata of a study, series or instance (PS3.18 10.4.1.1.2)."""
        _accept_json(request)
        base_url = self.base_url(request)
        documents = []
        for item in self._locate(request):
            with self.stored.open(item.path) as ds:
                documents.append(wado.metadata(ds, base_url, item.instance.transfer_syntax))
        return Response(json.dumps(documents), media_type=DICOM_JSON)

    def frames(self, request: Request) -> Response:
        """Frames of an instance (PS3.18 10.4.1.1.4), natively compressed or not."""
        item = self._locate(request)[0]
        numbers = wado.frame_numbers(request.path_params["frames"])
        stored = item.instance.transfer_syntax
        media, decode = wado.choose_frame_type(parse_accept(request.headers.get("accept")), stored)
        syntax = stored if UID(stored).is_compressed and not decode else EXPLICIT_VR_LITTLE_ENDIAN
        part_type = f"{media}; transfer-syntax={syntax}"
        with self.stored.open(item.path, pixels=True) as ds:
            wado.check_frames(wado.check_image(ds), numbers)
            if decode:
                pixel_budget.check(ds, len(numbers), self.pixel_budget)
            parts = [(part_type, [wado.frame_bytes(ds, n, decode)]) for n in numbers]
        boundary = new_boundary()
        return Response(b"".join(write_parts(parts, boundary)),
                        media_type=f'multipart/related; type="{media}"; boundary={boundary}')

    def bulk(self, request: Request) -> Response:
        """Bulk data of an instance (PS3.18 10.4.1.1.5), one octet-stream part."""
        item = self._locate(request)[0]
        tag = wado.bulk_tag(request.path_params["tag"])
        with self.stored.open(item.path) as ds:
            value = wado.bulk_data(ds, item.instance.transfer_syntax, f"{tag:08X}")
        boundary = new_boundary()
        return Response(b"".join(write_parts([(wado.OCTET_STREAM, [value])], boundary)),
                        media_type=f'multipart/related; type="{wado.OCTET_STREAM}"; boundary={boundary}')

    def rendered(self, request: Request) -> Response:
        """A rendered frame of an instance (PS3.18 10.4.1.1.5): JPEG or PNG."""
        item = self._locate(request)[0]
        numbers = wado.frame_numbers(request.path_params.get("frames", "1"))
        if len(numbers) != 1:
            raise HTTPException(400, "one frame at a time can be rendered")
        params = request.query_params
        media = render.choose_rendered_type(parse_accept(request.headers.get("accept")), params.get("accept"))
        window = render.parse_window(params.get("window"))
        quality = _int_param(params.get("quality"), "quality", 90)
        with self.stored.open(item.path, pixels=True) as ds:
            wado.check_frames(wado.check_image(ds), numbers)
            pixel_budget.check(ds, 1, self.pixel_budget)
            body = render.render(ds, numbers[0], media, window=window, quality=quality,
                                 viewport=render.parse_viewport(params.get("viewport")))
        return Response(body, media_type=media)

    def thumbnail(self, request: Request) -> Response:
        """A thumbnail of a study, series, instance or frame (PS3.18 10.4.1.1.6): the
        rendered first frame — of the series' middle instance, of the study's first
        instance — reduced to ``viewport`` (128 × 128 by default)."""
        located = self._locate(request)
        item = located[len(located) // 2] if "series" in request.path_params else located[0]
        numbers = wado.frame_numbers(request.path_params.get("frames", "1"))
        params = request.query_params
        media = render.choose_rendered_type(parse_accept(request.headers.get("accept")), params.get("accept"))
        viewport = render.parse_viewport(params.get("viewport"), render.THUMBNAIL_SIZE)
        with self.stored.open(item.path, pixels=True) as ds:
            wado.check_frames(wado.check_image(ds), numbers[:1])
            pixel_budget.check(ds, 1, self.pixel_budget)
            body = render.render(ds, numbers[0], media, quality=80, viewport=viewport)
        return Response(body, media_type=media, headers={"Cache-Control": "private, max-age=60"})

    async def store(self, request: Request) -> Response:
        """Store instances (PS3.18 10.5), in any study or in the path's."""
        study = request.path_params.get("study")
        return await stow.store(request, self.ingest, self.max_body, self.base_url(request),
                                wado.check_uid(study) if study is not None else None)

    def wado_uri(self, request: Request) -> Response:
        """WADO-URI (PS3.18 9)."""
        return uri.retrieve(request, self.index, self.files, self.stored, pixel_budget=self.pixel_budget)

    def openapi(self, request: Request) -> Response:
        """The OpenAPI description of these routes."""
        return JSONResponse(openapi(self.base_url(request)))

    def _locate(self, request: Request) -> list[wado.Located]:
        p = request.path_params
        try:
            return wado.locate(self.index, self.files, p["study"], p.get("series"), p.get("sop"))
        except HTTPException as exc:
            raise self._explained(exc, p) from None

    def _explained(self, exc: HTTPException, p: dict[str, Any]) -> HTTPException:
        """A 404 for a study or series deleted in this run, said so."""
        reason = self.deletions.explain(p["study"], p.get("series")) if exc.status_code == 404 else None
        return HTTPException(404, reason) if reason else exc


def dicomweb_routes(web: DicomWeb, wrap: Callable[[Any], Any] = lambda handler: handler) -> list[Route]:
    """The Studies Service routes (PS3.18 10) under ``/dicom-web``; ``wrap`` is applied to
    the handlers that answer DICOM JSON (searches, counts, metadata)."""
    instance = "/studies/{study}/series/{series}/instances/{sop}"
    return [
        Route("/studies", wrap(web.search(Level.STUDY)), methods=["GET"]),
        Route("/studies", web.store, methods=["POST"]),
        Route("/series", wrap(web.search(Level.SERIES, (Level.STUDY,))), methods=["GET"]),
        Route("/instances", wrap(web.search(Level.IMAGE, (Level.STUDY, Level.SERIES))), methods=["GET"]),
        Route("/studies/count", wrap(web.count(Level.STUDY)), methods=["GET"]),
        Route("/series/count", wrap(web.count(Level.SERIES)), methods=["GET"]),
        Route("/instances/count", wrap(web.count(Level.IMAGE)), methods=["GET"]),
        Route("/studies/{study}/series/count", wrap(web.count(Level.SERIES)), methods=["GET"]),
        Route("/studies/{study}/instances/count", wrap(web.count(Level.IMAGE)), methods=["GET"]),
        Route("/studies/{study}/series/{series}/instances/count", wrap(web.count(Level.IMAGE)), methods=["GET"]),
        Route("/studies/{study}", web.retrieve, methods=["GET"]),
        Route("/studies/{study}", web.store, methods=["POST"]),
        Route("/studies/{study}/metadata", wrap(web.metadata), methods=["GET"]),
        Route("/studies/{study}/series", wrap(web.search(Level.SERIES)), methods=["GET"]),
        Route("/studies/{study}/instances", wrap(web.search(Level.IMAGE, (Level.SERIES,))), methods=["GET"]),
        Route("/studies/{study}/series/{series}", web.retrieve, methods=["GET"]),
        Route("/studies/{study}/series/{series}/metadata", wrap(web.metadata), methods=["GET"]),
        Route("/studies/{study}/series/{series}/instances", wrap(web.search(Level.IMAGE)), methods=["GET"]),
        Route(instance, web.retrieve, methods=["GET"]),
        Route(f"{instance}/metadata", wrap(web.metadata), methods=["GET"]),
        Route(f"{instance}/rendered", web.rendered, methods=["GET"]),
        Route(f"{instance}/frames/{{frames}}", web.frames, methods=["GET"]),
        Route(f"{instance}/bulk/{{tag}}", web.bulk, methods=["GET"]),
        Route(f"{instance}/frames/{{frames}}/rendered", web.rendered, methods=["GET"]),
        Route("/studies/{study}/thumbnail", web.thumbnail, methods=["GET"]),
        Route("/studies/{study}/series/{series}/thumbnail", web.thumbnail, methods=["GET"]),
        Route(f"{instance}/thumbnail", web.thumbnail, methods=["GET"]),
        Route(f"{instance}/frames/{{frames}}/thumbnail", web.thumbnail, methods=["GET"]),
        Route("/openapi.json", web.openapi, methods=["GET"]),
    ]


def create_app(archive: Archive) -> Starlette:
    """The ASGI application serving ``archive`` (see the module docstring), with
    authentication and CORS as ``archive.settings.web`` says, every request in the
    access log (:mod:`pacskit.web.access_log`)."""
    deletions = Deletions()
    web = DicomWeb(archive, deletions)
    actions = Actions(archive, deletions)
    settings = archive.settings.web
    middleware = [Middleware(AccessLogMiddleware, audit=archive.audit)]
    if settings.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                                     allow_methods=["GET", "POST", "DELETE", "OPTIONS"], allow_headers=["*"],
                                     expose_headers=["Warning", "Content-Location"]))
    if settings.authenticated:
        middleware.append(Middleware(AuthMiddleware, users=settings.passwords, tokens=settings.tokens))
    return Starlette(
        routes=[Mount(PREFIX, routes=dicomweb_routes(web)), Route("/wado", web.wado_uri, methods=["GET"]),
                *worklist_routes(archive), *mpps_routes(archive), *actions.routes(),
                *page_routes(web, settings.show_patient_names, settings.viewer_port)],
        middleware=middleware,
        exception_handlers={HTTPException: http_error, QueryError: query_error},
    )


def _path_uids(request: Request) -> dict[str, str]:
    return {key: wado.check_uid(request.path_params[name])
            for name, key in (("study", "StudyInstanceUID"), ("series", "SeriesInstanceUID"))
            if name in request.path_params}


def _accept_json(request: Request) -> None:
    if not any(media.covers(DICOM_JSON) or media.covers("application/json")
               for media in parse_accept(request.headers.get("accept"))):
        raise HTTPException(406, f"this resource is {DICOM_JSON}")


def _int_param(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise HTTPException(400, f"{name} must be an integer, not {value[:40]!r}")
    return int(value)


async def http_error(request: Request, exc: Any) -> Response:
    if request.url.path.startswith("/api/") or "json" in request.headers.get("accept", ""):
        return JSONResponse({"status": exc.status_code, "error": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)
    return PlainTextResponse(f"{exc.detail}\n", status_code=exc.status_code, headers=exc.headers)


async def query_error(request: Request, exc: Any) -> Response:
    return PlainTextResponse(f"{exc}\n", status_code=400)
