"""Sending files to a node: scan, filter, split over parallel associations, tally."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pacskit.errors import InputError, NetworkError, PacskitError
from pacskit.models import FileFailure, StoreProgress, StoreResult
from pacskit.net.status import Outcome
from pacskit.net.store import SendOutcome
from pacskit.nodes import Node
from pacskit.scan import DicomFile
from pacskit.settings import Settings

StoreProgressCallback = Callable[[StoreProgress], None]


class Tally:
    """Each file's outcome, added up into a :class:`StoreResult` and reported."""

    def __init__(self, result: StoreResult, total: int, progress: StoreProgressCallback | None,
                 started: float | None = None):
        self.result = result
        self.started = time.monotonic() if started is None else started
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

    def finished(self) -> StoreResult:
        """The result, its time taken set."""
        self.result.seconds = time.monotonic() - self.started
        return self.result


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

    check_parallel(parallel)
    source = FileSource(paths, patient_id=patient_id, study_uid=study_uid, series_uid=series_uid)
    sink = DimseSink(settings, node, parallel=parallel)
    try:
        return send(source, sink, progress)
    finally:
        sink.close()


def check_parallel(parallel: int) -> None:
    """Raises:
        InputError: ``parallel`` is below 1.
    """
    if parallel < 1:
        raise InputError(f"--parallel must be at least 1, not {parallel}")


def shares(files: list[DicomFile], parallel: int) -> list[list[DicomFile]]:
    """The files dealt over at most ``parallel`` associations."""
    workers = min(parallel, len(files))
    return [files[i::workers] for i in range(workers)]


def raise_if_none_sent(errors: list[PacskitError], tally: Tally) -> None:
    """Raise the first association's error when nothing was sent and it is a network one."""
    if errors and tally.result.sent == 0 and isinstance(errors[0], NetworkError):
        raise errors[0]
