"""The archive's web page: a study list, a study's series, a viewer (``/``, its files
under ``/ui``), over the archive's own DICOMweb. The browser decodes nothing DICOM: the
images are the rendered resources of WADO-RS (PS3.18 10.4.1.1.5, 10.4.1.1.6).

The page searches and reads metadata through ``/ui/api``, the same Search Transaction
and Metadata resources as ``/dicom-web`` (PS3.18 10.6, 10.4.1.1.2) answered by the same
handlers, with the patient's names (:data:`pacskit.privacy.PATIENT_NAME_KEYWORDS`)
deleted at every depth unless ``[web] show_patient_names`` is on: no name reaches the
page's DOM or its network payloads by default. ``/dicom-web`` itself answers what the
archive stores, as before. Authentication is the application's, the same as DICOMweb.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from pydicom._dicom_dict import DicomDictionary
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pacskit.errors import QueryError
from pacskit.privacy import PATIENT_NAME_KEYWORDS, PATIENT_NAME_TAGS
from pacskit.query import Level, keyword_of

if TYPE_CHECKING:
    from pacskit.web.app import DicomWeb

ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html"}
NAME_KEYS = frozenset(f"{tag:08X}" for tag in PATIENT_NAME_TAGS)
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'"}


def page_routes(web: DicomWeb, show_names: bool, ohif_port: int | None = None) -> list[Route]:
    """The page's routes: ``/``, ``/ui/{asset}``, ``/ui/api/…`` (see the module docstring);
    ``ohif_port``: where ``serve --ohif`` serves OHIF, for the page's links to it."""
    instance = "/ui/api/studies/{study}/series/{series}/instances/{sop}"

    def withheld(handler: Any) -> Any:
        return names_withheld(handler, show_names)

    return [
        Route("/", index, methods=["GET"]),
        Route("/ui/api/config", lambda request: JSONResponse({"showPatientNames": show_names, "actions": True,
                                                              "ohifPort": ohif_port}),
              methods=["GET"]),
        Route("/ui/api/dictionary", dictionary, methods=["GET"]),
        Route("/ui/api/studies", withheld(web.search(Level.STUDY)), methods=["GET"]),
        Route("/ui/api/studies/count", withheld(web.count(Level.STUDY)), methods=["GET"]),
        Route("/ui/api/studies/{study}/series", withheld(web.search(Level.SERIES)), methods=["GET"]),
        Route("/ui/api/studies/{study}/series/{series}/instances", withheld(web.search(Level.IMAGE)),
              methods=["GET"]),
        Route(f"{instance}/metadata", withheld(web.metadata), methods=["GET"]),
        Route("/ui/{asset}", asset, methods=["GET"]),
    ]


def names_withheld(handler: Any, show_names: bool) -> Any:
    """``handler`` (a DICOM JSON answer) with the patient's names stripped from its answer
    and refused as search or order keys — unless ``show_names``."""
    if show_names:
        return handler

    def wrapped(request: Request) -> Response:
        _refuse_name_keys(request)
        response: Response = handler(request)
        if response.status_code != 200:
            return response
        document = strip_names(json.loads(bytes(response.body)))
        return Response(json.dumps(document), media_type=response.media_type,
                        headers={k: v for k, v in response.headers.items() if k.lower() == "warning"})
    return wrapped


def _refuse_name_keys(request: Request) -> None:
    """With names withheld, a search may neither match nor sort on them: the answers'
    order or membership would tell what the page does not show."""
    for name, value in request.query_params.multi_items():
        asked = value.split(",") if name.lower() == "orderby" else [name]
        for item in asked:
            try:
                keyword = keyword_of(item.strip().lstrip("-"))
            except QueryError:
                continue
            if keyword in PATIENT_NAME_KEYWORDS:
                raise HTTPException(400, f"{keyword} cannot be searched or sorted on: patient names are withheld")


def strip_names(document: Any) -> Any:
    """DICOM JSON (PS3.18 F.2) without the patient's names, in sequences too."""
    if isinstance(document, list):
        return [strip_names(item) for item in document]
    if isinstance(document, dict):
        out = {}
        for key, element in document.items():
            if key.upper() in NAME_KEYS:
                continue
            if isinstance(element, dict) and element.get("vr") == "SQ" and "Value" in element:
                element = {**element, "Value": [strip_names(item) for item in element["Value"]]}
            out[key] = element
        return out
    return document


def index(request: Request) -> Response:
    """The page."""
    return asset_response("index.html")


def asset(request: Request) -> Response:
    """One of the page's files; 404 for any other name."""
    name = request.path_params["asset"]
    if name not in ASSETS:
        raise HTTPException(404, f"no such file: {name[:80]}")
    return asset_response(name)


def asset_response(name: str) -> Response:
    return Response(_asset(name), media_type=ASSETS[name],
                    headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})


@cache
def _asset(name: str) -> bytes:
    return files("pacskit.web").joinpath("ui", name).read_bytes()


def dictionary(request: Request) -> Response:
    """Tag (eight hex digits) → keyword, for the page's attribute panel (PS3.6)."""
    return Response(_dictionary(), media_type="application/json", headers={"Cache-Control": "max-age=86400"})


@cache
def _dictionary() -> bytes:
    return json.dumps({f"{tag:08X}": entry[4] for tag, entry in DicomDictionary.items() if entry[4]}).encode()
