"""The start-up check: what a run of the archive that did not stop cleanly (kill -9, a
crash, a power cut) left in flight, finished or undone — without scanning the archive.

Ingest (:mod:`pacskit.archive.ingest`) keeps each instance's temporary file in ``tmp/``,
named after its process (``<pid>-…``), until the instance is indexed and acknowledged; it
links the file into ``files/`` before the index commit, and an overwrite gives the file it
replaces a second name in ``tmp/`` (``….old``) until that file is removed. So the
temporary files of processes no longer running name everything that was in flight:

- a temporary file with no other name: removed (an instance still arriving);
- one also linked into ``files/``: that file is kept if the index row of its SOP Instance
  UID points at it, and removed otherwise — an instance never acknowledged, or the old
  file of an overwrite that committed;
- a row of such an instance whose file is missing: dropped;
- a STOW-RS body being spooled: removed.

The temporary files of processes still running (``archive import`` beside ``serve``) are
left alone. Everything repaired is logged. A full comparison of the index with the files
is ``pacskit archive check``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread

from pacskit.archive.index import Index
from pacskit.archive.ingest import LIVE_SCRATCH_PREFIXES, Ingest
from pacskit.archive.uids import canonical_uid

LOG = logging.getLogger("pacskit.archive")
_OWNER = re.compile(r"^(?:stow-)?([0-9]+)-")
_PLACED_SUFFIXES = (".part", ".old")


@dataclass
class Recovered:
    """What the start-up check repaired."""

    temporary_files: int = 0
    removed_files: list[str] = field(default_factory=list)
    dropped_rows: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.temporary_files or self.removed_files or self.dropped_rows)


def recover(index: Index, ingest: Ingest) -> Recovered:
    """Settle what processes that are gone left in ``tmp/`` (see the module docstring)."""
    result = Recovered()
    for path in sorted(ingest.scratch.iterdir()):
        if not path.is_file() or _in_flight(path.name):
            continue
        if path.suffix in _PLACED_SUFFIXES:
            _settle(path, index, ingest, result)
        path.unlink(missing_ok=True)
        result.temporary_files += 1
    if result.anything:
        LOG.warning("start-up check after an unclean stop: %d temporary files removed, %d files never indexed "
                    "removed, %d rows without a file dropped", result.temporary_files,
                    len(result.removed_files), len(result.dropped_rows))
    return result


def _in_flight(name: str) -> bool:
    """Whether the temporary file ``name`` belongs to an ingest still running."""
    own = name.removeprefix("stow-")
    if any(own.startswith(prefix) for prefix in LIVE_SCRATCH_PREFIXES):
        return True
    owner = _OWNER.match(name)
    if owner is None:
        return False
    pid = int(owner.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _settle(path: Path, index: Index, ingest: Ingest, result: Recovered) -> None:
    """Keep or remove the file ``files/`` holds under another name of ``path``."""
    if path.stat().st_nlink < 2:
        return
    try:
        header = dcmread(path, stop_before_pixels=True,
                         specific_tags=["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
        uids = [canonical_uid(str(header.get(k, ""))) for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                                                 "SOPInstanceUID")]
    except Exception:  # noqa: BLE001 - ingest links only what it read; anything else is not ours
        return
    study, series, sop = uids
    if study is None or series is None or sop is None:
        return
    folder = ingest.files / study / series
    indexed = index.path_of(sop)
    for linked in sorted(folder.glob(f"{sop}.*dcm")):
        relative = f"{study}/{series}/{linked.name}"
        if relative != indexed and linked.samefile(path):
            linked.unlink()
            result.removed_files.append(relative)
            LOG.warning("start-up check: removed %s, a file of %s that was never indexed", relative, sop)
    if indexed is not None and not (ingest.files / indexed).is_file():
        index.remove(sop)
        result.dropped_rows.append(sop)
        LOG.warning("start-up check: dropped the row of %s, whose file %s is missing", sop, indexed)
