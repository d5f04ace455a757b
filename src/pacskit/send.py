"""Sending files to a node (``pacskit store``): each file's outcome tallied; the files go
through :mod:`pacskit.file_source` into a sink."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from pacskit.errors import InputError
from pacskit.models import FileFailure, StoreProgress, StoreResult
from pacskit.net.status import Outcome
from pacskit.net.store import SendOutcome
from pacskit.nodes import Node
from pacskit.settings import Settings

StoreProgressCallback = Callable[[StoreProgress], None]


class Tally:
    """Each file's outcome, added up into a :class:`StoreResult` and reported."""

    def __init__(self, result: StoreResult, total: int, progress: StoreProgressCallback | None):
        self.result = result
        self.state = StoreProgress(total=total)
        self.progress = progress
        self.lock = threading.Lock()

    def __call__(self, outcome: SendOutcome) -> None:
        with self.lock:
            if outcome.outcome is Outcome.FAILURE:
                self.result.failed += 1
                self.result.failures.append(FileFailure(path=outcome.file.path, reason=outcome.reason,
                                                        status=outcome.status))
                self.state.failed += 1
            else:
                self.result.sent += 1
                self.result.bytes += outcome.file.size
                self.result.warning += outcome.outcome is Outcome.WARNING
                self.result.converted += outcome.converted
                self.state.bytes = self.result.bytes
            self.state.done += 1
            snapshot = self.state.model_copy()
        if self.progress is not None:
            self.progress(snapshot)


def store(settings: Settings, node: Node, paths: Iterable[Path | str], *,
          patient_id: str | None = None, study_uid: str | None = None,
          series_uid: str | None = None, parallel: int = 1,
          progress: StoreProgressCallback | None = None) -> StoreResult:
    """C-STORE the DICOM files under ``paths`` to ``node`` over ``parallel`` associations:
    a copy of files to a node (:func:`pacskit.file_source.send` into a
    :class:`~pacskit.sinks.DimseSink`).

    Raises:
        InputError: ``parallel`` below 1, a path does not exist, or no DICOM file is left to send.
        NetworkError: every association failed (the same error for all of them).
    """
    from pacskit.file_source import FileSource, send
    from pacskit.sinks import DimseSink

    if parallel < 1:
        raise InputError(f"--parallel must be at least 1, not {parallel}")
    source = FileSource(paths, patient_id=patient_id, study_uid=study_uid, series_uid=series_uid)
    sink = DimseSink(settings, node, parallel=parallel)
    try:
        return send(source, sink, progress)
    finally:
        sink.close()
