"""A web service like the notes' FastAPI routes, on Starlette (a dependency of pacskit):
find a patient's studies, retrieve a study to storage, answer JSON."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pacskit import AsyncClient, Node
from pacskit.level_queries import StudyQuery


def library_app(client: AsyncClient, pacs: Node | str, storage: Path) -> Starlette:
    """``GET /dicom/studies/{patient_id}`` and ``POST /dicom/studies/{study_uid}/retrieve``."""

    async def find_patient_studies(request: Request) -> JSONResponse:
        query = StudyQuery(patient_id=request.path_params["patient_id"])
        studies = await client.find_studies(pacs, query, timeout=60)
        return JSONResponse({"studies": [study.model_dump(mode="json") for study in studies]})

    async def retrieve_study(request: Request) -> Response:
        study_uid = request.path_params["study_uid"]
        result = await client.get_study(pacs, study_uid, storage / study_uid, timeout=120)
        return Response(result.model_dump_json(include={"status", "completed", "failed", "warning",
                                                        "remaining", "failed_instances", "files"}),
                        media_type="application/json")

    return Starlette(routes=[
        Route("/dicom/studies/{patient_id}", find_patient_studies),
        Route("/dicom/studies/{study_uid}/retrieve", retrieve_study, methods=["POST"]),
    ])
