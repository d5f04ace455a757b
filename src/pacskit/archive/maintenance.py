"""Moving files in and out of the archive, and keeping the index and the files in step.

- import: files and folders → the archive, through the archive sink of ``copy`` (names kept);
- export (``archive export``) is a copy from the archive to a folder (:mod:`pacskit.transfer`);
- check: rows whose file is gone, files no row points to, temporary files left by a
  crash — found, and with ``repair`` fixed (rows dropped, files indexed, leftovers removed).
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.errors import InvalidDicomError

from pacskit.archive.index import Index
from pacskit.archive.ingest import SUCCESS, Ingest, Received
from pacskit.scan import read_file

Progress = Callable[[int, int], None]


@dataclass
class ImportResult:
    """What ``archive import`` did."""

    imported: int = 0
    duplicates: int = 0
    not_dicom: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class CheckResult:
    """What ``archive check`` found (and, with ``repair``, fixed)."""

    rows_without_file: list[str] = field(default_factory=list)
    files_without_row: list[Path] = field(default_factory=list)
    temporary_files: list[Path] = field(default_factory=list)
    set_aside: list[Path] = field(default_factory=list)
    repaired: bool = False

    @property
    def consistent(self) -> bool:
        return not (self.rows_without_file or self.files_without_row or self.temporary_files)


def import_files(ingest: Ingest, paths: Iterable[Path | str], progress: Progress | None = None) -> ImportResult:
    """Ingest every DICOM file under ``paths`` (files and folders), names as the files
    carry them: a copy of files into the archive sink (:class:`~pacskit.sinks.ArchiveSink`
    with ``Names.kept``), the same path as ``copy FOLDER archive``, which withholds them.

    Raises:
        InputError: a path does not exist, or holds no DICOM file.
    """
    from pacskit.file_source import FileSource
    from pacskit.sinks import ArchiveSink, Names

    source = FileSource(paths)
    sink = ArchiveSink(names=Names.kept, ingest=ingest)
    result = ImportResult(not_dicom=source.not_dicom)
    for done, item in enumerate(source.files, 1):
        try:
            outcome = sink.write_file(item)
        except OSError as exc:
            result.failed.append((item.path, f"cannot read: {exc.strerror or exc}"))
        else:
            if outcome.status != SUCCESS:
                result.failed.append((item.path, outcome.reason))
            elif outcome.duplicate:
                result.duplicates += 1
            else:
                result.imported += 1
        if progress is not None:
            progress(done, len(source.files))
    return result


def check(index: Index, ingest: Ingest, *, repair: bool = False) -> CheckResult:
    """Compare the index with the files (see the module docstring)."""
    result = CheckResult(repaired=repair)
    indexed: set[str] = set()
    for uid, stored in index.all_paths():
        indexed.add(stored)
        if not (ingest.files / stored).is_file():
            result.rows_without_file.append(uid)
    for path in sorted(ingest.files.rglob("*")):
        if path.is_file() and path.relative_to(ingest.files).as_posix() not in indexed:
            result.files_without_row.append(path)
    result.temporary_files = sorted(p for p in ingest.scratch.glob("*") if p.is_file())
    if repair:
        for uid in result.rows_without_file:
            index.remove(uid)
        for path in result.temporary_files:
            path.unlink(missing_ok=True)
        for path in result.files_without_row:
            _adopt(ingest, path, result)
    return result


def _adopt(ingest: Ingest, path: Path, result: CheckResult) -> None:
    """Index a file found without a row; set it aside (``quarantine/``) if it cannot be,
    or if its instance is already stored from another file."""
    try:
        item = read_file(path)
        data = path.read_bytes()[item.dataset_offset:]
        outcome = ingest.ingest(Received(item.sop_class_uid, item.sop_instance_uid,
                                         item.transfer_syntax, data))
    except (InvalidDicomError, OSError, ValueError, struct.error):
        outcome = None
    if outcome is not None and outcome.status == SUCCESS and not outcome.duplicate:
        if outcome.path != path:
            path.unlink(missing_ok=True)
        return
    quarantine = ingest.files.parent / "quarantine"
    quarantine.mkdir(exist_ok=True)
    shutil.move(path, quarantine / f"{path.parent.name}-{path.name}")
    result.set_aside.append(path)
