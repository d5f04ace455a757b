"""The web page's actions on the archive, under ``/api`` (docs/web-actions.md): delete a
study or series, send one to a node of the nodes table (a background job whose progress
is polled), and what the caller may do. Actions that change something pass the CSRF
rule (:mod:`pacskit.web.csrf`) and need the permission (``actions`` of a user,
``token_actions``, ``anonymous_actions``); each leaves an ``action`` record in the audit
trail. Answers are JSON, errors ``{"status": …, "error": …}``."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pacskit.archive.deletion import delete
from pacskit.query import Level, Query
from pacskit.settings import WebAction
from pacskit.web import csrf, wado
from pacskit.web.access_log import USER_KEY
from pacskit.web.jobs import Job, Jobs

if TYPE_CHECKING:
    from pacskit.archive.server import Archive

REMEMBERED_DELETIONS = 10_000
_VERBS = {"delete": "delete", "send": "send"}


class Deletions:
    """The studies and series deleted in this run (the last :data:`REMEMBERED_DELETIONS`),
    so that a request for one is told it was deleted, not only that it is not there."""

    def __init__(self) -> None:
        self._deleted: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, level: str, uids: list[str]) -> None:
        with self._lock:
            for uid in uids:
                self._deleted[uid] = level
                self._deleted.move_to_end(uid)
            while len(self._deleted) > REMEMBERED_DELETIONS:
                self._deleted.popitem(last=False)

    def explain(self, study: str, series: str | None = None) -> str | None:
        """"study … has been deleted" (or the series), if it was."""
        with self._lock:
            for uid in (series, study):
                if uid is not None and uid in self._deleted:
                    return f"{self._deleted[uid]} {uid} has been deleted"
        return None


class Actions:
    """The handlers, over one archive.

    Args:
        archive: the open archive.
        deletions: where deletions are remembered (shared with the DICOMweb routes).
    """

    def __init__(self, archive: Archive, deletions: Deletions) -> None:
        self.archive = archive
        self.web = archive.settings.web
        self.deletions = deletions
        self.jobs = Jobs(archive.settings, on_end=self._ended)

    def routes(self) -> list[Route]:
        return [
            Route("/api/studies/{study}", self.delete, methods=["DELETE"]),
            Route("/api/studies/{study}/series/{series}", self.delete, methods=["DELETE"]),
            Route("/api/studies/{study}/send", self.send, methods=["POST"]),
            Route("/api/studies/{study}/series/{series}/send", self.send, methods=["POST"]),
            Route("/api/jobs", self.list_jobs, methods=["GET"]),
            Route("/api/jobs/{job}", self.job, methods=["GET"]),
            Route("/api/jobs/{job}", self.stop_job, methods=["DELETE"]),
            Route("/api/nodes", self.nodes, methods=["GET"]),
            Route("/api/me", self.me, methods=["GET"]),
        ]

    async def delete(self, request: Request) -> Response:
        """Delete a study or series: its rows and files (:mod:`pacskit.archive.deletion`)."""
        study, series = self._uids(request)
        self._permit(request, "delete", changes=True, study_uid=study, series_uid=series)
        deleted = await run_in_threadpool(delete, self.archive.index, self.archive.ingest, study, series)
        if deleted is None:
            self._record(request, "delete", "not found", study_uid=study, series_uid=series)
            raise HTTPException(404, self.deletions.explain(study, series) or _missing(study, series))
        self.deletions.remember("series", deleted.series)
        if series is None:
            self.deletions.remember("study", [study])
        self._record(request, "delete", "ok", study_uid=study, series_uid=series, instances=deleted.instances)
        return JSONResponse({"deleted": {"study": study, "series": deleted.series,
                                         "instances": deleted.instances}})

    async def send(self, request: Request) -> Response:
        """Start sending a study or series to a node; 202 and the job."""
        study, series = self._uids(request)
        self._permit(request, "send", changes=True, study_uid=study, series_uid=series)
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, "the body must be JSON: {\"node\": \"NAME\"}") from None
        name = body.get("node") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise HTTPException(400, "the body must name the node: {\"node\": \"NAME\"}")
        if name not in _sendable(self.archive):
            known = ", ".join(sorted(_sendable(self.archive))) or "none configured"
            raise HTTPException(404, f"no node {name[:64]!r} with a DICOM address (known: {known})")
        node = self.archive.settings.resolve_node(name)
        match = {"StudyInstanceUID": study, **({"SeriesInstanceUID": series} if series else {})}
        level = Level.SERIES if series else Level.STUDY
        instances = await run_in_threadpool(
            lambda: list(self.archive.index.instances(Query(level=level, match=match))))
        if not instances:
            raise HTTPException(404, self.deletions.explain(study, series) or _missing(study, series))
        user = request.scope.get(USER_KEY)
        job = self.jobs.send(name, node, instances, self.archive.ingest.files, study=study, series=series,
                             user=user, queued=lambda job: self._record(
                                 request, "send", "queued", study_uid=study, series_uid=series, node=name,
                                 job=job.id, instances=len(instances)))
        return JSONResponse(job.snapshot(), status_code=202, headers={"Location": f"/api/jobs/{job.id}"})

    def list_jobs(self, request: Request) -> Response:
        self._permit(request, "send")
        return JSONResponse({"jobs": [job.snapshot() for job in self.jobs.all()]})

    def job(self, request: Request) -> Response:
        self._permit(request, "send")
        return JSONResponse(self._job(request).snapshot())

    def stop_job(self, request: Request) -> Response:
        """Stop a send job after the instance in flight; 202 and the job, 409 if it has ended."""
        self._permit(request, "send", changes=True)
        job = self._job(request)
        if not job.stop():
            raise HTTPException(409, f"job {job.id} has ended ({job.state})")
        self._record(request, "send", "stop asked", job=job.id)
        return JSONResponse(job.snapshot(), status_code=202)

    def _job(self, request: Request) -> Job:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            raise HTTPException(404, f"no job {request.path_params['job'][:40]!r} (jobs are kept in memory, "
                                     "the last 100)")
        return job

    def nodes(self, request: Request) -> Response:
        return JSONResponse({"nodes": [{"name": name, "ae_title": ae_title}
                                       for name, ae_title in sorted(_sendable(self.archive).items())]})

    def me(self, request: Request) -> Response:
        user = request.scope.get(USER_KEY)
        return JSONResponse({"user": user, "actions": self.web.actions_of(user)})

    def _uids(self, request: Request) -> tuple[str, str | None]:
        series = request.path_params.get("series")
        return wado.check_uid(request.path_params["study"]), wado.check_uid(series) if series else None

    def _permit(self, request: Request, action: WebAction, *, changes: bool = False, **about: Any) -> None:
        """Raises:
            HTTPException: 403, the CSRF rule is broken or the caller may not."""
        if changes:
            reason = csrf.refusal(request, self.web.cors_origins)
            if reason is not None:
                self._record(request, action, "refused", reason="csrf", **about)
                raise HTTPException(403, reason)
        user = request.scope.get(USER_KEY)
        if action in self.web.actions_of(user):
            return
        if changes:
            self._record(request, action, "refused", reason="permission", **about)
        if user is None:
            raise HTTPException(403, f"anonymous requests may not {_VERBS[action]}: configure web.users with "
                                     f'actions = ["{action}"], or web.anonymous_actions')
        setting = "web.token_actions" if user == "(token)" else f"web.users.{user}.actions"
        raise HTTPException(403, f"{user} may not {_VERBS[action]} ({setting})")

    def _record(self, request: Request, action: str, outcome: str, **fields: Any) -> None:
        if self.archive.audit is None:
            return
        client = request.scope.get("client")
        self.archive.audit.record("action", action=action, outcome=outcome, user=request.scope.get(USER_KEY),
                                  address=client[0] if client else None, **fields)

    def _ended(self, job: Job) -> None:
        if self.archive.audit is None:
            return
        state = job.snapshot()
        self.archive.audit.record("action", action="send", outcome=state["state"], user=job.user,
                                  node=job.node, study_uid=job.study, series_uid=job.series, job=job.id,
                                  sent=state["sent"], failed=state["failed"])


def _sendable(archive: Archive) -> dict[str, str]:
    """Name → AE title of the nodes with a DICOM address."""
    return {name: node.ae_title for name, node in archive.settings.nodes.items() if node.ae_title and node.host}


def _missing(study: str, series: str | None) -> str:
    return f"no such series: {series}" if series else f"no such study: {study}"

