"""The OpenAPI 3.1 description of the DICOMweb routes and of the web actions (``/api``,
docs/web-actions.md), served at ``/dicom-web/openapi.json``."""

from __future__ import annotations

from typing import Any

_STUDY = {"name": "study", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "Study Instance UID"}
_SERIES = {"name": "series", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "Series Instance UID"}
_SOP = {"name": "sop", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "SOP Instance UID"}
_FRAMES = {"name": "frames", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "Frame numbers from 1, comma-separated"}
_TAG = {"name": "tag", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{8}$"},
        "description": "Tag of a top-level binary attribute, eight hexadecimal digits"}
_SEARCH_PARAMS = [
    {"name": "includefield", "in": "query", "schema": {"type": "string"},
     "description": "Attributes to return too (keywords or tags, comma-separated), or all"},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "fuzzymatching", "in": "query", "schema": {"type": "boolean"},
     "description": "Accepted; literal matching is always performed"},
    {"name": "orderby", "in": "query", "schema": {"type": "string"},
     "description": "Sort the matches before offset and limit apply (dcm4chee-arc's extension): keywords "
                    "or tags, comma-separated, each prefixed with - for descending, e.g. -StudyDate,-StudyTime"},
]
_ERRORS = {"400": {"description": "Malformed request"}, "401": {"description": "Credentials needed"},
           "404": {"description": "Not stored"}, "406": {"description": "No acceptable media type"}}


def _get(summary: str, media: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params,
                    "responses": {"200": {"description": "OK", "content": {media: {}}}, **_ERRORS}}}


def _search(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    operation = _get(f"QIDO-RS: {summary} (PS3.18 10.6)", "application/dicom+json", [*params, *_SEARCH_PARAMS])
    operation["get"]["description"] = ("Any other query parameter is a matching key: a keyword or tag and "
                                       "its value (PS3.4 C.2.2.2 matching: wildcards, ranges, UID lists).")
    return operation


def _count(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    operation = _get(f"count the {summary}, paging aside (dcm4chee-arc's extension)", "application/json", params)
    operation["get"]["description"] = ('The same matching keys as the search; answers {"count": N}.')
    return operation


def _store(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {"post": {
        "summary": f"STOW-RS: {summary} (PS3.18 10.5)", "parameters": params,
        "requestBody": {"required": True, "content": {'multipart/related; type="application/dicom"': {}}},
        "responses": {"200": {"description": "All stored", "content": {"application/dicom+json": {}}},
                      "202": {"description": "Some stored", "content": {"application/dicom+json": {}}},
                      "409": {"description": "None stored", "content": {"application/dicom+json": {}}},
                      "413": {"description": "Body over the limit"},
                      "415": {"description": "Not multipart/related of application/dicom"}, **_ERRORS}}}


_ACTION_HEADER = {"name": "X-Pacskit-Action", "in": "header", "required": True, "schema": {"const": "1"},
                  "description": "Required on every change (the CSRF rule, docs/web-actions.md)"}
_JOB = {"name": "job", "in": "path", "required": True, "schema": {"type": "string"}, "description": "Job id"}
_ACTION_ERRORS = {"400": {"description": "Malformed request"}, "401": {"description": "Credentials needed"},
                  "403": {"description": "Not allowed for this user, or a foreign Origin"},
                  "404": {"description": "Not stored (or deleted)"}}


def _action(method: str, summary: str, params: list[dict[str, Any]], ok: str = "200",
            body: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "parameters": params,
                                 "responses": {ok: {"description": "OK", "content": {"application/json": {}}},
                                               **_ACTION_ERRORS}}
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["node"], "properties": {"node": {"type": "string"}}}}}}
    return {method: operation}


