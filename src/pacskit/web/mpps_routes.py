"""The archive's Modality Performed Procedure Steps over HTTP, read only: ``GET /mpps``
(``?status=``) lists them, ``GET /mpps/{uid}`` answers one, each as ``{"uid", "status",
"created_by", "created", "updated", "step"}`` with the step in DICOM JSON (PS3.18 F.2).
Steps are made and changed by N-CREATE and N-SET only (PS3.4 F.7). A pacskit interface,
behind the same authentication as DICOMweb. Errors: 400 for an unknown status, 404 for
an unknown step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pacskit.mpps.model import StepStatus

if TYPE_CHECKING:
    from pacskit.archive.mpps import PerformedSteps
    from pacskit.archive.server import Archive

PREFIX = "/mpps"


class MppsRoutes:
    """The handlers, over one archive's steps."""

    def __init__(self, steps: PerformedSteps) -> None:
        self.steps = steps

    def list(self, request: Request) -> Response:
        status = request.query_params.get("status")
        try:
            wanted = StepStatus.parse(status) if status else None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse([s.to_json() for s in self.steps.steps(wanted)])

    def get(self, request: Request) -> Response:
        stored = self.steps.get(request.path_params["uid"])
        if stored is None:
            raise HTTPException(404, f"no performed procedure step {request.path_params['uid'][:64]}")
        return JSONResponse(stored.to_json())


def mpps_routes(archive: Archive) -> list[Route]:
    """The routes under :data:`PREFIX`."""
    routes = MppsRoutes(archive.mpps)
    return [Route(PREFIX, routes.list, methods=["GET"]), Route(f"{PREFIX}/{{uid}}", routes.get, methods=["GET"])]
