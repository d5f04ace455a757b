"""Finding the DICOM files to work on under paths given by the user."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from pacskit.encoded import Encoding, elements_up_to, parse_file_meta, text_of
from pacskit.errors import InputError

FILTER_KEYWORDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class DicomFile:
    """A DICOM Part 10 file: its SOP class and instance, transfer syntax, size and where
    its dataset starts."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    size: int
    dataset_offset: int


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
    wanted = {k: v for k, v in zip(FILTER_KEYWORDS, (patient_id, study_uid, series_uid), strict=True) if v}
    result = ScanResult(files=[])
    for path in iter_paths(paths):
        try:
            item = read_file(path)
        except (InvalidDicomError, OSError, ValueError, struct.error):
            result.not_dicom += 1
            continue
        if wanted and not _matches(path, wanted):
            result.filtered_out += 1
            continue
        result.files.append(item)
    return result


def read_file(path: Path) -> DicomFile:
    """Describe a DICOM Part 10 file from its file meta information, and the SOP Class
    and Instance UIDs from the dataset itself, which win over the file meta information
    when the two disagree (a peer checks the dataset against the request).

    Raises:
        InvalidDicomError: no ``DICM`` prefix, or malformed file meta information.
    """
    with path.open("rb") as fh:
        head = fh.read(HEAD_SIZE)
        size = os.fstat(fh.fileno()).st_size
        if head[128:132] != b"DICM":
            raise InvalidDicomError(f"{path} has no DICM prefix")
        meta, offset = parse_file_meta(head, complete=size <= len(head))
        if offset is None:
            fh.seek(0)
            head = fh.read()
            meta, offset = parse_file_meta(head)
    sop_class, sop_instance, syntax, offset = _described(head, meta, offset, str(path),
                                                         lambda: _uids_by_pydicom(path))
    return DicomFile(path, sop_class, sop_instance, syntax, size, offset)


@dataclass(frozen=True, eq=False)
class HeldInstance:
    """A DICOM Part 10 instance held in memory (what a copy received), described as
    :func:`read_file` describes a file; ``path`` names it in messages only."""

    data: bytes
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    size: int
    dataset_offset: int


def read_bytes(data: bytes) -> HeldInstance:
    """Describe the Part 10 instance ``data`` as :func:`read_file` describes a file.

    Raises:
        InvalidDicomError: no ``DICM`` prefix, or malformed file meta information.
    """
    if data[128:132] != b"DICM":
        raise InvalidDicomError("the instance has no DICM prefix")
    meta, offset = parse_file_meta(data)
    sop_class, sop_instance, syntax, offset = _described(data, meta, offset, "the instance",
                                                         lambda: _uids_by_pydicom(BytesIO(data)))
    return HeldInstance(data, Path(sop_instance), sop_class, sop_instance, syntax, len(data), offset)


def _described(head: bytes, meta: dict[int, str], offset: int | None, name: str,
               by_pydicom: Callable[[], tuple[str | None, str | None]]) -> tuple[str, str, str, int]:
    if offset is None:
        raise InvalidDicomError(f"{name}: truncated file meta information")
    try:
        sop_class, sop_instance, syntax = meta[0x0002], meta[0x0003], meta[0x0010]
    except KeyError as exc:
        raise InvalidDicomError(f"{name}: file meta information lacks {exc}") from None
    try:
        found = elements_up_to(head, offset, Encoding.of(syntax), SOP_INSTANCE_UID)
        in_dataset = tuple(text_of(head[e.start:e.end]) if e else None
                           for e in (found.get(SOP_CLASS_UID), found.get(SOP_INSTANCE_UID)))
    except ValueError:
        in_dataset = by_pydicom()
    return in_dataset[0] or sop_class, in_dataset[1] or sop_instance, syntax, offset


HEAD_SIZE = 4096
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018


def _uids_by_pydicom(path: Path | BytesIO) -> tuple[str | None, str | None]:
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"])
    except Exception as exc:  # noqa: BLE001 - whatever pydicom cannot read is not DICOM here
        raise InvalidDicomError(f"{path}: unreadable dataset ({exc})") from None
    return ds.get("SOPClassUID"), ds.get("SOPInstanceUID")


def _matches(path: Path, wanted: dict[str, str]) -> bool:
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(wanted))
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return False
    return all(str(ds.get(k, "")) == v for k, v in wanted.items())