def action_paths(origin: str) -> dict[str, Any]:
    """The web actions' paths (``/api``, outside the Studies Service), each with ``origin``
    as its server."""
    servers = {"servers": [{"url": origin}]}
    changed = [_ACTION_HEADER]
    return {
        "/api/studies/{study}": {**servers, **_action("delete", "Delete a study: its files and index rows",
                                                      [_STUDY, *changed])},
        "/api/studies/{study}/series/{series}": {**servers, **_action(
            "delete", "Delete a series: its files and index rows", [_STUDY, _SERIES, *changed])},
        "/api/studies/{study}/send": {**servers, **_action(
            "post", "Send a study to a configured node (C-STORE); answers the job", [_STUDY, *changed], "202", True)},
        "/api/studies/{study}/series/{series}/send": {**servers, **_action(
            "post", "Send a series to a configured node (C-STORE); answers the job", [_STUDY, _SERIES, *changed],
            "202", True)},
        "/api/jobs": {**servers, **_action("get", "The recent send jobs (the last 100, kept in memory)", [])},
        "/api/jobs/{job}": {**servers, **_action("get", "One send job: state, done/total, failures", [_JOB]),
                            **_action("delete", "Stop a send job after the instance in flight",
                                      [_JOB, *changed], "202")},
        "/api/nodes": {**servers, **_action("get", "The configured nodes a study can be sent to", [])},
        "/api/me": {**servers, **_action("get", "The caller and the actions it may take", [])},
    }


def openapi(server_url: str) -> dict[str, Any]:
    """The OpenAPI document, with ``server_url`` (the ``/dicom-web`` root) as its server."""
    instance = "/studies/{study}/series/{series}/instances/{sop}"
    multipart_dicom = 'multipart/related; type="application/dicom"'
    paths: dict[str, Any] = {
        "/studies": {**_search("search for studies", []), **_store("store instances", [])},
        "/series": _search("search for series", []),
        "/instances": _search("search for instances", []),
        "/studies/count": _count("matching studies", []),
        "/series/count": _count("matching series", []),
        "/instances/count": _count("matching instances", []),
        "/studies/{study}/series/count": _count("matching series of a study", [_STUDY]),
        "/studies/{study}/instances/count": _count("matching instances of a study", [_STUDY]),
        "/studies/{study}/series/{series}/instances/count": _count("matching instances of a series",
                                                                   [_STUDY, _SERIES]),
        "/studies/{study}": {**_get("WADO-RS: retrieve a study (PS3.18 10.4)", multipart_dicom, [_STUDY]),
                             **_store("store instances of this study", [_STUDY])},
        "/studies/{study}/metadata": _get("WADO-RS: study metadata", "application/dicom+json", [_STUDY]),
        "/studies/{study}/series": _search("search for the series of a study", [_STUDY]),
        "/studies/{study}/instances": _search("search for the instances of a study", [_STUDY]),
        "/studies/{study}/series/{series}": _get("WADO-RS: retrieve a series", multipart_dicom, [_STUDY, _SERIES]),
        "/studies/{study}/series/{series}/metadata": _get("WADO-RS: series metadata", "application/dicom+json",
                                                          [_STUDY, _SERIES]),
        "/studies/{study}/series/{series}/instances": _search("search for the instances of a series",
                                                              [_STUDY, _SERIES]),
        instance: _get("WADO-RS: retrieve an instance", multipart_dicom, [_STUDY, _SERIES, _SOP]),
        f"{instance}/metadata": _get("WADO-RS: instance metadata", "application/dicom+json", [_STUDY, _SERIES, _SOP]),
        f"{instance}/rendered": _get("WADO-RS: rendered instance (JPEG or PNG)", "image/jpeg",
                                     [_STUDY, _SERIES, _SOP]),
        f"{instance}/frames/{{frames}}": _get("WADO-RS: frames, native or uncompressed",
                                              'multipart/related; type="application/octet-stream"',
                                              [_STUDY, _SERIES, _SOP, _FRAMES]),
        f"{instance}/frames/{{frames}}/rendered": _get("WADO-RS: a rendered frame", "image/jpeg",
                                                       [_STUDY, _SERIES, _SOP, _FRAMES]),
        f"{instance}/bulk/{{tag}}": _get("WADO-RS: bulk data named by a BulkDataURI in the metadata",
                                         'multipart/related; type="application/octet-stream"',
                                         [_STUDY, _SERIES, _SOP, _TAG]),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "pacskit DICOMweb", "version": "1",
                 "description": "The Studies Service of PS3.18 over the pacskit archive. WADO-URI is at "
                                "/wado on the same host (PS3.18 9)."},
        "servers": [{"url": server_url}],
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                                           "bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {**paths, **action_paths(server_url.removesuffix("/dicom-web"))},
    }
