"""The archive's worklist over HTTP, at ``/worklist``: create items (POST, a DICOM JSON
object or a list of them, PS3.18 F.2), list them (GET, ``?status=``), get one and delete
one (``/worklist/{uid}``). An item is answered as ``{"uid", "status", "created",
"item"}``. A pacskit interface, not a DICOMweb service: UPS-RS (PS3.18 11) is the
Standard's, and a different model.

Errors: 400 with the reason for what is not a worklist item (PS3.4 Table K.6-1), 404 for
an unknown item, 409 for a step already on the worklist.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pacskit.archive.worklist import DuplicateItem, Worklist
from pacskit.worklist.items import InvalidItem, from_json, item_uid
from pacskit.worklist.model import ItemStatus

if TYPE_CHECKING:
    from pacskit.archive.server import Archive

PREFIX = "/worklist"
MAX_BODY = 16 << 20


class WorklistRoutes:
    """The handlers, over one archive's worklist."""

    def __init__(self, archive: Archive) -> None:
        self.worklist = Worklist(archive.index)

    async def create(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"a worklist request body is at most {MAX_BODY} bytes")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise HTTPException(400, f"not JSON: {exc}") from None
        try:
            items = from_json(document, "request")
            stored = [self.worklist.add(item, item_uid(item)) for item in items]
        except InvalidItem as exc:
            raise HTTPException(400, str(exc)) from None
        except DuplicateItem as exc:
            raise HTTPException(409, str(exc)) from None
        headers = {"Location": str(request.url_for("worklist_item", uid=stored[0].uid))} if len(stored) == 1 else None
        return JSONResponse([s.to_json() for s in stored], status_code=201, headers=headers)

    def list(self, request: Request) -> Response:
        status = request.query_params.get("status")
        try:
            wanted = ItemStatus.parse(status) if status else None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse([s.to_json() for s in self.worklist.items(wanted)])

    def get(self, request: Request) -> Response:
        stored = self.worklist.get(request.path_params["uid"])
        if stored is None:
            raise HTTPException(404, f"no worklist item {request.path_params['uid'][:64]}")
        return JSONResponse(stored.to_json())

    def delete(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        if not self.worklist.remove(uid):
            raise HTTPException(404, f"no worklist item {uid[:64]}")
        return Response(status_code=204)


def worklist_routes(archive: Archive) -> list[Route]:
    """The routes under :data:`PREFIX`."""
    routes = WorklistRoutes(archive)
    return [
        Route(PREFIX, routes.list, methods=["GET"]),
        Route(PREFIX, routes.create, methods=["POST"]),
        Route(f"{PREFIX}/{{uid}}", routes.get, methods=["GET"], name="worklist_item"),
        Route(f"{PREFIX}/{{uid}}", routes.delete, methods=["DELETE"]),
    ]
