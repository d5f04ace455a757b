"""Sending files to a DIMSE node on asyncio: :func:`pacskit.send.store` with its
parallel associations as tasks of the event loop (:mod:`pacskit.net.aio_store`), the same
files (:class:`~pacskit.file_source.FileSource`), the same :class:`~pacskit.send.Tally` and the same errors. The files
are scanned and read on the loop (small reads, no thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from pacskit.errors import PacskitError
from pacskit.file_source import FileSource
from pacskit.models import StoreResult
from pacskit.net import aio_store
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.nodes import Node
from pacskit.send import StoreProgressCallback, Tally, check_parallel, raise_if_none_sent, shares
from pacskit.settings import Settings


async def store(settings: Settings, node: Node, paths: Iterable[Path | str], *,
                patient_id: str | None = None, study_uid: str | None = None,
                series_uid: str | None = None, parallel: int = 1,
                progress: StoreProgressCallback | None = None,
                connections: ConnectionLimit | None = None) -> StoreResult:
    """C-STORE the DICOM files under ``paths`` to ``node`` over ``parallel`` associations
    at once (fewer if ``connections`` allows fewer), as :func:`pacskit.send.store`;
    ``progress`` is called on the loop.

    Raises:
        InputError: a path does not exist, or no DICOM file is left to send.
        NetworkError: every association failed (the same error for all of them).
    """
    check_parallel(parallel)
    source = FileSource(paths, patient_id=patient_id, study_uid=study_uid, series_uid=series_uid)
    result = StoreResult(not_dicom=source.not_dicom, filtered_out=source.filtered_out)
    tally = Tally(result, len(source.files), progress, source.started)
    outcomes = await asyncio.gather(*(aio_store.send_files(settings, node, share, tally, connections)
                                      for share in shares(source.files, parallel)), return_exceptions=True)
    unexpected = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, PacskitError)]
    if unexpected:
        raise unexpected[0]
    raise_if_none_sent([o for o in outcomes if isinstance(o, PacskitError)], tally)
    return tally.finished()
