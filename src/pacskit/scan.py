"""Finding the DICOM files to work on under paths given by the user."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info

from pacskit.errors import InputError

FILTER_KEYWORDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class DicomFile:
    """A DICOM Part 10 file, described by its file meta information."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    size: int


@dataclass
class ScanResult:
    """The DICOM files found, and what was passed over."""

    files: list[DicomFile]
    not_dicom: int = 0
    filtered_out: int = 0


def iter_paths(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Every file under ``paths`` (folders recursively, in a stable order).

    Raises:
        InputError: a path does not exist.
    """
    for path in map(Path, paths):
        if path.is_dir():
            for folder, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    yield Path(folder) / name
        elif path.is_file():
            yield path
        else:
            raise InputError(f"{path} does not exist")


def scan(paths: Iterable[Path | str], *, patient_id: str | None = None,
         study_uid: str | None = None, series_uid: str | None = None) -> ScanResult:
    """The DICOM Part 10 files under ``paths``, optionally only those of one patient,
    study or series. Reads the file meta information of each file, and its first
    attributes only when a filter needs them.

    Raises:
        InputError: a path does not exist.
    """
    wanted = {k: v for k, v in zip(FILTER_KEYWORDS, (patient_id, study_uid, series_uid)) if v}
    result = ScanResult(files=[])
    for path in iter_paths(paths):
        try:
            meta = read_file_meta_info(path)
            item = DicomFile(path, str(meta.MediaStorageSOPClassUID),
                             str(meta.MediaStorageSOPInstanceUID), str(meta.TransferSyntaxUID),
                             path.stat().st_size)
        except (InvalidDicomError, AttributeError, OSError, ValueError, EOFError):
            result.not_dicom += 1
            continue
        if wanted and not _matches(path, wanted):
            result.filtered_out += 1
            continue
        result.files.append(item)
    return result


def _matches(path: Path, wanted: dict[str, str]) -> bool:
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(wanted))
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return False
    return all(str(ds.get(k, "")) == v for k, v in wanted.items())
