"""Sending files to a node: scan, filter, split over parallel associations, tally."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pacskit.errors import InputError, NetworkError, PacskitError
from pacskit.models import FileFailure, StoreProgress, StoreResult
from pacskit.net.status import Outcome
from pacskit.net.store import SendOutcome, send_files
from pacskit.nodes import Node
from pacskit.scan import DicomFile, scan
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
    """C-STORE the DICOM files under ``paths`` to ``node`` over ``parallel`` associations.

    Raises:
        InputError: a path does not exist, or no DICOM file is left to send.
        NetworkError: every association failed (the same error for all of them).
    """
    check_parallel(parallel)

    def send(files: list[DicomFile], tally: Tally) -> None:
        split = shares(files, parallel)
        errors: list[PacskitError] = []
        with ThreadPoolExecutor(max_workers=len(split), thread_name_prefix="pacskit-store") as pool:
            for future in [pool.submit(send_files, settings, node, share, tally) for share in split]:
                try:
                    future.result()
                except PacskitError as exc:
                    errors.append(exc)
        raise_if_none_sent(errors, tally)

    return store_with(send, paths, patient_id=patient_id, study_uid=study_uid,
                      series_uid=series_uid, progress=progress)


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


def store_with(send: Callable[[list[DicomFile], Tally], None], paths: Iterable[Path | str], *,
               patient_id: str | None = None, study_uid: str | None = None,
               series_uid: str | None = None,
               progress: StoreProgressCallback | None = None) -> StoreResult:
    """Scan ``paths``, keep the files that pass the filters, and have ``send`` store them,
    telling the :class:`Tally` each file's outcome (C-STORE or STOW-RS alike).

    Raises:
        InputError: a path does not exist, or no DICOM file is left to send.
        NetworkError: as ``send`` raises it.
    """
    files, tally = scanned(paths, patient_id=patient_id, study_uid=study_uid, series_uid=series_uid,
                           progress=progress)
    send(files, tally)
    return tally.finished()


def scanned(paths: Iterable[Path | str], *, patient_id: str | None = None, study_uid: str | None = None,
            series_uid: str | None = None,
            progress: StoreProgressCallback | None = None) -> tuple[list[DicomFile], Tally]:
    """The files under ``paths`` that pass the filters, and the :class:`Tally` of their
    store (timed from now).

    Raises:
        InputError: a path does not exist, or no DICOM file is left to send.
    """
    started = time.monotonic()
    found = scan(paths, patient_id=patient_id, study_uid=study_uid, series_uid=series_uid)
    result = StoreResult(not_dicom=found.not_dicom, filtered_out=found.filtered_out)
    if not found.files:
        what = "matching the filters " if found.filtered_out else ""
        raise InputError(f"no DICOM file {what}found ({found.not_dicom} other files skipped)")
    return found.files, Tally(result, len(found.files), progress, started)
