"""Background jobs of the web actions: sending a study or series to a node of the nodes
table by C-STORE from the archive's files (docs/web-actions.md). Each job runs on a
thread of its own and is kept in memory (the last :data:`KEPT`) for its progress to be
polled (``GET /api/jobs/{id}``). A job asked to stop (``DELETE /api/jobs/{id}``) stops
once the instance in flight has its response: the association is aborted, what was sent
stays sent, the rest is not tried."""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydicom.errors import InvalidDicomError

from pacskit.archive.index import StoredInstance
from pacskit.errors import PacskitError
from pacskit.net.status import Outcome
from pacskit.net.store import SendOutcome, send_files
from pacskit.nodes import Node
from pacskit.scan import DicomFile, read_file
from pacskit.settings import Settings

LOG = logging.getLogger("pacskit.web")
KEPT = 100
LISTED_FAILURES = 100


@dataclass
class Job:
    """One send: where it stands (see the JSON shape in docs/web-actions.md)."""

    id: str
    node: str
    study: str
    series: str | None
    user: str | None
    total: int
    state: str = "queued"
    done: int = 0
    sent: int = 0
    failed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    created: str = field(default_factory=lambda: _now())
    finished: str | None = None
    stopping: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stop(self) -> bool:
        """Ask the job to stop; False if it has ended already."""
        with self.lock:
            if self.finished is not None:
                return False
            self.stopping = True
            self.message = f"stopping: {self.sent} of {self.done} sent"
            return True

    def snapshot(self) -> dict[str, Any]:
        """The job as the API answers it."""
        with self.lock:
            return {"id": self.id, "action": "send", "node": self.node, "study": self.study,
                    "series": self.series, "state": self.state, "total": self.total, "done": self.done,
                    "sent": self.sent, "failed": self.failed, "failures": list(self.failures),
                    "message": self.message, "user": self.user, "created": self.created,
                    "finished": self.finished}

    def count(self, outcome: SendOutcome) -> None:
        with self.lock:
            self.done += 1
            if outcome.outcome is Outcome.FAILURE:
                self.failed += 1
                if len(self.failures) < LISTED_FAILURES:
                    self.failures.append({"sop_instance_uid": outcome.file.sop_instance_uid,
                                          "status": outcome.status, "reason": outcome.reason})
            else:
                self.sent += 1
            self.message = f"{self.sent} of {self.done} sent"
            if self.stopping:
                raise _Stopped


class _Stopped(Exception):
    """The job was asked to stop: raised from its outcome handler, out of the send."""


class Jobs:
    """The jobs of one server, newest last; ``on_end`` is told of each job that ends.

    Args:
        settings: the server's settings (for the associations it opens).
        on_end: called with each job once it has ended.
    """

    def __init__(self, settings: Settings, on_end: Callable[[Job], None] | None = None) -> None:
        self.settings = settings
        self.on_end = on_end
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        """Every job kept, newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def send(self, node_name: str, node: Node, instances: list[StoredInstance], files: Path, *,
             study: str, series: str | None, user: str | None,
             queued: Callable[[Job], object] | None = None) -> Job:
        """Start sending ``instances`` (under the folder ``files``) to ``node``; the job.
        ``queued`` is called with it before it starts (so that what it records comes before
        anything the job records)."""
        job = Job(secrets.token_hex(8), node_name, study, series, user, total=len(instances))
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT:
                self._jobs.popitem(last=False)
        if queued is not None:
            queued(job)
        threading.Thread(target=self._run, args=(job, node, instances, files), daemon=True,
                         name=f"pacskit-send-{job.id}").start()
        return job

    def _run(self, job: Job, node: Node, instances: list[StoredInstance], files: Path) -> None:
        with job.lock:
            job.state = "running"
            stopped = job.stopping
        try:
            if not stopped:
                send_files(self.settings, node, [_file(files, item) for item in instances], job.count)
            error = None
        except _Stopped:
            stopped, error = True, None
        except PacskitError as exc:
            error = str(exc)
        except Exception as exc:
            LOG.exception("send job %s failed", job.id)
            error = f"{type(exc).__name__}: {exc}"
        with job.lock:
            missing = job.total - job.done
            if error is not None and missing:
                job.failed += missing
                job.done = job.total
            if stopped:
                job.state = "stopped"
                job.message = f"stopped: {job.sent} of {job.total} sent"
            else:
                job.state = "failed" if job.sent == 0 and job.total else "done"
                job.message = f"{job.sent} of {job.total} sent" + (f": {error}" if error else "")
            job.finished = _now()
        LOG.info("send job %s to %s: %s", job.id, job.node, job.message)
        if self.on_end is not None:
            self.on_end(job)


def _file(files: Path, item: StoredInstance) -> DicomFile:
    try:
        return read_file(files / item.path)
    except (OSError, PacskitError, InvalidDicomError, ValueError):
        return DicomFile(files / item.path, item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax,
                         item.size, 0)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
