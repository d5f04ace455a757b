"""The OHIF Viewer beside the archive (``pacskit serve --ohif DIR``): an unpacked build of
the npm package ``@ohif/app`` (its ``dist`` folder), served on a port of its own.

OHIF's build refers to its files from the root of its origin (``/app.bundle.….js``), so it
gets an origin of its own: ``[web] ohif_port``, by default the one after the DICOMweb
port. That origin also answers the archive's DICOMweb at ``/dicom-web`` — the same
handlers, the same authentication — so the viewer's requests are same-origin: no CORS
to configure, and the browser's HTTP Basic prompt on the first page covers them all.

- ``/app-config.js`` is written here, not read from the build: one data source, pacskit's
  DICOMweb on this origin (QIDO-RS with ``includefield``, WADO-RS, frames and bulk data).
- Every response carries ``Cross-Origin-Opener-Policy: same-origin`` and
  ``Cross-Origin-Embedder-Policy: require-corp``: the cross-origin isolation OHIF's
  volume (3D, MPR) modes need for ``SharedArrayBuffer``, the most reported failure of its
  deployments. Everything the page loads is same-origin, which ``require-corp`` admits.
- A path that names no file of the build is OHIF's own route (``/viewer?…``): its
  ``index.html`` answers, as its single-page router expects.
- Names: OHIF shows what the searches and metadata answer, so on this origin those
  withhold the patient's names as the built-in page's do (:func:`pacskit.web.page.names_withheld`)
  unless ``[web] show_patient_names`` is on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacskit.errors import ConfigError, QueryError
from pacskit.web.access_log import AccessLogMiddleware
from pacskit.web.auth import AuthMiddleware
from pacskit.web.page import names_withheld

if TYPE_CHECKING:
    from pacskit.archive.server import Archive

ISOLATION_HEADERS = ((b"cross-origin-opener-policy", b"same-origin"),
                     (b"cross-origin-embedder-policy", b"require-corp"),
                     (b"cross-origin-resource-policy", b"same-origin"))
DATA_SOURCE = "pacskit"


def check_build(directory: Path) -> Path:
    """``directory`` if it holds an OHIF build (an ``index.html`` and an
    ``app.bundle.css`` or a ``*.bundle.*.js``).

    Raises:
        ConfigError: it does not.
    """
    if not (directory / "index.html").is_file() or not any(directory.glob("*.bundle.*js")):
        raise ConfigError(f"{directory} is not an unpacked OHIF Viewer build (the dist folder of "
                          "@ohif/app, with index.html and its bundles)")
    return directory.resolve()


def app_config(show_names: bool) -> str:
    """OHIF's ``app-config.js``: pacskit's DICOMweb on the same origin as its one data source."""
    config = {
        "routerBasename": "/",
        "extensions": [], "modes": [],
        "showStudyList": True,
        "showWarningMessageForCrossOrigin": False,
        "maxNumberOfWebWorkers": 2,
        "defaultDataSourceName": DATA_SOURCE,
        "dataSources": [{
            "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
            "sourceName": DATA_SOURCE,
            "configuration": {
                "friendlyName": "pacskit archive", "name": DATA_SOURCE,
                "qidoRoot": "/dicom-web", "wadoRoot": "/dicom-web", "wadoUriRoot": "/wado",
                "qidoSupportsIncludeField": True, "supportsReject": False, "supportsFuzzyMatching": False,
                "supportsWildcard": True, "imageRendering": "wadors", "thumbnailRendering": "wadors",
                "enableStudyLazyLoad": True, "staticWado": False, "singlepart": "bulkdata,video",
                "omitQuotationForMultipartRequest": True,
                "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
            },
        }],
    }
    shown = "shown" if show_names else "withheld by pacskit"
    return f"/* Written by pacskit serve; patient names are {shown}. */\nwindow.config = {json.dumps(config, indent=2)};\n"


class _Isolated:
    """Cross-origin isolation headers on every response (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def isolated(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *ISOLATION_HEADERS]
            await send(message)

        await self.app(scope, receive, isolated)


def create_ohif_app(archive: Archive, directory: Path) -> Starlette:
    """The OHIF origin's application: the build in ``directory`` (checked by
    :func:`check_build`), its ``app-config.js``, and the archive's DICOMweb with names as
    ``[web] show_patient_names`` says."""
    from pacskit.web.app import PREFIX, DicomWeb, dicomweb_routes, http_error, query_error

    settings = archive.settings.web
    root = check_build(directory)
    web = DicomWeb(archive)
    config = app_config(settings.show_patient_names)

    def app_config_js(request: Request) -> Response:
        return Response(config, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    def build_file(request: Request) -> Response:
        wanted = (root / request.path_params["path"]).resolve()
        if wanted.is_relative_to(root) and wanted.is_file() and wanted.name != "app-config.js":
            return FileResponse(wanted)
        if request.path_params["path"].startswith(("dicom-web/", "wado")):
            raise HTTPException(404, "not found")
        return FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})

    middleware = [Middleware(_Isolated), Middleware(AccessLogMiddleware, audit=archive.audit)]
    if settings.authenticated:
        middleware.append(Middleware(AuthMiddleware, users=settings.passwords, tokens=settings.tokens))
    return Starlette(
        routes=[Mount(PREFIX, routes=dicomweb_routes(web, lambda h: names_withheld(h, settings.show_patient_names))),
                Route("/app-config.js", app_config_js, methods=["GET"]),
                Route("/{path:path}", build_file, methods=["GET"])],
        middleware=middleware,
        exception_handlers={HTTPException: http_error, QueryError: query_error},
    )
