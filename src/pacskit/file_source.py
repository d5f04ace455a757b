"""Files on disk as the source of a store (``pacskit store``, :meth:`pacskit.Client.store`):
the DICOM Part 10 files under the paths given, optionally those of one patient, study or
series, handed as they are on disk to a sink that sends files —
:class:`~pacskit.sinks.DimseSink` (C-STORE, PS3.4 Annex B, over parallel associations,
a file in flight set aside and tried again when an association is lost) or
:class:`~pacskit.sinks.WebSink` (STOW-RS, PS3.18 10.5). Nothing is decoded, nothing is
asked of the destination: every file goes, and each file's outcome is tallied into a
:class:`~pacskit.models.StoreResult`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from pacskit.errors import InputError
from pacskit.models import StoreResult
from pacskit.net.store import OutcomeHandler
from pacskit.scan import DicomFile, scan
from pacskit.send import StoreProgressCallback, Tally


class FileTaking(Protocol):
    """A sink that sends files as they are on disk, each outcome to ``on_outcome``."""

    def store_files(self, files: Sequence[DicomFile], on_outcome: OutcomeHandler) -> None: ...


class FileSource:
    """The DICOM files under ``paths`` (folders recursively) that pass the filters.

    Raises:
        InputError: a path does not exist, or no DICOM file is left to send.
    """

    def __init__(self, paths: Iterable[Path | str], *, patient_id: str | None = None,
                 study_uid: str | None = None, series_uid: str | None = None) -> None:
        self.started = time.monotonic()
        found = scan(paths, patient_id=patient_id, study_uid=study_uid, series_uid=series_uid)
        if not found.files:
            what = "matching the filters " if found.filtered_out else ""
            raise InputError(f"no DICOM file {what}found ({found.not_dicom} other files skipped)")
        self.files = found.files
        self.not_dicom = found.not_dicom
        self.filtered_out = found.filtered_out


def send(source: FileSource, sink: FileTaking, progress: StoreProgressCallback | None = None) -> StoreResult:
    """Every file of ``source`` into ``sink``; the outcome, timed from the scan.

    Raises:
        NetworkError, HttpFailure: as the sink raises it (every file failed the same way).
    """
    result = StoreResult(not_dicom=source.not_dicom, filtered_out=source.filtered_out)
    tally = Tally(result, len(source.files), progress, source.started)
    sink.store_files(source.files, tally)
    return tally.finished()
